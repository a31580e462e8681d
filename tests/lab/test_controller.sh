#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The controller (role controller) in the lab of distlab.sh with
# DL_CONTROLLER=1: two DNS nodes, two gateways (each in front of its own
# client network) and a controller they all connect to.
#
#   1  choreod -t over the five files: one deployment; a controller that
#      does not know a gateway is refused
#   2  every node joins the controller; its status shows the deployment
#      (each node joined, with its last report); once the controller's
#      start-up hold is over (it cannot tell a first start from a restart:
#      a node may have windows from before), each DNS node holds its own
#      block of the pool and half of max_open, and answers only from it
#   3  a gateway with other [service] sections (its digest differs) is
#      refused by the controller, counted and shown; with its own file back
#      it joins again
#   4  relay: fresh clients of net A ask a DNS node and connect through
#      gateway 1; each binding reaches gateway 2's table through the
#      controller (timed with nft monitor: p50/p99)
#   5  a client active through gateway 1 for longer than `binding` (its
#      binding kept alive by use), then moved to gateway 2 (the operator's
#      routing moves it), still reaches the server
#   6  the controller killed (SIGKILL) under load: answers go on, 0
#      misroutes; a client moved meanwhile is not relayed (it reaches the
#      honeypot: the check of 5 can fail); the gateways count what they
#      could not report
#   7  the controller started again: every node joins again with the
#      slices it holds (kept as they were: answers never stopped), and
#      relaying works (fresh clients' bindings reach gateway 2)
#   7  quarantine through the controller (the hook): a bound client's prefix
#      quarantined for 60 s is in both gateways' quarantine sets within a
#      second; the bound client and a fresh asker of that prefix reach the
#      honeypot only, through gw1
#   7  a gateway that rejoins gets the bindings relayed while it was away:
#      choreod on gw2 killed, one of its bindings deleted (as if missed),
#      the client refreshes it through gw1; gw2 restarted: the controller
#      replays it
#   8  a DNS node leaves (SIGTERM): its block and share drain; the other
#      node's share is not raised before the drain time, and is after
#
# TAP output; exits non-zero if anything failed. LAB_KEEP=1 keeps the temp
# dir.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
DL_CONTROLLER=1
DL_BINDING=${DL_BINDING:-6}       # short: check 5 outlives it
. "$here/distlab.sh"

distlab_init ctl
distlab_up
lab_log "lab up in $SECONDS s"
T0=$SECONDS

# ctl_node NAME: the controller's status line of a node
ctl_node() { dl_ctl ctl status 2>/dev/null | awk -v n="$1" '$1 == "node" && $2 == n'; }
joined() { [ "$(ctl_node "$1" | awk '{ print $5 }')" = joined ]; }
all_joined() { joined gw1 && joined gw2 && joined dns1 && joined dns2; }
relaylag() {
	timeout 120 "$GW_PY" "$here/relaylag.py" --client-ns "$CLIA" --dns "${DL_ADDR4[dns1]}" \
		--monitor-ns "$GW2" --table "${DL_TABLE[gw2]}" "$@"
}
slices4="dns1=${DL_SLICE4[dns1]},dns2=${DL_SLICE4[dns2]}"

# ---- 1: one deployment -------------------------------------------------------------

distlab_confs
files=(-c "${DL_CONF[ctl]}" -c "${DL_CONF[gw1]}" -c "${DL_CONF[gw2]}" -c "${DL_CONF[dns1]}"
	-c "${DL_CONF[dns2]}")
out=$("$GW_CHOREOD" -t "${files[@]}" 2>&1)
rc=$?
tap_diag <<<"$out"
# the controller's file without gw2: gw2's links would be refused
awk '/^\[peer gw2\]/ { skip = 1; next } /^\[/ { skip = 0 } !skip' "${DL_CONF[ctl]}" >"$LAB_TMP/ctl-bad.conf"
bad=$("$GW_CHOREOD" -t -c "$LAB_TMP/ctl-bad.conf" -c "${DL_CONF[gw1]}" -c "${DL_CONF[gw2]}" \
	-c "${DL_CONF[dns1]}" -c "${DL_CONF[dns2]}" 2>&1)
