package mint_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/embedtoken/embedtoken/catalog"
	"github.com/embedtoken/embedtoken/mint"
)

// Exchange clients of the tests. The second secret holds every character
// that RFC 6749 2.3.1's form-urlencoding changes.
const (
	ordersSecret  = "orders-sidecar-secret-8c1e"
	specialSecret = "p@ss w+rd%2F:é&=?#"
	subjectToken  = "subject-token-7f3a9b" // what the fake verifier accepts
)

const exchangeHCL = `
exchange_client "orders-sidecar" {
  secret    = env("ORDERS_SECRET")
  audiences = ["https://orders.test", "https://profile.test"]
}

exchange_client "status-client" {
  secret    = env("SPECIAL_SECRET")
  audiences = ["https://status.test"]
}
`

// exchangeCatalog is baseHCL with the exchange clients.
func exchangeCatalog(t testing.TB, mintFor string, key testKey) *catalog.Catalog {
	t.Helper()
	fsys := fstest.MapFS{
		"main.hcl":                     {Data: []byte(testHCL(key.kid, mintFor, key) + exchangeHCL)},
		"keys/" + key.kid + ".key.pem": {Data: key.pem, Mode: 0o600},
	}
	env := map[string]string{"HOOK_KEY": testAPIKey, "ORDERS_SECRET": ordersSecret, "SPECIAL_SECRET": specialSecret}
	cat, _, diags := catalog.Load(fsys, []string{"."}, &catalog.Options{Keys: catalog.KeysRequire,
		LookupEnv: func(n string) (string, bool) { v, ok := env[n]; return v, ok }})
	if diags.HasErrors() {
		t.Fatalf("load: %s", diags.Error())
	}
	return cat
}

// fakeSubjects is a hand-written SubjectVerifier.
type fakeSubjects struct {
	VerifyFunc func(ctx context.Context, token string) (*mint.SubjectToken, error)
}

func (f *fakeSubjects) VerifySubject(ctx context.Context, token string) (*mint.SubjectToken, error) {
	return f.VerifyFunc(ctx, token)
}

// testSubject is the verified subject token the fake returns by default.
func testSubject() *mint.SubjectToken {
	return &mint.SubjectToken{
		Subject: mint.Subject{
			Sub:      "user-1",
			ClientID: "web-app",
			Scopes:   []string{"orders:read", "orders:write", "billing:read", "inventory:read", "profile:read"},
			Audience: []string{"https://gateway.test"},
			Claims: map[string]any{
				"email": json.RawMessage(`"ada@example.test"`), "tenant": json.RawMessage(`"acme"`),
				"name": json.RawMessage(`"Ada"`), "secret_claim": json.RawMessage(`"not declared"`),
			},
			Exp: testNow.Add(time.Hour),
		},
		Issuer: "https://issuer.test",
		ID:     "subject-jti-1",
	}
}

// exchangeEnv serves NewPublicMux with the exchange endpoint registered,
// as the hook does, over loopback.
type exchangeEnv struct {
	t     *testing.T
	cur   atomic.Pointer[mint.Minter]
	srv   *httptest.Server
	subj  func() (*mint.SubjectToken, error) // what the fake verifier answers
	calls atomic.Int32
	logs  *observer.ObservedLogs
	reg   *prometheus.Registry
	v     *verifier
}

func newExchangeEnv(t *testing.T, mintFor string) *exchangeEnv {
	t.Helper()
	key := newTestKey(t, "k1", jose.EdDSA)
	core, logs := observer.New(zap.DebugLevel)
	e := &exchangeEnv{t: t, logs: logs, reg: prometheus.NewRegistry()}
	e.subj = func() (*mint.SubjectToken, error) { return testSubject(), nil }
	met, err := mint.NewMetrics(e.reg)
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeSubjects{VerifyFunc: func(_ context.Context, token string) (*mint.SubjectToken, error) {
		e.calls.Add(1)
		if token != subjectToken {
			return nil, fmt.Errorf("%w: signature", mint.ErrSubjectToken)
		}
		return e.subj()
	}}
	log := zap.New(core)
	e.cur.Store(newMinter(t, exchangeCatalog(t, mintFor, key), &mint.Options{Logger: log, Metrics: met, Subjects: fake}))
	hopts := &mint.HandlerOptions{Logger: log, Metrics: met}
	mux := mint.NewPublicMux(e.cur.Load, hopts)
	mux.Handle(mint.TokenEndpointPath, mint.NewExchangeHandler(e.cur.Load, hopts))
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	e.v = fetchJWKS(t, e.srv)
	return e
}

