minter {
  issuer     = "https://minter.test"
  jwks_url   = "https://minter.test/jwks.json"
  algorithms = ["EdDSA"]
}

api "orders" {
  audience = "https://orders.test"
  scopes   = ["orders:read", "orders read", "orders:read"]
  claims   = ["email", "sub", "embedded_tokens", "email", "cnf"]
}

api "billing" {
  audience = "https://billing.test"
  scopes   = ["orders:read"]
}
