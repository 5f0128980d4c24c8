minter {
  issuer     = "https://minter.test"
  jwks_url   = "https://minter.test/jwks.json"
  algorithms = ["EdDSA"]
}

api "orders" {
  audience = "https://orders.test"
  scopes   = ["orders:read"]
}

api "billing" {
  audience = "https://billing.test"
  scopes   = ["billing:read"]
}

sidecar {
  api               = "orders"
  listen            = "127.0.0.1:8443"
  authz_listen      = "0.0.0.0:8442"
  authz_grpc_listen = "8441"
}
