// SPDX-License-Identifier: MIT
#include "relay.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "crypto.h"

struct slot {
	uint8_t key[36];      /* see key_of */
	uint64_t at_ms;       /* reported then */
	bool used;
};

struct relay_cache {
	uint8_t seed[16];     /* so that a client cannot aim collisions */
	struct slot *slots;
};

struct relay_cache *relay_cache_new(void)
{
	struct relay_cache *rc = calloc(1, sizeof(*rc));

	if (!rc)
		return NULL;
	rc->slots = calloc(RELAY_CACHE_SLOTS, sizeof(*rc->slots));
	if (!rc->slots || crypto_random(rc->seed, sizeof(rc->seed)) < 0) {
		relay_cache_free(rc);
		return NULL;
	}
	return rc;
}

void relay_cache_free(struct relay_cache *rc)
{
	if (!rc)
		return;
	free(rc->slots);
	free(rc);
}

/* The key: service (2) . family (1) . 0 . src (16) . addr (16). */
static void key_of(uint8_t key[static 36], uint16_t service, int family,
		   const uint8_t *src, const uint8_t *addr)
{
	size_t alen = family == AF_INET6 ? 16 : 4;

	memset(key, 0, 36);
	key[0] = (uint8_t)(service >> 8);
	key[1] = (uint8_t)service;
	key[2] = family == AF_INET6 ? 6 : 4;
	memcpy(key + 4, src, alen);
	memcpy(key + 20, addr, alen);
}

/* FNV-1a over the seed and the key: enough to spread the slots. */
static size_t slot_of(const struct relay_cache *rc, const uint8_t *key)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < sizeof(rc->seed); i++)
		h = (h ^ rc->seed[i]) * 0x100000001b3ull;
	for (size_t i = 0; i < 36; i++)
		h = (h ^ key[i]) * 0x100000001b3ull;
	return (size_t)(h % RELAY_CACHE_SLOTS);
}

bool relay_cache_due(struct relay_cache *rc, uint16_t service, int family,
		     const uint8_t src[static 16], const uint8_t addr[static 16],
		     uint64_t now_ms, uint32_t coalesce_ms)
{
	uint8_t key[36];
	struct slot *s;

	key_of(key, service, family, src, addr);
	s = &rc->slots[slot_of(rc, key)];
	if (s->used && memcmp(s->key, key, sizeof(key)) == 0 &&
	    now_ms >= s->at_ms && now_ms - s->at_ms < coalesce_ms)
		return false;
	memcpy(s->key, key, sizeof(key));
	s->at_ms = now_ms;
	s->used = true;
	return true;
}
