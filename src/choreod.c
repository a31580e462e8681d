// SPDX-License-Identifier: MIT
/* choreod: wiring. Load and check the configuration and the zone, then run
 * the DNS service and the control socket until SIGINT/SIGTERM. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "config.h"
#include "controller.h"
#include "ctl.h"
#include "dns.h"
#include "dnsserver.h"
#include "gateway.h"
#include "gw_agent.h"
#include "gw_policy.h"
#include "gw_remote.h"
#include "kprobe.h"
#include "log.h"
#include "loop.h"
#include "nat.h"
#include "peer.h"
#include "node_ctl.h"
#include "rotor.h"
#include "stats.h"
#include "version.h"
#include "zone.h"

#define DEFAULT_CONFIG "/etc/choreo/choreo.conf"
#define CHECK_MAX_FILES 64

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
		"Usage: choreod [-c FILE] [-t | -p | -k] [-v] [-h] [-V]\n"
		"       choreod -t -c FILE [-c FILE ...]\n"
		"Moving-target defence: authoritative DNS whose answers for protected\n"
		"names rotate through an address pool. [daemon] role = dns, gateway or\n"
		"controller makes this process one node of the distributed mode\n"
		"(choreod(8)).\n\n"
		"  -c FILE  configuration file (default %s)\n"
		"  -t       check the configuration and the zone file, then exit:\n"
		"           0 if valid, 1 with every error listed; applies nothing.\n"
		"           With several -c, also that the nodes make one deployment\n"
		"           (same services, disjoint slices, shares adding up, each\n"
		"           gateway knowing its DNS nodes and their keys)\n"
		"  -p       print the nftables table the configuration makes (sets,\n"
		"           counters, chains, rules), one per line; applies nothing\n"
		"  -k       probe the kernel's nf_tables for what choreod relies on\n"
		"           (in a scratch table, removed after), print it and exit\n"
		"  -v       verbose: log debug messages\n"
		"  -h       this help\n"
		"  -V       print the version\n\n"
		"Runs in the foreground and logs to stderr. See choreod(8), choreo.conf(5).\n",
		DEFAULT_CONFIG);
}

struct daemon {
	struct dnsserver *server;   /* NULL: roles gateway and controller */
	struct gateway *gw;         /* NULL: role controller */
	struct gw_agent *agent;     /* role gateway */
	struct node_ctl *node_ctl;  /* role dns, with a controller */
	struct controller *controller; /* role controller */
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
	if (d->server)
		dnsserver_tick(d->server, now_ms);
	if (d->gw)
		gateway_tick(d->gw, now_ms);
	if (d->agent)
		gw_agent_tick(d->agent, now_ms);
	if (d->controller)
		controller_tick(d->controller, now_ms);
	node_ctl_tick(d->node_ctl, now_ms);
	ctl_tick(d->ctl, now_ms);
}

struct adopt {
	const struct config *cfg;
	struct rotor *rotor;
	uint64_t now_ms;
	size_t kept, refused;
};

/*
 * At a restart: what the kernel still holds counts against max_open, but
 * only what the current configuration allows stays. A window on an
 * address the pools no longer hold (renumbered) or on a listen address, a
 * scoped window of another prefix length, or one past max_open (lowered)
 * is deleted: the exposure bound must hold from the first answer on.
 */
static bool adopt_one(void *ctx, const struct nat_window *w)
{
	struct adopt *a = ctx;
	unsigned prefix = w->family == AF_INET ? a->cfg->ecs_prefix4 : a->cfg->ecs_prefix6;
	bool keep;

	if (w->obj == GW_ASKED)
		return rotor_pool_has(a->rotor, w->service, w->family, w->addr);
	keep = (w->obj == GW_OPEN || w->src_len == prefix) &&
	       rotor_seed_open(a->rotor, w->service, w->family, w->addr,
			       a->now_ms + w->ms_left) == 0;
	if (keep)
		a->kept++;
	else
		a->refused++;
	return keep;
}

static int adopt_windows(const struct config *cfg, struct nat *nat,
			 struct rotor *rotor)
{
	struct adopt a = { cfg, rotor, log_now_ms(), 0, 0 };
	long dropped = nat_adopt(nat, adopt_one, &a);

	if (dropped < 0) {
		log_err("nftables: cannot adopt the windows of table inet %s: %s",
			cfg->table, strerror((int)-dropped));
		return -1;
	}
	if (a.kept || dropped)
		log_info("adopted from the kernel: %zu windows counted against "
			 "max_open; %ld entries removed (outside the pools, a listen "
			 "address, another client-subnet length, or past max_open)",
			 a.kept, dropped);
	return 0;
}

