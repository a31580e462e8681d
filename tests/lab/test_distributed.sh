#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The distributed mode end to end, in the lab of distlab.sh: two DNS nodes
# (role dns, each its slice of the pools and its share of max_open) and two
# gateways (role gateway, each its own table, each in front of its own
# client network), linked over the peer protocol; Unbound with both DNS
# nodes as stub addresses; real TCP connections to real services.
#
#   1  choreod -t over the four files: one deployment (and a broken one is not)
#   2  the four links are up, seen from both ends
#   3  clients of net A and of net B, IPv4 and IPv6, each asking Unbound from
#      a fresh source, connect at once through their own gateway: the server,
#      0 misroutes; a fresh client of the other network, through the other
#      gateway, at once too (the window is in both gateways before the answer
#      leaves); the questions reach both DNS nodes
#   4  strangers: after the window, through either gateway -> honeypot (the
#      asker, bound, still the server); the scanner sweeping the pool through
#      either gateway -> honeypot only, counted by that gateway and logged
#      by the honeypot
#   5  max_open holds across nodes under a burst to both DNS nodes: sampled
#      open_now of both nodes and each gateway's open sets; strangers
#      sweeping right after reach at most max_open addresses
#   7  the link counters agree: what the DNS nodes sent is what each gateway
#      received and applied
#   6  commit before answer across machines: a gateway stopped (SIGSTOP):
#      SERVFAIL at commit_timeout, no answer names an address the stopped
#      gateway lacks; SIGCONT: answers resume, and the stale changes it
#      applies late do not open more than max_open; SIGTERM: link down,
#      SERVFAIL at once, bound clients still served by its kernel; restart:
#      the DNS nodes reconnect, answers resume
#   8  a DNS node restarted while its windows are open: it counts the
#      gateways' windows (WINDOWS) and its slice holds at most its share
#
# TAP output; exits non-zero if anything failed. LAB_KEEP=1 keeps the temp
# dir (configurations, logs of the four choreod, Unbound, the services).
# DIST_TRIES=N (default 100; make test-distributed: 1000) clients per run
# of check 3.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# the deadline far off: check 6 times SERVFAIL at commit_timeout
# (test_gateway_down.sh tries the deadline)
DL_GATEWAY_DEADLINE=${DL_GATEWAY_DEADLINE:-60000}
. "$here/distlab.sh"

distlab_init dist
distlab_up
lab_log "lab up in $SECONDS s (tls on 443: $GW_TLS)"
T0=$SECONDS
N=${DIST_TRIES:-100}
case "$N" in ''|*[!0-9]*) lab_die "DIST_TRIES must be a number" ;; esac
# (each run's sources take N consecutive addresses from their own /22)
[ "$N" -ge 100 ] && [ "$N" -le 1000 ] || lab_die "DIST_TRIES must be 100..1000"

# ---- helpers ---------------------------------------------------------------------

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
# (no "cmd | grep -q" under pipefail: grep leaving early fails the pipe)
in_set() { grep -qx "$3" <<<"$(dl_set_elems "$1" "$2")"; }
not_in_sets() { ! in_set gw1 "$1" "$2" && ! in_set gw2 "$1" "$2"; }
opens_empty() {
	[ "$(dl_set_count gw1 www_open4)" = 0 ] && [ "$(dl_set_count gw2 www_open4)" = 0 ]
}
link_up() { [ "$(dl_link_state "$1" "$2")" = up ]; }
link_not_up() { ! link_up "$@"; }
links_to_up() { link_up dns1 "$1" && link_up dns2 "$1"; }
links_to_down() { link_not_up dns1 "$1" && link_not_up dns2 "$1"; }
links_up_dns1() { link_up dns1 gw1 && link_up dns1 gw2; }
quiet() {
	[ "$(dl_field dns1 commits pending)" = 0 ] && [ "$(dl_field dns2 commits pending)" = 0 ]
}
stopped() { [ "$(proc_state "$1")" = T ]; }
slices4="dns1=${DL_SLICE4[dns1]},dns2=${DL_SLICE4[dns2]}"
slices6="dns1=${DL_SLICE6[dns1]},dns2=${DL_SLICE6[dns2]}"
# tries RESOLVER NS SRC CROSS_NS CROSS_SRC COUNT SLICES: disttool tries
tries() {
	dl_tool tries --resolver "$1" --ns "$2" --src "$3" --cross-ns "$4" \
		--cross-src "$5" --count "$6" --slices "$7"
}
# sweep NS SRC PORT: every pool address from SRC; prints the summary line
sweep() {
	gtool "$1" sweep --src "$2" --prefix "$DL_POOL4" --port "$3" --timeout 3 |
		grep '^summary'
}
st_all() {
	local n
	for n in "${DL_NODES[@]}"; do
		echo "== $n"
		dl_ctl "$n" status 2>&1
	done
}

# ---- 1: one deployment -------------------------------------------------------------

