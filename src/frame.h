/* SPDX-License-Identifier: MIT */
/*
 * The peer protocol's bytes (docs/protocol.md): frames, their tags, the
 * receive checks, the handshake's keys and transcript, and each type's
 * payload. No I/O and no allocation: the caller (src/peer.c) reads and
 * writes the sockets, keeps the buffers and the state of each connection.
 *
 * Receiving a frame, in the order of protocol.md ("Receiving a frame"):
 *
 *   1. frame_header_decode(28 bytes, cap) ... and the key id, the caller's
 *   2. read len + FRAME_TAG_LEN more bytes; frame_verify_tag()
 *   3. + 4. frame_rx_accept()
 *   5. the type the state expects (the caller's), then frame_*_decode() of
 *      a wire over exactly the payload
 *
 * Every check that fails returns a negative errno of its own (FRAME_ERR_*)
 * so that the caller can count and log each reason; frame_strerror() names
 * them. Nothing of a frame may be used before all five passed.
 *
 * Sending: frame_begin(), the payload's frame_*_encode() into the same
 * wire_out, frame_end() (the length and the tag); or frame_encode() with a
 * payload built elsewhere.
 */
#ifndef CHOREO_FRAME_H
#define CHOREO_FRAME_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "change.h"
#include "keyfile.h"
#include "wire.h"

#define FRAME_MAGIC         0x63686f72u /* "chor" */
#define FRAME_VERSION       1
#define FRAME_HEADER_LEN    28
#define FRAME_TAG_LEN       32
#define FRAME_KEY_LEN       32
#define FRAME_NONCE_LEN     32
#define FRAME_DIGEST_LEN    32          /* SHA-256: PROOF, config_digest */
#define FRAME_MAX_PAYLOAD   1048576u
#define FRAME_MAX_HANDSHAKE 1024u       /* the payload cap until both PROOFs */
#define FRAME_MAX_CHANGES   24000u
#define FRAME_FUDGE_MS      30000u
#define FRAME_NAME_MAX      63          /* a node name: 1-63 of A-Z a-z 0-9 _ - */
#define FRAME_ROLE_MAX      10          /* strlen("controller") */

/* Header and tag around a payload; the largest frames of each phase. */
#define FRAME_OVERHEAD      (FRAME_HEADER_LEN + FRAME_TAG_LEN)
#define FRAME_MAX_LEN       (FRAME_OVERHEAD + FRAME_MAX_PAYLOAD)
#define FRAME_MAX_HANDSHAKE_LEN (FRAME_OVERHEAD + FRAME_MAX_HANDSHAKE)

/* Payload sizes. */
#define FRAME_PROOF_LEN     FRAME_DIGEST_LEN
#define FRAME_CHANGES_HEAD  (4 + FRAME_DIGEST_LEN + 2) /* before the changes */
#define FRAME_WINDOWS_HEAD  (FRAME_DIGEST_LEN + 1 + 2)  /* before the windows */
#define FRAME_ACK_LEN       10
#define FRAME_PING_LEN      8

enum frame_type {
	FRAME_HELLO = 1,     /* client -> server, K_hello */
	FRAME_WELCOME = 2,   /* server -> client, K_hello */
	FRAME_PROOF = 3,     /* both, the sender's direction key */
	FRAME_CHANGES = 16,  /* DNS node -> gateway */
	FRAME_ACK = 17,      /* gateway -> DNS node */
	FRAME_PING = 18,     /* either way */
	FRAME_PONG = 19,     /* the answer to a PING */
	FRAME_WINDOWS = 20,  /* gateway -> DNS node, after the handshake */
	FRAME_JOIN = 32,     /* DNS node or gateway -> controller, first */
	FRAME_LEARNED = 33,  /* gateway -> controller: bindings its kernel learned */
	FRAME_REPORT = 34,   /* DNS node or gateway -> controller: its status */
	FRAME_ASSIGN = 35,   /* controller -> DNS node: its slices and shares */
	FRAME_ASSIGNED = 36, /* DNS node -> controller: an ASSIGN applied */
	FRAME_LEAVE = 37,    /* DNS node -> controller: it stops */
};

#define FRAME_MAX_SERVICES  256         /* entries of an assignment */
#define FRAME_MAX_BLOCK_BITS 16
#define FRAME_ASSIGNED_LEN  8

