#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The memory gate: choreod under Valgrind memcheck, in a network namespace,
# through a mixed workload (UDP and TCP, static, rotated and ECS queries,
# malformed packets), the control commands and a SIGTERM; `choreod -t` on a
# good and a broken configuration. Any memcheck error, or any definite or
# indirect leak, fails the test. The gate is then shown to bite: a test-only
# build of choreod (tests/valgrind/plant.c: one leaked buffer and one netlink
# send with uninitialised bytes) must fail it.
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
	grep -q '^commits [1-9][0-9]* pending 0 failed 0$' "$LAB_TMP/ctl-dns-status.out" &&
	grep -q '^changes_received frames [1-9]' "$LAB_TMP/ctl-gw-status.out" && [ $pt_rc -eq 0 ] &&
	[ "$(grep -c '; refused$' "$LAB_TMP/pt.out")" -eq 8 ] && [ $n_ctl -eq 6 ]
tap_check $? "the distributed mode under memcheck: every query answered, every commit acknowledged, a peertool session applied, 8 attacks refused, 6 control commands answered"
vg_summary "$LAB_TMP/vg-gw.log"
vg_clean "$LAB_TMP/vg-gw.log" "$gw_rc" && grep -q stopping "$LAB_TMP/choreod-gw.log"
tap_check $? "a gateway (role gateway) through links, attacks and SIGTERM: no memcheck error, no definite or indirect leak"
vg_summary "$LAB_TMP/vg-dns.log"
vg_clean "$LAB_TMP/vg-dns.log" "$dns_rc" && grep -q stopping "$LAB_TMP/choreod-dns.log"
tap_check $? "a DNS node (role dns) through the workload and SIGTERM: no memcheck error, no definite or indirect leak"

# ---- the gate bites ------------------------------------------------------------------
run_scenario "$PLANTED" planted
vg_summary "$SC_LOG"
[ "$SC_RC" -eq 99 ] && grep -q 'points to uninitialised byte' "$SC_LOG" &&
	grep -qE 'definitely lost: [1-9]' "$SC_LOG"
tap_check $? "a build with a planted leak and a planted uninitialised netlink send fails the gate (exit $SC_RC)"
tap_done
