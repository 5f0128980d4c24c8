package mint_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/embedtoken/embedtoken/catalog"
	"github.com/embedtoken/embedtoken/mint"
)

// hookEnv runs the private and public handlers for one catalog on loopback,
// with observed logs and a fresh registry.
type hookEnv struct {
	t    *testing.T
	cur  atomic.Pointer[mint.Minter]
	priv *httptest.Server
	pub  *httptest.Server
	reg  *prometheus.Registry
	logs *observer.ObservedLogs
	met  *mint.Metrics
	log  *zap.Logger
}

func newHookEnv(t *testing.T, cat *catalog.Catalog) *hookEnv {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	e := &hookEnv{t: t, reg: prometheus.NewRegistry(), logs: logs, log: zap.New(core)}
	var err error
	if e.met, err = mint.NewMetrics(e.reg); err != nil {
		t.Fatal(err)
	}
	e.cur.Store(newMinter(t, cat, &mint.Options{Logger: e.log, Metrics: e.met}))
	e.priv = httptest.NewServer(mint.NewHookHandler(e.cur.Load, &mint.HandlerOptions{Logger: e.log, Metrics: e.met, MaxBodyBytes: 64 << 10}))
	t.Cleanup(e.priv.Close)
	e.pub = publicServer(t, e.cur.Load)
	return e
}

// post sends body to the private listener with the API key (none when key
// is empty) and returns the status and body.
func (e *hookEnv) post(path, key string, body []byte, header ...string) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.priv.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	if key != "" {
		req.Header.Set(catalog.DefaultAPIKeyHeader, key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Content-Type" {
			req.Header.Set(header[i], header[i+1])
			continue
		}
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := e.priv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		e.t.Errorf("Content-Type = %q", ct)
	}
	if !json.Valid(b) {
		e.t.Errorf("body is not JSON: %s", b)
	}
	return resp.StatusCode, b
}

// metric sums the samples of a counter or histogram (its count) named name
// whose labels include labels.
func (e *hookEnv) metric(name string, labels ...string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				sum += c.GetValue()
			}
			if h := m.GetHistogram(); h != nil {
				sum += float64(h.GetSampleCount())
			}
		}
	}
	return sum
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hydraAnswer is the hook's answer to Hydra.
type hydraAnswer struct {
	Session struct {
		AccessToken map[string]json.RawMessage `json:"access_token"`
		IDToken     json.RawMessage            `json:"id_token"`
	} `json:"session"`
}

// dotScopes is the test catalog with Hydra's sample scope names.
func dotScopes(src string) string {
	return strings.NewReplacer("orders:read", "orders.read", "orders:write", "orders.write").Replace(src)
}

func TestHydraClientCredentials(t *testing.T) {
	k1 := newTestKey(t, "k1", jose.EdDSA)
	e := newHookEnv(t, loadHCL(t, dotScopes(testHCL("k1", "scope", k1)), k1))
	status, body := e.post("/hooks/hydra", testAPIKey, readFixture(t, "hydra-client-credentials.json"))
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	var ans hydraAnswer
	if err := json.Unmarshal(body, &ans); err != nil {
		t.Fatal(err)
	}
	if len(ans.Session.AccessToken) != 1 {
		t.Errorf("access_token claims = %v, want only embedded_tokens", keys(ans.Session.AccessToken))
	}
	if string(ans.Session.IDToken) != `{}` {
		t.Errorf("id_token = %s, want {} for a null ext", ans.Session.IDToken)
	}
	var tokens map[string]string
	if err := json.Unmarshal(ans.Session.AccessToken["embedded_tokens"], &tokens); err != nil {
		t.Fatal(err)
	}
	const sub = "f61b936a-a034-4f84-82c2-a34cdc8f68c0"
	// expires_at.access_token 15:30:35.359824008 floors to now + 3600.
	got := fetchJWKS(t, e.pub).describe(tokens, sub, sub, testNow.Unix()+3600)
	want := map[string]string{
		"orders":        `orders scope="orders.read orders.write" exp=+300`,
		"orders/status": `status exp=+300`,
		"status":        `status exp=+300`,
	}
	if !equalMaps(got, want) {
		t.Errorf("tokens\n got %v\nwant %v", got, want)
	}
	if n := e.metric("embedtoken_hook_requests_total", "endpoint", "hydra", "outcome", "ok"); n != 1 {
		t.Errorf("hook ok = %v", n)
	}
	if n := e.metric("embedtoken_mint_tokens_total", "api", "orders"); n != 1 {
		t.Errorf("orders minted = %v", n)
	}
	if n := e.metric("embedtoken_mint_duration_seconds"); n != 1 {
		t.Errorf("latency samples = %v", n)
	}
	audit := e.logs.FilterMessage("minted").All()
	if len(audit) != 1 {
		t.Fatalf("audit entries = %d", len(audit))
	}
	ctx := audit[0].ContextMap()
	if ctx["client_id"] != sub || ctx["sub_fp"] != mint.Fingerprint(sub) || ctx["kid"] != "k1" {
		t.Errorf("audit = %v", ctx)
	}
	if apis, _ := ctx["apis"].([]any); len(apis) != 2 {
		t.Errorf("audit apis = %v", ctx["apis"])
	}
}

