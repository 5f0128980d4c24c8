package cmd

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/embedtoken/embedtoken/catalog"
	"github.com/embedtoken/embedtoken/mint"
	"github.com/embedtoken/embedtoken/unwrap"
)

// The demo's subject: granted everything of the shipped example except
// profile:read, so that one API answers 403.
const (
	demoSub      = "alice"
	demoClient   = "demo-app"
	demoIssuer   = "https://dev-issuer.embedtoken.internal"
	demoTrust    = "dev"
	demoHeaderID = "X-Embedtoken-Demo-Trace"
)

var demoScopes = []string{"orders:read", "orders:write", "billing:charge", "ledger:append", "inventory:read"}

var demoClaims = map[string]any{"email": "alice@example.com", "tenant": "acme", "name": "Alice Example"}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", "demo [--config hcl/] [--serve] [--log-level LEVEL]", stderr)
	dir := fs.String("config", "hcl", "the shipped example folder (its sidecars/ subfolder holds one file per API)")
	serveFlag := fs.Bool("serve", false, "keep the chain running and print curl commands to try")
	logLevel := fs.String("log-level", "", "also print the components' JSON logs at this level to stderr")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	log := zap.NewNop()
	if *logLevel != "" {
		l, err := newLogger(stderr, *logLevel)
		if err != nil {
			return err
		}
		log = l
	}
	d, err := startDemo(ctx, *dir, log, stderr)
	if err != nil {
		return err
	}
	defer d.close()
	if err := d.tour(ctx, stdout); err != nil {
		return err
	}
	if !*serveFlag {
		return nil
	}
	return d.serveForever(ctx, stdout)
}

// demo is the whole chain, in this process, on loopback: the hook (minter
// and JWKS), one sidecar and one small service per API.
type demo struct {
	cat      *catalog.Catalog
	tmp      string
	issuer   *mint.DevIssuer
	hookURL  string // private listener
	apiKey   string
	sidecars map[string]string // API name -> sidecar base URL
	servers  []*http.Server
	closers  []func()
}

func (d *demo) close() {
	for _, c := range d.closers {
		c()
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range d.servers {
		_ = s.Shutdown(sctx)
	}
	if d.tmp != "" {
		os.RemoveAll(d.tmp)
	}
}

// listenLoopback binds a free port on 127.0.0.1 and serves h on it.
func (d *demo) listenLoopback(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	d.servers = append(d.servers, srv)
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}

func startDemo(ctx context.Context, dir string, log *zap.Logger, stderr io.Writer) (*demo, error) {
	base, err := loadCatalog([]string{dir}, catalog.KeysSkip, stderr)
	if err != nil {
		return nil, err
	}
	d := &demo{sidecars: map[string]string{}}
	ok := false
	defer func() {
		if !ok {
			d.close()
		}
	}()
	if d.tmp, err = os.MkdirTemp("", "embedtoken-demo-"); err != nil {
		return nil, err
	}

	// Throwaway keys: the minter's, and the development issuer's.
	minterKey := base.Minter.Key(base.Minter.ActiveKey)
	if minterKey == nil {
		return nil, errors.New("demo: the example's minter has no active signing key")
	}
	mk, err := catalog.GenerateKey(string(minterKey.Algorithm), 0)
	if err != nil {
		return nil, err
	}
	_, issuerJWKS, err := catalog.WriteKey(filepath.Join(d.tmp, "issuer"), "dev-1", "RS256", 0)
	if err != nil {
		return nil, err
	}
	if d.issuer, err = mint.LoadDevIssuer(filepath.Join(d.tmp, "issuer", "dev-1.key.pem"), mint.DevIssuerOptions{Issuer: demoIssuer}); err != nil {
		return nil, err
	}
	d.apiKey = randomHex(16)

	// The hook: its public listener serves the minter's JWKS to the sidecars.
	var current *mint.Minter
	cur := func() *mint.Minter { return current }
	publicMux := mint.NewPublicMux(cur, &mint.HandlerOptions{Logger: log})
	publicURL, err := d.listenLoopback(publicMux)
	if err != nil {
		return nil, err
	}
	d.cat = demoCatalog(base, mk, minterKey, publicURL+mint.JWKSPath, issuerJWKS, d.apiKey)
	if current, err = mint.New(d.cat, &mint.Options{Logger: log.Named("mint")}); err != nil {
		return nil, err
	}
	if d.hookURL, err = d.listenLoopback(mint.NewHookHandler(cur, &mint.HandlerOptions{Logger: log})); err != nil {
		return nil, err
	}

	// One service and one sidecar per API. Services call their callees
	// through the callees' sidecars, so bind every sidecar first.
	lns := map[string]net.Listener{}
	for _, a := range d.cat.APIs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns[a.Name] = ln
		d.sidecars[a.Name] = "http://" + ln.Addr().String()
	}
	for _, a := range d.cat.APIs {
		svcURL, err := d.listenLoopback(d.service(a))
		if err != nil {
			return nil, err
		}
		sc, err := d.sidecarCatalog(dir, a, svcURL, stderr)
		if err != nil {
			return nil, err
		}
		s, err := unwrap.New(sc, &unwrap.Options{Logger: log.Named(a.Name)})
		if err != nil {
			return nil, fmt.Errorf("sidecar %s: %w", a.Name, err)
		}
		s.Start(ctx)
		d.closers = append(d.closers, s.Close)
		srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: s.MaxHeaderBytes()}
		d.servers = append(d.servers, srv)
		go func(ln net.Listener) { _ = srv.Serve(ln) }(lns[a.Name])
		if err := waitReady(ctx, s.Ready); err != nil {
			return nil, fmt.Errorf("sidecar %s: %w", a.Name, err)
		}
	}
	ok = true
	return d, nil
}

