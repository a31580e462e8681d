// SPDX-License-Identifier: MIT
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>
#include "cmocka_analyzer.h"

#include "addr.h"
#include "config.h"
#include "dns.h"
#include "rrl.h"

static const uint8_t KEY1[16] = "0123456789abcdef";
static const uint8_t KEY2[16] = "fedcba9876543210";

/* xorshift64*: reproducible random sequences */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static void v4(const char *s, uint8_t a[16])
{
	memset(a, 0, 16);
	assert_int_equal(inet_pton(AF_INET, s, a), 1);
}

static void v6(const char *s, uint8_t a[16])
{
	assert_int_equal(inet_pton(AF_INET6, s, a), 1);
}

static struct rrl *make(uint32_t rate, uint32_t slip, size_t size,
			const struct addr_prefix *res, size_t n_res,
			uint32_t res_rate)
{
	struct rrl_config c = {
		.rate = rate, .slip = slip, .prefix4 = 24, .prefix6 = 56,
		.resolver_rate = res_rate, .resolvers = res, .n_resolvers = n_res,
		.size = size,
	};
	struct rrl *r = rrl_new(&c, KEY1);

	assert_non_null(r);
	return r;
}

/* How many of n queries from a at t are answered (slips apart). */
static unsigned burst(struct rrl *r, int family, const uint8_t a[16],
		      uint64_t t, unsigned n, unsigned *slips)
{
	unsigned ok = 0;

	for (unsigned i = 0; i < n; i++) {
		enum rrl_action act = rrl_check(r, family, a, t);

		ok += act == RRL_ANSWER;
		if (slips)
			*slips += act == RRL_SLIP;
	}
	return ok;
}

/*
 * The bound, over random sequences: several prefixes send at random rates
 * (quiet, about the rate, floods, bursts); in every interval of 1000 ms a
 * prefix is answered at most burst (rate) + 999 ms at rate times; while it
 * floods it is answered at least rate a second (never limited below its
 * rate); every slip-th limited query slipped.
 */
#define SEQ_PREFIXES 4
#define SEQ_MS       20000

static void check_sequence(uint32_t rate, uint32_t slip)
{
	struct rrl *r = make(rate, slip, 1024, NULL, 0, 0);
	/* answers per ms, per prefix */
	static uint16_t per_ms[SEQ_PREFIXES][SEQ_MS];
	unsigned limited[SEQ_PREFIXES] = { 0 }, slipped[SEQ_PREFIXES] = { 0 };
	unsigned load[SEQ_PREFIXES];

	memset(per_ms, 0, sizeof(per_ms));
	for (unsigned p = 0; p < SEQ_PREFIXES; p++)
		load[p] = 0;
	for (uint64_t t = 0; t < SEQ_MS; t++) {
		for (unsigned p = 0; p < SEQ_PREFIXES; p++) {
			uint8_t a[16];
			unsigned n;

			if (t % 1000 == 0) /* a new regime each second */
				load[p] = (unsigned)(rnd() % 4);
			/* 0: quiet, 1: ~rate/2, 2: ~3 x rate, 3: bursts */
			if (load[p] == 0)
				n = 0;
			else if (load[p] == 1)
				n = rnd() % 2000 < rate ? 1 : 0;
			else if (load[p] == 2)
				n = (unsigned)(rnd() % (6 * rate / 1000 + 2));
			else
				n = rnd() % 97 == 0 ? (unsigned)(rnd() % (3 * rate)) : 0;
			v4("198.51.100.0", a);
			a[2] = (uint8_t)p;
			a[3] = (uint8_t)rnd(); /* any host of the /24 */
			for (unsigned i = 0; i < n; i++) {
				enum rrl_action act = rrl_check(r, AF_INET, a, 1000000 + t);

				if (act == RRL_ANSWER) {
					per_ms[p][t]++;
				} else {
					limited[p]++;
					slipped[p] += act == RRL_SLIP;
				}
			}
		}
	}
	for (unsigned p = 0; p < SEQ_PREFIXES; p++) {
		unsigned window = 0, most = 0, total = 0;

		for (unsigned t = 0; t < SEQ_MS; t++) {
			window += per_ms[p][t];
			total += per_ms[p][t];
			if (t >= 1000)
				window -= per_ms[p][t - 1000];
			if (window > most)
				most = window;
		}
		/* rate (the burst) + 999 ms at rate */
		assert_true(most <= rate + 999 * rate / 1000);
		assert_true(most >= rate); /* the burst was there */
		assert_true(total > 0);
		assert_int_equal(slipped[p], slip ? limited[p] / slip : 0);
	}
	assert_int_equal(rrl_get_stats(r)->limited,
			 rrl_get_stats(r)->dropped + rrl_get_stats(r)->slipped);
	rrl_free(r);
}

