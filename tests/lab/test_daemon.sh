#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# choreod as a daemon, in a network namespace: `choreod -t` on valid and
# invalid files, TCP per RFC 7766 (pipelining, idle timeout, connection cap),
# a UDP burst answered in full (recvmmsg/sendmmsg batches), the control
# socket (mode 0600, choreoctl status/open, bad commands), a clean stop.
# TAP output; exits non-zero if anything failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"

CHOREOD=${CHOREOD:-$root/build/choreod}
CHOREOCTL=${CHOREOCTL:-$root/build/choreoctl}
CHECK="$here/tcpcheck.py"
SRV4=198.51.100.53
SRV6=2001:db8:53::53

for tool in dig python3; do
	command -v "$tool" >/dev/null || lab_die "$tool is missing"
done
[ -x "$CHOREOD" ] && [ -x "$CHOREOCTL" ] || lab_die "build first: make"

lab_init daemon
lab_netns CLI cli
lab_netns SRV srv
lab_client_server "$CLI" "$SRV"
lab_addr "$SRV" lo $SRV4/32
lab_addr "$SRV" lo $SRV6/128

cp "$root/tests/data/unit.zone" "$LAB_TMP/example.test.zone"
cat >"$LAB_TMP/choreo.conf" <<CONF
[daemon]
control = $LAB_TMP/run/control.sock
[dns]
listen = $SRV4:53, [$SRV6]:53
zone = example.test
zonefile = example.test.zone
ttl = 5
rate_limit = 0
tcp_timeout = 2
tcp_clients = 3
[service www]
name = www.example.test
pool = 203.0.113.0/25
server = 192.0.2.10
honeypot = 192.0.2.20
max_open = 4
CONF

# ---- choreod -t --------------------------------------------------------------
out=$("$CHOREOD" -t -c "$LAB_TMP/choreo.conf" 2>&1)
tap_check $? "choreod -t accepts a valid configuration and zone"
echo "$out" | tap_diag

sed -e 's/^ttl = 5/ttl = five/' -e 's/^max_open = 4/max_open = 4\nbogus = 1/' \
	"$LAB_TMP/choreo.conf" >"$LAB_TMP/bad.conf"
out=$("$CHOREOD" -t -c "$LAB_TMP/bad.conf" 2>&1)
rc=$?
echo "$out" | tap_diag
l_ttl=$(grep -n '^ttl = five' "$LAB_TMP/bad.conf" | cut -d: -f1)
l_bogus=$(grep -n '^bogus' "$LAB_TMP/bad.conf" | cut -d: -f1)
[ $rc -eq 1 ] && echo "$out" | grep -q "bad.conf:$l_ttl: key 'ttl' value 'five': expected" &&
	echo "$out" | grep -q "bad.conf:$l_bogus: unknown key 'bogus'"
tap_check $? "choreod -t lists every configuration error with its line, exit 1"

# syntax errors: each one, with its line
{ cat "$LAB_TMP/example.test.zone"; printf 'broken1 IN A 300.1.2.3\nbroken2 IN MX x\n'; } \
	>"$LAB_TMP/bad.zone"
sed 's/^zonefile = .*/zonefile = bad.zone/' "$LAB_TMP/choreo.conf" >"$LAB_TMP/badzone.conf"
out=$("$CHOREOD" -t -c "$LAB_TMP/badzone.conf" 2>&1)
rc=$?
echo "$out" | tap_diag
n=$(wc -l <"$LAB_TMP/bad.zone")
[ $rc -eq 1 ] && echo "$out" | grep -q "bad.zone:$((n - 1)):" && echo "$out" | grep -q "bad.zone:$n:"
tap_check $? "choreod -t reports every zone syntax error with its line"
# semantic errors: the rotor's names are not the zone file's
{ cat "$LAB_TMP/example.test.zone"; printf 'www A 192.0.2.1\n'; } >"$LAB_TMP/bad.zone"
out=$("$CHOREOD" -t -c "$LAB_TMP/badzone.conf" 2>&1)
rc=$?
echo "$out" | tap_diag
n=$(wc -l <"$LAB_TMP/bad.zone")
[ $rc -eq 1 ] && echo "$out" | grep -q "bad.zone:$n: .*protected by \[service www\]"
tap_check $? "choreod -t refuses an A record at a protected name, with its line"

