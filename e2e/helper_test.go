package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary act as a small child process for the
// harness's own tests: "serve:ADDR" serves GET /readyz on ADDR until SIGTERM
// and exits 0; "exit:N" exits at once with status N.
const helperEnv = "EMBEDTOKEN_E2E_HELPER"

// helperMain runs the helper when asked to, and reports whether it did.
func helperMain() bool {
	mode, ok := os.LookupEnv(helperEnv)
	if !ok {
		return false
	}
	kind, arg, _ := strings.Cut(mode, ":")
	switch kind {
	case "exit":
		n, _ := strconv.Atoi(arg)
		fmt.Fprintln(os.Stderr, "helper: exiting with", n)
		os.Exit(n)
	case "serve":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		srv := &http.Server{Addr: arg, ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/readyz" {
				http.NotFound(w, r)
				return
			}
			fmt.Fprintln(w, "ok")
		})}
		go func() {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
		fmt.Fprintln(os.Stderr, "helper: listening on", arg)
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	fmt.Fprintln(os.Stderr, "helper: unknown mode", mode)
	os.Exit(2)
	return true
}

// TestHarnessProcess checks the process helpers on the test binary itself:
// readiness, a clean SIGTERM stop, and early exits reported at once.
func TestHarnessProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped under -short")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("ready and stop", func(t *testing.T) {
		addr := freeAddr(t)
		p := startProc(t, "helper", baseEnv(helperEnv+"=serve:"+addr), self)
		p.waitHTTP(t, "http://"+addr+"/readyz")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := waitTCP(ctx, addr); err != nil {
			t.Fatal(err)
		}
		p.stop(t)
		if !strings.Contains(p.log(), "listening on "+addr) {
			t.Errorf("log lacks the helper's output:\n%s", p.log())
		}
	})
	t.Run("early exit", func(t *testing.T) {
		p := startProc(t, "helper-exit", baseEnv(helperEnv+"=exit:3"), self)
		start := time.Now()
		err := p.waitReady("http://"+freeAddr(t)+"/readyz", 10*time.Second)
		if err == nil || !strings.Contains(err.Error(), "exit status 3") {
			t.Fatalf("waitReady: got %v, want an error naming exit status 3", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("early exit noticed after %s, want at once", d)
		}
		if err := p.terminate(); err == nil {
			t.Error("terminate of an exited process: got nil, want an error")
		}
	})
}

// TestBinaryVersion runs the binary built by TestMain.
func TestBinaryVersion(t *testing.T) {
	bin := needBinary(t)
	out, code := runCmd(t, bin, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "embedtoken ") {
		t.Fatalf("embedtoken version: exit %d, output %q", code, out)
	}
}
