# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# The gateway lab of DESIGN.md ("Test network"), on top of lib.sh: six
# network namespaces joined by veth pairs, with gw as the router between
# every pair of hosts.
#
#   gw    choreod: DNS on $GW_DNS4 and $GW_DNS6, NAT (its own nftables
#         table); forwarding on. The pools $GW_POOL4 / $GW_POOL6 are routed
#         to it by every other host.
#   srv   the protected server  $GW_SERVER4 / $GW_SERVER6   (banner.py "server")
#   hpot  the honeypot          $GW_HPOT4 / $GW_HPOT6       (banner.py "honeypot")
#   res   Unbound, a caching resolver, $GW_RES4 / $GW_RES6, with a stub zone
#         for example.test pointing at choreod; ECS off
#   cli   clients: every address of 198.18.0.0/16 and 2001:db8:18::/48 is
#         local there (AnyIP), so any of them can be a client's source
#   scan  the scanner $GW_SCAN4 / $GW_SCAN6 (and any of 198.19.128.0/17)
#
# Replies from srv and hpot go back through gw, whose conntrack undoes the
# DNAT: the server and the honeypot see the real client address.
#
# Use from a bash script:
#
#     . "$(dirname "$0")/gwlab.sh"      # also sources lib.sh
#     gwlab_init gateway                # lab_init + tools + copies of the binaries
#     gwlab_up                          # namespaces, links, services, Unbound
#     gwlab_conf "$LAB_TMP/c.conf" window=2 ttl=2 max_open=8
#     gwlab_choreod_start "$LAB_TMP/c.conf"
#     gw_ask 198.18.1.1 "$GW_DNS4"      # -> "NOERROR 203.0.113.77"
#     gw_connect 198.18.1.1 203.0.113.77 22   # -> "server"
#
# Everything is removed by lib.sh's EXIT trap, also on failure.
#
# Options for load runs (tests/lab/bench-*.sh), in the environment; unset,
# nothing changes:
#   GWLAB_TLS=0              port 443 speaks plain text (choreo-load has no TLS)
#   GWLAB_BANNER_WORKERS=N   banner.py processes per host (SO_REUSEPORT)
#   GWLAB_BANNER_BACKLOG=N   their listen() backlog (default 1024)
#   GWLAB_BANNER_LITE=1      banner.py --lite (cheaper; no TLS, greet and close)

export PYTHONDONTWRITEBYTECODE=1
GWLAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GWLAB_ROOT=$(cd "$GWLAB_DIR/../.." && pwd)
. "$GWLAB_DIR/lib.sh"

# ---- addresses (lab ranges only) ------------------------------------------
# The IPv4 DNS address is inside the pool, as in DESIGN.md's example:
# choreod never hands it out and its table lets DNS to it through.
GW_DNS4=${GWLAB_DNS4:-203.0.113.53}
GW_DNS6=2001:db8:53::53
GW_POOL4=203.0.113.0/25
GW_POOL6=2001:db8:1::/64
GW_SERVER4=192.0.2.10
GW_SERVER6=2001:db8:2::10
GW_HPOT4=192.0.2.20
GW_HPOT6=2001:db8:2::20
GW_RES4=198.51.100.10
GW_RES6=2001:db8:51::10
GW_CLI_NET4=198.18.0.0/16
GW_CLI_NET6=2001:db8:18::/48
GW_SCAN4=198.19.0.7
GW_SCAN6=2001:db8:19::7
GW_SCAN_NET4=198.19.128.0/17
GW_ZONE=example.test
GW_NAME=www.example.test

GW="" SRV="" HPOT="" RES="" CLI="" SCAN=""   # namespace names
GW_TABLE=""          # choreod's nftables table (family inet)
GW_CTL_SOCK=""       # choreod's control socket
GW_CHOREOD_PID=""    # the running choreod, if any
GW_CHOREOD_LOG=""    # its stderr
GW_CHOREOD_STARTS=0
GW_UNBOUND_PID=""
GW_TLS=0             # 1 when port 443 speaks TLS
GW_CERT=""
GW_PY=""
GW_CHOREOD="" GW_CHOREOCTL=""

