package mint_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/embedtoken/embedtoken/catalog"
	"github.com/embedtoken/embedtoken/mint"
)

// fuzzHook is one hook handler under fuzzing, with the key that checks
// what it mints.
type fuzzHook struct {
	cat     *catalog.Catalog
	handler http.Handler
	pub     any
}

// FuzzHook feeds arbitrary bodies to the Hydra, generic and Okta hook
// handlers (mode bit 0: generic; bit 1: a catalog with mint_for =
// "audience"; bit 2: okta, whatever bit 0). It
// must never panic; it answers a status of the contract with a JSON body;
// and whatever it mints is confined to the catalog: every token verifies,
// is for a declared API (nested ones only along `calls`), carries that API's
// audience, a scope within granted ∩ the API's scopes, the request's sub and
// client_id, only the API's declared claims, and never outlives the
// request's expiry. Seeds: the shipped fixtures, the Hydra v2.3.0 sample
// body, Okta's documented sample, and hostile generic requests.
func FuzzHook(f *testing.F) {
	k1 := newTestKey(f, "k1", jose.EdDSA)
	hooks := [2]fuzzHook{}
	for i, mode := range []string{"scope", "audience"} {
		cat := loadHCL(f, strings.Replace(testHCL("k1", mode, k1), "  generic       = true\n", "  generic       = true\n  okta          = true\n", 1), k1)
		var cur atomic.Pointer[mint.Minter]
		cur.Store(newMinter(f, cat, nil))
		hooks[i] = fuzzHook{cat: cat, pub: k1.key.Public(),
			handler: mint.NewHookHandler(cur.Load, &mint.HandlerOptions{MaxBodyBytes: 64 << 10})}
	}
	exp := itoa(testNow.Unix() + 600)
	for _, p := range []string{"testdata/hydra-client-credentials.json", "testdata/hydra-refresh.json",
		"../../shared/samples/hydra-v2.3.0/token-hook-request.client_credentials.json"} {
		if b, err := os.ReadFile(filepath.FromSlash(p)); err == nil {
			f.Add(uint8(0), b)
			f.Add(uint8(2), b)
		}
	}
	if b, err := os.ReadFile("testdata/okta/token-hook-request.json"); err == nil {
		f.Add(uint8(4), b)
		f.Add(uint8(6), b)
		f.Add(uint8(4), bytes.Replace(b, []byte(`"openid": {`), []byte(`"orders:read": {"action": "GRANT"}, "billing:charge": {"action": "GRANT"}, "openid": {`), 1))
	}
	for _, s := range []string{
		`{"sub":"u","client_id":"c","scope":"orders:read orders:write billing:charge ledger:append profile:read admin:all","exp":` + exp + `}`,
		`{"sub":"u","client_id":"c","scope":["orders:read","evil"],"audience":["https://orders.test","https://billing.test","https://evil.test"],"exp":` + exp + `}`,
		`{"sub":"u","client_id":"c","scope":"profile:read","claims":{"aud":"https://evil.test","scope":"admin","iss":"x","embedded_tokens":{"evil":"a.b.c"},"email":"e@x","name":"N"},"exp":` + exp + `}`,
		`{"sub":"u","client_id":"c","scope":"orders:read","exp":` + exp + `,"sub":"admin"}`,
		`{"sub":"u","client_id":"c","scope":"orders:read","exp":1e400}`,
		`{"sub":"u","client_id":"c","exp":` + exp + `,"claims":{"tenant":` + strings.Repeat(`[`, 200) + strings.Repeat(`]`, 200) + `}}`,
		`{"sub":"","client_id":"c","exp":` + exp + `}`,
	} {
		f.Add(uint8(1), []byte(s))
		f.Add(uint8(3), []byte(s))
	}
	f.Fuzz(func(t *testing.T, mode uint8, body []byte) {
		h := &hooks[(mode>>1)&1]
		okta := mode&4 != 0
		generic := mode&1 == 1 && !okta
		path := "/hooks/hydra"
		switch {
		case okta:
			path = "/hooks/okta"
		case generic:
			path = "/hooks/generic"
		}
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(catalog.DefaultAPIKeyHeader, testAPIKey)
		rec := httptest.NewRecorder()
		h.handler.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 400, 403, 413:
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("status %d: body is not JSON", rec.Code)
		}
		if rec.Code != 200 {
			if okta {
				t.Fatalf("okta: status %d: Okta would issue the token unmodified", rec.Code)
			}
			return
		}
		var g grant
		var tokens map[string]string
		if okta {
			var ok bool
			if g, tokens, ok = oktaGrantOf(t, body, rec.Body.Bytes()); !ok {
				return
			}
		} else {
			g, tokens = grantOf(t, generic, body, rec.Body.Bytes())
		}
		if generic && mode&2 == 0 && len(g.scopes) == 0 && len(tokens) > 0 {
			// Only APIs that declare no scopes may get a token.
			for api := range tokens {
				if a := h.cat.API(api); a == nil || len(a.Scopes) > 0 {
					t.Errorf("no scope granted, but a token for %s", api)
				}
			}
		}
		for api, tok := range tokens {
			a := h.cat.API(api)
			if a == nil || !a.Exposed {
				t.Fatalf("top-level token for %q: not an exposed API of the catalog", api)
			}
			h.checkToken(t, api, tok, g, mode&2 != 0, g.exp)
		}
	})
}