#define FRAME_REPORT_MAX    1024        /* bytes of a REPORT's text */

#define FRAME_ROLE_DNS        "dns"
#define FRAME_ROLE_GATEWAY    "gateway"
#define FRAME_ROLE_CONTROLLER "controller"

/*
 * Why a frame is refused, one code per check. The caller's own checks
 * (key id, type) have codes here too, so that all are named alike.
 */
#define FRAME_ERR_MAGIC   (-EILSEQ)          /* 1. not "chor" */
#define FRAME_ERR_VERSION (-EPROTONOSUPPORT) /* 1. a version other than 1 */
#define FRAME_ERR_KEY_ID  (-ENOKEY)          /* 1. (caller) not the connection's key id */
#define FRAME_ERR_LENGTH  (-EMSGSIZE)        /* 1. payload longer than the cap */
#define FRAME_ERR_TAG     (-EKEYREJECTED)    /* 2. the tag does not verify */
#define FRAME_ERR_SEQ     (-EPROTO)          /* 3. sequence not the last + 1 */
#define FRAME_ERR_TIME    (-ETIME)           /* 4. timestamp off by more than 30 s */
#define FRAME_ERR_TYPE    (-ENOMSG)          /* 5. (caller) type not expected now */
#define FRAME_ERR_SIZE    (-EBADMSG)         /* 5. payload shorter or longer than its fields */
#define FRAME_ERR_FIELD   (-EINVAL)          /* 5. a field out of range */
#define FRAME_ERR_PROOF   (-EACCES)          /* a PROOF that is not the transcript's */

/* The fixed part of a frame, decoded. */
struct frame_header {
	uint8_t type;      /* enum frame_type, or anything: checked in step 5 */
	uint16_t key_id;
	uint32_t len;      /* payload bytes, at most the cap given to decode */
	uint64_t seq;
	uint64_t ts_ms;    /* sender's clock, ms since 1970-01-01 UTC */
};

/* What a receiver remembers of one direction of a connection. Zero it
 * (= {0}) when the connection starts. */
struct frame_rx {
	bool any;          /* a frame has been accepted */
	uint64_t last_seq; /* its sequence number */
};

/* ---- frames ----------------------------------------------------------------- */

/*
 * Check 1 on the first FRAME_HEADER_LEN bytes of a frame: magic, version
 * and a payload length of at most max_payload (FRAME_MAX_HANDSHAKE until
 * the handshake is done, FRAME_MAX_PAYLOAD after; a larger cap counts as
 * FRAME_MAX_PAYLOAD). The key id and the type are decoded, not checked:
 * the caller knows the connection's key id (FRAME_ERR_KEY_ID) and which
 * types it expects. Returns 0 and fills *out, or FRAME_ERR_MAGIC,
 * FRAME_ERR_VERSION, FRAME_ERR_LENGTH (*out is then zeroed).
 */
int frame_header_decode(const uint8_t buf[static FRAME_HEADER_LEN],
			uint32_t max_payload, struct frame_header *out);

/*
 * Start a frame at w's position: its header, with a payload length that
 * frame_end() fills in. Returns the offset of the frame in w (for
 * frame_end); a lack of room sets w's sticky error, which frame_end returns.
 */
size_t frame_begin(struct wire_out *w, uint8_t type, uint16_t key_id,
		   uint64_t seq, uint64_t ts_ms);

/*
 * Finish the frame begun at offset start of w: everything written since its
 * header is the payload; set its length and append the tag,
 * HMAC-SHA256(key, header || payload). Returns 0; w's error (-ENOSPC);
 * -EMSGSIZE when the payload is over FRAME_MAX_PAYLOAD; -EINVAL when start
 * is not a frame_begin of w; or crypto's error. After an error the bytes
 * in w are not a frame and must not be sent.
 */
int frame_end(struct wire_out *w, size_t start,
	      const uint8_t key[static FRAME_KEY_LEN]);

/* A whole frame with this payload (payload may be NULL when len is 0):
 * frame_begin, the payload, frame_end. Returns as frame_end. */
int frame_encode(struct wire_out *w, uint8_t type, uint16_t key_id,
		 uint64_t seq, uint64_t ts_ms, const uint8_t *payload,
		 size_t len, const uint8_t key[static FRAME_KEY_LEN]);

