// SPDX-License-Identifier: MIT
#include "gw_policy.h"
#include "relay.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "config.h"

/* The names of a pool's objects: "<section>_<kind><4|6>". */
static const struct {
	const char *kind;
} pool_objs[GW_N_POOL_OBJ] = {
	[GW_OPEN]       = { "open" },     /* sets */
	[GW_SCOPED]     = { "scoped" },
	[GW_ASKED]      = { "asked" },
	[GW_BOUND]      = { "bound" },
	[GW_CLAIMS]     = { "claims" },
	[GW_CLAIMED]    = { "claimed" },
	[GW_C_SERVER]   = { "server" },   /* counters */
	[GW_C_HONEYPOT] = { "honeypot" },
	[GW_C_LEARNED]  = { "learned" },
	[GW_C_WINDOW]   = { "window" },
	[GW_C_CLAIM]    = { "claim" },
	[GW_CHAIN]      = { "chain" },
};

#define PREROUTING "prerouting"
#define QUARANTINE_PREFIX "quarantine"

static const char *fam(int family)
{
	return family == AF_INET ? "4" : "6";
}

void gw_name(char out[static GW_NAME_MAX], const struct config *cfg,
	     size_t service, int family, enum gw_pool_obj obj)
{
	snprintf(out, GW_NAME_MAX, "%s_%s%s", cfg->services[service].section,
		 pool_objs[obj].kind, fam(family));
}

int gw_parse_name(const struct config *cfg, const char *name, size_t *service,
		  int *family, enum gw_pool_obj *obj)
{
	const char *us = strrchr(name, '_'), *kind;
	size_t slen, klen;

	if (!us)
		return -ENOENT;
	slen = (size_t)(us - name);
	kind = us + 1;
	klen = strlen(kind);
	if (klen < 2 || (kind[klen - 1] != '4' && kind[klen - 1] != '6'))
		return -ENOENT;
	*family = kind[klen - 1] == '4' ? AF_INET : AF_INET6;
	for (int o = 0; o < GW_N_POOL_OBJ; o++) {
		if (strlen(pool_objs[o].kind) != klen - 1 ||
		    memcmp(pool_objs[o].kind, kind, klen - 1) != 0)
			continue;
		for (size_t i = 0; i < cfg->n_services; i++) {
			const char *sec = cfg->services[i].section;

			if (strlen(sec) == slen && memcmp(sec, name, slen) == 0 &&
			    (*family == AF_INET || cfg->services[i].has_pool6)) {
				*service = i;
				*obj = (enum gw_pool_obj)o;
				return 0;
			}
		}
	}
	return -ENOENT;
}

static void quarantine_name(char out[static GW_NAME_MAX], int family)
{
	snprintf(out, GW_NAME_MAX, QUARANTINE_PREFIX "%s", fam(family));
}

/*
 * A pool's chain, first match wins. Adding a rule is adding a row. obj is a
 * pool object, or QUARANTINE; to is where a DNAT goes.
 *
 * Learning a binding is a rule of its own, before the rule that sends the
 * client on: when the binding set is full the add fails and ends that rule
 * only, so a legitimate client still reaches the server (learned vs window
 * counts tell how often learning failed).
 */
#define QUARANTINE (-1)
enum dnat_to { TO_NONE, TO_SERVER, TO_HONEYPOT };

struct row_match {
	enum gw_match_kind kind;
	int obj;
};

struct row_act {
	enum gw_act_kind kind;
	int obj;
	enum dnat_to to;
};

/* Which configurations a row is for. */
enum row_when { ALWAYS, UNCLAIMED, CLAIMED };

/* A row's LOG_BIND is there only when the table logs its bindings
 * (gw_logs_bindings): a standalone table is the same as without it. */

#define SRC_IN(o)  { .kind = GW_M_SRC_IN, .obj = (o) }
#define DST_IN(o)  { .kind = GW_M_DST_IN, .obj = (o) }
#define PAIR_IN(o) { .kind = GW_M_PAIR_IN, .obj = (o) }
#define ADD(o)     { .kind = GW_A_ADD, .obj = (o) }
#define UPDATE(o)  { .kind = GW_A_UPDATE, .obj = (o) }
#define CLAIM(o)   { .kind = GW_A_CLAIM, .obj = (o) }
#define COUNT(o)   { .kind = GW_A_COUNTER, .obj = (o) }
#define DNAT(t)    { .kind = GW_A_DNAT, .to = (t) }
#define LOG_BIND   { .kind = GW_A_LOG }

