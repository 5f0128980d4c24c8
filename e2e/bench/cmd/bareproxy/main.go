// Command bareproxy is the benchmark's bare reverse proxy in a binary of its
// own (net/http only), so that its peak RSS is that of a minimal Go proxy
// rather than of loadbench with go-jose and the catalog linked in:
//
//	bareproxy LISTEN_ADDR UPSTREAM_URL
package main

import (
	"fmt"
	"os"

	"github.com/embedtoken/embedtoken/e2e/bench/floor"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: bareproxy LISTEN_ADDR UPSTREAM_URL")
		os.Exit(2)
	}
	if err := floor.Run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "bareproxy:", err)
		os.Exit(1)
	}
}
