/* SPDX-License-Identifier: MIT */
/*
 * Pre-shared secrets of the peer protocol (docs/protocol.md, "Secrets and
 * keys"): a key id names a secret kept in a file of its own,
 * `[key ID] file = PATH`.
 */
#ifndef CHOREO_KEYFILE_H
#define CHOREO_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#define PSK_MIN_LEN 32
#define PSK_MAX_LEN 1024

struct psk {
	uint16_t id;                  /* 1 .. 65535 */
	size_t len;                   /* PSK_MIN_LEN .. PSK_MAX_LEN */
	uint8_t bytes[PSK_MAX_LEN];   /* the secret: bytes[0 .. len - 1] */
};

/*
 * Load the secret of key id (1 .. 65535) from the file at path.
 *
 * The file is read with fileio_read(FILEIO_SECRET): a regular file owned
 * by root or by the effective user, no access for group or other users
 * (mode 0600 or 0400). Its bytes are the secret, except trailing '\n' and
 * '\r' characters (any number of them), which are dropped; what is left
 * must be PSK_MIN_LEN .. PSK_MAX_LEN bytes. Every buffer that held the
 * bytes is zeroed before it is freed.
 *
 * On success returns 0, *out holds the secret (wipe it with psk_wipe when
 * done) and *msg is NULL. On failure returns a negative errno, *out is
 * zeroed and *msg is a malloc'd message "PATH: why" for the caller to
 * report and free (NULL when out of memory):
 *   -EINVAL  "key id 0: must be 1-65535" (no file is opened), or
 *            "PATH: N bytes; a key must be 32 to 1024 bytes (trailing
 *            newlines aside); refusing it", or fileio's "not a regular file"
 *   -EFBIG   the file is much longer than any key ("PATH: too long; a key
 *            must be 32 to 1024 bytes (...)")
 *   -EPERM   fileio's owner and mode refusals; others as fileio_read.
 */
int keyfile_load(const char *path, uint16_t id, struct psk *out, char **msg);

/* Zero the whole of *k (explicit_bzero: not optimised away). NULL-safe. */
void psk_wipe(struct psk *k);

#endif
