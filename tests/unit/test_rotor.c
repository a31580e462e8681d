// SPDX-License-Identifier: MIT
#include <errno.h>
#include <math.h>
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
#include "rotor.h"

/*
 * 1 - 1e-6 quantiles of the chi-square distribution (Wilson-Hilferty): a
 * correct rotor fails each uniformity test about once in a million runs, so
 * CI does not flicker; a biased one (modulo bias, a stuck bit, a counter)
 * still fails it every time (modulo bias on a /28 gave 20 066).
 */
#define CHI2_BOUND_DOF7   41.9
#define CHI2_BOUND_DOF15  57.4
#define CHI2_BOUND_DOF127 217.9
#define CHI2_BOUND_DOF254 376.1

struct fixture {
	struct config cfg;
	struct config_service svc[2];
};

static void fixture_init(struct fixture *f, const char *pool,
			 const char *pool6, uint32_t window,
			 uint32_t max_open, uint32_t rotate, uint32_t ttl)
{
	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < 2; i++) {
		struct config_service *s = &f->svc[i];

		assert_int_equal(addr_prefix_parse(pool, &s->pool), 0);
		if (pool6) {
			s->has_pool6 = true;
			assert_int_equal(addr_prefix_parse(pool6, &s->pool6), 0);
		}
		s->window = window;
		s->binding = 600;
		s->max_open = max_open;
		s->rotate = rotate;
	}
	f->cfg.services = f->svc;
	f->cfg.n_services = 2;
	f->cfg.ttl = ttl;
	/* ECS is honoured from the test's resolvers, scoped to /20 and /56 */
	assert_int_equal(addr_prefix_parse("198.18.0.0/16", &f->cfg.ecs_resolvers[0]), 0);
	assert_int_equal(addr_prefix_parse("2001:db8:53::/48", &f->cfg.ecs_resolvers[1]), 0);
	f->cfg.n_ecs_resolvers = 2;
	f->cfg.ecs_prefix4 = 20;
	f->cfg.ecs_prefix6 = 56;
}

static struct rotor_query query(const char *src)
{
	struct rotor_query q;

	memset(&q, 0, sizeof(q));
	assert_int_equal(addr_parse(src, &q.family, q.src), 0);
	return q;
}

static struct rotor_query query_ecs(const char *src, const char *ecs,
				    uint8_t len)
{
	struct rotor_query q = query(src);

	q.has_ecs = true;
	q.ecs_len = len;
	assert_int_equal(addr_parse(ecs, &q.ecs_family, q.ecs_addr), 0);
	return q;
}

