// SPDX-License-Identifier: MIT
#include "dnsserver.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "config.h"
#include "dns.h"
#include "gateway.h"
#include "latency.h"
#include "log.h"
#include "loop.h"
#include "tcp_limits.h"

#define UDP_BUF      4096 /* largest query read, largest answer sent */
#define UDP_ROUNDS   8    /* batches per readiness event, then let others run */
#define TCP_BACKLOG  128
#define UDP_RCVBUF   (4 << 20) /* bytes */

struct dnsserver;
struct tcp_conn;

struct udp_sock {
	struct loop_handler h;
	struct dnsserver *s;
};

struct tcp_listener {
	struct loop_handler h;
	struct dnsserver *s;
};

/* An answer held for its commit. */
struct held {
	size_t off;               /* of its bytes (res.len of them) */
	struct dns_result res;    /* length and layout, for SERVFAIL */
	struct sockaddr_storage peer;  /* UDP */
	socklen_t peer_len;
};

/*
 * A commit outstanding. While gateway_commit() runs, the batch's answers
 * are still in the server's buffers (sync); if the commit has not completed
 * when it returns, the answers are copied here (heap) and sent from the
 * callback.
 */
struct pending {
	struct dnsserver *s;
	bool used, sync, done;
	int result;
	uint64_t start_us;
	int fd;                   /* UDP: the socket to answer on */
	struct held *held;        /* UDP, async: the copies */
	uint8_t *bytes;
	size_t n_held;
	struct tcp_conn *conn;    /* TCP: NULL once the connection is gone */
};

struct tcp_conn {
	struct loop_handler h;   /* h.fd < 0: slot free */
	struct dnsserver *s;
	struct sockaddr_storage peer;
	uint8_t src[TCP_SRC_KEY]; /* counted against tcp_per_source */
	bool reading;            /* EPOLLIN: choreod waits for the client */
	bool in_full;            /* the last read filled the input buffer */
	struct tcp_clock t;      /* its deadlines (msg_ms: or reading resumed) */
	uint8_t *in;             /* grows to the message read, <= TCP_IN_MAX */
	size_t in_len, in_cap;
	uint8_t *out;            /* answers ready to send, length-prefixed */
	size_t out_len, out_off, out_cap;
	uint8_t *stage;          /* the answers of the last read */
	size_t stage_len, stage_cap;
	struct held *staged;
	size_t n_staged, staged_cap;
	struct pending *pending; /* their commit, while outstanding */
};

struct dnsserver {
	const struct config *cfg;
	struct dns_ctx *dns;
	struct gateway *gw;
	struct loop *loop;
	struct dnsserver_stats stats;
	struct latency answer_latency; /* batch received -> answers sent */
	struct log_ratelimit rl_send, rl_commit;

	struct udp_sock udp[CONFIG_MAX_LISTEN];
	struct tcp_listener tcp[CONFIG_MAX_LISTEN];
	size_t n_listen;

	struct tcp_conn *conns;
	size_t n_conns;
	struct tcp_sources sources; /* connections per source */

	struct pending pend[DNSSERVER_MAX_PENDING];

	/* UDP batch buffers */
	struct mmsghdr in_msg[DNSSERVER_UDP_BATCH], out_msg[DNSSERVER_UDP_BATCH];
	struct iovec in_iov[DNSSERVER_UDP_BATCH], out_iov[DNSSERVER_UDP_BATCH];
	struct sockaddr_storage peers[DNSSERVER_UDP_BATCH];
	struct dns_result res[DNSSERVER_UDP_BATCH];
	uint8_t in_buf[DNSSERVER_UDP_BATCH][UDP_BUF];
	uint8_t out_buf[DNSSERVER_UDP_BATCH][UDP_BUF];
	struct change changes[DNSSERVER_UDP_BATCH * ROTOR_MAX_CHANGES];
	/* TCP: one answer being made, and the changes of one read */
	uint8_t tcp_resp[DNS_TCP_MAX];
	struct change *tcp_changes;
	size_t tcp_changes_cap;
};

static void tcp_completed(struct tcp_conn *c, int result);

/* ---- commits --------------------------------------------------------------------- */

