// SPDX-License-Identifier: MIT
/* Unit tests of the pre-shared key files (src/keyfile.c).
 *
 * Linked with -Wl,--wrap=free (Makefile): every free() of the library
 * objects passes __wrap_free below, which looks for the key's bytes in the
 * block being freed, so the tests see whether a buffer that held the
 * secret went back to the allocator without being zeroed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include "cmocka_analyzer.h"

#include "keyfile.h"

void __real_free(void *p);
void __wrap_free(void *p);

static char tmpdir[64];

/* The bytes __wrap_free looks for, and how often it found them. */
static const uint8_t *watch;
static size_t watch_len;
static unsigned found;

void __wrap_free(void *p)
{
	size_t n = p && watch ? malloc_usable_size(p) : 0;

	if (watch && watch_len && n >= watch_len && memmem(p, n, watch, watch_len))
		found++;
	__real_free(p);
}

static void watch_for(const void *bytes, size_t len)
{
	watch = bytes;
	watch_len = len;
	found = 0;
}

static char *write_key(const char *name, const void *bytes, size_t len,
		       mode_t mode)
{
	char *path;
	int fd;

	assert_true(asprintf(&path, "%s/%s", tmpdir, name) > 0);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, bytes, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* A key of len bytes that no other buffer of the test holds. */
static void make_key(uint8_t *key, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		key[i] = (uint8_t)(seed + i * 37 + (i >> 8));
}

/* keyfile_load refuses with ret and exactly the message "PATH: why", and
 * leaves *out zeroed. */
static void expect_refusal(const char *path, uint16_t id, int ret,
			   const char *why)
{
	struct psk k;
	char *msg = NULL, want[512];

	memset(&k, 0xa5, sizeof(k));
	snprintf(want, sizeof(want), "%s: %s", path, why);
	assert_int_equal(keyfile_load(path, id, &k, &msg), ret);
	assert_non_null(msg);
	if (strcmp(msg, want) != 0)
		print_message("want: %s\ngot:  %s\n", want, msg);
	assert_string_equal(msg, want);
	assert_true(all_zero(&k, sizeof(k)));
	free(msg);
}

static void test_loads_a_key(void **state)
{
	uint8_t key[1024 + 2];
	struct psk k;
	char dummy, *msg = &dummy, *path;

	(void)state;
	make_key(key, 40, 1);
	path = write_key("k600", key, 40, 0600);
	watch_for(key, 16);
	assert_int_equal(keyfile_load(path, 7, &k, &msg), 0);
	assert_null(msg);
	assert_int_equal(k.id, 7);
	assert_int_equal(k.len, 40);
	assert_memory_equal(k.bytes, key, 40);
	assert_true(all_zero(k.bytes + 40, sizeof(k.bytes) - 40));
	assert_int_equal(found, 0); /* the read buffer was zeroed before free */
	psk_wipe(&k);
	assert_true(all_zero(&k, sizeof(k)));
	psk_wipe(NULL);
	free(path);

	/* read-only for the owner is fine too; ids up to 65535 */
	path = write_key("k400", key, 40, 0400);
	assert_int_equal(keyfile_load(path, 65535, &k, &msg), 0);
	assert_int_equal(k.id, 65535);
	psk_wipe(&k);
	free(path);

	/* the limits themselves: 32 and 1024 bytes */
	make_key(key, 1024, 2);
	path = write_key("k32", key, 32, 0600);
	assert_int_equal(keyfile_load(path, 1, &k, &msg), 0);
	assert_int_equal(k.len, 32);
	assert_memory_equal(k.bytes, key, 32);
	free(path);
	memcpy(key + 1024, "\r\n", 2);
	path = write_key("k1024", key, 1026, 0600);
	watch_for(key + 100, 16);
	assert_int_equal(keyfile_load(path, 1, &k, &msg), 0);
	assert_int_equal(found, 0);
	assert_int_equal(k.len, 1024);
	assert_memory_equal(k.bytes, key, 1024);
	psk_wipe(&k);
	free(path);
	watch_for(NULL, 0);
}

static void test_trailing_newlines(void **state)
{
	static const struct {
		const char *text;
		size_t len, want; /* bytes of the file, of the key */
	} cases[] = {
		{ "0123456789abcdef0123456789abcdef\n", 33, 32 },
		{ "0123456789abcdef0123456789abcdef\r\n", 34, 32 },
		{ "0123456789abcdef0123456789abcdef\n\n\r\n", 36, 32 },
		/* only trailing ones: the others are part of the secret */
		{ "\n0123456789abcdef0123456789abcdef\n", 34, 33 },
		{ "0123456789abcdef\n0123456789abcdef", 33, 33 },
		/* nor any other white space */
		{ "0123456789abcdef0123456789abcdef \n", 34, 33 },
		{ "0123456789abcdef0123456789abcdef\t", 33, 33 },
		/* any byte at all, NUL included */
		{ "0123456789abcdef\0" "0123456789abcdef", 33, 33 },
	};
	struct psk k;
	char *msg;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *path = write_key("nl", cases[i].text, cases[i].len, 0600);
		assert_int_equal(keyfile_load(path, 3, &k, &msg), 0);
		assert_int_equal(k.len, cases[i].want);
		assert_memory_equal(k.bytes, cases[i].text, cases[i].want);
		psk_wipe(&k);
		free(path);
	}
}

