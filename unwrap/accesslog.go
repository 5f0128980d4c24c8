package unwrap

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// The access log: one line per request at info level (logger
// "unwrap.access"), on unless sidecar.access_log = false or --log-level is
// above info. It holds the outcome and its precise reason, the API, the
// issuer (trust name, "minter" or "direct"), the method, the path without
// query, the latency, the request id, whether the verified-token cache
// answered, and for refusals what differed (expected against got, with
// values from tokens sanitized: see printable). It never holds token
// material, a query string, or a header value other than these.

// Access log field keys (beside those of log.go).
const (
	fieldLatency = "latency"
	fieldDetail  = "detail"
)

// maxLoggedValue bounds a token-supplied value in a log line.
const maxLoggedValue = 128

// maxLoggedPath bounds the path of an access log line: a path may be as
// long as the header block allows (max_token_bytes + 8 KiB), and every
// request, refused ones included, writes a line.
const maxLoggedPath = 512

// accessInfo is what the access log line of a request needs, filled in as
// the request goes; part of requestInfo.
type accessInfo struct {
	start  time.Time
	status int
	reason Reason
	source string
	cached bool
	detail string
	// path is the raw path decide judged: the original request's on the
	// decision endpoints. Empty when decide did not get that far.
	path string
}

// refused records a refusal.
func (a *accessInfo) refused(f *Failure) {
	a.status, a.reason, a.source = f.Status, f.Reason, f.Source
	if f.Err != nil {
		a.detail = f.Err.Error()
	}
}

// answered records a status and reason that no Failure describes.
func (a *accessInfo) answered(status int, r Reason) { a.status, a.reason = status, r }

// modifyResponse records the upstream's status, then applies the package's
// modifyResponse. The outbound request's context is the inbound one's.
func (s *Sidecar) modifyResponse(resp *http.Response) error {
	if resp.Request != nil {
		infoFrom(resp.Request.Context()).access.status = resp.StatusCode
	}
	return modifyResponse(resp)
}

// newAccessLog returns the access logger, or nil when it is turned off.
func newAccessLog(log *zap.Logger, on bool) *zap.Logger {
	if !on {
		return nil
	}
	return log.Named("access")
}

// logAccess writes the request's access log line.
func (s *Sidecar) logAccess(r *http.Request, ri *requestInfo) {
	if s.access == nil {
		return
	}
	ce := s.access.Check(zapcore.InfoLevel, "request")
	if ce == nil {
		return
	}
	a := &ri.access
	path := a.path
	if path == "" {
		path = printable(r.URL.EscapedPath())
	}
	if len(path) > maxLoggedPath {
		path = path[:maxLoggedPath] + "..." // printable ASCII: the cut splits no character
	}
	fields := make([]zap.Field, 0, 10)
	fields = append(fields,
		zap.Int(fieldStatus, a.status),
		zap.String(fieldReason, string(a.reason)),
		zap.String(fieldMethod, printable(r.Method)),
		zap.String(fieldPath, path),
		zap.Duration(fieldLatency, time.Since(a.start)),
		zap.String(fieldRequestID, ri.id),
	)
	if a.source != "" {
		fields = append(fields, zap.String(fieldIssuer, a.source), zap.Bool(fieldCached, a.cached))
	}
	if a.detail != "" {
		fields = append(fields, zap.String(fieldDetail, a.detail))
	}
	ce.Write(fields...)
}

// printable makes a value that came from the request or an unverified
// token safe to log: at most maxLoggedValue bytes, printable ASCII only
// (other bytes become '?'), quoted when it was changed. It is for values
// compared with configuration (iss, typ, alg, aud), never for tokens.
func printable(s string) string {
	clean := len(s) <= maxLoggedValue
	for i := 0; clean && i < len(s); i++ {
		clean = s[i] > ' ' && s[i] < 0x7f && s[i] != '"' && s[i] != '\\'
	}
	if clean {
		return s
	}
	var b strings.Builder
	n := min(len(s), maxLoggedValue)
	for i := 0; i < n; i++ {
		c := s[i]
		if c < ' ' || c >= 0x7f {
			c = '?'
		}
		b.WriteByte(c)
	}
	out := strconv.Quote(b.String())
	if len(s) > maxLoggedValue {
		out += "..."
	}
	return out
}

// quoted is printable, always quoted: for values in a detail sentence.
func quoted(s string) string {
	p := printable(s)
	if strings.HasPrefix(p, `"`) {
		return p
	}
	return `"` + p + `"`
}

// logEvery is how often a rate-limited log line may repeat.
const logEvery = time.Minute

// rateLimited lets one event through per interval: for log lines that a
// flood of requests could repeat (a misconfiguration meets every request).
type rateLimited struct {
	interval time.Duration
	next     atomic.Int64 // unix nanoseconds
}

// allow reports whether the event at now may be logged.
func (l *rateLimited) allow(now time.Time) bool {
	n := l.next.Load()
	if now.UnixNano() < n {
		return false
	}
	return l.next.CompareAndSwap(n, now.Add(l.interval).UnixNano())
}

// AccessLoggerName is the logger name of access log lines when
// Options.Logger has no name of its own (as the commands' loggers).
const AccessLoggerName = "unwrap.access"
