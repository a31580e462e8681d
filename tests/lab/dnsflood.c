// SPDX-License-Identifier: MIT
/*
 * dnsflood: the lab's DNS flood generator and honest-client prober
 * (tests/lab/bench-flood.sh). Test-only; IPv4 only.
 *
 *   dnsflood flood --dst ADDR --src PREFIX/LEN [--sources N] --name NAME...
 *                  [--type A|AAAA]... [--rate QPS] --count N --duration S
 *                  [--port P] [--batch B] [--seed S] [--random-case]
 *     UDP queries with spoofed sources, written whole (IPv4 + UDP + DNS)
 *     on a raw socket (IP_HDRINCL): each query from one of N addresses
 *     spread evenly over PREFIX (chosen at random), from a random port,
 *     with a random id, a name and a type chosen at random among those
 *     given (and, with --random-case, each letter's case at random, as
 *     DNS 0x20 does). At QPS a second (0: as fast as it can), stopping
 *     after N queries or S seconds, whichever comes first. The replies go
 *     to the spoofed sources: the caller routes them where they are
 *     dropped. Reports one line:
 *       mode=flood sent= offered_qps= achieved_qps= wall_s= cpu_s=
 *       cpu_share= send_errors= sources= stop=count|duration|signal
 *     cpu_share near 1.00 with achieved < offered: the generator was the
 *     limit.
 *
 *   dnsflood probe --dst ADDR --src PREFIX/LEN --sources N --name NAME...
 *                  [--type A|AAAA]... --rate QPS --duration S
 *                  [--port P] [--timeout-ms MS] [--seed S]
 *     An honest client, as a resolver asks: each query from a socket of
 *     its own (a fresh port: a new flow for the gateway's conntrack),
 *     bound to the next of N addresses spread over PREFIX (they must be
 *     local: AnyIP, `ip route add local PREFIX dev lo`), at QPS, with a
 *     random id; the reply is matched by socket and id and timed from just
 *     before the send to the kernel's receive timestamp (SO_TIMESTAMPNS).
 *     No reply within MS (default 1000): lost. Reports one line:
 *       mode=probe sent= answered= answer_rate= lost= tc= servfail=
 *       refused= other= socket_errors= p50_us= p90_us= p99_us= max_us=
 *       send_lag_max_ms= cpu_s= wall_s= sources=
 *     answered: NOERROR with at least one answer record and TC clear (the
 *     latencies are theirs); tc: truncated replies (a client would retry
 *     over TCP); send_lag_max_ms: how late the prober itself sent.
 *
 * It reads nothing but its arguments (and, for probe, the replies to its
 * own queries, through a bounded reader). Exit 0 on a report, 2 on bad
 * arguments, 1 when a socket cannot be made.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_NAMES     16
#define MAX_BATCH     1024
#define MAX_RATE      10000000ULL       /* a second */
#define MAX_COUNT     1000000000ULL
#define MAX_DURATION  3600ULL           /* seconds */
#define MAX_PROBE_SOURCES 65536
#define MAX_PROBE_QUERIES 20000000ULL   /* rate x duration, for the latencies */
#define PROBE_RING    16384             /* queries in flight at most */
#define QBUF          300               /* a query: 12 + name (<= 255) + 4 */

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

/* ---- arguments ---------------------------------------------------------- */

struct opts {
	bool probe;
	struct in_addr dst;
	uint16_t port;
	uint32_t src_base;       /* host order, masked */
	unsigned src_len;
	uint64_t sources;
	uint8_t names[MAX_NAMES][256];  /* wire form */
	size_t name_len[MAX_NAMES];
	size_t n_names;
	uint16_t types[2];
	size_t n_types;
	uint64_t rate;           /* 0: as fast as possible (flood only) */
	uint64_t count;
	uint64_t duration;
	uint64_t batch;
	uint64_t seed;
	bool have_seed;
	bool random_case;
	uint64_t timeout_ms;
};

