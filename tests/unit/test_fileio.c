// SPDX-License-Identifier: MIT
/* Unit tests of the bounded file reader with its permission checks
 * (src/fileio.c). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

#include "fileio.h"

static char tmpdir[64];

static char *path_of(const char *name)
{
	char *path;

	assert_true(asprintf(&path, "%s/%s", tmpdir, name) > 0);
	return path;
}

static char *write_file(const char *name, const char *text, size_t len,
			mode_t mode)
{
	char *path = path_of(name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

/* fileio_read fails with ret and exactly this message. */
static void expect_refusal(const char *path, size_t max, unsigned flags,
			   int ret, const char *want)
{
	char *buf = (char *)&ret, *msg = NULL;
	size_t len = 1;

	assert_int_equal(fileio_read(path, max, flags, &buf, &len, &msg), ret);
	assert_null(buf);
	assert_int_equal(len, 0);
	assert_non_null(msg);
	if (strcmp(msg, want) != 0)
		print_message("want: %s\ngot:  %s\n", want, msg);
	assert_string_equal(msg, want);
	free(msg);
}

/* fileio_read succeeds with exactly these bytes. */
static void expect_read(const char *path, size_t max, unsigned flags,
			const char *want, size_t want_len)
{
	char *buf = NULL, *msg = (char *)&flags;
	size_t len = 0;

	assert_int_equal(fileio_read(path, max, flags, &buf, &len, &msg), 0);
	assert_null(msg);
	assert_non_null(buf);
	assert_int_equal(len, want_len);
	assert_memory_equal(buf, want, want_len);
	assert_int_equal(buf[len], '\0');
	free(buf);
}

static void test_reads_a_file(void **state)
{
	(void)state;
	static const char text[] = "line 1\nline\0 2\n";
	char *path = write_file("plain", text, sizeof(text) - 1, 0644);

	expect_read(path, 1024, 0, text, sizeof(text) - 1);
	expect_read(path, 1024, FILEIO_REGULAR, text, sizeof(text) - 1);
	free(path);

	/* an empty file still gives a buffer, holding just the NUL */
	path = write_file("empty", "", 0, 0644);
	expect_read(path, 1024, 0, "", 0);
	expect_read(path, 0, FILEIO_REGULAR, "", 0);
	free(path);
}

static void test_size_cap(void **state)
{
	(void)state;
	char text[4097], want[256];
	char *path;

	memset(text, 'x', sizeof(text));
	/* exactly max bytes is fine */
	path = write_file("max", text, 4096, 0644);
	expect_read(path, 4096, 0, text, 4096);
	free(path);
	/* one more is refused before reading, from its size */
	path = write_file("over", text, 4097, 0644);
	snprintf(want, sizeof(want), "%s: too large (4097 bytes, at most 4096)",
		 path);
	expect_refusal(path, 4096, 0, -EFBIG, want);
	snprintf(want, sizeof(want), "%s: too large (4097 bytes, at most 10)",
		 path);
	expect_refusal(path, 10, FILEIO_REGULAR, -EFBIG, want);
	free(path);
}

static void test_world_writable_is_refused(void **state)
{
	(void)state;
	char *path = write_file("open", "x", 1, 0666), want[256];

	snprintf(want, sizeof(want),
		 "%s: writable by any user (mode 0666); refusing it", path);
	expect_refusal(path, 1024, 0, -EPERM, want);
	expect_refusal(path, 1024, FILEIO_REGULAR, -EPERM, want);
	free(path);

	/* writable by the group is the owner's business */
	path = write_file("group", "x", 1, 0664);
	expect_read(path, 1024, 0, "x", 1);
	free(path);

	/* the file is judged, not the symbolic link to it */
	path = write_file("target", "y", 1, 0602);
	{
		char *link = path_of("link");

		assert_int_equal(symlink(path, link), 0);
		snprintf(want, sizeof(want),
			 "%s: writable by any user (mode 0602); refusing it", link);
		expect_refusal(link, 1024, 0, -EPERM, want);
		assert_int_equal(chmod(path, 0644), 0);
		expect_read(link, 1024, 0, "y", 1);
		free(link);
	}
	free(path);
}

static void test_secret_mode(void **state)
{
	(void)state;
	static const struct {
		mode_t mode;
		bool ok;
	} cases[] = {
		{ 0600, true }, { 0400, true }, { 0700, true },
		{ 0640, false }, { 0604, false }, { 0610, false },
		{ 0601, false }, { 0660, false }, { 0644, false },
	};
	char want[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *path = write_file("key", "secret\n", 7, cases[i].mode);

		if (cases[i].ok) {
			char *buf, *msg;
			size_t len;

			assert_int_equal(fileio_read(path, 64, FILEIO_SECRET,
						     &buf, &len, &msg), 0);
			assert_int_equal(len, 7);
			assert_memory_equal(buf, "secret\n", 7);
			explicit_bzero(buf, len);
			free(buf);
		} else {
			snprintf(want, sizeof(want),
				 "%s: accessible by group or other users (mode %04o); refusing it",
				 path, (unsigned)cases[i].mode);
			expect_refusal(path, 64, FILEIO_SECRET, -EPERM, want);
		}
		/* without the flag, only the world-writable ones are refused */
		if (!(cases[i].mode & S_IWOTH))
			expect_read(path, 64, 0, "secret\n", 7);
		free(path);
	}
}

