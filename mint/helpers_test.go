package mint_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/embedtoken/embedtoken/catalog"
	"github.com/embedtoken/embedtoken/mint"
)

// testNow is the fixed clock of every test: the iat of the shipped Hydra
// sample, with nanoseconds, so that flooring matters.
var testNow = time.Date(2026, 11, 29, 14, 30, 35, 362717414, time.UTC)

func fixedNow() time.Time { return testNow }

const testAPIKey = "hook-key-3f9a1c2e7d"

// baseHCL is the test catalog:
//
//	orders ──> billing ──> ledger (not exposed)
//	       └─> inventory (not exposed; longer lifetime than orders)
//	       └─> status (no scopes)
//	profile, status (no scopes)
const baseHCL = `
minter {
  issuer           = "https://minter.test"
  jwks_url         = "http://127.0.0.1:4459/.well-known/jwks.json"
  active_key       = "%[1]s"
  default_lifetime = "5m"
  mint_for         = "%[2]s"
%[3]s
}

api "orders" {
  audience = "https://orders.test"
  scopes   = ["orders:read", "orders:write"]
  claims   = ["email", "tenant"]
  lifetime = "5m"
  calls    = ["billing", "inventory", "status"]
}

api "billing" {
  audience = "https://billing.test"
  scopes   = ["billing:read", "billing:charge"]
  claims   = ["tenant"]
  lifetime = "2m"
  calls    = ["ledger"]
}

api "ledger" {
  audience = "https://ledger.test"
  scopes   = ["ledger:append"]
  claims   = ["tenant"]
  lifetime = "1m"
  exposed  = false
}

api "inventory" {
  audience = "https://inventory.test"
  scopes   = ["inventory:read"]
  lifetime = "10m"
  exposed  = false
}

api "status" {
  audience = "https://status.test"
}

api "profile" {
  audience = "https://profile.test"
  scopes   = ["profile:read"]
  claims   = ["email", "name"]
  lifetime = "10m"
}

hook {
  listen        = "127.0.0.1:0"
  public_listen = "127.0.0.1:0"
  admin_listen  = "127.0.0.1:0"
  api_key       = env("HOOK_KEY")
  generic       = true
  timeout       = "2s"
}
`

// testKey is a generated signing key.
type testKey struct {
	kid string
	alg jose.SignatureAlgorithm
	key crypto.Signer
	pem []byte
}

func newTestKey(t testing.TB, kid string, alg jose.SignatureAlgorithm) testKey {
	t.Helper()
	var k crypto.Signer
	var err error
	switch alg {
	case jose.EdDSA:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	case jose.ES256:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.RS256, jose.PS256:
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		t.Fatalf("no key for %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{kid: kid, alg: alg, key: k, pem: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})}
}

// loadHCL loads the catalog src with keys, the first active unless active
// names another kid.
func loadHCL(t testing.TB, src string, keys ...testKey) *catalog.Catalog {
	t.Helper()
	fsys := fstest.MapFS{"main.hcl": {Data: []byte(src)}}
	for _, k := range keys {
		fsys["keys/"+k.kid+".key.pem"] = &fstest.MapFile{Data: k.pem, Mode: 0o600}
	}
	env := func(name string) (string, bool) {
		if name == "HOOK_KEY" {
			return testAPIKey, true
		}
		return "", false
	}
	cat, _, diags := catalog.Load(fsys, []string{"."}, &catalog.Options{Keys: catalog.KeysRequire, LookupEnv: env})
	if diags.HasErrors() {
		t.Fatalf("load: %s", diags.Error())
	}
	return cat
}

// testCatalog is baseHCL with the given keys (the active one named) and
// mint_for.
func testCatalog(t testing.TB, active, mintFor string, keys ...testKey) *catalog.Catalog {
	t.Helper()
	return loadHCL(t, testHCL(active, mintFor, keys...), keys...)
}

// testHCL is the source of testCatalog, for tests that edit it.
func testHCL(active, mintFor string, keys ...testKey) string {
	var blocks strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&blocks, "  signing_key %q {\n    algorithm = %q\n    private_key_file = \"keys/%s.key.pem\"\n  }\n", k.kid, k.alg, k.kid)
	}
	return fmt.Sprintf(baseHCL, active, mintFor, blocks.String())
}

// newMinter builds a Minter on the fixed clock.
func newMinter(t testing.TB, cat *catalog.Catalog, opts *mint.Options) *mint.Minter {
	t.Helper()
	if opts == nil {
		opts = &mint.Options{}
	}
	if opts.Now == nil {
		opts.Now = fixedNow
	}
	m, err := mint.New(cat, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// verifier checks tokens the way a sidecar would, with go-jose and the JWKS
// fetched over HTTP from the public handler: never with the minting code.
type verifier struct {
	t    testing.TB
	jwks jose.JSONWebKeySet
	url  string
}

// publicServer serves NewPublicMux for the minter current returns.
func publicServer(t testing.TB, current mint.Current) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(mint.NewPublicMux(current, nil))
	t.Cleanup(srv.Close)
	return srv
}

// fetchJWKS GETs the JWKS from srv.
func fetchJWKS(t testing.TB, srv *httptest.Server) *verifier {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + mint.JWKSPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET jwks: %d %s", resp.StatusCode, body)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=") {
		t.Errorf("jwks Cache-Control = %q, want a max-age", cc)
	}
	v := &verifier{t: t, url: srv.URL}
	if err := json.Unmarshal(body, &v.jwks); err != nil {
		t.Fatalf("jwks: %v", err)
	}
	return v
}

