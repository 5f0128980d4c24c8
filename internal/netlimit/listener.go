package netlimit

import (
	"net"
	"sync"
	"sync/atomic"
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
}

// New returns ln limited to n open connections (n > 0).
func New(ln net.Listener, n int) *Listener {
	return &Listener{Listener: ln, sem: make(chan struct{}, n), done: make(chan struct{})}
}

// Accept waits for a free slot, then accepts a connection. It returns
// net.ErrClosed once the listener is closed.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	l.open.Add(1)
	return &conn{Conn: c, l: l}, nil
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
