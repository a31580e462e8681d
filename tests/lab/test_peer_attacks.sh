#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The peer protocol (docs/protocol.md) against a real choreod gateway: every
# attack of peertool.py is refused, nothing of it reaches the kernel, and
# choreod counts it under the reason it is. Two namespaces: "gw" runs
# choreod with role gateway (its own table), "atk" is the DNS nodes and the
# attacker (peertool.py), with addresses inside dns1's and dns2's 'from'
# and one outside both.
#
#   a  valid sessions: dns1 with key 1 and with key 2 (rotation), dns2 with
#      key 2; each ACK 0 and its elements in the kernel's sets
#   b  each attack: peertool says "refused"; the elements of every set of
#      the table are the same before and after (expiry timers ignored), and
#      so is changes_received applied; the matching reason counter of
#      `choreoctl status` went up by one
#   c  CHANGES with another digest: ACK -116 (ESTALE), stale +1, nothing
#      applied
#   d  'from': a connection from outside every DNS peer's 'from' is closed
#      at accept (refused_from)
#   e  slowloris from one source: 4 pending, the rest refused_source, and
#      another allowed source still completes a handshake and a commit;
#      from many sources: 64 pending, the rest refused_full
#   f  after all that, a valid session still works, same choreod PID
#
# TAP output; exits non-zero if anything failed. LAB_KEEP=1 keeps the temp
# dir (configs, choreod's log, peertool's output).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"

CHOREOD=${CHOREOD:-$root/build/choreod}
CHOREOCTL=${CHOREOCTL:-$root/build/choreoctl}
PEERTOOL=$here/peertool.py

for tool in nft python3 timeout; do
	command -v "$tool" >/dev/null || lab_die "$tool is missing"
done
[ -x "$CHOREOD" ] && [ -x "$CHOREOCTL" ] ||
	lab_die "build first: make build/choreod build/choreoctl"

lab_init atk
# (a build may replace build/ while the test runs)
mkdir -p "$LAB_TMP/bin" "$LAB_TMP/run"
cp "$CHOREOD" "$CHOREOCTL" "$LAB_TMP/bin/" || lab_die "cannot copy the binaries"
CHOREOD=$LAB_TMP/bin/choreod
CHOREOCTL=$LAB_TMP/bin/choreoctl
TABLE="choreo_atk_$$"
TABLE=${TABLE:0:31}
SOCK=$LAB_TMP/run/control.sock

# Addresses: the gateway .1; dns1's 'from' is .0/26 (the attacker's .2,
# the flood's .2-.19); dns2's is .64/28 (.66); .200 is outside both.
NET=198.18.40
GW4=$NET.1
SRC1=$NET.2        # dns1, and the attacker posing as dns1
SRC1B=$NET.3       # dns1 too: the source the flood leaves alone
SRC2=$NET.66       # dns2
OUTSIDE=$NET.200   # in no 'from'
PORT=5300

lab_netns GW gw
lab_netns ATK atk
lab_veth "$GW" e0 "$ATK" e0
lab_addr "$GW" e0 "$GW4/24"
for i in $(seq 2 19) 66 200; do
	lab_addr "$ATK" e0 "$NET.$i/24"
done

# Two keys (rotation: dns1 may use either, dns2 only the second).
head -c 48 /dev/urandom | base64 >"$LAB_TMP/key1"
head -c 40 /dev/urandom | base64 >"$LAB_TMP/key2"
head -c 48 /dev/urandom | base64 >"$LAB_TMP/key_other"
chmod 600 "$LAB_TMP"/key*

cat >"$LAB_TMP/gw.conf" <<CONF
[daemon]
control = $SOCK
table = $TABLE
role = gateway
name = gw1
peer_listen = $GW4:$PORT
[key 1]
file = $LAB_TMP/key1
[key 2]
file = $LAB_TMP/key2
[service www]
name = www.example.test
pool = 203.0.113.0/25
pool6 = 2001:db8:113::/64
server = 192.0.2.10
honeypot = 192.0.2.20
server6 = 2001:db8:10::10
honeypot6 = 2001:db8:10::20
max_open = 8
window = 600
[service mail]
name = mail.example.test
pool = 198.51.100.0/25
server = 192.0.2.11
honeypot = 192.0.2.21
window = 600
[peer dns1]
role = dns
key = 1, 2
from = $NET.0/26
[peer dns2]
role = dns
key = 2
from = $NET.64/28
CONF

