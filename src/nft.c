// SPDX-License-Identifier: MIT
#include "nft.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#include "addr.h"
#include "log.h"
#include "nft_expr.h"
#include "nft_impl.h"
#include "nft_seq.h"

#define MSG_ROOM      (64 * 1024)  /* the largest message (16-bit attribute lengths) */
#define ELEMS_PER_MSG 256          /* keeps an element message far below MSG_ROOM */
#define MIN_SOCKBUF   (4 << 20)

/* nft's type ids, so that `nft list table` shows the sets readably */
#define TYPE_IPADDR   7
#define TYPE_IP6ADDR  8
#define TYPE_CONCAT(a, b) (((a) << 6) | (b))


/* ---- socket ------------------------------------------------------------------ */

static void set_buf(struct nft *n, int opt, int *have, size_t want)
{
	int size = want > (size_t)1 << 30 ? 1 << 30 : (int)want;

	if (size <= *have)
		return;
	/* FORCE goes past net.core.[rw]mem_max: we hold CAP_NET_ADMIN */
	if (setsockopt(mnl_socket_get_fd(n->nl), SOL_SOCKET, opt, &size,
		       sizeof(size)) == 0)
		*have = size;
}

int nft_open(unsigned timeout_ms, struct nft **out)
{
	struct timeval tv = { .tv_sec = timeout_ms / 1000,
			      .tv_usec = (timeout_ms % 1000) * 1000 };
	struct nft *n = calloc(1, sizeof(*n));
	int one = 1, ret;

	*out = NULL;
	if (!n)
		return -ENOMEM;
	n->rbuf = malloc(RECV_BUF);
	if (!n->rbuf) {
		ret = -ENOMEM;
		goto fail;
	}
	n->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!n->nl || mnl_socket_bind(n->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = -errno;
		goto fail;
	}
	/* sequence numbers of a new socket start where an old one will not be */
	n->seq = (uint32_t)time(NULL) ^ (mnl_socket_get_portid(n->nl) << 16);
	setsockopt(mnl_socket_get_fd(n->nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* errors come back without the whole message they refer to */
	setsockopt(mnl_socket_get_fd(n->nl), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	set_buf(n, SO_RCVBUFFORCE, &n->rcvbuf, MIN_SOCKBUF);
	set_buf(n, SO_SNDBUFFORCE, &n->sndbuf, MIN_SOCKBUF);
	*out = n;
	return 0;
fail:
	nft_close(n);
	return ret;
}

void nft_close(struct nft *n)
{
	if (!n)
		return;
	if (n->nl)
		mnl_socket_close(n->nl);
	free(n->rbuf);
	free(n->buf);
	free(n->types);
	free(n->sets);
	free(n);
}

/* ---- receiving ----------------------------------------------------------------- */

int nft_recv(struct nft *n, int (*fn)(const struct nlmsghdr *nlh, void *ctx),
	     void *ctx)
{
	for (;;) {
		ssize_t len = mnl_socket_recvfrom(n->nl, n->rbuf, RECV_BUF);
		const struct nlmsghdr *nlh;
		int rest;

		if (len < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		rest = (int)len;
		for (nlh = (const struct nlmsghdr *)n->rbuf; mnl_nlmsg_ok(nlh, rest);
		     nlh = mnl_nlmsg_next(nlh, &rest)) {
			int ret = fn(nlh, ctx);

			if (ret <= 0)
				return ret;
		}
	}
}

struct acks {
	uint32_t first_seq, count, got, failed_seq;
	int err;
};

static int on_ack(const struct nlmsghdr *nlh, void *ctx)
{
	struct acks *a = ctx;
	const struct nlmsgerr *e;

	if (nlh->nlmsg_type != NLMSG_ERROR ||
	    !nft_seq_in(nlh->nlmsg_seq, a->first_seq, a->count))
		return 1; /* a stale reply of an earlier, timed-out transaction */
	if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
		return -EBADMSG;
	e = mnl_nlmsg_get_payload(nlh);
	if (e->error && !a->err) {
		a->err = e->error;
		a->failed_seq = nlh->nlmsg_seq;
	}
	return ++a->got < a->count;
}

/* ---- transactions --------------------------------------------------------------- */

/* Room for one more message of any size; the new part of the buffer is
 * zeroed so that attribute padding never goes out uninitialised. */
static bool room(struct nft *n)
{
	if (n->err)
		return false;
	if (n->cap - n->len < MSG_ROOM) {
		size_t cap = n->cap ? n->cap * 2 : 4 * MSG_ROOM;
		char *grown;

		while (cap - n->len < MSG_ROOM)
			cap *= 2;
		grown = realloc(n->buf, cap);
		if (!grown) {
			n->err = -ENOMEM;
			return false;
		}
		memset(grown + n->cap, 0, cap - n->cap);
		n->buf = grown;
		n->cap = cap;
	}
	if (n->n_msgs == n->types_cap) {
		size_t cap = n->types_cap ? n->types_cap * 2 : 256;
		uint16_t *grown = realloc(n->types, cap * sizeof(*grown));
		const char **sets;

		if (!grown) {
			n->err = -ENOMEM;
			return false;
		}
		n->types = grown;
		sets = realloc(n->sets, cap * sizeof(*sets));
		if (!sets) {
			n->err = -ENOMEM;
			return false;
		}
		n->sets = sets;
		n->types_cap = cap;
	}
	return true;
}

static void put_end(struct nft *n, const struct nlmsghdr *nlh)
{
	n->len += NLMSG_ALIGN(nlh->nlmsg_len);
}

/* The header of the next acknowledged message, or NULL (n->err set). */
static struct nlmsghdr *put_msg(struct nft *n, uint16_t type, uint16_t flags)
{
	if (!room(n))
		return NULL;
	n->sets[n->n_msgs] = NULL;
	n->types[n->n_msgs++] = type;
	return nftnl_nlmsg_build_hdr(n->buf + n->len, type, NFPROTO_INET,
				     flags | NLM_F_ACK, n->seq++);
}

void nft_begin(struct nft *n, const char *table)
{
	struct nlmsghdr *nlh;

	n->table = table;
	n->len = 0;
	n->n_msgs = 0;
	n->err = 0;
	if (!room(n))
		return;
	nlh = nftnl_batch_begin(n->buf, n->seq++);
	put_end(n, nlh);
	n->first_seq = n->seq;
}

size_t nft_pending(const struct nft *n)
{
	return n->n_msgs;
}

void nft_add_table(struct nft *n, const char *mark)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh;

	if (!t) {
		n->err = -ENOMEM;
		return;
	}
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, n->table);
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	nftnl_table_set_data(t, NFTNL_TABLE_USERDATA, mark, (uint32_t)strlen(mark) + 1);
	nlh = put_msg(n, NFT_MSG_NEWTABLE, NLM_F_CREATE);
	if (nlh) {
		nftnl_table_nlmsg_build_payload(nlh, t);
		put_end(n, nlh);
	}
	nftnl_table_free(t);
}

void nft_add_set(struct nft *n, const struct gw_set *gs)
{
	struct nftnl_set *s = nftnl_set_alloc();
	uint32_t alen = (uint32_t)addr_family_size(gs->family);
	uint32_t type = gs->family == AF_INET ? TYPE_IPADDR : TYPE_IP6ADDR;
	uint32_t flags = NFT_SET_TIMEOUT;
	struct nlmsghdr *nlh;

	if (!s) {
		n->err = -ENOMEM;
		return;
	}
	if (gs->interval)
		flags |= NFT_SET_INTERVAL;
	if (gs->dynamic)
		flags |= NFT_SET_EVAL;
	nftnl_set_set_str(s, NFTNL_SET_TABLE, n->table);
	nftnl_set_set_str(s, NFTNL_SET_NAME, gs->name);
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, gs->pair ? TYPE_CONCAT(type, type) : type);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, gs->pair ? 2 * alen : alen);
	nftnl_set_set_u32(s, NFTNL_SET_ID, n->seq);
	if (gs->size)
		nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, gs->size);
	if (gs->pair && gs->interval) {
		/* the field lengths select the kernel's concatenated-range set */
		uint8_t fields[2] = { (uint8_t)alen, (uint8_t)alen };

		nftnl_set_set_data(s, NFTNL_SET_DESC_CONCAT, fields, sizeof(fields));
		flags |= NFT_SET_CONCAT;
	}
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, flags);
	nlh = put_msg(n, NFT_MSG_NEWSET, NLM_F_CREATE);
	if (nlh) {
		nftnl_set_nlmsg_build_payload(nlh, s);
		put_end(n, nlh);
	}
	nftnl_set_free(s);
}