/* The host part of an IPv4 answer within its pool (the last 4 bytes). */
static uint32_t host4(const uint8_t a[16], unsigned host_bits)
{
	uint32_t v = (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 |
		     (uint32_t)a[2] << 8 | a[3];

	return host_bits == 32 ? v : v & ((UINT32_C(1) << host_bits) - 1);
}

static double chi2(const uint64_t *count, size_t bins, uint64_t n)
{
	double e = (double)n / (double)bins, x = 0;

	for (size_t i = 0; i < bins; i++)
		x += ((double)count[i] - e) * ((double)count[i] - e) / e;
	return x;
}

/* A random source that hands out exactly the bytes a test scripted. */
struct script {
	const uint8_t *bytes;
	size_t len, pos, calls;
};

static void script_rnd(void *ctx, void *buf, size_t len)
{
	struct script *s = ctx;

	assert_true(len <= s->len - s->pos);
	memcpy(buf, s->bytes + s->pos, len);
	s->pos += len;
	s->calls++;
}

static void answer_ok(struct rotor *r, size_t service, int family,
		      const struct rotor_query *q, uint64_t now,
		      struct rotor_answer *a)
{
	assert_int_equal(rotor_answer(r, service, family, q, now, a), 0);
}

static void assert_addr(int family, const uint8_t a[16], const char *want)
{
	uint8_t w[16];
	int fam;

	assert_int_equal(addr_parse(want, &fam, w), 0);
	assert_int_equal(fam, family);
	if (memcmp(a, w, 16)) {
		char buf[ADDR_STRLEN], wbuf[ADDR_STRLEN];

		print_error("address %s, expected %s\n",
			    addr_format(family, a, buf),
			    addr_format(family, w, wbuf));
		fail();
	}
}

/* Uniformity of fresh draws: every answer draws (max_open above the pool). */
static void uniform_v4(const char *pool, unsigned host_bits, double bound)
{
	struct fixture f;
	struct rotor *r;
	struct rotor_query q = query("198.18.0.1");
	struct rotor_answer a;
	struct rotor_stats st;
	size_t bins = (size_t)1 << host_bits;
	uint64_t *count = calloc(bins, sizeof(*count));
	uint64_t n = 160000;
	struct addr_prefix pfx;
	double x;

	assert_non_null(count);
	fixture_init(&f, pool, NULL, 5, 4096, 0, 5);
	assert_int_equal(addr_prefix_parse(pool, &pfx), 0);
	r = rotor_new(&f.cfg, NULL, NULL);
	assert_non_null(r);
	/* each answer comes after the last one's window: a fresh draw */
	for (uint64_t i = 0; i < n; i++) {
		answer_ok(r, 0, AF_INET, &q, i * 10000, &a);
		assert_true(addr_prefix_contains(&pfx, AF_INET, a.addr));
		count[host4(a.addr, host_bits)]++;
	}
	assert_int_equal(rotor_get_stats(r, 0, AF_INET, (n - 1) * 10000, &st), 0);
	assert_int_equal(st.reused, 0);
	assert_int_equal(st.opened, n);
	assert_int_equal(st.open_now, 1);
	x = chi2(count, bins, n);
	print_message("chi-square %s: %.2f over %zu bins (bound %.2f)\n",
		      pool, x, bins, bound);
	assert_true(x < bound);
	free(count);
	rotor_free(r);
}

static void test_uniform_v4_28(void **state)
{
	(void)state;
	uniform_v4("203.0.113.0/28", 4, CHI2_BOUND_DOF15);
}

static void test_uniform_v4_25(void **state)
{
	(void)state;
	uniform_v4("203.0.113.0/25", 7, CHI2_BOUND_DOF127);
}

/* A /120 pool6 has 255 valid host values: uniform over them, never zero. */
static void test_uniform_v6_120(void **state)
{
	struct fixture f;
	struct rotor *r;
	struct rotor_query q = query("2001:db8:53::1");
	struct rotor_answer a;
	struct addr_prefix pfx;
	uint64_t count[256] = { 0 }, n = 255 * 400;
	double x;

	(void)state;
	fixture_init(&f, "203.0.113.0/25", "2001:db8:1::100/120", 5, 4096, 0, 5);
	pfx = f.svc[0].pool6;
	r = rotor_new(&f.cfg, NULL, NULL);
	assert_non_null(r);
	for (uint64_t i = 0; i < n; i++) {
		answer_ok(r, 0, AF_INET6, &q, 0, &a);
		assert_int_equal(a.family, AF_INET6);
		assert_true(addr_prefix_contains(&pfx, AF_INET6, a.addr));
		assert_int_not_equal(a.addr[15], 0);
		count[a.addr[15]]++;
	}
	x = chi2(count + 1, 255, n);
	print_message("chi-square 2001:db8:1::100/120: %.2f over 255 bins (bound %.2f)\n",
		      x, CHI2_BOUND_DOF254);
	assert_true(x < CHI2_BOUND_DOF254);
	rotor_free(r);
}

/* Re-use at the cap picks uniformly among the open addresses. */
static void test_uniform_reuse(void **state)
{
	struct fixture f;
	struct rotor *r;
	struct rotor_query q = query("198.18.0.1");
	struct rotor_answer a;
	struct rotor_stats st;
	uint8_t open[8][16];
	uint64_t count[8] = { 0 }, n = 80000;
	size_t n_open = 0;
	double x;

	(void)state;
	fixture_init(&f, "198.51.100.0/24", NULL, 60, 8, 0, 5);
	r = rotor_new(&f.cfg, NULL, NULL);
	assert_non_null(r);
	while (n_open < 8) {
		size_t i;

		answer_ok(r, 0, AF_INET, &q, 0, &a);
		for (i = 0; i < n_open && memcmp(open[i], a.addr, 16); i++)
			;
		if (i == n_open)
			memcpy(open[n_open++], a.addr, 16);
	}
	for (uint64_t k = 0; k < n; k++) {
		size_t i;

		answer_ok(r, 0, AF_INET, &q, 1, &a);
		for (i = 0; i < 8 && memcmp(open[i], a.addr, 16); i++)
			;
		assert_true(i < 8); /* cmocka's assert ends the test here */
		if (i < 8)
			count[i]++;
	}
	assert_int_equal(rotor_get_stats(r, 0, AF_INET, 1, &st), 0);
	assert_int_equal(st.reused, n);
	assert_int_equal(st.opened, 8);
	x = chi2(count, 8, n);
	print_message("chi-square re-use among 8 open: %.2f (bound %.2f)\n",
		      x, CHI2_BOUND_DOF7);
	assert_true(x < CHI2_BOUND_DOF7);
	rotor_free(r);
}

/*
 * Someone who saw earlier answers learns nothing about the next: repeats are
 * as rare as chance, steps between answers are uniform (no stride, no
 * counter), and neighbours are uncorrelated.
 */
static void test_unpredictable(void **state)
{
	struct fixture f;
	struct rotor *r;
	struct rotor_query q = query("198.18.0.1");
	struct rotor_answer a;
	enum { N = 160000 };
	static uint32_t v[N];
	uint64_t diff[16] = { 0 }, same = 0;
	double x, mean = 0, var = 0, cov1 = 0, cov2 = 0, r1, r2;

	(void)state;
	fixture_init(&f, "203.0.113.0/28", NULL, 5, 4096, 0, 5);
	r = rotor_new(&f.cfg, NULL, NULL);
	assert_non_null(r);
	for (size_t i = 0; i < N; i++) {
		answer_ok(r, 0, AF_INET, &q, 0, &a);
		v[i] = host4(a.addr, 4);
	}
	for (size_t i = 1; i < N; i++) {
		same += v[i] == v[i - 1];
		diff[(v[i] - v[i - 1]) & 15]++;
	}
	/* expected (N-1)/16 ~ 10000, sd ~ 97: allow 6 sd */
	print_message("successive equal: %llu of %d (chance %.0f)\n",
		      (unsigned long long)same, N - 1, (N - 1) / 16.0);
	assert_true(fabs((double)same - (N - 1) / 16.0) < 6 * 97);
	x = chi2(diff, 16, N - 1);
	print_message("chi-square of steps: %.2f (bound %.2f)\n", x,
		      CHI2_BOUND_DOF15);
	assert_true(x < CHI2_BOUND_DOF15);
	for (size_t i = 0; i < 16; i++)
		assert_true(diff[i] > 0);
	rotor_free(r);

	/* serial correlation on a wider pool, lags 1 and 2 */
	fixture_init(&f, "198.51.100.0/24", NULL, 5, 4096, 0, 5);
	r = rotor_new(&f.cfg, NULL, NULL);
	assert_non_null(r);
	for (size_t i = 0; i < N; i++) {
		answer_ok(r, 0, AF_INET, &q, 0, &a);
		v[i] = host4(a.addr, 8);
		mean += v[i];
	}
	mean /= N;
	for (size_t i = 0; i < N; i++) {
		var += (v[i] - mean) * (v[i] - mean);
		if (i >= 1)
			cov1 += (v[i] - mean) * (v[i - 1] - mean);
		if (i >= 2)
			cov2 += (v[i] - mean) * (v[i - 2] - mean);
	}
	r1 = cov1 / var;
	r2 = cov2 / var;
	/* sd of r is ~1/sqrt(N) = 0.0025: allow 6 sd */
	print_message("serial correlation: lag 1 %.5f, lag 2 %.5f\n", r1, r2);
	assert_true(fabs(r1) < 0.015);
	assert_true(fabs(r2) < 0.015);
	rotor_free(r);
}

/* The draw is the scripted bytes and nothing else: no counter, no state. */
static void test_draw_follows_rng(void **state)
{
	static const uint8_t bytes[] = {
		0xab,                                           /* /25: 0x2b */
		0x00,                                           /* .0 */
		0xff,                                           /* .127 */
		0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, /* /64 */
		0, 0, 0, 0, 0, 0, 0, 0,                         /* iid 0: rejected */
		0, 0, 0, 0, 0, 0, 0, 1,                         /* ::1 */
	};
	struct script s = { .bytes = bytes, .len = sizeof(bytes) };
	struct fixture f;
	struct rotor *r;
	struct rotor_query q = query("198.18.0.1");
	struct rotor_answer a;

	(void)state;
	fixture_init(&f, "203.0.113.0/25", "2001:db8:1::/64", 5, 4096, 0, 5);
	r = rotor_new(&f.cfg, script_rnd, &s);
	assert_non_null(r);
	answer_ok(r, 0, AF_INET, &q, 0, &a);
	assert_addr(AF_INET, a.addr, "203.0.113.43");
	answer_ok(r, 0, AF_INET, &q, 0, &a);
	assert_addr(AF_INET, a.addr, "203.0.113.0");
	answer_ok(r, 0, AF_INET, &q, 0, &a);
	assert_addr(AF_INET, a.addr, "203.0.113.127");
	assert_int_equal(s.calls, 3);
	answer_ok(r, 0, AF_INET6, &q, 0, &a);
	assert_addr(AF_INET6, a.addr, "2001:db8:1::1234:5678:9abc:def0");
	answer_ok(r, 0, AF_INET6, &q, 0, &a);
	assert_addr(AF_INET6, a.addr, "2001:db8:1::1");
	assert_int_equal(s.pos, sizeof(bytes));
	rotor_free(r);

	/* a constant source gives a constant answer: nothing else is mixed in */
	{
		static const uint8_t same[64] = {
			[0 ... 63] = 0x05,
		};
		struct script c = { .bytes = same, .len = sizeof(same) };

		r = rotor_new(&f.cfg, script_rnd, &c);
		assert_non_null(r);
		for (uint64_t t = 0; t < 64; t++) {
			answer_ok(r, 1, AF_INET, &q, t * 7919, &a);
			assert_addr(AF_INET, a.addr, "203.0.113.5");
		}
		assert_int_equal(c.calls, 64);
		rotor_free(r);
	}
}

/* The re-use choice too comes from the source alone, without modulo bias. */
static void test_reuse_follows_rng(void **state)
{
	static const uint8_t bytes[] = {
		0x01, 0x02, 0x03,       /* three addresses open (cap 3) */
		0x02,                   /* re-use index 2 */
		0x03, 0x00,             /* 3 >= 3: rejected, then index 0 */
		0xfd,                   /* masked to 2 bits: 1 */
	};
	struct script s = { .bytes = bytes, .len = sizeof(bytes) };
	struct fixture f;
	struct rotor *r;
	struct rotor_query q = query("198.18.0.1");
	struct rotor_answer a;
	struct rotor_stats st;
	uint8_t first[3][16];

	(void)state;
	fixture_init(&f, "198.51.100.0/24", NULL, 5, 3, 0, 5);
	r = rotor_new(&f.cfg, script_rnd, &s);
	assert_non_null(r);
	for (size_t i = 0; i < 3; i++) {
		answer_ok(r, 0, AF_INET, &q, 0, &a);
		memcpy(first[i], a.addr, 16);
	}
	assert_addr(AF_INET, first[2], "198.51.100.3");
	answer_ok(r, 0, AF_INET, &q, 1, &a);
	assert_memory_equal(a.addr, first[2], 16);
	answer_ok(r, 0, AF_INET, &q, 2, &a);
	assert_memory_equal(a.addr, first[0], 16);
	answer_ok(r, 0, AF_INET, &q, 3, &a);
	assert_memory_equal(a.addr, first[1], 16);
	assert_int_equal(s.pos, sizeof(bytes));
	assert_int_equal(rotor_get_stats(r, 0, AF_INET, 3, &st), 0);
	assert_int_equal(st.answers, 6);
	assert_int_equal(st.opened, 3);
	assert_int_equal(st.reused, 3);
	rotor_free(r);
}

/* What a test believes is open, from the answers alone. */
struct model {
	uint8_t addr[4096][16];
	uint64_t expiry[4096];
	size_t n;
};

static size_t model_count(struct model *m, uint64_t now)
{
	size_t i = 0;

	while (i < m->n) {
		if (now < m->expiry[i] + ROTOR_EXPIRY_SLACK_MS) {
			i++;
		} else {
			m->n--;
			memcpy(m->addr[i], m->addr[m->n], 16);
			m->expiry[i] = m->expiry[m->n];
		}
	}
	return m->n;
}

static void model_open(struct model *m, const struct rotor_answer *a,
		       uint64_t now)
{
	for (size_t k = 0; k < a->n_changes; k++) {
		const struct change *c = &a->changes[k];
		size_t i;

		if (c->kind != CHANGE_OPEN && c->kind != CHANGE_OPEN_SCOPED)
			continue;
		for (i = 0; i < m->n && memcmp(m->addr[i], c->addr, 16); i++)
			;
		if (i == m->n) {
			assert_true(m->n < 4096);
			memcpy(m->addr[m->n++], c->addr, 16);
		}
		m->expiry[i] = now + c->ms;
	}
}

static void cap_under_load(uint32_t window, uint64_t span_ms, uint32_t max_open)
{
	static struct model m;
	struct fixture f;
	struct rotor *r;
	struct rotor_query q = query("198.18.0.1");
	struct rotor_query qs = query_ecs("198.18.0.1", "198.18.7.0", 24);
	struct rotor_answer a;
	struct rotor_stats st;
	uint64_t n = 100000, opened = 0, reused = 0, extended = 0, scoped = 0;
	size_t most = 0;

	fixture_init(&f, "203.0.113.0/24", NULL, window, max_open, 0, 5);
	r = rotor_new(&f.cfg, NULL, NULL);
	assert_non_null(r);
	memset(&m, 0, sizeof(m));
	for (uint64_t i = 0; i < n; i++) {
		uint64_t now = i * span_ms / n;
		size_t before = model_count(&m, now), after, j;
		bool was_open;

		/* every tenth asker sends ECS: a scoped window, counted too */
		answer_ok(r, 0, AF_INET, i % 10 ? &q : &qs, now, &a);
		for (j = 0; j < m.n && memcmp(m.addr[j], a.addr, 16); j++)
			;
		was_open = j < m.n;
		if (before >= max_open)
			assert_true(was_open); /* at the cap: re-use only */
		if (i % 10 == 0) {
			scoped++;
			assert_int_equal(a.changes[1].kind, CHANGE_OPEN_SCOPED);
		}
		model_open(&m, &a, now);
		after = model_count(&m, now);
		assert_true(after <= max_open);
		if (after > most)
			most = after;
		if (!was_open)
			opened++;
		else if (before >= max_open)
			reused++;
		else
			extended++;
		assert_int_equal(rotor_get_stats(r, 0, AF_INET, now, &st), 0);
		assert_int_equal(st.open_now, after);
	}
	assert_int_equal(rotor_get_stats(r, 0, AF_INET, span_ms, &st), 0);
	print_message("window %u s over %llu ms, cap %u: opened %llu, reused %llu, drawn-already-open %llu, most open %zu\n",
		      window, (unsigned long long)span_ms, max_open,
		      (unsigned long long)st.opened,
		      (unsigned long long)st.reused,
		      (unsigned long long)extended, most);
	assert_int_equal(st.answers, n);
	assert_int_equal(st.opened, opened);
	assert_int_equal(st.reused, reused);
	assert_int_equal(most, max_open);
	assert_int_equal(scoped, n / 10);
	assert_true(st.reused > n / 2);
	rotor_free(r);
}

static void test_cap_one_second(void **state)
{
	(void)state;
	cap_under_load(5, 1000, 16);
}

static void test_cap_windows_turn_over(void **state)
{
	/* 1 s windows over 5 s: addresses close and others open, cap 4 */
	(void)state;
	cap_under_load(1, 5000, 4);
}

struct seen {
	uint8_t addr[16];
	uint64_t ms_left;
	size_t n;
};

static void seen_fn(void *ctx, const uint8_t addr[16], uint64_t ms_left)
{
	struct seen *s = ctx;

	memcpy(s->addr, addr, 16);
	s->ms_left = ms_left;
	s->n++;
}

static void test_window_expiry(void **state)
{
	static const uint8_t bytes[] = { 0x0a, 0x0b };
	struct script s = { .bytes = bytes, .len = sizeof(bytes) };
	struct fixture f;
	struct rotor *r;
	struct rotor_query q = query("198.18.0.1");
	struct rotor_answer a;
	struct rotor_stats st;
	struct seen seen = { 0 };
	uint64_t t0 = 1000, end = t0 + 5000 + ROTOR_EXPIRY_SLACK_MS, last;

	(void)state;
	fixture_init(&f, "203.0.113.0/24", NULL, 5, 1, 0, 5);
	r = rotor_new(&f.cfg, script_rnd, &s);
	assert_non_null(r);
	answer_ok(r, 0, AF_INET, &q, t0, &a);
	assert_addr(AF_INET, a.addr, "203.0.113.10");

	assert_int_equal(rotor_foreach_open(r, 0, AF_INET, t0 + 4999, seen_fn,
					    &seen), 1);
	assert_int_equal(seen.ms_left, 1);
	assert_int_equal(rotor_foreach_open(r, 0, AF_INET, end - 1, seen_fn,
					    &seen), 1);
	assert_int_equal(seen.ms_left, 0);
	assert_addr(AF_INET, seen.addr, "203.0.113.10");
	assert_int_equal(rotor_get_stats(r, 0, AF_INET, end - 1, &st), 0);
	assert_int_equal(st.open_now, 1);
	assert_int_equal(rotor_get_stats(r, 0, AF_INET, end, &st), 0);
	assert_int_equal(st.open_now, 0);
	assert_int_equal(rotor_foreach_open(r, 0, AF_INET, end, seen_fn,
					    &seen), 0);

	/* cap 1: one ms before the end the open address is re-used (and its
	   window runs a full 5 s from there), at the end a new one is drawn */
	last = end - 1;
	answer_ok(r, 0, AF_INET, &q, last, &a);
	assert_addr(AF_INET, a.addr, "203.0.113.10");
	assert_int_equal(s.pos, 1);
	rotor_foreach_open(r, 0, AF_INET, last, seen_fn, &seen);
	assert_int_equal(seen.ms_left, 5000);
	for (int i = 0; i < 2; i++) {
		last += 5000 + ROTOR_EXPIRY_SLACK_MS - 1;
		answer_ok(r, 0, AF_INET, &q, last, &a);
		assert_addr(AF_INET, a.addr, "203.0.113.10");
	}
	answer_ok(r, 0, AF_INET, &q, last + 5000 + ROTOR_EXPIRY_SLACK_MS, &a);
	assert_addr(AF_INET, a.addr, "203.0.113.11");
	assert_int_equal(s.pos, 2);
	assert_int_equal(rotor_get_stats(r, 0, AF_INET, 0, &st), 0);
	assert_int_equal(st.opened, 2);
	assert_int_equal(st.reused, 3);
	rotor_free(r);
}

static void test_rotate(void **state)
{
	static const uint8_t bytes[] = { 0x21, 0x22, 0x23, 0x24, 0x25 };
	struct script s = { .bytes = bytes, .len = sizeof(bytes) };
	struct fixture f;
	struct rotor *r;
	struct rotor_query q = query("198.18.0.1");
	struct rotor_answer a;
	struct rotor_stats st;
	struct seen seen = { 0 };

	(void)state;
	fixture_init(&f, "203.0.113.0/24", NULL, 5, 16, 10, 5);
	r = rotor_new(&f.cfg, script_rnd, &s);
	assert_non_null(r);
	for (uint64_t t = 0; t < 10000; t += 250) {
		answer_ok(r, 0, AF_INET, &q, t, &a);
		assert_addr(AF_INET, a.addr, "203.0.113.33");
	}
	assert_int_equal(s.pos, 1);
	/* each answer re-opens it for a full window */
	assert_int_equal(rotor_foreach_open(r, 0, AF_INET, 9750, seen_fn, &seen), 1);
	assert_int_equal(seen.ms_left, 5000);
	answer_ok(r, 0, AF_INET, &q, 9999, &a);
	assert_addr(AF_INET, a.addr, "203.0.113.33");
	answer_ok(r, 0, AF_INET, &q, 10000, &a);
	assert_addr(AF_INET, a.addr, "203.0.113.34");
	/* kept for the rotate period even though its window had closed */
	answer_ok(r, 0, AF_INET, &q, 19999, &a);
	assert_addr(AF_INET, a.addr, "203.0.113.34");
	answer_ok(r, 0, AF_INET, &q, 20000, &a);
	assert_addr(AF_INET, a.addr, "203.0.113.35");
	assert_int_equal(s.pos, 3);
	/* rotate longer than the window: the address is kept, re-opened */
	answer_ok(r, 0, AF_INET, &q, 28000, &a);
	assert_addr(AF_INET, a.addr, "203.0.113.35");
	assert_int_equal(rotor_get_stats(r, 0, AF_INET, 28000, &st), 0);
	/* .33, .34 twice (10000, 19999), .35 twice (20000, 28000) */
	assert_int_equal(st.opened, 5);
	assert_int_equal(st.open_now, 1);
	rotor_free(r);

	/* rotate = 0: a fresh draw for every answer */
	s.pos = 0;
	s.calls = 0;
	f.svc[0].rotate = 0;
	r = rotor_new(&f.cfg, script_rnd, &s);
	assert_non_null(r);
	for (size_t i = 0; i < 5; i++) {
		answer_ok(r, 0, AF_INET, &q, 0, &a);
		assert_int_equal(a.addr[3], 0x21 + i);
	}
	assert_int_equal(s.calls, 5);
	rotor_free(r);
}

/* A kept address never takes the rotor past the cap. */
static void test_rotate_at_cap(void **state)
{
	static const uint8_t bytes[] = { 0x01, 0x02, 0x03 };
	struct script s = { .bytes = bytes, .len = sizeof(bytes) };
	struct fixture f;
	struct rotor *r;
	struct rotor_query q = query("198.18.0.1");
	struct rotor_query qs = query_ecs("198.18.0.1", "198.18.7.9", 24);
	struct rotor_answer a;
	struct rotor_stats st;

	(void)state;
	fixture_init(&f, "203.0.113.0/24", NULL, 2, 1, 60, 2);
	r = rotor_new(&f.cfg, script_rnd, &s);
	assert_non_null(r);
	/* a scoped answer opens .1 (counted like any window) */
	answer_ok(r, 0, AF_INET, &qs, 0, &a);
	assert_addr(AF_INET, a.addr, "203.0.113.1");
	assert_int_equal(a.changes[1].kind, CHANGE_OPEN_SCOPED);
	assert_int_equal(rotor_get_stats(r, 0, AF_INET, 0, &st), 0);
	assert_int_equal(st.open_now, 1);
	/* kept (rotate 60 s), its window extended */
	answer_ok(r, 0, AF_INET, &q, 100, &a);
	assert_addr(AF_INET, a.addr, "203.0.113.1");
	assert_int_equal(rotor_get_stats(r, 0, AF_INET, 100, &st), 0);
	assert_int_equal(st.open_now, 1);
	assert_int_equal(st.opened, 1);
	/* its window closed: still kept, opened again */
	answer_ok(r, 0, AF_INET, &q, 2350, &a);
	assert_addr(AF_INET, a.addr, "203.0.113.1");
	assert_int_equal(s.pos, 1);
	rotor_free(r);

	/* at the cap scoped and plain answers alike re-use; below it they draw */
	s.pos = 0;
	f.svc[0].rotate = 0;
	r = rotor_new(&f.cfg, script_rnd, &s);
	assert_non_null(r);
	answer_ok(r, 0, AF_INET, &q, 0, &a);     /* .1 open */
	assert_addr(AF_INET, a.addr, "203.0.113.1");
	answer_ok(r, 0, AF_INET, &qs, 0, &a);    /* cap: scoped re-uses .1 */
	assert_addr(AF_INET, a.addr, "203.0.113.1");
	answer_ok(r, 0, AF_INET, &qs, 2250, &a); /* .1 closed: scoped draws .2 */
	assert_addr(AF_INET, a.addr, "203.0.113.2");
	answer_ok(r, 0, AF_INET, &q, 2251, &a);  /* cap: re-uses .2 */
	assert_addr(AF_INET, a.addr, "203.0.113.2");
	answer_ok(r, 0, AF_INET, &q, 4501, &a);  /* .2 closed: .3 drawn */
	assert_addr(AF_INET, a.addr, "203.0.113.3");
	f.svc[0].rotate = 60;
	answer_ok(r, 0, AF_INET, &qs, 4502, &a); /* current .3 is open: kept */
	assert_addr(AF_INET, a.addr, "203.0.113.3");
	assert_int_equal(rotor_get_stats(r, 0, AF_INET, 4502, &st), 0);
	assert_int_equal(st.open_now, 1);
	assert_int_equal(st.opened, 3);
	assert_int_equal(st.reused, 2);
	assert_int_equal(s.pos, 3);
	rotor_free(r);
}

/* choreod's own DNS address inside the pool is never handed out */
static void test_listen_address_excluded(void **state)
{
	struct rotor_query q = { .family = AF_INET };
	struct fixture f;
	struct sockaddr_in *sin;
	struct rotor_answer a;
	struct rotor *r;
	unsigned seen[4] = { 0 };

	(void)state;
	fixture_init(&f, "203.0.113.52/30", NULL, 5, 4096, 0, 5);
	sin = (struct sockaddr_in *)&f.cfg.listen[0];
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, "203.0.113.53", &sin->sin_addr);
	f.cfg.n_listen = 1;
	r = rotor_new(&f.cfg, NULL, NULL);
	assert_non_null(r);
	for (int i = 0; i < 3000; i++) {
		answer_ok(r, 0, AF_INET, &q, (uint64_t)i * 10000, &a);
		seen[a.addr[3] - 52]++;
	}
	assert_int_equal(seen[1], 0);
	/* the three other addresses all come up */
	assert_true(seen[0] > 800 && seen[2] > 800 && seen[3] > 800);
	rotor_free(r);
}

