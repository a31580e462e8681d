#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# `make test-kernels`: the kernel probe and the gateway's lab tests inside
# Debian 12's own kernel (Linux 6.1, from the archive) under qemu (see
# tests/kernels/README.md), after the same on this machine's kernel.
# Prints each suite's TAP lines and a summary; exits 1 if a suite failed.
#
# Under software emulation the guest runs 3-5 times slower than the host:
# a check with a wall-clock limit may fail there for that reason alone
# (tests/kernels/README.md lists the ones seen). KERNEL_SUITES picks the
# suites (default: table exposure gateway gateway_readd).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
suites=${KERNEL_SUITES:-"table exposure gateway gateway_readd"}
failed=0
log=$(mktemp -d /tmp/choreo-kernels.$$.XXXXXX) || exit 1
trap 'rm -rf "$log"' EXIT

"$here/vm.sh" build || exit 1
echo "== host: $(uname -r)"
build/choreod -k | sed 's/^/   /'
echo "== guest: Debian 12's kernel"
KVM_SHARE=$root "$here/vm.sh" run --timeout 300 -- build/choreod -k >"$log/probe" 2>&1
rc=$?
sed 's/^/   /' "$log/probe"
[ $rc -eq 0 ] || failed=1
for s in $suites; do
	echo "== guest: tests/lab/test_$s.sh"
	start=$SECONDS
	KVM_SHARE=$root "$here/vm.sh" run --timeout 2400 -- "tests/lab/test_$s.sh" >"$log/$s" 2>&1
	rc=$?
	grep -E '^(not )?ok [0-9]+' "$log/$s" | sed 's/^/   /'
	p=$(grep -cE '^ok [0-9]+' "$log/$s"); f=$(grep -cE '^not ok [0-9]+' "$log/$s")
	echo "   ($p passed, $f failed, exit $rc, $((SECONDS - start)) s)"
	if [ $rc -ne 0 ]; then
		failed=1
		grep -E '^not ok' -A6 "$log/$s" | grep '^#' | head -30 | sed 's/^/   | /'
	fi
done
exit $failed
