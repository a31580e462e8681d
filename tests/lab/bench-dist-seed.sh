#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The 2014 evaluation's seed matrix through the distributed mode (issue 13;
# `make bench-dist-seed`): choreo-load's valid clients in net A (behind
# gateway 1) ask DNS node dns1 directly and connect after the injected
# latency, in the lab of distlab.sh (two DNS nodes with static slices, two
# gateways; every answer waits for both gateways' acknowledgements).
#
#   clients 50, 100, 1000  x  latency 0, 20, 200 ms (sd 5 ms; 0 ms: sd 0)
#
# SECONDS_PER_RUN each (default 30), think time normal mean 1 s sd 1 s,
# ports 22/25/80/443 (443 in plain text), connections closed with a FIN.
# Every run takes a fresh range of client addresses, and before each one
# the script waits window + grace + 1 s, so nothing of an earlier run is
# open. Prints one line per run and exits 1 when a valid transaction was
# misrouted (or a run failed), 0 otherwise.
#
# Environment: SECONDS_PER_RUN, BENCH_CLIENTS="50 100 1000",
# BENCH_LATENCIES="0 20 200".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)

SECS=${SECONDS_PER_RUN:-30}
CLIENTS_LIST=${BENCH_CLIENTS:-50 100 1000}
LAT_LIST=${BENCH_LATENCIES:-0 20 200}
export GWLAB_TLS=0
export GWLAB_BANNER_WORKERS=${BENCH_BANNER_WORKERS:-2}
export GWLAB_BANNER_BACKLOG=4096
DL_TTL=5
DL_WINDOW=5
DL_COMMIT_TIMEOUT=1000
. "$here/distlab.sh"

for v in "$SECS" $CLIENTS_LIST $LAT_LIST; do
	case "$v" in ''|*[!0-9]*) lab_die "SECONDS_PER_RUN, BENCH_* must be numbers" ;; esac
done
[ "$SECS" -ge 1 ] && [ "$SECS" -le 3600 ] || lab_die "SECONDS_PER_RUN must be 1..3600"
[ -x "$GW_LOAD" ] || lab_die "build first: make build/choreo-load"

distlab_init dseed
distlab_up
distlab_confs
distlab_start_all || lab_die "the lab did not start"
# gw_load_run's view: clients in net A behind gw1, the DNS node's CPU
CLI=$CLIA GW=$GW1 GW_CHOREOD_PID=${DL_PID[dns1]}

lab_log "machine: $(nproc) CPU, $(uname -sr); $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
lab_log "distributed lab: dns1 and dns2 (static slices, shares $((DL_MAX_OPEN / 2)) + $((DL_MAX_OPEN - DL_MAX_OPEN / 2)) of max_open $DL_MAX_OPEN), gw1 and gw2 (both carry the pool); clients of net A ask dns1 (${DL_ADDR4[dns1]}) and connect through gw1; ttl $DL_TTL, window $DL_WINDOW, grace $DL_GRACE; $SECS s a run"

offset=0 failed=0 misrouted_any=0
declare -A RES
for n in $CLIENTS_LIST; do
	for lat in $LAT_LIST; do
		sd=5; [ "$lat" = 0 ] && sd=0
		sleep $((DL_WINDOW + DL_GRACE + 1))
		gw_load_run "$LAB_TMP/load.$n.$lat" --duration "$SECS" --clients "$n" \
			--client-prefix "$DL_NETA4" --client-offset "$offset" \
			--mode valid --dns "${DL_ADDR4[dns1]}" --pool "$DL_POOL4" \
			--latency-ms "$lat" --latency-sd "$sd" --think-ms 1000 --think-sd 1000 \
			--close fin --progress 0
		offset=$((offset + n))
		line=$GW_LOAD_LINE
		if [ -z "$line" ] || [ "$GW_LOAD_RC" != 0 ]; then
			echo "clients=$n latency=${lat}ms FAILED (exit $GW_LOAD_RC)"
			sed 's/^/#   /' "$LAB_TMP/load.$n.$lat" | tail -n 5 >&2
			failed=$((failed + 1))
			continue
		fi
		echo "$(cut -d' ' -f1-6 <<<"$line") offered_per_s=$(gw_field "$line" offered_per_s)" \
			"dns_fail=$(gw_field "$line" dns_fail) conn_fail=$(gw_field "$line" conn_fail)" \
			"late=$(gw_field "$line" late) saturated=$(gw_field "$line" saturated)" \
			"gen_cpu=$(gw_field "$line" gen_cpu) dns1_cpu=$GW_LOAD_CHOREOD" \
			"conntrack_peak_gw1=$GW_LOAD_CT_PEAK/$GW_LOAD_CT_MAX"
		RES[$n.$lat]=$(gw_field "$line" misrouted)
		mis=${RES[$n.$lat]%%/*}
		[ "${mis:-0}" -gt 0 ] && misrouted_any=1
	done
done

echo
echo "Misrouted / total valid transactions through the distributed mode ($SECS s runs, $(nproc) CPU shared by the clients, servers, both DNS nodes and both gateways)"
printf '| clients |'; for lat in $LAT_LIST; do printf ' %s ms |' "$lat"; done; echo
printf '|---|'; for lat in $LAT_LIST; do printf -- '---|'; done; echo
for n in $CLIENTS_LIST; do
	printf '| %s |' "$n"
	for lat in $LAT_LIST; do printf ' %s |' "${RES[$n.$lat]:--}"; done
	echo
done
for n in dns1 gw1 gw2; do
	dl_ctl "$n" status | grep -E '^(gateways|commits|changes_received)' | sed "s/^/# $n: /"
done
if [ "$failed" -gt 0 ] || [ "$misrouted_any" = 1 ]; then
	echo "targets: NOT met (failed runs $failed, a misroute: $misrouted_any)"
	exit 1
fi
echo "targets: met (0 misrouted valid transactions in every run)"
exit 0
