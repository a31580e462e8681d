# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# The lab of the distributed mode, on top of gwlab.sh (and lib.sh): two DNS
# nodes and two gateways of one deployment, each gateway a router in front
# of its own client network, all in network namespaces.
#
#                       core: a bridge, 192.0.2.0/24, 2001:db8:2::/64
#     +--------+--------+-------+-------+-------+--------+--------+
#    gw1      gw2      srv    hpot     res     dns1     dns2
#     |      |    |                  Unbound   choreod  choreod
#   cliA  cliB   scan                          role dns role dns
#
#   gw1, gw2  choreod role gateway, each its own nftables table; peer_listen
#             on .1 / .2 port 5300; both carry the service (DNAT to the same
#             server and honeypot)
#   dns1/2    choreod role dns on 192.0.2.53 / .54; its slice of each pool
#             and its share of max_open; connects to both gateways
#   srv/hpot  banner.py "server" / "honeypot" (ports 22 25 80 443)
#   res       Unbound; stub zone example.test with both DNS nodes
#   cliA      clients of net A, 198.18.0.0/16 and 2001:db8:18::/48 (AnyIP:
#             any address there can be a source), routed through gw1
#   cliB      clients of net B, 198.19.0.0/17 and 2001:db8:19::/48, via gw2
#   scan      the scanner, 198.19.128.0/17 (AnyIP), via gw2
#
# Replies from srv and hpot go back through the gateway whose conntrack
# undid the DNAT (srv routes net A to gw1, net B to gw2).
#
#     . "$(dirname "$0")/distlab.sh"
#     distlab_init dist           # gwlab_init: lab_init, tools, binaries
#     distlab_up                  # namespaces, links, banners, Unbound
#     distlab_confs               # the four configurations, $DL_CONF[...]
#     distlab_start_all           # gateways, then DNS nodes; links up
#     dl_ctl dns1 status          # choreoctl on a node's socket
#     dl_tool tries ...           # $LAB_TMP/disttool.py (below)
#
# Everything is removed by lib.sh's EXIT trap, also on failure.

DISTLAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$DISTLAB_DIR/gwlab.sh"

# ---- addresses (lab ranges only) ------------------------------------------
DL_POOL4=203.0.113.0/25
DL_POOL6=2001:db8:1::/64
DL_SERVER4=192.0.2.10
DL_SERVER6=2001:db8:2::10
DL_HPOT4=192.0.2.20
DL_HPOT6=2001:db8:2::20
DL_RES4=192.0.2.30
DL_RES6=2001:db8:2::30
DL_NETA4=198.18.0.0/16
DL_NETA6=2001:db8:18::/48
DL_NETB4=198.19.0.0/17
DL_NETB6=2001:db8:19::/48
DL_SCANNET4=198.19.128.0/17
DL_SCAN4=198.19.200.7
DL_PEER_PORT=5300
DL_ZONE=example.test
DL_NAME=www.example.test
DL_NODES=(gw1 gw2 dns1 dns2)
# DL_CONTROLLER=1 (before distlab_init): a controller "ctl" too, and every
# node connects to it (choreod role controller)
DL_CONTROLLER=${DL_CONTROLLER:-0}
[ "$DL_CONTROLLER" = 1 ] && DL_NODES+=(ctl)
declare -A DL_ADDR4=([gw1]=192.0.2.1 [gw2]=192.0.2.2 [dns1]=192.0.2.53 [dns2]=192.0.2.54
	[ctl]=192.0.2.40)
declare -A DL_ADDR6=([gw1]=2001:db8:2::1 [gw2]=2001:db8:2::2 [dns1]=2001:db8:2::53 [dns2]=2001:db8:2::54
	[ctl]=2001:db8:2::40)
declare -A DL_SLICE4=([dns1]=203.0.113.0/26 [dns2]=203.0.113.64/26)
declare -A DL_SLICE6=([dns1]=2001:db8:1::/65 [dns2]=2001:db8:1:0:8000::/65)
# knobs (set before distlab_confs)
DL_MAX_OPEN=${DL_MAX_OPEN:-8}
declare -A DL_SHARE=([dns1]=$((DL_MAX_OPEN / 2)) [dns2]=$((DL_MAX_OPEN - DL_MAX_OPEN / 2)))
DL_TTL=${DL_TTL:-0}             # resolvers do not cache: every question reaches a node
DL_WINDOW=${DL_WINDOW:-2}
DL_GRACE=${DL_GRACE:-1}
DL_COMMIT_TIMEOUT=${DL_COMMIT_TIMEOUT:-300}
DL_BINDING=${DL_BINDING:-600}
DL_GATEWAY_DOWN=${DL_GATEWAY_DOWN:-servfail}   # a DNS node's on_gateway_down
DL_GATEWAY_DEADLINE=${DL_GATEWAY_DEADLINE:-2000}

# namespaces
CORE="" GW1="" GW2="" DNS1="" DNS2="" CLIA="" CLIB="" CTL=""   # (SRV HPOT RES SCAN: gwlab's)
declare -A DL_NS=()
declare -A DL_CONF=() DL_SOCK=() DL_TABLE=() DL_PID=() DL_LOG=() DL_STARTS=()
DL_KEY=""
DL_TOOL=""

