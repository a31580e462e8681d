// SPDX-License-Identifier: MIT
/*
 * The controller's allocator of slices: one case per rule, then the rules'
 * purpose as a property. Random sequences of links up and down, leaves,
 * forgets, crashes, acknowledgements, controller restarts and time, against
 * a model of the DNS nodes: a node applies an assignment when it arrives
 * (only while its link is up; what is in flight is lost with the link) and
 * remembers when it used which block and share. After every step: no two
 * nodes used one block within drain_ms of each other, and at every instant
 * the largest share each node used within the last drain_ms adds up to at
 * most max_open. Now and then, and at the end, all nodes up and acknowledging:
 * every node has a block (with fewer blocks than nodes, one node per block)
 * and the fair split of max_open among the holders.
 *
 * CHOREO_PROPERTY_SEQUENCES sets how many sequences run (default 100 000,
 * about 6 s under ASan), CHOREO_PROPERTY_SEED the first seed,
 * CHOREO_SLICES_TRACE=1 prints each step and the state at a failure.
 */
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

#include "slices.h"

/* ---- one case per rule ---------------------------------------------------- */

static struct slices_assignment got;

static const struct slices_assignment *get(struct slices *s, size_t node)
{
	assert_int_equal(slices_get(s, node, &got), 0);
	return &got;
}

/* The record of node: its block and share of the one service. */
static void expect(struct slices *s, size_t node, int32_t block, uint32_t share)
{
	assert_int_equal(get(s, node)->block[0], block);
	assert_int_equal(got.share[0], share);
}

static struct slices_stats stat_buf;

static const struct slices_stats *stats(struct slices *s, uint64_t now)
{
	assert_int_equal(slices_stats(s, 0, now, &stat_buf), 0);
	return &stat_buf;
}

/* The node comes up claiming block and share of the one service. */
static void up_claiming(struct slices *s, size_t node, uint64_t epoch,
			int32_t block, uint32_t share, uint64_t now)
{
	static struct slices_assignment c;

	c.epoch = epoch;
	c.n_services = 1;
	c.block[0] = block;
	c.share[0] = share;
	assert_int_equal(slices_node_up(s, node, &c, now), 0);
}

/* What the controller does after each event: send what changed. */
static uint64_t send_one(struct slices *s, size_t node)
{
	uint64_t e;

	assert_true(slices_dirty(s, node));
	e = get(s, node)->epoch;
	assert_int_equal(slices_sent(s, node, e), 0);
	assert_false(slices_dirty(s, node));
	return e;
}

static void send_ack(struct slices *s, size_t node, uint64_t now)
{
	assert_int_equal(slices_node_ack(s, node, send_one(s, node), now), 0);
}

static struct slices *one_service(uint8_t bits, uint32_t max_open,
				  uint64_t drain_ms, size_t n_nodes,
				  bool rebuilding)
{
	struct slices_service svc = { bits, max_open, drain_ms };
	struct slices *s = slices_new(1, &svc, n_nodes, rebuilding);

	assert_non_null(s);
	return s;
}

static void test_block_bits_and_limits(void **state)
{
	/* nodes, host bits, k: the pool's host bits first, then 16 */
	static const unsigned cases[][3] = {
		{ 0, 7, 0 }, { 1, 7, 0 }, { 2, 7, 1 }, { 3, 7, 2 }, { 4, 7, 2 },
		{ 5, 7, 3 }, { 64, 7, 6 }, { 64, 64, 6 }, { 5, 2, 2 }, { 5, 0, 0 },
		{ 1000, 128, 10 }, { 100000, 128, 16 },
	};
	struct slices_service ok = { 2, 4, 1000 }, bad = ok;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(slices_block_bits(cases[i][0], cases[i][1]),
				 cases[i][2]);
	/* and what slices_new refuses */
	assert_null(slices_new(1, &ok, 0, false));
	assert_null(slices_new(1, &ok, SLICES_MAX_NODES + 1, false));
	assert_null(slices_new(SLICES_MAX_SERVICES + 1, &ok, 1, false));
	bad.max_open = 0;
	assert_null(slices_new(1, &bad, 1, false));
	bad = ok;
	bad.block_bits = SLICES_MAX_BLOCK_BITS + 1;
	assert_null(slices_new(1, &bad, 1, false));
	assert_int_equal(errno, EINVAL);
	slices_free(NULL);
}

