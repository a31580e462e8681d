#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# A gateway down, under load, in the lab of distlab.sh (two DNS nodes, two
# gateways, no controller): what `on_gateway_down` does after
# `gateway_deadline`, and the resync of a gateway that comes back.
#
#   1  exclude: gw1 stopped (SIGSTOP) while clients of net B ask both DNS
#      nodes and connect through gw2: after the deadline every answer is
#      NOERROR again and every client reaches the server (0 misroutes);
#      static answers flow during the stall (their p99 reported)
#   2  exclude: gw1 continued (SIGCONT): it catches up, is resynchronised
#      (the windows answered while it was stopped are sent to it) and is
#      live again; an address answered during the stall, still in its
#      window, now lets a client of net A in through gw1
#   3  exclude: choreod on gw1 killed (SIGKILL; its kernel keeps the table):
#      answers go on through gw2; a client of net A at an address answered
#      while gw1 is gone lands on the honeypot (what clients routed through
#      it get), a client bound before still reaches the server; gw1
#      restarted: resynchronised, live, and that address lets net A in
#   4  servfail: gw1 stopped: after the deadline answers are SERVFAIL at
#      once (no commit_timeout wait); continued: resynchronised, NOERROR
#
# TAP output; exits non-zero if anything failed. LAB_KEEP=1 keeps the temp
# dir.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
DL_GATEWAY_DOWN=exclude
DL_GATEWAY_DEADLINE=${DL_GATEWAY_DEADLINE:-500}
DL_WINDOW=${DL_WINDOW:-8}      # long enough to connect after a resync
DL_TTL=${DL_TTL:-0}
# the deadline before commit_timeout: with exclude, a commit waiting for the
# stalled gateway completes without it at the deadline (no SERVFAIL)
DL_COMMIT_TIMEOUT=${DL_COMMIT_TIMEOUT:-1000}
. "$here/distlab.sh"

distlab_init gwd
distlab_up
distlab_confs
T0=$SECONDS

live() { [ "$(dl_field "$1" gateways live)" = "$2" ]; }
both_live() { live dns1 2 && live dns2 2; }
# ask NODE SRC COUNT [VIA_NS VIA_SRC]: disttool ask, net B asks
ask() {
	dl_tool ask --server "${DL_ADDR4[$1]}" --ns "$CLIB" --src "$2" --count "$3" \
		${4:+--via-ns "$4" --via-src "$5"}
}

if ! distlab_start_all || ! poll_until 10 both_live; then
	for n in dns1 gw1; do dl_ctl "$n" status 2>&1 | tap_diag; done
	tap_not_ok "the four choreod start and link"
	tap_done
	exit 1
fi
gw1pid=${DL_PID[gw1]}
trap 'st_=$?; kill -CONT "${DL_PID[gw1]:-0}" 2>/dev/null; (exit "$st_"); lab_cleanup' EXIT

# ---- 1: exclude, gw1 stopped ----------------------------------------------------------------

kill -STOP "$gw1pid"
t_stop=$SECONDS
# static names while the gateway stalls: no commit, answered at once
st_static=$(dl_tool ask --server "${DL_ADDR4[dns1]}" --name static.example.test --ns "$CLIB" \
	--src 198.19.30.1 --count 200)
# the first rotated answers wait for the deadline, not more
r1=$(ask dns1 198.19.31.1 40 "$CLIB" 198.19.41.1)
r2=$(ask dns2 198.19.32.1 40 "$CLIB" 198.19.42.1)
tap_diag "1: gw1 stopped (state $(proc_state "$gw1pid")); static: ${st_static% addrs*}"
tap_diag "1: after the deadline, dns1: ${r1% addrs*}"
tap_diag "1: after the deadline, dns2: ${r2% addrs*}"
tap_diag "1: dns1: $(dl_ctl dns1 status | grep '^gateways' | grep -o 'live.*')"
[ "$(proc_state "$gw1pid")" = T ] && [ "$(field noerror <<<"$st_static")" = 200 ] &&
	[ "$(field noerror <<<"$r1")" = 40 ] && [ "$(field noerror <<<"$r2")" = 40 ] &&
	[ "$(field via_server <<<"$r1")" = 40 ] && [ "$(field via_server <<<"$r2")" = 40 ] &&
	live dns1 1 && live dns2 1 &&
	awk -v m="$(field ms_max <<<"$r1")" -v d="$DL_GATEWAY_DEADLINE" 'BEGIN { exit !(m < d + 300) }'
tap_check $? "1: exclude, gw1 stopped: static answers flow (200 of 200, p99 $(field ms_p99 <<<"$st_static") ms); 40 + 40 rotated answers NOERROR (the first of dns1's after $(field ms_max <<<"$r1") ms: the deadline, $DL_GATEWAY_DEADLINE ms), 40 + 40 clients through gw2 reach the server; 1 gateway live on each node"

# ---- 2: exclude, gw1 continued: resync ----------------------------------------------------

