// SPDX-License-Identifier: MIT
/*
 * Unit tests of the INI + schema engine (src/conf.c) alone, with a toy
 * schema: [main] (required), [extra] (optional) and [peer NAME] (repeated).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include "cmocka_analyzer.h"

#include "addr.h"
#include "conf.h"

#define MAX_PEERS 3

struct peer {
	char *name;
	unsigned line;
	struct in_addr addr;
	struct addr_prefix net;
	uint16_t weight;
	size_t ends;                /* end() calls for this peer */
};

struct toy {
	/* [main] */
	uint32_t count;
	uint16_t small;
	char *path, *id, *dom;
	struct in6_addr a6;
	struct addr_prefix p6;
	int color;                  /* 1 red, 2 green, 3 blue */
	unsigned color_line;        /* conf_line() seen by the custom parser */
	/* [extra] */
	char *file;

	struct peer peers[MAX_PEERS];
	size_t n_peers;

	/* what the callbacks saw */
	unsigned checks;
	unsigned main_ends;
	unsigned weight_lines[MAX_PEERS + 1];
	unsigned color_line0, color_line1; /* [main] color at index 0 and 1 */
	unsigned foreign, bad_key;          /* queries that must give 0 */
	int fail_add, fail_color, fail_check; /* make the callback fail */
};

static int parse_color(struct conf *c, const struct conf_key *k, void *obj,
		       char *v);
static void *add_peer(void *ctx, const char *name, unsigned line);
static int end_main(struct conf *c, void *ctx, void *obj, size_t index);
static int end_peer(struct conf *c, void *ctx, void *obj, size_t index);
static int check(struct conf *c, void *ctx);

#define MAIN(f) .off = offsetof(struct toy, f), \
		.size = sizeof(((struct toy *)0)->f)
#define PEER(f) .off = offsetof(struct peer, f), \
		.size = sizeof(((struct peer *)0)->f)

enum { M_COUNT, M_SMALL, M_PATH, M_ID, M_DOM, M_A6, M_P6, M_COLOR, N_MAIN };

static const struct conf_key main_keys[N_MAIN] = {
	[M_COUNT] = { .name = "count", .type = CONF_UINT, .min = 1, .max = 10,
		      .def = 5, MAIN(count) },
	[M_SMALL] = { .name = "small", .type = CONF_UINT, .min = 0,
		      .max = 65535, .def = 7, MAIN(small) },
	[M_PATH]  = { .name = "path", .type = CONF_PATH, .min = 2, .max = 20,
		      .def_str = "/default", MAIN(path) },
	[M_ID]    = { .name = "id", .type = CONF_IDENT, .min = 1, .max = 8,
		      MAIN(id) },
	[M_DOM]   = { .name = "dom", .type = CONF_DNAME, MAIN(dom) },
	[M_A6]    = { .name = "a6", .type = CONF_IPV6, MAIN(a6) },
	[M_P6]    = { .name = "p6", .type = CONF_PREFIX6, .min = 64, .max = 96,
		      MAIN(p6) },
	[M_COLOR] = { .name = "color", .type = CONF_CUSTOM, .required = true,
		      .parse = parse_color },
};

static const struct conf_key extra_keys[] = {
	{ .name = "file", .type = CONF_FILE, .min = 1, .max = 30, MAIN(file) },
};

enum { P_ADDR, P_NET, P_WEIGHT, N_PEER };

static const struct conf_key peer_keys[N_PEER] = {
	[P_ADDR]   = { .name = "addr", .type = CONF_IPV4, .required = true,
		       PEER(addr) },
	[P_NET]    = { .name = "net", .type = CONF_PREFIX4, .min = 16,
		       .max = 24, PEER(net) },
	[P_WEIGHT] = { .name = "weight", .type = CONF_UINT, .min = 1,
		       .max = 100, .def = 1, PEER(weight) },
};

enum { S_MAIN, S_EXTRA, S_PEER, N_SECTIONS };

static const struct conf_section sections[N_SECTIONS] = {
	[S_MAIN]  = { .name = "main", .required = true, .keys = main_keys,
		      .n_keys = N_MAIN, .end = end_main },
	[S_EXTRA] = { .name = "extra", .keys = extra_keys, .n_keys = 1 },
	[S_PEER]  = { .name = "peer", .named = true, .max = MAX_PEERS,
		      .keys = peer_keys, .n_keys = N_PEER, .add = add_peer,
		      .end = end_peer },
};

