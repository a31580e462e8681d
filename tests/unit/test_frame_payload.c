// SPDX-License-Identifier: MIT
/* Unit tests of the peer protocol's payload decoders (src/frame.c): every
 * byte out of place is refused, with FRAME_ERR_SIZE or FRAME_ERR_FIELD. */
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

#include "frame.h"
#include "frame_util.h"

/* ---- payload refusals ------------------------------------------------------- */

/* A payload in bytes, decoded by type: the decoder's result. */
static int decode(uint8_t type, const uint8_t *bytes, size_t len)
{
	/* an exact-size heap copy: a read past the end is ASan's */
	uint8_t *copy = malloc(len ? len : 1);
	struct frame_hello hello;
	struct frame_welcome welcome;
	struct frame_changes changes;
	struct frame_ack ack;
	struct frame_windows list;
	static struct frame_assign asg;
	uint8_t digest[32];
	char text[FRAME_REPORT_MAX + 1];
	uint64_t token;
	struct wire r;
	int ret = -1;

	assert_non_null(copy);
	memcpy(copy, bytes, len);
	r = wire_init(copy, len);
	switch (type) {
	case FRAME_HELLO: ret = frame_hello_decode(&r, &hello); break;
	case FRAME_WELCOME: ret = frame_welcome_decode(&r, &welcome); break;
	case FRAME_PROOF: ret = frame_proof_decode(&r, digest); break;
	case FRAME_CHANGES: ret = frame_changes_decode(&r, 4, &changes); break;
	case FRAME_ACK: ret = frame_ack_decode(&r, &ack); break;
	case FRAME_PING: ret = frame_ping_decode(&r, &token); break;
	case FRAME_WINDOWS: ret = frame_windows_decode(&r, 4, &list); break;
	case FRAME_LEARNED: ret = frame_learned_decode(&r, 4, &list); break;
	case FRAME_JOIN: ret = frame_join_decode(&r, digest, &asg); break;
	case FRAME_ASSIGN: ret = frame_assign_decode(&r, &asg); break;
	case FRAME_ASSIGNED: ret = frame_assigned_decode(&r, &token); break;
	case FRAME_LEAVE: ret = frame_leave_decode(&r); break;
	case FRAME_REPORT: ret = frame_report_decode(&r, text); break;
	default: fail();
	}
	/* the cursor agrees with the result */
	assert_int_equal(wire_error(&r), ret);
	free(copy);
	return ret;
}

/* Every valid payload: a byte more is refused, and so is every prefix. */
static void test_sizes_refused(void **state)
{
	uint8_t buf[512];
	struct change c[2] = { make_change(CHANGE_OPEN, AF_INET, 3),
			       make_change(CHANGE_BIND, AF_INET6, 0) };
	uint8_t digest[32] = { 0 }, nonce[32] = { 0 };

	(void)state;
	for (uint8_t type = 0; type < 20; type++) {
		struct wire_out w = wire_out_init(buf, sizeof(buf) - 1);
		int ret;

		switch (type) {
		case FRAME_HELLO:
			ret = frame_hello_encode(&w, nonce, "controller", "a", "b");
			break;
		case FRAME_WELCOME:
			ret = frame_welcome_encode(&w, nonce, "gateway", "gw");
			break;
		case FRAME_PROOF: ret = frame_proof_encode(&w, digest); break;
		case FRAME_CHANGES:
			ret = frame_changes_encode(&w, 1, digest, c, 2);
			break;
		case FRAME_ACK:
			ret = frame_ack_encode(&w, &(struct frame_ack){ 1, -1, 0 });
			break;
		case FRAME_PING: ret = frame_ping_encode(&w, 42); break;
		default: continue;
		}
		assert_int_equal(ret, 0);
		assert_int_equal(decode(type, buf, wire_out_len(&w)), 0);
		buf[wire_out_len(&w)] = 0;
		assert_int_equal(decode(type, buf, wire_out_len(&w) + 1), FRAME_ERR_SIZE);
		for (size_t len = 0; len < wire_out_len(&w); len++)
			assert_int_equal(decode(type, buf, len), FRAME_ERR_SIZE);
	}
}

