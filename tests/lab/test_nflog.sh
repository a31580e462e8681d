#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The bindings a gateway's kernel learns and refreshes reach NFLOG, and
# src/nflog.c reads them, in the gateway lab (gwlab.sh: gw routes between
# cli, scan, srv and hpot):
#   a  choreod role gateway with a controller peer installs its table, with
#      the log on every rule that writes a bound set
#   b  the lab's listener (build/nflog-listen, src/nflog.c) binds the group;
#      a second one is refused with the clear message
#   c  IPv4 and IPv6: a client let in by an asked entry (from the test, with
#      nft, as a DNS node's change would put it) is learned, and its second
#      connection refreshes the binding; each one record "bind F SRC POOL"
#      within a few ms; a client of the open window is learned too
#   d  a scanner lands on the honeypot and is no binding record; no record
#      is lost, none is bad
# choreod is stopped once its table is in: the table stays in the kernel and
# works without it, and the group is free for the listener (a choreod that
# reads the group itself would have it). No DNS node, no controller runs.
# TAP output; exits non-zero if anything failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/gwlab.sh"

LISTEN_BIN=${NFLOG_LISTEN:-$GWLAB_ROOT/build/nflog-listen}
[ -x "$LISTEN_BIN" ] || lab_die "build first: make build/nflog-listen"
GROUP=5353

gwlab_init nflog
cp "$LISTEN_BIN" "$LAB_TMP/bin/nflog-listen" || lab_die "cannot copy nflog-listen"
LISTEN=$LAB_TMP/bin/nflog-listen
gwlab_net
gwlab_cert
gwlab_banner "$SRV" server
gwlab_banner "$HPOT" honeypot

KEY=$LAB_TMP/peer.key
(umask 077 && head -c 48 /dev/urandom | base64 >"$KEY") || lab_die "cannot write the key"
CONF=$LAB_TMP/gw.conf
cat >"$CONF" <<EOF
# a gateway with a controller (tests/lab/test_nflog.sh)
[daemon]
control = $GW_CTL_SOCK
table = $GW_TABLE
role = gateway
name = gw1
peer_listen = 192.0.2.9:5300
[key 1]
file = $KEY
[peer dns1]
role = dns
key = 1
[peer ctl]
role = controller
key = 1
address = 198.51.100.99:5300
[service www]
name = $GW_NAME
pool = $GW_POOL4
pool6 = $GW_POOL6
server = $GW_SERVER4
server6 = $GW_SERVER6
honeypot = $GW_HPOT4
honeypot6 = $GW_HPOT6
binding = 600
EOF

# ---- a: the table ------------------------------------------------------------------
lab_spawn "$GW" "$LAB_TMP/choreod.log" "$GW_CHOREOD" -c "$CONF"
GW_CHOREOD_PID=$LAB_LAST_PID
deadline=$((SECONDS + 20))
until grep -q "table inet $GW_TABLE created" "$LAB_TMP/choreod.log"; do
	lab_alive "$GW_CHOREOD_PID" && [ "$SECONDS" -lt "$deadline" ] || break
	sleep 0.05
done
tap_diag <"$LAB_TMP/choreod.log"
n_log=$(gw_nft list table inet "$GW_TABLE" | grep -c "log prefix \"choreo-bind\" group $GROUP snaplen 64")
lab_alive "$GW_CHOREOD_PID" && [ "$n_log" = 8 ]
tap_check $? "choreod role gateway with a controller peer installs its table: 8 rules log to group $GROUP (learn from asked, scoped, open and refresh, per family)"
gwlab_choreod_stop
n_log=$(gw_nft list table inet "$GW_TABLE" | grep -c "log prefix \"choreo-bind\"")
[ "$n_log" = 8 ]
tap_check $? "choreod stopped: the table stays in the kernel, log rules included"

# ---- b: the listener, and a second one ---------------------------------------------
OUT=$LAB_TMP/listen.out
lab_spawn "$GW" "$OUT" "$LISTEN" "$GROUP"
LPID=$LAB_LAST_PID
for _ in $(seq 1 100); do
	grep -q '^ready' "$OUT" 2>/dev/null && break
	lab_alive "$LPID" || break
	sleep 0.05
