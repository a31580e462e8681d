// SPDX-License-Identifier: MIT
/* nft.h's dumps: each a request and its replies, on the caller's socket. */
#include "nft.h"

#include <endian.h>
#include <errno.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/object.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#include "nft_impl.h"

/* ---- dumps -------------------------------------------------------------------------------- */

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

		if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
			return -EBADMSG;
		return e->error ? e->error : 1;
	}
	return d->cb(nlh, d->ctx) < 0 ? -ENOMEM : 1;
}

/* Send a dump request (built in req by build) and feed each reply to cb. */
static int dump(struct nft *n, uint16_t type, void (*build)(struct nlmsghdr *, const void *),
		const void *arg, dump_cb cb, void *ctx)
{
	char req[REQ_BUF] = { 0 };
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(req, type, NFPROTO_INET,
						     NLM_F_DUMP | NLM_F_ACK, n->seq++);
	struct dump_state d = { .seq = nlh->nlmsg_seq, .cb = cb, .ctx = ctx };

	if (build)
		build(nlh, arg);
	if (mnl_socket_sendto(n->nl, req, nlh->nlmsg_len) < 0)
		return -errno;
	return nft_recv(n, on_dump, &d);
}

struct probe {
	const char *table, *mark;
	bool exists, ours;
};

static int probe_cb(const struct nlmsghdr *nlh, void *ctx)
{
	struct probe *p = ctx;
	struct nftnl_table *t = nftnl_table_alloc();
	const char *name;
	const void *udata;
	uint32_t len = 0;

	if (!t)
		return -ENOMEM;
	if (nftnl_table_nlmsg_parse(nlh, t) == 0 &&
	    (name = nftnl_table_get_str(t, NFTNL_TABLE_NAME)) &&
	    strcmp(name, p->table) == 0 &&
	    nftnl_table_get_u32(t, NFTNL_TABLE_FAMILY) == NFPROTO_INET) {
		p->exists = true;
		udata = nftnl_table_get_data(t, NFTNL_TABLE_USERDATA, &len);
		p->ours = udata && len == strlen(p->mark) + 1 &&
			  memcmp(udata, p->mark, len) == 0;
	}
	nftnl_table_free(t);
	return 0;
}

int nft_probe_table(struct nft *n, const char *table, const char *mark,
		    bool *exists, bool *ours)
{
	struct probe p = { .table = table, .mark = mark };
	int ret = dump(n, NFT_MSG_GETTABLE, NULL, NULL, probe_cb, &p);

	*exists = p.exists;
	*ours = p.ours;
	return ret;
}

struct names {
	const char *table;
	enum gw_obj_type type;
	int (*fn)(void *ctx, const char *name);
	void *ctx;
};

static int names_cb(const struct nlmsghdr *nlh, void *ctx)
{
	struct names *l = ctx;
	const char *table = NULL, *name = NULL;
	struct nftnl_chain *c = NULL;
	struct nftnl_set *s = NULL;
	struct nftnl_obj *o = NULL;
	int ret = 0;

	if (l->type == GW_TYPE_CHAIN && (c = nftnl_chain_alloc()) &&
	    nftnl_chain_nlmsg_parse(nlh, c) == 0) {
		table = nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE);
		name = nftnl_chain_get_str(c, NFTNL_CHAIN_NAME);
	} else if (l->type == GW_TYPE_SET && (s = nftnl_set_alloc()) &&
		   nftnl_set_nlmsg_parse(nlh, s) == 0) {
		table = nftnl_set_get_str(s, NFTNL_SET_TABLE);
		name = nftnl_set_get_str(s, NFTNL_SET_NAME);
	} else if (l->type == GW_TYPE_COUNTER && (o = nftnl_obj_alloc()) &&
		   nftnl_obj_nlmsg_parse(nlh, o) == 0) {
		table = nftnl_obj_get_str(o, NFTNL_OBJ_TABLE);
		name = nftnl_obj_get_str(o, NFTNL_OBJ_NAME);
	} else if (!c && !s && !o) {
		ret = -ENOMEM;
	}
	if (table && name && strcmp(table, l->table) == 0)
		ret = l->fn(l->ctx, name);
	/* libnftnl's free functions do not take NULL */
	if (c)
		nftnl_chain_free(c);
	if (s)
		nftnl_set_free(s);
	if (o)
		nftnl_obj_free(o);
	return ret;
}

