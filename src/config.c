// SPDX-License-Identifier: MIT
/*
 * choreo.conf(5): each line is copied into a bounded, NUL-terminated buffer
 * before anything looks at it, so the input itself need not be a C string.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define LINE_MAX_LEN    4096 /* bytes in a line, without its newline */
#define MAX_ERRORS      100  /* stored; one more says there were too many */
#define QUOTE_MAX       100  /* bytes of a value quoted in a message */
#define QUOTE_BUF       (QUOTE_MAX * 4 + sizeof("..."))
#define DNAME_MAX_TEXT  253
#define LABEL_MAX       63
#define TABLE_MAX       31   /* NFT_TABLE_MAXNAMELEN - 1 */
#define SECTION_NAME_MAX 63
#define SOCK_PATH_MAX   (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

enum key_type {
	T_UINT,    /* unsigned integer min..max, field of 2 or 4 bytes */
	T_PATH,    /* path of min..max bytes */
	T_FILE,    /* path; relative to the configuration file's directory */
	T_TABLE,   /* nftables table name of min..max bytes */
	T_DNAME,   /* domain name, stored lower case with a trailing dot */
	T_LISTEN,  /* list of socket addresses, into config->listen */
	T_IPV4,
	T_IPV6,
	T_PREFIX4, /* network prefix, length min..max */
	T_PREFIX6,
};

struct key_def {
	const char *name;
	enum key_type type;
	uint32_t min, max;
	uint32_t def;           /* T_UINT default */
	const char *def_str;    /* string default, or NULL */
	bool required;
	size_t off, size;       /* field in struct config or config_service */
};

#define CFG(f) .off = offsetof(struct config, f), \
	       .size = sizeof(((struct config *)0)->f)
#define SVC(f) .off = offsetof(struct config_service, f), \
	       .size = sizeof(((struct config_service *)0)->f)

enum { K_CONTROL, K_TABLE, N_DAEMON_KEYS };

static const struct key_def daemon_keys[N_DAEMON_KEYS] = {
	[K_CONTROL] = { .name = "control", .type = T_PATH, .min = 1,
			.max = SOCK_PATH_MAX, .def_str = CONFIG_DEFAULT_CONTROL,
			CFG(control) },
	[K_TABLE]   = { .name = "table", .type = T_TABLE, .min = 1,
			.max = TABLE_MAX, .def_str = CONFIG_DEFAULT_TABLE,
			CFG(table) },
};

enum {
	K_LISTEN, K_ZONE, K_ZONEFILE, K_TTL, K_TCP_TIMEOUT, K_TCP_CLIENTS,
	K_UDP_PAYLOAD, N_DNS_KEYS
};

static const struct key_def dns_keys[N_DNS_KEYS] = {
	[K_LISTEN]      = { .name = "listen", .type = T_LISTEN,
			    .max = CONFIG_MAX_LISTEN, .required = true },
	[K_ZONE]        = { .name = "zone", .type = T_DNAME, .required = true,
			    CFG(zone) },
	[K_ZONEFILE]    = { .name = "zonefile", .type = T_FILE, .min = 1,
			    .max = PATH_MAX - 1, .required = true,
			    CFG(zonefile) },
	[K_TTL]         = { .name = "ttl", .type = T_UINT, .min = 1,
			    .max = 86400, .def = CONFIG_DEFAULT_TTL, CFG(ttl) },
	[K_TCP_TIMEOUT] = { .name = "tcp_timeout", .type = T_UINT, .min = 1,
			    .max = 3600, .def = CONFIG_DEFAULT_TCP_TIMEOUT,
			    CFG(tcp_timeout) },
	[K_TCP_CLIENTS] = { .name = "tcp_clients", .type = T_UINT, .min = 1,
			    .max = 65536, .def = CONFIG_DEFAULT_TCP_CLIENTS,
			    CFG(tcp_clients) },
	[K_UDP_PAYLOAD] = { .name = "udp_payload", .type = T_UINT, .min = 512,
			    .max = 4096, .def = CONFIG_DEFAULT_UDP_PAYLOAD,
			    CFG(udp_payload) },
};

enum {
	K_NAME, K_POOL, K_POOL6, K_SERVER, K_HONEYPOT, K_SERVER6, K_HONEYPOT6,
	K_WINDOW, K_BINDING, K_MAX_OPEN, K_ROTATE, K_MAX_BINDINGS, N_SVC_KEYS
};

