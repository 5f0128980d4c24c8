package cmd

import (
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/embedtoken/embedtoken/catalog"
	"github.com/embedtoken/embedtoken/internal/netlimit"
)

// adminMaxConnections is the admin listener's own budget: probes and
// metrics answer even when the other listeners are exhausted.
const adminMaxConnections = 64

// limitListener bounds the connections ln keeps open to s.maxConns (the
// default when zero): more wait in the kernel's backlog.
func (s *server) limitListener(ln net.Listener) net.Listener {
	n := s.maxConns
	if n <= 0 {
		n = catalog.DefaultMaxConnections
	}
	s.limit = netlimit.New(ln, n)
	if hs, ok := s.srv.(*http.Server); ok {
		hs.ConnState = s.limit.ConnState // idle keep-alive connections make room when full
	}
	return s.limit
}

// registerConnections exports each listener's open connections and limit.
// The label values are the fixed listener names.
func registerConnections(reg prometheus.Registerer, servers []*server) {
	for _, s := range servers {
		if s.limit == nil {
			continue
		}
		l := s.limit
		labels := prometheus.Labels{"listener": s.name}
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "embedtoken_listener_connections", ConstLabels: labels,
			Help: "Connections open on the listener (idle keep-alive ones included).",
		}, func() float64 { return float64(l.InUse()) }))
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "embedtoken_listener_max_connections", ConstLabels: labels,
			Help: "The listener's max_connections: more connections wait in the kernel's backlog.",
		}, func() float64 { return float64(l.Limit()) }))
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "embedtoken_listener_idle_evictions_total", ConstLabels: labels,
			Help: "Idle keep-alive connections, or connections without a whole first request header for 1 s, closed to make room for a new one at max_connections.",
		}, func() float64 { return float64(l.Evicted()) }))
	}
}
