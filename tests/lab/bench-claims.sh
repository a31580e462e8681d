#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Single-use windows (window_claims) under load, in the gateway lab
# (gwlab.sh), with choreo-load and the settings of bench-seed.sh (pool /25,
# max_open 16, window 5 s, grace 2 s, think N(1000,1000) ms, ports
# 22/25/80/443 in plain text, FIN closes) and a binding shorter than a run
# (BENCH_BINDING, default 10 s, runs of 60 s). One run after the other:
#
#   a  clients ask choreod directly, ttl 5, mixed (BENCH_CLIENTS, of which
#      BENCH_VALID_SHARE valid, the rest never-asking scanners), latency 0
#      and 20 ms: window_claims 0, then window_claims 1 (same settings).
#      Valid misroutes (target 0); the scanners' reach against
#      max_open / pool.
#   b  through the lab's Unbound, ttl 0, window_claims 1: valid clients
#      (as many as the valid half of a mixed run), then mixed. Valid
#      misroutes: not 0, because the resolver hands one upstream answer to
#      identical queries that arrive while it is being fetched, and those
#      clients share one window and its claims ("tx - answers" counts
#      them); measured, not a failure.
#   c  through Unbound, ttl 5: window_claims 1, valid then mixed; then
#      window_claims 0, valid then mixed. Every choreo-load client asks the
#      same resolver, so one cached answer serves many clients: the
#      misroute rate of valid transactions is the "second client from the
#      cache" trade; mixed minus valid estimates how often a scanner that
#      claims first takes a resolver client's way in.
#   (b and c: latency BENCH_RES_LATENCY ms, default 20, sd 5.)
#
# Each configuration gets its own choreod configuration and a choreod of
# its own: the previous one is stopped, its table removed (choreoctl
# remove-table), and the next starts with a fresh table name, so no window,
# claim or binding carries over. Every run takes a fresh range of client
# addresses (--client-offset), and before each run the script waits
# window + grace + 1 s (and until `choreoctl status` says open_now 0), so no
# window of an earlier run, and no answer Unbound cached in it, is left.
#
# Prints one line per run:
#   run=ID ... misrouted=X/T reached_server=Y/U ... late=L saturated=S gen_cpu=G ...
# then one table per part. Exit 1 when a run failed, a valid transaction was
# misrouted in a, or a scanners' reach in a is above the bound; b's and c's
# misroutes are the trade being measured, not a failure.
#
# Environment:
#   SECONDS_PER_RUN=60        duration of each run (1..3600)
#   BENCH_BINDING=10          choreod's binding (s)
#   BENCH_CLIENTS=200         clients of a mixed run (valid runs: the valid share of it)
#   BENCH_VALID_SHARE=0.5     valid share of a mixed run
#   BENCH_RES_LATENCY=20      mean latency (ms, sd 5; 0: sd 0) of the runs through Unbound
#   BENCH_PARTS="a b c"       a subset for a quick look
#   BENCH_WINDOW=5 BENCH_GRACE=2 BENCH_MAX_OPEN=16
#   BENCH_CLOSE=fin|rst       how connections end (default fin)
#   BENCH_BANNER_WORKERS=2    banner.py processes per host (SO_REUSEPORT)
#   BENCH_SEED=               choreo-load --seed (default: random, printed)
#   CHOREOD, CHOREOCTL, CHOREO_LOAD   the binaries (default build/...)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)

SECS=${SECONDS_PER_RUN:-60}
BINDING=${BENCH_BINDING:-10}
CLIENTS=${BENCH_CLIENTS:-200}
SHARE=${BENCH_VALID_SHARE:-0.5}
RES_LAT=${BENCH_RES_LATENCY:-20}
PARTS=${BENCH_PARTS:-a b c}
WINDOW=${BENCH_WINDOW:-5}
GRACE=${BENCH_GRACE:-2}
MAX_OPEN=${BENCH_MAX_OPEN:-16}
CLOSE=${BENCH_CLOSE:-fin}
SEED=${BENCH_SEED:-}
export GWLAB_TLS=0
export GWLAB_BANNER_WORKERS=${BENCH_BANNER_WORKERS:-2}
export GWLAB_BANNER_BACKLOG=4096

. "$here/gwlab.sh"

for v in "$SECS" "$BINDING" "$CLIENTS" "$RES_LAT" "$WINDOW" "$GRACE" "$MAX_OPEN" \
	"$GWLAB_BANNER_WORKERS" ${SEED:+"$SEED"}; do
	case "$v" in ''|*[!0-9]*) lab_die "SECONDS_PER_RUN, BENCH_* must be whole numbers" ;; esac
