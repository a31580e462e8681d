#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Failover under load, in the lab of distlab.sh with a controller
# (DL_CONTROLLER=1) and net A on a LAN that reaches both gateways
# (distlab_neta_lan). Clients connect continuously all along
# ($LAB_TMP/failload.py run: bound clients of net A reconnecting to the
# address they were given, fresh askers of net A asking dns1 and dns2
# directly and through Unbound, fresh askers of net B through Unbound; a
# sampler reading both gateways' open sets with nft -j),
# and every event is logged with what the client got: server, honeypot
# (a misroute) or none (no connection).
#
#   1  the lab: 5 choreod joined; after the controller's start-up hold each
#      DNS node holds its own block and half of max_open
#   2  20 clients of net A ask Unbound and connect through gw1: bound there,
#      and the controller relays each binding to gw2
#   3  baseline under load: every client reaches the server
#   4  gw1's forwarding stops entirely (its links down, forwarding off): until
#      the operator's routing moves net A, its clients get no connection
#      (none), never the honeypot; the DNS nodes exclude gw1
#   5  net A's routes moved to gw2 (cliA, the gateways and the core hosts):
#      the clients bound through gw1 reach the server through gw2 (their
#      bindings were relayed; most at addresses no window held meanwhile),
#      fresh askers of net A get through gw2
#   6  dns1 restarted (SIGKILL, started again) under load: it counts the
#      windows of its earlier run (from gw2's WINDOWS frame), and no sample
#      of a gateway's open set ever holds more than a node's share in its
#      block, nor more than max_open in all
#   7  the controller restarted (SIGKILL, 3 s, started again) under load:
#      bound clients keep reaching the server, every node joins again with
#      the blocks and shares it had; over the whole run every answer of a
#      node is in its own block (no address handed out by both nodes), and
#      0 valid clients reached the honeypot
#   8  gw1 back, net A's routes back to gw1: it rejoins; the clients bound
#      through gw1 still reach the server; bindings learned through gw1 are
#      relayed to gw2 again; clients of net A first bound through gw2 while
#      gw1 was cut off (the controller up, before its restart) are in gw1's
#      table once it rejoined, and reach the server through gw1 with no
#      window open there
#   9  keepalived (if installed) on both gateways moves net A's virtual
#      address and the core's together (one sync group, nopreempt); net A
#      and the core route through them; fresh clients bound through gw1;
#      gw1's links down: the addresses move to gw2 and the bound clients
#      reach the server through it; gw1 back: the addresses stay on gw2 and
#      nobody reaches the honeypot
#
# FAILOVER_MUTATE shows the checks can fail: "norelay" (the controller is
# down while the 20 clients are bound: 2, 5 and the whole run fail),
# "noroute" (net A's routes stay on gw1: 5 fails), "nofail" (gw1 keeps
# forwarding: 4 fails), "noctl" (the controller is not started again: 7
# and 8 fail), "ctlstays" (the controller is not restarted: a contrast for
# 8), "noka2" (no keepalived on gw2: 9 fails), "preempt" (gw1 takes the
# addresses back as soon as its links are up, before it is resynchronised:
# 9 fails). TAP output; exits non-zero if anything failed. LAB_KEEP=1 keeps
# the temp dir. About 2.5 min (145 s), so in make test-long.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
DL_CONTROLLER=1
DL_GATEWAY_DOWN=exclude
DL_GATEWAY_DEADLINE=${DL_GATEWAY_DEADLINE:-500}
DL_COMMIT_TIMEOUT=${DL_COMMIT_TIMEOUT:-1000}
DL_WINDOW=${DL_WINDOW:-5}
DL_GRACE=${DL_GRACE:-1}
MUTATE=${FAILOVER_MUTATE:-}
. "$here/distlab.sh"

distlab_init fo
distlab_up
distlab_neta_lan
distlab_confs
dl_neta_via gw1 || lab_die "net A's routes onto the LAN failed"
lab_log "lab up in $SECONDS s"
T0=$SECONDS
LOAD=$LAB_TMP/load.log
STOP=$LAB_TMP/load.stop
BOUND=$LAB_TMP/bound.txt
FL=$LAB_TMP/failload.py
export GWLAB_DIR
cat >"$FL" <<'PYEOF'
#!/usr/bin/env python3
"""failload: continuous clients (written by tests/lab/long_failover.sh).

  prime   N clients of one network ask the resolver and connect at once (each
          is then bound at the gateway it went through); prints "SRC DST HOST"
  run     until --duration or the --stop file: threads that each log one
          line per event to --out ("TIME KIND SRC NODE RCODE DST HOST"):
            bound  the clients of --bound (lines "SRC DST ..."), reconnecting
                   in turn to the address they were given, never asking again
            new1   fresh clients of net A asking dns1 directly, connecting at once
            new2   the same, asking dns2
            newr   fresh clients of net A asking the resolver (the asker is the
                   resolver: what lets them in on another gateway is the relay)
            newb   fresh clients of net B asking the resolver, connecting at once
          and a sampler: every --sample s, each gateway's open set through
          `nft -j` ("TIME open GW TOTAL IN_BLOCK1 IN_BLOCK2 ELEMS")
  connect each "SRC DST" of --file once; prints "SRC DST HOST"

Every loop is bounded in count and time. HOST is server, honeypot, none
(no answer: timeout, refused, unreachable) or other.
"""
import argparse
import ctypes
import ipaddress
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.environ["GWLAB_DIR"])
import gwtool as g  # noqa: E402

