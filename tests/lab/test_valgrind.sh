#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The memory gate: choreod under Valgrind memcheck, in a network namespace,
# through a mixed workload (UDP and TCP, static, rotated and ECS queries,
# malformed packets), the control commands and a SIGTERM; `choreod -t` on a
# good and a broken configuration; a gateway and a DNS node of the
# distributed mode; and a controller with a gateway and a DNS node that have
# it as their [peer] (their node_ctl side, the gateway's NFLOG reader), and a
# second gateway: joins, the start-up hold, ASSIGN, bindings relayed, forget,
# LEAVE. Any memcheck error, or any definite or indirect leak, fails the
# test. The gate is then shown to bite: a test-only build of choreod
# (tests/valgrind/plant.c: one leaked buffer and one netlink send with
# uninitialised bytes) must fail it, and, run as a controller (which sends
# nothing over netlink), one linked with tests/valgrind/plant_ctl.c (a
# leaked block, a stats field never written), which this script links from
# build/obj.
# No suppression file is used.
# TAP output; exits non-zero if anything failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"

CHOREOD=${CHOREOD:-$root/build/choreod}
PLANTED=${PLANTED:-$root/build/valgrind/choreod-planted}
CHOREOCTL=${CHOREOCTL:-$root/build/choreoctl}
SRV4=198.51.100.53
SRV6=2001:db8:53::53
VG_OPTS=(--tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect
	--errors-for-leak-kinds=definite,indirect --error-exitcode=99
	--track-origins=yes --num-callers=30 --child-silent-after-fork=yes)

for tool in valgrind dig python3; do
	command -v "$tool" >/dev/null || lab_die "$tool is missing (scripts/install-deps.sh test)"
done
[ -x "$CHOREOD" ] && [ -x "$CHOREOCTL" ] && [ -x "$PLANTED" ] ||
	lab_die "build first: make check-build"

lab_init valgrind
lab_netns CLI cli
lab_netns SRV srv
lab_client_server "$CLI" "$SRV"
lab_addr "$SRV" lo $SRV4/32
lab_addr "$SRV" lo $SRV6/128

TABLE="choreo_vg_$$"
cp "$root/tests/data/unit.zone" "$LAB_TMP/example.test.zone"
cat >"$LAB_TMP/choreo.conf" <<CONF
[daemon]
control = $LAB_TMP/run/control.sock
table = $TABLE
[dns]
listen = $SRV4:53, [$SRV6]:53
zone = example.test
zonefile = example.test.zone
ttl = 5
rate_limit = 100000 # on (its code runs under Valgrind), never reached
tcp_timeout = 5
[service www]
name = www.example.test
pool = 203.0.113.0/25
pool6 = 2001:db8:1::/64
server = 192.0.2.10
honeypot = 192.0.2.20
server6 = 2001:db8:2::10
honeypot6 = 2001:db8:2::20
max_open = 8
CONF

# vg_summary LOG: the lines of a Valgrind log that matter, as TAP comments.
vg_summary() {
	grep -E 'ERROR SUMMARY|definitely lost|indirectly lost|Invalid|uninitialised|Mismatched|Syscall param' "$1" |
		sed 's/^==[0-9]*== //' | sort | uniq -c | head -20 | tap_diag
}

# vg_clean LOG RC: Valgrind's own verdict: exit status not 99, no error.
vg_clean() {
	[ "$2" -ne 99 ] && grep -q 'ERROR SUMMARY: 0 errors' "$1"
}

# ---- choreod -t ---------------------------------------------------------------
valgrind "${VG_OPTS[@]}" --log-file="$LAB_TMP/vg-t-good.log" \
	"$CHOREOD" -t -c "$LAB_TMP/choreo.conf" >"$LAB_TMP/t-good.out" 2>&1
rc=$?
vg_summary "$LAB_TMP/vg-t-good.log"
[ $rc -eq 0 ] && vg_clean "$LAB_TMP/vg-t-good.log" $rc
tap_check $? "choreod -t on a good configuration under memcheck: exit 0, no error, no leak"

sed -e 's/^ttl = 5/ttl = five/' -e 's/^max_open = 8/max_open = 8\nbogus = 1\npool = 10.0.0.0\/33/' \
	"$LAB_TMP/choreo.conf" >"$LAB_TMP/bad.conf"
valgrind "${VG_OPTS[@]}" --log-file="$LAB_TMP/vg-t-bad.log" \
	"$CHOREOD" -t -c "$LAB_TMP/bad.conf" >"$LAB_TMP/t-bad.out" 2>&1
rc=$?
vg_summary "$LAB_TMP/vg-t-bad.log"
[ $rc -eq 1 ] && grep -q "unknown key 'bogus'" "$LAB_TMP/t-bad.out" &&
	vg_clean "$LAB_TMP/vg-t-bad.log" $rc
tap_check $? "choreod -t on a broken configuration under memcheck: exit 1, errors listed, no error, no leak"

{ cat "$LAB_TMP/example.test.zone"; echo 'broken IN A 300.1.2.3'; } >"$LAB_TMP/bad.zone"
sed 's/^zonefile = .*/zonefile = bad.zone/' "$LAB_TMP/choreo.conf" >"$LAB_TMP/badzone.conf"
valgrind "${VG_OPTS[@]}" --log-file="$LAB_TMP/vg-t-zone.log" \
	"$CHOREOD" -t -c "$LAB_TMP/badzone.conf" >"$LAB_TMP/t-zone.out" 2>&1
