// SPDX-License-Identifier: MIT
#include "gw_agent.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "addr.h"
#include "change_log.h"
#include "config.h"
#include "crypto.h"
#include "frame.h"
#include "gateway.h"
#include "gw_policy.h"
#include "log.h"
#include "loop.h"
#include "nflog.h"
#include "node_ctl.h"
#include "peer.h"
#include "relay.h"

/* the learned bindings kept to send again at a JOIN: about ten entries a
 * binding (one a coalescing period, relay.h), 56 bytes each */
#define GW_AGENT_LEARNED_LOG 262144

struct gw_agent {
	const struct config *cfg;
	struct gateway *local;
	struct peers *peers;
	uint8_t digest[FRAME_DIGEST_LEN];
	struct change *changes;  /* one frame's, reused */
	size_t cap;
	struct gw_agent_stats st;
	struct log_ratelimit rl;
	struct node_ctl *ctl;      /* the link to the controller, or NULL */
	struct relay_cache *relayed; /* the learned bindings reported lately */
	struct change_log *learned_log; /* ... and when, to send again at a JOIN */
	node_ctl_report_fn *report;
	void *report_ctx;
	struct loop *loop;
	struct nfl *nfl;           /* the kernel's learned bindings (NFLOG) */
	struct loop_handler nfl_h;
};

/* The answer to one CHANGES frame, sent when the local commit is done. */
struct applying {
	struct gw_agent *a;
	struct peer_link *l;
	struct frame_ack ack;
	size_t n;
	bool done;
	bool acked;        /* the ACK is queued */
};

static int fill_ack(void *ctx, struct wire_out *w)
{
	return frame_ack_encode(w, ctx);
}

static int send_ack(struct peer_link *l, uint32_t commit_id, int result,
		    size_t applied)
{
	struct frame_ack ack = { commit_id, result,
				 (uint16_t)(applied > 65535 ? 65535 : applied) };

	return peer_send(l, FRAME_ACK, FRAME_ACK_LEN, fill_ack, &ack);
}

static void on_applied(void *ctx, int result)
{
	struct applying *ap = ctx;
	struct gw_agent *a = ap->a;

	ap->done = true;
	if (result) {
		a->st.failed++;
		if (log_ratelimit_ok(&a->rl, log_now_ms()))
			log_warn("peer %s: cannot apply %zu changes: %s",
				 a->cfg->peers[peer_link_index(ap->l)].name, ap->n,
				 strerror(-result));
	} else {
		a->st.applied++;
		a->st.changes += ap->n;
	}
	ap->acked = send_ack(ap->l, ap->ack.commit_id, result, result ? 0 : ap->n) == 0;
}

/* What each sender may ask for: a DNS node its answers' changes, the
 * controller the bindings it relays and the sources it quarantines. */
static bool kind_allowed(bool from_controller, uint8_t kind)
{
	bool controllers = kind == CHANGE_LEARNED || kind == CHANGE_QUARANTINE;

	return from_controller == controllers;
}

