package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/embedtoken/embedtoken/catalog"
	"github.com/embedtoken/embedtoken/internal/httplog"
	"github.com/embedtoken/embedtoken/internal/netlimit"
	"github.com/embedtoken/embedtoken/mint"
	"github.com/embedtoken/embedtoken/unwrap"
)

// runHook runs the issuer plugin: the private listener (the issuer's hooks),
// the public one (JWKS, metadata, token exchange) and the admin one (/healthz, /readyz,
// /metrics). SIGHUP or a changed configuration or key file reloads; a
// broken new configuration keeps the last good one.
func runHook(ctx context.Context, args []string, _, stderr io.Writer) error {
	configs, log, cat, err := startDaemon("hook", args, stderr, catalog.KeysRequire, hookRuns)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	// The HTTP/1 transport logs to the standard logger, with upstream bytes.
	defer httplog.RedirectStd(log.Named("stdlog"))()
	if err := checkHookBlock(cat); err != nil {
		return &configError{msg: err.Error()}
	}

	reg := newRegistry()
	metrics, err := mint.NewMetrics(reg)
	if err != nil {
		return err
	}
	rt := &hookRuntime{configs: configs, log: log, metrics: metrics, reg: reg, sources: unwrap.NewKeySources()}
	rt.reloads = newReloadCounter()
	reg.MustRegister(rt.reloads)
	m, subjects, err := rt.build(cat)
	if err != nil {
		return &configError{msg: err.Error()}
	}
	rt.swap(m, subjects)
	defer rt.swap(nil, nil) // closes the last subject verifier
	logLoaded(log, cat, m)

	h := cat.Hook
	hopts := &mint.HandlerOptions{Logger: log, Metrics: metrics}
	servers := []*server{
		{name: "private", setting: "hook.listen", addr: h.Listen, tls: h.TLS, maxConns: h.MaxConnections,
			srv: newHTTPServer(netlimit.RefuseAtOnce(mint.NewHookHandler(rt.cur.Load, hopts)), log, 0)},
		{name: "admin", setting: "hook.admin_listen", addr: h.AdminListen, maxConns: adminMaxConnections,
			srv: newHTTPServer(adminHandler(reg, func() bool { return rt.cur.Load() != nil }), log, 0)},
	}
	if h.PublicListen != "" { // optional where nothing needs it (catalog.PublicListenerNeeded)
		servers = append(servers, &server{name: "public", setting: "hook.public_listen", addr: h.PublicListen, tls: h.TLS, maxConns: h.MaxConnections,
			srv: newHTTPServer(netlimit.RefuseAtOnce(publicHandler(rt.cur.Load, hopts)), log, 0)})
	}
	if err := listen(servers); err != nil {
		return err
	}
	registerConnections(reg, servers)
	rt.listen = [3]string{h.Listen, h.PublicListen, h.AdminListen}

	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		watchConfig(wctx, log, configs, cat, rt.reload)
	}()
	err = serve(ctx, log, catalog.DefaultShutdownTimeout, servers)
	stop()
	<-done
	return err
}

// publicHandler is the public listener's handler: the JWKS, the RFC 8414
// metadata and the token exchange endpoint. The exchange is always routed;
// it answers 404 while the current configuration declares no
// exchange_client, so that a reload can turn it on or off.
//
// Readiness (/readyz) does not wait for the subject verifier's key sets
// (the trusts' ones: it verifies outer tokens only, so it never loads the
// minter's own, whose jwks_url usually points at this very listener): the
// hooks must serve the issuer whatever the exchange's state. Until the
// trusts' keys load, an exchange answers 503 with Retry-After.
func publicHandler(current mint.Current, hopts *mint.HandlerOptions) http.Handler {
	mux := mint.NewPublicMux(current, hopts)
	mux.Handle(mint.TokenEndpointPath, mint.NewExchangeHandler(current, hopts))
	return mux
}

// newReloadCounter counts configuration reloads by result (ok, error).
func newReloadCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "embedtoken_hook_reloads_total",
		Help: "Configuration reloads, by result (ok, error).",
	}, []string{"result"})
}

