// SPDX-License-Identifier: MIT
#include "slices.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* One node's part of one service. */
struct slices_slot {
	int32_t block;         /* the record: the block it holds */
	int32_t stray;         /* a block it claimed and did not keep: it may
				  use it until it acknowledges its record */
	uint32_t share;        /* the record */
	uint32_t peak;         /* the most it may use: the record, and all it was
				  sent or claimed since it last acknowledged */
	uint32_t drain;        /* given up; its windows may live until... */
	uint64_t drain_until;
};

struct slices_block {
	int8_t owner;          /* node, or -1 */
	uint8_t strays;        /* nodes that may use it without holding it */
	uint64_t until;        /* free from then on (when no one holds it) */
};

struct slices_node {
	enum slices_node_state state;
	bool reported;         /* came up with its claim, or left or forgotten:
				  what rebuilding waits for */
	bool changed;          /* its record changed in this call */
	uint64_t epoch;        /* of its record; 0: nothing to send */
	uint64_t sent;         /* the last epoch it was sent (or claimed) */
	uint64_t acked;        /* the last epoch it acknowledged (or claimed) */
};

struct slices_svc {
	struct slices_service cfg;
	uint32_t n_blocks;
	uint64_t hold_until;   /* rebuilding: nothing handed out or raised
				  before; see hold() */
	struct slices_block *blocks;
};

struct slices {
	size_t n_services, n_nodes;
	struct slices_svc *svc;
	struct slices_node *nodes;
	struct slices_slot *slots;  /* [node * n_services + service] */
	uint64_t epoch;             /* the last one given out (or claimed) */
	uint64_t now;               /* the latest time seen */
	bool rebuilding;
};

uint8_t slices_block_bits(unsigned n_nodes, unsigned host_bits)
{
	uint8_t k = 0;

	while (k < SLICES_MAX_BLOCK_BITS && k < host_bits &&
	       (1u << k) < n_nodes)
		k++;
	return k;
}

static uint64_t later(uint64_t now, uint64_t ms)
{
	return ms > UINT64_MAX - now ? UINT64_MAX : now + ms;
}

/*
 * Time never goes back here: a drain ending at an earlier now + drain_ms
 * than promised would free what may still be in use.
 */
static uint64_t clock_at(struct slices *s, uint64_t now_ms)
{
	if (now_ms > s->now)
		s->now = now_ms;
	return s->now;
}

static struct slices_slot *slot_of(const struct slices *s, size_t node, size_t v)
{
	return &s->slots[node * s->n_services + v];
}

static uint32_t drain_now(const struct slices_slot *sl, uint64_t now)
{
	return now < sl->drain_until ? sl->drain : 0;
}

/*
 * Drains of one node merge into one: the sum, until the later end. That
 * holds the earlier amount longer than needed, never shorter, and keeps the
 * memory fixed. No more than max_open is counted draining for one node: its
 * own rotor never has more open.
 */
static void drain_add(struct slices *s, size_t v, struct slices_slot *sl,
		      uint32_t amount, uint64_t now)
{
	const struct slices_service *c = &s->svc[v].cfg;
	uint64_t sum;

	if (!amount)
		return;
	sum = (uint64_t)drain_now(sl, now) + amount;
	sl->drain = sum > c->max_open ? c->max_open : (uint32_t)sum;
	if (later(now, c->drain_ms) > sl->drain_until)
		sl->drain_until = later(now, c->drain_ms);
}

static void block_drain(struct slices *s, size_t v, int32_t b, uint64_t now)
{
	struct slices_block *blk = &s->svc[v].blocks[b];
	uint64_t until = later(now, s->svc[v].cfg.drain_ms);

	if (until > blk->until)
		blk->until = until;
}

static void stray_release(struct slices *s, size_t v, struct slices_slot *sl,
			  uint64_t now)
{
	if (sl->stray < 0)
		return;
	s->svc[v].blocks[sl->stray].strays--;
	block_drain(s, v, sl->stray, now);
	sl->stray = SLICES_NO_BLOCK;
}

