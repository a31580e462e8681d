// SPDX-License-Identifier: MIT
#include "zone.h"

#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libzscanner/scanner.h>

#include "config.h"
#include "fileio.h"
#include "log.h"

/* One record as read from the file, before grouping into nodes. */
struct record {
	knot_dname_t *lower;
	knot_dname_t *owner;
	uint32_t ttl;
	uint16_t type;
	uint16_t rdlen;
	uint64_t line;
	uint8_t *rdata;
};

struct loader {
	const char *file;
	const knot_dname_t *apex;
	struct record *recs;
	size_t n, cap;
	unsigned errors;
	bool oom;
};

#define MAX_LOGGED_ERRORS 50

static void load_error(struct loader *ld, uint64_t line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void load_error(struct loader *ld, uint64_t line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (++ld->errors > MAX_LOGGED_ERRORS)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line)
		log_err("%s:%llu: %s", ld->file, (unsigned long long)line, msg);
	else
		log_err("%s: %s", ld->file, msg);
}

static void name_text(const knot_dname_t *name, char *buf, size_t len)
{
	if (!knot_dname_to_str(buf, name, len))
		snprintf(buf, len, "?");
}

static void on_record(zs_scanner_t *s)
{
	struct loader *ld = s->process.data;
	struct record *r;
	char owner[KNOT_DNAME_TXT_MAXLEN + 1];

	if (ld->oom)
		return;
	name_text(s->r_owner, owner, sizeof(owner));
	if (s->r_class != KNOT_CLASS_IN) {
		load_error(ld, s->line_counter, "record '%s': class %u not supported, only IN",
			   owner, s->r_class);
		return;
	}
	if (knot_dname_in_bailiwick(s->r_owner, ld->apex) < 0) {
		load_error(ld, s->line_counter, "record '%s' is outside the zone", owner);
		return;
	}
	if (s->r_type == KNOT_RRTYPE_DNAME) {
		load_error(ld, s->line_counter, "record '%s': DNAME is not supported", owner);
		return;
	}
	if (ld->n >= ZONE_MAX_RECORDS) {
		load_error(ld, s->line_counter, "more than %d records", ZONE_MAX_RECORDS);
		s->state = ZS_STATE_STOP;
		return;
	}
	if (ld->n == ld->cap) {
		size_t cap = ld->cap ? ld->cap * 2 : 256;
		struct record *grown = realloc(ld->recs, cap * sizeof(*grown));

		if (!grown)
			goto oom;
		ld->recs = grown;
		ld->cap = cap;
	}
	r = &ld->recs[ld->n];
	memset(r, 0, sizeof(*r));
	r->owner = knot_dname_copy(s->r_owner, NULL);
	r->lower = knot_dname_copy(s->r_owner, NULL);
	r->rdata = malloc(s->r_data_length ? s->r_data_length : 1);
	if (!r->owner || !r->lower || !r->rdata) {
		free(r->owner);
		free(r->lower);
		free(r->rdata);
		goto oom;
	}
	knot_dname_to_lower(r->lower);
	memcpy(r->rdata, s->r_data, s->r_data_length);
	r->rdlen = (uint16_t)s->r_data_length;
	r->ttl = s->r_ttl;
	r->type = s->r_type;
	r->line = s->line_counter;
	ld->n++;
	return;
oom:
	ld->oom = true;
	s->state = ZS_STATE_STOP;
}

static void on_error(zs_scanner_t *s)
{
	struct loader *ld = s->process.data;

	load_error(ld, s->line_counter, "%s", zs_strerror(s->error.code));
}