/* HELLO and WELCOME: names and roles, byte by byte. */
static void test_names_refused(void **state)
{
	static const char *const bad_names[] = {
		"", "a.b", "a b", "a/b", "a:b", "a\xc3\xa9", "\x7f", "a\tb",
		"0123456789012345678901234567890123456789012345678901234567890123",
	};
	static const char *const bad_roles[] = {
		"", "DNS", "Dns", "dnsx", "dn", "gw", "gateway ", "controllers", "x",
	};
	uint8_t buf[256];
	size_t len;

	(void)state;
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		const char *name = bad_names[i];
		struct wire_out w = wire_out_init(buf, sizeof(buf));
		uint8_t nonce[32] = { 0 };

		assert_false(frame_name_valid(name));
		assert_int_equal(frame_hello_encode(&w, nonce, "dns", name, "gw"), -EINVAL);
		assert_int_equal(frame_hello_encode(&w, nonce, "dns", "gw", name), -EINVAL);
		assert_int_equal(frame_welcome_encode(&w, nonce, "dns", name), -EINVAL);
		assert_int_equal(wire_out_len(&w), 0);
		/* and the same bytes on the wire: HELLO's client name, then
		 * its server name; WELCOME's name */
		len = strlen(name);
		memset(buf, 0, 32);
		memcpy(buf + 32, "\x03" "dns", 4);
		buf[36] = (uint8_t)len;
		memcpy(buf + 37, name, len);
		memcpy(buf + 37 + len, "\x02" "gw", 3);
		assert_int_equal(decode(FRAME_HELLO, buf, 40 + len), FRAME_ERR_FIELD);
		assert_int_equal(decode(FRAME_WELCOME, buf, 37 + len), FRAME_ERR_FIELD);
		memcpy(buf + 36, "\x02" "gw", 3);
		buf[39] = (uint8_t)len;
		memcpy(buf + 40, name, len);
		assert_int_equal(decode(FRAME_HELLO, buf, 40 + len), FRAME_ERR_FIELD);
	}
	/* 63 bytes is the longest name */
	assert_true(frame_name_valid("012345678901234567890123456789012345678901234567890123456789012"));
	assert_true(frame_name_valid("AZaz09_-"));
	assert_false(frame_name_valid(NULL));
	for (size_t i = 0; i < sizeof(bad_roles) / sizeof(bad_roles[0]); i++) {
		const char *role = bad_roles[i];
		struct wire_out w = wire_out_init(buf, sizeof(buf));
		uint8_t nonce[32] = { 0 };

		assert_false(frame_role_valid(role));
		assert_int_equal(frame_hello_encode(&w, nonce, role, "a", "b"), -EINVAL);
		assert_int_equal(frame_welcome_encode(&w, nonce, role, "a"), -EINVAL);
		len = strlen(role);
		memset(buf, 0, 32);
		buf[32] = (uint8_t)len;
		memcpy(buf + 33, role, len);
		memcpy(buf + 33 + len, "\x01" "a" "\x01" "b", 4);
		assert_int_equal(decode(FRAME_HELLO, buf, 37 + len), FRAME_ERR_FIELD);
		assert_int_equal(decode(FRAME_WELCOME, buf, 35 + len), FRAME_ERR_FIELD);
	}
	assert_true(frame_role_valid("dns"));
	assert_true(frame_role_valid("gateway"));
	assert_true(frame_role_valid("controller"));
	assert_false(frame_role_valid(NULL));
	/* a length byte past the end of the payload */
	memset(buf, 0, 32);
	memcpy(buf + 32, "\x03" "dns" "\x05" "dns-1" "\x09" "gw", 13);
	assert_int_equal(decode(FRAME_HELLO, buf, 45), FRAME_ERR_SIZE);
}

