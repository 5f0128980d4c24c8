package cmd

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/embedtoken/embedtoken/catalog"
	"github.com/embedtoken/embedtoken/mint"
	"github.com/embedtoken/embedtoken/unwrap"
)

const exchangeSecret = "sidecar secret+/%:é" // form-urlencoding matters

// exchangeHookHCL is a hook configuration with a JWKS trust (the
// development issuer, Hydra-like claim path under ext) and an exchange
// client. TRUST is replaced by the trust's key source.
const exchangeHookHCL = `minter {
  issuer     = "https://minter.test"
  jwks_file  = "keys/jwks.json"
  active_key = "m1"
  signing_key "m1" {
    algorithm        = "EdDSA"
    private_key_file = "keys/m1.key.pem"
  }
}
api "orders" {
  audience = "https://orders.test"
  scopes   = ["orders:read", "orders:write"]
  claims   = ["tenant"]
  calls    = ["billing"]
}
api "billing" {
  audience = "https://billing.test"
  scopes   = ["billing:read"]
  exposed  = false
}
trust "dev" {
  issuer     = "https://dev.test"
  TRUST
  algorithms = ["ES256"]
  claim      = "ext.embedded_tokens"
}
hook {
  listen        = "127.0.0.1:0"
  public_listen = "127.0.0.1:0"
  admin_listen  = "127.0.0.1:0"
  api_key       = "hook-key-0123456789"
}
`

const exchangeClientHCL = `exchange_client "orders-sidecar" {
  secret_file = "client.secret"
  audiences   = ["https://orders.test"]
}
`

// exchangeHook is a hook runtime loaded from a configuration folder,
// serving its public handler over loopback.
type exchangeHook struct {
	t      testing.TB
	dir    string
	rt     *hookRuntime
	srv    *httptest.Server
	issuer *mint.DevIssuer
	logs   *observer.ObservedLogs
}

