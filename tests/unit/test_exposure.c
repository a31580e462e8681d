// SPDX-License-Identifier: MIT
/*
 * The exposure bound as a property: the pure rotor and a model of the
 * gateway's sets and rules (gw_policy's chain, kernel timeouts), driven by
 * random sequences: any asker, any ECS family and prefix, from configured
 * resolvers or not, commits that land up to 200 ms late, connections,
 * restarts that adopt the kernel's windows, sometimes with max_open
 * changed or the pool renumbered. After every step, at every instant, a
 * stranger who never asked -- wherever it stands, inside an honoured
 * client subnet too -- reaches the server through at most max_open pool
 * addresses, and every answer is an address of the pool configured now;
 * with window_claims, once a window's claims are taken no new stranger
 * comes in through it.
 *
 * CHOREO_PROPERTY_SEQUENCES sets how many sequences run (default 100 000;
 * `make property` runs many more), CHOREO_PROPERTY_SEED the first seed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include "cmocka_analyzer.h"

#include "config.h"
#include "rotor.h"

#define MAX_ELEMS   512
#define STEPS       24
#define COMMIT_LAG  200  /* ms a commit may land after the rotor decided */
#define MAX_OPEN_HI 6

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static uint32_t below(uint32_t n)
{
	return n ? (uint32_t)(rnd() % n) : 0;
}

static void rotor_rnd(void *ctx, void *buf, size_t len)
{
	uint8_t *b = buf;

	(void)ctx;
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)rnd();
}

/* ---- the model of the gateway --------------------------------------------- */

enum set { S_OPEN, S_SCOPED, S_ASKED, S_BOUND, S_CLAIMS, S_CLAIMED };

struct elem {
	enum set set;
	uint32_t src;     /* asker, or the subnet's first address (scoped) */
	uint8_t src_len;
	uint32_t addr;
	uint64_t expiry;
	uint32_t left;    /* S_CLAIMS: claims left */
};

struct gateway_model {
	struct elem e[MAX_ELEMS];
	size_t n;
	uint64_t binding_ms;
	uint32_t claims;      /* window_claims; 0: windows admit anyone */
	uint64_t claim_ms;    /* how long a claims element lives */
};

static bool live(const struct elem *x, uint64_t t)
{
	return t < x->expiry;
}

static uint32_t mask(uint32_t a, unsigned len)
{
	return len ? a & (0xffffffffu << (32 - len)) : 0;
}

static struct elem *find(struct gateway_model *m, enum set set, uint32_t src,
			 uint8_t src_len, uint32_t addr, uint64_t t)
{
	for (size_t i = 0; i < m->n; i++) {
		struct elem *x = &m->e[i];

		if (x->set == set && x->addr == addr && x->src == src &&
		    x->src_len == src_len && live(x, t))
			return x;
	}
	return NULL;
}

static void put(struct gateway_model *m, enum set set, uint32_t src,
		uint8_t src_len, uint32_t addr, uint64_t expiry, uint64_t t)
{
	struct elem *x = find(m, set, src, src_len, addr, t);

	if (!x) {
		/* drop what has expired before growing */
		for (size_t i = 0; i < m->n;)
			if (!live(&m->e[i], t))
				m->e[i] = m->e[--m->n];
			else
				i++;
		assert_true(m->n < MAX_ELEMS);
		x = &m->e[m->n++];
		*x = (struct elem){ set, src, src_len, addr, 0, m->claims };
	}
	/* a re-added element takes its new expiry (the kernel >= 6.12, or
	 * choreod's add-delete-add on older ones) */
	x->expiry = expiry;
}

static uint32_t v4(const uint8_t a[16])
{
	return (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3];
}

static void drop(struct gateway_model *m, enum set set, uint32_t addr)
{
	for (size_t i = 0; i < m->n;)
		if (m->e[i].set == set && m->e[i].addr == addr)
			m->e[i] = m->e[--m->n];
		else
			i++;
}

/* A commit landing at t: what the answer's changes write. */
static void commit(struct gateway_model *m, const struct rotor_answer *a, uint64_t t)
{
	for (size_t i = 0; i < a->n_changes; i++) {
		const struct change *c = &a->changes[i];

		if (c->family != AF_INET)
			continue; /* the model covers the IPv4 pool */
		/* a window's answer re-arms its address's claims */
		if (m->claims && c->kind != CHANGE_BIND)
			drop(m, S_CLAIMS, v4(c->addr));
		switch (c->kind) {
		case CHANGE_OPEN:
			put(m, S_OPEN, 0, 0, v4(c->addr), t + c->ms, t);
			break;
		case CHANGE_OPEN_SCOPED:
			put(m, S_SCOPED, v4(c->src), c->src_len, v4(c->addr), t + c->ms, t);
			break;
		case CHANGE_BIND:
			put(m, S_ASKED, v4(c->src), 32, v4(c->addr), t + c->ms, t);
			break;
		}
	}
}

