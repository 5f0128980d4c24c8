package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Fault tests: real processes with their dependencies failing under them.
// Each logs what it observed (t.Log), for the issue's note.

// unavailable requires DESIGN.md's 503: temporarily_unavailable, a
// Retry-After, no Bearer challenge, and nothing upstream.
func (a *adv) unavailable(t *testing.T, r answer) {
	t.Helper()
	if r.status != http.StatusServiceUnavailable || r.errCode != "temporarily_unavailable" {
		t.Errorf("got %d %q, want 503 temporarily_unavailable (body %s)", r.status, r.errCode, r.body)
	}
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if r.challenge != "" {
		t.Errorf("503 with a challenge %q: the client must not be told to renew", r.challenge)
	}
	if got := a.up.take(); len(got) != 0 {
		t.Errorf("upstream reached %d times", len(got))
	}
}

// unknownKid mints an otherwise valid outer token signed by a key the
// issuer does not publish (yet).
func (a *adv) unknownKid(kid string) string {
	k := newECKey(kid)
	return k.sign("at+jwt", a.outerClaims(map[string]any{"orders": a.inner("")}))
}

// TestFaultJWKS breaks the issuer's key set endpoint in every way while
// tokens flow: valid tokens keep being served on the cached keys, and a
// token whose kid is unknown gets 503 (the keys cannot be refreshed), never
// 401.
func TestFaultJWKS(t *testing.T) {
	a := newAdv(t, advOptions{MinRefetch: "1s"})
	valid := func(t *testing.T) {
		t.Helper()
		outer, inner := a.outer() // fresh: no verified-token cache hit
		start := time.Now()
		a.forwarded(t, a.get(t, "/orders/1", "Bearer "+outer), inner, outer)
		if d := time.Since(start); d > time.Second {
			t.Errorf("valid token took %s", d)
		}
	}
	valid(t)
	for _, mode := range []string{"status500", "garbage", "empty", "down"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "down" {
				a.idp.stop()
			} else {
				a.idp.setMode(mode, 0)
			}
			time.Sleep(1100 * time.Millisecond) // past jwks_min_refetch
			hits := a.idp.hits.Load()
			valid(t)
			a.unavailable(t, a.get(t, "/orders/1", "Bearer "+a.unknownKid("new-"+mode)))
			valid(t)
			// Within jwks_min_refetch of the failed fetch: still 503, no new fetch.
			a.unavailable(t, a.get(t, "/orders/1", "Bearer "+a.unknownKid("newer-"+mode)))
			t.Logf("%s: valid tokens 200 on cached keys; unknown kid 503; fetches during the fault: %d", mode, a.idp.hits.Load()-hits)
			if mode == "down" {
				a.idp.start(t)
			}
			a.idp.setMode("", 0)
		})
	}
	t.Run("slow past the fetch timeout", func(t *testing.T) {
		a.idp.setMode("slow", 30*time.Second)
		time.Sleep(1100 * time.Millisecond)
		done := make(chan answer, 1)
		start := time.Now()
		go func() {
			req, _ := http.NewRequest(http.MethodGet, a.url("/orders/1"), nil)
			req.Header.Set("Authorization", "Bearer "+a.unknownKid("slow-kid"))
			c := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 25 * time.Second}
			resp, err := c.Do(req)
			if err != nil {
				done <- answer{status: -1, body: err.Error()}
				return
			}
			done <- readAnswer(resp)
		}()
		time.Sleep(300 * time.Millisecond)
		for range 5 { // the fetch in flight blocks nobody else
			valid(t)
		}
		r := <-done
		took := time.Since(start)
		a.idp.setMode("", 0)
		a.unavailable(t, r)
		if took > 15*time.Second {
			t.Errorf("unknown kid answered after %s, want about the 10 s fetch timeout", took)
		}
		t.Logf("slow key set: valid tokens served meanwhile; unknown kid 503 after %s", took.Round(time.Millisecond))
	})
	t.Run("recovered: a rotated key is picked up", func(t *testing.T) {
		k := newECKey("rotated-1")
		a.idp.setKeys(a.rsa, a.ec, k)
		time.Sleep(1100 * time.Millisecond)
		outer := k.sign("at+jwt", a.outerClaims(map[string]any{"orders": a.inner("")}))
		if r := a.get(t, "/orders/1", "Bearer "+outer); r.status != http.StatusOK {
			t.Fatalf("after recovery, new kid: %d %s", r.status, r.body)
		}
		a.up.take()
		valid(t)
	})
	if log := a.p.log(); !strings.Contains(log, "keeping the last good keys") {
		t.Error("the failed fetches were not logged")
	}
	a.healthy(t)
	a.p.stop(t)
}

