// SPDX-License-Identifier: MIT
/* The distributed mode's configuration: roles, peers, keys, slices, and the
 * checks across a deployment's files (src/config.c, src/config_set.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include "cmocka_analyzer.h"

#include "config.h"

#define SERVICES \
	"[service www]\n" \
	"name = www.example.test\n" \
	"pool = 203.0.113.0/25\n" \
	"server = 192.0.2.10\n" \
	"honeypot = 192.0.2.20\n" \
	"max_open = 16\n"

static const char gw1[] =
	"[daemon]\n"
	"role = gateway\n"
	"name = gw1\n"
	"peer_listen = 192.0.2.1:5300\n"
	"[key 1]\n"
	"file = /etc/choreo/psk1\n"
	"[peer dns1]\n"
	"role = dns\n"
	"key = 1\n"
	"from = 198.51.100.0/24\n"
	"[peer dns2]\n"
	"role = dns\n"
	"key = 1\n"
	SERVICES;

#define DNS_NODE(name, slice, share) \
	"[daemon]\n" \
	"role = dns\n" \
	"name = " name "\n" \
	"[dns]\n" \
	"listen = 198.51.100.53\n" \
	"zone = example.test\n" \
	"zonefile = /z\n" \
	"[key 1]\n" \
	"file = /etc/choreo/psk1\n" \
	"[peer gw1]\n" \
	"role = gateway\n" \
	"address = 192.0.2.1:5300\n" \
	"key = 1\n" \
	SERVICES \
	"slice = " slice "\n" \
	"share = " share "\n"

static struct config *parse_ok(const char *name, const char *text)
{
	struct config_errors errs = { 0 };
	struct config *cfg = NULL;
	int ret = config_parse(name, text, strlen(text), &cfg, &errs);

	for (size_t i = 0; i < errs.n; i++)
		print_message("unexpected: %s\n", errs.msg[i]);
	assert_int_equal(ret, 0);
	config_errors_free(&errs);
	return cfg;
}

/* The parse fails with these messages (each one a substring of one). */
static void expect(const char *text, const char *const *want, size_t n)
{
	struct config_errors errs = { 0 };
	struct config *cfg = NULL;
	bool all = true;

	assert_int_equal(config_parse("t.conf", text, strlen(text), &cfg, &errs), -EINVAL);
	for (size_t k = 0; k < n; k++) {
		bool found = false;

		for (size_t i = 0; i < errs.n && !found; i++)
			found = strstr(errs.msg[i], want[k]) != NULL;
		if (!found) {
			print_error("missing: %s\n", want[k]);
			all = false;
		}
	}
	if (!all || errs.n != n)
		for (size_t i = 0; i < errs.n; i++)
			print_message("got: %s\n", errs.msg[i]);
	assert_true(all);
	assert_int_equal(errs.n, n);
	config_errors_free(&errs);
}

