package unwrap

import (
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// This file is how the sidecar reads a request's path and method so that it
// can never disagree with the upstream about which route or public path a
// request is (DESIGN.md "Precise rules": Paths, Methods, Bodies). Upstreams
// differ: Go's ServeMux matches the percent-decoded path, case-sensitively,
// and runs GET handlers for HEAD; Python-style routers unquote the path and
// then prefix- or pattern-match it; Express and ASP.NET match case-
// insensitively; Java containers strip ";" path parameters; frameworks
// honour X-HTTP-Method-Override or a _method parameter. The sidecar either
// refuses a request these could read differently, or checks routes under
// every reading:
//
//   - The raw path must be already clean and made of RFC 3986 path
//     characters (unreserved, sub-delims but ";", ":", "@", "/" and
//     percent-escapes): then Go forwards it byte for byte as matched.
//   - A percent-escape must be two hex digits (Python's unquote leaves a
//     broken "%zz" as is where others refuse or decode differently), and may
//     not encode what never needs encoding or what routers treat as
//     structure: unreserved characters (%61 is "a" to every decoding
//     router), "/", "\", ";" (a decode-then-strip-parameters router turns
//     /a%3Bx/b into /a/b), controls and NUL, or a "%" that is followed by
//     two hex digits (%2561 is %61 after one decoding and "a" after two, as
//     through a decoding proxy in front of a decoding app). The decoded path
//     must be valid UTF-8 (Python replaces invalid bytes, Go keeps them).
//   - Every escape that is left encodes a byte that may not appear raw in a
//     path (space, quote, "?", "#", non-ASCII...) or a reserved character
//     (":" "@" "!" "$" "&" "'" "(" ")" "*" "+" "," "="), in either hex case.
//     Those decode the same way in every router, so the sidecar matches
//     routes against both the raw and the decoded path, and public paths
//     against either exactly. A router that decodes nothing matches the raw
//     path; one that truncates the decoded path at "?" or "#" sees a prefix
//     of it, which a prefix route still covers.
//   - Routes match case-insensitively (a stricter check: more requests need
//     the route's scopes), for upstreams whose routers ignore case. Public
//     paths stay exact, as DESIGN.md says: a case variant needs a token.
//   - A route's methods apply to every method the upstream may run: the
//     request's (in any case: werkzeug upper-cases it), GET for HEAD, and
//     the methods named by X-HTTP-Method-Override, X-HTTP-Method,
//     X-Method-Override and a _method query parameter. An override in a form
//     body is not seen (bodies are not inspected): README says to turn that
//     off in the service, or to declare routes without methods.

// checkPath applies the path rules to a raw path (without query) and
// returns it percent-decoded. It allocates only when raw holds an escape.
func checkPath(raw string) (decoded string, ok bool) {
	if raw == "" || raw[0] != '/' {
		return "", false
	}
	escapes := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '%' {
			if i+2 >= len(raw) || !isHex(raw[i+1]) || !isHex(raw[i+2]) {
				return "", false
			}
			if refusedEscape(raw, i, unhex(raw[i+1])<<4|unhex(raw[i+2])) {
				return "", false
			}
			escapes = true
			i += 2
			continue
		}
		if !isPathChar(c) {
			return "", false
		}
	}
	for rest := raw[1:]; ; {
		seg, tail, more := strings.Cut(rest, "/")
		if seg == "." || seg == ".." || (seg == "" && more) {
			return "", false
		}
		if !more {
			break
		}
		rest = tail
	}
	if !escapes {
		return raw, true
	}
	// Every escape was checked: PathUnescape cannot fail.
	d, err := url.PathUnescape(raw)
	if err != nil || !utf8.ValidString(d) {
		return "", false
	}
	return d, true
}

// refusedEscape reports whether the escape at raw[i] that encodes b is
// refused (see the file comment).
func refusedEscape(raw string, i int, b byte) bool {
	switch {
	case isUnreserved(b), b < 0x20, b == 0x7f:
		return true
	case b == '/', b == '\\', b == ';':
		return true
	case b == '%':
		return i+4 < len(raw) && isHex(raw[i+3]) && isHex(raw[i+4])
	}
	return false
}

// isUnreserved is RFC 3986 2.3: ALPHA / DIGIT / "-" / "." / "_" / "~".
func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// isPathChar is a byte allowed raw in the sidecar's paths: RFC 3986 pchar
// and "/", without ";" (a path-parameter delimiter to Java containers).
// Go's server accepts more (quotes, braces, "|"...), but would forward them
// escaped: not the path that was matched.
func isPathChar(c byte) bool {
	if isUnreserved(c) {
		return true
	}
	switch c {
	case '/', ':', '@', '!', '$', '&', '\'', '(', ')', '*', '+', ',', '=':
		return true
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// routeApplies reports whether a route with this prefix and these methods
// applies to a request with the raw and decoded path and the methods the
// upstream may run (routeMethods).
func routeApplies(prefix string, methods []string, raw, decoded string, reqMethods []string) bool {
	if !hasPrefixFold(raw, prefix) && !hasPrefixFold(decoded, prefix) {
		return false
	}
	if len(methods) == 0 {
		return true
	}
	for _, m := range reqMethods {
		if containsFold(methods, m) {
			return true
		}
	}
	return false
}

// methodOverrideHeaders are the headers frameworks read to run another
// method's handler (Express method-override, Symfony, Laravel, Google APIs).
var methodOverrideHeaders = [...]string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}

// routeMethods appends to ms (usually empty, with room for a few) the
// methods the upstream may run for r: its method, GET for HEAD (RFC 9110
// 9.3.2), and those named by a method override header or a _method query
// parameter. The first is r.Method.
func routeMethods(r *http.Request, ms []string) []string {
	ms = append(ms, r.Method)
	for _, name := range methodOverrideHeaders {
		for _, v := range r.Header[name] {
			for m := range strings.SplitSeq(v, ",") {
				if m = strings.TrimSpace(m); m != "" {
					ms = append(ms, m)
				}
			}
		}
	}
	if r.URL.RawQuery != "" {
		for kv := range strings.SplitSeq(r.URL.RawQuery, "&") {
			k, v, _ := strings.Cut(kv, "=")
			if uk, err := url.QueryUnescape(k); err == nil {
				k = uk
			}
			if uv, err := url.QueryUnescape(v); err == nil {
				v = uv
			}
			if strings.EqualFold(k, "_method") && v != "" {
				ms = append(ms, v)
			}
		}
	}
	for _, m := range ms {
		if strings.EqualFold(m, http.MethodHead) {
			ms = append(ms, http.MethodGet)
			break
		}
	}
	return ms
}
