// SPDX-License-Identifier: MIT
/*
 * The DNS transport with a gateway whose commits complete only when the
 * test says so: answers wait for their commit, in order on TCP, SERVFAIL
 * when it fails; while commits are outstanding the loop goes on serving
 * static answers and other connections. Real sockets on 127.0.0.1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include "cmocka_analyzer.h"

#include "config.h"
#include "dns.h"
#include "dnsserver.h"
#include "gateway.h"
#include "log.h"
#include "loop.h"
#include "rotor.h"
#include "zone.h"

#define MAX_HELD 16

/* A gateway that holds every commit until the test completes it. */
struct held_gw {
	struct gateway gw;
	struct {
		gateway_done_fn fn;
		void *ctx;
		size_t n;
	} held[MAX_HELD];
	size_t n_held;
};

static void held_commit(struct gateway *gw, const struct change *c, size_t n,
			gateway_done_fn done, void *ctx)
{
	struct held_gw *h = container_of(gw, struct held_gw, gw);

	(void)c;
	assert_true(h->n_held < MAX_HELD);
	h->held[h->n_held].fn = done;
	h->held[h->n_held].ctx = ctx;
	h->held[h->n_held].n = n;
	h->n_held++;
}

static const struct gateway_ops held_ops = { .commit = held_commit };

/* Complete the oldest held commit with result. */
static size_t complete(struct held_gw *h, int result)
{
	size_t n;

	assert_true(h->n_held > 0);
	n = h->held[0].n;
	h->held[0].fn(h->held[0].ctx, result);
	memmove(&h->held[0], &h->held[1], (h->n_held - 1) * sizeof(h->held[0]));
	h->n_held--;
	return n;
}

struct fixture {
	struct config *cfg;
	struct zone *zone;
	struct rotor *rotor;
	struct dns_ctx *dns;
	struct loop *loop;
	struct dnsserver *server;
	struct held_gw gw;
	struct sockaddr_in addr;
};

static int setup(void **state)
{
	struct config_errors errs = { 0 };
	struct fixture *f = calloc(1, sizeof(*f));
	struct sockaddr_in *sin;

	assert_non_null(f);
	assert_int_equal(config_load("tests/data/unit.conf", &f->cfg, &errs), 0);
	config_errors_free(&errs);
	assert_int_equal(zone_load(f->cfg, &f->zone), 0);
	f->rotor = rotor_new(f->cfg, NULL, NULL);
	f->dns = dns_ctx_new(f->cfg, f->zone, f->rotor);
	f->loop = loop_new();
	assert_non_null(f->dns);
	assert_non_null(f->loop);
	f->gw.gw.ops = &held_ops;
	/* a free port: try a few */
	sin = (struct sockaddr_in *)&f->cfg->listen[0];
	f->cfg->n_listen = 1;
	for (int i = 0; i < 20 && !f->server; i++) {
		sin->sin_port = htons((uint16_t)(20000 + (getpid() * 7 + i * 131) % 40000));
		f->server = dnsserver_new(f->cfg, f->dns, &f->gw.gw, f->loop);
	}
	assert_non_null(f->server);
	f->addr = *sin;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	/* whatever is still held completes before the server goes */
	while (f->gw.n_held)
		complete(&f->gw, -ECANCELED);
	dnsserver_free(f->server);
	loop_free(f->loop);
	dns_ctx_free(f->dns);
	rotor_free(f->rotor);
	zone_free(f->zone);
	config_free(f->cfg);
	free(f);
	return 0;
}

static size_t query(uint8_t *buf, uint16_t id, const char *name, uint16_t type)
{
	size_t n = 12;
	const char *p = name;

	memset(buf, 0, 12);
	buf[0] = (uint8_t)(id >> 8);
	buf[1] = (uint8_t)id;
	buf[5] = 1; /* QDCOUNT */
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);

		buf[n++] = (uint8_t)len;
		memcpy(buf + n, p, len);
		n += len;
		p += len + (dot ? 1 : 0);
	}
	buf[n++] = 0;
	buf[n++] = (uint8_t)(type >> 8);
	buf[n++] = (uint8_t)type;
	buf[n++] = 0;
	buf[n++] = 1;
	return n;
}

