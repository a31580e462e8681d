// SPDX-License-Identifier: MIT
#include "config_values.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "config.h"

int config_parse_resolvers(struct conf *c, const struct conf_key *k, void *obj,
			   char *v)
{
	struct config *cfg = obj;
	struct addr_prefix p[CONFIG_MAX_ECS_RESOLVERS];
	char expected[64];
	char *item = v, *next;
	size_t n = 0;
	bool bad = false;

	do {
		int ret;

		next = strchr(item, ',');
		if (next)
			*next++ = '\0';
		item = conf_trim(item);
		if (n == CONFIG_MAX_ECS_RESOLVERS) {
			snprintf(expected, sizeof(expected), "at most %d prefixes",
				 CONFIG_MAX_ECS_RESOLVERS);
			conf_bad_value(c, k, item, expected);
			return 0;
		}
		ret = addr_prefix_parse(item, &p[n]);
		if (ret < 0 && !strchr(item, '/')) {
			/* a bare address is a prefix of its full length */
			ret = addr_parse(item, &p[n].family, p[n].bytes);
			p[n].len = (uint8_t)(addr_family_size(p[n].family) * 8);
		}
		if (ret < 0) {
			conf_bad_value(c, k, item, "IPv4 or IPv6 addresses or "
				       "prefixes, such as 198.51.100.10 or 2001:db8::/48");
			bad = true;
			continue;
		}
		n++;
	} while ((item = next));
	if (!bad) {
		memcpy(cfg->ecs_resolvers, p, n * sizeof(p[0]));
		cfg->n_ecs_resolvers = n;
	}
	return 0;
}

int config_parse_refresh(struct conf *c, const struct conf_key *k, void *obj,
			 char *v)
{
	static const char *const names[] = {
		[CONFIG_REFRESH_AUTO] = "auto", [CONFIG_REFRESH_KERNEL] = "kernel",
		[CONFIG_REFRESH_READD] = "readd",
	};
	struct config *cfg = obj;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(v, names[i]) == 0) {
			cfg->refresh = (enum config_refresh)i;
			return 0;
		}
	}
	conf_bad_value(c, k, v, "auto, kernel or readd");
	return 0;
}

int config_parse_gateway_down(struct conf *c, const struct conf_key *k, void *obj,
			      char *v)
{
	struct config *cfg = obj;

	if (strcmp(v, "servfail") == 0)
		cfg->on_gateway_down = CONFIG_DOWN_SERVFAIL;
	else if (strcmp(v, "exclude") == 0)
		cfg->on_gateway_down = CONFIG_DOWN_EXCLUDE;
	else
		conf_bad_value(c, k, v, "servfail or exclude");
	return 0;
}

static bool is_wildcard(const struct sockaddr_storage *ss)
{
	static const uint8_t zero[16];
	uint8_t a[16];
	int family;

	return addr_from_sockaddr((const struct sockaddr *)ss, &family, a) == 0 &&
	       memcmp(a, zero, sizeof(a)) == 0;
}

/* "addr, addr, ..." into cfg->listen; nothing is set unless all are good. */
int config_parse_listen(struct conf *c, const struct conf_key *k, void *obj,
			char *v)
{
	struct config *cfg = obj;
	struct sockaddr_storage ss[CONFIG_MAX_LISTEN];
	socklen_t sl[CONFIG_MAX_LISTEN];
	size_t max = k->max < CONFIG_MAX_LISTEN ? k->max : CONFIG_MAX_LISTEN;
	char expected[64];
	char *item = v, *next;
	size_t n = 0, i;
	bool bad = false;

	do {
		next = strchr(item, ',');
		if (next)
			*next++ = '\0';
		item = conf_trim(item);
		if (n == max) {
			snprintf(expected, sizeof(expected),
				 "at most %zu addresses", max);
			conf_bad_value(c, k, item, expected);
			return 0;
		}
		/* a bare IPv6 address reads like one with a port: want [] */
		if (addr_sockaddr_parse(item, 53, &ss[n], &sl[n]) < 0 ||
		    (ss[n].ss_family == AF_INET6 && item[0] != '[')) {
			conf_bad_value(c, k, item,
				       "ipv4[:port], [ipv6]:port or [ipv6]");
			bad = true;
			continue;
		}
		if (is_wildcard(&ss[n])) {
			/* answers must leave from the address that was asked */
			conf_bad_value(c, k, item, "a specific address: the "
				       "wildcard 0.0.0.0 or [::] is not supported");
			bad = true;
			continue;
		}
		for (i = 0; i < n; i++) {
			if (sl[i] == sl[n] && memcmp(&ss[i], &ss[n], sl[n]) == 0)
				break;
		}
		if (i < n) {
			conf_bad_value(c, k, item, "each address only once");
			bad = true;
			continue;
		}
		n++;
	} while ((item = next));
	if (bad)
		return 0;
	memcpy(cfg->listen, ss, n * sizeof(ss[0]));
	memcpy(cfg->listen_len, sl, n * sizeof(sl[0]));
	cfg->n_listen = n;
	return 0;
}

