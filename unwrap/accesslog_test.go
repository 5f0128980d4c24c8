package unwrap

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest/observer"
)

// accessLines are the access log entries so far.
func accessLines(e *env) []observer.LoggedEntry {
	var out []observer.LoggedEntry
	for _, en := range e.logs.All() {
		if en.LoggerName == "unwrap.access" {
			out = append(out, en)
		}
	}
	return out
}

func TestAccessLog(t *testing.T) {
	e := newEnv(t, envOpts{})
	outer := e.outer()
	longIss := "https://evil.test/" + strings.Repeat("\x01\"a", 100)
	badIss := e.outerClaims(e.chain())
	badIss["iss"] = longIss
	noJTI := e.outerClaims(e.chain())
	delete(noJTI, "jti")
	delete(noJTI, "scope")
	noTyp := hdr(e.idpKey, "")
	delete(noTyp, "typ")
	tests := []struct {
		name   string
		target string
		token  string
		want   map[string]any // fields the line must have
		detail []string       // substrings of its detail
	}{
		{"forwarded", "/orders/1?q=querysecret", outer,
			map[string]any{"status": int64(200), "reason": "ok", "issuer": "idp", "cached": false, "path": "/orders/1", "method": "GET", "api": "orders"}, nil},
		{"forwarded from the cache", "/orders/2", outer,
			map[string]any{"status": int64(200), "reason": "ok", "cached": true, "path": "/orders/2"}, nil},
		{"unknown issuer: expected and got, sanitized", "/orders/1",
			sign(e.idpKey, hdr(e.idpKey, "at+jwt"), badIss),
			map[string]any{"status": int64(401), "reason": string(ReasonUnknownIssuer)},
			[]string{`iss "https://evil.test/?\"a?\"a`, `"... is neither the minter's "https://minter.test"`, `want one of ["https://idp.test" "http://127.0.0.1:4444"]`}},
		{"typ missing", "/orders/1", sign(e.idpKey, noTyp, e.outerClaims(e.chain())),
			map[string]any{"status": int64(401), "reason": string(ReasonTyp), "issuer": "idp"}, []string{`typ absent, want one of ["at+jwt"]`}},
		{"typ wrong", "/orders/1", sign(e.idpKey, hdr(e.idpKey, "JWT"), e.outerClaims(e.chain())),
			map[string]any{"status": int64(401), "reason": string(ReasonTyp)}, []string{`typ "JWT", want one of ["at+jwt"]`}},
		{"missing claims named", "/orders/1", sign(e.idpKey, hdr(e.idpKey, "at+jwt"), noJTI),
			map[string]any{"status": int64(401), "reason": string(ReasonMissingClaim)}, []string{"missing: jti, scope or scp"}},
		{"missing token", "/orders/1", "",
			map[string]any{"status": int64(401), "reason": string(ReasonMissingToken)}, nil},
		{"public path", "/healthz", "",
			map[string]any{"status": int64(200), "reason": string(ReasonPublic)}, nil},
		{"long path cut", "/orders/" + strings.Repeat("a", 4000), "",
			map[string]any{"status": int64(401), "path": "/orders/" + strings.Repeat("a", maxLoggedPath-len("/orders/")) + "..."}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.logs.TakeAll()
			e.get(tc.target, tc.token)
			got := oneAccessLine(t, e, tc.want)
			for _, k := range []string{"request_id", "latency"} {
				if _, ok := got[k]; !ok {
					t.Errorf("no %s in %v", k, got)
				}
			}
			detail, _ := got["detail"].(string)
			for _, d := range tc.detail {
				if !strings.Contains(detail, d) {
					t.Errorf("detail %q lacks %q", detail, d)
				}
			}
			if len(detail) > 600 {
				t.Errorf("detail of %d bytes: a token value was not bounded", len(detail))
			}
		})
	}
}

// TestAccessLogNeverHoldsTokens: no log entry of any level holds a token,
// a part of one, or the query string (STYLE.md 29).
func TestAccessLogNeverHoldsTokens(t *testing.T) {
	p := newPhantomEnv(t, phantomOpts{exchange: true})
	p.token.set(p.issue(5 * time.Minute))
	m := p.chain()
	outer := sign(p.idpKey, hdr(p.idpKey, "at+jwt"), p.outerClaims(m))
	secrets := []string{outer, m["orders"].(string), m["billing"].(string)}
	for _, tok := range []string{outer, p.withoutOrders(), p.withExpiredOrders(), outer[:len(outer)-4] + "AAAA"} {
		secrets = append(secrets, tok)
		p.get("/orders/1?access=querysecret", tok)
		p.get("/orders/1?access=querysecret", tok)
	}
	if len(accessLines(p.env)) != 8 {
		t.Fatalf("%d access log lines for 8 requests", len(accessLines(p.env)))
	}
	for _, en := range p.logs.All() {
		text := en.Message + " " + fieldsText(en.Context)
		if strings.Contains(text, "querysecret") {
			t.Errorf("query string logged: %s", text)
		}
		for _, s := range secrets {
			for _, part := range strings.Split(s, ".") {
				if len(part) > 16 && strings.Contains(text, part) {
					t.Fatalf("token material logged in %q: %s", en.Message, text)
				}
			}
		}
	}
}

