#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The 2014 evaluation's seed matrix through the distributed mode (issue 13;
# `make bench-dist-seed`, and part of `make bench-distributed`): in the lab
# of distlab.sh (two DNS nodes with static slices of the pool and shares of
# max_open, two gateways that both carry the pool; every answer waits for
# both gateways' acknowledgements), choreo-load's clients of net A (behind
# gateway 1) ask DNS node dns1 directly and connect through gw1:
#
#   clients 50, 100, 1000  x  latency 0, 20, 200 ms (sd 5 ms; 0 ms: sd 0)
#   x  mix valid, invalid (never ask, connect to a random pool address),
#      mixed (half the clients valid)                       = 27 runs
#
# SECONDS_PER_RUN each (default 30), think time normal mean 1 s sd 1 s,
# ports 22/25/80/443 (443 in plain text), connections closed with a FIN.
# Every run takes a fresh range of client addresses, and before each one
# the script waits window + grace + 1 s and until both DNS nodes report
# open_now 0, so nothing of an earlier run is open.
#
# Prints one line per run (misrouted, reached_server, rates, the generator's
# late/saturated/CPU, dns1's and gw1's CPU, gw1's conntrack peak), the
# misroute tables of the valid and mixed runs, and the never-asking clients'
# reach against max_open / pool size (as bench-seed.sh does; only dns1 is
# asked, so at most its share of max_open is open at a time). Exit 1 when a
# valid transaction was misrouted, the reach is above the bound (+ 3
# binomial standard deviations), or a run failed; 0 otherwise.
#
# Environment (the DIST_SEED_* names, not BENCH_*: bench-distributed.sh,
# run by the same make target, reads BENCH_CLIENTS for dnsperf):
#   SECONDS_PER_RUN=30                       duration of each run (1..3600)
#   DIST_SEED_CLIENTS="50 100 1000"          the client counts
#   DIST_SEED_LATENCIES="0 20 200"           the mean latencies, ms
#   DIST_SEED_MIXES="valid invalid mixed"    a subset for a quick look
#   DIST_SEED_MAX_OPEN=8                     max_open (dns1 and dns2 get half each)
#   BENCH_BANNER_WORKERS=2                   banner.py processes per host
#   CHOREOD, CHOREOCTL, CHOREO_LOAD          the binaries (default build/...)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)

SECS=${SECONDS_PER_RUN:-30}
CLIENTS_LIST=${DIST_SEED_CLIENTS:-50 100 1000}
LAT_LIST=${DIST_SEED_LATENCIES:-0 20 200}
MIX_LIST=${DIST_SEED_MIXES:-valid invalid mixed}
export GWLAB_TLS=0
export GWLAB_BANNER_WORKERS=${BENCH_BANNER_WORKERS:-2}
export GWLAB_BANNER_BACKLOG=4096
DL_TTL=5
DL_WINDOW=5
DL_COMMIT_TIMEOUT=1000
DL_MAX_OPEN=${DIST_SEED_MAX_OPEN:-8}
. "$here/distlab.sh"

for v in "$SECS" "$DL_MAX_OPEN" "$GWLAB_BANNER_WORKERS" $CLIENTS_LIST $LAT_LIST; do
	case "$v" in ''|*[!0-9]*) lab_die "SECONDS_PER_RUN, DIST_SEED_* must be numbers" ;; esac
done
[ "$SECS" -ge 1 ] && [ "$SECS" -le 3600 ] || lab_die "SECONDS_PER_RUN must be 1..3600"
[ "$DL_MAX_OPEN" -ge 2 ] || lab_die "DIST_SEED_MAX_OPEN must be at least 2"
for m in $MIX_LIST; do
	case "$m" in valid|invalid|mixed) ;; *) lab_die "DIST_SEED_MIXES: valid, invalid, mixed" ;; esac
done
total=0
for n in $CLIENTS_LIST; do total=$((total + n)); done
[ $((total * $(wc -w <<<"$LAT_LIST") * $(wc -w <<<"$MIX_LIST"))) -le 65000 ] ||
	lab_die "DIST_SEED_*: at most 65 000 client addresses in all (net A is a /16)"
[ -x "$GW_LOAD" ] || lab_die "build first: make build/choreo-load"

distlab_init dseed
distlab_up
distlab_confs
distlab_start_all || lab_die "the lab did not start"
# gw_load_run's view: clients in net A behind gw1, the DNS node's CPU
CLI=$CLIA GW=$GW1 GW_CHOREOD_PID=${DL_PID[dns1]}

