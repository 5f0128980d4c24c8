package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networkingv1beta1 "istio.io/api/networking/v1beta1"
	securityv1beta1 "istio.io/api/security/v1beta1"
)

// deployJSONDocs decodes every document of a YAML file under deploy/ into JSON.
func deployJSONDocs(t *testing.T, rel string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy", rel))
	if err != nil {
		t.Fatal(err)
	}
	var docs [][]byte
	for _, doc := range yamlDocs(t, b) {
		js, err := json.Marshal(doc)
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		docs = append(docs, js)
	}
	return docs
}

// decodeStrict decodes js into m; an unknown field is an error.
func decodeStrict(t *testing.T, what string, js []byte, m proto.Message) {
	t.Helper()
	if err := protojson.Unmarshal(js, m); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestIstioConfigs checks deploy/istio/*.yaml as shipped: the extension
// providers decode into MeshConfig and point at the shipped sidecar's
// ports, fail-closed; the ServiceEntry and AuthorizationPolicy decode into
// their types and use them.
func TestIstioConfigs(t *testing.T) {
	docs := deployJSONDocs(t, "istio/mesh-config.yaml")
	var top struct {
		MeshConfig json.RawMessage `json:"meshConfig"`
	}
	if len(docs) != 1 || json.Unmarshal(docs[0], &top) != nil || top.MeshConfig == nil {
		t.Fatal("mesh-config.yaml: want one document with meshConfig")
	}
	var mc meshv1alpha1.MeshConfig
	decodeStrict(t, "meshConfig", top.MeshConfig, &mc)
	providers := map[string]*meshv1alpha1.MeshConfig_ExtensionProvider{}
	for _, p := range mc.GetExtensionProviders() {
		providers[p.GetName()] = p
	}
	g := providers["embedtoken-grpc"].GetEnvoyExtAuthzGrpc()
	if g == nil || g.GetService() != "embedtoken.local" || g.GetPort() != 8443 || g.GetFailOpen() || g.GetStatusOnError() != "503" {
		t.Errorf("embedtoken-grpc provider: %v", g)
	}
	h := providers["embedtoken-http"].GetEnvoyExtAuthzHttp()
	if h == nil || h.GetPort() != 8442 || h.GetPathPrefix() != "/authz/envoy" || h.GetFailOpen() ||
		!contains(h.GetHeadersToUpstreamOnAllow(), "authorization") || !contains(h.GetIncludeRequestHeadersInCheck(), "authorization") ||
		!contains(h.GetHeadersToDownstreamOnDeny(), "www-authenticate") || !contains(h.GetHeadersToDownstreamOnDeny(), "retry-after") {
		t.Errorf("embedtoken-http provider: %v", h)
	}

	var kinds []string
	for i, js := range deployJSONDocs(t, "istio/authorization-policy.yaml") {
		var obj struct {
			Kind string          `json:"kind"`
			Spec json.RawMessage `json:"spec"`
		}
		if err := json.Unmarshal(js, &obj); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, obj.Kind)
		switch obj.Kind {
		case "ServiceEntry":
			var se networkingv1beta1.ServiceEntry
			decodeStrict(t, "ServiceEntry", obj.Spec, &se)
			if !contains(se.GetHosts(), "embedtoken.local") || se.GetEndpoints()[0].GetAddress() != "127.0.0.1" {
				t.Errorf("ServiceEntry: %v", &se)
			}
			ports := map[uint32]bool{}
			for _, p := range se.GetPorts() {
				ports[p.GetNumber()] = true
			}
			if !ports[8443] || !ports[8442] {
				t.Errorf("ServiceEntry ports %v, want the shipped sidecar's 8443 and 8442", ports)
			}
		case "AuthorizationPolicy":
			var ap securityv1beta1.AuthorizationPolicy
			decodeStrict(t, "AuthorizationPolicy", obj.Spec, &ap)
			if ap.GetAction() != securityv1beta1.AuthorizationPolicy_CUSTOM || providers[ap.GetProvider().GetName()] == nil || len(ap.GetRules()) != 1 {
				t.Errorf("AuthorizationPolicy: %v", &ap)
			}
		default:
			t.Errorf("document %d: unexpected kind %q", i, obj.Kind)
		}
	}
	if len(kinds) != 2 {
		t.Errorf("kinds %v, want a ServiceEntry and an AuthorizationPolicy", kinds)
	}
}