// TestFaultUnknownKidFlood sends a flood of tokens with random unknown kids:
// the issuer sees at most one fetch per jwks_min_refetch, each answer is 401
// (the refetch succeeded), and valid tokens keep flowing.
func TestFaultUnknownKidFlood(t *testing.T) {
	a := newAdv(t, advOptions{MinRefetch: "2s"})
	keys := make([]*advKey, 32)
	for i := range keys {
		keys[i] = newECKey(fmt.Sprintf("flood-%d", i))
	}
	tokens := make([]string, 0, 400)
	for i := range cap(tokens) {
		k := keys[i%len(keys)]
		k.kid = fmt.Sprintf("flood-%d-%s", i, randomHex(t, 4))
		tokens = append(tokens, k.sign("at+jwt", a.outerClaims(map[string]any{"orders": a.inner("")})))
	}
	time.Sleep(2100 * time.Millisecond)
	hits0 := a.idp.hits.Load()
	start := time.Now()
	var next atomic.Int64
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient()
			defer c.CloseIdleConnections()
			for time.Since(start) < 5*time.Second {
				i := int(next.Add(1)-1) % len(tokens)
				req, _ := http.NewRequest(http.MethodGet, a.url("/orders/1"), nil)
				req.Header.Set("Authorization", "Bearer "+tokens[i])
				code := -1
				if resp, err := c.Do(req); err == nil {
					code = resp.StatusCode
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	fetches := a.idp.hits.Load() - hits0
	allowed := int64(elapsed/(2*time.Second)) + 1
	t.Logf("flood: %d requests with %d distinct unknown kids in %s -> statuses %v; key set fetches %d (allowed %d)",
		next.Load(), len(tokens), elapsed.Round(time.Millisecond), codes, fetches, allowed)
	if fetches > allowed {
		t.Errorf("the issuer was fetched %d times in %s, want at most %d (one per jwks_min_refetch)", fetches, elapsed, allowed)
	}
	if codes[http.StatusUnauthorized] != int(next.Load()) {
		t.Errorf("statuses %v, want every one 401", codes)
	}
	if got := a.up.take(); len(got) != 0 {
		t.Errorf("upstream reached %d times", len(got))
	}
	outer, inner := a.outer()
	a.forwarded(t, a.get(t, "/orders/1", "Bearer "+outer), inner, outer)
	a.healthy(t)
	a.p.stop(t)
}

// TestFaultUpstream takes the upstream down (502), makes it slow (504) and
// brings it back (200).
func TestFaultUpstream(t *testing.T) {
	a := newAdv(t, advOptions{UpstreamTimeout: "1s"})
	outer, inner := a.outer()
	a.forwarded(t, a.get(t, "/orders/1", "Bearer "+outer), inner, outer)

	a.up.stop()
	r := a.get(t, "/orders/1", "Bearer "+outer)
	if r.status != http.StatusBadGateway || r.errCode != "bad_gateway" || r.challenge != "" {
		t.Errorf("upstream down: %d %q challenge %q, want 502 bad_gateway without a challenge", r.status, r.errCode, r.challenge)
	}
	if strings.Contains(r.body, outer) || strings.Contains(r.body, inner) {
		t.Error("the 502 body holds a token")
	}
	a.up.start(t)
	a.forwarded(t, a.get(t, "/orders/1", "Bearer "+outer), inner, outer)

	a.up.mu.Lock()
	a.up.delay = 2 * time.Second
	a.up.mu.Unlock()
	start := time.Now()
	r = a.get(t, "/orders/1", "Bearer "+outer)
	if r.status != http.StatusGatewayTimeout || r.errCode != "gateway_timeout" {
		t.Errorf("upstream slow: %d %q, want 504 gateway_timeout", r.status, r.errCode)
	}
	t.Logf("upstream down: 502 bad_gateway; slow: 504 after %s; back: 200", time.Since(start).Round(time.Millisecond))
	a.up.mu.Lock()
	a.up.delay = 0
	a.up.mu.Unlock()
	time.Sleep(1500 * time.Millisecond) // let the slow handler finish
	a.up.take()
	a.forwarded(t, a.get(t, "/orders/1", "Bearer "+outer), inner, outer)
	a.healthy(t)
	a.p.stop(t)
}

// loadResult is one request of a load generator.
type loadResult struct {
	start  time.Time
	status int
	err    error
}

// load sends requests with tokens from pool through workers until stop is
// closed (or a worker's request fails to connect, when quitOnDial).
func (a *adv) load(workers int, pool []string, keepAlive bool, stop <-chan struct{}, quitOnDial bool) <-chan []loadResult {
	out := make(chan []loadResult, 1)
	var mu sync.Mutex
	var all []loadResult
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 4}, Timeout: 15 * time.Second}
			defer c.CloseIdleConnections()
			for i := w; ; i += workers {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodGet, a.url("/orders/1"), nil)
				req.Header.Set("Authorization", "Bearer "+pool[i%len(pool)])
				res := loadResult{start: time.Now()}
				resp, err := c.Do(req)
				if err == nil {
					res.status = resp.StatusCode
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				res.err = err
				mu.Lock()
				all = append(all, res)
				mu.Unlock()
				if err != nil && quitOnDial {
					return
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		out <- all
	}()
	return out
}

// TestFaultSIGTERM stops the sidecar under load: every request in flight
// when SIGTERM arrives completes with 200, and the process exits 0 within
// shutdown_timeout.
func TestFaultSIGTERM(t *testing.T) {
	a := newAdv(t, advOptions{UpstreamDelay: 400 * time.Millisecond, ShutdownTimeout: "5s"})
	pool := make([]string, 8)
	for i := range pool {
		pool[i], _ = a.outer()
	}
	stop := make(chan struct{})
	results := a.load(12, pool, false, stop, true)
	time.Sleep(1500 * time.Millisecond)
	sent := time.Now()
	if err := a.p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.p.done:
	case <-time.After(5*time.Second + 3*time.Second):
		t.Fatal("no exit within shutdown_timeout (5s) + 3s")
	}
	exitAfter := time.Since(sent)
	close(stop)
	all := <-results
	if _, err := a.p.exited(); err != nil {
		t.Errorf("exit after SIGTERM: %s, want status 0", exitText(err))
	}
	var before, beforeOK, after, afterOK, afterRefused int
	for _, r := range all {
		if r.start.Before(sent) {
			before++
			if r.err == nil && r.status == http.StatusOK {
				beforeOK++
			} else {
				t.Errorf("a request in flight at SIGTERM failed: status %d err %v", r.status, r.err)
			}
			continue
		}
		after++
		switch {
		case r.err == nil && r.status == http.StatusOK:
			afterOK++
		case r.err != nil:
			afterRefused++
		default:
			t.Errorf("a request after SIGTERM got %d (want 200 or no connection)", r.status)
		}
	}
	t.Logf("SIGTERM under load: exit 0 after %s; %d requests before SIGTERM (%d ok), %d after (%d ok, %d not accepted)",
		exitAfter.Round(time.Millisecond), before, beforeOK, after, afterOK, afterRefused)
	if before == 0 {
		t.Error("no load before SIGTERM")
	}
}

