// SPDX-License-Identifier: MIT
/*
 * choreo.conf(5): choreo's schema for the INI + schema engine (conf.c), the
 * listen list, and the checks that need more than one key.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "conf.h"
#include "config_values.h"
#include "fileio.h"

#define TABLE_MAX     31   /* NFT_TABLE_MAXNAMELEN - 1 */
#define SOCK_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

#define CFG(f) .off = offsetof(struct config, f), \
	       .size = sizeof(((struct config *)0)->f)
#define SVC(f) .off = offsetof(struct config_service, f), \
	       .size = sizeof(((struct config_service *)0)->f)
#define PEER(f) .off = offsetof(struct config_peer, f), \
	       .size = sizeof(((struct config_peer *)0)->f)
#define KEY(f) .off = offsetof(struct config_key, f), \
	       .size = sizeof(((struct config_key *)0)->f)

static void *add_peer(void *ctx, const char *name, unsigned line);
static bool serves_dns(const void *ctx);
static void *add_key(void *ctx, const char *name, unsigned line);
/* "prefix, prefix, ..." (IPv4 or IPv6) into cfg->ecs_resolvers. */


static int parse_rate_resolvers(struct conf *c, const struct conf_key *k,
				void *obj, char *v);
static void *add_service(void *ctx, const char *name, unsigned line);
static int end_service(struct conf *c, void *ctx, void *obj, size_t i);
static int check_all(struct conf *c, void *ctx);

enum {
	K_CONTROL, K_TABLE, K_REFRESH, K_ROLE, K_NODE_NAME, K_PEER_LISTEN,
	K_COMMIT_TIMEOUT, K_GATEWAY_DOWN, K_GATEWAY_DEADLINE, K_NFLOG_GROUP,
	N_DAEMON_KEYS
};

static const struct conf_key daemon_keys[N_DAEMON_KEYS] = {
	[K_CONTROL] = { .name = "control", .type = CONF_PATH, .min = 1,
			.max = SOCK_PATH_MAX, .def_str = CONFIG_DEFAULT_CONTROL,
			CFG(control) },
	[K_TABLE]   = { .name = "table", .type = CONF_IDENT, .min = 1,
			.max = TABLE_MAX, .def_str = CONFIG_DEFAULT_TABLE,
			CFG(table) },
	[K_REFRESH] = { .name = "element_refresh", .type = CONF_CUSTOM,
			.parse = config_parse_refresh },
	[K_ROLE]    = { .name = "role", .type = CONF_CUSTOM, .parse = config_parse_role },
	[K_NODE_NAME] = { .name = "name", .type = CONF_IDENT, .min = 1,
			.max = CONFIG_NAME_MAX, CFG(name) },
	[K_PEER_LISTEN] = { .name = "peer_listen", .type = CONF_CUSTOM,
			.parse = config_parse_peer_listen },
	[K_COMMIT_TIMEOUT] = { .name = "commit_timeout", .type = CONF_UINT,
			.min = 50, .max = 10000, .def = CONFIG_DEFAULT_COMMIT_TIMEOUT,
			CFG(commit_timeout) },
	[K_GATEWAY_DOWN] = { .name = "on_gateway_down", .type = CONF_CUSTOM,
			  .parse = config_parse_gateway_down },
	[K_GATEWAY_DEADLINE] = { .name = "gateway_deadline", .type = CONF_UINT,
			.min = 100, .max = 60000, .def = CONFIG_DEFAULT_GATEWAY_DEADLINE,
			CFG(gateway_deadline) },
	[K_NFLOG_GROUP] = { .name = "nflog_group", .type = CONF_UINT, .min = 0,
			.max = 65535, .def = CONFIG_DEFAULT_NFLOG_GROUP,
			CFG(nflog_group) },
};

enum {
	K_LISTEN, K_ZONE, K_ZONEFILE, K_TTL, K_TCP_TIMEOUT, K_TCP_CLIENTS,
	K_TCP_DEADLINE, K_TCP_PER_SOURCE, K_TCP_OUTPUT,
	K_UDP_PAYLOAD, K_ECS_RESOLVERS, K_ECS_PREFIX4, K_ECS_PREFIX6,
	K_RATE_LIMIT, K_RATE_SLIP, K_RATE_PREFIX4, K_RATE_PREFIX6, K_RATE_SIZE,
	K_RATE_RESOLVERS, K_RATE_RESOLVER_RATE, N_DNS_KEYS
};

