package e2e

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Resource bounds (DESIGN.md "Resource bounds"), through the real
// processes: refusals do not wait for a trickled body, a stalled upstream
// body is cut at upstream_idle_timeout, max_connections and max_requests
// hold with the admin listener answering meanwhile, the exchange endpoint
// throttles brute force, and reload storms neither refetch key sets nor
// leak descriptors. Each logs what it measured (t.Log).

// trickle sends head (a request with "Content-Length: 300") to addr, then
// one body byte a second, and returns the status line and the time the
// answer took. A read deadline bounds the wait.
func trickle(t *testing.T, addr, head string, wait time.Duration) (status string, conn string, took time.Duration) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for range 300 {
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "no answer: " + err.Error(), "", time.Since(start)
	}
	resp.Body.Close()
	conn = "keep-alive"
	if resp.Close { // ReadResponse moves "Connection: close" here
		conn = "close"
	}
	return resp.Status, conn, time.Since(start)
}

// trickled runs n trickles at once and requires every answer to be
// status want, with Connection: close, within a second or so.
func trickled(t *testing.T, what string, n int, addr, head string, want int) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var slowest time.Duration
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, conn, took := trickle(t, addr, head, 10*time.Second)
			mu.Lock()
			defer mu.Unlock()
			slowest = max(slowest, took)
			if !strings.HasPrefix(status, fmt.Sprint(want)) || conn != "close" || took > 2*time.Second {
				t.Errorf("%s: got %q (Connection %q) after %s, want %d with Connection: close within ~1 s", what, status, conn, took.Round(time.Millisecond), want)
			}
		}()
	}
	wg.Wait()
	t.Logf("%s: %d clients trickling a 300-byte body at 1 byte/s: all answered %d, slowest after %s", what, n, want, slowest.Round(time.Millisecond))
}

// openFDs counts the process's open descriptors, or -1 off Linux.
func openFDs(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(ents)
}

// boundsUpstream replaces the fixture's upstream with one whose paths
// misbehave: /orders/stall sends headers and 10 bytes then stalls;
// /orders/hold blocks until release is closed.
func boundsUpstream(t *testing.T, a *adv) (release chan struct{}) {
	t.Helper()
	a.up.stop()
	release = make(chan struct{})
	ln, err := net.Listen("tcp", a.up.addr)
	for i := 0; err != nil && i < 50; i++ {
		time.Sleep(100 * time.Millisecond)
		ln, err = net.Listen("tcp", a.up.addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/orders/stall":
			w.Header().Set("Content-Length", "1000")
			_, _ = io.WriteString(w, "0123456789")
			w.(http.Flusher).Flush()
			select {
			case <-stop:
			case <-r.Context().Done():
			}
		case "/orders/hold":
			select {
			case <-release:
			case <-stop:
			}
			_, _ = io.WriteString(w, "held")
		default:
			_, _ = io.Copy(io.Discard, r.Body)
			_, _ = io.WriteString(w, "upstream ok")
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		close(stop)
		_ = srv.Close()
	})
	return release
}

