#!/bin/sh
# ci-kube.sh runs the Kubernetes steps of .ci/run: the Debian packages they
# need, Helm and kube-apiserver built from their modules (cached by the Go
# build cache), `helm lint` and `helm template` of the chart, the image
# built and checked with buildah, and the e2e tests against a real
# kube-apiserver. Each step prints its wall time.
set -eu
cd "$(dirname "$0")/.."
step() {
	echo "== $1"
	t0=$(date +%s)
}
done_step() { echo "   ($(($(date +%s) - t0)) s)"; }

step "Debian packages: etcd-server, buildah (deploy/ci-deps.sh)"
deploy/ci-deps.sh
done_step

step "Helm v4.3.2 (e2e/helm tool module; cold build minutes, warm seconds)"
e2e/helm/build.sh e2e/helm/bin/helm
done_step

step "helm lint and helm template of deploy/helm/embedtoken"
e2e/helm/bin/helm lint --strict deploy/helm/embedtoken
e2e/helm/bin/helm template embedtoken deploy/helm/embedtoken --namespace embedtoken >/dev/null
e2e/helm/bin/helm template embedtoken deploy/helm/embedtoken --namespace embedtoken \
	--set injector.tls.certManager.enabled=true --set catalog.namespaces='{apps}' >/dev/null
done_step

step "image: deploy/image.sh, then deploy/image-check.sh"
deploy/image.sh embedtoken:ci
deploy/image-check.sh embedtoken:ci
done_step

step "kube-apiserver v1.37.2 (e2e/kube tool module; cold build ~9+ min on 2 cores, warm seconds)"
e2e/kube/build.sh e2e/kube/bin/kube-apiserver
done_step

step "e2e with a real kube-apiserver and etcd"
EMBEDTOKEN_E2E_KUBE=1 EMBEDTOKEN_KUBE_APISERVER=e2e/kube/bin/kube-apiserver \
	EMBEDTOKEN_HELM_BIN=e2e/helm/bin/helm \
	go test -count=1 -timeout 15m -run '^TestKube$' -v ./e2e
done_step
