/* SPDX-License-Identifier: MIT */
/* Logging to stderr with levels, and a token bucket for noisy messages. */
#ifndef CHOREO_LOG_H
#define CHOREO_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

void log_set_level(enum log_level lvl);
void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...)   log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

/*
 * A rate limit for one kind of message: at most burst messages, refilled at
 * per_sec per second. log_ratelimit_ok() says whether to log now; messages
 * that were suppressed are counted in ->suppressed.
 */
struct log_ratelimit {
	uint32_t per_sec, burst;
	double tokens;
	uint64_t last_ms;
	uint64_t suppressed;
};

#define LOG_RATELIMIT_INIT(rate, b) { .per_sec = (rate), .burst = (b), .tokens = (b) }

bool log_ratelimit_ok(struct log_ratelimit *rl, uint64_t now_ms);

/* Monotonic clock in milliseconds. */
uint64_t log_now_ms(void);

#endif
