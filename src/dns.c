// SPDX-License-Identifier: MIT
#include "dns.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <libknot/libknot.h>

#include "addr.h"
#include "config.h"
#include "zone.h"

#define ARENA_SIZE   (96 * 1024)
#define MAX_PUT      64  /* RRsets per section */
#define MAX_CHAIN    16  /* CNAME links followed */
#define MAX_TEMP     (MAX_CHAIN + 8)

/* Per-query bump allocator for libknot: reset before every query, so the
 * hot path does no malloc and nothing can leak. */
struct arena {
	size_t used;
	_Alignas(16) uint8_t buf[ARENA_SIZE];
};

struct put {
	const knot_rrset_t *rr;
	uint16_t hint;
};

struct section {
	struct put p[MAX_PUT];
	size_t n;
};

struct dns_ctx {
	const struct config *cfg;
	const struct zone *zone;
	struct rotor *rotor;
	struct dns_stats stats;
	knot_mm_t mm;
	struct arena arena;

	/* per query */
	struct section an, ns, ar;
	knot_rrset_t temp[MAX_TEMP]; /* synthesised RRsets */
	size_t n_temp;
	uint8_t temp_rdata[MAX_TEMP][32];
	uint8_t chain[MAX_CHAIN + 1][KNOT_DNAME_MAXLEN]; /* CNAME targets */
	bool aa;
	bool referral;
	int rcode;
};

static void *arena_alloc(void *c, size_t len)
{
	struct arena *a = c;
	size_t off = (a->used + 15) & ~(size_t)15;

	if (off > ARENA_SIZE || len > ARENA_SIZE - off)
		return NULL;
	a->used = off + len;
	return a->buf + off;
}

static void arena_free(void *p)
{
	(void)p;
}

struct dns_ctx *dns_ctx_new(const struct config *cfg, const struct zone *zone,
			    struct rotor *rotor)
{
	struct dns_ctx *ctx = calloc(1, sizeof(*ctx));

	if (!ctx)
		return NULL;
	ctx->cfg = cfg;
	ctx->zone = zone;
	ctx->rotor = rotor;
	ctx->mm.ctx = &ctx->arena;
	ctx->mm.alloc = arena_alloc;
	ctx->mm.free = arena_free;
	return ctx;
}

void dns_ctx_free(struct dns_ctx *ctx)
{
	free(ctx);
}

const struct dns_stats *dns_ctx_stats(const struct dns_ctx *ctx)
{
	return &ctx->stats;
}

static void count_rcode(struct dns_ctx *ctx, int rcode)
{
	switch (rcode) {
	case KNOT_RCODE_NOERROR:  ctx->stats.noerror++; break;
	case KNOT_RCODE_NXDOMAIN: ctx->stats.nxdomain++; break;
	case KNOT_RCODE_REFUSED:  ctx->stats.refused++; break;
	case KNOT_RCODE_FORMERR:  ctx->stats.formerr++; break;
	case KNOT_RCODE_SERVFAIL: ctx->stats.servfail++; break;
	case KNOT_RCODE_NOTIMPL:  ctx->stats.notimp++; break;
	case KNOT_RCODE_BADVERS:  ctx->stats.badvers++; break;
	}
}

/* A header-only error response, for queries too broken to echo. */
static size_t header_only(struct dns_ctx *ctx, const uint8_t *q, uint8_t *out,
			  int rcode)
{
	memset(out, 0, KNOT_WIRE_HEADER_SIZE);
	knot_wire_set_id(out, knot_wire_get_id(q));
	knot_wire_set_opcode(out, knot_wire_get_opcode(q));
	if (knot_wire_get_rd(q))
		knot_wire_set_rd(out);
	knot_wire_set_qr(out);
	knot_wire_set_rcode(out, (short)rcode);
	count_rcode(ctx, rcode);
	return KNOT_WIRE_HEADER_SIZE;
}

static void put(struct section *s, const knot_rrset_t *rr, uint16_t hint)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->p[i].rr == rr)
			return;
	if (s->n < MAX_PUT)
		s->p[s->n++] = (struct put){ rr, hint };
}

static knot_rrset_t *temp_rrset(struct dns_ctx *ctx)
{
	return ctx->n_temp < MAX_TEMP ? &ctx->temp[ctx->n_temp++] : NULL;
}

