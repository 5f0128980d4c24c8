#!/bin/sh
# build.sh builds Helm v4.3.2, pinned by this tool module, for `helm lint` and
# `helm template` of deploy/helm/embedtoken in .ci/run and the Kubernetes e2e
# tests.
#
#   e2e/helm/build.sh [OUT]      default OUT: e2e/helm/bin/helm
#
# The first build compiles for a few minutes; later builds hit the Go build
# cache and only relink. The binary is never committed (.gitignore).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/bin/helm}
case $out in
/*) ;;
*) out=$(pwd)/$out ;;
esac
mkdir -p "$(dirname "$out")"

pkg=helm.sh/helm/v4/internal/version
go build -C "$here" -trimpath \
	-ldflags "-X $pkg.version=v4.3.2" \
	-o "$out" helm.sh/helm/v4/cmd/helm
"$out" version >/dev/null
echo "$out"
