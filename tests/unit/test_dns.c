// SPDX-License-Identifier: MIT
/* Unit tests of query answering (src/dns.c) against tests/data/unit.zone:
 * queries are built and responses parsed with libknot, no network. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "cmocka_analyzer.h"
#include <libknot/libknot.h>

#include "config.h"
#include "dns.h"
#include "rotor.h"
#include "zone.h"

struct fixture {
	struct config *cfg;
	struct zone *zone;
	struct rotor *rotor;
	struct dns_ctx *dns;
	struct sockaddr_in src;
	uint8_t q[512];
	size_t qlen;
	uint8_t out[DNS_TCP_MAX];
	struct dns_result res;
	knot_pkt_t *resp;
};

static int setup(void **state)
{
	struct config_errors errs = { 0 };
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(config_load("tests/data/unit.conf", &f->cfg, &errs), 0);
	config_errors_free(&errs);
	assert_int_equal(zone_load(f->cfg, &f->zone), 0);
	f->rotor = rotor_new(f->cfg, NULL, NULL);
	assert_non_null(f->rotor);
	f->dns = dns_ctx_new(f->cfg, f->zone, f->rotor);
	assert_non_null(f->dns);
	f->src.sin_family = AF_INET;
	inet_pton(AF_INET, "198.18.0.7", &f->src.sin_addr);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	knot_pkt_free(f->resp);
	dns_ctx_free(f->dns);
	rotor_free(f->rotor);
	zone_free(f->zone);
	config_free(f->cfg);
	free(f);
	return 0;
}

/* Build a query; bufsize 0 = no EDNS; ecs "a.b.c.d/len" or NULL. */
static void make_query(struct fixture *f, const char *name, uint16_t type,
		       uint16_t bufsize, const char *ecs, uint8_t version)
{
	uint8_t qname[KNOT_DNAME_MAXLEN];
	knot_pkt_t *pkt = knot_pkt_new(NULL, sizeof(f->q), NULL);

	assert_non_null(pkt);
	assert_non_null(knot_dname_from_str(qname, name, sizeof(qname)));
	knot_wire_set_id(pkt->wire, 0x1234);
	assert_int_equal(knot_pkt_put_question(pkt, qname, KNOT_CLASS_IN, type), 0);
	if (bufsize) {
		knot_rrset_t opt;

		assert_int_equal(knot_edns_init(&opt, bufsize, 0, version, NULL), 0);
		if (ecs) {
			knot_edns_client_subnet_t sub = { 0 };
			struct sockaddr_storage ss = { 0 };
			struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
			char host[32];
			const char *slash = strchr(ecs, '/');
			uint8_t data[64];
			uint16_t len;

			memcpy(host, ecs, (size_t)(slash - ecs));
			host[slash - ecs] = '\0';
			sin->sin_family = AF_INET;
			inet_pton(AF_INET, host, &sin->sin_addr);
			knot_edns_client_subnet_set_addr(&sub, &ss);
			sub.source_len = (uint8_t)atoi(slash + 1);
			len = knot_edns_client_subnet_size(&sub);
			assert_int_equal(knot_edns_client_subnet_write(data, len, &sub), 0);
			assert_int_equal(knot_edns_add_option(&opt, KNOT_EDNS_OPTION_CLIENT_SUBNET,
							      len, data, NULL), 0);
		}
		assert_int_equal(knot_pkt_begin(pkt, KNOT_ADDITIONAL), 0);
		assert_int_equal(knot_pkt_put(pkt, 0, &opt, KNOT_PF_FREE), 0);
	}
	f->qlen = pkt->size;
	memcpy(f->q, pkt->wire, pkt->size);
	knot_pkt_free(pkt);
}

/* Answer the query held in f->q and parse the response into f->resp. */
static void ask(struct fixture *f, bool tcp, uint64_t now_ms)
{
	knot_pkt_free(f->resp);
	f->resp = NULL;
	dns_answer(f->dns, f->q, f->qlen, (struct sockaddr *)&f->src, tcp, now_ms,
		   f->out, tcp ? DNS_TCP_MAX : 4096, &f->res);
	if (f->res.len == 0)
		return;
	f->resp = knot_pkt_new(f->out, (uint16_t)f->res.len, NULL);
	assert_non_null(f->resp);
	assert_int_equal(knot_pkt_parse(f->resp, 0), 0);
	assert_int_equal(knot_wire_get_id(f->out), 0x1234);
	assert_true(knot_wire_get_qr(f->out));
}

