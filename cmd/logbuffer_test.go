package cmd

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/embedtoken/embedtoken/unwrap"
)

// messages returns the msg of each line written to l, in order.
func messages(l *lockedBuffer) []string {
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		if i := strings.Index(line, `"msg":"`); i >= 0 {
			m := line[i+len(`"msg":"`):]
			out = append(out, m[:strings.IndexByte(m, '"')])
		}
	}
	return out
}

func newBufferedTestLogger(t *testing.T, interval time.Duration) (*zap.Logger, *logBuffer, *lockedBuffer) {
	t.Helper()
	var stderr lockedBuffer
	out := newLogBuffer(&stderr)
	log, err := newLogger(out, "info")
	if err != nil {
		t.Fatal(err)
	}
	out.start(interval)
	t.Cleanup(out.close)
	return bufferAccessLines(log, out), out, &stderr
}

// TestLogBuffer: access log lines wait; any other line writes them first,
// in order; the end of the last request in flight, a full buffer and close
// write them; with no interval nothing waits.
func TestLogBuffer(t *testing.T) {
	access := func(log *zap.Logger) *zap.Logger {
		l := log.Named("unwrap").Named("access")
		if got := "unwrap.access"; got != unwrap.AccessLoggerName {
			t.Fatalf("AccessLoggerName %q, want %q", unwrap.AccessLoggerName, got)
		}
		return l
	}
	tests := []struct {
		name     string
		interval time.Duration // time.Hour: no timer flush during the test
		run      func(log *zap.Logger, out *logBuffer)
		want     []string
	}{
		{name: "access lines wait", interval: time.Hour, run: func(log *zap.Logger, _ *logBuffer) {
			access(log).Info("a1")
			access(log).Info("a2")
		}},
		{name: "another line writes them first, in order", interval: time.Hour, run: func(log *zap.Logger, _ *logBuffer) {
			access(log).Info("a1")
			log.Named("unwrap").Warn("w1")
			access(log).Info("a2")
		}, want: []string{"a1", "w1"}},
		{name: "a line through With flushes too", interval: time.Hour, run: func(log *zap.Logger, _ *logBuffer) {
			access(log).With(zap.String("api", "orders")).Info("a1")
			log.With(zap.String("api", "orders")).Info("i1")
		}, want: []string{"a1", "i1"}},
		{name: "a level below the logger's writes nothing and flushes nothing", interval: time.Hour, run: func(log *zap.Logger, _ *logBuffer) {
			access(log).Info("a1")
			log.Debug("d1")
		}},
		{name: "the last request in flight writes them", interval: time.Hour, run: func(log *zap.Logger, out *logBuffer) {
			h := out.track(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { access(log).Info("a1") }))
			outer := out.track(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h.ServeHTTP(w, r) // still in flight: the outer request
				access(log).Info("a2")
			}))
			outer.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
		}, want: []string{"a1", "a2"}},
		{name: "a full buffer is written", interval: time.Hour, run: func(log *zap.Logger, _ *logBuffer) {
			pad := strings.Repeat("x", 1000)
			for range logBufferSize/1000 + 1 {
				access(log).Info("a", zap.String("pad", pad))
			}
		}, want: []string{"a"}}, // at least the first; checked below
		{name: "no interval: every line at once", interval: 0, run: func(log *zap.Logger, _ *logBuffer) {
			access(log).Info("a1")
		}, want: []string{"a1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, out, stderr := newBufferedTestLogger(t, tt.interval)
			tt.run(log, out)
			got := messages(stderr)
			if tt.name == "a full buffer is written" {
				if len(got) == 0 || len(got) > logBufferSize/1000 {
					t.Fatalf("%d lines written, want some but not all", len(got))
				}
				return
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("written %q, want %q", got, tt.want)
			}
			out.close()
			if n := len(messages(stderr)); n < len(got) || strings.Count(stderr.String(), "\n") != n {
				t.Errorf("after close: %d lines, %d newlines", n, strings.Count(stderr.String(), "\n"))
			}
		})
	}
}

// TestLogBufferClose: close writes every line held, and later lines go
// through at once.
func TestLogBufferClose(t *testing.T) {
	log, out, stderr := newBufferedTestLogger(t, time.Hour)
	acc := log.Named("unwrap").Named("access")
	for range 3 {
		acc.Info("a")
	}
	if n := len(messages(stderr)); n != 0 {
		t.Fatalf("%d lines before close, want them held", n)
	}
	out.close()
	if n := len(messages(stderr)); n != 3 {
		t.Fatalf("%d lines after close, want 3", n)
	}
	acc.Info("b")
	if got := messages(stderr); len(got) != 4 || got[3] != "b" {
		t.Errorf("after close: %q, want a line written at once", got)
	}
}

// TestLogBufferSync: the logger's Sync (at exit) writes the lines held.
func TestLogBufferSync(t *testing.T) {
	log, _, stderr := newBufferedTestLogger(t, time.Hour)
	log.Named("unwrap").Named("access").Info("a")
	if err := log.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := messages(stderr); len(got) != 1 {
		t.Errorf("after Sync: %q, want the line", got)
	}
}

