/* SPDX-License-Identifier: MIT */
/*
 * The gateway as a DNS node sees it in the distributed mode: a struct
 * gateway whose commit sends CHANGES (docs/protocol.md) to every gateway
 * that carries the services concerned, and completes when each of them has
 * acknowledged it. Any other result, a lost link, a gateway down, or no
 * acknowledgement within commit_timeout fails the commit: its answers
 * become SERVFAIL. Nothing is answered on a guess.
 *
 * A gateway is down when its link is, or when it has not acknowledged a
 * frame for gateway_deadline ms. With on_gateway_down = exclude the
 * commits then go to the others (at least one per service) and complete
 * without it; with servfail they fail at once. A gateway that comes back
 * is sent the changes still live (change_log.c) before it is live again.
 */
#ifndef CHOREO_GW_REMOTE_H
#define CHOREO_GW_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway.h"

#define GW_REMOTE_MAX_PENDING 256 /* commits awaiting acknowledgements */
#define GW_REMOTE_LOG (1u << 18)  /* changes remembered for a returning gateway */

struct config;
struct loop;
struct peers;
struct gw_remote;

/*
 * A window a gateway holds (a change of kind open or open_scoped, ms its
 * time left), offered when its link comes up: one this node opened before
 * a restart counts against its share until it expires. Return 0 when it
 * is counted, or a negative errno (another node's, or past the share).
 */
typedef int gw_remote_seed_fn(void *ctx, const struct change *c);

/* Connect to the gateways of cfg (role dns); seed may be NULL. A gateway
 * takes commits once its windows have come. 0 and *out, or -errno (logged). */
int gw_remote_new(const struct config *cfg, struct loop *loop,
		  gw_remote_seed_fn *seed, void *seed_ctx, struct gw_remote **out);
/* Pending commits are abandoned (their callbacks are not called). */
void gw_remote_free(struct gw_remote *r);

/*
 * Called when changes sent to a gateway have an unknown fate: no
 * acknowledgement within commit_timeout, or the link lost (or a send
 * failed) with them in flight. The gateway may still apply them, until a
 * frame is too old for it to accept (FRAME_FUDGE_MS after it was sent):
 * fn(ctx, now_ms, hold_ms) with hold_ms that long, for the rotor to keep
 * counting what they may open (rotor_hold).
 */
void gw_remote_on_unsure(struct gw_remote *r,
			 void (*fn)(void *ctx, uint64_t now_ms, uint64_t hold_ms),
			 void *ctx);

struct gateway *gw_remote_gateway(struct gw_remote *r);
struct peers *gw_remote_peers(struct gw_remote *r);

/* Why remote commits failed, beyond gateway_snapshot's totals. */
struct gw_remote_stats {
	uint64_t not_connected;  /* a gateway needed was not connected */
	uint64_t timeouts;       /* no acknowledgement within commit_timeout */
	uint64_t link_lost;      /* the link closed before the acknowledgement */
	uint64_t refused;        /* a gateway acknowledged with an error */
	uint64_t stale;          /* of those, ESTALE: another configuration */
	uint64_t busy;           /* GW_REMOTE_MAX_PENDING outstanding */
	uint64_t frames;         /* CHANGES frames sent */
	uint64_t windows_counted; /* gateways' windows counted at (re)connect */
	uint64_t windows_others;  /* ... not this node's (or past its share) */
	uint64_t downs;           /* gateways declared down: gateway_deadline */
	uint64_t resyncs;         /* gateways resynchronised and live again */
	uint64_t resync_changes;  /* changes sent in resyncs */
	uint64_t resync_lost;     /* live changes the log had no room for */
	uint64_t resync_refused;  /* resync frames a gateway refused */
	size_t live;              /* gateways live now */
};

void gw_remote_get_stats(const struct gw_remote *r, struct gw_remote_stats *out);

/* The link to the [peer] at index i of cfg->peers is up and takes commits. */
bool gw_remote_ready(const struct gw_remote *r, size_t peer_index);

#endif
