// SPDX-License-Identifier: MIT
/* Unit tests for the gateway's table as data (src/gw_policy.c): the rules a
 * configuration produces, printed and checked, without a kernel. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>
#include "cmocka_analyzer.h"

#include "config.h"
#include "gw_policy.h"

static const char conf[] =
	"[dns]\n"
	"listen = 203.0.113.53:53, [2001:db8::53]:53\n"
	"zone = example.test\n"
	"zonefile = /z\n"
	"[service www]\n"
	"name = www.example.test\n"
	"pool = 203.0.113.0/25\n"
	"pool6 = 2001:db8:1::/64\n"
	"server = 192.0.2.10\n"
	"honeypot = 192.0.2.20\n"
	"server6 = 2001:db8:2::10\n"
	"honeypot6 = 2001:db8:2::20\n"
	"binding = 600\n"
	"max_bindings = 1000\n"
	"max_asked = 500\n"
	"[service mail]\n"
	"name = mail.example.test\n"
	"pool = 198.51.100.0/24\n"
	"server = 192.0.2.25\n"
	"honeypot = 192.0.2.26\n"
	"binding = 30\n"
	"max_open = 5\n";

static struct config *parse(const char *text)
{
	struct config_errors errs = { 0 };
	struct config *cfg = NULL;
	int ret = config_parse("t.conf", text, strlen(text), &cfg, &errs);

	for (size_t i = 0; i < errs.n; i++)
		print_message("unexpected: %s\n", errs.msg[i]);
	assert_int_equal(ret, 0);
	config_errors_free(&errs);
	return cfg;
}

static struct config *load(void)
{
	return parse(conf);
}

/* The whole table as rules, one line each, in order. */
static const char *const want_rules[] = {
	"ip prerouting: daddr 203.0.113.53/32 accept",
	"ip6 prerouting: daddr 2001:db8::53/128 accept",
	"ip prerouting: daddr 203.0.113.0/25 jump www_chain4",
	"ip6 prerouting: daddr 2001:db8:1::/64 jump www_chain6",
	"ip prerouting: daddr 198.51.100.0/24 jump mail_chain4",
	"ip www_chain4: saddr @quarantine4 counter www_honeypot4 dnat to 192.0.2.20",
	"ip www_chain4: saddr . daddr @www_bound4 update saddr . daddr @www_bound4 timeout 600000ms counter www_server4 dnat to 192.0.2.10",
	"ip www_chain4: saddr . daddr @www_asked4 add saddr . daddr @www_bound4 timeout 600000ms counter www_learned4",
	"ip www_chain4: saddr . daddr @www_asked4 counter www_window4 counter www_server4 dnat to 192.0.2.10",
	"ip www_chain4: saddr . daddr @www_scoped4 add saddr . daddr @www_bound4 timeout 600000ms counter www_learned4",
	"ip www_chain4: saddr . daddr @www_scoped4 counter www_window4 counter www_server4 dnat to 192.0.2.10",
	"ip www_chain4: daddr @www_open4 add saddr . daddr @www_bound4 timeout 600000ms counter www_learned4",
	"ip www_chain4: daddr @www_open4 counter www_window4 counter www_server4 dnat to 192.0.2.10",
	"ip www_chain4: counter www_honeypot4 dnat to 192.0.2.20",
	"ip6 www_chain6: saddr @quarantine6 counter www_honeypot6 dnat to 2001:db8:2::20",
	"ip6 www_chain6: saddr . daddr @www_bound6 update saddr . daddr @www_bound6 timeout 600000ms counter www_server6 dnat to 2001:db8:2::10",
	"ip6 www_chain6: saddr . daddr @www_asked6 add saddr . daddr @www_bound6 timeout 600000ms counter www_learned6",
	"ip6 www_chain6: saddr . daddr @www_asked6 counter www_window6 counter www_server6 dnat to 2001:db8:2::10",
	"ip6 www_chain6: saddr . daddr @www_scoped6 add saddr . daddr @www_bound6 timeout 600000ms counter www_learned6",
	"ip6 www_chain6: saddr . daddr @www_scoped6 counter www_window6 counter www_server6 dnat to 2001:db8:2::10",
	"ip6 www_chain6: daddr @www_open6 add saddr . daddr @www_bound6 timeout 600000ms counter www_learned6",
	"ip6 www_chain6: daddr @www_open6 counter www_window6 counter www_server6 dnat to 2001:db8:2::10",
	"ip6 www_chain6: counter www_honeypot6 dnat to 2001:db8:2::20",
	"ip mail_chain4: saddr @quarantine4 counter mail_honeypot4 dnat to 192.0.2.26",
	"ip mail_chain4: saddr . daddr @mail_bound4 update saddr . daddr @mail_bound4 timeout 30000ms counter mail_server4 dnat to 192.0.2.25",
	"ip mail_chain4: saddr . daddr @mail_asked4 add saddr . daddr @mail_bound4 timeout 30000ms counter mail_learned4",
	"ip mail_chain4: saddr . daddr @mail_asked4 counter mail_window4 counter mail_server4 dnat to 192.0.2.25",
	"ip mail_chain4: saddr . daddr @mail_scoped4 add saddr . daddr @mail_bound4 timeout 30000ms counter mail_learned4",
	"ip mail_chain4: saddr . daddr @mail_scoped4 counter mail_window4 counter mail_server4 dnat to 192.0.2.25",
	"ip mail_chain4: daddr @mail_open4 add saddr . daddr @mail_bound4 timeout 30000ms counter mail_learned4",
	"ip mail_chain4: daddr @mail_open4 counter mail_window4 counter mail_server4 dnat to 192.0.2.25",
	"ip mail_chain4: counter mail_honeypot4 dnat to 192.0.2.26",
};

