package unwrap

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/embedtoken/embedtoken/catalog"
)

// oauthServer is a fake OAuth endpoint (introspection or token exchange)
// that records what it received and answers with handle.
type oauthServer struct {
	*httptest.Server
	calls       atomic.Int64
	inFlight    atomic.Int64
	maxInFlight atomic.Int64
	mu          sync.Mutex
	forms       []url.Values
	reqs        []*http.Request
	handle      func(w http.ResponseWriter, form url.Values)
}

func newOAuthServer(t testing.TB) *oauthServer {
	s := &oauthServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		for m := s.maxInFlight.Load(); n > m && !s.maxInFlight.CompareAndSwap(m, n); m = s.maxInFlight.Load() {
		}
		s.calls.Add(1)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.URL.RawQuery != "" {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		_ = r.ParseForm()
		s.mu.Lock()
		s.forms = append(s.forms, r.PostForm)
		s.reqs = append(s.reqs, r.Clone(context.Background()))
		h := s.handle
		s.mu.Unlock()
		if h == nil {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		h(w, r.PostForm)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *oauthServer) set(h func(w http.ResponseWriter, form url.Values)) {
	s.mu.Lock()
	s.handle = h
	s.mu.Unlock()
}

// answer makes the server answer status and body to every call.
func (s *oauthServer) answer(status int, body string) {
	s.set(func(w http.ResponseWriter, _ url.Values) { writeJSON(w, status, body) })
}

func (s *oauthServer) last(t *testing.T) (url.Values, *http.Request) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.forms) == 0 {
		t.Fatal("endpoint received nothing")
	}
	return s.forms[len(s.forms)-1], s.reqs[len(s.reqs)-1]
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// Client credentials of the test configuration: characters that RFC 6749
// 2.3.1's form-urlencoding changes.
const (
	introClientID = "side car"
	introSecret   = "s3cr:t&=+"
	exchClientID  = "orders-sidecar"
	exchSecret    = "x-secret:1"
)

// phantomEnv is a sidecar for orders with an introspection trust (Hydra in
// opaque mode) and, optionally, an exchange block.
type phantomEnv struct {
	*env
	intro *oauthServer
	token *oauthServer
}

type phantomOpts struct {
	trust    string // extra attributes of the introspection trust
	sidecar  string // extra attributes of the sidecar block
	exchange bool   // declare an exchange block
}

// getConcurrently sends n requests with tok at once, opens release while
// they wait on the endpoint, and requires every answer to be 200.
func (p *phantomEnv) getConcurrently(t *testing.T, tok string, n int, release chan struct{}) {
	t.Helper()
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { codes[i] = p.get("/orders/1", tok).Code })
	}
	time.Sleep(200 * time.Millisecond)
	close(release)
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Fatalf("request %d: status %d", i, c)
		}
	}
}

func newPhantomEnv(t testing.TB, o phantomOpts) *phantomEnv {
	t.Helper()
	p := &phantomEnv{intro: newOAuthServer(t), token: newOAuthServer(t)}
	extra := fmt.Sprintf(`
trust "hydra-opaque" {
  issuer                  = %q
  introspection_url       = %q
  introspection_client_id = %q
  introspection_secret    = %q
  introspection_cache     = "60s"
  token_prefix            = "ory_at_"
  claim                   = "ext.embedded_tokens"
  %s
}
`, hydraIssuer, p.intro.URL, introClientID, introSecret, o.trust)
	if o.exchange {
		extra += fmt.Sprintf(`
exchange {
  token_url = %q
  client_id = %q
  secret    = %q
}
`, p.token.URL, exchClientID, exchSecret)
	}
	p.env = newEnv(t, envOpts{extra: extra, sidecar: o.sidecar})
	return p
}

func (p *phantomEnv) introspector() *introspection {
	return p.sc.verifier.introspector.(*introspection)
}

