package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Load probes through the real sidecar: what a flood leaves behind
// (descriptors, goroutines, memory) and what one request may cost in the
// log. Each is bounded in count and time and logs what it measured.

// procStatus returns the kB value of a /proc/PID/status field (VmRSS,
// VmHWM), or -1 off Linux.
func procStatus(pid int, field string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return n
		}
	}
	return -1
}

// loadSnapshot is what a probe compares before and after a flood.
type loadSnapshot struct{ fds, goroutines, rssKB, hwmKB int }

func (a *adv) snapshot(t *testing.T) loadSnapshot {
	t.Helper()
	pid := a.p.cmd.Process.Pid
	return loadSnapshot{fds: openFDs(pid), rssKB: procStatus(pid, "VmRSS"), hwmKB: procStatus(pid, "VmHWM"),
		goroutines: int(metricValue(t, a.client, "http://"+a.admin+"/metrics", "go_goroutines"))}
}

func (s loadSnapshot) String() string {
	return fmt.Sprintf("fds %d, goroutines %d, VmRSS %d kB, VmHWM %d kB", s.fds, s.goroutines, s.rssKB, s.hwmKB)
}

// settled waits until the sidecar's descriptors and goroutines are back
// near before (slack each), and returns the last snapshot.
func (a *adv) settled(t *testing.T, before loadSnapshot, slack int) loadSnapshot {
	t.Helper()
	var s loadSnapshot
	deadline := time.Now().Add(10 * time.Second)
	for {
		a.client.CloseIdleConnections()
		s = a.snapshot(t)
		if (s.fds <= before.fds+slack && s.goroutines <= before.goroutines+slack) || time.Now().After(deadline) {
			return s
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestLoadSidecar(t *testing.T) {
	const cacheEntries = 256
	a := newAdv(t, advOptions{LogLevel: "info", SidecarExtra: fmt.Sprintf("  cache_entries = %d\n", cacheEntries)})
	metrics := "http://" + a.admin + "/metrics"
	outer, _ := a.outer()
	if r := a.get(t, "/orders/1", "Bearer "+outer); r.status != http.StatusOK {
		t.Fatalf("warm-up: %d %s", r.status, r.body)
	}

	t.Run("the access log line of a long path is bounded", func(t *testing.T) {
		// A valid path as long as the header block allows, no token: 401.
		path := "/orders/" + strings.Repeat("a", 16000)
		before := len(a.p.log())
		r := a.get(t, path, "")
		if r.status != http.StatusUnauthorized {
			t.Fatalf("long path: got %d", r.status)
		}
		var line string
		waitFor(t, 5*time.Second, "the access log line", func() bool {
			for l := range strings.SplitSeq(a.p.log()[before:], "\n") {
				if strings.Contains(l, `"request"`) && strings.Contains(l, `"status":401`) {
					line = l
					return true
				}
			}
			return false
		})
		if len(line) > 1024 {
			t.Errorf("access log line of a %d-byte path: %d bytes, want the path bounded (at most 1 KiB a line)", len(path), len(line))
		}
		t.Logf("one request with a %d-byte path: a %d-byte access log line", len(path), len(line))
	})

	t.Run("many distinct tokens leave nothing behind", func(t *testing.T) {
		// Rounds of distinct tokens, far more than cache_entries: the
		// second and third rounds must not grow what the first left (the
		// upstream's keep-alive pool, the heap the cache settled in).
		const n, rounds, workers = 2000, 3, 8
		before := a.settled(t, a.snapshot(t), 0)
		misses := metricValue(t, a.client, metrics, "embedtoken_sidecar_cache_misses_total")
		var first, last loadSnapshot
		for round := range rounds {
			toks := make([]string, n)
			for i := range toks {
				toks[i] = a.ec.sign("at+jwt", a.outerClaims(map[string]any{"orders": a.inner("")}))
			}
			start := time.Now()
			var wg sync.WaitGroup
			var mu sync.Mutex
			codes := map[int]int{}
			for w := range workers {
				wg.Go(func() {
					c := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1}, Timeout: 15 * time.Second}
					defer c.CloseIdleConnections()
					for i := w; i < n; i += workers {
						req, _ := http.NewRequest(http.MethodGet, a.url("/orders/1"), nil)
						req.Header.Set("Authorization", "Bearer "+toks[i])
						code := -1
						if resp, err := c.Do(req); err == nil {
							_, _ = io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							code = resp.StatusCode
						}
						mu.Lock()
						codes[code]++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			took := time.Since(start)
			if codes[http.StatusOK] != n {
				t.Errorf("round %d, %d distinct tokens: answers %v, want all 200", round+1, n, codes)
			}
			last = a.settled(t, before, 2+3*workers)
			if round == 0 {
				first = last
			}
			t.Logf("round %d: %d distinct tokens (cache_entries %d) in %s by %d keep-alive clients: %v", round+1, n, cacheEntries, took.Round(time.Millisecond), workers, last)
		}
		if d := metricValue(t, a.client, metrics, "embedtoken_sidecar_cache_misses_total") - misses; d < rounds*n {
			t.Errorf("cache misses %v for %d distinct tokens", d, rounds*n)
		}
		if last.fds > first.fds+2 || last.goroutines > first.goroutines+2 || last.rssKB > first.rssKB+8<<10 {
			t.Errorf("after %d rounds: %v; after the first: %v", rounds, last, first)
		}
		t.Logf("before: %v", before)
	})

	t.Run("connection churn and idle keep-alive connections leave nothing behind", func(t *testing.T) {
		before := a.settled(t, a.snapshot(t), 0)
		// 1000 connections held idle after one request each, then closed.
		var conns []net.Conn
		for range 1000 {
			c, err := net.DialTimeout("tcp", a.listen, 3*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(c, "GET /orders/1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", outer)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		held := a.snapshot(t)
		for _, c := range conns {
			c.Close()
		}
		// 2000 connections that send nothing and close.
		for range 2000 {
			c, err := net.DialTimeout("tcp", a.listen, 3*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
		}
		after := a.settled(t, before, 2)
		if after.fds > before.fds+2 || after.goroutines > before.goroutines+2 {
			t.Errorf("after 1000 idle keep-alive and 2000 empty connections: %v, before %v", after, before)
		}
		t.Logf("1000 idle keep-alive connections: before %v; held %v; after closing them and 2000 empty connections %v", before, held, after)
	})
	a.p.stop(t)
}

// TestLoadStalledHeaders: connections that send part of a request header
// and stall (slowloris) fill the admin listener (64) and a sidecar
// listener (max_connections 20): a probe and a request still get in after
// about a second, not after the 10 s header timeout.
func TestLoadStalledHeaders(t *testing.T) {
	a := newAdv(t, advOptions{LogLevel: "info", SidecarExtra: "  max_connections = 20\n"})
	outer, _ := a.outer()
	for _, tc := range []struct {
		name, addr string
		n          int
		url, auth  string
	}{
		{"admin listener (64)", a.admin, 70, "http://" + a.admin + "/healthz", ""},
		{"sidecar listener (max_connections 20)", a.listen, 25, a.url("/orders/1"), "Bearer " + outer},
	} {
		var stalled []net.Conn
		for range tc.n {
			c, err := net.DialTimeout("tcp", tc.addr, 3*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			stalled = append(stalled, c)
			_, _ = io.WriteString(c, "GET / HTTP/1.1\r\n") // then nothing
		}
		time.Sleep(300 * time.Millisecond)
		start := time.Now()
		c := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 20 * time.Second}
		req, _ := http.NewRequest(http.MethodGet, tc.url, nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		code := 0
		resp, err := c.Do(req)
		if err == nil {
			code = resp.StatusCode
			resp.Body.Close()
		}
		took := time.Since(start)
		if code != http.StatusOK || took > 4*time.Second {
			t.Errorf("%s with %d stalled connections: got %d %v after %s, want 200 within about a second", tc.name, tc.n, code, err, took)
		}
		t.Logf("%s: %d connections sent a partial header and stalled; a request got %d after %s", tc.name, tc.n, code, took.Round(time.Millisecond))
		for _, c := range stalled {
			c.Close()
		}
	}
	a.p.stop(t)
}
