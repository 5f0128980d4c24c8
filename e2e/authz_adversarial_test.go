package e2e

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAdversarialAuthz attacks the HTTP decision endpoints of a real
// sidecar directly, as a client that reached them (or a gateway passing a
// client's headers on) would: spoofed, missing and repeated original-URI
// headers, encoded paths, query tokens, oversized header blocks and several
// Authorization headers. Each is refused with the proxy's answer, none
// yields an Authorization, nothing reaches the upstream, and the process
// stays healthy.
func TestAdversarialAuthz(t *testing.T) {
	a, authz := newAuthzAdv(t)
	outer, _ := a.outer()
	ask := func(t *testing.T, path string, h http.Header) answer {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+authz+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range h {
			req.Header[k] = v
		}
		r := a.do(t, req)
		if r.status != http.StatusOK && r.header.Get("Authorization") != "" {
			t.Errorf("a refusal carries an Authorization")
		}
		return r
	}
	fwd := func(method, uri string, more ...string) http.Header {
		h := http.Header{"Authorization": {"Bearer " + outer}, "X-Forwarded-Method": {method}, "X-Forwarded-Uri": {uri}}
		for i := 0; i+1 < len(more); i += 2 {
			h[http.CanonicalHeaderKey(more[i])] = append(h[http.CanonicalHeaderKey(more[i])], more[i+1])
		}
		return h
	}
	cases := []struct {
		name   string
		path   string
		header http.Header
		status int
		code   string
	}{
		{"missing X-Forwarded-Uri", "/authz/forward", http.Header{"Authorization": {"Bearer " + outer}, "X-Forwarded-Method": {"GET"}}, 400, "invalid_request"},
		{"missing X-Forwarded-Method", "/authz/forward", http.Header{"Authorization": {"Bearer " + outer}, "X-Forwarded-Uri": {"/orders/1"}}, 400, "invalid_request"},
		{"X-Original-URI instead", "/authz/forward", http.Header{"Authorization": {"Bearer " + outer}, "X-Forwarded-Method": {"GET"}, "X-Original-Uri": {"/orders/1"}}, 400, "invalid_request"},
		{"X-Forwarded-Uri twice (public first)", "/authz/forward", fwd("POST", "/healthz", "X-Forwarded-Uri", "/orders/admin/1"), 400, "invalid_request"},
		{"X-Forwarded-Method twice", "/authz/forward", fwd("GET", "/orders/admin/1", "X-Forwarded-Method", "POST"), 400, "invalid_request"},
		{"X-Original-URI spoofing a public path", "/authz/forward", fwd("POST", "/orders/admin/1", "X-Original-Uri", "/healthz", "X-Original-Method", "GET"), 403, "insufficient_scope"},
		{"lower-case method on a route", "/authz/forward", fwd("post", "/orders/admin/1"), 403, "insufficient_scope"},
		{"encoded slash", "/authz/forward", fwd("GET", "/orders%2Fadmin/1"), 400, "invalid_request"},
		{"encoded dots", "/authz/forward", fwd("GET", "/healthz/%2e%2e/orders/admin"), 400, "invalid_request"},
		{"dot segments", "/authz/forward", fwd("POST", "/healthz/../orders/admin/1"), 400, "invalid_request"},
		{"double slash", "/authz/forward", fwd("POST", "//orders/admin/1"), 400, "invalid_request"},
		{"backslash", "/authz/forward", fwd("POST", "/orders\\admin/1"), 400, "invalid_request"},
		{"semicolon", "/authz/forward", fwd("GET", "/healthz;/orders/admin"), 400, "invalid_request"},
		{"absolute-form URI", "/authz/forward", fwd("GET", "http://orders/healthz"), 400, "invalid_request"},
		{"asterisk", "/authz/forward", fwd("OPTIONS", "*"), 400, "invalid_request"},
		{"query token", "/authz/forward", fwd("GET", "/orders/1?access_token=abc"), 400, "invalid_request"},
		{"escaped query token", "/authz/forward", fwd("GET", "/healthz?%61ccess%5Ftoken=abc"), 400, "invalid_request"},
		{"several Authorization headers", "/authz/forward", fwd("GET", "/orders/1", "Authorization", "Bearer "+outer), 400, "invalid_request"},
		{"oversized header block", "/authz/forward", fwd("GET", "/orders/1", "X-Pad", strings.Repeat("a", 25000)), 431, "request_header_fields_too_large"},
		{"envoy: encoded slash", "/authz/envoy/orders%2Fadmin/1", http.Header{"Authorization": {"Bearer " + outer}}, 400, "invalid_request"},
		{"envoy: dot segments", "/authz/envoy/healthz/../orders", http.Header{"Authorization": {"Bearer " + outer}}, 400, "invalid_request"},
		{"envoy: double slash", "/authz/envoy//orders/1", http.Header{"Authorization": {"Bearer " + outer}}, 400, "invalid_request"},
		{"envoy: query token", "/authz/envoy/orders/1?access_token=abc", http.Header{"Authorization": {"Bearer " + outer}}, 400, "invalid_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := ask(t, tc.path, tc.header)
			if tc.status == 431 {
				if r.status != 431 || r.errCode != tc.code {
					t.Errorf("got %d %q, want 431 %s", r.status, r.errCode, tc.code)
				}
				return
			}
			a.refused(t, r, tc.status, tc.code)
		})
	}
	t.Run("raw bytes in X-Forwarded-Uri", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", authz, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		_, _ = c.Write([]byte("GET /authz/forward HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Forwarded-Method: POST\r\nX-Forwarded-Uri: /orders/adm\xe9n/1\r\nAuthorization: Bearer " + outer + "\r\n\r\n"))
		buf := make([]byte, 4096)
		n, _ := c.Read(buf)
		if as := rawAnswers(string(buf[:n])); len(as) != 1 || as[0].status != 400 {
			t.Errorf("got %q", buf[:n])
		}
	})
	t.Run("past the listener's header limit", func(t *testing.T) {
		r := ask(t, "/authz/forward", fwd("GET", "/orders/1", "X-Pad", strings.Repeat("a", 60000)))
		if r.status != 431 {
			t.Errorf("status %d, want 431", r.status)
		}
	})
	if got := a.up.take(); len(got) != 0 {
		t.Errorf("upstream reached %d times", len(got))
	}
	if log := a.p.log(); strings.Contains(log, outer[len(outer)-30:]) {
		t.Error("the token is in the sidecar's log")
	}
	a.healthy(t)
}
