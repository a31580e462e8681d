// SPDX-License-Identifier: MIT
#include "dnsserver.h"

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
#include "latency.h"
#include "log.h"
#include "loop.h"

#define UDP_BUF      4096 /* largest query read, largest answer sent */
#define UDP_ROUNDS   8    /* batches per readiness event, then let others run */
#define TCP_BACKLOG  128
#define UDP_RCVBUF   (4 << 20) /* bytes */

struct dnsserver;

struct udp_sock {
	struct loop_handler h;
	struct dnsserver *s;
};

struct tcp_listener {
	struct loop_handler h;
	struct dnsserver *s;
};

struct tcp_conn {
	struct loop_handler h;   /* h.fd < 0: slot free */
	struct dnsserver *s;
	struct sockaddr_storage peer;
	uint64_t last_ms;
	uint8_t *in;             /* 2 + DNS_TCP_MAX bytes */
	size_t in_len;
	uint8_t *out;            /* pending responses, length-prefixed */
	size_t out_len, out_off, out_cap;
};

struct dnsserver {
	const struct config *cfg;
	struct dns_ctx *dns;
	struct loop *loop;
	dnsserver_commit_fn commit;
	void *commit_ctx;
	struct dnsserver_stats stats;
	struct latency answer_latency; /* batch received -> answers sent */
	struct log_ratelimit rl_send, rl_commit;

	struct udp_sock udp[CONFIG_MAX_LISTEN];
	struct tcp_listener tcp[CONFIG_MAX_LISTEN];
	size_t n_listen;

	struct tcp_conn *conns;
	size_t n_conns;

	/* UDP batch buffers */
	struct mmsghdr in_msg[DNSSERVER_UDP_BATCH], out_msg[DNSSERVER_UDP_BATCH];
	struct iovec in_iov[DNSSERVER_UDP_BATCH], out_iov[DNSSERVER_UDP_BATCH];
	struct sockaddr_storage peers[DNSSERVER_UDP_BATCH];
	struct dns_result res[DNSSERVER_UDP_BATCH];
	uint8_t in_buf[DNSSERVER_UDP_BATCH][UDP_BUF];
	uint8_t out_buf[DNSSERVER_UDP_BATCH][UDP_BUF];
	struct change changes[DNSSERVER_UDP_BATCH * ROTOR_MAX_CHANGES];
	uint8_t tcp_resp[2 + DNS_TCP_MAX];
};

static int commit_batch(struct dnsserver *s, struct dns_result *res, size_t n,
			uint8_t (*out)[UDP_BUF], uint8_t *single_out)
{
	size_t nc = 0;
	int ret;

	for (size_t i = 0; i < n; i++) {
		memcpy(&s->changes[nc], res[i].changes,
		       res[i].n_changes * sizeof(res[i].changes[0]));
		nc += res[i].n_changes;
	}
	if (nc == 0 || !s->commit)
		return 0;
	s->stats.commits++;
	ret = s->commit(s->commit_ctx, s->changes, nc);
	if (ret == 0)
		return 0;
	s->stats.commit_failures++;
	if (log_ratelimit_ok(&s->rl_commit, log_now_ms()))
		log_err("NAT commit failed (%s): answering SERVFAIL "
			"(%llu such failures so far)", strerror(-ret),
			(unsigned long long)s->stats.commit_failures);
	for (size_t i = 0; i < n; i++)
		if (res[i].n_changes)
			dns_make_servfail(s->dns, out ? out[i] : single_out, &res[i]);
	return ret;
}

static void udp_batch(struct dnsserver *s, int fd)
{
	uint64_t now = log_now_ms(), start;
	size_t n_out = 0;
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
		if (s->in_msg[i].msg_hdr.msg_flags & MSG_TRUNC) {
			s->res[i].len = 0; /* a query this large is not DNS we serve */
			s->res[i].n_changes = 0;
			continue;
		}
		dns_answer(s->dns, s->in_buf[i], s->in_msg[i].msg_len,
			   (struct sockaddr *)&s->peers[i], false, now,
			   s->out_buf[i], UDP_BUF, &s->res[i]);
	}
	commit_batch(s, s->res, (size_t)n, s->out_buf, NULL);
	for (int i = 0; i < n; i++) {
		if (!s->res[i].len)
			continue;
		s->out_iov[n_out] = (struct iovec){ s->out_buf[i], s->res[i].len };
		s->out_msg[n_out].msg_hdr = (struct msghdr){
			.msg_name = &s->peers[i],
			.msg_namelen = s->in_msg[i].msg_hdr.msg_namelen,
			.msg_iov = &s->out_iov[n_out], .msg_iovlen = 1,
		};
		n_out++;
	}
	for (size_t done = 0; done < n_out;) {
		int sent = sendmmsg(fd, s->out_msg + done, (unsigned)(n_out - done), 0);

		if (sent < 0) {
			if (errno == EINTR)
				continue;
			/* drop this one (e.g. unreachable peer), go on with the rest */
			s->stats.udp_send_errors++;
			if (log_ratelimit_ok(&s->rl_send, now))
				log_warn("sendmmsg: %m");
			done++;
			continue;
		}
		s->stats.udp_sent += (uint64_t)sent;
		done += (size_t)sent;
	}
	latency_record(&s->answer_latency, latency_now_us() - start);
}

static void on_udp(struct loop_handler *h, uint32_t events)
{
	struct udp_sock *u = (struct udp_sock *)h;

	(void)events;
	for (int r = 0; r < UDP_ROUNDS; r++) {
		uint64_t before = u->s->stats.udp_received;

		udp_batch(u->s, h->fd);
		if (u->s->stats.udp_received - before < DNSSERVER_UDP_BATCH)
			break;
	}
}

