package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// startShippedNginx runs nginx (bin) with the shipped
// deploy/nginx/embedtoken.conf, its addresses replaced by gw (where nginx
// listens), service and authz, in the foreground with a temporary prefix;
// it returns the process and the folder (error.log is there).
func startShippedNginx(t *testing.T, bin, gw, service, authz string) (*proc, string) {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "embedtoken.conf"), shippedFile(t, "nginx/embedtoken.conf", map[string]string{
		shippedGateway: gw, shippedService: service, shippedAuthz: authz}))
	// The main configuration: foreground, a temporary prefix, the shipped
	// file included in the http block.
	writeFile(t, filepath.Join(dir, "nginx.conf"), fmt.Sprintf(`worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    include %[1]s/embedtoken.conf;
}
`, dir))
	p := startProc(t, "nginx", baseEnv(), bin, "-p", dir+"/", "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"))
	ctx, cancel := contextWithTimeout(readyTimeout)
	defer cancel()
	if err := waitTCP(ctx, gw); err != nil {
		t.Fatalf("nginx: %v\n%s", err, p.tail(20))
	}
	return p, dir
}

// TestGatewayNginxLargeDecision: a decision whose headers exceed nginx's
// default proxy_buffer_size (one page) — an inner token of a few KB —
// still passes through the shipped file: nginx's default made every such
// allowed request a 500 ("upstream sent too big header"). The decider is a
// stub answering 200 with a 6000-byte bearer token: about the largest inner
// token that an outer token within nginx's 8k header lines can carry.
func TestGatewayNginxLargeDecision(t *testing.T) {
	bin := gatewayBin(t, "EMBEDTOKEN_NGINX_BIN", "/usr/sbin/nginx", "e2e/nginx/install.sh installs it")
	inner := "Bearer " + strings.Repeat("a", 6000)
	decider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Authorization", inner)
		w.Header().Set("X-Request-Id", "large-1")
		w.Header().Set("Cache-Control", "no-store")
	}))
	defer decider.Close()
	got := make(chan string, 1)
	service := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.Header.Get("Authorization"):
		default:
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer service.Close()
	gw := freeAddr(t)
	p, dir := startShippedNginx(t, bin, gw, strings.TrimPrefix(service.URL, "http://"), strings.TrimPrefix(decider.URL, "http://"))
	defer p.stop(t)
	req, _ := http.NewRequest(http.MethodGet, "http://"+gw+"/orders/1", nil)
	req.Header.Set("Authorization", "Bearer outer")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		t.Fatalf("status %d, want 200; nginx error.log:\n%s", resp.StatusCode, b)
	}
	if a := <-got; a != inner {
		t.Errorf("the service got Authorization of %d bytes, want the decision's %d", len(a), len(inner))
	}
}