rc=$?
vg_summary "$LAB_TMP/vg-t-zone.log"
[ $rc -eq 1 ] && vg_clean "$LAB_TMP/vg-t-zone.log" $rc
tap_check $? "choreod -t on a broken zone file under memcheck: exit 1, no error, no leak"

# ---- the daemon through a workload ------------------------------------------------
# run_scenario BINARY NAME: start BINARY under memcheck, drive it, SIGTERM it.
# Sets SC_RC (Valgrind's exit status), SC_LOG, SC_MIX (the workload's line),
# SC_CTL (control commands that answered), SC_STOPPED.
run_scenario() {
	local bin=$1 name=$2 pid sock="$LAB_TMP/run/control.sock" i
	SC_LOG="$LAB_TMP/vg-$name.log" SC_RC=-1 SC_MIX="" SC_CTL=0 SC_STOPPED=1
	lab_spawn "$SRV" "$LAB_TMP/choreod-$name.log" valgrind "${VG_OPTS[@]}" \
		--log-file="$SC_LOG" "$bin" -c "$LAB_TMP/choreo.conf"
	pid=$LAB_LAST_PID
	if ! lab_wait_dns "$CLI" $SRV4 53 120 "$pid"; then
		tap_diag <"$LAB_TMP/choreod-$name.log"
		return 1
	fi
	SC_MIX=$(lab_in "$CLI" timeout 600 python3 "$here/querymix.py" $SRV4 53 300 60 300 11)
	SC_MIX="$SC_MIX; v6: $(lab_in "$CLI" timeout 300 python3 "$here/querymix.py" $SRV6 53 60 20 60 12)"
	for cmd in status open bindings status; do
		timeout 60 "$CHOREOCTL" -s "$sock" "$cmd" >"$LAB_TMP/ctl-$name.out" 2>&1 &&
			SC_CTL=$((SC_CTL + 1))
	done
	timeout 60 "$CHOREOCTL" -s "$sock" no-such-command >"$LAB_TMP/ctl-$name.out" 2>&1
	[ $? -eq 1 ] && grep -q '^error: unknown command' "$LAB_TMP/ctl-$name.out" &&
		SC_CTL=$((SC_CTL + 1))
	valgrind "${VG_OPTS[@]}" --log-file="$LAB_TMP/vg-ctl-$name.log" \
		"$CHOREOCTL" -s "$sock" status >/dev/null 2>&1
	SC_CTL_RC=$?
	kill -TERM "$pid"
	for i in $(seq 1 600); do lab_alive "$pid" || break; sleep 0.1; done
	if lab_alive "$pid"; then
		SC_STOPPED=0
		lab_stop "$pid"
	fi
	wait "$pid" 2>/dev/null
	SC_RC=$?
	return 0
}

run_scenario "$CHOREOD" good
tap_diag "$SC_MIX"
vg_summary "$SC_LOG"
echo "$SC_MIX" | grep -q '^querymix: udp 300/300 tcp 60/60 .* after the garbage 5/5; v6: querymix: udp 60/60 tcp 20/20 .* 5/5$'
tap_check $? "the workload under memcheck: every well-formed UDP and TCP query answered, IPv4 and IPv6"
[ "$SC_CTL" -eq 5 ]
tap_check $? "control commands answered under memcheck (status, open, bindings, an unknown one): $SC_CTL of 5"
[ "$SC_STOPPED" -eq 1 ] && { [ "$SC_RC" -eq 0 ] || [ "$SC_RC" -eq 99 ]; } &&
	grep -q 'stopping' "$LAB_TMP/choreod-good.log"
tap_check $? "SIGTERM stops choreod under memcheck (exit status $SC_RC: 0 clean, 99 memcheck errors)"
vg_clean "$SC_LOG" "$SC_RC"
tap_check $? "choreod through the workload: no memcheck error, no definite or indirect leak"
grep -q 'All heap blocks were freed\|definitely lost: 0 bytes' "$SC_LOG" &&
	! grep -qE 'indirectly lost: [1-9]' "$SC_LOG"
tap_check $? "choreod through the workload: the leak summary is clean"

vg_summary "$LAB_TMP/vg-ctl-good.log"
[ "$SC_CTL_RC" -eq 0 ] && vg_clean "$LAB_TMP/vg-ctl-good.log" "$SC_CTL_RC"
tap_check $? "choreoctl status under memcheck: exit 0, no error, no leak"

