// SPDX-License-Identifier: MIT
#include "ctl.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "addr.h"
#include "config.h"
#include "dns.h"
#include "dnsserver.h"
#include "latency.h"
#include "log.h"
#include "loop.h"
#include "nat.h"
#include "rotor.h"

#define REPLY_MAX (8 * 1024 * 1024) /* a large binding list is cut */

struct ctl {
	struct loop_handler h;
	struct loop *loop;
	struct ctl_sources src;
	/* the `bindings` listing in progress (one at a time) */
	pthread_t job_thread;
	struct bindings_job *job;
	bool job_running;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

struct reply {
	char *buf;
	size_t len, cap;
	bool full;
};

static void say(struct reply *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void say(struct reply *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (r->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(r->buf + r->len, r->cap - r->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= r->cap - r->len) {
		r->full = true;
		r->buf[r->len] = '\0';
		return;
	}
	r->len += (size_t)n;
}

/* A /proc/sys value, or -1. */
static long read_sysctl(const char *path)
{
	FILE *f = fopen(path, "re");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static void gateway_status(struct ctl *c, struct reply *r)
{
	long count = read_sysctl("/proc/sys/net/netfilter/nf_conntrack_count");
	long max = read_sysctl("/proc/sys/net/netfilter/nf_conntrack_max");
	struct nat_stats st;

	nat_get_stats(c->src.nat, &st);
	say(r, "gateway table inet %s commits %llu failures %llu elements %llu "
	    "latency_us p50 %llu p99 %llu max %llu\n", c->src.cfg->table,
	    (unsigned long long)st.commits, (unsigned long long)st.failures,
	    (unsigned long long)st.elements,
	    (unsigned long long)st.latency.p50_us,
	    (unsigned long long)st.latency.p99_us,
	    (unsigned long long)st.latency.max_us);
	if (count >= 0 && max > 0)
		say(r, "conntrack count %ld max %ld%s\n", count, max,
		    count * 10 >= max * 9 ? " NEAR THE LIMIT: raise "
		    "net.netfilter.nf_conntrack_max" : "");
	else
		say(r, "conntrack unavailable (module not loaded)\n");
}

static void gateway_service(struct ctl *c, struct reply *r, size_t svc,
			    int family)
{
	struct nat_counters k;
	struct nat_set_counts sc;

	if (nat_read_counters(c->src.nat, svc, family, &k) < 0) {
		say(r, "    gateway: cannot read the table\n");
		return;
	}
	/* large sets are counted in the background: a bounded wait only */
	nat_set_counts(c->src.nat, svc, family, 300, &sc);
	say(r, "    gateway: to_server %llu to_honeypot %llu bindings %ld "
	    "asked %ld open %ld", (unsigned long long)k.server,
	    (unsigned long long)k.honeypot, sc.bound, sc.asked, sc.open);
	if (!sc.fresh)
		say(r, " (set counts %llu ms old: still counting)",
		    (unsigned long long)sc.age_ms);
	/* a window let a client in but no binding was learned: set full */
	if (k.via_window > k.learned)
		say(r, " binding_set_full_misses %llu",
		    (unsigned long long)(k.via_window - k.learned));
	say(r, "\n");
}

/*
 * `bindings` dumps the kernel's binding sets, which takes seconds for
 * hundreds of thousands of elements: it runs in a thread of its own, with
 * its own netlink socket, and streams its lines to the client.
 */
struct bindings_job {
	int fd;
	const struct config *cfg;
	int family;
	const char *service;
	char buf[64 * 1024];
	size_t len;
	bool broken;
	int done;  /* set by the thread as it ends (atomic) */
};

static void job_flush(struct bindings_job *j)
{
	for (size_t off = 0; off < j->len && !j->broken;) {
		ssize_t n = send(j->fd, j->buf + off, j->len - off, MSG_NOSIGNAL);

		if (n <= 0)
			j->broken = true; /* the client went away or stalled */
		else
			off += (size_t)n;
	}
	j->len = 0;
}

static void binding_one(void *ctx, const uint8_t src[16], const uint8_t addr[16],
			uint64_t ms_left)
{
	struct bindings_job *j = ctx;
	char a[ADDR_STRLEN], b[ADDR_STRLEN];
	int n;

	if (j->broken)
		return;
	if (sizeof(j->buf) - j->len < 256)
		job_flush(j);
	n = snprintf(j->buf + j->len, sizeof(j->buf) - j->len, "%s %s %s %llu ms\n",
		     j->service, addr_format(j->family, src, a),
		     addr_format(j->family, addr, b), (unsigned long long)ms_left);
	if (n > 0 && (size_t)n < sizeof(j->buf) - j->len)
		j->len += (size_t)n;
}

static void *bindings_main(void *arg)
{
	struct bindings_job *j = arg;
	struct timeval tv = { .tv_sec = 5 };
	struct nat *reader;

	setsockopt(j->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (nat_open_reader(j->cfg, &reader) < 0) {
		j->len = (size_t)snprintf(j->buf, sizeof(j->buf),
					  "error: cannot read the table\n");
	} else {
		for (size_t i = 0; i < j->cfg->n_services && !j->broken; i++) {
			for (int f = 0; f < 2 && !j->broken; f++) {
				if (f && !j->cfg->services[i].has_pool6)
					continue;
				j->family = f ? AF_INET6 : AF_INET;
				j->service = j->cfg->services[i].section;
				if (nat_foreach_binding(reader, i, j->family, binding_one, j) < 0 &&
				    sizeof(j->buf) - j->len > 128)
					j->len += (size_t)snprintf(j->buf + j->len,
						sizeof(j->buf) - j->len,
						"error: cannot read the bindings of %s\n",
						j->service);
			}
		}
		nat_close(reader);
	}
	job_flush(j);
	close(j->fd);
	__atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Start a bindings listing for the client on fd; false if one is running. */
static bool bindings_start(struct ctl *c, int fd)
{
	struct bindings_job *j;

	if (c->job_running) {
		/* never wait in the event loop for a listing still running */
		if (!__atomic_load_n(&c->job->done, __ATOMIC_ACQUIRE))
			return false;
		pthread_join(c->job_thread, NULL); /* it has ended: no wait */
		c->job_running = false;
		free(c->job);
		c->job = NULL;
	}
	j = calloc(1, sizeof(*j));
	if (!j)
		return false;
	j->fd = fd;
	j->cfg = c->src.cfg;
	if (pthread_create(&c->job_thread, NULL, bindings_main, j) != 0) {
		free(j);
		return false;
	}
	c->job = j;
	c->job_running = true;
	return true;
}

static void status(struct ctl *c, struct reply *r)
{
	const struct config *cfg = c->src.cfg;
	const struct dns_stats *d = dns_ctx_stats(c->src.dns);
	const struct dnsserver_stats *t = dnsserver_get_stats(c->src.server);
	struct latency_summary lat;
	uint64_t now = log_now_ms();

	say(r, "uptime %llu s\n",
	    (unsigned long long)((now - c->src.started_ms) / 1000));
	say(r, "dns queries %llu noerror %llu nxdomain %llu refused %llu "
	    "formerr %llu servfail %llu notimp %llu badvers %llu dropped %llu "
	    "rotated %llu truncated %llu\n",
	    (unsigned long long)d->queries, (unsigned long long)d->noerror,
	    (unsigned long long)d->nxdomain, (unsigned long long)d->refused,
	    (unsigned long long)d->formerr, (unsigned long long)d->servfail,
	    (unsigned long long)d->notimp, (unsigned long long)d->badvers,
	    (unsigned long long)d->dropped, (unsigned long long)d->rotated,
	    (unsigned long long)d->truncated);
	say(r, "udp received %llu sent %llu send_errors %llu batches %llu\n",
	    (unsigned long long)t->udp_received, (unsigned long long)t->udp_sent,
	    (unsigned long long)t->udp_send_errors,
	    (unsigned long long)t->udp_batches);
	dnsserver_get_latency(c->src.server, &lat);
	say(r, "answer_latency_us p50 %llu p99 %llu max %llu batches %llu\n",
	    (unsigned long long)lat.p50_us, (unsigned long long)lat.p99_us,
	    (unsigned long long)lat.max_us, (unsigned long long)lat.count);
	say(r, "tcp open %zu accepted %llu refused %llu timeouts %llu queries %llu\n",
	    t->tcp_open, (unsigned long long)t->tcp_accepted,
	    (unsigned long long)t->tcp_refused,
	    (unsigned long long)t->tcp_timeouts,
	    (unsigned long long)t->tcp_queries);
	gateway_status(c, r);
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct config_service *svc = &cfg->services[i];
		static const int families[] = { AF_INET, AF_INET6 };

		say(r, "service %s name %s max_open %u window %u binding %u rotate %u\n",
		    svc->section, svc->name, svc->max_open, svc->window,
		    svc->binding, svc->rotate);
		for (size_t f = 0; f < 2; f++) {
			const struct addr_prefix *pool =
				families[f] == AF_INET ? &svc->pool : &svc->pool6;
			struct rotor_stats st;
			char buf[ADDR_STRLEN];

			if (families[f] == AF_INET6 && !svc->has_pool6)
				continue;
			if (rotor_get_stats(c->src.rotor, i, families[f], now, &st) < 0)
				continue;
			say(r, "  pool %s answers %llu opened %llu reused %llu "
			    "open_now %zu\n", addr_prefix_format(pool, buf),
			    (unsigned long long)st.answers,
			    (unsigned long long)st.opened,
			    (unsigned long long)st.reused, st.open_now);
			gateway_service(c, r, i, families[f]);
		}
	}
}

struct open_walk {
	struct reply *r;
	int family;
};

static void open_one(void *ctx, const uint8_t addr[16], uint64_t ms_left)
{
	struct open_walk *w = ctx;
	char buf[ADDR_STRLEN];

	say(w->r, "  %s %llu ms\n", addr_format(w->family, addr, buf),
	    (unsigned long long)ms_left);
}

static void list_open(struct ctl *c, struct reply *r)
{
	const struct config *cfg = c->src.cfg;
	uint64_t now = log_now_ms();

	for (size_t i = 0; i < cfg->n_services; i++) {
		struct open_walk w = { .r = r, .family = AF_INET };

		say(r, "service %s\n", cfg->services[i].section);
		rotor_foreach_open(c->src.rotor, i, AF_INET, now, open_one, &w);
		if (cfg->services[i].has_pool6) {
			w.family = AF_INET6;
			rotor_foreach_open(c->src.rotor, i, AF_INET6, now, open_one, &w);
		}
	}
}

static const struct {
	const char *name;
	void (*fn)(struct ctl *c, struct reply *r);
} commands[] = {
	{ "status", status },  /* counters and state of each service */
	{ "open", list_open }, /* addresses open to any source now */
};

static void handle(struct ctl *c, const char *line, struct reply *r)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(line, commands[i].name) == 0) {
			commands[i].fn(c, r);
			return;
		}
	}
	say(r, "error: unknown command; commands are:");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		say(r, " %s", commands[i].name);
	say(r, " bindings\n");
}

/* Read one line of at most CTL_MAX_LINE printable bytes. */
static int read_line(int fd, char *line)
{
	size_t len = 0;

	while (len < CTL_MAX_LINE) {
		ssize_t n = recv(fd, line + len, CTL_MAX_LINE - len, 0);

		if (n <= 0)
			return -EIO;
		for (ssize_t i = 0; i < n; i++) {
			unsigned char ch = (unsigned char)line[len + (size_t)i];

			if (ch == '\n') {
				line[len + (size_t)i] = '\0';
				return 0;
			}
			if (ch < 0x20 || ch > 0x7e)
				return -EINVAL;
		}
		len += (size_t)n;
	}
	return -E2BIG;
}

static void on_client(struct loop_handler *h, uint32_t events)
{
	struct ctl *c = (struct ctl *)h;
	struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
	char line[CTL_MAX_LINE + 1];
	struct reply r = { 0 };
	int fd, ret;

	(void)events;
	fd = accept4(h->fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	/* a local client that stalls must not stall the DNS service for long */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	r.cap = REPLY_MAX;
	r.buf = malloc(r.cap);
	if (!r.buf) {
		close(fd);
		return;
	}
	r.buf[0] = '\0';
	ret = read_line(fd, line);
	if (ret == 0 && strcmp(line, "bindings") == 0) {
		free(r.buf);
		/* the thread owns fd now; at most one listing at a time */
		if (!bindings_start(c, fd)) {
			static const char msg[] = "error: a bindings listing is "
				"already running (or no memory); try again\n";

			send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL);
			close(fd);
		}
		return;
	}
	if (ret == -EINVAL)
		say(&r, "error: the command must be printable ASCII\n");
	else if (ret == -E2BIG)
		say(&r, "error: command longer than %d bytes\n", CTL_MAX_LINE);
	else if (ret == 0)
		handle(c, line, &r);
	if (r.full)
		say(&r, "error: reply truncated\n");
	for (size_t off = 0; off < r.len;) {
		ssize_t n = send(fd, r.buf + off, r.len - off, MSG_NOSIGNAL);

		if (n <= 0)
			break;
		off += (size_t)n;
	}
	free(r.buf);
	close(fd);
}

struct ctl *ctl_new(const struct ctl_sources *src, struct loop *loop)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct ctl *c = calloc(1, sizeof(*c));
	const char *path = src->cfg->control;
	char *dir = NULL, *slash;
	struct stat st;
	mode_t old;
	int fd = -1;

	if (!c) {
		log_err("out of memory");
		return NULL;
	}
	c->h.fd = -1;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_err("control socket path '%s' is too long (at most %zu bytes)",
			path, sizeof(sun.sun_path) - 1);
		goto fail;
	}
	strcpy(sun.sun_path, path);
	strcpy(c->path, path);

