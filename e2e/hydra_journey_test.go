package e2e

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// The Hydra client of the journeys: allowed every scope of the catalog, and
// the gateway audience; it asks for some of them only.
var (
	hydraGateway = "https://gateway.internal"
	hydraGranted = []string{"orders:read", "billing:charge", "ledger:append"} // not inventory, not profile
	hydraAllowed = []string{"orders:read", "orders:write", "billing:read", "billing:charge", "ledger:append", "inventory:read", "profile:read"}
)

// TestHydraHookMints checks what `embedtoken hook` adds to Hydra's tokens,
// without sidecars: the tree of inner tokens under ext.embedded_tokens.
func TestHydraHookMints(t *testing.T) {
	needHydra(t)
	hydraAddrs := freeAddrs(t, 2)
	st := newStack(t, stackOptions{HydraIssuer: "http://" + hydraAddrs[0]})
	h := startHydra(t, hydraOptions{
		PublicAddr: hydraAddrs[0], AdminAddr: hydraAddrs[1],
		HookURL: st.hookURL(), HookHeader: hookHeader, HookKey: st.hookKey,
	})
	// After Hydra: Hydra makes its keys on the first JWKS request, and two
	// concurrent first requests (the hook's trust polling and the harness)
	// can leave it signing with a key its JWKS does not list.
	st.startHook(t)
	client := hydraClient{ID: "e2e-client", Secret: "e2e-client-secret-" + randomHex(t, 8), Scope: hydraAllowed, Audience: []string{hydraGateway}}
	h.createClient(t, client)
	outer := h.mustToken(t, client, hydraGranted, []string{hydraGateway})
	o := verifyJWT(t, outer, h.jwks(t), jose.RS256)
	t.Logf("outer token from Hydra: %d bytes", len(outer))
	subj := subject{sub: client.ID, clientID: client.ID, granted: hydraGranted}
	checkTree(t, o, "ext.embedded_tokens", subj, fetchJWKS(t, st.client, st.jwksURL()), "orders", "billing", "ledger")

	// A refresh of the same grant mints fresh inner tokens, never the
	// previous ones.
	again := decodeJWT(t, h.mustToken(t, client, hydraGranted, []string{hydraGateway}))
	if a, b := o.embedded("ext.embedded_tokens")["orders"], again.embedded("ext.embedded_tokens")["orders"]; a == b {
		t.Error("a second token carries the same inner token as the first")
	}

	// Fail closed: a hook that is down leaves Hydra without a token to give.
	st.hook.stop(t)
	if tr := h.token(t, client, hydraGranted, nil); tr.Status < 500 || tr.AccessToken != "" {
		t.Errorf("token with the hook down: got %d %q, want a 5xx and no token", tr.Status, tr.Error)
	}
	h.stop(t)
}