static void test_bound_random(void **state)
{
	(void)state;
	check_sequence(200, 2);
	check_sequence(50, 1);
	check_sequence(1000, 3);
	check_sequence(7, 0);
}

/* A steady flood at 10 x the rate for 10 s: about rate a second answered
 * (burst included), and exactly one limited query in slip slipped. */
static void test_flood_and_slip(void **state)
{
	struct rrl *r = make(100, 2, 1024, NULL, 0, 0);
	unsigned ok = 0, slips = 0, sent = 0;
	uint8_t a[16];

	(void)state;
	v4("203.0.113.7", a);
	for (uint64_t t = 0; t < 10000; t++) {
		ok += burst(r, AF_INET, a, 5000 + t, 1, &slips);
		sent++;
	}
	/* 100/s for 10 s, plus the first burst of 100 */
	assert_true(ok >= 1000 && ok <= 1100);
	assert_int_equal(slips, (sent - ok) / 2);
	assert_int_equal(rrl_get_stats(r)->slipped, slips);
	assert_int_equal(rrl_get_stats(r)->answered, ok);
	rrl_free(r);

	/* slip 1: every limited query slips; slip 0: none */
	r = make(10, 1, 1024, NULL, 0, 0);
	slips = 0;
	assert_int_equal(burst(r, AF_INET, a, 0, 50, &slips), 10);
	assert_int_equal(slips, 40);
	rrl_free(r);
	r = make(10, 0, 1024, NULL, 0, 0);
	slips = 0;
	assert_int_equal(burst(r, AF_INET, a, 0, 50, &slips), 10);
	assert_int_equal(slips, 0);
	assert_int_equal(rrl_get_stats(r)->dropped, 40);
	rrl_free(r);
}

/* Another prefix is not affected by a limited one. */
static void test_other_prefix(void **state)
{
	struct rrl *r = make(10, 2, 1024, NULL, 0, 0);
	uint8_t a[16], b[16];

	(void)state;
	v4("203.0.113.7", a);
	v4("203.0.114.7", b);
	assert_int_equal(burst(r, AF_INET, a, 0, 100, NULL), 10);
	assert_int_equal(burst(r, AF_INET, b, 0, 10, NULL), 10);
	/* a's bucket refills at rate: 1 more after 100 ms */
	assert_int_equal(burst(r, AF_INET, a, 100, 5, NULL), 1);
	assert_int_equal(burst(r, AF_INET, a, 1100, 50, NULL), 10);
	rrl_free(r);
}

/* The /24 and the /56 share a bucket; the next prefix does not; the
 * prefix lengths are configurable. */
