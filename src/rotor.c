// SPDX-License-Identifier: MIT
#include "rotor.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "addr.h"
#include "config.h"
#include "log.h"

#define ROTOR_RND_BUF 4096

struct rotor_slot {
	uint8_t addr[16];
	uint64_t expiry_ms;        /* end of the window; counted open until
				      expiry_ms + the rotor's slack_ms */
};

struct rotor_pool {
	bool enabled;              /* the service has a pool of this family */
	bool valid;                /* ... and it can be drawn from */
	bool assigned;             /* a controller's node: its slice is known
				      (always true without a controller) */
	size_t slots;              /* open's size: max_open, or the pool's */
	int family;
	uint8_t base[16];          /* the prefix, host bits zero */
	unsigned host_bits;
	uint32_t max_open;
	struct rotor_slot *open;   /* n_open entries, distinct addresses */
	size_t n_open, cap;        /* cap: max_open, or fewer when the pool
				      holds fewer addresses */
	bool has_current;
	uint8_t current[16];
	uint64_t current_ms;       /* when current became current */
	uint64_t answers, opened, reused;
};

struct rotor_service {
	struct rotor_pool v4, v6;
};

/*
 * Not thread-safe: one rotor belongs to one thread (the DNS loop), which is
 * also what keeps the max_open accounting exact.
 */
struct rotor {
	const struct config *cfg;
	rotor_random_fn rnd;
	void *rnd_ctx;
	size_t n_services;
	struct rotor_service *svc;
	uint64_t slack_ms;         /* counted past a window's end: how late
				      its commit may land on a gateway */
	size_t rnd_pos;            /* bytes of rnd_buf already handed out */
	uint8_t rnd_buf[ROTOR_RND_BUF];
};

/*
 * A failing getrandom(2) (ENOSYS, EFAULT...) leaves no safe way to go on: an
 * answer from a weak source would let a scanner who asked once predict the
 * next open address, which is exactly what choreo exists to prevent. So the
 * daemon stops rather than degrade.
 */
static void rnd_refill(struct rotor *r)
{
	size_t got = 0;

	while (got < sizeof(r->rnd_buf)) {
		ssize_t n = getrandom(r->rnd_buf + got,
				      sizeof(r->rnd_buf) - got, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_err("rotor: getrandom: %s; refusing to hand out predictable addresses",
				strerror(errno));
			abort();
		}
		got += (size_t)n;
	}
	r->rnd_pos = 0;
}

static void rnd_bytes(struct rotor *r, uint8_t *out, size_t len)
{
	if (!len)
		return;
	if (r->rnd) {
		r->rnd(r->rnd_ctx, out, len);
		return;
	}
	while (len) {
		size_t n;

		if (r->rnd_pos == sizeof(r->rnd_buf))
			rnd_refill(r);
		n = sizeof(r->rnd_buf) - r->rnd_pos;
		if (n > len)
			n = len;
		memcpy(out, r->rnd_buf + r->rnd_pos, n);
		/* bytes still in memory must not reveal past draws */
		explicit_bzero(r->rnd_buf + r->rnd_pos, n);
		r->rnd_pos += n;
		out += n;
		len -= n;
	}
}

/* Uniform in [0, n), n >= 1: masked draws, rejected when >= n (no modulo bias). */
static uint32_t rnd_below(struct rotor *r, uint32_t n)
{
	unsigned bits = 0;
	size_t nbytes;

	if (n <= 1)
		return 0;
	while (bits < 32 && ((uint64_t)1 << bits) < n)
		bits++;
	nbytes = (bits + 7) / 8;
	for (;;) {
		uint8_t b[4];
		uint64_t v = 0;

		rnd_bytes(r, b, nbytes);
		for (size_t i = 0; i < nbytes; i++)
			v = v << 8 | b[i];
		v &= ((uint64_t)1 << bits) - 1;
		if (v < n)
			return (uint32_t)v;
	}
}

/* choreod's own DNS addresses are never handed out: the gateway lets them
 * through untouched (the configuration refuses a pool made only of them). */
static bool is_listen_address(const struct rotor *r, int family,
			      const uint8_t a[static 16])
{
	for (size_t i = 0; i < r->cfg->n_listen; i++) {
		uint8_t l[16];
		int lf;

		if (addr_from_sockaddr((const struct sockaddr *)&r->cfg->listen[i],
				       &lf, l) == 0 && lf == family &&
		    memcmp(l, a, 16) == 0)
			return true;
	}
	return false;
}

