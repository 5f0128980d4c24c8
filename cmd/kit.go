package cmd

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/embedtoken/embedtoken/catalog"
)

// The kit of a second binary (cmd/embedtoken-kube): the flag, error,
// configuration and listener conventions of embedtoken's own commands,
// exported so that its commands behave the same without being linked into
// embedtoken.

// NewFlags is newFlags for a command of the binary prog (its usage line
// names prog, not embedtoken).
func NewFlags(prog, name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := newFlags(name, synopsis, stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s %s\n\nFlags:\n", prog, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// ParseFlags is parseFlags.
func ParseFlags(fs *flag.FlagSet, args []string, maxArgs int) error {
	return parseFlags(fs, args, maxArgs)
}

// StringList is a repeatable string flag.
type StringList = stringList

// UsageError is a command-line mistake: exit code 2, with a hint.
func UsageError(msg, hint string) error { return &usageError{msg: msg, hint: hint} }

// ConfigError is a configuration that cannot be used: exit code 2.
func ConfigError(msg string) error { return &configError{msg: msg} }

// LoadCatalog is loadCatalog for a command that runs none of the blocks
// that hold secrets (inject and the injector read declarations only):
// error diagnostics to stderr (warnings are check's), a ConfigError on
// errors.
func LoadCatalog(paths []string, keys catalog.KeyMode, stderr io.Writer) (*catalog.Catalog, error) {
	return loadCatalogDiags(paths, keys, 0, stderr, true)
}

// NewLogger is the JSON logger of the long-running commands.
func NewLogger(w io.Writer, level string) (*zap.Logger, error) { return newLogger(w, level) }

// NewRegistry is a Prometheus registry with the Go and process collectors.
func NewRegistry() *prometheus.Registry { return newRegistry() }

// AdminHandler serves /healthz, /readyz and /metrics.
func AdminHandler(reg *prometheus.Registry, ready func() bool) http.Handler {
	return adminHandler(reg, ready)
}

// FileStamps summarizes files' modification times and sizes.
func FileStamps(paths []string) string { return fileStamps(paths) }

// Listener is one listener of a long-running command.
type Listener struct{ s *server }

// NewListener is a listener named name (for logs) serving h on addr with
// embedtoken's timeouts.
func NewListener(name, addr string, h http.Handler, log *zap.Logger) *Listener {
	return &Listener{s: &server{name: name, addr: addr, srv: newHTTPServer(h, log, 0)}}
}

// ListenAndServe binds every listener (wrap, when not nil, wraps the named
// one's net.Listener, e.g. in TLS), then serves until ctx is done and
// drains for up to drain.
func ListenAndServe(ctx context.Context, log *zap.Logger, drain time.Duration, ls []*Listener, wrap map[string]func(net.Listener) net.Listener) error {
	servers := make([]*server, len(ls))
	for i, l := range ls {
		servers[i] = l.s
	}
	if err := listen(servers); err != nil {
		return err
	}
	for _, s := range servers {
		if w := wrap[s.name]; w != nil {
			s.ln = w(s.ln)
		}
	}
	return serve(ctx, log, drain, servers)
}
