/* SPDX-License-Identifier: MIT */
/*
 * The few cryptographic primitives the peer protocol needs (docs/protocol.md),
 * over OpenSSL 3's libcrypto: HKDF-SHA256, HMAC-SHA256, SHA-256, a constant
 * time comparison and the kernel's CSPRNG.
 *
 * Every function returns 0 or a negative errno: -EINVAL for arguments out of
 * range, -ENOMEM when OpenSSL cannot allocate, -EIO for any other failure of
 * libcrypto (its error queue is cleared; nothing is logged here). No output
 * is meaningful after a failure (it is zeroed where it was touched).
 * Nothing here keeps state: each call fetches what it needs and frees it,
 * so the functions may be called from any thread.
 */
#ifndef CHOREO_CRYPTO_H
#define CHOREO_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define CRYPTO_SHA256_LEN 32

/*
 * HKDF-SHA256 (RFC 5869, extract then expand): out_len bytes (1 .. 255 * 32)
 * into out. ikm must not be empty (ikm_len >= 1); an empty salt (salt_len
 * 0, salt may then be NULL) is the RFC's "not provided", a string of 32
 * zero bytes; an empty info is allowed likewise.
 */
int crypto_hkdf_sha256(const uint8_t *ikm, size_t ikm_len,
		       const uint8_t *salt, size_t salt_len,
		       const uint8_t *info, size_t info_len,
		       uint8_t *out, size_t out_len);

/*
 * HMAC-SHA256 (RFC 2104) with a key of key_len bytes (1 .. 4096; the frames'
 * keys are 32) over the concatenation of the n_iov buffers (an iov_len of 0
 * is allowed, its iov_base may then be NULL).
 */
int crypto_hmac_sha256(const uint8_t *key, size_t key_len,
		       const struct iovec *iov, size_t n_iov,
		       uint8_t out[static CRYPTO_SHA256_LEN]);

/* SHA-256 over the concatenation of the n_iov buffers. */
int crypto_sha256(const struct iovec *iov, size_t n_iov,
		  uint8_t out[static CRYPTO_SHA256_LEN]);

/* a and b hold the same n bytes; the time taken depends only on n. */
bool crypto_equal(const void *a, const void *b, size_t n);

/*
 * Fill buf with len bytes from the kernel's CSPRNG (getrandom(2), blocking
 * until it is seeded; interrupted and short reads are resumed). There is no
 * fallback: when getrandom fails, the error is returned (-ENOSYS, ...) and
 * buf is zeroed.
 */
int crypto_random(void *buf, size_t len);

#endif