# gwlab_init NAME: lab_init, check the tools, copy the binaries (other
# builds may replace build/ while the lab runs).
gwlab_init() {
	local tool
	lab_init "$1"
	for tool in dig nft python3; do
		command -v "$tool" >/dev/null || lab_die "$tool is missing (scripts/install-deps.sh test)"
	done
	if [ -x /usr/bin/python3 ]; then GW_PY=/usr/bin/python3; else GW_PY=$(command -v python3); fi
	GW_CHOREOD=${CHOREOD:-$GWLAB_ROOT/build/choreod}
	GW_CHOREOCTL=${CHOREOCTL:-$GWLAB_ROOT/build/choreoctl}
	[ -x "$GW_CHOREOD" ] && [ -x "$GW_CHOREOCTL" ] ||
		lab_die "build first: make build/choreod build/choreoctl"
	mkdir -p "$LAB_TMP/bin" "$LAB_TMP/run"
	cp "$GW_CHOREOD" "$LAB_TMP/bin/choreod" && cp "$GW_CHOREOCTL" "$LAB_TMP/bin/choreoctl" ||
		lab_die "cannot copy the binaries"
	GW_CHOREOD=$LAB_TMP/bin/choreod
	GW_CHOREOCTL=$LAB_TMP/bin/choreoctl
	GW_TABLE="choreo_$1_$$"
	GW_TABLE=${GW_TABLE:0:31}
	GW_CTL_SOCK=$LAB_TMP/run/control.sock
}

