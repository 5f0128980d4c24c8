minter {
  issuer     = "https://minter.test"
  jwks_url   = "https://minter.test/jwks.json"
  algorithms = ["EdDSA"]
}

api "orders" {
  audience = "https://orders.test"
  calls    = ["biling", "payments"]
}

api "billing" {
  audience = "https://billing.test"
}
