package cognito_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/embedtoken/embedtoken/catalog"
	"github.com/embedtoken/embedtoken/internal/cognito"
	"github.com/embedtoken/embedtoken/mint"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

var testNow = time.Date(2026, 11, 29, 14, 30, 35, 0, time.UTC)

// testHCL: APIs for the scopes of the two fixtures. Cognito user tokens
// carry aws.cognito.signin.user.admin; resource-server scopes are URLs.
const testHCL = `minter {
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
  claims   = ["email", "email_verified"]
  lifetime = "10m"
}
api "orders" {
  audience = "https://orders.test"
  scopes   = ["https://api.example.com/orders.read"]
  calls    = ["billing"]
}
api "billing" {
  audience = "https://billing.test"
  scopes   = ["https://api.example.com/billing.charge"]
  lifetime = "2m"
  exposed  = false
}
`

// newHandler writes the catalog and a fresh key and returns the handler
// and the public key.
func newHandler(t testing.TB) (*cognito.Handler, ed25519.PublicKey) {
	t.Helper()
	dir := t.TempDir()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"c.hcl":      []byte(testHCL),
		"k1.key.pem": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		"jwks.json":  []byte(`{"keys":[]}`),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cat, _, diags := catalog.LoadFiles([]string{dir}, &catalog.Options{Keys: catalog.KeysRequire})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	m, err := mint.New(cat, &mint.Options{Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	return &cognito.Handler{Minter: m, Validity: time.Hour, Now: func() time.Time { return testNow }}, pub
}

// describe replaces every token of an embedded map (nested ones included)
// by what it verifies to.
func describe(t *testing.T, pub ed25519.PublicKey, tokens map[string]any, bound int64) {
	t.Helper()
	for api, v := range tokens {
		tok, _ := v.(string)
		jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.EdDSA})
		if err != nil {
			t.Fatalf("%s: %v", api, err)
		}
		payload, err := jws.Verify(pub)
		if err != nil {
			t.Fatalf("%s: does not verify: %v", api, err)
		}
		var c map[string]any
		if err := json.Unmarshal(payload, &c); err != nil {
			t.Fatal(err)
		}
		exp := int64(c["exp"].(float64))
		if exp > bound {
			t.Errorf("%s: exp %d outlives %d", api, exp, bound)
		}
		var names []string
		for k := range c {
			switch k {
			case "iss", "exp", "iat", "jti", "embedded_tokens":
			default:
				names = append(names, k)
			}
		}
		sort.Strings(names)
		d := fmt.Sprintf("exp=+%d", exp-testNow.Unix())
		for _, k := range names {
			b, _ := json.Marshal(c[k])
			d += fmt.Sprintf(" %s=%s", k, b)
		}
		if nested, ok := c["embedded_tokens"].(map[string]any); ok {
			describe(t, pub, nested, exp)
			b, _ := json.Marshal(nested)
			d += " nested=" + string(b)
		}
		tokens[api] = d
	}
}

