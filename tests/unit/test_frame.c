// SPDX-License-Identifier: MIT
/* Unit tests of the peer protocol's frames (src/frame.c, docs/protocol.md):
 * the layout, the tag, the receive checks in their order, and a round trip
 * of every type through all of them. */
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
#include <sys/uio.h>

#include <cmocka.h>
#include "cmocka_analyzer.h"

#include "crypto.h"
#include "frame.h"
#include "frame_util.h"

static const uint8_t key_a[FRAME_KEY_LEN] = "0123456789abcdef0123456789abcdef";
static const uint8_t key_b[FRAME_KEY_LEN] = "0123456789abcdef0123456789abcdeF";

/* ---- frames ----------------------------------------------------------------- */

static void test_frame_layout(void **state)
{
	uint8_t buf[FRAME_OVERHEAD + 8], tag[32];
	struct wire_out w = wire_out_init(buf, sizeof(buf));
	struct iovec iov = { .iov_base = buf, .iov_len = FRAME_HEADER_LEN + 8 };
	struct frame_header h;
	size_t start;

	(void)state;
	start = frame_begin(&w, FRAME_PING, 0x0102, 0x1122334455667788ull,
			    0x0000018bcfe56800ull);
	assert_int_equal(start, 0);
	assert_int_equal(frame_ping_encode(&w, 0xa1a2a3a4a5a6a7a8ull), 0);
	assert_int_equal(frame_end(&w, start, key_a), 0);
	assert_int_equal(wire_out_len(&w), sizeof(buf));
	assert_memory_equal(buf,
			    "chor" "\x01" "\x12" "\x01\x02" "\x00\x00\x00\x08"
			    "\x11\x22\x33\x44\x55\x66\x77\x88"
			    "\x00\x00\x01\x8b\xcf\xe5\x68\x00"
			    "\xa1\xa2\xa3\xa4\xa5\xa6\xa7\xa8", 36);
	/* the tag: HMAC-SHA256 over header and payload, nothing else */
	assert_int_equal(crypto_hmac_sha256(key_a, 32, &iov, 1, tag), 0);
	assert_memory_equal(buf + 36, tag, 32);

	assert_int_equal(frame_header_decode(buf, FRAME_MAX_HANDSHAKE, &h), 0);
	assert_int_equal(h.type, FRAME_PING);
	assert_int_equal(h.key_id, 0x0102);
	assert_int_equal(h.len, 8);
	assert_true(h.seq == 0x1122334455667788ull);
	assert_true(h.ts_ms == 0x0000018bcfe56800ull);
	assert_int_equal(frame_verify_tag(buf, 36, buf + 36, key_a), 0);

	/* the same frame from a payload built elsewhere */
	{
		uint8_t again[sizeof(buf)];
		struct wire_out w2 = wire_out_init(again, sizeof(again));

		assert_int_equal(frame_encode(&w2, FRAME_PING, 0x0102,
					      0x1122334455667788ull,
					      0x0000018bcfe56800ull, buf + 28, 8,
					      key_a), 0);
		assert_memory_equal(again, buf, sizeof(buf));
	}
}

static void test_frame_end_errors(void **state)
{
	uint8_t buf[FRAME_OVERHEAD + 8];
	struct wire_out w = wire_out_init(buf, sizeof(buf) - 1);
	size_t start;

	(void)state;
	/* no room for the tag's last byte */
	start = frame_begin(&w, FRAME_PING, 1, 0, NOW);
	assert_int_equal(frame_ping_encode(&w, 1), 0);
	assert_int_equal(frame_end(&w, start, key_a), -ENOSPC);
	/* no room for the header */
	w = wire_out_init(buf, FRAME_HEADER_LEN - 1);
	start = frame_begin(&w, FRAME_PING, 1, 0, NOW);
	assert_int_equal(frame_end(&w, start, key_a), -ENOSPC);
	/* an offset that is not a frame_begin */
	w = wire_out_init(buf, sizeof(buf));
	start = frame_begin(&w, FRAME_PING, 1, 0, NOW);
	assert_int_equal(frame_end(&w, start + 1, key_a), -EINVAL);
	assert_int_equal(frame_end(&w, sizeof(buf), key_a), -EINVAL);
	/* a payload over the cap is never tagged */
	w = wire_out_init(buf, sizeof(buf));
	assert_int_equal(frame_encode(&w, FRAME_CHANGES, 1, 0, NOW, buf,
				      FRAME_MAX_PAYLOAD + 1, key_a), FRAME_ERR_LENGTH);
	assert_int_equal(wire_out_len(&w), 0);
	assert_int_equal(frame_encode(&w, FRAME_PING, 1, 0, NOW, NULL, 1, key_a),
			 -EINVAL);
}

