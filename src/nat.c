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
	if (count > n->elems_cap) {
		struct gw_elem *grown = realloc(n->elems, count * sizeof(*grown));

		if (!grown) {
			done(ctx, -ENOMEM);
			return;
		}
		n->elems = grown;
		n->elems_cap = count;
	}
	for (size_t i = 0; i < count && !ret; i++)
		ret = gw_change_elem(n->cfg, &c[i], &n->elems[i]);
	if (!ret) {
		nft_begin(n->nft, n->cfg->table);
		nft_add_elems(n->nft, n->elems, count);
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

static const struct gateway_ops nat_ops = {
	.commit = nat_commit,
	.refresh = nat_refresh,
	.snapshot = nat_snapshot,
	.list_bindings = nat_list_bindings,
	.tick = nat_tick,
};

/* ---- life cycle ------------------------------------------------------------------------ */

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

struct open_walk {
	int family;
	void (*fn)(void *ctx, const uint8_t addr[16], uint64_t ms_left);
	void *ctx;
};

static void open_one(void *ctx, const uint8_t *key, uint32_t key_len,
		     uint64_t ms_left)
{
	struct open_walk *w = ctx;
	uint8_t addr[16] = { 0 };

	if (key_len != addr_family_size(w->family))
		return;
	memcpy(addr, key, key_len);
	w->fn(w->ctx, addr, ms_left);
}

long nat_open_windows(struct nat *n, size_t service, int family,
		      void (*fn)(void *ctx, const uint8_t addr[16], uint64_t ms_left),
		      void *ctx)
{
	struct open_walk w = { family, fn, ctx };
	char name[GW_NAME_MAX];

	if (service >= n->cfg->n_services)
		return -EINVAL;
	gw_name(name, n->cfg, service, family, GW_OPEN);
	return nft_dump_elems(n->nft, n->cfg->table, name, open_one, &w);
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
