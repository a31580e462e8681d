/* SPDX-License-Identifier: MIT */
/*
 * Addresses and prefixes: parsing, formatting and prefix arithmetic.
 * Addresses are kept as 16 bytes in network order; an IPv4 address uses the
 * first 4 bytes and leaves the rest zero.
 */
#ifndef CHOREO_ADDR_H
#define CHOREO_ADDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define ADDR_STRLEN 64 /* enough for "[ipv6]:port" and "ipv6/len" */

struct addr_prefix {
	int family;        /* AF_INET or AF_INET6 */
	uint8_t bytes[16]; /* network order, host bits zero */
	uint8_t len;       /* prefix length in bits */
};

/* Length in bytes of an address of this family (4 or 16), 0 if unknown. */
size_t addr_family_size(int family);

/* Parse a bare IPv4 or IPv6 address. Returns 0 or -EINVAL. */
int addr_parse(const char *s, int *family, uint8_t out[static 16]);

/*
 * Parse "address/len". Returns 0, -EINVAL when the text is not a prefix, or
 * -EDOM when host bits are set (it is an address, not a network prefix).
 */
int addr_prefix_parse(const char *s, struct addr_prefix *p);

/*
 * Parse "ipv4[:port]" or "[ipv6][:port]" (a bare IPv6 address without port is
 * accepted too). Returns 0 or -EINVAL.
 */
int addr_sockaddr_parse(const char *s, uint16_t default_port,
			struct sockaddr_storage *ss, socklen_t *len);

/* Clear the bits of a past the first len bits. */
void addr_mask(int family, uint8_t a[static 16], unsigned len);

bool addr_prefix_contains(const struct addr_prefix *p, int family,
			  const uint8_t a[static 16]);
bool addr_prefix_overlap(const struct addr_prefix *a,
			 const struct addr_prefix *b);

/* Number of host bits in the prefix (32 - len or 128 - len). */
unsigned addr_prefix_host_bits(const struct addr_prefix *p);

/* Formatting; each returns buf. */
const char *addr_format(int family, const uint8_t a[static 16],
			char buf[static ADDR_STRLEN]);
const char *addr_prefix_format(const struct addr_prefix *p,
			       char buf[static ADDR_STRLEN]);
const char *addr_sockaddr_format(const struct sockaddr *sa,
				 char buf[static ADDR_STRLEN]);

/* Extract family and address bytes from a sockaddr; -EAFNOSUPPORT if neither. */
int addr_from_sockaddr(const struct sockaddr *sa, int *family,
		       uint8_t out[static 16]);

#endif
