package unwrap

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestMaxRequestsSheds holds max_requests requests at a blocked upstream:
// the next one gets 503 temporarily_unavailable with Retry-After, counted
// with reason max_requests, and a slot frees once one finishes.
func TestMaxRequestsSheds(t *testing.T) {
	e := newEnv(t, envOpts{sidecar: `max_requests = 2`})
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	e.up.handle = func(w http.ResponseWriter, _ *http.Request) {
		entered <- struct{}{}
		<-release
		_, _ = io.WriteString(w, "ok")
	}
	done := make(chan int, 2)
	for range 2 {
		go func() { done <- e.get("/healthz", "").Code }()
	}
	<-entered
	<-entered
	rec := e.get("/healthz", "")
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" ||
		!strings.Contains(rec.Body.String(), codeUnavailable) {
		t.Fatalf("over max_requests: got %d %q Retry-After %q, want 503 temporarily_unavailable with Retry-After",
			rec.Code, rec.Body.String(), rec.Header().Get("Retry-After"))
	}
	if got := counterValue(t, e.reg, "embedtoken_sidecar_requests_total", map[string]string{"outcome": outcomeUnavailable, "reason": string(ReasonMaxRequests)}); got != 1 {
		t.Errorf("shed count: got %v, want 1", got)
	}
	close(release)
	for range 2 {
		if code := <-done; code != http.StatusOK {
			t.Errorf("held request: got %d, want 200", code)
		}
	}
	e.up.handle = nil
	if rec := e.get("/healthz", ""); rec.Code != http.StatusOK {
		t.Errorf("after the slots freed: got %d, want 200", rec.Code)
	}
}

// TestRefusalClosesWithBody checks that a refusal of a request with a body
// asks for the connection to close (so that net/http does not drain the
// body first), and that a refusal without a body keeps it.
func TestRefusalClosesWithBody(t *testing.T) {
	e := newEnv(t, envOpts{})
	cases := []struct {
		name string
		body io.Reader
		want string
	}{
		{"body", strings.NewReader("x"), "close"},
		{"no body", nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newReq("/orders", "")
			if tc.body != nil {
				r = r.Clone(r.Context())
				r.Method = http.MethodPost
				r.Body = io.NopCloser(tc.body)
				r.ContentLength = 1
			}
			rec := httptestRecorder()
			e.sc.Handler().ServeHTTP(rec, r)
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("got %d, want 401", rec.Code)
			}
			if got := rec.Header().Get("Connection"); got != tc.want {
				t.Errorf("Connection: got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestIdleConnCutsStall: an upstream that sends a few bytes then stalls is
// cut once the pause exceeds the idle bound, and the cut is reported once.
func TestIdleConnCutsStall(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	hold := make(chan struct{})
	defer close(hold)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte("0123456789"))
		<-hold
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var cuts atomic.Int32
	idle := 50 * time.Millisecond
	c := &idleConn{Conn: raw, idle: idle, wait: idle, slack: idle / 16, onTimeout: func() { cuts.Add(1) }}
	defer c.Close()
	buf := make([]byte, 10)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("first bytes: %v", err)
	}
	_, err = c.Read(buf)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("stalled read: got %v, want a deadline error", err)
	}
	_, _ = c.Read(buf)
	if got := cuts.Load(); got != 1 {
		t.Errorf("timeouts reported: got %d, want 1", got)
	}
}

// TestGate checks the in-flight counter at its bound.
func TestGate(t *testing.T) {
	g := &gate{max: 2}
	if !g.enter() || !g.enter() {
		t.Fatal("the first two must enter")
	}
	if g.enter() {
		t.Fatal("a third entered over max 2")
	}
	g.leave()
	if !g.enter() {
		t.Fatal("a slot freed by leave was not reusable")
	}
}

// earlyTransport answers at once, without reading the request body.
type earlyTransport struct{}

func (earlyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusRequestEntityTooLarge, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
}

// TestEarlyAnswerCloses: an upstream answer that comes before the client's
// body was all forwarded is relayed with Connection: close, so that the
// server does not first drain the rest of the body at the client's pace.
func TestEarlyAnswerCloses(t *testing.T) {
	e := newEnv(t, envOpts{})
	sc, err := New(e.cat, &Options{Now: e.clock.Now, UpstreamTransport: earlyTransport{}})
	if err != nil {
		t.Fatal(err)
	}
	sc.Start(t.Context())
	defer sc.Close()
	for !sc.Ready() {
		time.Sleep(5 * time.Millisecond)
	}
	for _, tc := range []struct {
		name string
		body bool
		want string
	}{{"body left", true, "close"}, {"no body", false, ""}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newReq("/orders", e.outer())
			if tc.body {
				r.Method = http.MethodPost
				r.Body = io.NopCloser(strings.NewReader(strings.Repeat("x", 300)))
				r.ContentLength = 300
			}
			rec := httptestRecorder()
			sc.Handler().ServeHTTP(rec, r)
			if rec.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("got %d, want the upstream's 413", rec.Code)
			}
			if got := rec.Header().Get("Connection"); got != tc.want {
				t.Errorf("Connection: got %q, want %q", got, tc.want)
			}
		})
	}
}

// BenchmarkUpstreamConn reads 4 KiB chunks from a loopback connection,
// plain and wrapped in idleConn: idle/plain is the cost of
// upstream_idle_timeout on the response body path.
func BenchmarkUpstreamConn(b *testing.B) {
	for _, name := range []string{"plain", "idle"} {
		b.Run(name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				buf := make([]byte, 64<<10)
				for {
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			}()
			raw, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			var c net.Conn = raw
			if name == "idle" {
				c = &idleConn{Conn: raw, idle: time.Minute, wait: time.Minute, slack: time.Minute / 16}
			}
			defer c.Close()
			buf := make([]byte, 4<<10)
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