void nft_add_counter(struct nft *n, const char *name)
{
	struct nftnl_obj *o = nftnl_obj_alloc();
	struct nlmsghdr *nlh;

	if (!o) {
		n->err = -ENOMEM;
		return;
	}
	nftnl_obj_set_str(o, NFTNL_OBJ_TABLE, n->table);
	nftnl_obj_set_str(o, NFTNL_OBJ_NAME, name);
	nftnl_obj_set_u32(o, NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
	nftnl_obj_set_u32(o, NFTNL_OBJ_FAMILY, NFPROTO_INET);
	nlh = put_msg(n, NFT_MSG_NEWOBJ, NLM_F_CREATE);
	if (nlh) {
		nftnl_obj_nlmsg_build_payload(nlh, o);
		put_end(n, nlh);
	}
	nftnl_obj_free(o);
}

void nft_add_chain(struct nft *n, const struct gw_chain *gc)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nlmsghdr *nlh;

	if (!c) {
		n->err = -ENOMEM;
		return;
	}
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, n->table);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, gc->name);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	if (gc->base) {
		nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "nat");
		nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, NF_INET_PRE_ROUTING);
		nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, -100); /* dstnat */
		nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	}
	nlh = put_msg(n, NFT_MSG_NEWCHAIN, NLM_F_CREATE);
	if (nlh) {
		nftnl_chain_nlmsg_build_payload(nlh, c);
		put_end(n, nlh);
	}
	nftnl_chain_free(c);
}