// demoCatalog derives the demo's configuration from the shipped one: the
// throwaway minter key, the hook's loopback JWKS, the development issuer's
// key file, and no Hydra trust (no Hydra runs here). The shipped catalog
// itself is not modified.
func demoCatalog(base *catalog.Catalog, key crypto.Signer, shipped *catalog.SigningKey, jwksURL, issuerJWKS, apiKey string) *catalog.Catalog {
	c := *base
	m := *base.Minter
	m.JWKSURL, m.JWKSFile = jwksURL, ""
	sk := *shipped
	sk.Private = key
	sk.Public = catalog.PublicJWK(sk.ID, sk.Algorithm, sk.Private)
	sk.PrivateKeyFile = ""
	m.SigningKeys = []*catalog.SigningKey{&sk}
	m.ActiveKey = sk.ID
	c.Minter = &m
	c.Trusts = nil
	for _, t := range base.Trusts {
		if t.Name == demoTrust {
			tc := *t
			tc.JWKSFile = issuerJWKS
			c.Trusts = append(c.Trusts, &tc)
		}
	}
	h := catalog.Hook{Listen: "127.0.0.1:0", APIKeyHeader: catalog.DefaultAPIKeyHeader, APIKey: catalog.NewSecret(apiKey), Generic: true, Timeout: catalog.DefaultHookTimeout}
	if base.Hook != nil {
		h.APIKeyHeader = base.Hook.APIKeyHeader
		h.Timeout = base.Hook.Timeout
	}
	c.Hook = &h
	c.Sidecar = nil
	return &c
}

// sidecarCatalog is the demo catalog with the shipped sidecar block of api
// (hcl/sidecars/<api>.hcl), listening where the demo bound it and
// forwarding to the demo's service.
func (d *demo) sidecarCatalog(dir string, a *catalog.API, upstream string, stderr io.Writer) (*catalog.Catalog, error) {
	sc := catalog.Sidecar{
		API: a.Name, Leeway: catalog.DefaultLeeway, MaxTokenBytes: catalog.DefaultMaxTokenBytes,
		CacheEntries: catalog.DefaultCacheEntries, UpstreamTimeout: 5 * time.Second, ShutdownTimeout: time.Second,
	}
	file := filepath.Join(dir, "sidecars", a.Name+".hcl")
	if _, err := os.Stat(file); err == nil {
		shipped, err := loadCatalog([]string{dir, file}, catalog.KeysSkip, stderr)
		if err != nil {
			return nil, err
		}
		sc = *shipped.Sidecar
	}
	sc.Listen = strings.TrimPrefix(d.sidecars[a.Name], "http://")
	sc.Upstream = upstream
	sc.AdminListen = ""
	sc.TLS = nil
	c := *d.cat
	c.Sidecar = &sc
	return &c, nil
}

// hop is what one service received, as it reports it to its caller.
type hop struct {
	API           string         `json:"api"`
	Audience      string         `json:"aud"`
	Scope         string         `json:"scope,omitempty"`
	Claims        map[string]any `json:"claims,omitempty"`
	LifetimeS     int64          `json:"lifetime_s"`
	Bytes         int            `json:"bytes"`
	Nested        []string       `json:"nested,omitempty"`
	SawOuter      bool           `json:"saw_outer"`
	SawOtherToken bool           `json:"saw_other_token"`
	Calls         []hopCall      `json:"calls,omitempty"`
}

type hopCall struct {
	Status int  `json:"status"`
	Hop    *hop `json:"hop,omitempty"`
}