LIBC = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000
LOCK = threading.Lock()
MAX_EVENTS = 200000


def enter(ns):
    """setns(2) for the calling thread only."""
    fd = os.open("/run/netns/" + ns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if LIBC.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "setns " + ns + ": " + os.strerror(e))
    finally:
        os.close(fd)


class Log:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1)
        self.n = 0

    def put(self, t0, *fields):
        """One event, stamped with the time it started (t0, time.time())."""
        with LOCK:
            if self.n < MAX_EVENTS:
                self.f.write(f"{t0:.3f} " + " ".join(str(x) for x in fields) + "\n")
                self.n += 1


def done(a, t_end):
    return time.monotonic() >= t_end or os.path.exists(a.stop)


def bound_loop(a, log, t_end):
    enter(a.ns_a)
    ports = (80, 22)
    k = 0
    while not done(a, t_end):
        try:
            with open(a.bound) as f:
                pairs = [ln.split()[:2] for ln in f if len(ln.split()) >= 2]
        except OSError:
            pairs = []
        if not pairs:
            time.sleep(0.2)
            continue
        for src, dst in pairs[:1000]:
            if done(a, t_end):
                break
            t0 = time.time()
            host = g.connect(src, dst, ports[k % 2], a.timeout)
            log.put(t0, "bound", src, "-", "-", dst, host)
            k += 1
            time.sleep(a.pause)


def new_loop(a, log, t_end, kind, ns, base, server, rd, limit):
    enter(ns)
    base = ipaddress.ip_address(base)
    for i in range(limit):
        if done(a, t_end):
            break
        src = str(base + i)
        t0 = time.time()
        rcode, got, _ = g.ask(server, src, a.name, "A", rd, a.timeout, 1)
        if rcode != "NOERROR" or not got:
            log.put(t0, kind, src, server, rcode, "-", "-")
            time.sleep(a.pause)
            continue
        host = g.connect(src, got[0], (22, 25, 80)[i % 3], a.timeout)
        log.put(t0, kind, src, server, rcode, got[0], host)
        time.sleep(a.pause)


def sampler(a, log, t_end):
    blocks = [ipaddress.ip_network(b) for b in a.blocks.split(",")]
    gws = [x.split("=", 1) for x in a.gateways.split(",")]
    while not done(a, t_end):
        for name, spec in gws:
            ns, table = spec.split(":", 1)
            t0 = time.time()
            try:
                out = subprocess.run(["ip", "netns", "exec", ns, "nft", "-j", "list", "set",
                                      "inet", table, a.set], capture_output=True, timeout=5,
                                     check=False).stdout
                elems = []
                for obj in json.loads(out or b"{}").get("nftables", []):
                    for e in obj.get("set", {}).get("elem", []) or []:
                        v = e["elem"]["val"] if isinstance(e, dict) and "elem" in e else e
                        elems.append(str(v))
            except (OSError, ValueError, subprocess.SubprocessError):
                log.put(t0, "open", name, -1, -1, -1, "-")
                continue
            per = [sum(1 for x in elems if ipaddress.ip_address(x) in b) for b in blocks]
            log.put(t0, "open", name, len(elems), *per, ",".join(elems) or "-")
        time.sleep(a.sample)


def cmd_run(a):
    log = Log(a.out)
    t_end = time.monotonic() + a.duration
    th = [threading.Thread(target=bound_loop, args=(a, log, t_end)),
          threading.Thread(target=new_loop, args=(a, log, t_end, "new1", a.ns_a, a.new1_base,
                                                  a.dns1, False, a.limit)),
          threading.Thread(target=new_loop, args=(a, log, t_end, "new2", a.ns_a, a.new2_base,
                                                  a.dns2, False, a.limit)),
          threading.Thread(target=new_loop, args=(a, log, t_end, "newr", a.ns_a, a.newr_base,
                                                  a.resolver, True, a.limit)),
          threading.Thread(target=new_loop, args=(a, log, t_end, "newb", a.ns_b, a.newb_base,
                                                  a.resolver, True, a.limit)),
          threading.Thread(target=sampler, args=(a, log, t_end))]
    for t in th:
        t.daemon = True
        t.start()
    for t in th:
        t.join(max(0.0, t_end - time.monotonic()) + 10)
    print(f"events {log.n}")
    return 0


def cmd_prime(a):
    enter(a.ns)
    base = ipaddress.ip_address(a.src)
    for i in range(a.count):
        src = str(base + i)
        rcode, got, _ = g.ask(a.resolver, src, a.name, "A", True, 2.0, 2)
        if rcode != "NOERROR" or not got:
            print(f"{src} - dns:{rcode}")
            continue
        print(f"{src} {got[0]} {g.connect(src, got[0], 80, a.timeout)}")
    return 0


