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
  api          = "orders"
  authz_listen = ""
}
