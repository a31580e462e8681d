#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# choreod's nftables table against the kernel's own view: the rows the
# policy module renders (`choreod -p`) are what `nft -j list table` shows;
# a configuration of 256 dual-stack services installs in one transaction,
# answers from its last service, is adopted after a restart, and shrinks to
# fewer services on a restart with objects of the removed ones deleted.
# A gateway logs the bindings its kernel learns and refreshes to NFLOG only
# when it has a controller: without one its table has no log statement, as
# standalone's has none; with one, exactly the rules that write a bound set
# log, and the log statement is compared like the rest.
# TAP output; exits non-zero if anything failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"

CHOREOD=${CHOREOD:-$root/build/choreod}
DNS4=198.51.100.53

for tool in dig nft python3; do
	command -v "$tool" >/dev/null || lab_die "$tool is missing"
done
[ -x "$CHOREOD" ] || lab_die "build first: make"

lab_init table
lab_netns NS gw
lab_addr "$NS" lo $DNS4/32
TABLE="choreo_tbl_$$"
cp "$root/tests/data/unit.zone" "$LAB_TMP/example.test.zone"

# write_conf FILE N: N dual-stack services, pools 198.18.X.0/24 and
# 2001:db8:100:X::/64 (X = 0 .. N-1)
write_conf() {
	local file=$1 n=$2 i
	{
		echo "[daemon]"
		echo "control = $LAB_TMP/run/control.sock"
		echo "table = $TABLE"
		echo "[dns]"
		echo "listen = $DNS4:53"
		echo "zone = example.test"
		echo "zonefile = example.test.zone"
		echo "rate_limit = 0" # not about RRL (test_rrl.sh)
		for ((i = 0; i < n; i++)); do
			echo "[service s$i]"
			echo "name = s$i.example.test"
			echo "pool = 198.18.$i.0/24"
			printf 'pool6 = 2001:db8:100:%x::/64\n' "$i"
			echo "server = 192.0.2.10"
			echo "honeypot = 192.0.2.20"
			echo "server6 = 2001:db8:2::10"
			echo "honeypot6 = 2001:db8:2::20"
			echo "max_bindings = 4096"
		done
	} >"$file"
}

# start CONF NAME: choreod in the namespace, answering; sets PID
start() {
	lab_spawn "$NS" "$LAB_TMP/$2.log" "$CHOREOD" -c "$1"
	PID=$LAB_LAST_PID
	lab_wait_dns "$NS" $DNS4 53 60 "$PID"
}

# start_gw CONF NAME: choreod role gateway (no DNS to wait for: until its
# table is in); sets PID
start_gw() {
	local deadline=$((SECONDS + 30))
	lab_spawn "$NS" "$LAB_TMP/$2.log" "$CHOREOD" -c "$1"
	PID=$LAB_LAST_PID
	until grep -q "table inet $TABLE_GW \(created\|adopted\)" "$LAB_TMP/$2.log"; do
		lab_alive "$PID" && [ "$SECONDS" -lt "$deadline" ] || {
			tap_diag <"$LAB_TMP/$2.log"
			return 1
		}
		sleep 0.05
	done
}

stop() {
	kill -TERM "$PID" 2>/dev/null
	for _ in $(seq 1 100); do lab_alive "$PID" || break; sleep 0.1; done
	lab_stop "$PID"
}

# compare CONF [TABLE]: nft's view against choreod -p, as TAP diagnostics;
# status 0 when same
compare() {
	lab_in "$NS" nft -j list table inet "${2:-$TABLE}" >"$LAB_TMP/kernel.json" &&
		"$CHOREOD" -p -c "$1" >"$LAB_TMP/policy.txt" &&
		python3 "$here/nftjson.py" "$LAB_TMP/kernel.json" "$LAB_TMP/policy.txt" >"$LAB_TMP/cmp.out"
	local rc=$?
	tap_diag <"$LAB_TMP/cmp.out"
	return $rc
}

