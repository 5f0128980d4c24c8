package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// This file runs embedtoken's decision endpoints behind real gateways:
// nginx (auth_request) and Caddy (forward_auth) as real processes with the
// configurations shipped in deploy/ as they are, and Traefik's forwardAuth
// (which cannot be built here) as requests shaped exactly as Traefik sends
// them, with the settings of the shipped deploy/traefik/dynamic.yml.
//
// Shipped files name fixed loopback addresses; the tests replace exactly
// those (and nothing else) with free ports:
const (
	shippedGateway = "127.0.0.1:8080" // where the gateway listens
	shippedService = "127.0.0.1:8081" // the orders service
	shippedAuthz   = "127.0.0.1:8442" // the sidecar's authz_listen
	shippedCaddyAd = "127.0.0.1:2019" // Caddy's admin API
)

// gatewaysRequired is set by .ci/run: a gateway binary that cannot be found
// is then a failure, not a skip.
func gatewaysRequired() bool { return os.Getenv("EMBEDTOKEN_E2E_GATEWAYS") == "1" }

// gatewayBin returns the binary named by env, else def if it exists; it
// skips the test (fails it under EMBEDTOKEN_E2E_GATEWAYS=1) when there is
// none.
func gatewayBin(t *testing.T, env, def, hint string) string {
	t.Helper()
	needBinary(t)
	bin := os.Getenv(env)
	if bin == "" {
		bin = def
	}
	if _, err := os.Stat(bin); err != nil {
		if gatewaysRequired() {
			t.Fatalf("%s: %v (%s)", env, err, hint)
		}
		t.Skipf("no %s (%s; set %s)", bin, hint, env)
	}
	return bin
}

// shippedFile reads deploy/<rel> and replaces each shipped address (which
// must occur) by its test value.
func shippedFile(t *testing.T, rel string, addrs map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy", rel))
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	for old, new := range addrs {
		src = replaceAll(t, src, old, new)
	}
	return src
}

// newAuthzAdv is the adversarial fixture (a real sidecar, a controllable
// issuer, a recording service) with an authz_listen; it returns the fixture
// and the decision listener's address.
func newAuthzAdv(t *testing.T) (*adv, string) {
	t.Helper()
	authz := freeAddr(t)
	a := newAdv(t, advOptions{SidecarExtra: fmt.Sprintf("  authz_listen     = %q\n", authz)})
	return a, authz
}

// gatewayContract is what every gateway must do with embedtoken behind it
// (the list), sent to the gateway at base.
func gatewayContract(t *testing.T, a *adv, base string) {
	send := func(t *testing.T, method, path string, h http.Header) answer {
		t.Helper()
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range h {
			req.Header[k] = v
		}
		return a.do(t, req)
	}
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	outer, inner := a.outer()

	t.Run("the service receives the inner token, never the outer one", func(t *testing.T) {
		u := a.forwarded(t, send(t, "GET", "/orders/1?q=1", bearer(outer)), inner, outer)
		if u.RequestURI != "/orders/1?q=1" {
			t.Errorf("service got %q", u.RequestURI)
		}
		// Again: the verified-token cache answers.
		a.forwarded(t, send(t, "GET", "/orders/2", bearer(outer)), inner, outer)
	})
	t.Run("tampered token: 401 with the challenge", func(t *testing.T) {
		r := send(t, "GET", "/orders/1", bearer(flip(outer)))
		a.refused(t, r, http.StatusUnauthorized, "invalid_token")
	})
	t.Run("no token: 401 with the realm", func(t *testing.T) {
		a.refused(t, send(t, "GET", "/orders/1", nil), http.StatusUnauthorized, "")
	})
	t.Run("ungranted API: 403", func(t *testing.T) {
		c := a.outerClaims(map[string]any{})
		c["scope"] = "billing:read"
		a.refused(t, send(t, "GET", "/orders/1", bearer(a.rsa.sign("at+jwt", c))), http.StatusForbidden, "insufficient_scope")
	})
	t.Run("route-protected path refused whatever the client claims", func(t *testing.T) {
		h := bearer(outer)
		h.Set("X-Forwarded-Uri", "/orders/1")
		h.Set("X-Forwarded-Method", "GET")
		h.Set("X-Original-URI", "/orders/1")
		h.Set("X-Original-Method", "GET")
		h.Set("X-Forwarded-Prefix", "/healthz")
		a.refused(t, send(t, "POST", "/orders/admin/1", h), http.StatusForbidden, "insufficient_scope")
		a.refused(t, send(t, "DELETE", "/orders/admin/1", h), http.StatusForbidden, "insufficient_scope")
	})
	t.Run("a public path claimed by the client does not open another path", func(t *testing.T) {
		h := http.Header{"X-Forwarded-Uri": {"/healthz"}, "X-Original-Uri": {"/healthz"}}
		a.refused(t, send(t, "GET", "/orders/1", h), http.StatusUnauthorized, "")
	})
	t.Run("public path passes without a token, and never carries one", func(t *testing.T) {
		a.forwarded(t, send(t, "GET", "/healthz", nil), "")
		a.forwarded(t, send(t, "GET", "/healthz", bearer(outer)), "", outer)
	})
	t.Run("query token refused", func(t *testing.T) {
		a.refused(t, send(t, "GET", "/orders/1?access_token=x", bearer(outer)), http.StatusBadRequest, "invalid_request")
	})
	t.Run("key set down: 503, never a renew", func(t *testing.T) {
		a.idp.setMode("status500", 0)
		defer a.idp.setMode("", 0)
		time.Sleep(1100 * time.Millisecond) // past jwks_min_refetch
		r := send(t, "GET", "/orders/1", bearer(a.unknownKid("gw-unknown")))
		if r.status < 500 {
			t.Fatalf("status %d, want a 5xx (body %s)", r.status, r.body)
		}
		if r.challenge != "" {
			t.Errorf("challenge %q: the client must not be told to renew", r.challenge)
		}
		if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" || r.errCode != "temporarily_unavailable" {
			t.Errorf("got %d, Retry-After %q, error %q; want 503 temporarily_unavailable with Retry-After", r.status, r.header.Get("Retry-After"), r.errCode)
		}
		if got := a.up.take(); len(got) != 0 {
			t.Errorf("service reached %d times", len(got))
		}
	})
	a.healthy(t)
}

