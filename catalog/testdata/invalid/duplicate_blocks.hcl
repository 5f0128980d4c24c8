minter {
  issuer     = "https://minter.test"
  jwks_url   = "https://minter.test/jwks.json"
  algorithms = ["EdDSA"]
}

minter {
  issuer     = "https://minter2.test"
  jwks_url   = "https://minter.test/jwks.json"
  algorithms = ["EdDSA"]
}

hook {
  listen  = "127.0.0.1:4457"
  api_key = "hunter2-literal-long"
}

hook {
  listen = "127.0.0.1:4458"
}