done
[ "$SECS" -ge 1 ] && [ "$SECS" -le 3600 ] || lab_die "SECONDS_PER_RUN must be 1..3600"
[ "$CLIENTS" -ge 2 ] && [ "$CLIENTS" -le 20000 ] || lab_die "BENCH_CLIENTS must be 2..20000"
[ "$BINDING" -ge 1 ] || lab_die "BENCH_BINDING must be at least 1"
[ "$WINDOW" -ge 5 ] || lab_die "BENCH_WINDOW must be at least 5 (the ttl of a and c)"
awk -v s="$SHARE" 'BEGIN { exit !(s ~ /^[0-9.]+$/ && s > 0 && s < 1) }' ||
	lab_die "BENCH_VALID_SHARE must be between 0 and 1"
for p in $PARTS; do
	case "$p" in a|b|c) ;; *) lab_die "BENCH_PARTS: a, b, c" ;; esac
done
case "$CLOSE" in fin|rst) ;; *) lab_die "BENCH_CLOSE must be fin or rst" ;; esac
[ -x "$GW_LOAD" ] || lab_die "build first: make build/choreo-load"
# the valid runs: as many clients as the valid half of a mixed run
VALID_N=$(awk -v n="$CLIENTS" -v s="$SHARE" 'BEGIN { printf "%d", n * s + 0.5 }')
[ "$VALID_N" -ge 1 ] || VALID_N=1
res_sd=5; [ "$RES_LAT" = 0 ] && res_sd=0

gwlab_init claims_b
gwlab_up