static void build_table_filter(struct nlmsghdr *nlh, const void *arg)
{
	struct nftnl_set *s = nftnl_set_alloc();

	/* a set dump needs the table; without memory the whole dump is asked */
	if (!s)
		return;
	nftnl_set_set_str(s, NFTNL_SET_TABLE, arg);
	nftnl_set_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
}

int nft_list_names(struct nft *n, const char *table, enum gw_obj_type type,
		   int (*fn)(void *ctx, const char *name), void *ctx)
{
	static const uint16_t msg[] = {
		[GW_TYPE_SET] = NFT_MSG_GETSET, [GW_TYPE_COUNTER] = NFT_MSG_GETOBJ,
		[GW_TYPE_CHAIN] = NFT_MSG_GETCHAIN,
	};
	struct names l = { .table = table, .type = type, .fn = fn, .ctx = ctx };

	return dump(n, msg[type], type == GW_TYPE_SET ? build_table_filter : NULL,
		    table, names_cb, &l);
}

struct counters {
	const char *table;
	void (*fn)(void *ctx, const char *name, uint64_t packets);
	void *ctx;
};

static int counters_cb(const struct nlmsghdr *nlh, void *ctx)
{
	struct counters *cr = ctx;
	struct nftnl_obj *o = nftnl_obj_alloc();
	const char *table, *name;

	if (!o)
		return -ENOMEM;
	if (nftnl_obj_nlmsg_parse(nlh, o) == 0 &&
	    nftnl_obj_get_u32(o, NFTNL_OBJ_TYPE) == NFT_OBJECT_COUNTER &&
	    (table = nftnl_obj_get_str(o, NFTNL_OBJ_TABLE)) &&
	    (name = nftnl_obj_get_str(o, NFTNL_OBJ_NAME)) &&
	    strcmp(table, cr->table) == 0)
		cr->fn(cr->ctx, name, nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_PKTS));
	nftnl_obj_free(o);
	return 0;
}

static void build_counter_filter(struct nlmsghdr *nlh, const void *arg)
{
	struct nftnl_obj *o = nftnl_obj_alloc();

	if (!o)
		return;
	nftnl_obj_set_str(o, NFTNL_OBJ_TABLE, arg);
	nftnl_obj_set_u32(o, NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
	nftnl_obj_nlmsg_build_payload(nlh, o);
	nftnl_obj_free(o);
}

int nft_dump_counters(struct nft *n, const char *table,
		      void (*fn)(void *ctx, const char *name, uint64_t packets),
		      void *ctx)
{
	struct counters cr = { .table = table, .fn = fn, .ctx = ctx };

	return dump(n, NFT_MSG_GETOBJ, build_counter_filter, table, counters_cb, &cr);
}

struct elems {
	long count;
	nft_elem_fn *fn;
	void *ctx;
};

static int elems_cb(const struct nlmsghdr *nlh, void *ctx)
{
	struct elems *w = ctx;
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_set_elems_iter *it;
	struct nftnl_set_elem *e;

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
		uint32_t klen = 0, elen = 0;
		const uint8_t *key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &klen);
		const uint8_t *end = nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_KEY_END) ?
			nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY_END, &elen) : NULL;

		w->count++;
		if (key)
			w->fn(w->ctx, key, klen, end && elen == klen ? end : NULL,
			      nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_EXPIRATION));
	}
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
	return 0;
}

