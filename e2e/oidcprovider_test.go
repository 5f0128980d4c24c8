package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// The second real issuer: node-oidc-provider 9.13.3 run by the shipped
// deploy/oidc-provider/server.js (installed by deploy/oidc-provider/install.sh).
const (
	envOIDC     = "EMBEDTOKEN_E2E_OIDC"
	oidcGateway = "https://gateway.internal" // the resource (outer aud) of its tokens
	oidcClaim   = "embedded_tokens"          // extraTokenClaims puts the map at the top level
)

// needOIDC skips t unless EMBEDTOKEN_E2E_OIDC=1 (and under -short), and
// returns node and the server script; with the variable set, a missing
// install is a failure, not a skip.
func needOIDC(t *testing.T) (node, script string) {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: skipped under -short")
	}
	if os.Getenv(envOIDC) != "1" {
		t.Skipf("e2e: set %s=1 to run the tests with a real node-oidc-provider (after deploy/oidc-provider/install.sh)", envOIDC)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not installed")
	}
	dir := filepath.Join(repoRoot, "deploy", "oidc-provider")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider")); err != nil {
		t.Fatalf("oidc-provider is not installed: run deploy/oidc-provider/install.sh (%v)", err)
	}
	return node, filepath.Join(dir, "server.js")
}

// oidcIssuer is one running server.js.
type oidcIssuer struct {
	issuer string
	client hydraClient // ID, Secret and Scope are used
	p      *proc
	http   *http.Client
}

// startOIDC starts server.js on addr with a client_credentials client for
// the journeys; hookURL empty runs it without the hook.
func startOIDC(t *testing.T, st *stack, addr, hookURL string, ttl int) *oidcIssuer {
	t.Helper()
	node, script := needOIDC(t)
	o := &oidcIssuer{issuer: "http://" + addr, http: newClient()}
	o.client = hydraClient{ID: "e2e-client", Secret: "e2e-client-secret-" + randomHex(t, 8), Scope: hydraAllowed}
	env := baseEnv(
		"OIDC_ISSUER="+o.issuer, "OIDC_CLIENT_ID="+o.client.ID, "OIDC_CLIENT_SECRET="+o.client.Secret,
		"OIDC_SCOPES="+strings.Join(hydraAllowed, " "), "OIDC_RESOURCE="+oidcGateway,
		fmt.Sprintf("OIDC_TOKEN_TTL=%d", ttl))
	if hookURL != "" {
		env = append(env, "EMBEDTOKEN_HOOK_URL="+hookURL, "EMBEDTOKEN_HOOK_KEY="+st.hookKey, "EMBEDTOKEN_HOOK_HEADER="+hookHeader)
	}
	o.p = startOwned(t, st.owner, "oidc-provider", env, node, script)
	o.p.waitHTTP(t, o.issuer+"/.well-known/openid-configuration")
	return o
}

// token runs a client_credentials grant asking for scope.
func (o *oidcIssuer) token(t *testing.T, scope []string) tokenResponse {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {strings.Join(scope, " ")}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, o.issuer+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(o.client.ID), url.QueryEscape(o.client.Secret))
	resp, err := o.http.Do(req)
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	defer resp.Body.Close()
	var tr tokenResponse
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := json.Unmarshal(rb, &tr); err != nil {
		t.Fatalf("token response %s: %v: %q", resp.Status, err, rb)
	}
	tr.Status = resp.StatusCode
	return tr
}

func (o *oidcIssuer) mustToken(t *testing.T, scope []string) string {
	t.Helper()
	tr := o.token(t, scope)
	if tr.Status != http.StatusOK || tr.AccessToken == "" {
		t.Fatalf("token: %d %s: %s\n--- oidc-provider log:\n%s", tr.Status, tr.Error, tr.Description, o.p.tail(30))
	}
	return tr.AccessToken
}

// oidcTrust is the trust block of the sidecars (and of the hook's exchange)
// for server.js's JWT access tokens: RFC 9068 typ at+jwt, the map at the
// top level, the gateway as audience.
func oidcTrust(issuer string) string {
	return fmt.Sprintf(`trust "oidc" {
  issuer           = %q
  jwks_url         = "%s/jwks"
  algorithms       = ["RS256"]
  claim            = %q
  audience         = [%q]
  jwks_min_refetch = "1s"
}
`, issuer, issuer, oidcClaim, oidcGateway)
}