static uint16_t count(const struct fixture *f, knot_section_t s)
{
	return knot_pkt_section(f->resp, s)->count;
}

static const knot_rrset_t *rr_at(const struct fixture *f, knot_section_t s,
				 uint16_t i)
{
	return knot_pkt_rr(knot_pkt_section(f->resp, s), i);
}

static void test_rotated_a(void **state)
{
	struct fixture *f = *state;
	const knot_rrset_t *a;
	struct in_addr addr;

	make_query(f, "www.example.test", KNOT_RRTYPE_A, 1232, NULL, 0);
	ask(f, false, 1000);
	assert_int_equal(knot_wire_get_rcode(f->out), KNOT_RCODE_NOERROR);
	assert_true(knot_wire_get_aa(f->out));
	assert_int_equal(count(f, KNOT_ANSWER), 1);
	a = rr_at(f, KNOT_ANSWER, 0);
	assert_int_equal(a->type, KNOT_RRTYPE_A);
	assert_int_equal(a->ttl, 5);
	memcpy(&addr, knot_rdataset_at(&a->rrs, 0)->data, 4);
	/* inside 203.0.113.0/25 */
	assert_int_equal(ntohl(addr.s_addr) & 0xffffff80, 0xcb007100);
	/* the asker's binding and the open window */
	assert_int_equal(f->res.n_changes, 2);
	assert_int_equal(f->res.changes[0].kind, CHANGE_BIND);
	assert_memory_equal(f->res.changes[0].src, &f->src.sin_addr, 4);
	assert_memory_equal(f->res.changes[0].addr, &addr, 4);
	assert_int_equal(f->res.changes[1].kind, CHANGE_OPEN);
	assert_int_equal(f->res.changes[1].ms, 9000); /* window 7 + grace 2 */
	assert_int_equal(count(f, KNOT_AUTHORITY), 0);
}

static void test_rotated_aaaa_and_nodata(void **state)
{
	struct fixture *f = *state;
	const knot_rrset_t *a;

	make_query(f, "www.example.test", KNOT_RRTYPE_AAAA, 0, NULL, 0);
	ask(f, false, 1000);
	assert_int_equal(count(f, KNOT_ANSWER), 1);
	a = rr_at(f, KNOT_ANSWER, 0);
	assert_int_equal(a->type, KNOT_RRTYPE_AAAA);
	assert_memory_equal(knot_rdataset_at(&a->rrs, 0)->data,
			    "\x20\x01\x0d\xb8\x00\x01\x00\x00", 8);
	/* an IPv4 asker is not bound to an IPv6 address: only the window */
	assert_int_equal(f->res.n_changes, 1);
	assert_int_equal(f->res.changes[0].kind, CHANGE_OPEN);

	/* smtp has no pool6: NODATA with the SOA, nothing opened */
	make_query(f, "smtp.example.test", KNOT_RRTYPE_AAAA, 0, NULL, 0);
	ask(f, false, 1000);
	assert_int_equal(knot_wire_get_rcode(f->out), KNOT_RCODE_NOERROR);
	assert_int_equal(count(f, KNOT_ANSWER), 0);
	assert_int_equal(count(f, KNOT_AUTHORITY), 1);
	assert_int_equal(rr_at(f, KNOT_AUTHORITY, 0)->type, KNOT_RRTYPE_SOA);
	assert_int_equal(f->res.n_changes, 0);

	/* static data at a protected name is served as usual */
	make_query(f, "www.example.test", KNOT_RRTYPE_TXT, 0, NULL, 0);
	ask(f, false, 1000);
	assert_int_equal(count(f, KNOT_ANSWER), 1);
	assert_int_equal(f->res.n_changes, 0);
}