// checkHookBlock refuses a configuration the hook cannot run with.
func checkHookBlock(cat *catalog.Catalog) error {
	switch {
	case cat.Hook == nil:
		return errors.New("the configuration has no hook block")
	case cat.Hook.APIKey.Empty():
		return fmt.Errorf("%s: hook.api_key is empty: set it (env(\"EMBEDTOKEN_HOOK_KEY\")) before starting the hook", cat.Hook.APIKeyAt)
	case cat.Hook.Listen == "" || cat.Hook.AdminListen == "":
		return errors.New("the hook block needs listen and admin_listen")
	case cat.Hook.PublicListen == "" && cat.PublicListenerNeeded() != "":
		// Load reports it with its position; a catalog built otherwise
		// still gets the reason.
		return errors.New("the hook block needs public_listen: " + cat.PublicListenerNeeded())
	case len(cat.ExchangeClients) > 0 && len(cat.Trusts) == 0:
		return errors.New("exchange_client blocks need a trust block: subject tokens are access tokens of trust issuers")
	}
	return nil
}

// logLoaded logs a loaded configuration's counts: lifecycle, info level.
func logLoaded(log *zap.Logger, cat *catalog.Catalog, m *mint.Minter) {
	log.Info("catalog loaded",
		zap.Int("files", len(cat.Files)),
		zap.Int("apis", len(cat.APIs)),
		zap.Int("exposed", len(cat.Roots())),
		zap.Int("signing_keys", len(cat.Minter.SigningKeys)),
		zap.String("kid", m.KeyID()),
		zap.Bool("generic", cat.Hook.Generic),
		zap.Bool("okta", cat.Hook.Okta),
		zap.Int("trusts", len(cat.Trusts)),
		zap.Int("exchange_clients", len(cat.ExchangeClients)))
}

// hookRuntime is the hook's reloadable state: the current Minter, read by
// every request through an atomic pointer, and the subject verifier of its
// token exchange endpoint (inside the Minter, so that both swap at once).
type hookRuntime struct {
	configs []string
	log     *zap.Logger
	metrics *mint.Metrics
	reg     prometheus.Registerer // for the subject verifier's metrics; may be nil
	reloads *prometheus.CounterVec
	cur     atomic.Pointer[mint.Minter]
	listen  [3]string
	sources *unwrap.KeySources // the subject verifiers' key sets, kept across reloads

	mu       sync.Mutex
	subjects *subjectVerifier // of cur; nil without exchange_client blocks
}

// build returns the Minter of cat and, when cat declares exchange_client
// blocks, the started subject verifier the Minter uses.
func (rt *hookRuntime) build(cat *catalog.Catalog) (*mint.Minter, *subjectVerifier, error) {
	opts := &mint.Options{Logger: rt.log, Metrics: rt.metrics}
	var subjects *subjectVerifier
	if len(cat.ExchangeClients) > 0 {
		var err error
		if subjects, err = newSubjectVerifier(cat, rt.log, rt.reg, rt.sources); err != nil {
			return nil, nil, err
		}
		opts.Subjects = subjects
	}
	m, err := mint.New(cat, opts)
	if err != nil {
		if subjects != nil {
			subjects.Close() // releases its shared key sets
		}
		return nil, nil, err
	}
	if subjects != nil {
		subjects.Start()
	}
	return m, subjects, nil
}

// swap makes m current and closes the subject verifier it replaces
// (exchanges in flight on the old Minter finish with the keys it loaded).
// swap(nil, nil) at shutdown only closes.
func (rt *hookRuntime) swap(m *mint.Minter, subjects *subjectVerifier) {
	if m != nil {
		rt.cur.Store(m)
	}
	rt.mu.Lock()
	old := rt.subjects
	rt.subjects = subjects
	rt.mu.Unlock()
	if old != nil {
		old.Close()
	}
}

// reload loads the configuration again and swaps the Minter. A broken
// configuration keeps the last good one: its diagnostics are logged and
// counted. It returns the new catalog, or nil.
func (rt *hookRuntime) reload() *catalog.Catalog {
	fail := func(err error) *catalog.Catalog {
		rt.reloads.WithLabelValues("error").Inc()
		rt.log.Error("reload failed: keeping the last good configuration", zap.String("reason", "reload_failed"), zap.Error(err))
		return nil
	}
	cat, err := reloadCatalog(rt.configs, catalog.KeysRequire, hookRuns, rt.log)
	if err != nil {
		return fail(err)
	}
	if err := checkHookBlock(cat); err != nil {
		return fail(err)
	}
	m, subjects, err := rt.build(cat)
	if err != nil {
		return fail(err)
	}
	if h := cat.Hook; [3]string{h.Listen, h.PublicListen, h.AdminListen} != rt.listen {
		rt.log.Warn("listener addresses changed: restart the hook to apply them", zap.String("reason", "listen_changed"))
	}
	rt.swap(m, subjects)
	rt.reloads.WithLabelValues("ok").Inc()
	logLoaded(rt.log, cat, m)
	return cat
}
