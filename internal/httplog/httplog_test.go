package httplog

import (
	"log"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestWriterDropsPayload(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	l := New(zap.New(core))
	secret := "Bearer eyJhbGciOiJFZERTQSJ9.c2VjcmV0.c2ln"
	lines := []struct {
		line, reason string
		level        zapcore.Level
	}{
		{`Unsolicited response received on idle HTTP channel starting with "HTTP/1.1 200 OK\r\n` + secret + `"; err=<nil>`, "upstream_unsolicited_response", zap.WarnLevel},
		{"http: TLS handshake error from 127.0.0.1:5555: " + secret, "tls_handshake", zap.DebugLevel},
		{"http: panic serving 127.0.0.1:1: " + secret, "handler_panic", zap.WarnLevel},
		{"httputil: ReverseProxy read error during body copy: " + secret, "proxy_body_copy", zap.WarnLevel},
		{"http2: server: error reading preface from client " + secret, "http2", zap.WarnLevel},
		{"http: superfluous response.WriteHeader call from x", "superfluous_write_header", zap.WarnLevel},
		{secret, "other", zap.WarnLevel},
	}
	for _, tc := range lines {
		l.Print(tc.line)
	}
	entries := logs.AllUntimed()
	if len(entries) != len(lines) {
		t.Fatalf("%d entries, want %d", len(entries), len(lines))
	}
	for i, e := range entries {
		if e.Message != Message || e.Level != lines[i].level {
			t.Errorf("entry %d: %s %q", i, e.Level, e.Message)
		}
		if got := e.ContextMap()["reason"]; got != lines[i].reason || len(e.Context) != 1 {
			t.Errorf("entry %d: reason %v, want %s (fields %v)", i, got, lines[i].reason, e.ContextMap())
		}
		if strings.Contains(e.Message, "eyJ") {
			t.Errorf("entry %d leaks the payload", i)
		}
	}
}

func TestRedirectStd(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	restore := RedirectStd(zap.New(core))
	log.Printf("Unsolicited response received on idle HTTP channel starting with %q; err=%v", "HTTP/1.1 200 OK secret", nil)
	restore()
	if n := logs.FilterField(zap.String("reason", "upstream_unsolicited_response")).Len(); n != 1 {
		t.Fatalf("%d entries", n)
	}
	if w := log.Writer(); w == nil {
		t.Fatal("no writer restored")
	} else if _, ok := w.(*Writer); ok {
		t.Fatal("not restored")
	}
}