static const struct conf_key dns_keys[N_DNS_KEYS] = {
	[K_LISTEN]      = { .name = "listen", .type = CONF_CUSTOM,
			    .max = CONFIG_MAX_LISTEN, .required = true,
			    .parse = config_parse_listen },
	[K_ZONE]        = { .name = "zone", .type = CONF_DNAME, .required = true,
			    CFG(zone) },
	[K_ZONEFILE]    = { .name = "zonefile", .type = CONF_FILE, .min = 1,
			    .max = PATH_MAX - 1, .required = true,
			    CFG(zonefile) },
	/* 0: resolvers do not cache the answer, each client asks */
	[K_TTL]         = { .name = "ttl", .type = CONF_UINT, .min = 0,
			    .max = 86400, .def = CONFIG_DEFAULT_TTL, CFG(ttl) },
	[K_TCP_TIMEOUT] = { .name = "tcp_timeout", .type = CONF_UINT, .min = 1,
			    .max = 3600, .def = CONFIG_DEFAULT_TCP_TIMEOUT,
			    CFG(tcp_timeout) },
	[K_TCP_CLIENTS] = { .name = "tcp_clients", .type = CONF_UINT, .min = 1,
			    .max = 65536, .def = CONFIG_DEFAULT_TCP_CLIENTS,
			    CFG(tcp_clients) },
	[K_TCP_DEADLINE] = { .name = "tcp_deadline", .type = CONF_UINT, .min = 1,
			    .max = 3600, .def = CONFIG_DEFAULT_TCP_DEADLINE,
			    CFG(tcp_deadline) },
	[K_TCP_PER_SOURCE] = { .name = "tcp_per_source", .type = CONF_UINT, .min = 1,
			    .max = 65536, .def = CONFIG_DEFAULT_TCP_PER_SOURCE,
			    CFG(tcp_per_source) },
	[K_TCP_OUTPUT] = { .name = "tcp_output", .type = CONF_UINT, .min = 512,
			    .max = 1048576, .def = CONFIG_DEFAULT_TCP_OUTPUT,
			    CFG(tcp_output) },
	[K_UDP_PAYLOAD] = { .name = "udp_payload", .type = CONF_UINT, .min = 512,
			    .max = 4096, .def = CONFIG_DEFAULT_UDP_PAYLOAD,
			    CFG(udp_payload) },
	[K_ECS_RESOLVERS] = { .name = "ecs_resolvers", .type = CONF_CUSTOM,
			    .max = CONFIG_MAX_ECS_RESOLVERS,
			    .parse = config_parse_resolvers },
	[K_ECS_PREFIX4] = { .name = "ecs_prefix4", .type = CONF_UINT, .min = 8,
			    .max = 32, .def = CONFIG_DEFAULT_ECS_PREFIX4,
			    CFG(ecs_prefix4) },
	[K_ECS_PREFIX6] = { .name = "ecs_prefix6", .type = CONF_UINT, .min = 16,
			    .max = 128, .def = CONFIG_DEFAULT_ECS_PREFIX6,
			    CFG(ecs_prefix6) },
	/* response rate limiting (rrl.h); rate_limit 0 turns it off */
	[K_RATE_LIMIT]  = { .name = "rate_limit", .type = CONF_UINT, .min = 0,
			    .max = 1000000, .def = CONFIG_DEFAULT_RATE_LIMIT,
			    CFG(rate_limit) },
	[K_RATE_SLIP]   = { .name = "rate_limit_slip", .type = CONF_UINT, .min = 0,
			    .max = 100, .def = CONFIG_DEFAULT_RATE_SLIP,
			    CFG(rate_limit_slip) },
	[K_RATE_PREFIX4] = { .name = "rate_limit_prefix4", .type = CONF_UINT,
			    .min = 8, .max = 32, .def = CONFIG_DEFAULT_RATE_PREFIX4,
			    CFG(rate_limit_prefix4) },
	[K_RATE_PREFIX6] = { .name = "rate_limit_prefix6", .type = CONF_UINT,
			    .min = 16, .max = 128, .def = CONFIG_DEFAULT_RATE_PREFIX6,
			    CFG(rate_limit_prefix6) },
	[K_RATE_SIZE]   = { .name = "rate_limit_size", .type = CONF_UINT,
			    .min = 1024, .max = 4194304, .def = CONFIG_DEFAULT_RATE_SIZE,
			    CFG(rate_limit_size) },
	[K_RATE_RESOLVERS] = { .name = "rate_limit_resolvers", .type = CONF_CUSTOM,
			    .max = CONFIG_MAX_ECS_RESOLVERS,
			    .parse = parse_rate_resolvers },
	[K_RATE_RESOLVER_RATE] = { .name = "rate_limit_resolver_rate",
			    .type = CONF_UINT, .min = 0, .max = 1000000,
			    .def = CONFIG_DEFAULT_RESOLVER_RATE,
			    CFG(rate_limit_resolver_rate) },
};

enum {
	K_NAME, K_POOL, K_POOL6, K_SERVER, K_HONEYPOT, K_SERVER6, K_HONEYPOT6,
	K_WINDOW, K_BINDING, K_MAX_OPEN, K_ROTATE, K_MAX_BINDINGS, K_GRACE,
	K_CLAIMS, K_SLICE, K_SLICE6, K_SHARE, K_GATEWAYS, K_MAX_ASKED, N_SVC_KEYS
};

