package unwrap

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestCheckPath(t *testing.T) {
	cases := []struct {
		raw     string
		ok      bool
		decoded string
	}{
		{"/", true, "/"},
		{"/orders/1", true, "/orders/1"},
		{"/orders/", true, "/orders/"},
		{"/a:b@c!$&'()*+,=", true, "/a:b@c!$&'()*+,="},
		{"/a%20b", true, "/a b"},
		{"/a%3Ab", true, "/a:b"}, // reserved: decodes alike everywhere
		{"/a%3ab", true, "/a:b"}, // lower-case hex too
		{"/a%3Fb", true, "/a?b"},
		{"/a%23b", true, "/a#b"},
		{"/caf%C3%A9", true, "/café"},
		{"/caf%c3%a9", true, "/café"},
		{"/100%25", true, "/100%"},
		{"/100%25x", true, "/100%x"},
		{"/100%25zz", true, "/100%zz"},
		// RFC 3986 unreserved, any case of hex: every decoding router reads
		// them as the letter.
		{"/orders/%61dmin", false, ""},
		{"/orders/%6Dadmin", false, ""},
		{"/orders/%6d", false, ""},
		{"/orders/%7e", false, ""},
		{"/orders/%7E", false, ""},
		{"/orders/%2D", false, ""},
		{"/orders/%5F", false, ""},
		{"/orders/%30", false, ""},
		{"/orders/%41", false, ""},
		{"/orders/%2e%2e/admin", false, ""},
		{"/orders%2Fadmin", false, ""},
		{"/orders%2fadmin", false, ""},
		{"/orders%5Cadmin", false, ""},
		{"/orders%3Bx/admin", false, ""},
		{"/orders%3bx/admin", false, ""},
		{"/orders%00", false, ""},
		{"/orders%0A", false, ""},
		{"/orders%0d", false, ""},
		{"/orders%7F", false, ""},
		{"/orders/%2561dmin", false, ""}, // %61 after one decoding
		{"/orders/%252F", false, ""},
		{"/a%zz", false, ""},
		{"/a%2", false, ""},
		{"/a%", false, ""},
		{"/a%%41", false, ""},
		{"/a%FF", false, ""},       // not UTF-8
		{"/a%C3", false, ""},       // truncated UTF-8
		{"/a%ED%A0%80", false, ""}, // a surrogate
		{"/a;b", false, ""},
		{`/a\b`, false, ""},
		{"/a b", false, ""},
		{"/a\"b", false, ""},
		{"/a<b>", false, ""},
		{"/a{b}", false, ""},
		{"/a|b", false, ""},
		{"/a^b", false, ""},
		{"/a`b", false, ""},
		{"/a[b]", false, ""},
		{"/a#b", false, ""},
		{"/a?b", false, ""}, // the caller cuts the query first
		{"/caf\xc3\xa9", false, ""},
		{"/a//b", false, ""},
		{"//a", false, ""},
		{"/a/./b", false, ""},
		{"/a/../b", false, ""},
		{"/..", false, ""},
		{"/.", false, ""},
		{"/a/.", false, ""},
		{"", false, ""},
		{"a", false, ""},
		{"*", false, ""},
		{"/...", true, "/..."},
		{"/.well-known/x", true, "/.well-known/x"},
	}
	for _, tc := range cases {
		t.Run(tc.raw, func(t *testing.T) {
			dec, ok := checkPath(tc.raw)
			if ok != tc.ok || dec != tc.decoded {
				t.Fatalf("checkPath(%q) = %q, %v; want %q, %v", tc.raw, dec, ok, tc.decoded, tc.ok)
			}
		})
	}
}

// reportRoute is a GET route for routeEnv: reading a report needs
// orders:write.
const reportRoute = `
  route {
    path_prefix = "/orders/report"
    methods     = ["GET"]
    scopes      = ["orders:write"]
  }
  route {
    path_prefix = "/orders/a:b"
    scopes      = ["orders:write"]
  }
  route {
    path_prefix = "/orders/café"
    scopes      = ["orders:write"]
  }`

