package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/embedtoken/embedtoken/catalog"
)

// This file holds the adversarial suite and the fixture it shares with
// faults_test.go and soak_test.go: an `embedtoken sidecar` process for the
// API "orders", in front of a recording upstream, trusting a fake issuer
// whose key set the tests control (and can break), with the minter's key set
// served by the test. Keys are generated per test and never written to the
// repository.

// Names and audiences of the fixture's catalog.
const (
	advMinterIssuer = "https://minter.adv.test"
	advIssuer       = "https://idp.adv.test"
	advOrders       = "https://orders.adv.test"
	advBilling      = "https://billing.adv.test"
	advGateway      = "https://gateway.adv.test"
	advClaim        = "embedded_tokens"
)

// advCatalog is the fixture's main.hcl: orders calls billing; gateway calls
// orders (so a gateway minter token may be an outer token at orders).
const advCatalog = `
minter {
  issuer     = %q
  jwks_url   = %q
  algorithms = ["EdDSA"]
}

api "orders" {
  audience = %q
  scopes   = ["orders:read", "orders:write"]
  claims   = ["tenant"]
  calls    = ["billing"]
}

api "billing" {
  audience = %q
  scopes   = ["billing:read"]
  exposed  = false
}

api "gateway" {
  audience = %q
  scopes   = ["gateway:use"]
  calls    = ["orders"]
}

trust "idp" {
  issuer           = %q
  jwks_url         = %q
  algorithms       = ["RS256", "ES256"]
  jwks_min_refetch = %q
}
`

// advSidecarHCL is the fixture's sidecar.hcl; %s adds attributes.
const advSidecarHCL = `
sidecar {
  api              = "orders"
  listen           = %q
  upstream         = %q
  admin_listen     = %q
  leeway           = "5s"
  max_token_bytes  = 16384
  public_paths     = ["/healthz"]
  upstream_timeout = %q
  shutdown_timeout = %q
  strip_headers    = ["Cookie"]
%s
  route {
    path_prefix = "/orders/admin"
    methods     = ["POST", "DELETE"]
    scopes      = ["orders:write"]
  }
}
`

// advOptions tune the fixture.
type advOptions struct {
	MinRefetch      string // trust jwks_min_refetch; default "1s"
	UpstreamTimeout string // default "5s"
	ShutdownTimeout string // default "5s"
	UpstreamDelay   time.Duration
	SidecarExtra    string // more attributes in the sidecar block
	NoAdmin         bool   // leave admin_listen out
	LogLevel        string // default "debug": every refusal is logged, for the leak checks
	Upstream        string // the sidecar's upstream URL instead of the recorder's
}

// advKey is a signing key with its kid and alg.
type advKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

func (k *advKey) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

var (
	advRSAOnce sync.Once
	advRSA     [2]*rsa.PrivateKey
)

// rsaKey returns one of two RSA keys made once per test binary.
func rsaKey(i int) *rsa.PrivateKey {
	advRSAOnce.Do(func() {
		for j := range advRSA {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			advRSA[j] = k
		}
	})
	return advRSA[i]
}

func newECKey(kid string) *advKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return &advKey{kid: kid, alg: jose.ES256, priv: k}
}

