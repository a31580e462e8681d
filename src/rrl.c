// SPDX-License-Identifier: MIT
#include "rrl.h"

#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#define NS_PER_S  1000000000ull
#define NS_PER_MS 1000000ull

enum {
	TAG_FREE = 0,
	TAG_PREFIX = 1,    /* | family bit */
	TAG_RESOLVER = 2,
	TAG_V6 = 4,
};

struct bucket {
	uint8_t addr[16];   /* the prefix (host bits zero), or a resolver */
	uint8_t tag;        /* TAG_FREE, or TAG_PREFIX / TAG_RESOLVER | TAG_V6 */
	uint32_t n_limited; /* limited queries, for the slip */
	uint64_t tat;       /* ns: when the bucket is full again */
	uint64_t seen;      /* ns: last query */
};

struct rrl {
	struct rrl_config cfg;
	struct addr_prefix *resolvers;
	uint64_t interval, tau;                   /* ns, for cfg.rate */
	uint64_t resolver_interval, resolver_tau; /* ns, for resolver_rate */
	uint64_t key[2];
	uint64_t last_ms, offset_ms;              /* the clock as seen */
	size_t set_mask;                          /* sets - 1 */
	struct bucket *b;
	struct rrl_stats stats;
};

/* ---- SipHash-2-4 of 24 bytes ------------------------------------------------ */

static inline uint64_t rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

