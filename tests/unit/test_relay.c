// SPDX-License-Identifier: MIT
/* relay.h: the lifetimes every node agrees on, and the coalescing cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>
#include "cmocka_analyzer.h"

#include "relay.h"

static void test_lifetimes(void **state)
{
	(void)state;
	assert_int_equal(relay_coalesce_ms(1), 1000);
	assert_int_equal(relay_coalesce_ms(600), 60000);
	assert_int_equal(relay_coalesce_ms(60), 6000);
	assert_int_equal(relay_coalesce_ms(86400), 60000);
	assert_int_equal(relay_ms(600), 660000);
	assert_int_equal(relay_ms(5), 6000);
	/* a relay outlives the binding it copies, whenever it was made */
	for (uint32_t b = 1; b < 100000; b += 97)
		assert_true(relay_ms(b) > b * 1000);
}

static void test_coalescing(void **state)
{
	struct relay_cache *rc = relay_cache_new();
	uint8_t src[16] = { 198, 18, 0, 1 }, addr[16] = { 203, 0, 113, 7 };
	uint8_t src6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
	uint8_t addr6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1, [15] = 9 };

	(void)state;
	assert_non_null(rc);
	assert_true(relay_cache_due(rc, 0, AF_INET, src, addr, 1000, 5000));
	assert_false(relay_cache_due(rc, 0, AF_INET, src, addr, 1001, 5000));
	assert_false(relay_cache_due(rc, 0, AF_INET, src, addr, 5999, 5000));
	assert_true(relay_cache_due(rc, 0, AF_INET, src, addr, 6000, 5000));
	/* another service, source or address is another binding */
	assert_true(relay_cache_due(rc, 1, AF_INET, src, addr, 6001, 5000));
	src[3] = 2;
	assert_true(relay_cache_due(rc, 0, AF_INET, src, addr, 6002, 5000));
	addr[3] = 8;
	assert_true(relay_cache_due(rc, 0, AF_INET, src, addr, 6003, 5000));
	/* IPv6: every byte of both addresses counts */
	assert_true(relay_cache_due(rc, 0, AF_INET6, src6, addr6, 7000, 5000));
	assert_false(relay_cache_due(rc, 0, AF_INET6, src6, addr6, 7001, 5000));
	src6[8] ^= 1;
	assert_true(relay_cache_due(rc, 0, AF_INET6, src6, addr6, 7002, 5000));
	addr6[15] ^= 1;
	assert_true(relay_cache_due(rc, 0, AF_INET6, src6, addr6, 7003, 5000));
	/* at time 0 too */
	addr[0] = 1;
	assert_true(relay_cache_due(rc, 0, AF_INET, src, addr, 0, 5000));
	assert_false(relay_cache_due(rc, 0, AF_INET, src, addr, 0, 5000));
	relay_cache_free(rc);
	relay_cache_free(NULL);
}

/* Many bindings at once: each is reported once per interval, whatever the
 * collisions (a collision may only add reports, never drop one). */
static void test_many(void **state)
{
	struct relay_cache *rc = relay_cache_new();
	uint8_t src[16] = { 198, 18 }, addr[16] = { 203, 0, 113, 1 };
	size_t due = 0;

	(void)state;
	assert_non_null(rc);
	for (uint32_t i = 0; i < 200000; i++) {
		src[2] = (uint8_t)(i >> 8);
		src[3] = (uint8_t)i;
		addr[3] = (uint8_t)(i >> 16);
		assert_true(relay_cache_due(rc, 0, AF_INET, src, addr, 10, 1000));
	}
	for (uint32_t i = 0; i < 200000; i++) {
		src[2] = (uint8_t)(i >> 8);
		src[3] = (uint8_t)i;
		addr[3] = (uint8_t)(i >> 16);
		due += relay_cache_due(rc, 0, AF_INET, src, addr, 20, 1000);
	}
	/* more bindings than slots: some are reported again, not all */
	assert_true(due > 0 && due < 200000);
	relay_cache_free(rc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lifetimes),
		cmocka_unit_test(test_coalescing),
		cmocka_unit_test(test_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