func newEdKey(kid string) *advKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return &advKey{kid: kid, alg: jose.EdDSA, priv: k}
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// signInput signs a JWS signing input with k.
func (k *advKey) signInput(in string) string {
	switch k.alg {
	case jose.EdDSA:
		return b64url(ed25519.Sign(k.priv.(ed25519.PrivateKey), []byte(in)))
	case jose.RS256:
		h := sha256.Sum256([]byte(in))
		sig, err := rsa.SignPKCS1v15(rand.Reader, k.priv.(*rsa.PrivateKey), crypto.SHA256, h[:])
		if err != nil {
			panic(err)
		}
		return b64url(sig)
	case jose.ES256:
		h := sha256.Sum256([]byte(in))
		r, s, err := ecdsa.Sign(rand.Reader, k.priv.(*ecdsa.PrivateKey), h[:])
		if err != nil {
			panic(err)
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return b64url(sig)
	}
	panic("alg " + string(k.alg))
}

// signRaw signs the header and payload JSON texts exactly as given.
func (k *advKey) signRaw(header, payload string) string {
	in := b64url([]byte(header)) + "." + b64url([]byte(payload))
	return in + "." + k.signInput(in)
}

// sign signs claims with the usual header {alg, kid, typ}.
func (k *advKey) sign(typ string, claims map[string]any) string {
	return k.signRaw(mustMarshal(map[string]any{"alg": string(k.alg), "kid": k.kid, "typ": typ}), mustMarshal(claims))
}

func mustMarshal(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// keyServer serves one JWK set on a fixed loopback address; tests change its
// keys, break it (HTTP 500, garbage, slow) or take it down and back up.
type keyServer struct {
	addr string
	hits atomic.Int64

	mu    sync.Mutex
	keys  []jose.JSONWebKey
	mode  string        // "", "status500", "garbage", "empty", "slow"
	slow  chan struct{} // closed to release slow answers
	srv   *http.Server
	delay time.Duration
}

func newKeyServer(t *testing.T, keys ...*advKey) *keyServer {
	t.Helper()
	s := &keyServer{addr: freeAddr(t), slow: make(chan struct{})}
	s.setKeys(keys...)
	s.start(t)
	t.Cleanup(func() {
		s.mu.Lock()
		select {
		case <-s.slow:
		default:
			close(s.slow)
		}
		s.mu.Unlock()
		s.stop()
	})
	return s
}

func (s *keyServer) url() string { return "http://" + s.addr + "/jwks.json" }

func (s *keyServer) setKeys(keys ...*advKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = nil
	for _, k := range keys {
		s.keys = append(s.keys, k.jwk())
	}
}

func (s *keyServer) setMode(mode string, delay time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode, s.delay = mode, delay
}

func (s *keyServer) serve(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	s.mu.Lock()
	mode, keys, delay, slow := s.mode, s.keys, s.delay, s.slow
	s.mu.Unlock()
	switch mode {
	case "status500":
		http.Error(w, "boom", http.StatusInternalServerError)
		return
	case "garbage":
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `<html>{"keys": [`)
		return
	case "empty":
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "rsa-1"}]}`)
		return
	case "slow":
		select {
		case <-time.After(delay):
		case <-slow:
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: keys})
}

// start listens on the server's address (retrying while the old socket
// lingers) and serves.
func (s *keyServer) start(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("key server: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 5 * time.Second}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// stop closes the listener and every connection: the issuer is down.
func (s *keyServer) stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// upRequest is one request as the upstream saw it.
type upRequest struct {
	Method     string
	Host       string
	RequestURI string
	Header     http.Header
	Trailer    http.Header
	Body       []byte
}

// recorder is the recording upstream, on a fixed address so that it can go
// down and come back.
type recorder struct {
	addr string

	mu    sync.Mutex
	got   []upRequest
	delay time.Duration
	srv   *http.Server
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	u := &recorder{addr: freeAddr(t)}
	u.start(t)
	t.Cleanup(u.stop)
	return u
}

func (u *recorder) url() string { return "http://" + u.addr }

func (u *recorder) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	rec := upRequest{Method: r.Method, Host: r.Host, RequestURI: r.RequestURI, Header: r.Header.Clone(), Trailer: r.Trailer.Clone(), Body: body}
	u.mu.Lock()
	u.got = append(u.got, rec)
	delay := u.delay
	u.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, "upstream ok")
}

func (u *recorder) start(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", u.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("upstream: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(u.serve), ReadHeaderTimeout: 5 * time.Second}
	u.mu.Lock()
	u.srv = srv
	u.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

func (u *recorder) stop() {
	u.mu.Lock()
	srv := u.srv
	u.srv = nil
	u.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// take returns what the upstream received since the last take.
func (u *recorder) take() []upRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	got := u.got
	u.got = nil
	return got
}

// adv is the running fixture.
type adv struct {
	t       *testing.T
	dir     string
	opts    advOptions
	rsa     *advKey // trust "idp", RS256, kid rsa-1
	ec      *advKey // trust "idp", ES256, kid ec-1
	minter  *advKey // EdDSA, kid m-1
	idp     *keyServer
	mjwks   *keyServer
	up      *recorder
	listen  string
	admin   string
	p       *proc
	client  *http.Client
	jtiSeq  atomic.Int64
	started time.Time
}

// newAdv writes the configuration and starts the sidecar; it returns when
// the sidecar is ready.
func newAdv(t *testing.T, opts advOptions) *adv {
	t.Helper()
	bin := needBinary(t)
	if opts.MinRefetch == "" {
		opts.MinRefetch = "1s"
	}
	if opts.UpstreamTimeout == "" {
		opts.UpstreamTimeout = "5s"
	}
	if opts.ShutdownTimeout == "" {
		opts.ShutdownTimeout = "5s"
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "debug"
	}
	a := &adv{t: t, dir: t.TempDir(), opts: opts, client: newClient(),
		rsa:    &advKey{kid: "rsa-1", alg: jose.RS256, priv: rsaKey(0)},
		ec:     newECKey("ec-1"),
		minter: newEdKey("m-1"),
	}
	t.Cleanup(a.client.CloseIdleConnections)
	a.idp = newKeyServer(t, a.rsa, a.ec)
	a.mjwks = newKeyServer(t, a.minter)
	a.up = newRecorder(t)
	a.up.delay = opts.UpstreamDelay
	addrs := freeAddrs(t, 2)
	a.listen, a.admin = addrs[0], addrs[1]
	writeFile(t, filepath.Join(a.dir, "main.hcl"), fmt.Sprintf(advCatalog, advMinterIssuer, a.mjwks.url(),
		advOrders, advBilling, advGateway, advIssuer, a.idp.url(), opts.MinRefetch))
	a.writeSidecar(t, opts.SidecarExtra)
	a.p = startProc(t, "sidecar", baseEnv(), bin, "sidecar", "--config", a.dir, "--log-level", opts.LogLevel)
	if opts.NoAdmin {
		ctx, cancel := contextWithTimeout(readyTimeout)
		defer cancel()
		if err := waitTCP(ctx, a.listen); err != nil {
			t.Fatal(err)
		}
	} else {
		a.p.waitHTTP(t, "http://"+a.admin+"/readyz")
	}
	a.started = time.Now()
	return a
}

// writeSidecar (re)writes sidecar.hcl with extra attributes.
func (a *adv) writeSidecar(t *testing.T, extra string) {
	t.Helper()
	admin := a.admin
	up := a.up.url()
	if a.opts.Upstream != "" {
		up = a.opts.Upstream
	}
	src := fmt.Sprintf(advSidecarHCL, a.listen, up, admin, a.opts.UpstreamTimeout, a.opts.ShutdownTimeout, extra)
	if a.opts.NoAdmin {
		src = strings.Replace(src, fmt.Sprintf("  admin_listen     = %q\n", admin), "", 1)
	}
	writeFile(t, filepath.Join(a.dir, "sidecar.hcl"), src)
}

// url is the sidecar URL of path.
func (a *adv) url(path string) string { return "http://" + a.listen + path }

// innerClaims are the claims of a minter token for aud.
func (a *adv) innerClaims(aud, sub, scope string, life time.Duration) map[string]any {
	now := time.Now()
	c := map[string]any{"iss": advMinterIssuer, "sub": sub, "aud": aud, "client_id": "app",
		"iat": now.Unix(), "exp": now.Add(life).Unix(), "jti": fmt.Sprintf("i-%d", a.jtiSeq.Add(1))}
	if scope != "" {
		c["scope"] = scope
	}
	return c
}

// inner mints this API's inner token (for sub alice unless told).
func (a *adv) inner(sub string) string {
	if sub == "" {
		sub = "alice"
	}
	c := a.innerClaims(advOrders, sub, "orders:read", 5*time.Minute)
	c["tenant"] = "acme"
	return a.minter.sign("at+jwt", c)
}

// outerClaims are the claims of an idp access token embedding m.
func (a *adv) outerClaims(m map[string]any) map[string]any {
	now := time.Now()
	return map[string]any{"iss": advIssuer, "sub": "alice", "client_id": "app",
		"jti": fmt.Sprintf("o-%d", a.jtiSeq.Add(1)), "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"scope": "orders:read billing:read", advClaim: m}
}

// outer mints a valid outer token with a fresh inner token; it returns both.
func (a *adv) outer() (outer, inner string) {
	inner = a.inner("")
	return a.rsa.sign("at+jwt", a.outerClaims(map[string]any{"orders": inner})), inner
}

// answer is a sidecar's answer.
type answer struct {
	status    int
	challenge string
	header    http.Header
	body      string
	errCode   string
}

func readAnswer(resp *http.Response) answer {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	r := answer{status: resp.StatusCode, challenge: resp.Header.Get("WWW-Authenticate"), header: resp.Header, body: string(b)}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil {
		r.errCode = e.Error
	}
	return r
}

// do sends req to the sidecar.
func (a *adv) do(t *testing.T, req *http.Request) answer {
	t.Helper()
	resp, err := a.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	return readAnswer(resp)
}

// get sends GET path with auth as the Authorization value (none if empty).
func (a *adv) get(t *testing.T, path, auth string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, a.url(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return a.do(t, req)
}

// raw sends bytes over one connection and returns everything read back
// until the sidecar closes it or 3 s pass.
func (a *adv) raw(t *testing.T, data string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", a.listen, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, data); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, _ = io.Copy(&buf, c)
	return buf.String()
}

// rawAnswers parses every HTTP response in out.
func rawAnswers(out string) []answer {
	br := bufio.NewReader(strings.NewReader(out))
	var as []answer
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return as
		}
		as = append(as, readAnswer(resp))
	}
}

// refused requires status, a Bearer challenge with code (400, 401, 403; none
// for other statuses) and that the upstream saw nothing.
func (a *adv) refused(t *testing.T, r answer, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status %d, want %d (body %s)", r.status, status, r.body)
	}
	switch {
	case code == "" && status == http.StatusUnauthorized:
		if r.challenge != `Bearer realm="orders"` {
			t.Errorf("WWW-Authenticate %q, want the realm only", r.challenge)
		}
	case code != "":
		if !strings.HasPrefix(r.challenge, `Bearer realm="orders", error="`+code+`"`) {
			t.Errorf("WWW-Authenticate %q, want a Bearer challenge with error=%q", r.challenge, code)
		}
		if r.errCode != code {
			t.Errorf("body error %q, want %q", r.errCode, code)
		}
	}
	if got := a.up.take(); len(got) != 0 {
		t.Errorf("upstream reached %d times (first: %s %s)", len(got), got[0].Method, got[0].RequestURI)
	}
}

// forwarded requires a 200 and that the upstream saw exactly one request
// whose only credential is inner, and no trace of the tokens in banned.
func (a *adv) forwarded(t *testing.T, r answer, inner string, banned ...string) upRequest {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200 (body %s)", r.status, r.body)
	}
	got := a.up.take()
	if len(got) != 1 {
		t.Fatalf("upstream received %d requests, want 1", len(got))
	}
	u := got[0]
	if auth := u.Header.Values("Authorization"); inner == "" && len(auth) != 0 || inner != "" && (len(auth) != 1 || auth[0] != "Bearer "+inner) {
		t.Errorf("upstream Authorization %q, want only the inner token", auth)
	}
	checkNoTrace(t, u, banned...)
	return u
}

// checkNoTrace requires that no header, trailer, URL or body of u holds any
// of tokens (nor their signature part).
func checkNoTrace(t *testing.T, u upRequest, tokens ...string) {
	t.Helper()
	for _, tok := range tokens {
		needles := []string{tok}
		if i := strings.LastIndexByte(tok, '.'); i > 0 && len(tok)-i > 16 {
			needles = append(needles, tok[i+1:])
		}
		for _, n := range needles {
			for _, h := range []http.Header{u.Header, u.Trailer} {
				for name, vs := range h {
					for _, v := range vs {
						if strings.Contains(v, n) {
							t.Errorf("upstream %s carries a client token", name)
						}
					}
				}
			}
			if strings.Contains(u.RequestURI, n) || bytes.Contains(u.Body, []byte(n)) {
				t.Errorf("upstream URL or body carries a client token")
			}
		}
	}
}

// healthy requires the process running and its admin /healthz answering.
func (a *adv) healthy(t *testing.T) {
	t.Helper()
	if done, err := a.p.exited(); done {
		t.Fatalf("sidecar exited: %s", exitText(err))
	}
	resp, err := a.client.Get("http://" + a.admin + "/healthz")
	if err != nil {
		t.Fatalf("admin /healthz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("admin /healthz: %d", resp.StatusCode)
	}
}

// TestAdversarialTokens sends every RFC 8725 attack class and the shapes of
// recent JWT CVEs to a real sidecar: each is refused with the right status
// and challenge, nothing reaches the upstream, the token is never logged,
// and the process stays healthy.
func TestAdversarialTokens(t *testing.T) {
	a := newAdv(t, advOptions{})
	outer, inner := a.outer()
	claims := func() map[string]any { _, in := a.outer(); return a.outerClaims(map[string]any{"orders": in}) }
	rsaHdr := `{"alg":"RS256","kid":"rsa-1","typ":"at+jwt"}`

	t.Run("baseline: a valid token is forwarded as its inner token only", func(t *testing.T) {
		a.forwarded(t, a.get(t, "/orders/1", "Bearer "+outer), inner, outer)
	})

	// An attacker key and the servers it would like the sidecar to visit.
	attacker := &advKey{kid: "rsa-1", alg: jose.RS256, priv: rsaKey(1)}
	evil := newKeyServer(t, attacker)
	pubDER, _ := x509.MarshalPKIXPublicKey(a.rsa.priv.Public())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	pkcs1PEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(a.rsa.priv.Public().(*rsa.PublicKey))})
	hs := func(secret []byte, header string, c map[string]any) string {
		in := b64url([]byte(header)) + "." + b64url([]byte(mustMarshal(c)))
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(in))
		return in + "." + b64url(m.Sum(nil))
	}
	unsigned := func(header string, c map[string]any, sig string) string {
		return b64url([]byte(header)) + "." + b64url([]byte(mustMarshal(c))) + "." + sig
	}
	cert := selfSigned(t, attacker)
	attackerJWK := mustMarshal(attacker.jwk())
	ecClaims := claims()
	zeroSig := b64url(make([]byte, 64))
	orderN := elliptic.P256().Params().N.Bytes()
	nSig := b64url(append(append([]byte{}, orderN...), orderN...))

	typed := func(edit func(c map[string]any)) string {
		c := claims()
		edit(c)
		return a.rsa.sign("at+jwt", c)
	}
	withInner := func(in string) string {
		return a.rsa.sign("at+jwt", a.outerClaims(map[string]any{"orders": in}))
	}
	billingInner := a.minter.sign("at+jwt", a.innerClaims(advBilling, "alice", "billing:read", 5*time.Minute))
	otherClient := a.innerClaims(advOrders, "alice", "orders:read", 5*time.Minute)
	otherClient["client_id"] = "other-app"
	expiredInner := a.innerClaims(advOrders, "alice", "orders:read", -time.Minute)
	expiredInner["iat"] = time.Now().Add(-time.Hour).Unix()
	bad := []struct {
		name  string
		token string
	}{
		// RFC 8725 2.1, 3.1: algorithm confusion and "none".
		{"HS256 with the RSA public key (PEM) as secret", hs(pubPEM, `{"alg":"HS256","kid":"rsa-1","typ":"at+jwt"}`, claims())},
		{"HS256 with the RSA public key (PKCS#1) as secret", hs(pkcs1PEM, `{"alg":"HS256","kid":"rsa-1","typ":"at+jwt"}`, claims())},
		{"HS256 with the JWK text as secret", hs([]byte(mustMarshal(a.rsa.jwk())), `{"alg":"HS256","kid":"rsa-1","typ":"at+jwt"}`, claims())},
		{"alg none", unsigned(`{"alg":"none","typ":"at+jwt"}`, claims(), "")},
		{"alg None", unsigned(`{"alg":"None","kid":"rsa-1","typ":"at+jwt"}`, claims(), "x")},
		{"alg NONE", unsigned(`{"alg":"NONE","kid":"rsa-1","typ":"at+jwt"}`, claims(), "AAAA")},
		{"alg nOnE with the real signature", func() string {
			p := strings.Split(outer, ".")
			return b64url([]byte(`{"alg":"nOnE","kid":"rsa-1","typ":"at+jwt"}`)) + "." + p[1] + "." + p[2]
		}()},
		{"alg PS256 relabel of an RS256 signature", func() string {
			p := strings.Split(outer, ".")
			return b64url([]byte(`{"alg":"PS256","kid":"rsa-1","typ":"at+jwt"}`)) + "." + p[1] + "." + p[2]
		}()},
		{"EdDSA with the minter's key claiming the idp", a.minter.signRaw(`{"alg":"EdDSA","kid":"m-1","typ":"at+jwt"}`, mustMarshal(claims()))},
		// Header-supplied keys and URLs (jwk, jku, x5u, x5c).
		{"jwk header with the attacker's key", attacker.signRaw(`{"alg":"RS256","typ":"at+jwt","jwk":`+attackerJWK+`}`, mustMarshal(claims()))},
		{"jwk header and the victim's kid", attacker.signRaw(`{"alg":"RS256","kid":"rsa-1","typ":"at+jwt","jwk":`+attackerJWK+`}`, mustMarshal(claims()))},
		{"jku to the attacker's key set", attacker.signRaw(`{"alg":"RS256","kid":"rsa-1","typ":"at+jwt","jku":"`+evil.url()+`"}`, mustMarshal(claims()))},
		{"x5u to the attacker", attacker.signRaw(`{"alg":"RS256","kid":"rsa-1","typ":"at+jwt","x5u":"`+evil.url()+`"}`, mustMarshal(claims()))},
		{"x5c with the attacker's certificate", attacker.signRaw(`{"alg":"RS256","typ":"at+jwt","x5c":["`+base64.StdEncoding.EncodeToString(cert)+`"]}`, mustMarshal(claims()))},
		// kid injection.
		{"kid path traversal", a.rsa.signRaw(`{"alg":"RS256","kid":"../../../../../dev/null","typ":"at+jwt"}`, mustMarshal(claims()))},
		{"kid path traversal, attacker-signed", hs([]byte{}, `{"alg":"HS256","kid":"../../../../../dev/null","typ":"at+jwt"}`, claims())},
		{"kid SQL injection", attacker.signRaw(`{"alg":"RS256","kid":"x' UNION SELECT 'rsa-1' --","typ":"at+jwt"}`, mustMarshal(claims()))},
		{"kid with NUL and newline", attacker.signRaw(`{"alg":"RS256","kid":"rsa-1\u0000\n","typ":"at+jwt"}`, mustMarshal(claims()))},
		{"kid of 8 KiB", attacker.signRaw(`{"alg":"RS256","kid":"`+strings.Repeat("k", 8<<10)+`","typ":"at+jwt"}`, mustMarshal(claims()))},
		{"kid not a string", a.rsa.signRaw(`{"alg":"RS256","kid":["rsa-1"],"typ":"at+jwt"}`, mustMarshal(claims()))},
		// Psychic signatures (CVE-2022-21449) and other degenerate ECDSA.
		{"ES256 r=s=0", unsigned(`{"alg":"ES256","kid":"ec-1","typ":"at+jwt"}`, ecClaims, zeroSig)},
		{"ES256 r=s=n", unsigned(`{"alg":"ES256","kid":"ec-1","typ":"at+jwt"}`, ecClaims, nSig)},
		{"ES256 empty-ish signature", unsigned(`{"alg":"ES256","kid":"ec-1","typ":"at+jwt"}`, ecClaims, "AA")},
		{"ES256 DER signature", unsigned(`{"alg":"ES256","kid":"ec-1","typ":"at+jwt"}`, ecClaims, b64url([]byte{0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00}))},
		// crit and b64 (RFC 7515 4.1.11, RFC 7797).
		{"crit with an unknown parameter", a.rsa.signRaw(`{"alg":"RS256","kid":"rsa-1","typ":"at+jwt","crit":["exp-policy"],"exp-policy":1}`, mustMarshal(claims()))},
		{"crit b64 false, encoded payload", a.rsa.signRaw(`{"alg":"RS256","kid":"rsa-1","typ":"at+jwt","crit":["b64"],"b64":false}`, mustMarshal(claims()))},
		{"crit empty", a.rsa.signRaw(`{"alg":"RS256","kid":"rsa-1","typ":"at+jwt","crit":[]}`, mustMarshal(claims()))},
		{"b64 false without crit, detached payload", func() string {
			h := b64url([]byte(`{"alg":"RS256","kid":"rsa-1","typ":"at+jwt","b64":false,"crit":["b64"]}`))
			return h + ".." + a.rsa.signInput(h+"."+mustMarshal(claims()))
		}()},
		// Duplicate JSON members (RFC 8725 3.1 allows parsers to differ).
		{"duplicate sub in the payload", a.rsa.signRaw(rsaHdr, strings.TrimSuffix(mustMarshal(claims()), "}")+`,"sub":"admin"}`)},
		{"duplicate alg in the header", a.rsa.signRaw(`{"alg":"RS256","kid":"rsa-1","typ":"at+jwt","alg":"none"}`, mustMarshal(claims()))},
		{"duplicate API in the embedded map", a.rsa.signRaw(rsaHdr, strings.TrimSuffix(mustMarshal(claims()), "}")+`,"embedded_tokens":{"orders":"`+inner+`","orders":"x.y.z"}}`)},
		{"duplicate exp in the inner token", withInner(a.minter.signRaw(`{"alg":"EdDSA","kid":"m-1","typ":"at+jwt"}`,
			strings.TrimSuffix(mustMarshal(a.innerClaims(advOrders, "alice", "orders:read", time.Minute)), "}")+`,"exp":9999999999}`))},
		// Oversized and many-dot tokens.
		{"token over max_token_bytes", a.rsa.signRaw(rsaHdr, mustMarshal(map[string]any{"pad": strings.Repeat("p", 17000)}))},
		{"four parts", outer + ".x"},
		{"many dots", strings.Repeat("a.", 5000) + "a"},
		{"dots only", strings.Repeat(".", 300)},
		{"JWE shape", "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d"},
		{"padded signature", outer + "=="},
		// Claim type confusion.
		{"exp as a string", typed(func(c map[string]any) { c["exp"] = strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10) })},
		{"exp as 1e400", a.rsa.signRaw(rsaHdr, strings.Replace(mustMarshal(claims()), `"exp":`, `"exp":1e400,"x":`, 1))},
		{"exp absent", typed(func(c map[string]any) { delete(c, "exp") })},
		{"aud as an object", typed(func(c map[string]any) { c["aud"] = map[string]any{"https://orders.adv.test": true} })},
		{"scope as a number", typed(func(c map[string]any) { c["scope"] = 42 })},
		{"scp as a string", typed(func(c map[string]any) { c["scp"] = "orders:read" })},
		{"sub as a number", typed(func(c map[string]any) { c["sub"] = 7 })},
		{"iss as an array", typed(func(c map[string]any) { c["iss"] = []string{advIssuer} })},
		{"embedded map as an array", typed(func(c map[string]any) { c[advClaim] = []string{inner} })},
		{"embedded token as an object", typed(func(c map[string]any) { c[advClaim] = map[string]any{"orders": map[string]any{"t": inner}} })},
		{"no scope claim (an ID token)", typed(func(c map[string]any) { delete(c, "scope") })},
		{"expired outer", typed(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() })},
		{"not yet valid", typed(func(c map[string]any) { c["nbf"] = time.Now().Add(time.Hour).Unix() })},
		{"issuer with a trailing slash", typed(func(c map[string]any) { c["iss"] = advIssuer + "/" })},
		{"typ JWT where at+jwt is required", a.rsa.signRaw(`{"alg":"RS256","kid":"rsa-1","typ":"JWT"}`, mustMarshal(claims()))},
		{"no typ", a.rsa.signRaw(`{"alg":"RS256","kid":"rsa-1"}`, mustMarshal(claims()))},
		// Cross-API and cross-subject inner tokens.
		{"billing's inner token presented at orders", billingInner},
		{"billing's inner token under orders in the map", withInner(billingInner)},
		{"an inner token of another subject", withInner(a.inner("mallory"))},
		{"an inner token of another client", withInner(a.minter.sign("at+jwt", otherClient))},
		{"an inner token signed by the idp key", withInner(a.rsa.sign("at+jwt", a.innerClaims(advOrders, "alice", "orders:read", time.Minute)))},
		{"an inner token with typ JWT", withInner(a.minter.sign("JWT", a.innerClaims(advOrders, "alice", "orders:read", time.Minute)))},
		{"a tampered inner token", withInner(flip(inner))},
		{"a tampered outer token", flip(outer)},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			r := a.get(t, "/orders/1", "Bearer "+tc.token)
			a.refused(t, r, http.StatusUnauthorized, "invalid_token")
			if len(tc.token) > 24 && strings.Contains(r.body, tc.token) {
				t.Error("the answer echoes the token")
			}
		})
	}

	t.Run("padding inside a token is not a b64token", func(t *testing.T) {
		a.refused(t, a.get(t, "/orders/1", "Bearer "+strings.Replace(outer, ".", "==.", 1)), http.StatusBadRequest, "invalid_request")
	})

	t.Run("b64 false with a raw JSON payload is not a b64token", func(t *testing.T) {
		h := b64url([]byte(`{"alg":"RS256","kid":"rsa-1","typ":"at+jwt","b64":false,"crit":["b64"]}`))
		p := mustMarshal(claims())
		tok := h + "." + p + "." + a.rsa.signInput(h+"."+p)
		req, _ := http.NewRequest(http.MethodGet, a.url("/orders/1"), nil)
		req.Header["Authorization"] = []string{"Bearer " + tok}
		a.refused(t, a.do(t, req), http.StatusBadRequest, "invalid_request")
	})

	t.Run("an expired inner token in a valid outer token asks to renew", func(t *testing.T) {
		r := a.get(t, "/orders/1", "Bearer "+withInner(a.minter.sign("at+jwt", expiredInner)))
		a.refused(t, r, http.StatusUnauthorized, "invalid_token")
		if !strings.Contains(r.challenge, "renew") {
			t.Errorf("challenge %q does not ask to renew", r.challenge)
		}
	})

	t.Run("header block over max_token_bytes + 8 KiB is 431", func(t *testing.T) {
		r := a.get(t, "/orders/1", "Bearer "+strings.Repeat("A", 40000))
		if r.status != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("status %d, want 431", r.status)
		}
		if got := a.up.take(); len(got) != 0 {
			t.Errorf("upstream reached %d times", len(got))
		}
	})

	t.Run("the key URLs in headers were never fetched", func(t *testing.T) {
		if n := evil.hits.Load(); n != 0 {
			t.Errorf("the attacker's server was fetched %d times", n)
		}
	})

	t.Run("a caller's minter token carrying ours is accepted (positive control)", func(t *testing.T) {
		gc := a.innerClaims(advGateway, "alice", "gateway:use", 5*time.Minute)
		gc[advClaim] = map[string]any{"orders": inner}
		gw := a.minter.sign("at+jwt", gc)
		a.forwarded(t, a.get(t, "/orders/1", "Bearer "+gw), inner, gw)
	})

	t.Run("this API's own inner token is accepted as it is (exposed)", func(t *testing.T) {
		a.forwarded(t, a.get(t, "/orders/1", "Bearer "+inner), inner)
	})

	t.Run("no token is logged", func(t *testing.T) {
		log := a.p.log()
		for _, tc := range bad {
			if i := strings.LastIndexByte(tc.token, '.'); i > 0 && len(tc.token)-i > 20 && strings.Contains(log, tc.token[i+1:]) {
				t.Errorf("%s: the log holds its signature", tc.name)
			}
		}
		if strings.Contains(log, inner[strings.LastIndexByte(inner, '.')+1:]) {
			t.Error("the log holds the inner token's signature")
		}
	})

	a.healthy(t)
	a.p.stop(t)
}

// selfSigned returns a DER certificate for k's public key.
func selfSigned(t *testing.T, k *advKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idp.adv.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.priv.Public(), k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestAdversarialProxy sends proxy-level attacks with a valid token:
// hop-by-hop header tricks, spoofed forwarding headers, request smuggling
// shapes over raw connections, tokens in the query string, several
// Authorization headers, encoded path separators, trailers and h2c.
func TestAdversarialProxy(t *testing.T) {
	a := newAdv(t, advOptions{})
	outer, inner := a.outer()
	req := func(method, path string, h ...string) *http.Request {
		r, err := http.NewRequest(method, a.url(path), nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Authorization", "Bearer "+outer)
		for i := 0; i+1 < len(h); i += 2 {
			r.Header.Add(h[i], h[i+1])
		}
		return r
	}

	t.Run("Connection: Authorization cannot remove the injected token", func(t *testing.T) {
		a.forwarded(t, a.do(t, req("GET", "/orders/1", "Connection", "Authorization")), inner, outer)
	})
	t.Run("Connection: X-Request-Id, X-Forwarded-For keeps both set by the sidecar", func(t *testing.T) {
		r := a.do(t, req("GET", "/orders/1", "Connection", "X-Request-Id, X-Forwarded-For, X-Real-IP",
			"X-Request-Id", "client-id-1", "X-Forwarded-For", "6.6.6.6", "X-Real-IP", "6.6.6.6"))
		u := a.forwarded(t, r, inner, outer)
		if got := u.Header.Get("X-Request-Id"); got != "client-id-1" {
			t.Errorf("upstream X-Request-Id %q, want the client's well-formed one", got)
		}
		if got := u.Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.1" {
			t.Errorf("upstream X-Forwarded-For %q, want 127.0.0.1 only", got)
		}
		if got := u.Header.Get("X-Real-Ip"); got != "127.0.0.1" {
			t.Errorf("upstream X-Real-IP %q", got)
		}
	})
	t.Run("spoofed forwarding and credential headers are replaced or removed", func(t *testing.T) {
		r := a.do(t, req("GET", "/orders/1", "Forwarded", "for=6.6.6.6;proto=https", "X-Forwarded-Host", "evil.test",
			"X-Forwarded-Proto", "https", "Proxy-Authorization", "Bearer "+outer, "X_Authenticated_User", "admin",
			"Cookie", "session=secret", "X-Request-Id", "bad id with spaces"))
		u := a.forwarded(t, r, inner, outer)
		for _, h := range []string{"Forwarded", "Proxy-Authorization", "X_authenticated_user", "Cookie"} {
			if v := u.Header.Values(h); len(v) != 0 {
				t.Errorf("upstream received %s: %q", h, v)
			}
		}
		for name := range u.Header {
			if strings.ContainsRune(name, '_') {
				t.Errorf("upstream received %s", name)
			}
		}
		if u.Header.Get("X-Forwarded-Host") != a.listen || u.Header.Get("X-Forwarded-Proto") != "http" {
			t.Errorf("upstream X-Forwarded-Host %q Proto %q", u.Header.Get("X-Forwarded-Host"), u.Header.Get("X-Forwarded-Proto"))
		}
		if id := u.Header.Get("X-Request-Id"); id == "" || id == "bad id with spaces" {
			t.Errorf("upstream X-Request-Id %q, want a new one", id)
		}
	})
	t.Run("token in the query string", func(t *testing.T) {
		for _, q := range []string{"access_token=" + outer, "ACCESS_TOKEN=" + outer, "access%5Ftoken=" + outer, "x=1&access_token=" + outer} {
			r, _ := http.NewRequest("GET", a.url("/orders/1?"+q), nil)
			a.refused(t, a.do(t, r), http.StatusBadRequest, "invalid_request")
			a.refused(t, a.do(t, req("GET", "/orders/1?"+q)), http.StatusBadRequest, "invalid_request")
		}
	})
	t.Run("several Authorization headers", func(t *testing.T) {
		a.refused(t, a.do(t, req("GET", "/orders/1", "Authorization", "Bearer "+outer)), http.StatusBadRequest, "invalid_request")
		a.refused(t, a.do(t, req("GET", "/orders/1", "Authorization", "Basic eDp5")), http.StatusBadRequest, "invalid_request")
	})
	t.Run("malformed Authorization values", func(t *testing.T) {
		for _, v := range []string{"Bearer", "Bearer ", "Bearer " + outer + " extra", "Bearer " + outer + ",Bearer x", "Bearer\t" + outer, "Bearer ===="} {
			r, _ := http.NewRequest("GET", a.url("/orders/1"), nil)
			r.Header["Authorization"] = []string{v}
			got := a.do(t, r)
			if got.status == http.StatusUnauthorized && got.errCode == "unauthorized" {
				a.refused(t, got, http.StatusUnauthorized, "")
				continue
			}
			a.refused(t, got, http.StatusBadRequest, "invalid_request")
		}
		r, _ := http.NewRequest("GET", a.url("/orders/1"), nil)
		r.Header.Set("Authorization", "Basic "+outer)
		a.refused(t, a.do(t, r), http.StatusUnauthorized, "")
		r, _ = http.NewRequest("GET", a.url("/orders/1"), nil)
		a.refused(t, a.do(t, r), http.StatusUnauthorized, "")
	})
	t.Run("encoded path separators and dot segments", func(t *testing.T) {
		for _, p := range []string{"/orders/%2e%2e/admin", "/orders%2F..%2Fadmin", "/orders/..%2fadmin", "/orders/../orders/admin",
			"//orders/1", "/orders/./1", "/orders/1/..", `/orders\..\admin`, "/orders/%5c..%5cadmin", "/orders;jsessionid=1",
			"/orders/1%00.json", "/orders/%2E/1", "/healthz/..", "/healthz%2F", "/healthz;"} {
			t.Run(p, func(t *testing.T) {
				out := a.raw(t, "GET "+p+" HTTP/1.1\r\nHost: orders\r\nAuthorization: Bearer "+outer+"\r\nConnection: close\r\n\r\n")
				as := rawAnswers(out)
				if len(as) != 1 {
					t.Fatalf("%d answers: %q", len(as), out)
				}
				a.refused(t, as[0], http.StatusBadRequest, "invalid_request")
			})
		}
	})
	t.Run("public path: forwarded without the token", func(t *testing.T) {
		a.forwarded(t, a.do(t, req("GET", "/healthz")), "", outer)
		a.forwarded(t, a.do(t, req("POST", "/healthz?x=1")), "", outer)
		a.refused(t, a.get(t, "/healthz/", ""), http.StatusUnauthorized, "")
		a.refused(t, a.get(t, "/HEALTHZ", ""), http.StatusUnauthorized, "")
	})
	t.Run("admin endpoints are not on the service listener", func(t *testing.T) {
		for _, p := range []string{"/metrics", "/readyz"} {
			a.refused(t, a.get(t, p, ""), http.StatusUnauthorized, "")
		}
	})
	t.Run("route scopes cannot be bypassed by method case or path tricks", func(t *testing.T) {
		a.refused(t, a.do(t, req("POST", "/orders/admin/x")), http.StatusForbidden, "insufficient_scope")
		a.refused(t, a.do(t, req("delete", "/orders/admin")), http.StatusForbidden, "insufficient_scope")
		out := a.raw(t, "POST /orders/admin%2Fx HTTP/1.1\r\nHost: o\r\nAuthorization: Bearer "+outer+"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		if as := rawAnswers(out); len(as) != 1 || as[0].status != http.StatusBadRequest {
			t.Errorf("encoded admin path: %q", out)
		}
		a.up.take()
	})
	t.Run("trailers cannot smuggle Authorization", func(t *testing.T) {
		body := "5\r\nhello\r\n0\r\nAuthorization: Bearer " + outer + "\r\nX-Request-Id: from-trailer\r\n\r\n"
		out := a.raw(t, "POST /orders/1 HTTP/1.1\r\nHost: o\r\nAuthorization: Bearer "+outer+"\r\nTransfer-Encoding: chunked\r\nTrailer: Authorization, X-Request-Id\r\nConnection: close\r\n\r\n"+body)
		as := rawAnswers(out)
		if len(as) != 1 {
			t.Fatalf("answers: %q", out)
		}
		u := a.forwarded(t, as[0], inner, outer)
		if v := u.Trailer.Values("Authorization"); len(v) != 0 {
			t.Errorf("upstream trailer Authorization: %d values", len(v))
		}
		if string(u.Body) != "hello" {
			t.Errorf("upstream body %q", u.Body)
		}
	})
	t.Run("h2c upgrade is not forwarded", func(t *testing.T) {
		u := a.forwarded(t, a.do(t, req("GET", "/orders/1", "Upgrade", "h2c", "HTTP2-Settings", "AAMAAABkAAQAoAAAAAIAAAAA",
			"Connection", "Upgrade, HTTP2-Settings")), inner, outer)
		if v := u.Header.Get("Upgrade"); v != "" {
			t.Errorf("upstream Upgrade %q", v)
		}
	})

	smuggle := []struct{ name, data string }{
		{"Content-Length and Transfer-Encoding", "POST /orders/1 HTTP/1.1\r\nHost: o\r\nAuthorization: Bearer " + outer +
			"\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n"},
		{"Transfer-Encoding and Content-Length", "POST /orders/1 HTTP/1.1\r\nHost: o\r\nAuthorization: Bearer " + outer +
			"\r\nTransfer-Encoding: chunked\r\nContent-Length: 60\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n"},
		{"duplicate Content-Length", "POST /orders/1 HTTP/1.1\r\nHost: o\r\nAuthorization: Bearer " + outer +
			"\r\nContent-Length: 0\r\nContent-Length: 44\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n"},
		{"Content-Length list", "POST /orders/1 HTTP/1.1\r\nHost: o\r\nAuthorization: Bearer " + outer +
			"\r\nContent-Length: 0, 44\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n"},
		{"obfuscated Transfer-Encoding", "POST /orders/1 HTTP/1.1\r\nHost: o\r\nAuthorization: Bearer " + outer +
			"\r\nTransfer-Encoding: xchunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n"},
		{"Transfer-Encoding twice", "POST /orders/1 HTTP/1.1\r\nHost: o\r\nAuthorization: Bearer " + outer +
			"\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n"},
		{"obs-fold Authorization", "GET /orders/1 HTTP/1.1\r\nHost: o\r\nX-Note: a\r\n Authorization: Bearer " + outer +
			"\r\nConnection: close\r\n\r\n"},
		{"space before colon", "GET /orders/1 HTTP/1.1\r\nHost: o\r\nAuthorization : Bearer " + outer + "\r\nConnection: close\r\n\r\n"},
		{"bare LF line endings", "GET /orders/1 HTTP/1.1\nHost: o\nAuthorization: Bearer " + outer + "\nConnection: close\n\n"},
		{"pipelined unauthenticated request", "GET /orders/1 HTTP/1.1\r\nHost: o\r\nAuthorization: Bearer " + outer +
			"\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n"},
		{"chunk size overflow", "POST /orders/1 HTTP/1.1\r\nHost: o\r\nAuthorization: Bearer " + outer +
			"\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff1\r\nx\r\n0\r\n\r\n"},
	}
	for _, tc := range smuggle {
		t.Run("smuggling: "+tc.name, func(t *testing.T) {
			out := a.raw(t, tc.data)
			as := rawAnswers(out)
			// A forwarding that failed (502) may be recorded upstream
			// after its answer.
			time.Sleep(200 * time.Millisecond)
			var codes []int
			for _, r := range as {
				codes = append(codes, r.status)
				if r.status >= 500 && r.status != http.StatusNotImplemented && r.status != http.StatusBadGateway {
					t.Errorf("answer %d", r.status)
				}
			}
			got := a.up.take()
			for _, u := range got {
				if strings.Contains(u.RequestURI, "smuggled") {
					t.Errorf("the smuggled request reached the upstream")
				}
				if auth := u.Header.Values("Authorization"); len(auth) != 1 || auth[0] != "Bearer "+inner {
					t.Errorf("upstream request %s without exactly the inner token", u.RequestURI)
				}
				checkNoTrace(t, u, outer)
			}
			for i, r := range as {
				if i > 0 && r.status == http.StatusOK {
					t.Errorf("answer %d to a smuggled request is 200", i)
				}
			}
			t.Logf("answers %v; upstream saw %d request(s)", codes, len(got))
		})
	}

	t.Run("a client stalling its headers does not block others (slowloris)", func(t *testing.T) {
		c, err := net.Dial("tcp", a.listen)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = io.WriteString(c, "GET /orders/1 HTTP/1.1\r\nHost: o\r\n")
		// The sidecar must keep serving others meanwhile.
		a.forwarded(t, a.do(t, req("GET", "/orders/2")), inner, outer)
	})

	a.healthy(t)
	a.p.stop(t)
}

// TestAdminListener checks that the admin endpoints live on their own
// listener only, and what happens when admin_listen is not set.
func TestAdminListener(t *testing.T) {
	t.Run("set: separate from the service listener, on loopback", func(t *testing.T) {
		a := newAdv(t, advOptions{})
		for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
			resp, err := a.client.Get("http://" + a.admin + p)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("admin %s: %d", p, resp.StatusCode)
			}
		}
		a.refused(t, a.get(t, "/metrics", ""), http.StatusUnauthorized, "")
		a.p.stop(t)
	})
	t.Run("unset: on loopback by default", func(t *testing.T) {
		probe, err := net.Listen("tcp", catalog.DefaultSidecarAdminListen)
		if err != nil {
			t.Skipf("%s is taken on this machine: %v", catalog.DefaultSidecarAdminListen, err)
		}
		probe.Close()
		a := newAdv(t, advOptions{NoAdmin: true})
		resp, err := a.client.Get("http://" + catalog.DefaultSidecarAdminListen + "/healthz")
		if err != nil {
			t.Fatalf("no admin listener on %s: %v", catalog.DefaultSidecarAdminListen, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("default admin /healthz: %d", resp.StatusCode)
		}
		a.refused(t, a.get(t, "/metrics", ""), http.StatusUnauthorized, "")
		a.p.stop(t)
	})
}

// TestAdversarialHook attacks a real `embedtoken hook`: unauthenticated
// callers, oversized and slow bodies, and requests that try to make it mint
// for an API, audience, scope or claim outside the catalog.
func TestAdversarialHook(t *testing.T) {
	st := newStack(t, stackOptions{})
	st.startHook(t)
	client := newClient()
	defer client.CloseIdleConnections()
	hydraBody, err := os.ReadFile(filepath.Join(repoRoot, "mint", "testdata", "hydra-refresh.json"))
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	var hydraReq map[string]any
	if err := json.Unmarshal(hydraBody, &hydraReq); err != nil {
		t.Fatal(err)
	}
	hydraReq["session"].(map[string]any)["id_token"].(map[string]any)["expires_at"] = map[string]any{"access_token": exp.UTC().Format(time.RFC3339Nano)}
	hydraBody = []byte(mustMarshal(hydraReq))
	post := func(path string, body []byte, h ...string) answer {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+st.hookAddr.private+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(h); i += 2 {
			req.Header.Add(h[i], h[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		return readAnswer(resp)
	}
	minted := func() float64 {
		return metricValue(t, client, "http://"+st.hookAddr.admin+"/metrics", "embedtoken_mint_tokens_total")
	}

	t.Run("unauthenticated callers get 401 and nothing is minted", func(t *testing.T) {
		before := minted()
		cases := [][]string{
			nil,
			{hookHeader, ""},
			{hookHeader, st.hookKey + "x"},
			{hookHeader, st.hookKey[:len(st.hookKey)-1]},
			{hookHeader, strings.ToUpper(st.hookKey)},
			{hookHeader, st.hookKey + " x"},
			{hookHeader, st.hookKey, hookHeader, st.hookKey},
			{"Authorization", "Bearer " + st.hookKey},
			{"X-Embedtoken-Key-Other", st.hookKey},
		}
		for _, h := range cases {
			for _, path := range []string{"/hooks/hydra", "/hooks/generic", "/hooks/unknown"} {
				if r := post(path, hydraBody, h...); r.status != http.StatusUnauthorized {
					t.Errorf("%s with %q: %d, want 401", path, h, r.status)
				}
			}
		}
		if r := post("/hooks/hydra?"+hookHeader+"="+st.hookKey, hydraBody); r.status != http.StatusUnauthorized {
			t.Errorf("key in the query: %d", r.status)
		}
		if n := minted(); n != before {
			t.Errorf("minted %v tokens for unauthenticated callers", n-before)
		}
	})

	t.Run("the public listener serves no hook", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+st.hookAddr.public+"/hooks/hydra", bytes.NewReader(hydraBody))
		req.Header.Set(hookHeader, st.hookKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("the public listener minted")
		}
	})

	t.Run("request bodies are bounded", func(t *testing.T) {
		big := append([]byte(`{"pad":"`), bytes.Repeat([]byte("a"), 2<<20)...)
		big = append(big, `"}`...)
		r := post("/hooks/hydra", big, hookHeader, st.hookKey)
		if r.status != http.StatusForbidden {
			t.Errorf("2 MiB body: %d, want 403 (Hydra denies the token)", r.status)
		}
		// A body that never ends is cut at hook.timeout.
		c, err := net.Dial("tcp", st.hookAddr.private)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		_, _ = fmt.Fprintf(c, "POST /hooks/hydra HTTP/1.1\r\nHost: h\r\n%s: %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", hookHeader, st.hookKey)
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		took := time.Since(start)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 400 {
				t.Errorf("slow body: %d", resp.StatusCode)
			}
		}
		if took > 5*time.Second {
			t.Errorf("slow body held for %s, want about hook.timeout (2s)", took)
		}
		t.Logf("slow body: answered after %s (err %v)", took.Round(time.Millisecond), err)
	})

	t.Run("cannot mint outside the catalog", func(t *testing.T) {
		keys := fetchJWKS(t, client, st.jwksURL())
		generic := fmt.Sprintf(`{"sub":"alice","client_id":"c","scope":"orders:read admin:all billing:charge evil:write","audience":["https://orders.internal","https://evil.test"],"claims":{"aud":"https://evil.test","iss":"https://evil.test","scope":"admin:all","client_id":"other","embedded_tokens":{"evil":"a.b.c"},"tenant":"acme","email":"a@x","role":"admin"},"exp":%d}`, exp.Unix())
		r := post("/hooks/generic", []byte(generic), hookHeader, st.hookKey)
		if r.status == http.StatusOK {
			var ans struct {
				Tokens map[string]string `json:"tokens"`
			}
			if err := json.Unmarshal([]byte(r.body), &ans); err != nil {
				t.Fatal(err)
			}
			checkConfined(t, keys, ans.Tokens, []string{"orders:read", "admin:all", "billing:charge", "evil:write"})
		} else if r.status != http.StatusBadRequest {
			t.Errorf("generic: %d %s", r.status, r.body)
		} else {
			t.Logf("generic refused a request with reserved claims: %s", r.body)
		}

		var hreq map[string]any
		_ = json.Unmarshal(hydraBody, &hreq)
		req := hreq["request"].(map[string]any)
		req["granted_scopes"] = []string{"orders:read", "admin:all", "evil:write", "profile:read"}
		req["granted_audience"] = []string{"https://evil.test"}
		hreq["session"].(map[string]any)["extra"].(map[string]any)["embedded_tokens"] = map[string]any{"evil": "a.b.c", "orders": "x.y.z"}
		r = post("/hooks/hydra", []byte(mustMarshal(hreq)), hookHeader, st.hookKey)
		if r.status != http.StatusOK {
			t.Fatalf("hydra: %d %s", r.status, r.body)
		}
		var ans struct {
			Session struct {
				AccessToken map[string]json.RawMessage `json:"access_token"`
			} `json:"session"`
		}
		if err := json.Unmarshal([]byte(r.body), &ans); err != nil {
			t.Fatal(err)
		}
		var m map[string]string
		if err := json.Unmarshal(ans.Session.AccessToken[minterClaim], &m); err != nil {
			t.Fatal(err)
		}
		if _, ok := m["evil"]; ok {
			t.Error("the stale map's entry survived")
		}
		checkConfined(t, keys, m, []string{"orders:read", "admin:all", "evil:write", "profile:read"})
	})

	// encoding/json fills a field from any case variant of its name, the
	// last one winning: the hook refuses them like duplicates (issue 15).
	t.Run("case-variant members mint nothing", func(t *testing.T) {
		before := minted()
		body := string(hydraBody)
		for _, bad := range []string{
			strings.Replace(body, `"subject":`, `"subject":"alice","SUBJECT":`, 1),
			strings.Replace(body, `"requested_scopes":`, `"CLIENT_ID":"evil-client","requested_scopes":`, 1),
			strings.Replace(body, `"granted_scopes":`, `"Granted_Scopes":["orders:read","orders:write"],"granted_scopes":`, 1),
			strings.Replace(body, `"subject":`, `"\u017fubject":`, 1),
		} {
			if bad == body {
				t.Fatal("the fixture changed: no replacement")
			}
			if r := post("/hooks/hydra", []byte(bad), hookHeader, st.hookKey); r.status != http.StatusForbidden {
				t.Errorf("hydra: %d %s, want 403", r.status, r.body)
			}
		}
		generic := fmt.Sprintf(`{"sub":"alice","SUB":"admin","client_id":"c","exp":%d}`, exp.Unix())
		if r := post("/hooks/generic", []byte(generic), hookHeader, st.hookKey); r.status != http.StatusBadRequest {
			t.Errorf("generic: %d %s, want 400", r.status, r.body)
		}
		if n := minted(); n != before {
			t.Errorf("minted %v tokens", n-before)
		}
	})

	if done, err := st.hook.exited(); done {
		t.Fatalf("hook exited: %s", exitText(err))
	}
	st.stopAll(t)
}