# logs: the log statements in the kernel's table (of the last compare), and
# the rules of the policy that add to or update a bound set; "KERNEL WRITERS"
logs() {
	local k w
	k=$(grep -o '"log": {[^}]*}' "$LAB_TMP/kernel.json" | grep -c '"prefix": "choreo-bind", "group": '"${1:-5353}"', "snaplen": 64')
	w=$(grep -cE '(add|update) saddr \. daddr @[a-z0-9_]+_bound[46] ' "$LAB_TMP/policy.txt")
	echo "$k $w"
}

# write_gw FILE [controller]: tests/data/unit.conf's services (mail4 with
# window_claims 2) on a gateway, with a [peer] controller when asked
write_gw() {
	{
		echo "[daemon]"
		echo "control = $LAB_TMP/run/gw.sock"
		echo "table = $TABLE_GW"
		echo "role = gateway"
		echo "name = gw1"
		echo "peer_listen = $DNS4:5300"
		echo "[key 1]"
		echo "file = $LAB_TMP/peer.key"
		echo "[peer dns1]"
		echo "role = dns"
		echo "key = 1"
		if [ "${2:-}" = controller ]; then
			echo "[peer ctl]"
			echo "role = controller"
			echo "key = 1"
			echo "address = 192.0.2.9"
		fi
		sed -n '/^\[service /,$p' "$root/tests/data/unit.conf" |
			sed "s|^\[service mail4\]|[service mail4]\nwindow_claims = 2|"
	} >"$1"
}

# ---- the kernel probe ----------------------------------------------------------
out=$(lab_in "$NS" "$CHOREOD" -k 2>&1)
rc=$?
echo "$out" | tap_diag
[ $rc -eq 0 ] && grep -qx 'readd yes' <<<"$out" && grep -qx 'concat_ranges yes' <<<"$out" &&
	grep -qx 'claims yes' <<<"$out" &&
	! lab_in "$NS" nft list tables | grep -q choreo_probe
tap_check $? "choreod -k: this kernel has what choreod needs; add-delete-add refreshes present, missing and just-expired elements; the scratch table is gone"

# ---- a small configuration, one service with IPv6 and one without -----------
sed -e "s|^control = .*|control = $LAB_TMP/run/control.sock|" \
	-e "s|^zonefile = .*|zonefile = example.test.zone|" \
	-e "s|^listen = .*|listen = $DNS4:53|" \
	-e "s|^\[daemon\]|[daemon]\ntable = $TABLE|" \
	-e "s|^\[service mail4\]|[service mail4]\nwindow_claims = 2|" \
	"$root/tests/data/unit.conf" >"$LAB_TMP/small.conf"
start "$LAB_TMP/small.conf" small
tap_check $? "choreod starts with tests/data/unit.conf (mail4 with window_claims 2)"
compare "$LAB_TMP/small.conf"
tap_check $? "the kernel's table (nft -j list table) is exactly the rows choreod -p renders"
read -r n_log n_writers < <(logs)
[ "$n_log" = 0 ] && ! grep -q '"log"' "$LAB_TMP/kernel.json" && [ "$n_writers" -gt 0 ]
tap_check $? "standalone: no log statement in the table ($n_writers rules write a bound set)"
stop

# ---- a gateway: without a controller as standalone, with one its bindings logged ----
TABLE_GW="choreo_tblgw_$$"
(umask 077 && head -c 48 /dev/urandom | base64 >"$LAB_TMP/peer.key") || lab_die "cannot write the key"
write_gw "$LAB_TMP/gw.conf"
write_gw "$LAB_TMP/gw-ctl.conf" controller
start_gw "$LAB_TMP/gw.conf" gw
tap_check $? "choreod role gateway without a controller starts with unit.conf's services"
compare "$LAB_TMP/gw.conf" "$TABLE_GW"
rc=$?
read -r n_log n_writers < <(logs)
[ $rc -eq 0 ] && [ "$n_log" = 0 ] && ! grep -q '"log"' "$LAB_TMP/kernel.json"
tap_check $? "a gateway without a controller: the kernel's table is the policy's rows, no log statement"
stop
start_gw "$LAB_TMP/gw-ctl.conf" gw-ctl
tap_check $? "choreod role gateway with a controller peer (not there) starts and adopts the table"
compare "$LAB_TMP/gw-ctl.conf" "$TABLE_GW"
rc=$?
read -r n_log n_writers < <(logs)
tap_diag "log statements: $n_log; rules that add to or update a bound set: $n_writers"
[ $rc -eq 0 ] && [ "$n_log" -gt 0 ] && [ "$n_log" = "$n_writers" ] &&
	[ "$(grep -o '"log"' "$LAB_TMP/kernel.json" | wc -l)" = "$n_log" ]