func TestFaultBoundsSidecar(t *testing.T) {
	const maxConns, maxReqs = 20, 4
	a := newAdv(t, advOptions{LogLevel: "info", SidecarExtra: fmt.Sprintf(`
  max_connections       = %d
  max_requests          = %d
  upstream_idle_timeout = "1s"
`, maxConns, maxReqs)})
	release := boundsUpstream(t, a)
	metrics := "http://" + a.admin + "/metrics"
	outer, _ := a.outer()

	t.Run("refusals do not wait for a trickled body", func(t *testing.T) {
		trickled(t, "sidecar, no token", 20, a.listen,
			"POST /orders/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 300\r\n\r\n", http.StatusUnauthorized)
		trickled(t, "sidecar, bad token", 5, a.listen,
			"POST /orders/1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer abc.def.ghi\r\nContent-Length: 300\r\n\r\n", http.StatusUnauthorized)
	})

	t.Run("a stalled upstream body is cut at upstream_idle_timeout", func(t *testing.T) {
		before := metricValue(t, a.client, metrics, "embedtoken_sidecar_upstream_idle_timeouts_total")
		req, _ := http.NewRequest(http.MethodGet, a.url("/orders/stall"), nil)
		req.Header.Set("Authorization", "Bearer "+outer)
		c := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 20 * time.Second}
		defer c.CloseIdleConnections()
		// The sidecar may still hold the status line and the 10 bytes in
		// its write buffer when the cut comes: the client then sees the
		// connection close before any header, else a short body.
		start := time.Now()
		var got []byte
		resp, err := c.Do(req)
		if err == nil {
			got, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		took := time.Since(start)
		if err == nil {
			t.Errorf("stalled body: read %q in full, want a cut", got)
		}
		if took < 900*time.Millisecond || took > 5*time.Second {
			t.Errorf("cut after %s, want about upstream_idle_timeout (1s)", took)
		}
		waitFor(t, 5*time.Second, "the idle timeout counted", func() bool {
			return metricValue(t, a.client, metrics, "embedtoken_sidecar_upstream_idle_timeouts_total") > before
		})
		if !strings.Contains(a.p.log(), "upstream_idle_timeout") {
			t.Error("the aborted exchange was not logged with its reason")
		}
		t.Logf("stalled upstream body (headers and 10 of 1000 bytes, then nothing): the exchange was cut after %s (upstream_idle_timeout 1s; the client saw %v after %d bytes)", took.Round(time.Millisecond), err, len(got))
	})

	t.Run("a request body paused mid-way is cut", func(t *testing.T) {
		// 10 of 300 bytes, then nothing: the exchange is aborted at
		// upstream_idle_timeout (1s), the upstream connection freed, and
		// the client gets 504 with Connection: close.
		c, err := net.DialTimeout("tcp", a.listen, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		fmt.Fprintf(c, "POST /orders/1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 300\r\n\r\n0123456789", outer)
		_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		took := time.Since(start)
		if err != nil {
			t.Fatalf("no answer after %s: %v", took, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusGatewayTimeout || !resp.Close || took > 4*time.Second {
			t.Errorf("paused request body: got %d (close %v) after %s, want 504 with Connection: close after about 1s", resp.StatusCode, resp.Close, took)
		}
		t.Logf("request body paused after 10 of 300 bytes: %d after %s (upstream_idle_timeout 1s)", resp.StatusCode, took.Round(time.Millisecond))
	})

	t.Run("max_requests sheds with 503 and Retry-After", func(t *testing.T) {
		var wg sync.WaitGroup
		held := make(chan int, maxReqs)
		for range maxReqs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 20 * time.Second}
				req, _ := http.NewRequest(http.MethodGet, a.url("/orders/hold"), nil)
				req.Header.Set("Authorization", "Bearer "+outer)
				resp, err := c.Do(req)
				if err != nil {
					held <- -1
					return
				}
				resp.Body.Close()
				held <- resp.StatusCode
			}()
		}
		waitFor(t, 5*time.Second, "max_requests in flight", func() bool {
			return metricValue(t, a.client, metrics, "embedtoken_sidecar_upstream_requests_in_flight") == maxReqs
		})
		shed := 0
		for range 5 {
			r := a.get(t, "/orders/1", "Bearer "+outer)
			if r.status == http.StatusServiceUnavailable && r.errCode == "temporarily_unavailable" && r.header.Get("Retry-After") != "" {
				shed++
			}
		}
		if shed != 5 {
			t.Errorf("over max_requests: %d of 5 shed with 503 and Retry-After, want 5", shed)
		}
		close(release)
		wg.Wait()
		close(held)
		for code := range held {
			if code != http.StatusOK {
				t.Errorf("a held request got %d, want 200", code)
			}
		}
		if r := a.get(t, "/orders/1", "Bearer "+outer); r.status != http.StatusOK {
			t.Errorf("after the held requests: got %d, want 200", r.status)
		}
		t.Logf("max_requests %d: %d held at the upstream, 5 more shed with 503 + Retry-After; shed counter %v", maxReqs, maxReqs,
			metricValue(t, a.client, metrics, `embedtoken_sidecar_requests_total{outcome="unavailable",reason="max_requests"}`))
	})

	t.Run("max_connections, the admin listener answering meanwhile", func(t *testing.T) {
		a.client.CloseIdleConnections()
		var idle []net.Conn
		defer func() {
			for _, c := range idle {
				c.Close()
			}
		}()
		for range maxConns + 5 {
			c, err := net.DialTimeout("tcp", a.listen, 3*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			idle = append(idle, c)
		}
		waitFor(t, 5*time.Second, "the listener full", func() bool {
			return metricValue(t, a.client, metrics, `embedtoken_listener_connections{listener="sidecar"}`) == maxConns
		})
		fresh := func(timeout time.Duration) (int, error) {
			c := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: timeout}
			req, _ := http.NewRequest(http.MethodGet, a.url("/orders/1"), nil)
			req.Header.Set("Authorization", "Bearer "+outer)
			resp, err := c.Do(req)
			if err != nil {
				return 0, err
			}
			resp.Body.Close()
			return resp.StatusCode, nil
		}
		// Within stalledAfter (1 s): later, the silent connections may be
		// closed to make room.
		if code, err := fresh(500 * time.Millisecond); err == nil {
			t.Errorf("a request over max_connections was served (%d); it must wait in the backlog", code)
		}
		start := time.Now()
		resp, err := a.client.Get("http://" + a.admin + "/metrics")
		if err != nil {
			t.Fatalf("admin /metrics while the sidecar listener is full: %v", err)
		}
		resp.Body.Close()
		adminTook := time.Since(start)
		for _, c := range idle[:10] {
			c.Close()
		}
		code, err := fresh(5 * time.Second)
		if err != nil || code != http.StatusOK {
			t.Errorf("after 10 idle connections closed: got %d %v, want 200", code, err)
		}
		t.Logf("max_connections %d: %d idle connections opened, the listener held %d; a request waited in the backlog; admin /metrics answered in %s; after 10 closed a request got %d",
			maxConns, maxConns+5, maxConns, adminTook.Round(time.Millisecond), code)
		for _, c := range idle {
			c.Close()
		}

		// Idle keep-alive connections (one request each, then silent) fill
		// the listener: a new client gets in by closing the idlest.
		waitFor(t, 5*time.Second, "the connections above closed", func() bool {
			return metricValue(t, a.client, metrics, `embedtoken_listener_connections{listener="sidecar"}`) == 0
		})
		var kept []net.Conn
		defer func() {
			for _, c := range kept {
				c.Close()
			}
		}()
		for range maxConns {
			c, err := net.DialTimeout("tcp", a.listen, 3*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			kept = append(kept, c)
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("keep-alive request: %v", err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		waitFor(t, 5*time.Second, "the listener full of idle keep-alive connections", func() bool {
			return metricValue(t, a.client, metrics, `embedtoken_listener_connections{listener="sidecar"}`) == maxConns
		})
		start = time.Now()
		code, err = fresh(5 * time.Second)
		took := time.Since(start)
		if err != nil || code != http.StatusOK || took > 2*time.Second {
			t.Errorf("with %d idle keep-alive connections: got %d %v after %s, want 200 at once", maxConns, code, err, took)
		}
		t.Logf("max_connections %d full of idle keep-alive connections: a new request got %d after %s (evictions %v)", maxConns, code,
			took.Round(time.Millisecond), metricValue(t, a.client, metrics, `embedtoken_listener_idle_evictions_total{listener="sidecar"}`))
	})

	t.Run("50 SIGHUPs refetch nothing and leak no descriptor", func(t *testing.T) {
		reloads := func() float64 {
			return metricValue(t, a.client, metrics, `embedtoken_sidecar_config_reloads_total{result="ok"}`)
		}
		// Settle: connections of the earlier subtests closed.
		a.client.CloseIdleConnections()
		time.Sleep(500 * time.Millisecond)
		fetches := a.idp.hits.Load() + a.mjwks.hits.Load()
		fds := openFDs(a.p.cmd.Process.Pid)
		start := time.Now()
		for i := range 50 {
			n := reloads()
			if err := a.p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, fmt.Sprintf("reload %d", i+1), func() bool { return reloads() > n })
		}
		took := time.Since(start)
		a.client.CloseIdleConnections()
		time.Sleep(500 * time.Millisecond)
		extra := a.idp.hits.Load() + a.mjwks.hits.Load() - fetches
		fdsAfter := openFDs(a.p.cmd.Process.Pid)
		if extra != 0 {
			t.Errorf("50 reloads fetched key sets %d times, want 0", extra)
		}
		if fds >= 0 && fdsAfter > fds+2 {
			t.Errorf("open descriptors grew from %d to %d over 50 reloads", fds, fdsAfter)
		}
		if r := a.get(t, "/orders/1", "Bearer "+outer); r.status != http.StatusOK {
			t.Errorf("after the reloads: got %d, want 200", r.status)
		}
		t.Logf("50 SIGHUPs in %s: %d key set fetches, open descriptors %d -> %d", took.Round(time.Millisecond), extra, fds, fdsAfter)
	})
	a.p.stop(t)
}

// TestFaultBoundsHook: the hook's private listener and its exchange
// endpoint refuse at once whatever the body does, the exchange throttles
// brute force with 429, and reloads keep the subject verifier's key sets.
func TestFaultBoundsHook(t *testing.T) {
	issuer := newKeyServer(t, &advKey{kid: "hydra-1", alg: jose.RS256, priv: rsaKey(0)})
	st := newStack(t, stackOptions{HydraIssuer: "http://" + issuer.addr})
	secret := randomHex(t, 24)
	st.setEnv("REPORTS_SIDECAR_SECRET=" + secret)
	st.addFile(t, "reports.hcl", reportsHCL)
	st.startHook(t)
	metrics := "http://" + st.hookAddr.admin + "/metrics"
	basicAuth := func(id, secret string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
	}

	t.Run("refusals do not wait for a trickled body", func(t *testing.T) {
		trickled(t, "hook private listener, no API key", 10, st.hookAddr.private,
			"POST /hooks/hydra HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 300\r\n\r\n", http.StatusUnauthorized)
		// 3 wrong secrets: failures the brute-force count below includes.
		trickled(t, "exchange endpoint, wrong secret", 3, st.hookAddr.public,
			"POST /oauth2/token HTTP/1.1\r\nHost: x\r\nAuthorization: "+basicAuth(reportsClient, "wrong")+
				"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 300\r\n\r\n", http.StatusUnauthorized)
	})

	t.Run("brute force gets 429 after 10 failures", func(t *testing.T) {
		post := func(secret string) (int, http.Header, string) {
			req, _ := http.NewRequest(http.MethodPost, "http://"+st.hookAddr.public+"/oauth2/token",
				strings.NewReader("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Authorization", basicAuth(reportsClient, secret))
			resp, err := st.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, resp.Header, string(b)
		}
		var first429 int
		for i := 1; i <= 20 && first429 == 0; i++ {
			code, h, body := post("wrong")
			switch code {
			case http.StatusUnauthorized:
				if strings.Contains(body, "use HTTP Basic") {
					t.Errorf("Basic was used, yet the answer says %s", body)
				}
			case http.StatusTooManyRequests:
				first429 = i
				if h.Get("Retry-After") == "" {
					t.Error("429 without Retry-After")
				}
			default:
				t.Fatalf("wrong secret %d: got %d %s", i, code, body)
			}
		}
		// 3 failures came from the trickle subtest: the 8th attempt here is
		// the 11th in the minute.
		if first429 != 8 {
			t.Errorf("first 429 at attempt %d here (+3 earlier failures), want after 10 failures", first429)
		}
		if code, _, _ := post(secret); code != http.StatusTooManyRequests {
			t.Errorf("the right secret while throttled: got %d, want 429", code)
		}
		logged := strings.Count(st.hook.log(), "token exchange client authentication failed")
		if logged > 10 {
			t.Errorf("%d failure lines for 10 failures in a burst: want them rate-limited", logged)
		}
		t.Logf("exchange brute force: 401 for the first 10 failures in the minute, then 429 with Retry-After (also for the right secret); %d failure lines logged; throttled counter %v",
			logged, metricValue(t, st.client, metrics, `embedtoken_exchange_requests_total{outcome="throttled"}`))
	})

	t.Run("50 SIGHUPs refetch nothing and leak no descriptor", func(t *testing.T) {
		reloads := func() float64 {
			return metricValue(t, st.client, metrics, `embedtoken_hook_reloads_total{result="ok"}`)
		}
		st.client.CloseIdleConnections()
		time.Sleep(500 * time.Millisecond)
		fetches := issuer.hits.Load()
		fds := openFDs(st.hook.cmd.Process.Pid)
		for i := range 50 {
			n := reloads()
			if err := st.hook.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, fmt.Sprintf("hook reload %d", i+1), func() bool { return reloads() > n })
		}
		st.client.CloseIdleConnections()
		time.Sleep(500 * time.Millisecond)
		extra := issuer.hits.Load() - fetches
		fdsAfter := openFDs(st.hook.cmd.Process.Pid)
		if extra != 0 {
			t.Errorf("50 hook reloads fetched the trust's key set %d times, want 0", extra)
		}
		if fds >= 0 && fdsAfter > fds+2 {
			t.Errorf("open descriptors grew from %d to %d over 50 reloads", fds, fdsAfter)
		}
		t.Logf("hook, 50 SIGHUPs: %d key set fetches at the trust's JWKS server, open descriptors %d -> %d", extra, fds, fdsAfter)
	})
	st.stopAll(t)
}