distlab_confs
out=$("$GW_CHOREOD" -t -c "${DL_CONF[gw1]}" -c "${DL_CONF[gw2]}" -c "${DL_CONF[dns1]}" \
	-c "${DL_CONF[dns2]}" 2>&1)
rc=$?
tap_diag <<<"$out"
# the attacker's mistake to catch: one node's share raised (5 + 4 > max_open 8)
sed "s/^share = .*/share = $((DL_SHARE[dns2] + 1))/" "${DL_CONF[dns2]}" >"$LAB_TMP/dns2-bad.conf"
bad=$("$GW_CHOREOD" -t -c "${DL_CONF[gw1]}" -c "${DL_CONF[gw2]}" -c "${DL_CONF[dns1]}" \
	-c "$LAB_TMP/dns2-bad.conf" 2>&1)
rc_bad=$?
tap_diag "with dns2's share $((DL_SHARE[dns2] + 1)): $(grep -v ': OK:' <<<"$bad" | head -n 2)"
[ "$rc" = 0 ] && grep -q 'make one deployment' <<<"$out" && [ "$rc_bad" = 1 ] &&
	grep -q 'add up' <<<"$bad"
tap_check $? "1: choreod -t over gw1 gw2 dns1 dns2: one deployment (exit $rc); with a share raised past max_open it is refused (exit $rc_bad)"

# ---- 2: the links ----------------------------------------------------------------------

start=$(now)
if ! distlab_start_all; then
	st_all | tap_diag
	tap_not_ok "2: the four choreod start and link"
	tap_done
	exit 1
fi
el=$(since "$start")
ups=0
for pair in dns1:gw1 dns1:gw2 dns2:gw1 dns2:gw2 gw1:dns1 gw1:dns2 gw2:dns1 gw2:dns2; do
	link_up "${pair%:*}" "${pair#*:}" && ups=$((ups + 1))
done
for n in dns1 gw1; do dl_ctl "$n" status | grep -E '^(role|peer )' | sed "s/^/$n: /" | tap_diag; done
[ "$ups" = 8 ]
tap_check $? "2: all 4 links up, seen from both ends ($ups of 8 'peer NAME up'; started and linked in $el s)"

# ---- 3: legitimate clients -------------------------------------------------------------

# four runs of $N (100 by default): (IPv4, IPv6) x (net A asks, net B asks); each try from a
# fresh source; the other network's fresh client crosses at once
declare -A by_node=([dns1]=0 [dns2]=0)
run_tries() {
	local fam=$1 who=$2 res src other ns ons sl out sum n
	if [ "$fam" = 4 ]; then res=$DL_RES4 sl=$slices4; else res=$DL_RES6 sl=$slices6; fi
	if [ "$who" = A ]; then
		ns=$CLIA ons=$CLIB
		if [ "$fam" = 4 ]; then src=198.18.100.1 other=198.19.100.1; else src=2001:db8:18::1:1 other=2001:db8:19::1:1; fi
	else
		ns=$CLIB ons=$CLIA
		if [ "$fam" = 4 ]; then src=198.19.105.1 other=198.18.105.1; else src=2001:db8:19::2:1 other=2001:db8:18::2:1; fi
	fi
	out=$(tries "$res" "$ns" "$src" "$ons" "$other" "$N" "$sl")
	sum=$(tail -n 1 <<<"$out")
	grep '^#' <<<"$out" | head -n 10 | tap_diag
	tap_diag "3: IPv$fam net $who: $sum"
	for n in dns1 dns2; do by_node[$n]=$((by_node[$n] + $(field "$n" <<<"$sum"))); done
	[ "$(field tries <<<"$sum")" = "$N" ] && [ "$(field dnsfail <<<"$sum")" = 0 ] &&
		[ "$(field server <<<"$sum")" = "$N" ] && [ "$(field misroutes <<<"$sum")" = 0 ] &&
		[ "$(field cross_server <<<"$sum")" = "$N" ] && [ "$(field outside <<<"$sum")" = 0 ]
	tap_check $? "3: IPv$fam, net $who: $N clients ask Unbound from fresh sources and connect at once through their gateway: $(field server <<<"$sum") reach the server, $(field misroutes <<<"$sum") misroutes; $N fresh clients of the other net through the other gateway: $(field cross_server <<<"$sum") server"
}
run_tries 4 A
run_tries 4 B
run_tries 6 A
run_tries 6 B
# direct askers: a client of each network asks a DNS node itself (net A
# dns1, net B dns2) and connects at once; the other network crosses
run_direct() {
	local who=$1 node=$2 src=$3 other=$4 ns=$5 ons=$6 out sum
	out=$(tries "${DL_ADDR4[$node]}" "$ns" "$src" "$ons" "$other" "$N" "$slices4")
	sum=$(tail -n 1 <<<"$out")
	tap_diag "3: direct, net $who asks $node: $sum"
	[ "$(field tries <<<"$sum")" = "$N" ] && [ "$(field dnsfail <<<"$sum")" = 0 ] &&
		[ "$(field server <<<"$sum")" = "$N" ] && [ "$(field misroutes <<<"$sum")" = 0 ] &&
		[ "$(field cross_server <<<"$sum")" = "$N" ] && [ "$(field outside <<<"$sum")" = 0 ] &&
		[ "$(field "$node" <<<"$sum")" = "$N" ]
	tap_check $? "3: direct askers, net $who asks $node itself and connects at once: $(field server <<<"$sum") of $N reach the server, $(field misroutes <<<"$sum") misroutes; the other net's fresh clients: $(field cross_server <<<"$sum")"
}
run_direct A dns1 198.18.115.1 198.19.115.1 "$CLIA" "$CLIB"
run_direct B dns2 198.19.120.1 198.18.120.1 "$CLIB" "$CLIA"
for n in dns1 dns2; do
	tap_diag "3: $n after the clients: $(dl_ctl "$n" status | grep '^gateways' | cut -d' ' -f2-16)"
