// SPDX-License-Identifier: MIT
/*
 * choreo-load: the load generator of the Sandia experiment (issue 4).
 *
 * Many simulated clients, each with its own IPv4 source address from a
 * prefix that is routed as local to this host ("ip route add local P dev
 * lo"), each with at most one transaction in flight: ask DNS for the
 * protected name, wait the injected latency, connect to the answer on a
 * port drawn from a list, read enough to learn whether the server or the
 * honeypot answered, close, think, again. Invalid clients skip DNS and
 * connect to a random pool address.
 *
 * One thread, epoll, non-blocking sockets, a binary heap of per-client
 * deadlines (the one pending timer of each client: think, DNS retry,
 * latency, connect/banner timeout). Everything is allocated at start; the
 * hot path does not allocate. Every wait is bounded, and so is the run.
 *
 * The generator measures itself: a transaction whose start (or whose
 * connect after the latency) comes more than --late-ms after its scheduled
 * time is "late", and the final line reports the rate the client model
 * offered next to the rate achieved, so a saturated generator is visible.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "load_model.h"

#define PROG "choreo-load"
#define LOAD_VERSION "0.1.0"

#define MAX_CLIENTS    200000  /* 2 sockets each at most */
#define MAX_PORTS      16
#define MAX_EXCLUDE    16
#define MAX_POOL       65536   /* a /16 at most: the pool is an array */
#define MAX_DURATION   3600
#define RBUF           512     /* bytes of a banner read at most */
#define EVENTS         1024    /* epoll events per wait */
#define DEADLINE_BATCH 4096    /* deadlines handled between two waits */
#define RECV_BATCH     8       /* datagrams read per UDP readiness */
#define DNS_BUF        1232    /* the largest reply we read */

static const char http_request[] = "GET / HTTP/1.0\r\n\r\n";

enum mode { MODE_VALID, MODE_INVALID, MODE_MIXED };
static const char *const mode_names[] = { "valid", "invalid", "mixed" };

enum state {
	ST_THINK = 0,  /* waiting for the next start (heap: start time) */
	ST_DNS,        /* query sent (heap: retry/give-up time) */
	ST_WAIT,       /* answered, latency running (heap: connect time) */
	ST_CONN,       /* TCP connect in progress (heap: timeout) */
	ST_READ,       /* connected, reading the banner (heap: timeout) */
	ST_DONE,       /* the run is over for this client */
};

/* how a transaction ended */
enum outcome {
	OUT_SERVER,
	OUT_HONEYPOT,
	OUT_DNS_TIMEOUT,
	OUT_DNS_RCODE,
	OUT_DNS_NOADDR,
	OUT_DNS_TRUNC,
	OUT_DNS_MALFORMED,
	OUT_CONN_TIMEOUT,    /* no handshake in time */
	OUT_BANNER_TIMEOUT,  /* connected, nothing decisive in time */
	OUT_CONN_REFUSED,
	OUT_CONN_ERROR,      /* any other socket error */
	OUT_UNCLASSIFIED,    /* it answered, naming neither host (or nothing) */
	OUT_TLS,             /* it answered TLS */
	OUT_N
};

static const char *const outcome_names[OUT_N] = {
	"server", "honeypot", "dns_timeout", "dns_rcode", "dns_noaddr",
	"dns_trunc", "dns_malformed", "conn_timeout", "banner_timeout",
	"conn_refused", "conn_error", "unclassified", "tls",
};

struct client {
	int udp_fd;         /* DNS, connected to the server; -1 for invalid */
	int tcp_fd;         /* -1 when none */
	uint32_t addr;      /* source, host order */
	uint32_t target;    /* where it connects, host order */
	uint16_t qid;
	uint16_t rlen;
	uint16_t gen;       /* tags epoll events of the current TCP socket */
	uint8_t port_ix;
	uint8_t state;
	bool valid;
	bool late;
	uint8_t tries;
	int64_t t_start;    /* when the transaction started */
	int64_t t_conn;     /* when connect() was called */
	uint8_t rbuf[RBUF];
};

struct opts {
	uint64_t duration_s;
	uint32_t clients;
	uint32_t client_base;   /* host order */
	unsigned client_len;
	uint32_t client_offset;
	const char *name;
	bool have_dns;
	bool via_resolver;
	uint32_t dns_addr;
	uint16_t dns_port;
	enum mode mode;
	double valid_share;
	bool have_pool;
	uint32_t pool_base;
	unsigned pool_len;
	uint32_t exclude[MAX_EXCLUDE];
	size_t n_exclude;
	uint16_t ports[MAX_PORTS];
	size_t n_ports;
	double lat_mean_ms, lat_sd_ms;
	double think_mean_ms, think_sd_ms;
	uint64_t dns_timeout_ms;
	uint64_t dns_tries;
	uint64_t conn_timeout_ms;
	uint64_t late_ms;
	const char *server_name, *honeypot_name;
	bool have_seed;
	uint64_t seed;
	uint64_t progress_s;
	bool close_rst;
};

struct port_stats {
	uint64_t tries, server, honeypot, failed;
};

struct stats {
	uint64_t started;
	uint64_t out[2][OUT_N];   /* [valid][outcome] */
	uint64_t finished[2];     /* [valid] */
	uint64_t late;
	uint64_t aborted;
	int64_t role_dns_us[2], role_tcp_us[2];  /* [valid]: time in DNS, in TCP */
	int64_t dns_ok_us_sum;
	uint64_t dns_ok;
	int64_t start_lag_max;
	int64_t conn_lag_max, conn_lag_sum;
	uint64_t conn_lag_n;
	struct port_stats port[MAX_PORTS];
	int first_errno;          /* of the first OUT_CONN_ERROR */
	uint64_t inflight;
};