// TestHydraRefresh: a refresh request whose session.extra holds the map of
// the previous token gets a fresh map; every other claim of session.extra is
// kept; the ID token's ext is echoed; extra overlays ext for api.claims.
func TestHydraRefresh(t *testing.T) {
	k1 := newTestKey(t, "k1", jose.EdDSA)
	e := newHookEnv(t, testCatalog(t, "k1", "scope", k1))
	fixture := readFixture(t, "hydra-refresh.json")
	status, body := e.post("/hooks/hydra", testAPIKey, fixture)
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	var ans hydraAnswer
	if err := json.Unmarshal(body, &ans); err != nil {
		t.Fatal(err)
	}
	at := ans.Session.AccessToken
	if string(at["tenant"]) != `{"id":7,"name":"acme"}` || string(at["department"]) != `"engines"` || len(at) != 3 {
		t.Errorf("access_token claims = %s", body)
	}
	if bytes.Contains(body, []byte("c3RhbGUtc2lnbmF0dXJl")) {
		t.Error("the stale embedded map survived")
	}
	if want := `{"email":"ada@example.test","name":"Ada Lovelace","tenant":"stale-tenant-from-id-token"}`; string(ans.Session.IDToken) != want {
		t.Errorf("id_token = %s, want %s", ans.Session.IDToken, want)
	}
	var tokens map[string]string
	if err := json.Unmarshal(at["embedded_tokens"], &tokens); err != nil {
		t.Fatal(err)
	}
	got := fetchJWKS(t, e.pub).describe(tokens, "user-42", "web-app", testNow.Unix()+3600)
	want := map[string]string{
		"orders":        `orders scope="orders:read" exp=+300 email="ada@example.test" tenant={"id":7,"name":"acme"}`,
		"orders/status": `status exp=+300`,
		"profile":       `profile scope="profile:read" exp=+600 email="ada@example.test" name="Ada Lovelace"`,
		"status":        `status exp=+300`,
	}
	if !equalMaps(got, want) {
		t.Errorf("tokens\n got %v\nwant %v", got, want)
	}

	// A second refresh with the answer of the first as session.extra (what
	// Hydra stores) replaces the map again.
	var req map[string]any
	_ = json.Unmarshal(fixture, &req)
	req["session"].(map[string]any)["extra"] = json.RawMessage(mustJSON(t, at))
	_, body2 := e.post("/hooks/hydra", testAPIKey, mustJSON(t, req))
	var ans2 hydraAnswer
	_ = json.Unmarshal(body2, &ans2)
	if bytes.Equal(ans2.Session.AccessToken["embedded_tokens"], at["embedded_tokens"]) {
		t.Error("second refresh returned the previous map")
	}
}

// TestHydraAudience: mint_for = "audience" uses request.granted_audience.
func TestHydraAudience(t *testing.T) {
	k1 := newTestKey(t, "k1", jose.EdDSA)
	e := newHookEnv(t, testCatalog(t, "k1", "audience", k1))
	_, body := e.post("/hooks/hydra", testAPIKey, readFixture(t, "hydra-refresh.json"))
	var ans hydraAnswer
	_ = json.Unmarshal(body, &ans)
	var tokens map[string]string
	_ = json.Unmarshal(ans.Session.AccessToken["embedded_tokens"], &tokens)
	if len(tokens) != 1 || tokens["orders"] == "" {
		t.Errorf("tokens for %v, want orders only (the one granted audience)", keys(tokens))
	}
}

