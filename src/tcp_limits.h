/* SPDX-License-Identifier: MIT */
/*
 * The pure parts of the DNS TCP limits (dnsserver.c): who a connection
 * counts against (its source), where the whole messages of an input buffer
 * end, and when a connection has used up its time. No sockets, no clock:
 * the caller passes the time.
 *
 * A source is an IPv4 address (/32) or an IPv6 /64: a host given an IPv6
 * prefix can use any address of its /64, so the /64 is one source.
 */
#ifndef CHOREO_TCP_LIMITS_H
#define CHOREO_TCP_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define TCP_SRC_KEY 9  /* family byte + 8 address bytes */
#define TCP_MSG_MIN 12 /* a DNS header */
#define TCP_IN_MAX  (2 + 65535)

/* Connections open per source, for a bounded number of connections. */
struct tcp_sources {
	struct tcp_src_slot {
		uint8_t key[TCP_SRC_KEY];
		uint32_t count;   /* 0: empty */
	} *slot;
	size_t mask;          /* slots - 1 (a power of two) */
	uint64_t seed;        /* of the hash: sources cannot choose collisions */
};

/* Room for max_conns distinct sources at once. 0 or -ENOMEM. */
int tcp_sources_init(struct tcp_sources *t, size_t max_conns, uint64_t seed);
void tcp_sources_free(struct tcp_sources *t);
/* The source of a peer address. */
void tcp_src_key(const struct sockaddr_storage *ss, uint8_t key[static TCP_SRC_KEY]);
/* Count one more connection of key unless it has limit already: 0 or
 * -EBUSY (-ENOSPC only if more than max_conns sources are counted). */
int tcp_sources_add(struct tcp_sources *t, const uint8_t key[static TCP_SRC_KEY],
		    uint32_t limit);
/* One connection of key fewer. */
void tcp_sources_del(struct tcp_sources *t, const uint8_t key[static TCP_SRC_KEY]);
uint32_t tcp_sources_count(const struct tcp_sources *t,
			   const uint8_t key[static TCP_SRC_KEY]);

/* The offset just past the whole length-prefixed messages at the start of
 * buf (len bytes); *need (if not NULL): the bytes the first message not
 * whole needs in all, 2 + its length (2 while its length is not read). */
size_t tcp_frames_end(const uint8_t *buf, size_t len, size_t *need);

/* A connection's clocks, in ms of the caller's clock. */
struct tcp_clock {
	bool pending;         /* waiting for our commit: never timed out */
	bool unsent;          /* answers wait for the client to take those sent */
	bool partial;         /* a message begun, not whole (or the first) */
	uint64_t out_ms;      /* unsent: the last time the client took some */
	uint64_t msg_ms;      /* partial: its first byte (or the accept) */
	uint64_t last_ms;     /* the last message answered and sent */
};

enum tcp_verdict {
	TCP_KEEP,
	TCP_IDLE,      /* nothing for idle_ms between messages */
	TCP_SLOW,      /* a message not whole deadline_ms after it began */
	TCP_STALLED,   /* answers not taken for deadline_ms */
};

/* Bytes were read: the buffer held before bytes and holds len now, its
 * whole messages ending at end. A message begun in this read has its
 * deadline from now; one begun before keeps its own. */
void tcp_clock_read(struct tcp_clock *c, size_t before, size_t end, size_t len,
		    uint64_t now_ms);

enum tcp_verdict tcp_clock_check(const struct tcp_clock *c, uint64_t now_ms,
				 uint64_t deadline_ms, uint64_t idle_ms);

#endif
