/* SPDX-License-Identifier: MIT */
/*
 * The gateway's data plane: choreod's own nftables table (family inet),
 * driven over netlink (libmnl + libnftnl). No shell, no nft binary.
 *
 * Per service and address family the table holds four sets and one chain:
 *   <svc>_open4    pool addresses open to any source        (timeout)
 *   <svc>_scoped4  (client subnet . pool address) windows    (interval, timeout)
 *   <svc>_asked4   (asker . pool address) from DNS answers   (timeout)
 *   <svc>_bound4   (source . pool address) learned by the kernel from the
 *                  packet path on a connection's first packet (timeout,
 *                  dynamic, at most max_bindings)
 * plus quarantine4/quarantine6 (sources always sent to the honeypot).
 * Userspace writes only open, scoped and asked; bound is written only by the
 * kernel, so an answer can never shorten a live binding. The chain, first
 * match wins: quarantine -> honeypot; bound -> server (refresh); asked,
 * scoped or open -> learn the binding, -> server; anything else -> honeypot.
 */
#ifndef CHOREO_NAT_H
#define CHOREO_NAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "latency.h"
#include "rotor.h"

struct config;
struct nat;

struct nat_stats {
	uint64_t commits, failures, elements;
	struct latency_summary latency; /* of commits, kernel ack included */
};

/* Connections counted by the kernel for one service and family. */
struct nat_counters {
	uint64_t server;     /* new connections sent to the server */
	uint64_t honeypot;   /* new connections sent to the honeypot */
	uint64_t learned;    /* bindings the kernel tried to learn */
	uint64_t via_window; /* connections let in by asked/scoped/open */
};

/*
 * Open the netlink socket and create, or adopt, the table cfg->table: set
 * contents and counter values are kept; chains and rules are replaced in one
 * atomic transaction. Returns 0 and *out, or a negative errno (logged).
 */
int nat_open(const struct config *cfg, struct nat **out);

/*
 * A handle for reading the table only (dumps), with its own socket: for
 * other threads, so that long dumps never hold the DNS service.
 */
int nat_open_reader(const struct config *cfg, struct nat **out);

/* Close the socket; the table stays in the kernel (bindings keep working). */
void nat_close(struct nat *n);

/*
 * Apply the changes in one netlink transaction and wait for the kernel's
 * acknowledgement. Returns 0, or a negative errno when the kernel refused or
 * did not answer (nothing of the batch applies then). Matches
 * dnsserver_commit_fn.
 */
int nat_commit(void *nat, const struct change *c, size_t count);

void nat_get_stats(const struct nat *n, struct nat_stats *st);

/* Kernel counters of one service/family; -ENOENT if not in the table. */
int nat_read_counters(struct nat *n, size_t service, int family,
		      struct nat_counters *out);

/* Element counts of a service's sets, from the counting thread. */
struct nat_set_counts {
	long bound, asked, open;  /* -1 when not counted yet */
	uint64_t age_ms;          /* how old the counts are */
	bool fresh;               /* counted for this call */
};

/*
 * Ask the counting thread for fresh counts and wait at most wait_ms for
 * them; otherwise return the last ones. Never blocks the caller longer.
 */
int nat_set_counts(struct nat *n, size_t service, int family, unsigned wait_ms,
		   struct nat_set_counts *out);

/* Number of elements in a set of a service ("bound", "asked", "open",
 * "scoped"), or a negative errno. */
long nat_count_set(struct nat *n, size_t service, int family, const char *kind);

/* Call fn for each binding (source . pool address) of a service/family
 * with the milliseconds it has left. Returns the number or a negative errno. */
long nat_foreach_binding(struct nat *n, size_t service, int family,
			 void (*fn)(void *ctx, const uint8_t src[16],
				    const uint8_t addr[16], uint64_t ms_left),
			 void *ctx);

/* Call fn for each address open to any source (the open set). */
long nat_foreach_open(struct nat *n, size_t service, int family,
		      void (*fn)(void *ctx, const uint8_t addr[16], uint64_t ms_left),
		      void *ctx);

/*
 * Housekeeping, about once a second: re-install the table when commits
 * found it gone; warn (every 10 s at most) when the conntrack table is over
 * 90 % full.
 */
void nat_tick(struct nat *n, uint64_t now_ms);

/* Delete the table named table (family inet). 0, -ENOENT, or -errno. */
int nat_remove_table(const char *table);

#endif
