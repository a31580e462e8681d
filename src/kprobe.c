// SPDX-License-Identifier: MIT
#include "kprobe.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "gw_policy.h"
#include "nft.h"

#define PROBE_MARK "choreod-probe"
#define LONG_MS    100000  /* a refreshed element has about this long */
#define SHORT_MS   1000    /* ... one that was not, at most this */

struct probe {
	struct nft *nft;
	char table[40];
};

/* An element of the probe's sets, keyed by its last byte. */
static struct gw_elem elem(const char *set, bool pair, uint8_t id,
			   uint64_t expire_ms)
{
	struct gw_elem e = { .family = AF_INET, .timeout_ms = LONG_MS,
			     .expire_ms = expire_ms };

	snprintf(e.set, sizeof(e.set), "%s", set);
	e.key[0] = 203;
	e.key[1] = 0;
	e.key[2] = 113;
	e.key[3] = id;
	e.key_len = 4;
	if (pair) {
		/* (198.18.id.0/24 . 203.0.113.id), as a scoped window */
		memcpy(e.key + 4, e.key, 4);
		e.key[0] = 198;
		e.key[1] = 18;
		e.key[2] = id;
		e.key[3] = 0;
		e.key_len = 8;
		memcpy(e.key_end, e.key, 8);
		e.key_end[3] = 0xff;
		e.has_end = true;
	}
	return e;
}

static int commit(struct probe *p)
{
	return nft_commit(p->nft, NULL);
}

struct lookup {
	uint8_t key[8];
	uint32_t len;
	long found_ms;
};

static void lookup_one(void *ctx, const uint8_t *key, uint32_t key_len,
		       const uint8_t *key_end, uint64_t ms_left)
{
	struct lookup *l = ctx;

	(void)key_end;
	if (key_len == l->len && memcmp(key, l->key, key_len) == 0)
		l->found_ms = (long)ms_left;
}

/* The milliseconds the element has left, or -1 when it is not there. */
static long left(struct probe *p, const struct gw_elem *e)
{
	struct lookup l = { .len = e->key_len, .found_ms = -1 };

	memcpy(l.key, e->key, e->key_len);
	if (nft_dump_elems(p->nft, p->table, e->set, lookup_one, &l) < 0)
		return -1;
	return l.found_ms;
}