# ---- helpers -------------------------------------------------------------------

# (choreoctl has no timeout of its own: a hung choreod must not hang this)
ctl() { lab_in "$GW" timeout 5 "$CHOREOCTL" -s "$SOCK" "$@"; }

# counters ARRAY: the "peers" and "changes_received" lines of choreoctl
# status as NAME -> value (a reason never counted is absent: 0).
counters() {
	local -n _c=$1
	local k v
	_c=()
	while read -r k v; do
		_c[$k]=$v
	done < <(ctl status 2>/dev/null | awk '$1 == "peers" || $1 == "changes_received" {
		for (i = 2; i < NF; i += 2) print $i, $(i + 1) }')
}

# counter NAME: one counter now (0 when absent).
counter() {
	local -A _one
	counters _one
	echo "${_one[$1]:-0}"
}

# connects PEER: authenticated connections of that [peer] so far.
connects() {
	ctl status 2>/dev/null | awk -v p="$1" '$1 == "peer" && $2 == p {
		for (i = 3; i < NF; i++) if ($i == "connects") print $(i + 1) }'
}

# wait_counter NAME VALUE TIMEOUT_S: until the counter is at least VALUE
# (bounded: TIMEOUT_S seconds).
wait_counter() {
	local name=$1 want=$2 deadline=$((SECONDS + $3))
	while [ "$(counter "$name")" -lt "$want" ]; do
		[ "$SECONDS" -ge "$deadline" ] && return 1
		sleep 0.05
	done
	return 0
}

# snap: every element of every set and map of the table, one "SET VALUE"
# line each, sorted; timeouts and expiry timers left out; an empty set
# still shows as "SET (set)".
snap() {
	lab_in "$GW" nft -j list table inet "$TABLE" | python3 -c '
import json, sys
out = []
for o in json.load(sys.stdin)["nftables"]:
    s = o.get("set") or o.get("map")
    if not s:
        continue
    out.append(s["name"] + " (set)")
    for e in s.get("elem", []):
        if isinstance(e, dict) and "elem" in e:
            e = e["elem"].get("val")
        out.append(s["name"] + " " + json.dumps(e, sort_keys=True, separators=(",", ":")))
print("\n".join(sorted(out)))'
}

# has_elem SET VALUE: the set holds that element now.
has_elem() { grep -qxF "$1 \"$2\"" <<<"$(snap)"; }

DIGEST=""
# pt ARGS...: peertool.py in the attacker's namespace, at the gateway,
# as dns1 with key 1 from $SRC1 unless ARGS say otherwise (later options
# win). Bounded: 40 s.
PT=()
pt() { lab_in "$ATK" "${PT[@]}" "$@"; }

GW_PID=""
declare -A C0 C1
S0="" S1=""

# before / after: counters and sets around one step. FRESH=1: nothing
# changed since the last "after" (an attack then starts from its numbers).
FRESH=0
before() { S0=$(snap); counters C0; }
after() { S1=$(snap); counters C1; FRESH=1; }
again() {
	local k
	[ "$FRESH" = 1 ] || { before; return; }
	S0=$S1
	C0=()
	for k in "${!C1[@]}"; do C0[$k]=${C1[$k]}; done
}
delta() { echo $(( ${C1[$1]:-0} - ${C0[$1]:-0} )); }