def cmd_connect(a):
    enter(a.ns)
    with open(a.file) as f:
        pairs = [ln.split()[:2] for ln in f if len(ln.split()) >= 2]
    for src, dst in pairs[:2000]:
        print(f"{src} {dst} {g.connect(src, dst, 80, a.timeout)}")
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("run")
    p.add_argument("--out", required=True)
    p.add_argument("--stop", required=True)
    p.add_argument("--duration", type=float, default=120)
    p.add_argument("--bound", required=True)
    p.add_argument("--ns-a", required=True)
    p.add_argument("--ns-b", required=True)
    p.add_argument("--dns1", required=True)
    p.add_argument("--dns2", required=True)
    p.add_argument("--resolver", required=True)
    p.add_argument("--name", default="www.example.test")
    p.add_argument("--new1-base", required=True)
    p.add_argument("--new2-base", required=True)
    p.add_argument("--newr-base", required=True)
    p.add_argument("--newb-base", required=True)
    p.add_argument("--limit", type=int, default=5000)
    p.add_argument("--pause", type=float, default=0.05)
    p.add_argument("--timeout", type=float, default=1.5)
    p.add_argument("--gateways", required=True, help="gw1=NS:TABLE,gw2=NS:TABLE")
    p.add_argument("--set", default="www_open4")
    p.add_argument("--blocks", required=True, help="BLOCK1,BLOCK2")
    p.add_argument("--sample", type=float, default=0.25)
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("prime")
    p.add_argument("--ns", required=True)
    p.add_argument("--resolver", required=True)
    p.add_argument("--name", default="www.example.test")
    p.add_argument("--src", required=True)
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--timeout", type=float, default=3.0)
    p.set_defaults(fn=cmd_prime)
    p = sub.add_parser("connect")
    p.add_argument("--ns", required=True)
    p.add_argument("--file", required=True)
    p.add_argument("--timeout", type=float, default=3.0)
    p.set_defaults(fn=cmd_connect)
    a = ap.parse_args()
    return a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
PYEOF

ctl_node() { dl_ctl ctl status 2>/dev/null | awk -v n="$1" '$1 == "node" && $2 == n'; }
joined() { [ "$(ctl_node "$1" | awk '{ print $5 }')" = joined ]; }
all_joined() { joined gw1 && joined gw2 && joined dns1 && joined dns2; }
live() { [ "$(dl_field "$1" gateways live)" = "$2" ]; }
# dns_slice NODE: "BLOCK SHARE" of service www, from the controller
dns_slice() { ctl_node "$1" | awk '{ for (i = 1; i < NF; i++) { if ($i == "www" && $(i + 1) == "block") b = $(i + 2); if ($i == "share" && $(i - 2) == "block") s = $(i + 1) } } END { print b, s }'; }
assigned() {
	local a b
	read -r a _ <<<"$(dns_slice dns1)"
	read -r b _ <<<"$(dns_slice dns2)"
	[ "${a:--1}" -ge 0 ] && [ "${b:--1}" -ge 0 ] && [ "$(dl_field dns1 controller assigns)" != 0 ] &&
		[ "$(dl_field dns2 controller assigns)" != 0 ]
}
now() { date +%s.%N; }
# events KIND_RE T_FROM T_TO: the load's events of those kinds in [from, to)
events() { awk -v k="$1" -v a="$2" -v b="$3" '$2 ~ k && $1 >= a && $1 < b' "$LOAD"; }
# tally: "n N server S honeypot H none X other O dnsfail D" of events on stdin
tally() {
	awk '{ n++; if ($7 == "-") d++; else h[$7]++ }
		END { printf "n %d server %d honeypot %d none %d other %d dnsfail %d\n",
			n, h["server"], h["honeypot"], h["none"], h["other"], d }'
}
phase() { events "$1" "$2" "$3" | tally; }
# gw2_has_bound SRC ADDR: the binding is in gw2's table (grep reads it all)
gw2_has_bound() { dl_set_elems gw2 www_bound4 | grep -c "^$1 \. $2\$" >/dev/null; }
# relay_only GW FROM TO: the bound clients that reached the server in
# [FROM, TO) at an address never seen in GW's open set from 7 s before FROM
# to TO (a window cannot have let them in: the relayed binding did)
relay_only() {
	awk -v g="$1" -v a="$2" -v b="$3" '
		$2 == "open" && $3 == g && $1 >= a - 7 && $1 < b { n = split($7, e, ","); for (i = 1; i <= n; i++) seen[e[i]] = 1 }
		$2 == "bound" && $7 == "server" && $1 >= a && $1 < b { hit[$3] = $6 }
		END { for (c in hit) if (!(hit[c] in seen)) k++; print k + 0 }' "$LOAD"
}
# later T S: T + S seconds
later() { awk -v t="$1" -v s="$2" 'BEGIN { printf "%.3f", t + s }'; }

# ---- 1: the lab -------------------------------------------------------------------------------

if ! distlab_start_all || ! poll_until 10 all_joined; then
	dl_ctl ctl status 2>&1 | tap_diag
	tap_not_ok "1: the five choreod start, link and join"
	tap_done
	exit 1
fi
DRAIN_S=$((DL_WINDOW + DL_GRACE + 41))
start=$SECONDS
poll_until $((DRAIN_S + 15)) assigned
read -r b1 s1 <<<"$(dns_slice dns1)"
read -r b2 s2 <<<"$(dns_slice dns2)"
# block b of 1 bit of 203.0.113.0/25
block_of() { case "$1" in 0) echo 203.0.113.0/26 ;; 1) echo 203.0.113.64/26 ;; *) echo none ;; esac; }
B1=$(block_of "${b1:-x}") B2=$(block_of "${b2:-x}")
tap_diag "1: after $((SECONDS - start)) s: dns1 block $B1 share $s1, dns2 block $B2 share $s2"
[ "$B1" != none ] && [ "$B2" != none ] && [ "$B1" != "$B2" ] && [ $((s1 + s2)) = "$DL_MAX_OPEN" ]
tap_check $? "1: 5 choreod joined; after the start-up hold dns1 holds $B1 (share $s1), dns2 $B2 (share $s2)"

