// SPDX-License-Identifier: MIT
#include "nft_expr.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <libnftnl/expr.h>

#include "addr.h"

/* Each adds one or more expressions to r; false when an allocation failed. */

static bool expr(struct nftnl_rule *r, struct nftnl_expr *e)
{
	if (!e)
		return false;
	nftnl_rule_add_expr(r, e);
	return true;
}

static bool e_cmp_eq(struct nftnl_rule *r, const void *data, uint32_t len)
{
	struct nftnl_expr *c = nftnl_expr_alloc("cmp");

	if (c) {
		nftnl_expr_set_u32(c, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
		nftnl_expr_set_u32(c, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
		nftnl_expr_set(c, NFTNL_EXPR_CMP_DATA, data, len);
	}
	return expr(r, c);
}

static bool e_nfproto(struct nftnl_rule *r, int family)
{
	uint8_t proto = family == AF_INET ? NFPROTO_IPV4 : NFPROTO_IPV6;
	struct nftnl_expr *e = nftnl_expr_alloc("meta");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, NFT_META_NFPROTO);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
	}
	return expr(r, e) && e_cmp_eq(r, &proto, sizeof(proto));
}

/* The source or destination address of the network header into dreg. */
static bool e_addr(struct nftnl_rule *r, int family, bool src, uint32_t dreg)
{
	struct nftnl_expr *e = nftnl_expr_alloc("payload");
	uint32_t off = family == AF_INET ? (src ? 12 : 16) : (src ? 8 : 24);

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, NFT_PAYLOAD_NETWORK_HEADER);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN,
				   (uint32_t)addr_family_size(family));
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
	}
	return expr(r, e);
}

/* (source . destination) into consecutive registers, as a set key. */
static bool e_pair(struct nftnl_rule *r, int family)
{
	return e_addr(r, family, true, NFT_REG_1) &&
	       e_addr(r, family, false, family == AF_INET ? NFT_REG32_01 : NFT_REG_2);
}

static bool e_prefix(struct nftnl_rule *r, const struct addr_prefix *p)
{
	uint32_t len = (uint32_t)addr_family_size(p->family);
	uint8_t mask[16] = { 0 };
	struct nftnl_expr *b;

	if (!e_addr(r, p->family, false, NFT_REG_1))
		return false;
	memset(mask, 0xff, len);
	addr_mask(p->family, mask, p->len);
	b = nftnl_expr_alloc("bitwise");
	if (b) {
		static const uint8_t zero[16];

		nftnl_expr_set_u32(b, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
		nftnl_expr_set_u32(b, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
		nftnl_expr_set_u32(b, NFTNL_EXPR_BITWISE_LEN, len);
		nftnl_expr_set(b, NFTNL_EXPR_BITWISE_MASK, mask, len);
		nftnl_expr_set(b, NFTNL_EXPR_BITWISE_XOR, zero, len);
	}
	return expr(r, b) && e_cmp_eq(r, p->bytes, len);
}

static bool e_lookup(struct nftnl_rule *r, const char *set)
{
	struct nftnl_expr *e = nftnl_expr_alloc("lookup");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
		nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
	}
	return expr(r, e);
}

static bool e_dynset(struct nftnl_rule *r, uint32_t op, const char *set,
		     uint64_t timeout_ms)
{
	struct nftnl_expr *e = nftnl_expr_alloc("dynset");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_SREG_KEY, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_OP, op);
		nftnl_expr_set_str(e, NFTNL_EXPR_DYNSET_SET_NAME, set);
		nftnl_expr_set_u64(e, NFTNL_EXPR_DYNSET_TIMEOUT, timeout_ms);
	}
	return expr(r, e);
}

/*
 * Add the destination to set with a per-element limit of burst packets
 * (refilled once a day: not within a window): the element's first burst
 * new connections pass, the next ones stop the rule. The limit is taken
 * under the element's lock, so two connections on two CPUs cannot both
 * take the last claim.
 */
static bool e_claim(struct nftnl_rule *r, int family, const char *set,
		    uint32_t burst, uint64_t timeout_ms)
{
	struct nftnl_expr *d, *l;

	if (!e_addr(r, family, false, NFT_REG_1))
		return false;
	d = nftnl_expr_alloc("dynset");
	l = nftnl_expr_alloc("limit");
	if (!d || !l) {
		if (d)
			nftnl_expr_free(d);
		if (l)
			nftnl_expr_free(l);
		return false;
	}
	nftnl_expr_set_u64(l, NFTNL_EXPR_LIMIT_RATE, 1);
	nftnl_expr_set_u64(l, NFTNL_EXPR_LIMIT_UNIT, 86400);
	nftnl_expr_set_u32(l, NFTNL_EXPR_LIMIT_BURST, burst);
	nftnl_expr_set_u32(l, NFTNL_EXPR_LIMIT_TYPE, NFT_LIMIT_PKTS);
	nftnl_expr_set_u32(l, NFTNL_EXPR_LIMIT_FLAGS, 0);
	nftnl_expr_set_u32(d, NFTNL_EXPR_DYNSET_SREG_KEY, NFT_REG_1);
	nftnl_expr_set_u32(d, NFTNL_EXPR_DYNSET_OP, NFT_DYNSET_OP_ADD);
	nftnl_expr_set_str(d, NFTNL_EXPR_DYNSET_SET_NAME, set);
	nftnl_expr_set_u64(d, NFTNL_EXPR_DYNSET_TIMEOUT, timeout_ms);
	nftnl_expr_add_expr(d, NFTNL_EXPR_DYNSET_EXPRESSIONS, l);
	return expr(r, d);
}

