// SPDX-License-Identifier: MIT
#include "ctl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "addr.h"
#include "config.h"
#include "log.h"
#include "loop.h"

#define REPLY_MAX (1024 * 1024) /* longer replies are cut, and say so */

enum client_state { C_FREE, C_READING, C_WAITING, C_WRITING };

struct reply {
	char *buf;
	size_t len, cap;
	bool full;
};

struct client {
	struct loop_handler h;   /* h.fd < 0: slot free */
	struct ctl *ctl;
	enum client_state state;
	uint64_t deadline_ms;    /* to finish reading, or writing */
	uint64_t wait_until_ms;  /* C_WAITING: answer by then, fresh or not */
	char line[CTL_MAX_LINE + 1];
	size_t line_len;
	struct reply r;
	size_t sent;
};

struct ctl {
	struct loop_handler h;   /* the listening socket */
	struct loop_handler timer;
	struct loop *loop;
	struct stats_sources src;
	struct client clients[CTL_MAX_CLIENTS];
	bool refreshing;         /* a refresh of the gateway's counts is asked */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* ---- replies ------------------------------------------------------------------ */

static void say(struct reply *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void say(struct reply *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (r->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || r->len + (size_t)n + 1 > REPLY_MAX) {
		r->full = true;
		return;
	}
	if (r->len + (size_t)n + 1 > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		char *grown;

		while (cap < r->len + (size_t)n + 1)
			cap *= 2;
		if (cap > REPLY_MAX)
			cap = REPLY_MAX;
		grown = realloc(r->buf, cap);
		if (!grown) {
			r->full = true;
			return;
		}
		r->buf = grown;
		r->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(r->buf + r->len, r->cap - r->len, fmt, ap);
	va_end(ap);
	r->len += (size_t)n;
}

/* ---- rendering the snapshot -------------------------------------------------------- */

static void render_gateway(const struct ctl *c, const struct stats_snapshot *s,
			   struct reply *r)
{
	const struct gateway_snapshot *g = &s->gw;
	const struct gw_remote_stats *m = &s->remote;

	if (g->remote) {
		/* a DNS node: the commits it sent and how they ended */
		say(r, "gateways commits %llu failures %llu elements %llu frames %llu "
		    "latency_us p50 %llu p99 %llu max %llu not_connected %llu "
		    "timeouts %llu link_lost %llu refused %llu stale %llu busy %llu "
		    "windows_counted %llu windows_others %llu live %zu downs %llu "
		    "resyncs %llu resync_changes %llu resync_lost %llu\n",
		    (unsigned long long)g->commits, (unsigned long long)g->failures,
		    (unsigned long long)g->elements, (unsigned long long)m->frames,
		    (unsigned long long)g->latency.p50_us,
		    (unsigned long long)g->latency.p99_us,
		    (unsigned long long)g->latency.max_us,
		    (unsigned long long)m->not_connected,
		    (unsigned long long)m->timeouts, (unsigned long long)m->link_lost,
		    (unsigned long long)m->refused, (unsigned long long)m->stale,
		    (unsigned long long)m->busy,
		    (unsigned long long)m->windows_counted,
		    (unsigned long long)m->windows_others, m->live,
		    (unsigned long long)m->downs, (unsigned long long)m->resyncs,
		    (unsigned long long)m->resync_changes,
		    (unsigned long long)m->resync_lost);
		return;
	}
	say(r, "gateway table inet %s commits %llu failures %llu elements %llu "
	    "latency_us p50 %llu p99 %llu max %llu refresh %s\n", c->src.cfg->table,
	    (unsigned long long)g->commits, (unsigned long long)g->failures,
	    (unsigned long long)g->elements,
	    (unsigned long long)g->latency.p50_us,
	    (unsigned long long)g->latency.p99_us,
	    (unsigned long long)g->latency.max_us, g->readd ? "readd" : "kernel");
	say(r, "table_repairs %llu failed %llu replayed %llu replay_lost %llu "
	    "last_repair_us %llu set_full %llu checks %llu full_skipped %llu\n",
	    (unsigned long long)g->repairs,
	    (unsigned long long)g->repair_failures,
	    (unsigned long long)g->repair_replayed,
	    (unsigned long long)g->repair_lost,
	    (unsigned long long)g->repair_last_us,
	    (unsigned long long)g->set_full,
	    (unsigned long long)g->table_checks,
	    (unsigned long long)g->set_full_skipped);
	if (g->conntrack_count >= 0 && g->conntrack_max > 0)
		say(r, "conntrack count %ld max %ld%s\n", g->conntrack_count,
		    g->conntrack_max,
		    g->conntrack_count * 10 >= g->conntrack_max * 9 ?
		    " NEAR THE LIMIT: raise net.netfilter.nf_conntrack_max" : "");
	else
		say(r, "conntrack unavailable (module not loaded)\n");
	if (c->src.agent)
		say(r, "changes_received frames %llu applied %llu changes %llu "
		    "stale %llu failed %llu outside_pool %llu over_window %llu\n",
		    (unsigned long long)s->agent.frames,
		    (unsigned long long)s->agent.applied,
		    (unsigned long long)s->agent.changes,
		    (unsigned long long)s->agent.stale,
		    (unsigned long long)s->agent.failed,
		    (unsigned long long)s->agent.outside,
		    (unsigned long long)s->agent.over_window);
	if (c->src.agent && s->has_node_ctl)
		say(r, "bindings_relay learned %llu coalesced %llu foreign %llu "
		    "relayed_in %llu quarantined %llu wrong_kind %llu nflog_records %llu "
		    "nflog_bad %llu nflog_lost %llu again %llu\n", (unsigned long long)s->agent.learned,
		    (unsigned long long)s->agent.learned_coalesced,
		    (unsigned long long)s->agent.learned_foreign,
		    (unsigned long long)s->agent.relayed_in,
		    (unsigned long long)s->agent.quarantined,
		    (unsigned long long)s->agent.wrong_kind,
		    (unsigned long long)s->agent.nflog_records,
		    (unsigned long long)s->agent.nflog_bad,
		    (unsigned long long)s->agent.nflog_lost,
		    (unsigned long long)s->agent.learned_again);
}

/* The distributed mode's links: one line for the node, one per peer. */
static void render_peers(const struct stats_snapshot *s, struct reply *r)
{
	const struct peers_stats *p = &s->peers;

	say(r, "peers accepted %llu refused_full %llu refused_source %llu "
	    "refused_from %llu handshakes_pending %zu",
	    (unsigned long long)p->accepted, (unsigned long long)p->refused_full,
	    (unsigned long long)p->refused_source,
	    (unsigned long long)p->refused_from, p->unauth);
	for (size_t i = 0; i < PEER_R_COUNT; i++)
		if (p->ended[i])
			say(r, " %s %llu", peer_reason_name(i),
			    (unsigned long long)p->ended[i]);
	say(r, "\n");
	for (size_t i = 0; i < p->n_links; i++) {
		const struct peer_link_stats *l = &p->link[i];

		say(r, "peer %s %s", l->name, l->state);
		if (l->up)
			say(r, " for %llu s frames_in %llu frames_out %llu queued %zu "
			    "rtt_ms %llu", (unsigned long long)(l->up_ms / 1000),
			    (unsigned long long)l->frames_in,
			    (unsigned long long)l->frames_out, l->queued,
			    (unsigned long long)l->rtt_ms);
		say(r, " connects %llu", (unsigned long long)l->connects);
		if (l->last_down != PEER_R_COUNT)
			say(r, " last_down %s", peer_reason_name(l->last_down));
		if (l->last_errno)
			say(r, " last_error \"%s\"", strerror(l->last_errno));
		say(r, "\n");
	}
}

/* A node's link to its controller. */
static void render_node_ctl(const struct stats_snapshot *s, struct reply *r)
{
	const struct node_ctl_stats *n = &s->node_ctl;

	say(r, "controller %s joins %llu reports %llu learned_sent %llu "
	    "learned_frames %llu learned_dropped %llu changes_in %llu assigns %llu "
	    "epoch %llu\n",
	    n->up ? "joined" : "not_joined", (unsigned long long)n->joins,
	    (unsigned long long)n->reports, (unsigned long long)n->learned_sent,
	    (unsigned long long)n->learned_frames,
	    (unsigned long long)n->learned_dropped,
	    (unsigned long long)n->changes_in, (unsigned long long)n->assigns,
	    (unsigned long long)n->epoch);
}

/* The controller: the deployment, a line per node with its last REPORT. */
static void render_controller(const struct config *cfg, const struct stats_snapshot *s,
			      struct reply *r)
{
	const struct controller_stats *c = &s->controller;

	for (size_t i = 0; i < c->n_services; i++) {
		const struct slices_stats *v = &c->service[i];

		say(r, "slices %s block_bits %u blocks %u held %u draining %u free %u "
		    "max_open %u reserved %llu draining_share %llu free_share %u%s\n",
		    cfg->services[i].section, c->block_bits[i], v->blocks, v->blocks_held,
		    v->blocks_draining, v->blocks_free, v->max_open,
		    (unsigned long long)v->reserved, (unsigned long long)v->draining,
		    v->free, v->rebuilding ? " rebuilding (waiting for every DNS node)" :
		    v->holding ? " holding (the nodes' earlier windows)" : "");
	}
	say(r, "relay learned %llu relays %llu unsent %llu no_target %llu refused %llu "
	    "replayed %llu replay_lost %llu pushed %llu lag_us p50 %llu p99 %llu "
	    "max %llu count %llu\n",
	    (unsigned long long)c->learned, (unsigned long long)c->relays,
	    (unsigned long long)c->relay_unsent, (unsigned long long)c->no_target,
	    (unsigned long long)c->learned_refused, (unsigned long long)c->replayed,
	    (unsigned long long)c->replay_lost, (unsigned long long)c->pushed,
	    (unsigned long long)c->relay_lag.p50_us,
	    (unsigned long long)c->relay_lag.p99_us,
	    (unsigned long long)c->relay_lag.max_us,
	    (unsigned long long)c->relay_lag.count);
	for (size_t i = 0; i < c->n_nodes; i++) {
		const struct controller_node *n = &c->node[i];

		say(r, "node %s role %s %s joins %llu stale_refusals %llu",
		    n->name, config_role_name(n->role),
		    n->joined ? "joined" : n->stale ? "refused_stale" : "absent",
		    (unsigned long long)n->joins,
		    (unsigned long long)n->stale_refusals);
		if (n->role == CONFIG_ROLE_GATEWAY)
			say(r, " learned_in %llu relayed_out %llu relay_failed %llu "
			    "inflight %zu", (unsigned long long)n->learned_in,
			    (unsigned long long)n->relayed_out,
			    (unsigned long long)n->relay_failed, n->inflight);
		if (n->role == CONFIG_ROLE_DNS) {
			static const char *const st[] = { "never", "up", "held", "gone" };

			say(r, " slices %s epoch %llu acked %llu left %llu",
			    (size_t)n->slices_state < 4 ? st[n->slices_state] : "?",
			    (unsigned long long)n->epoch,
			    (unsigned long long)n->epoch_acked,
			    (unsigned long long)n->left);
			for (size_t k = 0; k < c->n_services; k++)
				say(r, " %s block %d share %u", cfg->services[k].section,
				    n->block[k], n->share[k]);
		}
		if (n->report[0])
			say(r, " report_age_ms %llu report: %s",
			    (unsigned long long)n->report_age_ms, n->report);
		say(r, "\n");
	}
}

static void render_pool(const struct stats_snapshot *s, const struct config_pool *p,
			bool fresh, struct reply *r)
{
	const struct gateway_pool_counts *k = &s->gw.pool[p->index];

	if (s->gw.remote || s->has_controller)
		return; /* the gateways count: choreoctl status on them */
	if (!s->gw.counters_known) {
		say(r, "    gateway: not counted yet\n");
		return;
	}
	say(r, "    gateway: to_server %llu to_honeypot %llu bindings %ld "
	    "asked %ld open %ld", (unsigned long long)k->server,
	    (unsigned long long)k->honeypot, k->bound, k->asked, k->open);
	if (p->svc->window_claims)
		say(r, " claims_taken %llu", (unsigned long long)k->claims);
	if (!fresh)
		say(r, " (set counts %llu ms old: still counting)",
		    (unsigned long long)s->gw.sets_age_ms);
	/* a window let a client in but no binding was learned: set full */
	if (k->via_window > k->learned)
		say(r, " binding_set_full_misses %llu",
		    (unsigned long long)(k->via_window - k->learned));
	say(r, "\n");
}

static void render_dns(const struct stats_snapshot *s, struct reply *r)
{
	const struct dns_stats *d = &s->dns;
	const struct dnsserver_stats *t = &s->server;

	say(r, "dns queries %llu noerror %llu nxdomain %llu refused %llu "
	    "formerr %llu servfail %llu notimp %llu badvers %llu dropped %llu "
	    "rotated %llu truncated %llu\n",
	    (unsigned long long)d->queries, (unsigned long long)d->noerror,
	    (unsigned long long)d->nxdomain, (unsigned long long)d->refused,
	    (unsigned long long)d->formerr, (unsigned long long)d->servfail,
	    (unsigned long long)d->notimp, (unsigned long long)d->badvers,
	    (unsigned long long)d->dropped, (unsigned long long)d->rotated,
	    (unsigned long long)d->truncated);
	say(r, "udp received %llu sent %llu send_errors %llu batches %llu\n",
	    (unsigned long long)t->udp_received, (unsigned long long)t->udp_sent,
	    (unsigned long long)t->udp_send_errors,
	    (unsigned long long)t->udp_batches);
	if (t->rrl_on)
		say(r, "rate_limit limited %llu dropped %llu slipped %llu "
		    "evicted %llu\n", (unsigned long long)t->rrl_limited,
		    (unsigned long long)t->rrl_dropped,
		    (unsigned long long)t->rrl_slipped,
		    (unsigned long long)t->rrl_evicted);
	else
		say(r, "rate_limit off\n");
	say(r, "answer_latency_us p50 %llu p99 %llu max %llu batches %llu\n",
	    (unsigned long long)s->answer_latency.p50_us,
	    (unsigned long long)s->answer_latency.p99_us,
	    (unsigned long long)s->answer_latency.max_us,
	    (unsigned long long)s->answer_latency.count);
	say(r, "tcp open %zu accepted %llu refused %llu refused_source %llu "
	    "timeouts %llu slow %llu stalled %llu paused %llu queued %zu "
	    "inbuf %zu queries %llu\n", t->tcp_open, (unsigned long long)t->tcp_accepted,
	    (unsigned long long)t->tcp_refused,
	    (unsigned long long)t->tcp_refused_source,
	    (unsigned long long)t->tcp_timeouts,
	    (unsigned long long)t->tcp_slow, (unsigned long long)t->tcp_stalled,
	    (unsigned long long)t->tcp_paused, t->tcp_queued, t->tcp_inbuf,
	    (unsigned long long)t->tcp_queries);
	say(r, "commits %llu pending %zu failed %llu overload %llu\n",
	    (unsigned long long)t->commits, t->commits_pending,
	    (unsigned long long)t->commit_failures,
	    (unsigned long long)t->commit_overload);
}

static void render_status(const struct ctl *c, const struct stats_snapshot *s,
			  bool fresh, struct reply *r)
{
	const struct config *cfg = c->src.cfg;

	say(r, "uptime %llu s\n", (unsigned long long)(s->uptime_ms / 1000));
	say(r, "role %s", config_role_name(cfg->role));
	if (cfg->name)
		say(r, " node %s", cfg->name);
	say(r, " services_digest ");
	for (size_t i = 0; i < 8; i++)
		say(r, "%02x", s->digest[i]);
	say(r, "\n");
	if (s->has_dns)
		render_dns(s, r);
	if (!s->has_controller)
		render_gateway(c, s, r);
	if (s->has_peers)
		render_peers(s, r);
	if (s->has_node_ctl)
		render_node_ctl(s, r);
	if (s->has_controller)
		render_controller(cfg, s, r);
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct config_service *svc = &cfg->services[i];

		say(r, "service %s name %s max_open %u window %u grace %u binding %u "
		    "rotate %u window_claims %u", svc->section, svc->name,
		    svc->max_open, svc->window, svc->grace, svc->binding,
		    svc->rotate, svc->window_claims);
		if (svc->share)
			say(r, " share %u", svc->share);
		say(r, "\n");
		config_for_each_pool(cfg, p) {
			const struct rotor_stats *st = &s->rotor[p.index];
			char buf[ADDR_STRLEN];

			if (p.service != i)
				continue;
			say(r, "  pool %s", addr_prefix_format(p.pool, buf));
			if (s->has_dns)
				say(r, " answers %llu opened %llu reused %llu open_now %zu",
				    (unsigned long long)st->answers,
				    (unsigned long long)st->opened,
				    (unsigned long long)st->reused, st->open_now);
			say(r, "\n");
			render_pool(s, &p, fresh, r);
		}
	}
}

struct open_walk {
	struct reply *r;
	int family;
};

static void open_one(void *ctx, const uint8_t addr[16], uint64_t ms_left)
{
	struct open_walk *w = ctx;
	char buf[ADDR_STRLEN];

	say(w->r, "  %s %llu ms\n", addr_format(w->family, addr, buf),
	    (unsigned long long)ms_left);
}

static void render_open(const struct ctl *c, struct reply *r)
{
	const struct config *cfg = c->src.cfg;
	uint64_t now = log_now_ms();

	if (!c->src.rotor) {
		say(r, "error: a gateway opens no windows: ask its DNS nodes "
		    "(choreoctl open there), or list the table's sets with nft\n");
		return;
	}
	for (size_t i = 0; i < cfg->n_services; i++) {
		say(r, "service %s\n", cfg->services[i].section);
		config_for_each_pool(cfg, p) {
			struct open_walk w = { .r = r, .family = p.family };

			if (p.service == i)
				rotor_foreach_open(c->src.rotor, i, p.family, now,
						   open_one, &w);
		}
	}
}

/* ---- clients --------------------------------------------------------------------------- */

static void client_close(struct client *cl)
{
	if (cl->h.fd >= 0) {
		loop_del(cl->ctl->loop, &cl->h);
		close(cl->h.fd);
	}
	free(cl->r.buf);
	memset(&cl->r, 0, sizeof(cl->r));
	cl->h.fd = -1;
	cl->state = C_FREE;
}

static void client_write(struct client *cl)
{
	while (cl->sent < cl->r.len) {
		ssize_t n = send(cl->h.fd, cl->r.buf + cl->sent, cl->r.len - cl->sent,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return; /* EPOLLOUT brings us back */
		if (n <= 0)
			break;
		cl->sent += (size_t)n;
	}
	client_close(cl);
}

/* The reply is complete: send it without ever waiting for the client. */
static void client_reply(struct client *cl)
{
	static const char cut[] = "\nerror: reply truncated\n";

	/* the last line says so when the reply did not fit */
	if (cl->r.full && cl->r.len >= sizeof(cut))
		memcpy(cl->r.buf + cl->r.len - (sizeof(cut) - 1), cut, sizeof(cut) - 1);
	cl->state = C_WRITING;
	cl->sent = 0;
	cl->deadline_ms = log_now_ms() + CTL_DEADLINE_MS;
	loop_mod(cl->ctl->loop, &cl->h, EPOLLOUT);
	client_write(cl);
}

static void answer_status(struct client *cl, bool fresh)
{
	struct ctl *c = cl->ctl;
	struct stats_snapshot *s = malloc(sizeof(*s));

	if (!s) {
		say(&cl->r, "error: out of memory\n");
	} else {
		stats_collect(&c->src, log_now_ms(), s);
		render_status(c, s, fresh, &cl->r);
		free(s);
	}
	client_reply(cl);
}

static void arm_timer(struct ctl *c, uint64_t in_ms)
{
	struct itimerspec its = {
		.it_value = { .tv_sec = (time_t)(in_ms / 1000),
			      .tv_nsec = (long)(in_ms % 1000) * 1000000L },
	};

	if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
		its.it_value.tv_nsec = 1; /* 0 would disarm it */
	timerfd_settime(c->timer.fd, 0, &its, NULL);
}

/* The gateway's worker has fresh counts: every waiting status is answered. */
static void on_refreshed(void *ctx, int result)
{
	struct ctl *c = ctx;

	c->refreshing = false;
	for (size_t i = 0; i < CTL_MAX_CLIENTS; i++)
		if (c->clients[i].state == C_WAITING)
			answer_status(&c->clients[i], result == 0);
}

static void on_timer(struct loop_handler *h, uint32_t events)
{
	struct ctl *c = container_of(h, struct ctl, timer);
	uint64_t expirations, now = log_now_ms(), next = UINT64_MAX;

	(void)events;
	if (read(h->fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		log_debug("control socket timer: %m");
	for (size_t i = 0; i < CTL_MAX_CLIENTS; i++) {
		struct client *cl = &c->clients[i];

		if (cl->state != C_WAITING)
			continue;
		if (now >= cl->wait_until_ms)
			answer_status(cl, false); /* the counts are slow: last ones */
		else if (cl->wait_until_ms < next)
			next = cl->wait_until_ms;
	}
	if (next != UINT64_MAX)
		arm_timer(c, next - now);
}

/* "PREFIX SECONDS" on a controller: to every gateway. */
static void quarantine(struct ctl *c, struct client *cl, const char *args)
{
	char what[80];
	unsigned long secs = 0;
	struct addr_prefix p;
	int n = 0, ret;

	if (!c->src.controller) {
		say(&cl->r, "error: quarantine is a controller's command\n");
	} else if (sscanf(args, "%79s %lu%n", what, &secs, &n) != 2 || args[n] ||
		   secs < 1 || secs > CHANGE_MAX_MS / 1000 ||
		   (addr_prefix_parse(what, &p) < 0 &&
		    (addr_parse(what, &p.family, p.bytes) < 0 ||
		     !(p.len = (uint8_t)(addr_family_size(p.family) * 8))))) {
		say(&cl->r, "error: quarantine PREFIX SECONDS (an address or prefix, "
		    "1 to %u seconds)\n", CHANGE_MAX_MS / 1000);
	} else if ((ret = controller_quarantine(c->src.controller, &p, (uint32_t)secs)) < 0) {
		say(&cl->r, "error: %s\n", strerror(-ret));
	} else {
		say(&cl->r, "quarantined %s for %lu s on %d gateways\n", what, secs, ret);
	}
	client_reply(cl);
}

static void run_command(struct client *cl)
{
	struct ctl *c = cl->ctl;
	const char *cmd = cl->line;

	if (strcmp(cmd, "status") == 0 && !c->src.gw) {
		answer_status(cl, true); /* a controller: nothing to wait for */
		return;
	}
	if (strcmp(cmd, "status") == 0) {
		cl->state = C_WAITING;
		cl->wait_until_ms = log_now_ms() + CTL_FRESH_MS;
		loop_mod(c->loop, &cl->h, 0);
		arm_timer(c, CTL_FRESH_MS);
		if (!c->refreshing) {
			c->refreshing = true;
			gateway_refresh(c->src.gw, on_refreshed, c);
		}
		return;
	}
	if (strcmp(cmd, "open") == 0) {
		render_open(c, &cl->r);
		client_reply(cl);
		return;
	}
	if (strcmp(cmd, "bindings") == 0) {
		int fd = cl->h.fd;

		/* the gateway streams the listing and owns the socket from here */
		int ret;

		loop_del(c->loop, &cl->h);
		ret = c->src.gw ? gateway_list_bindings(c->src.gw, fd) : -EOPNOTSUPP;
		if (ret == 0) {
			cl->h.fd = -1;
			client_close(cl);
			return;
		}
		if (loop_add(c->loop, &cl->h, EPOLLOUT) < 0) {
			close(fd);
			cl->h.fd = -1;
			client_close(cl);
			return;
		}
		if (ret == -EOPNOTSUPP)
			say(&cl->r, "error: the bindings are in the gateways' tables: "
			    "run choreoctl bindings on a gateway\n");
		else
			say(&cl->r, "error: a bindings listing is already running; "
			    "try again\n");
		client_reply(cl);
		return;
	}
	if (strncmp(cmd, "quarantine ", 11) == 0) {
		quarantine(c, cl, cmd + 11);
		return;
	}
	if (strncmp(cmd, "forget ", 7) == 0) {
		int ret = c->src.controller ? controller_forget(c->src.controller, cmd + 7)
					    : -EOPNOTSUPP;

		if (ret == 0)
			say(&cl->r, "forgotten: %s; its slices drain, then go to the "
			    "other DNS nodes\n", cmd + 7);
		else if (ret == -EOPNOTSUPP)
			say(&cl->r, "error: forget is a controller's command\n");
		else
			say(&cl->r, "error: %s is not a DNS node of this controller\n",
			    cmd + 7);
		client_reply(cl);
		return;
	}
	say(&cl->r, "error: unknown command; commands are: status open bindings forget\n");
	client_reply(cl);
}

static void client_read(struct client *cl)
{
	for (;;) {
		size_t room = CTL_MAX_LINE - cl->line_len;
		ssize_t n;

		if (room == 0) {
			say(&cl->r, "error: command longer than %d bytes\n", CTL_MAX_LINE);
			client_reply(cl);
			return;
		}
		n = recv(cl->h.fd, cl->line + cl->line_len, room, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			client_close(cl); /* gone before the end of the line */
			return;
		}
		for (ssize_t i = 0; i < n; i++) {
			unsigned char ch = (unsigned char)cl->line[cl->line_len + (size_t)i];

			if (ch == '\n') {
				cl->line[cl->line_len + (size_t)i] = '\0';
				run_command(cl);
				return;
			}
			if (ch < 0x20 || ch > 0x7e) {
				say(&cl->r, "error: the command must be printable ASCII\n");
				client_reply(cl);
				return;
			}
		}
		cl->line_len += (size_t)n;
	}
}

static void on_client(struct loop_handler *h, uint32_t events)
{
	struct client *cl = container_of(h, struct client, h);

	if (h->fd < 0)
		return;
	if (cl->state == C_WAITING && (events & (EPOLLHUP | EPOLLERR))) {
		client_close(cl); /* gone while its status waits */
		return;
	}
	if (cl->state == C_READING && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		client_read(cl);
	else if (cl->state == C_WRITING && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)))
		client_write(cl);
}

static void on_accept(struct loop_handler *h, uint32_t events)
{
	struct ctl *c = container_of(h, struct ctl, h);

	(void)events;
	for (int k = 0; k < CTL_MAX_CLIENTS; k++) {
		struct client *cl = NULL;
		int fd = accept4(h->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0)
			return;
		for (size_t i = 0; i < CTL_MAX_CLIENTS && !cl; i++)
			if (c->clients[i].state == C_FREE)
				cl = &c->clients[i];
		if (!cl) {
			static const char msg[] = "error: too many control clients at once; try again\n";

			(void)!send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(fd);
			continue;
		}
		*cl = (struct client){ .h = { .fd = fd, .fn = on_client }, .ctl = c,
				       .state = C_READING,
				       .deadline_ms = log_now_ms() + CTL_DEADLINE_MS };
		if (loop_add(c->loop, &cl->h, EPOLLIN) < 0) {
			close(fd);
			cl->h.fd = -1;
			cl->state = C_FREE;
		}
	}
}

void ctl_tick(struct ctl *c, uint64_t now_ms)
{
	for (size_t i = 0; i < CTL_MAX_CLIENTS; i++) {
		struct client *cl = &c->clients[i];

		if ((cl->state == C_READING || cl->state == C_WRITING) &&
		    now_ms >= cl->deadline_ms)
			client_close(cl); /* too slow: its slot goes to others */
	}
}

/* ---- life cycle ----------------------------------------------------------------------------- */

struct ctl *ctl_new(const struct stats_sources *src, struct loop *loop)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct ctl *c = calloc(1, sizeof(*c));
	const char *path = src->cfg->control;
	char *dir = NULL, *slash;
	struct stat st;
	mode_t old;
	int fd = -1;

	if (!c) {
		log_err("out of memory");
		return NULL;
	}
	c->h.fd = c->timer.fd = -1;
	for (size_t i = 0; i < CTL_MAX_CLIENTS; i++)
		c->clients[i].h.fd = -1;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_err("control socket path '%s' is too long (at most %zu bytes)",
			path, sizeof(sun.sun_path) - 1);
		goto fail;
	}
	strcpy(sun.sun_path, path);
	strcpy(c->path, path);

	dir = strdup(path);
	if (!dir)
		goto fail;
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			log_err("control socket directory %s: %m", dir);
			goto fail;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		goto sockfail;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_err("control socket %s: exists and is not a socket", path);
			goto fail;
		}
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0 ||
		    errno == EAGAIN) {
			log_err("control socket %s: another choreod is using it", path);
			goto fail;
		}
		close(fd);
		unlink(path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			goto sockfail;
	}
	/* created 0600 from the start: no window where others could connect */
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		umask(old);
		goto sockfail;
	}
	umask(old);
	if (listen(fd, 16) < 0)
		goto sockfail;
	c->h = (struct loop_handler){ .fd = fd, .fn = on_accept };
	fd = -1;
	c->loop = loop;
	c->src = *src;
	c->timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	c->timer.fn = on_timer;
	if (c->timer.fd < 0 || loop_add(loop, &c->timer, EPOLLIN) < 0 ||
	    loop_add(loop, &c->h, EPOLLIN) < 0)
		goto sockfail;
	free(dir);
	return c;
sockfail:
	log_err("control socket %s: %m", path);
fail:
	if (fd >= 0)
		close(fd);
	if (c->h.fd >= 0) {
		loop_del(loop, &c->h);
		close(c->h.fd);
		unlink(path);
	}
	if (c->timer.fd >= 0) {
		loop_del(loop, &c->timer);
		close(c->timer.fd);
	}
	free(dir);
	free(c);
	return NULL;
}

void ctl_free(struct ctl *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < CTL_MAX_CLIENTS; i++)
		client_close(&c->clients[i]);
	loop_del(c->loop, &c->timer);
	close(c->timer.fd);
	loop_del(c->loop, &c->h);
	close(c->h.fd);
	unlink(c->path);
	free(c);
}