/*
 * Rebuilding, the controller knows nothing of what a node used before it
 * reports: it may have crashed holding a block after the restart, and come
 * back claiming none. Its windows of those end within drain_ms of its report
 * (or of being forgotten): until then, nothing is handed out or raised. The
 * previous controller's drains end within drain_ms of the restart, which
 * came before any report.
 */
static void hold(struct slices *s, uint64_t now)
{
	for (size_t v = 0; v < s->n_services; v++) {
		struct slices_svc *sv = &s->svc[v];

		if (later(now, sv->cfg.drain_ms) > sv->hold_until)
			sv->hold_until = later(now, sv->cfg.drain_ms);
	}
}

/* Free for node (which it does not hold, though it may stray there). */
static bool block_claimable(const struct slices *s, size_t v, int32_t b,
			    size_t node, uint64_t now)
{
	const struct slices_block *blk = &s->svc[v].blocks[b];
	unsigned own = slot_of(s, node, v)->stray == b;

	return blk->owner < 0 && blk->strays == own && now >= blk->until;
}

static void block_take(struct slices *s, size_t v, int32_t b, size_t node)
{
	struct slices_slot *sl = slot_of(s, node, v);

	if (sl->stray == b) {
		s->svc[v].blocks[b].strays--;
		sl->stray = SLICES_NO_BLOCK;
	}
	s->svc[v].blocks[b].owner = (int8_t)node;
	sl->block = b;
}

/*
 * max_open less the shares held and draining: what may be raised. node's
 * own peak is left out when its claim is weighed (SIZE_MAX: none is).
 */
static uint32_t budget(const struct slices *s, size_t v, size_t skip, uint64_t now)
{
	uint64_t used = 0;

	for (size_t n = 0; n < s->n_nodes; n++) {
		const struct slices_slot *sl = slot_of(s, n, v);

		if (n != skip)
			used += sl->peak;
		used += drain_now(sl, now);
	}
	return used >= s->svc[v].cfg.max_open ? 0 :
	       (uint32_t)(s->svc[v].cfg.max_open - used);
}

static bool holds_slices(const struct slices_node *nd)
{
	return nd->state == SLICES_UP || nd->state == SLICES_HELD;
}

/*
 * The fair split of max_open among the nodes up or held that hold a block
 * (a share without a block opens nothing); the remainder one each to the
 * first of them.
 */
static void targets(const struct slices *s, size_t v,
		    uint32_t target[static SLICES_MAX_NODES])
{
	uint32_t m = s->svc[v].cfg.max_open, p = 0, rank = 0;

	for (size_t n = 0; n < s->n_nodes; n++)
		p += holds_slices(&s->nodes[n]) && slot_of(s, n, v)->block >= 0;
	for (size_t n = 0; n < s->n_nodes; n++) {
		target[n] = 0;
		if (holds_slices(&s->nodes[n]) && slot_of(s, n, v)->block >= 0)
			target[n] = m / p + (rank++ < m % p);
	}
}

