package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// run runs a subcommand in-process and returns its exit code and output.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Exit(Run(context.Background(), args, &out, &errb), &errb)
	return code, out.String(), errb.String()
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const testMinter = `minter {
  issuer     = "https://minter.test"
  jwks_url   = "https://minter.test/jwks.json"
  algorithms = ["EdDSA"]
  max_embedded_bytes = %d
}
api "orders" {
  audience = "https://orders.test"
  scopes   = ["orders:read"]
  claims   = ["email"]
}
`

func TestCheckExitCodes(t *testing.T) {
	ok := writeFiles(t, map[string]string{"c.hcl": strings.Replace(testMinter, "%d", "6144", 1)})
	over := writeFiles(t, map[string]string{"c.hcl": strings.Replace(testMinter, "%d", "100", 1)})
	bad := writeFiles(t, map[string]string{"c.hcl": `minter {
  issuer = "x"
  bogus  = 1
}`})
	tests := []struct {
		name     string
		args     []string
		code     int
		inStdout string
		inStderr string
	}{
		{"ok", []string{"check", "--config", ok}, 0, "OK", ""},
		{"over budget", []string{"check", "--config", over}, 1, "FAIL: the embedded map", ""},
		{"config error", []string{"check", "--config", bad}, 2, "", "c.hcl:3:3: error: Unsupported argument"},
		{"no config", []string{"check"}, 2, "", "--config is required"},
		{"missing path", []string{"check", "--config", filepath.Join(ok, "nope")}, 2, "", "Configuration path not found"},
		{"bad format", []string{"check", "--config", ok, "--format", "xml"}, 2, "", "unknown --format"},
		{"bad flag", []string{"check", "--frobnicate"}, 2, "", "flag provided but not defined"},
		{"help", []string{"check", "--help"}, 0, "", "Usage: embedtoken check"},
		{"unknown command", []string{"frobnicate"}, 2, "", "unknown command"},
		{"no command", nil, 2, "", "Commands:"},
		{"version", []string{"version"}, 0, "embedtoken ", ""},
		{"version help", []string{"version", "--help"}, 0, "", "Usage: embedtoken version"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := run(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit code: got %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout, stderr)
			}
			if !strings.Contains(stdout, tc.inStdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.inStdout, stdout)
			}
			if !strings.Contains(stderr, tc.inStderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.inStderr, stderr)
			}
		})
	}
}

func TestCheckJSON(t *testing.T) {
	dir := writeFiles(t, map[string]string{"c.hcl": strings.Replace(testMinter, "%d", "6144", 1)})
	code, stdout, _ := run(t, "check", "--config", dir, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var rep checkReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	if !rep.OK || len(rep.APIs) != 1 || rep.APIs[0].Name != "orders" || rep.Sizes == nil || rep.Sizes.APIs[0].Bytes <= 0 || rep.Sizes.EmbeddedBytes <= rep.Sizes.APIs[0].Bytes {
		t.Errorf("report: %+v", rep)
	}
}

func TestCheckShipped(t *testing.T) {
	code, stdout, stderr := run(t, "check", "--config", "../hcl")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"orders", "├── billing", "│   └── ledger", "└── inventory", "embedded map:", "OK"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
}

func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	for _, alg := range []string{"EdDSA", "ES256", "RS256", "PS256"} {
		if code, _, stderr := run(t, "keygen", "--alg", alg, "--kid", "k-"+alg, "--out", dir); code != 0 {
			t.Fatalf("%s: exit %d: %s", alg, code, stderr)
		}
		st, err := os.Stat(filepath.Join(dir, "k-"+alg+".key.pem"))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s key file: %v mode %v", alg, err, st.Mode())
		}
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	b, _ := os.ReadFile(filepath.Join(dir, "jwks.json"))
	if err := json.Unmarshal(b, &set); err != nil || len(set.Keys) != 4 {
		t.Fatalf("jwks: %v, %d keys", err, len(set.Keys))
	}
	for _, k := range set.Keys {
		if k["use"] != "sig" || k["kid"] == "" || k["alg"] == "" || k["d"] != nil {
			t.Errorf("bad JWK %v", k)
		}
	}
	code, _, stderr := run(t, "keygen", "--alg", "EdDSA", "--kid", "k-EdDSA", "--out", dir)
	if code == 0 || !strings.Contains(stderr, "already holds kid") {
		t.Errorf("overwriting a kid: exit %d, %s", code, stderr)
	}
	for _, args := range [][]string{
		{"--alg", "HS256", "--kid", "x"},
		{"--alg", "EdDSA", "--kid", "../x"},
		{"--alg", "EdDSA", "--kid", "a b"},
		{"--alg", "RS256", "--kid", "small", "--rsa-bits", "1024"},
		{"--alg", "EdDSA"},
	} {
		if code, _, _ := run(t, append(append([]string{"keygen"}, args...), "--out", dir)...); code != 2 {
			t.Errorf("keygen %v: exit %d, want 2", args, code)
		}
	}
	// The written key loads as a signing key of a configuration.
	cfg := writeFiles(t, map[string]string{"c.hcl": `minter {
  issuer   = "https://minter.test"
  jwks_file = "` + filepath.Join(dir, "jwks.json") + `"
  signing_key "k-ES256" {
    algorithm        = "ES256"
    private_key_file = "` + filepath.Join(dir, "k-ES256.key.pem") + `"
  }
}`})
	if code, stdout, stderr := run(t, "check", "--config", cfg); code != 0 || !strings.Contains(stdout, "Warnings (0)") {
		t.Errorf("check with generated key: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// TestFlagsAfterArguments: flags may follow a positional argument, as in
// `embedtoken inspect TOKEN --jwks FILE`; "--" ends the flags.
func TestFlagsAfterArguments(t *testing.T) {
	tests := []struct {
		args     []string
		max      int
		wantArgs []string
		wantJWKS []string
		wantErr  bool
	}{
		{[]string{"tok", "--jwks", "a", "--jwks", "b"}, 1, []string{"tok"}, []string{"a", "b"}, false},
		{[]string{"--jwks", "a", "tok"}, 1, []string{"tok"}, []string{"a"}, false},
		{[]string{"--", "--jwks"}, 1, []string{"--jwks"}, nil, false},
		{[]string{"a", "b"}, 1, nil, nil, true},
		{[]string{"tok", "--nope"}, 1, nil, nil, true},
	}
	for _, tc := range tests {
		fs := newFlags("inspect", "inspect", &bytes.Buffer{})
		var jwks stringList
		fs.Var(&jwks, "jwks", "")
		err := parseFlags(fs, tc.args, tc.max)
		if (err != nil) != tc.wantErr {
			t.Errorf("%v: err = %v, want error %v", tc.args, err, tc.wantErr)
			continue
		}
		if tc.wantErr {
			continue
		}
		if got := fs.Args(); strings.Join(got, "|") != strings.Join(tc.wantArgs, "|") {
			t.Errorf("%v: args %q, want %q", tc.args, got, tc.wantArgs)
		}
		if strings.Join(jwks, "|") != strings.Join(tc.wantJWKS, "|") {
			t.Errorf("%v: jwks %q, want %q", tc.args, jwks, tc.wantJWKS)
		}
	}
}
