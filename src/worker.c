// SPDX-License-Identifier: MIT
#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "config.h"
#include "gw_policy.h"
#include "log.h"
#include "nft.h"

#define COUNTER_PERIOD_MS 5000     /* counters are cheap: read them this often */
#define DUMP_TIMEOUT_MS   120000   /* a dump of millions of elements is slow */
#define LIST_SEND_TIMEOUT_S 5      /* a control client that stops reading */

struct worker {
	const struct config *cfg;
	struct nft *nft;           /* used by the thread only */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int done_fd;
	bool stop, want_counts;
	int list_fd;               /* a listing to do, or -1 */
	bool listing;              /* one is queued or running */
	/* the snapshot, under lock */
	struct gateway_pool_counts pool[CONFIG_MAX_POOLS];
	bool counters_known, sets_known;
	uint64_t counters_ms, sets_ms;
	struct gateway_pool_counts scratch[CONFIG_MAX_POOLS]; /* the thread's */
};

/* ---- counting ------------------------------------------------------------------- */

struct counter_names {
	const struct config *cfg;
	struct gateway_pool_counts *pool;
};

static void counter_one(void *ctx, const char *name, uint64_t packets)
{
	struct counter_names *cn = ctx;
	struct gateway_pool_counts *c;
	enum gw_pool_obj obj;
	size_t service;
	int family;

	if (gw_parse_name(cn->cfg, name, &service, &family, &obj) < 0)
		return;
	c = &cn->pool[service * 2 + (family == AF_INET6)];
	switch (obj) {
	case GW_C_SERVER: c->server = packets; break;
	case GW_C_HONEYPOT: c->honeypot = packets; break;
	case GW_C_LEARNED: c->learned = packets; break;
	case GW_C_WINDOW: c->via_window = packets; break;
	case GW_C_CLAIM: c->claims = packets; break;
	default: break;
	}
}

static void count(struct worker *w, bool sets)
{
	struct gateway_pool_counts *pool = w->scratch;
	struct counter_names cn = { w->cfg, pool };
	bool counters_ok;

	pthread_mutex_lock(&w->lock);
	memcpy(pool, w->pool, sizeof(w->pool));
	pthread_mutex_unlock(&w->lock);
	counters_ok = nft_dump_counters(w->nft, w->cfg->table, counter_one, &cn) == 0;
	if (sets) {
		config_for_each_pool(w->cfg, p) {
			char name[GW_NAME_MAX];

			gw_name(name, w->cfg, p.service, p.family, GW_BOUND);
			pool[p.index].bound = nft_dump_elems(w->nft, w->cfg->table, name, NULL, NULL);
			gw_name(name, w->cfg, p.service, p.family, GW_ASKED);
			pool[p.index].asked = nft_dump_elems(w->nft, w->cfg->table, name, NULL, NULL);
			gw_name(name, w->cfg, p.service, p.family, GW_OPEN);
			pool[p.index].open = nft_dump_elems(w->nft, w->cfg->table, name, NULL, NULL);
			if (pool[p.index].bound < 0)
				pool[p.index].bound = -1;
			if (pool[p.index].asked < 0)
				pool[p.index].asked = -1;
			if (pool[p.index].open < 0)
				pool[p.index].open = -1;
		}
	}
	pthread_mutex_lock(&w->lock);
	memcpy(w->pool, pool, sizeof(w->pool));
	if (counters_ok) {
		w->counters_known = true;
		w->counters_ms = log_now_ms();
	}
	if (sets) {
		w->sets_known = true;
		w->sets_ms = log_now_ms();
	}
	pthread_mutex_unlock(&w->lock);
}

/* ---- listing -------------------------------------------------------------------------- */

struct listing {
	int fd;
	int family;
	const char *service;
	char buf[64 * 1024];
	size_t len;
	bool broken;
};

static void flush(struct listing *l)
{
	for (size_t off = 0; off < l->len && !l->broken;) {
		ssize_t n = send(l->fd, l->buf + off, l->len - off, MSG_NOSIGNAL);

		if (n <= 0)
			l->broken = true; /* the client went away or stalled */
		else
			off += (size_t)n;
	}
	l->len = 0;
}

__attribute__((format(printf, 2, 3)))
static void say(struct listing *l, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (l->broken)
		return;
	if (sizeof(l->buf) - l->len < 256)
		flush(l);
	va_start(ap, fmt);
	n = vsnprintf(l->buf + l->len, sizeof(l->buf) - l->len, fmt, ap);
	va_end(ap);
	if (n > 0 && (size_t)n < sizeof(l->buf) - l->len)
		l->len += (size_t)n;
}