static void test_frame_largest(void **state)
{
	size_t cap = FRAME_OVERHEAD + FRAME_MAX_PAYLOAD + 1;
	uint8_t *buf = calloc(1, cap);
	struct wire_out w;
	struct frame_header h;
	size_t start;

	(void)state;
	assert_non_null(buf);
	w = wire_out_init(buf, cap);
	start = frame_begin(&w, FRAME_CHANGES, 1, 0, NOW);
	assert_non_null(wire_put(&w, FRAME_MAX_PAYLOAD));
	assert_int_equal(frame_end(&w, start, key_a), 0);
	assert_int_equal(wire_out_len(&w), FRAME_MAX_LEN);
	assert_int_equal(frame_header_decode(buf, FRAME_MAX_PAYLOAD, &h), 0);
	assert_int_equal(h.len, FRAME_MAX_PAYLOAD);
	assert_int_equal(frame_verify_tag(buf, FRAME_HEADER_LEN + FRAME_MAX_PAYLOAD,
					  buf + FRAME_HEADER_LEN + FRAME_MAX_PAYLOAD,
					  key_a), 0);
	/* one byte more is refused by the sender */
	w = wire_out_init(buf, cap);
	start = frame_begin(&w, FRAME_CHANGES, 1, 0, NOW);
	assert_non_null(wire_put(&w, FRAME_MAX_PAYLOAD + 1));
	assert_int_equal(frame_end(&w, start, key_a), FRAME_ERR_LENGTH);
	free(buf);
}

/* Check 1: magic, version, length; nothing else is looked at. */
static void test_header_refusals(void **state)
{
	uint8_t buf[FRAME_HEADER_LEN], bad[FRAME_HEADER_LEN];
	struct wire_out w = wire_out_init(buf, sizeof(buf));
	struct frame_header h;

	(void)state;
	frame_begin(&w, FRAME_HELLO, 5, 0, NOW);
	assert_int_equal(wire_out_len(&w), FRAME_HEADER_LEN);
	assert_int_equal(frame_header_decode(buf, FRAME_MAX_HANDSHAKE, &h), 0);
	for (size_t i = 0; i < 4; i++) {
		memcpy(bad, buf, sizeof(bad));
		bad[i] ^= 0x20; /* "Chor", "cHor", ... */
		memset(&h, 0xff, sizeof(h));
		assert_int_equal(frame_header_decode(bad, FRAME_MAX_HANDSHAKE, &h),
				 FRAME_ERR_MAGIC);
		assert_int_equal(h.len, 0);
	}
	memcpy(bad, buf, sizeof(bad));
	bad[4] = 0;
	assert_int_equal(frame_header_decode(bad, FRAME_MAX_HANDSHAKE, &h),
			 FRAME_ERR_VERSION);
	bad[4] = 2;
	assert_int_equal(frame_header_decode(bad, FRAME_MAX_HANDSHAKE, &h),
			 FRAME_ERR_VERSION);
	/* length: the handshake's cap, then the data frames' */
	memcpy(bad, buf, sizeof(bad));
	memcpy(bad + 8, "\x00\x00\x04\x00", 4); /* 1024 */
	assert_int_equal(frame_header_decode(bad, FRAME_MAX_HANDSHAKE, &h), 0);
	assert_int_equal(h.len, 1024);
	memcpy(bad + 8, "\x00\x00\x04\x01", 4); /* 1025 */
	assert_int_equal(frame_header_decode(bad, FRAME_MAX_HANDSHAKE, &h),
			 FRAME_ERR_LENGTH);
	assert_int_equal(frame_header_decode(bad, FRAME_MAX_PAYLOAD, &h), 0);
	memcpy(bad + 8, "\x00\x10\x00\x00", 4); /* 1 048 576 */
	assert_int_equal(frame_header_decode(bad, FRAME_MAX_PAYLOAD, &h), 0);
	memcpy(bad + 8, "\x00\x10\x00\x01", 4);
	assert_int_equal(frame_header_decode(bad, FRAME_MAX_PAYLOAD, &h),
			 FRAME_ERR_LENGTH);
	/* a larger cap than the protocol's is the protocol's */
	assert_int_equal(frame_header_decode(bad, UINT32_MAX, &h), FRAME_ERR_LENGTH);
	memcpy(bad + 8, "\xff\xff\xff\xff", 4);
	assert_int_equal(frame_header_decode(bad, UINT32_MAX, &h), FRAME_ERR_LENGTH);
	/* type and key id are the caller's to check */
	memcpy(bad, buf, sizeof(bad));
	bad[5] = 0xee;
	bad[6] = bad[7] = 0;
	assert_int_equal(frame_header_decode(bad, FRAME_MAX_HANDSHAKE, &h), 0);
	assert_int_equal(h.type, 0xee);
	assert_int_equal(h.key_id, 0);
}

