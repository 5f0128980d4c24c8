minter {
  issuer     = "https://minter.test"
  jwks_url   = "https://minter.test/jwks.json"
  algorithms = ["EdDSA"]
}

api "orders" {
  audience = "https://orders.test"
  scopes   = ["orders:read"]
}

sidecar {
  api           = "orders"
  listen        = "0.0.0.0:8441"
  upstream      = "http://127.0.0.1:8081"
  admin_listen  = "0.0.0.0:9901"
  upstream_host = "origin"
}

hook {
  listen        = "127.0.0.1:4457"
  public_listen = "127.0.0.1:4459"
  admin_listen  = "[::1]:9900"
  api_key       = env("SHORT_KEY", "x")
}
