/* SPDX-License-Identifier: MIT */
/*
 * The rotor: which pool address an answer hands out, and what that answer
 * opens on the gateway. Pure logic: the clock is a parameter and the random
 * source can be injected, so it is tested without a kernel or a network.
 *
 * Each answer yields a struct rotor_answer: the address to put in the A/AAAA
 * record and up to two changes for the gateway (change.h: a binding for the
 * asker, and an open window for everyone or for the client subnet).
 */
#ifndef CHOREO_ROTOR_H
#define CHOREO_ROTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "change.h"

struct config;

/*
 * An open address stays counted against max_open this long after its window
 * ends, so that the kernel (whose element timeout starts a little after the
 * rotor's decision) never holds more than max_open open addresses. On a DNS
 * node of the distributed mode, commit_timeout if that is longer: a gateway
 * may apply a commit (and start its windows) until its acknowledgement is
 * due.
 */
#define ROTOR_EXPIRY_SLACK_MS 250

/* Who asked. */
struct rotor_query {
	int family;        /* family of the asker's address */
	uint8_t src[16];
	bool has_ecs;      /* an EDNS Client Subnet option with source prefix > 0 */
	int ecs_family;
	uint8_t ecs_addr[16];
	uint8_t ecs_len;   /* source prefix length */
};

#define ROTOR_MAX_CHANGES 2

struct rotor_answer {
	int family;        /* AF_INET (A) or AF_INET6 (AAAA) */
	uint8_t addr[16];  /* address to answer */
	uint32_t ttl;      /* TTL of the record: [dns] ttl */
	uint8_t ecs_scope; /* scope prefix length to echo in the ECS option */
	size_t n_changes;
	struct change changes[ROTOR_MAX_CHANGES];
};

/* Fill buf with len random bytes. */
typedef void (*rotor_random_fn)(void *ctx, void *buf, size_t len);

/*
 * Create a rotor for the services of cfg (cfg must outlive it). rnd == NULL
 * selects the kernel CSPRNG (getrandom). Returns NULL on allocation failure.
 */
struct rotor *rotor_new(const struct config *cfg, rotor_random_fn rnd,
			void *rnd_ctx);
void rotor_free(struct rotor *r);

/*
 * Decide the answer to an A (family AF_INET) or AAAA (AF_INET6) query for
 * service at time now_ms (a monotonic clock in milliseconds).
 * Returns 0 and fills *out, -ENODATA when the service has no pool of that
 * family, -EINVAL on a bad argument, -EAGAIN on a controller's DNS node
 * without a slice and share (rotor_assign), -EBUSY at its share with no
 * open address of its slice to hand out again.
 */
int rotor_answer(struct rotor *r, size_t service, int family,
		 const struct rotor_query *q, uint64_t now_ms,
		 struct rotor_answer *out);

/*
 * Count addr as open until expiry_ms: for a restart, so that the windows the
 * kernel still holds count against max_open. -EINVAL when addr is not one
 * this pool hands out (the pool was renumbered, or it is a listen address),
 * -ENOSPC when max_open entries are already counted (max_open was
 * lowered), -ENODATA without such a pool. A DNS node's share does not
 * limit it: windows past the share are counted (no new address is opened
 * until enough expire). A window refused here must be
 * removed from the kernel, or the exposure bound would not hold.
 */
int rotor_seed_open(struct rotor *r, size_t service, int family,
		    const uint8_t addr[static 16], uint64_t expiry_ms);

/*
 * Changes already sent may still be applied by a gateway up to hold_ms
 * after now_ms (a commit not acknowledged in time, or its link lost: the
 * gateway may be slow, or stopped, and apply them when it goes on), and
 * each opens a window from there. So every address counted open now stays
 * counted until now_ms + hold_ms + its window and grace (longer if it was
 * already): those changes can only name addresses counted now, and the
 * exposure bound then holds whenever they land. New answers re-use these
 * addresses meanwhile, as at max_open.
 */
void rotor_hold(struct rotor *r, uint64_t now_ms, uint64_t hold_ms);

/*
 * A DNS node with a controller: from now on, draw from slice (a prefix
 * inside the pool) and open at most share addresses of it at once; NULL or
 * share 0: none (answers fail with -EAGAIN, as before the first call).
 * Addresses counted open stay counted until they expire, and at the share
 * only those inside the slice are handed out again (-EBUSY when there is
 * none). -EINVAL: a slice outside the pool, or a share above max_open;
 * -ENODATA without such a pool.
 */
struct addr_prefix;
int rotor_assign(struct rotor *r, size_t service, int family,
		 const struct addr_prefix *slice, uint32_t share);

/* Whether addr is an address the pool of service/family hands out. */
bool rotor_pool_has(const struct rotor *r, size_t service, int family,
		    const uint8_t addr[static 16]);

/* Counters and state of one service and family, for status reports. */
struct rotor_stats {
	uint64_t answers;  /* answers given */
	uint64_t opened;   /* answers that opened an address not open before */
	uint64_t reused;   /* answers that re-used an open address because of max_open */
	size_t open_now;   /* addresses counted open at now_ms */
};

int rotor_get_stats(const struct rotor *r, size_t service, int family,
		    uint64_t now_ms, struct rotor_stats *st);

/*
 * Call fn for each address of service/family counted open at now_ms, with the
 * milliseconds left in its window (0 while only in the slack). Returns the
 * number of addresses visited.
 */
size_t rotor_foreach_open(const struct rotor *r, size_t service, int family,
			  uint64_t now_ms,
			  void (*fn)(void *ctx, const uint8_t addr[16],
				     uint64_t ms_left),
			  void *ctx);

#endif
