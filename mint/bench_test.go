package mint_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/embedtoken/embedtoken/mint"
)

// benchCatalog declares k exposed APIs, each with two scopes and two claims,
// all granted: a Mint signs k tokens.
func benchCatalog(b *testing.B, k int, key testKey) (string, []string) {
	var src strings.Builder
	fmt.Fprintf(&src, `minter {
  issuer     = "https://minter.bench"
  jwks_url   = "https://minter.bench/.well-known/jwks.json"
  active_key = %q
  max_embedded_bytes = 1000000
  signing_key %q {
    algorithm        = %q
    private_key_file = "keys/%s.key.pem"
  }
}
`, key.kid, key.kid, key.alg, key.kid)
	var scopes []string
	for i := 0; i < k; i++ {
		fmt.Fprintf(&src, "api \"api%02d\" {\n  audience = \"https://api%02d.bench\"\n  scopes = [\"api%02d:read\", \"api%02d:write\"]\n  claims = [\"email\", \"tenant\"]\n}\n", i, i, i, i)
		scopes = append(scopes, fmt.Sprintf("api%02d:read", i))
	}
	return src.String(), scopes
}

// BenchmarkMint mints the embedded map for K APIs; BenchmarkRawSign signs K
// tokens of the same size with go-jose and the same key. Their ratio is
// mint's overhead over raw signing.
func BenchmarkMint(b *testing.B) {
	key := newTestKey(b, "bench", jose.EdDSA)
	for _, k := range []int{1, 5, 10, 20} {
		b.Run(fmt.Sprintf("K=%d", k), func(b *testing.B) {
			src, scopes := benchCatalog(b, k, key)
			m := newMinter(b, loadHCL(b, src, key), &mint.Options{Now: time.Now})
			s := mint.Subject{Sub: "5b0c8f1e-8d51-4b61-9a1d-4a1f0e3b2c7d", ClientID: "web-app", Scopes: scopes,
				Claims: map[string]any{"email": "ada@example.test", "tenant": "acme"}, Exp: time.Now().Add(time.Hour)}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := m.Mint(ctx, s)
				if err != nil || len(res.Tokens) != k {
					b.Fatal(err, len(res.Tokens))
				}
			}
		})
	}
}

func BenchmarkRawSign(b *testing.B) {
	key := newTestKey(b, "bench", jose.EdDSA)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: key.key, KeyID: key.kid}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		b.Fatal(err)
	}
	// A payload the size of one benchmark inner token.
	payload := []byte(`{"iss":"https://minter.bench","aud":"https://api00.bench","sub":"5b0c8f1e-8d51-4b61-9a1d-4a1f0e3b2c7d",` +
		`"client_id":"web-app","exp":1795963235,"iat":1795962935,"jti":"r5icox6_O6flP8OP_DsAwg","scope":"api00:read",` +
		`"email":"ada@example.test","tenant":"acme"}`)
	for _, k := range []int{1, 5, 10, 20} {
		b.Run(fmt.Sprintf("K=%d", k), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				for j := 0; j < k; j++ {
					jws, err := signer.Sign(payload)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := jws.CompactSerialize(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
