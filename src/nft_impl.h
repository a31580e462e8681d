/* SPDX-License-Identifier: MIT */
/*
 * Inside nft.c and nft_dump.c: the socket and the transaction being
 * built. Not for other modules (they see struct nft as opaque).
 */
#ifndef CHOREO_NFT_IMPL_H
#define CHOREO_NFT_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/netlink.h>

#define RECV_BUF      (256 * 1024)
#define REQ_BUF       4096         /* a dump request: headers and a name or two */

struct nft {
	struct mnl_socket *nl;
	uint32_t seq;
	int sndbuf, rcvbuf;        /* what the socket has now */
	char *rbuf;
	/* the transaction being built */
	const char *table;
	char *buf;                 /* zeroed when grown: padding is sent as is */
	size_t len, cap;
	uint32_t first_seq;        /* of the first acknowledged message */
	uint16_t *types;           /* NFT_MSG_* of each, for error reports */
	const char **sets;         /* the set of each element message, else NULL */
	const char *failed_set;    /* of the message the kernel refused */
	uint64_t applied, unsure;  /* transactions acknowledged; of unknown fate */
	size_t n_msgs, types_cap;
	int err;                   /* sticky: an allocation failed */
};

/* Receive until fn says stop: > 0 more, 0 done, < 0 an error. */
int nft_recv(struct nft *n, int (*fn)(const struct nlmsghdr *nlh, void *ctx),
	     void *ctx);

#endif