	dir = strdup(path);
	if (!dir)
		goto fail;
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			log_err("control socket directory %s: %m", dir);
			goto fail;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		goto sockfail;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_err("control socket %s: exists and is not a socket", path);
			goto fail;
		}
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0 ||
		    errno == EAGAIN) {
			log_err("control socket %s: another choreod is using it", path);
			goto fail;
		}
		close(fd);
		unlink(path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			goto sockfail;
	}
	/* created 0600 from the start: no window where others could connect */
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		umask(old);
		goto sockfail;
	}
	umask(old);
	if (listen(fd, 16) < 0)
		goto sockfail;
	c->h.fd = fd;
	c->h.fn = on_client;
	c->loop = loop;
	c->src = *src;
	if (loop_add(loop, &c->h, EPOLLIN) < 0)
		goto sockfail;
	free(dir);
	return c;
sockfail:
	log_err("control socket %s: %m", path);
fail:
	if (fd >= 0)
		close(fd);
	if (c->h.fd >= 0)
		unlink(path);
	free(dir);
	free(c);
	return NULL;
}

void ctl_free(struct ctl *c)
{
	if (!c)
		return;
	if (c->job_running) {
		pthread_join(c->job_thread, NULL);
		free(c->job);
	}
	loop_del(c->loop, &c->h);
	close(c->h.fd);
	unlink(c->path);
	free(c);
}
