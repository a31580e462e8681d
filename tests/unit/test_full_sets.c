// SPDX-License-Identifier: MIT
/* full_sets.h: what a commit may leave out while a set is full, and what
 * it must refuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <errno.h>

#include <cmocka.h>
#include "cmocka_analyzer.h"

#include "full_sets.h"

static struct config_service svcs[3];
static struct config cfg = { .services = svcs, .n_services = 3 };

static struct change mk(uint8_t kind, uint16_t service, int family,
			uint8_t last, uint32_t ms)
{
	struct change c;

	memset(&c, 0, sizeof(c));
	c.kind = kind;
	c.service = service;
	c.family = (uint8_t)family;
	c.ms = ms;
	if (family == AF_INET) {
		c.addr[0] = 203; c.addr[2] = 113; c.addr[3] = last;
	} else {
		c.addr[0] = 0x20; c.addr[1] = 0x01; c.addr[15] = last;
	}
	if (kind == CHANGE_BIND) {
		c.src_len = family == AF_INET ? 32 : 128;
		c.src[0] = 198; c.src[1] = 18; c.src[3] = last;
	}
	return c;
}

static int setup(void **state)
{
	(void)state;
	memset(svcs, 0, sizeof(svcs));
	svcs[1].window_claims = 3;
	return 0;
}

static void test_nothing_full(void **state)
{
	struct full_sets f = { 0 };
	struct change in[2] = { mk(CHANGE_BIND, 0, AF_INET, 1, 7000),
				mk(CHANGE_OPEN, 0, AF_INET, 1, 7000) }, out[2];

	(void)state;
	assert_false(full_sets_any(&f, 0));
	assert_int_equal(full_sets_filter(&f, &cfg, in, 2, out, 5), 2);
	assert_memory_equal(in, out, sizeof(in));
}

static void test_covered_entry_left_out(void **state)
{
	struct full_sets f = { 0 };
	struct change in[4] = { mk(CHANGE_BIND, 0, AF_INET, 1, 7000),
				mk(CHANGE_OPEN, 0, AF_INET, 1, 7000),
				mk(CHANGE_BIND, 0, AF_INET6, 2, 7000),
				mk(CHANGE_OPEN, 0, AF_INET6, 2, 7000) }, out[4];

	(void)state;
	full_sets_mark(&f, 0, AF_INET, false, 1000);
	assert_true(full_sets_any(&f, 1000));
	assert_true(full_sets_any(&f, 1999));
	/* the IPv4 entry goes, its window stays; IPv6 is another set */
	assert_int_equal(full_sets_filter(&f, &cfg, in, 4, out, 1500), 3);
	assert_memory_equal(&out[0], &in[1], sizeof(out[0]));
	assert_memory_equal(&out[1], &in[2], sizeof(out[0]));
	assert_memory_equal(&out[2], &in[3], sizeof(out[0]));
	assert_int_equal(f.skipped, 1);
	/* after the back-off, the kernel is tried again */
	assert_false(full_sets_any(&f, 2000));
	assert_int_equal(full_sets_filter(&f, &cfg, in, 4, out, 2000), 4);
}

static void test_uncovered_entry_refused(void **state)
{
	struct full_sets f = { 0 };
	struct change out[2];
	/* window_claims: the entry is what lets the asker past the claims */
	struct change claims[2] = { mk(CHANGE_BIND, 1, AF_INET, 1, 7000),
				    mk(CHANGE_OPEN, 1, AF_INET, 1, 7000) };
	/* a scoped window does not let the asker in */
	struct change scoped[2] = { mk(CHANGE_BIND, 0, AF_INET, 1, 7000),
				    mk(CHANGE_OPEN_SCOPED, 0, AF_INET, 1, 7000) };
	/* another address, a shorter window, another service, none at all */
	struct change other[2] = { mk(CHANGE_BIND, 0, AF_INET, 1, 7000),
				   mk(CHANGE_OPEN, 0, AF_INET, 2, 7000) };
	struct change shorter[2] = { mk(CHANGE_BIND, 0, AF_INET, 1, 7000),
				     mk(CHANGE_OPEN, 0, AF_INET, 1, 6999) };
	struct change svc[2] = { mk(CHANGE_BIND, 0, AF_INET, 1, 7000),
				 mk(CHANGE_OPEN, 2, AF_INET, 1, 7000) };
	struct change alone[1] = { mk(CHANGE_BIND, 0, AF_INET, 1, 7000) };
	/* the window before the entry is not the one the rotor makes with it */
	struct change before[2] = { mk(CHANGE_OPEN, 0, AF_INET, 1, 7000),
				    mk(CHANGE_BIND, 0, AF_INET, 1, 7000) };

	(void)state;
	full_sets_mark(&f, 0, AF_INET, false, 0);
	full_sets_mark(&f, 1, AF_INET, false, 0);
	assert_int_equal(full_sets_filter(&f, &cfg, claims, 2, out, 1), -ENFILE);
	assert_int_equal(full_sets_filter(&f, &cfg, scoped, 2, out, 1), -ENFILE);
	assert_int_equal(full_sets_filter(&f, &cfg, other, 2, out, 1), -ENFILE);
	assert_int_equal(full_sets_filter(&f, &cfg, shorter, 2, out, 1), -ENFILE);
	assert_int_equal(full_sets_filter(&f, &cfg, svc, 2, out, 1), -ENFILE);
	assert_int_equal(full_sets_filter(&f, &cfg, alone, 1, out, 1), -ENFILE);
	assert_int_equal(full_sets_filter(&f, &cfg, before, 2, out, 1), -ENFILE);
	assert_int_equal(f.refused, 7);
	assert_int_equal(f.skipped, 0);
}