// opaque returns a new Hydra-like opaque token: ory_at_<key>.<signature>.
func opaque() string {
	var a, b [24]byte
	_, _ = rand.Read(a[:])
	_, _ = rand.Read(b[:])
	return "ory_at_" + b64(a[:]) + "." + b64(b[:])
}

var hydraSample = sync.OnceValue(func() []byte {
	b, err := os.ReadFile("testdata/hydra-introspection.opaque.json")
	if err != nil {
		panic(err)
	}
	return b
})

// hydraAnswer is Hydra v2.3.0's real introspection answer in opaque mode
// (testdata, captured from Hydra: aud [], token_use, ext.embedded_tokens,
// no jti) for alice's token embedding m, at the test clock; edit changes it.
func (p *phantomEnv) hydraAnswer(m map[string]any, edit func(a map[string]any)) string {
	var a map[string]any
	if err := json.Unmarshal(hydraSample(), &a); err != nil {
		panic(err)
	}
	now := p.clock.Now()
	a["iss"], a["sub"], a["client_id"] = hydraIssuer, "alice", "app"
	a["scope"] = "orders:read billing:read"
	a["iat"], a["nbf"], a["exp"] = now.Unix(), now.Unix(), now.Add(time.Hour).Unix()
	a["ext"].(map[string]any)["embedded_tokens"] = m
	if edit != nil {
		edit(a)
	}
	return mustJSON(a)
}

// issue answers token exchanges with a fresh orders token carrying act,
// living life.
func (p *phantomEnv) issue(life time.Duration) func(w http.ResponseWriter, form url.Values) {
	return func(w http.ResponseWriter, form url.Values) {
		c := p.innerClaims("https://orders.test", "orders:read", life)
		c["act"] = map[string]any{"sub": exchClientID}
		writeJSON(w, 200, mustJSON(map[string]any{
			"access_token": p.mintInner(c), "issued_token_type": tokenTypeAccessToken,
			"token_type": "Bearer", "expires_in": int(life.Seconds()), "scope": "orders:read",
		}))
	}
}

// withoutOrders is an idp outer token whose map lacks orders' token (minted
// before orders existed) but whose scope covers orders.
func (p *phantomEnv) withoutOrders() string {
	m := p.chain()
	delete(m, "orders")
	return sign(p.idpKey, hdr(p.idpKey, "at+jwt"), p.outerClaims(m))
}

// withExpiredOrders is an idp outer token whose orders token has expired.
func (p *phantomEnv) withExpiredOrders() string {
	m := p.chain()
	m["orders"] = p.mintInner(p.innerClaims("https://orders.test", "orders:read", -time.Hour))
	return sign(p.idpKey, hdr(p.idpKey, "at+jwt"), p.outerClaims(m))
}

func forwardedToken(t *testing.T, u *upstream) string {
	t.Helper()
	a := u.last(t).Header.Get("Authorization")
	if !strings.HasPrefix(a, "Bearer ") {
		t.Fatalf("upstream Authorization %q", a)
	}
	return strings.TrimPrefix(a, "Bearer ")
}

