/* SPDX-License-Identifier: MIT */
/*
 * One snapshot of everything choreod counts, filled from every module at
 * one instant: the control socket renders it as text (ctl.c), and the
 * metrics endpoint will render it as Prometheus exposition. Filling it
 * never waits for the kernel: the gateway's counts are the background
 * worker's latest, with their age.
 */
#ifndef CHOREO_STATS_H
#define CHOREO_STATS_H

#include <stdint.h>

#include "config.h"
#include "controller.h"
#include "dns.h"
#include "dnsserver.h"
#include "gateway.h"
#include "gw_agent.h"
#include "gw_remote.h"
#include "latency.h"
#include "node_ctl.h"
#include "peer.h"
#include "rotor.h"

/* What there is to count; by role, some are NULL (a gateway has no DNS
 * service and no rotor; only the distributed roles have peers). */
struct stats_sources {
	const struct config *cfg;
	struct rotor *rotor;         /* NULL: role gateway */
	struct dns_ctx *dns;         /* NULL: role gateway */
	struct dnsserver *server;    /* NULL: role gateway */
	struct gateway *gw;          /* the local table, or the remote gateways */
	struct gw_remote *remote;    /* role dns */
	struct gw_agent *agent;      /* role gateway */
	struct peers *peers;         /* roles dns, gateway and controller */
	struct node_ctl *node_ctl;   /* roles dns and gateway, with a controller */
	struct controller *controller; /* role controller */
	uint64_t started_ms;
};

struct stats_snapshot {
	uint64_t uptime_ms;
	uint8_t digest[32];                      /* of the [service] sections */
	bool has_dns, has_peers, has_node_ctl, has_controller;
	struct gw_remote_stats remote;           /* role dns */
	struct gw_agent_stats agent;             /* role gateway */
	struct peers_stats peers;
	struct node_ctl_stats node_ctl;          /* the link to the controller */
	struct controller_stats controller;      /* role controller */
	struct dns_stats dns;
	struct dnsserver_stats server;
	struct latency_summary answer_latency;   /* UDP batch in -> answers out */
	struct gateway_snapshot gw;
	struct rotor_stats rotor[CONFIG_MAX_POOLS]; /* by config_pool.index */
};

/* Fill out (large: allocate it) at now_ms. */
void stats_collect(const struct stats_sources *src, uint64_t now_ms,
		   struct stats_snapshot *out);

#endif
