package unwrap

import "net/http"

// closeAfterBody reports whether r must go upstream on a connection that is
// closed after its response and never reused (DESIGN.md "Precise rules",
// Bodies): it carries a body, and the upstream may leave that body unread.
// An HTTP/1.1 upstream that does not read a body (Python's http.server for
// a GET, or for any method it has no handler for) reads it as the next
// request on the connection: a request the sidecar never checked, or the
// start of one that swallows the next client's request as its body.
//
// That is every body except one of known length on POST, PUT or PATCH (in
// upper case, as RFC 9110 spells them: "post" is another method, which
// Python answers 501 without reading the body) whose every possible method
// (routeMethods: HEAD, overrides) is one of those too; and every body on a
// public path. A chunked body (unknown length) is closed after too: an
// upstream that does not implement chunked reads its chunks as requests;
// and so is a body sent with Expect.
func closeAfterBody(r *http.Request, public bool) bool {
	if !hasBody(r) {
		return false
	}
	// With Expect: 100-continue, Go's transport sends the body after a
	// final answer that came without 100 Continue when it keeps the
	// connection: the upstream, which answered without reading it, would
	// read it as the next request.
	if public || r.ContentLength < 0 || len(r.Header["Expect"]) > 0 {
		return true
	}
	var buf [4]string
	for _, m := range routeMethods(r, buf[:0]) {
		switch m {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
		default:
			return true
		}
	}
	return false
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