// TestFaultReload changes the configuration under load: a broken file
// (noticed by the file watcher) keeps the last good configuration, a good
// one (applied on SIGHUP) takes effect, and no request fails meanwhile.
func TestFaultReload(t *testing.T) {
	a := newAdv(t, advOptions{})
	pool := make([]string, 16)
	for i := range pool {
		pool[i], _ = a.outer()
	}
	stop := make(chan struct{})
	results := a.load(4, pool, true, stop, false)
	metrics := "http://" + a.admin + "/metrics"
	reloads := func(result string) float64 {
		return metricValue(t, a.client, metrics, `embedtoken_sidecar_config_reloads_total{result="`+result+`"}`)
	}
	path := filepath.Join(a.dir, "sidecar.hcl")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	time.Sleep(time.Second)
	// Broken, noticed by the file watcher (no signal).
	writeFile(t, path, string(good)+"\nsidecar {\n  api = \n")
	waitFor(t, 10*time.Second, "a failed reload", func() bool { return reloads("error") >= 1 })
	time.Sleep(time.Second)
	if r := a.get(t, "/public2", ""); r.status != http.StatusUnauthorized {
		t.Errorf("broken config: /public2 got %d, want 401 (the old config)", r.status)
	}
	// Broken on SIGHUP too: an unknown attribute.
	writeFile(t, path, strings.Replace(string(good), "leeway", "no_such_attribute = 1\n  leeway", 1))
	n := reloads("error")
	if err := a.p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a second failed reload", func() bool { return reloads("error") > n })

	// Good, on SIGHUP: a new public path.
	writeFile(t, path, strings.Replace(string(good), `public_paths     = ["/healthz"]`, `public_paths     = ["/healthz", "/public2"]`, 1))
	if err := a.p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the good configuration applied", func() bool {
		r := a.get(t, "/public2", "")
		return r.status == http.StatusOK
	})
	time.Sleep(time.Second)
	close(stop)
	all := <-results
	var failed int
	for _, r := range all {
		if r.err != nil || r.status != http.StatusOK {
			failed++
			if failed <= 5 {
				t.Errorf("request during reloads: status %d err %v", r.status, r.err)
			}
		}
	}
	t.Logf("reloads under load: %d requests, %d failed; reloads ok=%v error=%v; broken configs kept the old one, the good one applied",
		len(all), failed, reloads("ok"), reloads("error"))
	if !strings.Contains(a.p.log(), "keeping the running configuration") {
		t.Error("the failed reloads were not logged")
	}
	a.up.take()
	a.healthy(t)
	a.p.stop(t)
}

