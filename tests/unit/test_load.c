// SPDX-License-Identifier: MIT
/*
 * Unit tests of choreo-load's pure logic (tools/load_model.c): option
 * values, the DNS query and the bounded parse of answers, the banner
 * classification, the deadline heap and the PRNG.
 *
 * load_model.c is compiled into this test (as the fuzz harnesses compile
 * their targets), so the generic rule build/asan/test_% builds it with no
 * rule of its own; it is not part of the daemon's library objects.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include "cmocka_analyzer.h"

#include "../../tools/load_model.c"

/* ---- option values ---------------------------------------------------------- */

static void test_parse_numbers(void **state)
{
	uint64_t u;
	double d;

	(void)state;
	assert_int_equal(load_parse_u64("3600", 1, 3600, &u), 0);
	assert_int_equal(u, 3600);
	assert_int_equal(load_parse_u64("3601", 1, 3600, &u), -ERANGE);
	assert_int_equal(load_parse_u64("0", 1, 3600, &u), -ERANGE);
	assert_int_equal(load_parse_u64("-1", 0, 10, &u), -EINVAL);
	assert_int_equal(load_parse_u64(" 1", 0, 10, &u), -EINVAL);
	assert_int_equal(load_parse_u64("1x", 0, 10, &u), -EINVAL);
	assert_int_equal(load_parse_u64("", 0, 10, &u), -EINVAL);
	assert_int_equal(load_parse_u64("99999999999999999999999", 0, UINT64_MAX, &u), -ERANGE);
	assert_int_equal(load_parse_double("0.5", 0, 1, &d), 0);
	assert_true(d == 0.5);
	assert_int_equal(load_parse_double("20", 0, 60000, &d), 0);
	assert_int_equal(load_parse_double("1.5", 0, 1, &d), -ERANGE);
	assert_int_equal(load_parse_double("nan", 0, 1, &d), -EINVAL);
	assert_int_equal(load_parse_double("inf", 0, 1, &d), -EINVAL);
	assert_int_equal(load_parse_double("-0.1", 0, 1, &d), -EINVAL);
	assert_int_equal(load_parse_double("1e", 0, 10, &d), -EINVAL);
}

static void test_parse_addresses(void **state)
{
	uint32_t a;
	unsigned len;
	uint16_t port;

	(void)state;
	assert_int_equal(load_parse_prefix4("198.18.0.0/15", &a, &len), 0);
	assert_int_equal(a, 0xc6120000u);
	assert_int_equal(len, 15);
	assert_int_equal(load_parse_prefix4("198.19.0.0/15", &a, &len), -EDOM);
	assert_int_equal(load_parse_prefix4("0.0.0.0/0", &a, &len), 0);
	assert_int_equal(load_parse_prefix4("1.2.3.4/32", &a, &len), 0);
	assert_int_equal(load_parse_prefix4("1.2.3.4/33", &a, &len), -EINVAL);
	assert_int_equal(load_parse_prefix4("1.2.3.4", &a, &len), -EINVAL);
	assert_int_equal(load_parse_prefix4("/24", &a, &len), -EINVAL);
	assert_int_equal(load_parse_prefix4("1.2.3.0/", &a, &len), -EINVAL);
	assert_int_equal(load_parse_prefix4("1.2.3.0/2x", &a, &len), -EINVAL);

	assert_int_equal(load_parse_hostport4("203.0.113.53", 53, &a, &port), 0);
	assert_int_equal(a, 0xcb007135u);
	assert_int_equal(port, 53);
	assert_int_equal(load_parse_hostport4("198.51.100.10:5353", 53, &a, &port), 0);
	assert_int_equal(port, 5353);
	assert_int_equal(load_parse_hostport4("198.51.100.10:0", 53, &a, &port), -EINVAL);
	assert_int_equal(load_parse_hostport4("198.51.100.10:", 53, &a, &port), -EINVAL);
	assert_int_equal(load_parse_hostport4("198.51.100.300", 53, &a, &port), -EINVAL);
	assert_int_equal(load_parse_hostport4("2001:db8::1", 53, &a, &port), -EINVAL);
}

