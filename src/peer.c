// SPDX-License-Identifier: MIT
#include "peer.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "crypto.h"
#include "frame.h"
#include "keyfile.h"
#include "log.h"
#include "loop.h"
#include "peer_impl.h"

static const char *const reason_names[PEER_R_COUNT] = {
	[PEER_R_MAGIC] = "bad_magic",
	[PEER_R_VERSION] = "bad_version",
	[PEER_R_KEY_ID] = "bad_key_id",
	[PEER_R_LENGTH] = "too_long",
	[PEER_R_TAG] = "bad_tag",
	[PEER_R_SEQ] = "bad_sequence",
	[PEER_R_TIME] = "bad_timestamp",
	[PEER_R_TYPE] = "unexpected_type",
	[PEER_R_SIZE] = "bad_size",
	[PEER_R_FIELD] = "bad_field",
	[PEER_R_PROOF] = "bad_proof",
	[PEER_R_HELLO] = "wrong_peer",
	[PEER_R_FROM] = "wrong_source",
	[PEER_R_HANDSHAKE_TIMEOUT] = "handshake_timeout",
	[PEER_R_IDLE] = "idle",
	[PEER_R_CLOSED] = "closed",
	[PEER_R_IO] = "io_error",
	[PEER_R_REPLACED] = "replaced",
	[PEER_R_STALE] = "stale_config",
	[PEER_R_PROTOCOL] = "protocol",
};

const char *peer_reason_name(enum peer_reason r)
{
	return r < PEER_R_COUNT ? reason_names[r] : "?";
}

static enum peer_reason reason_of(int err)
{
	switch (err) {
	case FRAME_ERR_MAGIC: return PEER_R_MAGIC;
	case FRAME_ERR_VERSION: return PEER_R_VERSION;
	case FRAME_ERR_KEY_ID: return PEER_R_KEY_ID;
	case FRAME_ERR_LENGTH: return PEER_R_LENGTH;
	case FRAME_ERR_TAG: return PEER_R_TAG;
	case FRAME_ERR_SEQ: return PEER_R_SEQ;
	case FRAME_ERR_TIME: return PEER_R_TIME;
	case FRAME_ERR_TYPE: return PEER_R_TYPE;
	case FRAME_ERR_SIZE: return PEER_R_SIZE;
	case FRAME_ERR_FIELD: return PEER_R_FIELD;
	case FRAME_ERR_PROOF: return PEER_R_PROOF;
	default: return PEER_R_IO;
	}
}

/* The frames' clock: wall time, which both ends keep in sync (NTP). */
static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *peer_name(const struct link *l)
{
	return l->peer >= 0 ? l->p->cfg->peers[l->peer].name : "?";
}

static const char *link_addr(const struct link *l, char buf[static ADDR_STRLEN])
{
	return addr_sockaddr_format((const struct sockaddr *)&l->addr, buf);
}

/* ---- output ------------------------------------------------------------------- */

static void watch(struct link *l, uint32_t events)
{
	if (events != l->events && loop_mod(l->p->loop, &l->h, events) == 0)
		l->events = events;
}

static void flush(struct link *l)
{
	while (l->out_off < l->out_len && !l->err) {
		ssize_t n = send(l->h.fd, l->out + l->out_off, l->out_len - l->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				l->err = errno;
			break;
		}
		l->out_off += (size_t)n;
	}
	if (l->out_off == l->out_len)
		l->out_off = l->out_len = 0;
	/* a failed send is dealt with from the loop, never from inside a
	 * caller that is in the middle of something (EPOLLOUT fires at once) */
	if (l->st != L_CONNECTING)
		watch(l, EPOLLIN | (l->out_len || l->err ? EPOLLOUT : 0));
}

/*
 * Build one frame at the end of the output: header, fill's payload, tag.
 * Nothing is queued when it fails. *at is the frame's offset in l->out
 * (valid until the next flush).
 */