static void tcp_close(struct tcp_conn *c)
{
	if (c->h.fd < 0)
		return;
	loop_del(c->s->loop, &c->h);
	close(c->h.fd);
	c->h.fd = -1;
	free(c->in);
	free(c->out);
	c->in = c->out = NULL;
	c->in_len = c->out_len = c->out_off = c->out_cap = 0;
	c->s->stats.tcp_open--;
}

/* Try to send what is pending; 0 when all is sent, 1 when some is left,
 * -1 when the connection died. */
static int tcp_flush(struct tcp_conn *c)
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
	}
	c->out_off = c->out_len = 0;
	return 0;
}

static int tcp_queue(struct tcp_conn *c, const uint8_t *msg, size_t len)
{
	if (c->out_len + len > c->out_cap) {
		size_t cap = c->out_len + len;
		uint8_t *grown = realloc(c->out, cap);

		if (!grown)
			return -ENOMEM;
		c->out = grown;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, msg, len);
	c->out_len += len;
	return 0;
}

/* Answer every complete message in the input buffer. */
static int tcp_process(struct tcp_conn *c, uint64_t now)
{
	struct dnsserver *s = c->s;
	size_t off = 0;

	while (c->in_len - off >= 2) {
		size_t mlen = (size_t)c->in[off] << 8 | c->in[off + 1];
		struct dns_result res;

		if (mlen < 12)
			return -EBADMSG; /* no DNS header: nothing to answer */
		if (c->in_len - off < 2 + mlen)
			break;
		s->stats.tcp_queries++;
		dns_answer(s->dns, c->in + off + 2, mlen,
			   (struct sockaddr *)&c->peer, true, now,
			   s->tcp_resp + 2, DNS_TCP_MAX, &res);
		commit_batch(s, &res, 1, NULL, s->tcp_resp + 2);
		off += 2 + mlen;
		if (!res.len)
			continue;
		s->tcp_resp[0] = (uint8_t)(res.len >> 8);
		s->tcp_resp[1] = (uint8_t)res.len;
		if (tcp_queue(c, s->tcp_resp, res.len + 2) < 0)
			return -ENOMEM;
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	return 0;
}

static void on_tcp_conn(struct loop_handler *h, uint32_t events)
{
	struct tcp_conn *c = (struct tcp_conn *)h;
	uint64_t now = log_now_ms();
	int pending;

	if (h->fd < 0)
		return;
	if (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLIN)) {
		tcp_close(c);
		return;
	}
	if (events & EPOLLIN) {
		ssize_t r = recv(h->fd, c->in + c->in_len,
				 2 + DNS_TCP_MAX - c->in_len, MSG_DONTWAIT);

		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
			tcp_close(c);
			return;
		}
		if (r > 0) {
			c->in_len += (size_t)r;
			c->last_ms = now;
			if (tcp_process(c, now) < 0) {
				tcp_close(c);
				return;
			}
		}
	}
	pending = tcp_flush(c);
	if (pending < 0) {
		tcp_close(c);
		return;
	}
	/* while answers are pending, stop reading: the client must read first */
	loop_mod(c->s->loop, h, pending ? EPOLLOUT : EPOLLIN);
}

static void on_tcp_accept(struct loop_handler *h, uint32_t events)
{
	struct tcp_listener *l = (struct tcp_listener *)h;
	struct dnsserver *s = l->s;

	(void)events;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		struct tcp_conn *c = NULL;
		int fd = accept4(h->fd, (struct sockaddr *)&peer, &plen,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		for (size_t k = 0; k < s->n_conns; k++) {
			if (s->conns[k].h.fd < 0) {
				c = &s->conns[k];
				break;
			}
		}
		if (!c || !(c->in = malloc(2 + DNS_TCP_MAX))) {
			/* at the cap: refuse rather than starve the others */
			s->stats.tcp_refused++;
			close(fd);
			continue;
		}
		c->h.fd = fd;
		c->h.fn = on_tcp_conn;
		c->s = s;
		c->peer = peer;
		c->last_ms = log_now_ms();
		if (loop_add(s->loop, &c->h, EPOLLIN) < 0) {
			free(c->in);
			c->in = NULL;
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

	for (size_t k = 0; k < s->n_conns; k++) {
		struct tcp_conn *c = &s->conns[k];

		if (c->h.fd >= 0 && now_ms - c->last_ms >= idle) {
			s->stats.tcp_timeouts++;
			tcp_close(c);
		}
	}
}

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
				struct loop *loop)
{
	struct dnsserver *s = calloc(1, sizeof(*s));

	if (!s)
		goto oom;
	s->cfg = cfg;
	s->dns = dns;
	s->loop = loop;
	s->rl_send = (struct log_ratelimit)LOG_RATELIMIT_INIT(1, 5);
	s->rl_commit = (struct log_ratelimit)LOG_RATELIMIT_INIT(1, 5);
	s->conns = calloc(cfg->tcp_clients, sizeof(*s->conns));
	if (!s->conns)
		goto oom;
	s->n_conns = cfg->tcp_clients;
	for (size_t k = 0; k < s->n_conns; k++)
		s->conns[k].h.fd = -1;
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
	free(s);
}

void dnsserver_set_commit(struct dnsserver *s, dnsserver_commit_fn fn, void *ctx)
{
	s->commit = fn;
	s->commit_ctx = ctx;
}

const struct dnsserver_stats *dnsserver_get_stats(const struct dnsserver *s)
{
	return &s->stats;
}

void dnsserver_get_latency(const struct dnsserver *s, struct latency_summary *out)
{
	latency_summarise(&s->answer_latency, out);
}
