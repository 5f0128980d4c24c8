package unwrap

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

type wantFail struct {
	status int
	code   string // body error
	desc   string // substring of error_description ("" = any)
	scope  string // scope attribute of the challenge
	reason Reason
}

// checkFail asserts an error answer per DESIGN.md: status, body, challenge.
func checkFail(t *testing.T, e *env, rec interface {
	Result() *http.Response
}, w wantFail) {
	t.Helper()
	resp := rec.Result()
	if resp.StatusCode != w.status {
		t.Fatalf("status: got %d, want %d", resp.StatusCode, w.status)
	}
	var body errorBody
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("body: %v", err)
	}
	if body.Error != w.code {
		t.Errorf("body error: got %q, want %q", body.Error, w.code)
	}
	if body.RequestID == "" || body.RequestID != resp.Header.Get("X-Request-Id") {
		t.Errorf("request id: body %q, header %q", body.RequestID, resp.Header.Get("X-Request-Id"))
	}
	if w.desc != "" && !strings.Contains(body.Description, w.desc) {
		t.Errorf("error_description: got %q, want %q", body.Description, w.desc)
	}
	wa := resp.Header.Get("WWW-Authenticate")
	switch w.status {
	case 400, 403:
		if !strings.HasPrefix(wa, `Bearer realm="`) || !strings.Contains(wa, `error="`+w.code+`"`) {
			t.Errorf("WWW-Authenticate: got %q", wa)
		}
	case 401:
		if w.code == codeUnauthorized {
			if !strings.HasPrefix(wa, `Bearer realm="`) || strings.Contains(wa, "error=") {
				t.Errorf("WWW-Authenticate: got %q, want the realm only", wa)
			}
		} else if !strings.Contains(wa, `error="invalid_token"`) {
			t.Errorf("WWW-Authenticate: got %q", wa)
		}
	default:
		if wa != "" {
			t.Errorf("WWW-Authenticate on %d: %q", w.status, wa)
		}
	}
	if w.scope != "" && !strings.Contains(wa, `scope="`+w.scope+`"`) {
		t.Errorf("scope attribute: got %q, want scope=%q", wa, w.scope)
	}
	if w.status == 503 && resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if w.reason != "" && !e.reasonLogged(w.reason) {
		t.Errorf("reason %q not logged", w.reason)
	}
}

func invalidToken(r Reason) wantFail {
	return wantFail{status: 401, code: codeInvalidToken, desc: descInvalid, reason: r}
}