# gwlab_link NS DEV GWDEV ADDR4/LEN GWADDR4 ADDR6/LEN GWADDR6: a leaf joined
# to gw; the leaf routes every lab prefix through gw.
gwlab_link() {
	local ns=$1 dev=$2 gdev=$3 a4=$4 g4=$5 a6=$6 g6=$7 len4=${4#*/} len6=${6#*/} p
	lab_veth "$ns" "$dev" "$GW" "$gdev"
	lab_addr "$ns" "$dev" "$a4"
	lab_addr "$GW" "$gdev" "$g4/$len4"
	lab_addr "$ns" "$dev" "$a6"
	lab_addr "$GW" "$gdev" "$g6/$len6"
	for p in 192.0.2.0/24 198.51.100.0/24 203.0.113.0/24 198.18.0.0/15; do
		# (the leaf's own link prefix is more specific)
		lab_route "$ns" "$p" via "$g4"
	done
	lab_route "$ns" 2001:db8::/32 via "$g6"
}

# gwlab_net: the namespaces, links, addresses and routes.
gwlab_net() {
	local ns
	lab_netns GW gw
	lab_netns SRV srv
	lab_netns HPOT hpot
	lab_netns RES res
	lab_netns CLI cli
	lab_netns SCAN scan
	for ns in "$GW" "$SRV" "$HPOT" "$RES" "$CLI" "$SCAN"; do
		lab_in "$ns" sysctl -q -w net.ipv4.conf.all.rp_filter=0 \
			net.ipv4.conf.default.rp_filter=0 >/dev/null ||
			lab_die "sysctl in $ns failed"
	done
	lab_in "$GW" sysctl -q -w net.ipv4.ip_forward=1 \
		net.ipv6.conf.all.forwarding=1 >/dev/null || lab_die "forwarding on in gw failed"

	# IPv6 /127 links (RFC 6164): 2001:db8:2::10 and ::20 are the first
	# address of their link prefix, which on a longer prefix a router (gw)
	# would take as its own subnet-router anycast address
	gwlab_link "$SRV" eth0 srv 192.0.2.10/29 192.0.2.9 2001:db8:2::10/127 2001:db8:2::11
	gwlab_link "$HPOT" eth0 hpot 192.0.2.20/29 192.0.2.17 2001:db8:2::20/127 2001:db8:2::21
	gwlab_link "$RES" eth0 res 198.51.100.10/28 198.51.100.1 2001:db8:51::10/64 2001:db8:51::1
	gwlab_link "$CLI" eth0 cli 198.51.100.18/30 198.51.100.17 2001:db8:f18::2/64 2001:db8:f18::1
	gwlab_link "$SCAN" eth0 scan 198.19.0.7/24 198.19.0.1 2001:db8:19::7/64 2001:db8:19::1
	# clients: any address of their prefixes is local (AnyIP)
	lab_addr_ok "$GW_CLI_NET4" && lab_addr_ok "$GW_CLI_NET6" && lab_addr_ok "$GW_SCAN_NET4" ||
		lab_die "client prefixes outside the lab ranges"
	ip -n "$CLI" route add local "$GW_CLI_NET4" dev lo || lab_die "AnyIP $GW_CLI_NET4 failed"
	ip -n "$CLI" -6 route add local "$GW_CLI_NET6" dev lo || lab_die "AnyIP $GW_CLI_NET6 failed"
	ip -n "$SCAN" route add local "$GW_SCAN_NET4" dev lo || lab_die "AnyIP $GW_SCAN_NET4 failed"
	# (IPv6 bind() checks configured addresses, not local routes)
	lab_in "$CLI" sysctl -q -w net.ipv6.ip_nonlocal_bind=1 >/dev/null ||
		lab_die "ip_nonlocal_bind in cli failed"
	lab_route "$GW" "$GW_CLI_NET4" via 198.51.100.18
	lab_route "$GW" "$GW_CLI_NET6" via 2001:db8:f18::2
	lab_route "$GW" "$GW_SCAN_NET4" via 198.19.0.7
	# choreod's DNS addresses
	lab_addr "$GW" lo "$GW_DNS4/32"
	lab_addr "$GW" lo "$GW_DNS6/128"
}

# gwlab_cert: a self-signed certificate for www.example.test (port 443).
gwlab_cert() {
	GW_CERT=$LAB_TMP/tls/cert.pem
	mkdir -p "$LAB_TMP/tls"
	GW_TLS=0
	if [ "${GWLAB_TLS:-1}" = 0 ]; then
		lab_log "GWLAB_TLS=0: port 443 serves a plain banner, no TLS"
		return 0
	fi
	if ! command -v openssl >/dev/null; then
		lab_log "openssl is missing: port 443 serves a plain banner, no TLS"
		return 0
	fi
	if openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$LAB_TMP/tls/key.pem" -out "$GW_CERT" -days 2 \
		-subj "/CN=$GW_NAME" -addext "subjectAltName=DNS:$GW_NAME" \
		>"$LAB_TMP/tls/openssl.log" 2>&1; then
		GW_TLS=1
	else
		lab_log "openssl req failed: port 443 serves a plain banner, no TLS"
		rm -f "$GW_CERT"
	fi
}

# gwlab_banner NS NAME: banner.py on ports 22 25 80 443; log $LAB_TMP/NAME.conn.
gwlab_banner() {
	local ns=$1 name=$2 i
	: >"$LAB_TMP/$name.conn"
	lab_spawn "$ns" "$LAB_TMP/$name.out" "$GW_PY" "$GWLAB_DIR/banner.py" --name "$name" \
		--log "$LAB_TMP/$name.conn" --cert "$GW_CERT" --key "$LAB_TMP/tls/key.pem" \
		${GWLAB_BANNER_WORKERS:+--workers "$GWLAB_BANNER_WORKERS"} \
		${GWLAB_BANNER_BACKLOG:+--backlog "$GWLAB_BANNER_BACKLOG"} \
		$([ "${GWLAB_BANNER_LITE:-0}" = 1 ] && echo --lite)
	for i in $(seq 1 100); do
		grep -q '^ready' "$LAB_TMP/$name.out" 2>/dev/null && return 0
		lab_alive "$LAB_LAST_PID" || break
		sleep 0.1
	done
	cat "$LAB_TMP/$name.out" >&2
	lab_die "banner.py ($name) did not start"
}

# gwlab_zone FILE: the lab's zone (www is the rotor's, not in the file).
gwlab_zone() {
	cat >"$1" <<EOF
; the gateway lab's zone (tests/lab/gwlab.sh)
\$ORIGIN $GW_ZONE.
\$TTL 3600
@       IN SOA  ns1 hostmaster 2026112501 7200 3600 1209600 300
        IN NS   ns1
        IN MX   10 mail
        IN TXT  "choreo gateway lab"
ns1     IN A    $GW_DNS4
ns1     IN AAAA $GW_DNS6
mail    IN A    192.0.2.25
static  IN A    192.0.2.80
static  IN AAAA 2001:db8:2::80
EOF
}

# gwlab_unbound: Unbound in res, a stub zone for example.test -> choreod.
# Its own config in the temp dir: no daemon, no chroot, no user switch, no
# validator, no ECS (the subnetcache module is not loaded).
gwlab_unbound() {
	local d=$LAB_TMP/unbound
	command -v unbound >/dev/null || lab_die "unbound is missing (scripts/install-deps.sh test)"
	mkdir -p "$d"
	cat >"$d/unbound.conf" <<EOF
server:
    verbosity: 1
    interface: $GW_RES4
    interface: $GW_RES6
    port: 53
    outgoing-interface: $GW_RES4
    outgoing-interface: $GW_RES6
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
    access-control: 2001:db8:18::/48 allow
    access-control: 198.51.100.0/24 allow
    local-zone: "test." nodefault
    domain-insecure: "$GW_ZONE"
remote-control:
    control-enable: no
stub-zone:
    name: "$GW_ZONE"
    stub-addr: $GW_DNS4
    stub-addr: $GW_DNS6
EOF
	if command -v unbound-checkconf >/dev/null; then
		unbound-checkconf "$d/unbound.conf" >"$d/checkconf.log" 2>&1 ||
			{ cat "$d/checkconf.log" >&2; lab_die "unbound-checkconf failed"; }
	fi
	lab_spawn "$RES" "$d/unbound.log" unbound -d -c "$d/unbound.conf"
	GW_UNBOUND_PID=$LAB_LAST_PID
	lab_wait_dns "$CLI" "$GW_RES4" 53 10 "$GW_UNBOUND_PID" ||
		{ tail -n 20 "$d/unbound.log" >&2; lab_die "unbound did not start"; }
}

# gwlab_up: the whole lab but choreod.
gwlab_up() {
	gwlab_net
	gwlab_cert
	gwlab_banner "$SRV" server
	gwlab_banner "$HPOT" honeypot
	gwlab_zone "$LAB_TMP/example.test.zone"
	gwlab_unbound
}

# gwlab_conf FILE [key=value...]: a choreod configuration for the lab.
# Keys: ttl window binding max_open rotate max_bindings table listen pool6
# (pool6=none leaves IPv6 out); rate_limit (0, off, unless given: the lab's
# tests send hundreds of queries a second from one /24), rate_limit_slip,
# rate_limit_resolvers, rate_limit_resolver_rate (tests/lab/test_rrl.sh).
gwlab_conf() {
	local f=$1 kv; shift
	local ttl=5 window="" binding=600 max_open=16 rotate=0 max_bindings=""
	local table=$GW_TABLE listen="$GW_DNS4:53, [$GW_DNS6]:53" pool6=$GW_POOL6
	local pool=$GW_POOL4 grace="" ecs_resolvers="" ecs_prefix4="" window_claims=""
	local rate_limit=0 rate_limit_slip="" rate_limit_resolvers="" rate_limit_resolver_rate=""
	for kv in "$@"; do
		case "${kv%%=*}" in
		ttl|window|binding|max_open|rotate|max_bindings|table|listen|pool6|pool|grace|ecs_resolvers|ecs_prefix4|window_claims|rate_limit|rate_limit_slip|rate_limit_resolvers|rate_limit_resolver_rate)
			printf -v "${kv%%=*}" '%s' "${kv#*=}" ;;
		*) lab_die "gwlab_conf: unknown key ${kv%%=*}" ;;
		esac
	done
	{
		echo "# generated by gwlab.sh"
		echo "[daemon]"
		echo "control = $GW_CTL_SOCK"
		echo "table = $table"
		# GWLAB_REFRESH=readd: the fallback of kernels before 6.12, forced
		[ -n "${GWLAB_REFRESH:-}" ] && echo "element_refresh = $GWLAB_REFRESH"
		echo "[dns]"
		echo "listen = $listen"
		echo "zone = $GW_ZONE"
		echo "zonefile = $LAB_TMP/example.test.zone"
		echo "ttl = $ttl"
		[ -n "$ecs_resolvers" ] && echo "ecs_resolvers = $ecs_resolvers"
		[ -n "$ecs_prefix4" ] && echo "ecs_prefix4 = $ecs_prefix4"
		echo "rate_limit = $rate_limit"
		[ -n "$rate_limit_slip" ] && echo "rate_limit_slip = $rate_limit_slip"
		[ -n "$rate_limit_resolvers" ] && echo "rate_limit_resolvers = $rate_limit_resolvers"
		[ -n "$rate_limit_resolver_rate" ] && echo "rate_limit_resolver_rate = $rate_limit_resolver_rate"
		echo "[service www]"
		echo "name = $GW_NAME"
		echo "pool = $pool"
		echo "server = $GW_SERVER4"
		echo "honeypot = $GW_HPOT4"
		if [ "$pool6" != none ]; then
			echo "pool6 = $pool6"
			echo "server6 = $GW_SERVER6"
			echo "honeypot6 = $GW_HPOT6"
		fi
		[ -n "$window" ] && echo "window = $window"
		echo "binding = $binding"
		echo "max_open = $max_open"
		echo "rotate = $rotate"
		[ -n "$max_bindings" ] && echo "max_bindings = $max_bindings"
		[ -n "$grace" ] && echo "grace = $grace"
		[ -n "$window_claims" ] && echo "window_claims = $window_claims"
	} >"$f"
}

