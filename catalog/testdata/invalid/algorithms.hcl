minter {
  issuer     = "https://minter.test"
  jwks_url   = "https://minter.test/jwks.json"
  algorithms = ["HS256", "EdDSA", "none"]
  active_key = "missing"

  signing_key "k1" {
    algorithm        = "ES512"
    private_key_file = "k1.pem"
  }
}

trust "idp" {
  issuer     = "https://idp.test"
  jwks_url   = "https://idp.test/jwks"
  algorithms = ["RS257"]
}
