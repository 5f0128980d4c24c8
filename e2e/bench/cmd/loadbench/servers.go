package main

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/embedtoken/embedtoken/e2e/bench/floor"
)

// serveUntilSignal serves h on addr until SIGTERM or SIGINT.
var serveUntilSignal = floor.ServeUntilSignal

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

// runFloor is the bare reverse proxy (package floor; cmd/bareproxy is the
// same in a binary of its own).
var runFloor = floor.Run

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
