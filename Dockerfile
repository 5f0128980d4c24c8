# The embedtoken image: the static binary alone. Build it with
# deploy/image.sh [IMAGE], which builds the binary (CGO_ENABLED=0), gathers
# the CA roots into the build context (deploy/.build/) and runs
# `docker build` or `buildah bud` on this file. It pulls nothing from a
# registry: FROM scratch, no shell, no package manager, user 65532.
FROM scratch
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY embedtoken /usr/local/bin/embedtoken
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/embedtoken"]
CMD ["help"]