// waitFor polls cond every 100 ms until it holds or d passes (fatal).
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", what, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fakeIssuer calls the token hook the way Ory Hydra v2 does (DESIGN.md and
// the Hydra samples' README): 403 denies the token; any other failure (5xx,
// 429, unreachable, no answer) is retried twice, 1 s then 2 s apart, and
// then the token request fails. It never issues a token without a good
// answer: the behaviour a deployment relies on when the hook is unreachable.
func fakeIssuer(ctx context.Context, hookURL, header, key string, body []byte, timeout time.Duration) (map[string]any, error) {
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: timeout}
	defer client.CloseIdleConnections()
	var last error
	for attempt := range 3 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Second << (attempt - 1)): // 1 s, then 2 s
			}
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, hookURL, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json; charset=UTF-8")
		req.Header.Set(header, key)
		resp, err := client.Do(req)
		if err != nil {
			last = err
			continue
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK:
			var ans map[string]any
			if err := json.Unmarshal(b, &ans); err != nil {
				return nil, fmt.Errorf("server_error: hook answered invalid JSON")
			}
			return ans, nil
		case resp.StatusCode == http.StatusForbidden:
			return nil, errors.New("access_denied")
		case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
			last = fmt.Errorf("hook answered %d", resp.StatusCode)
			continue
		default:
			return nil, fmt.Errorf("server_error: hook answered %d", resp.StatusCode)
		}
	}
	return nil, fmt.Errorf("server_error after 3 attempts: %w", last)
}

// TestFaultHookUnreachable runs a real hook and an issuer that calls it as
// Hydra does, then makes the hook unreachable: hung (SIGSTOP: connections
// accepted, nothing answered), and down (killed). The issuer must fail
// closed: no token, in bounded time. (With EMBEDTOKEN_HYDRA=1,
// TestHydraTokenHook checks the same with a real Hydra.)
func TestFaultHookUnreachable(t *testing.T) {
	st := newStack(t, stackOptions{})
	st.startHook(t)
	body, err := os.ReadFile(filepath.Join(repoRoot, "mint", "testdata", "hydra-refresh.json"))
	if err != nil {
		t.Fatal(err)
	}
	var req map[string]any
	_ = json.Unmarshal(body, &req)
	req["session"].(map[string]any)["id_token"].(map[string]any)["expires_at"] = map[string]any{
		"access_token": time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)}
	body = []byte(mustMarshal(req))
	issue := func() (map[string]any, error, time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // Hydra's public server cut
		defer cancel()
		start := time.Now()
		ans, err := fakeIssuer(ctx, st.hookURL(), hookHeader, st.hookKey, body, 2*time.Second)
		return ans, err, time.Since(start)
	}
	if ans, err, _ := issue(); err != nil || ans["session"] == nil {
		t.Fatalf("hook up: %v %v", ans, err)
	}
	t.Run("wrong key: refused at once", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if ans, err := fakeIssuer(ctx, st.hookURL(), hookHeader, "wrong", body, 2*time.Second); err == nil {
			t.Errorf("a token with a wrong hook key: %v", ans)
		}
	})
	t.Run("hung", func(t *testing.T) {
		pid := st.hook.cmd.Process.Pid
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "the hook stopped", func() bool {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			f := strings.Fields(strings.SplitN(string(b), ")", 2)[len(strings.SplitN(string(b), ")", 2))-1])
			return len(f) > 0 && f[0] == "T"
		})
		ans, err, took := issue()
		_ = syscall.Kill(st.hook.cmd.Process.Pid, syscall.SIGCONT)
		if err == nil {
			t.Errorf("hook hung: the issuer issued %v", ans)
		}
		if took > 11*time.Second {
			t.Errorf("hook hung: the issuer took %s", took)
		}
		t.Logf("hook hung (SIGSTOP): issuer failed closed after %s: %v", took.Round(time.Millisecond), err)
	})
	t.Run("recovered after SIGCONT", func(t *testing.T) {
		if _, err, _ := issue(); err != nil {
			t.Errorf("after SIGCONT: %v", err)
		}
	})
	t.Run("down", func(t *testing.T) {
		_ = syscall.Kill(-st.hook.cmd.Process.Pid, syscall.SIGKILL)
		<-st.hook.done
		ans, err, took := issue()
		if err == nil {
			t.Errorf("hook down: the issuer issued %v", ans)
		}
		t.Logf("hook down (killed): issuer failed closed after %s: %v", took.Round(time.Millisecond), err)
		var op *net.OpError
		if !errors.As(err, &op) {
			t.Logf("note: last error is not a dial error: %v", err)
		}
	})
}