func TestHookFailures(t *testing.T) {
	k1 := newTestKey(t, "k1", jose.EdDSA)
	e := newHookEnv(t, testCatalog(t, "k1", "scope", k1))
	good := readFixture(t, "hydra-refresh.json")
	edit := func(f func(map[string]any)) []byte {
		var m map[string]any
		_ = json.Unmarshal(good, &m)
		f(m)
		return mustJSON(t, m)
	}
	session := func(m map[string]any) map[string]any { return m["session"].(map[string]any) }
	idToken := func(m map[string]any) map[string]any { return session(m)["id_token"].(map[string]any) }
	tests := []struct {
		name    string
		path    string
		key     string
		body    []byte
		header  []string
		status  int
		outcome string
		errCode string
	}{
		{"no api key", "/hooks/hydra", "", good, nil, 401, "unauthorized", "unauthorized"},
		{"wrong api key", "/hooks/hydra", testAPIKey + "x", good, nil, 401, "unauthorized", "unauthorized"},
		{"api key prefix", "/hooks/hydra", testAPIKey[:5], good, nil, 401, "unauthorized", "unauthorized"},
		{"two api keys", "/hooks/hydra", testAPIKey, good, []string{catalog.DefaultAPIKeyHeader, testAPIKey}, 401, "unauthorized", "unauthorized"},
		{"no api key on unknown path", "/hooks/other", "", good, nil, 401, "unauthorized", "unauthorized"},
		{"oversized body", "/hooks/hydra", testAPIKey, bytes.Repeat([]byte(" "), 65<<10), nil, 403, "too_large", "invalid_request"},
		{"malformed JSON", "/hooks/hydra", testAPIKey, good[:len(good)/2], nil, 403, "bad_request", "invalid_request"},
		{"syntax error", "/hooks/hydra", testAPIKey, []byte(`{"session": }`), nil, 403, "bad_request", "invalid_request"},
		{"trailing data", "/hooks/hydra", testAPIKey, append(append([]byte{}, good...), []byte(` {}`)...), nil, 403, "bad_request", "invalid_request"},
		{"not an object", "/hooks/hydra", testAPIKey, []byte(`[]`), nil, 403, "bad_request", "invalid_request"},
		{"duplicate member", "/hooks/hydra", testAPIKey, bytes.Replace(good, []byte(`"session"`), []byte(`"session":{},"session"`), 1), nil, 403, "bad_request", "invalid_request"},
		{"escaped duplicate subject", "/hooks/hydra", testAPIKey, bytes.Replace(good, []byte(`"subject"`), []byte(`"\u0073ubject":"admin","subject"`), 1), nil, 403, "bad_request", "invalid_request"},
		// encoding/json fills a field from any case variant of its name,
		// the last one winning: refused like a duplicate (issue 15).
		{"case-variant subject", "/hooks/hydra", testAPIKey, bytes.Replace(good, []byte(`"subject"`), []byte(`"SUBJECT":"admin","subject"`), 1), nil, 403, "bad_request", "invalid_request"},
		{"case-variant subject alone", "/hooks/hydra", testAPIKey, bytes.Replace(good, []byte(`"subject"`), []byte(`"Subject"`), 1), nil, 403, "bad_request", "invalid_request"},
		{"Unicode case-variant subject", "/hooks/hydra", testAPIKey, bytes.Replace(good, []byte(`"subject"`), []byte(`"\u017fubject":"admin","subject"`), 1), nil, 403, "bad_request", "invalid_request"},
		{"case-variant client_id", "/hooks/hydra", testAPIKey, bytes.Replace(good, []byte(`"requested_scopes"`), []byte(`"CLIENT_ID":"evil-client","requested_scopes"`), 1), nil, 403, "bad_request", "invalid_request"},
		{"case-variant granted_scopes", "/hooks/hydra", testAPIKey, bytes.Replace(good, []byte(`"granted_scopes"`), []byte(`"Granted_Scopes":["orders:read","orders:write"],"granted_scopes"`), 1), nil, 403, "bad_request", "invalid_request"},
		{"case-variant session", "/hooks/hydra", testAPIKey, bytes.Replace(good, []byte(`"session"`), []byte(`"Session":{},"session"`), 1), nil, 403, "bad_request", "invalid_request"},
		{"null", "/hooks/hydra", testAPIKey, []byte(`null`), nil, 403, "bad_request", "invalid_request"},
		{"empty body", "/hooks/hydra", testAPIKey, nil, nil, 403, "bad_request", "invalid_request"},
		{"wrong type", "/hooks/hydra", testAPIKey, edit(func(m map[string]any) { idToken(m)["subject"] = 42 }), nil, 403, "bad_request", "invalid_request"},
		{"scopes not a list", "/hooks/hydra", testAPIKey, edit(func(m map[string]any) { m["request"].(map[string]any)["granted_scopes"] = "orders:read" }), nil, 403, "bad_request", "invalid_request"},
		{"not JSON media type", "/hooks/hydra", testAPIKey, good, []string{"Content-Type", "text/plain"}, 403, "unsupported_media_type", "invalid_request"},
		{"no subject", "/hooks/hydra", testAPIKey, edit(func(m map[string]any) { idToken(m)["subject"] = "" }), nil, 403, "denied", "access_denied"},
		{"no client", "/hooks/hydra", testAPIKey, edit(func(m map[string]any) { m["request"].(map[string]any)["client_id"] = "" }), nil, 403, "denied", "access_denied"},
		{"no expiry", "/hooks/hydra", testAPIKey, edit(func(m map[string]any) { delete(idToken(m), "expires_at") }), nil, 403, "denied", "access_denied"},
		{"zero expiry", "/hooks/hydra", testAPIKey, edit(func(m map[string]any) {
			idToken(m)["expires_at"] = map[string]any{"access_token": "0001-01-01T00:00:00Z"}
		}), nil, 403, "denied", "access_denied"},
		{"expired", "/hooks/hydra", testAPIKey, edit(func(m map[string]any) {
			idToken(m)["expires_at"] = map[string]any{"access_token": "2026-11-29T14:30:35.1Z"}
		}), nil, 403, "denied", "access_denied"},
		{"oversized copied claim", "/hooks/hydra", testAPIKey, edit(func(m map[string]any) {
			session(m)["extra"].(map[string]any)["tenant"] = strings.Repeat("t", 2000)
		}), nil, 403, "denied", "access_denied"},
		{"ext not an object", "/hooks/hydra", testAPIKey, edit(func(m map[string]any) {
			idToken(m)["id_token_claims"].(map[string]any)["ext"] = "x"
		}), nil, 403, "denied", "access_denied"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			before := e.metric("embedtoken_mint_tokens_total")
			outcomeBefore := e.metric("embedtoken_hook_requests_total", "outcome", tc.outcome)
			status, body := e.post(tc.path, tc.key, tc.body, tc.header...)
			if status != tc.status {
				t.Errorf("status = %d, want %d (%s)", status, tc.status, body)
			}
			var eb struct {
				Error string `json:"error"`
				Desc  string `json:"error_description"`
			}
			if err := json.Unmarshal(body, &eb); err != nil || eb.Error != tc.errCode || eb.Desc == "" {
				t.Errorf("body = %s, want error %q with a description", body, tc.errCode)
			}
			if n := e.metric("embedtoken_mint_tokens_total"); n != before {
				t.Errorf("minted %v tokens on a failure", n-before)
			}
			if n := e.metric("embedtoken_hook_requests_total", "outcome", tc.outcome); n != outcomeBefore+1 {
				t.Errorf("outcome %s counted %v times", tc.outcome, n-outcomeBefore)
			}
		})
	}
}

