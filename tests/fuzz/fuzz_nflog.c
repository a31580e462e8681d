// SPDX-License-Identifier: MIT
/* libFuzzer harness for the NFLOG adapter's parsers (src/nflog.c). The
 * first byte chooses: with its top bit, the rest is a datagram from the
 * kernel (netlink messages, records of group 5353); without, the rest is a
 * logged packet for nfl_parse_packet (low two bits: the record's family)
 * and a prefix for nfl_prefix_is_binding. What parses must say what the
 * bytes say. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "gw_policy.h"
#include "nflog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t records;

static void count(void *ctx, const struct nfl_event *e)
{
	(void)ctx;
	if (e->family != AF_INET && e->family != AF_INET6)
		abort();
	records++;
}

static void packet(const uint8_t *p, size_t len, int family)
{
	static const char ours[] = GW_LOG_PREFIX_BIND;
	static const struct nfl_event zero;
	const uint8_t *nul = len ? memchr(p, 0, len) : NULL;
	size_t n = nul ? (size_t)(nul - p) : len;
	struct nfl_event e;
	int ret = nfl_parse_packet(p, len, family, &e);

	if (ret < 0 && (ret != -EBADMSG || memcmp(&e, &zero, sizeof(e)) != 0))
		abort();
	if (ret == 0) {
		/* the addresses are where the header has them */
		if (e.family == AF_INET && (len < 20 || p[0] >> 4 != 4 ||
					    memcmp(e.src, p + 12, 4) || memcmp(e.dst, p + 16, 4)))
			abort();
		if (e.family == AF_INET6 && (len < 40 || p[0] >> 4 != 6 ||
					     memcmp(e.src, p + 8, 16) || memcmp(e.dst, p + 24, 16)))
			abort();
		if (e.family != AF_INET && e.family != AF_INET6)
			abort();
	}
	if (nfl_prefix_is_binding(p, len) !=
	    (n == sizeof(ours) - 1 && memcmp(p, ours, n) == 0))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int families[] = { AF_UNSPEC, AF_INET, AF_INET6, AF_UNIX };
	uint8_t *copy;

	if (size < 1)
		return 0;
	/* an exact-size heap copy (a read past the end is caught), aligned
	 * as a receive buffer is */
	copy = malloc(size - 1 ? size - 1 : 1);
	if (!copy)
		return 0;
	memcpy(copy, data + 1, size - 1);
	if (data[0] & 0x80) {
		struct nfl_rx rx = { .group = 5353 };
		int n;

		records = 0;
		n = nfl_rx_datagram(&rx, copy, size - 1, count, NULL);
		if (n < 0 || (size_t)n != records || rx.stats.records != records ||
		    rx.stats.overruns)
			abort();
	} else {
		packet(copy, size - 1, families[data[0] & 3]);
	}
	free(copy);
	return 0;
}
