package cmd

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/embedtoken/embedtoken/catalog"
	"github.com/embedtoken/embedtoken/mint"
)

func pemKey(t *testing.T) string {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

const hookTestHCL = `minter {
  issuer     = "https://minter.test"
  jwks_url   = "https://minter.test/.well-known/jwks.json"
  active_key = "ACTIVE"
  signing_key "k1" {
    algorithm        = "EdDSA"
    private_key_file = "keys/k1.key.pem"
  }
  signing_key "k2" {
    algorithm        = "EdDSA"
    private_key_file = "keys/k2.key.pem"
  }
}
api "orders" {
  audience = "https://orders.test"
  scopes   = ["orders:read"]
  claims   = ["tenant"]
  calls    = ["billing"]
}
api "billing" {
  audience = "https://billing.test"
  scopes   = ["billing:read"]
  exposed  = false
}
hook {
  listen        = "127.0.0.1:0"
  public_listen = "127.0.0.1:0"
  admin_listen  = "127.0.0.1:0"
  api_key       = "KEY"
}
`

func hookConfig(t *testing.T, active, key string) string {
	t.Helper()
	src := strings.NewReplacer("ACTIVE", active, "KEY", key).Replace(hookTestHCL)
	return writeFiles(t, map[string]string{
		"c.hcl": src, "keys/k1.key.pem": pemKey(t), "keys/k2.key.pem": pemKey(t), "dev-1.key.pem": pemKey(t),
	})
}

func TestParseClaimFlags(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"tenant=acme", `"acme"`, false},
		{"n=5", `5`, false},
		{"ok=true", `true`, false},
		{`roles=["a","b"]`, `["a","b"]`, false},
		{`s="quoted"`, `"quoted"`, false},
		{"eq=a=b", `"a=b"`, false},
		{"empty=", `""`, false},
		{"novalue", "", true},
		{"=v", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseClaimFlags([]string{tc.in})
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			k, _, _ := strings.Cut(tc.in, "=")
			b, _ := json.Marshal(got[k])
			if string(b) != tc.want {
				t.Errorf("got %s, want %s", b, tc.want)
			}
		})
	}
}