void nft_add_rule(struct nft *n, const struct gw_rule *gr)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nlmsghdr *nlh;
	bool ok;

	if (!r) {
		n->err = -ENOMEM;
		return;
	}
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, n->table);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, gr->chain);
	ok = nft_rule_exprs(r, gr);
	if (!ok) {
		n->err = -ENOMEM;
	} else if ((nlh = put_msg(n, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND))) {
		nftnl_rule_nlmsg_build_payload(nlh, r);
		put_end(n, nlh);
	}
	nftnl_rule_free(r);
}

/* ---- elements ------------------------------------------------------------------------ */

/* A range of one address field (the quarantine sets): the kernel's
 * interval sets of one field take a start element and an end element, the
 * address after the range flagged INTERVAL_END (KEY_END is for ranges of
 * concatenations only). */
static bool single_field(const struct gw_elem *e)
{
	return e->key_len == 4 || e->key_len == 16;
}

/* The end element of e's range; none when the range runs to the last
 * address (nothing follows it). false: out of memory. */
static bool put_interval_end(struct nftnl_set *s, const struct gw_elem *e)
{
	uint8_t next[16];
	struct nftnl_set_elem *x;
	size_t i = e->key_len;

	memcpy(next, e->key_end, e->key_len);
	while (i > 0 && ++next[i - 1] == 0)
		i--;
	if (i == 0)
		return true; /* the range ends at the last address */
	x = nftnl_set_elem_alloc();
	if (!x)
		return false;
	nftnl_set_elem_set(x, NFTNL_SET_ELEM_KEY, next, e->key_len);
	nftnl_set_elem_set_u32(x, NFTNL_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
	nftnl_set_elem_add(s, x);
	return true;
}

static void put_elems(struct nft *n, const struct gw_elem *e, size_t count,
		      bool add)
{
	bool *done;

	if (n->err || !count)
		return;
	done = calloc(count, sizeof(*done));
	if (!done) {
		n->err = -ENOMEM;
		return;
	}
	for (size_t i = 0; i < count && !n->err; i++) {
		struct nftnl_set *s;
		struct nlmsghdr *nlh;
		size_t in_msg = 0;

		if (done[i])
			continue;
		s = nftnl_set_alloc();
		if (!s) {
			n->err = -ENOMEM;
			break;
		}
		nftnl_set_set_str(s, NFTNL_SET_TABLE, n->table);
		nftnl_set_set_str(s, NFTNL_SET_NAME, e[i].set);
		/* this set's elements, up to a message's worth; any left lead
		 * a message of their own later in this loop */
		for (size_t k = i; k < count && in_msg < ELEMS_PER_MSG; k++) {
			struct nftnl_set_elem *x;

			if (done[k] || strcmp(e[k].set, e[i].set) != 0)
				continue;
			x = nftnl_set_elem_alloc();
			if (!x) {
				n->err = -ENOMEM;
				break;
			}
			nftnl_set_elem_set(x, NFTNL_SET_ELEM_KEY, e[k].key, e[k].key_len);
			if (e[k].has_end && !single_field(&e[k]))
				nftnl_set_elem_set(x, NFTNL_SET_ELEM_KEY_END,
						   e[k].key_end, e[k].key_len);
			if (add) {
				/*
				 * The expiration too: without it, re-adding an
				 * element keeps its old expiry, and an address
				 * re-used at max_open must stay open a full
				 * window after the answer that re-used it.
				 */
				nftnl_set_elem_set_u64(x, NFTNL_SET_ELEM_TIMEOUT,
						       e[k].timeout_ms);
				nftnl_set_elem_set_u64(x, NFTNL_SET_ELEM_EXPIRATION,
						       e[k].expire_ms ? e[k].expire_ms :
						       e[k].timeout_ms);
			}
			nftnl_set_elem_add(s, x);
			done[k] = true;
			in_msg++;
			if (e[k].has_end && single_field(&e[k]) && !put_interval_end(s, &e[k])) {
				n->err = -ENOMEM;
				break;
			}
		}
		nlh = n->err ? NULL : put_msg(n, add ? NFT_MSG_NEWSETELEM :
					      NFT_MSG_DELSETELEM,
					      add ? NLM_F_CREATE : 0);
		if (nlh) {
			nftnl_set_elems_nlmsg_build_payload(nlh, s);
			put_end(n, nlh);
			n->sets[n->n_msgs - 1] = e[i].set;
		}
		nftnl_set_free(s);
	}
	free(done);
}

void nft_add_elems(struct nft *n, const struct gw_elem *e, size_t count)
{
	put_elems(n, e, count, true);
}

void nft_del_elems(struct nft *n, const struct gw_elem *e, size_t count)
{
	put_elems(n, e, count, false);
}

void nft_flush_rules(struct nft *n)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nlmsghdr *nlh;

	if (!r) {
		n->err = -ENOMEM;
		return;
	}
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, n->table);
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	nlh = put_msg(n, NFT_MSG_DELRULE, 0);
	if (nlh) {
		nftnl_rule_nlmsg_build_payload(nlh, r);
		put_end(n, nlh);
	}
	nftnl_rule_free(r);
}

