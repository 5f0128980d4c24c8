# A decision-only sidecar for the orders API next to Envoy (or an Istio
# sidecar), answering Envoy's ext_authz over gRPC and over HTTP. gRPC needs
# the embedtoken-envoy binary (the gRPC and Envoy types stay out of
# embedtoken):
#   embedtoken-envoy sidecar --config hcl/ --config deploy/sidecar/orders-envoy.hcl
# Envoy configurations: deploy/envoy/. Only Envoy may reach these
# listeners: keep them on loopback (Envoy and the sidecar in one pod), or
# add a tls block with client_ca_file.
sidecar {
  api               = "orders"
  authz_grpc_listen = "127.0.0.1:8443"   # envoy.service.auth.v3.Authorization (h2c)
  authz_listen      = "127.0.0.1:8442"   # /authz/envoy/<path> for Envoy's HTTP ext_authz
  admin_listen      = "127.0.0.1:9911"   # not 9901: a proxying orders sidecar may run beside it
  leeway            = "30s"
  public_paths      = ["/healthz"]
  strip_headers     = ["Cookie"]

  route {
    path_prefix = "/orders/admin"
    methods     = ["POST", "DELETE"]
    scopes      = ["orders:write"]
  }
}
