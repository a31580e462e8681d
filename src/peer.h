/* SPDX-License-Identifier: MIT */
/*
 * The connections of the distributed mode (docs/protocol.md), in the event
 * loop: a DNS node connects to each of its gateways and reconnects with a
 * back-off; a gateway listens and accepts its DNS nodes. Here are the
 * handshake, the reading of frames (every check before anything is used,
 * the caps before anything is allocated), sequence numbers, keepalive,
 * deadlines, the caps on unauthenticated connections, and a counter and a
 * rate-limited log line for each reason a connection was refused.
 *
 * What the frames mean is the user's (gw_remote.c on a DNS node, gw_agent.c
 * on a gateway): it gets the data frames of authenticated links through
 * struct peer_handlers and sends with peer_send(). PING and PONG are
 * answered here.
 *
 * The pre-shared secrets are read once at start (keyfile.c) and zeroed by
 * peers_free; each connection's keys are zeroed when it closes.
 */
#ifndef CHOREO_PEER_H
#define CHOREO_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "wire.h"

#define PEER_HANDSHAKE_MS    5000   /* accept (or connect) to a proved PROOF */
#define PEER_MAX_UNAUTH      64     /* connections not yet authenticated */
#define PEER_MAX_PER_SOURCE  4      /* of those, from one address */
#define PEER_PING_MS         10000  /* silence before a PING */
#define PEER_IDLE_MS         30000  /* silence before closing */
#define PEER_BACKOFF_MIN_MS  1000
#define PEER_BACKOFF_MAX_MS  30000
#define PEER_OUT_MAX         (32u * 1024 * 1024) /* bytes queued to one peer */

struct loop;
struct peers;
struct peer_link;

/* Why a connection ended (counted per reason; see peer_reason_name). */
enum peer_reason {
	PEER_R_MAGIC, PEER_R_VERSION, PEER_R_KEY_ID, PEER_R_LENGTH, PEER_R_TAG,
	PEER_R_SEQ, PEER_R_TIME, PEER_R_TYPE, PEER_R_SIZE, PEER_R_FIELD,
	PEER_R_PROOF,
	PEER_R_HELLO,        /* a HELLO or WELCOME naming the wrong node or role */
	PEER_R_FROM,         /* a DNS node connecting from outside its 'from' */
	PEER_R_HANDSHAKE_TIMEOUT,
	PEER_R_IDLE,         /* silent for PEER_IDLE_MS */
	PEER_R_CLOSED,       /* the peer closed (or reset) the connection */
	PEER_R_IO,           /* a socket error, or no room for the output */
	PEER_R_REPLACED,     /* the same peer authenticated a newer connection */
	PEER_R_STALE,        /* a different configuration digest */
	PEER_R_PROTOCOL,     /* the user refused a frame (e.g. an ACK out of order) */
	PEER_R_COUNT
};

const char *peer_reason_name(enum peer_reason r);

struct peer_handlers {
	void *ctx;
	/* A link authenticated (both PROOFs checked). Return 0, or the
	 * reason to close it. It may call peer_send on it. */
	int (*up)(void *ctx, struct peer_link *l);
	/*
	 * A data frame of an authenticated link, every check of protocol.md
	 * passed (tag, sequence, timestamp); PING and PONG are not passed on.
	 * payload spans exactly the payload. Return 0, or the reason to close
	 * the link (PEER_R_TYPE for a type the user does not take, ...).
	 * The handler may call peer_send on any link, this one too.
	 */
	int (*frame)(void *ctx, struct peer_link *l, uint8_t type,
		     struct wire *payload);
	/* An authenticated link closed (for reason). */
	void (*down)(void *ctx, struct peer_link *l, enum peer_reason reason);
};

/*
 * Read the keys of cfg ([key ID] file), then, by role: a gateway and a
 * controller listen on peer_listen; a DNS node and a gateway start
 * connecting to the peers they connect to (config_role_connects). Returns 0
 * and *out, or a negative errno (logged).
 */
int peers_new(const struct config *cfg, struct loop *loop,
	      const struct peer_handlers *h, struct peers **out);
/* The link to the controller (a DNS node's, a gateway's) gets its own
 * handlers; until they are set, its frames are refused (PEER_R_TYPE). */
void peers_set_controller_handlers(struct peers *p, const struct peer_handlers *h);

/* Close every connection (no down callbacks), zero the keys. NULL is fine. */
void peers_free(struct peers *p);

/* Deadlines, keepalive and reconnects; call about once a second. */
void peers_tick(struct peers *p, uint64_t now_ms);

/* The authenticated link to the [peer] at index i of cfg->peers, or NULL. */
struct peer_link *peers_link(struct peers *p, size_t peer_index);

/* The index in cfg->peers of the peer at the other end (authenticated). */
size_t peer_link_index(const struct peer_link *l);

/*
 * Queue one frame of this type to an authenticated link: fill writes its
 * payload (at most max_payload bytes) into w and returns 0 or a negative
 * errno. Returns 0 when the frame is queued (the link may still fail
 * later: then down() is called), -ENOTCONN, -ENOBUFS (over PEER_OUT_MAX:
 * the peer does not read), or fill's or the encoder's error.
 */
int peer_send(struct peer_link *l, uint8_t type, size_t max_payload,
	      int (*fill)(void *ctx, struct wire_out *w), void *ctx);

/* Close the authenticated link to the [peer] at index i, if any (its
 * down callback runs, reason PEER_R_PROTOCOL). */
void peers_close(struct peers *p, size_t peer_index);

/* Try to write what is queued to the link now (before a process exits). */
void peer_flush(struct peer_link *l);

/* What the control socket shows of each configured peer. */
struct peer_link_stats {
	const char *name;          /* [peer NAME] */
	bool up;
	const char *state;         /* "up", "connecting", "handshake", "down" */
	uint64_t up_ms;            /* how long up */
	uint64_t connects;         /* authenticated connections, in total */
	uint64_t frames_in, frames_out;
	size_t queued;             /* bytes waiting to be sent */
	uint64_t rtt_ms;           /* of the last PING answered; 0: none yet */
	enum peer_reason last_down; /* PEER_R_COUNT: never down */
	int last_errno;            /* of the last failed connect, or 0 */
};

struct peers_stats {
	uint64_t accepted;         /* connections accepted (a gateway) */
	uint64_t refused_full;     /* closed at accept: PEER_MAX_UNAUTH pending */
	uint64_t refused_source;   /* closed at accept: PEER_MAX_PER_SOURCE */
	uint64_t refused_from;     /* closed at accept: from no DNS node's 'from' */
	uint64_t ended[PEER_R_COUNT]; /* connections ended, by reason */
	size_t unauth;             /* handshakes in progress now */
	size_t n_links;
	struct peer_link_stats link[CONFIG_MAX_PEERS]; /* by cfg->peers index */
};

void peers_get_stats(const struct peers *p, uint64_t now_ms,
		     struct peers_stats *out);

#endif
