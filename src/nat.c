// SPDX-License-Identifier: MIT
#include "nat.h"

#include <errno.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#include "addr.h"
#include "config.h"
#include "latency.h"
#include "log.h"

#define BATCH_BUF     (256 * 1024)
#define RECV_BUF      (256 * 1024)
#define REQ_BUF       4096 /* a dump request: headers and a name or two */
#define ACK_TIMEOUT_S 2
#define NAME_MAX_LEN  128
#define NAT_MAX_TRACKED CONFIG_MAX_SERVICES

/* nft's type ids, so `nft list table` shows the sets readably */
#define TYPE_IPADDR   7
#define TYPE_IP6ADDR  8
#define TYPE_CONCAT(a, b) (((a) << 6) | (b))

struct nat {
	const struct config *cfg;
	struct mnl_socket *nl;
	uint32_t portid, seq;
	char *buf;      /* batch being built */
	char *rbuf;     /* replies */
	struct nat_stats stats;
	struct latency latency;
	bool need_repair;
	uint64_t last_repair_ms, last_conntrack_ms;
	uint64_t misses[NAT_MAX_TRACKED][2]; /* per service and family */
	struct counter_thread *counter;
};

/*
 * Counting set elements needs a dump, and the kernel's dump of a large hash
 * set is slow (300 000 bindings: about 5 s here). It runs in a thread of its
 * own, with its own netlink socket, so that the DNS service never waits for
 * it; status reports the last count and its age.
 */
struct counter_thread {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake, done;
	bool requested, stop;
	uint64_t generation;     /* counts completed */
	struct nat *reader;      /* its own socket; never used by the main thread */
	long counts[NAT_MAX_TRACKED][2][3]; /* bound, asked, open; -1 = unknown */
	uint64_t counted_ms;
};

static int counter_start(struct nat *n);
static void counter_stop(struct counter_thread *ct);

static const char *fam_suffix(int family)
{
	return family == AF_INET ? "4" : "6";
}

static void set_name(char *out, const struct config *cfg, size_t svc,
		     int family, const char *kind)
{
	snprintf(out, NAME_MAX_LEN, "%s_%s%s", cfg->services[svc].section, kind,
		 fam_suffix(family));
}

/* ---- sending batches and reading acknowledgements -------------------- */

#define BATCH_TRACK 1024 /* message types remembered, for error reports */

struct batch {
	struct mnl_nlmsg_batch *b;
	uint32_t first_seq, n_acks;
	bool overflow;
	uint16_t types[BATCH_TRACK];
};

static void batch_begin(struct nat *n, struct batch *bt)
{
	bt->b = mnl_nlmsg_batch_start(n->buf, BATCH_BUF);
	bt->n_acks = 0;
	bt->overflow = false;
	nftnl_batch_begin(mnl_nlmsg_batch_current(bt->b), n->seq++);
	mnl_nlmsg_batch_next(bt->b);
	bt->first_seq = n->seq;
}

/* Header of the next message in the batch, acknowledged. */
static struct nlmsghdr *batch_msg(struct nat *n, struct batch *bt, uint16_t type,
				  uint16_t flags)
{
	if (bt->n_acks < BATCH_TRACK)
		bt->types[bt->n_acks] = type;
	bt->n_acks++;
	return nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(bt->b), type,
				     NFPROTO_INET, flags | NLM_F_ACK, n->seq++);
}

static void batch_next(struct batch *bt)
{
	/* mnl_nlmsg_batch_next() is false once the buffer is nearly full */
	if (!mnl_nlmsg_batch_next(bt->b))
		bt->overflow = true;
}

/*
 * Receive until fn says stop: fn gets every message and returns > 0 for
 * more, 0 when done, or a negative errno.
 */
static int recv_messages(struct nat *n,
			 int (*fn)(const struct nlmsghdr *nlh, void *ctx), void *ctx)
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

	if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_seq < a->first_seq ||
	    nlh->nlmsg_seq >= a->first_seq + a->count)
		return 1; /* stale reply of an earlier timed-out batch */
	e = mnl_nlmsg_get_payload(nlh);
	if (e->error && !a->err) {
		a->err = e->error;
		a->failed_seq = nlh->nlmsg_seq;
	}
	return ++a->got < a->count;
}

/*
 * Read one reply per acknowledged message. Every message of a batch gets
 * exactly one NLMSG_ERROR: 0 for success, or the error that aborted the
 * transaction.
 */
static int read_acks(struct nat *n, uint32_t first_seq, uint32_t count,
		     uint32_t *failed_seq)
{
	struct acks a = { .first_seq = first_seq, .count = count };
	int ret = count ? recv_messages(n, on_ack, &a) : 0;

	*failed_seq = a.failed_seq;
	return ret < 0 ? ret : a.err;
}

static int batch_send(struct nat *n, struct batch *bt)
{
	uint32_t failed = 0;
	int ret;

	nftnl_batch_end(mnl_nlmsg_batch_current(bt->b), n->seq++);
	mnl_nlmsg_batch_next(bt->b);
	if (bt->overflow) {
		mnl_nlmsg_batch_stop(bt->b);
		return -E2BIG;
	}
	if (mnl_socket_sendto(n->nl, mnl_nlmsg_batch_head(bt->b),
			      mnl_nlmsg_batch_size(bt->b)) < 0) {
		mnl_nlmsg_batch_stop(bt->b);
		return -errno;
	}
	mnl_nlmsg_batch_stop(bt->b);
	ret = read_acks(n, bt->first_seq, bt->n_acks, &failed);
	if (ret < 0 && failed >= bt->first_seq &&
	    failed - bt->first_seq < BATCH_TRACK)
		log_debug("nftables: message %u of the batch (type %u) failed: %s",
			  failed - bt->first_seq,
			  bt->types[failed - bt->first_seq] & 0xff, strerror(-ret));
	return ret;
}

/* ---- rule expressions ------------------------------------------------- */

static void free_expr(struct nftnl_expr *e)
{
	if (e)
		nftnl_expr_free(e);
}

static int add_expr(struct nftnl_rule *r, struct nftnl_expr *e)
{
	if (!e)
		return -ENOMEM;
	nftnl_rule_add_expr(r, e);
	return 0;
}

