# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# Shared helpers for the lab scripts (tests/lab/*.sh): network namespaces,
# background processes, bounded waits, TAP output and cleanup.
#
# Source it from a bash script, then call lab_init once:
#
#     . "$(dirname "$0")/lib.sh"
#     lab_init conf                 # temp dir $LAB_TMP, EXIT trap installed
#     lab_netns ns srv              # $ns = "choreo-conf-srv-<pid>"
#     lab_spawn "$ns" log cmd...    # $LAB_LAST_PID = its PID
#
# (Not in $(...): the helpers register what they create in this shell.)
#
# Everything created through these helpers is registered and removed by
# lab_cleanup (the EXIT trap), also when the script fails or is interrupted:
# processes are stopped by the PIDs recorded here (never by name), then the
# namespaces and the temp dir are deleted.
#
# Lab rules (DESIGN.md, "Test network"): traffic only inside namespaces made
# here, addresses only from 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
# 198.18.0.0/15 and 2001:db8::/32. lab_addr refuses anything else.

LAB_NAME=""
LAB_TMP=""
LAB_NETNS=()     # namespaces to delete
LAB_PIDS=()      # background processes to stop ("pid" entries)
LAB_CLEANED=0
LAB_LAST_PID=""  # set by lab_spawn / lab_nsd_start
export LAB_LAST_PID

# TAP state
TAP_N=0
TAP_FAILED=0

lab_log() { echo "# $*" >&2; }
lab_die() { echo "Bail out! $*"; exit 1; }