/* CHANGES: the count, the size, and each change. */
static void test_changes_refused(void **state)
{
	struct change c[3] = { make_change(CHANGE_OPEN, AF_INET, 3),
			       make_change(CHANGE_BIND, AF_INET6, 0),
			       make_change(CHANGE_OPEN_SCOPED, AF_INET, 1) };
	uint8_t digest[32] = { 0 }, buf[256];
	struct wire_out w = wire_out_init(buf, sizeof(buf));
	size_t len, last = FRAME_CHANGES_HEAD + 2 * CHANGE_WIRE_LEN;

	(void)state;
	assert_int_equal(frame_changes_encode(&w, 1, digest, c, 3), 0);
	len = wire_out_len(&w);
	assert_int_equal(decode(FRAME_CHANGES, buf, len), 0);
	/* counts of 0 and 24 001, and counts that the bytes do not match */
	memcpy(buf + 36, "\x00\x00", 2);
	assert_int_equal(decode(FRAME_CHANGES, buf, len), FRAME_ERR_FIELD);
	assert_int_equal(decode(FRAME_CHANGES, buf, FRAME_CHANGES_HEAD), FRAME_ERR_FIELD);
	memcpy(buf + 36, "\x5d\xc1", 2); /* 24001 */
	assert_int_equal(decode(FRAME_CHANGES, buf, len), FRAME_ERR_FIELD);
	memcpy(buf + 36, "\xff\xff", 2);
	assert_int_equal(decode(FRAME_CHANGES, buf, len), FRAME_ERR_FIELD);
	memcpy(buf + 36, "\x00\x02", 2);
	assert_int_equal(decode(FRAME_CHANGES, buf, len), FRAME_ERR_SIZE);
	memcpy(buf + 36, "\x00\x04", 2);
	assert_int_equal(decode(FRAME_CHANGES, buf, len), FRAME_ERR_SIZE);
	memcpy(buf + 36, "\x00\x03", 2);
	assert_int_equal(decode(FRAME_CHANGES, buf, len - 1), FRAME_ERR_SIZE);
	assert_int_equal(decode(FRAME_CHANGES, buf, len), 0);
	/* the last change out of range: the whole frame is refused */
	buf[last + 5] = 4; /* service 4 of 4 */
	assert_int_equal(decode(FRAME_CHANGES, buf, len), FRAME_ERR_FIELD);
	buf[last + 5] = 1;
	memset(buf + last + 6, 0, 4); /* ms 0 */
	assert_int_equal(decode(FRAME_CHANGES, buf, len), FRAME_ERR_FIELD);
	buf[last + 9] = 1;
	buf[last + 1] = 5; /* family 5 */
	assert_int_equal(decode(FRAME_CHANGES, buf, len), FRAME_ERR_FIELD);
	buf[last + 1] = 4;
	buf[last + 3] = 1; /* reserved */
	assert_int_equal(decode(FRAME_CHANGES, buf, len), FRAME_ERR_FIELD);
	buf[last + 3] = 0;
	assert_int_equal(decode(FRAME_CHANGES, buf, len), 0);
}

/* protocol.md's order: the size, then (the caller's) the digest, then the
 * changes. frame_changes_peek makes the first check alone, without moving
 * the cursor, so that a frame for another configuration, whose services
 * mean nothing here, can be answered ESTALE rather than refused. */
static void test_changes_peek(void **state)
{
	struct change c[2] = { make_change(CHANGE_OPEN, AF_INET, 0),
			       make_change(CHANGE_BIND, AF_INET6, 9) }, got;
	uint8_t digest[32] = { 7 }, buf[256];
	struct wire_out w = wire_out_init(buf, sizeof(buf));
	struct frame_changes head, it;
	struct wire r;
	size_t len;

	(void)state;
	assert_int_equal(frame_changes_encode(&w, 3, digest, c, 2), 0);
	len = wire_out_len(&w);
	r = wire_init(buf, len);
	assert_int_equal(frame_changes_peek(&r, &head), 0);
	assert_int_equal(wire_offset(&r), 0);
	assert_int_equal(wire_error(&r), 0);
	assert_int_equal(head.commit_id, 3);
	assert_memory_equal(head.digest, digest, 32);
	assert_int_equal(head.count, 2);
	/* service 9 of 4: the frame is bad only for a gateway whose digest
	 * matched; with 10 services it is good */
	assert_int_equal(frame_changes_decode(&r, 4, &it), FRAME_ERR_FIELD);
	r = wire_init(buf, len);
	assert_int_equal(frame_changes_decode(&r, 10, &it), 0);
	assert_int_equal(frame_changes_next(&it, &got), 1);
	assert_memory_equal(&got, &c[0], sizeof(got));
	/* the size and the count, as frame_changes_decode checks them */
	r = wire_init(buf, len - 1);
	assert_int_equal(frame_changes_peek(&r, &head), FRAME_ERR_SIZE);
	assert_int_equal(head.count, 0);
	assert_int_equal(wire_error(&r), 0); /* the cursor is the caller's */
	r = wire_init(buf, FRAME_CHANGES_HEAD - 1);
	assert_int_equal(frame_changes_peek(&r, &head), FRAME_ERR_SIZE);
	memcpy(buf + 36, "\x00\x00", 2);
	r = wire_init(buf, len);
	assert_int_equal(frame_changes_peek(&r, &head), FRAME_ERR_FIELD);
	memcpy(buf + 36, "\x5d\xc1", 2); /* 24001 */
	assert_int_equal(frame_changes_peek(&r, &head), FRAME_ERR_FIELD);
	memcpy(buf + 36, "\x00\x03", 2);
	assert_int_equal(frame_changes_peek(&r, &head), FRAME_ERR_SIZE);
}

