#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The distributed mode against standalone choreod, same run, same settings,
# one after the other (the "answer" part of `make bench-distributed`, which
# then runs bench-dist-seed.sh, the 2014 matrix with choreo-load, and
# bench-dist-scale.sh, 10 000 clients through two gateways beside
# standalone choreod; BENCH_DIST_PARTS selects parts):
#
#   standalone   one choreod: DNS, rotor and its own nftables table
#   distributed  a DNS node (role dns) whose every rotated answer waits for
#                two gateways (role gateway, each in its own namespace with
#                its own table) to apply and acknowledge its changes
#
# For each: a latency run at a fixed, modest rate (dnsperf -Q), whose
# figures are choreod's own answer latency, query received -> answer sent
# (commit included: both gateways' acknowledgements in the distributed
# mode), p50 and p99; then a throughput run (dnsperf unlimited): rotated
# answers per second and the CPU the servers spent per answer (the DNS
# process alone, and with the gateways). Each run starts fresh daemons.
# dnsperf runs on the same machine: its own limit is shown by a run against
# NSD serving static names (the fastest server here). Reports; never fails
# on a ratio (target: distributed >= 50 % of standalone's rate).
#
# Environment:
#   BENCH_SECONDS=15       duration of each dnsperf run (1..600)
#   BENCH_RATE=1000        queries per second of the latency runs
#   BENCH_CLIENTS=4 BENCH_OUTSTANDING=200   dnsperf -c / -q of throughput runs
#   CHOREOD=path CHOREOCTL=path  LAB_KEEP=1
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"

CHOREOD=${CHOREOD:-$root/build/choreod}
CHOREOCTL=${CHOREOCTL:-$root/build/choreoctl}
SECS=${BENCH_SECONDS:-15}
RATE=${BENCH_RATE:-1000}
CLIENTS=${BENCH_CLIENTS:-4}
OUTST=${BENCH_OUTSTANDING:-200}
SUT4=198.51.100.53
NSD4=198.51.100.153
GW1=198.18.71.1 DNS_GW1=198.18.71.2
GW2=198.18.72.1 DNS_GW2=198.18.72.2

for v in "$SECS" "$RATE" "$CLIENTS" "$OUTST"; do
	case "$v" in ''|*[!0-9]*) lab_die "BENCH_* values must be numbers" ;; esac
done
if [ "$SECS" -lt 1 ] || [ "$SECS" -gt 600 ]; then lab_die "BENCH_SECONDS must be 1..600"; fi
for tool in dnsperf nsd dig; do
	command -v "$tool" >/dev/null || lab_die "$tool is missing (scripts/install-deps.sh bench)"
done
[ -x "$CHOREOD" ] && [ -x "$CHOREOCTL" ] || lab_die "build first: make build/choreod build/choreoctl"

lab_init benchdist
lab_netns CLI cli
lab_netns SRV srv
lab_netns G1 gw1
lab_netns G2 gw2
lab_client_server "$CLI" "$SRV"
lab_addr "$SRV" lo "$SUT4/32"
lab_addr "$SRV" lo "$NSD4/32"
lab_veth "$SRV" g1 "$G1" dns0
lab_addr "$SRV" g1 "$DNS_GW1/30"
lab_addr "$G1" dns0 "$GW1/30"
lab_veth "$SRV" g2 "$G2" dns0
lab_addr "$SRV" g2 "$DNS_GW2/30"
lab_addr "$G2" dns0 "$GW2/30"

zone="$here/conformance/example.test.zone"
cp "$zone" "$LAB_TMP/"
head -c 48 /dev/urandom | base64 >"$LAB_TMP/key1"
chmod 600 "$LAB_TMP/key1"
TABLE="choreo_bd_$$"

services() {
	cat <<EOF
[service www]
name = www.example.test
pool = 203.0.113.0/25
pool6 = 2001:db8:1::/64
server = 192.0.2.10
server6 = 2001:db8:2::10
honeypot = 192.0.2.20
honeypot6 = 2001:db8:2::20
max_open = 16
window = 5
EOF
}
dns_section() {
	printf '[dns]\nlisten = %s:53\nzone = example.test\nzonefile = %s\nttl = 5\nrate_limit = 0\n' \
		"$SUT4" "$LAB_TMP/example.test.zone"
}
{
	printf '[daemon]\ncontrol = %s/sa.sock\ntable = %s_s\n' "$LAB_TMP" "$TABLE"
	dns_section
	services
} >"$LAB_TMP/standalone.conf"
{
	printf '[daemon]\nrole = dns\nname = dns1\ncontrol = %s/dns.sock\n' "$LAB_TMP"
	dns_section
	printf '[key 1]\nfile = %s/key1\n' "$LAB_TMP"
	printf '[peer gw1]\nrole = gateway\naddress = %s:5300\nkey = 1\n' "$GW1"
	printf '[peer gw2]\nrole = gateway\naddress = %s:5300\nkey = 1\n' "$GW2"
	services
	printf 'slice = 203.0.113.0/25\nslice6 = 2001:db8:1::/64\nshare = 16\n'
} >"$LAB_TMP/dns.conf"
for g in 1 2; do
	a=GW$g
	{
		printf '[daemon]\nrole = gateway\nname = gw%s\ncontrol = %s/gw%s.sock\n' "$g" "$LAB_TMP" "$g"
		printf 'table = %s_%s\npeer_listen = %s:5300\n' "$TABLE" "$g" "${!a}"
		printf '[key 1]\nfile = %s/key1\n' "$LAB_TMP"
		printf '[peer dns1]\nrole = dns\nkey = 1\nfrom = %s/32\n' "$(eval echo "\$DNS_GW$g")"
		services
	} >"$LAB_TMP/gw$g.conf"