static void test_roles_parse(void **state)
{
	struct config *g = parse_ok("gw1.conf", gw1);
	struct config *d = parse_ok("dns1.conf", DNS_NODE("dns1", "203.0.113.0/26", "8"));
	const struct config_peer *p;

	(void)state;
	assert_int_equal(g->role, CONFIG_ROLE_GATEWAY);
	assert_string_equal(g->name, "gw1");
	assert_int_equal(g->peer_listen_len, sizeof(struct sockaddr_in));
	assert_int_equal(g->n_peers, 2);
	assert_int_equal(g->n_keys, 1);
	assert_int_equal(g->keys[0].id, 1);
	p = config_find_peer(g, "dns1");
	assert_non_null(p);
	assert_int_equal(p->role, CONFIG_ROLE_DNS);
	assert_true(p->has_from);
	assert_int_equal(p->from.len, 24);
	assert_null(config_find_peer(g, "dns3"));
	assert_null(g->zone); /* a gateway has no [dns] */

	assert_int_equal(d->role, CONFIG_ROLE_DNS);
	assert_int_equal(d->commit_timeout, CONFIG_DEFAULT_COMMIT_TIMEOUT);
	assert_true(d->services[0].has_slice);
	assert_int_equal(d->services[0].share, 8);
	assert_int_equal(config_rotor_pool(&d->services[0], AF_INET)->len, 26);
	assert_int_equal(config_rotor_max_open(&d->services[0]), 8);
	/* a gateway draws from nothing, a standalone node from the pool */
	assert_int_equal(config_rotor_pool(&g->services[0], AF_INET)->len, 25);
	assert_int_equal(config_rotor_max_open(&g->services[0]), 16);
	config_free(g);
	config_free(d);
	/* a gateway has no [dns] ttl (it hands out none): a window shorter
	 * than the default ttl is its DNS nodes' to check, not refused here */
	{
		static const char text[] =
			"[daemon]\nrole = gateway\nname = gw1\n"
			"peer_listen = 192.0.2.1:5300\n[key 1]\nfile = /k\n"
			"[peer dns1]\nrole = dns\nkey = 1\n" SERVICES "window = 2\n";

		g = parse_ok("gw1.conf", text);
		assert_int_equal(g->services[0].window, 2);
		config_free(g);
	}
}

/* dst = src with its first old replaced by new (which must be there). */
static void replace(char *dst, size_t size, const char *src, const char *old,
		    const char *new)
{
	const char *at = strstr(src, old);

	assert_non_null(at);
	snprintf(dst, size, "%.*s%s%s", (int)(at - src), src, new, at + strlen(old));
}

