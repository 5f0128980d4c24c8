package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// serveUntilSignal serves h on addr until SIGTERM or SIGINT.
func serveUntilSignal(addr string, h http.Handler) error {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// upstreamBody is what the upstream answers: a small JSON document, as an
// API might.
var upstreamBody = []byte(`{"id":42,"status":"shipped","items":3}` + "\n")

// runUpstream is the small upstream behind every configuration.
func runUpstream(addr string) error {
	return serveUntilSignal(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(upstreamBody)
	}))
}

// runFloor is the bare reverse proxy: no token work, the Transport tuned as
// the sidecar's is (Go's default keeps only 2 idle connections per host).
func runFloor(addr, upstream string) error {
	u, err := url.Parse(upstream)
	if err != nil {
		return err
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     true,
	}
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.SetXForwarded() },
		Transport: tr,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ready\n")) })
	mux.Handle("/", rp)
	return serveUntilSignal(addr, mux)
}

// keyServer is the development issuer's OIDC discovery document and JWKS,
// for the sidecar's trust block and oauth2-proxy alike.
type keyServer struct {
	srv *http.Server
	url string
}

func startKeyServer(port int, jwks jose.JSONWebKeySet) (*keyServer, error) {
	base := "http://" + addr(port)
	disc, err := json.Marshal(map[string]any{
		"issuer":                                base,
		"authorization_endpoint":                base + "/oauth2/auth",
		"token_endpoint":                        base + "/oauth2/token",
		"jwks_uri":                              base + "/.well-known/jwks.json",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
	})
	if err != nil {
		return nil, err
	}
	keys, err := json.Marshal(jwks)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	serve := func(b []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(b)
		}
	}
	mux.HandleFunc("GET /.well-known/openid-configuration", serve(disc))
	mux.HandleFunc("GET /.well-known/jwks.json", serve(keys))
	ln, err := net.Listen("tcp", addr(port))
	if err != nil {
		return nil, err
	}
	ks := &keyServer{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, url: base}
	go func() {
		if err := ks.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			panic(err)
		}
	}()
	return ks, nil
}

func (k *keyServer) close() { _ = k.srv.Close() }
