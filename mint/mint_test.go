package mint_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/embedtoken/embedtoken/mint"
)

func TestMintNarrowing(t *testing.T) {
	k1 := newTestKey(t, "k1", jose.EdDSA)
	byScope := newMinter(t, testCatalog(t, "k1", "scope", k1), nil)
	byAudience := newMinter(t, testCatalog(t, "k1", "audience", k1), nil)
	hour := testNow.Add(time.Hour)
	claims := map[string]any{
		"email": "ada@example.test",
		"tenant": json.RawMessage(`{ "id": 7,
			"name": "acme" }`),
		"name": "Ada",
		// Reserved and undeclared names are never copied.
		"iss": "https://evil.test", "sub": "root", "aud": "x", "scope": "admin", "client_id": "evil",
		"embedded_tokens": map[string]string{"orders": "forged"}, "phone": "+1 555",
	}
	all := []string{"orders:read", "billing:read", "ledger:append", "inventory:read", "profile:read", "unrelated"}

	tests := []struct {
		name string
		m    *mint.Minter
		s    mint.Subject
		want map[string]string
	}{
		{
			name: "every scope granted",
			m:    byScope,
			s:    mint.Subject{Sub: "user-1", ClientID: "web", Scopes: all, Claims: claims, Exp: hour},
			want: map[string]string{
				"orders":                `orders scope="orders:read" exp=+300 email="ada@example.test" tenant={"id":7,"name":"acme"}`,
				"orders/billing":        `billing scope="billing:read" exp=+120 tenant={"id":7,"name":"acme"}`,
				"orders/billing/ledger": `ledger scope="ledger:append" exp=+60 tenant={"id":7,"name":"acme"}`,
				"orders/inventory":      `inventory scope="inventory:read" exp=+300`,
				"orders/status":         `status exp=+300`,
				"billing":               `billing scope="billing:read" exp=+120 tenant={"id":7,"name":"acme"}`,
				"billing/ledger":        `ledger scope="ledger:append" exp=+60 tenant={"id":7,"name":"acme"}`,
				"profile":               `profile scope="profile:read" exp=+600 email="ada@example.test" name="Ada"`,
				"status":                `status exp=+300`,
			},
		},
		{
			name: "one scope of orders: no billing, no inventory, no profile",
			m:    byScope,
			s:    mint.Subject{Sub: "user-1", ClientID: "web", Scopes: []string{"orders:write"}, Exp: hour},
			want: map[string]string{
				"orders":        `orders scope="orders:write" exp=+300`,
				"orders/status": `status exp=+300`,
				"status":        `status exp=+300`,
			},
		},
		{
			name: "no scope: only the API that declares none",
			m:    byScope,
			s:    mint.Subject{Sub: "user-1", ClientID: "web", Exp: hour},
			want: map[string]string{"status": `status exp=+300`},
		},
		{
			name: "non-exposed API granted alone is only nested, so absent",
			m:    byScope,
			s:    mint.Subject{Sub: "user-1", ClientID: "web", Scopes: []string{"ledger:append", "inventory:read"}, Exp: hour},
			want: map[string]string{"status": `status exp=+300`},
		},
		{
			name: "outer exp bounds every token, floored",
			m:    byScope,
			s:    mint.Subject{Sub: "user-1", ClientID: "web", Scopes: all, Exp: testNow.Add(90*time.Second + 500*time.Millisecond)},
			want: map[string]string{
				"orders":                `orders scope="orders:read" exp=+90`,
				"orders/billing":        `billing scope="billing:read" exp=+90`,
				"orders/billing/ledger": `ledger scope="ledger:append" exp=+60`,
				"orders/inventory":      `inventory scope="inventory:read" exp=+90`,
				"orders/status":         `status exp=+90`,
				"billing":               `billing scope="billing:read" exp=+90`,
				"billing/ledger":        `ledger scope="ledger:append" exp=+60`,
				"profile":               `profile scope="profile:read" exp=+90`,
				"status":                `status exp=+90`,
			},
		},
		{
			name: "null claim is absent",
			m:    byScope,
			s: mint.Subject{Sub: "user-1", ClientID: "web", Scopes: []string{"profile:read"}, Exp: hour,
				Claims: map[string]any{"email": nil, "name": json.RawMessage(`null`)}},
			want: map[string]string{
				"profile": `profile scope="profile:read" exp=+600`,
				"status":  `status exp=+300`,
			},
		},
		{
			name: "mint_for audience: scopes and audience both needed",
			m:    byAudience,
			s: mint.Subject{Sub: "user-1", ClientID: "web", Scopes: all, Exp: hour,
				Audience: []string{"https://orders.test", "https://billing.test", "https://profile.test"}},
			want: map[string]string{
				"orders":         `orders scope="orders:read" exp=+300`,
				"orders/billing": `billing scope="billing:read" exp=+120`,
				"billing":        `billing scope="billing:read" exp=+120`,
				"profile":        `profile scope="profile:read" exp=+600`,
			},
		},
		{
			name: "mint_for audience: no audience, no token",
			m:    byAudience,
			s:    mint.Subject{Sub: "user-1", ClientID: "web", Scopes: all, Exp: hour},
			want: map[string]string{},
		},
	}
	v := verifierFor(t, byScope)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v.t = t
			res, err := tc.m.Mint(context.Background(), tc.s)
			if err != nil {
				t.Fatal(err)
			}
			got := v.describe(res.Tokens, tc.s.Sub, tc.s.ClientID, tc.s.Exp.Unix())
			for path, w := range tc.want {
				if got[path] != w {
					t.Errorf("%s:\n got %s\nwant %s", path, got[path], w)
				}
			}
			for path, g := range got {
				if _, ok := tc.want[path]; !ok {
					t.Errorf("%s: unexpected token %s", path, g)
				}
			}
			if res.Claim != "embedded_tokens" {
				t.Errorf("claim = %q", res.Claim)
			}
			if want := mint.EmbeddedBytes(res.Claim, res.Tokens); res.EmbeddedBytes != want {
				t.Errorf("EmbeddedBytes = %d, want %d", res.EmbeddedBytes, want)
			}
		})
	}
}

