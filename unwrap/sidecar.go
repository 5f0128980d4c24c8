package unwrap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/embedtoken/embedtoken/catalog"
	"github.com/embedtoken/embedtoken/internal/httplog"
)

// headerSlack is what the request header block may hold beyond the token.
const headerSlack = 8 << 10

// Sidecar verifies requests for one API and proxies them to its upstream.
// Build it with New (pure), call Start to load and refresh key sets, serve
// Handler, and Close it when done. To reload a configuration, build a new
// Sidecar, Start it, wait for Ready, swap handlers, and Close the old one.
type Sidecar struct {
	api       *catalog.API
	cfg       *catalog.Sidecar
	verifier  *Verifier
	upstream  *url.URL
	public    map[string]bool
	strip     []string
	transport http.RoundTripper
	proxy     *httputil.ReverseProxy
	handler   http.Handler
	metrics   *metrics
	limits    *limitMetrics
	inFlight  gate // max_requests
	log       *zap.Logger
	access    *zap.Logger // nil: no access log (accesslog.go)

	// authzHandler serves the decision endpoints (authz.go).
	authzHandler http.Handler
}

// New builds the sidecar that the catalog's sidecar block describes. It
// starts no goroutine and does no I/O beyond reading ca_file roots.
func New(cat *catalog.Catalog, opts *Options) (*Sidecar, error) {
	if opts == nil {
		opts = &Options{}
	}
	if cat == nil || cat.Sidecar == nil {
		return nil, errors.New("configuration has no sidecar block")
	}
	cfg := cat.Sidecar
	name := opts.API
	if name == "" {
		name = cfg.API
	}
	api := cat.API(name)
	if api == nil {
		return nil, fmt.Errorf("sidecar api %q is not declared", name)
	}
	// A decision-only sidecar has no upstream; its proxy handler is never
	// served (and would answer 502).
	up, err := url.Parse(cfg.Upstream)
	if cfg.Upstream != "" && (err != nil || (up.Scheme != "http" && up.Scheme != "https") || up.Host == "") {
		return nil, fmt.Errorf("sidecar upstream %q is not an http(s) URL", cfg.Upstream)
	}
	log := opts.logger().Named("unwrap").With(zap.String(fieldAPI, api.Name))
	m, err := newMetrics(opts.registerer())
	if err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	lm, err := newLimitMetrics(opts.registerer())
	if err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	v, err := newVerifier(cat, api, opts, false, m, log)
	if err != nil {
		return nil, err
	}
	s := &Sidecar{
		limits:   lm,
		api:      api,
		cfg:      cfg,
		verifier: v,
		upstream: up,
		public:   make(map[string]bool, len(cfg.PublicPaths)),
		strip:    cfg.StripHeaders,
		metrics:  m,
		log:      log,
		access:   newAccessLog(log, cfg.AccessLog),
	}
	for _, p := range cfg.PublicPaths {
		s.public[p] = true
	}
	s.inFlight.max = int64(cfg.MaxRequests)
	if s.inFlight.max <= 0 {
		s.inFlight.max = catalog.DefaultMaxRequests
	}
	s.transport = opts.UpstreamTransport
	if s.transport == nil {
		timeout := cfg.UpstreamTimeout
		if timeout <= 0 {
			timeout = catalog.DefaultUpstreamTimeout
		}
		idle := cfg.UpstreamIdleTimeout
		if idle <= 0 {
			idle = catalog.DefaultUpstreamIdleTimeout
		}
		s.transport = upstreamTransport(timeout, idle, s.onIdleTimeout)
	}
	s.proxy = &httputil.ReverseProxy{
		Rewrite:        s.rewrite,
		Transport:      s.transport,
		ModifyResponse: s.modifyResponse,
		ErrorHandler:   s.proxyError,
		ErrorLog:       httplog.New(log.Named("proxy")), // no upstream bytes
		BufferPool:     copyBuffers,
	}
	s.handler = s.middleware(http.HandlerFunc(s.serve))
	s.authzHandler = s.middleware(http.HandlerFunc(s.serveAuthz))
	return s, nil
}

// NewVerifier builds a Verifier alone, for code that verifies tokens
// without proxying (a token exchange endpoint verifying subject tokens with
// VerifyOuter). opts.API, or the catalog's sidecar.api, names the API that
// Verify checks inner tokens for; it may be empty when only VerifyOuter is
// used. With opts.OuterOnly it verifies outer tokens only (VerifyOuter)
// and loads no key set for the minter's JWKS. Call Start before use, and
// Close after.
func NewVerifier(cat *catalog.Catalog, opts *Options) (*Verifier, error) {
	if opts == nil {
		opts = &Options{}
	}
	if cat == nil {
		return nil, errors.New("no catalog")
	}
	name := opts.API
	if name == "" && cat.Sidecar != nil {
		name = cat.Sidecar.API
	}
	var api *catalog.API
	if name != "" {
		if api = cat.API(name); api == nil {
			return nil, fmt.Errorf("api %q is not declared", name)
		}
	}
	m, err := newMetrics(opts.registerer())
	if err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	return newVerifier(cat, api, opts, opts.OuterOnly, m, opts.logger().Named("unwrap"))
}