static void test_ack_refused(void **state)
{
	static const struct {
		int32_t result;
		uint16_t applied;
		bool ok;
	} cases[] = {
		{ 0, 0, true }, { -1, 0, true }, { -4095, 0, true },
		{ 0, 24000, true }, { -116, 0, true }, { 0, 1, true },
		{ 1, 0, false }, { INT32_MAX, 0, false }, { -4096, 0, false },
		{ INT32_MIN, 0, false }, { 0, 24001, false }, { 0, 65535, false },
		/* nothing is applied when the result is an error */
		{ -116, 3, false }, { -1, 1, false }, { -4095, 24000, false },
	};
	uint8_t buf[FRAME_ACK_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct frame_ack a = { 5, cases[i].result, cases[i].applied }, got;
		struct wire_out w = wire_out_init(buf, sizeof(buf));
		struct wire r = wire_init(buf, sizeof(buf));
		uint32_t u = (uint32_t)cases[i].result;

		/* the bytes by hand: the encoder refuses what is not allowed */
		memcpy(buf, "\x00\x00\x00\x05", 4);
		buf[4] = (uint8_t)(u >> 24);
		buf[5] = (uint8_t)(u >> 16);
		buf[6] = (uint8_t)(u >> 8);
		buf[7] = (uint8_t)u;
		buf[8] = (uint8_t)(cases[i].applied >> 8);
		buf[9] = (uint8_t)cases[i].applied;
		assert_int_equal(frame_ack_decode(&r, &got), cases[i].ok ? 0 : FRAME_ERR_FIELD);
		if (cases[i].ok) {
			assert_int_equal(got.result, cases[i].result);
			assert_int_equal(got.applied, cases[i].applied);
		}
		assert_int_equal(frame_ack_encode(&w, &a), cases[i].ok ? 0 : -EINVAL);
	}
}

/* The controller's frames: LEARNED carries learned bindings only, at least
 * one and never "more"; REPORT is printable text; JOIN is a digest. */
