/* SPDX-License-Identifier: MIT */
/*
 * Bindings relayed between gateways (docs/protocol.md, LEARNED): the
 * arithmetic every node must agree on, and the gateway's coalescing of
 * refreshes. Pure: the clock is a parameter.
 *
 * A gateway's kernel learns a binding, or refreshes it, on the first
 * packet of each connection of a bound client (packet path, with a
 * timeout of `binding` seconds); the rule logs it to NFLOG, the gateway
 * reports it to the controller, and the controller writes it into the
 * other gateways' bound sets. Refreshes are many (one per connection), so
 * a gateway reports one binding at most once per relay_coalesce_ms; to
 * keep the copies alive at least as long as the original despite that,
 * a relayed binding lives relay_ms = binding + relay_coalesce_ms.
 *
 * Why writing the kernel-only bound set from userspace stays safe:
 *  - a relayed element names a (source . pool address) that some gateway's
 *    kernel bound after that source came in through a window or an answer
 *    to it: nobody new gets in, the client keeps the way it had;
 *  - it never shortens a live binding: every element of a bound set is
 *    written with a lifetime of at most relay_ms (the packet path writes
 *    binding, relays write relay_ms), so a relay written now expires no
 *    earlier than anything written before it;
 *  - the gateway takes it only from its controller's authenticated link,
 *    inside the pool, with a lifetime of at most relay_ms (gw_agent.c);
 *  - a relayed element raises no NFLOG record (userspace writes are not
 *    packets), so relays do not echo between gateways.
 */
#ifndef CHOREO_RELAY_H
#define CHOREO_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "change.h"

#define RELAY_COALESCE_MIN_MS 1000
#define RELAY_COALESCE_MAX_MS 60000
#define RELAY_CACHE_SLOTS     65536  /* bindings remembered for coalescing */

/* A tenth of the binding, within 1 .. 60 s. */
static inline uint32_t relay_coalesce_ms(uint32_t binding_s)
{
	uint64_t ms = (uint64_t)binding_s * 100;

	if (ms < RELAY_COALESCE_MIN_MS)
		return RELAY_COALESCE_MIN_MS;
	return ms > RELAY_COALESCE_MAX_MS ? RELAY_COALESCE_MAX_MS : (uint32_t)ms;
}

/* The lifetime of a relayed binding. */
static inline uint32_t relay_ms(uint32_t binding_s)
{
	return binding_s * 1000 + relay_coalesce_ms(binding_s);
}

/*
 * Which learned bindings to report now: a direct-mapped cache of the ones
 * reported lately (a collision only costs one report more). Fixed size,
 * allocated once.
 */
struct relay_cache;

struct relay_cache *relay_cache_new(void);
void relay_cache_free(struct relay_cache *rc);

/*
 * Whether the binding (service, family, src, addr) is to be reported at
 * now_ms: yes when it was not reported within coalesce_ms (it is then
 * remembered as reported now).
 */
bool relay_cache_due(struct relay_cache *rc, uint16_t service, int family,
		     const uint8_t src[static 16], const uint8_t addr[static 16],
		     uint64_t now_ms, uint32_t coalesce_ms);

#endif
