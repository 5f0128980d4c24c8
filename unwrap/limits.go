package unwrap

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/embedtoken/embedtoken/internal/netlimit"
)

// ReasonMaxRequests is a request shed because max_requests requests were
// already in flight to the upstream (503 temporarily_unavailable).
const ReasonMaxRequests Reason = "max_requests"

// reasonIdleTimeout is the log reason of an upstream exchange aborted by
// upstream_idle_timeout.
const reasonIdleTimeout = "upstream_idle_timeout"

// limitMetrics are the collectors of the sidecar's resource bounds.
type limitMetrics struct {
	inFlight     prometheus.Gauge
	idleTimeouts prometheus.Counter
}

func newLimitMetrics(reg prometheus.Registerer) (*limitMetrics, error) {
	m := &limitMetrics{
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "embedtoken", Subsystem: "sidecar", Name: "upstream_requests_in_flight",
			Help: "Requests in flight to the upstream (bounded by max_requests; more are shed with 503, counted in requests_total{reason=\"max_requests\"}).",
		}),
		idleTimeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "embedtoken", Subsystem: "sidecar", Name: "upstream_idle_timeouts_total",
			Help: "Upstream exchanges aborted because a body paused longer than upstream_idle_timeout.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.inFlight = register(reg, m.inFlight, &err)
	m.idleTimeouts = register(reg, m.idleTimeouts, &err)
	return m, err
}

// gate bounds the requests in flight to the upstream: an atomic counter,
// so that the warm path pays two atomic adds.
type gate struct {
	n   atomic.Int64
	max int64
}

// enter takes a slot; false means max requests are in flight already.
func (g *gate) enter() bool {
	if g.n.Add(1) > g.max {
		g.n.Add(-1)
		return false
	}
	return true
}

func (g *gate) leave() { g.n.Add(-1) }

// shed refuses a request over max_requests: 503 with Retry-After, like
// Envoy's circuit breakers.
func (s *Sidecar) shed(w http.ResponseWriter, r *http.Request, ri *requestInfo) {
	s.fail(w, r, ri, unavailable(ReasonMaxRequests, nil))
}

// refuseNow sends a refusal at once: see netlimit.CloseIfBody.
func refuseNow(w http.ResponseWriter, r *http.Request) { netlimit.CloseIfBody(w.Header(), r) }

// idleDialer wraps dial so that every upstream connection bounds its
// pauses (idleConn).
func idleDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error), idle, headerWait time.Duration, onTimeout func()) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &idleConn{Conn: c, idle: idle, wait: max(idle, headerWait), slack: idle / 16, onTimeout: onTimeout}, nil
	}
}

// idleConn is an upstream connection on which no read or write may pause
// longer than idle (plus up to idle/16): each Read pushes the read
// deadline to idle from now, each Write pushes the write deadline the same
// way and the read deadline to wait from now (the answer to what is
// written may take upstream_timeout, which the Transport enforces itself).
// A client trickling a request body therefore cannot pin the connection
// longer than wait per pause, and an upstream stalling mid-body is cut at
// idle. Deadlines move only when they are more than slack off target, so
// most calls cost one clock read.
type idleConn struct {
	net.Conn
	idle, wait, slack time.Duration
	onTimeout         func()

	readUntil  atomic.Int64 // UnixNano of the read deadline set
	writeUntil atomic.Int64
	mu         sync.Mutex // orders deadline updates from the reading and writing goroutines
	timedOut   atomic.Bool
}

func (c *idleConn) Read(p []byte) (int, error) {
	now := time.Now().UnixNano()
	target := now + int64(c.idle)
	if d := c.readUntil.Load() - target; d < 0 || d > 2*int64(c.slack) {
		c.mu.Lock()
		c.readUntil.Store(target + int64(c.slack))
		_ = c.Conn.SetReadDeadline(time.Unix(0, target+int64(c.slack)))
		c.mu.Unlock()
	}
	n, err := c.Conn.Read(p)
	c.timeout(err)
	return n, err
}

func (c *idleConn) Write(p []byte) (int, error) {
	now := time.Now().UnixNano()
	if target := now + int64(c.idle); c.writeUntil.Load() < target {
		c.mu.Lock()
		c.writeUntil.Store(target + int64(c.slack))
		_ = c.Conn.SetWriteDeadline(time.Unix(0, target+int64(c.slack)))
		c.mu.Unlock()
	}
	if target := now + int64(c.wait); c.readUntil.Load() < target {
		c.mu.Lock()
		if c.readUntil.Load() < target {
			c.readUntil.Store(target + int64(c.slack))
			_ = c.Conn.SetReadDeadline(time.Unix(0, target+int64(c.slack)))
		}
		c.mu.Unlock()
	}
	n, err := c.Conn.Write(p)
	c.timeout(err)
	return n, err
}

// timeout reports the first deadline that expired.
func (c *idleConn) timeout(err error) {
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && c.timedOut.CompareAndSwap(false, true) && c.onTimeout != nil {
		c.onTimeout()
	}
}

// onIdleTimeout counts and logs an exchange cut by upstream_idle_timeout.
func (s *Sidecar) onIdleTimeout() {
	s.limits.idleTimeouts.Inc()
	s.log.Warn("upstream exchange aborted: a body paused longer than upstream_idle_timeout",
		zap.String(fieldReason, reasonIdleTimeout), zap.Duration(fieldLimit, s.cfg.UpstreamIdleTimeout))
}