static void test_rules(void **state)
{
	struct config *cfg = load();
	struct gw_table *t;
	char buf[512];
	size_t n_want = sizeof(want_rules) / sizeof(want_rules[0]);
	bool same = true;

	(void)state;
	assert_int_equal(gw_policy_build(cfg, &t), 0);
	for (size_t i = 0; i < t->n_rules; i++) {
		gw_rule_format(&t->rules[i], buf, sizeof(buf));
		print_message("%s\n", buf);
		if (i >= n_want || strcmp(buf, want_rules[i]) != 0) {
			print_error("rule %zu: want %s\n", i, i < n_want ? want_rules[i] : "(none)");
			same = false;
		}
	}
	assert_int_equal(t->n_rules, n_want);
	assert_true(same);
	gw_table_free(t);
	config_free(cfg);
}

static void test_objects(void **state)
{
	struct config *cfg = load();
	struct gw_table *t;
	const struct gw_set *bound = NULL, *scoped = NULL, *open = NULL, *q6 = NULL;

	(void)state;
	assert_int_equal(gw_policy_build(cfg, &t), 0);
	/* quarantine4/6, and 6 sets and 5 counters for each of the 3 pools */
	assert_int_equal(t->n_sets, 2 + 3 * 6);
	assert_int_equal(t->n_counters, 3 * 5);
	assert_int_equal(t->n_chains, 1 + 3);
	assert_true(t->chains[0].base);
	assert_string_equal(t->chains[0].name, "prerouting");
	for (size_t i = 0; i < t->n_sets; i++) {
		if (!strcmp(t->sets[i].name, "www_bound6"))
			bound = &t->sets[i];
		if (!strcmp(t->sets[i].name, "www_scoped4"))
			scoped = &t->sets[i];
		if (!strcmp(t->sets[i].name, "mail_open4"))
			open = &t->sets[i];
		if (!strcmp(t->sets[i].name, "quarantine6"))
			q6 = &t->sets[i];
	}
	assert_non_null(bound);
	assert_non_null(scoped);
	assert_non_null(open);
	assert_non_null(q6);
	assert_true(bound->pair && bound->dynamic && !bound->interval);
	assert_int_equal(bound->size, 1000);
	assert_int_equal(bound->family, AF_INET6);
	assert_true(scoped->pair && scoped->interval && !scoped->dynamic);
	assert_true(!open->pair && !open->interval && !open->dynamic);
	/* every set has a size (gw_policy.h) */
	assert_int_equal(open->size, GW_OPEN_FACTOR * 5);
	assert_int_equal(scoped->size, 500);
	assert_true(q6->interval && !q6->pair && q6->family == AF_INET6);
	assert_int_equal(q6->size, GW_QUARANTINE_SIZE);
	for (size_t i = 0; i < t->n_sets; i++) {
		assert_true(t->sets[i].size > 0);
		if (!strcmp(t->sets[i].name, "www_asked4"))
			assert_int_equal(t->sets[i].size, 500);
		if (!strcmp(t->sets[i].name, "mail_asked4"))
			assert_int_equal(t->sets[i].size, CONFIG_DEFAULT_MAX_ASKED);
		if (!strcmp(t->sets[i].name, "mail_claims4"))
			assert_int_equal(t->sets[i].size, GW_DYNAMIC_SIZE);
	}
	/* what adoption keeps and what it drops */
	assert_true(gw_table_has(t, GW_TYPE_SET, "www_asked6"));
	assert_true(gw_table_has(t, GW_TYPE_COUNTER, "mail_window4"));
	assert_true(gw_table_has(t, GW_TYPE_CHAIN, "mail_chain4"));
	assert_false(gw_table_has(t, GW_TYPE_SET, "mail_open6"));   /* no pool6 */
	assert_false(gw_table_has(t, GW_TYPE_SET, "old_open4"));    /* a removed service */
	assert_false(gw_table_has(t, GW_TYPE_COUNTER, "www_open4")); /* a set, not a counter */
	gw_table_free(t);
	config_free(cfg);
}