static void test_ecs_scoped(void **state)
{
	struct fixture *f = *state;
	uint8_t *o;
	knot_edns_client_subnet_t ecs;

	make_query(f, "www.example.test", KNOT_RRTYPE_A, 1232, "198.18.5.0/24", 0);
	ask(f, false, 1000);
	assert_int_equal(count(f, KNOT_ANSWER), 1);
	o = knot_pkt_edns_option(f->resp, KNOT_EDNS_OPTION_CLIENT_SUBNET);
	assert_non_null(o);
	assert_int_equal(knot_edns_client_subnet_parse(&ecs, knot_edns_opt_get_data(o),
						       knot_edns_opt_get_length(o)), 0);
	assert_int_equal(ecs.source_len, 24);
	assert_int_equal(ecs.scope_len, 24);
	assert_int_equal(f->res.n_changes, 2);
	assert_int_equal(f->res.changes[1].kind, CHANGE_OPEN_SCOPED);
	assert_int_equal(f->res.changes[1].src_len, 24);
	assert_memory_equal(f->res.changes[1].src, "\xc6\x12\x05\x00", 4);

	/* the same option from a querier not in ecs_resolvers: echoed with
	 * scope 0, and the answer opens a plain window */
	inet_pton(AF_INET, "192.0.2.99", &f->src.sin_addr);
	make_query(f, "www.example.test", KNOT_RRTYPE_A, 1232, "198.18.5.0/24", 0);
	ask(f, false, 1000);
	assert_int_equal(count(f, KNOT_ANSWER), 1);
	o = knot_pkt_edns_option(f->resp, KNOT_EDNS_OPTION_CLIENT_SUBNET);
	assert_non_null(o);
	knot_edns_client_subnet_parse(&ecs, knot_edns_opt_get_data(o),
				      knot_edns_opt_get_length(o));
	assert_int_equal(ecs.source_len, 24);
	assert_int_equal(ecs.scope_len, 0);
	assert_int_equal(f->res.changes[1].kind, CHANGE_OPEN);
	/* and from a trusted one, a subnet broader than ecs_prefix4: ignored */
	inet_pton(AF_INET, "198.18.0.7", &f->src.sin_addr);
	make_query(f, "www.example.test", KNOT_RRTYPE_A, 1232, "128.0.0.0/1", 0);
	ask(f, false, 1000);
	o = knot_pkt_edns_option(f->resp, KNOT_EDNS_OPTION_CLIENT_SUBNET);
	assert_non_null(o);
	knot_edns_client_subnet_parse(&ecs, knot_edns_opt_get_data(o),
				      knot_edns_opt_get_length(o));
	assert_int_equal(ecs.scope_len, 0);
	assert_int_equal(f->res.changes[1].kind, CHANGE_OPEN);

	/* a static answer does not depend on the subnet: scope 0 */
	make_query(f, "static.example.test", KNOT_RRTYPE_A, 1232, "198.18.5.0/24", 0);
	ask(f, false, 1000);
	o = knot_pkt_edns_option(f->resp, KNOT_EDNS_OPTION_CLIENT_SUBNET);
	assert_non_null(o);
	knot_edns_client_subnet_parse(&ecs, knot_edns_opt_get_data(o),
				      knot_edns_opt_get_length(o));
	assert_int_equal(ecs.scope_len, 0);
}

