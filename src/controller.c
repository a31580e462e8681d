// SPDX-License-Identifier: MIT
#include "controller.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "change_log.h"
#include "crypto.h"
#include "gw_policy.h"
#include "log.h"
#include "peer.h"
#include "relay.h"
#include "rotor.h"
#include "slices.h"

/* A relay sent to a gateway, until its ACK: for the lag. */
struct inflight {
	uint32_t commit_id;
	uint64_t start_us;
};

struct node {
	struct controller_node pub;
	uint64_t report_ms;
	uint32_t next_commit_id;
	uint32_t ack_next;        /* the commit id the next ACK must carry */
	struct inflight ring[CONTROLLER_MAX_INFLIGHT];
	size_t head, n;           /* ACKs come in order: a queue */
};

struct controller {
	const struct config *cfg;
	struct peers *peers;
	struct slices *slices;
	int dns_node[CONFIG_MAX_PEERS];   /* a peer's node index in slices, or -1 */
	size_t n_dns;
	uint8_t block_bits[CONFIG_MAX_SERVICES];
	struct frame_assign asg;          /* scratch: one ASSIGN or claim */
	char report[FRAME_REPORT_MAX + 1]; /* scratch: one REPORT */
	uint8_t digest[FRAME_DIGEST_LEN];
	struct node node[CONFIG_MAX_PEERS];
	struct change *changes;   /* one LEARNED frame's */
	struct change_log *learned; /* the bindings relayed, for a gateway
				       that (re)joins: the ones it missed */
	struct controller_stats st;
	struct latency lag;
	struct log_ratelimit rl;
};

