package unwrap

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestExchangeMissingInner(t *testing.T) {
	p := newPhantomEnv(t, phantomOpts{exchange: true})
	p.token.set(p.issue(5 * time.Minute))
	outer := p.withoutOrders()
	rec := p.get("/orders/1", outer)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	got := forwardedToken(t, p.up)
	pl := payloadOf(t, got)
	if act, _ := pl["act"].(map[string]any); act["sub"] != exchClientID || pl["aud"] != "https://orders.test" {
		t.Errorf("forwarded token claims: %v", pl)
	}
	form, req := p.token.last(t)
	want := url.Values{"grant_type": {grantTokenExchange}, "subject_token": {outer},
		"subject_token_type": {tokenTypeAccessToken}, "audience": {"https://orders.test"}}
	if fmt.Sprint(form) != fmt.Sprint(want) {
		t.Errorf("exchange form: got %v", form)
	}
	if id, secret, ok := req.BasicAuth(); !ok || id != exchClientID || secret != url.QueryEscape(exchSecret) {
		t.Errorf("Basic credentials: %q %q", id, secret)
	}
	// Cached: the same token is not exchanged again.
	for range 5 {
		if rec := p.get("/orders/1", outer); rec.Code != 200 || forwardedToken(t, p.up) != got {
			t.Fatalf("status %d", rec.Code)
		}
	}
	if c := p.token.calls.Load(); c != 1 {
		t.Errorf("exchanges %d for 6 requests, want 1", c)
	}
	if v := counterValue(t, p.reg, "embedtoken_sidecar_exchanges_total", map[string]string{"outcome": exchOK}); v != 1 {
		t.Errorf("exchanges counted ok: %v", v)
	}
	// Never past the issued token's exp (5m).
	p.clock.Advance(5*time.Minute + time.Second)
	if rec := p.get("/orders/1", outer); rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	if c := p.token.calls.Load(); c != 2 {
		t.Errorf("exchanges %d after the issued token's exp, want 2", c)
	}
}

func TestExchangeBoundedByOuterExpiry(t *testing.T) {
	p := newPhantomEnv(t, phantomOpts{exchange: true})
	p.token.set(p.issue(5 * time.Minute))
	m := p.chain()
	delete(m, "orders")
	c := p.outerClaims(m)
	c["exp"] = t0.Add(time.Minute).Unix()
	outer := sign(p.idpKey, hdr(p.idpKey, "at+jwt"), c)
	res, err := p.sc.verifier.Verify(t.Context(), outer)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Exchanged || !res.Expiry.Equal(t0.Add(time.Minute)) {
		t.Errorf("exchanged %v, expiry %v: want the outer token's exp", res.Exchanged, res.Expiry)
	}
}

func TestExchangeExpiredInner(t *testing.T) {
	p := newPhantomEnv(t, phantomOpts{exchange: true})
	p.token.set(p.issue(5 * time.Minute))
	if rec := p.get("/orders/1", p.withExpiredOrders()); rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if _, ok := payloadOf(t, forwardedToken(t, p.up))["act"]; !ok {
		t.Error("the forwarded token is not the exchanged one")
	}
}

func TestExchangeShared(t *testing.T) {
	p := newPhantomEnv(t, phantomOpts{exchange: true})
	release := make(chan struct{})
	issue := p.issue(5 * time.Minute)
	p.token.set(func(w http.ResponseWriter, form url.Values) {
		<-release
		issue(w, form)
	})
	outer := p.withoutOrders()
	const n = 50
	p.getConcurrently(t, outer, n, release)
	if c := p.token.calls.Load(); c != 1 {
		t.Errorf("exchanges %d for %d concurrent requests with one token, want 1", c, n)
	}
}

