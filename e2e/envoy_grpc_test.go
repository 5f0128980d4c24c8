package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var (
	envoyBinOnce sync.Once
	envoyBin     string
	envoyBinErr  error
)

// needEnvoyBinary builds cmd/embedtoken-envoy once per test binary.
func needEnvoyBinary(t *testing.T) string {
	t.Helper()
	needBinary(t)
	envoyBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "embedtoken-envoy-bin-")
		if err != nil {
			envoyBinErr = err
			return
		}
		envoyBin = filepath.Join(dir, "embedtoken-envoy")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", envoyBin, "./cmd/embedtoken-envoy")
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			envoyBinErr = err
			envoyBin = string(out)
		}
	})
	if envoyBinErr != nil {
		t.Fatalf("build embedtoken-envoy: %v\n%s", envoyBinErr, envoyBin)
	}
	return envoyBin
}

// envoyCheck is a CheckRequest shaped like Envoy's: the original request in
// attributes.request.http with its pseudo-headers and lower-case header
// names in the header map, and source, destination and time filled in.
func envoyCheck(method, path string, headers map[string]string) *authv3.CheckRequest {
	h := map[string]string{
		":authority": "orders.example.com", ":method": method, ":path": path, ":scheme": "https",
		"user-agent": "curl/8.5.0", "accept": "*/*", "x-forwarded-proto": "https",
		"x-request-id": "5b2e9c1a-7d4f-4e8a-b3c6-0f1e2d3c4b5a",
	}
	for k, v := range headers {
		h[k] = v
	}
	addr := func(ip string, port uint32) *corev3.Address {
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: addr("10.0.0.7", 51234)},
		Destination: &authv3.AttributeContext_Peer{Address: addr("10.0.0.9", 8080)},
		Request: &authv3.AttributeContext_Request{
			Time: timestamppb.Now(),
			Http: &authv3.AttributeContext_HttpRequest{
				Id: "13094712893745", Method: method, Headers: h, Path: path,
				Host: "orders.example.com", Scheme: "https", Protocol: "HTTP/1.1",
			},
		},
	}}
}