func TestAccessLogOff(t *testing.T) {
	e := newEnv(t, envOpts{sidecar: "access_log = false"})
	e.get("/orders/1", e.outer())
	if n := len(accessLines(e)); n != 0 {
		t.Errorf("%d access log lines with access_log = false", n)
	}
}

func TestNoEmbeddedMapIsWarned(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.outerClaims(nil)
	delete(c, "embedded_tokens")
	c["ext"] = map[string]any{"embedded_tokens": map[string]any{}}
	tok := sign(e.idpKey, hdr(e.idpKey, "at+jwt"), c)
	for range 3 {
		checkFail(t, e, e.get("/orders/1", tok),
			wantFail{status: http.StatusUnauthorized, code: codeInvalidToken, desc: descNoEmbeddedMap, reason: ReasonNoEmbeddedMap})
	}
	warned := e.logs.FilterMessageSnippet("without the embedded map").All()
	if len(warned) != 1 {
		t.Fatalf("%d warnings for 3 requests, want 1 (rate-limited)", len(warned))
	}
	if got := warned[0].ContextMap()["claim"]; got != "embedded_tokens" {
		t.Errorf("warned claim path %v", got)
	}
	lines := accessLines(e)
	if d, _ := lines[len(lines)-1].ContextMap()["detail"].(string); !strings.Contains(d, `at claim "embedded_tokens" of trust idp; its other top-level claims: ["ext"]`) {
		t.Errorf("detail %q", d)
	}
}

func TestPrintable(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://idp.test", "https://idp.test"},
		{"https://idp.test/", "https://idp.test/"},
		{"a b", `"a b"`},
		{"a\x00\n\"b", `"a??\"b"`},
		{"é", `"??"`},
		{strings.Repeat("x", 130), `"` + strings.Repeat("x", 128) + `"...`},
		{"", ""},
	}
	for _, tc := range tests {
		if got := printable(tc.in); got != tc.want {
			t.Errorf("printable(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestAccessLogDecisions: every decision, over HTTP or through Decide (the
// gRPC path), writes one access line with the status the gateway is told.
func TestAccessLogDecisions(t *testing.T) {
	e := newEnv(t, envOpts{})
	outer := e.outer()
	bearer := http.Header{"Authorization": {"Bearer " + outer}}
	tests := []struct {
		name string
		run  func()
		want map[string]any
	}{
		{"forward, allowed", func() { e.authzVia("forward", "GET", "/orders/1?q=querysecret", bearer) },
			map[string]any{"status": int64(200), "reason": string(ReasonOK), "path": "/orders/1", "issuer": "idp"}},
		{"envoy, public", func() { e.authzVia("envoy", "GET", "/healthz", nil) },
			map[string]any{"status": int64(200), "reason": string(ReasonPublic), "path": "/healthz"}},
		{"forward, refused", func() { e.authzVia("forward", "GET", "/orders/1", nil) },
			map[string]any{"status": int64(401), "reason": string(ReasonMissingToken)}},
		{"unknown decision endpoint", func() {
			rec := httptest.NewRecorder()
			e.sc.AuthzHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/authz/nope", nil))
		}, map[string]any{"status": int64(404), "reason": string(ReasonNotFound)}},
		{"Decide, allowed", func() { e.sc.Decide(t.Context(), "GET", "/orders/2?q=querysecret", "orders.test", bearer.Clone()) },
			map[string]any{"status": int64(200), "reason": string(ReasonOK), "path": "/orders/2", "method": "GET"}},
		{"Decide, refused", func() { e.sc.Decide(t.Context(), "GET", "/orders/2", "orders.test", nil) },
			map[string]any{"status": int64(401), "reason": string(ReasonMissingToken), "path": "/orders/2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.logs.TakeAll()
			tc.run()
			if got := oneAccessLine(t, e, tc.want); strings.Contains(fmt.Sprint(got), "querysecret") {
				t.Error("the query reached the access log")
			}
		})
	}
}

// oneAccessLine requires exactly one access log line since the last
// TakeAll, holding the fields of want, and returns its fields.
func oneAccessLine(t *testing.T, e *env, want map[string]any) map[string]any {
	t.Helper()
	lines := accessLines(e)
	if len(lines) != 1 {
		t.Fatalf("%d access log lines, want 1", len(lines))
	}
	got := lines[0].ContextMap()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %v (%T), want %v", k, got[k], got[k], v)
		}
	}
	return got
}