func TestExchangeOfAnOpaqueToken(t *testing.T) {
	p := newPhantomEnv(t, phantomOpts{exchange: true})
	p.token.set(p.issue(5 * time.Minute))
	p.intro.answer(200, p.hydraAnswer(map[string]any{}, nil))
	tok := opaque()
	res, err := p.sc.verifier.Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if form, _ := p.token.last(t); form.Get("subject_token") != tok || form.Get("subject_token_type") != tokenTypeAccessToken {
		t.Errorf("exchange form: %v", form)
	}
	if !res.Exchanged || !res.Expiry.Equal(t0.Add(60*time.Second)) {
		t.Errorf("expiry %v: want introspection_cache, the shortest", res.Expiry)
	}
}

func TestExchangeFailures(t *testing.T) {
	p := newPhantomEnv(t, phantomOpts{exchange: true})
	p.token.set(p.issue(5 * time.Minute))
	p.sc.verifier.exchanger.(*exchangeClient).timeout = 100 * time.Millisecond
	renewPredates := wantFail{status: 401, code: codeInvalidToken, desc: descPredates, reason: ReasonExchangeRefused}
	forbidden := wantFail{status: 403, code: codeInsufficientScope, scope: "orders:read orders:write", reason: ReasonExchangeTarget}
	down := unavailableFrom(ReasonExchangeFailed)
	ok := func(s string) func(w http.ResponseWriter, _ url.Values) {
		return func(w http.ResponseWriter, _ url.Values) { writeJSON(w, 200, s) }
	}
	status := func(code int, s string) func(w http.ResponseWriter, _ url.Values) {
		return func(w http.ResponseWriter, _ url.Values) { writeJSON(w, code, s) }
	}
	wrongAud := func(w http.ResponseWriter, _ url.Values) {
		c := p.innerClaims("https://billing.test", "billing:read", time.Minute)
		writeJSON(w, 200, mustJSON(map[string]any{"access_token": p.mintInner(c), "issued_token_type": tokenTypeAccessToken, "token_type": "Bearer"}))
	}
	cases := []struct {
		name   string
		handle func(w http.ResponseWriter, form url.Values)
		outer  func() string
		want   wantFail
	}{
		{"invalid_request", status(400, `{"error":"invalid_request"}`), p.withoutOrders, renewPredates},
		{"invalid_grant", status(400, `{"error":"invalid_grant","error_description":"expired"}`), p.withoutOrders, renewPredates},
		{"invalid_grant, inner expired", status(400, `{"error":"invalid_grant"}`), p.withExpiredOrders,
			wantFail{status: 401, code: codeInvalidToken, desc: descInnerExpired, reason: ReasonExchangeRefused}},
		{"invalid_target", status(400, `{"error":"invalid_target"}`), p.withoutOrders, forbidden},
		{"invalid_scope", status(400, `{"error":"invalid_scope"}`), p.withoutOrders, forbidden},
		{"other 400", status(400, `{"error":"unsupported_grant_type"}`), p.withoutOrders, down},
		{"400 without JSON", status(400, `bad`), p.withoutOrders, down},
		{"500", status(500, `{"error":"server_error"}`), p.withoutOrders, down},
		{"garbage", ok(`<html>`), p.withoutOrders, down},
		{"duplicate member", ok(`{"access_token":"a.b.c","access_token":"a.b.c","issued_token_type":"` + tokenTypeAccessToken + `","token_type":"Bearer"}`), p.withoutOrders, down},
		{"case-variant member", ok(`{"access_token":"a.b.c","ACCESS_TOKEN":"x.y.z","issued_token_type":"` + tokenTypeAccessToken + `","token_type":"Bearer"}`), p.withoutOrders, down},
		{"case-variant error code", status(400, `{"error":"server_error","ERROR":"invalid_grant"}`), p.withoutOrders, down},
		{"no token_type", ok(`{"access_token":"a.b.c","issued_token_type":"` + tokenTypeAccessToken + `"}`), p.withoutOrders, down},
		{"slow", func(w http.ResponseWriter, form url.Values) {
			time.Sleep(400 * time.Millisecond)
			p.issue(time.Minute)(w, form)
		}, p.withoutOrders, down},
		{"issued token for another API", wrongAud, p.withoutOrders, unavailableFrom(ReasonExchangeInvalid)},
		{"issued token not a JWS", ok(`{"access_token":"opaque","issued_token_type":"` + tokenTypeAccessToken + `","token_type":"Bearer"}`), p.withoutOrders, unavailableFrom(ReasonExchangeInvalid)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p.token.set(tc.handle)
			checkFail(t, p.env, p.get("/orders/1", tc.outer()), tc.want)
		})
	}
	t.Run("down", func(t *testing.T) {
		p.token.Close()
		checkFail(t, p.env, p.get("/orders/1", p.withoutOrders()), down)
	})
	// Not covered: 403 without asking.
	n := p.token.calls.Load()
	c := p.outerClaims(map[string]any{})
	c["scope"] = "billing:read"
	checkFail(t, p.env, p.get("/orders/1", sign(p.idpKey, hdr(p.idpKey, "at+jwt"), c)),
		wantFail{status: 403, code: codeInsufficientScope, reason: ReasonNoScope})
	if p.token.calls.Load() != n {
		t.Error("a token that does not cover the API was exchanged")
	}
}

