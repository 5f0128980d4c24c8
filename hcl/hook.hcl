# The issuer plugin. The private listener serves /hooks/* to the issuer only;
# the public one serves the minter's JWKS and metadata to sidecars.
hook {
  listen         = "127.0.0.1:4457"
  public_listen  = "127.0.0.1:4459"
  admin_listen   = "127.0.0.1:9900"
  api_key_header = "X-Embedtoken-Key"
  api_key        = env("EMBEDTOKEN_HOOK_KEY", "") # the hook refuses to start while empty
  generic        = true
  timeout        = "2s"
}
