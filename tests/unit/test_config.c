// SPDX-License-Identifier: MIT
/* Unit tests for the configuration parser (src/config.c). */
#include <arpa/inet.h>
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

#include "config.h"

#define MAX_ERRORS 100 /* CONF_MAX_ERRORS, conf.h */

/* The buffer handed to the parser is an exact-size heap copy, with no NUL
 * after it, so ASan catches any read past the end. */
static int parse_n(const char *name, const char *text, size_t len,
		   struct config **cfg, struct config_errors *errs)
{
	char *buf = malloc(len ? len : 1);
	int ret;

	assert_non_null(buf);
	memcpy(buf, text, len);
	ret = config_parse(name, buf, len, cfg, errs);
	free(buf);
	return ret;
}

static int parse(const char *text, struct config **cfg,
		 struct config_errors *errs)
{
	return parse_n("t.conf", text, strlen(text), cfg, errs);
}

static struct config *parse_ok(const char *text)
{
	struct config_errors errs = { 0 };
	struct config *cfg = NULL;
	int ret = parse(text, &cfg, &errs);

	for (size_t i = 0; i < errs.n; i++)
		print_message("unexpected: %s\n", errs.msg[i]);
	assert_int_equal(ret, 0);
	assert_int_equal(errs.n, 0);
	assert_non_null(cfg);
	config_errors_free(&errs);
	return cfg;
}

/* The parse fails with exactly these messages, in this order. */
static void expect_errors_n(const char *text, size_t len,
			    const char *const *want)
{
	struct config_errors errs = { 0 };
	struct config *cfg = (struct config *)&errs; /* must be reset */
	size_t n_want = 0;
	bool same;
	int ret;

	while (want[n_want])
		n_want++;
	ret = parse_n("t.conf", text, len, &cfg, &errs);
	same = errs.n == n_want;
	for (size_t i = 0; same && i < n_want; i++)
		same = strcmp(errs.msg[i], want[i]) == 0;
	if (!same) {
		for (size_t i = 0; i < n_want; i++)
			print_message("want: %s\n", want[i]);
		for (size_t i = 0; i < errs.n; i++)
			print_message("got:  %s\n", errs.msg[i]);
	}
	assert_int_equal(ret, -EINVAL);
	assert_null(cfg);
	assert_true(same);
	config_errors_free(&errs);
}

#define EXPECT_ERRORS(text, ...) \
	expect_errors_n((text), strlen(text), (const char *const[]){ __VA_ARGS__, NULL })

/* A valid configuration setting every key; tests override one value. */
struct kv {
	const char *section; /* a header line, or NULL for a key */
	const char *key, *value;
};

static const struct kv full[] = {
	{ "[daemon]", NULL, NULL },
	{ NULL, "control", "/run/test/control.sock" },
	{ NULL, "table", "choreo_test" },
	{ "[dns]", NULL, NULL },
	{ NULL, "listen", "127.0.0.1" },
	{ NULL, "zone", "example.test" },
	{ NULL, "zonefile", "/etc/choreo/example.test.zone" },
	{ NULL, "ttl", "5" },
	{ NULL, "tcp_timeout", "10" },
	{ NULL, "tcp_clients", "256" },
	{ NULL, "udp_payload", "1232" },
	{ "[service a]", NULL, NULL },
	{ NULL, "name", "a.example.test" },
	{ NULL, "pool", "203.0.113.0/25" },
	{ NULL, "pool6", "2001:db8:1::/64" },
	{ NULL, "server", "192.0.2.10" },
	{ NULL, "honeypot", "192.0.2.20" },
	{ NULL, "server6", "2001:db8::10" },
	{ NULL, "honeypot6", "2001:db8::20" },
	{ NULL, "window", "5" },
	{ NULL, "binding", "600" },
	{ NULL, "max_open", "16" },
	{ NULL, "grace", "2" },
	{ NULL, "window_claims", "1" },
	{ NULL, "rotate", "0" },
};

/* full[] as text, with key in section set to value; *line gets its line. */
static char *build(const char *section, const char *key, const char *value,
		   unsigned *line)
{
	const char *cur = "";
	char *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);

	assert_non_null(f);
	*line = 0;
	for (size_t i = 0; i < sizeof(full) / sizeof(full[0]); i++) {
		const struct kv *e = &full[i];

		if (e->section) {
			cur = e->section;
			fprintf(f, "%s\n", cur);
		} else if (strcmp(cur, section) == 0 && strcmp(e->key, key) == 0) {
			fprintf(f, "%s = %s\n", e->key, value);
			*line = (unsigned)i + 1;
		} else {
			fprintf(f, "%s = %s\n", e->key, e->value);
		}
	}
	fclose(f);
	assert_int_not_equal(*line, 0);
	return text;
}

static void test_design_example_parses(void **state)
{
	(void)state;
	static const char text[] =
		"[daemon]\n"
		"control  = /run/choreo/control.sock   # choreoctl socket\n"
		"table    = choreo                     # nftables table (family inet) owned by choreod\n"
		"\n"
		"[dns]\n"
		"listen   = 203.0.113.53:53, [2001:db8::53]:53\n"
		"zone     = example.test\n"
		"zonefile = /etc/choreo/example.test.zone   # RFC 1035 master file: SOA, NS, MX, TXT, ...\n"
		"ttl      = 5                               # TTL of rotated A/AAAA answers\n"
		"\n"
		"[service www]\n"
		"name     = www.example.test   # inside the zone; answered with rotated addresses\n"
		"pool     = 203.0.113.0/25     # IPv4 addresses to rotate through\n"
		"pool6    = 2001:db8:1::/64    # optional: AAAA answers from a random interface id\n"
		"server   = 192.0.2.10         # protected server  (server6 = ... for IPv6)\n"
		"honeypot = 192.0.2.20         # honeypot          (honeypot6 = ...)\n"
		"server6  = 2001:db8::10\n"
		"honeypot6 = 2001:db8::20\n"
		"window   = 5                  # seconds an answered address is open to any source (default: ttl)\n"
		"binding  = 600                # seconds a bound client keeps its way in after its last new connection\n"
		"max_open = 16                 # most pool addresses open to any source at once\n"
		"rotate   = 0                  # minimum seconds between rotations; 0 = new address per answer\n";
	struct config *cfg = parse_ok(text);
	const struct config_service *s;
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;
	char buf[ADDR_STRLEN];

	assert_string_equal(cfg->path, "t.conf");
	assert_string_equal(cfg->control, "/run/choreo/control.sock");
	assert_string_equal(cfg->table, "choreo");
	assert_int_equal(cfg->n_listen, 2);
	sin = (const struct sockaddr_in *)&cfg->listen[0];
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 53);
	assert_string_equal(inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf)),
			    "203.0.113.53");
	assert_int_equal(cfg->listen_len[0], sizeof(struct sockaddr_in));
	sin6 = (const struct sockaddr_in6 *)&cfg->listen[1];
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 53);
	assert_string_equal(inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf)),
			    "2001:db8::53");
	assert_int_equal(cfg->listen_len[1], sizeof(struct sockaddr_in6));
	assert_string_equal(cfg->zone, "example.test.");
	assert_string_equal(cfg->zonefile, "/etc/choreo/example.test.zone");
	assert_int_equal(cfg->ttl, 5);
	assert_int_equal(cfg->tcp_timeout, CONFIG_DEFAULT_TCP_TIMEOUT);
	assert_int_equal(cfg->tcp_clients, CONFIG_DEFAULT_TCP_CLIENTS);
	assert_int_equal(cfg->udp_payload, CONFIG_DEFAULT_UDP_PAYLOAD);

	assert_int_equal(cfg->n_services, 1);
	s = &cfg->services[0];
	assert_string_equal(s->section, "www");
	assert_string_equal(s->name, "www.example.test.");
	assert_int_equal(s->line, 11);
	assert_string_equal(addr_prefix_format(&s->pool, buf), "203.0.113.0/25");
	assert_true(s->has_pool6);
	assert_string_equal(addr_prefix_format(&s->pool6, buf), "2001:db8:1::/64");
	assert_string_equal(inet_ntop(AF_INET, &s->server, buf, sizeof(buf)),
			    "192.0.2.10");
	assert_string_equal(inet_ntop(AF_INET, &s->honeypot, buf, sizeof(buf)),
			    "192.0.2.20");
	assert_true(s->has_server6);
	assert_string_equal(inet_ntop(AF_INET6, &s->server6, buf, sizeof(buf)),
			    "2001:db8::10");
	assert_string_equal(inet_ntop(AF_INET6, &s->honeypot6, buf, sizeof(buf)),
			    "2001:db8::20");
	assert_int_equal(s->window, 5);
	assert_int_equal(s->binding, 600);
	assert_int_equal(s->max_open, 16);
	assert_int_equal(s->rotate, 0);
	config_free(cfg);
}

