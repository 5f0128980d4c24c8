#!/bin/sh
# build.sh builds Caddy v2.11.9, pinned by this tool module, for the e2e
# tests of embedtoken behind Caddy's forward_auth (EMBEDTOKEN_E2E_GATEWAYS=1
# go test ./e2e -run Gateway). Its own go.mod keeps Caddy's dependencies
# out of the main module.
#
#   e2e/caddy/build.sh [OUT]      default OUT: e2e/caddy/bin/caddy
#
# The first build downloads Caddy's modules and compiles for a few minutes;
# later builds hit the Go build cache and only relink. The binary is never
# committed (.gitignore).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/bin/caddy}
case $out in
/*) ;;
*) out=$(pwd)/$out ;;
esac
mkdir -p "$(dirname "$out")"

go build -C "$here" -o "$out" github.com/caddyserver/caddy/v2/cmd/caddy
"$out" version >/dev/null
echo "$out"
