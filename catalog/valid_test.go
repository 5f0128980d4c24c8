package catalog_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/embedtoken/embedtoken/catalog"
)

const minterHCL = `
minter {
  issuer     = "https://minter.test"
  jwks_url   = "https://minter.test/jwks.json"
  algorithms = ["EdDSA"]
}
`

func TestLoadShipped(t *testing.T) {
	cat, _, diags := catalog.LoadFiles([]string{"../hcl", "../hcl/sidecars/orders.hcl"}, nil)
	if diags.HasErrors() {
		t.Fatalf("shipped hcl/ does not load:\n%s", diagLines(diags))
	}
	var names []string
	for _, a := range cat.APIs {
		names = append(names, a.Name)
	}
	if got, want := strings.Join(names, " "), "billing inventory ledger orders profile"; got != want {
		t.Errorf("APIs: got %q, want %q", got, want)
	}
	if got := cat.API("orders").Calls; !reflect.DeepEqual(got, []string{"billing", "inventory"}) {
		t.Errorf("orders calls: got %v", got)
	}
	if cat.Sidecar == nil || cat.Sidecar.API != "orders" || len(cat.Sidecar.Routes) != 1 {
		t.Fatalf("sidecar: got %+v", cat.Sidecar)
	}
	if cat.Hook == nil || cat.Hook.Listen != "127.0.0.1:4457" {
		t.Errorf("hook: got %+v", cat.Hook)
	}
	hydra := cat.Trusts[0]
	if hydra.Name != "hydra" || !reflect.DeepEqual(hydra.Claim, []string{"ext", "embedded_tokens"}) || !reflect.DeepEqual(hydra.Typ, []string{"jwt"}) {
		t.Errorf("hydra trust: got %+v", hydra)
	}
	if s := cat.Sizes(); s.OverBudget() {
		t.Errorf("shipped example is over its budget: %d > %d", s.EmbeddedBytes, s.Budget)
	}
	for _, k := range cat.Minter.SigningKeys {
		if k.Private != nil {
			t.Errorf("KeysSkip read the private key %s", k.ID)
		}
	}
}

