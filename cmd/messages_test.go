package cmd

import (
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// TestUsageMessages: mistakes are reported once, with a hint that helps.
func TestUsageMessages(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		code      int
		stderr    []string // substrings of stderr, in order
		once      string   // appears exactly once in stderr
		notStderr string
	}{
		{name: "typo in a command", args: []string{"sidcar"}, code: 2,
			stderr: []string{`unknown command "sidcar"`, "did you mean 'embedtoken sidecar'?"}},
		{name: "case of a command", args: []string{"Check"}, code: 2, stderr: []string{"did you mean 'embedtoken check'?"}},
		{name: "nothing close", args: []string{"frobnicate"}, code: 2, stderr: []string{"run 'embedtoken help'"}, notStderr: "did you mean"},
		{name: "a command of a second binary", args: []string{"inject", "--api", "orders"}, code: 2, stderr: []string{"inject is a command of embedtoken-kube", "embedtoken-kube inject --help"}},
		{name: "unknown flag once", args: []string{"check", "--confg", "x"}, code: 2,
			once: "flag provided but not defined: -confg", stderr: []string{"hint: run 'embedtoken check --help'"}, notStderr: "Usage:"},
		{name: "bad flag value once", args: []string{"keygen", "--rsa-bits", "many"}, code: 2, once: "invalid value"},
		{name: "log level lists the levels", args: []string{"sidecar", "--config", "../hcl", "--log-level", "verbose"}, code: 2,
			stderr: []string{"bad --log-level", "hint: use debug, info (the default), warn or error"}},
		{name: "sidecar without its block", args: []string{"sidecar", "--config", "../hcl"}, code: 2,
			stderr: []string{"the configuration has no sidecar block", "hint: add the sidecar's own file: --config hcl/ --config hcl/sidecars/<api>.hcl"}},
		{name: "help prints the usage", args: []string{"inspect", "--help"}, code: 0, once: "Usage: embedtoken inspect"},
		{name: "alg refused with a hint", args: []string{"keygen", "--alg", "HS256", "--kid", "k", "--out", "x"}, code: 2,
			stderr: []string{`unknown --alg "HS256"`, "use EdDSA, ES256, RS256 or PS256"}},
		{name: "opaque token", args: []string{"inspect", "ory_at_Zm9vYmFy.YmF6cXV4"}, code: 1,
			stderr: []string{"embedtoken: an opaque token (not a JWT): inspect cannot decode it"}},
		{name: "JWE", args: []string{"inspect", "a.b.c.d.e"}, code: 1, stderr: []string{"an encrypted token (JWE"}},
		{name: "no package names", args: []string{"inspect", "eyJhbGciOi.x.y"}, code: 1,
			stderr: []string{"embedtoken: malformed token"}, notStderr: "unwrap:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := run(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s", code, tt.code, errOut)
			}
			rest := errOut
			for _, s := range tt.stderr {
				i := strings.Index(rest, s)
				if i < 0 {
					t.Fatalf("stderr lacks %q (in order):\n%s", s, errOut)
				}
				rest = rest[i+len(s):]
			}
			if tt.once != "" && strings.Count(errOut, tt.once) != 1 {
				t.Errorf("%q appears %d times, want once:\n%s", tt.once, strings.Count(errOut, tt.once), errOut)
			}
			if tt.notStderr != "" && strings.Contains(errOut, tt.notStderr) {
				t.Errorf("stderr holds %q:\n%s", tt.notStderr, errOut)
			}
		})
	}
}

func TestKeygenAlgCase(t *testing.T) {
	for _, alg := range []string{"eddsa", "EDDSA", "es256", "EdDSA"} {
		dir := t.TempDir()
		code, out, errOut := run(t, "keygen", "--alg", alg, "--kid", "k", "--out", dir)
		want := "(EdDSA)"
		if strings.HasPrefix(strings.ToLower(alg), "es") {
			want = "(ES256)"
		}
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("keygen --alg %s: exit %d, %q %q", alg, code, out, errOut)
		}
	}
}

