/* SPDX-License-Identifier: MIT */
/*
 * The gateway as the DNS service and the control socket see it: it applies
 * a batch of changes and says, through a callback, when they are in place;
 * it answers counts and listings. dnsserver holds a batch's answers until
 * its commit completes and never knows which implementation it has.
 *
 * Implementations: nat.c, the local nftables table (a commit completes
 * before gateway_commit returns); the distributed mode adds a remote one
 * that completes when every gateway has acknowledged.
 */
#ifndef CHOREO_GATEWAY_H
#define CHOREO_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "change.h"
#include "config.h"
#include "latency.h"

/* result: 0 when done, a negative errno when it failed (nothing applied). */
typedef void (*gateway_done_fn)(void *ctx, int result);

/* One window the gateway holds: a change of kind open or open_scoped whose
 * ms is the time it has left. */
typedef void gateway_window_fn(void *ctx, const struct change *c);

/* What the kernel counts for one pool. */
struct gateway_pool_counts {
	uint64_t server;      /* new connections sent to the server */
	uint64_t honeypot;    /* new connections sent to the honeypot */
	uint64_t learned;     /* bindings the kernel learned (tried to) */
	uint64_t via_window;  /* connections let in by asked/scoped/open */
	uint64_t claims;      /* of those, newcomers that took a window's claim */
	long bound, asked, open; /* set elements; -1 not counted yet */
};

struct gateway_snapshot {
	uint64_t commits, failures, elements;
	bool remote;                     /* the gateways are other nodes: the
					    counts below are theirs */
	bool readd;                      /* expiries refreshed by delete + re-add */
	struct latency_summary latency;  /* of commits, acknowledgement included */
	long conntrack_count, conntrack_max; /* -1: unknown */
	/* the local table repaired after damage from outside (nat.c) */
	uint64_t repairs, repair_failures, repair_replayed, repair_last_us;
	uint64_t repair_lost;            /* live changes the replay log lost */
	uint64_t set_full;               /* commits refused: a set was full */
	uint64_t set_full_skipped;       /* asker entries left out meanwhile
					    (full_sets.h) */
	uint64_t table_checks;           /* the table compared with the policy */
	bool counters_known, sets_known;
	uint64_t counters_age_ms, sets_age_ms;  /* how old the counts are */
	struct gateway_pool_counts pool[CONFIG_MAX_POOLS]; /* by config_pool.index */
};

struct gateway;

struct gateway_ops {
	/* Apply c[0..n) all or none; done(ctx, result) is called exactly once,
	 * maybe before commit returns. c may be reused once commit returns. */
	void (*commit)(struct gateway *gw, const struct change *c, size_t n,
		       gateway_done_fn done, void *ctx);
	/* Ask for fresh counts; done(ctx, 0) is called from the event loop once
	 * they are in the snapshot (or with an error). */
	void (*refresh)(struct gateway *gw, gateway_done_fn done, void *ctx);
	/* The latest counts and statistics; never waits for the kernel. */
	void (*snapshot)(struct gateway *gw, struct gateway_snapshot *out);
	/* Stream "service source address ms_left" lines to fd, then close it
	 * (the gateway owns fd from here). -EBUSY while a listing runs. */
	int (*list_bindings)(struct gateway *gw, int fd);
	/* Housekeeping, about once a second. */
	void (*tick)(struct gateway *gw, uint64_t now_ms);
	/* Every open and client-subnet window held now, one call each,
	 * before it returns (a small dump). 0 or -errno; NULL: none known. */
	int (*windows)(struct gateway *gw, gateway_window_fn *fn, void *ctx);
};

struct gateway {
	const struct gateway_ops *ops;
};

static inline void gateway_commit(struct gateway *gw, const struct change *c,
				  size_t n, gateway_done_fn done, void *ctx)
{
	gw->ops->commit(gw, c, n, done, ctx);
}

static inline void gateway_refresh(struct gateway *gw, gateway_done_fn done,
				   void *ctx)
{
	gw->ops->refresh(gw, done, ctx);
}

static inline void gateway_snapshot(struct gateway *gw,
				    struct gateway_snapshot *out)
{
	gw->ops->snapshot(gw, out);
}

static inline int gateway_list_bindings(struct gateway *gw, int fd)
{
	return gw->ops->list_bindings(gw, fd);
}

static inline void gateway_tick(struct gateway *gw, uint64_t now_ms)
{
	gw->ops->tick(gw, now_ms);
}

#endif
