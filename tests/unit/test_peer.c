// SPDX-License-Identifier: MIT
/*
 * The distributed mode's connections and commits in one process
 * (src/peer.c, src/gw_remote.c, src/gw_agent.c, docs/protocol.md): a DNS
 * node (gw_remote) and gateways (gw_agent over a recording gateway double)
 * talk over real TCP on 127.0.0.1, all in ONE event loop that the test
 * runs a bounded number of times. Where a gateway must misbehave (not
 * answer, answer out of order, name itself wrongly) a "fake" gateway
 * written here from protocol.md with frame.h speaks for it, driven step by
 * step by the test.
 *
 * Time: peers_tick() is called by the test only, sometimes with a clock
 * ahead of the real one (back-off, idle); commit_timeout runs on the real
 * clock (a timerfd), so those tests wait for it, with a loose upper bound.
 *
 * CHOREO_PEER_SEED=N picks the property test's seed; CHOREO_PEER_LOG=1
 * shows choreod's log lines.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include "cmocka_analyzer.h"

#include "config.h"
#include "crypto.h"
#include "frame.h"
#include "gateway.h"
#include "gw_agent.h"
#include "gw_remote.h"
#include "log.h"
#include "loop.h"
#include "peer.h"

#define N_GW          2
#define KEY_GOOD      "choreo unit test psk: 0123456789abcdef\n"
#define KEY_BAD       "choreo unit test psk: fedcba9876543210\n"
#define SVC_WWW       0
#define SVC_MAIL      1
#define N_SERVICES    2

/* ---- events, in the order they happened ------------------------------------ */

static unsigned ev_seq;

/* What one gateway_commit's done() saw. */
struct done_rec {
	int calls;
	int result;
	unsigned seq;        /* ev_seq when (last) called */
	uint64_t at_ms;
};

static void on_done(void *ctx, int result)
{
	struct done_rec *d = ctx;

	d->calls++;
	d->result = result;
	d->seq = ++ev_seq;
	d->at_ms = log_now_ms();
}

/* ---- the gateway double ----------------------------------------------------- */

/* Records every change it is given, completes at once with ->result. */
struct rec_gw {
	struct gateway gw;
	int result;
	size_t commits;          /* calls of commit */
	size_t sizes[64];        /* n of the first 64 calls */
	struct change *c;        /* every change given, in order */
	size_t n, cap;
	unsigned seq;            /* ev_seq of the last commit */
	const struct done_rec *watch; /* its calls when a commit came: */
	int watch_calls;
};

static void rec_commit(struct gateway *gw, const struct change *c, size_t n,
		       gateway_done_fn done, void *ctx)
{
	struct rec_gw *r = container_of(gw, struct rec_gw, gw);

	if (r->n + n > r->cap) {
		size_t cap = r->cap ? r->cap : 64;

		while (cap < r->n + n)
			cap *= 2;
		r->c = realloc(r->c, cap * sizeof(*r->c));
		assert_non_null(r->c);
		r->cap = cap;
	}
	memcpy(r->c + r->n, c, n * sizeof(*c));
	r->n += n;
	if (r->commits < 64)
		r->sizes[r->commits] = n;
	r->commits++;
	r->seq = ++ev_seq;
	if (r->watch)
		r->watch_calls = r->watch->calls;
	done(ctx, r->result);
}

/* The windows the double's table "holds": what a DNS node gets at connect. */
static struct change rec_windows[4];
static size_t n_rec_windows;

static int rec_windows_op(struct gateway *gw, gateway_window_fn *fn, void *ctx)
{
	(void)gw;
	for (size_t i = 0; i < n_rec_windows; i++)
		fn(ctx, &rec_windows[i]);
	return 0;
}

static const struct gateway_ops rec_ops = { .commit = rec_commit,
					    .windows = rec_windows_op };

/* ---- changes ------------------------------------------------------------------ */

/* A change of service svc for the pool address ending in x (www: 203.0.113.x
 * or 2001:db8:1::x; mail: 198.51.100.x). */
static struct change chg(uint8_t kind, int family, uint16_t svc, uint8_t x)
{
	struct change c;

	memset(&c, 0, sizeof(c));
	c.kind = kind;
	c.family = (uint8_t)family;
	c.service = svc;
	c.ms = 6000 + x; /* within window + grace (the gateways have window 5 or 7, grace 2 s): longer is refused */
	if (family == AF_INET6) {
		static const uint8_t p6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1 };

		memcpy(c.addr, p6, 16);
		c.addr[15] = x;
	} else {
		c.addr[0] = svc == SVC_WWW ? 203 : 198;
		c.addr[1] = svc == SVC_WWW ? 0 : 51;
		c.addr[2] = svc == SVC_WWW ? 113 : 100;
		c.addr[3] = x;
	}
	if (kind == CHANGE_BIND) {
		c.src_len = family == AF_INET6 ? 128 : 32;
		c.src[0] = family == AF_INET6 ? 0x20 : 192;
		c.src[1] = family == AF_INET6 ? 0x01 : 0;
		c.src[2] = 2;
		c.src[3] = 99;
	} else if (kind == CHANGE_OPEN_SCOPED) {
		c.src_len = 24;
		c.src[0] = 10;
		c.src[1] = 1;
		c.src[2] = x;
	}
	return c;
}

static bool same_change(const struct change *a, const struct change *b)
{
	return a->kind == b->kind && a->family == b->family &&
	       a->src_len == b->src_len && a->service == b->service &&
	       a->ms == b->ms && memcmp(a->addr, b->addr, 16) == 0 &&
	       memcmp(a->src, b->src, 16) == 0;
}

/* r recorded exactly want[0..n), in order. */
static void assert_recorded(const struct rec_gw *r, const struct change *want, size_t n)
{
	assert_int_equal(r->n, n);
	for (size_t i = 0; i < n; i++)
		if (!same_change(&r->c[i], &want[i]))
			fail_msg("change %zu of %zu differs", i, n);
}

/* ---- the fixture ------------------------------------------------------------------ */

struct gw_node {
	struct config *cfg;
	struct gw_agent *agent;
	struct rec_gw rec;
	uint16_t port;
};

/* A gateway written here from protocol.md: the test drives it. */
struct fake {
	int lfd, fd;
	uint16_t port;
	const char *name;        /* the gateway it is */
	struct psk psk;
	uint8_t k_hello[FRAME_KEY_LEN], k_rx[FRAME_KEY_LEN], k_tx[FRAME_KEY_LEN];
	uint64_t tx_seq;
	struct frame_rx rx;
	uint8_t in[65536];
	size_t in_len;
	size_t accepts;
	bool no_windows;         /* the handshake sends no WINDOWS after it */
};

/* [daemon] on_gateway_down of the next dns_start (reset by setup). */
static const char *dns_gateway_down = "servfail";

struct fx {
	char dir[64];
	char key_good[128], key_bad[128];
	struct loop *loop;
	struct config *dcfg;
	struct gw_remote *remote;
	struct gw_node g[N_GW];
	struct fake *fake;
	uint64_t clock;          /* the last time given to a DNS node's tick */
	struct change seeded[16]; /* windows offered to the DNS node's seed */
	size_t n_seeded;
};

/* The DNS node's seed: records the window; counts it when it lies in
 * dns1's slices (203.0.113.0/26, 198.51.100.0/27; IPv6 not counted). */
static int seed_rec(void *ctx, const struct change *c)
{
	struct fx *f = ctx;

	if (f->n_seeded < 16)
		f->seeded[f->n_seeded++] = *c;
	if (c->family == AF_INET && c->service == SVC_WWW && c->addr[3] < 64)
		return 0;
	if (c->family == AF_INET && c->service == SVC_MAIL && c->addr[3] < 32)
		return 0;
	return -EINVAL;
}

static void write_key(const char *path, const char *secret)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, secret, strlen(secret)), (ssize_t)strlen(secret));
	assert_int_equal(fchmod(fd, 0600), 0);
	close(fd);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	dns_gateway_down = "servfail";
	snprintf(f->dir, sizeof(f->dir), "/tmp/choreo-test-peer.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->key_good, sizeof(f->key_good), "%s/psk1", f->dir);
	snprintf(f->key_bad, sizeof(f->key_bad), "%s/psk1-other", f->dir);
	write_key(f->key_good, KEY_GOOD);
	write_key(f->key_bad, KEY_BAD);
	f->loop = loop_new();
	assert_non_null(f->loop);
	ev_seq = 0;
	*state = f;
	return 0;
}

