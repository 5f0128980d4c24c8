package mint_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/embedtoken/embedtoken/mint"
)

// TestAlgorithms: every supported algorithm signs tokens that verify with
// the published JWKS, the header naming the key.
func TestAlgorithms(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256, jose.RS256, jose.PS256} {
		t.Run(string(alg), func(t *testing.T) {
			k := newTestKey(t, "key-"+strings.ToLower(string(alg)), alg)
			m := newMinter(t, testCatalog(t, k.kid, "scope", k), nil)
			v := verifierFor(t, m)
			res, err := m.Mint(context.Background(), mint.Subject{Sub: "u", ClientID: "c", Scopes: []string{"orders:read"}, Exp: testNow.Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			v.describe(res.Tokens, "u", "c", testNow.Unix()+3600)
			hdr, _ := jwsHeader(res.Tokens["orders"])
			if want := `{"alg":"` + string(alg) + `","kid":"` + k.kid + `","typ":"at+jwt"}`; hdr != want {
				t.Errorf("header %s, want %s", hdr, want)
			}
		})
	}
}

// TestKeyRotation: after rotating to a new active key, the JWKS publishes
// both keys, new tokens carry the new kid, and a token signed by the
// retired key still verifies against the published JWKS, fetched over HTTP
// from the same public server whose minter was swapped.
func TestKeyRotation(t *testing.T) {
	k1 := newTestKey(t, "2026-10", jose.EdDSA)
	k2 := newTestKey(t, "2026-11", jose.ES256)
	var cur atomic.Pointer[mint.Minter]
	cur.Store(newMinter(t, testCatalog(t, "2026-10", "scope", k1), nil))
	srv := publicServer(t, cur.Load)
	s := mint.Subject{Sub: "u", ClientID: "c", Scopes: []string{"orders:read"}, Exp: testNow.Add(time.Hour)}

	old, err := cur.Load().Mint(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if v := fetchJWKS(t, srv); len(v.jwks.Keys) != 1 {
		t.Fatalf("before rotation: %d keys", len(v.jwks.Keys))
	}

	// Rotate: k2 becomes active, k1 stays declared (retired, published).
	cur.Store(newMinter(t, testCatalog(t, "2026-11", "scope", k1, k2), nil))
	v := fetchJWKS(t, srv)
	if len(v.jwks.Keys) != 2 || len(v.jwks.Key("2026-10")) != 1 || len(v.jwks.Key("2026-11")) != 1 {
		t.Fatalf("after rotation: %+v", v.jwks.Keys)
	}
	v.describe(old.Tokens, "u", "c", testNow.Unix()+3600) // the retired key still verifies

	fresh, err := cur.Load().Mint(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	v.describe(fresh.Tokens, "u", "c", testNow.Unix()+3600)
	if hdr, _ := jwsHeader(fresh.Tokens["orders"]); !strings.Contains(hdr, `"kid":"2026-11"`) || !strings.Contains(hdr, `"alg":"ES256"`) {
		t.Errorf("new token header %s", hdr)
	}

	// Once the retired key is removed, its tokens no longer verify.
	cur.Store(newMinter(t, testCatalog(t, "2026-11", "scope", k2), nil))
	if v := fetchJWKS(t, srv); len(v.jwks.Key("2026-10")) != 0 {
		t.Error("removed key still published")
	}
}

// TestNoActiveKey: a minter block without a usable active key is refused.
func TestNoActiveKey(t *testing.T) {
	k1 := newTestKey(t, "k1", jose.EdDSA)
	cat := testCatalog(t, "k1", "scope", k1)
	cp := *cat.Minter
	cp.ActiveKey = "nope"
	cat2 := *cat
	cat2.Minter = &cp
	if _, err := mint.New(&cat2, nil); err == nil {
		t.Fatal("New accepted an unknown active key")
	}
}

// TestLogsHoldNoSecrets: every log entry of a successful mint, of auth
// failures and of bad requests — at debug level — holds no token, no API key,
// no private key and not the subject itself.
func TestLogsHoldNoSecrets(t *testing.T) {
	k1 := newTestKey(t, "k1", jose.EdDSA)
	e := newHookEnv(t, testCatalog(t, "k1", "scope", k1))
	fixture := readFixture(t, "hydra-refresh.json")
	_, body := e.post("/hooks/hydra", testAPIKey, fixture)
	var ans hydraAnswer
	_ = json.Unmarshal(body, &ans)
	var tokens map[string]string
	_ = json.Unmarshal(ans.Session.AccessToken["embedded_tokens"], &tokens)
	if len(tokens) == 0 {
		t.Fatalf("nothing minted: %s", body)
	}
	wrongKey := "wrong-" + testAPIKey
	e.post("/hooks/hydra", wrongKey, fixture)
	e.post("/hooks/hydra", testAPIKey, []byte(`{"session": "`+testAPIKey+`"`))
	e.post("/hooks/generic", testAPIKey, []byte(`{"sub":"user-42","client_id":"c","scope":"orders:read","exp":1}`))
	_, gbody := e.post("/hooks/generic", testAPIKey, []byte(`{"sub":"user-42","client_id":"c","scope":"orders:read","exp":`+itoa(testNow.Unix()+60)+`}`))

	secrets := []string{testAPIKey, wrongKey, string(k1.pem), "user-42"}
	for _, tok := range tokens {
		secrets = append(secrets, tok, tok[strings.LastIndexByte(tok, '.')+1:])
	}
	var gen struct {
		Tokens map[string]string `json:"tokens"`
	}
	_ = json.Unmarshal(gbody, &gen)
	for _, tok := range gen.Tokens {
		secrets = append(secrets, tok)
	}
	entries := e.logs.All()
	if len(entries) < 4 {
		t.Fatalf("only %d log entries: the test proves nothing", len(entries))
	}
	enc := zapcore.NewJSONEncoder(zap.NewDevelopmentEncoderConfig())
	for _, entry := range entries {
		buf, err := enc.EncodeEntry(entry.Entry, entry.Context)
		if err != nil {
			t.Fatal(err)
		}
		line := buf.String()
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("log entry holds a secret (%.12s...): %s", s, line)
			}
		}
	}
}

// TestDevIssuer: the development issuer's outer token is RFC 9068-shaped and
// carries the embedded map under minter.claim.
func TestDevIssuer(t *testing.T) {
	k1 := newTestKey(t, "k1", jose.EdDSA)
	outerKey := newTestKey(t, "dev-1", jose.RS256)
	m := newMinter(t, testCatalog(t, "k1", "scope", k1), nil)
	d, err := mint.NewDevIssuer(outerKey.key, jose.RS256, mint.DevIssuerOptions{
		Issuer: "https://dev-issuer.test", KeyID: "dev-1", Audience: []string{"https://gateway.test"}, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	s := mint.Subject{Sub: "u", ClientID: "c", Scopes: []string{"orders:read", "extra"}, Exp: d.Exp(),
		Claims: map[string]any{"email": "a@b.test", "iss": "evil"}}
	res, err := m.Mint(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	outer, err := d.Sign(s, res)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSigned(outer, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := jws.Verify(outerKey.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	_ = json.Unmarshal(payload, &c)
	if c["iss"] != "https://dev-issuer.test" || c["sub"] != "u" || c["aud"] != "https://gateway.test" ||
		c["client_id"] != "c" || c["scope"] != "orders:read extra" || c["email"] != "a@b.test" ||
		c["exp"].(float64) != float64(testNow.Unix()+3600) || c["iat"].(float64) != float64(testNow.Unix()) || c["jti"] == "" {
		t.Errorf("claims %v", c)
	}
	et, _ := c["embedded_tokens"].(map[string]any)
	if et["orders"] != res.Tokens["orders"] {
		t.Errorf("embedded map %v", et)
	}
	if hdr, _ := jwsHeader(outer); hdr != `{"alg":"RS256","kid":"dev-1","typ":"at+jwt"}` {
		t.Errorf("header %s", hdr)
	}
}