static int append(struct link *l, uint8_t type, const uint8_t *key,
		  size_t max_payload, int (*fill)(void *ctx, struct wire_out *w),
		  void *ctx, size_t *at)
{
	size_t need = FRAME_OVERHEAD + max_payload, start;
	struct wire_out w;
	int ret;

	if (l->out_off) {
		memmove(l->out, l->out + l->out_off, l->out_len - l->out_off);
		l->out_len -= l->out_off;
		l->out_off = 0;
	}
	if (l->out_len + need > PEER_OUT_MAX)
		return -ENOBUFS;
	if (l->out_len + need > l->out_cap) {
		size_t cap = l->out_cap ? l->out_cap : 4096;
		uint8_t *grown;

		while (cap < l->out_len + need)
			cap *= 2;
		grown = realloc(l->out, cap);
		if (!grown)
			return -ENOMEM;
		l->out = grown;
		l->out_cap = cap;
	}
	w = wire_out_init(l->out + l->out_len, need);
	start = frame_begin(&w, type, l->key->psk.id, l->tx_seq, wall_ms());
	ret = fill ? fill(ctx, &w) : 0;
	if (!ret)
		ret = frame_end(&w, start, key);
	if (ret)
		return ret;
	if (at)
		*at = l->out_len;
	l->out_len += wire_out_len(&w);
	l->tx_seq++;
	l->frames_out++;
	return 0;
}

int peer_send(struct peer_link *pl, uint8_t type, size_t max_payload,
	      int (*fill)(void *ctx, struct wire_out *w), void *ctx)
{
	struct link *l = (struct link *)pl;
	int ret;

	if (l->h.fd < 0 || l->st != L_UP || l->err)
		return -ENOTCONN;
	ret = append(l, type, l->k_tx, max_payload, fill, ctx, NULL);
	if (ret == 0)
		flush(l);
	return ret;
}

/* ---- closing ------------------------------------------------------------------ */

/* The link to the controller has handlers of its own (node_ctl.c). */
static const struct peer_handlers *handlers_of(const struct link *l)
{
	const struct peers *p = l->p;

	if (l->peer >= 0 && p->cfg->peers[l->peer].role == CONFIG_ROLE_CONTROLLER)
		return &p->hd_ctl;
	return &p->hd;
}

void peers_set_controller_handlers(struct peers *p, const struct peer_handlers *h)
{
	p->hd_ctl = *h;
}

void peer_close(struct link *l, enum peer_reason why)
{
	struct peers *p = l->p;
	const struct peer_handlers *hd;
	bool was_up = l->st == L_UP;
	char a[ADDR_STRLEN];
	uint64_t now = log_now_ms();

	if (l->h.fd < 0)
		return;
	hd = handlers_of(l);
	loop_del(p->loop, &l->h);
	close(l->h.fd);
	l->h.fd = -1;
	p->ended[why]++;
	if (!l->client && !was_up)
		p->unauth--;
	if (l->peer >= 0) {
		struct peer_state *ps = &p->ps[l->peer];

		if (was_up) {
			ps->last_down = why;
			if (ps->up == l)
				ps->up = NULL;
		}
	}
	if (was_up) {
		if (log_ratelimit_ok(&p->rl_updown, now))
			log_warn("peer %s (%s): link down: %s", peer_name(l),
				 link_addr(l, a), peer_reason_name(why));
	} else if (why != PEER_R_CLOSED || !l->client) {
		if (log_ratelimit_ok(&p->rl_refuse, now))
			log_info("peer %s (%s): connection closed during the "
				 "handshake: %s", peer_name(l), link_addr(l, a),
				 peer_reason_name(why));
	}
	explicit_bzero(l->k_tx, sizeof(l->k_tx));
	explicit_bzero(l->k_rx, sizeof(l->k_rx));
	explicit_bzero(l->hello, sizeof(l->hello));
	explicit_bzero(l->transcript, sizeof(l->transcript));
	free(l->in);
	free(l->out);
	l->in = l->out = NULL;
	l->in_cap = l->in_len = l->out_cap = l->out_len = l->out_off = 0;
	l->st = L_FREE;
	if (was_up && hd->down)
		hd->down(hd->ctx, (struct peer_link *)l, why);
}

/* ---- the handshake ------------------------------------------------------------ */

struct hello_args {
	const uint8_t *nonce;
	const char *role, *name, *server;
};

static int fill_hello(void *ctx, struct wire_out *w)
{
	const struct hello_args *a = ctx;

	return frame_hello_encode(w, a->nonce, a->role, a->name, a->server);
}

static int fill_welcome(void *ctx, struct wire_out *w)
{
	const struct hello_args *a = ctx;

	return frame_welcome_encode(w, a->nonce, a->role, a->name);
}