static void test_defaults_of_optional_keys(void **state)
{
	(void)state;
	struct config *cfg = parse_ok(
		"[dns]\n"
		"listen = 127.0.0.1\n"
		"zone = example.test\n"
		"zonefile = /z\n"
		"[service a]\n"
		"name = a.example.test\n"
		"pool = 203.0.113.0/25\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n");
	const struct config_service *s = &cfg->services[0];

	assert_string_equal(cfg->control, CONFIG_DEFAULT_CONTROL);
	assert_string_equal(cfg->table, CONFIG_DEFAULT_TABLE);
	assert_int_equal(cfg->ttl, CONFIG_DEFAULT_TTL);
	assert_int_equal(cfg->tcp_timeout, CONFIG_DEFAULT_TCP_TIMEOUT);
	assert_int_equal(cfg->tcp_clients, CONFIG_DEFAULT_TCP_CLIENTS);
	assert_int_equal(cfg->udp_payload, CONFIG_DEFAULT_UDP_PAYLOAD);
	assert_false(s->has_pool6);
	assert_false(s->has_server6);
	assert_int_equal(s->window, CONFIG_DEFAULT_TTL);
	assert_int_equal(s->binding, CONFIG_DEFAULT_BINDING);
	assert_int_equal(s->max_open, CONFIG_DEFAULT_MAX_OPEN);
	assert_int_equal(s->rotate, CONFIG_DEFAULT_ROTATE);
	config_free(cfg);
}

static void test_every_key_set_to_its_limits(void **state)
{
	(void)state;
	struct config *cfg = parse_ok(
		"[daemon]\n"
		"table = t_1-X\n"
		"control = relative.sock\n"
		"[dns]\n"
		"listen = 127.0.0.1\n"
		"zone = example.test\n"
		"zonefile = /z\n"
		"ttl = 1\n"
		"tcp_timeout = 3600\n"
		"tcp_clients = 65536\n"
		"udp_payload = 4096\n"
		"[service a]\n"
		"name = a.example.test\n"
		"pool = 10.0.0.0/8\n"
		"pool6 = 2001:db8:1::/120\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n"
		"server6 = 2001:db8::10\n"
		"honeypot6 = 2001:db8::20\n"
		"window = 1\n"
		"binding = 604800\n"
		"max_open = 4096\n"
		"rotate = 86400\n"
		"[service b]\n"
		"name = b.example.test\n"
		"pool = 203.0.113.7/32\n"
		"pool6 = 2001:db8:2::/64\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n"
		"server6 = 2001:db8::10\n"
		"honeypot6 = 2001:db8::20\n"
		"window = 86400\n"
		"binding = 1\n"
		"max_open = 1\n"
		"rotate = 0\n");
	const struct config_service *a = &cfg->services[0], *b = &cfg->services[1];

	assert_string_equal(cfg->table, "t_1-X");
	assert_string_equal(cfg->control, "relative.sock");
	assert_int_equal(cfg->ttl, 1);
	assert_int_equal(cfg->tcp_timeout, 3600);
	assert_int_equal(cfg->tcp_clients, 65536);
	assert_int_equal(cfg->udp_payload, 4096);
	assert_int_equal(a->pool.len, 8);
	assert_int_equal(a->pool6.len, 120);
	assert_int_equal(a->window, 1);
	assert_int_equal(a->binding, 604800);
	assert_int_equal(a->max_open, CONFIG_MAX_OPEN_CAP);
	assert_int_equal(a->rotate, 86400);
	assert_int_equal(b->pool.len, 32);
	assert_int_equal(b->pool6.len, 64);
	assert_int_equal(b->window, 86400);
	assert_int_equal(b->binding, 1);
	assert_int_equal(b->max_open, 1);
	config_free(cfg);
}

static void test_window_defaults_to_ttl_given_after_the_service(void **state)
{
	(void)state;
	struct config *cfg = parse_ok(
		"[service a]\n"
		"name = a.example.test\n"
		"pool = 203.0.113.0/25\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n"
		"[service b]\n"
		"name = b.example.test\n"
		"pool = 203.0.113.128/25\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n"
		"window = 70\n"
		"[dns]\n"
		"listen = 127.0.0.1\n"
		"zone = example.test\n"
		"zonefile = /z\n"
		"ttl = 30\n");

	assert_int_equal(cfg->n_services, 2);
	assert_int_equal(cfg->services[0].window, 30);
	assert_int_equal(cfg->services[1].window, 70);
	config_free(cfg);
}

static void test_names_are_normalised(void **state)
{
	(void)state;
	struct config *cfg = parse_ok(
		"[dns]\n"
		"listen = 127.0.0.1\n"
		"zone = Example.TEST.\n"
		"zonefile = /z\n"
		"[service apex]\n"
		"name = EXAMPLE.test\n"
		"pool = 203.0.113.0/25\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n"
		"[service deep]\n"
		"name = a-b.c_d.Example.Test.\n"
		"pool = 203.0.113.128/25\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n");

	assert_string_equal(cfg->zone, "example.test.");
	assert_string_equal(cfg->services[0].name, "example.test.");
	assert_string_equal(cfg->services[1].name, "a-b.c_d.example.test.");
	config_free(cfg);
}

static void test_syntax_comments_whitespace_crlf_bom(void **state)
{
	(void)state;
	struct config *cfg = parse_ok(
		"\xef\xbb\xbf# a comment\r\n"
		"   # an indented comment\r\n"
		"\r\n"
		"\t[ dns ]   # header comment\r\n"
		"listen=127.0.0.1:5353   \r\n"
		"\tzone\t=\texample.test\t# tabs\r\n"
		"zonefile = /z#no space before the comment\r\n"
		"[service   a]\r\n"
		"name = a.example.test\r\n"
		"pool = 203.0.113.0/25\r\n"
		"server = 192.0.2.10\r\n"
		"honeypot = 192.0.2.20   # no newline at the end");

	assert_string_equal(cfg->zone, "example.test.");
	assert_string_equal(cfg->zonefile, "/z");
	assert_string_equal(cfg->services[0].section, "a");
	assert_int_equal(ntohs(((struct sockaddr_in *)&cfg->listen[0])->sin_port),
			 5353);
	config_free(cfg);
}