# an address answered during the stall, in its window (DL_WINDOW s)
stalled_addr=$(sed -n 's/.* addrs //p' <<<"$r1" | cut -d, -f1)
kill -CONT "$gw1pid"
start=$(date +%s%N)
poll_until 10 both_live
ok_live=$?
el_ms=$((($(date +%s%N) - start) / 1000000))
rs=$(dl_ctl dns1 status | grep '^gateways' | grep -o 'live.*')
in_gw1=$(dl_set_elems gw1 www_open4 | grep -cx "$stalled_addr")
via=$(gtool "$CLIA" connect --src 198.18.33.1 --dst "$stalled_addr" --port 80 --timeout 3)
tap_diag "2: gw1 continued: live again after $el_ms ms; dns1: $rs; $stalled_addr (answered while gw1 was stopped) in gw1's open set: $in_gw1; a fresh client of net A through gw1: $via"
[ "$ok_live" = 0 ] && [ "$(field resyncs <<<"$rs")" -ge 1 ] && [ "$in_gw1" = 1 ] && [ "$via" = server ]
tap_check $? "2: gw1 continued: resynchronised ($(field resync_changes <<<"$rs") changes) and live on both nodes within $el_ms ms; the window answered while it was stopped is in its table, and lets a client of net A in through gw1 ($via)"

# ---- 3: exclude, choreod on gw1 killed ------------------------------------------------------

# a client of net A bound through gw1 before
b_ans=$(gtool "$CLIA" ask --server "${DL_ADDR4[dns1]}" --src 198.18.34.1)
b_addr=$(awk '{ print $2 }' <<<"$b_ans")
b_first=$(gtool "$CLIA" connect --src 198.18.34.1 --dst "$b_addr" --port 80 --timeout 3)
# every window so far closes first: what is answered next is fresh to gw1
sleep $((DL_WINDOW + DL_GRACE + 2))
kill -KILL "$gw1pid"
wait "$gw1pid" 2>/dev/null
DL_PID[gw1]=""
poll_until 5 eval 'live dns1 1 && live dns2 1'
r3=$(ask dns1 198.19.35.1 20 "$CLIB" 198.19.45.1)
gone_addr=$(sed -n 's/.* addrs //p' <<<"$r3" | cut -d, -f1)
via_gone=$(gtool "$CLIA" connect --src 198.18.35.1 --dst "$gone_addr" --port 80 --timeout 3)
via_bound=$(gtool "$CLIA" connect --src 198.18.34.1 --dst "$b_addr" --port 80 --timeout 3)
tap_diag "3: choreod on gw1 killed: dns1 ${r3% addrs*}; net A at $gone_addr (answered while gw1 was gone): $via_gone; net A bound before ($b_addr, first $b_first): $via_bound"
[ "$(field noerror <<<"$r3")" = 20 ] && [ "$(field via_server <<<"$r3")" = 20 ] &&
	[ "$via_gone" = honeypot ] && [ "$b_first" = server ] && [ "$via_bound" = server ]
tap_check $? "3: choreod on gw1 killed: 20 of 20 answers NOERROR, their clients through gw2 reach the server; a client of net A at an address answered meanwhile reaches the $via_gone (gw1's kernel never got it), one bound before still the $via_bound"
dl_start gw1 || tap_diag "gw1 did not start again"
start=$(date +%s%N)
poll_until 15 both_live
ok_live=$?
el_ms=$((($(date +%s%N) - start) / 1000000))
via_back=$(gtool "$CLIA" connect --src 198.18.36.1 --dst "$gone_addr" --port 80 --timeout 3)
rs=$(dl_ctl dns1 status | grep '^gateways' | grep -o 'live.*')
tap_diag "3: gw1 restarted: live after $el_ms ms; dns1: $rs; net A at $gone_addr now: $via_back"
[ "$ok_live" = 0 ] && [ "$via_back" = server ]
tap_check $? "3: choreod on gw1 restarted: resynchronised and live on both nodes within $el_ms ms of its start; the address answered while it was gone now lets net A in through gw1 ($via_back)"

# ---- 4: servfail ---------------------------------------------------------------------------

for n in dns1 dns2; do
	sed -i 's/^on_gateway_down = .*/on_gateway_down = servfail/' "${DL_CONF[$n]}"
	dl_stop "$n"
	dl_start "$n" || tap_diag "$n did not start again"
done
poll_until 10 both_live
gw1pid=${DL_PID[gw1]}
kill -STOP "$gw1pid"
# one question sends gw1 a frame; past the deadline it is down
ask dns1 198.19.36.200 1 >/dev/null
sleep 1
r4=$(ask dns1 198.19.37.1 20)
tap_diag "4: servfail, gw1 stopped: dns1 ${r4% addrs*}"
kill -CONT "$gw1pid"
poll_until 10 both_live
ok_live=$?
r5=$(ask dns1 198.19.38.1 20 "$CLIB" 198.19.48.1)
tap_diag "4: continued: dns1 ${r5% addrs*}"
[ "$(field servfail <<<"$r4")" = 20 ] &&
	awk -v m="$(field ms_max <<<"$r4")" -v ct="$DL_COMMIT_TIMEOUT" 'BEGIN { exit !(m < ct / 2) }' &&
	[ "$ok_live" = 0 ] && [ "$(field noerror <<<"$r5")" = 20 ] && [ "$(field via_server <<<"$r5")" = 20 ]
tap_check $? "4: servfail, gw1 stopped past the deadline: 20 of 20 answers SERVFAIL at once (max $(field ms_max <<<"$r4") ms, commit_timeout $DL_COMMIT_TIMEOUT ms); continued: resynchronised, 20 of 20 NOERROR, their clients through gw2 reach the server"

alive=0
for n in "${DL_NODES[@]}"; do lab_alive "${DL_PID[$n]}" && alive=$((alive + 1)); done
tap_diag "checks took $((SECONDS - T0)) s"
[ "$alive" = 4 ]
tap_check $? "all 4 choreod still run ($alive)"
tap_done
