#!/bin/sh
# run.sh: embedtoken's side-by-side benchmarks in one bounded run on
# loopback (about 12 minutes with the defaults). See BENCHMARKS.md.
#
#   e2e/bench/run.sh [OUT]           default OUT: a new temporary folder
#
# It installs wrk (Debian) when missing, builds embedtoken, oauth2-proxy
# v7.15.6 (e2e/oauth2proxy, its own tool module) and the driver, then:
#   1. the token size table (go test -run TestOuterTokenSizes -v ./e2e/bench);
#   2. mint's BenchmarkMint against BenchmarkRawSign (-count 8), with benchstat;
#   3. loadbench: direct, bare reverse proxy, sidecar warm and cold,
#      oauth2-proxy, interleaved in rounds; the gateway suite (nginx alone,
#      + auth_request to embedtoken warm and cold, to a Go server answering
#      200, to oauth2-proxy) when nginx is installed; the gRPC Check suite
#      (embedtoken-envoy, CPU per decision one at a time and concurrent);
#      then the hook per catalog.
# Servers run on cpu0 and wrk on cpu1 (taskset). Environment knobs:
#   ROUNDS (5), DURATION (10s), HOOK_ROUNDS (3), HOOK_DURATION (5s),
#   EMBEDTOKEN_BIN (use this binary instead of building one),
#   BASELINE_BIN (a second embedtoken, e.g. an older build, measured as
#   sidecar B in the same rounds: paired before/after),
#   SUITES (e.g. proxy), SKIP_OAUTH2PROXY=1, SKIP_MINT=1, SKIP_SIZE=1, FLOOR=inproc (the floor
#   as a loadbench subcommand instead of the bareproxy binary).
#   SETUP=second: issue 14's independent set-up of the proxy suite alone
#   (wrk -t1 -c16 on cpu0, servers on cpu1, 6 s runs, K = 5 generated APIs,
#   typ JWT outer tokens with 15-minute lifetimes, 5000-token cold pool,
#   cache_entries 1000; about 5 minutes with ROUNDS=5). Size, mint, hook
#   and gateway are skipped.
set -eu
setup=${SETUP:-first}
duration=${DURATION:-}
if [ "$setup" = second ]; then
	SKIP_SIZE=1 SKIP_MINT=1
fi

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:-$(mktemp -d /tmp/embedtoken-bench.XXXXXX)}
mkdir -p "$out"
case $out in
/*) ;;
*) out=$(pwd)/$out ;;
esac

if ! command -v wrk >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ]; then
		apt-get update >/dev/null && apt-get install -y wrk >/dev/null
	else
		sudo apt-get update >/dev/null && sudo apt-get install -y wrk >/dev/null
	fi
fi
command -v taskset >/dev/null 2>&1 || echo "run.sh: no taskset: nothing is pinned" >&2

bin=$out/bin
mkdir -p "$bin"
if [ -n "${EMBEDTOKEN_BIN:-}" ]; then
	cp "$EMBEDTOKEN_BIN" "$bin/embedtoken"
else
	go build -C "$repo" -o "$bin/embedtoken" ./cmd/embedtoken
fi
go build -C "$repo" -o "$bin/loadbench" ./e2e/bench/cmd/loadbench
go build -C "$repo" -o "$bin/embedtoken-envoy" ./cmd/embedtoken-envoy
floorbin=
if [ "${FLOOR:-bare}" = bare ]; then
	# The bare proxy in a binary of its own (both set-ups): its RSS is a
	# minimal Go proxy's. FLOOR=inproc runs loadbench's own floor
	# subcommand instead (runs 1-4 of BENCHMARKS.md).
	go build -C "$repo" -o "$bin/bareproxy" ./e2e/bench/cmd/bareproxy
	floorbin=$bin/bareproxy
fi
o2p=
if [ "${SKIP_OAUTH2PROXY:-}" != 1 ]; then
	o2p=$("$repo/e2e/oauth2proxy/build.sh" "$bin/oauth2-proxy")
fi

{
	echo "# embedtoken benchmarks $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "nproc: $(nproc); $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'); $(go version)"
	echo "commit: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
} >"$out/machine.txt"
cat "$out/machine.txt"

if [ "${SKIP_SIZE:-}" != 1 ]; then
	echo "== size"
	go test -C "$repo" -count=1 -run 'TestOuterTokenSizes$' -v ./e2e/bench >"$out/size.txt" 2>&1 || { cat "$out/size.txt"; exit 1; }
	sed -n 's/^        //p' "$out/size.txt" | grep '^|' | tail -8
fi

if [ "${SKIP_MINT:-}" != 1 ]; then
	echo "== mint vs raw signing (go test -bench, pinned to cpu0)"
	taskset -c 0 go test -C "$repo" -run '^$' -bench '^(BenchmarkMint|BenchmarkRawSign)$' -benchmem -count 8 ./mint >"$out/mint.txt" 2>&1 ||
		{ cat "$out/mint.txt"; exit 1; }
	# Rows by K, columns Mint and RawSign: benchstat shows the difference.
	sed -e 's/^BenchmarkMint\//BenchmarkSign\/impl=Mint\//' -e 's/^BenchmarkRawSign\//BenchmarkSign\/impl=RawSign\//' \
		"$out/mint.txt" >"$out/mint-renamed.txt"
	if go run golang.org/x/perf/cmd/benchstat@latest -col /impl -row /K "$out/mint-renamed.txt" >"$out/benchstat.txt" 2>&1; then
		cat "$out/benchstat.txt"
	else
		echo "run.sh: benchstat unavailable; raw results in $out/mint.txt" >&2
	fi
fi

echo "== load (loadbench)"
# The gateway suite (nginx alone vs nginx + auth_request -> embedtoken)
# runs when nginx is installed (e2e/nginx/install.sh).
nginx=$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true)
suites="proxy,hook,grpc${nginx:+,gateway}"
if [ "$setup" = second ]; then
	suites=proxy nginx=
fi
suites=${SUITES:-$suites}
"$bin/loadbench" -embedtoken "$bin/embedtoken" ${o2p:+-oauth2-proxy "$o2p"} -envoy "$bin/embedtoken-envoy" -repo "$repo" -out "$out" \
	${BASELINE_BIN:+-embedtoken-b "$BASELINE_BIN"} -suites "$suites" ${nginx:+-nginx "$nginx"} -setup "$setup" ${floorbin:+-floor-bin "$floorbin"} \
	-rounds "${ROUNDS:-5}" ${duration:+-duration "$duration"} \
	-hook-rounds "${HOOK_ROUNDS:-3}" -hook-duration "${HOOK_DURATION:-5s}" 2>"$out/loadbench.log" ||
	{ tail -30 "$out/loadbench.log"; exit 1; }
echo "results: $out (summary.md, results.json, size.txt, benchstat.txt, logs/)"
