/* SPDX-License-Identifier: MIT */
/*
 * Inside the local gateway (nat.c, nat_adopt.c): struct nat. Not for other
 * modules, which see it as opaque.
 */
#ifndef CHOREO_NAT_IMPL_H
#define CHOREO_NAT_IMPL_H

#include "full_sets.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "gateway.h"
#include "gw_policy.h"
#include "latency.h"
#include "log.h"
#include "loop.h"

#define MAX_WAITERS      8    /* refresh callbacks waiting for the worker */

struct change_log;
struct nat_verify;
struct nft;
struct worker;

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
	bool readd;                /* refresh expiries by add, delete, add */
	uint64_t last_conntrack_ms;
	/* repair: the table damaged from outside is installed again, and the
	 * changes still live are applied again: each log holds changes of
	 * about one lifetime, so that its oldest entries are the first to
	 * expire (answers' windows and entries; quarantines; bindings relayed
	 * by the controller) */
	struct nat_verify *verify;
	struct change_log *log, *qlog, *llog;
	struct loop_handler check;  /* a timerfd, CHECK_PERIOD_MS */
	bool need_repair, gen_known, last_failed;
	uint32_t gen;               /* the generation last found whole */
	uint64_t gen_applied, gen_unsure; /* our transactions at that time */
	uint64_t last_full_ms;      /* the last comparison, moved or not */
	uint64_t checks;            /* comparisons made */
	char why[160];              /* what the damage was */
	uint64_t last_try_ms;
	uint64_t repairs, replayed, repair_failures, last_repair_us;
	struct log_ratelimit repair_rl;
	uint64_t set_full;          /* commits refused: a set was full */
	struct full_sets full;      /* the sets found full, for a while */
	struct change *filtered;    /* a commit's changes, full_sets_filter'ed */
	size_t filtered_cap;
	struct log_ratelimit full_rl;
	uint64_t misses[CONFIG_MAX_POOLS];
};

/* gateway_ops.windows: the open and client-subnet windows of the table. */
int nat_windows(struct gateway *gw, gateway_window_fn *fn, void *ctx);

#endif