/*
 * Check 2: tag is HMAC-SHA256(key, frame[0 .. len - 1]), where frame is the
 * header and the payload (len = FRAME_HEADER_LEN + header.len), compared in
 * constant time. Returns 0, FRAME_ERR_TAG, or crypto's error (-ENOMEM, -EIO).
 */
int frame_verify_tag(const uint8_t *frame, size_t len,
		     const uint8_t tag[static FRAME_TAG_LEN],
		     const uint8_t key[static FRAME_KEY_LEN]);

/*
 * Checks 3 and 4, for a frame whose tag verified: its sequence number is
 * exactly one more than the last one accepted in this direction (the first
 * must be 0), and
 * its timestamp within FRAME_FUDGE_MS of now_ms (the receiver's clock, ms
 * since 1970 UTC; exactly 30 000 ms off is accepted). On success returns 0
 * and records h->seq in *rx; otherwise returns FRAME_ERR_SEQ or
 * FRAME_ERR_TIME (the sequence is checked first) and *rx is unchanged.
 */
int frame_rx_accept(struct frame_rx *rx, const struct frame_header *h,
		    uint64_t now_ms);

/* ---- keys and the handshake ----------------------------------------------- */

/*
 * K_hello = HKDF-SHA256(ikm = PSK, salt = "", info = "choreo v1 hello" ||
 * 0x00 || u16 psk->id, L = 32): the key of HELLO and WELCOME. Returns 0 or
 * crypto's error. The caller wipes out when the handshake is over.
 */
int frame_hello_key(const struct psk *psk, uint8_t out[static FRAME_KEY_LEN]);

/*
 * The connection's keys, K_c2s and K_s2c, from the PSK, both nonces and
 * the four strings exactly as protocol.md ("Per-connection keys") puts them
 * in the HKDF info (the key id is psk->id). Roles must be "dns", "gateway"
 * or "controller" and names valid node names (frame_name_valid), else
 * -EINVAL. Returns 0 or crypto's error; on an error both outputs are
 * zeroed. The caller wipes them when the connection ends.
 */
int frame_session_keys(const struct psk *psk,
		       const uint8_t cnonce[static FRAME_NONCE_LEN],
		       const uint8_t snonce[static FRAME_NONCE_LEN],
		       const char *crole, const char *cname,
		       const char *srole, const char *sname,
		       uint8_t c2s[static FRAME_KEY_LEN],
		       uint8_t s2c[static FRAME_KEY_LEN]);

/*
 * The transcript hash that PROOF carries: SHA-256 over the complete HELLO
 * frame (header, payload and tag, as sent or received) followed by the
 * complete WELCOME frame. Returns 0 or crypto's error.
 */
int frame_transcript(const uint8_t *hello, size_t hello_len,
		     const uint8_t *welcome, size_t welcome_len,
		     uint8_t out[static FRAME_DIGEST_LEN]);

/* A received PROOF's digest against the transcript computed here, in
 * constant time: 0 or FRAME_ERR_PROOF. */
int frame_proof_check(const uint8_t proof[static FRAME_DIGEST_LEN],
		      const uint8_t transcript[static FRAME_DIGEST_LEN]);

/* ---- payloads --------------------------------------------------------------- */
/*
 * Encoders append one payload to w (between frame_begin and frame_end) and
 * return 0, -EINVAL for an argument the protocol does not allow (nothing is
 * written then), or w's sticky error (-ENOSPC).
 *
 * Decoders read one payload from w, which must span exactly the payload:
 * every field is checked and nothing may be left over. They return 0, or
 * FRAME_ERR_SIZE (too short, or bytes left over) or FRAME_ERR_FIELD (a
 * field out of range), and set w's sticky error alike. After an error the
 * output holds nothing to use.
 */

struct frame_hello {
	uint8_t nonce[FRAME_NONCE_LEN];    /* the client's */
	char role[FRAME_ROLE_MAX + 1];     /* the client's claimed role */
	char name[FRAME_NAME_MAX + 1];     /* the client's name */
	char server[FRAME_NAME_MAX + 1];   /* the server it means to reach */
};

struct frame_welcome {
	uint8_t nonce[FRAME_NONCE_LEN];    /* the server's */
	char role[FRAME_ROLE_MAX + 1];
	char name[FRAME_NAME_MAX + 1];
};