func TestOuterTokenFailures(t *testing.T) {
	e := newEnv(t, envOpts{})
	attacker := &signingKey{kid: "idp-1", alg: jose.RS256, priv: testRSA(2)}
	pubDER, _ := x509.MarshalPKIXPublicKey(e.idpKey.priv.Public())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	jku := newJWKSServer(t, attacker)

	mod := func(f func(c map[string]any)) string {
		c := e.outerClaims(e.chain())
		f(c)
		return sign(e.idpKey, hdr(e.idpKey, "at+jwt"), c)
	}
	withHeader := func(f func(h map[string]any)) string {
		h := hdr(e.idpKey, "at+jwt")
		f(h)
		return sign(e.idpKey, h, e.outerClaims(e.chain()))
	}
	valid := e.outer()
	parts := strings.Split(valid, ".")

	tests := []struct {
		name  string
		token func() string
		want  wantFail
	}{
		{"alg none", func() string {
			return b64([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." + parts[1] + "."
		}, invalidToken(ReasonMalformed)},
		{"alg none with signature", func() string {
			return b64([]byte(`{"alg":"none","typ":"at+jwt","kid":"idp-1"}`)) + "." + parts[1] + ".x"
		}, invalidToken(ReasonAlgNotAllowed)},
		{"HS256 with the issuer's RSA public key", func() string {
			return signHS256(pubPEM, `{"alg":"HS256","typ":"at+jwt","kid":"idp-1"}`, mustJSON(e.outerClaims(e.chain())))
		}, invalidToken(ReasonAlgNotAllowed)},
		{"foreign key with the issuer's kid", func() string {
			return sign(attacker, hdr(attacker, "at+jwt"), e.outerClaims(e.chain()))
		}, invalidToken(ReasonSignature)},
		{"embedded jwk", func() string {
			h := hdr(attacker, "at+jwt")
			h["jwk"] = attacker.jwk()
			return sign(attacker, h, e.outerClaims(e.chain()))
		}, invalidToken(ReasonSignature)},
		{"jku pointing elsewhere", func() string {
			k := &signingKey{kid: "attacker-1", alg: jose.RS256, priv: testRSA(2)}
			h := hdr(k, "at+jwt")
			h["jku"] = jku.URL
			h["x5u"] = jku.URL
			return sign(k, h, e.outerClaims(e.chain()))
		}, invalidToken(ReasonUnknownKid)},
		{"tampered payload", func() string {
			c := e.outerClaims(e.chain())
			c["sub"] = "mallory"
			return parts[0] + "." + b64([]byte(mustJSON(c))) + "." + parts[2]
		}, invalidToken(ReasonSignature)},
		{"expired", func() string {
			return mod(func(c map[string]any) { c["exp"] = e.clock.Now().Add(-time.Minute).Unix() })
		}, invalidToken(ReasonExpired)},
		{"not yet valid", func() string {
			return mod(func(c map[string]any) { c["nbf"] = e.clock.Now().Add(time.Minute).Unix() })
		}, invalidToken(ReasonNotYetValid)},
		{"exp missing", func() string { return mod(func(c map[string]any) { delete(c, "exp") }) }, invalidToken(ReasonMissingClaim)},
		{"exp as a string", func() string { return mod(func(c map[string]any) { c["exp"] = "1900000000" }) }, invalidToken(ReasonClaimType)},
		{"sub as a number", func() string { return mod(func(c map[string]any) { c["sub"] = 42 }) }, invalidToken(ReasonClaimType)},
		{"no client_id (an ID token)", func() string { return mod(func(c map[string]any) { delete(c, "client_id") }) }, invalidToken(ReasonMissingClaim)},
		{"no jti", func() string { return mod(func(c map[string]any) { delete(c, "jti") }) }, invalidToken(ReasonMissingClaim)},
		{"no scope claim", func() string { return mod(func(c map[string]any) { delete(c, "scope") }) }, invalidToken(ReasonMissingClaim)},
		{"wrong issuer", func() string { return mod(func(c map[string]any) { c["iss"] = "https://evil.test" }) }, invalidToken(ReasonUnknownIssuer)},
		{"issuer with a trailing slash", func() string { return mod(func(c map[string]any) { c["iss"] = idpIssuer + "/" }) }, invalidToken(ReasonUnknownIssuer)},
		{"wrong typ", func() string { return withHeader(func(h map[string]any) { h["typ"] = "JWT" }) }, invalidToken(ReasonTyp)},
		{"missing typ", func() string { return withHeader(func(h map[string]any) { delete(h, "typ") }) }, invalidToken(ReasonTyp)},
		{"crit header", func() string { return withHeader(func(h map[string]any) { h["crit"] = []string{"exp"}; h["exp"] = 1 }) }, invalidToken(ReasonCrit)},
		{"unknown kid", func() string { return withHeader(func(h map[string]any) { h["kid"] = "nope" }) }, invalidToken(ReasonUnknownKid)},
		{"key of another alg", func() string { return withHeader(func(h map[string]any) { h["alg"] = "ES256" }) }, invalidToken(ReasonKeyAlg)},
		{"embedded claim a string", func() string { return mod(func(c map[string]any) { c["embedded_tokens"] = "x" }) }, invalidToken(ReasonEmbeddedType)},
		{"embedded token a number", func() string {
			return mod(func(c map[string]any) { c["embedded_tokens"] = map[string]any{"orders": 5} })
		}, invalidToken(ReasonEmbeddedType)},
		{"duplicate claims", func() string {
			c := mustJSON(e.outerClaims(e.chain()))
			return signRaw(e.idpKey, mustJSON(hdr(e.idpKey, "at+jwt")), strings.Replace(c, `{`, `{"sub":"mallory",`, 1))
		}, invalidToken(ReasonDuplicateMember)},
		{"duplicate nested member", func() string {
			c := mustJSON(e.outerClaims(e.chain()))
			return signRaw(e.idpKey, mustJSON(hdr(e.idpKey, "at+jwt")), strings.Replace(c, `"embedded_tokens":{`, `"embedded_tokens":{"orders":"a.b.c",`, 1))
		}, invalidToken(ReasonDuplicateMember)},
		{"duplicate escaped member", func() string {
			c := mustJSON(e.outerClaims(e.chain()))
			return signRaw(e.idpKey, mustJSON(hdr(e.idpKey, "at+jwt")), strings.Replace(c, `{`, `{"\u0073ub":"mallory",`, 1))
		}, invalidToken(ReasonDuplicateMember)},
		{"duplicate header member", func() string {
			return signRaw(e.idpKey, `{"alg":"RS256","kid":"idp-1","typ":"at+jwt","alg":"none"}`, mustJSON(e.outerClaims(e.chain())))
		}, invalidToken(ReasonDuplicateMember)},
		{"too large", func() string { return strings.Repeat("a", 16385) }, invalidToken(ReasonTooLarge)},
		{"many dots", func() string { return strings.Repeat("a.", 5000) + "a" }, invalidToken(ReasonMalformed)},
		{"four parts", func() string { return valid + ".x" }, invalidToken(ReasonMalformed)},
		{"padding in the signature", func() string { return valid + "==" }, invalidToken(ReasonMalformed)},
		{"payload not an object", func() string { return signRaw(e.idpKey, mustJSON(hdr(e.idpKey, "at+jwt")), `[1,2]`) }, invalidToken(ReasonMalformed)},
		{"trailing data after the payload", func() string {
			return signRaw(e.idpKey, mustJSON(hdr(e.idpKey, "at+jwt")), mustJSON(e.outerClaims(e.chain()))+"{}")
		}, invalidToken(ReasonMalformed)},
		{"opaque token", func() string { return "ory_at_abcdef" }, invalidToken(ReasonMalformed)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.logs.TakeAll()
			tok := tc.token()
			rec := e.get("/orders/1", tok)
			checkFail(t, e, rec, tc.want)
			if strings.Contains(rec.Body.String(), tok) || strings.Contains(rec.Header().Get("WWW-Authenticate"), tok) {
				t.Error("token echoed")
			}
		})
	}
	if n := jku.hits.Load(); n != 0 {
		t.Errorf("jku/x5u URL fetched %d times", n)
	}
	if e.up.count() != 0 {
		t.Errorf("upstream reached %d times", e.up.count())
	}
	// Every cryptographic failure has the same body.
	a := e.get("/x", sign(attacker, hdr(attacker, "at+jwt"), e.outerClaims(e.chain()))).Body.String()
	b := e.get("/x", withHeader(func(h map[string]any) { h["kid"] = "nope" })).Body.String()
	strip := func(s string) string { return s[:strings.Index(s, `"request_id"`)] }
	if strip(a) != strip(b) {
		t.Errorf("bodies differ: %s vs %s", a, b)
	}
}

func TestInnerTokenFailures(t *testing.T) {
	e := newEnv(t, envOpts{})
	outerWith := func(inner string) string {
		m := e.chain()
		m["orders"] = inner
		return sign(e.idpKey, hdr(e.idpKey, "at+jwt"), e.outerClaims(m))
	}
	ic := func(f func(c map[string]any)) string {
		c := e.innerClaims("https://orders.test", "orders:read", 5*time.Minute)
		f(c)
		return e.mintInner(c)
	}
	tests := []struct {
		name  string
		token func() string
		want  wantFail
	}{
		{"inner for another API", func() string { return outerWith(ic(func(c map[string]any) { c["aud"] = "https://billing.test" })) }, invalidToken(ReasonAudience)},
		{"inner with two audiences", func() string {
			return outerWith(ic(func(c map[string]any) { c["aud"] = []string{"https://orders.test", "https://billing.test"} }))
		}, invalidToken(ReasonAudience)},
		{"inner with another sub", func() string { return outerWith(ic(func(c map[string]any) { c["sub"] = "bob" })) }, invalidToken(ReasonSubjectMismatch)},
		{"inner with another client", func() string { return outerWith(ic(func(c map[string]any) { c["client_id"] = "other" })) }, invalidToken(ReasonSubjectMismatch)},
		{"inner from another issuer", func() string { return outerWith(ic(func(c map[string]any) { c["iss"] = idpIssuer })) }, invalidToken(ReasonUnknownIssuer)},
		{"inner without iat", func() string { return outerWith(ic(func(c map[string]any) { delete(c, "iat") })) }, invalidToken(ReasonMissingClaim)},
		{"inner without jti", func() string { return outerWith(ic(func(c map[string]any) { delete(c, "jti") })) }, invalidToken(ReasonMissingClaim)},
		{"inner not yet valid", func() string {
			return outerWith(ic(func(c map[string]any) { c["nbf"] = e.clock.Now().Add(time.Hour).Unix() }))
		}, invalidToken(ReasonNotYetValid)},
		{"inner with typ JWT", func() string {
			return outerWith(sign(e.minter, hdr(e.minter, "JWT"), e.innerClaims("https://orders.test", "", time.Minute)))
		}, invalidToken(ReasonTyp)},
		{"inner signed by the issuer", func() string {
			return outerWith(sign(e.idpKey, hdr(e.idpKey, "at+jwt"), e.innerClaims("https://orders.test", "", time.Minute)))
		}, invalidToken(ReasonAlgNotAllowed)},
		{"inner garbage", func() string { return outerWith("not-a-token") }, invalidToken(ReasonMalformed)},
		{"inner expired while outer valid", func() string {
			return outerWith(ic(func(c map[string]any) { c["exp"] = e.clock.Now().Add(-time.Hour).Unix() }))
		}, wantFail{status: 401, code: codeInvalidToken, desc: "embedded token expired: renew", reason: ReasonInnerExpired}},
		{"no inner token, scope covers", func() string {
			m := e.chain()
			delete(m, "orders")
			return sign(e.idpKey, hdr(e.idpKey, "at+jwt"), e.outerClaims(m))
		}, wantFail{status: 401, code: codeInvalidToken, desc: "token predates this API: renew it", reason: ReasonPredatesAPI}},
		{"no inner token, scope does not cover", func() string {
			m := e.chain()
			delete(m, "orders")
			c := e.outerClaims(m)
			c["scope"] = "billing:read"
			return sign(e.idpKey, hdr(e.idpKey, "at+jwt"), c)
		}, wantFail{status: 403, code: codeInsufficientScope, scope: "orders:read orders:write", reason: ReasonNoScope}},
		{"no embedded map at all", func() string {
			c := e.outerClaims(nil)
			delete(c, "embedded_tokens")
			c["scope"] = "profile:read"
			return sign(e.idpKey, hdr(e.idpKey, "at+jwt"), c)
		}, wantFail{status: 403, code: codeInsufficientScope, scope: "orders:read orders:write", reason: ReasonNoScope}},
		{"a billing token at orders", func() string { return e.chain()["billing"].(string) }, invalidToken(ReasonNotCaller)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.logs.TakeAll()
			checkFail(t, e, e.get("/orders/1", tc.token()), tc.want)
		})
	}
	if e.up.count() != 0 {
		t.Errorf("upstream reached %d times", e.up.count())
	}
}

