package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// gatewaySuite measures embedtoken behind nginx: nginx alone in front of
// the upstream, against nginx running the shipped
// deploy/nginx/embedtoken.conf (auth_request to a decision-only sidecar)
// with one token reused (warm) and with a pool of distinct tokens larger
// than the cache (cold); the same file with its decision location pointed
// at a Go server that answers 200 at once (what auth_request costs
// whatever decides: the floor) and at oauth2-proxy's /oauth2/auth in JWT
// bearer mode (the peer). nginx runs as a single process (master_process
// off) on the servers' CPU, like the deciders and the upstream; CPU per
// request is nginx's plus the decider's over the measured window.
// Samples go to rep.Gateway.
func gatewaySuite(c *config, rep *report, w *wrkRunner, self, work, logs string) error {
	ports := map[string]int{}
	for _, n := range []string{"upstream", "nginx", "authz", "admin", "keys", "okauth", "oauth2"} {
		p, err := freePort()
		if err != nil {
			return err
		}
		ports[n] = p
	}
	upURL := "http://" + addr(ports["upstream"])
	dev, ks, src, trust, err := benchTrust(c.repo, ports["keys"])
	if err != nil {
		return err
	}
	defer ks.close()
	sidecar := fmt.Sprintf("sidecar {\n  api              = \"orders\"\n  public_paths     = [\"/healthz\"]\n  authz_listen     = %q\n  admin_listen     = %q\n  cache_entries    = %d\n  shutdown_timeout = \"2s\"\n}\n",
		addr(ports["authz"]), addr(ports["admin"]), c.cacheEntries)
	dir, err := writeConfigDir(work, "gateway", longLived(src), map[string]string{"trust.hcl": trust, "sidecars/orders.hcl": sidecar})
	if err != nil {
		return err
	}
	warmFile, coldFile := filepath.Join(work, "gw-warm.tokens"), filepath.Join(work, "gw-cold.tokens")
	warmTok, err := mintOuterTokens(dir, dev, shippedScopes, 1, warmFile)
	if err != nil {
		return err
	}
	if _, err := mintOuterTokens(dir, dev, shippedScopes, c.pool, coldFile); err != nil {
		return err
	}

	shipped, err := os.ReadFile(filepath.Join(c.repo, "deploy", "nginx", "embedtoken.conf"))
	if err != nil {
		return err
	}
	gw := addr(ports["nginx"])
	// One file for every decider, so that nginx's side is the same: only
	// the decision location's upstream (and, for oauth2-proxy, its path)
	// differ.
	withDecider := func(decider, path string) string {
		return strings.NewReplacer("127.0.0.1:8080", gw, "127.0.0.1:8081", addr(ports["upstream"]),
			"127.0.0.1:8442", decider, "/authz/forward", path).Replace(string(shipped))
	}
	authzConf := withDecider(addr(ports["authz"]), "/authz/forward")
	confs := map[string]string{"authz.conf": authzConf, "alone.conf": "",
		"floor.conf": withDecider(addr(ports["okauth"]), "/authz/forward"), "oauth2.conf": withDecider(addr(ports["oauth2"]), "/oauth2/auth")}
	if c.nginxBase != "" {
		// Another version of the shipped file, to compare with (-nginx-base).
		b, err := os.ReadFile(c.nginxBase)
		if err != nil {
			return err
		}
		shipped = b
		confs["base.conf"] = withDecider(addr(ports["authz"]), "/authz/forward")
	}
	aloneConf := fmt.Sprintf(`upstream bench_service { server %s; keepalive 32; }
server {
    listen %s;
    location / {
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_pass http://bench_service;
    }
}
`, addr(ports["upstream"]), gw)
	nginxDir := filepath.Join(work, "nginx")
	confs["alone.conf"] = aloneConf
	for name, body := range confs {
		main := fmt.Sprintf("master_process off;\ndaemon off;\nworker_processes 1;\npid %[1]s/%[2]s.pid;\nerror_log %[3]s warn;\nevents { worker_connections 1024; }\nhttp {\n    access_log off;\n    include %[1]s/%[2]s.inc;\n}\n", nginxDir, name, filepath.Join(logs, "nginx-error.log"))
		if err := os.MkdirAll(nginxDir, 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(nginxDir, name+".inc"), []byte(body), 0o600); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(nginxDir, name), []byte(main), 0o600); err != nil {
			return err
		}
	}
	startNginx := func(conf string) func() (*proc, error) {
		return func() (*proc, error) {
			return start(logs, "nginx", c.serverCPU, baseEnv(), c.nginx, "-p", nginxDir+"/", "-c", filepath.Join(nginxDir, conf), "-e", filepath.Join(logs, "nginx-error.log"))
		}
	}

	up, err := start(logs, "gw-upstream", c.serverCPU, baseEnv(), self, "upstream", addr(ports["upstream"]))
	if err != nil {
		return err
	}
	defer up.stop()
	if err := up.waitReady(upURL + "/"); err != nil {
		return err
	}
	admin := "http://" + addr(ports["admin"])
	sc, err := start(logs, "gw-sidecar", c.serverCPU, baseEnv(), c.embedtoken, "sidecar", "--config", dir, "--config", filepath.Join(dir, "sidecars", "orders.hcl"))
	if err != nil {
		return err
	}
	defer sc.stop()
	if err := sc.waitReady(admin + "/readyz"); err != nil {
		return err
	}
	ok, err := start(logs, "gw-okauth", c.serverCPU, baseEnv(), self, "ok", addr(ports["okauth"]))
	if err != nil {
		return err
	}
	defer ok.stop()
	if err := ok.waitReady("http://" + addr(ports["okauth"]) + "/"); err != nil {
		return err
	}
	type gwTarget struct {
		name, conf, tokens string
		decider            *proc
	}
	targets := []gwTarget{
		{"nginx-alone", "alone.conf", warmFile, nil},
		{"nginx-authz-warm", "authz.conf", warmFile, sc},
		{"nginx-authz-cold", "authz.conf", coldFile, sc},
		{"nginx-authreq-floor", "floor.conf", warmFile, ok},
	}
	if c.nginxBase != "" {
		targets = append(targets, gwTarget{"nginx-authz-warm-base", "base.conf", warmFile, sc})
	}
	if c.oauth2proxy != "" {
		o2 := addr(ports["oauth2"])
		// --set-authorization-header: like the sidecar, it returns an
		// Authorization for the upstream (the bearer token it verified).
		args := append(oauth2ProxyArgs(o2, upURL, ks.url), "--set-authorization-header=true")
		o2p, err := start(logs, "gw-oauth2-proxy", c.serverCPU, baseEnv(), c.oauth2proxy, args...)
		if err != nil {
			return err
		}
		defer o2p.stop()
		if err := o2p.waitReady("http://" + o2 + "/ping"); err != nil {
			return err
		}
		targets = append(targets, gwTarget{"nginx-oauth2-proxy", "oauth2.conf", warmFile, o2p})
	}
	hdr := http.Header{"Authorization": {"Bearer " + warmTok}}
	for round := 1; round <= c.rounds; round++ {
		for i := range targets {
			t := targets[(i+round-1)%len(targets)]
			tg := target{name: t.name, url: "http://" + gw, tokenFile: t.tokens, start: startNginx(t.conf), fixed: t.decider}
			s, err := measureGateway(c, w, tg, hdr, up)
			if err != nil {
				return fmt.Errorf("%s, round %d: %w", t.name, round, err)
			}
			s.Round = round
			rep.Gateway = append(rep.Gateway, s)
			fmt.Fprintf(os.Stderr, "loadbench: round %d %-19s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  %.3f CPU s/10k (decider %.3f)  non-2xx %d\n",
				round, t.name, s.RPS, s.P50ms, s.P99ms, s.CPUPer10k, s.AuthCPUPer10k, s.Non2xx)
		}
	}
	return nil
}

