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
	introspect  *prometheus.CounterVec // outcome
	introspectT prometheus.Histogram
	exchanges   *prometheus.CounterVec // outcome
	exchangeT   prometheus.Histogram
	exchangeErr *prometheus.CounterVec // reason (misconfig.go)

	// Children resolved once, for the request path: a label lookup hashes
	// the values and takes a lock.
	forwardedOK prometheus.Counter  // requests{forwarded, ok}
	verifyOK    prometheus.Observer // verify{ok}
	verifyErr   prometheus.Observer // verify{error}
}

// Outcomes of introspections and exchanges (their metrics' label).
const (
	introActive      = "active"      // accepted
	introInactive    = "inactive"    // active: false
	introRefused     = "refused"     // active, but not acceptable here
	introUnavailable = "unavailable" // the endpoint failed: 503
	introCached      = "cached"      // answered from the introspection cache

	exchOK          = "ok"
	exchRefused     = "refused"     // the subject token was refused: 401
	exchForbidden   = "forbidden"   // the audience or scope was refused: 403
	exchUnavailable = "unavailable" // the endpoint failed: 503
	exchInvalid     = "invalid"     // the issued token failed verification: 503
)

// dependencyBuckets are latency buckets for calls to another service.
var dependencyBuckets = []float64{0.5e-3, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5, 5}

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
		introspect: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "embedtoken", Subsystem: "sidecar", Name: "introspections_total",
			Help: "Opaque-token introspections by outcome: active, inactive, refused (active but not acceptable), unavailable (endpoint failed), cached (answered from the introspection cache).",
		}, []string{"outcome"}),
		introspectT: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "embedtoken", Subsystem: "sidecar", Name: "introspection_seconds",
			Help: "Time of introspection calls (waiting for a slot included).", Buckets: dependencyBuckets,
		}),
		exchanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "embedtoken", Subsystem: "sidecar", Name: "exchanges_total",
			Help: "Token exchanges by outcome: ok, refused (subject token), forbidden (audience or scope), unavailable (endpoint failed), invalid (issued token failed verification).",
		}, []string{"outcome"}),
		exchangeT: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "embedtoken", Subsystem: "sidecar", Name: "exchange_seconds",
			Help: "Time of token exchange calls.", Buckets: dependencyBuckets,
		}),
		exchangeErr: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "embedtoken", Subsystem: "sidecar", Name: "exchange_failures_total",
			Help: "Requests whose token exchange failed, by reason: invalid_client (the endpoint refuses the sidecar's credentials: a misconfiguration), unavailable, invalid_issued_token.",
		}, []string{"reason"}),
	}
	if reg == nil {
		m.resolve()
		return m, nil
	}
	var err error
	m.requests = register(reg, m.requests, &err)
	m.verify = register(reg, m.verify, &err)
	m.cacheHits = register(reg, m.cacheHits, &err)
	m.cacheMisses = register(reg, m.cacheMisses, &err)
	m.cacheFlush = register(reg, m.cacheFlush, &err)
	m.jwksFetches = register(reg, m.jwksFetches, &err)
	m.introspect = register(reg, m.introspect, &err)
	m.introspectT = register(reg, m.introspectT, &err)
	m.exchanges = register(reg, m.exchanges, &err)
	m.exchangeT = register(reg, m.exchangeT, &err)
	m.exchangeErr = register(reg, m.exchangeErr, &err)
	m.resolve()
	return m, err
}

// resolve looks up the children the request path uses.
func (m *metrics) resolve() {
	m.forwardedOK = m.requests.WithLabelValues(outcomeForwarded, string(ReasonOK))
	m.verifyOK = m.verify.WithLabelValues("ok")
	m.verifyErr = m.verify.WithLabelValues("error")
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
	if outcome == outcomeForwarded && r == ReasonOK {
		m.forwardedOK.Inc()
		return
	}
	m.requests.WithLabelValues(outcome, string(r)).Inc()
}

func (m *metrics) verified(d time.Duration, ok bool) {
	if m == nil {
		return
	}
	if ok {
		m.verifyOK.Observe(d.Seconds())
	} else {
		m.verifyErr.Observe(d.Seconds())
	}
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

// introspected counts an introspection; d is zero for a cache hit.
func (m *metrics) introspected(outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.introspect.WithLabelValues(outcome).Inc()
	if outcome != introCached {
		m.introspectT.Observe(d.Seconds())
	}
}

// exchanged counts an exchange call.
func (m *metrics) exchanged(outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.exchanges.WithLabelValues(outcome).Inc()
	m.exchangeT.Observe(d.Seconds())
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

func (m *metrics) exchangeFailed(reason string) {
	if m == nil {
		return
	}
	m.exchangeErr.WithLabelValues(reason).Inc()
}