static void spin(struct fixture *f, int rounds)
{
	for (int i = 0; i < rounds; i++)
		loop_run_once(f->loop, 10);
}

/* Whether fd has bytes to read now. */
static bool readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

struct answer {
	uint16_t id;
	int rcode;
	unsigned ancount;
};

static struct answer parse(const uint8_t *b, ssize_t n)
{
	struct answer a = { 0 };

	assert_true(n >= 12);
	a.id = (uint16_t)(b[0] << 8 | b[1]);
	a.rcode = b[3] & 0x0f;
	a.ancount = (unsigned)(b[6] << 8 | b[7]);
	return a;
}

static int udp_client(struct fixture *f)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&f->addr, sizeof(f->addr)), 0);
	return fd;
}

static struct answer udp_recv(int fd)
{
	uint8_t buf[4096] = { 0 };
	ssize_t n = recv(fd, buf, sizeof(buf), 0);

	return parse(buf, n);
}

static void test_udp_waits_for_its_commit(void **state)
{
	struct fixture *f = *state;
	int a = udp_client(f), b = udp_client(f);
	uint8_t q[512];
	size_t qlen;
	struct answer ans;

	/* a rotated query: its commit is held, so is its answer */
	qlen = query(q, 1, "www.example.test", 1);
	assert_true(send(a, q, qlen, 0) > 0);
	spin(f, 5);
	assert_int_equal(f->gw.n_held, 1);
	assert_int_equal(f->gw.held[0].n, 2); /* bind + open */
	assert_false(readable(a));
	/* meanwhile a static name is answered at once */
	qlen = query(q, 2, "example.test", 6);
	assert_true(send(b, q, qlen, 0) > 0);
	spin(f, 5);
	assert_true(readable(b));
	ans = udp_recv(b);
	assert_int_equal(ans.id, 2);
	assert_int_equal(ans.rcode, 0);
	/* and another rotated batch gets a commit of its own */
	qlen = query(q, 3, "www.example.test", 28);
	assert_true(send(b, q, qlen, 0) > 0);
	spin(f, 5);
	assert_int_equal(f->gw.n_held, 2);
	assert_int_equal(dnsserver_get_stats(f->server)->commits_pending, 2);
	assert_false(readable(a));
	assert_false(readable(b));
	/* the first completes: its answer, with the address, leaves */
	complete(&f->gw, 0);
	spin(f, 2);
	assert_true(readable(a));
	ans = udp_recv(a);
	assert_int_equal(ans.id, 1);
	assert_int_equal(ans.rcode, 0);
	assert_int_equal(ans.ancount, 1);
	/* the second fails: SERVFAIL, never the address */
	complete(&f->gw, -EIO);
	spin(f, 2);
	assert_true(readable(b));
	ans = udp_recv(b);
	assert_int_equal(ans.id, 3);
	assert_int_equal(ans.rcode, 2);
	assert_int_equal(ans.ancount, 0);
	assert_int_equal(dnsserver_get_stats(f->server)->commits_pending, 0);
	assert_int_equal(dnsserver_get_stats(f->server)->commit_failures, 1);
	close(a);
	close(b);
}

static int tcp_client(struct fixture *f)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&f->addr, sizeof(f->addr)), 0);
	return fd;
}

static void tcp_send(int fd, const uint8_t *q, size_t n)
{
	uint8_t buf[600];

	buf[0] = (uint8_t)(n >> 8);
	buf[1] = (uint8_t)n;
	memcpy(buf + 2, q, n);
	assert_int_equal(send(fd, buf, n + 2, 0), (ssize_t)(n + 2));
}

static struct answer tcp_recv(int fd)
{
	uint8_t len[2] = { 0 }, buf[65536] = { 0 };
	size_t n, got = 0;

	assert_int_equal(recv(fd, len, 2, MSG_WAITALL), 2);
	n = (size_t)(len[0] << 8 | len[1]);
	while (got < n) {
		ssize_t r = recv(fd, buf + got, n - got, 0);

		assert_true(r > 0);
		got += (size_t)r;
	}
	return parse(buf, (ssize_t)n);
}

