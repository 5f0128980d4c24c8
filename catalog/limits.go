package catalog

import (
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Resource bounds (DESIGN.md "Resource bounds"): defaults an operator of
// Envoy or nginx finds unsurprising.
const (
	// DefaultMaxConnections is the open connections of one listener
	// (idle keep-alive ones included); more wait in the kernel's backlog.
	DefaultMaxConnections = 2048
	// MaxMaxConnections is the largest max_connections accepted.
	MaxMaxConnections = 1 << 20
	// DefaultMaxRequests is the sidecar's requests in flight to its
	// upstream (Envoy's circuit breaker default); more get 503.
	DefaultMaxRequests = 1024
	// DefaultUpstreamIdleTimeout bounds any pause in an upstream response
	// body or in a request body being forwarded (nginx's
	// proxy_read_timeout).
	DefaultUpstreamIdleTimeout = 60 * time.Second
)

// Limits are the sidecar's resource bounds.
type Limits struct {
	// MaxConnections bounds the sidecar listener's open connections.
	MaxConnections int
	// MaxRequests bounds the requests in flight to the upstream.
	MaxRequests int
	// UpstreamIdleTimeout bounds any pause in a body between the sidecar
	// and its upstream.
	UpstreamIdleTimeout time.Duration
}

// sidecarLimits decodes the resource bounds of the sidecar block.
func sidecarLimits(r *rawSidecar, d *diagnostics) Limits {
	return Limits{
		MaxConnections:      count(r.MaxConns, r.MaxConnRange, "max_connections", DefaultMaxConnections, 1, MaxMaxConnections, d),
		MaxRequests:         count(r.MaxRequests, r.MaxReqRange, "max_requests", DefaultMaxRequests, 1, MaxMaxConnections, d),
		UpstreamIdleTimeout: duration(r.UpIdleTimeout, r.UpIdleRange, "upstream_idle_timeout", DefaultUpstreamIdleTimeout, time.Second, time.Hour, d),
	}
}

// count returns the integer attribute v, def when it is absent, and def
// with a positioned error when it is outside lo..hi.
func count(v *int, rng hcl.Range, attr string, def, lo, hi int, d *diagnostics) int {
	if v == nil {
		return def
	}
	if *v < lo || *v > hi {
		d.errorf(rng, "Limit out of range", "%s is %d; it must be between %d and %d.", attr, *v, lo, hi)
		return def
	}
	return *v
}