/* With window_claims the open and scoped windows admit their first N new
 * sources only; the asker's own entry never takes a claim. */
static void test_claims_rows(void **state)
{
	static const char *const want[] = {
		"ip mail_chain4: saddr @quarantine4 counter mail_honeypot4 dnat to 192.0.2.26",
		"ip mail_chain4: saddr . daddr @mail_bound4 update saddr . daddr @mail_bound4 timeout 30000ms counter mail_server4 dnat to 192.0.2.25",
		"ip mail_chain4: saddr . daddr @mail_asked4 add saddr . daddr @mail_bound4 timeout 30000ms counter mail_learned4",
		"ip mail_chain4: saddr . daddr @mail_asked4 counter mail_window4 counter mail_server4 dnat to 192.0.2.25",
		"ip mail_chain4: saddr . daddr @mail_scoped4 claim daddr @mail_claims4 burst 3 timeout 9000ms add saddr . daddr @mail_claimed4 timeout 9000ms",
		"ip mail_chain4: daddr @mail_open4 claim daddr @mail_claims4 burst 3 timeout 9000ms add saddr . daddr @mail_claimed4 timeout 9000ms",
		"ip mail_chain4: saddr . daddr @mail_claimed4 add saddr . daddr @mail_bound4 timeout 30000ms counter mail_learned4",
		"ip mail_chain4: saddr . daddr @mail_claimed4 counter mail_claim4 counter mail_window4 counter mail_server4 dnat to 192.0.2.25",
		"ip mail_chain4: counter mail_honeypot4 dnat to 192.0.2.26",
	};
	struct config *cfg = load();
	struct gw_table *t;
	struct change c = { .kind = CHANGE_OPEN, .family = AF_INET, .service = 1,
			    .ms = 7000 };
	struct gw_elem e;
	size_t k = 0;
	char buf[512];

	(void)state;
	cfg->services[1].window_claims = 3;
	cfg->services[1].window = 7;
	cfg->services[1].grace = 2;
	assert_int_equal(gw_policy_build(cfg, &t), 0);
	for (size_t i = 0; i < t->n_rules; i++) {
		if (strcmp(t->rules[i].chain, "mail_chain4") != 0)
			continue;
		gw_rule_format(&t->rules[i], buf, sizeof(buf));
		print_message("%s\n", buf);
		assert_true(k < sizeof(want) / sizeof(want[0]));
		assert_string_equal(buf, want[k]);
		k++;
	}
	assert_int_equal(k, sizeof(want) / sizeof(want[0]));
	/* an open or scoped window's answer re-arms the claims of its address */
	memcpy(c.addr, "\xc6\x33\x64\x07", 4);
	assert_int_equal(gw_change_rearm(cfg, &c, &e), 1);
	assert_string_equal(e.set, "mail_claims4");
	assert_int_equal(e.key_len, 4);
	assert_memory_equal(e.key, c.addr, 4);
	c.kind = CHANGE_BIND;
	assert_int_equal(gw_change_rearm(cfg, &c, &e), 0);
	/* without claims, nothing to re-arm */
	c.kind = CHANGE_OPEN;
	c.service = 0;
	assert_int_equal(gw_change_rearm(cfg, &c, &e), 0);
	gw_table_free(t);
	config_free(cfg);
}

