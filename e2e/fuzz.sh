#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (about 125 s of fuzzing in
# total, plus compilation), then prints each target's corpus size. A failing
# input is written to <package>/testdata/fuzz/<Target>/ by `go test` and the
# script exits non-zero: commit that file with the fix, as a seed.
#
#   e2e/fuzz.sh                # the default budget
#   FUZZ_SCALE=3 e2e/fuzz.sh   # three times longer
#
# Plain `go test ./...` runs only the seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
scale="${FUZZ_SCALE:-1}"
module=$(go list -m)
cache="$(go env GOCACHE)/fuzz/$module"

run() {
	local pkg=$1 target=$2 secs=$3
	local t=$((secs * scale))s
	echo "== fuzz $pkg $target for $t"
	# -fuzzminimizetime: Go minimizes every new interesting input for up to
	# 60 s by default, which stalls fuzzing (0 execs/s) and, when the
	# budget ends mid-minimization, fails with "context deadline exceeded".
	# Even so, the budget can end while a new input is minimized: Go then
	# reports "context deadline exceeded" without a failing input. That
	# alone (no new file in testdata/fuzz) is run again once; a real
	# failure writes its input there and fails the script.
	local out before after
	before=$( (find "$pkg/testdata/fuzz/$target" -type f 2>/dev/null || true) | wc -l)
	out=$(mktemp)
	if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$t" -fuzzminimizetime 2s "./$pkg" 2>&1 | tee "$out"; then
		after=$( (find "$pkg/testdata/fuzz/$target" -type f 2>/dev/null || true) | wc -l)
		if [ "$after" = "$before" ] && grep -q 'context deadline exceeded' "$out"; then
			echo "   $pkg $target: the budget ended during minimization (no failing input); running again"
			go test -run '^$' -fuzz "^${target}\$" -fuzztime "$t" -fuzzminimizetime 2s "./$pkg"
		else
			rm -f "$out"
			return 1
		fi
	fi
	rm -f "$out"
	local seeds found
	seeds=$( (find "$pkg/testdata/fuzz/$target" -type f 2>/dev/null || true) | wc -l)
	found=$( (find "$cache/$pkg/$target" -type f 2>/dev/null || true) | wc -l)
	echo "   $pkg $target: ran $t; corpus: $seeds seeds in testdata, $found inputs in the fuzz cache"
}

# The request path first: its set-up (RSA keys, a sidecar and its upstream
# per worker) takes a few seconds of the budget.
run unwrap FuzzRequest 25
run unwrap FuzzVerify 15
# Differential: the sidecar's path and method decision against Go's
# ServeMux and Python-style routers.
run unwrap FuzzRouteDecision 15
run unwrap FuzzAuthz 10
run mint FuzzHook 15
run catalog FuzzLoad 10
run internal/strictjson FuzzAgainstReference 15
run internal/cognito FuzzCognito 5
run unwrap FuzzInspect 5
run cmd/kube FuzzInjectYAML 5
run cmd/kube FuzzAdmissionReview 5
# Differential: the gRPC ext_authz decoder against proto.Unmarshal.
run unwrap/extauthz FuzzDecodeCheckRequest 10
# Differential: the payload reader (claim arena) against encoding/json.
run unwrap FuzzPayloadAgainstReference 10
# Differential: the hook's one-pass member-name check against strictjson.
run mint FuzzCheckMembers 5
