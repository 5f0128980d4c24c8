#!/bin/sh
# ci-deps.sh installs the Debian packages that the Kubernetes and image steps
# of .ci/run need on a fresh machine: etcd (for the real kube-apiserver of
# the e2e tests) and buildah (to build and inspect the image without a docker
# engine). Packages already installed are left alone; it needs root (CI runs
# as root). kube-apiserver and helm are built from Go modules instead
# (e2e/kube/build.sh, e2e/helm/build.sh).
set -eu

need=""
command -v etcd >/dev/null 2>&1 || need="$need etcd-server"
command -v buildah >/dev/null 2>&1 || need="$need buildah"
if [ -n "$need" ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $need >/dev/null
fi
etcd --version | head -1
buildah --version