static const struct conf_key svc_keys[N_SVC_KEYS] = {
	[K_NAME]      = { .name = "name", .type = CONF_DNAME, .required = true,
			  SVC(name) },
	[K_POOL]      = { .name = "pool", .type = CONF_PREFIX4, .min = 8,
			  .max = 32, .required = true, SVC(pool) },
	[K_POOL6]     = { .name = "pool6", .type = CONF_PREFIX6, .min = 64,
			  .max = 120, SVC(pool6) },
	[K_SERVER]    = { .name = "server", .type = CONF_IPV4, .required = true,
			  SVC(server) },
	[K_HONEYPOT]  = { .name = "honeypot", .type = CONF_IPV4, .required = true,
			  SVC(honeypot) },
	[K_SERVER6]   = { .name = "server6", .type = CONF_IPV6, SVC(server6) },
	[K_HONEYPOT6] = { .name = "honeypot6", .type = CONF_IPV6,
			  SVC(honeypot6) },
	/* the default, [dns] ttl, is filled in after the whole file is read */
	[K_WINDOW]    = { .name = "window", .type = CONF_UINT, .min = 1,
			  .max = 86400, SVC(window) },
	[K_BINDING]   = { .name = "binding", .type = CONF_UINT, .min = 1,
			  .max = 604800, .def = CONFIG_DEFAULT_BINDING,
			  SVC(binding) },
	[K_MAX_OPEN]  = { .name = "max_open", .type = CONF_UINT, .min = 1,
			  .max = CONFIG_MAX_OPEN_CAP,
			  .def = CONFIG_DEFAULT_MAX_OPEN, SVC(max_open) },
	[K_ROTATE]    = { .name = "rotate", .type = CONF_UINT, .min = 0,
			  .max = 86400, .def = CONFIG_DEFAULT_ROTATE,
			  SVC(rotate) },
	[K_MAX_BINDINGS] = { .name = "max_bindings", .type = CONF_UINT, .min = 1,
			  .max = CONFIG_MAX_BINDINGS_CAP,
			  .def = CONFIG_DEFAULT_MAX_BINDINGS, SVC(max_bindings) },
	[K_GRACE]     = { .name = "grace", .type = CONF_UINT, .min = 0,
			  .max = 60, .def = CONFIG_DEFAULT_GRACE, SVC(grace) },
	[K_CLAIMS]    = { .name = "window_claims", .type = CONF_UINT, .min = 0,
			  .max = CONFIG_MAX_CLAIMS, .def = 0, SVC(window_claims) },
	/* role dns only: this node's part of the pools */
	[K_SLICE]     = { .name = "slice", .type = CONF_PREFIX4, .min = 8,
			  .max = 32, SVC(slice) },
	[K_SLICE6]    = { .name = "slice6", .type = CONF_PREFIX6, .min = 64,
			  .max = 128, SVC(slice6) },
	[K_SHARE]     = { .name = "share", .type = CONF_UINT, .min = 1,
			  .max = CONFIG_MAX_OPEN_CAP, SVC(share) },
	[K_GATEWAYS]  = { .name = "gateways", .type = CONF_PATH, .min = 1,
			  .max = 1023, SVC(gateways) },
	/* the kernel's asked and scoped sets: answers' entries */
	[K_MAX_ASKED] = { .name = "max_asked", .type = CONF_UINT, .min = 1,
			  .max = CONFIG_MAX_ASKED_CAP,
			  .def = CONFIG_DEFAULT_MAX_ASKED, SVC(max_asked) },
};

enum { P_ROLE, P_ADDRESS, P_KEY, P_FROM, N_PEER_KEYS };

static const struct conf_key peer_keys[N_PEER_KEYS] = {
	[P_ROLE]    = { .name = "role", .type = CONF_CUSTOM, .required = true,
			.parse = config_parse_peer_role },
	[P_ADDRESS] = { .name = "address", .type = CONF_CUSTOM,
			.parse = config_parse_peer_address },
	[P_KEY]     = { .name = "key", .type = CONF_CUSTOM, .required = true,
			.parse = config_parse_peer_keys },
	[P_FROM]    = { .name = "from", .type = CONF_CUSTOM, .parse = config_parse_peer_from },
};

enum { KEY_FILE, N_KEY_KEYS };

static const struct conf_key key_keys[N_KEY_KEYS] = {
	[KEY_FILE] = { .name = "file", .type = CONF_FILE, .min = 1,
		       .max = PATH_MAX - 1, .required = true, KEY(file) },
};

enum { S_DAEMON, S_DNS, S_SERVICE, S_PEER, S_KEY, N_SECTIONS };

