package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// grpcSuite measures the CPU per decision of embedtoken-envoy's gRPC
// Check (authz_grpc_listen) in isolation: a decision-only sidecar on the
// servers' CPU, and loadbench's grpc-load subcommand on the load CPU
// sending Envoy-shaped CheckRequests, one at a time and with many in
// flight on one or a few HTTP/2 connections (as Envoy multiplexes them).
// The sidecar's utime+stime is read from /proc over a bounded number of
// calls after a warm-up. With several binaries in -envoy (old and new,
// comma-separated) each runs as its own sidecar and the configurations
// alternate between them in every round. Samples go to rep.GRPC.
func grpcSuite(c *config, rep *report, self, work, logs string) error {
	bins := strings.Split(c.envoy, ",")
	ports := map[string]int{}
	names := []string{"keys"}
	for i := range bins {
		names = append(names, "grpc"+strconv.Itoa(i), "admin"+strconv.Itoa(i))
	}
	for _, n := range names {
		p, err := freePort()
		if err != nil {
			return err
		}
		ports[n] = p
	}
	dev, ks, src, trust, err := benchTrust(c.repo, ports["keys"])
	if err != nil {
		return err
	}
	defer ks.close()
	// Each sidecar gets the shared catalog folder and a file of its own
	// outside it (two sidecar blocks in one folder would be loaded together).
	dir, err := writeConfigDir(work, "grpc", longLived(src), map[string]string{"trust.hcl": trust})
	if err != nil {
		return err
	}
	sideDir := filepath.Join(work, "grpc-sidecars")
	if err := os.MkdirAll(sideDir, 0o700); err != nil {
		return err
	}
	warmFile, coldFile := filepath.Join(work, "grpc-warm.tokens"), filepath.Join(work, "grpc-cold.tokens")
	if _, err := mintOuterTokens(dir, dev, shippedScopes, 1, warmFile); err != nil {
		return err
	}
	if _, err := mintOuterTokens(dir, dev, shippedScopes, c.pool, coldFile); err != nil {
		return err
	}
	sidecars := make([]*proc, len(bins))
	for i, bin := range bins {
		f := filepath.Join(sideDir, fmt.Sprintf("orders%d.hcl", i))
		body := fmt.Sprintf("sidecar {\n  api               = \"orders\"\n  public_paths      = [\"/healthz\"]\n  authz_grpc_listen = %q\n  admin_listen      = %q\n  cache_entries     = %d\n  shutdown_timeout  = \"2s\"\n}\n",
			addr(ports["grpc"+strconv.Itoa(i)]), addr(ports["admin"+strconv.Itoa(i)]), c.cacheEntries)
		if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
			return err
		}
		sc, err := start(logs, fmt.Sprintf("grpc-sidecar%d", i), c.serverCPU, baseEnv(), bin, "sidecar", "--config", dir, "--config", f)
		if err != nil {
			return err
		}
		defer sc.stop()
		if err := sc.waitReady("http://" + addr(ports["admin"+strconv.Itoa(i)]) + "/readyz"); err != nil {
			return err
		}
		sidecars[i] = sc
	}
	type grpcConfig struct {
		name               string
		tokens             string
		calls, conc, conns int
	}
	cfgs := []grpcConfig{
		{"seq", warmFile, c.grpcCalls / 5, 1, 1},
		{"c16-1conn", warmFile, c.grpcCalls, 16, 1},
		{"c64-4conn", warmFile, c.grpcCalls, 64, 4},
		{"cold-c16-1conn", coldFile, c.grpcCalls / 5, 16, 1},
	}
	type run struct {
		cfg grpcConfig
		bin int
	}
	var runs []run
	for _, cf := range cfgs {
		for b := range bins {
			runs = append(runs, run{cf, b})
		}
	}
	for round := 1; round <= c.rounds; round++ {
		for i := range runs {
			r := runs[(i+round-1)%len(runs)]
			name := "grpc-" + r.cfg.name
			if len(bins) > 1 {
				name = fmt.Sprintf("b%d-%s", r.bin, name)
			}
			out := filepath.Join(work, "grpc-load.json")
			p, err := start(logs, "grpc-load", c.loadCPU, baseEnv(), self, "grpc-load", addr(ports["grpc"+strconv.Itoa(r.bin)]), r.cfg.tokens,
				strconv.Itoa(r.cfg.calls), strconv.Itoa(r.cfg.conc), strconv.Itoa(r.cfg.conns), strconv.Itoa(sidecars[r.bin].pid()), out)
			if err != nil {
				return err
			}
			<-p.done
			if p.err != nil {
				return fmt.Errorf("%s, round %d: %v\n%s", name, round, p.err, p.tail())
			}
			b, err := os.ReadFile(out)
			if err != nil {
				return err
			}
			var res grpcLoadResult
			if err := json.Unmarshal(b, &res); err != nil {
				return err
			}
			s := sample{Config: name, Round: round, RPS: float64(res.Calls) / res.Seconds, Requests: res.Calls, Errors: res.Errors,
				CPUPer10k: res.SidecarCPU / float64(res.Calls) * 1e4, AuthCPUPer10k: res.ClientCPU / float64(res.Calls) * 1e4}
			if hwm, err := peakRSSKiB(sidecars[r.bin].pid()); err == nil {
				s.PeakRSSMB = float64(hwm) / 1024
			}
			rep.GRPC = append(rep.GRPC, s)
			fmt.Fprintf(os.Stderr, "loadbench: round %d %-22s %8.0f calls/s  sidecar %6.1f µs CPU/call  client %6.1f µs  %5.1f MiB  errors %d\n",
				round, name, s.RPS, s.CPUPer10k*100, s.AuthCPUPer10k*100, s.PeakRSSMB, s.Errors)
			if res.Errors > 0 {
				return fmt.Errorf("%s, round %d: %d calls not allowed", name, round, res.Errors)
			}
		}
	}
	return nil
}

// grpcMarkdown is the gRPC suite's table and ratios.
func (r *report) grpcMarkdown() string {
	if len(r.GRPC) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("| gRPC Check configuration | calls/s | sidecar CPU µs / call | client CPU µs / call | sidecar peak RSS MiB |\n|---|---|---|---|---|\n")
	us := func(f func(sample) float64) func(sample) float64 { return func(s sample) float64 { return f(s) * 100 } }
	for _, c := range configs(r.GRPC) {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", c, spreadOf(pick(r.GRPC, c, rps)).fmt(0),
			spreadOf(pick(r.GRPC, c, us(cpu))).fmt(1), spreadOf(pick(r.GRPC, c, us(authCPU))).fmt(1), spreadOf(pick(r.GRPC, c, rss)).fmt(1))
	}
	b.WriteString("\nGoal: gRPC Check warm ≤ 30 µs of sidecar CPU per decision.\n")
	return b.String() + "\n"
}
