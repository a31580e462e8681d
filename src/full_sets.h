/* SPDX-License-Identifier: MIT */
/*
 * What a gateway does while a set that answers write to is full.
 *
 * Every set has a size (gw_policy.h), and the kernel refuses a whole
 * transaction that adds to a full one (ENFILE). A spoofed flood of rotated
 * queries from many sources fills a pool's asked set (one asker entry per
 * answer, for window + grace); if every later commit went to the kernel
 * and failed, each would cost a failed transaction (milliseconds: measured
 * 12.5 ms under the flood bench) and SERVFAIL for its whole batch, the
 * honest askers' answers included.
 *
 * So a set found full is taken as full for FULL_SETS_BACKOFF_MS, and
 * meanwhile commits are filtered here before they reach the kernel:
 *
 * - An asker's entry (CHANGE_BIND) into a full asked set is left out when
 *   the change after it is the unscoped window (CHANGE_OPEN) of the same
 *   service, family and address, lasting at least as long, and the service
 *   has no window_claims. That window already lets every source in, the
 *   asker included, for as long as the entry would have (the rotor makes
 *   both for window + grace): leaving the entry out changes who reaches the
 *   server in no case. The answer goes out.
 * - Any other change into a full set (an asker's entry beside a scoped
 *   window or under window_claims, where the entry is what lets the asker
 *   in; a scoped window) fails the commit at once, without the kernel:
 *   its answers are SERVFAIL, never an address that would not route.
 *
 * After the back-off the kernel is tried again, so a set that has room
 * again is used again within FULL_SETS_BACKOFF_MS. Pure: the clock is
 * passed in.
 */
#ifndef CHOREO_FULL_SETS_H
#define CHOREO_FULL_SETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "change.h"
#include "config.h"

#define FULL_SETS_BACKOFF_MS 1000

struct full_sets {
	/* per pool (service * 2 + is IPv6): until when its asked and its
	 * scoped set count as full */
	uint64_t asked_until[CONFIG_MAX_POOLS];
	uint64_t scoped_until[CONFIG_MAX_POOLS];
	uint64_t latest;         /* the latest of them: nothing is full after */
	uint64_t skipped;        /* asker entries left out */
	uint64_t refused;        /* commits failed without the kernel */
};

/* The set of this change's kind is full: the asked set (is_scoped false)
 * or the scoped set of service/family, from now_ms for the back-off.
 * Out-of-range arguments are ignored. */
void full_sets_mark(struct full_sets *f, size_t service, int family,
		    bool is_scoped, uint64_t now_ms);

/* Whether any set counts as full at now_ms. */
bool full_sets_any(const struct full_sets *f, uint64_t now_ms);

/*
 * Copy into out (room for n) the changes of in[0..n) to write at now_ms:
 * asker entries left out as above. Returns the number copied, or -ENFILE
 * when a change needs a set that counts as full (nothing to write then).
 * Counts skipped and refused.
 */
ssize_t full_sets_filter(struct full_sets *f, const struct config *cfg,
			 const struct change *in, size_t n, struct change *out,
			 uint64_t now_ms);

#endif
