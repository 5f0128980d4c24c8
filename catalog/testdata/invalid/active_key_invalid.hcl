minter {
  issuer     = "https://minter.test"
  jwks_url   = "https://minter.test/jwks.json"
  active_key = "k1"

  signing_key "k1" {
    algorithm        = "HS256"
    private_key_file = "k1.pem"
  }
}
