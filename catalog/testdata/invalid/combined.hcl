minter {
  issuer     = "https://minter.test"
  jwks_url   = "https://minter.test/jwks.json"
  algorithms = ["EdDSA"]
}

api "orders" {
  audience = "https://orders.test"
  calls    = ["billing"]
  colour   = "blue"
}

api "billing" {
  audience = "https://orders.test"
  calls    = ["orders"]
}