static const struct conf_section sections[N_SECTIONS] = {
	[S_DAEMON]  = { .name = "daemon", .keys = daemon_keys,
			.n_keys = N_DAEMON_KEYS },
	/* a gateway has no DNS of its own */
	[S_DNS]     = { .name = "dns", .keys = dns_keys, .n_keys = N_DNS_KEYS,
			.required_if = serves_dns },
	[S_SERVICE] = { .name = "service", .named = true, .required = true,
			.max = CONFIG_MAX_SERVICES, .keys = svc_keys,
			.n_keys = N_SVC_KEYS, .add = add_service,
			.end = end_service },
	[S_PEER]    = { .name = "peer", .named = true, .max = CONFIG_MAX_PEERS,
			.keys = peer_keys, .n_keys = N_PEER_KEYS, .add = add_peer },
	[S_KEY]     = { .name = "key", .named = true, .max = CONFIG_MAX_KEYS,
			.keys = key_keys, .n_keys = N_KEY_KEYS, .add = add_key },
};

static const struct conf_schema schema = {
	.sections = sections, .n_sections = N_SECTIONS, .check = check_all,
};

/* The line of key K_* of the i-th service, 0 if it was not given. */
static unsigned svc_line(const struct conf *c, size_t i, size_t key)
{
	return conf_key_line(c, &sections[S_SERVICE], i, key);
}











/* [dns] rate_limit_resolvers: the ecs_resolvers parser, into a scratch
 * config, then copied. */
static int parse_rate_resolvers(struct conf *c, const struct conf_key *k,
				void *obj, char *v)
{
	struct config *cfg = obj, *scratch = calloc(1, sizeof(*scratch));
	int ret;

	if (!scratch)
		return -ENOMEM;
	ret = config_parse_resolvers(c, k, scratch, v);
	if (ret == 0 && scratch->n_ecs_resolvers) {
		memcpy(cfg->rate_limit_resolvers, scratch->ecs_resolvers,
		       sizeof(cfg->rate_limit_resolvers));
		cfg->n_rate_limit_resolvers = scratch->n_ecs_resolvers;
	}
	free(scratch);
	return ret;
}

/* One more entry of a named section's array; NULL without memory. */
static void *grow_one(void **array, size_t *n, size_t size)
{
	char *grown = realloc(*array, (*n + 1) * size);

	if (!grown)
		return NULL;
	*array = grown;
	memset(grown + *n * size, 0, size);
	return grown + (*n)++ * size;
}

static void *add_peer(void *ctx, const char *name, unsigned line)
{
	struct config *cfg = ctx;
	char *copy = strdup(name);
	struct config_peer *p = copy ? grow_one((void **)&cfg->peers, &cfg->n_peers,
						sizeof(*p)) : NULL;

	if (!p) {
		free(copy);
		return NULL;
	}
	p->name = copy;
	p->line = line;
	return p;
}

/* [key ID]: the id is checked once the file is read (check_nodes). */
static void *add_key(void *ctx, const char *name, unsigned line)
{
	struct config *cfg = ctx;
	struct config_key *k = grow_one((void **)&cfg->keys, &cfg->n_keys, sizeof(*k));
	uint32_t id = 0;

	if (!k)
		return NULL;
	for (const char *d = name; *d && id <= 65535; d++)
		id = *d >= '0' && *d <= '9' ? id * 10 + (uint32_t)(*d - '0') : 65536;
	k->id = id;
	k->line = line;
	return k;
}

static bool serves_dns(const void *ctx)
{
	enum config_role r = ((const struct config *)ctx)->role;

	return r != CONFIG_ROLE_GATEWAY && r != CONFIG_ROLE_CONTROLLER;
}

const struct config_peer *config_find_peer(const struct config *cfg,
					   const char *name)
{
	for (size_t i = 0; i < cfg->n_peers; i++)
		if (strcmp(cfg->peers[i].name, name) == 0)
			return &cfg->peers[i];
	return NULL;
}

static void *add_service(void *ctx, const char *name, unsigned line)
{
	struct config *cfg = ctx;
	struct config_service *grown, *svc;

	/* one at a time: there are at most CONFIG_MAX_SERVICES */
	grown = realloc(cfg->services, (cfg->n_services + 1) * sizeof(*grown));
	if (!grown)
		return NULL;
	cfg->services = grown;
	svc = &grown[cfg->n_services];
	memset(svc, 0, sizeof(*svc));
	svc->section = strdup(name);
	if (!svc->section)
		return NULL;
	svc->line = line;
	cfg->n_services++;
	return svc;
}

/* server6 and honeypot6 go with pool6. */
static int end_service(struct conf *c, void *ctx, void *obj, size_t i)
{
	const struct config_service *s = obj;
	unsigned pool6 = svc_line(c, i, K_POOL6);

	(void)ctx;
	for (size_t k = K_SERVER6; k <= K_HONEYPOT6; k++) {
		unsigned line = svc_line(c, i, k);

		if (pool6 && !line)
			conf_error(c, s->line,
				   "[service %s]: missing key '%s' (required with 'pool6')",
				   s->section, svc_keys[k].name);
		else if (!pool6 && line)
			conf_error(c, line, "[service %s]: key '%s' requires 'pool6'",
				   s->section, svc_keys[k].name);
	}
	return 0;
}

