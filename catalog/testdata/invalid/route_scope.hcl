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
  api      = "orders"
  listen   = "127.0.0.1:8443"
  upstream = "http://127.0.0.1:8080"

  route {
    path_prefix = "/orders/admin"
    scopes      = ["orders:admin"]
  }
}