static void usage(void)
{
	fprintf(stderr,
		"usage: dnsflood flood --dst ADDR --src PREFIX/LEN [--sources N] --name NAME...\n"
		"                      [--type A|AAAA]... [--rate QPS] --count N --duration S\n"
		"                      [--port P] [--batch B] [--seed S] [--random-case]\n"
		"       dnsflood probe --dst ADDR --src PREFIX/LEN --sources N --name NAME...\n"
		"                      [--type A|AAAA]... --rate QPS --duration S\n"
		"                      [--port P] [--timeout-ms MS] [--seed S]\n"
		"(IPv4; --rate 0: as fast as possible, flood only)\n");
}

/* A decimal number in [lo, hi]: digits only, no sign, no blanks. */
static bool parse_u64(const char *opt, const char *s, uint64_t lo, uint64_t hi,
		      uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s || strlen(s) > 20)
		goto bad;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			goto bad;
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			goto bad;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v < lo || v > hi)
		goto bad;
	*out = v;
	return true;
bad:
	fprintf(stderr, "dnsflood: %s '%s': expected a number %llu-%llu\n", opt,
		s ? s : "", (unsigned long long)lo, (unsigned long long)hi);
	return false;
}

static bool parse_addr(const char *opt, const char *s, struct in_addr *a)
{
	if (!s || strlen(s) > 15 || inet_pton(AF_INET, s, a) != 1) {
		fprintf(stderr, "dnsflood: %s '%s': expected an IPv4 address\n", opt,
			s ? s : "");
		return false;
	}
	return true;
}

static bool parse_prefix(const char *s, struct opts *o)
{
	char buf[16];
	const char *slash = s ? strchr(s, '/') : NULL;
	struct in_addr a;
	uint64_t len;
	uint32_t mask;

	if (!slash || (size_t)(slash - s) >= sizeof(buf)) {
		fprintf(stderr, "dnsflood: --src '%s': expected PREFIX/LEN (IPv4)\n", s ? s : "");
		return false;
	}
	memcpy(buf, s, (size_t)(slash - s));
	buf[slash - s] = '\0';
	if (!parse_addr("--src", buf, &a) || !parse_u64("--src length", slash + 1, 8, 32, &len))
		return false;
	mask = len == 32 ? UINT32_MAX : ~(UINT32_MAX >> len);
	if ((ntohl(a.s_addr) & ~mask) != 0) {
		fprintf(stderr, "dnsflood: --src '%s': bits set past the prefix length\n", s);
		return false;
	}
	o->src_base = ntohl(a.s_addr);
	o->src_len = (unsigned)len;
	return true;
}

/* A domain name to wire form: labels of 1-63 of [A-Za-z0-9-_], total
 * at most 255 bytes; a trailing dot is allowed. */
static bool parse_name(const char *s, uint8_t out[static 256], size_t *out_len)
{
	size_t n = s ? strlen(s) : 0, w = 0, lab = 0, start = 0;

	if (n == 0 || n > 253 + 1)
		goto bad;
	if (s[n - 1] == '.')
		n--;
	if (n == 0)
		goto bad;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			lab = i - start;
			if (lab < 1 || lab > 63 || w + 1 + lab + 1 > 255)
				goto bad;
			out[w++] = (uint8_t)lab;
			memcpy(out + w, s + start, lab);
			w += lab;
			start = i + 1;
			continue;
		}
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_'))
			goto bad;
	}
	out[w++] = 0;
	*out_len = w;
	return true;
bad:
	fprintf(stderr, "dnsflood: --name '%s': expected a domain name "
		"(labels of letters, digits, '-', '_')\n", s ? s : "");
	return false;
}