// form is a valid exchange request for orders.
func validForm() url.Values {
	return url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":      {subjectToken},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
		"audience":           {"https://orders.test"},
	}
}

// basic sets HTTP Basic credentials the RFC 6749 2.3.1 way.
func basic(id, secret string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret)) }
}

// exchangeResult is one answer.
type exchangeResult struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// post sends body (form-encoded unless edit changes it) with auth.
func (e *exchangeEnv) post(body string, edit ...func(*http.Request)) exchangeResult {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+mint.TokenEndpointPath, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, f := range edit {
		f(req)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	res := exchangeResult{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if err := json.Unmarshal(raw, &res.body); err != nil {
		e.t.Fatalf("answer %d is not JSON: %q", resp.StatusCode, raw)
	}
	return res
}

// exchange posts form as the orders sidecar and wants 200.
func (e *exchangeEnv) exchange(form url.Values) (exchangeResult, map[string]any) {
	e.t.Helper()
	res := e.post(form.Encode(), basic("orders-sidecar", ordersSecret))
	if res.status != http.StatusOK {
		e.t.Fatalf("status %d: %s", res.status, res.raw)
	}
	tok, _ := res.body["access_token"].(string)
	return res, e.v.verify(tok)
}

func TestExchange(t *testing.T) {
	e := newExchangeEnv(t, "scope")
	res, c := e.exchange(validForm())

	for k, want := range map[string]string{"Cache-Control": "no-store", "Pragma": "no-cache", "Content-Type": "application/json"} {
		if got := res.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	wantBody := map[string]any{
		"issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
		"token_type":        "Bearer",
		"expires_in":        float64(300),
		"scope":             "orders:read orders:write",
	}
	for k, want := range wantBody {
		if res.body[k] != want {
			t.Errorf("%s = %v, want %v", k, res.body[k], want)
		}
	}
	if len(res.body) != 5 {
		t.Errorf("answer members: %v", keys(res.body))
	}

	// The issued token: narrowed like an embedded one, the subject's
	// client_id, only declared claims, act naming the exchange client.
	want := map[string]any{
		"iss": "https://minter.test", "aud": "https://orders.test", "sub": "user-1", "client_id": "web-app",
		"scope": "orders:read orders:write", "email": "ada@example.test", "tenant": "acme",
		"iat": float64(testNow.Unix()), "exp": float64(testNow.Unix() + 300),
	}
	for k, w := range want {
		if c[k] != w {
			t.Errorf("claim %s = %v, want %v", k, c[k], w)
		}
	}
	if _, ok := c["name"]; ok {
		t.Error("undeclared claim name copied")
	}
	if _, ok := c["secret_claim"]; ok {
		t.Error("undeclared claim secret_claim copied")
	}
	if act, _ := json.Marshal(c["act"]); string(act) != `{"sub":"orders-sidecar"}` {
		t.Errorf("act = %s", act)
	}

	// Nested tokens, as in an embedded orders token, each with act.
	nested, _ := c["embedded_tokens"].(map[string]any)
	if got := keys(nested); strings.Join(got, ",") != "billing,inventory,status" {
		t.Fatalf("nested = %v", got)
	}
	for name, tok := range nested {
		nc := e.v.verify(tok.(string))
		if nc["sub"] != "user-1" || nc["client_id"] != "web-app" || nc["exp"].(float64) > c["exp"].(float64) {
			t.Errorf("%s: %v", name, nc)
		}
		if act, _ := json.Marshal(nc["act"]); string(act) != `{"sub":"orders-sidecar"}` {
			t.Errorf("%s: act = %s", name, act)
		}
	}

	// resource names the API as well as audience does; requested_token_type
	// jwt is accepted.
	f := validForm()
	f.Del("audience")
	f.Set("resource", "https://profile.test")
	f.Set("requested_token_type", "urn:ietf:params:oauth:token-type:jwt")
	f.Set("subject_token_type", "urn:ietf:params:oauth:token-type:jwt")
	res, c = e.exchange(f)
	if c["aud"] != "https://profile.test" || c["scope"] != "profile:read" || res.body["expires_in"] != float64(600) {
		t.Errorf("resource: %v %v", c, res.body)
	}

	// The audit log names the client, the API and the jtis; the counter
	// counts.
	audit := e.logs.FilterMessage("exchanged").All()
	if len(audit) != 2 {
		t.Fatalf("%d audit entries", len(audit))
	}
	fields := audit[0].ContextMap()
	if fields["exchange_client"] != "orders-sidecar" || fields["api"] != "orders" || fields["client_id"] != "web-app" ||
		fields["sub_fp"] != mint.Fingerprint("user-1") || fields["subject_jti"] != "subject-jti-1" || fields["jti"] == "" {
		t.Errorf("audit fields %v", fields)
	}
	if n := (counterValue(t, e.reg, "embedtoken_exchange_requests_total", "ok")); n != 2 {
		t.Errorf("ok exchanges = %v", n)
	}
}

// counterValue reads the child of a registered counter vector by label
// value; zero when absent.
func counterValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestExchangeErrors(t *testing.T) {
	e := newExchangeEnv(t, "scope")
	good := basic("orders-sidecar", ordersSecret)
	with := func(edit func(url.Values)) string {
		f := validForm()
		edit(f)
		return f.Encode()
	}
	tests := []struct {
		name   string
		body   string
		edit   []func(*http.Request)
		status int
		code   string
	}{
		// Client authentication.
		{"no credentials", validForm().Encode(), nil, 401, "invalid_client"},
		{"wrong secret", validForm().Encode(), []func(*http.Request){basic("orders-sidecar", "nope")}, 401, "invalid_client"},
		{"unknown client", validForm().Encode(), []func(*http.Request){basic("intruder", ordersSecret)}, 401, "invalid_client"},
		{"empty secret", validForm().Encode(), []func(*http.Request){basic("orders-sidecar", "")}, 401, "invalid_client"},
		{"bearer scheme", validForm().Encode(), []func(*http.Request){func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+ordersSecret) }}, 401, "invalid_client"},
		{"basic not base64", validForm().Encode(), []func(*http.Request){func(r *http.Request) { r.Header.Set("Authorization", "Basic !!!") }}, 401, "invalid_client"},
		{"secret not form-encoded", validForm().Encode(), []func(*http.Request){func(r *http.Request) { r.SetBasicAuth("status-client", specialSecret) }}, 401, "invalid_client"},
		{"two Authorization headers", validForm().Encode(), []func(*http.Request){good, func(r *http.Request) { r.Header.Add("Authorization", "Basic eDp5") }}, 400, "invalid_request"},
		{"client_secret in body", with(func(f url.Values) { f.Set("client_secret", ordersSecret) }), []func(*http.Request){good}, 400, "invalid_request"},
		{"client_secret_post only", with(func(f url.Values) { f.Set("client_id", "orders-sidecar"); f.Set("client_secret", ordersSecret) }), nil, 401, "invalid_client"},
		{"other client_id", with(func(f url.Values) { f.Set("client_id", "status-client") }), []func(*http.Request){good}, 400, "invalid_request"},

		// Transport and body.
		{"json body", `{"grant_type":"x"}`, []func(*http.Request){good, func(r *http.Request) { r.Header.Set("Content-Type", "application/json") }}, 400, "invalid_request"},
		{"no content type", validForm().Encode(), []func(*http.Request){good, func(r *http.Request) { r.Header.Del("Content-Type") }}, 400, "invalid_request"},
		{"query parameters", validForm().Encode(), []func(*http.Request){good, func(r *http.Request) { r.URL.RawQuery = "subject_token=x" }}, 400, "invalid_request"},
		{"malformed form", "grant_type=%zz", []func(*http.Request){good}, 400, "invalid_request"},
		{"semicolon form", "grant_type=a;b=c", []func(*http.Request){good}, 400, "invalid_request"},
		{"body too large", "x=" + strings.Repeat("a", mint.MaxExchangeBodyBytes), []func(*http.Request){good}, 413, "invalid_request"},

		// Grammar.
		{"no grant_type", with(func(f url.Values) { f.Del("grant_type") }), []func(*http.Request){good}, 400, "invalid_request"},
		{"empty grant_type", with(func(f url.Values) { f.Set("grant_type", "") }), []func(*http.Request){good}, 400, "invalid_request"},
		{"other grant_type", with(func(f url.Values) { f.Set("grant_type", "client_credentials") }), []func(*http.Request){good}, 400, "unsupported_grant_type"},
		{"repeated grant_type", with(func(f url.Values) { f.Add("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange") }), []func(*http.Request){good}, 400, "invalid_request"},
		{"repeated subject_token", with(func(f url.Values) { f.Add("subject_token", subjectToken) }), []func(*http.Request){good}, 400, "invalid_request"},
		{"repeated scope", with(func(f url.Values) { f.Add("scope", "orders:read"); f.Add("scope", "orders:read") }), []func(*http.Request){good}, 400, "invalid_request"},
		{"no subject_token", with(func(f url.Values) { f.Del("subject_token") }), []func(*http.Request){good}, 400, "invalid_request"},
		{"no subject_token_type", with(func(f url.Values) { f.Del("subject_token_type") }), []func(*http.Request){good}, 400, "invalid_request"},
		{"id_token subject", with(func(f url.Values) { f.Set("subject_token_type", "urn:ietf:params:oauth:token-type:id_token") }), []func(*http.Request){good}, 400, "invalid_request"},
		{"refresh_token requested", with(func(f url.Values) { f.Set("requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token") }), []func(*http.Request){good}, 400, "invalid_request"},
		{"actor_token", with(func(f url.Values) {
			f.Set("actor_token", subjectToken)
			f.Set("actor_token_type", "urn:ietf:params:oauth:token-type:access_token")
		}), []func(*http.Request){good}, 400, "invalid_request"},
		{"actor_token_type alone", with(func(f url.Values) { f.Set("actor_token_type", "urn:ietf:params:oauth:token-type:access_token") }), []func(*http.Request){good}, 400, "invalid_request"},
		{"malformed scope", with(func(f url.Values) { f.Set("scope", "orders:read  orders:write") }), []func(*http.Request){good}, 400, "invalid_scope"},
		{"scope with a quote", with(func(f url.Values) { f.Set("scope", `orders"read`) }), []func(*http.Request){good}, 400, "invalid_scope"},

		// Audience policy.
		{"no audience", with(func(f url.Values) { f.Del("audience") }), []func(*http.Request){good}, 400, "invalid_request"},
		{"two audiences", with(func(f url.Values) { f.Add("audience", "https://profile.test") }), []func(*http.Request){good}, 400, "invalid_target"},
		{"same audience twice", with(func(f url.Values) { f.Add("audience", "https://orders.test") }), []func(*http.Request){good}, 400, "invalid_target"},
		{"audience and resource", with(func(f url.Values) { f.Set("resource", "https://orders.test") }), []func(*http.Request){good}, 400, "invalid_target"},
		{"two resources", with(func(f url.Values) {
			f.Del("audience")
			f.Add("resource", "https://orders.test")
			f.Add("resource", "https://profile.test")
		}), []func(*http.Request){good}, 400, "invalid_target"},
		{"relative resource", with(func(f url.Values) { f.Del("audience"); f.Set("resource", "orders") }), []func(*http.Request){good}, 400, "invalid_target"},
		{"resource with fragment", with(func(f url.Values) { f.Del("audience"); f.Set("resource", "https://orders.test#x") }), []func(*http.Request){good}, 400, "invalid_target"},
		{"unknown audience", with(func(f url.Values) { f.Set("audience", "https://nowhere.test") }), []func(*http.Request){good}, 400, "invalid_target"},
		{"api name as audience", with(func(f url.Values) { f.Set("audience", "orders") }), []func(*http.Request){good}, 400, "invalid_target"},
		{"non-exposed api", with(func(f url.Values) { f.Set("audience", "https://ledger.test") }), []func(*http.Request){good}, 400, "invalid_target"},
		{"not allowed for this client", with(func(f url.Values) { f.Set("audience", "https://billing.test") }), []func(*http.Request){good}, 400, "invalid_target"},
		{"other client's audience", with(func(f url.Values) { f.Set("audience", "https://status.test") }), []func(*http.Request){good}, 400, "invalid_target"},

		// Scope narrowing.
		{"disjoint scope", with(func(f url.Values) { f.Set("scope", "billing:read") }), []func(*http.Request){good}, 400, "invalid_scope"},
		{"unknown scope", with(func(f url.Values) { f.Set("scope", "admin") }), []func(*http.Request){good}, 400, "invalid_scope"},

		// Subject tokens.
		{"invalid subject token", with(func(f url.Values) { f.Set("subject_token", "forged") }), []func(*http.Request){good}, 400, "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.calls.Load()
			res := e.post(tc.body, tc.edit...)
			if res.status != tc.status || res.body["error"] != tc.code {
				t.Fatalf("got %d %v, want %d %s", res.status, res.body, tc.status, tc.code)
			}
			if d, _ := res.body["error_description"].(string); d == "" || strings.ContainsAny(d, "\"\\") {
				t.Errorf("error_description %q", d)
			}
			if cc := res.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q", cc)
			}
			wa := res.header.Get("WWW-Authenticate")
			if tc.status == 401 && !strings.HasPrefix(wa, `Basic realm="`) {
				t.Errorf("WWW-Authenticate = %q, want a Basic challenge", wa)
			}
			if tc.status != 401 && wa != "" {
				t.Errorf("WWW-Authenticate %q on %d", wa, tc.status)
			}
			if strings.Contains(res.raw, subjectToken) || strings.Contains(res.raw, ordersSecret) {
				t.Error("the answer echoes the token or the secret")
			}
			// Nothing but a well-formed, authorized request reaches the
			// verifier.
			if n := e.calls.Load() - before; n != 0 && tc.name != "invalid subject token" && tc.code != "invalid_scope" {
				t.Errorf("the verifier was called %d times", n)
			}
		})
	}

	// GET is not the token endpoint's method.
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+mint.TokenEndpointPath, nil)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}

	// The logs hold neither the subject token nor a secret.
	for _, entry := range e.logs.All() {
		line := entry.Message + fmt.Sprint(entry.ContextMap())
		for _, s := range []string{subjectToken, ordersSecret, "forged", specialSecret} {
			if strings.Contains(line, s) {
				t.Errorf("log entry %q holds %q", line, s)
			}
		}
	}
	if n := (counterValue(t, e.reg, "embedtoken_exchange_requests_total", "invalid_client")); n != 8 {
		t.Errorf("invalid_client exchanges = %v, want 8", n)
	}
}

