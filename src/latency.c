// SPDX-License-Identifier: MIT
#include "latency.h"

#include <string.h>
#include <time.h>

void latency_record(struct latency *l, uint64_t us)
{
	uint64_t b = us / LATENCY_STEP_US;

	l->bucket[b < LATENCY_BUCKETS ? b : LATENCY_BUCKETS - 1]++;
	if (us > l->max_us)
		l->max_us = us;
	l->count++;
}

void latency_summarise(const struct latency *l, struct latency_summary *s)
{
	uint64_t seen = 0;

	memset(s, 0, sizeof(*s));
	s->count = l->count;
	s->max_us = l->max_us;
	for (unsigned b = 0; b < LATENCY_BUCKETS && l->count; b++) {
		seen += l->bucket[b];
		if (!s->p50_us && seen * 2 >= l->count)
			s->p50_us = (uint64_t)(b + 1) * LATENCY_STEP_US;
		if (!s->p99_us && seen * 100 >= l->count * 99)
			s->p99_us = (uint64_t)(b + 1) * LATENCY_STEP_US;
	}
}

uint64_t latency_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}
