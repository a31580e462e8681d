/* SPDX-License-Identifier: MIT */
/*
 * The control socket (choreoctl): a UNIX stream socket, mode 0600. A client
 * sends one command line and gets a text reply; the connection then closes.
 * Commands are untrusted input: bounded, printable, from a fixed list.
 */
#ifndef CHOREO_CTL_H
#define CHOREO_CTL_H

#include <stdint.h>

struct config;
struct loop;
struct rotor;
struct dns_ctx;
struct dnsserver;
struct nat;

#define CTL_MAX_LINE 256

struct ctl_sources {
	const struct config *cfg;
	struct rotor *rotor;
	struct dns_ctx *dns;
	struct dnsserver *server;
	struct nat *nat;
	uint64_t started_ms;
};

struct ctl;

/* Create the socket at cfg->control (its directory is made 0700 if missing;
 * a stale socket is replaced, a live one is an error). NULL on failure. */
struct ctl *ctl_new(const struct ctl_sources *src, struct loop *loop);
void ctl_free(struct ctl *c);

#endif