static const struct chain_row {
	enum row_when when;
	struct row_match match[GW_MAX_MATCH];
	struct row_act act[GW_MAX_ACT];
} pool_chain[] = {
	/* 1. a quarantined source -> honeypot */
	{ ALWAYS, { SRC_IN(QUARANTINE) }, { COUNT(GW_C_HONEYPOT), DNAT(TO_HONEYPOT) } },
	/* 2. a bound source -> server; its binding lives on (and the
	 * refresh is reported) */
	{ ALWAYS, { PAIR_IN(GW_BOUND) },
	  { UPDATE(GW_BOUND), COUNT(GW_C_SERVER), LOG_BIND, DNAT(TO_SERVER) } },
	/* 3. the asker of an answer: learn the binding, -> server (it never
	 * takes a claim: its own entry lets it in). A learn is reported only
	 * when the add succeeded: a full set ends the rule before the log */
	{ ALWAYS, { PAIR_IN(GW_ASKED) },
	  { ADD(GW_BOUND), COUNT(GW_C_LEARNED), LOG_BIND } },
	{ ALWAYS, { PAIR_IN(GW_ASKED) },
	  { COUNT(GW_C_WINDOW), COUNT(GW_C_SERVER), DNAT(TO_SERVER) } },
	/* 4. a client-subnet window (scoped) or the open window: learn the
	 * binding, -> server */
	{ UNCLAIMED, { PAIR_IN(GW_SCOPED) },
	  { ADD(GW_BOUND), COUNT(GW_C_LEARNED), LOG_BIND } },
	{ UNCLAIMED, { PAIR_IN(GW_SCOPED) },
	  { COUNT(GW_C_WINDOW), COUNT(GW_C_SERVER), DNAT(TO_SERVER) } },
	{ UNCLAIMED, { DST_IN(GW_OPEN) },
	  { ADD(GW_BOUND), COUNT(GW_C_LEARNED), LOG_BIND } },
	{ UNCLAIMED, { DST_IN(GW_OPEN) },
	  { COUNT(GW_C_WINDOW), COUNT(GW_C_SERVER), DNAT(TO_SERVER) } },
	/* 4, with window_claims: the window admits its first N new sources
	 * only. The claim is taken in the kernel, atomically (the element's
	 * limit); the source is handed over in claimed to the rules that
	 * learn its binding and let it in */
	{ CLAIMED, { PAIR_IN(GW_SCOPED) }, { CLAIM(GW_CLAIMS), ADD(GW_CLAIMED) } },
	{ CLAIMED, { DST_IN(GW_OPEN) }, { CLAIM(GW_CLAIMS), ADD(GW_CLAIMED) } },
	{ CLAIMED, { PAIR_IN(GW_CLAIMED) },
	  { ADD(GW_BOUND), COUNT(GW_C_LEARNED), LOG_BIND } },
	{ CLAIMED, { PAIR_IN(GW_CLAIMED) },
	  { COUNT(GW_C_CLAIM), COUNT(GW_C_WINDOW), COUNT(GW_C_SERVER),
	    DNAT(TO_SERVER) } },
	/* 5. anything else -> honeypot */
	{ ALWAYS, { { 0 } }, { COUNT(GW_C_HONEYPOT), DNAT(TO_HONEYPOT) } },
};

#define N_ROWS (sizeof(pool_chain) / sizeof(pool_chain[0]))

static void obj_name(char out[static GW_NAME_MAX], const struct config_pool *p,
		     const struct config *cfg, int obj)
{
	if (obj == QUARANTINE)
		quarantine_name(out, p->family);
	else
		gw_name(out, cfg, p->service, p->family, (enum gw_pool_obj)obj);
}

bool gw_logs_bindings(const struct config *cfg)
{
	return cfg->role == CONFIG_ROLE_GATEWAY && config_controller(cfg) != NULL;
}

