package unwrap

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

// The standard chain: outer 1h, orders 5m, billing 3m, ledger 2m (nested
// in billing, nested in orders); leeway 30s.

func TestLifetimeNoExchange(t *testing.T) {
	tests := []struct {
		name    string
		sidecar string
		advance time.Duration
		outer   time.Duration // outer lifetime; 0: 1h
		want    *wantFail     // nil: forwarded
	}{
		{"fresh", "", 0, 0, nil},
		{"nested expired, min_remaining 0: the deep hop answers", "", 2*time.Minute + 31*time.Second, 0, nil},
		{"inner expired", "", 5*time.Minute + 31*time.Second, 0,
			&wantFail{status: 401, code: codeInvalidToken, desc: descInnerExpired, reason: ReasonInnerExpired}},
		{"min_remaining: fresh enough", `min_remaining = "60s"`, 59 * time.Second, 0, nil},
		{"min_remaining: nested too soon", `min_remaining = "60s"`, 61 * time.Second, 0,
			&wantFail{status: 401, code: codeInvalidToken, desc: descTooSoon, reason: ReasonExpiresSoon}},
		{"min_remaining: nested expired", `min_remaining = "60s"`, 2*time.Minute + 31*time.Second, 0,
			&wantFail{status: 401, code: codeInvalidToken, desc: descInnerExpired, reason: ReasonNestedExpired}},
		{"min_remaining: outer too soon", `min_remaining = "60s"`, 0, 50 * time.Second,
			&wantFail{status: 401, code: codeInvalidToken, desc: descTooSoon, reason: ReasonExpiresSoon}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpts{sidecar: tc.sidecar})
			c := e.outerClaims(e.chain())
			if tc.outer != 0 {
				c["exp"] = e.clock.Now().Add(tc.outer).Unix()
			}
			outer := sign(e.idpKey, hdr(e.idpKey, "at+jwt"), c)
			// A first request at once: a cached result must not outlive
			// what min_remaining allows.
			first := e.get("/orders/1", outer)
			e.clock.Advance(tc.advance)
			rec := e.get("/orders/1", outer)
			if tc.want == nil {
				if first.Code != 200 || rec.Code != 200 {
					t.Fatalf("status %d then %d: %s", first.Code, rec.Code, rec.Body)
				}
				return
			}
			checkFail(t, e, rec, *tc.want)
		})
	}
}

func TestLifetimeDeepHopExpired(t *testing.T) {
	e := newEnv(t, envOpts{api: "ledger"})
	m := e.chain()
	billing := m["billing"].(string)
	if rec := e.get("/ledger/1", billing); rec.Code != 200 {
		t.Fatalf("fresh: status %d: %s", rec.Code, rec.Body)
	}
	e.clock.Advance(2*time.Minute + 31*time.Second)
	checkFail(t, e, e.get("/ledger/1", billing),
		wantFail{status: 401, code: codeInvalidToken, desc: descInnerExpired, reason: ReasonInnerExpired})
}

func TestLifetimeExchangeRefreshesTheChain(t *testing.T) {
	tests := []struct {
		name      string
		sidecar   string
		advance   time.Duration
		exchanges int64
	}{
		{"fresh: embedded token forwarded", "", 0, 0},
		{"nested expired: exchanged", "", 2*time.Minute + time.Second, 1},
		{"nested not yet expired, no leeway spent", "", 2*time.Minute - time.Second, 0},
		{"nested within min_remaining: exchanged", `min_remaining = "30s"`, 91 * time.Second, 1},
		{"inner expired: exchanged", "", 5*time.Minute + time.Second, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPhantomEnv(t, phantomOpts{exchange: true, sidecar: tc.sidecar})
			p.token.set(p.issue(5 * time.Minute))
			outer := p.outer()
			p.clock.Advance(tc.advance)
			for range 3 {
				if rec := p.get("/orders/1", outer); rec.Code != 200 {
					t.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
			if got := p.token.calls.Load(); got != tc.exchanges {
				t.Fatalf("exchanges: got %d, want %d (3 requests)", got, tc.exchanges)
			}
			_, exchanged := payloadOf(t, forwardedToken(t, p.up))["act"]
			if exchanged != (tc.exchanges > 0) {
				t.Errorf("forwarded an exchanged token: %v", exchanged)
			}
		})
	}
}

func TestLifetimeExchangeCannotOutliveTheOuterToken(t *testing.T) {
	p := newPhantomEnv(t, phantomOpts{exchange: true, sidecar: `min_remaining = "30s"`})
	p.token.set(p.issue(5 * time.Minute))
	c := p.outerClaims(p.chain())
	c["exp"] = p.clock.Now().Add(20 * time.Second).Unix()
	checkFail(t, p.env, p.get("/orders/1", sign(p.idpKey, hdr(p.idpKey, "at+jwt"), c)),
		wantFail{status: 401, code: codeInvalidToken, desc: descTooSoon, reason: ReasonExpiresSoon})
	if p.token.calls.Load() != 0 {
		t.Error("exchanged a token that expires within min_remaining")
	}
}

func TestChainExpiry(t *testing.T) {
	e := newEnv(t, envOpts{})
	m := e.chain()
	got := e.sc.verifier.chainExpiry(m["orders"].(string), 0)
	if want := t0.Add(2 * time.Minute); !got.Equal(want) {
		t.Errorf("chainExpiry(orders) = %v, want ledger's exp %v", got, want)
	}
	if got := e.sc.verifier.chainExpiry("not.a.token", 0); !got.IsZero() {
		t.Errorf("chainExpiry(garbage) = %v, want zero", got)
	}
}

func TestLifetimeRefreshFailsOverToValidTokens(t *testing.T) {
	tests := []struct {
		name    string
		advance time.Duration
		want    int
	}{
		{"nested just past exp, within leeway: forwarded", 2*time.Minute + time.Second, 200},
		{"nested expired past leeway: 503", 2*time.Minute + 31*time.Second, 503},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPhantomEnv(t, phantomOpts{exchange: true})
			p.token.set(func(w http.ResponseWriter, _ url.Values) { writeJSON(w, 500, `{"error":"server_error"}`) })
			outer := p.outer()
			p.clock.Advance(tc.advance)
			rec := p.get("/orders/1", outer)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
			if tc.want == 200 {
				if _, exchanged := payloadOf(t, forwardedToken(t, p.up))["act"]; exchanged {
					t.Error("forwarded an exchanged token from a failing endpoint")
				}
			}
		})
	}
}