static void test_ipv6(void **state)
{
	struct fixture f;
	struct rotor *r;
	struct rotor_query q = query("2001:db8:53::1");
	struct rotor_answer a;
	struct rotor_stats st;
	struct addr_prefix p64;
	uint64_t ones[64] = { 0 }, n = 20000;

	(void)state;
	fixture_init(&f, "203.0.113.0/25", "2001:db8:1::/64", 5, 4096, 0, 5);
	p64 = f.svc[0].pool6;
	r = rotor_new(&f.cfg, NULL, NULL);
	assert_non_null(r);
	for (uint64_t i = 0; i < n; i++) {
		static const uint8_t zero[8];

		answer_ok(r, 0, AF_INET6, &q, i, &a);
		assert_int_equal(a.family, AF_INET6);
		assert_true(addr_prefix_contains(&p64, AF_INET6, a.addr));
		assert_memory_not_equal(a.addr + 8, zero, 8);
		for (unsigned b = 0; b < 64; b++)
			ones[b] += a.addr[8 + b / 8] >> (7 - b % 8) & 1;
	}
	/* every interface id bit is random: n/2 +- 6 sd (sd ~ 71) */
	for (unsigned b = 0; b < 64; b++)
		assert_true(fabs((double)ones[b] - n / 2.0) < 6 * 71);
	rotor_free(r);

	/* no pool6: no AAAA data, and nothing changes */
	fixture_init(&f, "203.0.113.0/25", NULL, 5, 16, 0, 5);
	r = rotor_new(&f.cfg, NULL, NULL);
	assert_non_null(r);
	assert_int_equal(rotor_answer(r, 0, AF_INET6, &q, 0, &a), -ENODATA);
	assert_int_equal(rotor_get_stats(r, 0, AF_INET6, 0, &st), -ENODATA);
	assert_int_equal(rotor_get_stats(r, 0, AF_INET, 0, &st), 0);
	assert_int_equal(st.answers, 0);
	rotor_free(r);
}

