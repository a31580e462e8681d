// SPDX-License-Identifier: MIT
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIRST_CAP 4096 /* when fstat gives no size: pipes say 0 */

__attribute__((format(printf, 3, 4)))
static int fail(char **msg, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(msg, fmt, ap) < 0)
		*msg = NULL;
	va_end(ap);
	return ret;
}

static void release(char *buf, size_t len, bool secret)
{
	if (buf && secret)
		explicit_bzero(buf, len);
	free(buf);
}

/* realloc, except that a secret's old buffer is zeroed, not left behind. */
static char *grow(char *buf, size_t len, size_t cap, bool secret)
{
	char *grown;

	if (!secret)
		return realloc(buf, cap);
	grown = malloc(cap);
	if (grown && len)
		memcpy(grown, buf, len);
	if (grown)
		release(buf, len, true);
	return grown;
}

static int check(const char *path, const struct stat *st, size_t max,
		 unsigned flags, char **msg)
{
	unsigned mode = (unsigned)(st->st_mode & 07777);

	if ((flags & (FILEIO_REGULAR | FILEIO_SECRET)) && !S_ISREG(st->st_mode))
		return fail(msg, -EINVAL, "%s: not a regular file", path);
	/* whoever can write the file decides what the daemon does */
	if (S_ISREG(st->st_mode) && (st->st_mode & S_IWOTH))
		return fail(msg, -EPERM, "%s: writable by any user (mode %04o); refusing it",
			    path, mode);
	if ((flags & FILEIO_SECRET) && st->st_uid != 0 && st->st_uid != geteuid())
		return fail(msg, -EPERM, "%s: owned by uid %u, not by root or the running user (uid %u); refusing it",
			    path, (unsigned)st->st_uid, (unsigned)geteuid());
	if ((flags & FILEIO_SECRET) && (st->st_mode & 077))
		return fail(msg, -EPERM, "%s: accessible by group or other users (mode %04o); refusing it",
			    path, mode);
	if (S_ISREG(st->st_mode) && (unsigned long long)st->st_size > max)
		return fail(msg, -EFBIG, "%s: too large (%lld bytes, at most %zu)",
			    path, (long long)st->st_size, max);
	return 0;
}

int fileio_read(const char *path, size_t max, unsigned flags,
		char **buf, size_t *len, char **msg)
{
	bool secret = flags & FILEIO_SECRET;
	int oflags = O_RDONLY | O_CLOEXEC;
	size_t cap, n = 0;
	char *b = NULL;
	struct stat st;
	int fd, ret;

	*buf = NULL;
	*len = 0;
	*msg = NULL;
	if (flags & (FILEIO_REGULAR | FILEIO_SECRET))
		oflags |= O_NONBLOCK; /* a FIFO is refused, not waited for */
	fd = open(path, oflags);
	if (fd < 0) {
		ret = -errno;
		return fail(msg, ret, "%s: cannot open: %s", path, strerror(-ret));
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		fail(msg, ret, "%s: cannot stat: %s", path, strerror(-ret));
		goto out;
	}
	ret = check(path, &st, max, flags, msg);
	if (ret < 0)
		goto out;
	/* the size from fstat is only a hint: files may grow or shrink */
	cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : FIRST_CAP;
	if (cap > max + 1)
		cap = max + 1;
	b = malloc(cap);
	if (!b) {
		ret = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t r;

		if (n == cap) {
			size_t ncap = cap * 2 < max + 1 ? cap * 2 : max + 1;
			char *grown;

			if (ncap == cap) {
				ret = fail(msg, -EFBIG, "%s: too large (more than %zu bytes)",
					   path, max);
				goto out;
			}
			grown = grow(b, n, ncap, secret);
			if (!grown) {
				ret = -ENOMEM;
				goto out;
			}
			b = grown;
			cap = ncap;
		}
		r = read(fd, b + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = -errno;
			fail(msg, ret, "%s: cannot read: %s", path, strerror(-ret));
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	/* the loop stops with room for the NUL: n < cap */
	b[n] = '\0';
	*buf = b;
	*len = n;
	b = NULL;
	ret = 0;
out:
	release(b, n, secret);
	close(fd);
	return ret;
}