/* A copy of rr under another owner (wildcard expansion) or TTL. */
static const knot_rrset_t *rrset_as(struct dns_ctx *ctx, const knot_rrset_t *rr,
				    knot_dname_t *owner, uint32_t ttl)
{
	knot_rrset_t *t = temp_rrset(ctx);

	if (!t)
		return NULL;
	*t = *rr;
	if (owner)
		t->owner = owner;
	t->ttl = ttl;
	return t;
}

/* The SOA for negative answers: TTL min(SOA TTL, MINIMUM) (RFC 2308 §3). */
static void put_soa(struct dns_ctx *ctx)
{
	const knot_rrset_t *soa = ctx->zone->soa;
	uint32_t min = knot_soa_minimum(soa->rrs.rdata);
	const knot_rrset_t *t = rrset_as(ctx, soa, NULL,
					 soa->ttl < min ? soa->ttl : min);

	if (t)
		put(&ctx->ns, t, KNOT_COMPR_HINT_NONE);
}

static bool is_service_node(const struct zone_node *n)
{
	return n->service >= 0;
}

/*
 * Minimal responses (as NSD with minimal-responses: yes): the additional
 * section carries only the addresses of in-zone name servers, for an NS
 * answer or a referral (glue). Positive answers carry no authority NS.
 */
static void add_additional(struct dns_ctx *ctx, const knot_rrset_t *rr)
{
	uint8_t lower[KNOT_DNAME_MAXLEN];

	if (rr->type != KNOT_RRTYPE_NS)
		return;
	knot_rdata_t *rd = rr->rrs.rdata;
	for (uint16_t i = 0; i < rr->rrs.count; i++, rd = knot_rdataset_next(rd)) {
		const knot_dname_t *target = knot_rdata_name(rd, rr->type);
		const struct zone_node *n;
		const knot_rrset_t *a;

		if (!target || knot_dname_to_wire(lower, target, sizeof(lower)) < 0)
			continue;
		knot_dname_to_lower(lower);
		if (knot_dname_in_bailiwick(lower, ctx->zone->apex) < 0)
			continue;
		n = zone_get(ctx->zone, lower);
		/* never open a window for a protected name as a side effect */
		if (!n || is_service_node(n))
			continue;
		if ((a = zone_node_rrset(n, KNOT_RRTYPE_A)))
			put(&ctx->ar, a, KNOT_COMPR_HINT_NONE);
		if ((a = zone_node_rrset(n, KNOT_RRTYPE_AAAA)))
			put(&ctx->ar, a, KNOT_COMPR_HINT_NONE);
	}
}

static void referral(struct dns_ctx *ctx, const struct zone_node *cut)
{
	const knot_rrset_t *ns = zone_node_rrset(cut, KNOT_RRTYPE_NS);
	const knot_rrset_t *ds = zone_node_rrset(cut, KNOT_RRTYPE_DS);

	ctx->referral = true;
	put(&ctx->ns, ns, KNOT_COMPR_HINT_NONE);
	if (ds)
		put(&ctx->ns, ds, KNOT_COMPR_HINT_NONE);
	add_additional(ctx, ns);
}

struct query_info {
	const struct sockaddr *src;
	uint64_t now_ms;
	const knot_edns_client_subnet_t *ecs; /* NULL without a usable ECS */
	uint8_t ecs_scope;
	struct dns_result *res;
};

/* The rotor's answer as an A/AAAA RRset; -ENODATA when the service has no
 * pool of that family. */