static void test_changes(void **state)
{
	struct fixture f;
	struct rotor *r;
	struct rotor_query q4 = query("198.18.0.1");
	struct rotor_query q6 = query("2001:db8:53::1");
	struct rotor_query e4 = query_ecs("2001:db8:53::1", "198.18.7.9", 20);
	struct rotor_query e6 = query_ecs("198.18.0.1", "2001:db8:77:6543::1", 56);
	struct rotor_answer a;
	struct rotor_stats st;
	uint8_t src[16];
	int fam;

	(void)state;
	fixture_init(&f, "203.0.113.0/25", "2001:db8:1::/64", 5, 16, 0, 30);
	r = rotor_new(&f.cfg, NULL, NULL);
	assert_non_null(r);

	/* IPv4 resolver asks A: bind for max(window, ttl), open for window */
	answer_ok(r, 1, AF_INET, &q4, 0, &a);
	assert_int_equal(a.family, AF_INET);
	assert_int_equal(a.ttl, 30);
	assert_int_equal(a.ecs_scope, 0);
	assert_int_equal(a.n_changes, 2);
	assert_int_equal(a.changes[0].kind, CHANGE_BIND);
	assert_int_equal(a.changes[0].family, AF_INET);
	assert_int_equal(a.changes[0].service, 1);
	assert_int_equal(a.changes[0].src_len, 32);
	assert_int_equal(a.changes[0].ms, 30000);
	assert_memory_equal(a.changes[0].src, q4.src, 16);
	assert_memory_equal(a.changes[0].addr, a.addr, 16);
	assert_int_equal(a.changes[1].kind, CHANGE_OPEN);
	assert_int_equal(a.changes[1].family, AF_INET);
	assert_int_equal(a.changes[1].service, 1);
	assert_int_equal(a.changes[1].ms, 5000);
	assert_memory_equal(a.changes[1].addr, a.addr, 16);

	/* IPv6 resolver asks A: no binding, only the window */
	answer_ok(r, 1, AF_INET, &q6, 0, &a);
	assert_int_equal(a.n_changes, 1);
	assert_int_equal(a.changes[0].kind, CHANGE_OPEN);
	assert_int_equal(a.changes[0].family, AF_INET);

	/* IPv6 resolver asks AAAA; window longer than ttl */
	f.svc[1].window = 60;
	answer_ok(r, 1, AF_INET6, &q6, 0, &a);
	assert_int_equal(a.family, AF_INET6);
	assert_int_equal(a.n_changes, 2);
	assert_int_equal(a.changes[0].kind, CHANGE_BIND);
	assert_int_equal(a.changes[0].family, AF_INET6);
	assert_int_equal(a.changes[0].src_len, 128);
	assert_int_equal(a.changes[0].ms, 60000);
	assert_memory_equal(a.changes[0].src, q6.src, 16);
	assert_memory_equal(a.changes[0].addr, a.addr, 16);
	assert_int_equal(a.changes[1].kind, CHANGE_OPEN);
	assert_int_equal(a.changes[1].ms, 60000);
	/* cppcheck-suppress redundantAssignment ; the rotor read 60 through its config pointer */
	f.svc[1].window = 5;

	/* ECS of the answer's family from a trusted resolver: a scoped window
	 * of [dns] ecs_prefix4 bits, counted against max_open */
	{
		struct seen seen = { 0 };
		struct rotor_query e4_24 = query_ecs("2001:db8:53::1", "198.18.31.9", 24);
		size_t before = rotor_foreach_open(r, 1, AF_INET, 0, NULL, NULL);

		answer_ok(r, 1, AF_INET, &e4, 0, &a);
		assert_int_equal(a.ecs_scope, 20);
		assert_int_equal(a.n_changes, 1); /* IPv6 asker: no binding */
		assert_int_equal(a.changes[0].kind, CHANGE_OPEN_SCOPED);
		assert_int_equal(a.changes[0].family, AF_INET);
		assert_int_equal(a.changes[0].src_len, 20);
		assert_int_equal(a.changes[0].ms, 5000);
		assert_int_equal(addr_parse("198.18.0.0", &fam, src), 0);
		assert_memory_equal(a.changes[0].src, src, 16);
		assert_memory_equal(a.changes[0].addr, a.addr, 16);
		/* counted like the plain answers before it: one more address
		 * open, unless the draw hit one already open */
		assert_true(rotor_foreach_open(r, 1, AF_INET, 0, seen_fn, &seen) >= before);
		assert_true(rotor_foreach_open(r, 1, AF_INET, 0, NULL, NULL) <= before + 1);
		assert_int_equal(rotor_get_stats(r, 1, AF_INET, 0, &st), 0);
		assert_int_equal(st.open_now, st.opened);
		assert_int_equal(rotor_get_stats(r, 1, AF_INET, 0, &st), 0);
		assert_int_equal(st.answers, 3);
		/* a longer client subnet is widened to /20: windows never overlap */
		answer_ok(r, 1, AF_INET, &e4_24, 0, &a);
		assert_int_equal(a.ecs_scope, 20);
		assert_int_equal(a.changes[0].src_len, 20);
		assert_int_equal(addr_parse("198.18.16.0", &fam, src), 0);
		assert_memory_equal(a.changes[0].src, src, 16);
	}
	/* from a resolver not in ecs_resolvers, or a subnet shorter than
	 * ecs_prefix4: ignored, a plain window, scope 0 */
	{
		struct rotor_query stranger = query_ecs("192.0.2.99", "198.18.7.9", 24);
		struct rotor_query broad = query_ecs("198.18.0.1", "128.0.0.0", 1);
		struct rotor_query zero = query_ecs("198.18.0.1", "0.0.0.0", 0);
		struct rotor_query past = query_ecs("198.18.0.1", "198.18.7.9", 33);
		const struct rotor_query *ignored[] = { &stranger, &broad, &zero, &past };

		for (size_t i = 0; i < 4; i++) {
			answer_ok(r, 1, AF_INET, ignored[i], 0, &a);
			assert_int_equal(a.ecs_scope, 0);
			assert_int_equal(a.n_changes, 2);
			assert_int_equal(a.changes[0].kind, CHANGE_BIND);
			assert_int_equal(a.changes[1].kind, CHANGE_OPEN);
		}
	}

	/* IPv4 asker with IPv6 ECS asks AAAA: binding impossible, scoped /56 */
	answer_ok(r, 1, AF_INET6, &e6, 0, &a);
	assert_int_equal(a.ecs_scope, 56);
	assert_int_equal(a.n_changes, 1);
	assert_int_equal(a.changes[0].kind, CHANGE_OPEN_SCOPED);
	assert_int_equal(a.changes[0].family, AF_INET6);
	assert_int_equal(a.changes[0].src_len, 56);
	assert_int_equal(addr_parse("2001:db8:77:6500::", &fam, src), 0);
	assert_memory_equal(a.changes[0].src, src, 16);

	/* ECS of the other family: a plain window, scope 0 */
	answer_ok(r, 1, AF_INET, &e6, 0, &a);
	assert_int_equal(a.ecs_scope, 0);
	assert_int_equal(a.n_changes, 2);
	assert_int_equal(a.changes[0].kind, CHANGE_BIND);
	assert_int_equal(a.changes[1].kind, CHANGE_OPEN);
	answer_ok(r, 1, AF_INET6, &e4, 0, &a);
	assert_int_equal(a.ecs_scope, 0);
	assert_int_equal(a.n_changes, 2);
	assert_int_equal(a.changes[0].kind, CHANGE_BIND);
	assert_int_equal(a.changes[1].kind, CHANGE_OPEN);

	/* service 0 was never asked */
	assert_int_equal(rotor_get_stats(r, 0, AF_INET, 0, &st), 0);
	assert_int_equal(st.answers, 0);
	rotor_free(r);
}