# sets_gained LINE...: the sets now are the ones before plus LINEs (and
# both snapshots are real: the table's sets are in them).
sets_gained() {
	local want
	grep -qx 'www_open4 (set)' <<<"$S0" && grep -qx 'www_open4 (set)' <<<"$S1" ||
		return 1
	want=$( { printf '%s\n' "$S0"; [ $# -gt 0 ] && printf '%s\n' "$@"; } | sort -u)
	[ "$want" = "$(sort -u <<<"$S1")" ]
}

sets_diff() { diff <(printf '%s\n' "$S0") <(printf '%s\n' "$S1") | tap_diag; }

# attack LABEL REASON APPLIED GAINED ARGS...: one peertool attack (ARGS are
# peertool's, after "attack"): refused; the sets the same as before but for
# GAINED (a set line, or ""); changes_received applied up by APPLIED; the
# reason counter REASON up by exactly one.
attack() {
	local label=$1 reason=$2 applied=$3 gained=$4 out rc ok what
	shift 4
	again
	out=$(pt attack "$@" 2>&1)
	rc=$?
	wait_counter "$reason" $(( ${C0[$reason]:-0} + 1 )) 3
	after
	tap_diag "$out"
	[ "$rc" -eq 0 ] && [[ $out == *"; refused" ]]
	tap_check $? "$label: refused (peertool's status $rc)"
	ok=0
	if [ -n "$gained" ]; then sets_gained "$gained"; else sets_gained; fi || ok=1
	[ "$(delta applied)" -eq "$applied" ] || ok=1
	what="the kernel's sets unchanged"
	[ -n "$gained" ] && what="the kernel's sets gained only the valid commit's element"
	tap_check $ok "$label: nothing applied ($what, applied +$(delta applied))"
	[ "$ok" -eq 0 ] || sets_diff
	[ "$(delta "$reason")" -eq 1 ]
	tap_check $? "$label: counted as $reason (+$(delta "$reason"))"
	[ "$(delta "$reason")" -eq 1 ] || tap_diag "peers: $(ctl status | grep '^peers')"
}

# ---- a: the gateway, and valid sessions ------------------------------------------

out=$("$CHOREOD" -t -c "$LAB_TMP/gw.conf" 2>&1)
tap_check $? "choreod -t accepts the gateway's configuration"
echo "$out" | tap_diag
DIGEST=$(python3 "$PEERTOOL" digest "$LAB_TMP/gw.conf" | awk '{ print $2 }')
PT=(timeout 40 python3 "$PEERTOOL" --host "$GW4" --port "$PORT"
	--key-file "$LAB_TMP/key1" --key-id 1 --name dns1 --source "$SRC1"
	--digest "$DIGEST" --timeout 3)

lab_spawn "$GW" "$LAB_TMP/choreod.log" "$CHOREOD" -c "$LAB_TMP/gw.conf"
GW_PID=$LAB_LAST_PID
deadline=$((SECONDS + 10))
until ctl status 2>/dev/null | grep -q '^peers '; do
	if ! lab_alive "$GW_PID" || [ "$SECONDS" -ge "$deadline" ]; then
		sed 's/^/#   /' "$LAB_TMP/choreod.log" >&2
		lab_die "choreod (gateway) did not start"
	fi
	sleep 0.1
done
status=$(ctl status)
echo "$status" | grep -E '^(role|peers|peer )' | tap_diag
grep -q "^role gateway node gw1 services_digest ${DIGEST:0:16}\$" <<<"$status"
tap_check $? "choreod runs as gateway gw1; its services digest is peertool's (${DIGEST:0:16})"

before
out=$(pt send "open 203.0.113.7 600000" "bind 198.18.1.1 203.0.113.8 600000" \
	"scoped 198.18.7.0/24 203.0.113.9 600000" "open 2001:db8:113::7 600000" \
	"open 198.51.100.7 600000 svc=1" 2>&1)
rc=$?
after
echo "$out" | tap_diag
tap_diag "the table's sets now (nft -j, timers left out):"
grep -v ' (set)$' <<<"$S1" | tap_diag
[ "$rc" -eq 0 ] && [[ $out == *"result=0 applied=5" ]]
tap_check $? "dns1, key 1: CHANGES of 5 answered ACK 0 applied 5"
ok=0
for e in "www_open4 \"203.0.113.7\"" "www_open6 \"2001:db8:113::7\"" \
	"mail_open4 \"198.51.100.7\""; do
	grep -qxF "$e" <<<"$S1" || { ok=1; tap_diag "missing: $e"; }
done
[ "$(grep -c '203\.0\.113\.8' <<<"$S1")" -ge 1 ] || { ok=1; tap_diag "no bind of 203.0.113.8"; }
[ "$(grep -c '203\.0\.113\.9' <<<"$S1")" -ge 1 ] || { ok=1; tap_diag "no scoped open of 203.0.113.9"; }
[ "$(delta applied)" -eq 1 ] && [ "$(delta changes)" -eq 5 ] || ok=1
tap_check $ok "the 5 changes are in the kernel's sets (open, bind, scoped, IPv6, second service)"
[ "$ok" -eq 0 ] || sets_diff

again
out=$(pt send "open 203.0.113.10 600000" --key-id 2 --key-file "$LAB_TMP/key2" 2>&1)
rc=$?
after
echo "$out" | tap_diag
[ "$rc" -eq 0 ] && [[ $out == *"result=0 applied=1" ]] &&
	sets_gained "www_open4 \"203.0.113.10\""
tap_check $? "dns1, key 2 (the second key of 'key = 1, 2'): ACK 0, in the set"
again
out=$(pt send "open 203.0.113.11 600000" --name dns2 --source "$SRC2" \
	--key-id 2 --key-file "$LAB_TMP/key2" 2>&1)
rc=$?
after
echo "$out" | tap_diag
[ "$rc" -eq 0 ] && [[ $out == *"result=0 applied=1" ]] &&
	sets_gained "www_open4 \"203.0.113.11\""
tap_check $? "dns2, key 2, from its own 'from': ACK 0, in the set"

# ---- b: the attacks -------------------------------------------------------------

BAD="open 203.0.113.99 600000"   # what an attack carries: never in a set
export BAD
attack "wrongkey (HELLO tagged with another PSK)" bad_tag 0 "" wrongkey --change "$BAD"
attack "keyid 65535 (a key the gateway does not hold)" bad_key_id 0 "" keyid --change "$BAD"
attack "key 1 for dns2 (held, not listed for it)" bad_key_id 0 "" role --variant given \
	--name dns2 --source "$SRC2" --key-id 1 --change "$BAD"
attack "replay of a session on a new connection" bad_tag 1 "www_open4 \"203.0.113.50\"" \
	replay --change "open 203.0.113.50 600000"
attack "duplicate CHANGES (same sequence)" bad_sequence 1 "www_open4 \"203.0.113.51\"" \
	duplicate --change "open 203.0.113.51 600000"
attack "reorder (sequence 3 before 2)" bad_sequence 0 "" reorder --change "$BAD"
for stage in hello data; do
	attack "truncate $stage (half a frame, then EOF)" closed 0 "" truncate --stage $stage --change "$BAD"
	attack "hugelen $stage (0xFFFFFFFF bytes announced)" too_long 0 "" hugelen --stage $stage --change "$BAD"
	for v in payload tag; do
		attack "bitflip $v, $stage" bad_tag 0 "" bitflip --stage $stage --variant $v --change "$BAD"
	done
	for v in past future; do
		attack "oldtime $v, $stage (60 s off)" bad_timestamp 0 "" oldtime --stage $stage --variant $v --change "$BAD"
	done
done
for v in gateway controller name server; do
	attack "role $v (HELLO naming the wrong node or role)" wrong_peer 0 "" role --variant $v --change "$BAD"
done
attack "role: 'DNS1' (names compared byte for byte)" wrong_peer 0 "" role --variant given \
	--name DNS1 --change "$BAD"
attack "dns2 connecting from dns1's 'from'" wrong_source 0 "" role --variant given \
	--name dns2 --key-id 2 --key-file "$LAB_TMP/key2" --change "$BAD"
attack "early (CHANGES instead of PROOF)" unexpected_type 0 "" early --change "$BAD"
attack "bigcount over (24001 changes)" bad_field 0 "" bigcount --variant over --change "$BAD"
attack "bigcount short (count 5, one change)" bad_size 0 "" bigcount --variant short --change "$BAD"
attack "bigcount zero (count 0)" bad_field 0 "" bigcount --variant zero --change "$BAD"
for v in kind family reserved srclen bindlen opensrc addrbits hostbits ms0 mslong service; do
	attack "badchange $v" bad_field 0 "" badchange --variant $v
done
attack "badchange: service index 2 (past the last)" bad_field 0 "" badchange --variant given \
	--change "open 203.0.113.99 600000 svc=2"
for c in "open 192.0.2.99 600000" "open 203.0.113.200 600000" \
	"open 203.0.113.99 600000 svc=1" "open 2001:db8:114::99 600000" \
	"open 2001:db8:113::99 600000 svc=1" "bind 198.18.1.1 198.51.100.200 600000 svc=1"; do
	n0=$(counter outside_pool)
	attack "badchange: outside the pool ($c)" bad_field 0 "" badchange --variant given --change "$c"
	[ "$(counter outside_pool)" -eq $((n0 + 1)) ]
	tap_check $? "  ... counted in outside_pool"
done

# a lifetime past window + grace (600 + 2 s): no answer asks for it
for c in "open 203.0.113.99 602001" "bind 198.18.1.1 198.51.100.99 604800000 svc=1"; do
	n0=$(counter over_window)
	attack "badchange: longer than window + grace ($c)" bad_field 0 "" badchange \
		--variant given --change "$c"
	[ "$(counter over_window)" -eq $((n0 + 1)) ]
	tap_check $? "  ... counted in over_window"
done

# ---- c: ESTALE ------------------------------------------------------------------

again
out=$(pt send "$BAD" --digest "$(printf '%064d' 0)" 2>&1)
rc=$?
after
echo "$out" | tap_diag
[ "$rc" -ne 0 ] && [[ $out == *"result=-116 applied=0" ]]
tap_check $? "CHANGES with another digest: ACK -116 (ESTALE), applied 0"
sets_gained && [ "$(delta applied)" -eq 0 ] && [ "$(delta stale)" -eq 1 ]
tap_check $? "ESTALE: nothing applied, stale +$(delta stale)"

# ---- d: from --------------------------------------------------------------------

# (closed at accept, before it takes a slot: a counter of its own)
attack "a valid HELLO from $OUTSIDE (in no 'from')" refused_from 0 "" role --variant given \
	--source "$OUTSIDE" --change "$BAD"
[ "$(delta accepted)" -eq 1 ] && [ "$(delta handshakes_pending)" -eq 0 ]
tap_check $? "  ... accepted and closed at once (accepted +$(delta accepted))"

# ---- e: slowloris ------------------------------------------------------------------

# flood PIDVAR LOG ARGS...: peertool's slowloris in the background (its
# PID is timeout's: ip netns exec execs it; stopped by cleanup if need be).
flood() {
	local var=$1 log=$2
	shift 2
	ip netns exec "$ATK" "${PT[@]}" attack slowloris --interval 1 --duration 9 \
		"$@" >"$log" 2>&1 </dev/null &
	printf -v "$var" '%s' "$!"
	LAB_PIDS+=("$!")
}

# e1: 12 sockets from one source: 4 pending, 8 refused_source; meanwhile a
# handshake from another address of dns1 (peertool's probe), and a commit
# from dns2, both get through.
again
probe0=$(connects dns1)
flood FP "$LAB_TMP/slowloris1.log" --count 12 --source "$SRC1" --probe-source "$SRC1B"
# (bounded: 4 s, inside the flood's 5 s of handshake deadline)
declare -A CN
deadline=$((SECONDS + 4))
while :; do
	counters CN
	pending=${CN[handshakes_pending]:-0}
	[ "${CN[refused_source]:-0}" -ge $(( ${C0[refused_source]:-0} + 8 )) ] &&
		[ "$(connects dns1)" -gt "$probe0" ] && [ "$pending" -eq 4 ] && break
	[ "$SECONDS" -ge "$deadline" ] && break
	sleep 0.1
done
out=$(pt send "open 203.0.113.52 600000" --name dns2 --source "$SRC2" \
	--key-id 2 --key-file "$LAB_TMP/key2" 2>&1)
rc=$?
pending2=$(counter handshakes_pending)
wait "$FP"
frc=$?
wait_counter handshake_timeout $(( ${C0[handshake_timeout]:-0} + 4 )) 3
after
tap_diag <"$LAB_TMP/slowloris1.log"
[ "$pending" -eq 4 ] && [ "$pending2" -eq 4 ]
tap_check $? "slowloris from one source: 4 handshakes pending (then $pending, after a commit $pending2)"
[ "$(delta refused_source)" -eq 8 ] && [ "$(delta refused_full)" -eq 0 ]
tap_check $? "  ... the other 8 closed at accept: refused_source +$(delta refused_source)"
[ "$frc" -eq 0 ] && grep -q "a valid handshake meanwhile completed; refused\$" "$LAB_TMP/slowloris1.log"
tap_check $? "  ... peertool: all closed, none answered; dns1 from another address completed a handshake"
[ "$rc" -eq 0 ] && [[ $out == *"result=0 applied=1" ]]
tap_check $? "  ... dns2 committed during the flood: ACK 0 ($out)"
[ "$(delta handshake_timeout)" -eq 4 ] && [ "$(counter handshakes_pending)" -eq 0 ]
tap_check $? "  ... the 4 pending ended at the handshake deadline: handshake_timeout +$(delta handshake_timeout)"
sets_gained "www_open4 \"203.0.113.52\"" && [ "$(delta applied)" -eq 1 ]
tap_check $? "  ... the kernel's sets gained dns2's commit only"
sets_gained "www_open4 \"203.0.113.52\"" || sets_diff

# e2: 70 sockets from 18 addresses (at most 4 each): 64 pending, then
# every connection is closed at accept (refused_full), a valid one too.
srcs=$(seq -s, -f "$NET.%g" 2 19)
again
flood FP "$LAB_TMP/slowloris2.log" --count 70 --source "$srcs" --probe-source "$SRC2" \
	--name dns2 --key-id 2 --key-file "$LAB_TMP/key2"
deadline=$((SECONDS + 5))
until [ "$(counter refused_full)" -ge $(( ${C0[refused_full]:-0} + 7 )) ] ||
	[ "$SECONDS" -ge "$deadline" ]; do
	sleep 0.1
done
pending=$(counter handshakes_pending)
wait "$FP"
frc=$?
wait_counter handshake_timeout $(( ${C0[handshake_timeout]:-0} + 64 )) 3
after
tap_diag <"$LAB_TMP/slowloris2.log"
[ "$pending" -eq 64 ]
tap_check $? "slowloris from 18 sources: 64 handshakes pending ($pending)"
[ "$(delta refused_full)" -eq 7 ] && [ "$(delta refused_source)" -eq 0 ]
tap_check $? "  ... the other 6 and the valid probe closed at accept: refused_full +$(delta refused_full)"
[ "$frc" -eq 0 ] && [ "$(delta handshake_timeout)" -eq 64 ] && [ "$(counter handshakes_pending)" -eq 0 ]
tap_check $? "  ... all closed, none answered; handshake_timeout +$(delta handshake_timeout)"
sets_gained && [ "$(delta applied)" -eq 0 ]
tap_check $? "  ... nothing applied"

# ---- f: still healthy ------------------------------------------------------------

again
out=$(pt send "open 203.0.113.60 600000" 2>&1)
rc=$?
after
[ "$rc" -eq 0 ] && [[ $out == *"result=0 applied=1" ]] &&
	sets_gained "www_open4 \"203.0.113.60\""
tap_check $? "after the attacks a valid session still commits: $out"
out=$(pt ping 2>&1)
tap_check $? "and PING is answered: $out"
lab_alive "$GW_PID" && [ "$(cat "/proc/$GW_PID/comm" 2>/dev/null)" = choreod ] &&
	[ "$(ip netns pids "$GW")" = "$GW_PID" ]
tap_check $? "choreod is still the same process (PID $GW_PID)"
ctl status | grep -E '^(peers|peer |changes_received)' | tap_diag
grep -E 'ERROR|AddressSanitizer|assert' "$LAB_TMP/choreod.log" | head | tap_diag

tap_done
