#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Run every test and count the results. Each suite prints TAP lines
# ("ok N - ..." / "not ok N - ..."); a suite that exits non-zero without
# reporting a failure counts as one failed test. Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
failures=()
log_dir=$(mktemp -d /tmp/choreo-test.$$.XXXXXX)
trap 'rm -rf "$log_dir"' EXIT

run_suite() {
	local name=$1; shift
	local out="$log_dir/$(echo "$name" | tr '/ ' '__').log"
	local start=$SECONDS rc p f
	echo "== $name"
	"$@" >"$out" 2>&1
	rc=$?
	p=$(grep -cE '^ok [0-9]+' "$out")
	f=$(grep -cE '^not ok [0-9]+' "$out")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "not ok - $name exited with status $rc" >>"$out"
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	grep -E '^(not ok|ok) [0-9]+' "$out" | sed 's/^/   /'
	if [ "$f" -ne 0 ]; then
		failures+=("$name")
		echo "   --- output of $name (last 60 lines) ---"
		tail -n 60 "$out" | sed 's/^/   | /'
	fi
	echo "   ($p passed, $f failed, $((SECONDS - start)) s)"
}

# --long: only the suites too long for make test (make test-long)
if [ "${1:-}" = --long ]; then
	for s in tests/lab/long_*.sh; do
		[ -x "$s" ] || continue
		run_suite "lab/$(basename "$s" .sh)" "$s"
	done
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit
fi

for t in build/asan/test_*; do
	[ -x "$t" ] || continue
	run_suite "unit/${t#build/asan/}" env CMOCKA_MESSAGE_OUTPUT=TAP "$t"
done

for r in build/asan/replay_*; do
	[ -x "$r" ] || continue
	n=${r#build/asan/replay_}
	run_suite "fuzz-replay/$n" "$r" tests/fuzz/corpus/"$n"
done

for s in tests/static/test_*.sh; do
	[ -x "$s" ] || continue
	run_suite "static/$(basename "$s" .sh)" "$s"
done

for s in tests/lab/test_*.sh; do
	[ -x "$s" ] || continue
	run_suite "lab/$(basename "$s" .sh)" "$s"
done

if [ "${#failures[@]}" -ne 0 ]; then
	echo "failed suites: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