/* CHANGES to one gateway; its ACK will be timed from start_us. */
static int send_to(struct controller *c, size_t i, const struct change *v,
		   size_t n, uint64_t start_us)
{
	struct node *nd = &c->node[i];
	struct peer_link *l = peers_link(c->peers, i);
	struct frame_changes_args a = { nd->next_commit_id, c->digest, v, n };
	int ret;

	if (!l)
		return -ENOTCONN;
	ret = peer_send(l, FRAME_CHANGES, FRAME_CHANGES_HEAD + n * CHANGE_WIRE_LEN,
			frame_changes_fill, &a);
	if (ret < 0)
		return ret;
	nd->next_commit_id++;
	if (nd->n < CONTROLLER_MAX_INFLIGHT) {
		nd->ring[(nd->head + nd->n) % CONTROLLER_MAX_INFLIGHT] =
			(struct inflight){ a.commit_id, start_us };
		nd->n++;
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
	if (!crypto_equal(fl.digest, c->digest, sizeof(fl.digest))) {
		c->node[from].pub.stale = true;
		c->node[from].pub.stale_refusals++;
		if (log_ratelimit_ok(&c->rl, log_now_ms()))
			log_warn("gateway %s: learned bindings for another configuration "
				 "(services digest): link closed", c->node[from].pub.name);
		return PEER_R_STALE;
	}
	/* checked as the gateways will check them: one bad binding relayed
	 * would make every other gateway close its link to the controller */
	while (frame_windows_next(&fl, &ch)) {
		if (!gw_change_in_pool(c->cfg, &ch) || !gw_change_in_time(c->cfg, &ch)) {
			c->st.learned_refused++;
			if (log_ratelimit_ok(&c->rl, log_now_ms()))
				log_warn("gateway %s: a learned binding outside the pools "
					 "or longer than binding + 10 %%: link closed, "
					 "nothing relayed", c->node[from].pub.name);
			return PEER_R_FIELD;
		}
		c->changes[n++] = ch;
	}
	c->st.learned += n;
	c->node[from].pub.learned_in += n;
	change_log_add(c->learned, c->changes, n, log_now_ms());
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
	/* ACKs come in the order the CHANGES went: each the next one sent */
	if (nd->ack_next == nd->next_commit_id || ack.commit_id != nd->ack_next)
		return PEER_R_PROTOCOL;
	nd->ack_next++;
	if (ack.result) {
		nd->pub.relay_failed++;
		if (log_ratelimit_ok(&c->rl, log_now_ms()))
			log_warn("gateway %s: relayed bindings refused: %s",
				 nd->pub.name, strerror(-ack.result));
	}
	/* timed when it was one of the CONTROLLER_MAX_INFLIGHT tracked */
	if (nd->n && nd->ring[nd->head].commit_id == ack.commit_id) {
		latency_record(&c->lag, latency_now_us() - nd->ring[nd->head].start_us);
		nd->head = (nd->head + 1) % CONTROLLER_MAX_INFLIGHT;
		nd->n--;
	}
	return 0;
}

static int fill_assign(void *ctx, struct wire_out *w)
{
	return frame_assign_encode(w, ctx);
}

/* A DNS node's assignment, when it has changed since it was last sent. */
static void send_assignment(struct controller *c, size_t i)
{
	int node = c->dns_node[i];
	struct peer_link *l = peers_link(c->peers, i);
	struct slices_assignment sa;

	if (node < 0 || !l || !c->node[i].pub.joined || !slices_dirty(c->slices, (size_t)node) ||
	    slices_get(c->slices, (size_t)node, &sa) < 0)
		return;
	memset(&c->asg, 0, sizeof(c->asg));
	c->asg.epoch = sa.epoch;
	c->asg.n = (uint16_t)c->cfg->n_services;
	for (size_t s = 0; s < c->cfg->n_services; s++) {
		c->asg.block_bits[s] = c->block_bits[s];
		c->asg.block[s] = sa.block[s];
		c->asg.share[s] = sa.share[s];
	}
	if (peer_send(l, FRAME_ASSIGN, FRAME_ASSIGN_LEN(c->asg.n), fill_assign, &c->asg) == 0) {
		slices_sent(c->slices, (size_t)node, sa.epoch);
		c->node[i].pub.epoch_sent = sa.epoch;
		c->st.assigns++;
	}
}

/* What a DNS node says it has applied, in the allocator's terms; -1 when
 * its blocks are cut otherwise (another count of DNS nodes configured). */
static int claim_of(const struct controller *c, const struct frame_assign *f,
		    struct slices_assignment *out)
{
	memset(out, 0, sizeof(*out));
	out->n_services = c->cfg->n_services;
	for (size_t s = 0; s < c->cfg->n_services; s++)
		out->block[s] = SLICES_NO_BLOCK;
	if (f->epoch == 0)
		return 0;
	/* epochs grow by one per change: a claim this high is a lie, and
	 * would leave no epoch above it to assign */
	if (f->n != c->cfg->n_services || f->epoch > CONTROLLER_MAX_EPOCH)
		return -1;
	out->epoch = f->epoch;
	for (size_t s = 0; s < f->n; s++) {
		if (f->block[s] >= 0 && f->block_bits[s] != c->block_bits[s])
			return -1;
		out->block[s] = f->block[s];
		out->share[s] = f->share[s];
	}
	return 0;
}

struct replaying {
	struct controller *c;
	size_t peer, n;
	uint64_t start_us;
	int err;
};

static void replay_one(void *ctx, const struct change *ch)
{
	struct replaying *rp = ctx;
	struct controller *c = rp->c;

	if (rp->err)
		return;
	c->changes[rp->n] = *ch;
	/* the whole relay lifetime, not the time left (see replay()) */
	c->changes[rp->n++].ms = relay_ms(c->cfg->services[ch->service].binding);
	if (rp->n == FRAME_MAX_CHANGES) {
		rp->err = send_to(c, rp->peer, c->changes, rp->n, rp->start_us);
		c->st.replayed += rp->err ? 0 : rp->n;
		rp->n = 0;
	}
}

/*
 * A gateway that joins (back) gets the bindings relayed in the last
 * binding + C that are still live: those learned elsewhere while it was
 * away. Each with the whole relay lifetime binding + C, as when it was
 * relayed first (relay.h: the longest any bound element has), so that none
 * shortens a live one of its own: the time left could be shorter than a
 * binding its kernel refreshed since, and the kernel takes the new
 * timeout. A replayed binding so lives at most binding + C past the join.
 */
static void replay(struct controller *c, size_t i)
{
	struct replaying rp = { c, i, 0, latency_now_us(), 0 };

	change_log_live(c->learned, log_now_ms(), replay_one, &rp);
	if (!rp.err && rp.n) {
		rp.err = send_to(c, i, c->changes, rp.n, rp.start_us);
		c->st.replayed += rp.err ? 0 : rp.n;
	}
	if (rp.err && log_ratelimit_ok(&c->rl, log_now_ms()))
		log_warn("gateway %s: cannot send it the bindings it missed: %s",
			 c->node[i].pub.name, strerror(-rp.err));
}

static int on_join(struct controller *c, size_t i, struct wire *w)
{
	struct node *nd = &c->node[i];
	uint8_t digest[FRAME_DIGEST_LEN];
	struct slices_assignment claim;
	int ret = frame_join_decode(w, digest, &c->asg);

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
	if (c->dns_node[i] < 0) {
		if (c->asg.epoch)
			return PEER_R_FIELD; /* only a DNS node holds slices */
	} else {
		if (claim_of(c, &c->asg, &claim) < 0) {
			if (log_ratelimit_ok(&c->rl, log_now_ms()))
				log_warn("node %s: refused: it claims slices of another "
					 "number of services, cut for another number of DNS "
					 "nodes, or of an epoch past %llu; stop it, or "
					 "restore the controller's [peer] sections",
					 nd->pub.name,
					 (unsigned long long)CONTROLLER_MAX_EPOCH);
			return PEER_R_FIELD;
		}
		slices_node_up(c->slices, (size_t)c->dns_node[i], &claim, log_now_ms());
	}
	nd->pub.stale = false;
	nd->pub.joined = true;
	nd->pub.joins++;
	log_info("node %s (%s) joined", nd->pub.name, config_role_name(nd->pub.role));
	if (is_gateway(c, i))
		replay(c, i);
	for (size_t k = 0; k < c->cfg->n_peers; k++)
		send_assignment(c, k);
	return 0;
}

static int on_assigned(struct controller *c, size_t i, struct wire *w)
{
	uint64_t epoch;
	int ret = frame_assigned_decode(w, &epoch);

	if (ret)
		return ret == FRAME_ERR_SIZE ? PEER_R_SIZE : PEER_R_FIELD;
	if (slices_node_ack(c->slices, (size_t)c->dns_node[i], epoch, log_now_ms()) < 0)
		return PEER_R_PROTOCOL;
	c->node[i].pub.epoch_acked = epoch;
	for (size_t k = 0; k < c->cfg->n_peers; k++)
		send_assignment(c, k);
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
		/* a refused one leaves the last good one shown */
		ret = frame_report_decode(w, c->report);
		if (ret)
			return ret == FRAME_ERR_SIZE ? PEER_R_SIZE : PEER_R_FIELD;
		memcpy(nd->pub.report, c->report, sizeof(c->report));
		nd->report_ms = log_now_ms();
		return 0;
	case FRAME_LEARNED:
		return is_gateway(c, i) ? on_learned(c, i, w) : PEER_R_TYPE;
	case FRAME_ACK:
		return is_gateway(c, i) ? on_ack(c, i, w) : PEER_R_TYPE;
	case FRAME_ASSIGNED:
		return c->dns_node[i] >= 0 ? on_assigned(c, i, w) : PEER_R_TYPE;
	case FRAME_LEAVE:
		if (c->dns_node[i] < 0)
			return PEER_R_TYPE;
		ret = frame_leave_decode(w);
		if (ret)
			return PEER_R_SIZE;
		slices_node_leave(c->slices, (size_t)c->dns_node[i], log_now_ms());
		nd->pub.joined = false;
		nd->pub.left++;
		log_info("node %s left: its slices drain", nd->pub.name);
		return PEER_R_CLOSED;
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
	nd->next_commit_id = nd->ack_next = 0;
	return 0;
}

static void on_down(void *ctx, struct peer_link *l, enum peer_reason why)
{
	struct controller *c = ctx;
	struct node *nd = &c->node[peer_link_index(l)];

	if (nd->pub.joined) {
		log_info("node %s is gone (%s)%s", nd->pub.name, peer_reason_name(why),
			 c->dns_node[peer_link_index(l)] >= 0 ?
			 ": its slices are held for it" : "");
		if (c->dns_node[peer_link_index(l)] >= 0)
			slices_node_down(c->slices, (size_t)c->dns_node[peer_link_index(l)],
					 log_now_ms());
	}
	nd->pub.joined = false;
	nd->n = 0;
}

/*
 * How long a DNS node's windows may outlive its use of a block or share:
 * a window and its grace, after a commit that a gateway may apply until
 * its frame is too old (FRAME_FUDGE_MS), plus the longest commit_timeout
 * and the rotor's slack.
 */
static uint64_t drain_ms(const struct config_service *s)
{
	return ((uint64_t)s->window + s->grace) * 1000 + FRAME_FUDGE_MS + 10000 +
	       ROTOR_EXPIRY_SLACK_MS;
}

/* The allocator of slices and shares over the DNS nodes, rebuilding: the
 * nodes may hold slices from a run before this one. */
static int new_slices(struct controller *c)
{
	const struct config *cfg = c->cfg;
	struct slices_service *svc = calloc(cfg->n_services ? cfg->n_services : 1,
					    sizeof(*svc));

	if (!svc)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_peers; i++)
		c->dns_node[i] = cfg->peers[i].role == CONFIG_ROLE_DNS ? (int)c->n_dns++ : -1;
	for (size_t s = 0; s < cfg->n_services; s++) {
		const struct config_service *cs = &cfg->services[s];
		unsigned host = addr_prefix_host_bits(&cs->pool);

		if (cs->has_pool6 && addr_prefix_host_bits(&cs->pool6) < host)
			host = addr_prefix_host_bits(&cs->pool6);
		c->block_bits[s] = slices_block_bits((unsigned)c->n_dns, host);
		svc[s] = (struct slices_service){ c->block_bits[s], cs->max_open,
						  drain_ms(cs) };
	}
	c->slices = c->n_dns ? slices_new(cfg->n_services, svc, c->n_dns, true) : NULL;
	free(svc);
	return c->n_dns && !c->slices ? -ENOMEM : 0;
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
	c->learned = change_log_new(CONTROLLER_LEARNED_LOG);
	ret = c->changes && c->learned ? config_digest(cfg, c->digest) : -ENOMEM;
	for (size_t i = 0; i < cfg->n_peers; i++) {
		c->node[i].pub.name = cfg->peers[i].name;
		c->node[i].pub.role = cfg->peers[i].role;
	}
	h = (struct peer_handlers){ .ctx = c, .up = on_up, .frame = on_frame,
				    .down = on_down };
	if (ret == 0)
		ret = new_slices(c);
	if (ret == 0)
		ret = peers_new(cfg, loop, &h, &c->peers);
	if (ret < 0) {
		slices_free(c->slices);
		change_log_free(c->learned);
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
	slices_free(c->slices);
	change_log_free(c->learned);
	free(c->changes);
	free(c);
}

void controller_tick(struct controller *c, uint64_t now_ms)
{
	peers_tick(c->peers, now_ms);
	if (!c->slices)
		return;
	slices_tick(c->slices, now_ms);
	for (size_t k = 0; k < c->cfg->n_peers; k++)
		send_assignment(c, k);
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

int controller_quarantine(struct controller *c, const struct addr_prefix *src,
			  uint32_t seconds)
{
	struct change q = { .kind = CHANGE_QUARANTINE, .family = (uint8_t)src->family,
			    .src_len = src->len, .service = 0 };
	size_t alen = addr_family_size(src->family);
	uint64_t ms = (uint64_t)seconds * 1000;

	if (!alen || src->len < 1 || src->len > alen * 8 || !seconds ||
	    ms > CHANGE_MAX_MS || !c->cfg->n_services)
		return -EINVAL;
	q.ms = (uint32_t)ms;
	memcpy(q.src, src->bytes, alen);
	addr_mask(src->family, q.src, src->len);
	return (int)controller_push(c, &q, 1);
}

int controller_forget(struct controller *c, const char *name)
{
	const struct config_peer *cp = config_find_peer(c->cfg, name);
	size_t i;

	if (!cp || !c->slices)
		return -ENOENT;
	i = (size_t)(cp - c->cfg->peers);
	if (c->dns_node[i] < 0)
		return -ENOENT;
	slices_node_forget(c->slices, (size_t)c->dns_node[i], log_now_ms());
	c->node[i].pub.joined = false;
	log_warn("node %s forgotten by the operator: its slices drain", name);
	/* if it is still connected, it must not go on with them */
	if (peers_link(c->peers, i))
		peers_close(c->peers, i);
	for (size_t k = 0; k < c->cfg->n_peers; k++)
		send_assignment(c, k);
	return 0;
}

void controller_get_stats(const struct controller *c, uint64_t now_ms,
			  struct controller_stats *out)
{
	*out = c->st;
	out->n_nodes = c->cfg->n_peers;
	for (size_t i = 0; i < c->cfg->n_peers; i++) {
		struct slices_assignment sa;

		out->node[i] = c->node[i].pub;
		out->node[i].inflight = c->node[i].n;
		out->node[i].report_age_ms = c->node[i].report_ms ?
					     now_ms - c->node[i].report_ms : 0;
		if (c->dns_node[i] < 0 ||
		    slices_get(c->slices, (size_t)c->dns_node[i], &sa) < 0)
			continue;
		out->node[i].slices_state = slices_state(c->slices, (size_t)c->dns_node[i]);
		out->node[i].epoch = sa.epoch;
		for (size_t s = 0; s < c->cfg->n_services && s < CONTROLLER_SHOW_SERVICES; s++) {
			out->node[i].block[s] = sa.block[s];
			out->node[i].share[s] = sa.share[s];
		}
	}
	out->n_services = c->cfg->n_services < CONTROLLER_SHOW_SERVICES ?
			  c->cfg->n_services : CONTROLLER_SHOW_SERVICES;
	for (size_t s = 0; c->slices && s < out->n_services; s++) {
		slices_stats(c->slices, s, now_ms, &out->service[s]);
		out->block_bits[s] = c->block_bits[s];
	}
	latency_summarise(&c->lag, &out->relay_lag);
	out->replay_lost = change_log_lost(c->learned);
}