done
[ "${by_node[dns1]}" -ge 40 ] && [ "${by_node[dns2]}" -ge 40 ]
tap_check $? "3: Unbound spread the $((4 * N)) questions over both DNS nodes (answers from dns1's slices ${by_node[dns1]}, from dns2's ${by_node[dns2]})"

# ---- 4: strangers -------------------------------------------------------------------------

# an answer to a client of net A, IPv4 and IPv6; the client connects (bound
# in gw1); then nobody asks until the windows are gone from both gateways
A0=198.18.40.1 A06=2001:db8:18::40:1
poll_until 10 opens_empty
t4=$(now)
X=$(gtool "$CLIA" ask --src "$A0" --server "$DL_RES4" --rd --type A | awk '$1 == "NOERROR" { print $2 }')
X6=$(gtool "$CLIA" ask --src "$A06" --server "$DL_RES6" --rd --type AAAA | awk '$1 == "NOERROR" { print $2 }')
c0=$(gtool "$CLIA" connect --src "$A0" --dst "${X:-none}" --port 22)
c06=$(gtool "$CLIA" connect --src "$A06" --dst "${X6:-none}" --port 22)
in1=0; in_set gw1 www_open4 "$X" && in_set gw2 www_open4 "$X" && in1=1
poll_until 10 not_in_sets www_open4 "$X"
closed=$?
poll_until 5 not_in_sets www_open6 "$X6"
closed6=$?
el=$(since "$t4")
sleep 0.2
sB=$(gtool "$CLIB" connect --src 198.19.40.2 --dst "$X" --port 22)
sA=$(gtool "$CLIA" connect --src 198.18.40.2 --dst "$X" --port 80)
sB6=$(gtool "$CLIB" connect --src 2001:db8:19::40:2 --dst "$X6" --port 22)
b0=$(gtool "$CLIA" connect --src "$A0" --dst "$X" --port 25)
b06=$(gtool "$CLIA" connect --src "$A06" --dst "$X6" --port 80)
tap_diag "4: $A0 got $X (in both gateways' open sets: $in1), connected: $c0; $A06 got $X6: $c06; windows gone from both gateways after $el s (window $DL_WINDOW + grace $DL_GRACE)"
tap_diag "4: then strangers: net B $sB, net A $sA, net B IPv6 $sB6; the bound askers: $b0, $b06"
[ -n "$X" ] && [ -n "$X6" ] && [ "$in1" = 1 ] && [ "$c0" = server ] && [ "$c06" = server ] &&
	[ "$closed" = 0 ] && [ "$closed6" = 0 ] && [ "$sB" = honeypot ] && [ "$sA" = honeypot ] &&
	[ "$sB6" = honeypot ] && [ "$b0" = server ] && [ "$b06" = server ]
tap_check $? "4: after its window, an answered address leads strangers of either network (IPv4 and IPv6) to the honeypot; the client that used it stays bound to the server"

# the scanner (behind gw2) and a stranger of net A (behind gw1) sweep the pool
poll_until 10 opens_empty || tap_diag "open sets not empty: $(dl_set_elems gw1 www_open4 | tr '\n' ' ') / $(dl_set_elems gw2 www_open4 | tr '\n' ' ')"
hp1_0=$(dl_gw_pool_field gw1 "$DL_POOL4" to_honeypot)
hp2_0=$(dl_gw_pool_field gw2 "$DL_POOL4" to_honeypot)
SA=198.18.41.9
s_scan=$(sweep "$SCAN" "$DL_SCAN4" 80)
s_a=$(sweep "$CLIA" "$SA" 80)
hp_counted() {
	[ "$(dl_gw_pool_field gw2 "$DL_POOL4" to_honeypot)" -ge $((hp2_0 + 128)) ] &&
		[ "$(dl_gw_pool_field gw1 "$DL_POOL4" to_honeypot)" -ge $((hp1_0 + 128)) ]
}
poll_until 5 hp_counted
hp1=$(dl_gw_pool_field gw1 "$DL_POOL4" to_honeypot)
hp2=$(dl_gw_pool_field gw2 "$DL_POOL4" to_honeypot)
logged_scan=$(gw_hits honeypot "$DL_SCAN4" 80)
logged_a=$(gw_hits honeypot "$SA" 80)
srv_scan=$(( $(gw_hits server "$DL_SCAN4") + $(gw_hits server "$SA") ))
tap_diag "4: scanner $DL_SCAN4 via gw2: $s_scan; stranger $SA via gw1: $s_a"
tap_diag "4: to_honeypot gw1 $hp1_0 -> $hp1, gw2 $hp2_0 -> $hp2; the honeypot logged $logged_scan + $logged_a, the server $srv_scan"
[ "$(field server <<<"$s_scan")" = 0 ] && [ "$(field honeypot <<<"$s_scan")" = 128 ] &&
	[ "$(field server <<<"$s_a")" = 0 ] && [ "$(field honeypot <<<"$s_a")" = 128 ] &&
	[ $((hp2 - hp2_0)) -ge 128 ] && [ $((hp1 - hp1_0)) -ge 128 ] &&
	[ "$logged_scan" = 128 ] && [ "$logged_a" = 128 ] && [ "$srv_scan" = 0 ]
