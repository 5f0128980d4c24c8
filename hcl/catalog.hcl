# The shipped example: five APIs behind a gateway-facing `orders`.
#
#   orders ──> billing ──> ledger   (billing, ledger and inventory are only
#          └─> inventory            ever nested: exposed = false)
#   profile
#
# Keys are not committed: `embedtoken demo` makes throwaway ones, and
# `embedtoken keygen --alg EdDSA --kid minter-1 --out hcl/keys/minter` makes a
# real one. `check` only warns while the key file is absent.

minter {
  issuer             = "https://minter.embedtoken.internal"
  claim              = "embedded_tokens"
  jwks_url           = "http://127.0.0.1:4459/.well-known/jwks.json"
  active_key         = "minter-1"
  default_lifetime   = "5m"
  max_embedded_bytes = 7168 # 7 KiB: with a 1 KiB issuer part, under nginx's 8 KiB line
  outer_base_bytes   = 1024
  mint_for           = "scope"

  signing_key "minter-1" {
    algorithm        = "EdDSA"
    private_key_file = "keys/minter/minter-1.key.pem"
  }
}

api "orders" {
  audience = "https://orders.internal"
  scopes   = ["orders:read", "orders:write"]
  claims   = ["email", "tenant"]
  lifetime = "5m"
  calls    = ["billing", "inventory"]
}

api "billing" {
  audience = "https://billing.internal"
  scopes   = ["billing:read", "billing:charge"]
  claims   = ["tenant"]
  lifetime = "2m"
  calls    = ["ledger"]
  exposed  = false
}

api "ledger" {
  audience = "https://ledger.internal"
  scopes   = ["ledger:append"]
  claims   = ["tenant"]
  lifetime = "1m"
  exposed  = false
}

api "inventory" {
  audience = "https://inventory.internal"
  scopes   = ["inventory:read"]
  lifetime = "2m"
  exposed  = false
}

api "profile" {
  audience = "https://profile.internal"
  scopes   = ["profile:read"]
  claims   = ["email", "name"]
  lifetime = "10m"
}