static int on_changes(struct gw_agent *a, struct peer_link *l, struct wire *w)
{
	bool from_controller =
		a->cfg->peers[peer_link_index(l)].role == CONFIG_ROLE_CONTROLLER;
	const struct config *cfg = a->cfg;
	struct frame_changes fc;
	struct applying ap = { .a = a, .l = l };
	uint32_t commit_id;
	size_t count, n = 0;
	struct change c;
	int ret;

	/* protocol.md's order: the size, then the digest, then each change */
	ret = frame_changes_peek(w, &fc);
	if (ret)
		return ret == FRAME_ERR_FIELD ? PEER_R_FIELD : PEER_R_SIZE;
	commit_id = fc.commit_id;
	count = fc.count;
	a->st.frames++;
	if (!crypto_equal(fc.digest, a->digest, sizeof(fc.digest))) {
		a->st.stale++;
		if (log_ratelimit_ok(&a->rl, log_now_ms()))
			log_warn("peer %s: changes for another configuration (its "
				 "services digest differs): refused with ESTALE; "
				 "compare the nodes with choreod -t -c A -c B",
				 cfg->peers[peer_link_index(l)].name);
		return send_ack(l, commit_id, -ESTALE, 0) < 0 ? PEER_R_IO : 0;
	}
	ret = frame_changes_decode(w, cfg->n_services, &fc);
	if (ret)
		return ret == FRAME_ERR_SIZE ? PEER_R_SIZE : PEER_R_FIELD;
	if (count > a->cap) {
		struct change *grown = realloc(a->changes, count * sizeof(*grown));

		if (!grown)
			return send_ack(l, commit_id, -ENOMEM, 0) < 0 ? PEER_R_IO : 0;
		a->changes = grown;
		a->cap = count;
	}
	while (frame_changes_next(&fc, &c)) {
		if (!kind_allowed(from_controller, c.kind)) {
			a->st.wrong_kind++;
			if (log_ratelimit_ok(&a->rl, log_now_ms()))
				log_warn("peer %s: a change of kind %s, which a %s does "
					 "not send: link closed, nothing applied",
					 cfg->peers[peer_link_index(l)].name,
					 change_kind_name(c.kind), from_controller ?
					 "controller" : "DNS node");
			return PEER_R_FIELD;
		}
		if (!gw_change_in_time(cfg, &c)) {
			a->st.over_window++;
			if (log_ratelimit_ok(&a->rl, log_now_ms()))
				log_warn("peer %s: a change of kind %s of %u ms for "
					 "[service %s], longer than such a change may last "
					 "(window + grace; a learned one binding + 10 %%): "
					 "link closed, nothing applied",
					 cfg->peers[peer_link_index(l)].name,
					 change_kind_name(c.kind), c.ms,
					 cfg->services[c.service].section);
			return PEER_R_FIELD;
		}
		if (!gw_change_in_pool(cfg, &c)) {
			a->st.outside++;
			if (log_ratelimit_ok(&a->rl, log_now_ms())) {
				char buf[ADDR_STRLEN];

				log_warn("peer %s: a change for %s, outside the pool "
					 "of [service %s]: link closed, nothing applied",
					 cfg->peers[peer_link_index(l)].name,
					 addr_format(c.family, c.addr, buf),
					 cfg->services[c.service].section);
			}
			return PEER_R_FIELD;
		}
		a->changes[n++] = c;
	}
	ap.ack.commit_id = commit_id;
	ap.n = n;
	for (size_t i = 0; from_controller && i < n; i++) {
		a->st.relayed_in += a->changes[i].kind == CHANGE_LEARNED;
		a->st.quarantined += a->changes[i].kind == CHANGE_QUARANTINE;
	}
	gateway_commit(a->local, a->changes, n, on_applied, &ap);
	if (!ap.done) {
		/* the local gateway completes before it returns; were it ever
		 * otherwise, ap would dangle: fail loudly instead */
		log_err("gw_agent: the local commit did not complete at once");
		return PEER_R_IO;
	}
	/* an ACK that cannot be queued (the DNS node reads nothing) would
	 * leave it waiting, then out of order: end the link instead */
	return ap.acked ? 0 : PEER_R_IO;
}

/* ---- the windows, for a DNS node that (re)connects ------------------------------ */

struct windows {
	struct change *v;
	size_t n, cap;
	int err;
};

static void collect(void *ctx, const struct change *c)
{
	struct windows *ws = ctx;

	if (ws->err)
		return;
	if (ws->n == ws->cap) {
		size_t cap = ws->cap ? 2 * ws->cap : 64;
		struct change *grown = realloc(ws->v, cap * sizeof(*grown));

		if (!grown) {
			ws->err = -ENOMEM;
			return;
		}
		ws->v = grown;
		ws->cap = cap;
	}
	ws->v[ws->n++] = *c;
}

struct windows_args {
	const uint8_t *digest;
	bool more;
	const struct change *v;
	size_t n;
};

static int fill_windows(void *ctx, struct wire_out *w)
{
	const struct windows_args *wa = ctx;

	return frame_windows_encode(w, wa->digest, wa->more, wa->v, wa->n);
}

