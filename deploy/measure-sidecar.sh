#!/bin/sh
# measure-sidecar.sh measures a sidecar binary's start-up time (process
# start to the first /readyz 200) and peak RSS (VmHWM once ready), RUNS
# times (default 5), on loopback with throwaway keys and file key sets.
#
#   deploy/measure-sidecar.sh BIN [RUNS]
#
# Prints one line per run and the medians: compare two binaries (before and
# after a change) in the same run of this script, on the same machine.
set -eu
bin=$1
runs=${2:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$bin" keygen --alg EdDSA --kid minter-1 --out "$dir/minter" >/dev/null
"$bin" keygen --alg RS256 --kid dev-1 --out "$dir/issuer" >/dev/null
sed -e "s|jwks_url *= \"http://127.0.0.1:4459/.well-known/jwks.json\"|jwks_file = \"$dir/minter/jwks.json\"|" \
	-e "s|keys/minter/minter-1.key.pem|$dir/minter/minter-1.key.pem|" "$root/hcl/catalog.hcl" >"$dir/catalog.hcl"
cat >"$dir/trust.hcl" <<HCL
trust "dev" {
  issuer     = "https://dev-issuer.embedtoken.internal"
  jwks_file  = "$dir/issuer/jwks.json"
  algorithms = ["RS256"]
}
HCL
port=$((20000 + $$ % 20000))
cat >"$dir/sidecar.hcl" <<HCL
sidecar {
  api          = "orders"
  listen       = "127.0.0.1:$port"
  upstream     = "http://127.0.0.1:9"
  admin_listen = "127.0.0.1:$((port + 1))"
}
HCL
mkdir -p "$dir/cfg" && mv "$dir/catalog.hcl" "$dir/trust.hcl" "$dir/cfg/"
ms_list="" kb_list=""
i=0
while [ $i -lt "$runs" ]; do
	i=$((i + 1))
	start=$(date +%s%N)
	"$bin" sidecar --config "$dir/cfg" --config "$dir/sidecar.hcl" 2>/dev/null &
	pid=$!
	n=0
	until curl -fsS -o /dev/null "http://127.0.0.1:$((port + 1))/readyz" 2>/dev/null; do
		n=$((n + 1))
		[ $n -lt 2000 ] || { kill $pid; echo "not ready" >&2; exit 1; }
		sleep 0.005
	done
	end=$(date +%s%N)
	kb=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
	kill $pid
	wait $pid 2>/dev/null || true
	ms=$(((end - start) / 1000000))
	echo "run $i: ready in ${ms} ms, VmHWM ${kb} kB"
	ms_list="$ms_list $ms" kb_list="$kb_list $kb"
done
med() { echo "$@" | tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "median: ready in $(med $ms_list) ms, VmHWM $(med $kb_list) kB ($bin)"