static void fake_close(struct fake *fk)
{
	if (fk->fd >= 0)
		close(fk->fd);
	fk->fd = -1;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	gw_remote_free(f->remote);
	config_free(f->dcfg);
	for (size_t i = 0; i < N_GW; i++) {
		gw_agent_free(f->g[i].agent);
		config_free(f->g[i].cfg);
		free(f->g[i].rec.c);
	}
	if (f->fake) {
		fake_close(f->fake);
		if (f->fake->lfd >= 0)
			close(f->fake->lfd);
		psk_wipe(&f->fake->psk);
		free(f->fake);
	}
	loop_free(f->loop);
	unlink(f->key_good);
	unlink(f->key_bad);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* A port nobody listens on now (the kernel's choice of a free one). */
static uint16_t free_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

static struct config *parse(const char *text)
{
	struct config_errors errs = { 0 };
	struct config *cfg = NULL;
	int ret = config_parse("peer.conf", text, strlen(text), &cfg, &errs);

	for (size_t i = 0; i < errs.n; i++)
		print_error("config: %s\n", errs.msg[i]);
	config_errors_free(&errs);
	assert_int_equal(ret, 0);
	return cfg;
}

/* The [service] sections; a DNS node's with its slices and shares. */
static void services(char *buf, size_t cap, bool dns, unsigned www_window,
		     const char *www_gateways)
{
	size_t n = strlen(buf);

	n += (size_t)snprintf(buf + n, cap - n,
		"[service www]\n"
		"name = www.example.test\n"
		"pool = 203.0.113.0/25\n"
		"pool6 = 2001:db8:1::/64\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n"
		"server6 = 2001:db8:2::10\n"
		"honeypot6 = 2001:db8:2::20\n"
		"max_open = 16\n"
		"window = %u\n", www_window);
	if (dns)
		n += (size_t)snprintf(buf + n, cap - n,
			"slice = 203.0.113.0/26\n"
			"slice6 = 2001:db8:1::/65\n"
			"share = 8\n");
	if (dns && www_gateways)
		n += (size_t)snprintf(buf + n, cap - n, "gateways = %s\n", www_gateways);
	n += (size_t)snprintf(buf + n, cap - n,
		"[service mail]\n"
		"name = mail.example.test\n"
		"pool = 198.51.100.0/26\n"
		"server = 192.0.2.11\n"
		"honeypot = 192.0.2.21\n"
		"max_open = 16\n"
		"window = 5\n");
	if (dns)
		n += (size_t)snprintf(buf + n, cap - n,
			"slice = 198.51.100.0/27\n"
			"share = 8\n");
	assert_true(n < cap);
}

/* Start gateway i ("gw1", ...) on a free port, recording through g[i].rec. */
static void gw_start(struct fx *f, size_t i, const char *name, const char *key,
		     unsigned www_window, const char *dns_name)
{
	struct gw_node *g = &f->g[i];
	char text[4096];
	int ret = -EADDRINUSE;

	g->rec.gw.ops = &rec_ops;
	for (int tries = 0; tries < 10 && ret == -EADDRINUSE; tries++) {
		config_free(g->cfg);
		g->port = free_port();
		snprintf(text, sizeof(text),
			 "[daemon]\n"
			 "role = gateway\n"
			 "name = %s\n"
			 "peer_listen = 127.0.0.1:%u\n"
			 "[key 1]\n"
			 "file = %s\n"
			 "[peer %s]\n"
			 "role = dns\n"
			 "key = 1\n", name, g->port, key, dns_name);
		services(text, sizeof(text), false, www_window, NULL);
		g->cfg = parse(text);
		ret = gw_agent_new(g->cfg, f->loop, &g->rec.gw, &g->agent);
	}
	assert_int_equal(ret, 0);
}

/* Start it again on its port (its configuration and double are kept). */
static void gw_restart(struct fx *f, size_t i)
{
	struct gw_node *g = &f->g[i];
	int ret = -EADDRINUSE;

	assert_null(g->agent);
	for (int tries = 0; tries < 50 && ret == -EADDRINUSE; tries++) {
		ret = gw_agent_new(g->cfg, f->loop, &g->rec.gw, &g->agent);
		if (ret == -EADDRINUSE)
			usleep(10000);
	}
	assert_int_equal(ret, 0);
}

static void gw_stop(struct fx *f, size_t i)
{
	gw_agent_free(f->g[i].agent);
	f->g[i].agent = NULL;
}

struct dns_peer {
	const char *name;
	uint16_t port;
};

/* Start the DNS node: it connects to each peer at once. */
static void dns_start(struct fx *f, const char *name, const char *key,
		      const struct dns_peer *peers, size_t n_peers,
		      const char *www_gateways, unsigned commit_timeout)
{
	char text[4096];
	size_t n;

	n = (size_t)snprintf(text, sizeof(text),
		"[daemon]\n"
		"role = dns\n"
		"name = %s\n"
		"on_gateway_down = %s\n"
		"commit_timeout = %u\n"
		"[dns]\n"
		"listen = 127.0.0.1:5353\n"
		"zone = example.test\n"
		"zonefile = /nonexistent/unit.zone\n"
		"[key 1]\n"
		"file = %s\n", name, dns_gateway_down, commit_timeout, key);
	for (size_t i = 0; i < n_peers; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
			"[peer %s]\n"
			"role = gateway\n"
			"address = 127.0.0.1:%u\n"
			"key = 1\n", peers[i].name, peers[i].port);
	assert_true(n < sizeof(text));
	services(text, sizeof(text), true, 7, www_gateways);
	f->dcfg = parse(text);
	f->clock = log_now_ms();
	assert_int_equal(gw_remote_new(f->dcfg, f->loop, seed_rec, f, &f->remote), 0);
}

static struct gateway *remote_gw(struct fx *f)
{
	return gw_remote_gateway(f->remote);
}

static struct gw_remote_stats rstats(struct fx *f)
{
	struct gw_remote_stats st;

	gw_remote_get_stats(f->remote, &st);
	return st;
}

static struct gw_agent_stats astats(struct fx *f, size_t i)
{
	struct gw_agent_stats st;

	gw_agent_get_stats(f->g[i].agent, &st);
	return st;
}

static struct peers_stats dns_pstats(struct fx *f)
{
	struct peers_stats st;

	peers_get_stats(gw_remote_peers(f->remote), log_now_ms(), &st);
	return st;
}

static struct peers_stats gw_pstats(struct fx *f, size_t i)
{
	struct peers_stats st;

	peers_get_stats(gw_agent_peers(f->g[i].agent), log_now_ms(), &st);
	return st;
}

/* The DNS node's link to its peer is up and takes commits (the gateway's
 * windows have come). */
static bool dns_up(struct fx *f, size_t peer)
{
	return dns_pstats(f).link[peer].up && gw_remote_ready(f->remote, peer);
}

/* Gateway i's link to its DNS node (its peer 0) is up. */
static bool gw_up(struct fx *f, size_t i)
{
	return f->g[i].agent && gw_pstats(f, i).link[0].up;
}

/* Run the loop until cond holds or max_ms passed; the value of cond. */
#define RUN_UNTIL(f, cond, max_ms) __extension__ ({                       \
	uint64_t end_ = log_now_ms() + (uint64_t)(max_ms);                \
	while (!(cond) && log_now_ms() < end_)                            \
		loop_run_once((f)->loop, 2);                              \
	(cond); })

/* Run the loop for about ms. */
static void spin(struct fx *f, int ms)
{
	uint64_t end = log_now_ms() + (uint64_t)ms;

	while (log_now_ms() < end)
		loop_run_once(f->loop, 2);
}

/* A DNS node's tick at a time at least ahead_ms past both the real clock
 * and the last tick's (reconnects wait for their back-off). */
static void dns_tick_ahead(struct fx *f, uint64_t ahead_ms)
{
	uint64_t now = log_now_ms();

	if (f->clock > now)
		now = f->clock;
	f->clock = now + ahead_ms;
	gateway_tick(remote_gw(f), f->clock);
}

/* The usual setting: gateway 0 ("gw1"), and the DNS node connected to it. */
static void one_gateway(struct fx *f, unsigned commit_timeout)
{
	struct dns_peer p;

	gw_start(f, 0, "gw1", f->key_good, 7, "dns1");
	p = (struct dns_peer){ "gw1", f->g[0].port };
	dns_start(f, "dns1", f->key_good, &p, 1, NULL, commit_timeout);
	assert_true(RUN_UNTIL(f, dns_up(f, 0) && gw_up(f, 0), 2000));
}

/* ---- the fake gateway ---------------------------------------------------------- */

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct fake *fake_new(struct fx *f, const char *name, const char *secret)
{
	struct fake *fk = calloc(1, sizeof(*fk));
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	size_t slen = strlen(secret);

	assert_non_null(fk);
	f->fake = fk;
	fk->fd = -1;
	fk->name = name;
	fk->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fk->lfd >= 0);
	assert_int_equal(bind(fk->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fk->lfd, 16), 0);
	assert_int_equal(getsockname(fk->lfd, (struct sockaddr *)&sin, &len), 0);
	fk->port = ntohs(sin.sin_port);
	/* the key as keyfile.c reads it: trailing newlines are not the key */
	while (slen && secret[slen - 1] == '\n')
		slen--;
	fk->psk.id = 1;
	fk->psk.len = slen;
	memcpy(fk->psk.bytes, secret, slen);
	assert_int_equal(frame_hello_key(&fk->psk, fk->k_hello), 0);
	return fk;
}

static bool fd_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