func TestForwardsOnlyTheInnerToken(t *testing.T) {
	e := newEnv(t, envOpts{})
	m := e.chain()
	outer := sign(e.idpKey, hdr(e.idpKey, "application/AT+JWT"), e.outerClaims(m))
	h := http.Header{}
	h.Set("Authorization", "bearer "+outer)
	h.Set("X-Forwarded-For", "6.6.6.6")
	h.Set("X-Forwarded-Host", "evil.test")
	h.Set("X-Forwarded-Prefix", "/evil")
	h.Set("Forwarded", "for=6.6.6.6")
	h.Set("X-Real-IP", "6.6.6.6")
	h.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
	h.Set("Cookie", "session=secret")
	h["X_Forwarded_For"] = []string{"6.6.6.6"}
	h.Set("Connection", "Authorization, X-Request-Id")
	h.Set("X-Request-Id", "client-req-1")
	h.Set("X-Custom", "kept")
	rec := e.do(http.MethodGet, "/orders/1?q=1", h)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	got := e.up.last(t)
	if a := got.Header.Get("Authorization"); a != "Bearer "+m["orders"].(string) {
		t.Errorf("Authorization: got %q, want the orders inner token", a)
	}
	for k, vs := range got.Header {
		for _, v := range vs {
			if strings.Contains(v, outer) || strings.Contains(v, strings.Split(outer, ".")[2]) {
				t.Errorf("outer token in forwarded header %s", k)
			}
		}
	}
	if strings.Contains(got.URL.String(), outer) {
		t.Error("outer token in the forwarded URL")
	}
	if got.URL.Path != "/orders/1" || got.URL.RawQuery != "q=1" {
		t.Errorf("forwarded URL: %s", got.URL)
	}
	for _, name := range []string{"Forwarded", "Proxy-Authorization", "Cookie", "X_Forwarded_For", "X-Forwarded-Prefix"} {
		if v := got.Header.Values(name); len(v) != 0 {
			t.Errorf("%s forwarded: %q", name, v)
		}
	}
	if v := got.Header.Get("X-Forwarded-For"); v != "192.0.2.1" {
		t.Errorf("X-Forwarded-For: got %q, want the client address", v)
	}
	if v := got.Header.Get("X-Real-Ip"); v != "192.0.2.1" {
		t.Errorf("X-Real-IP: got %q", v)
	}
	if v := got.Header.Get("X-Forwarded-Host"); v != "example.com" {
		t.Errorf("X-Forwarded-Host: got %q", v)
	}
	if v := got.Header.Get("X-Request-Id"); v != "client-req-1" {
		t.Errorf("X-Request-Id upstream: got %q", v)
	}
	if v := rec.Header().Values("X-Request-Id"); len(v) != 1 || v[0] != "client-req-1" {
		t.Errorf("X-Request-Id returned: got %q", v)
	}
	if got.Header.Get("X-Custom") != "kept" {
		t.Error("ordinary header dropped")
	}

	// A malformed request id is replaced.
	h.Set("X-Request-Id", "bad id\x01")
	rec = e.do(http.MethodGet, "/orders/1", h)
	if id := rec.Header().Get("X-Request-Id"); id == "" || strings.Contains(id, "bad") {
		t.Errorf("request id: %q", id)
	}
}

