package unwrap

import (
	"net/http"
	"strings"
	"testing"
)

// TestForwardedHost: the client's Host reaches the upstream unless
// upstream_host = "upstream"; X-Forwarded-Host is the client's either way.
func TestForwardedHost(t *testing.T) {
	tests := []struct {
		name    string
		sidecar string
		want    func(e *env) string
	}{
		{name: "default: the client's", want: func(*env) string { return "example.com" }},
		{name: "client", sidecar: `upstream_host = "client"`, want: func(*env) string { return "example.com" }},
		{name: "upstream", sidecar: `upstream_host = "upstream"`, want: func(e *env) string { return strings.TrimPrefix(e.up.URL, "http://") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOpts{sidecar: tt.sidecar})
			h := http.Header{}
			h.Set("Authorization", "Bearer "+e.outer())
			if rec := e.do(http.MethodGet, "/orders/1", h); rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			got := e.up.last(t)
			if want := tt.want(e); got.Host != want {
				t.Errorf("Host = %q, want %q", got.Host, want)
			}
			if v := got.Header.Get("X-Forwarded-Host"); v != "example.com" {
				t.Errorf("X-Forwarded-Host = %q, want the client's", v)
			}
		})
	}
}