rc_bad=$?
tap_diag "without [peer gw2] on the controller: $(grep -v ': OK:' <<<"$bad" | head -n 1)"
[ "$rc" = 0 ] && grep -q 'make one deployment' <<<"$out" && [ "$rc_bad" = 1 ] &&
	grep -q 'controller ctl has no \[peer gw2\] with role gateway' <<<"$bad"
tap_check $? "1: choreod -t over ctl gw1 gw2 dns1 dns2: one deployment (exit $rc); a controller not knowing gw2 is refused (exit $rc_bad)"

# ---- 2: joined -----------------------------------------------------------------------

if ! distlab_start_all || ! poll_until 10 all_joined; then
	dl_ctl ctl status 2>&1 | tap_diag
	tap_not_ok "2: the five choreod start, link and join"
	tap_done
	exit 1
fi
poll_until 5 eval '[ -n "$(ctl_node gw2 | grep -o "report:")" ] && [ -n "$(ctl_node dns2 | grep -o "report:")" ]'
dl_ctl ctl status | grep -E '^(role|relay|node)' | tap_diag
n_joined=$(dl_ctl ctl status | grep -c '^node .* joined ')
n_reports=$(dl_ctl ctl status | grep -c ' report: ')
gw_side=$(dl_field gw1 controller joins)
[ "$n_joined" = 4 ] && [ "$n_reports" = 4 ] && [ "$gw_side" = 1 ] &&
	[ "$(dl_ctl dns1 status | awk '$1 == "controller" { print $2 }')" = joined ]
tap_check $? "2: all 4 nodes joined the controller ($n_joined) and report to it ($n_reports lines with a report); gw1 and dns1 see the link joined"