# Startup refusals that depend only on the files: `choreod -t` reports each
# one with its line, and a start on the same file refuses with the same words.
long=$LAB_TMP/$(printf 'x%.0s' $(seq 1 $((108 - ${#LAB_TMP} - 1))))
refuse_sed=(
	"s/^listen = .*/listen = 0.0.0.0:53/"
	"s/^listen = .*/listen = $SRV4:53, [::]:53/"
	"s|^control = .*|control = $long|"
)
refuse_msg=(
	"key 'listen' value '0.0.0.0:53': expected a specific address"
	"key 'listen' value '\\[::\\]:53': expected a specific address"
	"key 'control' value '.*': expected a path of 1-107 characters"
)
for i in "${!refuse_sed[@]}"; do
	sed "${refuse_sed[$i]}" "$LAB_TMP/choreo.conf" >"$LAB_TMP/refused.conf"
	want=${refuse_msg[$i]}
	t_out=$("$CHOREOD" -t -c "$LAB_TMP/refused.conf" 2>&1); t_rc=$?
	s_out=$(lab_in "$SRV" timeout 10 "$CHOREOD" -c "$LAB_TMP/refused.conf" 2>&1); s_rc=$?
	echo "$t_out" | tap_diag
	[ $t_rc -eq 1 ] && [ $s_rc -eq 1 ] &&
		echo "$t_out" | grep -q "refused.conf:[0-9]*: $want" &&
		echo "$s_out" | grep -q "refused.conf:[0-9]*: $want"
	tap_check $? "choreod -t and a start refuse the same file with the same message: ${want%%\':*}'"
done

# ---- start ---------------------------------------------------------------------
lab_spawn "$SRV" "$LAB_TMP/choreod.log" "$CHOREOD" -c "$LAB_TMP/choreo.conf"
PID=$LAB_LAST_PID
lab_wait_dns "$CLI" $SRV4 53 10 "$PID"
tap_check $? "choreod answers on $SRV4 (UDP and TCP)"

ans=$(lab_in "$CLI" dig +short +norec @$SRV6 www.example.test A)
case "$ans" in 203.0.113.*) true ;; *) false ;; esac
tap_check $? "rotated answer over IPv6 transport: $ans"

# ---- TCP (RFC 7766) -------------------------------------------------------------
out=$(lab_in "$CLI" python3 "$CHECK" pipeline $SRV4 53 20)
tap_check $? "TCP: 20 pipelined queries in one write, all answered in order ($out)"
out=$(lab_in "$CLI" python3 "$CHECK" idle $SRV4 53 2)
tap_check $? "TCP: idle connection closed after tcp_timeout ($out)"
out=$(lab_in "$CLI" python3 "$CHECK" cap $SRV4 53 3)
tap_check $? "TCP: tcp_clients connections served, one more refused ($out)"

# ---- UDP burst ------------------------------------------------------------------
out=$(lab_in "$CLI" python3 "$CHECK" udpburst $SRV4 53 2000)
tap_check $? "UDP: a burst of 2000 queries all answered ($out)"

# ---- control socket ------------------------------------------------------------
sock="$LAB_TMP/run/control.sock"
mode=$(stat -c %a "$sock" 2>/dev/null)
[ "$mode" = 600 ]
tap_check $? "control socket is mode 0600 (got $mode)"
out=$("$CHOREOCTL" -s "$sock" status 2>&1)
rc=$?
echo "$out" | tap_diag
[ $rc -eq 0 ] && echo "$out" | grep -qE '^  pool 203.0.113.0/25 answers [1-9]' &&
	echo "$out" | grep -qE 'open_now [1-4]$'
tap_check $? "choreoctl status shows the service's answers and open addresses"
n=$("$CHOREOCTL" -s "$sock" open | grep -c '^  203\.0\.113\.')
[ "$n" -ge 1 ] && [ "$n" -le 4 ]
tap_check $? "choreoctl open lists between 1 and max_open=4 addresses (got $n)"
"$CHOREOCTL" -s "$sock" 'rm -rf /' >/dev/null 2>&1
[ $? -eq 1 ]
tap_check $? "choreoctl: an unknown command is an error"
out=$(python3 - "$sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b"st\x00tus\xff" * 100 + b"\n")
print(s.recv(4096).decode(errors="replace").strip())
PY
)
echo "$out" | grep -q '^error:'
tap_check $? "control socket: binary junk gets an error ($out)"
lab_alive "$PID"
tap_check $? "choreod still running after the junk"

# ---- a control client that dribbles a byte a second -------------------------------
# Four such clients hold control slots while `choreoctl status` runs in a
# loop: DNS is answered throughout, every status is answered, and choreod
# drops each dribbler at its deadline (5 s) instead of waiting for it.
STRESS="$here/ctlstress.py"
for i in 1 2 3 4; do
	python3 "$STRESS" dribble "$sock" 9 >"$LAB_TMP/dribble$i.out" 2>&1 &
	LAB_PIDS+=($!)
	dribblers+=($!)
done
lab_in "$CLI" python3 "$STRESS" dns $SRV4 53 7 100 >"$LAB_TMP/dns-during.out" 2>&1 &
dnspid=$!
LAB_PIDS+=($dnspid)
ok_status=0 n_status=0
end=$((SECONDS + 7))
while [ $SECONDS -lt $end ]; do
	n_status=$((n_status + 1))
	timeout 5 "$CHOREOCTL" -s "$sock" status 2>/dev/null | grep -q '^dns queries' &&
		ok_status=$((ok_status + 1))
	sleep 0.1
done
wait $dnspid
dns_rc=$?
for p in "${dribblers[@]}"; do wait "$p"; done
tap_diag <"$LAB_TMP/dns-during.out"
cat "$LAB_TMP"/dribble*.out | sort | uniq -c | tap_diag
[ $dns_rc -eq 0 ]
tap_check $? "DNS answered throughout while 4 clients dribble a byte a second into the control socket and status runs in a loop"
[ "$ok_status" -eq "$n_status" ] && [ "$n_status" -ge 10 ]
tap_check $? "every choreoctl status answered meanwhile ($ok_status of $n_status)"
[ "$(cat "$LAB_TMP"/dribble*.out | grep -c 'closed by choreod after [56]\.')" -eq 4 ]
tap_check $? "each dribbling client is dropped at its 5 s deadline"
out=$(python3 - "$sock" <<'PY'
import socket, sys, time
held = []
for i in range(16):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    held.append(s)
time.sleep(0.3)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.settimeout(2)
print(s.recv(4096).decode(errors="replace").strip())
PY
)
echo "$out" | grep -q '^error: too many control clients'
tap_check $? "a 17th control client at once is refused with an error ($out)"
lab_alive "$PID"
tap_check $? "choreod still running after the control socket stress"

# ---- stop -------------------------------------------------------------------------
kill -TERM "$PID"
for _ in $(seq 50); do lab_alive "$PID" || break; sleep 0.1; done
! lab_alive "$PID" && [ ! -e "$sock" ]
tap_check $? "SIGTERM stops choreod cleanly and removes the control socket"
tap_diag <"$LAB_TMP/choreod.log"
tap_done