static void test_tcp_in_order_after_its_commit(void **state)
{
	struct fixture *f = *state;
	int a = tcp_client(f), b = tcp_client(f);
	uint8_t q[512], all[1800];
	size_t n = 0, qlen;
	struct answer ans;

	spin(f, 3); /* accept both */
	/* static, rotated, static in one write: one commit for the read */
	for (int i = 0; i < 3; i++) {
		size_t len = query(q, (uint16_t)(10 + i), i == 1 ? "www.example.test" :
				   "example.test", i == 1 ? 1 : 6);

		all[n++] = (uint8_t)(len >> 8);
		all[n++] = (uint8_t)len;
		memcpy(all + n, q, len);
		n += len;
	}
	assert_int_equal(send(a, all, n, 0), (ssize_t)n);
	spin(f, 5);
	assert_int_equal(f->gw.n_held, 1);
	assert_false(readable(a)); /* in order: even the static first one waits */
	/* another connection is served meanwhile */
	qlen = query(q, 20, "example.test", 6);
	tcp_send(b, q, qlen);
	spin(f, 5);
	assert_true(readable(b));
	assert_int_equal(tcp_recv(b).id, 20);
	complete(&f->gw, 0);
	spin(f, 3);
	for (int i = 0; i < 3; i++) {
		ans = tcp_recv(a);
		assert_int_equal(ans.id, 10 + i);
		assert_int_equal(ans.rcode, 0);
	}
	/* a failed commit: the rotated answer is SERVFAIL, in its place */
	assert_int_equal(send(a, all, n, 0), (ssize_t)n);
	spin(f, 5);
	complete(&f->gw, -EIO);
	spin(f, 3);
	for (int i = 0; i < 3; i++) {
		ans = tcp_recv(a);
		assert_int_equal(ans.id, 10 + i);
		assert_int_equal(ans.rcode, i == 1 ? 2 : 0);
	}
	close(a);
	close(b);
}

static void test_tcp_gone_while_held(void **state)
{
	struct fixture *f = *state;
	int a = tcp_client(f), b;
	uint8_t q[512];
	size_t qlen;

	spin(f, 3);
	qlen = query(q, 30, "www.example.test", 1);
	tcp_send(a, q, qlen);
	spin(f, 5);
	assert_int_equal(f->gw.n_held, 1);
	close(a);
	spin(f, 5); /* the server sees it go */
	complete(&f->gw, 0); /* its answers have nowhere to go: dropped */
	spin(f, 3);
	assert_int_equal(dnsserver_get_stats(f->server)->commits_pending, 0);
	/* the slot is usable again */
	b = tcp_client(f);
	spin(f, 3);
	qlen = query(q, 31, "example.test", 6);
	tcp_send(b, q, qlen);
	spin(f, 5);
	assert_int_equal(tcp_recv(b).id, 31);
	close(b);
}

/* ---- TCP limits ------------------------------------------------------------------ */

static int tcp_client_from(struct fixture *f, const char *src)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(inet_pton(AF_INET, src, &sin.sin_addr), 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&f->addr, sizeof(f->addr)), 0);
	return fd;
}

/* The server has closed fd (after some spins). */
static bool closed_by_server(struct fixture *f, int fd)
{
	uint8_t b[64];

	for (int i = 0; i < 20; i++) {
		spin(f, 2);
		if (readable(fd)) {
			ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);

			if (n == 0 || (n < 0 && errno == ECONNRESET))
				return true;
		}
	}
	return false;
}

static void test_tcp_per_source(void **state)
{
	struct fixture *f = *state;
	int a[3], other;
	uint8_t q[512];
	size_t qlen = query(q, 40, "example.test", 6);

	f->cfg->tcp_per_source = 2;
	for (int i = 0; i < 3; i++) {
		a[i] = tcp_client_from(f, "127.0.0.1");
		spin(f, 2);
	}
	/* the third of one source is refused, and counted */
	assert_true(closed_by_server(f, a[2]));
	assert_int_equal(dnsserver_get_stats(f->server)->tcp_refused_source, 1);
	assert_int_equal(dnsserver_get_stats(f->server)->tcp_open, 2);
	/* another source is served meanwhile */
	other = tcp_client_from(f, "127.0.0.2");
	spin(f, 3);
	tcp_send(other, q, qlen);
	spin(f, 5);
	assert_int_equal(tcp_recv(other).id, 40);
	/* one of the first source goes: one more of it may come */
	close(a[0]);
	close(a[2]);
	spin(f, 5);
	a[0] = tcp_client_from(f, "127.0.0.1");
	spin(f, 3);
	tcp_send(a[0], q, qlen);
	spin(f, 5);
	assert_int_equal(tcp_recv(a[0]).id, 40);
	assert_int_equal(dnsserver_get_stats(f->server)->tcp_refused_source, 1);
	close(a[0]);
	close(a[1]);
	close(other);
}