/* Both normalised: lower case, trailing dot. */
static bool dname_in_zone(const char *name, const char *zone)
{
	size_t n = strlen(name), z = strlen(zone);

	if (n == z)
		return strcmp(name, zone) == 0;
	return n > z && name[n - z - 1] == '.' && strcmp(name + n - z, zone) == 0;
}

/*
 * choreod's listen addresses inside a pool are never handed out and the
 * gateway lets them through; a pool made only of them has nothing to give.
 */
static void check_pool_not_listen(struct conf *c, const struct config *cfg,
				  const struct config_service *s,
				  const struct addr_prefix *pool, unsigned line)
{
	unsigned bits = addr_prefix_host_bits(pool);
	uint64_t size, inside = 0;

	if (pool->family != AF_INET && pool->family != AF_INET6)
		return;
	for (size_t i = 0; i < cfg->n_listen; i++) {
		uint8_t l[16];
		int family;

		if (addr_from_sockaddr((const struct sockaddr *)&cfg->listen[i],
				       &family, l) == 0 &&
		    addr_prefix_contains(pool, family, l))
			inside++;
	}
	if (bits >= 16)
		return; /* 16 listen addresses cannot exhaust it */
	size = ((uint64_t)1 << bits) - (pool->family == AF_INET6);
	if (inside >= size) {
		char a[ADDR_STRLEN];

		conf_error(c, line, "[service %s]: pool %s holds only choreod's "
			   "listen addresses: no address is left to hand out",
			   s->section, addr_prefix_format(pool, a));
	}
}

/* A service against the ones before it: names and pools are each one's. */
static void check_against_earlier(struct conf *c, const struct config *cfg,
				  size_t i)
{
	const struct config_service *s = &cfg->services[i];
	char a[ADDR_STRLEN], b[ADDR_STRLEN];

	for (size_t j = 0; j < i; j++) {
		const struct config_service *t = &cfg->services[j];

		if (s->name && t->name && strcmp(s->name, t->name) == 0)
			conf_error(c, svc_line(c, i, K_NAME),
				   "[service %s]: name '%s' is already used by [service %s] (line %u)",
				   s->section, s->name, t->section,
				   svc_line(c, j, K_NAME));
		if (s->pool.family == AF_INET && t->pool.family == AF_INET &&
		    addr_prefix_overlap(&s->pool, &t->pool))
			conf_error(c, svc_line(c, i, K_POOL),
				   "[service %s]: pool %s overlaps pool %s of [service %s] (line %u)",
				   s->section, addr_prefix_format(&s->pool, a),
				   addr_prefix_format(&t->pool, b), t->section,
				   svc_line(c, j, K_POOL));
		if (s->pool6.family == AF_INET6 && t->pool6.family == AF_INET6 &&
		    addr_prefix_overlap(&s->pool6, &t->pool6))
			conf_error(c, svc_line(c, i, K_POOL6),
				   "[service %s]: pool6 %s overlaps pool6 %s of [service %s] (line %u)",
				   s->section, addr_prefix_format(&s->pool6, a),
				   addr_prefix_format(&t->pool6, b), t->section,
				   svc_line(c, j, K_POOL6));
	}
}

static unsigned peer_line(const struct conf *c, size_t i, size_t key)
{
	return conf_key_line(c, &sections[S_PEER], i, key);
}

static unsigned daemon_line(const struct conf *c, size_t key)
{
	return conf_key_line(c, &sections[S_DAEMON], 0, key);
}

static const struct config_key *find_key(const struct config *cfg, uint32_t id)
{
	for (size_t i = 0; i < cfg->n_keys; i++)
		if (cfg->keys[i].id == id)
			return &cfg->keys[i];
	return NULL;
}

/* "gw1, gw2": each a gateway peer. */
static void check_gateways(struct conf *c, const struct config *cfg, size_t i)
{
	const struct config_service *s = &cfg->services[i];
	char list[1024], *item, *save = NULL;

	snprintf(list, sizeof(list), "%s", s->gateways);
	for (item = strtok_r(list, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		const struct config_peer *p;

		item = conf_trim(item);
		p = config_find_peer(cfg, item);
		if (!p || p->role != CONFIG_ROLE_GATEWAY)
			conf_error(c, svc_line(c, i, K_GATEWAYS),
				   "[service %s]: gateways: '%.63s' is not a [peer] "
				   "with role gateway", s->section, item);
	}
}

/* A DNS node's slice of a pool: inside it, with room for its share. */
static void check_slice(struct conf *c, const struct config_service *s, size_t i,
			const struct addr_prefix *pool, const struct addr_prefix *slice,
			size_t key)
{
	if (pool->family != slice->family || slice->len < pool->len ||
	    !addr_prefix_contains(pool, slice->family, slice->bytes)) {
		char a[ADDR_STRLEN], b[ADDR_STRLEN];

		conf_error(c, svc_line(c, i, key), "[service %s]: %s %s is not inside "
			   "the pool %s", s->section, svc_keys[key].name,
			   addr_prefix_format(slice, a), addr_prefix_format(pool, b));
	}
}

const struct config_peer *config_controller(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->n_peers; i++)
		if (cfg->peers[i].role == CONFIG_ROLE_CONTROLLER)
			return &cfg->peers[i];
	return NULL;
}