static int fill_proof(void *ctx, struct wire_out *w)
{
	return frame_proof_encode(w, ctx);
}

static void link_up(struct link *l)
{
	struct peers *p = l->p;
	struct peer_state *ps = &p->ps[l->peer];

	if (ps->up && ps->up != (struct link *)l)
		peer_close(ps->up, PEER_R_REPLACED);
	if (!l->client)
		p->unauth--;
	l->st = L_UP;
	ps->up = l;
	ps->connects++;
	ps->backoff_ms = PEER_BACKOFF_MIN_MS;
	ps->last_errno = 0;
	l->up_since_ms = log_now_ms();
	explicit_bzero(l->hello, sizeof(l->hello));
	if (log_ratelimit_ok(&p->rl_updown, l->up_since_ms)) {
		char a[ADDR_STRLEN];

		log_info("peer %s (%s): link up, key %u", peer_name(l),
			 link_addr(l, a), l->key->psk.id);
	}
	if (handlers_of(l)->up) {
		int why = handlers_of(l)->up(handlers_of(l)->ctx, (struct peer_link *)l);

		if (why)
			peer_close(l, why);
	}
}

/* Server: a HELLO that passed checks 1-4. */
static int on_hello(struct link *l, const uint8_t *f, size_t total, struct wire *w)
{
	struct peers *p = l->p;
	const struct config_peer *cp;
	struct frame_hello hi;
	struct hello_args wa;
	size_t at;
	uint8_t c2s[FRAME_KEY_LEN], s2c[FRAME_KEY_LEN];
	bool listed = false;
	int ret = frame_hello_decode(w, &hi);

	if (ret)
		return reason_of(ret);
	cp = config_find_peer(p->cfg, hi.name);
	if (!cp || !config_role_connects(cp->role, p->cfg->role) ||
	    strcmp(hi.role, config_role_name(cp->role)) ||
	    strcmp(hi.server, p->cfg->name))
		return PEER_R_HELLO;
	l->peer = (int)(cp - p->cfg->peers);
	for (size_t i = 0; i < cp->n_key_ids; i++)
		listed |= cp->key_ids[i] == l->key->psk.id;
	if (!listed)
		return PEER_R_KEY_ID;
	if (cp->has_from && !addr_prefix_contains(&cp->from, l->family, l->addr_bytes))
		return PEER_R_FROM;
	memcpy(l->hello, f, total);
	l->hello_len = total;
	if (crypto_random(l->nonce, sizeof(l->nonce)) < 0)
		return PEER_R_IO;
	wa = (struct hello_args){ l->nonce, config_role_name(p->cfg->role),
				  p->cfg->name, NULL };
	if (append(l, FRAME_WELCOME, l->key->k_hello, FRAME_MAX_HANDSHAKE,
		   fill_welcome, &wa, &at) < 0 ||
	    frame_transcript(l->hello, l->hello_len, l->out + at,
			     l->out_len - at, l->transcript) < 0 ||
	    frame_session_keys(&l->key->psk, hi.nonce, l->nonce,
			       config_role_name(cp->role), cp->name,
			       config_role_name(p->cfg->role), p->cfg->name,
			       c2s, s2c) < 0) {
		explicit_bzero(c2s, sizeof(c2s));
		explicit_bzero(s2c, sizeof(s2c));
		return PEER_R_IO;
	}
	memcpy(l->k_rx, c2s, sizeof(c2s));
	memcpy(l->k_tx, s2c, sizeof(s2c));
	explicit_bzero(c2s, sizeof(c2s));
	explicit_bzero(s2c, sizeof(s2c));
	l->st = L_WAIT_CPROOF;
	flush(l);
	return 0;
}