static void test_first_node_gets_all(void **state)
{
	struct slices *s = one_service(1, 4, 1000, 2, false);
	uint64_t e;

	(void)state;
	assert_false(slices_dirty(s, 0));
	assert_int_equal(slices_node_up(s, 0, NULL, 10), 0);
	assert_int_equal(slices_state(s, 0), SLICES_UP);
	expect(s, 0, 0, 4);
	assert_true(got.epoch > 0);
	e = send_one(s, 0);
	/* an epoch never sent, or none: refused */
	assert_int_equal(slices_node_ack(s, 0, e + 1, 20), -EINVAL);
	assert_int_equal(slices_node_ack(s, 0, 0, 20), -EINVAL);
	assert_int_equal(slices_node_ack(s, 1, e, 20), -EINVAL);
	assert_int_equal(slices_node_ack(s, 0, e, 20), 0);
	assert_false(slices_tick(s, 5000));
	assert_false(slices_dirty(s, 0));
	slices_free(s);
}

static void test_second_waits_for_ack_and_drain(void **state)
{
	struct slices *s = one_service(1, 4, 1000, 2, false);
	uint64_t e0, first;

	(void)state;
	slices_node_up(s, 0, NULL, 0);
	send_ack(s, 0, 0);
	first = e0 = get(s, 0)->epoch;
	slices_node_up(s, 1, NULL, 100);
	/* the first is decreased to its half at once, by a new epoch */
	assert_int_equal(get(s, 0)->share[0], 2);
	assert_true(got.epoch > e0);
	/* the second has its block, but no share: the old 4 still count */
	expect(s, 1, 1, 0);
	assert_int_equal(stats(s, 100)->reserved, 4);
	assert_int_equal(stat_buf.free, 0);
	assert_int_equal(stat_buf.blocks_held, 2);
	/* sent, never acknowledged: nothing, however long */
	e0 = send_one(s, 0);
	send_one(s, 1);
	slices_tick(s, 100000);
	assert_int_equal(get(s, 1)->share[0], 0);
	/* an older epoch than acknowledged is stale */
	assert_int_equal(slices_node_ack(s, 0, e0, 100500), 0);
	assert_int_equal(slices_node_ack(s, 0, first, 100500), -ESTALE);
	assert_int_equal(stats(s, 100500)->reserved, 2);
	assert_int_equal(stat_buf.draining, 2);
	slices_tick(s, 101499);
	assert_int_equal(get(s, 1)->share[0], 0);
	assert_false(slices_dirty(s, 1));
	assert_true(slices_tick(s, 101500));
	assert_int_equal(get(s, 1)->share[0], 2);
	assert_true(slices_dirty(s, 1));
	slices_free(s);
}

/* An increase as far as the budget goes, the rest as drains expire. */
static void test_partial_raise(void **state)
{
	struct slices *s = one_service(2, 6, 1000, 3, false);

	(void)state;
	for (size_t n = 0; n < 3; n++) {
		slices_node_up(s, n, NULL, 0);
		for (size_t m = 0; m <= n; m++)
			if (slices_dirty(s, m))
				send_ack(s, m, 0);
	}
	/* 6; 2 + 0 + 0 as the others come; 2 + 2 + 2 once node 0's 4 drained */
	slices_tick(s, 2000);
	for (size_t m = 0; m < 3; m++)
		if (slices_dirty(s, m))
			send_ack(s, m, 2000);
	slices_tick(s, 3000);
	for (size_t m = 0; m < 3; m++)
		assert_int_equal(get(s, m)->share[0], 2);
	/* node 2 leaves: 2 drains; nodes 0 and 1 to 3 each when it expired */
	slices_node_leave(s, 2, 3100);
	assert_int_equal(get(s, 0)->share[0], 2);
	slices_tick(s, 4100);
	assert_int_equal(get(s, 0)->share[0], 3);
	assert_int_equal(get(s, 1)->share[0], 3);
	slices_free(s);
}

