minter {
  issuer     = "https://minter.test"
  jwks_url   = "https://minter.test/jwks.json"
  algorithms = ["EdDSA"]
}

api "a" {
  audience = "https://a.test"
  calls    = ["b"]
}

api "b" {
  audience = "https://b.test"
  calls    = ["c"]
}

api "c" {
  audience = "https://c.test"
  calls    = ["a"]
}

api "d" {
  audience = "https://d.test"
  calls    = ["d"]
}
