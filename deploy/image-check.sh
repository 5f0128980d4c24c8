#!/bin/sh
# image-check.sh checks an image built by deploy/image.sh with buildah:
# its user is not root, its entrypoint is embedtoken, it holds no shell, and
# the binaries inside run (`version`; `check --config` on the shipped hcl/).
# It prints the image's size.
#
#   deploy/image-check.sh [IMAGE]      default IMAGE: embedtoken:ci
#
# The binary runs with `podman run` where podman works; otherwise (these
# machines refuse podman's setrlimit calls: "crun: setrlimit `RLIMIT_NOFILE`:
# Operation not permitted") from the image's own root file
# system: `buildah from` + `buildah mount`, then chroot into it as user
# 65532, with hcl/ copied into the container's writable layer.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
image=${1:-embedtoken:ci}
export STORAGE_DRIVER=${STORAGE_DRIVER:-vfs}
fail() {
	echo "image-check: $*" >&2
	exit 1
}

user=$(buildah inspect --format '{{.OCIv1.Config.User}}' "$image")
entry=$(buildah inspect --format '{{.OCIv1.Config.Entrypoint}}' "$image")
size=$(buildah images --format '{{.Size}}' "$image" | head -1)
echo "image $image: user $user, entrypoint $entry, size $size"
case $user in
"" | 0 | 0:* | root | root:*) fail "runs as root (user '$user')" ;;
esac
[ "$entry" = '[/usr/local/bin/embedtoken]' ] || fail "entrypoint $entry is not embedtoken"

if command -v podman >/dev/null 2>&1 && podman run --rm "$image" version >/dev/null 2>&1; then
	podman run --rm "$image" version
	podman run --rm -v "$root/hcl:/hcl:ro" "$image" check --config /hcl >/dev/null
	echo "image-check: ok (podman run)"
	exit 0
fi

ctr=$(buildah from "$image")
trap 'buildah umount "$ctr" >/dev/null 2>&1 || true; buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
mnt=$(buildah mount "$ctr")
for sh in bin/sh bin/bash bin/busybox usr/bin/sh; do
	[ ! -e "$mnt/$sh" ] || fail "the image holds a shell: /$sh"
done
files=$(cd "$mnt" && find . -type f | sort | tr '\n' ' ')
echo "files: $files"
mkdir -p "$mnt/tmp/hcl"
cp -R "$root/hcl/." "$mnt/tmp/hcl/"
chmod -R a+rX "$mnt/tmp/hcl"
chroot --userspec=65532:65532 "$mnt" /usr/local/bin/embedtoken version
chroot --userspec=65532:65532 "$mnt" /usr/local/bin/embedtoken-kube version
chroot --userspec=65532:65532 "$mnt" /usr/local/bin/embedtoken-envoy version
chroot --userspec=65532:65532 "$mnt" /usr/local/bin/embedtoken check --config /tmp/hcl >/dev/null
echo "image-check: ok (run from the image's mounted root file system as 65532)"
