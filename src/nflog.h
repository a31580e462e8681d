/* SPDX-License-Identifier: MIT */
/*
 * The kernel's NFLOG records of one group (nfnetlink_log, through
 * libnetfilter_log's message helpers over libmnl), a thin adapter: bind the
 * group, read what arrived, hand each record on as an event. A gateway's
 * table logs there the bindings its kernel learns and refreshes
 * (gw_policy.h, GW_LOG_PREFIX_BIND); later other events share the group
 * under other prefixes.
 *
 * The bytes of a record are read by pure functions (nfl_parse_packet,
 * nfl_prefix_is_binding, nfl_rx_datagram), unit-tested and fuzzed; the
 * packet only through the bounded cursor (wire.h).
 *
 * The prefix is nfl_, not nflog_: libnetfilter_log's own functions are
 * nflog_open, nflog_fd, nflog_close..., and a definition of ours under one
 * of those names would replace the library's in the whole process.
 *
 * An NFLOG group is per network namespace, and one socket at a time may
 * have it. One struct nfl is one netlink socket, used by one thread.
 */
#ifndef CHOREO_NFLOG_H
#define CHOREO_NFLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One record: the logged packet's addresses, and whose it is. */
struct nfl_event {
	int family;               /* AF_INET or AF_INET6 */
	uint8_t src[16], dst[16]; /* as on the wire; IPv4 in the first 4 bytes */
	bool is_binding;          /* prefix GW_LOG_PREFIX_BIND: a binding the
				     kernel learned or refreshed, (src . dst)
				     with dst the pool address */
};

typedef void nfl_fn(void *ctx, const struct nfl_event *e);

struct nfl_stats {
	uint64_t records;         /* handed to fn */
	uint64_t bad;             /* records (or datagrams) that did not parse */
	uint64_t lost;            /* records the kernel numbered and never
				     delivered (gaps in their sequence) */
	uint64_t overruns;        /* times the socket overran (ENOBUFS) */
};

/* How the adapter asks the kernel to deliver: a record waits at most
 * NFL_TIMEOUT_CS hundredths of a second, or until NFL_QTHRESH are queued. */
#define NFL_TIMEOUT_CS 2
#define NFL_QTHRESH    32
#define NFL_READ_MAX   64  /* datagrams one nfl_read takes at most */

struct nfl;

/*
 * Bind NFLOG group: copy mode packet with GW_LOG_SNAPLEN bytes, records
 * numbered (lost ones are counted), delivered within NFL_TIMEOUT_CS; the
 * socket is non-blocking, for the event loop. Returns 0 and *out (free with
 * nfl_close), or a negative errno, logged: -EBUSY when another socket (of
 * this or another program) has the group ("set [daemon] nflog_group"),
 * -EPERM without CAP_NET_ADMIN.
 */
int nfl_open(uint16_t group, struct nfl **out);
int nfl_fd(const struct nfl *n);

/*
 * Read what is there, at most NFL_READ_MAX datagrams, and call fn for each
 * record that parses. Returns the number of records handed to fn (0 when
 * nothing was there), or a negative errno when the socket failed. A socket
 * overrun (ENOBUFS: records were lost) is counted, logged (rate-limited)
 * and not an error: reading goes on.
 */
int nfl_read(struct nfl *n, nfl_fn *fn, void *ctx);

void nfl_get_stats(const struct nfl *n, struct nfl_stats *out);
void nfl_close(struct nfl *n);  /* the group is unbound; NULL is fine */

/* ---- pure ---------------------------------------------------------------- */

/*
 * The addresses of a logged packet: len bytes copied from its network
 * header. family is the record's (AF_INET, AF_INET6) or AF_UNSPEC to go by
 * the version. IPv4: version 4, IHL >= 5, the header within len and within
 * the total length, len no longer than the total length. IPv6: version 6,
 * the 40-byte header within len, len no longer than header and payload
 * length (but for a jumbogram's 0). 0 and *out (is_binding false), or
 * -EBADMSG for anything else (then *out is zeroed).
 */
int nfl_parse_packet(const uint8_t *pkt, size_t len, int family,
		     struct nfl_event *out);

/* Whether a record's prefix attribute (len bytes, its NUL included or
 * not) is GW_LOG_PREFIX_BIND exactly. */
bool nfl_prefix_is_binding(const uint8_t *prefix, size_t len);

/* What nfl_read keeps between datagrams. */
struct nfl_rx {
	uint16_t group;           /* records of another group are bad */
	bool have_seq;
	uint32_t next_seq;        /* the number the next record should have */
	struct nfl_stats stats;
};

/*
 * The records of one datagram from the kernel (netlink messages): each
 * NFULNL_MSG_PACKET message of rx->group that parses goes to fn; other
 * message types are skipped; the rest is counted in rx->stats. Returns the
 * number of records handed to fn. What nfl_read does with each datagram.
 */
int nfl_rx_datagram(struct nfl_rx *rx, const uint8_t *buf, size_t len,
		    nfl_fn *fn, void *ctx);

#endif
