// SPDX-License-Identifier: MIT
/* Unit tests for the bounded cursor (src/wire.h) and the change encoding
 * (src/change.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>
#include "cmocka_analyzer.h"

#include "change.h"
#include "wire.h"

static void test_wire_reads_and_sticks(void **state)
{
	static const uint8_t buf[] = { 1, 0x02, 0x03, 0xa0, 0xb0, 0xc0, 0xd0, 9 };
	struct wire r = wire_init(buf, sizeof(buf));
	uint8_t out[4] = { 0xff, 0xff, 0xff, 0xff };

	(void)state;
	assert_int_equal(wire_u8(&r), 1);
	assert_int_equal(wire_u16(&r), 0x0203);
	assert_int_equal(wire_u32(&r), 0xa0b0c0d0u);
	assert_int_equal(wire_available(&r), 1);
	assert_int_equal(wire_error(&r), 0);
	/* past the end: fails, zero-fills, and stays failed */
	assert_int_equal(wire_u16(&r), 0);
	assert_int_equal(wire_error(&r), -EBADMSG);
	assert_int_equal(wire_available(&r), 0);
	assert_int_equal(wire_u8(&r), 0); /* the 9 is there, but the error sticks */
	wire_read(&r, out, sizeof(out));
	assert_memory_equal(out, "\0\0\0\0", 4);
	assert_null(wire_take(&r, 0));
	wire_fail(&r, -EINVAL);
	assert_int_equal(wire_error(&r), -EBADMSG); /* the first error stays */
}

static void test_wire_u64_and_skip(void **state)
{
	static const uint8_t buf[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 };
	struct wire r = wire_init(buf, sizeof(buf));

	(void)state;
	wire_skip(&r, 2);
	assert_int_equal(wire_offset(&r), 2);
	assert_true(wire_u64(&r) == 0x0203040506070809ull);
	assert_int_equal(wire_error(&r), 0);
	wire_skip(&r, 1);
	assert_int_equal(wire_error(&r), -EBADMSG);
	/* an empty buffer */
	r = wire_init(NULL, 0);
	assert_int_equal(wire_available(&r), 0);
	assert_int_equal(wire_u8(&r), 0);
	assert_int_equal(wire_error(&r), -EBADMSG);
}

static void test_wire_out(void **state)
{
	uint8_t buf[7];
	struct wire_out w = wire_out_init(buf, sizeof(buf));

	(void)state;
	wire_put_u8(&w, 0x11);
	wire_put_u16(&w, 0x2233);
	wire_put_u32(&w, 0x44556677);
	assert_int_equal(wire_out_error(&w), 0);
	assert_int_equal(wire_out_len(&w), 7);
	assert_memory_equal(buf, "\x11\x22\x33\x44\x55\x66\x77", 7);
	wire_put_u8(&w, 0x88); /* no room */
	assert_int_equal(wire_out_error(&w), -ENOSPC);
	assert_int_equal(wire_out_len(&w), 7);
	assert_memory_equal(buf, "\x11\x22\x33\x44\x55\x66\x77", 7);
}

static struct change make(uint8_t kind, int family, uint8_t src_len)
{
	struct change c = { .kind = kind, .family = (uint8_t)family,
			    .src_len = src_len, .service = 3, .ms = 5000 };

	if (family == AF_INET) {
		memcpy(c.addr, "\xcb\x00\x71\x07", 4);
		if (kind == CHANGE_BIND || kind == CHANGE_LEARNED)
			memcpy(c.src, "\xc6\x12\x00\x01", 4);
		else if (kind == CHANGE_OPEN_SCOPED || kind == CHANGE_QUARANTINE)
			memcpy(c.src, "\xc6\x12\x01\x00", 3);
		if (kind == CHANGE_QUARANTINE)
			memset(c.addr, 0, sizeof(c.addr));
	} else {
		memcpy(c.addr, "\x20\x01\x0d\xb8\x00\x01\0\0\0\0\0\0\0\0\0\x42", 16);
		if (kind == CHANGE_BIND)
			memcpy(c.src, "\x20\x01\x0d\xb8\x00\x18\0\0\0\0\0\0\0\0\0\x01", 16);
		else if (kind == CHANGE_OPEN_SCOPED)
			memcpy(c.src, "\x20\x01\x0d\xb8\x00\x18\x01", 7);
	}
	return c;
}

