// Package extauthz serves Envoy's external authorization API
// (envoy.service.auth.v3.Authorization, ext_authz over gRPC) and the gRPC
// health service for an unwrap.Sidecar: DESIGN.md's authz_grpc_listen.
//
// It is a package of its own, linked only into the embedtoken-envoy binary
// (cmd/embedtoken-envoy): the gRPC and Envoy types it imports register
// thousands of protobuf descriptors at start-up, which every other command
// of embedtoken would otherwise pay for. It imports unwrap and the Envoy
// and gRPC packages; nothing imports it but that binary.
package extauthz

import (
	"context"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/embedtoken/embedtoken/unwrap"
)

// maxMessageBytes bounds a CheckRequest: far above any header block that
// the sidecar accepts (max_token_bytes + 8 KiB, at most 1 MiB + 8 KiB),
// whose own limit answers larger ones with 431.
const maxMessageBytes = 2 << 20

// The bounds of the gRPC listener (docs/operations.md): Envoy opens more
// connections when one is at maxStreamsPerConn; a connection is recycled
// after maxConnectionAge (Envoy reconnects), which also ends any call left
// hanging; maxCalls bounds the Check calls in flight on the listener.
const (
	maxStreamsPerConn = 100
	maxCalls          = 1024
	maxConnectionIdle = 2 * time.Minute
	maxConnectionAge  = 10 * time.Minute
	keepaliveTime     = time.Minute
	keepaliveTimeout  = 20 * time.Second
)

// errTooManyCalls refuses a Check call beyond maxCalls: Envoy treats it as
// a failed check (fail closed).
var errTooManyCalls = status.Error(codes.Unavailable, "too many Check calls in flight")

// Server is the gRPC server of authz_grpc_listen: Envoy's
// Authorization/Check and grpc.health.v1.Health/Check, both answered by
// the sidecar that current returns at the time of each call (so a reload
// covers them). Health is SERVING once the sidecar is ready. It runs on
// gRPC's own HTTP/2 transport: served through net/http (ServeHTTP) a
// decision cost about three times the CPU.
type Server struct {
	g    *grpc.Server
	auth *authorization
}

// NewServer returns the Server; it starts nothing.
func NewServer(current func() *unwrap.Sidecar) *Server { return newServer(current, maxCalls) }

func newServer(current func() *unwrap.Sidecar, calls int64) *Server {
	g := grpc.NewServer(grpc.MaxRecvMsgSize(maxMessageBytes), grpc.MaxHeaderListSize(maxMessageBytes),
		// A fixed pool of stream goroutines (gRPC spawns one more when all
		// are busy): a goroutine per call grew its stack on every call, ~8 %
		// of the CPU per decision under concurrent load (BENCHMARKS.md).
		// Larger flow-control windows and SharedWriteBuffer measured no
		// better.
		grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))),
		grpc.ForceServerCodecV2(newCodec()),
		grpc.MaxConcurrentStreams(maxStreamsPerConn),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: maxConnectionIdle, MaxConnectionAge: maxConnectionAge, MaxConnectionAgeGrace: keepaliveTimeout,
			Time: keepaliveTime, Timeout: keepaliveTimeout,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}))
	a := &authorization{current: current, max: calls}
	g.RegisterService(&authorizationDesc, a)
	healthpb.RegisterHealthServer(g, &health{current: current})
	return &Server{g: g, auth: a}
}

// Serve serves gRPC on ln until Shutdown or Close; it then returns nil.
func (s *Server) Serve(ln net.Listener) error { return s.g.Serve(ln) }

// Shutdown stops accepting and waits for the calls in flight, until ctx
// is done; then it stops them.
func (s *Server) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.g.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.g.Stop()
		<-done
		return ctx.Err()
	}
}

// Close stops at once.
func (s *Server) Close() error {
	s.g.Stop()
	return nil
}

// authorization is envoy.service.auth.v3.Authorization.
type authorization struct {
	current func() *unwrap.Sidecar
	max     int64        // Check calls in flight at most
	calls   atomic.Int64 // Check calls in flight
}

// enter counts a call in, unless max are in flight.
func (a *authorization) enter() bool {
	if a.calls.Add(1) > a.max {
		a.calls.Add(-1)
		return false
	}
	return true
}

func (a *authorization) leave() { a.calls.Add(-1) }

// check decides about attributes.request.http of a Check request (decoded
// by codec): its method, its path (the request target with the query, not
// decoded), its host and its headers, exactly as the proxy would.
func (a *authorization) check(ctx context.Context, req *checkRequest) *authv3.CheckResponse {
	return response(a.current().Decide(ctx, req.method, req.path, req.host, req.header()))
}

// addHeader adds the header k: v of Envoy's to out, unless k is a
// pseudo-header or not a valid header name.
func addHeader(out http.Header, k, v string) {
	if k == "" || k[0] == ':' || !validName(k) {
		return
	}
	ck := http.CanonicalHeaderKey(k)
	out[ck] = append(out[ck], v)
}

// validName reports whether s is an RFC 9110 token.
func validName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// response is the CheckResponse of a decision: OkHttpResponse that sets
// authorization (overwriting the client's) and x-request-id and removes
// the headers the upstream must not see; or DeniedHttpResponse with the
// proxy's status, headers and body, and the gRPC code of that status.
func response(d *unwrap.Decision) *authv3.CheckResponse {
	if d.Allowed() {
		return allowedResponse(d)
	}
	return deniedResponse(d)
}

func overwrite(name, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: strings.ToLower(name), Value: value},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// code is the gRPC status of a refusal's HTTP status.
func code(status int) codes.Code {
	switch status {
	case http.StatusBadRequest, http.StatusRequestHeaderFieldsTooLarge:
		return codes.InvalidArgument
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	}
	return codes.Internal
}

// health is grpc.health.v1.Health: SERVING once the current sidecar's key
// sets were loaded (its readiness), for the service "" and for
// envoy.service.auth.v3.Authorization.
type health struct {
	healthpb.UnimplementedHealthServer
	current func() *unwrap.Sidecar
}

func (h *health) Check(_ context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	switch req.GetService() {
	case "", authv3.Authorization_ServiceDesc.ServiceName:
	default:
		return nil, status.Error(codes.NotFound, "unknown service")
	}
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if h.current().Ready() {
		st = healthpb.HealthCheckResponse_SERVING
	}
	return &healthpb.HealthCheckResponse{Status: st}, nil
}
