// Command loadbench measures what embedding costs, side by side on
// loopback: a small upstream served directly, through a bare Go reverse
// proxy, through `embedtoken sidecar` with a warm and a cold verified-token
// cache, and through oauth2-proxy in JWT bearer mode; and the requests per
// second of `embedtoken hook` for catalogs of growing size. wrk is the load
// generator, pinned to one CPU and the servers to another. Configurations
// are interleaved in rounds so that drift of the shared machine spreads over
// all of them. Every run stops by itself; only 127.0.0.1 is used.
//
//	loadbench -embedtoken BIN [-oauth2-proxy BIN] [-rounds 5] [-duration 10s] [-out DIR]
//
// e2e/bench/run.sh builds everything and runs it; BENCHMARKS.md has the
// method and results. The subcommands "upstream ADDR" and "floor ADDR
// UPSTREAM" are the helper servers it starts as separate processes.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

func main() {
	if len(os.Args) >= 2 {
		var err error
		switch os.Args[1] {
		case "upstream":
			err = runUpstream(os.Args[2])
		case "floor":
			err = runFloor(os.Args[2], os.Args[3])
		case "ok":
			err = runOK(os.Args[2])
		case "grpc-load":
			err = runGRPCLoad(os.Args[2:])
		default:
			err = run(os.Args[1:])
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadbench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(nil); err != nil {
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		os.Exit(1)
	}
}

type config struct {
	embedtoken   string
	oauth2proxy  string
	repo         string
	out          string
	suites       string
	rounds       int
	duration     time.Duration
	warmup       time.Duration
	conns        int
	pool         int
	cacheEntries int
	hookRounds   int
	hookDuration time.Duration
	serverCPU    string
	loadCPU      string
	nginx        string
	setup        string
	floorBin     string
	envoy        string
	grpcCalls    int
	nginxBase    string
	bBin         string // a second sidecar binary, measured beside the first (-embedtoken-b)
	bEnv         string // its extra environment (-env-b)
}

func run(args []string) error {
	var c config
	fs := flag.NewFlagSet("loadbench", flag.ContinueOnError)
	fs.StringVar(&c.embedtoken, "embedtoken", "", "embedtoken binary (required)")
	fs.StringVar(&c.oauth2proxy, "oauth2-proxy", "", "oauth2-proxy binary (optional: without it that peer is skipped)")
	fs.StringVar(&c.repo, "repo", ".", "repository root (for hcl/catalog.hcl)")
	fs.StringVar(&c.out, "out", "", "folder for results.json, summary.md and logs (default: a new temporary folder)")
	fs.StringVar(&c.suites, "suites", "proxy,hook", "what to run: proxy, hook, gateway (needs -nginx), grpc (needs -envoy), or several")
	fs.StringVar(&c.nginx, "nginx", "", "nginx binary with auth_request, for the gateway suite")
	fs.StringVar(&c.nginxBase, "nginx-base", "", "another version of deploy/nginx/embedtoken.conf for the gateway suite to compare with, warm (optional)")
	fs.StringVar(&c.envoy, "envoy", "", "embedtoken-envoy binary for the grpc suite (several, comma-separated: compared run by run)")
	fs.IntVar(&c.grpcCalls, "grpc-calls", 20000, "measured Check calls of each concurrent grpc run (a fifth of it one at a time and cold)")
	fs.IntVar(&c.rounds, "rounds", 5, "rounds of the proxy configurations")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured time of each proxy run")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "unmeasured load before each run")
	fs.IntVar(&c.conns, "conns", 32, "wrk connections")
	fs.IntVar(&c.pool, "pool", 4096, "distinct tokens of the cold configuration")
	fs.IntVar(&c.cacheEntries, "cache-entries", 1024, "the sidecar's cache_entries (must be well under -pool)")
	fs.IntVar(&c.hookRounds, "hook-rounds", 3, "rounds of the hook catalogs")
	fs.DurationVar(&c.hookDuration, "hook-duration", 5*time.Second, "measured time of each hook run")
	fs.StringVar(&c.serverCPU, "server-cpu", "0", "taskset CPU list of the servers (empty: no pinning)")
	fs.StringVar(&c.loadCPU, "load-cpu", "1", "taskset CPU list of wrk (empty: no pinning)")
	fs.StringVar(&c.floorBin, "floor-bin", "", "bare proxy binary (cmd/bareproxy) for the floor configuration (default: loadbench's own floor subcommand)")
	fs.StringVar(&c.bBin, "embedtoken-b", "", "a second embedtoken binary: its sidecar runs as sidecar-warm-b and sidecar-cold-b in the same rounds (paired A/B)")
	fs.StringVar(&c.bEnv, "env-b", "", "extra environment of the -b sidecar, KEY=VALUE[,KEY=VALUE] (e.g. GOGC=50); without -embedtoken-b, -embedtoken is used")
	fs.StringVar(&c.setup, "setup", setupFirst, "proxy suite set-up: first, or second (issue 14's: see setup2.go)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.applySetup(fs); err != nil {
		return err
	}
	if c.embedtoken == "" {
		return errors.New("-embedtoken is required")
	}
	if err := checkEnvList(c.bEnv); err != nil {
		return err
	}
	if c.pool < 2*c.cacheEntries {
		return errors.New("-pool must be at least twice -cache-entries, or the cold run hits the cache")
	}
	if runtime.NumCPU() < 2 {
		c.serverCPU, c.loadCPU = "", ""
	}
	if c.envoy != "" {
		var abs []string
		for _, p := range strings.Split(c.envoy, ",") {
			a, err := filepath.Abs(p)
			if err != nil {
				return err
			}
			abs = append(abs, a)
		}
		c.envoy = strings.Join(abs, ",")
	}
	for _, p := range []*string{&c.embedtoken, &c.oauth2proxy, &c.repo, &c.floorBin, &c.nginxBase, &c.bBin} {
		if *p != "" {
			abs, err := filepath.Abs(*p)
			if err != nil {
				return err
			}
			*p = abs
		}
	}
	if c.out == "" {
		d, err := os.MkdirTemp("", "loadbench-")
		if err != nil {
			return err
		}
		c.out = d
	}
	logs := filepath.Join(c.out, "logs")
	work, err := os.MkdirTemp("", "loadbench-work-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work) // keys and tokens never outlive the run
	if err := os.MkdirAll(logs, 0o700); err != nil {
		return err
	}
	w, err := newWrkRunner(work, c.loadCPU, 1, c.conns)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	rep := &report{Machine: machine(), Started: time.Now().UTC().Format(time.RFC3339),
		Settings: fmt.Sprintf("set-up %s: wrk -t1 -c%d, %s measured after %s warm-up, servers on cpu %q, wrk on cpu %q, cache_entries %d, cold pool %d tokens",
			c.setup, c.conns, c.duration, c.warmup, c.serverCPU, c.loadCPU, c.cacheEntries, c.pool)}
	fmt.Fprintf(os.Stderr, "loadbench: results in %s\n", c.out)
	if strings.Contains(c.suites, "proxy") {
		if err := proxySuite(&c, rep, w, self, work, logs); err != nil {
			return err
		}
	}
	if strings.Contains(c.suites, "gateway") && c.nginx != "" {
		if err := gatewaySuite(&c, rep, w, self, work, logs); err != nil {
			return err
		}
	}
	if strings.Contains(c.suites, "grpc") && c.envoy != "" {
		if err := grpcSuite(&c, rep, self, work, logs); err != nil {
			return err
		}
	}
	if strings.Contains(c.suites, "hook") {
		if err := hookSuite(&c, rep, w, work, logs); err != nil {
			return err
		}
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.out, "results.json"), b, 0o644); err != nil {
		return err
	}
	summary := rep.markdown() + rep.gatewayMarkdown() + rep.grpcMarkdown()
	if err := os.WriteFile(filepath.Join(c.out, "summary.md"), []byte(summary), 0o644); err != nil {
		return err
	}
	fmt.Print(summary)
	return nil
}

// machine describes where the numbers come from.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%d CPUs (%s), %s %s/%s", runtime.NumCPU(), model, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// check sends one request and wants 200.
func check(method, url, body string, header http.Header) ([]byte, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = header
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return b, fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
	return b, nil
}

// scrape returns the value of one unlabelled metric at a Prometheus
// endpoint, or -1.
func scrape(url, name string) float64 {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}