# the controller's hold: D = window + grace + 30 s (late commits) + 10 s
# (commit_timeout at most) + 0.25 s after each DNS node's first report
DRAIN_S=$((DL_WINDOW + DL_GRACE + 41))
# dns_slice NODE: "BLOCK SHARE EPOCH" of service www, from the controller
dns_slice() { ctl_node "$1" | awk '{ for (i = 1; i < NF; i++) { if ($i == "www" && $(i + 1) == "block") b = $(i + 2); if ($i == "share" && $(i - 2) == "block") s = $(i + 1); if ($i == "epoch") e = $(i + 1) } } END { print b, s, e }'; }
assigned() {
	local a b
	read -r a _ _ <<<"$(dns_slice dns1)"
	read -r b _ _ <<<"$(dns_slice dns2)"
	[ "${a:--1}" -ge 0 ] && [ "${b:--1}" -ge 0 ] && [ "$(dl_field dns1 controller assigns)" != 0 ]
}
start=$SECONDS
poll_until $((DRAIN_S + 15)) assigned
el=$((SECONDS - start))
read -r b1 s1 e1 <<<"$(dns_slice dns1)"
read -r b2 s2 e2 <<<"$(dns_slice dns2)"
dl_ctl ctl status | grep -E '^(slices|node dns)' | cut -c1-220 | tap_diag
# block b of 1 bit of 203.0.113.0/25: 203.0.113.0/26 or .64/26
in_block() { local o=${1##*.}; [ "$1" = "${1%.*}.$o" ] && [ $((o / 64)) = "$2" ]; }
answers_in() {
	local node=$1 b=$2 a ok=0 i
	for i in $(seq 1 20); do
		a=$(ip netns exec "$CLIA" dig +short +tries=1 +time=1 "@${DL_ADDR4[$node]}" "$DL_NAME" A)
		[ -n "$a" ] && in_block "$a" "$b" && ok=$((ok + 1))
	done
	echo "$ok"
}
ok1=$(answers_in dns1 "${b1:--1}")
ok2=$(answers_in dns2 "${b2:--1}")
[ "${b1:--1}" -ge 0 ] && [ "${b2:--1}" -ge 0 ] && [ "$b1" != "$b2" ] &&
	[ $((s1 + s2)) = "$DL_MAX_OPEN" ] && [ "$s1" = "$s2" ] && [ "$ok1" = 20 ] && [ "$ok2" = 20 ]
tap_check $? "2: after the start-up hold ($el s; D = $DRAIN_S s) dns1 holds block $b1 share $s1, dns2 block $b2 share $s2 (disjoint, shares adding up to max_open $DL_MAX_OPEN); 20 of 20 answers of each from its own block ($ok1, $ok2)"

# ---- 3: another digest is refused ------------------------------------------------------

sed 's/^binding = .*/binding = 601/' "${DL_CONF[gw2]}" >"$LAB_TMP/gw2-stale.conf"
dl_stop gw2
good_conf=${DL_CONF[gw2]}
DL_CONF[gw2]=$LAB_TMP/gw2-stale.conf
dl_start gw2 || tap_diag "gw2 (stale) did not start"
stale_seen() { ctl_node gw2 | grep -q ' refused_stale '; }
poll_until 10 stale_seen
line=$(ctl_node gw2)
tap_diag "controller: $line"
refusals=$(field stale_refusals <<<"$line")
grep -q "node gw2: refused: its \[service\] sections differ" "${DL_LOG[ctl]}"
logged=$?
stale_seen && [ "${refusals:-0}" -ge 1 ] && [ "$logged" = 0 ]
tap_check $? "3: gw2 with binding 601 (another services digest) is refused by the controller: shown refused_stale, stale_refusals ${refusals:-0}, logged"
dl_stop gw2
DL_CONF[gw2]=$good_conf
dl_start gw2 || tap_diag "gw2 did not start again"
poll_until 35 joined gw2
joined gw2
tap_check $? "3: gw2 with its own file joins again ($(ctl_node gw2 | cut -d' ' -f1-7))"
dl_wait_links 35 || tap_diag "the DNS nodes' links to the gateways are not all up"

# ---- 4: relay ----------------------------------------------------------------------------

out=$(relaylag --src-base 198.18.40.1 --count 30)
sum=$(tail -n 1 <<<"$out")
grep -E '^(#|lost)' <<<"$out" | head -n 5 | tap_diag
tap_diag "4: $sum"
tap_diag "4: controller: $(dl_ctl ctl status | grep '^relay')"
[ "$(field server <<<"$sum")" = 30 ] && [ "$(field relayed <<<"$sum")" = 30 ] &&
	[ "$(field lost <<<"$sum")" = 0 ]
tap_check $? "4: 30 fresh clients of net A connect through gw1 ($(field server <<<"$sum") reach the server); each binding is in gw2's table within 3 s: $(field relayed <<<"$sum") relayed, p50 $(field p50_ms <<<"$sum") ms, p99 $(field p99_ms <<<"$sum") ms"

# ---- 5: a client moved to the other gateway ------------------------------------------------

# active SRC ADDR SECONDS: a connection through gw1 every second; prints
# the hosts reached
active() {
	local src=$1 addr=$2 n=$3 i
	for i in $(seq 1 "$n"); do
		gtool "$CLIA" connect --src "$src" --dst "$addr" --port 80 --timeout 2
		sleep 1
	done
}
# move SRC: the operator's routing moves SRC from net A to net B: clib owns
# it, gw2 routes it to clib, the server routes it back through gw2
move() {
	ip -n "$CLIB" route add local "$1/32" dev lo || return 1
	ip -n "$GW2" route add "$1/32" via 198.51.100.6 || return 1
	ip -n "$SRV" route add "$1/32" via "${DL_ADDR4[gw2]}" || return 1
	ip -n "$HPOT" route add "$1/32" via "${DL_ADDR4[gw2]}" || return 1
}
# moved_client SRC: ask dns1, stay active through gw1 for binding + 2 s, move,
# connect through gw2; prints "ADDR before-hosts after-host"
moved_client() {
	local src=$1 ans addr before after
	ans=$(gtool "$CLIA" ask --server "${DL_ADDR4[dns1]}" --src "$src")
	addr=$(awk '{ print $2 }' <<<"$ans")
	[ -n "$addr" ] || { echo "none dns:$ans none"; return; }
	before=$(active "$src" "$addr" $((DL_BINDING + 2)) | sort | uniq -c | awk '{ printf "%s:%s ", $2, $1 }')
	move "$src" || { echo "$addr move-failed none"; return; }
	after=$(gtool "$CLIB" connect --src "$src" --dst "$addr" --port 80 --timeout 3)
	echo "$addr ${before% } $after"
}
r=$(moved_client 198.18.50.7)
tap_diag "5: 198.18.50.7: address, hosts through gw1, host through gw2: $r"
in_gw2=$(dl_set_elems gw2 www_bound4 | grep -c '^198\.18\.50\.7 ')
tap_diag "5: gw2's binding set holds 198.18.50.7: $in_gw2; gw1: $(dl_ctl gw1 status | grep '^controller')"
set -- $r
[ "${3:-}" = server ] && [ "${2:-}" = "server:$((DL_BINDING + 2))" ]
tap_check $? "5: a client active through gw1 for $((DL_BINDING + 2)) s (binding $DL_BINDING s) and then moved to gw2 still reaches the server (${3:-?}; through gw1: ${2:-?})"

# ---- 6: the controller killed under load ---------------------------------------------------

kill -KILL "${DL_PID[ctl]}" 2>/dev/null
wait "${DL_PID[ctl]}" 2>/dev/null
DL_PID[ctl]=""
dropped0=$(dl_field gw1 controller learned_dropped)
out=$(dl_tool tries --resolver "$DL_RES4" --ns "$CLIA" --src 198.18.60.1 --cross-ns "$CLIB" \
	--cross-src 198.19.60.1 --count 100 --slices "$slices4" &
	sleep 0.3
	moved_client 198.18.51.7 >"$LAB_TMP/moved-down.txt"
	wait)
sum=$(tail -n 1 <<<"$out")
tap_diag "6: with the controller down: $sum"
[ "$(field tries <<<"$sum")" = 100 ] && [ "$(field dnsfail <<<"$sum")" = 0 ] &&
	[ "$(field server <<<"$sum")" = 100 ] && [ "$(field misroutes <<<"$sum")" = 0 ] &&
	[ "$(field cross_server <<<"$sum")" = 100 ]
tap_check $? "6: controller killed: 100 clients ask Unbound and connect at once through gw1, and 100 of net B through gw2: $(field server <<<"$sum") and $(field cross_server <<<"$sum") reach the server, $(field misroutes <<<"$sum") misroutes, $(field dnsfail <<<"$sum") DNS failures"
r=$(cat "$LAB_TMP/moved-down.txt")
dropped=$(dl_field gw1 controller learned_dropped)
tap_diag "6: 198.18.51.7 moved while the controller is down: $r; gw1 learned_dropped $dropped0 -> $dropped"
set -- $r
[ "${3:-}" = honeypot ] && [ "${dropped:-0}" -gt "${dropped0:-0}" ]
tap_check $? "6: a client moved to gw2 while the controller is down is not relayed: it reaches the ${3:-?} (what check 5 guards against); gw1 counted the bindings it could not report ($dropped0 -> $dropped)"

# ---- 7: the controller back ---------------------------------------------------------------

start=$SECONDS
dl_start ctl || tap_diag "the controller did not start again"
poll_until 40 all_joined
ok_join=$?
el=$((SECONDS - start))
read -r nb1 ns1 _ <<<"$(dns_slice dns1)"
read -r nb2 ns2 _ <<<"$(dns_slice dns2)"
ok1=$(answers_in dns1 "$b1")
tap_diag "7: after the restart: dns1 block $nb1 share $ns1, dns2 block $nb2 share $ns2; $(dl_ctl ctl status | grep '^slices')"
[ "$nb1" = "$b1" ] && [ "$ns1" = "$s1" ] && [ "$nb2" = "$b2" ] && [ "$ns2" = "$s2" ] && [ "$ok1" = 20 ]
tap_check $? "7: the restarted controller rebuilt its view from the DNS nodes' claims: the same blocks and shares ($nb1/$ns1, $nb2/$ns2), dns1 answered 20 of 20 from its block ($ok1)"
out=$(relaylag --src-base 198.18.70.1 --count 10)
sum=$(tail -n 1 <<<"$out")
tap_diag "7: $sum"
[ "$ok_join" = 0 ] && [ "$(field relayed <<<"$sum")" = 10 ] && [ "$(field server <<<"$sum")" = 10 ]
tap_check $? "7: the controller started again: all 4 nodes joined within ${el} s (reconnect back-off); relaying works again: $(field relayed <<<"$sum") of 10 fresh bindings reach gw2"

# ---- 7: quarantine fan-out ---------------------------------------------------------------

q_in() { dl_set_elems "$1" quarantine4 | grep -q '^198\.18\.70\.0/28$\|^198\.18\.70\.0-198\.18\.70\.15$'; }
q_both() { q_in gw1 && q_in gw2; }
bound_addr=$(dl_set_elems gw1 www_bound4 | awk '$1 == "198.18.70.1" { print $3; exit }')
qout=$(dl_ctl ctl quarantine 198.18.70.0/28 60)
start=$(date +%s%N)
poll_until 5 q_both
ok_sets=$?
el_ms=$((($(date +%s%N) - start) / 1000000))
h_bound=$(gtool "$CLIA" connect --src 198.18.70.1 --dst "${bound_addr:-203.0.113.1}" --port 80 --timeout 3)
ans=$(gtool "$CLIA" ask --server "${DL_ADDR4[dns1]}" --src 198.18.70.9)
h_fresh=$(gtool "$CLIA" connect --src 198.18.70.9 --dst "$(awk '{ print $2 }' <<<"$ans")" --port 80 --timeout 3)
h_other=$(gtool "$CLIA" connect --src 198.18.70.1 --dst "${bound_addr:-203.0.113.1}" --port 80 --timeout 3 >/dev/null;
	  ans=$(gtool "$CLIA" ask --server "${DL_ADDR4[dns1]}" --src 198.18.71.9)
	  gtool "$CLIA" connect --src 198.18.71.9 --dst "$(awk '{ print $2 }' <<<"$ans")" --port 80 --timeout 3)
tap_diag "7: $qout; in both gateways' sets after ${el_ms} ms; bound client ($bound_addr): $h_bound; fresh asker in the prefix: $h_fresh ($ans); asker outside it: $h_other"
[ "$ok_sets" = 0 ] && [ -n "$bound_addr" ] && [ "$h_bound" = honeypot ] && [ "$h_fresh" = honeypot ] &&
	[ "$h_other" = server ] && grep -q 'on 2 gateways' <<<"$qout"
tap_check $? "7: quarantine 198.18.70.0/28 through the controller: in both gateways' sets (${el_ms} ms); the bound client and a fresh asker of the prefix reach the honeypot ($h_bound, $h_fresh); an asker outside it the $h_other"

# ---- 7: a gateway rejoining gets what it missed ---------------------------------------------

y_ans=$(gtool "$CLIA" ask --server "${DL_ADDR4[dns1]}" --src 198.18.72.1)
y_addr=$(awk '{ print $2 }' <<<"$y_ans")
y_first=$(gtool "$CLIA" connect --src 198.18.72.1 --dst "$y_addr" --port 80 --timeout 3)
in_bound() { dl_set_elems "$1" www_bound4 | grep -q "^198\.18\.72\.1 \. $y_addr\$"; }
poll_until 3 in_bound gw2
before=$?
replayed0=$(dl_field ctl relay replayed)
kill -KILL "${DL_PID[gw2]}"
wait "${DL_PID[gw2]}" 2>/dev/null
DL_PID[gw2]=""
dl_nft gw2 delete element inet "${DL_TABLE[gw2]}" www_bound4 "{ 198.18.72.1 . $y_addr }"
in_bound gw2
deleted=$?
sleep 1.2 # past the coalescing interval: the refresh is reported
y_again=$(gtool "$CLIA" connect --src 198.18.72.1 --dst "$y_addr" --port 80 --timeout 3)
dl_start gw2 || tap_diag "gw2 did not start again"
poll_until 5 in_bound gw2
after=$?
tap_diag "7: client 198.18.72.1 -> $y_addr ($y_first, then $y_again through gw1); in gw2's set before $before, after the delete $deleted, after gw2's restart $after; $(dl_ctl ctl status | grep '^relay' | cut -d' ' -f1-16)"
[ "$before" = 0 ] && [ "$deleted" = 1 ] && [ "$after" = 0 ] && [ "$y_again" = server ] &&
	[ "$(dl_field ctl relay replayed)" -gt "${replayed0:-0}" ]
tap_check $? "7: gw2's choreod killed and a binding deleted from its table; the client refreshed it through gw1 meanwhile; gw2 restarted: the controller replayed it (replayed ${replayed0:-0} -> $(dl_field ctl relay replayed)), and it is in gw2's table again"
poll_until 35 all_joined || tap_diag "not all joined again"
dl_wait_links 35 || tap_diag "the DNS nodes' links to the gateways are not all up"

# ---- 8: a DNS node leaves ------------------------------------------------------------------

sum_ok() {
	# reserved + draining never above max_open
	dl_ctl ctl status | awk -v m="$DL_MAX_OPEN" '$1 == "slices" {
		for (i = 1; i < NF; i++) { if ($i == "reserved") r = $(i + 1); if ($i == "draining_share") d = $(i + 1) }
		exit !(r + d <= m) }'
}
dl_stop dns2
t_left=$SECONDS
poll_until 5 eval '[ "$(ctl_node dns2 | awk "{ print \$5 }")" = absent ]'
st=$(dl_ctl ctl status | grep '^slices')
tap_diag "8: dns2 left: $st; $(ctl_node dns2 | cut -c1-160)"
early_ok=0 samples=0
while [ $((SECONDS - t_left)) -lt $((DRAIN_S - 5)) ]; do
	read -r _ s1now _ <<<"$(dns_slice dns1)"
	sum_ok || early_ok=1
	[ "${s1now:-0}" -gt "$s1" ] && early_ok=2
	samples=$((samples + 1))
	sleep 2
done
raised() { read -r _ s1now _ <<<"$(dns_slice dns1)"; [ "${s1now:-0}" = "$DL_MAX_OPEN" ]; }
poll_until 20 raised
late_ok=$?
el=$((SECONDS - t_left))
tap_diag "8: $(dl_ctl ctl status | grep '^slices')"
[ "$early_ok" = 0 ] && [ "$samples" -ge 5 ] && [ "$late_ok" = 0 ] &&
	grep -q "node dns2 left: its slices drain" "${DL_LOG[ctl]}"
tap_check $? "8: dns2 left (LEAVE): for $((DRAIN_S - 5)) s ($samples samples) dns1's share stayed $s1 and reserved + draining never exceeded max_open; then, $el s after the leave (D = $DRAIN_S s), dns1 holds all $DL_MAX_OPEN"

alive=0
for n in ctl gw1 gw2 dns1; do lab_alive "${DL_PID[$n]:-0}" && alive=$((alive + 1)); done
tap_diag "checks took $((SECONDS - T0)) s"
[ "$alive" = 4 ]
tap_check $? "the 4 choreod left still run ($alive)"
tap_done
