package mint

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Brute-force protection of the exchange endpoint's client authentication
// (RFC 6749 2.3.1, DESIGN.md "Resource bounds").
const (
	// authFailLimit failed authentications in authFailWindow, per client id
	// and per remote address, make the endpoint answer 429 until the window
	// ends.
	authFailLimit  = 10
	authFailWindow = time.Minute
	// authFailEntries bounds each table (client ids, addresses). Only
	// declared client ids are tracked, so the client table is bounded by
	// the configuration and every declared secret's guesses stay bounded;
	// when the address table is full of live entries, new addresses are
	// not tracked until the next sweep. (Throttling them together would let
	// failures spread over 10000 addresses lock every client out, and
	// would bound no secret's guesses further.)
	authFailEntries = 10000
	// failLogBurst failure lines are logged per failLogEvery; the others
	// are counted and reported by the next line.
	failLogBurst = 5
	failLogEvery = time.Second
	// maxLoggedClientID bounds an attacker-chosen client id in a log line.
	maxLoggedClientID = 64
)

const (
	outcomeThrottled = "throttled"
	descThrottled    = "too many failed client authentications: retry later"
	descClientFailed = "client authentication failed"
)

// failWindow counts failures in a fixed window starting at start.
type failWindow struct {
	start time.Time
	fails int
}

// authThrottle counts failed client authentications. It is safe for
// concurrent use, and its memory is bounded (authFailEntries per table).
type authThrottle struct {
	now func() time.Time

	mu        sync.Mutex
	clients   map[string]*failWindow
	addrs     map[netip.Prefix]*failWindow
	lastSweep time.Time

	logs logLimiter // of the failure lines
}

func newAuthThrottle(now func() time.Time) *authThrottle {
	if now == nil {
		now = time.Now
	}
	return &authThrottle{now: now, clients: map[string]*failWindow{}, addrs: map[netip.Prefix]*failWindow{}, logs: logLimiter{now: now}}
}

// retryAfter returns how long the client id or the address stays throttled,
// or zero. client is empty when the id is not declared (not tracked).
func (t *authThrottle) retryAfter(client string, addr netip.Prefix) time.Duration {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	var wait time.Duration
	if w := t.clients[client]; client != "" && w != nil {
		wait = max(wait, w.blocked(now))
	}
	if w := t.addrEntry(addr, false); w != nil {
		wait = max(wait, w.blocked(now))
	}
	return wait
}

// fail records a failed authentication.
func (t *authThrottle) fail(client string, addr netip.Prefix) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweep(now)
	if client != "" {
		w := t.clients[client]
		if w == nil && len(t.clients) < authFailEntries {
			w = &failWindow{}
			t.clients[client] = w
		}
		if w != nil {
			w.add(now)
		}
	}
	if w := t.addrEntry(addr, true); w != nil {
		w.add(now)
	}
}

// addrEntry returns addr's window, or with create a new one; nil when addr
// has none and the table is full (or without create).
func (t *authThrottle) addrEntry(addr netip.Prefix, create bool) *failWindow {
	if w := t.addrs[addr]; w != nil {
		return w
	}
	if !create || len(t.addrs) >= authFailEntries {
		return nil
	}
	w := &failWindow{}
	t.addrs[addr] = w
	return w
}

// sweep drops expired windows, at most once per window.
func (t *authThrottle) sweep(now time.Time) {
	if now.Sub(t.lastSweep) < authFailWindow {
		return
	}
	t.lastSweep = now
	for k, w := range t.clients {
		if now.Sub(w.start) >= authFailWindow {
			delete(t.clients, k)
		}
	}
	for k, w := range t.addrs {
		if now.Sub(w.start) >= authFailWindow {
			delete(t.addrs, k)
		}
	}
}

func (w *failWindow) add(now time.Time) {
	if now.Sub(w.start) >= authFailWindow || now.Before(w.start) {
		w.start, w.fails = now, 0
	}
	w.fails++
}

// blocked is how long the window keeps refusing, or zero.
func (w *failWindow) blocked(now time.Time) time.Duration {
	left := w.start.Add(authFailWindow).Sub(now)
	if w.fails < authFailLimit || left <= 0 {
		return 0
	}
	return left
}