static void test_prefixing(void **state)
{
	struct rrl_config c = { .rate = 5, .slip = 0, .prefix4 = 32,
				.prefix6 = 64, .size = 64 };
	struct rrl *r = make(5, 0, 64, NULL, 0, 0);
	uint8_t a[16], b[16];

	(void)state;
	v4("192.0.2.1", a);
	v4("192.0.2.254", b);
	assert_int_equal(burst(r, AF_INET, a, 0, 3, NULL), 3);
	assert_int_equal(burst(r, AF_INET, b, 0, 5, NULL), 2);
	v4("192.0.3.1", b);
	assert_int_equal(burst(r, AF_INET, b, 0, 5, NULL), 5);

	v6("2001:db8:0:ff::1", a);
	v6("2001:db8:0:1:ffff:ffff:ffff:ffff", b); /* same /56, other /64 */
	assert_int_equal(burst(r, AF_INET6, a, 0, 3, NULL), 3);
	assert_int_equal(burst(r, AF_INET6, b, 0, 5, NULL), 2);
	v6("2001:db8:0:1ff::1", b); /* same /48, other /56 */
	assert_int_equal(burst(r, AF_INET6, b, 0, 5, NULL), 5);
	/* an IPv4 /24 and an IPv6 /56 of the same bytes are not one */
	v6("c633:6400::1", a);
	v4("198.51.100.1", b);
	assert_int_equal(burst(r, AF_INET6, a, 0, 10, NULL), 5);
	assert_int_equal(burst(r, AF_INET, b, 0, 10, NULL), 5);
	/* another family is answered, not counted */
	assert_int_equal(rrl_check(r, AF_UNIX, a, 0), RRL_ANSWER);
	rrl_free(r);

	r = rrl_new(&c, KEY1);
	assert_non_null(r);
	v4("192.0.2.1", a);
	v4("192.0.2.2", b);
	assert_int_equal(burst(r, AF_INET, a, 0, 10, NULL), 5);
	assert_int_equal(burst(r, AF_INET, b, 0, 10, NULL), 5);
	v6("2001:db8:0:ff::1", a);
	v6("2001:db8:0:fe::1", b); /* same /56, other /64 */
	assert_int_equal(burst(r, AF_INET6, a, 0, 10, NULL), 5);
	assert_int_equal(burst(r, AF_INET6, b, 0, 10, NULL), 5);
	rrl_free(r);
}

/* Resolvers: each address its own bucket at its own rate; 0 unlimited. */
static void test_resolvers(void **state)
{
	struct addr_prefix res[3];
	struct rrl *r;
	uint8_t a[16], b[16], c[16];

	(void)state;
	assert_int_equal(addr_prefix_parse("192.0.2.0/28", &res[0]), 0);
	assert_int_equal(addr_prefix_parse("2001:db8::53/128", &res[1]), 0);
	assert_int_equal(addr_prefix_parse("198.51.100.0/32", &res[2]), 0);
	r = make(10, 0, 1024, res, 3, 100);
	v4("192.0.2.1", a);
	v4("192.0.2.2", b);
	v4("192.0.2.100", c);  /* same /24, not a resolver */
	assert_int_equal(burst(r, AF_INET, a, 0, 500, NULL), 100);
	assert_int_equal(burst(r, AF_INET, b, 0, 500, NULL), 100);
	assert_int_equal(burst(r, AF_INET, c, 0, 500, NULL), 10);
	/* a resolver's rate: 100/s, so 10 more after 100 ms */
	assert_int_equal(burst(r, AF_INET, a, 100, 500, NULL), 10);
	v6("2001:db8::53", a);
	v6("2001:db8::54", b);
	assert_int_equal(burst(r, AF_INET6, a, 0, 500, NULL), 100);
	assert_int_equal(burst(r, AF_INET6, b, 0, 500, NULL), 10);
	/* a resolver's bucket is not the prefix of the same bytes */
	v4("198.51.100.0", a);
	v4("198.51.100.1", b);
	assert_int_equal(burst(r, AF_INET, a, 0, 500, NULL), 100);
	assert_int_equal(burst(r, AF_INET, b, 0, 500, NULL), 10);
	rrl_free(r);

	r = make(10, 0, 1024, res, 2, 0);
	v4("192.0.2.1", a);
	assert_int_equal(burst(r, AF_INET, a, 0, 5000, NULL), 5000);
	assert_int_equal(burst(r, AF_INET, c, 0, 50, NULL), 10);
	rrl_free(r);
}

/* The table never grows: a new prefix takes a free bucket, then a
 * refilled one, then evicts the one seen longest ago. */