/* In one transaction: add, delete, add (the fallback refresh). */
static int readd(struct probe *p, const struct gw_elem *e, size_t n)
{
	nft_begin(p->nft, p->table);
	nft_add_elems(p->nft, e, n);
	nft_del_elems(p->nft, e, n);
	nft_add_elems(p->nft, e, n);
	return commit(p);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int run(struct probe *p, struct kprobe *out, char *msg, size_t msg_len)
{
	static const struct gw_set plain = { .name = "p", .family = AF_INET };
	static const struct gw_set ranges = { .name = "r", .family = AF_INET,
					      .pair = true, .interval = true };
	static const struct gw_set dyn = { .name = "d", .family = AF_INET,
					   .pair = true, .dynamic = true, .size = 16 };
	static const struct gw_chain chain = { .name = "c" };
	struct gw_rule rule = { .chain = "c", .family = AF_INET, .n_match = 1,
				.n_act = 2 };
	struct gw_elem e[8];
	int ret;

	nft_begin(p->nft, p->table);
	nft_add_table(p->nft, PROBE_MARK);
	nft_add_set(p->nft, &plain);
	if ((ret = commit(p)) == -EPERM) {
		snprintf(msg, msg_len, "not allowed to make an nftables table: "
			 "choreod needs CAP_NET_ADMIN");
		return ret;
	}
	if (ret < 0) {
		snprintf(msg, msg_len, "nf_tables cannot make a set with timeouts "
			 "(%s); Linux >= 6.1 with nf_tables is needed", strerror(-ret));
		return ret;
	}
	out->timeouts = true;

	nft_begin(p->nft, p->table);
	nft_add_set(p->nft, &ranges);
	if ((ret = commit(p)) < 0) {
		snprintf(msg, msg_len, "nf_tables cannot make a set of (prefix . "
			 "address) ranges with timeouts (%s); Linux >= 5.6 is needed",
			 strerror(-ret));
		return ret;
	}
	out->concat_ranges = true;

	/* a rule that learns into a timed set from the packet path */
	rule.match[0].kind = GW_M_PAIR_IN;
	snprintf(rule.match[0].set, sizeof(rule.match[0].set), "r");
	rule.act[0] = (struct gw_act){ .kind = GW_A_UPDATE, .name = "d",
				       .timeout_ms = LONG_MS };
	rule.act[1] = (struct gw_act){ .kind = GW_A_ADD, .name = "d",
				       .timeout_ms = LONG_MS };
	nft_begin(p->nft, p->table);
	nft_add_set(p->nft, &dyn);
	nft_add_chain(p->nft, &chain);
	nft_add_rule(p->nft, &rule);
	if ((ret = commit(p)) < 0) {
		snprintf(msg, msg_len, "nf_tables cannot add to or update a timed "
			 "set from a rule (%s); Linux >= 5.3 is needed", strerror(-ret));
		return ret;
	}
	out->dynset = true;

	/* a per-element limit taken from the packet path: window_claims */
	{
		static const struct gw_set claims = { .name = "k", .family = AF_INET,
						      .dynamic = true };
		struct gw_rule claim = { .chain = "c", .family = AF_INET, .n_match = 1,
					 .n_act = 1 };

		claim.match[0].kind = GW_M_DST_IN;
		snprintf(claim.match[0].set, sizeof(claim.match[0].set), "p");
		claim.act[0] = (struct gw_act){ .kind = GW_A_CLAIM, .name = "k",
						.timeout_ms = LONG_MS, .burst = 1 };
		nft_begin(p->nft, p->table);
		nft_add_set(p->nft, &claims);
		nft_add_rule(p->nft, &claim);
		out->claims = commit(p) == 0;
	}

	/* elements with little time left: 1 and 2 for the refresh, 3 and 4
	 * for add-delete-add, 5 about to expire */
	e[0] = elem("p", false, 1, SHORT_MS);
	e[1] = elem("r", true, 2, SHORT_MS);
	e[2] = elem("p", false, 3, SHORT_MS);
	e[3] = elem("r", true, 4, SHORT_MS);
	e[4] = elem("p", false, 5, 1);
	e[5] = elem("r", true, 6, 1);
	nft_begin(p->nft, p->table);
	nft_add_elems(p->nft, e, 6);
	if ((ret = commit(p)) < 0) {
		snprintf(msg, msg_len, "nf_tables refused set elements with an "
			 "expiration (%s); Linux >= 6.1 is needed", strerror(-ret));
		return ret;
	}

	/* re-added with the full time: does the expiry move? */
	e[0].expire_ms = e[1].expire_ms = 0;
	nft_begin(p->nft, p->table);
	nft_add_elems(p->nft, e, 2);
	if ((ret = commit(p)) < 0) {
		snprintf(msg, msg_len, "nf_tables refused to add an existing set "
			 "element again (%s)", strerror(-ret));
		return ret;
	}
	out->refresh = left(p, &e[0]) > LONG_MS / 2 && left(p, &e[1]) > LONG_MS / 2;

	/* the fallback: present (3, 4), never added (7, 8), just expired (5, 6) */
	sleep_ms(20);
	e[2].expire_ms = e[3].expire_ms = e[4].expire_ms = e[5].expire_ms = 0;
	e[6] = elem("p", false, 7, 0);
	e[7] = elem("r", true, 8, 0);
	ret = readd(p, &e[2], 6);
	out->readd = ret == 0;
	for (size_t i = 2; out->readd && i < 8; i++)
		out->readd = left(p, &e[i]) > LONG_MS / 2;
	if (!out->refresh && !out->readd) {
		snprintf(msg, msg_len, "nf_tables can refresh a set element's expiry "
			 "neither by adding it again nor by deleting and adding it "
			 "in one transaction (%s)", ret < 0 ? strerror(-ret) : "the "
			 "expiry did not move");
		return -ENOTSUP;
	}
	return 0;
}

int kprobe_run(struct kprobe *out, char *msg, size_t msg_len)
{
	struct probe p = { 0 };
	struct utsname u;
	bool exists, ours;
	int ret;

	memset(out, 0, sizeof(*out));
	msg[0] = '\0';
	if (uname(&u) == 0)
		snprintf(out->release, sizeof(out->release), "%s", u.release);
	snprintf(p.table, sizeof(p.table), "choreo_probe_%ld", (long)getpid());
	ret = nft_open(2000, &p.nft);
	if (ret < 0) {
		snprintf(msg, msg_len, "cannot open a netlink socket to nf_tables: %s",
			 strerror(-ret));
		return ret;
	}
	/* a table left by a probe of an earlier process with our pid */
	if (nft_probe_table(p.nft, p.table, PROBE_MARK, &exists, &ours) == 0 &&
	    exists && ours) {
		nft_begin(p.nft, p.table);
		nft_del_table(p.nft);
		commit(&p);
	}
	ret = run(&p, out, msg, msg_len);
	nft_begin(p.nft, p.table);
	nft_del_table(p.nft);
	if (commit(&p) < 0 && ret == 0) {
		ret = -EIO;
		snprintf(msg, msg_len, "cannot remove the probe's table inet %s", p.table);
	}
	nft_close(p.nft);
	return ret;
}
