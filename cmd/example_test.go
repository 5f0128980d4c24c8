package cmd

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/embedtoken/embedtoken/catalog"
	"github.com/embedtoken/embedtoken/mint"
	"github.com/embedtoken/embedtoken/unwrap"
)

// Example_roundTrip wires the Go APIs as cmd does: mint narrows and signs
// the inner tokens, a development issuer wraps them in an outer token, and
// unwrap's sidecar verifies both and forwards only the inner token.
func Example_roundTrip() {
	dir, _ := os.MkdirTemp("", "embedtoken-example-")
	defer os.RemoveAll(dir)
	// Throwaway keys: the minter's and the issuer's.
	_, _, _ = catalog.WriteKey(filepath.Join(dir, "minter"), "m1", "EdDSA", 0)
	_, issuerJWKS, _ := catalog.WriteKey(filepath.Join(dir, "issuer"), "i1", "RS256", 0)

	// The minter's public JWKS, served as the hook's public listener does.
	var current atomic.Pointer[mint.Minter]
	jwks := httptest.NewServer(mint.NewPublicMux(current.Load, nil))
	defer jwks.Close()
	// The service behind the sidecar: it reports the token it received.
	var got string
	service := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Authorization")
	}))
	defer service.Close()

	hcl := `
minter {
  issuer   = "https://minter.example"
  jwks_url = "` + jwks.URL + mint.JWKSPath + `"
  signing_key "m1" {
    algorithm        = "EdDSA"
    private_key_file = "minter/m1.key.pem"
  }
}
api "orders" {
  audience = "https://orders.example"
  scopes   = ["orders:read"]
  claims   = ["tenant"]
}
api "profile" {
  audience = "https://profile.example"
  scopes   = ["profile:read"]
}
trust "dev" {
  issuer     = "https://issuer.example"
  jwks_file  = "` + issuerJWKS + `"
  algorithms = ["RS256"]
}
sidecar {
  api          = "orders"
  listen       = "127.0.0.1:0"
  upstream     = "` + service.URL + `"
  admin_listen = ""
}
`
	_ = os.WriteFile(filepath.Join(dir, "example.hcl"), []byte(hcl), 0o600)
	cat, _, diags := catalog.LoadFiles([]string{filepath.Join(dir, "example.hcl")}, &catalog.Options{Keys: catalog.KeysRequire})
	if diags.HasErrors() {
		fmt.Println(diags)
		return
	}

	// Issuer side: mint the embedded map, then the outer token.
	m, _ := mint.New(cat, nil)
	current.Store(m)
	subject := mint.Subject{Sub: "alice", ClientID: "web", Scopes: []string{"orders:read", "email"},
		Claims: map[string]any{"tenant": "acme", "email": "alice@example.com"}, Exp: time.Now().Add(time.Hour)}
	res, _ := m.Mint(context.Background(), subject)
	issuer, _ := mint.LoadDevIssuer(filepath.Join(dir, "issuer", "i1.key.pem"), mint.DevIssuerOptions{Issuer: "https://issuer.example"})
	outer, _ := issuer.Sign(subject, res)
	fmt.Println("embedded tokens:", strings.Join(keysOf(res.Tokens), " "))

	// Service side: the sidecar verifies outer and inner, forwards the inner.
	sc, _ := unwrap.New(cat, nil)
	sc.Start(context.Background())
	defer sc.Close()
	for !sc.Ready() {
		time.Sleep(10 * time.Millisecond)
	}
	sidecar := httptest.NewServer(sc.Handler())
	defer sidecar.Close()
	req, _ := http.NewRequest(http.MethodGet, sidecar.URL+"/orders/1", nil)
	req.Header.Set("Authorization", "Bearer "+outer)
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()

	inner := decodeClaims(strings.TrimPrefix(got, "Bearer "))
	fmt.Println("status:", resp.StatusCode)
	fmt.Println("the service got the outer token:", strings.Contains(got, outer))
	fmt.Println("aud:", inner["aud"], "scope:", inner["scope"], "tenant:", inner["tenant"], "email:", inner["email"])
	// Output:
	// embedded tokens: orders
	// status: 200
	// the service got the outer token: false
	// aud: https://orders.example scope: orders:read tenant: acme email: <nil>
}

func keysOf(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