static int rotated(struct dns_ctx *ctx, const struct zone_node *n,
		   knot_dname_t *owner, uint16_t qtype, struct query_info *qi,
		   const knot_rrset_t **out)
{
	struct rotor_query rq = { 0 };
	struct rotor_answer ra;
	knot_rrset_t *t;
	int family = qtype == KNOT_RRTYPE_A ? AF_INET : AF_INET6;
	size_t alen = addr_family_size(family);
	uint8_t *rdbuf;
	int ret;

	if (addr_from_sockaddr(qi->src, &rq.family, rq.src) < 0)
		return -EAFNOSUPPORT;
	if (qi->ecs) {
		struct sockaddr_storage ss;

		if (knot_edns_client_subnet_get_addr(&ss, qi->ecs) == KNOT_EOK &&
		    addr_from_sockaddr((struct sockaddr *)&ss, &rq.ecs_family,
				       rq.ecs_addr) == 0) {
			rq.has_ecs = true;
			rq.ecs_len = qi->ecs->source_len;
		}
	}
	ret = rotor_answer(ctx->rotor, (size_t)n->service, family, &rq,
			   qi->now_ms, &ra);
	if (ret < 0)
		return ret;
	t = temp_rrset(ctx);
	if (!t)
		return -ENOMEM;
	rdbuf = ctx->temp_rdata[t - ctx->temp];
	knot_rrset_init(t, owner, qtype, KNOT_CLASS_IN, ra.ttl);
	knot_rdata_init((knot_rdata_t *)rdbuf, (uint16_t)alen, ra.addr);
	t->rrs.count = 1;
	t->rrs.size = (uint32_t)knot_rdata_size((uint16_t)alen);
	t->rrs.rdata = (knot_rdata_t *)rdbuf;

	qi->ecs_scope = ra.ecs_scope;
	memcpy(qi->res->changes, ra.changes, ra.n_changes * sizeof(ra.changes[0]));
	qi->res->n_changes = ra.n_changes;
	ctx->stats.rotated++;
	*out = t;
	return 0;
}

/* RFC 8482: one RRset for ANY, or a synthesised HINFO when there is none
 * (a protected name never opens a window for an ANY query). */
static const knot_rrset_t *minimal_any(struct dns_ctx *ctx,
				       const struct zone_node *n,
				       knot_dname_t *owner)
{
	static const uint8_t hinfo[] = { 7, 'R', 'F', 'C', '8', '4', '8', '2', 0 };
	knot_rrset_t *t;
	uint8_t *rdbuf;

	const knot_rrset_t *soa = zone_node_rrset(n, KNOT_RRTYPE_SOA);

	/* the SOA at the apex, as NSD does; elsewhere the lowest type */
	if (soa)
		return rrset_as(ctx, soa, owner, soa->ttl);
	for (uint16_t i = 0; i < n->n_rrsets; i++)
		if (n->rrsets[i].type != KNOT_RRTYPE_RRSIG)
			return rrset_as(ctx, &n->rrsets[i], owner, n->rrsets[i].ttl);
	t = temp_rrset(ctx);
	if (!t)
		return NULL;
	rdbuf = ctx->temp_rdata[t - ctx->temp];
	knot_rrset_init(t, owner, KNOT_RRTYPE_HINFO, KNOT_CLASS_IN, ctx->cfg->ttl);
	knot_rdata_init((knot_rdata_t *)rdbuf, sizeof(hinfo), hinfo);
	t->rrs.count = 1;
	t->rrs.size = (uint32_t)knot_rdata_size(sizeof(hinfo));
	t->rrs.rdata = (knot_rdata_t *)rdbuf;
	return t;
}

/* The closest existing ancestor of a name that does not exist. */
static const knot_dname_t *closest_encloser(const struct zone *z,
					    const knot_dname_t *name)
{
	while (!knot_dname_is_equal(name, z->apex)) {
		name = knot_wire_next_label(name, NULL);
		if (zone_name_exists(z, name))
			return name;
	}
	return name;
}