void nft_del_object(struct nft *n, enum gw_obj_type type, const char *name)
{
	static const uint16_t msg[] = {
		[GW_TYPE_SET] = NFT_MSG_DELSET, [GW_TYPE_COUNTER] = NFT_MSG_DELOBJ,
		[GW_TYPE_CHAIN] = NFT_MSG_DELCHAIN,
	};
	static const uint16_t table_attr[] = {
		[GW_TYPE_SET] = NFTA_SET_TABLE, [GW_TYPE_COUNTER] = NFTA_OBJ_TABLE,
		[GW_TYPE_CHAIN] = NFTA_CHAIN_TABLE,
	};
	static const uint16_t name_attr[] = {
		[GW_TYPE_SET] = NFTA_SET_NAME, [GW_TYPE_COUNTER] = NFTA_OBJ_NAME,
		[GW_TYPE_CHAIN] = NFTA_CHAIN_NAME,
	};
	struct nlmsghdr *nlh = put_msg(n, msg[type], 0);

	if (!nlh)
		return;
	mnl_attr_put_strz(nlh, table_attr[type], n->table);
	mnl_attr_put_strz(nlh, name_attr[type], name);
	if (type == GW_TYPE_COUNTER)
		mnl_attr_put_u32(nlh, NFTA_OBJ_TYPE, htonl(NFT_OBJECT_COUNTER));
	put_end(n, nlh);
}

void nft_del_table(struct nft *n)
{
	struct nlmsghdr *nlh = put_msg(n, NFT_MSG_DELTABLE, 0);

	if (!nlh)
		return;
	mnl_attr_put_strz(nlh, NFTA_TABLE_NAME, n->table);
	put_end(n, nlh);
}

int nft_commit(struct nft *n, int *failed_type)
{
	struct acks a = { .first_seq = n->first_seq, .count = (uint32_t)n->n_msgs };
	struct nlmsghdr *nlh;
	int ret;

	if (failed_type)
		*failed_type = -1;
	n->failed_set = NULL;
	if (!room(n))
		return n->err;
	nlh = nftnl_batch_end(n->buf + n->len, n->seq++);
	put_end(n, nlh);
	/* the whole transaction is one datagram, its acknowledgements many:
	 * both socket buffers must hold them (nft does the same) */
	set_buf(n, SO_SNDBUFFORCE, &n->sndbuf, n->len + 4096);
	/* each acknowledgement is an skb of its own, about 1 KiB of buffer
	 * however small its message: the kernel queues them all before
	 * sendto() returns, so the buffer must hold every one */
	set_buf(n, SO_RCVBUFFORCE, &n->rcvbuf, n->n_msgs * 1536 + 65536);
	if (mnl_socket_sendto(n->nl, n->buf, n->len) < 0)
		return -errno;
	ret = a.count ? nft_recv(n, on_ack, &a) : 0;
	if (ret < 0)
		n->unsure++;  /* not every acknowledgement came: applied or not */
	else if (a.err == 0 && a.count)
		n->applied++;
	if (ret == 0)
		ret = a.err;
	if (ret < 0 && a.err && nft_seq_in(a.failed_seq, a.first_seq, a.count)) {
		if (failed_type)
			*failed_type = n->types[a.failed_seq - a.first_seq] & 0xff;
		n->failed_set = n->sets[a.failed_seq - a.first_seq];
	}
	return ret;
}

void nft_txn_counts(const struct nft *n, uint64_t *applied, uint64_t *unsure)
{
	*applied = n->applied;
	*unsure = n->unsure;
}

const char *nft_failed_set(const struct nft *n)
{
	return n->failed_set;
}
