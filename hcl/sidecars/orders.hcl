# The sidecar in front of the orders service:
#   embedtoken sidecar --config hcl/ --config hcl/sidecars/orders.hcl
sidecar {
  api              = "orders"
  listen           = "127.0.0.1:8441"
  upstream         = "http://127.0.0.1:8081"
  admin_listen     = "127.0.0.1:9901"
  leeway           = "30s"
  max_token_bytes  = 16384
  public_paths     = ["/healthz"]
  cache_entries    = 10000
  upstream_timeout = "30s"
  shutdown_timeout = "15s"
  strip_headers    = ["Cookie"]

  route {
    path_prefix = "/orders/admin"
    methods     = ["POST", "DELETE"]
    scopes      = ["orders:write"]
  }
}
