#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Past the 2014 evaluation's largest run (issue 4; `make bench-scale`): in the
# gateway lab (gwlab.sh), choreo-load with 2 500, 5 000, 7 500 and 10 000
# valid clients, 20 ms latency (sd 5 ms), think time N(1 s, 1 s), ports
# 22/25/80/443 (443 plain, GWLAB_TLS=0), asking choreod directly, SCALE_SECONDS
# each. Per run it reports misroutes, achieved against offered transactions
# per second, choreod's CPU (/proc/PID/stat utime+stime over the run), the
# banner servers' and the machine's CPU, gw's conntrack count (peak and at
# the end) against its maximum, conntrack drops, listen-queue overflows on
# the server, choreod's binding count, and what limited the run.
#
# Connections end with an RST by default (SCALE_CLOSE=rst): a FIN-closed
# connection stays 120 s in conntrack (TIME_WAIT), which at ~9 000
# connections/s is ~1 000 000 entries, and nf_conntrack_max cannot be raised
# inside gw's namespace on this kernel (the root namespace's is left alone).
# SCALE_CLOSE=fin shows that overflow.
#
# As in bench-seed.sh, the lab and choreod are set up once, each run takes a
# fresh range of client addresses and starts after window + 1 s.
# Exit 1 when a valid transaction was misrouted or a run failed.
#
# Environment:
#   SCALE_SECONDS=60                       duration of each run (1..3600)
#   SCALE_CLIENTS="2500 5000 7500 10000"   the runs
#   SCALE_CLOSE=rst|fin                    how connections end (default rst)
#   SCALE_LATENCY=20                       mean latency, ms (sd 5)
#   SCALE_BANNER_WORKERS=2                 banner.py processes per host
#   SCALE_GENERATORS=1                     at least this many choreo-load
#                                          processes a run (more when the
#                                          open-file hard limit needs it)
#   SCALE_BANNER_LITE=1                    banner.py --lite (0: the asyncio
#                                          server of the other lab tests,
#                                          ~3 500 connections/s a core)
#   CHOREOD, CHOREOCTL, CHOREO_LOAD        the binaries (default build/...)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)

SECS=${SCALE_SECONDS:-60}
CLIENTS_LIST=${SCALE_CLIENTS:-2500 5000 7500 10000}
CLOSE=${SCALE_CLOSE:-rst}
LAT=${SCALE_LATENCY:-20}
WINDOW=5
export GWLAB_TLS=0
export GWLAB_BANNER_WORKERS=${SCALE_BANNER_WORKERS:-2}
export GWLAB_BANNER_BACKLOG=4096
export GWLAB_BANNER_LITE=${SCALE_BANNER_LITE:-1}

. "$here/gwlab.sh"

for v in "$SECS" "$LAT" "$GWLAB_BANNER_WORKERS" $CLIENTS_LIST; do
	case "$v" in ''|*[!0-9]*) lab_die "SCALE_* must be numbers" ;; esac
done
[ "$SECS" -ge 1 ] && [ "$SECS" -le 3600 ] || lab_die "SCALE_SECONDS must be 1..3600"
case "$CLOSE" in fin|rst) ;; *) lab_die "SCALE_CLOSE must be fin or rst" ;; esac
total=0
for n in $CLIENTS_LIST; do total=$((total + n)); done
# 198.18.0.0/16: 65 534 usable client addresses, every run its own range
[ "$total" -le 65000 ] || lab_die "SCALE_CLIENTS: at most 65 000 clients in all"
[ -x "$GW_LOAD" ] || lab_die "build first: make build/choreo-load"

gwlab_init scale
gwlab_up
# (the sysctl is per namespace on recent kernels, but not always writable)
# (sysctl -w may report success without a change: read the value back)
lab_in "$GW" sysctl -q -w net.netfilter.nf_conntrack_max=1048576 >/dev/null 2>&1
if [ "$(gw_conntrack | cut -d' ' -f2)" = 1048576 ]; then
	lab_log "nf_conntrack_max raised to 1048576 in gw's namespace"
else
	lab_log "nf_conntrack_max is not writable in gw's namespace (kernel $(uname -r)): left at $(gw_conntrack | cut -d' ' -f2); the root namespace is not touched"
