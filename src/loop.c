// SPDX-License-Identifier: MIT
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "log.h"

#define MAX_EVENTS 64

struct loop {
	int epfd;
	void (*tick)(void *ctx, uint64_t now_ms);
	void *tick_ctx;
	uint64_t last_tick;
};

struct loop *loop_new(void)
{
	struct loop *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		free(l);
		return NULL;
	}
	return l;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	close(l->epfd);
	free(l);
}

static int ctl(struct loop *l, int op, struct loop_handler *h, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = h };

	return epoll_ctl(l->epfd, op, h->fd, &ev) == 0 ? 0 : -errno;
}

int loop_add(struct loop *l, struct loop_handler *h, uint32_t events)
{
	return ctl(l, EPOLL_CTL_ADD, h, events);
}

int loop_mod(struct loop *l, struct loop_handler *h, uint32_t events)
{
	return ctl(l, EPOLL_CTL_MOD, h, events);
}

void loop_del(struct loop *l, struct loop_handler *h)
{
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, h->fd, NULL);
}

void loop_set_tick(struct loop *l, void (*tick)(void *ctx, uint64_t now_ms),
		   void *ctx)
{
	l->tick = tick;
	l->tick_ctx = ctx;
	l->last_tick = log_now_ms();
}

int loop_run_once(struct loop *l, int timeout_ms)
{
	struct epoll_event ev[MAX_EVENTS];
	int n = epoll_wait(l->epfd, ev, MAX_EVENTS, timeout_ms);
	uint64_t now;

	if (n < 0) {
		if (errno == EINTR)
			return 0;
		log_err("epoll_wait: %m");
		return -errno;
	}
	for (int i = 0; i < n; i++) {
		struct loop_handler *h = ev[i].data.ptr;

		h->fn(h, ev[i].events);
	}
	now = log_now_ms();
	if (l->tick && now - l->last_tick >= 1000) {
		l->last_tick = now;
		l->tick(l->tick_ctx, now);
	}
	return n;
}

int loop_run(struct loop *l, const volatile sig_atomic_t *stop)
{
	while (!*stop) {
		int ret = loop_run_once(l, 1000);

		if (ret < 0)
			return ret;
	}
	return 0;
}
