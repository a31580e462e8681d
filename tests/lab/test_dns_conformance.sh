#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Differential DNS test: the same zone (conformance/example.test.zone) served
# by NSD and by choreod in a network namespace; every query of
# conformance/queries.txt is asked of both and the normalised replies must be
# equal (dig-normalise.awk says what is normalised and why). Then checks only
# choreod can pass: rotated answers for the protected name www, ECS, NOTIMP,
# FORMERR, BADVERS. TAP output; exits non-zero if anything failed.
#
# Lab: namespace "cli" (dig, 198.18.0.2, 2001:db8:ffff::2) joined by a veth
# pair to namespace "srv", where NSD listens on 198.51.100.153 and
# 2001:db8:53::153 and choreod on 198.51.100.53 and 2001:db8:53::53.
#
# Environment:
#   CHOREOD=path               the daemon (default build/choreod)
#   CONFORMANCE_PEER=nsd       compare NSD with a second NSD instead of
#                              choreod (checks the harness itself; the
#                              choreod-only checks are skipped)
#   CONFORMANCE_NSD_MINIMAL=0  run NSD with minimal-responses: no (NSD's own
#                              default: apex NS in the authority section of
#                              positive answers, MX/SRV/NS target addresses
#                              in additional). Default 1: minimal-responses:
#                              yes, which is what choreod implements (dns.c).
#   CONFORMANCE_ONLY=REGEX     ask only the corpus lines matching REGEX
#   LAB_KEEP=1                 keep the temp dir (configs, logs)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"

CHOREOD=${CHOREOD:-$root/build/choreod}
PEER=${CONFORMANCE_PEER:-choreod}
NORM="$here/dig-normalise.awk"
RAW="$here/dnsraw.pl"
CORPUS="$here/conformance/queries.txt"

NSD4=198.51.100.153
NSD6=2001:db8:53::153
SUT4=198.51.100.53       # the server under test: choreod (or the 2nd NSD)
SUT6=2001:db8:53::53
TTL=5                    # [dns] ttl of rotated answers
POOL4=203.0.113.0/25
POOL6=2001:db8:1::/64

for tool in dig perl awk diff; do
	command -v "$tool" >/dev/null || lab_die "$tool is missing"
done
command -v nsd >/dev/null || lab_die "nsd is missing (scripts/install-deps.sh test)"
if [ "$PEER" = choreod ] && [ ! -x "$CHOREOD" ]; then
	echo "not ok 1 - $CHOREOD exists (run make first, or CONFORMANCE_PEER=nsd)"
	echo "1..1"
	exit 1
fi

lab_init conf
lab_netns CLI cli
lab_netns SRV srv
lab_client_server "$CLI" "$SRV"
for a in $NSD4/32 $SUT4/32 $NSD6/128 $SUT6/128; do
	lab_addr "$SRV" lo "$a"
done

# ---- NSD ------------------------------------------------------------------
nsd_extra=""
[ "${CONFORMANCE_NSD_MINIMAL:-1}" = 1 ] && nsd_extra="    minimal-responses: yes"
mkdir -p "$LAB_TMP/nsd"
cp "$here/conformance/example.test.zone" "$LAB_TMP/nsd/"
NSD_EXTRA=$nsd_extra lab_nsd_conf "$LAB_TMP/nsd" example.test example.test.zone "$NSD4" "$NSD6"
lab_nsd_start "$SRV" "$LAB_TMP/nsd"
nsd_pid=$LAB_LAST_PID

# ---- the server under test ------------------------------------------------
sut_pid=""
if [ "$PEER" = nsd ]; then
	mkdir -p "$LAB_TMP/peer"
	cp "$here/conformance/example.test.zone" "$LAB_TMP/peer/"
	NSD_EXTRA=$nsd_extra lab_nsd_conf "$LAB_TMP/peer" example.test example.test.zone "$SUT4" "$SUT6"
	lab_nsd_start "$SRV" "$LAB_TMP/peer"
	sut_pid=$LAB_LAST_PID
	sut_log="$LAB_TMP/peer/nsd.stderr"
else
	mkdir -p "$LAB_TMP/choreod"
	cp "$here/conformance/example.test.zone" "$LAB_TMP/choreod/"
	cat >"$LAB_TMP/choreod/choreo.conf" <<EOF
