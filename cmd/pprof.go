package cmd

import (
	"net/http"
	"net/http/pprof"
)

// withPprof serves Go's profiler (net/http/pprof) under /debug/pprof/
// beside the admin handler h: `embedtoken sidecar --pprof`, never on by
// default. It shows stacks, allocation sites and the command line (never
// request or token bytes), and a profile costs CPU while it runs: keep the
// admin listener on loopback when it is on.
func withPprof(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.Handle("/", h)
	return mux
}