func TestExchangeFailuresCached(t *testing.T) {
	p := newPhantomEnv(t, phantomOpts{exchange: true})
	calls := p.token.calls.Load
	outer := p.withoutOrders()
	p.token.answer(500, `{"error":"server_error"}`)
	checkFail(t, p.env, p.get("/orders/1", outer), unavailableFrom(ReasonExchangeFailed))
	p.token.set(p.issue(5 * time.Minute))
	p.clock.Advance(4 * time.Second)
	checkFail(t, p.env, p.get("/orders/1", outer), unavailableFrom(ReasonExchangeFailed))
	if calls() != 1 {
		t.Fatalf("exchanges %d within 5 s of a failure, want 1", calls())
	}
	p.clock.Advance(2 * time.Second)
	if rec := p.get("/orders/1", outer); rec.Code != 200 {
		t.Fatalf("status %d after the failure's 5 s", rec.Code)
	}
	if calls() != 2 {
		t.Fatalf("exchanges %d, want 2", calls())
	}
}

func TestNoExchangeBlockKeepsRenewAnswers(t *testing.T) {
	p := newPhantomEnv(t, phantomOpts{})
	if p.sc.verifier.exchanger != nil {
		t.Fatal("exchanger without an exchange block")
	}
	checkFail(t, p.env, p.get("/orders/1", p.withoutOrders()), wantFail{status: 401, code: codeInvalidToken, desc: descPredates, reason: ReasonPredatesAPI})
	checkFail(t, p.env, p.get("/orders/1", p.withExpiredOrders()), wantFail{status: 401, code: codeInvalidToken, desc: descInnerExpired, reason: ReasonInnerExpired})
	if p.token.calls.Load() != 0 {
		t.Error("exchanged without an exchange block")
	}
}

func TestNoIntrospectorWithoutIntrospectionTrust(t *testing.T) {
	e := newEnv(t, envOpts{})
	if e.sc.verifier.introspector != nil || e.sc.verifier.exchanger != nil {
		t.Fatal("fallbacks built from a catalog that declares none")
	}
}

