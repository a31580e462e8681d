// SPDX-License-Identifier: MIT
#include "keyfile.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"

/* Room for a longest key followed by "\r\n" and a few more stray newlines;
 * anything longer cannot be a valid key file. */
#define KEYFILE_MAX_READ (PSK_MAX_LEN + 64)

#define KEY_RULE "a key must be 32 to 1024 bytes (trailing newlines aside)"

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

int keyfile_load(const char *path, uint16_t id, struct psk *out, char **msg)
{
	char *buf = NULL;
	size_t len = 0, n;
	int ret;

	psk_wipe(out);
	*msg = NULL;
	if (id == 0)
		return fail(msg, -EINVAL, "key id 0: must be 1-65535");
	ret = fileio_read(path, KEYFILE_MAX_READ, FILEIO_SECRET, &buf, &len, msg);
	if (ret == -EFBIG) {
		/* fileio's limit is ours plus slack: say the rule instead */
		free(*msg);
		return fail(msg, ret, "%s: too long; " KEY_RULE "; refusing it", path);
	}
	if (ret < 0)
		return ret;
	n = len;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (n < PSK_MIN_LEN || n > PSK_MAX_LEN) {
		ret = fail(msg, -EINVAL, "%s: %zu bytes; " KEY_RULE "; refusing it",
			   path, n);
		goto out;
	}
	out->id = id;
	out->len = n;
	memcpy(out->bytes, buf, n);
	ret = 0;
out:
	explicit_bzero(buf, len);
	free(buf);
	return ret;
}

void psk_wipe(struct psk *k)
{
	if (k)
		explicit_bzero(k, sizeof(*k));
}