static int e_meta_nfproto(struct nftnl_rule *r, uint8_t proto)
{
	struct nftnl_expr *e = nftnl_expr_alloc("meta");
	struct nftnl_expr *c = nftnl_expr_alloc("cmp");

	if (!e || !c) {
		free_expr(e);
		free_expr(c);
		return -ENOMEM;
	}
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, NFT_META_NFPROTO);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
	nftnl_expr_set_u32(c, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
	nftnl_expr_set_u32(c, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
	nftnl_expr_set(c, NFTNL_EXPR_CMP_DATA, &proto, sizeof(proto));
	nftnl_rule_add_expr(r, e);
	nftnl_rule_add_expr(r, c);
	return 0;
}

/* Load the source or destination address of the network header. */
static int e_addr(struct nftnl_rule *r, int family, bool src, uint32_t dreg)
{
	struct nftnl_expr *e = nftnl_expr_alloc("payload");
	uint32_t off = family == AF_INET ? (src ? 12 : 16) : (src ? 8 : 24);

	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, NFT_PAYLOAD_NETWORK_HEADER);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, (uint32_t)addr_family_size(family));
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
	return add_expr(r, e);
}

/* (source . destination) into consecutive registers, as a set key. */
static int e_src_dst(struct nftnl_rule *r, int family)
{
	int ret = e_addr(r, family, true, NFT_REG_1);

	if (!ret)
		ret = e_addr(r, family, false,
			     family == AF_INET ? NFT_REG32_01 : NFT_REG_2);
	return ret;
}

static int e_prefix(struct nftnl_rule *r, const struct addr_prefix *p)
{
	uint32_t len = (uint32_t)addr_family_size(p->family);
	uint8_t mask[16] = { 0 }, zero[16] = { 0 };
	struct nftnl_expr *b, *c;
	int ret = e_addr(r, p->family, false, NFT_REG_1);

	if (ret)
		return ret;
	memset(mask, 0xff, len);
	addr_mask(p->family, mask, p->len);
	b = nftnl_expr_alloc("bitwise");
	c = nftnl_expr_alloc("cmp");
	if (!b || !c) {
		free_expr(b);
		free_expr(c);
		return -ENOMEM;
	}
	nftnl_expr_set_u32(b, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(b, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
	nftnl_expr_set_u32(b, NFTNL_EXPR_BITWISE_LEN, len);
	nftnl_expr_set(b, NFTNL_EXPR_BITWISE_MASK, mask, len);
	nftnl_expr_set(b, NFTNL_EXPR_BITWISE_XOR, zero, len);
	nftnl_expr_set_u32(c, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
	nftnl_expr_set_u32(c, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
	nftnl_expr_set(c, NFTNL_EXPR_CMP_DATA, p->bytes, len);
	nftnl_rule_add_expr(r, b);
	nftnl_rule_add_expr(r, c);
	return 0;
}

static int e_lookup(struct nftnl_rule *r, const char *set)
{
	struct nftnl_expr *e = nftnl_expr_alloc("lookup");

	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
	nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
	return add_expr(r, e);
}

static int e_dynset(struct nftnl_rule *r, uint32_t op, const char *set,
		    uint64_t timeout_ms)
{
	struct nftnl_expr *e = nftnl_expr_alloc("dynset");

	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_SREG_KEY, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_OP, op);
	nftnl_expr_set_str(e, NFTNL_EXPR_DYNSET_SET_NAME, set);
	nftnl_expr_set_u64(e, NFTNL_EXPR_DYNSET_TIMEOUT, timeout_ms);
	return add_expr(r, e);
}

static int e_counter(struct nftnl_rule *r, const char *name)
{
	struct nftnl_expr *e = nftnl_expr_alloc("objref");

	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_OBJREF_IMM_TYPE, NFT_OBJECT_COUNTER);
	nftnl_expr_set_str(e, NFTNL_EXPR_OBJREF_IMM_NAME, name);
	return add_expr(r, e);
}

static int e_dnat(struct nftnl_rule *r, int family, const void *to)
{
	struct nftnl_expr *imm = nftnl_expr_alloc("immediate");
	struct nftnl_expr *nat = nftnl_expr_alloc("nat");

	if (!imm || !nat) {
		free_expr(imm);
		free_expr(nat);
		return -ENOMEM;
	}
	nftnl_expr_set_u32(imm, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
	nftnl_expr_set(imm, NFTNL_EXPR_IMM_DATA, to,
		       (uint32_t)addr_family_size(family));
	nftnl_expr_set_u32(nat, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
	nftnl_expr_set_u32(nat, NFTNL_EXPR_NAT_FAMILY,
			   family == AF_INET ? NFPROTO_IPV4 : NFPROTO_IPV6);
	nftnl_expr_set_u32(nat, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
	nftnl_rule_add_expr(r, imm);
	nftnl_rule_add_expr(r, nat);
	return 0;
}

/* A verdict: accept, or jump to chain. */
static int e_verdict(struct nftnl_rule *r, int verdict, const char *chain)
{
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");

	if (!e)
		return -ENOMEM;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
	if (chain)
		nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain);
	return add_expr(r, e);
}

/* ---- building the table ------------------------------------------------- */

static struct nftnl_rule *rule_new(const struct config *cfg, const char *chain,
				   int family)
{
	struct nftnl_rule *r = nftnl_rule_alloc();

	if (!r)
		return NULL;
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, cfg->table);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	if (e_meta_nfproto(r, family == AF_INET ? NFPROTO_IPV4 : NFPROTO_IPV6) < 0) {
		nftnl_rule_free(r);
		return NULL;
	}
	return r;
}

static int put_rule(struct nat *n, struct batch *bt, struct nftnl_rule *r, int ret)
{
	if (!r)
		return -ENOMEM;
	if (ret == 0) {
		struct nlmsghdr *nlh = batch_msg(n, bt, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
		nftnl_rule_nlmsg_build_payload(nlh, r);
		batch_next(bt);
	}
	nftnl_rule_free(r);
	return ret;
}

static int put_set(struct nat *n, struct batch *bt, const char *name, int family,
		   bool concat, uint32_t flags, uint32_t size)
{
	struct nftnl_set *s = nftnl_set_alloc();
	uint32_t alen = (uint32_t)addr_family_size(family);
	uint32_t type = family == AF_INET ? TYPE_IPADDR : TYPE_IP6ADDR;
	struct nlmsghdr *nlh;

	if (!s)
		return -ENOMEM;
	nftnl_set_set_str(s, NFTNL_SET_TABLE, n->cfg->table);
	nftnl_set_set_str(s, NFTNL_SET_NAME, name);
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, flags | NFT_SET_TIMEOUT);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, concat ? TYPE_CONCAT(type, type) : type);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, concat ? 2 * alen : alen);
	nftnl_set_set_u32(s, NFTNL_SET_ID, n->seq);
	if (size)
		nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, size);
	if (concat && (flags & NFT_SET_INTERVAL)) {
		/* the field lengths select the kernel's concatenated-range set */
		uint8_t fields[2] = { (uint8_t)alen, (uint8_t)alen };

		nftnl_set_set_data(s, NFTNL_SET_DESC_CONCAT, fields, sizeof(fields));
		nftnl_set_set_u32(s, NFTNL_SET_FLAGS,
				  flags | NFT_SET_TIMEOUT | NFT_SET_CONCAT);
	}
	nlh = batch_msg(n, bt, NFT_MSG_NEWSET, NLM_F_CREATE);
	nftnl_set_nlmsg_build_payload(nlh, s);
	batch_next(bt);
	nftnl_set_free(s);
	return 0;
}