static void rebalance_service(struct slices *s, size_t v, uint64_t now)
{
	struct slices_svc *sv = &s->svc[v];
	bool hand = now >= sv->hold_until;
	uint32_t target[SLICES_MAX_NODES], free_now;

	/* blocks first: a node's share follows from holding one */
	for (size_t n = 0; hand && n < s->n_nodes; n++) {
		int32_t b;

		if (s->nodes[n].state != SLICES_UP || slot_of(s, n, v)->block >= 0)
			continue;
		for (b = 0; b < (int32_t)sv->n_blocks; b++)
			if (block_claimable(s, v, b, n, now))
				break;
		if (b == (int32_t)sv->n_blocks)
			continue; /* none for it; another may have a stray to take back */
		block_take(s, v, b, n);
		s->nodes[n].changed = true;
	}
	targets(s, v, target);
	/*
	 * Decreases at once, to nodes up only: a held node may be answering
	 * behind a partition, and would not hear of it. The old share stays
	 * counted (peak) until the node acknowledges.
	 */
	for (size_t n = 0; n < s->n_nodes; n++) {
		struct slices_slot *sl = slot_of(s, n, v);

		if (s->nodes[n].state == SLICES_UP && sl->share > target[n]) {
			sl->share = target[n];
			s->nodes[n].changed = true;
		}
	}
	if (!hand)
		return;
	/* increases from the free budget, as far as it goes */
	free_now = budget(s, v, SIZE_MAX, now);
	for (size_t n = 0; n < s->n_nodes; n++) {
		struct slices_slot *sl = slot_of(s, n, v);
		uint32_t to = target[n];

		if (s->nodes[n].state != SLICES_UP || sl->share >= to)
			continue;
		if ((uint64_t)sl->peak + free_now < to)
			to = sl->peak + free_now;
		if (to <= sl->share)
			continue;
		if (to > sl->peak) {
			free_now -= to - sl->peak;
			sl->peak = to;
		}
		sl->share = to;
		s->nodes[n].changed = true;
	}
}

/* Rebalance, then give each node whose record changed a new epoch. */
static bool settle(struct slices *s, uint64_t now)
{
	bool any = false;

	if (s->rebuilding) {
		bool all = true;

		for (size_t n = 0; n < s->n_nodes; n++)
			all = all && s->nodes[n].reported;
		s->rebuilding = !all;
	}
	/* rebuilding: a node not heard from may hold anything */
	for (size_t v = 0; !s->rebuilding && v < s->n_services; v++)
		rebalance_service(s, v, now);
	for (size_t n = 0; n < s->n_nodes; n++) {
		if (!s->nodes[n].changed)
			continue;
		s->nodes[n].changed = false;
		s->nodes[n].epoch = ++s->epoch;
		any = true;
	}
	return any;
}

struct slices *slices_new(size_t n_services, const struct slices_service *svc,
			  size_t n_nodes, bool rebuilding)
{
	struct slices *s;

	if (n_services > SLICES_MAX_SERVICES || (n_services && !svc) ||
	    n_nodes < 1 || n_nodes > SLICES_MAX_NODES)
		goto inval;
	for (size_t v = 0; v < n_services; v++)
		if (svc[v].block_bits > SLICES_MAX_BLOCK_BITS || svc[v].max_open < 1)
			goto inval;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->n_services = n_services;
	s->n_nodes = n_nodes;
	s->rebuilding = rebuilding;
	s->svc = calloc(n_services ? n_services : 1, sizeof(*s->svc));
	s->nodes = calloc(n_nodes, sizeof(*s->nodes));
	s->slots = calloc(n_nodes * (n_services ? n_services : 1), sizeof(*s->slots));
	if (!s->svc || !s->nodes || !s->slots)
		goto nomem;
	for (size_t v = 0; v < n_services; v++) {
		struct slices_svc *sv = &s->svc[v];

		sv->cfg = svc[v];
		sv->n_blocks = 1u << svc[v].block_bits;
		sv->blocks = calloc(sv->n_blocks, sizeof(*sv->blocks));
		if (!sv->blocks)
			goto nomem;
		for (uint32_t b = 0; b < sv->n_blocks; b++)
			sv->blocks[b].owner = -1;
	}
	for (size_t i = 0; i < n_nodes * n_services; i++)
		s->slots[i].block = s->slots[i].stray = SLICES_NO_BLOCK;
	return s;
nomem:
	slices_free(s);
	errno = ENOMEM;
	return NULL;
inval:
	errno = EINVAL;
	return NULL;
}

void slices_free(struct slices *s)
{
	if (!s)
		return;
	for (size_t v = 0; s->svc && v < s->n_services; v++)
		free(s->svc[v].blocks);
	free(s->svc);
	free(s->nodes);
	free(s->slots);
	free(s);
}

/*
 * One service of a claim. A claim is what the node uses now, on a new
 * connection: anything it used before and does not claim drains from now.
 */
