// SPDX-License-Identifier: MIT
/* Unit tests of the NFLOG adapter's pure parts (src/nflog.c): a logged
 * packet's header, the prefix that says a record is a binding, and the
 * records of a datagram from the kernel with their accounting. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>
#include "cmocka_analyzer.h"

#include <libmnl/libmnl.h>
#include <libnetfilter_log/libnetfilter_log.h>
#include <linux/netfilter/nfnetlink.h>

#include "gw_policy.h"
#include "nflog.h"

/* A TCP SYN from 198.18.1.1 to 203.0.113.7: IPv4 header, 40 bytes of TCP. */
static void ipv4(uint8_t *p, unsigned ihl, unsigned total)
{
	memset(p, 0, 64);
	p[0] = (uint8_t)(0x40 | ihl);
	p[2] = (uint8_t)(total >> 8);
	p[3] = (uint8_t)total;
	p[8] = 64;
	p[9] = 6;
	memcpy(p + 12, "\xc6\x12\x01\x01", 4);
	memcpy(p + 16, "\xcb\x00\x71\x07", 4);
}

/* From 2001:db8:18::1 to 2001:db8:1::7, payload bytes of next header nh. */
static void ipv6(uint8_t *p, unsigned payload, uint8_t nh)
{
	memset(p, 0, 64);
	p[0] = 0x60;
	p[4] = (uint8_t)(payload >> 8);
	p[5] = (uint8_t)payload;
	p[6] = nh;
	p[7] = 64;
	memcpy(p + 8, "\x20\x01\x0d\xb8\x00\x18\0\0\0\0\0\0\0\0\0\x01", 16);
	memcpy(p + 24, "\x20\x01\x0d\xb8\x00\x01\0\0\0\0\0\0\0\0\0\x07", 16);
}

static const uint8_t zero[sizeof(struct nfl_event)];

/* Parsing fails, and leaves the event zeroed. */
static void bad(const uint8_t *p, size_t len, int family)
{
	struct nfl_event e;

	memset(&e, 0xa5, sizeof(e));
	assert_int_equal(nfl_parse_packet(p, len, family, &e), -EBADMSG);
	assert_memory_equal(&e, zero, sizeof(e));
}

static void test_ipv4(void **state)
{
	uint8_t p[64];
	struct nfl_event e;

	(void)state;
	ipv4(p, 5, 60);
	/* the whole packet, the snaplen's cut, only the header, by version */
	assert_int_equal(nfl_parse_packet(p, 60, AF_INET, &e), 0);
	assert_int_equal(e.family, AF_INET);
	assert_memory_equal(e.src, "\xc6\x12\x01\x01", 4);
	assert_memory_equal(e.dst, "\xcb\x00\x71\x07", 4);
	assert_false(e.is_binding);
	assert_int_equal(nfl_parse_packet(p, 40, AF_INET, &e), 0);
	assert_int_equal(nfl_parse_packet(p, 20, AF_INET, &e), 0);
	assert_int_equal(nfl_parse_packet(p, 20, AF_UNSPEC, &e), 0);
	assert_int_equal(e.family, AF_INET);
	assert_memory_equal(e.dst, "\xcb\x00\x71\x07", 4);
	/* with options: IHL 15, a 60-byte header */
	ipv4(p, 15, 64);
	assert_int_equal(nfl_parse_packet(p, 64, AF_INET, &e), 0);
	assert_int_equal(nfl_parse_packet(p, 60, AF_INET, &e), 0);
	assert_memory_equal(e.src, "\xc6\x12\x01\x01", 4);
}