# distlab_init NAME
distlab_init() {
	local n
	gwlab_init "$1"
	for n in "${DL_NODES[@]}"; do
		DL_SOCK[$n]=$LAB_TMP/run/$n.sock
		DL_TABLE[$n]="choreo_${1}_${n}_$$"
		DL_TABLE[$n]=${DL_TABLE[$n]:0:31}
		DL_STARTS[$n]=0
	done
	distlab_write_tool
}

# dl_leaf NS DEV GWNS GWDEV A4/LEN G4 A6/LEN G6: a leaf joined to a gateway;
# the leaf routes every lab prefix through it.
dl_leaf() {
	local ns=$1 dev=$2 gns=$3 gdev=$4 a4=$5 g4=$6 a6=$7 g6=$8 p
	lab_veth "$ns" "$dev" "$gns" "$gdev"
	lab_addr "$ns" "$dev" "$a4"
	lab_addr "$gns" "$gdev" "$g4/${a4#*/}"
	lab_addr "$ns" "$dev" "$a6"
	lab_addr "$gns" "$gdev" "$g6/${a6#*/}"
	for p in 192.0.2.0/24 198.51.100.0/24 203.0.113.0/24 198.18.0.0/15; do
		lab_route "$ns" "$p" via "$g4"
	done
	lab_route "$ns" 2001:db8::/32 via "$g6"
}

# dl_core NS DEV A4 A6: a host on the core bridge, routing the client
# networks to their gateways.
dl_core() {
	local ns=$1 dev=$2 a4=$3 a6=$4
	lab_veth "$ns" eth0 "$CORE" "$dev"
	ip -n "$CORE" link set "$dev" master br0 || lab_die "bridge port $dev failed"
	lab_addr "$ns" eth0 "$a4/24"
	lab_addr "$ns" eth0 "$a6/64"
	case "$ns" in
	"$GW1"|"$GW2") return 0 ;;
	esac
	lab_route "$ns" 198.18.0.0/16 via "${DL_ADDR4[gw1]}"
	lab_route "$ns" 198.19.0.0/16 via "${DL_ADDR4[gw2]}"
	lab_route "$ns" 198.51.100.0/30 via "${DL_ADDR4[gw1]}"
	lab_route "$ns" 198.51.100.4/30 via "${DL_ADDR4[gw2]}"
	lab_route "$ns" 198.51.100.8/30 via "${DL_ADDR4[gw2]}"
	lab_route "$ns" 2001:db8:18::/48 via "${DL_ADDR6[gw1]}"
	lab_route "$ns" 2001:db8:19::/48 via "${DL_ADDR6[gw2]}"
}