func TestRequestRules(t *testing.T) {
	e := newEnv(t, envOpts{})
	tok := e.outer()
	tests := []struct {
		name   string
		target string
		header http.Header
		want   wantFail
	}{
		{"no Authorization", "/orders", nil, wantFail{status: 401, code: codeUnauthorized, reason: ReasonMissingToken}},
		{"Basic scheme", "/orders", http.Header{"Authorization": {"Basic Zm9vOmJhcg=="}}, wantFail{status: 401, code: codeUnauthorized, reason: ReasonOtherScheme}},
		{"Bearer without token", "/orders", http.Header{"Authorization": {"Bearer"}}, wantFail{status: 400, code: codeInvalidRequest, reason: ReasonMalformedHeader}},
		{"Bearer empty", "/orders", http.Header{"Authorization": {"Bearer "}}, wantFail{status: 400, code: codeInvalidRequest, reason: ReasonMalformedHeader}},
		{"Bearer not b64token", "/orders", http.Header{"Authorization": {"Bearer a,b"}}, wantFail{status: 400, code: codeInvalidRequest, reason: ReasonMalformedHeader}},
		{"Bearer two tokens", "/orders", http.Header{"Authorization": {"Bearer " + tok + " " + tok}}, wantFail{status: 400, code: codeInvalidRequest, reason: ReasonMalformedHeader}},
		{"several Authorization headers", "/orders", http.Header{"Authorization": {"Bearer " + tok, "Bearer " + tok}}, wantFail{status: 400, code: codeInvalidRequest, reason: ReasonSeveralHeaders}},
		{"access_token in the query", "/orders?access_token=" + tok, http.Header{"Authorization": {"Bearer " + tok}}, wantFail{status: 400, code: codeInvalidRequest, reason: ReasonQueryToken}},
		{"access_token on a public path", "/healthz?access_token=x", nil, wantFail{status: 400, code: codeInvalidRequest, reason: ReasonQueryToken}},
		{"dot segment", "/orders/../admin", nil, wantFail{status: 400, code: codeInvalidRequest, reason: ReasonBadPath}},
		{"single dot", "/orders/./1", nil, wantFail{status: 400, code: codeInvalidRequest, reason: ReasonBadPath}},
		{"double slash", "//orders", nil, wantFail{status: 400, code: codeInvalidRequest, reason: ReasonBadPath}},
		{"encoded slash", "/orders%2F1", nil, wantFail{status: 400, code: codeInvalidRequest, reason: ReasonBadPath}},
		{"encoded slash lower case", "/healthz%2f", nil, wantFail{status: 400, code: codeInvalidRequest, reason: ReasonBadPath}},
		{"encoded backslash", "/a%5Cb", nil, wantFail{status: 400, code: codeInvalidRequest, reason: ReasonBadPath}},
		{"encoded dot", "/a/%2e%2e/b", nil, wantFail{status: 400, code: codeInvalidRequest, reason: ReasonBadPath}},
		{"encoded NUL", "/a%00", nil, wantFail{status: 400, code: codeInvalidRequest, reason: ReasonBadPath}},
		{"semicolon", "/healthz;x", nil, wantFail{status: 400, code: codeInvalidRequest, reason: ReasonBadPath}},
		{"backslash", "/a\\b", nil, wantFail{status: 400, code: codeInvalidRequest, reason: ReasonBadPath}},
		{"raw non-ASCII byte", "/orders/\xe9", nil, wantFail{status: 400, code: codeInvalidRequest, reason: ReasonBadPath}},
		{"public path with a trailing slash is not public", "/healthz/", nil, wantFail{status: 401, code: codeUnauthorized, reason: ReasonMissingToken}},
		{"route scope", "/orders/admin/7", http.Header{"Authorization": {"Bearer " + tok}}, wantFail{status: 403, code: codeInsufficientScope, scope: "orders:write", reason: ReasonRouteScope}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.logs.TakeAll()
			method := http.MethodGet
			if strings.HasPrefix(tc.target, "/orders/admin") {
				method = http.MethodPost
			}
			checkFail(t, e, e.do(method, tc.target, tc.header), tc.want)
		})
	}
	if e.up.count() != 0 {
		t.Fatalf("upstream reached %d times", e.up.count())
	}
	// The route applies to its methods only.
	if rec := e.do(http.MethodGet, "/orders/admin/7", http.Header{"Authorization": {"Bearer " + tok}}); rec.Code != 200 {
		t.Errorf("GET on the route: %d", rec.Code)
	}
	// The realm is the API name.
	rec := e.do(http.MethodGet, "/orders", nil)
	if wa := rec.Header().Get("WWW-Authenticate"); wa != `Bearer realm="orders"` {
		t.Errorf("challenge: %q", wa)
	}
}