// runOK answers 200 with an empty body to everything: the cheapest
// possible decision, for the auth_request floor.
func runOK(addr string) error {
	return serveUntilSignal(addr, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))
}

// measureGateway is measureProxy for an nginx that needs no readiness URL:
// it polls the gateway itself with the token until it answers 200. t.fixed
// is the decider (nil: none); its CPU over the measured window is added
// to nginx's and kept apart in AuthCPUPer10k; the upstream's (up) is added
// too, so that CPUPer10k is all that the servers' CPU spends per request.
func measureGateway(c *config, w *wrkRunner, t target, hdr http.Header, up *proc) (sample, error) {
	p, err := t.start()
	if err != nil {
		return sample{}, err
	}
	defer p.stop()
	// Ready when a request with the token passes (oauth2-proxy has no
	// public path: /healthz would be refused there).
	deadline := time.Now().Add(readyTimeout)
	for {
		_, err := check("GET", t.url+"/orders/42", "", hdr.Clone())
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return sample{}, fmt.Errorf("%w\n%s", err, p.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := w.get(t.url, t.tokenFile, c.warmup); err != nil {
		return sample{}, err
	}
	// CPU of a process that runs for the whole suite (nil: none).
	cpuOf := func(p *proc) (float64, error) {
		if p == nil {
			return 0, nil
		}
		return cpuSeconds(p.pid())
	}
	var deciderCPU, upCPU float64
	s, err := measured(p, "", func() (wrkResult, error) {
		d0, err1 := cpuOf(t.fixed)
		u0, err2 := cpuOf(up)
		if err := errors.Join(err1, err2); err != nil {
			return wrkResult{}, err
		}
		r, err := w.get(t.url, t.tokenFile, c.duration)
		d1, err1 := cpuOf(t.fixed)
		u1, err2 := cpuOf(up)
		deciderCPU, upCPU = d1-d0, u1-u0
		return r, errors.Join(err, err1, err2)
	}, t.name)
	if s.Requests > 0 {
		s.AuthCPUPer10k = deciderCPU / float64(s.Requests) * 1e4
		s.CPUPer10k += s.AuthCPUPer10k + upCPU/float64(s.Requests)*1e4
	}
	return s, err
}

func authCPU(s sample) float64 { return s.AuthCPUPer10k }

// gatewayMarkdown is the gateway suite's table and ratios.
func (r *report) gatewayMarkdown() string {
	if len(r.Gateway) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("| gateway configuration | req/s | p50 ms | p99 ms | CPU s / 10k req (nginx + decider + upstream) | of which the decider |\n|---|---|---|---|---|---|\n")
	for _, c := range configs(r.Gateway) {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", c, spreadOf(pick(r.Gateway, c, rps)).fmt(0),
			spreadOf(pick(r.Gateway, c, p50)).fmt(2), spreadOf(pick(r.Gateway, c, p99)).fmt(2), spreadOf(pick(r.Gateway, c, cpu)).fmt(3),
			spreadOf(pick(r.Gateway, c, authCPU)).fmt(3))
	}
	b.WriteString("\n| ratio | value | goal |\n|---|---|---|\n")
	for _, q := range []struct {
		label, a, b, goal string
		f                 func(sample) float64
	}{
		{"nginx+auth_request warm / nginx alone req/s", "nginx-authz-warm", "nginx-alone", "≥ 0.6", rps},
		{"nginx+auth_request cold / nginx alone req/s", "nginx-authz-cold", "nginx-alone", "", rps},
		{"auth_request floor (200 at once) / nginx alone req/s", "nginx-authreq-floor", "nginx-alone", "", rps},
		{"warm / auth_request floor req/s", "nginx-authz-warm", "nginx-authreq-floor", "", rps},
		{"warm / oauth2-proxy auth_request req/s", "nginx-authz-warm", "nginx-oauth2-proxy", "≥ 4", rps},
		{"cold / oauth2-proxy auth_request req/s", "nginx-authz-cold", "nginx-oauth2-proxy", "", rps},
		// On CPU per request (all servers share one CPU, so its inverse is
		// the throughput a quiet machine would give): the same ratios.
		{"nginx alone / warm CPU per request (≈ warm / alone req/s, CPU-bound)", "nginx-alone", "nginx-authz-warm", "≥ 0.6", cpu},
		{"nginx alone / cold CPU per request", "nginx-alone", "nginx-authz-cold", "", cpu},
		{"nginx alone / floor CPU per request", "nginx-alone", "nginx-authreq-floor", "", cpu},
		{"oauth2-proxy / warm CPU per request (≈ warm / oauth2-proxy req/s)", "nginx-oauth2-proxy", "nginx-authz-warm", "≥ 4", cpu},
		{"oauth2-proxy / embedtoken warm, decider CPU per request", "nginx-oauth2-proxy", "nginx-authz-warm", "", authCPU},
		{"embedtoken warm / floor, decider CPU per request", "nginx-authz-warm", "nginx-authreq-floor", "", authCPU},
	} {
		if xs := ratio(r.Gateway, q.a, q.b, q.f); len(xs) > 0 {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", q.label, spreadOf(xs).fmt(2), q.goal)
		}
	}
	return b.String() + "\n"
}