static void test_ipv4_malformed(void **state)
{
	uint8_t p[64];

	(void)state;
	ipv4(p, 5, 60);
	bad(p, 0, AF_INET);
	bad(p, 0, AF_UNSPEC);
	for (size_t len = 1; len < 20; len++)      /* short */
		bad(p, len, AF_INET);
	bad(p, 60, AF_INET6);                      /* not the record's family */
	bad(p, 60, AF_UNIX);                       /* no family of ours */
	for (unsigned v = 0; v < 16; v++) {        /* wrong version */
		if (v == 4)
			continue;
		p[0] = (uint8_t)(v << 4 | 5);
		bad(p, 60, AF_INET);
		if (v != 6)
			bad(p, 60, AF_UNSPEC);
	}
	for (unsigned ihl = 0; ihl < 5; ihl++) {   /* IHL < 5 */
		ipv4(p, ihl, 60);
		bad(p, 60, AF_INET);
	}
	ipv4(p, 6, 60);                            /* IHL past len */
	bad(p, 23, AF_INET);
	ipv4(p, 15, 64);
	bad(p, 59, AF_INET);
	ipv4(p, 5, 19);                            /* total shorter than the header */
	bad(p, 20, AF_INET);
	ipv4(p, 5, 0);
	bad(p, 20, AF_INET);
	ipv4(p, 8, 28);
	bad(p, 32, AF_INET);
	ipv4(p, 5, 30);                            /* more copied than the packet has */
	bad(p, 31, AF_INET);
	assert_int_equal(nfl_parse_packet(p, 30, AF_INET, &(struct nfl_event){ 0 }), 0);
}

static void test_ipv6(void **state)
{
	uint8_t p[64];
	struct nfl_event e;

	(void)state;
	ipv6(p, 40, 6);
	assert_int_equal(nfl_parse_packet(p, 64, AF_INET6, &e), 0);
	assert_int_equal(e.family, AF_INET6);
	assert_memory_equal(e.src, "\x20\x01\x0d\xb8\x00\x18\0\0\0\0\0\0\0\0\0\x01", 16);
	assert_memory_equal(e.dst, "\x20\x01\x0d\xb8\x00\x01\0\0\0\0\0\0\0\0\0\x07", 16);
	assert_int_equal(nfl_parse_packet(p, 40, AF_INET6, &e), 0);
	assert_int_equal(nfl_parse_packet(p, 40, AF_UNSPEC, &e), 0);
	assert_int_equal(e.family, AF_INET6);
	/* no payload at all; a jumbogram (0, hop-by-hop) cut at the snaplen */
	ipv6(p, 0, 59);
	assert_int_equal(nfl_parse_packet(p, 40, AF_INET6, &e), 0);
	ipv6(p, 0, 0);
	assert_int_equal(nfl_parse_packet(p, 64, AF_INET6, &e), 0);
}

static void test_ipv6_malformed(void **state)
{
	uint8_t p[64];

	(void)state;
	ipv6(p, 40, 6);
	bad(p, 0, AF_INET6);
	for (size_t len = 1; len < 40; len++)      /* short */
		bad(p, len, AF_INET6);
	bad(p, 64, AF_INET);
	for (unsigned v = 0; v < 16; v++) {
		if (v == 6)
			continue;
		p[0] = (uint8_t)(v << 4);
		bad(p, 64, AF_INET6);
	}
	ipv6(p, 4, 6);                             /* more copied than the packet has */
	bad(p, 45, AF_INET6);
	assert_int_equal(nfl_parse_packet(p, 44, AF_INET6, &(struct nfl_event){ 0 }), 0);
	ipv6(p, 0, 6);                             /* 0 is a jumbogram's only */
	bad(p, 41, AF_INET6);
}

static void test_prefix(void **state)
{
	static const char ours[] = GW_LOG_PREFIX_BIND;

	(void)state;
	assert_string_equal(ours, "choreo-bind");
	/* as the kernel sends it (with its NUL), and without */
	assert_true(nfl_prefix_is_binding((const uint8_t *)"choreo-bind", 12));
	assert_true(nfl_prefix_is_binding((const uint8_t *)"choreo-bind", 11));
	assert_true(nfl_prefix_is_binding((const uint8_t *)"choreo-bind\0xy", 14));
	assert_false(nfl_prefix_is_binding((const uint8_t *)"choreo-bin", 11));
	assert_false(nfl_prefix_is_binding((const uint8_t *)"choreo-bind", 10));
	assert_false(nfl_prefix_is_binding((const uint8_t *)"choreo-binds", 13));
	assert_false(nfl_prefix_is_binding((const uint8_t *)"choreo-bind ", 13));
	assert_false(nfl_prefix_is_binding((const uint8_t *)"Choreo-bind", 12));
	assert_false(nfl_prefix_is_binding((const uint8_t *)"choreo-hpot", 12));
	assert_false(nfl_prefix_is_binding((const uint8_t *)"", 1));
	assert_false(nfl_prefix_is_binding((const uint8_t *)"", 0));
	assert_false(nfl_prefix_is_binding((const uint8_t *)"\0choreo-bind", 13));
}