// grant is what a hook request granted, as this test reads it.
type grant struct {
	sub, client string
	scopes, aud []string
	exp         time.Time
}

// grantOf decodes the request and the 200 answer: the grant and the top
// level map of tokens.
func grantOf(t *testing.T, generic bool, body, answer []byte) (grant, map[string]string) {
	t.Helper()
	var g grant
	var tokens map[string]string
	if generic {
		var r struct {
			Sub      string          `json:"sub"`
			ClientID string          `json:"client_id"`
			Scope    json.RawMessage `json:"scope"`
			Audience json.RawMessage `json:"audience"`
			Exp      float64         `json:"exp"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("200 for a request this test cannot decode: %v", err)
		}
		g = grant{sub: r.Sub, client: r.ClientID, scopes: strOrList(r.Scope, true), aud: strOrList(r.Audience, false), exp: time.Unix(int64(r.Exp), 0)}
		var a struct {
			Tokens map[string]string `json:"tokens"`
		}
		if err := json.Unmarshal(answer, &a); err != nil {
			t.Fatalf("answer: %v", err)
		}
		tokens = a.Tokens
	} else {
		var r struct {
			Session struct {
				IDToken struct {
					ExpiresAt map[string]string `json:"expires_at"`
					Subject   string            `json:"subject"`
				} `json:"id_token"`
			} `json:"session"`
			Request struct {
				ClientID        string   `json:"client_id"`
				GrantedScopes   []string `json:"granted_scopes"`
				GrantedAudience []string `json:"granted_audience"`
			} `json:"request"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("200 for a request this test cannot decode: %v", err)
		}
		exp, err := time.Parse(time.RFC3339Nano, r.Session.IDToken.ExpiresAt["access_token"])
		if err != nil {
			t.Fatalf("200 without a parseable expiry: %v", err)
		}
		g = grant{sub: r.Session.IDToken.Subject, client: r.Request.ClientID, scopes: r.Request.GrantedScopes, aud: r.Request.GrantedAudience, exp: exp}
		var a struct {
			Session struct {
				AccessToken map[string]json.RawMessage `json:"access_token"`
			} `json:"session"`
		}
		if err := json.Unmarshal(answer, &a); err != nil {
			t.Fatalf("answer: %v", err)
		}
		if err := json.Unmarshal(a.Session.AccessToken["embedded_tokens"], &tokens); err != nil {
			t.Fatalf("answer's embedded map: %v", err)
		}
	}
	if g.sub == "" || g.client == "" {
		t.Fatalf("minted for sub %q client %q", g.sub, g.client)
	}
	return g, tokens
}

func strOrList(raw json.RawMessage, split bool) []string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if split {
			return strings.Fields(s)
		}
		return []string{s}
	}
	var l []string
	_ = json.Unmarshal(raw, &l)
	return l
}

// registered are the claims every inner token may carry.
var registered = []string{"iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"}

