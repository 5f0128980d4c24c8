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

	"github.com/embedtoken/embedtoken/catalog"
	"github.com/embedtoken/embedtoken/internal/netlimit"
)

// ReasonMaxRequests is a request shed because max_requests requests were
// already in flight to the upstream (503 temporarily_unavailable).
const ReasonMaxRequests Reason = "max_requests"

// ReasonIdleTimeout is an upstream exchange aborted by
// upstream_idle_timeout: a body paused longer.
const ReasonIdleTimeout Reason = "upstream_idle_timeout"

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
		zap.String(fieldReason, string(ReasonIdleTimeout)), zap.Duration(fieldLimit, s.cfg.UpstreamIdleTimeout))
}

// bodyIdle bounds the pauses of a client's request body being forwarded:
// each read pushes the client connection's read deadline to
// upstream_idle_timeout from now, so that a client that stops sending
// frees the upstream connection (the Transport waits for the body before
// it reports an upstream failure) instead of holding it until the
// server's ReadTimeout. Deadlines move only when more than a sixteenth of
// the bound off target.
type bodyIdle struct {
	rc    *http.ResponseController
	idle  time.Duration
	until time.Time
	hit   atomic.Bool // a read failed at the deadline
}

func (s *Sidecar) newBodyIdle(w http.ResponseWriter) *bodyIdle {
	idle := s.cfg.UpstreamIdleTimeout
	if idle <= 0 {
		idle = catalog.DefaultUpstreamIdleTimeout
	}
	return &bodyIdle{rc: http.NewResponseController(w), idle: idle}
}

// extend is called before each read of the body (by one goroutine).
func (b *bodyIdle) extend() {
	if b == nil {
		return
	}
	now := time.Now()
	if b.until.Sub(now) >= b.idle {
		return
	}
	b.until = now.Add(b.idle + b.idle/16)
	_ = b.rc.SetReadDeadline(b.until) // unsupported by recorders: the server's ReadTimeout stays
}

// expired reports whether the body read failed at its deadline: the
// Transport's error need not wrap the read's, so reads record it (read).
func (b *bodyIdle) expired() bool { return b != nil && b.hit.Load() }

// read records a read error of the body.
func (b *bodyIdle) read(err error) {
	var ne net.Error
	if b != nil && (errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()) {
		b.hit.Store(true)
	}
}

// idleAbort answers an exchange aborted by upstream_idle_timeout before
// any header was sent: 504, logged and counted.
func (s *Sidecar) idleAbort(w http.ResponseWriter, ri *requestInfo) {
	s.limits.idleTimeouts.Inc()
	s.metrics.request(outcomeUpstream, ReasonIdleTimeout)
	s.log.Warn("upstream exchange aborted: the request body paused longer than upstream_idle_timeout",
		zap.String(fieldRequestID, ri.id), zap.String(fieldReason, string(ReasonIdleTimeout)), zap.Int(fieldStatus, http.StatusGatewayTimeout))
	w.Header().Set("Connection", "close")
	writeJSONError(w, http.StatusGatewayTimeout, ri.id, codeGatewayTimeout, descGatewayTimout)
}