/* Accept the DNS node's next connection (running the loop meanwhile). */
static void fake_accept(struct fx *f, struct fake *fk)
{
	assert_true(RUN_UNTIL(f, fd_readable(fk->lfd), 2000));
	fake_close(fk);
	fk->fd = accept4(fk->lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(fk->fd >= 0);
	fk->accepts++;
	fk->in_len = 0;
	fk->tx_seq = 0;
	fk->rx = (struct frame_rx){ 0 };
}

/* The next whole frame at fk->in: its length, or 0 when the other end
 * closed. Runs the loop while waiting (at most max_ms). */
static size_t fake_read(struct fx *f, struct fake *fk, int max_ms)
{
	uint64_t end = log_now_ms() + (uint64_t)max_ms;

	for (;;) {
		ssize_t n;

		if (fk->in_len >= FRAME_HEADER_LEN) {
			size_t total = FRAME_OVERHEAD + ((size_t)fk->in[8] << 24 |
				(size_t)fk->in[9] << 16 | (size_t)fk->in[10] << 8 | fk->in[11]);

			assert_true(total <= sizeof(fk->in));
			if (fk->in_len >= total)
				return total;
		}
		n = recv(fk->fd, fk->in + fk->in_len, sizeof(fk->in) - fk->in_len,
			 MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return 0;
		if (n > 0) {
			fk->in_len += (size_t)n;
			continue;
		}
		assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
		if (log_now_ms() >= end)
			fail_msg("the fake gateway waited %d ms for a frame", max_ms);
		loop_run_once(f->loop, 2);
	}
}

static void fake_consume(struct fake *fk, size_t total)
{
	memmove(fk->in, fk->in + total, fk->in_len - total);
	fk->in_len -= total;
}

/* Read one frame of type want with every check of protocol.md; *payload
 * spans its payload in fk->in until fake_consume(*total). */
static void fake_recv(struct fx *f, struct fake *fk, uint8_t want, uint32_t cap,
		      const uint8_t *key, struct wire *payload, size_t *total)
{
	struct frame_header h;

	*total = fake_read(f, fk, 3000);
	assert_true(*total > 0);
	assert_int_equal(frame_header_decode(fk->in, cap, &h), 0);
	assert_int_equal(h.key_id, fk->psk.id);
	assert_int_equal(frame_verify_tag(fk->in, FRAME_HEADER_LEN + h.len,
					  fk->in + FRAME_HEADER_LEN + h.len, key), 0);
	assert_int_equal(frame_rx_accept(&fk->rx, &h, wall_ms()), 0);
	assert_int_equal(h.type, want);
	*payload = wire_init(fk->in + FRAME_HEADER_LEN, h.len);
}

/* Send one frame; its bytes go to copy (when given, with *copy_len). */
static void fake_send(struct fake *fk, uint8_t type, const uint8_t *key,
		      const uint8_t *payload, size_t len, uint8_t *copy,
		      size_t *copy_len)
{
	uint8_t buf[FRAME_MAX_HANDSHAKE_LEN];
	struct wire_out w = wire_out_init(buf, sizeof(buf));
	size_t n;

	assert_int_equal(frame_encode(&w, type, fk->psk.id, fk->tx_seq++, wall_ms(),
				      payload, len, key), 0);
	n = wire_out_len(&w);
	assert_int_equal(send(fk->fd, buf, n, MSG_NOSIGNAL), (ssize_t)n);
	if (copy) {
		memcpy(copy, buf, n);
		*copy_len = n;
	}
}

/* A WINDOWS frame with the DNS node's digest (so its windows count). */
static void fake_windows(struct fx *f, struct fake *fk, bool more,
			 const struct change *v, size_t n)
{
	uint8_t pl[FRAME_MAX_HANDSHAKE], digest[32];
	struct wire_out o = wire_out_init(pl, sizeof(pl));

	assert_int_equal(config_digest(f->dcfg, digest), 0);
	assert_int_equal(frame_windows_encode(&o, digest, more, v, n), 0);
	fake_send(fk, FRAME_WINDOWS, fk->k_tx, pl, wire_out_len(&o), NULL, NULL);
}

/*
 * The server's side of the handshake with the DNS node "dns1", the WELCOME
 * naming welcome_name. Returns whether the client's PROOF came (and the
 * fake's went); false when the client closed after the WELCOME.
 */
static bool fake_handshake(struct fx *f, struct fake *fk, const char *welcome_name)
{
	uint8_t hello[FRAME_MAX_HANDSHAKE_LEN], welcome[FRAME_MAX_HANDSHAKE_LEN];
	uint8_t pl[FRAME_MAX_HANDSHAKE], nonce[FRAME_NONCE_LEN], transcript[32];
	uint8_t digest[32];
	size_t hello_len, welcome_len, total;
	struct frame_hello hi;
	struct wire w;
	struct wire_out o = wire_out_init(pl, sizeof(pl));

	fake_accept(f, fk);
	fake_recv(f, fk, FRAME_HELLO, FRAME_MAX_HANDSHAKE, fk->k_hello, &w, &total);
	assert_int_equal(frame_hello_decode(&w, &hi), 0);
	assert_string_equal(hi.role, "dns");
	assert_string_equal(hi.name, "dns1");
	assert_string_equal(hi.server, fk->name);
	memcpy(hello, fk->in, total);
	hello_len = total;
	fake_consume(fk, total);

	assert_int_equal(crypto_random(nonce, sizeof(nonce)), 0);
	assert_int_equal(frame_welcome_encode(&o, nonce, "gateway", welcome_name), 0);
	fake_send(fk, FRAME_WELCOME, fk->k_hello, pl, wire_out_len(&o), welcome,
		  &welcome_len);
	assert_int_equal(frame_transcript(hello, hello_len, welcome, welcome_len,
					  transcript), 0);
	assert_int_equal(frame_session_keys(&fk->psk, hi.nonce, nonce, "dns", "dns1",
					    "gateway", welcome_name, fk->k_rx,
					    fk->k_tx), 0);
	if (fake_read(f, fk, 3000) == 0)
		return false;
	fake_recv(f, fk, FRAME_PROOF, FRAME_MAX_HANDSHAKE, fk->k_rx, &w, &total);
	assert_int_equal(frame_proof_decode(&w, digest), 0);
	assert_int_equal(frame_proof_check(digest, transcript), 0);
	fake_consume(fk, total);
	o = wire_out_init(pl, sizeof(pl));
	assert_int_equal(frame_proof_encode(&o, transcript), 0);
	fake_send(fk, FRAME_PROOF, fk->k_tx, pl, wire_out_len(&o), NULL, NULL);
	if (!fk->no_windows)
		fake_windows(f, fk, false, NULL, 0);
	return true;
}

/* The next CHANGES: its commit id; its changes into out (n of them). */
static uint32_t fake_changes(struct fx *f, struct fake *fk, struct change *out,
			     size_t max, size_t *n)
{
	struct frame_changes fc;
	struct wire w;
	size_t total;
	struct change c;
	uint32_t id;

	fake_recv(f, fk, FRAME_CHANGES, FRAME_MAX_PAYLOAD, fk->k_rx, &w, &total);
	assert_int_equal(frame_changes_decode(&w, N_SERVICES, &fc), 0);
	id = fc.commit_id;
	*n = 0;
	while (frame_changes_next(&fc, &c)) {
		assert_true(*n < max);
		out[(*n)++] = c;
	}
	fake_consume(fk, total);
	return id;
}

static void fake_ack(struct fake *fk, uint32_t commit_id, int result, uint16_t applied)
{
	uint8_t pl[FRAME_ACK_LEN];
	struct wire_out o = wire_out_init(pl, sizeof(pl));
	struct frame_ack ack = { commit_id, result, applied };

	assert_int_equal(frame_ack_encode(&o, &ack), 0);
	fake_send(fk, FRAME_ACK, fk->k_tx, pl, wire_out_len(&o), NULL, NULL);
}

/* ---- handshake and commit ---------------------------------------------------------- */

static void test_handshake_then_commit_in_order(void **state)
{
	struct fx *f = *state;
	struct peers_stats ps;
	struct done_rec d = { 0 }, p[3] = { { 0 } };
	struct change c[3] = {
		chg(CHANGE_BIND, AF_INET, SVC_WWW, 5),
		chg(CHANGE_OPEN, AF_INET6, SVC_WWW, 6),
		chg(CHANGE_OPEN_SCOPED, AF_INET, SVC_MAIL, 7),
	};
	struct change all[9];
	struct gateway_snapshot snap;

	one_gateway(f, 1000);
	/* both ends report the link up, once */
	ps = dns_pstats(f);
	assert_int_equal(ps.n_links, 1);
	assert_string_equal(ps.link[0].name, "gw1");
	assert_string_equal(ps.link[0].state, "up");
	assert_int_equal(ps.link[0].connects, 1);
	assert_int_equal(ps.link[0].last_down, PEER_R_COUNT);
	ps = gw_pstats(f, 0);
	assert_string_equal(ps.link[0].name, "dns1");
	assert_string_equal(ps.link[0].state, "up");
	assert_int_equal(ps.link[0].connects, 1);
	assert_int_equal(ps.accepted, 1);
	assert_int_equal(ps.unauth, 0);

	/* a commit: nothing is done when gateway_commit returns */
	f->g[0].rec.watch = &d;
	gateway_commit(remote_gw(f), c, 3, on_done, &d);
	assert_int_equal(d.calls, 0);
	/* the gateway applies it; done is not called before its ACK came
	 * back: not when the gateway applies, nor in the loop's turn in
	 * which it did */
	assert_true(RUN_UNTIL(f, f->g[0].rec.commits == 1, 2000));
	assert_int_equal(f->g[0].rec.watch_calls, 0);
	assert_int_equal(d.calls, 0);
	assert_true(RUN_UNTIL(f, d.calls > 0, 2000));
	assert_int_equal(d.result, 0);
	assert_true(d.seq > f->g[0].rec.seq);
	assert_recorded(&f->g[0].rec, c, 3);
	assert_int_equal(f->g[0].rec.sizes[0], 3);
	spin(f, 20);
	assert_int_equal(d.calls, 1);
	assert_int_equal(rstats(f).frames, 1);
	assert_int_equal(astats(f, 0).frames, 1);
	assert_int_equal(astats(f, 0).applied, 1);
	assert_int_equal(astats(f, 0).changes, 3);
	gateway_snapshot(remote_gw(f), &snap);
	assert_true(snap.remote);
	assert_int_equal(snap.commits, 1);
	assert_int_equal(snap.failures, 0);
	assert_int_equal(snap.elements, 3);

	/* three commits before any ACK: applied and completed in order */
	f->g[0].rec.watch = NULL;
	for (int i = 0; i < 3; i++)
		gateway_commit(remote_gw(f), &c[i], 1, on_done, &p[i]);
	assert_true(RUN_UNTIL(f, p[0].calls && p[1].calls && p[2].calls, 2000));
	for (int i = 0; i < 3; i++) {
		assert_int_equal(p[i].calls, 1);
		assert_int_equal(p[i].result, 0);
	}
	assert_true(p[0].seq < p[1].seq && p[1].seq < p[2].seq);
	memcpy(all, c, sizeof(c));
	memcpy(all + 3, c, sizeof(c));
	assert_recorded(&f->g[0].rec, all, 6);
	assert_int_equal(f->g[0].rec.commits, 4);
	assert_int_equal(rstats(f).frames, 4);
	/* an empty commit is done at once */
	gateway_commit(remote_gw(f), c, 0, on_done, &d);
	assert_int_equal(d.calls, 2);
	assert_int_equal(d.result, 0);
}

/* A commit larger than one frame: two CHANGES, done once both are ACKed. */
static void test_commit_over_two_frames(void **state)
{
	struct fx *f = *state;
	size_t n = FRAME_MAX_CHANGES + 3;
	struct change *c = calloc(n, sizeof(*c));
	struct done_rec d = { 0 };

	assert_non_null(c);
	one_gateway(f, 2000);
	for (size_t i = 0; i < n; i++)
		c[i] = chg(CHANGE_OPEN, AF_INET, SVC_WWW, (uint8_t)(i % 128));
	gateway_commit(remote_gw(f), c, n, on_done, &d);
	assert_true(RUN_UNTIL(f, d.calls > 0, 5000));
	assert_int_equal(d.result, 0);
	assert_int_equal(f->g[0].rec.commits, 2);
	assert_int_equal(f->g[0].rec.sizes[0], FRAME_MAX_CHANGES);
	assert_int_equal(f->g[0].rec.sizes[1], 3);
	assert_true(d.seq > f->g[0].rec.seq);
	assert_recorded(&f->g[0].rec, c, n);
	assert_int_equal(rstats(f).frames, 2);
	free(c);
}

/* ---- several gateways -------------------------------------------------------- */

/* gw1 and gw2 started, the DNS node connected to both; www on gw1 only. */
static void two_gateways(struct fx *f, unsigned commit_timeout)
{
	struct dns_peer p[2];

	gw_start(f, 0, "gw1", f->key_good, 7, "dns1");
	gw_start(f, 1, "gw2", f->key_good, 7, "dns1");
	p[0] = (struct dns_peer){ "gw1", f->g[0].port };
	p[1] = (struct dns_peer){ "gw2", f->g[1].port };
	dns_start(f, "dns1", f->key_good, p, 2, "gw1", commit_timeout);
	assert_true(RUN_UNTIL(f, dns_up(f, 0) && dns_up(f, 1) && gw_up(f, 0) &&
			      gw_up(f, 1), 2000));
}

static void test_each_gateway_gets_its_services(void **state)
{
	struct fx *f = *state;
	struct done_rec d = { 0 }, e = { 0 };
	struct change c[5] = {
		chg(CHANGE_BIND, AF_INET, SVC_WWW, 1),
		chg(CHANGE_OPEN, AF_INET, SVC_MAIL, 2),
		chg(CHANGE_OPEN, AF_INET6, SVC_WWW, 3),
		chg(CHANGE_BIND, AF_INET, SVC_MAIL, 4),
		chg(CHANGE_OPEN_SCOPED, AF_INET, SVC_MAIL, 5),
	};
	struct change mail[3] = { c[1], c[3], c[4] };

	two_gateways(f, 1000);
	gateway_commit(remote_gw(f), c, 5, on_done, &d);
	assert_int_equal(d.calls, 0);
	assert_true(RUN_UNTIL(f, d.calls > 0, 2000));
	assert_int_equal(d.result, 0);
	/* gw1 carries both services, gw2 only mail; in the commit's order */
	assert_recorded(&f->g[0].rec, c, 5);
	assert_recorded(&f->g[1].rec, mail, 3);
	assert_true(d.seq > f->g[0].rec.seq && d.seq > f->g[1].rec.seq);
	assert_int_equal(rstats(f).frames, 2);
	/* www alone: nothing goes to gw2 */
	gateway_commit(remote_gw(f), c, 1, on_done, &e);
	assert_true(RUN_UNTIL(f, e.calls > 0, 2000));
	assert_int_equal(e.result, 0);
	assert_int_equal(f->g[0].rec.commits, 2);
	assert_int_equal(f->g[1].rec.commits, 1);
	assert_int_equal(astats(f, 1).frames, 1);
	spin(f, 20);
	assert_int_equal(d.calls, 1);
	assert_int_equal(e.calls, 1);
}

/* gw1 real, gw2 the fake: done(0) only once both have ACKed. */
static void test_done_waits_for_every_gateway(void **state)
{
	struct fx *f = *state;
	struct done_rec d = { 0 }, e = { 0 };
	struct change c[2] = {
		chg(CHANGE_OPEN, AF_INET, SVC_WWW, 1),
		chg(CHANGE_OPEN, AF_INET, SVC_MAIL, 2),
	};
	struct change got[4];
	struct dns_peer p[2];
	struct fake *fk;
	uint64_t acks_before;
	size_t n;
	uint32_t id;

	gw_start(f, 0, "gw1", f->key_good, 7, "dns1");
	fk = fake_new(f, "gw2", KEY_GOOD);
	p[0] = (struct dns_peer){ "gw1", f->g[0].port };
	p[1] = (struct dns_peer){ "gw2", fk->port };
	dns_start(f, "dns1", f->key_good, p, 2, "gw1", 2000);
	assert_true(fake_handshake(f, fk, "gw2"));
	assert_true(RUN_UNTIL(f, dns_up(f, 0) && dns_up(f, 1), 2000));

	acks_before = dns_pstats(f).link[0].frames_in;
	gateway_commit(remote_gw(f), c, 2, on_done, &d);
	id = fake_changes(f, fk, got, 4, &n);
	assert_int_equal(id, 0);
	assert_int_equal(n, 1);
	assert_true(same_change(&got[0], &c[1]));
	/* gw1 applied and its ACK has been read: still waiting for gw2 */
	assert_true(RUN_UNTIL(f, dns_pstats(f).link[0].frames_in == acks_before + 1, 2000));
	assert_recorded(&f->g[0].rec, c, 2);
	spin(f, 30);
	assert_int_equal(d.calls, 0);
	fake_ack(fk, id, 0, 1);
	assert_true(RUN_UNTIL(f, d.calls > 0, 2000));
	assert_int_equal(d.result, 0);

	/* a refusal from gw2 fails the commit though gw1 applied it */
	gateway_commit(remote_gw(f), c, 2, on_done, &e);
	id = fake_changes(f, fk, got, 4, &n);
	assert_int_equal(id, 1);
	fake_ack(fk, id, -ENOSPC, 0);
	assert_true(RUN_UNTIL(f, e.calls > 0, 2000));
	assert_int_equal(e.result, -ENOSPC);
	assert_int_equal(f->g[0].rec.commits, 2);
	spin(f, 20);
	assert_int_equal(e.calls, 1);
	assert_int_equal(d.calls, 1);
	assert_int_equal(rstats(f).refused, 1);
}

/* ---- refusals ------------------------------------------------------------------- */

static void test_gateway_error_is_the_result(void **state)
{
	struct fx *f = *state;
	struct done_rec d = { 0 }, e = { 0 };
	struct change c = chg(CHANGE_OPEN, AF_INET, SVC_WWW, 9);

	one_gateway(f, 1000);
	f->g[0].rec.result = -EIO;
	gateway_commit(remote_gw(f), &c, 1, on_done, &d);
	assert_true(RUN_UNTIL(f, d.calls > 0, 2000));
	assert_int_equal(d.result, -EIO);
	assert_int_equal(f->g[0].rec.commits, 1);
	assert_int_equal(rstats(f).refused, 1);
	assert_int_equal(rstats(f).stale, 0);
	assert_int_equal(astats(f, 0).failed, 1);
	assert_int_equal(astats(f, 0).applied, 0);
	/* the link stays; the next commit succeeds */
	f->g[0].rec.result = 0;
	gateway_commit(remote_gw(f), &c, 1, on_done, &e);
	assert_true(RUN_UNTIL(f, e.calls > 0, 2000));
	assert_int_equal(e.result, 0);
	assert_int_equal(d.calls, 1);
	assert_int_equal(dns_pstats(f).link[0].connects, 1);
}

static void test_digest_mismatch_is_estale(void **state)
{
	struct fx *f = *state;
	struct done_rec d = { 0 };
	struct change c = chg(CHANGE_OPEN, AF_INET, SVC_WWW, 9);
	struct dns_peer p;

	gw_start(f, 0, "gw1", f->key_good, 8 /* not the DNS node's 7 */, "dns1");
	p = (struct dns_peer){ "gw1", f->g[0].port };
	dns_start(f, "dns1", f->key_good, &p, 1, NULL, 1000);
	assert_true(RUN_UNTIL(f, dns_up(f, 0) && gw_up(f, 0), 2000));
	gateway_commit(remote_gw(f), &c, 1, on_done, &d);
	assert_true(RUN_UNTIL(f, d.calls > 0, 2000));
	assert_int_equal(d.result, -ESTALE);
	assert_int_equal(f->g[0].rec.commits, 0);
	assert_int_equal(rstats(f).stale, 1);
	assert_int_equal(astats(f, 0).stale, 1);
	spin(f, 20);
	assert_int_equal(d.calls, 1);
	assert_true(dns_up(f, 0));
}

/* An address outside its service's pool: the gateway closes the link and
 * applies nothing of the frame. */
static void test_outside_the_pool_closes_the_link(void **state)
{
	struct fx *f = *state;
	struct done_rec d = { 0 }, e = { 0 }, g = { 0 };
	struct change c[2] = {
		chg(CHANGE_OPEN, AF_INET, SVC_WWW, 1),
		chg(CHANGE_OPEN, AF_INET, SVC_WWW, 200), /* 203.0.113.200, not in /25 */
	};
	struct change v6 = chg(CHANGE_OPEN, AF_INET6, SVC_MAIL, 1); /* mail has no pool6 */

	one_gateway(f, 1000);
	gateway_commit(remote_gw(f), c, 2, on_done, &d);
	assert_true(RUN_UNTIL(f, d.calls > 0, 2000));
	assert_int_equal(d.result, -ECONNRESET);
	assert_int_equal(f->g[0].rec.commits, 0);
	assert_int_equal(astats(f, 0).outside, 1);
	assert_int_equal(gw_pstats(f, 0).ended[PEER_R_FIELD], 1);
	assert_true(RUN_UNTIL(f, !gw_up(f, 0), 1000));
	assert_false(dns_up(f, 0));
	assert_int_equal(dns_pstats(f).link[0].last_down, PEER_R_CLOSED);
	assert_int_equal(rstats(f).link_lost, 1);
	/* while it is down: ENOTCONN at once */
	gateway_commit(remote_gw(f), c, 1, on_done, &e);
	assert_int_equal(e.calls, 1);
	assert_int_equal(e.result, -ENOTCONN);
	/* reconnected after the back-off; an IPv6 address for a service
	 * without pool6 is outside too */
	dns_tick_ahead(f, PEER_BACKOFF_MIN_MS);
	assert_true(RUN_UNTIL(f, dns_up(f, 0) && gw_up(f, 0), 2000));
	gateway_commit(remote_gw(f), &v6, 1, on_done, &g);
	assert_true(RUN_UNTIL(f, g.calls > 0, 2000));
	assert_int_equal(g.result, -ECONNRESET);
	assert_int_equal(astats(f, 0).outside, 2);
	assert_int_equal(f->g[0].rec.commits, 0);
	/* a lifetime past window + grace (7 + 2 s) is refused alike; exactly
	 * window + grace is what an answer asks for, and goes through */
	{
		struct done_rec h = { 0 }, k = { 0 };
		struct change ok = chg(CHANGE_OPEN, AF_INET, SVC_WWW, 2);
		struct change longer = ok;

		ok.ms = 9000;
		longer.ms = 9001;
		dns_tick_ahead(f, 2 * PEER_BACKOFF_MIN_MS);
		assert_true(RUN_UNTIL(f, dns_up(f, 0) && gw_up(f, 0), 2000));
		gateway_commit(remote_gw(f), &ok, 1, on_done, &k);
		assert_true(RUN_UNTIL(f, k.calls > 0, 2000));
		assert_int_equal(k.result, 0);
		gateway_commit(remote_gw(f), &longer, 1, on_done, &h);
		assert_true(RUN_UNTIL(f, h.calls > 0, 2000));
		assert_int_equal(h.result, -ECONNRESET);
		assert_int_equal(astats(f, 0).over_window, 1);
		assert_int_equal(f->g[0].rec.commits, 1);
	}
	spin(f, 20);
	assert_int_equal(d.calls, 1);
	assert_int_equal(g.calls, 1);
}

/* A change for a service the configuration does not have: refused as a
 * whole (the local gateway says -EINVAL); done exactly once, nothing sent. */
static void test_unknown_service_fails_the_commit(void **state)
{
	struct fx *f = *state;
	struct done_rec d = { 0 }, e = { 0 };
	struct change c[2] = {
		chg(CHANGE_OPEN, AF_INET, SVC_WWW, 1),
		chg(CHANGE_OPEN, AF_INET, SVC_WWW, 2),
	};

	one_gateway(f, 200);
	c[1].service = N_SERVICES;
	gateway_commit(remote_gw(f), &c[1], 1, on_done, &d);
	spin(f, 300);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.result, -EINVAL);
	/* with a good change: all or none */
	gateway_commit(remote_gw(f), c, 2, on_done, &e);
	spin(f, 300);
	assert_int_equal(e.calls, 1);
	assert_int_equal(e.result, -EINVAL);
	assert_int_equal(f->g[0].rec.commits, 0);
	assert_int_equal(rstats(f).frames, 0);
	assert_true(dns_up(f, 0));
}

static void test_not_connected_fails_at_once(void **state)
{
	struct fx *f = *state;
	struct done_rec d = { 0 }, e = { 0 }, g = { 0 };
	struct change c[2] = {
		chg(CHANGE_OPEN, AF_INET, SVC_WWW, 1),
		chg(CHANGE_OPEN, AF_INET, SVC_MAIL, 2),
	};
	struct dns_peer p[2];

	/* gw1 up; gw2's port has nobody listening */
	gw_start(f, 0, "gw1", f->key_good, 7, "dns1");
	p[0] = (struct dns_peer){ "gw1", f->g[0].port };
	p[1] = (struct dns_peer){ "gw2", free_port() };
	dns_start(f, "dns1", f->key_good, p, 2, "gw1", 1000);
	assert_true(RUN_UNTIL(f, dns_up(f, 0) && gw_up(f, 0), 2000));
	spin(f, 20);
	assert_false(dns_up(f, 1));
	assert_string_equal(dns_pstats(f).link[1].state, "down");
	assert_int_equal(dns_pstats(f).link[1].last_errno, ECONNREFUSED);
	/* mail needs gw2: refused at once, and gw1 is sent nothing */
	gateway_commit(remote_gw(f), c, 2, on_done, &d);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.result, -ENOTCONN);
	assert_int_equal(rstats(f).not_connected, 1);
	spin(f, 30);
	assert_int_equal(f->g[0].rec.commits, 0);
	assert_int_equal(rstats(f).frames, 0);
	/* www is gw1's alone: it goes */
	gateway_commit(remote_gw(f), c, 1, on_done, &e);
	assert_true(RUN_UNTIL(f, e.calls > 0, 2000));
	assert_int_equal(e.result, 0);
	/* no gateway at all */
	gw_stop(f, 0);
	assert_true(RUN_UNTIL(f, !dns_up(f, 0), 2000));
	gateway_commit(remote_gw(f), c, 1, on_done, &g);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.result, -ENOTCONN);
	assert_int_equal(d.calls, 1);
}

