#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The attacker against the controller, and against a node's controller
# link (docs/protocol.md, "The controller"), with peertool.py as the
# attacker: a compromised or buggy node (it knows the key) and strangers
# (no key). Five namespaces on one bridge (198.18.44.0/24):
#
#   ctl  choreod role controller ($CTL4), the DNS nodes dns1, dns2 and the
#        gateways gw1, gw2, gw3 as its [peer]s, each with 'from'
#   gw   choreod role gateway gw1 ($GW4): its own table; a controller link
#   dns  choreod role dns dns1 ($DNS4), part 3 only (gw1 its gateway)
#   atk  peertool: gw2, gw3, dns1, dns2 of the controller (.2 - .20), a
#        stranger outside every 'from' (.200), and in part 3 the fake
#        controller ($FAKE4)
#
#   1  the real controller and gateway gw1 start; gw1 joins and reports;
#      a peertool gateway joins correctly and its REPORT is shown
#   2  each attack on the controller: peertool says refused (the link
#      closed), the controller counts it under its reason (peers line
#      'ended' reasons, node lines), and afterwards the same identity joins
#      correctly and its REPORT is shown; gw1 keeps its link and reports.
#      LEARNED that the controller takes but a gateway must refuse (an
#      address outside the pool, a lifetime over binding + C): what the
#      controller relays (a peertool gateway gw3 prints it) and what gw1
#      does with it. The 64-handshake cap and the 4-per-source cap.
#      A DNS node's claim of epoch 2^64-1: does the controller still hand
#      out slices to the other DNS node?
#   3  the other direction: peertool as a fake controller, the [peer ctl]
#      of the real gw1 and of a real DNS node dns1: CHANGES of kinds 1-3, a
#      learned one over binding + C or outside the pool, to gw1 (refused,
#      counted; nft sets unchanged); ASSIGN to dns1 out of range (refused:
#      link closed; its answers unchanged); a valid ASSIGN (ASSIGNED; 20
#      answers from that block only)
#
# The checks marked "src bug if not" hold the contract of protocol.md
# against what choreod did when this was written (each failed then):
#   - a REPORT the controller refuses wipes the node's last REPORT shown
#     (frame_report_decode writes into the node's buffer before its checks)
#   - a DNS node's claim of epoch 2^64-1 is taken; the controller's next
#     epoch wraps to 0 and it sends no ASSIGN to anyone any more (now the
#     claim is refused; the operator forgets the liar and the other DNS
#     node is served)
#   - an ASSIGN refused for its second entry has its first applied (the
#     rotor answers from the new block) and the node's next JOIN claims
#     the old assignment
# A LEARNED of an address outside every pool, or of a lifetime over
# binding + C, was relayed as it came (each gateway then refused it and
# closed its controller link: a compromised gateway could keep them all
# flapping); the controller now checks it as the gateways do.
#
# TAP output; exits non-zero if anything failed. LAB_KEEP=1 keeps the temp
# dir (configs, logs, peertool's output).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"

CHOREOD=${CHOREOD:-$root/build/choreod}
CHOREOCTL=${CHOREOCTL:-$root/build/choreoctl}
PEERTOOL=$here/peertool.py
export PYTHONDONTWRITEBYTECODE=1

for tool in nft python3 timeout dig; do
	command -v "$tool" >/dev/null || lab_die "$tool is missing"
done
[ -x "$CHOREOD" ] && [ -x "$CHOREOCTL" ] ||
	lab_die "build first: make build/choreod build/choreoctl"

lab_init catk
mkdir -p "$LAB_TMP/bin" "$LAB_TMP/run"
cp "$CHOREOD" "$CHOREOCTL" "$LAB_TMP/bin/" || lab_die "cannot copy the binaries"
CHOREOD=$LAB_TMP/bin/choreod
CHOREOCTL=$LAB_TMP/bin/choreoctl
TABLE_GW="choreo_catk_gw_$$"
TABLE_GW=${TABLE_GW:0:31}
TABLE_DNS="choreo_catk_dns_$$"
TABLE_DNS=${TABLE_DNS:0:31}
TABLE_CTL="choreo_catk_ctl_$$"
TABLE_CTL=${TABLE_CTL:0:31}
SOCK_CTL=$LAB_TMP/run/ctl.sock
SOCK_GW=$LAB_TMP/run/gw1.sock
SOCK_DNS=$LAB_TMP/run/dns1.sock

NET=198.18.44
CTL4=$NET.40       # the controller
GW4=$NET.1         # gw1
DNS4=$NET.53       # dns1 (part 3)
ATK4=$NET.2        # peertool's identities (gw2, gw3, dns1, dns2: from $NET.0/27)
FAKE4=$NET.100     # the fake controller (part 3)
OUTSIDE=$NET.200   # in no 'from'
PORT=5300
BINDING=600
RELAY_MS=$((BINDING * 1000 + 60000))   # binding + C, C = binding / 10 within 1 .. 60 s

# ---- the lab ------------------------------------------------------------------------

lab_netns CORE core
lab_netns CTLNS ctl
lab_netns GWNS gw
lab_netns DNSNS dns
lab_netns ATK atk
ip -n "$CORE" link add br0 type bridge stp_state 0 forward_delay 0 ||
	lab_die "bridge in core failed"
ip -n "$CORE" link set br0 up || lab_die "bridge up failed"
attach() {
	lab_veth "$1" eth0 "$CORE" "$2"
	ip -n "$CORE" link set "$2" master br0 || lab_die "bridge port $2 failed"
}
attach "$CTLNS" ctl
attach "$GWNS" gw
attach "$DNSNS" dns
attach "$ATK" atk
lab_addr "$CTLNS" eth0 "$CTL4/24"
lab_addr "$GWNS" eth0 "$GW4/24"
lab_addr "$DNSNS" eth0 "$DNS4/24"
for i in $(seq 2 20) 100 200; do
	lab_addr "$ATK" eth0 "$NET.$i/24"
done

head -c 48 /dev/urandom | base64 >"$LAB_TMP/key1"
chmod 600 "$LAB_TMP/key1"

