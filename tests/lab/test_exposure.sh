#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The exposure bound against an attacker, in the gateway lab: at any
# instant a stranger reaches the server through at most max_open pool
# addresses, whatever the queries said, and after a restart with another
# pool.
#   a  ECS from a querier that is not a configured resolver: ignored
#   b  ECS from the configured resolver, broad, narrow and overlapping
#      subnets: honoured only at ecs_prefix4, counted against max_open;
#      no query's change turns another's answer into SERVFAIL
#   c  kill -9 with windows open, the pool renumbered, start: only the new
#      pool is handed out and reaches the server; the old windows are gone
#   d  a restart with a pool smaller than max_open
# TAP output; exits non-zero if anything failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/gwlab.sh"

gwlab_init exposure
gwlab_up

field() { gw_value "$@"; }
MAX_OPEN=4
# the attack of the report: broad client subnets, then every /24 of a /16
BROAD="0.0.0.0/1,128.0.0.0/1,10.0.0.0/8,198.18.0.0/15,198.18.77.0/28,198.18.77.0/24"
SUBNETS=$(for i in $(seq 0 63); do printf '198.18.%d.0/24,' $((i * 4)); done)

# sweep SRC: every pool address from SRC, port 22; prints the ones that
# reached the server, one a line
sweep() {
	gw_tool "$1" sweep --src "$1" --prefix "$GW_POOL4" --port 22 |
		awk '$1 != "summary" && $2 == "server" { print $1 }'
}

# the kernel's scoped set, as "subnet . address" lines
scoped() { gw_set_elems www_scoped4; }

CONF=$LAB_TMP/exposure.conf
gwlab_conf "$CONF" ttl=5 window=5 max_open=$MAX_OPEN binding=600 \
	ecs_resolvers="$GW_RES4" ecs_prefix4=24
gwlab_choreod_start "$CONF" || lab_die "choreod did not start"

# ---- a: ECS from a querier that is not a resolver ------------------------------
out=$(gw_tool 198.18.40.1 flood --server "$GW_DNS4" --srcs 198.18.40.1+50 --count 600 \
	--duration 2 --ecs "$BROAD,$SUBNETS")
tap_diag "a: $(head -1 <<<"$out")"
# (each sweep from new sources: a sweep binds its source to what it reached)
fresh=$(sweep 198.19.128.1)
inside=$(sweep 198.18.77.5)
nf=$(grep -c . <<<"$fresh"); ni=$(grep -c . <<<"$inside")
tap_diag "a: a fresh stranger (198.19.128.1) reaches $nf addresses, one inside the claimed subnets (198.18.77.5) $ni; scoped elements: $(scoped | grep -c .)"
tap_diag "a: reached: $(echo $fresh) / $(echo $inside); answered: $(sed -n 's/^addrs //p' <<<"$out")"
[ "$(field noerror <<<"$out")" = 600 ] && [ "$nf" -le $MAX_OPEN ] && [ "$ni" -le $MAX_OPEN ] &&
	[ "$(scoped | grep -c .)" = 0 ]
tap_check $? "a: 600 queries with broad ECS from a non-resolver: all answered, ECS ignored (no scoped window), strangers reach <= max_open $MAX_OPEN addresses ($nf, $ni)"

# ---- b: ECS from the configured resolver -----------------------------------------------
poll_until() { local lim=$1 d; shift; d=$((SECONDS + lim)); until "$@"; do [ $SECONDS -ge $d ] && return 1; sleep 0.2; done; }
open_empty() { [ "$(gw_set_count www_open4)" = 0 ] && [ "$(scoped | grep -c .)" = 0 ]; }
poll_until 15 open_empty
out=$(gw_tool "$GW_RES4" flood --server "$GW_DNS4" --srcs "$GW_RES4" --count 600 \
	--duration 2 --ecs "$BROAD,$SUBNETS")
