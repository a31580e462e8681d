/* SPDX-License-Identifier: MIT */
/*
 * The control socket (choreoctl): a UNIX stream socket, mode 0600. A client
 * sends one command line and gets a text reply; the connection then closes.
 * Commands are untrusted input: bounded, printable, from a fixed list.
 *
 * Everything is non-blocking and driven by the event loop: a client that
 * sends one byte a second holds a client slot until its deadline, never
 * the loop. `status` waits (in the loop, not blocking it) up to 300 ms for
 * fresh counts from the gateway's worker, then answers with what it has.
 */
#ifndef CHOREO_CTL_H
#define CHOREO_CTL_H

#include <stdint.h>

#include "stats.h"

#define CTL_MAX_LINE    256
#define CTL_MAX_CLIENTS 16     /* at once; more are refused */
#define CTL_DEADLINE_MS 5000   /* to send the command, or to read the reply */
#define CTL_FRESH_MS    300    /* status waits this long for fresh counts */

struct loop;
struct ctl;

/* Create the socket at src->cfg->control (its directory is made 0700 if
 * missing; a stale socket is replaced, a live one is an error). NULL on
 * failure (logged). */
struct ctl *ctl_new(const struct stats_sources *src, struct loop *loop);
void ctl_free(struct ctl *c);

/* Drop clients past their deadline; call about once a second. */
void ctl_tick(struct ctl *c, uint64_t now_ms);

#endif