static bool parse_args(int argc, char **argv, struct opts *o)
{
	bool have_dst = false, have_src = false, have_count = false, have_dur = false;
	bool have_rate = false, have_sources = false;

	memset(o, 0, sizeof(*o));
	o->port = 53;
	o->batch = 64;
	o->timeout_ms = 1000;
	o->sources = 1;
	if (argc < 2)
		goto usage;
	if (strcmp(argv[1], "flood") == 0)
		o->probe = false;
	else if (strcmp(argv[1], "probe") == 0)
		o->probe = true;
	else
		goto usage;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t x;

		if (strcmp(a, "--random-case") == 0 && !o->probe) {
			o->random_case = true;
			continue;
		}
		if (!v) {
			fprintf(stderr, "dnsflood: %s needs a value\n", a);
			goto usage;
		}
		i++;
		if (strcmp(a, "--dst") == 0) {
			if (have_dst || !parse_addr(a, v, &o->dst))
				goto usage;
			have_dst = true;
		} else if (strcmp(a, "--src") == 0) {
			if (have_src || !parse_prefix(v, o))
				goto usage;
			have_src = true;
		} else if (strcmp(a, "--sources") == 0) {
			if (have_sources || !parse_u64(a, v, 1, 1ULL << 24, &o->sources))
				goto usage;
			have_sources = true;
		} else if (strcmp(a, "--port") == 0) {
			if (!parse_u64(a, v, 1, 65535, &x))
				goto usage;
			o->port = (uint16_t)x;
		} else if (strcmp(a, "--name") == 0) {
			if (o->n_names == MAX_NAMES) {
				fprintf(stderr, "dnsflood: at most %d names\n", MAX_NAMES);
				goto usage;
			}
			if (!parse_name(v, o->names[o->n_names], &o->name_len[o->n_names]))
				goto usage;
			o->n_names++;
		} else if (strcmp(a, "--type") == 0) {
			uint16_t t;

			if (strcmp(v, "A") == 0)
				t = 1;
			else if (strcmp(v, "AAAA") == 0)
				t = 28;
			else {
				fprintf(stderr, "dnsflood: --type '%s': expected A or AAAA\n", v);
				goto usage;
			}
			if (o->n_types == 2 || (o->n_types == 1 && o->types[0] == t)) {
				fprintf(stderr, "dnsflood: --type: A and AAAA at most once each\n");
				goto usage;
			}
			o->types[o->n_types++] = t;
		} else if (strcmp(a, "--rate") == 0) {
			if (have_rate || !parse_u64(a, v, o->probe ? 1 : 0, o->probe ? 100000 : MAX_RATE,
						    &o->rate))
				goto usage;
			have_rate = true;
		} else if (strcmp(a, "--count") == 0 && !o->probe) {
			if (have_count || !parse_u64(a, v, 1, MAX_COUNT, &o->count))
				goto usage;
			have_count = true;
		} else if (strcmp(a, "--duration") == 0) {
			if (have_dur || !parse_u64(a, v, 1, MAX_DURATION, &o->duration))
				goto usage;
			have_dur = true;
		} else if (strcmp(a, "--batch") == 0 && !o->probe) {
			if (!parse_u64(a, v, 1, MAX_BATCH, &o->batch))
				goto usage;
		} else if (strcmp(a, "--timeout-ms") == 0 && o->probe) {
			if (!parse_u64(a, v, 1, 10000, &o->timeout_ms))
				goto usage;
		} else if (strcmp(a, "--seed") == 0) {
			if (!parse_u64(a, v, 0, UINT64_MAX, &o->seed))
				goto usage;
			o->have_seed = true;
		} else {
			fprintf(stderr, "dnsflood: unknown option '%s'\n", a);
			goto usage;
		}
	}
	if (!have_dst || !have_src || o->n_names == 0 || !have_dur ||
	    (!o->probe && !have_count) || (o->probe && (!have_rate || !have_sources))) {
		fprintf(stderr, "dnsflood: missing a required option\n");
		goto usage;
	}
	if (o->src_len < 32 && o->sources > (1ULL << (32 - o->src_len))) {
		fprintf(stderr, "dnsflood: --sources %llu: more than the /%u has\n",
			(unsigned long long)o->sources, o->src_len);
		goto usage;
	}
	if (o->src_len == 32 && o->sources != 1) {
		fprintf(stderr, "dnsflood: --sources must be 1 for a /32\n");
		goto usage;
	}
	if (o->probe) {
		if (o->sources > MAX_PROBE_SOURCES) {
			fprintf(stderr, "dnsflood: probe: --sources at most %d\n", MAX_PROBE_SOURCES);
			goto usage;
		}
		if (o->rate * o->duration > MAX_PROBE_QUERIES) {
			fprintf(stderr, "dnsflood: probe: rate x duration at most %llu\n",
				MAX_PROBE_QUERIES);
			goto usage;
		}
		/* the queries within one timeout fit the ring (and the open-file limit) */
		if (o->rate * o->timeout_ms > (uint64_t)PROBE_RING / 2 * 1000) {
			fprintf(stderr, "dnsflood: probe: rate x timeout must be under %d queries\n",
				PROBE_RING / 2);
			goto usage;
		}
	}
	if (o->n_types == 0)
		o->types[o->n_types++] = 1;
	return true;