// newExchangeHook writes the configuration (trust is the trust's key
// source line, extra more blocks) and loads it.
func newExchangeHook(t testing.TB, trust, extra string) *exchangeHook {
	t.Helper()
	dir := t.TempDir()
	for _, k := range []struct{ dir, kid, alg string }{{"keys", "m1", "EdDSA"}, {"issuer", "dev-1", "ES256"}} {
		if _, _, err := catalog.WriteKey(filepath.Join(dir, k.dir), k.kid, k.alg, 0); err != nil {
			t.Fatal(err)
		}
	}
	src := strings.Replace(exchangeHookHCL, "TRUST", trust, 1) + extra
	if err := os.WriteFile(filepath.Join(dir, "c.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "client.secret"), []byte(exchangeSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	metrics, err := mint.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	rt := &hookRuntime{configs: []string{dir}, log: zap.New(core), metrics: metrics, reg: prometheus.NewRegistry()}
	rt.reloads = newReloadCounter()
	if rt.reload() == nil {
		t.Fatalf("load failed: %v", logs.All())
	}
	t.Cleanup(func() { rt.swap(nil, nil) })
	issuer, err := mint.LoadDevIssuer(filepath.Join(dir, "issuer", "dev-1.key.pem"), mint.DevIssuerOptions{Issuer: "https://dev.test"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(publicHandler(rt.cur.Load, &mint.HandlerOptions{Logger: rt.log, Metrics: metrics}))
	t.Cleanup(srv.Close)
	return &exchangeHook{t: t, dir: dir, rt: rt, srv: srv, issuer: issuer, logs: logs}
}

// outer signs a development outer token with the hook's claims under ext,
// as Hydra places them.
func (h *exchangeHook) outer(scopes ...string) string {
	h.t.Helper()
	s := mint.Subject{Sub: "user-1", ClientID: "web-app", Scopes: scopes, Exp: h.issuer.Exp(),
		Claims: map[string]any{"ext": map[string]any{"tenant": "acme", "embedded_tokens": map[string]string{}}}}
	tok, err := h.issuer.Sign(s, mint.Result{})
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

// exchange posts a token exchange for orders with subject token tok.
func (h *exchangeHook) exchange(tok string) (int, http.Header, map[string]any) {
	h.t.Helper()
	form := url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":      {tok},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
		"audience":           {"https://orders.test"},
	}
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+mint.TokenEndpointPath, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape("orders-sidecar"), url.QueryEscape(exchangeSecret))
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &body); err != nil {
		h.t.Fatalf("answer %q", raw)
	}
	return resp.StatusCode, resp.Header, body
}

// payload decodes a JWS payload (the signature is checked separately).
func payload(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestHookExchange runs the hook's public handler with the real subject
// verifier (unwrap's) on a configuration with a JWKS trust.
func TestHookExchange(t *testing.T) {
	h := newExchangeHook(t, `jwks_file = "issuer/jwks.json"`, exchangeClientHCL)
	status, hdr, body := h.exchange(h.outer("orders:read", "billing:read"))
	if status != 200 || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("exchange: %d %v", status, body)
	}
	tok := body["access_token"].(string)
	jwks, err := os.ReadFile(filepath.Join(h.dir, "keys", "jwks.json"))
	if err != nil {
		t.Fatal(err)
	}
	node, err := unwrap.Inspect(tok, &unwrap.InspectOptions{JWKS: [][]byte{jwks}})
	if err != nil || !node.Verified || node.Issuer != "https://minter.test" || node.Subject != "user-1" || node.ClientID != "web-app" {
		t.Fatalf("issued token: %+v %v", node, err)
	}
	if len(node.Children) != 1 || node.Children[0].Name != "billing" || !node.Children[0].Verified {
		t.Errorf("nested: %+v", node.Children)
	}
	c := payload(t, tok)
	if c["tenant"] != "acme" {
		t.Errorf("tenant (from ext) = %v", c["tenant"])
	}
	if act, _ := json.Marshal(c["act"]); string(act) != `{"sub":"orders-sidecar"}` {
		t.Errorf("act = %s", act)
	}
	if c["scope"] != "orders:read" || body["scope"] != "orders:read" {
		t.Errorf("scope = %v / %v", c["scope"], body["scope"])
	}

	// A token of this minter is no subject token.
	status, _, body = h.exchange(tok)
	if status != 400 || body["error"] != "invalid_request" || !strings.Contains(body["error_description"].(string), "minter") {
		t.Errorf("minter token: %d %v", status, body)
	}
	// Nor is garbage, nor a token of an unknown issuer.
	other, err := mint.LoadDevIssuer(filepath.Join(h.dir, "issuer", "dev-1.key.pem"), mint.DevIssuerOptions{Issuer: "https://other.test"})
	if err != nil {
		t.Fatal(err)
	}
	stranger, _ := other.Sign(mint.Subject{Sub: "u", ClientID: "c", Scopes: []string{"orders:read"}, Exp: other.Exp()}, mint.Result{})
	for name, tok := range map[string]string{"garbage": "not-a-token", "stranger": stranger} {
		if status, _, body := h.exchange(tok); status != 400 || body["error"] != "invalid_request" {
			t.Errorf("%s: %d %v", name, status, body)
		}
	}
	// An expired subject token says so.
	past, _ := mint.LoadDevIssuer(filepath.Join(h.dir, "issuer", "dev-1.key.pem"), mint.DevIssuerOptions{
		Issuer: "https://dev.test", Lifetime: time.Minute, Now: func() time.Time { return time.Now().Add(-time.Hour) }})
	expired, _ := past.Sign(mint.Subject{Sub: "u", ClientID: "c", Scopes: []string{"orders:read"}, Exp: past.Exp()}, mint.Result{})
	if status, _, body := h.exchange(expired); status != 400 || !strings.Contains(body["error_description"].(string), "expired") {
		t.Errorf("expired: %d %v", status, body)
	}
	// A subject token without the API's scopes.
	if status, _, body := h.exchange(h.outer("billing:read")); status != 400 || body["error"] != "invalid_scope" {
		t.Errorf("no scope: %d %v", status, body)
	}

	// Nothing logged holds a token or the client secret.
	for _, e := range h.logs.All() {
		line := e.Message + fmt.Sprint(e.ContextMap())
		for _, s := range []string{tok, stranger, expired, exchangeSecret, "hook-key-0123456789"} {
			if strings.Contains(line, s) {
				t.Errorf("log entry %q holds a token or secret", e.Message)
			}
		}
		if _, ok := e.ContextMap()["api_key_fp"]; ok {
			t.Error("logLoaded still logs a fingerprint of the API key")
		}
	}

	// A reload without exchange_client turns the endpoint off; one with it
	// turns it back on, with a new verifier.
	cfg := filepath.Join(h.dir, "c.hcl")
	src, _ := os.ReadFile(cfg)
	_ = os.WriteFile(cfg, []byte(strings.Replace(string(src), exchangeClientHCL, "", 1)), 0o644)
	if h.rt.reload() == nil {
		t.Fatal("reload failed")
	}
	if h.rt.subjects != nil {
		t.Error("a verifier without exchange clients")
	}
	if status, _, _ := h.exchange(h.outer("orders:read")); status != 404 {
		t.Errorf("off: %d", status)
	}
	_ = os.WriteFile(cfg, src, 0o644)
	if h.rt.reload() == nil || h.rt.subjects == nil {
		t.Fatal("reload failed")
	}
	if status, _, body := h.exchange(h.outer("orders:read")); status != 200 {
		t.Errorf("on again: %d %v", status, body)
	}
}

// TestHookExchangeUnavailable: while the trust's key set cannot be
// fetched, an exchange is 503 with Retry-After, never a refusal.
func TestHookExchangeUnavailable(t *testing.T) {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	}))
	t.Cleanup(down.Close)
	h := newExchangeHook(t, fmt.Sprintf("jwks_url = %q", down.URL+"/jwks.json"), exchangeClientHCL)
	status, hdr, body := h.exchange(h.outer("orders:read"))
	if status != 503 || body["error"] != "temporarily_unavailable" || hdr.Get("Retry-After") == "" {
		t.Errorf("keys down: %d %v %v", status, hdr, body)
	}
}