/* Check 2: any bit of header, payload or tag, or another key, fails. */
static void test_tag_refusals(void **state)
{
	uint8_t buf[FRAME_OVERHEAD + 8];
	struct wire_out w = wire_out_init(buf, sizeof(buf));
	size_t body = FRAME_HEADER_LEN + 8;

	(void)state;
	assert_int_equal(frame_encode(&w, FRAME_PING, 3, 9, NOW,
				      (const uint8_t *)"12345678", 8, key_a), 0);
	assert_int_equal(frame_verify_tag(buf, body, buf + body, key_a), 0);
	assert_int_equal(frame_verify_tag(buf, body, buf + body, key_b), FRAME_ERR_TAG);
	for (size_t i = 0; i < sizeof(buf); i++)
		for (unsigned bit = 0; bit < 8; bit++) {
			buf[i] ^= (uint8_t)(1u << bit);
			assert_int_equal(frame_verify_tag(buf, body, buf + body, key_a),
					 FRAME_ERR_TAG);
			buf[i] ^= (uint8_t)(1u << bit);
		}
	/* a frame cut short or with a byte more than the tag covers */
	assert_int_equal(frame_verify_tag(buf, body - 1, buf + body, key_a),
			 FRAME_ERR_TAG);
	assert_int_equal(frame_verify_tag(buf, body + 1, buf + body, key_a),
			 FRAME_ERR_TAG);
	assert_int_equal(frame_verify_tag(buf, body, buf + body, key_a), 0);
}

static struct frame_header at(uint64_t seq, uint64_t ts)
{
	return (struct frame_header){ .type = FRAME_PING, .seq = seq, .ts_ms = ts };
}