# conformance test configuration (generated)
[daemon]
control = $LAB_TMP/choreod/control.sock
table = choreo_conf_$$

[dns]
listen = $SUT4:53, [$SUT6]:53
zone = example.test
zonefile = example.test.zone
ttl = $TTL
rate_limit = 0

[service www]
name = www.example.test
pool = $POOL4
pool6 = $POOL6
server = 192.0.2.10
server6 = 2001:db8:2::10
honeypot = 192.0.2.20
honeypot6 = 2001:db8:2::20
max_open = 16
EOF
	if out=$("$CHOREOD" -t -c "$LAB_TMP/choreod/choreo.conf" 2>&1); then
		tap_ok "choreod -t accepts the test configuration and zone"
	else
		tap_not_ok "choreod -t accepts the test configuration and zone"
		tap_diag <<<"$out"
	fi
	lab_spawn "$SRV" "$LAB_TMP/choreod/choreod.log" "$CHOREOD" -c "$LAB_TMP/choreod/choreo.conf"
	sut_pid=$LAB_LAST_PID
	sut_log="$LAB_TMP/choreod/choreod.log"
fi

started=$SECONDS
if lab_wait_dns "$CLI" "$NSD4" 53 10 "$nsd_pid" && lab_wait_dns "$CLI" "$NSD6" 53 5 "$nsd_pid"; then
	:
else
	tap_diag < "$LAB_TMP/nsd/nsd.stderr"
	lab_die "NSD did not start"
fi
if lab_wait_dns "$CLI" "$SUT4" 53 10 "$sut_pid" && lab_wait_dns "$CLI" "$SUT6" 53 5 "$sut_pid"; then
	tap_ok "$PEER answers on $SUT4 and [$SUT6] port 53, UDP and TCP"
else
	tap_not_ok "$PEER answers on $SUT4 and [$SUT6] port 53, UDP and TCP"
	lab_alive "$sut_pid" || tap_diag "$PEER exited"
	tail -n 30 "$sut_log" | tap_diag
	tap_done
	exit 1
fi
lab_log "servers up after $((SECONDS - started)) s"

# ---- the differential corpus ------------------------------------------------

# ask SERVER NAME TYPE OPTS...: dig from the client namespace.
ask() {
	local srv=$1; shift
	ip netns exec "$CLI" dig @"$srv" +nocookie +time=2 +tries=1 +ignore "$@" 2>&1
}

# normalise MODE_ANY MODE_ADDL UNIVERSE < dig output
normalise() {
	awk -v any="$1" -v addl="$2" -v universe="$3" -f "$NORM" | LC_ALL=C sort
}

# Parse the corpus, then ask each server everything in one dig batch (-f):
# one dig process per server instead of one per query keeps the test fast.
descs=() qs=() anys=() addls=() v6s=()
while IFS= read -r line || [ -n "$line" ]; do
	line=${line%%#*}
	read -r -a words <<<"$line"
	[ "${#words[@]}" -ge 2 ] || continue
	if [ -n "${CONFORMANCE_ONLY:-}" ] && ! [[ $line =~ $CONFORMANCE_ONLY ]]; then
		continue
	fi
	opts=() any=0 addl=0 v6=0
	for w in "${words[@]:2}"; do
		case "$w" in
		~any) any=1 ;;
		~addl) addl=1 ;;
		~v6) v6=1 ;;
		~*) lab_die "unknown modifier $w in $CORPUS" ;;
		*) opts+=("$w") ;;
		esac
	done
	descs+=("$(echo "$line" | sed 's/[[:space:]]\+/ /g; s/ $//')")
	qs+=("${words[0]} ${words[1]} ${opts[*]}")
	anys+=("$any") addls+=("$addl") v6s+=("$v6")