sc=$(scoped)
fresh=$(sweep 198.19.128.2)
inside=$(sweep 198.18.77.6)
inside2=$(sweep 198.18.8.9)
nf=$(grep -c . <<<"$fresh"); ni=$(grep -c . <<<"$inside"); ni2=$(grep -c . <<<"$inside2")
addrs=$(sed -n 's/^addrs //p' <<<"$out" | wc -w)
tap_diag "b: $(head -1 <<<"$out")"
tap_diag "b: scoped set: $(tr '\n' ' ' <<<"$sc")"
tap_diag "b: strangers reach: fresh $nf, inside 198.18.77.0/24 $ni, inside 198.18.8.0/24 $ni2; distinct answered $addrs"
[ "$(field noerror <<<"$out")" = 600 ] && ! grep -q servfail <<<"$out"
tap_check $? "b: 600 queries with broad, narrow and overlapping ECS from the resolver: all NOERROR, none SERVFAIL"
! grep -v '^$' <<<"$sc" | grep -vqE '^198\.18\.[0-9]+\.0/24 \. 203\.0\.113\.[0-9]+$'
tap_check $? "b: every scoped window is a /24 (broad and /28 subnets are not honoured as such)"
[ "$nf" -le $MAX_OPEN ] && [ "$ni" -le $MAX_OPEN ] && [ "$ni2" -le $MAX_OPEN ] && [ "$addrs" -le $MAX_OPEN ]
tap_check $? "b: a fresh stranger and strangers inside honoured subnets reach <= max_open $MAX_OPEN addresses ($nf, $ni, $ni2); $addrs distinct addresses answered"

# ---- c: kill -9 with windows open, renumber, start -----------------------------------------
out=$(gw_tool 198.18.41.1 flood --server "$GW_DNS4" --srcs 198.18.41.1+20 --count 40 --duration 0.5)
before=$(gw_set_elems www_open4 | tr '\n' ' ')
gwlab_choreod_kill9
NEWPOOL=203.0.113.128/25
gwlab_conf "$CONF" ttl=5 window=5 max_open=$MAX_OPEN binding=600 pool=$NEWPOOL \
	ecs_resolvers="$GW_RES4" ecs_prefix4=24
gwlab_choreod_start "$CONF" || lab_die "choreod did not restart"
left_open=$(gw_set_elems www_open4 | tr '\n' ' ')
left_asked=$(gw_set_elems www_asked4 | awk '{ print $3 }' | sort -u | tr '\n' ' ')
tap_diag "c: open before the kill: $before"
tap_diag "c: after the restart: open [$left_open] asked addresses [$left_asked]"
grep 'adopted from the kernel' "$GW_CHOREOD_LOG" | tap_diag
out=$(gw_tool 198.18.42.1 askconnect --server "$GW_DNS4" --port 22 --srcs 198.18.42.1+40 --show)
tap_diag "c: $(tail -1 <<<"$out")"
outside=$(awk '$1 == "=" { print $3 }' <<<"$out" | awk -F. '$4 < 128' | sort -u | tr '\n' ' ')
! grep -qE '203\.0\.113\.([0-9]|[1-9][0-9]|1[01][0-9]|12[0-7]) ' <<<"$left_open $left_asked " &&
	grep -q 'entries removed' "$GW_CHOREOD_LOG"
tap_check $? "c: the restart removed every window and answer entry of the old pool from the kernel"
[ -z "$outside" ] && [ "$(field server <<<"$(tail -1 <<<"$out")")" = 40 ]
tap_check $? "c: after renumbering, 40 of 40 answers are in $NEWPOOL and lead to the server (outside: ${outside:-none})"

# ---- d: a pool smaller than max_open -------------------------------------------------------
gwlab_choreod_kill9
gwlab_conf "$CONF" ttl=5 window=5 max_open=16 binding=600 pool=203.0.113.200/30
gwlab_choreod_start "$CONF"
rc=$?
out=$(gw_tool 198.18.43.1 askconnect --server "$GW_DNS4" --port 22 --srcs 198.18.43.1+20 --show)
tap_diag "d: $(tail -1 <<<"$out")"
ans=$(awk '$1 == "=" { print $3 }' <<<"$out" | sort -u | tr '\n' ' ')
[ $rc = 0 ] && [ "$(field server <<<"$(tail -1 <<<"$out")")" = 20 ] &&
	! grep -qvE '^203\.0\.113\.20[0-3]$' <<<"$(tr ' ' '\n' <<<"$ans" | grep .)"
tap_check $? "d: a restart onto a /30 with max_open 16 (windows of the /25 still open) answers from the /30 only, all to the server ($ans)"
lab_alive "$GW_CHOREOD_PID"
tap_check $? "choreod still running"
tap_done
