# SPDX-License-Identifier: MIT
#
# Normalise one dig reply for comparison with another server's reply to the
# same query (tests/lab/test_dns_conformance.sh). Output: one fact per line,
# prefixed with a sort key so that `LC_ALL=C sort` yields header, question,
# answer, authority, additional in that order, each section as a sorted set.
#
# Variables (awk -v):
#   any=1    relaxed ANSWER for qtype ANY: the answer must be exactly one
#            RRset owned by the query name; its records, the ANSWER count,
#            AUTHORITY and ADDITIONAL are not compared
#   addl=1   relaxed ADDITIONAL: FILE=universe holds the complete additional
#            section (normalised RR lines, one per line); the section must be
#            non-empty and a subset of it; the ADDITIONAL count is dropped
#
# What is normalised, and why (everything else is compared as dig prints it):
#   - the message ID                     random per query
#   - dig's timing/server/size lines     client-side facts; message size
#                                        legitimately differs with name
#                                        compression and record order
#   - the RR order within a section      RRset and record order is free
#                                        (RFC 2181 5); compared as sorted sets
#   - whitespace in RR lines             dig's column alignment
#   - letter case of RR lines, outside   names compare case-insensitively
#     quoted strings                     (RFC 4343); a server that compresses
#                                        against the question echoes the
#                                        query's case into owners and RDATA
#                                        names. The QUESTION is compared
#                                        exactly (case preserved, RFC 4343 4.1).
#   - OPT: the advertised UDP size       each server's own setting
#   - OPT: NSID, COOKIE, EDE options     server identity, per-server secrets,
#                                        optional informational text (RFC 8914)
#   - the CD flag                        NSD clears it, RFC 4035 3.1.6 says
#                                        copy it: not compared
#   - the WARNING "recursion requested   follows from the flags, compared
#     but not available"                 already

function lcq(s,    out, i, c, inq, esc) {
	# lower case outside double quotes; collapse whitespace outside quotes
	out = ""; inq = 0; esc = 0
	for (i = 1; i <= length(s); i++) {
		c = substr(s, i, 1)
		if (inq) {
			out = out c
			if (esc) esc = 0
			else if (c == "\\") esc = 1
			else if (c == "\"") inq = 0
			continue
		}
		if (c == "\"") { inq = 1; out = out c; continue }
		if (c == " " || c == "\t") {
			if (out != "" && substr(out, length(out), 1) != " ") out = out " "
			continue
		}
		out = out tolower(c)
	}
	sub(/ $/, "", out)
	return out
}

BEGIN {
	sect = ""; replied = 0; nans = 0; nadd = 0
	if (addl && universe != "") {
		while ((getline line < universe) > 0) uni[line] = 1
		close(universe)
	}
}

/^;; ->>HEADER<<-/ {
	replied = 1
	line = $0
	sub(/^;; ->>HEADER<<- /, "", line)
	sub(/, id: [0-9]+$/, "", line)
	gsub(/,/, "", line)
	print "0a header " line
	next
}

/^;; flags:/ {
	line = $0
	sub(/^;; flags: ?/, "", line)
	split(line, parts, ";")
	n = split(parts[1], f, " ")
	fl = ""
	# sort the flags (n is tiny)
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
		if (f[j] < f[i]) { t = f[i]; f[i] = f[j]; f[j] = t }
	for (i = 1; i <= n; i++) if (f[i] != "cd") fl = fl " " f[i]
	print "0b flags" fl
	cnt = parts[2]
	gsub(/^ +| +$/, "", cnt)
	split(cnt, c, ", ")
	for (i = 1; i in c; i++) {
		if (any && c[i] ~ /^ANSWER/) continue
		if ((addl || any) && c[i] ~ /^ADDITIONAL/) continue
		if (any && c[i] ~ /^AUTHORITY/) continue
		print "0c count " c[i]
	}
	next
}

/^;; OPT PSEUDOSECTION:/ { sect = "opt"; next }
/^;; QUESTION SECTION:/  { sect = "question"; next }
/^;; ANSWER SECTION:/    { sect = "answer"; next }
/^;; AUTHORITY SECTION:/ { sect = "authority"; next }
/^;; ADDITIONAL SECTION:/ { sect = "additional"; next }

# client-side lines
/^; <<>> DiG/ || /^;; global options:/ || /^;; Got answer:/ { next }
/^; \([0-9]+ servers? found\)/ { next }
/^;; (Query time|SERVER|WHEN|MSG SIZE|XFR size)/ { next }
/^;; WARNING: recursion requested but not available/ { next }
/^$/ { next }

sect == "opt" && /^; EDNS:/ {
	line = $0
	sub(/^; EDNS: /, "", line)
	sub(/udp: [0-9]+/, "udp: *", line)
	print "0d edns " line
	next
}
sect == "opt" && /^; (NSID|COOKIE|EDE):/ { next }
sect == "opt" && /^; / { print "0e option " substr($0, 3); next }

sect == "question" && /^;/ {
	line = substr($0, 2)
	gsub(/[ \t]+/, " ", line)
	print "1 question " line
	next
}

/^;/ {
	# any other dig comment: an error or warning worth comparing
	print "0f note " $0
	next
}

sect == "answer" {
	rr = lcq($0)
	nans++
	split(rr, w, " ")
	own[nans] = w[1]; typ[nans] = w[4]
	if (!any) print "2 answer " rr
	next
}
sect == "authority" { if (!any) print "3 authority " lcq($0); next }
sect == "additional" {
	rr = lcq($0)
	nadd++
	if (any) next
	if (addl) { if (!(rr in uni)) print "4 additional NOT IN THE FULL SET: " rr; next }
	print "4 additional " rr
	next
}

{ print "5 unparsed " $0 }

END {
	if (!replied) print "0a NO REPLY"
	if (any && replied) {
		one = (nans > 0)
		for (i = 2; i <= nans; i++)
			if (own[i] != own[1] || typ[i] != typ[1]) one = 0
		if (nans == 0) print "2 answer (empty)"
		else if (one) print "2 answer one RRset owned by " own[1]
		else print "2 answer NOT ONE RRSET: " nans " records"
	}
	if (addl && replied) {
		if (nadd == 0) print "4 additional (empty)"
		else print "4 additional non-empty"
	}
}
