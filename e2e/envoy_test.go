package e2e

import (
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// authzSidecar runs the shipped decision-only sidecar
// (deploy/sidecar/orders-authz.hcl, its addresses moved to free ports) on
// st's configuration and waits until it is ready. It returns the process
// and the authz and admin addresses.
func authzSidecar(t *testing.T, st *stack) (p *proc, authz, admin string) {
	t.Helper()
	a := freeAddrs(t, 2)
	authz, admin = a[0], a[1]
	src := shippedFile(t, "sidecar/orders-authz.hcl", map[string]string{shippedAuthz: authz, "127.0.0.1:9911": admin})
	file := filepath.Join(st.dir, "sidecars", "orders-authz.hcl")
	writeFile(t, file, src)
	p = startOwned(t, st.owner, "sidecar-authz", st.env(), needBinary(t), "sidecar", "--config", st.dir, "--config", file, "--log-level", "debug")
	p.waitHTTP(t, "http://"+admin+"/readyz")
	return p, authz, admin
}

// TestEnvoyHTTPShaped runs the shipped decision-only sidecar (no listen, no
// upstream) and asks it as Envoy's HTTP ext_authz filter does
// (path_prefix /authz/envoy, the original method, Envoy's lower-case
// header names and its own x-envoy-* headers); it also covers readiness,
// metrics and a clean SIGTERM of a sidecar that only decides.
func TestEnvoyHTTPShaped(t *testing.T) {
	st := newStack(t, stackOptions{})
	st.startHook(t)
	p, authz, admin := authzSidecar(t, st)
	outer := mintOuter(t, st, devSubject, "")
	inner := decodeJWT(t, outer).embedded(minterClaim)["orders"]
	if inner == "" {
		t.Fatal("no orders token in the outer token")
	}
	ask := func(t *testing.T, method, path, token string) answer {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+authz+"/authz/envoy"+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Envoy sends HTTP/1.1 header names in lower case, and the
		// original :authority as Host.
		req.Host = "orders.example.com"
		h := map[string]string{
			"content-length": "0", "x-forwarded-proto": "https",
			"x-forwarded-for": "10.1.2.3", "x-envoy-internal": "true", "x-envoy-expected-rq-timeout-ms": "250",
			"x-request-id": "8f3c2a9e-5a4b-4c1e-9f2d-1e2a3b4c5d6e", "user-agent": "curl/8.5.0",
		}
		if token != "" {
			h["authorization"] = "Bearer " + token
		}
		for k, v := range h {
			req.Header[k] = []string{v}
		}
		resp, err := st.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return readAnswer(resp)
	}
	t.Run("allowed: the inner token for the upstream", func(t *testing.T) {
		r := ask(t, "GET", "/orders/1?page=2", outer)
		if r.status != 200 || r.body != "" {
			t.Fatalf("status %d body %q", r.status, r.body)
		}
		if r.header.Get("Authorization") != "Bearer "+inner {
			t.Error("Authorization is not the orders inner token")
		}
		if r.header.Get("X-Request-Id") != "8f3c2a9e-5a4b-4c1e-9f2d-1e2a3b4c5d6e" {
			t.Errorf("X-Request-Id %q", r.header.Get("X-Request-Id"))
		}
	})
	t.Run("route scope on the original method", func(t *testing.T) {
		r := ask(t, "POST", "/orders/admin/1", outer)
		if r.status != 403 || !strings.Contains(r.challenge, `error="insufficient_scope"`) {
			t.Errorf("status %d challenge %q", r.status, r.challenge)
		}
	})
	t.Run("tampered", func(t *testing.T) {
		r := ask(t, "GET", "/orders/1", flip(outer))
		if r.status != 401 || !strings.Contains(r.challenge, `error="invalid_token"`) || r.header.Get("Authorization") != "" {
			t.Errorf("status %d challenge %q", r.status, r.challenge)
		}
	})
	t.Run("public path", func(t *testing.T) {
		r := ask(t, "GET", "/healthz", "")
		if r.status != 200 || len(r.header.Values("Authorization")) != 0 {
			t.Errorf("status %d, Authorization %q", r.status, r.header.Values("Authorization"))
		}
	})
	t.Run("encoded path", func(t *testing.T) {
		r := ask(t, "GET", "/orders%2Fadmin/1", outer)
		if r.status != 400 || r.errCode != "invalid_request" {
			t.Errorf("status %d error %q", r.status, r.errCode)
		}
	})
	t.Run("reload covers the decision listener", func(t *testing.T) {
		if r := ask(t, "GET", "/orders/status", ""); r.status != 401 {
			t.Fatalf("before: status %d", r.status)
		}
		st.edit(t, filepath.Join("sidecars", "orders-authz.hcl"), func(src string) string {
			return setAttr(t, src, "public_paths", `["/healthz", "/orders/status"]`)
		})
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 15*time.Second, "the reloaded public path", func() bool {
			r := ask(t, "GET", "/orders/status", "")
			return r.status == 200 && r.header.Get("Authorization") == ""
		})
	})
	if n := metricValue(t, st.client, "http://"+admin+"/metrics", `embedtoken_sidecar_requests_total{outcome="allowed",reason="ok"}`); n != 1 {
		t.Errorf("allowed decisions counted: %v, want 1", n)
	}
	if log := p.log(); strings.Contains(log, outer[len(outer)-30:]) || strings.Contains(log, inner[len(inner)-30:]) {
		t.Error("a token in the sidecar's log")
	}
	p.stop(t)
	st.stopAll(t)
}
