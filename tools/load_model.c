// SPDX-License-Identifier: MIT
/* The pure parts of choreo-load(1); see load_model.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "load_model.h"
#include "../src/wire.h"

/* ---- command-line values ---------------------------------------------- */

int load_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	/* strtoull would take "-1", " 1" and "" */
	if (!s || s[0] < '0' || s[0] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end != '\0')
		return -EINVAL;
	if (errno == ERANGE || v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int load_parse_double(const char *s, double min, double max, double *out)
{
	double v;
	char *end;

	if (!s || !((s[0] >= '0' && s[0] <= '9') || s[0] == '.'))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (*end != '\0' || end == s)
		return -EINVAL;
	if (errno == ERANGE || !isfinite(v) || v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int load_parse_ip4(const char *s, uint32_t *out)
{
	struct in_addr a;

	if (!s || inet_pton(AF_INET, s, &a) != 1)
		return -EINVAL;
	*out = ntohl(a.s_addr);
	return 0;
}

int load_parse_prefix4(const char *s, uint32_t *base, unsigned *len)
{
	char buf[INET_ADDRSTRLEN + 4];
	const char *slash;
	uint64_t l;
	uint32_t a, mask;
	size_t n;

	if (!s || !(slash = strchr(s, '/')))
		return -EINVAL;
	n = (size_t)(slash - s);
	if (n == 0 || n >= INET_ADDRSTRLEN)
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (load_parse_ip4(buf, &a) < 0 || load_parse_u64(slash + 1, 0, 32, &l) < 0)
		return -EINVAL;
	mask = l == 0 ? 0 : UINT32_MAX << (32 - l);
	if (a & ~mask)
		return -EDOM;
	*base = a;
	*len = (unsigned)l;
	return 0;
}

int load_parse_hostport4(const char *s, uint16_t default_port, uint32_t *addr,
			 uint16_t *port)
{
	char buf[INET_ADDRSTRLEN];
	const char *colon;
	uint64_t p = default_port;
	size_t n;

	if (!s)
		return -EINVAL;
	colon = strchr(s, ':');
	n = colon ? (size_t)(colon - s) : strlen(s);
	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (load_parse_ip4(buf, addr) < 0)
		return -EINVAL;
	if (colon && load_parse_u64(colon + 1, 1, 65535, &p) < 0)
		return -EINVAL;
	if (p == 0)
		return -EINVAL;
	*port = (uint16_t)p;
	return 0;
}

int load_parse_ports(const char *s, uint16_t *ports, size_t max, size_t *n)
{
	char word[8];
	size_t count = 0;

	if (!s || !*s)
		return -EINVAL;
	for (;;) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);
		uint64_t p;

		if (len == 0 || len >= sizeof(word))
			return -EINVAL;
		memcpy(word, s, len);
		word[len] = '\0';
		if (load_parse_u64(word, 1, 65535, &p) < 0)
			return -EINVAL;
		if (count == max)
			return -E2BIG;
		ports[count++] = (uint16_t)p;
		if (!comma)
			break;
		s = comma + 1;
	}
	*n = count;
	return 0;
}

/* ---- DNS ------------------------------------------------------------------ */

int load_dns_query(uint8_t buf[static LOAD_DNS_QMAX], const char *name,
		   uint16_t id)
{
	size_t n = strlen(name), pos = LOAD_DNS_HDR, i = 0;

	if (n > 0 && name[n - 1] == '.')
		n--;
	/* wire length = n + 2 (first length byte, root), at most 255 */
	if (n == 0 || n > 253)
		return -EINVAL;
	memset(buf, 0, LOAD_DNS_HDR);
	buf[0] = (uint8_t)(id >> 8);
	buf[1] = (uint8_t)id;
	buf[2] = 0x01;  /* RD: a resolver recurses, an authoritative ignores it */
	buf[5] = 1;     /* QDCOUNT */
	while (i < n) {
		size_t start = i;

		while (i < n && name[i] != '.')
			i++;
		if (i - start == 0 || i - start > 63)
			return -EINVAL;
		buf[pos++] = (uint8_t)(i - start);
		memcpy(buf + pos, name + start, i - start);
		pos += i - start;
		i++; /* the dot */
	}
	buf[pos++] = 0;
	buf[pos++] = 0; buf[pos++] = 1; /* A */
	buf[pos++] = 0; buf[pos++] = 1; /* IN */
	return (int)pos;
}

/* Skip an owner name: labels, ended by the root or by a pointer. */
static void skip_name(struct wire *c)
{
	/* at most 128 labels fit in 255 bytes: the bound of the loop */
	for (unsigned labels = 0; labels <= 128 && !wire_error(c); labels++) {
		uint8_t b = wire_u8(c);

		if (b == 0)
			return;
		if ((b & 0xc0) == 0xc0) {
			wire_skip(c, 1);
			return;
		}
		if (b & 0xc0) { /* 0x40, 0x80: extended labels, not used */
			wire_fail(c, -EBADMSG);
			return;
		}
		wire_skip(c, b);
	}
	wire_fail(c, -EBADMSG);
}

static uint8_t ascii_lower(uint8_t b)
{
	return b >= 'A' && b <= 'Z' ? (uint8_t)(b + 32) : b;
}

enum load_dns_status load_dns_answer(const uint8_t *pkt, size_t len,
				     const uint8_t *q, size_t qlen,
				     uint32_t *addr, int *rcode)
{
	struct wire c = wire_init(pkt, len);
	size_t qsec = qlen - LOAD_DNS_HDR;
	const uint8_t *question;
	uint16_t id, flags, qd, an;
	int rc;

	id = wire_u16(&c);
	flags = wire_u16(&c);
	qd = wire_u16(&c);
	an = wire_u16(&c);
	wire_skip(&c, 4); /* NSCOUNT, ARCOUNT */
	if (wire_error(&c) || qlen <= LOAD_DNS_HDR)
		return LOAD_DNS_FOREIGN;
	if (id != (uint16_t)(q[0] << 8 | q[1]) || !(flags & 0x8000) ||
	    (flags & 0x7800) != 0)
		return LOAD_DNS_FOREIGN;  /* other id, not a response, opcode */
	rc = flags & 0x000f;
	if (qd == 0) {
		/* FORMERR and friends may come without the question */
		if (rcode)
			*rcode = rc;
		return rc ? LOAD_DNS_RCODE : LOAD_DNS_MALFORMED;
	}
	question = wire_take(&c, qsec);
	if (qd != 1 || !question)
		return LOAD_DNS_FOREIGN;
	/* the question, byte for byte but for the case of the letters (a
	 * length byte is < 64, never a letter) */
	for (size_t i = 0; i < qsec; i++)
		if (ascii_lower(question[i]) != ascii_lower(q[LOAD_DNS_HDR + i]))
			return LOAD_DNS_FOREIGN;
	if (rcode)
		*rcode = rc;
	if (flags & 0x0200)
		return LOAD_DNS_TRUNC;
	if (rc != 0)
		return LOAD_DNS_RCODE;
	/* each record takes at least 11 bytes, so len bounds this too */
	for (unsigned i = 0; i < an; i++) {
		uint16_t type, class, rdlen;

		skip_name(&c);
		type = wire_u16(&c);
		class = wire_u16(&c);
		wire_skip(&c, 4); /* TTL */
		rdlen = wire_u16(&c);
		if (wire_error(&c) || wire_available(&c) < rdlen)
			return LOAD_DNS_MALFORMED;
		if (type == 1 && class == 1) {
			if (rdlen != 4)
				return LOAD_DNS_MALFORMED;
			*addr = wire_u32(&c);
			return LOAD_DNS_ADDR;
		}
		wire_skip(&c, rdlen); /* CNAME, RRSIG, ...: not what we connect to */
	}
	return LOAD_DNS_NOADDR;
}

const char *load_dns_status_str(enum load_dns_status s)
{
	switch (s) {
	case LOAD_DNS_ADDR: return "address";
	case LOAD_DNS_NOADDR: return "no A record";
	case LOAD_DNS_RCODE: return "error rcode";
	case LOAD_DNS_TRUNC: return "truncated";
	case LOAD_DNS_MALFORMED: return "malformed";
	case LOAD_DNS_FOREIGN: return "not ours";
	}
	return "?";
}

/* ---- what answered on the service port --------------------------------- */

struct line {
	const uint8_t *p;
	size_t n;
};

static bool line_has_prefix(struct line l, const char *pfx, bool nocase)
{
	size_t n = strlen(pfx);

	if (l.n < n)
		return false;
	for (size_t i = 0; i < n; i++) {
		uint8_t a = l.p[i], b = (uint8_t)pfx[i];

		if (nocase ? ascii_lower(a) != ascii_lower(b) : a != b)
			return false;
	}
	return true;
}

static bool span_equals(const uint8_t *p, size_t n, const char *s)
{
	return n == strlen(s) && memcmp(p, s, n) == 0;
}

/* Which of the two names p[0..n) is. */
static enum load_host name_host(const uint8_t *p, size_t n, const char *server,
				const char *honeypot)
{
	if (span_equals(p, n, server))
		return LOAD_HOST_SERVER;
	if (span_equals(p, n, honeypot))
		return LOAD_HOST_HONEYPOT;
	return LOAD_HOST_OTHER;
}

/* The word of l starting at off: up to a space, tab or the end. */
static size_t word_len(struct line l, size_t off)
{
	size_t i = off;

	while (i < l.n && l.p[i] != ' ' && l.p[i] != '\t')
		i++;
	return i - off;
}

static bool word_ends_with(const uint8_t *p, size_t n, const char *name)
{
	size_t m = strlen(name);

	return m > 0 && n > m && p[n - m - 1] == '-' &&
	       memcmp(p + n - m, name, m) == 0;
}

enum load_host load_banner_classify(const uint8_t *buf, size_t len, bool final,
				    const char *server, const char *honeypot)
{
	struct wire c = wire_init(buf, len);
	bool http = false, body = false;

	if (len >= 1 && buf[0] >= 0x14 && buf[0] <= 0x17) {
		/* a TLS record header: content type 20..23, version 3.x */
		if (len >= 2 && buf[1] == 0x03)
			return LOAD_HOST_TLS;
		if (len < 2 && !final)
			return LOAD_HOST_MORE;
	}
	/* one line per pass; each takes at least a byte, so len bounds the loop */
	while (wire_available(&c)) {
		size_t avail = wire_available(&c);
		const uint8_t *nl = memchr(c.pos, '\n', avail);
		bool first = wire_offset(&c) == 0;
		struct line l;
		size_t w;

		if (!nl && !final)
			break;
		l.n = nl ? (size_t)(nl - c.pos) : avail;
		l.p = wire_take(&c, l.n + (nl ? 1 : 0));
		if (l.n > 0 && l.p[l.n - 1] == '\r')
			l.n--;

		if (first && line_has_prefix(l, "HTTP/", false)) {
			http = true;
			continue;
		}
		if (http && !body) {
			if (l.n == 0) {
				body = true;
			} else if (line_has_prefix(l, "X-Choreo-Host:", true)) {
				size_t off = strlen("X-Choreo-Host:"), end = l.n;

				while (off < l.n && (l.p[off] == ' ' || l.p[off] == '\t'))
					off++;
				while (end > off && (l.p[end - 1] == ' ' || l.p[end - 1] == '\t'))
					end--;
				return name_host(l.p + off, end - off, server, honeypot);
			}
			continue;
		}
		if (body) {
			enum load_host h = name_host(l.p, l.n, server, honeypot);

			if (h != LOAD_HOST_OTHER)
				return h;
			continue;
		}
		if (line_has_prefix(l, "SSH-", false)) {
			w = word_len(l, 0);
			if (word_ends_with(l.p, w, server))
				return LOAD_HOST_SERVER;
			if (word_ends_with(l.p, w, honeypot))
				return LOAD_HOST_HONEYPOT;
			return LOAD_HOST_OTHER;
		}
		if (line_has_prefix(l, "220 ", false) || line_has_prefix(l, "220-", false)) {
			w = word_len(l, 4);
			return name_host(l.p + 4, w, server, honeypot);
		}
		if (line_has_prefix(l, "choreo-lab ", false)) {
			size_t off = strlen("choreo-lab ");

			w = word_len(l, off);
			return name_host(l.p + off, w, server, honeypot);
		}
		/* anything else (an SMTP continuation, a MOTD): keep reading */
	}
	return final ? LOAD_HOST_NONE : LOAD_HOST_MORE;
}

const char *load_host_str(enum load_host h)
{
	switch (h) {
	case LOAD_HOST_MORE: return "more";
	case LOAD_HOST_SERVER: return "server";
	case LOAD_HOST_HONEYPOT: return "honeypot";
	case LOAD_HOST_OTHER: return "other";
	case LOAD_HOST_TLS: return "tls";
	case LOAD_HOST_NONE: return "none";
	}
	return "?";
}

/* ---- a min-heap of deadlines ------------------------------------------------ */

int load_heap_init(struct load_heap *h, uint32_t cap)
{
	memset(h, 0, sizeof(*h));
	if (cap == 0)
		return -EINVAL;
	h->heap = calloc(cap, sizeof(*h->heap));
	h->pos = calloc(cap, sizeof(*h->pos));
	h->key = calloc(cap, sizeof(*h->key));
	if (!h->heap || !h->pos || !h->key) {
		load_heap_free(h);
		return -ENOMEM;
	}
	h->cap = cap;
	return 0;
}

void load_heap_free(struct load_heap *h)
{
	if (!h)
		return;
	free(h->heap);
	free(h->pos);
	free(h->key);
	memset(h, 0, sizeof(*h));
}

static void heap_place(struct load_heap *h, uint32_t i, uint32_t id)
{
	h->heap[i] = id;
	h->pos[id] = i + 1;
}

static void heap_up(struct load_heap *h, uint32_t i)
{
	uint32_t id = h->heap[i];

	while (i > 0) {
		uint32_t parent = (i - 1) / 2;

		if (h->key[h->heap[parent]] <= h->key[id])
			break;
		heap_place(h, i, h->heap[parent]);
		i = parent;
	}
	heap_place(h, i, id);
}

static void heap_down(struct load_heap *h, uint32_t i)
{
	uint32_t id = h->heap[i];

	for (;;) {
		uint64_t l = 2 * (uint64_t)i + 1, r = l + 1, m;

		if (l >= h->n)
			break;
		m = r < h->n && h->key[h->heap[r]] < h->key[h->heap[l]] ? r : l;
		if (h->key[h->heap[m]] >= h->key[id])
			break;
		heap_place(h, i, h->heap[m]);
		i = (uint32_t)m;
	}
	heap_place(h, i, id);
}

void load_heap_set(struct load_heap *h, uint32_t id, int64_t key)
{
	int64_t old = h->key[id];

	h->key[id] = key;
	if (h->pos[id] == 0) {
		heap_place(h, h->n++, id);
		heap_up(h, h->n - 1);
	} else if (key < old) {
		heap_up(h, h->pos[id] - 1);
	} else {
		heap_down(h, h->pos[id] - 1);
	}
}

void load_heap_remove(struct load_heap *h, uint32_t id)
{
	uint32_t i, last;

	if (h->pos[id] == 0)
		return;
	i = h->pos[id] - 1;
	h->pos[id] = 0;
	last = h->heap[--h->n];
	if (i == h->n)
		return;
	/* the last element fills the hole, then finds its place */
	heap_place(h, i, last);
	heap_up(h, i);
	heap_down(h, h->pos[last] - 1);
}

bool load_heap_top(const struct load_heap *h, uint32_t *id, int64_t *key)
{
	if (h->n == 0)
		return false;
	*id = h->heap[0];
	*key = h->key[h->heap[0]];
	return true;
}

/* ---- PRNG ------------------------------------------------------------------------ */

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

void load_rng_seed(struct load_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++) {
		uint64_t z = (seed += 0x9e3779b97f4a7c15ULL);

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		r->s[i] = z ^ (z >> 31);
	}
}

uint64_t load_rng_next(struct load_rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

uint64_t load_rng_below(struct load_rng *r, uint64_t n)
{
	/* reject the top partial block; each try succeeds with p > 1/2, so
	 * 64 tries fail with p < 2^-64, and then a tiny bias is harmless */
	uint64_t threshold = (0 - n) % n;

	for (int i = 0; i < 64; i++) {
		uint64_t x = load_rng_next(r);

		if (x >= threshold)
			return x % n;
	}
	return load_rng_next(r) % n;
}

double load_rng_unit(struct load_rng *r)
{
	return (double)(load_rng_next(r) >> 11) * 0x1.0p-53;
}