struct load {
	struct opts o;
	struct client *c;
	struct load_heap heap;
	struct load_rng rng;
	int ep;
	uint8_t query[LOAD_DNS_QMAX];
	size_t qlen;
	uint32_t *pool;
	size_t n_pool;
	uint32_t n_valid_clients;
	int64_t lat_mean_us, lat_sd_us, think_mean_us, think_sd_us;
	bool have_spare;
	double spare;
	bool stopping;
	struct stats st;
	/* progress */
	uint64_t prog_done;
	int64_t prog_t;
	bool pwait2;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const char *ip4_str(uint32_t a, char buf[static INET_ADDRSTRLEN])
{
	struct in_addr in = { .s_addr = htonl(a) };

	return inet_ntop(AF_INET, &in, buf, INET_ADDRSTRLEN);
}

/* ---- random draws ----------------------------------------------------------- */

static double normal(struct load *L)
{
	double u1, u2, r;

	if (L->have_spare) {
		L->have_spare = false;
		return L->spare;
	}
	do
		u1 = load_rng_unit(&L->rng);
	while (u1 <= 0.0); /* p(0) = 2^-53 per draw */
	u2 = load_rng_unit(&L->rng);
	r = sqrt(-2.0 * log(u1));
	L->spare = r * sin(2.0 * M_PI * u2);
	L->have_spare = true;
	return r * cos(2.0 * M_PI * u2);
}

/* Normal(mean, sd) in microseconds, a negative draw taken as 0 (as the
 * Sandia runs did). */
static int64_t draw_us(struct load *L, int64_t mean, int64_t sd)
{
	double v;

	if (sd == 0)
		return mean > 0 ? mean : 0;
	v = (double)mean + (double)sd * normal(L);
	return v > 0 ? (int64_t)v : 0;
}

/* E[max(0, X)], X ~ Normal(mean, sd): what the draw above averages. */
static double rectified_mean(double mean, double sd)
{
	double z;

	if (sd <= 0)
		return mean > 0 ? mean : 0;
	z = mean / sd;
	return mean * 0.5 * erfc(-z / M_SQRT2) + sd * exp(-0.5 * z * z) / sqrt(2.0 * M_PI);
}

/* ---- transactions ------------------------------------------------------------- */

static void schedule(struct load *L, uint32_t id, int64_t when)
{
	load_heap_set(&L->heap, id, when);
}

static bool is_failure(enum outcome o)
{
	return o != OUT_SERVER && o != OUT_HONEYPOT;
}

static void close_tcp(const struct load *L, struct client *c)
{
	if (c->tcp_fd >= 0) {
		if (L->o.close_rst) {
			/* an RST: no TIME_WAIT here, and the gateway's conntrack
			 * entry ends at once instead of lingering 120 s */
			struct linger lg = { .l_onoff = 1, .l_linger = 0 };

			(void)setsockopt(c->tcp_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		close(c->tcp_fd); /* also leaves the epoll set */
		c->tcp_fd = -1;
	}
}

static void finish(struct load *L, uint32_t id, enum outcome o, int64_t now)
{
	struct client *c = &L->c[id];
	struct stats *st = &L->st;
	int v = c->valid ? 1 : 0;

	close_tcp(L, c);
	st->out[v][o]++;
	st->finished[v]++;
	st->inflight--;
	if (c->late)
		st->late++;
	if (c->state == ST_CONN || c->state == ST_READ) {
		struct port_stats *ps = &st->port[c->port_ix];

		st->role_tcp_us[v] += now - c->t_conn;
		if (o == OUT_SERVER)
			ps->server++;
		else if (o == OUT_HONEYPOT)
			ps->honeypot++;
		else
			ps->failed++;
	}
	if (L->stopping) {
		c->state = ST_DONE;
		load_heap_remove(&L->heap, id);
		return;
	}
	c->state = ST_THINK;
	schedule(L, id, now + draw_us(L, L->think_mean_us, L->think_sd_us));
}

static void conn_error(struct load *L, uint32_t id, int err, int64_t now)
{
	if (err == ECONNREFUSED) {
		finish(L, id, OUT_CONN_REFUSED, now);
		return;
	}
	if (err == ETIMEDOUT) {
		finish(L, id, OUT_CONN_TIMEOUT, now);
		return;
	}
	if (!L->st.first_errno)
		L->st.first_errno = err;
	finish(L, id, OUT_CONN_ERROR, now);
}

/* Account the gap between when the model wanted the connect (answer +
 * latency) and now, the moment of connect(): the generator's own delay. */
static void note_connect_lag(struct load *L, struct client *c, int64_t sched)
{
	int64_t lag = now_us() - sched;

	if (lag > (int64_t)L->o.late_ms * 1000)
		c->late = true;
	if (!c->valid)
		return;
	if (lag > L->st.conn_lag_max)
		L->st.conn_lag_max = lag;
	L->st.conn_lag_sum += lag;
	L->st.conn_lag_n++;
}

/* connect now to c->target; sched is when the model wanted it */
static void start_connect(struct load *L, uint32_t id, int64_t sched, int64_t now)
{
	struct client *c = &L->c[id];
	struct sockaddr_in src = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(c->addr) };
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(c->target) };
	struct epoll_event ev;
	int one = 1, fd;

	c->port_ix = (uint8_t)load_rng_below(&L->rng, L->o.n_ports);
	dst.sin_port = htons(L->o.ports[c->port_ix]);
	L->st.port[c->port_ix].tries++;
	c->state = ST_CONN;
	c->t_conn = now;
	c->rlen = 0;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		conn_error(L, id, errno, now);
		return;
	}
	c->tcp_fd = fd;
	c->gen++;
	/* the port is picked at connect(), from the whole 4-tuple space */
	(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
		conn_error(L, id, errno, now);
		return;
	}
	note_connect_lag(L, c, sched);
	if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0 && errno != EINPROGRESS) {
		conn_error(L, id, errno, now);
		return;
	}
	ev.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP;
	ev.data.u64 = (uint64_t)id | (uint64_t)1 << 32 | (uint64_t)c->gen << 33;
	if (epoll_ctl(L->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		conn_error(L, id, errno, now);
		return;
	}
	schedule(L, id, now + (int64_t)L->o.conn_timeout_ms * 1000);
}

/* the query of c's transaction: the template with its id */
static void query_of(const struct load *L, const struct client *c,
		     uint8_t q[static LOAD_DNS_QMAX])
{
	memcpy(q, L->query, L->qlen);
	q[0] = (uint8_t)(c->qid >> 8);
	q[1] = (uint8_t)c->qid;
}

