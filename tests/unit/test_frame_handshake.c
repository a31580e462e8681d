// SPDX-License-Identifier: MIT
/* Unit tests of the peer protocol's keys and handshake (src/frame.c,
 * docs/protocol.md "Secrets and keys", "Handshake"): known answers from an
 * independent implementation, and two sides in memory. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>
#include "cmocka_analyzer.h"

#include "crypto.h"
#include "frame.h"
#include "frame_util.h"

/* ---- keys ------------------------------------------------------------------- */

/*
 * Known answers, computed apart from the C code with Python's hmac and
 * hashlib from the text of protocol.md (python3, standard library only):
 *
 *   import hashlib, hmac
 *
 *   def hkdf(ikm, salt, info, length=32):
 *       prk = hmac.new(salt, ikm, hashlib.sha256).digest()  # salt b"": HMAC pads the key with zeros
 *       okm, t, i = b"", b"", 1
 *       while len(okm) < length:
 *           t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
 *           okm, i = okm + t, i + 1
 *       return okm[:length]
 *
 *   def s8(s):
 *       return bytes([len(s)]) + s
 *
 *   psk, key_id = b"0123456789abcdef0123456789abcdef", 258
 *   cn, sn = bytes(range(0, 32)), bytes(range(32, 64))
 *   print("hello", hkdf(psk, b"", b"choreo v1 hello\0" + key_id.to_bytes(2, "big")).hex())
 *   for d in (b"c2s", b"s2c"):
 *       info = (b"choreo v1 " + d + b"\0" + key_id.to_bytes(2, "big") +
 *               s8(b"dns") + s8(b"dns-1") + s8(b"gateway") + s8(b"gw_a"))
 *       print(d.decode(), hkdf(psk, cn + sn, info).hex())
 *
 * Output:
 *   hello 44ad4d8061a12930c29c1d7237e3dbf263cdef35c3b76cfc86d975e6e9e28431
 *   c2s 805dc9e0b13a45de12e2a331171f215e1a67c7d62a45dda12808e99ab1b06bc5
 *   s2c 8028d9c306e074ba78f3adf68097b08d8ba07c77772cc9a6002da7bfeaf93911
 */
static void test_keys_known_answer(void **state)
{
	struct psk psk = make_psk(258, "0123456789abcdef0123456789abcdef");
	uint8_t cn[32], sn[32], want[32], c2s[32], s2c[32], hello[32];

	(void)state;
	for (int i = 0; i < 32; i++) {
		cn[i] = (uint8_t)i;
		sn[i] = (uint8_t)(32 + i);
	}
	assert_int_equal(frame_hello_key(&psk, hello), 0);
	unhex("44ad4d8061a12930c29c1d7237e3dbf263cdef35c3b76cfc86d975e6e9e28431", want, 32);
	assert_memory_equal(hello, want, 32);
	assert_int_equal(frame_session_keys(&psk, cn, sn, "dns", "dns-1", "gateway",
					    "gw_a", c2s, s2c), 0);
	unhex("805dc9e0b13a45de12e2a331171f215e1a67c7d62a45dda12808e99ab1b06bc5", want, 32);
	assert_memory_equal(c2s, want, 32);
	unhex("8028d9c306e074ba78f3adf68097b08d8ba07c77772cc9a6002da7bfeaf93911", want, 32);
	assert_memory_equal(s2c, want, 32);
}

