package unwrap

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestExchangeClientRefused(t *testing.T) {
	for _, answer := range []struct {
		name   string
		status int
		body   string
	}{
		{"401 invalid_client", 401, `{"error":"invalid_client"}`},
		{"401 without a body", 401, ``},
		{"400 unauthorized_client", 400, `{"error":"unauthorized_client"}`},
	} {
		t.Run(answer.name, func(t *testing.T) {
			p := newPhantomEnv(t, phantomOpts{exchange: true})
			p.token.set(func(w http.ResponseWriter, _ url.Values) { writeJSON(w, answer.status, answer.body) })
			misconfig := wantFail{status: 500, code: codeServerError, desc: descMisconfigured, reason: ReasonExchangeClient}
			rec := p.get("/orders/1", p.withoutOrders())
			checkFail(t, p.env, rec, misconfig)
			if h := rec.Header(); h.Get("Retry-After") != "" || h.Get("WWW-Authenticate") != "" {
				t.Errorf("a misconfiguration answered with Retry-After %q, WWW-Authenticate %q", h.Get("Retry-After"), h.Get("WWW-Authenticate"))
			}
			if p.sc.Ready() {
				t.Error("ready while the exchange client is refused")
			}
			why := p.sc.NotReady()
			if why == nil || !strings.Contains(why.Error(), "refused the exchange client") || !strings.Contains(why.Error(), "client_id and secret") {
				t.Errorf("NotReady: %v", why)
			}
			// Other tokens: answered at once, the endpoint is not asked.
			calls := p.token.calls.Load()
			for range 3 {
				checkFail(t, p.env, p.get("/orders/1", p.withoutOrders()), misconfig)
			}
			if got := p.token.calls.Load(); got != calls {
				t.Errorf("endpoint asked %d more times while the client is refused", got-calls)
			}
			if v := counterValue(t, p.reg, "embedtoken_sidecar_exchange_failures_total", map[string]string{"reason": exchFailClient}); v != 4 {
				t.Errorf("exchange_failures_total{invalid_client} = %v, want 4", v)
			}
			if n := len(p.logs.FilterMessageSnippet("token exchange client refused").All()); n != 1 {
				t.Errorf("%d error lines, want 1 (rate-limited)", n)
			}
			// Fixed at the endpoint: the probe (at most every 30 s) finds out.
			p.token.set(p.issue(5 * time.Minute))
			p.clock.Advance(probeEvery + time.Second)
			deadline := time.Now().Add(5 * time.Second)
			for !p.sc.Ready() {
				if time.Now().After(deadline) {
					t.Fatalf("still not ready after the endpoint accepts the client: %v", p.sc.NotReady())
				}
				time.Sleep(10 * time.Millisecond)
			}
			form, _ := p.token.last(t)
			if form.Get("subject_token") != probeSubject {
				t.Errorf("probe subject_token %q", form.Get("subject_token"))
			}
			if rec := p.get("/orders/1", p.withoutOrders()); rec.Code != 200 {
				t.Errorf("after the fix: status %d", rec.Code)
			}
		})
	}
}

func TestReadinessSaysWhy(t *testing.T) {
	e := newEnv(t, envOpts{noStart: true})
	e.idpJWKS.down(500)
	e.sc.Start(t.Context())
	deadline := time.Now().Add(5 * time.Second)
	for {
		why := e.sc.NotReady()
		if why == nil {
			t.Fatal("ready while the idp key set cannot load")
		}
		if strings.Contains(why.Error(), "key set of idp ("+e.idpJWKS.URL) && strings.Contains(why.Error(), "last error:") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("NotReady: %v", why)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
