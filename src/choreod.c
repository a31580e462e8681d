// SPDX-License-Identifier: MIT
/* choreod: wiring. Load and check the configuration and the zone, then run
 * the DNS service and the control socket until SIGINT/SIGTERM. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ctl.h"
#include "dns.h"
#include "dnsserver.h"
#include "gateway.h"
#include "gw_policy.h"
#include "log.h"
#include "loop.h"
#include "nat.h"
#include "rotor.h"
#include "stats.h"
#include "version.h"
#include "zone.h"

#define DEFAULT_CONFIG "/etc/choreo/choreo.conf"

static volatile sig_atomic_t stop, hup;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		hup = 1;
	else
		stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: choreod [-c FILE] [-t | -p] [-v] [-h] [-V]\n"
		"Moving-target defence: authoritative DNS whose answers for protected\n"
		"names rotate through an address pool.\n\n"
		"  -c FILE  configuration file (default %s)\n"
		"  -t       check the configuration and the zone file, then exit:\n"
		"           0 if valid, 1 with every error listed; applies nothing\n"
		"  -p       print the nftables table the configuration makes (sets,\n"
		"           counters, chains, rules), one per line; applies nothing\n"
		"  -v       verbose: log debug messages\n"
		"  -h       this help\n"
		"  -V       print the version\n\n"
		"Runs in the foreground and logs to stderr. See choreod(8), choreo.conf(5).\n",
		DEFAULT_CONFIG);
}

struct daemon {
	struct dnsserver *server;
	struct gateway *gw;
	struct ctl *ctl;
};

static void tick(void *ctx, uint64_t now_ms)
{
	struct daemon *d = ctx;

	if (hup) {
		hup = 0;
		log_warn("SIGHUP: reloading is not supported yet; restart choreod "
			 "to apply a new configuration (bindings are kept)");
	}
	dnsserver_tick(d->server, now_ms);
	gateway_tick(d->gw, now_ms);
	ctl_tick(d->ctl, now_ms);
}

struct seed {
	struct rotor *rotor;
	size_t service;
	int family;
	uint64_t now_ms;
	size_t n;
};

static void seed_one(void *ctx, const uint8_t addr[16], uint64_t ms_left)
{
	struct seed *s = ctx;

	if (rotor_seed_open(s->rotor, s->service, s->family, addr,
			    s->now_ms + ms_left) == 0)
		s->n++;
}

/* Windows the kernel still holds from before a restart count against
 * max_open, or a restart could open twice as many addresses. */
static void seed_rotor(const struct config *cfg, struct nat *nat,
		       struct rotor *rotor)
{
	config_for_each_pool(cfg, p) {
		struct seed s = { rotor, p.service, p.family, log_now_ms(), 0 };

		nat_open_windows(nat, p.service, p.family, seed_one, &s);
		if (s.n)
			log_info("[service %s]: %zu open %s windows adopted from "
				 "the kernel", p.svc->section, s.n,
				 p.family == AF_INET6 ? "IPv6" : "IPv4");
	}
}

/* The table the configuration makes, as gw_policy renders it. */
static int print_table(const struct config *cfg)
{
	struct gw_table *t;
	char buf[1024];

	if (gw_policy_build(cfg, &t) < 0) {
		fprintf(stderr, "out of memory\n");
		return -1;
	}
	printf("table inet %s\n", cfg->table);
	for (size_t i = 0; i < t->n_sets; i++) {
		const struct gw_set *s = &t->sets[i];

		printf("set %s %s%s%s%s", s->name, s->family == AF_INET ? "ip" : "ip6",
		       s->pair ? " pair" : "", s->interval ? " interval" : "",
		       s->dynamic ? " dynamic" : "");
		if (s->size)
			printf(" size %u", s->size);
		printf("\n");
	}
	for (size_t i = 0; i < t->n_counters; i++)
		printf("counter %s\n", t->counters[i]);
	for (size_t i = 0; i < t->n_chains; i++)
		printf("chain %s%s\n", t->chains[i].name, t->chains[i].base ? " base" : "");
	for (size_t i = 0; i < t->n_rules; i++)
		printf("rule %s\n", gw_rule_format(&t->rules[i], buf, sizeof(buf)));
	gw_table_free(t);
	return 0;
}

static int load(const char *path, struct config **cfg, struct zone **zone)
{
	struct config_errors errs = { 0 };
	int ret = config_load(path, cfg, &errs);

	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.msg[i]);
	config_errors_free(&errs);
	if (ret < 0) {
		if (ret == -ENOMEM)
			fprintf(stderr, "%s: out of memory\n", path);
		return -1;
	}
	if (zone_load(*cfg, zone) < 0)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	const char *path = DEFAULT_CONFIG;
	struct config *cfg = NULL;
	struct zone *zone = NULL;
	struct rotor *rotor = NULL;
	struct dns_ctx *dns = NULL;
	struct loop *loop = NULL;
	struct dnsserver *server = NULL;
	struct nat *nat = NULL;
	struct ctl *ctl = NULL;
	struct daemon d;
	struct sigaction sa = { .sa_handler = on_signal };
	bool check = false, print = false;
	int opt, rc = 1;

	while ((opt = getopt(argc, argv, "c:tpvhV")) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 't': check = true; break;
		case 'p': print = true; break;
		case 'v': log_set_level(LOG_LVL_DEBUG); break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("choreod %s\n", CHOREO_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	if (load(path, &cfg, &zone) < 0)
		goto out;
	if (print) {
		rc = print_table(cfg) < 0 ? 1 : 0;
		goto out;
	}
	if (check) {
		printf("%s: configuration and zone %s OK (%zu services, %zu records)\n",
		       path, cfg->zone, cfg->n_services, zone->n_records);
		rc = 0;
		goto out;
	}

	rotor = rotor_new(cfg, NULL, NULL);
	dns = rotor ? dns_ctx_new(cfg, zone, rotor) : NULL;
	loop = dns ? loop_new() : NULL;
	if (!loop) {
		log_err("out of memory");
		goto out;
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* the gateway first: no answer may go out before it can be backed */
	if (nat_open(cfg, loop, &nat) < 0)
		goto out;
	seed_rotor(cfg, nat, rotor);
	server = dnsserver_new(cfg, dns, nat_gateway(nat), loop);
	if (!server)
		goto out;
	ctl = ctl_new(&(struct stats_sources){ .cfg = cfg, .rotor = rotor,
		      .dns = dns, .server = server, .gw = nat_gateway(nat),
		      .started_ms = log_now_ms() }, loop);
	if (!ctl)
		goto out;
	d = (struct daemon){ .server = server, .gw = nat_gateway(nat), .ctl = ctl };
	loop_set_tick(loop, tick, &d);

	log_info("choreod %s serving zone %s (%zu records, %zu protected names); "
		 "control socket %s", CHOREO_VERSION, cfg->zone, zone->n_records,
		 cfg->n_services, cfg->control);
	rc = loop_run(loop, &stop) == 0 ? 0 : 1;
	log_info("stopping");
out:
	ctl_free(ctl);
	dnsserver_free(server);
	nat_close(nat); /* the table stays: bindings keep working */
	loop_free(loop);
	dns_ctx_free(dns);
	rotor_free(rotor);
	zone_free(zone);
	config_free(cfg);
	return rc;
}