static int put_counter(struct nat *n, struct batch *bt, const char *name)
{
	struct nftnl_obj *o = nftnl_obj_alloc();
	struct nlmsghdr *nlh;

	if (!o)
		return -ENOMEM;
	nftnl_obj_set_str(o, NFTNL_OBJ_TABLE, n->cfg->table);
	nftnl_obj_set_str(o, NFTNL_OBJ_NAME, name);
	nftnl_obj_set_u32(o, NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
	nftnl_obj_set_u32(o, NFTNL_OBJ_FAMILY, NFPROTO_INET);
	nlh = batch_msg(n, bt, NFT_MSG_NEWOBJ, NLM_F_CREATE);
	nftnl_obj_nlmsg_build_payload(nlh, o);
	batch_next(bt);
	nftnl_obj_free(o);
	return 0;
}

static int put_chain(struct nat *n, struct batch *bt, const char *name, bool base)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nlmsghdr *nlh;

	if (!c)
		return -ENOMEM;
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, n->cfg->table);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	if (base) {
		nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "nat");
		nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, NF_INET_PRE_ROUTING);
		nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, -100); /* dstnat */
		nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	}
	nlh = batch_msg(n, bt, NFT_MSG_NEWCHAIN, NLM_F_CREATE);
	nftnl_chain_nlmsg_build_payload(nlh, c);
	batch_next(bt);
	nftnl_chain_free(c);
	return 0;
}

/* One service and family: its sets, counters, chain and rules. */
static int put_service(struct nat *n, struct batch *bt, size_t svc, int family)
{
	const struct config_service *s = &n->cfg->services[svc];
	const void *server = family == AF_INET ? (const void *)&s->server :
						 (const void *)&s->server6;
	const void *honeypot = family == AF_INET ? (const void *)&s->honeypot :
						   (const void *)&s->honeypot6;
	uint64_t binding_ms = (uint64_t)s->binding * 1000;
	char chain[NAME_MAX_LEN], open[NAME_MAX_LEN], scoped[NAME_MAX_LEN];
	char asked[NAME_MAX_LEN], bound[NAME_MAX_LEN], quarantine[NAME_MAX_LEN];
	char c_server[NAME_MAX_LEN], c_honeypot[NAME_MAX_LEN];
	char c_learned[NAME_MAX_LEN], c_window[NAME_MAX_LEN];
	struct nftnl_rule *r;
	int ret = 0;

	set_name(chain, n->cfg, svc, family, "chain");
	set_name(open, n->cfg, svc, family, "open");
	set_name(scoped, n->cfg, svc, family, "scoped");
	set_name(asked, n->cfg, svc, family, "asked");
	set_name(bound, n->cfg, svc, family, "bound");
	set_name(c_server, n->cfg, svc, family, "server");
	set_name(c_honeypot, n->cfg, svc, family, "honeypot");
	set_name(c_learned, n->cfg, svc, family, "learned");
	set_name(c_window, n->cfg, svc, family, "window");
	snprintf(quarantine, sizeof(quarantine), "quarantine%s", fam_suffix(family));

	ret |= put_set(n, bt, open, family, false, 0, 0);
	ret |= put_set(n, bt, scoped, family, true, NFT_SET_INTERVAL, 0);
	ret |= put_set(n, bt, asked, family, true, 0, 0);
	ret |= put_set(n, bt, bound, family, true, NFT_SET_EVAL, s->max_bindings);
	ret |= put_counter(n, bt, c_server);
	ret |= put_counter(n, bt, c_honeypot);
	ret |= put_counter(n, bt, c_learned);
	ret |= put_counter(n, bt, c_window);
	ret |= put_chain(n, bt, chain, false);
	if (ret)
		return -ENOMEM;

	/* prerouting: traffic to the pool goes to the service's chain */
	r = rule_new(n->cfg, "prerouting", family);
	ret = put_rule(n, bt, r, r ? e_prefix(r, family == AF_INET ? &s->pool : &s->pool6) ||
				     e_verdict(r, NFT_JUMP, chain) : 0);

	/* 1. quarantined sources -> honeypot */
	r = rule_new(n->cfg, chain, family);
	ret |= put_rule(n, bt, r, r ? e_addr(r, family, true, NFT_REG_1) ||
				      e_lookup(r, quarantine) ||
				      e_counter(r, c_honeypot) ||
				      e_dnat(r, family, honeypot) : 0);
	/* 2. a bound client -> server, and its binding lives on */
	r = rule_new(n->cfg, chain, family);
	ret |= put_rule(n, bt, r, r ? e_src_dst(r, family) || e_lookup(r, bound) ||
				      e_dynset(r, NFT_DYNSET_OP_UPDATE, bound, binding_ms) ||
				      e_counter(r, c_server) ||
				      e_dnat(r, family, server) : 0);
	/*
	 * 3. let in by an answer (asked), a client-subnet window (scoped) or
	 * the open window: learn the binding in the kernel, then -> server.
	 * Learning is a rule of its own so that a full binding set (the add
	 * fails, the rule stops) never sends a legitimate client to the
	 * honeypot; learned vs window tells how often learning failed.
	 */
	const char *windows[] = { asked, scoped };
	for (size_t i = 0; i < 2; i++) {
		r = rule_new(n->cfg, chain, family);
		ret |= put_rule(n, bt, r, r ? e_src_dst(r, family) || e_lookup(r, windows[i]) ||
					      e_dynset(r, NFT_DYNSET_OP_ADD, bound, binding_ms) ||
					      e_counter(r, c_learned) : 0);
		r = rule_new(n->cfg, chain, family);
		ret |= put_rule(n, bt, r, r ? e_src_dst(r, family) || e_lookup(r, windows[i]) ||
					      e_counter(r, c_window) || e_counter(r, c_server) ||
					      e_dnat(r, family, server) : 0);
	}
	r = rule_new(n->cfg, chain, family);
	ret |= put_rule(n, bt, r, r ? e_addr(r, family, false, NFT_REG_1) || e_lookup(r, open) ||
				      e_src_dst(r, family) ||
				      e_dynset(r, NFT_DYNSET_OP_ADD, bound, binding_ms) ||
				      e_counter(r, c_learned) : 0);
	r = rule_new(n->cfg, chain, family);
	ret |= put_rule(n, bt, r, r ? e_addr(r, family, false, NFT_REG_1) || e_lookup(r, open) ||
				      e_counter(r, c_window) || e_counter(r, c_server) ||
				      e_dnat(r, family, server) : 0);
	/* 4. anything else -> honeypot */
	r = rule_new(n->cfg, chain, family);
	ret |= put_rule(n, bt, r, r ? e_counter(r, c_honeypot) ||
				      e_dnat(r, family, honeypot) : 0);
	return ret ? -ENOMEM : 0;
}