tap_check $? "a gateway with a controller: the kernel's table is the policy's rows, log statements included (prefix, group 5353, snaplen 64), one on each rule that writes a bound set and on no other"
lab_alive "$PID"
tap_check $? "the gateway keeps running with its controller unreachable"
stop
sed -i 's|^\[daemon\]|[daemon]\nnflog_group = 77|' "$LAB_TMP/gw-ctl.conf"
start_gw "$LAB_TMP/gw-ctl.conf" gw-77
compare "$LAB_TMP/gw-ctl.conf" "$TABLE_GW"
rc=$?
read -r n_log n_writers < <(logs 77)
[ $rc -eq 0 ] && [ "$n_log" -gt 0 ] && [ "$n_log" = "$n_writers" ]
tap_check $? "[daemon] nflog_group = 77: a restart replaces the rules, every log statement goes to group 77"
stop
start_gw "$LAB_TMP/gw.conf" gw-again
compare "$LAB_TMP/gw.conf" "$TABLE_GW"
rc=$?
[ $rc -eq 0 ] && ! grep -q '"log"' "$LAB_TMP/kernel.json"
tap_check $? "the controller removed from the config: a restart takes every log statement out"
stop

# ---- 256 dual-stack services -------------------------------------------------------
write_conf "$LAB_TMP/big.conf" 256
t0=$(date +%s%N)
start "$LAB_TMP/big.conf" big
rc=$?
t1=$(date +%s%N)
grep -E 'table inet' "$LAB_TMP/big.log" | tap_diag
[ $rc -eq 0 ] && grep -q "table inet $TABLE adopted\|table inet $TABLE created" "$LAB_TMP/big.log"
tap_check $? "256 dual-stack services: the table is installed in one transaction ($(( (t1 - t0) / 1000000 )) ms to answering)"
compare "$LAB_TMP/big.conf"
tap_check $? "256 dual-stack services: the kernel's table is exactly the policy's rows"
ans=$(lab_in "$NS" dig +short +norec @$DNS4 s255.example.test A)
ans6=$(lab_in "$NS" dig +short +norec @$DNS4 s255.example.test AAAA)
n_open=$(lab_in "$NS" nft list set inet "$TABLE" s255_open4 | grep -c "${ans:-none} ")
case "$ans/$ans6" in 198.18.255.*/2001:db8:100:ff:*) [ "$n_open" -ge 1 ] ;; *) false ;; esac
tap_check $? "the last service answers from its pools ($ans, $ans6), its window is in the kernel"
stop

# ---- restart: adopted, then shrunk -----------------------------------------------------
start "$LAB_TMP/big.conf" big2
rc=$?
[ $rc -eq 0 ] && grep -q "table inet $TABLE adopted" "$LAB_TMP/big2.log" &&
	lab_in "$NS" nft list set inet "$TABLE" s255_open4 | grep -q "${ans:-none} "
tap_check $? "a restart adopts the 256-service table in one transaction; the open window is still there"
stop
write_conf "$LAB_TMP/half.conf" 128
start "$LAB_TMP/half.conf" half
tap_check $? "a restart with 128 of the 256 services adopts the table"
compare "$LAB_TMP/half.conf"
tap_check $? "after the shrink the kernel's table is exactly the policy's rows (the other 128 services' objects are gone)"
stop
tap_done
