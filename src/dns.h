/* SPDX-License-Identifier: MIT */
/*
 * Answering one DNS message: parse the query (libknot), look it up in the
 * static zone or ask the rotor for protected names, build the response.
 * No I/O here: the server hands in bytes and gets bytes and NAT changes back.
 */
#ifndef CHOREO_DNS_H
#define CHOREO_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "rotor.h"

struct config;
struct zone;

#define DNS_TCP_MAX 65535 /* largest message over TCP */

struct dns_stats {
	uint64_t queries, dropped;
	uint64_t noerror, nxdomain, refused, formerr, servfail, notimp, badvers;
	uint64_t rotated;   /* answers from the rotor */
	uint64_t truncated; /* UDP answers sent with TC */
};

struct dns_ctx;

/* cfg, zone and rotor must outlive the context. NULL on allocation failure. */
struct dns_ctx *dns_ctx_new(const struct config *cfg, const struct zone *zone,
			    struct rotor *rotor);
void dns_ctx_free(struct dns_ctx *ctx);
const struct dns_stats *dns_ctx_stats(const struct dns_ctx *ctx);

/* What answering one query produced. */
struct dns_result {
	size_t len;          /* bytes of response in out; 0: send nothing */
	size_t n_changes;    /* NAT changes the response depends on */
	struct change changes[ROTOR_MAX_CHANGES];
	/* layout of the response, for dns_make_servfail() */
	uint16_t question_end;  /* offset just past the question */
	uint16_t opt_off, opt_len; /* the OPT record, if opt_len > 0 */
};

/*
 * Answer the query in q (qlen bytes; the buffer may be modified) received
 * from src over UDP or TCP at now_ms. The response is written to out
 * (out_cap >= 512; over UDP it is further limited by EDNS). Never fails on
 * bad input: malformed queries get FORMERR or no response.
 */
void dns_answer(struct dns_ctx *ctx, uint8_t *q, size_t qlen,
		const struct sockaddr *src, bool tcp, uint64_t now_ms,
		uint8_t *out, size_t out_cap, struct dns_result *res);

/*
 * Replace a response built by dns_answer with SERVFAIL, for when the NAT
 * changes it depends on could not be committed: the asker must never get an
 * address the gateway would send to the honeypot. Keeps the header, question
 * and OPT record; updates res->len and drops res->changes.
 */
void dns_make_servfail(struct dns_ctx *ctx, uint8_t *resp,
		       struct dns_result *res);

/*
 * The reply to a query response rate limiting slips (rrl.h): header and
 * question of q echoed, QR and TC set, no records, no OPT, so that the
 * client retries over TCP. Built without the parser, at little cost. Returns
 * its length in out, or 0 to send nothing (not a standard query with one
 * well-formed question, a response, or out too small).
 */
size_t dns_make_slip(const uint8_t *q, size_t qlen, uint8_t *out, size_t out_cap);

#endif