static void test_scoped_full(void **state)
{
	struct full_sets f = { 0 };
	struct change in[2] = { mk(CHANGE_BIND, 0, AF_INET6, 1, 7000),
				mk(CHANGE_OPEN_SCOPED, 0, AF_INET6, 1, 7000) }, out[2];
	struct change open[2] = { mk(CHANGE_BIND, 0, AF_INET6, 1, 7000),
				  mk(CHANGE_OPEN, 0, AF_INET6, 1, 7000) };

	(void)state;
	full_sets_mark(&f, 0, AF_INET6, true, 0);
	assert_int_equal(full_sets_filter(&f, &cfg, in, 2, out, 10), -ENFILE);
	/* the asked set has room: unscoped answers are written whole */
	assert_int_equal(full_sets_filter(&f, &cfg, open, 2, out, 10), 2);
	/* out-of-range marks change nothing */
	full_sets_mark(&f, CONFIG_MAX_SERVICES, AF_INET, false, 0);
	full_sets_mark(&f, 0, AF_UNIX, false, 0);
	assert_int_equal(full_sets_filter(&f, &cfg, open, 2, out, 10), 2);
}

/*
 * Random batches as the rotor makes them (an asker's entry and its window,
 * scoped or not; quarantines and learned bindings as a gateway gets them)
 * under random full marks: what is written never touches a full asked or
 * scoped set; what is left out is only an entry whose window, written
 * right after it, lets the asker in as long; and a refusal happens only
 * when some change needs a full set and no window covers it.
 */
static void test_random_batches(void **state)
{
	(void)state;
	srandom(20261128);
	for (int round = 0; round < 20000; round++) {
		struct full_sets f = { 0 };
		struct change in[16], out[16];
		size_t n = 0;
		uint64_t now = 5000;
		ssize_t k;

		for (int m = 0; m < 3; m++)
			if (random() % 2)
				full_sets_mark(&f, (size_t)(random() % 3),
					       random() % 2 ? AF_INET : AF_INET6,
					       random() % 2, now - (uint64_t)(random() % 1500));
		while (n < 15) {
			uint16_t s = (uint16_t)(random() % 3);
			int fam = random() % 2 ? AF_INET : AF_INET6;
			uint8_t a = (uint8_t)(random() % 4);
			long r = random() % 6;

			if (r == 0) {
				in[n++] = mk(CHANGE_LEARNED, s, fam, a, 9000);
				continue;
			}
			if (r <= 3)
				in[n++] = mk(CHANGE_BIND, s, fam, a, 7000);
			in[n++] = mk(r == 4 ? CHANGE_OPEN_SCOPED : CHANGE_OPEN, s, fam,
				     random() % 8 ? a : (uint8_t)(a + 1),
				     random() % 8 ? 7000 : 6000);
		}
		k = full_sets_filter(&f, &cfg, in, n, out, now);

		bool needs_full = false;
		for (size_t i = 0; i < n; i++) {
			size_t p = (size_t)in[i].service * 2 + (in[i].family == AF_INET6);
			bool full = in[i].kind == CHANGE_BIND ? now < f.asked_until[p] :
				    in[i].kind == CHANGE_OPEN_SCOPED ? now < f.scoped_until[p] :
				    false;
			bool cov = in[i].kind == CHANGE_BIND && i + 1 < n &&
				   in[i + 1].kind == CHANGE_OPEN &&
				   in[i + 1].service == in[i].service &&
				   in[i + 1].family == in[i].family &&
				   !memcmp(in[i + 1].addr, in[i].addr, 16) &&
				   in[i + 1].ms >= in[i].ms &&
				   svcs[in[i].service].window_claims == 0;

			if (full && !cov)
				needs_full = true;
		}
		if (needs_full) {
			assert_int_equal(k, -ENFILE);
			continue;
		}
		assert_true(k >= 0);
		/* out is in with some covered, full entries left out, in order */
		size_t j = 0;
		for (size_t i = 0; i < n; i++) {
			size_t p = (size_t)in[i].service * 2 + (in[i].family == AF_INET6);

			if (j < (size_t)k && !memcmp(&out[j], &in[i], sizeof(in[i]))) {
				j++;
				continue;
			}
			assert_int_equal(in[i].kind, CHANGE_BIND);
			assert_true(now < f.asked_until[p]);
			assert_true(i + 1 < n && in[i + 1].kind == CHANGE_OPEN);
			assert_memory_equal(&out[j], &in[i + 1], sizeof(in[i]));
		}
		assert_int_equal(j, (size_t)k);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_nothing_full, setup),
		cmocka_unit_test_setup(test_covered_entry_left_out, setup),
		cmocka_unit_test_setup(test_uncovered_entry_refused, setup),
		cmocka_unit_test_setup(test_scoped_full, setup),
		cmocka_unit_test_setup(test_random_batches, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