/* Checks 3 and 4. */
static void test_rx_order(void **state)
{
	struct frame_rx rx = { 0 };
	struct frame_header h;

	(void)state;
	/* the first frame of a direction has sequence 0 */
	h = at(1, NOW);
	assert_int_equal(frame_rx_accept(&rx, &h, NOW), FRAME_ERR_SEQ);
	assert_false(rx.any);
	h = at(UINT64_MAX, NOW);
	assert_int_equal(frame_rx_accept(&rx, &h, NOW), FRAME_ERR_SEQ);
	h = at(0, NOW);
	assert_int_equal(frame_rx_accept(&rx, &h, NOW), 0);
	assert_true(rx.any);
	/* then each must be exactly the last + 1 */
	assert_int_equal(frame_rx_accept(&rx, &h, NOW), FRAME_ERR_SEQ);
	h = at(1, NOW);
	assert_int_equal(frame_rx_accept(&rx, &h, NOW), 0);
	assert_int_equal(frame_rx_accept(&rx, &h, NOW), FRAME_ERR_SEQ); /* equal */
	h = at(0, NOW);
	assert_int_equal(frame_rx_accept(&rx, &h, NOW), FRAME_ERR_SEQ); /* lower */
	assert_true(rx.last_seq == 1);
	/* "exactly one more" (protocol.md, check 3): a gap is refused */
	h = at(3, NOW);
	assert_int_equal(frame_rx_accept(&rx, &h, NOW), FRAME_ERR_SEQ);
	for (uint64_t s = 2; s <= 5; s++) {
		h = at(s, NOW);
		assert_int_equal(frame_rx_accept(&rx, &h, NOW), 0);
	}
	h = at(4, NOW);
	assert_int_equal(frame_rx_accept(&rx, &h, NOW), FRAME_ERR_SEQ);

	/* the timestamp: 30 s either way, not 30.001 */
	h = at(6, NOW + 31000);
	assert_int_equal(frame_rx_accept(&rx, &h, NOW), FRAME_ERR_TIME);
	h = at(6, NOW - 31000);
	assert_int_equal(frame_rx_accept(&rx, &h, NOW), FRAME_ERR_TIME);
	h = at(6, NOW + FRAME_FUDGE_MS + 1);
	assert_int_equal(frame_rx_accept(&rx, &h, NOW), FRAME_ERR_TIME);
	h = at(6, NOW - FRAME_FUDGE_MS - 1);
	assert_int_equal(frame_rx_accept(&rx, &h, NOW), FRAME_ERR_TIME);
	h = at(6, 0);
	assert_int_equal(frame_rx_accept(&rx, &h, NOW), FRAME_ERR_TIME);
	h = at(6, UINT64_MAX);
	assert_int_equal(frame_rx_accept(&rx, &h, NOW), FRAME_ERR_TIME);
	assert_true(rx.last_seq == 5); /* a refused frame leaves no trace */
	h = at(6, NOW + FRAME_FUDGE_MS);
	assert_int_equal(frame_rx_accept(&rx, &h, NOW), 0);
	h = at(7, NOW - FRAME_FUDGE_MS);
	assert_int_equal(frame_rx_accept(&rx, &h, NOW), 0);
	/* the sequence is checked first */
	h = at(7, 0);
	assert_int_equal(frame_rx_accept(&rx, &h, NOW), FRAME_ERR_SEQ);
	/* the last sequence number ends the direction (no wrap to 0) */
	rx.last_seq = UINT64_MAX - 1;
	h = at(UINT64_MAX, NOW);
	assert_int_equal(frame_rx_accept(&rx, &h, NOW), 0);
	assert_int_equal(frame_rx_accept(&rx, &h, NOW), FRAME_ERR_SEQ);
	h = at(0, NOW);
	assert_int_equal(frame_rx_accept(&rx, &h, NOW), FRAME_ERR_SEQ);
}

/* ---- payload round trips ---------------------------------------------------- */

/* Build a frame of type with the payload that fill() writes, then take
 * it through every receive check; returns a wire over its payload. */
#define ROUND_TRIP(buf, type, key, fill_expr)                                  \
	({                                                                     \
		struct wire_out w_ = wire_out_init((buf), sizeof(buf));        \
		struct wire_out *w = &w_;                                      \
		struct frame_rx rx_ = { 0 };                                   \
		struct wire p_;                                                \
		size_t s_ = frame_begin(w, (type), 77, 0, NOW);                \
		assert_int_equal((fill_expr), 0);                              \
		assert_int_equal(frame_end(w, s_, (key)), 0);                  \
		assert_int_equal(receive((buf), wire_out_len(w), FRAME_MAX_PAYLOAD, \
					 77, (key), &rx_, (type), &p_), 0);    \
		p_;                                                            \
	})

