/* SPDX-License-Identifier: MIT */
/*
 * The local gateway: choreod's own nftables table (family inet), made from
 * gw_policy's rows and driven over netlink through nft.c. No shell, no nft
 * binary. It implements struct gateway: a commit is one netlink
 * transaction, acknowledged before the commit's callback runs.
 *
 * At start the table is created, or adopted (set contents and counter
 * values kept; chains and rules replaced in one transaction); a table of
 * that name not made by choreod is never touched. A table removed or
 * damaged from outside is installed again.
 */
#ifndef CHOREO_NAT_H
#define CHOREO_NAT_H

#include <stddef.h>
#include <stdint.h>

#include "gateway.h"
#include "gw_policy.h"

struct config;
struct loop;
struct nat;

/* Install or adopt the table and start the background worker; the loop
 * gets the worker's completion events. 0 and *out, or -errno (logged). */
int nat_open(const struct config *cfg, struct loop *loop, struct nat **out);

/* Stop the worker and close the sockets; the table stays in the kernel
 * (bindings keep working). NULL is fine. */
void nat_close(struct nat *n);

struct gateway *nat_gateway(struct nat *n);

/* A window the kernel holds, offered for adoption at a restart. */
struct nat_window {
	size_t service;
	int family;
	enum gw_pool_obj obj;     /* GW_OPEN, GW_SCOPED or GW_ASKED */
	uint8_t addr[16];         /* the pool address */
	uint8_t src[16];          /* asker, or client subnet (scoped) */
	unsigned src_len;         /* its prefix length; 0 for open */
	uint64_t ms_left;
};

/* Whether to keep a window; the ones refused are deleted. */
typedef bool nat_keep_fn(void *ctx, const struct nat_window *w);

/*
 * At start, before serving: offer each open, scoped and asked element of
 * the kernel's sets to keep, and delete those it refuses (one transaction
 * that survives elements expiring meanwhile). The caller keeps only what
 * the current configuration allows and counts the windows it keeps. The
 * binding sets are left alone: a binding to an address outside the pools
 * is never looked up and expires by itself. Returns the number deleted, or
 * a negative errno.
 */
long nat_adopt(struct nat *n, nat_keep_fn *keep, void *ctx);

/* Delete the table named table (family inet), if choreod made it.
 * 0, -ENOENT, -EPERM (not choreod's), or -errno. */
int nat_remove_table(const char *table);

#endif
