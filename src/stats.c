// SPDX-License-Identifier: MIT
#include "stats.h"

#include <string.h>

void stats_collect(const struct stats_sources *src, uint64_t now_ms,
		   struct stats_snapshot *out)
{
	memset(out, 0, sizeof(*out));
	out->uptime_ms = now_ms - src->started_ms;
	config_digest(src->cfg, out->digest);
	if (src->gw)
		gateway_snapshot(src->gw, &out->gw);
	out->has_node_ctl = src->node_ctl != NULL;
	if (src->node_ctl)
		node_ctl_get_stats(src->node_ctl, &out->node_ctl);
	out->has_controller = src->controller != NULL;
	if (src->controller)
		controller_get_stats(src->controller, now_ms, &out->controller);
	if (src->remote)
		gw_remote_get_stats(src->remote, &out->remote);
	if (src->agent)
		gw_agent_get_stats(src->agent, &out->agent);
	out->has_peers = src->peers != NULL;
	if (src->peers)
		peers_get_stats(src->peers, now_ms, &out->peers);
	out->has_dns = src->dns != NULL;
	if (!src->dns)
		return;
	out->dns = *dns_ctx_stats(src->dns);
	out->server = *dnsserver_get_stats(src->server);
	dnsserver_get_latency(src->server, &out->answer_latency);
	config_for_each_pool(src->cfg, p)
		rotor_get_stats(src->rotor, p.service, p.family, now_ms,
				&out->rotor[p.index]);
}
