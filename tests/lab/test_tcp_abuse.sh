#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# choreod's DNS over TCP against slow and greedy clients, in a network
# namespace: the rotated answers of one read are one commit; meanwhile
# clients that send a byte a second (or nothing), that open many
# connections from one source, and that pipeline 64 KiB of queries and never
# read are cut at tcp_deadline, tcp_per_source and tcp_output, while another
# source is answered over TCP and UDP every time; `choreoctl status` counts
# each. TAP output; exits non-zero if anything failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"

CHOREOD=${CHOREOD:-$root/build/choreod}
CHOREOCTL=${CHOREOCTL:-$root/build/choreoctl}
CHECK="$here/tcpcheck.py"
ABUSE="$here/tcpabuse.py"
SRV4=198.51.100.53
SRV6=2001:db8:53::53
HONEST=198.18.0.3          # another source than every abuser
SLOW=198.18.0.4
GREEDY=$LAB_CLIENT4        # 198.18.0.2
NOREAD=2001:db8:ffff::2    # and 2001:db8:ffff::3: one /64, one source
DEADLINE=2
PER_SOURCE=4
OUTPUT=2048               # tcp_output, small: the abusers reach it

command -v python3 >/dev/null || lab_die "python3 is missing"
[ -x "$CHOREOD" ] && [ -x "$CHOREOCTL" ] || lab_die "build first: make"

lab_init tcpabuse
lab_netns CLI cli
lab_netns SRV srv
lab_client_server "$CLI" "$SRV"
lab_addr "$SRV" lo $SRV4/32
lab_addr "$SRV" lo $SRV6/128
lab_addr "$CLI" cli0 $HONEST/24
lab_addr "$CLI" cli0 $SLOW/24
lab_addr "$CLI" cli0 2001:db8:ffff::3/64
sleep 2 # IPv6 duplicate address detection on the new addresses

cp "$root/tests/data/unit.zone" "$LAB_TMP/example.test.zone"
cat >"$LAB_TMP/choreo.conf" <<CONF
[daemon]
control = $LAB_TMP/run/control.sock
[dns]
listen = $SRV4:53, [$SRV6]:53
zone = example.test
zonefile = example.test.zone
ttl = 5
tcp_timeout = 10
tcp_clients = 16
tcp_deadline = $DEADLINE
tcp_per_source = $PER_SOURCE
tcp_output = $OUTPUT
[service www]
name = www.example.test
pool = 203.0.113.0/25
server = 192.0.2.10
honeypot = 192.0.2.20
max_open = 4
CONF

lab_spawn "$SRV" "$LAB_TMP/choreod.log" "$CHOREOD" -c "$LAB_TMP/choreo.conf"
PID=$LAB_LAST_PID
lab_wait_dns "$CLI" $SRV4 53 10 "$PID"
tap_check $? "choreod answers on $SRV4 (UDP and TCP)"
sock="$LAB_TMP/run/control.sock"
status() { "$CHOREOCTL" -s "$sock" status; }
# tcpfield NAME: that counter of the status's tcp line
tcpfield() {
	status | awk -v k="$1" '$1 == "tcp" { for (i = 2; i < NF; i++) if ($i == k) print $(i + 1) }'
}
commits() { status | awk '$1 == "commits" { print $2 }'; }

# ---- one read, one commit --------------------------------------------------------
# 20 rotated queries in one write (720 bytes: one segment, one read)
c0=$(commits)
out=$(lab_in "$CLI" python3 "$CHECK" pipeline $SRV4 53 20)
rc=$?
c1=$(commits)
[ $rc -eq 0 ] && [ $((c1 - c0)) -eq 1 ]
tap_check $? "20 rotated queries in one TCP write: one commit (commits $c0 -> $c1; $out)"

# ---- the abusers, and an honest client throughout ----------------------------------
lab_in "$CLI" python3 "$ABUSE" honest $HONEST $SRV4 53 11 20 >"$LAB_TMP/honest.out" 2>&1 &
honest=$!
LAB_PIDS+=($honest)
lab_in "$CLI" python3 "$ABUSE" slow $SLOW $SRV4 53 $PER_SOURCE 7 >"$LAB_TMP/slow.out" 2>&1 &
slow=$!
LAB_PIDS+=($slow)
lab_in "$CLI" python3 "$ABUSE" greedy $GREEDY $SRV4 53 12 4 >"$LAB_TMP/greedy.out" 2>&1 &
greedy4=$!
LAB_PIDS+=($greedy4)
lab_in "$CLI" python3 "$ABUSE" greedy "$NOREAD,2001:db8:ffff::3" $SRV6 53 6 4 \
	>"$LAB_TMP/greedy6.out" 2>&1 &
