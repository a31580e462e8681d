/* SPDX-License-Identifier: MIT */
/*
 * What a DNS node's answers have asked of the gateways lately: every
 * change committed, with the time it runs out. A gateway that comes back
 * (it was stalled past gateway_deadline, or its link or choreod was down)
 * is sent the changes still live before it counts as live again, so that
 * the windows and answers' entries of the time it missed are in its
 * table too. Pure; fixed size, allocated once: when it is full the oldest
 * entry goes, and one still live going is counted (the resync that
 * follows is then incomplete, and says so).
 */
#ifndef CHOREO_CHANGE_LOG_H
#define CHOREO_CHANGE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "change.h"

struct change_log;

/* cap entries (>= 1). NULL: out of memory. */
struct change_log *change_log_new(size_t cap);
void change_log_free(struct change_log *l);

/* c[0..n), committed at now_ms (each runs out at now_ms + its ms).
 * Returns the number of the first (entries are numbered from 0 on). */
uint64_t change_log_add(struct change_log *l, const struct change *c, size_t n,
			uint64_t now_ms);

/* The n entries from number first are not to be sent (their commit
 * failed: its answers were SERVFAIL); those already gone are skipped. */
void change_log_drop(struct change_log *l, uint64_t first, size_t n);

/*
 * Call fn for each change still live at now_ms, oldest first, with ms set
 * to the time it has left (>= 1). Returns the number visited.
 */
size_t change_log_live(const struct change_log *l, uint64_t now_ms,
		       void (*fn)(void *ctx, const struct change *c), void *ctx);

/* Live entries overwritten because the log was full, in total. */
uint64_t change_log_lost(const struct change_log *l);

#endif