/* ---- time ------------------------------------------------------------------------ */

#define TIMEOUT_MS 150

/* A gateway's windows reach the DNS node's seed when the link comes up:
 * those of its slices are counted, the others not. */
static void test_windows_are_counted_at_connect(void **state)
{
	struct fx *f = *state;
	struct change scoped = chg(CHANGE_OPEN_SCOPED, AF_INET, SVC_MAIL, 3);

	scoped.src_len = 24;
	scoped.src[0] = 198, scoped.src[1] = 18, scoped.src[2] = 7;
	rec_windows[0] = chg(CHANGE_OPEN, AF_INET, SVC_WWW, 5);    /* dns1's slice */
	rec_windows[1] = chg(CHANGE_OPEN, AF_INET, SVC_WWW, 100);  /* another node's */
	rec_windows[2] = scoped;                                    /* dns1's */
	n_rec_windows = 3;
	one_gateway(f, 1000);
	n_rec_windows = 0;
	assert_int_equal(f->n_seeded, 3);
	assert_memory_equal(&f->seeded[0], &rec_windows[0], sizeof(struct change));
	assert_memory_equal(&f->seeded[2], &scoped, sizeof(struct change));
	assert_int_equal(rstats(f).windows_counted, 2);
	assert_int_equal(rstats(f).windows_others, 1);
}

