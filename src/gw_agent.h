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

#include "node_ctl.h"

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

/*
 * With a [peer] of role controller: connect to it (node_ctl.c), report
 * through report, apply the bindings it relays. 0 (also without a
 * controller), or -errno.
 */
int gw_agent_attach_controller(struct gw_agent *a, node_ctl_report_fn *report,
			       void *report_ctx);

/*
 * The kernel learned or refreshed the binding (src . addr) (an NFLOG
 * record of the learn rules): reported to the controller, at most once per
 * relay_coalesce_ms for one binding, with the lifetime relay_ms
 * (relay.h). gw_agent_learned_flush sends what a batch of records queued.
 */
void gw_agent_learned(struct gw_agent *a, int family, const uint8_t src[static 16],
		      const uint8_t addr[static 16], uint64_t now_ms);
void gw_agent_learned_flush(struct gw_agent *a);
struct node_ctl *gw_agent_controller(struct gw_agent *a);
struct peers *gw_agent_peers(struct gw_agent *a);

struct gw_agent_stats {
	uint64_t frames;         /* CHANGES frames received and checked */
	uint64_t applied;        /* of those, applied (ACK 0) */
	uint64_t changes;        /* changes applied */
	uint64_t stale;          /* answered ESTALE: another configuration */
	uint64_t failed;         /* the local commit failed (ACK with its error) */
	uint64_t outside;        /* links closed: an address outside its pool */
	uint64_t over_window;    /* links closed: a lifetime over window + grace */
	uint64_t wrong_kind;     /* links closed: a kind its sender may not send */
	uint64_t relayed_in;     /* bindings relayed by the controller, applied */
	uint64_t quarantined;    /* quarantines pushed by the controller */
	uint64_t learned;        /* bindings the kernel learned, reported */
	uint64_t learned_coalesced; /* ... not reported: reported lately */
	uint64_t learned_again;  /* ... sent again at a JOIN (still live) */
	uint64_t learned_foreign;   /* ... outside every pool (ignored) */
	uint64_t nflog_records, nflog_bad, nflog_lost; /* the NFLOG reader's */
};

void gw_agent_get_stats(const struct gw_agent *a, struct gw_agent_stats *out);

#endif
