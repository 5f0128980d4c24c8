package unwrap

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// authzVia sends the original request (method, target, headers) to a
// decision endpoint the way a gateway does: "forward" as nginx, Traefik
// and Caddy do (X-Forwarded-Method, X-Forwarded-Uri), "envoy" as Envoy's
// HTTP ext_authz with path_prefix /authz/envoy.
func (e *env) authzVia(via, method, target string, h http.Header) *httptest.ResponseRecorder {
	var req *http.Request
	switch via {
	case "forward":
		req = httptest.NewRequest(http.MethodGet, AuthzForwardPath, nil)
		req.Header.Set("X-Forwarded-Method", method)
		req.Header.Set("X-Forwarded-Uri", target)
	case "envoy":
		req = httptest.NewRequest(method, AuthzEnvoyPrefix+target, nil)
	default:
		e.t.Fatalf("unknown endpoint %q", via)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	e.sc.AuthzHandler().ServeHTTP(rec, req)
	return rec
}

// TestAuthzAnswersAsTheProxy is the contract of the decision endpoints:
// every refusal is exactly the proxy's (status, WWW-Authenticate,
// Retry-After, body), and an allowed request gets the Authorization
// header that the proxy forwards upstream.
func TestAuthzAnswersAsTheProxy(t *testing.T) {
	e := newEnv(t, envOpts{})
	tok := e.outer()
	tampered := tok[:len(tok)-4] + "AAAA"
	bearer := func(t string) http.Header { return http.Header{"Authorization": {"Bearer " + t}} }
	ungranted := e.outerClaims(map[string]any{})
	ungranted["scope"] = "reports:read"
	tests := []struct {
		name           string
		method, target string
		header         http.Header
		wantStatus     int
	}{
		{"allowed", "GET", "/orders/1?q=1", bearer(tok), 200},
		{"allowed again (cached)", "GET", "/orders/2", bearer(tok), 200},
		{"public path", "GET", "/healthz", nil, 200},
		{"public path ignores the token", "POST", "/healthz?x=1", bearer(tampered), 200},
		{"no Authorization", "GET", "/orders", nil, 401},
		{"Basic scheme", "GET", "/orders", http.Header{"Authorization": {"Basic Zm9vOmJhcg=="}}, 401},
		{"tampered token", "GET", "/orders", bearer(tampered), 401},
		{"Bearer not b64token", "GET", "/orders", http.Header{"Authorization": {"Bearer a,b"}}, 400},
		{"several Authorization headers", "GET", "/orders", http.Header{"Authorization": {"Bearer " + tok, "Bearer " + tok}}, 400},
		{"access_token in the query", "GET", "/orders?access_token=x", bearer(tok), 400},
		{"escaped access_token in the query", "GET", "/healthz?%61ccess_token=x", nil, 400},
		{"dot segment", "GET", "/orders/../admin", bearer(tok), 400},
		{"double slash", "GET", "//orders", bearer(tok), 400},
		{"encoded slash", "GET", "/orders%2F1", bearer(tok), 400},
		{"encoded dot", "GET", "/a/%2e%2e/b", bearer(tok), 400},
		{"semicolon", "GET", "/healthz;x", nil, 400},
		{"public path with a trailing slash", "GET", "/healthz/", nil, 401},
		{"route scope", "POST", "/orders/admin/7", bearer(tok), 403},
		{"route is per method", "GET", "/orders/admin/7", bearer(tok), 200},
		{"ungranted API token", "GET", "/orders", bearer(sign(e.idpKey, hdr(e.idpKey, "at+jwt"), ungranted)), 403},
		{"absolute-form original URI", "GET", "http://evil.test/healthz", nil, 400},
		{"empty original URI", "GET", "", nil, 400},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.header.Clone()
			if h == nil {
				h = http.Header{}
			}
			h.Set("X-Request-Id", fmt.Sprintf("req-%d", i))
			var proxy *httptest.ResponseRecorder
			if !strings.HasPrefix(tc.target, "http:") && tc.target != "" {
				proxy = e.do(tc.method, tc.target, h)
				if proxy.Code != tc.wantStatus {
					t.Fatalf("proxy: status %d, want %d: %s", proxy.Code, tc.wantStatus, proxy.Body)
				}
			}
			for _, via := range []string{"forward", "envoy"} {
				if via == "envoy" && !strings.HasPrefix(tc.target, "/") {
					continue // no path: 404 (TestAuthzEndpointRequests)
				}
				got := e.authzVia(via, tc.method, tc.target, h)
				if got.Code != tc.wantStatus {
					t.Fatalf("%s: status %d, want %d: %s", via, got.Code, tc.wantStatus, got.Body)
				}
				if got.Header().Get("X-Request-Id") != h.Get("X-Request-Id") {
					t.Errorf("%s: X-Request-Id %q", via, got.Header().Get("X-Request-Id"))
				}
				if tc.wantStatus == 200 {
					checkAllowed(t, e, via, tc.target, got)
					continue
				}
				if proxy == nil {
					continue
				}
				for _, name := range []string{"WWW-Authenticate", "Retry-After", "Content-Type", "Cache-Control"} {
					if g, w := got.Header().Values(name), proxy.Header().Values(name); strings.Join(g, "|") != strings.Join(w, "|") {
						t.Errorf("%s: %s %q, the proxy sends %q", via, name, g, w)
					}
				}
				if got.Body.String() != proxy.Body.String() {
					t.Errorf("%s: body %q, the proxy sends %q", via, got.Body, proxy.Body)
				}
			}
		})
	}
}