/* Answer from the zone for a name known to be in it; follows CNAMEs. */
static void resolve(struct dns_ctx *ctx, const knot_dname_t *qname_lower,
		    uint16_t qtype, struct query_info *qi)
{
	const knot_dname_t *name = qname_lower;
	uint16_t hint = KNOT_COMPR_HINT_QNAME;

	for (int link = 0; link <= MAX_CHAIN; link++) {
		const struct zone_node *cut = zone_find_cut(ctx->zone, name);
		const struct zone_node *n;
		const knot_rrset_t *rr;
		knot_dname_t *owner = NULL; /* set for wildcard synthesis */

		if (cut && !(qtype == KNOT_RRTYPE_DS &&
			     knot_dname_is_equal(cut->name, name))) {
			if (link == 0)
				ctx->aa = false;
			referral(ctx, cut);
			return;
		}
		n = zone_get(ctx->zone, name);
		if (!n) {
			const knot_dname_t *ce;
			uint8_t wild[KNOT_DNAME_MAXLEN];

			if (zone_name_exists(ctx->zone, name)) {
				put_soa(ctx); /* empty non-terminal: NODATA */
				return;
			}
			ce = closest_encloser(ctx->zone, name);
			wild[0] = 1;
			wild[1] = '*';
			if (knot_dname_to_wire(wild + 2, ce, sizeof(wild) - 2) < 0 ||
			    !(n = zone_get(ctx->zone, wild))) {
				ctx->rcode = KNOT_RCODE_NXDOMAIN;
				put_soa(ctx);
				return;
			}
			/* the synthesised owner is the name asked (RFC 4592);
			 * for the query name itself, point at the question */
			owner = (knot_dname_t *)(link == 0 ? qname_lower : name);
		}
		if (is_service_node(n) &&
		    (qtype == KNOT_RRTYPE_A || qtype == KNOT_RRTYPE_AAAA)) {
			int ret = rotated(ctx, n, owner ? owner : n->name,
					  qtype, qi, &rr);

			if (ret == 0)
				put(&ctx->an, rr, hint);
			else if (ret == -ENODATA)
				put_soa(ctx); /* no pool of that family: NODATA */
			else
				ctx->rcode = KNOT_RCODE_SERVFAIL;
			return;
		}
		if (qtype == KNOT_RRTYPE_ANY) {
			if ((rr = minimal_any(ctx, n, owner ? owner : n->name)))
				put(&ctx->an, rr, hint);
			return;
		}
		rr = zone_node_rrset(n, qtype);
		if (rr) {
			if (owner)
				rr = rrset_as(ctx, rr, owner, rr->ttl);
			if (rr) {
				put(&ctx->an, rr, hint);
				add_additional(ctx, rr);
			}
			return;
		}
		rr = zone_node_rrset(n, KNOT_RRTYPE_CNAME);
		if (!rr) {
			put_soa(ctx); /* NODATA */
			return;
		}
		if (owner)
			rr = rrset_as(ctx, rr, owner, rr->ttl);
		if (!rr)
			return;
		put(&ctx->an, rr, hint);
		hint = KNOT_COMPR_HINT_NONE;
		/* follow the chain while it stays in the zone */
		if (knot_dname_to_wire(ctx->chain[link], knot_cname_name(rr->rrs.rdata),
				       sizeof(ctx->chain[link])) < 0)
			return;
		knot_dname_to_lower(ctx->chain[link]);
		name = ctx->chain[link];
		if (knot_dname_in_bailiwick(name, ctx->zone->apex) < 0)
			return;
	}
}

/*
 * Put a section's RRsets. A missing answer or authority RRset truncates the
 * whole response (the caller restarts it empty with TC). Additional data
 * that does not fit is left out without TC (RFC 2181 §9), except referral
 * glue, whose loss sets TC (RFC 9471).
 */
static int put_section(knot_pkt_t *pkt, knot_section_t id,
		       const struct section *s, bool referral, bool *tc)
{
	uint16_t flags = id == KNOT_ADDITIONAL && !referral ? KNOT_PF_NOTRUNC : 0;
	int ret = knot_pkt_begin(pkt, id);

	for (size_t i = 0; ret == KNOT_EOK && i < s->n; i++) {
		ret = knot_pkt_put(pkt, s->p[i].hint, s->p[i].rr, flags);
		if (ret == KNOT_ESPACE) {
			if (id != KNOT_ADDITIONAL)
				*tc = true;
			return KNOT_ESPACE;
		}
	}
	return ret;
}

static bool valid_ecs(const knot_edns_client_subnet_t *ecs)
{
	return ecs->scope_len == 0 &&
	       ((ecs->family == 1 && ecs->source_len <= 32) ||
		(ecs->family == 2 && ecs->source_len <= 128));
}

/* What the query asks, once parsed and checked. */
struct parsed {
	knot_pkt_t *query;
	knot_edns_client_subnet_t ecs;
	bool has_ecs_option;
	uint16_t opt_size;  /* bytes to reserve for our OPT record, 0 without EDNS */
	size_t limit;       /* largest response */
};

