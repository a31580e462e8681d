// SPDX-License-Identifier: MIT
/* libFuzzer harness for choreo-load's parsers of what the network sends:
 * DNS replies and service banners (both untrusted). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../tools/load_model.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t q[LOAD_DNS_QMAX];
	uint32_t addr;
	int qlen, rcode;
	uint8_t *copy;

	qlen = load_dns_query(q, "www.example.test", 0x1234);
	if (qlen < 0)
		abort();
	/* an exact-size copy, so a read past the end is caught */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	/* as a reply: give it our id and question when it is long enough, so
	 * the parser goes past the checks that match the query */
	if (size >= (size_t)qlen) {
		memcpy(copy, q, 2);
		memcpy(copy + LOAD_DNS_HDR, q + LOAD_DNS_HDR, (size_t)qlen - LOAD_DNS_HDR);
	}
	load_dns_answer(copy, size, q, (size_t)qlen, &addr, &rcode);
	load_dns_answer(data, size, q, (size_t)qlen, &addr, &rcode);
	load_banner_classify(copy, size, false, "server", "honeypot");
	load_banner_classify(copy, size, true, "server", "honeypot");
	free(copy);
	return 0;
}