func TestGenericHook(t *testing.T) {
	k1 := newTestKey(t, "k1", jose.EdDSA)
	e := newHookEnv(t, testCatalog(t, "k1", "scope", k1))
	exp := testNow.Unix() + 600
	tests := []struct {
		name   string
		body   string
		status int
		want   []string // APIs at the top level
	}{
		{"scope string", `{"sub":"u","client_id":"c","scope":"orders:read profile:read","exp":` + itoa(exp) + `}`, 200, []string{"orders", "profile", "status"}},
		{"scope list, fractional exp", `{"sub":"u","client_id":"c","scope":["profile:read"],"exp":` + itoa(exp) + `.75}`, 200, []string{"profile", "status"}},
		{"claims and audience", `{"sub":"u","client_id":"c","scope":"profile:read","audience":["https://profile.test"],"claims":{"name":"Ada","email":null},"exp":` + itoa(exp) + `}`, 200, []string{"profile", "status"}},
		{"audience string", `{"sub":"u","client_id":"c","audience":"https://profile.test","exp":` + itoa(exp) + `}`, 200, []string{"status"}},
		{"no scope", `{"sub":"u","client_id":"c","exp":` + itoa(exp) + `}`, 200, []string{"status"}},
		{"unknown member", `{"sub":"u","client_id":"c","exp":` + itoa(exp) + `,"admin":true}`, 400, nil},
		{"no sub", `{"client_id":"c","exp":` + itoa(exp) + `}`, 400, nil},
		{"no client_id", `{"sub":"u","exp":` + itoa(exp) + `}`, 400, nil},
		{"no exp", `{"sub":"u","client_id":"c"}`, 400, nil},
		{"exp as string", `{"sub":"u","client_id":"c","exp":"` + itoa(exp) + `"}`, 400, nil},
		{"exp in the past", `{"sub":"u","client_id":"c","exp":` + itoa(testNow.Unix()-1) + `}`, 400, nil},
		{"negative exp", `{"sub":"u","client_id":"c","exp":-5}`, 400, nil},
		{"scope a number", `{"sub":"u","client_id":"c","scope":5,"exp":` + itoa(exp) + `}`, 400, nil},
		{"scope list of numbers", `{"sub":"u","client_id":"c","scope":[1],"exp":` + itoa(exp) + `}`, 400, nil},
		{"claims not an object", `{"sub":"u","client_id":"c","claims":[],"exp":` + itoa(exp) + `}`, 400, nil},
		{"sub a number", `{"sub":1,"client_id":"c","exp":` + itoa(exp) + `}`, 400, nil},
		{"trailing data", `{"sub":"u","client_id":"c","exp":` + itoa(exp) + `}x`, 400, nil},
		{"duplicate sub", `{"sub":"u","client_id":"c","exp":` + itoa(exp) + `,"sub":"admin"}`, 400, nil},
		{"duplicate claim", `{"sub":"u","client_id":"c","scope":"profile:read","claims":{"name":"a","name":"b"},"exp":` + itoa(exp) + `}`, 400, nil},
		{"oversized claim", `{"sub":"u","client_id":"c","scope":"profile:read","claims":{"name":"` + strings.Repeat("n", 1100) + `"},"exp":` + itoa(exp) + `}`, 400, nil},
	}
	v := fetchJWKS(t, e.pub)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.t, v.t = t, t
			status, body := e.post("/hooks/generic", testAPIKey, []byte(tc.body))
			if status != tc.status {
				t.Fatalf("status = %d, want %d: %s", status, tc.status, body)
			}
			if status != 200 {
				return
			}
			var ans struct {
				Claim  string            `json:"claim"`
				Tokens map[string]string `json:"tokens"`
			}
			if err := json.Unmarshal(body, &ans); err != nil || ans.Claim != "embedded_tokens" || ans.Tokens == nil {
				t.Fatalf("answer %s", body)
			}
			if got := keys(ans.Tokens); strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("tokens for %v, want %v", got, tc.want)
			}
			v.describe(ans.Tokens, "u", "c", exp)
		})
	}
}