services() {
	cat <<EOF
[service www]
name = www.example.test
pool = 203.0.113.0/25
pool6 = 2001:db8:113::/64
server = 192.0.2.10
honeypot = 192.0.2.20
server6 = 2001:db8:10::10
honeypot6 = 2001:db8:10::20
max_open = 8
window = 2
grace = 1
binding = $BINDING
rotate = 0
[service mail]
name = mail.example.test
pool = 198.51.100.0/25
server = 192.0.2.11
honeypot = 192.0.2.21
max_open = 8
window = 2
grace = 1
binding = $BINDING
rotate = 0
EOF
}

{
	cat <<EOF
[daemon]
control = $SOCK_CTL
table = $TABLE_CTL
role = controller
name = ctl
peer_listen = $CTL4:$PORT
[key 1]
file = $LAB_TMP/key1
EOF
	services
	cat <<EOF
[peer gw1]
role = gateway
key = 1
from = $GW4/32
EOF
	for p in gw2 gw3 dns1 dns2; do
		printf '[peer %s]\nrole = %s\nkey = 1\nfrom = %s.0/27\n' "$p" \
			"$([ "${p#gw}" != "$p" ] && echo gateway || echo dns)" "$NET"
	done
} >"$LAB_TMP/ctl.conf"

# gw_conf FILE CONTROLLER_ADDR: gw1, with its controller at that address
gw_conf() {
	{
		cat <<EOF
[daemon]
control = $SOCK_GW
table = $TABLE_GW
role = gateway
name = gw1
peer_listen = $GW4:$PORT
[key 1]
file = $LAB_TMP/key1
EOF
		services
		cat <<EOF
[peer dns1]
role = dns
key = 1
from = $DNS4/32
[peer ctl]
role = controller
key = 1
address = $2:$PORT
EOF
	} >"$1"
}
gw_conf "$LAB_TMP/gw1-ctl.conf" "$CTL4"
gw_conf "$LAB_TMP/gw1-fake.conf" "$FAKE4"

cat >"$LAB_TMP/example.test.zone" <<EOF
\$ORIGIN example.test.
\$TTL 3600
@       IN SOA  ns1 hostmaster 2026112501 7200 3600 1209600 300
        IN NS   ns1
ns1     IN A    $DNS4
static  IN A    192.0.2.80
EOF
{
	cat <<EOF
[daemon]
control = $SOCK_DNS
table = $TABLE_DNS
role = dns
name = dns1
commit_timeout = 300
[dns]
listen = $DNS4:53
zone = example.test
zonefile = $LAB_TMP/example.test.zone
ttl = 0
rate_limit = 0
[key 1]
file = $LAB_TMP/key1
EOF
	services
	cat <<EOF
[peer gw1]
role = gateway
key = 1
address = $GW4:$PORT
[peer ctl]
role = controller
key = 1
address = $FAKE4:$PORT
EOF
} >"$LAB_TMP/dns1.conf"

# ---- helpers ------------------------------------------------------------------------

# (choreoctl has no timeout of its own: a hung choreod must not hang this)
ctl() { timeout 5 "$CHOREOCTL" -s "$SOCK_CTL" "$@"; }
gwctl() { timeout 5 "$CHOREOCTL" -s "$SOCK_GW" "$@"; }
dnsctl() { timeout 5 "$CHOREOCTL" -s "$SOCK_DNS" "$@"; }

# counters ARRAY [CTL_FN]: the peers line ('ended' reasons and the accept
# counters) as NAME -> value, and the counters of the lines a gateway
# shows (changes_received, bindings_relay); a reason never counted is absent.
counters() {
	local -n _c=$1
	local fn=${2:-ctl} k v
	_c=()
	while read -r k v; do
		_c[$k]=$v
	done < <("$fn" status 2>/dev/null | awk '$1 == "peers" || $1 == "changes_received" ||
		$1 == "bindings_relay" || $1 == "relay" { for (i = 2; i < NF; i += 2) print $i, $(i + 1) }')
}
counter() {
	local -A _one
	counters _one "${2:-ctl}"
	echo "${_one[$1]:-0}"
}
wait_counter() {
	local name=$1 want=$2 limit=$3 fn=${4:-ctl} deadline
	deadline=$((SECONDS + limit))
	while [ "$(counter "$name" "$fn")" -lt "$want" ]; do
		[ "$SECONDS" -ge "$deadline" ] && return 1
		sleep 0.05
	done
	return 0
}
# node NAME: the controller's line of that node; node_field NAME FIELD
node() { ctl status 2>/dev/null | awk -v n="$1" '$1 == "node" && $2 == n'; }
node_field() {
	node "$1" | awk -v f="$2" '{ for (i = 3; i < NF; i++) if ($i == f) { print $(i + 1); exit } }'
}
node_state() { node "$1" | awk '{ print $5 }'; }
node_report() { node "$1" | sed -n 's/.* report: //p'; }
# peer_field FN PEER FIELD: a word of the "peer PEER ..." line of a node
peer_field() {
	"$1" status 2>/dev/null | awk -v p="$2" -v f="$3" '$1 == "peer" && $2 == p {
		if (f == "state") { print $3; exit }
		for (i = 3; i < NF; i++) if ($i == f) { print $(i + 1); exit } }'
}
poll_until() {
	local limit=$1 deadline
	shift
	deadline=$((SECONDS + limit))
	while :; do
		"$@" && return 0
		[ "$SECONDS" -ge "$deadline" ] && return 1
		sleep 0.1
	done
}

DIGEST=$(python3 "$PEERTOOL" digest "$LAB_TMP/ctl.conf" | awk '{ print $2 }')
# pt ARGS...: peertool in the attacker's namespace, at the controller, as
# gw2 from $ATK4 unless ARGS say otherwise (later options win). Bounded.
PT=(timeout 60 python3 "$PEERTOOL" --host "$CTL4" --port "$PORT" --key-file "$LAB_TMP/key1"
	--key-id 1 --name gw2 --role gateway --peer-name ctl --peer-role controller
	--source "$ATK4" --digest "$DIGEST" --timeout 3)
pt() { lab_in "$ATK" "${PT[@]}" "$@"; }

declare -A C0 C1
LEGIT_N=0
# legit NAME ROLE: that identity joins correctly (claim none) with a REPORT
# of its own; the controller shows that REPORT. Sets LEGIT_OUT.
legit() {
	local name=$1 role=$2 text out
	LEGIT_N=$((LEGIT_N + 1))
	text="legit $name $LEGIT_N"
	out=$(pt join --name "$name" --role "$role" --report "$text" --stay 0.5 2>&1)
	LEGIT_OUT="$out"
	poll_until 3 eval '[ "$(node_report "$name")" = "$text" ]' || return 1
	# its end counted (closed) before the next step reads the counters
	poll_until 3 eval '[ "$(node_state "$name")" != joined ]'
}

# attack LABEL REASON ARGS...: one peertool attack on the controller (ARGS
# are peertool's, after "attack"; the identity from --name/--role, default
# gw2): refused; the controller's REASON counter up by exactly one; then
# that identity joins correctly and its REPORT is shown; gw1 still joined
# on the same link.
attack() {
	local label=$1 reason=$2 out rc name=gw2 role a prev="" gw_joins ok
	shift 2
	for a in "$@"; do
		[ "$prev" = --name ] && name=$a
		prev=$a
	done
	role=$([ "${name#gw}" != "$name" ] && echo gateway || echo dns)
	gw_joins=$(node_field gw1 joins)
	counters C0
	out=$(pt attack "$@" 2>&1)
	rc=$?

	wait_counter "$reason" $(( ${C0[$reason]:-0} + 1 )) 3
	counters C1
	tap_diag "$out"
	[ "$rc" -eq 0 ] && [[ $out == *"; refused" ]]
	tap_check $? "$label: refused, the link closed (peertool's status $rc)"
	ok=0
	[ "$(( ${C1[$reason]:-0} - ${C0[$reason]:-0} ))" -eq 1 ] || ok=1
	tap_check $ok "  ... counted as $reason (+$(( ${C1[$reason]:-0} - ${C0[$reason]:-0} )))"
	[ "$ok" -eq 0 ] || tap_diag "peers: $(ctl status | grep '^peers')"
	legit "$name" "$role"
	ok=$?
	[ "$(node_state gw1)" = joined ] && [ "$(node_field gw1 joins)" = "$gw_joins" ] || ok=1
	tap_check $ok "  ... then $name joins correctly and its REPORT is shown; gw1 kept its link (joins $gw_joins)"
	[ "$ok" -eq 0 ] || { tap_diag "$LEGIT_OUT"; tap_diag "$(node "$name")"; tap_diag "$(node gw1)"; }
}

# snap: every element of every set of gw1's table (timeouts left out)
snap() {
	lab_in "$GWNS" nft -j list table inet "$TABLE_GW" | python3 -c '
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
# ---- 1: the controller and a real gateway --------------------------------------------

for f in ctl.conf gw1-ctl.conf gw1-fake.conf dns1.conf; do
	out=$("$CHOREOD" -t -c "$LAB_TMP/$f" 2>&1) || { tap_diag "$out"; lab_die "choreod -t refuses $f"; }
done
lab_spawn "$CTLNS" "$LAB_TMP/ctl.log" "$CHOREOD" -c "$LAB_TMP/ctl.conf"
CTL_PID=$LAB_LAST_PID
poll_until 10 eval 'ctl status 2>/dev/null | grep -q "^peers "' ||
	{ sed 's/^/#   /' "$LAB_TMP/ctl.log" >&2; lab_die "the controller did not start"; }
lab_spawn "$GWNS" "$LAB_TMP/gw1.log" "$CHOREOD" -c "$LAB_TMP/gw1-ctl.conf"
GW_PID=$LAB_LAST_PID
poll_until 15 eval '[ "$(node_state gw1)" = joined ] && [ -n "$(node_report gw1)" ]'
ok=$?
ctl status | grep -E '^(role|relay|node gw1)' | tap_diag
grep -q "^role controller node ctl services_digest ${DIGEST:0:16}\$" <<<"$(ctl status)" && [ "$ok" = 0 ]
tap_check $? "1: the controller runs (digest ${DIGEST:0:16}, peertool's); gw1 (a real gateway) joined and its REPORT is shown"
legit gw2 gateway
tap_check $? "1: peertool joins as gw2 (JOIN, REPORT) and the controller shows its REPORT: $(node gw2 | cut -c1-150)"

# ---- 2: attacks on the controller -------------------------------------------------------

# strangers: no key, or no 'from'
attack "wrongkey (HELLO as gw2 tagged with another PSK)" bad_tag wrongkey --stage hello
attack "keyid 65535 (a key the controller does not hold)" bad_key_id keyid
attack "role: HELLO from 'intruder' (not a [peer])" wrong_peer role --variant name
attack "hugelen HELLO (0xFFFFFFFF bytes announced)" too_long hugelen --stage hello
attack "bitflip HELLO payload" bad_tag bitflip --stage hello --variant payload
attack "oldtime HELLO (60 s in the past)" bad_timestamp oldtime --stage hello --variant past
attack "replay of a recorded session on a new connection" bad_tag replay
counters C0
out=$(pt attack role --variant given --source "$OUTSIDE" 2>&1)
counters C1
tap_diag "$(tail -n 1 <<<"$out")"
[ $(( ${C1[refused_from]:-0} - ${C0[refused_from]:-0} )) -ge 1 ] && [[ $out == *"; refused" ]] &&
	[ $(( ${C1[handshakes_pending]:-0} )) -eq 0 ]
tap_check $? "a valid HELLO from $OUTSIDE (in no 'from'): closed at accept (refused_from +$(( ${C1[refused_from]:-0} - ${C0[refused_from]:-0} )))"

# a compromised gateway (gw2) or DNS node (dns2): it knows the key
attack "role: gw2 claiming role dns" wrong_peer role --variant given --role dns
attack "role: dns2 claiming role controller" wrong_peer role --variant controller --name dns2 --role dns
attack "role: HELLO meaning another server" wrong_peer role --variant server
attack "early: JOIN instead of PROOF" unexpected_type early
for v in report learned ack changes; do
	attack "gw2: $v before JOIN" unexpected_type prejoin --variant $v
done
for v in report assigned leave; do
	attack "dns2: $v before JOIN" unexpected_type prejoin --variant $v --name dns2 --role dns
done
attack "gw2: a second JOIN" unexpected_type rejoin
attack "dns2: a second JOIN" unexpected_type rejoin --name dns2 --role dns

stale0=$(node_field gw2 stale_refusals)
attack "gw2: JOIN with another services digest" stale_config stalejoin
# (legit gw2 joined since: the node line shows it joined again; the log
# and stale_refusals show the refusal)
[ "$(node_field gw2 stale_refusals)" -eq $((stale0 + 1)) ] &&
	grep -q "node gw2: refused: its \[service\] sections differ" "$LAB_TMP/ctl.log"
tap_check $? "  ... gw2's stale_refusals $stale0 -> $(node_field gw2 stale_refusals), logged"
# seen refused_stale while it is the last word on gw2
out=$(pt attack stalejoin 2>&1)
poll_until 3 eval '[ "$(node_state gw2)" = refused_stale ]'
tap_check $? "  ... and shown refused_stale after a stale JOIN: $(node gw2 | cut -c1-80)"

attack "gw2 (a gateway): JOIN claiming slices" bad_field claim --claim "1:1/0/4,1/1/4"
attack "dns2: JOIN claiming blocks cut with block_bits 2 (the controller's: 1)" bad_field \
	claim --claim "1:2/0/4,2/3/4" --name dns2 --role dns
attack "dns2: JOIN claiming 1 service (2 configured)" bad_field claim --claim "1:1/0/4" \
	--name dns2 --role dns
attack "dns2: LEARNED (a DNS node)" unexpected_type learned --name dns2 --role dns

# LEARNED out of range: refused by the controller itself
for v in open bind more count0 countover ms0 mslong srclen service; do
	attack "gw2: LEARNED ($v)" bad_field learned --variant $v
done
attack "gw2: LEARNED (short: count 5, one change)" bad_size learned --variant short
attack "gw2: LEARNED with another services digest" stale_config learned --variant digest

# LEARNED that only the pools and lifetimes can judge: the controller checks
# it as the gateways would and refuses it (gw2's link closed, nothing
# relayed: one bad binding relayed would make every other gateway close its
# link). gw3 (peertool) is joined meanwhile and prints what it gets.
lab_spawn "$ATK" "$LAB_TMP/gw3.log" "${PT[@]}" join --name gw3 --role gateway --stay 40 \
	--report "observer gw3"
GW3_PID=$LAB_LAST_PID
poll_until 5 eval '[ "$(node_state gw3)" = joined ]' || tap_diag "gw3 did not join"
# learned_case LABEL CHANGE: LEARNED of one change from gw2
learned_case() {
	local label=$1 change=$2 out rc joins0 r0 f0 n0 s0 s1 ok=0
	local -A G0 G1
	counters G0 gwctl
	s0=$(snap)
	joins0=$(node_field gw1 joins)
	r0=$(counter relays) f0=$(counter refused)
	n0=$(grep -c '^CHANGES' "$LAB_TMP/gw3.log")
	out=$(pt attack learned --variant given --change "$change" 2>&1)
	rc=$?
	tap_diag "$out"
	wait_counter refused $((f0 + 1)) 5
	sleep 0.3
	counters G1 gwctl
	s1=$(snap)
	tap_diag "gw2's link $([ "$rc" = 0 ] && echo closed || echo "kept open"); controller: refused $f0 -> $(counter refused), relays $r0 -> $(counter relays); gw3 got $(( $(grep -c '^CHANGES' "$LAB_TMP/gw3.log") - n0 )) CHANGES; gw1 joins $joins0 -> $(node_field gw1 joins)"
	[ "$rc" = 0 ] && [ "$(counter refused)" = $((f0 + 1)) ] && [ "$(counter relays)" = "$r0" ] || ok=1
	[ "$(grep -c '^CHANGES' "$LAB_TMP/gw3.log")" = "$n0" ] || ok=1
	[ "$(node_field gw1 joins)" = "$joins0" ] && [ "$(node_state gw1)" = joined ] || ok=1
	[ "${G1[bad_field]:-0}" = "${G0[bad_field]:-0}" ] || ok=1
	grep -qx 'www_open4 (set)' <<<"$s1" && [ "$s0" = "$s1" ] || ok=1
	tap_check $ok "gw2: LEARNED $label: refused by the controller (gw2's link closed, refused +1), nothing relayed (gw3 got nothing, gw1 kept its link and its table)"
	[ "$ok" = 0 ] || diff <(echo "$s0") <(echo "$s1") | tap_diag
}
learned_case "of an address outside every pool (192.0.2.99)" "learned 198.18.99.1 192.0.2.99 $RELAY_MS"
learned_case "with ms $((RELAY_MS + 1)), over binding + C ($RELAY_MS)" "learned 198.18.99.2 203.0.113.9 $((RELAY_MS + 1))"

# a valid one: relayed, in gw1's bound set
lag0=$(ctl status | awk '$1 == "relay" { for (i = 1; i < NF; i++) if ($i == "count") print $(i + 1) }')
out=$(pt join --report "learner gw2" --stay 1 "learned 198.18.99.3 203.0.113.10 $RELAY_MS" 2>&1)
poll_until 5 eval 'lab_in "$GWNS" nft -j list set inet "$TABLE_GW" www_bound4 | grep -q "198.18.99.3"'
ok=$?
bound=$(lab_in "$GWNS" nft -j list set inet "$TABLE_GW" www_bound4 | python3 -c '
import json, sys
for o in json.load(sys.stdin)["nftables"]:
    for e in o.get("set", {}).get("elem", []):
        e = e.get("elem", {}).get("val", e) if isinstance(e, dict) else e
        print(json.dumps(e, separators=(",", ":")))' | grep 198.18.99.3)
tap_diag "gw1 www_bound4: $bound; gw3: $(grep '^CHANGES' "$LAB_TMP/gw3.log" | tail -n 1)"
lag1=$(ctl status | awk '$1 == "relay" { for (i = 1; i < NF; i++) if ($i == "count") print $(i + 1) }')
[ "$ok" = 0 ] && grep -q "CHANGES .*learned 198.18.99.3 203.0.113.10 $RELAY_MS" "$LAB_TMP/gw3.log" &&
	[ "${lag1:-0}" -gt "${lag0:-0}" ]
tap_check $? "gw2: a valid LEARNED is relayed to gw1 (in its www_bound4) and gw3, and ACKed (relay lag count $lag0 -> $lag1)"
lab_stop "$GW3_PID"

attack "gw2: ACK of a commit never sent" protocol ack
attack "dns2: ACK (a DNS node)" unexpected_type ack --name dns2 --role dns
attack "dns2: ASSIGNED of an epoch never sent" protocol assigned --epoch 1099511627776 --name dns2 --role dns
attack "gw2: ASSIGNED (a gateway)" unexpected_type assigned
attack "gw2: LEAVE (a gateway)" unexpected_type leave
attack "dns2: LEAVE with 8 bytes of payload" bad_size leave --variant payload --name dns2 --role dns

# REPORT: the text shown is a REPORT taken, never a part of one refused
for v in control del empty long; do
	attack "gw2: REPORT ($v)" bad_field report --variant $v
done
attack "gw2: REPORT (short: length 20, 9 bytes)" bad_size report --variant short
# does a refused REPORT wipe the last one shown? (the attacker's own node line)
legit gw2 gateway
before=$(node_report gw2)
out=$(pt attack report --variant control 2>&1)
after=$(node_report gw2)
tap_diag "gw2's report: before '$before', after a refused REPORT (a BEL): '$after'"
[ -n "$before" ] && [ "$after" = "$before" ]
tap_check $? "a refused REPORT leaves the last REPORT shown as it was (src bug if not: '$before' -> '$after')"
out=$(pt join --report "$(printf 'k%.0s' $(seq 1 1024))" --stay 0.5 2>&1)
[ "$(node_report gw2 | wc -c)" -eq 1025 ]
tap_check $? "a REPORT of exactly 1024 bytes is taken and shown"

# replayed, reordered frames, timestamps, tags on the joined link
attack "duplicate REPORT (same sequence)" bad_sequence duplicate
attack "reorder (REPORT seq 4 before 3)" bad_sequence reorder
for v in past future; do
	attack "REPORT stamped 60 s in the $v" bad_timestamp oldtime --variant $v
done
for v in payload tag; do
	attack "REPORT with a bit of its $v flipped" bad_tag bitflip --variant $v
done
attack "REPORT header announcing 0xFFFFFFFF bytes" too_long hugelen
attack "truncated REPORT, then EOF" closed truncate

# dns2 leaves (a DNS node's LEAVE is taken: the link closes, its slices drain)
left0=$(node_field dns2 left)
out=$(pt attack leave --variant plain --name dns2 --role dns 2>&1)
tap_diag "$out"
poll_until 3 eval '[ "$(node_field dns2 left)" -eq $((left0 + 1)) ]'
tap_check $? "dns2: LEAVE (no payload) is taken: link closed, left $left0 -> $(node_field dns2 left)"

# ---- 2: the handshake caps ----------------------------------------------------------------

# flood PIDVAR LOG ARGS...: peertool's slowloris in the background
flood() {
	local var=$1 log=$2
	shift 2
	ip netns exec "$ATK" "${PT[@]}" attack slowloris --interval 1 --duration 9 \
		"$@" >"$log" 2>&1 </dev/null &
	printf -v "$var" '%s' "$!"
	LAB_PIDS+=("$!")
}
counters C0
probe0=$(peer_field ctl gw2 connects)
flood FP "$LAB_TMP/slowloris1.log" --count 12 --source "$NET.2" --probe-source "$NET.3"
declare -A CN
deadline=$((SECONDS + 4))
while :; do
	counters CN
	pending=${CN[handshakes_pending]:-0}
	[ "${CN[refused_source]:-0}" -ge $(( ${C0[refused_source]:-0} + 8 )) ] &&
		[ "$(peer_field ctl gw2 connects)" -gt "$probe0" ] && [ "$pending" -eq 4 ] && break
	[ "$SECONDS" -ge "$deadline" ] && break
	sleep 0.1
done
wait "$FP"
frc=$?
wait_counter handshake_timeout $(( ${C0[handshake_timeout]:-0} + 4 )) 3
counters C1
tap_diag <"$LAB_TMP/slowloris1.log"
[ "$pending" -eq 4 ] && [ $(( ${C1[refused_source]:-0} - ${C0[refused_source]:-0} )) -eq 8 ] &&
	[ "$frc" -eq 0 ] && grep -q "a valid handshake meanwhile completed; refused\$" "$LAB_TMP/slowloris1.log"
tap_check $? "slowloris from one source: 4 pending ($pending), 8 closed at accept (refused_source +$(( ${C1[refused_source]:-0} - ${C0[refused_source]:-0} ))), gw2 from another address completed a handshake"

counters C0
srcs=$(seq -s, -f "$NET.%g" 2 19)
flood FP "$LAB_TMP/slowloris2.log" --count 70 --source "$srcs" --probe-source "$NET.20" \
	--name dns2 --role dns
deadline=$((SECONDS + 5))
until [ "$(counter refused_full)" -ge $(( ${C0[refused_full]:-0} + 7 )) ] || [ "$SECONDS" -ge "$deadline" ]; do
	sleep 0.1
done
pending=$(counter handshakes_pending)
gw1_ok=$(node_state gw1)
wait "$FP"
frc=$?
wait_counter handshake_timeout $(( ${C0[handshake_timeout]:-0} + 64 )) 3
counters C1
tap_diag <"$LAB_TMP/slowloris2.log"
[ "$pending" -eq 64 ] && [ $(( ${C1[refused_full]:-0} - ${C0[refused_full]:-0} )) -eq 7 ] &&
	[ "$frc" -eq 0 ] && [ $(( ${C1[handshake_timeout]:-0} - ${C0[handshake_timeout]:-0} )) -eq 64 ] &&
	[ "$(counter handshakes_pending)" -eq 0 ]
tap_check $? "slowloris from 18 sources: 64 pending ($pending), the other 6 and a valid probe closed at accept (refused_full +$(( ${C1[refused_full]:-0} - ${C0[refused_full]:-0} ))), all 64 ended at the deadline (handshake_timeout +$(( ${C1[handshake_timeout]:-0} - ${C0[handshake_timeout]:-0} )))"
[ "$gw1_ok" = joined ] && [ "$(node_state gw1)" = joined ] && legit gw2 gateway
tap_check $? "  ... gw1 stayed joined during the flood; gw2 joins again afterwards"

# ---- 2: slices still handed out -----------------------------------------------------------

# dns1 (peertool, correct) joins and stays: the start-up hold (D = window +
# grace + 41.25 s after the DNS nodes' first JOIN) is over by now or soon
D=$((2 + 1 + 42))
out=$(pt join --name dns1 --role dns --report "legit dns1" --stay $((D + 8)) --until-assign 2>&1)
tap_diag "$(grep -E '^(ASSIGN|join)' <<<"$out" | head -n 3)"
tap_diag "controller: $(node dns1 | cut -c1-200)"
grep -q '^ASSIGN [1-9]' <<<"$out" && [ "$(node_field dns1 acked)" -gt 0 ]
tap_check $? "dns1 (peertool, correct) gets an ASSIGN and its ASSIGNED is taken (acked $(node_field dns1 acked))"
lab_alive "$CTL_PID" && [ "$(cat "/proc/$CTL_PID/comm" 2>/dev/null)" = choreod ]
tap_check $? "the controller is still the same process (PID $CTL_PID)"
ctl status | grep -E '^(peers|relay|slices|node)' | cut -c1-240 | tap_diag

# ---- 2: a claim of epoch 2^64 - 1 (a fresh controller) ----------------------------------

lab_stop "$CTL_PID"
lab_spawn "$CTLNS" "$LAB_TMP/ctl2.log" "$CHOREOD" -c "$LAB_TMP/ctl.conf"
CTL_PID=$LAB_LAST_PID
poll_until 10 eval 'ctl status 2>/dev/null | grep -q "^peers "' || tap_diag "the controller did not start again"
out=$(pt attack claim --name dns2 --role dns --claim "18446744073709551615:1/0/4,1/0/4" 2>&1)
tap_diag "$out"
tap_diag "controller: $(node dns2 | cut -c1-200)"
[ "$(node_state dns2)" != joined ] && [ "$(counter bad_field)" -ge 1 ]
tap_check $? "dns2's claim of epoch 2^64-1 is refused at its JOIN (link closed, bad_field $(counter bad_field); dns2 $(node_state dns2))"
# a restarted controller waits for every DNS node it knows: the operator
# says dns2 will not come (choreoctl forget), and dns1 is served
ctl forget dns2 | tap_diag
out=$(pt join --name dns1 --role dns --report "legit dns1" --stay $((D + 8)) --until-assign 2>&1)
tap_diag "$(grep -E '^(ASSIGN|join)' <<<"$out" | head -n 3)"
tap_diag "controller: $(node dns1 | cut -c1-200)"
tap_diag "controller: $(ctl status | grep '^slices' | head -n 1)"
grep -q '^ASSIGN [1-9]' <<<"$out"
tap_check $? "after dns2's claim of epoch 2^64-1 and its forget, dns1 (correct) gets an ASSIGN within D + 8 s (src bug if not: the epoch wrapped to 0 and nothing was sent)"
lab_alive "$CTL_PID"
tap_check $? "the controller survived it"
grep -E 'ERROR|AddressSanitizer|assert' "$LAB_TMP/ctl.log" "$LAB_TMP/ctl2.log" | head | tap_diag
lab_stop "$CTL_PID"

# ---- 3: a fake controller -----------------------------------------------------------------

lab_stop "$GW_PID"
coproc FAKE { exec ip netns exec "$ATK" timeout 900 python3 "$PEERTOOL" fakectl --host "$FAKE4" \
	--port "$PORT" --key-file "$LAB_TMP/key1" --name ctl --peer-name gw1=gateway,dns1=dns \
	--config "$LAB_TMP/ctl.conf" --block-bits 1,1 --timeout 8 2>"$LAB_TMP/fakectl.log"; }
FAKE_PID_=$FAKE_PID
LAB_PIDS+=("$FAKE_PID_")
FC=""
# fc COMMAND...: one command to the fake controller; its outcome in FC
fc() {
	echo "$*" >&"${FAKE[1]}"
	IFS= read -r -t 60 FC <&"${FAKE[0]}" || FC="(no answer from fakectl)"
}

lab_spawn "$GWNS" "$LAB_TMP/gw1-fake.log" "$CHOREOD" -c "$LAB_TMP/gw1-fake.conf"
GW_PID=$LAB_LAST_PID
lab_spawn "$DNSNS" "$LAB_TMP/dns1.log" "$CHOREOD" -c "$LAB_TMP/dns1.conf"
DNS_PID=$LAB_LAST_PID
fc wait gw1 20
tap_diag "$FC"
g_ok=$([[ $FC == "joined gw1 "*"claim 0:" ]] && echo 0 || echo 1)
fc wait dns1 20
tap_diag "$FC"
poll_until 10 eval '[ "$(peer_field dnsctl gw1 state)" = up ]'
[ "$g_ok" = 0 ] && [[ $FC == "joined dns1 "*"claim 0:" ]] && [ "$(peer_field dnsctl gw1 state)" = up ]
tap_check $? "3: gw1 and dns1 (real) join the fake controller (claims none); dns1's link to gw1 is up"

declare -A G0 G1 D0 D1
# refuse_changes LABEL COUNTER CHANGES...: the fake controller's CHANGES
# to gw1: no ACK, link closed; COUNTER (gw1's) +1, bad_field +1; the sets
# of gw1's table unchanged
refuse_changes() {
	local label=$1 cnt=$2 s0 s1 ok=0
	shift 2
	counters G0 gwctl
	s0=$(snap)
	fc changes gw1 "$@"
	wait_counter "$cnt" $(( ${G0[$cnt]:-0} + 1 )) 3 gwctl
	counters G1 gwctl
	s1=$(snap)
	tap_diag "$FC"
	[[ $FC == *"no ACK; closed by gw1"* ]]
	tap_check $? "$label: refused by gw1 (no ACK, link closed)"
	[ $(( ${G1[$cnt]:-0} - ${G0[$cnt]:-0} )) -eq 1 ] && [ $(( ${G1[bad_field]:-0} - ${G0[bad_field]:-0} )) -eq 1 ] || ok=1
	grep -qx 'www_open4 (set)' <<<"$s1" && [ "$s0" = "$s1" ] || ok=1
	tap_check $ok "  ... counted: $cnt +$(( ${G1[$cnt]:-0} - ${G0[$cnt]:-0} )), bad_field +$(( ${G1[bad_field]:-0} - ${G0[bad_field]:-0} )); the sets of gw1's table unchanged"
	[ "$ok" = 0 ] || diff <(echo "$s0") <(echo "$s1") | tap_diag
}
refuse_changes "CHANGES of kind bind (1) to gw1" wrong_kind "bind 198.18.50.1 203.0.113.20 2000"
refuse_changes "CHANGES of kind open (2) to gw1" wrong_kind "open 203.0.113.21 2000"
refuse_changes "CHANGES of kind open_scoped (3) to gw1" wrong_kind "scoped 198.18.50.0/24 203.0.113.22 2000"
refuse_changes "CHANGES: a learned one and an open one" wrong_kind \
	"learned 198.18.50.9 203.0.113.29 $RELAY_MS; open 203.0.113.30 2000"
refuse_changes "CHANGES: learned, ms $((RELAY_MS + 1)) (binding + C = $RELAY_MS)" over_window \
	"learned 198.18.50.2 203.0.113.23 $((RELAY_MS + 1))"
refuse_changes "CHANGES: learned, outside the pool (192.0.2.99)" outside_pool \
	"learned 198.18.50.3 192.0.2.99 $RELAY_MS"
refuse_changes "CHANGES: learned, outside [service mail]'s pool (198.51.100.200)" outside_pool \
	"learned 198.18.50.3 198.51.100.200 $RELAY_MS svc=1"
refuse_changes "CHANGES: learned IPv6 for [service mail] (no pool6)" outside_pool \
	"learned 2001:db8:50::3 2001:db8:113::7 $RELAY_MS svc=1"
refuse_changes "CHANGES: learned with src_len 24" bad_field \
	"hex:0404180000000000ea60cb007107000000000000000000000000c6126301000000000000000000000000"

counters G0 gwctl
fc changes gw1 digest="$(printf '%064d' 0)" "learned 198.18.50.5 203.0.113.25 $RELAY_MS"
counters G1 gwctl
tap_diag "$FC"
[[ $FC == *"ACK result=-116 applied=0" ]] && [ $(( ${G1[stale]:-0} - ${G0[stale]:-0} )) -eq 1 ]
tap_check $? "CHANGES with another digest: ACK -116 (ESTALE), stale +1"
s0=$(snap)
fc changes gw1 "learned 198.18.50.4 203.0.113.24 $RELAY_MS; learned 2001:db8:50::4 2001:db8:113::24 $RELAY_MS"
s1=$(snap)
tap_diag "$FC"
tap_diag "gw1 gained: $(diff <(echo "$s0") <(echo "$s1") | grep '^>' | tr '\n' ' ')"
[[ $FC == *"ACK result=0 applied=2" ]] && grep -q 'www_bound4 .*198.18.50.4.*203.0.113.24' <<<"$s1" &&
	grep -q 'www_bound6 .*2001:db8:50::4.*2001:db8:113::24' <<<"$s1"
tap_check $? "CHANGES of 2 valid learned bindings (IPv4, IPv6): ACK 0 applied 2, both in gw1's bound sets"
fc frame gw1 ASSIGN "$(printf '%016x%04x' 5 2)$(printf '%02x%08x%08x' 1 1 4 1 0 4)"
tap_diag "$FC"
[[ $FC == *"closed by gw1"* ]]
tap_check $? "ASSIGN to a gateway: refused (link closed)"

# ---- 3: ASSIGN to a DNS node ----------------------------------------------------------------

# answers N: dig N times at dns1; prints the answers, one a line ("-" for none)
answers() {
	local i
	for i in $(seq 1 "$1"); do
		lab_in "$ATK" dig +noall +comments +answer +tries=1 +time=2 "@$DNS4" www.example.test A 2>/dev/null |
			awk '/status:/ { st = $6; sub(",", "", st) } $4 == "A" { a = $5 } END { print a ? a : (st ? st : "TIMEOUT") }'
	done
}
# count_in_block BLOCK: how many of the answers on stdin lie in that block of
# 203.0.113.0/25 cut in 2 (block 0: .0/26, block 1: .64/26)
count_in_block() { awk -v b="$1" -F. '$1 == 203 && $2 == 0 && $3 == 113 && int($4 / 64) == b' | wc -l; }
st=$(lab_in "$ATK" dig +tries=1 +time=2 "@$DNS4" www.example.test A | grep -o 'status: [A-Z]*')
tap_diag "dns1 before any ASSIGN: $st"
[ "$st" = "status: SERVFAIL" ]
tap_check $? "dns1 before any ASSIGN: no block, its rotated answers SERVFAIL ($st)"

# refuse_assign LABEL REASON SPEC: refused, dns1 counts REASON, its answers unchanged
refuse_assign() {
	local label=$1 reason=$2 spec=$3 ok=0
	counters D0 dnsctl
	fc assign dns1 "$spec"
	wait_counter "$reason" $(( ${D0[$reason]:-0} + 1 )) 3 dnsctl
	counters D1 dnsctl
	tap_diag "$FC"
	[[ $FC == *"no ASSIGNED; closed by dns1"* ]]
	tap_check $? "$label: refused by dns1 (no ASSIGNED, link closed)"
	[ $(( ${D1[$reason]:-0} - ${D0[$reason]:-0} )) -eq 1 ]
	tap_check $? "  ... counted as $reason (+$(( ${D1[$reason]:-0} - ${D0[$reason]:-0} )))"
}
refuse_assign "ASSIGN with block 2 of 2^1" bad_field "1:1/2/4,1/0/4"
refuse_assign "ASSIGN with block_bits 17" bad_field "1:17/0/4,1/0/4"
refuse_assign "ASSIGN with block_bits 8, over the pool's 7 host bits (/25)" bad_field "1:8/0/4,1/0/4"
refuse_assign "ASSIGN with a share of 9, over max_open 8" bad_field "1:1/0/9,1/0/4"
refuse_assign "ASSIGN for 1 service (2 configured)" bad_field "1:1/0/4"
refuse_assign "ASSIGN for 3 services (2 configured)" bad_field "1:1/0/4,1/0/4,1/0/4"
st=$(lab_in "$ATK" dig +tries=1 +time=2 "@$DNS4" www.example.test A | grep -o 'status: [A-Z]*')
[ "$st" = "status: SERVFAIL" ]
tap_check $? "  ... after those, dns1 still has no block ($st)"
for t in CHANGES WINDOWS; do
	counters D0 dnsctl
	if [ "$t" = CHANGES ]; then
		fc frame dns1 CHANGES "00000000${DIGEST}00010404200000000000ea60cb007107000000000000000000000000c6126301000000000000000000000000"
	else
		fc frame dns1 WINDOWS "${DIGEST}000000"
	fi
	wait_counter unexpected_type $(( ${D0[unexpected_type]:-0} + 1 )) 3 dnsctl
	counters D1 dnsctl
	tap_diag "$FC"
	[[ $FC == *"closed by dns1"* ]] && [ $(( ${D1[unexpected_type]:-0} - ${D0[unexpected_type]:-0} )) -eq 1 ]
	tap_check $? "$t to a DNS node from its controller: refused (link closed), unexpected_type +1"
done

fc assign dns1 "5:1/1/4,1/0/4"
tap_diag "$FC"
dns_epoch() { dnsctl status | awk '$1 == "controller" { for (i = 1; i < NF; i++) if ($i == "epoch") print $(i + 1) }'; }
[[ $FC == *"ASSIGNED epoch=5"* ]] && poll_until 3 eval '[ "$(dns_epoch)" = 5 ]'
tap_check $? "a valid ASSIGN (epoch 5: www block 1 of 2, share 4): ASSIGNED epoch 5; dns1 shows epoch 5"
a=$(answers 20)
n=$(count_in_block 1 <<<"$a")
tap_diag "answers: $(sort <<<"$a" | uniq -c | awk '{ printf "%s x%s ", $2, $1 }')"
[ "$n" -eq 20 ]
tap_check $? "  ... dns1 answers from 203.0.113.64/26 only: $n of 20"

refuse_assign "ASSIGN epoch 5 again (not above the last applied)" protocol "5:1/0/4,1/0/4"
refuse_assign "ASSIGN epoch 4 (below the last applied)" protocol "4:1/0/4,1/0/4"
a=$(answers 20)
n=$(count_in_block 1 <<<"$a")
[ "$n" -eq 20 ]
tap_check $? "  ... dns1 still answers from block 1 only: $n of 20"

# one entry good, the next out of range: nothing of it may be applied
refuse_assign "ASSIGN epoch 6: www block 0 (good), mail share 9 (over max_open)" bad_field "6:1/0/4,1/0/9"
sleep 4   # the windows opened so far (window + grace = 3 s) expire: the share is free again
a=$(answers 20)
n=$(count_in_block 1 <<<"$a")
n0=$(count_in_block 0 <<<"$a")
fc wait dns1 20
tap_diag "answers: $(sort <<<"$a" | uniq -c | awk '{ printf "%s x%s ", $2, $1 }'); dns1 joins again: $FC"
grep 'controller:' "$LAB_TMP/dns1.log" | tail -n 4 | tap_diag
[ "$n" -eq 20 ]
tap_check $? "  ... nothing of the refused ASSIGN applied: dns1 still answers from block 1 only ($n of 20; $n0 from block 0) (src bug if not)"
[[ $FC == *"claim 5:1/1/4,1/0/4" ]] && [ "$n" -eq 20 ]
tap_check $? "  ... and what it claims on its next JOIN is what it answers from ($FC)"

fc assign dns1 "7:1/1/4,1/0/4"
tap_diag "$FC"
sleep 4
a=$(answers 20)
n=$(count_in_block 1 <<<"$a")
[[ $FC == *"ASSIGNED epoch=7"* ]] && [ "$n" -eq 20 ]
tap_check $? "a valid ASSIGN epoch 7 (block 1): ASSIGNED 7; $n of 20 answers from block 1"
for i in 1 2 3 4 5; do
	fc report dns1
	[[ $FC == "report dns1: queries "* ]] && break
	sleep 1
done
tap_diag "$FC"
[[ $FC == "report dns1: queries "* ]]
tap_check $? "dns1 reports to its controller: $FC"

fc quit
wait "$FAKE_PID_" 2>/dev/null
alive=0
for p in "$GW_PID" "$DNS_PID"; do lab_alive "$p" && alive=$((alive + 1)); done
[ "$alive" = 2 ]
tap_check $? "gw1 and dns1 still run ($alive of 2)"
grep -E 'ERROR|AddressSanitizer|assert' "$LAB_TMP/gw1-fake.log" "$LAB_TMP/dns1.log" | head | tap_diag
tap_done