/*
 * Every address of an IPv4 pool may be drawn but choreod's listen
 * addresses; in IPv6 the all-zero host part (the subnet-router anycast
 * address, RFC 4291 2.6.1) is rejected too. The host
 * bits are taken straight from fresh random bytes, big-endian, so the draw is
 * uniform and depends on nothing else.
 */
static void pool_draw(struct rotor *r, const struct rotor_pool *p,
		      uint8_t out[static 16])
{
	size_t size = addr_family_size(p->family);
	size_t nbytes = (p->host_bits + 7) / 8;
	uint8_t host[16] = { 0 };

	for (;;) {
		bool zero = true;

		rnd_bytes(r, host, nbytes);
		if (p->host_bits % 8)
			host[0] &= (uint8_t)(0xff >> (8 - p->host_bits % 8));
		for (size_t i = 0; i < nbytes; i++)
			zero = zero && !host[i];
		if (p->family == AF_INET6 && zero)
			continue;
		memcpy(out, p->base, 16);
		for (size_t i = 0; i < nbytes; i++)
			out[size - nbytes + i] |= host[i];
		if (!is_listen_address(r, p->family, out))
			break;
	}
}

/* Whether a could have been drawn from the pool. */
static bool pool_has(const struct rotor *r, const struct rotor_pool *p,
		     const uint8_t a[static 16])
{
	static const uint8_t zero[16];
	size_t size = addr_family_size(p->family);
	uint8_t net[16], host[16];

	memcpy(net, a, 16);
	addr_mask(p->family, net, (unsigned)(size * 8 - p->host_bits));
	if (memcmp(net, p->base, 16) != 0 || memcmp(a + size, zero, 16 - size) != 0)
		return false;
	for (size_t i = 0; i < 16; i++)
		host[i] = a[i] ^ net[i];
	if (p->family == AF_INET6 && memcmp(host, zero, 16) == 0)
		return false; /* the subnet-router anycast address */
	return !is_listen_address(r, p->family, a);
}


static bool slot_counted(const struct rotor *r, const struct rotor_slot *s,
			 uint64_t now_ms)
{
	return now_ms < s->expiry_ms + r->slack_ms;
}

static void pool_expire(const struct rotor *r, struct rotor_pool *p, uint64_t now_ms)
{
	size_t i = 0;

	while (i < p->n_open) {
		if (slot_counted(r, &p->open[i], now_ms))
			i++;
		else
			p->open[i] = p->open[--p->n_open];
	}
}

static ssize_t pool_find(const struct rotor_pool *p, const uint8_t a[static 16])
{
	for (size_t i = 0; i < p->n_open; i++)
		if (!memcmp(p->open[i].addr, a, 16))
			return (ssize_t)i;
	return -1;
}

static int pool_init(struct rotor_pool *p, const struct addr_prefix *pfx,
		     int family, uint32_t max_open)
{
	size_t slots = max_open;
	unsigned bits;

	p->enabled = true;
	p->family = family;
	p->max_open = max_open;
	if (pfx->family != family || !max_open)
		return 0;
	bits = addr_prefix_host_bits(pfx);
	if (bits > addr_family_size(family) * 8 ||
	    (family == AF_INET6 && bits == 0))
		return 0;
	p->host_bits = bits;
	memcpy(p->base, pfx->bytes, 16);
	addr_mask(family, p->base, addr_family_size(family) * 8 - bits);
	/* open entries are distinct pool addresses: no more than the pool holds */
	if (bits < 32) {
		size_t count = ((size_t)1 << bits) - (family == AF_INET6);

		if (count < slots)
			slots = count;
	}
	p->open = calloc(slots, sizeof(*p->open));
	if (!p->open)
		return -ENOMEM;
	p->cap = p->slots = slots;
	p->valid = p->assigned = true;
	return 0;
}

void rotor_free(struct rotor *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_services; i++) {
		free(r->svc[i].v4.open);
		free(r->svc[i].v6.open);
	}
	free(r->svc);
	explicit_bzero(r->rnd_buf, sizeof(r->rnd_buf));
	free(r);
}