static void test_names_round_trip(void **state)
{
	struct config *cfg = load();
	size_t service;
	int family;
	enum gw_pool_obj obj;
	unsigned seen = 0;

	(void)state;
	config_for_each_pool(cfg, p) {
		for (int o = 0; o < GW_N_POOL_OBJ; o++) {
			char name[GW_NAME_MAX];

			gw_name(name, cfg, p.service, p.family, (enum gw_pool_obj)o);
			assert_int_equal(gw_parse_name(cfg, name, &service, &family, &obj), 0);
			assert_int_equal(service, p.service);
			assert_int_equal(family, p.family);
			assert_int_equal(obj, o);
			seen++;
		}
	}
	assert_int_equal(seen, 3 * GW_N_POOL_OBJ);
	assert_int_equal(gw_parse_name(cfg, "mail_open6", &service, &family, &obj), -ENOENT);
	assert_int_equal(gw_parse_name(cfg, "www_open", &service, &family, &obj), -ENOENT);
	assert_int_equal(gw_parse_name(cfg, "www_nothing4", &service, &family, &obj), -ENOENT);
	assert_int_equal(gw_parse_name(cfg, "prerouting", &service, &family, &obj), -ENOENT);
	assert_int_equal(gw_parse_name(cfg, "quarantine4", &service, &family, &obj), -ENOENT);
	config_free(cfg);
}