/* Whether an open or scoped window lets src to addr at t. */
static bool window_admits(struct gateway_model *m, uint32_t src, uint32_t addr,
			  uint64_t t)
{
	if (find(m, S_OPEN, 0, 0, addr, t))
		return true;
	for (size_t i = 0; i < m->n; i++) {
		const struct elem *x = &m->e[i];

		if (x->set == S_SCOPED && x->addr == addr && live(x, t) &&
		    mask(src, x->src_len) == x->src)
			return true;
	}
	return false;
}

/* Whether a window at addr is closed to new sources: its claims are spent. */
static bool claimed_out(struct gateway_model *m, uint32_t addr, uint64_t t)
{
	struct elem *cl = m->claims ? find(m, S_CLAIMS, 0, 0, addr, t) : NULL;

	return cl && cl->left == 0;
}

/* The pool chain for a new connection from src to addr at t: true when it
 * reaches the server (and what it learns on the way). */
static bool connect_model(struct gateway_model *m, uint32_t src, uint32_t addr,
			  uint64_t t)
{
	struct elem *b = find(m, S_BOUND, src, 32, addr, t);
	bool in = false;

	if (b) {
		b->expiry = t + m->binding_ms; /* refreshed by use */
		return true;
	}
	in = find(m, S_ASKED, src, 32, addr, t) != NULL;
	if (!in && window_admits(m, src, addr, t)) {
		if (m->claims) {
			/* the gate: the address's claims, made at the first use */
			struct elem *cl = find(m, S_CLAIMS, 0, 0, addr, t);

			if (!cl) {
				put(m, S_CLAIMS, 0, 0, addr, t + m->claim_ms, t);
				cl = find(m, S_CLAIMS, 0, 0, addr, t);
			}
			if (cl->left > 0) {
				cl->left--;
				put(m, S_CLAIMED, src, 32, addr, t + m->claim_ms, t);
			}
			in = find(m, S_CLAIMED, src, 32, addr, t) != NULL;
		} else {
			in = true;
		}
	}
	if (in)
		put(m, S_BOUND, src, 32, addr, t + m->binding_ms, t);
	return in;
}

struct pair {
	uint32_t subnet, addr;
};