# lab_init NAME: check we can do namespaces, make the temp dir, trap EXIT.
lab_init() {
	LAB_NAME=$1
	[ "$(id -u)" = 0 ] || lab_die "lab tests need root (network namespaces)"
	command -v ip >/dev/null || lab_die "ip (iproute2) is missing"
	LAB_TMP=$(mktemp -d "/tmp/choreo-$LAB_NAME.$$.XXXXXX") ||
		lab_die "mktemp failed"
	chmod 755 "$LAB_TMP"
	trap lab_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# lab_cleanup: the EXIT trap. Idempotent. Keeps the exit status.
lab_cleanup() {
	local rc=$? i pid ns left deadline
	[ "$LAB_CLEANED" = 1 ] && return "$rc"
	LAB_CLEANED=1
	# Stop our processes: SIGTERM, bounded wait, then SIGKILL.
	for pid in "${LAB_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	deadline=$((SECONDS + 3))
	for pid in "${LAB_PIDS[@]}"; do
		while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
			sleep 0.05
		done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	# Children our processes forked (NSD's server and xfrd processes) that
	# are still inside our own namespaces: nothing else runs there.
	for ns in "${LAB_NETNS[@]}"; do
		left=$(ip netns pids "$ns" 2>/dev/null)
		for i in $left; do
			kill -KILL "$i" 2>/dev/null
		done
	done
	for ns in "${LAB_NETNS[@]}"; do
		ip netns delete "$ns" 2>/dev/null
	done
	if [ -n "$LAB_TMP" ] && [ -d "$LAB_TMP" ]; then
		if [ "${LAB_KEEP:-0}" = 1 ]; then
			echo "# LAB_KEEP=1: kept $LAB_TMP" >&2
		else
			rm -rf "$LAB_TMP"
		fi
	fi
	return "$rc"
}

# lab_netns VAR ROLE: create namespace "choreo-<name>-<role>-<pid>", bring up
# lo, register it for deletion, store its name in VAR.
lab_netns() {
	local ns="choreo-$LAB_NAME-$2-$$"
	ip netns add "$ns" || lab_die "ip netns add $ns failed"
	LAB_NETNS+=("$ns")
	ip -n "$ns" link set lo up || lab_die "lo up in $ns failed"
	# No DAD delay on lab IPv6 addresses, no router solicitations.
	ip netns exec "$ns" sysctl -q -w net.ipv6.conf.all.accept_dad=0 \
		net.ipv6.conf.default.accept_dad=0 \
		net.ipv6.conf.default.accept_ra=0 >/dev/null 2>&1
	printf -v "$1" '%s' "$ns"
}

# lab_in NS CMD...: run a command inside a namespace.
lab_in() {
	local ns=$1; shift
	ip netns exec "$ns" "$@"
}

# lab_addr_ok ADDR[/LEN]: is this address inside the lab ranges?
lab_addr_ok() {
	local a=${1%/*}
	case "$a" in
	192.0.2.*|198.51.100.*|203.0.113.*|198.18.*|198.19.*) return 0 ;;
	*:*)
		case "${a,,}" in
		2001:db8:*|2001:0db8:*) return 0 ;;
		esac ;;
	esac
	return 1
}

# lab_addr NS DEV ADDR/LEN: add an address (v4 or v6) to an interface.
lab_addr() {
	local ns=$1 dev=$2 a=$3
	lab_addr_ok "$a" || lab_die "address $a is outside the lab ranges"
	if [[ $a == *:* ]]; then
		ip -n "$ns" -6 addr add "$a" dev "$dev" nodad ||
			lab_die "addr add $a dev $dev in $ns failed"
	else
		ip -n "$ns" addr add "$a" dev "$dev" ||
			lab_die "addr add $a dev $dev in $ns failed"
	fi
}

# lab_veth NS1 DEV1 NS2 DEV2: a veth pair joining two namespaces, both ends up.
lab_veth() {
	local ns1=$1 d1=$2 ns2=$3 d2=$4 tmp="v$$"
	ip link add "${tmp}a" type veth peer name "${tmp}b" ||
		lab_die "veth create failed"
	# (a half-moved pair disappears with the namespaces it is in)
	if ! ip link set "${tmp}a" netns "$ns1" name "$d1"; then
		ip link delete "${tmp}a" 2>/dev/null
		lab_die "veth move failed"
	fi
	ip link set "${tmp}b" netns "$ns2" name "$d2" || lab_die "veth move failed"
	ip -n "$ns1" link set "$d1" up || lab_die "veth up failed"
	ip -n "$ns2" link set "$d2" up || lab_die "veth up failed"
}

# lab_route NS PREFIX via GW [dev DEV]: add a route (lab prefixes only).
lab_route() {
	local ns=$1 prefix=$2; shift 2
	lab_addr_ok "$prefix" || lab_die "route $prefix is outside the lab ranges"
	if [[ $prefix == *:* ]]; then
		ip -n "$ns" -6 route add "$prefix" "$@" || lab_die "route $prefix failed"
	else
		ip -n "$ns" route add "$prefix" "$@" || lab_die "route $prefix failed"
	fi
}

# lab_client_server CLIENT_NS SERVER_NS: the standard two-host lab.
#   server: veth "srv0" 198.18.0.1/24, 2001:db8:ffff::1/64, plus service
#           addresses added by the caller on lo (e.g. 198.51.100.53/32)
#   client: veth "cli0" 198.18.0.2/24, 2001:db8:ffff::2/64; routes to
#           192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 and 2001:db8::/32
#           through the server side.
LAB_CLIENT4=198.18.0.2
LAB_CLIENT6=2001:db8:ffff::2
LAB_GW4=198.18.0.1
LAB_GW6=2001:db8:ffff::1
lab_client_server() {
	local cns=$1 sns=$2 p
	lab_veth "$cns" cli0 "$sns" srv0
	lab_addr "$sns" srv0 "$LAB_GW4/24"
	lab_addr "$sns" srv0 "$LAB_GW6/64"
	lab_addr "$cns" cli0 "$LAB_CLIENT4/24"
	lab_addr "$cns" cli0 "$LAB_CLIENT6/64"
	for p in 192.0.2.0/24 198.51.100.0/24 203.0.113.0/24; do
		lab_route "$cns" "$p" via "$LAB_GW4"
	done
	lab_route "$cns" 2001:db8::/32 via "$LAB_GW6"
}

# lab_spawn NS LOGFILE CMD...: start CMD in the background inside NS, stdout
# and stderr to LOGFILE; records the PID for cleanup and in LAB_LAST_PID.
# (ip netns exec execs the command, so the PID is the command's own.)
lab_spawn() {
	local ns=$1 log=$2 pid; shift 2
	ip netns exec "$ns" "$@" >"$log" 2>&1 </dev/null &
	pid=$!
	LAB_PIDS+=("$pid")
	LAB_LAST_PID=$pid
}

# lab_stop PID: stop one process started with lab_spawn (bounded).
lab_stop() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 1 60); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

# lab_alive PID: is the process still running?
lab_alive() { kill -0 "$1" 2>/dev/null; }

# lab_wait_dns NS SERVER [PORT [TIMEOUT_S [PID]]]: wait until SERVER answers
# a DNS query (any rcode) over UDP and over TCP. Bounded: TIMEOUT_S seconds
# (default 10). If PID is given, stop waiting as soon as it has died.
lab_wait_dns() {
	local ns=$1 srv=$2 port=${3:-53} limit=${4:-10} pid=${5:-} deadline proto
	deadline=$((SECONDS + limit))
	for proto in +notcp +tcp; do
		while :; do
			if ip netns exec "$ns" dig @"$srv" -p "$port" "$proto" \
				+time=1 +tries=1 +norec . SOA >/dev/null 2>&1; then
				break
			fi
			[ -n "$pid" ] && ! lab_alive "$pid" && return 1
			[ "$SECONDS" -ge "$deadline" ] && return 1
			sleep 0.1
		done
	done
	return 0
}

# lab_wait_tcp NS ADDR PORT [TIMEOUT_S]: wait until a TCP connect succeeds.
lab_wait_tcp() {
	local ns=$1 a=$2 port=$3 limit=${4:-10} deadline
	deadline=$((SECONDS + limit))
	while [ "$SECONDS" -lt "$deadline" ]; do
		ip netns exec "$ns" timeout 1 bash -c \
			"exec 3<>/dev/tcp/$a/$port" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# lab_nsd_conf DIR ZONE ZONEFILE ADDR...: write DIR/nsd.conf for a private
# NSD serving one zone on ADDR port 53. Never the system config: no chroot,
# no user switch, all state files in DIR, no remote control, one server
# process, response rate limiting off (it would skew tests and benchmarks).
# Extra server: lines may be passed in $NSD_EXTRA.
lab_nsd_conf() {
	local dir=$1 zone=$2 zonefile=$3 a; shift 3
	{
		echo "server:"
		echo "    server-count: 1"
		for a in "$@"; do
			lab_addr_ok "$a" || lab_die "NSD address $a is outside the lab ranges"
			echo "    ip-address: $a"
		done
		echo "    port: 53"
		echo "    chroot: \"\""
		echo "    username: \"\""
		echo "    zonesdir: \"$dir\""
		echo "    database: \"\""
		echo "    zonelistfile: \"$dir/zone.list\""
		echo "    xfrdfile: \"$dir/xfrd.state\""
		echo "    xfrdir: \"$dir\""
		echo "    pidfile: \"$dir/nsd.pid\""
		echo "    logfile: \"$dir/nsd.log\""
		echo "    verbosity: 1"
		echo "    rrl-ratelimit: 0"
		echo "    rrl-whitelist-ratelimit: 0"
		[ -n "${NSD_EXTRA:-}" ] && printf '%s\n' "$NSD_EXTRA"
		echo "remote-control:"
		echo "    control-enable: no"
		echo "zone:"
		echo "    name: \"$zone\""
		echo "    zonefile: \"$zonefile\""
	} >"$dir/nsd.conf"
}

# lab_nsd_start NS DIR: start NSD in the foreground (-d) in NS with
# DIR/nsd.conf; PID in LAB_LAST_PID. The caller waits with lab_wait_dns.
lab_nsd_start() {
	local ns=$1 dir=$2
	nsd-checkconf "$dir/nsd.conf" >&2 || lab_die "nsd-checkconf failed"
	lab_spawn "$ns" "$dir/nsd.stderr" nsd -d -c "$dir/nsd.conf"
}

# ---- TAP -----------------------------------------------------------------

# tap_ok DESC / tap_not_ok DESC: one result line.
tap_ok() {
	TAP_N=$((TAP_N + 1))
	echo "ok $TAP_N - $*"
}
tap_not_ok() {
	TAP_N=$((TAP_N + 1))
	TAP_FAILED=$((TAP_FAILED + 1))
	echo "not ok $TAP_N - $*"
}
# tap_check STATUS DESC: ok if STATUS is 0.
tap_check() {
	local st=$1; shift
	if [ "$st" -eq 0 ]; then tap_ok "$@"; else tap_not_ok "$@"; fi
}
# tap_diag: stdin (or args) as "# " comment lines.
tap_diag() {
	if [ $# -gt 0 ]; then
		printf '%s\n' "$*" | sed 's/^/# /'
	else
		sed 's/^/# /'
	fi
}
# tap_skip DESC REASON: a passing line with a TAP SKIP directive.
tap_skip() {
	TAP_N=$((TAP_N + 1))
	echo "ok $TAP_N - $1 # SKIP $2"
}
# tap_done: the plan line; returns non-zero if anything failed.
tap_done() {
	echo "1..$TAP_N"
	[ "$TAP_FAILED" -eq 0 ]
}