static bool e_counter(struct nftnl_rule *r, const char *name)
{
	struct nftnl_expr *e = nftnl_expr_alloc("objref");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_OBJREF_IMM_TYPE, NFT_OBJECT_COUNTER);
		nftnl_expr_set_str(e, NFTNL_EXPR_OBJREF_IMM_NAME, name);
	}
	return expr(r, e);
}

static bool e_dnat(struct nftnl_rule *r, int family, const uint8_t *to)
{
	struct nftnl_expr *imm = nftnl_expr_alloc("immediate");
	struct nftnl_expr *nat;

	if (imm) {
		nftnl_expr_set_u32(imm, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
		nftnl_expr_set(imm, NFTNL_EXPR_IMM_DATA, to,
			       (uint32_t)addr_family_size(family));
	}
	if (!expr(r, imm))
		return false;
	nat = nftnl_expr_alloc("nat");
	if (nat) {
		nftnl_expr_set_u32(nat, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
		nftnl_expr_set_u32(nat, NFTNL_EXPR_NAT_FAMILY,
				   family == AF_INET ? NFPROTO_IPV4 : NFPROTO_IPV6);
		nftnl_expr_set_u32(nat, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
	}
	return expr(r, nat);
}

/* The packet's first snaplen bytes to NFLOG group, with prefix (for
 * nfnetlink_log: a group, never a syslog level). */
static bool e_log(struct nftnl_rule *r, const struct gw_act *a)
{
	struct nftnl_expr *e = nftnl_expr_alloc("log");

	if (e) {
		nftnl_expr_set_str(e, NFTNL_EXPR_LOG_PREFIX, a->name);
		nftnl_expr_set_u16(e, NFTNL_EXPR_LOG_GROUP, a->group);
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOG_SNAPLEN, a->snaplen);
	}
	return expr(r, e);
}

/* A verdict: accept, or jump to chain. */
static bool e_verdict(struct nftnl_rule *r, int verdict, const char *chain)
{
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
		if (chain)
			nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain);
	}
	return expr(r, e);
}

static bool e_match(struct nftnl_rule *r, int family, const struct gw_match *m)
{
	switch (m->kind) {
	case GW_M_SRC_IN:
		return e_addr(r, family, true, NFT_REG_1) && e_lookup(r, m->set);
	case GW_M_DST_IN:
		return e_addr(r, family, false, NFT_REG_1) && e_lookup(r, m->set);
	case GW_M_PAIR_IN:
		return e_pair(r, family) && e_lookup(r, m->set);
	case GW_M_DST_PREFIX:
		return e_prefix(r, &m->prefix);
	}
	return false;
}

static bool e_act(struct nftnl_rule *r, int family, const struct gw_act *a)
{
	switch (a->kind) {
	case GW_A_ADD:
	case GW_A_UPDATE:
		/* the key is always (source . destination) */
		return e_pair(r, family) &&
		       e_dynset(r, a->kind == GW_A_ADD ? NFT_DYNSET_OP_ADD :
							 NFT_DYNSET_OP_UPDATE,
				a->name, a->timeout_ms);
	case GW_A_CLAIM:
		return e_claim(r, family, a->name, a->burst, a->timeout_ms);
	case GW_A_COUNTER:
		return e_counter(r, a->name);
	case GW_A_DNAT:
		return e_dnat(r, family, a->addr);
	case GW_A_JUMP:
		return e_verdict(r, NFT_JUMP, a->name);
	case GW_A_ACCEPT:
		return e_verdict(r, NF_ACCEPT, NULL);
	case GW_A_LOG:
		return e_log(r, a);
	}
	return false;
}

bool nft_rule_exprs(struct nftnl_rule *r, const struct gw_rule *gr)
{
	bool ok = e_nfproto(r, gr->family);

	for (size_t i = 0; ok && i < gr->n_match; i++)
		ok = e_match(r, gr->family, &gr->match[i]);
	for (size_t i = 0; ok && i < gr->n_act; i++)
		ok = e_act(r, gr->family, &gr->act[i]);
	return ok;
}
