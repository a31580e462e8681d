// SPDX-License-Identifier: MIT
/*
 * The pure parts of the DNS TCP limits: connections counted per source
 * (an IPv4 address, an IPv6 /64) against a cap, through adds and deletes
 * checked against a plain model; where the whole messages of a buffer end;
 * and the clocks with an injected time: a message has its deadline from its
 * first byte (a byte a second does not move it), answers not taken are cut
 * at the deadline, an idle connection at the idle timeout.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include "cmocka_analyzer.h"

#include "tcp_limits.h"

static struct sockaddr_storage v4(const char *a)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

	sin->sin_family = AF_INET;
	sin->sin_port = htons(40000);
	assert_int_equal(inet_pton(AF_INET, a, &sin->sin_addr), 1);
	return ss;
}

static struct sockaddr_storage v6(const char *a)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	sin6->sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, a, &sin6->sin6_addr), 1);
	return ss;
}

static void test_sources_cap(void **state)
{
	struct tcp_sources t;
	struct sockaddr_storage a = v4("198.18.0.2"), b = v4("198.18.0.3");
	struct sockaddr_storage c = v6("2001:db8:ffff::2"), d = v6("2001:db8:ffff::9:1");
	struct sockaddr_storage e = v6("2001:db8:fffe::2");
	uint8_t ka[TCP_SRC_KEY], kb[TCP_SRC_KEY], kc[TCP_SRC_KEY], kd[TCP_SRC_KEY],
		ke[TCP_SRC_KEY];

	(void)state;
	assert_int_equal(tcp_sources_init(&t, 8, 42), 0);
	tcp_src_key(&a, ka);
	tcp_src_key(&b, kb);
	tcp_src_key(&c, kc);
	tcp_src_key(&d, kd);
	tcp_src_key(&e, ke);
	/* IPv4: each address its own; IPv6: the /64 */
	assert_memory_not_equal(ka, kb, TCP_SRC_KEY);
	assert_memory_equal(kc, kd, TCP_SRC_KEY);
	assert_memory_not_equal(kc, ke, TCP_SRC_KEY);
	for (int i = 0; i < 3; i++)
		assert_int_equal(tcp_sources_add(&t, ka, 3), 0);
	assert_int_equal(tcp_sources_add(&t, ka, 3), -EBUSY);
	assert_int_equal(tcp_sources_count(&t, ka), 3);
	/* another source is not held by it */
	assert_int_equal(tcp_sources_add(&t, kb, 3), 0);
	/* two addresses of one /64 share the cap */
	assert_int_equal(tcp_sources_add(&t, kc, 2), 0);
	assert_int_equal(tcp_sources_add(&t, kd, 2), 0);
	assert_int_equal(tcp_sources_add(&t, kc, 2), -EBUSY);
	assert_int_equal(tcp_sources_add(&t, ke, 2), 0);
	/* one goes: one more may come */
	tcp_sources_del(&t, ka);
	assert_int_equal(tcp_sources_count(&t, ka), 2);
	assert_int_equal(tcp_sources_add(&t, ka, 3), 0);
	assert_int_equal(tcp_sources_add(&t, ka, 3), -EBUSY);
	tcp_sources_free(&t);
}

/* Random adds and deletes over many sources in a small table, against a
 * plain count per source: deletes must not lose entries that probed past. */
static void test_sources_model(void **state)
{
	enum { N_SRC = 40, ROUNDS = 20000, LIMIT = 3 };
	struct tcp_sources t;
	uint32_t model[N_SRC] = { 0 }, seed = 12345;
	size_t open = 0;

	(void)state;
	/* room for 32 connections: 64 slots, sources collide often */
	assert_int_equal(tcp_sources_init(&t, 32, 7), 0);
	for (int r = 0; r < ROUNDS; r++) {
		uint8_t key[TCP_SRC_KEY];
		struct sockaddr_storage ss;
		char a[32];
		size_t i;

		seed = seed * 1103515245u + 12345u;
		i = (seed >> 8) % N_SRC;
		snprintf(a, sizeof(a), "198.18.%u.%u", (unsigned)(i / 7), (unsigned)i);
		ss = v4(a);
		tcp_src_key(&ss, key);
		if ((seed >> 20) & 1 && open < 32) {
			int ret = tcp_sources_add(&t, key, LIMIT);

			if (model[i] < LIMIT) {
				assert_int_equal(ret, 0);
				model[i]++;
				open++;
			} else {
				assert_int_equal(ret, -EBUSY);
			}
		} else if (model[i]) {
			tcp_sources_del(&t, key);
			model[i]--;
			open--;
		}
		for (size_t k = 0; k < N_SRC; k++) {
			snprintf(a, sizeof(a), "198.18.%u.%u", (unsigned)(k / 7), (unsigned)k);
			ss = v4(a);
			tcp_src_key(&ss, key);
			assert_int_equal(tcp_sources_count(&t, key), model[k]);
		}
	}
	tcp_sources_free(&t);
}

