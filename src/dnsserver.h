/* SPDX-License-Identifier: MIT */
/*
 * The DNS transport: UDP with recvmmsg/sendmmsg batches and TCP per RFC 7766
 * (length framing, pipelining, idle timeout, a cap on connections) on every
 * listen address. TCP limits (tcp_limits.h): connections per source, a
 * deadline per message and for answers to be taken, queued answers per
 * connection; input buffers grow only as a message needs.
 *
 * Commit before answer: the gateway changes of one UDP batch, or of one TCP
 * read (up to tcp_output of answers), go to the gateway as one commit; the
 * answers that need them are held until the commit completes (through its
 * callback), and become SERVFAIL if it failed. Answers that need nothing
 * (static names) leave at once. While commits are outstanding the loop
 * keeps serving: other batches, other connections, the control socket. A
 * TCP connection reads no further until its commit is done, so its answers
 * stay in order.
 *
 * UDP queries are rate limited per source prefix (rrl.h) before they are
 * answered: a limited query is dropped or slips (an empty TC=1 reply), and
 * opens no window. TCP is not limited: its source is proven by the
 * handshake, so it cannot reflect, and it is where slipped clients go.
 */
#ifndef CHOREO_DNSSERVER_H
#define CHOREO_DNSSERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct dns_ctx;
struct gateway;
struct loop;
struct latency_summary;

#define DNSSERVER_UDP_BATCH 64
#define DNSSERVER_MAX_PENDING 64 /* commits outstanding at once */

struct dnsserver_stats {
	uint64_t udp_received, udp_sent, udp_send_errors, udp_batches;
	uint64_t tcp_accepted, tcp_refused, tcp_timeouts, tcp_queries;
	uint64_t commits, commit_failures;
	uint64_t commit_overload;  /* answers SERVFAIL: too many commits outstanding */
	size_t commits_pending;    /* outstanding now */
	/* response rate limiting of UDP queries (rrl.h), before answering */
	bool rrl_on;
	uint64_t rrl_limited;      /* rrl_dropped + rrl_slipped */
	uint64_t rrl_dropped;      /* no reply */
	uint64_t rrl_slipped;      /* an empty TC=1 reply */
	uint64_t rrl_evicted;      /* buckets taken over still in debt */
	size_t tcp_open;
	/* TCP limits: refused at tcp_per_source; closed at tcp_deadline for a
	 * message not whole (slow) or answers not taken (stalled); times a
	 * connection's messages waited at tcp_output (paused) */
	uint64_t tcp_refused_source, tcp_slow, tcp_stalled, tcp_paused;
	size_t tcp_queued;         /* bytes of answers held for TCP clients, */
	size_t tcp_inbuf;          /* and of input buffers, as of the last
				      dnsserver_tick() */
};

struct dnsserver;

/* Open every listen socket of cfg and add them to the loop. Rotated
 * answers are committed to gw. Logs and returns NULL on failure. */
struct dnsserver *dnsserver_new(const struct config *cfg, struct dns_ctx *dns,
				struct gateway *gw, struct loop *loop);
/* Outstanding commits are abandoned: their answers are not sent. */
void dnsserver_free(struct dnsserver *s);

/* Close TCP connections idle past tcp_timeout between messages, or past
 * tcp_deadline within a message or with answers not taken; call about once
 * a second. */
void dnsserver_tick(struct dnsserver *s, uint64_t now_ms);

const struct dnsserver_stats *dnsserver_get_stats(const struct dnsserver *s);

/* UDP batches: from receipt to the answers' send, commit included. */
void dnsserver_get_latency(const struct dnsserver *s, struct latency_summary *out);

#endif