func payloadOf(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func unavailableFrom(r Reason) wantFail {
	return wantFail{status: 503, code: codeUnavailable, desc: descUnavailable, reason: r}
}

func TestIntrospectionHydraAnswer(t *testing.T) {
	p := newPhantomEnv(t, phantomOpts{})
	m := p.chain()
	p.intro.answer(200, p.hydraAnswer(m, nil))
	tok := opaque()
	rec := p.get("/orders/1", tok)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if got := forwardedToken(t, p.up); got != m["orders"] {
		t.Error("upstream did not get the orders inner token")
	}
	form, req := p.intro.last(t)
	if form.Get("token") != tok || form.Get("token_type_hint") != "access_token" || len(form) != 2 {
		t.Errorf("introspection form: %v", form)
	}
	id, secret, ok := req.BasicAuth()
	if !ok || id != url.QueryEscape(introClientID) || secret != url.QueryEscape(introSecret) {
		t.Errorf("Basic credentials: got %q %q, want them form-urlencoded (RFC 6749 2.3.1)", id, secret)
	}
	res, err := p.sc.verifier.Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	// Hydra's opaque introspection has no jti: accepted (see judge).
	if res.Source != SourceIntrospection || res.Outer.ID != "" || res.Outer.Subject != "alice" || !res.Outer.HasScope("orders:read") {
		t.Errorf("result: %+v", res.Outer)
	}
	if want := t0.Add(60 * time.Second); !res.Expiry.Equal(want) {
		t.Errorf("result expiry %v, want introspection_cache later %v", res.Expiry, want)
	}
	// A token without the prefix is not introspected; a JWS goes to JWKS.
	checkFail(t, p.env, p.get("/orders/1", "ory_rt_abc.def"), invalidToken(ReasonMalformed))
	if rec := p.get("/orders/1", p.outer()); rec.Code != 200 {
		t.Errorf("JWT outer token: %d", rec.Code)
	}
	if n := p.intro.calls.Load(); n != 1 {
		t.Errorf("introspection calls %d, want 1", n)
	}
}

func TestIntrospectionAnswers(t *testing.T) {
	p := newPhantomEnv(t, phantomOpts{trust: `audience = ["https://gateway.test"]`})
	aud := func(a map[string]any) { a["aud"] = []string{"https://gateway.test"} }
	hydra := func(edit func(a map[string]any)) string {
		return p.hydraAnswer(p.chain(), func(a map[string]any) {
			aud(a)
			if edit != nil {
				edit(a)
			}
		})
	}
	ok := wantFail{status: 200}
	garbage := unavailableFrom(ReasonIntrospection)
	cases := []struct {
		name   string
		status int
		body   string
		want   wantFail
	}{
		{"active", 200, hydra(nil), ok},
		{"leading whitespace", 200, " \n\t\r" + hydra(nil), ok},
		{"aud as a string", 200, hydra(func(a map[string]any) { a["aud"] = "https://gateway.test" }), ok},
		{"no token_use", 200, hydra(func(a map[string]any) { delete(a, "token_use") }), ok},
		{"no scope (Hydra omits an empty one)", 200, hydra(func(a map[string]any) { delete(a, "scope") }), ok},
		{"inactive", 200, `{"active":false}`, invalidToken(ReasonInactive)},
		{"issuer with a trailing slash", 200, hydra(func(a map[string]any) { a["iss"] = hydraIssuer + "/" }), invalidToken(ReasonUnknownIssuer)},
		{"no issuer", 200, hydra(func(a map[string]any) { delete(a, "iss") }), invalidToken(ReasonUnknownIssuer)},
		{"refresh token", 200, hydra(func(a map[string]any) { a["token_use"] = "refresh_token" }), invalidToken(ReasonTokenUse)},
		{"Hydra's empty aud", 200, hydra(func(a map[string]any) { a["aud"] = []string{} }), invalidToken(ReasonAudience)},
		{"other aud", 200, hydra(func(a map[string]any) { a["aud"] = []string{"https://other.test"} }), invalidToken(ReasonAudience)},
		{"expired", 200, hydra(func(a map[string]any) { a["exp"] = t0.Add(-time.Hour).Unix() }), invalidToken(ReasonExpired)},
		{"no exp", 200, hydra(func(a map[string]any) { delete(a, "exp") }), invalidToken(ReasonMissingClaim)},
		{"no sub", 200, hydra(func(a map[string]any) { delete(a, "sub") }), invalidToken(ReasonMissingClaim)},
		{"embedded map of the wrong type", 200, hydra(func(a map[string]any) { a["ext"] = map[string]any{"embedded_tokens": "x"} }), invalidToken(ReasonEmbeddedType)},
		{"inner token of another subject", 200, hydra(func(a map[string]any) { a["sub"] = "mallory" }), wantFail{status: 401, code: codeInvalidToken, reason: ReasonSubjectMismatch}},
		{"no orders token", 200, p.hydraAnswer(map[string]any{}, aud), wantFail{status: 401, code: codeInvalidToken, desc: descPredates, reason: ReasonPredatesAPI}},
		{"500", 500, `{"error":"server_error"}`, garbage},
		{"401: the sidecar's credentials", 401, `{"error":"invalid_client"}`, garbage},
		{"html", 200, `<html>oops</html>`, garbage},
		{"empty", 200, ``, garbage},
		{"duplicate member", 200, strings.Replace(hydra(nil), `"active":true`, `"active":true,"active":true`, 1), garbage},
		{"duplicate nested member", 200, strings.Replace(hydra(nil), `"embedded_tokens":`, `"embedded_tokens":{},"embedded_tokens":`, 1), garbage},
		{"active as a string", 200, `{"active":"true"}`, garbage},
		{"no active", 200, `{"iss":"x"}`, garbage},
		{"exp as a string", 200, hydra(func(a map[string]any) { a["exp"] = "soon" }), garbage},
		{"trailing data", 200, hydra(nil) + `{}`, garbage},
		{"too large", 200, hydra(func(a map[string]any) { a["pad"] = strings.Repeat("x", maxIntrospectBytes) }), garbage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p.intro.answer(tc.status, tc.body)
			rec := p.get("/orders/1", opaque())
			if tc.want.status == 200 {
				if rec.Code != 200 {
					t.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
				return
			}
			checkFail(t, p.env, rec, tc.want)
		})
	}
}

func TestIntrospectionEndpointFailures(t *testing.T) {
	p := newPhantomEnv(t, phantomOpts{})
	in := p.introspector()
	in.timeout = 100 * time.Millisecond

	t.Run("slow", func(t *testing.T) {
		p.intro.set(func(w http.ResponseWriter, _ url.Values) {
			time.Sleep(1500 * time.Millisecond)
			writeJSON(w, 200, p.hydraAnswer(p.chain(), nil))
		})
		start := time.Now()
		checkFail(t, p.env, p.get("/orders/1", opaque()), unavailableFrom(ReasonIntrospection))
		// Not a speed check: the answer must come from the timeout, well
		// before the endpoint would have answered.
		if d := time.Since(start); d > time.Second {
			t.Errorf("answered after %v: the timeout is %v", d, in.timeout)
		}
	})
	t.Run("redirect", func(t *testing.T) {
		elsewhere := newOAuthServer(t)
		elsewhere.answer(200, p.hydraAnswer(p.chain(), nil))
		p.intro.set(func(w http.ResponseWriter, _ url.Values) {
			w.Header().Set("Location", elsewhere.URL)
			w.WriteHeader(http.StatusTemporaryRedirect)
		})
		checkFail(t, p.env, p.get("/orders/1", opaque()), unavailableFrom(ReasonIntrospection))
		if elsewhere.calls.Load() != 0 {
			t.Error("the token followed a redirect")
		}
	})
	t.Run("down", func(t *testing.T) {
		p.intro.Close()
		checkFail(t, p.env, p.get("/orders/1", opaque()), unavailableFrom(ReasonIntrospection))
	})
	if v := counterValue(t, p.reg, "embedtoken_sidecar_introspections_total", map[string]string{"outcome": introUnavailable}); v != 3 {
		t.Errorf("unavailable introspections counted: %v, want 3", v)
	}
}

func TestIntrospectionCacheLifetime(t *testing.T) {
	p := newPhantomEnv(t, phantomOpts{})
	calls := p.intro.calls.Load
	get := func(tok string, want int) {
		t.Helper()
		if rec := p.get("/orders/1", tok); rec.Code != want {
			t.Fatalf("status %d, want %d: %s", rec.Code, want, rec.Body)
		}
	}
	// exp in an hour: introspection_cache (60s) bounds the cache life, the
	// verified-token cache's included.
	tok := opaque()
	p.intro.answer(200, p.hydraAnswer(p.chain(), nil))
	get(tok, 200)
	p.clock.Advance(59 * time.Second)
	get(tok, 200)
	if calls() != 1 {
		t.Fatalf("calls %d within introspection_cache, want 1", calls())
	}
	p.clock.Advance(2 * time.Second)
	get(tok, 200)
	if calls() != 2 {
		t.Fatalf("calls %d past introspection_cache, want 2", calls())
	}

	// exp in 20 s: exp bounds it.
	p.clock.Set(t0)
	tok = opaque()
	p.intro.answer(200, p.hydraAnswer(p.chain(), func(a map[string]any) { a["exp"] = t0.Add(20 * time.Second).Unix() }))
	get(tok, 200)
	p.clock.Advance(19 * time.Second)
	get(tok, 200)
	if calls() != 3 {
		t.Fatalf("calls %d before exp, want 3", calls())
	}
	p.clock.Advance(2 * time.Second)
	p.intro.answer(200, `{"active":false}`) // revoked, or expired at the issuer
	get(tok, 401)
	if calls() != 4 {
		t.Fatalf("calls %d past exp, want 4", calls())
	}

	// Revocation: seen within introspection_cache.
	p.clock.Set(t0)
	tok = opaque()
	p.intro.answer(200, p.hydraAnswer(p.chain(), nil))
	get(tok, 200)
	p.intro.answer(200, `{"active":false}`)
	p.clock.Advance(30 * time.Second)
	get(tok, 200)
	p.clock.Advance(31 * time.Second)
	get(tok, 401)
}

func TestIntrospectionFailuresCached(t *testing.T) {
	p := newPhantomEnv(t, phantomOpts{})
	calls := p.intro.calls.Load
	tok := opaque()
	p.intro.answer(500, ``)
	checkFail(t, p.env, p.get("/orders/1", tok), unavailableFrom(ReasonIntrospection))
	p.intro.answer(200, p.hydraAnswer(p.chain(), nil))
	p.clock.Advance(4 * time.Second)
	checkFail(t, p.env, p.get("/orders/1", tok), unavailableFrom(ReasonIntrospection))
	if calls() != 1 {
		t.Fatalf("calls %d within 5 s of a failure, want 1", calls())
	}
	p.clock.Advance(2 * time.Second)
	if rec := p.get("/orders/1", tok); rec.Code != 200 {
		t.Fatalf("status %d after the failure's 5 s", rec.Code)
	}
	if calls() != 2 {
		t.Fatalf("calls %d, want 2", calls())
	}

	// An inactive token is a failure too: cached 5 s.
	tok = opaque()
	p.intro.answer(200, `{"active":false}`)
	for range 3 {
		checkFail(t, p.env, p.get("/orders/1", tok), invalidToken(ReasonInactive))
	}
	if calls() != 3 {
		t.Fatalf("calls %d for an inactive token, want 3", calls())
	}
	p.clock.Advance(6 * time.Second)
	checkFail(t, p.env, p.get("/orders/1", tok), invalidToken(ReasonInactive))
	if calls() != 4 {
		t.Fatalf("calls %d, want 4", calls())
	}
	if v := counterValue(t, p.reg, "embedtoken_sidecar_introspections_total", map[string]string{"outcome": introCached}); v != 3 {
		t.Errorf("cached introspections counted: %v, want 3", v)
	}
}

func TestIntrospectionOneInFlightPerToken(t *testing.T) {
	p := newPhantomEnv(t, phantomOpts{})
	release := make(chan struct{})
	body := p.hydraAnswer(p.chain(), nil)
	p.intro.set(func(w http.ResponseWriter, _ url.Values) {
		<-release
		writeJSON(w, 200, body)
	})
	const n = 50
	p.getConcurrently(t, opaque(), n, release)
	if c := p.intro.calls.Load(); c != 1 {
		t.Errorf("introspection calls %d for %d concurrent requests with one token, want 1", c, n)
	}
}

func TestIntrospectionConcurrencyBound(t *testing.T) {
	p := newPhantomEnv(t, phantomOpts{})
	in := p.introspector()
	in.sem = make(chan struct{}, 3)
	body := p.hydraAnswer(p.chain(), nil)
	p.intro.set(func(w http.ResponseWriter, _ url.Values) {
		time.Sleep(20 * time.Millisecond)
		writeJSON(w, 200, body)
	})
	const n = 20
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { codes[i] = p.get("/orders/1", opaque()).Code })
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Fatalf("request %d: status %d", i, c)
		}
	}
	if m := p.intro.maxInFlight.Load(); m > 3 {
		t.Errorf("%d introspections in flight, bound 3", m)
	}
	if c := p.intro.calls.Load(); c != n {
		t.Errorf("calls %d, want %d", c, n)
	}

	// Every slot taken: a request waits no longer than its own context.
	for range cap(in.sem) {
		in.sem <- struct{}{}
	}
	defer func() {
		for range cap(in.sem) {
			<-in.sem
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := p.sc.verifier.Verify(ctx, opaque())
	if f := asFailure(err); f.Status != 503 || time.Since(start) > time.Second {
		t.Errorf("saturated: %v after %v", err, time.Since(start))
	}
}

func TestIntrospectionCachedWithoutTokenCache(t *testing.T) {
	p := newPhantomEnv(t, phantomOpts{sidecar: "cache_entries = 0"})
	if p.sc.verifier.cache != nil || p.introspector().cache == nil {
		t.Fatal("cache_entries = 0 must turn off the verified-token cache only")
	}
	p.intro.answer(200, p.hydraAnswer(p.chain(), nil))
	tok := opaque()
	for range 3 {
		if rec := p.get("/orders/1", tok); rec.Code != 200 {
			t.Fatalf("status %d", rec.Code)
		}
	}
	if c := p.intro.calls.Load(); c != 1 {
		t.Errorf("calls %d, want 1", c)
	}
}

// FuzzIntrospectionAnswer feeds arbitrary bodies to the judge of
// introspection answers: it must never panic, and must return either claims
// fit for an outer token or a 401 or 503 failure.
func FuzzIntrospectionAnswer(f *testing.F) {
	f.Add(hydraSample())
	f.Add([]byte(`{"active":false}`))
	f.Add([]byte(`{"active":true,"iss":"http://127.0.0.1:4444","sub":"a","client_id":"c","exp":1800000100,"ext":{"embedded_tokens":{"orders":"x.y.z"}}}`))
	f.Add([]byte(`{"active":true,"active":true}`))
	f.Add([]byte(`{"active":"true"}`))
	f.Add([]byte(`[]`))
	in := &introspection{leeway: catalog.DefaultLeeway}
	it := &introspectionTrust{t: &catalog.Trust{Name: "hydra-opaque", Issuer: hydraIssuer}, claim: []string{"ext", "embedded_tokens"}, ttl: time.Minute}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, fail := in.judge(body, it, t0)
		switch {
		case fail != nil && c != nil:
			t.Fatal("claims and a failure")
		case fail != nil:
			if fail.Status != 401 && fail.Status != 503 {
				t.Fatalf("status %d", fail.Status)
			}
		case c == nil:
			t.Fatal("neither claims nor a failure")
		case c.Issuer != hydraIssuer || c.Subject == "" || c.ClientID == "" || c.Expiry.IsZero() || !c.Until.Equal(t0.Add(time.Minute)):
			t.Fatalf("accepted claims %+v", c)
		}
	})
}