# distlab_net: the namespaces, links, addresses and routes.
distlab_net() {
	local ns
	lab_netns CORE core
	lab_netns GW1 gw1
	lab_netns GW2 gw2
	lab_netns DNS1 dns1
	lab_netns DNS2 dns2
	lab_netns SRV srv
	lab_netns HPOT hpot
	lab_netns RES res
	lab_netns CLIA clia
	lab_netns CLIB clib
	lab_netns SCAN scan
	DL_NS=([core]=$CORE [gw1]=$GW1 [gw2]=$GW2 [dns1]=$DNS1 [dns2]=$DNS2 [srv]=$SRV
		[hpot]=$HPOT [res]=$RES [clia]=$CLIA [clib]=$CLIB [scan]=$SCAN)
	if [ "$DL_CONTROLLER" = 1 ]; then
		lab_netns CTL ctl
		DL_NS[ctl]=$CTL
	fi
	for ns in "${DL_NS[@]}"; do
		lab_in "$ns" sysctl -q -w net.ipv4.conf.all.rp_filter=0 \
			net.ipv4.conf.default.rp_filter=0 >/dev/null ||
			lab_die "sysctl in $ns failed"
	done
	for ns in "$GW1" "$GW2"; do
		lab_in "$ns" sysctl -q -w net.ipv4.ip_forward=1 \
			net.ipv6.conf.all.forwarding=1 >/dev/null || lab_die "forwarding on in $ns failed"
	done
	# the core: one bridge, no STP, no multicast snooping (NDP floods)
	ip -n "$CORE" link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0 ||
		lab_die "bridge in core failed"
	ip -n "$CORE" link set br0 up || lab_die "bridge up failed"
	dl_core "$GW1" gw1 "${DL_ADDR4[gw1]}" "${DL_ADDR6[gw1]}"
	dl_core "$GW2" gw2 "${DL_ADDR4[gw2]}" "${DL_ADDR6[gw2]}"
	dl_core "$DNS1" dns1 "${DL_ADDR4[dns1]}" "${DL_ADDR6[dns1]}"
	dl_core "$DNS2" dns2 "${DL_ADDR4[dns2]}" "${DL_ADDR6[dns2]}"
	dl_core "$SRV" srv "$DL_SERVER4" "$DL_SERVER6"
	dl_core "$HPOT" hpot "$DL_HPOT4" "$DL_HPOT6"
	dl_core "$RES" res "$DL_RES4" "$DL_RES6"
	[ "$DL_CONTROLLER" = 1 ] && dl_core "$CTL" ctl "${DL_ADDR4[ctl]}" "${DL_ADDR6[ctl]}"
	# the client networks and the scanner, each behind its gateway
	dl_leaf "$CLIA" eth0 "$GW1" clia 198.51.100.2/30 198.51.100.1 2001:db8:f1::2/64 2001:db8:f1::1
	dl_leaf "$CLIB" eth0 "$GW2" clib 198.51.100.6/30 198.51.100.5 2001:db8:f2::2/64 2001:db8:f2::1
	dl_leaf "$SCAN" eth0 "$GW2" scan 198.51.100.10/30 198.51.100.9 2001:db8:f3::2/64 2001:db8:f3::1
	lab_addr_ok "$DL_NETA4" && lab_addr_ok "$DL_NETB4" && lab_addr_ok "$DL_SCANNET4" &&
		lab_addr_ok "$DL_NETA6" && lab_addr_ok "$DL_NETB6" || lab_die "client prefixes outside the lab ranges"
	ip -n "$CLIA" route add local "$DL_NETA4" dev lo || lab_die "AnyIP $DL_NETA4 failed"
	ip -n "$CLIA" -6 route add local "$DL_NETA6" dev lo || lab_die "AnyIP $DL_NETA6 failed"
	ip -n "$CLIB" route add local "$DL_NETB4" dev lo || lab_die "AnyIP $DL_NETB4 failed"
	ip -n "$CLIB" -6 route add local "$DL_NETB6" dev lo || lab_die "AnyIP $DL_NETB6 failed"
	ip -n "$SCAN" route add local "$DL_SCANNET4" dev lo || lab_die "AnyIP $DL_SCANNET4 failed"
	for ns in "$CLIA" "$CLIB" "$SCAN"; do
		lab_in "$ns" sysctl -q -w net.ipv6.ip_nonlocal_bind=1 >/dev/null ||
			lab_die "ip_nonlocal_bind in $ns failed"
	done
	lab_route "$GW1" "$DL_NETA4" via 198.51.100.2
	lab_route "$GW1" "$DL_NETA6" via 2001:db8:f1::2
	lab_route "$GW2" "$DL_NETB4" via 198.51.100.6
	lab_route "$GW2" "$DL_NETB6" via 2001:db8:f2::2
	lab_route "$GW2" "$DL_SCANNET4" via 198.51.100.10
}

# distlab_zone FILE: the zone of the DNS nodes (www is the rotor's).
distlab_zone() {
	cat >"$1" <<EOF
; the distributed lab's zone (tests/lab/distlab.sh)
\$ORIGIN $DL_ZONE.
\$TTL 3600
@       IN SOA  ns1 hostmaster 2026112501 7200 3600 1209600 300
        IN NS   ns1
        IN NS   ns2
ns1     IN A    ${DL_ADDR4[dns1]}
ns2     IN A    ${DL_ADDR4[dns2]}
static  IN A    192.0.2.80
EOF
}

# distlab_unbound: Unbound in res, a stub zone with both DNS nodes.
distlab_unbound() {
	local d=$LAB_TMP/unbound
	command -v unbound >/dev/null || lab_die "unbound is missing (scripts/install-deps.sh test)"
	mkdir -p "$d"
	cat >"$d/unbound.conf" <<EOF
server:
    verbosity: 1
    interface: $DL_RES4
    interface: $DL_RES6
    port: 53
    outgoing-interface: $DL_RES4
    do-daemonize: no
    chroot: ""
    username: ""
    directory: "$d"
    pidfile: "$d/unbound.pid"
    logfile: ""
    use-syslog: no
    num-threads: 1
    so-reuseport: no
    module-config: "iterator"
    qname-minimisation: no
    prefetch: no
    serve-expired: no
    minimal-responses: yes
    cache-min-ttl: 0
    infra-host-ttl: 5
    infra-keep-probing: yes
    access-control: 0.0.0.0/0 refuse
    access-control: ::/0 refuse
    access-control: 198.18.0.0/15 allow
    access-control: 2001:db8:18::/47 allow
    access-control: 192.0.2.0/24 allow
    local-zone: "test." nodefault
    domain-insecure: "$DL_ZONE"
remote-control:
    control-enable: no
stub-zone:
    name: "$DL_ZONE"
    stub-addr: ${DL_ADDR4[dns1]}
    stub-addr: ${DL_ADDR4[dns2]}
EOF
	if command -v unbound-checkconf >/dev/null; then
		unbound-checkconf "$d/unbound.conf" >"$d/checkconf.log" 2>&1 ||
			{ cat "$d/checkconf.log" >&2; lab_die "unbound-checkconf failed"; }
	fi
	lab_spawn "$RES" "$d/unbound.log" unbound -d -c "$d/unbound.conf"
	GW_UNBOUND_PID=$LAB_LAST_PID
	lab_wait_dns "$CLIA" "$DL_RES4" 53 10 "$GW_UNBOUND_PID" ||
		{ tail -n 20 "$d/unbound.log" >&2; lab_die "unbound did not start"; }
}

