/* SPDX-License-Identifier: MIT */
/*
 * Response rate limiting (choreo.conf(5), "Rate limiting"): how many UDP
 * queries a source prefix gets answered each second, decided before the
 * answer is made, so that a limited query costs a table lookup and opens
 * no window.
 *
 * Each source prefix (IPv4 /24, IPv6 /56 by default) has a token bucket,
 * kept as a GCRA theoretical arrival time: rate answers a second, and a
 * burst of up to rate more after a quiet second. In any interval of L
 * seconds a prefix is answered at most burst + rate * L times, plus the
 * slips: every slip-th limited query is answered with an empty TC=1 reply
 * (the client retries over TCP, which is not limited), the others are
 * dropped. Resolvers (a prefix list) get a bucket per address at their
 * own rate.
 *
 * The table is fixed at creation (no allocation per query): sets of 8
 * buckets chosen by SipHash-2-4 of the prefix under a per-process random
 * key, so that an attacker cannot aim many prefixes at one set; a new
 * prefix takes a free or refilled bucket of its set, else evicts the one
 * seen longest ago. The clock is injected (ms); a clock that goes back is
 * taken as standing still.
 */
#ifndef CHOREO_RRL_H
#define CHOREO_RRL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define RRL_WAYS     8          /* buckets per set */
#define RRL_MIN_SIZE RRL_WAYS
#define RRL_MAX_SIZE (1u << 24)

enum rrl_action {
	RRL_ANSWER = 0,
	RRL_DROP,
	RRL_SLIP,    /* answer with an empty TC=1 reply */
};

struct rrl_config {
	uint32_t rate;           /* answers a second per prefix; > 0 */
	uint32_t slip;           /* every slip-th limited query slips; 0: none */
	uint32_t prefix4;        /* bits of an IPv4 source that make its prefix */
	uint32_t prefix6;        /* bits of an IPv6 source */
	uint32_t resolver_rate;  /* answers a second per resolver address;
				    0: resolvers are not limited */
	const struct addr_prefix *resolvers; /* copied */
	size_t n_resolvers;
	size_t size;             /* buckets, rounded up to a power of two */
};

struct rrl_stats {
	uint64_t answered;       /* passed */
	uint64_t limited;        /* dropped + slipped */
	uint64_t dropped, slipped;
	uint64_t evicted;        /* buckets taken over while not yet refilled */
};

struct rrl;

/*
 * A table for cfg. key: the hash key (16 bytes, for tests), or NULL for a
 * random one (getrandom). NULL on a bad cfg or without memory.
 */
struct rrl *rrl_new(const struct rrl_config *cfg, const uint8_t *key);
void rrl_free(struct rrl *r);

/* The table of cfg's [dns] rate_limit keys, with the resolvers' rate for
 * rate_limit_resolvers and for ecs_resolvers (each speaks for many
 * clients). cfg->rate_limit must not be 0. NULL without memory. */
struct config;
struct rrl *rrl_from_config(const struct config *cfg);

/* What to do with a query from addr (family AF_INET or AF_INET6, bytes as
 * in addr.h) at now_ms. Other families are answered. */
enum rrl_action rrl_check(struct rrl *r, int family, const uint8_t addr[static 16],
			  uint64_t now_ms);

const struct rrl_stats *rrl_get_stats(const struct rrl *r);

#endif
