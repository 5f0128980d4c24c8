// Command embedtoken-envoy is embedtoken with Envoy's ext_authz over gRPC
// (a sidecar's authz_grpc_listen). It is a binary of its own because the
// gRPC and Envoy types cost every command start-up time and memory; see
// README.md ("Behind a gateway or mesh").
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/embedtoken/embedtoken/cmd"
	"github.com/embedtoken/embedtoken/unwrap"
	"github.com/embedtoken/embedtoken/unwrap/extauthz"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	authz := func(cur func() *unwrap.Sidecar) cmd.Server { return extauthz.NewServer(cur) }
	code := cmd.Exit(cmd.Run(cmd.WithAuthzGRPC(ctx, authz), os.Args[1:], os.Stdout, os.Stderr), os.Stderr)
	stop()
	os.Exit(code)
}
