package e2e

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
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