static const struct conf_schema schema = { sections, N_SECTIONS, check };

/* The same with at least one [peer NAME] required. */
static const struct conf_section sections_peer_required[] = {
	{ .name = "main", .keys = main_keys, .n_keys = N_MAIN },
	{ .name = "peer", .named = true, .required = true, .max = MAX_PEERS,
	  .keys = peer_keys, .n_keys = N_PEER, .add = add_peer },
};

static const struct conf_schema schema_peer_required = {
	sections_peer_required, 2, NULL,
};

/* ---- the callbacks ---------------------------------------------------------- */

static int parse_color(struct conf *c, const struct conf_key *k, void *obj,
		       char *v)
{
	static const char *const names[] = { "red", "green", "blue" };
	struct toy *t = obj;

	t->color_line = conf_line(c);
	if (t->fail_color)
		return -ENOMEM;
	for (size_t i = 0; i < 3; i++) {
		if (strcmp(v, names[i]) == 0) {
			t->color = (int)i + 1;
			return 0;
		}
	}
	conf_bad_value(c, k, v, "red, green or blue");
	return 0;
}

static void *add_peer(void *ctx, const char *name, unsigned line)
{
	struct toy *t = ctx;
	struct peer *p;

	if (t->fail_add || t->n_peers == MAX_PEERS)
		return NULL;
	p = &t->peers[t->n_peers];
	p->name = strdup(name);
	if (!p->name)
		return NULL;
	p->line = line;
	t->n_peers++;
	return p;
}

/* A peer with a net must have its address inside it. */
static int end_peer(struct conf *c, void *ctx, void *obj, size_t index)
{
	struct peer *p = obj;
	struct toy *t = ctx;
	uint8_t a[16] = { 0 };

	assert_ptr_equal(p, &t->peers[index]);
	memcpy(a, &p->addr, sizeof(p->addr));
	p->ends++;
	/* a key given with a bad value has a line but no value: test both */
	if (conf_key_line(c, &sections[S_PEER], index, P_NET) &&
	    p->net.family == AF_INET &&
	    !addr_prefix_contains(&p->net, AF_INET, a))
		conf_error(c, conf_key_line(c, &sections[S_PEER], index, P_ADDR),
			   "[peer %s]: addr is outside net", p->name);
	return 0;
}

static int end_main(struct conf *c, void *ctx, void *obj, size_t index)
{
	struct toy *t = ctx;

	(void)c;
	assert_ptr_equal(obj, ctx);
	assert_int_equal(index, 0);
	t->main_ends++;
	return 0;
}

/* Weights given explicitly must differ between peers. */
static int check(struct conf *c, void *ctx)
{
	struct toy *t = ctx;

	t->checks++;
	if (t->fail_check)
		return -ENOMEM;
	for (size_t i = 0; i <= t->n_peers; i++)
		t->weight_lines[i] = conf_key_line(c, &sections[S_PEER], i, P_WEIGHT);
	t->color_line0 = conf_key_line(c, &sections[S_MAIN], 0, M_COLOR);
	t->color_line1 = conf_key_line(c, &sections[S_MAIN], 1, M_COLOR);
	t->foreign = conf_key_line(c, &sections_peer_required[1], 0, P_ADDR);
	t->bad_key = conf_key_line(c, &sections[S_PEER], 0, N_PEER);
	for (size_t i = 0; i < t->n_peers; i++)
		for (size_t j = 0; j < i; j++)
			if (t->weight_lines[i] && t->weight_lines[j] &&
			    t->peers[i].weight == t->peers[j].weight)
				conf_error(c, t->weight_lines[i],
					   "[peer %s]: weight %u is [peer %s]'s (line %u)",
					   t->peers[i].name, t->peers[i].weight,
					   t->peers[j].name, t->weight_lines[j]);
	return 0;
}


/* ---- the harness ----------------------------------------------------------- */

struct msgs {
	char **v;
	size_t n;
	int fail_at;      /* the sink fails on this message (1-based), 0 never */
};