static void test_change_round_trip(void **state)
{
	struct change in[8], out;
	uint8_t buf[8 * CHANGE_WIRE_LEN];
	struct wire_out w = wire_out_init(buf, sizeof(buf));
	struct wire r;

	(void)state;
	in[0] = make(CHANGE_BIND, AF_INET, 32);
	in[1] = make(CHANGE_OPEN, AF_INET, 0);
	in[2] = make(CHANGE_OPEN_SCOPED, AF_INET, 24);
	in[3] = make(CHANGE_BIND, AF_INET6, 128);
	in[4] = make(CHANGE_OPEN, AF_INET6, 0);
	in[5] = make(CHANGE_OPEN_SCOPED, AF_INET6, 56);
	in[6] = make(CHANGE_LEARNED, AF_INET, 32);
	in[7] = make(CHANGE_QUARANTINE, AF_INET, 24);
	for (int i = 0; i < 8; i++)
		change_encode(&w, &in[i]);
	assert_int_equal(wire_out_error(&w), 0);
	assert_int_equal(wire_out_len(&w), sizeof(buf));
	/* the layout of the first one, byte by byte */
	assert_memory_equal(buf, "\x01\x04\x20\x00\x00\x03\x00\x00\x13\x88"
			    "\xcb\x00\x71\x07", 14);
	assert_memory_equal(buf + 26, "\xc6\x12\x00\x01", 4);
	r = wire_init(buf, sizeof(buf));
	for (int i = 0; i < 8; i++) {
		assert_int_equal(change_decode(&r, 4, &out), 0);
		assert_memory_equal(&out, &in[i], sizeof(out));
	}
	assert_int_equal(wire_available(&r), 0);
	assert_int_equal(change_decode(&r, 4, &out), -EBADMSG);
}