done
"$CHOREOD" -t -c "$LAB_TMP/dns.conf" -c "$LAB_TMP/gw1.conf" -c "$LAB_TMP/gw2.conf" >&2 ||
	lab_die "the distributed configuration does not check"

printf 'www.example.test A\nwww.example.test AAAA\n' >"$LAB_TMP/rotated.txt"
printf 'example.test SOA\nstatic.example.test A\nmail.example.test AAAA\nns1.example.test A\n' \
	>"$LAB_TMP/static.txt"

# ticks PID...: user + system CPU ticks of these processes
ticks() {
	local pid t=0 st rest
	for pid in "$@"; do
		st=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
		rest=${st##*) }
		# shellcheck disable=SC2086
		set -- $rest
		t=$((t + ${12} + ${13}))
	done
	echo "$t"
}
HZ=$(getconf CLK_TCK)

# dnsperf_run SERVER FILE LABEL ARGS...: dnsperf's output in LAB_TMP
dnsperf_run() {
	local srv=$1 file=$2 label=$3; shift 3
	ip netns exec "$CLI" timeout $((SECS + 30)) dnsperf -s "$srv" -d "$file" -l "$SECS" "$@" \
		>"$LAB_TMP/dnsperf.$label.txt" 2>&1
}
qps_of() { awk '/Queries per second/ { print int($4); f = 1 } END { if (!f) print 0 }' "$1"; }
lost_of() { awk '/Queries lost/ { print $3; f = 1 } END { if (!f) print "?" }' "$1"; }
noerror_of() { grep -o 'NOERROR [0-9]*' "$1" | awk '{ print $2 }' | head -1; }

# start MODE: fresh daemons; PIDS (the DNS process first), CTL (its socket)
start() {
	PIDS=()
	if [ "$1" = standalone ]; then
		lab_spawn "$SRV" "$LAB_TMP/sa.log" "$CHOREOD" -c "$LAB_TMP/standalone.conf"
		PIDS=("$LAB_LAST_PID")
		CTL=$LAB_TMP/sa.sock
	else
		local g ns
		for g in 1 2; do
			ns=G$g
			lab_spawn "${!ns}" "$LAB_TMP/gw$g.log" "$CHOREOD" -c "$LAB_TMP/gw$g.conf"
			GWPID[$g]=$LAB_LAST_PID
		done
		lab_wait_tcp "$SRV" "$GW1" 5300 10 && lab_wait_tcp "$SRV" "$GW2" 5300 10 ||
			lab_die "the gateways did not come up"
		lab_spawn "$SRV" "$LAB_TMP/dns.log" "$CHOREOD" -c "$LAB_TMP/dns.conf"
		PIDS=("$LAB_LAST_PID" "${GWPID[1]}" "${GWPID[2]}")
		CTL=$LAB_TMP/dns.sock
	fi
	lab_wait_dns "$CLI" "$SUT4" 53 10 "${PIDS[0]}" || lab_die "choreod ($1) did not start"
	if [ "$1" = distributed ]; then
		local i
		for i in $(seq 1 100); do
			[ "$("$CHOREOCTL" -s "$CTL" status | grep -c '^peer gw[12] up')" = 2 ] && return 0
			sleep 0.1
		done
		lab_die "the links did not come up"
	fi
}
stop_all() {
	local pid
	for pid in "${PIDS[@]}"; do lab_stop "$pid"; done
}

declare -A R
# measure MODE: one latency run and one throughput run, fresh daemons each
measure() {
	local mode=$1 t0 t1 d0 d1 n st
	start "$mode"
	dnsperf_run "$SUT4" "$LAB_TMP/rotated.txt" "$mode.lat" -c 1 -q 20 -Q "$RATE"
	st=$("$CHOREOCTL" -s "$CTL" status)
	echo "$st" >"$LAB_TMP/status.$mode.lat"
	R[$mode.p50]=$(echo "$st" | awk '/^answer_latency_us/ { print $3 }')
	R[$mode.p99]=$(echo "$st" | awk '/^answer_latency_us/ { print $5 }')
	R[$mode.commit]=$(echo "$st" | awk '/^(gateway |gateways )/ { for (i = 1; i < NF; i++) if ($i == "p50") p = $(i + 1); else if ($i == "p99") q = $(i + 1); print p "/" q }')
	R[$mode.latlost]=$(lost_of "$LAB_TMP/dnsperf.$mode.lat.txt")
	stop_all
	start "$mode"
	d0=$(ticks "${PIDS[0]}")
	t0=$(ticks "${PIDS[@]}")
	dnsperf_run "$SUT4" "$LAB_TMP/rotated.txt" "$mode.tput" -c "$CLIENTS" -q "$OUTST"
	d1=$(ticks "${PIDS[0]}")
	t1=$(ticks "${PIDS[@]}")
	st=$("$CHOREOCTL" -s "$CTL" status)
	echo "$st" >"$LAB_TMP/status.$mode.tput"
	R[$mode.qps]=$(qps_of "$LAB_TMP/dnsperf.$mode.tput.txt")
	n=$(noerror_of "$LAB_TMP/dnsperf.$mode.tput.txt")
	R[$mode.noerror]=${n:-0}
	R[$mode.lost]=$(lost_of "$LAB_TMP/dnsperf.$mode.tput.txt")
	R[$mode.servfail]=$(echo "$st" | awk '/^dns queries/ { for (i = 1; i < NF; i++) if ($i == "servfail") print $(i + 1) }')
	R[$mode.cpu_dns]=$(awk -v t=$((d1 - d0)) -v n="${R[$mode.noerror]}" -v hz="$HZ" \
		'BEGIN { printf "%.1f", n ? t / hz * 1e6 / n : 0 }')
	R[$mode.cpu_all]=$(awk -v t=$((t1 - t0)) -v n="${R[$mode.noerror]}" -v hz="$HZ" \
		'BEGIN { printf "%.1f", n ? t / hz * 1e6 / n : 0 }')
	stop_all
}

# the generator's own limit: NSD answering static names
mkdir -p "$LAB_TMP/nsd"
cp "$zone" "$LAB_TMP/nsd/"
NSD_EXTRA="    minimal-responses: yes" lab_nsd_conf "$LAB_TMP/nsd" example.test example.test.zone "$NSD4"
lab_nsd_start "$SRV" "$LAB_TMP/nsd"
nsd_pid=$LAB_LAST_PID
lab_wait_dns "$CLI" "$NSD4" 53 10 "$nsd_pid" || lab_die "NSD did not start"
dnsperf_run "$NSD4" "$LAB_TMP/static.txt" nsd -c "$CLIENTS" -q "$OUTST"
nsd_qps=$(qps_of "$LAB_TMP/dnsperf.nsd.txt")
lab_stop "$nsd_pid"

measure standalone
measure distributed

echo "Distributed mode benchmark: dnsperf ${SECS} s per run; rotated A/AAAA queries"
echo "for www; $(nproc) CPUs, everything on this machine in network namespaces"
echo "(client, DNS, gw1, gw2), nothing pinned. Fresh daemons for every run."
echo "Generator limit: dnsperf -c $CLIENTS -q $OUTST against NSD $(nsd -v 2>&1 | sed -n 's/NSD version //p') (static names): $nsd_qps q/s."
echo
echo "Latency runs (dnsperf -Q $RATE -c 1): choreod's answer latency, query received"
echo "-> answer sent, commit included; and the commit alone (gateway acknowledgement):"
printf '%-12s %12s %12s %22s %6s\n' mode p50_us p99_us commit_p50/p99_us lost
for m in standalone distributed; do
	printf '%-12s %12s %12s %22s %6s\n' "$m" "${R[$m.p50]}" "${R[$m.p99]}" "${R[$m.commit]}" "${R[$m.latlost]}"
done
echo
echo "Throughput runs (dnsperf -c $CLIENTS -q $OUTST): rotated answers per second"
echo "and server CPU per NOERROR answer (the DNS process; with the gateways):"
printf '%-12s %10s %10s %9s %8s %14s %14s\n' mode q/s noerror servfail lost cpu_us/ans cpu_us/ans_all
for m in standalone distributed; do
	printf '%-12s %10s %10s %9s %8s %14s %14s\n' "$m" "${R[$m.qps]}" "${R[$m.noerror]}" \
		"${R[$m.servfail]:-0}" "${R[$m.lost]}" "${R[$m.cpu_dns]}" "${R[$m.cpu_all]}"
done
ratio=$(awk -v d="${R[distributed.qps]}" -v s="${R[standalone.qps]}" \
	'BEGIN { printf "%.0f %%", s ? 100 * d / s : 0 }')
echo
echo "distributed / standalone rate: $ratio (target >= 50 %; reported, not enforced)"
