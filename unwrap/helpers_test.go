package unwrap

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/embedtoken/embedtoken/catalog"
)

// t0 is the fixed time of every test.
var t0 = time.Unix(1_800_000_000, 0)

const (
	idpIssuer    = "https://idp.test"
	hydraIssuer  = "http://127.0.0.1:4444"
	minterIssuer = "https://minter.test"
)

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func newClock() *clock                       { c := &clock{}; c.ns.Store(t0.UnixNano()); return c }
func (c *clock) Now() time.Time              { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration)     { c.ns.Add(int64(d)) }
func (c *clock) Set(t time.Time)             { c.ns.Store(t.UnixNano()) }
func (c *clock) Since(d time.Duration) int64 { return c.Now().Add(-d).Unix() }

// signingKey is a private key with its kid and alg.
type signingKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

func (k *signingKey) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

var (
	rsaOnce sync.Once
	rsaKeys [3]*rsa.PrivateKey
)

// testRSA returns one of three RSA keys generated once per test binary.
func testRSA(i int) *rsa.PrivateKey {
	rsaOnce.Do(func() {
		for j := range rsaKeys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys[j] = k
		}
	})
	return rsaKeys[i]
}

func newEdKey(kid string) *signingKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return &signingKey{kid: kid, alg: jose.EdDSA, priv: priv}
}

// jwksServer serves a key set that tests can change, break or watch.
type jwksServer struct {
	*httptest.Server
	mu     sync.Mutex
	keys   []jose.JSONWebKey
	status int    // when not 0 and not 200: answer this status
	body   string // when set: answer this body instead of the keys
	hits   atomic.Int64
	maxAge int
}

func newJWKSServer(t testing.TB, keys ...*signingKey) *jwksServer {
	s := &jwksServer{}
	for _, k := range keys {
		s.keys = append(s.keys, k.jwk())
	}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.status != 0 && s.status != 200 {
			w.WriteHeader(s.status)
			return
		}
		if s.maxAge > 0 {
			w.Header().Set("Cache-Control", fmt.Sprintf("max-age=%d", s.maxAge))
		}
		if s.body != "" {
			_, _ = io.WriteString(w, s.body)
			return
		}
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: s.keys})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(keys ...*signingKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = nil
	for _, k := range keys {
		s.keys = append(s.keys, k.jwk())
	}
}

func (s *jwksServer) down(status int) {
	s.mu.Lock()
	s.status = status
	s.mu.Unlock()
}

// upstream records what the service behind the sidecar received.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
	// handle, when set, answers instead of the default 200 "ok".
	handle func(w http.ResponseWriter, r *http.Request)
}

func newUpstream(t testing.TB) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		c := r.Clone(context.Background())
		b, _ := io.ReadAll(r.Body)
		c.Body = io.NopCloser(strings.NewReader(string(b)))
		u.reqs = append(u.reqs, c)
		h := u.handle
		u.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("X-Request-Id", "upstream-made-this-up")
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) last(t *testing.T) *http.Request {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		t.Fatal("upstream received nothing")
	}
	return u.reqs[len(u.reqs)-1]
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

// env is one sidecar under test with its issuers, keys and upstream.
type env struct {
	t        testing.TB
	clock    *clock
	idpKey   *signingKey // RS256, trust "idp"
	hydraKey *signingKey // RS256, trust "hydra" (typ JWT, ext.embedded_tokens)
	minter   *signingKey // EdDSA
	idpJWKS  *jwksServer
	hydra    *jwksServer
	mjwks    *jwksServer
	up       *upstream
	cat      *catalog.Catalog
	sc       *Sidecar
	logs     *observer.ObservedLogs
	reg      *prometheus.Registry
}

type envOpts struct {
	api     string
	sidecar string // extra attributes and blocks in the sidecar block
	extra   string // extra top-level blocks (introspection trusts, exchange)
	noStart bool
}

