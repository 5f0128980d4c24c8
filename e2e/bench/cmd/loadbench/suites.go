package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// sample is one measured run of one configuration.
type sample struct {
	Config    string  `json:"config"`
	Round     int     `json:"round"`
	RPS       float64 `json:"rps"`
	P50ms     float64 `json:"p50_ms"`
	P99ms     float64 `json:"p99_ms"`
	Requests  int64   `json:"requests"`
	Non2xx    int64   `json:"non_2xx"`
	Errors    int64   `json:"socket_errors"`
	CPUPer10k float64 `json:"cpu_s_per_10k"` // of the measured process
	PeakRSSMB float64 `json:"peak_rss_mib"`  // VmHWM of the measured process
	CacheHit  float64 `json:"cache_hit_ratio,omitempty"`
	Tokens    int     `json:"tokens_signed,omitempty"` // per hook request
	// AuthCPUPer10k is the gateway suite's decider (already in CPUPer10k).
	AuthCPUPer10k float64 `json:"auth_cpu_s_per_10k,omitempty"`
}

// target is one configuration: how to start its process (nil: measure an
// already running one), where to send load, which tokens.
type target struct {
	name      string
	url       string // load goes here
	readyURL  string
	metrics   string // Prometheus endpoint with the cache counters, if any
	tokenFile string
	start     func() (*proc, error)
	fixed     *proc // a process that runs for the whole suite (direct)
}

func proxySuite(c *config, rep *report, w *wrkRunner, self, work, logs string) error {
	ports := map[string]int{}
	for _, n := range []string{"upstream", "floor", "sidecar", "admin", "keys", "oauth2"} {
		p, err := freePort()
		if err != nil {
			return err
		}
		ports[n] = p
	}
	upURL := "http://" + addr(ports["upstream"])
	pc, err := c.proxyCatalog()
	if err != nil {
		return err
	}
	dev, err := newDevIssuerFor("http://"+addr(ports["keys"]), pc.outerLifetime, pc.typJWT)
	if err != nil {
		return err
	}
	ks, err := startKeyServer(ports["keys"], dev.jwks)
	if err != nil {
		return err
	}
	defer ks.close()
	trust := fmt.Sprintf(`trust "bench" {
  issuer     = %q
  jwks_url   = "%s/.well-known/jwks.json"
  algorithms = ["RS256"]
  audience   = [%q]
%s}
`, ks.url, ks.url, benchAudience, pc.trustExtra)
	sidecar := fmt.Sprintf(`sidecar {
  api              = %q
  listen           = %q
  upstream         = %q
  admin_listen     = %q
  cache_entries    = %d
  shutdown_timeout = "2s"
}
`, pc.api, addr(ports["sidecar"]), upURL, addr(ports["admin"]), c.cacheEntries)
	dir, err := writeConfigDir(work, "proxy", pc.src, map[string]string{"trust.hcl": trust, "sidecars/orders.hcl": sidecar})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "loadbench: minting %d outer tokens (RS256-2048 outer, set-up %s, sidecar fronts %s)\n", c.pool, c.setup, pc.api)
	warmFile, coldFile := filepath.Join(work, "warm.tokens"), filepath.Join(work, "cold.tokens")
	warmTok, err := mintOuterTokens(dir, dev, pc.scopes, 1, warmFile)
	if err != nil {
		return err
	}
	if _, err := mintOuterTokens(dir, dev, pc.scopes, c.pool, coldFile); err != nil {
		return err
	}
	rep.OuterTokenBytes = len(warmTok)

	up, err := start(logs, "upstream", c.serverCPU, baseEnv(), self, "upstream", addr(ports["upstream"]))
	if err != nil {
		return err
	}
	defer up.stop()
	if err := up.waitReady(upURL + "/"); err != nil {
		return err
	}

	targets := []target{
		{name: "direct", url: upURL, tokenFile: warmFile, fixed: up},
		{name: "floor", url: "http://" + addr(ports["floor"]), readyURL: "http://" + addr(ports["floor"]) + "/readyz", tokenFile: warmFile,
			start: func() (*proc, error) {
				if c.floorBin != "" {
					return start(logs, "floor", c.serverCPU, baseEnv(), c.floorBin, addr(ports["floor"]), upURL)
				}
				return start(logs, "floor", c.serverCPU, baseEnv(), self, "floor", addr(ports["floor"]), upURL)
			}},
	}
	sidecarStart := func() (*proc, error) {
		return start(logs, "sidecar", c.serverCPU, baseEnv(), c.embedtoken, "sidecar", "--config", dir, "--config", filepath.Join(dir, "sidecars", "orders.hcl"))
	}
	admin := "http://" + addr(ports["admin"])
	targets = append(targets,
		target{name: "sidecar-warm", url: "http://" + addr(ports["sidecar"]), readyURL: admin + "/readyz", metrics: admin + "/metrics", tokenFile: warmFile, start: sidecarStart},
		target{name: "sidecar-cold", url: "http://" + addr(ports["sidecar"]), readyURL: admin + "/readyz", metrics: admin + "/metrics", tokenFile: coldFile, start: sidecarStart})
	if bStart := c.sidecarB(logs, dir); bStart != nil {
		targets = append(targets,
			target{name: "sidecar-warm-b", url: "http://" + addr(ports["sidecar"]), readyURL: admin + "/readyz", metrics: admin + "/metrics", tokenFile: warmFile, start: bStart},
			target{name: "sidecar-cold-b", url: "http://" + addr(ports["sidecar"]), readyURL: admin + "/readyz", metrics: admin + "/metrics", tokenFile: coldFile, start: bStart})
	}
	if c.oauth2proxy != "" {
		o2 := "http://" + addr(ports["oauth2"])
		targets = append(targets, target{name: "oauth2-proxy", url: o2, readyURL: o2 + "/ping", tokenFile: warmFile,
			start: func() (*proc, error) {
				return start(logs, "oauth2-proxy", c.serverCPU, baseEnv(), c.oauth2proxy, oauth2ProxyArgs(addr(ports["oauth2"]), upURL, ks.url)...)
			}})
	}

	hdr := http.Header{"Authorization": {"Bearer " + warmTok}}
	for round := 1; round <= c.rounds; round++ {
		// Rotate the order each round so no configuration always follows
		// the same one.
		for i := range targets {
			t := targets[(i+round-1)%len(targets)]
			s, err := measureProxy(c, w, t, hdr)
			if err != nil {
				return fmt.Errorf("%s, round %d: %w", t.name, round, err)
			}
			s.Round = round
			rep.Proxy = append(rep.Proxy, s)
			fmt.Fprintf(os.Stderr, "loadbench: round %d %-13s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  %.3f CPU s/10k  %5.1f MiB  non-2xx %d  errors %d  hit %.3f\n",
				round, t.name, s.RPS, s.P50ms, s.P99ms, s.CPUPer10k, s.PeakRSSMB, s.Non2xx, s.Errors, s.CacheHit)
		}
	}
	return nil
}

