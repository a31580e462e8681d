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

# ---- the gate bites ------------------------------------------------------------------
run_scenario "$PLANTED" planted
vg_summary "$SC_LOG"
[ "$SC_RC" -eq 99 ] && grep -q 'points to uninitialised byte' "$SC_LOG" &&
	grep -qE 'definitely lost: [1-9]' "$SC_LOG"
tap_check $? "a build with a planted leak and a planted uninitialised netlink send fails the gate (exit $SC_RC)"
tap_done
