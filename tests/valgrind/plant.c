// SPDX-License-Identifier: MIT
/*
 * Test-only: linked into build/valgrind/choreod-planted with
 * -Wl,--wrap=mnl_socket_sendto, never into choreod. It plants the two
 * defects the memory gate (tests/lab/test_valgrind.sh) must catch, in the
 * path the 2014-style review found noisy: the first netlink send goes out
 * with four trailing bytes nobody wrote (the kernel ignores a tail shorter
 * than a netlink header), and its copy is never freed.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <libmnl/libmnl.h>

ssize_t __real_mnl_socket_sendto(const struct mnl_socket *nl, const void *buf,
				 size_t len);
ssize_t __wrap_mnl_socket_sendto(const struct mnl_socket *nl, const void *buf,
				 size_t len);

ssize_t __wrap_mnl_socket_sendto(const struct mnl_socket *nl, const void *buf,
				 size_t len)
{
	static int planted;
	unsigned char *copy;
	ssize_t ret;

	if (planted++)
		return __real_mnl_socket_sendto(nl, buf, len);
	copy = malloc(len + 4); /* planted leak: never freed */
	if (!copy)
		return __real_mnl_socket_sendto(nl, buf, len);
	memcpy(copy, buf, len);
	ret = __real_mnl_socket_sendto(nl, copy, len + 4); /* planted: 4 bytes unset */
	return ret == (ssize_t)(len + 4) ? (ssize_t)len : ret;
}