greedy6=$!
LAB_PIDS+=($greedy6)
sleep 1 # the greedy ones hold their slots: the /64's cap is full until they go
peak=0
(sleep 4; lab_in "$CLI" python3 "$ABUSE" noread $NOREAD $SRV6 53 2 64 6) \
	>"$LAB_TMP/noread.out" 2>&1 &
noread=$!
LAB_PIDS+=($noread)
for _ in $(seq 1 90); do
	lab_alive $noread || break
	q=$(tcpfield queued)
	[ "${q:-0}" -gt "$peak" ] && peak=$q
	sleep 0.1
done
for p in $slow $greedy4 $greedy6 $noread $honest; do wait "$p"; done
for f in honest slow greedy greedy6 noread; do tap_diag <"$LAB_TMP/$f.out"; done
status | grep -E '^(tcp|udp|commits)' | tap_diag

# honest: every query answered, over TCP and UDP
read -r ht hts hu hus < <(sed -nE 's|^honest: tcp ([0-9]+)/([0-9]+) udp ([0-9]+)/([0-9]+).*|\1 \2 \3 \4|p' \
	"$LAB_TMP/honest.out")
[ -n "${ht:-}" ] && [ "$ht" = "$hts" ] && [ "$hu" = "$hus" ] && [ "$hts" -ge 40 ]
tap_check $? "another source answered every time meanwhile: $(cat "$LAB_TMP/honest.out")"

# slow: every one closed, at the deadline (a tick of slack), not before
read -r sn sall smin smax < <(sed -nE 's|^slow: ([0-9]+)/([0-9]+) closed by choreod, after ([0-9.]+)-([0-9.]+) s|\1 \2 \3 \4|p' \
	"$LAB_TMP/slow.out")
[ -n "${sn:-}" ] && [ "$sn" = "$sall" ] &&
	awk -v a="$smin" -v b="$smax" -v d=$DEADLINE 'BEGIN { exit !(a >= d - 1.1 && b <= d + 1.6) }'
tap_check $? "a byte a second (and a silent client) cut at tcp_deadline=$DEADLINE s: $(cat "$LAB_TMP/slow.out")"
n=$(tcpfield slow)
[ "${n:-0}" -ge "$PER_SOURCE" ]
tap_check $? "status counts them: tcp slow $n"

# greedy: tcp_per_source of one source (an IPv4 address; an IPv6 /64) served
grep -q "^greedy: 12 connections from $GREEDY: $PER_SOURCE answered, $((12 - PER_SOURCE)) closed unanswered" \
	"$LAB_TMP/greedy.out"
tap_check $? "12 connections from one address: $PER_SOURCE served, the rest refused ($(cat "$LAB_TMP/greedy.out"))"
grep -q "^greedy: 6 connections from .*: $PER_SOURCE answered, 2 closed unanswered" "$LAB_TMP/greedy6.out"
tap_check $? "6 connections from two addresses of one /64: $PER_SOURCE served ($(cat "$LAB_TMP/greedy6.out"))"
n=$(tcpfield refused_source)
[ "${n:-0}" -ge $((12 - PER_SOURCE + 2)) ]
tap_check $? "status counts them: tcp refused_source $n"

# noread: answering paused at tcp_output, choreod holds at most that, the
# connections cut at the deadline after the client stopped taking answers
read -r rn rall rmax < <(sed -nE 's|^noread: ([0-9]+)/([0-9]+) closed by choreod, [0-9.]+-([0-9.]+) s after.*|\1 \2 \3|p' \
	"$LAB_TMP/noread.out")
[ -n "${rn:-}" ] && [ "$rn" = "$rall" ] &&
	awk -v b="$rmax" -v d=$DEADLINE 'BEGIN { exit !(b <= d + 1.6) }'
tap_check $? "64 KiB pipelined and never read: cut by tcp_deadline ($(cat "$LAB_TMP/noread.out"))"
paused=$(tcpfield paused) stalled=$(tcpfield stalled)
[ "${paused:-0}" -ge 1 ] && [ "${stalled:-0}" -ge 2 ]
tap_check $? "status counts them: tcp paused $paused stalled $stalled"
# 2 connections, each up to tcp_output and the one answer past it
[ "$peak" -le $((2 * (OUTPUT + 2 + 512))) ]
tap_check $? "answers held by choreod meanwhile at most 2 x tcp_output: peak queued $peak bytes"

n=$(tcpfield open)
[ "$n" = 0 ]
tap_check $? "no TCP connection left open (tcp open $n)"
lab_alive "$PID"
tap_check $? "choreod still running"
kill -TERM "$PID"
for _ in $(seq 50); do lab_alive "$PID" || break; sleep 0.1; done
! lab_alive "$PID"
tap_check $? "SIGTERM stops choreod"
tap_diag <"$LAB_TMP/choreod.log"
tap_done
