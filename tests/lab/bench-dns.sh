#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# DNS throughput: dnsperf against choreod and against NSD serving the same
# zone, on this machine, in network namespaces (run by `make bench`).
#
#   static   queries for existing static names of the zone
#   rotated  queries for the protected name www (A and AAAA): choreod picks a
#            pool address per answer (and, once the NAT gateway exists,
#            commits the gateway change before answering); NSD answers a
#            fixed A/AAAA (its zone copy has www records), so this shows the
#            price of rotation, not a like-for-like contest
#
# NSD runs with server-count: 1 (one process answering, like choreod's one
# event loop) and minimal-responses: yes, so that both servers send the same
# answers for the static names (tests/lab/test_dns_conformance.sh checks
# that). Nothing is pinned to CPUs; dnsperf runs on the same machine.
# Target (DESIGN.md): choreod static >= 70 % of NSD. This script reports,
# it does not fail on the ratio.
#
# Environment:
#   BENCH_SECONDS=15   duration of each dnsperf run
#   BENCH_CLIENTS=4    dnsperf -c
#   BENCH_OUTSTANDING=200  dnsperf -q
#   CHOREOD=path       the daemon (default build/choreod)
#   LAB_KEEP=1         keep the temp dir (configs, logs, dnsperf output)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"

CHOREOD=${CHOREOD:-$root/build/choreod}
SECS=${BENCH_SECONDS:-15}
CLIENTS=${BENCH_CLIENTS:-4}
OUTST=${BENCH_OUTSTANDING:-200}
NSD4=198.51.100.153
SUT4=198.51.100.53

case "$SECS" in ''|*[!0-9]*) lab_die "BENCH_SECONDS must be a number" ;; esac
if [ "$SECS" -lt 1 ] || [ "$SECS" -gt 600 ]; then lab_die "BENCH_SECONDS must be 1..600"; fi
for tool in dnsperf nsd dig; do
	command -v "$tool" >/dev/null || lab_die "$tool is missing (scripts/install-deps.sh bench)"
done
have_choreod=1
if [ ! -x "$CHOREOD" ]; then
	echo "bench-dns: $CHOREOD not built: measuring NSD only"
	have_choreod=0
fi

lab_init bench
lab_netns CLI cli
lab_netns SRV srv
lab_client_server "$CLI" "$SRV"
lab_addr "$SRV" lo "$NSD4/32"
lab_addr "$SRV" lo "$SUT4/32"

zone="$here/conformance/example.test.zone"

# NSD: the same zone plus static www records (choreod answers www itself)
mkdir -p "$LAB_TMP/nsd"
{ cat "$zone"; echo "www IN A 203.0.113.1"; echo "www IN AAAA 2001:db8:1::1"; } \
	>"$LAB_TMP/nsd/example.test.zone"
NSD_EXTRA="    minimal-responses: yes" \
	lab_nsd_conf "$LAB_TMP/nsd" example.test example.test.zone "$NSD4"
lab_nsd_start "$SRV" "$LAB_TMP/nsd"
nsd_pid=$LAB_LAST_PID

if [ "$have_choreod" = 1 ]; then
	mkdir -p "$LAB_TMP/choreod"
	cp "$zone" "$LAB_TMP/choreod/"
	cat >"$LAB_TMP/choreod/choreo.conf" <<EOF
[daemon]
control = $LAB_TMP/choreod/control.sock
table = choreo_bench_$$

[dns]
listen = $SUT4:53
zone = example.test
zonefile = example.test.zone
ttl = 5
rate_limit = 0

[service www]
name = www.example.test
pool = 203.0.113.0/25
pool6 = 2001:db8:1::/64
server = 192.0.2.10
server6 = 2001:db8:2::10
honeypot = 192.0.2.20
honeypot6 = 2001:db8:2::20
max_open = 16
EOF
	lab_spawn "$SRV" "$LAB_TMP/choreod/choreod.log" "$CHOREOD" -c "$LAB_TMP/choreod/choreo.conf"
	sut_pid=$LAB_LAST_PID
