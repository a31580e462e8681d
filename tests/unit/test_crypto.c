// SPDX-License-Identifier: MIT
/* Unit tests of the cryptographic primitives (src/crypto.c) against the
 * published test vectors: RFC 5869 (HKDF), RFC 4231 (HMAC-SHA256), FIPS
 * 180-2 (SHA-256). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <cmocka.h>
#include "cmocka_analyzer.h"

#include "crypto.h"

/* Hex text into bytes; returns the number of bytes. */
static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex) / 2;

	assert_true(strlen(hex) % 2 == 0 && n <= cap);
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	return n;
}

static void fill(uint8_t *p, uint8_t from, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(from + i);
}

static void expect_hkdf(const uint8_t *ikm, size_t ikm_len,
			const uint8_t *salt, size_t salt_len,
			const uint8_t *info, size_t info_len, const char *okm_hex)
{
	uint8_t want[128], got[128];
	size_t n = unhex(okm_hex, want, sizeof(want));

	memset(got, 0xee, sizeof(got));
	assert_int_equal(crypto_hkdf_sha256(ikm, ikm_len, salt, salt_len,
					    info, info_len, got, n), 0);
	assert_memory_equal(got, want, n);
	assert_int_equal(got[n], 0xee); /* not a byte more */
}

/* RFC 5869, appendix A.1 to A.3 (the SHA-256 cases). */
static void test_hkdf_rfc5869(void **state)
{
	uint8_t ikm[80], salt[80], info[80];

	(void)state;
	/* A.1: basic */
	memset(ikm, 0x0b, 22);
	fill(salt, 0x00, 13);
	fill(info, 0xf0, 10);
	expect_hkdf(ikm, 22, salt, 13, info, 10,
		    "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
		    "34007208d5b887185865");
	/* A.2: longer inputs and outputs */
	fill(ikm, 0x00, 80);
	fill(salt, 0x60, 80);
	fill(info, 0xb0, 80);
	expect_hkdf(ikm, 80, salt, 80, info, 80,
		    "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
		    "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
		    "cc30c58179ec3e87c14c01d5c1f3434f1d87");
	/* A.3: zero-length salt and info (K_hello's salt is empty) */
	memset(ikm, 0x0b, 22);
	expect_hkdf(ikm, 22, NULL, 0, NULL, 0,
		    "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
		    "9d201395faa4b61a96c8");
	expect_hkdf(ikm, 22, salt, 0, info, 0,
		    "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
		    "9d201395faa4b61a96c8");
}

static void test_hkdf_refuses(void **state)
{
	uint8_t ikm[32] = { 1 }, out[32];

	(void)state;
	assert_int_equal(crypto_hkdf_sha256(ikm, 0, NULL, 0, NULL, 0, out, 32), -EINVAL);
	assert_int_equal(crypto_hkdf_sha256(NULL, 32, NULL, 0, NULL, 0, out, 32), -EINVAL);
	assert_int_equal(crypto_hkdf_sha256(ikm, 32, NULL, 1, NULL, 0, out, 32), -EINVAL);
	assert_int_equal(crypto_hkdf_sha256(ikm, 32, NULL, 0, NULL, 1, out, 32), -EINVAL);
	assert_int_equal(crypto_hkdf_sha256(ikm, 32, NULL, 0, NULL, 0, out, 0), -EINVAL);
	assert_int_equal(crypto_hkdf_sha256(ikm, 32, NULL, 0, NULL, 0, out,
					    255 * 32 + 1), -EINVAL);
}

static void expect_hmac(const uint8_t *key, size_t key_len, const void *data,
			size_t len, const char *mac_hex)
{
	uint8_t want[32], got[32];
	size_t n = unhex(mac_hex, want, sizeof(want));
	struct iovec one = { .iov_base = (void *)(uintptr_t)data, .iov_len = len };
	/* the same bytes in three pieces, one of them empty */
	struct iovec three[3] = {
		{ .iov_base = (void *)(uintptr_t)data, .iov_len = len / 3 },
		{ .iov_base = NULL, .iov_len = 0 },
		{ .iov_base = (uint8_t *)(uintptr_t)data + len / 3,
		  .iov_len = len - len / 3 },
	};

	assert_int_equal(crypto_hmac_sha256(key, key_len, &one, 1, got), 0);
	assert_memory_equal(got, want, n);
	memset(got, 0, sizeof(got));
	assert_int_equal(crypto_hmac_sha256(key, key_len, three, 3, got), 0);
	assert_memory_equal(got, want, n);
}

