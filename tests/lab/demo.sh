#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The live demonstration (make demo), in the lab of gwlab.sh: network
# namespaces for the gateway (choreod: DNS + NAT), the protected server, the
# honeypot, a caching resolver (Unbound), clients and a scanner. For about
# DEMO_SECONDS (default 30) a few dozen legitimate clients ask DNS (directly
# or through Unbound), connect to the answered address on a random port of
# 22/25/80/443 and read the banner, while the scanner sweeps the whole pool
# with nmap. Then a short table: where the legitimate clients and the
# scanner landed, how many addresses were open at most, how many bindings.
# Everything is removed at the end, also on failure.
#
# Environment: DEMO_SECONDS, DEMO_DIRECT (clients asking choreod, default
# 24), DEMO_RESOLVED (clients behind Unbound, default 12), CHOREOD,
# CHOREOCTL, LAB_KEEP=1 (keep the temp dir: configs and logs).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/gwlab.sh"

SECS=${DEMO_SECONDS:-30}
NDIRECT=${DEMO_DIRECT:-24}
NRESOLVED=${DEMO_RESOLVED:-12}
MAX_OPEN=16

say() { printf '%s\n' "$*"; }
bar() { say "------------------------------------------------------------------------"; }
fail() {
	say "demo failed: $*"
	[ -n "$GW_CHOREOD_LOG" ] && [ -f "$GW_CHOREOD_LOG" ] && tail -n 20 "$GW_CHOREOD_LOG"
	exit 1
}
command -v nmap >/dev/null || say "(nmap is missing: scripts/install-deps.sh demo; the scanner uses gwtool instead)"

gwlab_init demo
bar
say "choreo demo: a moving target in front of a server"
bar
say "lab: 6 network namespaces joined through the gateway, deleted at the end"
say "  gw    choreod: DNS $GW_DNS4 / $GW_DNS6 + NAT (nftables table $GW_TABLE)"
say "  srv   protected server $GW_SERVER4 / $GW_SERVER6 (ssh, smtp, http, https banners)"
say "  hpot  honeypot $GW_HPOT4 / $GW_HPOT6 (the same services)"
say "  res   Unbound $GW_RES4, caching resolver for the clients behind it"
say "  cli   clients from 198.18.0.0/16;   scan  nmap from $GW_SCAN4"
say "www.example.test rotates through $GW_POOL4 (and $GW_POOL6): ttl 5 s, window 5 s,"
say "max_open $MAX_OPEN, bindings 600 s"
gwlab_up
gwlab_conf "$LAB_TMP/choreo.conf" ttl=5 window=5 max_open=$MAX_OPEN binding=600
"$GW_CHOREOD" -t -c "$LAB_TMP/choreo.conf" >"$LAB_TMP/check.log" 2>&1 ||
	{ cat "$LAB_TMP/check.log"; fail "choreod -t rejected the configuration"; }
gwlab_choreod_start "$LAB_TMP/choreo.conf" || fail "choreod did not start"
bar