/* Client: the gateway's WELCOME. */
static int on_welcome(struct link *l, const uint8_t *f, size_t total, struct wire *w)
{
	struct peers *p = l->p;
	const struct config_peer *cp = &p->cfg->peers[l->peer];
	struct frame_welcome wl;
	uint8_t c2s[FRAME_KEY_LEN], s2c[FRAME_KEY_LEN];
	int ret = frame_welcome_decode(w, &wl);

	if (ret)
		return reason_of(ret);
	if (strcmp(wl.name, cp->name) || strcmp(wl.role, config_role_name(cp->role)))
		return PEER_R_HELLO;
	if (frame_transcript(l->hello, l->hello_len, f, total, l->transcript) < 0 ||
	    frame_session_keys(&l->key->psk, l->nonce, wl.nonce,
			       config_role_name(p->cfg->role), p->cfg->name,
			       config_role_name(cp->role), cp->name,
			       c2s, s2c) < 0) {
		explicit_bzero(c2s, sizeof(c2s));
		explicit_bzero(s2c, sizeof(s2c));
		return PEER_R_IO;
	}
	memcpy(l->k_tx, c2s, sizeof(c2s));
	memcpy(l->k_rx, s2c, sizeof(s2c));
	explicit_bzero(c2s, sizeof(c2s));
	explicit_bzero(s2c, sizeof(s2c));
	if (append(l, FRAME_PROOF, l->k_tx, FRAME_PROOF_LEN, fill_proof,
		   l->transcript, NULL) < 0)
		return PEER_R_IO;
	l->st = L_WAIT_SPROOF;
	flush(l);
	return 0;
}

/* Either side: the other's PROOF. */
static int on_proof(struct link *l, struct wire *w)
{
	uint8_t digest[FRAME_DIGEST_LEN];
	int ret = frame_proof_decode(w, digest);

	if (ret)
		return reason_of(ret);
	if (frame_proof_check(digest, l->transcript) < 0)
		return PEER_R_PROOF;
	if (!l->client) {
		if (append(l, FRAME_PROOF, l->k_tx, FRAME_PROOF_LEN, fill_proof,
			   l->transcript, NULL) < 0)
			return PEER_R_IO;
		flush(l);
	}
	link_up(l);
	return 0;
}

/* ---- input -------------------------------------------------------------------- */

static int fill_token(void *ctx, struct wire_out *w)
{
	return frame_ping_encode(w, *(const uint64_t *)ctx);
}

static int on_data(struct link *l, uint8_t type, struct wire *w)
{
	struct peers *p = l->p;
	uint64_t token;
	int ret;

	switch (type) {
	case FRAME_PING:
		ret = frame_ping_decode(w, &token);
		if (ret)
			return reason_of(ret);
		return peer_send((struct peer_link *)l, FRAME_PONG, FRAME_PING_LEN,
				 fill_token, &token) < 0 ? PEER_R_IO : 0;
	case FRAME_PONG:
		ret = frame_ping_decode(w, &token);
		if (ret)
			return reason_of(ret);
		if (l->ping_out && crypto_equal(&token, &l->ping_token, sizeof(token))) {
			l->ping_out = false;
			p->ps[l->peer].rtt_ms = log_now_ms() - l->ping_sent_ms;
		}
		return 0; /* a PONG nobody asked for is ignored */
	case FRAME_HELLO: case FRAME_WELCOME: case FRAME_PROOF:
		return PEER_R_TYPE;
	default:
		return handlers_of(l)->frame ?
		       handlers_of(l)->frame(handlers_of(l)->ctx, (struct peer_link *)l,
					     type, w) : PEER_R_TYPE;
	}
}

/* Checks 2 to 5 on a whole frame, then its meaning. 0 or the reason to close. */
static int on_frame(struct link *l, const uint8_t *f, size_t total)
{
	const struct frame_header *h = &l->hdr;
	bool hello_phase = l->st == L_WAIT_HELLO || l->st == L_WAIT_WELCOME;
	struct wire w;
	int ret;

	ret = frame_verify_tag(f, FRAME_HEADER_LEN + h->len,
			       f + FRAME_HEADER_LEN + h->len,
			       hello_phase ? l->key->k_hello : l->k_rx);
	if (!ret)
		ret = frame_rx_accept(&l->rx, h, wall_ms());
	if (ret)
		return reason_of(ret);
	l->last_rx_ms = log_now_ms();
	l->frames_in++;
	w = wire_init(f + FRAME_HEADER_LEN, h->len);
	switch (l->st) {
	case L_WAIT_HELLO:
		return h->type == FRAME_HELLO ? on_hello(l, f, total, &w) : PEER_R_TYPE;
	case L_WAIT_WELCOME:
		return h->type == FRAME_WELCOME ? on_welcome(l, f, total, &w) : PEER_R_TYPE;
	case L_WAIT_CPROOF:
	case L_WAIT_SPROOF:
		return h->type == FRAME_PROOF ? on_proof(l, &w) : PEER_R_TYPE;
	case L_UP:
		return on_data(l, h->type, &w);
	default:
		return PEER_R_TYPE;
	}
}