// TestMintReuse: the same API with the same exp is one token, wherever it
// is nested; a different exp is a different token.
func TestMintReuse(t *testing.T) {
	k1 := newTestKey(t, "k1", jose.EdDSA)
	m := newMinter(t, testCatalog(t, "k1", "scope", k1), nil)
	v := verifierFor(t, m)
	res, err := m.Mint(context.Background(), mint.Subject{Sub: "u", ClientID: "c",
		Scopes: []string{"orders:read", "billing:read", "ledger:append"}, Exp: testNow.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	nested := v.verify(res.Tokens["orders"])["embedded_tokens"].(map[string]any)
	if nested["billing"] != res.Tokens["billing"] {
		t.Error("billing under orders (exp +120 both) was minted twice")
	}
	if nested["status"] != res.Tokens["status"] {
		t.Error("status under orders (exp +300 both) was minted twice")
	}
	// orders, billing, ledger, status: four signatures, not six.
	if len(res.Minted) != 4 {
		t.Errorf("minted %d tokens, want 4: %+v", len(res.Minted), res.Minted)
	}
	seen := map[string]bool{}
	for _, mt := range res.Minted {
		if seen[mt.JTI] {
			t.Errorf("jti %s twice", mt.JTI)
		}
		seen[mt.JTI] = true
		if mt.KID != "k1" || mt.Bytes == 0 {
			t.Errorf("minted %+v", mt)
		}
	}

	// Outer exp of +100 s: orders is +100, its status +100, but the top-level
	// status is also +100: reused; billing +100 under orders and top-level.
	short, err := m.Mint(context.Background(), mint.Subject{Sub: "u", ClientID: "c",
		Scopes: []string{"orders:read"}, Exp: testNow.Add(100 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(short.Minted); n != 2 {
		t.Errorf("minted %d, want 2 (orders, status)", n)
	}
	// Two mints never share a jti.
	for _, mt := range short.Minted {
		if seen[mt.JTI] {
			t.Errorf("jti %s reused across mints", mt.JTI)
		}
	}
}

func TestMintErrors(t *testing.T) {
	k1 := newTestKey(t, "k1", jose.EdDSA)
	m := newMinter(t, testCatalog(t, "k1", "scope", k1), nil)
	hour := testNow.Add(time.Hour)
	big := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name      string
		s         mint.Subject
		wantErr   error
		wantClaim string
	}{
		{"no sub", mint.Subject{ClientID: "c", Exp: hour}, mint.ErrInvalidSubject, ""},
		{"no client_id", mint.Subject{Sub: "u", Exp: hour}, mint.ErrInvalidSubject, ""},
		{"no exp", mint.Subject{Sub: "u", ClientID: "c"}, mint.ErrInvalidSubject, ""},
		{"expired", mint.Subject{Sub: "u", ClientID: "c", Exp: testNow.Add(-time.Second)}, mint.ErrExpired, ""},
		{"expires within this second", mint.Subject{Sub: "u", ClientID: "c", Exp: testNow.Add(500 * time.Millisecond)}, mint.ErrExpired, ""},
		{"claim of 1 KiB + 1", mint.Subject{Sub: "u", ClientID: "c", Exp: hour, Scopes: []string{"profile:read"},
			Claims: map[string]any{"name": big(1023)}}, mint.ErrClaimTooLarge, "name"},
		{"claim of exactly 1 KiB", mint.Subject{Sub: "u", ClientID: "c", Exp: hour, Scopes: []string{"profile:read"},
			Claims: map[string]any{"name": big(1022)}}, nil, ""},
		{"oversized claim no minted API copies", mint.Subject{Sub: "u", ClientID: "c", Exp: hour, Scopes: []string{"orders:read"},
			Claims: map[string]any{"name": big(5000)}}, nil, ""},
		{"raw claim that is not JSON", mint.Subject{Sub: "u", ClientID: "c", Exp: hour, Scopes: []string{"orders:read"},
			Claims: map[string]any{"email": json.RawMessage(`{"a":`)}}, mint.ErrClaimInvalid, "email"},
		{"raw claim with bytes that are not UTF-8", mint.Subject{Sub: "u", ClientID: "c", Exp: hour, Scopes: []string{"orders:read"},
			Claims: map[string]any{"email": json.RawMessage("\"a\xffb@example.com\"")}}, mint.ErrClaimInvalid, "email"},
		{"string claim with bytes that are not UTF-8 (encoded as U+FFFD)", mint.Subject{Sub: "u", ClientID: "c", Exp: hour, Scopes: []string{"orders:read"},
			Claims: map[string]any{"email": "a\xffb@example.com"}}, nil, ""},
		{"claim that does not marshal", mint.Subject{Sub: "u", ClientID: "c", Exp: hour, Scopes: []string{"orders:read"},
			Claims: map[string]any{"tenant": func() {}}}, mint.ErrClaimInvalid, "tenant"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := m.Mint(context.Background(), tc.s)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err == nil {
				return
			}
			if !mint.Denied(err) {
				t.Errorf("Denied(%v) = false", err)
			}
			if len(res.Tokens) != 0 {
				t.Errorf("tokens returned with an error: %v", res.Tokens)
			}
			var ce *mint.ClaimError
			if tc.wantClaim != "" && (!errors.As(err, &ce) || ce.Claim != tc.wantClaim) {
				t.Errorf("err = %v, want a ClaimError for %q", err, tc.wantClaim)
			}
			if strings.Contains(err.Error(), "xxxx") {
				t.Error("error text holds the claim value")
			}
		})
	}
}

func TestMintContextCanceled(t *testing.T) {
	k1 := newTestKey(t, "k1", jose.EdDSA)
	m := newMinter(t, testCatalog(t, "k1", "scope", k1), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := m.Mint(ctx, mint.Subject{Sub: "u", ClientID: "c", Exp: testNow.Add(time.Hour)})
	if !errors.Is(err, context.Canceled) || mint.Denied(err) {
		t.Fatalf("err = %v, want context.Canceled, not denied", err)
	}
}

func TestReserved(t *testing.T) {
	for _, name := range []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "client_id", "scope", "scp", "act", "may_act", "cnf", "azp", "typ", "embedded_tokens"} {
		if !mint.Reserved(name, "embedded_tokens") {
			t.Errorf("Reserved(%q) = false", name)
		}
	}
	for _, name := range []string{"email", "tenant", "ext"} {
		if mint.Reserved(name, "embedded_tokens") {
			t.Errorf("Reserved(%q) = true", name)
		}
	}
}

// TestPayloadCompact: the claims are serialized in a fixed order, without
// HTML escaping or whitespace, and the header is exactly alg, kid, typ.
func TestPayloadCompact(t *testing.T) {
	k1 := newTestKey(t, "k1", jose.EdDSA)
	m := newMinter(t, testCatalog(t, "k1", "scope", k1), nil)
	res, err := m.Mint(context.Background(), mint.Subject{Sub: "a<b>&c", ClientID: "web", Scopes: []string{"profile:read"},
		Claims: map[string]any{"name": "Ada & <Bob>", "email": "ada@example.test"}, Exp: testNow.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSigned(res.Tokens["profile"], []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	payload := string(jws.UnsafePayloadWithoutVerification())
	jti := res.Minted[0].JTI
	if res.Minted[0].API != "profile" {
		jti = res.Minted[1].JTI
	}
	want := `{"iss":"https://minter.test","aud":"https://profile.test","sub":"a<b>&c","client_id":"web",` +
		`"exp":1795963235,"iat":1795962635,"jti":"` + jti + `","scope":"profile:read","email":"ada@example.test","name":"Ada & <Bob>"}`
	if payload != want {
		t.Errorf("payload\n got %s\nwant %s", payload, want)
	}
	hdr, err := jwsHeader(res.Tokens["profile"])
	if err != nil {
		t.Fatal(err)
	}
	if hdr != `{"alg":"EdDSA","kid":"k1","typ":"at+jwt"}` {
		t.Errorf("header = %s", hdr)
	}
}
