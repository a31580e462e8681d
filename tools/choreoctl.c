// SPDX-License-Identifier: MIT
/* choreoctl: talk to a running choreod over its control socket. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "version.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: choreoctl [-s SOCKET] COMMAND\n"
		"Query a running choreod.\n\n"
		"  -s SOCKET  control socket (default %s)\n"
		"  -h         this help\n"
		"  -V         print the version\n\n"
		"Commands:\n"
		"  status     counters and state of each service\n"
		"  open       pool addresses open to any source now\n\n"
		"See choreoctl(8).\n", CONFIG_DEFAULT_CONTROL);
}

int main(int argc, char **argv)
{
	const char *path = CONFIG_DEFAULT_CONTROL;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char buf[4096], cmd[300];
	bool error = false, first = true;
	ssize_t n;
	int opt, fd;

	while ((opt = getopt(argc, argv, "s:hV")) != -1) {
		switch (opt) {
		case 's': path = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("choreoctl %s\n", CHOREO_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind + 1 != argc) {
		usage(stderr);
		return 2;
	}
	if (strlen(argv[optind]) > 256 || strchr(argv[optind], '\n')) {
		fprintf(stderr, "choreoctl: command too long or has a newline\n");
		return 2;
	}
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "choreoctl: socket path too long: %s\n", path);
		return 1;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "choreoctl: %s: %s (is choreod running?)\n", path,
			strerror(errno));
		return 1;
	}
	snprintf(cmd, sizeof(cmd), "%s\n", argv[optind]);
	if (send(fd, cmd, strlen(cmd), MSG_NOSIGNAL) < 0) {
		fprintf(stderr, "choreoctl: %s: %s\n", path, strerror(errno));
		close(fd);
		return 1;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (first && n >= 6 && memcmp(buf, "error:", 6) == 0)
			error = true;
		first = false;
		fwrite(buf, 1, (size_t)n, stdout);
	}
	close(fd);
	return error ? 1 : 0;
}
