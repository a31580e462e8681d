#!/bin/sh
# SPDX-License-Identifier: MIT
# Install the Debian packages a make target needs. Idempotent: packages that
# are already installed are skipped, and apt-get runs only when one is missing.
# Usage: scripts/install-deps.sh build|test|demo|bench|kernels
set -eu

build="gcc make pkg-config libknot-dev libcmocka-dev libnftnl-dev libmnl-dev libnetfilter-log-dev libssl-dev iproute2"
test_extra="clang clang-tools libclang-rt-14-dev valgrind cppcheck nsd dnsutils knot-dnsutils python3 perl nftables unbound nmap curl openssl keepalived"
demo_extra="dnsutils knot-dnsutils python3 nftables unbound nmap curl openssl"
bench_extra="nsd dnsperf dnsutils python3 nftables"
kernels_extra="$test_extra qemu-system-x86 qemu-utils debootstrap e2fsprogs"

case "${1:-build}" in
build) pkgs="$build" ;;
test)  pkgs="$build $test_extra" ;;
demo)  pkgs="$build $demo_extra" ;;
bench) pkgs="$build $bench_extra" ;;
kernels) pkgs="$build $kernels_extra" ;;
*) echo "usage: $0 build|test|demo|bench|kernels" >&2; exit 2 ;;
esac

missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages:$missing (run as root to install them)" >&2
	exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