/* Start (or restart, after truncation) the response: header and question,
 * with room kept for the OPT record. */
static knot_pkt_t *begin_response(struct dns_ctx *ctx, knot_pkt_t *resp,
				  const struct parsed *p, uint8_t *out,
				  struct dns_result *res)
{
	if (resp)
		knot_pkt_clear(resp);
	else
		resp = knot_pkt_new(out, (uint16_t)p->limit, &ctx->mm);
	if (!resp || knot_pkt_init_response(resp, p->query) != KNOT_EOK)
		return NULL;
	knot_wire_clear_aa(out);
	knot_wire_clear_tc(out);
	knot_wire_clear_ra(out);
	knot_wire_clear_ad(out);
	knot_wire_clear_z(out);
	res->question_end = (uint16_t)resp->size;
	if (p->opt_size && knot_pkt_reserve(resp, p->opt_size) != KNOT_EOK)
		return NULL;
	return resp;
}

/* Append our OPT record: payload, extended rcode, ECS echo, EDE. */
static int put_opt(struct dns_ctx *ctx, knot_pkt_t *resp, struct parsed *p,
		   uint8_t ecs_scope, int ede, struct dns_result *res)
{
	knot_rrset_t opt;
	uint16_t ecs_size = p->has_ecs_option ?
			    knot_edns_client_subnet_size(&p->ecs) : 0;

	knot_pkt_reclaim(resp, p->opt_size);
	if (knot_edns_init(&opt, ctx->cfg->udp_payload,
			   (uint8_t)(ctx->rcode >> 4), 0, &ctx->mm) != KNOT_EOK)
		return -ENOMEM;
	if (knot_pkt_has_dnssec(p->query))
		knot_edns_set_do(&opt);
	if (p->has_ecs_option) {
		uint8_t *data = NULL;

		p->ecs.scope_len = ecs_scope;
		if (knot_edns_reserve_option(&opt, KNOT_EDNS_OPTION_CLIENT_SUBNET,
					     ecs_size, &data, &ctx->mm) != KNOT_EOK ||
		    knot_edns_client_subnet_write(data, ecs_size, &p->ecs) != KNOT_EOK)
			return -ENOMEM;
	}
	if (ede >= 0) {
		uint8_t code[2] = { (uint8_t)(ede >> 8), (uint8_t)ede };

		if (knot_edns_add_option(&opt, KNOT_EDNS_OPTION_EDE, sizeof(code),
					 code, &ctx->mm) != KNOT_EOK)
			return -ENOMEM;
	}
	if (knot_pkt_begin(resp, KNOT_ADDITIONAL) != KNOT_EOK)
		return -EINVAL;
	res->opt_off = (uint16_t)resp->size;
	if (knot_pkt_put(resp, KNOT_COMPR_HINT_NONE, &opt, 0) != KNOT_EOK)
		return -ENOSPC;
	res->opt_len = (uint16_t)(resp->size - res->opt_off);
	return 0;
}

/*
 * Parse and vet the query. Returns 0 to go on; otherwise the rcode of a
 * header-only answer, or -1 to send nothing.
 */