static void test_secret_owner(void **state)
{
	(void)state;
	char *path, want[256];

	/* only root can give a file away */
	if (geteuid() != 0) {
		skip();
		return;
	}
	path = write_file("owned", "k", 1, 0600);
	assert_int_equal(chown(path, 12345, 12345), 0);
	snprintf(want, sizeof(want),
		 "%s: owned by uid 12345, not by root or the running user (uid 0); refusing it",
		 path);
	expect_refusal(path, 64, FILEIO_SECRET, -EPERM, want);
	/* an ordinary file may belong to anyone */
	expect_read(path, 64, 0, "k", 1);
	free(path);
}

static void test_not_regular_files(void **state)
{
	(void)state;
	char *fifo = path_of("fifo"), *dir = path_of("dir"), want[256];

	/* a FIFO without a writer: refused at once, not waited for */
	assert_int_equal(mkfifo(fifo, 0600), 0);
	snprintf(want, sizeof(want), "%s: not a regular file", fifo);
	expect_refusal(fifo, 64, FILEIO_REGULAR, -EINVAL, want);
	expect_refusal(fifo, 64, FILEIO_SECRET, -EINVAL, want);

	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(want, sizeof(want), "%s: not a regular file", dir);
	expect_refusal(dir, 64, FILEIO_REGULAR, -EINVAL, want);
	/* without the flag a directory gets as far as read() */
	snprintf(want, sizeof(want), "%s: cannot read: %s", dir, strerror(EISDIR));
	expect_refusal(dir, 64, 0, -EISDIR, want);
	free(fifo);
	free(dir);
}

/* A pipe holding text, its writer closed; returns "/proc/self/fd/N". */
static char *pipe_with(const char *text, size_t len, int *keep)
{
	int p[2];
	char *path;

	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], text, len), (ssize_t)len);
	close(p[1]);
	*keep = p[0];
	assert_true(asprintf(&path, "/proc/self/fd/%d", p[0]) > 0);
	return path;
}

static void test_pipes(void **state)
{
	(void)state;
	char text[10000], want[256];
	char *path;
	int fd;

	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = (char)('a' + i % 26);
	/* no size from fstat: read to the end, growing the buffer */
	path = pipe_with(text, sizeof(text), &fd);
	expect_read(path, sizeof(text), 0, text, sizeof(text));
	close(fd);
	free(path);

	path = pipe_with("", 0, &fd);
	expect_read(path, 16, 0, "", 0);
	close(fd);
	free(path);

	/* one byte more than max: refused while reading */
	path = pipe_with(text, sizeof(text), &fd);
	snprintf(want, sizeof(want), "%s: too large (more than %zu bytes)",
		 path, sizeof(text) - 1);
	expect_refusal(path, sizeof(text) - 1, 0, -EFBIG, want);
	close(fd);
	free(path);

	path = pipe_with("x", 1, &fd);
	snprintf(want, sizeof(want), "%s: not a regular file", path);
	expect_refusal(path, 16, FILEIO_REGULAR, -EINVAL, want);
	close(fd);
	free(path);
}

/* fstat's size is a hint: /proc files say 0 and hold more. auxv is a
 * regular file of mode 0400, so it passes as a secret too and takes the
 * path where each outgrown buffer is zeroed. */
static void test_files_larger_than_their_size(void **state)
{
	(void)state;
	char *plain, *secret, *msg;
	size_t plain_len, secret_len;

	assert_int_equal(fileio_read("/proc/self/auxv", 65536, 0, &plain,
				     &plain_len, &msg), 0);
	assert_true(plain_len > 64);
	assert_int_equal(fileio_read("/proc/self/auxv", 65536, FILEIO_SECRET,
				     &secret, &secret_len, &msg), 0);
	assert_int_equal(secret_len, plain_len);
	assert_memory_equal(secret, plain, plain_len);
	explicit_bzero(secret, secret_len);
	free(secret);
	free(plain);
}

static void test_cannot_open(void **state)
{
	(void)state;
	char *path = path_of("missing"), want[256];

	snprintf(want, sizeof(want), "%s: cannot open: %s", path,
		 strerror(ENOENT));
	expect_refusal(path, 64, 0, -ENOENT, want);
	expect_refusal(path, 64, FILEIO_SECRET, -ENOENT, want);
	free(path);
}

static int make_tmpdir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_fileio.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
	DIR *d = opendir(tmpdir);
	struct dirent *de;

	(void)state;
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) < 0)
			unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
	}
	closedir(d);
	return rmdir(tmpdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads_a_file),
		cmocka_unit_test(test_size_cap),
		cmocka_unit_test(test_world_writable_is_refused),
		cmocka_unit_test(test_secret_mode),
		cmocka_unit_test(test_secret_owner),
		cmocka_unit_test(test_not_regular_files),
		cmocka_unit_test(test_pipes),
		cmocka_unit_test(test_files_larger_than_their_size),
		cmocka_unit_test(test_cannot_open),
	};

	return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
