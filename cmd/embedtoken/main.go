// Command embedtoken mints narrowed, nested JWTs at the issuer and unwraps
// them in a sidecar next to each service. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/embedtoken/embedtoken/cmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cmd.Exit(cmd.Run(ctx, os.Args[1:], os.Stdout, os.Stderr), os.Stderr)
	stop()
	os.Exit(code)
}