static void test_static_lookups(void **state)
{
	struct fixture *f = *state;

	/* case of the question is preserved */
	make_query(f, "sTaTiC.ExAmPlE.tEsT", KNOT_RRTYPE_A, 0, NULL, 0);
	ask(f, false, 0);
	assert_memory_equal(f->out + 12, "\x06sTaTiC\x07" "ExAmPlE\x04tEsT", 21);
	assert_int_equal(count(f, KNOT_ANSWER), 1);

	/* NXDOMAIN with SOA, TTL min(SOA TTL, MINIMUM) */
	make_query(f, "nope.example.test", KNOT_RRTYPE_A, 0, NULL, 0);
	ask(f, false, 0);
	assert_int_equal(knot_wire_get_rcode(f->out), KNOT_RCODE_NXDOMAIN);
	assert_true(knot_wire_get_aa(f->out));
	assert_int_equal(rr_at(f, KNOT_AUTHORITY, 0)->ttl, 300);

	/* empty non-terminal: NODATA */
	make_query(f, "b.c.example.test", KNOT_RRTYPE_A, 0, NULL, 0);
	ask(f, false, 0);
	assert_int_equal(knot_wire_get_rcode(f->out), KNOT_RCODE_NOERROR);
	assert_int_equal(count(f, KNOT_ANSWER), 0);
	assert_int_equal(count(f, KNOT_AUTHORITY), 1);

	/* wildcard: owner is the name asked */
	make_query(f, "x.y.wild.example.test", KNOT_RRTYPE_A, 0, NULL, 0);
	ask(f, false, 0);
	assert_int_equal(count(f, KNOT_ANSWER), 1);
	assert_true(knot_dname_is_equal(rr_at(f, KNOT_ANSWER, 0)->owner,
					(const uint8_t *)"\x01x\x01y\x04wild\x07" "example\x04test"));

	/* referral: no AA, NS in authority, glue in additional */
	make_query(f, "deep.sub.example.test", KNOT_RRTYPE_A, 0, NULL, 0);
	ask(f, false, 0);
	assert_false(knot_wire_get_aa(f->out));
	assert_int_equal(count(f, KNOT_ANSWER), 0);
	assert_int_equal(rr_at(f, KNOT_AUTHORITY, 0)->type, KNOT_RRTYPE_NS);
	assert_int_equal(count(f, KNOT_ADDITIONAL), 1);

	/* DS at the cut is answered by the parent: NODATA with AA */
	make_query(f, "sub.example.test", KNOT_RRTYPE_DS, 0, NULL, 0);
	ask(f, false, 0);
	assert_true(knot_wire_get_aa(f->out));
	assert_int_equal(rr_at(f, KNOT_AUTHORITY, 0)->type, KNOT_RRTYPE_SOA);

	/* a CNAME loop ends, a dangling CNAME is NXDOMAIN */
	make_query(f, "loop1.example.test", KNOT_RRTYPE_A, 0, NULL, 0);
	ask(f, false, 0);
	assert_int_equal(count(f, KNOT_ANSWER), 2);
	make_query(f, "gone.example.test", KNOT_RRTYPE_A, 0, NULL, 0);
	ask(f, false, 0);
	assert_int_equal(knot_wire_get_rcode(f->out), KNOT_RCODE_NXDOMAIN);
	assert_int_equal(count(f, KNOT_ANSWER), 1);

	/* out of zone: REFUSED without AA */
	make_query(f, "example.com", KNOT_RRTYPE_A, 0, NULL, 0);
	ask(f, false, 0);
	assert_int_equal(knot_wire_get_rcode(f->out), KNOT_RCODE_REFUSED);
	assert_false(knot_wire_get_aa(f->out));
}

static void test_cname_to_protected(void **state)
{
	struct fixture *f = *state;

	make_query(f, "web.example.test", KNOT_RRTYPE_A, 0, NULL, 0);
	ask(f, false, 0);
	assert_int_equal(count(f, KNOT_ANSWER), 2);
	assert_int_equal(rr_at(f, KNOT_ANSWER, 0)->type, KNOT_RRTYPE_CNAME);
	assert_int_equal(rr_at(f, KNOT_ANSWER, 1)->type, KNOT_RRTYPE_A);
	assert_int_equal(f->res.n_changes, 2);
}

static void test_any_opens_nothing(void **state)
{
	struct fixture *f = *state;

	make_query(f, "smtp.example.test", KNOT_RRTYPE_ANY, 0, NULL, 0);
	ask(f, false, 0);
	assert_int_equal(count(f, KNOT_ANSWER), 1);
	assert_int_equal(rr_at(f, KNOT_ANSWER, 0)->type, KNOT_RRTYPE_HINFO);
	assert_int_equal(f->res.n_changes, 0);

	make_query(f, "example.test", KNOT_RRTYPE_ANY, 0, NULL, 0);
	ask(f, false, 0);
	assert_int_equal(count(f, KNOT_ANSWER), 1);
	assert_int_equal(rr_at(f, KNOT_ANSWER, 0)->type, KNOT_RRTYPE_SOA);
}

static void test_truncation(void **state)
{
	struct fixture *f = *state;

	/* 8 long TXT records do not fit 512 bytes: TC, nothing inside */
	make_query(f, "big.example.test", KNOT_RRTYPE_TXT, 0, NULL, 0);
	ask(f, false, 0);
	assert_true(knot_wire_get_tc(f->out));
	assert_int_equal(count(f, KNOT_ANSWER), 0);
	assert_true(f->res.len <= 512);

	/* they fit EDNS 1232 and TCP */
	make_query(f, "big.example.test", KNOT_RRTYPE_TXT, 1232, NULL, 0);
	ask(f, false, 0);
	assert_false(knot_wire_get_tc(f->out));
	assert_int_equal(count(f, KNOT_ANSWER), 8);
	make_query(f, "big.example.test", KNOT_RRTYPE_TXT, 0, NULL, 0);
	ask(f, true, 0);
	assert_false(knot_wire_get_tc(f->out));
	assert_int_equal(count(f, KNOT_ANSWER), 8);
}

