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
#include "nat.h"
#include "version.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: choreoctl [-s SOCKET] COMMAND\n"
		"       choreoctl [-s SOCKET] remove-table TABLE\n"
		"       choreoctl [-s SOCKET] forget NODE\n"
		"       choreoctl [-s SOCKET] quarantine PREFIX SECONDS\n"
		"Query a running choreod.\n\n"
		"  -s SOCKET  control socket (default %s)\n"
		"  -h         this help\n"
		"  -V         print the version\n\n"
		"Commands:\n"
		"  status     counters and state of each service\n"
		"  open       pool addresses open to any source now\n"
		"  bindings   the gateway's bindings: service source address ms_left\n"
		"  remove-table TABLE\n"
		"             delete choreod's nftables table (choreod must be stopped;\n"
		"             a table not made by choreod is never touched)\n"
		"  forget NODE\n"
		"             on a controller: DNS node NODE has stopped for good; its\n"
		"             slices and share drain and go to the others (say it only\n"
		"             when the node no longer answers)\n"
		"  quarantine PREFIX SECONDS\n"
		"             on a controller: the sources of PREFIX reach only the\n"
		"             honeypot, on every gateway, for SECONDS\n\n"
		"See choreoctl(8).\n", CONFIG_DEFAULT_CONTROL);
}

static int connect_socket(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static int remove_table(const char *sock, const char *table)
{
	int fd = connect_socket(sock);
	int ret;

	if (fd >= 0) {
		close(fd);
		fprintf(stderr, "choreoctl: choreod is running (%s answers); stop it "
			"before removing its table\n", sock);
		return 1;
	}
	ret = nat_remove_table(table);
	if (ret == -EPERM) {
		fprintf(stderr, "choreoctl: table inet %s was not made by choreod; "
			"not touched\n", table);
		return 1;
	}
	if (ret < 0) {
		fprintf(stderr, "choreoctl: table inet %s: %s\n", table, strerror(-ret));
		return 1;
	}
	printf("table inet %s removed\n", table);
	return 0;
}

int main(int argc, char **argv)
{
	const char *path = CONFIG_DEFAULT_CONTROL;
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
	if (optind + 2 == argc && strcmp(argv[optind], "remove-table") == 0)
		return remove_table(path, argv[optind + 1]);
	if (optind + 2 == argc && strcmp(argv[optind], "forget") == 0 &&
	    strlen(argv[optind + 1]) <= CONFIG_NAME_MAX &&
	    !strpbrk(argv[optind + 1], " \n")) {
		snprintf(cmd, sizeof(cmd), "forget %s\n", argv[optind + 1]);
	} else if (optind + 3 == argc && strcmp(argv[optind], "quarantine") == 0 &&
		   strlen(argv[optind + 1]) < 64 && strlen(argv[optind + 2]) < 12 &&
		   !strpbrk(argv[optind + 1], " \n") && !strpbrk(argv[optind + 2], " \n")) {
		snprintf(cmd, sizeof(cmd), "quarantine %s %s\n", argv[optind + 1],
			 argv[optind + 2]);
	} else if (optind + 1 != argc) {
		usage(stderr);
		return 2;
	} else if (strlen(argv[optind]) > 256 || strchr(argv[optind], '\n')) {
		fprintf(stderr, "choreoctl: command too long or has a newline\n");
		return 2;
	} else {
		snprintf(cmd, sizeof(cmd), "%s\n", argv[optind]);
	}
	fd = connect_socket(path);
	if (fd < 0) {
		fprintf(stderr, "choreoctl: %s: %s (is choreod running?)\n", path,
			strerror(errno));
		return 1;
	}
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
