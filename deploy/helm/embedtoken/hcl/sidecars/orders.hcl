# The sidecar in front of orders, in its pod: it takes the pod's port 8441
# (the Service's targetPort); orders itself listens on 127.0.0.1:8081 only.
# admin_listen is on the pod's IP so that the kubelet's probes reach it.
sidecar {
  api           = "orders"
  listen        = "0.0.0.0:8441"
  upstream      = "http://127.0.0.1:8081"
  admin_listen  = "0.0.0.0:9901"
  public_paths  = ["/healthz"]
  strip_headers = ["Cookie"]
}