struct rotor *rotor_new(const struct config *cfg, rotor_random_fn rnd,
			void *rnd_ctx)
{
	struct rotor *r;

	if (!cfg)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->cfg = cfg;
	r->rnd = rnd;
	r->rnd_ctx = rnd_ctx;
	r->rnd_pos = sizeof(r->rnd_buf); /* first use fills it */
	/* a DNS node's commit is acknowledged up to commit_timeout after the
	 * decision: a gateway may start the window that much later */
	r->slack_ms = ROTOR_EXPIRY_SLACK_MS;
	if (cfg->role == CONFIG_ROLE_DNS && cfg->commit_timeout > r->slack_ms)
		r->slack_ms = cfg->commit_timeout;
	r->svc = calloc(cfg->n_services ? cfg->n_services : 1, sizeof(*r->svc));
	if (!r->svc)
		goto fail;
	r->n_services = cfg->n_services;
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct config_service *s = &cfg->services[i];

		/* a DNS node of the distributed mode: its slice and share */
		if (s->pool.family == AF_INET &&
		    pool_init(&r->svc[i].v4, config_rotor_pool(s, AF_INET), AF_INET,
			      config_rotor_max_open(s)))
			goto fail;
		if (s->has_pool6 &&
		    pool_init(&r->svc[i].v6, config_rotor_pool(s, AF_INET6), AF_INET6,
			      config_rotor_max_open(s)))
			goto fail;
		/* with a controller the slices come from it (rotor_assign) */
		if (cfg->role == CONFIG_ROLE_DNS && config_controller(cfg))
			r->svc[i].v4.assigned = r->svc[i].v6.assigned = false;
	}
	return r;
fail:
	rotor_free(r);
	return NULL;
}

static const struct rotor_pool *pool_of(const struct rotor *r, size_t service,
					int family)
{
	if (!r || service >= r->n_services)
		return NULL;
	if (family == AF_INET)
		return &r->svc[service].v4;
	if (family == AF_INET6)
		return &r->svc[service].v6;
	return NULL;
}

bool rotor_pool_has(const struct rotor *r, size_t service, int family,
		    const uint8_t addr[static 16])
{
	const struct rotor_pool *p = pool_of(r, service, family);

	return p && p->valid && pool_has(r, p, addr);
}

/* How long an answer's windows stay open: the window and a grace for the
 * client's round trip after its resolver's TTL ran out. */
static uint64_t window_ms(const struct config_service *s)
{
	return ((uint64_t)s->window + s->grace) * 1000;
}

/*
 * The prefix length of the scoped window an answer opens, or 0 for none.
 * EDNS Client Subnet is a claim by whoever asks: it is honoured only from
 * a configured resolver, for the answer's family, and only for a client
 * subnet at least as long as [dns] ecs_prefix4/6, which is then the length
 * of the window (a longer subnet is widened to it). All scoped windows of
 * a family have one length: two of them never overlap in the kernel's
 * interval set, so one query can never make another's commit fail.
 */
static unsigned ecs_scope(const struct rotor *r, const struct rotor_query *q,
			  int family)
{
	unsigned want = family == AF_INET ? r->cfg->ecs_prefix4 : r->cfg->ecs_prefix6;
	bool trusted = false;

	if (!q->has_ecs || q->ecs_family != family || q->ecs_len < want ||
	    q->ecs_len > addr_family_size(family) * 8)
		return 0;
	for (size_t i = 0; i < r->cfg->n_ecs_resolvers && !trusted; i++)
		trusted = addr_prefix_contains(&r->cfg->ecs_resolvers[i], q->family,
					       q->src);
	return trusted ? want : 0;
}

static void change_init(struct change *c, enum change_kind kind,
			size_t service, int family, const uint8_t addr[static 16],
			uint64_t ms)
{
	memset(c, 0, sizeof(*c));
	c->kind = (uint8_t)kind;
	c->family = (uint8_t)family;
	c->service = (uint16_t)service;
	c->ms = ms > CHANGE_MAX_MS ? CHANGE_MAX_MS : (uint32_t)ms;
	memcpy(c->addr, addr, 16);
}

/*
 * At the share: an open address to hand out again, drawn among those of
 * the current slice (after a controller's new assignment, others may still
 * be counted until they expire; handing one out would extend a window past
 * the time the controller counts it drained). -1 when there is none.
 */