static void test_change_elems(void **state)
{
	struct config *cfg = load();
	struct change c = { .kind = CHANGE_BIND, .family = AF_INET, .src_len = 32,
			    .service = 1, .ms = 7000 };
	struct gw_elem e;

	(void)state;
	memcpy(c.addr, "\xc6\x33\x64\x07", 4);
	memcpy(c.src, "\xc6\x12\x00\x01", 4);
	assert_int_equal(gw_change_elem(cfg, &c, &e), 0);
	assert_string_equal(e.set, "mail_asked4");
	assert_int_equal(e.key_len, 8);
	assert_memory_equal(e.key, "\xc6\x12\x00\x01\xc6\x33\x64\x07", 8);
	assert_false(e.has_end);
	assert_true(e.timeout_ms == 7000);

	c.kind = CHANGE_OPEN;
	assert_int_equal(gw_change_elem(cfg, &c, &e), 0);
	assert_string_equal(e.set, "mail_open4");
	assert_int_equal(e.key_len, 4);
	assert_memory_equal(e.key, "\xc6\x33\x64\x07", 4);

	/* a client subnet as the range of its addresses */
	c.kind = CHANGE_OPEN_SCOPED;
	c.src_len = 20;
	memcpy(c.src, "\xc6\x12\x10\x00", 4);
	assert_int_equal(gw_change_elem(cfg, &c, &e), 0);
	assert_string_equal(e.set, "mail_scoped4");
	assert_true(e.has_end);
	assert_memory_equal(e.key, "\xc6\x12\x10\x00\xc6\x33\x64\x07", 8);
	assert_memory_equal(e.key_end, "\xc6\x12\x1f\xff\xc6\x33\x64\x07", 8);

	/* a relayed binding: the bound set */
	c.kind = CHANGE_LEARNED;
	c.src_len = 32;
	memcpy(c.src, "\xc6\x12\x00\x01", 4);
	assert_int_equal(gw_change_elem(cfg, &c, &e), 0);
	assert_string_equal(e.set, "mail_bound4");
	assert_false(e.has_end);

	/* a quarantine: the source prefix as a range of the quarantine set */
	c.kind = CHANGE_QUARANTINE;
	c.src_len = 28;
	memset(c.addr, 0, sizeof(c.addr));
	memcpy(c.src, "\xc6\x12\x46\x00", 4);
	assert_int_equal(gw_change_elem(cfg, &c, &e), 0);
	assert_string_equal(e.set, "quarantine4");
	assert_int_equal(e.key_len, 4);
	assert_true(e.has_end);
	assert_memory_equal(e.key, "\xc6\x12\x46\x00", 4);
	assert_memory_equal(e.key_end, "\xc6\x12\x46\x0f", 4);
	c.src_len = 0;
	assert_int_equal(gw_change_elem(cfg, &c, &e), -EINVAL);
	c.kind = CHANGE_OPEN_SCOPED;
	c.src_len = 20;
	memcpy(c.addr, "\xc6\x33\x64\x07", 4);

	/* IPv6 for a service without pool6, an unknown service or kind */
	c.family = AF_INET6;
	assert_int_equal(gw_change_elem(cfg, &c, &e), -EINVAL);
	c.family = AF_INET;
	c.service = 2;
	assert_int_equal(gw_change_elem(cfg, &c, &e), -EINVAL);
	c.service = 0;
	c.kind = 9;
	assert_int_equal(gw_change_elem(cfg, &c, &e), -EINVAL);
	config_free(cfg);
}

/* The same services on a gateway: [dns] (and its accept rules) gone. */
#define GATEWAY \
	"[daemon]\n" \
	"role = gateway\n" \
	"name = gw1\n" \
	"peer_listen = 192.0.2.1:5300\n"
#define PEERS \
	"[key 1]\n" \
	"file = /etc/choreo/psk1\n" \
	"[peer dns1]\n" \
	"role = dns\n" \
	"key = 1\n"
#define CONTROLLER \
	"[peer ctl]\n" \
	"role = controller\n" \
	"key = 1\n" \
	"address = 192.0.2.9\n"

/* conf's services, on a node with this [daemon] and these peers */
static struct config *load_as(const char *head)
{
	const char *services = strstr(conf, "[service www]");
	char text[2048];

	snprintf(text, sizeof(text), "%s%s", head, services);
	return parse(text);
}

static void rule_texts(const struct config *cfg, char (*out)[512], size_t max,
		       size_t *n)
{
	struct gw_table *t;

	assert_int_equal(gw_policy_build(cfg, &t), 0);
	assert_true(t->n_rules <= max);
	for (size_t i = 0; i < t->n_rules; i++)
		gw_rule_format(&t->rules[i], out[i], sizeof(out[i]));
	*n = t->n_rules;
	gw_table_free(t);
}

/*
 * A gateway with a controller logs each binding its kernel learns or
 * refreshes to NFLOG: every rule that adds to or updates a bound set, and
 * only those, gets the log (before the DNAT). Standalone, and a gateway
 * without a controller, make the table they made before.
 */