static int parse_query(struct dns_ctx *ctx, uint8_t *q, size_t qlen, bool tcp,
		       size_t out_cap, struct parsed *p)
{
	int ret;

	/* too short to answer, or a response: never reply (no loops) */
	if (qlen < KNOT_WIRE_HEADER_SIZE || knot_wire_get_qr(q) ||
	    qlen > DNS_TCP_MAX || out_cap < KNOT_WIRE_MIN_PKTSIZE)
		return -1;
	if (knot_wire_get_opcode(q) == KNOT_OPCODE_NOTIFY)
		return KNOT_RCODE_REFUSED; /* we have no secondaries to notify */
	if (knot_wire_get_opcode(q) != KNOT_OPCODE_QUERY)
		return KNOT_RCODE_NOTIMPL;
	p->query = knot_pkt_new(q, (uint16_t)qlen, &ctx->mm);
	if (!p->query)
		return KNOT_RCODE_SERVFAIL;
	ret = knot_pkt_parse(p->query, 0);
	if (ret == KNOT_ENOMEM)
		return KNOT_RCODE_SERVFAIL;
	if (ret != KNOT_EOK || knot_wire_get_qdcount(q) != 1 ||
	    knot_wire_get_ancount(q) != 0 || knot_wire_get_nscount(q) != 0)
		return KNOT_RCODE_FORMERR;

	p->limit = tcp ? DNS_TCP_MAX : KNOT_WIRE_MIN_PKTSIZE;
	/* RFC 6891 §6.1.2: the OPT owner is the root */
	if (p->query->opt_rr && p->query->opt_rr->owner[0] != 0)
		return KNOT_RCODE_FORMERR;
	if (p->query->opt_rr) {
		uint8_t *o = knot_pkt_edns_option(p->query,
						  KNOT_EDNS_OPTION_CLIENT_SUBNET);

		if (o) {
			/* RFC 7871 §7.1.1: a malformed ECS option is FORMERR */
			if (knot_edns_client_subnet_parse(&p->ecs,
					knot_edns_opt_get_data(o),
					knot_edns_opt_get_length(o)) != KNOT_EOK ||
			    !valid_ecs(&p->ecs))
				return KNOT_RCODE_FORMERR;
			p->has_ecs_option = true;
		}
		p->opt_size = KNOT_EDNS_MIN_SIZE + KNOT_EDNS_EDE_MIN_LENGTH +
			(o ? KNOT_EDNS_OPTION_HDRLEN +
			     knot_edns_client_subnet_size(&p->ecs) : 0);
		if (!tcp) {
			size_t pl = knot_edns_get_payload(p->query->opt_rr);

			if (pl < KNOT_EDNS_MIN_UDP_PAYLOAD)
				pl = KNOT_EDNS_MIN_UDP_PAYLOAD;
			p->limit = pl < ctx->cfg->udp_payload ? pl : ctx->cfg->udp_payload;
		}
	}
	if (p->limit > out_cap)
		p->limit = out_cap;
	return 0;
}

void dns_answer(struct dns_ctx *ctx, uint8_t *q, size_t qlen,
		const struct sockaddr *src, bool tcp, uint64_t now_ms,
		uint8_t *out, size_t out_cap, struct dns_result *res)
{
	struct query_info qi = { .src = src, .now_ms = now_ms, .res = res };
	struct parsed p = { 0 };
	knot_pkt_t *resp;
	uint16_t qtype;
	bool tc = false;
	int ede = -1, ret;

	memset(res, 0, sizeof(*res));
	ctx->arena.used = 0;
	ctx->an.n = ctx->ns.n = ctx->ar.n = 0;
	ctx->n_temp = 0;
	ctx->aa = true;
	ctx->referral = false;
	ctx->rcode = KNOT_RCODE_NOERROR;
	ctx->stats.queries++;

	ret = parse_query(ctx, q, qlen, tcp, out_cap, &p);
	if (ret < 0) {
		ctx->stats.dropped++;
		return;
	}
	if (ret > 0) {
		res->len = header_only(ctx, q, out, ret);
		return;
	}
	if (p.has_ecs_option && p.ecs.source_len > 0)
		qi.ecs = &p.ecs;
	/* source prefix 0: the resolver asks for an answer valid for all */

	resp = begin_response(ctx, NULL, &p, out, res);
	if (!resp)
		goto fail;

	qtype = knot_pkt_qtype(p.query);
	if (p.query->opt_rr && knot_edns_get_version(p.query->opt_rr) != 0) {
		ctx->rcode = KNOT_RCODE_BADVERS;
	} else if (knot_pkt_qclass(p.query) != KNOT_CLASS_IN) {
		ctx->rcode = KNOT_RCODE_REFUSED;
	} else if (knot_dname_in_bailiwick(knot_pkt_qname(p.query),
					   ctx->zone->apex) < 0) {
		ctx->rcode = KNOT_RCODE_REFUSED;
		ede = 20; /* Not Authoritative (RFC 8914) */
	} else if (qtype == KNOT_RRTYPE_AXFR || qtype == KNOT_RRTYPE_IXFR) {
		/* zone transfers are not offered (as NSD without provide-xfr) */
		ctx->rcode = qtype == KNOT_RRTYPE_AXFR && !tcp ?
			     KNOT_RCODE_NOTIMPL : KNOT_RCODE_REFUSED;
	} else {
		resolve(ctx, knot_pkt_qname(p.query), qtype, &qi);
	}
	if (ctx->rcode != KNOT_RCODE_NOERROR && ctx->rcode != KNOT_RCODE_NXDOMAIN) {
		ctx->aa = false;
		ctx->an.n = ctx->ns.n = ctx->ar.n = 0;
	}

	ret = put_section(resp, KNOT_ANSWER, &ctx->an, false, &tc);
	if (ret == KNOT_EOK)
		ret = put_section(resp, KNOT_AUTHORITY, &ctx->ns, false, &tc);
	if (ret == KNOT_EOK)
		ret = put_section(resp, KNOT_ADDITIONAL, &ctx->ar, ctx->referral, &tc);
	if (ret != KNOT_EOK && ret != KNOT_ESPACE)
		goto fail;
	if (tc) {
		/* the answer does not fit: send none of it (as NSD does) and
		 * open nothing; the client retries over TCP (RFC 7766) */
		res->n_changes = 0;
		resp = begin_response(ctx, resp, &p, out, res);
		if (!resp)
			goto fail;
		knot_wire_set_tc(out);
		ctx->stats.truncated++;
	}
	if (ctx->aa)
		knot_wire_set_aa(out);
	knot_wire_set_rcode(out, (short)(ctx->rcode & 0xf));
	if (p.opt_size && put_opt(ctx, resp, &p, qi.ecs ? qi.ecs_scope : 0,
				  ede, res) < 0)
		goto fail;
	res->len = resp->size;
	count_rcode(ctx, ctx->rcode);
	return;
fail:
	res->len = header_only(ctx, q, out, KNOT_RCODE_SERVFAIL);
	res->n_changes = 0;
	res->opt_len = 0;
}