# pool size as the scanners see it: the /25 less choreod's own address
pool_bits=${GW_POOL4#*/}
POOL_N=$(( (1 << (32 - pool_bits)) - 1 ))
BOUND=$(awk -v a="$MAX_OPEN" -v b="$POOL_N" 'BEGIN { printf "%.4f", a / b }')

lab_log "machine: $(nproc) CPU, $(uname -sr); $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
lab_log "choreod: window $WINDOW s, grace $GRACE s, max_open $MAX_OPEN, pool $GW_POOL4 ($POOL_N addresses for scanners), binding $BINDING s, rotate 0"
lab_log "$SECS s a run; mixed runs $CLIENTS clients (valid share $SHARE), valid runs $VALID_N clients; think N(1000,1000) ms; ports 22,25,80,443 (443 plain); close $CLOSE"
lab_log "through Unbound ($GW_RES4): latency $RES_LAT ms sd $res_sd; directly ($GW_DNS4): latency 0 and 20 ms"
lab_log "banner.py: $GWLAB_BANNER_WORKERS processes per host; conntrack max in gw: $(gw_conntrack | cut -d' ' -f2)"

# ---- choreod per configuration ---------------------------------------------
CONF_N=0 CUR_CONF="" CUR_TABLE=""
# configure TTL CLAIMS: a new choreod with its own table; the old one goes
configure() {
	local ttl=$1 claims=$2 old=$CUR_TABLE
	if [ -n "$GW_CHOREOD_PID" ]; then
		gwlab_choreod_stop
		gw_ctl remove-table "$old" >/dev/null 2>&1 ||
			lab_log "choreoctl remove-table $old failed"
	fi
	CONF_N=$((CONF_N + 1))
	CUR_TABLE="choreo_cb${CONF_N}_$$"
	CUR_TABLE=${CUR_TABLE:0:31}
	# shellcheck disable=SC2034  # gwlab.sh's helpers read it
	GW_TABLE=$CUR_TABLE
	CUR_CONF="ttl $ttl, window_claims $claims"
	gwlab_conf "$LAB_TMP/choreo.$CONF_N.conf" ttl="$ttl" window="$WINDOW" grace="$GRACE" \
		max_open="$MAX_OPEN" binding="$BINDING" rotate=0 window_claims="$claims" \
		table="$CUR_TABLE"
	gwlab_choreod_start "$LAB_TMP/choreo.$CONF_N.conf" || lab_die "choreod did not start ($CUR_CONF)"
	lab_log "choreod restarted: $CUR_CONF, table $CUR_TABLE"
}

# counters: "answers reused claims_taken to_server to_honeypot" of the IPv4
# pool (the gateway's counters are read every 5 s by choreod's worker)
counters() {
	gw_ctl status 2>/dev/null | awk '
		/^  pool 203/ { for (i = 1; i < NF; i++) { if ($i == "answers") a = $(i+1); if ($i == "reused") r = $(i+1) }; p = 1; next }
		p == 1 && /gateway:/ { for (i = 1; i < NF; i++) { if ($i == "claims_taken") c = $(i+1); if ($i == "to_server") s = $(i+1); if ($i == "to_honeypot") h = $(i+1) }; p = 0 }
		END { printf "%d %d %d %d %d\n", a, r, c, s, h }'
}

# settle: no window of an earlier run left open, and the counters read
settle() {
	local i=0
	sleep $((WINDOW + GRACE + 1))
	while [ "$(gw_status_field '^  pool 203' open_now)" != 0 ] && [ "$i" -lt 50 ]; do
		sleep 0.2; i=$((i + 1))
	done
	[ "$i" -ge 50 ] && lab_log "open_now still not 0 after the wait"
	# the worker refreshes the gateway's counters every 5 s
	sleep 5.5
}

declare -A R_LINE R_MIS R_REACH R_DESC R_EXTRA
RUNS=()
offset=0 failed=0 over=0 mis_ab=0
# run ID PART VIA LAT MIX
run() {
	local id=$1 part=$2 via=$3 lat=$4 mix=$5 sd=5 n ask c0 c1 line extra
	[ "$lat" = 0 ] && sd=0
	if [ "$mix" = valid ]; then n=$VALID_N; else n=$CLIENTS; fi
	if [ "$via" = resolver ]; then
		ask=(--resolver "$GW_RES4" --exclude "$GW_DNS4")
	else
		ask=(--dns "$GW_DNS4")
	fi
	[ $((offset + n)) -ge 65534 ] && lab_die "client prefix exhausted"
	read -r -a c0 < <(counters)
	gw_load_run "$LAB_TMP/load.$id" --duration "$SECS" --clients "$n" \
		--client-prefix "$GW_CLI_NET4" --client-offset "$offset" \
		--mode "$mix" --valid-share "$SHARE" "${ask[@]}" --pool "$GW_POOL4" \
		--latency-ms "$lat" --latency-sd "$sd" --think-ms 1000 --think-sd 1000 \
		--close "$CLOSE" --progress 0 ${SEED:+--seed "$SEED"}
	offset=$((offset + n))
	line=$GW_LOAD_LINE
	RUNS+=("$id")
	R_DESC[$id]="$part: $CUR_CONF, via $via, $mix, $n clients, ${lat} ms"
	if [ -z "$line" ] || [ "$GW_LOAD_RC" != 0 ]; then
		echo "run=$id ${R_DESC[$id]}: FAILED (exit $GW_LOAD_RC)"
		sed 's/^/#   /' "$LAB_TMP/load.$id" | tail -n 5 >&2
		failed=$((failed + 1))
		settle
		return
	fi
	settle
	read -r -a c1 < <(counters)
	extra="answers=$((c1[0] - c0[0])) reused=$((c1[1] - c0[1])) claims_taken=$((c1[2] - c0[2]))"
	R_LINE[$id]=$line
	R_MIS[$id]=$(gw_field "$line" misrouted)
	R_REACH[$id]=$(gw_field "$line" reached_server)
	R_EXTRA[$id]=$extra
	echo "run=$id part=$part conf=\"$CUR_CONF\" via=$via $(cut -d' ' -f1-6 <<<"$line")" \
		"offered_per_s=$(gw_field "$line" offered_per_s)" \
		"dns_fail=$(gw_field "$line" dns_fail) conn_fail=$(gw_field "$line" conn_fail)" \
		"aborted=$(gw_field "$line" aborted)" \
		"late=$(gw_field "$line" late) saturated=$(gw_field "$line" saturated)" \
		"gen_cpu=$(gw_field "$line" gen_cpu) start_lag_max_ms=$(gw_field "$line" start_lag_max_ms)" \
		"connect_lag_max_ms=$(gw_field "$line" connect_lag_max_ms)" \
		"dns_ms_avg=$(gw_field "$line" dns_ms_avg)" \
		"choreod_cpu=$GW_LOAD_CHOREOD banner_cpu=$GW_LOAD_SRV+$GW_LOAD_HPOT idle=$GW_LOAD_IDLE" \
		"conntrack_peak=$GW_LOAD_CT_PEAK/$GW_LOAD_CT_MAX wall=${GW_LOAD_WALL}s $extra" \
		"seed=$(gw_field "$line" seed)"
	grep -i 'warn' "$LAB_TMP/load.$id" | sed 's/^/#   /' >&2
	case "$part" in
	a) local m=${R_MIS[$id]%%/*}; [ "${m:-0}" -gt 0 ] && mis_ab=1 ;;
	esac
}

t_start=$SECONDS
for part in $PARTS; do
	case "$part" in
	a)
		for claims in 0 1; do
			configure 5 "$claims"
			settle
			for lat in 0 20; do run "a$claims.$lat" a dns "$lat" mixed; done
		done ;;
	b)
		configure 0 1
		settle
		run b.valid b resolver "$RES_LAT" valid
		run b.mixed b resolver "$RES_LAT" mixed ;;
	c)
		for claims in 1 0; do
			configure 5 "$claims"
			settle
			run "c$claims.valid" c resolver "$RES_LAT" valid
			run "c$claims.mixed" c resolver "$RES_LAT" mixed
		done ;;
	esac
done
t_total=$((SECONDS - t_start))

# ---- tables ------------------------------------------------------------------
pct() { awk -v xy="$1" 'BEGIN { split(xy, a, "/"); if (a[2] > 0) printf "%.2f %%", 100 * a[1] / a[2]; else printf "-" }'; }
within() {  # Y/U -> "within" or "ABOVE" (bound + 3 binomial sd)
	awk -v xy="$1" -v b="$BOUND" 'BEGIN { split(xy, a, "/"); u = a[2]; p = (u > 0 ? a[1] / u : 0)
		tol = (u > 0 ? 3 * sqrt(b * (1 - b) / u) : 0); print (p <= b + tol ? "within" : "ABOVE") }'
}
limits() {  # late / saturated / gen_cpu of a run
	local l=${R_LINE[$1]:-}
	[ -n "$l" ] || { echo "-"; return; }
	echo "late $(gw_field "$l" late), sat $(gw_field "$l" saturated), gen_cpu $(gw_field "$l" gen_cpu)"
}
row() {  # ID: the common columns
	local id=$1 mis=${R_MIS[$1]:-} reach=${R_REACH[$1]:-}
	printf '| %s | %s | %s |' "${R_DESC[$id]#*: }" "${mis:-FAILED} (${mis:+$(pct "$mis")})" \
		"$([ "$(gw_field "${R_LINE[$id]:-}" mix)" = valid ] && echo "-" || echo "${reach:-?} (${reach:+$(pct "$reach")})")"
}

echo
echo "machine: $(nproc) CPU, $(uname -r); $SECS s a run; window $WINDOW, grace $GRACE, max_open $MAX_OPEN, pool $GW_POOL4, binding $BINDING; total ${t_total} s"
bound_pct=$(awk -v b="$BOUND" 'BEGIN { printf "%.1f %%", 100 * b }')
for part in $PARTS; do
	echo
	case "$part" in
	a) echo "a. Clients ask choreod directly, ttl 5, mixed: valid misrouted / total; scanners reached_server / tries vs max_open/pool = $MAX_OPEN/$POOL_N = $bound_pct" ;;
	b) echo "b. Through Unbound, ttl 0, window_claims 1" ;;
	c) echo "c. Through Unbound, ttl 5 (one shared resolver)" ;;
	esac
	echo "| run | valid misrouted / total | scanners reached / tries | claims_taken | answers | generator |"
	echo "|---|---|---|---|---|---|"
	for id in "${RUNS[@]}"; do
		[ "${R_DESC[$id]%%:*}" = "$part" ] || continue
		row "$id"
		printf ' %s | %s | %s |\n' "$(gw_value claims_taken <<<"${R_EXTRA[$id]//=/ }")" \
			"$(gw_value answers <<<"${R_EXTRA[$id]//=/ }")" "$(limits "$id")"
		if [ "$part" = a ] && [ -n "${R_REACH[$id]:-}" ]; then
			[ "$(within "${R_REACH[$id]}")" = ABOVE ] && over=1
		fi
	done
done
if [[ " $PARTS " == *" c "* ]]; then
	echo
	for claims in 1 0; do
		v=${R_MIS[c$claims.valid]:-} m=${R_MIS[c$claims.mixed]:-}
		[ -n "$v" ] && [ -n "$m" ] || continue
		echo "c, window_claims $claims: valid misrouted $(pct "$v") without scanners, $(pct "$m") with scanners (difference $(awk -v a="$v" -v b="$m" 'BEGIN { split(a, x, "/"); split(b, y, "/"); if (x[2] > 0 && y[2] > 0) printf "%+.2f points", 100 * (y[1] / y[2] - x[1] / x[2]); else printf "-" }'))"
	done
fi
echo
if [ "$failed" -gt 0 ] || [ "$mis_ab" = 1 ] || [ "$over" = 1 ]; then
	echo "targets: NOT met (failed runs $failed, a misroute in a: $mis_ab, scanners' reach in a above the bound: $over)"
	exit 1
fi
echo "targets: met (0 misrouted valid transactions in a and b; scanners' reach in a within max_open/pool + 3 sd)"
exit 0
