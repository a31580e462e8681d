/* SPDX-License-Identifier: MIT */
/* A minimal epoll event loop: handlers for file descriptors and a tick. */
#ifndef CHOREO_LOOP_H
#define CHOREO_LOOP_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

/* The structure a member is embedded in (loop handlers, interfaces). */
#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

struct loop_handler {
	int fd;
	void (*fn)(struct loop_handler *h, uint32_t events);
};

struct loop;

struct loop *loop_new(void);
void loop_free(struct loop *l);

/* Watch h->fd for events (EPOLLIN/EPOLLOUT); h must stay valid while added. */
int loop_add(struct loop *l, struct loop_handler *h, uint32_t events);
int loop_mod(struct loop *l, struct loop_handler *h, uint32_t events);
void loop_del(struct loop *l, struct loop_handler *h);

/* Called about once a second with the monotonic time in ms. */
void loop_set_tick(struct loop *l, void (*tick)(void *ctx, uint64_t now_ms),
		   void *ctx);

/* Run until *stop becomes non-zero. Returns 0, or -errno on a loop failure. */
int loop_run(struct loop *l, const volatile sig_atomic_t *stop);

/* Wait at most timeout_ms for events and handle them (and the tick when
 * due). Returns the number of events handled, or -errno. */
int loop_run_once(struct loop *l, int timeout_ms);

#endif
