// SPDX-License-Identifier: MIT
#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t addr_family_size(int family)
{
	return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
}

int addr_parse(const char *s, int *family, uint8_t out[static 16])
{
	memset(out, 0, 16);
	if (inet_pton(AF_INET, s, out) == 1) {
		*family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, out) == 1) {
		*family = AF_INET6;
		return 0;
	}
	memset(out, 0, 16);
	return -EINVAL;
}

void addr_mask(int family, uint8_t a[static 16], unsigned len)
{
	(void)family; /* bytes past the family's size are zero by convention */
	for (unsigned i = 0; i < 16; i++) {
		unsigned first = i * 8;

		if (first >= len)
			a[i] = 0;
		else if (first + 8 > len)
			a[i] &= (uint8_t)(0xff << (first + 8 - len));
	}
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno == 0 && *end == '\0' && *out <= max;
}

int addr_prefix_parse(const char *s, struct addr_prefix *p)
{
	char buf[ADDR_STRLEN];
	const char *slash = strchr(s, '/');
	unsigned long len;
	uint8_t masked[16];

	if (!slash || (size_t)(slash - s) >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, (size_t)(slash - s));
	buf[slash - s] = '\0';
	memset(p, 0, sizeof(*p));
	if (addr_parse(buf, &p->family, p->bytes) < 0)
		return -EINVAL;
	if (!parse_uint(slash + 1, addr_family_size(p->family) * 8, &len))
		return -EINVAL;
	p->len = (uint8_t)len;
	memcpy(masked, p->bytes, 16);
	addr_mask(p->family, masked, p->len);
	if (memcmp(masked, p->bytes, 16) != 0)
		return -EDOM;
	return 0;
}

int addr_sockaddr_parse(const char *s, uint16_t default_port,
			struct sockaddr_storage *ss, socklen_t *len)
{
	char host[ADDR_STRLEN];
	const char *port = NULL;
	size_t hlen;
	unsigned long pnum = default_port;
	uint8_t a[16];
	int family;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close)
			return -EINVAL;
		hlen = (size_t)(close - s - 1);
		if (hlen >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		if (close[1] == ':')
			port = close + 2;
		else if (close[1] != '\0')
			return -EINVAL;
	} else {
		const char *colon = strchr(s, ':');

		/* more than one colon: a bare IPv6 address */
		if (colon && strchr(colon + 1, ':'))
			colon = NULL;
		hlen = colon ? (size_t)(colon - s) : strlen(s);
		if (hlen >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, hlen);
		host[hlen] = '\0';
		if (colon)
			port = colon + 1;
	}
	if (port && (!parse_uint(port, 65535, &pnum) || pnum == 0))
		return -EINVAL;
	if (addr_parse(host, &family, a) < 0)
		return -EINVAL;
	if (s[0] == '[' && family != AF_INET6)
		return -EINVAL;

	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)pnum);
		memcpy(&sin->sin_addr, a, 4);
		*len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)pnum);
		memcpy(&sin6->sin6_addr, a, 16);
		*len = sizeof(*sin6);
	}
	return 0;
}

bool addr_prefix_contains(const struct addr_prefix *p, int family,
			  const uint8_t a[static 16])
{
	uint8_t masked[16];

	if (family != p->family)
		return false;
	memcpy(masked, a, 16);
	addr_mask(family, masked, p->len);
	return memcmp(masked, p->bytes, 16) == 0;
}

bool addr_prefix_overlap(const struct addr_prefix *a,
			 const struct addr_prefix *b)
{
	const struct addr_prefix *shorter = a->len <= b->len ? a : b;
	const struct addr_prefix *longer = shorter == a ? b : a;

	if (a->family != b->family)
		return false;
	return addr_prefix_contains(shorter, longer->family, longer->bytes);
}

unsigned addr_prefix_host_bits(const struct addr_prefix *p)
{
	return (unsigned)addr_family_size(p->family) * 8 - p->len;
}

const char *addr_format(int family, const uint8_t a[static 16],
			char buf[static ADDR_STRLEN])
{
	if (!inet_ntop(family, a, buf, ADDR_STRLEN))
		snprintf(buf, ADDR_STRLEN, "?");
	return buf;
}

/* inet_ntop into a buffer the compiler knows is short enough */
static const char *ntop(int family, const uint8_t *a, char tmp[INET6_ADDRSTRLEN])
{
	if (!inet_ntop(family, a, tmp, INET6_ADDRSTRLEN))
		strcpy(tmp, "?");
	return tmp;
}

const char *addr_prefix_format(const struct addr_prefix *p,
			       char buf[static ADDR_STRLEN])
{
	char tmp[INET6_ADDRSTRLEN];

	snprintf(buf, ADDR_STRLEN, "%s/%u", ntop(p->family, p->bytes, tmp),
		 p->len);
	return buf;
}

int addr_from_sockaddr(const struct sockaddr *sa, int *family,
		       uint8_t out[static 16])
{
	memset(out, 0, 16);
	if (sa->sa_family == AF_INET) {
		memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		*family = AF_INET;
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		/* a v4-mapped source is the IPv4 client it stands for */
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			memcpy(out, &a6->s6_addr[12], 4);
			*family = AF_INET;
		} else {
			memcpy(out, a6, 16);
			*family = AF_INET6;
		}
		return 0;
	}
	return -EAFNOSUPPORT;
}

const char *addr_sockaddr_format(const struct sockaddr *sa,
				 char buf[static ADDR_STRLEN])
{
	char tmp[INET6_ADDRSTRLEN];
	uint8_t a[16];
	int family;

	if (addr_from_sockaddr(sa, &family, a) < 0) {
		snprintf(buf, ADDR_STRLEN, "?");
		return buf;
	}
	ntop(family, a, tmp);
	if (sa->sa_family == AF_INET6 && family == AF_INET6)
		snprintf(buf, ADDR_STRLEN, "[%s]:%u", tmp,
			 ntohs(((const struct sockaddr_in6 *)sa)->sin6_port));
	else if (sa->sa_family == AF_INET6)
		snprintf(buf, ADDR_STRLEN, "%s:%u", tmp,
			 ntohs(((const struct sockaddr_in6 *)sa)->sin6_port));
	else
		snprintf(buf, ADDR_STRLEN, "%s:%u", tmp,
			 ntohs(((const struct sockaddr_in *)sa)->sin_port));
	return buf;
}