const catalogHCL = `
minter {
  issuer     = %q
  jwks_url   = %q
  algorithms = ["EdDSA"]
}

api "orders" {
  audience = "https://orders.test"
  scopes   = ["orders:read", "orders:write"]
  calls    = ["billing"]
}

api "billing" {
  audience = "https://billing.test"
  scopes   = ["billing:read"]
  calls    = ["ledger"]
}

api "ledger" {
  audience = "https://ledger.test"
  scopes   = ["ledger:append"]
  exposed  = false
}

api "profile" {
  audience = "https://profile.test"
}

api "reports" {
  audience = "https://reports.test"
  scopes   = ["reports:read"]
}

trust "idp" {
  issuer     = %q
  jwks_url   = %q
  algorithms = ["RS256", "ES256"]
  jwks_min_refetch = "10s"
}

trust "hydra" {
  issuer     = %q
  jwks_url   = %q
  algorithms = ["RS256"]
  typ        = ["JWT"]
  claim      = "ext.embedded_tokens"
}

sidecar {
  api              = %q
  listen           = "127.0.0.1:0"
  upstream         = %q
  leeway           = "30s"
  public_paths     = ["/healthz"]
  upstream_timeout = "300ms"
  strip_headers    = ["Cookie"]
  %s
}
`

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	if o.api == "" {
		o.api = "orders"
	}
	if o.api == "orders" {
		o.sidecar += `
  route {
    path_prefix = "/orders/admin"
    methods     = ["POST", "DELETE"]
    scopes      = ["orders:write"]
  }`
	}
	e := &env{
		t:        t,
		clock:    newClock(),
		idpKey:   &signingKey{kid: "idp-1", alg: jose.RS256, priv: testRSA(0)},
		hydraKey: &signingKey{kid: "hydra-1", alg: jose.RS256, priv: testRSA(1)},
		minter:   newEdKey("m-1"),
	}
	e.idpJWKS = newJWKSServer(t, e.idpKey)
	e.hydra = newJWKSServer(t, e.hydraKey)
	e.mjwks = newJWKSServer(t, e.minter)
	e.up = newUpstream(t)
	src := fmt.Sprintf(catalogHCL, minterIssuer, e.mjwks.URL, idpIssuer, e.idpJWKS.URL, hydraIssuer, e.hydra.URL,
		o.api, e.up.URL, o.sidecar) + o.extra
	cat, _, diags := catalog.Load(fstest.MapFS{"c.hcl": {Data: []byte(src)}}, []string{"."}, nil)
	if diags.HasErrors() {
		t.Fatalf("catalog: %s", diags.Error())
	}
	e.cat = cat
	core, logs := observer.New(zap.DebugLevel)
	e.logs = logs
	e.reg = prometheus.NewRegistry()
	opts := &Options{Logger: zap.New(core), Registerer: e.reg, Now: e.clock.Now}
	var err error
	if opts.Introspector, err = NewIntrospector(cat, opts); err != nil {
		t.Fatal(err)
	}
	if opts.Exchanger, err = NewExchanger(cat, opts); err != nil {
		t.Fatal(err)
	}
	sc, err := New(cat, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.sc = sc
	t.Cleanup(sc.Close)
	if !o.noStart {
		sc.Start(context.Background())
		e.waitReady()
	}
	return e
}

