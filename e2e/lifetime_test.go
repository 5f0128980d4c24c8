package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Lifetimes (README "Lifetimes"; DESIGN.md, Precise rules, "Lifetime
// left"): inner tokens live shorter than the outer token. Without an
// exchange block, a deep hop whose nested token expired answers 401
// "embedded token expired: renew"; with one at the first hop, that sidecar
// exchanges the outer token for a fresh inner token (its nested tokens
// minted along calls) and the whole chain keeps working for the outer
// token's life.

const (
	// lifetimeLedger is ledger's lifetime in these tests: the shortest of
	// the chain, so that a journey runs past it within seconds.
	lifetimeLedger = "3s"
	ordersClient   = "orders-sidecar"
	ordersSecret   = "ORDERS_SIDECAR_SECRET"
)

// shortLedger shortens ledger's lifetime in the copied catalog and adds the
// exchange client of the orders sidecar (read by the hook).
func shortLedger(t *testing.T, st *stack) {
	t.Helper()
	st.edit(t, "catalog.hcl", func(src string) string {
		return replaceAll(t, src, `lifetime = "1m"`, `lifetime = `+quote(lifetimeLedger))
	})
	st.setEnv(ordersSecret + "=" + randomHex(t, 24))
	st.addFile(t, "exchange-clients.hcl", fmt.Sprintf(`
exchange_client %q {
  secret    = env(%q)
  audiences = ["https://orders.internal"]
}
`, ordersClient, ordersSecret))
}

// ordersExchange adds an exchange block to the orders sidecar's file.
func ordersExchange(t *testing.T, st *stack) {
	t.Helper()
	st.edit(t, filepath.Join("sidecars", "orders.hcl"), func(src string) string {
		return src + fmt.Sprintf(`
exchange {
  token_url = "http://%s/oauth2/token"
  client_id = %q
  secret    = env(%q)
}
`, st.hookAddr.public, ordersClient, ordersSecret)
	})
}

// pastLedger waits until ledger's token nested in outer (at claimPath) has
// expired, leeway (1s) and a margin included, and returns billing's token as
// orders' service forwards it.
func pastLedger(t *testing.T, outer, claimPath string) (billing string) {
	t.Helper()
	orders := decodeJWT(t, decodeJWT(t, outer).embedded(claimPath)["orders"])
	billing = orders.embedded(minterClaim)["billing"]
	ledger := decodeJWT(t, decodeJWT(t, billing).embedded(minterClaim)["ledger"])
	exp := ledger.time("exp")
	if life := exp.Sub(ledger.time("iat")); life > 5*time.Second {
		t.Fatalf("ledger's token lives %s: the catalog edit did not apply", life)
	}
	waitUntil(exp.Add(2500*time.Millisecond), 15*time.Second)
	return billing
}

// expectRenewAtDeepHop checks the answer of a deep hop to an expired nested
// token, and what the first hop's service saw.
func expectRenewAtDeepHop(t *testing.T, c *chain, outer, billing string) {
	t.Helper()
	c.reset()
	r := c.get(t, "orders", outer)
	var reply serviceReply
	_ = json.Unmarshal(r.body, &reply)
	if r.status != http.StatusFailedDependency || reply.Next["billing"] != http.StatusFailedDependency {
		t.Errorf("orders past ledger's lifetime, no exchange: got %d %s, want 424 with billing 424 (ledger refused)", r.status, r.body)
	}
	expectLedgerRenew(t, c, billing)
}

// expectLedgerRenew sends billing's token (as billing's service forwards
// it) to ledger's sidecar after ledger's nested token expired.
func expectLedgerRenew(t *testing.T, c *chain, billing string) {
	t.Helper()
	c.reset()
	req, _ := http.NewRequest(http.MethodGet, c.sc["ledger"].url(shippedAPIs["ledger"].path), nil)
	req.Header.Set("Authorization", "Bearer "+billing)
	resp, err := c.st.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	wa := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != http.StatusUnauthorized || body.Error != "invalid_token" || body.Description != "embedded token expired: renew" ||
		!strings.Contains(wa, `error_description="embedded token expired: renew"`) {
		t.Errorf("ledger with an expired nested token: got %d %+v %q, want 401 invalid_token \"embedded token expired: renew\"", resp.StatusCode, body, wa)
	}
	c.svc["ledger"].none(t)
	if log := c.sc["ledger"].p.log(); !strings.Contains(log, `"reason":"inner_expired"`) || !strings.Contains(log, `"logger":"unwrap.access"`) {
		t.Error("ledger's access log has no line with reason inner_expired")
	}
}

// expectRefreshed checks that the orders sidecar, with an exchange block,
// served outer past ledger's lifetime by exchanging it: every hop got a
// fresh token carrying act, ledger's not expired.
func expectRefreshed(t *testing.T, c *chain, outer string, keys jose.JSONWebKeySet) {
	t.Helper()
	c.reset()
	r := c.get(t, "orders", outer)
	var reply serviceReply
	_ = json.Unmarshal(r.body, &reply)
	if r.status != http.StatusOK || reply.Next["billing"] != http.StatusOK {
		t.Fatalf("orders past ledger's lifetime with an exchange block: got %d %s, want 200 and billing 200", r.status, r.body)
	}
	now := time.Now()
	for _, api := range []string{"orders", "billing", "ledger"} {
		got := c.svc[api].one(t)
		j := verifyJWT(t, got.Token, keys, jose.EdDSA)
		if act, _ := j.claims["act"].(map[string]any); act["sub"] != ordersClient {
			t.Errorf("%s received a token without act {sub: %s}: not the exchanged chain", api, ordersClient)
		}
		if exp := j.time("exp"); !exp.After(now.Add(-time.Second)) {
			t.Errorf("%s received a token that expired at %v", api, exp)
		}
	}
	if log := c.sc["orders"].p.log(); strings.Contains(log, outer) || strings.Contains(log, strings.Split(outer, ".")[2]) {
		t.Error("the orders sidecar logged the outer token")
	}
	metrics := "http://" + c.sc["orders"].admin + "/metrics"
	if n := scrape(t, c.st.client, metrics, `embedtoken_sidecar_exchanges_total{outcome="ok"}`); n != 1 {
		t.Errorf("orders exchanged %v times, want 1", n)
	}
	// Cached: the same outer token again is not exchanged again.
	c.reset()
	if r := c.get(t, "orders", outer); r.status != http.StatusOK {
		t.Errorf("again: %d %s", r.status, r.body)
	}
	if n := scrape(t, c.st.client, metrics, `embedtoken_sidecar_exchanges_total{outcome="ok"}`); n != 1 {
		t.Errorf("orders exchanged %v times after a second request, want 1", n)
	}
}

// reloadSidecar sends SIGHUP to a sidecar and waits until it reloaded.
func reloadSidecar(t *testing.T, st *stack, sc *sidecar) {
	t.Helper()
	metrics := "http://" + sc.admin + "/metrics"
	const reloaded = `embedtoken_sidecar_config_reloads_total{result="ok"}`
	before := scrape(t, st.client, metrics, reloaded)
	if err := sc.p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitCond(t, 15*time.Second, "sidecar reload", func() bool { return scrape(t, st.client, metrics, reloaded) > before })
}

// TestDevLifetimes: the development issuer's 1h token past ledger's 3 s,
// first without an exchange block (the deep hop tells the client to
// renew), then with one at orders (the chain is refreshed).
func TestDevLifetimes(t *testing.T) {
	st := newStack(t, stackOptions{})
	shortLedger(t, st)
	st.startHook(t)
	c := startChain(t, st)
	outer := mintOuter(t, st, devSubject, "1h")
	c.journey(t, outer, minterClaim, devSubject)
	billing := pastLedger(t, outer, minterClaim)

	t.Run("no exchange: the deep hop says renew", func(t *testing.T) {
		expectRenewAtDeepHop(t, c, outer, billing)
	})
	t.Run("exchange at the first hop: the chain is refreshed", func(t *testing.T) {
		ordersExchange(t, st)
		reloadSidecar(t, st, c.sc["orders"])
		expectRefreshed(t, c, outer, fetchJWKS(t, st.client, st.jwksURL()))
	})
	st.stopAll(t)
}

// TestHydraLifetimes is the Hydra journey past the shortest inner
// lifetime: a 1 h Hydra token keeps working through the whole chain,
// because the orders sidecar exchanges it when ledger's nested token
// expires; a deep hop given the expired nested token says renew.
func TestHydraLifetimes(t *testing.T) {
	needHydra(t)
	hydraAddrs := freeAddrs(t, 2)
	st := newStack(t, stackOptions{HydraIssuer: "http://" + hydraAddrs[0]})
	shortLedger(t, st)
	ordersExchange(t, st)
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
	o := decodeJWT(t, outer)
	if life := o.time("exp").Sub(o.time("iat")); life < 30*time.Minute {
		t.Fatalf("Hydra's access token lives %s, want its default 1h", life)
	}
	c.journey(t, outer, "ext.embedded_tokens", subj)
	billing := pastLedger(t, outer, "ext.embedded_tokens")

	t.Run("past ledger's lifetime: refreshed by the exchange", func(t *testing.T) {
		expectRefreshed(t, c, outer, fetchJWKS(t, st.client, st.jwksURL()))
	})
	t.Run("the deep hop given the expired nested token says renew", func(t *testing.T) {
		expectLedgerRenew(t, c, billing)
	})
	st.stopAll(t)
	h.stop(t)
}