static void test_held_keeps(void **state)
{
	struct slices *s = one_service(2, 4, 1000, 3, false);
	(void)state;
	slices_node_up(s, 0, NULL, 0);
	send_ack(s, 0, 0);
	slices_node_up(s, 1, NULL, 0);
	send_ack(s, 0, 0);
	slices_tick(s, 1000);
	send_ack(s, 1, 1000);
	assert_int_equal(get(s, 1)->share[0], 2);
	slices_node_down(s, 1, 1100);
	assert_int_equal(slices_state(s, 1), SLICES_HELD);
	assert_false(slices_dirty(s, 1));
	/* a third comes: node 1 is over its target (1), and keeps it all */
	slices_node_up(s, 2, NULL, 1200);
	send_one(s, 2);
	slices_tick(s, 100000);
	expect(s, 1, 1, 2);
	assert_int_equal(get(s, 0)->share[0], 2);
	expect(s, 2, 2, 0);
	assert_int_equal(stats(s, 100000)->blocks_held, 3);
	assert_int_equal(stat_buf.blocks_free, 1);
	/* it comes back with what it has: the record was never changed */
	slices_get(s, 1, &got);
	assert_int_equal(slices_node_up(s, 1, &got, 100100), 0);
	assert_int_equal(get(s, 1)->share[0], 1);
	slices_free(s);
}

/* Leave (state NULL) or forget (&forgetting): the same drain. */
static bool forgetting = true;

static void test_leave_or_forget(void **state)
{
	bool forget = *state == &forgetting;
	struct slices *s = one_service(1, 4, 1000, 3, false);

	slices_node_up(s, 0, NULL, 0);
	send_ack(s, 0, 0);
	slices_node_up(s, 1, NULL, 0);
	send_ack(s, 0, 0);
	slices_tick(s, 1000);
	send_ack(s, 1, 1000);
	if (forget) {
		slices_node_down(s, 1, 2000);
		assert_int_equal(slices_node_forget(s, 1, 2000), 0);
		assert_int_equal(slices_state(s, 1), SLICES_GONE);
	} else {
		assert_int_equal(slices_node_leave(s, 1, 2000), 0);
	}
	/* its block and share drain: a newcomer waits for both */
	slices_node_up(s, 2, NULL, 2500);
	assert_int_equal(get(s, 2)->block[0], SLICES_NO_BLOCK);
	assert_int_equal(get(s, 0)->share[0], 2);
	assert_int_equal(stats(s, 2500)->blocks_draining, 1);
	assert_int_equal(stat_buf.draining, 2);
	slices_tick(s, 2999);
	assert_int_equal(get(s, 2)->block[0], SLICES_NO_BLOCK);
	slices_tick(s, 3000);
	assert_int_equal(get(s, 2)->block[0], 1);
	assert_int_equal(get(s, 0)->share[0], 2);
	assert_int_equal(get(s, 2)->share[0], 2);
	slices_free(s);
}

static void test_rebuild_waits_for_every_node(void **state)
{
	struct slices *s = one_service(2, 4, 1000, 3, true);
	(void)state;
	up_claiming(s, 0, 7, 2, 2, 10);
	/* kept as it is: nothing to send */
	expect(s, 0, 2, 2);
	assert_int_equal(got.epoch, 7);
	assert_false(slices_dirty(s, 0));
	slices_node_up(s, 1, NULL, 20);
	slices_tick(s, 5000);
	/* node 2 may hold anything: nothing handed out */
	assert_int_equal(get(s, 1)->block[0], SLICES_NO_BLOCK);
	assert_true(stats(s, 5000)->rebuilding);
	assert_int_equal(stat_buf.free, 0);
	assert_int_equal(stat_buf.blocks_free, 0);
	/* forgotten: what it may have held drains from now */
	slices_node_forget(s, 2, 6000);
	assert_false(stats(s, 6000)->rebuilding);
	assert_true(stat_buf.holding);
	slices_tick(s, 6999);
	assert_int_equal(get(s, 1)->block[0], SLICES_NO_BLOCK);
	slices_tick(s, 7000);
	expect(s, 1, 0, 2);
	/* epochs go on above every claim */
	assert_true(got.epoch > 7);
	slices_free(s);
}

/*
 * A controller restarted knows nothing of what a node used before it
 * reported (a node that crashed holding a block comes back claiming none),
 * nor of its predecessor's drains (they end within drain_ms of the restart).
 */
