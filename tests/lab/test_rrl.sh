#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Response rate limiting (src/rrl.c; choreo.conf(5) rate_limit) against the
# real daemon, in the gateway lab, with rate_limit 20, slip 2, the
# resolver (Unbound's address) at 100/s:
#   a  a source flooding rotated queries at 10 x the rate for 2 s gets at
#      most rate x (seconds + 1) answers, and about one limited query in 2
#      back as an empty TC=1 reply; choreoctl status counts the same
#   b  its limited queries opened no window: the open set holds no more
#      addresses than the answers it was given, and the rotor counted no
#      more answers
#   c  another client, in another /24, asking during a flood is answered
#      every time
#   d  the resolver's address gets its own, higher rate
#   e  dig from the flooding /24 gets a TC slip, retries over TCP and is
#      answered there (TCP is not limited)
# TAP output; exits non-zero if anything failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/gwlab.sh"

RATE=20 SLIP=2 RES_RATE=100

gwlab_init rrl
gwlab_up
lab_log "lab up in $SECONDS s"

# The flooder: COUNT queries for the rotated name from SRC, paced over
# SECONDS, from one socket; replies read as they come. Prints "sent N
# answered A tc T other O seconds S" (answered: with records; tc: TC set
# and no records).
cat >"$LAB_TMP/flood.py" <<'PY'
import socket, struct, sys, time, selectors
src, server, count, dur = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
def q(i):
    name = b"".join(bytes([len(l)]) + l.encode() for l in "www.example.test".split(".")) + b"\0"
    return struct.pack("!HHHHHH", i & 0xFFFF, 0, 1, 0, 0, 0) + name + struct.pack("!HH", 1, 1)
fam = socket.AF_INET6 if ":" in server else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.bind((src, 0)); s.connect((server, 53)); s.setblocking(False)
sel = selectors.DefaultSelector(); sel.register(s, selectors.EVENT_READ)
got = {"answered": 0, "tc": 0, "other": 0}
def drain(wait):
    for _ in sel.select(wait):
        for _ in range(256):
            try:
                m = s.recv(4096)
            except BlockingIOError:
                return
            if len(m) < 12:
                got["other"] += 1; continue
            flags, an = struct.unpack("!H", m[2:4])[0], struct.unpack("!H", m[6:8])[0]
            if an > 0 and not flags & 0x0200:
                got["answered"] += 1
            elif flags & 0x0200 and an == 0:
                got["tc"] += 1
            else:
                got["other"] += 1
start = time.monotonic(); sent = 0
for i in range(count):
    due = start + dur * i / count
    while time.monotonic() < due:
        drain(max(0.0, due - time.monotonic()))
    s.send(q(i)); sent += 1
secs = time.monotonic() - start
end = time.monotonic() + 1
while time.monotonic() < end:
    drain(0.1)
print(f"sent {sent} answered {got['answered']} tc {got['tc']} other {got['other']} seconds {secs:.2f}")
PY
flood() { # SRC COUNT SECONDS
	ip netns exec "$(gw_ns_of "$1")" "$GW_PY" "$LAB_TMP/flood.py" "$1" "$GW_DNS4" "$2" "$3"
}
field() { gw_value "$@"; }
rotor_answers() { gw_ctl status | awk '/pool 203\.0\.113\.0\/25/ { for (i = 1; i < NF; i++) if ($i == "answers") { print $(i + 1); exit } }'; }
rl() { gw_ctl status | awk -v f="$1" '$1 == "rate_limit" { for (i = 2; i < NF; i++) if ($i == f) { print $(i + 1); exit } }'; }

gwlab_conf "$LAB_TMP/rrl.conf" ttl=5 max_open=120 rate_limit=$RATE \
	rate_limit_slip=$SLIP rate_limit_resolvers="$GW_RES4" \
	rate_limit_resolver_rate=$RES_RATE
gwlab_choreod_start "$LAB_TMP/rrl.conf" || lab_die "choreod did not start"
gw_ctl status | grep '^rate_limit' | tap_diag
# lab_wait_dns asked from the lab's client namespace; let that bucket refill
sleep 1.2
a0=$(rotor_answers)