/*
 * A DNS node that restarted does not know which windows its earlier run
 * opened: the table's open and client-subnet windows go to it first, so
 * that it counts its own against its share (docs/protocol.md, WINDOWS).
 */
static int on_up(void *ctx, struct peer_link *l)
{
	struct gw_agent *a = ctx;
	struct windows ws = { 0 };
	size_t off = 0;
	int ret = a->local->ops->windows ?
		  a->local->ops->windows(a->local, collect, &ws) : 0;

	if (!ret)
		ret = ws.err;
	do {
		size_t k = ws.n - off < FRAME_MAX_CHANGES ? ws.n - off : FRAME_MAX_CHANGES;
		struct windows_args wa = { a->digest, off + k < ws.n, ws.v + off, k };

		if (!ret)
			ret = peer_send(l, FRAME_WINDOWS, FRAME_WINDOWS_HEAD +
					k * CHANGE_WIRE_LEN, fill_windows, &wa);
		off += k;
	} while (!ret && off < ws.n);
	free(ws.v);
	if (ret) {
		log_err("peer %s: cannot send the table's windows: %s",
			a->cfg->peers[peer_link_index(l)].name, strerror(-ret));
		return PEER_R_IO;
	}
	return 0;
}

static int on_frame(void *ctx, struct peer_link *l, uint8_t type, struct wire *w)
{
	if (type != FRAME_CHANGES)
		return PEER_R_TYPE;
	return on_changes(ctx, l, w);
}

/* CHANGES from the controller: relayed bindings, checked and applied as a
 * DNS node's are (node_ctl.c calls this). */
static int on_controller_changes(void *ctx, struct peer_link *l, struct wire *w)
{
	return on_changes(ctx, l, w);
}

int gw_agent_new(const struct config *cfg, struct loop *loop,
		 struct gateway *local, struct gw_agent **out)
{
	struct gw_agent *a = calloc(1, sizeof(*a));
	struct peer_handlers h = { .up = on_up, .frame = on_frame };
	int ret;

	*out = NULL;
	if (!a)
		return -ENOMEM;
	a->cfg = cfg;
	a->local = local;
	a->loop = loop;
	a->nfl_h.fd = -1;
	a->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(2, 10);
	ret = config_digest(cfg, a->digest);
	if (ret == 0) {
		h.ctx = a;
		ret = peers_new(cfg, loop, &h, &a->peers);
	}
	if (ret < 0) {
		free(a);
		return ret;
	}
	*out = a;
	return 0;
}

static void on_record(void *ctx, const struct nfl_event *e)
{
	if (e->is_binding)
		gw_agent_learned(ctx, e->family, e->src, e->dst, log_now_ms());
}

/* NFLOG records to read: the learned bindings, reported in one go. */
static void on_nflog(struct loop_handler *h, uint32_t events)
{
	struct gw_agent *a = container_of(h, struct gw_agent, nfl_h);

	(void)events;
	nfl_read(a->nfl, on_record, a);
	gw_agent_learned_flush(a);
}

static void report_trampoline(void *ctx, char *buf, size_t len)
{
	struct gw_agent *a = ctx;

	if (a->report)
		a->report(a->report_ctx, buf, len);
}

static void learned_again(void *ctx, const struct change *c)
{
	struct gw_agent *a = ctx;
	struct change full = *c;

	/* with its whole relay lifetime, as when it was learned: a relay
	 * written with less could shorten a live binding of the same client
	 * on another gateway (the kernel takes the new timeout) */
	full.ms = relay_ms(a->cfg->services[c->service].binding);
	a->st.learned_again++;
	node_ctl_learned(a->ctl, &full);
}

/*
 * At each JOIN, the bindings this gateway's kernel learned that are still
 * live go to the controller again: a controller that restarted has lost
 * what it held for a gateway that is away, and bindings learned while no
 * controller was there were never relayed. Each goes with its whole relay
 * lifetime (never shortening one elsewhere): a binding sent again lives
 * at most binding + C past that JOIN on the other gateways.
 */