# gwlab_choreod_start CONF [WAIT_S]: start choreod in gw; wait until it
# answers DNS. Returns 1 (log on stderr) if it did not come up.
gwlab_choreod_start() {
	local conf=$1 limit=${2:-10}
	GW_CHOREOD_STARTS=$((GW_CHOREOD_STARTS + 1))
	GW_CHOREOD_LOG=$LAB_TMP/choreod.$GW_CHOREOD_STARTS.log
	lab_spawn "$GW" "$GW_CHOREOD_LOG" "$GW_CHOREOD" -c "$conf"
	GW_CHOREOD_PID=$LAB_LAST_PID
	if ! lab_wait_dns "$CLI" "$GW_DNS4" 53 "$limit" "$GW_CHOREOD_PID"; then
		lab_log "choreod did not come up; its log:"
		sed 's/^/#   /' "$GW_CHOREOD_LOG" >&2
		return 1
	fi
	return 0
}

# gwlab_choreod_stop: SIGTERM, bounded wait (lab_stop).
gwlab_choreod_stop() {
	[ -n "$GW_CHOREOD_PID" ] && lab_stop "$GW_CHOREOD_PID"
	GW_CHOREOD_PID=""
}

# gwlab_choreod_kill9: SIGKILL, then reap.
gwlab_choreod_kill9() {
	[ -n "$GW_CHOREOD_PID" ] || return 0
	kill -KILL "$GW_CHOREOD_PID" 2>/dev/null
	wait "$GW_CHOREOD_PID" 2>/dev/null
	GW_CHOREOD_PID=""
}

