package e2e

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRefusalsExplained: deliberate mistakes a new user makes, seen through
// the real sidecar's access log and /readyz (README, "Logs, readiness and
// why a token was refused").
func TestRefusalsExplained(t *testing.T) {
	st := newStack(t, stackOptions{})
	// A trailing slash in the trust's issuer: no token matches it.
	st.edit(t, "trust.hcl", func(src string) string {
		return replaceAll(t, src, `= "https://dev-issuer.embedtoken.internal"`, `= "https://dev-issuer.embedtoken.internal/"`)
	})
	st.startHook(t)
	svc := newService(t, "orders")
	sc := st.startSidecar(t, "orders", svc.srv.URL)
	outer := mintOuter(t, st, devSubject, "")

	t.Run("unknown issuer: expected against got", func(t *testing.T) {
		r, _ := getAt(t, st.client, sc, "/orders/1?q=1", outer)
		if r.status != http.StatusUnauthorized || r.errCode != "invalid_token" {
			t.Fatalf("got %d %s", r.status, r.body)
		}
		svc.none(t)
		log := sc.p.log()
		line := ""
		for _, l := range strings.Split(log, "\n") {
			if strings.Contains(l, `"logger":"unwrap.access"`) && strings.Contains(l, `"reason":"unknown_issuer"`) {
				line = l
			}
		}
		for _, want := range []string{`"status":401`, `"path":"/orders/1"`, `"method":"GET"`, `"request_id":`, `"latency":`,
			`iss \"https://dev-issuer.embedtoken.internal\"`, `want one of [\"https://dev-issuer.embedtoken.internal/\"`} {
			if !strings.Contains(line, want) {
				t.Errorf("access log line %q lacks %s", line, want)
			}
		}
		if strings.Contains(log, strings.Split(outer, ".")[1]) || strings.Contains(log, "q=1") {
			t.Error("the sidecar logged token material or a query string")
		}
	})

	t.Run("readyz says which key set and why", func(t *testing.T) {
		dead := freeAddr(t) // nothing listens there
		st.addFile(t, "down.hcl", `
trust "down" {
  issuer         = "https://down.test"
  jwks_url       = "http://`+dead+`/jwks.json"
  algorithms     = ["RS256"]
  token_lifetime = "1h"
}
`)
		a := freeAddrs(t, 2)
		file := filepath.Join(st.dir, "sidecars", "orders.hcl")
		st.edit(t, filepath.Join("sidecars", "orders.hcl"), func(src string) string {
			src = setAttr(t, src, "listen", quote(a[0]))
			return setAttr(t, src, "admin_listen", quote(a[1]))
		})
		p := startOwned(t, st.owner, "sidecar-orders-down", st.env(), needBinary(t), "sidecar", "--config", st.dir, "--config", file)
		var body string
		waitCond(t, 15*time.Second, "/readyz naming the key set", func() bool {
			resp, err := st.client.Get("http://" + a[1] + "/readyz")
			if err != nil {
				return false
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			return resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(body, "last error")
		})
		if !strings.HasPrefix(body, "not ready: key set of down (http://"+dead+"/jwks.json) not loaded yet: last error: ") {
			t.Errorf("/readyz: %q", body)
		}
		p.stop(t)
	})
	st.stopAll(t)
}