static struct pending *pending_get(struct dnsserver *s)
{
	for (size_t i = 0; i < DNSSERVER_MAX_PENDING; i++) {
		struct pending *p = &s->pend[i];

		if (!p->used) {
			*p = (struct pending){ .s = s, .used = true, .sync = true,
					       .fd = -1, .start_us = latency_now_us() };
			s->stats.commits_pending++;
			return p;
		}
	}
	return NULL;
}

static void pending_put(struct pending *p)
{
	free(p->held);
	free(p->bytes);
	p->s->stats.commits_pending--;
	*p = (struct pending){ .s = p->s };
}

static void commit_failed(struct dnsserver *s, int ret)
{
	s->stats.commit_failures++;
	if (log_ratelimit_ok(&s->rl_commit, log_now_ms()))
		log_err("NAT commit failed (%s): answering SERVFAIL "
			"(%llu such failures so far)", strerror(-ret),
			(unsigned long long)s->stats.commit_failures);
}

/* Send n prepared messages of s->out_msg on fd; drop what cannot go. */
static void udp_send(struct dnsserver *s, int fd, size_t n)
{
	for (size_t done = 0; done < n;) {
		int sent = sendmmsg(fd, s->out_msg + done, (unsigned)(n - done), 0);

		if (sent < 0) {
			if (errno == EINTR)
				continue;
			/* drop this one (e.g. unreachable peer), go on with the rest */
			s->stats.udp_send_errors++;
			if (log_ratelimit_ok(&s->rl_send, log_now_ms()))
				log_warn("sendmmsg: %m");
			done++;
			continue;
		}
		s->stats.udp_sent += (uint64_t)sent;
		done += (size_t)sent;
	}
}

static void out_msg_set(struct dnsserver *s, size_t k, const void *peer,
			socklen_t peer_len, void *msg, size_t len)
{
	s->out_iov[k] = (struct iovec){ msg, len };
	s->out_msg[k].msg_hdr = (struct msghdr){
		.msg_name = (void *)peer, .msg_namelen = peer_len,
		.msg_iov = &s->out_iov[k], .msg_iovlen = 1,
	};
}

/* Async UDP completion: send the held copies (SERVFAIL if it failed). */
static void udp_completed(struct pending *p)
{
	struct dnsserver *s = p->s;
	size_t k = 0;

	for (size_t i = 0; i < p->n_held; i++) {
		struct held *h = &p->held[i];
		uint8_t *msg = p->bytes + h->off;

		if (p->result)
			dns_make_servfail(s->dns, msg, &h->res);
		out_msg_set(s, k++, &h->peer, h->peer_len, msg, h->res.len);
		if (k == DNSSERVER_UDP_BATCH) {
			udp_send(s, p->fd, k);
			k = 0;
		}
	}
	udp_send(s, p->fd, k);
	latency_record(&s->answer_latency, latency_now_us() - p->start_us);
}

static void on_commit(void *ctx, int result)
{
	struct pending *p = ctx;
	struct tcp_conn *c = p->conn;

	p->done = true;
	p->result = result;
	if (result)
		commit_failed(p->s, result);
	if (p->sync)
		return; /* the caller of gateway_commit() goes on from here */
	if (c) {
		c->pending = NULL;
		pending_put(p);
		tcp_completed(c, result);
		return;
	}
	if (p->fd >= 0)
		udp_completed(p);
	pending_put(p);
}

/* ---- UDP ------------------------------------------------------------------------ */

/* The commit is outstanding: copy the batch's held answers to the heap. */
static int udp_hold(struct dnsserver *s, struct pending *p, size_t n)
{
	size_t bytes = 0, k = 0;

	for (size_t i = 0; i < n; i++)
		if (s->res[i].n_changes)
			bytes += s->res[i].len, k++;
	p->held = calloc(k, sizeof(*p->held));
	p->bytes = malloc(bytes ? bytes : 1);
	if (!p->held || !p->bytes)
		return -ENOMEM;
	bytes = 0;
	for (size_t i = 0; i < n; i++) {
		struct held *h;

		if (!s->res[i].n_changes)
			continue;
		h = &p->held[p->n_held++];
		h->off = bytes;
		h->res = s->res[i];
		h->peer = s->peers[i];
		h->peer_len = s->in_msg[i].msg_hdr.msg_namelen;
		memcpy(p->bytes + bytes, s->out_buf[i], s->res[i].len);
		bytes += s->res[i].len;
	}
	return 0;
}

