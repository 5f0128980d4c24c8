# The sidecar in front of the inventory service:
#   embedtoken sidecar --config hcl/ --config hcl/sidecars/inventory.hcl
sidecar {
  api              = "inventory"
  listen           = "127.0.0.1:8444"
  upstream         = "http://127.0.0.1:8084"
  admin_listen     = "127.0.0.1:9904"
  leeway           = "30s"
  max_token_bytes  = 16384
  public_paths     = ["/healthz"]
  cache_entries    = 10000
  upstream_timeout = "30s"
  shutdown_timeout = "15s"
  strip_headers    = ["Cookie"]
}
