package mint

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the minter's Prometheus metrics. They outlive any one Minter:
// build them once with NewMetrics and pass them to every Minter built on a
// reload. A nil *Metrics records nothing. Safe for concurrent use.
type Metrics struct {
	tokens     *prometheus.CounterVec
	hook       *prometheus.CounterVec
	latency    prometheus.Histogram
	overBudget prometheus.Counter
	embedded   prometheus.Histogram
	exchanges  *prometheus.CounterVec
	exchangeD  prometheus.Histogram
}

// NewMetrics creates the metrics and registers them on reg (never the global
// registry unless the caller passes it):
//
//   - embedtoken_mint_tokens_total{api}: inner tokens minted, nested included;
//   - embedtoken_hook_requests_total{endpoint,outcome}: hook requests by outcome
//     (ok, unauthorized, bad_request, too_large, unsupported_media_type,
//     denied, timeout, error);
//   - embedtoken_mint_duration_seconds: the time one Mint call takes;
//   - embedtoken_mint_over_budget_total: mints whose embedded map exceeded
//     max_embedded_bytes (minted anyway);
//   - embedtoken_mint_embedded_bytes: the base64url bytes each embedded map
//     adds to an outer token;
//   - embedtoken_exchange_requests_total{outcome}: token exchange requests by
//     outcome (ok, invalid_request, invalid_subject, invalid_client,
//     unsupported_grant_type, invalid_target, invalid_scope, too_large,
//     unavailable, not_found, error);
//   - embedtoken_exchange_duration_seconds: the time one token exchange
//     request takes, subject verification included.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "embedtoken_mint_tokens_total",
			Help: "Inner tokens minted, per API (nested tokens included).",
		}, []string{"api"}),
		hook: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "embedtoken_hook_requests_total",
			Help: "Hook requests, per endpoint and outcome.",
		}, []string{"endpoint", "outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "embedtoken_mint_duration_seconds",
			Help:    "Time to mint the embedded map of one subject.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
		overBudget: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "embedtoken_mint_over_budget_total",
			Help: "Embedded maps minted over max_embedded_bytes.",
		}),
		embedded: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "embedtoken_mint_embedded_bytes",
			Help:    "Base64url bytes an embedded map adds to an outer token.",
			Buckets: prometheus.ExponentialBuckets(256, 2, 8),
		}),
		exchanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "embedtoken_exchange_requests_total",
			Help: "Token exchange requests, per outcome.",
		}, []string{"outcome"}),
		exchangeD: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "embedtoken_exchange_duration_seconds",
			Help:    "Time to answer one token exchange request, subject verification included.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1, 2.5, 5},
		}),
	}
	for _, c := range []prometheus.Collector{m.tokens, m.hook, m.latency, m.overBudget, m.embedded, m.exchanges, m.exchangeD} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("mint: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *Metrics) minted(api string) {
	if m != nil {
		m.tokens.WithLabelValues(api).Inc()
	}
}

func (m *Metrics) hookRequest(endpoint, outcome string) {
	if m != nil {
		m.hook.WithLabelValues(endpoint, outcome).Inc()
	}
}

func (m *Metrics) observe(d time.Duration, embeddedBytes int, over bool) {
	if m == nil {
		return
	}
	m.latency.Observe(d.Seconds())
	m.embedded.Observe(float64(embeddedBytes))
	if over {
		m.overBudget.Inc()
	}
}

func (m *Metrics) exchange(outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.exchanges.WithLabelValues(outcome).Inc()
	m.exchangeD.Observe(d.Seconds())
}
