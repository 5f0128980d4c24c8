minter {
  issuer     = "https://minter.test"
  jwks_url   = "https://minter.test/jwks.json"
  algorithms = ["EdDSA"]
}

api "orders" {
  audience = "https://orders.test"
  scopes   = ["orders:read", "orders:write"]
}

sidecar {
  api           = "ordrs"
  listen        = "localhost"
  upstream      = "127.0.0.1:8080"
  leeway        = "10m"
  public_paths  = ["healthz"]
  strip_headers = ["Authorization", "Bad Header"]

  route {
    path_prefix = "admin"
    methods     = ["post"]
    scopes      = []
  }
}

sidecar {
  api      = "orders"
  listen   = "127.0.0.1:1"
  upstream = "http://127.0.0.1:2"
}
