// SPDX-License-Identifier: MIT
/*
 * Checks across the configurations of one deployment (choreod -t -c A -c B
 * ...): the nodes of the distributed mode index the same services, and the
 * DNS nodes share each pool and its max_open without overlap, so that the
 * exposure bound holds across all of them.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "config.h"
#include "wire.h"

__attribute__((format(printf, 2, 3)))
static int add(struct config_errors *e, const char *fmt, ...)
{
	va_list ap;
	char *msg;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	return n < 0 ? -ENOMEM : config_errors_add(e, msg);
}

/* The slices of one family of service i, over the DNS nodes. */
static int check_family(const struct config *const *cfgs, size_t n, size_t i,
			int family, struct config_errors *errs, int *bad)
{
	const struct config_service *ref = &cfgs[0]->services[i];
	uint64_t shares = 0;
	size_t nodes = 0;
	int ret = 0;

	for (size_t a = 0; a < n && !ret; a++) {
		const struct config_service *s = &cfgs[a]->services[i];
		const struct addr_prefix *sa = family == AF_INET ? &s->slice : &s->slice6;
		bool has = family == AF_INET ? s->has_slice : s->has_slice6;

		if (cfgs[a]->role != CONFIG_ROLE_DNS || !has)
			continue;
		nodes++;
		shares += s->share;
		for (size_t b = 0; b < a && !ret; b++) {
			const struct config_service *t = &cfgs[b]->services[i];
			const struct addr_prefix *sb = family == AF_INET ? &t->slice : &t->slice6;
			bool has_b = family == AF_INET ? t->has_slice : t->has_slice6;
			char x[ADDR_STRLEN], y[ADDR_STRLEN];

			if (cfgs[b]->role != CONFIG_ROLE_DNS || !has_b ||
			    !addr_prefix_overlap(sa, sb))
				continue;
			*bad = 1;
			ret = add(errs, "%s: [service %s]: slice%s %s of node %s overlaps "
				  "slice%s %s of node %s (%s): the nodes would open the "
				  "same addresses", cfgs[a]->path, s->section,
				  family == AF_INET ? "" : "6", addr_prefix_format(sa, x),
				  cfgs[a]->name, family == AF_INET ? "" : "6",
				  addr_prefix_format(sb, y), cfgs[b]->name, cfgs[b]->path);
		}
	}
	if (!ret && nodes && shares != ref->max_open) {
		*bad = 1;
		ret = add(errs, "%s: [service %s]: the DNS nodes' shares of %s add up "
			  "to %llu, not max_open %u: the exposure bound holds only "
			  "when they add up to it", cfgs[0]->path, ref->section,
			  family == AF_INET ? "pool" : "pool6",
			  (unsigned long long)shares, ref->max_open);
	}
	return ret;
}

static const struct config *find_node(const struct config *const *cfgs, size_t n,
				      const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (cfgs[i]->name && strcmp(cfgs[i]->name, name) == 0)
			return cfgs[i];
	return NULL;
}

/*
 * Each link a node configures to a peer it connects to, among the files (a
 * DNS node to its gateways and its controller, a gateway to its
 * controller): that peer must have the role configured for it, know the
 * node back with the node's role, and accept the key id the node will
 * use, or every handshake would be refused.
 */
static int check_links(const struct config *const *cfgs, size_t n,
		       struct config_errors *errs, int *bad)
{
	int ret = 0;

	for (size_t a = 0; a < n && !ret; a++) {
		const struct config *d = cfgs[a];

		for (size_t i = 0; i < d->n_peers && !ret; i++) {
			const struct config_peer *to = &d->peers[i];
			const struct config *g = find_node(cfgs, n, to->name);
			const struct config_peer *back;
			bool accepted = false;

			if (!g || !config_role_connects(d->role, to->role))
				continue;
			if (g->role != to->role) {
				*bad = 1;
				ret = add(errs, "%s: [peer %s] has role %s, but %s "
					  "gives node %s role %s", d->path, to->name,
					  config_role_name(to->role), g->path, g->name,
					  config_role_name(g->role));
				continue;
			}
			back = config_find_peer(g, d->name);
			if (!back || back->role != d->role) {
				*bad = 1;
				ret = add(errs, "%s: %s %s has no [peer %s] with role "
					  "%s: it would refuse the links of %s node %s "
					  "(%s)", g->path, config_role_name(g->role), g->name,
					  d->name, config_role_name(d->role),
					  config_role_name(d->role), d->name, d->path);
				continue;
			}
			for (size_t k = 0; k < back->n_key_ids; k++)
				accepted |= back->key_ids[k] == to->key_ids[0];
			if (!accepted) {
				*bad = 1;
				ret = add(errs, "%s: [peer %s] key does not list key %u, "
					  "the one %s node %s uses with it (%s, [peer %s])",
					  g->path, d->name, to->key_ids[0],
					  config_role_name(d->role), d->name, d->path, to->name);
			}
		}
	}
	return ret;
}