// checkToken verifies one minted token for api and everything nested in it.
func (h *fuzzHook) checkToken(t *testing.T, api, tok string, g grant, audienceMode bool, bound time.Time) {
	t.Helper()
	a := h.cat.API(api)
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatalf("%s: %v", api, err)
	}
	payload, err := jws.Verify(h.pub)
	if err != nil {
		t.Fatalf("%s: does not verify: %v", api, err)
	}
	var c map[string]json.RawMessage
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatalf("%s: claims: %v", api, err)
	}
	str := func(k string) string {
		var s string
		_ = json.Unmarshal(c[k], &s)
		return s
	}
	if str("aud") != a.Audience || str("iss") != "https://minter.test" || str("sub") != g.sub || str("client_id") != g.client {
		t.Fatalf("%s: aud %q iss %q sub %q client_id %q", api, str("aud"), str("iss"), str("sub"), str("client_id"))
	}
	if audienceMode && !slices.Contains(g.aud, a.Audience) {
		t.Errorf("%s: minted with mint_for = audience but %s was not granted", api, a.Audience)
	}
	scopes := strings.Fields(str("scope"))
	if len(a.Scopes) > 0 && len(scopes) == 0 {
		t.Errorf("%s: a token without scope for an API that declares scopes", api)
	}
	for _, s := range scopes {
		if !slices.Contains(a.Scopes, s) || !slices.Contains(g.scopes, s) {
			t.Errorf("%s: scope %q outside granted ∩ the API's scopes", api, s)
		}
	}
	var exp int64
	if err := json.Unmarshal(c["exp"], &exp); err != nil || exp > bound.Unix() {
		t.Errorf("%s: exp %s outlives its bound %d", api, c["exp"], bound.Unix())
	}
	for k := range c {
		if !slices.Contains(registered, k) && !slices.Contains(a.Claims, k) && k != "embedded_tokens" {
			t.Errorf("%s: undeclared claim %q", api, k)
		}
	}
	if raw, ok := c["embedded_tokens"]; ok {
		var nested map[string]string
		if err := json.Unmarshal(raw, &nested); err != nil {
			t.Fatalf("%s: nested map: %v", api, err)
		}
		for callee, nt := range nested {
			if !slices.Contains(a.Calls, callee) || h.cat.API(callee) == nil {
				t.Fatalf("%s nests a token for %q, not in its calls", api, callee)
			}
			h.checkToken(t, callee, nt, g, audienceMode, time.Unix(exp, 0))
		}
	}
}

// oktaGrantOf decodes an Okta request and the hook's 200 answer: the grant
// and the embedded map, or ok false for an error object (which must come
// without commands).
func oktaGrantOf(t *testing.T, body, answer []byte) (grant, map[string]string, bool) {
	t.Helper()
	var a struct {
		Commands []struct {
			Type  string `json:"type"`
			Value []struct {
				Op    string          `json:"op"`
				Path  string          `json:"path"`
				Value json.RawMessage `json:"value"`
			} `json:"value"`
		} `json:"commands"`
		Error *struct {
			ErrorSummary string `json:"errorSummary"`
		} `json:"error"`
	}
	if err := json.Unmarshal(answer, &a); err != nil {
		t.Fatalf("okta answer: %v", err)
	}
	if a.Error != nil {
		if len(a.Commands) != 0 {
			t.Fatal("okta: an error object with commands")
		}
		return grant{}, nil, false
	}
	if len(a.Commands) != 1 || a.Commands[0].Type != "com.okta.access.patch" || len(a.Commands[0].Value) != 1 ||
		a.Commands[0].Value[0].Op != "add" || a.Commands[0].Value[0].Path != "/claims/embedded_tokens" {
		t.Fatalf("okta answer: %s", answer)
	}
	var tokens map[string]string
	if err := json.Unmarshal(a.Commands[0].Value[0].Value, &tokens); err != nil {
		t.Fatalf("okta embedded map: %v", err)
	}
	type lifetime struct {
		Expiration int64 `json:"expiration"`
	}
	var r struct {
		Data struct {
			Context struct {
				Protocol struct {
					Client struct {
						ID string `json:"id"`
					} `json:"client"`
				} `json:"protocol"`
			} `json:"context"`
			Access struct {
				Claims struct {
					Sub string          `json:"sub"`
					Cid *string         `json:"cid"`
					Aud json.RawMessage `json:"aud"`
				} `json:"claims"`
				Token struct {
					Lifetime *lifetime `json:"lifetime"`
				} `json:"token"`
				Lifetime *lifetime `json:"lifetime"`
				Scopes   map[string]struct {
					Action string `json:"action"`
				} `json:"scopes"`
			} `json:"access"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("200 for an okta request this test cannot decode: %v", err)
	}
	at := r.Data.Access
	g := grant{sub: at.Claims.Sub, client: r.Data.Context.Protocol.Client.ID, aud: strOrList(at.Claims.Aud, false)}
	if at.Claims.Cid != nil {
		g.client = *at.Claims.Cid
	}
	for name, sc := range at.Scopes {
		if sc.Action == "GRANT" {
			g.scopes = append(g.scopes, name)
		}
	}
	lt := at.Token.Lifetime
	if lt == nil {
		lt = at.Lifetime
	}
	if lt == nil {
		t.Fatal("okta: minted without a lifetime")
	}
	g.exp = testNow.Add(time.Duration(lt.Expiration)*time.Second - mint.OktaExpirySlack)
	if g.sub == "" || g.client == "" {
		t.Fatalf("okta: minted for sub %q client %q", g.sub, g.client)
	}
	return g, tokens, true
}