# distlab_up: the whole lab but choreod.
distlab_up() {
	distlab_net
	gwlab_cert
	gwlab_banner "$SRV" server
	gwlab_banner "$HPOT" honeypot
	distlab_zone "$LAB_TMP/example.test.zone"
	DL_KEY=$LAB_TMP/peer.key
	(umask 077 && head -c 48 /dev/urandom | base64 >"$DL_KEY") || lab_die "cannot write the key"
	distlab_unbound
}

# distlab_conf NODE FILE: the configuration of one node.
distlab_conf() {
	local n=$1 f=$2 role g d
	case "$n" in gw*) role=gateway ;; ctl) role=controller ;; *) role=dns ;; esac
	{
		echo "# generated by distlab.sh: node $n"
		echo "[daemon]"
		echo "control = ${DL_SOCK[$n]}"
		echo "table = ${DL_TABLE[$n]}"
		echo "role = $role"
		echo "name = $n"
		if [ "$role" = gateway ] || [ "$role" = controller ]; then
			echo "peer_listen = ${DL_ADDR4[$n]}:$DL_PEER_PORT"
		else
			echo "commit_timeout = $DL_COMMIT_TIMEOUT"
			echo "on_gateway_down = $DL_GATEWAY_DOWN"
			echo "gateway_deadline = $DL_GATEWAY_DEADLINE"
			echo "[dns]"
			echo "listen = ${DL_ADDR4[$n]}:53"
			echo "zone = $DL_ZONE"
			echo "zonefile = $LAB_TMP/example.test.zone"
			echo "ttl = $DL_TTL"
			echo "rate_limit = 0" # not about RRL (test_rrl.sh): lab clients share a /24
		fi
		echo "[key 1]"
		echo "file = $DL_KEY"
		echo "[service www]"
		echo "name = $DL_NAME"
		echo "pool = $DL_POOL4"
		echo "pool6 = $DL_POOL6"
		echo "server = $DL_SERVER4"
		echo "server6 = $DL_SERVER6"
		echo "honeypot = $DL_HPOT4"
		echo "honeypot6 = $DL_HPOT6"
		echo "window = $DL_WINDOW"
		echo "grace = $DL_GRACE"
		echo "binding = $DL_BINDING"
		echo "max_open = $DL_MAX_OPEN"
		echo "rotate = 0"
		if [ "$role" = dns ]; then
			# with a controller, it assigns the slices and shares
			if [ "$DL_CONTROLLER" != 1 ]; then
				echo "slice = ${DL_SLICE4[$n]}"
				echo "slice6 = ${DL_SLICE6[$n]}"
				echo "share = ${DL_SHARE[$n]}"
			fi
			for g in gw1 gw2; do
				echo "[peer $g]"
				echo "role = gateway"
				echo "key = 1"
				echo "address = ${DL_ADDR4[$g]}:$DL_PEER_PORT"
			done
		elif [ "$role" = gateway ]; then
			for d in dns1 dns2; do
				echo "[peer $d]"
				echo "role = dns"
				echo "key = 1"
				echo "from = ${DL_ADDR4[$d]}/32"
			done
		else
			for d in gw1 gw2 dns1 dns2; do
				echo "[peer $d]"
				case "$d" in gw*) echo "role = gateway" ;; *) echo "role = dns" ;; esac
				echo "key = 1"
				echo "from = ${DL_ADDR4[$d]}/32"
			done
		fi
		if [ "$DL_CONTROLLER" = 1 ] && [ "$role" != controller ]; then
			echo "[peer ctl]"
			echo "role = controller"
			echo "key = 1"
			echo "address = ${DL_ADDR4[ctl]}:$DL_PEER_PORT"
		fi
	} >"$f"
}

# distlab_confs: the four configurations, in DL_CONF[node].
distlab_confs() {
	local n
	for n in "${DL_NODES[@]}"; do
		DL_CONF[$n]=$LAB_TMP/$n.conf
		distlab_conf "$n" "${DL_CONF[$n]}"
	done
}

