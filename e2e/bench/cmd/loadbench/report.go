package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// report is everything one run measured; results.json holds it whole.
type report struct {
	Machine         string   `json:"machine"`
	Started         string   `json:"started"`
	Settings        string   `json:"settings"`
	OuterTokenBytes int      `json:"outer_token_bytes"`
	Proxy           []sample `json:"proxy"`
	Hook            []sample `json:"hook"`
	Gateway         []sample `json:"gateway,omitempty"`
	GRPC            []sample `json:"grpc,omitempty"`
}

// spread is min / median / max.
type spread struct{ min, med, max float64 }

func spreadOf(xs []float64) spread {
	if len(xs) == 0 {
		return spread{math.NaN(), math.NaN(), math.NaN()}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return spread{s[0], med, s[len(s)-1]}
}

func (s spread) fmt(prec int) string {
	return fmt.Sprintf("%.*f (%.*f–%.*f)", prec, s.med, prec, s.min, prec, s.max)
}

func configs(samples []sample) []string {
	var names []string
	for _, s := range samples {
		if !slices.Contains(names, s.Config) {
			names = append(names, s.Config)
		}
	}
	return names
}

func pick(samples []sample, config string, f func(sample) float64) []float64 {
	var xs []float64
	for _, s := range samples {
		if s.Config == config {
			xs = append(xs, f(s))
		}
	}
	return xs
}

// ratio is f(a)/f(b) per round, so that drift shared by a round cancels.
func ratio(samples []sample, a, b string, f func(sample) float64) []float64 {
	byRound := map[int]map[string]float64{}
	for _, s := range samples {
		if byRound[s.Round] == nil {
			byRound[s.Round] = map[string]float64{}
		}
		byRound[s.Round][s.Config] = f(s)
	}
	var xs []float64
	for _, m := range byRound {
		va, okA := m[a]
		vb, okB := m[b]
		if okA && okB && vb != 0 {
			xs = append(xs, va/vb)
		}
	}
	return xs
}

func rps(s sample) float64  { return s.RPS }
func p50(s sample) float64  { return s.P50ms }
func p99(s sample) float64  { return s.P99ms }
func cpu(s sample) float64  { return s.CPUPer10k }
func rss(s sample) float64  { return s.PeakRSSMB }
func hit(s sample) float64  { return s.CacheHit }
func tokS(s sample) float64 { return s.RPS * float64(s.Tokens) }

func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Machine: %s\nStarted: %s\nSettings: %s\n\n", r.Machine, r.Started, r.Settings)
	if len(r.Proxy) > 0 {
		fmt.Fprintf(&b, "Outer token (RS256-2048 outer, EdDSA inner; catalog of the set-up): %d bytes\n\nGoals: issue 14's.\n\n", r.OuterTokenBytes)
		b.WriteString("| configuration | req/s | p50 ms | p99 ms | CPU s / 10k req | peak RSS MiB | cache hit ratio |\n|---|---|---|---|---|---|---|\n")
		for _, c := range configs(r.Proxy) {
			h := "–"
			if strings.HasPrefix(c, "sidecar") {
				h = spreadOf(pick(r.Proxy, c, hit)).fmt(3)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", c,
				spreadOf(pick(r.Proxy, c, rps)).fmt(0), spreadOf(pick(r.Proxy, c, p50)).fmt(2), spreadOf(pick(r.Proxy, c, p99)).fmt(2),
				spreadOf(pick(r.Proxy, c, cpu)).fmt(3), spreadOf(pick(r.Proxy, c, rss)).fmt(1), h)
		}
		b.WriteString("\nRatios, per round (median (min–max)):\n\n| ratio | value | goal |\n|---|---|---|\n")
		for _, q := range []struct {
			label, a, b string
			f           func(sample) float64
			goal        string
		}{
			{"floor / direct req/s", "floor", "direct", rps, ""},
			{"warm / floor req/s (3/2)", "sidecar-warm", "floor", rps, "≥ 1.1"},
			{"warm / floor p99 (3/2)", "sidecar-warm", "floor", p99, "≤ 1.05"},
			{"cold / floor req/s (4/2)", "sidecar-cold", "floor", rps, "≥ 0.6"},
			{"warm / oauth2-proxy req/s (3/5)", "sidecar-warm", "oauth2-proxy", rps, ""},
			{"cold / oauth2-proxy req/s (4/5)", "sidecar-cold", "oauth2-proxy", rps, ""},
			{"warm / oauth2-proxy peak RSS", "sidecar-warm", "oauth2-proxy", rss, "≤ 0.6"},
			{"cold / oauth2-proxy peak RSS", "sidecar-cold", "oauth2-proxy", rss, ""},
			{"warm / floor peak RSS", "sidecar-warm", "floor", rss, "≤ 1.25"},
			{"cold / floor peak RSS", "sidecar-cold", "floor", rss, ""},
			{"warm / floor CPU per request", "sidecar-warm", "floor", cpu, ""},
			{"cold / floor CPU per request", "sidecar-cold", "floor", cpu, ""},
			{"oauth2-proxy / floor CPU per request", "oauth2-proxy", "floor", cpu, ""},
			{"warm-b / floor peak RSS", "sidecar-warm-b", "floor", rss, "≤ 1.25"},
			{"cold-b / floor peak RSS", "sidecar-cold-b", "floor", rss, ""},
			{"warm-b / oauth2-proxy peak RSS", "sidecar-warm-b", "oauth2-proxy", rss, "≤ 0.6"},
			{"warm-b / warm peak RSS", "sidecar-warm-b", "sidecar-warm", rss, ""},
			{"cold-b / cold peak RSS", "sidecar-cold-b", "sidecar-cold", rss, ""},
			{"warm-b / warm CPU per request", "sidecar-warm-b", "sidecar-warm", cpu, ""},
			{"cold-b / cold CPU per request", "sidecar-cold-b", "sidecar-cold", cpu, ""},
			{"warm-b / floor req/s", "sidecar-warm-b", "floor", rps, "≥ 1.1"},
		} {
			if xs := ratio(r.Proxy, q.a, q.b, q.f); len(xs) > 0 {
				fmt.Fprintf(&b, "| %s | %s | %s |\n", q.label, spreadOf(xs).fmt(2), q.goal)
			}
		}
		b.WriteString("\n")
	}
	if len(r.Hook) > 0 {
		b.WriteString("| hook catalog | tokens signed / request | req/s | tokens/s | p50 ms | p99 ms | CPU s / 10k req | peak RSS MiB |\n|---|---|---|---|---|---|---|---|\n")
		for _, c := range configs(r.Hook) {
			var tokens int
			for _, s := range r.Hook {
				if s.Config == c {
					tokens = s.Tokens
				}
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s |\n", c, tokens,
				spreadOf(pick(r.Hook, c, rps)).fmt(0), spreadOf(pick(r.Hook, c, tokS)).fmt(0),
				spreadOf(pick(r.Hook, c, p50)).fmt(2), spreadOf(pick(r.Hook, c, p99)).fmt(2),
				spreadOf(pick(r.Hook, c, cpu)).fmt(3), spreadOf(pick(r.Hook, c, rss)).fmt(1))
		}
		b.WriteString("\n")
	}
	return b.String()
}