// TestGolden: each fixture (testdata/SOURCES.md) through Invoke; the
// answer is the event with the response replaced, compared with
// <fixture>.golden once its tokens are replaced by what they verify to.
func TestGolden(t *testing.T) {
	for _, name := range []string{"user-v2_0", "m2m-v3_0"} {
		t.Run(name, func(t *testing.T) {
			h, pub := newHandler(t)
			in, err := os.ReadFile("testdata/" + name + ".json")
			if err != nil {
				t.Fatal(err)
			}
			out, err := h.Invoke(context.Background(), in)
			if err != nil {
				t.Fatalf("Invoke: %v", err)
			}
			var ev map[string]any
			if err := json.Unmarshal(out, &ev); err != nil {
				t.Fatal(err)
			}
			var orig map[string]any
			_ = json.Unmarshal(in, &orig)
			if fmt.Sprint(ev["request"]) != fmt.Sprint(orig["request"]) || ev["userName"] != orig["userName"] {
				t.Error("the request part of the event changed")
			}
			at := ev["response"].(map[string]any)["claimsAndScopeOverrideDetails"].(map[string]any)["accessTokenGeneration"].(map[string]any)
			add := at["claimsToAddOrOverride"].(map[string]any)
			if len(add) != 1 {
				t.Fatalf("claimsToAddOrOverride: %v, want only embedded_tokens", add)
			}
			describe(t, pub, add["embedded_tokens"].(map[string]any), testNow.Add(time.Hour).Unix())
			got, _ := json.MarshalIndent(ev["response"], "", "  ")
			got = append(got, '\n')
			golden := "testdata/" + name + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/cognito -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("response differs\ngot:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestRefused: events the handler refuses with an error (Cognito then
// issues no token), whose text names no input value.
func TestRefused(t *testing.T) {
	h, _ := newHandler(t)
	user, err := os.ReadFile("testdata/user-v2_0.json")
	if err != nil {
		t.Fatal(err)
	}
	edit := func(old, new string) []byte {
		if !bytes.Contains(user, []byte(old)) {
			t.Fatalf("%q not in the fixture", old)
		}
		return bytes.Replace(user, []byte(old), []byte(new), 1)
	}
	tests := []struct {
		name string
		body []byte
		want string
	}{
		{"duplicate sub", edit(`"sub": "a36036a8-9061-424d-a737-56d57dae7bc6",`, `"sub": "a36036a8-9061-424d-a737-56d57dae7bc6", "sub": "admin-sub",`), "duplicate"},
		{"oversized", edit(`"email": "testuser@example.com"`, `"email": "`+strings.Repeat("x", cognito.MaxEventBytes)+`"`), "over"},
		{"not an object", []byte(`[1]`), "object"},
		{"wrong types", edit(`"scopes": [`, `"scopes": "x", "other": [`), "shape"},
		{"version 1", edit(`"version": "2"`, `"version": "1"`), "version"},
		{"unknown trigger", edit(`"TokenGeneration_Authentication"`, `"TokenGeneration_Other"`), "triggerSource"},
		{"no client", edit(`"clientId": "1example23456789"`, `"clientId": ""`), "clientId"},
		{"no sub", edit(`"sub": "a36036a8-9061-424d-a737-56d57dae7bc6",`, ``), "sub"},
		{"claim over 1 KiB", edit(`"email": "testuser@example.com"`, `"email": "`+strings.Repeat("e", 1100)+`"`), "email"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := h.Invoke(context.Background(), tc.body)
			if err == nil || out != nil {
				t.Fatalf("got %s, want an error", out)
			}
			if !errors.Is(err, cognito.ErrEvent) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q: want ErrEvent mentioning %q", err, tc.want)
			}
			for _, secret := range []string{"admin-sub", "xxxxxxxx", "eeeeeeee", "TokenGeneration_Other"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error echoes input %q", secret)
				}
			}
		})
	}
	noValidity := *h
	noValidity.Validity = 0
	if _, err := noValidity.Invoke(context.Background(), user); err == nil {
		t.Error("no validity: minted anyway")
	}
}

// FuzzCognito: arbitrary events never panic, and whatever is minted stays
// within the event's grant: every token verifies, for a declared API whose
// scopes intersect the event's, never past now + validity.
func FuzzCognito(f *testing.F) {
	for _, name := range []string{"user-v2_0", "m2m-v3_0"} {
		if b, err := os.ReadFile("testdata/" + name + ".json"); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"version":"3","triggerSource":"TokenGeneration_ClientCredentials","callerContext":{"clientId":"c"},"request":{"scopes":["https://api.example.com/orders.read","admin"]}}`))
	h, pub := newHandler(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := h.Invoke(context.Background(), body)
		if err != nil {
			return
		}
		var ev struct {
			Request struct {
				Scopes []string `json:"scopes"`
			} `json:"request"`
			Response struct {
				Details struct {
					AT struct {
						Add map[string]map[string]any `json:"claimsToAddOrOverride"`
					} `json:"accessTokenGeneration"`
				} `json:"claimsAndScopeOverrideDetails"`
			} `json:"response"`
		}
		if err := json.Unmarshal(out, &ev); err != nil {
			t.Fatalf("answer: %v", err)
		}
		tokens := ev.Response.Details.AT.Add["embedded_tokens"]
		describe(t, pub, tokens, testNow.Add(time.Hour).Unix())
		for api, d := range tokens {
			s := d.(string)
			if !strings.Contains(s, `scope="`) {
				t.Fatalf("%s: a token without scope: %s", api, s)
			}
			scope := strings.Split(strings.Split(s, `scope="`)[1], `"`)[0]
			for _, sc := range strings.Fields(scope) {
				found := false
				for _, g := range ev.Request.Scopes {
					found = found || g == sc
				}
				if !found {
					t.Fatalf("%s: scope %q not granted", api, sc)
				}
			}
		}
	})
}