done <"$CORPUS"
qn=${#qs[@]}

DIGOPTS="+nocookie +time=2 +tries=1 +ignore"
: >"$LAB_TMP/batch.ref"; : >"$LAB_TMP/batch.sut"; : >"$LAB_TMP/batch.uni"
nuni=0 unis=()
for ((i = 0; i < qn; i++)); do
	ref=$NSD4 sut=$SUT4
	[ "${v6s[i]}" = 1 ] && ref=$NSD6 sut=$SUT6
	echo "@$ref $DIGOPTS ${qs[i]}" >>"$LAB_TMP/batch.ref"
	echo "@$sut $DIGOPTS ${qs[i]}" >>"$LAB_TMP/batch.sut"
	# ~addl: the complete additional section is NSD's over TCP
	if [ "${addls[i]}" = 1 ]; then
		echo "@$ref $DIGOPTS ${qs[i]} +tcp" >>"$LAB_TMP/batch.uni"
		nuni=$((nuni + 1))
		unis[i]=$nuni
	fi
done

# run_batch NAME: dig -f batch.NAME, split at each query's "; <<>> DiG"
# banner into NAME.1 .. NAME.N (a query without a reply has only its banner).
# Bounded: 2 s per unanswered query at worst, 90 s for the whole batch.
run_batch() {
	ip netns exec "$CLI" timeout 90 dig -f "$LAB_TMP/batch.$1" 2>"$LAB_TMP/batch.$1.stderr" |
		awk -v out="$LAB_TMP/$1" '/^; <<>> DiG / { if (f) close(f); n++; f = out "." n } f { print > f }'
}
run_batch ref
run_batch sut
[ "$nuni" -gt 0 ] && run_batch uni

for ((i = 0; i < qn; i++)); do
	k=$((i + 1)) uni=""
	for f in ref sut; do [ -f "$LAB_TMP/$f.$k" ] || : >"$LAB_TMP/$f.$k"; done
	if [ "${addls[i]}" = 1 ]; then
		uni="$LAB_TMP/universe.$k"
		touch "$LAB_TMP/uni.${unis[i]}"
		awk -f "$NORM" "$LAB_TMP/uni.${unis[i]}" | sed -n 's/^4 additional //p' >"$uni"
	fi
	normalise "${anys[i]}" "${addls[i]}" "$uni" <"$LAB_TMP/ref.$k" >"$LAB_TMP/ref.$k.n"
	normalise "${anys[i]}" "${addls[i]}" "$uni" <"$LAB_TMP/sut.$k" >"$LAB_TMP/sut.$k.n"
	if grep -q '^0a NO REPLY' "$LAB_TMP/ref.$k.n"; then
		# never let "both silent" pass: NSD answers every corpus query
		tap_not_ok "${descs[i]} # no reply from NSD (bad corpus line?)"
		tap_diag <"$LAB_TMP/batch.ref.stderr"
	elif d=$(diff -u --label "nsd" --label "$PEER" "$LAB_TMP/ref.$k.n" "$LAB_TMP/sut.$k.n"); then
		tap_ok "${descs[i]}"
	else
		tap_not_ok "${descs[i]}"
		tap_diag <<<"$d"
	fi
done
if ! lab_alive "$sut_pid"; then
	tap_diag "$PEER exited during the corpus; its log:"
	tail -n 30 "$sut_log" | tap_diag
	tap_done
	exit 1
fi
lab_log "corpus: $qn queries after $((SECONDS - started)) s"

# ---- choreod-only checks ----------------------------------------------------

# in_pool4 ADDR PREFIX / in_pool6 ADDR PREFIX (perl: no extra tools needed)
in_prefix() {
	perl -MSocket=inet_pton,AF_INET,AF_INET6 -e '
		my ($a, $p) = @ARGV; my ($net, $len) = split m{/}, $p;
		my $f = $a =~ /:/ ? AF_INET6 : AF_INET;
		my ($x, $y) = (inet_pton($f, $a), inet_pton($f, $net));
		exit 1 unless defined $x && defined $y;
		my $bits = unpack("B*", $x) ^ unpack("B*", $y);
		exit(substr(unpack("B*", $x), 0, $len) eq substr(unpack("B*", $y), 0, $len) ? 0 : 1);
	' "$1" "$2"
}

# check_rotated SERVER TYPE POOL [DIG OPTS]: one answer from the pool, aa, ttl.
check_rotated() {
	local srv=$1 type=$2 pool=$3 out rrs n addr ttl flags why=""; shift 3
	out=$(ask "$srv" www.example.test "$type" "$@")
	flags=$(sed -n 's/^;; flags: \([^;]*\);.*/\1/p' <<<"$out")
	rrs=$(sed -n '/^;; ANSWER SECTION:/,/^$/p' <<<"$out" | grep -v '^;' | grep -v '^$')
	n=$(grep -c . <<<"$rrs")
	read -r _ ttl _ rtype addr <<<"$(head -n1 <<<"$rrs")"
	grep -q 'status: NOERROR' <<<"$out" || why="$why rcode;"
	[[ " $flags " == *" aa "* ]] || why="$why no AA;"
	[ "$n" = 1 ] || why="$why $n answer records;"
	[ "${rtype:-}" = "$type" ] || why="$why type ${rtype:-none};"
	[ "${ttl:-}" = "$TTL" ] || why="$why ttl ${ttl:-none} (want $TTL);"
	[ -n "${addr:-}" ] && in_prefix "$addr" "$pool" || why="$why ${addr:-no address} not in $pool;"
	if [ -z "$why" ]; then
		tap_ok "www $type $* @$srv -> $addr (in $pool, aa, ttl $TTL)"
	else
		tap_not_ok "www $type $* @$srv -> in $pool, aa, ttl $TTL:$why"
		tap_diag <<<"$out"
	fi
}

if [ "$PEER" != choreod ]; then
	for c in "www A in the pool" "www AAAA in pool6" "rotation" "ECS echo" \
		"NOTIMP" "FORMERR" "BADVERS" "short packet dropped" "QR=1 dropped" \
		"RFC 9471 glue"; do
		tap_skip "$c" "choreod-only (CONFORMANCE_PEER=$PEER)"
	done
else
	check_rotated "$SUT4" A "$POOL4"
	check_rotated "$SUT4" AAAA "$POOL6"
	check_rotated "$SUT4" A "$POOL4" +tcp
	check_rotated "$SUT6" AAAA "$POOL6" +noedns

	# odd case: question echoed exactly, address from the pool
	out=$(ask "$SUT4" wWw.ExAmPlE.TeSt A)
	addr=$(sed -n '/^;; ANSWER SECTION:/,/^$/p' <<<"$out" | awk '$4 == "A" { print $5; exit }')
	if grep -q '^;wWw\.ExAmPlE\.TeSt\.[[:space:]]' <<<"$out" && [ -n "$addr" ] && in_prefix "$addr" "$POOL4"; then
		tap_ok "wWw.ExAmPlE.TeSt A: question case preserved, $addr from the pool"
	else
		tap_not_ok "wWw.ExAmPlE.TeSt A: question case preserved, address from the pool"
		tap_diag <<<"$out"
	fi

	# other types at the protected name: NODATA with the SOA
	out=$(ask "$SUT4" www.example.test TXT)
	if grep -q 'status: NOERROR' <<<"$out" && grep -q 'flags: qr aa' <<<"$out" &&
		grep -q 'ANSWER: 0, AUTHORITY: 1' <<<"$out" &&
		grep -qE '^example\.test\.[[:space:]]+300[[:space:]]+IN[[:space:]]+SOA' <<<"$out"; then
		tap_ok "www TXT: NODATA, aa, SOA (ttl 300) in authority"
	else
		tap_not_ok "www TXT: NODATA, aa, SOA (ttl 300) in authority"
		tap_diag <<<"$out"
	fi

	# rotation: 20 answers, all in the pool, more than one distinct
	addrs=$(for i in $(seq 1 20); do
		ask "$SUT4" www.example.test A +short | head -n1
	done)
	distinct=$(sort -u <<<"$addrs" | grep -c .)
	outside=$(while read -r a; do in_prefix "$a" "$POOL4" || echo "$a"; done <<<"$addrs")
	if [ "$distinct" -gt 1 ] && [ -z "$outside" ] && [ "$(grep -c . <<<"$addrs")" = 20 ]; then
		tap_ok "www A x20: $distinct distinct addresses, all in $POOL4"
	else
		tap_not_ok "www A x20: more than one distinct address, all in $POOL4 (got $distinct distinct)"
		tap_diag <<<"$addrs"
	fi
	addrs6=$(for i in $(seq 1 10); do
		ask "$SUT4" www.example.test AAAA +short | head -n1
	done)
	distinct=$(sort -u <<<"$addrs6" | grep -c .)
	if [ "$distinct" -gt 1 ]; then
		tap_ok "www AAAA x10: $distinct distinct addresses"
	else
		tap_not_ok "www AAAA x10: more than one distinct address (got $distinct)"
		tap_diag <<<"$addrs6"
	fi

	# ECS (RFC 7871): the option echoed, same family/source prefix/address,
	# with a scope prefix length
	out=$(ask "$SUT4" www.example.test A +subnet=198.18.5.0/24)
	ecs=$(sed -n 's/^; CLIENT-SUBNET: //p' <<<"$out")
	if [[ $ecs =~ ^198\.18\.5\.0/24/[0-9]+$ ]]; then
		tap_ok "www A +subnet=198.18.5.0/24: ECS echoed ($ecs)"
	else
		tap_not_ok "www A +subnet=198.18.5.0/24: ECS echoed with a scope (got '${ecs}')"
		tap_diag <<<"$out"
	fi
	# ECS on a static name: echoed too, scope 0 (the answer does not depend
	# on the client subnet)
	out=$(ask "$SUT4" static.example.test A +subnet=198.18.5.0/24)
	ecs=$(sed -n 's/^; CLIENT-SUBNET: //p' <<<"$out")
	if [ "$ecs" = "198.18.5.0/24/0" ]; then
		tap_ok "static A +subnet=198.18.5.0/24: ECS echoed with scope 0"
	else
		tap_not_ok "static A +subnet=198.18.5.0/24: ECS echoed with scope 0 (got '${ecs}')"
		tap_diag <<<"$out"
	fi

	# NOTIMP for opcodes other than QUERY (and NOTIFY)
	for op in status update; do
		out=$(ask "$SUT4" example.test SOA +opcode=$op)
		if grep -q 'status: NOTIMP' <<<"$out"; then
			tap_ok "opcode $op: NOTIMP"
		else
			tap_not_ok "opcode $op: NOTIMP"
			tap_diag <<<"$out"
		fi
	done

	# NOTIFY: choreod is no secondary (NSD without allow-notify: REFUSED)
	out=$(ask "$SUT4" example.test SOA +opcode=notify +norec)
	if grep -qE 'status: (REFUSED|NOTIMP)' <<<"$out"; then
		tap_ok "opcode notify: $(sed -n 's/.*status: \([A-Z]*\).*/\1/p' <<<"$out") (NSD: REFUSED)"
	else
		tap_not_ok "opcode notify: REFUSED or NOTIMP (NSD: REFUSED)"
		tap_diag <<<"$out"
	fi

	# AXFR over UDP is not a thing; over TCP choreod transfers nothing
	out=$(ip netns exec "$CLI" "$RAW" "$SUT4" 53 \
		"1234 0000 0001 0000 0000 0000 076578616d706c65047465737400 00fc 0001")
	if [[ $out =~ rcode=(NOTIMP|REFUSED|FORMERR) ]]; then
		tap_ok "AXFR over UDP: ${BASH_REMATCH[1]} (NSD: NOTIMP)"
	else
		tap_not_ok "AXFR over UDP: NOTIMP, REFUSED or FORMERR (NSD: NOTIMP)"
		tap_diag <<<"$out"
	fi
	out=$(ip netns exec "$CLI" "$RAW" -t "$SUT4" 53 \
		"1234 0000 0001 0000 0000 0000 076578616d706c65047465737400 00fc 0001")
	if [[ $out =~ rcode=(NOTIMP|REFUSED) ]]; then
		tap_ok "AXFR over TCP: ${BASH_REMATCH[1]} (NSD: REFUSED)"
	else
		tap_not_ok "AXFR over TCP: REFUSED or NOTIMP (NSD: REFUSED)"
		tap_diag <<<"$out"
	fi

	# FORMERR: malformed queries (raw bytes)
	formerr() {
		local desc=$1 hex=$2 out
		out=$(ip netns exec "$CLI" "$RAW" "$SUT4" 53 "$hex")
		if [[ $out == rcode=FORMERR* ]]; then
			tap_ok "$desc: FORMERR"
		else
			tap_not_ok "$desc: FORMERR"
			tap_diag <<<"$out"
		fi
	}
	formerr "question cut short (qdcount 1, name runs past the end)" \
		"1234 0100 0001 0000 0000 0000 0765786170"
	formerr "label of 64 bytes" \
		"1234 0100 0001 0000 0000 0000 40 $(printf 'aa%.0s' $(seq 64)) 00 0001 0001"
	formerr "compression pointer loop in the question" \
		"1234 0100 0001 0000 0000 0000 c00c 0001 0001"
	formerr "arcount 1 without the record" \
		"1234 0100 0001 0000 0000 0001 076578616d706c65047465737400 0006 0001"
	formerr "two OPT records" \
		"1234 0100 0001 0000 0000 0002 076578616d706c65047465737400 0006 0001 00 0029 04d0 00000000 0000 00 0029 04d0 00000000 0000"
	# RFC 6891 6.1.2: the OPT owner MUST be the root (NSD and BIND: FORMERR)
	formerr "OPT record with a non-root owner" \
		"1234 0100 0001 0000 0000 0001 076578616d706c65047465737400 0006 0001 c00c 0029 04d0 00000000 0000"
	formerr "OPT record with an RDLENGTH past the end" \
		"1234 0100 0001 0000 0000 0001 076578616d706c65047465737400 0006 0001 00 0029 04d0 00000000 0010 0001"

	# dropped, not answered: shorter than a header, or QR=1 (a reply)
	out=$(ip netns exec "$CLI" "$RAW" -w 1 "$SUT4" 53 "1234 0000 00")
	if [[ $out == noreply* ]]; then
		tap_ok "5-byte packet: dropped"
	else
		tap_not_ok "5-byte packet: dropped"
		tap_diag <<<"$out"
	fi
	out=$(ip netns exec "$CLI" "$RAW" -w 1 "$SUT4" 53 \
		"1234 8000 0001 0000 0000 0000 076578616d706c65047465737400 0006 0001")
	if [[ $out == noreply* ]]; then
		tap_ok "QR=1 packet (a reply sent to the server): dropped"
	else
		tap_not_ok "QR=1 packet (a reply sent to the server): dropped"
		tap_diag <<<"$out"
	fi

	# EDNS version 1 -> BADVERS, with an OPT of version 0 (RFC 6891 6.1.3)
	out=$(ask "$SUT4" www.example.test A +edns=1 +noednsnegotiation)
	if grep -q 'status: BADVERS' <<<"$out" && grep -q '^; EDNS: version: 0' <<<"$out"; then
		tap_ok "EDNS version 1: BADVERS with OPT version 0"
	else
		tap_not_ok "EDNS version 1: BADVERS with OPT version 0"
		tap_diag <<<"$out"
	fi

	# referral whose glue does not fit 512 bytes: RFC 9471 wants TC when not
	# all in-domain glue fits (NSD 4.6 leaves AAAA glue out without TC)
	out=$(ask "$SUT4" bigsub.example.test A +noedns)
	flags=$(sed -n 's/^;; flags: \([^;]*\);.*/\1/p' <<<"$out")
	nglue=$(sed -n '/^;; ADDITIONAL SECTION:/,/^$/p' <<<"$out" | grep -cE '^ns[1-8]\.bigsub\.example\.test\.')
	if grep -q 'status: NOERROR' <<<"$out" && [[ " $flags " != *" aa "* ]] &&
		grep -q 'AUTHORITY: 8' <<<"$out" &&
		{ [[ " $flags " == *" tc "* ]] || [ "$nglue" = 16 ]; }; then
		tap_ok "bigsub referral without EDNS: TC or all 16 glue records (flags: $flags; glue: $nglue)"
	else
		tap_not_ok "bigsub referral without EDNS: TC or all 16 glue records (RFC 9471)"
		tap_diag <<<"$out"
	fi

	# several queries on one TCP connection
	out=$(ask "$SUT4" +tcp +keepopen static.example.test A mail.example.test A www.example.test A)
	if [ "$(grep -c 'status: NOERROR' <<<"$out")" = 3 ]; then
		tap_ok "three queries on one TCP connection"
	else
		tap_not_ok "three queries on one TCP connection"
		tap_diag <<<"$out"
	fi

	if lab_alive "$sut_pid"; then
		tap_ok "choreod still running after all checks"
	else
		tap_not_ok "choreod still running after all checks"
		tail -n 30 "$sut_log" | tap_diag
	fi
fi

lab_log "done after $((SECONDS - started)) s"
if [ "${CONFORMANCE_VERBOSE:-0}" = 1 ]; then
	tap_diag "$PEER log:"
	tail -n 50 "$sut_log" | tap_diag
fi
tap_done