// service is the small service behind api's sidecar: it reports the token
// it received and calls each API of its calls through that API's sidecar,
// forwarding its own token, as a real service would.
func (d *demo) service(a *catalog.API) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		claims := decodeClaims(tok)
		h := &hop{API: a.Name, Bytes: len(tok), Claims: map[string]any{}}
		h.Audience, _ = claims["aud"].(string)
		h.Scope, _ = claims["scope"].(string)
		if exp, ok := claims["exp"].(float64); ok {
			if iat, ok := claims["iat"].(float64); ok {
				h.LifetimeS = int64(exp - iat)
			}
		}
		for _, c := range a.Claims {
			if v, ok := claims[c]; ok {
				h.Claims[c] = v
			}
		}
		if m, ok := claims[d.cat.Minter.Claim].(map[string]any); ok {
			for k := range m {
				h.Nested = append(h.Nested, k)
			}
			sort.Strings(h.Nested)
		}
		// The outer token's marker: only the development issuer's tokens
		// carry its iss. Any other bearer than this API's own token counts.
		h.SawOuter = claims["iss"] == demoIssuer || strings.Contains(r.URL.RawQuery, "access_token")
		h.SawOtherToken = h.Audience != a.Audience
		for _, callee := range a.Calls {
			req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, d.sidecars[callee]+"/"+callee, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			call := hopCall{}
			if resp, err := http.DefaultClient.Do(req); err == nil {
				call.Status = resp.StatusCode
				var sub hop
				if json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&sub) == nil && resp.StatusCode == http.StatusOK {
					call.Hop = &sub
				}
				resp.Body.Close()
			}
			h.Calls = append(h.Calls, call)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(h)
	})
}

// decodeClaims decodes a JWS payload without verifying it: the services of
// the demo only display what they got (their sidecar verified it).
func decodeClaims(tok string) map[string]any {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return map[string]any{}
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return map[string]any{}
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return map[string]any{}
	}
	return m
}

