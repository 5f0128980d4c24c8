minter {
  issuer     = "https://minter.test"
  jwks_url   = "https://minter.test/jwks.json"
  algorithms = ["EdDSA"]
}

api "orders" {
  audience = "https://orders.test"
}

api "ledger" {
  audience = "https://ledger.test"
  exposed  = false
}

exchange_client "gw" {
  audiences = ["https://orders.test", "https://ledger.test", "https://nowhere.test"]
}

exchange {
  token_url = "not a url"
  client_id = "gw"
  secret    = "s3cret"
}
