package unwrap

import (
	"context"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// stubTransport answers every request at once, without a network: the
// benchmarks below measure the proxy's own work.
type stubTransport struct{}

func (stubTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	return &http.Response{StatusCode: 200, ProtoMajor: 1, ProtoMinor: 1, Request: r, ContentLength: 11,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(`{"ok":true}`))}, nil
}

// nopWriter is a ResponseWriter that keeps nothing.
type nopWriter struct {
	h    http.Header
	code int
}

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(code int)        { w.code = code }

// BenchmarkServe is one proxied request through the whole handler, with an
// upstream that answers at once: "floor" is a bare httputil.ReverseProxy
// forwarding the outer token as it is, "warm" the sidecar with the token
// cached, "cold" the sidecar verifying outer and inner tokens. warm/floor
// is the sidecar's own overhead per request.
func BenchmarkServe(b *testing.B) {
	e := newEnv(b, envOpts{})
	sc, err := New(e.cat, &Options{Now: e.clock.Now, UpstreamTransport: stubTransport{}})
	if err != nil {
		b.Fatal(err)
	}
	sc.Start(context.Background())
	defer sc.Close()
	for !sc.Ready() {
		time.Sleep(5 * time.Millisecond)
	}
	up, _ := url.Parse("http://upstream.test")
	floor := &httputil.ReverseProxy{Transport: stubTransport{}, Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(up) }}
	tok := e.outer()
	req := benchRequest(tok)
	run := func(name string, h http.Handler, before func()) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			w := &nopWriter{h: http.Header{}}
			defer reportCPU(b)()
			for b.Loop() {
				if before != nil {
					before()
				}
				clear(w.h)
				w.code = 0
				h.ServeHTTP(w, req)
				if w.code != 200 {
					b.Fatalf("status %d", w.code)
				}
			}
		})
	}
	run("floor", floor, nil)
	floorPooled := &httputil.ReverseProxy{Transport: stubTransport{}, Rewrite: floor.Rewrite, BufferPool: copyBuffers}
	run("floor-pooled", floorPooled, nil)
	run("warm", sc.Handler(), nil)
	// The same with the access log on, as the sidecar command logs it: JSON
	// at info, to a writer that keeps nothing.
	enc := zap.NewProductionEncoderConfig()
	logged, err := New(e.cat, &Options{Now: e.clock.Now, UpstreamTransport: stubTransport{},
		Logger: zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(io.Discard), zapcore.InfoLevel))})
	if err != nil {
		b.Fatal(err)
	}
	logged.Start(context.Background())
	defer logged.Close()
	for !logged.Ready() {
		time.Sleep(5 * time.Millisecond)
	}
	run("warm-accesslog", logged.Handler(), nil)
	run("cold", sc.Handler(), sc.verifier.cache.flush)
}

func benchRequest(tok string) *http.Request {
	r, _ := http.NewRequest("GET", "http://orders.test/orders/1?x=1", nil)
	r.RequestURI = "/orders/1?x=1"
	r.RemoteAddr = "127.0.0.1:40000"
	r.Header.Set("Authorization", "Bearer "+tok)
	r.Header.Set("User-Agent", "wrk")
	r.Header.Set("Accept", "*/*")
	return r
}

// TestCacheEntryBytes measures what one verified token costs in the
// verified-token cache: the live heap after verifying n distinct tokens,
// less the heap before (the tokens themselves exist before and after).
func TestCacheEntryBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("signs hundreds of RS256 tokens")
	}
	e := newEnv(t, envOpts{})
	const n = 400
	toks := make([]string, n)
	for i := range toks {
		toks[i] = e.outer()
	}
	v := e.sc.verifier
	ctx := context.Background()
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	v.cache.flush()
	if _, err := v.Verify(ctx, toks[0]); err != nil { // warm up lazily built state
		t.Fatal(err)
	}
	v.cache.flush()
	before := heap()
	for _, tok := range toks {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	after := heap()
	if got := v.cache.len(); got != n {
		t.Fatalf("cache holds %d entries, want %d", got, n)
	}
	per := float64(after-before) / n
	r, _ := v.Verify(ctx, toks[0])
	t.Logf("%.0f bytes per cached token (outer token %d B, inner token %d B)", per, len(toks[0]), len(r.Inner))
	runtime.KeepAlive(toks)
	if limit := float64(len(r.Inner)) + 1536; per > limit {
		t.Errorf("%.0f bytes per cached token, want at most the inner token + 1.5 KiB (%.0f)", per, limit)
	}
}