static void send_query(struct load *L, struct client *c)
{
	uint8_t q[LOAD_DNS_QMAX];

	query_of(L, c, q);
	/* a failed send is a lost datagram: the retry timer covers it */
	(void)send(c->udp_fd, q, L->qlen, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void start_transaction(struct load *L, uint32_t id, int64_t sched, int64_t now)
{
	struct client *c = &L->c[id];
	int64_t lag = now - sched;

	L->st.started++;
	L->st.inflight++;
	c->late = lag > (int64_t)L->o.late_ms * 1000;
	if (lag > L->st.start_lag_max)
		L->st.start_lag_max = lag;
	c->t_start = now;
	if (!c->valid) {
		c->target = L->pool[load_rng_below(&L->rng, L->n_pool)];
		start_connect(L, id, now, now);
		return;
	}
	c->qid = (uint16_t)load_rng_next(&L->rng);
	c->tries = 1;
	c->state = ST_DNS;
	send_query(L, c);
	schedule(L, id, now + (int64_t)L->o.dns_timeout_ms * 1000);
}

static void on_deadline(struct load *L, uint32_t id, int64_t when, int64_t now)
{
	struct client *c = &L->c[id];

	switch (c->state) {
	case ST_THINK:
		start_transaction(L, id, when, now);
		break;
	case ST_DNS:
		if (c->tries < L->o.dns_tries) {
			c->tries++;
			send_query(L, c);
			schedule(L, id, now + (int64_t)L->o.dns_timeout_ms * 1000);
		} else {
			L->st.role_dns_us[1] += now - c->t_start;
			finish(L, id, OUT_DNS_TIMEOUT, now);
		}
		break;
	case ST_WAIT:
		start_connect(L, id, when, now);
		break;
	case ST_CONN:
		finish(L, id, OUT_CONN_TIMEOUT, now);
		break;
	case ST_READ:
		finish(L, id, OUT_BANNER_TIMEOUT, now);
		break;
	default:
		load_heap_remove(&L->heap, id);
		break;
	}
}

static void on_dns_readable(struct load *L, uint32_t id)
{
	struct client *c = &L->c[id];
	uint8_t buf[DNS_BUF], q[LOAD_DNS_QMAX];

	for (int i = 0; i < RECV_BATCH; i++) {
		ssize_t n = recv(c->udp_fd, buf, sizeof(buf), MSG_DONTWAIT);
		enum load_dns_status s;
		uint32_t addr = 0;
		int64_t now;

		if (n < 0) {
			/* ECONNREFUSED (port unreachable) and the like: the
			 * retry timer decides */
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			continue;
		}
		if (c->state != ST_DNS)
			continue; /* a late duplicate of an answered query */
		query_of(L, c, q);
		s = load_dns_answer(buf, (size_t)n, q, L->qlen, &addr, NULL);
		if (s == LOAD_DNS_FOREIGN)
			continue;
		now = now_us();
		L->st.role_dns_us[1] += now - c->t_start;
		switch (s) {
		case LOAD_DNS_ADDR: {
			int64_t lat = draw_us(L, L->lat_mean_us, L->lat_sd_us);

			L->st.dns_ok++;
			L->st.dns_ok_us_sum += now - c->t_start;
			c->target = addr;
			if (lat == 0) {
				/* the harshest case: SYN right after the answer */
				start_connect(L, id, now, now);
			} else {
				c->state = ST_WAIT;
				schedule(L, id, now + lat);
			}
			break;
		}
		case LOAD_DNS_NOADDR:
			finish(L, id, OUT_DNS_NOADDR, now);
			break;
		case LOAD_DNS_RCODE:
			finish(L, id, OUT_DNS_RCODE, now);
			break;
		case LOAD_DNS_TRUNC:
			finish(L, id, OUT_DNS_TRUNC, now);
			break;
		default:
			finish(L, id, OUT_DNS_MALFORMED, now);
			break;
		}
	}
}

static bool port_speaks_first(uint16_t port)
{
	/* SSH and SMTP greet; everything else is asked over HTTP */
	return port == 22 || port == 25;
}

static void on_tcp_event(struct load *L, uint32_t id, uint32_t events)
{
	struct client *c = &L->c[id];
	int64_t now = now_us();
	enum load_host h = LOAD_HOST_MORE;
	bool final = false;

	if (c->state == ST_CONN) {
		int err = 0;
		socklen_t len = sizeof(err);
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };

		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (getsockopt(c->tcp_fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			conn_error(L, id, err, now);
			return;
		}
		if (!port_speaks_first(L->o.ports[c->port_ix]) &&
		    send(c->tcp_fd, http_request, sizeof(http_request) - 1,
			 MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)(sizeof(http_request) - 1)) {
			conn_error(L, id, errno ? errno : EIO, now);
			return;
		}
		ev.data.u64 = (uint64_t)id | (uint64_t)1 << 32 | (uint64_t)c->gen << 33;
		if (epoll_ctl(L->ep, EPOLL_CTL_MOD, c->tcp_fd, &ev) < 0) {
			conn_error(L, id, errno, now);
			return;
		}
		c->state = ST_READ;
		if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)))
			return;
	}
	if (c->state != ST_READ)
		return;
	/* bounded: each pass fills the buffer further or ends */
	for (int i = 0; i < 4 && h == LOAD_HOST_MORE; i++) {
		if (c->rlen == RBUF) {
			final = true;
		} else {
			ssize_t n = recv(c->tcp_fd, c->rbuf + c->rlen, RBUF - c->rlen, MSG_DONTWAIT);
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				return;
			if (n < 0) {
				if (c->rlen == 0) {
					conn_error(L, id, errno, now);
					return;
				}
				final = true; /* a reset after the banner: judge it */
			} else if (n == 0) {
				final = true;
			} else {
				c->rlen = (uint16_t)(c->rlen + n);
				final = c->rlen == RBUF;
			}
		}
		h = load_banner_classify(c->rbuf, c->rlen, final,
					 L->o.server_name, L->o.honeypot_name);
	}
	switch (h) {
	case LOAD_HOST_MORE:
		return;
	case LOAD_HOST_SERVER:
		finish(L, id, OUT_SERVER, now);
		return;
	case LOAD_HOST_HONEYPOT:
		finish(L, id, OUT_HONEYPOT, now);
		return;
	case LOAD_HOST_TLS:
		finish(L, id, OUT_TLS, now);
		return;
	default:
		finish(L, id, OUT_UNCLASSIFIED, now);
		return;
	}
}

/* ---- reporting --------------------------------------------------------------------- */

static uint64_t sum_fail(const struct stats *st, int v, bool dns)
{
	uint64_t n = 0;

	for (int o = 0; o < OUT_N; o++) {
		bool is_dns = o >= OUT_DNS_TIMEOUT && o <= OUT_DNS_MALFORMED;

		if (is_failure((enum outcome)o) && is_dns == dns)
			n += st->out[v][o];
	}
	return n;
}