/* A gateway keeps what lies in the pools; its DNS nodes count their windows. */
static bool adopt_in_pool(void *ctx, const struct nat_window *w)
{
	const struct config *cfg = ctx;
	const struct config_service *s = &cfg->services[w->service];

	if (w->family == AF_INET6)
		return s->has_pool6 && addr_prefix_contains(&s->pool6, AF_INET6, w->addr);
	return addr_prefix_contains(&s->pool, AF_INET, w->addr);
}

/* Print what the kernel probe finds. */
static int print_kernel(void)
{
	struct kprobe k;
	char msg[256];
	int ret = kprobe_run(&k, msg, sizeof(msg));

	printf("kernel %s\n", k.release);
	printf("timeouts %s\nconcat_ranges %s\ndynset %s\nclaims %s\nrefresh %s\n"
	       "readd %s\n", k.timeouts ? "yes" : "no",
	       k.concat_ranges ? "yes" : "no", k.dynset ? "yes" : "no",
	       k.claims ? "yes" : "no", k.refresh ? "yes" : "no",
	       k.readd ? "yes" : "no");
	if (ret < 0)
		printf("error %s\n", msg);
	return ret;
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

static void print_errors(struct config_errors *errs)
{
	fflush(stdout); /* what was said before comes before */
	for (size_t i = 0; i < errs->n; i++)
		fprintf(stderr, "%s\n", errs->msg[i]);
	config_errors_free(errs);
}

/* The configuration, and the zone when this node answers DNS. */
static int load(const char *path, struct config **cfg, struct zone **zone)
{
	struct config_errors errs = { 0 };
	int ret = config_load(path, cfg, &errs);

	print_errors(&errs);
	if (ret < 0) {
		if (ret == -ENOMEM)
			fprintf(stderr, "%s: out of memory\n", path);
		return -1;
	}
	if ((*cfg)->role != CONFIG_ROLE_GATEWAY && (*cfg)->role != CONFIG_ROLE_CONTROLLER &&
	    zone_load(*cfg, zone) < 0)
		return -1;
	return 0;
}

/* choreod -t: each file, then (with several) the deployment they make. */
static int check_files(const char *const *paths, size_t n)
{
	struct config *cfgs[CHECK_MAX_FILES] = { 0 };
	struct config_errors errs = { 0 };
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		struct zone *zone = NULL;
		uint8_t d[32];

		if (load(paths[i], &cfgs[i], &zone) < 0) {
			rc = 1;
			continue;
		}
		printf("%s: OK: role %s%s%s, %zu services", paths[i],
		       config_role_name(cfgs[i]->role),
		       cfgs[i]->name ? ", node " : "", cfgs[i]->name ? cfgs[i]->name : "",
		       cfgs[i]->n_services);
		if (zone)
			printf(", zone %s with %zu records", cfgs[i]->zone, zone->n_records);
		if (config_digest(cfgs[i], d) == 0) {
			printf(", services digest ");
			for (size_t k = 0; k < 8; k++)
				printf("%02x", d[k]);
		}
		printf("\n");
		zone_free(zone);
	}
	if (rc == 0 && n > 1) {
		int ret = config_check_set((const struct config *const *)cfgs, n, &errs);

		print_errors(&errs);
		if (ret < 0)
			rc = 1;
		else
			printf("the %zu configurations make one deployment: the same "
			       "services, the DNS nodes' slices disjoint, their shares "
			       "adding up to max_open, each gateway accepting its DNS "
			       "nodes\n", n);
	}
	for (size_t i = 0; i < n; i++)
		config_free(cfgs[i]);
	return rc;
}

/* Everything a running choreod holds; by role, some stay NULL. */
struct parts;
static int seed_window(void *ctx, const struct change *c);

struct parts {
	struct config *cfg;
	struct zone *zone;
	struct rotor *rotor;
	struct dns_ctx *dns;
	struct loop *loop;
	struct dnsserver *server;
	struct nat *nat;
	struct gw_remote *remote;
	struct gw_agent *agent;
	struct node_ctl *node_ctl;
	struct controller *controller;
	struct stats_sources src;
	struct ctl *ctl;
	/* a DNS node with a controller: the windows the gateways told it of,
	 * kept to count once an assignment says which are its own */
	struct early_window *early;
	size_t n_early;
};

#define EARLY_WINDOWS_MAX 65536 /* more than max_open x gateways in sane use */

struct early_window {
	struct change c;
	uint64_t expiry_ms;
};

