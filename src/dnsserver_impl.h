/* SPDX-License-Identifier: MIT */
/*
 * The DNS server's insides, shared by its commit and UDP half
 * (dnsserver.c) and its TCP half (dnsserver_tcp.c). dnsserver.h is the
 * interface; nothing else includes this.
 */
#ifndef CHOREO_DNSSERVER_IMPL_H
#define CHOREO_DNSSERVER_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"
#include "dns.h"
#include "dnsserver.h"
#include "latency.h"
#include "log.h"
#include "loop.h"
#include "tcp_limits.h"

#define UDP_BUF      4096 /* largest query read, largest answer sent */


struct dnsserver;
struct tcp_conn;

struct udp_sock {
	struct loop_handler h;
	struct dnsserver *s;
};

struct tcp_listener {
	struct loop_handler h;
	struct dnsserver *s;
};

/* An answer held for its commit. */
struct held {
	size_t off;               /* of its bytes (res.len of them) */
	struct dns_result res;    /* length and layout, for SERVFAIL */
	struct sockaddr_storage peer;  /* UDP */
	socklen_t peer_len;
};

/*
 * A commit outstanding. While gateway_commit() runs, the batch's answers
 * are still in the server's buffers (sync); if the commit has not completed
 * when it returns, the answers are copied here (heap) and sent from the
 * callback.
 */
struct pending {
	struct dnsserver *s;
	bool used, sync, done;
	int result;
	uint64_t start_us;
	int fd;                   /* UDP: the socket to answer on */
	struct held *held;        /* UDP, async: the copies */
	uint8_t *bytes;
	size_t n_held;
	struct tcp_conn *conn;    /* TCP: NULL once the connection is gone */
};

struct tcp_conn {
	struct loop_handler h;   /* h.fd < 0: slot free */
	struct dnsserver *s;
	struct sockaddr_storage peer;
	uint8_t src[TCP_SRC_KEY]; /* counted against tcp_per_source */
	bool reading;            /* EPOLLIN: choreod waits for the client */
	bool in_full;            /* the last read filled the input buffer */
	struct tcp_clock t;      /* its deadlines (msg_ms: or reading resumed) */
	uint8_t *in;             /* grows to the message read, <= TCP_IN_MAX */
	size_t in_len, in_cap;
	uint8_t *out;            /* answers ready to send, length-prefixed */
	size_t out_len, out_off, out_cap;
	uint8_t *stage;          /* the answers of the last read */
	size_t stage_len, stage_cap;
	struct held *staged;
	size_t n_staged, staged_cap;
	struct pending *pending; /* their commit, while outstanding */
};

struct dnsserver {
	const struct config *cfg;
	struct dns_ctx *dns;
	struct gateway *gw;
	struct loop *loop;
	struct dnsserver_stats stats;
	struct latency answer_latency; /* batch received -> answers sent */
	struct log_ratelimit rl_send, rl_commit;
	struct rrl *rrl;               /* NULL: UDP is not rate limited */

	struct udp_sock udp[CONFIG_MAX_LISTEN];
	struct tcp_listener tcp[CONFIG_MAX_LISTEN];
	size_t n_listen;

	struct tcp_conn *conns;
	size_t n_conns;
	struct tcp_sources sources; /* connections per source */

	struct pending pend[DNSSERVER_MAX_PENDING];

	/* UDP batch buffers */
	struct mmsghdr in_msg[DNSSERVER_UDP_BATCH], out_msg[DNSSERVER_UDP_BATCH];
	struct iovec in_iov[DNSSERVER_UDP_BATCH], out_iov[DNSSERVER_UDP_BATCH];
	struct sockaddr_storage peers[DNSSERVER_UDP_BATCH];
	struct dns_result res[DNSSERVER_UDP_BATCH];
	uint8_t in_buf[DNSSERVER_UDP_BATCH][UDP_BUF];
	uint8_t out_buf[DNSSERVER_UDP_BATCH][UDP_BUF];
	struct change changes[DNSSERVER_UDP_BATCH * ROTOR_MAX_CHANGES];
	/* TCP: one answer being made, and the changes of one read */
	uint8_t tcp_resp[DNS_TCP_MAX];
	struct change *tcp_changes;
	size_t tcp_changes_cap;
};

/* dnsserver.c: a commit slot, and the callback every commit completes in */
struct pending *pending_get(struct dnsserver *s);
void pending_put(struct pending *p);
void pending_on_commit(void *ctx, int result);

/* dnsserver_tcp.c */
void tcp_completed(struct tcp_conn *c, int result);
void tcp_close(struct tcp_conn *c);
void on_tcp_accept(struct loop_handler *h, uint32_t events);

#endif