static void test_round_trips(void **state)
{
	uint8_t buf[FRAME_OVERHEAD + 512], nonce[32], digest[32], got[32];
	struct change in[6], out;
	struct frame_hello hello;
	struct frame_welcome welcome;
	struct frame_changes changes;
	struct frame_ack ack;
	struct wire p;
	uint64_t token;

	(void)state;
	for (int i = 0; i < 32; i++) {
		nonce[i] = (uint8_t)(i * 7 + 1);
		digest[i] = (uint8_t)(255 - i);
	}

	p = ROUND_TRIP(buf, FRAME_HELLO, key_a,
		       frame_hello_encode(w, nonce, "dns", "dns-1", "Gw_2"));
	assert_int_equal(wire_available(&p), 32 + 4 + 6 + 5);
	assert_int_equal(frame_hello_decode(&p, &hello), 0);
	assert_memory_equal(hello.nonce, nonce, 32);
	assert_string_equal(hello.role, "dns");
	assert_string_equal(hello.name, "dns-1");
	assert_string_equal(hello.server, "Gw_2");

	p = ROUND_TRIP(buf, FRAME_WELCOME, key_a,
		       frame_welcome_encode(w, nonce, "gateway", "Gw_2"));
	assert_int_equal(frame_welcome_decode(&p, &welcome), 0);
	assert_memory_equal(welcome.nonce, nonce, 32);
	assert_string_equal(welcome.role, "gateway");
	assert_string_equal(welcome.name, "Gw_2");

	p = ROUND_TRIP(buf, FRAME_PROOF, key_b, frame_proof_encode(w, digest));
	assert_int_equal(frame_proof_decode(&p, got), 0);
	assert_memory_equal(got, digest, 32);
	assert_int_equal(frame_proof_check(got, digest), 0);
	got[31] ^= 1;
	assert_int_equal(frame_proof_check(got, digest), FRAME_ERR_PROOF);

	in[0] = make_change(CHANGE_BIND, AF_INET, 0);
	in[1] = make_change(CHANGE_OPEN, AF_INET, 1);
	in[2] = make_change(CHANGE_OPEN_SCOPED, AF_INET, 2);
	in[3] = make_change(CHANGE_BIND, AF_INET6, 3);
	in[4] = make_change(CHANGE_OPEN, AF_INET6, 2);
	in[5] = make_change(CHANGE_OPEN_SCOPED, AF_INET6, 1);
	p = ROUND_TRIP(buf, FRAME_CHANGES, key_b,
		       frame_changes_encode(w, 0xdeadbeef, digest, in, 6));
	assert_int_equal(wire_available(&p), FRAME_CHANGES_HEAD + 6 * CHANGE_WIRE_LEN);
	assert_int_equal(frame_changes_decode(&p, 4, &changes), 0);
	assert_int_equal(wire_available(&p), 0);
	assert_int_equal(wire_error(&p), 0);
	assert_int_equal(changes.commit_id, 0xdeadbeef);
	assert_memory_equal(changes.digest, digest, 32);
	assert_int_equal(changes.count, 6);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(frame_changes_next(&changes, &out), 1);
		assert_memory_equal(&out, &in[i], sizeof(out));
	}
	assert_int_equal(frame_changes_next(&changes, &out), 0);
	assert_int_equal(frame_changes_next(&changes, &out), 0);

	p = ROUND_TRIP(buf, FRAME_ACK, key_b,
		       frame_ack_encode(w, &(struct frame_ack){ 0xdeadbeef, -ESTALE, 0 }));
	assert_int_equal(wire_available(&p), FRAME_ACK_LEN);
	assert_memory_equal(p.pos, "\xde\xad\xbe\xef\xff\xff\xff\x8c\x00\x00", 10);
	assert_int_equal(frame_ack_decode(&p, &ack), 0);
	assert_int_equal(ack.commit_id, 0xdeadbeef);
	assert_int_equal(ack.result, -116);
	assert_int_equal(ack.applied, 0);

	p = ROUND_TRIP(buf, FRAME_ACK, key_b,
		       frame_ack_encode(w, &(struct frame_ack){ 1, 0, 24000 }));
	assert_int_equal(frame_ack_decode(&p, &ack), 0);
	assert_int_equal(ack.result, 0);
	assert_int_equal(ack.applied, 24000);

	p = ROUND_TRIP(buf, FRAME_PING, key_b, frame_ping_encode(w, 0x0102030405060708ull));
	assert_int_equal(frame_ping_decode(&p, &token), 0);
	assert_true(token == 0x0102030405060708ull);
	p = ROUND_TRIP(buf, FRAME_PONG, key_b, frame_ping_encode(w, UINT64_MAX));
	assert_int_equal(frame_ping_decode(&p, &token), 0);
	assert_true(token == UINT64_MAX);
}

