// SPDX-License-Identifier: MIT
#include "controller.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "log.h"
#include "peer.h"

/* A relay sent to a gateway, until its ACK: for the lag. */
struct inflight {
	uint32_t commit_id;
	uint64_t start_us;
};

struct node {
	struct controller_node pub;
	uint64_t report_ms;
	uint32_t next_commit_id;
	struct inflight ring[CONTROLLER_MAX_INFLIGHT];
	size_t head, n;           /* ACKs come in order: a queue */
	uint64_t untracked;       /* sent while the ring was full */
};

struct controller {
	const struct config *cfg;
	struct peers *peers;
	uint8_t digest[FRAME_DIGEST_LEN];
	struct node node[CONFIG_MAX_PEERS];
	struct change *changes;   /* one LEARNED frame's */
	struct controller_stats st;
	struct latency lag;
	struct log_ratelimit rl;
};

struct changes_args {
	uint32_t commit_id;
	const uint8_t *digest;
	const struct change *c;
	size_t n;
};

static int fill_changes(void *ctx, struct wire_out *w)
{
	const struct changes_args *a = ctx;

	return frame_changes_encode(w, a->commit_id, a->digest, a->c, a->n);
}

/* CHANGES to one gateway; its ACK will be timed from start_us. */
static int send_to(struct controller *c, size_t i, const struct change *v,
		   size_t n, uint64_t start_us)
{
	struct node *nd = &c->node[i];
	struct peer_link *l = peers_link(c->peers, i);
	struct changes_args a = { nd->next_commit_id, c->digest, v, n };
	int ret;

	if (!l)
		return -ENOTCONN;
	ret = peer_send(l, FRAME_CHANGES, FRAME_CHANGES_HEAD + n * CHANGE_WIRE_LEN,
			fill_changes, &a);
	if (ret < 0)
		return ret;
	nd->next_commit_id++;
	if (nd->n < CONTROLLER_MAX_INFLIGHT) {
		nd->ring[(nd->head + nd->n) % CONTROLLER_MAX_INFLIGHT] =
			(struct inflight){ a.commit_id, start_us };
		nd->n++;
	} else {
		nd->untracked++;
	}
	return 0;
}

static bool is_gateway(const struct controller *c, size_t i)
{
	return c->cfg->peers[i].role == CONFIG_ROLE_GATEWAY;
}

/* Relay a gateway's learned bindings to every other joined gateway. */
static int on_learned(struct controller *c, size_t from, struct wire *w)
{
	struct frame_windows fl;
	struct change ch;
	size_t n = 0, sent = 0;
	uint64_t start = latency_now_us();
	int ret = frame_learned_decode(w, c->cfg->n_services, &fl);

	if (ret)
		return ret == FRAME_ERR_SIZE ? PEER_R_SIZE : PEER_R_FIELD;
	if (!crypto_equal(fl.digest, c->digest, sizeof(fl.digest)))
		return PEER_R_STALE;
	while (frame_windows_next(&fl, &ch))
		c->changes[n++] = ch;
	c->st.learned += n;
	c->node[from].pub.learned_in += n;
	for (size_t i = 0; i < c->cfg->n_peers; i++) {
		if (i == from || !is_gateway(c, i) || !c->node[i].pub.joined)
			continue;
		if (send_to(c, i, c->changes, n, start) == 0) {
			sent++;
			c->node[i].pub.relayed_out += n;
			c->st.relays += n;
		} else {
			c->st.relay_unsent += n;
		}
	}
	if (!sent)
		c->st.no_target += n;
	return 0;
}

static int on_ack(struct controller *c, size_t i, struct wire *w)
{
	struct node *nd = &c->node[i];
	struct frame_ack ack;
	int ret = frame_ack_decode(w, &ack);

	if (ret)
		return ret == FRAME_ERR_SIZE ? PEER_R_SIZE : PEER_R_FIELD;
	if (ack.result) {
		nd->pub.relay_failed++;
		if (log_ratelimit_ok(&c->rl, log_now_ms()))
			log_warn("gateway %s: relayed bindings refused: %s",
				 nd->pub.name, strerror(-ack.result));
	}
	if (nd->n && nd->ring[nd->head].commit_id == ack.commit_id) {
		latency_record(&c->lag, latency_now_us() - nd->ring[nd->head].start_us);
		nd->head = (nd->head + 1) % CONTROLLER_MAX_INFLIGHT;
		nd->n--;
	} else if (!nd->untracked) {
		return PEER_R_PROTOCOL; /* an ACK of nothing sent, or out of order */
	} else {
		nd->untracked--;
	}
	return 0;
}

