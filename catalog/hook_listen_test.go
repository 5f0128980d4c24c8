package catalog_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/embedtoken/embedtoken/catalog"
)

// TestHookPublicListen: public_listen is required only where the hook
// serves something on it (the minter's keys at jwks_url, the token
// exchange), as a positioned error that check and the hook report; a
// sidecar loading the same files is not held up by it.
func TestHookPublicListen(t *testing.T) {
	const fileMinter = `minter {
  issuer     = "https://minter.test"
  jwks_file  = "jwks.json"
  algorithms = ["EdDSA"]
}
`
	const trust = `trust "idp" {
  issuer     = "https://idp.test"
  jwks_file  = "idp.json"
  algorithms = ["RS256"]
}
exchange_client "c" {
  secret    = env("S", "s")
  audiences = ["https://orders.test"]
}
`
	const api = `api "orders" { audience = "https://orders.test" }
`
	const hook = `hook {
  listen  = "127.0.0.1:4457"
  api_key = env("K", "k-0123456789abcdef")
}
`
	tests := []struct {
		name string
		src  string
		mode catalog.KeyMode
		want string // "" for no error
	}{
		{"jwks_file, no exchange", fileMinter + api + hook, catalog.KeysCheck, ""},
		{"jwks_file, no exchange, signing", fileMinter + api + hook, catalog.KeysRequire, ""},
		{"jwks_url", minterHCL + api + hook, catalog.KeysCheck, "c.hcl:8:1: error: Missing public_listen; The hook needs public_listen (minter.jwks_url is set"},
		{"jwks_url, signing", minterHCL + api + hook, catalog.KeysRequire, "Missing public_listen"},
		{"exchange clients", fileMinter + api + trust + hook, catalog.KeysCheck, "(exchange_client blocks are declared"},
		{"sidecar does not serve the hook", minterHCL + api + hook, catalog.KeysSkip, ""},
		{"set", minterHCL + api + strings.Replace(hook, "{", "{\n  public_listen = \"127.0.0.1:4459\"", 1), catalog.KeysCheck, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{"c.hcl": {Data: []byte(tc.src)}, "jwks.json": {Data: []byte(`{"keys":[]}`)}, "idp.json": {Data: []byte(`{"keys":[]}`)}}
			cat, _, diags := catalog.Load(fsys, []string{"c.hcl"}, &catalog.Options{Keys: tc.mode})
			got := diagLines(diags)
			if tc.want == "" {
				if diags.HasErrors() {
					t.Fatalf("unexpected errors:\n%s", got)
				}
				if cat.Hook == nil {
					t.Fatal("no hook")
				}
				return
			}
			if !diags.HasErrors() || !strings.Contains(got, tc.want) {
				t.Errorf("got:\n%s\nwant a line containing %q", got, tc.want)
			}
		})
	}
}
