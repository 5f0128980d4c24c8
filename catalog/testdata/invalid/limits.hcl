minter {
  issuer     = "https://minter.test"
  jwks_url   = "https://minter.test/jwks.json"
  algorithms = ["EdDSA"]
}

api "orders" {
  audience = "https://orders.test"
  scopes   = ["orders:read"]
}

sidecar {
  api                   = "orders"
  listen                = "127.0.0.1:8443"
  upstream              = "http://127.0.0.1:8080"
  max_connections       = 0
  max_requests          = 2000000
  upstream_idle_timeout = "10ms"
}

hook {
  listen          = "127.0.0.1:9000"
  public_listen   = "127.0.0.1:9001"
  max_connections = -1
}