// measureProxy starts t's process, checks one request, warms up, measures.
func measureProxy(c *config, w *wrkRunner, t target, hdr http.Header) (sample, error) {
	p := t.fixed
	if p == nil {
		var err error
		if p, err = t.start(); err != nil {
			return sample{}, err
		}
		defer p.stop()
		if err := p.waitReady(t.readyURL); err != nil {
			return sample{}, err
		}
	}
	if _, err := check("GET", t.url+"/orders/42", "", hdr.Clone()); err != nil {
		return sample{}, fmt.Errorf("%w\n%s", err, p.tail())
	}
	if _, err := w.get(t.url, t.tokenFile, c.warmup); err != nil {
		return sample{}, err
	}
	return measured(p, t.metrics, func() (wrkResult, error) { return w.get(t.url, t.tokenFile, c.duration) }, t.name)
}

// measured runs load and takes the process's CPU, peak RSS and cache
// counters around it.
func measured(p *proc, metrics string, load func() (wrkResult, error), name string) (sample, error) {
	hits0, miss0 := scrape(metrics, "embedtoken_sidecar_cache_hits_total"), scrape(metrics, "embedtoken_sidecar_cache_misses_total")
	cpu0, err := cpuSeconds(p.pid())
	if err != nil {
		return sample{}, err
	}
	r, err := load()
	if err != nil {
		return sample{}, err
	}
	cpu1, err := cpuSeconds(p.pid())
	if err != nil {
		return sample{}, err
	}
	hwm, err := peakRSSKiB(p.pid())
	if err != nil {
		return sample{}, err
	}
	s := sample{Config: name, RPS: r.RPS, P50ms: r.P50ms, P99ms: r.P99ms, Requests: r.Requests, Non2xx: r.Non2xx, Errors: r.Errors,
		CPUPer10k: (cpu1 - cpu0) / float64(r.Requests) * 1e4, PeakRSSMB: float64(hwm) / 1024}
	if metrics != "" {
		hits, miss := scrape(metrics, "embedtoken_sidecar_cache_hits_total")-hits0, scrape(metrics, "embedtoken_sidecar_cache_misses_total")-miss0
		if hits+miss > 0 {
			s.CacheHit = hits / (hits + miss)
		}
	}
	if r.Non2xx > 0 {
		return s, fmt.Errorf("%d non-2xx answers:\n%s", r.Non2xx, p.tail())
	}
	return s, nil
}

// hookCase is one catalog for the hook.
type hookCase struct {
	name     string
	dir      string
	body     string // file
	tokens   int    // signed per request, nested ones included
	exposed  int
	listen   string
	adminURL string
}

