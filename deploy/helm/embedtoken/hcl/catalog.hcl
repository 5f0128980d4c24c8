# The catalog for Kubernetes, the Helm chart's default: the shipped example's
# APIs, with the minter's JWKS served by the hook's public Service. The chart
# puts this file, trust.hcl and sidecars/*.hcl in the `embedtoken` ConfigMap
# (no private keys: the hook reads its signing key from a Secret mounted at
# /var/run/embedtoken/keys).
minter {
  issuer             = "https://minter.embedtoken.internal"
  claim              = "embedded_tokens"
  jwks_url           = "http://embedtoken-hook-public.embedtoken.svc:4459/.well-known/jwks.json"
  active_key         = "minter-1"
  default_lifetime   = "5m"
  max_embedded_bytes = 7168
  outer_base_bytes   = 1024
  mint_for           = "scope"

  signing_key "minter-1" {
    algorithm        = "EdDSA"
    private_key_file = "/var/run/embedtoken/keys/minter-1.key.pem"
  }
}

api "orders" {
  audience = "https://orders.internal"
  scopes   = ["orders:read", "orders:write"]
  claims   = ["email", "tenant"]
  lifetime = "5m"
  calls    = ["billing"]
}

api "billing" {
  audience = "https://billing.internal"
  scopes   = ["billing:read", "billing:charge"]
  claims   = ["tenant"]
  lifetime = "2m"
  exposed  = false
}

api "web" {
  audience = "https://web.internal"
  scopes   = ["web:read"]
  lifetime = "5m"
}