func TestGenericHookDisabled(t *testing.T) {
	k1 := newTestKey(t, "k1", jose.EdDSA)
	src := strings.Replace(testHCL("k1", "scope", k1), "generic       = true", "generic       = false", 1)
	e := newHookEnv(t, loadHCL(t, src, k1))
	status, _ := e.post("/hooks/generic", testAPIKey, []byte(`{"sub":"u","client_id":"c","exp":`+itoa(testNow.Unix()+60)+`}`))
	if status != http.StatusNotFound {
		t.Errorf("status = %d, want 404", status)
	}
	if n := e.metric("embedtoken_mint_tokens_total"); n != 0 {
		t.Errorf("minted %v", n)
	}
}

// TestOverBudget: over max_embedded_bytes the map is minted anyway, with a
// warning and a count.
func TestOverBudget(t *testing.T) {
	k1 := newTestKey(t, "k1", jose.EdDSA)
	src := strings.Replace(testHCL("k1", "scope", k1), `mint_for         = "scope"`, "mint_for = \"scope\"\n  max_embedded_bytes = 100", 1)
	e := newHookEnv(t, loadHCL(t, src, k1))
	status, body := e.post("/hooks/generic", testAPIKey, []byte(`{"sub":"u","client_id":"c","scope":"orders:read","exp":`+itoa(testNow.Unix()+60)+`}`))
	if status != 200 || !bytes.Contains(body, []byte(`"orders"`)) {
		t.Fatalf("status %d: %s", status, body)
	}
	if n := e.metric("embedtoken_mint_over_budget_total"); n != 1 {
		t.Errorf("over budget = %v", n)
	}
	if w := e.logs.FilterMessageSnippet("over budget").FilterField(zap.String("reason", "over_budget")).Len(); w != 1 {
		t.Errorf("over-budget warnings = %d", w)
	}
}

