// SPDX-License-Identifier: MIT
#include "gw_remote.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "change_log.h"
#include "config.h"
#include "crypto.h"
#include "frame.h"
#include "log.h"
#include "loop.h"
#include "peer.h"

/* One commit of the DNS service: answers wait for it. */
struct pending {
	bool used;
	bool finished;           /* done() was called */
	unsigned waiting;        /* CHANGES frames not yet acknowledged */
	gateway_done_fn done;
	void *ctx;
	uint64_t deadline_ms, start_us;
	uint64_t log_first;      /* its changes in the log */
	size_t log_n;
};

#define NO_SLOT UINT16_MAX     /* a frame no commit waits for */

/* A CHANGES frame sent on a link, in the order sent (ACKs come so). */
struct inflight {
	uint32_t commit_id;
	uint16_t slot;           /* in pend[], or NO_SLOT */
	uint16_t count;          /* changes in it */
	uint64_t sent_ms;
};

struct glink {
	bool ready;              /* the gateway's WINDOWS have all come */
	bool live;               /* in sync: commits wait for it */
	bool resyncing;          /* the log's live changes are on their way */
	uint32_t resync_last;    /* commit id of the last resync frame */
	uint32_t next_commit_id;
	struct inflight q[GW_REMOTE_MAX_PENDING];
	size_t head, n;
};

struct gw_remote {
	struct gateway gw;
	const struct config *cfg;
	struct loop *loop;
	struct peers *peers;
	uint8_t digest[FRAME_DIGEST_LEN];
	struct loop_handler timer;
	struct pending pend[GW_REMOTE_MAX_PENDING];
	struct glink gl[CONFIG_MAX_PEERS];
	uint64_t carried[CONFIG_MAX_SERVICES]; /* per service: bits of cfg->peers */
	struct change *sub;                      /* one gateway's part of a commit */
	size_t sub_cap;
	struct change_log *log;                  /* for a returning gateway */
	uint64_t commits, failures, elements;
	struct latency latency;
	struct gw_remote_stats st;
	struct log_ratelimit rl;
	gw_remote_seed_fn *seed;
	void *seed_ctx;
	void (*unsure)(void *ctx, uint64_t now_ms, uint64_t hold_ms);
	void *unsure_ctx;
};

/* ---- completing commits --------------------------------------------------------- */

/* Changes went out whose landing is now unknown: gw_remote_on_unsure. */
static void unsure(struct gw_remote *r)
{
	if (r->unsure)
		r->unsure(r->unsure_ctx, log_now_ms(), FRAME_FUDGE_MS);
}

static void finish(struct gw_remote *r, struct pending *pd, int result)
{
	if (pd->finished)
		return;
	pd->finished = true;
	if (result) {
		/* its answers are SERVFAIL: nothing of it to resend at a resync */
		change_log_drop(r->log, pd->log_first, pd->log_n);
		r->failures++;
	} else {
		latency_record(&r->latency, latency_now_us() - pd->start_us);
	}
	pd->done(pd->ctx, result);
}

/* One acknowledgement (or its loss) of a frame of this commit. */
static void settle(struct gw_remote *r, struct pending *pd, int result)
{
	pd->waiting--;
	if (result)
		finish(r, pd, result);
	else if (pd->waiting == 0)
		finish(r, pd, 0);
	if (pd->waiting == 0 && pd->finished)
		pd->used = false;
}

static void arm_timer(struct gw_remote *r)
{
	uint64_t now = log_now_ms(), next = 0;
	struct itimerspec its = { 0 };

	for (size_t i = 0; i < GW_REMOTE_MAX_PENDING; i++) {
		const struct pending *pd = &r->pend[i];

		if (pd->used && !pd->finished && (!next || pd->deadline_ms < next))
			next = pd->deadline_ms;
	}
	for (size_t i = 0; i < r->cfg->n_peers; i++) {
		const struct glink *g = &r->gl[i];
		uint64_t due;

		if (!g->live || !g->n)
			continue;
		due = g->q[g->head].sent_ms + r->cfg->gateway_deadline;
		if (!next || due < next)
			next = due;
	}
	if (next) {
		uint64_t in = next > now ? next - now : 1;

		its.it_value.tv_sec = (time_t)(in / 1000);
		its.it_value.tv_nsec = (long)(in % 1000) * 1000000;
	}
	timerfd_settime(r->timer.fd, 0, &its, NULL);
}

