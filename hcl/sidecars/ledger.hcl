# The sidecar in front of the ledger service:
#   embedtoken sidecar --config hcl/ --config hcl/sidecars/ledger.hcl
sidecar {
  api              = "ledger"
  listen           = "127.0.0.1:8443"
  upstream         = "http://127.0.0.1:8083"
  admin_listen     = "127.0.0.1:9903"
  leeway           = "30s"
  max_token_bytes  = 16384
  public_paths     = ["/healthz"]
  cache_entries    = 10000
  upstream_timeout = "30s"
  shutdown_timeout = "15s"
  strip_headers    = ["Cookie"]
}
