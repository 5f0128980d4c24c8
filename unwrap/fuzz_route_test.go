package unwrap

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// The routes of FuzzRouteDecision: prefixes with and without methods, one
// with a reserved character and one with a non-ASCII one.
var fuzzRoutes = []struct {
	prefix  string
	methods []string
}{
	{"/orders/admin", []string{"POST", "DELETE"}},
	{"/orders/report", []string{"GET"}},
	{"/orders/a:b", nil},
	{"/orders/café", nil},
	{"/billing", []string{"PUT"}},
}

var fuzzPublic = []string{"/healthz", "/docs/café"}

// sidecarDecision is serve's decision for a request line: refused (the path
// rules), public, or forwarded with the routes it checks (their indexes).
func sidecarDecision(r *http.Request) (ok, public bool, applied []int) {
	raw, decoded, ok := rawPath(r)
	if !ok {
		return false, false, nil
	}
	if slices.Contains(fuzzPublic, raw) || slices.Contains(fuzzPublic, decoded) {
		return true, true, nil
	}
	methods := routeMethods(r, nil)
	for i, rt := range fuzzRoutes {
		if routeApplies(rt.prefix, rt.methods, raw, decoded, methods) {
			applied = append(applied, i)
		}
	}
	return true, false, applied
}

// goMux is a Go 1.22 ServeMux with the routes as patterns (a prefix is the
// exact path and its subtree) and the public paths: the pattern it picks
// names the route (-1 for none, -2 for a public path).
func goMux() (*http.ServeMux, map[string]int) {
	mux := http.NewServeMux()
	ids := map[string]int{}
	nop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	add := func(p string, id int) {
		mux.Handle(p, nop)
		ids[p] = id
	}
	for i, rt := range fuzzRoutes {
		ms := rt.methods
		if len(ms) == 0 {
			ms = []string{""}
		}
		for _, m := range ms {
			pre := ""
			if m != "" {
				pre = m + " "
			}
			add(pre+rt.prefix, i)
			add(pre+rt.prefix+"/", i)
		}
	}
	for _, p := range fuzzPublic {
		add(p, -2)
	}
	add("/", -1)
	return mux, ids
}

// pyUnquote is Python's urllib.parse.unquote: valid escapes decoded, broken
// ones kept, the bytes read as UTF-8 with invalid sequences replaced.
func pyUnquote(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return strings.ToValidUTF8(string(b), string(utf8.RuneError))
}

// pyRoute is a Python-style router: the path unquoted (twice when double),
// then the first route whose prefix it starts with (ignoring case when
// fold) for the upper-cased method, HEAD running GET's handler; -2 for a
// public path, -1 for none.
func pyRoute(raw, method string, double, fold bool) int {
	p := pyUnquote(raw)
	if double {
		p = pyUnquote(p)
	}
	if slices.Contains(fuzzPublic, p) {
		return -2
	}
	m := strings.ToUpper(method)
	for i, rt := range fuzzRoutes {
		match := strings.HasPrefix(p, rt.prefix)
		if fold {
			match = len(p) >= len(rt.prefix) && strings.EqualFold(p[:len(rt.prefix)], rt.prefix)
		}
		if match && (len(rt.methods) == 0 || slices.Contains(rt.methods, m) || m == "HEAD" && slices.Contains(rt.methods, "GET")) {
			return i
		}
	}
	return -1
}

// FuzzRouteDecision is a differential test of the path and method rules:
// whenever the sidecar forwards a request, a Go ServeMux and Python-style
// routers (single and double unquoting, exact and case-insensitive) must
// dispatch it to a route the sidecar checked, or to no route; and a path the
// sidecar forwards as public must be public, or no route, to them too.
func FuzzRouteDecision(f *testing.F) {
	for _, s := range []struct{ method, raw string }{
		{"POST", "/orders/%61dmin"}, {"DELETE", "/orders/%61dmin/1"}, {"GET", "/orders/%72eport"},
		{"HEAD", "/orders/report"}, {"head", "/orders/report"}, {"POST", "/orders/admin"},
		{"POST", "/ORDERS/ADMIN"}, {"GET", "/orders/a%3Ab"}, {"GET", "/orders/caf%C3%A9"},
		{"GET", "/orders/caf%c3%a9/x"}, {"POST", "/orders/%2561dmin"}, {"GET", "/healthz"},
		{"GET", "/health%7A"}, {"GET", "/docs/caf%C3%A9"}, {"POST", "/orders%3Bx/admin"},
		{"PUT", "/billing/%zz"}, {"PUT", "/billing%"}, {"GET", "/orders/report?x=%61"},
		{"POST", "/orders/admin%3F"}, {"GET", "/orders/caf%FF"}, {"PUT", "/b%69lling"},
	} {
		f.Add(s.method, s.raw)
	}
	mux, ids := goMux()
	f.Fuzz(func(t *testing.T, method, raw string) {
		if method == "" || !validHeaderFieldName(method) {
			return // Go's server refuses the request line
		}
		u, err := url.ParseRequestURI(raw)
		if err != nil || !strings.HasPrefix(raw, "/") || strings.ContainsAny(raw, " \r\n\x00") {
			return // Go's server refuses the request line
		}
		r := &http.Request{Method: method, RequestURI: raw, URL: u, Header: http.Header{}, Host: "x"}
		ok, public, applied := sidecarDecision(r)
		if !ok {
			return
		}
		check := func(router string, got int) {
			switch {
			case got == -1:
			case public && got != -2:
				t.Fatalf("%s %q: the sidecar forwards it as public; %s dispatches it to route %d", method, raw, router, got)
			case !public && got == -2:
				// a token was checked: stricter than the upstream
			case !public && !slices.Contains(applied, got):
				t.Fatalf("%s %q: %s dispatches it to route %d (%s); the sidecar checked %v", method, raw, router, got, fuzzRoutes[got].prefix, applied)
			}
		}
		_, pattern := mux.Handler(r)
		if id, known := ids[pattern]; known {
			check("Go's ServeMux", id)
		} else if pattern != "" {
			t.Fatalf("unknown pattern %q", pattern)
		}
		path := raw
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
		check("a Python-style router", pyRoute(path, method, false, false))
		check("a case-insensitive router", pyRoute(path, method, false, true))
		check("a double-decoding router", pyRoute(path, method, true, false))
	})
}

// validHeaderFieldName is an HTTP token (RFC 9110 5.6.2), as Go's server
// requires of a method.
func validHeaderFieldName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isUnreserved(c) || strings.IndexByte("!#$%&'*+^`|", c) >= 0) {
			return false
		}
	}
	return true
}
