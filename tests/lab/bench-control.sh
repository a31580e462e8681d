#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# DNS latency while the control socket is abused (run by `make bench`): a
# probe asks choreod (static and rotated names, BENCH_CTL_RATE queries a
# second, each waited for) for BENCH_CTL_SECONDS, first alone, then while
# 8 clients dribble one byte a second into the control socket and
# `choreoctl status` runs in a loop (each status makes the worker count the
# kernel's sets). Prints p50/p99/max of both runs; target p99 < 5 ms.
# Reports; does not fail on the figures.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"

CHOREOD=${CHOREOD:-$root/build/choreod}
CHOREOCTL=${CHOREOCTL:-$root/build/choreoctl}
SECS=${BENCH_CTL_SECONDS:-10}
RATE=${BENCH_CTL_RATE:-500}
SRV4=198.51.100.53
case "$SECS$RATE" in ''|*[!0-9]*) lab_die "BENCH_CTL_SECONDS/RATE must be numbers" ;; esac
[ "$SECS" -ge 1 ] && [ "$SECS" -le 120 ] || lab_die "BENCH_CTL_SECONDS must be 1..120"
[ -x "$CHOREOD" ] && [ -x "$CHOREOCTL" ] || lab_die "build first: make"

lab_init ctlbench
lab_netns CLI cli
lab_netns SRV srv
lab_client_server "$CLI" "$SRV"
lab_addr "$SRV" lo $SRV4/32
cp "$root/tests/data/unit.zone" "$LAB_TMP/example.test.zone"
sock=$LAB_TMP/run/control.sock
cat >"$LAB_TMP/choreo.conf" <<CONF
[daemon]
control = $sock
table = choreo_cb$$
[dns]
listen = $SRV4:53
zone = example.test
zonefile = example.test.zone
rate_limit = 0
[service www]
name = www.example.test
pool = 203.0.113.0/25
server = 192.0.2.10
honeypot = 192.0.2.20
CONF
lab_spawn "$SRV" "$LAB_TMP/choreod.log" "$CHOREOD" -c "$LAB_TMP/choreo.conf"
PID=$LAB_LAST_PID
lab_wait_dns "$CLI" $SRV4 53 10 "$PID" || lab_die "choreod did not start"

echo "control-socket bench: $RATE queries/s for $SECS s, each waited for (one probe, waiting for each answer before the next)"
alone=$(lab_in "$CLI" python3 "$here/ctlstress.py" dns $SRV4 53 "$SECS" "$RATE")
echo "  alone:                               $alone"
for i in $(seq 1 8); do
	python3 "$here/ctlstress.py" dribble "$sock" $((SECS + 2)) >/dev/null 2>&1 &
	LAB_PIDS+=($!)
done
lab_in "$CLI" python3 "$here/ctlstress.py" dns $SRV4 53 "$SECS" "$RATE" >"$LAB_TMP/during" &
probe=$!
LAB_PIDS+=($probe)
n=0
while kill -0 $probe 2>/dev/null; do
	"$CHOREOCTL" -s "$sock" status >/dev/null 2>&1 && n=$((n + 1))
done
wait $probe
echo "  8 dribblers + status loop ($n status): $(cat "$LAB_TMP/during")"
cpu=$(awk '{print $14 + $15}' /proc/$PID/stat)
echo "  choreod CPU over the whole run: $cpu ticks ($(getconf CLK_TCK)/s)"
