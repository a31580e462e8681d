// SPDX-License-Identifier: MIT
#include "nat_verify.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nft.h"

/* The names of one type of object, sorted, each with whether it was seen. */
struct names {
	const char **name;
	uint32_t *seen;            /* rules seen, for chains; 0/1 otherwise */
	uint32_t *want;            /* rules wanted, for chains */
	size_t n;
};

struct nat_verify {
	const struct gw_table *t;
	struct names sets, counters, chains;
	uint64_t *handles;         /* sorted; of the last install */
	size_t n_handles, cap_handles;
	bool have_handles;
	size_t foreign;            /* rules of a handle not recorded */
};

static int by_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int names_init(struct names *s, size_t n)
{
	s->n = n;
	s->name = calloc(n ? n : 1, sizeof(*s->name));
	s->seen = calloc(n ? n : 1, sizeof(*s->seen));
	s->want = calloc(n ? n : 1, sizeof(*s->want));
	return s->name && s->seen && s->want ? 0 : -ENOMEM;
}

static void names_free(struct names *s)
{
	free(s->name);
	free(s->seen);
	free(s->want);
}

/* The index of name in s, or -1. */
static long names_find(const struct names *s, const char *name)
{
	const char **hit = s->n ? bsearch(&name, s->name, s->n, sizeof(*s->name),
					  by_name) : NULL;

	return hit ? hit - s->name : -1;
}

int nat_verify_new(const struct gw_table *t, struct nat_verify **out)
{
	struct nat_verify *v = calloc(1, sizeof(*v));

	*out = NULL;
	if (!v)
		return -ENOMEM;
	v->t = t;
	if (names_init(&v->sets, t->n_sets) || names_init(&v->counters, t->n_counters) ||
	    names_init(&v->chains, t->n_chains)) {
		nat_verify_free(v);
		return -ENOMEM;
	}
	for (size_t i = 0; i < t->n_sets; i++)
		v->sets.name[i] = t->sets[i].name;
	for (size_t i = 0; i < t->n_counters; i++)
		v->counters.name[i] = t->counters[i];
	for (size_t i = 0; i < t->n_chains; i++)
		v->chains.name[i] = t->chains[i].name;
	qsort(v->sets.name, v->sets.n, sizeof(char *), by_name);
	qsort(v->counters.name, v->counters.n, sizeof(char *), by_name);
	qsort(v->chains.name, v->chains.n, sizeof(char *), by_name);
	for (size_t i = 0; i < t->n_rules; i++) {
		long k = names_find(&v->chains, t->rules[i].chain);

		if (k >= 0)
			v->chains.want[k]++;
	}
	*out = v;
	return 0;
}

void nat_verify_free(struct nat_verify *v)
{
	if (!v)
		return;
	names_free(&v->sets);
	names_free(&v->counters);
	names_free(&v->chains);
	free(v->handles);
	free(v);
}

static int note_handle(void *ctx, const char *chain, uint64_t handle)
{
	struct nat_verify *v = ctx;

	(void)chain;
	if (v->n_handles == v->cap_handles) {
		size_t cap = v->cap_handles ? v->cap_handles * 2 : 64;
		uint64_t *grown = realloc(v->handles, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		v->handles = grown;
		v->cap_handles = cap;
	}
	v->handles[v->n_handles++] = handle;
	return 0;
}

static int by_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int nat_verify_record(struct nat_verify *v, struct nft *nft, const char *table)
{
	int ret;

	v->n_handles = 0;
	v->have_handles = false;
	ret = nft_list_rules(nft, table, note_handle, v);
	if (ret < 0)
		return ret;
	qsort(v->handles, v->n_handles, sizeof(*v->handles), by_u64);
	v->have_handles = true;
	return 0;
}

static int see_set(void *ctx, const char *name)
{
	struct nat_verify *v = ctx;
	long k = names_find(&v->sets, name);

	if (k >= 0)
		v->sets.seen[k] = 1;
	return 0;
}

static int see_counter(void *ctx, const char *name)
{
	struct nat_verify *v = ctx;
	long k = names_find(&v->counters, name);

	if (k >= 0)
		v->counters.seen[k] = 1;
	return 0;
}

static int see_chain(void *ctx, const char *name)
{
	struct nat_verify *v = ctx;
	long k = names_find(&v->chains, name);

	if (k >= 0)
		v->chains.want[k] |= 0x80000000u; /* present; the count is below */
	return 0;
}

static int see_rule(void *ctx, const char *chain, uint64_t handle)
{
	struct nat_verify *v = ctx;
	long k = names_find(&v->chains, chain);

	if (k >= 0)
		v->chains.seen[k]++;
	if (v->have_handles &&
	    !bsearch(&handle, v->handles, v->n_handles, sizeof(*v->handles), by_u64))
		v->foreign++;
	return 0;
}

/* The first name of s not seen, or NULL. */
static const char *missing(const struct names *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (!s->seen[i])
			return s->name[i];
	return NULL;
}

int nat_verify_check(struct nat_verify *v, struct nft *nft, const char *table,
		     char *why, size_t len)
{
	const char *name;
	int ret;

	memset(v->sets.seen, 0, v->sets.n * sizeof(*v->sets.seen));
	memset(v->counters.seen, 0, v->counters.n * sizeof(*v->counters.seen));
	memset(v->chains.seen, 0, v->chains.n * sizeof(*v->chains.seen));
	for (size_t i = 0; i < v->chains.n; i++)
		v->chains.want[i] &= ~0x80000000u;
	v->foreign = 0;
	ret = nft_list_names(nft, table, GW_TYPE_CHAIN, see_chain, v);
	if (ret == 0)
		ret = nft_list_rules(nft, table, see_rule, v);
	if (ret == 0)
		ret = nft_list_names(nft, table, GW_TYPE_SET, see_set, v);
	if (ret == 0)
		ret = nft_list_names(nft, table, GW_TYPE_COUNTER, see_counter, v);
	if (ret == -ENOENT) {
		snprintf(why, len, "table inet %s is gone", table);
		return 0;
	}
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < v->chains.n; i++) {
		uint32_t want = v->chains.want[i] & ~0x80000000u;

		if (!(v->chains.want[i] & 0x80000000u)) {
			snprintf(why, len, "chain %s is gone", v->chains.name[i]);
			return 0;
		}
		if (v->chains.seen[i] != want) {
			snprintf(why, len, "chain %s has %u rules of %u",
				 v->chains.name[i], v->chains.seen[i], want);
			return 0;
		}
	}
	if (v->foreign) {
		snprintf(why, len, "%zu rules were replaced", v->foreign);
		return 0;
	}
	if ((name = missing(&v->sets))) {
		snprintf(why, len, "set %s is gone", name);
		return 0;
	}
	if ((name = missing(&v->counters))) {
		snprintf(why, len, "counter %s is gone", name);
		return 0;
	}
	return 1;
}
