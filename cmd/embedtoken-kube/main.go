// Command embedtoken-kube puts the embedtoken sidecar next to Kubernetes
// pods: `inject` rewrites YAML, `injector` is the admission webhook. It is a
// binary of its own so that its YAML and admission code never weigh on the
// sidecar. See README.md, "Running in Kubernetes".
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/embedtoken/embedtoken/cmd"
	"github.com/embedtoken/embedtoken/cmd/kube"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cmd.Exit(kube.Run(ctx, os.Args[1:], os.Stdout, os.Stderr), os.Stderr)
	stop()
	os.Exit(code)
}
