#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# An honest client under a spoofed-source flood of rotated queries (run by
# `make bench` and `make bench-flood`). In the gateway lab (gwlab.sh: its
# namespaces, links and choreod configuration), plus a namespace atk joined
# to gw:
#
#   atk   build/dnsflood flood: queries for www.example.test (A, AAAA, each
#         letter's case at random, random ids and ports) written on a raw
#         socket with sources spread over 198.18.0.0/16, which gw routes
#         back to atk; atk does not forward, so the answers to the flood
#         are dropped there (counted as they leave gw)
#   cli   build/dnsflood probe: the honest client, BENCH_FLOOD_HONEST_SOURCES
#         addresses of 198.19.64.0/18 (AnyIP; one per /24), round robin at
#         BENCH_FLOOD_HONEST_RATE queries a second in all, each from a
#         fresh socket (a new flow, as a resolver's), timed from send to
#         the kernel's receive timestamp; no reply within 1 s: lost
#
# A baseline (the honest client alone), then the flood at each rate of
# BENCH_FLOOD_RATES ("max": as fast as the generator can) from each count
# of BENCH_FLOOD_SOURCES source addresses. Each run has a lab of its own
# (fresh namespaces: gw's conntrack table and choreod's sets start empty)
# and a fresh choreod; the honest client starts 1 s after the flood, which
# goes on 1 s after the client's last query. Per run:
#   gen        the generator: offered and achieved queries/s and its CPU
#              share (near 1.00 with achieved < offered: the generator
#              was the limit; 2 CPUs are shared by everything here)
#   arrived    flood packets that reached gw, per second
#   answers    choreod's answers per second over the flood (UDP sent);
#              to_flood: those that went back to the spoofed sources
#   cpu/ans    choreod's CPU time per answer (µs) and its CPU share; the
#              machine's idle and softirq shares
#   honest     the honest client: answered (NOERROR with an address) /
#              sent, lost, TC, SERVFAIL, p50/p99/max latency
#   sets       gw's www_asked4 elements when the flood ends (nft; a set
#              that filled took no more and has emptied by then), open4
#              (choreoctl status), an estimate of asked4's memory (180 B an
#              element, bench-gateway.sh's figure), what removing the table
#              freed (kmalloc caches + vmalloc, machine-wide: approximate);
#              gw's conntrack entries, drops and early drops
#   rejected   UDP receive-buffer drops in gw (choreod's socket full)
# Each run's choreoctl status before and after is kept in the run log; any
# status line about rate limiting (rrl, rate_limit, limited) is printed.
# Reports; fails only when the lab cannot be built or choreod dies.
#
# Environment:
#   BENCH_FLOOD_SECONDS=10            the honest client's time per run (1..600)
#   BENCH_FLOOD_RATES="10000 50000 max"   flood rates (queries/s, or max)
#   BENCH_FLOOD_SOURCES="1 256 65536"     flood source addresses (1..65536)
#   BENCH_FLOOD_HONEST_RATE=200       the honest client's queries/s (1..8000)
#   BENCH_FLOOD_HONEST_SOURCES=64     its addresses (1..64, one per /24)
#   BENCH_FLOOD_BASELINE=1            0: no baseline run
#   BENCH_FLOOD_DNS_EXTRA=            lines for choreod's [dns] section,
#                                     separated by newlines or ';', in place of
#                                     gwlab_conf's lines of the same keys (it
#                                     turns rate limiting off), e.g.
#                                     "rate_limit = 200; rate_limit_slip = 2"
#   BENCH_FLOOD_SERVICE_EXTRA=        the same for [service www], e.g.
#                                     "max_asked = 1048576"
#   CHOREOD, CHOREOCTL, DNSFLOOD      the binaries (default build/...)
#   LAB_KEEP=1                        keep the temp dir (configs, logs)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/gwlab.sh"