// verifierFor starts a public server for m and fetches its JWKS.
func verifierFor(t testing.TB, m *mint.Minter) *verifier {
	t.Helper()
	var p atomic.Pointer[mint.Minter]
	p.Store(m)
	return fetchJWKS(t, publicServer(t, p.Load))
}

// verify checks tok's signature against the JWKS by kid, the header (typ
// at+jwt, alg equal to the JWK's) and returns the claims.
func (v *verifier) verify(tok string) map[string]any {
	v.t.Helper()
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256, jose.RS256, jose.PS256})
	if err != nil {
		v.t.Fatalf("parse: %v", err)
	}
	h := parsed.Headers[0]
	if typ := h.ExtraHeaders[jose.HeaderType]; typ != "at+jwt" {
		v.t.Errorf("typ = %v, want at+jwt", typ)
	}
	keys := v.jwks.Key(h.KeyID)
	if len(keys) != 1 {
		v.t.Fatalf("kid %q: %d keys in the JWKS", h.KeyID, len(keys))
	}
	if keys[0].Algorithm != h.Algorithm || keys[0].Use != "sig" {
		v.t.Errorf("jwk alg/use = %s/%s, token alg %s", keys[0].Algorithm, keys[0].Use, h.Algorithm)
	}
	var claims map[string]any
	if err := parsed.Claims(keys[0].Key, &claims); err != nil {
		v.t.Fatalf("verify: %v", err)
	}
	return claims
}

// describeTree verifies tok and every token nested in it, checking the
// invariants every inner token has (iss, sub, client_id, iat, jti, exp
// never past bound), and returns one line per token keyed by its path
// ("orders/billing"): aud host, scope, exp relative to testNow, copied
// claims.
func (v *verifier) describeTree(path string, tok string, sub, client string, bound int64, jtis map[string]string, out map[string]string) {
	v.t.Helper()
	c := v.verify(tok)
	if c["iss"] != "https://minter.test" || c["sub"] != sub || c["client_id"] != client {
		v.t.Errorf("%s: iss/sub/client_id = %v/%v/%v", path, c["iss"], c["sub"], c["client_id"])
	}
	if iat := int64(c["iat"].(float64)); iat != testNow.Unix() {
		v.t.Errorf("%s: iat = %d, want %d", path, iat, testNow.Unix())
	}
	exp := int64(c["exp"].(float64))
	if exp > bound {
		v.t.Errorf("%s: exp %d outlives its enclosing token (%d)", path, exp, bound)
	}
	jti, _ := c["jti"].(string)
	if len(jti) != 22 {
		v.t.Errorf("%s: jti %q is not 128 bits base64url", path, jti)
	}
	if prev, ok := jtis[jti]; ok && prev != tok {
		v.t.Errorf("%s: jti %s reused by another token", path, jti)
	}
	jtis[jti] = tok
	if _, ok := c["nbf"]; ok {
		v.t.Errorf("%s: unexpected nbf", path)
	}
	aud, _ := c["aud"].(string)
	line := strings.TrimSuffix(strings.TrimPrefix(aud, "https://"), ".test")
	if sc, ok := c["scope"]; ok {
		line += fmt.Sprintf(" scope=%q", sc)
	}
	line += fmt.Sprintf(" exp=+%d", exp-testNow.Unix())
	var names []string
	for k := range c {
		switch k {
		case "iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope", "embedded_tokens":
		default:
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		b, _ := json.Marshal(c[k])
		line += fmt.Sprintf(" %s=%s", k, b)
	}
	out[path] = line
	if nested, ok := c["embedded_tokens"].(map[string]any); ok {
		if len(nested) == 0 {
			v.t.Errorf("%s: empty nested map should be omitted", path)
		}
		for name, t := range nested {
			v.describeTree(path+"/"+name, t.(string), sub, client, exp, jtis, out)
		}
	}
}

// describe verifies a whole embedded map.
func (v *verifier) describe(tokens map[string]string, sub, client string, outerExp int64) map[string]string {
	v.t.Helper()
	out := map[string]string{}
	jtis := map[string]string{}
	for name, tok := range tokens {
		v.describeTree(name, tok, sub, client, outerExp, jtis, out)
	}
	return out
}

// jwsHeader returns the decoded protected header of a compact JWS.
func jwsHeader(tok string) (string, error) {
	seg, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(seg)
	return string(b), err
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func sortStrings(s []string) { sort.Strings(s) }
