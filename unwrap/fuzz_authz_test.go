package unwrap

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzAuthz is a differential fuzz target: for any original request
// (method, request target, Authorization value), /authz/forward and
// /authz/envoy/ must answer exactly what the proxy answers — the same
// status, challenge, Retry-After and body on a refusal, and on success the
// Authorization header the proxy forwarded (none on a public path).
func FuzzAuthz(f *testing.F) {
	e := newEnv(f, envOpts{})
	outer := e.outer()
	for _, s := range [][3]string{
		{"GET", "/orders/1?q=1", "Bearer " + outer},
		{"POST", "/orders/admin/1", "Bearer " + outer},
		{"post", "/orders/admin/1", "Bearer " + outer},
		{"GET", "/healthz", ""},
		{"GET", "/healthz?access_token=x", "Bearer " + outer},
		{"GET", "/orders%2Fadmin", "Bearer " + outer},
		{"DELETE", "/orders/admin/../1", "Bearer " + outer},
		{"GET", "/orders/1", "Bearer " + outer[:len(outer)-2] + "xx"},
		{"GET", "/orders/1", "Basic Zm9vOmJhcg=="},
		{"GET", "/", "Bearer a,b"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, method, uri, auth string) {
		if len(auth) > 8000 || len(uri) > 4000 || !strings.HasPrefix(uri, "/") {
			t.Skip() // absolute forms and header-limit edges differ by design
		}
		raw := method + " " + uri + " HTTP/1.1\r\nHost: orders.test\r\nX-Request-Id: fuzz-1\r\n"
		if auth != "" {
			raw += "Authorization: " + auth + "\r\n"
		}
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw + "\r\n")))
		if err != nil {
			t.Skip()
		}
		e.up.mu.Lock()
		e.up.reqs = nil
		e.up.mu.Unlock()
		proxy := httptest.NewRecorder()
		e.sc.Handler().ServeHTTP(proxy, req)
		var forwarded []string
		e.up.mu.Lock()
		if len(e.up.reqs) == 1 {
			forwarded = e.up.reqs[0].Header.Values("Authorization")
		}
		e.up.mu.Unlock()
		if proxy.Code == http.StatusBadGateway || proxy.Code == http.StatusGatewayTimeout {
			t.Skip() // the upstream's failure, not a decision
		}

		h := http.Header{"X-Request-Id": {"fuzz-1"}}
		if auth != "" {
			h["Authorization"] = []string{req.Header.Get("Authorization")}
		}
		for _, via := range []string{"forward", "envoy"} {
			got := e.authzVia(via, req.Method, uri, h)
			if got.Code != proxy.Code {
				t.Fatalf("%s %q %q: %s answered %d, the proxy %d (%s)", method, uri, auth, via, got.Code, proxy.Code, got.Body)
			}
			if got.Code == http.StatusOK {
				if a := got.Header().Values("Authorization"); strings.Join(a, "|") != strings.Join(forwarded, "|") {
					t.Fatalf("%s: Authorization %d values, the proxy forwarded %d", via, len(a), len(forwarded))
				}
				continue
			}
			for _, name := range []string{"WWW-Authenticate", "Retry-After"} {
				if g, w := got.Header().Get(name), proxy.Header().Get(name); g != w {
					t.Fatalf("%s: %s %q, the proxy %q", via, name, g, w)
				}
			}
			if got.Body.String() != proxy.Body.String() {
				t.Fatalf("%s: body %q, the proxy %q", via, got.Body, proxy.Body)
			}
		}
	})
}