/* No change goes to a gateway before its last WINDOWS frame; the windows
 * of several frames all count; WINDOWS after that ends the link. */
static void test_no_commit_before_the_windows(void **state)
{
	struct fx *f = *state;
	struct done_rec d = { 0 }, e = { 0 }, g = { 0 };
	struct change c = chg(CHANGE_OPEN, AF_INET, SVC_WWW, 3), got[2];
	struct change w1 = chg(CHANGE_OPEN, AF_INET, SVC_WWW, 7);
	struct dns_peer p;
	struct fake *fk;
	uint32_t id;
	size_t n;

	fk = fake_new(f, "gw1", KEY_GOOD);
	fk->no_windows = true;
	p = (struct dns_peer){ "gw1", fk->port };
	dns_start(f, "dns1", f->key_good, &p, 1, NULL, 1000);
	assert_true(fake_handshake(f, fk, "gw1"));
	assert_true(RUN_UNTIL(f, dns_pstats(f).link[0].up, 2000));
	gateway_commit(remote_gw(f), &c, 1, on_done, &d);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.result, -ENOTCONN);
	fake_windows(f, fk, true, &w1, 1);
	spin(f, 20);
	assert_false(dns_up(f, 0));
	fake_windows(f, fk, false, NULL, 0);
	assert_true(RUN_UNTIL(f, dns_up(f, 0), 2000));
	assert_int_equal(f->n_seeded, 1);
	assert_int_equal(rstats(f).windows_counted, 1);
	gateway_commit(remote_gw(f), &c, 1, on_done, &e);
	id = fake_changes(f, fk, got, 2, &n);
	assert_int_equal(n, 1);
	fake_ack(fk, id, 0, 1);
	assert_true(RUN_UNTIL(f, e.calls > 0, 2000));
	assert_int_equal(e.result, 0);
	/* WINDOWS once more: not expected now */
	fake_windows(f, fk, false, NULL, 0);
	assert_true(RUN_UNTIL(f, !dns_pstats(f).link[0].up, 2000));
	assert_int_equal(dns_pstats(f).ended[PEER_R_TYPE], 1);
	gateway_commit(remote_gw(f), &c, 1, on_done, &g);
	assert_int_equal(g.result, -ENOTCONN);
}

/* on_gateway_down = exclude: a gateway down is skipped (its services' other
 * gateways suffice); with none left for a service, ENOTCONN. The default,
 * all, fails the commit when one is down (test_not_connected_fails_at_once). */
static void test_gateway_down_exclude(void **state)
{
	struct fx *f = *state;
	struct done_rec d = { 0 }, e = { 0 }, g = { 0 };
	struct change www = chg(CHANGE_OPEN, AF_INET, SVC_WWW, 4);
	struct change mail = chg(CHANGE_OPEN, AF_INET, SVC_MAIL, 4);

	dns_gateway_down = "exclude";
	two_gateways(f, 1000); /* www on gw1 only; mail on both */
	gw_stop(f, 1);
	assert_true(RUN_UNTIL(f, !dns_pstats(f).link[1].up, 2000));
	gateway_commit(remote_gw(f), &mail, 1, on_done, &d);
	assert_true(RUN_UNTIL(f, d.calls > 0, 2000));
	assert_int_equal(d.result, 0);
	assert_int_equal(f->g[0].rec.commits, 1);
	gw_stop(f, 0);
	assert_true(RUN_UNTIL(f, !dns_pstats(f).link[0].up, 2000));
	gateway_commit(remote_gw(f), &www, 1, on_done, &e);
	assert_int_equal(e.calls, 1);
	assert_int_equal(e.result, -ENOTCONN);
	gateway_commit(remote_gw(f), &mail, 1, on_done, &g);
	assert_int_equal(g.result, -ENOTCONN);
	assert_true(rstats(f).not_connected >= 2);
}

static void test_commit_timeout(void **state)
{
	struct fx *f = *state;
	struct done_rec d = { 0 }, e = { 0 };
	struct change c = chg(CHANGE_OPEN, AF_INET, SVC_WWW, 3), got[2];
	struct dns_peer p;
	struct fake *fk;
	uint64_t t0;
	size_t n;
	uint32_t id;

	fk = fake_new(f, "gw1", KEY_GOOD);
	p = (struct dns_peer){ "gw1", fk->port };
	dns_start(f, "dns1", f->key_good, &p, 1, NULL, TIMEOUT_MS);
	assert_true(fake_handshake(f, fk, "gw1"));
	assert_true(RUN_UNTIL(f, dns_up(f, 0), 2000));

	t0 = log_now_ms();
	gateway_commit(remote_gw(f), &c, 1, on_done, &d);
	id = fake_changes(f, fk, got, 2, &n);
	assert_int_equal(n, 1);
	/* the fake does not answer */
	assert_true(RUN_UNTIL(f, d.calls > 0, TIMEOUT_MS + 3000));
	assert_int_equal(d.result, -ETIMEDOUT);
	assert_true(d.at_ms >= t0 + TIMEOUT_MS);
	assert_true(d.at_ms <= t0 + TIMEOUT_MS + 1000);
	assert_int_equal(rstats(f).timeouts, 1);
	/* its late ACK is taken (in order) and changes nothing */
	fake_ack(fk, id, 0, 1);
	spin(f, 30);
	assert_int_equal(d.calls, 1);
	assert_true(dns_up(f, 0));
	/* the next commit, answered in time */
	gateway_commit(remote_gw(f), &c, 1, on_done, &e);
	id = fake_changes(f, fk, got, 2, &n);
	assert_int_equal(id, 1);
	fake_ack(fk, id, 0, 1);
	assert_true(RUN_UNTIL(f, e.calls > 0, 2000));
	assert_int_equal(e.result, 0);
	assert_int_equal(rstats(f).timeouts, 1);
}

/* ---- losing the link -------------------------------------------------------------- */