func TestDefaults(t *testing.T) {
	fsys := fstest.MapFS{"c.hcl": {Data: []byte(minterHCL + `
api "orders" {
  audience = "https://orders.test"
}
sidecar {
  api      = "orders"
  listen   = "127.0.0.1:8443"
  upstream = "http://127.0.0.1:8080"
}
trust "idp" {
  issuer     = "https://idp.test"
  jwks_url   = "https://idp.test/jwks"
  algorithms = ["RS256"]
  typ        = ["application/JWT", ""]
  claim      = ["ext", "https://example.com/tokens"]
  token_lifetime = "5m"
}
trust "opaque" {
  issuer            = "https://idp.test"
  introspection_url = "https://idp.test/introspect"
  introspection_secret = env("SECRET")
}
hook {
  listen = "127.0.0.1:4457"
}
`)}}
	env := func(k string) (string, bool) {
		if k == "SECRET" {
			return "s3cret", true
		}
		return "", false
	}
	cat, _, diags := catalog.Load(fsys, []string{"c.hcl"}, &catalog.Options{LookupEnv: env})
	if diags.HasErrors() {
		t.Fatal(diagLines(diags))
	}
	if len(diags) != 0 {
		t.Errorf("unexpected warnings:\n%s", diagLines(diags))
	}
	m := cat.Minter
	checks := []struct {
		name      string
		got, want any
	}{
		{"minter claim", m.Claim, "embedded_tokens"},
		{"default lifetime", m.DefaultLifetime, 5 * time.Minute},
		{"budget", m.MaxEmbeddedBytes, 6144},
		{"outer base", m.OuterBaseBytes, 1024},
		{"mint_for", m.MintFor, catalog.MintForScope},
		{"algorithms", m.Algorithms, []jose.SignatureAlgorithm{jose.EdDSA}},
		{"api lifetime", cat.API("orders").Lifetime, 5 * time.Minute},
		{"api exposed", cat.API("orders").Exposed, true},
		{"by audience", cat.APIByAudience("https://orders.test"), cat.API("orders")},
		{"leeway", cat.Sidecar.Leeway, 30 * time.Second},
		{"max token", cat.Sidecar.MaxTokenBytes, 16384},
		{"cache", cat.Sidecar.CacheEntries, 10000},
		{"upstream timeout", cat.Sidecar.UpstreamTimeout, 30 * time.Second},
		{"shutdown", cat.Sidecar.ShutdownTimeout, 15 * time.Second},
		{"max connections", cat.Sidecar.MaxConnections, 2048},
		{"max requests", cat.Sidecar.MaxRequests, 1024},
		{"upstream idle", cat.Sidecar.UpstreamIdleTimeout, 60 * time.Second},
		{"hook max connections", cat.Hook.MaxConnections, 2048},
		{"trust typ", cat.Trusts[0].Typ, []string{"jwt", ""}},
		{"trust claim", cat.Trusts[0].Claim, []string{"ext", "https://example.com/tokens"}},
		{"jwks refresh", cat.Trusts[0].JWKSRefresh, 5 * time.Minute},
		{"min refetch", cat.Trusts[0].JWKSMinRefetch, 10 * time.Second},
		{"introspection", cat.Trusts[1].Introspection(), true},
		{"introspection claim default", cat.Trusts[1].Claim, []string{"embedded_tokens"}},
		{"introspection cache", cat.Trusts[1].IntrospectionCache, 60 * time.Second},
		{"introspection secret", cat.Trusts[1].IntrospectionSecret.Reveal(), "s3cret"},
		{"hook header", cat.Hook.APIKeyHeader, "X-Embedtoken-Key"},
		{"hook timeout", cat.Hook.Timeout, 2 * time.Second},
		{"hook key empty", cat.Hook.APIKey.Empty(), true},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestFolderMerge: a folder's *.hcl files are read in name order (not its
// subfolders) and merged with further --config files; file() and key paths
// resolve relative to the file that names them.
func TestFolderMerge(t *testing.T) {
	fsys := fstest.MapFS{
		"conf/b.hcl":           {Data: []byte(`api "b" { audience = "https://b.test" }`)},
		"conf/a.hcl":           {Data: []byte(minterHCL)},
		"conf/sub/ignored.hcl": {Data: []byte(`this is not HCL`)},
		"conf/notes.txt":       {Data: []byte(`nor this`)},
		"side/orders.hcl": {Data: []byte(`hook {
  listen  = "127.0.0.1:1"
  api_key = file("secrets/key.txt")
}`)},
		"side/secrets/key.txt": {Data: []byte("k3y-0123456789abcdef\n")},
	}
	cat, _, diags := catalog.Load(fsys, []string{"conf", "side/orders.hcl"}, nil)
	if diags.HasErrors() {
		t.Fatal(diagLines(diags))
	}
	if got, want := strings.Join(cat.Files, " "), "conf/a.hcl conf/b.hcl side/orders.hcl"; got != want {
		t.Errorf("files: got %q, want %q", got, want)
	}
	if got := cat.Hook.APIKey.Reveal(); got != "k3y-0123456789abcdef" {
		t.Errorf("file(): got %q", got)
	}
	if len(diags) != 0 {
		t.Errorf("file() of a secret should not warn: %s", diagLines(diags))
	}
}

func pkcs8(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// TestSigningKeys covers each key mode and each way a key file can be wrong.
func TestSigningKeys(t *testing.T) {
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaSmall, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	cfg := func(alg string) []byte {
		return []byte(`minter {
  issuer   = "https://minter.test"
  jwks_url = "https://minter.test/jwks.json"
  signing_key "k1" {
    algorithm        = "` + alg + `"
    private_key_file = "keys/k1.pem"
  }
}`)
	}
	tests := []struct {
		name     string
		alg      string
		key      []byte // nil: absent
		mode     catalog.KeyMode
		wantErr  string
		wantWarn string
	}{
		{"ed25519 ok", "EdDSA", pkcs8(t, edKey), catalog.KeysRequire, "", ""},
		{"es256 ok", "ES256", pkcs8(t, ecKey), catalog.KeysRequire, "", ""},
		{"rs256 ok", "RS256", pkcs8(t, rsaKey), catalog.KeysRequire, "", ""},
		{"ps256 ok", "PS256", pkcs8(t, rsaKey), catalog.KeysRequire, "", ""},
		{"absent, check warns", "EdDSA", nil, catalog.KeysCheck, "", "Private key file absent"},
		{"absent, signing fails", "EdDSA", nil, catalog.KeysRequire, "Unreadable private key", ""},
		{"absent, sidecar skips", "EdDSA", nil, catalog.KeysSkip, "", ""},
		{"EdDSA holding RSA", "EdDSA", pkcs8(t, rsaKey), catalog.KeysCheck, "Mismatched private key", ""},
		{"ES256 holding Ed25519", "ES256", pkcs8(t, edKey), catalog.KeysRequire, "Mismatched private key", ""},
		{"RSA too small", "RS256", pkcs8(t, rsaSmall), catalog.KeysRequire, "Mismatched private key", ""},
		{"not PEM", "EdDSA", []byte("hello"), catalog.KeysCheck, "Invalid private key", ""},
		{"PKCS#1", "RS256", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}), catalog.KeysRequire, "Invalid private key", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{"conf/c.hcl": {Data: cfg(tc.alg)}}
			if tc.key != nil {
				fsys["conf/keys/k1.pem"] = &fstest.MapFile{Data: tc.key}
			}
			cat, _, diags := catalog.Load(fsys, []string{"conf"}, &catalog.Options{Keys: tc.mode})
			got := diagLines(diags)
			if tc.wantErr == "" && diags.HasErrors() {
				t.Fatalf("unexpected errors:\n%s", got)
			}
			if tc.wantErr != "" && (!diags.HasErrors() || !strings.Contains(got, "conf/c.hcl:6:24: error: "+tc.wantErr)) {
				t.Fatalf("want error %q at conf/c.hcl:6:24, got:\n%s", tc.wantErr, got)
			}
			if tc.wantWarn != "" && !strings.Contains(got, "warning: "+tc.wantWarn) {
				t.Fatalf("want warning %q, got:\n%s", tc.wantWarn, got)
			}
			if tc.wantErr == "" && tc.key != nil && tc.mode == catalog.KeysRequire {
				k := cat.Minter.Key("k1")
				if k.Private == nil || k.Public.KeyID != "k1" || k.Public.Algorithm != tc.alg || k.Public.Use != "sig" || !k.Public.IsPublic() {
					t.Errorf("loaded key: %+v", k.Public)
				}
				if cat.Minter.ActiveKey != "k1" {
					t.Errorf("a lone key should be active, got %q", cat.Minter.ActiveKey)
				}
			}
			if strings.Contains(got, "PRIVATE KEY-----") {
				t.Errorf("a diagnostic leaks key material")
			}
		})
	}
}

func TestSecretRedaction(t *testing.T) {
	s := catalog.NewSecret("hunter2")
	for _, got := range []string{s.String(), s.GoString(), fmtAll(s)} {
		if strings.Contains(got, "hunter2") {
			t.Errorf("secret leaked: %q", got)
		}
	}
	if !s.Equal("hunter2") || s.Equal("hunter3") || catalog.NewSecret("").Equal("") {
		t.Errorf("Equal is wrong")
	}
}

func fmtAll(s catalog.Secret) string {
	b, _ := s.MarshalJSON()
	return string(b) + strings.Join([]string{
		sprintf("%v", s), sprintf("%+v", s), sprintf("%#v", s), sprintf("%s", s), sprintf("%q", s), sprintf("%x", s),
		sprintf("%v", struct{ S catalog.Secret }{s}),
	}, " ")
}