static void test_log_rows(void **state)
{
#define LOG5353 " log prefix \"choreo-bind\" group 5353 snaplen 64"
	static const char *const want_mail[] = {
		"ip mail_chain4: saddr @quarantine4 counter mail_honeypot4 dnat to 192.0.2.26",
		"ip mail_chain4: saddr . daddr @mail_bound4 update saddr . daddr @mail_bound4 timeout 30000ms counter mail_server4" LOG5353 " dnat to 192.0.2.25",
		"ip mail_chain4: saddr . daddr @mail_asked4 add saddr . daddr @mail_bound4 timeout 30000ms counter mail_learned4" LOG5353,
		"ip mail_chain4: saddr . daddr @mail_asked4 counter mail_window4 counter mail_server4 dnat to 192.0.2.25",
		"ip mail_chain4: saddr . daddr @mail_scoped4 add saddr . daddr @mail_bound4 timeout 30000ms counter mail_learned4" LOG5353,
		"ip mail_chain4: saddr . daddr @mail_scoped4 counter mail_window4 counter mail_server4 dnat to 192.0.2.25",
		"ip mail_chain4: daddr @mail_open4 add saddr . daddr @mail_bound4 timeout 30000ms counter mail_learned4" LOG5353,
		"ip mail_chain4: daddr @mail_open4 counter mail_window4 counter mail_server4 dnat to 192.0.2.25",
		"ip mail_chain4: counter mail_honeypot4 dnat to 192.0.2.26",
	};
	static char plain[64][512], logged[64][512];
	size_t n_want = sizeof(want_rules) / sizeof(want_rules[0]);
	size_t n_plain, n_logged, k = 0, n_log = 0;
	struct config *standalone = load();
	struct config *gw = load_as(GATEWAY PEERS);
	struct config *gw_ctl = load_as(GATEWAY PEERS CONTROLLER);
	struct config *gw_7 = load_as(GATEWAY "nflog_group = 7\n" PEERS CONTROLLER);
	struct gw_table *t;

	(void)state;
	assert_false(gw_logs_bindings(standalone));
	assert_false(gw_logs_bindings(gw));
	assert_true(gw_logs_bindings(gw_ctl));
	assert_int_equal(gw_ctl->nflog_group, CONFIG_DEFAULT_NFLOG_GROUP);

	/* without a controller: the standalone rules, but for [dns]'s two
	 * accept rules (a gateway answers no DNS) */
	rule_texts(gw, plain, 64, &n_plain);
	assert_int_equal(n_plain, n_want - 2);
	for (size_t i = 0; i < n_plain; i++)
		assert_string_equal(plain[i], want_rules[i + 2]);

	/* with one: the same rules in the same order; the log added where a
	 * bound set is written, in each of the three pools */
	rule_texts(gw_ctl, logged, 64, &n_logged);
	assert_int_equal(n_logged, n_plain);
	for (size_t i = 0; i < n_logged; i++) {
		const char *log = strstr(logged[i], LOG5353);
		bool writes_bound = strstr(plain[i], "add saddr . daddr @www_bound") ||
				    strstr(plain[i], "add saddr . daddr @mail_bound") ||
				    strstr(plain[i], "update saddr . daddr @");
		char without[512];

		print_message("%s\n", logged[i]);
		assert_int_equal(log != NULL, writes_bound);
		if (strncmp(logged[i], "ip mail_chain4:", 15) == 0) {
			assert_true(k < sizeof(want_mail) / sizeof(want_mail[0]));
			assert_string_equal(logged[i], want_mail[k]);
			k++;
		}
		if (!log) {
			assert_string_equal(logged[i], plain[i]);
			continue;
		}
		n_log++;
		snprintf(without, sizeof(without), "%.*s%s", (int)(log - logged[i]),
			 logged[i], log + strlen(LOG5353));
		assert_string_equal(without, plain[i]);
		if (strstr(logged[i], "dnat to"))   /* before the DNAT: it ends the rule */
			assert_non_null(strstr(log, " dnat to"));
	}
	assert_int_equal(k, sizeof(want_mail) / sizeof(want_mail[0]));
	assert_int_equal(n_log, 3 * 4);

	/* the action as nft.c gets it, with [daemon] nflog_group */
	assert_int_equal(gw_policy_build(gw_7, &t), 0);
	n_log = 0;
	for (size_t i = 0; i < t->n_rules; i++) {
		const struct gw_rule *r = &t->rules[i];

		for (size_t j = 0; j < r->n_act; j++) {
			if (r->act[j].kind != GW_A_LOG)
				continue;
			assert_string_equal(r->act[j].name, GW_LOG_PREFIX_BIND);
			assert_int_equal(r->act[j].group, 7);
			assert_int_equal(r->act[j].snaplen, GW_LOG_SNAPLEN);
			assert_true(GW_LOG_SNAPLEN >= 40); /* an IPv6 header */
			n_log++;
		}
	}
	assert_int_equal(n_log, 3 * 4);
	gw_table_free(t);
	config_free(gw_7);
	config_free(gw_ctl);
	config_free(gw);
	config_free(standalone);
#undef LOG5353
}