static void progress(struct load *L, int64_t now, int64_t t0)
{
	const struct stats *st = &L->st;
	uint64_t done = st->finished[0] + st->finished[1];
	double dt = (double)(now - L->prog_t) / 1e6;

	fprintf(stderr,
		PROG ": %3" PRId64 "s started=%" PRIu64 " done=%" PRIu64
		" rate=%.1f/s inflight=%" PRIu64 " misrouted=%" PRIu64 "/%" PRIu64
		" reached_server=%" PRIu64 "/%" PRIu64 " dns_fail=%" PRIu64
		" conn_fail=%" PRIu64 " late=%" PRIu64 " start_lag_max=%.1fms\n",
		(now - t0) / 1000000, st->started, done,
		dt > 0 ? (double)(done - L->prog_done) / dt : 0.0, st->inflight,
		st->out[1][OUT_HONEYPOT], st->out[1][OUT_SERVER] + st->out[1][OUT_HONEYPOT],
		st->out[0][OUT_SERVER], st->out[0][OUT_SERVER] + st->out[0][OUT_HONEYPOT],
		sum_fail(st, 0, true) + sum_fail(st, 1, true),
		sum_fail(st, 0, false) + sum_fail(st, 1, false), st->late,
		(double)st->start_lag_max / 1000.0);
	L->prog_done = done;
	L->prog_t = now;
}

/* CPU time of this process, user + system, in seconds */
static double cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* secs: the run's length for the rates; cpu_share: the generator's CPU
 * time over the wall time of its loop (1.0 = one core, busy) */
static void report(struct load *L, double secs, double cpu_share, uint64_t seed)
{
	const struct opts *o = &L->o;
	const struct stats *st = &L->st;
	uint64_t T = st->out[1][OUT_SERVER] + st->out[1][OUT_HONEYPOT];
	uint64_t U = st->out[0][OUT_SERVER] + st->out[0][OUT_HONEYPOT];
	uint64_t dns_fail = sum_fail(st, 1, true) + sum_fail(st, 0, true);
	uint64_t conn_fail = sum_fail(st, 1, false) + sum_fail(st, 0, false);
	uint64_t finished = st->finished[0] + st->finished[1];
	double think = rectified_mean(o->think_mean_ms, o->think_sd_ms) / 1000.0;
	double lat = rectified_mean(o->lat_mean_ms, o->lat_sd_ms) / 1000.0;
	double offered = 0, late_share;
	uint32_t n_inv = o->clients - L->n_valid_clients;

	/* the closed-loop model: each client cycles think + its own
	 * transaction; the transaction's time is what was measured, minus
	 * any delay of the generator's own (latency is the model's) */
	for (int v = 0; v < 2; v++) {
		uint32_t n = v ? L->n_valid_clients : n_inv;
		double svc = 0, cycle;

		if (n == 0)
			continue;
		if (st->finished[v])
			svc = (double)(st->role_dns_us[v] + st->role_tcp_us[v]) /
			      (double)st->finished[v] / 1e6;
		cycle = think + (v ? lat : 0) + svc;
		offered += cycle > 0 ? n / cycle : 0;
	}
	late_share = st->started ? (double)st->late / (double)st->started : 0;

	printf("clients=%" PRIu32 " latency=%gms mix=%s misrouted=%" PRIu64 "/%" PRIu64
	       " reached_server=%" PRIu64 "/%" PRIu64 " tx_per_s=%.1f offered_per_s=%.1f"
	       " dns_fail=%" PRIu64 " conn_fail=%" PRIu64 " late=%" PRIu64,
	       o->clients, o->lat_mean_ms, mode_names[o->mode],
	       st->out[1][OUT_HONEYPOT], T, st->out[0][OUT_SERVER], U,
	       secs > 0 ? (double)(T + U) / secs : 0.0, offered, dns_fail, conn_fail,
	       st->late);
	printf(" saturated=%d latency_sd=%gms valid_share=%.3f valid_clients=%" PRIu32
	       " duration=%.1fs started=%" PRIu64 " attempted_per_s=%.1f aborted=%" PRIu64,
	       late_share > 0.01 || cpu_share > 0.9, o->lat_sd_ms,
	       (double)L->n_valid_clients / o->clients,
	       L->n_valid_clients, secs, st->started,
	       secs > 0 ? (double)finished / secs : 0.0, st->aborted);
	for (int i = OUT_DNS_TIMEOUT; i < OUT_N; i++)
		printf(" %s=%" PRIu64, outcome_names[i], st->out[0][i] + st->out[1][i]);
	printf(" dns_ms_avg=%.2f service_ms_avg=%.2f gen_cpu=%.2f start_lag_max_ms=%.1f"
	       " connect_lag_max_ms=%.3f connect_lag_avg_ms=%.3f seed=%" PRIu64 "\n",
	       st->dns_ok ? (double)st->dns_ok_us_sum / (double)st->dns_ok / 1000.0 : 0.0,
	       finished ? (double)(st->role_dns_us[0] + st->role_dns_us[1] + st->role_tcp_us[0] +
				   st->role_tcp_us[1]) / (double)finished / 1000.0 : 0.0,
	       cpu_share,
	       (double)st->start_lag_max / 1000.0, (double)st->conn_lag_max / 1000.0,
	       st->conn_lag_n ? (double)st->conn_lag_sum / (double)st->conn_lag_n / 1000.0 : 0.0,
	       seed);
	fflush(stdout);

	for (size_t i = 0; i < o->n_ports; i++) {
		const struct port_stats *ps = &st->port[i];

		if (ps->tries == 0)
			continue;
		fprintf(stderr, PROG ": port %u: %" PRIu64 " connections, %" PRIu64
			" server, %" PRIu64 " honeypot, %" PRIu64 " failed\n",
			o->ports[i], ps->tries, ps->server, ps->honeypot, ps->failed);
	}
	if (st->out[0][OUT_TLS] + st->out[1][OUT_TLS])
		fprintf(stderr, PROG ": warning: %" PRIu64 " connections answered TLS, "
			"which this generator does not speak: serve plain HTTP there "
			"or leave the port out of --ports\n",
			st->out[0][OUT_TLS] + st->out[1][OUT_TLS]);
	for (size_t i = 0; i < o->n_ports; i++) {
		const struct port_stats *ps = &st->port[i];

		if (ps->tries >= 10 && ps->server + ps->honeypot == 0)
			fprintf(stderr, PROG ": warning: port %u never named a host "
				"(TLS? no service?): leave it out of --ports\n", o->ports[i]);
	}
	if (st->first_errno)
		fprintf(stderr, PROG ": first connection error: %s\n", strerror(st->first_errno));
	if (cpu_share > 0.9)
		fprintf(stderr, PROG ": warning: the generator used %.0f %% of a core: it "
			"may be the limit of this run\n", 100.0 * cpu_share);
	if (late_share > 0.01)
		fprintf(stderr, PROG ": warning: %.1f %% of the transactions started or "
			"connected more than %" PRIu64 " ms late: the generator (or the "
			"machine) was saturated; these figures do not measure the gateway alone\n",
			100.0 * late_share, o->late_ms);
}

