package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Environment variables of the Hydra e2e tests.
const (
	// envHydra set to 1 runs the tests that need a real Ory Hydra.
	envHydra = "EMBEDTOKEN_E2E_HYDRA"
	// envHydraBin names a prebuilt Hydra v2.3.0 binary (built with the
	// sqlite tags), absolute or relative to the repository root; without
	// it the tests run e2e/hydra/build.sh.
	envHydraBin = "EMBEDTOKEN_HYDRA_BIN"
)

// hydraBuildTimeout bounds e2e/hydra/build.sh: a cold build downloads ~415
// modules and compiles for minutes.
const hydraBuildTimeout = 15 * time.Minute

var hydraBuild struct {
	once sync.Once
	bin  string
	err  error
}

// needHydra skips t unless EMBEDTOKEN_E2E_HYDRA=1 (and under -short), and
// returns the Hydra binary, building it once per test run.
func needHydra(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: skipped under -short")
	}
	if os.Getenv(envHydra) != "1" {
		t.Skipf("e2e: set %s=1 to run the tests with a real Ory Hydra", envHydra)
	}
	hydraBuild.once.Do(func() {
		if bin := os.Getenv(envHydraBin); bin != "" {
			// go test runs in e2e/: a relative path is taken from the
			// repository root, where .ci/run and developers stand.
			if !filepath.IsAbs(bin) {
				bin = filepath.Join(repoRoot, bin)
			}
			if _, err := os.Stat(bin); err != nil {
				hydraBuild.err = fmt.Errorf("%s: %w", envHydraBin, err)
			}
			hydraBuild.bin = bin
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), hydraBuildTimeout)
		defer cancel()
		out := filepath.Join(repoRoot, "e2e", "hydra", "bin", "hydra")
		cmd := exec.CommandContext(ctx, "sh", filepath.Join(repoRoot, "e2e", "hydra", "build.sh"), out)
		cmd.Dir = repoRoot
		b, err := cmd.CombinedOutput()
		if err != nil {
			hydraBuild.err = fmt.Errorf("e2e/hydra/build.sh: %v\n%s", err, b)
			return
		}
		hydraBuild.bin = out
	})
	if hydraBuild.err != nil {
		t.Fatal(hydraBuild.err)
	}
	return hydraBuild.bin
}

// hydraOptions configures one Hydra instance.
type hydraOptions struct {
	// HookURL is oauth2.token_hook.url. If empty, Hydra calls no hook.
	HookURL string
	// HookHeader and HookKey are the api_key auth of the hook (sent as a
	// header); if HookKey is empty, no auth is configured.
	HookHeader string
	HookKey    string
	// AccessToken is strategies.access_token: "jwt" (if empty) or "opaque".
	AccessToken string
	// AccessTokenTTL is ttl.access_token. If empty, 1h.
	AccessTokenTTL string
	// PublicAddr and AdminAddr are the listeners' host:port; if empty, free
	// loopback ports. The issuer is http://<PublicAddr>.
	PublicAddr, AdminAddr string
}

// hydra is a running Ory Hydra v2.3.0 (`serve all --dev`, dsn memory) on two
// free loopback ports. Every start makes new signing keys and forgets every
// client: that is what restart tests rely on.
type hydra struct {
	bin     string
	opts    hydraOptions
	public  string // host:port of the public listener
	admin   string // host:port of the admin listener
	issuer  string // urls.self.issuer: http://<public>
	cfgPath string
	p       *proc
	starts  int
	client  *http.Client
	owner   *testing.T // the test whose end stops Hydra, even after a restart in a subtest
}