void dns_make_servfail(struct dns_ctx *ctx, uint8_t *resp,
		       struct dns_result *res)
{
	size_t len = res->question_end;

	if (res->len < KNOT_WIRE_HEADER_SIZE || len < KNOT_WIRE_HEADER_SIZE)
		return;
	if (res->opt_len) {
		memmove(resp + len, resp + res->opt_off, res->opt_len);
		len += res->opt_len;
	}
	knot_wire_set_ancount(resp, 0);
	knot_wire_set_nscount(resp, 0);
	knot_wire_set_arcount(resp, res->opt_len ? 1 : 0);
	knot_wire_clear_aa(resp);
	knot_wire_clear_tc(resp);
	knot_wire_set_rcode(resp, KNOT_RCODE_SERVFAIL);
	res->len = len;
	res->opt_off = res->opt_len ? res->question_end : 0;
	res->n_changes = 0;
	ctx->stats.servfail++;
}

size_t dns_make_slip(const uint8_t *q, size_t qlen, uint8_t *out, size_t out_cap)
{
	const uint8_t *name = q + KNOT_WIRE_HEADER_SIZE;
	int nlen;
	size_t len;

	if (qlen < KNOT_WIRE_HEADER_SIZE || knot_wire_get_qr(q) ||
	    knot_wire_get_opcode(q) != KNOT_OPCODE_QUERY ||
	    knot_wire_get_qdcount(q) != 1)
		return 0;
	/* labels only (a pointer has nothing before it to point to) */
	nlen = knot_dname_wire_check(name, q + qlen, NULL);
	if (nlen <= 0)
		return 0;
	len = KNOT_WIRE_HEADER_SIZE + (size_t)nlen + 4;
	if (len > qlen || len > out_cap)
		return 0;
	memset(out, 0, KNOT_WIRE_HEADER_SIZE);
	knot_wire_set_id(out, knot_wire_get_id(q));
	knot_wire_set_opcode(out, KNOT_OPCODE_QUERY);
	if (knot_wire_get_rd(q))
		knot_wire_set_rd(out);
	if (knot_wire_get_cd(q))
		knot_wire_set_cd(out);
	knot_wire_set_qr(out);
	knot_wire_set_tc(out);
	knot_wire_set_qdcount(out, 1);
	memcpy(out + KNOT_WIRE_HEADER_SIZE, name, len - KNOT_WIRE_HEADER_SIZE);
	return len;
}