usage:
	usage();
	return false;
}

/* ---- helpers ------------------------------------------------------------ */

/* splitmix64: not for secrets; a lab's random ids, ports and sources */
static uint64_t rng_state;

static uint64_t rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* uniform-enough in [0, n) for n <= 2^32 (the high bits of a product) */
static uint64_t rng_below(uint64_t n)
{
	return ((rng() >> 32) * n) >> 32;
}

static void rng_init(const struct opts *o)
{
	if (o->have_seed) {
		rng_state = o->seed;
		return;
	}
	if (getrandom(&rng_state, sizeof(rng_state), 0) != sizeof(rng_state))
		rng_state = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
}

static uint64_t now_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static double cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void sleep_until(uint64_t t_ns)
{
	struct timespec ts = { .tv_sec = (time_t)(t_ns / 1000000000ULL),
			       .tv_nsec = (long)(t_ns % 1000000000ULL) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR &&
	       !stop_flag)
		;
}

/* Source address number i of N, spread evenly over the prefix; when
 * they are spaced, the first of each run (".1" rather than ".0"). */
static uint32_t source_addr(const struct opts *o, uint64_t i)
{
	uint64_t size = 1ULL << (32 - o->src_len);
	uint64_t stride = size / o->sources;

	return o->src_base + (uint32_t)(i * stride + (stride > 1 ? 1 : 0));
}

/* A query's DNS part into q (QBUF bytes): header, question. Returns its length. */
static size_t make_query(const struct opts *o, uint8_t *q, uint16_t id, bool random_case)
{
	size_t k = o->n_names > 1 ? (size_t)rng_below(o->n_names) : 0;
	uint16_t type = o->n_types > 1 ? o->types[rng_below(o->n_types)] : o->types[0];
	size_t n = o->name_len[k];

	q[0] = (uint8_t)(id >> 8);
	q[1] = (uint8_t)id;
	q[2] = 0;            /* QUERY, RD clear: an authoritative server is asked */
	q[3] = 0;
	q[4] = 0; q[5] = 1;  /* QDCOUNT */
	memset(q + 6, 0, 6);
	memcpy(q + 12, o->names[k], n);
	if (random_case) {
		uint64_t bits = rng();

		for (size_t i = 0; i < n; i++) {
			uint8_t c = q[12 + i];

			if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') {
				q[12 + i] = (bits & 1) ? (uint8_t)(c | 0x20) : (uint8_t)(c & ~0x20);
				bits = bits >> 1 | bits << 63;
			}
		}
	}
	q[12 + n] = (uint8_t)(type >> 8);
	q[13 + n] = (uint8_t)type;
	q[14 + n] = 0;
	q[15 + n] = 1;       /* IN */
	return 16 + n;
}

/* ---- flood -------------------------------------------------------------- */

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* One whole packet into pkt: IPv4 header (the kernel fills its checksum
 * and id), UDP header with its checksum, the query. Returns its length. */