/* ---- datagrams ---------------------------------------------------------------- */

struct seen {
	struct nfl_event ev[8];
	size_t n;
};

static void collect(void *ctx, const struct nfl_event *e)
{
	struct seen *s = ctx;

	assert_true(s->n < 8);
	s->ev[s->n++] = *e;
}

/* One record message at buf + *off: group, family, seq (or none when
 * < 0), prefix (or none), the packet (or none). */
static void put_record(uint8_t *buf, size_t *off, uint16_t group, uint8_t family,
		       long long seq, const char *prefix, const uint8_t *pkt,
		       size_t len)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf + *off);
	struct nfgenmsg *nfg;
	struct nfulnl_msg_packet_hdr ph = { .hw_protocol = htons(family == AF_INET ?
								  0x0800 : 0x86dd) };

	nlh->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET;
	nlh->nlmsg_flags = NLM_F_MULTI;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = family;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = htons(group);
	mnl_attr_put(nlh, NFULA_PACKET_HDR, sizeof(ph), &ph);
	if (prefix)
		mnl_attr_put_strz(nlh, NFULA_PREFIX, prefix);
	if (seq >= 0)
		mnl_attr_put_u32(nlh, NFULA_SEQ, htonl((uint32_t)seq));
	if (pkt)
		mnl_attr_put(nlh, NFULA_PAYLOAD, len, pkt);
	*off += NLMSG_ALIGN(nlh->nlmsg_len);
}

static void put_done(uint8_t *buf, size_t *off)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf + *off);

	nlh->nlmsg_type = NLMSG_DONE;
	nlh->nlmsg_flags = NLM_F_MULTI;
	mnl_nlmsg_put_extra_header(nlh, 4);
	*off += NLMSG_ALIGN(nlh->nlmsg_len);
}