// gatewayStripsCookie: the shipped gateway file removes Cookie (what
// strip_headers does in the proxy: a decision cannot remove headers) and
// forwards the client's Host (host, when the gateway serves any).
func gatewayStripsCookie(t *testing.T, a *adv, base, host string) {
	t.Run("the gateway strips Cookie and keeps the client's Host", func(t *testing.T) {
		outer, inner := a.outer()
		req, _ := http.NewRequest(http.MethodGet, base+"/orders/1", nil)
		req.Header.Set("Authorization", "Bearer "+outer)
		req.Header.Set("Cookie", "session=gateway-cookie")
		if host != "" {
			req.Host = host
		}
		u := a.forwarded(t, a.do(t, req), inner, outer, "gateway-cookie")
		if u.Host != req.Host {
			t.Errorf("service got Host %q, want the client's", u.Host)
		}
	})
}

// TestGatewayNginx runs nginx (Debian's nginx-light, auth_request) with the
// shipped deploy/nginx/embedtoken.conf in front of a real sidecar.
func TestGatewayNginx(t *testing.T) {
	bin := gatewayBin(t, "EMBEDTOKEN_NGINX_BIN", "/usr/sbin/nginx", "e2e/nginx/install.sh installs it")
	a, authz := newAuthzAdv(t)
	gw := freeAddr(t)
	p, dir := startShippedNginx(t, bin, gw, a.up.addr, authz)
	gatewayContract(t, a, "http://"+gw)
	gatewayStripsCookie(t, a, "http://"+gw, "orders.example")
	t.Run("refusals carry embedtoken's request id and JSON body", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+gw+"/orders/1", nil)
		req.Header.Set("X-Request-Id", "nginx-req-1")
		r := a.do(t, req)
		if r.header.Get("X-Request-Id") != "nginx-req-1" || !strings.Contains(r.body, `"request_id":"nginx-req-1"`) {
			t.Errorf("X-Request-Id %q, body %s", r.header.Get("X-Request-Id"), r.body)
		}
		if n := len(r.header.Values("WWW-Authenticate")); n != 1 {
			t.Errorf("%d WWW-Authenticate headers, want 1", n)
		}
		a.up.take()
	})
	if b, _ := os.ReadFile(filepath.Join(dir, "error.log")); t.Failed() {
		t.Logf("nginx error.log:\n%s", b)
	}
	p.stop(t)
}