static bool claim_service(struct slices *s, size_t node, size_t v,
			  int32_t cb, uint32_t cs, uint64_t now)
{
	struct slices_slot *sl = slot_of(s, node, v);
	int32_t stray = SLICES_NO_BLOCK;
	uint32_t peak;

	/* where the controller holds nothing, what overlaps nothing stays */
	if (cb >= 0 && sl->block < 0 && block_claimable(s, v, cb, node, now)) {
		uint32_t fits = budget(s, v, node, now);

		block_take(s, v, cb, node);
		sl->share = cs < fits ? cs : fits;
	}
	if (cb >= 0 && cb != sl->block)
		stray = cb;
	if (sl->stray != stray) {
		stray_release(s, v, sl, now);
		if (stray >= 0) {
			sl->stray = stray;
			s->svc[v].blocks[stray].strays++;
		}
	}
	peak = sl->share > cs ? sl->share : cs;
	if (sl->peak > peak)
		drain_add(s, v, sl, sl->peak - peak, now);
	sl->peak = peak;
	return cb == sl->block && cs == sl->share;
}

int slices_node_up(struct slices *s, size_t node,
		   const struct slices_assignment *claim, uint64_t now_ms)
{
	struct slices_node *nd;
	uint64_t now, ce;
	bool same = true;

	if (!s || node >= s->n_nodes)
		return -EINVAL;
	now = clock_at(s, now_ms);
	nd = &s->nodes[node];
	if (claim && claim->epoch == 0)
		claim = NULL; /* no assignment: its fields mean nothing */
	ce = claim ? claim->epoch : 0;
	if (s->rebuilding && !nd->reported)
		hold(s, now);
	for (size_t v = 0; v < s->n_services; v++) {
		const struct slices_service *c = &s->svc[v].cfg;
		int32_t cb = SLICES_NO_BLOCK;
		uint32_t cs = 0;

		if (claim && v < claim->n_services) {
			cb = claim->block[v];
			cs = claim->share[v] > c->max_open ? c->max_open :
			     claim->share[v];
		}
		/* not a block of this cut: not met while the digests match */
		if (cb < 0 || cb >= (int32_t)s->svc[v].n_blocks)
			cb = SLICES_NO_BLOCK;
		same &= claim_service(s, node, v, cb, cs, now);
	}
	/* later epochs than any the node has seen */
	if (ce > s->epoch)
		s->epoch = ce;
	nd->state = SLICES_UP;
	nd->reported = true;
	nd->sent = nd->acked = ce;
	if (same)
		nd->epoch = ce; /* it has its record already */
	else
		nd->changed = true;
	settle(s, now);
	return 0;
}

int slices_node_down(struct slices *s, size_t node, uint64_t now_ms)
{
	struct slices_node *nd;

	if (!s || node >= s->n_nodes)
		return -EINVAL;
	nd = &s->nodes[node];
	if (nd->state == SLICES_UP)
		nd->state = SLICES_HELD;
	settle(s, clock_at(s, now_ms));
	return 0;
}

static int drop(struct slices *s, size_t node, uint64_t now_ms)
{
	struct slices_node *nd;
	uint64_t now;

	if (!s || node >= s->n_nodes)
		return -EINVAL;
	now = clock_at(s, now_ms);
	nd = &s->nodes[node];
	if (s->rebuilding && !nd->reported)
		hold(s, now);
	for (size_t v = 0; v < s->n_services; v++) {
		struct slices_svc *sv = &s->svc[v];
		struct slices_slot *sl = slot_of(s, node, v);

		if (sl->block >= 0) {
			sv->blocks[sl->block].owner = -1;
			block_drain(s, v, sl->block, now);
			sl->block = SLICES_NO_BLOCK;
		}
		stray_release(s, v, sl, now);
		drain_add(s, v, sl, sl->peak, now);
		sl->peak = sl->share = 0;
	}
	nd->state = SLICES_GONE;
	nd->reported = true;
	nd->changed = false;
	nd->epoch = nd->sent = nd->acked = 0;
	settle(s, now);
	return 0;
}

