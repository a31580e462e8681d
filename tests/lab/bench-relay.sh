#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# make bench-relay: how long a binding that gateway 1's kernel learns takes
# to be in gateway 2's table, through the controller (docs/protocol.md,
# LEARNED), in the lab of distlab.sh with DL_CONTROLLER=1.
#
# RELAY_CLIENTS (default 200) fresh clients of net A, one after the other:
# each asks a DNS node, connects through gw1 at once; tests/lab/relaylag.py
# times the moment `nft monitor` in gw2's namespace shows the element.
# Prints the end-to-end figures (kernel -> NFLOG -> gw1 -> controller ->
# gw2 -> netlink, plus nft monitor's own delivery) and the controller's
# part (LEARNED received -> gw2's ACK). Bounded: the clients take at most
# 3 s each, the whole run at most RELAY_CLIENTS x 3 s + 2 min.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
DL_CONTROLLER=1
. "$here/distlab.sh"

N=${RELAY_CLIENTS:-200}
case "$N" in ''|*[!0-9]*) lab_die "RELAY_CLIENTS must be a number" ;; esac
[ "$N" -ge 10 ] && [ "$N" -le 1000 ] || lab_die "RELAY_CLIENTS must be 10..1000"

distlab_init rly
distlab_up
distlab_confs
distlab_start_all || lab_die "the lab did not start"
# rotated answers once the controller's start-up hold is over
deadline=$((SECONDS + DL_WINDOW + DL_GRACE + 60))
until [ -n "$(ip netns exec "$CLIA" dig +short +tries=1 +time=1 "@${DL_ADDR4[dns1]}" "$DL_NAME" A)" ]; do
	[ "$SECONDS" -ge "$deadline" ] && lab_die "dns1 got no slice from the controller"
	sleep 1
done
out=$(timeout $((N * 3 + 120)) "$GW_PY" "$here/relaylag.py" --client-ns "$CLIA" \
	--src-base 198.18.80.1 --count "$N" --dns "${DL_ADDR4[dns1]}" \
	--monitor-ns "$GW2" --table "${DL_TABLE[gw2]}")
echo "$out" | grep -E '^(lost|#)' | head -n 5
echo "bench-relay: $(date -u +%Y-%m-%dT%H:%MZ), kernel $(uname -r), $(nproc) CPUs"
echo "end to end (gw1's kernel learns -> in gw2's table), $N clients: $(tail -n 1 <<<"$out")"
echo "controller's part: $(dl_ctl ctl status | grep '^relay')"
echo "gw1: $(dl_ctl gw1 status | grep '^bindings_relay')"