// TestGatewayCaddy runs Caddy (built by e2e/caddy/build.sh, forward_auth)
// with the shipped deploy/caddy/Caddyfile in front of a real sidecar.
func TestGatewayCaddy(t *testing.T) {
	bin := gatewayBin(t, "EMBEDTOKEN_CADDY_BIN", filepath.Join(repoRoot, "e2e", "caddy", "bin", "caddy"), "e2e/caddy/build.sh builds it")
	a, authz := newAuthzAdv(t)
	addrs := freeAddrs(t, 2)
	gw, admin := addrs[0], addrs[1]
	dir := t.TempDir()
	cfg := filepath.Join(dir, "Caddyfile")
	writeFile(t, cfg, shippedFile(t, "caddy/Caddyfile", map[string]string{
		shippedGateway: gw, shippedService: a.up.addr, shippedAuthz: authz, shippedCaddyAd: admin}))
	env := baseEnv("HOME="+dir, "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	p := startProc(t, "caddy", env, bin, "run", "--config", cfg, "--adapter", "caddyfile")
	ctx, cancel := contextWithTimeout(readyTimeout)
	defer cancel()
	if err := waitTCP(ctx, gw); err != nil {
		t.Fatalf("caddy: %v\n%s", err, p.tail(20))
	}
	gatewayContract(t, a, "http://"+gw)
	// The shipped Caddyfile serves its site address only.
	gatewayStripsCookie(t, a, "http://"+gw, "")
	t.Run("refusals are embedtoken's answer as it is", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+gw+"/orders/1", nil)
		req.Header.Set("X-Request-Id", "caddy-req-1")
		r := a.do(t, req)
		if r.header.Get("X-Request-Id") != "caddy-req-1" || !strings.Contains(r.body, `"request_id":"caddy-req-1"`) {
			t.Errorf("X-Request-Id %q, body %s", r.header.Get("X-Request-Id"), r.body)
		}
		a.up.take()
	})
	p.stop(t)
}

// traefikForwardAuth is the forwardAuth middleware of the shipped
// deploy/traefik/dynamic.yml, as Traefik runs it (pkg/middlewares/auth/
// forward.go): a GET to address with the client's headers less the
// hop-by-hop ones and X-Forwarded-For, -Method, -Proto, -Host and -Uri set
// from the request (replacing the client's when trustForwardHeader is
// false); a 2xx deletes each authResponseHeaders header from the request
// and copies the decision's; any other answer goes to the client with its
// headers and body.
type traefikForwardAuth struct {
	address      string
	trustForward bool
	respHeaders  []string
	next         http.Handler
	client       *http.Client
}

// loadTraefik reads the middleware's settings from the shipped file.
func loadTraefik(t *testing.T, src string) (address string, trust bool, respHeaders []string) {
	t.Helper()
	if m := regexp.MustCompile(`(?m)^\s+address:\s*"([^"]+)"`).FindStringSubmatch(src); m != nil {
		address = m[1]
	}
	if m := regexp.MustCompile(`(?m)^\s+trustForwardHeader:\s*(\w+)`).FindStringSubmatch(src); m != nil {
		trust = m[1] == "true"
	}
	if m := regexp.MustCompile(`(?m)^\s+authResponseHeaders:\n((?:\s+- .+\n)+)`).FindStringSubmatch(src); m != nil {
		for _, l := range strings.Split(strings.TrimSpace(m[1]), "\n") {
			respHeaders = append(respHeaders, strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "- ")))
		}
	}
	if address == "" || len(respHeaders) == 0 {
		t.Fatalf("deploy/traefik/dynamic.yml: forwardAuth address %q, authResponseHeaders %q", address, respHeaders)
	}
	return address, trust, respHeaders
}

// hopHeaders are the hop-by-hop headers Traefik removes.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailers", "Transfer-Encoding", "Upgrade"}

func (f *traefikForwardAuth) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	fr, _ := http.NewRequest(http.MethodGet, f.address, nil)
	fr.Header = req.Header.Clone()
	for _, h := range hopHeaders {
		fr.Header.Del(h)
	}
	if ip, _, _ := strings.Cut(req.RemoteAddr, ":"); ip != "" {
		fr.Header.Set("X-Forwarded-For", ip)
	}
	set := func(name, v string) {
		if cv := req.Header.Get(name); cv != "" && f.trustForward {
			v = cv
		}
		fr.Header.Set(name, v)
	}
	set("X-Forwarded-Method", req.Method)
	set("X-Forwarded-Proto", "http")
	set("X-Forwarded-Host", req.Host)
	set("X-Forwarded-Uri", req.URL.RequestURI())
	resp, err := f.client.Do(fr)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		for _, h := range hopHeaders {
			w.Header().Del(h)
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(body)
		return
	}
	out := req.Clone(req.Context())
	for _, name := range f.respHeaders {
		key := http.CanonicalHeaderKey(name)
		out.Header.Del(key)
		if vs := resp.Header[key]; len(vs) > 0 {
			out.Header[key] = append([]string(nil), vs...)
		}
	}
	f.next.ServeHTTP(w, out)
}