# ---- 2: clients bound through gw1, relayed to gw2 ---------------------------------------------

if [ "$MUTATE" = norelay ]; then
	tap_diag "FAILOVER_MUTATE=norelay: the controller is down while the 20 clients are bound"
	kill -KILL "${DL_PID[ctl]}"; wait "${DL_PID[ctl]}" 2>/dev/null; DL_PID[ctl]=""
fi
timeout 120 "$GW_PY" "$FL" prime --ns "$CLIA" --resolver "$DL_RES4" --src 198.18.20.1 --count 20 >"$BOUND"
n_server=$(awk '$3 == "server"' "$BOUND" | wc -l)
all_relayed() { local s d; while read -r s d _; do gw2_has_bound "$s" "$d" || return 1; done <"$BOUND"; }
poll_until 5 all_relayed
n_relayed=0
while read -r s d _; do gw2_has_bound "$s" "$d" && n_relayed=$((n_relayed + 1)); done <"$BOUND"
if [ "$MUTATE" = norelay ]; then
	dl_start ctl || tap_diag "the controller did not start again"
	poll_until 40 all_joined || tap_diag "not all joined again"
fi
# (their windows closed before the load: what lets them in later is their binding)
sleep $((DL_WINDOW + DL_GRACE + 1))
[ "$n_server" = 20 ] && [ "$n_relayed" = 20 ]
tap_check $? "2: 20 clients of net A ask Unbound and connect through gw1 ($n_server reach the server); their bindings are in gw2's table: $n_relayed of 20"

# ---- the load: the run, its moments noted; checks 3 to 8 read its log after ------------------

rm -f "$STOP"
hp0_1=$(dl_gw_pool_field gw1 "$DL_POOL4" to_honeypot)
hp0_2=$(dl_gw_pool_field gw2 "$DL_POOL4" to_honeypot)
timeout 300 "$GW_PY" "$FL" run --out "$LOAD" --stop "$STOP" --duration 240 --bound "$BOUND" \
	--ns-a "$CLIA" --ns-b "$CLIB" --dns1 "${DL_ADDR4[dns1]}" --dns2 "${DL_ADDR4[dns2]}" \
	--resolver "$DL_RES4" --new1-base 198.18.100.1 --new2-base 198.18.140.1 \
	--newr-base 198.18.180.1 --newb-base 198.19.100.1 --blocks "$B1,$B2" --timeout 1 \
	--gateways "gw1=$GW1:${DL_TABLE[gw1]},gw2=$GW2:${DL_TABLE[gw2]}" \
	>"$LAB_TMP/load.out" 2>"$LAB_TMP/load.err" &
LOAD_PID=$!
LAB_PIDS+=("$LOAD_PID")

# baseline
tA=$(now)
sleep 6
# gw1 fails; the operator's routing moves net A after 4 s
tF=$(now)
if [ "$MUTATE" = nofail ]; then
	tap_diag "FAILOVER_MUTATE=nofail: gw1 keeps forwarding"
else
	dl_gw_fail gw1 || tap_diag "gw1's links down failed"
fi
sleep 4
live4_1=$(dl_field dns1 gateways live) live4_2=$(dl_field dns2 gateways live)
tM=$(now)
if [ "$MUTATE" = noroute ]; then
	tap_diag "FAILOVER_MUTATE=noroute: net A's routes stay on gw1"
else
	dl_neta_via gw2 || tap_diag "moving net A's routes to gw2 failed"
fi
route5=$(ip -n "$CLIA" route get 203.0.113.1 | head -n 1)
sleep 1   # (connections under way when the routes moved)
tC=$(now)
sleep 7
# dns1 restarted (a crash: SIGKILL)
tD=$(now)
kill -KILL "${DL_PID[dns1]}"; wait "${DL_PID[dns1]}" 2>/dev/null; DL_PID[dns1]=""
tR=$(now)
dl_start dns1 || tap_diag "dns1 did not start again"
counted() { [ "$(dl_field dns1 gateways windows_counted)" -ge 1 ] 2>/dev/null; }
poll_until 3 counted
wc1=$(dl_field dns1 gateways windows_counted)
wo1=$(dl_field dns1 gateways windows_others)
slice6=$(dns_slice dns1)
sleep $((DL_WINDOW + DL_GRACE + 3))
# the controller restarted (SIGKILL, 3 s away)
tK=$(now)
if [ "$MUTATE" = ctlstays ]; then
	tap_diag "FAILOVER_MUTATE=ctlstays: the controller is not restarted"
else
	kill -KILL "${DL_PID[ctl]}"; wait "${DL_PID[ctl]}" 2>/dev/null; DL_PID[ctl]=""
fi
sleep 3
if [ "$MUTATE" = noctl ] || [ "$MUTATE" = ctlstays ]; then
	tap_diag "FAILOVER_MUTATE=noctl: the controller is not started again"
else
	dl_start ctl || tap_diag "the controller did not start again"