static void test_link_loss_fails_commits_in_flight(void **state)
{
	struct fx *f = *state;
	struct done_rec a = { 0 }, b[3] = { { 0 } }, e = { 0 }, g = { 0 };
	struct change c = chg(CHANGE_OPEN, AF_INET, SVC_WWW, 3);

	one_gateway(f, 2000);
	gateway_commit(remote_gw(f), &c, 1, on_done, &a);
	assert_true(RUN_UNTIL(f, a.calls > 0, 2000));
	assert_int_equal(a.result, 0);
	/* three commits sent, then the gateway goes before reading them */
	for (int i = 0; i < 3; i++)
		gateway_commit(remote_gw(f), &c, 1, on_done, &b[i]);
	gw_stop(f, 0);
	assert_true(RUN_UNTIL(f, b[0].calls && b[1].calls && b[2].calls, 2000));
	spin(f, 20);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(b[i].calls, 1);
		assert_int_equal(b[i].result, -ECONNRESET);
	}
	assert_int_equal(a.calls, 1);
	assert_int_equal(rstats(f).link_lost, 3);
	assert_false(dns_up(f, 0));
	assert_int_equal(f->g[0].rec.commits, 1);
	/* back: the DNS node reconnects at its next try, commits go again */
	gw_restart(f, 0);
	dns_tick_ahead(f, PEER_BACKOFF_MIN_MS);
	assert_true(RUN_UNTIL(f, dns_up(f, 0) && gw_up(f, 0), 2000));
	assert_int_equal(dns_pstats(f).link[0].connects, 2);
	/* it was resynchronised first: the first commit's window, still
	 * live, in one frame (the three that failed are not resent) */
	assert_int_equal(rstats(f).resyncs, 1);
	assert_int_equal(rstats(f).resync_changes, 1);
	assert_int_equal(f->g[0].rec.commits, 2);
	gateway_commit(remote_gw(f), &c, 1, on_done, &e);
	assert_true(RUN_UNTIL(f, e.calls > 0, 2000));
	assert_int_equal(e.result, 0);
	assert_int_equal(f->g[0].rec.commits, 3);
	/* silent for PEER_IDLE_MS: the DNS node closes, what is in flight fails */
	gateway_commit(remote_gw(f), &c, 1, on_done, &g);
	gateway_tick(remote_gw(f), log_now_ms() + PEER_IDLE_MS);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.result, -ECONNRESET);
	assert_false(dns_up(f, 0));
	assert_int_equal(dns_pstats(f).link[0].last_down, PEER_R_IDLE);
	spin(f, 30);
	assert_int_equal(g.calls, 1);
	assert_int_equal(e.calls, 1);
}

/* A lost gateway is tried again after 1 s, then 2, 4, ... up to 30 s. */
static void test_reconnect_backoff(void **state)
{
	struct fx *f = *state;
	static const uint64_t gaps[] = { 1000, 2000, 4000, 8000, 16000, 30000, 30000 };
	struct dns_peer p;
	struct fake *fk;
	uint64_t t0, t1, at;

	fk = fake_new(f, "gw1", KEY_GOOD);
	p = (struct dns_peer){ "gw1", fk->port };
	t0 = log_now_ms();
	dns_start(f, "dns1", f->key_good, &p, 1, NULL, 1000);
	t1 = log_now_ms();
	/* the fake takes each connection and closes it */
	fake_accept(f, fk);
	fake_close(fk);
	assert_true(RUN_UNTIL(f, strcmp(dns_pstats(f).link[0].state, "down") == 0, 2000));
	gateway_tick(remote_gw(f), t0 + 999);
	spin(f, 20);
	assert_false(fd_readable(fk->lfd));
	at = t1;
	for (size_t i = 0; i < sizeof(gaps) / sizeof(gaps[0]); i++) {
		/* not before its time ... */
		gateway_tick(remote_gw(f), at + gaps[i] - 1 - (i == 0 ? t1 - t0 : 0));
		spin(f, 10);
		assert_false(fd_readable(fk->lfd));
		/* ... and then */
		at += gaps[i];
		gateway_tick(remote_gw(f), at);
		fake_accept(f, fk);
		fake_close(fk);
		assert_true(RUN_UNTIL(f, strcmp(dns_pstats(f).link[0].state, "down") == 0, 2000));
	}
	assert_int_equal(fk->accepts, 1 + sizeof(gaps) / sizeof(gaps[0]));
}

/* ---- who may connect ------------------------------------------------------------- */

/* The two ends hold different secrets under key id 1: the gateway finds
 * the HELLO's tag wrong and closes; no link comes up. */
static void wrong_psk(struct fx *f, const char *dns_key, const char *gw_key)
{
	struct done_rec d = { 0 };
	struct change c = chg(CHANGE_OPEN, AF_INET, SVC_WWW, 3);
	struct dns_peer p;
	struct peers_stats gs;

	gw_start(f, 0, "gw1", gw_key, 7, "dns1");
	p = (struct dns_peer){ "gw1", f->g[0].port };
	dns_start(f, "dns1", dns_key, &p, 1, NULL, 1000);
	assert_true(RUN_UNTIL(f, gw_pstats(f, 0).ended[PEER_R_TAG] == 1, 2000));
	spin(f, 30);
	gs = gw_pstats(f, 0);
	assert_int_equal(gs.accepted, 1);
	assert_int_equal(gs.link[0].connects, 0);
	assert_false(gs.link[0].up);
	assert_int_equal(gs.unauth, 0);
	for (size_t r = 0; r < PEER_R_COUNT; r++)
		assert_int_equal(gs.ended[r], r == PEER_R_TAG);
	assert_false(dns_up(f, 0));
	assert_int_equal(dns_pstats(f).link[0].connects, 0);
	gateway_commit(remote_gw(f), &c, 1, on_done, &d);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.result, -ENOTCONN);
	assert_int_equal(f->g[0].rec.commits, 0);
}

static void test_wrong_psk_at_the_dns_node(void **state)
{
	struct fx *f = *state;

	wrong_psk(f, f->key_bad, f->key_good);
}

static void test_wrong_psk_at_the_gateway(void **state)
{
	struct fx *f = *state;

	wrong_psk(f, f->key_good, f->key_bad);
}

/* Silence: a PING after PEER_PING_MS, answered (the link stays); the
 * gateway closes a link silent for PEER_IDLE_MS. */
static void test_keepalive(void **state)
{
	struct fx *f = *state;
	struct done_rec d = { 0 };
	struct change c = chg(CHANGE_OPEN, AF_INET, SVC_WWW, 3);
	struct peers_stats before;

	one_gateway(f, 2000);
	before = dns_pstats(f);
	gateway_tick(remote_gw(f), log_now_ms() + PEER_PING_MS - 500);
	spin(f, 20);
	assert_int_equal(dns_pstats(f).link[0].frames_out, before.link[0].frames_out);
	gateway_tick(remote_gw(f), log_now_ms() + PEER_PING_MS);
	/* the PING went and its PONG came back */
	assert_true(RUN_UNTIL(f, dns_pstats(f).link[0].frames_in ==
			      before.link[0].frames_in + 1, 2000));
	assert_int_equal(dns_pstats(f).link[0].frames_out, before.link[0].frames_out + 1);
	assert_true(dns_up(f, 0));
	/* the gateway side: silent too long, closed; in flight fails */
	gateway_commit(remote_gw(f), &c, 1, on_done, &d);
	gw_agent_tick(f->g[0].agent, log_now_ms() + PEER_IDLE_MS);
	assert_false(gw_up(f, 0));
	assert_int_equal(gw_pstats(f, 0).ended[PEER_R_IDLE], 1);
	assert_true(RUN_UNTIL(f, d.calls > 0, 2000));
	assert_int_equal(d.result, -ECONNRESET);
	assert_int_equal(f->g[0].rec.commits, 0);
	assert_int_equal(dns_pstats(f).link[0].last_down, PEER_R_CLOSED);
}

static void test_unknown_peer_is_wrong_peer(void **state)
{
	struct fx *f = *state;
	struct dns_peer p;
	struct peers_stats gs;

	/* a DNS node "dns9" the gateway does not know */
	gw_start(f, 0, "gw1", f->key_good, 7, "dns1");
	p = (struct dns_peer){ "gw1", f->g[0].port };
	dns_start(f, "dns9", f->key_good, &p, 1, NULL, 1000);
	assert_true(RUN_UNTIL(f, gw_pstats(f, 0).ended[PEER_R_HELLO] == 1, 2000));
	spin(f, 30);
	gs = gw_pstats(f, 0);
	for (size_t r = 0; r < PEER_R_COUNT; r++)
		assert_int_equal(gs.ended[r], r == PEER_R_HELLO);
	assert_int_equal(gs.link[0].connects, 0);
	assert_false(dns_up(f, 0));
}

/* The DNS node means a gateway "gwX"; the one at that address is gw1. */
static void test_hello_for_another_gateway(void **state)
{
	struct fx *f = *state;
	struct dns_peer p;

	gw_start(f, 0, "gw1", f->key_good, 7, "dns1");
	p = (struct dns_peer){ "gwX", f->g[0].port };
	dns_start(f, "dns1", f->key_good, &p, 1, NULL, 1000);
	assert_true(RUN_UNTIL(f, gw_pstats(f, 0).ended[PEER_R_HELLO] == 1, 2000));
	spin(f, 30);
	assert_int_equal(gw_pstats(f, 0).link[0].connects, 0);
	assert_false(dns_up(f, 0));
}

/* A WELCOME naming another gateway than the one meant: the DNS node closes. */
static void test_welcome_from_another_gateway(void **state)
{
	struct fx *f = *state;
	struct dns_peer p;
	struct fake *fk;

	fk = fake_new(f, "gw1", KEY_GOOD);
	p = (struct dns_peer){ "gw1", fk->port };
	dns_start(f, "dns1", f->key_good, &p, 1, NULL, 1000);
	assert_false(fake_handshake(f, fk, "gw2"));
	assert_int_equal(dns_pstats(f).ended[PEER_R_HELLO], 1);
	assert_false(dns_up(f, 0));
	assert_int_equal(dns_pstats(f).link[0].connects, 0);
}

/* A connection that never says HELLO is closed after PEER_HANDSHAKE_MS. */
static void test_silent_connection_times_out(void **state)
{
	struct fx *f = *state;
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char byte;

	gw_start(f, 0, "gw1", f->key_good, 7, "dns1");
	sin.sin_port = htons(f->g[0].port);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_true(RUN_UNTIL(f, gw_pstats(f, 0).unauth == 1, 2000));
	gw_agent_tick(f->g[0].agent, log_now_ms() + PEER_HANDSHAKE_MS - 100);
	assert_int_equal(gw_pstats(f, 0).unauth, 1);
	gw_agent_tick(f->g[0].agent, log_now_ms() + PEER_HANDSHAKE_MS);
	assert_int_equal(gw_pstats(f, 0).unauth, 0);
	assert_int_equal(gw_pstats(f, 0).ended[PEER_R_HANDSHAKE_TIMEOUT], 1);
	assert_true(RUN_UNTIL(f, fd_readable(fd), 1000));
	assert_int_equal(recv(fd, &byte, 1, MSG_DONTWAIT), 0);
	close(fd);
}