/* Whether a node of role `me` may have a [peer] of role `them`: a DNS node
 * talks to gateways and a controller, a gateway to DNS nodes and a
 * controller, a controller to DNS nodes and gateways. */
static bool talks_to(enum config_role me, enum config_role them)
{
	switch (me) {
	case CONFIG_ROLE_DNS:
		return them == CONFIG_ROLE_GATEWAY || them == CONFIG_ROLE_CONTROLLER;
	case CONFIG_ROLE_GATEWAY:
		return them == CONFIG_ROLE_DNS || them == CONFIG_ROLE_CONTROLLER;
	case CONFIG_ROLE_CONTROLLER:
		return them == CONFIG_ROLE_DNS || them == CONFIG_ROLE_GATEWAY;
	default:
		return false;
	}
}

/* The [daemon] keys of the distributed mode, by role. */
static void check_daemon_roles(struct conf *c, struct config *cfg)
{
	bool dns = cfg->role == CONFIG_ROLE_DNS, gw = cfg->role == CONFIG_ROLE_GATEWAY;
	bool ctl = cfg->role == CONFIG_ROLE_CONTROLLER;

	if ((dns || gw || ctl) && !cfg->name)
		conf_error(c, conf_line(c), "[daemon]: role %s needs a 'name'",
			   config_role_name(cfg->role));
	if ((gw || ctl) && !cfg->peer_listen_len &&
	    conf_key_ok(c, &sections[S_DAEMON], 0, K_PEER_LISTEN))
		conf_error(c, conf_line(c), "[daemon]: role %s needs 'peer_listen', "
			   "the address %s connect to", config_role_name(cfg->role),
			   gw ? "DNS nodes" : "DNS nodes and gateways");
	if (!dns && daemon_line(c, K_GATEWAY_DOWN))
		conf_error(c, daemon_line(c, K_GATEWAY_DOWN),
			   "[daemon]: key 'on_gateway_down' is for role dns");
	if (!dns && daemon_line(c, K_GATEWAY_DEADLINE))
		conf_error(c, daemon_line(c, K_GATEWAY_DEADLINE),
			   "[daemon]: key 'gateway_deadline' is for role dns");
	if (!gw && !ctl && daemon_line(c, K_PEER_LISTEN))
		conf_error(c, daemon_line(c, K_PEER_LISTEN),
			   "[daemon]: key 'peer_listen' is for roles gateway and controller");
	if (!gw && daemon_line(c, K_NFLOG_GROUP))
		conf_error(c, daemon_line(c, K_NFLOG_GROUP),
			   "[daemon]: key 'nflog_group' is for role gateway");
	if (cfg->role == CONFIG_ROLE_STANDALONE && (cfg->n_peers || cfg->n_keys))
		conf_error(c, cfg->n_peers ? cfg->peers[0].line : cfg->keys[0].line,
			   "[peer] and [key] sections are for roles dns, gateway and "
			   "controller ([daemon] role)");
}