static void send_learned_again(void *ctx)
{
	struct gw_agent *a = ctx;

	change_log_live(a->learned_log, log_now_ms(), learned_again, a);
	node_ctl_flush(a->ctl);
}

int gw_agent_attach_controller(struct gw_agent *a, node_ctl_report_fn *report,
			       void *report_ctx)
{
	int ret;

	if (!config_controller(a->cfg))
		return 0;
	a->relayed = relay_cache_new();
	a->learned_log = change_log_new(GW_AGENT_LEARNED_LOG);
	if (!a->relayed || !a->learned_log)
		return -ENOMEM;
	a->report = report;
	a->report_ctx = report_ctx;
	ret = node_ctl_new(a->cfg, a->peers, report_trampoline,
			   on_controller_changes, NULL, a, &a->ctl);
	node_ctl_on_join(a->ctl, send_learned_again, a);
	if (ret < 0 || !gw_logs_bindings(a->cfg))
		return ret;
	/* the learn rules log to this group (gw_policy.c) */
	ret = nfl_open((uint16_t)a->cfg->nflog_group, &a->nfl);
	if (ret < 0)
		return ret;
	a->nfl_h = (struct loop_handler){ .fd = nfl_fd(a->nfl), .fn = on_nflog };
	if (loop_add(a->loop, &a->nfl_h, EPOLLIN) < 0) {
		a->nfl_h.fd = -1;
		return -errno;
	}
	return 0;
}

/* The service whose pool of this family holds addr, or -1. */
static long service_of(const struct config *cfg, int family, const uint8_t *addr)
{
	config_for_each_pool(cfg, p)
		if (p.family == family && addr_prefix_contains(p.pool, family, addr))
			return (long)p.service;
	return -1;
}

void gw_agent_learned(struct gw_agent *a, int family, const uint8_t src[static 16],
		      const uint8_t addr[static 16], uint64_t now_ms)
{
	long s;
	struct change c = { .kind = CHANGE_LEARNED, .family = (uint8_t)family,
			    .src_len = family == AF_INET6 ? 128 : 32 };
	size_t alen = family == AF_INET6 ? 16 : 4;

	if (!a->ctl)
		return;
	s = service_of(a->cfg, family, addr);
	if (s < 0) {
		a->st.learned_foreign++;
		return;
	}
	if (!relay_cache_due(a->relayed, (uint16_t)s, family, src, addr, now_ms,
			     relay_coalesce_ms(a->cfg->services[s].binding))) {
		a->st.learned_coalesced++;
		return;
	}
	c.service = (uint16_t)s;
	c.ms = relay_ms(a->cfg->services[s].binding);
	memcpy(c.addr, addr, alen);
	memcpy(c.src, src, alen);
	a->st.learned++;
	change_log_add(a->learned_log, &c, 1, now_ms);
	node_ctl_learned(a->ctl, &c);
}

void gw_agent_learned_flush(struct gw_agent *a)
{
	node_ctl_flush(a->ctl);
}

struct node_ctl *gw_agent_controller(struct gw_agent *a)
{
	return a->ctl;
}

void gw_agent_free(struct gw_agent *a)
{
	if (!a)
		return;
	if (a->nfl_h.fd >= 0)
		loop_del(a->loop, &a->nfl_h);
	nfl_close(a->nfl);
	node_ctl_free(a->ctl);
	relay_cache_free(a->relayed);
	change_log_free(a->learned_log);
	peers_free(a->peers);
	free(a->changes);
	free(a);
}

void gw_agent_tick(struct gw_agent *a, uint64_t now_ms)
{
	peers_tick(a->peers, now_ms);
	node_ctl_tick(a->ctl, now_ms);
}

struct peers *gw_agent_peers(struct gw_agent *a)
{
	return a->peers;
}

void gw_agent_get_stats(const struct gw_agent *a, struct gw_agent_stats *out)
{
	struct nfl_stats ns = { 0 };

	*out = a->st;
	if (a->nfl)
		nfl_get_stats(a->nfl, &ns);
	out->nflog_records = ns.records;
	out->nflog_bad = ns.bad;
	out->nflog_lost = ns.lost;
}
