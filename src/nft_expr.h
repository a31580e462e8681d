/* SPDX-License-Identifier: MIT */
/*
 * One gw_policy rule as libnftnl expressions: the match on the family
 * (meta nfproto), its matches (payload, bitwise, cmp, lookup) and its
 * actions (dynset, objref counter, log, immediate + nat, verdicts). Part
 * of the netlink adapter (nft.c); names come from the row, none is
 * spelled here.
 */
#ifndef CHOREO_NFT_EXPR_H
#define CHOREO_NFT_EXPR_H

#include <stdbool.h>
#include <libnftnl/rule.h>

#include "gw_policy.h"

/* Add the expressions of gr to r; false when an allocation failed. */
bool nft_rule_exprs(struct nftnl_rule *r, const struct gw_rule *gr);

#endif
