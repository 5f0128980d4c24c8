package unwrap

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

func TestInspect(t *testing.T) {
	e := newEnv(t, envOpts{})
	tok := e.outer()
	n, err := Inspect(tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n.Issuer != idpIssuer || n.Checked || strings.Join(n.ClaimPath, ".") != "embedded_tokens" || len(n.Children) != 3 {
		t.Fatalf("root: %+v", n)
	}
	orders := n.Children[1]
	if orders.Name != "orders" || orders.Audience[0] != "https://orders.test" || len(orders.Children) != 1 ||
		orders.Children[0].Name != "billing" || orders.Children[0].Children[0].Name != "ledger" {
		t.Fatalf("orders: %+v", orders)
	}

	// With a key set holding both issuers' keys everything verifies; with
	// the minter's only, the root does not.
	both, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{e.idpKey.jwk(), e.minter.jwk()}})
	n, err = Inspect(tok, &InspectOptions{JWKS: [][]byte{both}})
	if err != nil || !n.Verified || !n.Children[1].Children[0].Verified {
		t.Fatalf("verify: %v %+v", err, n)
	}
	minterOnly, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{e.minter.jwk()}})
	n, _ = Inspect(tok, &InspectOptions{JWKS: [][]byte{minterOnly}})
	if n.Verified || n.VerifyErr == nil || !n.Children[0].Verified {
		t.Fatalf("minter only: %+v", n)
	}

	// Hydra's ext claim is found without configuration.
	c := e.outerClaims(nil)
	delete(c, "embedded_tokens")
	c["ext"] = map[string]any{"embedded_tokens": e.chain()}
	n, err = Inspect(sign(e.hydraKey, hdr(e.hydraKey, "JWT"), c), nil)
	if err != nil || strings.Join(n.ClaimPath, ".") != "ext.embedded_tokens" || len(n.Children) != 3 {
		t.Fatalf("hydra: %v %+v", err, n)
	}

	for _, bad := range []string{"", "abc", "a.b.c", strings.Replace(tok, ".", "..", 1)} {
		if _, err := Inspect(bad, nil); !errors.Is(err, ErrMalformed) {
			t.Errorf("Inspect(%.10q): %v", bad, err)
		}
	}
}

// TestInspectOtherClaims: claims that Node has no field for are returned,
// without the embedded map.
func TestInspectOtherClaims(t *testing.T) {
	e := newEnv(t, envOpts{})
	tests := []struct {
		name   string
		edit   func(map[string]any)
		header string
		want   string // the JSON of Node.Claims
	}{
		{name: "top-level map", edit: func(c map[string]any) {
			c["email"] = "a@example.com"
			c["act"] = map[string]any{"sub": "orders-sidecar"}
		}, header: "at+jwt", want: `{"act":{"sub":"orders-sidecar"},"email":"a@example.com"}`},
		{name: "none", edit: func(map[string]any) {}, header: "at+jwt", want: `null`},
		{name: "map under ext, other ext members kept", edit: func(c map[string]any) {
			c["ext"] = map[string]any{"embedded_tokens": c["embedded_tokens"], "tenant": "acme"}
			delete(c, "embedded_tokens")
		}, header: "JWT", want: `{"ext":{"tenant":"acme"}}`},
		{name: "map alone under ext", edit: func(c map[string]any) {
			c["ext"] = map[string]any{"embedded_tokens": c["embedded_tokens"]}
			delete(c, "embedded_tokens")
		}, header: "JWT", want: `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.outerClaims(e.chain())
			tt.edit(c)
			n, err := Inspect(sign(e.hydraKey, hdr(e.hydraKey, tt.header), c), nil)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(n.Claims)
			if string(got) != tt.want {
				t.Errorf("Claims = %s, want %s", got, tt.want)
			}
		})
	}
}
