package cmd

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/embedtoken/embedtoken/catalog"
	"github.com/embedtoken/embedtoken/unwrap"
)

// Sidecar reload timing.
const (
	reloadPollEvery  = 2 * time.Second
	reloadReadyLimit = 30 * time.Second
)

func runSidecar(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("sidecar", "sidecar --config PATH... [--log-level info]", stderr)
	var configs stringList
	fs.Var(&configs, "config", "configuration file or folder (repeatable)")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	log, err := newLogger(stderr, *level)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	cat, err := loadCatalog(configs, catalog.KeysSkip, stderr)
	if err != nil {
		return err
	}
	if cat.Sidecar == nil {
		return &configError{msg: "the configuration has no sidecar block"}
	}
	reg := newRegistry()
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "embedtoken", Subsystem: "sidecar", Name: "config_reloads_total",
		Help: "Configuration reloads by result (ok or error).",
	}, []string{"result"})
	reg.MustRegister(reloads)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sc, err := newSidecar(cat, log, reg)
	if err != nil {
		return &configError{msg: err.Error()}
	}
	sc.Start(ctx)
	var cur atomic.Pointer[unwrap.Sidecar]
	cur.Store(sc)
	defer func() { cur.Load().Close() }()

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cur.Load().Handler().ServeHTTP(w, r)
	})
	cfg := cat.Sidecar
	servers := []*server{{name: "sidecar", addr: cfg.Listen, tls: cfg.TLS,
		srv: newHTTPServer(handler, log, sc.MaxHeaderBytes())}}
	if cfg.AdminListen != "" {
		ready := func() bool { return cur.Load().Ready() }
		servers = append(servers, &server{name: "admin", addr: cfg.AdminListen,
			srv: newHTTPServer(adminHandler(reg, ready), log, 0)})
	}
	if err := listen(servers); err != nil {
		return err
	}
	log.Info("sidecar starting", zap.String("api", cfg.API), zap.String("upstream", cfg.Upstream),
		zap.Int("apis", len(cat.APIs)), zap.Int("trusts", len(cat.Trusts)), zap.Bool("exchange", cat.Exchange != nil))

	r := &reloader{configs: configs, log: log, stderr: stderr, cur: &cur, reg: reg, reloads: reloads, first: cat}
	go r.run(ctx)

	drain := cfg.ShutdownTimeout
	if drain <= 0 {
		drain = catalog.DefaultShutdownTimeout
	}
	return serve(ctx, log, drain, servers)
}

// newSidecar builds the sidecar of cat with its fallbacks: the RFC 7662
// client of its introspection trusts (phantom tokens) and the RFC 8693
// client of its exchange block, each only when declared. A reload builds
// them anew, so their caches never outlive the configuration.
func newSidecar(cat *catalog.Catalog, log *zap.Logger, reg prometheus.Registerer) (*unwrap.Sidecar, error) {
	opts := &unwrap.Options{Logger: log, Registerer: reg}
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
	stderr  io.Writer
	cur     *atomic.Pointer[unwrap.Sidecar]
	reg     *prometheus.Registry
	reloads *prometheus.CounterVec
	first   *catalog.Catalog
}

func (r *reloader) run(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	cat := r.first
	stamps := fileStamps(watchList(cat, r.configs))
	tick := time.NewTicker(reloadPollEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			r.log.Info("reloading on SIGHUP")
		case <-tick.C:
			now := fileStamps(watchList(cat, r.configs))
			if now == stamps {
				continue
			}
			stamps = now
			r.log.Info("reloading: a configuration or key file changed")
		}
		if next := r.reload(ctx, cat); next != nil {
			cat = next
			stamps = fileStamps(watchList(cat, r.configs))
		}
	}
}

// reload builds, starts and swaps in a new sidecar; it returns the new
// catalog, or nil when the running one stays.
func (r *reloader) reload(ctx context.Context, old *catalog.Catalog) *catalog.Catalog {
	cat, err := loadCatalog(r.configs, catalog.KeysSkip, r.stderr)
	if err == nil && cat.Sidecar == nil {
		err = errors.New("the configuration has no sidecar block")
	}
	if err != nil {
		r.reloads.WithLabelValues("error").Inc()
		r.log.Error("reload failed; keeping the running configuration", zap.Error(err))
		return nil
	}
	if o, n := old.Sidecar, cat.Sidecar; o.Listen != n.Listen || o.AdminListen != n.AdminListen || o.MaxTokenBytes != n.MaxTokenBytes || (o.TLS == nil) != (n.TLS == nil) {
		r.log.Warn("listen, admin_listen, max_token_bytes and tls change only on restart")
	}
	sc, err := newSidecar(cat, r.log, r.reg)
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
	r.reloads.WithLabelValues("ok").Inc()
	r.log.Info("configuration reloaded", zap.Int("apis", len(cat.APIs)), zap.Int("trusts", len(cat.Trusts)))
	return cat
}

// watchList is every file whose change triggers a reload: the files read
// (and the folders given, for new files) and the key files named.
func watchList(cat *catalog.Catalog, configs []string) []string {
	out := append([]string{}, configs...)
	out = append(out, cat.Files...)
	return append(out, cat.KeyFiles...)
}

// fileStamps summarizes the modification times and sizes of paths (and,
// for folders, of their *.hcl files).
func fileStamps(paths []string) string {
	var b strings.Builder
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			b.WriteString(p + ":missing;")
			continue
		}
		if st.IsDir() {
			entries, _ := os.ReadDir(p)
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), ".hcl") {
					if info, err := e.Info(); err == nil {
						b.WriteString(e.Name() + info.ModTime().String() + ";")
					}
				}
			}
			continue
		}
		b.WriteString(p + st.ModTime().String() + "/" + st.Name() + ";")
		b.WriteString(strconv.FormatInt(st.Size(), 10) + ";")
	}
	return b.String()
}
