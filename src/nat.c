// SPDX-License-Identifier: MIT
#include "nat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <linux/netfilter/nf_tables.h>

#include "addr.h"
#include "change_log.h"
#include "config.h"
#include "gw_policy.h"
#include "kprobe.h"
#include "latency.h"
#include "log.h"
#include "loop.h"
#include "nat_verify.h"
#include "nft.h"
#include "worker.h"

#define ACK_TIMEOUT_MS   2000 /* a commit the kernel does not acknowledge fails */
#define CONNTRACK_PERIOD 10000
#define CHECK_PERIOD_MS  200  /* the ruleset generation is read this often */
#define RETRY_MS         1000 /* a repair that failed is tried again after */
#define FULL_CHECK_MS    5000 /* the table compared at least this often */
#define REPLAY_LOG       262144 /* changes kept to apply again after a repair */
#define QUARANTINE_LOG   4096 /* quarantines (long-lived) in a log of their own */
#define LEARNED_LOG      REPLAY_LOG /* relayed bindings (binding-long) in one too */
#define REPLAY_CHUNK     8192 /* changes per transaction when applied again */

#include "nat_impl.h"

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
static int install(struct nat *n, bool quiet)
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
	else if (!quiet)
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

/*
 * One transaction with the elements of c[0..count): added (with add,
 * delete, add where the kernel keeps an old expiry), and with rearm the
 * claims each window's answer re-arms. *n_elems gets the number of
 * elements written. 0 or the kernel's error.
 */
