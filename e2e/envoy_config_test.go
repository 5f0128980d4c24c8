package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
)

// loadBootstrap decodes a shipped Envoy bootstrap (YAML) into
// go-control-plane's types, strictly (an unknown field is an error), and
// runs its generated validation.
func loadBootstrap(t *testing.T, rel string) *bootstrapv3.Bootstrap {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy", rel))
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	var bs bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(js, &bs); err != nil {
		t.Fatalf("%s: not an Envoy v3 bootstrap: %v", rel, err)
	}
	if err := bs.ValidateAll(); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return &bs
}

// extAuthzOf returns the listener's HTTP connection manager and its
// ext_authz filter, which must be the first HTTP filter.
func extAuthzOf(t *testing.T, bs *bootstrapv3.Bootstrap) (*hcmv3.HttpConnectionManager, *extauthzv3.ExtAuthz) {
	t.Helper()
	ls := bs.GetStaticResources().GetListeners()
	if len(ls) != 1 {
		t.Fatalf("%d listeners", len(ls))
	}
	var hcm hcmv3.HttpConnectionManager
	if err := ls[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
		t.Fatal(err)
	}
	filters := hcm.GetHttpFilters()
	if len(filters) < 2 || filters[0].GetName() != "envoy.filters.http.ext_authz" {
		t.Fatalf("ext_authz is not the first HTTP filter")
	}
	var ea extauthzv3.ExtAuthz
	if err := filters[0].GetTypedConfig().UnmarshalTo(&ea); err != nil {
		t.Fatal(err)
	}
	if ea.GetFailureModeAllow() {
		t.Error("failure_mode_allow: a down sidecar would let every request through")
	}
	if ea.GetStatusOnError().GetCode() != 503 {
		t.Errorf("status_on_error %v, want 503", ea.GetStatusOnError().GetCode())
	}
	return &hcm, &ea
}

// clusterPort is the port of the named static cluster's only endpoint.
func clusterPort(t *testing.T, bs *bootstrapv3.Bootstrap, name string) uint32 {
	t.Helper()
	for _, c := range bs.GetStaticResources().GetClusters() {
		if c.GetName() == name {
			return c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress().GetPortValue()
		}
	}
	t.Fatalf("no cluster %q", name)
	return 0
}

// TestEnvoyBootstrapGRPC checks deploy/envoy/ext-authz-grpc.yaml as
// shipped: a valid v3 bootstrap whose ext_authz asks the shipped
// orders-envoy sidecar's authz_grpc_listen over HTTP/2, fail-closed.
func TestEnvoyBootstrapGRPC(t *testing.T) {
	bs := loadBootstrap(t, "envoy/ext-authz-grpc.yaml")
	_, ea := extAuthzOf(t, bs)
	if ea.GetGrpcService().GetEnvoyGrpc().GetClusterName() != "embedtoken_authz" || ea.GetTransportApiVersion().String() != "V3" {
		t.Errorf("grpc_service %v, transport %v", ea.GetGrpcService(), ea.GetTransportApiVersion())
	}
	if p := clusterPort(t, bs, "embedtoken_authz"); p != 8443 {
		t.Errorf("authz cluster port %d, want the shipped authz_grpc_listen 8443", p)
	}
	for _, c := range bs.GetStaticResources().GetClusters() {
		if c.GetName() == "embedtoken_authz" && c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"] == nil {
			t.Error("the gRPC cluster does not speak HTTP/2")
		}
	}
}

// TestEnvoyBootstrapHTTP checks deploy/envoy/ext-authz-http.yaml as
// shipped: path_prefix /authz/envoy on the shipped authz_listen, the
// decision's authorization replacing the client's, the refusal's headers
// passed to the client, and the client's authorization removed on the
// public path (where the decision returns none).
func TestEnvoyBootstrapHTTP(t *testing.T) {
	bs := loadBootstrap(t, "envoy/ext-authz-http.yaml")
	hcm, ea := extAuthzOf(t, bs)
	hs := ea.GetHttpService()
	if hs.GetPathPrefix() != "/authz/envoy" || hs.GetServerUri().GetCluster() != "embedtoken_authz" {
		t.Errorf("http_service %v", hs)
	}
	if p := clusterPort(t, bs, "embedtoken_authz"); p != 8442 {
		t.Errorf("authz cluster port %d, want the shipped authz_listen 8442", p)
	}
	exact := func(name string, l *matcherv3.ListStringMatcher) bool {
		for _, p := range l.GetPatterns() {
			if p.GetExact() == name {
				return true
			}
		}
		return false
	}
	if !exact("authorization", ea.GetAllowedHeaders()) {
		t.Error("allowed_headers does not send authorization to the sidecar")
	}
	if !exact("authorization", hs.GetAuthorizationResponse().GetAllowedUpstreamHeaders()) {
		t.Error("allowed_upstream_headers does not replace authorization with the inner token")
	}
	for _, h := range []string{"www-authenticate", "retry-after", "x-request-id", "content-type"} {
		if !exact(h, hs.GetAuthorizationResponse().GetAllowedClientHeaders()) {
			t.Errorf("allowed_client_headers lacks %s", h)
		}
	}
	var public *routev3.Route
	for _, r := range hcm.GetRouteConfig().GetVirtualHosts()[0].GetRoutes() {
		if r.GetMatch().GetPath() == "/healthz" {
			public = r
		}
	}
	if public == nil || len(public.GetRequestHeadersToRemove()) != 1 || public.GetRequestHeadersToRemove()[0] != "authorization" {
		t.Errorf("the public path /healthz does not remove the client's authorization: %v", public)
	}
}