const struct key *peer_find_key(const struct peers *p, uint16_t id)
{
	for (size_t i = 0; i < p->n_keys; i++)
		if (p->keys[i].psk.id == id)
			return &p->keys[i];
	return NULL;
}

/* Check 1 on a header: magic, version, length under the cap, key id. */
static int on_header(struct link *l, const uint8_t *buf)
{
	uint32_t cap = l->st == L_UP ? FRAME_MAX_PAYLOAD : FRAME_MAX_HANDSHAKE;
	int ret = frame_header_decode(buf, cap, &l->hdr);

	if (ret)
		return reason_of(ret);
	if (l->st == L_WAIT_HELLO) {
		/* the HELLO names the key: one this node holds (whether it is
		 * listed for the peer is checked with the HELLO's name) */
		l->key = peer_find_key(l->p, l->hdr.key_id);
		if (!l->key)
			return PEER_R_KEY_ID;
	} else if (l->hdr.key_id != l->key->psk.id) {
		return PEER_R_KEY_ID;
	}
	return 0;
}

/* Every whole frame in the input. 0, or -1 when the link was closed. */
static int process(struct link *l)
{
	size_t off = 0;

	while (l->h.fd >= 0) {
		size_t total;
		int r;

		if (!l->have_hdr) {
			if (l->in_len - off < FRAME_HEADER_LEN)
				break;
			r = on_header(l, l->in + off);
			if (r) {
				peer_close(l, r);
				return -1;
			}
			l->have_hdr = true;
		}
		total = FRAME_OVERHEAD + l->hdr.len;
		if (total > l->in_cap - off) {
			/* room for the whole frame: the cap was checked above */
			memmove(l->in, l->in + off, l->in_len - off);
			l->in_len -= off;
			off = 0;
			if (total > l->in_cap) {
				uint8_t *grown = realloc(l->in, total);

				if (!grown) {
					peer_close(l, PEER_R_IO);
					return -1;
				}
				l->in = grown;
				l->in_cap = total;
			}
		}
		if (l->in_len - off < total)
			break;
		l->have_hdr = false;
		r = on_frame(l, l->in + off, total);
		off += total;
		if (r) {
			peer_close(l, r);
			return -1;
		}
	}
	if (l->h.fd < 0)
		return -1;
	memmove(l->in, l->in + off, l->in_len - off);
	l->in_len -= off;
	return 0;
}

static void on_readable(struct link *l)
{
	size_t budget = READ_BUDGET;

	while (budget && l->h.fd >= 0) {
		ssize_t n = recv(l->h.fd, l->in + l->in_len, l->in_cap - l->in_len,
				 MSG_DONTWAIT);

		if (n == 0) {
			peer_close(l, PEER_R_CLOSED);
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				peer_close(l, errno == ECONNRESET ? PEER_R_CLOSED : PEER_R_IO);
			return;
		}
		l->in_len += (size_t)n;
		budget = (size_t)n >= budget ? 0 : budget - (size_t)n;
		if (process(l) < 0)
			return;
	}
}

/* ---- a connect done: the HELLO; every event of a link ---------------------------- */

static void start_hello(struct link *l)
{
	struct peers *p = l->p;
	const struct config_peer *cp = &p->cfg->peers[l->peer];
	struct hello_args ha = { l->nonce, config_role_name(p->cfg->role),
				 p->cfg->name, cp->name };
	size_t at;
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(l->h.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		p->ps[l->peer].last_errno = err;
		peer_close(l, PEER_R_IO);
		return;
	}
	if (crypto_random(l->nonce, sizeof(l->nonce)) < 0 ||
	    append(l, FRAME_HELLO, l->key->k_hello, FRAME_MAX_HANDSHAKE,
		   fill_hello, &ha, &at) < 0) {
		peer_close(l, PEER_R_IO);
		return;
	}
	memcpy(l->hello, l->out + at, l->out_len - at);
	l->hello_len = l->out_len - at;
	l->st = L_WAIT_WELCOME;
	flush(l);
}