// checkAllowed asserts an allowing decision: 200, empty body, and the
// inner token that the proxy forwards (none on a public path).
func checkAllowed(t *testing.T, e *env, via, target string, got *httptest.ResponseRecorder) {
	t.Helper()
	if got.Body.Len() != 0 {
		t.Errorf("%s: body %q, want none", via, got.Body)
	}
	authz := got.Header().Values("Authorization")
	path, _, _ := strings.Cut(target, "?")
	if path == "/healthz" {
		if len(authz) != 0 {
			t.Errorf("%s: Authorization on a public path", via)
		}
		return
	}
	up := e.up.last(t).Header.Values("Authorization")
	if len(authz) != 1 || len(up) != 1 || authz[0] != up[0] {
		t.Errorf("%s: Authorization %d values, the proxy forwards %d (equal: %v)", via, len(authz), len(up), len(authz) == 1 && len(up) == 1 && authz[0] == up[0])
	}
}

func TestAuthzEndpointRequests(t *testing.T) {
	e := newEnv(t, envOpts{})
	tok := e.outer()
	tests := []struct {
		name       string
		target     string
		header     http.Header
		wantStatus int
		wantReason Reason
	}{
		{"forward without X-Forwarded-Uri", AuthzForwardPath, http.Header{"X-Forwarded-Method": {"GET"}}, 400, ReasonForwardedHeaders},
		{"forward without X-Forwarded-Method", AuthzForwardPath, http.Header{"X-Forwarded-Uri": {"/orders"}}, 400, ReasonForwardedHeaders},
		{"X-Original-URI is never read", AuthzForwardPath, http.Header{"X-Forwarded-Method": {"GET"}, "X-Original-Uri": {"/healthz"}}, 400, ReasonForwardedHeaders},
		{"two X-Forwarded-Uri", AuthzForwardPath, http.Header{"X-Forwarded-Method": {"GET"}, "X-Forwarded-Uri": {"/healthz", "/orders/admin"}}, 400, ReasonForwardedHeaders},
		{"two X-Forwarded-Method", AuthzForwardPath, http.Header{"X-Forwarded-Method": {"GET", "POST"}, "X-Forwarded-Uri": {"/orders"}}, 400, ReasonForwardedHeaders},
		{"malformed method", AuthzForwardPath, http.Header{"X-Forwarded-Method": {"GET /x"}, "X-Forwarded-Uri": {"/orders"}}, 400, ReasonForwardedHeaders},
		{"empty method", AuthzForwardPath, http.Header{"X-Forwarded-Method": {""}, "X-Forwarded-Uri": {"/orders"}}, 400, ReasonForwardedHeaders},
		{"unknown endpoint", "/authz/other", nil, 404, ReasonNotFound},
		{"envoy prefix alone", AuthzEnvoyPrefix, nil, 404, ReasonNotFound},
		{"proxy path", "/orders", nil, 404, ReasonNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.logs.TakeAll()
			req := httptest.NewRequest(http.MethodGet, tc.target, nil)
			for k, v := range tc.header {
				req.Header[k] = v
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			rec := httptest.NewRecorder()
			e.sc.AuthzHandler().ServeHTTP(rec, req)
			if tc.wantStatus == 400 {
				checkFail(t, e, rec, wantFail{status: 400, code: codeInvalidRequest, reason: tc.wantReason})
			} else if rec.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d", rec.Code, tc.wantStatus)
			}
			if rec.Header().Get("Authorization") != "" {
				t.Error("Authorization on a refusal")
			}
			if n := counterValue(t, e.reg, "embedtoken_sidecar_requests_total", map[string]string{"reason": string(tc.wantReason)}); n == 0 {
				t.Errorf("reason %q not counted", tc.wantReason)
			}
		})
	}
	if e.up.count() != 0 {
		t.Errorf("upstream reached %d times", e.up.count())
	}
}

