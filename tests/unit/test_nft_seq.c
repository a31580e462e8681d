// SPDX-License-Identifier: MIT
/* nft_seq.h: netlink sequence numbers compared across the wrap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include "cmocka_analyzer.h"

#include "nft_seq.h"

#define MAX32 UINT32_MAX
#define HALF  (UINT32_C(1) << 31)

/* A batch of count acknowledged messages from first: in, and the numbers
 * either side of it out, wherever it lies. */
static void check_batch(uint32_t first, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++)
		assert_true(nft_seq_in(first + i, first, count));
	assert_false(nft_seq_in(first - 1, first, count));
	assert_false(nft_seq_in(first + count, first, count));
	assert_false(nft_seq_in(first + HALF, first, count));
}

static void test_in_at_boundaries(void **state)
{
	static const uint32_t firsts[] = {
		0, 1, HALF - 2, HALF - 1, HALF, HALF + 1, MAX32 - 2, MAX32 - 1, MAX32,
	};

	(void)state;
	for (size_t i = 0; i < sizeof(firsts) / sizeof(firsts[0]); i++) {
		check_batch(firsts[i], 1);
		check_batch(firsts[i], 3);
		check_batch(firsts[i], 1000);
	}
}

static void test_in_across_the_wrap(void **state)
{
	(void)state;
	/* a batch of 4 from 2^32-2: 2^32-2, 2^32-1, 0, 1 */
	assert_true(nft_seq_in(MAX32 - 1, MAX32 - 1, 4));
	assert_true(nft_seq_in(MAX32, MAX32 - 1, 4));
	assert_true(nft_seq_in(0, MAX32 - 1, 4));
	assert_true(nft_seq_in(1, MAX32 - 1, 4));
	assert_false(nft_seq_in(2, MAX32 - 1, 4));
	assert_false(nft_seq_in(MAX32 - 2, MAX32 - 1, 4));
	/* a stale ack of the batch before (a magnitude compare takes it) */
	assert_false(nft_seq_in(MAX32 - 3, 0, 10));
	assert_false(nft_seq_in(HALF, HALF + 1, 10));
	/* an empty batch has nothing in it */
	assert_false(nft_seq_in(0, 0, 0));
	assert_false(nft_seq_in(MAX32, MAX32, 0));
}

static void test_after(void **state)
{
	(void)state;
	assert_true(nft_seq_after(1, 0));
	assert_true(nft_seq_after(0, MAX32));
	assert_true(nft_seq_after(5, MAX32 - 5));
	assert_false(nft_seq_after(MAX32, 0));
	assert_false(nft_seq_after(0, 0));
	assert_false(nft_seq_after(MAX32, MAX32));
	assert_true(nft_seq_after(HALF - 1, 0));
	assert_false(nft_seq_after(HALF, 0));   /* half the space: not after */
	assert_true(nft_seq_after(HALF, 1));
	assert_true(nft_seq_after(HALF + 1, 2));
	assert_false(nft_seq_after(HALF + 1, 1));
	assert_true(nft_seq_after(0, HALF + 1));
	assert_false(nft_seq_after(0, HALF));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_at_boundaries),
		cmocka_unit_test(test_in_across_the_wrap),
		cmocka_unit_test(test_after),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