/* A connection must send its first message, and each message whole, within
 * tcp_deadline; between messages tcp_timeout applies. */
static void test_tcp_deadlines(void **state)
{
	struct fixture *f = *state;
	int silent = tcp_client(f), byte = tcp_client(f), good = tcp_client(f);
	uint8_t q[512];
	size_t qlen = query(q, 50, "example.test", 6);
	uint64_t t0 = log_now_ms();
	const struct dnsserver_stats *st = dnsserver_get_stats(f->server);

	f->cfg->tcp_deadline = 2;
	f->cfg->tcp_timeout = 10;
	spin(f, 3);
	/* no input buffer before a byte comes */
	dnsserver_tick(f->server, t0);
	assert_int_equal(st->tcp_open, 3);
	assert_int_equal(st->tcp_inbuf, 0);
	assert_int_equal(send(byte, "\0", 1, 0), 1); /* a message begun */
	tcp_send(good, q, qlen);
	spin(f, 5);
	assert_int_equal(tcp_recv(good).id, 50);
	/* a small one for the message begun; none once a message is done */
	dnsserver_tick(f->server, t0);
	assert_true(st->tcp_inbuf > 0);
	assert_true(st->tcp_inbuf <= 1024);
	dnsserver_tick(f->server, t0 + 1000);
	assert_int_equal(st->tcp_open, 3);
	dnsserver_tick(f->server, log_now_ms() + 2000);
	/* the silent one and the one with half a message: cut at the deadline */
	assert_int_equal(st->tcp_slow, 2);
	assert_int_equal(st->tcp_open, 1);
	assert_true(closed_by_server(f, silent));
	assert_true(closed_by_server(f, byte));
	/* the one that sent a whole message waits for the idle timeout */
	dnsserver_tick(f->server, t0 + 9000);
	assert_int_equal(st->tcp_open, 1);
	dnsserver_tick(f->server, log_now_ms() + 10000);
	assert_int_equal(st->tcp_timeouts, 1);
	assert_int_equal(st->tcp_open, 0);
	close(silent);
	close(byte);
	close(good);
	/* with a shorter tcp_timeout, that is the deadline */
	f->cfg->tcp_timeout = 1;
	silent = tcp_client(f);
	spin(f, 3);
	assert_int_equal(st->tcp_open, 1);
	dnsserver_tick(f->server, log_now_ms() + 1000);
	assert_int_equal(st->tcp_slow, 3);
	assert_int_equal(st->tcp_open, 0);
	close(silent);
}

/* A client that pipelines and does not read: choreod answers up to
 * tcp_output and leaves the rest in the input buffer; once the client
 * reads, all are answered, in order. */
static void test_tcp_output_cap(void **state)
{
	enum { N = 600 };
	struct fixture *f = *state;
	int fd = socket(AF_INET, SOCK_STREAM, 0), small = 2048;
	const struct dnsserver_stats *st = dnsserver_get_stats(f->server);
	static uint8_t all[N * 40];
	size_t n = 0, sent = 0;
	uint8_t q[512];
	int got = 0;

	assert_true(fd >= 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&f->addr, sizeof(f->addr)), 0);
	f->cfg->tcp_output = 1024;
	for (int i = 0; i < N; i++) {
		size_t qlen = query(q, (uint16_t)(1000 + i), "example.test", 6);

		all[n++] = (uint8_t)(qlen >> 8);
		all[n++] = (uint8_t)qlen;
		memcpy(all + n, q, qlen);
		n += qlen;
	}
	assert_true(n <= sizeof(all));
	for (int i = 0; i < 200 && sent < n; i++) {
		ssize_t w = send(fd, all + sent, n - sent, MSG_DONTWAIT);

		if (w > 0)
			sent += (size_t)w;
		spin(f, 1);
	}
	assert_int_equal(sent, n);
	spin(f, 20);
	dnsserver_tick(f->server, log_now_ms());
	/* not all answered: the rest wait for the client to read */
	assert_true(st->tcp_paused > 0);
	assert_true(st->tcp_queries < N);
	/* what choreod holds: up to the cap, and the answer that crossed it */
	assert_true(st->tcp_queued <= 1024 + 2 + 512);
	/* the client reads: every answer comes, in order */
	for (int i = 0; i < 20000 && got < N; i++) {
		spin(f, 1);
		while (readable(fd) && got < N) {
			assert_int_equal(tcp_recv(fd).id, 1000 + got);
			got++;
		}
	}
	assert_int_equal(got, N);
	assert_int_equal(st->tcp_queries, N);
	close(fd);
}

