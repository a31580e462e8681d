/* SPDX-License-Identifier: MIT */
/*
 * The one bounded cursor for untrusted bytes (and for writing frames).
 *
 * Every read and write is checked against the end of the buffer. The first
 * failure sets a sticky error and makes every later call a no-op: reads
 * then return zero (and zero-fill their output), so a parser may do many
 * reads and check wire_error() once. Numbers are in network byte order.
 * Modelled on Knot's contrib/wire_ctx.h; header-only, no allocation.
 */
#ifndef CHOREO_WIRE_H
#define CHOREO_WIRE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct wire {
	const uint8_t *start, *pos, *end;
	int error;      /* 0, -EBADMSG (read past the end), -EINVAL */
};

struct wire_out {
	uint8_t *start, *pos, *end;
	int error;      /* 0, or -ENOSPC (write past the end) */
};

static inline struct wire wire_init(const void *buf, size_t len)
{
	const uint8_t *b = buf;

	return (struct wire){ .start = b, .pos = b, .end = b + len };
}

static inline size_t wire_available(const struct wire *w)
{
	return w->error ? 0 : (size_t)(w->end - w->pos);
}

static inline size_t wire_offset(const struct wire *w)
{
	return (size_t)(w->pos - w->start);
}

static inline int wire_error(const struct wire *w)
{
	return w->error;
}

/* Mark the input bad for a reason of the parser's own (e.g. -EINVAL for a
 * value out of range); the first error stays. */
static inline void wire_fail(struct wire *w, int error)
{
	if (!w->error)
		w->error = error;
}

/* n bytes are there to read; otherwise the cursor fails. */
static inline bool wire_need(struct wire *w, size_t n)
{
	if (w->error)
		return false;
	if ((size_t)(w->end - w->pos) < n) {
		w->error = -EBADMSG;
		return false;
	}
	return true;
}

/* A pointer to the next n bytes, which are skipped; NULL on failure. */
static inline const uint8_t *wire_take(struct wire *w, size_t n)
{
	const uint8_t *p;

	if (!wire_need(w, n))
		return NULL;
	p = w->pos;
	w->pos += n;
	return p;
}

static inline void wire_skip(struct wire *w, size_t n)
{
	(void)wire_take(w, n);
}

static inline void wire_read(struct wire *w, void *out, size_t n)
{
	const uint8_t *p = wire_take(w, n);

	if (p)
		memcpy(out, p, n);
	else if (n)
		memset(out, 0, n);
}

static inline uint8_t wire_u8(struct wire *w)
{
	const uint8_t *p = wire_take(w, 1);

	return p ? p[0] : 0;
}

static inline uint16_t wire_u16(struct wire *w)
{
	const uint8_t *p = wire_take(w, 2);

	return p ? (uint16_t)(p[0] << 8 | p[1]) : 0;
}

static inline uint32_t wire_u32(struct wire *w)
{
	const uint8_t *p = wire_take(w, 4);

	return p ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
		   (uint32_t)p[2] << 8 | p[3] : 0;
}

static inline uint64_t wire_u64(struct wire *w)
{
	uint64_t hi = wire_u32(w);

	return hi << 32 | wire_u32(w);
}

/* ---- writing ------------------------------------------------------------- */

static inline struct wire_out wire_out_init(void *buf, size_t len)
{
	uint8_t *b = buf;

	return (struct wire_out){ .start = b, .pos = b, .end = b + len };
}

static inline size_t wire_out_len(const struct wire_out *w)
{
	return (size_t)(w->pos - w->start);
}

static inline int wire_out_error(const struct wire_out *w)
{
	return w->error;
}

/* Room for the next n bytes, which are then counted as written. */
static inline uint8_t *wire_put(struct wire_out *w, size_t n)
{
	uint8_t *p;

	if (w->error)
		return NULL;
	if ((size_t)(w->end - w->pos) < n) {
		w->error = -ENOSPC;
		return NULL;
	}
	p = w->pos;
	w->pos += n;
	return p;
}

static inline void wire_write(struct wire_out *w, const void *src, size_t n)
{
	uint8_t *p = wire_put(w, n);

	if (p && n)
		memcpy(p, src, n);
}

static inline void wire_put_u8(struct wire_out *w, uint8_t v)
{
	uint8_t *p = wire_put(w, 1);

	if (p)
		p[0] = v;
}

static inline void wire_put_u16(struct wire_out *w, uint16_t v)
{
	uint8_t *p = wire_put(w, 2);

	if (p) {
		p[0] = (uint8_t)(v >> 8);
		p[1] = (uint8_t)v;
	}
}

static inline void wire_put_u32(struct wire_out *w, uint32_t v)
{
	uint8_t *p = wire_put(w, 4);

	if (p) {
		p[0] = (uint8_t)(v >> 24);
		p[1] = (uint8_t)(v >> 16);
		p[2] = (uint8_t)(v >> 8);
		p[3] = (uint8_t)v;
	}
}

static inline void wire_put_u64(struct wire_out *w, uint64_t v)
{
	wire_put_u32(w, (uint32_t)(v >> 32));
	wire_put_u32(w, (uint32_t)v);
}

#endif