/* ---- dumps ------------------------------------------------------------------ */

typedef int (*dump_cb)(const struct nlmsghdr *nlh, void *ctx);

struct dump_state {
	uint32_t seq;
	dump_cb cb;
	void *ctx;
};

static int on_dump(const struct nlmsghdr *nlh, void *ctx)
{
	struct dump_state *d = ctx;

	if (nlh->nlmsg_seq != d->seq)
		return 1;
	if (nlh->nlmsg_type == NLMSG_DONE)
		return 0;
	if (nlh->nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

		return e->error ? e->error : 1;
	}
	return d->cb(nlh, d->ctx) < 0 ? -ENOMEM : 1;
}

/* Send a dump request and feed each reply to cb. */
static int dump(struct nat *n, struct nlmsghdr *req, dump_cb cb, void *ctx)
{
	struct dump_state d = { .seq = req->nlmsg_seq, .cb = cb, .ctx = ctx };

	if (mnl_socket_sendto(n->nl, req, req->nlmsg_len) < 0)
		return -errno;
	return recv_messages(n, on_dump, &d);
}

/* Names of one kind of object in our table, from a dump. */
struct name_list {
	const char *table;
	int kind; /* 0 chain, 1 set, 2 counter object */
	char (*names)[NAME_MAX_LEN];
	size_t n, cap;
};

static int collect_name(const struct nlmsghdr *nlh, void *ctx)
{
	struct name_list *l = ctx;
	const char *table = NULL, *name = NULL;
	struct nftnl_chain *c = NULL;
	struct nftnl_set *s = NULL;
	struct nftnl_obj *o = NULL;
	int ret = 0;

	if (l->kind == 0 && (c = nftnl_chain_alloc()) &&
	    nftnl_chain_nlmsg_parse(nlh, c) == 0) {
		table = nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE);
		name = nftnl_chain_get_str(c, NFTNL_CHAIN_NAME);
	} else if (l->kind == 1 && (s = nftnl_set_alloc()) &&
		   nftnl_set_nlmsg_parse(nlh, s) == 0) {
		table = nftnl_set_get_str(s, NFTNL_SET_TABLE);
		name = nftnl_set_get_str(s, NFTNL_SET_NAME);
	} else if (l->kind == 2 && (o = nftnl_obj_alloc()) &&
		   nftnl_obj_nlmsg_parse(nlh, o) == 0) {
		table = nftnl_obj_get_str(o, NFTNL_OBJ_TABLE);
		name = nftnl_obj_get_str(o, NFTNL_OBJ_NAME);
	}
	if (table && name && strcmp(table, l->table) == 0) {
		if (l->n == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 32;
			char (*grown)[NAME_MAX_LEN] = realloc(l->names, cap * sizeof(*grown));

			if (!grown) {
				ret = -ENOMEM;
				goto out;
			}
			l->names = grown;
			l->cap = cap;
		}
		snprintf(l->names[l->n++], NAME_MAX_LEN, "%s", name);
	}
out:
	/* libnftnl's free functions do not take NULL */
	if (c)
		nftnl_chain_free(c);
	if (s)
		nftnl_set_free(s);
	if (o)
		nftnl_obj_free(o);
	return ret;
}

static int list_names(struct nat *n, int kind, struct name_list *l)
{
	static const uint16_t type[] = { NFT_MSG_GETCHAIN, NFT_MSG_GETSET, NFT_MSG_GETOBJ };
	char req[REQ_BUF] = { 0 };
	struct nlmsghdr *nlh;

	memset(l, 0, sizeof(*l));
	l->table = n->cfg->table;
	l->kind = kind;
	nlh = nftnl_nlmsg_build_hdr(req, type[kind], NFPROTO_INET,
				    NLM_F_DUMP | NLM_F_ACK, n->seq++);
	if (kind == 1) {
		struct nftnl_set *s = nftnl_set_alloc();

		if (!s)
			return -ENOMEM;
		nftnl_set_set_str(s, NFTNL_SET_TABLE, n->cfg->table);
		nftnl_set_nlmsg_build_payload(nlh, s);
		nftnl_set_free(s);
	}
	return dump(n, nlh, collect_name, l);
}

/* Whether the table exists, and whether it carries choreod's mark. */
struct table_probe {
	const char *name;
	bool exists, ours;
};

#define TABLE_MARK "choreod"

static int probe_table_cb(const struct nlmsghdr *nlh, void *ctx)
{
	struct table_probe *p = ctx;
	struct nftnl_table *t = nftnl_table_alloc();
	const char *name, *udata;
	uint32_t len = 0;

	if (!t)
		return -ENOMEM;
	if (nftnl_table_nlmsg_parse(nlh, t) == 0 &&
	    (name = nftnl_table_get_str(t, NFTNL_TABLE_NAME)) &&
	    strcmp(name, p->name) == 0 &&
	    nftnl_table_get_u32(t, NFTNL_TABLE_FAMILY) == NFPROTO_INET) {
		p->exists = true;
		udata = nftnl_table_get_data(t, NFTNL_TABLE_USERDATA, &len);
		p->ours = udata && len == sizeof(TABLE_MARK) &&
			  memcmp(udata, TABLE_MARK, len) == 0;
	}
	nftnl_table_free(t);
	return 0;
}

static int probe_table(struct nat *n, const char *table, struct table_probe *p)
{
	char req[REQ_BUF] = { 0 };
	struct nlmsghdr *nlh;

	memset(p, 0, sizeof(*p));
	p->name = table;
	nlh = nftnl_nlmsg_build_hdr(req, NFT_MSG_GETTABLE, NFPROTO_INET,
				    NLM_F_DUMP | NLM_F_ACK, n->seq++);
	return dump(n, nlh, probe_table_cb, p);
}

/* ---- install ---------------------------------------------------------------- */

static bool wanted(const char *name, char (*names)[NAME_MAX_LEN], size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

/* Every chain, set and counter name the configuration needs. */
static size_t wanted_names(const struct config *cfg, char (*out)[NAME_MAX_LEN],
			   size_t cap)
{
	static const char *const kinds[] = {
		"chain", "open", "scoped", "asked", "bound",
		"server", "honeypot", "learned", "window",
	};
	size_t n = 0;

	snprintf(out[n++], NAME_MAX_LEN, "prerouting");
	snprintf(out[n++], NAME_MAX_LEN, "quarantine4");
	snprintf(out[n++], NAME_MAX_LEN, "quarantine6");
	for (size_t s = 0; s < cfg->n_services; s++)
		for (int f = 0; f < 2; f++) {
			int family = f ? AF_INET6 : AF_INET;

			if (family == AF_INET6 && !cfg->services[s].has_pool6)
				continue;
			for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]) && n < cap; k++)
				set_name(out[n++], cfg, s, family, kinds[k]);
		}
	return n;
}