// TestHookExchangeOpaque: an opaque subject token goes to the introspection
// trust (RFC 7662); an endpoint that is down is 503.
func TestHookExchangeOpaque(t *testing.T) {
	var down atomic.Bool
	intro := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		_ = r.ParseForm()
		if r.PostForm.Get("token") != "ory_at_opaque1" {
			_, _ = w.Write([]byte(`{"active":false}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"active":true,"iss":"https://opaque.test","sub":"user-2","client_id":"web-app","scope":"orders:read","exp":%d,"token_use":"access_token"}`,
			time.Now().Add(time.Hour).Unix())
	}))
	t.Cleanup(intro.Close)
	h := newExchangeHook(t, `jwks_file = "issuer/jwks.json"`, exchangeClientHCL+fmt.Sprintf(`
trust "opaque" {
  issuer            = "https://opaque.test"
  introspection_url = %q
  token_prefix      = "ory_at_"
}
`, intro.URL))
	status, _, body := h.exchange("ory_at_opaque1")
	if status != 200 {
		t.Fatalf("opaque: %d %v", status, body)
	}
	if c := payload(t, body["access_token"].(string)); c["sub"] != "user-2" || c["scope"] != "orders:read" {
		t.Errorf("claims %v", c)
	}
	if status, _, body := h.exchange("ory_at_inactive"); status != 400 || body["error"] != "invalid_request" {
		t.Errorf("inactive: %d %v", status, body)
	}
	down.Store(true)
	if status, hdr, _ := h.exchange("ory_at_other"); status != 503 || hdr.Get("Retry-After") == "" {
		t.Errorf("introspection down: %d", status)
	}
}

// TestHookExchangeNeedsTrust: exchange clients without any trust cannot
// verify a subject token: the hook refuses to start.
func TestHookExchangeNeedsTrust(t *testing.T) {
	dir := hookConfig(t, "k1", "secret-key-0123456789")
	_ = os.WriteFile(filepath.Join(dir, "client.secret"), []byte("s"), 0o600)
	_ = os.WriteFile(filepath.Join(dir, "x.hcl"), []byte(exchangeClientHCL), 0o644)
	if code, _, errOut := run(t, "hook", "--config", dir); code != 2 || !strings.Contains(errOut, "trust") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

// BenchmarkExchange is one token exchange through the hook's public
// handler (client authentication, form, subject verification with unwrap,
// minting orders and its nested billing token); BenchmarkExchangeMint is a
// plain Mint of the same subject on the same minter. Their difference is
// what an exchange adds to minting.
func BenchmarkExchange(b *testing.B) {
	h := newExchangeHook(b, `jwks_file = "issuer/jwks.json"`, exchangeClientHCL)
	handler := publicHandler(h.rt.cur.Load, nil)
	body := url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":      {h.outer("orders:read", "billing:read")},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
		"audience":           {"https://orders.test"},
	}.Encode()
	// Wait for the trust's keys, as a running hook would have them.
	for deadline := time.Now().Add(5 * time.Second); !h.rt.subjects.Ready() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest(http.MethodPost, mint.TokenEndpointPath, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape("orders-sidecar"), url.QueryEscape(exchangeSecret))
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
}

func BenchmarkExchangeMint(b *testing.B) {
	h := newExchangeHook(b, `jwks_file = "issuer/jwks.json"`, exchangeClientHCL)
	m := h.rt.cur.Load()
	s := mint.Subject{Sub: "user-1", ClientID: "web-app", Scopes: []string{"orders:read", "billing:read"},
		Claims: map[string]any{"tenant": "acme"}, Exp: time.Now().Add(time.Hour)}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if res, err := m.Mint(ctx, s); err != nil || len(res.Tokens) != 1 {
			b.Fatal(err)
		}
	}
}