tap_check $? "4: the scanner sweeping the pool through gw2, and a stranger through gw1: 128 of 128 to the honeypot each, counted by that gateway (to_honeypot +$((hp2 - hp2_0)), +$((hp1 - hp1_0))) and logged by the honeypot; the server saw none"

# ---- 5: max_open across nodes -------------------------------------------------------

# a burst to both DNS nodes at once (IPv4 and IPv6 questions), sampled
f1=$LAB_TMP/flood1.out f2=$LAB_TMP/flood2.out f3=$LAB_TMP/flood3.out
gtool "$CLIA" flood --server "${DL_ADDR4[dns1]}" --srcs 198.18.50.1+64 --count 1500 --duration 3 >"$f1" 2>&1 &
p1=$!
gtool "$CLIB" flood --server "${DL_ADDR4[dns2]}" --srcs 198.19.50.1+64 --count 1500 --duration 3 >"$f2" 2>&1 &
p2=$!
gtool "$CLIB" flood --server "${DL_ADDR4[dns1]}" --type AAAA --srcs 198.19.51.1+64 --count 600 --duration 3 >"$f3" 2>&1 &
p3=$!
LAB_PIDS+=("$p1" "$p2" "$p3")
max_on=0 max_g1=0 max_g2=0 max_on6=0 max_g16=0 max_g26=0 samples=0 over=""
deadline=$((SECONDS + 15))
while { kill -0 "$p1" || kill -0 "$p2" || kill -0 "$p3"; } 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
	o=$(( $(dl_pool_field dns1 "$DL_POOL4" open_now) + $(dl_pool_field dns2 "$DL_POOL4" open_now) ))
	o6=$(( $(dl_pool_field dns1 "$DL_POOL6" open_now) + $(dl_pool_field dns2 "$DL_POOL6" open_now) ))
	g1=$(dl_set_count gw1 www_open4); g2=$(dl_set_count gw2 www_open4)
	g16=$(dl_set_count gw1 www_open6); g26=$(dl_set_count gw2 www_open6)
	samples=$((samples + 1))
	[ "$o" -gt "$max_on" ] && max_on=$o
	[ "$g1" -gt "$max_g1" ] && max_g1=$g1
	[ "$g2" -gt "$max_g2" ] && max_g2=$g2
	[ "$o6" -gt "$max_on6" ] && max_on6=$o6
	[ "$g16" -gt "$max_g16" ] && max_g16=$g16
	[ "$g26" -gt "$max_g26" ] && max_g26=$g26
	[ "$o" -gt "$DL_MAX_OPEN" ] || [ "$g1" -gt "$DL_MAX_OPEN" ] || [ "$g2" -gt "$DL_MAX_OPEN" ] &&
		over+="$o/$g1/$g2 "
done
wait "$p1" "$p2" "$p3"
# strangers sweep right after: the burst's windows are still open
s5a=$(sweep "$CLIA" 198.18.55.5 22)
s5b=$(sweep "$SCAN" 198.19.210.5 22)
fl1=$(head -n 1 "$f1"); fl2=$(head -n 1 "$f2"); fl3=$(head -n 1 "$f3")
tap_diag "5: dns1 A: $fl1"
tap_diag "5: dns2 A: $fl2"
tap_diag "5: dns1 AAAA: $fl3"
tap_diag "5: $samples samples; most open at once: IPv4 open_now dns1+dns2 $max_on, gw1 www_open4 $max_g1, gw2 $max_g2; IPv6 $max_on6, $max_g16, $max_g26 ${over:+; over: $over}"
tap_diag "5: strangers right after: via gw1 $s5a; via gw2 $s5b"
[ "$(field noerror <<<"$fl1")" = 1500 ] && [ "$(field noerror <<<"$fl2")" = 1500 ] &&
	[ "$(field noerror <<<"$fl3")" = 600 ]