static int install(struct nat *n)
{
	struct name_list existing[3] = { 0 };
	char (*want)[NAME_MAX_LEN] = NULL;
	size_t cap = 3 + n->cfg->n_services * 2 * 9, n_want;
	struct table_probe probe;
	struct nftnl_table *t = NULL;
	struct batch bt;
	struct nlmsghdr *nlh;
	int ret;

	ret = probe_table(n, n->cfg->table, &probe);
	if (ret < 0) {
		log_err("nftables: cannot list tables: %s", strerror(-ret));
		return ret;
	}
	if (probe.exists && !probe.ours) {
		log_err("nftables: table inet %s exists and was not made by choreod; "
			"choreod never touches other tables: set [daemon] table to "
			"another name", n->cfg->table);
		return -EEXIST;
	}
	want = calloc(cap, sizeof(*want));
	if (!want)
		return -ENOMEM;
	n_want = wanted_names(n->cfg, want, cap);
	for (int kind = 0; probe.exists && kind < 3; kind++) {
		ret = list_names(n, kind, &existing[kind]);
		if (ret < 0) {
			log_err("nftables: cannot list table %s: %s", n->cfg->table,
				strerror(-ret));
			goto out;
		}
	}

	t = nftnl_table_alloc();
	if (!t) {
		ret = -ENOMEM;
		goto out;
	}
	batch_begin(n, &bt);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, n->cfg->table);
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	nftnl_table_set_data(t, NFTNL_TABLE_USERDATA, TABLE_MARK, sizeof(TABLE_MARK));
	nlh = batch_msg(n, &bt, NFT_MSG_NEWTABLE, NLM_F_CREATE);
	nftnl_table_nlmsg_build_payload(nlh, t);
	batch_next(&bt);

	if (probe.exists) {
		/* all in one transaction: flush every rule, drop what the
		 * configuration no longer has, then add the new rules; set
		 * contents (bindings, windows) are kept */
		struct nftnl_rule *flush = nftnl_rule_alloc();

		if (!flush) {
			ret = -ENOMEM;
			mnl_nlmsg_batch_stop(bt.b);
			goto out;
		}
		nftnl_rule_set_str(flush, NFTNL_RULE_TABLE, n->cfg->table);
		nftnl_rule_set_u32(flush, NFTNL_RULE_FAMILY, NFPROTO_INET);
		nlh = batch_msg(n, &bt, NFT_MSG_DELRULE, 0);
		nftnl_rule_nlmsg_build_payload(nlh, flush);
		batch_next(&bt);
		nftnl_rule_free(flush);
		for (int kind = 0; kind < 3; kind++) {
			static const uint16_t del[] = {
				NFT_MSG_DELCHAIN, NFT_MSG_DELSET, NFT_MSG_DELOBJ,
			};
			static const uint16_t name_attr[] = {
				NFTA_CHAIN_NAME, NFTA_SET_NAME, NFTA_OBJ_NAME,
			};
			static const uint16_t table_attr[] = {
				NFTA_CHAIN_TABLE, NFTA_SET_TABLE, NFTA_OBJ_TABLE,
			};

			for (size_t i = 0; i < existing[kind].n; i++) {
				if (wanted(existing[kind].names[i], want, n_want))
					continue;
				nlh = batch_msg(n, &bt, del[kind], 0);
				mnl_attr_put_strz(nlh, table_attr[kind], n->cfg->table);
				mnl_attr_put_strz(nlh, name_attr[kind], existing[kind].names[i]);
				if (kind == 2)
					mnl_attr_put_u32(nlh, NFTA_OBJ_TYPE,
							 htonl(NFT_OBJECT_COUNTER));
				batch_next(&bt);
			}
		}
	}
	ret = put_set(n, &bt, "quarantine4", AF_INET, false, NFT_SET_INTERVAL, 0) |
	      put_set(n, &bt, "quarantine6", AF_INET6, false, NFT_SET_INTERVAL, 0) |
	      put_chain(n, &bt, "prerouting", true);
	/* choreod's own DNS addresses may sit inside a pool: never NAT them */
	for (size_t i = 0; !ret && i < n->cfg->n_listen; i++) {
		struct addr_prefix host = { 0 };
		struct nftnl_rule *r;

		if (addr_from_sockaddr((const struct sockaddr *)&n->cfg->listen[i],
				       &host.family, host.bytes) < 0)
			continue;
		host.len = (uint8_t)(addr_family_size(host.family) * 8);
		r = rule_new(n->cfg, "prerouting", host.family);
		ret = put_rule(n, &bt, r, r ? e_prefix(r, &host) || e_verdict(r, NF_ACCEPT, NULL) : 0);
	}
	for (size_t s = 0; !ret && s < n->cfg->n_services; s++) {
		ret = put_service(n, &bt, s, AF_INET);
		if (!ret && n->cfg->services[s].has_pool6)
			ret = put_service(n, &bt, s, AF_INET6);
	}
	if (ret) {
		mnl_nlmsg_batch_stop(bt.b);
		goto out;
	}
	ret = batch_send(n, &bt);
	if (ret < 0)
		log_err("nftables: cannot %s table inet %s: %s%s",
			probe.exists ? "update" : "create", n->cfg->table,
			strerror(-ret), ret == -EEXIST ?
			" (a set changed its definition, e.g. max_bindings: "
			"remove the table with choreoctl remove-table)" : "");
	else
		log_info("nftables: table inet %s %s", n->cfg->table,
			 probe.exists ? "adopted: sets kept, rules replaced atomically" :
					"created");
out:
	if (t)
		nftnl_table_free(t);
	for (int kind = 0; kind < 3; kind++)
		free(existing[kind].names);
	free(want);
	return ret;
}

/* ---- life cycle -------------------------------------------------------------- */