static void test_listen_forms_and_ports(void **state)
{
	(void)state;
	static const struct {
		const char *text; /* cppcheck-suppress unusedStructMember ; the input of each row, for the reader */
		int family;
		const char *addr;
		unsigned port;
	} want[] = {
		{ "192.0.2.1", AF_INET, "192.0.2.1", 53 },
		{ "192.0.2.2:5353", AF_INET, "192.0.2.2", 5353 },
		{ "[2001:db8::1]:65535", AF_INET6, "2001:db8::1", 65535 },
		{ "[2001:db8::2]", AF_INET6, "2001:db8::2", 53 },
		{ "[2001:db8::3]:1", AF_INET6, "2001:db8::3", 1 },
		{ "192.0.2.3:53", AF_INET, "192.0.2.3", 53 },
		{ "[2001:db8::1]:53", AF_INET6, "2001:db8::1", 53 },
		{ "192.0.2.1:54", AF_INET, "192.0.2.1", 54 },
	};
	struct config *cfg = parse_ok(
		"[dns]\n"
		"listen = 192.0.2.1,192.0.2.2:5353 , [2001:db8::1]:65535,"
		"[2001:db8::2], [2001:db8::3]:1, 192.0.2.3:53, [2001:db8::1]:53,"
		"192.0.2.1:54\n"
		"zone = example.test\n"
		"zonefile = /z\n"
		"[service a]\n"
		"name = a.example.test\n"
		"pool = 203.0.113.0/25\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n");
	char buf[ADDR_STRLEN];

	assert_int_equal(cfg->n_listen, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < cfg->n_listen; i++) {
		const struct sockaddr *sa = (const struct sockaddr *)&cfg->listen[i];

		assert_int_equal(sa->sa_family, want[i].family);
		if (want[i].family == AF_INET) {
			const struct sockaddr_in *sin = (const void *)sa;

			assert_int_equal(cfg->listen_len[i], sizeof(*sin));
			assert_int_equal(ntohs(sin->sin_port), want[i].port);
			inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
		} else {
			const struct sockaddr_in6 *sin6 = (const void *)sa;

			assert_int_equal(cfg->listen_len[i], sizeof(*sin6));
			assert_int_equal(ntohs(sin6->sin6_port), want[i].port);
			inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
		}
		assert_string_equal(buf, want[i].addr);
	}
	config_free(cfg);
}

static void test_listen_at_most_max_addresses(void **state)
{
	(void)state;
	char list[1024] = "", text[2048];
	struct config *cfg;
	unsigned line;
	char *base;

	for (int i = 1; i <= CONFIG_MAX_LISTEN; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list),
			 "%s127.0.0.%d", i > 1 ? ", " : "", i);
	base = build("[dns]", "listen", list, &line);
	cfg = parse_ok(base);
	assert_int_equal(cfg->n_listen, CONFIG_MAX_LISTEN);
	config_free(cfg);
	free(base);

	snprintf(list + strlen(list), sizeof(list) - strlen(list),
		 ", 127.0.0.%d", CONFIG_MAX_LISTEN + 1);
	base = build("[dns]", "listen", list, &line);
	snprintf(text, sizeof(text),
		 "t.conf:%u: key 'listen' value '127.0.0.%d': expected at most %d addresses",
		 line, CONFIG_MAX_LISTEN + 1, CONFIG_MAX_LISTEN);
	EXPECT_ERRORS(base, text);
	free(base);
}