/*
 * A DNS node: a window a gateway holds that lies in this node's slice (and
 * is of its client-subnet length) was opened by its earlier run; it counts
 * against the share until it expires. Others' windows are refused here.
 *
 * With a controller the slice comes later, in an assignment (a restarted
 * node claims nothing, and the controller gives its block back at once if
 * it kept it): the windows are kept, and counted by seed_early() once an
 * assignment says which are this node's. Counted now as well if the slice
 * is there already (the gateway joined after the assignment).
 */
static int seed_window(void *ctx, const struct change *c)
{
	struct parts *p = ctx;
	unsigned prefix = c->family == AF_INET ? p->cfg->ecs_prefix4 : p->cfg->ecs_prefix6;
	uint64_t expiry = log_now_ms() + c->ms;

	if (c->kind == CHANGE_OPEN_SCOPED && c->src_len != prefix)
		return -EINVAL;
	if (config_controller(p->cfg)) {
		if (!p->early && !(p->early = calloc(EARLY_WINDOWS_MAX, sizeof(*p->early))))
			return -ENOMEM;
		if (p->n_early == EARLY_WINDOWS_MAX)
			return -ENOSPC;
		p->early[p->n_early++] = (struct early_window){ *c, expiry };
	}
	return rotor_seed_open(p->rotor, c->service, c->family, c->addr, expiry);
}

/* After an assignment: the windows of seed_window() in this node's slices
 * count against its shares (the others' are refused by the rotor); the
 * expired ones are dropped. */
static void seed_early(struct parts *p)
{
	uint64_t now = log_now_ms();
	size_t k = 0, counted = 0;

	for (size_t i = 0; i < p->n_early; i++) {
		const struct early_window *w = &p->early[i];

		if (w->expiry_ms <= now)
			continue;
		if (rotor_seed_open(p->rotor, w->c.service, w->c.family, w->c.addr,
				    w->expiry_ms) == 0)
			counted++;
		p->early[k++] = *w;
	}
	p->n_early = k;
	if (counted)
		log_info("controller: %zu windows an earlier run opened count "
			 "against the new share until they expire", counted);
}

static void parts_free(struct parts *p)
{
	ctl_free(p->ctl);
	node_ctl_free(p->node_ctl);
	controller_free(p->controller);
	dnsserver_free(p->server);
	gw_remote_free(p->remote);
	gw_agent_free(p->agent);
	nat_close(p->nat); /* the table stays: bindings keep working */
	loop_free(p->loop);
	dns_ctx_free(p->dns);
	rotor_free(p->rotor);
	zone_free(p->zone);
	config_free(p->cfg);
	free(p->early);
}

/* A DNS node: changes sent may land late on a gateway (gw_remote_on_unsure). */
static void hold_open(void *ctx, uint64_t now_ms, uint64_t hold_ms)
{
	rotor_hold(ctx, now_ms, hold_ms);
}

/* What this node tells its controller each second (node_ctl.c): the
 * counters an operator looks at first, as "key value" pairs. */
static void report(void *ctx, char *buf, size_t len)
{
	const struct parts *p = ctx;
	struct stats_snapshot *s = malloc(sizeof(*s));
	unsigned long long to_server = 0, to_honeypot = 0;
	long bound = 0;
	size_t open = 0;

	buf[0] = 0;
	if (!s)
		return;
	stats_collect(&p->src, log_now_ms(), s);
	config_for_each_pool(p->cfg, pl) {
		to_server += s->gw.pool[pl.index].server;
		to_honeypot += s->gw.pool[pl.index].honeypot;
		bound += s->gw.pool[pl.index].bound > 0 ? s->gw.pool[pl.index].bound : 0;
		open += s->rotor[pl.index].open_now;
	}
	if (s->has_dns)
		snprintf(buf, len, "queries %llu rotated %llu servfail %llu "
			 "commit_failures %llu open_now %zu",
			 (unsigned long long)s->dns.queries,
			 (unsigned long long)s->dns.rotated,
			 (unsigned long long)s->dns.servfail,
			 (unsigned long long)s->server.commit_failures, open);
	else
		snprintf(buf, len, "commits %llu failures %llu changes_applied %llu "
			 "relayed_in %llu learned %llu to_server %llu to_honeypot %llu "
			 "bindings %ld", (unsigned long long)s->gw.commits,
			 (unsigned long long)s->gw.failures,
			 (unsigned long long)s->agent.changes,
			 (unsigned long long)s->agent.relayed_in,
			 (unsigned long long)s->agent.learned, to_server, to_honeypot,
			 bound);
	free(s);
}

/* Block b of k bits of a pool: the prefix one longer by k, b in those bits. */
static int block_prefix(const struct addr_prefix *pool, uint8_t k, int32_t b,
			struct addr_prefix *out)
{
	unsigned len = pool->len + k;

