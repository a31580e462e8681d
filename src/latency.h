/* SPDX-License-Identifier: MIT */
/* A latency histogram: 10 us buckets up to 20 ms, for p50/p99 reports. */
#ifndef CHOREO_LATENCY_H
#define CHOREO_LATENCY_H

#include <stdint.h>

#define LATENCY_BUCKETS 2048
#define LATENCY_STEP_US 10

struct latency {
	uint64_t count, max_us;
	uint64_t bucket[LATENCY_BUCKETS]; /* the last one holds the rest */
};

struct latency_summary {
	uint64_t count, p50_us, p99_us, max_us;
};

void latency_record(struct latency *l, uint64_t us);

/* Percentiles are the upper edge of the bucket they fall in. */
void latency_summarise(const struct latency *l, struct latency_summary *s);

/* Monotonic clock in microseconds. */
uint64_t latency_now_us(void);

#endif
