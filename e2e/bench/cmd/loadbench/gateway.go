package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// gatewaySuite measures embedtoken behind nginx: nginx alone in front of
// the upstream, against nginx running the shipped
// deploy/nginx/embedtoken.conf (auth_request to a decision-only sidecar)
// with one token reused (warm) and with a pool of distinct tokens larger
// than the cache (cold). nginx runs as a single process (master_process
// off) on the servers' CPU, like the sidecar and the upstream; CPU per
// request is nginx's plus the sidecar's. Samples go to rep.Gateway.
func gatewaySuite(c *config, rep *report, w *wrkRunner, self, work, logs string) error {
	ports := map[string]int{}
	for _, n := range []string{"upstream", "nginx", "authz", "admin", "keys"} {
		p, err := freePort()
		if err != nil {
			return err
		}
		ports[n] = p
	}
	upURL := "http://" + addr(ports["upstream"])
	dev, err := newDevIssuer("http://" + addr(ports["keys"]))
	if err != nil {
		return err
	}
	ks, err := startKeyServer(ports["keys"], dev.jwks)
	if err != nil {
		return err
	}
	defer ks.close()
	src, err := shippedCatalog(c.repo)
	if err != nil {
		return err
	}
	trust := fmt.Sprintf("trust \"bench\" {\n  issuer     = %q\n  jwks_url   = \"%s/.well-known/jwks.json\"\n  algorithms = [\"RS256\"]\n  audience   = [%q]\n}\n", ks.url, ks.url, benchAudience)
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
	authzConf := strings.NewReplacer("127.0.0.1:8080", gw, "127.0.0.1:8081", addr(ports["upstream"]), "127.0.0.1:8442", addr(ports["authz"])).Replace(string(shipped))
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
	for name, body := range map[string]string{"authz.conf": authzConf, "alone.conf": aloneConf} {
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
	targets := []struct {
		name, conf, tokens string
		sidecar            bool
	}{
		{"nginx-alone", "alone.conf", warmFile, false},
		{"nginx-authz-warm", "authz.conf", warmFile, true},
		{"nginx-authz-cold", "authz.conf", coldFile, true},
	}
	hdr := http.Header{"Authorization": {"Bearer " + warmTok}}
	for round := 1; round <= c.rounds; round++ {
		for i := range targets {
			t := targets[(i+round-1)%len(targets)]
			tg := target{name: t.name, url: "http://" + gw, tokenFile: t.tokens, start: startNginx(t.conf)}
			cpu0, _ := cpuSeconds(sc.pid())
			s, err := measureGateway(c, w, tg, hdr)
			if err != nil {
				return fmt.Errorf("%s, round %d: %w", t.name, round, err)
			}
			if t.sidecar {
				cpu1, _ := cpuSeconds(sc.pid())
				s.CPUPer10k += (cpu1 - cpu0) / float64(s.Requests) * 1e4 // includes the check and warm-up: an upper bound
			}
			s.Round = round
			rep.Gateway = append(rep.Gateway, s)
			fmt.Fprintf(os.Stderr, "loadbench: round %d %-17s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  %.3f CPU s/10k  non-2xx %d\n",
				round, t.name, s.RPS, s.P50ms, s.P99ms, s.CPUPer10k, s.Non2xx)
		}
	}
	return nil
}

// measureGateway is measureProxy for an nginx that needs no readiness URL:
// it polls the gateway itself (a public path) until it answers.
func measureGateway(c *config, w *wrkRunner, t target, hdr http.Header) (sample, error) {
	p, err := t.start()
	if err != nil {
		return sample{}, err
	}
	defer p.stop()
	if err := p.waitReady(t.url + "/healthz"); err != nil {
		return sample{}, err
	}
	if _, err := check("GET", t.url+"/orders/42", "", hdr.Clone()); err != nil {
		return sample{}, fmt.Errorf("%w\n%s", err, p.tail())
	}
	if _, err := w.get(t.url, t.tokenFile, c.warmup); err != nil {
		return sample{}, err
	}
	return measured(p, "", func() (wrkResult, error) { return w.get(t.url, t.tokenFile, c.duration) }, t.name)
}

// gatewayMarkdown is the gateway suite's table and ratios.
func (r *report) gatewayMarkdown() string {
	if len(r.Gateway) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("| gateway configuration | req/s | p50 ms | p99 ms | CPU s / 10k req (nginx + sidecar) |\n|---|---|---|---|---|\n")
	for _, c := range configs(r.Gateway) {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", c, spreadOf(pick(r.Gateway, c, rps)).fmt(0),
			spreadOf(pick(r.Gateway, c, p50)).fmt(2), spreadOf(pick(r.Gateway, c, p99)).fmt(2), spreadOf(pick(r.Gateway, c, cpu)).fmt(3))
	}
	b.WriteString("\n| ratio | value | goal |\n|---|---|---|\n")
	for _, q := range []struct{ label, a, b, goal string }{
		{"nginx+auth_request warm / nginx alone req/s", "nginx-authz-warm", "nginx-alone", "≥ 0.6"},
		{"nginx+auth_request cold / nginx alone req/s", "nginx-authz-cold", "nginx-alone", ""},
	} {
		if xs := ratio(r.Gateway, q.a, q.b, rps); len(xs) > 0 {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", q.label, spreadOf(xs).fmt(2), q.goal)
		}
	}
	return b.String() + "\n"
}
