// SPDX-License-Identifier: MIT
#include "node_ctl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "peer.h"

#define LEARNED_QUEUE FRAME_MAX_CHANGES /* one frame's worth, then a flush */

struct node_ctl {
	const struct config *cfg;
	struct peers *peers;
	size_t index;                  /* of the controller in cfg->peers */
	node_ctl_report_fn *report;
	node_ctl_changes_fn *changes;
	node_ctl_assign_fn *assign;
	void *ctx;
	struct frame_assign applied;   /* the last ASSIGN applied: the claim */
	struct frame_assign incoming;
	uint8_t digest[FRAME_DIGEST_LEN];
	struct peer_link *link;        /* joined, or NULL */
	struct change *queue;
	size_t n_queued;
	uint64_t last_report_ms;
	struct node_ctl_stats st;
	struct log_ratelimit rl;
	void (*joined)(void *ctx); /* node_ctl_on_join */
	void *joined_ctx;
};

static int fill_join(void *ctx, struct wire_out *w)
{
	const struct node_ctl *nc = ctx;

	return frame_join_encode(w, nc->digest, &nc->applied);
}

static int fill_assigned(void *ctx, struct wire_out *w)
{
	return frame_assigned_encode(w, *(const uint64_t *)ctx);
}

static int fill_nothing(void *ctx, struct wire_out *w)
{
	(void)ctx;
	return wire_out_error(w);
}

static int fill_report(void *ctx, struct wire_out *w)
{
	return frame_report_encode(w, ctx);
}

struct learned_args {
	const uint8_t *digest;
	const struct change *v;
	size_t n;
};

static int fill_learned(void *ctx, struct wire_out *w)
{
	const struct learned_args *a = ctx;

	return frame_learned_encode(w, a->digest, a->v, a->n);
}

static int on_up(void *ctx, struct peer_link *l)
{
	struct node_ctl *nc = ctx;

	if (peer_send(l, FRAME_JOIN, FRAME_DIGEST_LEN + FRAME_ASSIGN_LEN(nc->applied.n),
		      fill_join, nc) < 0)
		return PEER_R_IO;
	nc->link = l;
	nc->st.joins++;
	nc->last_report_ms = 0; /* a REPORT at the next tick */
	if (nc->joined)
		nc->joined(nc->joined_ctx);
	return 0;
}

void node_ctl_on_join(struct node_ctl *nc, void (*fn)(void *ctx), void *ctx)
{
	if (!nc)
		return;
	nc->joined = fn;
	nc->joined_ctx = ctx;
}

static void on_down(void *ctx, struct peer_link *l, enum peer_reason why)
{
	struct node_ctl *nc = ctx;

	/* one link to the controller at a time: this node connects to it,
	 * and a replaced link goes down before the new one comes up */
	(void)l;
	(void)why;
	nc->link = NULL;
}

/* The controller's slices and shares: applied, then acknowledged. */
static int on_assign(struct node_ctl *nc, struct peer_link *l, struct wire *w)
{
	int ret = frame_assign_decode(w, &nc->incoming);

	if (ret)
		return ret == FRAME_ERR_SIZE ? PEER_R_SIZE : PEER_R_FIELD;
	if (nc->incoming.epoch <= nc->applied.epoch && nc->applied.epoch)
		return PEER_R_PROTOCOL; /* epochs only grow */
	ret = nc->assign(nc->ctx, &nc->incoming);
	if (ret)
		return ret;
	nc->applied = nc->incoming;
	nc->st.assigns++;
	nc->st.epoch = nc->applied.epoch;
	return peer_send(l, FRAME_ASSIGNED, FRAME_ASSIGNED_LEN, fill_assigned,
			 &nc->applied.epoch) < 0 ? PEER_R_IO : 0;
}

