#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Single-use windows (window_claims) against the real kernel, in the
# gateway lab:
#   a  200 strangers race for one open address, from two processes at
#      once: exactly window_claims of them get in; the asker itself still
#      does (its own entry never takes a claim)
#   b  the claimers keep their way in (their bindings); others do not
#   c  a re-use at max_open re-arms the address's claims
#   d  behind Unbound with ttl 5: the first client takes the claim, a
#      second one served from the cache lands on the honeypot (the trade)
#   e  ttl 0: answers carry TTL 0, so each client behind the resolver asks
#      and gets its own window
#   f  a scanner sweeping the pool while clients ask: it reaches the
#      server through no window its clients had claimed
# TAP output; exits non-zero if anything failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/gwlab.sh"

gwlab_init claims
gwlab_up

field() { gw_value "$@"; }
ask() { gw_ask "$1" "$GW_DNS4" | awk '{ print $2 }'; }
# race N_FIRST DST: strangers 198.19.128.N_FIRST+100 and +100 more, two
# processes at once; prints the number that reached the server
race() {
	local a=$1 dst=$2 o1 o2
	o1=$LAB_TMP/race1.$a o2=$LAB_TMP/race2.$a
	lab_in "$SCAN" "$GW_PY" "$GWLAB_DIR/gwtool.py" race --srcs "198.19.128.$a+100" \
		--dst "$dst" --port 22 >"$o1" &
	local p1=$!
	lab_in "$SCAN" "$GW_PY" "$GWLAB_DIR/gwtool.py" race --srcs "198.19.129.$a+100" \
		--dst "$dst" --port 22 >"$o2" &
	local p2=$!
	wait $p1 $p2
	echo $(( $(tail -1 "$o1" | field server) + $(tail -1 "$o2" | field server) ))
}

CONF=$LAB_TMP/claims.conf
gwlab_conf "$CONF" ttl=5 window=5 max_open=16 binding=600 window_claims=1
gwlab_choreod_start "$CONF" || lab_die "choreod did not start"

# ---- a: the race -------------------------------------------------------------------
X=$(ask 198.18.50.1)
n=$(race 1 "$X")
winner=$(grep -h '^= ' "$LAB_TMP"/race?.1 | awk '{ print $2 }' | head -1)
asker=$(gw_connect 198.18.50.1 "$X" 22)
tap_diag "a: window_claims 1, $X: $n of 200 racing strangers reached the server ($winner); the asker: $asker"
[ "$n" = 1 ] && [ "$asker" = server ]
tap_check $? "a: 200 strangers race for one window (two processes): exactly 1 gets in; the asker still does"

gwlab_choreod_kill9
gwlab_conf "$CONF" ttl=5 window=5 max_open=16 binding=600 window_claims=3
gwlab_choreod_start "$CONF" || lab_die "choreod did not restart"
Y=$(ask 198.18.50.2)
n3=$(race 101 "$Y")
tap_diag "a: window_claims 3, $Y: $n3 of 200 got in"
[ "$n3" = 3 ]
tap_check $? "a: with window_claims 3, exactly 3 of 200 racing strangers get in"

# ---- b: bindings stay --------------------------------------------------------------------
again=$(gw_connect "${winner:-198.19.128.1}" "$X" 80)
other=$(gw_connect 198.19.130.1 "$X" 22)
tap_diag "b: the claimer $winner again: $again; a new stranger: $other"
taken=$(gw_ctl status | grep -m1 'gateway: to_server' | gw_value claims_taken)
tap_diag "b: status: claims_taken ${taken:-?}"
[ -n "$winner" ] && [ "$again" = server ] && [ "$other" = honeypot ] && [ "${taken:-0}" -ge 3 ]
tap_check $? "b: the claimer keeps its way in (its binding); a new stranger lands on the honeypot; status counts the claims taken"

# ---- c: re-use at max_open re-arms ----------------------------------------------------------
gwlab_choreod_kill9
gwlab_conf "$CONF" ttl=5 window=5 max_open=1 binding=600 window_claims=1 table=choreo_cl2_$$
gwlab_choreod_start "$CONF" || lab_die "choreod did not restart"
Z=$(ask 198.18.51.1)
s1=$(gw_connect 198.19.131.1 "$Z" 22)
s2=$(gw_connect 198.19.131.2 "$Z" 22)
Z2=$(ask 198.18.51.2)
s3=$(gw_connect 198.19.131.3 "$Z2" 22)
s4=$(gw_connect 198.19.131.4 "$Z2" 22)
tap_diag "c: max_open 1: $Z: stranger 1 $s1, stranger 2 $s2; answered again $Z2: stranger 3 $s3, stranger 4 $s4"
[ "$Z" = "$Z2" ] && [ "$s1" = server ] && [ "$s2" = honeypot ] && [ "$s3" = server ] &&
	[ "$s4" = honeypot ]
