// SPDX-License-Identifier: MIT
/*
 * nflog-listen: the lab's listener on an NFLOG group (tests/lab/
 * test_nflog.sh), through src/nflog.c as choreod uses it. Binds the group,
 * prints "ready", then one line per record:
 *     bind 4 198.18.1.1 203.0.113.7      (prefix GW_LOG_PREFIX_BIND)
 *     other 6 SRC DST                    (any other prefix)
 * and, when stopped (SIGTERM, SIGINT), "stats records N bad N lost N
 * overruns N". Exit 1 when the group cannot be bound (the error on stderr).
 * Usage: nflog-listen GROUP
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "addr.h"
#include "nflog.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void print_event(void *ctx, const struct nfl_event *e)
{
	char src[ADDR_STRLEN], dst[ADDR_STRLEN];

	(void)ctx;
	printf("%s %c %s %s\n", e->is_binding ? "bind" : "other",
	       e->family == AF_INET ? '4' : '6', addr_format(e->family, e->src, src),
	       addr_format(e->family, e->dst, dst));
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct nfl_stats st;
	struct nfl *n;
	char *end;
	unsigned long group;
	int rc = 0;

	if (argc != 2 || (group = strtoul(argv[1], &end, 10)) > 65535 ||
	    end == argv[1] || *end) {
		fprintf(stderr, "usage: nflog-listen GROUP (0-65535)\n");
		return 2;
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (nfl_open((uint16_t)group, &n) < 0)
		return 1;
	printf("ready\n");
	fflush(stdout);
	while (!stop) {
		struct pollfd p = { .fd = nfl_fd(n), .events = POLLIN };
		int ret = poll(&p, 1, 200);

		if (ret < 0 && errno != EINTR) {
			perror("poll");
			rc = 1;
			break;
		}
		if (ret > 0 && (ret = nfl_read(n, print_event, NULL)) < 0) {
			fprintf(stderr, "nflog-listen: read: %s\n", strerror(-ret));
			rc = 1;
			break;
		}
	}
	nfl_get_stats(n, &st);
	printf("stats records %llu bad %llu lost %llu overruns %llu\n",
	       (unsigned long long)st.records, (unsigned long long)st.bad,
	       (unsigned long long)st.lost, (unsigned long long)st.overruns);
	nfl_close(n);
	return rc;
}