/* One bad value in an otherwise valid file: exactly one message. */
static void test_bad_values_name_key_value_and_range(void **state)
{
	(void)state;
	static const struct {
		const char *section, *key, *value;
		const char *quoted; /* the value as the message quotes it */
		const char *expected;
	} cases[] = {
		{ "[daemon]", "control", "", NULL,
		  "a path of 1-107 characters, no control characters" },
		{ "[daemon]", "control", "/run/a\x01" "b", "/run/a\\x01b",
		  "a path of 1-107 characters, no control characters" },
		{ "[daemon]", "table", "1choreo", NULL,
		  "1-31 characters A-Z a-z 0-9 _ -, starting with a letter" },
		{ "[daemon]", "table", "cho reo", NULL,
		  "1-31 characters A-Z a-z 0-9 _ -, starting with a letter" },
		{ "[daemon]", "table", "abcdefghijabcdefghijabcdefghijab", NULL,
		  "1-31 characters A-Z a-z 0-9 _ -, starting with a letter" },
		{ "[dns]", "listen", "", NULL,
		  "ipv4[:port], [ipv6]:port or [ipv6]" },
		{ "[dns]", "listen", "127.0.0.1, 2001:db8::53", "2001:db8::53",
		  "ipv4[:port], [ipv6]:port or [ipv6]" },
		{ "[dns]", "listen", "127.0.0.1:0", NULL,
		  "ipv4[:port], [ipv6]:port or [ipv6]" },
		{ "[dns]", "listen", "127.0.0.1:65536", NULL,
		  "ipv4[:port], [ipv6]:port or [ipv6]" },
		{ "[dns]", "listen", "[192.0.2.1]:53", NULL,
		  "ipv4[:port], [ipv6]:port or [ipv6]" },
		{ "[dns]", "listen", "127.0.0.1,", "",
		  "ipv4[:port], [ipv6]:port or [ipv6]" },
		{ "[dns]", "listen", "localhost", NULL,
		  "ipv4[:port], [ipv6]:port or [ipv6]" },
		{ "[dns]", "listen", "127.0.0.1, 127.0.0.1:53", "127.0.0.1:53",
		  "each address only once" },
		{ "[dns]", "listen", "0.0.0.0:53", NULL,
		  "a specific address: the wildcard 0.0.0.0 or [::] is not supported" },
		{ "[dns]", "listen", "127.0.0.1, [::]:5353", "[::]:5353",
		  "a specific address: the wildcard 0.0.0.0 or [::] is not supported" },
		{ "[dns]", "listen", "0.0.0.0", NULL,
		  "a specific address: the wildcard 0.0.0.0 or [::] is not supported" },
		{ "[dns]", "zone", "", NULL,
		  "a domain name: labels of 1-63 characters A-Z a-z 0-9 - _, at most 253 characters" },
		{ "[dns]", "zone", ".", NULL,
		  "a domain name: labels of 1-63 characters A-Z a-z 0-9 - _, at most 253 characters" },
		{ "[dns]", "zone", "example..test", NULL,
		  "a domain name: labels of 1-63 characters A-Z a-z 0-9 - _, at most 253 characters" },
		{ "[dns]", "zone", ".example.test", NULL,
		  "a domain name: labels of 1-63 characters A-Z a-z 0-9 - _, at most 253 characters" },
		{ "[dns]", "zone", "example.test..", NULL,
		  "a domain name: labels of 1-63 characters A-Z a-z 0-9 - _, at most 253 characters" },
		{ "[dns]", "zone", "exa mple.test", NULL,
		  "a domain name: labels of 1-63 characters A-Z a-z 0-9 - _, at most 253 characters" },
		{ "[dns]", "zone", "ex*ample.test", NULL,
		  "a domain name: labels of 1-63 characters A-Z a-z 0-9 - _, at most 253 characters" },
		{ "[dns]", "zone",
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test", NULL,
		  "a domain name: labels of 1-63 characters A-Z a-z 0-9 - _, at most 253 characters" },
		{ "[dns]", "zonefile", "", NULL,
		  "a path of 1-4095 characters, no control characters" },
		{ "[dns]", "ttl", "abc", NULL, "an integer 0-86400" },
		{ "[dns]", "ttl", "86401", NULL, "an integer 0-86400" },
		{ "[dns]", "ttl", "-1", NULL, "an integer 0-86400" },
		{ "[dns]", "ttl", "+5", NULL, "an integer 0-86400" },
		{ "[dns]", "ttl", "5s", NULL, "an integer 0-86400" },
		{ "[dns]", "ttl", "0x10", NULL, "an integer 0-86400" },
		{ "[dns]", "ttl", "5 6", NULL, "an integer 0-86400" },
		{ "[dns]", "ttl", "", NULL, "an integer 0-86400" },
		{ "[dns]", "ttl", "99999999999999999999999999", NULL,
		  "an integer 0-86400" },
		{ "[dns]", "tcp_timeout", "3601", NULL, "an integer 1-3600" },
		{ "[dns]", "tcp_clients", "0", NULL, "an integer 1-65536" },
		{ "[dns]", "tcp_clients", "65537", NULL, "an integer 1-65536" },
		{ "[dns]", "udp_payload", "511", NULL, "an integer 512-4096" },
		{ "[dns]", "udp_payload", "4097", NULL, "an integer 512-4096" },
		{ "[service a]", "name", "a..example.test", NULL,
		  "a domain name: labels of 1-63 characters A-Z a-z 0-9 - _, at most 253 characters" },
		{ "[service a]", "pool", "203.0.113.1/25", NULL,
		  "a network prefix such as 203.0.113.0/25" },
		{ "[service a]", "pool", "203.0.113.0", NULL,
		  "an IPv4 prefix such as 203.0.113.0/25, length 8-32" },
		{ "[service a]", "pool", "10.0.0.0/7", NULL,
		  "an IPv4 prefix such as 203.0.113.0/25, length 8-32" },
		{ "[service a]", "pool", "203.0.113.0/33", NULL,
		  "an IPv4 prefix such as 203.0.113.0/25, length 8-32" },
		{ "[service a]", "pool", "2001:db8::/64", NULL,
		  "an IPv4 prefix such as 203.0.113.0/25, length 8-32" },
		{ "[service a]", "pool6", "2001:db8:1::1/64", NULL,
		  "a network prefix such as 2001:db8:1::/64" },
		{ "[service a]", "pool6", "2001:db8::/63", NULL,
		  "an IPv6 prefix such as 2001:db8:1::/64, length 64-120" },
		{ "[service a]", "pool6", "2001:db8::/121", NULL,
		  "an IPv6 prefix such as 2001:db8:1::/64, length 64-120" },
		{ "[service a]", "pool6", "10.0.0.0/24", NULL,
		  "an IPv6 prefix such as 2001:db8:1::/64, length 64-120" },
		{ "[service a]", "server", "2001:db8::1", NULL, "an IPv4 address" },
		{ "[service a]", "server", "192.0.2.256", NULL, "an IPv4 address" },
		{ "[service a]", "honeypot", "192.0.2", NULL, "an IPv4 address" },
		{ "[service a]", "server6", "192.0.2.1", NULL, "an IPv6 address" },
		{ "[service a]", "honeypot6", "2001:db8::g", NULL, "an IPv6 address" },
		{ "[service a]", "window", "0", NULL, "an integer 1-86400" },
		{ "[service a]", "window", "86401", NULL, "an integer 1-86400" },
		{ "[service a]", "binding", "0", NULL, "an integer 1-604800" },
		{ "[service a]", "binding", "604801", NULL, "an integer 1-604800" },
		{ "[service a]", "max_open", "0", NULL, "an integer 1-4096" },
		{ "[service a]", "max_open", "4097", NULL, "an integer 1-4096" },
		{ "[service a]", "window_claims", "1001", NULL, "an integer 0-1000" },
		{ "[service a]", "grace", "61", NULL, "an integer 0-60" },
		{ "[service a]", "rotate", "86401", NULL, "an integer 0-86400" },
		{ "[service a]", "rotate", "-0", NULL, "an integer 0-86400" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char want[1024];
		unsigned line;
		char *text = build(cases[i].section, cases[i].key,
				   cases[i].value, &line);

		snprintf(want, sizeof(want),
			 "t.conf:%u: key '%s' value '%s': expected %s", line,
			 cases[i].key,
			 cases[i].quoted ? cases[i].quoted : cases[i].value,
			 cases[i].expected);
		EXPECT_ERRORS(text, want);
		free(text);
	}
}

static void test_bad_value_message_example(void **state)
{
	(void)state;
	EXPECT_ERRORS(
		"[dns]\n"
		"listen = 127.0.0.1\n"
		"zone = example.test\n"
		"zonefile = /z\n"
		"\n"
		"[service a]\n"
		"name = a.example.test\n"
		"pool = 203.0.113.0/25\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n"
		"[dns]\n"
		"ttl = abc\n",
		"t.conf:11: duplicate section [dns] (first at line 1)");
	EXPECT_ERRORS(
		"# choreo.conf\n"
		"\n"
		"[service a]\n"
		"name = a.example.test\n"
		"pool = 203.0.113.0/25\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n"
		"[dns]\n"
		"listen = 127.0.0.1\n"
		"zone = example.test\n"
		"zonefile = /z\n"
		"ttl = abc   # a comment\n",
		"t.conf:12: key 'ttl' value 'abc': expected an integer 0-86400");
}

static void test_control_path_fits_a_unix_socket(void **state)
{
	(void)state;
	char path[120], want[512];
	struct config *cfg;
	unsigned line;
	char *text;

	/* sun_path holds 108 bytes with the NUL */
	memset(path, 'c', sizeof(path));
	path[0] = '/';
	path[107] = '\0';
	text = build("[daemon]", "control", path, &line);
	cfg = parse_ok(text);
	assert_string_equal(cfg->control, path);
	config_free(cfg);
	free(text);

	path[107] = 'c';
	path[108] = '\0';
	text = build("[daemon]", "control", path, &line);
	snprintf(want, sizeof(want),
		 "t.conf:%u: key 'control' value '%.100s...': expected a path of 1-107 characters, no control characters",
		 line, path);
	EXPECT_ERRORS(text, want);
	free(text);
}

static void test_unknown_key_and_section(void **state)
{
	(void)state;
	char *text, want[256];
	unsigned line;

	EXPECT_ERRORS(
		"[dns]\n"
		"listen = 127.0.0.1\n"
		"zone = example.test\n"
		"zonefile = /z\n"
		"foo = 1\n"
		"TTL = 5\n"
		"[service a]\n"
		"name = a.example.test\n"
		"pool = 203.0.113.0/25\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n"
		"ttl = 5\n"
		"[daemon]\n"
		"listen = 127.0.0.1\n"
		"[options]\n"
		"foo = 1\n"
		"bar = 2\n"
		"[Dns]\n",
		"t.conf:5: unknown key 'foo' in [dns]",
		"t.conf:6: unknown key 'TTL' in [dns]",
		"t.conf:12: unknown key 'ttl' in [service a]",
		"t.conf:14: unknown key 'listen' in [daemon]",
		"t.conf:15: unknown section [options]",
		"t.conf:18: unknown section [Dns]");

	/* the keys of an unknown section are not reported one by one */
	text = build("[dns]", "ttl", "5\n[zone]\nzone = x", &line);
	snprintf(want, sizeof(want), "t.conf:%u: unknown section [zone]",
		 line + 1);
	EXPECT_ERRORS(text, want);
	free(text);
}

static void test_bad_section_headers(void **state)
{
	(void)state;
	char name64[80], text[512], want[256];

	memset(name64, 'n', 64);
	name64[64] = '\0';

	EXPECT_ERRORS(
		"[dns\n"
		"[dns x]\n"
		"[daemon x]\n"
		"[service]\n"
		"[service a b]\n"
		"[service a.b]\n"
		"[service www] junk\n"
		"[]\n",
		"t.conf:1: bad section header '[dns': expected [section] or [section NAME]",
		"t.conf:2: section [dns] takes no name",
		"t.conf:3: section [daemon] takes no name",
		"t.conf:4: section [service] needs a name: [service NAME]",
		"t.conf:5: bad service name 'a b': expected 1-63 characters A-Z a-z 0-9 _ -",
		"t.conf:6: bad service name 'a.b': expected 1-63 characters A-Z a-z 0-9 _ -",
		"t.conf:7: bad section header '[service www] junk': expected [section] or [section NAME]",
		"t.conf:8: unknown section []",
		"t.conf:8: missing section [dns]",
		"t.conf:8: missing section [service NAME]: at least one is required");

	snprintf(text, sizeof(text), "[service %s]\n", name64);
	snprintf(want, sizeof(want),
		 "t.conf:1: bad service name '%s': expected 1-63 characters A-Z a-z 0-9 _ -",
		 name64);
	EXPECT_ERRORS(text, want,
		      "t.conf:1: missing section [dns]",
		      "t.conf:1: missing section [service NAME]: at least one is required");
}

static void test_duplicate_keys_and_sections(void **state)
{
	(void)state;
	EXPECT_ERRORS(
		"[daemon]\n"
		"table = a\n"
		"table = b\n"
		"[dns]\n"
		"listen = 127.0.0.1\n"
		"zone = example.test\n"
		"zonefile = /z\n"
		"zone = other.test\n"
		"[service a]\n"
		"name = a.example.test\n"
		"pool = 203.0.113.0/25\n"
		"server = 192.0.2.10\n"
		"server = 192.0.2.11\n"
		"honeypot = 192.0.2.20\n"
		"[daemon]\n"
		"table = c\n"
		"[dns]\n"
		"ttl = 9\n"
		"[service a]\n"
		"name = b.example.test\n"
		"[service A]\n",
		"t.conf:3: duplicate key 'table' in [daemon] (first at line 2)",
		"t.conf:8: duplicate key 'zone' in [dns] (first at line 6)",
		"t.conf:13: duplicate key 'server' in [service a] (first at line 12)",
		"t.conf:15: duplicate section [daemon] (first at line 1)",
		"t.conf:17: duplicate section [dns] (first at line 4)",
		"t.conf:19: duplicate section [service a] (first at line 9)",
		"t.conf:21: duplicate section [service A] (first at line 9)");
}

static void test_two_services_with_the_same_name(void **state)
{
	(void)state;
	EXPECT_ERRORS(
		"[dns]\n"
		"listen = 127.0.0.1\n"
		"zone = example.test\n"
		"zonefile = /z\n"
		"[service a]\n"
		"name = www.example.test\n"
		"pool = 203.0.113.0/26\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n"
		"[service b]\n"
		"pool = 203.0.113.64/26\n"
		"name = WWW.example.test.\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n",
		"t.conf:12: [service b]: name 'www.example.test.' is already used by [service a] (line 6)");
}

static void test_service_name_outside_the_zone(void **state)
{
	(void)state;
	EXPECT_ERRORS(
		"[service a]\n"
		"name = www.example.org\n"
		"pool = 203.0.113.0/27\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n"
		"[service b]\n"
		"name = wwwexample.test\n"
		"pool = 203.0.113.32/27\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n"
		"[service c]\n"
		"name = test\n"
		"pool = 203.0.113.64/27\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n"
		"[service d]\n"
		"name = a.b.example.test\n"
		"pool = 203.0.113.96/27\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n"
		"[dns]\n"
		"listen = 127.0.0.1\n"
		"zone = example.test\n"
		"zonefile = /z\n",
		"t.conf:2: [service a]: name 'www.example.org.' is not inside zone 'example.test.'",
		"t.conf:7: [service b]: name 'wwwexample.test.' is not inside zone 'example.test.'",
		"t.conf:12: [service c]: name 'test.' is not inside zone 'example.test.'");
}

static void test_overlapping_pools(void **state)
{
	(void)state;
	EXPECT_ERRORS(
		"[dns]\n"
		"listen = 127.0.0.1\n"
		"zone = example.test\n"
		"zonefile = /z\n"
		"\n"
		"[service a]\n"
		"name = a.example.test\n"
		"server = 192.0.2.10\n"
		"pool = 203.0.113.0/25\n"
		"honeypot = 192.0.2.20\n"
		"pool6 = 2001:db8:1::/64\n"
		"server6 = 2001:db8::10\n"
		"honeypot6 = 2001:db8::20\n"
		"[service c]\n"
		"name = c.example.test\n"
		"pool = 203.0.113.128/25\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n"
		"[service b]\n"
		"pool = 203.0.113.0/26\n"
		"name = b.example.test\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n"
		"pool6 = 2001:db8:1:0::100/120\n"
		"server6 = 2001:db8::10\n"
		"honeypot6 = 2001:db8::20\n"
		"[service d]\n"
		"pool = 203.0.0.0/16\n"
		"name = d.example.test\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n"
		"pool6 = 2001:db8:2::/64\n"
		"server6 = 2001:db8::10\n"
		"honeypot6 = 2001:db8::20\n",
		"t.conf:20: [service b]: pool 203.0.113.0/26 overlaps pool 203.0.113.0/25 of [service a] (line 9)",
		"t.conf:24: [service b]: pool6 2001:db8:1::100/120 overlaps pool6 2001:db8:1::/64 of [service a] (line 11)",
		"t.conf:28: [service d]: pool 203.0.0.0/16 overlaps pool 203.0.113.0/25 of [service a] (line 9)",
		"t.conf:28: [service d]: pool 203.0.0.0/16 overlaps pool 203.0.113.128/25 of [service c] (line 16)",
		"t.conf:28: [service d]: pool 203.0.0.0/16 overlaps pool 203.0.113.0/26 of [service b] (line 20)");
}

static void test_pool_of_listen_addresses_only(void **state)
{
	(void)state;
	/* a listen address inside a larger pool is fine (never handed out);
	 * a pool made only of listen addresses is not */
	EXPECT_ERRORS(
		"[dns]\n"
		"listen = 203.0.113.53, 203.0.113.200, 203.0.113.201\n"
		"zone = example.test\n"
		"zonefile = /z\n"
		"[service a]\n"
		"name = a.example.test\n"
		"pool = 203.0.113.0/25\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n"
		"[service b]\n"
		"name = b.example.test\n"
		"pool = 203.0.113.200/31\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n",
		"t.conf:12: [service b]: pool 203.0.113.200/31 holds only choreod's listen addresses: no address is left to hand out");
}

static void test_missing_keys_and_sections(void **state)
{
	(void)state;
	EXPECT_ERRORS(
		"[daemon]\n"
		"[dns]\n"
		"zone = example.test\n"
		"\n"
		"[service www]\n"
		"name = www.example.test\n"
		"server = 192.0.2.10\n",
		"t.conf:2: [dns]: missing key 'listen'",
		"t.conf:2: [dns]: missing key 'zonefile'",
		"t.conf:5: [service www]: missing key 'pool'",
		"t.conf:5: [service www]: missing key 'honeypot'");
	EXPECT_ERRORS(
		"# nothing but comments\n"
		"\n",
		"t.conf:2: missing section [dns]",
		"t.conf:2: missing section [service NAME]: at least one is required");
	EXPECT_ERRORS("",
		"t.conf:1: missing section [dns]",
		"t.conf:1: missing section [service NAME]: at least one is required");
}

static void test_ipv6_keys_go_with_pool6(void **state)
{
	(void)state;
	EXPECT_ERRORS(
		"[dns]\n"
		"listen = 127.0.0.1\n"
		"zone = example.test\n"
		"zonefile = /z\n"
		"[service a]\n"
		"name = a.example.test\n"
		"pool = 203.0.113.0/26\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n"
		"pool6 = 2001:db8:1::/64\n"
		"[service b]\n"
		"name = b.example.test\n"
		"pool = 203.0.113.64/26\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n"
		"pool6 = 2001:db8:2::/64\n"
		"honeypot6 = 2001:db8::20\n"
		"[service c]\n"
		"name = c.example.test\n"
		"pool = 203.0.113.128/26\n"
		"server = 192.0.2.10\n"
		"server6 = 2001:db8::10\n"
		"honeypot = 192.0.2.20\n"
		"honeypot6 = 2001:db8::20\n",
		"t.conf:5: [service a]: missing key 'server6' (required with 'pool6')",
		"t.conf:5: [service a]: missing key 'honeypot6' (required with 'pool6')",
		"t.conf:11: [service b]: missing key 'server6' (required with 'pool6')",
		"t.conf:22: [service c]: key 'server6' requires 'pool6'",
		"t.conf:24: [service c]: key 'honeypot6' requires 'pool6'");
}

static void test_lines_that_are_not_key_value(void **state)
{
	(void)state;
	EXPECT_ERRORS(
		"listen = 127.0.0.1\n"
		"[dns]\n"
		"listen = 127.0.0.1\n"
		"zone = example.test\n"
		"zonefile = /z\n"
		"just some words\n"
		"= 5\n"
		"]\n"
		"\x1b[1m\n"
		"[service a]\n"
		"name = a.example.test\n"
		"pool = 203.0.113.0/25\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n",
		"t.conf:1: key 'listen' outside of any section",
		"t.conf:6: unrecognised line 'just some words': expected [section], key = value or a comment",
		"t.conf:7: unrecognised line '= 5': expected [section], key = value or a comment",
		"t.conf:8: unrecognised line ']': expected [section], key = value or a comment",
		"t.conf:9: unrecognised line '\\x1b[1m': expected [section], key = value or a comment");
}

static void test_nul_bytes_are_errors(void **state)
{
	(void)state;
	static const char text[] =
		"[dns]\n"
		"listen = 127.0.0.1\n"
		"zone = example.test\0evil.test\n"
		"zonefile = /z\n"
		"[service a]\n"
		"name = a.example.test\n"
		"pool = 203.0.113.0/25\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n"
		"\0";

	expect_errors_n(text, sizeof(text) - 1, (const char *const[]){
		"t.conf:3: NUL byte in line",
		"t.conf:1: [dns]: missing key 'zone'",
		"t.conf:10: NUL byte in line",
		NULL });
}

static void test_long_lines(void **state)
{
	(void)state;
	static const char head[] =
		"[dns]\n"
		"listen = 127.0.0.1\n"
		"zone = example.test\n"
		"zonefile = /z\n"
		"[service a]\n"
		"name = a.example.test\n"
		"pool = 203.0.113.0/25\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n";
	size_t hl = strlen(head);
	char *text = malloc(hl + 4097 + 2);
	struct config_errors errs = { 0 };
	struct config *cfg;

	assert_non_null(text);
	memcpy(text, head, hl);
	/* a comment of exactly 4096 bytes is fine */
	text[hl] = '#';
	memset(text + hl + 1, 'x', 4095);
	text[hl + 4096] = '\n';
	assert_int_equal(parse_n("t.conf", text, hl + 4097, &cfg, &errs), 0);
	config_free(cfg);

	/* one more byte is not, even without a newline at the end */
	text[hl + 4096] = 'x';
	expect_errors_n(text, hl + 4097, (const char *const[]){
		"t.conf:10: line longer than 4096 bytes", NULL });
	text[hl + 4097] = '\n';
	expect_errors_n(text, hl + 4098, (const char *const[]){
		"t.conf:10: line longer than 4096 bytes", NULL });
	free(text);
	config_errors_free(&errs);
}

static void test_long_values_are_cut_in_messages(void **state)
{
	(void)state;
	char value[300], want[512];
	unsigned line;
	char *text;

	memset(value, '9', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	text = build("[dns]", "ttl", value, &line);
	snprintf(want, sizeof(want),
		 "t.conf:%u: key 'ttl' value '%.100s...': expected an integer 0-86400",
		 line, value);
	EXPECT_ERRORS(text, want);
	free(text);
}

static void test_dname_length_limits(void **state)
{
	(void)state;
	static const char fmt[] =
		"[dns]\n"
		"listen = 127.0.0.1\n"
		"zone = %s\n"
		"zonefile = /z\n"
		"[service a]\n"
		"name = %s\n"
		"pool = 203.0.113.0/25\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n";
	char label63[64], name[300], lower[300], longer[310];
	char text[2048], want[1024];
	struct config *cfg;

	memset(label63, 'A', 63);
	label63[63] = '\0';
	/* 63 + 1 + 63 + 1 + 63 + 1 + 48 + 13 = 253 characters */
	snprintf(name, sizeof(name), "%s.%s.%s.%.48s.example.test", label63,
		 label63, label63, label63);
	assert_int_equal(strlen(name), 253);
	for (size_t i = 0; i <= strlen(name); i++)
		lower[i] = name[i] == 'A' ? 'a' : name[i];
	strcat(lower, ".");

	/* the longest name, with or without its trailing dot */
	snprintf(text, sizeof(text), fmt, name, lower);
	cfg = parse_ok(text);
	assert_string_equal(cfg->zone, lower);
	assert_string_equal(cfg->services[0].name, lower);
	config_free(cfg);

	/* one more character is too long, whether a dot follows or not */
	snprintf(longer, sizeof(longer), "x%s", name);
	snprintf(text, sizeof(text), fmt, longer, "example.test");
	snprintf(want, sizeof(want),
		 "t.conf:3: key 'zone' value '%.100s...': expected a domain name: labels of 1-63 characters A-Z a-z 0-9 - _, at most 253 characters",
		 longer);
	EXPECT_ERRORS(text, want);

	strcat(longer, ".");
	snprintf(text, sizeof(text), fmt, "example.test", longer);
	snprintf(want, sizeof(want),
		 "t.conf:6: key 'name' value '%.100s...': expected a domain name: labels of 1-63 characters A-Z a-z 0-9 - _, at most 253 characters",
		 longer);
	EXPECT_ERRORS(text, want);
}

static void test_all_errors_are_reported(void **state)
{
	(void)state;
	EXPECT_ERRORS(
		"[daemon]\n"
		"table = 9\n"
		"[dns]\n"
		"listen = 127.0.0.1\n"
		"zone = example.test\n"
		"zonefile = /z\n"
		"ttl = none\n"
		"tcp_clients = many\n"
		"bogus\n"
		"[service a]\n"
		"name = a.example.test\n"
		"pool = 203.0.113.1/24\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n"
		"window = 0\n"
		"[service b]\n"
		"name = a.example.test\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n",
		"t.conf:2: key 'table' value '9': expected 1-31 characters A-Z a-z 0-9 _ -, starting with a letter",
		"t.conf:7: key 'ttl' value 'none': expected an integer 0-86400",
		"t.conf:8: key 'tcp_clients' value 'many': expected an integer 1-65536",
		"t.conf:9: unrecognised line 'bogus': expected [section], key = value or a comment",
		"t.conf:12: key 'pool' value '203.0.113.1/24': expected a network prefix such as 203.0.113.0/25",
		"t.conf:15: key 'window' value '0': expected an integer 1-86400",
		"t.conf:16: [service b]: missing key 'pool'",
		"t.conf:17: [service b]: name 'a.example.test.' is already used by [service a] (line 11)");
}

static void test_errors_are_capped(void **state)
{
	(void)state;
	struct config_errors errs = { 0 };
	struct config *cfg;
	char *text = NULL, want[128];
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);

	assert_non_null(f);
	for (int i = 0; i < 3 * MAX_ERRORS; i++)
		fprintf(f, "junk %d\n", i);
	fclose(f);
	assert_int_equal(parse(text, &cfg, &errs), -EINVAL);
	assert_null(cfg);
	assert_int_equal(errs.n, MAX_ERRORS + 1);
	assert_string_equal(errs.msg[0],
			    "t.conf:1: unrecognised line 'junk 0': expected [section], key = value or a comment");
	snprintf(want, sizeof(want),
		 "t.conf:%d: too many errors (more than %d), giving up",
		 MAX_ERRORS + 1, MAX_ERRORS);
	assert_string_equal(errs.msg[MAX_ERRORS], want);
	config_errors_free(&errs);
	free(text);
}

static void test_at_most_max_services(void **state)
{
	(void)state;
	struct config_errors errs = { 0 };
	struct config *cfg;
	char *text = NULL, want[128];
	size_t size = 0;
	unsigned line = 4, last_header = 0;
	FILE *f = open_memstream(&text, &size);

	assert_non_null(f);
	fprintf(f, "[dns]\nlisten = 127.0.0.1\nzone = example.test\nzonefile = /z\n");
	for (int i = 0; i <= CONFIG_MAX_SERVICES; i++) {
		fprintf(f, "[service s%d]\nname = s%d.example.test\n"
			"pool = 10.%d.%d.0/24\nserver = 192.0.2.10\n"
			"honeypot = 192.0.2.20\n", i, i, i / 256, i % 256);
		last_header = line + 1;
		line += 5;
	}
	fclose(f);
	/* the first CONFIG_MAX_SERVICES are fine */
	assert_int_equal(parse_n("t.conf", text, (size_t)(strstr(text, "[service s256]") - text),
				 &cfg, &errs), 0);
	assert_int_equal(cfg->n_services, CONFIG_MAX_SERVICES);
	assert_int_equal(config_find_service(cfg, "s255.example.test"), 255);
	config_free(cfg);

	snprintf(want, sizeof(want), "t.conf:%u: too many services (at most %d)",
		 last_header, CONFIG_MAX_SERVICES);
	EXPECT_ERRORS(text, want);
	free(text);
	config_errors_free(&errs);
}

static void test_relative_zonefile_is_resolved(void **state)
{
	(void)state;
	static const struct {
		const char *file, *zonefile, *want;
	} cases[] = {
		{ "/etc/choreo/choreo.conf", "example.test.zone",
		  "/etc/choreo/example.test.zone" },
		{ "/etc/choreo/choreo.conf", "zones/x.zone",
		  "/etc/choreo/zones/x.zone" },
		{ "/etc/choreo/choreo.conf", "../x.zone", "/etc/choreo/../x.zone" },
		{ "/etc/choreo/choreo.conf", "/var/lib/x.zone", "/var/lib/x.zone" },
		{ "conf/choreo.conf", "x.zone", "conf/x.zone" },
		{ "./choreo.conf", "x.zone", "./x.zone" },
		{ "choreo.conf", "x.zone", "x.zone" },
		{ "/choreo.conf", "x.zone", "/x.zone" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config_errors errs = { 0 };
		struct config *cfg = NULL;
		unsigned line;
		char *text = build("[dns]", "zonefile", cases[i].zonefile, &line);

		assert_int_equal(parse_n(cases[i].file, text, strlen(text),
					 &cfg, &errs), 0);
		assert_string_equal(cfg->zonefile, cases[i].want);
		assert_string_equal(cfg->path, cases[i].file);
		config_free(cfg);
		free(text);
	}
}

static void test_find_service(void **state)
{
	(void)state;
	struct config *cfg = parse_ok(
		"[dns]\n"
		"listen = 127.0.0.1\n"
		"zone = example.test\n"
		"zonefile = /z\n"
		"[service apex]\n"
		"name = example.test\n"
		"pool = 203.0.113.0/25\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n"
		"[service www]\n"
		"name = www.example.test\n"
		"pool = 203.0.113.128/25\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n");

	assert_int_equal(config_find_service(cfg, "example.test"), 0);
	assert_int_equal(config_find_service(cfg, "EXAMPLE.test."), 0);
	assert_int_equal(config_find_service(cfg, "www.example.test"), 1);
	assert_int_equal(config_find_service(cfg, "www.example.test."), 1);
	assert_int_equal(config_find_service(cfg, "WwW.ExAmPlE.TeSt"), 1);
	assert_int_equal(config_find_service(cfg, "ww.example.test"), -1);
	assert_int_equal(config_find_service(cfg, "www.example.test.."), -1);
	assert_int_equal(config_find_service(cfg, "www.example"), -1);
	assert_int_equal(config_find_service(cfg, "a.www.example.test"), -1);
	assert_int_equal(config_find_service(cfg, ""), -1);
	assert_int_equal(config_find_service(cfg, "."), -1);
	assert_int_equal(config_find_service(cfg, NULL), -1);
	assert_int_equal(config_find_service(NULL, "www.example.test"), -1);
	config_free(cfg);
}

static void test_free_functions_accept_null(void **state)
{
	(void)state;
	struct config_errors errs = { 0 };

	config_free(NULL);
	config_errors_free(NULL);
	config_errors_free(&errs);
	config_errors_free(&errs);
}

static void test_pool_iterator(void **state)
{
	(void)state;
	static const struct {
		size_t service;
		int family;
	} want[] = {
		{ 0, AF_INET }, { 0, AF_INET6 }, { 1, AF_INET }, { 2, AF_INET },
		{ 2, AF_INET6 },
	};
	struct config *cfg = parse_ok(
		"[dns]\n"
		"listen = 127.0.0.1\n"
		"zone = example.test\n"
		"zonefile = /z\n"
		"[service a]\n"
		"name = a.example.test\n"
		"pool = 203.0.113.0/26\n"
		"pool6 = 2001:db8:1::/64\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n"
		"server6 = 2001:db8::10\n"
		"honeypot6 = 2001:db8::20\n"
		"[service b]\n"
		"name = b.example.test\n"
		"pool = 203.0.113.64/26\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n"
		"[service c]\n"
		"name = c.example.test\n"
		"pool = 203.0.113.128/26\n"
		"pool6 = 2001:db8:3::/64\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n"
		"server6 = 2001:db8::10\n"
		"honeypot6 = 2001:db8::20\n");
	const struct config *none = NULL;
	struct config empty = { 0 };
	size_t n = 0;

	/* each service in order, IPv4 first, IPv6 only with pool6 */
	config_for_each_pool(cfg, it) {
		const struct config_service *svc;

		assert_true(n < sizeof(want) / sizeof(want[0]));
		svc = &cfg->services[want[n].service];
		assert_int_equal(it.service, want[n].service);
		assert_int_equal(it.family, want[n].family);
		assert_ptr_equal(it.svc, svc);
		assert_ptr_equal(it.pool, it.family == AF_INET ? &svc->pool
							      : &svc->pool6);
		assert_int_equal(it.pool->family, it.family);
		n++;
	}
	assert_int_equal(n, sizeof(want) / sizeof(want[0]));

	/* a configuration without pools, or none at all */
	n = 0;
	config_for_each_pool(&empty, it)
		n++;
	config_for_each_pool(none, it)
		n++;
	assert_int_equal(n, 0);

	/* the last service without pool6 ends the walk on its IPv4 pool */
	cfg->n_services = 2;
	config_for_each_pool(cfg, it)
		n++;
	assert_int_equal(n, 3);
	cfg->n_services = 3;
	config_free(cfg);
}

static char tmpdir[64];

static char *write_file(const char *name, const char *text, size_t len,
			mode_t mode)
{
	char *path;
	int fd;

	assert_true(asprintf(&path, "%s/%s", tmpdir, name) > 0);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

static int make_tmpdir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_config.XXXXXX");
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

static void test_load_reads_the_file(void **state)
{
	(void)state;
	struct config_errors errs = { 0 };
	struct config *cfg;
	unsigned line;
	char *text = build("[dns]", "zonefile", "example.test.zone", &line);
	char *path = write_file("choreo.conf", text, strlen(text), 0644);
	char want[256];

	assert_int_equal(config_load(path, &cfg, &errs), 0);
	assert_int_equal(errs.n, 0);
	assert_string_equal(cfg->path, path);
	snprintf(want, sizeof(want), "%s/example.test.zone", tmpdir);
	assert_string_equal(cfg->zonefile, want);
	config_free(cfg);
	free(path);
	free(text);

	/* errors carry the path given */
	path = write_file("bad.conf", "[dns]\nttl = x\n", 14, 0644);
	assert_int_equal(config_load(path, &cfg, &errs), -EINVAL);
	assert_null(cfg);
	assert_true(errs.n >= 1);
	snprintf(want, sizeof(want),
		 "%s:2: key 'ttl' value 'x': expected an integer 0-86400", path);
	assert_string_equal(errs.msg[0], want);
	config_errors_free(&errs);
	free(path);
}

static void test_load_reports_open_errors(void **state)
{
	(void)state;
	struct config_errors errs = { 0 };
	struct config *cfg = (struct config *)&errs;
	char *path, want[256];

	assert_true(asprintf(&path, "%s/missing.conf", tmpdir) > 0);
	assert_int_equal(config_load(path, &cfg, &errs), -ENOENT);
	assert_null(cfg);
	assert_int_equal(errs.n, 1);
	snprintf(want, sizeof(want), "%s: cannot open: %s", path,
		 strerror(ENOENT));
	assert_string_equal(errs.msg[0], want);
	config_errors_free(&errs);
	free(path);
}

static void test_load_refuses_large_files(void **state)
{
	(void)state;
	struct config_errors errs = { 0 };
	struct config *cfg;
	size_t len = CONFIG_MAX_FILE + 1;
	char *text = malloc(len), *path, want[256];

	assert_non_null(text);
	memset(text, '#', len);
	path = write_file("large.conf", text, len, 0644);
	assert_int_equal(config_load(path, &cfg, &errs), -EFBIG);
	assert_null(cfg);
	assert_int_equal(errs.n, 1);
	snprintf(want, sizeof(want), "%s: too large (%zu bytes, at most %d)",
		 path, len, CONFIG_MAX_FILE);
	assert_string_equal(errs.msg[0], want);
	config_errors_free(&errs);
	free(path);

	/* exactly the limit is read and parsed */
	path = write_file("limit.conf", text, CONFIG_MAX_FILE, 0644);
	assert_int_equal(config_load(path, &cfg, &errs), -EINVAL);
	assert_non_null(strstr(errs.msg[0], "line longer than"));
	config_errors_free(&errs);
	free(path);
	free(text);
}

static void test_load_refuses_world_writable_files(void **state)
{
	(void)state;
	struct config_errors errs = { 0 };
	struct config *cfg;
	unsigned line;
	char *text = build("[dns]", "ttl", "5", &line);
	char *path = write_file("open.conf", text, strlen(text), 0666);
	char want[256];

	assert_int_equal(config_load(path, &cfg, &errs), -EPERM);
	assert_null(cfg);
	assert_int_equal(errs.n, 1);
	snprintf(want, sizeof(want),
		 "%s: writable by any user (mode 0666); refusing it", path);
	assert_string_equal(errs.msg[0], want);
	config_errors_free(&errs);
	free(path);
	free(text);
}

static void test_load_reads_a_pipe(void **state)
{
	(void)state;
	struct config_errors errs = { 0 };
	struct config *cfg;
	unsigned line;
	char *text = build("[dns]", "ttl", "3", &line), *path;
	int p[2];

	/* fstat says 0 bytes for a pipe: it is read to its end */
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], text, strlen(text)), (ssize_t)strlen(text));
	close(p[1]);
	assert_true(asprintf(&path, "/proc/self/fd/%d", p[0]) > 0);
	assert_int_equal(config_load(path, &cfg, &errs), 0);
	assert_int_equal(errs.n, 0);
	assert_int_equal(cfg->ttl, 3);
	config_free(cfg);
	close(p[0]);
	free(path);
	free(text);
}

