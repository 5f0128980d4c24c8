package cmd

import (
	"net/http"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/embedtoken/embedtoken/catalog"
	"github.com/embedtoken/embedtoken/unwrap"
)

// authzServers are the sidecar's decision listeners (DESIGN.md "Behind
// gateways and meshes"): the HTTP decision endpoints on authz_listen, with
// the sidecar's tls block like the proxy. Each request goes to the current
// sidecar, so a reload covers them; shutdown drains them with the others.
func authzServers(cfg *catalog.Sidecar, cur *atomic.Pointer[unwrap.Sidecar], log *zap.Logger, maxHeaderBytes int) []*server {
	var servers []*server
	if cfg.AuthzListen != "" {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cur.Load().AuthzHandler().ServeHTTP(w, r)
		})
		servers = append(servers, &server{name: "authz", addr: cfg.AuthzListen, tls: cfg.TLS,
			srv: newHTTPServer(h, log, maxHeaderBytes)})
	}
	return servers
}
