# The sidecar in front of the profile service:
#   embedtoken sidecar --config hcl/ --config hcl/sidecars/profile.hcl
sidecar {
  api              = "profile"
  listen           = "127.0.0.1:8445"
  upstream         = "http://127.0.0.1:8085"
  admin_listen     = "127.0.0.1:9905"
  leeway           = "30s"
  max_token_bytes  = 16384
  public_paths     = ["/healthz"]
  cache_entries    = 10000
  upstream_timeout = "30s"
  shutdown_timeout = "15s"
  strip_headers    = ["Cookie"]
}
