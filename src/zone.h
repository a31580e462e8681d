/* SPDX-License-Identifier: MIT */
/*
 * The static zone: loaded once from an RFC 1035 master file with
 * libzscanner, held as a sorted array of nodes (canonical order), looked up
 * by binary search. Names of protected services are nodes too, even when the
 * zone file has no record for them, so they exist for NXDOMAIN/NODATA.
 */
#ifndef CHOREO_ZONE_H
#define CHOREO_ZONE_H

#include <stdbool.h>
#include <stddef.h>
#include <libknot/libknot.h>

struct config;

#define ZONE_MAX_FILE    (64 * 1024 * 1024) /* bytes of zone file */
#define ZONE_MAX_RECORDS 1000000

struct zone_node {
	knot_dname_t *name;       /* lower case: the lookup key */
	knot_rrset_t *rrsets;     /* owner keeps the zone file's case */
	uint16_t n_rrsets;
	int service;              /* index in config->services, or -1 */
};

struct zone {
	knot_dname_t *apex;       /* lower case */
	struct zone_node *nodes;  /* sorted by knot_dname_cmp of name */
	size_t n_nodes;
	const struct zone_node *apex_node;
	const knot_rrset_t *soa;
	size_t n_records;
};

/*
 * Load the zone cfg->zone from cfg->zonefile and attach cfg's services.
 * The file must be a regular file of at most ZONE_MAX_FILE bytes, not
 * writable by any user (-EPERM; fileio.h). Every problem is logged as
 * "FILE:LINE: message" (log_err). Returns 0 and *out, or a negative errno
 * (-EINVAL for bad content) with *out == NULL.
 */
int zone_load(const struct config *cfg, struct zone **out);

/* The same from a zone text held in memory (for tests and fuzzing);
 * name is used in messages; a relative $INCLUDE is taken from the working
 * directory. */
int zone_load_string(const struct config *cfg, const char *name,
		     const char *text, size_t len, struct zone **out);

void zone_free(struct zone *z);

/* Exact node for a lower-case name, or NULL. */
const struct zone_node *zone_get(const struct zone *z, const knot_dname_t *name);

/* Whether a lower-case name exists: a node or an empty non-terminal. */
bool zone_name_exists(const struct zone *z, const knot_dname_t *name);

/*
 * The topmost delegation point (a node with NS below the apex) at or above
 * the lower-case name, or NULL.
 */
const struct zone_node *zone_find_cut(const struct zone *z,
				      const knot_dname_t *name);

/* The RRset of this type at the node, or NULL. */
const knot_rrset_t *zone_node_rrset(const struct zone_node *n, uint16_t type);

#endif
