#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# choreod's table damaged from outside, under load (clients asking and
# connecting all along), in the lab of gwlab.sh. Each way, as one nft
# transaction:
#
#   flush  nft flush table (rules gone, sets kept)
#   rule   nft delete rule ... handle H (the open-window rule of www_chain4)
#   chain  the prerouting jump, then www_chain4 flushed and deleted
#   set    nft flush table; nft delete set www_asked4, www_open4
#
# and for each: the table is whole again (nft -t list table, counter values
# left out, as before the damage) in less than a second, measured from the
# end of the damaging nft command to the first listing that is whole; no
# valid client asking after the repair is misrouted; a client answered
# before the damage connects after the repair and reaches the server (and
# in the set case its asker entry is back in www_asked4: the changes still
# live are applied again); choreoctl status counts the repairs and
# choreod logs each. TAP output.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/gwlab.sh"

gwlab_init repair
gwlab_up
lab_log "lab up in $SECONDS s"

now() { date +%s.%N; }

# whole: the table as nft shows it without set contents, handles or counter
# values (the table's definition only), one line per set, counter or chain
# (its rules in order), those lines sorted: a set made again is listed
# after the others
whole() {
	gw_nft -t list table inet "$GW_TABLE" 2>/dev/null | grep -v 'packets [0-9]* bytes' |
		awk '/^\t[a-z]+ .* \{$/ { b = $0; next }
		     /^\t\}$/ { print b; b = ""; next }
		     b != "" { b = b "|" $0 }' | sort
}

CONF=$LAB_TMP/choreo.conf
gwlab_conf "$CONF" ttl=2 window=15 max_open=16 binding=600 pool6=none
if ! gwlab_choreod_start "$CONF"; then
	tap_not_ok "choreod starts in the lab"
	tap_done
	exit 1
fi
want=$(whole)
[ -n "$want" ] && grep -q "chain www_chain4" <<<"$want"
tap_check $? "choreod up, table inet $GW_TABLE installed"

# ---- the load: clients asking and connecting at once, until stop ------------
cat >"$LAB_TMP/load.py" <<'EOF'
import os, sys, time
sys.path.insert(0, sys.argv[1])
import gwtool
server, base, n, stop = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
srcs = gwtool.sources(base + "+" + str(n))
i = 0
end = time.time() + 120
while not os.path.exists(stop) and time.time() < end:
    src = srcs[i % len(srcs)]
    i += 1
    t = time.time()
    rcode, addrs, _ = gwtool.ask(server, src, "www.example.test", "A", False, 1.0, 1)
    if rcode != "NOERROR" or not addrs:
        print("%.3f %s %s - -" % (t, src, rcode), flush=True)
        continue
    host = gwtool.connect(src, addrs[0], 22, 1.0)
    print("%.3f %s %s %s %s" % (t, src, rcode, addrs[0], host), flush=True)
    time.sleep(0.01)
EOF
repairs() { gw_ctl status 2>/dev/null | grep '^table_repairs' | gw_value table_repairs; }
STOP=$LAB_TMP/load.stop
lab_spawn "$CLI" "$LAB_TMP/load1.out" "$GW_PY" "$LAB_TMP/load.py" "$GWLAB_DIR" "$GW_DNS4" 198.18.40.1 200 "$STOP"
lab_spawn "$CLI" "$LAB_TMP/load2.out" "$GW_PY" "$LAB_TMP/load.py" "$GWLAB_DIR" "$GW_DNS4" 198.18.41.1 200 "$STOP"
sleep 1

# choreod's own commits move the generation too: they must cause neither a
# repair nor a comparison (only the fallback, every 5 s)
checks() { gw_ctl status 2>/dev/null | grep '^table_repairs' | gw_value checks; }
commits() { gw_ctl status 2>/dev/null | grep '^gateway table' | gw_value commits; }
c0=$(checks); m0=$(commits)
sleep 2
c1=$(checks); m1=$(commits)
[ $((m1 - m0)) -gt 50 ] && [ $((c1 - c0)) -le 1 ] && [ "$(repairs)" = 0 ]
tap_check $? "under load, $((m1 - m0)) commits of choreod's own in 2 s: $((c1 - c0)) comparisons of the table, no repair"

handle_of() { # CHAIN REGEX: the handle of the first rule of CHAIN matching REGEX
	gw_nft -a list chain inet "$GW_TABLE" "$1" | grep -E "$2" | head -n 1 | grep -oE 'handle [0-9]+' | awk '{ print $2 }'
}


