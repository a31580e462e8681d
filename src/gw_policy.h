/* SPDX-License-Identifier: MIT */
/*
 * The gateway's table as data: what choreod's nftables table holds for a
 * configuration (sets, counters, chains, and the rules as rows), and where
 * a change goes in it. Pure: no netlink, no kernel, no I/O. Every object's
 * name is spelled here and nowhere else; nft.c turns the rows into netlink
 * messages, nat.c installs them and writes the changes.
 *
 * Per pool (each service, and each family it has a pool of) the table holds
 *   <svc>_open4     pool addresses open to any source        (timeout)
 *   <svc>_scoped4   (client subnet . pool address) windows    (interval, timeout)
 *   <svc>_asked4    (asker . pool address) from DNS answers   (timeout)
 *   <svc>_bound4    (source . pool address) learned by the kernel on a
 *                   connection's first packet (timeout, dynamic, max_bindings)
 *   <svc>_claims4   pool address -> how many new sources its window still
 *                   admits (a per-element limit, written by the kernel;
 *                   deleted by choreod to re-arm it with each answer)
 *   <svc>_claimed4  (source . pool address) that took a claim: the hand-over
 *                   to the rules that learn the binding and let it in
 *   <svc>_server4, _honeypot4, _learned4, _window4, _claim4   named counters
 *   <svc>_chain4    the pool's chain (rows in gw_policy.c)
 * ("6" for IPv6), and once: quarantine4, quarantine6 (interval sets) and
 * the base chain prerouting (nat hook, priority dstnat) that lets choreod's
 * own DNS addresses through and sends each pool to its chain.
 */
#ifndef CHOREO_GW_POLICY_H
#define CHOREO_GW_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "change.h"

struct config;

#define GW_NAME_MAX 96  /* a name with its NUL: section (63) + "_learned6" */
#define GW_MAX_MATCH 2
#define GW_DYNAMIC_SIZE 65535 /* claims and claimed: a size is a must for sets
				 written from the packet path */
/*
 * Every set has a size, so that no flood grows kernel memory without bound
 * (a full set fails the commit that needs it: its answers are SERVFAIL):
 *   open          GW_OPEN_FACTOR x max_open: the kernel counts an expired
 *                 element until its garbage collection removes it (about
 *                 1 to 2 s later, measured on Linux 6.18), so an address
 *                 re-opened meanwhile, or the next addresses, need room
 *                 beside the max_open live ones
 *   asked, scoped [service] max_asked
 *   bound         [service] max_bindings
 *   claims, claimed  GW_DYNAMIC_SIZE
 *   quarantine4/6 GW_QUARANTINE_SIZE elements (a range takes two)
 */
#define GW_OPEN_FACTOR 4
#define GW_QUARANTINE_SIZE 131072
#define GW_MAX_ACT   4

/* The objects each pool has. */
enum gw_pool_obj {
	GW_OPEN, GW_SCOPED, GW_ASKED, GW_BOUND, GW_CLAIMS, GW_CLAIMED,  /* sets */
	GW_C_SERVER, GW_C_HONEYPOT, GW_C_LEARNED, GW_C_WINDOW, GW_C_CLAIM, /* counters */
	GW_CHAIN,
	GW_N_POOL_OBJ,
};

enum gw_obj_type { GW_TYPE_SET, GW_TYPE_COUNTER, GW_TYPE_CHAIN };

struct gw_set {
	char name[GW_NAME_MAX];
	int family;        /* of the addresses in the key */
	bool pair;         /* key (source . address), else address */
	bool interval;     /* ranges (prefixes) as elements */
	bool dynamic;      /* written from the packet path */
	uint32_t size;     /* most elements; 0: no limit */
};

struct gw_chain {
	char name[GW_NAME_MAX];
	bool base;         /* hooked at prerouting, type nat, priority dstnat */
};

enum gw_match_kind {
	GW_M_SRC_IN = 1,   /* source address in set */
	GW_M_DST_IN,       /* destination address in set */
	GW_M_PAIR_IN,      /* (source . destination) in set */
	GW_M_DST_PREFIX,   /* destination inside prefix (a host: /32, /128) */
};

struct gw_match {
	enum gw_match_kind kind;
	char set[GW_NAME_MAX];
	struct addr_prefix prefix;
};

enum gw_act_kind {
	GW_A_ADD = 1,      /* add (source . destination) to set, with timeout */
	GW_A_UPDATE,       /* the same, and refresh its timeout if there */
	GW_A_CLAIM,        /* take one of the destination's burst claims in set;
			      when none is left the rule stops */
	GW_A_COUNTER,      /* count in the named counter */
	GW_A_DNAT,         /* rewrite the destination to addr; ends the chain */
	GW_A_JUMP,         /* to chain name */
	GW_A_ACCEPT,
	GW_A_LOG,          /* copy the packet's first snaplen bytes to NFLOG
			      group, with prefix name */
};