static void test_datagram(void **state)
{
	static uint32_t aligned[1024];
	uint8_t *buf = (uint8_t *)aligned, p4[64], p6[64];
	struct nfl_rx rx = { .group = 5353 };
	struct seen s = { .n = 0 };
	size_t off = 0;

	(void)state;
	ipv4(p4, 5, 60);
	ipv6(p6, 40, 6);
	/* a batch as the kernel sends it: records, then DONE */
	put_record(buf, &off, 5353, AF_INET, 5, GW_LOG_PREFIX_BIND, p4, 60);
	put_record(buf, &off, 5353, AF_INET6, 6, "choreo-hpot", p6, 64);
	put_record(buf, &off, 5353, AF_INET6, 7, GW_LOG_PREFIX_BIND, p6, 40);
	put_done(buf, &off);
	assert_int_equal(nfl_rx_datagram(&rx, buf, off, collect, &s), 3);
	assert_int_equal(s.n, 3);
	assert_true(s.ev[0].is_binding && s.ev[0].family == AF_INET);
	assert_memory_equal(s.ev[0].src, p4 + 12, 4);
	assert_memory_equal(s.ev[0].dst, p4 + 16, 4);
	assert_true(!s.ev[1].is_binding && s.ev[1].family == AF_INET6);
	assert_true(s.ev[2].is_binding && s.ev[2].family == AF_INET6);
	assert_memory_equal(s.ev[2].src, p6 + 8, 16);
	assert_memory_equal(s.ev[2].dst, p6 + 24, 16);
	assert_true(rx.stats.records == 3 && rx.stats.bad == 0 && rx.stats.lost == 0);

	/* the kernel numbered 8 and 9 and they never came: lost */
	off = 0;
	s.n = 0;
	put_record(buf, &off, 5353, AF_INET, 10, GW_LOG_PREFIX_BIND, p4, 20);
	assert_int_equal(nfl_rx_datagram(&rx, buf, off, collect, &s), 1);
	assert_true(rx.stats.lost == 2 && rx.stats.records == 4);

	/* bad records are counted and skipped; the good one between them passes */
	off = 0;
	s.n = 0;
	/* (another group's numbers are not ours; a bad record of ours came) */
	put_record(buf, &off, 5354, AF_INET, 99, GW_LOG_PREFIX_BIND, p4, 60); /* another group */
	put_record(buf, &off, 5353, AF_INET, 11, GW_LOG_PREFIX_BIND, NULL, 0); /* no packet */
	put_record(buf, &off, 5353, AF_INET6, 12, GW_LOG_PREFIX_BIND, p4, 60); /* v4 in a v6 record */
	put_record(buf, &off, 5353, AF_INET, 13, NULL, p4, 19);               /* short */
	put_record(buf, &off, 5353, AF_INET, 14, NULL, p4, 60);               /* no prefix */
	put_record(buf, &off, 5353, AF_INET, -1, NULL, p4, 60);               /* no seq */
	assert_int_equal(nfl_rx_datagram(&rx, buf, off, collect, &s), 2);
	assert_false(s.ev[0].is_binding);
	assert_true(rx.stats.bad == 4 && rx.stats.records == 6 && rx.stats.lost == 2);

	/* a datagram cut in its last message: the whole ones are read */
	off = 0;
	s.n = 0;
	put_record(buf, &off, 5353, AF_INET, 15, GW_LOG_PREFIX_BIND, p4, 60);
	put_record(buf, &off, 5353, AF_INET, 16, GW_LOG_PREFIX_BIND, p4, 60);
	assert_int_equal(nfl_rx_datagram(&rx, buf, off - 8, collect, &s), 1);
	assert_true(rx.stats.bad == 5 && rx.stats.records == 7);
	/* then 17: 16 was lost with the cut */
	off = 0;
	put_record(buf, &off, 5353, AF_INET, 17, GW_LOG_PREFIX_BIND, p4, 60);
	assert_int_equal(nfl_rx_datagram(&rx, buf, off, collect, &s), 1);
	assert_int_equal(rx.stats.lost, 3);

	/* an attribute longer than its message */
	off = 0;
	put_record(buf, &off, 5353, AF_INET, 18, GW_LOG_PREFIX_BIND, p4, 60);
	((struct nlmsghdr *)(void *)buf)->nlmsg_len -= 8;
	assert_int_equal(nfl_rx_datagram(&rx, buf, off - 8, collect, &s), 0);
	assert_int_equal(rx.stats.bad, 6);

	/* a message too short for its nfgenmsg, nothing, a misaligned buffer */
	off = 0;
	{
		struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);

		nlh->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET;
		off = nlh->nlmsg_len;
	}
	assert_int_equal(nfl_rx_datagram(&rx, buf, off, collect, &s), 0);
	assert_int_equal(rx.stats.bad, 7);
	assert_int_equal(nfl_rx_datagram(&rx, buf, 0, collect, &s), 0);
	assert_int_equal(rx.stats.bad, 7);
	/* lengths that libmnl's walk takes as fitting: one that aligns to 0
	 * (it would never move on), one negative as an int, and one whose
	 * padding lies past the datagram */
	((struct nlmsghdr *)(void *)buf)->nlmsg_len = 0xfffffffd;
	assert_int_equal(nfl_rx_datagram(&rx, buf, 64, collect, &s), 0);
	((struct nlmsghdr *)(void *)buf)->nlmsg_len = 0x80000000;
	assert_int_equal(nfl_rx_datagram(&rx, buf, 64, collect, &s), 0);
	((struct nlmsghdr *)(void *)buf)->nlmsg_len = 21;
	assert_int_equal(nfl_rx_datagram(&rx, buf, 21, collect, &s), 0);
	assert_int_equal(rx.stats.bad, 10);
	assert_int_equal(nfl_rx_datagram(&rx, buf + 1, 16, collect, &s), -EINVAL);
	assert_int_equal(rx.stats.records, 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4),
		cmocka_unit_test(test_ipv4_malformed),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_ipv6_malformed),
		cmocka_unit_test(test_prefix),
		cmocka_unit_test(test_datagram),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