fi

lab_wait_dns "$CLI" "$NSD4" 53 10 "$nsd_pid" || {
	cat "$LAB_TMP/nsd/nsd.stderr"; lab_die "NSD did not start"; }
if [ "$have_choreod" = 1 ] && ! lab_wait_dns "$CLI" "$SUT4" 53 10 "$sut_pid"; then
	tail -n 20 "$LAB_TMP/choreod/choreod.log"
	lab_die "choreod did not start"
fi

# Query files
cat >"$LAB_TMP/static.txt" <<'EOF'
example.test SOA
example.test NS
example.test MX
static.example.test A
static.example.test AAAA
static.example.test TXT
mail.example.test A
mail.example.test AAAA
ns1.example.test A
ns2.example.test AAAA
host.example.test A
_sip._udp.example.test SRV
alias1.example.test A
a.b.c.example.test A
x.wild.example.test A
EOF
printf 'www.example.test A\nwww.example.test AAAA\n' >"$LAB_TMP/rotated.txt"

# perf SERVER FILE LABEL: run dnsperf, keep its output, print the qps
perf() {
	local srv=$1 file=$2 label=$3 out
	out="$LAB_TMP/dnsperf.$label.txt"
	local cmd=(dnsperf -s "$srv" -d "$file" -l "$SECS" -c "$CLIENTS" -q "$OUTST")
	echo "  \$ ${cmd[*]}" >&2
	ip netns exec "$CLI" timeout $((SECS + 30)) "${cmd[@]}" >"$out" 2>&1
	grep -E 'Queries (sent|completed|lost)|Response codes|Queries per second|Average Latency' "$out" |
		sed 's/^ */      /' >&2
	awk '/Queries per second/ { print int($4); found = 1 } END { if (!found) print 0 }' "$out"
}

echo "DNS benchmark: dnsperf ${SECS} s per run, $CLIENTS clients, $OUTST outstanding;"
echo "NSD $(nsd -v 2>&1 | sed -n 's/NSD version //p') with server-count: 1 (one server process), minimal-responses: yes, rrl off;"
echo "server and dnsperf on this machine ($(nproc) CPUs), client and server in"
echo "network namespaces joined by a veth pair; nothing pinned."
echo

declare -A q
for kind in static rotated; do
	echo "[$kind] NSD ($NSD4):" >&2
	q[nsd.$kind]=$(perf "$NSD4" "$LAB_TMP/$kind.txt" "nsd.$kind")
	if [ "$have_choreod" = 1 ]; then
		echo "[$kind] choreod ($SUT4):" >&2
		q[choreod.$kind]=$(perf "$SUT4" "$LAB_TMP/$kind.txt" "choreod.$kind")
		lab_alive "$sut_pid" || { tail -n 20 "$LAB_TMP/choreod/choreod.log"; lab_die "choreod died during the $kind run"; }
	else
		q[choreod.$kind]=0
	fi
done

echo
printf '%-10s %14s %14s %10s\n' "queries" "choreod q/s" "NSD q/s" "choreod/NSD"
for kind in static rotated; do
	c=${q[choreod.$kind]} n=${q[nsd.$kind]}
	if [ "$n" -gt 0 ] && [ "$have_choreod" = 1 ]; then
		ratio=$(awk -v c="$c" -v n="$n" 'BEGIN { printf "%.0f %%", 100 * c / n }')
	else
		ratio="-"
	fi
	[ "$have_choreod" = 1 ] || c="-"
	printf '%-10s %14s %14s %10s\n' "$kind" "$c" "$n" "$ratio"
done
echo
echo "target: static >= 70 % of NSD (reported, not enforced)."
echo "rotated: choreod picks a pool address per answer; NSD serves fixed www records."
