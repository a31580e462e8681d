// SPDX-License-Identifier: MIT
/*
 * Unit tests of reading the zone file (src/zone.c): through fileio, with
 * its refusals and messages, and libzscanner's errors and $INCLUDE as they
 * were when libzscanner opened the file itself. Queries are test_dns.c's.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include "cmocka_analyzer.h"
#include <libknot/libknot.h>
#include <libzscanner/scanner.h>

#include "config.h"
#include "zone.h"

static const char zone_text[] =
	"$TTL 3600\n"
	"@    SOA  ns1 hostmaster 1 7200 3600 1209600 300\n"
	"@    NS   ns1\n"
	"ns1  A    198.51.100.53\n";

static char tmpdir[64];

struct fixture {
	struct config *cfg;
	char *zonefile;
	FILE *err;     /* stderr while capturing */
	int saved;     /* the real stderr */
};

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

/* What choreod logs meanwhile, rather than on the terminal. */
static void capture(struct fixture *f)
{
	fflush(stderr);
	f->err = tmpfile();
	assert_non_null(f->err);
	f->saved = dup(STDERR_FILENO);
	assert_true(f->saved >= 0);
	assert_true(dup2(fileno(f->err), STDERR_FILENO) >= 0);
}

/* The lines logged since capture(); the caller frees them. */
static char *captured(struct fixture *f)
{
	char *text;
	long n;

	fflush(stderr);
	assert_true(dup2(f->saved, STDERR_FILENO) >= 0);
	close(f->saved);
	n = ftell(f->err);
	assert_true(n >= 0);
	text = calloc(1, (size_t)n + 1);
	assert_non_null(text);
	rewind(f->err);
	assert_int_equal(fread(text, 1, (size_t)n, f->err), (size_t)n);
	fclose(f->err);
	f->err = NULL;
	return text;
}

/* zone_load fails with ret and logs exactly want. */
static void expect_refusal(struct fixture *f, int ret, const char *want)
{
	struct zone *z = (struct zone *)f;
	char *got;
	int r;

	capture(f);
	r = zone_load(f->cfg, &z);
	got = captured(f);
	if (strcmp(got, want) != 0)
		print_message("want: %sgot:  %s", want, got);
	assert_int_equal(r, ret);
	assert_null(z);
	assert_string_equal(got, want);
	free(got);
}

static int setup(void **state)
{
	struct config_errors errs = { 0 };
	struct fixture *f = calloc(1, sizeof(*f));
	char *conf = NULL;
	int ret;

	if (!f || asprintf(&conf, "%s/choreo.conf", tmpdir) < 0) {
		free(f);
		return -1;
	}
	write_file(conf,
		   "[dns]\n"
		   "listen = 127.0.0.1:5353\n"
		   "zone = example.test\n"
		   "zonefile = z.zone\n"
		   "[service www]\n"
		   "name = www.example.test\n"
		   "pool = 203.0.113.0/25\n"
		   "server = 192.0.2.10\n"
		   "honeypot = 192.0.2.20\n", 0644);
	ret = config_load(conf, &f->cfg, &errs);
	config_errors_free(&errs);
	free(conf);
	if (ret < 0) {
		free(f);
		return -1;
	}
	f->zonefile = f->cfg->zonefile;
	unlink(f->zonefile);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	unlink(f->zonefile);
	config_free(f->cfg);
	free(f);
	return 0;
}

static void test_reads_the_zone(void **state)
{
	struct fixture *f = *state;
	struct zone *z;

	write_file(f->zonefile, zone_text, 0644);
	assert_int_equal(zone_load(f->cfg, &z), 0);
	assert_int_equal(z->n_records, 3);
	assert_non_null(z->soa);
	zone_free(z);
}

static void test_world_writable_zone_is_refused(void **state)
{
	struct fixture *f = *state;
	char want[512];
	struct zone *z;

	write_file(f->zonefile, zone_text, 0646);
	snprintf(want, sizeof(want),
		 "choreod: error: %s: writable by any user (mode 0646); refusing it\n",
		 f->zonefile);
	expect_refusal(f, -EPERM, want);
	/* the group may write it */
	assert_int_equal(chmod(f->zonefile, 0664), 0);
	assert_int_equal(zone_load(f->cfg, &z), 0);
	zone_free(z);
}

static void test_missing_or_not_a_regular_file(void **state)
{
	struct fixture *f = *state;
	char want[512];

	snprintf(want, sizeof(want),
		 "choreod: error: %s: cannot open: %s\n", f->zonefile,
		 strerror(ENOENT));
	expect_refusal(f, -ENOENT, want);

	/* as before: one message for both */
	snprintf(want, sizeof(want),
		 "choreod: error: %s: not a regular file of at most %d bytes\n",
		 f->zonefile, ZONE_MAX_FILE);
	assert_int_equal(mkfifo(f->zonefile, 0600), 0); /* not waited for */
	expect_refusal(f, -EINVAL, want);
	unlink(f->zonefile);
	assert_int_equal(mkdir(f->zonefile, 0700), 0);
	expect_refusal(f, -EINVAL, want);
	rmdir(f->zonefile);
}

static void test_errors_name_the_file_and_line(void **state)
{
	struct fixture *f = *state;
	char text[512], want[1024];

	/* line 5 is not an address, line 6 not a number */
	snprintf(text, sizeof(text), "%sbroken1 A 300.1.2.3\nbroken2 MX x\n",
		 zone_text);
	write_file(f->zonefile, text, 0644);
	snprintf(want, sizeof(want),
		 "choreod: error: %s:5: %s\n"
		 "choreod: error: %s:6: %s\n",
		 f->zonefile, zs_strerror(ZS_BAD_IPV4),
		 f->zonefile, zs_strerror(ZS_BAD_NUMBER));
	expect_refusal(f, -EINVAL, want);
}

/* libzscanner took a relative $INCLUDE from the zone file's directory
 * when it opened the file; it still does, whatever the working directory. */
static void test_relative_include(void **state)
{
	struct fixture *f = *state;
	char text[512], *inc;
	uint8_t name[KNOT_DNAME_MAXLEN];
	struct zone *z;

	assert_true(asprintf(&inc, "%s/inc.zone", tmpdir) > 0);
	write_file(inc, "included A 192.0.2.77\n", 0644);
	snprintf(text, sizeof(text), "%s$INCLUDE inc.zone\n", zone_text);
	write_file(f->zonefile, text, 0644);
	assert_int_equal(zone_load(f->cfg, &z), 0);
	assert_non_null(knot_dname_from_str(name, "included.example.test.",
					    sizeof(name)));
	assert_non_null(zone_get(z, name));
	zone_free(z);
	unlink(inc);
	free(inc);
}

static int make_tmpdir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_zone.XXXXXX");
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
		cmocka_unit_test_setup_teardown(test_reads_the_zone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_world_writable_zone_is_refused,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_or_not_a_regular_file,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors_name_the_file_and_line,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_relative_include, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
