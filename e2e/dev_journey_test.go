package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// devSubject is the subject of the development issuer's tokens: some but
// not all APIs granted, and claims of which each API gets only its own.
var devSubject = subject{
	sub:      "alice",
	clientID: "e2e-client",
	granted:  []string{"orders:read", "billing:charge", "ledger:append", "inventory:read"}, // not profile
	claims:   map[string]any{"email": "alice@example.com", "tenant": "acme", "name": "Alice"},
}

// mintOuter runs `embedtoken mint --outer-key` (the development issuer) and
// returns the outer token.
func mintOuter(t *testing.T, st *stack, subj subject, lifetime string) string {
	t.Helper()
	args := []string{"mint", "--config", st.dir, "--sub", subj.sub, "--client-id", subj.clientID,
		"--scope", strings.Join(subj.granted, " "),
		"--outer-key", filepath.Join(st.dir, "keys", "issuer", "dev-1.key.pem"),
		"--outer-issuer", devIssuer}
	for _, k := range []string{"email", "name", "tenant"} {
		if v, ok := subj.claims[k]; ok {
			args = append(args, "--claim", k+"="+v.(string))
		}
	}
	if lifetime != "" {
		args = append(args, "--outer-lifetime", lifetime)
	}
	return strings.TrimSpace(mustRun(t, st.env(), args...))
}

// devKeys reads the development issuer's public keys.
func devKeys(t *testing.T, st *stack) jose.JSONWebKeySet {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(st.dir, "keys", "issuer", "jwks.json"))
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	return set
}

// TestCheckShipped runs `embedtoken check` on the shipped hcl/ and on the
// e2e copy with its keys.
func TestCheckShipped(t *testing.T) {
	bin := needBinary(t)
	if out, code := runCmd(t, bin, nil, "check", "--config", filepath.Join(repoRoot, "hcl")); code != 0 {
		t.Errorf("check --config hcl/: exit %d\n%s", code, out)
	}
	st := newStack(t, stackOptions{})
	if out, code := runCmd(t, bin, st.env(), "check", "--config", st.dir); code != 0 {
		t.Errorf("check --config <e2e copy>: exit %d\n%s", code, out)
	}
}

// TestDevJourney is the journey with the development issuer instead of
// Hydra: it runs with every `go test ./...`.
func TestDevJourney(t *testing.T) {
	st := newStack(t, stackOptions{})
	st.startHook(t)
	c := startChain(t, st)

	outer := mintOuter(t, st, devSubject, "")
	o := verifyJWT(t, outer, devKeys(t, st), jose.RS256)
	if typ, _ := o.header["typ"].(string); !strings.EqualFold(typ, "at+jwt") {
		t.Errorf("outer typ %q, want at+jwt", typ)
	}
	if o.str("iss") != devIssuer {
		t.Errorf("outer iss %q, want %q", o.str("iss"), devIssuer)
	}
	checkTopLevel(t, o, minterClaim, devSubject.granted)

	t.Run("journey", func(t *testing.T) {
		c.journey(t, outer, minterClaim, devSubject)
	})

	t.Run("ungranted API", func(t *testing.T) {
		c.expectRefused(t, c.get(t, "profile", outer), http.StatusForbidden, "insufficient_scope")
	})

	t.Run("tampered outer token", func(t *testing.T) {
		c.expectRefused(t, c.get(t, "orders", flip(outer)), http.StatusUnauthorized, "invalid_token")
	})

	t.Run("expired token", func(t *testing.T) {
		tok := mintOuter(t, st, devSubject, "2s")
		j := decodeJWT(t, tok)
		waitUntil(j.time("exp").Add(2500*time.Millisecond), 10*time.Second)
		c.expectRefused(t, c.get(t, "orders", tok), http.StatusUnauthorized, "invalid_token")
	})

	t.Run("API added after the token", func(t *testing.T) {
		subj := devSubject
		subj.granted = append([]string{"shipping:read"}, devSubject.granted...)
		old := mintOuter(t, st, subj, "") // the catalog has no shipping yet
		st.addFile(t, "shipping.hcl", `api "shipping" {
  audience = "https://shipping.internal"
  scopes   = ["shipping:read"]
  lifetime = "5m"
}
`)
		src, err := os.ReadFile(filepath.Join(st.dir, "sidecars", "profile.hcl"))
		if err != nil {
			t.Fatal(err)
		}
		st.addFile(t, filepath.Join("sidecars", "shipping.hcl"), replaceAll(t, string(src), `"profile"`, `"shipping"`))
		svc := newService(t, "shipping")
		sc := st.startSidecar(t, "shipping", svc.srv.URL)
		get := func(tok string) response {
			req, _ := http.NewRequest(http.MethodGet, sc.url("/shipping/1"), nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := st.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			json.NewDecoder(resp.Body).Decode(&e)
			return response{status: resp.StatusCode, challenge: resp.Header.Get("WWW-Authenticate"), errCode: e.Error, errDesc: e.Description}
		}
		r := get(old)
		if r.status != http.StatusUnauthorized || r.errCode != "invalid_token" || !strings.Contains(strings.ToLower(r.errDesc), "renew") {
			t.Errorf("token minted before the API: got %d %q %q, want 401 invalid_token asking to renew", r.status, r.errCode, r.errDesc)
		}
		svc.none(t)
		fresh := mintOuter(t, st, subj, "")
		if r := get(fresh); r.status != http.StatusOK {
			t.Fatalf("renewed token: got %d %q, want 200", r.status, r.errCode)
		}
		if aud := decodeJWT(t, svc.one(t).Token).str("aud"); aud != "https://shipping.internal" {
			t.Errorf("shipping received aud %q", aud)
		}
	})

	st.stopAll(t)
}

// TestDevMint checks the development issuer's outer token and its tree of
// inner tokens, without sidecars.
func TestDevMint(t *testing.T) {
	st := newStack(t, stackOptions{})
	st.startHook(t)
	o := verifyJWT(t, mintOuter(t, st, devSubject, ""), devKeys(t, st), jose.RS256)
	checkTree(t, o, minterClaim, devSubject, fetchJWKS(t, st.client, st.jwksURL()), "orders", "billing", "ledger", "inventory")
	st.stopAll(t)
}