static void udp_batch(struct dnsserver *s, int fd)
{
	uint64_t now = log_now_ms(), start;
	size_t n_out = 0, nc = 0, n_held = 0;
	struct pending *p;
	int n;

	for (int i = 0; i < DNSSERVER_UDP_BATCH; i++) {
		s->in_iov[i] = (struct iovec){ s->in_buf[i], UDP_BUF };
		s->in_msg[i].msg_hdr = (struct msghdr){
			.msg_name = &s->peers[i], .msg_namelen = sizeof(s->peers[i]),
			.msg_iov = &s->in_iov[i], .msg_iovlen = 1,
		};
	}
	n = recvmmsg(fd, s->in_msg, DNSSERVER_UDP_BATCH, MSG_DONTWAIT, NULL);
	if (n <= 0)
		return;
	start = latency_now_us();
	s->stats.udp_batches++;
	s->stats.udp_received += (uint64_t)n;
	for (int i = 0; i < n; i++) {
		struct dns_result *r = &s->res[i];

		if (s->in_msg[i].msg_hdr.msg_flags & MSG_TRUNC) {
			r->len = 0; /* a query this large is not DNS we serve */
			r->n_changes = 0;
			continue;
		}
		dns_answer(s->dns, s->in_buf[i], s->in_msg[i].msg_len,
			   (struct sockaddr *)&s->peers[i], false, now,
			   s->out_buf[i], UDP_BUF, r);
		if (!r->len) {
			r->n_changes = 0;
		} else if (r->n_changes) {
			memcpy(&s->changes[nc], r->changes,
			       r->n_changes * sizeof(r->changes[0]));
			nc += r->n_changes;
			n_held++;
		} else {
			/* needs nothing from the gateway: it leaves now */
			out_msg_set(s, n_out++, &s->peers[i],
				    s->in_msg[i].msg_hdr.msg_namelen,
				    s->out_buf[i], r->len);
		}
	}
	udp_send(s, fd, n_out);
	if (!n_held) {
		latency_record(&s->answer_latency, latency_now_us() - start);
		return;
	}

	p = pending_get(s);
	if (p) {
		p->fd = fd;
		p->start_us = start;
		s->stats.commits++;
		gateway_commit(s->gw, s->changes, nc, on_commit, p);
		if (!p->done) {
			p->sync = false;
			if (udp_hold(s, p, (size_t)n) < 0) {
				/* no memory to hold them: these askers retry */
				p->fd = -1;
				p->n_held = 0;
			}
			return;
		}
	} else {
		s->stats.commit_overload += n_held;
	}
	/* completed (or never started): the held answers leave now */
	n_out = 0;
	for (int i = 0; i < n; i++) {
		struct dns_result *r = &s->res[i];

		if (!r->n_changes)
			continue;
		if (!p || p->result)
			dns_make_servfail(s->dns, s->out_buf[i], r);
		out_msg_set(s, n_out++, &s->peers[i], s->in_msg[i].msg_hdr.msg_namelen,
			    s->out_buf[i], r->len);
	}
	udp_send(s, fd, n_out);
	if (p)
		pending_put(p);
	latency_record(&s->answer_latency, latency_now_us() - start);
}

static void on_udp(struct loop_handler *h, uint32_t events)
{
	struct udp_sock *u = container_of(h, struct udp_sock, h);

	(void)events;
	for (int r = 0; r < UDP_ROUNDS; r++) {
		uint64_t before = u->s->stats.udp_received;

		udp_batch(u->s, h->fd);
		if (u->s->stats.udp_received - before < DNSSERVER_UDP_BATCH)
			break;
	}
}

/* ---- TCP ------------------------------------------------------------------------ */

#define TCP_IN_MIN 1024  /* the first input buffer; it grows as needed */
#define TCP_BUF_KEEP 4096  /* larger buffers are freed once empty */

static size_t tcp_unsent(const struct tcp_conn *c)
{
	return c->out_len - c->out_off;
}

/* The first message of the input buffer is whole. */
static bool tcp_whole(const struct tcp_conn *c)
{
	return c->in_len >= 2 &&
	       c->in_len >= 2 + ((size_t)c->in[0] << 8 | c->in[1]);
}