// logAllowed reports whether a failure line may be logged now and how many
// were suppressed since the last one.
func (t *authThrottle) logAllowed() (bool, int) { return t.logs.allow() }

// logLimiter lets failBurst lines a second through, so that a flood of
// failures cannot flood the log; it counts the others. Safe for concurrent
// use.
type logLimiter struct {
	now        func() time.Time
	mu         sync.Mutex
	start      time.Time
	logged     int
	suppressed int
}

// allow reports whether a line may be logged now and how many were
// suppressed since the last one logged.
func (l *logLimiter) allow() (bool, int) {
	now := time.Now()
	if l.now != nil {
		now = l.now()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.start) >= failLogEvery || now.Before(l.start) {
		l.start, l.logged = now, 0
	}
	if l.logged >= failLogBurst {
		l.suppressed++
		return false, 0
	}
	l.logged++
	n := l.suppressed
	l.suppressed = 0
	return true, n
}

// remotePrefix is the throttled unit of a remote address: the address
// itself for IPv4, its /64 for IPv6 (one host usually holds a whole /64).
func remotePrefix(remoteAddr string) netip.Prefix {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		host, _, _ := net.SplitHostPort(remoteAddr)
		a, err := netip.ParseAddr(host)
		if err != nil {
			return netip.Prefix{}
		}
		ap = netip.AddrPortFrom(a, 0)
	}
	a := ap.Addr().Unmap()
	bits := a.BitLen()
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// attemptedClientID is the client id of the request's HTTP Basic
// credentials, unverified, or empty.
func attemptedClientID(r *http.Request) string {
	user, _, ok := r.BasicAuth()
	if !ok {
		return ""
	}
	if id, err := url.QueryUnescape(user); err == nil {
		return id
	}
	return user
}

// logClientID bounds an attacker-chosen client id for a log line (zap
// escapes what it holds).
func logClientID(id string) string {
	if len(id) > maxLoggedClientID {
		return id[:maxLoggedClientID] + "..."
	}
	return id
}

// guard answers 429 when the request's client id or address is throttled;
// it returns false then.
func (e *exchangeServer) guard(w http.ResponseWriter, r *http.Request, start time.Time) bool {
	id, addr := e.trackedClient(r), remotePrefix(r.RemoteAddr)
	wait := e.throttle.retryAfter(id, addr)
	if wait <= 0 {
		return true
	}
	e.metrics.exchange(outcomeThrottled, time.Since(start))
	if ok, suppressed := e.throttle.logAllowed(); ok {
		e.log.Warn("token exchange throttled", zap.String(fieldReason, outcomeThrottled),
			zap.String(fieldClient, logClientID(attemptedClientID(r))), zap.String(fieldRemoteAddr, r.RemoteAddr),
			zap.Int(fieldSuppressed, suppressed))
	}
	h := w.Header()
	h.Set("Pragma", "no-cache")
	h.Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
	writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "invalid_client", "error_description": descThrottled})
	return false
}

// authFailed records and logs (rate-limited) a failed client
// authentication, with the attempted client id and the remote address.
func (e *exchangeServer) authFailed(r *http.Request, f *exchangeError) {
	e.throttle.fail(e.trackedClient(r), remotePrefix(r.RemoteAddr))
	if ok, suppressed := e.throttle.logAllowed(); ok {
		e.log.Warn("token exchange client authentication failed", zap.String(fieldReason, f.outcome),
			zap.Int(fieldStatus, f.status), zap.String(fieldClient, logClientID(attemptedClientID(r))),
			zap.String(fieldRemoteAddr, r.RemoteAddr), zap.Int(fieldSuppressed, suppressed))
	}
}

// trackedClient is the attempted client id when it is declared (the only
// ids tracked, so that attacker-chosen ids cost no memory), else empty.
func (e *exchangeServer) trackedClient(r *http.Request) string {
	id := attemptedClientID(r)
	if m := e.current(); m != nil && m.clients[id] != nil {
		return id
	}
	return ""
}
