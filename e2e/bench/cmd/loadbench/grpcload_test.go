package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGRPCLoadArguments(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.tokens")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"too few", []string{"127.0.0.1:1", empty}, "usage"},
		{"calls not a number", []string{"127.0.0.1:1", empty, "x", "1", "1", "1", "out"}, `"x" is not a positive number`},
		{"zero concurrency", []string{"127.0.0.1:1", empty, "10", "0", "1", "1", "out"}, `"0" is not a positive number`},
		{"no tokens", []string{"127.0.0.1:1", empty, "10", "1", "1", "1", "out"}, "no tokens"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := runGRPCLoad(tc.args)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestEnvoyShapedCheck: the load is shaped like Envoy's CheckRequest (what
// extauthz.requestHeader reads: lower-case names, pseudo-headers, the
// original request's own fields).
func TestEnvoyShapedCheck(t *testing.T) {
	h := envoyShapedCheck("GET", "/orders/42?x=1", "Bearer t").GetAttributes().GetRequest().GetHttp()
	if h.GetMethod() != "GET" || h.GetPath() != "/orders/42?x=1" || h.GetHost() == "" {
		t.Fatalf("request fields: %v", h)
	}
	hs := h.GetHeaders()
	if hs["authorization"] != "Bearer t" || hs[":path"] != "/orders/42?x=1" || hs[":method"] != "GET" {
		t.Fatalf("headers: %v", hs)
	}
	for k := range hs {
		if k != strings.ToLower(k) {
			t.Errorf("header name %q is not lower case", k)
		}
	}
}