fi
gwlab_conf "$LAB_TMP/choreo.conf" ttl=5 window="$WINDOW" max_open=16 binding=600 rotate=0
gwlab_choreod_start "$LAB_TMP/choreo.conf" || lab_die "choreod did not start"

ncpu=$(nproc)
lab_log "machine: $ncpu CPU, $(uname -sr); $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo); $(awk '/MemTotal/{printf "%d MB", $2/1024}' /proc/meminfo)"
lab_log "runs of $SECS s, valid clients asking choreod directly ($GW_DNS4), latency ${LAT} ms sd 5, think N(1000,1000) ms, close $CLOSE, banner.py x$GWLAB_BANNER_WORKERS per host$([ "$GWLAB_BANNER_LITE" = 1 ] && echo ' (--lite)')"

bindings() { gw_status_field '^    gateway:' bindings; }

nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] && nofile=1048576
per_gen=$(( (nofile - 100) / 2 ))
[ "$per_gen" -ge 100 ] || lab_die "open-file hard limit $nofile is too low"
offset=0 failed=0 misrouted_any=0
declare -a SUMMARY
for n in $CLIENTS_LIST; do
	# one generator holds 2 descriptors a client: split the clients when
	# the open-file hard limit (which it cannot raise here) is too low
	parts=$(( (n + per_gen - 1) / per_gen ))
	[ "$parts" -ge "${SCALE_GENERATORS:-1}" ] || parts=${SCALE_GENERATORS:-1}
	export GW_LOAD_PARTS=$parts
	[ "$parts" -gt 1 ] && lab_log "$n clients: $parts generators (open-file hard limit $nofile: at most $per_gen clients each)"
	sleep $((WINDOW + 1))
	b0=$(bindings); d0=$(gw_ct_drops "$GW"); o0=$(gw_listen_overflows "$SRV"); q0=$(gw_status_field '^dns queries' dropped)
	gw_load_run "$LAB_TMP/load.$n" --duration "$SECS" --clients "$n" \
		--client-prefix "$GW_CLI_NET4" --client-offset "$offset" --mode valid \
		--dns "$GW_DNS4" --pool "$GW_POOL4" --latency-ms "$LAT" --latency-sd 5 \
		--think-ms 1000 --think-sd 1000 --close "$CLOSE" --progress 0
	offset=$((offset + n))
	line=$GW_LOAD_LINE
	b1=$(bindings); d1=$(gw_ct_drops "$GW"); o1=$(gw_listen_overflows "$SRV"); q1=$(gw_status_field '^dns queries' dropped)
	if [ -z "$line" ] || [ "$GW_LOAD_RC" != 0 ]; then
		echo "clients=$n FAILED (exit $GW_LOAD_RC)"
		tail -n 5 "$LAB_TMP/load.$n" | sed 's/^/#   /' >&2
		failed=$((failed + 1))
		continue
	fi
	f() { gw_field "$line" "$1"; }
	mis=$(f misrouted)
	[ "${mis%%/*}" -gt 0 ] && misrouted_any=1
	tx=$(f tx_per_s) off=$(f offered_per_s) att=$(f attempted_per_s) gen=$(f gen_cpu)
	sat=$(f saturated) late=$(f late) started=$(f started)
	# the model's rate with no service time at all: E[max(0, N(1,1))] = 1.0833 s
	nominal=$(awk -v n="$n" -v l="$LAT" 'BEGIN { printf "%.0f", n / (1.0833 + l / 1000) }')
	ctd=$((d1 - d0)) lo=$((o1 - o0)) qd=$((${q1:-0} - ${q0:-0}))
	echo "$(cut -d' ' -f1-6 <<<"$line") offered_per_s=$off nominal_per_s=$nominal attempted_per_s=$att" \
		"dns_fail=$(f dns_fail) conn_fail=$(f conn_fail) conn_timeout=$(f conn_timeout) dns_timeout=$(f dns_timeout)" \
		"aborted=$(f aborted) late=$late/$started saturated=$sat gen_cpu=$gen${parts:+$([ "$parts" -gt 1 ] && echo " generators=$parts gen_cpu_parts=$(f gen_cpu_parts)")}" \
		"choreod_cpu=$GW_LOAD_CHOREOD banner_cpu=$GW_LOAD_SRV+$GW_LOAD_HPOT idle=$GW_LOAD_IDLE" \
		"conntrack_end=$GW_LOAD_CT_END/$GW_LOAD_CT_MAX conntrack_peak=$GW_LOAD_CT_PEAK ct_drops=$ctd" \
		"listen_overflows=$lo dns_dropped=$qd bindings=$b1 new_bindings=$((b1 - b0))" \
		"service_ms_avg=$(f service_ms_avg) dns_ms_avg=$(f dns_ms_avg) connect_lag_max_ms=$(f connect_lag_max_ms)"
	# what limited it, from the figures above
	lim=$(awk -v tx="$tx" -v off="$off" -v nom="$nominal" -v sat="$sat" -v gen="$gen" \
		-v ch="$GW_LOAD_CHOREOD" -v srv="$GW_LOAD_SRV" -v w="$GWLAB_BANNER_WORKERS" \
		-v idle="$GW_LOAD_IDLE" -v ctp="$GW_LOAD_CT_PEAK" -v ctm="$GW_LOAD_CT_MAX" \
		-v ctd="$ctd" -v lo="$lo" -v ncpu="$ncpu" -v qd="$qd" 'BEGIN {
		s = ""
		if (sat == 1 || gen >= 0.9)
			s = s sprintf("; generator (saturated=%d, gen_cpu=%.2f of one core)", sat, gen)
		if (srv >= 0.85 * (w < ncpu ? w : ncpu) || lo > 0)
			s = s sprintf("; banner server (srv banner.py %.2f cores for %d processes, %d listen-queue overflows)", srv, w, lo)
		if ((ctm > 0 && ctp >= 0.95 * ctm) || ctd > 0)
			s = s sprintf("; conntrack (peak %d of %d, %d drops)", ctp, ctm, ctd)
		if (ch >= 0.9 || qd > 0)
			s = s sprintf("; choreod (%.2f of one core, %d DNS queries dropped)", ch, qd)
		if (idle < 0.05)
			s = s sprintf("; machine CPU (%d cores, %.0f %% idle)", ncpu, 100 * idle)
		if (s == "") {
			if (tx >= 0.95 * off)
				s = sprintf("; nothing measured: achieved %.0f/s = %.0f %% of offered %.0f/s (machine %.0f %% idle, choreod %.2f core)", tx, 100 * tx / off, off, 100 * idle, ch)
			else
				s = sprintf("; no measured resource at its limit, yet achieved %.0f/s is only %.0f %% of offered %.0f/s", tx, 100 * tx / off, off)
		}
		printf "%s (achieved %.0f/s, offered %.0f/s, nominal %.0f/s = %.0f %%)", substr(s, 3), tx, off, nom, 100 * tx / nom }')
	echo "  limited by: $lim"
	SUMMARY+=("| $n | $mis | $tx / $off ($nominal) | $GW_LOAD_CHOREOD | $GW_LOAD_SRV+$GW_LOAD_HPOT | $gen$([ "$sat" = 1 ] && echo ' sat') | $GW_LOAD_IDLE | $GW_LOAD_CT_PEAK / $GW_LOAD_CT_MAX ($ctd drops) | $b1 | ${lim%% (*} |")
done

echo
echo "Scale: valid clients, ${LAT} ms, $SECS s a run, close $CLOSE, $ncpu CPU shared by clients, servers and gateway"
echo "| clients | misrouted/total | tx/s achieved / offered (nominal) | choreod CPU (cores) | banner CPU srv+hpot | generator CPU | machine idle | conntrack peak / max | bindings | limited by |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for s in "${SUMMARY[@]}"; do echo "$s"; done
echo
gw_ctl status | sed -n '/^dns queries\|^gateway\|^conntrack\|pool 203\|^    gateway:/p' | head -n 5 | sed 's/^/# choreoctl status: /'
if [ "$failed" -gt 0 ] || [ "$misrouted_any" = 1 ]; then
	echo "targets: NOT met (failed runs $failed, a misroute: $misrouted_any)"
	exit 1
fi
echo "targets: met (no valid transaction misrouted in any run)"
exit 0
