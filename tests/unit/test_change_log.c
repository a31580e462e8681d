// SPDX-License-Identifier: MIT
/* change_log.c: what a returning gateway is sent (an injected clock). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>
#include "cmocka_analyzer.h"

#include "change_log.h"

struct seen {
	size_t n;
	uint32_t ms[16];
	uint8_t last[16];
};

static void see(void *ctx, const struct change *c)
{
	struct seen *s = ctx;

	if (s->n < 16)
		s->ms[s->n] = c->ms;
	s->last[s->n < 16 ? s->n : 15] = c->addr[3];
	s->n++;
}

static struct change open_at(uint8_t last, uint32_t ms)
{
	struct change c = { .kind = CHANGE_OPEN, .family = AF_INET, .ms = ms,
			    .addr = { 203, 0, 113, last } };

	return c;
}

static void test_live_with_time_left(void **state)
{
	struct change_log *l = change_log_new(8);
	struct change c[3] = { open_at(1, 3000), open_at(2, 1000), open_at(3, 5000) };
	struct seen s = { 0 };

	(void)state;
	assert_non_null(l);
	change_log_add(l, c, 3, 1000);
	assert_int_equal(change_log_live(l, 1500, see, &s), 3);
	assert_int_equal(s.ms[0], 2500);
	assert_int_equal(s.ms[1], 500);
	assert_int_equal(s.ms[2], 4500);
	/* at 2000 the second one ran out */
	memset(&s, 0, sizeof(s));
	assert_int_equal(change_log_live(l, 2000, see, &s), 2);
	assert_int_equal(s.last[0], 1);
	assert_int_equal(s.last[1], 3);
	/* at 6000 nothing is live */
	memset(&s, 0, sizeof(s));
	assert_int_equal(change_log_live(l, 6000, see, &s), 0);
	assert_int_equal(change_log_lost(l), 0);
	change_log_free(l);
	change_log_free(NULL);
	assert_null(change_log_new(0));
}

static void test_full_loses_oldest(void **state)
{
	struct change_log *l = change_log_new(4);
	struct seen s = { 0 };

	(void)state;
	assert_non_null(l);
	for (uint8_t i = 1; i <= 6; i++) {
		struct change c = open_at(i, 10000);

		change_log_add(l, &c, 1, 100 + i);
	}
	/* 6 live ones in 4 slots: the 2 oldest lost, and counted */
	assert_int_equal(change_log_lost(l), 2);
	assert_int_equal(change_log_live(l, 200, see, &s), 4);
	assert_int_equal(s.last[0], 3);
	assert_int_equal(s.last[3], 6);
	/* expired ones overwritten are not losses */
	{
		struct change c = open_at(9, 10);

		change_log_add(l, &c, 1, 20000);
		change_log_add(l, &c, 1, 20001);
	}
	assert_int_equal(change_log_lost(l), 2);
	change_log_free(l);
}

/* A failed commit's changes are not sent again; numbers stay right after
 * the front expires and the ring wraps. */
static void test_drop(void **state)
{
	struct change_log *l = change_log_new(4);
	struct change c[2] = { open_at(1, 5000), open_at(2, 5000) };
	struct change d = open_at(3, 5000);
	struct seen s = { 0 };
	uint64_t first, second;

	(void)state;
	assert_non_null(l);
	first = change_log_add(l, c, 2, 100);
	second = change_log_add(l, &d, 1, 200);
	assert_int_equal(first, 0);
	assert_int_equal(second, 2);
	change_log_drop(l, first, 2);
	assert_int_equal(change_log_live(l, 300, see, &s), 1);
	assert_int_equal(s.last[0], 3);
	/* the dropped ones expire from the front; the numbers go on */
	first = change_log_add(l, c, 2, 400);
	assert_int_equal(first, 3);
	change_log_drop(l, 0, 1);   /* long gone: nothing */
	change_log_drop(l, first + 1, 1);
	memset(&s, 0, sizeof(s));
	assert_int_equal(change_log_live(l, 500, see, &s), 2);
	assert_int_equal(s.last[0], 3);
	assert_int_equal(s.last[1], 1);
	change_log_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_live_with_time_left),
		cmocka_unit_test(test_full_loses_oldest),
		cmocka_unit_test(test_drop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