/* At the cap a scoped answer re-uses an open address, and extends its
 * window like any answer: the slot covers both. */
static void test_scoped_at_cap(void **state)
{
	static const uint8_t bytes[] = { 0x07 };
	struct script s = { .bytes = bytes, .len = sizeof(bytes) };
	struct fixture f;
	struct rotor *r;
	struct rotor_query q = query("198.18.0.1");
	struct rotor_query qs = query_ecs("198.18.0.1", "198.18.7.9", 24);
	struct rotor_answer a;
	struct rotor_stats st;
	struct seen seen = { 0 };

	(void)state;
	fixture_init(&f, "203.0.113.0/24", NULL, 5, 1, 0, 5);
	r = rotor_new(&f.cfg, script_rnd, &s);
	assert_non_null(r);
	answer_ok(r, 0, AF_INET, &q, 0, &a);
	assert_addr(AF_INET, a.addr, "203.0.113.7");
	answer_ok(r, 0, AF_INET, &qs, 3000, &a);
	assert_addr(AF_INET, a.addr, "203.0.113.7");
	assert_int_equal(a.changes[1].kind, CHANGE_OPEN_SCOPED);
	assert_int_equal(s.pos, 1); /* one open: index 0 without a draw */
	rotor_foreach_open(r, 0, AF_INET, 3000, seen_fn, &seen);
	assert_int_equal(seen.ms_left, 5000);
	assert_int_equal(rotor_get_stats(r, 0, AF_INET, 3000, &st), 0);
	assert_int_equal(st.reused, 1);
	assert_int_equal(st.opened, 1);
	assert_int_equal(st.open_now, 1);
	rotor_free(r);
}