fi
back() { joined gw2 && joined dns1 && joined dns2; }
poll_until 40 back
ok_join=$?
join_s=$(awk -v t="$tK" -v n="$(now)" 'BEGIN { printf "%.1f", n - t }')
sleep 3
tG=$(now)
read -r nb1 ns1 <<<"$(dns_slice dns1)"
read -r nb2 ns2 <<<"$(dns_slice dns2)"
slices7=$(dl_ctl ctl status | grep '^slices')
# gw1 back; net A's routes back to gw1 once it is live again
dl_gw_back gw1 || tap_diag "gw1 back failed"
poll_until 40 eval 'joined gw1 && live dns1 2 && live dns2 2'
ok_back=$?
# clients first bound through gw2 while gw1 was cut off: fresh askers of
# net A through Unbound (only a relayed binding lets them in elsewhere once
# their window closed) that reached the server, while the controller was up
# (before its restart) and while it was away; are their bindings in gw1's
# table now that it rejoined (before any of them comes through it)?
sleep 1
events newr "$tC" "$(later "$tK" -2)" | sort -n | awk '$7 == "server" { print $3, $6 }' | tail -n 20 >"$LAB_TMP/via-gw2.txt"
events newr "$(later "$tK" 0.5)" "$(later "$tK" 3)" | sort -n | awk '$7 == "server" { print $3, $6 }' |
	tail -n 10 >"$LAB_TMP/via-gw2-noctl.txt"
dl_set_elems gw1 www_bound4 >"$LAB_TMP/gw1-bound.txt"
in_gw1() { local s d k=0; while read -r s d; do grep -c "^$s \. $d\$" "$LAB_TMP/gw1-bound.txt" >/dev/null && k=$((k + 1)); done <"$1"; echo "$k"; }
vg_in=$(in_gw1 "$LAB_TMP/via-gw2.txt")
vn_in=$(in_gw1 "$LAB_TMP/via-gw2-noctl.txt")
dl_neta_via gw1 || tap_diag "moving net A's routes back failed"
route8=$(ip -n "$CLIA" route get 203.0.113.1 | head -n 1)
srv8=$(dl_gw_pool_field gw1 "$DL_POOL4" to_server)
sleep 1
tH=$(now)
sleep 6
tI=$(now)
srv8b=$(dl_gw_pool_field gw1 "$DL_POOL4" to_server)
touch "$STOP"
wait "$LOAD_PID" 2>/dev/null
hp1=$(($(dl_gw_pool_field gw1 "$DL_POOL4" to_honeypot) - hp0_1))
hp2=$(($(dl_gw_pool_field gw2 "$DL_POOL4" to_honeypot) - hp0_2))
tap_diag "the load: $(cat "$LAB_TMP/load.out"); $(sort -u "$LAB_TMP/load.err" | head -n 3)"

# ---- 3: baseline ------------------------------------------------------------------------------

r=$(phase 'bound|new1|new2|newr|newb' "$tA" "$tF")
tap_diag "3: baseline: bound: $(phase bound "$tA" "$tF"); new1: $(phase new1 "$tA" "$tF"); new2: $(phase new2 "$tA" "$tF"); newb: $(phase newb "$tA" "$tF")"
[ "$(field n <<<"$r")" -ge 50 ] && [ "$(field server <<<"$r")" = "$(field n <<<"$r")" ]
tap_check $? "3: baseline under load: $(field server <<<"$r") of $(field n <<<"$r") client events reach the server"

# ---- 4: gw1 fails -----------------------------------------------------------------------------

# (events that started 0.3 s after the failure: none was under way)
rA=$(phase 'bound|new1|new2|newr' "$(later "$tF" 0.3)" "$tM")
rB=$(phase newb "$tF" "$tM")
tap_diag "4: gw1 down, net A still routed to it: net A: $rA; net B: $rB; live gateways on dns1 $live4_1, dns2 $live4_2"
[ "$(field honeypot <<<"$rA")" = 0 ] && [ "$(field server <<<"$rA")" = 0 ] && [ "$(field n <<<"$rA")" -ge 3 ] &&
	[ "$(field n <<<"$rB")" -ge 10 ] && [ "$(field server <<<"$rB")" = "$(field n <<<"$rB")" ] &&
	[ "$live4_1" = 1 ] && [ "$live4_2" = 1 ]
tap_check $? "4: gw1's forwarding stopped (links down, 4 s): net A's clients get no connection ($(field none <<<"$rA") none, $(field dnsfail <<<"$rA") DNS timeouts, $(field honeypot <<<"$rA") honeypot, $(field server <<<"$rA") server); net B: $(field server <<<"$rB") of $(field n <<<"$rB") reach the server; both DNS nodes exclude gw1 (live $live4_1, $live4_2)"

# ---- 5: net A's routes moved to gw2 -----------------------------------------------------------

rb=$(phase bound "$tC" "$tD")
rn=$(phase 'new1|new2|newr' "$tC" "$tD")
# every bound client at least once, each time the server
per=$(events bound "$tC" "$tD" | awk '$7 == "server" { ok[$3] = 1 } END { print length(ok) }')
ro=$(relay_only gw2 "$tC" "$tD")
tap_diag "5: net A via gw2 ($route5): bound: $rb ($per of 20 clients, $ro at addresses never open on gw2 meanwhile); new askers of net A: $rn"
[ "$(field n <<<"$rb")" -ge 20 ] && [ "$(field server <<<"$rb")" = "$(field n <<<"$rb")" ] && [ "$per" = 20 ] && [ "$ro" -ge 3 ] &&
	[ "$(field n <<<"$rn")" -ge 10 ] && [ "$(field server <<<"$rn")" = "$(field n <<<"$rn")" ]
tap_check $? "5: net A moved to gw2: the 20 clients bound through gw1 reach the server through gw2 ($(field server <<<"$rb") of $(field n <<<"$rb") connections, $per of 20 clients, $ro of them at addresses no window held; $(field honeypot <<<"$rb") honeypot, $(field none <<<"$rb") none); fresh askers of net A: $(field server <<<"$rn") of $(field n <<<"$rn") reach the server"

