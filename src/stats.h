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
#include "dns.h"
#include "dnsserver.h"
#include "gateway.h"
#include "latency.h"
#include "rotor.h"

struct stats_sources {
	const struct config *cfg;
	struct rotor *rotor;
	struct dns_ctx *dns;
	struct dnsserver *server;
	struct gateway *gw;
	uint64_t started_ms;
};

struct stats_snapshot {
	uint64_t uptime_ms;
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
