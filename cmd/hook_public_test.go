package cmd

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for a daemon's concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freeLoopback(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestHookWithoutPublicListener: a hook whose minter keys are a file and
// that serves no exchange runs without public_listen; one that needs it is
// refused by check and by the hook with the block's position.
func TestHookWithoutPublicListener(t *testing.T) {
	needs := writeFiles(t, map[string]string{
		"c.hcl":           strings.NewReplacer("  public_listen = \"127.0.0.1:0\"\n", "", "ACTIVE", "k1", "KEY", "secret-key-0123456789").Replace(hookTestHCL),
		"keys/k1.key.pem": pemKey(t), "keys/k2.key.pem": pemKey(t),
	})
	for _, args := range [][]string{{"check", "--config", needs}, {"hook", "--config", needs}} {
		code, _, errOut := run(t, args...)
		if code != 2 || !strings.Contains(errOut, "c.hcl:25:1: error: Missing public_listen") {
			t.Errorf("%s: exit %d, want 2 with the position: %s", args[0], code, errOut)
		}
	}

	private, admin := freeLoopback(t), freeLoopback(t)
	src := strings.NewReplacer(
		`jwks_url   = "https://minter.test/.well-known/jwks.json"`, `jwks_file  = "jwks.json"`,
		"  public_listen = \"127.0.0.1:0\"\n", "  generic = true\n",
		`listen        = "127.0.0.1:0"`, `listen        = "`+private+`"`,
		`admin_listen  = "127.0.0.1:0"`, `admin_listen  = "`+admin+`"`,
		"ACTIVE", "k1", "KEY", "secret-key-0123456789").Replace(hookTestHCL)
	dir := writeFiles(t, map[string]string{"c.hcl": src, "keys/k1.key.pem": pemKey(t), "keys/k2.key.pem": pemKey(t), "jwks.json": `{"keys":[]}`})
	ctx, cancel := context.WithCancel(context.Background())
	var stderr lockedBuffer
	done := make(chan error, 1)
	go func() { done <- Run(ctx, []string{"hook", "--config", dir}, &bytes.Buffer{}, &stderr) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("hook: %v", err)
		}
	}()
	body := `{"sub":"u","client_id":"c","scope":"orders:read","exp":` + itoa64(time.Now().Add(time.Hour).Unix()) + `}`
	var resp *http.Response
	for i := 0; i < 100; i++ {
		req, _ := http.NewRequest(http.MethodPost, "http://"+private+"/hooks/generic", strings.NewReader(body))
		req.Header.Set("X-Embedtoken-Key", "secret-key-0123456789")
		var err error
		if resp, err = http.DefaultClient.Do(req); err == nil {
			break
		}
		select {
		case err := <-done:
			done <- nil // for the deferred wait
			t.Fatalf("hook exited: %v: %s", err, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if resp == nil {
		t.Fatalf("hook never answered: %s", stderr.String())
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("generic hook: %d", resp.StatusCode)
	}
	if logs := stderr.String(); strings.Contains(logs, `"listener":"public"`) || !strings.Contains(logs, `"listener":"private"`) {
		t.Errorf("listeners: %s", logs)
	}
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }
