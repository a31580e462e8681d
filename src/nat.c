// SPDX-License-Identifier: MIT
#include "nat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <linux/netfilter/nf_tables.h>

#include "addr.h"
#include "config.h"
#include "gw_policy.h"
#include "kprobe.h"
#include "latency.h"
#include "log.h"
#include "loop.h"
#include "nft.h"
#include "worker.h"

#define ACK_TIMEOUT_MS   2000 /* a commit the kernel does not acknowledge fails */
#define MAX_WAITERS      8    /* refresh callbacks waiting for the worker */
#define CONNTRACK_PERIOD 10000

struct waiter {
	gateway_done_fn fn;
	void *ctx;
};

struct nat {
	struct gateway gw;
	const struct config *cfg;
	struct gw_table *table;    /* what the configuration wants */
	struct nft *nft;           /* the loop's socket: commits, installs */
	struct worker *worker;     /* dumps, on a socket of its own */
	struct loop *loop;
	struct loop_handler worker_done;
	struct waiter waiters[MAX_WAITERS];
	size_t n_waiters;
	struct gw_elem *elems;     /* reused by every commit */
	size_t elems_cap;
	uint64_t commits, failures, elements;
	struct latency latency;
	bool need_repair;
	bool readd;                /* refresh expiries by add, delete, add */
	uint64_t last_repair_ms, last_conntrack_ms;
	uint64_t misses[CONFIG_MAX_POOLS];
};

/* ---- install ------------------------------------------------------------------ */

struct stale {
	struct nat *n;
	enum gw_obj_type type;
	char (*names)[GW_NAME_MAX];
	size_t count, cap;
};

/* Remember an object of the kernel's table that the configuration has no
 * more (a service removed or renamed). */
static int collect_stale(void *ctx, const char *name)
{
	struct stale *s = ctx;

	if (gw_table_has(s->n->table, s->type, name))
		return 0;
	if (s->count == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		char (*grown)[GW_NAME_MAX] = realloc(s->names, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		s->names = grown;
		s->cap = cap;
	}
	snprintf(s->names[s->count++], GW_NAME_MAX, "%s", name);
	return 0;
}

static void put_table(struct nat *n)
{
	const struct gw_table *t = n->table;

	for (size_t i = 0; i < t->n_sets; i++)
		nft_add_set(n->nft, &t->sets[i]);
	for (size_t i = 0; i < t->n_counters; i++)
		nft_add_counter(n->nft, t->counters[i]);
	for (size_t i = 0; i < t->n_chains; i++)
		nft_add_chain(n->nft, &t->chains[i]);
	for (size_t i = 0; i < t->n_rules; i++)
		nft_add_rule(n->nft, &t->rules[i]);
}

/*
 * Create the table, or adopt it: in one transaction, flush every rule,
 * delete what the configuration no longer has, and add the rest (adding an
 * existing set or counter keeps its contents). There is no instant where
 * traffic to a pool is unrouted.
 */
static int install(struct nat *n)
{
	static const enum gw_obj_type types[] = {
		GW_TYPE_CHAIN, GW_TYPE_SET, GW_TYPE_COUNTER,
	};
	const char *name = n->cfg->table;
	struct stale stale[3] = { 0 };
	bool exists, ours;
	int ret, failed;

	ret = nft_probe_table(n->nft, name, GW_TABLE_MARK, &exists, &ours);
	if (ret < 0) {
		log_err("nftables: cannot list tables: %s", strerror(-ret));
		return ret;
	}
	if (exists && !ours) {
		log_err("nftables: table inet %s exists and was not made by choreod; "
			"choreod never touches other tables: set [daemon] table to "
			"another name", name);
		return -EEXIST;
	}
	for (size_t k = 0; exists && k < 3; k++) {
		stale[k] = (struct stale){ .n = n, .type = types[k] };
		ret = nft_list_names(n->nft, name, types[k], collect_stale, &stale[k]);
		if (ret < 0) {
			log_err("nftables: cannot list table %s: %s", name, strerror(-ret));
			goto out;
		}
	}
	nft_begin(n->nft, name);
	nft_add_table(n->nft, GW_TABLE_MARK);
	if (exists) {
		nft_flush_rules(n->nft);
		for (size_t k = 0; k < 3; k++)
			for (size_t i = 0; i < stale[k].count; i++)
				nft_del_object(n->nft, stale[k].type, stale[k].names[i]);
	}
	put_table(n);
	ret = nft_commit(n->nft, &failed);
	if (ret < 0)
		log_err("nftables: cannot %s table inet %s (%zu messages; message type "
			"%d refused): %s%s", exists ? "update" : "create", name,
			nft_pending(n->nft), failed, strerror(-ret),
			ret == -EEXIST ? " (a set changed its definition, e.g. "
			"max_bindings: remove the table with choreoctl remove-table)" : "");
	else
		log_info("nftables: table inet %s %s (%zu sets, %zu rules)", name,
			 exists ? "adopted: sets kept, rules replaced atomically" :
				  "created", n->table->n_sets, n->table->n_rules);
out:
	for (size_t k = 0; k < 3; k++)
		free(stale[k].names);
	return ret;
}

/* ---- the gateway interface ------------------------------------------------------- */

static int elem_cmp(const void *a, const void *b)
{
	const struct gw_elem *x = a, *y = b;
	int d = strcmp(x->set, y->set);

	if (d)
		return d;
	if (x->key_len != y->key_len)
		return x->key_len < y->key_len ? -1 : 1;
	return memcmp(x->key, y->key, x->key_len);
}

/*
 * One element per (set, key), with the longest timeout of its copies: two
 * answers of a batch may re-use one address, and a transaction that
 * deletes an element twice (the add-delete-add refresh) fails whole.
 * Returns the new count.
 */
static size_t unique_elems(struct gw_elem *e, size_t count)
{
	size_t out = 0;

	if (count < 2)
		return count;
	qsort(e, count, sizeof(*e), elem_cmp);
	for (size_t i = 1; i < count; i++) {
		if (elem_cmp(&e[out], &e[i]) == 0) {
			if (e[i].timeout_ms > e[out].timeout_ms)
				e[out] = e[i];
		} else {
			e[++out] = e[i];
		}
	}
	return out + 1;
}

static void nat_commit(struct gateway *gw, const struct change *c, size_t count,
		       gateway_done_fn done, void *ctx)
{
	struct nat *n = container_of(gw, struct nat, gw);
	uint64_t start = latency_now_us();
	int ret = 0;

	if (count == 0) {
		done(ctx, 0);
		return;
	}
	if (2 * count > n->elems_cap) {
		/* the elements, then the claims they re-arm */
		struct gw_elem *grown = realloc(n->elems, 2 * count * sizeof(*grown));

		if (!grown) {
			done(ctx, -ENOMEM);
			return;
		}
		n->elems = grown;
		n->elems_cap = 2 * count;
	}
	for (size_t i = 0; i < count && !ret; i++)
		ret = gw_change_elem(n->cfg, &c[i], &n->elems[i]);
	if (!ret) {
		size_t n_rearm = 0;
		struct gw_elem *rearm = n->elems + count;

		/* with window_claims, each window's answer re-arms its claims */
		for (size_t i = 0; i < count; i++)
			n_rearm += (size_t)gw_change_rearm(n->cfg, &c[i], &rearm[n_rearm]);
		count = unique_elems(n->elems, count);
		n_rearm = unique_elems(rearm, n_rearm);
		nft_begin(n->nft, n->cfg->table);
		nft_add_elems(n->nft, n->elems, count);
		if (n->readd) {
			/* this kernel keeps an element's old expiry when it is
			 * added again: delete it and add it anew, in the same
			 * transaction (after the first add it surely exists, so
			 * the delete cannot fail on one that just expired) */
			nft_del_elems(n->nft, n->elems, count);
			nft_add_elems(n->nft, n->elems, count);
		}
		/* added first for the same reason: then deleted */
		nft_add_elems(n->nft, rearm, n_rearm);
		nft_del_elems(n->nft, rearm, n_rearm);
		ret = nft_commit(n->nft, NULL);
	}
	n->commits++;
	if (ret) {
		n->failures++;
		if (ret == -ENOENT)
			n->need_repair = true; /* the table or a set is gone */
	} else {
		n->elements += count;
		latency_record(&n->latency, latency_now_us() - start);
	}
	done(ctx, ret);
}

static void nat_refresh(struct gateway *gw, gateway_done_fn done, void *ctx)
{
	struct nat *n = container_of(gw, struct nat, gw);

	if (n->n_waiters == MAX_WAITERS) {
		done(ctx, -EBUSY);
		return;
	}
	n->waiters[n->n_waiters++] = (struct waiter){ done, ctx };
	worker_request_counts(n->worker);
}

static void on_worker_done(struct loop_handler *h, uint32_t events)
{
	struct nat *n = container_of(h, struct nat, worker_done);
	struct waiter w[MAX_WAITERS];
	size_t count = n->n_waiters;

	(void)events;
	worker_take_done(n->worker);
	/* a callback may ask again: it lands in the emptied list */
	memcpy(w, n->waiters, count * sizeof(w[0]));
	n->n_waiters = 0;
	for (size_t i = 0; i < count; i++)
		w[i].fn(w[i].ctx, 0);
}

/* A /proc/sys value, or -1. */
static long read_sysctl(const char *path)
{
	FILE *f = fopen(path, "re");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static void nat_snapshot(struct gateway *gw, struct gateway_snapshot *out)
{
	struct nat *n = container_of(gw, struct nat, gw);

	worker_snapshot(n->worker, out);
	out->commits = n->commits;
	out->failures = n->failures;
	out->readd = n->readd;
	out->elements = n->elements;
	latency_summarise(&n->latency, &out->latency);
	out->conntrack_count = read_sysctl("/proc/sys/net/netfilter/nf_conntrack_count");
	out->conntrack_max = read_sysctl("/proc/sys/net/netfilter/nf_conntrack_max");
}

static int nat_list_bindings(struct gateway *gw, int fd)
{
	struct nat *n = container_of(gw, struct nat, gw);

	return worker_list_bindings(n->worker, fd);
}

/* Clients let in by a window for whom the kernel could not learn a binding
 * (the set was full): warn when their number grows. */
static void check_binding_sets(struct nat *n, const struct gateway_snapshot *s)
{
	if (!s->counters_known)
		return;
	config_for_each_pool(n->cfg, p) {
		const struct gateway_pool_counts *k = &s->pool[p.index];
		uint64_t misses = k->via_window > k->learned ? k->via_window - k->learned : 0;

		if (misses > n->misses[p.index])
			log_warn("[service %s]: the %s binding set is full "
				 "(max_bindings %u): %llu clients got in without "
				 "a binding; raise max_bindings", p.svc->section,
				 p.family == AF_INET6 ? "IPv6" : "IPv4",
				 p.svc->max_bindings,
				 (unsigned long long)(misses - n->misses[p.index]));
		n->misses[p.index] = misses;
	}
}

static void nat_tick(struct gateway *gw, uint64_t now_ms)
{
	struct nat *n = container_of(gw, struct nat, gw);
	struct gateway_snapshot *s;

	/* the table was removed or flushed from outside (nft flush ruleset):
	 * put it back, or every answer would stay SERVFAIL */
	if (n->need_repair && now_ms - n->last_repair_ms >= 1000) {
		n->last_repair_ms = now_ms;
		log_warn("nftables: the gateway's table is missing or damaged; "
			 "installing it again");
		if (install(n) == 0)
			n->need_repair = false;
	}
	if (now_ms - n->last_conntrack_ms < CONNTRACK_PERIOD)
		return;
	n->last_conntrack_ms = now_ms;
	s = malloc(sizeof(*s));
	if (!s)
		return;
	nat_snapshot(gw, s);
	if (s->conntrack_count >= 0 && s->conntrack_max > 0 &&
	    s->conntrack_count * 10 >= s->conntrack_max * 9)
		log_warn("conntrack table at %ld of %ld entries: new connections "
			 "will be dropped when it is full; raise "
			 "net.netfilter.nf_conntrack_max (see choreod(8))",
			 s->conntrack_count, s->conntrack_max);
	check_binding_sets(n, s);
	free(s);
}

static int nat_windows(struct gateway *gw, gateway_window_fn *fn, void *ctx);

static const struct gateway_ops nat_ops = {
	.commit = nat_commit,
	.windows = nat_windows,
	.refresh = nat_refresh,
	.snapshot = nat_snapshot,
	.list_bindings = nat_list_bindings,
	.tick = nat_tick,
};

/* ---- life cycle ------------------------------------------------------------------------ */

/* How a window's expiry is refreshed: as configured, or as the kernel
 * probe finds (Linux >= 6.12 refreshes on re-add; before, add-delete-add). */
static int choose_refresh(struct nat *n)
{
	struct kprobe k;
	char msg[256];
	int ret;

	ret = kprobe_run(&k, msg, sizeof(msg));
	if (ret < 0) {
		log_err("kernel %s: %s", k.release, msg);
		return ret;
	}
	config_for_each_pool(n->cfg, p) {
		if (p.svc->window_claims && !k.claims) {
			log_err("kernel %s cannot limit a set element from a rule "
				"(per-element expressions, Linux >= 5.12): [service %s] "
				"window_claims needs it", k.release, p.svc->section);
			return -ENOTSUP;
		}
	}
	if (n->cfg->refresh == CONFIG_REFRESH_READD) {
		n->readd = true;
		log_info("kernel %s: windows refreshed by delete and re-add "
			 "([daemon] element_refresh = readd)", k.release);
		return 0;
	}
	if (n->cfg->refresh == CONFIG_REFRESH_KERNEL && !k.refresh) {
		log_err("kernel %s does not refresh a set element's expiry when it "
			"is added again (Linux >= 6.12 does): set [daemon] "
			"element_refresh = auto or readd", k.release);
		return -ENOTSUP;
	}
	n->readd = !k.refresh;
	log_info("kernel %s: re-adding a set element %s its expiry; windows are "
		 "refreshed by %s", k.release, k.refresh ? "refreshes" : "keeps",
		 n->readd ? "delete and re-add in one transaction" : "re-adding");
	return 0;
}

int nat_open(const struct config *cfg, struct loop *loop, struct nat **out)
{
	struct nat *n = calloc(1, sizeof(*n));
	int ret;

	*out = NULL;
	if (!n)
		return -ENOMEM;
	n->gw.ops = &nat_ops;
	n->cfg = cfg;
	n->loop = loop;
	n->worker_done.fd = -1;
	ret = gw_policy_build(cfg, &n->table);
	if (ret < 0)
		goto fail;
	ret = choose_refresh(n);
	if (ret < 0)
		goto fail;
	ret = nft_open(ACK_TIMEOUT_MS, &n->nft);
	if (ret < 0) {
		log_err("nftables: netlink socket: %s", strerror(-ret));
		goto fail;
	}
	ret = install(n);
	if (ret < 0)
		goto fail;
	ret = worker_start(cfg, &n->worker);
	if (ret < 0) {
		log_err("cannot start the worker thread: %s", strerror(-ret));
		goto fail;
	}
	n->worker_done = (struct loop_handler){ .fd = worker_done_fd(n->worker),
						.fn = on_worker_done };
	ret = loop_add(loop, &n->worker_done, EPOLLIN);
	if (ret < 0) {
		n->worker_done.fd = -1;
		goto fail;
	}
	*out = n;
	return 0;
fail:
	nat_close(n);
	return ret;
}

void nat_close(struct nat *n)
{
	if (!n)
		return;
	if (n->worker_done.fd >= 0)
		loop_del(n->loop, &n->worker_done);
	worker_stop(n->worker);
	nft_close(n->nft);
	gw_table_free(n->table);
	free(n->elems);
	free(n);
}

struct gateway *nat_gateway(struct nat *n)
{
	return &n->gw;
}

struct adoption {
	struct nat *n;
	struct config_pool pool;
	enum gw_pool_obj obj;
	nat_keep_fn *keep;
	void *ctx;
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
	if (a->keep(a->ctx, &w))
		return;
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
		 nat_keep_fn *keep, void *ctx)
{
	struct adoption a = { .n = n, .keep = keep, .ctx = ctx };
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

	return walk(n, objs, 3, keep, ctx);
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

static int nat_windows(struct gateway *gw, gateway_window_fn *fn, void *ctx)
{
	static const enum gw_pool_obj objs[] = { GW_OPEN, GW_SCOPED };
	struct nat *n = container_of(gw, struct nat, gw);
	struct window_walk ww = { fn, ctx };
	long ret = walk(n, objs, 2, pass_window, &ww);

	return ret < 0 ? (int)ret : 0;
}

int nat_remove_table(const char *table)
{
	struct nft *nft;
	bool exists, ours;
	int ret = nft_open(ACK_TIMEOUT_MS, &nft);

	if (ret < 0)
		return ret;
	ret = nft_probe_table(nft, table, GW_TABLE_MARK, &exists, &ours);
	if (!ret && !exists)
		ret = -ENOENT;
	else if (!ret && !ours)
		ret = -EPERM; /* not ours: never touched */
	if (!ret) {
		nft_begin(nft, table);
		nft_del_table(nft);
		ret = nft_commit(nft, NULL);
	}
	nft_close(nft);
	return ret;
}
