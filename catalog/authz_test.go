package catalog_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/embedtoken/embedtoken/catalog"
)

// TestDecisionSidecarWarnings: the warnings of a sidecar with decision
// endpoints (authz_listen, authz_grpc_listen), at their positions.
func TestDecisionSidecarWarnings(t *testing.T) {
	tests := []struct {
		name     string
		sidecar  string
		want     []string // substrings of the diagnostics
		wantNone []string
	}{
		{"loopback decision-only, no strip_headers", `authz_listen = "127.0.0.1:8442"`,
			nil, []string{"Decision endpoint reachable", "Headers not stripped"}},
		{"authz_listen beyond loopback without a client CA", `authz_listen = "0.0.0.0:8442"`,
			[]string{`c.hcl:13:18: warning: Decision endpoint reachable by clients; The authz_listen "0.0.0.0:8442"`}, nil},
		{"strip_headers on a decision-only sidecar", "authz_listen = \"127.0.0.1:8442\"\n  strip_headers = [\"Cookie\"]",
			[]string{`c.hcl:14:19: warning: Headers not stripped by HTTP decisions`, `proxy_set_header Cookie ""`}, nil},
		{"strip_headers with the proxy too", "listen = \"127.0.0.1:8443\"\n  upstream = \"http://127.0.0.1:8081\"\n  authz_listen = \"127.0.0.1:8442\"\n  strip_headers = [\"Cookie\"]",
			nil, []string{"Headers not stripped"}},
		{"strip_headers with gRPC decisions only", "authz_grpc_listen = \"127.0.0.1:8443\"\n  strip_headers = [\"Cookie\"]",
			nil, []string{"Headers not stripped"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := minterHCL + "api \"orders\" {\n  audience = \"https://orders.test\"\n  scopes = [\"orders\"]\n}\nsidecar {\n  api = \"orders\"\n  " + tc.sidecar + "\n}\n"
			fsys := fstest.MapFS{"c.hcl": {Data: []byte(src)}}
			_, _, diags := catalog.Load(fsys, []string{"c.hcl"}, nil)
			got := diagLines(diags)
			if diags.HasErrors() {
				t.Fatal(got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("want %q in:\n%s", w, got)
				}
			}
			for _, w := range tc.wantNone {
				if strings.Contains(got, w) {
					t.Errorf("unexpected %q in:\n%s", w, got)
				}
			}
		})
	}
}