static int record_cmp(const void *a, const void *b)
{
	const struct record *x = a, *y = b;
	int c = knot_dname_cmp(x->lower, y->lower);

	if (c)
		return c;
	if (x->type != y->type)
		return x->type < y->type ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

static int node_cmp(const void *a, const void *b)
{
	const struct zone_node *x = a, *y = b;

	return knot_dname_cmp(x->name, y->name);
}

const struct zone_node *zone_get(const struct zone *z, const knot_dname_t *name)
{
	struct zone_node key = { .name = (knot_dname_t *)name };

	return bsearch(&key, z->nodes, z->n_nodes, sizeof(key), node_cmp);
}

bool zone_name_exists(const struct zone *z, const knot_dname_t *name)
{
	size_t lo = 0, hi = z->n_nodes;

	/* first node not before name in canonical order */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (knot_dname_cmp(z->nodes[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == z->n_nodes)
		return false;
	/* in canonical order the subdomains of a name follow it directly,
	 * so an empty non-terminal is followed by one of its descendants */
	return knot_dname_in_bailiwick(z->nodes[lo].name, name) >= 0;
}

const knot_rrset_t *zone_node_rrset(const struct zone_node *n, uint16_t type)
{
	for (uint16_t i = 0; i < n->n_rrsets; i++)
		if (n->rrsets[i].type == type)
			return &n->rrsets[i];
	return NULL;
}

const struct zone_node *zone_find_cut(const struct zone *z,
				      const knot_dname_t *name)
{
	int depth = knot_dname_in_bailiwick(name, z->apex);

	if (depth <= 0)
		return NULL;
	/* walk from just below the apex down to name */
	for (int below = depth - 1; below >= 0; below--) {
		const knot_dname_t *anc = name;
		const struct zone_node *n;

		for (int i = 0; i < below; i++)
			anc = knot_wire_next_label(anc, NULL);
		n = zone_get(z, anc);
		if (n && zone_node_rrset(n, KNOT_RRTYPE_NS))
			return n;
	}
	return NULL;
}

static void free_nodes(struct zone_node *nodes, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (uint16_t j = 0; j < nodes[i].n_rrsets; j++) {
			knot_rdataset_clear(&nodes[i].rrsets[j].rrs, NULL);
			free(nodes[i].rrsets[j].owner);
		}
		free(nodes[i].rrsets);
		free(nodes[i].name);
	}
	free(nodes);
}

void zone_free(struct zone *z)
{
	if (!z)
		return;
	free_nodes(z->nodes, z->n_nodes);
	free(z->apex);
	free(z);
}

/* Group sorted records into nodes and RRsets; lines[k] gets the line of
 * node k's first record. */
static int build_nodes(struct loader *ld, struct zone *z, uint64_t *lines)
{
	char owner[KNOT_DNAME_TXT_MAXLEN + 1];
	size_t i = 0;

	z->nodes = calloc(ld->n ? ld->n : 1, sizeof(*z->nodes));
	if (!z->nodes)
		return -ENOMEM;
	while (i < ld->n) {
		struct zone_node *node = &z->nodes[z->n_nodes];
		size_t end = i, types = 0;

		while (end < ld->n && knot_dname_is_equal(ld->recs[end].lower,
							  ld->recs[i].lower)) {
			if (end == i || ld->recs[end].type != ld->recs[end - 1].type)
				types++;
			end++;
		}
		node->service = -1;
		node->rrsets = calloc(types, sizeof(*node->rrsets));
		if (!node->rrsets)
			return -ENOMEM;
		node->name = knot_dname_copy(ld->recs[i].lower, NULL);
		if (!node->name)
			return -ENOMEM;
		lines[z->n_nodes++] = ld->recs[i].line;
		for (size_t k = i; k < end; k++) {
			struct record *r = &ld->recs[k];
			knot_rrset_t *rr = node->n_rrsets ?
				&node->rrsets[node->n_rrsets - 1] : NULL;
			uint8_t buf[sizeof(knot_rdata_t) + 65536];
			knot_rdata_t *rd = (knot_rdata_t *)buf;

			if (!rr || rr->type != r->type) {
				rr = &node->rrsets[node->n_rrsets++];
				knot_rrset_init(rr, r->owner, r->type,
						KNOT_CLASS_IN, r->ttl);
				r->owner = NULL;
			} else if (rr->ttl != r->ttl) {
				name_text(node->name, owner, sizeof(owner));
				log_warn("%s:%llu: record '%s': TTL %u differs from "
					 "the RRset's TTL %u; using %u",
					 ld->file, (unsigned long long)r->line, owner,
					 r->ttl, rr->ttl, rr->ttl);
			}
			knot_rdata_init(rd, r->rdlen, r->rdata);
			if (knot_rdataset_add(&rr->rrs, rd, NULL) != KNOT_EOK)
				return -ENOMEM;
		}
		i = end;
	}
	return 0;
}

/* Find the line of the first record of a name/type, for messages. */
static uint64_t record_line(const struct loader *ld, const knot_dname_t *name,
			    uint16_t type)
{
	for (size_t i = 0; i < ld->n; i++)
		if (ld->recs[i].type == type &&
		    knot_dname_is_equal(ld->recs[i].lower, name))
			return ld->recs[i].line;
	return 0;
}

static void check_nodes(struct loader *ld, struct zone *z, uint64_t *lines)
{
	char owner[KNOT_DNAME_TXT_MAXLEN + 1];

	for (size_t i = 0; i < z->n_nodes; i++) {
		const struct zone_node *n = &z->nodes[i];
		const knot_rrset_t *cname = zone_node_rrset(n, KNOT_RRTYPE_CNAME);
		bool apex = knot_dname_is_equal(n->name, z->apex);

		name_text(n->name, owner, sizeof(owner));
		if (zone_node_rrset(n, KNOT_RRTYPE_SOA) && !apex)
			load_error(ld, lines[i], "record '%s': SOA outside the apex", owner);
		if (cname && (apex || n->n_rrsets > 1 || cname->rrs.count > 1))
			load_error(ld, lines[i], "record '%s': a CNAME must be the only "
				   "record at its name%s", owner,
				   apex ? " and cannot be at the apex" : "");
	}
}

static int attach_services(struct loader *ld, const struct config *cfg,
			   struct zone *z)
{
	for (size_t s = 0; s < cfg->n_services; s++) {
		const struct config_service *svc = &cfg->services[s];
		uint8_t buf[KNOT_DNAME_MAXLEN];
		struct zone_node *n;
		const struct zone_node *cut;

		if (!knot_dname_from_str(buf, svc->name, sizeof(buf))) {
			load_error(ld, 0, "[service %s]: bad name '%s'", svc->section, svc->name);
			continue;
		}
		knot_dname_to_lower(buf);
		n = (struct zone_node *)zone_get(z, buf);
		if (!n) {
			struct zone_node *grown = realloc(z->nodes,
				(z->n_nodes + 1) * sizeof(*grown));

			if (!grown)
				return -ENOMEM;
			z->nodes = grown;
			n = &z->nodes[z->n_nodes];
			memset(n, 0, sizeof(*n));
			n->name = knot_dname_copy(buf, NULL);
			if (!n->name)
				return -ENOMEM;
			z->n_nodes++;
			n->service = (int)s;
			qsort(z->nodes, z->n_nodes, sizeof(*z->nodes), node_cmp);
		} else {
			static const uint16_t taken[] = {
				KNOT_RRTYPE_A, KNOT_RRTYPE_AAAA, KNOT_RRTYPE_CNAME,
			};

			for (size_t t = 0; t < sizeof(taken) / sizeof(taken[0]); t++) {
				char type[16];

				if (!zone_node_rrset(n, taken[t]))
					continue;
				knot_rrtype_to_string(taken[t], type, sizeof(type));
				load_error(ld, record_line(ld, buf, taken[t]),
					   "record '%s' %s: the name is protected by "
					   "[service %s] (line %u) and answered by the rotor; "
					   "remove the record", svc->name, type,
					   svc->section, svc->line);
			}
			n->service = (int)s;
		}
		cut = zone_find_cut(z, buf);
		if (cut)
			load_error(ld, 0, "[service %s]: name '%s' is at or below a "
				   "delegation", svc->section, svc->name);
	}
	return 0;
}

/*
 * libzscanner resolves a relative $INCLUDE against s->path, which only
 * zs_set_input_file sets (to the directory of the file); text handed over
 * as a string gets the same base from the name of the file it came from.
 */
static int set_include_base(zs_scanner_t *s, const char *file)
{
	char *full = realpath(file, NULL), *dir;

	if (!full)
		return 0; /* as libzscanner: the base stays "." */
	dir = strdup(dirname(full));
	free(full);
	if (!dir)
		return -ENOMEM;
	free(s->path);
	s->path = dir;
	return 0;
}

/* file: the zone file text was read from, or NULL (text from elsewhere). */
static int load(const struct config *cfg, const char *name, const char *file,
		const char *text, size_t len, struct zone **out)
{
	struct loader ld = { .file = name };
	struct zone *z = NULL;
	zs_scanner_t *s = NULL;
	uint64_t *lines = NULL;
	uint8_t apex[KNOT_DNAME_MAXLEN];
	int ret = -EINVAL;

	*out = NULL;
	if (!knot_dname_from_str(apex, cfg->zone, sizeof(apex))) {
		load_error(&ld, 0, "bad zone name '%s'", cfg->zone);
		return -EINVAL;
	}
	knot_dname_to_lower(apex);
	ld.apex = apex;

	s = malloc(sizeof(*s));
	z = calloc(1, sizeof(*z));
	if (!s || !z) {
		ret = -ENOMEM;
		goto out;
	}
	if (zs_init(s, cfg->zone, KNOT_CLASS_IN, 3600) != 0) {
		free(s);
		s = NULL;
		ret = -ENOMEM;
		goto out;
	}
	if (file && set_include_base(s, file) < 0) {
		ret = -ENOMEM;
		goto out;
	}
	if (zs_set_input_string(s, text, len) != 0 ||
	    zs_set_processing(s, on_record, on_error, &ld) != 0) {
		load_error(&ld, 0, "cannot read: %s", zs_strerror(s->error.code));
		goto out;
	}
	zs_parse_all(s);
	if (ld.oom) {
		ret = -ENOMEM;
		goto out;
	}
	if (ld.errors)
		goto out;

	qsort(ld.recs, ld.n, sizeof(*ld.recs), record_cmp);
	z->apex = knot_dname_copy(apex, NULL);
	lines = calloc(ld.n ? ld.n : 1, sizeof(*lines));
	if (!z->apex || !lines || build_nodes(&ld, z, lines) < 0) {
		ret = -ENOMEM;
		goto out;
	}
	check_nodes(&ld, z, lines);

	z->apex_node = zone_get(z, z->apex);
	z->soa = z->apex_node ? zone_node_rrset(z->apex_node, KNOT_RRTYPE_SOA) : NULL;
	if (!z->soa)
		load_error(&ld, 0, "no SOA record at the apex '%s'", cfg->zone);
	else if (z->soa->rrs.count != 1)
		load_error(&ld, record_line(&ld, z->apex, KNOT_RRTYPE_SOA),
			   "more than one SOA record at the apex");
	if (z->apex_node && !zone_node_rrset(z->apex_node, KNOT_RRTYPE_NS))
		load_error(&ld, 0, "no NS records at the apex '%s'", cfg->zone);

	if (attach_services(&ld, cfg, z) < 0) {
		ret = -ENOMEM;
		goto out;
	}
	z->apex_node = zone_get(z, z->apex);
	z->soa = z->apex_node ? zone_node_rrset(z->apex_node, KNOT_RRTYPE_SOA) : NULL;
	z->n_records = ld.n;
	if (!ld.errors) {
		*out = z;
		z = NULL;
		ret = 0;
	}
out:
	if (ld.errors > MAX_LOGGED_ERRORS)
		log_err("%s: %u errors in all, %d shown", name, ld.errors,
			MAX_LOGGED_ERRORS);
	for (size_t i = 0; i < ld.n; i++) {
		free(ld.recs[i].lower);
		free(ld.recs[i].owner);
		free(ld.recs[i].rdata);
	}
	free(ld.recs);
	free(lines);
	if (s) {
		zs_deinit(s);
		free(s);
	}
	zone_free(z);
	return ret;
}

int zone_load_string(const struct config *cfg, const char *name,
		     const char *text, size_t len, struct zone **out)
{
	*out = NULL;
	if (!text)
		return -EINVAL;
	return load(cfg, name, NULL, text, len, out);
}

int zone_load(const struct config *cfg, struct zone **out)
{
	char *text, *msg;
	size_t len;
	int ret;

	*out = NULL;
	ret = fileio_read(cfg->zonefile, ZONE_MAX_FILE, FILEIO_REGULAR, &text,
			  &len, &msg);
	/* the zone has always said this for both */
	if (ret == -EINVAL || ret == -EFBIG) {
		log_err("%s: not a regular file of at most %d bytes",
			cfg->zonefile, ZONE_MAX_FILE);
		ret = -EINVAL;
	} else if (msg) {
		log_err("%s", msg);
	} else if (ret < 0) {
		log_err("%s: out of memory", cfg->zonefile);
	}
	free(msg);
	if (ret < 0)
		return ret;
	ret = load(cfg, cfg->zonefile, cfg->zonefile, text, len, out);
	free(text);
	return ret;
}