static size_t make_packet(const struct opts *o, uint8_t *pkt)
{
	struct iphdr *ip = (struct iphdr *)pkt;
	struct udphdr *udp = (struct udphdr *)(pkt + sizeof(*ip));
	uint8_t *dns = pkt + sizeof(*ip) + sizeof(*udp);
	uint32_t src = htonl(source_addr(o, o->sources > 1 ? rng_below(o->sources) : 0));
	uint64_t r = rng();
	size_t dlen = make_query(o, dns, (uint16_t)r, o->random_case);
	uint16_t ulen = (uint16_t)(sizeof(*udp) + dlen);
	uint8_t pseudo[12];
	uint32_t sum;

	memset(ip, 0, sizeof(*ip));
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->tot_len = htons((uint16_t)(sizeof(*ip) + ulen));
	ip->saddr = src;
	ip->daddr = o->dst.s_addr;
	udp->source = htons((uint16_t)(1024 + (r >> 16) % 64512));
	udp->dest = htons(o->port);
	udp->len = htons(ulen);
	udp->check = 0;
	memcpy(pseudo, &ip->saddr, 4);
	memcpy(pseudo + 4, &ip->daddr, 4);
	pseudo[8] = 0;
	pseudo[9] = IPPROTO_UDP;
	pseudo[10] = (uint8_t)(ulen >> 8);
	pseudo[11] = (uint8_t)ulen;
	sum = csum_add(0, pseudo, sizeof(pseudo));
	sum = csum_add(sum, (const uint8_t *)udp, ulen);
	udp->check = htons(csum_fold(sum));
	if (udp->check == 0)
		udp->check = 0xffff;
	return sizeof(*ip) + ulen;
}

static int run_flood(const struct opts *o)
{
	static uint8_t pkts[MAX_BATCH][sizeof(struct iphdr) + sizeof(struct udphdr) + QBUF];
	static struct mmsghdr msgs[MAX_BATCH];
	static struct iovec iov[MAX_BATCH];
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr = o->dst };
	uint64_t sent = 0, errors = 0, t0, t_end;
	double cpu0, wall;
	const char *why = "count";
	int one = 1, fd;

	fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	if (fd < 0 || setsockopt(fd, IPPROTO_IP, IP_HDRINCL, &one, sizeof(one)) != 0) {
		fprintf(stderr, "dnsflood: raw socket: %s\n", strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	for (size_t i = 0; i < MAX_BATCH; i++) {
		iov[i].iov_base = pkts[i];
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
		msgs[i].msg_hdr.msg_name = &to;
		msgs[i].msg_hdr.msg_namelen = sizeof(to);
	}
	cpu0 = cpu_seconds();
	t0 = now_ns(CLOCK_MONOTONIC);
	t_end = t0 + o->duration * 1000000000ULL;
	while (sent < o->count) {
		uint64_t n, now;
		int r;

		if (stop_flag) {
			why = "signal";
			break;
		}
		now = now_ns(CLOCK_MONOTONIC);
		if (now >= t_end) {
			why = "duration";
			break;
		}
		if (o->rate) {
			/* queries due by now; a late generator catches up one batch at a time */
			uint64_t due = (uint64_t)((double)(now - t0) * (double)o->rate / 1e9) + 1;
			if (due <= sent) {
				uint64_t next = t0 + (uint64_t)((double)(sent) * 1e9 / (double)o->rate);

				sleep_until(next < t_end ? next : t_end);
				continue;
			}
			n = due - sent;
		} else {
			n = o->batch;
		}
		if (n > o->batch)
			n = o->batch;
		if (n > o->count - sent)
			n = o->count - sent;
		for (uint64_t i = 0; i < n; i++)
			iov[i].iov_len = make_packet(o, pkts[i]);
		r = sendmmsg(fd, msgs, (unsigned)n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			/* ENOBUFS and the like: the batch's first one is lost, go on */
			errors++;
			continue;
		}
		sent += (uint64_t)r;
		if ((uint64_t)r < n)
			errors += n - (uint64_t)r;
	}
	wall = (double)(now_ns(CLOCK_MONOTONIC) - t0) / 1e9;
	if (wall <= 0)
		wall = 1e-9;
	close(fd);
	{
		double cpu = cpu_seconds() - cpu0;
		char offered[24] = "max";

		if (o->rate)
			snprintf(offered, sizeof(offered), "%llu", (unsigned long long)o->rate);
		printf("mode=flood sent=%llu offered_qps=%s achieved_qps=%.0f wall_s=%.2f "
		       "cpu_s=%.2f cpu_share=%.2f send_errors=%llu sources=%llu stop=%s\n",
		       (unsigned long long)sent, offered, (double)sent / wall, wall,
		       cpu, cpu / wall, (unsigned long long)errors,
		       (unsigned long long)o->sources, why);
	}
	return 0;
}

/* ---- probe -------------------------------------------------------------- */

/* One query in flight: its own socket (a fresh port, as a resolver's). */
struct pending {
	int fd;                /* -1: answered or expired */
	uint16_t id;
	uint64_t t_ns;         /* CLOCK_REALTIME at send */
};

struct probe_stats {
	uint64_t sent, answered, tc, servfail, refused, other, sock_errors;
	uint32_t *lat_us;
	uint64_t n_lat;
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The reply on p's socket, if any (one read; bounded to 512 bytes). */
static void probe_read(const struct opts *o, struct pending *p, struct probe_stats *st)
{
	uint8_t buf[512];
	char cbuf[CMSG_SPACE(sizeof(struct timespec))];
	struct sockaddr_in from;
	struct iovec io = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr mh = { .msg_name = &from, .msg_namelen = sizeof(from),
			     .msg_iov = &io, .msg_iovlen = 1,
			     .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	uint64_t t_rx = 0;
	ssize_t n = recvmsg(p->fd, &mh, MSG_DONTWAIT);
	uint16_t flags, ancount;

	if (n < 0)
		return;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS &&
		    c->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
			struct timespec ts;

			memcpy(&ts, CMSG_DATA(c), sizeof(ts));
			t_rx = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
		}
	}
	if (!t_rx)
		t_rx = now_ns(CLOCK_REALTIME);
	/* only a reply from the server, a whole header, QR set, our id */
	if (mh.msg_namelen < sizeof(from) || from.sin_addr.s_addr != o->dst.s_addr ||
	    from.sin_port != htons(o->port) || n < 12 || !(buf[2] & 0x80) ||
	    (uint16_t)(buf[0] << 8 | buf[1]) != p->id)
		return;
	close(p->fd);
	p->fd = -1;
	if (t_rx < p->t_ns || t_rx - p->t_ns > o->timeout_ms * 1000000ULL)
		return;              /* too late: lost */
	flags = (uint16_t)(buf[2] << 8 | buf[3]);
	ancount = (uint16_t)(buf[6] << 8 | buf[7]);
	if (flags & 0x0200)
		st->tc++;
	else if ((flags & 0xf) == 2)
		st->servfail++;
	else if ((flags & 0xf) == 5)
		st->refused++;
	else if ((flags & 0xf) == 0 && ancount > 0) {
		st->answered++;
		st->lat_us[st->n_lat++] = (uint32_t)((t_rx - p->t_ns) / 1000);
	} else
		st->other++;
}

/* A socket bound to src (any port), its query sent; -1 on failure. */
static int probe_send(const struct opts *o, int ep, uint32_t src, struct pending *p,
		      uint64_t index)
{
	struct sockaddr_in me = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(src) };
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr = o->dst,
				  .sin_port = htons(o->port) };
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = index };
	uint8_t q[QBUF];
	int one = 1, fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	size_t len;

	p->fd = -1;
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_IP, IP_FREEBIND, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&me, sizeof(me)) != 0 ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		close(fd);
		return -1;
	}
	p->id = (uint16_t)rng();
	len = make_query(o, q, p->id, false);
	p->t_ns = now_ns(CLOCK_REALTIME);
	if (sendto(fd, q, len, 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
		close(fd);
		return -1;
	}
	p->fd = fd;
	return 0;
}

