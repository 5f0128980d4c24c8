package unwrap

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the sidecar's Prometheus collectors. Label values come from
// fixed sets (outcomes, Reasons) and from configuration (issuer names):
// never from a token.
type metrics struct {
	requests    *prometheus.CounterVec   // outcome, reason
	verify      *prometheus.HistogramVec // result
	cacheHits   prometheus.Counter
	cacheMisses prometheus.Counter
	cacheFlush  prometheus.Counter
	jwksFetches *prometheus.CounterVec // issuer, result
}

// Outcomes: the label of the request metric beside the reason.
const (
	outcomeForwarded   = "forwarded"
	outcomePublic      = "public"
	outcomeBadRequest  = "bad_request"
	outcomeUnauth      = "unauthorized"
	outcomeForbidden   = "forbidden"
	outcomeUnavailable = "unavailable"
	outcomeUpstream    = "upstream_error"
	outcomeInternal    = "internal_error"
)

// newMetrics registers the collectors on reg. A collector already
// registered (a reloaded sidecar on the same registry) is reused. A nil reg
// gives unregistered collectors.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "embedtoken", Subsystem: "sidecar", Name: "requests_total",
			Help: "Requests by outcome and reason.",
		}, []string{"outcome", "reason"}),
		verify: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "embedtoken", Subsystem: "sidecar", Name: "verify_seconds",
			Help:    "Time to verify a token not in the cache (outer and inner).",
			Buckets: []float64{25e-6, 50e-6, 100e-6, 200e-6, 400e-6, 800e-6, 1.6e-3, 5e-3, 20e-3, 100e-3, 1},
		}, []string{"result"}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "embedtoken", Subsystem: "sidecar", Name: "cache_hits_total",
			Help: "Verified-token cache hits.",
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "embedtoken", Subsystem: "sidecar", Name: "cache_misses_total",
			Help: "Verified-token cache misses.",
		}),
		cacheFlush: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "embedtoken", Subsystem: "sidecar", Name: "cache_flushes_total",
			Help: "Verified-token cache flushes (key changes).",
		}),
		jwksFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "embedtoken", Subsystem: "sidecar", Name: "jwks_fetches_total",
			Help: "Key set fetches by issuer and result (ok or error).",
		}, []string{"issuer", "result"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.requests = register(reg, m.requests, &err)
	m.verify = register(reg, m.verify, &err)
	m.cacheHits = register(reg, m.cacheHits, &err)
	m.cacheMisses = register(reg, m.cacheMisses, &err)
	m.cacheFlush = register(reg, m.cacheFlush, &err)
	m.jwksFetches = register(reg, m.jwksFetches, &err)
	return m, err
}

// register registers c, or returns the collector already registered under
// its name.
func register[C prometheus.Collector](reg prometheus.Registerer, c C, errp *error) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		if *errp == nil {
			*errp = err
		}
	}
	return c
}

func (m *metrics) request(outcome string, r Reason) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(outcome, string(r)).Inc()
}

func (m *metrics) verified(d time.Duration, ok bool) {
	if m == nil {
		return
	}
	res := "ok"
	if !ok {
		res = "error"
	}
	m.verify.WithLabelValues(res).Observe(d.Seconds())
}

func (m *metrics) cache(hit bool) {
	if m == nil {
		return
	}
	if hit {
		m.cacheHits.Inc()
	} else {
		m.cacheMisses.Inc()
	}
}

func (m *metrics) flushed() {
	if m != nil {
		m.cacheFlush.Inc()
	}
}

func (m *metrics) jwksFetch(issuer string, err error) {
	if m == nil {
		return
	}
	res := "ok"
	if err != nil {
		res = "error"
	}
	m.jwksFetches.WithLabelValues(issuer, res).Inc()
}

// outcomeOf maps a failure's status to the outcome label.
func outcomeOf(status int) string {
	switch {
	case status == 400:
		return outcomeBadRequest
	case status == 401:
		return outcomeUnauth
	case status == 403:
		return outcomeForbidden
	case status == 503:
		return outcomeUnavailable
	case status == 502 || status == 504:
		return outcomeUpstream
	}
	return outcomeInternal
}