/* The keys of the distributed mode, by role (docs/protocol.md). */
static void check_nodes(struct conf *c, struct config *cfg)
{
	static const size_t dns_only[] = { K_SLICE, K_SLICE6, K_SHARE, K_GATEWAYS };
	bool dns = cfg->role == CONFIG_ROLE_DNS, gw = cfg->role == CONFIG_ROLE_GATEWAY;
	bool ctl = cfg->role == CONFIG_ROLE_CONTROLLER;
	size_t n_gateways = 0, n_dns = 0, n_ctl = 0;

	check_daemon_roles(c, cfg);
	for (size_t i = 0; i < cfg->n_keys; i++) {
		if (cfg->keys[i].id < 1 || cfg->keys[i].id > 65535)
			conf_error(c, cfg->keys[i].line, "[key]: the name of a key "
				   "section is its id, a number 1-65535");
		for (size_t j = 0; j < i; j++)
			if (cfg->keys[j].id == cfg->keys[i].id)
				conf_error(c, cfg->keys[i].line, "[key %u]: the same id "
					   "as the key at line %u", cfg->keys[i].id,
					   cfg->keys[j].line);
	}
	for (size_t i = 0; i < cfg->n_peers; i++) {
		const struct config_peer *p = &cfg->peers[i];

		n_gateways += p->role == CONFIG_ROLE_GATEWAY;
		n_dns += p->role == CONFIG_ROLE_DNS;
		n_ctl += p->role == CONFIG_ROLE_CONTROLLER;
		if (cfg->name && strcasecmp(p->name, cfg->name) == 0)
			conf_error(c, p->line, "[peer %s]: the name of this node itself",
				   p->name);
		for (size_t k = 0; k < p->n_key_ids; k++)
			if (!find_key(cfg, p->key_ids[k]))
				conf_error(c, peer_line(c, i, P_KEY), "[peer %s]: key %u has "
					   "no [key %u] section", p->name, p->key_ids[k],
					   p->key_ids[k]);
		if (cfg->role != CONFIG_ROLE_STANDALONE && !talks_to(cfg->role, p->role) &&
		    conf_key_ok(c, &sections[S_PEER], i, P_ROLE))
			conf_error(c, p->line, "[peer %s]: a node of role %s does not "
				   "talk to one of role %s", p->name,
				   config_role_name(cfg->role), config_role_name(p->role));
		/* whoever connects needs the address: DNS nodes connect to
		 * gateways, both connect to the controller */
		if (((dns && p->role == CONFIG_ROLE_GATEWAY) ||
		     p->role == CONFIG_ROLE_CONTROLLER) && !p->address_len &&
		    conf_key_ok(c, &sections[S_PEER], i, P_ADDRESS))
			conf_error(c, p->line, "[peer %s]: a %s node needs the "
				   "'address' of %s %s", p->name, config_role_name(cfg->role),
				   p->role == CONFIG_ROLE_CONTROLLER ? "its" : "each",
				   config_role_name(p->role));
		if (p->role == CONFIG_ROLE_CONTROLLER && p->has_from)
			conf_error(c, peer_line(c, i, P_FROM), "[peer %s]: 'from' is "
				   "for the nodes that connect here (not a controller)",
				   p->name);
	}
	if (n_ctl > 1)
		conf_error(c, conf_line(c), "at most one [peer NAME] with role "
			   "controller (%zu given)", n_ctl);
	if (dns && !n_gateways)
		conf_error(c, conf_line(c), "role dns needs at least one [peer NAME] "
			   "with role gateway");
	if (gw && !n_dns)
		conf_error(c, conf_line(c), "role gateway needs at least one [peer NAME] "
			   "with role dns");
	if (ctl && !n_dns && !n_gateways)
		conf_error(c, conf_line(c), "role controller needs [peer NAME] sections "
			   "with role dns or gateway");
	for (size_t i = 0; i < cfg->n_services; i++) {
		struct config_service *s = &cfg->services[i];

		s->has_slice = svc_line(c, i, K_SLICE) && conf_key_ok(c, &sections[S_SERVICE], i, K_SLICE);
		s->has_slice6 = svc_line(c, i, K_SLICE6) && conf_key_ok(c, &sections[S_SERVICE], i, K_SLICE6);
		if (!dns) {
			for (size_t k = 0; k < sizeof(dns_only) / sizeof(dns_only[0]); k++)
				if (svc_line(c, i, dns_only[k]))
					conf_error(c, svc_line(c, i, dns_only[k]),
						   "[service %s]: key '%s' is for role dns",
						   s->section, svc_keys[dns_only[k]].name);
			s->has_slice = s->has_slice6 = false;
			s->share = 0;
			continue;
		}
		if (config_controller(cfg)) {
			/* the controller assigns them (docs/protocol.md, ASSIGN) */
			static const size_t assigned[] = { K_SLICE, K_SLICE6, K_SHARE };

			for (size_t k = 0; k < 3; k++)
				if (svc_line(c, i, assigned[k]))
					conf_error(c, svc_line(c, i, assigned[k]),
						   "[service %s]: key '%s': with a controller "
						   "it assigns the slices and shares",
						   s->section, svc_keys[assigned[k]].name);
			s->has_slice = s->has_slice6 = false;
			s->share = 0;
			if (s->gateways)
				check_gateways(c, cfg, i);
			continue;
		}
		if (!svc_line(c, i, K_SLICE))
			conf_error(c, s->line, "[service %s]: missing key 'slice' (role dns: "
				   "this node's part of the pool)", s->section);
		if (s->has_pool6 && !svc_line(c, i, K_SLICE6))
			conf_error(c, s->line, "[service %s]: missing key 'slice6' (role dns, "
				   "with pool6)", s->section);
		if (!s->has_pool6 && svc_line(c, i, K_SLICE6))
			conf_error(c, svc_line(c, i, K_SLICE6), "[service %s]: key 'slice6' "
				   "requires 'pool6'", s->section);
		if (!svc_line(c, i, K_SHARE))
			conf_error(c, s->line, "[service %s]: missing key 'share' (role dns: "
				   "this node's part of max_open)", s->section);
		else if (s->share > s->max_open)
			conf_error(c, svc_line(c, i, K_SHARE), "[service %s]: share %u is "
				   "more than max_open %u", s->section, s->share, s->max_open);
		if (s->has_slice)
			check_slice(c, s, i, &s->pool, &s->slice, K_SLICE);
		if (s->has_slice6 && s->has_pool6)
			check_slice(c, s, i, &s->pool6, &s->slice6, K_SLICE6);
		if (s->gateways)
			check_gateways(c, cfg, i);
	}
}