static void test_table_full(void **state)
{
	struct rrl *r = make(10, 0, 8, NULL, 0, 0); /* one set of 8 */
	uint8_t a[16];

	(void)state;
	v4("10.0.0.0", a);
	for (unsigned p = 0; p < 8; p++) {
		a[2] = (uint8_t)p;
		assert_int_equal(burst(r, AF_INET, a, p, 20, NULL), 10);
	}
	assert_int_equal(rrl_get_stats(r)->evicted, 0);
	/* a ninth, all 8 in debt: prefix 0 (seen longest ago) goes */
	a[2] = 8;
	assert_int_equal(burst(r, AF_INET, a, 10, 20, NULL), 10);
	assert_int_equal(rrl_get_stats(r)->evicted, 1);
	a[2] = 1; /* still in the table: still limited */
	assert_int_equal(burst(r, AF_INET, a, 10, 20, NULL), 0);
	a[2] = 0; /* evicted: a fresh bucket (and evicts prefix 2) */
	assert_int_equal(burst(r, AF_INET, a, 11, 20, NULL), 10);
	assert_int_equal(rrl_get_stats(r)->evicted, 2);
	a[2] = 8; /* seen at 10: kept */
	assert_int_equal(burst(r, AF_INET, a, 11, 20, NULL), 0);
	a[2] = 2; /* seen at 2, the oldest: it was the one evicted */
	assert_int_equal(burst(r, AF_INET, a, 11, 20, NULL), 10);
	assert_int_equal(rrl_get_stats(r)->evicted, 3);
	/* 2 s later every bucket is refilled: taking one is no eviction */
	for (unsigned p = 20; p < 40; p++) {
		a[2] = (uint8_t)p;
		assert_int_equal(burst(r, AF_INET, a, 2100 + p * 2000, 20, NULL), 10);
	}
	assert_int_equal(rrl_get_stats(r)->evicted, 3);
	rrl_free(r);

	/* many prefixes through a small table: bounded, the flood limited */
	r = make(10, 0, 64, NULL, 0, 0);
	for (unsigned i = 0; i < 100000; i++) {
		uint32_t x = (uint32_t)rnd();

		memcpy(a, &x, 4);
		rrl_check(r, AF_INET, a, i / 100);
	}
	assert_true(rrl_get_stats(r)->answered > 0);
	rrl_free(r);
}

/* The set is chosen by a keyed hash: the same prefixes fill the sets of
 * two tables with different keys differently (where the evictions fall),
 * and the same key always the same way. */
static void evictions(const uint8_t *key, unsigned at[8])
{
	struct rrl_config c = { .rate = 1, .prefix4 = 24, .prefix6 = 56,
				.size = 64 };
	struct rrl *r = rrl_new(&c, key);
	unsigned n = 0;
	uint8_t a[16];

	assert_non_null(r);
	v4("10.0.0.0", a);
	for (unsigned p = 0; p < 4096 && n < 8; p++) {
		uint64_t before = rrl_get_stats(r)->evicted;

		a[1] = (uint8_t)(p >> 8);
		a[2] = (uint8_t)p;
		rrl_check(r, AF_INET, a, 0); /* in debt for 1 s */
		if (rrl_get_stats(r)->evicted > before)
			at[n++] = p;
	}
	assert_int_equal(n, 8);
	rrl_free(r);
}

static void test_keyed(void **state)
{
	unsigned a1[8], a2[8], b[8];

	(void)state;
	evictions(KEY1, a1);
	evictions(KEY1, a2);
	evictions(KEY2, b);
	assert_memory_equal(a1, a2, sizeof(a1));
	assert_memory_not_equal(a1, b, sizeof(a1));
	/* 64 buckets: nothing is evicted before a set holds 9 */
	assert_true(a1[0] >= 8 && b[0] >= 8);
}

/* A clock that goes back stands still; one that jumps forward refills. */
static void test_clock_jumps(void **state)
{
	struct rrl *r = make(10, 0, 1024, NULL, 0, 0);
	uint8_t a[16];

	(void)state;
	v4("203.0.113.1", a);
	assert_int_equal(burst(r, AF_INET, a, 1000000, 50, NULL), 10);
	/* back a long way: no lockout, no refill either */
	assert_int_equal(burst(r, AF_INET, a, 5, 50, NULL), 0);
	assert_int_equal(burst(r, AF_INET, a, 105, 50, NULL), 1);
	assert_int_equal(burst(r, AF_INET, a, 2000, 50, NULL), 10);
	/* forward a long way: refilled, a burst, then the rate */
	assert_int_equal(burst(r, AF_INET, a, UINT64_C(1) << 40, 50, NULL), 10);
	assert_int_equal(burst(r, AF_INET, a, (UINT64_C(1) << 40) + 500, 50, NULL), 5);
	rrl_free(r);
}

