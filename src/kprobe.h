/* SPDX-License-Identifier: MIT */
/*
 * What the running kernel's nf_tables does, tried in a scratch table
 * (inet choreo_probe_<pid>, removed afterwards) before choreod relies on
 * it. Supported kernels are Linux 6.1 (Debian 12) and newer; the one
 * behaviour that differs among them is whether re-adding a set element
 * sets its new expiry (Linux >= 6.12) or keeps the old one: then choreod
 * refreshes a window by adding, deleting and adding it again in one
 * transaction, which the probe checks works, also for an element that is
 * missing or has just expired (on 6.1 a delete of a missing element would
 * abort the whole transaction).
 */
#ifndef CHOREO_KPROBE_H
#define CHOREO_KPROBE_H

#include <stdbool.h>
#include <stddef.h>

struct kprobe {
	char release[65];     /* uname -r */
	bool timeouts;        /* sets with per-element timeouts and expirations */
	bool concat_ranges;   /* (prefix . address) interval sets with timeouts */
	bool dynset;          /* packet-path add/update of a timed set */
	bool claims;          /* ... with a per-element limit (window_claims) */
	bool refresh;         /* re-adding an element refreshes its expiry */
	bool readd;           /* add, delete, add refreshes it: present, missing
				 or just expired */
};

/*
 * Run the probe. 0 when everything choreod needs is there (refresh may be
 * false: readd is then the way), or a negative errno with msg naming the
 * first missing feature and the kernel it needs. Needs CAP_NET_ADMIN.
 */
int kprobe_run(struct kprobe *out, char *msg, size_t msg_len);

#endif
