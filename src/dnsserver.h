/* SPDX-License-Identifier: MIT */
/*
 * The DNS transport: UDP with recvmmsg/sendmmsg batches and TCP per RFC 7766
 * (length framing, pipelining, idle timeout, a cap on connections) on every
 * listen address. Each batch of answers is released only after the commit
 * hook has accepted the NAT changes it depends on; if the hook fails, those
 * answers become SERVFAIL.
 */
#ifndef CHOREO_DNSSERVER_H
#define CHOREO_DNSSERVER_H

#include <stddef.h>
#include <stdint.h>

#include "rotor.h"

struct config;
struct dns_ctx;
struct loop;

#define DNSSERVER_UDP_BATCH 64

/* Apply n changes; 0 when the gateway has them, negative errno otherwise. */
typedef int (*dnsserver_commit_fn)(void *ctx, const struct change *c,
				   size_t n);

struct dnsserver_stats {
	uint64_t udp_received, udp_sent, udp_send_errors, udp_batches;
	uint64_t tcp_accepted, tcp_refused, tcp_timeouts, tcp_queries;
	uint64_t commits, commit_failures;
	size_t tcp_open;
};

struct dnsserver;

/* Open every listen socket of cfg and add them to the loop. Logs and
 * returns NULL on failure. */
struct dnsserver *dnsserver_new(const struct config *cfg, struct dns_ctx *dns,
				struct loop *loop);
void dnsserver_free(struct dnsserver *s);

void dnsserver_set_commit(struct dnsserver *s, dnsserver_commit_fn fn, void *ctx);

/* Close TCP connections idle past tcp_timeout; call about once a second. */
void dnsserver_tick(struct dnsserver *s, uint64_t now_ms);

const struct dnsserver_stats *dnsserver_get_stats(const struct dnsserver *s);

struct latency_summary;
/* UDP batches: from receipt to the answers' send, NAT commit included. */
void dnsserver_get_latency(const struct dnsserver *s, struct latency_summary *out);

#endif