func hookSuite(c *config, rep *report, w *wrkRunner, work, logs string) error {
	shipped, err := shippedCatalog(c.repo)
	if err != nil {
		return err
	}
	type spec struct {
		name   string
		src    string
		scopes []string
	}
	specs := []spec{{"shipped", shipped, shippedScopes}}
	for _, k := range []int{1, 5, 10, 20} {
		src, scopes := generatedCatalog(k)
		specs = append(specs, spec{fmt.Sprintf("K=%d", k), src, scopes})
	}
	var cases []hookCase
	for _, sp := range specs {
		var ports [3]int
		for i := range ports {
			if ports[i], err = freePort(); err != nil {
				return err
			}
		}
		hook := fmt.Sprintf(`hook {
  listen         = %q
  public_listen  = %q
  admin_listen   = %q
  api_key_header = "X-Embedtoken-Key"
  api_key        = env("EMBEDTOKEN_HOOK_KEY")
  timeout        = "2s"
}
`, addr(ports[0]), addr(ports[1]), addr(ports[2]))
		dir, err := writeConfigDir(work, "hook-"+strings.ReplaceAll(sp.name, "=", ""), sp.src, map[string]string{"hook.hcl": hook})
		if err != nil {
			return err
		}
		body, err := hydraBody(sp.scopes)
		if err != nil {
			return err
		}
		bodyFile := filepath.Join(dir, "hydra-body.json")
		if err := os.WriteFile(bodyFile, body, 0o600); err != nil {
			return err
		}
		signed, exposed, err := countTokens(dir, sp.scopes)
		if err != nil {
			return fmt.Errorf("%s: %w", sp.name, err)
		}
		cases = append(cases, hookCase{name: sp.name, dir: dir, body: bodyFile, tokens: signed, exposed: exposed,
			listen: "http://" + addr(ports[0]), adminURL: "http://" + addr(ports[2])})
	}
	for round := 1; round <= c.hookRounds; round++ {
		for i := range cases {
			hc := cases[(i+round-1)%len(cases)]
			s, err := measureHook(c, w, hc, logs)
			if err != nil {
				return fmt.Errorf("hook %s, round %d: %w", hc.name, round, err)
			}
			s.Round = round
			rep.Hook = append(rep.Hook, s)
			fmt.Fprintf(os.Stderr, "loadbench: round %d hook %-8s %7.0f req/s  p50 %6.2f ms  p99 %6.2f ms  %.3f CPU s/10k  %5.1f MiB  (%d tokens signed per request)\n",
				round, hc.name, s.RPS, s.P50ms, s.P99ms, s.CPUPer10k, s.PeakRSSMB, s.Tokens)
		}
	}
	return nil
}

// countTokens mints once in process: how many tokens a request signs, and
// how many land in the embedded map.
func countTokens(dir string, scopes []string) (signed, exposed int, err error) {
	cat, err := loadCatalog(dir)
	if err != nil {
		return 0, 0, err
	}
	return countMinted(cat, scopes)
}

func measureHook(c *config, w *wrkRunner, hc hookCase, logs string) (sample, error) {
	p, err := start(logs, "hook-"+strings.ReplaceAll(hc.name, "=", ""), c.serverCPU, baseEnv("EMBEDTOKEN_HOOK_KEY="+hookKey), c.embedtoken, "hook", "--config", hc.dir)
	if err != nil {
		return sample{}, err
	}
	defer p.stop()
	if err := p.waitReady(hc.adminURL + "/readyz"); err != nil {
		return sample{}, err
	}
	body, err := os.ReadFile(hc.body)
	if err != nil {
		return sample{}, err
	}
	out, err := check("POST", hc.listen+"/hooks/hydra", string(body), http.Header{"Content-Type": {"application/json; charset=UTF-8"}, "X-Embedtoken-Key": {hookKey}})
	if err != nil {
		return sample{}, fmt.Errorf("%w\n%s", err, p.tail())
	}
	var resp struct {
		Session struct {
			AccessToken map[string]json.RawMessage `json:"access_token"`
		} `json:"session"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		return sample{}, err
	}
	var embedded map[string]string
	if err := json.Unmarshal(resp.Session.AccessToken["embedded_tokens"], &embedded); err != nil || len(embedded) != hc.exposed {
		return sample{}, fmt.Errorf("hook answered %d embedded tokens, want %d (%v)", len(embedded), hc.exposed, err)
	}
	load := func(d time.Duration) (wrkResult, error) {
		return w.post(hc.listen, "/hooks/hydra", hc.body, "X-Embedtoken-Key", hookKey, d)
	}
	if _, err := load(time.Second); err != nil {
		return sample{}, err
	}
	s, err := measured(p, "", func() (wrkResult, error) { return load(c.hookDuration) }, hc.name)
	s.Tokens = hc.tokens
	return s, err
}
