// SPDX-License-Identifier: MIT
/* libFuzzer harness for the query path: any bytes as a DNS query over UDP
 * and over TCP, against a zone with a protected name and a delegation. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dns.h"
#include "log.h"
#include "rotor.h"
#include "zone.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char conf[] =
	"[dns]\nlisten = 127.0.0.1\nzone = example.test\nzonefile = z\n"
	"[service www]\nname = www.example.test\npool = 203.0.113.0/25\n"
	"pool6 = 2001:db8:1::/64\nserver = 192.0.2.10\nhoneypot = 192.0.2.20\n"
	"server6 = 2001:db8:2::10\nhoneypot6 = 2001:db8:2::20\nmax_open = 4\n";

static const char zonetext[] =
	"$TTL 60\n@ SOA ns1 host 1 2 3 4 5\n@ NS ns1\nns1 A 198.51.100.53\n"
	"@ MX 10 mail\nmail A 192.0.2.25\n*.wild A 192.0.2.9\na.b.c TXT x\n"
	"web CNAME www\nloop CNAME loop\nsub NS ns.sub\nns.sub A 192.0.2.53\n"
	"big TXT \"0123456789012345678901234567890123456789012345678901234567890123456789\"\n"
	"big TXT \"1123456789012345678901234567890123456789012345678901234567890123456789\"\n"
	"big TXT \"2123456789012345678901234567890123456789012345678901234567890123456789\"\n"
	"big TXT \"3123456789012345678901234567890123456789012345678901234567890123456789\"\n"
	"big TXT \"4123456789012345678901234567890123456789012345678901234567890123456789\"\n"
	"big TXT \"5123456789012345678901234567890123456789012345678901234567890123456789\"\n"
	"big TXT \"6123456789012345678901234567890123456789012345678901234567890123456789\"\n";

static struct dns_ctx *dns;
static uint8_t out[DNS_TCP_MAX];
static uint64_t now_ms;

static void setup(void)
{
	struct config_errors errs = { 0 };
	struct config *cfg;
	struct zone *zone;
	struct rotor *rotor;

	log_set_level(LOG_LVL_ERR);
	if (config_parse("fuzz.conf", conf, sizeof(conf) - 1, &cfg, &errs) < 0 ||
	    zone_load_string(cfg, "fuzz.zone", zonetext, sizeof(zonetext) - 1,
			     &zone) < 0 ||
	    !(rotor = rotor_new(cfg, NULL, NULL)) ||
	    !(dns = dns_ctx_new(cfg, zone, rotor)))
		abort();
	config_errors_free(&errs);
	/* cfg, zone and rotor live as long as the process */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_in6 src = { .sin6_family = AF_INET6 };
	struct dns_result res;
	uint8_t *q;

	if (!dns)
		setup();
	if (size > DNS_TCP_MAX)
		return 0;
	inet_pton(AF_INET6, "2001:db8:18::7", &src.sin6_addr);
	q = malloc(size ? size : 1);
	if (!q)
		return 0;
	for (int tcp = 0; tcp < 2; tcp++) {
		memcpy(q, data, size);
		now_ms += 10;
		dns_answer(dns, q, size, (struct sockaddr *)&src, tcp, now_ms,
			   out, tcp ? DNS_TCP_MAX : 4096, &res);
		if (res.len > (tcp ? DNS_TCP_MAX : 4096u))
			abort();
		if (res.n_changes)
			dns_make_servfail(dns, out, &res);
	}
	/* the rate limit's slip: an empty TC=1 reply built from the query */
	memcpy(q, data, size);
	{
		size_t n = dns_make_slip(q, size, out, 4096);

		if (n > 4096 || (n && (n < 12 || n > size)))
			abort();
	}
	free(q);
	return 0;
}
