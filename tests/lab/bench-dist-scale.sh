#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The scale run through two gateways, beside standalone choreod (issue 13;
# part of `make bench-distributed`). Same settings both ways, one after the
# other in the same session:
#
#   standalone   tests/lab/bench-scale.sh (the gateway lab, one choreod:
#                DNS, rotor and table), the same client counts
#   distributed  the lab of distlab.sh: the clients are split across net A
#                (behind gw1; they ask DNS node dns1) and net B (behind gw2;
#                they ask dns2); both DNS nodes commit every answer to both
#                gateways before it leaves
#
# Valid clients, 20 ms latency (sd 5), think time N(1 s, 1 s), ports
# 22/25/80/443 (443 plain), connections closed with an RST (a FIN-closed
# connection stays 120 s in conntrack: see bench-scale.sh), ttl 5, window 5,
# grace 2, max_open 16 (distributed: shares 8 + 8), binding 600, pool /25.
# Per run it prints misrouted valid transactions, achieved against offered
# (and nominal) transactions per second, the generator's own limit (late /
# started, saturated, its CPU), choreod's CPU per role (standalone: the one
# process; distributed: dns1, dns2, gw1, gw2), the banner servers' and the
# machine's CPU, conntrack peak against its maximum (each gateway, and the
# sum of both sampled together), conntrack drops, listen-queue overflows on
# the server, DNS queries dropped, commit failures, and what limited the
# run. Then one table with both. Exit 1 when a valid transaction was
# misrouted or a run failed, either way.
#
# Environment:
#   DIST_SCALE_SECONDS=60            duration of each run (1..3600)
#   DIST_SCALE_CLIENTS="10000"       the client counts (e.g. "2500 10000")
#   DIST_SCALE_LATENCY=20            mean latency, ms (sd 5)
#   DIST_SCALE_CLOSE=rst|fin         how connections end (default rst)
#   DIST_SCALE_STANDALONE=1          0: the distributed runs only
#   DIST_SCALE_BANNER_WORKERS=2      banner.py processes per host
#   DIST_SCALE_BANNER_LITE=1         banner.py --lite (as bench-scale.sh)
#   CHOREOD, CHOREOCTL, CHOREO_LOAD  the binaries (default build/...)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)

SECS=${DIST_SCALE_SECONDS:-60}
CLIENTS_LIST=${DIST_SCALE_CLIENTS:-10000}
LAT=${DIST_SCALE_LATENCY:-20}
CLOSE=${DIST_SCALE_CLOSE:-rst}
STANDALONE=${DIST_SCALE_STANDALONE:-1}
export GWLAB_TLS=0
export GWLAB_BANNER_WORKERS=${DIST_SCALE_BANNER_WORKERS:-2}
export GWLAB_BANNER_BACKLOG=4096
export GWLAB_BANNER_LITE=${DIST_SCALE_BANNER_LITE:-1}
# the same choreod settings as bench-scale.sh's (grace: choreod's default 2)
DL_TTL=5
DL_WINDOW=5
DL_GRACE=2
DL_MAX_OPEN=16
DL_BINDING=600
DL_COMMIT_TIMEOUT=1000
. "$here/distlab.sh"

for v in "$SECS" "$LAT" "$GWLAB_BANNER_WORKERS" $CLIENTS_LIST; do
	case "$v" in ''|*[!0-9]*) lab_die "DIST_SCALE_* must be numbers" ;; esac
done
[ "$SECS" -ge 1 ] && [ "$SECS" -le 3600 ] || lab_die "DIST_SCALE_SECONDS must be 1..3600"
case "$CLOSE" in fin|rst) ;; *) lab_die "DIST_SCALE_CLOSE must be fin or rst" ;; esac
case "$STANDALONE" in 0|1) ;; *) lab_die "DIST_SCALE_STANDALONE must be 0 or 1" ;; esac
total=0
for n in $CLIENTS_LIST; do
	[ "$n" -ge 2 ] || lab_die "DIST_SCALE_CLIENTS: at least 2 clients a run"
	total=$((total + n))