/* With window_claims, the binding is learned from claimed: that add logs;
 * the claim and the hand-over to claimed do not. */
static void test_log_claims_rows(void **state)
{
#define LOG9 " log prefix \"choreo-bind\" group 9 snaplen 64"
	static const char *const want[] = {
		"ip mail_chain4: saddr @quarantine4 counter mail_honeypot4 dnat to 192.0.2.26",
		"ip mail_chain4: saddr . daddr @mail_bound4 update saddr . daddr @mail_bound4 timeout 30000ms counter mail_server4" LOG9 " dnat to 192.0.2.25",
		"ip mail_chain4: saddr . daddr @mail_asked4 add saddr . daddr @mail_bound4 timeout 30000ms counter mail_learned4" LOG9,
		"ip mail_chain4: saddr . daddr @mail_asked4 counter mail_window4 counter mail_server4 dnat to 192.0.2.25",
		"ip mail_chain4: saddr . daddr @mail_scoped4 claim daddr @mail_claims4 burst 3 timeout 9000ms add saddr . daddr @mail_claimed4 timeout 9000ms",
		"ip mail_chain4: daddr @mail_open4 claim daddr @mail_claims4 burst 3 timeout 9000ms add saddr . daddr @mail_claimed4 timeout 9000ms",
		"ip mail_chain4: saddr . daddr @mail_claimed4 add saddr . daddr @mail_bound4 timeout 30000ms counter mail_learned4" LOG9,
		"ip mail_chain4: saddr . daddr @mail_claimed4 counter mail_claim4 counter mail_window4 counter mail_server4 dnat to 192.0.2.25",
		"ip mail_chain4: counter mail_honeypot4 dnat to 192.0.2.26",
	};
	struct config *cfg = load_as(GATEWAY "nflog_group = 9\n" PEERS CONTROLLER);
	struct gw_table *t;
	size_t k = 0;
	char buf[512];

	(void)state;
	cfg->services[1].window_claims = 3;
	cfg->services[1].window = 7;
	cfg->services[1].grace = 2;
	assert_int_equal(gw_policy_build(cfg, &t), 0);
	for (size_t i = 0; i < t->n_rules; i++) {
		if (strcmp(t->rules[i].chain, "mail_chain4") != 0)
			continue;
		gw_rule_format(&t->rules[i], buf, sizeof(buf));
		print_message("%s\n", buf);
		assert_true(k < sizeof(want) / sizeof(want[0]));
		assert_string_equal(buf, want[k]);
		k++;
	}
	assert_int_equal(k, sizeof(want) / sizeof(want[0]));
	gw_table_free(t);
	config_free(cfg);
#undef LOG9
}

/* Only a gateway's table logs: a node of another role with a controller
 * (a DNS node has none, but the check is on the role) logs nothing. */
static void test_log_roles(void **state)
{
	struct config *cfg = load_as(GATEWAY PEERS CONTROLLER);

	(void)state;
	assert_true(gw_logs_bindings(cfg));
	cfg->role = CONFIG_ROLE_DNS;
	assert_non_null(config_controller(cfg));
	assert_false(gw_logs_bindings(cfg));
	cfg->role = CONFIG_ROLE_STANDALONE;
	assert_false(gw_logs_bindings(cfg));
	config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_objects),
		cmocka_unit_test(test_claims_rows),
		cmocka_unit_test(test_names_round_trip),
		cmocka_unit_test(test_change_elems),
		cmocka_unit_test(test_log_rows),
		cmocka_unit_test(test_log_claims_rows),
		cmocka_unit_test(test_log_roles),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