// TestRouteScopesCannotBeEscaped: the token grants orders:read only; every
// spelling that some upstream dispatches to a protected route is refused.
func TestRouteScopesCannotBeEscaped(t *testing.T) {
	e := newEnv(t, envOpts{sidecar: reportRoute})
	tok := e.outer()
	bad := wantFail{status: 400, code: codeInvalidRequest, reason: ReasonBadPath}
	scope := wantFail{status: 403, code: codeInsufficientScope, reason: ReasonRouteScope}
	cases := []struct {
		method, target string
		header         http.Header
		want           wantFail // status 200: forwarded
	}{
		{"GET", "/orders/1", nil, wantFail{status: 200}},
		{"POST", "/orders/1", nil, wantFail{status: 200}},
		{"GET", "/orders/admin", nil, wantFail{status: 200}}, // the route is for POST and DELETE
		{"POST", "/orders/admin", nil, scope},
		{"POST", "/orders/%61dmin", nil, bad},
		{"DELETE", "/orders/%61dmin/1", nil, bad},
		{"GET", "/orders/%72eport", nil, bad},
		{"GET", "/orders/%2572eport", nil, bad},
		{"POST", "/orders%3Bx/admin", nil, bad},
		{"GET", "/orders/report", nil, scope},
		{"HEAD", "/orders/report", nil, scope},
		{"head", "/orders/report", nil, scope},
		{"get", "/orders/report", nil, scope},
		{"post", "/orders/admin", nil, scope},
		{"PoSt", "/orders/admin", nil, scope},
		{"POST", "/ORDERS/ADMIN", nil, scope}, // case-insensitive routers (Express, ASP.NET)
		{"GET", "/Orders/Report/2024", nil, scope},
		{"POST", "/orders/admin/", nil, scope},
		{"POST", "/orders/administrators", nil, scope}, // a prefix: stricter than any router
		{"POST", "/orders/1?_method=DELETE", nil, wantFail{status: 200}},
		{"POST", "/orders/admin?_method=PUT", nil, scope},
		{"PUT", "/orders/admin?_method=DELETE", nil, scope},
		{"PUT", "/orders/admin?%5Fmethod=delete", nil, scope},
		{"PUT", "/orders/admin", http.Header{"X-Http-Method-Override": {"DELETE"}}, scope},
		{"PUT", "/orders/admin", http.Header{"X-Http-Method": {"post"}}, scope},
		{"PUT", "/orders/admin", http.Header{"X-Method-Override": {"PATCH, DELETE"}}, scope},
		{"PUT", "/orders/report", http.Header{"X-Http-Method-Override": {"HEAD"}}, scope},
		{"PUT", "/orders/admin", nil, wantFail{status: 200}},
		{"GET", "/orders/a:b", nil, scope},
		{"GET", "/orders/a%3Ab", nil, scope}, // decoded: /orders/a:b
		{"GET", "/orders/a%3ab/1", nil, scope},
		{"GET", "/orders/caf%C3%A9", nil, scope},
		{"GET", "/orders/caf%c3%a9", nil, scope},
		{"GET", "/orders/CAF%C3%89", nil, scope},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			h := http.Header{"Authorization": {"Bearer " + tok}}
			for k, v := range tc.header {
				h[k] = v
			}
			rec := e.do(tc.method, tc.target, h)
			if tc.want.status == 200 {
				if rec.Code != 200 {
					t.Fatalf("status %d, want 200: %s", rec.Code, rec.Body)
				}
				return
			}
			checkFail(t, e, rec, tc.want)
		})
	}
}

func TestPublicPathsExact(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.sc.public["/docs/café"] = true // as public_paths = ["/healthz", "/docs/café"] would
	cases := []struct {
		target string
		want   int
	}{
		{"/healthz", 200},
		{"/healthz?x=1", 200},
		{"/healthz/", 401},
		{"/HEALTHZ", 401},
		{"/health%7A", 400},
		{"/healthz%3B", 400},
		{"/docs/caf%C3%A9", 200},
		{"/docs/caf%c3%a9", 200},
		{"/docs/caf%C3%A9/x", 401},
	}
	for _, tc := range cases {
		t.Run(tc.target, func(t *testing.T) {
			if rec := e.get(tc.target, ""); rec.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
		})
	}
}