static const struct key_def svc_keys[N_SVC_KEYS] = {
	[K_NAME]      = { .name = "name", .type = T_DNAME, .required = true,
			  SVC(name) },
	[K_POOL]      = { .name = "pool", .type = T_PREFIX4, .min = 8,
			  .max = 32, .required = true, SVC(pool) },
	[K_POOL6]     = { .name = "pool6", .type = T_PREFIX6, .min = 64,
			  .max = 120, SVC(pool6) },
	[K_SERVER]    = { .name = "server", .type = T_IPV4, .required = true,
			  SVC(server) },
	[K_HONEYPOT]  = { .name = "honeypot", .type = T_IPV4, .required = true,
			  SVC(honeypot) },
	[K_SERVER6]   = { .name = "server6", .type = T_IPV6, SVC(server6) },
	[K_HONEYPOT6] = { .name = "honeypot6", .type = T_IPV6,
			  SVC(honeypot6) },
	/* the default, [dns] ttl, is filled in after the whole file is read */
	[K_WINDOW]    = { .name = "window", .type = T_UINT, .min = 1,
			  .max = 86400, SVC(window) },
	[K_BINDING]   = { .name = "binding", .type = T_UINT, .min = 1,
			  .max = 604800, .def = CONFIG_DEFAULT_BINDING,
			  SVC(binding) },
	[K_MAX_OPEN]  = { .name = "max_open", .type = T_UINT, .min = 1,
			  .max = CONFIG_MAX_OPEN_CAP,
			  .def = CONFIG_DEFAULT_MAX_OPEN, SVC(max_open) },
	[K_ROTATE]    = { .name = "rotate", .type = T_UINT, .min = 0,
			  .max = 86400, .def = CONFIG_DEFAULT_ROTATE,
			  SVC(rotate) },
	[K_MAX_BINDINGS] = { .name = "max_bindings", .type = T_UINT, .min = 1,
			  .max = CONFIG_MAX_BINDINGS_CAP,
			  .def = CONFIG_DEFAULT_MAX_BINDINGS, SVC(max_bindings) },
};

enum section_kind { S_DAEMON, S_DNS, S_SERVICE };

struct section_def {
	const char *name;
	bool named;              /* [service NAME] */
	const struct key_def *keys;
	size_t n_keys;
};

static const struct section_def sections[] = {
	[S_DAEMON]  = { "daemon", false, daemon_keys, N_DAEMON_KEYS },
	[S_DNS]     = { "dns", false, dns_keys, N_DNS_KEYS },
	[S_SERVICE] = { "service", true, svc_keys, N_SVC_KEYS },
};

struct parser {
	const char *file;
	const char *dir;         /* of file, for relative zonefiles */
	size_t dir_len;
	bool has_dir;
	struct config *cfg;
	struct config_errors *errs;
	size_t n_errors;
	unsigned line;
	int err;                 /* sticky -ENOMEM */
	bool stop;               /* too many errors */

	/* The section being read: its keys go to base, the line each key was
	 * first seen on to seen[]. */
	const struct section_def *sec; /* NULL before the first header */
	bool skip;               /* bad section: ignore its keys */
	void *base;
	unsigned *seen;
	unsigned sec_line;
	const char *sec_name;    /* NAME of [service NAME] */

	unsigned daemon_line, dns_line;
	unsigned daemon_seen[N_DAEMON_KEYS], dns_seen[N_DNS_KEYS];
	unsigned svc_seen[CONFIG_MAX_SERVICES][N_SVC_KEYS]; /* parallel to cfg->services */
	size_t svc_cap;