// TestAuthzDependencyDown: a key set that cannot be refreshed while the
// token's kid is unknown is 503 with Retry-After, never a renew.
func TestAuthzDependencyDown(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.idpJWKS.down(http.StatusInternalServerError)
	e.clock.Advance(11 * time.Second) // past jwks_min_refetch
	other := &signingKey{kid: "idp-2", alg: e.idpKey.alg, priv: testRSA(2)}
	tok := sign(other, hdr(other, "at+jwt"), e.outerClaims(e.chain()))
	h := http.Header{"Authorization": {"Bearer " + tok}}
	for _, via := range []string{"forward", "envoy"} {
		rec := e.authzVia(via, "GET", "/orders", h)
		checkFail(t, e, rec, wantFail{status: 503, code: codeUnavailable})
		if wa := rec.Header().Get("WWW-Authenticate"); wa != "" {
			t.Errorf("%s: challenge %q on 503", via, wa)
		}
	}
}

func TestAuthzMetricsAndLogs(t *testing.T) {
	e := newEnv(t, envOpts{})
	tok := e.outer()
	for range 2 {
		if rec := e.authzVia("forward", "GET", "/orders", http.Header{"Authorization": {"Bearer " + tok}}); rec.Code != 200 {
			t.Fatalf("status %d", rec.Code)
		}
	}
	e.authzVia("envoy", "GET", "/healthz", nil)
	if n := counterValue(t, e.reg, "embedtoken_sidecar_requests_total", map[string]string{"outcome": outcomeAllowed, "reason": string(ReasonOK)}); n != 2 {
		t.Errorf("allowed: %v, want 2", n)
	}
	if n := counterValue(t, e.reg, "embedtoken_sidecar_requests_total", map[string]string{"outcome": outcomePublic}); n != 1 {
		t.Errorf("public: %v, want 1", n)
	}
	if n := counterValue(t, e.reg, "embedtoken_sidecar_cache_hits_total", nil); n != 1 {
		t.Errorf("cache hits: %v, want 1", n)
	}
	e.authzVia("forward", "GET", "/orders", http.Header{"Authorization": {"Bearer " + tok[:len(tok)-3] + "xyz"}})
	for _, en := range e.logs.All() {
		if strings.Contains(fieldsText(en.Context), tok[len(tok)-20:]) || strings.Contains(en.Message, tok[:20]) {
			t.Fatalf("token in a log entry: %s", en.Message)
		}
	}
	if !e.reasonLogged(ReasonSignature) && !e.reasonLogged(ReasonMalformed) {
		t.Error("refusal not logged with its reason")
	}
	// The access log names the original request's path, not the endpoint's.
	paths := map[string]int{}
	for _, en := range e.logs.FilterLoggerName("unwrap.access").All() {
		p, _ := en.ContextMap()["path"].(string)
		paths[p]++
	}
	if paths["/orders"] != 3 || paths["/healthz"] != 1 || paths["/authz/forward"] != 0 {
		t.Errorf("access log paths %v, want /orders 3 times and /healthz once", paths)
	}
}

// TestDecisionOnlySidecar: a sidecar with authz_listen and no
// listen/upstream decides.
func TestDecisionOnlySidecar(t *testing.T) {
	e := newEnv(t, envOpts{})
	cfg := *e.cat.Sidecar
	cfg.Listen, cfg.Upstream, cfg.AuthzListen = "", "", "127.0.0.1:0"
	cat := *e.cat
	cat.Sidecar = &cfg
	sc, err := New(&cat, &Options{Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	sc.Start(t.Context())
	deadline := time.Now().Add(5 * time.Second)
	for !sc.Ready() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	req := httptest.NewRequest(http.MethodGet, AuthzEnvoyPrefix+"/orders", nil)
	req.Header.Set("Authorization", "Bearer "+e.outer())
	rec := httptest.NewRecorder()
	sc.AuthzHandler().ServeHTTP(rec, req)
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Authorization"), "Bearer ") {
		t.Fatalf("status %d, Authorization %t", rec.Code, rec.Header().Get("Authorization") != "")
	}
}