// TestGatewayTraefikShaped runs the contract through Traefik's forwardAuth
// as the shipped dynamic configuration sets it up, and checks the decision
// requests exactly as Traefik shapes them.
func TestGatewayTraefikShaped(t *testing.T) {
	a, authz := newAuthzAdv(t)
	src := shippedFile(t, "traefik/dynamic.yml", map[string]string{shippedService: a.up.addr, shippedAuthz: authz})
	address, trust, respHeaders := loadTraefik(t, src)
	if trust {
		t.Fatal("the shipped forwardAuth trusts the client's X-Forwarded-* headers")
	}
	service := &httpProxy{target: a.up.url(), client: newClient()}
	fa := &traefikForwardAuth{address: address, trustForward: trust, respHeaders: respHeaders, next: service, client: newClient()}
	gw := httptest.NewServer(fa)
	defer gw.Close()
	gatewayContract(t, a, gw.URL)

	t.Run("decision requests as Traefik sends them", func(t *testing.T) {
		outer, inner := a.outer()
		send := func(method, uri string, extra http.Header) answer {
			req, _ := http.NewRequest(http.MethodGet, address, nil)
			req.Header.Set("Authorization", "Bearer "+outer)
			req.Header.Set("User-Agent", "curl/8.5.0")
			req.Header.Set("Accept", "*/*")
			req.Header.Set("X-Forwarded-For", "127.0.0.1")
			req.Header.Set("X-Forwarded-Method", method)
			req.Header.Set("X-Forwarded-Proto", "https")
			req.Header.Set("X-Forwarded-Host", "orders.example.com")
			req.Header.Set("X-Forwarded-Port", "443")
			req.Header.Set("X-Forwarded-Server", "traefik-7d9f")
			req.Header.Set("X-Forwarded-Uri", uri)
			req.Header.Set("X-Real-Ip", "127.0.0.1")
			for k, v := range extra {
				req.Header[k] = v
			}
			return a.do(t, req)
		}
		r := send("GET", "/orders/1?x=%20y", nil)
		if r.status != 200 || r.header.Get("Authorization") != "Bearer "+inner || r.body != "" {
			t.Errorf("allowed: %d, Authorization is the inner token: %t, body %q", r.status, r.header.Get("Authorization") == "Bearer "+inner, r.body)
		}
		a.refused(t, send("DELETE", "/orders/admin/1", nil), http.StatusForbidden, "insufficient_scope")
		// A client's X-Original-URI passes through Traefik untouched: it is
		// never read.
		a.refused(t, send("POST", "/orders/admin/1", http.Header{"X-Original-Uri": {"/orders/1"}}), http.StatusForbidden, "insufficient_scope")
		if r := send("GET", "/healthz", nil); r.status != 200 || r.header.Get("Authorization") != "" {
			t.Errorf("public path: %d, Authorization present: %t", r.status, r.header.Get("Authorization") != "")
		}
		a.up.take()
	})
}

// httpProxy is the load balancer behind the middleware: it forwards the
// request as it is (Authorization included) to target.
type httpProxy struct {
	target string
	client *http.Client
}

func (p *httpProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, _ := http.NewRequest(r.Method, p.target+r.URL.RequestURI(), r.Body)
	req.Header = r.Header.Clone()
	resp, err := p.client.Do(req)
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// TestCheckShippedAuthzSidecar: the shipped decision-only sidecar passes
// `embedtoken check` with the shipped catalog.
func TestCheckShippedAuthzSidecar(t *testing.T) {
	bin := needBinary(t)
	out, code := runCmd(t, bin, nil, "check", "--config", filepath.Join(repoRoot, "hcl"), "--config", filepath.Join(repoRoot, "deploy", "sidecar", "orders-authz.hcl"))
	if code != 0 {
		t.Fatalf("check: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "Decision endpoint reachable") {
		t.Errorf("the shipped decision listeners are not on loopback:\n%s", out)
	}
}