/* RFC 4231, section 4 (HMAC-SHA-256 of each test case). */
static void test_hmac_rfc4231(void **state)
{
	uint8_t key[131], data[50];

	(void)state;
	memset(key, 0x0b, 20);
	expect_hmac(key, 20, "Hi There", 8,
		    "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	expect_hmac((const uint8_t *)"Jefe", 4, "what do ya want for nothing?", 28,
		    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	memset(key, 0xaa, 20);
	memset(data, 0xdd, 50);
	expect_hmac(key, 20, data, 50,
		    "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
	fill(key, 0x01, 25);
	memset(data, 0xcd, 50);
	expect_hmac(key, 25, data, 50,
		    "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
	/* test case 5 gives only the first 128 bits */
	memset(key, 0x0c, 20);
	expect_hmac(key, 20, "Test With Truncation", 20,
		    "a3b6167473100ee06e0c796c2955552b");
	memset(key, 0xaa, 131);
	expect_hmac(key, 131, "Test Using Larger Than Block-Size Key - Hash Key First", 54,
		    "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
	expect_hmac(key, 131,
		    "This is a test using a larger than block-size key and a larger "
		    "than block-size data. The key needs to be hashed before being "
		    "used by the HMAC algorithm.", 152,
		    "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

static void test_hmac_refuses(void **state)
{
	uint8_t key[32] = { 0 }, out[32];

	(void)state;
	assert_int_equal(crypto_hmac_sha256(key, 0, NULL, 0, out), -EINVAL);
	assert_int_equal(crypto_hmac_sha256(NULL, 32, NULL, 0, out), -EINVAL);
	assert_int_equal(crypto_hmac_sha256(key, 32, NULL, 1, out), -EINVAL);
	/* no data at all is a valid message */
	assert_int_equal(crypto_hmac_sha256(key, 32, NULL, 0, out), 0);
}

static void test_sha256(void **state)
{
	uint8_t want[32], got[32];
	struct iovec abc[2] = {
		{ .iov_base = "a", .iov_len = 1 },
		{ .iov_base = "bc", .iov_len = 2 },
	};

	(void)state;
	unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	      want, sizeof(want));
	assert_int_equal(crypto_sha256(abc, 2, got), 0);
	assert_memory_equal(got, want, 32);
	unhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	      want, sizeof(want));
	assert_int_equal(crypto_sha256(NULL, 0, got), 0);
	assert_memory_equal(got, want, 32);
	assert_int_equal(crypto_sha256(NULL, 1, got), -EINVAL);
}

static void test_equal(void **state)
{
	uint8_t a[32], b[32];

	(void)state;
	fill(a, 7, sizeof(a));
	memcpy(b, a, sizeof(b));
	assert_true(crypto_equal(a, b, sizeof(a)));
	assert_true(crypto_equal(a, b, 0));
	for (size_t i = 0; i < sizeof(a); i++)
		for (unsigned bit = 0; bit < 8; bit++) {
			b[i] ^= (uint8_t)(1u << bit);
			assert_false(crypto_equal(a, b, sizeof(a)));
			b[i] ^= (uint8_t)(1u << bit);
		}
	assert_true(crypto_equal(a, b, sizeof(a)));
}

static void test_random(void **state)
{
	uint8_t a[64], b[64], zero[64] = { 0 }, big[70000];
	size_t nonzero = 0;

	(void)state;
	assert_int_equal(crypto_random(a, sizeof(a)), 0);
	assert_int_equal(crypto_random(b, sizeof(b)), 0);
	/* 2^-512 chance of a false failure each */
	assert_memory_not_equal(a, b, sizeof(a));
	assert_memory_not_equal(a, zero, sizeof(a));
	assert_int_equal(crypto_random(a, 0), 0);
	/* larger than one getrandom call may give at once */
	memset(big, 0, sizeof(big));
	assert_int_equal(crypto_random(big, sizeof(big)), 0);
	for (size_t i = sizeof(big) - 4096; i < sizeof(big); i++)
		nonzero += big[i] != 0;
	assert_true(nonzero > 3900); /* ~4080 expected; the tail was filled too */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hkdf_rfc5869),
		cmocka_unit_test(test_hkdf_refuses),
		cmocka_unit_test(test_hmac_rfc4231),
		cmocka_unit_test(test_hmac_refuses),
		cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_equal),
		cmocka_unit_test(test_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