tap_check $? "5: a burst of 3600 questions to both DNS nodes at once: every one answered NOERROR"
[ "$samples" -ge 10 ] && [ "$max_on" -le "$DL_MAX_OPEN" ] && [ "$max_g1" -le "$DL_MAX_OPEN" ] &&
	[ "$max_g2" -le "$DL_MAX_OPEN" ] && [ "$max_on6" -le "$DL_MAX_OPEN" ] &&
	[ "$max_g16" -le "$DL_MAX_OPEN" ] && [ "$max_g26" -le "$DL_MAX_OPEN" ] &&
	[ "$max_on" -ge "$DL_MAX_OPEN" ]
tap_check $? "5: max_open $DL_MAX_OPEN holds across the nodes through the burst ($samples samples: open_now summed over dns1+dns2 at most $max_on, gw1's open set $max_g1, gw2's $max_g2; IPv6 $max_on6, $max_g16, $max_g26)"
[ "$(field server <<<"$s5a")" -le "$DL_MAX_OPEN" ] && [ "$(field server <<<"$s5b")" -le "$DL_MAX_OPEN" ] &&
	[ "$(field server <<<"$s5a")" -ge 1 ]
tap_check $? "5: strangers sweeping the pool right after the burst reach at most max_open addresses (via gw1 $(field server <<<"$s5a"), via gw2 $(field server <<<"$s5b"))"

# ---- 7: the counters agree ------------------------------------------------------------

poll_until 5 quiet
sleep 0.3
declare -A C
for n in dns1 dns2; do
	C[$n.commits]=$(dl_field "$n" gateways commits)
	C[$n.failures]=$(dl_field "$n" gateways failures)
	C[$n.frames]=$(dl_field "$n" gateways frames)
	C[$n.elements]=$(dl_field "$n" gateways elements)
	C[$n.p50]=$(dl_field "$n" gateways p50)
	C[$n.p99]=$(dl_field "$n" gateways p99)
	C[$n.max]=$(dl_field "$n" gateways max)
done
for n in gw1 gw2; do
	C[$n.frames]=$(dl_field "$n" changes_received frames)
	C[$n.applied]=$(dl_field "$n" changes_received applied)
	C[$n.changes]=$(dl_field "$n" changes_received changes)
done
links_ok=1 links=""
for d in dns1 dns2; do
	for g in gw1 gw2; do
		do_=$(dl_field "$d" "peer $g" frames_out); di=$(dl_field "$d" "peer $g" frames_in)
		gi=$(dl_field "$g" "peer $d" frames_in); go=$(dl_field "$g" "peer $d" frames_out)
		links+="$d->$g $do_=$gi, $g->$d $go=$di; "
		[ -n "$do_" ] && [ "$do_" = "$gi" ] && [ "$go" = "$di" ] || links_ok=0
	done
done
sent=$((${C[dns1.frames]} + ${C[dns2.frames]}))
commits_ok=$((${C[dns1.commits]} - ${C[dns1.failures]} + ${C[dns2.commits]} - ${C[dns2.failures]}))
tap_diag "7: dns1 commits ${C[dns1.commits]} failures ${C[dns1.failures]} frames ${C[dns1.frames]} elements ${C[dns1.elements]}; dns2 ${C[dns2.commits]} ${C[dns2.failures]} ${C[dns2.frames]} ${C[dns2.elements]}"
tap_diag "7: gw1 received ${C[gw1.frames]} applied ${C[gw1.applied]} changes ${C[gw1.changes]}; gw2 ${C[gw2.frames]} ${C[gw2.applied]} ${C[gw2.changes]}"
tap_diag "7: links (frames sent = received): $links"
tap_diag "7: commit latency across machines (both gateways acknowledged): dns1 p50 ${C[dns1.p50]} us p99 ${C[dns1.p99]} us max ${C[dns1.max]} us; dns2 p50 ${C[dns2.p50]} p99 ${C[dns2.p99]} max ${C[dns2.max]}"
[ "${C[dns1.failures]}" = 0 ] && [ "${C[dns2.failures]}" = 0 ] &&
	[ "${C[gw1.frames]}" = "${C[gw2.frames]}" ] && [ "${C[gw1.frames]}" = "$commits_ok" ] &&
	[ "$((${C[gw1.frames]} + ${C[gw2.frames]}))" = "$sent" ] &&
	[ "${C[gw1.applied]}" = "${C[gw1.frames]}" ] && [ "${C[gw2.applied]}" = "${C[gw2.frames]}" ] &&
	[ "${C[gw1.changes]}" = "${C[gw2.changes]}" ] &&
	[ "$((${C[gw1.changes]} + ${C[gw2.changes]}))" = "$((${C[dns1.elements]} + ${C[dns2.elements]}))" ] &&
	[ "$links_ok" = 1 ] && [ "$commits_ok" -gt 400 ]
tap_check $? "7: counters agree: every DNS commit went as one CHANGES frame to each gateway (gw1 received ${C[gw1.frames]} = gw2 ${C[gw2.frames]} = commits of dns1 + dns2 = $commits_ok, all applied; changes ${C[gw1.changes]} each = elements sent / 2), and on each of the 4 links the frames sent = the frames received, both ways"