	if (len > addr_family_size(pool->family) * 8)
		return -EINVAL;
	*out = *pool;
	out->len = (uint8_t)len;
	for (unsigned bit = 0; bit < k; bit++)
		if ((uint32_t)b & (1u << (k - 1 - bit)))
			out->bytes[(pool->len + bit) / 8] |=
				(uint8_t)(0x80 >> ((pool->len + bit) % 8));
	return 0;
}

/* A DNS node: the controller's slices and shares, into the rotor. */
static int assign(void *ctx, const struct frame_assign *a)
{
	struct parts *p = ctx;
	const struct config *cfg = p->cfg;

	if (a->n != cfg->n_services) {
		log_warn("controller: an assignment for %u services, not %zu", a->n,
			 cfg->n_services);
		return PEER_R_FIELD;
	}
	/* all of it fits, or none of it is applied (a node claims at its
	 * next JOIN what it applied: never half an assignment) */
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct config_service *s = &cfg->services[i];
		struct addr_prefix b4, b6;
		bool none = a->block[i] < 0 || a->share[i] == 0;

		if (a->share[i] > s->max_open ||
		    (!none && (block_prefix(&s->pool, a->block_bits[i], a->block[i], &b4) < 0 ||
			       (s->has_pool6 && (block_prefix(&s->pool6, a->block_bits[i],
							      a->block[i], &b6) < 0 ||
						 b6.len >= 128))))) {
			log_warn("controller: an assignment that does not fit [service %s]: "
				 "none of it applied", s->section);
			return PEER_R_FIELD;
		}
	}
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct config_service *s = &cfg->services[i];
		struct addr_prefix b4 = { 0 }, b6 = { 0 };
		bool none = a->block[i] < 0 || a->share[i] == 0;

		if (!none) {
			block_prefix(&s->pool, a->block_bits[i], a->block[i], &b4);
			if (s->has_pool6)
				block_prefix(&s->pool6, a->block_bits[i], a->block[i], &b6);
		}
		if (rotor_assign(p->rotor, i, AF_INET, none ? NULL : &b4, a->share[i]) < 0 ||
		    (s->has_pool6 &&
		     rotor_assign(p->rotor, i, AF_INET6, none ? NULL : &b6, a->share[i]) < 0))
			return PEER_R_FIELD;
		if (!none) {
			char x[ADDR_STRLEN];

			log_info("controller: [service %s]: slice %s, share %u (epoch %llu)",
				 s->section, addr_prefix_format(&b4, x), a->share[i],
				 (unsigned long long)a->epoch);
		} else {
			log_info("controller: [service %s]: no slice yet (epoch %llu)",
				 s->section, (unsigned long long)a->epoch);
		}
	}
	seed_early(p);
	return 0;
}

/* The controller: its links, and the control socket. */
static int start_controller(struct parts *p, struct daemon *d)
{
	if (controller_new(p->cfg, p->loop, &p->controller) < 0)
		return -1;
	p->src = (struct stats_sources){ .cfg = p->cfg,
		.peers = controller_peers(p->controller),
		.controller = p->controller, .started_ms = log_now_ms() };
	p->ctl = ctl_new(&p->src, p->loop);
	if (!p->ctl)
		return -1;
	*d = (struct daemon){ .controller = p->controller, .ctl = p->ctl };
	loop_set_tick(p->loop, tick, d);
	log_info("choreod %s: controller %s, %zu nodes, %zu services; control "
		 "socket %s", CHOREO_VERSION, p->cfg->name, p->cfg->n_peers,
		 p->cfg->n_services, p->cfg->control);
	return 0;
}

/* Bring up what the role needs, the gateway side first: no answer may go
 * out before it can be backed. 0, or -1 (logged). */
