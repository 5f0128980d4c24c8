package cmd

import (
	"fmt"
	"net/http"
	"net/netip"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

// maxProfileSeconds bounds a CPU profile: the admin listener's write
// timeout (newHTTPServer) is 120 s.
const maxProfileSeconds = 60

// withPprof serves Go's profiles under /debug/pprof/ beside the admin
// handler h: `embedtoken sidecar --pprof`, never on by default. It uses
// runtime/pprof directly rather than net/http/pprof, whose packages add
// to every sidecar's memory whether the flag is given or not.
//
//	GET /debug/pprof/                    the profiles' names
//	GET /debug/pprof/profile?seconds=N   CPU profile (default 30, at most 60)
//	GET /debug/pprof/NAME[?debug=N]      heap, allocs, goroutine, threadcreate, block, mutex
//
// Profiles show stacks, allocation sites and counts (never request or
// token bytes), and a CPU profile costs CPU while it runs: keep the admin
// listener on loopback when it is on.
//
// A CPU profile ends early, with what it collected, when stop is closed
// (the daemon is shutting down), so that it never holds the drain.
func withPprof(h http.Handler, stop <-chan struct{}) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/{name...}", func(w http.ResponseWriter, r *http.Request) { servePprof(w, r, stop) })
	mux.Handle("/", h)
	return mux
}

// defaultMemProfileRate is the runtime's sampling rate of allocations for
// heap profiles (one per 512 KiB allocated).
const defaultMemProfileRate = 512 << 10

// profileMemory turns the sampling of allocations for heap profiles on or
// off. The runtime samples only when runtime/pprof is linked, which --pprof
// needs: left on in every daemon, the samples' stack records cost a busy
// sidecar ~0.5 MiB of peak RSS (measured under load, BENCHMARKS.md), so
// the daemons turn it off unless they serve profiles.
func profileMemory(on bool) {
	if on {
		runtime.MemProfileRate = defaultMemProfileRate
	} else {
		runtime.MemProfileRate = 0
	}
}

func servePprof(w http.ResponseWriter, r *http.Request, stop <-chan struct{}) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	// Profiles answer loopback peers only, wherever admin_listen binds (a
	// pod's admin listener is on the pod IP for its probes): reach them
	// with kubectl port-forward or from inside the host or pod.
	if !loopbackPeer(r.RemoteAddr) {
		http.Error(w, "profiles are served to loopback clients only", http.StatusForbidden)
		return
	}
	name := r.PathValue("name")
	switch name {
	case "":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		var b strings.Builder
		b.WriteString("profile?seconds=N\n")
		for _, p := range pprof.Profiles() {
			fmt.Fprintf(&b, "%s (%d)\n", p.Name(), p.Count())
		}
		_, _ = w.Write([]byte(b.String()))
	case "profile":
		secs := 30
		if s := r.URL.Query().Get("seconds"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > maxProfileSeconds {
				http.Error(w, fmt.Sprintf("seconds: want 1 to %d", maxProfileSeconds), http.StatusBadRequest)
				return
			}
			secs = n
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		if err := pprof.StartCPUProfile(w); err != nil {
			http.Error(w, "a CPU profile is already running", http.StatusConflict)
			return
		}
		t := time.NewTimer(time.Duration(secs) * time.Second)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
		case <-stop:
			t.Stop()
		}
		pprof.StopCPUProfile()
	default:
		p := pprof.Lookup(name)
		if p == nil {
			http.Error(w, "unknown profile", http.StatusNotFound)
			return
		}
		debug, _ := strconv.Atoi(r.URL.Query().Get("debug"))
		if debug != 0 {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		} else {
			w.Header().Set("Content-Type", "application/octet-stream")
		}
		_ = p.WriteTo(w, min(max(debug, 0), 2))
	}
}

// loopbackPeer reports whether the remote address host:port is a
// loopback address.
func loopbackPeer(addr string) bool {
	ap, err := netip.ParseAddrPort(addr)
	return err == nil && ap.Addr().Unmap().IsLoopback()
}