# one client, step by step
r=$(gw_ask 198.18.0.77 "$GW_DNS4")
a=${r#NOERROR }
[[ $r == NOERROR\ * ]] || fail "no answer for www.example.test: $r"
say "a client (198.18.0.77) asks www.example.test A         -> $a"
say "  and connects to $a:22 at once                -> $(gw_tool 198.18.0.77 connect --src 198.18.0.77 --dst "$a" --port 22) (its banner says so)"
say "the scanner ($GW_SCAN4) tries 203.0.113.126:22         -> $(gw_connect "$GW_SCAN4" 203.0.113.126 22)"
bar

# the run: clients, the scanner, and the open set sampled every second
say "running for $SECS s: $NDIRECT clients asking choreod, $NRESOLVED behind Unbound, nmap -sT"
say "on ports 22,25,80,443 of the whole pool (128 addresses) from the scanner ..."
(for _ in $(seq 1 $((SECS + 15))); do gw_set_count_fast www_open4; sleep 1; done) \
	>"$LAB_TMP/open.samples" 2>/dev/null &
sampler=$!
LAB_PIDS+=("$sampler")
gw_tool 198.18.50.1 clients --server "$GW_DNS4" --server6 "$GW_DNS6" \
	--resolver "$GW_RES4" --duration "$SECS" --think 1.0 \
	--direct "198.18.50.1+$((NDIRECT * 3 / 4)),2001:db8:18::50:1+$((NDIRECT - NDIRECT * 3 / 4))" \
	--resolved "198.18.60.1+$NRESOLVED" >"$LAB_TMP/clients.json" 2>"$LAB_TMP/clients.err" &
clients=$!
LAB_PIDS+=("$clients")
sleep $((SECS / 3))
t_scan=$(date +%s.%N)
if command -v nmap >/dev/null; then
	ip netns exec "$SCAN" timeout 120 nmap -sT -Pn -n -T4 --max-retries 1 \
		-p 22,25,80,443 -oN "$LAB_TMP/nmap.txt" "$GW_POOL4" >/dev/null 2>&1
else
	for p in 22 25 80 443; do
		gw_tool "$GW_SCAN4" sweep --src "$GW_SCAN4" --prefix "$GW_POOL4" --port "$p" \
			>>"$LAB_TMP/nmap.txt"
	done
fi
t_scan=$(awk -v a="$t_scan" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
for i in $(seq 1 $((SECS + 30))); do
	lab_alive "$clients" || break
	sleep 1
done
wait "$clients" 2>/dev/null
kill "$sampler" 2>/dev/null
wait "$sampler" 2>/dev/null
[ -s "$LAB_TMP/clients.json" ] || { cat "$LAB_TMP/clients.err"; fail "the clients did not report"; }

# ---- the results ---------------------------------------------------------------
read -r d_tot d_srv r_tot r_srv d_fail r_fail < <("$GW_PY" -c '
import json, sys
s = json.load(open(sys.argv[1]))["stats"]
d, r = s["direct"], s["resolver"]
print(d["transactions"], d["server"], r["transactions"], r["server"], d["dnsfail"], r["dnsfail"])
' "$LAB_TMP/clients.json")
sc_hp=$(gw_hits honeypot "$GW_SCAN4")
sc_srv=$(gw_hits server "$GW_SCAN4")
sc_tot=$((sc_hp + sc_srv))
open_max=$(sort -n "$LAB_TMP/open.samples" | tail -n 1)
nsamples=$(grep -c . "$LAB_TMP/open.samples")
bind4=$(gw_ctl status | awk '$1 == "pool" { p = $2 } $1 == "gateway:" && p ~ /\./ { for (i = 1; i < NF; i++) if ($i == "bindings") print $(i + 1) }')
bindings=$(gw_ctl bindings | grep -c '^www ')
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b) printf "%.1f %%", 100 * a / b; else printf "-" }'; }

bar
printf '%-44s %s\n' "legitimate transactions -> server" \
	"$((d_srv + r_srv)) / $((d_tot + r_tot))   ($(pct $((d_srv + r_srv)) $((d_tot + r_tot))))"
printf '%-44s %s\n' "  asking choreod directly" "$d_srv / $d_tot"
printf '%-44s %s\n' "  behind Unbound" "$r_srv / $r_tot"
printf '%-44s %s\n' "scanner connections -> honeypot" \
	"$sc_hp / $sc_tot   ($(pct "$sc_hp" "$sc_tot"), sweep took $t_scan s)"
printf '%-44s %s\n' "addresses open to anyone, at most" \
	"${open_max:-?} of 128   (max_open $MAX_OPEN; $nsamples samples, 1 a second)"
printf '%-44s %s\n' "bindings at the end" "$bindings   (IPv4 ${bind4:-?}, the rest IPv6)"
bar
if [ $((d_fail + r_fail)) -gt 0 ]; then
	say "DNS questions without an answer: $d_fail direct, $r_fail through Unbound"
fi
if [ "$sc_srv" -gt 0 ]; then
	say "The scanner reached the server $sc_srv times: through addresses that a DNS"
	say "answer had just opened to anyone (the window), at most $MAX_OPEN of 128 at a time."
fi
if [ $((d_srv + r_srv)) -ne $((d_tot + r_tot)) ]; then
	say "MISROUTED legitimate transactions (first ones):"
	"$GW_PY" -c 'import json, sys
for m in json.load(open(sys.argv[1]))["misroutes"][:5]: print("  " + m)' "$LAB_TMP/clients.json"
fi
lab_alive "$GW_CHOREOD_PID" || fail "choreod exited during the demo"
say "stopping choreod and removing the lab"