static void test_rebuild_holds(void **state)
{
	struct slices *s = one_service(1, 4, 1000, 2, true);

	(void)state;
	up_claiming(s, 0, 3, 0, 2, 50001);
	slices_node_up(s, 1, NULL, 50400);
	assert_int_equal(get(s, 1)->block[0], SLICES_NO_BLOCK);
	slices_tick(s, 51399);
	assert_int_equal(get(s, 1)->block[0], SLICES_NO_BLOCK);
	assert_int_equal(get(s, 0)->share[0], 2);
	slices_tick(s, 51400);
	expect(s, 1, 1, 2);
	slices_free(s);

	/* reported at once: the previous controller's drains are held */
	s = one_service(1, 4, 1000, 1, true);
	up_claiming(s, 0, 3, 0, 2, 50000);
	slices_tick(s, 50999);
	assert_int_equal(get(s, 0)->share[0], 2);
	slices_tick(s, 51000);
	assert_int_equal(get(s, 0)->share[0], 4);
	slices_free(s);
}

static void test_overlapping_claims_refused(void **state)
{
	struct slices *s = one_service(2, 4, 1000, 3, true);
	uint64_t e;

	(void)state;
	up_claiming(s, 0, 5, 0, 3, 10);
	/* a block of its own, but over the budget: 1 kept of 3 */
	up_claiming(s, 1, 6, 3, 3, 20);
	expect(s, 1, 3, 1);
	assert_true(got.epoch > 6);
	/* the same block as node 0: refused, but its 2 count until it stops */
	up_claiming(s, 2, 9, 0, 2, 30);
	expect(s, 2, SLICES_NO_BLOCK, 0);
	assert_true(got.epoch > 9);
	assert_false(stats(s, 30)->rebuilding);
	assert_int_equal(stat_buf.reserved, 3 + 3 + 2);
	assert_int_equal(stat_buf.blocks_held, 2);
	assert_int_equal(stat_buf.blocks_draining, 2); /* the previous controller's */
	/* node 0 is lowered to its half at once */
	assert_int_equal(get(s, 0)->share[0], 2);
	/* node 2 acknowledges: its 2 drain from then, it gets a free block */
	e = send_one(s, 2);
	assert_int_equal(slices_node_ack(s, 2, e, 2000), 0);
	assert_int_equal(stats(s, 2000)->draining, 2);
	assert_int_equal(stat_buf.reserved, 3 + 3);
	expect(s, 2, 1, 0);
	slices_free(s);
}

/* A block claimed and refused stays out until its claimer let it go. */
static void test_refused_block_stays_out(void **state)
{
	struct slices *s = one_service(1, 4, 1000, 3, true);

	(void)state;
	up_claiming(s, 0, 5, 0, 1, 0);
	up_claiming(s, 1, 6, 1, 1, 0);
	up_claiming(s, 2, 7, 0, 1, 0);
	assert_int_equal(get(s, 2)->block[0], SLICES_NO_BLOCK);
	/* it may go on using block 0 behind a partition */
	slices_node_down(s, 2, 10);
	slices_node_leave(s, 0, 100);
	slices_node_up(s, 0, NULL, 200);
	slices_tick(s, 5000);
	assert_int_equal(get(s, 0)->block[0], SLICES_NO_BLOCK);
	/* it crashed, and comes back with nothing: block 0 drains from now */
	slices_node_up(s, 2, NULL, 6000);
	slices_tick(s, 6999);
	assert_int_equal(get(s, 0)->block[0], SLICES_NO_BLOCK);
	assert_int_equal(get(s, 2)->block[0], SLICES_NO_BLOCK);
	slices_tick(s, 7000);
	assert_int_equal(get(s, 0)->block[0], 0);
	assert_int_equal(get(s, 2)->block[0], SLICES_NO_BLOCK);
	slices_free(s);
}

/* A decrease counts at the old value until it is acknowledged. */
static void test_pending_decrease_counts_old(void **state)
{
	struct slices *s = one_service(1, 5, 100, 2, false);

	(void)state;
	slices_node_up(s, 0, NULL, 0);
	send_ack(s, 0, 0);
	slices_node_up(s, 1, NULL, 10);
	assert_int_equal(get(s, 0)->share[0], 3);
	send_one(s, 0);
	/* lost with the link; it comes back with the old 5 */
	slices_node_down(s, 0, 20);
	slices_tick(s, 10000);
	assert_int_equal(get(s, 1)->share[0], 0);
	up_claiming(s, 0, 1, 0, 5, 10010);
	assert_int_equal(get(s, 0)->share[0], 3);
	slices_tick(s, 20000);
	assert_int_equal(get(s, 1)->share[0], 0);
	send_ack(s, 0, 20000);
	slices_tick(s, 20099);
	assert_int_equal(get(s, 1)->share[0], 0);
	slices_tick(s, 20100);
	assert_int_equal(get(s, 1)->share[0], 2);
	slices_free(s);
}

