minter {
  issuer     = "https://minter.test"
  jwks_url   = "https://minter.test/jwks.json"
  algorithms = ["EdDSA"]
}

api "orders" {
  audience = "https://orders.test"
}

api "orders" {
  audience = "https://orders2.test"
}

api "bad name!" {
  audience = "https://bad.test"
}
