/* SPDX-License-Identifier: MIT */
/*
 * The controller's allocator of slices (DESIGN.md, "Distributed mode"): which
 * block of each service's pool, and which share of its max_open, each DNS
 * node may use. Pure logic: no I/O, no clock reads (the time is a parameter,
 * monotonic milliseconds), no allocation after slices_new.
 *
 * What it guarantees, at every instant, per service, whatever messages are
 * lost:
 *  - no two nodes use the same block, counting a block as used until
 *    drain_ms after a node stopped using it (its windows live that long);
 *  - the shares nodes may use add up to at most max_open, counting each
 *    share the node may still have windows of: a decrease counts at the old
 *    value until the node acknowledges it, and drain_ms more after that.
 *
 * What it aims at: each node up gets the lowest free block of each service
 * and keeps it as long as it holds it; max_open is split fairly among the
 * nodes up or held that hold a block (the remainder one each to the lowest
 * indexes; a share without a block opens nothing). A node up above its part
 * is lowered at once; below, raised as far as the free budget goes, the rest
 * as drains expire. A held node (link lost) keeps all it has.
 *
 * A node's assignment changes only through this module; each change takes a
 * new epoch from one counter. The caller sends slices_get's assignment to
 * each node for which slices_dirty holds, marks it with slices_sent, and
 * passes the node's acknowledgement to slices_node_ack. Any of those
 * messages may be lost: until the node acknowledges, everything it was sent
 * since its last acknowledgement is counted as in use.
 *
 * The links are assumed to deliver in order and to lose everything in flight
 * when they go down (TCP, one connection per link): a claim received at
 * slices_node_up is what the node uses now, and nothing sent before can
 * still reach it.
 */
#ifndef CHOREO_SLICES_H
#define CHOREO_SLICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define SLICES_MAX_SERVICES   CONFIG_MAX_SERVICES
#define SLICES_MAX_NODES      64
#define SLICES_MAX_BLOCK_BITS 16
#define SLICES_NO_BLOCK       (-1)

struct slices_service {
	uint8_t block_bits;  /* the pool is cut into 2^block_bits blocks */
	uint32_t max_open;   /* >= 1: the most addresses open at once, all nodes */
	uint64_t drain_ms;   /* how long a node's windows outlive its use of a
				block or share */
};

/*
 * What a node may use: sent to it, and what it claims when it comes up. The
 * same block index holds for the service's IPv4 and IPv6 pool. Share 0 or no
 * block: the node opens nothing for that service. Epoch 0: no assignment.
 */
struct slices_assignment {
	uint64_t epoch;
	size_t n_services;
	int32_t block[SLICES_MAX_SERVICES];  /* or SLICES_NO_BLOCK */
	uint32_t share[SLICES_MAX_SERVICES];
};

enum slices_node_state {
	SLICES_NEVER = 0,  /* not heard from (while rebuilding: may hold anything) */
	SLICES_UP,         /* link up, config digest matched */
	SLICES_HELD,       /* link lost: may still answer, keeps all it has */
	SLICES_GONE,       /* left, or forgotten by the operator: drained */
};

/*
 * The smallest k with 2^k >= n_nodes, but at most host_bits (the pool's host
 * bits; the smaller of the two pools' when a service has both) and at most
 * SLICES_MAX_BLOCK_BITS. With fewer blocks than nodes, some nodes get none.
 */
uint8_t slices_block_bits(unsigned n_nodes, unsigned host_bits);

/*
 * n_services services (svc[i]: block_bits <= SLICES_MAX_BLOCK_BITS,
 * max_open >= 1) and n_nodes nodes (1..SLICES_MAX_NODES). rebuilding: the
 * controller restarts and nodes may hold slices; nothing is handed out or
 * raised until every node has come up with its claim or been forgotten, nor
 * within drain_ms of any node's first report or forget (what it used before;
 * the previous controller's drains end sooner). Returns NULL with errno
 * EINVAL or ENOMEM.
 */
struct slices *slices_new(size_t n_services, const struct slices_service *svc,
			  size_t n_nodes, bool rebuilding);
void slices_free(struct slices *s);

/*
 * The node's link came up: a new connection (if it was up, the old one is
 * gone, with all in flight on it). claim: the assignment it has applied now
 * (NULL or epoch 0: none). A node the controller holds nothing for (new,
 * gone, or any node while rebuilding) keeps what of its claim overlaps
 * nothing: a block no one else holds or drains, a share within the free
 * budget. Otherwise the controller's record wins. Whatever the node claimed
 * and does not keep stays counted until it acknowledges its new assignment,
 * and drain_ms after. Shares claimed above max_open count as max_open (the
 * node's own rotor caps there). Returns 0, or -EINVAL.
 */
int slices_node_up(struct slices *s, size_t node,
		   const struct slices_assignment *claim, uint64_t now_ms);

/* The link was lost: the node may still answer; it keeps all it holds. */
int slices_node_down(struct slices *s, size_t node, uint64_t now_ms);

/*
 * The node said it stops (leave), or the operator says it has stopped
 * (forget): all it held drains until now_ms + drain_ms; its link, if up, is
 * to be closed. Forgetting a node that stops only later breaks the
 * guarantees above. Either counts as its report while rebuilding.
 */
int slices_node_leave(struct slices *s, size_t node, uint64_t now_ms);
int slices_node_forget(struct slices *s, size_t node, uint64_t now_ms);

/*
 * The node applied the assignment of this epoch. An acknowledgement of the
 * current one releases what earlier ones held (drained from now_ms); of an
 * earlier one, nothing. Returns 0, -EINVAL for an epoch never sent to it or
 * a node not up, -ESTALE for an older one than already acknowledged.
 */
int slices_node_ack(struct slices *s, size_t node, uint64_t epoch,
		    uint64_t now_ms);

/*
 * Expire drains and move nodes toward their targets. Every call above does
 * this too; tick when time passes. Returns whether any assignment changed.
 */
bool slices_tick(struct slices *s, uint64_t now_ms);

/* The node's current assignment (what to send it). 0 or -EINVAL. */
int slices_get(const struct slices *s, size_t node, struct slices_assignment *out);

/* Whether the node is up and its assignment was not marked sent. */
bool slices_dirty(const struct slices *s, size_t node);

/* The assignment of epoch was sent to the node. 0 or -EINVAL. */
int slices_sent(struct slices *s, size_t node, uint64_t epoch);

enum slices_node_state slices_state(const struct slices *s, size_t node);

/* One service at now_ms, for status reports. */
struct slices_stats {
	uint32_t max_open;
	uint64_t reserved;     /* shares nodes hold or may still use */
	uint64_t draining;     /* shares given up, windows not expired */
	uint32_t free;         /* what may be raised now (0 while rebuilding) */
	uint32_t blocks;       /* 2^block_bits */
	uint32_t blocks_held;
	uint32_t blocks_draining;
	uint32_t blocks_free;  /* may be handed out now */
	bool rebuilding;       /* waiting for nodes' claims */
	bool holding;          /* or for the previous controller's drains */
};

int slices_stats(const struct slices *s, size_t service, uint64_t now_ms,
		 struct slices_stats *st);

#endif