func (e *env) waitReady() {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !e.sc.Ready() {
		if time.Now().After(deadline) {
			e.t.Fatal("sidecar not ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// b64 is base64url without padding.
func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// signRaw signs header and payload JSON texts as given (so that tests can
// send duplicate members or odd headers).
func signRaw(k *signingKey, headerJSON, payloadJSON string) string {
	in := b64([]byte(headerJSON)) + "." + b64([]byte(payloadJSON))
	var sig []byte
	var err error
	switch k.alg {
	case jose.EdDSA:
		sig = ed25519.Sign(k.priv.(ed25519.PrivateKey), []byte(in))
	case jose.RS256:
		h := sha256.Sum256([]byte(in))
		sig, err = rsa.SignPKCS1v15(rand.Reader, k.priv.(*rsa.PrivateKey), crypto.SHA256, h[:])
	default:
		panic("alg")
	}
	if err != nil {
		panic(err)
	}
	return in + "." + b64(sig)
}

// signHS256 signs with HMAC using secret as the key.
func signHS256(secret []byte, headerJSON, payloadJSON string) string {
	in := b64([]byte(headerJSON)) + "." + b64([]byte(payloadJSON))
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(in))
	return in + "." + b64(m.Sum(nil))
}

// hdr builds a header map.
func hdr(k *signingKey, typ string) map[string]any {
	h := map[string]any{"alg": string(k.alg), "kid": k.kid}
	if typ != "" {
		h["typ"] = typ
	}
	return h
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// sign signs claims with header h.
func sign(k *signingKey, h map[string]any, claims map[string]any) string {
	return signRaw(k, mustJSON(h), mustJSON(claims))
}

var jtiSeq atomic.Int64

// innerClaims are the claims of a minter token for aud.
func (e *env) innerClaims(aud, scope string, life time.Duration) map[string]any {
	now := e.clock.Now()
	c := map[string]any{
		"iss": minterIssuer, "sub": "alice", "aud": aud, "client_id": "app",
		"iat": now.Unix(), "exp": now.Add(life).Unix(), "jti": fmt.Sprintf("j-%d", jtiSeq.Add(1)),
	}
	if scope != "" {
		c["scope"] = scope
	}
	return c
}

// mintInner signs inner claims with the minter key.
func (e *env) mintInner(c map[string]any) string { return sign(e.minter, hdr(e.minter, "at+jwt"), c) }

// chain mints the standard embedded map: orders (embedding billing, which
// embeds ledger), billing (embedding ledger) and profile.
func (e *env) chain() map[string]any {
	ledger := e.mintInner(e.innerClaims("https://ledger.test", "ledger:append", 2*time.Minute))
	bc := e.innerClaims("https://billing.test", "billing:read", 3*time.Minute)
	bc["embedded_tokens"] = map[string]any{"ledger": ledger}
	billing := e.mintInner(bc)
	oc := e.innerClaims("https://orders.test", "orders:read", 5*time.Minute)
	oc["embedded_tokens"] = map[string]any{"billing": billing}
	return map[string]any{
		"orders":  e.mintInner(oc),
		"billing": billing,
		"profile": e.mintInner(e.innerClaims("https://profile.test", "", 5*time.Minute)),
	}
}

// outerClaims are the claims of an idp access token embedding m.
func (e *env) outerClaims(m map[string]any) map[string]any {
	now := e.clock.Now()
	return map[string]any{
		"iss": idpIssuer, "sub": "alice", "client_id": "app", "jti": fmt.Sprintf("o-%d", jtiSeq.Add(1)),
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "aud": []string{"https://gateway.test"},
		"scope":           "orders:read billing:read ledger:append profile:read",
		"embedded_tokens": m,
	}
}

// outer mints an idp outer token with the standard chain.
func (e *env) outer() string {
	return sign(e.idpKey, hdr(e.idpKey, "at+jwt"), e.outerClaims(e.chain()))
}

// do sends a request through the sidecar handler.
func (e *env) do(method, target string, h http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	for k, v := range h {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	e.sc.Handler().ServeHTTP(rec, req)
	return rec
}

func (e *env) get(target, token string) *httptest.ResponseRecorder {
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return e.do(http.MethodGet, target, h)
}

// reasonLogged reports whether some log entry has reason r.
func (e *env) reasonLogged(r Reason) bool {
	for _, en := range e.logs.All() {
		for _, f := range en.Context {
			if f.Key == fieldReason && f.String == string(r) {
				return true
			}
		}
	}
	return false
}

var jsonB64 = base64.RawURLEncoding

func httptestRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func newReq(target, token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

// fieldsText renders log fields as text, for leak checks.
func fieldsText(fs []zap.Field) string {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fs {
		f.AddTo(enc)
	}
	return fmt.Sprint(enc.Fields)
}

// counterValue sums the samples of a metric family whose labels include
// labels.
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			if c := m.GetCounter(); c != nil {
				sum += c.GetValue()
			}
		}
	}
	return sum
}