done
grep -q '^ready' "$OUT"
tap_check $? "nflog-listen binds group $GROUP in the gateway's namespace"
err=$(lab_in "$GW" timeout 5 "$LISTEN" "$GROUP" 2>&1 >/dev/null)
rc=$?
tap_diag "$err"
[ $rc -eq 1 ] && grep -q "nflog group $GROUP is taken by another program: set \[daemon\] nflog_group" <<<"$err"
tap_check $? "a second listener on the group is refused: the group is taken, set [daemon] nflog_group"

# records SINCE: the listener's record lines after the first SINCE of them
records() { grep -E '^(bind|other) ' "$OUT" | tail -n +$(($1 + 1)); }
n_records() { grep -cE '^(bind|other) ' "$OUT"; }

# expect DESC SRC DST: connect SRC -> DST (port 80), which must reach the
# server, and see exactly one record "bind F SRC DST" come
expect() {
	local desc=$1 src=$2 dst=$3 fam=4 before got t0 t1 ms=""
	[[ $src == *:* ]] && fam=6
	before=$(n_records)
	t0=$(date +%s%N)
	got=$(gw_connect "$src" "$dst" 80)
	for _ in $(seq 1 200); do
		[ "$(n_records)" -gt "$before" ] && { t1=$(date +%s%N); ms=$(( (t1 - t0) / 1000000 )); break; }
		sleep 0.01
	done
	sleep 0.1   # (anything more would come now)
	records "$before" | tap_diag
	[ "$got" = server ] && [ "$(records "$before")" = "bind $fam $src $dst" ]
	tap_check $? "$desc: $src reaches the server through $dst; one record 'bind $fam $src $dst' (seen ${ms:-no record} ms after the client started, its Python start included)"
}

# ---- c: learn and refresh, IPv4 and IPv6 ----------------------------------------------
C4=198.18.7.1 A4=203.0.113.77
C6=2001:db8:18::7 A6=2001:db8:1::77
gw_nft add element inet "$GW_TABLE" www_asked4 "{ $C4 . $A4 timeout 60s }" ||
	lab_die "cannot add to www_asked4"
gw_nft add element inet "$GW_TABLE" www_asked6 "{ $C6 . $A6 timeout 60s }" ||
	lab_die "cannot add to www_asked6"
expect "IPv4 learn (asked entry)" "$C4" "$A4"
gw_set_elems www_bound4 | grep -qx "$C4 . $A4"
tap_check $? "IPv4: the binding is in www_bound4"
expect "IPv4 refresh (second connection of the bound client)" "$C4" "$A4"
expect "IPv6 learn (asked entry)" "$C6" "$A6"
gw_set_elems www_bound6 | grep -qx "$C6 . $A6"
tap_check $? "IPv6: the binding is in www_bound6"
expect "IPv6 refresh (second connection of the bound client)" "$C6" "$A6"
C4b=198.18.7.2 A4b=203.0.113.78
gw_nft add element inet "$GW_TABLE" www_open4 "{ $A4b timeout 60s }" ||
	lab_die "cannot add to www_open4"
expect "IPv4 learn (open window)" "$C4b" "$A4b"

# ---- d: a scanner is no binding; nothing lost ------------------------------------------
before=$(n_records)
got=$(gw_connect "$GW_SCAN4" 203.0.113.79 80)
got6=$(gw_connect "$GW_SCAN6" 2001:db8:1::79 80)
sleep 0.3
[ "$got" = honeypot ] && [ "$got6" = honeypot ] && [ "$(n_records)" = "$before" ]
tap_check $? "a scanner ($GW_SCAN4, $GW_SCAN6) lands on the honeypot and makes no record"
lab_stop "$LPID"
stats=$(grep '^stats ' "$OUT")
tap_diag "$stats"
[ "$stats" = "stats records 5 bad 0 lost 0 overruns 0" ]
tap_check $? "the listener got 5 records, none bad, none lost, no overrun"
err=$(lab_in "$GW" timeout 1 "$LISTEN" "$GROUP" 2>&1 >/dev/null)
[ $? -eq 124 ] && [ -z "$err" ]
tap_check $? "the first listener gone, the group is free again"
tap_done