# ---- 6: dns1 restarted -------------------------------------------------------------------------

r1=$(phase new1 "$tR" "$tK")
first=$(events new1 "$tR" "$tK" | sort -n | awk -v t="$tR" '$5 == "NOERROR" { printf "%.2f", $1 - t; exit }')
# the open sets: the most seen in each block and in all, per gateway, from
# before the restart until the windows of the earlier run expired
over=$(events open "$tD" "$tK" | awk -v s1="$s1" -v s2="$s2" -v m="$DL_MAX_OPEN" '
	$4 >= 0 { n++; if ($4 > t[$3]) t[$3] = $4; if ($5 > a[$3]) a[$3] = $5; if ($6 > b[$3]) b[$3] = $6
		if ($5 > s1 || $6 > s2 || $4 > m) bad++ }
	END { printf "samples %d over %d gw1 %d/%d/%d gw2 %d/%d/%d\n", n, bad, a["gw1"], b["gw1"], t["gw1"], a["gw2"], b["gw2"], t["gw2"] }')
span=$(events open "$tD" "$tK" | awk -v s1="$s1" -v s2="$s2" -v m="$DL_MAX_OPEN" -v t="$tR" '
	$4 >= 0 && ($5 > s1 || $6 > s2 || $4 > m) { if (!f || $1 < f) f = $1; if ($1 > l) l = $1 }
	END { if (f) printf "from %.1f s to %.1f s after the restart", f - t, l - t; else print "never" }')
tap_diag "6: dns1 restarted: windows_counted ${wc1:-?} windows_others ${wo1:-?}; its slice (block share) from the controller: $slice6; first NOERROR after ${first:-never} s; its askers: $r1"
tap_diag "6: open sets (most in dns1's block / dns2's block / all): $over; over the shares: $span"
events open "$tD" "$tK" | sort -n | awk -v s1="$s1" -v s2="$s2" '$5 > s1 || $6 > s2' | head -n 2 | tap_diag
[ "$(field samples <<<"$over")" -ge 20 ] && [ "$(field over <<<"$over")" = 0 ] &&
	[ "$(field honeypot <<<"$r1")" = 0 ]
tap_check $? "6: dns1 restarted (SIGKILL) under load: in $(field samples <<<"$over") samples of the open sets no block held more than its node's share ($s1, $s2) nor the set more than max_open $DL_MAX_OPEN (samples over: $(field over <<<"$over"), $span); it counted ${wc1:-?} windows of its earlier run; answering again after ${first:-never} s"

# ---- 7: the controller restarted --------------------------------------------------------------

rb=$(phase bound "$tK" "$tG")
rn=$(phase 'new1|new2|newr|newb' "$tK" "$tG")
tap_diag "7: controller restarted: bound: $rb; new askers: $rn; $slices7"
[ "$ok_join" = 0 ] && [ "$(field n <<<"$rb")" -ge 20 ] && [ "$(field server <<<"$rb")" = "$(field n <<<"$rb")" ] &&
	[ "$(field honeypot <<<"$rn")" = 0 ] && [ "$nb1" = "$b1" ] && [ "$nb2" = "$b2" ] &&
	[ "$ns1" = "$s1" ] && [ "$ns2" = "$s2" ]
tap_check $? "7: the controller killed and started again under load: bound clients $(field server <<<"$rb") of $(field n <<<"$rb") reach the server; gw2, dns1, dns2 joined again ($join_s s after the kill) with the same blocks and shares ($nb1/$ns1, $nb2/$ns2); new askers: $(field server <<<"$rn") of $(field n <<<"$rn") reach the server, $(field honeypot <<<"$rn") the honeypot"

# ---- 8: gw1 back, net A's routes back ---------------------------------------------------------

rb=$(phase bound "$tH" "$tI")
rn=$(phase 'new1|new2|newr' "$tH" "$tI")
# fresh askers through gw1 now: relayed to gw2 (the last 10 that started
# 1.5 s before the end or earlier)
events 'new1|new2|newr' "$tH" "$(later "$tI" -1.5)" | sort -n | awk '$7 == "server" { print $3, $6 }' |
	tail -n 10 >"$LAB_TMP/new-gw1.txt"
rel=0
while read -r s d; do gw2_has_bound "$s" "$d" && rel=$((rel + 1)); done <"$LAB_TMP/new-gw1.txt"
n_new=$(grep -c . "$LAB_TMP/new-gw1.txt")
# and now through gw1, once no window is open there (the load has stopped):
# only a binding lets them in
open_empty() { [ -z "$(dl_set_elems gw1 www_open4)" ]; }
poll_until $((DL_WINDOW + DL_GRACE + 3)) open_empty || tap_diag "8: windows still open on gw1"
vg=$(timeout 120 "$GW_PY" "$FL" connect --ns "$CLIA" --file "$LAB_TMP/via-gw2.txt")
vn=$(timeout 120 "$GW_PY" "$FL" connect --ns "$CLIA" --file "$LAB_TMP/via-gw2-noctl.txt")
n_vg=$(grep -c . "$LAB_TMP/via-gw2.txt")
vg_server=$(grep -c ' server$' <<<"$vg")
tap_diag "8: gw1 back (rejoined and live: $ok_back; $route8): gw1 to_server $srv8 -> $srv8b; bound: $rb; new: $rn"
tap_diag "8: $(dl_ctl ctl status | grep '^relay' | cut -c1-200)"
tap_diag "8: clients bound through gw2 while the controller was away (a known limit): $vn_in of $(grep -c . "$LAB_TMP/via-gw2-noctl.txt") in gw1's table after it rejoined; through gw1: $(awk '{ print $3 }' <<<"$vn" | sort | uniq -c | tr '\n' ' ')"
grep -v ' server$' <<<"$vg" | head -n 3 | tap_diag
[ "$ok_back" = 0 ] && [ "$(field server <<<"$rb")" = "$(field n <<<"$rb")" ] && [ "$(field n <<<"$rb")" -ge 20 ] &&
	[ "$n_new" -ge 5 ] && [ "$rel" = "$n_new" ] && [ "${srv8b:-0}" -gt "${srv8:-0}" ]
tap_check $? "8: gw1 back, net A routed to it again: it rejoined; the 20 bound clients reach the server through it ($(field server <<<"$rb") of $(field n <<<"$rb")); $rel of $n_new fresh bindings through gw1 relayed to gw2 (relaying resumed after the controller's restart)"
[ "$n_vg" -ge 5 ] && [ "$vg_in" = "$n_vg" ] && [ "$vg_server" = "$n_vg" ]
tap_check $? "8: $n_vg clients of net A (asking Unbound) first bound through gw2 while gw1 was cut off and the controller up (before its restart): $vg_in of their bindings in gw1's table once it rejoined; with no window open, $vg_server reach the server through gw1 ($(grep -c ' honeypot$' <<<"$vg") the honeypot)"

# ---- the whole run ----------------------------------------------------------------------------

all=$(events 'bound|new1|new2|newr|newb' 0 9e12 | tally)
# answers of each node in its own block
cross=$("$GW_PY" - "$LOAD" "${DL_ADDR4[dns1]}=$B1" "${DL_ADDR4[dns2]}=$B2" <<'EOF'
import ipaddress, sys
blk = {k: ipaddress.ip_network(v) for k, v in (x.split("=") for x in sys.argv[2:])}
n = bad = 0
for ln in open(sys.argv[1]):
    f = ln.split()
    if len(f) >= 7 and f[1] in ("new1", "new2") and f[4] == "NOERROR":
        n += 1
        bad += ipaddress.ip_address(f[5]) not in blk[f[3]]
print(f"answers {n} outside {bad}")
EOF
)
tap_diag "whole run: $all; direct answers: $cross; the gateways' to_honeypot counters: +$hp1, +$hp2"
[ "$(field honeypot <<<"$all")" = 0 ] && [ "$(field other <<<"$all")" = 0 ] && [ "$hp1" = 0 ] && [ "$hp2" = 0 ] &&
	[ "$(field answers <<<"$cross")" -ge 100 ] && [ "$(field outside <<<"$cross")" = 0 ]
tap_check $? "the whole run: $(field n <<<"$all") client events, $(field honeypot <<<"$all") misroutes (valid clients at the honeypot; the gateways counted +$hp1, +$hp2), $(field server <<<"$all") reached the server; $(field answers <<<"$cross") answers of dns1 and dns2, $(field outside <<<"$cross") outside the node's own block"

# ---- 9: keepalived moves the virtual addresses between gw1 and gw2 ---------------------------

# (a load run of its own: fresh bound clients, fresh askers)
load2() {
	timeout 200 "$GW_PY" "$FL" run --out "$LOAD" --stop "$STOP" --duration 120 --bound "$BOUND2" \
		--ns-a "$CLIA" --ns-b "$CLIB" --dns1 "${DL_ADDR4[dns1]}" --dns2 "${DL_ADDR4[dns2]}" \
		--resolver "$DL_RES4" --new1-base 198.18.110.1 --new2-base 198.18.150.1 \
		--newr-base 198.18.190.1 --newb-base 198.19.110.1 --blocks "$B1,$B2" --timeout 1 \
		--gateways "gw1=$GW1:${DL_TABLE[gw1]},gw2=$GW2:${DL_TABLE[gw2]}" \
		>"$LAB_TMP/load2.out" 2>"$LAB_TMP/load2.err" &
	LOAD_PID=$!
	LAB_PIDS+=("$LOAD_PID")
}
if ! command -v keepalived >/dev/null; then
	tap_skip "9: keepalived moves net A's virtual address" "keepalived is missing (scripts/install-deps.sh test)"
else
	LOAD=$LAB_TMP/load2.log BOUND2=$LAB_TMP/bound2.txt
	rm -f "$STOP"
	ka_pre=""; [ "$MUTATE" = preempt ] && ka_pre=preempt
	dl_keepalived gw1 150 $ka_pre
	poll_until 10 dl_has_vip gw1
	ok_v1=$?
	if [ "$MUTATE" = noka2 ]; then
		tap_diag "FAILOVER_MUTATE=noka2: no keepalived on gw2"
	else
		dl_keepalived gw2 100 $ka_pre
	fi
	sleep 1
	dl_has_vip gw2 && ok_v1=1
	dl_neta_via vip || ok_v1=1
	timeout 120 "$GW_PY" "$FL" prime --ns "$CLIA" --resolver "$DL_RES4" --src 198.18.21.1 --count 20 >"$BOUND2"
	n_server=$(awk '$3 == "server"' "$BOUND2" | wc -l)
	all_relayed2() { local s d; while read -r s d _; do gw2_has_bound "$s" "$d" || return 1; done <"$BOUND2"; }
	poll_until 5 all_relayed2
	n_rel=0
	while read -r s d _; do gw2_has_bound "$s" "$d" && n_rel=$((n_rel + 1)); done <"$BOUND2"
	sleep $((DL_WINDOW + DL_GRACE + 1))
	[ "$ok_v1" = 0 ] && [ "$n_server" = 20 ] && [ "$n_rel" = 20 ]
	tap_check $? "9: keepalived on gw1 (priority 150) and gw2 (100): gw1 holds net A's virtual address ${DL_LANA_ADDR4[vip]} and the core's $DL_CORE_VIP4; net A routed to them; 20 fresh clients bound through gw1 ($n_server reach the server), $n_rel of 20 bindings relayed to gw2"

	hp0_1=$(dl_gw_pool_field gw1 "$DL_POOL4" to_honeypot)
	hp0_2=$(dl_gw_pool_field gw2 "$DL_POOL4" to_honeypot)
	load2
	tA=$(now)
	sleep 4
	tF=$(now)
	dl_gw_fail gw1 || tap_diag "gw1's links down failed"
	t0=$(date +%s%N)
	poll_until 10 dl_has_vip gw2
	ok_move=$?
	move_ms=$((($(date +%s%N) - t0) / 1000000))
	sleep $((8 - move_ms / 1000))
	tB=$(now)
	dl_gw_back gw1 || tap_diag "gw1 back failed"
	poll_until 40 eval 'joined gw1 && live dns1 2 && live dns2 2'
	ok_back=$?
	back_s=$(awk -v t="$tB" -v n="$(now)" 'BEGIN { printf "%.1f", n - t }')
	sleep 3
	vip_after=none
	dl_has_vip gw1 && vip_after=gw1
	dl_has_vip gw2 && vip_after=gw2${vip_after/#none/}
	sleep 1
	tE=$(now)
	touch "$STOP"
	wait "$LOAD_PID" 2>/dev/null
	hp1=$(($(dl_gw_pool_field gw1 "$DL_POOL4" to_honeypot) - hp0_1))
	hp2=$(($(dl_gw_pool_field gw2 "$DL_POOL4" to_honeypot) - hp0_2))
	tMv=$(later "$tF" "$(awk -v m="$move_ms" 'BEGIN { print m / 1000 + 1 }')")
	r0=$(phase 'bound|new1|new2|newr|newb' "$tA" "$tF")
	rgap=$(phase 'bound|new1|new2|newr' "$tF" "$tMv")
	rb=$(phase bound "$tMv" "$tB")
	rn=$(phase 'new1|new2|newr' "$tMv" "$tB")
	per=$(events bound "$tMv" "$tB" | awk '$7 == "server" { ok[$3] = 1 } END { print length(ok) }')
	ro=$(relay_only gw2 "$tMv" "$tB")
	rback=$(phase 'bound|new1|new2|newr|newb' "$tB" "$tE")
	all2=$(phase 'bound|new1|new2|newr|newb' 0 9e12)
	tap_diag "9: before: $r0; gw1 failed: the addresses on gw2 after $move_ms ms; until 1 s after that: $rgap; then bound: $rb ($per of 20 clients); new: $rn"
	tap_diag "9: gw1 back: rejoined and live in $back_s s ($ok_back), the addresses on: $vip_after; events since: $rback"
	tap_diag "9: whole part: $all2; to_honeypot +$hp1, +$hp2; $(grep -h 'Entering MASTER' "$LAB_TMP"/keepalived-gw*.log | tail -n 2 | tr '\n' ' ')"
	[ "$ok_move" = 0 ] && [ "$(field n <<<"$rb")" -ge 20 ] && [ "$(field server <<<"$rb")" = "$(field n <<<"$rb")" ] &&
		[ "$per" = 20 ] && [ "$ro" -ge 3 ] && [ "$(field n <<<"$rn")" -ge 10 ] && [ "$(field server <<<"$rn")" = "$(field n <<<"$rn")" ] &&
		[ "$(field honeypot <<<"$rgap")" = 0 ]
	tap_check $? "9: gw1's links down: keepalived moved both addresses to gw2 in $move_ms ms; the clients bound through gw1 reach the server through gw2 ($(field server <<<"$rb") of $(field n <<<"$rb") connections, $per of 20 clients, $ro at addresses no window held), fresh askers $(field server <<<"$rn") of $(field n <<<"$rn"); from the failure to 1 s after the move clients got: server $(field server <<<"$rgap"), none $(field none <<<"$rgap"), DNS timeouts $(field dnsfail <<<"$rgap"), honeypot $(field honeypot <<<"$rgap")"
	[ "$ok_back" = 0 ] && [ "$vip_after" = gw2 ] && [ "$(field honeypot <<<"$all2")" = 0 ] && [ "$hp1" = 0 ] && [ "$hp2" = 0 ] &&
		[ "$(field server <<<"$rback")" = "$(field n <<<"$rback")" ]
	tap_check $? "9: gw1 back (nopreempt): the addresses stay on $vip_after; $(field server <<<"$rback") of $(field n <<<"$rback") client events since reach the server; the keepalived part: $(field n <<<"$all2") client events, $(field honeypot <<<"$all2") misroutes (the gateways counted +$hp1, +$hp2)"
fi

alive=0
for n in ctl gw1 gw2 dns1 dns2; do lab_alive "${DL_PID[$n]:-0}" && alive=$((alive + 1)); done
tap_diag "checks took $((SECONDS - T0)) s"
[ "$alive" = 5 ]
tap_check $? "the 5 choreod still run ($alive)"
tap_done
