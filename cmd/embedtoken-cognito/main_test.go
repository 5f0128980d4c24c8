package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInvoke runs the command as a user would try it locally: the
// configuration from the environment, a documented sample event on stdin,
// the event with its response on stdout. It is also the import check: this
// binary, not `embedtoken`, links aws-lambda-go.
func TestInvoke(t *testing.T) {
	dir := t.TempDir()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	files := map[string]string{
		"c.hcl": `minter {
  issuer     = "https://minter.test"
  jwks_file  = "jwks.json"
  active_key = "k1"
  signing_key "k1" {
    algorithm        = "EdDSA"
    private_key_file = "k1.key.pem"
  }
}
api "account" {
  audience = "https://account.test"
  scopes   = ["aws.cognito.signin.user.admin"]
}
`,
		"k1.key.pem": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"jwks.json":  `{"keys":[]}`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	event, err := os.ReadFile("../../internal/cognito/testdata/user-v2_0.json")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("EMBEDTOKEN_CONFIG", dir)
	t.Setenv("EMBEDTOKEN_ACCESS_TOKEN_VALIDITY", "1h")
	var out, errb bytes.Buffer
	if code := run([]string{"invoke"}, bytes.NewReader(event), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var ev struct {
		Response struct {
			D struct {
				AT struct {
					Add map[string]map[string]string `json:"claimsToAddOrOverride"`
				} `json:"accessTokenGeneration"`
			} `json:"claimsAndScopeOverrideDetails"`
		} `json:"response"`
	}
	if err := json.Unmarshal(out.Bytes(), &ev); err != nil {
		t.Fatal(err)
	}
	if tok := ev.Response.D.AT.Add["embedded_tokens"]["account"]; strings.Count(tok, ".") != 2 {
		t.Errorf("no account token in %s", out.String())
	}

	// Refused event: exit 1, nothing on stdout.
	out.Reset()
	if code := run([]string{"invoke"}, strings.NewReader(`{"version":"1"}`), &out, &errb); code != 1 || out.Len() != 0 {
		t.Errorf("refused event: exit %d, stdout %q", code, out.String())
	}
	// Without the validity: a configuration error.
	t.Setenv("EMBEDTOKEN_ACCESS_TOKEN_VALIDITY", "")
	if code := run([]string{"invoke"}, bytes.NewReader(event), &out, &errb); code != 2 {
		t.Errorf("no validity: exit %d, want 2", code)
	}
}