struct frame_ack {
	uint32_t commit_id;
	int32_t result;    /* 0, or a negative errno (-4095 .. -1) */
	uint16_t applied;  /* the CHANGES' count on success, else 0 */
};

/* HELLO: nonce || u8 len || role || u8 len || name || u8 len || server. */
int frame_hello_encode(struct wire_out *w,
		       const uint8_t nonce[static FRAME_NONCE_LEN],
		       const char *role, const char *name, const char *server);
int frame_hello_decode(struct wire *w, struct frame_hello *out);

/* WELCOME: nonce || u8 len || role || u8 len || name. */
int frame_welcome_encode(struct wire_out *w,
			 const uint8_t nonce[static FRAME_NONCE_LEN],
			 const char *role, const char *name);
int frame_welcome_decode(struct wire *w, struct frame_welcome *out);

/* PROOF: the 32-byte transcript hash (see frame_proof_check). */
int frame_proof_encode(struct wire_out *w,
		       const uint8_t digest[static FRAME_DIGEST_LEN]);
int frame_proof_decode(struct wire *w, uint8_t digest[static FRAME_DIGEST_LEN]);

/*
 * CHANGES: u32 commit_id || 32 config_digest || u16 count || count x change
 * (CHANGE_WIRE_LEN each, change_encode). n must be 1 .. FRAME_MAX_CHANGES.
 */
int frame_changes_encode(struct wire_out *w, uint32_t commit_id,
			 const uint8_t digest[static FRAME_DIGEST_LEN],
			 const struct change *changes, size_t n);

/* frame_changes_encode's arguments, for peer_send's fill callback
 * (frame_changes_fill): ctx is a struct frame_changes_args. */
struct frame_changes_args {
	uint32_t commit_id;
	const uint8_t *digest;
	const struct change *c;
	size_t n;
};

int frame_changes_fill(void *ctx, struct wire_out *w);

/*
 * A decoded CHANGES payload: its head and an iterator over its changes.
 * It points into the payload's buffer, which must outlive it.
 */
struct frame_changes {
	uint32_t commit_id;
	uint8_t digest[FRAME_DIGEST_LEN];
	uint16_t count;                    /* 1 .. FRAME_MAX_CHANGES */
	/* private: the changes not yet given by frame_changes_next */
	struct wire rest;
	size_t n_services;
};

/*
 * Step 1 of a gateway's checks (protocol.md, "Data frames": the size, then
 * the digest, then each change) alone: the head of the CHANGES payload at
 * w's position, without moving w. Count in 1 .. FRAME_MAX_CHANGES
 * (FRAME_ERR_FIELD) and exactly count changes' bytes after the head
 * (FRAME_ERR_SIZE); the changes are not looked at. Fills commit_id, digest
 * and count of *out, whose iterator is not usable: compare the digest
 * (ACK -ESTALE when it is not the gateway's own), then frame_changes_decode.
 */
int frame_changes_peek(const struct wire *w, struct frame_changes *out);

/*
 * Decode and check the whole payload: count in 1 .. FRAME_MAX_CHANGES
 * (FRAME_ERR_FIELD), exactly count changes follow (FRAME_ERR_SIZE), and
 * every change passes change_decode(n_services) (its error). Only then is
 * 0 returned, so all of a frame's changes are known good before the first
 * is applied; w is then at its end.
 */
int frame_changes_decode(struct wire *w, size_t n_services,
			 struct frame_changes *out);

/* The next change of a decoded CHANGES: returns 1 and fills *c, or 0 after
 * the last one. (It cannot fail: frame_changes_decode checked them all.) */
int frame_changes_next(struct frame_changes *it, struct change *c);

/*
 * WINDOWS: 32 config_digest || u8 more (0 or 1) || u16 count (0 ..
 * FRAME_MAX_CHANGES) || count x change, each of kind open or open_scoped,
 * its ms the time the window has left. A gateway sends them right after
 * the handshake, more = 1 on all but the last.
 */
int frame_windows_encode(struct wire_out *w,
			 const uint8_t digest[static FRAME_DIGEST_LEN], bool more,
			 const struct change *windows, size_t n);

struct frame_windows {
	uint8_t digest[FRAME_DIGEST_LEN];
	bool more;
	uint16_t count;                    /* 0 .. FRAME_MAX_CHANGES */
	/* private */
	struct wire rest;
	size_t n_services;
};