// checkConfined verifies each token of a minted map (and those nested in
// it) against the minter's keys: a shipped API's audience, scope within
// granted ∩ the API's scopes, only its declared claims.
func checkConfined(t *testing.T, keys jose.JSONWebKeySet, m map[string]string, granted []string) {
	t.Helper()
	for api, tok := range m {
		spec, ok := shippedAPIs[api]
		if !ok {
			t.Errorf("minted for %q, not in the catalog", api)
			continue
		}
		j := verifyJWT(t, tok, keys, jose.EdDSA, jose.ES256, jose.RS256, jose.PS256)
		if aud, _ := j.claims["aud"].(string); aud != spec.aud || j.str("iss") != minterIssuer {
			t.Errorf("%s: aud %v iss %q", api, j.claims["aud"], j.str("iss"))
		}
		for _, s := range strings.Fields(j.str("scope")) {
			if !contains(spec.scopes, s) || !contains(granted, s) {
				t.Errorf("%s: scope %q outside granted ∩ the API's scopes", api, s)
			}
		}
		for k := range j.claims {
			if !contains(registeredInner, k) && !contains(spec.claims, k) && k != minterClaim {
				t.Errorf("%s: undeclared claim %q", api, k)
			}
		}
		if nested := j.embedded(minterClaim); nested != nil {
			for callee := range nested {
				if !contains(spec.calls, callee) {
					t.Errorf("%s nests %q, not in its calls", api, callee)
				}
			}
			checkConfined(t, keys, nested, granted)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// metricValue sums the samples of a Prometheus text metric family (name
// and name{...} lines) at url.
func metricValue(t *testing.T, client *http.Client, url, name string) float64 {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// contextWithTimeout is context.WithTimeout on the background context.
func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
