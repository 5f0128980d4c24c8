package cmd

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/embedtoken/embedtoken/catalog"
	"github.com/embedtoken/embedtoken/internal/httplog"
	"github.com/embedtoken/embedtoken/unwrap"
)

// reloadReadyLimit bounds how long a reloaded sidecar may take to load its
// key sets before the running one is kept.
const reloadReadyLimit = 30 * time.Second

func runSidecar(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var flags sidecarFlags
	out := newLogBuffer(stderr) // logbuffer.go: access log lines in batches
	configs, log, cat, err := startDaemon("sidecar", args, out, catalog.KeysSkip, sidecarRuns, flags.add)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	if flags.accessLogFlush < 0 {
		return &usageError{msg: "bad --access-log-flush: negative", hint: "use a duration such as 1s, or 0 to write each line at once"}
	}
	log = bufferAccessLines(log, out)
	out.start(flags.accessLogFlush)
	defer out.close()
	// The HTTP/1 transport logs to the standard logger, with upstream bytes.
	defer httplog.RedirectStd(log.Named("stdlog"))()
	if cat.Sidecar == nil {
		return &usageError{msg: "the configuration has no sidecar block",
			hint: "add the sidecar's own file: --config hcl/ --config hcl/sidecars/<api>.hcl"}
	}
	if flags.pprof && cat.Sidecar.AdminListen == "" {
		return &usageError{msg: "--pprof is served on the admin listener, and sidecar.admin_listen is empty", hint: "set admin_listen (loopback) in the sidecar block"}
	}
	reg := newRegistry()
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "embedtoken", Subsystem: "sidecar", Name: "config_reloads_total",
		Help: "Configuration reloads by result (ok or error).",
	}, []string{"result"})
	reg.MustRegister(reloads)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sources := unwrap.NewKeySources()
	sc, err := newSidecar(cat, log, reg, sources)
	if err != nil {
		return &configError{msg: err.Error()}
	}
	sc.Start(ctx)
	var cur atomic.Pointer[unwrap.Sidecar]
	cur.Store(sc)
	defer func() { cur.Load().Close() }()

	handler := out.track(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cur.Load().Handler().ServeHTTP(w, r)
	}))
	cfg := cat.Sidecar
	var servers []*server
	if cfg.Listen != "" {
		servers = append(servers, &server{name: "sidecar", setting: "sidecar.listen", addr: cfg.Listen, tls: cfg.TLS, maxConns: cfg.MaxConnections,
			srv: newHTTPServer(handler, log, sc.ListenerMaxHeaderBytes())})
	}
	authz, err := authzServers(ctx, cfg, &cur, log, sc.ListenerMaxHeaderBytes())
	if err != nil {
		return err
	}
	for _, s := range authz {
		if hs, ok := s.srv.(*http.Server); ok {
			hs.Handler = out.track(hs.Handler)
		}
	}
	servers = append(servers, authz...)
	if cfg.AdminListen != "" {
		notReady := func() error { return cur.Load().NotReady() }
		admin := adminHandlerWhy(reg, notReady)
		if flags.pprof {
			profileMemory(true)
			admin = withPprof(admin, ctx.Done())
			log.Warn("profiler on: /debug/pprof/ on the admin listener (--pprof)", zap.String("addr", cfg.AdminListen))
		}
		servers = append(servers, &server{name: "admin", setting: "sidecar.admin_listen", addr: cfg.AdminListen, maxConns: adminMaxConnections,
			srv: newHTTPServer(admin, log, 0)})
	}
	if err := listen(servers); err != nil {
		return err
	}
	registerConnections(reg, servers)
	log.Info("sidecar starting", zap.String("api", cfg.API), zap.String("upstream", cfg.Upstream),
		zap.Int("apis", len(cat.APIs)), zap.Int("trusts", len(cat.Trusts)), zap.Bool("exchange", cat.Exchange != nil))

	r := &reloader{configs: configs, log: log, cur: &cur, reg: reg, reloads: reloads, last: cat, sources: sources}
	go watchConfig(ctx, log, configs, cat, func() *catalog.Catalog { return r.reload(ctx) })

	drain := cfg.ShutdownTimeout
	if drain <= 0 {
		drain = catalog.DefaultShutdownTimeout
	}
	return serve(ctx, log, drain, servers)
}

// newSidecar builds the sidecar of cat with its fallbacks: the RFC 7662
// client of its introspection trusts (phantom tokens) and the RFC 8693
// client of its exchange block, each only when declared. A reload builds
// them anew, so their caches never outlive the configuration; key sets of
// unchanged sources are taken from sources (nil: none shared).
func newSidecar(cat *catalog.Catalog, log *zap.Logger, reg prometheus.Registerer, sources *unwrap.KeySources) (*unwrap.Sidecar, error) {
	opts := &unwrap.Options{Logger: log, Registerer: reg, KeySources: sources}
	var err error
	if opts.Introspector, err = unwrap.NewIntrospector(cat, opts); err != nil {
		return nil, err
	}
	if opts.Exchanger, err = unwrap.NewExchanger(cat, opts); err != nil {
		return nil, err
	}
	return unwrap.New(cat, opts)
}

// reloader rebuilds the sidecar on SIGHUP or when a configuration or key
// file changes. A configuration that does not load, or does not become
// ready, keeps the running one.
type reloader struct {
	configs []string
	log     *zap.Logger
	cur     *atomic.Pointer[unwrap.Sidecar]
	reg     *prometheus.Registry
	reloads *prometheus.CounterVec
	last    *catalog.Catalog // the running configuration; only the watcher's goroutine uses it
	sources *unwrap.KeySources
}

// reload builds, starts and swaps in a new sidecar; it returns the new
// catalog, or nil when the running one stays.
func (r *reloader) reload(ctx context.Context) *catalog.Catalog {
	old := r.last
	cat, err := reloadCatalog(r.configs, catalog.KeysSkip, sidecarRuns, r.log)
	if err == nil && cat.Sidecar == nil {
		err = errors.New("the configuration has no sidecar block")
	}
	if err != nil {
		r.reloads.WithLabelValues("error").Inc()
		r.log.Error("reload failed; keeping the running configuration", zap.Error(err))
		return nil
	}
	if o, n := old.Sidecar, cat.Sidecar; o.Listen != n.Listen || o.AdminListen != n.AdminListen || o.AuthzListen != n.AuthzListen || o.AuthzGRPCListen != n.AuthzGRPCListen || o.MaxTokenBytes != n.MaxTokenBytes || (o.TLS == nil) != (n.TLS == nil) || o.MaxConnections != n.MaxConnections {
		r.log.Warn("listen, authz_listen, authz_grpc_listen, admin_listen, max_token_bytes, max_connections and tls change only on restart")
	}
	sc, err := newSidecar(cat, r.log, r.reg, r.sources)
	if err != nil {
		r.reloads.WithLabelValues("error").Inc()
		r.log.Error("reload failed; keeping the running configuration", zap.Error(err))
		return nil
	}
	sc.Start(ctx)
	deadline := time.Now().Add(reloadReadyLimit)
	for !sc.Ready() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			sc.Close()
			r.reloads.WithLabelValues("error").Inc()
			r.log.Error("reload failed: key sets did not load; keeping the running configuration")
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	old2 := r.cur.Swap(sc)
	// Requests in flight on the old sidecar finish normally: Close stops
	// only its key set refreshers and idle connections.
	old2.Close()
	r.last = cat
	r.reloads.WithLabelValues("ok").Inc()
	r.log.Info("configuration reloaded", zap.Int("apis", len(cat.APIs)), zap.Int("trusts", len(cat.Trusts)))
	return cat
}