# ---- the distributed mode: a gateway and a DNS node ---------------------------------
# Both under memcheck in one namespace, joined by a peer link on loopback
# addresses: the workload's rotated answers are committed through the link;
# peertool.py (a second implementation of docs/protocol.md) adds a valid
# session and attacks that end connections at each stage; both nodes
# answer the control commands, then stop on SIGTERM.
GW_PEER=198.51.100.54
DNS4=198.51.100.55
lab_addr "$SRV" lo $GW_PEER/32
lab_addr "$SRV" lo $DNS4/32
head -c 48 /dev/urandom | base64 >"$LAB_TMP/key1"
chmod 600 "$LAB_TMP/key1"
services=$(sed -n '/^\[service www\]/,$p' "$LAB_TMP/choreo.conf")
cat >"$LAB_TMP/gw.conf" <<CONF
[daemon]
role = gateway
name = gw1
control = $LAB_TMP/run/gw.sock
table = ${TABLE}_g
peer_listen = $GW_PEER:5300
[key 1]
file = $LAB_TMP/key1
[peer dns1]
role = dns
key = 1
[peer tool]
role = dns
key = 1
$services
window = 5
CONF
cat >"$LAB_TMP/dns.conf" <<CONF
[daemon]
role = dns
name = dns1
control = $LAB_TMP/run/dns.sock
commit_timeout = 10000
[dns]
listen = $DNS4:53
zone = example.test
zonefile = example.test.zone
ttl = 5
rate_limit = 0
[key 1]
file = $LAB_TMP/key1
[peer gw1]
role = gateway
address = $GW_PEER:5300
key = 1
$services
slice = 203.0.113.0/26
slice6 = 2001:db8:1::/65
share = 8
CONF
dist_rc=0
lab_spawn "$SRV" "$LAB_TMP/choreod-gw.log" valgrind "${VG_OPTS[@]}" \
	--log-file="$LAB_TMP/vg-gw.log" "$CHOREOD" -c "$LAB_TMP/gw.conf"
gw_pid=$LAB_LAST_PID
lab_wait_tcp "$SRV" $GW_PEER 5300 120 || dist_rc=1
lab_spawn "$SRV" "$LAB_TMP/choreod-dns.log" valgrind "${VG_OPTS[@]}" \
	--log-file="$LAB_TMP/vg-dns.log" "$CHOREOD" -c "$LAB_TMP/dns.conf"
dns_pid=$LAB_LAST_PID
lab_wait_dns "$CLI" $DNS4 53 120 "$dns_pid" || dist_rc=1
for i in $(seq 1 300); do
	timeout 20 "$CHOREOCTL" -s "$LAB_TMP/run/dns.sock" status 2>/dev/null |
		grep -q '^peer gw1 up' && break
	sleep 0.1
done
mix=$(lab_in "$CLI" timeout 600 python3 "$here/querymix.py" $DNS4 53 150 30 150 13)
tap_diag "distributed: $mix"
pt=(lab_in "$SRV" timeout 60 python3 "$here/peertool.py" --host $GW_PEER --port 5300
	--key-file "$LAB_TMP/key1" --name tool --peer-name gw1 --timeout 20)
"${pt[@]}" --config "$LAB_TMP/gw.conf" send "open 203.0.113.77 5000" >"$LAB_TMP/pt.out" 2>&1
pt_rc=$?
for a in "wrongkey" "hugelen --stage hello" "hugelen" "bitflip --variant tag" \
	"oldtime" "early" "bigcount --variant short" "badchange --variant kind"; do
	# shellcheck disable=SC2086
	"${pt[@]}" --config "$LAB_TMP/gw.conf" attack $a >>"$LAB_TMP/pt.out" 2>&1
done
tap_diag <"$LAB_TMP/pt.out"
n_ctl=0
for sock in gw dns; do
	for cmd in status open bindings; do
		# answered: a reply, or an error the node gives for its role
		# (a gateway opens no windows, a DNS node holds no bindings)
		timeout 60 "$CHOREOCTL" -s "$LAB_TMP/run/$sock.sock" "$cmd" \
			>"$LAB_TMP/ctl-$sock-$cmd.out" 2>&1 ||
			grep -q '^error: a gateway opens no windows\|^error: the bindings are in the gateways' \
				"$LAB_TMP/ctl-$sock-$cmd.out" && n_ctl=$((n_ctl + 1))
	done
done
grep -E '^(gateways|changes_received|peer |peers )' "$LAB_TMP"/ctl-*-status.out | tap_diag
for pid in "$dns_pid" "$gw_pid"; do
	kill -TERM "$pid"
	for i in $(seq 1 600); do lab_alive "$pid" || break; sleep 0.1; done
	lab_alive "$pid" && { dist_rc=1; lab_stop "$pid"; }
done
wait "$dns_pid" 2>/dev/null
dns_rc=$?
wait "$gw_pid" 2>/dev/null
gw_rc=$?
[ $dist_rc -eq 0 ] && echo "$mix" | grep -q '^querymix: udp 150/150 tcp 30/30 ' &&
	grep -q '^commits [1-9][0-9]* pending 0 failed 0 overload 0$' "$LAB_TMP/ctl-dns-status.out" &&
	grep -q '^changes_received frames [1-9]' "$LAB_TMP/ctl-gw-status.out" && [ $pt_rc -eq 0 ] &&
	[ "$(grep -c '; refused$' "$LAB_TMP/pt.out")" -eq 8 ] && [ $n_ctl -eq 6 ]