done
# net B is a /17 (32 766 addresses) and gets half of every run
[ "$total" -le 65000 ] || lab_die "DIST_SCALE_CLIENTS: at most 65 000 clients in all"
[ -x "$GW_LOAD" ] || lab_die "build first: make build/choreo-load"

ncpu=$(nproc)
HZ=$(getconf CLK_TCK)
echo "# machine: $ncpu CPU, $(uname -sr); $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo); $(awk '/MemTotal/{printf "%d MB", $2/1024}' /proc/meminfo)"
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# runs of $SECS s, valid clients, latency ${LAT} ms sd 5, think N(1000,1000) ms, close $CLOSE; ttl $DL_TTL, window $DL_WINDOW, grace $DL_GRACE, max_open $DL_MAX_OPEN, binding $DL_BINDING, pool $DL_POOL4; banner.py x$GWLAB_BANNER_WORKERS per host$([ "$GWLAB_BANNER_LITE" = 1 ] && echo ' (--lite)')"

declare -a SUMMARY
declare -A CPU0=() CPU1=() CPUC=()
failed=0 misrouted_any=0

# ---- standalone: bench-scale.sh, same counts, same settings ------------------
if [ "$STANDALONE" = 1 ]; then
	echo
	echo "== standalone choreod (tests/lab/bench-scale.sh) =="
	sa_out=$(mktemp /tmp/choreo-dist-scale-standalone.XXXXXX) || lab_die "mktemp failed"
	SCALE_SECONDS=$SECS SCALE_CLIENTS=$CLIENTS_LIST SCALE_CLOSE=$CLOSE SCALE_LATENCY=$LAT \
		SCALE_BANNER_WORKERS=$GWLAB_BANNER_WORKERS SCALE_BANNER_LITE=$GWLAB_BANNER_LITE \
		"$here/bench-scale.sh" >"$sa_out" 2>&1
	sa_rc=$?
	cat "$sa_out"
	while read -r line; do
		f() { awk -v k="$1" '{ for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) { print substr($i, length(k) + 2); exit } }' <<<"$line"; }
		ctend=$(f conntrack_end)
		SUMMARY+=("| standalone | $(f clients) | $(f misrouted) | $(f tx_per_s) / $(f offered_per_s) ($(f nominal_per_s)) | $(f late), $(f saturated), $(f gen_cpu) | choreod $(f choreod_cpu) | $(f banner_cpu) | $(f idle) | $(f conntrack_peak) / ${ctend#*/} ($(f ct_drops) drops) |")
	done < <(grep '^clients=' "$sa_out")
	if [ "$sa_rc" != 0 ]; then
		echo "standalone: bench-scale.sh exited $sa_rc"
		grep -q 'a misroute: 1' "$sa_out" && misrouted_any=1
		failed=$((failed + 1))
	fi
	rm -f "$sa_out"
fi

# ---- distributed: two DNS nodes, two gateways --------------------------------
echo
echo "== distributed: net A -> dns1, gw1; net B -> dns2, gw2 =="
distlab_init dscale
distlab_up
for g in gw1 gw2; do
	lab_in "${DL_NS[$g]}" sysctl -q -w net.netfilter.nf_conntrack_max=1048576 >/dev/null 2>&1
done
distlab_confs
distlab_start_all || lab_die "the lab did not start"
# (gw_conntrack reads $GW)
GW=$GW1 ct_max=$(gw_conntrack | cut -d' ' -f2)
echo "# nf_conntrack_max in gw1: $ct_max (raised to 1048576 only where the kernel lets a namespace write it)"

# ct_count NS: conntrack count
ct_count() { lab_in "$1" sysctl -n net.netfilter.nf_conntrack_count 2>/dev/null || echo 0; }
# counters: "dropped servfail failures timeouts" of both DNS nodes, summed
dns_counters() {
	local d q s fl to
	local -a sum=(0 0 0 0)
	for d in dns1 dns2; do
		q=$(dl_field "$d" "dns queries" dropped) s=$(dl_field "$d" "dns queries" servfail)
		fl=$(dl_field "$d" gateways failures) to=$(dl_field "$d" gateways timeouts)
		sum=($((sum[0] + ${q:-0})) $((sum[1] + ${s:-0})) $((sum[2] + ${fl:-0})) $((sum[3] + ${to:-0})))
	done
	echo "${sum[@]}"
}
machine_ticks() { awk '/^cpu /{t=0; for(k=2;k<=NF;k++) t+=$k; print t, $5+$6}' /proc/stat; }

nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] && nofile=1048576
per_gen=$(( (nofile - 100) / 2 ))
[ "$per_gen" -ge 100 ] || lab_die "open-file hard limit $nofile is too low"

offA=0 offB=0
for n in $CLIENTS_LIST; do
	nA=$(( (n + 1) / 2 )) nB=$((n / 2))
	[ $((offB + nB)) -le 32700 ] || lab_die "net B's client addresses exhausted"
	sleep $((DL_WINDOW + DL_GRACE + 1))
	tag=$LAB_TMP/scale.$n
	: >"$tag.lines"
	pids=()
	for r in dns1 dns2 gw1 gw2; do CPU0[$r]=$(gw_cpu_ticks "${DL_PID[$r]}"); done
	s0=$(gw_ns_cpu_ticks "$SRV") h0=$(gw_ns_cpu_ticks "$HPOT")
	read -r j0 i0 < <(machine_ticks)
	d1_0=$(gw_ct_drops "$GW1") d2_0=$(gw_ct_drops "$GW2") lo0=$(gw_listen_overflows "$SRV")
	read -r q0 sf0 cf0 to0 < <(dns_counters)
	b0=$(( $(dl_gw_pool_field gw1 "$DL_POOL4" bindings) + 0 ))
	t0=$(date +%s.%N)
	k=0
	for net in A B; do
		if [ "$net" = A ]; then ns=$CLIA cn=$nA off=$offA pfx=$DL_NETA4 dns=${DL_ADDR4[dns1]}
		else ns=$CLIB cn=$nB off=$offB pfx=$DL_NETB4 dns=${DL_ADDR4[dns2]}; fi
		parts=$(( (cn + per_gen - 1) / per_gen ))
		for ((p = 0; p < parts; p++)); do
			pn=$((cn / parts + (p < cn % parts ? 1 : 0)))
			po=$((off + p * (cn / parts) + (p < cn % parts ? p : cn % parts)))
			lab_in "$ns" "$GW_LOAD" --duration "$SECS" --clients "$pn" --client-prefix "$pfx" \
				--client-offset "$po" --mode valid --dns "$dns" --pool "$DL_POOL4" \
				--latency-ms "$LAT" --latency-sd 5 --think-ms 1000 --think-sd 1000 \
				--close "$CLOSE" --progress 0 >"$tag.out.$net.$k" 2>"$tag.log.$net.$k" </dev/null &
			pids+=("$!")
			LAB_PIDS+=("$!")
			k=$((k + 1))
		done
	done
	offA=$((offA + nA)) offB=$((offB + nB))
	# sample conntrack in both gateways once a second (bounded)
	pk1=0 pk2=0 pks=0 i=0 limit=$(((SECS + 60) * 10))
	while [ "$i" -lt "$limit" ]; do
		a=0
		for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && a=1; done
		[ "$a" = 1 ] || break
		if [ $((i % 10)) = 0 ]; then
			c1=$(ct_count "$GW1") c2=$(ct_count "$GW2")
			[ "$c1" -gt "$pk1" ] && pk1=$c1
			[ "$c2" -gt "$pk2" ] && pk2=$c2
			[ $((c1 + c2)) -gt "$pks" ] && pks=$((c1 + c2))
		fi
		sleep 0.1
		i=$((i + 1))
	done
	rc=0
	for pid in "${pids[@]}"; do
		kill -0 "$pid" 2>/dev/null && { lab_log "choreo-load overran: stopping it"; kill -TERM "$pid"; }
		wait "$pid" || rc=$?
	done
	t1=$(date +%s.%N)
	for r in dns1 dns2 gw1 gw2; do CPU1[$r]=$(gw_cpu_ticks "${DL_PID[$r]}"); done
	s1=$(gw_ns_cpu_ticks "$SRV") h1=$(gw_ns_cpu_ticks "$HPOT")
	read -r j1 i1 < <(machine_ticks)
	d1_1=$(gw_ct_drops "$GW1") d2_1=$(gw_ct_drops "$GW2") lo1=$(gw_listen_overflows "$SRV")
	read -r q1 sf1 cf1 to1 < <(dns_counters)
	b1=$(( $(dl_gw_pool_field gw1 "$DL_POOL4" bindings) + 0 ))
	c1=$(ct_count "$GW1") c2=$(ct_count "$GW2")
	wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { w = b - a; printf "%.1f", (w > 0 ? w : 1) }')
	cores() { awk -v t="$1" -v hz="$HZ" -v w="$wall" 'BEGIN { printf "%.2f", t / hz / w }'; }
	for r in dns1 dns2 gw1 gw2; do CPUC[$r]=$(cores $((CPU1[$r] - CPU0[$r]))); done
	srv=$(cores $((s1 - s0))) hpot=$(cores $((h1 - h0)))
	idle=$(awk -v j=$((j1 - j0)) -v i=$((i1 - i0)) 'BEGIN { printf "%.2f", (j > 0 ? i / j : 0) }')
	for net in A B; do
		cat "$tag.out.$net".* 2>/dev/null | grep '^clients=' >"$tag.lines.$net"
		cat "$tag.out.$net".* 2>/dev/null | grep '^clients='
	done >"$tag.lines"
	lineA=$(gw_load_merge "$tag.lines.A") lineB=$(gw_load_merge "$tag.lines.B") line=$(gw_load_merge "$tag.lines")
	if [ "$(grep -c . "$tag.lines")" != "$k" ] || [ "$rc" != 0 ]; then
		echo "clients=$n FAILED (exit $rc, $(grep -c . "$tag.lines") of $k report lines)"
		cat "$tag.log".* | tail -n 10 | sed 's/^/#   /' >&2
		failed=$((failed + 1))
		continue
	fi
	f() { gw_field "$line" "$1"; }
	mis=$(f misrouted)
	[ "${mis%%/*}" -gt 0 ] && misrouted_any=1
	tx=$(f tx_per_s) off=$(f offered_per_s) gen=$(f gen_cpu) sat=$(f saturated) late=$(f late) started=$(f started)
	nominal=$(awk -v n="$n" -v l="$LAT" 'BEGIN { printf "%.0f", n / (1.0833 + l / 1000) }')
	ctd=$(( (d1_1 - d1_0) + (d2_1 - d2_0) )) lo=$((lo1 - lo0)) qd=$((q1 - q0))
	echo "clients=$n (net A $nA: $(gw_field "$lineA" misrouted) misrouted, net B $nB: $(gw_field "$lineB" misrouted)) misrouted=$mis" \
		"tx_per_s=$tx offered_per_s=$off nominal_per_s=$nominal attempted_per_s=$(f attempted_per_s)" \
		"dns_fail=$(f dns_fail) conn_fail=$(f conn_fail) conn_timeout=$(f conn_timeout) dns_timeout=$(f dns_timeout) aborted=$(f aborted)" \
		"late=$late/$started saturated=$sat gen_cpu=$gen generators=$k gen_cpu_parts=$(f gen_cpu_parts)" \
		"dns1_cpu=${CPUC[dns1]} dns2_cpu=${CPUC[dns2]} gw1_cpu=${CPUC[gw1]} gw2_cpu=${CPUC[gw2]}" \
		"banner_cpu=$srv+$hpot idle=$idle" \
		"conntrack_peak_gw1=$pk1 conntrack_peak_gw2=$pk2 conntrack_peak_sum=$pks conntrack_max=$ct_max conntrack_end=$c1+$c2 ct_drops=$ctd" \
		"listen_overflows=$lo dns_dropped=$qd servfail=$((sf1 - sf0)) commit_failures=$((cf1 - cf0)) commit_timeouts=$((to1 - to0))" \
		"bindings_gw1=$b1 new_bindings_gw1=$((b1 - b0))" \
		"service_ms_avg=$(f service_ms_avg) dns_ms_avg=$(f dns_ms_avg) connect_lag_max_ms=$(f connect_lag_max_ms)"
	lim=$(awk -v tx="$tx" -v off="$off" -v nom="$nominal" -v sat="$sat" -v gen="$gen" \
		-v d1="${CPUC[dns1]}" -v d2="${CPUC[dns2]}" -v g1="${CPUC[gw1]}" -v g2="${CPUC[gw2]}" \
		-v srv="$srv" -v w="$GWLAB_BANNER_WORKERS" -v idle="$idle" -v p1="$pk1" -v p2="$pk2" \
		-v ctm="$ct_max" -v ctd="$ctd" -v lo="$lo" -v ncpu="$ncpu" -v qd="$qd" 'BEGIN {
		s = ""
		if (sat == 1 || gen >= 0.9)
			s = s sprintf("; generator (saturated=%d, gen_cpu=%.2f of one core)", sat, gen)
		if (srv >= 0.85 * (w < ncpu ? w : ncpu) || lo > 0)
			s = s sprintf("; banner server (srv banner.py %.2f cores for %d processes, %d listen-queue overflows)", srv, w, lo)
		if ((ctm > 0 && (p1 >= 0.95 * ctm || p2 >= 0.95 * ctm)) || ctd > 0)
			s = s sprintf("; conntrack (peaks %d and %d of %d, %d drops)", p1, p2, ctm, ctd)
		if (d1 >= 0.9 || d2 >= 0.9 || g1 >= 0.9 || g2 >= 0.9 || qd > 0)
			s = s sprintf("; choreod (dns1 %.2f, dns2 %.2f, gw1 %.2f, gw2 %.2f of one core, %d DNS queries dropped)", d1, d2, g1, g2, qd)
		if (idle < 0.05)
			s = s sprintf("; machine CPU (%d cores, %.0f %% idle)", ncpu, 100 * idle)
		if (s == "") {
			if (tx >= 0.95 * off)
				s = sprintf("; nothing measured: achieved %.0f/s = %.0f %% of offered %.0f/s (machine %.0f %% idle)", tx, 100 * tx / off, off, 100 * idle)
			else
				s = sprintf("; no measured resource at its limit, yet achieved %.0f/s is only %.0f %% of offered %.0f/s", tx, 100 * tx / off, off)
		}
		printf "%s (achieved %.0f/s, offered %.0f/s, nominal %.0f/s = %.0f %%)", substr(s, 3), tx, off, nom, 100 * tx / nom }')
	echo "  limited by: $lim"
	grep -ih 'warn' "$tag.log".* | sed 's/^/#   /' >&2
	SUMMARY+=("| distributed | $n | $mis | $tx / $off ($nominal) | $late/$started, $sat, $gen | dns1 ${CPUC[dns1]}, dns2 ${CPUC[dns2]}, gw1 ${CPUC[gw1]}, gw2 ${CPUC[gw2]} | $srv+$hpot | $idle | $pk1 + $pk2 / $ct_max each ($ctd drops) |")
done

echo
echo "Scale: valid clients, ${LAT} ms, $SECS s a run, close $CLOSE, $ncpu CPU shared by clients, servers, gateways and DNS nodes"
echo "| setup | clients | misrouted/total | tx/s achieved / offered (nominal) | generator late/started, saturated, CPU | choreod CPU (cores) | banner CPU srv+hpot | machine idle | conntrack peak / max |"
echo "|---|---|---|---|---|---|---|---|---|"
for s in "${SUMMARY[@]}"; do echo "$s"; done
echo
for r in dns1 dns2 gw1 gw2; do
	dl_ctl "$r" status | grep -E '^(gateways|commits|changes_received|conntrack|dns queries)' | sed "s/^/# $r: /"
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$failed" -gt 0 ] || [ "$misrouted_any" = 1 ]; then
	echo "targets: NOT met (failed runs $failed, a misroute: $misrouted_any)"
	exit 1
fi
echo "targets: met (no valid transaction misrouted in any run, standalone or distributed)"
exit 0