static void pool_rule(struct gw_rule *r, const struct config *cfg,
		      const struct config_pool *p, const struct chain_row *row)
{
	bool log = gw_logs_bindings(cfg);

	const struct config_service *s = p->svc;

	memset(r, 0, sizeof(*r));
	gw_name(r->chain, cfg, p->service, p->family, GW_CHAIN);
	r->family = p->family;
	for (size_t i = 0; i < GW_MAX_MATCH && row->match[i].kind; i++) {
		struct gw_match *m = &r->match[r->n_match++];

		m->kind = row->match[i].kind;
		obj_name(m->set, p, cfg, row->match[i].obj);
	}
	for (size_t i = 0; i < GW_MAX_ACT && row->act[i].kind; i++) {
		struct gw_act *a;

		if (row->act[i].kind == GW_A_LOG && !log)
			continue;
		a = &r->act[r->n_act++];
		a->kind = row->act[i].kind;
		if (a->kind == GW_A_LOG) {
			snprintf(a->name, sizeof(a->name), "%s", GW_LOG_PREFIX_BIND);
			a->group = (uint16_t)cfg->nflog_group;
			a->snaplen = GW_LOG_SNAPLEN;
			continue;
		}
		if (a->kind == GW_A_DNAT) {
			const void *to;

			if (p->family == AF_INET)
				to = row->act[i].to == TO_SERVER ? (const void *)&s->server :
								   (const void *)&s->honeypot;
			else
				to = row->act[i].to == TO_SERVER ? (const void *)&s->server6 :
								   (const void *)&s->honeypot6;
			memcpy(a->addr, to, addr_family_size(p->family));
			continue;
		}
		obj_name(a->name, p, cfg, row->act[i].obj);
		if (a->kind == GW_A_CLAIM || row->act[i].obj == GW_CLAIMED) {
			/* a claim lasts as long as the window it was taken in */
			a->timeout_ms = ((uint64_t)s->window + s->grace) * 1000;
			a->burst = s->window_claims;
		} else if (a->kind == GW_A_ADD || a->kind == GW_A_UPDATE) {
			a->timeout_ms = (uint64_t)s->binding * 1000;
		}
	}
}

static struct gw_rule *next_rule(struct gw_table *t, const char *chain, int family)
{
	struct gw_rule *r = &t->rules[t->n_rules++];

	memset(r, 0, sizeof(*r));
	snprintf(r->chain, sizeof(r->chain), "%s", chain);
	r->family = family;
	return r;
}

/* The size of a pool's set (gw_policy.h). */
static uint32_t set_size(const struct config_pool *p, enum gw_pool_obj obj)
{
	switch (obj) {
	case GW_OPEN:
		return GW_OPEN_FACTOR * p->svc->max_open;
	case GW_ASKED:
	case GW_SCOPED:
		return p->svc->max_asked;
	case GW_BOUND:
		return p->svc->max_bindings;
	default:
		return GW_DYNAMIC_SIZE;
	}
}

int gw_policy_build(const struct config *cfg, struct gw_table **out)
{
	size_t n_pools = 0, max_rules;
	struct gw_table *t;

	*out = NULL;
	config_for_each_pool(cfg, p)
		n_pools++;
	max_rules = cfg->n_listen + n_pools * (1 + N_ROWS);
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->sets = calloc(2 + n_pools * 6, sizeof(*t->sets));
	t->counters = calloc(n_pools * 5 + 1, sizeof(*t->counters));
	t->chains = calloc(1 + n_pools, sizeof(*t->chains));
	t->rules = calloc(max_rules ? max_rules : 1, sizeof(*t->rules));
	if (!t->sets || !t->counters || !t->chains || !t->rules) {
		gw_table_free(t);
		return -ENOMEM;
	}

	for (int f = 0; f < 2; f++) {
		struct gw_set *q = &t->sets[t->n_sets++];

		q->family = f ? AF_INET6 : AF_INET;
		q->interval = true;
		q->size = GW_QUARANTINE_SIZE;
		quarantine_name(q->name, q->family);
	}
	t->chains[t->n_chains].base = true;
	snprintf(t->chains[t->n_chains++].name, GW_NAME_MAX, PREROUTING);

	/* choreod's own DNS addresses may lie inside a pool: never NATed */
	for (size_t i = 0; i < cfg->n_listen; i++) {
		struct gw_rule *r;
		struct addr_prefix host = { 0 };

		if (addr_from_sockaddr((const struct sockaddr *)&cfg->listen[i],
				       &host.family, host.bytes) < 0)
			continue;
		host.len = (uint8_t)(addr_family_size(host.family) * 8);
		r = next_rule(t, PREROUTING, host.family);
		r->match[r->n_match].kind = GW_M_DST_PREFIX;
		r->match[r->n_match++].prefix = host;
		r->act[r->n_act++].kind = GW_A_ACCEPT;
	}
	/* each pool to its chain */
	config_for_each_pool(cfg, p) {
		struct gw_rule *r = next_rule(t, PREROUTING, p.family);

		r->match[r->n_match].kind = GW_M_DST_PREFIX;
		r->match[r->n_match++].prefix = *p.pool;
		r->act[r->n_act].kind = GW_A_JUMP;
		gw_name(r->act[r->n_act++].name, cfg, p.service, p.family, GW_CHAIN);
	}
	config_for_each_pool(cfg, p) {
		static const enum gw_pool_obj sets[] = {
			GW_OPEN, GW_SCOPED, GW_ASKED, GW_BOUND, GW_CLAIMS, GW_CLAIMED,
		};
		static const enum gw_pool_obj ctrs[] = {
			GW_C_SERVER, GW_C_HONEYPOT, GW_C_LEARNED, GW_C_WINDOW, GW_C_CLAIM,
		};

		for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
			struct gw_set *s = &t->sets[t->n_sets++];

			gw_name(s->name, cfg, p.service, p.family, sets[i]);
			s->family = p.family;
			s->pair = sets[i] != GW_OPEN && sets[i] != GW_CLAIMS;
			s->interval = sets[i] == GW_SCOPED;
			s->dynamic = sets[i] == GW_BOUND || sets[i] == GW_CLAIMS ||
				     sets[i] == GW_CLAIMED;
			s->size = set_size(&p, sets[i]);
		}
		for (size_t i = 0; i < sizeof(ctrs) / sizeof(ctrs[0]); i++)
			gw_name(t->counters[t->n_counters++], cfg, p.service,
				p.family, ctrs[i]);
		gw_name(t->chains[t->n_chains++].name, cfg, p.service, p.family,
			GW_CHAIN);
		for (size_t i = 0; i < N_ROWS; i++) {
			enum row_when when = pool_chain[i].when;

			if (when == ALWAYS || (when == CLAIMED) == (p.svc->window_claims > 0))
				pool_rule(&t->rules[t->n_rules++], cfg, &p, &pool_chain[i]);
		}
	}
	*out = t;
	return 0;
}

