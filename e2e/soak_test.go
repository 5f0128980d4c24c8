package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Soak bounds. The run is opt-in (EMBEDTOKEN_SOAK=1) and bounded both in
// time and in requests.
const (
	soakEnv         = "EMBEDTOKEN_SOAK"
	soakDuration    = 60 * time.Second
	soakWarmup      = 10 * time.Second
	soakMaxRequests = 2_000_000
	soakWorkers     = 8
	// soakGoroutineSlack is how many goroutines the sidecar may hold after
	// the load beyond what it held after the warm-up (idle connections
	// closing, timers).
	soakGoroutineSlack = 10
	// soakRSSGrowth is the tolerated RSS growth from the end of the warm-up
	// to the end of the run: 25% or 16 MiB, whichever is larger.
	soakRSSGrowth    = 0.25
	soakRSSGrowthMin = 16 << 20
)

// TestSoak runs about a minute of mixed load through a real sidecar: valid
// tokens (cached and fresh), tokens it refuses, public paths. It requires
// zero unexpected answers, no goroutine growth (go_goroutines on /metrics)
// and a flat RSS (VmRSS), and logs the figures.
func TestSoak(t *testing.T) {
	if os.Getenv(soakEnv) != "1" {
		t.Skipf("e2e: set %s=1 to run the soak test (about %s)", soakEnv, soakDuration)
	}
	// A small verified-token cache fills during the warm-up, so that what
	// follows measures leaks, not the bounded cache growing (at the default
	// 10000 entries it grows the RSS by about 35 MiB before it is full).
	a := newAdv(t, advOptions{LogLevel: "warn", SidecarExtra: "  cache_entries    = 500"})
	pid := a.p.cmd.Process.Pid
	metrics := "http://" + a.admin + "/metrics"

	// A pool of valid tokens (the verified-token cache serves most
	// requests) and a stream of fresh ones (full verification).
	pool := make([]string, 64)
	for i := range pool {
		pool[i], _ = a.outer()
	}
	fresh := make(chan string, 256)
	stopMint := make(chan struct{})
	go func() {
		for {
			o, _ := a.outer()
			select {
			case fresh <- o:
			case <-stopMint:
				return
			}
		}
	}()
	defer close(stopMint)
	bad := []struct {
		token string
		want  int
	}{
		{flip(pool[0]), http.StatusUnauthorized},
		{"not-a-jwt", http.StatusUnauthorized},
		{a.unknownKid("soak-unknown"), http.StatusUnauthorized},
	}

	var (
		total, unexpected atomic.Int64
		mu                sync.Mutex
		firstErrors       []string
		stop              = make(chan struct{})
		wg                sync.WaitGroup
	)
	note := func(s string) {
		unexpected.Add(1)
		mu.Lock()
		if len(firstErrors) < 5 {
			firstErrors = append(firstErrors, s)
		}
		mu.Unlock()
	}
	// The upstream keeps nothing: a soak must not grow the test's memory.
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
				a.up.take()
			}
		}
	}()
	start := time.Now()
	for w := range soakWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4}, Timeout: 10 * time.Second}
			defer c.CloseIdleConnections()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if total.Add(1) > soakMaxRequests {
					return
				}
				path, token, want := "/orders/1", pool[(i*soakWorkers+w)%len(pool)], http.StatusOK
				switch i % 20 {
				case 1:
					token = <-fresh
				case 2:
					b := bad[(i/20)%len(bad)]
					token, want = b.token, b.want
				case 3:
					path, token = "/healthz", ""
				}
				req, _ := http.NewRequest(http.MethodGet, a.url(path), nil)
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				resp, err := c.Do(req)
				if err != nil {
					note(err.Error())
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != want {
					note(fmt.Sprintf("%s: %d, want %d", path, resp.StatusCode, want))
				}
			}
		}()
	}

	type sample struct {
		at         time.Duration
		rss        int64
		goroutines float64
	}
	var samples []sample
	take := func() sample {
		return sample{time.Since(start), vmRSS(t, pid), metricValue(t, a.client, metrics, "go_goroutines")}
	}
	for time.Since(start) < soakDuration && total.Load() < soakMaxRequests {
		time.Sleep(5 * time.Second)
		samples = append(samples, take())
	}
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)
	// Let idle connections close, then sample the quiet process.
	a.client.CloseIdleConnections()
	time.Sleep(2 * time.Second)
	end := take()

	var warm sample
	for _, s := range samples {
		if s.at >= soakWarmup {
			warm = s
			break
		}
	}
	var peak int64
	var lines []string
	for _, s := range samples {
		peak = max(peak, s.rss)
		lines = append(lines, fmt.Sprintf("%3.0fs rss %5.1f MiB goroutines %3.0f", s.at.Seconds(), mib(s.rss), s.goroutines))
	}
	n := total.Load()
	t.Logf("soak: %d requests in %s (%.0f/s), %d unexpected; RSS after warm-up %.1f MiB, peak %.1f MiB, end %.1f MiB; goroutines after warm-up %.0f, end (idle) %.0f\n%s",
		n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), unexpected.Load(),
		mib(warm.rss), mib(peak), mib(end.rss), warm.goroutines, end.goroutines, strings.Join(lines, "\n"))
	if u := unexpected.Load(); u != 0 {
		t.Errorf("%d unexpected answers, first: %q", u, firstErrors)
	}
	if end.goroutines > warm.goroutines+soakGoroutineSlack {
		t.Errorf("goroutines grew from %.0f to %.0f", warm.goroutines, end.goroutines)
	}
	limit := max(int64(float64(warm.rss)*(1+soakRSSGrowth)), warm.rss+soakRSSGrowthMin)
	if last := samples[len(samples)-1].rss; last > limit {
		t.Errorf("RSS grew from %.1f MiB to %.1f MiB (limit %.1f MiB)", mib(warm.rss), mib(last), mib(limit))
	}
	a.healthy(t)
	a.p.stop(t)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// vmRSS reads VmRSS of pid from /proc (bytes).
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read /proc/%d/status: %v", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
