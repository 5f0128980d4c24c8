minter {
  issuer     = "https://minter.test"
  jwks_url   = "https://minter.test/jwks.json"
  algorithms = ["EdDSA"]
}

trust "none" {
  issuer     = "https://none.test"
  algorithms = ["RS256"]
}

trust "two" {
  issuer     = "https://two.test"
  jwks_url   = "https://two.test/jwks"
  jwks_file  = "two.json"
  algorithms = ["RS256"]
}

trust "noalgs" {
  issuer   = "https://noalgs.test"
  jwks_url = "https://noalgs.test/jwks"
}

trust "badclaim" {
  issuer     = "https://badclaim.test"
  jwks_url   = "ftp://badclaim.test/jwks"
  algorithms = ["RS256"]
  claim      = "ext..tokens"
}

trust "self" {
  issuer     = "https://minter.test"
  jwks_url   = "https://minter.test/jwks.json"
  algorithms = ["EdDSA"]
}

trust "jwt-with-introspection-settings" {
  issuer       = "https://idp.test"
  jwks_url     = "https://idp.test/jwks"
  algorithms   = ["RS256"]
  token_prefix = "ory_at_"
}
