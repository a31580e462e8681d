#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The live demonstration (make demo): a server and a client in network
# namespaces, choreod serving demo/example.test.zone with one protected name,
# and dig showing what a client sees: a static record, the protected name
# answered from the pool with a different address each time (A and AAAA), and
# an NXDOMAIN. Everything is removed at the end, also on failure.
#
# For now the DNS half only: the NAT gateway is not built yet, so the rotated
# addresses are not yet backed by the gateway (nothing forwards a connection
# to them to the server or to the honeypot).
#
# Environment: CHOREOD=path (default build/choreod), LAB_KEEP=1 keeps the
# temp dir (config, log).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"

CHOREOD=${CHOREOD:-$root/build/choreod}
SRV4=198.51.100.53
SRV6=2001:db8:53::53
POOL4=203.0.113.0/25
POOL6=2001:db8:1::/64
ROUNDS=5

[ -x "$CHOREOD" ] || lab_die "$CHOREOD is not built (make)"
command -v dig >/dev/null || lab_die "dig is missing (scripts/install-deps.sh demo)"

lab_init demo
lab_netns CLI cli
lab_netns SRV srv
lab_client_server "$CLI" "$SRV"
lab_addr "$SRV" lo "$SRV4/32"
lab_addr "$SRV" lo "$SRV6/128"

cp "$here/demo/example.test.zone" "$LAB_TMP/"
cat >"$LAB_TMP/choreo.conf" <<EOF
[daemon]
control = $LAB_TMP/control.sock
table = choreo_demo_$$

[dns]
listen = $SRV4:53, [$SRV6]:53
zone = example.test
zonefile = example.test.zone
ttl = 5

[service www]
name = www.example.test
pool = $POOL4
pool6 = $POOL6
server = 192.0.2.10
server6 = 2001:db8:2::10
honeypot = 192.0.2.20
honeypot6 = 2001:db8:2::20
max_open = 16
EOF

bar() { printf '%s\n' "------------------------------------------------------------------------"; }
say() { printf '%s\n' "$*"; }

bar
say "choreo demo: DNS answers that move"
bar
say "lab (network namespaces, deleted at the end):"
say "  $SRV  choreod on $SRV4 and [$SRV6], port 53"
say "  $CLI  the client, 198.18.0.2 / 2001:db8:ffff::2, via a veth pair"
say "protected name: www.example.test -> pool $POOL4 and $POOL6"
say ""
say "NOTE: the NAT gateway is not built yet. The rotated addresses below are"
say "      not yet backed by the gateway: a connection to them reaches neither"
say "      the protected server nor the honeypot."
bar

if ! out=$("$CHOREOD" -t -c "$LAB_TMP/choreo.conf" 2>&1); then
	say "choreod -t rejected the demo configuration:"
	say "$out"
	exit 1
fi
lab_spawn "$SRV" "$LAB_TMP/choreod.log" "$CHOREOD" -c "$LAB_TMP/choreo.conf"
pid=$LAB_LAST_PID
if ! lab_wait_dns "$CLI" "$SRV4" 53 10 "$pid"; then
	say "choreod did not start; its log:"
	tail -n 20 "$LAB_TMP/choreod.log"
	exit 1
fi
say "choreod started (pid $pid)"
say ""

# q NAME TYPE [OPTS]: dig from the client; print the command, then status,
# flags and answer records.
q() {
	local out status flags
	say "\$ dig @$SRV4 $*"
	out=$(ip netns exec "$CLI" dig @"$SRV4" +nocookie +time=2 +tries=1 "$@" 2>&1)
	status=$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$out")
	flags=$(sed -n 's/^;; flags: \([^;]*\);.*/\1/p' <<<"$out")
	say "  status ${status:-no reply}, flags: ${flags:-}"
	sed -n '/^;; ANSWER SECTION:/,/^$/p' <<<"$out" | grep -v '^;' | grep -v '^$' |
		sed 's/[[:space:]]\+/ /g; s/^/  /'
	sed -n '/^;; AUTHORITY SECTION:/,/^$/p' <<<"$out" | grep -v '^;' | grep -v '^$' |
		sed 's/[[:space:]]\+/ /g; s/^/  (authority) /'
}

say "1. A static record, served like any authoritative server would:"
q mail.example.test A
say ""

say "2. The protected name, $ROUNDS times in a row (A, TTL 5):"
v4=()
for i in $(seq 1 "$ROUNDS"); do
	a=$(ip netns exec "$CLI" dig @"$SRV4" +nocookie +time=2 +tries=1 +short www.example.test A | head -n1)
	v4+=("${a:-no answer}")
	say "  query $i: www.example.test A -> ${a:-no answer}"
done
say ""

say "3. The same over IPv6 transport, AAAA (a random interface id in $POOL6):"
v6=()
for i in $(seq 1 3); do
	a=$(ip netns exec "$CLI" dig @"$SRV6" +nocookie +time=2 +tries=1 +short www.example.test AAAA | head -n1)
	v6+=("${a:-no answer}")
	say "  query $i: www.example.test AAAA -> ${a:-no answer}"
done
say ""

say "4. One full answer for the protected name:"
q www.example.test A
say ""

say "5. A name that does not exist:"
q nothere.example.test A
say ""

distinct4=$(printf '%s\n' "${v4[@]}" | grep -v 'no answer' | sort -u | grep -c .)
distinct6=$(printf '%s\n' "${v6[@]}" | grep -v 'no answer' | sort -u | grep -c .)
bar
say "summary:"
say "  static record:         answered from the zone, the same every time"
say "  www.example.test A:    $distinct4 different addresses in $ROUNDS answers, from $POOL4"
say "  www.example.test AAAA: $distinct6 different addresses in 3 answers, from $POOL6"
say "  nothere.example.test:  NXDOMAIN with the zone's SOA"
say "  gateway:               NOT BUILT YET - these addresses are not yet routed"
say "                         to the server (or anything else) by choreo"
if lab_alive "$pid"; then
	say "  choreod:               still running; stopping it and removing the lab"
else
	say "  choreod:               exited early! its log:"
	tail -n 20 "$LAB_TMP/choreod.log"
	exit 1
fi
bar