static void test_keys_differ(void **state)
{
	struct psk psk = make_psk(1, "0123456789abcdef0123456789abcdef");
	struct psk other;
	uint8_t cn[32] = { 1 }, sn[32] = { 2 }, c2s[32], s2c[32], k[2][32], h[2][32];

	(void)state;
	assert_int_equal(frame_session_keys(&psk, cn, sn, "dns", "a", "gateway", "b",
					    c2s, s2c), 0);
	assert_memory_not_equal(c2s, s2c, 32); /* by direction */
	/* by each nonce */
	cn[31] ^= 1;
	assert_int_equal(frame_session_keys(&psk, cn, sn, "dns", "a", "gateway", "b",
					    k[0], k[1]), 0);
	assert_memory_not_equal(k[0], c2s, 32);
	assert_memory_not_equal(k[1], s2c, 32);
	cn[31] ^= 1;
	sn[0] ^= 0x80;
	assert_int_equal(frame_session_keys(&psk, cn, sn, "dns", "a", "gateway", "b",
					    k[0], k[1]), 0);
	assert_memory_not_equal(k[0], c2s, 32);
	assert_memory_not_equal(k[1], s2c, 32);
	sn[0] ^= 0x80;
	/* the nonces' order: the salt is client || server */
	assert_int_equal(frame_session_keys(&psk, sn, cn, "dns", "a", "gateway", "b",
					    k[0], k[1]), 0);
	assert_memory_not_equal(k[0], c2s, 32);
	/* by the names and roles */
	assert_int_equal(frame_session_keys(&psk, cn, sn, "dns", "b", "gateway", "a",
					    k[0], k[1]), 0);
	assert_memory_not_equal(k[0], c2s, 32);
	assert_int_equal(frame_session_keys(&psk, cn, sn, "dns", "a", "controller", "b",
					    k[0], k[1]), 0);
	assert_memory_not_equal(k[0], c2s, 32);
	/* "ab" || "c" and "a" || "bc": the length bytes tell them apart */
	assert_int_equal(frame_session_keys(&psk, cn, sn, "dns", "ab", "gateway", "c",
					    k[0], k[1]), 0);
	assert_int_equal(frame_session_keys(&psk, cn, sn, "dns", "a", "gateway", "bc",
					    h[0], h[1]), 0);
	assert_memory_not_equal(k[0], h[0], 32);
	/* by the key id and by the secret */
	other = psk;
	other.id = 2;
	assert_int_equal(frame_session_keys(&other, cn, sn, "dns", "a", "gateway", "b",
					    k[0], k[1]), 0);
	assert_memory_not_equal(k[0], c2s, 32);
	assert_int_equal(frame_hello_key(&psk, h[0]), 0);
	assert_int_equal(frame_hello_key(&other, h[1]), 0);
	assert_memory_not_equal(h[0], h[1], 32);
	other = psk;
	other.bytes[0] ^= 1;
	assert_int_equal(frame_session_keys(&other, cn, sn, "dns", "a", "gateway", "b",
					    k[0], k[1]), 0);
	assert_memory_not_equal(k[0], c2s, 32);
	assert_int_equal(frame_hello_key(&other, h[1]), 0);
	assert_memory_not_equal(h[0], h[1], 32);
	/* the hello key is none of the session keys */
	assert_memory_not_equal(h[0], c2s, 32);
	assert_memory_not_equal(h[0], s2c, 32);
	/* bad strings are refused, and the outputs zeroed */
	assert_int_equal(frame_session_keys(&psk, cn, sn, "dns", "a.b", "gateway", "b",
					    k[0], k[1]), -EINVAL);
	assert_int_equal(frame_session_keys(&psk, cn, sn, "dns", "a", "gw", "b",
					    k[0], k[1]), -EINVAL);
	memset(h[0], 0, 32);
	assert_memory_equal(k[0], h[0], 32);
	assert_memory_equal(k[1], h[0], 32);
	other.len = 0;
	assert_int_equal(frame_hello_key(&other, h[1]), -EINVAL);
	psk_wipe(&other);
	psk_wipe(&psk);
}

/* ---- the handshake, end to end ---------------------------------------------- */

struct side {
	struct psk psk;
	const char *role, *name;       /* its own */
	const char *peer_role, *peer;  /* the one it expects */
	uint8_t nonce[32], peer_nonce[32];
	uint8_t k_hello[32], k_tx[32], k_rx[32];
	uint8_t transcript[32];
	struct frame_rx rx;
	uint64_t tx_seq;
};

