package catalog_test

import (
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/hashicorp/hcl/v2"

	"github.com/embedtoken/embedtoken/catalog"
)

// shippedFS is the shipped hcl/ (every *.hcl, sidecars included) plus extra
// files, under "hcl/".
func shippedFS(t *testing.T, extra map[string]string) fstest.MapFS {
	t.Helper()
	fsys := fstest.MapFS{}
	for _, pattern := range []string{"../hcl/*.hcl", "../hcl/sidecars/*.hcl"} {
		files, _ := filepath.Glob(pattern)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			fsys[strings.TrimPrefix(filepath.ToSlash(f), "../")] = &fstest.MapFile{Data: b}
		}
	}
	for name, src := range extra {
		fsys[path.Join("hcl", name)] = &fstest.MapFile{Data: []byte(src)}
	}
	return fsys
}

// hookOnly holds secrets that only the hook needs, none of them set.
const hookOnly = `
exchange_client "orders-sidecar" {
  secret    = env("ORDERS_SIDECAR_SECRET")
  audiences = ["https://orders.internal"]
}
exchange_client "profile-sidecar" {
  secret_file = "secrets/profile-sidecar"
  audiences   = ["https://profile.internal"]
}
`

// TestSecretsOfBlocksNotRun: a command needs only the secrets of the blocks
// it runs; the others' unset env() or unreadable secret_file is a warning.
func TestSecretsOfBlocksNotRun(t *testing.T) {
	sidecarExchange := `exchange {
  token_url = "http://127.0.0.1:4459/oauth2/token"
  client_id = "orders-sidecar"
  secret    = env("ORDERS_SIDECAR_SECRET")
}`
	phantom := `trust "hydra-opaque" {
  issuer               = "http://127.0.0.1:4444"
  introspection_url    = "http://127.0.0.1:4445/admin/oauth2/introspect"
  introspection_client_id = "sidecar"
  introspection_secret = env("INTROSPECTION_SECRET")
  claim                = "ext.embedded_tokens"
}`
	const (
		sidecar = catalog.BlocksSidecar | catalog.BlocksTrust
		hook    = catalog.BlocksHook | catalog.BlocksTrust
	)
	tests := []struct {
		name       string
		extra      map[string]string
		runs       catalog.Blocks
		strict     bool     // Options.NotRun left zero
		wantErrors int      // error diagnostics
		wantWarn   []string // positions of "Secret not resolved" warnings
	}{
		{name: "sidecar without the hook's secrets", extra: map[string]string{"exchange_clients.hcl": hookOnly}, runs: sidecar,
			wantWarn: []string{"hcl/exchange_clients.hcl:3:15", "hcl/exchange_clients.hcl:6:1"}},
		{name: "check without any secret", extra: map[string]string{"exchange_clients.hcl": hookOnly, "phantom.hcl": phantom}, runs: 0,
			wantWarn: []string{"hcl/exchange_clients.hcl:3:15", "hcl/exchange_clients.hcl:6:1", "hcl/phantom.hcl:5:26"}},
		{name: "hook needs its own secrets", extra: map[string]string{"exchange_clients.hcl": hookOnly}, runs: hook, wantErrors: 2},
		{name: "strict by default", extra: map[string]string{"exchange_clients.hcl": hookOnly}, strict: true, wantErrors: 2},
		{name: "sidecar needs its trusts' secrets", extra: map[string]string{"phantom.hcl": phantom}, runs: sidecar, wantErrors: 1},
		{name: "hook without the sidecar's exchange secret", extra: map[string]string{"exchange_clients.hcl": `exchange_client "orders-sidecar" {
  secret    = env("OTHER", "x")
  audiences = ["https://orders.internal"]
}`, "sidecars/orders.hcl": "", "orders_exchange.hcl": sidecarExchange}, runs: hook,
			wantWarn: []string{"hcl/orders_exchange.hcl:4:15"}},
		{name: "a sidecar needs its exchange secret", extra: map[string]string{"orders_exchange.hcl": sidecarExchange}, runs: sidecar, wantErrors: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := &catalog.Options{LookupEnv: noEnv, NotRun: catalog.BlocksAll &^ tt.runs}
			if tt.strict {
				opts.NotRun = 0
			}
			_, _, diags := catalog.Load(shippedFS(t, tt.extra), []string{"hcl", "hcl/sidecars/orders.hcl"}, opts)
			if got := len(diags.Errs()); got != tt.wantErrors {
				t.Fatalf("got %d errors, want %d:\n%s", got, tt.wantErrors, diagLines(diags))
			}
			var warned []string
			for _, d := range diags {
				if d.Severity == hcl.DiagWarning && d.Summary == "Secret not resolved" {
					warned = append(warned, sprintf("%s:%d:%d", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column))
					if !strings.Contains(d.Detail, "set it where") {
						t.Errorf("detail %q does not say where the secret is needed", d.Detail)
					}
				}
			}
			if strings.Join(warned, " ") != strings.Join(tt.wantWarn, " ") {
				t.Errorf("warnings at %v, want %v:\n%s", warned, tt.wantWarn, diagLines(diags))
			}
		})
	}
}

// TestShippedSidecarsNeedNoHookSecrets loads every shipped sidecar
// configuration as `sidecar` does, with an empty environment.
func TestShippedSidecarsNeedNoHookSecrets(t *testing.T) {
	fsys := shippedFS(t, map[string]string{"exchange_clients.hcl": hookOnly})
	files, _ := filepath.Glob("../hcl/sidecars/*.hcl")
	if len(files) == 0 {
		t.Fatal("no shipped sidecar configuration")
	}
	for _, f := range files {
		name := "hcl/sidecars/" + filepath.Base(f)
		t.Run(filepath.Base(f), func(t *testing.T) {
			opts := &catalog.Options{LookupEnv: noEnv, NotRun: catalog.BlocksHook}
			cat, _, diags := catalog.Load(fsys, []string{"hcl", name}, opts)
			if diags.HasErrors() || cat == nil || cat.Sidecar == nil {
				t.Fatalf("%s: got errors or no sidecar:\n%s", name, diagLines(diags))
			}
		})
	}
}
