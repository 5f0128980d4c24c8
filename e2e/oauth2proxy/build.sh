#!/bin/sh
# build.sh builds oauth2-proxy v7.15.6, pinned by this tool module, for the
# side-by-side benchmarks in e2e/bench (its own go.mod keeps the main
# module's dependencies lean; oauth2-proxy's go.mod has no replace
# directives to repeat).
#
#   e2e/oauth2proxy/build.sh [OUT]      default OUT: e2e/oauth2proxy/bin/oauth2-proxy
#
# The first build downloads its modules and compiles for a minute or two;
# later builds hit the Go build cache. The binary is never committed.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/bin/oauth2-proxy}
case $out in
/*) ;;
*) out=$(pwd)/$out ;;
esac
mkdir -p "$(dirname "$out")"

version=v7.15.6
pkg=github.com/oauth2-proxy/oauth2-proxy/v7
go build -C "$here" \
	-ldflags "-X $pkg/pkg/version.VERSION=$version" \
	-o "$out" "$pkg"
"$out" --version >/dev/null
echo "$out"
