package e2e

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cmdTimeout bounds every one-shot command (check, keygen, mint).
const cmdTimeout = 60 * time.Second

// runCmd runs bin with args (environment: baseEnv plus env) and returns its
// combined output and exit code; it fails t only when the command cannot run
// or times out.
func runCmd(t *testing.T, bin string, env []string, args ...string) (string, int) {
	t.Helper()
	stdout, stderr, code := runCmdSplit(t, bin, env, args...)
	return stdout + stderr, code
}

// runCmdSplit is runCmd with stdout and stderr apart.
func runCmdSplit(t *testing.T, bin string, env []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = baseEnv(env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: timed out after %s", bin, strings.Join(args, " "), cmdTimeout)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), stderr.String(), 0
	case errors.As(err, &ee):
		return stdout.String(), stderr.String(), ee.ExitCode()
	default:
		t.Fatalf("%s %s: %v", bin, strings.Join(args, " "), err)
		return "", "", -1
	}
}

// mustRun runs an embedtoken subcommand and fails t unless it exits 0. It
// returns stdout.
func mustRun(t *testing.T, env []string, args ...string) string {
	t.Helper()
	stdout, stderr, code := runCmdSplit(t, needBinary(t), env, args...)
	if code != 0 {
		t.Fatalf("embedtoken %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout, stderr)
	}
	return stdout
}

// TestCLINewcomerMessages runs the real binary the way a newcomer meets it:
// version from the build info, a port in use naming its setting, a wrong
// flag reported once, a mistyped command with a suggestion.
func TestCLINewcomerMessages(t *testing.T) {
	bin := needBinary(t)
	out, code := runCmd(t, bin, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "embedtoken ") || !strings.Contains(out, "go       go1.") {
		t.Errorf("version: exit %d\n%s", code, out)
	}

	st := newStack(t, stackOptions{})
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	file := filepath.Join(st.dir, "sidecars", "orders.hcl")
	st.edit(t, filepath.Join("sidecars", "orders.hcl"), func(src string) string {
		return setAttr(t, src, "listen", quote(busy.Addr().String()))
	})
	out, code = runCmd(t, bin, st.env(), "sidecar", "--config", st.dir, "--config", file)
	if want := "embedtoken: sidecar.listen " + busy.Addr().String() + ": address already in use"; code != 1 || !strings.Contains(out, want) {
		t.Errorf("port in use: exit %d, want 1 and %q:\n%s", code, want, out)
	}

	tests := []struct {
		args []string
		once string
		hint string
	}{
		{[]string{"check", "--confg", "hcl/"}, "flag provided but not defined: -confg", "hint: run 'embedtoken check --help'"},
		{[]string{"inspct"}, `unknown command "inspct"`, "did you mean 'embedtoken inspect'?"},
	}
	for _, tt := range tests {
		out, code := runCmd(t, bin, nil, tt.args...)
		if code != 2 || strings.Count(out, tt.once) != 1 || !strings.Contains(out, tt.hint) || strings.Contains(out, "Usage:") {
			t.Errorf("embedtoken %s: exit %d, want 2, %q once and %q:\n%s", strings.Join(tt.args, " "), code, tt.once, tt.hint, out)
		}
	}
}

// TestKubernetesExampleLayout builds the folder that README's Kubernetes
// example mounts (its ConfigMap items, its orders-pod.hcl) and checks it
// the way the pod's sidecar loads it: it loads, with the admin listener
// warning and without any hook secret.
func TestKubernetesExampleLayout(t *testing.T) {
	bin := needBinary(t)
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "```hcl\n# orders-pod.hcl\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal("README has no orders-pod.hcl block")
	}
	dir := filepath.Join(t.TempDir(), "etc-embedtoken")
	for _, sub := range []string{"sidecars", filepath.Join("keys", "issuer")} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"catalog.hcl", "trust.hcl"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, "hcl", f))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, f), string(b))
	}
	writeFile(t, filepath.Join(dir, "sidecars", "orders.hcl"), block)
	keys := filepath.Join(t.TempDir(), "keys")
	mustRun(t, nil, "keygen", "--alg", "RS256", "--kid", "dev-1", "--out", keys)
	jwks, err := os.ReadFile(filepath.Join(keys, "jwks.json"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "keys", "issuer", "jwks.json"), string(jwks))
	out, code := runCmd(t, bin, nil, "check", "--config", dir, "--config", filepath.Join(dir, "sidecars", "orders.hcl"))
	if code != 0 || !strings.Contains(out, "Admin listener not on loopback") || strings.Contains(out, "error:") {
		t.Errorf("check of the Kubernetes example: exit %d, want 0 with the admin warning:\n%s", code, out)
	}
}