func TestVersionBuildInfo(t *testing.T) {
	code, out, _ := run(t, "version")
	if code != 0 || !strings.HasPrefix(out, "embedtoken ") || !strings.Contains(out, "\n  go       go1.") {
		t.Errorf("version: exit %d, %q", code, out)
	}
}

// signingConfig is a folder with a minter that signs (key m1) and the API
// orders (scope orders:read, claim email).
func signingConfig(t *testing.T) string {
	t.Helper()
	dir := writeFiles(t, map[string]string{"c.hcl": `minter {
  issuer     = "https://minter.test"
  jwks_file  = "keys/jwks.json"
  active_key = "m1"
  signing_key "m1" {
    algorithm        = "EdDSA"
    private_key_file = "keys/m1.key.pem"
  }
}
api "orders" {
  audience = "https://orders.test"
  scopes   = ["orders:read"]
  claims   = ["email"]
}
`})
	if code, _, errOut := run(t, "keygen", "--alg", "EdDSA", "--kid", "m1", "--out", filepath.Join(dir, "keys")); code != 0 {
		t.Fatal(errOut)
	}
	return dir
}

// TestMintNoTokenHint: a map with no token says why on stderr.
func TestMintNoTokenHint(t *testing.T) {
	dir := signingConfig(t)
	code, out, errOut := run(t, "mint", "--config", dir, "--sub", "a", "--client-id", "c", "--scope", "billing:read")
	if code != 0 || strings.TrimSpace(out) != "{}" || !strings.Contains(errOut, `hint: no exposed API got a token: --scope "billing:read" shares no scope with orders (orders:read)`) {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, errOut = run(t, "mint", "--config", dir, "--sub", "a", "--client-id", "c", "--scope", "orders:read")
	if code != 0 || strings.TrimSpace(out) == "{}" || strings.Contains(errOut, "hint") {
		t.Errorf("granted: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestInspectShowsAllClaims: claims beyond the registered ones, as text
// and as JSON.
func TestInspectShowsAllClaims(t *testing.T) {
	dir := signingConfig(t)
	keys := filepath.Join(dir, "keys")
	if code, _, errOut := run(t, "keygen", "--alg", "RS256", "--kid", "dev", "--out", keys); code != 0 {
		t.Fatal(errOut)
	}
	code, tok, errOut := run(t, "mint", "--config", dir, "--sub", "alice", "--client-id", "c", "--scope", "orders:read",
		"--claim", "email=a@example.com", "--claim", "tenant=acme",
		"--outer-key", filepath.Join(keys, "dev.key.pem"), "--outer-issuer", "https://dev.test")
	if code != 0 {
		t.Fatal(errOut)
	}
	tok = strings.TrimSpace(tok)
	code, out, errOut := run(t, "inspect", tok)
	if code != 0 || !strings.Contains(out, `email     "a@example.com"`) || !strings.Contains(out, `tenant    "acme"`) || !strings.Contains(out, "iat ") {
		t.Errorf("text: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = run(t, "inspect", "--json", tok)
	var got inspectNode
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil {
		t.Fatalf("json: exit %d\n%s%s", code, out, errOut)
	}
	if string(got.Claims["tenant"]) != `"acme"` || got.Subject != "alice" || got.Embedded == nil || len(got.Embedded.Tokens) != 1 ||
		string(got.Embedded.Tokens[0].Claims["email"]) != `"a@example.com"` || got.Signature != "not checked" {
		t.Errorf("json: %s", out)
	}
}

// TestListenErrorNamesTheSetting: a port in use names the setting.
func TestListenErrorNamesTheSetting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	err = listen([]*server{{name: "sidecar", setting: "sidecar.listen", addr: addr}})
	want := "sidecar.listen " + addr + ": address already in use"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %v, want %q...", err, want)
	}
}
