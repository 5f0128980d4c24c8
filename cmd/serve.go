package cmd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/embedtoken/embedtoken/catalog"
	"github.com/embedtoken/embedtoken/internal/httplog"
	"github.com/embedtoken/embedtoken/internal/netlimit"
)

// server is one listener of a long-running command.
type server struct {
	name string // "public", "private", "admin", "sidecar": for logs
	addr string
	srv  Server
	tls  *catalog.TLS // optional
	ln   net.Listener
	h2   bool // HTTP/2 only (gRPC): TLS offers h2 by ALPN

	setting string // "sidecar.listen": names the setting in errors; if empty, name
	// maxConns bounds the open connections (see limitListener); zero
	// means catalog.DefaultMaxConnections.
	maxConns int
	limit    *netlimit.Listener
}

// Server is what serve runs on a bound listener: an *http.Server, or
// another protocol's server (gRPC) with the same life cycle. Serve returns
// nil or http.ErrServerClosed once Shutdown or Close was called.
type Server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// newHTTPServer returns an http.Server with the timeouts every listener of
// embedtoken uses. maxHeaderBytes of zero means Go's default (1 MiB).
func newHTTPServer(h http.Handler, log *zap.Logger, maxHeaderBytes int) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          httplog.New(log.Named("http")), // no request bytes
	}
}

// listen binds every server's address, so that a port in use is reported
// before anything starts serving.
func listen(servers []*server) error {
	for i, s := range servers {
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			for _, o := range servers[:i] {
				o.ln.Close()
			}
			return listenError(s, err)
		}
		ln = s.limitListener(ln)
		if s.tls != nil {
			cfg, err := serverTLS(s.tls)
			if err != nil {
				ln.Close()
				for _, o := range servers[:i] {
					o.ln.Close()
				}
				return fmt.Errorf("tls for %s: %w", s.name, err)
			}
			if s.h2 {
				cfg.NextProtos = []string{"h2"}
			}
			ln = tls.NewListener(ln, cfg)
		}
		s.ln = ln
	}
	return nil
}

// serverTLS builds a listener's TLS configuration: TLS 1.2 or newer, and
// client certificates required when a client CA is set.
func serverTLS(t *catalog.TLS) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificates in %s", t.ClientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// serve runs the bound servers until ctx is done or one fails, then shuts
// them all down, draining in-flight requests for up to drain. A clean
// shutdown returns nil.
func serve(ctx context.Context, log *zap.Logger, drain time.Duration, servers []*server) error {
	errc := make(chan error, len(servers))
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			log.Info("listening", zap.String("listener", s.name), zap.String("addr", s.ln.Addr().String()))
			if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s listener: %w", s.name, err)
			}
		}()
	}
	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", zap.Duration("drain", drain))
	case runErr = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	for _, s := range servers {
		if err := s.srv.Shutdown(sctx); err != nil {
			log.Warn("drain incomplete", zap.String("listener", s.name), zap.Error(err))
			s.srv.Close()
		}
	}
	wg.Wait()
	return runErr
}

// adminHandler serves /healthz (the process is up), /readyz (ready reports
// true) and /metrics (reg, in Prometheus text format).
func adminHandler(reg *prometheus.Registry, ready func() bool) http.Handler {
	return adminHandlerWhy(reg, func() error {
		if ready != nil && !ready() {
			return errNotReady
		}
		return nil
	})
}

// newRegistry returns a Prometheus registry with the Go and process
// collectors; each component registers its own metrics on it.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return reg
}