// TestSidecarFlagErrors: a bad --access-log-flush, and --pprof without an
// admin listener, are usage errors with a hint.
func TestSidecarFlagErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"catalog.hcl":        strings.Replace(testMinter, "%d", "6144", 1),
		"sidecar/orders.hcl": "sidecar {\n  api = \"orders\"\n  listen = \"127.0.0.1:0\"\n  upstream = \"http://127.0.0.1:1\"\n  admin_listen = \"\"\n}\n",
	})
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{name: "negative flush", args: []string{"--access-log-flush", "-1s"}, want: []string{"bad --access-log-flush", "hint: use a duration"}},
		{name: "pprof without admin listener", args: []string{"--pprof"}, want: []string{"--pprof is served on the admin listener", "hint: set admin_listen"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"sidecar", "--config", dir + "/catalog.hcl", "--config", dir + "/sidecar/orders.hcl"}, tt.args...)
			code, _, errOut := run(t, args...)
			if code != 2 {
				t.Errorf("exit %d, want 2\n%s", code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
}

// BenchmarkAccessLogLine is one access log line written to a file, as the
// sidecar's stderr often is: "direct" is a write(2) per line (before
// logBuffer, or --access-log-flush 0), "buffered" through logBuffer with a
// request in flight, so that only a full buffer is written.
func BenchmarkAccessLogLine(b *testing.B) {
	for _, mode := range []string{"direct", "buffered"} {
		b.Run(mode, func(b *testing.B) {
			f, err := os.CreateTemp(b.TempDir(), "stderr")
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			out := newLogBuffer(f)
			log, err := newLogger(out, "info")
			if err != nil {
				b.Fatal(err)
			}
			if mode == "buffered" {
				out.start(time.Hour)
				defer out.close()
				log = bufferAccessLines(log, out)
			}
			acc := log.Named("unwrap").Named("access").With(zap.String("api", "orders"))
			b.ReportAllocs()
			for b.Loop() {
				acc.Info("request", zap.Int("status", 200), zap.String("reason", "ok"), zap.String("method", "GET"),
					zap.String("path", "/orders/42"), zap.Duration("latency", 1234*time.Microsecond),
					zap.String("request_id", "2facda586bf448d8e6c62764750e4211"), zap.String("issuer", "bench"), zap.Bool("cached", true))
			}
		})
	}
}

// TestPprofHandler: the profiler's paths beside the admin handler, and
// bad requests.
func TestPprofHandler(t *testing.T) {
	admin := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("admin")) })
	h := withPprof(admin, nil)
	tests := []struct {
		path   string
		status int
		body   string
		remote string // default 127.0.0.1:4321
	}{
		{"/debug/pprof/", 200, "goroutine", ""},
		{"/debug/pprof/", 200, "goroutine", "[::1]:4321"},
		{"/debug/pprof/", 403, "loopback clients only", "10.1.2.3:4321"},
		{"/debug/pprof/heap", 403, "loopback clients only", "[::ffff:10.1.2.3]:4321"},
		{"/metrics", 200, "admin", "10.1.2.3:4321"},
		{"/debug/pprof/goroutine?debug=1", 200, "goroutine profile:", ""},
		{"/debug/pprof/heap", 200, "", ""},
		{"/debug/pprof/nope", 404, "unknown profile", ""},
		{"/debug/pprof/profile?seconds=0", 400, "seconds: want 1 to 60", ""},
		{"/debug/pprof/profile?seconds=61", 400, "seconds: want 1 to 60", ""},
		{"/debug/pprof/profile?seconds=x", 400, "seconds", ""},
		{"/metrics", 200, "admin", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path+" from "+tt.remote, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", tt.path, nil)
			req.RemoteAddr = "127.0.0.1:4321"
			if tt.remote != "" {
				req.RemoteAddr = tt.remote
			}
			h.ServeHTTP(rec, req)
			if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.body) {
				t.Errorf("GET %s: %d %.80q, want %d with %q", tt.path, rec.Code, rec.Body.String(), tt.status, tt.body)
			}
		})
	}
}

// TestPprofStopsOnShutdown: a running CPU profile ends, with what it
// collected, when the daemon shuts down (it must not hold the drain).
func TestPprofStopsOnShutdown(t *testing.T) {
	stop := make(chan struct{})
	h := withPprof(http.NotFoundHandler(), stop)
	req := httptest.NewRequest("GET", "/debug/pprof/profile?seconds=60", nil)
	req.RemoteAddr = "127.0.0.1:4321"
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(rec, req)
	}()
	time.Sleep(100 * time.Millisecond) // let the profile start
	close(stop)
	select {
	case <-done:
	case <-time.After(30 * time.Second): // a bound, far below the 60 s asked for
		t.Fatal("the CPU profile did not end on shutdown")
	}
	if rec.Code != http.StatusOK || rec.Body.Len() == 0 {
		t.Errorf("status %d, %d bytes: want the profile collected so far", rec.Code, rec.Body.Len())
	}
}
