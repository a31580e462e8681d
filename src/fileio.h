/* SPDX-License-Identifier: MIT */
/*
 * Bounded reading of a whole file with a permission check, for the files
 * that decide what choreod does: the configuration, the zone, key files.
 * Whoever can write such a file controls the daemon, so a regular file
 * writable by any user is refused. Symbolic links are followed; the checks
 * are made on the file opened (fstat of its descriptor), not on the name.
 */
#ifndef CHOREO_FILEIO_H
#define CHOREO_FILEIO_H

#include <stddef.h>

/* Refuse anything but a regular file (a pipe or a device, say). The file
 * is opened without blocking, so a FIFO cannot hold the caller up. */
#define FILEIO_REGULAR 0x1u
/*
 * A secret (implies FILEIO_REGULAR): the file must be owned by root or by
 * the effective user, and group and other users must have no access at all
 * (mode & 077 == 0). Buffers that held the bytes are zeroed before they are
 * freed; the caller zeroes the one returned (explicit_bzero(buf, len)).
 */
#define FILEIO_SECRET  0x2u

/*
 * Read the file at path, at most max bytes (max < SIZE_MAX / 2; flags:
 * FILEIO_*).
 *
 * On success returns 0, *buf is a malloc'd copy of the *len bytes of the
 * file with a NUL after them (never NULL, even when empty; the caller frees
 * it), and *msg is NULL.
 *
 * On failure returns a negative errno, *buf is NULL and *msg is a malloc'd
 * message "PATH: why" for the caller to report and free (NULL when out of
 * memory):
 *   -errno    "PATH: cannot open: ...", "cannot stat: ...", "cannot read: ..."
 *   -EPERM    "PATH: writable by any user (mode 0666); refusing it" (a
 *             regular file), and for FILEIO_SECRET "PATH: owned by uid N,
 *             not by root or the running user (uid M); refusing it" or
 *             "PATH: accessible by group or other users (mode 0640);
 *             refusing it"
 *   -EINVAL   "PATH: not a regular file" (FILEIO_REGULAR or FILEIO_SECRET)
 *   -EFBIG    "PATH: too large (N bytes, at most MAX)", or
 *             "PATH: too large (more than MAX bytes)" when it grew
 *   -ENOMEM   no message
 */
int fileio_read(const char *path, size_t max, unsigned flags,
		char **buf, size_t *len, char **msg);

#endif