// startHydra writes a configuration for opts and starts Hydra, waiting until
// its admin API is ready. It is stopped when the test ends.
func startHydra(t *testing.T, opts hydraOptions) *hydra {
	t.Helper()
	bin := needHydra(t)
	addrs := freeAddrs(t, 2)
	if opts.PublicAddr != "" {
		addrs[0] = opts.PublicAddr
	}
	if opts.AdminAddr != "" {
		addrs[1] = opts.AdminAddr
	}
	h := &hydra{
		bin:     bin,
		opts:    opts,
		public:  addrs[0],
		admin:   addrs[1],
		issuer:  "http://" + addrs[0],
		cfgPath: filepath.Join(t.TempDir(), "hydra.json"),
		client:  newClient(),
		owner:   t,
	}
	if err := os.WriteFile(h.cfgPath, h.config(), 0o600); err != nil {
		t.Fatal(err)
	}
	h.start(t)
	return h
}

// config returns Hydra's configuration file (JSON, which Hydra reads like
// YAML). Every key is checked against Hydra v2.3.0's spec/config.json.
func (h *hydra) config() []byte {
	port := func(addr string) int {
		u, _ := url.Parse("http://" + addr)
		var p int
		fmt.Sscan(u.Port(), &p)
		return p
	}
	strategy := h.opts.AccessToken
	if strategy == "" {
		strategy = "jwt"
	}
	ttl := h.opts.AccessTokenTTL
	if ttl == "" {
		ttl = "1h"
	}
	cfg := map[string]any{
		"dsn": "memory",
		"dev": true,
		"log": map[string]any{"level": "info", "format": "text", "leak_sensitive_values": false},
		"sqa": map[string]any{"opt_out": true},
		"serve": map[string]any{
			"public": map[string]any{"host": "127.0.0.1", "port": port(h.public)},
			"admin":  map[string]any{"host": "127.0.0.1", "port": port(h.admin)},
		},
		"urls": map[string]any{"self": map[string]any{
			"issuer": h.issuer,
			"public": h.issuer + "/",
			"admin":  "http://" + h.admin + "/",
		}},
		"strategies": map[string]any{"access_token": strategy},
		"ttl":        map[string]any{"access_token": ttl},
		"secrets":    map[string]any{"system": []string{"embedtoken-e2e-system-secret-0123456789"}},
	}
	if h.opts.HookURL != "" {
		hook := map[string]any{"url": h.opts.HookURL}
		if h.opts.HookKey != "" {
			// auth.config.in must be "header" (or "cookie"): without it
			// Hydra v2.3.0 accepts the config and silently sends nothing.
			hook["auth"] = map[string]any{
				"type": "api_key",
				"config": map[string]any{
					"in":    "header",
					"name":  h.opts.HookHeader,
					"value": h.opts.HookKey,
				},
			}
		}
		cfg["oauth2"] = map[string]any{"token_hook": hook}
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		panic(err)
	}
	return b
}

func (h *hydra) start(t *testing.T) {
	t.Helper()
	h.starts++
	h.p = startOwned(t, h.owner, fmt.Sprintf("hydra-%d", h.starts), baseEnv(), h.bin,
		"serve", "all", "--dev", "--sqa-opt-out", "--config", h.cfgPath)
	// Hydra generates its RSA-4096 signing key on the first JWKS request:
	// tens of seconds on a loaded 2-core machine, hence a longer bound.
	for _, url := range []string{"http://" + h.admin + "/health/ready", h.issuer + "/.well-known/jwks.json"} {
		if err := h.p.waitReady(url, hydraReadyTimeout); err != nil {
			t.Fatalf("%s not ready: %v (log: %s)", h.p.name, err, h.p.logPath)
		}
	}
}

// stop stops Hydra with SIGTERM and requires exit 0.
func (h *hydra) stop(t *testing.T) {
	t.Helper()
	h.p.stop(t)
}

// restart stops Hydra and starts it again on the same ports and
// configuration: new keys, no clients.
func (h *hydra) restart(t *testing.T) {
	t.Helper()
	h.stop(t)
	h.start(t)
}

// hydraClient is an OAuth2 client to create through the admin API.
type hydraClient struct {
	ID     string
	Secret string
	// Scope lists the scopes the client may request.
	Scope []string
	// Audience lists the audiences the client may request.
	Audience []string
	// AuthMethod is token_endpoint_auth_method: "client_secret_basic" (if
	// empty) or "client_secret_post".
	AuthMethod string
	// AccessTokenLifespan is the client's
	// client_credentials_grant_access_token_lifespan ("3s"); if empty,
	// ttl.access_token applies.
	AccessTokenLifespan string
}