/* ---- options --------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " --duration S (--dns ADDR | --resolver ADDR | --pool P) [options]\n"
		"Load generator for choreo: many clients, each its own source address,\n"
		"ask DNS, wait, connect, and count who answered: server or honeypot.\n\n"
		"  --duration S          seconds of new transactions, 1..%d (required)\n"
		"  --clients N           simulated clients, 1..%d (default 100)\n"
		"  --client-prefix P     their source prefix, routed local (default 198.18.0.0/16)\n"
		"  --client-offset K     client i uses prefix base + K + i + 1 (default 0)\n"
		"  --mode M              valid | invalid | mixed (default valid)\n"
		"  --valid-share F       mixed: share of valid clients, 0..1 (default 0.5)\n"
		"  --name NAME           the protected name (default www.example.test)\n"
		"  --dns ADDR[:PORT]     ask this authoritative server\n"
		"  --resolver ADDR[:PORT] ask this resolver (same wire, RD set either way)\n"
		"  --pool P              the pool, for invalid clients (at most a /16)\n"
		"  --exclude ADDR        never an invalid client's target (repeat, max %d;\n"
		"                        the --dns address is excluded anyway)\n"
		"  --ports LIST          ports drawn uniformly (default 22,25,80,443)\n"
		"  --latency-ms MS       mean wait between answer and connect (default 0)\n"
		"  --latency-sd MS       its deviation (default 0); negative draws are 0\n"
		"  --think-ms MS         mean wait between transactions (default 1000)\n"
		"  --think-sd MS         its deviation (default 1000)\n"
		"  --dns-timeout-ms MS   per try (default 1000)\n"
		"  --dns-tries N         1..10 (default 3)\n"
		"  --conn-timeout-ms MS  connect + banner (default 3000)\n"
		"  --late-ms MS          a start this late counts as late (default 100)\n"
		"  --server-name NAME    the server's banner name (default server)\n"
		"  --honeypot-name NAME  the honeypot's (default honeypot)\n"
		"  --seed N              PRNG seed (default: random, printed)\n"
		"  --progress S          progress on stderr every S s, 0 = none (default 5)\n"
		"  --close fin|rst       end each connection with a FIN (default) or an RST\n"
		"  -h, --help            this help\n"
		"  -V, --version         the version\n\n"
		"Prints one line key=value on stdout at the end. Exit 0 when the run\n"
		"completed, 1 on a setup failure or an interrupted run, 2 on usage errors.\n"
		"See choreo-load(1).\n", MAX_DURATION, MAX_CLIENTS, MAX_EXCLUDE);
}

enum {
	OPT_DURATION = 256, OPT_CLIENTS, OPT_PREFIX, OPT_OFFSET, OPT_MODE, OPT_SHARE,
	OPT_NAME, OPT_DNS, OPT_RESOLVER, OPT_POOL, OPT_EXCLUDE, OPT_PORTS, OPT_LAT,
	OPT_LAT_SD, OPT_THINK, OPT_THINK_SD, OPT_DNS_TIMEOUT, OPT_DNS_TRIES,
	OPT_CONN_TIMEOUT, OPT_LATE, OPT_SERVER_NAME, OPT_HPOT_NAME, OPT_SEED,
	OPT_PROGRESS, OPT_CLOSE,
};

static const struct option long_opts[] = {
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "clients", required_argument, NULL, OPT_CLIENTS },
	{ "client-prefix", required_argument, NULL, OPT_PREFIX },
	{ "client-offset", required_argument, NULL, OPT_OFFSET },
	{ "mode", required_argument, NULL, OPT_MODE },
	{ "valid-share", required_argument, NULL, OPT_SHARE },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "dns", required_argument, NULL, OPT_DNS },
	{ "resolver", required_argument, NULL, OPT_RESOLVER },
	{ "pool", required_argument, NULL, OPT_POOL },
	{ "exclude", required_argument, NULL, OPT_EXCLUDE },
	{ "ports", required_argument, NULL, OPT_PORTS },
	{ "latency-ms", required_argument, NULL, OPT_LAT },
	{ "latency-sd", required_argument, NULL, OPT_LAT_SD },
	{ "think-ms", required_argument, NULL, OPT_THINK },
	{ "think-sd", required_argument, NULL, OPT_THINK_SD },
	{ "dns-timeout-ms", required_argument, NULL, OPT_DNS_TIMEOUT },
	{ "dns-tries", required_argument, NULL, OPT_DNS_TRIES },
	{ "conn-timeout-ms", required_argument, NULL, OPT_CONN_TIMEOUT },
	{ "late-ms", required_argument, NULL, OPT_LATE },
	{ "server-name", required_argument, NULL, OPT_SERVER_NAME },
	{ "honeypot-name", required_argument, NULL, OPT_HPOT_NAME },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "progress", required_argument, NULL, OPT_PROGRESS },
	{ "close", required_argument, NULL, OPT_CLOSE },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static bool bad(const char *opt, const char *val, const char *expected)
{
	fprintf(stderr, PROG ": --%s '%s': %s\n", opt, val, expected);
	return false;
}

static bool opt_u64(const char *opt, const char *val, uint64_t min, uint64_t max,
		    uint64_t *out)
{
	char msg[96];

	if (load_parse_u64(val, min, max, out) == 0)
		return true;
	snprintf(msg, sizeof(msg), "expected an integer %" PRIu64 "..%" PRIu64, min, max);
	return bad(opt, val, msg);
}

static bool opt_double(const char *opt, const char *val, double min, double max,
		       double *out)
{
	char msg[96];

	if (load_parse_double(val, min, max, out) == 0)
		return true;
	snprintf(msg, sizeof(msg), "expected a number %g..%g", min, max);
	return bad(opt, val, msg);
}

static bool valid_label_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return false;
	return true;
}

/* Returns 0, or 2 (usage) after saying why. */
static int parse_args(int argc, char **argv, struct opts *o)
{
	const char *prefix = "198.18.0.0/16";
	bool have_duration = false, ok = true;
	uint64_t v;
	int ch;

	*o = (struct opts){
		.clients = 100, .name = "www.example.test", .mode = MODE_VALID,
		.valid_share = 0.5, .ports = { 22, 25, 80, 443 }, .n_ports = 4,
		.think_mean_ms = 1000, .think_sd_ms = 1000, .dns_timeout_ms = 1000,
		.dns_tries = 3, .conn_timeout_ms = 3000, .late_ms = 100,
		.server_name = "server", .honeypot_name = "honeypot", .progress_s = 5,
		.dns_port = 53,
	};
	while (ok && (ch = getopt_long(argc, argv, "hV", long_opts, NULL)) != -1) {
		const char *name = NULL;

		for (const struct option *lo = long_opts; lo->name; lo++)
			if (lo->val == ch)
				name = lo->name;
		switch (ch) {
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf(PROG " " LOAD_VERSION "\n");
			exit(0);
		case OPT_DURATION:
			ok = opt_u64(name, optarg, 1, MAX_DURATION, &o->duration_s);
			have_duration = true;
			break;
		case OPT_CLIENTS:
			ok = opt_u64(name, optarg, 1, MAX_CLIENTS, &v);
			o->clients = (uint32_t)v;
			break;
		case OPT_PREFIX:
			prefix = optarg;
			break;
		case OPT_OFFSET:
			ok = opt_u64(name, optarg, 0, UINT32_MAX / 2, &v);
			o->client_offset = (uint32_t)v;
			break;
		case OPT_MODE:
			if (!strcmp(optarg, "valid"))
				o->mode = MODE_VALID;
			else if (!strcmp(optarg, "invalid"))
				o->mode = MODE_INVALID;
			else if (!strcmp(optarg, "mixed"))
				o->mode = MODE_MIXED;
			else
				ok = bad(name, optarg, "expected valid, invalid or mixed");
			break;
		case OPT_SHARE:
			ok = opt_double(name, optarg, 0, 1, &o->valid_share);
			break;
		case OPT_NAME: {
			uint8_t q[LOAD_DNS_QMAX];

			o->name = optarg;
			if (load_dns_query(q, optarg, 0) < 0)
				ok = bad(name, optarg, "expected a domain name (labels 1..63 bytes, at most 253)");
			break;
		}
		case OPT_DNS:
		case OPT_RESOLVER:
			if (o->have_dns) {
				ok = bad(name, optarg, "only one of --dns and --resolver, once");
				break;
			}
			o->have_dns = true;
			o->via_resolver = ch == OPT_RESOLVER;
			if (load_parse_hostport4(optarg, 53, &o->dns_addr, &o->dns_port) < 0)
				ok = bad(name, optarg, "expected an IPv4 address, optionally :PORT");
			break;
		case OPT_POOL:
			o->have_pool = true;
			if (load_parse_prefix4(optarg, &o->pool_base, &o->pool_len) < 0 ||
			    o->pool_len < 16)
				ok = bad(name, optarg, "expected an IPv4 prefix /16../32, host bits zero");
			break;
		case OPT_EXCLUDE:
			if (o->n_exclude == MAX_EXCLUDE)
				ok = bad(name, optarg, "too many --exclude");
			else if (load_parse_ip4(optarg, &o->exclude[o->n_exclude++]) < 0)
				ok = bad(name, optarg, "expected an IPv4 address");
			break;
		case OPT_PORTS:
			if (load_parse_ports(optarg, o->ports, MAX_PORTS, &o->n_ports) < 0)
				ok = bad(name, optarg, "expected a comma-separated list of 1..16 ports");
			break;
		case OPT_LAT:
			ok = opt_double(name, optarg, 0, 60000, &o->lat_mean_ms);
			break;
		case OPT_LAT_SD:
			ok = opt_double(name, optarg, 0, 60000, &o->lat_sd_ms);
			break;
		case OPT_THINK:
			ok = opt_double(name, optarg, 0, 600000, &o->think_mean_ms);
			break;
		case OPT_THINK_SD:
			ok = opt_double(name, optarg, 0, 600000, &o->think_sd_ms);
			break;
		case OPT_DNS_TIMEOUT:
			ok = opt_u64(name, optarg, 10, 60000, &o->dns_timeout_ms);
			break;
		case OPT_DNS_TRIES:
			ok = opt_u64(name, optarg, 1, 10, &o->dns_tries);
			break;
		case OPT_CONN_TIMEOUT:
			ok = opt_u64(name, optarg, 10, 60000, &o->conn_timeout_ms);
			break;
		case OPT_LATE:
			ok = opt_u64(name, optarg, 1, 60000, &o->late_ms);
			break;
		case OPT_SERVER_NAME:
		case OPT_HPOT_NAME:
			if (!valid_label_name(optarg))
				ok = bad(name, optarg, "expected 1..64 printable characters, no space");
			else if (ch == OPT_SERVER_NAME)
				o->server_name = optarg;
			else
				o->honeypot_name = optarg;
			break;
		case OPT_SEED:
			ok = opt_u64(name, optarg, 0, UINT64_MAX, &o->seed);
			o->have_seed = true;
			break;
		case OPT_PROGRESS:
			ok = opt_u64(name, optarg, 0, 3600, &o->progress_s);
			break;
		case OPT_CLOSE:
			if (!strcmp(optarg, "fin") || !strcmp(optarg, "rst"))
				o->close_rst = optarg[0] == 'r';
			else
				ok = bad(name, optarg, "expected fin or rst");
			break;
		default:
			ok = false;
			break;
		}
	}
	if (!ok)
		goto usage;
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
		goto usage;
	}
	if (!have_duration) {
		fprintf(stderr, PROG ": --duration is required\n");
		goto usage;
	}
	switch (load_parse_prefix4(prefix, &o->client_base, &o->client_len)) {
	case 0:
		break;
	case -EDOM:
		fprintf(stderr, PROG ": --client-prefix '%s': host bits set\n", prefix);
		goto usage;
	default:
		fprintf(stderr, PROG ": --client-prefix '%s': expected an IPv4 prefix\n", prefix);
		goto usage;
	}
	{
		/* base + offset + 1 .. base + offset + clients, broadcast kept out */
		uint64_t hosts = ((uint64_t)1 << (32 - o->client_len));

		if ((uint64_t)o->client_offset + o->clients + 2 > hosts) {
			fprintf(stderr, PROG ": --client-prefix %s has %" PRIu64 " host addresses; "
				"--client-offset %" PRIu32 " + --clients %" PRIu32 " do not fit\n",
				prefix, hosts >= 2 ? hosts - 2 : 0, o->client_offset, o->clients);
			goto usage;
		}
	}
	if (o->mode != MODE_INVALID && !o->have_dns) {
		fprintf(stderr, PROG ": mode %s needs --dns or --resolver\n", mode_names[o->mode]);
		goto usage;
	}
	if (o->mode != MODE_VALID && !o->have_pool) {
		fprintf(stderr, PROG ": mode %s needs --pool\n", mode_names[o->mode]);
		goto usage;
	}
	if (!strcmp(o->server_name, o->honeypot_name)) {
		fprintf(stderr, PROG ": --server-name and --honeypot-name must differ\n");
		goto usage;
	}
	return 0;