/* ---- the property --------------------------------------------------------- */

#define P_NODES    5
#define P_SERVICES 3
#define P_STEPS    64
#define P_INFLIGHT 8
#define P_USES     128
#define P_ROUNDS   12   /* liveness: rounds of half the longest drain */

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

/* A node used block and share from start until end (UINT64_MAX: still). */
struct use {
	size_t node;
	int32_t block;
	uint32_t share;
	uint64_t start, end;
};

struct node_model {
	bool alive, link;
	struct slices_assignment applied;  /* epoch 0: none */
	uint64_t prev_epoch;               /* applied before, on this link */
	struct slices_assignment inflight[P_INFLIGHT];
	size_t n_inflight;
};

struct run {
	struct slices_service svc[P_SERVICES];
	size_t n_services, n_nodes;
	uint64_t drain_max;
	struct slices *s;
	struct node_model node[P_NODES];
	struct use uses[P_SERVICES][P_USES];
	size_t n_uses[P_SERVICES];
	uint64_t now, seed, seq, n_seq;
	int step;
	uint64_t checks, tight, restarts, acks, lost, claimed, raises, live_checks;
};

/* CHOREO_SLICES_TRACE: each step, and the state at a failure */
static bool tracing;
#define TRACE(...) do { if (tracing) print_message(__VA_ARGS__); } while (0)

static void dump(const struct run *r)
{
	for (size_t v = 0; v < r->n_services; v++)
		for (size_t n = 0; n < r->n_nodes; n++) {
			const struct node_model *nm = &r->node[n];

			slices_get(r->s, n, &got);
			print_error("service %zu node %zu state %d alive %d link %d: "
				    "record e%" PRIu64 " %d/%u, applied e%" PRIu64
				    " %d/%u\n", v, n, slices_state(r->s, n), nm->alive,
				    nm->link, got.epoch, got.block[v], got.share[v],
				    nm->applied.epoch, nm->applied.block[v],
				    nm->applied.share[v]);
		}
}

static void failed(const struct run *r, const char *what)
{
	if (tracing)
		dump(r);
	print_error("sequence %" PRIu64 " of %" PRIu64 ", seed %" PRIu64
		    ", step %d at %" PRIu64 " ms: %s (again: CHOREO_PROPERTY_SEED=%"
		    PRIu64 " CHOREO_PROPERTY_SEQUENCES=1 CHOREO_SLICES_TRACE=1)\n",
		    r->seq, r->n_seq, r->seed, r->step, r->now, what, r->seed);
	fail();
}

static uint64_t ends(uint64_t end, uint64_t drain)
{
	return end > UINT64_MAX - drain ? UINT64_MAX : end + drain;
}

/* The node's uses of each service end now; expired ones are forgotten. */
static void uses_end(struct run *r, size_t n)
{
	for (size_t v = 0; v < r->n_services; v++) {
		for (size_t i = 0; i < r->n_uses[v];) {
			struct use *u = &r->uses[v][i];

			if (u->node == n && u->end == UINT64_MAX)
				u->end = r->now;
			if (ends(u->end, r->svc[v].drain_ms) <= r->now)
				*u = r->uses[v][--r->n_uses[v]];
			else
				i++;
		}
	}
}

static void forget_all(struct slices_assignment *a)
{
	memset(a, 0, sizeof(*a));
	for (size_t v = 0; v < SLICES_MAX_SERVICES; v++)
		a->block[v] = SLICES_NO_BLOCK;
}

