api "orders" {
  scopes = ["orders:read"]
}

sidecar {
  listen = "127.0.0.1:8443"
}