int config_check_set(const struct config *const *cfgs, size_t n,
		     struct config_errors *errs)
{
	uint8_t d0[32], d[32];
	int bad = 0, ret = 0;

	if (n == 0)
		return 0;
	ret = config_digest(cfgs[0], d0);
	for (size_t a = 1; a < n && !ret; a++) {
		ret = config_digest(cfgs[a], d);
		if (!ret && memcmp(d, d0, sizeof(d)) != 0) {
			bad = 1;
			ret = add(errs, "%s: its [service] sections differ from those of %s "
				  "(names, pools, window, grace, binding, max_open or "
				  "window_claims): every node must index the same services",
				  cfgs[a]->path, cfgs[0]->path);
		}
		for (size_t b = 0; b < a && !ret; b++) {
			if (cfgs[a]->name && cfgs[b]->name &&
			    strcmp(cfgs[a]->name, cfgs[b]->name) == 0) {
				bad = 1;
				ret = add(errs, "%s: node name '%s' is also the name in %s",
					  cfgs[a]->path, cfgs[a]->name, cfgs[b]->path);
			}
		}
	}
	if (bad || ret)
		return ret ? ret : -EINVAL;
	ret = check_links(cfgs, n, errs, &bad);
	for (size_t i = 0; i < cfgs[0]->n_services && !ret; i++) {
		ret = check_family(cfgs, n, i, AF_INET, errs, &bad);
		if (!ret && cfgs[0]->services[i].has_pool6)
			ret = check_family(cfgs, n, i, AF_INET6, errs, &bad);
	}
	return ret ? ret : bad ? -EINVAL : 0;
}

static void put_prefix(struct wire_out *w, const struct addr_prefix *p, bool has)
{
	static const uint8_t zero[16];

	wire_put_u8(w, has ? (p->family == AF_INET ? 4 : 6) : 0);
	wire_write(w, has ? p->bytes : zero, 16);
	wire_put_u8(w, has ? p->len : 0);
}

int config_digest(const struct config *cfg, uint8_t out[static 32])
{
	static const char tag[] = "choreo services v1";
	/* one service: two names of at most 255 bytes and 50 of fields */
	uint8_t buf[600];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int len = 0;
	int ok;

	if (!md)
		return -ENOMEM;
	ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
	     EVP_DigestUpdate(md, tag, sizeof(tag) - 1);
	{
		struct wire_out w = wire_out_init(buf, sizeof(buf));

		wire_put_u16(&w, (uint16_t)cfg->n_services);
		ok = ok && EVP_DigestUpdate(md, buf, wire_out_len(&w));
	}
	for (size_t i = 0; ok && i < cfg->n_services; i++) {
		const struct config_service *s = &cfg->services[i];
		struct wire_out w = wire_out_init(buf, sizeof(buf));
		size_t sl = strlen(s->section), nl = s->name ? strlen(s->name) : 0;

		wire_put_u8(&w, (uint8_t)sl);
		wire_write(&w, s->section, sl);
		wire_put_u8(&w, (uint8_t)nl);
		wire_write(&w, s->name, nl);
		put_prefix(&w, &s->pool, true);
		put_prefix(&w, &s->pool6, s->has_pool6);
		wire_put_u32(&w, s->window);
		wire_put_u32(&w, s->grace);
		wire_put_u32(&w, s->binding);
		wire_put_u32(&w, s->max_open);
		wire_put_u32(&w, s->window_claims);
		ok = !wire_out_error(&w) && EVP_DigestUpdate(md, buf, wire_out_len(&w));
	}
	ok = ok && EVP_DigestFinal_ex(md, out, &len) && len == 32;
	EVP_MD_CTX_free(md);
	return ok ? 0 : -EIO;
}