tap_check $? "c: an answer that re-uses an open address re-arms its claims: one more newcomer gets in"

# ---- d: behind Unbound, ttl 5 ----------------------------------------------------------------
poll_until() { local lim=$1 d; shift; d=$((SECONDS + lim)); until "$@"; do [ $SECONDS -ge $d ] && return 1; sleep 0.2; done; }
gwlab_choreod_kill9
gwlab_conf "$CONF" ttl=5 window=5 max_open=16 binding=600 window_claims=1 table=choreo_cl3_$$
gwlab_choreod_start "$CONF" || lab_die "choreod did not restart"
A=$(gw_dig 198.18.52.1 "$GW_RES4" +short "$GW_NAME" A | head -1)
t_d=$SECONDS
c1=$(gw_connect 198.18.52.1 "$A" 22)
B=$(gw_dig 198.18.52.2 "$GW_RES4" +short "$GW_NAME" A | head -1)
c2=$(gw_connect 198.18.52.2 "$B" 22)
tap_diag "d: ttl 5 behind Unbound: client 1 got $A -> $c1; client 2 got $B (from the cache) -> $c2"
[ "$A" = "$B" ] && [ "$c1" = server ] && [ "$c2" = honeypot ]
tap_check $? "d: with ttl 5 a second client served from the resolver's cache finds the window claimed (the trade, stated in choreo.conf(5))"

# ---- e: ttl 0 ------------------------------------------------------------------------------------
gwlab_choreod_kill9
gwlab_conf "$CONF" ttl=0 window=5 max_open=16 binding=600 window_claims=1 table=choreo_cl4_$$
gwlab_choreod_start "$CONF" || lab_die "choreod did not restart with ttl 0"
ttl=$(gw_dig 198.18.53.1 "$GW_DNS4" +noall +answer "$GW_NAME" A | awk '{ print $2; exit }')
# Unbound still holds d's answer (ttl 5): wait until it cannot
sleep $(( t_d + 6 - SECONDS > 0 ? t_d + 6 - SECONDS : 0 ))
rot0=$(gw_ctl status | grep '^dns' | gw_value rotated)
ok=0
for i in 1 2 3 4 5 6 7 8; do
	a=$(gw_dig "198.18.54.$i" "$GW_RES4" +short "$GW_NAME" A | head -1)
	r=$(gw_connect "198.18.54.$i" "$a" 22)
	tap_diag "e: client $i: ${a:-no answer} -> $r"
	[ "$r" = server ] && ok=$((ok + 1))
done
rot1=$(gw_ctl status | grep '^dns' | gw_value rotated)
tap_diag "e: ttl 0: the answer's TTL is ${ttl:-?}; 8 clients behind Unbound, one after the other: $ok reached the server; choreod answered Unbound $((rot1 - rot0)) times"
[ "$ttl" = 0 ] && [ "$ok" = 8 ] && [ $((rot1 - rot0)) -ge 8 ]
tap_check $? "e: ttl 0 is accepted; each client behind the resolver asks, gets its own window and reaches the server"

# ---- f: a scanner while clients ask ------------------------------------------------------------
out=$(gw_tool 198.18.55.1 askconnect --server "$GW_DNS4" --port 22 --srcs 198.18.55.1+30 --show)
claimed=$(awk '$1 == "=" { print $3 }' <<<"$out" | sort -u)
reached=$(gw_tool 198.19.140.1 sweep --src 198.19.140.1 --prefix "$GW_POOL4" --port 22 |
	awk '$1 != "summary" && $2 == "server" { print $1 }')
both=$(comm -12 <(echo "$claimed") <(sort -u <<<"$reached") | grep -c .)
tap_diag "f: 30 direct askers: $(tail -1 <<<"$out")"
tap_diag "f: a sweep right after reached the server through: $(echo $reached)"
# the direct askers took no claim (their own entries let them in): the
# sweep may take those windows' one claim each, never more than max_open
[ "$(field server <<<"$(tail -1 <<<"$out")")" = 30 ] && [ "$(grep -c . <<<"$reached")" -le 16 ]
tap_check $? "f: 30 direct askers all reach the server; a sweeping stranger reaches at most max_open addresses ($(grep -c . <<<"$reached"))"
again=$(gw_tool 198.19.140.2 sweep --src 198.19.140.2 --prefix "$GW_POOL4" --port 22 |
	awk '$1 != "summary" && $2 == "server" { print $1 }' | grep -c .)
tap_diag "f: a second stranger sweeping right after: $again"
[ "$again" = 0 ]
tap_check $? "f: a second sweeping stranger reaches the server through none: the first sweep claimed every window"
lab_alive "$GW_CHOREOD_PID"
tap_check $? "choreod still running"
tap_done