	char buf[LINE_MAX_LEN + 1];
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_word(char c)
{
	return is_alpha(c) || is_digit(c) || c == '-' || c == '_';
}

static char to_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static char *trim(char *s)
{
	size_t n;

	while (is_space(*s))
		s++;
	n = strlen(s);
	while (n && is_space(s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* Untrusted text made safe to print: control and non-ASCII bytes escaped,
 * long values cut. */
static const char *quote(char out[static QUOTE_BUF], const char *s)
{
	size_t o = 0, i;

	for (i = 0; i < QUOTE_MAX && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c >= 0x7f)
			o += (size_t)sprintf(out + o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	if (i == QUOTE_MAX && s[i])
		o += (size_t)sprintf(out + o, "...");
	out[o] = '\0';
	return out;
}

static void add_error(struct parser *p, char *msg)
{
	struct config_errors *e = p->errs;

	if (!msg) {
		p->err = -ENOMEM;
		return;
	}
	if (!e) {
		free(msg);
		return;
	}
	if (e->n == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 8;
		char **grown = realloc(e->msg, cap * sizeof(*grown));

		if (!grown) {
			free(msg);
			p->err = -ENOMEM;
			return;
		}
		e->msg = grown;
		e->cap = cap;
	}
	e->msg[e->n++] = msg;
}

__attribute__((format(printf, 3, 4)))
static void report(struct parser *p, unsigned line, const char *fmt, ...)
{
	char body[1024], *msg;
	va_list ap;

	if (p->stop || p->err)
		return;
	if (p->n_errors == MAX_ERRORS) {
		p->stop = true;
		if (asprintf(&msg, "%s:%u: too many errors (more than %d), giving up",
			     p->file, line, MAX_ERRORS) < 0)
			msg = NULL;
		add_error(p, msg);
		return;
	}
	p->n_errors++;
	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	if (asprintf(&msg, "%s:%u: %s", p->file, line, body) < 0)
		msg = NULL;
	add_error(p, msg);
}

static void bad_value(struct parser *p, const struct key_def *k,
		      const char *v, const char *expected)
{
	char q[QUOTE_BUF];

	report(p, p->line, "key '%s' value '%s': expected %s", k->name,
	       quote(q, v), expected);
}

static bool parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		if (!is_digit(*s))
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > max)
			return false;
	}
	if (v < min)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* A domain name as text: labels of 1-63 letters, digits, '-' or '_', an
 * optional trailing dot, at most 253 characters. */
static int dname_parse(const char *v, char **out)
{
	size_t n = strlen(v), label = 0, i;
	char *s;

	if (n && v[n - 1] == '.')
		n--;
	if (n == 0 || n > DNAME_MAX_TEXT)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (v[i] == '.') {
			if (label == 0)
				return -EINVAL;
			label = 0;
		} else if (!is_word(v[i]) || ++label > LABEL_MAX) {
			return -EINVAL;
		}
	}
	if (label == 0)
		return -EINVAL;
	s = malloc(n + 2);
	if (!s)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		s[i] = to_lower(v[i]);
	s[n] = '.';
	s[n + 1] = '\0';
	*out = s;
	return 0;
}

/* Both normalised: lower case, trailing dot. */
static bool dname_in_zone(const char *name, const char *zone)
{
	size_t n = strlen(name), z = strlen(zone);

	if (n == z)
		return strcmp(name, zone) == 0;
	return n > z && name[n - z - 1] == '.' && strcmp(name + n - z, zone) == 0;
}

static bool path_ok(const char *v)
{
	for (; *v; v++)
		if ((unsigned char)*v < 0x20 || *v == 0x7f)
			return false;
	return true;
}

static void set_string(void *dst, char *s)
{
	char **field = dst;

	free(*field);
	*field = s;
}

static void set_uint(const struct key_def *k, void *dst, const char *v,
		     struct parser *p)
{
	uint32_t n;

	if (!parse_u32(v, k->min, k->max, &n)) {
		char expected[64];

		snprintf(expected, sizeof(expected), "an integer %u-%u",
			 k->min, k->max);
		bad_value(p, k, v, expected);
		return;
	}
	if (k->size == sizeof(uint16_t))
		*(uint16_t *)dst = (uint16_t)n;
	else
		*(uint32_t *)dst = n;
}

static void set_path(const struct key_def *k, void *dst, const char *v,
		     struct parser *p)
{
	char expected[96];
	size_t n = strlen(v);
	char *s;

	if (!path_ok(v) || n < k->min || n > k->max) {
		snprintf(expected, sizeof(expected),
			 "a path of %u-%u characters, no control characters",
			 k->min, k->max);
		bad_value(p, k, v, expected);
		return;
	}
	if (k->type == T_FILE && v[0] != '/' && p->has_dir) {
		if (p->dir_len + 1 + n > k->max) {
			snprintf(expected, sizeof(expected),
				 "a path of at most %u characters once resolved against the configuration directory",
				 k->max);
			bad_value(p, k, v, expected);
			return;
		}
		if (asprintf(&s, "%.*s/%s", (int)p->dir_len, p->dir, v) < 0)
			s = NULL;
	} else {
		s = strdup(v);
	}
	if (!s) {
		p->err = -ENOMEM;
		return;
	}
	set_string(dst, s);
}

static void set_table(const struct key_def *k, void *dst, const char *v,
		      struct parser *p)
{
	size_t n = strlen(v), i;
	char *s;

	for (i = 0; i < n && is_word(v[i]); i++)
		;
	if (n < k->min || n > k->max || i != n || !is_alpha(v[0])) {
		char expected[96];

		snprintf(expected, sizeof(expected),
			 "%u-%u characters A-Z a-z 0-9 _ -, starting with a letter",
			 k->min, k->max);
		bad_value(p, k, v, expected);
		return;
	}
	s = strdup(v);
	if (!s) {
		p->err = -ENOMEM;
		return;
	}
	set_string(dst, s);
}

static void set_dname(const struct key_def *k, void *dst, const char *v,
		      struct parser *p)
{
	char *s;
	int ret = dname_parse(v, &s);

	if (ret == -ENOMEM) {
		p->err = ret;
		return;
	}
	if (ret < 0) {
		bad_value(p, k, v, "a domain name: labels of 1-63 characters A-Z a-z 0-9 - _, at most 253 characters");
		return;
	}
	set_string(dst, s);
}

static void set_addr(const struct key_def *k, void *dst, const char *v,
		     struct parser *p)
{
	int want = k->type == T_IPV4 ? AF_INET : AF_INET6;
	uint8_t a[16];
	int family;

	if (addr_parse(v, &family, a) < 0 || family != want) {
		bad_value(p, k, v, want == AF_INET ? "an IPv4 address"
						   : "an IPv6 address");
		return;
	}
	memcpy(dst, a, k->size);
}

static void set_prefix(const struct key_def *k, void *dst, const char *v,
		       struct parser *p)
{
	bool v4 = k->type == T_PREFIX4;
	const char *example = v4 ? "203.0.113.0/25" : "2001:db8:1::/64";
	char expected[96];
	struct addr_prefix pfx;
	int ret = addr_prefix_parse(v, &pfx);

	if (ret == -EDOM) {
		snprintf(expected, sizeof(expected),
			 "a network prefix such as %s", example);
		bad_value(p, k, v, expected);
		return;
	}
	if (ret < 0 || pfx.family != (v4 ? AF_INET : AF_INET6) ||
	    pfx.len < k->min || pfx.len > k->max) {
		snprintf(expected, sizeof(expected),
			 "an %s prefix such as %s, length %u-%u",
			 v4 ? "IPv4" : "IPv6", example, k->min, k->max);
		bad_value(p, k, v, expected);
		return;
	}
	*(struct addr_prefix *)dst = pfx;
}

static bool is_wildcard(const struct sockaddr_storage *ss)
{
	static const uint8_t zero[16];
	uint8_t a[16];
	int family;

	return addr_from_sockaddr((const struct sockaddr *)ss, &family, a) == 0 &&
	       memcmp(a, zero, sizeof(a)) == 0;
}

static void set_listen(const struct key_def *k, char *v, struct parser *p)
{
	struct sockaddr_storage ss[CONFIG_MAX_LISTEN];
	socklen_t sl[CONFIG_MAX_LISTEN];
	char expected[64], q[QUOTE_BUF];
	char *item = v, *next;
	size_t n = 0, i;
	bool bad = false;

	do {
		next = strchr(item, ',');
		if (next)
			*next++ = '\0';
		item = trim(item);
		if (n == k->max) {
			snprintf(expected, sizeof(expected),
				 "at most %u addresses", k->max);
			bad_value(p, k, item, expected);
			return;
		}
		/* a bare IPv6 address reads like one with a port: want [] */
		if (addr_sockaddr_parse(item, 53, &ss[n], &sl[n]) < 0 ||
		    (ss[n].ss_family == AF_INET6 && item[0] != '[')) {
			bad_value(p, k, item,
				  "ipv4[:port], [ipv6]:port or [ipv6]");
			bad = true;
			goto next;
		}
		if (is_wildcard(&ss[n])) {
			/* answers must leave from the address that was asked */
			bad_value(p, k, item, "a specific address: the wildcard "
				  "0.0.0.0 or [::] is not supported");
			bad = true;
			goto next;
		}
		for (i = 0; i < n; i++) {
			if (sl[i] == sl[n] && memcmp(&ss[i], &ss[n], sl[n]) == 0)
				break;
		}
		if (i < n) {
			report(p, p->line,
			       "key '%s' value '%s': expected each address only once",
			       k->name, quote(q, item));
			bad = true;
			goto next;
		}
		n++;
next:
		item = next;
	} while (item);
	if (bad)
		return;
	memcpy(p->cfg->listen, ss, n * sizeof(ss[0]));
	memcpy(p->cfg->listen_len, sl, n * sizeof(sl[0]));
	p->cfg->n_listen = n;
}

static void set_value(struct parser *p, const struct key_def *k, char *v)
{
	void *dst = (char *)p->base + k->off;

	switch (k->type) {
	case T_UINT:
		set_uint(k, dst, v, p);
		break;
	case T_PATH:
	case T_FILE:
		set_path(k, dst, v, p);
		break;
	case T_TABLE:
		set_table(k, dst, v, p);
		break;
	case T_DNAME:
		set_dname(k, dst, v, p);
		break;
	case T_LISTEN:
		set_listen(k, v, p);
		break;
	case T_IPV4:
	case T_IPV6:
		set_addr(k, dst, v, p);
		break;
	case T_PREFIX4:
	case T_PREFIX6:
		set_prefix(k, dst, v, p);
		break;
	}
}

static int apply_defaults(const struct section_def *sec, void *base)
{
	for (size_t i = 0; i < sec->n_keys; i++) {
		const struct key_def *k = &sec->keys[i];
		void *dst = (char *)base + k->off;

		if (k->def_str) {
			char *s = strdup(k->def_str);

			if (!s)
				return -ENOMEM;
			set_string(dst, s);
		} else if (k->type == T_UINT && k->size == sizeof(uint16_t)) {
			*(uint16_t *)dst = (uint16_t)k->def;
		} else if (k->type == T_UINT) {
			*(uint32_t *)dst = k->def;
		}
	}
	return 0;
}

/* "[dns]" or "[service NAME]" */
static const char *section_label(const struct parser *p, char out[static 96])
{
	if (p->sec_name)
		snprintf(out, 96, "[%s %s]", p->sec->name, p->sec_name);
	else
		snprintf(out, 96, "[%s]", p->sec->name);
	return out;
}

static void end_section(struct parser *p)
{
	char lbl[96];
	size_t i;

	if (!p->sec || p->skip)
		return;
	p->skip = true;
	section_label(p, lbl);
	for (i = 0; i < p->sec->n_keys; i++) {
		if (p->sec->keys[i].required && !p->seen[i])
			report(p, p->sec_line, "%s: missing key '%s'", lbl,
			       p->sec->keys[i].name);
	}
	if (p->sec != &sections[S_SERVICE])
		return;
	for (i = K_SERVER6; i <= K_HONEYPOT6; i++) {
		if (p->seen[K_POOL6] && !p->seen[i])
			report(p, p->sec_line,
			       "%s: missing key '%s' (required with 'pool6')",
			       lbl, svc_keys[i].name);
		else if (!p->seen[K_POOL6] && p->seen[i])
			report(p, p->seen[i], "%s: key '%s' requires 'pool6'",
			       lbl, svc_keys[i].name);
	}
}

static bool service_name_ok(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!is_word(s[i]) || i == SECTION_NAME_MAX)
			return false;
	return i > 0;
}

static void start_service(struct parser *p, const char *name)
{
	struct config *cfg = p->cfg;
	struct config_service *svc;
	size_t i;

	if (!service_name_ok(name)) {
		char q[QUOTE_BUF];

		report(p, p->line,
		       "bad service name '%s': expected 1-%d characters A-Z a-z 0-9 _ -",
		       quote(q, name), SECTION_NAME_MAX);
		return;
	}
	for (i = 0; i < cfg->n_services; i++) {
		if (strcasecmp(cfg->services[i].section, name) == 0) {
			report(p, p->line,
			       "duplicate section [service %s] (first at line %u)",
			       name, cfg->services[i].line);
			return;
		}
	}
	if (cfg->n_services == CONFIG_MAX_SERVICES) {
		report(p, p->line, "too many services (at most %d)",
		       CONFIG_MAX_SERVICES);
		return;
	}
	if (cfg->n_services == p->svc_cap) {
		size_t cap = p->svc_cap ? p->svc_cap * 2 : 4;
		struct config_service *s;

		if (cap > CONFIG_MAX_SERVICES)
			cap = CONFIG_MAX_SERVICES;
		s = realloc(cfg->services, cap * sizeof(*s));
		if (!s)
			goto nomem;
		cfg->services = s;
		p->svc_cap = cap;
	}
	svc = &cfg->services[cfg->n_services];
	memset(svc, 0, sizeof(*svc));
	memset(p->svc_seen[cfg->n_services], 0, sizeof(p->svc_seen[0]));
	svc->line = p->line;
	svc->section = strdup(name);
	/* counted now so that config_free releases what is set from here on */
	cfg->n_services++;
	if (!svc->section || apply_defaults(&sections[S_SERVICE], svc) < 0)
		goto nomem;
	p->base = svc;
	p->seen = p->svc_seen[cfg->n_services - 1];
	p->sec_name = svc->section;
	p->skip = false;
	return;
nomem:
	p->err = -ENOMEM;
}

static void parse_section(struct parser *p, char *l)
{
	char q[QUOTE_BUF];
	size_t n = strlen(l), s;
	char *inner, *name = NULL;
	const struct section_def *sec = NULL;

	end_section(p);
	p->skip = true;
	p->sec_name = NULL;
	if (n < 2 || l[n - 1] != ']') {
		report(p, p->line,
		       "bad section header '%s': expected [section] or [section NAME]",
		       quote(q, l));
		return;
	}
	l[n - 1] = '\0';
	inner = trim(l + 1);
	for (name = inner; *name && !is_space(*name); name++)
		;
	if (*name) {
		*name = '\0';
		name = trim(name + 1);
	} else {
		name = NULL;
	}
	for (s = 0; s < sizeof(sections) / sizeof(sections[0]); s++) {
		if (strcmp(inner, sections[s].name) == 0)
			sec = &sections[s];
	}
	if (!sec) {
		report(p, p->line, "unknown section [%s]", quote(q, inner));
		return;
	}
	p->sec = sec;
	p->sec_line = p->line;
	if (sec->named && !name) {
		report(p, p->line, "section [%s] needs a name: [%s NAME]",
		       sec->name, sec->name);
		return;
	}
	if (!sec->named && name) {
		report(p, p->line, "section [%s] takes no name", sec->name);
		return;
	}
	if (sec == &sections[S_SERVICE]) {
		start_service(p, name);
		return;
	}
	if (sec == &sections[S_DAEMON] && p->daemon_line) {
		report(p, p->line, "duplicate section [daemon] (first at line %u)",
		       p->daemon_line);
		return;
	}
	if (sec == &sections[S_DNS] && p->dns_line) {
		report(p, p->line, "duplicate section [dns] (first at line %u)",
		       p->dns_line);
		return;
	}
	/* [daemon] and [dns] defaults were applied with the config */
	p->base = p->cfg;
	if (sec == &sections[S_DAEMON]) {
		p->daemon_line = p->line;
		p->seen = p->daemon_seen;
	} else {
		p->dns_line = p->line;
		p->seen = p->dns_seen;
	}
	p->skip = false;
}

static void parse_key(struct parser *p, char *l, char *eq)
{
	char q[QUOTE_BUF], lbl[96];
	const struct key_def *k = NULL;
	char *key, *val;
	size_t i;

	*eq = '\0';
	key = trim(l);
	val = trim(eq + 1);
	if (p->skip)
		return;
	if (!p->sec) {
		report(p, p->line, "key '%s' outside of any section",
		       quote(q, key));
		return;
	}
	for (i = 0; i < p->sec->n_keys; i++) {
		if (strcmp(key, p->sec->keys[i].name) == 0) {
			k = &p->sec->keys[i];
			break;
		}
	}
	if (!k) {
		report(p, p->line, "unknown key '%s' in %s", quote(q, key),
		       section_label(p, lbl));
		return;
	}
	if (p->seen[i]) {
		report(p, p->line, "duplicate key '%s' in %s (first at line %u)",
		       k->name, section_label(p, lbl), p->seen[i]);
		return;
	}
	p->seen[i] = p->line;
	set_value(p, k, val);
}

static void parse_line(struct parser *p, const char *s, size_t n)
{
	char *l, *hash, *eq;

	if (n > LINE_MAX_LEN) {
		report(p, p->line, "line longer than %d bytes", LINE_MAX_LEN);
		return;
	}
	if (memchr(s, '\0', n)) {
		report(p, p->line, "NUL byte in line");
		return;
	}
	memcpy(p->buf, s, n);
	p->buf[n] = '\0';
	hash = strchr(p->buf, '#');
	if (hash)
		*hash = '\0';
	l = trim(p->buf);
	if (!*l)
		return;
	if (*l == '[') {
		parse_section(p, l);
		return;
	}
	eq = strchr(l, '=');
	if (!eq || eq == l) {
		char q[QUOTE_BUF];

		report(p, p->line,
		       "unrecognised line '%s': expected [section], key = value or a comment",
		       quote(q, l));
		return;
	}
	parse_key(p, l, eq);
}

/*
 * choreod's listen addresses inside a pool are never handed out and the
 * gateway lets them through; a pool made only of them has nothing to give.
 */
static void check_pool_not_listen(struct parser *p, const struct config_service *s,
				  const struct addr_prefix *pool, unsigned line)
{
	unsigned bits = addr_prefix_host_bits(pool);
	uint64_t size, inside = 0;

	if (pool->family != AF_INET && pool->family != AF_INET6)
		return;
	for (size_t i = 0; i < p->cfg->n_listen; i++) {
		uint8_t l[16];
		int family;

		if (addr_from_sockaddr((const struct sockaddr *)&p->cfg->listen[i],
				       &family, l) == 0 &&
		    addr_prefix_contains(pool, family, l))
			inside++;
	}
	if (bits >= 16)
		return; /* 16 listen addresses cannot exhaust it */
	size = ((uint64_t)1 << bits) - (pool->family == AF_INET6);
	if (inside >= size) {
		char a[ADDR_STRLEN];

		report(p, line, "[service %s]: pool %s holds only choreod's listen "
		       "addresses: no address is left to hand out", s->section,
		       addr_prefix_format(pool, a));
	}
}

/* Checks that need the whole file: defaults taken from other sections,
 * names against the zone, services against each other. */
static void check_all(struct parser *p)
{
	struct config *cfg = p->cfg;
	unsigned last = p->line ? p->line : 1;
	char a[ADDR_STRLEN], b[ADDR_STRLEN];

	if (!p->dns_line)
		report(p, last, "missing section [dns]");
	if (!cfg->n_services)
		report(p, last,
		       "missing section [service NAME]: at least one is required");
	for (size_t i = 0; i < cfg->n_services; i++) {
		struct config_service *s = &cfg->services[i];
		const unsigned *seen = p->svc_seen[i];

		if (!seen[K_WINDOW])
			s->window = cfg->ttl;
		s->has_pool6 = seen[K_POOL6] != 0;
		s->has_server6 = seen[K_SERVER6] && seen[K_HONEYPOT6];
		if (s->name && cfg->zone && !dname_in_zone(s->name, cfg->zone))
			report(p, seen[K_NAME],
			       "[service %s]: name '%s' is not inside zone '%s'",
			       s->section, s->name, cfg->zone);
		check_pool_not_listen(p, s, &s->pool, seen[K_POOL]);
		if (s->has_pool6)
			check_pool_not_listen(p, s, &s->pool6, seen[K_POOL6]);
		for (size_t j = 0; j < i; j++) {
			const struct config_service *t = &cfg->services[j];
			const unsigned *tseen = p->svc_seen[j];

			if (s->name && t->name && strcmp(s->name, t->name) == 0)
				report(p, seen[K_NAME],
				       "[service %s]: name '%s' is already used by [service %s] (line %u)",
				       s->section, s->name, t->section,
				       tseen[K_NAME]);
			if (s->pool.family == AF_INET &&
			    t->pool.family == AF_INET &&
			    addr_prefix_overlap(&s->pool, &t->pool))
				report(p, seen[K_POOL],
				       "[service %s]: pool %s overlaps pool %s of [service %s] (line %u)",
				       s->section, addr_prefix_format(&s->pool, a),
				       addr_prefix_format(&t->pool, b),
				       t->section, tseen[K_POOL]);
			if (s->pool6.family == AF_INET6 &&
			    t->pool6.family == AF_INET6 &&
			    addr_prefix_overlap(&s->pool6, &t->pool6))
				report(p, seen[K_POOL6],
				       "[service %s]: pool6 %s overlaps pool6 %s of [service %s] (line %u)",
				       s->section, addr_prefix_format(&s->pool6, a),
				       addr_prefix_format(&t->pool6, b),
				       t->section, tseen[K_POOL6]);
		}
	}
}

int config_parse(const char *name, const char *buf, size_t len,
		 struct config **out, struct config_errors *errs)
{
	struct parser *p;
	const char *slash;
	size_t pos = 0;
	int ret;

