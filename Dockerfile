# The embedtoken image: the static binaries alone (embedtoken; embedtoken-envoy
# for Envoy's gRPC ext_authz; embedtoken-kube
# for the admission webhook). Build it with deploy/image.sh [IMAGE], which
# builds them (CGO_ENABLED=0), gathers the CA roots into the build context
# (deploy/.build/) and runs `docker build` or `buildah bud` on this file. It pulls nothing from a
# registry: FROM scratch, no shell, no package manager, user 65532.
FROM scratch
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY embedtoken embedtoken-kube embedtoken-envoy /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/embedtoken"]
# The default only checks the shipped example; a sidecar runs with its own block:
#   sidecar --config /etc/embedtoken --config /etc/embedtoken/sidecars/<api>.hcl
CMD ["check", "--config", "/etc/embedtoken"]
