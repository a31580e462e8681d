// SPDX-License-Identifier: MIT
/* The DNS server over TCP (RFC 7766), with its limits (tcp_limits.h). */
#include "dnsserver_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
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

void tcp_close(struct tcp_conn *c)
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
	gateway_commit(s->gw, s->tcp_changes, nc, pending_on_commit, p);
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
void tcp_completed(struct tcp_conn *c, int result)
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

void on_tcp_accept(struct loop_handler *h, uint32_t events)
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