static int on_frame(void *ctx, struct peer_link *l, uint8_t type, struct wire *w)
{
	struct node_ctl *nc = ctx;

	if (type == FRAME_ASSIGN && nc->assign)
		return on_assign(nc, l, w);
	if (type != FRAME_CHANGES || !nc->changes)
		return PEER_R_TYPE;
	nc->st.changes_in++;
	return nc->changes(nc->ctx, l, w);
}

int node_ctl_new(const struct config *cfg, struct peers *peers,
		 node_ctl_report_fn *report, node_ctl_changes_fn *changes,
		 node_ctl_assign_fn *assign, void *ctx, struct node_ctl **out)
{
	const struct config_peer *cp = config_controller(cfg);
	struct node_ctl *nc;
	struct peer_handlers h;
	int ret;

	*out = NULL;
	if (!cp)
		return 0;
	nc = calloc(1, sizeof(*nc));
	if (!nc)
		return -ENOMEM;
	nc->queue = calloc(LEARNED_QUEUE, sizeof(*nc->queue));
	ret = nc->queue ? config_digest(cfg, nc->digest) : -ENOMEM;
	if (ret < 0) {
		node_ctl_free(nc);
		return ret;
	}
	nc->cfg = cfg;
	nc->peers = peers;
	nc->index = (size_t)(cp - cfg->peers);
	nc->report = report;
	nc->changes = changes;
	nc->assign = assign;
	nc->ctx = ctx;
	nc->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(2, 10);
	h = (struct peer_handlers){ .ctx = nc, .up = on_up, .frame = on_frame,
				    .down = on_down };
	peers_set_controller_handlers(peers, &h);
	*out = nc;
	return 0;
}

void node_ctl_free(struct node_ctl *nc)
{
	if (!nc)
		return;
	free(nc->queue);
	free(nc);
}

void node_ctl_tick(struct node_ctl *nc, uint64_t now_ms)
{
	char text[FRAME_REPORT_MAX + 1];

	if (!nc || !nc->link || !nc->report || now_ms - nc->last_report_ms < 1000)
		return;
	nc->last_report_ms = now_ms;
	text[0] = 0;
	nc->report(nc->ctx, text, sizeof(text));
	if (text[0] && peer_send(nc->link, FRAME_REPORT, 2 + strlen(text),
				 fill_report, text) == 0)
		nc->st.reports++;
}

void node_ctl_learned(struct node_ctl *nc, const struct change *c)
{
	if (!nc)
		return;
	if (!nc->link) {
		nc->st.learned_dropped++;
		return;
	}
	if (nc->n_queued == LEARNED_QUEUE)
		node_ctl_flush(nc);
	nc->queue[nc->n_queued++] = *c;
}

void node_ctl_flush(struct node_ctl *nc)
{
	struct learned_args a;

	if (!nc || !nc->n_queued)
		return;
	a = (struct learned_args){ nc->digest, nc->queue, nc->n_queued };
	if (nc->link && peer_send(nc->link, FRAME_LEARNED,
				  FRAME_WINDOWS_HEAD + nc->n_queued * CHANGE_WIRE_LEN,
				  fill_learned, &a) == 0) {
		nc->st.learned_sent += nc->n_queued;
		nc->st.learned_frames++;
	} else {
		nc->st.learned_dropped += nc->n_queued;
		if (log_ratelimit_ok(&nc->rl, log_now_ms()))
			log_warn("controller %s: %zu learned bindings not reported "
				 "(no link, or it does not read)",
				 nc->cfg->peers[nc->index].name, nc->n_queued);
	}
	nc->n_queued = 0;
}

void node_ctl_leave(struct node_ctl *nc)
{
	if (!nc || !nc->link)
		return;
	if (peer_send(nc->link, FRAME_LEAVE, 0, fill_nothing, NULL) == 0)
		peer_flush(nc->link);
}

void node_ctl_get_stats(const struct node_ctl *nc, struct node_ctl_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!nc)
		return;
	*out = nc->st;
	out->up = nc->link != NULL;
}