static void apply(struct run *r, size_t n, const struct slices_assignment *a)
{
	struct node_model *nm = &r->node[n];

	if (a->epoch <= nm->applied.epoch)
		failed(r, "an assignment not newer than the node's");
	uses_end(r, n);
	for (size_t v = 0; v < r->n_services; v++) {
		if (a->block[v] < 0 && a->share[v] == 0)
			continue;
		assert_true(r->n_uses[v] < P_USES);
		r->uses[v][r->n_uses[v]++] = (struct use){
			n, a->block[v], a->share[v], r->now, UINT64_MAX };
	}
	nm->prev_epoch = nm->applied.epoch;
	nm->applied = *a;
	TRACE("  node %zu applies e%" PRIu64 "\n", n, a->epoch);
}

static void link_lost(struct run *r, size_t n)
{
	r->lost += r->node[n].n_inflight;
	r->node[n].n_inflight = 0;
	r->node[n].link = false;
	r->node[n].prev_epoch = 0;
}

static void stop(struct run *r, size_t n)
{
	uses_end(r, n);
	link_lost(r, n);
	r->node[n].alive = false;
	forget_all(&r->node[n].applied);
}

/* The controller's caller: what changed goes out on the links. */
static void flush(struct run *r)
{
	for (size_t n = 0; n < r->n_nodes; n++) {
		struct node_model *nm = &r->node[n];
		uint64_t e;

		if (!slices_dirty(r->s, n))
			continue;
		if (!nm->link)
			failed(r, "dirty without a link");
		if (nm->n_inflight == P_INFLIGHT) {
			/* a slow link: the oldest lands first */
			apply(r, n, &nm->inflight[0]);
			memmove(nm->inflight, nm->inflight + 1,
				sizeof(nm->inflight[0]) * --nm->n_inflight);
		}
		assert_int_equal(slices_get(r->s, n, &nm->inflight[nm->n_inflight]), 0);
		e = nm->inflight[nm->n_inflight++].epoch;
		assert_int_equal(slices_sent(r->s, n, e), 0);
	}
}

static void deliver(struct run *r, size_t n, size_t k)
{
	struct node_model *nm = &r->node[n];

	if (k > nm->n_inflight)
		k = nm->n_inflight;
	for (size_t i = 0; i < k; i++)
		apply(r, n, &nm->inflight[i]);
	memmove(nm->inflight, nm->inflight + k,
		sizeof(nm->inflight[0]) * (nm->n_inflight - k));
	nm->n_inflight -= k;
}

static void ack(struct run *r, size_t n, bool older)
{
	struct node_model *nm = &r->node[n];
	uint64_t e = older && nm->prev_epoch ? nm->prev_epoch : nm->applied.epoch;
	int rc;

	if (!nm->link || !e)
		return;
	rc = slices_node_ack(r->s, n, e, r->now);
	TRACE("  node %zu acks e%" PRIu64 ": %d\n", n, e, rc);
	if (rc != 0 && rc != -ESTALE)
		failed(r, "an acknowledgement of an applied epoch refused");
	r->acks++;
}

/*
 * (1) No block used by two nodes within drain_ms of each other; (2) at now,
 * the largest share each node used within the last drain_ms adds up to at
 * most max_open. Between steps no use starts, so the sum only falls:
 * checking at each step checks every instant.
 */
static void check(struct run *r)
{
	bool tight = false;

	for (size_t v = 0; v < r->n_services; v++) {
		const struct use *u = r->uses[v];
		uint64_t d = r->svc[v].drain_ms, sum = 0;

		for (size_t i = 0; i < r->n_uses[v]; i++)
			for (size_t j = i + 1; j < r->n_uses[v]; j++)
				if (u[i].node != u[j].node && u[i].block >= 0 &&
				    u[i].block == u[j].block &&
				    u[i].start < ends(u[j].end, d) &&
				    u[j].start < ends(u[i].end, d))
					failed(r, "two nodes used one block");
		for (size_t n = 0; n < r->n_nodes; n++) {
			uint32_t most = 0;

			for (size_t i = 0; i < r->n_uses[v]; i++)
				if (u[i].node == n && r->now < ends(u[i].end, d) &&
				    u[i].share > most)
					most = u[i].share;
			sum += most;
		}
		tight |= sum == r->svc[v].max_open;
		if (sum > r->svc[v].max_open)
			failed(r, "the shares in use exceed max_open");
	}
	r->checks++;
	r->tight += tight;
}