tap_check $? "the distributed mode under memcheck: every query answered, every commit acknowledged, a peertool session applied, 8 attacks refused, 6 control commands answered"
vg_summary "$LAB_TMP/vg-gw.log"
vg_clean "$LAB_TMP/vg-gw.log" "$gw_rc" && grep -q stopping "$LAB_TMP/choreod-gw.log"
tap_check $? "a gateway (role gateway) through links, attacks and SIGTERM: no memcheck error, no definite or indirect leak"
vg_summary "$LAB_TMP/vg-dns.log"
vg_clean "$LAB_TMP/vg-dns.log" "$dns_rc" && grep -q stopping "$LAB_TMP/choreod-dns.log"
tap_check $? "a DNS node (role dns) through the workload and SIGTERM: no memcheck error, no definite or indirect leak"

# ---- the controller: a controller, two gateways and a DNS node -----------------------
# The controller, gateway 1 (its node_ctl side and its NFLOG reader) and the
# DNS node (node_ctl, ASSIGN applied to its rotor) under memcheck; gateway 2
# plain. A bridge joins them (as in distlab.sh); gateway 1 routes a client
# network to the server. The controller also knows a second DNS node that
# never runs: the operator forgets it, so the one DNS node gets block 0 of
# two (a /26 of the /25) and all of max_open once the start-up hold is over
# (window + grace + 41 s after its first join). Then: queries answered from
# that block, clients through gateway 1 whose bindings the controller relays
# to gateway 2 (relaylag.py), choreoctl status on each, forget of an unknown
# node, a SIGTERM each (the DNS node sends LEAVE first). A throw-away build
# (tests/valgrind/plant_ctl.c) run as a controller during the hold must fail
# the gate: plant.c's defects are in netlink sends, which a controller never
# makes.
C_T0=$SECONDS
C_WINDOW=2 C_GRACE=1
C_HOLD_S=$((C_WINDOW + C_GRACE + 41))
C_TABLE1="${TABLE}_c1" C_TABLE2="${TABLE}_c2"
declare -A C_IP=([gw1]=192.0.2.1 [gw2]=192.0.2.2 [dns1]=192.0.2.53 [dns2]=192.0.2.54
	[ctl]=192.0.2.40 [planted]=192.0.2.41)
C_SERVER=192.0.2.10 C_HPOT=192.0.2.20
lab_netns CCORE ccore
lab_netns CGW1 cgw1
lab_netns CGW2 cgw2
lab_netns CDNS cdns
lab_netns CCLI ccli
for ns in "$CCORE" "$CGW1" "$CGW2" "$CDNS" "$CCLI"; do
	lab_in "$ns" sysctl -q -w net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.default.rp_filter=0 >/dev/null || lab_die "sysctl in $ns failed"
done
for ns in "$CGW1" "$CGW2"; do
	lab_in "$ns" sysctl -q -w net.ipv4.ip_forward=1 >/dev/null ||
		lab_die "forwarding on in $ns failed"
done
ip -n "$CCORE" link add br0 type bridge stp_state 0 forward_delay 0 || lab_die "bridge failed"
ip -n "$CCORE" link set br0 up || lab_die "bridge up failed"
for a in "$C_SERVER" "$C_HPOT" "${C_IP[ctl]}" "${C_IP[planted]}"; do
	lab_addr "$CCORE" br0 "$a/24"
done
# c_host NS NAME: a host on the bridge, the client network routed via gw1
c_host() {
	lab_veth "$1" eth0 "$CCORE" "$2"
	ip -n "$CCORE" link set "$2" master br0 || lab_die "bridge port $2 failed"
	lab_addr "$1" eth0 "${C_IP[$2]}/24"
}
c_host "$CGW1" gw1
c_host "$CGW2" gw2
c_host "$CDNS" dns1
for ns in "$CCORE" "$CGW2" "$CDNS"; do
	lab_route "$ns" 198.18.0.0/16 via "${C_IP[gw1]}"
	lab_route "$ns" 198.51.100.0/30 via "${C_IP[gw1]}"
done
lab_veth "$CCLI" eth0 "$CGW1" cli
lab_addr "$CCLI" eth0 198.51.100.2/30
lab_addr "$CGW1" cli 198.51.100.1/30
lab_route "$CCLI" 192.0.2.0/24 via 198.51.100.1
lab_route "$CCLI" 203.0.113.0/24 via 198.51.100.1
lab_route "$CGW1" 198.18.0.0/16 via 198.51.100.2
# AnyIP: any address of 198.18.0.0/16 can be a client's source
ip -n "$CCLI" route add local 198.18.0.0/16 dev lo || lab_die "AnyIP failed"
lab_spawn "$CCORE" "$LAB_TMP/c-server.out" python3 "$here/banner.py" --name server \
	--log "$LAB_TMP/c-server.conn" --ports 80
c_banner_pid=$LAB_LAST_PID
for i in $(seq 1 100); do
	grep -q '^ready' "$LAB_TMP/c-server.out" 2>/dev/null && break
	lab_alive "$c_banner_pid" || break
	sleep 0.1
done
grep -q '^ready' "$LAB_TMP/c-server.out" 2>/dev/null || tap_diag "banner.py did not start: $(cat "$LAB_TMP/c-server.out")"