static void on_link_event(struct loop_handler *h, uint32_t events)
{
	struct link *l = container_of(h, struct link, h);

	if (h->fd < 0)
		return;
	if (l->st == L_CONNECTING) {
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			start_hello(l);
		return;
	}
	if (l->err) {
		peer_close(l, l->err == EPIPE || l->err == ECONNRESET ?
			   PEER_R_CLOSED : PEER_R_IO);
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		on_readable(l);
	if (h->fd >= 0 && (events & EPOLLOUT))
		flush(l);
}

/* Set a free slot up for a new connection on fd. */
int peer_link_init(struct peers *p, struct link *l, int fd, bool client,
		   int peer, const struct sockaddr *sa, socklen_t sa_len)
{
	uint8_t *in = malloc(IN_START);
	int one = 1, ret;

	if (!in)
		return -ENOMEM;
	memset(l, 0, sizeof(*l));
	l->p = p;
	l->in = in;
	l->in_cap = IN_START;
	l->client = client;
	l->peer = peer;
	memcpy(&l->addr, sa, sa_len < sizeof(l->addr) ? sa_len : sizeof(l->addr));
	addr_from_sockaddr(sa, &l->family, l->addr_bytes);
	l->deadline_ms = log_now_ms() + PEER_HANDSHAKE_MS;
	l->h.fd = fd;
	l->h.fn = on_link_event;
	l->st = client ? L_CONNECTING : L_WAIT_HELLO;
	l->events = client ? EPOLLOUT : EPOLLIN;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	ret = loop_add(p->loop, &l->h, l->events);
	if (ret < 0) {
		free(in);
		l->in = NULL;
		l->h.fd = -1;
		l->st = L_FREE;
	}
	return ret;
}

/* ---- the whole ---------------------------------------------------------------- */

static int load_keys(struct peers *p)
{
	const struct config *cfg = p->cfg;

	for (size_t i = 0; i < cfg->n_keys && i < CONFIG_MAX_KEYS; i++) {
		struct key *k = &p->keys[p->n_keys];
		char *msg = NULL;
		int ret = keyfile_load(cfg->keys[i].file, (uint16_t)cfg->keys[i].id,
				       &k->psk, &msg);

		if (ret < 0) {
			log_err("[key %u]: %s", cfg->keys[i].id,
				msg ? msg : "out of memory");
			free(msg);
			return ret;
		}
		p->n_keys++;
		ret = frame_hello_key(&k->psk, k->k_hello);
		if (ret < 0) {
			log_err("[key %u]: cannot derive its keys: %s",
				cfg->keys[i].id, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

int peers_new(const struct config *cfg, struct loop *loop,
	      const struct peer_handlers *h, struct peers **out)
{
	struct peers *p = calloc(1, sizeof(*p));
	bool listens = false;
	size_t n_in = 0, n_from = 0;
	int ret;

	*out = NULL;
	if (!p)
		return -ENOMEM;
	p->cfg = cfg;
	p->loop = loop;
	p->hd = *h;
	p->listener.fd = -1;
	p->rl_refuse = (struct log_ratelimit)LOG_RATELIMIT_INIT(5, 20);
	p->rl_updown = (struct log_ratelimit)LOG_RATELIMIT_INIT(5, 50);
	for (size_t i = 0; i < cfg->n_peers; i++)
		listens |= config_role_connects(cfg->peers[i].role, cfg->role);
	/* a slot per peer for the connects, then the accepted links' */
	p->n_links = cfg->n_peers + (listens ? PEER_MAX_UNAUTH + cfg->n_peers : 0);
	p->links = calloc(p->n_links ? p->n_links : 1, sizeof(*p->links));
	if (!p->links) {
		free(p);
		return -ENOMEM;
	}
	for (size_t i = 0; i < p->n_links; i++)
		p->links[i].h.fd = -1;
	for (size_t i = 0; i < cfg->n_peers; i++) {
		p->ps[i].last_down = PEER_R_COUNT;
		p->ps[i].backoff_ms = PEER_BACKOFF_MIN_MS;
		p->ps[i].client = &p->links[i];
		if (config_role_connects(cfg->peers[i].role, cfg->role)) {
			n_in++;
			n_from += cfg->peers[i].has_from;
		}
	}
	p->from_only = n_in && n_from == n_in;
	ret = load_keys(p);
	if (!ret && listens)
		ret = peer_listen(p);
	if (ret < 0) {
		peers_free(p);
		return ret;
	}
	peers_tick(p, log_now_ms());
	*out = p;
	return 0;
}

void peers_free(struct peers *p)
{
	if (!p)
		return;
	p->hd.down = p->hd_ctl.down = NULL;
	for (size_t i = 0; i < p->n_links; i++)
		peer_close(&p->links[i], PEER_R_CLOSED);
	if (p->listener.fd >= 0) {
		loop_del(p->loop, &p->listener);
		close(p->listener.fd);
	}
	for (size_t i = 0; i < p->n_keys; i++)
		psk_wipe(&p->keys[i].psk);
	explicit_bzero(p->keys, sizeof(p->keys));
	free(p->links);
	free(p);
}

static void keepalive(struct link *l, uint64_t now)
{
	if (now - l->last_rx_ms >= PEER_IDLE_MS) {
		peer_close(l, PEER_R_IDLE);
		return;
	}
	if (now - l->last_rx_ms >= PEER_PING_MS &&
	    (!l->ping_out || now - l->ping_sent_ms >= PEER_PING_MS)) {
		if (crypto_random(&l->ping_token, sizeof(l->ping_token)) < 0)
			return;
		if (peer_send((struct peer_link *)l, FRAME_PING, FRAME_PING_LEN,
			      fill_token, &l->ping_token) == 0) {
			l->ping_out = true;
			l->ping_sent_ms = now;
		}
	}
}

void peers_tick(struct peers *p, uint64_t now)
{
	for (size_t i = 0; i < p->n_links; i++) {
		struct link *l = &p->links[i];

		if (l->h.fd < 0)
			continue;
		if (l->st == L_UP)
			keepalive(l, now);
		else if (now >= l->deadline_ms)
			peer_close(l, PEER_R_HANDSHAKE_TIMEOUT);
	}
	for (size_t i = 0; i < p->cfg->n_peers; i++)
		if (config_role_connects(p->cfg->role, p->cfg->peers[i].role) &&
		    p->ps[i].client->h.fd < 0 && now >= p->ps[i].next_try_ms)
			peer_connect(p, i, now);
}

struct peer_link *peers_link(struct peers *p, size_t peer_index)
{
	if (peer_index >= p->cfg->n_peers)
		return NULL;
	return (struct peer_link *)p->ps[peer_index].up;
}

void peers_close(struct peers *p, size_t peer_index)
{
	if (peer_index < p->cfg->n_peers && p->ps[peer_index].up)
		peer_close(p->ps[peer_index].up, PEER_R_PROTOCOL);
}

void peer_flush(struct peer_link *pl)
{
	flush((struct link *)pl);
}

size_t peer_link_index(const struct peer_link *pl)
{
	return (size_t)((const struct link *)pl)->peer;
}

void peers_get_stats(const struct peers *p, uint64_t now, struct peers_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->accepted = p->accepted;
	out->refused_full = p->refused_full;
	out->refused_source = p->refused_source;
	out->refused_from = p->refused_from;
	memcpy(out->ended, p->ended, sizeof(out->ended));
	out->unauth = p->unauth;
	out->n_links = p->cfg->n_peers;
	for (size_t i = 0; i < p->cfg->n_peers; i++) {
		const struct peer_state *ps = &p->ps[i];
		const struct link *l = ps->up;
		struct peer_link_stats *s = &out->link[i];

		s->name = p->cfg->peers[i].name;
		s->connects = ps->connects;
		s->last_down = ps->last_down;
		s->last_errno = ps->last_errno;
		s->rtt_ms = ps->rtt_ms;
		s->up = l != NULL;
		if (l) {
			s->state = "up";
			s->up_ms = now - l->up_since_ms;
			s->frames_in = l->frames_in;
			s->frames_out = l->frames_out;
			s->queued = l->out_len - l->out_off;
		} else if (config_role_connects(p->cfg->role, p->cfg->peers[i].role) &&
			   ps->client->h.fd >= 0) {
			s->state = ps->client->st == L_CONNECTING ? "connecting" : "handshake";
		} else {
			s->state = "down";
		}
	}
}