/* A TCP connection to the gateway from 127.0.0.src that says nothing. */
static int silent_client(struct fx *f, size_t g, uint8_t src)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(0x7f000000u | src) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(f->g[g].port);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

/* The other end closed fd (within max_ms of the loop). */
static bool closed_by_peer(struct fx *f, int fd, int max_ms)
{
	char byte;

	if (!RUN_UNTIL(f, fd_readable(fd), max_ms))
		return false;
	return recv(fd, &byte, 1, MSG_DONTWAIT) <= 0;
}

/* At most 4 handshakes from one address, 64 in all; more are closed at
 * accept. The DNS node gets in once the handshake deadline freed them. */
static void test_unauthenticated_caps(void **state)
{
	struct fx *f = *state;
	int fds[PEER_MAX_UNAUTH + 2];
	size_t n = 0;
	struct peers_stats gs;
	struct dns_peer p;
	int extra;

	gw_start(f, 0, "gw1", f->key_good, 7, "dns1");
	/* four from 127.0.0.2, then a fifth */
	for (int k = 0; k < PEER_MAX_PER_SOURCE; k++)
		fds[n++] = silent_client(f, 0, 2);
	assert_true(RUN_UNTIL(f, gw_pstats(f, 0).unauth == PEER_MAX_PER_SOURCE, 2000));
	extra = silent_client(f, 0, 2);
	assert_true(closed_by_peer(f, extra, 1000));
	close(extra);
	gs = gw_pstats(f, 0);
	assert_int_equal(gs.refused_source, 1);
	assert_int_equal(gs.unauth, PEER_MAX_PER_SOURCE);
	/* four each from 127.0.0.3 ... up to 64 */
	for (uint8_t src = 3; n < PEER_MAX_UNAUTH; src++)
		for (int k = 0; k < PEER_MAX_PER_SOURCE; k++)
			fds[n++] = silent_client(f, 0, src);
	assert_true(RUN_UNTIL(f, gw_pstats(f, 0).unauth == PEER_MAX_UNAUTH, 2000));
	assert_int_equal(gw_pstats(f, 0).refused_source, 1);
	/* one from a new address: the table is full */
	extra = silent_client(f, 0, 200);
	assert_true(closed_by_peer(f, extra, 1000));
	close(extra);
	gs = gw_pstats(f, 0);
	assert_int_equal(gs.refused_full, 1);
	assert_int_equal(gs.unauth, PEER_MAX_UNAUTH);
	/* so is the DNS node, for now */
	p = (struct dns_peer){ "gw1", f->g[0].port };
	dns_start(f, "dns1", f->key_good, &p, 1, NULL, 1000);
	assert_true(RUN_UNTIL(f, gw_pstats(f, 0).refused_full == 2, 2000));
	/* the deadline passes: the silent ones go, the DNS node gets in */
	gw_agent_tick(f->g[0].agent, log_now_ms() + PEER_HANDSHAKE_MS);
	gs = gw_pstats(f, 0);
	assert_int_equal(gs.unauth, 0);
	assert_int_equal(gs.ended[PEER_R_HANDSHAKE_TIMEOUT], PEER_MAX_UNAUTH);
	for (size_t i = 0; i < n; i++) {
		assert_true(closed_by_peer(f, fds[i], 1000));
		close(fds[i]);
	}
	assert_true(RUN_UNTIL(f, strcmp(dns_pstats(f).link[0].state, "down") == 0, 2000));
	dns_tick_ahead(f, PEER_BACKOFF_MIN_MS);
	assert_true(RUN_UNTIL(f, dns_up(f, 0) && gw_up(f, 0), 2000));
}

/* When every DNS peer has 'from', a connection from elsewhere is closed at
 * accept; one from inside it gets in. */
static void test_from_is_checked_at_accept(void **state)
{
	struct fx *f = *state;
	struct gw_node *g = &f->g[0];
	struct dns_peer p;
	char text[4096];
	int fd;

	g->rec.gw.ops = &rec_ops;
	g->port = free_port();
	snprintf(text, sizeof(text),
		 "[daemon]\nrole = gateway\nname = gw1\npeer_listen = 127.0.0.1:%u\n"
		 "[key 1]\nfile = %s\n"
		 "[peer dns1]\nrole = dns\nkey = 1\nfrom = 127.0.0.1/32\n",
		 g->port, f->key_good);
	services(text, sizeof(text), false, 7, NULL);
	g->cfg = parse(text);
	assert_int_equal(gw_agent_new(g->cfg, f->loop, &g->rec.gw, &g->agent), 0);
	fd = silent_client(f, 0, 9);
	assert_true(closed_by_peer(f, fd, 1000));
	close(fd);
	assert_int_equal(gw_pstats(f, 0).refused_from, 1);
	assert_int_equal(gw_pstats(f, 0).unauth, 0);
	p = (struct dns_peer){ "gw1", g->port };
	dns_start(f, "dns1", f->key_good, &p, 1, NULL, 1000);
	assert_true(RUN_UNTIL(f, dns_up(f, 0) && gw_up(f, 0), 2000));
	assert_int_equal(gw_pstats(f, 0).refused_from, 1);
}

/* ---- acknowledgements out of place -------------------------------------------------- */

static void test_ack_out_of_order_closes(void **state)
{
	struct fx *f = *state;
	struct done_rec d[2] = { { 0 } }, e = { 0 }, g = { 0 };
	struct change c = chg(CHANGE_OPEN, AF_INET, SVC_WWW, 3), got[2];
	struct dns_peer p;
	struct fake *fk;
	size_t n;
	uint32_t id0, id1;

	fk = fake_new(f, "gw1", KEY_GOOD);
	p = (struct dns_peer){ "gw1", fk->port };
	dns_start(f, "dns1", f->key_good, &p, 1, NULL, 2000);
	assert_true(fake_handshake(f, fk, "gw1"));
	assert_true(RUN_UNTIL(f, dns_up(f, 0), 2000));
	gateway_commit(remote_gw(f), &c, 1, on_done, &d[0]);
	gateway_commit(remote_gw(f), &c, 1, on_done, &d[1]);
	id0 = fake_changes(f, fk, got, 2, &n);
	id1 = fake_changes(f, fk, got, 2, &n);
	assert_int_equal(id0, 0);
	assert_int_equal(id1, 1);
	/* the second's ACK first */
	fake_ack(fk, id1, 0, 1);
	assert_true(RUN_UNTIL(f, d[0].calls && d[1].calls, 2000));
	assert_int_equal(d[0].result, -ECONNRESET);
	assert_int_equal(d[1].result, -ECONNRESET);
	assert_int_equal(dns_pstats(f).ended[PEER_R_PROTOCOL], 1);
	assert_int_equal(fake_read(f, fk, 2000), 0);

	/* again, with an ACK of 0 that applied fewer changes than sent */
	dns_tick_ahead(f, PEER_BACKOFF_MIN_MS);
	assert_true(fake_handshake(f, fk, "gw1"));
	assert_true(RUN_UNTIL(f, dns_up(f, 0), 2000));
	gateway_commit(remote_gw(f), &c, 1, on_done, &e);
	id0 = fake_changes(f, fk, got, 2, &n);
	assert_int_equal(id0, 0); /* a new connection counts from 0 */
	fake_ack(fk, id0, 0, 0);
	assert_true(RUN_UNTIL(f, e.calls > 0, 2000));
	assert_int_equal(e.result, -ECONNRESET);
	assert_int_equal(dns_pstats(f).ended[PEER_R_PROTOCOL], 2);

	/* and an ACK nobody waits for */
	dns_tick_ahead(f, PEER_BACKOFF_MIN_MS);
	assert_true(fake_handshake(f, fk, "gw1"));
	assert_true(RUN_UNTIL(f, dns_up(f, 0), 2000));
	fake_ack(fk, 0, 0, 1);
	assert_true(RUN_UNTIL(f, !dns_up(f, 0), 2000));
	assert_int_equal(dns_pstats(f).ended[PEER_R_PROTOCOL], 3);
	gateway_commit(remote_gw(f), &c, 1, on_done, &g);
	assert_int_equal(g.result, -ENOTCONN);
	spin(f, 20);
	assert_int_equal(d[0].calls + d[1].calls + e.calls + g.calls, 4);
}

/* ---- a property ------------------------------------------------------------------- */

/*
 * Random sequences of commits (either service, 1-4 changes, some from
 * inside done callbacks), gateway results, gateways dropped and restarted;
 * gw1 carries www and mail, gw2 mail. Checked: every done is called exactly
 * once, with the result the sequence implies (ENOTCONN at once when a
 * gateway needed is down; ECONNRESET or a needed gateway's error when one
 * was dropped with the commit in flight; else 0 iff every gateway needed
 * answered 0); and afterwards, exactly GW_REMOTE_MAX_PENDING commits can be
 * outstanding at once: no slot leaked.
 */

#define PROP_SEQUENCES 40
#define PROP_STEPS     60
#define PROP_MAX       2048

struct prop;

struct pcommit {
	struct done_rec d;
	struct prop *p;
	unsigned needs;          /* bit per gateway */
	unsigned dropped;        /* gateways dropped while it was in flight */
	bool dying;              /* sent to a gateway already stopped */
	bool immediate;          /* expected to be done within gateway_commit */
	bool checked;
};

struct prop {
	struct fx *f;
	uint64_t rng;
	struct pcommit c[PROP_MAX];
	size_t n;
	size_t outstanding;      /* submitted, done not yet called */
	unsigned down;           /* gateways stopped now */
	int drops_left;
	bool reentrant;          /* done callbacks may commit */
};

static uint32_t prop_rand(struct prop *p)
{
	/* xorshift64* */
	p->rng ^= p->rng >> 12;
	p->rng ^= p->rng << 25;
	p->rng ^= p->rng >> 27;
	return (uint32_t)((p->rng * 2685821657736338717ull) >> 32);
}

static void prop_submit(struct prop *p);

static int results[N_GW];
static int cur_sequence;

/* What the sequences went through, to show they went there. */
static struct {
	size_t commits, reentrant, dying, not_connected, reset, refused, ok, drops;
} seen;