void gw_table_free(struct gw_table *t)
{
	if (!t)
		return;
	free(t->sets);
	free(t->counters);
	free(t->chains);
	free(t->rules);
	free(t);
}

bool gw_table_has(const struct gw_table *t, enum gw_obj_type type,
		  const char *name)
{
	switch (type) {
	case GW_TYPE_SET:
		for (size_t i = 0; i < t->n_sets; i++)
			if (strcmp(t->sets[i].name, name) == 0)
				return true;
		break;
	case GW_TYPE_COUNTER:
		for (size_t i = 0; i < t->n_counters; i++)
			if (strcmp(t->counters[i], name) == 0)
				return true;
		break;
	case GW_TYPE_CHAIN:
		for (size_t i = 0; i < t->n_chains; i++)
			if (strcmp(t->chains[i].name, name) == 0)
				return true;
		break;
	}
	return false;
}

/* ---- text ------------------------------------------------------------------ */

struct text {
	char *buf;
	size_t len, off;
};

__attribute__((format(printf, 2, 3)))
static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->off >= t->len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->off, t->len - t->off, fmt, ap);
	va_end(ap);
	if (n > 0)
		t->off += (size_t)n;
}

const char *gw_rule_format(const struct gw_rule *r, char *buf, size_t len)
{
	struct text t = { buf, len, 0 };
	char a[ADDR_STRLEN];

	if (len)
		buf[0] = '\0';
	put(&t, "%s %s:", r->family == AF_INET ? "ip" : "ip6", r->chain);
	for (size_t i = 0; i < r->n_match; i++) {
		const struct gw_match *m = &r->match[i];

		switch (m->kind) {
		case GW_M_SRC_IN: put(&t, " saddr @%s", m->set); break;
		case GW_M_DST_IN: put(&t, " daddr @%s", m->set); break;
		case GW_M_PAIR_IN: put(&t, " saddr . daddr @%s", m->set); break;
		case GW_M_DST_PREFIX:
			put(&t, " daddr %s", addr_prefix_format(&m->prefix, a));
			break;
		}
	}
	for (size_t i = 0; i < r->n_act; i++) {
		const struct gw_act *x = &r->act[i];

		switch (x->kind) {
		case GW_A_ADD:
		case GW_A_UPDATE:
			put(&t, " %s saddr . daddr @%s timeout %llums",
			    x->kind == GW_A_ADD ? "add" : "update", x->name,
			    (unsigned long long)x->timeout_ms);
			break;
		case GW_A_CLAIM:
			put(&t, " claim daddr @%s burst %u timeout %llums", x->name,
			    x->burst, (unsigned long long)x->timeout_ms);
			break;
		case GW_A_COUNTER: put(&t, " counter %s", x->name); break;
		case GW_A_DNAT:
			put(&t, " dnat to %s", addr_format(r->family, x->addr, a));
			break;
		case GW_A_JUMP: put(&t, " jump %s", x->name); break;
		case GW_A_ACCEPT: put(&t, " accept"); break;
		case GW_A_LOG:
			put(&t, " log prefix \"%s\" group %u snaplen %u", x->name,
			    (unsigned)x->group, (unsigned)x->snaplen);
			break;
		}
	}
	return buf;
}

