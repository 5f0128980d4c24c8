package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// apiSpec is an API of the shipped catalog (hcl/catalog.hcl) as the
// journeys expect it.
type apiSpec struct {
	aud      string
	scopes   []string
	claims   []string
	lifetime time.Duration
	calls    []string
	path     string // the path the journey requests at its sidecar
}

var shippedAPIs = map[string]apiSpec{
	"orders":    {"https://orders.internal", []string{"orders:read", "orders:write"}, []string{"email", "tenant"}, 5 * time.Minute, []string{"billing", "inventory"}, "/orders/42"},
	"billing":   {"https://billing.internal", []string{"billing:read", "billing:charge"}, []string{"tenant"}, 2 * time.Minute, []string{"ledger"}, "/billing/charge"},
	"ledger":    {"https://ledger.internal", []string{"ledger:append"}, []string{"tenant"}, time.Minute, nil, "/ledger/entries"},
	"inventory": {"https://inventory.internal", []string{"inventory:read"}, nil, 2 * time.Minute, nil, "/inventory/items"},
	"profile":   {"https://profile.internal", []string{"profile:read"}, []string{"email", "name"}, 10 * time.Minute, nil, "/profile/me"},
}

// registeredInner are the claims an inner token may carry besides the API's
// declared claims and the embedded map (DESIGN.md, Tokens).
var registeredInner = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "client_id", "scope"}

// subject is who the outer token is for, and what was granted.
type subject struct {
	sub      string
	clientID string
	granted  []string
	claims   map[string]any // subject claims that api.claims may copy
	act      bool           // tokens come from a token exchange: act is expected
}

// chain is the shipped call graph running on loopback: the hook, one
// sidecar and one recording service per API; orders calls billing and
// inventory, billing calls ledger, each through the callee's sidecar.
type chain struct {
	st  *stack
	svc map[string]*service
	sc  map[string]*sidecar
}

// startChain starts a service and a sidecar per API of the shipped catalog.
// The hook must be running (sidecars fetch the minter's JWKS from it).
func startChain(t *testing.T, st *stack) *chain {
	t.Helper()
	c := &chain{st: st, svc: map[string]*service{}, sc: map[string]*sidecar{}}
	for _, api := range []string{"ledger", "inventory", "billing", "orders", "profile"} {
		c.svc[api] = newService(t, api)
		c.sc[api] = st.startSidecar(t, api, c.svc[api].srv.URL)
	}
	for api, spec := range shippedAPIs {
		for _, callee := range spec.calls {
			c.svc[api].calls(callee, c.sc[callee].url(shippedAPIs[callee].path))
		}
	}
	return c
}

// reset forgets what every service received.
func (c *chain) reset() {
	for _, s := range c.svc {
		s.take()
	}
}

// response is a sidecar's answer.
type response struct {
	status    int
	challenge string // WWW-Authenticate
	body      []byte
	errCode   string // "error" of a JSON error body
	errDesc   string
}

// get sends GET path to api's sidecar with token as a Bearer token (no
// Authorization header when token is empty).
func (c *chain) get(t *testing.T, api, token string) response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.sc[api].url(shippedAPIs[api].path), nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.st.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s sidecar: %v", api, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	r := response{status: resp.StatusCode, challenge: resp.Header.Get("WWW-Authenticate"), body: b}
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(b, &e) == nil {
		r.errCode, r.errDesc = e.Error, e.Description
	}
	return r
}

// expectRefused requires status and, for 401/403, a Bearer challenge with
// errCode (RFC 6750), and that no service was reached.
func (c *chain) expectRefused(t *testing.T, r response, status int, errCode string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status: got %d, want %d (body %s)", r.status, status, r.body)
	}
	if errCode != "" {
		if r.errCode != errCode {
			t.Errorf("body error: got %q, want %q", r.errCode, errCode)
		}
		if !strings.HasPrefix(r.challenge, "Bearer ") || !strings.Contains(r.challenge, `error="`+errCode+`"`) {
			t.Errorf("WWW-Authenticate: got %q, want a Bearer challenge with error=%q", r.challenge, errCode)
		}
	}
	for api, s := range c.svc {
		if got := s.take(); len(got) != 0 {
			t.Errorf("service %s was reached %d times by a refused request", api, len(got))
		}
	}
}

