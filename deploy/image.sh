#!/bin/sh
# image.sh builds the embedtoken image.
#
#   deploy/image.sh [IMAGE]       default IMAGE: embedtoken:$VERSION
#
# It builds the static binaries embedtoken, embedtoken-kube and embedtoken-envoy
# (CGO_ENABLED=0) and copies the CA roots into the build context
# deploy/.build/, then runs `docker build` when a docker
# engine answers, else `buildah bud` (STORAGE_DRIVER defaults to vfs, which
# works without overlay or fuse). The Dockerfile pulls nothing. VERSION
# defaults to `git describe`, else dev.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
version=${VERSION:-$(git -C "$root" describe --tags --always --dirty 2>/dev/null || echo dev)}
image=${1:-embedtoken:$version}
ctx=$root/deploy/.build
roots=${CA_ROOTS:-/etc/ssl/certs/ca-certificates.crt}

rm -rf "$ctx"
mkdir -p "$ctx"
for bin in embedtoken embedtoken-kube embedtoken-envoy; do
	CGO_ENABLED=0 go build -C "$root" -trimpath \
		-ldflags "-s -w -X github.com/embedtoken/embedtoken/cmd.Version=$version" \
		-o "$ctx/$bin" "./cmd/$bin"
done
if [ ! -s "$roots" ]; then
	echo "image.sh: no CA roots at $roots (apt-get install ca-certificates, or set CA_ROOTS)" >&2
	exit 1
fi
cp "$roots" "$ctx/ca-certificates.crt"

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
	docker build -f "$root/Dockerfile" -t "$image" "$ctx"
elif command -v buildah >/dev/null 2>&1; then
	STORAGE_DRIVER=${STORAGE_DRIVER:-vfs} buildah bud --quiet -f "$root/Dockerfile" -t "$image" "$ctx" >/dev/null
else
	echo "image.sh: neither a docker engine nor buildah (apt-get install buildah)" >&2
	exit 1
fi
echo "$image"
