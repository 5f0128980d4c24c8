package cmd

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/embedtoken/embedtoken/catalog"
)

// TestCheckIssuer: `check --issuer NAME` exits 1 when the catalog's worst
// case breaks a documented limit of that issuer, 0 when it does not, 2 for
// an unknown issuer; the JSON report carries the limits and warnings.
func TestCheckIssuer(t *testing.T) {
	const base = `minter {
  issuer     = "https://minter.test"
  jwks_file  = "jwks.json"
  algorithms = ["EdDSA"]
  CLAIM
  MINTFOR
}
api "orders" {
  audience = "https://orders.test"
  scopes   = ["orders:read"]
}
hook {
  listen  = "127.0.0.1:4457"
  api_key = env("K", "k")
  generic = GENERIC
  okta    = OKTA
  timeout = "TIMEOUT"
}
`
	conf := func(claim, mintFor, generic, okta, timeout string) string {
		src := strings.NewReplacer("CLAIM", claim, "MINTFOR", mintFor, "GENERIC", generic, "OKTA", okta, "TIMEOUT", timeout).Replace(base)
		return writeFiles(t, map[string]string{"c.hcl": src, "jwks.json": `{"keys":[]}`})
	}
	good := conf("", "", "true", "true", "2s")
	tests := []struct {
		name, issuer, dir string
		code              int
		want              string // in stdout
	}{
		{"hydra ok", "hydra", good, 0, "Issuer hydra: documented limits"},
		{"oidc-provider ok", "oidc-provider", good, 0, "EMBEDTOKEN_HOOK_TIMEOUT_MS"},
		{"okta ok", "okta", good, 0, "UNMODIFIED"},
		{"cognito ok", "cognito", good, 0, "claimsToAddOrOverride"},
		{"auth0 ok", "auth0", good, 0, "100 KB"},
		{"okta endpoint off", "okta", conf("", "", "true", "false", "2s"), 1, "hook.okta is false"},
		{"okta waits 3 s", "okta", conf("", "", "true", "true", "3s"), 1, "not below okta's wait of 3s"},
		{"okta reserved claim", "okta", conf(`claim = "groups"`, "", "true", "true", "2s"), 1, `minter.claim "groups"`},
		{"hydra retries", "hydra", conf("", "", "true", "true", "4s"), 1, "Hydra retries twice"},
		{"auth0 generic off", "auth0", conf("", "", "false", "true", "2s"), 1, "hook.generic is false"},
		{"auth0 slow hook", "auth0", conf("", "", "true", "true", "5s"), 1, "not below auth0's wait"},
		{"cognito audience", "cognito", conf("", `mint_for = "audience"`, "true", "true", "2s"), 1, "grant no audience"},
		{"cognito reserved claim", "cognito", conf(`claim = "token_use"`, "", "true", "true", "2s"), 1, `minter.claim "token_use"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, "check", "--config", tc.dir, "--issuer", tc.issuer)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d (want %d), stdout lacks %q:\n%s\n%s", code, tc.code, tc.want, out, errOut)
			}
		})
	}
	if code, _, errOut := run(t, "check", "--config", good, "--issuer", "keycloak"); code != 2 || !strings.Contains(errOut, "auth0, cognito, hydra, oidc-provider, okta") {
		t.Errorf("unknown issuer: exit %d: %s", code, errOut)
	}
	code, out, _ := run(t, "check", "--config", conf("", "", "true", "false", "2s"), "--issuer", "okta", "--format", "json")
	var rep checkReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 {
		t.Fatalf("json: exit %d: %v", code, err)
	}
	if rep.OK || rep.Issuer == nil || rep.Issuer.Name != "okta" || len(rep.Issuer.Limits) == 0 || len(rep.Issuer.Warnings) != 1 {
		t.Errorf("json issuer: %+v", rep.Issuer)
	}
}

// TestIssuerSizeLimits: a worst-case map over an issuer's claim size limit
// is a warning (the catalogs of the check tests are too small to reach it).
func TestIssuerSizeLimits(t *testing.T) {
	cat := &catalog.Catalog{Minter: &catalog.Minter{Claim: "embedded_tokens", MintFor: catalog.MintForScope}}
	for issuer, limit := range map[string]int{"okta": 256 * 1000, "auth0": 100 * 1024} {
		under := issuerReport(cat, issuer, catalog.SizeReport{EmbeddedBytes: limit * 4 / 3})
		over := issuerReport(cat, issuer, catalog.SizeReport{EmbeddedBytes: limit*4/3 + 8})
		if len(under.Warnings) != 0 || len(over.Warnings) != 1 || !strings.Contains(over.Warnings[0], "bytes of JSON") {
			t.Errorf("%s: under %v, over %v", issuer, under.Warnings, over.Warnings)
		}
	}
	if r := issuerReport(cat, "hydra", catalog.SizeReport{EmbeddedBytes: 1 << 30}); len(r.Warnings) != 0 {
		t.Errorf("hydra documents no size limit: %v", r.Warnings)
	}
}