# poll_until TIMEOUT_S CMD...: CMD every 0.1 s until it succeeds (bounded)
poll_until() {
	local limit=$1 deadline; shift
	deadline=$((SECONDS + limit))
	while :; do
		"$@" && return 0
		[ "$SECONDS" -ge "$deadline" ] && return 1
		sleep 0.1
	done
}
# field NAME: the word after NAME in stdin's first line that has it
field() { gw_value "$@"; }
# gtool NS ARGS...: gwtool.py in a namespace (at most 60 s)
gtool() {
	local ns=$1; shift
	timeout 60 ip netns exec "$ns" "$GW_PY" "$GWLAB_DIR/gwtool.py" "$@"
}
# proc_state PID: the state letter of a process (R S T ...)
proc_state() {
	local st
	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	st=${st##*) }
	echo "${st%% *}"
}

# dl_ctl NODE ARGS...: choreoctl on the node's control socket (a path:
# reachable from any network namespace).
dl_ctl() {
	local n=$1; shift
	"$GW_CHOREOCTL" -s "${DL_SOCK[$n]}" "$@"
}

# dl_link_state NODE PEER: "up", "down", "connecting", ... (or nothing)
dl_link_state() {
	dl_ctl "$1" status 2>/dev/null | awk -v p="$2" '$1 == "peer" && $2 == p { print $3; exit }'
}

# dl_start NODE [WAIT_S]: start choreod for NODE in its namespace; wait
# until its control socket answers (and, for a DNS node, DNS).
dl_start() {
	local n=$1 limit=${2:-10} deadline
	DL_STARTS[$n]=$((DL_STARTS[$n] + 1))
	DL_LOG[$n]=$LAB_TMP/$n.${DL_STARTS[$n]}.log
	lab_spawn "${DL_NS[$n]}" "${DL_LOG[$n]}" "$GW_CHOREOD" -c "${DL_CONF[$n]}"
	DL_PID[$n]=$LAB_LAST_PID
	deadline=$((SECONDS + limit))
	until dl_ctl "$n" status >/dev/null 2>&1; do
		if ! lab_alive "${DL_PID[$n]}" || [ "$SECONDS" -ge "$deadline" ]; then
			lab_log "choreod $n did not come up; its log:"
			sed 's/^/#   /' "${DL_LOG[$n]}" >&2
			return 1
		fi
		sleep 0.05
	done
	case "$n" in
	dns*) lab_wait_dns "$RES" "${DL_ADDR4[$n]}" 53 "$limit" "${DL_PID[$n]}" || return 1 ;;
	esac
	return 0
}

# dl_stop NODE: SIGTERM, bounded wait.
dl_stop() {
	[ -n "${DL_PID[$1]:-}" ] && lab_stop "${DL_PID[$1]}"
	DL_PID[$1]=""
}

# dl_wait_links LIMIT_S: until every DNS node has both gateways up.
dl_wait_links() {
	local limit=$1 deadline d g ok
	deadline=$((SECONDS + limit))
	while :; do
		ok=1
		for d in dns1 dns2; do
			for g in gw1 gw2; do
				[ "$(dl_link_state "$d" "$g")" = up ] || ok=0
			done
		done
		[ "$ok" = 1 ] && return 0
		[ "$SECONDS" -ge "$deadline" ] && return 1
		sleep 0.1
	done
}

# distlab_start_all: the controller and the gateways first (they listen),
# then the DNS nodes.
distlab_start_all() {
	if [ "$DL_CONTROLLER" = 1 ]; then dl_start ctl || return 1; fi
	dl_start gw1 || return 1
	dl_start gw2 || return 1
	dl_start dns1 || return 1
	dl_start dns2 || return 1
	dl_wait_links 10
}

# dl_nft NODE ARGS...: nft in a gateway's namespace.
dl_nft() {
	local n=$1; shift
	ip netns exec "${DL_NS[$n]}" nft "$@"
}

# dl_set_elems NODE SET: the elements of a set of a gateway's table.
dl_set_elems() {
	local GW=${DL_NS[$1]} GW_TABLE=${DL_TABLE[$1]}
	gw_set_elems "$2"
}

# dl_set_count NODE SET: number of elements (nft's text output, no python).
dl_set_count() {
	dl_nft "$1" list set inet "${DL_TABLE[$1]}" "$2" 2>/dev/null |
		sed -n '/elements = {/,/}/p' | grep -oE '([0-9]{1,3}\.){3}[0-9]{1,3}|[0-9a-f:]*:[0-9a-f:]+' |
		grep -c .
}

# dl_pool_line NODE POOL FIELD: a number from the "pool POOL ..." line of a
# DNS node's status (answers opened reused open_now).
dl_pool_field() {
	dl_ctl "$1" status 2>/dev/null | awk -v p="$2" -v f="$3" '
		$1 == "pool" && $2 == p { for (i = 3; i < NF; i++) if ($i == f) { print $(i + 1); exit } }'
}

# dl_gw_pool_field NODE POOL FIELD: from the "gateway:" line under the pool
# on a gateway (to_server to_honeypot bindings asked open).
dl_gw_pool_field() {
	dl_ctl "$1" status 2>/dev/null | awk -v p="$2" -v f="$3" '
		$1 == "pool" && $2 == p { want = 1; next }
		want && $1 == "gateway:" { for (i = 2; i < NF; i++) if ($i == f) { print $(i + 1); exit } }'
}

# dl_field NODE LINE_START FIELD: the word after FIELD on the first line of
# the node's status starting with LINE_START (e.g. "gateways", "peer gw1").
dl_field() {
	dl_ctl "$1" status 2>/dev/null | awk -v s="$2" -v f="$3" '
		index($0, s " ") == 1 { for (i = 1; i < NF; i++) if ($i == f) { print $(i + 1); exit } }'
}

# dl_tool ARGS...: disttool.py (run from the root namespace: it enters
# the namespaces it names itself); stopped after DL_TOOL_LIMIT seconds.
DL_TOOL_LIMIT=${DL_TOOL_LIMIT:-150}
dl_tool() {
	timeout "$DL_TOOL_LIMIT" "$GW_PY" "$DL_TOOL" "$@"
}

