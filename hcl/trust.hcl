# Issuers whose access tokens the sidecars accept as outer tokens.

# Ory Hydra v2 with JWT access tokens and the embedtoken token hook.
trust "hydra" {
  issuer           = "http://127.0.0.1:4444"
  jwks_url         = "http://127.0.0.1:4444/.well-known/jwks.json"
  algorithms       = ["RS256"]
  typ              = ["JWT"]
  claim            = "ext.embedded_tokens"
  token_lifetime   = "1h"                  # Hydra's ttl.access_token (its default)
  jwks_refresh     = "5m"
  jwks_min_refetch = "10s"
}

# The development issuer: `embedtoken mint --outer-key ... --outer-issuer
# https://dev-issuer.embedtoken.internal`, used by the demo, the tests and the
# benchmarks. Its public key: `embedtoken keygen --alg RS256 --kid dev-1
# --out hcl/keys/issuer`.
trust "dev" {
  issuer         = "https://dev-issuer.embedtoken.internal"
  jwks_file      = "keys/issuer/jwks.json"
  algorithms     = ["RS256", "ES256", "EdDSA"]
  token_lifetime = "1h"                    # mint --outer-lifetime (its default)
}