// TestHydraJourney runs the whole product on a real Ory Hydra v2.3.0: Hydra
// calls `embedtoken hook` for every token, and a chain of `embedtoken
// sidecar`s trusts Hydra's JWT access tokens (trust "hydra" of the shipped
// trust.hcl: typ JWT, claim ext.embedded_tokens, Hydra's JWKS).
func TestHydraJourney(t *testing.T) {
	needHydra(t)
	hydraAddrs := freeAddrs(t, 2)
	st := newStack(t, stackOptions{HydraIssuer: "http://" + hydraAddrs[0]})
	h := startHydra(t, hydraOptions{
		PublicAddr: hydraAddrs[0], AdminAddr: hydraAddrs[1],
		HookURL: st.hookURL(), HookHeader: hookHeader, HookKey: st.hookKey,
	})
	// After Hydra: Hydra makes its keys on the first JWKS request, and two
	// concurrent first requests (the hook's trust polling and the harness)
	// can leave it signing with a key its JWKS does not list.
	st.startHook(t)
	c := startChain(t, st)

	client := hydraClient{ID: "e2e-client", Secret: "e2e-client-secret-" + randomHex(t, 8), Scope: hydraAllowed, Audience: []string{hydraGateway}}
	h.createClient(t, client)
	subj := subject{sub: client.ID, clientID: client.ID, granted: hydraGranted}

	outer := h.mustToken(t, client, hydraGranted, []string{hydraGateway})
	o := verifyJWT(t, outer, h.jwks(t), jose.RS256)
	t.Logf("outer token from Hydra: %d bytes", len(outer))
	if typ, _ := o.header["typ"].(string); typ != "JWT" {
		t.Errorf("outer typ %q, want JWT", typ)
	}
	checkTopLevel(t, o, "ext.embedded_tokens", hydraGranted)

	t.Run("journey", func(t *testing.T) {
		c.journey(t, outer, "ext.embedded_tokens", subj)
	})

	t.Run("no token", func(t *testing.T) {
		r := c.get(t, "orders", "")
		c.expectRefused(t, r, http.StatusUnauthorized, "")
		if r.challenge != `Bearer realm="orders"` {
			t.Errorf("WWW-Authenticate: got %q, want Bearer realm=\"orders\"", r.challenge)
		}
	})

	t.Run("ungranted API", func(t *testing.T) {
		r := c.get(t, "profile", outer)
		c.expectRefused(t, r, http.StatusForbidden, "insufficient_scope")
		if !strings.Contains(r.challenge, "profile:read") {
			t.Errorf("WWW-Authenticate %q does not name the scope profile:read", r.challenge)
		}
	})

	t.Run("tampered outer token", func(t *testing.T) {
		c.expectRefused(t, c.get(t, "orders", flip(outer)), http.StatusUnauthorized, "invalid_token")
	})

	t.Run("tampered nested token", func(t *testing.T) {
		inner := o.embedded("ext.embedded_tokens")["orders"]
		c.expectRefused(t, c.get(t, "billing", flip(inner)), http.StatusUnauthorized, "invalid_token")
	})

	t.Run("expired token", func(t *testing.T) {
		short := hydraClient{ID: "e2e-short", Secret: "e2e-short-secret-" + randomHex(t, 8), Scope: hydraAllowed, AccessTokenLifespan: "3s"}
		h.createClient(t, short)
		tok := h.mustToken(t, short, hydraGranted, nil)
		j := decodeJWT(t, tok)
		if r := c.get(t, "orders", tok); r.status != http.StatusOK {
			t.Fatalf("fresh short token: got %d %s, want 200", r.status, r.body)
		}
		c.reset()
		// exp, then the sidecars' 1s leeway, then a margin.
		waitUntil(j.time("exp").Add(2500*time.Millisecond), 10*time.Second)
		c.expectRefused(t, c.get(t, "orders", tok), http.StatusUnauthorized, "invalid_token")
	})

	t.Run("hook down fails closed", func(t *testing.T) {
		st.hook.stop(t)
		tr := h.token(t, client, hydraGranted, nil)
		if tr.Status < 500 || tr.AccessToken != "" {
			t.Errorf("token with the hook down: got %d %q (token: %v), want a 5xx and no token", tr.Status, tr.Error, tr.AccessToken != "")
		}
		st.startHook(t)
		h.mustToken(t, client, hydraGranted, nil)
	})

	t.Run("hook refuses a wrong api key", func(t *testing.T) {
		// Hydra with the right hook URL but a wrong key: the hook must
		// answer 401/403 and mint nothing, and Hydra must issue nothing.
		bad := startHydra(t, hydraOptions{HookURL: st.hookURL(), HookHeader: hookHeader, HookKey: "wrong-" + st.hookKey})
		bad.createClient(t, client)
		tr := bad.token(t, client, hydraGranted, nil)
		if tr.Status == http.StatusOK || tr.AccessToken != "" {
			t.Errorf("token with a wrong hook key: got %d, want a refusal", tr.Status)
		}
		bad.stop(t)
	})

	t.Run("Hydra restarted with new keys", func(t *testing.T) {
		oldKid, _ := o.header["kid"].(string)
		h.restart(t)
		h.createClient(t, client) // dsn memory: clients are gone too
		fresh := h.mustToken(t, client, hydraGranted, []string{hydraGateway})
		fj := decodeJWT(t, fresh)
		if kid, _ := fj.header["kid"].(string); kid == oldKid {
			t.Fatalf("Hydra kept kid %q across a restart", kid)
		}
		// The sidecar has never seen the new kid: it must refetch Hydra's
		// JWKS (jwks_min_refetch 1s) rather than refuse the token for good.
		var seen []int
		deadline := time.Now().Add(15 * time.Second)
		for {
			r := c.get(t, "orders", fresh)
			seen = append(seen, r.status)
			if r.status == http.StatusOK || time.Now().After(deadline) {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if seen[len(seen)-1] != http.StatusOK {
			t.Fatalf("token signed with Hydra's new key: statuses %v, want 200 in the end", seen)
		}
		if len(seen) > 1 {
			t.Logf("new Hydra key accepted after statuses %v", seen)
		}
		c.journey(t, fresh, "ext.embedded_tokens", subj)
		if !slices.Equal(seen, []int{http.StatusOK}) && seen[0] == http.StatusUnauthorized {
			t.Errorf("the first request with an unknown kid got 401: a client would be told to renew a good token")
		}
	})

	st.stopAll(t)
	h.stop(t)
}