static void node_up(struct run *r, size_t n)
{
	struct node_model *nm = &r->node[n];

	nm->link = true;
	nm->prev_epoch = 0;
	/* its true state: what it applied (none, half the time as NULL) */
	assert_int_equal(slices_node_up(r->s, n, nm->applied.epoch || below(2) ?
					&nm->applied : NULL, r->now), 0);
	for (size_t v = 0; v < r->n_services; v++)
		r->claimed += nm->applied.epoch && nm->applied.share[v];
}

static void restart(struct run *r)
{
	slices_free(r->s);
	for (size_t n = 0; n < r->n_nodes; n++)
		link_lost(r, n);
	r->s = slices_new(r->n_services, r->svc, r->n_nodes, true);
	assert_non_null(r->s);
	r->restarts++;
}

/* (3) All up and acknowledging: a block each, and the fair split. */
static void check_live(struct run *r)
{
	for (size_t n = 0; n < r->n_nodes; n++) {
		if (!r->node[n].alive) {
			r->node[n].alive = true;
			forget_all(&r->node[n].applied);
		}
		if (!r->node[n].link)
			node_up(r, n);
		flush(r);
	}
	for (int round = 0; round < P_ROUNDS; round++) {
		r->now += r->drain_max / 2 + 1;
		slices_tick(r->s, r->now);
		flush(r);
		for (size_t n = 0; n < r->n_nodes; n++) {
			deliver(r, n, P_INFLIGHT);
			ack(r, n, false);
			flush(r);
		}
		check(r);
	}
	for (size_t v = 0; v < r->n_services; v++) {
		uint32_t blocks = 1u << r->svc[v].block_bits, m = r->svc[v].max_open;
		size_t holders = r->n_nodes < blocks ? r->n_nodes : blocks, rank = 0;

		for (size_t n = 0; n < r->n_nodes; n++) {
			const struct slices_assignment *a = &r->node[n].applied;
			uint32_t fair = 0;

			assert_int_equal(slices_get(r->s, n, &got), 0);
			if (got.epoch != a->epoch || slices_dirty(r->s, n))
				failed(r, "not settled");
			if (a->block[v] >= 0)
				fair = (uint32_t)(m / holders + (rank++ < m % holders));
			if (a->share[v] != fair)
				failed(r, "not the fair split");
		}
		if (rank != holders)
			failed(r, "fewer nodes hold a block than could");
	}
	r->live_checks++;
}

/* To a use's windows' last instant, or the next: a drain 1 ms short shows. */
static void jump(struct run *r)
{
	size_t v = below((uint32_t)r->n_services), i;
	uint64_t to;

	if (!r->n_uses[v])
		return;
	i = below((uint32_t)r->n_uses[v]);
	if (r->uses[v][i].end == UINT64_MAX)
		return;
	to = r->uses[v][i].end + r->svc[v].drain_ms - below(2);
	if (to > r->now)
		r->now = to;
}

/* One random event about node n; returns its name, for the trace. */
static const char *random_step(struct run *r, size_t n)
{
	struct node_model *nm = &r->node[n];
	uint32_t ev = below(100);

	if (ev < 12) {
		r->now += below(3) ? below((uint32_t)r->drain_max / 3) :
			  below(3 * (uint32_t)r->drain_max);
		r->raises += slices_tick(r->s, r->now);
		return "time passes, tick";
	} else if (ev < 20) {
		jump(r);
		r->raises += slices_tick(r->s, r->now);
		return "to a drain's end, tick";
	} else if (ev < 34) {
		deliver(r, n, 1 + below(3));
		return "deliver to";
	} else if (ev < 48) {
		ack(r, n, below(4) == 0);
		return "ack from";
	} else if (ev < 57) {
		if (nm->link) {
			link_lost(r, n);
			slices_node_down(r->s, n, r->now);
		}
		if (below(3) || !nm->alive)
			return "link lost to";
		stop(r, n); /* crashed, or behind the partition */
		return "link lost, crash of";
	} else if (ev < 73) {
		if (!nm->alive) {
			nm->alive = true;
			forget_all(&nm->applied);
			return "start of";
		}
		if (!nm->link)
			node_up(r, n);
		return "link up to";
	} else if (ev < 78) {
		if (!nm->link)
			return "nothing";
		stop(r, n);
		slices_node_leave(r->s, n, r->now);
		return "leave of";
	} else if (ev < 83) {
		/* the operator stops it (if it was not already) and forgets */
		if (nm->alive && below(2))
			return "nothing";
		stop(r, n);
		slices_node_forget(r->s, n, r->now);
		return "forget of";
	} else if (ev < 85) {
		restart(r);
		return "controller restart";
	} else if (ev < 88) {
		check_live(r); /* healthy for a while, then disrupted */
		return "all up and settled";
	}
	r->now += below(50);
	return "a little time";
}