/* A frame of this side: next sequence number, this key. */
#define SEND(s, buf, type, key, fill_expr)                                   \
	({                                                                   \
		struct wire_out w_ = wire_out_init((buf), sizeof(buf));      \
		struct wire_out *w = &w_;                                    \
		size_t s_ = frame_begin(w, (type), (s)->psk.id, (s)->tx_seq++, NOW); \
		assert_int_equal((fill_expr), 0);                            \
		assert_int_equal(frame_end(w, s_, (key)), 0);                \
		wire_out_len(w);                                             \
	})

static void side_init(struct side *s, const char *secret, const char *role,
		      const char *name, const char *peer_role, const char *peer)
{
	memset(s, 0, sizeof(*s));
	s->psk = make_psk(9, secret);
	s->role = role;
	s->name = name;
	s->peer_role = peer_role;
	s->peer = peer;
	assert_int_equal(crypto_random(s->nonce, sizeof(s->nonce)), 0);
	assert_int_equal(frame_hello_key(&s->psk, s->k_hello), 0);
}

/* Both sides' keys once both nonces are known; the transcript. */
static void side_keys(struct side *s, bool client, const uint8_t *hello,
		      size_t hello_len, const uint8_t *welcome, size_t welcome_len)
{
	if (client)
		assert_int_equal(frame_session_keys(&s->psk, s->nonce, s->peer_nonce,
						    s->role, s->name, s->peer_role,
						    s->peer, s->k_tx, s->k_rx), 0);
	else
		assert_int_equal(frame_session_keys(&s->psk, s->peer_nonce, s->nonce,
						    s->peer_role, s->peer, s->role,
						    s->name, s->k_rx, s->k_tx), 0);
	assert_int_equal(frame_transcript(hello, hello_len, welcome, welcome_len,
					  s->transcript), 0);
}