static void test_mode_refused(void **state)
{
	static const mode_t modes[] = { 0640, 0604, 0644, 0660, 0610, 0601 };
	uint8_t key[40];
	char why[256];

	(void)state;
	make_key(key, sizeof(key), 3);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		char *path = write_key("mode", key, sizeof(key), modes[i]);

		snprintf(why, sizeof(why),
			 "accessible by group or other users (mode %04o); refusing it",
			 (unsigned)modes[i]);
		watch_for(key, 16);
		expect_refusal(path, 1, -EPERM, why);
		assert_int_equal(found, 0); /* refused before it was read */
		free(path);
	}
	watch_for(NULL, 0);
}

static void test_owner_refused(void **state)
{
	uint8_t key[40];
	char *path, why[256];

	(void)state;
	/* only root can give a file away */
	if (geteuid() != 0) {
		skip();
		return;
	}
	make_key(key, sizeof(key), 4);
	path = write_key("owner", key, sizeof(key), 0600);
	assert_int_equal(chown(path, 12345, 12345), 0);
	snprintf(why, sizeof(why),
		 "owned by uid 12345, not by root or the running user (uid %u); refusing it",
		 (unsigned)geteuid());
	expect_refusal(path, 1, -EPERM, why);
	free(path);
}

static void test_length_refused(void **state)
{
	uint8_t key[5000];
	char *path;

	(void)state;
	make_key(key, sizeof(key), 5);
	path = write_key("short", key, 31, 0600);
	watch_for(key, 16);
	expect_refusal(path, 1, -EINVAL,
		       "31 bytes; a key must be 32 to 1024 bytes (trailing newlines aside); refusing it");
	assert_int_equal(found, 0); /* refused, and still wiped */
	free(path);
	/* the newline does not count */
	key[31] = '\n';
	path = write_key("short-nl", key, 32, 0600);
	expect_refusal(path, 1, -EINVAL,
		       "31 bytes; a key must be 32 to 1024 bytes (trailing newlines aside); refusing it");
	free(path);
	make_key(key, sizeof(key), 5);
	path = write_key("empty", key, 0, 0600);
	expect_refusal(path, 1, -EINVAL,
		       "0 bytes; a key must be 32 to 1024 bytes (trailing newlines aside); refusing it");
	free(path);
	path = write_key("newlines", "\n\n\r\n", 4, 0600);
	expect_refusal(path, 1, -EINVAL,
		       "0 bytes; a key must be 32 to 1024 bytes (trailing newlines aside); refusing it");
	free(path);
	path = write_key("long", key, 1025, 0600);
	watch_for(key + 500, 16);
	expect_refusal(path, 1, -EINVAL,
		       "1025 bytes; a key must be 32 to 1024 bytes (trailing newlines aside); refusing it");
	assert_int_equal(found, 0);
	free(path);
	path = write_key("huge", key, sizeof(key), 0600);
	expect_refusal(path, 1, -EFBIG,
		       "too long; a key must be 32 to 1024 bytes (trailing newlines aside); refusing it");
	free(path);
	watch_for(NULL, 0);
}

static void test_other_refusals(void **state)
{
	uint8_t key[40];
	struct psk k;
	char *path, *dir, *msg;

	(void)state;
	make_key(key, sizeof(key), 6);
	path = write_key("id0", key, sizeof(key), 0600);
	memset(&k, 0xa5, sizeof(k));
	assert_int_equal(keyfile_load(path, 0, &k, &msg), -EINVAL);
	assert_non_null(msg);
	assert_string_equal(msg, "key id 0: must be 1-65535");
	assert_true(all_zero(&k, sizeof(k)));
	free(msg);
	free(path);
	assert_true(asprintf(&path, "%s/missing", tmpdir) > 0);
	expect_refusal(path, 1, -ENOENT, "cannot open: No such file or directory");
	free(path);
	assert_true(asprintf(&dir, "%s/dir", tmpdir) > 0);
	assert_int_equal(mkdir(dir, 0700), 0);
	expect_refusal(dir, 1, -EINVAL, "not a regular file");
	assert_int_equal(rmdir(dir), 0);
	free(dir);
}

/* The wrapper bites: a block holding the watched bytes is noticed. */
static void test_watch_bites(void **state)
{
	uint8_t key[40];
	uint8_t *copy = malloc(sizeof(key) + 3);

	(void)state;
	assert_non_null(copy);
	make_key(key, sizeof(key), 7);
	memcpy(copy + 3, key, sizeof(key));
	watch_for(key, 16);
	/* keep the compiler from dropping the copy as a dead store */
	__asm__ volatile("" : : "r"(copy) : "memory");
	free(copy); /* through __wrap_free, as every free of this binary */
	assert_int_equal(found, 1);
	watch_for(NULL, 0);
}

static int make_tmpdir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_keyfile.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
	DIR *d = opendir(tmpdir);
	struct dirent *de;

	(void)state;
	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
	return rmdir(tmpdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loads_a_key),
		cmocka_unit_test(test_trailing_newlines),
		cmocka_unit_test(test_mode_refused),
		cmocka_unit_test(test_owner_refused),
		cmocka_unit_test(test_length_refused),
		cmocka_unit_test(test_other_refusals),
		cmocka_unit_test(test_watch_bites),
	};

	return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