static void test_parse_ports(void **state)
{
	uint16_t p[4];
	size_t n;

	(void)state;
	assert_int_equal(load_parse_ports("22,25,80,443", p, 4, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(p[0], 22);
	assert_int_equal(p[3], 443);
	assert_int_equal(load_parse_ports("80", p, 4, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(load_parse_ports("1,2,3,4,5", p, 4, &n), -E2BIG);
	assert_int_equal(load_parse_ports("22,,80", p, 4, &n), -EINVAL);
	assert_int_equal(load_parse_ports("22,", p, 4, &n), -EINVAL);
	assert_int_equal(load_parse_ports("0", p, 4, &n), -EINVAL);
	assert_int_equal(load_parse_ports("65536", p, 4, &n), -EINVAL);
	assert_int_equal(load_parse_ports("", p, 4, &n), -EINVAL);
}

/* ---- DNS ------------------------------------------------------------------------ */

static const uint8_t www_q[] = {
	0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
	3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 4, 't', 'e', 's', 't', 0,
	0, 1, 0, 1,
};

static void test_dns_query(void **state)
{
	uint8_t q[LOAD_DNS_QMAX];
	char name[300];

	(void)state;
	assert_int_equal(load_dns_query(q, "www.example.test", 0x1234), sizeof(www_q));
	assert_memory_equal(q, www_q, sizeof(www_q));
	assert_int_equal(load_dns_query(q, "www.example.test.", 0x1234), sizeof(www_q));
	assert_memory_equal(q, www_q, sizeof(www_q));
	assert_int_equal(load_dns_query(q, "", 1), -EINVAL);
	assert_int_equal(load_dns_query(q, ".", 1), -EINVAL);
	assert_int_equal(load_dns_query(q, "a..b", 1), -EINVAL);
	assert_int_equal(load_dns_query(q, ".a", 1), -EINVAL);
	/* a 63-byte label is fine, 64 is not */
	memset(name, 'a', 63);
	strcpy(name + 63, ".test");
	assert_true(load_dns_query(q, name, 1) > 0);
	memset(name, 'a', 64);
	strcpy(name + 64, ".test");
	assert_int_equal(load_dns_query(q, name, 1), -EINVAL);
	/* 253 characters is the longest name */
	for (int i = 0; i < 4; i++) {
		memset(name + i * 64, 'b', 63);
		name[i * 64 + 63] = '.';
	}
	name[253] = '\0'; /* 4 x 63 + 3 dots - 2 = labels 63,63,63,61 */
	assert_true(load_dns_query(q, name, 1) > 0);
	name[253] = 'c';
	name[254] = '\0';
	assert_int_equal(load_dns_query(q, name, 1), -EINVAL);
}

/* a reply to www_q: header flags, counts, then the question, then rrs */
static size_t reply(uint8_t *out, uint8_t flags2, uint8_t flags3, uint16_t an,
		    const uint8_t *rrs, size_t rrs_len)
{
	memcpy(out, www_q, sizeof(www_q));
	out[2] = flags2;
	out[3] = flags3;
	out[6] = (uint8_t)(an >> 8);
	out[7] = (uint8_t)an;
	if (rrs_len)
		memcpy(out + sizeof(www_q), rrs, rrs_len);
	return sizeof(www_q) + rrs_len;
}

static const uint8_t rr_a[] = {
	0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 203, 0, 113, 77,
};

/* www CNAME web.example.test (compressed), web A 203.0.113.9 */
static const uint8_t rr_cname_a[] = {
	0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 5, 0, 6, 3, 'w', 'e', 'b', 0xc0, 16,
	0xc0, 46, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 203, 0, 113, 9,
};

static void test_dns_answer(void **state)
{
	uint8_t pkt[512];
	uint32_t addr = 0;
	int rcode = -1;
	size_t n;

	(void)state;
	n = reply(pkt, 0x81, 0x80, 1, rr_a, sizeof(rr_a));
	assert_int_equal(load_dns_answer(pkt, n, www_q, sizeof(www_q), &addr, &rcode), LOAD_DNS_ADDR);
	assert_int_equal(addr, 0xcb00714du);
	assert_int_equal(rcode, 0);

	/* the CNAME is skipped, the A after it taken */
	n = reply(pkt, 0x81, 0x80, 2, rr_cname_a, sizeof(rr_cname_a));
	assert_int_equal(load_dns_answer(pkt, n, www_q, sizeof(www_q), &addr, NULL), LOAD_DNS_ADDR);
	assert_int_equal(addr, 0xcb007109u);

	/* a CNAME alone: no address */
	n = reply(pkt, 0x81, 0x80, 1, rr_cname_a, 18);
	assert_int_equal(load_dns_answer(pkt, n, www_q, sizeof(www_q), &addr, NULL), LOAD_DNS_NOADDR);

	/* NODATA */
	n = reply(pkt, 0x85, 0x80, 0, NULL, 0);
	assert_int_equal(load_dns_answer(pkt, n, www_q, sizeof(www_q), &addr, NULL), LOAD_DNS_NOADDR);

	/* SERVFAIL, even with a record in it */
	n = reply(pkt, 0x81, 0x82, 1, rr_a, sizeof(rr_a));
	assert_int_equal(load_dns_answer(pkt, n, www_q, sizeof(www_q), &addr, &rcode), LOAD_DNS_RCODE);
	assert_int_equal(rcode, 2);

	/* TC */
	n = reply(pkt, 0x83, 0x80, 0, NULL, 0);
	assert_int_equal(load_dns_answer(pkt, n, www_q, sizeof(www_q), &addr, NULL), LOAD_DNS_TRUNC);

	/* FORMERR without the question */
	memcpy(pkt, www_q, 12);
	pkt[2] = 0x81; pkt[3] = 0x01; pkt[5] = 0;
	assert_int_equal(load_dns_answer(pkt, 12, www_q, sizeof(www_q), &addr, &rcode), LOAD_DNS_RCODE);
	assert_int_equal(rcode, 1);

	/* the question in other case is still ours (0x20) */
	n = reply(pkt, 0x81, 0x80, 1, rr_a, sizeof(rr_a));
	pkt[13] = 'W'; pkt[19] = 'A'; /* wWw.exAmple.test */
	assert_int_equal(load_dns_answer(pkt, n, www_q, sizeof(www_q), &addr, NULL), LOAD_DNS_ADDR);
}

static void test_dns_foreign(void **state)
{
	uint8_t pkt[512];
	uint32_t addr = 0;
	size_t n;

	(void)state;
	n = reply(pkt, 0x81, 0x80, 1, rr_a, sizeof(rr_a));
	pkt[1] ^= 1; /* id */
	assert_int_equal(load_dns_answer(pkt, n, www_q, sizeof(www_q), &addr, NULL), LOAD_DNS_FOREIGN);
	n = reply(pkt, 0x01, 0x80, 1, rr_a, sizeof(rr_a)); /* a query, not a reply */
	assert_int_equal(load_dns_answer(pkt, n, www_q, sizeof(www_q), &addr, NULL), LOAD_DNS_FOREIGN);
	n = reply(pkt, 0x81, 0x80, 1, rr_a, sizeof(rr_a));
	pkt[14] = 'x'; /* wxw.example.test */
	assert_int_equal(load_dns_answer(pkt, n, www_q, sizeof(www_q), &addr, NULL), LOAD_DNS_FOREIGN);
	n = reply(pkt, 0x81, 0x80, 1, rr_a, sizeof(rr_a));
	pkt[31] = 28; /* AAAA question */
	assert_int_equal(load_dns_answer(pkt, n, www_q, sizeof(www_q), &addr, NULL), LOAD_DNS_FOREIGN);
	n = reply(pkt, 0x81, 0x80, 1, rr_a, sizeof(rr_a));
	pkt[2] |= 0x28; /* opcode 5 */
	assert_int_equal(load_dns_answer(pkt, n, www_q, sizeof(www_q), &addr, NULL), LOAD_DNS_FOREIGN);
	assert_int_equal(load_dns_answer(pkt, 11, www_q, sizeof(www_q), &addr, NULL), LOAD_DNS_FOREIGN);
}

static void test_dns_malformed(void **state)
{
	uint8_t pkt[512], rr[32];
	uint32_t addr = 0;
	size_t n;

	(void)state;
	/* every cut of a good answer: never an address, never a read past n */
	n = reply(pkt, 0x81, 0x80, 2, rr_cname_a, sizeof(rr_cname_a));
	for (size_t cut = 0; cut < n; cut++) {
		uint8_t *copy = malloc(cut ? cut : 1); /* ASan sees an overread */

		assert_non_null(copy);
		memcpy(copy, pkt, cut);
		assert_int_not_equal(load_dns_answer(copy, cut, www_q, sizeof(www_q), &addr, NULL),
				     LOAD_DNS_ADDR);
		free(copy);
	}
	/* an A with 5 bytes of data */
	memcpy(rr, rr_a, sizeof(rr_a));
	rr[11] = 5;
	rr[sizeof(rr_a)] = 0;
	n = reply(pkt, 0x81, 0x80, 1, rr, sizeof(rr_a) + 1);
	assert_int_equal(load_dns_answer(pkt, n, www_q, sizeof(www_q), &addr, NULL), LOAD_DNS_MALFORMED);
	/* an extended label type in an owner name */
	memcpy(rr, rr_a, sizeof(rr_a));
	rr[0] = 0x41;
	n = reply(pkt, 0x81, 0x80, 1, rr, sizeof(rr_a));
	assert_int_equal(load_dns_answer(pkt, n, www_q, sizeof(www_q), &addr, NULL), LOAD_DNS_MALFORMED);
	/* 65535 answers announced, one present */
	n = reply(pkt, 0x81, 0x80, 0xffff, rr_a, sizeof(rr_a));
	assert_int_equal(load_dns_answer(pkt, n, www_q, sizeof(www_q), &addr, NULL), LOAD_DNS_ADDR);
	n = reply(pkt, 0x81, 0x80, 0xffff, rr_cname_a, 18);
	assert_int_equal(load_dns_answer(pkt, n, www_q, sizeof(www_q), &addr, NULL), LOAD_DNS_MALFORMED);
	/* an owner name of 200 one-byte labels: bounded, malformed */
	{
		uint8_t big[512];

		memcpy(big, www_q, sizeof(www_q));
		big[2] = 0x81; big[3] = 0x80; big[7] = 1;
		for (size_t i = 0; i < 200; i++) {
			big[sizeof(www_q) + 2 * i] = 1;
			big[sizeof(www_q) + 2 * i + 1] = 'a';
		}
		big[sizeof(www_q) + 400] = 0;
		memset(big + sizeof(www_q) + 401, 0, 10);
		assert_int_equal(load_dns_answer(big, sizeof(www_q) + 411, www_q, sizeof(www_q),
						 &addr, NULL), LOAD_DNS_MALFORMED);
	}
}

static void test_dns_random(void **state)
{
	struct load_rng r;
	uint32_t addr;

	(void)state;
	load_rng_seed(&r, 42);
	/* random bytes after a matching header and question: must not crash
	 * (ASan checks every read against the exact allocation) */
	for (int i = 0; i < 20000; i++) {
		size_t n = sizeof(www_q) + load_rng_below(&r, 80);
		uint8_t *pkt = malloc(n);

		assert_non_null(pkt);
		for (size_t k = 0; k < n; k++)
			pkt[k] = (uint8_t)load_rng_next(&r);
		memcpy(pkt, www_q, sizeof(www_q));
		pkt[2] = 0x81;
		pkt[3] = 0x80;
		pkt[6] = (uint8_t)load_rng_below(&r, 3);
		pkt[7] = (uint8_t)load_rng_next(&r);
		(void)load_dns_answer(pkt, n, www_q, sizeof(www_q), &addr, NULL);
		free(pkt);
	}
}

/* ---- banners ------------------------------------------------------------------------ */

static enum load_host classify(const char *s, bool final)
{
	size_t n = strlen(s);
	uint8_t *copy = malloc(n ? n : 1);
	enum load_host h;

	assert_non_null(copy);
	memcpy(copy, s, n);
	h = load_banner_classify(copy, n, final, "server", "honeypot");
	free(copy);
	return h;
}

static void test_banner(void **state)
{
	(void)state;
	assert_int_equal(classify("SSH-2.0-choreo-lab-server\r\n", false), LOAD_HOST_SERVER);
	assert_int_equal(classify("SSH-2.0-choreo-lab-honeypot\r\n", false), LOAD_HOST_HONEYPOT);
	assert_int_equal(classify("SSH-2.0-OpenSSH_9.2p1 Debian\r\n", false), LOAD_HOST_OTHER);
	assert_int_equal(classify("SSH-2.0-choreo-lab-serv", false), LOAD_HOST_MORE);
	assert_int_equal(classify("SSH-2.0-choreo-lab-serv", true), LOAD_HOST_OTHER);
	assert_int_equal(classify("SSH-2.0-choreo-lab-server", true), LOAD_HOST_SERVER);
	assert_int_equal(classify("220 server ESMTP choreo-lab\r\n", false), LOAD_HOST_SERVER);
	assert_int_equal(classify("220-honeypot ESMTP\r\n220 ok\r\n", false), LOAD_HOST_HONEYPOT);
	assert_int_equal(classify("220 mail.example ESMTP\r\n", false), LOAD_HOST_OTHER);
	assert_int_equal(classify("choreo-lab honeypot (no TLS)\r\n", false), LOAD_HOST_HONEYPOT);
	assert_int_equal(classify(
		"HTTP/1.0 200 OK\r\nServer: choreo-lab\r\nX-Choreo-Host: server\r\n"
		"Content-Length: 7\r\n\r\nserver\n", false), LOAD_HOST_SERVER);
	assert_int_equal(classify("HTTP/1.0 200 OK\r\nx-choreo-host:  honeypot \r\n", false),
			 LOAD_HOST_HONEYPOT);
	assert_int_equal(classify("HTTP/1.0 200 OK\r\nX-Choreo-Host: servers\r\n", false),
			 LOAD_HOST_OTHER);
	/* "Server:" is a header name, never the host */
	assert_int_equal(classify("HTTP/1.0 200 OK\r\nServer: server\r\n", false), LOAD_HOST_MORE);
	assert_int_equal(classify("HTTP/1.0 200 OK\r\nServer: server\r\n", true), LOAD_HOST_NONE);
	/* the body names it */
	assert_int_equal(classify("HTTP/1.1 200 OK\nContent-Type: text/plain\n\nhello\nhoneypot", false),
			 LOAD_HOST_MORE);
	assert_int_equal(classify("HTTP/1.1 200 OK\nContent-Type: text/plain\n\nhello\nhoneypot", true),
			 LOAD_HOST_HONEYPOT);
	assert_int_equal(classify("HTTP/1.1 200 OK\r\n\r\nserver\r\n", false), LOAD_HOST_SERVER);
	/* a header line equal to a name is not the body */
	assert_int_equal(classify("HTTP/1.1 200 OK\r\nserver\r\n", true), LOAD_HOST_NONE);
	/* TLS records */
	assert_int_equal(classify("\x16\x03\x03\x00\x10", false), LOAD_HOST_TLS);
	assert_int_equal(classify("\x15\x03\x01\x00\x02\x02\x46", true), LOAD_HOST_TLS);
	assert_int_equal(classify("\x16", false), LOAD_HOST_MORE);
	assert_int_equal(classify("", false), LOAD_HOST_MORE);
	assert_int_equal(classify("", true), LOAD_HOST_NONE);
	assert_int_equal(classify("hello\r\nthere\r\n", true), LOAD_HOST_NONE);
	/* a name must be a whole word after the last '-' */
	assert_int_equal(load_banner_classify((const uint8_t *)"SSH-2.0-x-honeypot\r\n", 20, false,
					      "pot", "honey"), LOAD_HOST_OTHER);
}

/* ---- the heap ----------------------------------------------------------------------- */

static void test_heap(void **state)
{
	enum { N = 300 };
	struct load_heap h;
	struct load_rng r;
	int64_t ref[N] = { 0 };
	bool in[N] = { false };

	(void)state;
	assert_int_equal(load_heap_init(&h, N), 0);
	load_rng_seed(&r, 7);
	for (int step = 0; step < 100000; step++) {
		uint32_t id = (uint32_t)load_rng_below(&r, N), top;
		uint64_t op = load_rng_below(&r, 4);
		int64_t key, best = INT64_MAX;

		if (op < 2) {
			ref[id] = (int64_t)load_rng_below(&r, 1000);
			in[id] = true;
			load_heap_set(&h, id, ref[id]);
		} else if (op == 2) {
			in[id] = false;
			load_heap_remove(&h, id);
		} else if (load_heap_top(&h, &top, &key)) {
			/* pop the top, as the loop does */
			assert_true(in[top]);
			assert_int_equal(key, ref[top]);
			in[top] = false;
			load_heap_remove(&h, top);
		}
		for (int i = 0; i < N; i++)
			if (in[i] && ref[i] < best)
				best = ref[i];
		if (best == INT64_MAX) {
			assert_false(load_heap_top(&h, &top, &key));
		} else {
			assert_true(load_heap_top(&h, &top, &key));
			assert_int_equal(key, best);
		}
	}
	load_heap_free(&h);
	load_heap_free(&h); /* twice is fine */
}

/* ---- PRNG --------------------------------------------------------------------------- */

static void test_rng(void **state)
{
	struct load_rng r, r2;
	unsigned count[4] = { 0 };

	(void)state;
	load_rng_seed(&r, 1);
	load_rng_seed(&r2, 1);
	for (int i = 0; i < 100; i++)
		assert_int_equal(load_rng_next(&r), load_rng_next(&r2));
	for (int i = 0; i < 40000; i++) {
		uint64_t v = load_rng_below(&r, 4);
		double u = load_rng_unit(&r);

		assert_true(v < 4);
		assert_true(u >= 0.0 && u < 1.0);
		count[v]++;
	}
	/* 10 000 expected each; 6 sigma is 520 */
	for (int i = 0; i < 4; i++)
		assert_true(count[i] > 9480 && count[i] < 10520);
	assert_int_equal(load_rng_below(&r, 1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_numbers),
		cmocka_unit_test(test_parse_addresses),
		cmocka_unit_test(test_parse_ports),
		cmocka_unit_test(test_dns_query),
		cmocka_unit_test(test_dns_answer),
		cmocka_unit_test(test_dns_foreign),
		cmocka_unit_test(test_dns_malformed),
		cmocka_unit_test(test_dns_random),
		cmocka_unit_test(test_banner),
		cmocka_unit_test(test_heap),
		cmocka_unit_test(test_rng),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
