package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// phantomCache is the introspection trust's introspection_cache: how long
// a sidecar may use an introspection answer, hence the revocation latency.
const phantomCache = 3 * time.Second

// phantomTrust is the introspection trust of the phantom-token journey:
// Hydra's opaque access tokens, introspected at its admin port.
func phantomTrust(issuer, admin string) string {
	return fmt.Sprintf(`trust "hydra-opaque" {
  issuer              = %q
  introspection_url   = "http://%s/admin/oauth2/introspect"
  introspection_cache = %q
  token_prefix        = "ory_at_"
  claim               = "ext.embedded_tokens"
}
`, issuer, admin, phantomCache.String())
}

// TestHydraPhantomTokens runs the phantom-token deployment on a real Ory
// Hydra v2.3.0: opaque access tokens (strategies.access_token: opaque)
// whose hook claims, the embedded map included, stay at Hydra. The client
// holds a short ory_at_ token; the gateway-facing orders sidecar
// introspects it at Hydra's admin port and forwards only the orders inner
// token, and the chain goes on with inner tokens as usual.
func TestHydraPhantomTokens(t *testing.T) {
	needHydra(t)
	hydraAddrs := freeAddrs(t, 2)
	issuer := "http://" + hydraAddrs[0]
	st := newStack(t, stackOptions{HydraIssuer: issuer})
	st.addFile(t, "phantom.hcl", phantomTrust(issuer, hydraAddrs[1]))
	st.setEnv("REPORTS_SIDECAR_SECRET=" + randomHex(t, 24)) // for the exchange, later
	h := startHydra(t, hydraOptions{
		PublicAddr: hydraAddrs[0], AdminAddr: hydraAddrs[1], AccessToken: "opaque",
		HookURL: st.hookURL(), HookHeader: hookHeader, HookKey: st.hookKey,
	})
	// After Hydra: Hydra makes its keys on the first JWKS request, and two
	// concurrent first requests (the hook's trust polling and the harness)
	// can leave it signing with a key its JWKS does not list.
	st.startHook(t)
	c := startChain(t, st)

	client := hydraClient{ID: "e2e-phantom", Secret: "e2e-phantom-secret-" + randomHex(t, 8), Scope: hydraAllowed, Audience: []string{hydraGateway}}
	h.createClient(t, client)
	subj := subject{sub: client.ID, clientID: client.ID, granted: hydraGranted}

	tok := h.mustToken(t, client, hydraGranted, []string{hydraGateway})
	if !strings.HasPrefix(tok, "ory_at_") || strings.Count(tok, ".") != 1 {
		t.Fatalf("Hydra's access token: %d bytes, prefix %q: want an opaque ory_at_ token", len(tok), tok[:min(7, len(tok))])
	}
	t.Logf("opaque token held by the client: %d bytes (the embedded map stays at Hydra)", len(tok))

	t.Run("journey", func(t *testing.T) {
		c.journeyOpaque(t, h, tok, subj)
	})

	t.Run("ungranted API", func(t *testing.T) {
		c.expectRefused(t, c.get(t, "profile", tok), http.StatusForbidden, "insufficient_scope")
	})

	t.Run("unknown opaque token", func(t *testing.T) {
		// Shaped like Hydra's, never issued: Hydra answers active false.
		c.expectRefused(t, c.get(t, "orders", "ory_at_"+randomHex(t, 32)+"."+randomHex(t, 32)), http.StatusUnauthorized, "invalid_token")
	})

	t.Run("exchange for an opaque token", func(t *testing.T) {
		// A token minted before the reports API exists, with its scope.
		rc := hydraClient{ID: "e2e-phantom-reports", Secret: "e2e-reports-secret-" + randomHex(t, 8), Scope: append(slices.Clone(hydraAllowed), reportsScope)}
		h.createClient(t, rc)
		old := h.mustToken(t, rc, []string{"orders:read", reportsScope}, nil)
		in := h.introspect(t, old)
		exp, _ := in["exp"].(float64)
		c.addReportsReloaded(t)
		svc, sc := startReports(t, st, "reports", exchangeBlock(st, "REPORTS_SIDECAR_SECRET"))
		// The reports sidecar introspects the token at Hydra, finds no
		// reports token, and exchanges the opaque token at the hook, which
		// introspects it at Hydra too.
		r, _ := getAt(t, st.client, sc, "/reports/1", old)
		if r.status != http.StatusOK {
			t.Fatalf("old opaque token at the reports sidecar: got %d %s, want 200", r.status, r.body)
		}
		subj := subject{sub: rc.ID, clientID: rc.ID, granted: []string{"orders:read", reportsScope}}
		checkExchanged(t, svc.one(t), old, time.Unix(int64(exp), 0), subj, fetchJWKS(t, st.client, st.jwksURL()))
	})

	t.Run("latency", func(t *testing.T) {
		c.phantomLatency(t, h, client)
	})

	t.Run("revoked token", func(t *testing.T) {
		tok := h.mustToken(t, client, hydraGranted, []string{hydraGateway})
		if r := c.get(t, "orders", tok); r.status != http.StatusOK {
			t.Fatalf("fresh token: got %d %s, want 200", r.status, r.body)
		}
		cachedAt := time.Now()
		c.reset()
		h.revoke(t, client, tok)
		revokedAt := time.Now()
		if in := h.introspect(t, tok); in["active"] != false {
			t.Fatalf("Hydra still calls the revoked token active")
		}
		// The sidecar keeps its answer for at most introspection_cache:
		// poll until it asks Hydra again.
		var statuses []int
		var r response
		for {
			r = c.get(t, "orders", tok)
			statuses = append(statuses, r.status)
			if r.status != http.StatusOK {
				break
			}
			c.reset()
			if time.Since(cachedAt) > phantomCache+2*time.Second {
				t.Fatalf("revoked token still accepted %s after its introspection (cache %s)", time.Since(cachedAt).Round(time.Millisecond), phantomCache)
			}
			time.Sleep(50 * time.Millisecond)
		}
		refused := time.Now()
		c.expectRefused(t, r, http.StatusUnauthorized, "invalid_token")
		t.Logf("revoked token refused %s after the revocation, %s after the introspection it was accepted on (introspection_cache %s; %d requests accepted meanwhile)",
			refused.Sub(revokedAt).Round(time.Millisecond), refused.Sub(cachedAt).Round(time.Millisecond), phantomCache, len(statuses)-1)
		if d := refused.Sub(cachedAt); d > phantomCache+time.Second {
			t.Errorf("revocation latency %s, want at most introspection_cache %s", d, phantomCache)
		}
	})

	t.Run("expired token", func(t *testing.T) {
		short := hydraClient{ID: "e2e-phantom-short", Secret: "e2e-short-secret-" + randomHex(t, 8), Scope: hydraAllowed, AccessTokenLifespan: "3s"}
		h.createClient(t, short)
		tok := h.mustToken(t, short, hydraGranted, nil)
		in := h.introspect(t, tok)
		exp, _ := in["exp"].(float64)
		if r := c.get(t, "orders", tok); r.status != http.StatusOK {
			t.Fatalf("fresh short token: got %d %s, want 200", r.status, r.body)
		}
		c.reset()
		// exp, then the sidecars' 1s leeway, then a margin.
		waitUntil(time.Unix(int64(exp), 0).Add(2500*time.Millisecond), 10*time.Second)
		c.expectRefused(t, c.get(t, "orders", tok), http.StatusUnauthorized, "invalid_token")
	})

	t.Run("Hydra down: 503, not 401", func(t *testing.T) {
		unseen := h.mustToken(t, client, hydraGranted, nil) // never introspected
		seen := h.mustToken(t, client, hydraGranted, nil)
		if r := c.get(t, "orders", seen); r.status != http.StatusOK {
			t.Fatalf("fresh token: got %d %s, want 200", r.status, r.body)
		}
		seenAt := time.Now()
		c.reset()
		h.stop(t)
		r, hdr := getAt(t, st.client, c.sc["orders"], shippedAPIs["orders"].path, unseen)
		if r.status != http.StatusServiceUnavailable || r.errCode != "temporarily_unavailable" {
			t.Errorf("introspection endpoint down: got %d %q, want 503 temporarily_unavailable", r.status, r.errCode)
		}
		if hdr.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
		if strings.Contains(r.challenge, "error=") {
			t.Errorf("WWW-Authenticate %q: the client must not be told its token is bad", r.challenge)
		}
		c.expectRefused(t, r, http.StatusServiceUnavailable, "")
		// A token introspected moments ago is still served from the cache.
		if r := c.get(t, "orders", seen); time.Since(seenAt) < phantomCache-time.Second && r.status != http.StatusOK {
			t.Errorf("token introspected %s ago, Hydra down: got %d, want 200 from the cache", time.Since(seenAt).Round(time.Millisecond), r.status)
		}
		c.reset()
	})

	st.stopAll(t)
}

