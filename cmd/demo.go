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
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/embedtoken/embedtoken/catalog"
	"github.com/embedtoken/embedtoken/mint"
)

// The demo's subject: granted everything of the shipped example except
// profile:read, so that one API answers 403.
const (
	demoSub    = "alice"
	demoClient = "demo-app"
	demoIssuer = "https://dev-issuer.embedtoken.internal"
	demoTrust  = "dev"
	// The exchange demo: a sidecar of this API holds an exchange block and
	// authenticates as this exchange client.
	demoExchangeAPI    = "profile"
	demoExchangeClient = "profile-sidecar"
	// demoExchangeKey names the second sidecar of demoExchangeAPI, the one
	// with the exchange block.
	demoExchangeKey = demoExchangeAPI + "+exchange"
	// demoFirstHopClient is the exchange client of the other first hops
	// (exposed APIs that call others): their sidecars refresh the chain
	// when a nested token expires, so that the demo's token keeps working
	// for its whole hour (README, Lifetimes).
	demoFirstHopClient = "first-hop-sidecars"
	// Opaque (phantom) tokens of the demo's introspection endpoint.
	demoOpaquePrefix = "demo_at_"
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
	sidecars map[string]string // API name (or demoExchangeKey) -> sidecar base URL
	servers  []*http.Server
	closers  []func()

	opaque *opaqueIssuer
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
	if _, err := os.Stat(dir); err != nil {
		return nil, &usageError{msg: fmt.Sprintf("the example folder %s is not here", dir),
			hint: "run the demo from the repository root (go run ./cmd/embedtoken demo), or pass --config path/to/hcl"}
	}
	base, err := loadCatalogDiags([]string{dir}, catalog.KeysSkip, demoRuns, stderr, true) // warnings are check's
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
	exchangeSecret := randomHex(16)

	// The development issuer's opaque tokens and their introspection
	// endpoint (RFC 7662): phantom tokens.
	d.opaque = &opaqueIssuer{tokens: map[string]map[string]any{}}
	introspectURL, err := d.listenLoopback(d.opaque)
	if err != nil {
		return nil, err
	}

	// The hook: its public listener serves the minter's JWKS to the sidecars
	// and the token exchange endpoint.
	var current atomic.Pointer[mint.Minter]
	cur := current.Load
	publicURL, err := d.listenLoopback(publicHandler(cur, &mint.HandlerOptions{Logger: log}))
	if err != nil {
		return nil, err
	}
	d.cat = demoCatalog(base, mk, minterKey, publicURL+mint.JWKSPath, issuerJWKS, d.apiKey, introspectURL, exchangeSecret)
	subjects, err := newSubjectVerifier(d.cat, log, nil, nil)
	if err != nil {
		return nil, err
	}
	subjects.Start()
	d.closers = append(d.closers, subjects.Close)
	m, err := mint.New(d.cat, &mint.Options{Logger: log.Named("mint"), Subjects: subjects})
	if err != nil {
		return nil, err
	}
	current.Store(m)
	if d.hookURL, err = d.listenLoopback(mint.NewHookHandler(cur, &mint.HandlerOptions{Logger: log})); err != nil {
		return nil, err
	}

	// One service and one sidecar per API. Services call their callees
	// through the callees' sidecars, so bind every sidecar first.
	lns := map[string]net.Listener{}
	keys := []string{}
	for _, a := range d.cat.APIs {
		keys = append(keys, a.Name)
	}
	if d.cat.API(demoExchangeAPI) != nil {
		keys = append(keys, demoExchangeKey)
	}
	for _, k := range keys {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns[k] = ln
		d.sidecars[k] = "http://" + ln.Addr().String()
	}
	svcs := map[string]string{}
	for _, a := range d.cat.APIs {
		if svcs[a.Name], err = d.listenLoopback(d.service(a)); err != nil {
			return nil, err
		}
	}
	for _, k := range keys {
		name, withExchange := strings.CutSuffix(k, "+exchange")
		sc, err := d.sidecarCatalog(dir, d.cat.API(name), svcs[name], stderr)
		if err != nil {
			return nil, err
		}
		if withExchange {
			sc.Exchange = &catalog.Exchange{TokenURL: publicURL + mint.TokenEndpointPath, ClientID: demoExchangeClient, Secret: catalog.NewSecret(exchangeSecret)}
		} else if demoFirstHop(d.cat.API(name)) {
			sc.Exchange = &catalog.Exchange{TokenURL: publicURL + mint.TokenEndpointPath, ClientID: demoFirstHopClient, Secret: catalog.NewSecret(exchangeSecret)}
		}
		s, err := newSidecar(sc, log.Named(k), nil, nil)
		if err != nil {
			return nil, fmt.Errorf("sidecar %s: %w", k, err)
		}
		s.Start(ctx)
		d.closers = append(d.closers, s.Close)
		srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: s.ListenerMaxHeaderBytes()}
		d.servers = append(d.servers, srv)
		go func(ln net.Listener) { _ = srv.Serve(ln) }(lns[k])
		if err := waitReady(ctx, s.Ready); err != nil {
			return nil, fmt.Errorf("sidecar %s: %w", k, err)
		}
	}
	ok = true
	return d, nil
}