/* Issue 9: who may scope a window, how long windows last, how the kernel
 * refreshes them. */
static void test_exposure_keys(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = parse_ok(
		"[daemon]\n"
		"element_refresh = readd\n"
		"[dns]\n"
		"listen = 127.0.0.1\n"
		"zone = example.test\n"
		"zonefile = /z\n"
		"ttl = 5\n"
		"ecs_resolvers = 198.51.100.10, 198.51.100.128/25 , 2001:db8:51::/48\n"
		"ecs_prefix4 = 20\n"
		"ecs_prefix6 = 64\n"
		"[service a]\n"
		"name = a.example.test\n"
		"pool = 203.0.113.0/25\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n"
		"window = 5\n"
		"grace = 0\n");
	assert_int_equal(cfg->refresh, CONFIG_REFRESH_READD);
	assert_int_equal(cfg->n_ecs_resolvers, 3);
	assert_int_equal(cfg->ecs_resolvers[0].len, 32);
	assert_int_equal(cfg->ecs_resolvers[1].len, 25);
	assert_int_equal(cfg->ecs_resolvers[2].family, AF_INET6);
	assert_int_equal(cfg->ecs_prefix4, 20);
	assert_int_equal(cfg->ecs_prefix6, 64);
	assert_int_equal(cfg->services[0].grace, 0);
	config_free(cfg);

	/* the defaults: no resolver trusted, /24 and /56, 2 s of grace */
	cfg = parse_ok(
		"[dns]\n"
		"listen = 127.0.0.1\n"
		"zone = example.test\n"
		"zonefile = /z\n"
		"[service a]\n"
		"name = a.example.test\n"
		"pool = 203.0.113.0/25\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n");
	assert_int_equal(cfg->refresh, CONFIG_REFRESH_AUTO);
	assert_int_equal(cfg->n_ecs_resolvers, 0);
	assert_int_equal(cfg->ecs_prefix4, 24);
	assert_int_equal(cfg->ecs_prefix6, 56);
	assert_int_equal(cfg->services[0].grace, 2);
	config_free(cfg);

	EXPECT_ERRORS(
		"[daemon]\n"
		"element_refresh = sometimes\n"
		"[dns]\n"
		"listen = 127.0.0.1\n"
		"zone = example.test\n"
		"zonefile = /z\n"
		"ttl = 10\n"
		"ecs_resolvers = 198.51.100.10, resolver.example\n"
		"ecs_prefix4 = 7\n"
		"ecs_prefix6 = 129\n"
		"[service a]\n"
		"name = a.example.test\n"
		"pool = 203.0.113.0/25\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n"
		"window = 9\n"
		"grace = 61\n",
		"t.conf:2: key 'element_refresh' value 'sometimes': expected auto, kernel or readd",
		"t.conf:8: key 'ecs_resolvers' value 'resolver.example': expected IPv4 or IPv6 addresses or prefixes, such as 198.51.100.10 or 2001:db8::/48",
		"t.conf:9: key 'ecs_prefix4' value '7': expected an integer 8-32",
		"t.conf:10: key 'ecs_prefix6' value '129': expected an integer 16-128",
		"t.conf:17: key 'grace' value '61': expected an integer 0-60",
		"t.conf:16: [service a]: window 9 is shorter than [dns] ttl 10: a resolver could hand out the address after its window closed; make window at least ttl");
	/* a window refused for its value is not compared with the ttl */
	EXPECT_ERRORS(
		"[dns]\n"
		"listen = 127.0.0.1\n"
		"zone = example.test\n"
		"zonefile = /z\n"
		"ttl = 10\n"
		"[service a]\n"
		"name = a.example.test\n"
		"pool = 203.0.113.0/25\n"
		"server = 192.0.2.10\n"
		"honeypot = 192.0.2.20\n"
		"window = 0\n",
		"t.conf:11: key 'window' value '0': expected an integer 1-86400");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_design_example_parses),
		cmocka_unit_test(test_defaults_of_optional_keys),
		cmocka_unit_test(test_every_key_set_to_its_limits),
		cmocka_unit_test(test_exposure_keys),
		cmocka_unit_test(test_window_defaults_to_ttl_given_after_the_service),
		cmocka_unit_test(test_names_are_normalised),
		cmocka_unit_test(test_syntax_comments_whitespace_crlf_bom),
		cmocka_unit_test(test_listen_forms_and_ports),
		cmocka_unit_test(test_listen_at_most_max_addresses),
		cmocka_unit_test(test_bad_values_name_key_value_and_range),
		cmocka_unit_test(test_bad_value_message_example),
		cmocka_unit_test(test_control_path_fits_a_unix_socket),
		cmocka_unit_test(test_unknown_key_and_section),
		cmocka_unit_test(test_bad_section_headers),
		cmocka_unit_test(test_duplicate_keys_and_sections),
		cmocka_unit_test(test_two_services_with_the_same_name),
		cmocka_unit_test(test_service_name_outside_the_zone),
		cmocka_unit_test(test_overlapping_pools),
		cmocka_unit_test(test_pool_of_listen_addresses_only),
		cmocka_unit_test(test_missing_keys_and_sections),
		cmocka_unit_test(test_ipv6_keys_go_with_pool6),
		cmocka_unit_test(test_lines_that_are_not_key_value),
		cmocka_unit_test(test_nul_bytes_are_errors),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_long_values_are_cut_in_messages),
		cmocka_unit_test(test_dname_length_limits),
		cmocka_unit_test(test_all_errors_are_reported),
		cmocka_unit_test(test_errors_are_capped),
		cmocka_unit_test(test_at_most_max_services),
		cmocka_unit_test(test_relative_zonefile_is_resolved),
		cmocka_unit_test(test_find_service),
		cmocka_unit_test(test_free_functions_accept_null),
		cmocka_unit_test(test_pool_iterator),
		cmocka_unit_test(test_load_reads_the_file),
		cmocka_unit_test(test_load_reports_open_errors),
		cmocka_unit_test(test_load_refuses_large_files),
		cmocka_unit_test(test_load_refuses_world_writable_files),
		cmocka_unit_test(test_load_reads_a_pipe),
	};

	return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
