package e2e

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestAccessLogBuffered: the sidecar buffers its access log lines while
// requests are in flight (cmd/logbuffer.go). A lone request's line is in
// the log when its answer arrives, a clean shutdown writes every line held
// (here with --access-log-flush 1h, so no timer writes them), and --pprof
// serves Go's profiler on the admin listener only when given.
func TestAccessLogBuffered(t *testing.T) {
	st := newStack(t, stackOptions{})
	st.startHook(t)
	svc := newService(t, "orders")
	sc := startSidecarArgs(t, st, "orders", svc.srv.URL, "--access-log-flush", "1h", "--pprof")
	outer := mintOuter(t, st, devSubject, "")
	accessLines := func() int { return strings.Count(sc.p.log(), `"logger":"unwrap.access"`) }

	if r, _ := getAt(t, st.client, sc, "/orders/1", outer); r.status != http.StatusOK {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	if n := accessLines(); n != 1 {
		t.Fatalf("%d access log lines after one request, want its line written before its answer", n)
	}

	const workers, each = 8, 25
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if r, _ := getAt(t, st.client, sc, "/orders/2", outer); r.status != http.StatusOK {
					t.Errorf("got %d %s", r.status, r.body)
					return
				}
			}
		}()
	}
	wg.Wait()

	for path, want := range map[string]int{"/debug/pprof/": http.StatusOK, "/debug/pprof/heap": http.StatusOK,
		"/debug/pprof/profile?seconds=1": http.StatusOK, "/debug/pprof/cmdline": http.StatusNotFound, "/metrics": http.StatusOK} {
		if got := adminGet(t, st.client, sc.admin, path); got != want {
			t.Errorf("--pprof: GET %s on the admin listener: %d, want %d", path, got, want)
		}
	}
	other := st.startSidecar(t, "billing", svc.srv.URL)
	if got := adminGet(t, st.client, other.admin, "/debug/pprof/"); got != http.StatusNotFound {
		t.Errorf("without --pprof: GET /debug/pprof/ on the admin listener: %d, want 404", got)
	}

	sc.p.stop(t)
	if n := accessLines(); n != 1+workers*each {
		t.Errorf("%d access log lines after a clean shutdown, want %d: lines lost", n, 1+workers*each)
	}
}

// startSidecarArgs is stack.startSidecar with more command-line flags.
func startSidecarArgs(t *testing.T, s *stack, api, upstream string, args ...string) *sidecar {
	t.Helper()
	a := freeAddrs(t, 2)
	sc := &sidecar{api: api, listen: a[0], admin: a[1]}
	file := filepath.Join("sidecars", api+".hcl")
	s.edit(t, file, func(src string) string {
		src = setAttr(t, src, "listen", quote(sc.listen))
		src = setAttr(t, src, "upstream", quote(upstream))
		return setAttr(t, src, "admin_listen", quote(sc.admin))
	})
	argv := append([]string{"sidecar", "--config", s.dir, "--config", filepath.Join(s.dir, file)}, args...)
	sc.p = startOwned(t, s.owner, "sidecar-"+api, s.env(), needBinary(t), argv...)
	sc.p.waitHTTP(t, "http://"+sc.admin+"/readyz")
	s.sidecars[api] = sc
	return sc
}

func adminGet(t *testing.T, client *http.Client, admin, path string) int {
	t.Helper()
	resp, err := client.Get("http://" + admin + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode
}
