package unwrap

import (
	"net/http"
	"testing"
)

// Regression tests from a black-box review of the sidecar as a process:
// readings of a request that some upstream takes differently from the
// sidecar (DESIGN.md "Precise rules": Paths, Headers, query tokens).

// TestRouteScopesUnicodeFold: a router that ignores case with Unicode
// simple case mappings (.NET OrdinalIgnoreCase, Java equalsIgnoreCase, Go's
// strings.EqualFold) reads "ſ" (U+017F) as "s", "K" (U+212A) as "k", and
// "ı" (U+0131) and "İ" (U+0130) as "i": /orders/adm%C4%B1n is /orders/admin
// to them, so the route's scopes apply.
func TestRouteScopesUnicodeFold(t *testing.T) {
	e := newEnv(t, envOpts{sidecar: reportRoute})
	tok := e.outer()
	scope := wantFail{status: 403, code: codeInsufficientScope, reason: ReasonRouteScope}
	cases := []struct {
		method, target string
		want           wantFail // status 200: forwarded
	}{
		{"POST", "/orders/adm%C4%B1n", scope},     // ı
		{"POST", "/orders/adm%C4%B0n", scope},     // İ
		{"POST", "/order%C5%BF/admin", scope},     // ſ
		{"GET", "/orders/report%E2%84%AA", scope}, // K, after the prefix: still the route
		{"GET", "/ORDER%C5%BF/REPORT", scope},
		{"POST", "/orders/adm%C3%ADn", wantFail{status: 200}}, // í folds to no ASCII letter
		{"POST", "/orders/1", wantFail{status: 200}},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			rec := e.do(tc.method, tc.target, http.Header{"Authorization": {"Bearer " + tok}})
			if tc.want.status == 200 {
				if rec.Code != 200 {
					t.Fatalf("status %d, want 200: %s", rec.Code, rec.Body)
				}
				return
			}
			checkFail(t, e, rec, tc.want)
		})
	}
}

func TestHasPrefixFold(t *testing.T) {
	cases := []struct {
		s, prefix string
		want      bool
	}{
		{"/orders/admin", "/orders/admin", true},
		{"/ORDERS/ADMIN/1", "/orders/admin", true},
		{"/orders/adm", "/orders/admin", false},
		{"/orders/ſecret", "/orders/secret", true},
		{"/orders/ſecret", "/orders/ſecret", true},
		{"/orders/secret", "/orders/ſecret", true},
		{"/orders/adminı", "/orders/admin", true},
		{"/orders/admın", "/orders/admin", true},
		{"/orders/admİn", "/orders/admin", true},
		{"/Kelvin", "/kelvin", true},
		{"/orders/café", "/orders/CAFÉ", true},
		{"/orders/cafe", "/orders/café", false},
		{"/orders/adm\xffn", "/orders/admin", false},
		{"x-forwarded-for", "x-forwarded-", true},
		{"X-Forwarded-For", "x-forwarded-", true},
		{"X-Forwarded", "x-forwarded-", false},
	}
	for _, tc := range cases {
		if got := hasPrefixFold(tc.s, tc.prefix); got != tc.want {
			t.Errorf("hasPrefixFold(%q, %q) = %v, want %v", tc.s, tc.prefix, got, tc.want)
		}
	}
}

// TestQueryTokenParsedNames: PHP turns "." and " " in a query parameter's
// name into "_" and "name[...]" into an array named name (so do Rack and
// Express's qs for the brackets), and C-string parsers stop at NUL: each of
// these is an access_token parameter to some service, so it is refused like
// the plain name.
func TestQueryTokenParsedNames(t *testing.T) {
	e := newEnv(t, envOpts{})
	tok := e.outer()
	refused := []string{
		"access_token=x", "ACCESS_TOKEN=x", "access%5Ftoken=x",
		"access.token=x", "access+token=x", "access%20token=x", "Access.Token=x",
		"access[token=x", "access_token[]=x", "access_token%5B%5D=x", "access_token[0]=x",
		"access.token[a]=x", "+access_token=x", "access_token%00x=x", "a=1&access.token=x",
	}
	for _, q := range refused {
		t.Run(q, func(t *testing.T) {
			checkFail(t, e, e.get("/orders/1?"+q, tok), wantFail{status: 400, code: codeInvalidRequest, reason: ReasonQueryToken})
		})
	}
	for _, q := range []string{"token=x", "access_tokens=x", "access-token=x", "x=access_token", "access_token_x=1", "my_access_token=x"} {
		t.Run(q, func(t *testing.T) {
			if rec := e.get("/orders/1?"+q, tok); rec.Code != 200 {
				t.Fatalf("status %d, want 200: %s", rec.Code, rec.Body)
			}
		})
	}
}

// TestPathOverrideHeadersRemoved: Symfony before 3.4.14/4.1.3, Zend and
// Laminas, and IIS-hosted apps route by X-Original-URL or X-Rewrite-URL
// instead of the request line (CVE-2018-14773), as if the request were for
// another path: a client's would let /orders/1 run /orders/admin's handler
// past the route. They are removed like forwarding headers.
func TestPathOverrideHeadersRemoved(t *testing.T) {
	e := newEnv(t, envOpts{})
	tok := e.outer()
	rec := e.do("POST", "/orders/1", http.Header{
		"Authorization":  {"Bearer " + tok},
		"X-Original-Url": {"/orders/admin"},
		"X-Rewrite-Url":  {"/orders/admin"},
		"X-Original-Uri": {"/orders/admin"},
	})
	if rec.Code != 200 {
		t.Fatalf("status %d, want 200: %s", rec.Code, rec.Body)
	}
	got := e.up.last(t).Header
	for _, name := range []string{"X-Original-Url", "X-Rewrite-Url", "X-Original-Uri"} {
		if v, ok := got[name]; ok {
			t.Errorf("upstream got %s: %q", name, v)
		}
	}
}

// TestH2CUpgradeVariants: RFC 9110 7.8 spells a protocol as name["/"version]
// and names compare case-insensitively: "H2C" and "h2c/1.0" are h2c too, and
// are dropped like "h2c".
func TestH2CUpgradeVariants(t *testing.T) {
	for _, v := range [][]string{{"h2c"}, {"H2C"}, {" h2c/1.0"}, {"websocket, h2c/2"}, {"websocket", "h2c"}} {
		if !isH2CUpgrade(http.Header{"Upgrade": v}) {
			t.Errorf("Upgrade %q: not an h2c upgrade", v)
		}
	}
	for _, v := range [][]string{{"websocket"}, {"h2"}, {"h2cx"}, {"xh2c/1"}} {
		if isH2CUpgrade(http.Header{"Upgrade": v}) {
			t.Errorf("Upgrade %q: an h2c upgrade", v)
		}
	}
}
