/* SPDX-License-Identifier: MIT */
/*
 * The configuration file (choreo.conf(5)): choreo's schema for the INI +
 * schema engine (conf.h) and the checks across its keys and sections. Every
 * error is collected with its file and line; nothing is applied unless the
 * whole file is valid.
 */
#ifndef CHOREO_CONFIG_H
#define CHOREO_CONFIG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "addr.h"

#define CONFIG_MAX_LISTEN   16
#define CONFIG_MAX_SERVICES 256
#define CONFIG_MAX_FILE     (1024 * 1024) /* bytes; larger files are refused */
#define CONFIG_MAX_OPEN_CAP 4096          /* upper bound of max_open */

#define CONFIG_DEFAULT_CONTROL     "/run/choreo/control.sock"
#define CONFIG_DEFAULT_TABLE       "choreo"
#define CONFIG_DEFAULT_TTL         5
#define CONFIG_DEFAULT_BINDING     600
#define CONFIG_DEFAULT_MAX_OPEN    16
#define CONFIG_DEFAULT_ROTATE      0
#define CONFIG_DEFAULT_MAX_BINDINGS 1048576
#define CONFIG_DEFAULT_MAX_ASKED 65536    /* size of the asked and scoped sets */
#define CONFIG_MAX_ASKED_CAP 16777216
#define CONFIG_MAX_BINDINGS_CAP    16777216
#define CONFIG_DEFAULT_TCP_TIMEOUT 10
#define CONFIG_DEFAULT_TCP_CLIENTS 256
#define CONFIG_DEFAULT_TCP_DEADLINE 5       /* s */
#define CONFIG_DEFAULT_TCP_PER_SOURCE 16
#define CONFIG_DEFAULT_TCP_OUTPUT  16384    /* bytes */
#define CONFIG_DEFAULT_UDP_PAYLOAD 1232
#define CONFIG_DEFAULT_GRACE       2
#define CONFIG_MAX_CLAIMS          1000
#define CONFIG_DEFAULT_ECS_PREFIX4 24
#define CONFIG_DEFAULT_ECS_PREFIX6 56
#define CONFIG_MAX_ECS_RESOLVERS   64
/* response rate limiting (rrl.h; choreo.conf(5), "Rate limiting") */
#define CONFIG_DEFAULT_RATE_LIMIT  200   /* answers/s per source prefix */
#define CONFIG_DEFAULT_RATE_SLIP   2     /* every 2nd limited query: TC */
#define CONFIG_DEFAULT_RATE_PREFIX4 24
#define CONFIG_DEFAULT_RATE_PREFIX6 56
#define CONFIG_DEFAULT_RESOLVER_RATE 2000 /* answers/s per resolver address */
#define CONFIG_DEFAULT_RATE_SIZE   65536 /* buckets */
#define CONFIG_MAX_PEERS           64
#define CONFIG_MAX_KEYS            4
#define CONFIG_NAME_MAX            63
#define CONFIG_DEFAULT_COMMIT_TIMEOUT 1000 /* ms */
#define CONFIG_DEFAULT_GATEWAY_DEADLINE 2000 /* ms */
#define CONFIG_DEFAULT_PEER_PORT   5300
#define CONFIG_DEFAULT_NFLOG_GROUP 5353 /* a gateway's learned bindings, to relay */

/* What this node is (choreod(8), "Distributed mode"). */
enum config_role {
	CONFIG_ROLE_STANDALONE = 0, /* DNS, rotor and the local gateway */
	CONFIG_ROLE_DNS,            /* DNS and rotor; commits to gateways */
	CONFIG_ROLE_GATEWAY,        /* the table; applies DNS nodes' changes */
	CONFIG_ROLE_CONTROLLER,     /* the control plane: membership, the
				       config digest, bindings relayed */
};

/* What a DNS node's answers do when a gateway carrying their service is
 * down: not connected, or no acknowledgement for gateway_deadline ms. */
enum config_gateway_down {
	CONFIG_DOWN_SERVFAIL = 0,   /* they are SERVFAIL (safety) */
	CONFIG_DOWN_EXCLUDE,        /* they wait only for the others; at
				       least one per service (availability) */
};

/* [peer NAME]: a node this one talks to. */
struct config_peer {
	char *name;
	enum config_role role;     /* dns, gateway or controller */
	struct sockaddr_storage address; /* where to connect (a gateway) */
	socklen_t address_len;     /* 0: not given */
	uint32_t key_ids[2];       /* the key ids it may use; the first is
				      the one this node uses with it */
	size_t n_key_ids;
	bool has_from;
	struct addr_prefix from;   /* a DNS node must connect from here */
	unsigned line;
};

/* [key ID]: a pre-shared secret in a file of its own. */
struct config_key {
	uint32_t id;               /* 1..65535 */
	char *file;
	unsigned line;
};