static int sink(void *arg, char *msg)
{
	struct msgs *m = arg;
	char **grown;

	if (m->fail_at && (size_t)m->fail_at == m->n + 1) {
		free(msg);
		return -ENOMEM;
	}
	grown = realloc(m->v, (m->n + 1) * sizeof(*grown));
	if (!grown) {
		free(msg);
		return -ENOMEM;
	}
	m->v = grown;
	m->v[m->n++] = msg;
	return 0;
}

static void msgs_free(struct msgs *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i]);
	free(m->v);
	memset(m, 0, sizeof(*m));
}

static void toy_free(struct toy *t)
{
	free(t->path);
	free(t->id);
	free(t->dom);
	free(t->file);
	for (size_t i = 0; i < t->n_peers; i++)
		free(t->peers[i].name);
	memset(t, 0, sizeof(*t));
}

/* An exact-size heap copy, so ASan sees any read past the input. */
static int run(const struct conf_schema *s, const char *file, const char *text,
	       size_t len, struct toy *t, struct msgs *m)
{
	char *buf = malloc(len ? len : 1);
	int ret;

	assert_non_null(buf);
	memcpy(buf, text, len);
	ret = conf_parse(s, file, buf, len, t, sink, m);
	free(buf);
	return ret;
}

static void expect_messages(const struct msgs *m, const char *const *want)
{
	size_t n = 0;
	bool same;

	while (want[n])
		n++;
	same = m->n == n;
	for (size_t i = 0; same && i < n; i++)
		same = strcmp(m->v[i], want[i]) == 0;
	if (!same) {
		for (size_t i = 0; i < n; i++)
			print_message("want: %s\n", want[i]);
		for (size_t i = 0; i < m->n; i++)
			print_message("got:  %s\n", m->v[i]);
	}
	assert_true(same);
}

/* text fails with exactly these messages, in this order. */
#define EXPECT_ERRORS(text, ...) do {					\
	struct toy t_ = { 0 };						\
	struct msgs m_ = { 0 };						\
	assert_int_equal(run(&schema, "t.conf", (text), strlen(text),	\
			     &t_, &m_), -EINVAL);			\
	expect_messages(&m_, (const char *const[]){ __VA_ARGS__, NULL }); \
	msgs_free(&m_);							\
	toy_free(&t_);							\
} while (0)

/* ---- tests ------------------------------------------------------------------- */

static void test_every_type_and_default(void **state)
{
	(void)state;
	static const char text[] =
		"# toy\n"
		"[main]\n"
		"count = 10\n"
		"path = /etc/x\n"
		"id = t_1-X\n"
		"dom = Www.Example.TEST\n"
		"a6 = 2001:db8::1\n"
		"p6 = 2001:db8::/96\n"
		"color = green\n"
		"[extra]\n"
		"file = f.txt\n"
		"[peer one]\n"
		"addr = 192.0.2.1\n"
		"net = 192.0.2.0/24\n"
		"weight = 3\n"
		"[peer two]\n"
		"addr = 192.0.2.2\n";
	struct toy t = { 0 };
	struct msgs m = { 0 };
	char buf[ADDR_STRLEN];

	assert_int_equal(run(&schema, "/etc/toy/toy.conf", text, strlen(text),
			     &t, &m), 0);
	assert_int_equal(m.n, 0);
	assert_int_equal(t.count, 10);
	assert_int_equal(t.small, 7);                 /* default, 2 bytes */
	assert_string_equal(t.path, "/etc/x");
	assert_string_equal(t.id, "t_1-X");
	assert_string_equal(t.dom, "www.example.test.");
	assert_string_equal(inet_ntop(AF_INET6, &t.a6, buf, sizeof(buf)),
			    "2001:db8::1");
	assert_string_equal(addr_prefix_format(&t.p6, buf), "2001:db8::/96");
	assert_int_equal(t.color, 2);
	assert_int_equal(t.color_line, 9);
	assert_string_equal(t.file, "/etc/toy/f.txt"); /* next to the file */
	assert_int_equal(t.n_peers, 2);
	assert_string_equal(t.peers[0].name, "one");
	assert_int_equal(t.peers[0].line, 12);
	assert_string_equal(inet_ntop(AF_INET, &t.peers[0].addr, buf, sizeof(buf)),
			    "192.0.2.1");
	assert_string_equal(addr_prefix_format(&t.peers[0].net, buf),
			    "192.0.2.0/24");
	assert_int_equal(t.peers[0].weight, 3);
	assert_int_equal(t.peers[1].weight, 1);        /* default */
	assert_int_equal(t.peers[1].line, 16);
	/* callbacks: end once per section, check once at the end */
	assert_int_equal(t.main_ends, 1);
	assert_int_equal(t.peers[0].ends, 1);
	assert_int_equal(t.peers[1].ends, 1);
	assert_int_equal(t.checks, 1);
	msgs_free(&m);
	toy_free(&t);
}

