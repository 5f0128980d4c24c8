// Command memprobe is the benchmark's bare reverse proxy (e2e/bench/floor)
// plus one of the sidecar's dependency sets, chosen by build tag, each used
// the way the sidecar uses it: prom (client_golang registry with the Go and
// process collectors, served by promhttp), zap (a production logger), hcl
// (hclparse and gohcl), jose (go-jose parsing), et (a blank import of
// embedtoken's cmd package). e2e/bench/mem.sh builds one binary per set and
// compares their peak RSS with the bare proxy's, to split the sidecar's
// memory above a bare Go proxy by dependency (BENCHMARKS.md, issue 14):
//
//	memprobe LISTEN_ADDR UPSTREAM_URL
package main

import (
	"fmt"
	"os"

	"github.com/embedtoken/embedtoken/e2e/bench/floor"
)

// extras are the dependency sets' start-up work, run before serving.
var extras []func()

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: memprobe LISTEN_ADDR UPSTREAM_URL")
		os.Exit(2)
	}
	for _, f := range extras {
		f()
	}
	if err := floor.Run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "memprobe:", err)
		os.Exit(1)
	}
}