static void one_sequence(struct run *r)
{
	rng_state = r->seed * 0x9e3779b97f4a7c15ull | 1;
	memset(r->node, 0, sizeof(r->node));
	memset(r->n_uses, 0, sizeof(r->n_uses));
	r->n_nodes = 1 + below(P_NODES);
	r->n_services = 1 + below(P_SERVICES);
	r->drain_max = 0;
	for (size_t v = 0; v < r->n_services; v++) {
		r->svc[v].block_bits = slices_block_bits((unsigned)r->n_nodes, below(4));
		r->svc[v].max_open = 1 + below(7);
		r->svc[v].drain_ms = 100 + below(1900);
		if (r->svc[v].drain_ms > r->drain_max)
			r->drain_max = r->svc[v].drain_ms;
	}
	for (size_t n = 0; n < r->n_nodes; n++) {
		r->node[n].alive = below(4) != 0;
		forget_all(&r->node[n].applied);
	}
	r->now = 1000 + below(100000);
	r->s = slices_new(r->n_services, r->svc, r->n_nodes, false);
	assert_non_null(r->s);
	for (r->step = 0; r->step < P_STEPS; r->step++) {
		size_t n = below((uint32_t)r->n_nodes);
		const char *what = random_step(r, n);

		TRACE("step %d at %" PRIu64 " ms: %s node %zu\n", r->step, r->now,
		      what, n);
		flush(r);
		check(r);
	}
	TRACE("settling\n");
	check_live(r);
	slices_free(r->s);
	r->s = NULL;
}

static void test_slices_property(void **state)
{
	const char *env = getenv("CHOREO_PROPERTY_SEQUENCES");
	const char *env_seed = getenv("CHOREO_PROPERTY_SEED");
	struct run *r = calloc(1, sizeof(*r));
	uint64_t first;

	(void)state;
	tracing = getenv("CHOREO_SLICES_TRACE") != NULL;
	assert_non_null(r);
	r->n_seq = env ? strtoull(env, NULL, 10) : 100000;
	first = env_seed ? strtoull(env_seed, NULL, 10) : 1;
	for (r->seq = 0; r->seq < r->n_seq; r->seq++) {
		r->seed = first + r->seq;
		one_sequence(r);
	}
	print_message("%" PRIu64 " sequences of %d steps from seed %" PRIu64 ": %"
		      PRIu64 " checks (%" PRIu64 " at max_open), %" PRIu64
		      " settled; %" PRIu64 " controller restarts, %" PRIu64
		      " acks, %" PRIu64 " assignments lost, %" PRIu64
		      " shares claimed, %" PRIu64 " ticks that changed something\n",
		      r->n_seq, P_STEPS, first, r->checks, r->tight, r->live_checks,
		      r->restarts, r->acks, r->lost, r->claimed, r->raises);
	/* the sequences reached what the rules are about */
	assert_true(r->restarts > r->n_seq / 4);
	assert_true(r->lost > r->n_seq / 10);
	assert_true(r->claimed > r->n_seq / 5);
	assert_true(r->tight > r->checks / 10);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_block_bits_and_limits),
		cmocka_unit_test(test_first_node_gets_all),
		cmocka_unit_test(test_second_waits_for_ack_and_drain),
		cmocka_unit_test(test_partial_raise),
		cmocka_unit_test(test_held_keeps),
		cmocka_unit_test_prestate(test_leave_or_forget, NULL),
		cmocka_unit_test_prestate(test_leave_or_forget, &forgetting),
		cmocka_unit_test(test_rebuild_waits_for_every_node),
		cmocka_unit_test(test_rebuild_holds),
		cmocka_unit_test(test_overlapping_claims_refused),
		cmocka_unit_test(test_refused_block_stays_out),
		cmocka_unit_test(test_pending_decrease_counts_old),
		cmocka_unit_test(test_slices_property),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
