package cmd

import (
	"flag"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/embedtoken/embedtoken/unwrap"
)

// The sidecar's access log is buffered: one write(2) per request line was
// the largest cost the sidecar adds to a cached request (about 5 % of its
// CPU per request, profiled under load). Lines wait in a logBuffer until
// no request is in flight (so an idle or lightly loaded sidecar writes each
// line before the response leaves, as before), until logBufferSize bytes
// wait, or at most --access-log-flush; a clean shutdown writes the rest.
// Every other line (lifecycle, warnings, errors) is written at once,
// together with the access lines before it, so the order of lines is kept.
// A crash (SIGKILL, out of memory, a fatal runtime error) loses the access
// lines of at most the last --access-log-flush.

// defaultAccessLogFlush is the longest an access log line waits in the
// buffer under load: Envoy's file access log flushes every second too.
const defaultAccessLogFlush = time.Second

// logBufferSize is how many bytes of lines wait at most: about 200 access
// log lines.
const logBufferSize = 64 << 10

// logBuffer is the io.Writer of the sidecar's logger. Until start, and
// after stop, every write goes to w at once.
type logBuffer struct {
	w   io.Writer
	mu  sync.Mutex
	buf []byte
	on  bool
	// pending is set while buf holds lines: end reads it without the lock.
	pending atomic.Bool
	// inFlight counts the requests between begin and end.
	inFlight atomic.Int64
	stop     chan struct{}
	done     chan struct{}
}

func newLogBuffer(w io.Writer) *logBuffer { return &logBuffer{w: w} }

// Write holds p until the next flush; a full buffer is written first.
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.on {
		return b.w.Write(p)
	}
	if len(b.buf)+len(p) > logBufferSize {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
	}
	b.buf = append(b.buf, p...)
	b.pending.Store(true)
	return len(p), nil
}

// Flush writes the lines held.
func (b *logBuffer) Flush() error {
	if !b.pending.Load() {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked()
}

func (b *logBuffer) flushLocked() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0]
	b.pending.Store(false)
	return err
}

// Sync writes the lines held, then syncs w when it can (zap's Sync).
func (b *logBuffer) Sync() error {
	err := b.Flush()
	if s, ok := b.w.(interface{ Sync() error }); ok {
		if serr := s.Sync(); err == nil {
			err = serr
		}
	}
	return err
}

// start turns buffering on, flushed at least every interval. An interval
// of zero or less leaves it off: every line is written at once.
func (b *logBuffer) start(interval time.Duration) {
	if interval <= 0 {
		return
	}
	b.mu.Lock()
	b.on = true
	b.mu.Unlock()
	b.stop, b.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(b.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-b.stop:
				return
			case <-t.C:
				_ = b.Flush()
			}
		}
	}()
}

// close writes the lines held and turns buffering off.
func (b *logBuffer) close() {
	if b.stop != nil {
		close(b.stop)
		<-b.done
		b.stop = nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	_ = b.flushLocked()
	b.on = false
}

// track wraps a handler whose requests write access log lines: when the
// last request in flight ends, the lines held are written.
func (b *logBuffer) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.inFlight.Add(1)
		defer b.end()
		h.ServeHTTP(w, r)
	})
}

func (b *logBuffer) end() {
	if b.inFlight.Add(-1) == 0 {
		_ = b.Flush()
	}
}

// bufferAccessLines wraps a logger writing to b: every line but the access
// log's is followed by a flush, so only access lines wait.
func bufferAccessLines(log *zap.Logger, b *logBuffer) *zap.Logger {
	return log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return &flushCore{Core: c, buf: b} }))
}

// flushCore flushes buf after writing an entry of another logger than the
// access log's.
type flushCore struct {
	zapcore.Core
	buf *logBuffer
}

func (c *flushCore) Level() zapcore.Level { return zapcore.LevelOf(c.Core) }

func (c *flushCore) With(fields []zapcore.Field) zapcore.Core {
	return &flushCore{Core: c.Core.With(fields), buf: c.buf}
}

func (c *flushCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *flushCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	err := c.Core.Write(e, fields)
	if e.LoggerName != unwrap.AccessLoggerName {
		if ferr := c.buf.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

// sidecarFlags are the sidecar's own flags beside --config and
// --log-level.
type sidecarFlags struct {
	accessLogFlush time.Duration
	pprof          bool
}

func (f *sidecarFlags) add(fs *flag.FlagSet) {
	fs.DurationVar(&f.accessLogFlush, "access-log-flush", defaultAccessLogFlush,
		"longest wait of a buffered access log line under load (0: write each line at once)")
	fs.BoolVar(&f.pprof, "pprof", false, "serve Go's profiler at /debug/pprof/ on admin_listen (for profiling only)")
}