usage:
	fprintf(stderr, "Try '" PROG " --help'.\n");
	return 2;
}

/* ---- setup ------------------------------------------------------------------------ */

static bool is_excluded(const struct opts *o, uint32_t a)
{
	if (o->have_dns && a == o->dns_addr)
		return true;
	for (size_t i = 0; i < o->n_exclude; i++)
		if (o->exclude[i] == a)
			return true;
	return false;
}

static int raise_nofile(uint64_t need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	if (rl.rlim_cur >= need)
		return 0;
	if (rl.rlim_max < need)
		rl.rlim_max = need; /* root may raise it */
	rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	return 0;
}

/* Returns 0 or 1 (setup failure, said why). */
static int setup(struct load *L)
{
	struct opts *o = &L->o;
	char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];
	struct sockaddr_in dns = {
		.sin_family = AF_INET, .sin_addr.s_addr = htonl(o->dns_addr),
		.sin_port = htons(o->dns_port),
	};
	int err;

	L->ep = -1;
	L->c = calloc(o->clients, sizeof(*L->c));
	if (!L->c || load_heap_init(&L->heap, o->clients) < 0) {
		fprintf(stderr, PROG ": out of memory for %" PRIu32 " clients\n", o->clients);
		return 1;
	}
	if (o->have_pool) {
		uint64_t size = (uint64_t)1 << (32 - o->pool_len);

		L->pool = calloc(size, sizeof(*L->pool));
		if (!L->pool) {
			fprintf(stderr, PROG ": out of memory for the pool\n");
			return 1;
		}
		for (uint64_t i = 0; i < size; i++)
			if (!is_excluded(o, o->pool_base + (uint32_t)i))
				L->pool[L->n_pool++] = o->pool_base + (uint32_t)i;
		if (L->n_pool == 0) {
			fprintf(stderr, PROG ": every pool address is excluded\n");
			return 1;
		}
	}
	if (o->have_dns) {
		int n = load_dns_query(L->query, o->name, 0);

		if (n < 0) {
			fprintf(stderr, PROG ": cannot build a query for '%s'\n", o->name);
			return 1;
		}
		L->qlen = (size_t)n;
	}
	/* roles: spread evenly over the clients (Bresenham), not in blocks */
	for (uint32_t i = 0; i < o->clients; i++) {
		struct client *c = &L->c[i];

		c->udp_fd = c->tcp_fd = -1;
		c->addr = o->client_base + o->client_offset + i + 1;
		switch (o->mode) {
		case MODE_VALID:
			c->valid = true;
			break;
		case MODE_INVALID:
			c->valid = false;
			break;
		case MODE_MIXED:
			c->valid = floor((i + 1) * o->valid_share) > floor(i * o->valid_share);
			break;
		}
		L->n_valid_clients += c->valid;
	}
	err = raise_nofile((uint64_t)L->n_valid_clients + o->clients + 64);
	if (err < 0) {
		fprintf(stderr, PROG ": cannot raise the open-file limit to %" PRIu64
			" (%" PRIu32 " clients): %s\n",
			(uint64_t)L->n_valid_clients + o->clients + 64, o->clients, strerror(-err));
		return 1;
	}
	L->ep = epoll_create1(EPOLL_CLOEXEC);
	if (L->ep < 0) {
		fprintf(stderr, PROG ": epoll_create1: %s\n", strerror(errno));
		return 1;
	}
	/* every client's address is bound once here, so a missing route says
	 * so before the run, not as a failure count during it */
	for (uint32_t i = 0; i < o->clients; i++) {
		struct client *c = &L->c[i];
		struct sockaddr_in src = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(c->addr) };
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = i };
		int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		if (fd < 0) {
			fprintf(stderr, PROG ": socket (client %" PRIu32 "): %s\n", i, strerror(errno));
			return 1;
		}
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
			err = errno;
			fprintf(stderr, PROG ": cannot bind source address %s (client %" PRIu32
				"): %s%s\n", ip4_str(c->addr, a), i, strerror(err),
				err == EADDRNOTAVAIL ? " (is the client prefix routed as local "
				"here? ip route add local PREFIX dev lo)" : "");
			close(fd);
			return 1;
		}
		if (!c->valid) {
			close(fd);
			continue;
		}
		if (connect(fd, (struct sockaddr *)&dns, sizeof(dns)) < 0) {
			fprintf(stderr, PROG ": cannot reach DNS %s:%u from %s: %s\n",
				ip4_str(o->dns_addr, a), o->dns_port, ip4_str(c->addr, b),
				strerror(errno));
			close(fd);
			return 1;
		}
		if (epoll_ctl(L->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			fprintf(stderr, PROG ": epoll_ctl: %s\n", strerror(errno));
			close(fd);
			return 1;
		}
		c->udp_fd = fd;
	}
	L->lat_mean_us = (int64_t)(o->lat_mean_ms * 1000);
	L->lat_sd_us = (int64_t)(o->lat_sd_ms * 1000);
	L->think_mean_us = (int64_t)(o->think_mean_ms * 1000);
	L->think_sd_us = (int64_t)(o->think_sd_ms * 1000);
	return 0;
}

