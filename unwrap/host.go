package unwrap

import (
	"net/http"

	"github.com/embedtoken/embedtoken/catalog"
)

// forwardedHost is the Host header of the forwarded request: the client's,
// as oauth2-proxy and Envoy forward it by default (virtual hosts, redirects
// and absolute links keep working behind the sidecar), or, with
// upstream_host = "upstream", "" so that the upstream URL's host is sent.
// X-Forwarded-Host carries the client's either way.
func (s *Sidecar) forwardedHost(in *http.Request) string {
	if s.cfg.UpstreamHost == catalog.UpstreamHostUpstream {
		return ""
	}
	return in.Host
}