static void tcp_close(struct tcp_conn *c)
{
	if (c->h.fd < 0)
		return;
	if (c->pending)
		c->pending->conn = NULL; /* its answers have nowhere to go */
	c->pending = NULL;
	loop_del(c->s->loop, &c->h);
	close(c->h.fd);
	c->h.fd = -1;
	tcp_sources_del(&c->s->sources, c->src);
	free(c->in);
	free(c->out);
	free(c->stage);
	free(c->staged);
	*c = (struct tcp_conn){ .h = { .fd = -1 }, .s = c->s };
	c->s->stats.tcp_open--;
}

/* Try to send what is ready; 0 when all is sent, 1 when some is left,
 * -1 when the connection died. */
static int tcp_flush(struct tcp_conn *c, uint64_t now)
{
	while (c->out_off < c->out_len) {
		ssize_t w = send(c->h.fd, c->out + c->out_off,
				 c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 1;
			return -1;
		}
		c->out_off += (size_t)w;
		c->t.out_ms = now; /* the client takes its answers */
	}
	if (c->out_len)
		c->t.last_ms = now;
	c->out_off = c->out_len = 0;
	if (c->out_cap > TCP_BUF_KEEP) {
		free(c->out);
		c->out = NULL;
		c->out_cap = 0;
	}
	return 0;
}

/* buf with room for need elements of elem bytes (reallocated, *cap
 * updated), or NULL when memory is short (buf and *cap unchanged). */
static void *grown(void *buf, size_t *cap, size_t need, size_t elem)
{
	size_t n = *cap ? *cap : 16;
	void *p;

	if (need <= *cap)
		return buf;
	while (n < need)
		n *= 2;
	p = realloc(buf, n * elem);
	if (p)
		*cap = n;
	return p;
}

/* Keep one answer of this read until its commit is done. */
static int tcp_stage(struct tcp_conn *c, const uint8_t *msg, const struct dns_result *res)
{
	struct held *staged = grown(c->staged, &c->staged_cap, c->n_staged + 1,
				    sizeof(*staged));
	uint8_t *stage;

	if (!staged)
		return -ENOMEM;
	c->staged = staged;
	stage = grown(c->stage, &c->stage_cap, c->stage_len + res->len, 1);
	if (!stage)
		return -ENOMEM;
	c->stage = stage;
	c->staged[c->n_staged] = (struct held){ .off = c->stage_len, .res = *res };
	memcpy(c->stage + c->stage_len, msg, res->len);
	c->stage_len += res->len;
	c->n_staged++;
	return 0;
}

/* The commit of the staged answers is done (result) or was never needed:
 * queue them, in order, SERVFAIL where they needed a failed commit. */
static int tcp_release(struct tcp_conn *c, int result, uint64_t now)
{
	int ret = 0;

	if (c->n_staged && !tcp_unsent(c))
		c->t.out_ms = now; /* the client's time to take them starts */
	for (size_t i = 0; i < c->n_staged && !ret; i++) {
		struct held *h = &c->staged[i];
		uint8_t *msg = c->stage + h->off;

		if (result && h->res.n_changes)
			dns_make_servfail(c->s->dns, msg, &h->res);
		uint8_t *out = grown(c->out, &c->out_cap, c->out_len + 2 + h->res.len, 1);

		if (!out) {
			ret = -ENOMEM;
			break;
		}
		c->out = out;
		c->out[c->out_len] = (uint8_t)(h->res.len >> 8);
		c->out[c->out_len + 1] = (uint8_t)h->res.len;
		memcpy(c->out + c->out_len + 2, msg, h->res.len);
		c->out_len += 2 + h->res.len;
	}
	c->n_staged = c->stage_len = 0;
	if (c->stage_cap > TCP_BUF_KEEP) {
		free(c->stage);
		c->stage = NULL;
		c->stage_cap = 0;
	}
	return ret;
}

/* Answer the whole messages at the start of the input buffer, as one
 * commit, until the answers queued reach tcp_output: the rest wait in the
 * buffer until the client has taken them. */