	if (out)
		*out = NULL;
	if (!buf && len)
		return -EINVAL;
	if (!name)
		name = "(config)";
	/* the line buffer makes the parser too big for some stacks */
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->file = name;
	p->errs = errs;
	slash = strrchr(name, '/');
	if (slash) {
		p->dir = name;
		p->dir_len = (size_t)(slash - name);
		p->has_dir = true;
	}
	p->cfg = calloc(1, sizeof(*p->cfg));
	if (!p->cfg ||
	    !(p->cfg->path = strdup(name)) ||
	    apply_defaults(&sections[S_DAEMON], p->cfg) < 0 ||
	    apply_defaults(&sections[S_DNS], p->cfg) < 0) {
		ret = -ENOMEM;
		goto out;
	}

	/* some editors start a UTF-8 file with a byte order mark */
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		pos = 3;
	while (pos < len && !p->stop && !p->err) {
		const char *s = buf + pos;
		const char *nl = memchr(s, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - s) : len - pos;

		pos += n + (nl ? 1 : 0);
		p->line++;
		parse_line(p, s, n);
	}
	end_section(p);
	if (!p->stop && !p->err)
		check_all(p);

	if (p->err)
		ret = p->err;
	else if (p->n_errors)
		ret = -EINVAL;
	else
		ret = 0;
	if (ret == 0 && out) {
		*out = p->cfg;
		p->cfg = NULL;
	}
out:
	config_free(p->cfg);
	free(p);
	return ret;
}

__attribute__((format(printf, 2, 3)))
static int load_error(struct config_errors *errs, const char *fmt, ...)
{
	struct parser p = { .errs = errs };
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	add_error(&p, msg);
	return p.err;
}

int config_load(const char *path, struct config **out,
		struct config_errors *errs)
{
	size_t cap = 0, len = 0;
	char *buf = NULL;
	struct stat st;
	int fd, ret;

