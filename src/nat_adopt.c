// SPDX-License-Identifier: MIT
/* nat.h's adoption at the start, and the windows the table holds. */
#include "nat.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "addr.h"
#include "change_log.h"
#include "config.h"
#include "gw_policy.h"
#include "nat_impl.h"
#include "nft.h"

struct adoption {
	struct nat *n;
	struct config_pool pool;
	enum gw_pool_obj obj;
	nat_keep_fn *keep;
	void *ctx;
	bool remember;            /* log the windows kept, for a repair */
	uint64_t now_ms;
	struct gw_elem *drop;
	size_t n_drop, cap;
	int err;
};

/* The prefix length of a range start .. end: the bits they share. */
static unsigned range_len(const uint8_t *start, const uint8_t *end, size_t alen)
{
	unsigned bit = 0;

	while (bit < alen * 8 &&
	       !((start[bit / 8] ^ end[bit / 8]) & (0x80 >> (bit % 8))))
		bit++;
	return bit;
}

/* A window kept at the start goes into the replay log as the change that
 * made it: a repair applies it again like those of this run's answers. */
static void remember_window(struct adoption *a, const struct nat_window *w)
{
	size_t alen = addr_family_size(w->family);
	struct change c = {
		.kind = w->obj == GW_OPEN ? CHANGE_OPEN :
			w->obj == GW_SCOPED ? CHANGE_OPEN_SCOPED : CHANGE_BIND,
		.family = (uint8_t)w->family,
		.src_len = w->obj == GW_OPEN ? 0 : (uint8_t)w->src_len,
		.service = (uint16_t)w->service,
		.ms = w->ms_left > CHANGE_MAX_MS ? CHANGE_MAX_MS : (uint32_t)w->ms_left,
	};

	memcpy(c.addr, w->addr, alen);
	if (w->obj != GW_OPEN)
		memcpy(c.src, w->src, alen);
	change_log_add(a->n->log, &c, 1, a->now_ms);
}

static void adopt_one(void *ctx, const uint8_t *key, uint32_t key_len,
		      const uint8_t *key_end, uint64_t ms_left)
{
	struct adoption *a = ctx;
	size_t alen = addr_family_size(a->pool.family);
	struct nat_window w = { .service = a->pool.service, .family = a->pool.family,
				.obj = a->obj, .ms_left = ms_left };
	struct gw_elem *e;

	if (a->obj == GW_OPEN) {
		if (key_len != alen)
			return;
		memcpy(w.addr, key, alen);
	} else {
		if (key_len != 2 * alen)
			return;
		memcpy(w.src, key, alen);
		memcpy(w.addr, key + alen, alen);
		w.src_len = key_end ? range_len(key, key_end, alen) : (unsigned)alen * 8;
	}
	if (a->keep(a->ctx, &w)) {
		if (a->remember && ms_left)
			remember_window(a, &w);
		return;
	}
	if (a->n_drop == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		struct gw_elem *grown = realloc(a->drop, cap * sizeof(*grown));

		if (!grown) {
			a->err = -ENOMEM;
			return;
		}
		a->drop = grown;
		a->cap = cap;
	}
	e = &a->drop[a->n_drop++];
	memset(e, 0, sizeof(*e));
	gw_name(e->set, a->n->cfg, a->pool.service, a->pool.family, a->obj);
	e->family = a->pool.family;
	e->key_len = key_len;
	memcpy(e->key, key, key_len);
	if (key_end) {
		memcpy(e->key_end, key_end, key_len);
		e->has_end = true;
	}
	e->timeout_ms = 1000;
}

/* Offer the elements of these sets of every pool to keep; delete the rest. */
static long walk(struct nat *n, const enum gw_pool_obj *objs, size_t n_objs,
		 nat_keep_fn *keep, void *ctx, bool remember)
{
	struct adoption a = { .n = n, .keep = keep, .ctx = ctx,
			      .remember = remember && n->log, .now_ms = log_now_ms() };
	long ret = 0;

	config_for_each_pool(n->cfg, p) {
		for (size_t i = 0; i < n_objs && !a.err; i++) {
			char name[GW_NAME_MAX];
			long got;

			a.pool = p;
			a.obj = objs[i];
			gw_name(name, n->cfg, p.service, p.family, objs[i]);
			got = nft_dump_elems(n->nft, n->cfg->table, name, adopt_one, &a);
			if (got < 0)
				a.err = (int)got;
		}
	}
	if (!a.err && a.n_drop) {
		/* added first, so that one that expired since the dump is there
		 * to delete: a missing element would abort the transaction */
		nft_begin(n->nft, n->cfg->table);
		nft_add_elems(n->nft, a.drop, a.n_drop);
		nft_del_elems(n->nft, a.drop, a.n_drop);
		a.err = nft_commit(n->nft, NULL);
	}
	ret = a.err ? a.err : (long)a.n_drop;
	free(a.drop);
	return ret;
}

long nat_adopt(struct nat *n, nat_keep_fn *keep, void *ctx)
{
	static const enum gw_pool_obj objs[] = { GW_OPEN, GW_SCOPED, GW_ASKED };

	return walk(n, objs, 3, keep, ctx, true);
}

struct window_walk {
	gateway_window_fn *fn;
	void *ctx;
};

/* Every window is kept; each is passed on as a change with its time left. */
static bool pass_window(void *ctx, const struct nat_window *w)
{
	const struct window_walk *ww = ctx;
	struct change c = {
		.kind = w->obj == GW_OPEN ? CHANGE_OPEN : CHANGE_OPEN_SCOPED,
		.family = (uint8_t)w->family,
		.src_len = w->obj == GW_OPEN ? 0 : (uint8_t)w->src_len,
		.service = (uint16_t)w->service,
		.ms = w->ms_left > CHANGE_MAX_MS ? CHANGE_MAX_MS :
		      w->ms_left ? (uint32_t)w->ms_left : 1,
	};

	memcpy(c.addr, w->addr, 16);
	if (w->obj != GW_OPEN)
		memcpy(c.src, w->src, 16);
	ww->fn(ww->ctx, &c);
	return true;
}

int nat_windows(struct gateway *gw, gateway_window_fn *fn, void *ctx)
{
	static const enum gw_pool_obj objs[] = { GW_OPEN, GW_SCOPED };
	struct nat *n = container_of(gw, struct nat, gw);
	struct window_walk ww = { fn, ctx };
	long ret = walk(n, objs, 2, pass_window, &ww, false);

	return ret < 0 ? (int)ret : 0;
}
