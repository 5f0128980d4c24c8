# Ory Hydra v2 in the `hydra` namespace, with JWT access tokens and the
# embedtoken token hook (see README, "Running in Kubernetes").
trust "hydra" {
  issuer       = "http://hydra-public.hydra.svc:4444"
  jwks_url     = "http://hydra-public.hydra.svc:4444/.well-known/jwks.json"
  algorithms   = ["RS256"]
  typ          = ["JWT"]
  claim        = "ext.embedded_tokens"
  token_lifetime = "1h"          # Hydra's ttl.access_token (its default)
  jwks_refresh = "5m"
}
