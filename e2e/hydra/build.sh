#!/bin/sh
# build.sh builds Ory Hydra v2.3.0, pinned by this tool module, for the e2e
# tests of embedtoken (EMBEDTOKEN_E2E_HYDRA=1 go test ./e2e -run Hydra).
#
#   e2e/hydra/build.sh [OUT]      default OUT: e2e/hydra/bin/hydra
#
# The sqlite tags make `dsn: memory` work. The first build downloads ~415
# modules and compiles for a few minutes; later builds hit the Go build cache
# and only relink (seconds). The binary is never committed (.gitignore).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/bin/hydra}
case $out in
/*) ;;
*) out=$(pwd)/$out ;;
esac
mkdir -p "$(dirname "$out")"

version=v2.3.0
pkg=github.com/ory/hydra/v2
go build -C "$here" \
	-tags sqlite,sqlite_omit_load_extension \
	-ldflags "-X $pkg/driver/config.Version=$version" \
	-o "$out" "$pkg"
"$out" version >/dev/null
echo "$out"