// journey sends outer to the orders sidecar and checks every hop: each
// service received exactly its own narrowed token, verified with the
// minter's JWKS, nested in the token of its caller, and nothing broader.
func (c *chain) journey(t *testing.T, outer, claimPath string, subj subject) {
	t.Helper()
	c.reset()
	r := c.get(t, "orders", outer)
	if r.status != http.StatusOK {
		t.Fatalf("orders sidecar: got %d %s, want 200", r.status, r.body)
	}
	wantNext := map[string]int{}
	for _, callee := range shippedAPIs["orders"].calls {
		wantNext[callee] = http.StatusForbidden // not granted: insufficient_scope
		if len(intersect(subj.granted, shippedAPIs[callee].scopes)) > 0 {
			wantNext[callee] = http.StatusOK
		}
	}
	var reply serviceReply
	if err := json.Unmarshal(r.body, &reply); err != nil || !reflect.DeepEqual(reply.Next, wantNext) {
		t.Errorf("orders' calls: got %s, want next %v", r.body, wantNext)
	}

	keys := fetchJWKS(t, c.st.client, c.st.jwksURL())
	o := decodeJWT(t, outer)
	top := o.embedded(claimPath)
	// Tokens that must never reach a service other than their own.
	broader := []string{outer}
	c.hop(t, "orders", top["orders"], o.time("exp"), subj, keys, broader)
	if t.Failed() {
		return
	}
	for _, api := range []string{"profile"} {
		c.svc[api].none(t)
	}
}

// hop checks what api's service received (want: token), then follows its
// calls. enclosing is the exp of the token it was nested in.
func (c *chain) hop(t *testing.T, api, token string, enclosing time.Time, subj subject, keys jose.JSONWebKeySet, broader []string) {
	t.Helper()
	spec := shippedAPIs[api]
	if len(intersect(subj.granted, spec.scopes)) == 0 {
		c.svc[api].none(t)
		return
	}
	rec := c.svc[api].one(t)
	if token == "" {
		t.Fatalf("%s: no token for it in its caller's token", api)
	}
	if rec.Token != token {
		t.Fatalf("%s: received a token other than the one nested for it (%d bytes, want %d)", api, len(rec.Token), len(token))
	}
	for _, b := range broader {
		for name, vs := range rec.Header {
			for _, v := range vs {
				if strings.Contains(v, b) {
					t.Errorf("%s: header %s carries a broader token", api, name)
				}
			}
		}
		if strings.Contains(rec.Path, b) {
			t.Errorf("%s: path carries a broader token", api)
		}
	}
	j := checkInner(t, api, token, enclosing, subj, keys)
	nested := j.embedded(minterClaim)
	for _, callee := range spec.calls {
		c.hop(t, callee, nested[callee], j.time("exp"), subj, keys, append(slices.Clone(broader), token))
	}
}