# distlab_write_tool: $LAB_TMP/disttool.py, clients that act from several
# network namespaces in one process (setns(2) before each socket is made;
# a socket stays in the namespace it was made in). It uses gwtool.py's
# DNS and connection code.
distlab_write_tool() {
	DL_TOOL=$LAB_TMP/disttool.py
	cat >"$DL_TOOL" <<'PYEOF'
#!/usr/bin/env python3
"""disttool: the distributed lab's clients (written by tests/lab/distlab.sh).

  tries   N times: a fresh client of one network asks the resolver, connects
          to the answer through its gateway, and at once a fresh client of
          the other network connects to the same address through the other
          gateway; prints a summary line and one '#' line per misroute
  ask     direct questions to one DNS node, one after the other, timed;
          optionally each NOERROR answer connected at once from another
          namespace; prints a summary line
"""
import argparse
import ctypes
import ipaddress
import os
import sys
import time

sys.path.insert(0, os.environ["GWLAB_DIR"])
import gwtool as g  # noqa: E402

LIBC = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000
FDS = {}


def enter(ns):
    fd = FDS.get(ns)
    if fd is None:
        fd = FDS[ns] = os.open("/run/netns/" + ns, os.O_RDONLY | os.O_CLOEXEC)
    if LIBC.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "setns " + ns + ": " + os.strerror(e))


def node_of(addr, slices):
    a = ipaddress.ip_address(addr)
    for name, net in slices:
        if a.version == net.version and a in net:
            return name
    return "outside"


def parse_slices(spec):
    out = []
    for item in spec.split(","):
        if item.strip():
            name, net = item.split("=", 1)
            out.append((name.strip(), ipaddress.ip_network(net.strip())))
    return out


def cmd_tries(a):
    slices = parse_slices(a.slices)
    ports = [int(p) for p in a.ports.split(",")]
    base_a = ipaddress.ip_address(a.src)
    base_b = ipaddress.ip_address(a.cross_src)
    qtype = "AAAA" if base_a.version == 6 else "A"
    t = {"dnsfail": 0, "server": 0, "misroutes": 0, "cross_server": 0,
         "cross_misroutes": 0}
    by_node, addrs, lines = {}, set(), []
    start = time.monotonic()
    for i in range(a.count):
        src, other = str(base_a + i), str(base_b + i)
        port = ports[i % len(ports)]
        enter(a.ns)
        rcode, got, _ = g.ask(a.resolver, src, a.name, qtype, True, 2.0, 2)
        if rcode != "NOERROR" or not got:
            t["dnsfail"] += 1
            lines.append(f"# {src}: DNS {rcode}")
            continue
        dst = got[0]
        addrs.add(dst)
        node = node_of(dst, slices)
        by_node[node] = by_node.get(node, 0) + 1
        host = g.connect(src, dst, port, a.timeout)
        enter(a.cross_ns)
        host2 = g.connect(other, dst, port, a.timeout)
        if host == "server":
            t["server"] += 1
        else:
            t["misroutes"] += 1
            lines.append(f"# misroute: {src} -> {dst}:{port} ({node}) reached {host}")
        if host2 == "server":
            t["cross_server"] += 1
        else:
            t["cross_misroutes"] += 1
            lines.append(f"# cross misroute: {other} -> {dst}:{port} ({node}) reached {host2}")
    for line in lines[:20]:
        print(line)
    print(f"tries {a.count} " + " ".join(f"{k} {v}" for k, v in t.items())
          + " " + " ".join(f"{n} {by_node.get(n, 0)}" for n, _ in slices)
          + f" outside {by_node.get('outside', 0)} distinct {len(addrs)}"
          + f" seconds {time.monotonic() - start:.1f}")
    return 0