static int tcp_process(struct tcp_conn *c, uint64_t now)
{
	struct dnsserver *s = c->s;
	size_t off = 0, nc = 0;
	struct pending *p;
	int result = 0;

	while (c->in_len - off >= 2) {
		size_t mlen = (size_t)c->in[off] << 8 | c->in[off + 1];
		struct dns_result res;

		if (mlen < TCP_MSG_MIN)
			return -EBADMSG; /* no DNS header: nothing to answer */
		if (c->in_len - off < 2 + mlen)
			break;
		if (tcp_unsent(c) + c->stage_len + 2 * c->n_staged > s->cfg->tcp_output) {
			s->stats.tcp_paused++;
			break;
		}
		s->stats.tcp_queries++;
		dns_answer(s->dns, c->in + off + 2, mlen,
			   (struct sockaddr *)&c->peer, true, now,
			   s->tcp_resp, DNS_TCP_MAX, &res);
		off += 2 + mlen;
		if (!res.len)
			continue;
		if (res.n_changes) {
			struct change *ch = grown(s->tcp_changes, &s->tcp_changes_cap,
						  nc + res.n_changes, sizeof(*ch));

			if (!ch)
				return -ENOMEM;
			s->tcp_changes = ch;
			memcpy(&s->tcp_changes[nc], res.changes,
			       res.n_changes * sizeof(res.changes[0]));
			nc += res.n_changes;
		}
		if (tcp_stage(c, s->tcp_resp, &res) < 0)
			return -ENOMEM;
	}
	if (off) {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
		c->t.last_ms = now;
	}
	if (nc == 0)
		return tcp_release(c, 0, now);
	p = pending_get(s);
	if (!p) {
		s->stats.commit_overload++;
		return tcp_release(c, -EBUSY, now);
	}
	p->conn = c;
	c->pending = p;
	s->stats.commits++;
	gateway_commit(s->gw, s->tcp_changes, nc, on_commit, p);
	if (!p->done) {
		p->sync = false;
		return 0; /* tcp_completed() goes on when it completes */
	}
	c->pending = NULL;
	result = p->result;
	pending_put(p);
	return tcp_release(c, result, now);
}

/* Send what is ready; answer the messages that waited for it; read again
 * once nothing is waiting, neither a commit nor the client. While answers
 * are unsent choreod does not read: the client must read first. */
static void tcp_resume(struct tcp_conn *c, uint64_t now)
{
	int left = tcp_flush(c, now);
	uint32_t ev;

	if (left == 0 && !c->pending && tcp_whole(c)) {
		if (tcp_process(c, now) < 0) {
			tcp_close(c);
			return;
		}
		left = tcp_flush(c, now);
	}
	if (left < 0) {
		tcp_close(c);
		return;
	}
	if (c->pending)
		ev = left ? EPOLLOUT : 0;
	else if (left || tcp_whole(c))
		ev = EPOLLOUT; /* more to answer: when the socket takes more */
	else
		ev = EPOLLIN;
	/* the time choreod did not read is not the client's */
	if (ev == EPOLLIN && !c->reading)
		c->t.msg_ms = now;
	c->reading = ev == EPOLLIN;
	loop_mod(c->s->loop, &c->h, ev);
}

/* The commit of this connection's last read completed (async). */
static void tcp_completed(struct tcp_conn *c, int result)
{
	uint64_t now = log_now_ms();

	if (tcp_release(c, result, now) < 0) {
		tcp_close(c);
		return;
	}
	tcp_resume(c, now);
}

/* Read what the buffer has room for; the buffer grows to the message
 * being read, and doubles while the client keeps it full (pipelining).
 * 0, or -1 when the connection is to be closed. */
