/* SPDX-License-Identifier: MIT */
/*
 * The controller (role controller): the control plane of the distributed
 * mode, never on an answer's path. DNS nodes and gateways connect to it
 * (peer.c) and JOIN with their services digest: a node whose digest is
 * not the controller's is refused (its link closed, counted and logged)
 * before anything of it is used. Membership: each DNS node gets its block
 * of every pool and its share of max_open from the allocator (slices.c),
 * in ASSIGN frames it acknowledges; a node whose link is lost keeps them
 * (it may still answer), one that leaves gives them back once its windows
 * have expired; a restarted controller hands out nothing until every DNS
 * node has come back with what it holds. Gateways report the bindings their
 * kernels learned (LEARNED); the controller relays each to every other
 * joined gateway as CHANGES and times the relay until their ACK. Every
 * node REPORTs its counters each second: `choreoctl status` here shows the
 * whole deployment. controller_push sends changes to every gateway (the
 * hook for quarantine).
 *
 * When the controller is down, nothing waits for it: the nodes answer and
 * route; a binding learned meanwhile is not relayed. When it returns the
 * nodes reconnect and JOIN again, and relaying goes on.
 */
#ifndef CHOREO_CONTROLLER_H
#define CHOREO_CONTROLLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "change.h"
#include "config.h"
#include "frame.h"
#include "latency.h"
#include "slices.h"

#define CONTROLLER_MAX_INFLIGHT 1024 /* relays per gateway awaiting an ACK */
#define CONTROLLER_SHOW_SERVICES 8   /* services whose slices status shows */
#define CONTROLLER_MAX_EPOCH (1ull << 48) /* a claim above: refused */
#define CONTROLLER_LEARNED_LOG (1u << 18) /* bindings kept for a rejoining gateway */

struct loop;
struct peers;
struct controller;

/* Listen on peer_listen. 0 and *out, or -errno (logged). */
int controller_new(const struct config *cfg, struct loop *loop,
		   struct controller **out);
void controller_free(struct controller *c);
void controller_tick(struct controller *c, uint64_t now_ms);
struct peers *controller_peers(struct controller *c);

/*
 * Send changes to every joined gateway (as CHANGES; their ACKs are
 * counted). Returns the number of gateways they were queued to.
 */
size_t controller_push(struct controller *c, const struct change *changes,
		       size_t n);

/*
 * Quarantine the sources of src (an address or prefix) on every joined
 * gateway for seconds (the hook for the operator's quarantine: a
 * quarantined source reaches only the honeypot, also after asking DNS).
 * Returns the number of gateways it was sent to, or -EINVAL.
 */
struct addr_prefix;
int controller_quarantine(struct controller *c, const struct addr_prefix *src,
			  uint32_t seconds);

/*
 * The operator says DNS node name has stopped for good (choreoctl forget):
 * its slices and share drain and then go to the others; its link, if up,
 * is closed. 0, or -ENOENT when name is not a DNS node here.
 */
int controller_forget(struct controller *c, const char *name);

struct controller_node {
	const char *name;
	enum config_role role;
	bool joined;
	bool stale;               /* its last JOIN had another digest */
	uint64_t joins, stale_refusals;
	char report[FRAME_REPORT_MAX + 1]; /* its last REPORT, "" before one */
	uint64_t report_age_ms;
	uint64_t learned_in;      /* a gateway: bindings it reported */
	uint64_t relayed_out;     /* a gateway: bindings relayed to it */
	uint64_t relay_failed;    /* ... that it acknowledged with an error */
	size_t inflight;          /* relays awaiting its ACK */
	/* a DNS node: its slices (membership, docs/protocol.md ASSIGN) */
	enum slices_node_state slices_state;
	uint64_t left;            /* LEAVEs */
	uint64_t epoch;           /* of its assignment now */
	uint64_t epoch_sent, epoch_acked;
	int32_t block[CONTROLLER_SHOW_SERVICES];
	uint32_t share[CONTROLLER_SHOW_SERVICES];
};

struct controller_stats {
	size_t n_nodes;
	struct controller_node node[CONFIG_MAX_PEERS]; /* by cfg->peers index */
	uint64_t learned;         /* bindings reported by gateways */
	uint64_t relays;          /* ... sent on (one per gateway) */
	uint64_t relay_unsent;    /* ... not sent: a gateway not reading */
	uint64_t no_target;       /* reported when no other gateway was joined */
	uint64_t learned_refused; /* LEARNED frames refused: a binding outside
				     the pools or too long (link closed) */
	uint64_t replayed;        /* bindings sent to gateways that (re)joined */
	uint64_t replay_lost;     /* live ones the log had no room for */
	uint64_t pushed;          /* changes pushed by controller_push */
	uint64_t assigns;         /* ASSIGN frames sent */
	size_t n_services;        /* shown below: at most CONTROLLER_SHOW_SERVICES */
	uint8_t block_bits[CONTROLLER_SHOW_SERVICES];
	struct slices_stats service[CONTROLLER_SHOW_SERVICES];
	struct latency_summary relay_lag; /* LEARNED in -> the gateway's ACK */
};

void controller_get_stats(const struct controller *c, uint64_t now_ms,
			  struct controller_stats *out);

#endif