func TestExchangeClientAuthentication(t *testing.T) {
	e := newExchangeEnv(t, "scope")
	f := validForm()
	f.Set("audience", "https://status.test")
	// Form-urlencoded before base64 (RFC 6749 2.3.1): every special
	// character of the secret survives.
	res := e.post(f.Encode(), basic("status-client", specialSecret))
	if res.status != http.StatusOK {
		t.Fatalf("status %d: %s", res.status, res.raw)
	}
	c := e.v.verify(res.body["access_token"].(string))
	if act, _ := json.Marshal(c["act"]); string(act) != `{"sub":"status-client"}` {
		t.Errorf("act = %s", act)
	}
	// An API without scopes: no scope claim, no scope member.
	if _, ok := c["scope"]; ok {
		t.Errorf("scope claim on a scopeless API: %v", c["scope"])
	}
	if _, ok := res.body["scope"]; ok {
		t.Errorf("scope member for a scopeless API: %v", res.body)
	}
	// The special client's secret does not open the orders client.
	if res := e.post(validForm().Encode(), basic("orders-sidecar", specialSecret)); res.status != 401 {
		t.Errorf("cross secret: %d", res.status)
	}
	// A scope requested for an API that declares none is refused.
	f.Set("scope", "orders:read")
	if res := e.post(f.Encode(), basic("status-client", specialSecret)); res.status != 400 || res.body["error"] != "invalid_scope" {
		t.Errorf("scope on scopeless API: %d %v", res.status, res.body)
	}
}

