// SPDX-License-Identifier: MIT
#include "dnsserver_impl.h"

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
#include "rrl.h"
#include "tcp_limits.h"

#define UDP_ROUNDS   8    /* batches per readiness event, then let others run */
#define TCP_BACKLOG  128
#define UDP_RCVBUF   (4 << 20) /* bytes */

/* ---- commits --------------------------------------------------------------------- */

struct pending *pending_get(struct dnsserver *s)
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

void pending_put(struct pending *p)
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

void pending_on_commit(void *ctx, int result)
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

/* Rate limiting, before the answer is made: true when query i is limited,
 * and then res[i] is its slip reply (n_changes 0) or nothing. */
static bool udp_limited(struct dnsserver *s, int i, uint64_t now)
{
	struct dns_result *r = &s->res[i];
	enum rrl_action act;
	uint8_t addr[16];
	int family;

	if (!s->rrl ||
	    addr_from_sockaddr((struct sockaddr *)&s->peers[i], &family, addr) < 0)
		return false;
	act = rrl_check(s->rrl, family, addr, now);
	s->stats.rrl_evicted = rrl_get_stats(s->rrl)->evicted;
	switch (act) {
	case RRL_ANSWER:
		return false;
	case RRL_SLIP:
		s->stats.rrl_slipped++;
		r->len = dns_make_slip(s->in_buf[i], s->in_msg[i].msg_len,
				       s->out_buf[i], UDP_BUF);
		break;
	case RRL_DROP:
		s->stats.rrl_dropped++;
		r->len = 0;
		break;
	}
	s->stats.rrl_limited++;
	r->n_changes = 0;
	return true;
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
		if (!udp_limited(s, i, now))
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
		gateway_commit(s->gw, s->changes, nc, pending_on_commit, p);
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

	if (cfg->rate_limit && !(s->rrl = rrl_from_config(cfg)))
		goto oom;
	s->stats.rrl_on = s->rrl != NULL;
	if (s->rrl)
		log_info("UDP rate limit: %u answers/s per /%u and /%u, slip %u, "
			 "resolvers %u/s", cfg->rate_limit, cfg->rate_limit_prefix4,
			 cfg->rate_limit_prefix6, cfg->rate_limit_slip,
			 cfg->rate_limit_resolver_rate);
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
	rrl_free(s->rrl);
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