int slices_node_leave(struct slices *s, size_t node, uint64_t now_ms)
{
	return drop(s, node, now_ms);
}

int slices_node_forget(struct slices *s, size_t node, uint64_t now_ms)
{
	return drop(s, node, now_ms);
}

int slices_node_ack(struct slices *s, size_t node, uint64_t epoch,
		    uint64_t now_ms)
{
	struct slices_node *nd;
	uint64_t now;

	if (!s || node >= s->n_nodes)
		return -EINVAL;
	nd = &s->nodes[node];
	if (nd->state != SLICES_UP || epoch == 0 || epoch > nd->sent ||
	    epoch > nd->epoch)
		return -EINVAL;
	if (epoch < nd->acked)
		return -ESTALE;
	now = clock_at(s, now_ms);
	nd->acked = epoch;
	/*
	 * Only the current record releases: after an earlier one, a later
	 * one may still be on its way, and carry more.
	 */
	if (epoch == nd->epoch) {
		for (size_t v = 0; v < s->n_services; v++) {
			struct slices_slot *sl = slot_of(s, node, v);

			stray_release(s, v, sl, now);
			drain_add(s, v, sl, sl->peak - sl->share, now);
			sl->peak = sl->share;
		}
	}
	settle(s, now);
	return 0;
}

bool slices_tick(struct slices *s, uint64_t now_ms)
{
	if (!s)
		return false;
	return settle(s, clock_at(s, now_ms));
}

int slices_get(const struct slices *s, size_t node, struct slices_assignment *out)
{
	if (!s || node >= s->n_nodes || !out)
		return -EINVAL;
	out->epoch = s->nodes[node].epoch;
	out->n_services = s->n_services;
	for (size_t v = 0; v < s->n_services; v++) {
		out->block[v] = slot_of(s, node, v)->block;
		out->share[v] = slot_of(s, node, v)->share;
	}
	return 0;
}

bool slices_dirty(const struct slices *s, size_t node)
{
	const struct slices_node *nd;

	if (!s || node >= s->n_nodes)
		return false;
	nd = &s->nodes[node];
	return nd->state == SLICES_UP && nd->epoch > nd->sent;
}

int slices_sent(struct slices *s, size_t node, uint64_t epoch)
{
	struct slices_node *nd;

	if (!s || node >= s->n_nodes)
		return -EINVAL;
	nd = &s->nodes[node];
	if (nd->state != SLICES_UP || epoch != nd->epoch)
		return -EINVAL;
	nd->sent = epoch;
	return 0;
}

enum slices_node_state slices_state(const struct slices *s, size_t node)
{
	if (!s || node >= s->n_nodes)
		return SLICES_NEVER;
	return s->nodes[node].state;
}

int slices_stats(const struct slices *s, size_t service, uint64_t now_ms,
		 struct slices_stats *st)
{
	const struct slices_svc *sv;
	uint64_t now;

	if (!s || service >= s->n_services || !st)
		return -EINVAL;
	sv = &s->svc[service];
	now = now_ms > s->now ? now_ms : s->now;
	memset(st, 0, sizeof(*st));
	st->max_open = sv->cfg.max_open;
	st->blocks = sv->n_blocks;
	st->rebuilding = s->rebuilding;
	st->holding = now < sv->hold_until;
	for (size_t n = 0; n < s->n_nodes; n++) {
		st->reserved += slot_of(s, n, service)->peak;
		st->draining += drain_now(slot_of(s, n, service), now);
	}
	if (!st->rebuilding && !st->holding)
		st->free = budget(s, service, SIZE_MAX, now);
	for (uint32_t b = 0; b < sv->n_blocks; b++) {
		const struct slices_block *blk = &sv->blocks[b];

		if (blk->owner >= 0)
			st->blocks_held++;
		else if (blk->strays || now < blk->until)
			st->blocks_draining++;
		else if (st->rebuilding || st->holding)
			st->blocks_draining++; /* what the previous one held */
		else
			st->blocks_free++;
	}
	return 0;
}