/*
 * A gateway silent past gateway_deadline: down. No commit waits for it any
 * more (with on_gateway_down = exclude they complete without it; with
 * servfail they fail, and so do new ones until it is back); its ACKs of
 * what it was sent are taken when they come. It may still apply those
 * frames late (unsure). It counts again once it has caught up and been
 * sent the log's live changes (resync).
 */
static void declare_down(struct gw_remote *r, size_t i, uint64_t now)
{
	struct glink *g = &r->gl[i];
	int result = r->cfg->on_gateway_down == CONFIG_DOWN_EXCLUDE ? 0 : -EHOSTDOWN;

	g->live = false;
	r->st.downs++;
	if (log_ratelimit_ok(&r->rl, now))
		log_warn("gateway %s: no acknowledgement for %u ms: down (%s)",
			 r->cfg->peers[i].name, r->cfg->gateway_deadline,
			 result ? "answers for its services are SERVFAIL" :
			 "answers go on through the other gateways");
	for (size_t k = 0; k < g->n; k++) {
		struct inflight *f = &g->q[(g->head + k) % GW_REMOTE_MAX_PENDING];

		if (f->slot == NO_SLOT)
			continue;
		settle(r, &r->pend[f->slot], result);
		f->slot = NO_SLOT;
	}
	unsure(r);
}

