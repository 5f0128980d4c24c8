#!/bin/sh
# mem.sh: what each of the sidecar's dependency sets costs in peak RSS
# above a bare Go reverse proxy (issue 14; BENCHMARKS.md). It builds
# e2e/bench/cmd/memprobe once per set (build tags: none, prom, zap, hcl,
# jose, all four, et), then runs every binary ROUNDS times, interleaved, on
# loopback: start, RSS when idle, 2 s of wrk -t1 -c16 (plain GETs), peak RSS
# (VmHWM). It prints medians in MiB and each set's difference from the
# bare proxy. Linux only (reads /proc); needs wrk.
#
#   e2e/bench/mem.sh [OUT]        ROUNDS=3 by default; ~1 minute
#
# CGO_ENABLED, GOFLAGS and the like pass through to go build, so
# CGO_ENABLED=0 GOFLAGS=-trimpath measures the image's build.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:-$(mktemp -d /tmp/embedtoken-mem.XXXXXX)}
mkdir -p "$out/bin"
rounds=${ROUNDS:-3}
command -v wrk >/dev/null 2>&1 || { echo "mem.sh: needs wrk" >&2; exit 1; }
pin0= pin1=
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
	pin0="taskset -c 0" pin1="taskset -c 1"
fi

go build -C "$repo" -o "$out/bin/loadbench" ./e2e/bench/cmd/loadbench
sets="bare prom zap hcl jose all et"
for s in $sets; do
	case $s in
	bare) tags= ;;
	all) tags="prom zap hcl jose" ;;
	*) tags=$s ;;
	esac
	go build -C "$repo" -tags "$tags" -o "$out/bin/probe-$s" ./e2e/bench/cmd/memprobe
done

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
kb() { awk -v k="$2" '$1==k":" {print $2}' "/proc/$1/$3"; }
up=127.0.0.1:$(port)
px=127.0.0.1:$(port)
$pin0 "$out/bin/loadbench" upstream "$up" >"$out/upstream.log" 2>&1 &
upid=$!
trap 'kill $upid 2>/dev/null || true' EXIT
i=0
until curl -fs -o /dev/null "http://$up/"; do
	i=$((i + 1)); [ $i -lt 100 ] || { echo "mem.sh: upstream not ready" >&2; exit 1; }
	sleep 0.05
done

: >"$out/samples.txt"
r=1
while [ $r -le "$rounds" ]; do
	for s in $sets; do
		$pin1 "$out/bin/probe-$s" "$px" "http://$up" >"$out/probe-$s.log" 2>&1 &
		pid=$!
		i=0
		until curl -fs -o /dev/null "http://$px/"; do
			i=$((i + 1)); [ $i -lt 100 ] || { echo "mem.sh: probe-$s not ready" >&2; exit 1; }
			sleep 0.05
		done
		sleep 0.3
		idle=$(kb $pid VmRSS status)
		idleAnon=$(kb $pid Anonymous smaps_rollup)
		$pin0 wrk -t1 -c16 -d2s "http://$px/" >/dev/null
		hwm=$(kb $pid VmHWM status)
		anon=$(kb $pid Anonymous smaps_rollup)
		kill $pid
		wait $pid 2>/dev/null || true
		echo "$s $idle $idleAnon $hwm $anon" >>"$out/samples.txt"
	done
	r=$((r + 1))
done

med() { # set column: the median of column $2 (KiB) for set $1, in MiB
	awk -v s="$1" -v c="$2" '$1==s {print $c}' "$out/samples.txt" | sort -n |
		awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1024}'
}
base=$(med bare 4)
{
	echo "| set | idle RSS MiB | idle anon MiB | peak RSS (VmHWM) MiB | anon after load MiB | peak − bare MiB |"
	echo "|---|---|---|---|---|---|"
	for s in $sets; do
		h=$(med $s 4)
		echo "| $s | $(med $s 2) | $(med $s 3) | $h | $(med $s 5) | $(awk -v a="$h" -v b="$base" 'BEGIN {printf "%+.1f", a-b}') |"
	done
} | tee "$out/summary.md"
echo "medians of $rounds rounds; samples in $out/samples.txt"