// copyBufferSize is the size of the buffers that copy response bodies: the
// size ReverseProxy allocates for each response without a BufferPool.
const copyBufferSize = 32 << 10

// bufferPool recycles ReverseProxy's copy buffers: without it each
// response allocates 32 KiB, the largest allocation of a proxied request.
type bufferPool struct{ p sync.Pool }

// copyBuffers is shared by every sidecar of the process.
var copyBuffers = &bufferPool{p: sync.Pool{New: func() any { return new([copyBufferSize]byte) }}}

func (b *bufferPool) Get() []byte { return b.p.Get().(*[copyBufferSize]byte)[:] }

func (b *bufferPool) Put(buf []byte) {
	if len(buf) == copyBufferSize {
		b.p.Put((*[copyBufferSize]byte)(buf))
	}
}

// upstreamTransport is tuned for one busy upstream: Go's default keeps 2
// idle connections per host, which costs about a third of the throughput.
// timeout bounds the wait for response headers; idle bounds every pause
// on a connection (idleConn), and onIdle is called when it cuts one. Idle
// pooled connections are closed just before idle would cut them.
func upstreamTransport(timeout, idle time.Duration, onIdle func()) *http.Transport {
	dial := (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return &http.Transport{
		Proxy:                 nil, // never a proxy from the environment
		DialContext:           idleDialer(dial, idle, timeout, onIdle),
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       min(90*time.Second, idle-idle/16),
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: timeout,
		DisableCompression:    true, // pass Accept-Encoding through untouched
		ForceAttemptHTTP2:     true,
	}
}

// Start loads every key set and keeps it fresh until ctx is done or Close
// is called. It returns at once; Ready reports when every set was loaded.
func (v *Verifier) Start(ctx context.Context) {
	v.startOnce.Do(func() {
		ctx, v.stop = context.WithCancel(ctx)
		for _, ks := range v.keySets() {
			if v.sources != nil {
				v.sources.start(ks) // runs until its last holder is closed
				continue
			}
			v.wg.Add(1)
			go func() {
				defer v.wg.Done()
				ks.run(ctx)
			}()
		}
	})
}

// Ready reports whether every issuer's keys were loaded at least once.
func (v *Verifier) Ready() bool {
	for _, ks := range v.keySets() {
		if !ks.Loaded() {
			return false
		}
	}
	return true
}

// Close stops the key set refreshers, waits for them and closes their idle
// connections. Key sets shared through Options.KeySources stop only when
// no other Verifier holds them.
func (v *Verifier) Close() {
	v.startOnce.Do(func() {})
	if v.stop != nil {
		v.stop()
	}
	v.wg.Wait()
	v.closeOnce.Do(func() {
		v.closeIdle()
		if v.sources != nil {
			v.sources.release(v)
			return
		}
		for _, ks := range v.keySets() {
			ks.client.CloseIdleConnections()
		}
	})
}

// Start loads the key sets and keeps them fresh; see Verifier.Start.
func (s *Sidecar) Start(ctx context.Context) { s.verifier.Start(ctx) }

// Ready reports whether every issuer's keys were loaded once: the
// readiness of the sidecar.
func (s *Sidecar) Ready() bool { return s.NotReady() == nil }

// Handler returns the sidecar's HTTP handler. It is safe for concurrent
// use.
func (s *Sidecar) Handler() http.Handler { return s.handler }

// Verifier returns the sidecar's verifier.
func (s *Sidecar) Verifier() *Verifier { return s.verifier }

// MaxHeaderBytes is the request header limit: max_token_bytes + 8 KiB.
// The handler answers a larger header block with 431 and a JSON body.
func (s *Sidecar) MaxHeaderBytes() int { return s.verifier.maxTokenBytes + headerSlack }

// ListenerMaxHeaderBytes is what the listener must set as
// http.Server.MaxHeaderBytes: a backstop above MaxHeaderBytes, so that the
// handler, not net/http's plain-text answer, decides the usual 431s while
// memory stays bounded.
func (s *Sidecar) ListenerMaxHeaderBytes() int { return s.MaxHeaderBytes() + headerSlack }

// Close stops the key set refreshers and closes idle upstream connections.
// Requests in flight finish normally.
func (s *Sidecar) Close() {
	s.verifier.Close()
	if t, ok := s.transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}

// waitGroup fields live on Verifier; declared here to keep verify.go about
// verification.
type lifecycle struct {
	startOnce sync.Once
	stop      context.CancelFunc
	wg        sync.WaitGroup
	sources   *KeySources // nil: the key sets are the Verifier's own
	closeOnce sync.Once
}