static void on_timer(struct loop_handler *h, uint32_t events)
{
	struct gw_remote *r = container_of(h, struct gw_remote, timer);
	uint64_t expirations, now = log_now_ms();
	bool late = false;

	(void)events;
	if (read(h->fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		log_debug("gw_remote: timerfd read: %m");
	for (size_t i = 0; i < GW_REMOTE_MAX_PENDING; i++) {
		struct pending *pd = &r->pend[i];

		if (pd->used && !pd->finished && pd->deadline_ms <= now) {
			r->st.timeouts++;
			if (log_ratelimit_ok(&r->rl, now))
				log_warn("gateway commit: no acknowledgement within "
					 "commit_timeout %u ms: its answers are SERVFAIL",
					 r->cfg->commit_timeout);
			/* the slot stays until the ACK or the link's end */
			finish(r, pd, -ETIMEDOUT);
			late = true;
		}
	}
	for (size_t i = 0; i < r->cfg->n_peers; i++) {
		struct glink *g = &r->gl[i];

		if (g->live && g->n && now >= g->q[g->head].sent_ms + r->cfg->gateway_deadline)
			declare_down(r, i, now);
	}
	if (late)
		unsure(r);
	arm_timer(r);
}

/* ---- the peer links ------------------------------------------------------------- */

static int on_up(void *ctx, struct peer_link *l)
{
	struct gw_remote *r = ctx;
	struct glink *g = &r->gl[peer_link_index(l)];

	g->head = g->n = 0;
	g->next_commit_id = 0;
	g->ready = false;  /* until its windows are counted */
	g->live = g->resyncing = false; /* and it has been resynchronised */
	return 0;
}

struct resync {
	struct gw_remote *r;
	size_t peer;
	size_t n;
	int err;
};

/* One frame of the resync, what r->sub holds. */
static int send_resync_frame(struct gw_remote *r, size_t peer, size_t n)
{
	struct glink *g = &r->gl[peer];
	struct frame_changes_args a = { g->next_commit_id, r->digest, r->sub, n };
	int err;

	if (g->n == GW_REMOTE_MAX_PENDING)
		return -EBUSY;
	err = peer_send(peers_link(r->peers, peer), FRAME_CHANGES,
			FRAME_CHANGES_HEAD + n * CHANGE_WIRE_LEN, frame_changes_fill, &a);
	if (err)
		return err;
	g->q[(g->head + g->n) % GW_REMOTE_MAX_PENDING] = (struct inflight){
		g->next_commit_id, NO_SLOT, (uint16_t)n, log_now_ms() };
	g->resync_last = g->next_commit_id++;
	g->n++;
	r->st.resync_changes += n;
	return 0;
}

static void resync_one(void *ctx, const struct change *c)
{
	struct resync *rs = ctx;
	struct gw_remote *r = rs->r;

	if (rs->err || !(r->carried[c->service] >> rs->peer & 1))
		return;
	r->sub[rs->n++] = *c;
	if (rs->n == FRAME_MAX_CHANGES) {
		rs->err = send_resync_frame(r, rs->peer, rs->n);
		rs->n = 0;
	}
}

/*
 * A gateway back (its link up again, or caught up after a stall): the
 * windows and answers' entries still live that it may have missed, before
 * it counts as live again. Those sent while it resynchronises reach it
 * after these, on the same link.
 */
static void start_resync(struct gw_remote *r, size_t peer)
{
	struct glink *g = &r->gl[peer];
	struct resync rs = { r, peer, 0, 0 };
	size_t before = g->n;

	if (r->sub_cap < FRAME_MAX_CHANGES) {
		struct change *grown = realloc(r->sub, FRAME_MAX_CHANGES * sizeof(*grown));

		if (!grown) {
			peers_close(r->peers, peer); /* tried again at its return */
			return;
		}
		r->sub = grown;
		r->sub_cap = FRAME_MAX_CHANGES;
	}
	change_log_live(r->log, log_now_ms(), resync_one, &rs);
	if (!rs.err && rs.n)
		rs.err = send_resync_frame(r, peer, rs.n);
	if (rs.err) {
		log_warn("gateway %s: cannot resynchronise it: %s", r->cfg->peers[peer].name,
			 strerror(-rs.err));
		peers_close(r->peers, peer);
		return;
	}
	if (g->n == before) {
		g->live = true; /* nothing live to send */
		return;
	}
	g->resyncing = true;
}

/*
 * The windows a gateway holds, sent once after the handshake: the ones in
 * this node's slices were opened by its earlier run (a restart) and count
 * against its share until they expire. Commits wait for the last frame.
 */
static int on_windows(struct gw_remote *r, size_t peer, struct wire *w)
{
	struct glink *g = &r->gl[peer];
	struct frame_windows fw;
	struct change c;
	int ret;

	if (g->ready)
		return PEER_R_TYPE;
	ret = frame_windows_decode(w, r->cfg->n_services, &fw);
	if (ret)
		return ret == FRAME_ERR_SIZE ? PEER_R_SIZE : PEER_R_FIELD;
	/* another configuration: its service indexes mean other services
	 * (its commits are refused with ESTALE anyway) */
	if (crypto_equal(fw.digest, r->digest, sizeof(r->digest))) {
		while (frame_windows_next(&fw, &c)) {
			if (r->seed && r->seed(r->seed_ctx, &c) == 0)
				r->st.windows_counted++;
			else
				r->st.windows_others++;
		}
	}
	g->ready = !fw.more;
	if (g->ready)
		start_resync(r, peer);
	return 0;
}

static void on_down(void *ctx, struct peer_link *l, enum peer_reason why)
{
	struct gw_remote *r = ctx;
	struct glink *g = &r->gl[peer_link_index(l)];

	(void)why;
	if (g->n)
		unsure(r); /* the gateway may still read what it was sent */
	while (g->n) {
		struct inflight *f = &g->q[g->head];

		g->head = (g->head + 1) % GW_REMOTE_MAX_PENDING;
		g->n--;
		if (f->slot == NO_SLOT)
			continue;
		if (!r->pend[f->slot].finished)
			r->st.link_lost++;
		settle(r, &r->pend[f->slot], -ECONNRESET);
	}
	g->live = g->resyncing = false;
	arm_timer(r);
}

static int on_frame(void *ctx, struct peer_link *l, uint8_t type, struct wire *w)
{
	struct gw_remote *r = ctx;
	size_t peer = peer_link_index(l);
	struct glink *g = &r->gl[peer];
	struct frame_ack ack;
	struct inflight f;
	int ret;

	if (type == FRAME_WINDOWS)
		return on_windows(r, peer, w);
	if (type != FRAME_ACK)
		return PEER_R_TYPE;
	ret = frame_ack_decode(w, &ack);
	if (ret)
		return ret == FRAME_ERR_SIZE ? PEER_R_SIZE : PEER_R_FIELD;
	/* acknowledgements come in the order the frames went */
	if (!g->n || g->q[g->head].commit_id != ack.commit_id)
		return PEER_R_PROTOCOL;
	f = g->q[g->head];
	if (ack.result == 0 && ack.applied != f.count)
		return PEER_R_PROTOCOL;
	g->head = (g->head + 1) % GW_REMOTE_MAX_PENDING;
	g->n--;
	if (f.slot == NO_SLOT) {
		/* a resync frame, or one sent before the gateway went down; a
		 * gateway that refuses a resync frame (its set full, say) is
		 * live all the same: it answers, and refuses what it refuses
		 * as it would a commit (counted) */
		if (ack.result && g->resyncing) {
			r->st.resync_refused++;
			if (log_ratelimit_ok(&r->rl, log_now_ms()))
				log_warn("gateway %s refused a resync frame: %s",
					 r->cfg->peers[peer].name, strerror(-ack.result));
		}
		if (g->resyncing && ack.commit_id == g->resync_last) {
			g->resyncing = false;
			g->live = true;
			r->st.resyncs++;
			log_info("gateway %s resynchronised: live again",
				 r->cfg->peers[peer].name);
		} else if (!g->live && !g->resyncing && g->ready && !g->n) {
			start_resync(r, peer); /* caught up after a stall */
		}
		arm_timer(r);
		return 0;
	}
	if (ack.result) {
		uint64_t now = log_now_ms();

		r->st.refused++;
		if (ack.result == -ESTALE)
			r->st.stale++;
		if (log_ratelimit_ok(&r->rl, now))
			log_warn("gateway %s refused a commit: %s%s",
				 r->cfg->peers[peer].name, strerror(-ack.result),
				 ack.result == -ESTALE ? " (its [service] sections "
				 "differ from this node's: compare the digests with "
				 "choreod -t)" : "");
	}
	settle(r, &r->pend[f.slot], ack.result);
	arm_timer(r);
	return 0;
}

/* ---- committing ----------------------------------------------------------------- */

/* The changes of c[0..n) that gateway peer i carries, into r->sub. */
static size_t subset(struct gw_remote *r, size_t i, const struct change *c, size_t n)
{
	size_t k = 0;

	for (size_t j = 0; j < n; j++)
		if (c[j].service < r->cfg->n_services &&
		    (r->carried[c[j].service] >> i & 1))
			r->sub[k++] = c[j];
	return k;
}

/* on_gateway_down = exclude: each service of the commit has a gateway that
 * carries it and is live; -ENOTCONN when one has none. */
static int some_gateway_each(struct gw_remote *r, const struct change *c, size_t n)
{
	uint64_t ready = 0;

	for (size_t i = 0; i < r->cfg->n_peers; i++)
		if (gw_remote_ready(r, i))
			ready |= 1ull << i;
	for (size_t j = 0; j < n; j++) {
		if (!(r->carried[c[j].service] & ready)) {
			r->st.not_connected++;
			if (log_ratelimit_ok(&r->rl, log_now_ms()))
				log_warn("no gateway carrying [service %s] is connected: "
					 "its answers are SERVFAIL",
					 r->cfg->services[c[j].service].section);
			return -ENOTCONN;
		}
	}
	return 0;
}

static void remote_commit(struct gateway *gw, const struct change *c, size_t n,
			  gateway_done_fn done, void *ctx)
{
	struct gw_remote *r = container_of(gw, struct gw_remote, gw);
	const struct config *cfg = r->cfg;
	struct pending *pd = NULL;
	size_t slot = 0;
	int err = 0;

	if (n == 0) {
		done(ctx, 0);
		return;
	}
	r->commits++;
	/* a service this configuration does not have: the whole commit fails
	 * (as the local gateway's does), never some changes dropped */
	for (size_t j = 0; j < n; j++) {
		if (c[j].service >= cfg->n_services) {
			r->failures++;
			done(ctx, -EINVAL);
			return;
		}
	}
	for (slot = 0; slot < GW_REMOTE_MAX_PENDING && !pd; slot++)
		if (!r->pend[slot].used)
			pd = &r->pend[slot];
	slot--;
	if (!pd) {
		r->st.busy++;
		r->failures++;
		done(ctx, -EBUSY);
		return;
	}
	if (n > r->sub_cap) {
		struct change *grown = realloc(r->sub, n * sizeof(*grown));

		if (!grown) {
			r->failures++;
			done(ctx, -ENOMEM);
			return;
		}
		r->sub = grown;
		r->sub_cap = n;
	}
	/* every gateway needed must be live before anything is sent (with
	 * on_gateway_down = exclude: those live, at least one per service) */
	if (cfg->on_gateway_down == CONFIG_DOWN_EXCLUDE)
		err = some_gateway_each(r, c, n);
	for (size_t i = 0; i < cfg->n_peers && !err; i++) {
		size_t frames = (subset(r, i, c, n) + FRAME_MAX_CHANGES - 1) / FRAME_MAX_CHANGES;

		if (!frames)
			continue;
		if (!gw_remote_ready(r, i)) {
			if (cfg->on_gateway_down == CONFIG_DOWN_EXCLUDE)
				continue;
			err = -ENOTCONN;
			r->st.not_connected++;
			if (log_ratelimit_ok(&r->rl, log_now_ms()))
				log_warn("gateway %s is down: answers for its services "
					 "are SERVFAIL", cfg->peers[i].name);
		} else if (r->gl[i].n + frames > GW_REMOTE_MAX_PENDING) {
			err = -EBUSY;
			r->st.busy++;
		}
	}
	if (err) {
		r->failures++;
		done(ctx, err);
		return;
	}
	*pd = (struct pending){ .used = true, .done = done, .ctx = ctx,
		.deadline_ms = log_now_ms() + cfg->commit_timeout,
		.start_us = latency_now_us() };
	pd->log_first = change_log_add(r->log, c, n, log_now_ms());
	pd->log_n = n;
	for (size_t i = 0; i < cfg->n_peers && !err; i++) {
		struct peer_link *l = peers_link(r->peers, i);
		struct glink *g = &r->gl[i];
		bool wait = gw_remote_ready(r, i);
		/* a gateway resynchronising gets them too, after the resync
		 * frames on its link, but nothing waits for it yet */
		size_t k = wait || (g->resyncing && l) ? subset(r, i, c, n) : 0;

		for (size_t off = 0; off < k && !err; off += FRAME_MAX_CHANGES) {
			size_t part = k - off < FRAME_MAX_CHANGES ? k - off : FRAME_MAX_CHANGES;
			struct frame_changes_args a = { g->next_commit_id, r->digest,
						  r->sub + off, part };

			err = peer_send(l, FRAME_CHANGES, FRAME_CHANGES_HEAD +
					part * CHANGE_WIRE_LEN, frame_changes_fill, &a);
			if (err)
				break;
			g->q[(g->head + g->n) % GW_REMOTE_MAX_PENDING] = (struct inflight){
				g->next_commit_id++, wait ? (uint16_t)slot : NO_SLOT,
				(uint16_t)part, log_now_ms() };
			g->n++;
			pd->waiting += wait;
			r->st.frames++;
			r->elements += part;
		}
	}
	if (err) {
		finish(r, pd, err); /* what was sent is still acknowledged */
		if (pd->waiting)
			unsure(r);
	}
	if (pd->waiting == 0)
		pd->used = false;
	arm_timer(r);
}

static void remote_refresh(struct gateway *gw, gateway_done_fn done, void *ctx)
{
	(void)gw;
	done(ctx, 0); /* the counts are the gateways' own */
}

static void remote_snapshot(struct gateway *gw, struct gateway_snapshot *out)
{
	struct gw_remote *r = container_of(gw, struct gw_remote, gw);

	memset(out, 0, sizeof(*out));
	out->remote = true;
	out->commits = r->commits;
	out->failures = r->failures;
	out->elements = r->elements;
	latency_summarise(&r->latency, &out->latency);
	out->conntrack_count = out->conntrack_max = -1;
}

static int remote_list_bindings(struct gateway *gw, int fd)
{
	(void)gw;
	(void)fd;
	return -EOPNOTSUPP;
}

static void remote_tick(struct gateway *gw, uint64_t now_ms)
{
	struct gw_remote *r = container_of(gw, struct gw_remote, gw);

	peers_tick(r->peers, now_ms);
}

static const struct gateway_ops remote_ops = {
	.commit = remote_commit,
	.refresh = remote_refresh,
	.snapshot = remote_snapshot,
	.list_bindings = remote_list_bindings,
	.tick = remote_tick,
};

/* ---- setting up ----------------------------------------------------------------- */

/* The gateways that carry each service: its 'gateways', or every one. */
static void map_services(struct gw_remote *r)
{
	const struct config *cfg = r->cfg;
	uint64_t all = 0;

	for (size_t i = 0; i < cfg->n_peers; i++)
		if (cfg->peers[i].role == CONFIG_ROLE_GATEWAY)
			all |= 1ull << i;
	for (size_t s = 0; s < cfg->n_services; s++) {
		const char *p = cfg->services[s].gateways;

		if (!p) {
			r->carried[s] = all;
			continue;
		}
		/* "gw1, gw2": names checked against the [peer]s at load */
		while (*p) {
			size_t len = strcspn(p, ", \t");

			for (size_t i = 0; i < cfg->n_peers && len; i++)
				if (strlen(cfg->peers[i].name) == len &&
				    strncmp(cfg->peers[i].name, p, len) == 0)
					r->carried[s] |= 1ull << i;
			p += len;
			p += strspn(p, ", \t");
		}
	}
}

int gw_remote_new(const struct config *cfg, struct loop *loop,
		  gw_remote_seed_fn *seed, void *seed_ctx, struct gw_remote **out)
{
	struct gw_remote *r = calloc(1, sizeof(*r));
	struct peer_handlers h;
	int ret;

	*out = NULL;
	if (!r)
		return -ENOMEM;
	r->gw.ops = &remote_ops;
	r->timer.fd = -1;
	r->cfg = cfg;
	r->seed = seed;
	r->seed_ctx = seed_ctx;
	r->loop = loop;
	r->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(2, 10);
	ret = config_digest(cfg, r->digest);
	if (ret < 0)
		goto fail;
	r->log = change_log_new(GW_REMOTE_LOG);
	if (!r->log) {
		ret = -ENOMEM;
		goto fail;
	}
	map_services(r);
	r->timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	r->timer.fn = on_timer;
	if (r->timer.fd < 0 || loop_add(loop, &r->timer, EPOLLIN) < 0) {
		ret = -errno;
		log_err("gw_remote: timerfd: %m");
		goto fail;
	}
	h = (struct peer_handlers){ .ctx = r, .up = on_up, .frame = on_frame,
				    .down = on_down };
	ret = peers_new(cfg, loop, &h, &r->peers);
	if (ret < 0)
		goto fail;
	*out = r;
	return 0;
fail:
	gw_remote_free(r);
	return ret;
}

void gw_remote_free(struct gw_remote *r)
{
	if (!r)
		return;
	peers_free(r->peers);
	if (r->timer.fd >= 0) {
		loop_del(r->loop, &r->timer);
		close(r->timer.fd);
	}
	change_log_free(r->log);
	free(r->sub);
	free(r);
}

void gw_remote_on_unsure(struct gw_remote *r,
			 void (*fn)(void *ctx, uint64_t now_ms, uint64_t hold_ms),
			 void *ctx)
{
	r->unsure = fn;
	r->unsure_ctx = ctx;
}

struct gateway *gw_remote_gateway(struct gw_remote *r)
{
	return &r->gw;
}

struct peers *gw_remote_peers(struct gw_remote *r)
{
	return r->peers;
}

void gw_remote_get_stats(const struct gw_remote *r, struct gw_remote_stats *out)
{
	*out = r->st;
	out->resync_lost = change_log_lost(r->log);
	out->live = 0;
	for (size_t i = 0; i < r->cfg->n_peers; i++)
		out->live += gw_remote_ready(r, i);
}

bool gw_remote_ready(const struct gw_remote *r, size_t peer_index)
{
	return peer_index < r->cfg->n_peers && r->gl[peer_index].ready &&
	       r->gl[peer_index].live && peers_link(r->peers, peer_index);
}