# ---- 6: a gateway stopped, then killed ----------------------------------------------------

CT=$DL_COMMIT_TIMEOUT
gw1pid=${DL_PID[gw1]}
# questions in flight when gw1 stops: a stream to both nodes, gw1 stopped in it
fs1=$LAB_TMP/stop1.out fs2=$LAB_TMP/stop2.out
gtool "$CLIB" flood --server "${DL_ADDR4[dns1]}" --srcs 198.19.60.1+32 --count 200 --duration 1 >"$fs1" 2>&1 &
p1=$!
gtool "$CLIB" flood --server "${DL_ADDR4[dns2]}" --srcs 198.19.61.1+32 --count 200 --duration 1 >"$fs2" 2>&1 &
p2=$!
LAB_PIDS+=("$p1" "$p2")
# stop gw1 once both streams are flowing
q0_1=$(dl_field dns1 dns queries) q0_2=$(dl_field dns2 dns queries)
flowing() {
	[ "$(dl_field dns1 dns queries)" -ge $((q0_1 + 40)) ] &&
		[ "$(dl_field dns2 dns queries)" -ge $((q0_2 + 40)) ]
}
poll_until 5 flowing
# (a stopped process ignores the cleanup's SIGTERM: continue it first)
trap 'st_=$?; kill -CONT "$gw1pid" 2>/dev/null; (exit "$st_"); lab_cleanup' EXIT
kill -STOP "$gw1pid"
t_stop=$(now)
poll_until 2 stopped "$gw1pid"
st=$?
wait "$p1" "$p2"
# gw1's kernel still holds its table: every address answered NOERROR must be
# in gw1's open set (the windows last window + grace; this is within 2 s)
gw1_open=$(dl_set_elems gw1 www_open4)
missing=""
for a in $(sed -n 's/^addrs //p' "$fs1" "$fs2" | tr ' ' '\n' | sort -u); do
	grep -qx "$a" <<<"$gw1_open" || missing+="$a "
done
tap_diag "6: gw1 (pid $gw1pid) stopped (state $(proc_state "$gw1pid")) during a stream: dns1 $(head -n 1 "$fs1"); dns2 $(head -n 1 "$fs2")"
tap_diag "6: answered addresses not in stopped gw1's kernel: ${missing:-none}; $(since "$t_stop") s after the stop"
# now one question at a time to each node, timed; a NOERROR would be
# connected at once from net A, through the stopped gateway's kernel
q1=$(dl_tool ask --server "${DL_ADDR4[dns1]}" --ns "$CLIB" --src 198.19.62.1 --count 5 \
	--via-ns "$CLIA" --via-src 198.18.62.1)
q2=$(dl_tool ask --server "${DL_ADDR4[dns2]}" --ns "$CLIB" --src 198.19.63.1 --count 5 \
	--via-ns "$CLIA" --via-src 198.18.63.1)
tap_diag "6: gw1 stopped, dns1: $q1"
tap_diag "6: gw1 stopped, dns2: $q2"
n_sf=$(( $(field servfail <<<"$q1") + $(field servfail <<<"$q2") ))
ok_ms=1
for q in "$q1" "$q2"; do
	awk -v lo="$(field ms_min <<<"$q")" -v hi="$(field ms_max <<<"$q")" -v ct="$CT" \
		'BEGIN { exit !(lo >= ct * 0.9 && hi <= ct + 400) }' || ok_ms=0
done
g2_open=$(dl_set_count gw2 www_open4)
[ "$st" = 0 ] && [ -z "$missing" ] && [ "$(field servfail <<<"$(head -n 1 "$fs1")")" -ge 1 ] &&
	[ "$(field noerror <<<"$(head -n 1 "$fs1")")" -ge 1 ] &&
	[ "$n_sf" = 10 ] && [ "$ok_ms" = 1 ] && [ "$(field via_server <<<"$q1")" = 0 ] &&
	[ "$(field via_other <<<"$q1")" = 0 ] && [ "$g2_open" -le "$DL_MAX_OPEN" ]
tap_check $? "6: gw1 stopped (SIGSTOP) in a stream to both nodes: the answers turn SERVFAIL; each NOERROR one ($(( $(field noerror <<<"$(head -n 1 "$fs1")") + $(field noerror <<<"$(head -n 1 "$fs2")") ))) names an address in the stopped gw1's kernel (missing: ${missing:-none}); then one by one, $n_sf of 10 SERVFAIL at commit_timeout $CT ms ($(field ms_min <<<"$q1")-$(field ms_max <<<"$q1"), $(field ms_min <<<"$q2")-$(field ms_max <<<"$q2") ms); gw2's open set $g2_open <= max_open"

