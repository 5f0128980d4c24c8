package mint_test

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"sort"
	"testing/fstest"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/embedtoken/embedtoken/catalog"
	"github.com/embedtoken/embedtoken/mint"
)

// An issuer written in Go mints the embedded map for the access token it is
// about to sign, puts it under res.Claim, and publishes m.JWKS(). A sidecar
// verifies an inner token with go-jose and nothing but that JWKS.
func Example() {
	// A signing key (normally `embedtoken keygen`) and a catalog.
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	fsys := fstest.MapFS{
		"keys/k1.key.pem": {Data: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})},
		"catalog.hcl": {Data: []byte(`
minter {
  issuer     = "https://minter.example"
  jwks_url   = "https://minter.example/.well-known/jwks.json"
  active_key = "k1"
  signing_key "k1" {
    algorithm        = "EdDSA"
    private_key_file = "keys/k1.key.pem"
  }
}
api "orders" {
  audience = "https://orders.example"
  scopes   = ["orders:read", "orders:write"]
  claims   = ["tenant"]
  calls    = ["billing"]
}
api "billing" {
  audience = "https://billing.example"
  scopes   = ["billing:read"]
  lifetime = "1m"
  exposed  = false
}
api "admin" {
  audience = "https://admin.example"
  scopes   = ["admin"]
}
`)},
	}
	cat, _, diags := catalog.Load(fsys, []string{"."}, &catalog.Options{Keys: catalog.KeysRequire})
	if diags.HasErrors() {
		fmt.Println(diags)
		return
	}
	now := time.Date(2026, 11, 29, 14, 0, 0, 0, time.UTC)
	m, err := mint.New(cat, &mint.Options{Now: func() time.Time { return now }})
	if err != nil {
		fmt.Println(err)
		return
	}

	res, err := m.Mint(context.Background(), mint.Subject{
		Sub:      "user-42",
		ClientID: "web-app",
		Scopes:   []string{"openid", "orders:read", "billing:read"},
		Claims:   map[string]any{"tenant": "acme", "email": "not copied: orders does not declare it"},
		Exp:      now.Add(time.Hour),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("claim:", res.Claim)

	// Verify like a sidecar: go-jose, the published JWKS, an allow-list.
	var jwks jose.JSONWebKeySet
	if err := json.Unmarshal(m.JWKS(), &jwks); err != nil {
		fmt.Println(err)
		return
	}
	verify := func(name, tok string) map[string]any {
		parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.EdDSA})
		if err != nil {
			fmt.Println(err)
			return nil
		}
		kid := parsed.Headers[0].KeyID
		var claims map[string]any
		var std jwt.Claims
		if err := parsed.Claims(jwks.Key(kid)[0].Key, &claims, &std); err != nil {
			fmt.Println(err)
			return nil
		}
		if err := std.Validate(jwt.Expected{Issuer: "https://minter.example", AnyAudience: jwt.Audience{claims["aud"].(string)}, Time: now}); err != nil {
			fmt.Println(err)
			return nil
		}
		fmt.Printf("%s: aud=%s scope=%q tenant=%v lifetime=%s kid=%s typ=%s\n", name, claims["aud"], claims["scope"], claims["tenant"],
			std.Expiry.Time().Sub(std.IssuedAt.Time()), kid, parsed.Headers[0].ExtraHeaders[jose.HeaderType])
		return claims
	}
	var names []string
	for name := range res.Tokens {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		claims := verify(name, res.Tokens[name])
		if nested, ok := claims[res.Claim].(map[string]any); ok {
			verify(name+"/billing", nested["billing"].(string))
		}
	}
	// Output:
	// claim: embedded_tokens
	// orders: aud=https://orders.example scope="orders:read" tenant=acme lifetime=5m0s kid=k1 typ=at+jwt
	// orders/billing: aud=https://billing.example scope="billing:read" tenant=<nil> lifetime=1m0s kid=k1 typ=at+jwt
}
