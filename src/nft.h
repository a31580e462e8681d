/* SPDX-License-Identifier: MIT */
/*
 * nftables over netlink (libmnl + libnftnl), a thin adapter: transactions
 * (one BEGIN..END batch, every message acknowledged), dumps, and the
 * translation of gw_policy's rows into netlink expressions. It names no
 * set, chain or service: the names come in with the rows.
 *
 * One struct nft is one netlink socket, used by one thread.
 */
#ifndef CHOREO_NFT_H
#define CHOREO_NFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw_policy.h"

struct nft;

/*
 * Open a netlink socket. A reply (an acknowledgement, or the next part of
 * a dump) not received within timeout_ms fails the operation with
 * -ETIMEDOUT: a stuck kernel must not hold the caller forever. 0 or -errno.
 */
int nft_open(unsigned timeout_ms, struct nft **out);
void nft_close(struct nft *n);

/*
 * A transaction: nft_begin(), any number of nft_add_*() / nft_del_*(),
 * then nft_commit() applies them all or none. The batch buffer grows as
 * needed (it cannot overflow) and the socket buffers are raised to fit it,
 * as nft(8) does. An allocation failure while building is remembered and
 * returned by nft_commit(), which then sends nothing.
 */
void nft_begin(struct nft *n, const char *table);
void nft_add_table(struct nft *n, const char *mark);
void nft_add_set(struct nft *n, const struct gw_set *s);
void nft_add_counter(struct nft *n, const char *name);
void nft_add_chain(struct nft *n, const struct gw_chain *c);
void nft_add_rule(struct nft *n, const struct gw_rule *r);
/* Elements, one message per set (grouped by set name, in order). */
void nft_add_elems(struct nft *n, const struct gw_elem *e, size_t count);
/* Delete the elements (keys only are used). */
void nft_del_elems(struct nft *n, const struct gw_elem *e, size_t count);
void nft_flush_rules(struct nft *n);
void nft_del_object(struct nft *n, enum gw_obj_type type, const char *name);
void nft_del_table(struct nft *n);
/*
 * Send the transaction and wait for every acknowledgement. 0, or the
 * kernel's error (negative errno) for the first message it refused (then
 * nothing of the transaction applies), -ETIMEDOUT, or -ENOMEM. When
 * failed_type is not NULL it gets the NFT_MSG_* type of that message.
 */
int nft_commit(struct nft *n, int *failed_type);
/* After nft_commit() failed: the name of the set whose element message the
 * kernel refused (e.g. -ENFILE: the set is full), or NULL. It points into
 * the elements given to nft_add_elems()/nft_del_elems(): valid while they
 * are. */
const char *nft_failed_set(const struct nft *n);
/* Transactions of this socket the kernel applied (each moves the ruleset
 * generation by one), and those whose acknowledgements did not all come
 * (a timeout: applied or not). */
void nft_txn_counts(const struct nft *n, uint64_t *applied, uint64_t *unsure);
/* Number of messages in the transaction being built. */
size_t nft_pending(const struct nft *n);

/* ---- dumps (each a request and its replies, on this socket) ---------- */

/* Whether inet table exists, and whether it carries mark as user data. */
int nft_probe_table(struct nft *n, const char *table, const char *mark,
		    bool *exists, bool *ours);

/* fn(ctx, name) for each object of that type in inet table. */
int nft_list_names(struct nft *n, const char *table, enum gw_obj_type type,
		   int (*fn)(void *ctx, const char *name), void *ctx);

/* fn(ctx, name, packets) for each named counter of inet table. */
int nft_dump_counters(struct nft *n, const char *table,
		      void (*fn)(void *ctx, const char *name, uint64_t packets),
		      void *ctx);

/* One element of a dump: its key, the end of its range (NULL unless an
 * interval element; key_len bytes too), the milliseconds it has left. */
typedef void nft_elem_fn(void *ctx, const uint8_t *key, uint32_t key_len,
			 const uint8_t *key_end, uint64_t ms_left);

/*
 * The elements of a set: fn for each, or, with fn NULL, only their number
 * (no per-element allocation: a binding set may hold millions). Returns
 * the number of elements or a negative errno.
 */
long nft_dump_elems(struct nft *n, const char *table, const char *set,
		    nft_elem_fn *fn, void *ctx);

/*
 * The ruleset generation: the kernel's count of committed transactions,
 * every table and every process together (ours too). 0 and *gen, or -errno.
 */
int nft_get_gen(struct nft *n, uint32_t *gen);

/* fn(ctx, chain, handle) for each rule of inet table (fn returns 0, or a
 * negative errno that ends the dump with it). */
int nft_list_rules(struct nft *n, const char *table,
		   int (*fn)(void *ctx, const char *chain, uint64_t handle),
		   void *ctx);

#endif
