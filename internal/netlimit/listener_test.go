package netlimit

import (
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestLimit checks that the (n+1)th connection is accepted only after one
// of the first n is closed, and that a slot is freed once per connection.
func TestLimit(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := New(inner, 2)
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	var clients []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	a, b := <-accepted, <-accepted
	if got := ln.InUse(); got != 2 {
		t.Fatalf("in use: got %d, want 2", got)
	}
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted over the limit of 2")
	case <-time.After(100 * time.Millisecond):
	}
	a.Close()
	a.Close() // a second Close frees nothing more
	c := <-accepted
	if got := ln.InUse(); got != 2 {
		t.Fatalf("in use after one close: got %d, want 2", got)
	}
	b.Close()
	c.Close()
	if got := ln.InUse(); got != 0 {
		t.Fatalf("in use after closing all: got %d, want 0", got)
	}
	if ln.Limit() != 2 {
		t.Fatalf("limit: got %d, want 2", ln.Limit())
	}
}

// TestCloseWakesAccept checks that closing a full listener ends a waiting
// Accept with net.ErrClosed.
func TestCloseWakesAccept(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := New(inner, 1)
	ln.sem <- struct{}{} // full
	errc := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		errc <- err
	}()
	ln.Close()
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("got %v, want net.ErrClosed", err)
	}
}

// TestEvictIdle: with every slot taken, a new connection gets in by
// closing the connection idle the longest between two requests; an
// active one is never closed for it.
func TestEvictIdle(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := New(inner, 2)
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	dial()
	a := <-accepted
	dial()
	b := <-accepted
	ln.ConnState(a, http.StateIdle)
	ln.ConnState(b, http.StateActive)
	dial()
	c := <-accepted
	if ln.Evicted() != 1 {
		t.Fatalf("evicted: got %d, want 1", ln.Evicted())
	}
	if _, err := a.Write([]byte("x")); err == nil {
		t.Error("the idle connection was not closed")
	}
	if _, err := b.Write([]byte("x")); err != nil {
		t.Errorf("the active connection was closed: %v", err)
	}
	ln.ConnState(a, http.StateClosed)
	c.Close()
	b.Close()
}

// BenchmarkConnState is what every keep-alive request adds: one
// transition to active and one back to idle.
func BenchmarkConnState(b *testing.B) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ln := New(inner, 2048)
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ReportAllocs()
	for b.Loop() {
		ln.ConnState(c, http.StateActive)
		ln.ConnState(c, http.StateIdle)
	}
}

// TestEvictStalled: with no idle connection, a full listener closes the
// oldest connection that has sent no whole first request header for
// stalledAfter, and never a younger one nor an active one.
func TestEvictStalled(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := New(inner, 2)
	defer ln.Close()
	var offset atomic.Int64
	t0 := time.Now()
	ln.now = func() time.Time { return t0.Add(time.Duration(offset.Load())) }
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	dial()
	a := <-accepted
	ln.ConnState(a, http.StateNew)
	dial()
	b := <-accepted
	ln.ConnState(b, http.StateNew)
	ln.ConnState(b, http.StateActive)
	offset.Store(int64(stalledAfter / 2))
	dial()
	select {
	case <-accepted:
		t.Fatal("a connection younger than stalledAfter was closed to make room")
	case <-time.After(3 * evictEvery):
	}
	offset.Store(int64(stalledAfter))
	c := <-accepted
	if ln.Evicted() != 1 {
		t.Fatalf("evicted: got %d, want 1", ln.Evicted())
	}
	if _, err := a.Write([]byte("x")); err == nil {
		t.Error("the stalled connection was not closed")
	}
	if _, err := b.Write([]byte("x")); err != nil {
		t.Errorf("the active connection was closed: %v", err)
	}
	c.Close()
	b.Close()
}
