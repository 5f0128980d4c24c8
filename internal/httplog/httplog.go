// Package httplog turns the lines that Go's net/http writes to a
// *log.Logger (http.Server.ErrorLog, httputil.ReverseProxy.ErrorLog, and
// the standard logger, which the HTTP/1 transport uses for "Unsolicited
// response received on idle HTTP channel") into zap entries without their
// payload: those lines quote bytes sent by clients or upstreams (a
// response an upstream sent for a smuggled request, a TLS record), which may
// hold tokens. Each line becomes one fixed message with a stable reason
// taken from the line's known prefix; everything else in it is dropped.
// It is shared by cmd and unwrap.
package httplog

import (
	"log"
	"strings"

	"go.uber.org/zap"
)

// Message is the message of every entry.
const Message = "net/http error"

// reasons maps the start of a net/http log line to its reason.
var reasons = [...]struct{ prefix, reason string }{
	{"Unsolicited response received on idle HTTP channel", "upstream_unsolicited_response"},
	{"http: TLS handshake error", reasonTLS},
	{"http: Accept error", "accept"},
	{"http: panic serving", "handler_panic"},
	{"http: superfluous response.WriteHeader", "superfluous_write_header"},
	{"http: response.WriteHeader on hijacked connection", "write_header_hijacked"},
	{"http: response.Write on hijacked connection", "write_hijacked"},
	{"http: WriteHeader called with both Transfer-Encoding", "write_header_framing"},
	{"http: invalid Content-Length", "invalid_content_length"},
	{"http: request method or response status code does not allow body", "body_not_allowed"},
	{"http: proxy error", "proxy_error"},
	{"httputil: ReverseProxy read error during body copy", "proxy_body_copy"},
	{"httputil: ReverseProxy", "proxy"},
	{"http2:", "http2"},
	{"http:", "http"},
}

// reasonTLS is logged at debug level: scanners cause many.
const reasonTLS = "tls_handshake"

// Reason returns the reason of a net/http log line: "other" when it is
// not known.
func Reason(line string) string {
	for _, r := range reasons {
		if strings.HasPrefix(line, r.prefix) {
			return r.reason
		}
	}
	return "other"
}

// Writer is an io.Writer for a *log.Logger without flags (log.New(w, "",
// 0)): each write is one line, logged as Message with its reason at warn
// level (debug for TLS handshake errors). Safe for concurrent use.
type Writer struct{ log *zap.Logger }

// NewWriter returns a Writer logging to l.
func NewWriter(l *zap.Logger) *Writer { return &Writer{log: l} }

func (w *Writer) Write(p []byte) (int, error) {
	reason := Reason(string(p))
	if reason == reasonTLS {
		w.log.Debug(Message, zap.String("reason", reason))
	} else {
		w.log.Warn(Message, zap.String("reason", reason))
	}
	return len(p), nil
}

// New returns a *log.Logger for an http.Server or httputil.ReverseProxy
// ErrorLog that logs to l through a Writer.
func New(l *zap.Logger) *log.Logger { return log.New(NewWriter(l), "", 0) }

// RedirectStd sends the standard logger's output (which the HTTP/1
// transport writes to) through a Writer to l, and returns a function that
// restores its previous output and flags.
func RedirectStd(l *zap.Logger) (restore func()) {
	out, flags, prefix := log.Writer(), log.Flags(), log.Prefix()
	log.SetOutput(NewWriter(l))
	log.SetFlags(0)
	log.SetPrefix("")
	return func() {
		log.SetOutput(out)
		log.SetFlags(flags)
		log.SetPrefix(prefix)
	}
}