/*
 * Once the whole file is read: defaults taken from other sections, names
 * against the zone, services against each other. Reported service by
 * service, in file order.
 */
static int check_all(struct conf *c, void *ctx)
{
	struct config *cfg = ctx;

	for (size_t i = 0; i < cfg->n_services; i++) {
		struct config_service *s = &cfg->services[i];

		if (!svc_line(c, i, K_WINDOW))
			s->window = cfg->ttl;
		s->has_pool6 = svc_line(c, i, K_POOL6) != 0;
		s->has_server6 = svc_line(c, i, K_SERVER6) &&
				 svc_line(c, i, K_HONEYPOT6);
	}
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct config_service *s = &cfg->services[i];

		/* a gateway hands out no TTL: its DNS nodes check their own */
		if (serves_dns(cfg) && s->window < cfg->ttl &&
		    conf_key_ok(c, &sections[S_SERVICE], i, K_WINDOW) &&
		    conf_key_ok(c, &sections[S_DNS], 0, K_TTL))
			conf_error(c, svc_line(c, i, K_WINDOW),
				   "[service %s]: window %u is shorter than [dns] ttl %u: "
				   "a resolver could hand out the address after its "
				   "window closed; make window at least ttl",
				   s->section, s->window, cfg->ttl);
		if (s->name && cfg->zone && !dname_in_zone(s->name, cfg->zone))
			conf_error(c, svc_line(c, i, K_NAME),
				   "[service %s]: name '%s' is not inside zone '%s'",
				   s->section, s->name, cfg->zone);
		check_pool_not_listen(c, cfg, s, &s->pool, svc_line(c, i, K_POOL));
		if (s->has_pool6)
			check_pool_not_listen(c, cfg, s, &s->pool6,
					      svc_line(c, i, K_POOL6));
		check_against_earlier(c, cfg, i);
	}
	check_nodes(c, cfg);
	return 0;
}

int config_errors_add(void *arg, char *msg)
{
	struct config_errors *e = arg;

	if (!e) {
		free(msg);
		return 0;
	}
	if (e->n == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 8;
		char **grown = realloc(e->msg, cap * sizeof(*grown));

		if (!grown) {
			free(msg);
			return -ENOMEM;
		}
		e->msg = grown;
		e->cap = cap;
	}
	e->msg[e->n++] = msg;
	return 0;
}

int config_parse(const char *name, const char *buf, size_t len,
		 struct config **out, struct config_errors *errs)
{
	struct config *cfg;
	int ret;

	if (out)
		*out = NULL;
	if (!buf && len)
		return -EINVAL;
	if (!name)
		name = "(config)";
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg || !(cfg->path = strdup(name))) {
		free(cfg);
		return -ENOMEM;
	}
	ret = conf_parse(&schema, name, buf, len, cfg, config_errors_add, errs);
	if (ret == 0 && out) {
		*out = cfg;
		return 0;
	}
	config_free(cfg);
	return ret;
}

int config_load(const char *path, struct config **out,
		struct config_errors *errs)
{
	char *buf, *msg;
	size_t len;
	int ret;

	if (out)
		*out = NULL;
	ret = fileio_read(path, CONFIG_MAX_FILE, 0, &buf, &len, &msg);
	if (ret < 0) {
		if (msg)
			config_errors_add(errs, msg);
		return ret;
	}
	ret = config_parse(path, buf, len, out, errs);
	free(buf);
	return ret;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->n_services; i++) {
		free(cfg->services[i].section);
		free(cfg->services[i].name);
		free(cfg->services[i].gateways);
	}
	free(cfg->services);
	for (size_t i = 0; i < cfg->n_peers; i++)
		free(cfg->peers[i].name);
	free(cfg->peers);
	for (size_t i = 0; i < cfg->n_keys; i++)
		free(cfg->keys[i].file);
	free(cfg->keys);
	free(cfg->name);
	free(cfg->path);
	free(cfg->control);
	free(cfg->table);
	free(cfg->zone);
	free(cfg->zonefile);
	free(cfg);
}

void config_errors_free(struct config_errors *errs)
{
	if (!errs)
		return;
	for (size_t i = 0; i < errs->n; i++)
		free(errs->msg[i]);
	free(errs->msg);
	errs->msg = NULL;
	errs->n = errs->cap = 0;
}

int config_find_service(const struct config *cfg, const char *name)
{
	size_t n;

	if (!cfg || !name)
		return -1;
	n = strlen(name);
	if (n && name[n - 1] == '.')
		n--;
	for (size_t i = 0; i < cfg->n_services; i++) {
		const char *s = cfg->services[i].name;
		size_t sn = s ? strlen(s) : 0;

		if (sn && s[sn - 1] == '.')
			sn--;
		if (s && sn == n && strncasecmp(s, name, n) == 0)
			return (int)i;
	}
	return -1;
}