func TestPublicPathForwardsWithoutAuthorization(t *testing.T) {
	e := newEnv(t, envOpts{})
	rec := e.do(http.MethodPost, "/healthz?x=1", http.Header{"Authorization": {"Bearer " + e.outer()}})
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	got := e.up.last(t)
	if v := got.Header.Values("Authorization"); len(v) != 0 {
		t.Errorf("Authorization forwarded on a public path: %q", v)
	}
	if got.URL.Path != "/healthz" {
		t.Errorf("path %q", got.URL.Path)
	}
}

func TestSources(t *testing.T) {
	t.Run("hydra token (typ JWT, scp, ext claim)", func(t *testing.T) {
		e := newEnv(t, envOpts{})
		m := e.chain()
		c := e.outerClaims(nil)
		c["iss"] = hydraIssuer
		delete(c, "scope")
		delete(c, "embedded_tokens")
		c["scp"] = []string{"orders:read"}
		c["ext"] = map[string]any{"embedded_tokens": m}
		rec := e.get("/orders/1", sign(e.hydraKey, hdr(e.hydraKey, "JWT"), c))
		if rec.Code != 200 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if a := e.up.last(t).Header.Get("Authorization"); a != "Bearer "+m["orders"].(string) {
			t.Error("wrong inner token forwarded")
		}
		// ext null (Hydra when the hook answered without claims): no map,
		// a configuration mismatch that renewing cannot fix.
		c["ext"] = nil
		checkFail(t, e, e.get("/orders/1", sign(e.hydraKey, hdr(e.hydraKey, "JWT"), c)),
			wantFail{status: 401, code: codeInvalidToken, desc: descNoEmbeddedMap, reason: ReasonNoEmbeddedMap})
		// An empty map: the token predates this API.
		c["ext"] = map[string]any{"embedded_tokens": map[string]any{}}
		checkFail(t, e, e.get("/orders/1", sign(e.hydraKey, hdr(e.hydraKey, "JWT"), c)),
			wantFail{status: 401, code: codeInvalidToken, desc: descPredates, reason: ReasonPredatesAPI})
	})
	t.Run("own minter token presented directly", func(t *testing.T) {
		e := newEnv(t, envOpts{})
		tok := e.chain()["orders"].(string)
		if rec := e.get("/orders/1", tok); rec.Code != 200 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if a := e.up.last(t).Header.Get("Authorization"); a != "Bearer "+tok {
			t.Error("direct token not forwarded as it is")
		}
	})
	t.Run("a caller's token at billing", func(t *testing.T) {
		e := newEnv(t, envOpts{api: "billing"})
		m := e.chain()
		if rec := e.get("/b", m["orders"].(string)); rec.Code != 200 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		var oc struct {
			E map[string]string `json:"embedded_tokens"`
		}
		p, _ := b64dec(strings.Split(m["orders"].(string), ".")[1])
		_ = json.Unmarshal(p, &oc)
		if a := e.up.last(t).Header.Get("Authorization"); a != "Bearer "+oc.E["billing"] {
			t.Error("billing token from the orders token not forwarded")
		}
		// profile does not call billing.
		checkFail(t, e, e.get("/b", m["profile"].(string)), invalidToken(ReasonNotCaller))
	})
	t.Run("non-exposed ledger", func(t *testing.T) {
		e := newEnv(t, envOpts{api: "ledger"})
		m := e.chain()
		if rec := e.get("/l", m["billing"].(string)); rec.Code != 200 {
			t.Fatalf("caller token: status %d: %s", rec.Code, rec.Body)
		}
		var bc struct {
			E map[string]string `json:"embedded_tokens"`
		}
		p, _ := b64dec(strings.Split(m["billing"].(string), ".")[1])
		_ = json.Unmarshal(p, &bc)
		want := wantFail{status: 403, code: codeInsufficientScope, desc: descNotExposed, scope: "ledger:append", reason: ReasonNotExposed}
		checkFail(t, e, e.get("/l", bc.E["ledger"]), want)
		checkFail(t, e, e.get("/l", e.outer()), want)
	})
	t.Run("API without scopes is covered by every token", func(t *testing.T) {
		e := newEnv(t, envOpts{api: "profile"})
		if rec := e.get("/p", e.outer()); rec.Code != 200 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		m := e.chain()
		delete(m, "profile")
		c := e.outerClaims(m)
		c["scope"] = ""
		checkFail(t, e, e.get("/p", sign(e.idpKey, hdr(e.idpKey, "at+jwt"), c)),
			wantFail{status: 401, code: codeInvalidToken, desc: descPredates, reason: ReasonPredatesAPI})
	})
	t.Run("new API: token predates it", func(t *testing.T) {
		e := newEnv(t, envOpts{api: "reports"})
		c := e.outerClaims(e.chain())
		c["scope"] = "reports:read"
		checkFail(t, e, e.get("/r", sign(e.idpKey, hdr(e.idpKey, "at+jwt"), c)),
			wantFail{status: 401, code: codeInvalidToken, desc: descPredates, reason: ReasonPredatesAPI})
	})
}