/* How a window's expiry is refreshed when its address is answered again. */
enum config_refresh {
	CONFIG_REFRESH_AUTO = 0,  /* what the kernel probe finds */
	CONFIG_REFRESH_KERNEL,    /* re-add: the kernel sets the new expiry (Linux >= 6.12) */
	CONFIG_REFRESH_READD,     /* add, delete, add in one transaction (any kernel) */
};

struct config_service {
	char *section;             /* NAME of [service NAME] */
	char *name;                /* protected FQDN, lower case, trailing dot */
	struct addr_prefix pool;   /* AF_INET */
	bool has_pool6;
	struct addr_prefix pool6;  /* AF_INET6, /64 .. /120 */
	struct in_addr server, honeypot;
	bool has_server6;          /* server6 and honeypot6 are set */
	struct in6_addr server6, honeypot6;
	uint32_t window;           /* seconds; default: [dns] ttl */
	uint32_t binding;          /* seconds */
	uint32_t max_open;         /* 1 .. CONFIG_MAX_OPEN_CAP */
	uint32_t rotate;           /* seconds; 0 = new address per answer */
	uint32_t max_bindings;     /* size of the kernel's binding set */
	uint32_t max_asked;        /* size of the asked and scoped sets */
	uint32_t grace;            /* seconds a window and an asker's entry
				      outlive the TTL: the client's round trip */
	uint32_t window_claims;    /* new sources a window admits; 0: any */
	/* role dns: this node's part of the pools; its rotor draws from the
	 * slices and opens at most share addresses of each at once */
	bool has_slice, has_slice6;
	struct addr_prefix slice, slice6;
	uint32_t share;
	char *gateways;            /* the gateways carrying the pools, as
				      written ("gw1, gw2"); NULL: every one */
	unsigned line;             /* line of the [service] header */
};

struct config {
	char *path;                /* the file read */

	/* [daemon] */
	char *control;             /* control socket path */
	char *table;               /* nftables table name (family inet) */
	enum config_refresh refresh;
	enum config_role role;
	char *name;                /* this node's name (dns, gateway) */
	struct sockaddr_storage peer_listen; /* a gateway: where DNS nodes connect */
	socklen_t peer_listen_len;
	uint32_t commit_timeout;   /* ms a DNS node waits for every gateway */
	enum config_gateway_down on_gateway_down;
	uint32_t gateway_deadline; /* ms without an acknowledgement: down */
	uint32_t nflog_group;      /* a gateway with a controller: where the
				      kernel logs the bindings it learns */

	/* [dns] */
	struct sockaddr_storage listen[CONFIG_MAX_LISTEN];
	socklen_t listen_len[CONFIG_MAX_LISTEN];
	size_t n_listen;
	char *zone;                /* apex, lower case, trailing dot */
	char *zonefile;            /* relative paths are resolved against the
				      directory of the configuration file */
	uint32_t ttl;              /* TTL of rotated answers */
	uint32_t tcp_timeout;      /* seconds a TCP connection may stay idle */
	uint32_t tcp_clients;      /* most TCP connections at once */
	uint32_t tcp_deadline;     /* seconds for a message to arrive whole, and
				      for the client to take its answers */
	uint32_t tcp_per_source;   /* most TCP connections of one source (an
				      IPv4 address, an IPv6 /64) */
	uint32_t tcp_output;       /* bytes of answers queued per connection
				      before its next messages wait */
	uint16_t udp_payload;      /* largest EDNS UDP answer we send */
	/* EDNS Client Subnet is honoured only from these resolvers, and only
	 * for a client subnet of at least ecs_prefix4/6 bits, which is the
	 * length of every scoped window (so that two never overlap) */
	struct addr_prefix ecs_resolvers[CONFIG_MAX_ECS_RESOLVERS];
	size_t n_ecs_resolvers;
	uint32_t ecs_prefix4, ecs_prefix6;
	/* response rate limiting of UDP, per source prefix (rrl.h); the
	 * resolvers' rate applies to rate_limit_resolvers and ecs_resolvers */
	uint32_t rate_limit;       /* answers/s per prefix; 0: off */
	uint32_t rate_limit_slip;  /* every Nth limited query gets TC; 0: none */
	uint32_t rate_limit_prefix4, rate_limit_prefix6;
	uint32_t rate_limit_size;  /* buckets in the table */
	struct addr_prefix rate_limit_resolvers[CONFIG_MAX_ECS_RESOLVERS];
	size_t n_rate_limit_resolvers;
	uint32_t rate_limit_resolver_rate; /* answers/s per resolver; 0: unlimited */

	struct config_service *services;
	size_t n_services;

	struct config_peer *peers;
	size_t n_peers;
	struct config_key *keys;
	size_t n_keys;
};

/* The pool and cap a node's rotor works with: its slice and share on a
 * DNS node, the whole pool and max_open otherwise. */