static int socket_open(struct nat *n)
{
	struct timeval tv = { .tv_sec = ACK_TIMEOUT_S };
	int size = 4 << 20;

	n->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!n->nl)
		return -errno;
	if (mnl_socket_bind(n->nl, 0, MNL_SOCKET_AUTOPID) < 0)
		return -errno;
	n->portid = mnl_socket_get_portid(n->nl);
	/* never wait for the kernel forever: a stuck commit is a failed one */
	setsockopt(mnl_socket_get_fd(n->nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(mnl_socket_get_fd(n->nl), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
	return 0;
}

int nat_open(const struct config *cfg, struct nat **out)
{
	struct nat *n = calloc(1, sizeof(*n));
	int ret;

	*out = NULL;
	if (!n)
		return -ENOMEM;
	n->cfg = cfg;
	n->seq = (uint32_t)time(NULL);
	n->buf = calloc(1, BATCH_BUF); /* zeroed: padding is sent as is */
	n->rbuf = malloc(RECV_BUF);
	if (!n->buf || !n->rbuf) {
		ret = -ENOMEM;
		goto fail;
	}
	ret = socket_open(n);
	if (ret < 0) {
		log_err("nftables: netlink socket: %s", strerror(-ret));
		goto fail;
	}
	ret = install(n);
	if (ret < 0)
		goto fail;
	ret = counter_start(n);
	if (ret < 0) {
		log_err("cannot start the set counter thread: %s", strerror(-ret));
		goto fail;
	}
	*out = n;
	return 0;
fail:
	nat_close(n);
	return ret;
}

void nat_close(struct nat *n)
{
	if (!n)
		return;
	counter_stop(n->counter);
	if (n->nl)
		mnl_socket_close(n->nl);
	free(n->buf);
	free(n->rbuf);
	free(n);
}

/* ---- commits ------------------------------------------------------------------ */

static const char *change_set(const struct change *c)
{
	switch (c->kind) {
	case CHANGE_BIND: return "asked";
	case CHANGE_OPEN: return "open";
	case CHANGE_OPEN_SCOPED: return "scoped";
	}
	return NULL;
}

static struct nftnl_set_elem *change_elem(const struct change *c)
{
	struct nftnl_set_elem *e = nftnl_set_elem_alloc();
	size_t alen = addr_family_size(c->family);

	if (!e)
		return NULL;
	if (c->kind == CHANGE_OPEN) {
		nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, c->addr, (uint32_t)alen);
	} else {
		uint8_t key[32];

		memcpy(key, c->src, alen);
		memcpy(key + alen, c->addr, alen);
		nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, (uint32_t)(2 * alen));
		if (c->kind == CHANGE_OPEN_SCOPED) {
			uint8_t end[32];

			/* the subnet as a range: first to last address */
			memcpy(end, key, 2 * alen);
			for (unsigned bit = c->src_len; bit < alen * 8; bit++)
				end[bit / 8] |= (uint8_t)(0x80 >> (bit % 8));
			nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY_END, end,
					   (uint32_t)(2 * alen));
		}
	}
	/*
	 * The expiration too: re-adding an element with the same timeout keeps
	 * its old expiry, and an address re-used at max_open must stay open a
	 * full window after the answer that re-used it.
	 */
	nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_TIMEOUT, (uint64_t)c->ms);
	nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_EXPIRATION, (uint64_t)c->ms);
	return e;
}

int nat_commit(void *nat, const struct change *c, size_t count)
{
	struct nat *n = nat;
	struct batch bt;
	uint64_t start = latency_now_us();
	bool *done;
	int ret = 0;

	if (count == 0)
		return 0;
	done = calloc(count, sizeof(*done));
	if (!done)
		return -ENOMEM;
	batch_begin(n, &bt);
	/* one NEWSETELEM message per set, holding all its elements */
	for (size_t i = 0; i < count && !ret; i++) {
		char name[NAME_MAX_LEN];
		struct nftnl_set *s;
		struct nlmsghdr *nlh;

		if (done[i])
			continue;
		if (c[i].service >= n->cfg->n_services || !change_set(&c[i]) ||
		    (c[i].family != AF_INET && c[i].family != AF_INET6)) {
			ret = -EINVAL;
			break;
		}
		s = nftnl_set_alloc();
		if (!s) {
			ret = -ENOMEM;
			break;
		}
		set_name(name, n->cfg, c[i].service, c[i].family, change_set(&c[i]));
		nftnl_set_set_str(s, NFTNL_SET_TABLE, n->cfg->table);
		nftnl_set_set_str(s, NFTNL_SET_NAME, name);
		for (size_t k = i; k < count; k++) {
			struct nftnl_set_elem *e;

			if (done[k] || c[k].kind != c[i].kind ||
			    c[k].service != c[i].service || c[k].family != c[i].family)
				continue;
			e = change_elem(&c[k]);
			if (!e) {
				ret = -ENOMEM;
				break;
			}
			nftnl_set_elem_add(s, e);
			done[k] = true;
			n->stats.elements++;
		}
		nlh = batch_msg(n, &bt, NFT_MSG_NEWSETELEM, NLM_F_CREATE);
		nftnl_set_elems_nlmsg_build_payload(nlh, s);
		batch_next(&bt);
		nftnl_set_free(s);
	}
	free(done);
	if (ret)
		mnl_nlmsg_batch_stop(bt.b);
	else
		ret = batch_send(n, &bt);
	n->stats.commits++;
	if (ret) {
		n->stats.failures++;
		if (ret == -ENOENT)
			n->need_repair = true;
	} else
		latency_record(&n->latency, latency_now_us() - start);
	return ret;
}

void nat_get_stats(const struct nat *n, struct nat_stats *st)
{
	*st = n->stats;
	latency_summarise(&n->latency, &st->latency);
}

/* ---- reading state back ------------------------------------------------------- */

struct counter_read {
	const char *table;
	char names[4][NAME_MAX_LEN];
	uint64_t *values[4];
	unsigned found;
};

static int counter_cb(const struct nlmsghdr *nlh, void *ctx)
{
	struct counter_read *cr = ctx;
	struct nftnl_obj *o = nftnl_obj_alloc();
	const char *table, *name;

	if (!o)
		return -ENOMEM;
	if (nftnl_obj_nlmsg_parse(nlh, o) == 0 &&
	    (table = nftnl_obj_get_str(o, NFTNL_OBJ_TABLE)) &&
	    (name = nftnl_obj_get_str(o, NFTNL_OBJ_NAME)) &&
	    strcmp(table, cr->table) == 0) {
		for (int i = 0; i < 4; i++) {
			if (strcmp(name, cr->names[i]) == 0) {
				*cr->values[i] = nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_PKTS);
				cr->found++;
			}
		}
	}
	nftnl_obj_free(o);
	return 0;
}

int nat_read_counters(struct nat *n, size_t service, int family,
		      struct nat_counters *out)
{
	struct counter_read cr = { .table = n->cfg->table };
	char req[REQ_BUF] = { 0 };
	struct nlmsghdr *nlh;
	struct nftnl_obj *o;
	int ret;