static void binding_one(void *ctx, const uint8_t *key, uint32_t key_len,
			const uint8_t *key_end, uint64_t ms_left)
{
	struct listing *l = ctx;
	size_t alen = addr_family_size(l->family);
	uint8_t src[16] = { 0 }, addr[16] = { 0 };
	char a[ADDR_STRLEN], b[ADDR_STRLEN];

	(void)key_end;
	if (key_len != 2 * alen)
		return;
	memcpy(src, key, alen);
	memcpy(addr, key + alen, alen);
	say(l, "%s %s %s %llu ms\n", l->service, addr_format(l->family, src, a),
	    addr_format(l->family, addr, b), (unsigned long long)ms_left);
}

static void list_bindings(struct worker *w, int fd)
{
	struct timeval tv = { .tv_sec = LIST_SEND_TIMEOUT_S };
	struct listing *l = calloc(1, sizeof(*l));

	if (!l) {
		close(fd);
		return;
	}
	l->fd = fd;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	config_for_each_pool(w->cfg, p) {
		char name[GW_NAME_MAX];

		if (l->broken)
			break;
		l->family = p.family;
		l->service = p.svc->section;
		gw_name(name, w->cfg, p.service, p.family, GW_BOUND);
		if (nft_dump_elems(w->nft, w->cfg->table, name, binding_one, l) < 0)
			say(l, "error: cannot read the bindings of %s\n", l->service);
	}
	flush(l);
	close(fd);
	free(l);
}

/* ---- the thread ------------------------------------------------------------------------- */

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t last_counters = 0;

	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		struct timespec until;
		uint64_t now = log_now_ms();
		bool sets = w->want_counts;
		int fd = w->list_fd;

		if (sets || fd >= 0 || now - last_counters >= COUNTER_PERIOD_MS) {
			w->want_counts = false;
			w->list_fd = -1;
			pthread_mutex_unlock(&w->lock);
			if (fd >= 0) {
				list_bindings(w, fd);
			} else {
				count(w, sets);
				last_counters = log_now_ms();
				if (sets) {
					uint64_t one = 1;

					if (write(w->done_fd, &one, sizeof(one)) < 0)
						log_debug("worker: eventfd: %m");
				}
			}
			pthread_mutex_lock(&w->lock);
			if (fd >= 0)
				w->listing = false;
			continue;
		}
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += COUNTER_PERIOD_MS / 1000;
		pthread_cond_timedwait(&w->wake, &w->lock, &until);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int worker_start(const struct config *cfg, struct worker **out)
{
	struct worker *w = calloc(1, sizeof(*w));
	sigset_t all, old;
	int ret;

	*out = NULL;
	if (!w)
		return -ENOMEM;
	w->cfg = cfg;
	w->list_fd = -1;
	for (size_t i = 0; i < CONFIG_MAX_POOLS; i++)
		w->pool[i].bound = w->pool[i].asked = w->pool[i].open = -1;
	w->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->done_fd < 0) {
		ret = -errno;
		free(w);
		return ret;
	}
	ret = nft_open(DUMP_TIMEOUT_MS, &w->nft);
	if (ret < 0)
		goto fail;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->wake, NULL);
	/* signals are the event loop's: the thread starts with all blocked */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = -pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		pthread_mutex_destroy(&w->lock);
		pthread_cond_destroy(&w->wake);
		goto fail;
	}
	*out = w;
	return 0;
fail:
	nft_close(w->nft);
	close(w->done_fd);
	free(w);
	return ret;
}

void worker_stop(struct worker *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	if (w->list_fd >= 0)
		close(w->list_fd);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->wake);
	nft_close(w->nft);
	close(w->done_fd);
	free(w);
}

int worker_done_fd(const struct worker *w)
{
	return w->done_fd;
}

void worker_take_done(struct worker *w)
{
	uint64_t v;

	if (read(w->done_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_debug("worker: eventfd: %m");
}

void worker_request_counts(struct worker *w)
{
	pthread_mutex_lock(&w->lock);
	w->want_counts = true;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
}

void worker_snapshot(struct worker *w, struct gateway_snapshot *out)
{
	uint64_t now = log_now_ms();

	pthread_mutex_lock(&w->lock);
	memcpy(out->pool, w->pool, sizeof(out->pool));
	out->counters_known = w->counters_known;
	out->sets_known = w->sets_known;
	out->counters_age_ms = w->counters_known ? now - w->counters_ms : 0;
	out->sets_age_ms = w->sets_known ? now - w->sets_ms : 0;
	pthread_mutex_unlock(&w->lock);
}

int worker_list_bindings(struct worker *w, int fd)
{
	int ret = 0;

	pthread_mutex_lock(&w->lock);
	if (w->listing) {
		ret = -EBUSY;
	} else {
		w->listing = true;
		w->list_fd = fd;
		pthread_cond_signal(&w->wake);
	}
	pthread_mutex_unlock(&w->lock);
	return ret;
}
