package cmd

import (
	"context"
	"net/http"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/embedtoken/embedtoken/catalog"
	"github.com/embedtoken/embedtoken/unwrap"
)

// AuthzGRPC builds the server of a sidecar's authz_grpc_listen (Envoy's
// ext_authz over gRPC) for the sidecar that current returns at each call.
// The embedtoken binary links none: the gRPC and Envoy types would cost
// every command their start-up time and memory. The embedtoken-envoy
// binary (cmd/embedtoken-envoy) passes extauthz.NewServer through
// WithAuthzGRPC.
type AuthzGRPC func(current func() *unwrap.Sidecar) Server

type authzGRPCKey struct{}

// WithAuthzGRPC returns ctx carrying f, for Run: a binary's main links the
// gRPC decision service this way, and only that binary pays for it.
func WithAuthzGRPC(ctx context.Context, f AuthzGRPC) context.Context {
	return context.WithValue(ctx, authzGRPCKey{}, f)
}

// authzServers are the sidecar's decision listeners (DESIGN.md "Behind
// gateways and meshes"): the HTTP decision endpoints on authz_listen, and
// Envoy's gRPC ext_authz on authz_grpc_listen (gRPC's own HTTP/2 server:
// h2c, or TLS with the sidecar's tls block). Each request goes to the current sidecar, so a
// reload covers them; shutdown drains them with the others.
func authzServers(ctx context.Context, cfg *catalog.Sidecar, cur *atomic.Pointer[unwrap.Sidecar], log *zap.Logger, maxHeaderBytes int) ([]*server, error) {
	var servers []*server
	if cfg.AuthzListen != "" {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cur.Load().AuthzHandler().ServeHTTP(w, r)
		})
		servers = append(servers, &server{name: "authz", setting: "sidecar.authz_listen", addr: cfg.AuthzListen, tls: cfg.TLS, maxConns: cfg.MaxConnections,
			srv: newHTTPServer(h, log, maxHeaderBytes)})
	}
	if cfg.AuthzGRPCListen != "" {
		f, _ := ctx.Value(authzGRPCKey{}).(AuthzGRPC)
		if f == nil {
			return nil, &configError{msg: "authz_grpc_listen is served by the embedtoken-envoy binary (the gRPC and Envoy types stay out of embedtoken): run `embedtoken-envoy sidecar`, or use authz_listen with Envoy's HTTP ext_authz"}
		}
		servers = append(servers, &server{name: "authz-grpc", setting: "sidecar.authz_grpc_listen", addr: cfg.AuthzGRPCListen, tls: cfg.TLS, maxConns: cfg.MaxConnections, srv: f(cur.Load), h2: true})
	}
	return servers, nil
}