/* The same client, never reading: cut at the deadline, and counted. */
static void test_tcp_stalled(void **state)
{
	enum { N = 600 };
	struct fixture *f = *state;
	int fd = socket(AF_INET, SOCK_STREAM, 0), small = 2048;
	const struct dnsserver_stats *st = dnsserver_get_stats(f->server);
	static uint8_t all[N * 40];
	size_t n = 0, sent = 0;
	uint8_t q[512];

	assert_true(fd >= 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&f->addr, sizeof(f->addr)), 0);
	f->cfg->tcp_output = 1024;
	f->cfg->tcp_deadline = 2;
	for (int i = 0; i < N; i++) {
		size_t qlen = query(q, (uint16_t)i, "example.test", 6);

		all[n++] = (uint8_t)(qlen >> 8);
		all[n++] = (uint8_t)qlen;
		memcpy(all + n, q, qlen);
		n += qlen;
	}
	for (int i = 0; i < 200 && sent < n; i++) {
		ssize_t w = send(fd, all + sent, n - sent, MSG_DONTWAIT);

		if (w > 0)
			sent += (size_t)w;
		spin(f, 1);
	}
	spin(f, 20);
	dnsserver_tick(f->server, log_now_ms() + 1000);
	assert_int_equal(st->tcp_open, 1);
	dnsserver_tick(f->server, log_now_ms() + 2100);
	assert_int_equal(st->tcp_stalled, 1);
	assert_int_equal(st->tcp_open, 0);
	close(fd);
}

/* Several rotated queries in one write: one commit; a message larger than
 * the first input buffer, sent in two parts, is read whole. */
static void test_tcp_one_commit_per_read(void **state)
{
	struct fixture *f = *state;
	int a = tcp_client(f);
	uint8_t q[512], all[1800], big[3000] = { 0 };
	size_t n = 0, qlen;

	spin(f, 3);
	for (int i = 0; i < 6; i++) {
		size_t len = query(q, (uint16_t)(60 + i), "www.example.test", i % 2 ? 28 : 1);

		all[n++] = (uint8_t)(len >> 8);
		all[n++] = (uint8_t)len;
		memcpy(all + n, q, len);
		n += len;
	}
	assert_int_equal(send(a, all, n, 0), (ssize_t)n);
	spin(f, 5);
	assert_int_equal(f->gw.n_held, 1);
	assert_true(f->gw.held[0].n >= 6); /* the changes of all six */
	assert_int_equal(dnsserver_get_stats(f->server)->commits, 1);
	complete(&f->gw, 0);
	spin(f, 3);
	for (int i = 0; i < 6; i++)
		assert_int_equal(tcp_recv(a).id, 60 + i);
	/* 2998 bytes: a query followed by junk; answered (FORMERR or not) */
	qlen = query(big + 2, 70, "example.test", 6);
	(void)qlen;
	big[0] = (uint8_t)(2998 >> 8);
	big[1] = (uint8_t)(2998 & 0xff);
	assert_int_equal(send(a, big, 1500, 0), 1500);
	spin(f, 5);
	assert_false(readable(a));
	assert_int_equal(send(a, big + 1500, 1500, 0), 1500);
	spin(f, 5);
	assert_true(readable(a));
	assert_int_equal(tcp_recv(a).id, 70);
	close(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_udp_waits_for_its_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_in_order_after_its_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_gone_while_held, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_per_source, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_deadlines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_output_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_stalled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_one_commit_per_read, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