# ---- helpers for tests ------------------------------------------------------------

# gw_ns_of SRC: the namespace where SRC is a local address.
gw_ns_of() {
	case "$1" in
	198.18.*|2001:db8:18:*) echo "$CLI" ;;
	198.19.*|2001:db8:19:*) echo "$SCAN" ;;
	"$GW_RES4"|"$GW_RES6") echo "$RES" ;;
	*) lab_die "no lab host has source address $1" ;;
	esac
}

# gw_tool SRC ARGS...: gwtool.py in the namespace of SRC.
gw_tool() {
	local ns
	ns=$(gw_ns_of "$1") || return 1
	shift
	ip netns exec "$ns" "$GW_PY" "$GWLAB_DIR/gwtool.py" "$@"
}

# gw_connect SRC DST PORT: connect from SRC, read the banner; prints
# "server", "honeypot" or "none".
gw_connect() {
	gw_tool "$1" connect --src "$1" --dst "$2" --port "${3:-80}"
}

# gw_load_merge FILE: choreo-load's report lines (one per generator)
# summed into one: rates and counts summed, gen_cpu, saturated and *_max_ms
# the highest, averages the mean, fractions x/y summed part by part; then
# generators=N and gen_cpu_parts (each generator's CPU).
gw_load_merge() {
	awk '
	{
		for (i = 1; i <= NF; i++) {
			k = substr($i, 1, index($i, "=") - 1); v = substr($i, index($i, "=") + 1)
			if (NR == 1) { key[i] = k; nk = NF }
			if (k == "gen_cpu") gp = gp (NR > 1 ? "," : "") v
			if (k ~ /^(latency|mix|latency_sd|valid_share|duration|seed)$/) {
				if (NR == 1) val[k] = v
			} else if (v ~ /^[0-9]+\/[0-9]+$/) {
				split(v, xy, "/"); x[k] += xy[1]; y[k] += xy[2]; frac[k] = 1
			} else if (k ~ /(_max_ms|^gen_cpu|^saturated)$/) {
				if (NR == 1 || v + 0 > val[k] + 0) val[k] = v
			} else if (k ~ /_avg/) {
				sum[k] += v; avg[k] = 1
			} else {
				sum[k] += v; if (v ~ /\./) dec[k] = 1
			}
		}
	}
	END {
		if (NR == 0) exit
		for (i = 1; i <= nk; i++) {
			k = key[i]
			if (k in frac) o = x[k] "/" y[k]
			else if (k in avg) o = sprintf("%.2f", sum[k] / NR)
			else if (k in val) o = val[k]
			else if (k in dec) o = sprintf("%.1f", sum[k])
			else o = sum[k]
			printf "%s%s=%s", (i > 1 ? " " : ""), k, o
		}
		printf " generators=%d gen_cpu_parts=%s\n", NR, gp
	}' "$1"
}