static const char *const role_names[] = {
	[CONFIG_ROLE_STANDALONE] = "standalone", [CONFIG_ROLE_DNS] = "dns",
	[CONFIG_ROLE_GATEWAY] = "gateway", [CONFIG_ROLE_CONTROLLER] = "controller",
};

const char *config_role_name(enum config_role role)
{
	return (size_t)role < sizeof(role_names) / sizeof(role_names[0]) ?
	       role_names[role] : "?";
}

bool config_role_connects(enum config_role me, enum config_role them)
{
	return (me == CONFIG_ROLE_DNS && them == CONFIG_ROLE_GATEWAY) ||
	       ((me == CONFIG_ROLE_DNS || me == CONFIG_ROLE_GATEWAY) &&
		them == CONFIG_ROLE_CONTROLLER);
}

static int parse_role(struct conf *c, const struct conf_key *k, char *v,
		      enum config_role *dst, bool peer)
{
	for (size_t i = peer ? 1 : 0; i < sizeof(role_names) / sizeof(role_names[0]); i++) {
		if (strcmp(v, role_names[i]) == 0) {
			*dst = (enum config_role)i;
			return 0;
		}
	}
	conf_bad_value(c, k, v, peer ? "dns, gateway or controller" :
			"standalone, dns, gateway or controller");
	return 0;
}

int config_parse_role(struct conf *c, const struct conf_key *k, void *obj, char *v)
{
	return parse_role(c, k, v, &((struct config *)obj)->role, false);
}

int config_parse_peer_role(struct conf *c, const struct conf_key *k, void *obj,
			   char *v)
{
	return parse_role(c, k, v, &((struct config_peer *)obj)->role, true);
}

static int parse_one_address(struct conf *c, const struct conf_key *k, char *v,
			     struct sockaddr_storage *ss, socklen_t *len)
{
	if (addr_sockaddr_parse(v, CONFIG_DEFAULT_PEER_PORT, ss, len) < 0 ||
	    (ss->ss_family == AF_INET6 && v[0] != '[') || is_wildcard(ss)) {
		*len = 0;
		conf_bad_value(c, k, v, "ipv4[:port] or [ipv6][:port], not a wildcard");
	}
	return 0;
}

int config_parse_peer_listen(struct conf *c, const struct conf_key *k, void *obj,
			     char *v)
{
	struct config *cfg = obj;

	return parse_one_address(c, k, v, &cfg->peer_listen, &cfg->peer_listen_len);
}

int config_parse_peer_address(struct conf *c, const struct conf_key *k, void *obj,
			      char *v)
{
	struct config_peer *p = obj;

	return parse_one_address(c, k, v, &p->address, &p->address_len);
}

/* An address or a prefix of either family. */
int config_parse_peer_from(struct conf *c, const struct conf_key *k, void *obj,
			   char *v)
{
	struct config_peer *p = obj;
	int ret = addr_prefix_parse(v, &p->from);

	if (ret < 0 && !strchr(v, '/')) {
		ret = addr_parse(v, &p->from.family, p->from.bytes);
		p->from.len = (uint8_t)(addr_family_size(p->from.family) * 8);
	}
	if (ret < 0)
		conf_bad_value(c, k, v, "an address or prefix, such as 198.51.100.0/24");
	else
		p->has_from = true;
	return 0;
}

/* "1" or "1, 2": the key ids a peer may use (two while a key rotates). */
int config_parse_peer_keys(struct conf *c, const struct conf_key *k, void *obj,
			   char *v)
{
	struct config_peer *p = obj;
	char *item = v, *next;
	uint32_t ids[2];
	size_t n = 0;

	do {
		uint64_t id = 0;
		char *d;

		next = strchr(item, ',');
		if (next)
			*next++ = '\0';
		item = conf_trim(item);
		for (d = item; *d >= '0' && *d <= '9' && id <= 65535; d++)
			id = id * 10 + (uint64_t)(*d - '0');
		if (n == 2 || d == item || *d || id < 1 || id > 65535) {
			conf_bad_value(c, k, v, "one or two key ids 1-65535, such as 1 or 1, 2");
			return 0;
		}
		ids[n++] = (uint32_t)id;
	} while ((item = next));
	memcpy(p->key_ids, ids, n * sizeof(ids[0]));
	p->n_key_ids = n;
	return 0;
}