static int apply(struct nat *n, const struct change *c, size_t count, bool rearm_claims,
		 size_t *n_elems)
{
	size_t n_rearm = 0;
	struct gw_elem *rearm;
	int ret = 0;

	*n_elems = 0;
	if (2 * count > n->elems_cap) {
		/* the elements, then the claims they re-arm */
		struct gw_elem *grown = realloc(n->elems, 2 * count * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		n->elems = grown;
		n->elems_cap = 2 * count;
	}
	for (size_t i = 0; i < count && !ret; i++)
		ret = gw_change_elem(n->cfg, &c[i], &n->elems[i]);
	if (ret)
		return ret;
	rearm = n->elems + count;
	/* with window_claims, each window's answer re-arms its claims */
	for (size_t i = 0; rearm_claims && i < count; i++)
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
	*n_elems = count;
	return nft_commit(n->nft, NULL);
}

/*
 * A commit refused because a set is full (-ENFILE; -ENOSPC for some set
 * types): its answers are SERVFAIL, never an address the gateway would not
 * route. Counted, and logged at most once a second. A full asked or scoped
 * set is remembered for a while (full_sets.h). Returns whether it was one
 * of those.
 */
static bool note_full(struct nat *n, int ret, size_t count, uint64_t now)
{
	const char *set = nft_failed_set(n->nft);
	enum gw_pool_obj obj;
	size_t service;
	int family;

	n->set_full++;
	if (log_ratelimit_ok(&n->full_rl, now))
		log_warn("nftables: set %s of table inet %s is full (%s): a commit "
			 "of %zu changes was refused, its answers are SERVFAIL (%llu "
			 "such commits so far; the sizes: max_open, max_asked in "
			 "choreo.conf(5)); asker entries a window covers are left "
			 "out while it is full", set ? set : "?", n->cfg->table,
			 ret == -ENFILE ? "ENFILE" : "ENOSPC", count,
			 (unsigned long long)n->set_full);
	if (!set || gw_parse_name(n->cfg, set, &service, &family, &obj) < 0 ||
	    (obj != GW_ASKED && obj != GW_SCOPED))
		return false;
	full_sets_mark(&n->full, service, family, obj == GW_SCOPED, now);
	return true;
}

/* The changes of c to write while sets are full (full_sets.h): *c and
 * *count updated; -ENFILE when one needs a full set. */
static int filter_full(struct nat *n, const struct change **c, size_t *count,
		       uint64_t now)
{
	ssize_t k;

	if (!full_sets_any(&n->full, now))
		return 0;
	if (*count > n->filtered_cap) {
		struct change *grown = realloc(n->filtered, *count * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		n->filtered = grown;
		n->filtered_cap = *count;
	}
	k = full_sets_filter(&n->full, n->cfg, *c, *count, n->filtered, now);
	if (k < 0)
		return (int)k;
	*c = n->filtered;
	*count = (size_t)k;
	return 0;
}

/* Keep what a commit applied, to apply it again after a repair. */
static void remember(struct nat *n, const struct change *c, size_t count,
		     uint64_t now_ms)
{
	for (size_t i = 0; i < count; i++)
		change_log_add(c[i].kind == CHANGE_QUARANTINE ? n->qlog :
			       c[i].kind == CHANGE_LEARNED ? n->llog : n->log,
			       &c[i], 1, now_ms);
}

static void nat_commit(struct gateway *gw, const struct change *c, size_t count,
		       gateway_done_fn done, void *ctx)
{
	struct nat *n = container_of(gw, struct nat, gw);
	uint64_t start = latency_now_us(), now = log_now_ms();
	size_t written;
	int ret;

	if (count == 0) {
		done(ctx, 0);
		return;
	}
	n->commits++;
	ret = filter_full(n, &c, &count, now);
	if (ret == -ENFILE) {
		n->set_full++; /* refused without the kernel */
	} else if (!ret) {
		ret = apply(n, c, count, true, &written);
		/* a set found full: once more, without what can go */
		if ((ret == -ENFILE || ret == -ENOSPC) &&
		    note_full(n, ret, count, now)) {
			ret = filter_full(n, &c, &count, now);
			if (ret == -ENFILE)
				n->set_full++;
			else if (!ret)
				ret = apply(n, c, count, true, &written);
		}
	}
	if (ret) {
		n->failures++;
		if (ret == -ENOENT && !n->need_repair) {
			/* the table or a set is gone */
			n->need_repair = true;
			snprintf(n->why, sizeof(n->why), "a commit found a set "
				 "or the table gone");
		}
	} else {
		n->elements += written;
		remember(n, c, count, now);
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
	out->repairs = n->repairs;
	out->repair_failures = n->repair_failures;
	out->repair_replayed = n->replayed;
	out->repair_last_us = n->last_repair_us;
	out->set_full = n->set_full;
	out->set_full_skipped = n->full.skipped;
	out->table_checks = n->checks;
	out->repair_lost = (n->log ? change_log_lost(n->log) : 0) +
			   (n->qlog ? change_log_lost(n->qlog) : 0) +
			   (n->llog ? change_log_lost(n->llog) : 0);
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

/* ---- repair ----------------------------------------------------------------------------- */

struct live {
	struct change *v;
	size_t n, cap;
	int err;
};

static void collect_live(void *ctx, const struct change *c)
{
	struct live *l = ctx;

	if (l->err)
		return;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 1024;
		struct change *grown = realloc(l->v, cap * sizeof(*grown));

		if (!grown) {
			l->err = -ENOMEM;
			return;
		}
		l->v = grown;
		l->cap = cap;
	}
	l->v[l->n++] = *c;
}

/* The changes in an order where those writing the same element are next to
 * each other (their time left aside). */
static int change_cmp(const void *a, const void *b)
{
	const struct change *x = a, *y = b;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	if (x->service != y->service)
		return x->service < y->service ? -1 : 1;
	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	if (x->src_len != y->src_len)
		return x->src_len < y->src_len ? -1 : 1;
	if (memcmp(x->addr, y->addr, 16))
		return memcmp(x->addr, y->addr, 16);
	return memcmp(x->src, y->src, 16);
}

/* One change per element, with the most time left: an address re-opened by
 * many answers is written once. Returns the new count. */
static size_t unique_changes(struct change *c, size_t count)
{
	size_t out = 0;

	if (count < 2)
		return count;
	qsort(c, count, sizeof(*c), change_cmp);
	for (size_t i = 1; i < count; i++) {
		if (change_cmp(&c[out], &c[i]) == 0) {
			if (c[i].ms > c[out].ms)
				c[out].ms = c[i].ms;
		} else {
			c[++out] = c[i];
		}
	}
	return out + 1;
}

/*
 * Apply again every change still live (what answers and DNS nodes asked,
 * the windows adopted at the start): after a repair the sets that were
 * deleted are empty. Those that survived get the same elements with the
 * time they have left. Returns the number applied, or -errno.
 */
static long replay(struct nat *n, uint64_t now_ms)
{
	struct live l = { 0 };
	long done = 0;

	change_log_live(n->qlog, now_ms, collect_live, &l);
	change_log_live(n->llog, now_ms, collect_live, &l);
	change_log_live(n->log, now_ms, collect_live, &l);
	l.n = l.err ? 0 : unique_changes(l.v, l.n);
	/* a chunk refused (a set full) does not keep the others out */
	for (size_t i = 0; i < l.n; i += REPLAY_CHUNK) {
		size_t k = l.n - i < REPLAY_CHUNK ? l.n - i : REPLAY_CHUNK, written;
		int ret = apply(n, l.v + i, k, false, &written);

		if (ret == -ENFILE || ret == -ENOSPC)
			note_full(n, ret, k, now_ms);
		if (ret < 0 && !l.err)
			l.err = ret;
		else if (ret == 0)
			done += (long)k;
	}
	free(l.v);
	return l.err ? l.err : done;
}

static void repair(struct nat *n, uint64_t now_ms)
{
	uint64_t start = latency_now_us();
	bool say = log_ratelimit_ok(&n->repair_rl, now_ms);
	uint64_t installed_us;
	long replayed;
	int ret;

	n->last_try_ms = now_ms;
	n->last_failed = true;
	ret = install(n, true);
	if (ret < 0) {
		n->repair_failures++;
		return; /* logged; tried again in RETRY_MS */
	}
	installed_us = latency_now_us() - start;
	n->last_failed = false;
	n->need_repair = false;
	n->gen_known = false; /* our own transactions moved it: check again */
	if (nat_verify_record(n->verify, n->nft, n->cfg->table) < 0)
		log_warn("nftables: cannot list the rules of table inet %s: only "
			 "their number is checked", n->cfg->table);
	replayed = replay(n, log_now_ms());
	n->repairs++;
	n->last_repair_us = latency_now_us() - start;
	if (replayed < 0) {
		n->repair_failures++;
		log_err("nftables: table inet %s installed again, but the changes "
			"still live could not be applied again: %s", n->cfg->table,
			strerror((int)-replayed));
		return;
	}
	n->replayed += (uint64_t)replayed;
	if (say)
		log_warn("nftables: table inet %s was damaged from outside (%s): "
			 "installed again (sets that survived kept) in %llu ms and "
			 "%ld changes still live applied again, in %llu ms in all "
			 "(repair %llu%s)", n->cfg->table, n->why,
			 (unsigned long long)(installed_us / 1000), replayed,
			 (unsigned long long)(n->last_repair_us / 1000),
			 (unsigned long long)n->repairs,
			 n->repair_rl.suppressed ? "; some repairs not logged" : "");
}

/*
 * Whether the table is still whole. The ruleset generation moves by one
 * with every transaction of anyone: when it moved by exactly as many as
 * this socket's own (applied, none of unknown fate), nobody else wrote, and
 * our own commits leave the table whole, so they cause no comparison and no
 * repair. Otherwise, and at least every FULL_CHECK_MS, the table is
 * compared with the configuration's (a few dumps).
 */
static void check_table(struct nat *n, uint64_t now_ms)
{
	if (!n->need_repair) {
		uint64_t applied, unsure;
		uint32_t gen;
		int ret;

		if (nft_get_gen(n->nft, &gen) < 0)
			return;
		nft_txn_counts(n->nft, &applied, &unsure);
		if (n->gen_known && unsure == n->gen_unsure &&
		    (uint32_t)(gen - n->gen) == (uint32_t)(applied - n->gen_applied) &&
		    now_ms - n->last_full_ms < FULL_CHECK_MS) {
			n->gen = gen;
			n->gen_applied = applied;
			return;
		}
		n->checks++;
		n->last_full_ms = now_ms;
		ret = nat_verify_check(n->verify, n->nft, n->cfg->table, n->why,
				       sizeof(n->why));
		if (ret < 0)
			return; /* a dump failed: tried again at the next check */
		if (ret == 1) {
			n->gen = gen;
			n->gen_applied = applied;
			n->gen_unsure = unsure;
			n->gen_known = true;
			return;
		}
		n->need_repair = true;
	}
	if (n->last_failed && now_ms - n->last_try_ms < RETRY_MS)
		return;
	repair(n, now_ms);
}

static void on_check(struct loop_handler *h, uint32_t events)
{
	struct nat *n = container_of(h, struct nat, check);
	uint64_t ticks;

	(void)events;
	if (read(h->fd, &ticks, sizeof(ticks)) < 0)
		return;
	check_table(n, log_now_ms());
}

/* After the first install: what to verify, the logs, the check timer. */
static int repair_start(struct nat *n)
{
	struct itimerspec its = {
		.it_interval = { .tv_nsec = CHECK_PERIOD_MS * 1000000L },
		.it_value = { .tv_nsec = CHECK_PERIOD_MS * 1000000L },
	};
	int ret = nat_verify_new(n->table, &n->verify);

	if (ret < 0)
		return ret;
	if (nat_verify_record(n->verify, n->nft, n->cfg->table) < 0)
		log_warn("nftables: cannot list the rules of table inet %s: only "
			 "their number is checked", n->cfg->table);
	n->log = change_log_new(REPLAY_LOG);
	n->qlog = change_log_new(QUARANTINE_LOG);
	n->llog = change_log_new(LEARNED_LOG);
	if (!n->log || !n->qlog || !n->llog)
		return -ENOMEM;
	n->repair_rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(1, 5);
	n->full_rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(1, 1);
	n->check.fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (n->check.fd < 0)
		return -errno;
	n->check.fn = on_check;
	if (timerfd_settime(n->check.fd, 0, &its, NULL) < 0 ||
	    (ret = loop_add(n->loop, &n->check, EPOLLIN)) < 0) {
		ret = ret < 0 ? ret : -errno;
		close(n->check.fd);
		n->check.fd = -1;
		return ret;
	}
	return 0;
}


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
	n->check.fd = -1;
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
	ret = install(n, false);
	if (ret < 0)
		goto fail;
	ret = repair_start(n);
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
	if (n->check.fd >= 0) {
		loop_del(n->loop, &n->check);
		close(n->check.fd);
	}
	nat_verify_free(n->verify);
	change_log_free(n->log);
	change_log_free(n->qlog);
	change_log_free(n->llog);
	worker_stop(n->worker);
	nft_close(n->nft);
	gw_table_free(n->table);
	free(n->elems);
	free(n->filtered);
	free(n);
}

struct gateway *nat_gateway(struct nat *n)
{
	return &n->gw;
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