# gw_ct_drops NS: conntrack drop + early_drop + insert_failed in a
# namespace, all CPUs.
gw_ct_drops() {
	lab_in "$1" cat /proc/net/stat/nf_conntrack 2>/dev/null | awk '
		function hex(s,   v, k) { v = 0; s = tolower(s)
			for (k = 1; k <= length(s); k++) v = v * 16 + index("0123456789abcdef", substr(s, k, 1)) - 1
			return v }
		NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
		{ t += hex($c["drop"]) + hex($c["early_drop"]) + hex($c["insert_failed"]) }
		END { print t + 0 }'
}

# gw_listen_overflows NS: TcpExt ListenOverflows + ListenDrops in a namespace.
gw_listen_overflows() {
	lab_in "$1" cat /proc/net/netstat 2>/dev/null | awk '
		$1 == "TcpExt:" && !h { for (i = 2; i <= NF; i++) c[$i] = i; h = 1; next }
		$1 == "TcpExt:" && h { print $c["ListenOverflows"] + $c["ListenDrops"]; exit }'
}

# gw_reach_report BOUND: one line per invalid/mixed run of RES_REACH
# ("reached/transactions" by "clients.latency.mix", over MIX_LIST x
# CLIENTS_LIST x LAT_LIST) against the share BOUND, allowing 3 standard
# deviations of a binomial count at that share; 1 when one is above.
gw_reach_report() {
	local bound=$1 mix n lat r y u v above=0
	for mix in invalid mixed; do
		[[ " $MIX_LIST " == *" $mix "* ]] || continue
		for n in $CLIENTS_LIST; do
			for lat in $LAT_LIST; do
				r=${RES_REACH[$n.$lat.$mix]:-}
				[ -n "$r" ] || continue
				y=${r%%/*} u=${r#*/}
				v=$(awk -v y="$y" -v u="$u" -v b="$bound" 'BEGIN {
					p = (u > 0 ? y / u : 0); tol = (u > 0 ? 3 * sqrt(b * (1 - b) / u) : 0)
					printf "%.1f %% %s", 100 * p, (p <= b + tol ? "within" : "ABOVE") }')
				echo "mix=$mix clients=$n latency=${lat}ms reached_server=$r = ${v% *} (${v##* } the bound)"
				[ "${v##* }" = ABOVE ] && above=1
			done
		done
	done
	return $above
}

# gw_ask SRC SERVER [TYPE [NAME [rd]]]: one DNS question from SRC; prints
# "RCODE ADDR...".
gw_ask() {
	local src=$1 server=$2 type=${3:-A} name=${4:-$GW_NAME} rd=${5:-}
	gw_tool "$src" ask --src "$src" --server "$server" --type "$type" --name "$name" \
		${rd:+--rd}
}

# gw_dig SRC SERVER ARGS...: dig from SRC.
gw_dig() {
	local src=$1 server=$2 ns; shift 2
	ns=$(gw_ns_of "$src") || return 1
	ip netns exec "$ns" dig -b "$src" @"$server" +time=2 +tries=1 +nocookie "$@"
}

# gw_ctl ARGS...: choreoctl on the lab's socket (in gw).
gw_ctl() {
	ip netns exec "$GW" "$GW_CHOREOCTL" -s "$GW_CTL_SOCK" "$@"
}

# gw_nft ARGS...: nft in gw (tests inspect the table with it; choreod never).
gw_nft() {
	ip netns exec "$GW" nft "$@"
}

# gw_set_elems SET [TABLE]: the elements of a set of the table, one a line
# ("a" or "a . b"); nothing if the set is empty; status 1 without the set.
gw_set_elems() {
	local out
	out=$(gw_nft -j list set inet "${2:-$GW_TABLE}" "$1" 2>/dev/null) || return 1
	"$GW_PY" -c '
import json, sys
def val(v):
    if isinstance(v, dict):
        if "elem" in v:
            return val(v["elem"]["val"])
        if "concat" in v:
            return " . ".join(val(x) for x in v["concat"])
        if "prefix" in v:
            return "%s/%s" % (v["prefix"]["addr"], v["prefix"]["len"])
        if "range" in v:
            return "-".join(val(x) for x in v["range"])
    return str(v)
for o in json.load(sys.stdin)["nftables"]:
    if "set" in o:
        for e in o["set"].get("elem", []):
            print(val(e))
' <<<"$out"
}

# gw_set_count SET: number of elements (or -1 without the set).
gw_set_count() {
	local e
	e=$(gw_set_elems "$1") || { echo -1; return 1; }
	grep -c . <<<"$e"
}