/* The largest CHANGES: 24 000 changes fit in a frame. */
static void test_changes_largest(void **state)
{
	size_t n = FRAME_MAX_CHANGES;
	struct change *in = calloc(n + 1, sizeof(*in)), out;
	uint8_t digest[32] = { 1 }, *buf = malloc(FRAME_MAX_LEN);
	struct frame_changes it;
	struct wire_out w;
	struct wire p;
	size_t start;

	(void)state;
	assert_non_null(in);
	assert_non_null(buf);
	for (size_t i = 0; i <= n; i++) {
		in[i] = make_change(CHANGE_BIND, AF_INET6, 0);
		in[i].ms = (uint32_t)(i + 1);
	}
	w = wire_out_init(buf, FRAME_MAX_LEN);
	start = frame_begin(&w, FRAME_CHANGES, 1, 0, NOW);
	assert_int_equal(frame_changes_encode(&w, 9, digest, in, n + 1), -EINVAL);
	assert_int_equal(frame_changes_encode(&w, 9, digest, in, 0), -EINVAL);
	assert_int_equal(wire_out_len(&w), FRAME_HEADER_LEN);
	assert_int_equal(frame_changes_encode(&w, 9, digest, in, n), 0);
	assert_int_equal(frame_end(&w, start, key_a), 0);
	assert_true(wire_out_len(&w) <= FRAME_MAX_LEN);
	p = wire_init(buf + FRAME_HEADER_LEN, wire_out_len(&w) - FRAME_OVERHEAD);
	assert_int_equal(frame_changes_decode(&p, 1, &it), 0);
	assert_int_equal(it.count, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(frame_changes_next(&it, &out), 1);
		assert_int_equal(out.ms, i + 1);
	}
	assert_int_equal(frame_changes_next(&it, &out), 0);
	free(buf);
	free(in);
}

static void test_names_of_things(void **state)
{
	(void)state;
	assert_string_equal(frame_type_name(FRAME_HELLO), "HELLO");
	assert_string_equal(frame_type_name(FRAME_PONG), "PONG");
	assert_string_equal(frame_type_name(4), "?");
	assert_string_equal(frame_strerror(FRAME_ERR_TAG), "bad tag");
	assert_string_equal(frame_strerror(FRAME_ERR_SEQ), "sequence not the next");
	assert_string_equal(frame_strerror(-ENOMEM), "Cannot allocate memory");
	/* each check has a code of its own */
	{
		static const int codes[] = {
			FRAME_ERR_MAGIC, FRAME_ERR_VERSION, FRAME_ERR_KEY_ID,
			FRAME_ERR_LENGTH, FRAME_ERR_TAG, FRAME_ERR_SEQ,
			FRAME_ERR_TIME, FRAME_ERR_TYPE, FRAME_ERR_SIZE,
			FRAME_ERR_FIELD, FRAME_ERR_PROOF,
		};
		size_t n = sizeof(codes) / sizeof(codes[0]);

		for (size_t i = 0; i < n; i++)
			for (size_t j = i + 1; j < n; j++)
				assert_int_not_equal(codes[i], codes[j]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_layout),
		cmocka_unit_test(test_frame_end_errors),
		cmocka_unit_test(test_frame_largest),
		cmocka_unit_test(test_header_refusals),
		cmocka_unit_test(test_tag_refusals),
		cmocka_unit_test(test_rx_order),
		cmocka_unit_test(test_round_trips),
		cmocka_unit_test(test_changes_largest),
		cmocka_unit_test(test_names_of_things),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