# pool size as the invalid clients see it: the whole /25 (no DNS node's
# address is inside it here)
pool_bits=${DL_POOL4#*/}
POOL_N=$(( 1 << (32 - pool_bits) ))
HZ=$(getconf CLK_TCK)

lab_log "machine: $(nproc) CPU, $(uname -sr); $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
lab_log "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
lab_log "distributed lab: dns1 and dns2 (static slices, shares ${DL_SHARE[dns1]} + ${DL_SHARE[dns2]} of max_open $DL_MAX_OPEN), gw1 and gw2 (both carry the pool $DL_POOL4, $POOL_N addresses); clients of net A ask dns1 (${DL_ADDR4[dns1]}) and connect through gw1; ttl $DL_TTL, window $DL_WINDOW, grace $DL_GRACE, binding $DL_BINDING; $SECS s a run; modes: $MIX_LIST"

# open_now NODE: the pool's open_now on a DNS node
open_now() { dl_pool_field "$1" "$DL_POOL4" open_now; }

declare -A RES_MIS RES_REACH
offset=0 failed=0 over=0 misrouted_any=0
for n in $CLIENTS_LIST; do
	for lat in $LAT_LIST; do
		sd=5; [ "$lat" = 0 ] && sd=0
		for mix in $MIX_LIST; do
			# nothing of an earlier run still open (bounded: 10 s more)
			sleep $((DL_WINDOW + DL_GRACE + 1))
			i=0
			while { [ "$(open_now dns1)" != 0 ] || [ "$(open_now dns2)" != 0 ]; } && [ "$i" -lt 50 ]; do
				sleep 0.2; i=$((i + 1))
			done
			[ "$i" -lt 50 ] || lab_log "open_now still $(open_now dns1)+$(open_now dns2) before the run"
			g0=$(gw_cpu_ticks "${DL_PID[gw1]}")
			gw_load_run "$LAB_TMP/load.$n.$lat.$mix" --duration "$SECS" --clients "$n" \
				--client-prefix "$DL_NETA4" --client-offset "$offset" \
				--mode "$mix" --valid-share 0.5 --dns "${DL_ADDR4[dns1]}" --pool "$DL_POOL4" \
				--latency-ms "$lat" --latency-sd "$sd" --think-ms 1000 --think-sd 1000 \
				--close fin --progress 0
			g1=$(gw_cpu_ticks "${DL_PID[gw1]}")
			gw1_cpu=$(awk -v t=$((g1 - g0)) -v hz="$HZ" -v w="$GW_LOAD_WALL" 'BEGIN { printf "%.2f", t / hz / (w > 0 ? w : 1) }')
			offset=$((offset + n))
			line=$GW_LOAD_LINE
			if [ -z "$line" ] || [ "$GW_LOAD_RC" != 0 ]; then
				echo "clients=$n latency=${lat}ms mix=$mix FAILED (exit $GW_LOAD_RC)"
				sed 's/^/#   /' "$LAB_TMP/load.$n.$lat.$mix" | tail -n 5 >&2
				failed=$((failed + 1))
				continue
			fi
			echo "$(cut -d' ' -f1-6 <<<"$line") offered_per_s=$(gw_field "$line" offered_per_s)" \
				"dns_fail=$(gw_field "$line" dns_fail) conn_fail=$(gw_field "$line" conn_fail)" \
				"late=$(gw_field "$line" late) saturated=$(gw_field "$line" saturated)" \
				"gen_cpu=$(gw_field "$line" gen_cpu) dns1_cpu=$GW_LOAD_CHOREOD gw1_cpu=$gw1_cpu" \
				"idle=$GW_LOAD_IDLE conntrack_peak_gw1=$GW_LOAD_CT_PEAK/$GW_LOAD_CT_MAX"
			RES_MIS[$n.$lat.$mix]=$(gw_field "$line" misrouted)
			RES_REACH[$n.$lat.$mix]=$(gw_field "$line" reached_server)
			mis=${RES_MIS[$n.$lat.$mix]%%/*}
			[ "${mis:-0}" -gt 0 ] && misrouted_any=1
			grep -i 'warn' "$LAB_TMP/load.$n.$lat.$mix" | sed 's/^/#   /' >&2
		done
	done
done

# table MIX TITLE: misrouted / total valid transactions of one mix
table() {
	[[ " $MIX_LIST " == *" $1 "* ]] || return 0
	echo
	echo "$2"
	printf '| clients |'; for lat in $LAT_LIST; do printf ' %s ms |' "$lat"; done; echo
	printf '|---|'; for lat in $LAT_LIST; do printf -- '---|'; done; echo
	for n in $CLIENTS_LIST; do
		printf '| %s |' "$n"
		for lat in $LAT_LIST; do printf ' %s |' "${RES_MIS[$n.$lat.$1]:--}"; done
		echo
	done
}
table valid "Misrouted / total valid transactions through the distributed mode ($SECS s runs, $(nproc) CPU shared by the clients, servers, both DNS nodes and both gateways)"
table mixed "Mixed runs (half the clients valid): misrouted / total valid transactions"

# ---- never-asking clients against max_open / pool size ---------------------
bound=$(awk -v a="$DL_MAX_OPEN" -v b="$POOL_N" 'BEGIN { printf "%.4f", a / b }')
if [[ " $MIX_LIST " == *" invalid "* ]] || [[ " $MIX_LIST " == *" mixed "* ]]; then
	echo
	echo "Never-asking clients: reached_server / their transactions, bound max_open/pool = $DL_MAX_OPEN/$POOL_N = $(awk -v b="$bound" 'BEGIN{printf "%.1f %%", 100*b}') (dns1's share alone: ${DL_SHARE[dns1]}/$POOL_N = $(awk -v a="${DL_SHARE[dns1]}" -v b="$POOL_N" 'BEGIN{printf "%.1f %%", 100*a/b}'))"
	echo "(within = at most the bound + 3 binomial standard deviations; invalid: nobody asks, so nothing is open to anyone and 0 is expected; mixed: the valid half keeps up to dns1's share of max_open open)"
fi
gw_reach_report "$bound" || over=1
echo
for n in dns1 gw1 gw2; do
	dl_ctl "$n" status | grep -E '^(gateways|commits|changes_received|conntrack)' | sed "s/^/# $n: /"
done
lab_log "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$failed" -gt 0 ] || [ "$misrouted_any" = 1 ] || [ "$over" = 1 ]; then
	echo "targets: NOT met (failed runs $failed, a misroute: $misrouted_any, reach above the bound: $over)"
	exit 1
fi
echo "targets: met (0 misrouted valid transactions in every run; never-asking reach within max_open/pool)"
exit 0
