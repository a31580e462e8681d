#!/usr/bin/perl
# SPDX-License-Identifier: MIT
#
# Send raw bytes to a DNS server and describe the reply: for the lab tests
# that need packets dig will not build (malformed queries, odd opcodes and
# header counts). Perl core modules only (always present on Debian).
#
#   dnsraw.pl [-t] [-w SECONDS] SERVER PORT HEX
#
#   -t   TCP (the 2-byte length prefix is added here); default UDP
#   -w   how long to wait for the reply (default 2 s)
#   HEX  the message, hex digits (spaces and dots ignored)
#
# Prints one line:
#   rcode=NAME opcode=N flags=qr,aa,... qd=N an=N ns=N ar=N len=N id=N
# or "noreply" (timeout, or the TCP connection closed without an answer),
# then "hex=..." with the reply's first 64 bytes. The extended rcode of an
# OPT record (BADVERS = 16) is folded into rcode when the reply's only
# additional record is an OPT right after the question.
# Exit status: 0 with a reply, 1 without, 2 on usage errors.
use strict;
use warnings;
use IO::Socket::IP;
use IO::Select;

my $tcp = 0;
my $wait = 2;
while (@ARGV && $ARGV[0] =~ /^-/) {
	my $o = shift @ARGV;
	if ($o eq '-t') { $tcp = 1; }
	elsif ($o eq '-w') { $wait = shift @ARGV; }
	else { die "usage: $0 [-t] [-w S] SERVER PORT HEX\n"; }
}
@ARGV == 3 or do { print STDERR "usage: $0 [-t] [-w S] SERVER PORT HEX\n"; exit 2; };
my ($server, $port, $hex) = @ARGV;
$hex =~ s/[\s.]//g;
$hex =~ /^([0-9a-fA-F]{2})*$/ or do { print STDERR "bad hex\n"; exit 2; };
my $msg = pack('H*', $hex);

my $sock = IO::Socket::IP->new(
	PeerHost => $server, PeerPort => $port,
	Proto => $tcp ? 'tcp' : 'udp', Type => $tcp ? SOCK_STREAM : SOCK_DGRAM,
	Timeout => $wait,
) or do { print "noreply (socket: $@)\n"; exit 1; };

my $reply = '';
my $sel = IO::Select->new($sock);
if ($tcp) {
	$sock->syswrite(pack('n', length $msg) . $msg);
	my $buf = '';
	my $deadline = time + $wait;
	while (time <= $deadline && $sel->can_read(0.2)) {
		my $n = $sock->sysread(my $chunk, 65537);
		last if !$n;
		$buf .= $chunk;
		last if length($buf) >= 2 && length($buf) >= 2 + unpack('n', $buf);
	}
	$reply = substr($buf, 2, unpack('n', $buf)) if length($buf) >= 2;
} else {
	$sock->send($msg);
	$sock->recv($reply, 65535) if $sel->can_read($wait);
}
if (length($reply) < 12) {
	print "noreply", (length $reply ? " (short reply of " . length($reply) . " bytes)" : ""), "\n";
	exit 1;
}

my ($id, $fl, $qd, $an, $ns, $ar) = unpack('n6', $reply);
my @names = qw(NOERROR FORMERR SERVFAIL NXDOMAIN NOTIMP REFUSED YXDOMAIN
	YXRRSET NXRRSET NOTAUTH NOTZONE RCODE11 RCODE12 RCODE13 RCODE14 RCODE15
	BADVERS);
my $rcode = $fl & 0xf;
# Extended rcode: find an OPT record when it is the only additional record
# and nothing but the question precedes it (the shape of error replies).
if ($ar == 1 && $an == 0 && $ns == 0) {
	my $off = 12;
	my $ok = 1;
	for (1 .. $qd) {
		while ($off < length $reply) {
			my $l = ord substr($reply, $off, 1);
			if ($l == 0) { $off++; last; }
			if (($l & 0xc0) == 0xc0) { $off += 2; last; }
			$off += 1 + $l;
		}
		$off += 4;
	}
	if ($off + 11 <= length $reply && ord(substr($reply, $off, 1)) == 0 &&
	    unpack('n', substr($reply, $off + 1, 2)) == 41) {
		my $ext = ord substr($reply, $off + 5, 1);
		$rcode |= $ext << 4;
	}
}
my @f;
push @f, 'qr' if $fl & 0x8000;
push @f, 'aa' if $fl & 0x0400;
push @f, 'tc' if $fl & 0x0200;
push @f, 'rd' if $fl & 0x0100;
push @f, 'ra' if $fl & 0x0080;
push @f, 'z'  if $fl & 0x0040;
push @f, 'ad' if $fl & 0x0020;
push @f, 'cd' if $fl & 0x0010;
printf "rcode=%s opcode=%d flags=%s qd=%d an=%d ns=%d ar=%d len=%d id=%d\n",
	$names[$rcode] // "RCODE$rcode", ($fl >> 11) & 0xf, join(',', @f),
	$qd, $an, $ns, $ar, length $reply, $id;
print "hex=", unpack('H*', substr($reply, 0, 64)), "\n";
exit 0;
