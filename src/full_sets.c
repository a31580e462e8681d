// SPDX-License-Identifier: MIT
#include "full_sets.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

static ssize_t pool_index(const struct config *cfg, size_t service, int family)
{
	if (service >= CONFIG_MAX_SERVICES || (cfg && service >= cfg->n_services))
		return -1;
	if (family != AF_INET && family != AF_INET6)
		return -1;
	return (ssize_t)(service * 2 + (family == AF_INET6));
}

void full_sets_mark(struct full_sets *f, size_t service, int family,
		    bool is_scoped, uint64_t now_ms)
{
	ssize_t i = pool_index(NULL, service, family);
	uint64_t until = now_ms + FULL_SETS_BACKOFF_MS;

	if (i < 0)
		return;
	if (is_scoped)
		f->scoped_until[i] = until;
	else
		f->asked_until[i] = until;
	if (until > f->latest)
		f->latest = until;
}

bool full_sets_any(const struct full_sets *f, uint64_t now_ms)
{
	return now_ms < f->latest;
}

/* The window that already lets the asker of entry b in: the next change. */
static bool covered(const struct config *cfg, const struct change *b,
		    const struct change *next)
{
	return next && next->kind == CHANGE_OPEN &&
	       next->service == b->service && next->family == b->family &&
	       memcmp(next->addr, b->addr, sizeof(b->addr)) == 0 &&
	       next->ms >= b->ms && cfg->services[b->service].window_claims == 0;
}

ssize_t full_sets_filter(struct full_sets *f, const struct config *cfg,
			 const struct change *in, size_t n, struct change *out,
			 uint64_t now_ms)
{
	size_t k = 0, skipped = 0;

	for (size_t i = 0; i < n; i++) {
		const struct change *c = &in[i];
		ssize_t p = pool_index(cfg, c->service, c->family);
		bool asked_full = p >= 0 && now_ms < f->asked_until[p];
		bool scoped_full = p >= 0 && now_ms < f->scoped_until[p];

		if (c->kind == CHANGE_BIND && asked_full) {
			if (!covered(cfg, c, i + 1 < n ? &in[i + 1] : NULL)) {
				f->refused++;
				return -ENFILE;
			}
			skipped++;
			continue;
		}
		if (c->kind == CHANGE_OPEN_SCOPED && scoped_full) {
			f->refused++;
			return -ENFILE;
		}
		out[k++] = *c;
	}
	f->skipped += skipped;
	return (ssize_t)k;
}