SECS=${BENCH_FLOOD_SECONDS:-10}
RATES=${BENCH_FLOOD_RATES:-10000 50000 max}
SOURCES=${BENCH_FLOOD_SOURCES:-1 256 65536}
HRATE=${BENCH_FLOOD_HONEST_RATE:-200}
HSRC=${BENCH_FLOOD_HONEST_SOURCES:-64}
BASELINE=${BENCH_FLOOD_BASELINE:-1}
EXTRA=${BENCH_FLOOD_DNS_EXTRA:-}
SVC_EXTRA=${BENCH_FLOOD_SERVICE_EXTRA:-}
DNSFLOOD=${DNSFLOOD:-$GWLAB_ROOT/build/dnsflood}
FLOOD_NET=198.18.0.0/16
HONEST_NET=198.19.64.0/18
ATK4=198.51.100.22 ATKGW4=198.51.100.21
FLOOD_MAX_COUNT=100000000

num() { case "$1" in ''|*[!0-9]*) return 1 ;; esac; [ "${#1}" -le 9 ]; }
num "$SECS" && [ "$SECS" -ge 1 ] && [ "$SECS" -le 600 ] ||
	lab_die "BENCH_FLOOD_SECONDS must be 1..600"
num "$HRATE" && [ "$HRATE" -ge 1 ] && [ "$HRATE" -le 8000 ] ||
	lab_die "BENCH_FLOOD_HONEST_RATE must be 1..8000"
num "$HSRC" && [ "$HSRC" -ge 1 ] && [ "$HSRC" -le 64 ] ||
	lab_die "BENCH_FLOOD_HONEST_SOURCES must be 1..64"
case "$BASELINE" in 0|1) ;; *) lab_die "BENCH_FLOOD_BASELINE must be 0 or 1" ;; esac
for r in $RATES; do
	[ "$r" = max ] && continue
	num "$r" && [ "$r" -ge 1 ] && [ "$r" -le 10000000 ] ||
		lab_die "BENCH_FLOOD_RATES: '$r' is not 1..10000000 or max"
done
for s in $SOURCES; do
	num "$s" && [ "$s" -ge 1 ] && [ "$s" -le 65536 ] ||
		lab_die "BENCH_FLOOD_SOURCES: '$s' is not 1..65536"
done
# extra_parse NAME TEXT: TEXT's "key = value" lines (newline or ';'
# separated; no section, no include) into EXTRA_LINES, or die.
EXTRA_LINES=()
extra_parse() {
	local name=$1 line key
	EXTRA_LINES=()
	while IFS= read -r line; do
		line=$(sed 's/^[[:space:]]*//; s/[[:space:]]*$//' <<<"$line")
		[ -n "$line" ] || continue
		key=$(sed 's/[[:space:]]*$//' <<<"${line%%=*}")
		case "$line" in *=*) ;; *) key="" ;; esac
		case "${line#*=}" in *[][=#]*) key="" ;; esac
		[[ $key =~ ^[a-z][a-z0-9_]*$ ]] || lab_die "$name: '$line' is not 'key = value'"
		EXTRA_LINES+=("$line")
	done < <(tr ';' '\n' <<<"$2")
}
extra_parse BENCH_FLOOD_DNS_EXTRA "$EXTRA"
dns_lines=("${EXTRA_LINES[@]}")
extra_parse BENCH_FLOOD_SERVICE_EXTRA "$SVC_EXTRA"
svc_lines=("${EXTRA_LINES[@]}")
for tool in nft python3; do
	command -v "$tool" >/dev/null || lab_die "$tool is missing (scripts/install-deps.sh bench)"
done
[ -x "$DNSFLOOD" ] || lab_die "build first: make build/dnsflood"