static ssize_t reuse_index(struct rotor *r, const struct rotor_pool *p)
{
	size_t inside = 0, pick;

	for (size_t i = 0; i < p->n_open; i++)
		inside += pool_has(r, p, p->open[i].addr);
	if (!inside)
		return -1;
	pick = rnd_below(r, (uint32_t)inside);
	for (size_t i = 0; i < p->n_open; i++)
		if (pool_has(r, p, p->open[i].addr) && pick-- == 0)
			return (ssize_t)i;
	return -1;
}

int rotor_assign(struct rotor *r, size_t service, int family,
		 const struct addr_prefix *slice, uint32_t share)
{
	struct rotor_pool *p = (struct rotor_pool *)pool_of(r, service, family);
	const struct config_service *s;
	const struct addr_prefix *pool;
	unsigned bits;

	if (!p || !p->valid)
		return p && p->enabled ? -EINVAL : -ENODATA;
	s = &r->cfg->services[service];
	pool = family == AF_INET6 ? &s->pool6 : &s->pool;
	if (!slice || !share) {
		p->assigned = false;
		return 0;
	}
	if (slice->family != family || slice->len < pool->len ||
	    !addr_prefix_contains(pool, family, slice->bytes) || share > s->max_open)
		return -EINVAL;
	bits = addr_prefix_host_bits(slice);
	if (family == AF_INET6 && bits == 0)
		return -EINVAL;
	p->host_bits = bits;
	memcpy(p->base, slice->bytes, 16);
	addr_mask(family, p->base, addr_family_size(family) * 8 - bits);
	p->cap = share < p->slots ? share : p->slots;
	if (bits < 32 && ((size_t)1 << bits) - (family == AF_INET6) < p->cap)
		p->cap = ((size_t)1 << bits) - (family == AF_INET6);
	p->has_current = false;
	p->assigned = true;
	return 0;
}

int rotor_answer(struct rotor *r, size_t service, int family,
		 const struct rotor_query *q, uint64_t now_ms,
		 struct rotor_answer *out)
{
	const struct config_service *s;
	struct rotor_pool *p;
	size_t size = addr_family_size(family);
	uint8_t addr[16];
	ssize_t idx = -1;
	unsigned scope;
	bool chosen = false;

	p = (struct rotor_pool *)pool_of(r, service, family);
	if (!p || !q || !out)
		return -EINVAL;
	if (!p->enabled)
		return -ENODATA;
	if (!p->valid)
		return -EINVAL;
	if (!p->assigned || !p->cap)
		return -EAGAIN; /* no slice or no share from the controller (yet) */
	s = &r->cfg->services[service];
	scope = ecs_scope(r, q, family);

	pool_expire(r, p, now_ms);
	if (s->rotate && p->has_current && now_ms >= p->current_ms &&
	    now_ms - p->current_ms < (uint64_t)s->rotate * 1000) {
		/* keeping it must not open one address too many */
		idx = pool_find(p, p->current);
		if (idx >= 0 || p->n_open < p->cap) {
			memcpy(addr, p->current, 16);
			chosen = true;
		}
	}
	if (!chosen) {
		if (p->n_open >= p->cap) {
			idx = reuse_index(r, p);
			if (idx < 0)
				return -EBUSY; /* every open address outside the slice */
			memcpy(addr, p->open[idx].addr, 16);
			p->reused++;
		} else {
			pool_draw(r, p, addr);
			idx = pool_find(p, addr);
		}
		memcpy(p->current, addr, 16);
		p->current_ms = now_ms;
		p->has_current = true;
	}
	/*
	 * Every answer counts against max_open, a scoped one too: a stranger
	 * inside an honoured client subnet reaches the server through the
	 * scoped windows of that subnet and the open ones, and together they
	 * are the slots counted here.
	 */
	if (idx < 0) {
		idx = (ssize_t)p->n_open++;
		memcpy(p->open[idx].addr, addr, 16);
		p->open[idx].expiry_ms = 0;
		p->opened++;
	}
	/* a full window after this answer, even for a re-used address: the
	 * client may connect only when its resolver's answer arrives (and
	 * never less than a hold, rotor_hold, already counts) */
	if (p->open[idx].expiry_ms < now_ms + window_ms(s))
		p->open[idx].expiry_ms = now_ms + window_ms(s);
	p->answers++;