/* ---- changes as elements -------------------------------------------------------- */

bool gw_change_in_pool(const struct config *cfg, const struct change *c)
{
	const struct config_service *s = &cfg->services[c->service];

	if (c->kind == CHANGE_QUARANTINE)
		return true;
	if (c->family == AF_INET6)
		return s->has_pool6 && addr_prefix_contains(&s->pool6, AF_INET6, c->addr);
	return c->family == AF_INET && addr_prefix_contains(&s->pool, AF_INET, c->addr);
}

bool gw_change_in_time(const struct config *cfg, const struct change *c)
{
	const struct config_service *s = &cfg->services[c->service];

	if (c->kind == CHANGE_LEARNED)
		return c->ms <= relay_ms(s->binding);
	if (c->kind == CHANGE_QUARANTINE)
		return true; /* the operator's, through the controller: any time */
	return c->ms <= ((uint64_t)s->window + s->grace) * 1000;
}

enum gw_pool_obj gw_change_obj(uint8_t kind)
{
	switch (kind) {
	case CHANGE_BIND: return GW_ASKED;
	case CHANGE_OPEN: return GW_OPEN;
	case CHANGE_OPEN_SCOPED: return GW_SCOPED;
	case CHANGE_LEARNED: return GW_BOUND;
	}
	return GW_N_POOL_OBJ;
}

int gw_change_elem(const struct config *cfg, const struct change *c,
		   struct gw_elem *out)
{
	enum gw_pool_obj obj = gw_change_obj(c->kind);
	size_t alen = addr_family_size(c->family);
	struct config_pool p;

	memset(out, 0, sizeof(*out));
	if (c->kind == CHANGE_QUARANTINE && alen) {
		/* the table's quarantine set: a source prefix as a range */
		if (c->src_len < 1 || c->src_len > alen * 8)
			return -EINVAL;
		quarantine_name(out->set, c->family);
		out->family = c->family;
		out->timeout_ms = c->ms;
		memcpy(out->key, c->src, alen);
		out->key_len = (uint32_t)alen;
		memcpy(out->key_end, out->key, alen);
		for (unsigned bit = c->src_len; bit < alen * 8; bit++)
			out->key_end[bit / 8] |= (uint8_t)(0x80 >> (bit % 8));
		out->has_end = true;
		return 0;
	}
	if (obj == GW_N_POOL_OBJ || !alen ||
	    !config_pool_at(cfg, (size_t)c->service * 2 + (c->family == AF_INET6), &p))
		return -EINVAL;
	gw_name(out->set, cfg, c->service, c->family, obj);
	out->family = c->family;
	out->timeout_ms = c->ms;
	if (c->kind == CHANGE_OPEN) {
		memcpy(out->key, c->addr, alen);
		out->key_len = (uint32_t)alen;
		return 0;
	}
	memcpy(out->key, c->src, alen);
	memcpy(out->key + alen, c->addr, alen);
	out->key_len = (uint32_t)(2 * alen);
	if (c->kind == CHANGE_OPEN_SCOPED) {
		/* the client subnet as a range: its first to its last address */
		if (c->src_len > alen * 8)
			return -EINVAL;
		memcpy(out->key_end, out->key, out->key_len);
		for (unsigned bit = c->src_len; bit < alen * 8; bit++)
			out->key_end[bit / 8] |= (uint8_t)(0x80 >> (bit % 8));
		out->has_end = true;
	}
	return 0;
}

int gw_change_rearm(const struct config *cfg, const struct change *c,
		    struct gw_elem *out)
{
	struct config_pool p;
	size_t alen = addr_family_size(c->family);

	if ((c->kind != CHANGE_OPEN && c->kind != CHANGE_OPEN_SCOPED) || !alen ||
	    !config_pool_at(cfg, (size_t)c->service * 2 + (c->family == AF_INET6), &p) ||
	    !p.svc->window_claims)
		return 0;
	memset(out, 0, sizeof(*out));
	gw_name(out->set, cfg, c->service, c->family, GW_CLAIMS);
	out->family = c->family;
	memcpy(out->key, c->addr, alen);
	out->key_len = (uint32_t)alen;
	out->timeout_ms = 1000; /* only added to be deleted */
	return 1;
}