static void test_role_errors(void **state)
{
	(void)state;
	/* a gateway without name, listen address or DNS peers */
	{
		static const char *const want[] = {
			"role gateway needs a 'name'",
			"role gateway needs 'peer_listen'",
			"role gateway needs at least one [peer NAME] with role dns",
		};
		expect("[daemon]\nrole = gateway\n" SERVICES, want, 3);
	}
	/* a DNS node without its slice and share, a peer without a key section */
	{
		static const char *const want[] = {
			"missing key 'slice'", "missing key 'share'",
			"[peer gw1]: key 2 has no [key 2] section",
		};
		expect("[daemon]\nrole = dns\nname = d\n[dns]\nlisten = 198.51.100.53\n"
		       "zone = example.test\nzonefile = /z\n[key 1]\nfile = /k\n"
		       "[peer gw1]\nrole = gateway\naddress = 192.0.2.1\nkey = 2\n"
		       SERVICES, want, 3);
	}
	/* on_gateway_down and gateway_deadline: their values, only on a DNS node */
	{
		static const char *const want[] = {
			"[daemon]: key 'on_gateway_down' is for role dns",
			"[daemon]: key 'gateway_deadline' is for role dns",
		};
		static const char *const bad[] = {
			"key 'on_gateway_down' value 'some': expected servfail or exclude",
			"key 'gateway_deadline' value '99'",
		};
		char text[2048];
		struct config *cfg;

		replace(text, sizeof(text), DNS_NODE("d", "203.0.113.0/26", "16"),
			"role = dns\n", "role = dns\non_gateway_down = exclude\n"
			"gateway_deadline = 500\n");
		cfg = parse_ok("t.conf", text);
		assert_int_equal(cfg->on_gateway_down, CONFIG_DOWN_EXCLUDE);
		assert_int_equal(cfg->gateway_deadline, 500);
		config_free(cfg);
		cfg = parse_ok("t.conf", DNS_NODE("d", "203.0.113.0/26", "16"));
		assert_int_equal(cfg->on_gateway_down, CONFIG_DOWN_SERVFAIL);
		assert_int_equal(cfg->gateway_deadline, CONFIG_DEFAULT_GATEWAY_DEADLINE);
		config_free(cfg);
		expect("[daemon]\nrole = gateway\nname = g\npeer_listen = 192.0.2.1\n"
		       "on_gateway_down = servfail\ngateway_deadline = 1000\n[key 1]\n"
		       "file = /k\n[peer d]\nrole = dns\nkey = 1\n" SERVICES, want, 2);
		replace(text, sizeof(text), DNS_NODE("d", "203.0.113.0/26", "16"),
			"role = dns\n", "role = dns\non_gateway_down = some\n"
			"gateway_deadline = 99\n");
		expect(text, bad, 2);
	}
	/* a slice outside the pool, a share above max_open, unknown gateways */
	{
		static const char *const want[] = {
			"slice 198.51.100.0/26 is not inside the pool 203.0.113.0/25",
			"share 17 is more than max_open 16",
			"gateways: 'gw9' is not a [peer] with role gateway",
		};
		expect(DNS_NODE("d", "198.51.100.0/26", "17") "gateways = gw1, gw9\n",
		       want, 3);
	}
	/* node keys on a standalone node; role words */
	{
		static const char *const want[] = {
			"key 'role' value 'agent': expected standalone, dns, gateway or controller",
			"key 'slice' is for role dns",
			"[peer] and [key] sections are for roles dns, gateway and controller",
		};
		expect("[daemon]\nrole = agent\n[dns]\nlisten = 198.51.100.53\n"
		       "zone = example.test\nzonefile = /z\n[key 1]\nfile = /k\n"
		       SERVICES "slice = 203.0.113.0/26\n", want, 3);
	}
	/* key ids, a peer role, a peer named like the node */
	{
		static const char *const want[] = {
			"the name of a key section is its id, a number 1-65535",
			"key 'role' value 'standalone': expected dns, gateway or controller",
			"[peer gw1]: the name of this node itself",
		};
		expect("[daemon]\nrole = gateway\nname = gw1\npeer_listen = 192.0.2.1\n"
		       "[key one]\nfile = /k\n[key 1]\nfile = /k\n"
		       "[peer dns1]\nrole = dns\nkey = 1\n"
		       "[peer gw1]\nrole = standalone\nkey = 1\n" SERVICES, want, 3);
	}
	/* the controller: who talks to whom, its address, one of it */
	{
		static const char *const want[] = {
			"[peer gw2]: a node of role gateway does not talk to one of role gateway",
			"[peer c1]: a gateway node needs the 'address' of its controller",
			"[peer c2]: 'from' is for the nodes that connect here",
			"at most one [peer NAME] with role controller (2 given)",
		};
		static const char *const want_ctl[] = {
			"[daemon]: role controller needs 'peer_listen'",
			"[peer c]: a node of role controller does not talk to one of role controller",
			"[daemon]: key 'nflog_group' is for role gateway",
		};
		struct config *cfg;

		expect("[daemon]\nrole = gateway\nname = gw1\npeer_listen = 192.0.2.1\n"
		       "[key 1]\nfile = /k\n[peer dns1]\nrole = dns\nkey = 1\n"
		       "[peer gw2]\nrole = gateway\nkey = 1\naddress = 192.0.2.2\n"
		       "[peer c1]\nrole = controller\nkey = 1\n"
		       "[peer c2]\nrole = controller\nkey = 1\naddress = 192.0.2.9\n"
		       "from = 192.0.2.9\n" SERVICES, want, 4);
		expect("[daemon]\nrole = controller\nname = c0\nnflog_group = 7\n"
		       "[key 1]\nfile = /k\n[peer d]\nrole = dns\nkey = 1\n"
		       "[peer c]\nrole = controller\nkey = 1\naddress = 192.0.2.9\n"
		       SERVICES, want_ctl, 3);
		cfg = parse_ok("c.conf", "[daemon]\nrole = controller\nname = c0\n"
			       "peer_listen = 192.0.2.9\n[key 1]\nfile = /k\n"
			       "[peer d]\nrole = dns\nkey = 1\n"
			       "[peer g]\nrole = gateway\nkey = 1\nfrom = 192.0.2.1\n" SERVICES);
		assert_int_equal(cfg->role, CONFIG_ROLE_CONTROLLER);
		assert_null(config_controller(cfg));
		config_free(cfg);
		cfg = parse_ok("g.conf", "[daemon]\nrole = gateway\nname = g\n"
			       "peer_listen = 192.0.2.1\nnflog_group = 7\n[key 1]\nfile = /k\n"
			       "[peer d]\nrole = dns\nkey = 1\n"
			       "[peer c0]\nrole = controller\nkey = 1\naddress = 192.0.2.9\n"
			       SERVICES);
		assert_int_equal(cfg->nflog_group, 7);
		assert_non_null(config_controller(cfg));
		assert_string_equal(config_controller(cfg)->name, "c0");
		config_free(cfg);
		/* a DNS node with a controller: no slice or share of its own */
		{
			static const char *const want_dns[] = {
				"[service www]: key 'slice': with a controller it assigns",
				"[service www]: key 'share': with a controller it assigns",
			};

			expect("[daemon]\nrole = dns\nname = d\n[dns]\nlisten = 198.51.100.53\n"
			       "zone = example.test\nzonefile = /z\n[key 1]\nfile = /k\n"
			       "[peer gw1]\nrole = gateway\naddress = 192.0.2.1\nkey = 1\n"
			       "[peer c]\nrole = controller\naddress = 192.0.2.9\nkey = 1\n"
			       SERVICES "slice = 203.0.113.0/26\nshare = 8\n", want_dns, 2);
			cfg = parse_ok("d.conf", "[daemon]\nrole = dns\nname = d\n[dns]\n"
				       "listen = 198.51.100.53\nzone = example.test\nzonefile = /z\n"
				       "[key 1]\nfile = /k\n[peer gw1]\nrole = gateway\n"
				       "address = 192.0.2.1\nkey = 1\n[peer c]\nrole = controller\n"
				       "address = 192.0.2.9\nkey = 1\n" SERVICES);
			assert_false(cfg->services[0].has_slice);
			assert_int_equal(cfg->services[0].share, 0);
		}
		config_free(cfg);
	}
}