/* The grace: windows and askers' entries outlive the TTL by it. */
static void test_grace(void **state)
{
	struct fixture f;
	struct rotor *r;
	struct rotor_query q = query("198.18.0.1");
	struct rotor_answer a;
	struct seen seen = { 0 };

	(void)state;
	fixture_init(&f, "203.0.113.0/24", NULL, 5, 4, 0, 5);
	f.svc[0].grace = 2;
	r = rotor_new(&f.cfg, NULL, NULL);
	assert_non_null(r);
	answer_ok(r, 0, AF_INET, &q, 1000, &a);
	assert_int_equal(a.changes[0].ms, 7000); /* bind: ttl + grace */
	assert_int_equal(a.changes[1].ms, 7000); /* open: window + grace */
	assert_int_equal(rotor_foreach_open(r, 0, AF_INET, 1000, seen_fn, &seen), 1);
	assert_int_equal(seen.ms_left, 7000);
	/* counted until the kernel's element has surely gone */
	assert_int_equal(rotor_foreach_open(r, 0, AF_INET, 8000 + ROTOR_EXPIRY_SLACK_MS - 1,
					    seen_fn, &seen), 1);
	assert_int_equal(rotor_foreach_open(r, 0, AF_INET, 8000 + ROTOR_EXPIRY_SLACK_MS,
					    seen_fn, &seen), 0);
	rotor_free(r);
}

/* A restart seeds what the kernel holds; what this configuration would
 * not hand out, or what is past the cap, is refused (and then removed). */