gwlab_init flood
cp "$DNSFLOOD" "$LAB_TMP/bin/dnsflood" || lab_die "cannot copy dnsflood"
DNSFLOOD=$LAB_TMP/bin/dnsflood
gwlab_zone "$LAB_TMP/example.test.zone"
gwlab_conf "$LAB_TMP/choreo.conf"
# conf_merge FILE SECTION LINES...: LINES into SECTION in place of its
# lines of the same keys (gwlab_conf writes rate_limit = 0), at its end.
conf_merge() {
	local f=$1 sec=$2; shift 2
	[ $# -gt 0 ] || return 0
	awk -v want="$sec" -v extra="$(printf '%s\n' "$@")" '
		function flush() { if (cur == want && !done) { printf "# bench-flood %s\n%s\n", want, extra; done = 1 } }
		BEGIN { n = split(extra, l, "\n"); for (i = 1; i <= n; i++) if (l[i] != "") {
			k = l[i]; sub(/[ \t]*=.*/, "", k); key[k] = 1 } }
		/^\[/ { flush(); cur = $0 }
		cur == want && !/^\[/ { k = $0; sub(/[ \t]*=.*/, "", k); if (k in key) next }
		{ print }
		END { flush() }' "$f" >"$f.new" && mv "$f.new" "$f" || lab_die "cannot write $f"
	grep -qxF "# bench-flood $sec" "$f" || lab_die "no section $sec in $f"
}
conf_merge "$LAB_TMP/choreo.conf" "[dns]" "${dns_lines[@]}"
conf_merge "$LAB_TMP/choreo.conf" "[service www]" "${svc_lines[@]}"
"$GW_CHOREOD" -t -c "$LAB_TMP/choreo.conf" >"$LAB_TMP/check.log" 2>&1 ||
	{ cat "$LAB_TMP/check.log" >&2; lab_die "choreod -t refused the configuration"; }

# ---- one run's lab ------------------------------------------------------------

RUN_NS_FROM=0
# run_lab_up ID: the gateway lab's namespaces under a name of this run, plus atk.
run_lab_up() {
	LAB_NAME="flood$1"
	RUN_NS_FROM=${#LAB_NETNS[@]}
	gwlab_net
	lab_netns ATK atk
	gwlab_link "$ATK" eth0 atk "$ATK4/30" "$ATKGW4" 2001:db8:f66::2/64 2001:db8:f66::1
	# atk neither forwards nor answers: what gw sends to the flood's sources is dropped there
	lab_in "$ATK" sysctl -q -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
		net.ipv4.ip_forward=0 >/dev/null || lab_die "sysctl in atk failed"
	ip -n "$GW" route replace "$FLOOD_NET" via "$ATK4" || lab_die "route $FLOOD_NET failed"
	# the honest client's addresses: local in cli, routed there by gw
	ip -n "$CLI" route add local "$HONEST_NET" dev lo || lab_die "AnyIP $HONEST_NET failed"
	lab_route "$GW" "$HONEST_NET" via 198.51.100.18
}

# run_lab_down: stop choreod, delete this run's namespaces.
run_lab_down() {
	local i
	gwlab_choreod_stop
	for ((i = RUN_NS_FROM; i < ${#LAB_NETNS[@]}; i++)); do
		ip netns delete "${LAB_NETNS[$i]}" 2>/dev/null
	done
	LAB_NETNS=("${LAB_NETNS[@]:0:RUN_NS_FROM}")
}

# ---- measuring ----------------------------------------------------------------

# status_num TEXT LINE_REGEX FIELD: the number after FIELD on the first line
# of TEXT matching LINE_REGEX (empty when absent).
status_num() {
	awk -v re="$2" -v f="$3" '
		$0 ~ re { for (i = 1; i < NF; i++) if ($i == f) { print $(i + 1) + 0; exit } }' <<<"$1"
}
dev_stat() { lab_in "$GW" cat "/sys/class/net/$1/statistics/$2" 2>/dev/null || echo 0; }
# snmp NS PROTO FIELD: a counter of /proc/net/snmp in NS ("Udp" "RcvbufErrors")
snmp() {
	lab_in "$1" awk -v p="$2:" -v f="$3" '$1 == p { if (!h) { for (i = 2; i <= NF; i++) if ($i == f) c = i; h = 1 }
		else { print (c ? $c + 0 : 0); exit } }' /proc/net/snmp
}
udp_rcvbuf_errors() { snmp "$GW" Udp RcvbufErrors; }
# conntrack_drops: "DROP EARLY_DROP" summed over every CPU (hex columns):
# new packets dropped for a full table, and entries evicted to make room
conntrack_drops() {
	local cols=() d=-1 e=-1 i sd=0 se=0
	while read -r -a cols; do
		if [ "$d" = -1 ]; then
			for i in "${!cols[@]}"; do
				[ "${cols[$i]}" = drop ] && d=$i
				[ "${cols[$i]}" = early_drop ] && e=$i
			done
			[ "$d" -ge 0 ] && [ "$e" -ge 0 ] || break
			continue
		fi
		[[ ${cols[$d]} =~ ^[0-9a-fA-F]{1,15}$ ]] && sd=$((sd + 16#${cols[$d]}))
		[[ ${cols[$e]} =~ ^[0-9a-fA-F]{1,15}$ ]] && se=$((se + 16#${cols[$e]}))
	done < <(lab_in "$GW" cat /proc/net/stat/nf_conntrack 2>/dev/null)
	echo "$sd $se"
}
# kmem_bytes: the kernel's kmalloc caches in use plus vmalloc (machine-wide)
kmem_bytes() {
	awk '$1 ~ /^kmalloc-/ { s += $2 * $4 } END { printf "%.0f\n", s }' /proc/slabinfo 2>/dev/null
}
vmalloc_bytes() { awk '$1 == "VmallocUsed:" { printf "%.0f\n", $2 * 1024 }' /proc/meminfo; }
# ct_slab_bytes: the nf_conntrack cache in use (every namespace)
ct_slab_bytes() { awk '$1 == "nf_conntrack" { printf "%.0f\n", $2 * $4 }' /proc/slabinfo 2>/dev/null; }
# set_elems SET: elements of a concatenation set now (nft's text output)
set_elems() { gw_nft list set inet "$GW_TABLE" "$1" 2>/dev/null | grep -oE ' \. [0-9a-f]' | wc -l; }
# cpu_stat: "TOTAL IDLE SOFTIRQ" ticks of the whole machine (/proc/stat)
cpu_stat() { awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t, $5 + $6, $8; exit }' /proc/stat; }

# status_settled: choreoctl status once its set counts are fresh (bounded, 5 s).
status_settled() {
	local s i
	for i in $(seq 1 50); do
		s=$(gw_ctl status 2>/dev/null)
		grep -q 'still counting' <<<"$s" || break
		sleep 0.1
	done
	printf '%s\n' "$s"
}

declare -a ROWS=()
FAILED=0

# run ID RATE SOURCES: one run (RATE "-" for the baseline).
run() {
	local id=$1 rate=$2 nsrc=$3 log flood_pid="" gen="" probe s0 s1 c0 c1 hz
	local t0 t1 rx0 rx1 tx0 tx1 ctm0 ctm1 rb0 rb1 cd0 cd1 ce0 ce1 ct n flood_args=() wall ts
	local ka kb va vb setmem asked j0 j1 i0 i1 q0s q1s
	log=$LAB_TMP/run.$id
	run_lab_up "$id"
	gwlab_choreod_start "$LAB_TMP/choreo.conf" 10 || { FAILED=1; run_lab_down; return 1; }
	s0=$(gw_ctl status 2>/dev/null)
	printf '== status before\n%s\n' "$s0" >"$log"
	hz=$(getconf CLK_TCK)
	c0=$(gw_cpu_ticks "$GW_CHOREOD_PID")
	rx0=$(dev_stat atk rx_packets); tx0=$(dev_stat atk tx_packets)
	rb0=$(udp_rcvbuf_errors); read -r cd0 ce0 < <(conntrack_drops); ctm0=$(ct_slab_bytes)
	read -r j0 i0 q0s < <(cpu_stat)
	t0=$(date +%s.%N)
	if [ "$rate" != - ]; then
		flood_args=(flood --dst "$GW_DNS4" --src "$FLOOD_NET" --sources "$nsrc"
			--name "$GW_NAME" --type A --type AAAA --random-case
			--rate "$([ "$rate" = max ] && echo 0 || echo "$rate")"
			--count "$([ "$rate" = max ] && echo "$FLOOD_MAX_COUNT" || echo $((rate * (SECS + 2))))"
			--duration $((SECS + 2)))
		echo "\$ dnsflood ${flood_args[*]}" >>"$log"
		lab_in "$ATK" "$DNSFLOOD" "${flood_args[@]}" >"$log.flood" 2>&1 </dev/null &
		flood_pid=$!
		LAB_PIDS+=("$flood_pid")
		sleep 1
	fi
	probe=$(lab_in "$CLI" timeout $((SECS + 10)) "$DNSFLOOD" probe --dst "$GW_DNS4" \
		--src "$HONEST_NET" --sources "$HSRC" --name "$GW_NAME" --type A \
		--rate "$HRATE" --duration "$SECS" 2>>"$log")
	if [ -n "$flood_pid" ]; then
		# bounded: the flood's own --duration, then 10 s more
		for n in $(seq 1 100); do
			kill -0 "$flood_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$flood_pid" 2>/dev/null && { lab_log "dnsflood overran: stopping it"; kill -TERM "$flood_pid"; }
		wait "$flood_pid"
		gen=$(grep -m1 '^mode=flood' "$log.flood")
	fi
	t1=$(date +%s.%N)
	read -r j1 i1 q1s < <(cpu_stat)
	c1=$(gw_cpu_ticks "$GW_CHOREOD_PID")
	rx1=$(dev_stat atk rx_packets); tx1=$(dev_stat atk tx_packets)
	rb1=$(udp_rcvbuf_errors); read -r cd1 ce1 < <(conntrack_drops); ctm1=$(ct_slab_bytes)
	ka=$(kmem_bytes); va=$(vmalloc_bytes)
	read -r ct _ < <(gw_conntrack)
	# the asker . address elements left when the flood stopped (the dump's own time too)
	ts=$SECONDS
	asked=$(set_elems www_asked4)
	echo "www_asked4: $asked elements, counted in $((SECONDS - ts)) s" >>"$log"
	# where the answers to the flood ended: dropped in atk (not forwarded), no ICMP back
	echo "atk Ip InAddrErrors $(snmp "$ATK" Ip InAddrErrors) Icmp OutMsgs $(snmp "$ATK" Icmp OutMsgs);" \
		"gw Icmp InMsgs $(snmp "$GW" Icmp InMsgs)" >>"$log"
	s1=$(status_settled)
	printf '== status after\n%s\n== flood\n%s\n== probe\n%s\n' "$s1" "$gen" "$probe" >>"$log"
	if ! lab_alive "$GW_CHOREOD_PID"; then
		lab_log "choreod died in run $id; its log:"
		tail -n 20 "$GW_CHOREOD_LOG" | sed 's/^/#   /' >&2
		FAILED=1
	fi
	grep -iE 'rrl|rate_limit|limited' <<<"$s1" | sed "s/^/# run $id status: /" >&2
	# the kernel memory the sets held when the flood stopped: that moment
	# against after choreod stopped and its table was removed (the kernel
	# frees elements after an RCU grace period)
	gwlab_choreod_stop
	gw_nft delete table inet "$GW_TABLE" 2>>"$log"
	sleep 2
	kb=$(kmem_bytes); vb=$(vmalloc_bytes)
	setmem=$(( (ka - kb) + (va - vb) ))
	echo "table removed: kmalloc caches -$(( (ka - kb) / 1024 )) KiB, vmalloc -$(( (va - vb) / 1024 )) KiB" >>"$log"

	wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { w = b - a; print (w > 0 ? w : 1) }')
	local q0 q1 u0 u1 rot0 rot1 sf1 dr0 dr1 tc0 tc1 open cm0 cm1 load sfull ovl
	q0=$(status_num "$s0" '^dns queries' queries); q1=$(status_num "$s1" '^dns queries' queries)
	u0=$(status_num "$s0" '^udp received' sent); u1=$(status_num "$s1" '^udp received' sent)
	rot0=$(status_num "$s0" '^dns queries' rotated); rot1=$(status_num "$s1" '^dns queries' rotated)
	dr0=$(status_num "$s0" '^dns queries' dropped); dr1=$(status_num "$s1" '^dns queries' dropped)
	tc0=$(status_num "$s0" '^dns queries' truncated); tc1=$(status_num "$s1" '^dns queries' truncated)
	sf1=$(status_num "$s1" '^dns queries' servfail)
	cm0=$(status_num "$s0" '^commits' commits); cm1=$(status_num "$s1" '^commits' commits)
	# (a full set refuses a commit: its answers are SERVFAIL; overload: 64 commits outstanding)
	sfull=$(status_num "$s1" '^table_repairs' set_full); ovl=$(status_num "$s1" '^commits' overload)
	read -r load _ </proc/loadavg
	open=$(status_num "$s1" 'gateway:' open)
	ROWS+=("$(awk -v id="$id" -v rate="$rate" -v nsrc="$nsrc" -v gen="$gen" -v probe="$probe" \
		-v w="$wall" -v hz="$hz" -v c="$((c1 - c0))" -v q="$((${q1:-0} - ${q0:-0}))" \
		-v u="$((${u1:-0} - ${u0:-0}))" -v rot="$((${rot1:-0} - ${rot0:-0}))" \
		-v dr="$((${dr1:-0} - ${dr0:-0}))" -v tc="$((${tc1:-0} - ${tc0:-0}))" -v sf="${sf1:-0}" \
		-v rx="$((rx1 - rx0))" -v tx="$((tx1 - tx0))" -v rb="$((rb1 - rb0))" \
		-v cd="$((cd1 - cd0))" -v ce="$((ce1 - ce0))" -v ct="${ct:-0}" -v ctmem="$(( ${ctm1:-0} - ${ctm0:-0} ))" -v setmem="$setmem" \
		-v asked="${asked:--}" -v open="${open:--}" -v cm="$((${cm1:-0} - ${cm0:-0}))" \
		-v sfull="${sfull:--}" -v ovl="${ovl:--}" -v load="$load" -v jt="$((j1 - j0))" -v ji="$((i1 - i0))" -v js="$((q1s - q0s))" '
	function f(line, k,   i, n, a) {
		n = split(line, a, " ")
		for (i = 1; i <= n; i++) if (index(a[i], k "=") == 1) return substr(a[i], length(k) + 2)
		return "-"
	}
	BEGIN {
		cpu = c / hz
		printf "run=%s flood_rate=%s flood_sources=%s", id, rate, (rate == "-" ? "-" : nsrc)
		printf " gen_offered=%s gen_achieved=%s gen_cpu=%s", f(gen, "offered_qps"), f(gen, "achieved_qps"), f(gen, "cpu_share")
		printf " arrived_qps=%.0f queries=%d answers_qps=%.0f to_flood_qps=%.0f", rx / w, q, u / w, tx / w
		printf " rotated=%d commits=%d dropped=%d truncated=%d servfail=%d set_full=%s overload=%s rcvbuf_errors=%d", \
			rot, cm, dr, tc, sf, sfull, ovl, rb
		printf " choreod_cpu=%.2f cpu_per_answer_us=%.1f", cpu / w, (u > 0 ? cpu * 1e6 / u : 0)
		printf " honest_sent=%s honest_answered=%s honest_rate=%s honest_lost=%s honest_tc=%s honest_servfail=%s", \
			f(probe, "sent"), f(probe, "answered"), f(probe, "answer_rate"), f(probe, "lost"), f(probe, "tc"), f(probe, "servfail")
		printf " p50_us=%s p99_us=%s max_us=%s probe_lag_ms=%s", f(probe, "p50_us"), f(probe, "p99_us"), f(probe, "max_us"), f(probe, "send_lag_max_ms")
		printf " asked4=%s open4=%s asked4_est_kib=%d table_freed_kib=%d", asked, open, asked * 180 / 1024, setmem / 1024
		printf " conntrack=%d conntrack_drop=%d conntrack_early_drop=%d conntrack_mem_kib=%d wall_s=%.1f load1=%s", \
			ct, cd, ce, ctmem / 1024, w, load
		printf " machine_idle=%.2f machine_softirq=%.2f\n", (jt > 0 ? ji / jt : 0), (jt > 0 ? js / jt : 0)
	}')")
	echo "${ROWS[-1]}"
	run_lab_down
}

echo "Flood benchmark: $(nproc) CPUs shared by the flood, choreod, the honest client and"
echo "everything else on this machine (uptime:$(uptime | sed 's/.*up/ up/'))"
echo "choreod: gwlab.sh's configuration (ttl 5, max_open 16, pool $GW_POOL4)${dns_lines[*]:+; [dns] ${dns_lines[*]}}${svc_lines[*]:+; [service www] ${svc_lines[*]}}"
echo "honest client: $HSRC addresses of $HONEST_NET, $HRATE q/s in all, ${SECS} s per run"
echo "flood: from $FLOOD_NET, rates: $RATES; source addresses: $SOURCES"
echo
i=0
if [ "$BASELINE" = 1 ]; then
	run 0 - 0
fi
for r in $RATES; do
	for s in $SOURCES; do
		i=$((i + 1))
		run "$i" "$r" "$s"
	done
done

echo
echo "uptime after:$(uptime | sed 's/.*up/ up/')"
printf '%-9s %-8s %7s %9s %9s %6s %5s %9s %9s %7s %8s %6s %7s %7s %8s %8s %8s %8s\n' \
	flood_qps sources gen_cpu achieved arrived ch_cpu idle answers to_flood us/ans \
	honest lost p50_us p99_us max_us asked4 servfail conntr
for row in "${ROWS[@]}"; do
	awk -v r="$row" 'BEGIN {
		n = split(r, a, " ")
		for (i = 1; i <= n; i++) { k = substr(a[i], 1, index(a[i], "=") - 1); v[k] = substr(a[i], index(a[i], "=") + 1) }
		printf "%-9s %-8s %7s %9s %9s %6s %5s %9s %9s %7s %8s %6s %7s %7s %8s %8s %8s %8s\n",
			(v["flood_rate"] == "-" ? "none" : v["flood_rate"]), v["flood_sources"], v["gen_cpu"],
			v["gen_achieved"], v["arrived_qps"], v["choreod_cpu"], v["machine_idle"], v["answers_qps"], v["to_flood_qps"],
			v["cpu_per_answer_us"], v["honest_rate"], v["honest_lost"], v["p50_us"], v["p99_us"],
			v["max_us"], v["asked4"], v["servfail"], v["conntrack"] }'
done
echo
echo "ch_cpu: choreod's CPU (1.00 = one core); idle: the machine's idle share."
echo "honest: the share of the honest client's queries answered with an address"
echo "within 1 s; lost: no reply within 1 s. asked4: gw's asker . address elements when"
echo "the flood stopped (asked4_est_kib in the run line: x 180 B, bench-gateway.sh's"
echo "measured cost of such an element; table_freed_kib: the kmalloc + vmalloc that"
echo "removing the table freed, machine-wide and approximate); servfail: choreod's"
echo "SERVFAIL answers (set_full: commits refused by a full set); conntr: gw's"
echo "conntrack entries (conntrack_drop: packets it dropped when full)."
[ "$FAILED" = 0 ]