# ---- a, b: one source floods at 10 x the rate -------------------------------------
out=$(flood 198.18.7.1 400 2)
tap_diag "flood 198.18.7.1: $out"
sent=$(field sent <<<"$out") ans=$(field answered <<<"$out") tc=$(field tc <<<"$out")
secs=$(field seconds <<<"$out")
bound=$(awk -v r=$RATE -v s="$secs" 'BEGIN { printf "%d", r * (s + 1) + 1 }')
low=$(awk -v r=$RATE -v s="$secs" 'BEGIN { printf "%d", r * s * 0.8 }')
[ "$ans" -le "$bound" ] && [ "$ans" -ge "$low" ]
tap_check $? "a: a flood of $sent queries in $secs s: $ans answered, within $low..$bound (rate $RATE/s, burst $RATE)"
limited=$((sent - ans))
awk -v t="$tc" -v l="$limited" 'BEGIN { exit !(l > 0 && t >= 0.4 * l && t <= 0.6 * l) }'
tap_check $? "a: $tc of its $limited limited queries slipped (TC=1, no records): about 1 in $SLIP"
s_lim=$(rl limited) s_slip=$(rl slipped) s_drop=$(rl dropped)
tap_diag "status: rate_limit limited $s_lim slipped $s_slip dropped $s_drop"
[ "$s_lim" -eq $((s_slip + s_drop)) ] && [ "$s_slip" -eq $((s_lim / SLIP)) ] &&
	[ "$s_lim" -ge $((limited - 2)) ] && [ "$s_lim" -le "$limited" ]
tap_check $? "a: choreoctl status counts them: limited $s_lim = slipped $s_slip + dropped $s_drop"
open=$(gw_set_count www_open4) a1=$(rotor_answers)
tap_diag "open set: $open addresses; rotor answers: $((a1 - a0))"
[ "$open" -le "$ans" ] && [ $((a1 - a0)) -le "$ans" ] && [ $((a1 - a0)) -ge $((ans - 2)) ]
tap_check $? "b: the limited queries opened no window: $open open, $((a1 - a0)) rotated answers made for $ans answered"

# ---- e, c: during a flood, dig from its /24; another /24 asks -----------------------
flood 198.18.7.1 1600 8 >"$LAB_TMP/flood.c" &
fpid=$!
sleep 0.5
tcp_ok=0
for t in $(seq 1 8); do
	d=$(gw_dig 198.18.7.2 "$GW_DNS4" +tries=1 +time=1 www.example.test A 2>&1)
	if grep -q "Truncated, retrying in TCP" <<<"$d" &&
		grep -qE '^www\.example\.test\.[[:space:]].*IN[[:space:]]+A[[:space:]]+203\.0\.113\.' <<<"$d"; then
		tcp_ok=1
		break
	fi
done
okc=0
for i in $(seq 1 10); do
	r=$(gw_ask "198.18.9.$i" "$GW_DNS4")
	[[ $r == "NOERROR 203.0.113."* ]] && okc=$((okc + 1))
	sleep 0.1
done
wait $fpid
tap_diag "flood 198.18.7.1 meanwhile: $(cat "$LAB_TMP/flood.c")"
[ "$tcp_ok" -eq 1 ]
tap_check $? "e: dig from the flooding /24 got a TC slip, retried over TCP and was answered (dig $t)"
[ "$okc" -eq 10 ]
tap_check $? "c: another /24 asking during the flood: $okc of 10 answered"

# ---- d: the resolver's own rate ----------------------------------------------------
out=$(flood "$GW_RES4" 600 1)
tap_diag "flood $GW_RES4 (a resolver): $out"
ans=$(field answered <<<"$out") secs=$(field seconds <<<"$out")
bound=$(awk -v r=$RES_RATE -v s="$secs" 'BEGIN { printf "%d", r * (s + 1) + 1 }')
low=$(awk -v r=$RES_RATE -v s="$secs" 'BEGIN { printf "%d", r * s * 0.8 }')
[ "$ans" -le "$bound" ] && [ "$ans" -ge "$low" ] && [ "$ans" -gt $((RATE * 2 + 1)) ]
tap_check $? "d: the resolver $GW_RES4: $ans answered, within $low..$bound (its rate $RES_RATE/s, not $RATE)"

gw_ctl status | grep '^rate_limit' | tap_diag
lab_log "done in $SECONDS s"
tap_done