def cmd_ask(a):
    base = ipaddress.ip_address(a.src)
    qtype = a.type
    tally, ms, addrs = {}, [], []
    via = {"server": 0, "honeypot": 0, "none": 0, "other": 0}
    for i in range(a.count):
        enter(a.ns)
        src = str(base + i)
        t0 = time.monotonic()
        rcode, got, _ = g.ask(a.server, src, a.name, qtype, False, a.timeout, 1)
        ms.append((time.monotonic() - t0) * 1000)
        tally[rcode] = tally.get(rcode, 0) + 1
        if rcode == "NOERROR" and got:
            addrs.append(got[0])
            if a.via_ns:
                enter(a.via_ns)
                h = g.connect(str(ipaddress.ip_address(a.via_src) + i), got[0], 22, 3.0)
                via[h] = via.get(h, 0) + 1
        if a.pause:
            time.sleep(a.pause)
    ms.sort()
    print(" ".join(f"{k.lower()} {tally.get(k, 0)}" for k in ("NOERROR", "SERVFAIL", "TIMEOUT"))
          + f" ms_min {ms[0]:.0f} ms_p50 {ms[len(ms) // 2]:.0f}"
          + f" ms_p99 {ms[min(len(ms) - 1, len(ms) * 99 // 100)]:.1f} ms_max {ms[-1]:.0f}"
          + (" via_server {server} via_other {o}".format(
              server=via["server"], o=via["honeypot"] + via["none"] + via["other"])
             if a.via_ns else "")
          + " addrs " + ",".join(addrs))
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("tries")
    p.add_argument("--resolver", required=True)
    p.add_argument("--name", default="www.example.test")
    p.add_argument("--ns", required=True)
    p.add_argument("--src", required=True)
    p.add_argument("--cross-ns", required=True)
    p.add_argument("--cross-src", required=True)
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--ports", default="22,25,80,443")
    p.add_argument("--slices", default="")
    p.add_argument("--timeout", type=float, default=3.0)
    p.set_defaults(fn=cmd_tries)
    p = sub.add_parser("ask")
    p.add_argument("--server", required=True)
    p.add_argument("--name", default="www.example.test")
    p.add_argument("--type", default="A")
    p.add_argument("--ns", required=True)
    p.add_argument("--src", required=True)
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--timeout", type=float, default=2.0)
    p.add_argument("--pause", type=float, default=0.0)
    p.add_argument("--via-ns", default="")
    p.add_argument("--via-src", default="")
    p.set_defaults(fn=cmd_ask)
    a = ap.parse_args()
    return a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
PYEOF
	export GWLAB_DIR
}

# ---- net A's LAN: both gateways on one segment with net A (failover) ----------
#
# distlab_neta_lan (after distlab_up, IPv4 only): a bridge "lana" in cliA
# with a port to each gateway, 198.51.100.32/28: cliA .34, gw1 .33, gw2 .35
# (and, for keepalived, the virtual address .46; on the core 192.0.2.3).
# Nothing changes until dl_neta_via moves net A's routes onto it; the /30
# link cliA-gw1 of distlab_net stays (IPv6 keeps using it).
#
#     dl_neta_via gw1|gw2|vip   # cliA's routes to the core and the pool, the
#                               # gateways' routes to net A, and the core
#                               # hosts' routes to net A, via that gateway
#     dl_gw_fail gw1            # its links down, forwarding off
#     dl_gw_back gw1            # links up, forwarding on, its routes back
DL_LANA4=198.51.100.32/28
declare -A DL_LANA_ADDR4=([clia]=198.51.100.34 [gw1]=198.51.100.33 [gw2]=198.51.100.35
	[vip]=198.51.100.46)
DL_CORE_VIP4=192.0.2.3
DL_NETA_VIA=gw1   # where net A's routes point (dl_neta_via)

distlab_neta_lan() {
	local g
	lab_addr_ok "$DL_LANA4" && lab_addr_ok "$DL_CORE_VIP4" || lab_die "net A's LAN outside the lab ranges"
	ip -n "$CLIA" link add lana type bridge stp_state 0 forward_delay 0 ||
		lab_die "bridge lana in cliA failed"
	ip -n "$CLIA" link set lana up || lab_die "lana up failed"
	lab_addr "$CLIA" lana "${DL_LANA_ADDR4[clia]}/28"
	for g in gw1 gw2; do
		lab_veth "$CLIA" "la$g" "${DL_NS[$g]}" lana
		ip -n "$CLIA" link set "la$g" master lana || lab_die "lana port la$g failed"
		lab_addr "${DL_NS[$g]}" lana "${DL_LANA_ADDR4[$g]}/28"
	done
}

# dl_neta_via gw1|gw2|vip: net A's routes (both directions) through it.
dl_neta_via() {
	local via=$1 lan core p n
	lan=${DL_LANA_ADDR4[$via]}
	case "$via" in
	vip) core=$DL_CORE_VIP4 ;;
	*) core=${DL_ADDR4[$via]} ;;
	esac
	for p in 192.0.2.0/24 203.0.113.0/24 198.19.0.0/16; do
		ip -n "$CLIA" route replace "$p" via "$lan" || return 1
	done
	for n in gw1 gw2; do
		ip -n "${DL_NS[$n]}" route replace "$DL_NETA4" via "${DL_LANA_ADDR4[clia]}" 2>/dev/null
	done
	for n in srv hpot res dns1 dns2 ctl; do
		[ -n "${DL_NS[$n]:-}" ] || continue
		ip -n "${DL_NS[$n]}" route replace "$DL_NETA4" via "$core" || return 1
	done
	DL_NETA_VIA=$via
}

# dl_gw_links NODE up|down: every link of a gateway's namespace (not lo).
dl_gw_links() {
	local n=$1 st=$2 d
	for d in $(ip -n "${DL_NS[$n]}" -o link show | awk -F': ' '{ print $2 }' | cut -d@ -f1); do
		[ "$d" = lo ] && continue
		ip -n "${DL_NS[$n]}" link set "$d" "$st" || return 1
	done
}

# dl_quiet CMD...: CMD with its stderr dropped (retried in poll_until)
dl_quiet() { "$@" 2>/dev/null; }