# SIGCONT: gw1 applies the changes queued while it was stopped (stale ones
# too); the answers resume; its open set is watched while they do
kill -CONT "$gw1pid"
t_cont=$(now)
trap lab_cleanup EXIT
resumed() {
	local a b
	a=$(dl_tool ask --server "${DL_ADDR4[dns1]}" --ns "$CLIB" --src 198.19.64.1 --count 1)
	b=$(dl_tool ask --server "${DL_ADDR4[dns2]}" --ns "$CLIB" --src 198.19.64.2 --count 1)
	[ "$(field noerror <<<"$a")" = 1 ] && [ "$(field noerror <<<"$b")" = 1 ]
}
poll_until 5 resumed
res_rc=$?
el_res=$(since "$t_cont")
gtool "$CLIA" flood --server "${DL_ADDR4[dns1]}" --srcs 198.18.65.1+32 --count 300 --duration 4 >"$LAB_TMP/cont1.out" 2>&1 &
p1=$!
gtool "$CLIB" flood --server "${DL_ADDR4[dns2]}" --srcs 198.19.65.1+32 --count 300 --duration 4 >"$LAB_TMP/cont2.out" 2>&1 &
p2=$!
LAB_PIDS+=("$p1" "$p2")
max_c1=0 max_c2=0 nc=0
deadline=$((SECONDS + 10))
while { kill -0 "$p1" || kill -0 "$p2"; } 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
	g1=$(dl_set_count gw1 www_open4); g2=$(dl_set_count gw2 www_open4)
	[ "$g1" -gt "$max_c1" ] && max_c1=$g1
	[ "$g2" -gt "$max_c2" ] && max_c2=$g2
	nc=$((nc + 1))
done
wait "$p1" "$p2"
out=$(tries "$DL_RES4" "$CLIA" 198.18.66.1 "$CLIB" 198.19.66.1 20 "$slices4")
sum=$(tail -n 1 <<<"$out")
tap_diag "6: after SIGCONT: answers resumed in $el_res s; then $sum"
tap_diag "6: after SIGCONT, under a stream ($(head -n 1 "$LAB_TMP/cont1.out" | cut -d' ' -f1-6)): most addresses in the open sets: gw1 $max_c1, gw2 $max_c2 ($nc samples)"
[ "$res_rc" = 0 ] && [ "$(field server <<<"$sum")" = 20 ] && [ "$(field cross_server <<<"$sum")" = 20 ]
tap_check $? "6: SIGCONT: answers resume ($el_res s), 20 of 20 clients reach the server at once through either gateway"
[ "$max_c1" -le "$DL_MAX_OPEN" ] && [ "$max_c2" -le "$DL_MAX_OPEN" ]
tap_check $? "6: after SIGCONT the changes gw1 applies late do not open more than max_open (gw1 at most $max_c1, gw2 $max_c2 of $DL_MAX_OPEN, $nc samples)"

# SIGTERM gw2: links down, SERVFAIL at once; its kernel still serves bindings
B0=198.19.67.1
Y=$(gtool "$CLIB" ask --src "$B0" --server "$DL_RES4" --rd --type A | awk '$1 == "NOERROR" { print $2 }')
yb=$(gtool "$CLIB" connect --src "$B0" --dst "${Y:-none}" --port 22)
t_term=$(now)
dl_stop gw2
poll_until 5 links_to_down gw2
down_rc=$?
el_down=$(since "$t_term")
q1=$(dl_tool ask --server "${DL_ADDR4[dns1]}" --ns "$CLIA" --src 198.18.68.1 --count 5)
q2=$(dl_tool ask --server "${DL_ADDR4[dns2]}" --ns "$CLIA" --src 198.18.68.11 --count 5)
yb2=$(gtool "$CLIB" connect --src "$B0" --dst "${Y:-none}" --port 80)
tap_diag "6: gw2 stopped (SIGTERM): links down after $el_down s: dns1 '$(dl_link_state dns1 gw2)', dns2 '$(dl_link_state dns2 gw2)'"
tap_diag "6: gw2 down, dns1: $q1"
tap_diag "6: gw2 down, dns2: $q2"
tap_diag "6: $B0 bound to $Y through gw2 ($yb) while gw2 ran; with choreod gone from gw2: $yb2"
[ "$down_rc" = 0 ] && [ "$(field servfail <<<"$q1")" = 5 ] && [ "$(field servfail <<<"$q2")" = 5 ] &&
	awk -v a="$(field ms_max <<<"$q1")" -v b="$(field ms_max <<<"$q2")" -v ct="$CT" \
		'BEGIN { exit !(a < ct && b < ct) }' && [ "$yb" = server ] && [ "$yb2" = server ]
tap_check $? "6: gw2 stopped (SIGTERM): both DNS nodes see its link down ($el_down s) and answer SERVFAIL at once (max $(field ms_max <<<"$q1"), $(field ms_max <<<"$q2") ms), 10 of 10; a client bound through gw2 still reaches the server (its kernel keeps the table)"