func TestFlightGroup(t *testing.T) {
	var g flightGroup[string, int]
	release := make(chan struct{})
	var runs atomic.Int64
	fn := func(ctx context.Context) (int, error) {
		runs.Add(1)
		<-release
		return 7, ctx.Err()
	}
	// A caller that gives up does not cancel the call for the others.
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() {
		_, _, err := g.do(ctx, "k", fn)
		done <- err
	}()
	for g.inFlight() == 0 {
		time.Sleep(time.Millisecond)
	}
	got := make(chan int)
	go func() {
		v, shared, err := g.do(t.Context(), "k", fn)
		if err != nil || !shared {
			t.Errorf("shared %v, err %v", shared, err)
		}
		got <- v
	}()
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("canceled caller: %v", err)
	}
	time.Sleep(10 * time.Millisecond)
	close(release)
	if v := <-got; v != 7 {
		t.Errorf("value %d", v)
	}
	if runs.Load() != 1 {
		t.Errorf("runs %d", runs.Load())
	}
	// A panic is an error, not a crash.
	_, _, err := g.do(t.Context(), "p", func(context.Context) (int, error) { panic("boom") })
	if err != errFlightPanic {
		t.Errorf("panic: %v", err)
	}
}

// TestFallbacksLogNoTokens runs introspections and exchanges, successful
// and failing, with debug logging, endpoints that echo the token in their
// error bodies, and checks that no entry holds a token or a secret.
func TestFallbacksLogNoTokens(t *testing.T) {
	p := newPhantomEnv(t, phantomOpts{exchange: true})
	p.sc.verifier.exchanger.(*exchangeClient).timeout = 100 * time.Millisecond
	p.introspector().timeout = 100 * time.Millisecond
	secrets := []string{introSecret, url.QueryEscape(introSecret), exchSecret, url.QueryEscape(exchSecret)}
	var issued []string
	var mu sync.Mutex
	p.token.set(func(w http.ResponseWriter, form url.Values) {
		c := p.innerClaims("https://orders.test", "orders:read", time.Minute)
		tok := p.mintInner(c)
		mu.Lock()
		issued = append(issued, tok)
		mu.Unlock()
		writeJSON(w, 200, mustJSON(map[string]any{"access_token": tok, "issued_token_type": tokenTypeAccessToken, "token_type": "Bearer"}))
	})
	send := func(tok string) {
		secrets = append(secrets, tok)
		if parts := strings.Split(tok, "."); len(parts) >= 2 {
			secrets = append(secrets, parts[len(parts)-1])
		}
		p.get("/orders/1", tok)
	}
	echo := func(status int) {
		f := func(w http.ResponseWriter, form url.Values) {
			tok := form.Get("token") + form.Get("subject_token")
			writeJSON(w, status, mustJSON(map[string]any{"error": tok, "error_description": "token " + tok, "active": tok}))
		}
		p.intro.set(f)
		p.token.set(f)
	}

	m := p.chain()
	for _, v := range m {
		secrets = append(secrets, v.(string))
	}
	p.intro.answer(200, p.hydraAnswer(m, nil))
	send(opaque())
	p.intro.answer(200, p.hydraAnswer(map[string]any{}, nil))
	send(opaque()) // introspected, then exchanged
	send(p.withoutOrders())
	send(p.withExpiredOrders())
	p.intro.answer(200, `{"active":false}`)
	send(opaque())
	p.intro.answer(200, p.hydraAnswer(m, func(a map[string]any) { a["token_use"] = "refresh_token" }))
	send(opaque())
	echo(400)
	send(opaque())
	send(p.withoutOrders())
	echo(200)
	send(opaque())
	send(p.withoutOrders())
	echo(500)
	send(opaque())
	send(p.withoutOrders())
	p.intro.Close()
	p.token.Close()
	send(opaque())
	send(p.withoutOrders())
	secrets = append(secrets, issued...)

	entries := p.logs.All()
	if len(entries) < 10 {
		t.Fatalf("only %d log entries", len(entries))
	}
	for _, en := range entries {
		text := en.Message + " " + fieldsText(en.Context)
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Fatalf("log entry %q holds token or secret text: %s", en.Message, text)
			}
		}
	}
}