static void test_defaults_without_the_sections(void **state)
{
	(void)state;
	struct toy t = { 0 };
	struct msgs m = { 0 };

	/* keys of a section that never appears still get their defaults */
	assert_int_equal(run(&schema, "toy.conf", "[main]\ncolor=red", 16,
			     &t, &m), 0);
	assert_int_equal(t.count, 5);
	assert_string_equal(t.path, "/default");
	assert_null(t.id);
	assert_null(t.file);
	assert_int_equal(t.color, 1);
	assert_int_equal(t.n_peers, 0);
	msgs_free(&m);
	toy_free(&t);
}

static void test_key_line_query(void **state)
{
	(void)state;
	static const char text[] =
		"[peer a]\n"          /* 1 */
		"addr = 192.0.2.1\n"  /* 2 */
		"[main]\n"            /* 3 */
		"color = red\n"       /* 4 */
		"[peer b]\n"          /* 5 */
		"addr = 192.0.2.2\n"  /* 6 */
		"\n"                  /* 7 */
		"weight = 9\n";       /* 8 */
	struct toy t = { 0 };
	struct msgs m = { 0 };

	assert_int_equal(run(&schema, "t.conf", text, strlen(text), &t, &m), 0);
	/* the check saw: a's weight not given, b's on line 8, no third peer */
	assert_int_equal(t.weight_lines[0], 0);
	assert_int_equal(t.weight_lines[1], 8);
	assert_int_equal(t.weight_lines[2], 0);
	msgs_free(&m);
	toy_free(&t);
}

static void test_checks_report_through_the_sink(void **state)
{
	(void)state;
	EXPECT_ERRORS(
		"[main]\n"
		"color = blue\n"
		"[peer a]\n"
		"addr = 10.0.0.1\n"
		"net = 192.0.2.0/24\n"
		"weight = 4\n"
		"[peer b]\n"
		"weight = 4\n"
		"addr = 192.0.2.9\n",
		/* end() of [peer a], in file order, then the check */
		"t.conf:4: [peer a]: addr is outside net",
		"t.conf:8: [peer b]: weight 4 is [peer a]'s (line 6)");
}

static void test_bad_values(void **state)
{
	(void)state;
	EXPECT_ERRORS(
		"[main]\n"
		"count = 11\n"
		"small = 65536\n"
		"path = x\n"
		"id = 9lives\n"
		"dom = a..b\n"
		"a6 = 192.0.2.1\n"
		"p6 = 2001:db8::/97\n"
		"color = \x1b[31mred\n"
		"[peer a]\n"
		"addr = 2001:db8::1\n"
		"net = 192.0.2.1/24\n"
		"weight = 0x1\n"
		"[extra]\n"
		"file = a\x7f" "b\n",
		"t.conf:2: key 'count' value '11': expected an integer 1-10",
		"t.conf:3: key 'small' value '65536': expected an integer 0-65535",
		"t.conf:4: key 'path' value 'x': expected a path of 2-20 characters, no control characters",
		"t.conf:5: key 'id' value '9lives': expected 1-8 characters A-Z a-z 0-9 _ -, starting with a letter",
		"t.conf:6: key 'dom' value 'a..b': expected a domain name: labels of 1-63 characters A-Z a-z 0-9 - _, at most 253 characters",
		"t.conf:7: key 'a6' value '192.0.2.1': expected an IPv6 address",
		"t.conf:8: key 'p6' value '2001:db8::/97': expected an IPv6 prefix such as 2001:db8:1::/64, length 64-96",
		"t.conf:9: key 'color' value '\\x1b[31mred': expected red, green or blue",
		"t.conf:11: key 'addr' value '2001:db8::1': expected an IPv4 address",
		"t.conf:12: key 'net' value '192.0.2.1/24': expected a network prefix such as 203.0.113.0/25",
		"t.conf:13: key 'weight' value '0x1': expected an integer 1-100",
		"t.conf:15: key 'file' value 'a\\x7fb': expected a path of 1-30 characters, no control characters");
}