# dl_gw_fail NODE: the gateway stops forwarding entirely (links down,
# forwarding off); its choreod keeps running, cut off.
dl_gw_fail() {
	# (keep_addr_on_down: its IPv6 addresses are there when the links are
	# back, as after a cable pulled and put back)
	lab_in "${DL_NS[$1]}" sysctl -q -w net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0 \
		net.ipv6.conf.all.keep_addr_on_down=1 >/dev/null || return 1
	dl_gw_links "$1" down
}

# dl_gw_back NODE: links up, forwarding on, its routes to its client
# networks back (a link down drops them).
dl_gw_back() {
	local n=$1 ns=${DL_NS[$1]}
	dl_gw_links "$n" up || return 1
	# (the connected routes come back with the carrier: wait for them)
	poll_until 3 eval '[ "$(ip -n "$ns" -4 route show scope link | grep -c .)" -ge 2 ]'
	lab_in "$ns" sysctl -q -w net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
		>/dev/null || return 1
	case "$n" in
	gw1)
		if ip -n "$ns" link show lana >/dev/null 2>&1; then
			poll_until 3 dl_quiet ip -n "$ns" route replace "$DL_NETA4" via "${DL_LANA_ADDR4[clia]}"
		else
			poll_until 3 dl_quiet ip -n "$ns" route replace "$DL_NETA4" via 198.51.100.2
		fi
		poll_until 3 dl_quiet ip -n "$ns" -6 route replace "$DL_NETA6" via 2001:db8:f1::2 ;;
	gw2)
		if ip -n "$ns" link show lana >/dev/null 2>&1; then
			poll_until 3 dl_quiet ip -n "$ns" route replace "$DL_NETA4" via "${DL_LANA_ADDR4[clia]}"
		fi
		poll_until 3 dl_quiet ip -n "$ns" route replace "$DL_NETB4" via 198.51.100.6
		poll_until 3 dl_quiet ip -n "$ns" -6 route replace "$DL_NETB6" via 2001:db8:f2::2
		poll_until 3 dl_quiet ip -n "$ns" route replace "$DL_SCANNET4" via 198.51.100.10 ;;
	esac
}

# ---- keepalived: the virtual addresses of net A's LAN and the core --------------
#
# dl_keepalived NODE PRIORITY [preempt]: keepalived (VRRP only, version 3,
# adverts every 0.2 s, unicast to the other gateway) in a gateway's
# namespace: one sync group moving two virtual addresses together, net A's
# side (DL_LANA_ADDR4[vip] on lana) and the core's (DL_CORE_VIP4 on eth0).
# Both start BACKUP; without "preempt", nopreempt: a gateway that comes back
# does not take the addresses back. DL_KA_PID[NODE] is its PID; its log
# $LAB_TMP/keepalived-NODE.log.
declare -A DL_KA_PID=()
dl_keepalived() {
	local n=$1 prio=$2 pre=${3:-} d=$LAB_TMP/keepalived-$1 other lan_peer core_peer np=nopreempt
	command -v keepalived >/dev/null || { lab_log "keepalived is missing (scripts/install-deps.sh test)"; return 1; }
	case "$n" in gw1) other=gw2 ;; *) other=gw1 ;; esac
	lan_peer=${DL_LANA_ADDR4[$other]} core_peer=${DL_ADDR4[$other]}
	[ "$pre" = preempt ] && np=""
	mkdir -p "$d"
	cat >"$d/keepalived.conf" <<KAEOF
# generated by distlab.sh: keepalived of $n
global_defs {
    router_id ${LAB_NAME}_$n
    vrrp_version 3
    vrrp_garp_master_delay 1
    vrrp_garp_master_repeat 3
    script_user root
}
vrrp_sync_group site {
    group {
        lan
        core
    }
}
vrrp_instance lan {
    state BACKUP
    $np
    interface lana
    virtual_router_id 51
    priority $prio
    advert_int 0.2
    unicast_src_ip ${DL_LANA_ADDR4[$n]}
    unicast_peer {
        $lan_peer
    }
    virtual_ipaddress {
        ${DL_LANA_ADDR4[vip]}/28 dev lana
    }
}
vrrp_instance core {
    state BACKUP
    $np
    interface eth0
    virtual_router_id 52
    priority $prio
    advert_int 0.2
    unicast_src_ip ${DL_ADDR4[$n]}
    unicast_peer {
        $core_peer
    }
    virtual_ipaddress {
        $DL_CORE_VIP4/24 dev eth0
    }
}
KAEOF
	lab_spawn "${DL_NS[$n]}" "$LAB_TMP/keepalived-$n.log" keepalived -P -n -l -D \
		-f "$d/keepalived.conf" -p "$d/keepalived.pid" -r "$d/vrrp.pid" -c "$d/checkers.pid"
	DL_KA_PID[$n]=$LAB_LAST_PID
}

# dl_has_vip NODE: the gateway holds both virtual addresses.
dl_has_vip() {
	ip -n "${DL_NS[$1]}" -4 addr show dev lana 2>/dev/null | grep -q " ${DL_LANA_ADDR4[vip]}/" &&
		ip -n "${DL_NS[$1]}" -4 addr show dev eth0 2>/dev/null | grep -q " $DL_CORE_VIP4/"
}
