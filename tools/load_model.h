/* SPDX-License-Identifier: MIT */
/*
 * The pure parts of choreo-load(1), kept apart so they can be unit-tested
 * without sockets or a clock: command-line value parsing, the DNS query it
 * sends and the bounded parse of the answer, the classification of a
 * service's first bytes (server, honeypot, other), a min-heap of per-client
 * deadlines and a small seeded PRNG.
 *
 * Nothing here allocates except load_heap_init(); nothing needs libm.
 */
#ifndef CHOREO_LOAD_MODEL_H
#define CHOREO_LOAD_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- command-line values ---------------------------------------------- */

/*
 * Parse a decimal integer in [min, max]. Returns 0, -EINVAL (not a number,
 * trailing text) or -ERANGE (outside the range).
 */
int load_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Parse a finite decimal number in [min, max]; same returns. */
int load_parse_double(const char *s, double min, double max, double *out);

/*
 * Parse a dotted-quad IPv4 address into host order. Returns 0 or -EINVAL.
 */
int load_parse_ip4(const char *s, uint32_t *out);

/*
 * Parse "a.b.c.d/len" (len 0..32) into a host-order base and a length.
 * Returns 0, -EINVAL, or -EDOM when host bits are set.
 */
int load_parse_prefix4(const char *s, uint32_t *base, unsigned *len);

/*
 * Parse "a.b.c.d" or "a.b.c.d:port" (port 1..65535, default_port when
 * absent). Returns 0 or -EINVAL.
 */
int load_parse_hostport4(const char *s, uint16_t default_port, uint32_t *addr,
			 uint16_t *port);

/*
 * Parse a comma-separated list of ports (1..65535) into ports[0..*n), at
 * most max entries, duplicates allowed (they weight the draw). Returns 0,
 * -EINVAL or -E2BIG (more than max).
 */
int load_parse_ports(const char *s, uint16_t *ports, size_t max, size_t *n);

/* ---- DNS ------------------------------------------------------------------ */

#define LOAD_DNS_HDR 12
#define LOAD_DNS_QMAX (LOAD_DNS_HDR + 255 + 4) /* header, name, type, class */

/*
 * Write a query (RD set, one question NAME/A/IN, no EDNS) into buf, which
 * has room for LOAD_DNS_QMAX bytes. NAME is dotted text, a final dot
 * optional, labels 1..63 bytes, no escapes. Returns the length, or -EINVAL.
 */
int load_dns_query(uint8_t buf[static LOAD_DNS_QMAX], const char *name,
		   uint16_t id);

enum load_dns_status {
	LOAD_DNS_ADDR = 0,   /* NOERROR with an A record: *addr is set */
	LOAD_DNS_NOADDR,     /* NOERROR but no A record in the answer section */
	LOAD_DNS_RCODE,      /* an error rcode (SERVFAIL, NXDOMAIN, ...) */
	LOAD_DNS_TRUNC,      /* TC set: the answer did not fit */
	LOAD_DNS_MALFORMED,  /* the reply to our question, but broken */
	LOAD_DNS_FOREIGN,    /* not a reply to this query (id, QR, question) */
};

/*
 * Parse the reply pkt[0..len) to the query q[0..qlen) (as built by
 * load_dns_query). Every read is bounded by len; compression pointers are
 * only skipped, never followed. The first A/IN record of the answer
 * section wins; CNAMEs and other records are skipped. *addr (host order)
 * is set only for LOAD_DNS_ADDR; *rcode, when not NULL, gets the rcode of
 * any reply that is ours.
 */
enum load_dns_status load_dns_answer(const uint8_t *pkt, size_t len,
				     const uint8_t *q, size_t qlen,
				     uint32_t *addr, int *rcode);

const char *load_dns_status_str(enum load_dns_status s);

/* ---- what answered on the service port --------------------------------- */

enum load_host {
	LOAD_HOST_MORE = 0,  /* nothing decisive yet: read more */
	LOAD_HOST_SERVER,
	LOAD_HOST_HONEYPOT,
	LOAD_HOST_OTHER,     /* a host line naming neither */
	LOAD_HOST_TLS,       /* a TLS record: this port speaks TLS */
	LOAD_HOST_NONE,      /* the stream ended (or the buffer is full) and
			      * nothing named a host */
};

/*
 * Classify the first bytes a service sent, buf[0..len). The host is named
 * by the first line of one of these forms (lines end in LF, CR optional):
 *
 *   SSH-2.0-...-NAME            (the first word ends in "-NAME")
 *   220 NAME ...  /  220-NAME   (an SMTP greeting)
 *   X-Choreo-Host: NAME         (an HTTP header, name case-insensitive)
 *   choreo-lab NAME ...         (the lab's plain banner)
 *   NAME                        (a whole line of an HTTP body)
 *
 * NAME is compared with server and honeypot exactly. With final (the peer
 * closed, or the buffer is full) an unterminated last line is considered
 * too, and the result is never LOAD_HOST_MORE. Never reads past len.
 */
enum load_host load_banner_classify(const uint8_t *buf, size_t len, bool final,
				    const char *server, const char *honeypot);

const char *load_host_str(enum load_host h);

/* ---- a min-heap of deadlines, one slot per client ----------------------- */

struct load_heap {
	uint32_t *heap;  /* client ids, heap-ordered by key */
	uint32_t *pos;   /* pos[id] = index in heap + 1; 0 = not in the heap */
	int64_t *key;    /* key[id] = its deadline */
	uint32_t n, cap;
};

/* Room for ids 0..cap-1. Returns 0 or -ENOMEM. */
int load_heap_init(struct load_heap *h, uint32_t cap);
/* Frees what load_heap_init allocated; safe on a zeroed heap. */
void load_heap_free(struct load_heap *h);
/* Insert id with key, or move it to key if present. id < cap. */
void load_heap_set(struct load_heap *h, uint32_t id, int64_t key);
/* Remove id if present. */
void load_heap_remove(struct load_heap *h, uint32_t id);
/* The id with the smallest key; false when empty. */
bool load_heap_top(const struct load_heap *h, uint32_t *id, int64_t *key);

/* ---- PRNG (xoshiro256**, seeded with splitmix64) -------------------------- */

struct load_rng {
	uint64_t s[4];
};

void load_rng_seed(struct load_rng *r, uint64_t seed);
uint64_t load_rng_next(struct load_rng *r);
/* Uniform in [0, n), without modulo bias; n > 0. */
uint64_t load_rng_below(struct load_rng *r, uint64_t n);
/* Uniform in [0, 1). */
double load_rng_unit(struct load_rng *r);

#endif