static void test_seed(void **state)
{
	struct fixture f;
	struct rotor *r;
	struct sockaddr_in *sin;
	uint8_t a[16];
	int fam;

	(void)state;
	/* a /30 pool (4 addresses, one of them choreod's) and max_open 16 */
	fixture_init(&f, "203.0.113.52/30", "2001:db8:1::/120", 5, 16, 0, 5);
	sin = (struct sockaddr_in *)&f.cfg.listen[0];
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, "203.0.113.53", &sin->sin_addr);
	f.cfg.n_listen = 1;
	r = rotor_new(&f.cfg, NULL, NULL);
	assert_non_null(r);
	assert_int_equal(addr_parse("203.0.113.1", &fam, a), 0);
	assert_false(rotor_pool_has(r, 0, AF_INET, a));
	assert_int_equal(rotor_seed_open(r, 0, AF_INET, a, 5000), -EINVAL);
	assert_int_equal(addr_parse("203.0.113.53", &fam, a), 0);
	assert_false(rotor_pool_has(r, 0, AF_INET, a));
	assert_int_equal(rotor_seed_open(r, 0, AF_INET, a, 5000), -EINVAL);
	assert_int_equal(addr_parse("2001:db8:1::", &fam, a), 0);
	assert_false(rotor_pool_has(r, 0, AF_INET6, a)); /* subnet-router anycast */
	assert_int_equal(rotor_seed_open(r, 0, AF_INET6, a, 5000), -EINVAL);
	assert_int_equal(addr_parse("2001:db8:1::ff", &fam, a), 0);
	assert_true(rotor_pool_has(r, 0, AF_INET6, a));
	assert_int_equal(rotor_seed_open(r, 0, AF_INET6, a, 5000), 0);
	/* the pool is smaller than max_open: its 4 addresses are the cap */
	for (int i = 0; i < 4; i++) {
		char text[32];

		snprintf(text, sizeof(text), "203.0.113.%d", 52 + i);
		assert_int_equal(addr_parse(text, &fam, a), 0);
		assert_int_equal(rotor_seed_open(r, 0, AF_INET, a, 5000),
				 i == 1 ? -EINVAL : 0);
	}
	/* all drawable addresses open: answers re-use, never write past */
	for (int i = 0; i < 100; i++) {
		struct rotor_query q = query("198.18.0.1");
		struct rotor_answer ans;

		answer_ok(r, 0, AF_INET, &q, (uint64_t)i, &ans);
		assert_true(ans.addr[3] != 53);
	}
	rotor_free(r);

	/* max_open 2: the third window the kernel holds is refused */
	fixture_init(&f, "203.0.113.0/24", NULL, 5, 2, 0, 5);
	r = rotor_new(&f.cfg, NULL, NULL);
	assert_non_null(r);
	for (int i = 0; i < 3; i++) {
		char text[32];

		snprintf(text, sizeof(text), "203.0.113.%d", 10 + i);
		assert_int_equal(addr_parse(text, &fam, a), 0);
		assert_int_equal(rotor_seed_open(r, 0, AF_INET, a, 5000),
				 i < 2 ? 0 : -ENOSPC);
	}
	rotor_free(r);
}

/*
 * A DNS node of the distributed mode: a gateway may apply a commit until its
 * acknowledgement is due (commit_timeout), so an address stays counted that
 * long past its window; and changes whose fate is unknown may land until a
 * gateway stops accepting their frame, so rotor_hold keeps every address
 * counted now until then plus a window, and no new address opens meanwhile.
 */
static void test_dns_node_late_commits(void **state)
{
	struct fixture f;
	struct rotor *r;
	struct rotor_query q = query("198.18.0.1");
	struct rotor_answer a;
	struct rotor_stats st;
	struct seen seen = { 0 };
	uint8_t first[16];
	uint64_t t = 1000;

	(void)state;
	fixture_init(&f, "203.0.113.0/24", NULL, 5, 2, 0, 5);
	f.cfg.role = CONFIG_ROLE_DNS;
	f.cfg.commit_timeout = 1000;
	r = rotor_new(&f.cfg, NULL, NULL);
	assert_non_null(r);
	answer_ok(r, 0, AF_INET, &q, t, &a);
	memcpy(first, a.addr, 16);
	/* counted until the window's end + commit_timeout, not + 250 ms */
	assert_int_equal(rotor_get_stats(r, 0, AF_INET, t + 5000 + 999, &st), 0);
	assert_int_equal(st.open_now, 1);
	assert_int_equal(rotor_get_stats(r, 0, AF_INET, t + 5000 + 1000, &st), 0);
	assert_int_equal(st.open_now, 0);

	/* a second address; then a commit's fate becomes unknown at t + 1300 */
	answer_ok(r, 0, AF_INET, &q, t + 100, &a);
	assert_memory_not_equal(a.addr, first, 16);
	rotor_hold(r, t + 1300, 30000);
	/* both stay counted until t + 1300 + 30 s + the window (+ slack) */
	assert_int_equal(rotor_get_stats(r, 0, AF_INET, t + 1300 + 35000 + 999, &st), 0);
	assert_int_equal(st.open_now, 2);
	assert_int_equal(rotor_foreach_open(r, 0, AF_INET, t + 1300 + 35000 - 1, seen_fn,
					    &seen), 2);
	assert_int_equal(seen.ms_left, 1);
	/* at max_open 2 every answer meanwhile re-uses one of them, and never
	 * shortens what the hold counts */
	for (uint64_t u = t + 2000; u < t + 1300 + 35000; u += 500) {
		answer_ok(r, 0, AF_INET, &q, u, &a);
		assert_int_equal(rotor_get_stats(r, 0, AF_INET, u, &st), 0);
		assert_int_equal(st.open_now, 2);
	}
	assert_int_equal(rotor_get_stats(r, 0, AF_INET, 0, &st), 0);
	assert_int_equal(st.opened, 2);
	rotor_free(r);

	/* a standalone node keeps the 250 ms slack */
	fixture_init(&f, "203.0.113.0/24", NULL, 5, 2, 0, 5);
	f.cfg.commit_timeout = 1000;
	r = rotor_new(&f.cfg, NULL, NULL);
	assert_non_null(r);
	answer_ok(r, 0, AF_INET, &q, t, &a);
	assert_int_equal(rotor_get_stats(r, 0, AF_INET, t + 5000 + ROTOR_EXPIRY_SLACK_MS, &st), 0);
	assert_int_equal(st.open_now, 0);
	rotor_free(r);
}

/* A DNS node with a controller: nothing until rotor_assign; then only its
 * slice, at most its share; an old slice's windows stay counted and are
 * never handed out again. */
static void test_controller_assign(void **state)
{
	struct fixture f;
	struct config_peer ctl = { .name = (char *)"ctl", .role = CONFIG_ROLE_CONTROLLER };
	struct rotor *r;
	struct rotor_query q = query("198.18.0.1");
	struct rotor_answer a;
	struct rotor_stats st;
	struct addr_prefix s1, s2, out;
	uint8_t seen[2][16];
	uint64_t t = 1000;

	(void)state;
	fixture_init(&f, "203.0.113.0/24", NULL, 5, 4, 0, 5);
	f.cfg.role = CONFIG_ROLE_DNS;
	f.cfg.peers = &ctl;
	f.cfg.n_peers = 1;
	assert_int_equal(addr_prefix_parse("203.0.113.64/26", &s1), 0);
	assert_int_equal(addr_prefix_parse("203.0.113.128/26", &s2), 0);
	assert_int_equal(addr_prefix_parse("198.51.100.0/26", &out), 0);
	r = rotor_new(&f.cfg, NULL, NULL);
	assert_non_null(r);
	assert_int_equal(rotor_answer(r, 0, AF_INET, &q, t, &a), -EAGAIN);
	assert_int_equal(rotor_assign(r, 0, AF_INET, &out, 2), -EINVAL);
	assert_int_equal(rotor_assign(r, 0, AF_INET, &s1, 5), -EINVAL); /* > max_open */
	assert_int_equal(rotor_assign(r, 0, AF_INET6, &s1, 2), -ENODATA);
	assert_int_equal(rotor_assign(r, 0, AF_INET, &s1, 2), 0);
	for (int i = 0; i < 40; i++) {
		answer_ok(r, 0, AF_INET, &q, t + (uint64_t)i, &a);
		assert_true(addr_prefix_contains(&s1, AF_INET, a.addr));
		if (i < 2)
			memcpy(seen[i], a.addr, 16);
		else
			assert_true(memcmp(a.addr, seen[0], 16) == 0 ||
				    memcmp(a.addr, seen[1], 16) == 0);
	}
	assert_int_equal(rotor_get_stats(r, 0, AF_INET, t + 40, &st), 0);
	assert_int_equal(st.open_now, 2);
	/* share 0: nothing */
	assert_int_equal(rotor_assign(r, 0, AF_INET, &s1, 0), 0);
	assert_int_equal(rotor_answer(r, 0, AF_INET, &q, t + 50, &a), -EAGAIN);
	/* another slice with the same share: the old windows fill it and are
	 * not handed out again; once they expire, the new slice */
	assert_int_equal(rotor_assign(r, 0, AF_INET, &s2, 2), 0);
	assert_int_equal(rotor_answer(r, 0, AF_INET, &q, t + 60, &a), -EBUSY);
	answer_ok(r, 0, AF_INET, &q, t + 40 + 5000 + ROTOR_EXPIRY_SLACK_MS + 1, &a);
	assert_true(addr_prefix_contains(&s2, AF_INET, a.addr));
	/* a share raised: more addresses, up to max_open */
	assert_int_equal(rotor_assign(r, 0, AF_INET, &s2, 4), 0);
	for (int i = 0; i < 20; i++)
		answer_ok(r, 0, AF_INET, &q, t + 6000 + (uint64_t)i, &a);
	assert_int_equal(rotor_get_stats(r, 0, AF_INET, t + 6020, &st), 0);
	assert_int_equal(st.open_now, 4);
	rotor_free(r);
}