// TestHookTimeout: a client that does not finish its body within
// hook.timeout gets 503 quickly.
func TestHookTimeout(t *testing.T) {
	k1 := newTestKey(t, "k1", jose.EdDSA)
	src := strings.Replace(testHCL("k1", "scope", k1), `timeout       = "2s"`, `timeout       = "300ms"`, 1)
	e := newHookEnv(t, loadHCL(t, src, k1))
	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequest(http.MethodPost, e.priv.URL+"/hooks/hydra", pr)
	req.Header.Set(catalog.DefaultAPIKeyHeader, testAPIKey)
	req.ContentLength = 1000
	go func() { _, _ = pw.Write([]byte(`{"session":`)) }()
	start := time.Now()
	resp, err := e.priv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("status = %d, want 503 with Retry-After", resp.StatusCode)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("answered after %v", d)
	}
}

func TestPublicEndpoints(t *testing.T) {
	k1 := newTestKey(t, "k1", jose.EdDSA)
	e := newHookEnv(t, testCatalog(t, "k1", "scope", k1))
	resp, err := e.pub.Client().Get(e.pub.URL + mint.MetadataPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var md map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"issuer":         "https://minter.test",
		"jwks_uri":       "http://127.0.0.1:4459/.well-known/jwks.json",
		"token_endpoint": "http://127.0.0.1:4459/oauth2/token",
	}
	for k, w := range want {
		if md[k] != w {
			t.Errorf("%s = %v, want %v", k, md[k], w)
		}
	}
	if g, _ := md["grant_types_supported"].([]any); len(g) != 1 || g[0] != "urn:ietf:params:oauth:grant-type:token-exchange" {
		t.Errorf("grant_types_supported = %v", md["grant_types_supported"])
	}
	if a, _ := md["token_endpoint_auth_methods_supported"].([]any); len(a) != 1 || a[0] != "client_secret_basic" {
		t.Errorf("token_endpoint_auth_methods_supported = %v", md["token_endpoint_auth_methods_supported"])
	}

	// The JWKS holds public keys only.
	resp2, err := e.pub.Client().Get(e.pub.URL + mint.JWKSPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	raw, _ := io.ReadAll(resp2.Body)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("jwks %s: %v", raw, err)
	}
	if k := set.Keys[0]; !k.IsPublic() || k.KeyID != "k1" || k.Algorithm != "EdDSA" || k.Use != "sig" {
		t.Errorf("jwk = %+v", k)
	}
	if bytes.Contains(raw, []byte(`"d"`)) {
		t.Error("private key material in the JWKS")
	}
	if ct := resp2.Header.Get("Content-Type"); ct != "application/jwk-set+json" {
		t.Errorf("Content-Type = %q", ct)
	}

	// The public mux is open for more handlers (the exchange endpoint).
	mux := mint.NewPublicMux(e.cur.Load, nil)
	mux.HandleFunc("POST "+mint.TokenEndpointPath, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, mint.TokenEndpointPath, nil))
	if rec.Code != http.StatusTeapot {
		t.Errorf("extra handler: %d", rec.Code)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sortStrings(out)
	return out
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