static size_t frame(uint8_t *b, size_t len)
{
	b[0] = (uint8_t)(len >> 8);
	b[1] = (uint8_t)len;
	memset(b + 2, 0xab, len);
	return 2 + len;
}

static void test_frames_end(void **state)
{
	uint8_t buf[400] = { 0 };
	size_t n = 0, need = 0;

	(void)state;
	assert_int_equal(tcp_frames_end(buf, 0, &need), 0);
	assert_int_equal(need, 2);
	n += frame(buf, 30);
	n += frame(buf + n, 40);
	assert_int_equal(tcp_frames_end(buf, n, &need), n);
	assert_int_equal(tcp_frames_end(buf, 1, &need), 0);
	assert_int_equal(need, 2);
	/* a third whose length is read, its body not all there */
	frame(buf + n, 300);
	assert_int_equal(tcp_frames_end(buf, n + 2 + 100, &need), n);
	assert_int_equal(need, 302);
	assert_int_equal(tcp_frames_end(buf, n + 2 + 299, &need), n);
	assert_int_equal(tcp_frames_end(buf, n + 302, &need), n + 302);
	assert_int_equal(need, 2);
	/* the largest: 65535 bytes */
	buf[0] = 0xff;
	buf[1] = 0xff;
	assert_int_equal(tcp_frames_end(buf, 2, &need), 0);
	assert_int_equal(need, TCP_IN_MAX);
}

#define DL 2000   /* ms: the message deadline */
#define IDLE 10000

static void test_clock_slow(void **state)
{
	/* accepted at 1000: the first message is due by 3000 */
	struct tcp_clock c = { .partial = true, .msg_ms = 1000, .last_ms = 1000 };
	size_t len = 0;

	(void)state;
	assert_int_equal(tcp_clock_check(&c, 2999, DL, IDLE), TCP_KEEP);
	assert_int_equal(tcp_clock_check(&c, 3000, DL, IDLE), TCP_SLOW);
	/* a whole message at 1500, then a byte a second of the next */
	tcp_clock_read(&c, 0, 40, 41, 1500);
	assert_true(c.partial);
	assert_int_equal(c.msg_ms, 1500);
	len = 1; /* (the whole one was answered and left the buffer) */
	for (uint64_t t = 2500; t < 3500; t += 1000, len++)
		tcp_clock_read(&c, len, 0, len + 1, t);
	assert_int_equal(c.msg_ms, 1500);
	assert_int_equal(tcp_clock_check(&c, 3499, DL, IDLE), TCP_KEEP);
	assert_int_equal(tcp_clock_check(&c, 3500, DL, IDLE), TCP_SLOW);
	/* waiting for our own commit: never */
	c.pending = true;
	assert_int_equal(tcp_clock_check(&c, 100000, DL, IDLE), TCP_KEEP);
}

static void test_clock_idle_and_stalled(void **state)
{
	struct tcp_clock c = { .partial = true, .msg_ms = 0 };

	(void)state;
	/* a whole message, nothing after it: the idle timeout applies */
	tcp_clock_read(&c, 0, 50, 50, 500);
	assert_false(c.partial);
	c.last_ms = 500;
	assert_int_equal(tcp_clock_check(&c, 500 + DL + 1, DL, IDLE), TCP_KEEP);
	assert_int_equal(tcp_clock_check(&c, 500 + IDLE - 1, DL, IDLE), TCP_KEEP);
	assert_int_equal(tcp_clock_check(&c, 500 + IDLE, DL, IDLE), TCP_IDLE);
	/* answers the client does not take: the deadline from the last it took */
	c.unsent = true;
	c.out_ms = 600;
	assert_int_equal(tcp_clock_check(&c, 600 + DL - 1, DL, IDLE), TCP_KEEP);
	assert_int_equal(tcp_clock_check(&c, 600 + DL, DL, IDLE), TCP_STALLED);
	/* a clock read before a later stamp (no wrap into a huge age) */
	assert_int_equal(tcp_clock_check(&c, 100, DL, IDLE), TCP_KEEP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sources_cap),
		cmocka_unit_test(test_sources_model),
		cmocka_unit_test(test_frames_end),
		cmocka_unit_test(test_clock_slow),
		cmocka_unit_test(test_clock_idle_and_stalled),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
