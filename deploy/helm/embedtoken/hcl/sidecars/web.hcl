# The sidecar in front of the nginx Deployment of the Kubernetes
# documentation: nginx must then listen on 127.0.0.1:80 only.
sidecar {
  api          = "web"
  listen       = "0.0.0.0:8441"
  upstream     = "http://127.0.0.1:80"
  admin_listen = "0.0.0.0:9901"
}