static void test_controller_frames_refused(void **state)
{
	static const uint8_t digest[32] = "thirty-two bytes of a digest....";
	struct change c = { .kind = CHANGE_LEARNED, .family = AF_INET, .src_len = 32,
			    .service = 1, .ms = 660000, .addr = { 203, 0, 113, 7 },
			    .src = { 198, 18, 0, 9 } };
	uint8_t buf[256];
	struct wire_out w = wire_out_init(buf, sizeof(buf));
	size_t len;
	char big[FRAME_REPORT_MAX + 2];

	(void)state;
	assert_int_equal(frame_learned_encode(&w, digest, &c, 1), 0);
	len = wire_out_len(&w);
	assert_int_equal(decode(FRAME_LEARNED, buf, len), 0);
	/* as WINDOWS it is refused (a window's kinds only), and back */
	assert_int_equal(decode(FRAME_WINDOWS, buf, len), FRAME_ERR_FIELD);
	for (size_t cut = 0; cut < len; cut++)
		assert_int_not_equal(decode(FRAME_LEARNED, buf, cut), 0);
	buf[32] = 1; /* more */
	assert_int_equal(decode(FRAME_LEARNED, buf, len), FRAME_ERR_FIELD);
	buf[32] = 0;
	buf[35] = CHANGE_BIND; /* the change's kind: a DNS node's bind */
	assert_int_equal(decode(FRAME_LEARNED, buf, len), FRAME_ERR_FIELD);
	buf[35] = CHANGE_LEARNED;
	/* count 0 */
	assert_int_equal(decode(FRAME_LEARNED, (const uint8_t[35]){ 0 }, 35), FRAME_ERR_FIELD);
	c.kind = CHANGE_OPEN;
	w = wire_out_init(buf, sizeof(buf));
	assert_int_equal(frame_learned_encode(&w, digest, &c, 1), -EINVAL);
	assert_int_equal(frame_learned_encode(&w, digest, &c, 0), -EINVAL);

	/* JOIN: a digest and a claim (none: epoch 0, n 0) */
	{
		uint8_t join[42] = { 0 };
		struct frame_assign claim = { .epoch = 3, .n = 2, .block_bits = { 2, 16 },
					      .block = { 3, -1 }, .share = { 4, 0 } };

		memcpy(join, digest, 32);
		assert_int_equal(decode(FRAME_JOIN, join, 42), 0);
		assert_int_equal(decode(FRAME_JOIN, join, 41), FRAME_ERR_SIZE);
		assert_int_equal(decode(FRAME_JOIN, join, 32), FRAME_ERR_SIZE);
		join[41] = 1; /* n 1 with epoch 0 */
		assert_int_equal(decode(FRAME_JOIN, join, 42), FRAME_ERR_FIELD);
		w = wire_out_init(buf, sizeof(buf));
		assert_int_equal(frame_join_encode(&w, digest, &claim), 0);
		len = wire_out_len(&w);
		assert_int_equal(len, 32 + FRAME_ASSIGN_LEN(2));
		assert_int_equal(decode(FRAME_JOIN, buf, len), 0);
		assert_int_equal(decode(FRAME_ASSIGN, buf + 32, len - 32), 0);
		/* block 4 of 2 bits; block -2; 17 bits */
		buf[32 + 10 + 4] = 4;
		assert_int_equal(decode(FRAME_ASSIGN, buf + 32, len - 32), FRAME_ERR_FIELD);
		buf[32 + 10 + 4] = 3;
		memset(buf + 32 + 10 + 9 + 1, 0xff, 4);
		buf[32 + 10 + 9 + 4] = 0xfe;
		assert_int_equal(decode(FRAME_ASSIGN, buf + 32, len - 32), FRAME_ERR_FIELD);
		buf[32 + 10 + 9 + 4] = 0xff;
		buf[32 + 10 + 9] = 17;
		assert_int_equal(decode(FRAME_ASSIGN, buf + 32, len - 32), FRAME_ERR_FIELD);
		/* ASSIGN with epoch 0 */
		assert_int_equal(decode(FRAME_ASSIGN, (const uint8_t[10]){ 0 }, 10), FRAME_ERR_FIELD);
		claim.block[0] = 4;
		w = wire_out_init(buf, sizeof(buf));
		assert_int_equal(frame_assign_encode(&w, &claim), -EINVAL);
		assert_int_equal(decode(FRAME_ASSIGNED, (const uint8_t[8]){ 0 }, 8), FRAME_ERR_FIELD);
		assert_int_equal(decode(FRAME_ASSIGNED, (const uint8_t[8]){ [7] = 9 }, 8), 0);
		assert_int_equal(decode(FRAME_LEAVE, buf, 0), 0);
		assert_int_equal(decode(FRAME_LEAVE, buf, 1), FRAME_ERR_SIZE);
	}

	w = wire_out_init(buf, sizeof(buf));
	assert_int_equal(frame_report_encode(&w, "answers 3 servfail 0"), 0);
	len = wire_out_len(&w);
	assert_int_equal(decode(FRAME_REPORT, buf, len), 0);
	assert_int_equal(decode(FRAME_REPORT, buf, len - 1), FRAME_ERR_SIZE);
	buf[5] = '\n';
	assert_int_equal(decode(FRAME_REPORT, buf, len), FRAME_ERR_FIELD);
	buf[5] = 0x80;
	assert_int_equal(decode(FRAME_REPORT, buf, len), FRAME_ERR_FIELD);
	assert_int_equal(decode(FRAME_REPORT, (const uint8_t[2]){ 0, 0 }, 2), FRAME_ERR_FIELD);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	w = wire_out_init(buf, sizeof(buf));
	assert_int_equal(frame_report_encode(&w, big), -EINVAL);
	assert_int_equal(frame_report_encode(&w, ""), -EINVAL);
	assert_int_equal(frame_report_encode(&w, "tab\there"), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes_refused),
		cmocka_unit_test(test_names_refused),
		cmocka_unit_test(test_changes_refused),
		cmocka_unit_test(test_changes_peek),
		cmocka_unit_test(test_ack_refused),
		cmocka_unit_test(test_controller_frames_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
