package catalog

import (
	"net"
	"net/netip"

	"github.com/hashicorp/hcl/v2"
)

// buildSidecarListeners checks the sidecar's listeners: the proxy (listen
// with upstream), the HTTP decision endpoints (authz_listen) and Envoy's
// gRPC ext_authz (authz_grpc_listen). At least one is required; listen and
// upstream go together. The decision endpoints trust what the gateway says
// the original request was, so one that is reachable from beyond loopback
// without client certificates is a warning.
func buildSidecarListeners(rs *rawSidecar, s *Sidecar, d *diagnostics) {
	hasListen, hasUpstream := present(rs.ListenRange), present(rs.UpstreamRange)
	switch {
	case hasListen && !hasUpstream:
		d.errorf(rs.ListenRange, "Missing upstream", "The sidecar listens on %q but has no upstream to forward to. Add upstream, or remove listen for a decision-only sidecar (authz_listen, authz_grpc_listen).", rs.Listen)
	case hasUpstream && !hasListen:
		d.errorf(rs.UpstreamRange, "Missing listen", "The sidecar has an upstream but no listen address for the proxy. Add listen, or remove upstream for a decision-only sidecar.")
	}
	for _, l := range []struct {
		raw  *string
		rng  hcl.Range
		attr string
		dst  *string
	}{
		{rs.AuthzListen, rs.AuthzRange, "authz_listen", &s.AuthzListen},
		{rs.AuthzGRPCListen, rs.AuthzGRPCRng, "authz_grpc_listen", &s.AuthzGRPCListen},
	} {
		if l.raw == nil || *l.raw == "" || !checkListen(*l.raw, l.rng, l.attr, d) {
			continue
		}
		*l.dst = *l.raw
		if !loopback(*l.raw) && (s.TLS == nil || s.TLS.ClientCAFile == "") {
			d.warnf(l.rng, "Decision endpoint reachable by clients",
				"The %s %q is not a loopback address and the sidecar has no tls client_ca_file: whoever reaches it can ask for decisions about any request and obtain inner tokens. Bind it to loopback, or require client certificates (tls { client_ca_file }) that only the gateway holds.", l.attr, *l.raw)
		}
	}
	if len(rs.StripHeaders) > 0 && !hasListen && !empty(rs.AuthzListen) {
		d.warnf(rs.StripRange, "Headers not stripped by HTTP decisions",
			"strip_headers is applied by the proxy (listen) and by gRPC decisions (authz_grpc_listen), but an HTTP decision (/authz/forward, /authz/envoy/) cannot remove a header from the request the gateway forwards: remove them at the gateway (nginx: proxy_set_header %s \"\"; Caddy: header_up -%s; Traefik: a headers middleware; Envoy: request_headers_to_remove).", rs.StripHeaders[0], rs.StripHeaders[0])
	}
	if !hasListen && !hasUpstream && empty(rs.AuthzListen) && empty(rs.AuthzGRPCListen) {
		d.errorf(rs.DefRange, "No sidecar listener", "A sidecar needs listen with upstream (the proxy), authz_listen (forward auth and Envoy HTTP ext_authz), authz_grpc_listen (Envoy gRPC ext_authz), or several of them.")
	}
}

// loopback reports whether the listen address host:port binds only
// loopback: 127.0.0.0/8, ::1 or localhost.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func empty(s *string) bool { return s == nil || *s == "" }