c_services="[service www]
name = www.example.test
pool = 203.0.113.0/25
pool6 = 2001:db8:1::/64
server = $C_SERVER
server6 = 2001:db8:2::10
honeypot = $C_HPOT
honeypot6 = 2001:db8:2::20
window = $C_WINDOW
grace = $C_GRACE
binding = 600
max_open = 8
rotate = 0"
c_peer() { # NAME ROLE (from|address) ADDR
	printf '[peer %s]\nrole = %s\nkey = 1\n%s = %s\n' "$1" "$2" "$3" "$4"
}
# c_conf_ctl NAME ADDR: a controller's file (the planted one listens elsewhere)
c_conf_ctl() {
	printf '[daemon]\nrole = controller\nname = ctl\ncontrol = %s\npeer_listen = %s:5300\n' \
		"$LAB_TMP/run/c-$1.sock" "$2"
	printf '[key 1]\nfile = %s\n' "$LAB_TMP/key1"
	c_peer gw1 gateway from "${C_IP[gw1]}/32"
	c_peer gw2 gateway from "${C_IP[gw2]}/32"
	c_peer dns1 dns from "${C_IP[dns1]}/32"
	c_peer dns2 dns from "${C_IP[dns2]}/32"
	echo "$c_services"
}
c_conf_ctl ctl "${C_IP[ctl]}" >"$LAB_TMP/c-ctl.conf"
c_conf_ctl planted "${C_IP[planted]}" >"$LAB_TMP/c-planted.conf"
for g in gw1 gw2; do
	{
		printf '[daemon]\nrole = gateway\nname = %s\ncontrol = %s\ntable = %s\npeer_listen = %s:5300\n' \
			"$g" "$LAB_TMP/run/c-$g.sock" "$([ $g = gw1 ] && echo "$C_TABLE1" || echo "$C_TABLE2")" \
			"${C_IP[$g]}"
		printf '[key 1]\nfile = %s\n' "$LAB_TMP/key1"
		c_peer dns1 dns from "${C_IP[dns1]}/32"
		c_peer ctl controller address "${C_IP[ctl]}:5300"
		echo "$c_services"
	} >"$LAB_TMP/c-$g.conf"
done
{
	printf '[daemon]\nrole = dns\nname = dns1\ncontrol = %s\ncommit_timeout = 10000\n' \
		"$LAB_TMP/run/c-dns1.sock"
	printf '[dns]\nlisten = %s:53\nzone = example.test\nzonefile = example.test.zone\nttl = 1\nrate_limit = 0\n' \
		"${C_IP[dns1]}"
	printf '[key 1]\nfile = %s\n' "$LAB_TMP/key1"
	c_peer gw1 gateway address "${C_IP[gw1]}:5300"
	c_peer gw2 gateway address "${C_IP[gw2]}:5300"
	c_peer ctl controller address "${C_IP[ctl]}:5300"
	echo "$c_services"
} >"$LAB_TMP/c-dns1.conf"

