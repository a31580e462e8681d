/* SPDX-License-Identifier: MIT */
/*
 * The one background thread of the local gateway, with its own netlink
 * socket: everything that dumps the kernel's table, which can take seconds
 * for large sets (300 000 bindings: about 5 s), so that the event loop
 * never waits for a dump. It counts (named counters every few seconds, set
 * elements on request) into a snapshot the loop copies under a short lock,
 * and streams binding listings to control clients.
 */
#ifndef CHOREO_WORKER_H
#define CHOREO_WORKER_H

#include "gateway.h"

struct config;
struct worker;

/* Start the thread. cfg must outlive it. 0 or -errno. */
int worker_start(const struct config *cfg, struct worker **out);
/* Stop it, waiting for a listing in progress (bounded by its send
 * timeout). NULL is fine. */
void worker_stop(struct worker *w);

/*
 * An eventfd that becomes readable each time requested counts are done;
 * the loop watches it and calls worker_take_done() to reset it.
 */
int worker_done_fd(const struct worker *w);
void worker_take_done(struct worker *w);

/* Ask for set counts (and counters) now; worker_done_fd() tells when. */
void worker_request_counts(struct worker *w);

/* Copy the latest counts (and their ages) into out->pool, counters_*,
 * sets_*; the other fields are not touched. */
void worker_snapshot(struct worker *w, struct gateway_snapshot *out);

/* Stream the bindings to fd and close it. -EBUSY while one runs. */
int worker_list_bindings(struct worker *w, int fd);

#endif