static void test_relative_file_too_long_once_resolved(void **state)
{
	(void)state;
	struct toy t = { 0 };
	struct msgs m = { 0 };
	static const char text[] = "[main]\ncolor=red\n[extra]\nfile = abcdefghij\n";

	/* 10 characters fit in 30, but not behind a 20-character directory */
	assert_int_equal(run(&schema, "/aaaaaaaaaaaaaaaaaaa/t.conf", text,
			     strlen(text), &t, &m), -EINVAL);
	expect_messages(&m, (const char *const[]){
		"/aaaaaaaaaaaaaaaaaaa/t.conf:4: key 'file' value 'abcdefghij': expected a path of at most 30 characters once resolved against the configuration directory",
		NULL });
	msgs_free(&m);
	toy_free(&t);
}

static void test_structure_errors(void **state)
{
	(void)state;
	EXPECT_ERRORS(
		"count = 1\n"
		"[main]\n"
		"color = red\n"
		"color = blue\n"
		"colour = red\n"
		"[main]\n"
		"count = 2\n"
		"[mane]\n"
		"count = 3\n"
		"[main x]\n"
		"[peer]\n"
		"[peer a.b]\n"
		"[peer a]\n"
		"addr = 192.0.2.1\n"
		"[peer A]\n"
		"[peer b]\n"
		"[peer c]\n"
		"addr = 192.0.2.3\n"
		"[peer d]\n"
		"[extra\n"
		"just words\n",
		"t.conf:1: key 'count' outside of any section",
		"t.conf:4: duplicate key 'color' in [main] (first at line 3)",
		"t.conf:5: unknown key 'colour' in [main]",
		"t.conf:6: duplicate section [main] (first at line 2)",
		"t.conf:8: unknown section [mane]",
		"t.conf:10: section [main] takes no name",
		"t.conf:11: section [peer] needs a name: [peer NAME]",
		"t.conf:12: bad peer name 'a.b': expected 1-63 characters A-Z a-z 0-9 _ -",
		"t.conf:15: duplicate section [peer A] (first at line 13)",
		"t.conf:16: [peer b]: missing key 'addr'",
		"t.conf:19: too many peers (at most 3)",
		"t.conf:20: bad section header '[extra': expected [section] or [section NAME]",
		"t.conf:21: unrecognised line 'just words': expected [section], key = value or a comment");
}

static void test_missing_sections(void **state)
{
	(void)state;
	struct toy t = { 0 };
	struct msgs m = { 0 };

	EXPECT_ERRORS("# nothing\n\n", "t.conf:2: missing section [main]");
	EXPECT_ERRORS("", "t.conf:1: missing section [main]");
	/* a required section with a name */
	assert_int_equal(run(&schema_peer_required, "t.conf", "[main]\n", 7,
			     &t, &m), -EINVAL);
	expect_messages(&m, (const char *const[]){
		"t.conf:1: [main]: missing key 'color'",
		"t.conf:1: missing section [peer NAME]: at least one is required",
		NULL });
	msgs_free(&m);
	toy_free(&t);
}

static void test_bytes_of_a_line(void **state)
{
	(void)state;
	static const char head[] =
		"\xef\xbb\xbf[main]\r\ncolor = red\r\nid=a\0b\n#";
	char *text = malloc(CONF_LINE_MAX + 64);
	struct toy t = { 0 };
	struct msgs m = { 0 };
	size_t n = sizeof(head) - 1;

	assert_non_null(text);
	/* BOM, CR LF, a NUL, a line one byte too long, no final newline */
	memcpy(text, head, n);
	memset(text + n, 'x', CONF_LINE_MAX);
	n += CONF_LINE_MAX;
	memcpy(text + n, "\ncount = 3", 10);
	n += 10;
	assert_int_equal(run(&schema, "t.conf", text, n, &t, &m), -EINVAL);
	expect_messages(&m, (const char *const[]){
		"t.conf:3: NUL byte in line",
		"t.conf:4: line longer than 4096 bytes",
		NULL });
	assert_int_equal(t.count, 3);
	msgs_free(&m);
	toy_free(&t);
	free(text);
}