cctl() { # NODE ARGS...: choreoctl on a node of this lab
	local n=$1; shift
	timeout 60 "$CHOREOCTL" -s "$LAB_TMP/run/c-$n.sock" "$@"
}
# c_wait_ctl NODE PID LIMIT_S: until its control socket answers
c_wait_ctl() {
	local deadline=$((SECONDS + $3))
	until cctl "$1" status >/dev/null 2>&1; do
		lab_alive "$2" && [ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.2
	done
}
# ctl_node NAME: the controller's line of a node
ctl_node() { cctl ctl status 2>/dev/null | awk -v n="$1" '$1 == "node" && $2 == n'; }
c_joined() { [ "$(ctl_node "$1" | awk '{ print $5 }')" = joined ]; }
c_poll() { # LIMIT_S CMD...
	local deadline=$((SECONDS + $1)); shift
	until "$@"; do
		[ "$SECONDS" -ge "$deadline" ] && return 1
		sleep 0.2
	done
}
# vg_errors LOG: each memcheck error record and leak record, as TAP comments
vg_errors() {
	sed 's/^==[0-9]*== //' "$1" | awk '
		/^(Invalid|Conditional|Use of uninit|Syscall param|Mismatched|Source and dest)/ ||
		/are (definitely|indirectly) lost/ { on = 1; n++ }
		on && n <= 6 { print }
		/^$/ { on = 0 }' | head -n 120 | tap_diag
}
# vg_figures NAME LOG: errors, leaks, allocs and frees, one line
vg_figures() {
	awk -v n="$1" '
		{ gsub(/,/, "") }
		/ERROR SUMMARY:/ { e = $4 }
		/definitely lost:/ { d = $4 " bytes in " $7 " blocks" }
		/indirectly lost:/ { x = $4 " bytes in " $7 " blocks" }
		/possibly lost:/ { p = $4 " bytes" }
		/total heap usage:/ { a = $5; f = $7; b = $9 }
		/All heap blocks were freed/ { d = x = p = "0" }
		END { printf "%s: errors %s; definitely lost %s; indirectly lost %s; possibly lost %s; %s allocs, %s frees, %s bytes allocated\n",
			n, e, d, x, p, a, f, b }' "$2" | tap_diag
}

c_rc=0
lab_spawn "$CCORE" "$LAB_TMP/c-ctl.log" valgrind "${VG_OPTS[@]}" \
	--log-file="$LAB_TMP/vg-c-ctl.log" "$CHOREOD" -c "$LAB_TMP/c-ctl.conf"
c_ctl_pid=$LAB_LAST_PID
c_wait_ctl ctl "$c_ctl_pid" 120 || c_rc=1
# dns2 never runs: forgotten now, before dns1's first join starts the hold
cctl ctl forget dns2 >"$LAB_TMP/c-forget-dns2.out" 2>&1
c_forget_rc=$?
cctl ctl forget nosuch >"$LAB_TMP/c-forget-nosuch.out" 2>&1
c_nosuch_rc=$?
lab_spawn "$CGW1" "$LAB_TMP/c-gw1.log" valgrind "${VG_OPTS[@]}" \
	--log-file="$LAB_TMP/vg-c-gw1.log" "$CHOREOD" -c "$LAB_TMP/c-gw1.conf"
c_gw1_pid=$LAB_LAST_PID
lab_spawn "$CGW2" "$LAB_TMP/c-gw2.log" "$CHOREOD" -c "$LAB_TMP/c-gw2.conf"
c_gw2_pid=$LAB_LAST_PID
c_wait_ctl gw1 "$c_gw1_pid" 120 || c_rc=1
c_wait_ctl gw2 "$c_gw2_pid" 30 || c_rc=1
lab_spawn "$CDNS" "$LAB_TMP/c-dns1.log" valgrind "${VG_OPTS[@]}" \
	--log-file="$LAB_TMP/vg-c-dns1.log" "$CHOREOD" -c "$LAB_TMP/c-dns1.conf"
c_dns_pid=$LAB_LAST_PID
lab_wait_dns "$CCLI" "${C_IP[dns1]}" 53 120 "$c_dns_pid" || c_rc=1
c_all_joined() { c_joined gw1 && c_joined gw2 && c_joined dns1; }
c_poll 60 c_all_joined || c_rc=1
c_t_join=$SECONDS
tap_diag "controller lab: up and joined in $((SECONDS - C_T0)) s"
c_reported() { ctl_node gw1 | grep -q ' report: ' && ctl_node dns1 | grep -q ' report: '; }
c_poll 10 c_reported
cctl ctl status 2>&1 | grep -E '^(slices|node)' | cut -c1-200 | tap_diag
# during the hold: rotated names SERVFAIL, static ones answered
c_hold_www=$(lab_in "$CCLI" dig +tries=1 +time=5 "@${C_IP[dns1]}" www.example.test A |
	sed -n 's/.*status: \([A-Z]*\),.*/\1/p')
c_hold_mail=$(lab_in "$CCLI" dig +short +tries=1 +time=5 "@${C_IP[dns1]}" mail.example.test A)
cctl ctl status 2>/dev/null | grep -q '^slices www .* holding' && c_holding=1 || c_holding=0
[ $c_rc -eq 0 ] && [ "$(ctl_node gw1 | grep -c ' joins [1-9][0-9]* .* report: ')" = 1 ] &&
	[ "$(ctl_node dns1 | grep -c ' joins [1-9][0-9]* .* report: ')" = 1 ] && c_joined gw2 &&
	[ "$c_holding" = 1 ] && [ "$c_hold_www" = SERVFAIL ] && [ "$c_hold_mail" = 192.0.2.25 ] &&
	[ $c_forget_rc -eq 0 ] && grep -q '^forgotten: dns2' "$LAB_TMP/c-forget-dns2.out" &&
	[ $c_nosuch_rc -eq 1 ] &&
	grep -q '^error: nosuch is not a DNS node of this controller' "$LAB_TMP/c-forget-nosuch.out"
tap_check $? "controller, gw1 and dns1 under memcheck (gw2 plain): all three nodes join and report; during the hold www is $c_hold_www, a static name answered ($c_hold_mail); forget of a known absent DNS node done, of an unknown one an error (exit $c_nosuch_rc)"

# ---- the gate bites for a controller (during the hold) ----
PLANTED_CTL=$LAB_TMP/choreod-planted-ctl
c_objs=()
for f in "$root"/src/*.c; do
	c_objs+=("$root/build/obj/$(basename "${f%.c}").o")
done
c_pkgs="libknot libzscanner libnftnl libmnl libnetfilter_log libcrypto"
# shellcheck disable=SC2046,SC2086
${CC:-cc} -std=gnu11 -D_GNU_SOURCE -O0 -g -Wall -Wextra -Werror -I"$root/src" \
	$(pkg-config --cflags $c_pkgs) -Wl,--wrap=controller_get_stats -o "$PLANTED_CTL" \
	"${c_objs[@]}" "$root/tests/valgrind/plant_ctl.c" $(pkg-config --libs $c_pkgs) -pthread \
	>"$LAB_TMP/planted-ctl.build" 2>&1
c_build_rc=$?
tap_diag <"$LAB_TMP/planted-ctl.build"
c_pl_rc=-1
if [ $c_build_rc -eq 0 ]; then
	lab_spawn "$CCORE" "$LAB_TMP/c-planted.log" valgrind "${VG_OPTS[@]}" \
		--log-file="$LAB_TMP/vg-c-planted.log" "$PLANTED_CTL" -c "$LAB_TMP/c-planted.conf"
	c_pl_pid=$LAB_LAST_PID
	c_wait_ctl planted "$c_pl_pid" 120
	cctl planted status >/dev/null 2>&1
	kill -TERM "$c_pl_pid"
	for i in $(seq 1 600); do lab_alive "$c_pl_pid" || break; sleep 0.1; done
	lab_alive "$c_pl_pid" && lab_stop "$c_pl_pid"
	wait "$c_pl_pid" 2>/dev/null
	c_pl_rc=$?
	vg_summary "$LAB_TMP/vg-c-planted.log"
fi
[ "$c_pl_rc" -eq 99 ] && grep -q 'uninitialised' "$LAB_TMP/vg-c-planted.log" &&
	grep -qE 'definitely lost: [1-9]' "$LAB_TMP/vg-c-planted.log"
tap_check $? "a controller build with a planted leak and a planted unwritten stats field fails the gate (build exit $c_build_rc, valgrind exit $c_pl_rc)"

# ---- the hold ends: ASSIGN ----
# dns1 SLICE: "BLOCK SHARE EPOCH ACKED" of www, from the controller
c_slice() {
	ctl_node dns1 | awk '{ for (i = 1; i < NF; i++) { if ($i == "www" && $(i + 1) == "block") { b = $(i + 2); s = $(i + 4) }
		if ($i == "epoch") e = $(i + 1); if ($i == "acked") a = $(i + 1) } } END { print b, s, e, a }'
}
c_assigned() {
	local b e a
	read -r b _ e a <<<"$(c_slice)"
	[ "${b:--1}" -ge 0 ] && [ "${e:-0}" -gt 0 ] && [ "$e" = "$a" ] &&
		grep -q 'controller: \[service www\]: slice ' "$LAB_TMP/c-dns1.log"
}
c_poll $((C_HOLD_S + 60)) c_assigned
c_assign_s=$((SECONDS - c_t_join))
read -r c_block c_share c_epoch c_acked <<<"$(c_slice)"
c_slice4=$(sed -n 's/.*controller: \[service www\]: slice \([^,]*\),.*/\1/p' "$LAB_TMP/c-dns1.log" | tail -n 1)
tap_diag "dns1: $(grep 'controller: \[service www\]' "$LAB_TMP/c-dns1.log" | tail -n 1)"
tap_diag "dns1: $(cctl dns1 status 2>&1 | grep '^controller')"
c_ans=()
for i in $(seq 1 16); do
	c_ans+=("$(lab_in "$CCLI" dig +short +tries=1 +time=5 -b "198.18.30.$i" "@${C_IP[dns1]}" www.example.test A)")
done
for i in 1 2 3 4; do
	c_ans+=("$(lab_in "$CCLI" dig +short +tcp +tries=1 +time=5 -b "198.18.31.$i" "@${C_IP[dns1]}" www.example.test A)")
done
c_ans6=()
for i in 1 2 3 4; do
	c_ans6+=("$(lab_in "$CCLI" dig +short +tries=1 +time=5 -b "198.18.32.$i" "@${C_IP[dns1]}" www.example.test AAAA)")
done
c_in=$(python3 - "$c_slice4" "${c_block:--1}" "${c_ans[@]}" -- "${c_ans6[@]}" <<'PY'
import ipaddress, sys
s4, block, rest = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
i = rest.index("--")
v4, v6 = rest[:i], rest[i + 1:]
# block b of 1 bit: the /26 of 203.0.113.0/25 and the /65 of 2001:db8:1::/64
n4 = ipaddress.ip_network(s4) if s4 else None
n6 = list(ipaddress.ip_network("2001:db8:1::/64").subnets(1))[block] if block in (0, 1) else None
ok4 = sum(1 for a in v4 if n4 and a and ipaddress.ip_address(a) in n4)
ok6 = sum(1 for a in v6 if n6 and a and ipaddress.ip_address(a) in n6)
good = n4 is not None and n4 == list(ipaddress.ip_network("203.0.113.0/25").subnets(1))[block]
print(ok4, ok6, "slice_is_block" if good else "slice_not_block")
PY
)
tap_diag "answers: A ${c_ans[*]}; AAAA ${c_ans6[*]}; in the slice (A, AAAA): $c_in"
read -r c_in4 c_in6 c_sb <<<"$c_in"
# (the hold began at dns1's join, a little before all three were seen joined)
c_assigned && [ "$c_assign_s" -ge $((C_HOLD_S - 6)) ] && [ "$c_share" = 8 ] && [ "$c_in4" = 20 ] && [ "$c_in6" = 4 ] && [ "$c_sb" = slice_is_block ]
tap_check $? "the hold ended $c_assign_s s after the joins (D = $C_HOLD_S s): dns1 assigned block ${c_block:-?} ($c_slice4) share ${c_share:-?} epoch ${c_epoch:-?}, acknowledged (${c_acked:-?}); 16 UDP and 4 TCP A answers ($c_in4) and 4 AAAA ($c_in6) from that block"

# ---- bindings relayed gw1 -> controller -> gw2 ----
c_relay=$(timeout 240 python3 "$here/relaylag.py" --client-ns "$CCLI" --src-base 198.18.40.1 \
	--count 10 --dns "${C_IP[dns1]}" --monitor-ns "$CGW2" --table "$C_TABLE2" --wait 10 \
	2>"$LAB_TMP/c-relaylag.err")
tap_diag <"$LAB_TMP/c-relaylag.err"
# relaylag.py exits with its `nft monitor` still running (the thread that
# would end it is a daemon thread); it holds whatever stderr it was given.
# End it by its PID: in gw2's namespace, ours.
for pid in $(ip netns pids "$CGW2" 2>/dev/null); do
	[ "$pid" != "$c_gw2_pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = nft ] &&
		kill -TERM "$pid" 2>/dev/null
done
c_sum=$(tail -n 1 <<<"$c_relay")
grep -E '^(#|lost)' <<<"$c_relay" | head -n 5 | tap_diag
tap_diag "relay: $c_sum"
c_field() { awk -v f="$1" '{ for (i = 1; i < NF; i++) if ($i == f) { print $(i + 1); exit } }'; }
n_c_ctl=0
for n in ctl gw1 gw2 dns1; do
	cctl "$n" status >"$LAB_TMP/c-status-$n.out" 2>&1 && n_c_ctl=$((n_c_ctl + 1))
done
grep -hE '^(relay|node|controller)' "$LAB_TMP"/c-status-*.out | cut -c1-200 | tap_diag
c_learned_in=$(grep '^node gw1 ' "$LAB_TMP/c-status-ctl.out" | c_field learned_in)
c_relayed_out=$(grep '^node gw2 ' "$LAB_TMP/c-status-ctl.out" | c_field relayed_out)
c_sent=$(grep '^controller ' "$LAB_TMP/c-status-gw1.out" | c_field learned_sent)
c_chg=$(grep '^controller ' "$LAB_TMP/c-status-gw2.out" | c_field changes_in)
[ "$(c_field server <<<"$c_sum")" = 10 ] && [ "$(c_field relayed <<<"$c_sum")" = 10 ] &&
	[ "${c_sent:-0}" -ge 10 ] && [ "${c_learned_in:-0}" -ge 10 ] &&
	[ "${c_relayed_out:-0}" -ge 10 ] && [ "${c_chg:-0}" -ge 1 ] && [ $n_c_ctl = 4 ] &&
	grep -q '^controller joined .* assigns 1 ' "$LAB_TMP/c-status-dns1.out"
tap_check $? "10 clients through gw1: $(c_field server <<<"$c_sum") reach the server, $(c_field relayed <<<"$c_sum") bindings in gw2's table (p50 $(c_field p50_ms <<<"$c_sum") ms); gw1 learned_sent ${c_sent:-?}, controller learned_in ${c_learned_in:-?} relayed_out ${c_relayed_out:-?}, gw2 changes_in ${c_chg:-?}; status answered on $n_c_ctl of 4"

# ---- SIGTERM: dns1 (LEAVE), the controller, gw1; gw2 plain ----
c_stopped=1
c_term() { # PID: SIGTERM, bounded wait
	kill -TERM "$1"
	for i in $(seq 1 600); do lab_alive "$1" || break; sleep 0.1; done
	lab_alive "$1" && { c_stopped=0; lab_stop "$1"; }
	wait "$1" 2>/dev/null
}
c_term "$c_dns_pid"
c_dns1_rc=$?
c_poll 10 grep -q 'node dns1 left: its slices drain' "$LAB_TMP/c-ctl.log"
c_left=$?
c_term "$c_ctl_pid"
c_ctl_rc=$?
c_term "$c_gw1_pid"
c_gw1_rc=$?
lab_stop "$c_gw2_pid"
lab_stop "$c_banner_pid"
[ $c_stopped = 1 ] && [ $c_left = 0 ]
tap_check $? "SIGTERM stops dns1 (its LEAVE reached the controller), the controller and gw1 under memcheck (exit $c_dns1_rc, $c_ctl_rc, $c_gw1_rc)"
for n in ctl gw1 dns1; do
	vg_figures "$n" "$LAB_TMP/vg-c-$n.log"
done
for n in ctl:controller gw1:"gateway with a controller (node_ctl, NFLOG reader)" \
	dns1:"DNS node with a controller (node_ctl, ASSIGN)"; do
	rc_var="c_${n%%:*}_rc"
	vg_summary "$LAB_TMP/vg-c-${n%%:*}.log"
	vg_clean "$LAB_TMP/vg-c-${n%%:*}.log" "${!rc_var}" && grep -q stopping "$LAB_TMP/c-${n%%:*}.log"
	c_ok=$?
	[ $c_ok -eq 0 ] || vg_errors "$LAB_TMP/vg-c-${n%%:*}.log"
	tap_check $c_ok "the ${n#*:} through joins, reports, the hold, ASSIGN, relays and SIGTERM: no memcheck error, no definite or indirect leak"
done
tap_diag "the controller's part took $((SECONDS - C_T0)) s"

# ---- the gate bites ------------------------------------------------------------------
run_scenario "$PLANTED" planted
vg_summary "$SC_LOG"
[ "$SC_RC" -eq 99 ] && grep -q 'points to uninitialised byte' "$SC_LOG" &&
	grep -qE 'definitely lost: [1-9]' "$SC_LOG"
tap_check $? "a build with a planted leak and a planted uninitialised netlink send fails the gate (exit $SC_RC)"
tap_done
