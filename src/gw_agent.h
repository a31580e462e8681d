/* SPDX-License-Identifier: MIT */
/*
 * A gateway's side of the distributed mode: it accepts its DNS nodes
 * (peer.c) and applies each CHANGES frame to the local table (nat.c, the
 * same struct gateway the standalone mode uses), all of a frame or none,
 * then answers ACK, in the order the frames came. It checks what
 * docs/protocol.md says a gateway checks, in that order: the size, the
 * configuration digest (else ACK -ESTALE, nothing applied), then every
 * change, the address inside its service's pool and a lifetime of at most
 * its window + grace included (else the link is closed, nothing applied).
 */
#ifndef CHOREO_GW_AGENT_H
#define CHOREO_GW_AGENT_H

#include <stdint.h>

struct config;
struct gateway;
struct loop;
struct peers;
struct gw_agent;

/* Listen on peer_listen; apply through local (whose commit must complete
 * before it returns, as nat.c's does). 0 and *out, or -errno (logged). */
int gw_agent_new(const struct config *cfg, struct loop *loop,
		 struct gateway *local, struct gw_agent **out);
void gw_agent_free(struct gw_agent *a);

void gw_agent_tick(struct gw_agent *a, uint64_t now_ms);
struct peers *gw_agent_peers(struct gw_agent *a);

struct gw_agent_stats {
	uint64_t frames;         /* CHANGES frames received and checked */
	uint64_t applied;        /* of those, applied (ACK 0) */
	uint64_t changes;        /* changes applied */
	uint64_t stale;          /* answered ESTALE: another configuration */
	uint64_t failed;         /* the local commit failed (ACK with its error) */
	uint64_t outside;        /* links closed: an address outside its pool */
	uint64_t over_window;    /* links closed: a lifetime over window + grace */
};

void gw_agent_get_stats(const struct gw_agent *a, struct gw_agent_stats *out);

#endif