struct gw_act {
	enum gw_act_kind kind;
	char name[GW_NAME_MAX];   /* set, counter or chain */
	uint64_t timeout_ms;      /* GW_A_ADD, GW_A_UPDATE, GW_A_CLAIM */
	uint32_t burst;           /* GW_A_CLAIM: claims per element */
	uint8_t addr[16];         /* GW_A_DNAT */
	uint16_t group;           /* GW_A_LOG: NFLOG group */
	uint32_t snaplen;         /* GW_A_LOG: bytes of the packet copied */
};

struct gw_rule {
	char chain[GW_NAME_MAX];
	int family;               /* the rule matches this family only */
	size_t n_match, n_act;
	struct gw_match match[GW_MAX_MATCH];
	struct gw_act act[GW_MAX_ACT];
};

struct gw_table {
	struct gw_set *sets;
	size_t n_sets;
	char (*counters)[GW_NAME_MAX];
	size_t n_counters;
	struct gw_chain *chains;
	size_t n_chains;
	struct gw_rule *rules;    /* in order: prerouting first, then each chain */
	size_t n_rules;
};

/* The mark choreod puts on its table (user data), to know it as its own. */
#define GW_TABLE_MARK "choreod"

/*
 * A gateway with a controller reports the bindings its kernel learns and
 * refreshes: those happen in the packet path and raise no netlink event, so
 * every rule that adds to or updates a bound set also logs the packet to
 * NFLOG group [daemon] nflog_group with this prefix. The copy is the network
 * header (IPv6: 40 bytes) and a little: the source and the pool address are
 * all a report needs. Other prefixes on the same group are other events.
 */
#define GW_LOG_PREFIX_BIND "choreo-bind"
#define GW_LOG_SNAPLEN     64

/* Whether cfg's table logs its bindings: role gateway with a controller.
 * A standalone node, or a gateway without a controller, logs nothing. */
bool gw_logs_bindings(const struct config *cfg);

/* The table cfg needs. Returns 0 and *out (free with gw_table_free), or
 * -ENOMEM. */
int gw_policy_build(const struct config *cfg, struct gw_table **out);
void gw_table_free(struct gw_table *t);

/* Whether the table has an object of this type and name (for adoption:
 * what the kernel has and the table does not is deleted). */
bool gw_table_has(const struct gw_table *t, enum gw_obj_type type,
		  const char *name);

/* Name of a pool's object. */
void gw_name(char out[static GW_NAME_MAX], const struct config *cfg,
	     size_t service, int family, enum gw_pool_obj obj);

/* The inverse: which pool object a name is. -ENOENT if none of cfg's. */
int gw_parse_name(const struct config *cfg, const char *name, size_t *service,
		  int *family, enum gw_pool_obj *obj);

/* One rule as text, as `nft list` would show its meaning, e.g.
 * "ip www_chain4: saddr . daddr @www_bound4 update saddr . daddr
 *  @www_bound4 timeout 600000ms counter www_server4 log prefix
 *  "choreo-bind" group 5353 snaplen 64 dnat to 192.0.2.10". Returns buf. */
const char *gw_rule_format(const struct gw_rule *r, char *buf, size_t len);

/* A change as a set element. */
struct gw_elem {
	char set[GW_NAME_MAX];
	int family;
	uint8_t key[32], key_end[32];
	uint32_t key_len;         /* 4, 8, 16 or 32 bytes */
	bool has_end;             /* an interval element: key .. key_end */
	uint64_t timeout_ms;
	uint64_t expire_ms;       /* time left when written; 0: timeout_ms */
};

/* Where a change goes and as what. -EINVAL for a change that does not fit
 * cfg (service out of range, a family the service has no pool of, an
 * unknown kind). */
int gw_change_elem(const struct config *cfg, const struct change *c,
		   struct gw_elem *out);

/* A change's address lies in its service's pool of that family (a
 * quarantine has none). */
bool gw_change_in_pool(const struct config *cfg, const struct change *c);

/* No element outlives what an answer can ask for: window + grace (the
 * asker's entry and the windows alike); a relayed binding, relay_ms
 * (relay.h); a quarantine, any time. */
bool gw_change_in_time(const struct config *cfg, const struct change *c);

/* The pool object a kind of change is written to: GW_ASKED, GW_OPEN,
 * GW_SCOPED, GW_BOUND (a relayed binding); GW_N_POOL_OBJ for an unknown
 * kind. */
enum gw_pool_obj gw_change_obj(uint8_t kind);

/*
 * With window_claims, a window's answer re-arms its address's claims: the
 * claims element is deleted (the kernel makes a fresh one with all its
 * claims at the next connection). 1 and *out, the element to delete, when
 * the change re-arms one; 0 when it does not.
 */
int gw_change_rearm(const struct config *cfg, const struct change *c,
		    struct gw_elem *out);

#endif