# restart gw2: the DNS nodes reconnect (back-off 1 s doubling), answers resume
t_start=$(now)
dl_start gw2
start_rc=$?
poll_until 20 links_to_up gw2
up_rc=$?
el_up=$(since "$t_start")
out=$(tries "$DL_RES4" "$CLIB" 198.19.69.1 "$CLIA" 198.18.69.1 20 "$slices4")
sum=$(tail -n 1 <<<"$out")
grep '^#' <<<"$out" | head -n 5 | tap_diag
tap_diag "6: gw2 restarted: links up again after $el_up s (dns1: $(dl_ctl dns1 status | grep '^peer gw2')); then $sum"
grep -E 'adopted|link up' "${DL_LOG[gw2]}" | tap_diag
[ "$start_rc" = 0 ] && [ "$up_rc" = 0 ] && [ "$(field server <<<"$sum")" = 20 ] &&
	[ "$(field cross_server <<<"$sum")" = 20 ]
tap_check $? "6: gw2 restarted: both DNS nodes reconnect within $el_up s, answers resume: 20 of 20 clients of net B reach the server at once, and through gw1 too"

# ---- 8: a DNS node restarts while its windows are open -------------------------------
# Its earlier run's windows are still open in the gateways; the gateways
# report them (WINDOWS) when the links come up, and the new run counts
# those in its slice against its share: its slice never holds more than
# its share of open windows in a gateway's table, across the restart.
in_slice1() { dl_set_elems "$1" www_open4 | awk -F. '$4 < 64' | grep -c .; }
gtool "$CLIA" flood --server "${DL_ADDR4[dns1]}" --srcs 198.18.80.1+32 --count 200 --duration 1 \
	>"$LAB_TMP/flood8a.out" 2>&1
before=$(in_slice1 gw1)
t_r=$(now)
dl_stop dns1
dl_start dns1
restart_rc=$?
poll_until 10 links_up_dns1
links_rc=$?
el_r=$(since "$t_r")
gw_line=$(dl_ctl dns1 status | grep '^gateways')
counted=$(field windows_counted <<<"$gw_line")
open_after=$(dl_pool_field dns1 "$DL_POOL4" open_now)
gtool "$CLIA" flood --server "${DL_ADDR4[dns1]}" --srcs 198.18.81.1+32 --count 600 --duration 2 \
	>"$LAB_TMP/flood8b.out" 2>&1 &
pf=$!
LAB_PIDS+=("$pf")
max8=0 max8g2=0 n8=0
deadline=$((SECONDS + 10))
while kill -0 "$pf" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
	a=$(in_slice1 gw1); b=$(in_slice1 gw2)
	[ "$a" -gt "$max8" ] && max8=$a
	[ "$b" -gt "$max8g2" ] && max8g2=$b
	n8=$((n8 + 1))
done
wait "$pf"
fl8=$(head -n 1 "$LAB_TMP/flood8b.out")
tap_diag "8: dns1's slice held $before open windows in gw1 when dns1 was stopped; restarted and linked in $el_r s; it counted $counted of the gateways' windows (open_now $open_after); $gw_line"
tap_diag "8: the flood after the restart: $fl8; $n8 samples: dns1's slice in gw1's open set at most $max8, in gw2's $max8g2 (share ${DL_SHARE[dns1]})"
[ "$restart_rc" = 0 ] && [ "$links_rc" = 0 ] && [ "$before" -ge 1 ] &&
	[ "${counted:-0}" -ge 1 ] && [ "$n8" -ge 5 ] &&
	[ "$max8" -le "${DL_SHARE[dns1]}" ] && [ "$max8g2" -le "${DL_SHARE[dns1]}" ] &&
	[ "$(field noerror <<<"$fl8")" = 600 ]
tap_check $? "8: dns1 restarted with $before windows of its slice open: it counted the gateways' windows ($counted) and its slice never held more than its share ${DL_SHARE[dns1]} in either gateway (gw1 $max8, gw2 $max8g2) under a flood right after"

# after all that, the links still agree frame for frame, and all run
poll_until 5 quiet
sleep 0.3
links_ok=1 links=""
for d in dns1 dns2; do
	for g in gw1 gw2; do
		do_=$(dl_field "$d" "peer $g" frames_out); di=$(dl_field "$d" "peer $g" frames_in)
		gi=$(dl_field "$g" "peer $d" frames_in); go=$(dl_field "$g" "peer $d" frames_out)
		links+="$d->$g $do_=$gi, $g->$d $go=$di; "
		[ -n "$do_" ] && [ "$do_" = "$gi" ] && [ "$go" = "$di" ] || links_ok=0
	done
done
tap_diag "7: links after 6: $links"
for n in dns1 dns2; do
	tap_diag "$n: $(dl_ctl "$n" status | grep '^gateways')"
done
alive=0
for n in "${DL_NODES[@]}"; do lab_alive "${DL_PID[$n]}" && alive=$((alive + 1)); done
[ "$links_ok" = 1 ] && [ "$alive" = 4 ]
tap_check $? "7: after the stop and the restart the 4 links still agree frame for frame both ways; all 4 choreod run ($alive)"
lab_log "checks took $((SECONDS - T0)) s"
tap_done