static void test_bad_config(void **state)
{
	struct rrl_config c = { .rate = 0, .prefix4 = 24, .prefix6 = 56, .size = 64 };

	(void)state;
	assert_null(rrl_new(&c, KEY1));
	c.rate = 1;
	c.prefix4 = 33;
	assert_null(rrl_new(&c, KEY1));
	c.prefix4 = 24;
	c.size = RRL_MAX_SIZE + 1;
	assert_null(rrl_new(&c, KEY1));
	c.size = 0;
	rrl_free(rrl_new(&c, NULL)); /* random key */
	rrl_free(NULL);
}

/* The slip reply: header and question echoed, QR and TC, no records. */
static void test_slip_reply(void **state)
{
	static const uint8_t q[] = {
		0x12, 0x34, 0x01, 0x20, 0, 1, 0, 0, 0, 0, 0, 1, /* RD, AD, AR 1 */
		3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0,
		0, 1, 0, 1,
		0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0, /* OPT */
	};
	uint8_t out[512], bad[sizeof(q)];
	unsigned made = 0;
	size_t len;

	(void)state;
	len = dns_make_slip(q, sizeof(q), out, sizeof(out));
	assert_int_equal(len, 12 + 13 + 4);
	assert_int_equal(out[0], 0x12);
	assert_int_equal(out[1], 0x34);
	assert_int_equal(out[2], 0x83); /* QR, TC, RD */
	assert_int_equal(out[3], 0x00);
	assert_int_equal(out[5], 1);
	assert_int_equal(out[7] | out[9] | out[11], 0);
	assert_memory_equal(out + 12, q + 12, 17);
	/* too small a buffer, a response, two questions, a cut name,
	 * a compressed name, another opcode: nothing */
	assert_int_equal(dns_make_slip(q, sizeof(q), out, 20), 0);
	memcpy(bad, q, sizeof(q));
	bad[2] |= 0x80;
	assert_int_equal(dns_make_slip(bad, sizeof(q), out, sizeof(out)), 0);
	memcpy(bad, q, sizeof(q));
	bad[5] = 2;
	assert_int_equal(dns_make_slip(bad, sizeof(q), out, sizeof(out)), 0);
	assert_int_equal(dns_make_slip(q, 20, out, sizeof(out)), 0);
	assert_int_equal(dns_make_slip(q, 27, out, sizeof(out)), 0);
	memcpy(bad, q, sizeof(q));
	bad[12] = 0xc0;
	bad[13] = 0;
	assert_int_equal(dns_make_slip(bad, sizeof(q), out, sizeof(out)), 0);
	memcpy(bad, q, sizeof(q));
	bad[2] = 0x28; /* opcode 5 */
	assert_int_equal(dns_make_slip(bad, sizeof(q), out, sizeof(out)), 0);
	assert_int_equal(dns_make_slip(q, 11, out, sizeof(out)), 0);

	/* random queries, each in a heap block of its exact size (ASan sees
	 * any read past it): never longer than the query, always TC */
	for (unsigned i = 0; i < 20000; i++) {
		size_t n = (size_t)(rnd() % 48);
		uint8_t *m = malloc(n ? n : 1);

		assert_non_null(m);
		for (size_t k = 0; k < n; k++)
			m[k] = (uint8_t)rnd();
		if (n >= 12 && i % 2) { /* a standard query with one question */
			m[2] &= 0x07;
			m[4] = 0;
			m[5] = 1;
			for (size_t k = 12; k < n; k++)
				m[k] = (uint8_t)(rnd() % 4);
		}
		len = dns_make_slip(m, n, out, sizeof(out));
		assert_true(len <= n);
		assert_true(len == 0 || (len >= 17 && (out[2] & 0x82) == 0x82));
		made += len > 0;
		free(m);
	}
	assert_true(made > 1000); /* the loop did make replies */
}

#define CONF_HEAD "[dns]\nlisten = 127.0.0.1\nzone = example.test\nzonefile = /z\n"
#define CONF_SVC "[service a]\nname = a.example.test\npool = 10.0.0.0/24\n" \
		 "server = 192.0.2.10\nhoneypot = 192.0.2.20\n"

