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
	idle    map[net.Conn]time.Time // connections idle between requests, since
	evicted atomic.Int64
}

// New returns ln limited to n open connections (n > 0).
func New(ln net.Listener, n int) *Listener {
	return &Listener{Listener: ln, sem: make(chan struct{}, n), done: make(chan struct{}), idle: map[net.Conn]time.Time{}}
}

// ConnState is to be set as the http.Server's ConnState: it tracks the
// connections idle between two requests, which Accept may close when the
// listener is full. Connections that never sent a request are not
// tracked (the server's header timeout bounds them).
func (l *Listener) ConnState(c net.Conn, st http.ConnState) {
	switch st {
	case http.StateIdle:
		l.mu.Lock()
		l.idle[c] = time.Now()
		l.mu.Unlock()
	case http.StateActive, http.StateHijacked, http.StateClosed:
		l.mu.Lock()
		delete(l.idle, c)
		l.mu.Unlock()
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

// evictIdle closes the connection idle the longest, if any.
func (l *Listener) evictIdle() {
	l.mu.Lock()
	var oldest net.Conn
	var since time.Time
	for c, t := range l.idle {
		if oldest == nil || t.Before(since) {
			oldest, since = c, t
		}
	}
	delete(l.idle, oldest)
	l.mu.Unlock()
	if oldest != nil {
		l.evicted.Add(1)
		oldest.Close() // the server sees StateClosed; the slot frees on Close
	}
}

// Evicted is the number of idle connections closed to make room.
func (l *Listener) Evicted() int64 { return l.evicted.Load() }

// Accept waits for a free slot, then accepts a connection. When every
// slot is taken it accepts the next connection (one at most is held so,
// unserved) and makes room for it by closing the connection idle the
// longest between two requests (see ConnState), so that idle keep-alive
// connections cannot lock new clients out; without an idle one it waits
// for a slot. It returns net.ErrClosed once the listener is closed.
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