# gw_set_count_fast SET: the same from nft's text output (no python; for
# sampling the set many times a second).
gw_set_count_fast() {
	gw_nft list set inet "$GW_TABLE" "$1" 2>/dev/null |
		sed -n '/elements = {/,/}/p' | grep -oE '([0-9]{1,3}\.){3}[0-9]{1,3}|[0-9a-f:]*:[0-9a-f:]+' |
		grep -c .
}

# gw_hits HOST [PEER [PORT]]: connections logged by banner.py on HOST
# (server|honeypot), from PEER and to PORT if given.
gw_hits() {
	local f=$LAB_TMP/$1.conn
	awk -v p="${2:-}" -v port="${3:-}" \
		'(p == "" || $1 == p) && (port == "" || $2 == port) { n++ } END { print n + 0 }' "$f"
}

# gw_status_field SERVICE_LINE_REGEX FIELD: a number from `choreoctl status`
# after FIELD on the first line matching the regex.
gw_status_field() {
	gw_ctl status 2>/dev/null | awk -v re="$1" -v f="$2" '
		$0 ~ re { for (i = 1; i < NF; i++) if ($i == f) { print $(i + 1); exit } }'
}

# ---- helpers for load runs (tests/lab/bench-*.sh) ---------------------------

# gw_cpu_ticks PID...: utime + stime of these processes, in clock ticks
# (/proc/PID/stat fields 14 and 15; a process gone counts 0).
gw_cpu_ticks() {
	local pid t=0 st rest
	for pid in "$@"; do
		st=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
		rest=${st##*) }      # after "pid (comm) "
		# shellcheck disable=SC2086
		set -- $rest         # $1 = state (field 3): utime = $12, stime = $13
		t=$((t + ${12} + ${13}))
	done
	echo "$t"
}

# gw_ns_cpu_ticks NS: the same summed over every process in a lab namespace.
gw_ns_cpu_ticks() {
	# shellcheck disable=SC2046
	gw_cpu_ticks $(ip netns pids "$1" 2>/dev/null)
}

# gw_conntrack: "COUNT MAX" of gw's connection-tracking table.
gw_conntrack() {
	local c m
	c=$(lab_in "$GW" sysctl -n net.netfilter.nf_conntrack_count 2>/dev/null)
	m=$(lab_in "$GW" sysctl -n net.netfilter.nf_conntrack_max 2>/dev/null)
	echo "${c:-?} ${m:-?}"
}

# gw_load_run LOG ARGS...: choreo-load ARGS in cli (its stderr to LOG) while
# sampling, once a second, gw's conntrack count and the CPU of choreod, of
# srv and hpot (banner.py) and of the whole machine. Sets:
#   GW_LOAD_LINE      the generator's report line ("" if it printed none)
#   GW_LOAD_RC        its exit status
#   GW_LOAD_WALL      seconds it ran
#   GW_LOAD_CT_PEAK   the highest conntrack count seen; GW_LOAD_CT_END, _MAX
#   GW_LOAD_CHOREOD   choreod's CPU over the run, in cores (0.25 = 25 % of one)
#   GW_LOAD_SRV, GW_LOAD_HPOT   the same for the banner processes of srv, hpot
#   GW_LOAD_IDLE      share of the machine's CPU time left idle (0..1)
# Bounded: the generator is stopped after its --duration + 60 s.
# GW_LOAD_PARTS=K (default 1) splits --clients over K generators with
# consecutive --client-offset ranges (one process's open-file limit caps its
# clients); GW_LOAD_LINE then sums their lines (rates and counts summed,
# gen_cpu, saturated and the *_max_ms the highest, averages the mean) and
# adds gen_cpu_parts=a,b,...
GW_LOAD=${CHOREO_LOAD:-$GWLAB_ROOT/build/choreo-load}
gw_load_run() {
	local log=$1 out pid dur=0 a hz t0 t1 c0 c1 s0 s1 h0 h1 i0 i1 j0 j1 ct n=0 limit
	local parts=${GW_LOAD_PARTS:-1} clients=0 off=0 k pids=() args=() cn co
	shift
	for a in "$@"; do
		case "$n" in
		1) dur=$a ;;
		2) clients=$a ;;
		3) off=$a ;;
		esac
		n=0
		case "$a" in
		--duration) n=1 ;;
		--clients) n=2 ;;
		--client-offset) n=3 ;;
		esac
	done
	# (args = every option but --clients and --client-offset and their values)
	args=() n=0
	for a in "$@"; do
		if [ "$n" = 1 ]; then n=0; continue; fi
		case "$a" in
		--clients|--client-offset) n=1 ;;
		*) args+=("$a") ;;
		esac
	done
	[ "$parts" -ge 1 ] 2>/dev/null || parts=1
	[ "$clients" -ge "$parts" ] || parts=1
	limit=$(((dur + 60) * 10))
	hz=$(getconf CLK_TCK)
	out=$log.out
	read -r j0 i0 < <(awk '/^cpu /{t=0; for(k=2;k<=NF;k++) t+=$k; print t, $5+$6}' /proc/stat)
	c0=$(gw_cpu_ticks "$GW_CHOREOD_PID"); s0=$(gw_ns_cpu_ticks "$SRV"); h0=$(gw_ns_cpu_ticks "$HPOT")
	t0=$(date +%s.%N)
	: >"$log"
	for ((k = 0; k < parts; k++)); do
		cn=$((clients / parts + (k < clients % parts ? 1 : 0)))
		co=$((off + k * (clients / parts) + (k < clients % parts ? k : clients % parts)))
		lab_in "$CLI" "$GW_LOAD" "${args[@]}" --clients "$cn" --client-offset "$co" \
			>"$out.$k" 2>"$log.$k" </dev/null &
		pids+=("$!")
		LAB_PIDS+=("$!")
	done
	pid=${pids[0]}
	GW_LOAD_CT_PEAK=0 n=0
	while [ "$n" -lt "$limit" ]; do
		a=0
		for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && a=1; done
		[ "$a" = 1 ] || break
		if [ $((n % 10)) = 0 ]; then
			ct=$(lab_in "$GW" sysctl -n net.netfilter.nf_conntrack_count 2>/dev/null)
			[ "${ct:-0}" -gt "$GW_LOAD_CT_PEAK" ] && GW_LOAD_CT_PEAK=$ct
		fi
		sleep 0.1
		n=$((n + 1))
	done
	GW_LOAD_RC=0
	for pid in "${pids[@]}"; do
		kill -0 "$pid" 2>/dev/null && { lab_log "choreo-load overran: stopping it"; kill -TERM "$pid"; }
		wait "$pid" || GW_LOAD_RC=$?
	done
	t1=$(date +%s.%N)
	c1=$(gw_cpu_ticks "$GW_CHOREOD_PID"); s1=$(gw_ns_cpu_ticks "$SRV"); h1=$(gw_ns_cpu_ticks "$HPOT")
	read -r j1 i1 < <(awk '/^cpu /{t=0; for(k=2;k<=NF;k++) t+=$k; print t, $5+$6}' /proc/stat)
	read -r GW_LOAD_CT_END GW_LOAD_CT_MAX < <(gw_conntrack)
	[ "${GW_LOAD_CT_END:-0}" -gt "$GW_LOAD_CT_PEAK" ] 2>/dev/null && GW_LOAD_CT_PEAK=$GW_LOAD_CT_END
	for ((k = 0; k < parts; k++)); do
		cat "$log.$k" >>"$log"
		grep -m1 '^clients=' "$out.$k"
	done >"$out"
	if [ "$parts" = 1 ]; then
		GW_LOAD_LINE=$(head -n 1 "$out")
	elif [ "$(grep -c '^clients=' "$out")" = "$parts" ]; then
		GW_LOAD_LINE=$(gw_load_merge "$out")
	else
		GW_LOAD_LINE=""
	fi
	read -r GW_LOAD_WALL GW_LOAD_CHOREOD GW_LOAD_SRV GW_LOAD_HPOT GW_LOAD_IDLE < <(awk \
		-v t0="$t0" -v t1="$t1" -v hz="$hz" -v c="$((c1 - c0))" -v s="$((s1 - s0))" \
		-v h="$((h1 - h0))" -v j="$((j1 - j0))" -v i="$((i1 - i0))" 'BEGIN {
		w = t1 - t0; if (w <= 0) w = 1
		printf "%.1f %.2f %.2f %.2f %.2f\n", w, c / hz / w, s / hz / w, h / hz / w,
			(j > 0 ? i / j : 0) }')
}

# gw_value KEY: the word after KEY in the "key value key value" line on stdin.
gw_value() { awk -v f="$1" '{ for (i = 1; i < NF; i++) if ($i == f) { print $(i + 1); exit } }'; }

# gw_field LINE KEY: the value of KEY=value in a choreo-load report line.
gw_field() {
	awk -v k="$2" '{ for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) { print substr($i, length(k) + 2); exit } }' <<<"$1"
}
