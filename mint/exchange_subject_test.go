package mint_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/embedtoken/embedtoken/mint"
)

// TestExchangeSubject: what the subject token brings (act, exp, claims,
// scopes) and how its failures are answered.
func TestExchangeSubject(t *testing.T) {
	e := newExchangeEnv(t, "scope")

	// An act in the subject token is nested in the new one.
	e.subj = func() (*mint.SubjectToken, error) {
		s := testSubject()
		s.Act = json.RawMessage(`{ "sub": "gateway", "act": {"sub": "edge"} }`)
		return s, nil
	}
	_, c := e.exchange(validForm())
	if act, _ := json.Marshal(c["act"]); string(act) != `{"act":{"act":{"sub":"edge"},"sub":"gateway"},"sub":"orders-sidecar"}` {
		t.Errorf("act = %s", act)
	}

	// exp never passes the subject token's.
	e.subj = func() (*mint.SubjectToken, error) {
		s := testSubject()
		s.Exp = testNow.Add(90*time.Second + 100*time.Millisecond) // floored: +90
		return s, nil
	}
	res, c := e.exchange(validForm())
	if c["exp"] != float64(testNow.Unix()+90) || res.body["expires_in"] != float64(90) {
		t.Errorf("exp = %v, expires_in = %v, want +90", c["exp"], res.body["expires_in"])
	}
	nested, _ := c["embedded_tokens"].(map[string]any)
	for name, tok := range nested {
		if nc := e.v.verify(tok.(string)); nc["exp"].(float64) > float64(testNow.Unix()+90) {
			t.Errorf("%s outlives the subject token", name)
		}
	}

	tests := []struct {
		name   string
		subj   func() (*mint.SubjectToken, error)
		status int
		code   string
		desc   string
	}{
		{"expired (verifier)", func() (*mint.SubjectToken, error) { return nil, fmt.Errorf("%w: x", mint.ErrSubjectExpired) },
			400, "invalid_request", "expired"},
		{"expired within leeway", func() (*mint.SubjectToken, error) {
			s := testSubject()
			s.Exp = testNow.Add(-10 * time.Second)
			return s, nil
		}, 400, "invalid_request", "expired"},
		{"minter token (verifier)", func() (*mint.SubjectToken, error) { return nil, fmt.Errorf("%w: x", mint.ErrSubjectMinterToken) },
			400, "invalid_request", "minter"},
		{"minter token (belt and braces)", func() (*mint.SubjectToken, error) {
			s := testSubject()
			s.Issuer = "https://minter.test"
			return s, nil
		}, 400, "invalid_request", "minter"},
		{"refused", func() (*mint.SubjectToken, error) { return nil, fmt.Errorf("%w: alg", mint.ErrSubjectToken) },
			400, "invalid_request", "invalid"},
		{"no client_id", func() (*mint.SubjectToken, error) {
			s := testSubject()
			s.ClientID = ""
			return s, nil
		}, 400, "invalid_request", "invalid"},
		{"act not an object", func() (*mint.SubjectToken, error) {
			s := testSubject()
			s.Act = json.RawMessage(`"gateway"`)
			return s, nil
		}, 400, "invalid_request", "invalid"},
		{"claim too large", func() (*mint.SubjectToken, error) {
			s := testSubject()
			s.Claims["email"] = json.RawMessage(`"` + strings.Repeat("a", 2000) + `"`)
			return s, nil
		}, 400, "invalid_request", "claim"},
		{"no orders scope", func() (*mint.SubjectToken, error) {
			s := testSubject()
			s.Scopes = []string{"profile:read"}
			return s, nil
		}, 400, "invalid_scope", "scope"},
		{"verifier unavailable", func() (*mint.SubjectToken, error) {
			return nil, fmt.Errorf("%w: jwks down", mint.ErrSubjectUnavailable)
		},
			503, "temporarily_unavailable", "retry"},
		{"verifier bug", func() (*mint.SubjectToken, error) { return nil, errors.New("boom") },
			500, "server_error", "internal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.subj = tc.subj
			res := e.post(validForm().Encode(), basic("orders-sidecar", ordersSecret))
			if res.status != tc.status || res.body["error"] != tc.code {
				t.Fatalf("got %d %v, want %d %s", res.status, res.body, tc.status, tc.code)
			}
			if d, _ := res.body["error_description"].(string); !strings.Contains(d, tc.desc) {
				t.Errorf("error_description %q, want it to say %q", d, tc.desc)
			}
			if ra := res.header.Get("Retry-After"); (tc.status == 503) != (ra != "") {
				t.Errorf("Retry-After = %q on %d", ra, tc.status)
			}
			if res.header.Get("Cache-Control") != "no-store" || res.header.Get("WWW-Authenticate") != "" {
				t.Errorf("headers %v", res.header)
			}
		})
	}
}

// TestExchangeMintForAudience: with mint_for = "audience" the subject token
// must have been granted the API's audience, as an embedded token would.
func TestExchangeMintForAudience(t *testing.T) {
	e := newExchangeEnv(t, "audience")
	if res := e.post(validForm().Encode(), basic("orders-sidecar", ordersSecret)); res.status != 400 || res.body["error"] != "invalid_target" {
		t.Errorf("audience not granted: %d %v", res.status, res.body)
	}
	e.subj = func() (*mint.SubjectToken, error) {
		s := testSubject()
		s.Audience = []string{"https://orders.test", "https://billing.test"}
		return s, nil
	}
	_, c := e.exchange(validForm())
	nested, _ := c["embedded_tokens"].(map[string]any)
	if got := strings.Join(keys(nested), ","); got != "billing" {
		t.Errorf("nested = %s, want billing only", got)
	}
}

