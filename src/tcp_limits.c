// SPDX-License-Identifier: MIT
#include "tcp_limits.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

int tcp_sources_init(struct tcp_sources *t, size_t max_conns, uint64_t seed)
{
	size_t n = 16;

	/* at most half full, so probes stay short */
	while (n < 2 * max_conns)
		n *= 2;
	t->slot = calloc(n, sizeof(*t->slot));
	if (!t->slot)
		return -ENOMEM;
	t->mask = n - 1;
	t->seed = seed;
	return 0;
}

void tcp_sources_free(struct tcp_sources *t)
{
	free(t->slot);
	t->slot = NULL;
	t->mask = 0;
}

void tcp_src_key(const struct sockaddr_storage *ss, uint8_t key[static TCP_SRC_KEY])
{
	memset(key, 0, TCP_SRC_KEY);
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		key[0] = 4;
		memcpy(key + 1, &sin->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		key[0] = 6;
		memcpy(key + 1, &sin6->sin6_addr, 8); /* the /64 */
	}
}

static size_t hash(const struct tcp_sources *t, const uint8_t *key)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ t->seed;

	for (size_t i = 0; i < TCP_SRC_KEY; i++) {
		h ^= key[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 32;
	return (size_t)h & t->mask;
}

/* The slot of key, or the empty slot where it would go. */
static size_t find(const struct tcp_sources *t, const uint8_t *key)
{
	size_t i = hash(t, key);

	for (size_t n = 0; n <= t->mask; n++, i = (i + 1) & t->mask)
		if (!t->slot[i].count || !memcmp(t->slot[i].key, key, TCP_SRC_KEY))
			return i;
	return SIZE_MAX;
}

int tcp_sources_add(struct tcp_sources *t, const uint8_t key[static TCP_SRC_KEY],
		    uint32_t limit)
{
	size_t i = find(t, key);

	if (i == SIZE_MAX)
		return -ENOSPC;
	if (t->slot[i].count >= limit)
		return -EBUSY;
	if (!t->slot[i].count)
		memcpy(t->slot[i].key, key, TCP_SRC_KEY);
	t->slot[i].count++;
	return 0;
}

void tcp_sources_del(struct tcp_sources *t, const uint8_t key[static TCP_SRC_KEY])
{
	size_t i = find(t, key), j;

	if (i == SIZE_MAX || !t->slot[i].count || --t->slot[i].count)
		return;
	/* emptied: shift back the entries after it that probed past it */
	j = i;
	for (size_t n = 0; n < t->mask; n++) {
		size_t home;

		j = (j + 1) & t->mask;
		if (!t->slot[j].count)
			break;
		home = hash(t, t->slot[j].key);
		/* j may move to i unless its home lies cyclically in (i, j] */
		if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
			t->slot[i] = t->slot[j];
			t->slot[j].count = 0;
			i = j;
		}
	}
}

uint32_t tcp_sources_count(const struct tcp_sources *t,
			   const uint8_t key[static TCP_SRC_KEY])
{
	size_t i = find(t, key);

	return i == SIZE_MAX ? 0 : t->slot[i].count;
}

size_t tcp_frames_end(const uint8_t *buf, size_t len, size_t *need)
{
	size_t off = 0, want = 2;

	while (len - off >= 2) {
		size_t mlen = (size_t)buf[off] << 8 | buf[off + 1];

		want = 2 + mlen;
		if (len - off < want)
			break;
		off += want;
		want = 2;
	}
	if (need)
		*need = want;
	return off;
}

void tcp_clock_read(struct tcp_clock *c, size_t before, size_t end, size_t len,
		    uint64_t now_ms)
{
	if (end == len) {
		c->partial = false;
	} else if (!c->partial || end >= before) {
		c->partial = true;
		c->msg_ms = now_ms;
	}
}

static bool past(uint64_t now, uint64_t since, uint64_t limit)
{
	return now >= since && now - since >= limit;
}

enum tcp_verdict tcp_clock_check(const struct tcp_clock *c, uint64_t now_ms,
				 uint64_t deadline_ms, uint64_t idle_ms)
{
	if (c->pending)
		return TCP_KEEP;
	/* not reading meanwhile: only the client's reading counts */
	if (c->unsent)
		return past(now_ms, c->out_ms, deadline_ms) ? TCP_STALLED : TCP_KEEP;
	if (c->partial)
		return past(now_ms, c->msg_ms, deadline_ms) ? TCP_SLOW : TCP_KEEP;
	return past(now_ms, c->last_ms, idle_ms) ? TCP_IDLE : TCP_KEEP;
}