func TestRouteMethods(t *testing.T) {
	cases := []struct {
		method, target string
		header         http.Header
		want           []string
	}{
		{"GET", "/", nil, []string{"GET"}},
		{"HEAD", "/", nil, []string{"HEAD", "GET"}},
		{"head", "/", nil, []string{"head", "GET"}},
		{"POST", "/?_method=DELETE", nil, []string{"POST", "DELETE"}},
		{"POST", "/?a=1&_method=HEAD", nil, []string{"POST", "HEAD", "GET"}},
		{"POST", "/?_METHOD=put", nil, []string{"POST", "put"}},
		{"POST", "/?_method=", nil, []string{"POST"}},
		{"POST", "/", http.Header{"X-Http-Method-Override": {"DELETE", " PUT , PATCH"}}, []string{"POST", "DELETE", "PUT", "PATCH"}},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.target, nil)
			for k, v := range tc.header {
				r.Header[k] = v
			}
			if got := routeMethods(r, nil); !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCloseAfterBody(t *testing.T) {
	cases := []struct {
		name   string
		method string
		body   string
		chunk  bool
		header http.Header
		public bool
		want   bool
	}{
		{"GET without body", "GET", "", false, nil, false, false},
		{"POST without body", "POST", "", false, nil, false, false},
		{"GET with body", "GET", "x", false, nil, false, true},
		{"get with body", "get", "x", false, nil, false, true},
		{"HEAD with body", "HEAD", "x", false, nil, false, true},
		{"OPTIONS with body", "OPTIONS", "x", false, nil, false, true},
		{"TRACE with body", "TRACE", "x", false, nil, false, true},
		{"DELETE with body", "DELETE", "x", false, nil, false, true},
		{"PROPFIND with body", "PROPFIND", "x", false, nil, false, true},
		{"post with body (another method)", "post", "x", false, nil, false, true},
		// An upstream may answer a POST early without reading its body.
		{"POST with body", "POST", "x", false, nil, false, true},
		{"PUT with body", "PUT", "x", false, nil, false, true},
		{"PATCH with body", "PATCH", "x", false, nil, false, true},
		{"POST chunked", "POST", "x", true, nil, false, true},
		{"POST overridden to GET", "POST", "x", false, http.Header{"X-Http-Method-Override": {"GET"}}, false, true},
		{"POST on a public path", "POST", "x", false, nil, true, true},
		{"POST with Expect", "POST", "x", false, http.Header{"Expect": {"100-continue"}}, false, true},
		{"GET on a public path without body", "GET", "", false, nil, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			r := httptest.NewRequest(tc.method, "/x", body)
			if tc.chunk {
				r.ContentLength = -1
				r.TransferEncoding = []string{"chunked"}
			}
			for k, v := range tc.header {
				r.Header[k] = v
			}
			if got := closeAfterBody(r); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestBodiesOnOwnUpstreamConnection: through a real listener, the upstream
// sees Connection: close for a GET with a body and for a body on a public
// path, and for a POST with a body too: every body.
func TestBodiesOnOwnUpstreamConnection(t *testing.T) {
	e := newEnv(t, envOpts{})
	addr := serveSidecar(t, e)
	tok := e.outer()
	cases := []struct {
		method, path string
		auth         bool
		wantClose    bool
	}{
		{"GET", "/orders/1", true, true},
		{"DELETE", "/orders/1", true, true},
		{"POST", "/orders/1", true, true},
		{"GET", "/healthz", false, true},
		{"POST", "/healthz", false, true},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, "http://"+addr+tc.path, strings.NewReader("GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"))
			if tc.auth {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := e.up.last(t).Close; got != tc.wantClose {
				t.Fatalf("upstream saw Connection: close = %v, want %v", got, tc.wantClose)
			}
		})
	}
}