// createClient creates c with POST /admin/clients (client_credentials only).
func (h *hydra) createClient(t *testing.T, c hydraClient) {
	t.Helper()
	if c.AuthMethod == "" {
		c.AuthMethod = "client_secret_basic"
	}
	body := map[string]any{
		"client_id":                  c.ID,
		"client_secret":              c.Secret,
		"grant_types":                []string{"client_credentials"},
		"response_types":             []string{"token"},
		"scope":                      strings.Join(c.Scope, " "),
		"audience":                   c.Audience,
		"token_endpoint_auth_method": c.AuthMethod,
	}
	if c.AccessTokenLifespan != "" {
		body["client_credentials_grant_access_token_lifespan"] = c.AccessTokenLifespan
	}
	b, _ := json.Marshal(body)
	resp, err := h.client.Post("http://"+h.admin+"/admin/clients", "application/json", strings.NewReader(string(b)))
	if err != nil {
		t.Fatalf("create client %s: %v", c.ID, err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create client %s: %s: %s", c.ID, resp.Status, rb)
	}
}

// tokenResponse is the token endpoint's answer, success or RFC 6749 error.
type tokenResponse struct {
	Status      int           `json:"-"`
	Elapsed     time.Duration `json:"-"`
	AccessToken string        `json:"access_token"`
	TokenType   string        `json:"token_type"`
	ExpiresIn   int           `json:"expires_in"`
	Scope       string        `json:"scope"`
	Error       string        `json:"error"`
	Description string        `json:"error_description"`
}

// token runs a client_credentials grant for c asking for scope and
// audience (each may be empty). Hydra's public server gives up after 10 s,
// a hook that is down costs 3 s of retries; the request is bounded at 30 s.
func (h *hydra) token(t *testing.T, c hydraClient, scope, audience []string) tokenResponse {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(scope) > 0 {
		form.Set("scope", strings.Join(scope, " "))
	}
	if len(audience) > 0 {
		form.Set("audience", strings.Join(audience, " "))
	}
	if c.AuthMethod == "client_secret_post" {
		form.Set("client_id", c.ID)
		form.Set("client_secret", c.Secret)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.issuer+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.AuthMethod != "client_secret_post" {
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	}
	start := time.Now()
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	defer resp.Body.Close()
	var tr tokenResponse
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := json.Unmarshal(rb, &tr); err != nil {
		t.Fatalf("token response %s: %v: %q", resp.Status, err, rb)
	}
	tr.Status = resp.StatusCode
	tr.Elapsed = time.Since(start)
	return tr
}

// mustToken is token that requires a 200 with an access token.
func (h *hydra) mustToken(t *testing.T, c hydraClient, scope, audience []string) string {
	t.Helper()
	tr := h.token(t, c, scope, audience)
	if tr.Status != http.StatusOK || tr.AccessToken == "" {
		t.Fatalf("token for %s: %d %s: %s\n--- hydra log:\n%s", c.ID, tr.Status, tr.Error, tr.Description, h.p.tail(30))
	}
	return tr.AccessToken
}

// jwks fetches Hydra's public key set.
func (h *hydra) jwks(t *testing.T) jose.JSONWebKeySet {
	t.Helper()
	return fetchJWKS(t, h.client, h.issuer+"/.well-known/jwks.json")
}

// introspect calls POST /admin/oauth2/introspect and returns its JSON.
func (h *hydra) introspect(t *testing.T, token string) map[string]any {
	t.Helper()
	resp, err := h.client.PostForm("http://"+h.admin+"/admin/oauth2/introspect", url.Values{"token": {token}})
	if err != nil {
		t.Fatalf("introspect: %v", err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&m); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("introspect: %s: %v", resp.Status, err)
	}
	return m
}
