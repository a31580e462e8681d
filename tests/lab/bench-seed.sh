#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The seed tables of the 2014 evaluation, re-run against choreo (issue 4;
# `make bench-seed`). In the gateway lab (gwlab.sh), choreo-load runs the
# report's matrix:
#
#   clients 50, 100, 1000  x  latency 0, 20, 200 ms (sd 5 ms; 0 ms: sd 0)
#   x  mix valid, invalid, mixed (half the clients valid)
#
# SECONDS_PER_RUN each, think time normal mean 1 s sd 1 s (negative = 0),
# ports 22/25/80/443 (443 in plain text: GWLAB_TLS=0, the generator has no
# TLS), connections closed with a FIN. By default the clients ask choreod
# directly (--dns 203.0.113.53); BENCH_VIA=resolver sends them through the
# lab's Unbound instead (then 203.0.113.53, inside the pool, is excluded
# from the invalid clients' targets).
#
# Runs do not influence each other: the lab and choreod are set up once,
# but every run takes a fresh range of client addresses (--client-offset),
# so no binding learned in an earlier run applies to it, and before each run
# the script waits window + 1 s, so no address opened by an earlier run's
# answers is still open to anyone (it then checks `choreoctl status`:
# open_now 0).
#
# Prints one line per run:
#   clients=N latency=Lms mix=M misrouted=X/T reached_server=Y/U tx_per_s=R ...
# then the report's table with choreo's column beside it, and the invalid
# clients' reach against max_open / pool size. Exit 1 when a valid
# transaction was misrouted or the reach is above that bound (or a run
# failed), 0 otherwise.
#
# Environment:
#   SECONDS_PER_RUN=30           duration of each run (1..3600)
#   BENCH_CLIENTS="50 100 1000"  BENCH_LATENCIES="0 20 200"
#   BENCH_MIXES="valid invalid mixed"       (a subset for a quick look)
#   BENCH_VIA=dns|resolver       who the clients ask (default dns)
#   BENCH_CLOSE=fin|rst          how connections end (default fin)
#   BENCH_WINDOW=5 BENCH_MAX_OPEN=16        choreod's window and max_open
#   BENCH_BANNER_WORKERS=2       banner.py processes per host (SO_REUSEPORT)
#   CHOREOD, CHOREOCTL, CHOREO_LOAD         the binaries (default build/...)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)

SECS=${SECONDS_PER_RUN:-30}
CLIENTS_LIST=${BENCH_CLIENTS:-50 100 1000}
LAT_LIST=${BENCH_LATENCIES:-0 20 200}
MIX_LIST=${BENCH_MIXES:-valid invalid mixed}
VIA=${BENCH_VIA:-dns}
CLOSE=${BENCH_CLOSE:-fin}
WINDOW=${BENCH_WINDOW:-5}
MAX_OPEN=${BENCH_MAX_OPEN:-16}
export GWLAB_TLS=0
export GWLAB_BANNER_WORKERS=${BENCH_BANNER_WORKERS:-2}
export GWLAB_BANNER_BACKLOG=4096

. "$here/gwlab.sh"

for v in "$SECS" "$WINDOW" "$MAX_OPEN" "$GWLAB_BANNER_WORKERS" $CLIENTS_LIST $LAT_LIST; do
	case "$v" in ''|*[!0-9]*) lab_die "SECONDS_PER_RUN, BENCH_* must be numbers" ;; esac
done
[ "$SECS" -ge 1 ] && [ "$SECS" -le 3600 ] || lab_die "SECONDS_PER_RUN must be 1..3600"
for m in $MIX_LIST; do
	case "$m" in valid|invalid|mixed) ;; *) lab_die "BENCH_MIXES: valid, invalid, mixed" ;; esac
done
case "$VIA" in dns|resolver) ;; *) lab_die "BENCH_VIA must be dns or resolver" ;; esac
case "$CLOSE" in fin|rst) ;; *) lab_die "BENCH_CLOSE must be fin or rst" ;; esac
[ -x "$GW_LOAD" ] || lab_die "build first: make build/choreo-load"

gwlab_init seed
gwlab_up
gwlab_conf "$LAB_TMP/choreo.conf" ttl=5 window="$WINDOW" max_open="$MAX_OPEN" binding=600 rotate=0
gwlab_choreod_start "$LAB_TMP/choreo.conf" || lab_die "choreod did not start"

