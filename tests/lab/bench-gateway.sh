#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The gateway's costs (run by `make bench`), in network namespaces:
#   1. commit latency: rotated answers at a fixed rate (dnsperf -Q), every
#      one committed to the kernel before it is sent; choreod's own
#      histograms give p50/p99 of the commit (netlink batch + ack) and of a
#      whole UDP batch (receipt -> answers sent, commit included)
#   2. kernel memory per binding: BENCH_BINDINGS elements (default 1 000 000)
#      put into the service's binding set, MemAvailable and Slab compared
#      before and after (machine-wide figures: run it on a quiet machine)
# Reports; does not fail on the figures.
#
# Environment:
#   BENCH_RATE=10000        answers per second for the latency run
#   BENCH_SECONDS=15        duration of the latency run
#   BENCH_BINDINGS=1000000  elements for the memory run (0 skips it)
#   CHOREOD, CHOREOCTL      the binaries (default build/...)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"

CHOREOD=${CHOREOD:-$root/build/choreod}
CHOREOCTL=${CHOREOCTL:-$root/build/choreoctl}
RATE=${BENCH_RATE:-10000}
SECS=${BENCH_SECONDS:-15}
NBIND=${BENCH_BINDINGS:-1000000}
SUT4=203.0.113.53

for v in "$RATE" "$SECS" "$NBIND"; do
	case "$v" in ''|*[!0-9]*) lab_die "BENCH_RATE/SECONDS/BINDINGS must be numbers" ;; esac
done
[ "$SECS" -ge 1 ] && [ "$SECS" -le 600 ] || lab_die "BENCH_SECONDS must be 1..600"
[ "$NBIND" -le 4000000 ] || lab_die "BENCH_BINDINGS must be at most 4000000"
for tool in dnsperf nft python3; do
	command -v "$tool" >/dev/null || lab_die "$tool is missing (scripts/install-deps.sh bench)"
done
[ -x "$CHOREOD" ] && [ -x "$CHOREOCTL" ] || lab_die "build first: make"

lab_init gwbench
lab_netns CLI cli
lab_netns GW gw
lab_client_server "$CLI" "$GW"
lab_addr "$GW" lo "$SUT4/32"
table=choreo_b$$

cat >"$LAB_TMP/example.test.zone" <<'ZONE'
$TTL 3600
@    SOA ns1.example.test. hostmaster.example.test. 1 7200 3600 1209600 300
@    NS  ns1
ns1  A   203.0.113.53
ZONE
cat >"$LAB_TMP/choreo.conf" <<CONF
[daemon]
control = $LAB_TMP/control.sock
table = $table
[dns]
listen = $SUT4:53
zone = example.test
zonefile = example.test.zone
ttl = 5
rate_limit = 0
[service www]
name = www.example.test
pool = 203.0.113.0/25
server = 192.0.2.10
honeypot = 192.0.2.20
max_open = 16
max_bindings = $((NBIND > 1048576 ? NBIND + 1000 : 1048576))
CONF
lab_spawn "$GW" "$LAB_TMP/choreod.log" "$CHOREOD" -c "$LAB_TMP/choreo.conf"
PID=$LAB_LAST_PID
lab_wait_dns "$CLI" $SUT4 53 10 "$PID" || lab_die "choreod did not start: $(cat "$LAB_TMP/choreod.log")"

echo "== 1. commit before answer at $RATE answers/s for $SECS s (dnsperf -Q $RATE)"
printf 'www.example.test A\n' >"$LAB_TMP/rotated.txt"
lab_in "$CLI" dnsperf -s $SUT4 -d "$LAB_TMP/rotated.txt" -l "$SECS" -Q "$RATE" \
	-c 4 -q 500 >"$LAB_TMP/dnsperf.out" 2>&1
grep -E 'Queries (sent|completed|lost)|Queries per second|Average Latency|Latency StdDev' \
	"$LAB_TMP/dnsperf.out" | sed 's/^ */  dnsperf: /'
status=$("$CHOREOCTL" -s "$LAB_TMP/control.sock" status)
echo "$status" | grep -E '^(gateway|answer_latency_us|dns queries)' | sed 's/^/  choreod: /'
commit_p99=$(echo "$status" | sed -n 's/^gateway .*p99 \([0-9]*\).*/\1/p')
batch_p99=$(echo "$status" | sed -n 's/^answer_latency_us .*p99 \([0-9]*\).*/\1/p')
servfail=$(echo "$status" | sed -n 's/^dns .*servfail \([0-9]*\).*/\1/p')
echo "  => commit p99 ${commit_p99} us; receipt->answer p99 ${batch_p99} us (target < 1000 us); SERVFAIL ${servfail}"

if [ "$NBIND" -gt 0 ]; then
	echo "== 2. kernel memory for $NBIND bindings (set ${table} www_bound4)"
	# elements as the kernel would learn them: (client . pool address), 600 s
	python3 - "$NBIND" "$table" "$LAB_TMP/elems" <<'PY'
import sys
n, table, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
chunk = 50000
for c in range(0, n, chunk):
    with open(f"{out}.{c // chunk:04d}", "w") as f:
        f.write(f"add element inet {table} www_bound4 {{\n")
        for i in range(c, min(n, c + chunk)):
            # clients from 198.18.0.0/15, pool addresses 203.0.113.0/25
            f.write(f"198.{18 + (i >> 16) % 2}.{(i >> 8) & 255}.{i & 255} . "
                    f"203.0.113.{(i >> 17) % 128} timeout 600s,\n")
        f.write("}\n")
PY
	meminfo() { awk -v k="$1" '$1 == k":" { print $2 }' /proc/meminfo; }
	sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
	avail0=$(meminfo MemAvailable); slab0=$(meminfo Slab); vm0=$(meminfo VmallocUsed)
	t0=$SECONDS
	for f in "$LAB_TMP"/elems.*; do
		lab_in "$GW" nft -f "$f" || { echo "  nft -f $f failed"; break; }
	done
	rm -f "$LAB_TMP"/elems.*
	sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
	avail1=$(meminfo MemAvailable); slab1=$(meminfo Slab); vm1=$(meminfo VmallocUsed)
	count=$("$CHOREOCTL" -s "$LAB_TMP/control.sock" status |
		sed -n 's/.*gateway: .* bindings \([0-9-]*\) .*/\1/p' | head -1)
	echo "  elements in the set: $count (loaded in $((SECONDS - t0)) s)"
	if [ -n "$count" ] && [ "$count" -gt 0 ]; then
		echo "  MemAvailable delta: $(( (avail0 - avail1) )) KiB => $(( (avail0 - avail1) * 1024 / count )) bytes per binding"
		echo "  Slab delta:         $(( (slab1 - slab0) )) KiB => $(( (slab1 - slab0) * 1024 / count )) bytes per binding"
		echo "  VmallocUsed delta:  $(( (vm1 - vm0) )) KiB (the hash table's bucket array)"
		echo "  (target < 300 bytes per binding; 2014: > 2 GB for 25 000 iptables rules)"
	fi
	# a query still answers, with the set full of bindings
	ans=$(lab_in "$CLI" dig +short @$SUT4 www.example.test A)
	echo "  a rotated answer with $count bindings in the set: $ans"
fi
lab_stop "$PID"
lab_in "$GW" "$CHOREOCTL" -s "$LAB_TMP/control.sock" remove-table "$table" >/dev/null