// TestExchangeOff: without Options.Subjects (or without exchange clients)
// the endpoint is off; without a configuration it is unavailable.
func TestExchangeOff(t *testing.T) {
	key := newTestKey(t, "k1", jose.EdDSA)
	var cur atomic.Pointer[mint.Minter]
	h := mint.NewExchangeHandler(cur.Load, nil)
	do := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, mint.TokenEndpointPath, strings.NewReader(validForm().Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		basic("orders-sidecar", ordersSecret)(req)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := do(); rec.Code != 503 || rec.Header().Get("Retry-After") == "" {
		t.Errorf("no configuration: %d", rec.Code)
	}
	cur.Store(newMinter(t, exchangeCatalog(t, "scope", key), nil))
	if rec := do(); rec.Code != 404 || !strings.Contains(rec.Body.String(), `"not_found"`) {
		t.Errorf("no verifier: %d %s", rec.Code, rec.Body)
	}
	fake := &fakeSubjects{VerifyFunc: func(context.Context, string) (*mint.SubjectToken, error) { return testSubject(), nil }}
	cur.Store(newMinter(t, testCatalog(t, "k1", "scope", key), &mint.Options{Subjects: fake}))
	if rec := do(); rec.Code != 404 {
		t.Errorf("no exchange clients: %d", rec.Code)
	}
}

// TestExchangeTimeout: a verifier that outlives the request's bound is a
// dependency failure.
func TestExchangeTimeout(t *testing.T) {
	key := newTestKey(t, "k1", jose.EdDSA)
	slow := &fakeSubjects{VerifyFunc: func(ctx context.Context, _ string) (*mint.SubjectToken, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	var cur atomic.Pointer[mint.Minter]
	cur.Store(newMinter(t, exchangeCatalog(t, "scope", key), &mint.Options{Subjects: slow}))
	h := mint.NewExchangeHandler(cur.Load, &mint.HandlerOptions{ExchangeTimeout: 20 * time.Millisecond})
	req := httptest.NewRequest(http.MethodPost, mint.TokenEndpointPath, strings.NewReader(validForm().Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	basic("orders-sidecar", ordersSecret)(req)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "temporarily_unavailable") {
		t.Errorf("slow verifier: %d %s", rec.Code, rec.Body)
	}
}

// TestIssue covers the Go API beneath the endpoint.
func TestIssue(t *testing.T) {
	key := newTestKey(t, "k1", jose.EdDSA)
	m := newMinter(t, testCatalog(t, "k1", "scope", key), nil)
	s := testSubject().Subject
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		req  mint.IssueRequest
		want error
	}{
		{"unknown api", mint.IssueRequest{Subject: s, API: "nope", Actor: "a"}, mint.ErrInvalidTarget},
		{"not exposed", mint.IssueRequest{Subject: s, API: "ledger", Actor: "a"}, mint.ErrInvalidTarget},
		{"disjoint", mint.IssueRequest{Subject: s, API: "orders", Actor: "a", Scopes: []string{"x"}}, mint.ErrInvalidScope},
		{"empty requested", mint.IssueRequest{Subject: s, API: "orders", Actor: "a", Scopes: []string{}}, mint.ErrInvalidScope},
		{"act too large", mint.IssueRequest{Subject: s, API: "orders", Actor: "a",
			PriorAct: json.RawMessage(`{"sub":"` + strings.Repeat("x", 1100) + `"}`)}, mint.ErrInvalidSubject},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Issue(ctx, tc.req)
			if !errors.Is(err, tc.want) || !mint.Denied(err) {
				t.Errorf("err = %v, want %v (denied)", err, tc.want)
			}
		})
	}
	if _, err := m.Issue(ctx, mint.IssueRequest{Subject: s, API: "orders"}); err == nil || mint.Denied(err) {
		t.Errorf("no actor: %v", err)
	}
	out, err := m.Issue(ctx, mint.IssueRequest{Subject: s, API: "orders", Actor: "a"})
	if err != nil || out.API != "orders" || len(out.Minted) != 4 || out.Minted[3].JTI != out.JTI || out.ExpiresIn != 300 {
		t.Errorf("issue: %+v %v", out, err)
	}
}

// BenchmarkExchangeHandler is one exchange through the handler with a
// verifier that costs nothing (client authentication, form, grammar,
// Issue of orders and its three nested tokens); BenchmarkExchangePlainMint
// mints the same four tokens with Mint. Their ratio is the handler's
// overhead; subject verification comes on top (see cmd's BenchmarkExchange).
func BenchmarkExchangeHandler(b *testing.B) {
	key := newTestKey(b, "k1", jose.EdDSA)
	subj := testSubject()
	subj.Exp = time.Now().Add(time.Hour)
	fake := &fakeSubjects{VerifyFunc: func(context.Context, string) (*mint.SubjectToken, error) { return subj, nil }}
	var cur atomic.Pointer[mint.Minter]
	cur.Store(newMinter(b, exchangeCatalog(b, "scope", key), &mint.Options{Now: time.Now, Subjects: fake}))
	h := mint.NewExchangeHandler(cur.Load, nil)
	body := validForm().Encode()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest(http.MethodPost, mint.TokenEndpointPath, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		basic("orders-sidecar", ordersSecret)(req)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
}

func BenchmarkExchangePlainMint(b *testing.B) {
	key := newTestKey(b, "k1", jose.EdDSA)
	m := newMinter(b, exchangeCatalog(b, "scope", key), &mint.Options{Now: time.Now})
	s := testSubject().Subject
	s.Scopes = []string{"orders:read", "orders:write", "billing:read", "inventory:read"} // orders' tree only
	s.Exp = time.Now().Add(time.Hour)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if res, err := m.Mint(ctx, s); err != nil || len(res.Minted) != 4 {
			b.Fatal(err, len(res.Minted))
		}
	}
}
