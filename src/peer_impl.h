/* SPDX-License-Identifier: MIT */
/*
 * peer.c's insides, shared with peer_socket.c (where a link's socket comes
 * from): not an interface for anything else.
 */
#ifndef CHOREO_PEER_IMPL_H
#define CHOREO_PEER_IMPL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "frame.h"
#include "keyfile.h"
#include "log.h"
#include "loop.h"
#include "peer.h"

#define IN_START     2048              /* holds any handshake frame */
#define READ_BUDGET  (4u * 1024 * 1024) /* bytes read per event, then others' turn */

enum lstate {
	L_FREE,
	L_CONNECTING,    /* client: connect() in progress */
	L_WAIT_HELLO,    /* server: accepted */
	L_WAIT_WELCOME,  /* client: HELLO sent */
	L_WAIT_CPROOF,   /* server: WELCOME sent */
	L_WAIT_SPROOF,   /* client: PROOF sent */
	L_UP,
};

struct key {
	struct psk psk;
	uint8_t k_hello[FRAME_KEY_LEN];
};

struct link {
	struct loop_handler h;   /* h.fd < 0: the slot is free */
	struct peers *p;
	enum lstate st;
	bool client;
	int peer;                /* index in cfg->peers; -1 before a HELLO */
	const struct key *key;
	uint8_t k_tx[FRAME_KEY_LEN], k_rx[FRAME_KEY_LEN];
	uint64_t tx_seq;
	struct frame_rx rx;
	uint8_t nonce[FRAME_NONCE_LEN];
	uint8_t hello[FRAME_MAX_HANDSHAKE_LEN]; /* for the transcript */
	size_t hello_len;
	uint8_t transcript[FRAME_DIGEST_LEN];
	struct sockaddr_storage addr;            /* the other end */
	int family;
	uint8_t addr_bytes[16];

	uint8_t *in;
	size_t in_len, in_cap;
	struct frame_header hdr;
	bool have_hdr;

	uint8_t *out;
	size_t out_off, out_len, out_cap;
	uint32_t events;         /* what the loop watches for */
	int err;                 /* a send failed: close at the next event */

	uint64_t deadline_ms;    /* of the handshake */
	uint64_t last_rx_ms, ping_sent_ms, up_since_ms;
	uint64_t ping_token;
	bool ping_out;
	uint64_t frames_in, frames_out;
};

/* What is kept per configured peer across its connections. */
struct peer_state {
	struct link *up;         /* its authenticated link */
	uint64_t connects;
	enum peer_reason last_down;
	int last_errno;
	uint64_t rtt_ms;
	uint64_t next_try_ms, backoff_ms; /* a DNS node's reconnects */
	struct link *client;     /* a DNS node's slot for this gateway */
};

struct peers {
	const struct config *cfg;
	struct loop *loop;
	struct peer_handlers hd;
	struct peer_handlers hd_ctl;   /* for the link to the controller */
	struct key keys[CONFIG_MAX_KEYS];
	size_t n_keys;
	struct loop_handler listener;  /* fd -1 on a DNS node */
	bool from_only;                /* every DNS peer has 'from' */
	struct link *links;
	size_t n_links;
	size_t unauth;
	struct peer_state ps[CONFIG_MAX_PEERS];
	uint64_t accepted, refused_full, refused_source, refused_from;
	uint64_t ended[PEER_R_COUNT];
	struct log_ratelimit rl_refuse, rl_updown;
};

/* peer.c */
int peer_link_init(struct peers *p, struct link *l, int fd, bool client,
		   int peer, const struct sockaddr *sa, socklen_t sa_len);
void peer_close(struct link *l, enum peer_reason why);
const struct key *peer_find_key(const struct peers *p, uint16_t id);

/* peer_socket.c */
int peer_listen(struct peers *p);
void peer_connect(struct peers *p, size_t i, uint64_t now);

#endif
