#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Static gates, run by `make test`: cppcheck and the clang static analyser
# (scan-build) over every C file of the project, and a check that no binary
# choreo builds can run a command. Any finding fails. A false positive is
# suppressed at its line with its reason (cppcheck-suppress, or a
# __clang_analyzer__ guard), never by a baseline or a global switch. Each
# gate is first shown to bite on a file with a planted defect.
# TAP output.
set -uo pipefail
cd "$(dirname "$0")/../.."

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
check() { local st=$1; shift; if [ "$st" -eq 0 ]; then ok "$@"; else not_ok "$@"; fi; }
diag() { sed 's/^/# /'; }

tmp=$(mktemp -d /tmp/choreo-static.$$.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT

PKGS="libknot libzscanner libnftnl libmnl libcrypto"
pkg_cflags=$(pkg-config --cflags $PKGS) || { echo "Bail out! pkg-config $PKGS"; exit 1; }
# every C file of the project but the planted defect of the memory gate
mapfile -t files < <(ls src/*.c tools/*.c tests/unit/*.c tests/fuzz/*.c)

# A file with one defect each analyser must report.
cat >"$tmp/planted.c" <<'C'
#include <stdlib.h>
#include <string.h>
int planted(int n);
int planted(int n)
{
	char buf[8];
	char *p = malloc(16);

	if (!p)
		return -1;
	memset(buf, 0, sizeof(buf));
	buf[n > 4 ? 8 : 0] = 1;   /* out of bounds when n > 4 */
	return buf[0];            /* p leaks */
}
C

# ---- cppcheck ------------------------------------------------------------------
CPPCHECK=(cppcheck --enable=warning,style,performance,portability --inline-suppr
	--error-exitcode=1 -q --std=c11 -D_GNU_SOURCE -Isrc -Itools
	--suppress=missingIncludeSystem --template='{file}:{line}: {severity} {id}: {message}')
"${CPPCHECK[@]}" "$tmp/planted.c" >"$tmp/cppcheck-planted.out" 2>&1
rc=$?
diag <"$tmp/cppcheck-planted.out"
[ $rc -ne 0 ] && grep -q 'planted.c' "$tmp/cppcheck-planted.out"
check $? "cppcheck bites: it reports the planted defect"

"${CPPCHECK[@]}" "${files[@]}" >"$tmp/cppcheck.out" 2>&1
rc=$?
diag <"$tmp/cppcheck.out"
[ $rc -eq 0 ] && [ ! -s "$tmp/cppcheck.out" ]
check $? "cppcheck (warning, style, performance, portability) finds nothing in ${#files[@]} files"

# ---- scan-build ------------------------------------------------------------------
# scan-build puts its analysing compiler in $CC for the command it runs.
compile_all() {
	scan-build --status-bugs -o "$tmp/scan-$1" --use-cc=clang \
		bash -c 'for f in "$@"; do "$CC" -std=gnu11 -D_GNU_SOURCE -O1 -Isrc -Itools '"$pkg_cflags"' -c "$f" -o /dev/null || exit 2; done' _ "${@:2}"
}
compile_all planted "$tmp/planted.c" >"$tmp/scan-planted.out" 2>&1
rc=$?
grep -E 'warning:|bugs? found' "$tmp/scan-planted.out" | diag
[ $rc -eq 1 ] && grep -q 'bugs* found' "$tmp/scan-planted.out"
check $? "scan-build bites: it reports the planted defect (exit $rc)"

compile_all project "${files[@]}" >"$tmp/scan.out" 2>&1
rc=$?
grep -E 'warning:|error:|bugs? found|No bugs found' "$tmp/scan.out" | diag
[ $rc -eq 0 ] && grep -q 'No bugs found' "$tmp/scan.out"
check $? "scan-build (clang static analyser) finds nothing in ${#files[@]} files (exit $rc)"

# ---- no binary runs a command ------------------------------------------------------
RUNS='^(system|popen|wordexp|exec(l|lp|le|v|vp|vpe|ve|veat)|fexecve|posix_spawnp?)$'
imports() { nm -D --undefined-only "$1" 2>/dev/null | awk '{print $NF}' | sed 's/@.*//'; }
hits=$(imports /usr/bin/env | grep -E "$RUNS")
[ -n "$hits" ]
check $? "the command check bites: /usr/bin/env imports $(echo $hits)"

bins=(build/choreod build/choreoctl build/choreo-load)
bad=""
for b in "${bins[@]}"; do
	if [ ! -x "$b" ] || [ -z "$(imports "$b")" ]; then
		bad="$bad $b(unreadable)"
		continue
	fi
	h=$(imports "$b" | grep -E "$RUNS")
	[ -n "$h" ] && bad="$bad $b:$(echo $h)"
done
echo "${bad:-none}" | diag
[ -z "$bad" ]
check $? "no binary choreo builds imports system, popen, wordexp, exec* or posix_spawn* (${bins[*]})"

echo "1..$n"
[ "$failed" -eq 0 ]