// checkInner verifies an inner token and checks its claims against the
// shipped catalog and the subject (DESIGN.md, Tokens).
func checkInner(t *testing.T, api, token string, enclosing time.Time, subj subject, keys jose.JSONWebKeySet) jwt {
	t.Helper()
	spec := shippedAPIs[api]
	j := verifyJWT(t, token, keys, jose.EdDSA, jose.ES256, jose.RS256, jose.PS256)
	if typ, _ := j.header["typ"].(string); !strings.EqualFold(strings.TrimPrefix(strings.ToLower(typ), "application/"), "at+jwt") {
		t.Errorf("%s: typ %q, want at+jwt", api, typ)
	}
	if got := j.str("iss"); got != minterIssuer {
		t.Errorf("%s: iss %q, want %q", api, got, minterIssuer)
	}
	if aud, ok := j.claims["aud"].(string); !ok || aud != spec.aud {
		t.Errorf("%s: aud %v, want the single string %q", api, j.claims["aud"], spec.aud)
	}
	if j.str("sub") != subj.sub || j.str("client_id") != subj.clientID {
		t.Errorf("%s: sub %q client_id %q, want %q %q", api, j.str("sub"), j.str("client_id"), subj.sub, subj.clientID)
	}
	want := intersect(subj.granted, spec.scopes)
	got := strings.Fields(j.str("scope"))
	sort.Strings(got)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: scope %v, want granted ∩ API scopes = %v", api, got, want)
	}
	if _, ok := j.claims["scp"]; ok {
		t.Errorf("%s: carries scp", api)
	}
	exp, iat := j.time("exp"), j.time("iat")
	if exp.IsZero() || iat.IsZero() || j.str("jti") == "" {
		t.Errorf("%s: exp, iat and jti are required: %v", api, j.claims)
	}
	if exp.After(enclosing) {
		t.Errorf("%s: exp %v outlives the enclosing token's %v", api, exp, enclosing)
	}
	if exp.Sub(iat) > spec.lifetime {
		t.Errorf("%s: lifetime %s, over the API's %s", api, exp.Sub(iat), spec.lifetime)
	}
	if !exp.After(time.Now().Add(-2 * time.Second)) {
		t.Errorf("%s: already expired at %v", api, exp)
	}
	allowed := append(slices.Clone(registeredInner), spec.claims...)
	if subj.act {
		allowed = append(allowed, "act")
	}
	var wantNested []string
	for _, callee := range spec.calls {
		if len(intersect(subj.granted, shippedAPIs[callee].scopes)) > 0 {
			wantNested = append(wantNested, callee)
		}
	}
	if len(wantNested) > 0 {
		allowed = append(allowed, minterClaim)
	}
	for k := range j.claims {
		if !slices.Contains(allowed, k) {
			t.Errorf("%s: undeclared claim %q", api, k)
		}
	}
	for _, name := range spec.claims {
		v, has := j.claims[name]
		sv, want := subj.claims[name]
		switch {
		case want && !has:
			t.Errorf("%s: declared claim %q missing", api, name)
		case !want && has:
			t.Errorf("%s: claim %q not in the subject but present", api, name)
		case want && fmt.Sprint(v) != fmt.Sprint(sv):
			t.Errorf("%s: claim %q = %v, want %v", api, name, v, sv)
		}
	}
	nested := j.embedded(minterClaim)
	gotNested := make([]string, 0, len(nested))
	for k := range nested {
		gotNested = append(gotNested, k)
	}
	sort.Strings(gotNested)
	sort.Strings(wantNested)
	if len(wantNested) == 0 && nested != nil {
		gotNested = append(gotNested, "(claim present)")
	}
	if !slices.Equal(gotNested, wantNested) {
		t.Errorf("%s: nests tokens for %v, want %v", api, gotNested, wantNested)
	}
	return j
}

// topLevel returns the sorted names of an outer token's embedded map and
// checks them against the exposed, granted APIs.
func checkTopLevel(t *testing.T, outer jwt, claimPath string, granted []string) map[string]string {
	t.Helper()
	m := outer.embedded(claimPath)
	if m == nil {
		t.Fatalf("outer token: no embedded map at %s: %v", claimPath, outer.claims)
	}
	var got, want []string
	for k := range m {
		got = append(got, k)
	}
	for _, api := range []string{"orders", "profile"} { // the exposed APIs
		if len(intersect(granted, shippedAPIs[api].scopes)) > 0 {
			want = append(want, api)
		}
	}
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("outer token embeds %v, want %v", got, want)
	}
	return m
}

// intersect returns the sorted elements of a that are in b.
func intersect(a, b []string) []string {
	out := []string{}
	for _, s := range a {
		if slices.Contains(b, s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// waitUntil sleeps until t0 (bounded by max, for safety).
func waitUntil(t0 time.Time, max time.Duration) {
	d := time.Until(t0)
	if d > max {
		d = max
	}
	if d > 0 {
		time.Sleep(d)
	}
}

// checkTree checks, without any sidecar, the whole tree of inner tokens of
// an outer token: each verified with the minter's keys and narrowed for its
// API, nested along the catalog's calls, none outliving its enclosing token.
// want lists every API that must be found in the tree.
func checkTree(t *testing.T, outer jwt, claimPath string, subj subject, keys jose.JSONWebKeySet, want ...string) {
	t.Helper()
	top := checkTopLevel(t, outer, claimPath, subj.granted)
	var seen []string
	var walk func(api, tok string, enclosing time.Time)
	walk = func(api, tok string, enclosing time.Time) {
		seen = append(seen, api)
		j := checkInner(t, api, tok, enclosing, subj, keys)
		for callee, nested := range j.embedded(minterClaim) {
			walk(callee, nested, j.time("exp"))
		}
	}
	for api, tok := range top {
		walk(api, tok, outer.time("exp"))
	}
	sort.Strings(seen)
	sort.Strings(want)
	if !slices.Equal(seen, want) {
		t.Errorf("tree of inner tokens: got %v, want %v", seen, want)
	}
}