// journeyOpaque is journey for an opaque outer token: the embedded map is
// read from Hydra's introspection (ext.embedded_tokens), and the opaque
// token must reach no service.
func (c *chain) journeyOpaque(t *testing.T, h *hydra, tok string, subj subject) {
	t.Helper()
	in := h.introspect(t, tok)
	ext, _ := in["ext"].(map[string]any)
	raw, _ := ext["embedded_tokens"].(map[string]any)
	top := make(map[string]string, len(raw))
	for k, v := range raw {
		top[k], _ = v.(string)
	}
	if got, want := sortedKeys(top), []string{"orders"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Hydra holds inner tokens for %v, want %v", got, want)
	}
	exp, _ := in["exp"].(float64)

	c.reset()
	r := c.get(t, "orders", tok)
	if r.status != http.StatusOK {
		t.Fatalf("orders sidecar: got %d %s, want 200", r.status, r.body)
	}
	keys := fetchJWKS(t, c.st.client, c.st.jwksURL())
	c.hop(t, "orders", top["orders"], time.Unix(int64(exp), 0), subj, keys, []string{tok})
	c.svc["profile"].none(t)
}

// phantomLatency measures, at the profile sidecar (no downstream calls),
// an introspected opaque token cold (first request: an introspection at
// Hydra) and cached, against embedded JWTs of the development issuer.
func (c *chain) phantomLatency(t *testing.T, h *hydra, client hydraClient) {
	t.Helper()
	scope := []string{"profile:read"}
	dev := devSubject
	dev.granted = scope
	opaque := make([]string, latencyN+1)
	jwts := make([]string, latencyN+1)
	for i := range opaque {
		opaque[i] = h.mustToken(t, client, scope, nil)
		jwts[i] = mintOuter(t, c.st, dev, "")
	}
	url := c.sc["profile"].url(shippedAPIs["profile"].path)
	timeRequests(t, c.st.client, url, []string{opaque[0], jwts[0]})
	ss := measure(t, c.st.client,
		&series{name: "introspection cold", url: url, tokens: opaque[1:]},
		&series{name: "embedded cold", url: url, tokens: jwts[1:]},
		&series{name: "introspection cached", url: url, tokens: repeat(opaque[0], latencyN)},
		&series{name: "embedded cached", url: url, tokens: repeat(jwts[0], latencyN)})
	c.reset()
	logLatencies(t, "introspection at Hydra's admin port (profile sidecar)", ss,
		"introspection cold", "embedded cold", "introspection cached", "embedded cached")
}

// addReportsReloaded adds the reports API and its exchange client (see
// addReports) and waits until every sidecar of the chain has reloaded the
// configuration too, so that no later reload flushes a cache a test relies
// on.
func (c *chain) addReportsReloaded(t *testing.T) {
	t.Helper()
	const reloaded = `embedtoken_sidecar_config_reloads_total{result="ok"}`
	before := map[string]float64{}
	for api, sc := range c.sc {
		before[api] = scrape(t, c.st.client, "http://"+sc.admin+"/metrics", reloaded)
	}
	addReports(t, c.st)
	for api, sc := range c.sc {
		waitCond(t, 20*time.Second, api+" sidecar reload", func() bool {
			return scrape(t, c.st.client, "http://"+sc.admin+"/metrics", reloaded) > before[api]
		})
	}
}

// revoke revokes tok at Hydra (RFC 7009, POST /oauth2/revoke on the public
// port, with the client's credentials).
func (h *hydra) revoke(t *testing.T, c hydraClient, tok string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.issuer+"/oauth2/revoke",
		strings.NewReader(url.Values{"token": {tok}, "token_type_hint": {"access_token"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("revoke: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %s: %s", resp.Status, b)
	}
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
