minter {
  issuer           = "https://minter.test"
  jwks_url         = "https://minter.test/jwks.json"
  algorithms       = ["EdDSA"]
  default_lifetime = "forever"
}

api "a" {
  audience = "https://a.test"
  lifetime = "0s"
}

api "b" {
  audience = "https://b.test"
  lifetime = "48h"
}

api "c" {
  audience = "https://c.test"
  lifetime = "-5m"
}