#define SIPROUND(v0, v1, v2, v3)                                         \
	do {                                                             \
		v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32); \
		v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;                   \
		v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;                   \
		v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32); \
	} while (0)

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t siphash24(const uint64_t k[2], const uint8_t in[24])
{
	uint64_t v0 = 0x736f6d6570736575ull ^ k[0], v1 = 0x646f72616e646f6dull ^ k[1];
	uint64_t v2 = 0x6c7967656e657261ull ^ k[0], v3 = 0x7465646279746573ull ^ k[1];
	uint64_t last = (uint64_t)24 << 56;

	for (int i = 0; i < 3; i++) {
		uint64_t m = le64(in + 8 * i);

		v3 ^= m;
		SIPROUND(v0, v1, v2, v3);
		SIPROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	v3 ^= last;
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	v0 ^= last;
	v2 ^= 0xff;
	for (int i = 0; i < 4; i++)
		SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- the table -------------------------------------------------------------- */

/* The emission interval (rounded up: never faster than rate) and the
 * burst tolerance (rate - 1 intervals: a burst of rate answers). */
static void gcra_params(uint32_t rate, uint64_t *interval, uint64_t *tau)
{
	if (!rate) {
		*interval = *tau = 0;
		return;
	}
	*interval = (NS_PER_S + rate - 1) / rate;
	*tau = (uint64_t)(rate - 1) * *interval;
}

struct rrl *rrl_new(const struct rrl_config *cfg, const uint8_t *key)
{
	struct rrl *r;
	size_t size = RRL_MIN_SIZE;

	if (!cfg->rate || cfg->prefix4 > 32 || cfg->prefix6 > 128 ||
	    cfg->size > RRL_MAX_SIZE)
		return NULL;
	while (size < cfg->size)
		size *= 2;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->cfg = *cfg;
	r->cfg.size = size;
	r->set_mask = size / RRL_WAYS - 1;
	r->b = calloc(size, sizeof(*r->b));
	if (cfg->n_resolvers)
		r->resolvers = calloc(cfg->n_resolvers, sizeof(*r->resolvers));
	if (!r->b || (cfg->n_resolvers && !r->resolvers))
		goto fail;
	if (cfg->n_resolvers)
		memcpy(r->resolvers, cfg->resolvers,
		       cfg->n_resolvers * sizeof(*r->resolvers));
	r->cfg.resolvers = r->resolvers;
	if (key) {
		memcpy(r->key, key, sizeof(r->key));
	} else if (getrandom(r->key, sizeof(r->key), 0) != (ssize_t)sizeof(r->key)) {
		goto fail;
	}
	gcra_params(cfg->rate, &r->interval, &r->tau);
	gcra_params(cfg->resolver_rate, &r->resolver_interval, &r->resolver_tau);
	return r;
fail:
	rrl_free(r);
	return NULL;
}

void rrl_free(struct rrl *r)
{
	if (!r)
		return;
	free(r->b);
	free(r->resolvers);
	free(r);
}

const struct rrl_stats *rrl_get_stats(const struct rrl *r)
{
	return &r->stats;
}

static bool is_resolver(const struct rrl *r, int family, const uint8_t addr[16])
{
	for (size_t i = 0; i < r->cfg.n_resolvers; i++)
		if (addr_prefix_contains(&r->resolvers[i], family, addr))
			return true;
	return false;
}

/* Which bucket a new key takes: free, then refilled (as good as free),
 * then, in debt, the one seen longest ago. */
static int rank(const struct bucket *b, uint64_t now)
{
	if (b->tag == TAG_FREE)
		return 0;
	return b->tat <= now ? 1 : 2;
}

/* The bucket of this key (tag, addr), found or taken over. */
static struct bucket *lookup(struct rrl *r, uint8_t tag, const uint8_t addr[16],
			     uint64_t now)
{
	uint8_t in[24] = { 0 };
	struct bucket *set, *victim = NULL;

	memcpy(in, addr, 16);
	in[16] = tag;
	set = &r->b[(siphash24(r->key, in) & r->set_mask) * RRL_WAYS];
	for (size_t i = 0; i < RRL_WAYS; i++) {
		struct bucket *b = &set[i];

		if (b->tag == tag && memcmp(b->addr, addr, 16) == 0)
			return b;
		if (!victim || rank(b, now) < rank(victim, now) ||
		    (rank(b, now) == rank(victim, now) && b->seen < victim->seen))
			victim = b;
	}
	if (victim->tag != TAG_FREE && victim->tat > now)
		r->stats.evicted++;
	*victim = (struct bucket){ .tag = tag, .tat = now };
	memcpy(victim->addr, addr, 16);
	return victim;
}

enum rrl_action rrl_check(struct rrl *r, int family, const uint8_t addr[static 16],
			  uint64_t now_ms)
{
	uint8_t key[16] = { 0 };
	uint64_t now, interval = r->interval, tau = r->tau, tat;
	uint8_t tag;
	struct bucket *b;

	if (family != AF_INET && family != AF_INET6) {
		r->stats.answered++;
		return RRL_ANSWER;
	}
	/* a clock that goes back: time stands still until it catches up */
	if (now_ms < r->last_ms)
		r->offset_ms += r->last_ms - now_ms;
	r->last_ms = now_ms;
	now = (now_ms + r->offset_ms) * NS_PER_MS;

	memcpy(key, addr, family == AF_INET ? 4 : 16);
	if (r->cfg.n_resolvers && is_resolver(r, family, addr)) {
		if (!r->cfg.resolver_rate) {
			r->stats.answered++;
			return RRL_ANSWER;
		}
		tag = TAG_RESOLVER;
		interval = r->resolver_interval;
		tau = r->resolver_tau;
	} else {
		tag = TAG_PREFIX;
		addr_mask(family, key, family == AF_INET ? r->cfg.prefix4 : r->cfg.prefix6);
	}
	if (family == AF_INET6)
		tag |= TAG_V6;

	b = lookup(r, tag, key, now);
	b->seen = now;
	tat = b->tat > now ? b->tat : now;
	if (tat - now <= tau) {
		b->tat = tat + interval;
		r->stats.answered++;
		return RRL_ANSWER;
	}
	r->stats.limited++;
	if (r->cfg.slip && ++b->n_limited % r->cfg.slip == 0) {
		r->stats.slipped++;
		return RRL_SLIP;
	}
	r->stats.dropped++;
	return RRL_DROP;
}

struct rrl *rrl_from_config(const struct config *cfg)
{
	struct addr_prefix res[2 * CONFIG_MAX_ECS_RESOLVERS];
	struct rrl_config rc = {
		.rate = cfg->rate_limit, .slip = cfg->rate_limit_slip,
		.prefix4 = cfg->rate_limit_prefix4, .prefix6 = cfg->rate_limit_prefix6,
		.resolver_rate = cfg->rate_limit_resolver_rate,
		.resolvers = res, .size = cfg->rate_limit_size,
	};

	memcpy(res, cfg->rate_limit_resolvers,
	       cfg->n_rate_limit_resolvers * sizeof(res[0]));
	memcpy(res + cfg->n_rate_limit_resolvers, cfg->ecs_resolvers,
	       cfg->n_ecs_resolvers * sizeof(res[0]));
	rc.n_resolvers = cfg->n_rate_limit_resolvers + cfg->n_ecs_resolvers;
	return rrl_new(&rc, NULL);
}