	if (service >= n->cfg->n_services)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	set_name(cr.names[0], n->cfg, service, family, "server");
	set_name(cr.names[1], n->cfg, service, family, "honeypot");
	set_name(cr.names[2], n->cfg, service, family, "learned");
	set_name(cr.names[3], n->cfg, service, family, "window");
	cr.values[0] = &out->server;
	cr.values[1] = &out->honeypot;
	cr.values[2] = &out->learned;
	cr.values[3] = &out->via_window;
	nlh = nftnl_nlmsg_build_hdr(req, NFT_MSG_GETOBJ, NFPROTO_INET,
				    NLM_F_DUMP | NLM_F_ACK, n->seq++);
	o = nftnl_obj_alloc();
	if (!o)
		return -ENOMEM;
	nftnl_obj_set_str(o, NFTNL_OBJ_TABLE, n->cfg->table);
	nftnl_obj_set_u32(o, NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
	nftnl_obj_nlmsg_build_payload(nlh, o);
	nftnl_obj_free(o);
	ret = dump(n, nlh, counter_cb, &cr);
	if (ret < 0)
		return ret;
	return cr.found == 4 ? 0 : -ENOENT;
}

struct elem_walk {
	int family;
	long count;
	/* for (source . address) keys */
	void (*fn)(void *ctx, const uint8_t src[16], const uint8_t addr[16],
		   uint64_t ms_left);
	/* for address keys */
	void (*fn_addr)(void *ctx, const uint8_t addr[16], uint64_t ms_left);
	void *ctx;
};

static int elem_cb(const struct nlmsghdr *nlh, void *ctx)
{
	struct elem_walk *w = ctx;
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_set_elems_iter *it;
	struct nftnl_set_elem *e;
	size_t alen = addr_family_size(w->family);

	if (!s)
		return -ENOMEM;
	if (nftnl_set_elems_nlmsg_parse(nlh, s) < 0) {
		nftnl_set_free(s);
		return 0;
	}
	it = nftnl_set_elems_iter_create(s);
	if (!it) {
		nftnl_set_free(s);
		return -ENOMEM;
	}
	while ((e = nftnl_set_elems_iter_next(it))) {
		uint32_t klen = 0;
		const uint8_t *key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &klen);

		w->count++;
		if (w->fn_addr && key && klen == alen) {
			uint8_t addr[16] = { 0 };

			memcpy(addr, key, alen);
			w->fn_addr(w->ctx, addr,
				   nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_EXPIRATION));
		}
		if (w->fn && key && klen == 2 * alen) {
			uint8_t src[16] = { 0 }, addr[16] = { 0 };
			uint64_t left = nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_EXPIRATION);

			memcpy(src, key, alen);
			memcpy(addr, key + alen, alen);
			w->fn(w->ctx, src, addr, left);
		}
	}
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
	return 0;
}

/* Counting only: walk the raw attributes, no per-element allocation (a
 * binding set may hold millions). */
static int count_cb(const struct nlmsghdr *nlh, void *ctx)
{
	struct elem_walk *w = ctx;
	const struct nlattr *attr, *elem;

	mnl_attr_for_each(attr, nlh, sizeof(struct nfgenmsg)) {
		if (mnl_attr_get_type(attr) != NFTA_SET_ELEM_LIST_ELEMENTS)
			continue;
		mnl_attr_for_each_nested(elem, attr)
			if (mnl_attr_get_type(elem) == NFTA_LIST_ELEM)
				w->count++;
	}
	return 0;
}

static long walk_set(struct nat *n, size_t service, int family, const char *kind,
		     struct elem_walk *w)
{
	char req[REQ_BUF] = { 0 }, name[NAME_MAX_LEN];
	struct nlmsghdr *nlh;
	struct nftnl_set *s;
	int ret;

	if (service >= n->cfg->n_services)
		return -EINVAL;
	set_name(name, n->cfg, service, family, kind);
	s = nftnl_set_alloc();
	if (!s)
		return -ENOMEM;
	nftnl_set_set_str(s, NFTNL_SET_TABLE, n->cfg->table);
	nftnl_set_set_str(s, NFTNL_SET_NAME, name);
	nlh = nftnl_nlmsg_build_hdr(req, NFT_MSG_GETSETELEM, NFPROTO_INET,
				    NLM_F_DUMP | NLM_F_ACK, n->seq++);
	nftnl_set_elems_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	w->family = family;
	ret = dump(n, nlh, w->fn || w->fn_addr ? elem_cb : count_cb, w);
	return ret < 0 ? ret : w->count;
}

long nat_count_set(struct nat *n, size_t service, int family, const char *kind)
{
	struct elem_walk w = { 0 };

	return walk_set(n, service, family, kind, &w);
}

long nat_foreach_binding(struct nat *n, size_t service, int family,
			 void (*fn)(void *ctx, const uint8_t src[16],
				    const uint8_t addr[16], uint64_t ms_left),
			 void *ctx)
{
	struct elem_walk w = { .fn = fn, .ctx = ctx };

	return walk_set(n, service, family, "bound", &w);
}

long nat_foreach_open(struct nat *n, size_t service, int family,
		      void (*fn)(void *ctx, const uint8_t addr[16], uint64_t ms_left),
		      void *ctx)
{
	struct elem_walk w = { .fn_addr = fn, .ctx = ctx };

	return walk_set(n, service, family, "open", &w);
}

/* Clients let in by a window for whom the kernel could not learn a binding
 * (the set was full): warn when their number grows. */
static void check_binding_sets(struct nat *n)
{
	for (size_t i = 0; i < n->cfg->n_services && i < NAT_MAX_TRACKED; i++) {
		for (int f = 0; f < 2; f++) {
			int family = f ? AF_INET6 : AF_INET;
			struct nat_counters k;
			uint64_t misses;

			if ((f && !n->cfg->services[i].has_pool6) ||
			    nat_read_counters(n, i, family, &k) < 0)
				continue;
			misses = k.via_window > k.learned ? k.via_window - k.learned : 0;
			if (misses > n->misses[i][f])
				log_warn("[service %s]: the %s binding set is full "
					 "(max_bindings %u): %llu clients got in without "
					 "a binding; raise max_bindings",
					 n->cfg->services[i].section, f ? "IPv6" : "IPv4",
					 n->cfg->services[i].max_bindings,
					 (unsigned long long)(misses - n->misses[i][f]));
			n->misses[i][f] = misses;
		}
	}
}