static void teardown(struct load *L)
{
	if (L->c) {
		for (uint32_t i = 0; i < L->o.clients; i++) {
			close_tcp(L, &L->c[i]);
			if (L->c[i].udp_fd >= 0)
				close(L->c[i].udp_fd);
		}
	}
	if (L->ep >= 0)
		close(L->ep);
	free(L->c);
	free(L->pool);
	load_heap_free(&L->heap);
}

/* ---- the loop ------------------------------------------------------------------------ */

static int wait_events(struct load *L, struct epoll_event *ev, int64_t timeout_us)
{
	if (L->pwait2) {
		struct timespec ts = {
			.tv_sec = timeout_us / 1000000,
			.tv_nsec = (timeout_us % 1000000) * 1000,
		};
		int n = epoll_pwait2(L->ep, ev, EVENTS, &ts, NULL);

		if (n >= 0 || errno != ENOSYS)
			return n;
		L->pwait2 = false;
	}
	/* whole milliseconds, rounded up: never early */
	return epoll_wait(L->ep, ev, EVENTS, (int)((timeout_us + 999) / 1000));
}

/*
 * When a client first starts, as an offset from the run's start: as if it
 * had been cycling (think, latency) for a while already, so that the run
 * is in its steady state from the first second and the achieved rate is
 * comparable with the offered one (starting everyone within one think time
 * would add a burst of "free" first transactions to a short run).
 */
