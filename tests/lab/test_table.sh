#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# choreod's nftables table against the kernel's own view: the rows the
# policy module renders (`choreod -p`) are what `nft -j list table` shows;
# a configuration of 256 dual-stack services installs in one transaction,
# answers from its last service, is adopted after a restart, and shrinks to
# fewer services on a restart with objects of the removed ones deleted.
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

stop() {
	kill -TERM "$PID" 2>/dev/null
	for _ in $(seq 1 100); do lab_alive "$PID" || break; sleep 0.1; done
	lab_stop "$PID"
}

# compare CONF: nft's view against choreod -p, as TAP diagnostics; status 0 when same
compare() {
	lab_in "$NS" nft -j list table inet "$TABLE" >"$LAB_TMP/kernel.json" &&
		"$CHOREOD" -p -c "$1" >"$LAB_TMP/policy.txt" &&
		python3 "$here/nftjson.py" "$LAB_TMP/kernel.json" "$LAB_TMP/policy.txt" >"$LAB_TMP/cmp.out"
	local rc=$?
	tap_diag <"$LAB_TMP/cmp.out"
	return $rc
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