	memset(out, 0, sizeof(*out));
	out->family = family;
	memcpy(out->addr, addr, 16);
	out->ttl = r->cfg->ttl;
	/* an IPv6 resolver asking A cannot be bound to an IPv4 address */
	if (q->family == family) {
		struct change *c = &out->changes[out->n_changes++];
		uint64_t ms = (uint64_t)(s->window > r->cfg->ttl ? s->window :
					 r->cfg->ttl) * 1000 + (uint64_t)s->grace * 1000;

		change_init(c, CHANGE_BIND, service, family, addr, ms);
		c->src_len = (uint8_t)(size * 8);
		memcpy(c->src, q->src, size);
	}
	if (scope) {
		struct change *c = &out->changes[out->n_changes++];

		change_init(c, CHANGE_OPEN_SCOPED, service, family, addr,
			    window_ms(s));
		c->src_len = (uint8_t)scope;
		memcpy(c->src, q->ecs_addr, size);
		addr_mask(family, c->src, scope);
		out->ecs_scope = (uint8_t)scope;
	} else {
		change_init(&out->changes[out->n_changes++], CHANGE_OPEN,
			    service, family, addr, window_ms(s));
	}
	return 0;
}

int rotor_seed_open(struct rotor *r, size_t service, int family,
		    const uint8_t addr[static 16], uint64_t expiry_ms)
{
	struct rotor_pool *p = (struct rotor_pool *)pool_of(r, service, family);
	ssize_t idx;

	if (!p)
		return -EINVAL;
	if (!p->enabled || !p->valid)
		return -ENODATA;
	if (!pool_has(r, p, addr))
		return -EINVAL; /* not an address this configuration hands out */
	idx = pool_find(p, addr);
	if (idx < 0) {
		/* past a DNS node's share too: a window that is open is
		 * counted, and only then no new one is opened */
		if (p->n_open >= p->slots)
			return -ENOSPC;
		idx = (ssize_t)p->n_open++;
		memcpy(p->open[idx].addr, addr, 16);
	}
	if (p->open[idx].expiry_ms < expiry_ms)
		p->open[idx].expiry_ms = expiry_ms;
	return 0;
}

void rotor_hold(struct rotor *r, uint64_t now_ms, uint64_t hold_ms)
{
	for (size_t i = 0; i < r->n_services; i++) {
		uint64_t until = now_ms + hold_ms + window_ms(&r->cfg->services[i]);
		struct rotor_pool *pools[2] = { &r->svc[i].v4, &r->svc[i].v6 };

		for (size_t k = 0; k < 2; k++) {
			struct rotor_pool *p = pools[k];

			if (!p->enabled || !p->valid)
				continue;
			pool_expire(r, p, now_ms);
			for (size_t j = 0; j < p->n_open; j++)
				if (p->open[j].expiry_ms < until)
					p->open[j].expiry_ms = until;
		}
	}
}

int rotor_get_stats(const struct rotor *r, size_t service, int family,
		    uint64_t now_ms, struct rotor_stats *st)
{
	const struct rotor_pool *p = pool_of(r, service, family);

	if (!p || !st)
		return -EINVAL;
	if (!p->enabled)
		return -ENODATA;
	memset(st, 0, sizeof(*st));
	st->answers = p->answers;
	st->opened = p->opened;
	st->reused = p->reused;
	for (size_t i = 0; i < p->n_open; i++)
		if (slot_counted(r, &p->open[i], now_ms))
			st->open_now++;
	return 0;
}

size_t rotor_foreach_open(const struct rotor *r, size_t service, int family,
			  uint64_t now_ms,
			  void (*fn)(void *ctx, const uint8_t addr[16],
				     uint64_t ms_left),
			  void *ctx)
{
	const struct rotor_pool *p = pool_of(r, service, family);
	size_t n = 0;

	if (!p)
		return 0;
	for (size_t i = 0; i < p->n_open; i++) {
		const struct rotor_slot *s = &p->open[i];

		if (!slot_counted(r, s, now_ms))
			continue;
		if (fn)
			fn(ctx, s->addr,
			   s->expiry_ms > now_ms ? s->expiry_ms - now_ms : 0);
		n++;
	}
	return n;
}
