minter {
  issuer     = env("EMBEDTOKEN_TEST_SURELY_UNSET")
  jwks_url   = "https://minter.test/jwks.json"
  algorithms = ["EdDSA"]
}