static void test_handshake(void **state)
{
	static const char secret[] = "a shared secret of at least 32 bytes, between both";
	uint8_t hello[FRAME_MAX_HANDSHAKE_LEN], welcome[FRAME_MAX_HANDSHAKE_LEN];
	uint8_t cproof[FRAME_MAX_HANDSHAKE_LEN], sproof[FRAME_MAX_HANDSHAKE_LEN];
	uint8_t data[FRAME_OVERHEAD + 256], digest[32];
	size_t hello_len, welcome_len, cproof_len, sproof_len, len;
	struct side c, s;
	struct frame_hello h;
	struct frame_welcome wl;
	struct frame_changes ch;
	struct frame_ack ack;
	struct change one = make_change(CHANGE_BIND, AF_INET, 0), got;
	struct wire p;

	(void)state;
	side_init(&c, secret, "dns", "dns-1", "gateway", "gw-1");
	side_init(&s, secret, "gateway", "gw-1", "dns", "dns-1");

	/* HELLO, seq 0, K_hello */
	hello_len = SEND(&c, hello, FRAME_HELLO, c.k_hello,
			 frame_hello_encode(w, c.nonce, c.role, c.name, c.peer));
	assert_int_equal(receive(hello, hello_len, FRAME_MAX_HANDSHAKE, 9, s.k_hello,
				 &s.rx, FRAME_HELLO, &p), 0);
	assert_int_equal(frame_hello_decode(&p, &h), 0);
	assert_string_equal(h.name, s.peer);
	assert_string_equal(h.role, s.peer_role);
	assert_string_equal(h.server, s.name);
	memcpy(s.peer_nonce, h.nonce, 32);

	/* WELCOME, seq 0, K_hello */
	welcome_len = SEND(&s, welcome, FRAME_WELCOME, s.k_hello,
			   frame_welcome_encode(w, s.nonce, s.role, s.name));
	side_keys(&s, false, hello, hello_len, welcome, welcome_len);
	assert_int_equal(receive(welcome, welcome_len, FRAME_MAX_HANDSHAKE, 9,
				 c.k_hello, &c.rx, FRAME_WELCOME, &p), 0);
	assert_int_equal(frame_welcome_decode(&p, &wl), 0);
	assert_string_equal(wl.name, c.peer);
	assert_string_equal(wl.role, c.peer_role);
	memcpy(c.peer_nonce, wl.nonce, 32);
	side_keys(&c, true, hello, hello_len, welcome, welcome_len);
	assert_memory_equal(c.k_tx, s.k_rx, 32);
	assert_memory_equal(c.k_rx, s.k_tx, 32);
	assert_memory_equal(c.transcript, s.transcript, 32);

	/* the client's PROOF, seq 1, K_c2s: verified before anything else */
	cproof_len = SEND(&c, cproof, FRAME_PROOF, c.k_tx,
			  frame_proof_encode(w, c.transcript));
	assert_int_equal(receive(cproof, cproof_len, FRAME_MAX_HANDSHAKE, 9, s.k_rx,
				 &s.rx, FRAME_PROOF, &p), 0);
	assert_int_equal(frame_proof_decode(&p, digest), 0);
	assert_int_equal(frame_proof_check(digest, s.transcript), 0);

	/* the server's PROOF, seq 1, K_s2c */
	sproof_len = SEND(&s, sproof, FRAME_PROOF, s.k_tx,
			  frame_proof_encode(w, s.transcript));
	/* the client's own PROOF reflected to it fails: another key */
	{
		struct frame_rx rx = c.rx;

		assert_int_equal(receive(cproof, cproof_len, FRAME_MAX_HANDSHAKE, 9,
					 c.k_rx, &rx, FRAME_PROOF, &p), FRAME_ERR_TAG);
	}
	assert_int_equal(receive(sproof, sproof_len, FRAME_MAX_HANDSHAKE, 9, c.k_rx,
				 &c.rx, FRAME_PROOF, &p), 0);
	assert_int_equal(frame_proof_decode(&p, digest), 0);
	assert_int_equal(frame_proof_check(digest, c.transcript), 0);

	/* data: CHANGES seq 2 and its ACK seq 2 */
	len = SEND(&c, data, FRAME_CHANGES, c.k_tx,
		   frame_changes_encode(w, 1, digest, &one, 1));
	assert_int_equal(receive(data, len, FRAME_MAX_PAYLOAD, 9, s.k_rx, &s.rx,
				 FRAME_CHANGES, &p), 0);
	assert_int_equal(frame_changes_decode(&p, 1, &ch), 0);
	assert_int_equal(frame_changes_next(&ch, &got), 1);
	assert_memory_equal(&got, &one, sizeof(got));
	/* replayed: its sequence number is not above the last */
	assert_int_equal(receive(data, len, FRAME_MAX_PAYLOAD, 9, s.k_rx, &s.rx,
				 FRAME_CHANGES, &p), FRAME_ERR_SEQ);
	len = SEND(&s, data, FRAME_ACK, s.k_tx,
		   frame_ack_encode(w, &(struct frame_ack){ 1, 0, 1 }));
	assert_int_equal(receive(data, len, FRAME_MAX_PAYLOAD, 9, c.k_rx, &c.rx,
				 FRAME_ACK, &p), 0);
	assert_int_equal(frame_ack_decode(&p, &ack), 0);
	assert_int_equal(ack.applied, 1);

	/* a second connection: the first one's frames are worthless there */
	{
		struct side c2 = c, s2 = s;

		assert_int_equal(crypto_random(c2.nonce, 32), 0);
		assert_int_equal(crypto_random(s2.nonce, 32), 0);
		memcpy(c2.peer_nonce, s2.nonce, 32);
		memcpy(s2.peer_nonce, c2.nonce, 32);
		side_keys(&c2, true, hello, hello_len, welcome, welcome_len);
		side_keys(&s2, false, hello, hello_len, welcome, welcome_len);
		s2.rx = (struct frame_rx){ .any = true, .last_seq = 0 };
		assert_int_equal(receive(cproof, cproof_len, FRAME_MAX_HANDSHAKE, 9,
					 s2.k_rx, &s2.rx, FRAME_PROOF, &p), FRAME_ERR_TAG);
	}
	psk_wipe(&c.psk);
	psk_wipe(&s.psk);
}

/* A client whose PSK differs in one byte: refused at its HELLO, and a
 * PROOF it makes with the keys of its PSK is refused too. */