static void test_error_cap_skips_the_checks(void **state)
{
	(void)state;
	char *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);
	struct toy t = { 0 };
	struct msgs m = { 0 };

	assert_non_null(f);
	fprintf(f, "[main]\ncolor = red\n");
	for (int i = 0; i < 2 * CONF_MAX_ERRORS; i++)
		fprintf(f, "bogus %d = 1\n", i);
	fclose(f);
	assert_int_equal(run(&schema, "t.conf", text, size, &t, &m), -EINVAL);
	assert_int_equal(m.n, CONF_MAX_ERRORS + 1);
	assert_string_equal(m.v[CONF_MAX_ERRORS],
			    "t.conf:103: too many errors (more than 100), giving up");
	assert_int_equal(t.checks, 0);
	assert_int_equal(t.main_ends, 0);
	msgs_free(&m);
	toy_free(&t);
	free(text);
}

static void test_failures_stop_the_parse(void **state)
{
	(void)state;
	static const char text[] =
		"[main]\ncolor = red\n[peer a]\naddr = 192.0.2.1\nbad line\n";
	struct toy t = { 0 };
	struct msgs m = { 0 };

	t.fail_add = 1;
	assert_int_equal(run(&schema, "t.conf", text, strlen(text), &t, &m),
			 -ENOMEM);
	assert_int_equal(t.checks, 0);
	toy_free(&t);

	t.fail_color = 1;
	assert_int_equal(run(&schema, "t.conf", text, strlen(text), &t, &m),
			 -ENOMEM);
	assert_int_equal(t.n_peers, 0); /* nothing read after the failure */
	toy_free(&t);

	t.fail_check = 1;
	assert_int_equal(run(&schema, "t.conf", "[main]\ncolor=red\n", 17, &t,
			     &m), -ENOMEM);
	assert_int_equal(t.checks, 1);
	toy_free(&t);
	assert_int_equal(m.n, 0);

	/* a sink that fails stops the parse too */
	m.fail_at = 1;
	assert_int_equal(run(&schema, "t.conf", text, strlen(text), &t, &m),
			 -ENOMEM);
	assert_int_equal(t.checks, 0);
	toy_free(&t);
	msgs_free(&m);

	/* no sink: the messages are dropped, the result stays */
	assert_int_equal(conf_parse(&schema, "t.conf", "x\n", 2, &t, NULL, NULL),
			 -EINVAL);
	toy_free(&t);
	assert_int_equal(conf_parse(&schema, "t.conf", NULL, 1, &t, sink, &m),
			 -EINVAL);
	assert_int_equal(conf_parse(&schema, NULL, "", 0, &t, sink, &m), -EINVAL);
	assert_int_equal(m.n, 0);
	toy_free(&t);
}

static void test_key_line_out_of_range(void **state)
{
	(void)state;
	static const char text[] =
		"[peer a]\naddr = 192.0.2.1\n[main]\ncolor = red\n";
	struct toy t = { 0 };
	struct msgs m = { 0 };

	assert_int_equal(run(&schema, "t.conf", text, strlen(text), &t, &m), 0);
	assert_int_equal(t.color_line0, 4);
	assert_int_equal(t.color_line1, 0);  /* a section without a name: 0 only */
	assert_int_equal(t.weight_lines[1], 0); /* past the last peer */
	assert_int_equal(t.foreign, 0);      /* a row of another schema */
	assert_int_equal(t.bad_key, 0);      /* past the last key */
	toy_free(&t);
	msgs_free(&m);
}

static void test_trim(void **state)
{
	(void)state;
	char a[] = " \t x y \r\t ", b[] = "", c[] = " \r ";

	assert_string_equal(conf_trim(a), "x y");
	assert_string_equal(conf_trim(b), "");
	assert_string_equal(conf_trim(c), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_type_and_default),
		cmocka_unit_test(test_defaults_without_the_sections),
		cmocka_unit_test(test_key_line_query),
		cmocka_unit_test(test_checks_report_through_the_sink),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_relative_file_too_long_once_resolved),
		cmocka_unit_test(test_structure_errors),
		cmocka_unit_test(test_missing_sections),
		cmocka_unit_test(test_bytes_of_a_line),
		cmocka_unit_test(test_error_cap_skips_the_checks),
		cmocka_unit_test(test_failures_stop_the_parse),
		cmocka_unit_test(test_key_line_out_of_range),
		cmocka_unit_test(test_trim),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
