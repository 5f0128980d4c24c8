package catalog

import (
	"net"

	"github.com/hashicorp/hcl/v2"
)

// warnPublicAdmin warns about an admin listener that other hosts can reach.
// It is allowed (a Kubernetes probe comes from the kubelet to the pod's IP,
// so a probed admin listener cannot be on loopback), but /metrics and the
// readiness details are then visible on that network.
func warnPublicAdmin(addr string, rng hcl.Range, block string, d *diagnostics) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "localhost" {
		return
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return
	}
	d.warnf(rng, "Admin listener not on loopback",
		"The %s admin_listen %q is reachable from other hosts: /healthz, /readyz and /metrics answer anyone who can connect. "+
			"That is what HTTP probes of Kubernetes need (they connect to the pod's IP); elsewhere keep it on 127.0.0.1, "+
			"and in a cluster do not expose the port in a Service (a NetworkPolicy can admit only the kubelet and Prometheus).", block, addr)
}