// BenchmarkFallbacks compares a request whose outer token embeds the inner
// token (a JWT from the idp trust) with a phantom-token request (an opaque
// token introspected at a loopback endpoint answering Hydra's shape) and an
// exchanged one (the loopback token endpoint signs a fresh EdDSA token per
// call, but verifies nothing: a real endpoint also verifies the subject
// token). "cold" empties every cache before each request; "cached" is the
// steady state for a token seen before. The request level goes through the
// whole handler to an httptest upstream; the verify level is Verify alone.
func BenchmarkFallbacks(b *testing.B) {
	p := newPhantomEnv(b, phantomOpts{exchange: true})
	p.token.set(p.issue(5 * time.Minute))
	answer := p.hydraAnswer(p.chain(), nil)
	p.intro.answer(200, answer)
	v := p.sc.verifier
	in := p.introspector()
	kinds := []struct {
		name  string
		token string
	}{
		{"embedded", p.outer()},
		{"introspection", opaque()},
		{"exchange", p.withoutOrders()},
	}
	flush := func() {
		v.cache.flush()
		in.cache.flush()
	}
	ctx := context.Background()
	for _, k := range kinds {
		if _, err := v.Verify(ctx, k.token); err != nil {
			b.Fatalf("%s: %v", k.name, err)
		}
		b.Run("request/"+k.name+"/cold", func(b *testing.B) {
			for b.Loop() {
				flush()
				if rec := p.get("/orders/1", k.token); rec.Code != 200 {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
		b.Run("request/"+k.name+"/cached", func(b *testing.B) {
			p.get("/orders/1", k.token)
			for b.Loop() {
				if rec := p.get("/orders/1", k.token); rec.Code != 200 {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
		b.Run("verify/"+k.name+"/cold", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				flush()
				if _, err := v.Verify(ctx, k.token); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("verify/"+k.name+"/cached", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, k.token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFallbacksInterleaved measures the same requests as
// BenchmarkFallbacks, but interleaved: each iteration times one request of
// every kind, so that a shared machine's load drifts over all kinds alike.
// It reports the median of each, in µs, and the ratios to the embedded
// request.
func BenchmarkFallbacksInterleaved(b *testing.B) {
	p := newPhantomEnv(b, phantomOpts{exchange: true})
	p.token.set(p.issue(5 * time.Minute))
	p.intro.answer(200, p.hydraAnswer(p.chain(), nil))
	v := p.sc.verifier
	in := p.introspector()
	ctx := context.Background()
	tokens := map[string]string{"embedded": p.outer(), "introspection": opaque(), "exchange": p.withoutOrders()}
	kinds := []string{"embedded", "introspection", "exchange"}
	samples := map[string][]float64{}
	measure := func(name string, fn func()) {
		start := time.Now()
		fn()
		samples[name] = append(samples[name], float64(time.Since(start).Nanoseconds())/1e3)
	}
	request := func(tok string) func() {
		return func() {
			if rec := p.get("/orders/1", tok); rec.Code != 200 {
				b.Fatalf("status %d", rec.Code)
			}
		}
	}
	verify := func(tok string) func() {
		return func() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	}
	for b.Loop() {
		for _, k := range kinds {
			v.cache.flush()
			in.cache.flush()
			measure("request-"+k+"-cold", request(tokens[k]))
			measure("request-"+k+"-cached", request(tokens[k]))
			v.cache.flush()
			in.cache.flush()
			measure("verify-"+k+"-cold", verify(tokens[k]))
			measure("verify-"+k+"-cached", verify(tokens[k]))
		}
	}
	median := func(xs []float64) float64 {
		s := slices.Clone(xs)
		slices.Sort(s)
		return s[len(s)/2]
	}
	for _, level := range []string{"request", "verify"} {
		for _, state := range []string{"cold", "cached"} {
			base := median(samples[level+"-embedded-"+state])
			b.ReportMetric(base, level+"-embedded-"+state+"-µs")
			for _, k := range kinds[1:] {
				m := median(samples[level+"-"+k+"-"+state])
				b.ReportMetric(m, level+"-"+k+"-"+state+"-µs")
				b.ReportMetric(m/base, level+"-"+k+"-"+state+"-x")
			}
		}
	}
}