static void test_edns_badvers(void **state)
{
	struct fixture *f = *state;

	make_query(f, "www.example.test", KNOT_RRTYPE_A, 1232, NULL, 1);
	ask(f, false, 0);
	assert_int_equal(knot_pkt_ext_rcode(f->resp), KNOT_RCODE_BADVERS);
	assert_int_equal(count(f, KNOT_ANSWER), 0);
	assert_int_equal(f->res.n_changes, 0);
	assert_int_equal(knot_edns_get_version(f->resp->opt_rr), 0);
}

static void test_malformed(void **state)
{
	struct fixture *f = *state;

	/* a response is never answered; nor is a short packet */
	make_query(f, "www.example.test", KNOT_RRTYPE_A, 0, NULL, 0);
	knot_wire_set_qr(f->q);
	ask(f, false, 0);
	assert_int_equal(f->res.len, 0);
	f->qlen = 11;
	ask(f, false, 0);
	assert_int_equal(f->res.len, 0);

	/* QDCOUNT 2: FORMERR, header only */
	make_query(f, "www.example.test", KNOT_RRTYPE_A, 0, NULL, 0);
	knot_wire_set_qdcount(f->q, 2);
	ask(f, false, 0);
	assert_int_equal(f->res.len, 12);
	assert_int_equal(knot_wire_get_rcode(f->out), KNOT_RCODE_FORMERR);
	assert_int_equal(f->res.n_changes, 0);

	/* question cut short */
	make_query(f, "www.example.test", KNOT_RRTYPE_A, 0, NULL, 0);
	f->qlen -= 3;
	ask(f, false, 0);
	assert_int_equal(knot_wire_get_rcode(f->out), KNOT_RCODE_FORMERR);

	/* opcode STATUS: NOTIMP */
	make_query(f, "www.example.test", KNOT_RRTYPE_A, 0, NULL, 0);
	knot_wire_set_opcode(f->q, KNOT_OPCODE_STATUS);
	ask(f, false, 0);
	assert_int_equal(knot_wire_get_rcode(f->out), KNOT_RCODE_NOTIMPL);
	assert_int_equal(f->res.n_changes, 0);

	/* ECS with scope set in a query: FORMERR (RFC 7871 §7.1.1) */
	make_query(f, "www.example.test", KNOT_RRTYPE_A, 1232, "198.18.5.0/24", 0);
	/* option data at the end: family(2) source(1) scope(1) address(3) */
	assert_int_equal(f->q[f->qlen - 5], 24);
	f->q[f->qlen - 4] = 8;
	ask(f, false, 0);
	assert_int_equal(knot_wire_get_rcode(f->out), KNOT_RCODE_FORMERR);
}

static void test_servfail_rewrite(void **state)
{
	struct fixture *f = *state;

	make_query(f, "www.example.test", KNOT_RRTYPE_A, 1232, NULL, 0);
	ask(f, false, 0);
	assert_int_equal(f->res.n_changes, 2);
	dns_make_servfail(f->dns, f->out, &f->res);
	assert_int_equal(f->res.n_changes, 0);
	knot_pkt_free(f->resp);
	f->resp = knot_pkt_new(f->out, (uint16_t)f->res.len, NULL);
	assert_int_equal(knot_pkt_parse(f->resp, 0), 0);
	assert_int_equal(knot_wire_get_rcode(f->out), KNOT_RCODE_SERVFAIL);
	assert_false(knot_wire_get_aa(f->out));
	assert_int_equal(count(f, KNOT_ANSWER), 0);
	assert_non_null(f->resp->opt_rr);
	assert_int_equal(knot_pkt_qtype(f->resp), KNOT_RRTYPE_A);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rotated_a),
		cmocka_unit_test(test_rotated_aaaa_and_nodata),
		cmocka_unit_test(test_ecs_scoped),
		cmocka_unit_test(test_static_lookups),
		cmocka_unit_test(test_cname_to_protected),
		cmocka_unit_test(test_any_opens_nothing),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_edns_badvers),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_servfail_rewrite),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
