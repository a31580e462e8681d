// SPDX-License-Identifier: MIT
/*
 * Test-only: linked by tests/lab/test_valgrind.sh, with
 * -Wl,--wrap=controller_get_stats, into a throw-away choreod that runs as
 * the controller; never into choreod. The controller makes no netlink
 * call, so plant.c's defects never happen there. These two are in a path
 * only a controller runs (the deployment it shows on `choreoctl status`):
 * a field of the stats left unwritten (its bytes go out in the reply) and
 * a block never freed.
 */
#include <stdlib.h>
#include <string.h>

#include "controller.h"

void __real_controller_get_stats(const struct controller *c, uint64_t now_ms,
				 struct controller_stats *out);
void __wrap_controller_get_stats(const struct controller *c, uint64_t now_ms,
				 struct controller_stats *out);

void __wrap_controller_get_stats(const struct controller *c, uint64_t now_ms,
				 struct controller_stats *out)
{
	struct latency_summary *unset;

	__real_controller_get_stats(c, now_ms, out);
	unset = malloc(sizeof(*unset)); /* planted leak: never freed */
	if (unset)
		out->relay_lag.p50_us = unset->p50_us; /* planted: never written */
}