static int start(struct parts *p, struct daemon *d)
{
	const struct config *cfg = p->cfg;
	enum config_role role = cfg->role;
	struct gateway *gw = NULL;
	struct peers *peers = NULL;

	p->loop = loop_new();
	if (role == CONFIG_ROLE_CONTROLLER)
		return p->loop ? start_controller(p, d) : -1;
	if (role != CONFIG_ROLE_GATEWAY) {
		p->rotor = p->loop ? rotor_new(cfg, NULL, NULL) : NULL;
		p->dns = p->rotor ? dns_ctx_new(cfg, p->zone, p->rotor) : NULL;
		if (!p->dns) {
			log_err("out of memory");
			return -1;
		}
	}
	if (!p->loop) {
		log_err("out of memory");
		return -1;
	}
	if (role == CONFIG_ROLE_DNS) {
		/* the windows the gateways still hold from an earlier run
		 * count against the share: seed_window */
		if (gw_remote_new(cfg, p->loop, seed_window, p, &p->remote) < 0)
			return -1;
		gw_remote_on_unsure(p->remote, hold_open, p->rotor);
		gw = gw_remote_gateway(p->remote);
		peers = gw_remote_peers(p->remote);
		if (node_ctl_new(cfg, peers, report, NULL, assign, p, &p->node_ctl) < 0)
			return -1;
	} else {
		if (nat_open(cfg, p->loop, &p->nat) < 0)
			return -1;
		gw = nat_gateway(p->nat);
		if (role == CONFIG_ROLE_STANDALONE &&
		    adopt_windows(cfg, p->nat, p->rotor) < 0)
			return -1;
		if (role == CONFIG_ROLE_GATEWAY) {
			long dropped = nat_adopt(p->nat, adopt_in_pool, p->cfg);

			if (dropped < 0) {
				log_err("nftables: cannot adopt the windows of table "
					"inet %s: %s", cfg->table, strerror((int)-dropped));
				return -1;
			}
			if (gw_agent_new(cfg, p->loop, gw, &p->agent) < 0 ||
			    gw_agent_attach_controller(p->agent, report, p) < 0)
				return -1;
			peers = gw_agent_peers(p->agent);
			p->node_ctl = NULL; /* the agent's own (gw_agent_controller) */
		}
	}
	if (role != CONFIG_ROLE_GATEWAY) {
		p->server = dnsserver_new(cfg, p->dns, gw, p->loop);
		if (!p->server)
			return -1;
	}
	p->src = (struct stats_sources){ .cfg = cfg, .rotor = p->rotor,
		.dns = p->dns, .server = p->server, .gw = gw, .remote = p->remote,
		.agent = p->agent, .peers = peers,
		.node_ctl = p->agent ? gw_agent_controller(p->agent) : p->node_ctl,
		.started_ms = log_now_ms() };
	p->ctl = ctl_new(&p->src, p->loop);
	if (!p->ctl)
		return -1;
	*d = (struct daemon){ .server = p->server, .gw = gw, .agent = p->agent,
			      .node_ctl = p->node_ctl, .ctl = p->ctl };
	loop_set_tick(p->loop, tick, d);
	if (role == CONFIG_ROLE_GATEWAY)
		log_info("choreod %s: gateway %s, table inet %s, %zu services; "
			 "control socket %s", CHOREO_VERSION, cfg->name, cfg->table,
			 cfg->n_services, cfg->control);
	else
		log_info("choreod %s%s%s serving zone %s (%zu records, %zu protected "
			 "names); control socket %s", CHOREO_VERSION,
			 role == CONFIG_ROLE_DNS ? ": DNS node " : "",
			 role == CONFIG_ROLE_DNS ? cfg->name : "", cfg->zone,
			 p->zone->n_records, cfg->n_services, cfg->control);
	return 0;
}

int main(int argc, char **argv)
{
	const char *path = DEFAULT_CONFIG, *paths[CHECK_MAX_FILES];
	size_t n_paths = 0;
	struct parts p = { 0 };
	struct daemon d;
	struct sigaction sa = { .sa_handler = on_signal };
	bool check = false, print = false;
	int opt, rc = 1;

	while ((opt = getopt(argc, argv, "c:tpkvhV")) != -1) {
		switch (opt) {
		case 'c':
			if (n_paths == CHECK_MAX_FILES) {
				fprintf(stderr, "choreod: at most %d files with -c\n",
					CHECK_MAX_FILES);
				return 2;
			}
			path = paths[n_paths++] = optarg;
			break;
		case 't': check = true; break;
		case 'p': print = true; break;
		case 'k': return print_kernel() < 0 ? 1 : 0;
		case 'v': log_set_level(LOG_LVL_DEBUG); break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("choreod %s\n", CHOREO_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || (n_paths > 1 && !check)) {
		usage(stderr);
		return 2;
	}
	if (check)
		return check_files(n_paths ? paths : &path, n_paths ? n_paths : 1);

	if (load(path, &p.cfg, &p.zone) < 0)
		goto out;
	if (print) {
		rc = print_table(p.cfg) < 0 ? 1 : 0;
		goto out;
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (start(&p, &d) < 0)
		goto out;
	rc = loop_run(p.loop, &stop) == 0 ? 0 : 1;
	log_info("stopping");
	node_ctl_leave(p.node_ctl); /* a DNS node gives its slices back */
out:
	parts_free(&p);
	return rc;
}
