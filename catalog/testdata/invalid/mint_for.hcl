minter {
  issuer             = "https://minter.test"
  claim              = "scope"
  jwks_url           = "https://minter.test/jwks.json"
  algorithms         = ["EdDSA"]
  mint_for           = "everything"
  max_embedded_bytes = 0
}

api "internal" {
  audience = "https://internal.test"
  exposed  = false
}
