/* SPDX-License-Identifier: MIT */
/*
 * Netlink sequence numbers are 32 bits and wrap (at 10 000 commits a second
 * of a few messages each, in about a day): they are compared by distance,
 * never by magnitude. Pure; in a header so that it is unit-tested.
 */
#ifndef CHOREO_NFT_SEQ_H
#define CHOREO_NFT_SEQ_H

#include <stdbool.h>
#include <stdint.h>

/* Whether seq is one of the count numbers first, first + 1, ... (mod 2^32). */
static inline bool nft_seq_in(uint32_t seq, uint32_t first, uint32_t count)
{
	return (uint32_t)(seq - first) < count;
}

/* Whether a comes after b, within half the sequence space (RFC 1982). */
static inline bool nft_seq_after(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) > 0;
}

#endif
