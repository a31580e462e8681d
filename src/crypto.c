// SPDX-License-Identifier: MIT
#include "crypto.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#define HMAC_MAX_KEY 4096

/* A libcrypto call failed: nobody reads its error queue, so leave it empty
 * rather than let it grow stale for an unrelated caller. */
static int ossl_fail(int ret)
{
	ERR_clear_error();
	return ret;
}

/* OSSL_PARAM wants a non-const pointer even for inputs it only reads. */
static void *unconst(const void *p)
{
	return (void *)(uintptr_t)p;
}

int crypto_hkdf_sha256(const uint8_t *ikm, size_t ikm_len,
		       const uint8_t *salt, size_t salt_len,
		       const uint8_t *info, size_t info_len,
		       uint8_t *out, size_t out_len)
{
	OSSL_PARAM params[5], *p = params;
	EVP_KDF_CTX *ctx = NULL;
	EVP_KDF *kdf = NULL;
	int ret;

	if (!ikm || ikm_len == 0 || (!salt && salt_len) || (!info && info_len) ||
	    !out || out_len == 0 || out_len > 255 * CRYPTO_SHA256_LEN)
		return -EINVAL;
	kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
	if (!kdf) {
		ret = ossl_fail(-EIO);
		goto out;
	}
	ctx = EVP_KDF_CTX_new(kdf);
	if (!ctx) {
		ret = ossl_fail(-ENOMEM);
		goto out;
	}
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
						unconst("SHA256"), 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
						 unconst(ikm), ikm_len);
	/* without a salt OpenSSL uses HashLen zero bytes, as RFC 5869 says */
	if (salt_len)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
							 unconst(salt), salt_len);
	if (info_len)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
							 unconst(info), info_len);
	*p = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(ctx, out, out_len, params) != 1) {
		OPENSSL_cleanse(out, out_len);
		ret = ossl_fail(-EIO);
		goto out;
	}
	ret = 0;
out:
	EVP_KDF_CTX_free(ctx); /* cleanses the key material it copied */
	EVP_KDF_free(kdf);
	return ret;
}

int crypto_hmac_sha256(const uint8_t *key, size_t key_len,
		       const struct iovec *iov, size_t n_iov,
		       uint8_t out[static CRYPTO_SHA256_LEN])
{
	OSSL_PARAM params[2];
	EVP_MAC_CTX *ctx = NULL;
	EVP_MAC *mac = NULL;
	size_t out_len = 0;
	int ret;

	if (!key || key_len == 0 || key_len > HMAC_MAX_KEY || (!iov && n_iov))
		return -EINVAL;
	mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
	if (!mac) {
		ret = ossl_fail(-EIO);
		goto out;
	}
	ctx = EVP_MAC_CTX_new(mac);
	if (!ctx) {
		ret = ossl_fail(-ENOMEM);
		goto out;
	}
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						     unconst("SHA256"), 0);
	params[1] = OSSL_PARAM_construct_end();
	ret = ossl_fail(-EIO);
	if (EVP_MAC_init(ctx, key, key_len, params) != 1)
		goto fail;
	for (size_t i = 0; i < n_iov; i++)
		if (iov[i].iov_len &&
		    EVP_MAC_update(ctx, iov[i].iov_base, iov[i].iov_len) != 1)
			goto fail;
	if (EVP_MAC_final(ctx, out, &out_len, CRYPTO_SHA256_LEN) != 1 ||
	    out_len != CRYPTO_SHA256_LEN)
		goto fail;
	ret = 0;
	goto out;
fail:
	OPENSSL_cleanse(out, CRYPTO_SHA256_LEN);
	ret = ossl_fail(ret);
out:
	EVP_MAC_CTX_free(ctx); /* cleanses the key schedule */
	EVP_MAC_free(mac);
	return ret;
}

int crypto_sha256(const struct iovec *iov, size_t n_iov,
		  uint8_t out[static CRYPTO_SHA256_LEN])
{
	EVP_MD_CTX *ctx;
	unsigned out_len = 0;
	int ret = -EIO;

	if (!iov && n_iov)
		return -EINVAL;
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return ossl_fail(-ENOMEM);
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		goto fail;
	for (size_t i = 0; i < n_iov; i++)
		if (iov[i].iov_len &&
		    EVP_DigestUpdate(ctx, iov[i].iov_base, iov[i].iov_len) != 1)
			goto fail;
	if (EVP_DigestFinal_ex(ctx, out, &out_len) != 1 ||
	    out_len != CRYPTO_SHA256_LEN)
		goto fail;
	EVP_MD_CTX_free(ctx);
	return 0;
fail:
	memset(out, 0, CRYPTO_SHA256_LEN);
	EVP_MD_CTX_free(ctx);
	return ossl_fail(ret);
}

bool crypto_equal(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

int crypto_random(void *buf, size_t len)
{
	uint8_t *b = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n = getrandom(b + got, len - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int ret = n < 0 ? -errno : -EIO;

			explicit_bzero(buf, len);
			return ret;
		}
		got += (size_t)n;
	}
	return 0;
}
