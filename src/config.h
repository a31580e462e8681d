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
#define CONFIG_MAX_BINDINGS_CAP    16777216
#define CONFIG_DEFAULT_TCP_TIMEOUT 10
#define CONFIG_DEFAULT_TCP_CLIENTS 256
#define CONFIG_DEFAULT_UDP_PAYLOAD 1232

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
	unsigned line;             /* line of the [service] header */
};

struct config {
	char *path;                /* the file read */

	/* [daemon] */
	char *control;             /* control socket path */
	char *table;               /* nftables table name (family inet) */

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
	uint16_t udp_payload;      /* largest EDNS UDP answer we send */

	struct config_service *services;
	size_t n_services;
};

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

/* Index of the service protecting this name (text, any case, with or without
 * the trailing dot), or -1. */
int config_find_service(const struct config *cfg, const char *name);

/*
 * Each address pool of a configuration: for each service in order, its IPv4
 * pool, then its IPv6 pool when it has one (has_pool6). The configuration
 * must be one config_parse returned (or one filled in the same way).
 *
 *	config_for_each_pool(cfg, it)
 *		use(it.service, it.family, it.pool);
 *
 * it is a struct config_pool scoped to the loop; svc and pool point into cfg.
 * A NULL cfg has no pools.
 */
struct config_pool {
	size_t service;                   /* index in cfg->services */
	int family;                       /* AF_INET or AF_INET6 */
	const struct config_service *svc; /* &cfg->services[service] */
	const struct addr_prefix *pool;   /* &svc->pool or &svc->pool6 */
};

#define config_for_each_pool(cfg, it)					\
	for (struct config_pool it = config_pool_first(cfg);		\
	     config_pool_valid((cfg), &it); config_pool_next((cfg), &it))

/* The first pool; valid or not (no services). */
struct config_pool config_pool_first(const struct config *cfg);
/* Whether it designates a pool of cfg. */
bool config_pool_valid(const struct config *cfg, const struct config_pool *it);
/* Step to the next pool; past the last one it is no longer valid. */
void config_pool_next(const struct config *cfg, struct config_pool *it);

#endif
