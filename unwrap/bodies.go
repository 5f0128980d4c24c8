package unwrap

import "net/http"

// closeAfterBody reports whether r must go upstream on a connection that is
// closed after its response and never reused (DESIGN.md "Precise rules",
// Bodies): it carries a body, and the upstream may leave that body unread.
// An HTTP/1.1 upstream that does not read a body (Python's http.server for
// a GET, for any method it has no handler for, or for a POST that a handler
// answers early, say with 403, without reading it) reads it as the next
// request on the connection: a request the sidecar never checked, or the
// start of one that swallows the next client's request, inner token
// included, as its body.
//
// No method is safe from that: every body is forwarded with Connection:
// close, which an upstream honours by reading nothing after its response
// (RFC 9112 9.6). Requests without a body keep the connection.
func closeAfterBody(r *http.Request) bool {
	return hasBody(r)
}

// hasBody reports whether the request carries a body: a Content-Length
// over 0 or a Transfer-Encoding (Go's server reads both; it refuses a
// request with both, as RFC 9112 6.3 allows).
func hasBody(r *http.Request) bool {
	if r.ContentLength > 0 || len(r.TransferEncoding) > 0 {
		return true
	}
	return r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody
}