// TestEnvoyGRPC runs embedtoken-envoy with the shipped
// deploy/sidecar/orders-envoy.hcl and speaks Envoy's ext_authz v3 and the
// gRPC health protocol to it with the real generated types.
func TestEnvoyGRPC(t *testing.T) {
	bin := needEnvoyBinary(t)
	st := newStack(t, stackOptions{})
	st.startHook(t)
	a := freeAddrs(t, 3)
	grpcAddr, httpAddr, admin := a[0], a[1], a[2]
	file := filepath.Join(st.dir, "sidecars", "orders-envoy.hcl")
	writeFile(t, file, shippedFile(t, "sidecar/orders-envoy.hcl", map[string]string{
		"127.0.0.1:8443": grpcAddr, shippedAuthz: httpAddr, "127.0.0.1:9911": admin}))

	t.Run("embedtoken alone refuses authz_grpc_listen", func(t *testing.T) {
		out, code := runCmd(t, needBinary(t), st.env(), "sidecar", "--config", st.dir, "--config", file)
		if code != 2 || !strings.Contains(out, "embedtoken-envoy") {
			t.Errorf("exit %d, want 2 naming embedtoken-envoy:\n%s", code, out)
		}
	})

	p := startOwned(t, st.owner, "sidecar-envoy", st.env(), bin, "sidecar", "--config", st.dir, "--config", file, "--log-level", "debug")
	p.waitHTTP(t, "http://"+admin+"/readyz")
	conn, err := grpc.NewClient("passthrough:///"+grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)
	check := func(t *testing.T, req *authv3.CheckRequest) *authv3.CheckResponse {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := client.Check(ctx, req)
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		return resp
	}
	outer := mintOuter(t, st, devSubject, "")
	inner := decodeJWT(t, outer).embedded(minterClaim)["orders"]
	bearer := map[string]string{"authorization": "Bearer " + outer, "cookie": "session=1"}

	t.Run("health", func(t *testing.T) {
		hc := healthpb.NewHealthClient(conn)
		for _, svc := range []string{"", "envoy.service.auth.v3.Authorization"} {
			r, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
			if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				t.Errorf("health %q: %v %v", svc, r.GetStatus(), err)
			}
		}
		if _, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "other"}); status.Code(err) != codes.NotFound {
			t.Errorf("unknown service: %v", err)
		}
	})
	t.Run("allowed: authorization overwritten with the inner token", func(t *testing.T) {
		r := check(t, envoyCheck("GET", "/orders/1?page=2", bearer))
		ok := r.GetOkResponse()
		if codes.Code(r.GetStatus().GetCode()) != codes.OK || ok == nil {
			t.Fatalf("got %v", r)
		}
		got := map[string]string{}
		for _, h := range ok.GetHeaders() {
			if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
				t.Errorf("%s: append action %v", h.GetHeader().GetKey(), h.GetAppendAction())
			}
			got[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
		if got["authorization"] != "Bearer "+inner {
			t.Error("authorization is not the orders inner token")
		}
		if got["x-request-id"] != "5b2e9c1a-7d4f-4e8a-b3c6-0f1e2d3c4b5a" {
			t.Errorf("x-request-id %q", got["x-request-id"])
		}
		if strings.Join(ok.GetHeadersToRemove(), ",") != "cookie" {
			t.Errorf("headers to remove %q, want the strip_headers", ok.GetHeadersToRemove())
		}
	})
	t.Run("public path: the client's authorization removed", func(t *testing.T) {
		r := check(t, envoyCheck("GET", "/healthz", bearer))
		ok := r.GetOkResponse()
		if ok == nil || len(ok.GetHeaders()) != 1 || ok.GetHeaders()[0].GetHeader().GetKey() != "x-request-id" || !contains(ok.GetHeadersToRemove(), "authorization") {
			t.Errorf("got %v", r)
		}
	})
	header := func(r *authv3.CheckResponse, name string) string {
		for _, h := range r.GetDeniedResponse().GetHeaders() {
			if h.GetHeader().GetKey() == name {
				return h.GetHeader().GetValue()
			}
		}
		return ""
	}
	denied := []struct {
		name      string
		req       *authv3.CheckRequest
		code      codes.Code
		status    int
		errorCode string
	}{
		{"tampered", envoyCheck("GET", "/orders/1", map[string]string{"authorization": "Bearer " + flip(outer)}), codes.Unauthenticated, 401, "invalid_token"},
		{"no token", envoyCheck("GET", "/orders/1", nil), codes.Unauthenticated, 401, "unauthorized"},
		{"route scope on the original method", envoyCheck("DELETE", "/orders/admin/1", bearer), codes.PermissionDenied, 403, "insufficient_scope"},
		{"encoded slash", envoyCheck("GET", "/orders%2Fadmin/1", bearer), codes.InvalidArgument, 400, "invalid_request"},
		{"dot segments", envoyCheck("GET", "/healthz/../orders/admin", nil), codes.InvalidArgument, 400, "invalid_request"},
		{"query token", envoyCheck("GET", "/orders/1?access_token=x", bearer), codes.InvalidArgument, 400, "invalid_request"},
		{"absolute-form path", envoyCheck("GET", "http://orders.example.com/healthz", bearer), codes.InvalidArgument, 400, "invalid_request"},
		{"hostile map: authorization twice by case", envoyCheck("GET", "/orders/1", map[string]string{"authorization": "Bearer " + outer, "Authorization": "Bearer " + outer}), codes.InvalidArgument, 400, "invalid_request"},
		{"hostile map: joined duplicates", envoyCheck("GET", "/orders/1", map[string]string{"authorization": "Bearer " + outer + ",Bearer " + outer}), codes.InvalidArgument, 400, "invalid_request"},
		{"hostile map: oversized", envoyCheck("GET", "/orders/1", map[string]string{"authorization": "Bearer " + outer, "x-pad": strings.Repeat("a", 40000)}), codes.InvalidArgument, 431, "request_header_fields_too_large"},
		{"hostile map: bad method", envoyCheck("GET /x", "/orders/1", bearer), codes.InvalidArgument, 400, "invalid_request"},
		{"no http attributes", &authv3.CheckRequest{}, codes.InvalidArgument, 400, "invalid_request"},
	}
	for _, tc := range denied {
		t.Run(tc.name, func(t *testing.T) {
			r := check(t, tc.req)
			d := r.GetDeniedResponse()
			if codes.Code(r.GetStatus().GetCode()) != tc.code || d == nil || int(d.GetStatus().GetCode()) != tc.status {
				t.Fatalf("got code %v, denied %v; want %v with HTTP %d", codes.Code(r.GetStatus().GetCode()), d, tc.code, tc.status)
			}
			var body struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal([]byte(d.GetBody()), &body); err != nil || body.Error != tc.errorCode {
				t.Errorf("body %q, want error %q", d.GetBody(), tc.errorCode)
			}
			wa := header(r, "www-authenticate")
			if tc.status < 431 && !strings.HasPrefix(wa, `Bearer realm="orders"`) {
				t.Errorf("www-authenticate %q", wa)
			}
			if header(r, "authorization") != "" {
				t.Error("authorization on a refusal")
			}
		})
	}
	t.Run("hostile map: names that are no header names are ignored", func(t *testing.T) {
		r := check(t, envoyCheck("GET", "/orders/1", map[string]string{"authorization": "Bearer " + outer, "x-a\r\nauthorization": "Bearer x", "": "y"}))
		if r.GetOkResponse() == nil {
			t.Errorf("got %v", r)
		}
	})
	t.Run("raw header values (encode_raw_headers)", func(t *testing.T) {
		req := envoyCheck("GET", "/orders/1", nil)
		req.Attributes.Request.Http.Headers = nil
		req.Attributes.Request.Http.HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
			{Key: ":path", RawValue: []byte("/orders/1")}, {Key: "authorization", RawValue: []byte("Bearer " + outer)}}}
		if r := check(t, req); r.GetOkResponse() == nil {
			t.Errorf("got %v", r)
		}
	})
	t.Run("CPU per warm decision (measured, logged)", func(t *testing.T) {
		// Not a timed assertion: the sidecar's CPU time (from /proc) over
		// n sequential decisions, gRPC against HTTP /authz/envoy/, logged
		// for BENCHMARKS.md.
		const n = 2000
		req := envoyCheck("GET", "/orders/1", bearer)
		hreq, _ := http.NewRequest(http.MethodGet, "http://"+httpAddr+"/authz/envoy/orders/1", nil)
		hreq.Header.Set("Authorization", "Bearer "+outer)
		per := func(f func()) time.Duration {
			c0 := cpuTime(p.cmd.Process.Pid)
			for range n {
				f()
			}
			return (cpuTime(p.cmd.Process.Pid) - c0) / n
		}
		grpcCPU := per(func() { check(t, req) })
		httpCPU := per(func() {
			resp, err := st.client.Do(hreq)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		})
		t.Logf("sidecar CPU per warm decision over %d sequential calls: gRPC Check %s, HTTP /authz/envoy/ %s", n, grpcCPU, httpCPU)
	})
	if n := metricValue(t, st.client, "http://"+admin+"/metrics", `embedtoken_sidecar_requests_total{outcome="allowed",reason="ok"}`); n < 3 {
		t.Errorf("allowed decisions counted: %v", n)
	}
	if log := p.log(); strings.Contains(log, outer[len(outer)-30:]) || strings.Contains(log, inner[len(inner)-30:]) {
		t.Error("a token in the sidecar's log")
	}
	conn.Close()
	p.stop(t)
	st.stopAll(t)
}