static struct config *conf(const char *dns_keys, size_t *n_errors)
{
	char buf[1024];
	struct config *cfg = NULL;
	struct config_errors errs = { 0 };
	int n = snprintf(buf, sizeof(buf), CONF_HEAD "%s" CONF_SVC, dns_keys);

	assert_true(n > 0 && (size_t)n < sizeof(buf));
	config_parse("t.conf", buf, (size_t)n, &cfg, &errs);
	*n_errors = errs.n;
	config_errors_free(&errs);
	return cfg;
}

/* The [dns] keys: defaults, values, limits; the resolvers' list and the
 * ECS resolvers given the resolvers' rate by rrl_from_config. */
static void test_config_keys(void **state)
{
	struct config *cfg;
	struct rrl *r;
	size_t nerr;
	uint8_t a[16];

	(void)state;
	cfg = conf("", &nerr);
	assert_non_null(cfg);
	assert_int_equal(cfg->rate_limit, 200);
	assert_int_equal(cfg->rate_limit_slip, 2);
	assert_int_equal(cfg->rate_limit_prefix4, 24);
	assert_int_equal(cfg->rate_limit_prefix6, 56);
	assert_int_equal(cfg->rate_limit_resolver_rate, 2000);
	assert_int_equal(cfg->rate_limit_size, 65536);
	assert_int_equal(cfg->n_rate_limit_resolvers, 0);
	config_free(cfg);

	cfg = conf("rate_limit = 10\nrate_limit_slip = 0\nrate_limit_prefix4 = 32\n"
		   "rate_limit_prefix6 = 64\nrate_limit_size = 1024\n"
		   "rate_limit_resolvers = 192.0.2.53, 2001:db8::/48\n"
		   "rate_limit_resolver_rate = 50\necs_resolvers = 198.51.100.10\n",
		   &nerr);
	assert_non_null(cfg);
	assert_int_equal(cfg->rate_limit, 10);
	assert_int_equal(cfg->rate_limit_slip, 0);
	assert_int_equal(cfg->rate_limit_prefix4, 32);
	assert_int_equal(cfg->rate_limit_prefix6, 64);
	assert_int_equal(cfg->rate_limit_size, 1024);
	assert_int_equal(cfg->n_rate_limit_resolvers, 2);
	assert_int_equal(cfg->rate_limit_resolvers[1].len, 48);
	assert_int_equal(cfg->rate_limit_resolver_rate, 50);
	r = rrl_from_config(cfg);
	assert_non_null(r);
	v4("192.0.2.53", a);
	assert_int_equal(burst(r, AF_INET, a, 0, 100, NULL), 50);
	v4("198.51.100.10", a); /* an ECS resolver: the resolvers' rate */
	assert_int_equal(burst(r, AF_INET, a, 0, 100, NULL), 50);
	v4("198.51.100.11", a); /* prefix4 32: its own bucket, the rate */
	assert_int_equal(burst(r, AF_INET, a, 0, 100, NULL), 10);
	rrl_free(r);
	config_free(cfg);

	cfg = conf("rate_limit = 0\n", &nerr);
	assert_non_null(cfg);
	assert_int_equal(cfg->rate_limit, 0);
	config_free(cfg);

	/* out of range, not a prefix: refused, each reported */
	assert_null(conf("rate_limit = 1000001\nrate_limit_slip = 101\n"
			 "rate_limit_prefix4 = 7\nrate_limit_prefix6 = 129\n"
			 "rate_limit_size = 1000\nrate_limit_resolvers = 192.0.2.0/33, x\n"
			 "rate_limit_resolver_rate = -1\n", &nerr));
	assert_int_equal(nerr, 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bound_random),
		cmocka_unit_test(test_flood_and_slip),
		cmocka_unit_test(test_other_prefix),
		cmocka_unit_test(test_prefixing),
		cmocka_unit_test(test_resolvers),
		cmocka_unit_test(test_table_full),
		cmocka_unit_test(test_keyed),
		cmocka_unit_test(test_clock_jumps),
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_slip_reply),
		cmocka_unit_test(test_config_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