/* Decode and check the whole payload (as frame_changes_decode; a kind
 * other than open or open_scoped is FRAME_ERR_FIELD, and so is more > 1). */
int frame_windows_decode(struct wire *w, size_t n_services,
			 struct frame_windows *out);
int frame_windows_next(struct frame_windows *it, struct change *c);

/*
 * LEARNED: the layout of WINDOWS (more always 0, count 1 .. FRAME_MAX_CHANGES),
 * each change of kind learned, its ms the lifetime the relay gives it.
 * The controller sends them on to the other gateways as CHANGES.
 */
int frame_learned_encode(struct wire_out *w,
			 const uint8_t digest[static FRAME_DIGEST_LEN],
			 const struct change *learned, size_t n);
int frame_learned_decode(struct wire *w, size_t n_services,
			 struct frame_windows *out);

/*
 * A DNS node's slices and shares: u64 epoch || u16 n (0 .. FRAME_MAX_SERVICES)
 * || n x (u8 block_bits (0 .. 16) || i32 block (-1: none, else
 * 0 .. 2^block_bits - 1) || u32 share). Entry i is service i. Epoch 0 with
 * n 0: none.
 */
struct frame_assign {
	uint64_t epoch;
	uint16_t n;
	uint8_t block_bits[FRAME_MAX_SERVICES];
	int32_t block[FRAME_MAX_SERVICES];
	uint32_t share[FRAME_MAX_SERVICES];
};

#define FRAME_ASSIGN_LEN(n)  (8 + 2 + (size_t)(n) * 9)

/* ASSIGN: a struct frame_assign, the controller's word to a DNS node. */
int frame_assign_encode(struct wire_out *w, const struct frame_assign *a);
int frame_assign_decode(struct wire *w, struct frame_assign *out);

/*
 * JOIN: 32 services digest || the assignment the node has applied (its
 * claim; a gateway's, and a node's without one: epoch 0, n 0).
 */
int frame_join_encode(struct wire_out *w,
		      const uint8_t digest[static FRAME_DIGEST_LEN],
		      const struct frame_assign *claim);
int frame_join_decode(struct wire *w, uint8_t digest[static FRAME_DIGEST_LEN],
		      struct frame_assign *claim);

/* ASSIGNED: u64 epoch, the ASSIGN applied. LEAVE: no payload. */
int frame_assigned_encode(struct wire_out *w, uint64_t epoch);
int frame_assigned_decode(struct wire *w, uint64_t *epoch);
int frame_leave_decode(struct wire *w);

/*
 * REPORT: u16 len || len bytes of text, 1 .. FRAME_REPORT_MAX bytes of
 * printable ASCII (0x20 .. 0x7e): "key value" pairs that the controller
 * shows as they are. text_out gets them NUL-terminated.
 */
int frame_report_encode(struct wire_out *w, const char *text);
int frame_report_decode(struct wire *w, char text_out[static FRAME_REPORT_MAX + 1]);

/* ACK: u32 commit_id || i32 result || u16 applied. Result must be 0 or a
 * negative errno (-4095 .. -1); applied is the count of the CHANGES on
 * success (at most FRAME_MAX_CHANGES) and 0 otherwise (whether it equals
 * the commit's count is the caller's to check). */
int frame_ack_encode(struct wire_out *w, const struct frame_ack *a);
int frame_ack_decode(struct wire *w, struct frame_ack *out);

/* PING and PONG alike: u64 token. */
int frame_ping_encode(struct wire_out *w, uint64_t token);
int frame_ping_decode(struct wire *w, uint64_t *token);

/* ---- names ------------------------------------------------------------------ */

/* name is 1 .. FRAME_NAME_MAX characters of A-Z a-z 0-9 _ - (a NUL-terminated
 * local string, e.g. from the configuration; read at most 64 bytes). */
bool frame_name_valid(const char *name);

/* role is "dns", "gateway" or "controller". */
bool frame_role_valid(const char *role);

/* "HELLO", "WELCOME", ..., or "?" for a type that protocol.md does not know. */
const char *frame_type_name(uint8_t type);

/* What a FRAME_ERR_* means, for logs and counters ("bad magic", "bad tag",
 * ...); other errors give strerror's text. Never NULL. */
const char *frame_strerror(int err);

#endif