/* The result done must bring, given what the gateways answer now. */
static void prop_check(struct pcommit *pc, int result)
{
	bool ok = false, any = false;

	if (pc->dropped) {
		any = true;
		ok |= result == -ECONNRESET;
		/* a send that already failed: peer_send says ENOTCONN */
		ok |= pc->dying && result == -ENOTCONN;
	}
	for (size_t g = 0; g < N_GW; g++)
		if ((pc->needs >> g & 1) && !(pc->dropped >> g & 1) && results[g]) {
			any = true;
			ok |= result == results[g];
		}
	if (!any)
		ok = result == 0;
	if (!ok)
		fail_msg("sequence %d, commit %zu (needs %x, dropped %x): done(%d), "
			 "gateways %d %d", cur_sequence,
			 (size_t)(pc - pc->p->c), pc->needs, pc->dropped, result,
			 results[0], results[1]);
}

static void prop_done(void *ctx, int result)
{
	struct pcommit *pc = ctx;
	struct prop *p = pc->p;

	on_done(&pc->d, result);
	seen.not_connected += result == -ENOTCONN;
	seen.reset += result == -ECONNRESET;
	seen.refused += result == -EIO || result == -ENOSPC;
	seen.ok += result == 0;
	if (pc->d.calls != 1)
		fail_msg("sequence %d, commit %zu: done called %d times",
			 cur_sequence, (size_t)(pc - p->c), pc->d.calls);
	if (pc->immediate)
		assert_int_equal(result, -ENOTCONN);
	else
		prop_check(pc, result);
	pc->checked = true;
	p->outstanding--;
	/* a commit from inside a done callback, now and then */
	if (p->reentrant && prop_rand(p) % 4 == 0 && p->n < PROP_MAX - 1) {
		seen.reentrant++;
		prop_submit(p);
	}
}

static void prop_submit(struct prop *p)
{
	struct fx *f = p->f;
	struct pcommit *pc = &p->c[p->n++];
	struct change c[4];
	size_t n = 1 + prop_rand(p) % 4;

	memset(pc, 0, sizeof(*pc));
	pc->p = p;
	for (size_t i = 0; i < n; i++) {
		uint16_t svc = prop_rand(p) % 2 ? SVC_WWW : SVC_MAIL;

		c[i] = chg(prop_rand(p) % 2 ? CHANGE_OPEN : CHANGE_BIND, AF_INET, svc,
			   (uint8_t)(prop_rand(p) % 60));
		pc->needs |= svc == SVC_WWW ? 1u : 3u;
	}
	/* the DNS node's view: a gateway just stopped may not be seen down
	 * yet (a commit from a done callback meanwhile): what it sends to it
	 * is lost with the link */
	for (size_t g = 0; g < N_GW; g++) {
		if (!(pc->needs >> g & 1) || !(p->down >> g & 1))
			continue;
		if (dns_up(f, g)) {
			pc->dropped |= 1u << g;
			pc->dying = true;
			seen.dying++;
		}
		else
			pc->immediate = true;
	}
	seen.commits++;
	p->outstanding++;
	gateway_commit(remote_gw(f), c, n, prop_done, pc);
	if (pc->immediate)
		assert_int_equal(pc->d.calls, 1);
}

/* Every frame sent on each link up has been read at the other end. */
static bool links_quiet(struct fx *f)
{
	struct peers_stats d = dns_pstats(f);

	for (size_t g = 0; g < N_GW; g++) {
		struct peers_stats s;

		if (!d.link[g].up)
			continue;
		if (!gw_up(f, g))
			return false;
		s = gw_pstats(f, g);
		if (s.link[0].frames_in != d.link[g].frames_out ||
		    s.link[0].frames_out != d.link[g].frames_in)
			return false;
	}
	return true;
}

/* Run the loop until nothing is outstanding, each link is as wanted and
 * every frame has been read. */
static void prop_settle(struct prop *p)
{
	struct fx *f = p->f;

	assert_true(RUN_UNTIL(f, p->outstanding == 0 &&
			      dns_up(f, 0) == !(p->down & 1) &&
			      dns_up(f, 1) == !(p->down & 2) && links_quiet(f), 3000));
}

/* Gateway g goes, with what is in flight to it. */
static void prop_drop(struct prop *p, size_t g)
{
	struct fx *f = p->f;

	for (size_t i = 0; i < p->n; i++)
		if (!p->c[i].d.calls && (p->c[i].needs >> g & 1))
			p->c[i].dropped |= 1u << g;
	p->down |= 1u << g;
	seen.drops++;
	gw_stop(f, g);
	prop_settle(p);
}

/* The stopped gateway comes back; the DNS node reconnects. */
static void prop_restore(struct prop *p)
{
	struct fx *f = p->f;
	size_t g = p->down & 1 ? 0 : 1;

	prop_settle(p);
	gw_restart(f, g);
	dns_tick_ahead(f, PEER_BACKOFF_MIN_MS);
	assert_true(RUN_UNTIL(f, dns_up(f, g) && gw_up(f, g), 2000));
	p->down &= ~(1u << g);
	prop_settle(p);
}

static void prop_sequence(struct fx *f, struct prop *p)
{
	struct done_rec burst[GW_REMOTE_MAX_PENDING + 1];
	struct change c = chg(CHANGE_OPEN, AF_INET, SVC_MAIL, 1);

	two_gateways(f, 5000);
	for (int step = 0; step < PROP_STEPS; step++) {
		uint32_t op = prop_rand(p) % 100;
		size_t g = prop_rand(p) % N_GW;

		if (op < 50) {
			/* a few commits, then (mostly) the loop runs */
			for (uint32_t k = prop_rand(p) % 4; k < 4 && p->n < PROP_MAX - 64; k++)
				prop_submit(p);
			if (prop_rand(p) % 4)
				prop_settle(p);
		} else if (op < 65) {
			int r = prop_rand(p) % 3 ? 0 : (prop_rand(p) % 2 ? -EIO : -ENOSPC);

			/* results change only while nothing is in flight */
			prop_settle(p);
			results[g] = r;
			f->g[g].rec.result = r;
		} else if (op < 85 && !p->down && p->drops_left > 0) {
			/* with commits in flight, mostly */
			for (uint32_t k = prop_rand(p) % 4; k < 3 && p->n < PROP_MAX - 64; k++)
				prop_submit(p);
			p->drops_left--;
			prop_drop(p, g);
		} else if (p->down) {
			prop_restore(p);
		} else {
			prop_settle(p);
		}
	}
	if (p->down)
		prop_restore(p);
	prop_settle(p); /* late ACKs of commits already failed too */
	for (size_t i = 0; i < p->n; i++) {
		assert_int_equal(p->c[i].d.calls, 1);
		assert_true(p->c[i].checked);
	}
	/* no slot leaked: GW_REMOTE_MAX_PENDING commits at once, not one more */
	p->reentrant = false;
	f->g[0].rec.result = f->g[1].rec.result = 0;
	results[0] = results[1] = 0;
	memset(burst, 0, sizeof(burst));
	for (size_t i = 0; i <= GW_REMOTE_MAX_PENDING; i++)
		gateway_commit(remote_gw(f), &c, 1, on_done, &burst[i]);
	for (size_t i = 0; i < GW_REMOTE_MAX_PENDING; i++)
		assert_int_equal(burst[i].calls, 0);
	assert_int_equal(burst[GW_REMOTE_MAX_PENDING].calls, 1);
	assert_int_equal(burst[GW_REMOTE_MAX_PENDING].result, -EBUSY);
	assert_true(RUN_UNTIL(f, burst[GW_REMOTE_MAX_PENDING - 1].calls > 0, 5000));
	for (size_t i = 0; i < GW_REMOTE_MAX_PENDING; i++) {
		assert_int_equal(burst[i].calls, 1);
		assert_int_equal(burst[i].result, 0);
	}
}

static void test_property_done_once_no_leak(void **state)
{
	struct fx *f = *state;
	const char *env = getenv("CHOREO_PEER_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : 0x5eed0001;
	struct prop *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	memset(&seen, 0, sizeof(seen));
	print_message("# seed 0x%llx (CHOREO_PEER_SEED), %d sequences of %d steps\n",
		      (unsigned long long)seed, PROP_SEQUENCES, PROP_STEPS);
	for (int s = 0; s < PROP_SEQUENCES; s++) {
		/* each sequence with a DNS node and gateways of its own */
		if (s) {
			teardown(state);
			setup(state);
			f = *state;
		}
		memset(p, 0, sizeof(*p));
		p->f = f;
		p->rng = seed + (uint64_t)s * 0x9e3779b97f4a7c15ull;
		p->drops_left = 3;
		p->reentrant = true;
		results[0] = results[1] = 0;
		cur_sequence = s;
		prop_sequence(f, p);
	}
	free(p);
	print_message("# %zu commits (%zu from done callbacks, %zu of them to a "
		      "gateway stopped but not yet seen down), %zu gateways dropped: "
		      "%zu done(0), %zu ENOTCONN, %zu ECONNRESET, %zu refused\n",
		      seen.commits, seen.reentrant, seen.dying, seen.drops, seen.ok,
		      seen.not_connected, seen.reset, seen.refused);
	/* the sequences did reach every outcome */
	assert_true(seen.reentrant && seen.drops && seen.ok && seen.not_connected &&
		    seen.reset && seen.refused);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_handshake_then_commit_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_over_two_frames, setup, teardown),
		cmocka_unit_test_setup_teardown(test_each_gateway_gets_its_services, setup, teardown),
		cmocka_unit_test_setup_teardown(test_done_waits_for_every_gateway, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gateway_error_is_the_result, setup, teardown),
		cmocka_unit_test_setup_teardown(test_digest_mismatch_is_estale, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outside_the_pool_closes_the_link, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_service_fails_the_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_connected_fails_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_windows_are_counted_at_connect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_commit_before_the_windows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gateway_down_exclude, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_loss_fails_commits_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconnect_backoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_psk_at_the_dns_node, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_psk_at_the_gateway, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keepalive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_peer_is_wrong_peer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hello_for_another_gateway, setup, teardown),
		cmocka_unit_test_setup_teardown(test_welcome_from_another_gateway, setup, teardown),
		cmocka_unit_test_setup_teardown(test_silent_connection_times_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unauthenticated_caps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_from_is_checked_at_accept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ack_out_of_order_closes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_property_done_once_no_leak, setup, teardown),
	};

	if (!getenv("CHOREO_PEER_LOG"))
		log_set_level(LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
