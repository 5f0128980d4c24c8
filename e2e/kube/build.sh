#!/bin/sh
# build.sh builds kube-apiserver from k8s.io/kubernetes v1.37.2, pinned by this
# tool module, for the Kubernetes e2e tests of embedtoken
# (EMBEDTOKEN_E2E_KUBE=1 go test ./e2e -run Kube).
#
#   e2e/kube/build.sh [OUT]      default OUT: e2e/kube/bin/kube-apiserver
#
# The go.mod points the 33 staging modules that k8s.io/kubernetes replaces
# with ./staging/... at their published v0.37.2 versions. The first build
# compiles for ~9 minutes on 2 cores; later builds hit the Go build cache and
# only relink. The binary is never committed (.gitignore).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/bin/kube-apiserver}
case $out in
/*) ;;
*) out=$(pwd)/$out ;;
esac
mkdir -p "$(dirname "$out")"

v=k8s.io/component-base/version
go build -C "$here" -trimpath \
	-ldflags "-X $v.gitVersion=v1.37.2 -X $v.gitMajor=1 -X $v.gitMinor=37 -X $v.gitTreeState=clean" \
	-o "$out" k8s.io/kubernetes/cmd/kube-apiserver
"$out" --version >/dev/null
echo "$out"
