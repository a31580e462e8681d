// SPDX-License-Identifier: MIT
#include "change_log.h"

#include <stdlib.h>

struct entry {
	struct change c;
	uint64_t expiry_ms;
};

struct change_log {
	struct entry *e;
	size_t cap, head, n;  /* head: the oldest */
	uint64_t head_no;     /* the number of the oldest */
	uint64_t lost;
};

struct change_log *change_log_new(size_t cap)
{
	struct change_log *l = cap ? calloc(1, sizeof(*l)) : NULL;

	if (!l)
		return NULL;
	l->e = calloc(cap, sizeof(*l->e));
	if (!l->e) {
		free(l);
		return NULL;
	}
	l->cap = cap;
	return l;
}

void change_log_free(struct change_log *l)
{
	if (!l)
		return;
	free(l->e);
	free(l);
}

/* The i-th entry from the oldest (i < cap; no division: cap >= 1). */
static struct entry *at(const struct change_log *l, size_t i)
{
	size_t k = l->head + i;

	return &l->e[k >= l->cap ? k - l->cap : k];
}

static void pop(struct change_log *l)
{
	l->head = l->head + 1 == l->cap ? 0 : l->head + 1;
	l->head_no++;
	l->n--;
}

uint64_t change_log_add(struct change_log *l, const struct change *c, size_t n,
			uint64_t now_ms)
{
	uint64_t first;

	/* the expired ones at the front are of no more use */
	while (l->n && at(l, 0)->expiry_ms <= now_ms)
		pop(l);
	first = l->head_no + l->n;
	for (size_t i = 0; i < n; i++) {
		struct entry *slot;

		if (l->n == l->cap) {
			/* full: the oldest goes */
			l->lost += at(l, 0)->expiry_ms > now_ms;
			pop(l);
		}
		slot = at(l, l->n);
		slot->c = c[i];
		slot->expiry_ms = now_ms + c[i].ms;
		l->n++;
	}
	return first;
}

void change_log_drop(struct change_log *l, uint64_t first, size_t n)
{
	for (uint64_t no = first; no < first + n; no++)
		if (no >= l->head_no && no < l->head_no + l->n)
			at(l, (size_t)(no - l->head_no))->expiry_ms = 0;
}

size_t change_log_live(const struct change_log *l, uint64_t now_ms,
		       void (*fn)(void *ctx, const struct change *c), void *ctx)
{
	size_t visited = 0;

	for (size_t i = 0; i < l->n; i++) {
		const struct entry *x = at(l, i);
		struct change c;

		if (x->expiry_ms <= now_ms)
			continue;
		c = x->c;
		c.ms = (uint32_t)(x->expiry_ms - now_ms);
		fn(ctx, &c);
		visited++;
	}
	return visited;
}

uint64_t change_log_lost(const struct change_log *l)
{
	return l->lost;
}