# pool size as the invalid clients see it: the /25 less choreod's own address
pool_bits=${GW_POOL4#*/}
POOL_N=$(( (1 << (32 - pool_bits)) - 1 ))
if [ "$VIA" = resolver ]; then
	ask=(--resolver "$GW_RES4" --exclude "$GW_DNS4")
	via_text="through Unbound ($GW_RES4)"
else
	ask=(--dns "$GW_DNS4")
	via_text="choreod directly ($GW_DNS4)"
fi

lab_log "machine: $(nproc) CPU, $(uname -sr); $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
lab_log "choreod: window $WINDOW s, max_open $MAX_OPEN, pool $GW_POOL4 ($POOL_N addresses for clients), binding 600 s, rotate 0"
lab_log "clients ask $via_text; $SECS s a run; think N(1000,1000) ms; ports 22,25,80,443 (443 plain); close $CLOSE"
lab_log "banner.py: $GWLAB_BANNER_WORKERS processes per host; conntrack max in gw: $(gw_conntrack | cut -d' ' -f2)"

declare -A RES_MIS RES_REACH RES_LINE
offset=0 failed=0 over=0 misrouted_any=0
for n in $CLIENTS_LIST; do
	for lat in $LAT_LIST; do
		sd=5; [ "$lat" = 0 ] && sd=0
		for mix in $MIX_LIST; do
			# no window of an earlier run still open
			sleep $((WINDOW + 1))
			i=0
			while [ "$(gw_status_field '^  pool 203' open_now)" != 0 ] && [ "$i" -lt 50 ]; do
				sleep 0.2; i=$((i + 1))
			done
			[ "$offset" -gt 0 ] && [ $((offset + n)) -ge 65534 ] && lab_die "client prefix exhausted"
			gw_load_run "$LAB_TMP/load.$n.$lat.$mix" --duration "$SECS" --clients "$n" \
				--client-prefix "$GW_CLI_NET4" --client-offset "$offset" \
				--mode "$mix" --valid-share 0.5 "${ask[@]}" --pool "$GW_POOL4" \
				--latency-ms "$lat" --latency-sd "$sd" --think-ms 1000 --think-sd 1000 \
				--close "$CLOSE" --progress 0
			offset=$((offset + n))
			line=$GW_LOAD_LINE
			if [ -z "$line" ] || [ "$GW_LOAD_RC" != 0 ]; then
				echo "clients=$n latency=${lat}ms mix=$mix FAILED (exit $GW_LOAD_RC)"
				sed 's/^/#   /' "$LAB_TMP/load.$n.$lat.$mix" | tail -n 5 >&2
				failed=$((failed + 1))
				continue
			fi
			# the six fields of the issue, then more
			echo "$(cut -d' ' -f1-6 <<<"$line") offered_per_s=$(gw_field "$line" offered_per_s)" \
				"dns_fail=$(gw_field "$line" dns_fail) conn_fail=$(gw_field "$line" conn_fail)" \
				"late=$(gw_field "$line" late) saturated=$(gw_field "$line" saturated)" \
				"gen_cpu=$(gw_field "$line" gen_cpu) choreod_cpu=$GW_LOAD_CHOREOD" \
				"banner_cpu=$GW_LOAD_SRV+$GW_LOAD_HPOT idle=$GW_LOAD_IDLE" \
				"conntrack_peak=$GW_LOAD_CT_PEAK/$GW_LOAD_CT_MAX"
			RES_LINE[$n.$lat.$mix]=$line
			RES_MIS[$n.$lat.$mix]=$(gw_field "$line" misrouted)
			RES_REACH[$n.$lat.$mix]=$(gw_field "$line" reached_server)
			mis=${RES_MIS[$n.$lat.$mix]%%/*}
			[ "${mis:-0}" -gt 0 ] && misrouted_any=1
			grep -i 'warn' "$LAB_TMP/load.$n.$lat.$mix" | sed 's/^/#   /' >&2
		done
	done
done

# ---- the report's table, choreo beside it ----------------------------------
declare -A PAPER=(
	[50]="11308/16890 | 0/7694 | 0/32119 | 0/7510"
	[100]="22696/23693 | 10693/15212 | 0/57961 | 0/14930"
	[1000]="194839/202514 | 105789/107733 | 0/159604 | 0/161753"
)
echo
echo "Misrouted / total valid transactions (report: 5 min runs; choreo: $SECS s runs, $(nproc) CPU shared by clients, servers and gateway, clients ask $via_text)"
printf '| clients | 20 ms, 1 CPU | 200 ms, 1 CPU | 20 ms, 16 CPU | 200 ms, 16 CPU |'
for lat in $LAT_LIST; do printf ' choreo %s ms |' "$lat"; done
echo
printf '|---|---|---|---|---|'
for lat in $LAT_LIST; do printf -- '---|'; done
echo
for n in $CLIENTS_LIST; do
	printf '| %s | %s |' "$n" "${PAPER[$n]:-- | - | - | -}"
	for lat in $LAT_LIST; do printf ' %s |' "${RES_MIS[$n.$lat.valid]:--}"; done
	echo
done
if [[ " $MIX_LIST " == *" mixed "* ]]; then
	echo
	echo "Mixed runs (half the clients valid): misrouted / total valid transactions"
	printf '| clients |'; for lat in $LAT_LIST; do printf ' %s ms |' "$lat"; done; echo
	printf '|---|'; for lat in $LAT_LIST; do printf -- '---|'; done; echo
	for n in $CLIENTS_LIST; do
		printf '| %s |' "$n"
		for lat in $LAT_LIST; do printf ' %s |' "${RES_MIS[$n.$lat.mixed]:--}"; done
		echo
	done
fi

# ---- never-asking clients against max_open / pool size ---------------------
bound=$(awk -v a="$MAX_OPEN" -v b="$POOL_N" 'BEGIN { printf "%.4f", a / b }')
echo
echo "Never-asking clients: reached_server / their transactions, bound max_open/pool = $MAX_OPEN/$POOL_N = $(awk -v b="$bound" 'BEGIN{printf "%.1f %%", 100*b}')"
echo "(within = at most the bound + 3 binomial standard deviations; invalid: nobody asks, so nothing is open to anyone and 0 is expected; mixed: the valid half keeps up to max_open addresses open)"
gw_reach_report "$bound" || over=1
echo
gw_ctl status | sed -n '/^conntrack\|^gateway\|^service\|pool 203\|gateway: to_server/{p}' | head -n 6 | sed 's/^/# choreoctl status: /'
if [ "$failed" -gt 0 ] || [ "$misrouted_any" = 1 ] || [ "$over" = 1 ]; then
	echo "targets: NOT met (failed runs $failed, a misroute: $misrouted_any, reach above the bound: $over)"
	exit 1
fi
echo "targets: met (0 misrouted valid transactions in every run; never-asking reach within max_open/pool)"
exit 0