/* Counting only: walk the raw attributes, no per-element allocation. */
static int count_cb(const struct nlmsghdr *nlh, void *ctx)
{
	struct elems *w = ctx;
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

struct set_ref {
	const char *table, *set;
};

static void build_set_filter(struct nlmsghdr *nlh, const void *arg)
{
	const struct set_ref *ref = arg;
	struct nftnl_set *s = nftnl_set_alloc();

	if (!s)
		return;
	nftnl_set_set_str(s, NFTNL_SET_TABLE, ref->table);
	nftnl_set_set_str(s, NFTNL_SET_NAME, ref->set);
	nftnl_set_elems_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
}

long nft_dump_elems(struct nft *n, const char *table, const char *set,
		    nft_elem_fn *fn, void *ctx)
{
	struct set_ref ref = { table, set };
	struct elems w = { .fn = fn, .ctx = ctx };
	int ret = dump(n, NFT_MSG_GETSETELEM, build_set_filter, &ref,
		       fn ? elems_cb : count_cb, &w);

	return ret < 0 ? ret : w.count;
}

/* ---- the ruleset generation, and the rules ------------------------------------------------ */

struct gen {
	uint32_t seq, id;
	bool got;
};

static int on_gen(const struct nlmsghdr *nlh, void *ctx)
{
	struct gen *g = ctx;
	const struct nlattr *attr;

	if (nlh->nlmsg_seq != g->seq)
		return 1;
	if (nlh->nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

		if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
			return -EBADMSG;
		return e->error ? e->error : 0; /* the acknowledgement ends it */
	}
	if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(struct nfgenmsg)))
		return -EBADMSG;
	mnl_attr_for_each(attr, nlh, sizeof(struct nfgenmsg)) {
		if (mnl_attr_get_type(attr) == NFTA_GEN_ID &&
		    mnl_attr_validate(attr, MNL_TYPE_U32) == 0) {
			g->id = ntohl(mnl_attr_get_u32(attr));
			g->got = true;
		}
	}
	return 1;
}

int nft_get_gen(struct nft *n, uint32_t *gen)
{
	char req[REQ_BUF] = { 0 };
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(req, NFT_MSG_GETGEN, AF_UNSPEC,
						     NLM_F_ACK, n->seq++);
	struct gen g = { .seq = nlh->nlmsg_seq };
	int ret;

	if (mnl_socket_sendto(n->nl, req, nlh->nlmsg_len) < 0)
		return -errno;
	ret = nft_recv(n, on_gen, &g);
	if (ret == 0 && !g.got)
		ret = -EBADMSG;
	if (ret == 0)
		*gen = g.id;
	return ret;
}

struct rules {
	const char *table;
	int (*fn)(void *ctx, const char *chain, uint64_t handle);
	void *ctx;
};

/* The table, chain and handle of a rule, read from its attributes (no
 * expression is parsed: this runs several times a second). */
static int rules_cb(const struct nlmsghdr *nlh, void *ctx)
{
	struct rules *r = ctx;
	const struct nlattr *attr;
	const char *table = NULL, *chain = NULL;
	uint64_t handle = 0;
	bool has_handle = false;

	if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(struct nfgenmsg)))
		return -EBADMSG;
	mnl_attr_for_each(attr, nlh, sizeof(struct nfgenmsg)) {
		switch (mnl_attr_get_type(attr)) {
		case NFTA_RULE_TABLE:
			if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
				table = mnl_attr_get_str(attr);
			break;
		case NFTA_RULE_CHAIN:
			if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
				chain = mnl_attr_get_str(attr);
			break;
		case NFTA_RULE_HANDLE:
			if (mnl_attr_validate(attr, MNL_TYPE_U64) == 0) {
				handle = be64toh(mnl_attr_get_u64(attr));
				has_handle = true;
			}
			break;
		default:
			break;
		}
	}
	if (!table || !chain || !has_handle || strcmp(table, r->table) != 0)
		return 0;
	return r->fn(r->ctx, chain, handle);
}

static void build_rule_filter(struct nlmsghdr *nlh, const void *arg)
{
	mnl_attr_put_strz(nlh, NFTA_RULE_TABLE, arg);
}

int nft_list_rules(struct nft *n, const char *table,
		   int (*fn)(void *ctx, const char *chain, uint64_t handle),
		   void *ctx)
{
	struct rules r = { .table = table, .fn = fn, .ctx = ctx };

	return dump(n, NFT_MSG_GETRULE, build_rule_filter, table, rules_cb, &r);
}
