package cmd

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckWithoutSecrets: check runs no block, so an unset env() secret
// (the phantom-token trust's, an exchange client's) is a warning, exit 0;
// the same configuration as a sidecar's needs its trust's secret only.
func TestCheckWithoutSecrets(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"c.hcl": strings.Replace(testMinter, "%d", "6144", 1) + `
trust "hydra-opaque" {
  issuer                  = "http://127.0.0.1:4444"
  introspection_url       = "http://127.0.0.1:4445/admin/oauth2/introspect"
  introspection_client_id = "sidecar"
  introspection_secret    = env("EMBEDTOKEN_TEST_NEVER_SET")
  claim                   = "ext.embedded_tokens"
}
exchange_client "orders-sidecar" {
  secret    = env("EMBEDTOKEN_TEST_NEVER_SET_EITHER")
  audiences = ["https://orders.test"]
}
`,
		"sidecar/orders.hcl": `sidecar {
  api      = "orders"
  listen   = "127.0.0.1:0"
  upstream = "http://127.0.0.1:1"
}
`,
	})
	code, out, errOut := run(t, "check", "--config", dir)
	if code != 0 || strings.Count(out+errOut, "Secret not resolved") != 2 {
		t.Errorf("check: exit %d, want 0 and two warnings:\n%s%s", code, out, errOut)
	}
	code, _, errOut = run(t, "sidecar", "--config", dir, "--config", filepath.Join(dir, "sidecar", "orders.hcl"))
	if code != 2 || !strings.Contains(errOut, "c.hcl:17:29: error:") || !strings.Contains(errOut, "c.hcl:21:15: warning: Secret not resolved") {
		t.Errorf("sidecar: exit %d, want 2 for its trust's secret only:\n%s", code, errOut)
	}
}