func TestExchangeScopeNarrowing(t *testing.T) {
	e := newExchangeEnv(t, "scope")
	tests := []struct {
		scope      string
		wantScope  string
		wantNested string // nested tokens present
	}{
		{"", "orders:read orders:write", "billing,inventory,status"},
		{"orders:read", "orders:read", "status"},
		{"orders:write orders:read", "orders:read orders:write", "status"},
		{"orders:read billing:read unknown", "orders:read", "billing,status"},
		{"orders:read billing:charge", "orders:read", "status"}, // billing:charge was not granted
	}
	for _, tc := range tests {
		t.Run(tc.scope, func(t *testing.T) {
			f := validForm()
			if tc.scope != "" {
				f.Set("scope", tc.scope)
			}
			res, c := e.exchange(f)
			if c["scope"] != tc.wantScope || res.body["scope"] != tc.wantScope {
				t.Errorf("scope = %v / %v, want %q", c["scope"], res.body["scope"], tc.wantScope)
			}
			nested, _ := c["embedded_tokens"].(map[string]any)
			if got := strings.Join(keys(nested), ","); got != tc.wantNested {
				t.Errorf("nested = %s, want %s", got, tc.wantNested)
			}
		})
	}
}

// TestExchangeBruteForce: after 10 wrong secrets for a client, even the
// right one gets 429 with Retry-After until the minute passes; the
// description of a failed HTTP Basic authentication does not ask for HTTP
// Basic; the failures are logged with the client id and the address, at a
// bounded rate.
func TestExchangeBruteForce(t *testing.T) {
	e := newExchangeEnv(t, "scope")
	for i := range 10 {
		res := e.post(validForm().Encode(), basic("orders-sidecar", "wrong"))
		if res.status != http.StatusUnauthorized {
			t.Fatalf("failure %d: got %d, want 401", i, res.status)
		}
		if d, _ := res.body["error_description"].(string); strings.Contains(d, "use HTTP Basic") {
			t.Fatalf("Basic was used, yet the description says %q", d)
		}
	}
	res := e.post(validForm().Encode(), basic("orders-sidecar", ordersSecret))
	if res.status != http.StatusTooManyRequests || res.header.Get("Retry-After") == "" {
		t.Fatalf("after 10 failures: got %d Retry-After %q, want 429 with Retry-After", res.status, res.header.Get("Retry-After"))
	}
	if got := counterValue(t, e.reg, "embedtoken_exchange_requests_total", "throttled"); got != 1 {
		t.Errorf("throttled count: got %v, want 1", got)
	}
	lines := e.logs.FilterMessage("token exchange client authentication failed").All()
	if len(lines) == 0 || len(lines) > 5 {
		t.Fatalf("failure lines: got %d, want 1..5 (rate-limited)", len(lines))
	}
	f := lines[0].ContextMap()
	if f["client_id"] != "orders-sidecar" || f["remote_addr"] == "" {
		t.Errorf("failure line fields: %v", f)
	}
	for _, l := range e.logs.All() {
		for k, v := range l.ContextMap() {
			if s, ok := v.(string); ok && strings.Contains(s, ordersSecret) {
				t.Errorf("log field %s holds the client secret", k)
			}
		}
	}
	// No Authorization at all: the description says how to authenticate.
	e2 := newExchangeEnv(t, "scope")
	if res := e2.post(validForm().Encode()); !strings.Contains(fmt.Sprint(res.body["error_description"]), "HTTP Basic") {
		t.Errorf("without credentials: %v", res.body)
	}
}