/* One field of an encoded change set to a bad value must be refused. */
static void test_change_decode_refuses(void **state)
{
	static const struct {
		uint8_t kind;
		int family;
		uint8_t src_len;
		size_t off;     /* byte to change */
		uint8_t value;
		const char *why;
	} bad[] = {
		{ CHANGE_BIND, AF_INET, 32, 0, 0, "kind 0" },
		{ CHANGE_BIND, AF_INET, 32, 0, 5, "kind 5" },
		{ CHANGE_LEARNED, AF_INET, 32, 2, 24, "learned with a prefix" },
		{ CHANGE_QUARANTINE, AF_INET, 24, 2, 0, "quarantine /0" },
		{ CHANGE_QUARANTINE, AF_INET, 24, 2, 33, "quarantine /33" },
		{ CHANGE_QUARANTINE, AF_INET, 24, 29, 1, "quarantine host bits past the prefix" },
		{ CHANGE_QUARANTINE, AF_INET, 24, 10, 1, "quarantine with a pool address" },
		{ CHANGE_BIND, AF_INET, 32, 1, 5, "family 5" },
		{ CHANGE_BIND, AF_INET, 32, 1, 0, "family 0" },
		{ CHANGE_BIND, AF_INET, 32, 2, 24, "bind with a prefix" },
		{ CHANGE_BIND, AF_INET6, 128, 2, 129, "src_len 129" },
		{ CHANGE_OPEN, AF_INET, 0, 2, 1, "open with a prefix" },
		{ CHANGE_OPEN, AF_INET, 0, 26, 1, "open with a source" },
		{ CHANGE_OPEN_SCOPED, AF_INET, 24, 2, 0, "scoped /0" },
		{ CHANGE_OPEN_SCOPED, AF_INET, 24, 2, 33, "scoped /33" },
		{ CHANGE_OPEN_SCOPED, AF_INET, 24, 29, 1, "host bits past the prefix" },
		{ CHANGE_BIND, AF_INET, 32, 3, 1, "reserved byte" },
		{ CHANGE_BIND, AF_INET, 32, 4, 1, "service 259 of 4" },
		{ CHANGE_BIND, AF_INET, 32, 5, 4, "service 4 of 4" },
		{ CHANGE_BIND, AF_INET, 32, 6, 0xff, "ms past the cap" },
		{ CHANGE_BIND, AF_INET, 32, 14, 1, "IPv4 address with bytes past 4" },
		{ CHANGE_BIND, AF_INET, 32, 30, 1, "IPv4 source with bytes past 4" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct change c = make(bad[i].kind, bad[i].family, bad[i].src_len), out;
		uint8_t buf[CHANGE_WIRE_LEN];
		struct wire_out w = wire_out_init(buf, sizeof(buf));
		struct wire r;

		change_encode(&w, &c);
		r = wire_init(buf, sizeof(buf));
		assert_int_equal(change_decode(&r, 4, &out), 0);
		buf[bad[i].off] = bad[i].value;
		r = wire_init(buf, sizeof(buf));
		if (change_decode(&r, 4, &out) != -EINVAL) {
			print_error("accepted: %s\n", bad[i].why);
			fail();
		}
		assert_int_equal(wire_error(&r), -EINVAL);
	}
	{
		struct change c = make(CHANGE_OPEN, AF_INET, 0), out;
		uint8_t buf[CHANGE_WIRE_LEN];
		struct wire_out w = wire_out_init(buf, sizeof(buf));
		struct wire r;

		c.ms = 0;
		change_encode(&w, &c);
		r = wire_init(buf, sizeof(buf));
		assert_int_equal(change_decode(&r, 4, &out), -EINVAL);
		/* cut short */
		r = wire_init(buf, CHANGE_WIRE_LEN - 1);
		assert_int_equal(change_decode(&r, 4, &out), -EBADMSG);
	}
}

/* Property: random bytes either fail to decode or decode to a change whose
 * encoding is exactly those bytes (nothing accepted is lost or invented). */
static void test_change_random_bytes(void **state)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	unsigned accepted = 0;

	(void)state;
	for (int i = 0; i < 200000; i++) {
		uint8_t buf[CHANGE_WIRE_LEN], again[CHANGE_WIRE_LEN];
		struct wire_out w = wire_out_init(again, sizeof(again));
		struct change c = make((uint8_t)(1 + i % 3), i & 4 ? AF_INET6 : AF_INET,
				       0), out;
		struct wire r;

		c.src_len = c.kind == CHANGE_BIND ? (c.family == AF_INET ? 32 : 128) :
			    c.kind == CHANGE_OPEN ? 0 : 24;
		change_encode(&w, &c);
		memcpy(buf, again, sizeof(buf));
		/* flip a few bytes to random values */
		for (int k = 0; k < 1 + i % 3; k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[x % CHANGE_WIRE_LEN] = (uint8_t)(x >> 32);
		}
		r = wire_init(buf, sizeof(buf));
		if (change_decode(&r, 8, &out) < 0)
			continue;
		accepted++;
		w = wire_out_init(again, sizeof(again));
		change_encode(&w, &out);
		assert_memory_equal(again, buf, sizeof(buf));
	}
	assert_true(accepted > 1000); /* the property was exercised */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wire_reads_and_sticks),
		cmocka_unit_test(test_wire_u64_and_skip),
		cmocka_unit_test(test_wire_out),
		cmocka_unit_test(test_change_round_trip),
		cmocka_unit_test(test_change_decode_refuses),
		cmocka_unit_test(test_change_random_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
