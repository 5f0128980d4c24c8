package netlimit

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Listener is a net.Listener with at most a fixed number of accepted
// connections open at once: idle keep-alive connections count. A slot is
// freed when a connection is closed. It is safe for concurrent use.
type Listener struct {
	net.Listener
	sem       chan struct{}
	open      atomic.Int64
	done      chan struct{}
	closeOnce sync.Once

	mu      sync.Mutex
	now     func() time.Time
	idle    map[net.Conn]time.Time // connections idle between requests, since
	fresh   map[net.Conn]time.Time // connections without a first request yet, since
	evicted atomic.Int64
}

// New returns ln limited to n open connections (n > 0).
func New(ln net.Listener, n int) *Listener {
	return &Listener{Listener: ln, sem: make(chan struct{}, n), done: make(chan struct{}), now: time.Now,
		idle: map[net.Conn]time.Time{}, fresh: map[net.Conn]time.Time{}}
}

// stalledAfter is how long a new connection may go without a whole first
// request header before a full listener may close it to make room. Clients
// send their request at once; without this, connections that send part of
// a header and stall would hold every slot for the server's header
// timeout (10 s), again and again.
const stalledAfter = time.Second

// ConnState is to be set as the http.Server's ConnState: it tracks the
// connections idle between two requests and those still without a first
// request, which Accept may close when the listener is full.
func (l *Listener) ConnState(c net.Conn, st http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch st {
	case http.StateNew:
		l.fresh[c] = l.now()
	case http.StateIdle:
		delete(l.fresh, c)
		l.idle[c] = l.now()
	case http.StateActive, http.StateHijacked, http.StateClosed:
		delete(l.fresh, c)
		delete(l.idle, c)
	}
}

// evictEvery is how often a full listener looks again for an idle
// connection to close.
const evictEvery = 100 * time.Millisecond

// acquire takes a slot for a connection already accepted, closing idle
// connections while the listener is full; false means the listener was
// closed.
func (l *Listener) acquire() bool {
	for {
		select {
		case l.sem <- struct{}{}:
			return true
		default:
		}
		l.evictIdle()
		t := time.NewTimer(evictEvery)
		select {
		case l.sem <- struct{}{}:
			t.Stop()
			return true
		case <-l.done:
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// evictIdle closes the connection idle the longest, if any, else the
// oldest one that has not sent a whole first request header for
// stalledAfter.
func (l *Listener) evictIdle() {
	l.mu.Lock()
	oldest, _ := oldestOf(l.idle)
	delete(l.idle, oldest)
	if oldest == nil {
		if c, t := oldestOf(l.fresh); c != nil && l.now().Sub(t) >= stalledAfter {
			oldest = c
			delete(l.fresh, c)
		}
	}
	l.mu.Unlock()
	if oldest != nil {
		l.evicted.Add(1)
		oldest.Close() // the server sees StateClosed; the slot frees on Close
	}
}

// oldestOf returns the connection of m with the earliest time, or nil.
func oldestOf(m map[net.Conn]time.Time) (oldest net.Conn, since time.Time) {
	for c, t := range m {
		if oldest == nil || t.Before(since) {
			oldest, since = c, t
		}
	}
	return oldest, since
}

// Evicted is the number of idle or stalled connections closed to make room.
func (l *Listener) Evicted() int64 { return l.evicted.Load() }

// Accept waits for a free slot, then accepts a connection. When every
// slot is taken it accepts the next connection (one at most is held so,
// unserved) and makes room for it by closing the connection idle the
// longest between two requests, else the oldest one without a whole first
// request header after stalledAfter (see ConnState), so that idle
// keep-alive connections and stalled ones cannot lock new clients out;
// without one it waits for a slot. It returns net.ErrClosed once the listener is closed.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
		c, err := l.Listener.Accept()
		if err != nil {
			<-l.sem
			return nil, err
		}
		return l.track(c), nil
	default:
	}
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if !l.acquire() {
		c.Close()
		return nil, net.ErrClosed
	}
	return l.track(c), nil
}

func (l *Listener) track(c net.Conn) net.Conn {
	l.open.Add(1)
	return &conn{Conn: c, l: l}
}

// Close closes the listener and wakes an Accept waiting for a slot.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// InUse is the number of accepted connections open.
func (l *Listener) InUse() int { return int(l.open.Load()) }

// Limit is the largest number of connections open at once.
func (l *Listener) Limit() int { return cap(l.sem) }

// conn frees its slot when first closed.
type conn struct {
	net.Conn
	l    *Listener
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.open.Add(-1)
		<-c.l.sem
	})
	return err
}

// CloseWrite half-closes a TCP connection. net/http calls it before
// closing a connection whose request body it did not read, so that the
// client receives the answer rather than a reset.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
