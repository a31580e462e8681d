// SPDX-License-Identifier: MIT
#include "stats.h"

#include <string.h>

void stats_collect(const struct stats_sources *src, uint64_t now_ms,
		   struct stats_snapshot *out)
{
	memset(out, 0, sizeof(*out));
	out->uptime_ms = now_ms - src->started_ms;
	out->dns = *dns_ctx_stats(src->dns);
	out->server = *dnsserver_get_stats(src->server);
	dnsserver_get_latency(src->server, &out->answer_latency);
	gateway_snapshot(src->gw, &out->gw);
	config_for_each_pool(src->cfg, p)
		rotor_get_stats(src->rotor, p.service, p.family, now_ms,
				&out->rotor[p.index]);
}