static int64_t first_start(struct load *L, bool valid)
{
	int64_t extra = valid ? L->lat_mean_us : 0;
	int64_t cycle = L->think_mean_us + extra, t;

	if (cycle < 1000) /* no think time to speak of: spread over 100 ms */
		return (int64_t)(load_rng_unit(&L->rng) * 100000);
	t = -16 * cycle - (int64_t)(load_rng_unit(&L->rng) * (double)cycle);
	/* 16 cycles on average; the bound only guards a long run of zeros */
	for (int k = 0; k < 256 && t < 0; k++)
		t += draw_us(L, L->think_mean_us, L->think_sd_us) + extra;
	return t > 0 ? t : 0;
}

static int run(struct load *L)
{
	const struct opts *o = &L->o;
	static struct epoll_event ev[EVENTS];
	double cpu0 = cpu_seconds();
	int64_t t0 = now_us(), now;
	int64_t t_end = t0 + (int64_t)o->duration_s * 1000000;
	/* the longest a started transaction can take, and a second more */
	int64_t drain = (int64_t)(o->dns_timeout_ms * o->dns_tries + o->conn_timeout_ms) * 1000 +
			(int64_t)((o->lat_mean_ms + 6 * o->lat_sd_ms) * 1000) + 1000000;
	int64_t t_drain = t_end + drain;
	int64_t progress_us = (int64_t)o->progress_s * 1000000;
	int64_t t_prog = progress_us ? t0 + progress_us : INT64_MAX;

	L->pwait2 = true;
	L->prog_t = t0;
	for (uint32_t i = 0; i < o->clients; i++)
		schedule(L, i, t0 + first_start(L, L->c[i].valid));

	/* bounded by t_drain: every pass either waits or advances the clock */
	for (;;) {
		int64_t timeout, key;
		uint32_t id;
		int n;

		now = now_us();
		if (interrupted)
			break;
		if (!L->stopping && now >= t_end) {
			L->stopping = true;
			for (uint32_t i = 0; i < o->clients; i++) {
				if (L->c[i].state == ST_THINK) {
					L->c[i].state = ST_DONE;
					load_heap_remove(&L->heap, i);
				}
			}
		}
		if (L->stopping && (L->st.inflight == 0 || now >= t_drain))
			break;
		if (now >= t_prog) {
			progress(L, now, t0);
			t_prog += progress_us;
		}
		for (int k = 0; k < DEADLINE_BATCH && load_heap_top(&L->heap, &id, &key) &&
				key <= now; k++) {
			on_deadline(L, id, key, now);
			now = now_us();
		}
		timeout = (L->stopping ? t_drain : t_end) - now;
		if (t_prog - now < timeout)
			timeout = t_prog - now;
		if (load_heap_top(&L->heap, &id, &key) && key - now < timeout)
			timeout = key - now;
		if (timeout < 0)
			timeout = 0;
		n = wait_events(L, ev, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, PROG ": epoll_wait: %s\n", strerror(errno));
			return 1;
		}
		for (int i = 0; i < n; i++) {
			uint64_t d = ev[i].data.u64;
			uint32_t cid = (uint32_t)d;

			if (d >> 32 == 0) {
				on_dns_readable(L, cid);
			} else if ((uint16_t)(d >> 33) == L->c[cid].gen && L->c[cid].tcp_fd >= 0) {
				on_tcp_event(L, cid, ev[i].events);
			}
		}
	}
	now = now_us();
	/* what is still in flight past the drain time is counted, not judged */
	for (uint32_t i = 0; i < o->clients; i++) {
		struct client *c = &L->c[i];

		if (c->state != ST_THINK && c->state != ST_DONE) {
			L->st.aborted++;
			close_tcp(L, c);
			c->state = ST_DONE;
		}
	}
	if (interrupted)
		fprintf(stderr, PROG ": interrupted after %.1f s: the rates below are over "
			"that time\n", (double)(now - t0) / 1e6);
	report(L, interrupted ? (double)(now - t0) / 1e6 : (double)o->duration_s,
	       now > t0 ? (cpu_seconds() - cpu0) / ((double)(now - t0) / 1e6) : 0, L->o.seed);
	return interrupted ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct load L = { .ep = -1 };
	struct sigaction sa = { .sa_handler = on_signal };
	int rc;

	rc = parse_args(argc, argv, &L.o);
	if (rc)
		return rc;
	if (!L.o.have_seed && getrandom(&L.o.seed, sizeof(L.o.seed), 0) != sizeof(L.o.seed))
		L.o.seed = (uint64_t)now_us() ^ (uint64_t)getpid() << 32;
	load_rng_seed(&L.rng, L.o.seed);
	signal(SIGPIPE, SIG_IGN);
	/* wake on the deadline, not up to 50 us after it (the default slack):
	 * the latency injected is the model's, not the timer's */
	(void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	rc = setup(&L);
	if (rc == 0) {
		char base[INET_ADDRSTRLEN];

		fprintf(stderr, PROG ": %" PRIu32 " clients (%" PRIu32 " valid) from %s+%" PRIu32
			", %s, %" PRIu64 " s, seed %" PRIu64 "\n", L.o.clients, L.n_valid_clients,
			ip4_str(L.o.client_base, base),
			L.o.client_offset + 1, mode_names[L.o.mode], L.o.duration_s, L.o.seed);
		rc = run(&L);
	}
	teardown(&L);
	return rc;
}