static int on_join(struct controller *c, size_t i, struct wire *w)
{
	struct node *nd = &c->node[i];
	uint8_t digest[FRAME_DIGEST_LEN];
	int ret = frame_join_decode(w, digest);

	if (ret)
		return ret == FRAME_ERR_SIZE ? PEER_R_SIZE : PEER_R_FIELD;
	if (!crypto_equal(digest, c->digest, sizeof(digest))) {
		nd->pub.stale = true;
		nd->pub.stale_refusals++;
		if (log_ratelimit_ok(&c->rl, log_now_ms()))
			log_warn("node %s: refused: its [service] sections differ "
				 "from the controller's (services digest); compare "
				 "the files with choreod -t -c A -c B", nd->pub.name);
		return PEER_R_STALE;
	}
	nd->pub.stale = false;
	nd->pub.joined = true;
	nd->pub.joins++;
	log_info("node %s (%s) joined", nd->pub.name, config_role_name(nd->pub.role));
	return 0;
}

static int on_frame(void *ctx, struct peer_link *l, uint8_t type, struct wire *w)
{
	struct controller *c = ctx;
	size_t i = peer_link_index(l);
	struct node *nd = &c->node[i];
	int ret;

	if (!nd->pub.joined)
		return type == FRAME_JOIN ? on_join(c, i, w) : PEER_R_TYPE;
	switch (type) {
	case FRAME_REPORT:
		ret = frame_report_decode(w, nd->pub.report);
		if (ret)
			return ret == FRAME_ERR_SIZE ? PEER_R_SIZE : PEER_R_FIELD;
		nd->report_ms = log_now_ms();
		return 0;
	case FRAME_LEARNED:
		return is_gateway(c, i) ? on_learned(c, i, w) : PEER_R_TYPE;
	case FRAME_ACK:
		return is_gateway(c, i) ? on_ack(c, i, w) : PEER_R_TYPE;
	}
	return PEER_R_TYPE; /* a second JOIN too */
}

static int on_up(void *ctx, struct peer_link *l)
{
	struct controller *c = ctx;
	struct node *nd = &c->node[peer_link_index(l)];

	/* a new connection: its sequence of commit ids starts again */
	nd->pub.joined = false;
	nd->head = nd->n = 0;
	nd->untracked = 0;
	nd->next_commit_id = 0;
	return 0;
}

static void on_down(void *ctx, struct peer_link *l, enum peer_reason why)
{
	struct controller *c = ctx;
	struct node *nd = &c->node[peer_link_index(l)];

	(void)why;
	if (nd->pub.joined)
		log_info("node %s left (%s)", nd->pub.name, peer_reason_name(why));
	nd->pub.joined = false;
	nd->n = 0;
}

int controller_new(const struct config *cfg, struct loop *loop,
		   struct controller **out)
{
	struct controller *c = calloc(1, sizeof(*c));
	struct peer_handlers h;
	int ret;

	*out = NULL;
	if (!c)
		return -ENOMEM;
	c->cfg = cfg;
	c->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(2, 10);
	c->changes = calloc(FRAME_MAX_CHANGES, sizeof(*c->changes));
	ret = c->changes ? config_digest(cfg, c->digest) : -ENOMEM;
	for (size_t i = 0; i < cfg->n_peers; i++) {
		c->node[i].pub.name = cfg->peers[i].name;
		c->node[i].pub.role = cfg->peers[i].role;
	}
	h = (struct peer_handlers){ .ctx = c, .up = on_up, .frame = on_frame,
				    .down = on_down };
	if (ret == 0)
		ret = peers_new(cfg, loop, &h, &c->peers);
	if (ret < 0) {
		free(c->changes);
		free(c);
		return ret;
	}
	*out = c;
	return 0;
}

void controller_free(struct controller *c)
{
	if (!c)
		return;
	peers_free(c->peers);
	free(c->changes);
	free(c);
}

void controller_tick(struct controller *c, uint64_t now_ms)
{
	peers_tick(c->peers, now_ms);
}

struct peers *controller_peers(struct controller *c)
{
	return c->peers;
}

size_t controller_push(struct controller *c, const struct change *changes,
		       size_t n)
{
	uint64_t start = latency_now_us();
	size_t sent = 0;

	if (!n || n > FRAME_MAX_CHANGES)
		return 0;
	for (size_t i = 0; i < c->cfg->n_peers; i++)
		if (is_gateway(c, i) && c->node[i].pub.joined &&
		    send_to(c, i, changes, n, start) == 0)
			sent++;
	c->st.pushed += sent ? n : 0;
	return sent;
}

void controller_get_stats(const struct controller *c, uint64_t now_ms,
			  struct controller_stats *out)
{
	*out = c->st;
	out->n_nodes = c->cfg->n_peers;
	for (size_t i = 0; i < c->cfg->n_peers; i++) {
		out->node[i] = c->node[i].pub;
		out->node[i].inflight = c->node[i].n;
		out->node[i].report_age_ms = c->node[i].report_ms ?
					     now_ms - c->node[i].report_ms : 0;
	}
	latency_summarise(&c->lag, &out->relay_lag);
}