func TestMintCommand(t *testing.T) {
	dir := hookConfig(t, "k1", "secret-key-0123456789")
	code, out, errOut := run(t, "mint", "--config", dir, "--sub", "u1", "--client-id", "web", "--scope", "orders:read billing:read", "--claim", "tenant=acme")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(out), &m); err != nil || len(m) != 1 || strings.Count(m["orders"], ".") != 2 {
		t.Fatalf("output %q: %v", out, err)
	}

	code, out, errOut = run(t, "mint", "--config", dir, "--sub", "u1", "--client-id", "web", "--scope", "orders:read",
		"--outer-key", filepath.Join(dir, "dev-1.key.pem"), "--outer-issuer", "https://dev.test", "--outer-lifetime", "10m",
		"--outer-audience", "https://gw.test")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	parts := strings.Split(strings.TrimSpace(out), ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", out)
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	if string(hdr) != `{"alg":"EdDSA","kid":"dev-1","typ":"at+jwt"}` {
		t.Errorf("header %s", hdr)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c map[string]any
	_ = json.Unmarshal(payload, &c)
	if c["iss"] != "https://dev.test" || c["aud"] != "https://gw.test" || c["scope"] != "orders:read" ||
		c["exp"].(float64)-c["iat"].(float64) != 600 {
		t.Errorf("outer claims %v", c)
	}
	if et, _ := c["embedded_tokens"].(map[string]any); et["orders"] == nil {
		t.Errorf("no embedded map: %v", c)
	}

	// Without --outer-audience, aud (required by RFC 9068) names the APIs
	// the token carries inner tokens for.
	code, out, errOut = run(t, "mint", "--config", dir, "--sub", "u1", "--client-id", "web", "--scope", "orders:read",
		"--outer-key", filepath.Join(dir, "dev-1.key.pem"), "--outer-issuer", "https://dev.test")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	payload, _ = base64.RawURLEncoding.DecodeString(strings.Split(strings.TrimSpace(out), ".")[1])
	c = nil
	_ = json.Unmarshal(payload, &c)
	if aud := fmt.Sprint(c["aud"]); !strings.Contains(aud, "https://orders.test") {
		t.Errorf("default aud: %v", c["aud"])
	}

	for _, args := range [][]string{
		{"mint", "--config", dir, "--sub", "u", "--client-id", "c", "--claim", "iss=evil"},
		{"mint", "--config", dir, "--sub", "u", "--client-id", "c", "--claim", `act={"sub":"x"}`},
		{"mint", "--config", dir, "--sub", "u", "--client-id", "c", "--claim", "embedded_tokens={}"},
		{"mint", "--config", dir, "--client-id", "web"},
		{"mint", "--config", dir, "--sub", "u"},
		{"mint", "--config", dir, "--sub", "u", "--client-id", "c", "--outer-key", "x.pem"},
		{"mint", "--config", dir, "--sub", "u", "--client-id", "c", "--claim", "bad"},
		{"mint", "--sub", "u", "--client-id", "c"},
	} {
		if code, _, _ := run(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

func TestHookRefusesToStart(t *testing.T) {
	if code, _, errOut := run(t, "hook", "--config", hookConfig(t, "k1", "")); code != 2 || !strings.Contains(errOut, "api_key is empty") {
		t.Errorf("empty api_key: exit %d: %s", code, errOut)
	}
	noHook := writeFiles(t, map[string]string{"c.hcl": strings.Replace(testMinter, "%d", "6144", 1)})
	if code, _, _ := run(t, "hook", "--config", noHook); code != 2 {
		t.Errorf("no hook block / no keys: exit %d, want 2", code)
	}
}

// TestHookReload: a reload swaps the minter; a broken configuration keeps
// the last good one and logs its diagnostics.
func TestHookReload(t *testing.T) {
	dir := hookConfig(t, "k1", "secret-key-0123456789")
	core, logs := observer.New(zap.DebugLevel)
	metrics, err := mint.NewMetrics(newRegistry())
	if err != nil {
		t.Fatal(err)
	}
	rt := &hookRuntime{configs: []string{dir}, log: zap.New(core), metrics: metrics}
	rt.reloads = newReloadCounter()
	if rt.reload() == nil || rt.cur.Load().KeyID() != "k1" {
		t.Fatal("first load failed")
	}
	first := rt.cur.Load()

	cfg := filepath.Join(dir, "c.hcl")
	good, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, append(good, []byte("api \"broken\" {\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if rt.reload() != nil || rt.cur.Load() != first {
		t.Fatal("a broken configuration replaced the last good one")
	}
	if logs.FilterMessage("configuration diagnostic").Len() == 0 {
		t.Error("diagnostics not logged")
	}

	// An empty api_key is also refused on reload.
	_ = os.WriteFile(cfg, []byte(strings.Replace(string(good), `"secret-key-0123456789"`, `""`, 1)), 0o644)
	if rt.reload() != nil || rt.cur.Load() != first {
		t.Fatal("an empty api_key was accepted on reload")
	}

	// Rotation: k2 becomes active.
	_ = os.WriteFile(cfg, []byte(strings.Replace(string(good), `active_key = "k1"`, `active_key = "k2"`, 1)), 0o644)
	if rt.reload() == nil || rt.cur.Load().KeyID() != "k2" {
		t.Fatal("rotation not applied")
	}
	for _, e := range logs.All() {
		for _, f := range e.Context {
			if strings.Contains(f.String, "secret-key-0123456789") {
				t.Errorf("log holds the api key: %v", e)
			}
		}
	}

	// The watcher sees a change to a key file.
	cat, _, _ := catalog.LoadFiles([]string{dir}, &catalog.Options{Keys: catalog.KeysRequire})
	before := fileStamps(watchList(cat, []string{dir}))
	_ = os.WriteFile(filepath.Join(dir, "keys", "k2.key.pem"), []byte(pemKey(t)+"\n"), 0o600)
	if fileStamps(watchList(cat, []string{dir})) == before {
		t.Error("a changed key file went unnoticed")
	}
}
