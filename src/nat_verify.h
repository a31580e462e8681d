/* SPDX-License-Identifier: MIT */
/*
 * Whether choreod's table in the kernel is still whole: every chain, set
 * and counter the configuration's table (gw_policy) has, and in each chain
 * the rules choreod installed, no more, no fewer, the same handles (a rule
 * deleted, or deleted and put back, or one added, is damage). What the
 * kernel has besides (another table, an object of another name) is not
 * looked at. Used by nat.c when the ruleset generation moved.
 */
#ifndef CHOREO_NAT_VERIFY_H
#define CHOREO_NAT_VERIFY_H

#include <stddef.h>

#include "gw_policy.h"

struct nft;
struct nat_verify;

/* For table t (which must outlive it). 0 and *out, or -ENOMEM. */
int nat_verify_new(const struct gw_table *t, struct nat_verify **out);
void nat_verify_free(struct nat_verify *v);

/* Right after an install: note the handles of the table's rules, as the
 * ones to find from now on. 0 or -errno (then only the counts are checked). */
int nat_verify_record(struct nat_verify *v, struct nft *nft, const char *table);

/*
 * Compare the kernel's table with t: 1 whole, 0 damaged (why gets what is
 * wrong, e.g. "chain www_chain4: 0 rules of 6"), or a negative errno when
 * a dump failed.
 */
int nat_verify_check(struct nat_verify *v, struct nft *nft, const char *table,
		     char *why, size_t len);

#endif