// outerToken asks the hook for the embedded map over HTTP, as an issuer
// would (POST /hooks/generic with the API key), then signs the outer token
// as the development issuer.
func (d *demo) outerToken(ctx context.Context) (string, int, error) {
	exp := d.issuer.Exp()
	body, _ := json.Marshal(map[string]any{
		"sub": demoSub, "client_id": demoClient, "scope": strings.Join(demoScopes, " "), "claims": demoClaims, "exp": exp.Unix(),
	})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.hookURL+"/hooks/generic", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(d.cat.Hook.APIKeyHeader, d.apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("hook: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		Claim  string            `json:"claim"`
		Tokens map[string]string `json:"tokens"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&out) != nil {
		return "", 0, fmt.Errorf("hook answered %s", resp.Status)
	}
	sub := mint.Subject{Sub: demoSub, ClientID: demoClient, Scopes: demoScopes, Claims: demoClaims, Exp: exp}
	tok, err := d.issuer.Sign(sub, mint.Result{Claim: out.Claim, Tokens: out.Tokens})
	return tok, len(out.Tokens), err
}

// call sends one request with tok to api's sidecar.
func (d *demo) call(ctx context.Context, api, path, tok string) (*http.Response, []byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.sidecars[api]+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, b, err
}

// tour runs the demonstration and checks what it shows; any surprise is an
// error (exit 1).
func (d *demo) tour(ctx context.Context, w io.Writer) error {
	tok, n, err := d.outerToken(ctx)
	if err != nil {
		return err
	}
	outer := decodeClaims(tok)
	fmt.Fprintf(w, "embedtoken demo: the shipped example on loopback (throwaway keys; development issuer %s)\n\n", demoIssuer)
	fmt.Fprintf(w, "1. The client gets an outer access token: sub=%s client_id=%s scope=%q\n", demoSub, demoClient, outer["scope"])
	fmt.Fprintf(w, "   %d bytes, with %d embedded token(s) under %q; the hook minted them, the issuer signed the outer token.\n\n", len(tok), n, d.cat.Minter.Claim)

	entry := d.cat.Roots()[0].Name
	for _, r := range d.cat.Roots() {
		if r.Name == "orders" {
			entry = r.Name
		}
	}
	fmt.Fprintf(w, "2. GET %s/%s with the outer token: each hop receives only its own narrowed token\n", d.sidecars[entry], entry)
	resp, body, err := d.call(ctx, entry, "/"+entry, tok)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("demo: %s answered %s: %s", entry, resp.Status, body)
	}
	var root hop
	if err := json.Unmarshal(body, &root); err != nil {
		return err
	}
	var problems []string
	printHop(w, &root, "   ", d.cat, &problems)
	if len(problems) > 0 {
		return fmt.Errorf("demo: %s", strings.Join(problems, "; "))
	}
	fmt.Fprintf(w, "   No service ever received the outer token (%d bytes) or another service's token.\n\n", len(tok))

	fmt.Fprintln(w, "3. Requests that are refused")
	tampered := tamper(tok)
	resp, body, err = d.call(ctx, entry, "/"+entry, tampered)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "   a tampered outer token at %s: %s\n      WWW-Authenticate: %s\n      %s\n", entry, resp.Status, resp.Header.Get("WWW-Authenticate"), strings.TrimSpace(string(body)))
	if resp.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("demo: a tampered token got %s, want 401", resp.Status)
	}
	for _, r := range d.cat.Roots() {
		granted := false
		for _, s := range r.Scopes {
			for _, g := range demoScopes {
				granted = granted || s == g
			}
		}
		if granted || len(r.Scopes) == 0 {
			continue
		}
		resp, body, err = d.call(ctx, r.Name, "/"+r.Name, tok)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "   %s, whose scopes (%s) were not granted: %s\n      WWW-Authenticate: %s\n      %s\n", r.Name, strings.Join(r.Scopes, " "), resp.Status, resp.Header.Get("WWW-Authenticate"), strings.TrimSpace(string(body)))
		if resp.StatusCode != http.StatusForbidden {
			return fmt.Errorf("demo: an ungranted API got %s, want 403", resp.Status)
		}
	}
	fmt.Fprintln(w, "\nOK")
	return nil
}

// printHop prints one hop and its calls, collecting what breaks the
// promise of the pattern.
func printHop(w io.Writer, h *hop, indent string, cat *catalog.Catalog, problems *[]string) {
	api := cat.API(h.API)
	claims := make([]string, 0, len(h.Claims))
	for k, v := range h.Claims {
		claims = append(claims, fmt.Sprintf("%s=%v", k, v))
	}
	sort.Strings(claims)
	nested := "none"
	if len(h.Nested) > 0 {
		nested = "[" + strings.Join(h.Nested, ", ") + "]"
	}
	fmt.Fprintf(w, "%s%s received a %d-byte token: aud=%s scope=%q claims={%s} lifetime=%ds nested=%s\n",
		indent, h.API, h.Bytes, h.Audience, h.Scope, strings.Join(claims, " "), h.LifetimeS, nested)
	if h.SawOuter || h.SawOtherToken || h.Audience != api.Audience {
		*problems = append(*problems, h.API+" received a token that is not its own")
	}
	for _, s := range strings.Fields(h.Scope) {
		if !api.HasScope(s) {
			*problems = append(*problems, fmt.Sprintf("%s received the scope %s", h.API, s))
		}
	}
	if h.LifetimeS > int64(api.Lifetime.Seconds()) {
		*problems = append(*problems, h.API+"'s token outlives its declared lifetime")
	}
	for i, c := range h.Calls {
		callee := api.Calls[i]
		branch, next := "├─ ", "│  "
		if i == len(h.Calls)-1 {
			branch, next = "└─ ", "   "
		}
		if c.Hop == nil {
			fmt.Fprintf(w, "%s%s%s answered %d\n", indent, branch, callee, c.Status)
			*problems = append(*problems, fmt.Sprintf("%s -> %s answered %d", h.API, callee, c.Status))
			continue
		}
		fmt.Fprintf(w, "%s%scalls %s through its sidecar, forwarding its own token:\n", indent, branch, callee)
		printHop(w, c.Hop, indent+next, cat, problems)
	}
}

// tamper flips one character of the signature.
func tamper(tok string) string {
	b := []byte(tok)
	i := len(b) - 5
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func (d *demo) serveForever(ctx context.Context, w io.Writer) error {
	tok, _, err := d.outerToken(ctx)
	if err != nil {
		return err
	}
	hdr := filepath.Join(d.tmp, "authorization.header")
	if err := os.WriteFile(hdr, []byte("Authorization: Bearer "+tok+"\n"), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nServing until Ctrl-C. A fresh outer token (valid for an hour) is in %s, so it stays out of your shell history:\n", hdr)
	names := make([]string, 0, len(d.sidecars))
	for n := range d.sidecars {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  curl -s -H @%s %s/%s\n", hdr, d.sidecars[n], n)
	}
	fmt.Fprintf(w, "  curl -s -i %s/orders            # no token: 401 with a Bearer challenge\n", d.sidecars["orders"])
	fmt.Fprintf(w, "  embedtoken inspect < <(cut -d' ' -f3 %s)   # the tree of embedded tokens\n", hdr)
	<-ctx.Done()
	return nil
}

func waitReady(ctx context.Context, ready func() bool) error {
	deadline := time.Now().Add(10 * time.Second)
	for !ready() {
		if time.Now().After(deadline) {
			return errors.New("key sets not loaded within 10s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
