package catalog_test

import (
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/embedtoken/embedtoken/catalog"
)

const chainHCL = minterHCL + `
api "orders" {
  audience = "https://orders.test"
  scopes   = ["orders"]
  lifetime = "1h"
  calls    = ["billing"]
}
api "billing" {
  audience = "https://billing.test"
  lifetime = "2m"
  calls    = ["ledger"]
  exposed  = false
}
api "ledger" {
  audience = "https://ledger.test"
  lifetime = "1m"
  exposed  = false
}
`

func TestLifetimeWarnings(t *testing.T) {
	tests := []struct {
		name     string
		trust    string
		want     []string // substrings of warnings
		wantNone string   // a warning summary that must not appear
	}{
		{"jwks trust without token_lifetime",
			`trust "idp" {
  issuer     = "https://idp.test"
  jwks_url   = "https://idp.test/jwks"
  algorithms = ["RS256"]
}`,
			[]string{`c.hcl:25:1: warning: Outer token lifetime unknown; The trust "idp" does not declare token_lifetime`},
			"Lifetime shorter than the outer token"},
		{"introspection trust needs none",
			`trust "idp" {
  issuer            = "https://idp.test"
  introspection_url = "https://idp.test/introspect"
}`,
			nil, "Outer token lifetime unknown"},
		{"nested lifetimes shorter: says what to do at the first hop",
			`trust "idp" {
  issuer         = "https://idp.test"
  jwks_url       = "https://idp.test/jwks"
  algorithms     = ["RS256"]
  token_lifetime = "1h"
}`,
			[]string{
				`c.hcl:16:14: warning: Lifetime shorter than the outer token; The API "billing" gets tokens for 2m0s, but the trust "idp" issues access tokens for 1h0m0s`,
				`configure an exchange block in the sidecar of "orders"`,
				`c.hcl:22:14: warning: Lifetime shorter than the outer token; The API "ledger"`,
				`set min_remaining there`,
			}, "Outer token lifetime unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{"c.hcl": {Data: []byte(chainHCL + tc.trust + "\n")}}
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
			if strings.Contains(got, tc.wantNone) {
				t.Errorf("unexpected %q in:\n%s", tc.wantNone, got)
			}
			if strings.Contains(got, `API "orders" gets`) {
				t.Errorf("orders lives as long as the outer token, got:\n%s", got)
			}
		})
	}
}

func TestSidecarLifetimeSettings(t *testing.T) {
	tests := []struct {
		name       string
		attrs      string
		wantLog    bool
		wantMinRem time.Duration
		wantErr    string
	}{
		{"defaults", "", true, 0, ""},
		{"set", "access_log = false\n  min_remaining = \"30s\"", false, 30 * time.Second, ""},
		{"bad duration", `min_remaining = "soon"`, true, 0, "Invalid duration"},
		{"negative", `min_remaining = "-1s"`, true, 0, "Duration out of range"},
		{"longer than the chain", `min_remaining = "1m"`, true, time.Minute, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := chainHCL + `sidecar {
  api      = "orders"
  listen   = "127.0.0.1:8443"
  upstream = "http://127.0.0.1:8080"
  ` + tc.attrs + `
}
`
			cat, _, diags := catalog.Load(fstest.MapFS{"c.hcl": {Data: []byte(src)}}, []string{"c.hcl"}, nil)
			got := diagLines(diags)
			if tc.wantErr != "" {
				if !strings.Contains(got, "error: "+tc.wantErr) {
					t.Fatalf("want error %q, got:\n%s", tc.wantErr, got)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(got)
			}
			if warned := strings.Contains(got, "warning: min_remaining too long"); warned != (tc.wantMinRem >= time.Minute) {
				t.Errorf("min_remaining %s: warned %v:\n%s", tc.wantMinRem, warned, got)
			}
			if cat.Sidecar.AccessLog != tc.wantLog || cat.Sidecar.MinRemaining != tc.wantMinRem {
				t.Errorf("got access_log %v min_remaining %s, want %v %s", cat.Sidecar.AccessLog, cat.Sidecar.MinRemaining, tc.wantLog, tc.wantMinRem)
			}
			if got := cat.ShortestLifetime("orders"); got != time.Minute {
				t.Errorf("ShortestLifetime(orders) = %s, want 1m", got)
			}
		})
	}
}