static void check_set(const char *const *texts, size_t n, int want_ret,
		      const char *want_msg)
{
	struct config *cfgs[4];
	struct config_errors errs = { 0 };
	char name[32];
	int ret;

	for (size_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "n%zu.conf", i);
		cfgs[i] = parse_ok(name, texts[i]);
	}
	ret = config_check_set((const struct config *const *)cfgs, n, &errs);
	for (size_t i = 0; i < errs.n; i++)
		print_message("check_set: %s\n", errs.msg[i]);
	assert_int_equal(ret, want_ret);
	if (want_msg) {
		assert_int_equal(errs.n, 1);
		assert_non_null(strstr(errs.msg[0], want_msg));
	} else {
		assert_int_equal(errs.n, 0);
	}
	config_errors_free(&errs);
	for (size_t i = 0; i < n; i++)
		config_free(cfgs[i]);
}

static void test_deployment(void **state)
{
	const char *good[] = { gw1, DNS_NODE("dns1", "203.0.113.0/26", "8"),
			       DNS_NODE("dns2", "203.0.113.64/26", "8") };
	const char *overlap[] = { DNS_NODE("dns1", "203.0.113.0/26", "8"),
				  DNS_NODE("dns2", "203.0.113.32/27", "8") };
	const char *shares[] = { gw1, DNS_NODE("dns1", "203.0.113.0/26", "8"),
				 DNS_NODE("dns2", "203.0.113.64/26", "9") };
	const char *names[] = { DNS_NODE("dns1", "203.0.113.0/26", "8"),
				DNS_NODE("dns1", "203.0.113.64/26", "8") };
	char other[2048];
	const char *services[2];

	(void)state;
	check_set(good, 3, 0, NULL);
	check_set(overlap, 2, -EINVAL, "slice 203.0.113.32/27 of node dns2 overlaps slice 203.0.113.0/26 of node dns1");
	check_set(shares, 3, -EINVAL, "shares of pool add up to 17, not max_open 16");
	check_set(names, 2, -EINVAL, "node name 'dns1' is also the name in n0.conf");
	/* the links: a gateway that does not know a DNS node, or not its key */
	{
		char gw_no_dns2[2048], gw_key2[2048];
		const char *unknown[] = { gw_no_dns2, DNS_NODE("dns1", "203.0.113.0/26", "8"),
					  DNS_NODE("dns2", "203.0.113.64/26", "8") };
		const char *key[] = { gw_key2, DNS_NODE("dns1", "203.0.113.0/26", "16") };

		replace(gw_no_dns2, sizeof(gw_no_dns2), gw1, "[peer dns2]\nrole = dns\nkey = 1\n", "");
		check_set(unknown, 3, -EINVAL, "n0.conf: gateway gw1 has no [peer dns2] "
			  "with role dns: it would refuse the links of dns node dns2 (n2.conf)");
		replace(gw_key2, sizeof(gw_key2), gw1, "[peer dns1]\nrole = dns\nkey = 1\n",
			"[key 2]\nfile = /k2\n[peer dns1]\nrole = dns\nkey = 2\n");
		check_set(key, 2, -EINVAL, "n0.conf: [peer dns1] key does not list key 1, "
			  "the one dns node dns1 uses with it (n1.conf, [peer gw1])");
	}
	/* the controller: it must know each node that connects to it */
	{
		char gw_ctl[2048];
		static const char ctl_ok[] = "[daemon]\nrole = controller\nname = ctl\n"
			"peer_listen = 192.0.2.40\n[key 1]\nfile = /k\n"
			"[peer gw1]\nrole = gateway\nkey = 1\n" SERVICES;
		static const char ctl_dns[] = "[daemon]\nrole = controller\nname = ctl\n"
			"peer_listen = 192.0.2.40\n[key 1]\nfile = /k\n"
			"[peer gw1]\nrole = dns\nkey = 1\n" SERVICES;
		const char *ok[] = { gw_ctl, ctl_ok };
		const char *wrong[] = { gw_ctl, ctl_dns };

		snprintf(gw_ctl, sizeof(gw_ctl), "%s", gw1);
		replace(gw_ctl, sizeof(gw_ctl), gw1, "[peer dns1]\n",
			"[peer ctl]\nrole = controller\nkey = 1\naddress = 192.0.2.40\n"
			"[peer dns1]\n");
		check_set(ok, 2, 0, NULL);
		check_set(wrong, 2, -EINVAL, "controller ctl has no [peer gw1] with role "
			  "gateway: it would refuse the links of gateway node gw1 (n0.conf)");
	}
	/* a gateway whose services differ: window 6 instead of the default */
	snprintf(other, sizeof(other), "%swindow = 6\n", gw1);
	services[0] = DNS_NODE("dns1", "203.0.113.0/26", "16");
	services[1] = other;
	check_set(services, 2, -EINVAL, "its [service] sections differ");
}

static void test_digest(void **state)
{
	struct config *a = parse_ok("a", gw1);
	struct config *b = parse_ok("b", DNS_NODE("dns1", "203.0.113.0/26", "8"));
	uint8_t da[32], db[32];

	(void)state;
	/* node-local keys (role, peers, slice, share) are not part of it */
	assert_int_equal(config_digest(a, da), 0);
	assert_int_equal(config_digest(b, db), 0);
	assert_memory_equal(da, db, 32);
	b->services[0].max_open = 15;
	assert_int_equal(config_digest(b, db), 0);
	assert_memory_not_equal(da, db, 32);
	config_free(a);
	config_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roles_parse),
		cmocka_unit_test(test_role_errors),
		cmocka_unit_test(test_deployment),
		cmocka_unit_test(test_digest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