	if (out)
		*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		load_error(errs, "%s: cannot open: %s", path, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		load_error(errs, "%s: cannot stat: %s", path, strerror(-ret));
		goto out;
	}
	/* whoever can write the file decides where connections go */
	if (S_ISREG(st.st_mode) && (st.st_mode & S_IWOTH)) {
		ret = -EPERM;
		load_error(errs, "%s: writable by any user (mode %04o); refusing it",
			   path, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if (S_ISREG(st.st_mode) && st.st_size > CONFIG_MAX_FILE) {
		ret = -EFBIG;
		load_error(errs, "%s: too large (%lld bytes, at most %d)", path,
			   (long long)st.st_size, CONFIG_MAX_FILE);
		goto out;
	}
	/* sizes from fstat are only a hint: pipes say 0, files may grow */
	for (;;) {
		ssize_t r;

		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 4096;
			char *grown;

			if (ncap > CONFIG_MAX_FILE + 1)
				ncap = CONFIG_MAX_FILE + 1;
			if (ncap == cap) {
				ret = -EFBIG;
				load_error(errs, "%s: too large (more than %d bytes)",
					   path, CONFIG_MAX_FILE);
				goto out;
			}
			grown = realloc(buf, ncap);
			if (!grown) {
				ret = -ENOMEM;
				goto out;
			}
			buf = grown;
			cap = ncap;
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = -errno;
			load_error(errs, "%s: cannot read: %s", path,
				   strerror(-ret));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len > CONFIG_MAX_FILE) {
		ret = -EFBIG;
		load_error(errs, "%s: too large (more than %d bytes)", path,
			   CONFIG_MAX_FILE);
		goto out;
	}
	ret = config_parse(path, buf, len, out, errs);
out:
	free(buf);
	close(fd);
	return ret;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->n_services; i++) {
		free(cfg->services[i].section);
		free(cfg->services[i].name);
	}
	free(cfg->services);
	free(cfg->path);
	free(cfg->control);
	free(cfg->table);
	free(cfg->zone);
	free(cfg->zonefile);
	free(cfg);
}

void config_errors_free(struct config_errors *errs)
{
	if (!errs)
		return;
	for (size_t i = 0; i < errs->n; i++)
		free(errs->msg[i]);
	free(errs->msg);
	errs->msg = NULL;
	errs->n = errs->cap = 0;
}

int config_find_service(const struct config *cfg, const char *name)
{
	size_t n;

	if (!cfg || !name)
		return -1;
	n = strlen(name);
	if (n && name[n - 1] == '.')
		n--;
	for (size_t i = 0; i < cfg->n_services; i++) {
		const char *s = cfg->services[i].name;
		size_t sn = s ? strlen(s) : 0;

		if (sn && s[sn - 1] == '.')
			sn--;
		if (s && sn == n && strncasecmp(s, name, n) == 0)
			return (int)i;
	}
	return -1;
}