/* A DNS node restarted with a controller: the windows its earlier run
 * opened, told by the gateways and seeded once the assignment names its
 * slice, count against its share even past it (share 2, 3 windows): no new
 * address opens until they expire; another slice's windows are refused. */
static void test_controller_seed_past_share(void **state)
{
	struct fixture f;
	struct config_peer ctl = { .name = (char *)"ctl", .role = CONFIG_ROLE_CONTROLLER };
	struct rotor *r;
	struct rotor_query q = query("198.18.0.1");
	struct rotor_answer a;
	struct rotor_stats st;
	struct addr_prefix s1;
	uint8_t w[4][16];
	int fam;

	(void)state;
	fixture_init(&f, "203.0.113.0/24", NULL, 5, 4, 0, 5);
	f.cfg.role = CONFIG_ROLE_DNS;
	f.cfg.peers = &ctl;
	f.cfg.n_peers = 1;
	assert_int_equal(addr_prefix_parse("203.0.113.64/26", &s1), 0);
	assert_int_equal(addr_parse("203.0.113.70", &fam, w[0]), 0);
	assert_int_equal(addr_parse("203.0.113.71", &fam, w[1]), 0);
	assert_int_equal(addr_parse("203.0.113.72", &fam, w[2]), 0);
	assert_int_equal(addr_parse("203.0.113.130", &fam, w[3]), 0); /* another slice */
	r = rotor_new(&f.cfg, NULL, NULL);
	assert_non_null(r);
	assert_int_equal(rotor_assign(r, 0, AF_INET, &s1, 2), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(rotor_seed_open(r, 0, AF_INET, w[i], 5000), 0);
	assert_int_equal(rotor_seed_open(r, 0, AF_INET, w[3], 5000), -EINVAL);
	for (int i = 0; i < 50; i++) {
		answer_ok(r, 0, AF_INET, &q, 1000 + (uint64_t)i, &a);
		assert_true(memcmp(a.addr, w[0], 16) == 0 || memcmp(a.addr, w[1], 16) == 0 ||
			    memcmp(a.addr, w[2], 16) == 0);
	}
	assert_int_equal(rotor_get_stats(r, 0, AF_INET, 1050, &st), 0);
	assert_int_equal(st.open_now, 3);
	assert_int_equal(st.opened, 0);
	rotor_free(r);
}

static void test_bad_args(void **state)
{
	struct fixture f;
	struct rotor *r;
	struct rotor_query q = query("198.18.0.1");
	struct rotor_query bad = query_ecs("198.18.0.1", "198.18.7.9", 33);
	struct rotor_answer a;
	struct rotor_stats st;

	(void)state;
	rotor_free(NULL);
	assert_null(rotor_new(NULL, NULL, NULL));
	fixture_init(&f, "203.0.113.0/25", NULL, 5, 16, 0, 5);
	r = rotor_new(&f.cfg, NULL, NULL);
	assert_non_null(r);
	assert_int_equal(rotor_answer(r, 2, AF_INET, &q, 0, &a), -EINVAL);
	assert_int_equal(rotor_answer(r, 0, AF_UNIX, &q, 0, &a), -EINVAL);
	assert_int_equal(rotor_answer(r, 0, AF_INET, NULL, 0, &a), -EINVAL);
	assert_int_equal(rotor_answer(r, 0, AF_INET, &q, 0, NULL), -EINVAL);
	assert_int_equal(rotor_answer(NULL, 0, AF_INET, &q, 0, &a), -EINVAL);
	answer_ok(r, 0, AF_INET, &bad, 0, &a); /* an ECS past /32: ignored */
	assert_int_equal(a.ecs_scope, 0);
	assert_int_equal(rotor_get_stats(r, 2, AF_INET, 0, &st), -EINVAL);
	assert_int_equal(rotor_get_stats(r, 0, AF_INET, 0, &st), 0);
	assert_int_equal(st.answers, 1);
	assert_int_equal(rotor_foreach_open(r, 5, AF_INET, 0, seen_fn, NULL), 0);
	rotor_free(r);

	/* a config the parser would refuse is refused here too, not looped on */
	f.svc[0].max_open = 0;
	assert_int_equal(addr_prefix_parse("2001:db8::1/128", &f.svc[1].pool6), 0);
	f.svc[1].has_pool6 = true;
	r = rotor_new(&f.cfg, NULL, NULL);
	assert_non_null(r);
	assert_int_equal(rotor_answer(r, 0, AF_INET, &q, 0, &a), -EINVAL);
	assert_int_equal(rotor_answer(r, 1, AF_INET6, &q, 0, &a), -EINVAL);
	rotor_free(r);

	/* no services at all */
	f.cfg.n_services = 0;
	r = rotor_new(&f.cfg, NULL, NULL);
	assert_non_null(r);
	assert_int_equal(rotor_answer(r, 0, AF_INET, &q, 0, &a), -EINVAL);
	rotor_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uniform_v4_28),
		cmocka_unit_test(test_uniform_v4_25),
		cmocka_unit_test(test_uniform_v6_120),
		cmocka_unit_test(test_uniform_reuse),
		cmocka_unit_test(test_unpredictable),
		cmocka_unit_test(test_draw_follows_rng),
		cmocka_unit_test(test_reuse_follows_rng),
		cmocka_unit_test(test_cap_one_second),
		cmocka_unit_test(test_cap_windows_turn_over),
		cmocka_unit_test(test_window_expiry),
		cmocka_unit_test(test_rotate),
		cmocka_unit_test(test_rotate_at_cap),
		cmocka_unit_test(test_listen_address_excluded),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_changes),
		cmocka_unit_test(test_scoped_at_cap),
		cmocka_unit_test(test_grace),
		cmocka_unit_test(test_seed),
		cmocka_unit_test(test_dns_node_late_commits),
		cmocka_unit_test(test_controller_assign),
		cmocka_unit_test(test_controller_seed_past_share),
		cmocka_unit_test(test_bad_args),
	};

	return cmocka_run_group_tests_name("rotor", tests, NULL, NULL);
}