static int run_probe(const struct opts *o)
{
	struct probe_stats st = { 0 };
	struct pending *ring;
	struct epoll_event evs[64];
	uint64_t total = o->rate * o->duration, t0, t_end, t_stop, lag_max = 0, oldest = 0;
	uint64_t timeout_ns = o->timeout_ms * 1000000ULL;
	double cpu0, wall;
	int rc = 1, ep = epoll_create1(EPOLL_CLOEXEC);

	{
		/* up to rate x timeout sockets at once */
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	ring = calloc(PROBE_RING, sizeof(*ring));
	st.lat_us = calloc(total ? total : 1, sizeof(*st.lat_us));
	if (ep < 0 || !ring || !st.lat_us) {
		fprintf(stderr, "dnsflood: %s\n", ep < 0 ? strerror(errno) : "out of memory");
		goto out;
	}
	for (size_t i = 0; i < PROBE_RING; i++)
		ring[i].fd = -1;
	cpu0 = cpu_seconds();
	t0 = now_ns(CLOCK_MONOTONIC);
	t_end = t0 + o->duration * 1000000000ULL;
	t_stop = t_end + timeout_ns;
	/* send on schedule, each query from a fresh socket; then wait the
	 * timeout for the last replies */
	while (!stop_flag) {
		uint64_t now = now_ns(CLOCK_MONOTONIC), next;
		int wait_ms, n;

		if (now >= t_stop)
			break;
		while (st.sent < total && now >= t0 + st.sent * 1000000000ULL / o->rate) {
			uint64_t due = t0 + st.sent * 1000000000ULL / o->rate;
			struct pending *p = &ring[st.sent % PROBE_RING];

			if (now - due > lag_max)
				lag_max = now - due;
			if (p->fd >= 0)   /* still unanswered a ring ago: lost */
				close(p->fd);
			if (probe_send(o, ep, source_addr(o, st.sent % o->sources), p, st.sent) < 0)
				st.sock_errors++;
			st.sent++;
		}
		/* queries past the timeout are lost: their sockets closed */
		while (oldest < st.sent) {
			struct pending *p = &ring[oldest % PROBE_RING];
			uint64_t rt = now_ns(CLOCK_REALTIME);

			if (p->fd >= 0 && rt - p->t_ns <= timeout_ns)
				break;
			if (p->fd >= 0) {
				close(p->fd);
				p->fd = -1;
			}
			oldest++;
		}
		next = st.sent < total ? t0 + st.sent * 1000000000ULL / o->rate : t_stop;
		now = now_ns(CLOCK_MONOTONIC);
		wait_ms = next > now ? (int)((next - now + 999999) / 1000000) : 0;
		if (wait_ms > 10)
			wait_ms = 10;
		n = epoll_wait(ep, evs, 64, wait_ms);
		for (int i = 0; i < n; i++) {
			uint64_t k = evs[i].data.u64;
			struct pending *p = &ring[k % PROBE_RING];

			/* (a slot reused since this event was queued has another fd) */
			if (k < st.sent && st.sent - k <= PROBE_RING && p->fd >= 0)
				probe_read(o, p, &st);
		}
	}
	wall = (double)(now_ns(CLOCK_MONOTONIC) - t0) / 1e9;
	qsort(st.lat_us, st.n_lat, sizeof(*st.lat_us), cmp_u32);
	{
		uint64_t got = st.answered + st.tc + st.servfail + st.refused + st.other;
		uint64_t lost = st.sent > got ? st.sent - got : 0;
#define PCT(p) (st.n_lat ? st.lat_us[(st.n_lat - 1) * (p) / 100] : 0)
		printf("mode=probe sent=%llu answered=%llu answer_rate=%.4f lost=%llu "
		       "tc=%llu servfail=%llu refused=%llu other=%llu socket_errors=%llu "
		       "p50_us=%u p90_us=%u p99_us=%u max_us=%u send_lag_max_ms=%.1f "
		       "cpu_s=%.2f wall_s=%.2f sources=%llu\n",
		       (unsigned long long)st.sent, (unsigned long long)st.answered,
		       st.sent ? (double)st.answered / (double)st.sent : 0.0,
		       (unsigned long long)lost, (unsigned long long)st.tc,
		       (unsigned long long)st.servfail, (unsigned long long)st.refused,
		       (unsigned long long)st.other, (unsigned long long)st.sock_errors,
		       PCT(50), PCT(90), PCT(99), st.n_lat ? st.lat_us[st.n_lat - 1] : 0,
		       (double)lag_max / 1e6, cpu_seconds() - cpu0, wall,
		       (unsigned long long)o->sources);
#undef PCT
	}
	rc = 0;
out:
	if (ring)
		for (size_t i = 0; i < PROBE_RING; i++)
			if (ring[i].fd >= 0)
				close(ring[i].fd);
	if (ep >= 0)
		close(ep);
	free(ring);
	free(st.lat_us);
	return rc;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	static struct opts o;

	if (!parse_args(argc, argv, &o))
		return 2;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	rng_init(&o);
	setvbuf(stdout, NULL, _IOLBF, 0);
	return o.probe ? run_probe(&o) : run_flood(&o);
}