static inline const struct addr_prefix *config_rotor_pool(const struct config_service *s,
							   int family)
{
	if (family == AF_INET6)
		return s->has_slice6 ? &s->slice6 : &s->pool6;
	return s->has_slice ? &s->slice : &s->pool;
}

static inline uint32_t config_rotor_max_open(const struct config_service *s)
{
	return s->share ? s->share : s->max_open;
}

/* Who connects to whom (docs/protocol.md): a DNS node to its gateways and
 * its controller, a gateway to its controller; the other end accepts. */
bool config_role_connects(enum config_role me, enum config_role them);

/* The [peer] with role controller (at most one), or NULL. */
const struct config_peer *config_controller(const struct config *cfg);

/* Collected error messages, each "FILE:LINE: ...". */
struct config_errors {
	char **msg;
	size_t n, cap;
};

/*
 * Parse a configuration held in memory. name is used in error messages and to
 * resolve a relative zonefile. On success returns 0 and *out is a new config
 * (free with config_free). On failure returns -EINVAL (or -ENOMEM), *out is
 * NULL and every problem found is in errs.
 */
int config_parse(const char *name, const char *buf, size_t len,
		 struct config **out, struct config_errors *errs);

/*
 * Read the file at path (at most CONFIG_MAX_FILE bytes; a regular file
 * writable by any user is refused, see fileio.h) and parse it. A file that
 * cannot be read gives one message "PATH: why" in errs.
 */
int config_load(const char *path, struct config **out,
		struct config_errors *errs);

void config_free(struct config *cfg);
void config_errors_free(struct config_errors *errs);

/* Take msg (malloc'd) into errs (a struct config_errors *; NULL: msg is
 * dropped). 0, or -ENOMEM (msg freed). The conf engine's message sink. */
int config_errors_add(void *errs, char *msg);

/*
 * Each pool of the configuration: every service's IPv4 pool, and its IPv6
 * pool where it has one. config_for_each_pool(cfg, p) { p.service,
 * p.family, p.svc, p.pool, p.index } visits them in order (a NULL cfg has
 * none); p is scoped to the loop, svc and pool point into cfg. p.index
 * (service * 2 + 0 for IPv4, + 1 for IPv6) indexes per-pool arrays of
 * CONFIG_MAX_POOLS entries.
 */
#define CONFIG_MAX_POOLS (CONFIG_MAX_SERVICES * 2)

struct config_pool {
	size_t service;
	int family;                        /* AF_INET or AF_INET6 */
	size_t index;                      /* service * 2 + (family == AF_INET6) */
	const struct config_service *svc;
	const struct addr_prefix *pool;
};

static inline bool config_pool_at(const struct config *cfg, size_t index,
				  struct config_pool *p)
{
	const struct config_service *s;

	if (index / 2 >= cfg->n_services)
		return false;
	s = &cfg->services[index / 2];
	if (index % 2 && !s->has_pool6)
		return false;
	*p = (struct config_pool){
		.service = index / 2, .family = index % 2 ? AF_INET6 : AF_INET,
		.index = index, .svc = s, .pool = index % 2 ? &s->pool6 : &s->pool,
	};
	return true;
}

/* The first pool at or after index, or p->svc == NULL when none is left. */
static inline struct config_pool config_pool_from(const struct config *cfg,
						  size_t index)
{
	struct config_pool p = { .index = index };

	for (; cfg && index < 2 * cfg->n_services; index++)
		if (config_pool_at(cfg, index, &p))
			return p;
	return (struct config_pool){ .index = index };
}

#define config_for_each_pool(cfg, p)                                      \
	for (struct config_pool p = config_pool_from((cfg), 0); (p).svc; \
	     (p) = config_pool_from((cfg), (p).index + 1))

/*
 * The digest of the [service] sections, the space a change's service index
 * means (docs/protocol.md, "The configuration digest"): nodes exchange
 * changes only when theirs are equal. Returns 0 or a negative errno.
 */
int config_digest(const struct config *cfg, uint8_t out[static 32]);

/*
 * Checks across the configurations of one deployment (choreod -t with
 * several -c): the same services everywhere (digests), the DNS nodes'
 * slices of each pool disjoint and their shares adding up to max_open.
 * names[i] names cfgs[i] in messages. Every problem goes to errs; returns
 * 0, -EINVAL, or -ENOMEM.
 */
int config_check_set(const struct config *const *cfgs, size_t n,
		     struct config_errors *errs);

/* "standalone", "dns" or "gateway". */
const char *config_role_name(enum config_role role);

/* The peer of that name, or NULL. */
const struct config_peer *config_find_peer(const struct config *cfg,
					   const char *name);

/* Index of the service protecting this name (text, any case, with or without
 * the trailing dot), or -1. */
int config_find_service(const struct config *cfg, const char *name);

#endif
