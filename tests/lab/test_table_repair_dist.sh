#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# A gateway's table damaged from outside, in the distributed lab of
# distlab.sh (two DNS nodes, two gateways): what the gateway applied for
# its DNS nodes and is still live comes back with the repair. A client of
# net A is answered by dns1 (the asker entry and the window go to both
# gateways); then gw1's table is flushed and its asked and open sets are
# deleted; gw1 repairs it and applies the changes still live again: the
# asker entry is back in gw1's new asked set, the client connects through
# gw1 and reaches the server, and gw2 was never touched. TAP output.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
DL_WINDOW=20 # the answer's entries outlive the test
. "$here/distlab.sh"

distlab_init trd
distlab_up
distlab_confs

live() { [ "$(dl_field "$1" gateways live)" = "$2" ]; }
both_live() { live dns1 2 && live dns2 2; }
if ! distlab_start_all || ! poll_until 10 both_live; then
	for n in dns1 gw1; do dl_ctl "$n" status 2>&1 | tap_diag; done
	tap_not_ok "the four choreod start and link"
	tap_done
	exit 1
fi
tap_ok "two DNS nodes and two gateways up, linked"

now() { date +%s.%N; }
T1=${DL_TABLE[gw1]}
src=198.18.77.1
ans=$(gtool "$CLIA" ask --server "${DL_ADDR4[dns1]}" --src "$src")
addr=${ans#NOERROR }
in_asked() { grep -qx "$src . $addr" <<<"$(dl_set_elems "$1" www_asked4)"; }
in_asked gw1 && in_asked gw2
tap_check $? "dns1 answers $src with $addr ($ans): the asker entry is in both gateways' tables"

before2=$(dl_nft gw2 -t list table inet "${DL_TABLE[gw2]}")
dl_nft gw1 -f - <<EOF
flush table inet $T1
delete set inet $T1 www_asked4
delete set inet $T1 www_open4
EOF
t0=$(now)
ok=1
for _ in $(seq 1 300); do
	if in_asked gw1; then ok=0; break; fi
	[ "$(awk -v a="$t0" -v b="$(now)" 'BEGIN { print (b - a > 3) }')" = 1 ] && break
	sleep 0.01
done
ms=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%d", (b - a) * 1000 }')
[ $ok = 0 ] && [ "$ms" -lt 1000 ]
tap_check $? "gw1's table flushed and its asked and open sets deleted: $ms ms later the entry dns1 sent is back in gw1's new asked set"
grep -qx "$addr" <<<"$(dl_set_elems gw1 www_open4)"
tap_check $? "the window dns1 opened ($addr) is back in gw1's new open set"
host=$(gtool "$CLIA" connect --src "$src" --dst "$addr" --port 80 --timeout 3)
[ "$host" = server ]
tap_check $? "$src connects through gw1 after the repair: $host"
r=$(dl_ctl gw1 status | grep '^table_repairs')
tap_diag "gw1: $r"
grep "damaged from outside" "${DL_LOG[gw1]}" | tap_diag
[ "$(gw_value table_repairs <<<"$r")" = 1 ] && [ "$(gw_value replayed <<<"$r")" -ge 2 ]
tap_check $? "gw1 counts one repair and the changes it applied again"
[ "$(dl_nft gw2 -t list table inet "${DL_TABLE[gw2]}")" = "$before2" ] &&
	[ "$(dl_ctl gw2 status | grep '^table_repairs' | gw_value table_repairs)" = 0 ]
tap_check $? "gw2 untouched, no repair there"
ans2=$(gtool "$CLIA" ask --server "${DL_ADDR4[dns1]}" --src 198.18.77.2)
host2=$(gtool "$CLIA" connect --src 198.18.77.2 --dst "${ans2#NOERROR }" --port 80 --timeout 3)
[ "$host2" = server ]
tap_check $? "a new client after the repair: $ans2 -> $host2"
tap_done