void nat_tick(struct nat *n, uint64_t now_ms)
{
	long count, max;
	FILE *f;

	/* the table was removed or flushed from outside (nft flush ruleset):
	 * put it back, or every answer would stay SERVFAIL */
	if (n->need_repair && now_ms - n->last_repair_ms >= 1000) {
		n->last_repair_ms = now_ms;
		log_warn("nftables: the gateway's table is missing or damaged; "
			 "installing it again");
		if (install(n) == 0)
			n->need_repair = false;
	}
	if (now_ms - n->last_conntrack_ms < 10000)
		return;
	n->last_conntrack_ms = now_ms;
	count = max = -1;
	if ((f = fopen("/proc/sys/net/netfilter/nf_conntrack_count", "re"))) {
		if (fscanf(f, "%ld", &count) != 1)
			count = -1;
		fclose(f);
	}
	if ((f = fopen("/proc/sys/net/netfilter/nf_conntrack_max", "re"))) {
		if (fscanf(f, "%ld", &max) != 1)
			max = -1;
		fclose(f);
	}
	if (count >= 0 && max > 0 && count * 10 >= max * 9)
		log_warn("conntrack table at %ld of %ld entries: new connections "
			 "will be dropped when it is full; raise "
			 "net.netfilter.nf_conntrack_max (see choreod(8))", count, max);
	check_binding_sets(n);
}

static const char *const count_kinds[3] = { "bound", "asked", "open" };

static void *counter_main(void *arg)
{
	struct counter_thread *ct = arg;
	const struct config *cfg = ct->reader->cfg;

	pthread_mutex_lock(&ct->lock);
	for (;;) {
		long counts[NAT_MAX_TRACKED][2][3];

		while (!ct->requested && !ct->stop)
			pthread_cond_wait(&ct->wake, &ct->lock);
		if (ct->stop)
			break;
		ct->requested = false;
		pthread_mutex_unlock(&ct->lock);
		for (size_t i = 0; i < cfg->n_services && i < NAT_MAX_TRACKED; i++)
			for (int f = 0; f < 2; f++)
				for (int k = 0; k < 3; k++)
					counts[i][f][k] = f && !cfg->services[i].has_pool6 ? -1 :
						nat_count_set(ct->reader, i, f ? AF_INET6 : AF_INET,
							      count_kinds[k]);
		pthread_mutex_lock(&ct->lock);
		memcpy(ct->counts, counts, sizeof(counts));
		ct->counted_ms = log_now_ms();
		ct->generation++;
		pthread_cond_broadcast(&ct->done);
	}
	pthread_mutex_unlock(&ct->lock);
	return NULL;
}

int nat_open_reader(const struct config *cfg, struct nat **out)
{
	struct nat *r = calloc(1, sizeof(*r));
	int ret;

	*out = NULL;
	if (!r)
		return -ENOMEM;
	r->cfg = cfg;
	r->seq = (uint32_t)time(NULL) ^ 0x40000000u;
	r->buf = calloc(1, BATCH_BUF); /* zeroed: padding is sent as is */
	r->rbuf = malloc(RECV_BUF);
	ret = r->buf && r->rbuf ? socket_open(r) : -ENOMEM;
	if (ret < 0) {
		nat_close(r);
		return ret;
	}
	/* a dump may take long: wait for it without the commit timeout */
	{
		struct timeval tv = { .tv_sec = 120 };

		setsockopt(mnl_socket_get_fd(r->nl), SOL_SOCKET, SO_RCVTIMEO,
			   &tv, sizeof(tv));
	}
	*out = r;
	return 0;
}

static int counter_start(struct nat *n)
{
	struct counter_thread *ct = calloc(1, sizeof(*ct));
	int ret;

	if (!ct)
		return -ENOMEM;
	memset(ct->counts, 0xff, sizeof(ct->counts)); /* -1: not counted yet */
	ret = nat_open_reader(n->cfg, &ct->reader);
	if (ret < 0) {
		free(ct);
		return ret;
	}
	pthread_mutex_init(&ct->lock, NULL);
	pthread_cond_init(&ct->wake, NULL);
	pthread_cond_init(&ct->done, NULL);
	ret = -pthread_create(&ct->thread, NULL, counter_main, ct);
	if (ret) {
		pthread_mutex_destroy(&ct->lock);
		pthread_cond_destroy(&ct->wake);
		pthread_cond_destroy(&ct->done);
		nat_close(ct->reader);
		free(ct);
		return ret;
	}
	n->counter = ct;
	return 0;
}

static void counter_stop(struct counter_thread *ct)
{
	if (!ct)
		return;
	pthread_mutex_lock(&ct->lock);
	ct->stop = true;
	pthread_cond_signal(&ct->wake);
	pthread_mutex_unlock(&ct->lock);
	pthread_join(ct->thread, NULL);
	pthread_mutex_destroy(&ct->lock);
	pthread_cond_destroy(&ct->wake);
	pthread_cond_destroy(&ct->done);
	nat_close(ct->reader);
	free(ct);
}

int nat_set_counts(struct nat *n, size_t service, int family, unsigned wait_ms,
		   struct nat_set_counts *out)
{
	struct counter_thread *ct = n->counter;
	struct timespec deadline;
	uint64_t gen;
	int f = family == AF_INET6;

	memset(out, 0xff, sizeof(*out));
	if (!ct || service >= NAT_MAX_TRACKED || service >= n->cfg->n_services)
		return -ENOENT;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
	deadline.tv_sec += wait_ms / 1000 + deadline.tv_nsec / 1000000000L;
	deadline.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&ct->lock);
	gen = ct->generation;
	ct->requested = true;
	pthread_cond_signal(&ct->wake);
	/* a fresh count if it comes quickly, else the last one */
	while (ct->generation == gen && wait_ms &&
	       pthread_cond_timedwait(&ct->done, &ct->lock, &deadline) == 0)
		;
	out->bound = ct->counts[service][f][0];
	out->asked = ct->counts[service][f][1];
	out->open = ct->counts[service][f][2];
	out->age_ms = ct->generation ? log_now_ms() - ct->counted_ms : 0;
	out->fresh = ct->generation != gen;
	pthread_mutex_unlock(&ct->lock);
	return 0;
}

int nat_remove_table(const char *table)
{
	struct config cfg = { .table = (char *)table };
	struct nat n = { .cfg = &cfg, .seq = (uint32_t)time(NULL) };
	struct table_probe probe = { 0 };
	struct batch bt;
	int ret;

	n.buf = calloc(1, BATCH_BUF); /* zeroed: padding is sent as is */
	n.rbuf = malloc(RECV_BUF);
	ret = n.buf && n.rbuf ? socket_open(&n) : -ENOMEM;
	if (!ret)
		ret = probe_table(&n, table, &probe);
	if (!ret && !probe.exists)
		ret = -ENOENT;
	else if (!ret && !probe.ours)
		ret = -EPERM; /* not ours: never touched */
	if (!ret) {
		struct nlmsghdr *nlh;

		batch_begin(&n, &bt);
		nlh = batch_msg(&n, &bt, NFT_MSG_DELTABLE, 0);
		mnl_attr_put_strz(nlh, NFTA_TABLE_NAME, table);
		batch_next(&bt);
		ret = batch_send(&n, &bt);
	}
	if (n.nl)
		mnl_socket_close(n.nl);
	free(n.buf);
	free(n.rbuf);
	return ret;
}