static int tcp_read(struct tcp_conn *c, uint64_t now)
{
	size_t need, before = c->in_len, want, end;
	ssize_t r;

	tcp_frames_end(c->in, c->in_len, &need); /* no whole message is left */
	want = c->in_cap ? c->in_cap : TCP_IN_MIN;
	if (c->in_full && want < TCP_IN_MAX)
		want *= 2;
	if (want < need)
		want = need;
	if (want > TCP_IN_MAX)
		want = TCP_IN_MAX;
	if (want > c->in_cap) {
		uint8_t *in = realloc(c->in, want);

		if (!in)
			return -1;
		c->in = in;
		c->in_cap = want;
	}
	r = recv(c->h.fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
		return -1;
	if (r < 0)
		return 0;
	c->in_full = (size_t)r == c->in_cap - c->in_len;
	c->in_len += (size_t)r;
	end = tcp_frames_end(c->in, c->in_len, NULL);
	tcp_clock_read(&c->t, before, end, c->in_len, now);
	if (tcp_process(c, now) < 0)
		return -1;
	if (!c->in_len && !c->in_full) {
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
	return 0;
}

static void on_tcp_conn(struct loop_handler *h, uint32_t events)
{
	struct tcp_conn *c = container_of(h, struct tcp_conn, h);
	uint64_t now = log_now_ms();

	if (h->fd < 0)
		return;
	if (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLIN)) {
		tcp_close(c);
		return;
	}
	if ((events & EPOLLIN) && c->reading && !c->pending && tcp_read(c, now) < 0) {
		tcp_close(c);
		return;
	}
	tcp_resume(c, now);
}

/* A free slot, and the source under its cap: 0, or the counter to bump. */
static uint64_t *tcp_admit(struct dnsserver *s, const struct sockaddr_storage *peer,
			   struct tcp_conn **slot, uint8_t src[static TCP_SRC_KEY])
{
	*slot = NULL;
	for (size_t k = 0; k < s->n_conns; k++) {
		if (s->conns[k].h.fd < 0) {
			*slot = &s->conns[k];
			break;
		}
	}
	if (!*slot)
		return &s->stats.tcp_refused;
	tcp_src_key(peer, src);
	if (tcp_sources_add(&s->sources, src, s->cfg->tcp_per_source) < 0)
		return &s->stats.tcp_refused_source;
	return NULL;
}

static void on_tcp_accept(struct loop_handler *h, uint32_t events)
{
	struct tcp_listener *l = container_of(h, struct tcp_listener, h);
	struct dnsserver *s = l->s;

	(void)events;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		struct tcp_conn *c;
		uint8_t src[TCP_SRC_KEY];
		uint64_t *refused, now = log_now_ms();
		int fd = accept4(h->fd, (struct sockaddr *)&peer, &plen,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		refused = tcp_admit(s, &peer, &c, src);
		if (refused) {
			/* at a cap: refuse rather than starve the others */
			(*refused)++;
			close(fd);
			continue;
		}
		*c = (struct tcp_conn){
			.h = { .fd = fd, .fn = on_tcp_conn }, .s = s, .peer = peer,
			/* the first message is due within the deadline */
			.t = { .partial = true, .msg_ms = now, .last_ms = now },
			.reading = true,
		};
		memcpy(c->src, src, TCP_SRC_KEY);
		if (loop_add(s->loop, &c->h, EPOLLIN) < 0) {
			tcp_sources_del(&s->sources, src);
			close(fd);
			c->h.fd = -1;
			continue;
		}
		s->stats.tcp_open++;
		s->stats.tcp_accepted++;
	}
}

void dnsserver_tick(struct dnsserver *s, uint64_t now_ms)
{
	uint64_t idle = (uint64_t)s->cfg->tcp_timeout * 1000;
	uint64_t deadline = (uint64_t)s->cfg->tcp_deadline * 1000;
	/* never more time within a message than between two */
	if (deadline > idle)
		deadline = idle;
	uint64_t *closed[] = { [TCP_IDLE] = &s->stats.tcp_timeouts,
			       [TCP_SLOW] = &s->stats.tcp_slow,
			       [TCP_STALLED] = &s->stats.tcp_stalled };

	s->stats.tcp_queued = s->stats.tcp_inbuf = 0;
	for (size_t k = 0; k < s->n_conns; k++) {
		struct tcp_conn *c = &s->conns[k];
		enum tcp_verdict v;

		if (c->h.fd < 0)
			continue;
		s->stats.tcp_queued += tcp_unsent(c) + c->stage_len;
		s->stats.tcp_inbuf += c->in_cap;
		/* a connection waiting for its commit is waiting for us */
		c->t.pending = c->pending != NULL;
		c->t.unsent = !c->reading; /* answers: the client must read */
		v = tcp_clock_check(&c->t, now_ms, deadline, idle);
		if (v != TCP_KEEP) {
			(*closed[v])++;
			tcp_close(c);
		}
	}
}

/* ---- sockets -------------------------------------------------------------------- */

static int open_socket(const struct sockaddr_storage *ss, socklen_t len, int type)
{
	char name[ADDR_STRLEN];
	int one = 1, fd;

	fd = socket(ss->ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss->ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto fail;
	if (type == SOCK_DGRAM) {
		/* room for bursts while a batch is being answered; FORCE goes
		 * past net.core.rmem_max when we may (CAP_NET_ADMIN) */
		int size = UDP_RCVBUF;

		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	}
	if (bind(fd, (const struct sockaddr *)ss, len) < 0)
		goto fail;
	if (type == SOCK_STREAM && listen(fd, TCP_BACKLOG) < 0)
		goto fail;
	return fd;
fail:
	log_err("cannot listen on %s (%s): %m",
		addr_sockaddr_format((const struct sockaddr *)ss, name),
		type == SOCK_STREAM ? "TCP" : "UDP");
	if (fd >= 0)
		close(fd);
	return -1;
}

struct dnsserver *dnsserver_new(const struct config *cfg, struct dns_ctx *dns,
				struct gateway *gw, struct loop *loop)
{
	struct dnsserver *s = calloc(1, sizeof(*s));
	uint64_t seed;

	if (!s)
		goto oom;
	s->cfg = cfg;
	s->dns = dns;
	s->gw = gw;
	s->loop = loop;
	s->rl_send = (struct log_ratelimit)LOG_RATELIMIT_INIT(1, 5);
	s->rl_commit = (struct log_ratelimit)LOG_RATELIMIT_INIT(1, 5);
	for (size_t i = 0; i < DNSSERVER_MAX_PENDING; i++)
		s->pend[i].s = s;
	s->conns = calloc(cfg->tcp_clients, sizeof(*s->conns));
	if (!s->conns)
		goto oom;
	s->n_conns = cfg->tcp_clients;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = latency_now_us(); /* the hash only spreads sources */
	if (tcp_sources_init(&s->sources, s->n_conns, seed) < 0)
		goto oom;
	for (size_t k = 0; k < s->n_conns; k++)
		s->conns[k] = (struct tcp_conn){ .h = { .fd = -1 }, .s = s };
	for (size_t i = 0; i < CONFIG_MAX_LISTEN; i++)
		s->udp[i].h.fd = s->tcp[i].h.fd = -1;

	for (size_t i = 0; i < cfg->n_listen; i++) {
		char name[ADDR_STRLEN];

		s->udp[i] = (struct udp_sock){ .h = { .fn = on_udp }, .s = s };
		s->tcp[i] = (struct tcp_listener){ .h = { .fn = on_tcp_accept }, .s = s };
		s->udp[i].h.fd = open_socket(&cfg->listen[i], cfg->listen_len[i], SOCK_DGRAM);
		s->tcp[i].h.fd = open_socket(&cfg->listen[i], cfg->listen_len[i], SOCK_STREAM);
		s->n_listen = i + 1;
		if (s->udp[i].h.fd < 0 || s->tcp[i].h.fd < 0)
			goto fail;
		if (loop_add(loop, &s->udp[i].h, EPOLLIN) < 0 ||
		    loop_add(loop, &s->tcp[i].h, EPOLLIN) < 0) {
			log_err("epoll: %m");
			goto fail;
		}
		log_info("listening on %s (UDP and TCP)",
			 addr_sockaddr_format((const struct sockaddr *)&cfg->listen[i], name));
	}
	return s;
oom:
	log_err("out of memory");
fail:
	dnsserver_free(s);
	return NULL;
}

void dnsserver_free(struct dnsserver *s)
{
	if (!s)
		return;
	for (size_t k = 0; k < s->n_conns; k++)
		tcp_close(&s->conns[k]);
	for (size_t i = 0; i < DNSSERVER_MAX_PENDING; i++)
		if (s->pend[i].used)
			pending_put(&s->pend[i]);
	for (size_t i = 0; i < s->n_listen; i++) {
		if (s->udp[i].h.fd >= 0) {
			loop_del(s->loop, &s->udp[i].h);
			close(s->udp[i].h.fd);
		}
		if (s->tcp[i].h.fd >= 0) {
			loop_del(s->loop, &s->tcp[i].h);
			close(s->tcp[i].h.fd);
		}
	}
	free(s->conns);
	tcp_sources_free(&s->sources);
	free(s->tcp_changes);
	free(s);
}

const struct dnsserver_stats *dnsserver_get_stats(const struct dnsserver *s)
{
	return &s->stats;
}

void dnsserver_get_latency(const struct dnsserver *s, struct latency_summary *out)
{
	latency_summarise(&s->answer_latency, out);
}
