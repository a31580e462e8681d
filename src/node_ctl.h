/* SPDX-License-Identifier: MIT */
/*
 * A DNS node's or a gateway's link to its controller (docs/protocol.md,
 * "The controller"): right after the handshake it sends JOIN with its
 * services digest and the assignment it has applied; then a REPORT of its
 * counters every second, and, on a gateway, the bindings its kernel
 * learned (LEARNED). CHANGES from the controller (relayed bindings) go to
 * the gateway's apply function; ASSIGN (a DNS node's slices and shares)
 * to the DNS node's, then ASSIGNED goes back.
 *
 * Nothing here is needed to answer or to route: with the controller down,
 * learned bindings are counted as not reported and dropped, and the node
 * goes on. The link is made and kept by peer.c like any other.
 */
#ifndef CHOREO_NODE_CTL_H
#define CHOREO_NODE_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "change.h"
#include "frame.h"
#include "wire.h"

struct config;
struct peers;
struct peer_link;
struct node_ctl;

/* Write this node's REPORT text (printable ASCII, at most
 * FRAME_REPORT_MAX bytes) into buf. */
typedef void node_ctl_report_fn(void *ctx, char *buf, size_t len);

/* A CHANGES frame from the controller (a gateway applies it and ACKs).
 * Returns 0 or the peer_reason to close the link. NULL: refused. */
typedef int node_ctl_changes_fn(void *ctx, struct peer_link *l, struct wire *w);

/* An ASSIGN from the controller (a DNS node's slices and shares): apply
 * it (the node then acknowledges it, and claims it at its next JOIN), or
 * return the peer_reason to close the link. NULL: refused. */
typedef int node_ctl_assign_fn(void *ctx, const struct frame_assign *a);

/* Nothing to do without a [peer] of role controller: *out is NULL then. */
int node_ctl_new(const struct config *cfg, struct peers *peers,
		 node_ctl_report_fn *report, node_ctl_changes_fn *changes,
		 node_ctl_assign_fn *assign, void *ctx, struct node_ctl **out);

/* A DNS node that stops says so (LEAVE), so that the controller drains its
 * slices at once instead of holding them for its return. */
void node_ctl_leave(struct node_ctl *nc);
void node_ctl_free(struct node_ctl *nc);

/* The REPORT, once a second. */
void node_ctl_tick(struct node_ctl *nc, uint64_t now_ms);

/* fn(ctx) is called each time the link to the controller is up and this
 * node's JOIN is sent: what it sends then follows the JOIN. */
void node_ctl_on_join(struct node_ctl *nc, void (*fn)(void *ctx), void *ctx);

/* Queue a learned binding (kind CHANGE_LEARNED) for the controller;
 * node_ctl_flush sends what is queued in LEARNED frames. Without a link
 * the bindings are dropped (and counted). */
void node_ctl_learned(struct node_ctl *nc, const struct change *c);
void node_ctl_flush(struct node_ctl *nc);

struct node_ctl_stats {
	bool up;                 /* joined: the link is up and JOIN sent */
	uint64_t joins;          /* links that came up */
	uint64_t reports;        /* REPORT frames sent */
	uint64_t learned_sent;   /* learned bindings sent */
	uint64_t learned_frames; /* LEARNED frames sent */
	uint64_t learned_dropped; /* ... dropped: no link, or no room */
	uint64_t changes_in;     /* CHANGES frames from the controller */
	uint64_t assigns;        /* ASSIGN frames applied */
	uint64_t epoch;          /* of the last one */
};

void node_ctl_get_stats(const struct node_ctl *nc, struct node_ctl_stats *out);

#endif