func b64dec(s string) ([]byte, error) {
	return jsonB64.DecodeString(s)
}

func TestCache(t *testing.T) {
	e := newEnv(t, envOpts{})
	tok := e.outer()
	for range 3 {
		if rec := e.get("/orders/1", tok); rec.Code != 200 {
			t.Fatalf("status %d", rec.Code)
		}
	}
	if hits := counterValue(t, e.reg, "embedtoken_sidecar_cache_hits_total", nil); hits != 2 {
		t.Errorf("cache hits: got %v, want 2", hits)
	}
	if e.sc.verifier.cache.len() != 1 {
		t.Errorf("cache entries: %d", e.sc.verifier.cache.len())
	}
	// Past the inner token's exp (5m), the entry is not served: the
	// request is verified again and the expired inner token is reported.
	e.clock.Advance(6 * time.Minute)
	checkFail(t, e, e.get("/orders/1", tok), wantFail{status: 401, code: codeInvalidToken, desc: descInnerExpired, reason: ReasonInnerExpired})

	// Keys changing flush the cache.
	e.clock.Set(t0)
	if rec := e.get("/orders/1", tok); rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	k2 := &signingKey{kid: "idp-2", alg: jose.RS256, priv: testRSA(2)}
	e.idpJWKS.set(e.idpKey, k2)
	if err := e.sc.verifier.trusts[0].keys.refetch(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	if n := e.sc.verifier.cache.len(); n != 0 {
		t.Errorf("cache not flushed: %d entries", n)
	}
}

func TestCacheBounded(t *testing.T) {
	c := newTokenCache(32)
	r := &Result{}
	for i := range 1000 {
		k := tokenKey(strings.Repeat("x", i))
		c.put(&k, r, t0.Add(time.Hour))
	}
	if n := c.len(); n > 32 {
		t.Errorf("cache holds %d entries, bound 32", n)
	}
	k := tokenKey("new")
	c.put(&k, r, t0.Add(time.Hour))
	if _, ok := c.get(&k, t0); !ok {
		t.Error("fresh entry missing")
	}
	if _, ok := c.get(&k, t0.Add(time.Hour)); ok {
		t.Error("entry served at its expiry")
	}
}

func TestPanicRecovered(t *testing.T) {
	e := newEnv(t, envOpts{})
	tok := e.outer()
	e.up.handle = func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }
	h := e.sc.middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("boom " + tok) }))
	rec := httptestRecorder()
	h.ServeHTTP(rec, newReq("/x", tok))
	if rec.Code != 500 || strings.Contains(rec.Body.String(), tok) || strings.Contains(rec.Body.String(), "boom") {
		t.Fatalf("got %d %s", rec.Code, rec.Body)
	}
	for _, en := range e.logs.All() {
		if strings.Contains(en.Message, "boom") || strings.Contains(fieldsText(en.Context), "boom") {
			t.Error("panic value logged")
		}
	}
	_ = maps.Clone(map[string]int{})
}
