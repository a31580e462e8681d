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

/*
 * fn(ctx, addr, ms_left) for each address in a pool's open set, read from
 * the kernel now (a dump: for the start only, before serving). Returns the
 * number or a negative errno.
 */
long nat_open_windows(struct nat *n, size_t service, int family,
		      void (*fn)(void *ctx, const uint8_t addr[16], uint64_t ms_left),
		      void *ctx);

/* Delete the table named table (family inet), if choreod made it.
 * 0, -ENOENT, -EPERM (not choreod's), or -errno. */
int nat_remove_table(const char *table);

#endif