# damage NAME NFT-SCRIPT: apply it under load and check the repair
k=0
damage() {
	local name=$1 script=$2 tpre t0 t1 ms early src ans addr host r0 r1 i whole_now=1 logged
	k=$((k + 1))
	src=198.18.30.$k
	# a client answered before the damage, who connects after the repair
	ans=$(gw_ask "$src" "$GW_DNS4")
	addr=${ans#NOERROR }
	r0=$(repairs)
	tpre=$(now)
	if ! gw_nft -f - <<<"$script"; then
		tap_not_ok "$name: the damage could not be applied"
		return
	fi
	t0=$(now)
	for i in $(seq 1 300); do
		if [ "$(whole)" = "$want" ]; then whole_now=0; break; fi
		[ "$(awk -v a="$t0" -v b="$(now)" 'BEGIN { print (b - a > 3) }')" = 1 ] && break
		sleep 0.01
	done
	t1=$(now)
	ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", (b - a) * 1000 }')
	early=$([ "$i" = 1 ] && echo " (already whole at the first look)")
	[ $whole_now = 0 ] && [ "$ms" -lt 1000 ]
	tap_check $? "$name: the table is whole again $ms ms after the damage$early"
	REPAIRED_AT[k]=$t1
	DAMAGED_AT[k]=$tpre
	if [ "$name" = set ]; then
		grep -qx "$src . $addr" <<<"$(gw_set_elems www_asked4)"
		tap_check $? "$name: the asker entry ($src . $addr) answered before the damage is back in the new www_asked4"
	fi
	host=$(gw_connect "$src" "$addr" 22)
	[ "$host" = server ]
	tap_check $? "$name: $src, answered $addr before the damage, connects after the repair: $host"
	sleep 0.5
	r1=$(repairs)
	logged=$(grep -c "was damaged from outside" "$GW_CHOREOD_LOG")
	[ -n "$r1" ] && [ "$r1" -gt "${r0:-0}" ] && [ "$logged" -ge "$k" ]
	tap_check $? "$name: choreoctl status counts the repair (table_repairs $r0 -> $r1), logged ($logged lines)"
}

declare -a REPAIRED_AT DAMAGED_AT

damage flush "flush table inet $GW_TABLE"
sleep 1

h=$(handle_of www_chain4 'daddr @www_open4 counter name "?www_window4')
damage rule "delete rule inet $GW_TABLE www_chain4 handle ${h:-0}"
sleep 1

hj=$(handle_of prerouting 'jump www_chain4')
damage chain "delete rule inet $GW_TABLE prerouting handle ${hj:-0}
flush chain inet $GW_TABLE www_chain4
delete chain inet $GW_TABLE www_chain4"
sleep 1

damage set "flush table inet $GW_TABLE
delete set inet $GW_TABLE www_asked4
delete set inet $GW_TABLE www_open4"
sleep 1.5

touch "$STOP"
sleep 2.2 # a question and a connection each time out in 1 s
cat "$LAB_TMP/load1.out" "$LAB_TMP/load2.out" | sort -n >"$LAB_TMP/load.out"

# a question asked after a repair (and before the next damage) by a valid
# client, answered: it must reach the server
misroutes() {
	local t0=$1 t1=$2
	awk -v a="$t0" -v b="$t1" '$1 >= a && $1 < b && $3 == "NOERROR" && $5 != "server"' "$LAB_TMP/load.out"
}
total=0 bad=0
for i in $(seq 1 $k); do
	next=${DAMAGED_AT[$((i + 1))]:-9999999999}
	n=$(awk -v a="${REPAIRED_AT[$i]}" -v b="$next" '$1 >= a && $1 < b && $3 == "NOERROR"' "$LAB_TMP/load.out" | wc -l)
	m=$(misroutes "${REPAIRED_AT[$i]}" "$next" | wc -l)
	misroutes "${REPAIRED_AT[$i]}" "$next" | head -n 5 | tap_diag
	total=$((total + n)); bad=$((bad + m))
	tap_diag "after repair $i: $n answered clients connected, $m misrouted"
done
during=$(awk 'BEGIN { n = 0 } { n++ } END { print n }' "$LAB_TMP/load.out")
before=$(awk -v a="${DAMAGED_AT[1]}" '$1 < a && $3 == "NOERROR" && $5 != "server"' "$LAB_TMP/load.out" | wc -l)
[ "$total" -gt 20 ] && [ "$bad" = 0 ] && [ "$before" = 0 ]
tap_check $? "under load ($during questions in all): after the repairs $total valid clients answered and connected, $bad misrouted (before any damage: $before)"

gw_ctl status | grep -E '^(table_repairs|gateway table)' | tap_diag
n_rep=$(repairs)
[ "$n_rep" = "$k" ]
tap_check $? "exactly $k repairs for $k damages: choreod's own commits (they move the generation too) cause none (table_repairs $n_rep)"
grep "was damaged from outside" "$GW_CHOREOD_LOG" | tap_diag
lab_alive "$GW_CHOREOD_PID"
tap_check $? "choreod still running"
gwlab_choreod_stop

# ---- a full set: max_asked = 8 ----------------------------------------------
# The asked set holds 8 entries (each lives window + grace = 2 s). The 9th
# asker's commit is refused by the kernel (ENFILE); choreod then takes the
# set as full for a second (full_sets.h): an asker's entry that its window
# covers (no window_claims) is left out, and the answer goes out, since the
# window lets the asker in as long; counted and logged.
CONF_F=$LAB_TMP/full.conf
GW_TABLE=choreo_full_$$ # a new table: the first one's asked set is not empty
gwlab_conf "$CONF_F" ttl=2 window=2 grace=0 max_open=16 binding=600 pool6=none
echo "max_asked = 8" >>"$CONF_F"
gwlab_choreod_start "$CONF_F" || lab_log "choreod did not restart with max_asked = 8"
size=$(gw_nft list set inet "$GW_TABLE" www_asked4 | grep -o 'size [0-9]*')
out=$(gw_tool 198.18.50.1 askconnect --server "$GW_DNS4" --port 22 --srcs 198.18.50.1+24)
sum=$(tail -n 1 <<<"$out")
tap_diag "max_asked 8 ($size), no window_claims: $sum"
line=$(gw_ctl status | grep '^table_repairs')
full=$(gw_value set_full <<<"$line"); skipped=$(gw_value full_skipped <<<"$line")
srv=$(gw_value server <<<"$sum"); fail=$(gw_value dnsfail <<<"$sum"); mis=$(gw_value misroutes <<<"$sum")
[ "$size" = "size 8" ] && [ "$srv" = 24 ] && [ "$fail" = 0 ] && [ "$mis" = 0 ] &&
	[ "${full:-0}" -ge 1 ] && [ "${skipped:-0}" -ge 16 ] &&
	grep -q "set www_asked4 of table inet $GW_TABLE is full" "$GW_CHOREOD_LOG"
tap_check $? "a full asked set (size 8), no window_claims: 24 of 24 askers answered and at the server (entries their windows cover left out: full_skipped $skipped, set_full $full), 0 misrouted, logged"
gwlab_choreod_stop

# With window_claims the entry is what lets the asker past the claims: the
# answers that need it are SERVFAIL while the set is full, never an address.
GW_TABLE=choreo_fullc_$$
gwlab_conf "$CONF_F" ttl=2 window=2 grace=0 max_open=16 binding=600 pool6=none window_claims=1
echo "max_asked = 8" >>"$CONF_F"
gwlab_choreod_start "$CONF_F" || lab_log "choreod did not restart with max_asked = 8, window_claims = 1"
out=$(gw_tool 198.18.52.1 askconnect --server "$GW_DNS4" --port 22 --srcs 198.18.52.1+24)
t_last=$(now)
sum=$(tail -n 1 <<<"$out")
tap_diag "max_asked 8, window_claims 1: $sum"
line=$(gw_ctl status | grep '^table_repairs')
full=$(gw_value set_full <<<"$line"); skipped=$(gw_value full_skipped <<<"$line")
srv=$(gw_value server <<<"$sum"); fail=$(gw_value dnsfail <<<"$sum"); mis=$(gw_value misroutes <<<"$sum")
[ "$srv" = 8 ] && [ "$fail" = 16 ] && [ "$mis" = 0 ] && [ "${full:-0}" -ge 16 ] && [ "${skipped:-1}" = 0 ]
tap_check $? "a full asked set with window_claims: 8 askers answered and at the server, the other 16 SERVFAIL, 0 misrouted; set_full $full, full_skipped $skipped"
grep "is full" "$GW_CHOREOD_LOG" | head -n 2 | tap_diag
# answered again once the entries expired (2 s after the last) and the
# kernel collected them
ok=1
for i in $(seq 1 80); do
	r=$(gw_ask "198.18.51.$i" "$GW_DNS4")
	if [ "${r%% *}" = NOERROR ]; then ok=0; break; fi
	sleep 0.05
done
t_back=$(now)
lag=$(awk -v a="$t_last" -v b="$t_back" 'BEGIN { printf "%.2f", b - a - 2 }')
host=$(gw_connect "198.18.51.$i" "${r#NOERROR }" 22)
[ $ok = 0 ] && [ "$host" = server ]
tap_check $? "after the entries expire an asker is answered again ($r -> $host): $lag s after the last entry's expiry (the kernel counts expired entries until it collects them)"
gwlab_choreod_stop
tap_done