static int pair_cmp(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;

	if (x->subnet != y->subnet)
		return x->subnet < y->subnet ? -1 : 1;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/*
 * The most pool addresses any stranger (a source never asked, never bound)
 * reaches at t: the open ones, and the scoped ones of its own subnet --
 * worst over every subnet that has a scoped window. (All scoped windows
 * have one prefix length, so a source is in at most one subnet of them.)
 */
static size_t stranger_reach(const struct gateway_model *m, uint64_t t)
{
	uint32_t open[MAX_ELEMS];
	struct pair sc[MAX_ELEMS];
	size_t n_open = 0, n_sc = 0, worst;

	for (size_t i = 0; i < m->n; i++) {
		const struct elem *x = &m->e[i];

		if (!live(x, t) || claimed_out((struct gateway_model *)m, x->addr, t))
			continue;
		if (x->set == S_OPEN)
			open[n_open++] = x->addr;
		else if (x->set == S_SCOPED)
			sc[n_sc++] = (struct pair){ x->src, x->addr };
	}
	worst = n_open;
	if (n_sc > 1)
		qsort(sc, n_sc, sizeof(sc[0]), pair_cmp);
	for (size_t i = 0; i < n_sc;) {
		size_t reach = n_open, k = i;

		for (; k < n_sc && sc[k].subnet == sc[i].subnet; k++) {
			size_t j;

			if (k > i && sc[k].addr == sc[k - 1].addr)
				continue; /* sorted: a repeat */
			for (j = 0; j < n_open && open[j] != sc[k].addr; j++)
				;
			reach += j == n_open;
		}
		if (reach > worst)
			worst = reach;
		i = k;
	}
	return worst;
}

/* ---- the sequences -------------------------------------------------------- */

struct run {
	struct config cfg;
	struct config_service svc;
	struct rotor *rotor;
	struct gateway_model gw;
	uint64_t now;
	uint64_t pending_t[8];            /* commits not landed yet */
	struct rotor_answer pending[8];
	size_t n_pending;
	uint64_t checks, scoped, restarts, claimed_out;
	uint64_t seed;
	int step;
};

static void configure(struct run *r, bool renumber)
{
	static const char *const pools[] = { "203.0.113.0/25", "203.0.113.128/25" };
	struct config_service *s = &r->svc;

	if (!renumber) {
		memset(&r->cfg, 0, sizeof(r->cfg));
		memset(s, 0, sizeof(*s));
		s->section = "www";
		assert_int_equal(addr_prefix_parse(pools[0], &s->pool), 0);
		r->cfg.ttl = 1 + below(3);
		s->window = r->cfg.ttl + below(3);
		s->grace = below(3);
		s->binding = 1 + below(20);
		s->rotate = below(4) ? 0 : 1 + below(3);
		assert_int_equal(addr_prefix_parse("198.51.100.0/24",
						   &r->cfg.ecs_resolvers[0]), 0);
		r->cfg.n_ecs_resolvers = 1;
		r->cfg.ecs_prefix4 = 24;
		r->cfg.ecs_prefix6 = 56;
		r->cfg.services = s;
		r->cfg.n_services = 1;
	} else {
		assert_int_equal(addr_prefix_parse(pools[below(2)], &s->pool), 0);
	}
	s->max_open = 1 + below(MAX_OPEN_HI);
	if (!renumber)
		s->window_claims = below(2) ? 0 : 1 + below(2);
	r->gw.binding_ms = (uint64_t)s->binding * 1000;
	r->gw.claims = s->window_claims;
	r->gw.claim_ms = ((uint64_t)s->window + s->grace) * 1000;
}

static void check(struct run *r, uint64_t t)
{
	size_t reach = stranger_reach(&r->gw, t);

	r->checks++;
	if (reach > r->svc.max_open) {
		print_error("seed %" PRIu64 " step %d: at %" PRIu64 " ms a stranger "
			    "reaches %zu addresses, max_open %u\n", r->seed, r->step,
			    t, reach, r->svc.max_open);
		fail();
	}
}

/*
 * The commits due by t land, in time order. A stranger's reach grows only
 * when a window lands and shrinks as windows expire, so checking right
 * after each landing checks every instant.
 */
static void land(struct run *r, uint64_t t)
{
	for (;;) {
		size_t first = r->n_pending;

		for (size_t i = 0; i < r->n_pending; i++)
			if (r->pending_t[i] <= t &&
			    (first == r->n_pending || r->pending_t[i] < r->pending_t[first]))
				first = i;
		if (first == r->n_pending)
			return;
		commit(&r->gw, &r->pending[first], r->pending_t[first]);
		check(r, r->pending_t[first]);
		r->n_pending--;
		r->pending_t[first] = r->pending_t[r->n_pending];
		r->pending[first] = r->pending[r->n_pending];
	}
}

/* What choreod's adoption does at a restart (choreod.c, adopt_one). */
static void restart(struct run *r)
{
	struct gateway_model *m = &r->gw;

	land(r, UINT64_MAX - 1); /* what was sent to the kernel lands */
	rotor_free(r->rotor);
	configure(r, true);
	r->rotor = rotor_new(&r->cfg, rotor_rnd, NULL);
	assert_non_null(r->rotor);
	for (size_t i = 0; i < m->n;) {
		struct elem *x = &m->e[i];
		uint8_t a[16] = { 0 };
		bool keep = true;

		a[0] = (uint8_t)(x->addr >> 24);
		a[1] = (uint8_t)(x->addr >> 16);
		a[2] = (uint8_t)(x->addr >> 8);
		a[3] = (uint8_t)x->addr;
		if (!live(x, r->now)) {
			keep = false;
		} else if (x->set == S_ASKED) {
			keep = rotor_pool_has(r->rotor, 0, AF_INET, a);
		} else if (x->set == S_OPEN || x->set == S_SCOPED) {
			keep = (x->set == S_OPEN || x->src_len == r->cfg.ecs_prefix4) &&
			       rotor_seed_open(r->rotor, 0, AF_INET, a, x->expiry) == 0;
		}
		if (keep)
			i++;
		else
			m->e[i] = m->e[--m->n];
	}
	r->restarts++;
	check(r, r->now);
}

static void ask(struct run *r)
{
	struct rotor_query q = { .family = AF_INET };
	struct rotor_answer a;
	uint32_t src;

	switch (below(4)) {
	case 0: src = 0xc6336400u | below(256); break;          /* a resolver */
	case 1: src = 0xc6120000u | below(65536); break;        /* 198.18/16 */
	case 2: src = 0xc6130000u | below(65536); break;        /* 198.19/16 */
	default: src = (uint32_t)rnd(); break;                 /* anyone */
	}
	q.src[0] = (uint8_t)(src >> 24);
	q.src[1] = (uint8_t)(src >> 16);
	q.src[2] = (uint8_t)(src >> 8);
	q.src[3] = (uint8_t)src;
	if (below(2)) {
		q.has_ecs = true;
		q.ecs_family = below(5) ? AF_INET : AF_INET6;
		q.ecs_len = (uint8_t)(q.ecs_family == AF_INET ? below(33) : below(129));
		rotor_rnd(NULL, q.ecs_addr, q.ecs_family == AF_INET ? 4 : 16);
		addr_mask(q.ecs_family, q.ecs_addr, q.ecs_len);
	}
	assert_int_equal(rotor_answer(r->rotor, 0, AF_INET, &q, r->now, &a), 0);
	/* every answer is an address of the pool as configured now: the
	 * gateway has rules for those only (after a renumbering too) */
	if (!rotor_pool_has(r->rotor, 0, AF_INET, a.addr)) {
		print_error("seed %" PRIu64 " step %d: answered %u.%u.%u.%u, outside "
			    "the pool\n", r->seed, r->step, a.addr[0], a.addr[1],
			    a.addr[2], a.addr[3]);
		fail();
	}
	r->scoped += a.ecs_scope != 0;
	if (r->n_pending == 8)
		land(r, UINT64_MAX - 1);
	r->pending_t[r->n_pending] = r->now + below(COMMIT_LAG + 1);
	r->pending[r->n_pending++] = a;
}

static void one_sequence(uint64_t seed, struct run *r)
{
	r->seed = seed;
	rng_state = seed * 0x9e3779b97f4a7c15ull | 1;
	memset(&r->gw, 0, sizeof(r->gw));
	r->n_pending = 0;
	r->now = 1000;
	configure(r, false);
	r->rotor = rotor_new(&r->cfg, rotor_rnd, NULL);
	assert_non_null(r->rotor);
	for (int step = 0; step < STEPS; step++) {
		uint32_t ev = below(100);

		r->step = step;
		r->now += below(4) ? below(400) : below(6000);
		land(r, r->now);
		if (ev < 60) {
			ask(r);
		} else if (ev < 93) {
			/* someone connects: a scanner, or an earlier asker */
			uint32_t src = below(2) ? 0xc6130000u | below(65536) :
					0xc6120000u | below(65536);

			uint32_t addr = mask(v4(r->svc.pool.bytes), r->svc.pool.len) |
					below(128);

			/* half the time, at an address some window holds */
			if (below(2) && r->gw.n) {
				const struct elem *x = &r->gw.e[below((uint32_t)r->gw.n)];

				if (x->set == S_OPEN || x->set == S_SCOPED)
					addr = x->addr;
			}

			/* a claimed address is reachable by no new stranger */
			if (claimed_out(&r->gw, addr, r->now) &&
			    !find(&r->gw, S_ASKED, src, 32, addr, r->now) &&
			    !find(&r->gw, S_BOUND, src, 32, addr, r->now) &&
			    !find(&r->gw, S_CLAIMED, src, 32, addr, r->now)) {
				if (connect_model(&r->gw, src, addr, r->now)) {
					print_error("seed %" PRIu64 " step %d: a new source "
						    "came in through a claimed window\n",
						    r->seed, r->step);
					fail();
				}
				r->claimed_out++;
			} else {
				connect_model(&r->gw, src, addr, r->now);
			}
		} else {
			restart(r);
		}
	}
	land(r, UINT64_MAX - 1);
	rotor_free(r->rotor);
}

static void test_exposure_bound(void **state)
{
	const char *env = getenv("CHOREO_PROPERTY_SEQUENCES");
	const char *env_seed = getenv("CHOREO_PROPERTY_SEED");
	uint64_t n = env ? strtoull(env, NULL, 10) : 100000;
	uint64_t first = env_seed ? strtoull(env_seed, NULL, 10) : 1;
	struct run *r = calloc(1, sizeof(*r));

	(void)state;
	assert_non_null(r);
	for (uint64_t i = 0; i < n; i++)
		one_sequence(first + i, r);
	print_message("%" PRIu64 " sequences of %d steps, %" PRIu64 " checks; "
		      "%" PRIu64 " scoped answers, %" PRIu64 " restarts, %" PRIu64
		      " strangers at a claimed window\n", n, STEPS, r->checks,
		      r->scoped, r->restarts, r->claimed_out);
	/* the property was exercised: ECS honoured, restarts done */
	assert_true(r->scoped > n / 10);
	assert_true(r->restarts > n / 2);
	assert_true(r->claimed_out > n / 500);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exposure_bound),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
