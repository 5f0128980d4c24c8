# A decision-only sidecar for the orders API, next to a gateway (nginx,
# Traefik, Caddy) or a mesh proxy (Envoy, Istio) that asks it for every
# request and forwards the request itself:
#   embedtoken sidecar --config hcl/ --config deploy/sidecar/orders-authz.hcl
# Only the gateway may reach the decision endpoints: keep them on loopback
# (gateway and sidecar in one pod or host), or add
#   tls { cert_file = "..."  key_file = "..."  client_ca_file = "..." }
# with a client certificate that only the gateway holds.
sidecar {
  api               = "orders"
  authz_listen      = "127.0.0.1:8442"   # /authz/forward and /authz/envoy/<path>
  # Envoy's gRPC ext_authz: deploy/sidecar/orders-envoy.hcl (embedtoken-envoy).
  admin_listen      = "127.0.0.1:9911"   # not 9901: a proxying orders sidecar may run beside it
  leeway            = "30s"
  public_paths      = ["/healthz"]
  # No strip_headers: an HTTP decision cannot remove a header from the
  # request the gateway forwards; the gateway must (see the shipped nginx
  # file's Cookie line). embedtoken-envoy's gRPC decisions do remove them.

  route {
    path_prefix = "/orders/admin"
    methods     = ["POST", "DELETE"]
    scopes      = ["orders:write"]
  }
}