static void test_handshake_wrong_psk(void **state)
{
	uint8_t hello[FRAME_MAX_HANDSHAKE_LEN], welcome[FRAME_MAX_HANDSHAKE_LEN];
	uint8_t proof[FRAME_MAX_HANDSHAKE_LEN];
	size_t hello_len, welcome_len, proof_len;
	struct side c, s, honest;
	struct frame_hello h;
	struct wire p;

	(void)state;
	side_init(&c, "0123456789abcdef0123456789abcdeX", "dns", "dns-1", "gateway", "gw-1");
	side_init(&s, "0123456789abcdef0123456789abcdef", "gateway", "gw-1", "dns", "dns-1");

	hello_len = SEND(&c, hello, FRAME_HELLO, c.k_hello,
			 frame_hello_encode(w, c.nonce, c.role, c.name, c.peer));
	assert_int_equal(receive(hello, hello_len, FRAME_MAX_HANDSHAKE, 9, s.k_hello,
				 &s.rx, FRAME_HELLO, &p), FRAME_ERR_TAG);

	/* Suppose it had a HELLO the server accepts (a recording of an honest
	 * client's, say): the server answers, and the PROOF still fails. */
	side_init(&honest, "0123456789abcdef0123456789abcdef", "dns", "dns-1",
		  "gateway", "gw-1");
	memcpy(honest.nonce, c.nonce, 32);
	hello_len = SEND(&honest, hello, FRAME_HELLO, honest.k_hello,
			 frame_hello_encode(w, honest.nonce, honest.role, honest.name,
					    honest.peer));
	assert_int_equal(receive(hello, hello_len, FRAME_MAX_HANDSHAKE, 9, s.k_hello,
				 &s.rx, FRAME_HELLO, &p), 0);
	assert_int_equal(frame_hello_decode(&p, &h), 0);
	memcpy(s.peer_nonce, h.nonce, 32);
	welcome_len = SEND(&s, welcome, FRAME_WELCOME, s.k_hello,
			   frame_welcome_encode(w, s.nonce, s.role, s.name));
	side_keys(&s, false, hello, hello_len, welcome, welcome_len);
	/* the client cannot verify the WELCOME ... */
	assert_int_equal(receive(welcome, welcome_len, FRAME_MAX_HANDSHAKE, 9,
				 c.k_hello, &c.rx, FRAME_WELCOME, &p), FRAME_ERR_TAG);
	/* ... and its PROOF, with keys from its PSK, is refused */
	memcpy(c.peer_nonce, s.nonce, 32);
	side_keys(&c, true, hello, hello_len, welcome, welcome_len);
	assert_memory_equal(c.transcript, s.transcript, 32);
	proof_len = SEND(&c, proof, FRAME_PROOF, c.k_tx,
			 frame_proof_encode(w, c.transcript));
	assert_int_equal(receive(proof, proof_len, FRAME_MAX_HANDSHAKE, 9, s.k_rx,
				 &s.rx, FRAME_PROOF, &p), FRAME_ERR_TAG);
	/* the honest client's PROOF of another transcript: the tag is right,
	 * the digest is not */
	memcpy(honest.peer_nonce, s.nonce, 32);
	side_keys(&honest, true, hello, hello_len, welcome, welcome_len);
	honest.transcript[0] ^= 1;
	proof_len = SEND(&honest, proof, FRAME_PROOF, honest.k_tx,
			 frame_proof_encode(w, honest.transcript));
	assert_int_equal(receive(proof, proof_len, FRAME_MAX_HANDSHAKE, 9, s.k_rx,
				 &s.rx, FRAME_PROOF, &p), 0);
	{
		uint8_t digest[32];

		assert_int_equal(frame_proof_decode(&p, digest), 0);
		assert_int_equal(frame_proof_check(digest, s.transcript), FRAME_ERR_PROOF);
	}
	psk_wipe(&c.psk);
	psk_wipe(&s.psk);
	psk_wipe(&honest.psk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys_known_answer),
		cmocka_unit_test(test_keys_differ),
		cmocka_unit_test(test_handshake),
		cmocka_unit_test(test_handshake_wrong_psk),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