// demoCatalog derives the demo's configuration from the shipped one: the
// throwaway minter key, the hook's loopback JWKS, the development issuer's
// key file, and no Hydra trust (no Hydra runs here). The shipped catalog
// itself is not modified.
func demoCatalog(base *catalog.Catalog, key crypto.Signer, shipped *catalog.SigningKey, jwksURL, issuerJWKS, apiKey, introspectURL, exchangeSecret string) *catalog.Catalog {
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
	// Phantom tokens: the development issuer's opaque tokens, introspected.
	c.Trusts = append(c.Trusts, &catalog.Trust{
		Name: demoTrust + "-opaque", Issuer: demoIssuer, IntrospectionURL: introspectURL,
		IntrospectionCache: catalog.DefaultIntrospection, TokenPrefix: demoOpaquePrefix, Claim: []string{m.Claim},
	})
	// The token exchange: profile's second sidecar may obtain its tokens.
	c.ExchangeClients = nil
	if a := base.API(demoExchangeAPI); a != nil && a.Exposed {
		c.ExchangeClients = []*catalog.ExchangeClient{{Name: demoExchangeClient, Secret: catalog.NewSecret(exchangeSecret), Audiences: []string{a.Audience}}}
	}
	var firstHops []string
	for _, a := range base.APIs {
		if demoFirstHop(a) {
			firstHops = append(firstHops, a.Audience)
		}
	}
	if len(firstHops) > 0 {
		c.ExchangeClients = append(c.ExchangeClients, &catalog.ExchangeClient{Name: demoFirstHopClient, Secret: catalog.NewSecret(exchangeSecret), Audiences: firstHops})
	}
	c.Exchange = nil
	h := catalog.Hook{Listen: "127.0.0.1:0", APIKeyHeader: catalog.DefaultAPIKeyHeader, APIKey: catalog.NewSecret(apiKey), Generic: true, Timeout: catalog.DefaultHookTimeout}
	if base.Hook != nil {
		h.APIKeyHeader = base.Hook.APIKeyHeader
		h.Timeout = base.Hook.Timeout
	}
	c.Hook = &h
	c.Sidecar = nil
	return &c
}

// demoFirstHop reports an API whose demo sidecar has an exchange block to
// refresh nested tokens: exposed, calling others, and not the API whose two
// sidecars show the exchange against the "renew" answer.
func demoFirstHop(a *catalog.API) bool {
	return a != nil && a.Exposed && len(a.Calls) > 0 && a.Name != demoExchangeAPI
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
		shipped, err := loadCatalogDiags([]string{dir, file}, catalog.KeysSkip, demoRuns, stderr, true)
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
	Act           map[string]any `json:"act,omitempty"`
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
		h.Act, _ = claims["act"].(map[string]any)
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

// hookMap asks the hook for the embedded map over HTTP, as an issuer
// would (POST /hooks/generic with the API key).
func (d *demo) hookMap(ctx context.Context, scopes []string, exp time.Time) (string, map[string]string, error) {
	body, _ := json.Marshal(map[string]any{
		"sub": demoSub, "client_id": demoClient, "scope": strings.Join(scopes, " "), "claims": demoClaims, "exp": exp.Unix(),
	})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.hookURL+"/hooks/generic", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(d.cat.Hook.APIKeyHeader, d.apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", nil, fmt.Errorf("hook: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		Claim  string            `json:"claim"`
		Tokens map[string]string `json:"tokens"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&out) != nil {
		return "", nil, fmt.Errorf("hook answered %s", resp.Status)
	}
	return out.Claim, out.Tokens, nil
}

// outerToken gets the embedded map from the hook for scopes, drops the
// tokens of the APIs in without (a token minted before they existed), and
// signs the outer token as the development issuer.
func (d *demo) outerToken(ctx context.Context, scopes []string, without ...string) (string, int, error) {
	exp := d.issuer.Exp()
	claim, tokens, err := d.hookMap(ctx, scopes, exp)
	if err != nil {
		return "", 0, err
	}
	for _, api := range without {
		delete(tokens, api)
	}
	sub := mint.Subject{Sub: demoSub, ClientID: demoClient, Scopes: scopes, Claims: demoClaims, Exp: exp}
	tok, err := d.issuer.Sign(sub, mint.Result{Claim: claim, Tokens: tokens})
	return tok, len(tokens), err
}

// opaqueToken gets the embedded map from the hook and hands the client an
// opaque token instead of a JWT: the map stays with the issuer, and the
// sidecar finds it by introspection.
func (d *demo) opaqueToken(ctx context.Context, scopes []string) (string, error) {
	exp := d.issuer.Exp()
	claim, tokens, err := d.hookMap(ctx, scopes, exp)
	if err != nil {
		return "", err
	}
	claims := map[string]any{
		"iss": demoIssuer, "sub": demoSub, "client_id": demoClient, "scope": strings.Join(scopes, " "),
		"iat": time.Now().Unix(), "exp": exp.Unix(), claim: tokens,
	}
	for k, v := range demoClaims {
		claims[k] = v
	}
	return d.opaque.issue(claims), nil
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