// TestOIDCProviderJourney: node-oidc-provider's extraTokenClaims calls
// /hooks/generic; client credentials -> an outer token with the embedded
// map -> the chain of sidecars, each service seeing only its narrowed
// token; an ungranted API is 403; with the hook down the issuer refuses.
func TestOIDCProviderJourney(t *testing.T) {
	needOIDC(t)
	addr := freeAddr(t)
	st := newStack(t, stackOptions{})
	st.addFile(t, "oidc.hcl", oidcTrust("http://"+addr))
	st.startHook(t)
	o := startOIDC(t, st, addr, "http://"+st.hookAddr.private+"/hooks/generic", 3600)
	c := startChain(t, st)
	subj := subject{sub: o.client.ID, clientID: o.client.ID, granted: hydraGranted}

	outer := o.mustToken(t, hydraGranted)
	oj := verifyJWT(t, outer, fetchJWKS(t, st.client, o.issuer+"/jwks"), jose.RS256)
	t.Logf("outer token from oidc-provider: %d bytes", len(outer))
	if typ, _ := oj.header["typ"].(string); typ != "at+jwt" {
		t.Errorf("outer typ %q, want at+jwt", typ)
	}
	if oj.str("aud") != oidcGateway {
		t.Errorf("outer aud %v, want %s", oj.claims["aud"], oidcGateway)
	}
	checkTree(t, oj, oidcClaim, subj, fetchJWKS(t, st.client, st.jwksURL()), "orders", "billing", "ledger")

	t.Run("journey", func(t *testing.T) { c.journey(t, outer, oidcClaim, subj) })

	t.Run("ungranted API", func(t *testing.T) {
		r := c.get(t, "profile", outer)
		c.expectRefused(t, r, http.StatusForbidden, "insufficient_scope")
	})

	t.Run("tampered outer token", func(t *testing.T) {
		c.expectRefused(t, c.get(t, "orders", flip(outer)), http.StatusUnauthorized, "invalid_token")
	})

	t.Run("hook down fails closed", func(t *testing.T) {
		st.hook.stop(t)
		tr := o.token(t, hydraGranted)
		if tr.Status < 500 || tr.AccessToken != "" {
			t.Errorf("token with the hook down: got %d %q (token: %v), want a 5xx and no token", tr.Status, tr.Error, tr.AccessToken != "")
		}
		st.startHook(t)
		o.mustToken(t, hydraGranted)
	})

	t.Run("hook refuses a wrong api key", func(t *testing.T) {
		bad := startOIDC(t, &stack{hookKey: "wrong-" + st.hookKey, owner: st.owner}, freeAddr(t), "http://"+st.hookAddr.private+"/hooks/generic", 3600)
		if tr := bad.token(t, hydraGranted); tr.Status == http.StatusOK || tr.AccessToken != "" {
			t.Errorf("token with a wrong hook key: got %d, want a refusal", tr.Status)
		}
		bad.p.stop(t)
	})

	st.stopAll(t)
	o.p.stop(t)
}

// TestOIDCProviderNoIssuerChanges: the "no issuer changes" mode. The
// issuer runs without any hook; the gateway-facing sidecar (orders) trusts
// its JWKS and has an exchange block, so it turns the plain access token
// into orders' narrowed token (with billing's and ledger's nested in it)
// by token exchange at the hook's public listener. It also measures what
// that costs per first request.
func TestOIDCProviderNoIssuerChanges(t *testing.T) {
	needOIDC(t)
	addr := freeAddr(t)
	st := newStack(t, stackOptions{})
	st.setEnv("ORDERS_SIDECAR_SECRET=" + randomHex(t, 24))
	st.addFile(t, "oidc.hcl", oidcTrust("http://"+addr)+`
exchange_client "orders-sidecar" {
  secret    = env("ORDERS_SIDECAR_SECRET")
  audiences = ["https://orders.internal"]
}
`)
	st.edit(t, "sidecars/orders.hcl", func(src string) string {
		return src + fmt.Sprintf(`
exchange {
  token_url = "http://%s/oauth2/token"
  client_id = "orders-sidecar"
  secret    = env("ORDERS_SIDECAR_SECRET")
}
`, st.hookAddr.public)
	})
	// The issuer first: the hook's exchange verifies subject tokens with
	// its keys, fetched at start (until then an exchange is a 503).
	o := startOIDC(t, st, addr, "", 3600)
	st.startHook(t)
	c := startChain(t, st)
	subj := subject{sub: o.client.ID, clientID: o.client.ID, granted: hydraGranted, act: true}

	plain := o.mustToken(t, hydraGranted)
	pj := decodeJWT(t, plain)
	if _, ok := pj.claims[oidcClaim]; ok {
		t.Fatal("the issuer without the hook embedded a map")
	}
	keys := fetchJWKS(t, st.client, st.jwksURL())

	t.Run("exchange at the gateway-facing sidecar", func(t *testing.T) {
		c.reset()
		// 503 + Retry-After while the hook's verifier has not loaded the
		// issuer's keys yet (DESIGN: the client retries); bounded.
		var r response
		waitCond(t, 15*time.Second, "an exchange once the hook has the issuer's keys", func() bool {
			r = c.get(t, "orders", plain)
			return r.status != http.StatusServiceUnavailable
		})
		if r.status != http.StatusOK {
			t.Fatalf("orders sidecar: got %d %s, want 200", r.status, r.body)
		}
		rec := c.svc["orders"].one(t)
		if strings.Contains(rec.Token, plain) || rec.Token == plain {
			t.Fatal("the orders service received the issuer's token")
		}
		j := checkInner(t, "orders", rec.Token, pj.time("exp"), subj, keys)
		act, _ := j.claims["act"].(map[string]any)
		if act["sub"] != "orders-sidecar" {
			t.Errorf("exchanged token's act: %v, want sub orders-sidecar", j.claims["act"])
		}
		// The nested tokens travel on: billing and ledger see theirs only,
		// each with act too.
		nested := j.embedded(minterClaim)
		c.hop(t, "billing", nested["billing"], j.time("exp"), subj, keys, []string{plain, rec.Token})
		c.svc["inventory"].none(t)
	})

	t.Run("ungranted API", func(t *testing.T) {
		c.expectRefused(t, c.get(t, "profile", plain), http.StatusForbidden, "insufficient_scope")
	})

	t.Run("first-request cost", func(t *testing.T) {
		fresh := make([]string, latencyN+1)
		for i := range fresh {
			fresh[i] = o.mustToken(t, hydraGranted)
		}
		url := c.sc["orders"].url(shippedAPIs["orders"].path)
		timeRequests(t, st.client, url, fresh[:1]) // connections up, fresh[0] cached
		ss := measure(t, st.client,
			&series{name: "exchange cold", url: url, tokens: fresh[1:]},
			&series{name: "exchange cached", url: url, tokens: repeat(fresh[0], latencyN)})
		c.reset()
		logLatencies(t, "no issuer changes (orders sidecar exchanging oidc-provider tokens, nested billing+ledger)", ss, "exchange cold", "exchange cached")
	})

	st.stopAll(t)
	o.p.stop(t)
}
