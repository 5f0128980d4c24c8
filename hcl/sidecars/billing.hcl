# The sidecar in front of the billing service:
#   embedtoken sidecar --config hcl/ --config hcl/sidecars/billing.hcl
sidecar {
  api              = "billing"
  listen           = "127.0.0.1:8442"
  upstream         = "http://127.0.0.1:8082"
  admin_listen     = "127.0.0.1:9902"
  leeway           = "30s"
  max_token_bytes  = 16384
  public_paths     = ["/healthz"]
  cache_entries    = 10000
  upstream_timeout = "30s"
  shutdown_timeout = "15s"
  strip_headers    = ["Cookie"]
}
