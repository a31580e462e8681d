// SPDX-License-Identifier: MIT
/*
 * The INI + schema engine (conf.h). Each line is copied into a bounded,
 * NUL-terminated buffer before anything looks at it, so the input itself
 * need not be a C string.
 */
#include "conf.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "addr.h"

#define QUOTE_MAX      100  /* bytes of a value quoted in a message */
#define QUOTE_BUF      (QUOTE_MAX * 4 + sizeof("..."))
#define LABEL_BUF      128  /* "[section NAME]" */
#define DNAME_MAX_TEXT 253
#define LABEL_MAX      63

/* A section that was accepted: its header and where each key was given. */
struct inst {
	char name[CONF_NAME_MAX + 1]; /* "" for a section without a name */
	unsigned line;                /* of the header */
	unsigned *seen;               /* per key: its line, 0 = not given */
	bool *refused;                /* per key: its value was refused */
};

/* The accepted sections of one row of the schema, in file order. */
struct kind {
	struct inst *v;
	size_t n, cap;
};

struct conf {
	const struct conf_schema *schema;
	const char *file;
	const char *dir;         /* of file, for CONF_FILE */
	size_t dir_len;
	bool has_dir;
	void *ctx;
	conf_sink_fn *sink;
	void *sink_arg;
	size_t n_errors;
	unsigned line;
	int err;                 /* sticky: stops the parse */
	bool stop;               /* too many errors */

	/* The section being read. */
	const struct conf_section *sec; /* NULL before the first header */
	bool skip;               /* bad header: its keys are ignored */
	void *obj;               /* its target */
	struct inst *cur;
	size_t index;            /* among its kind */

	struct kind *kinds;      /* parallel to schema->sections */
	char buf[CONF_LINE_MAX + 1];
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

char *conf_trim(char *s)
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

static void emit(struct conf *c, char *msg)
{
	int ret;

	if (!msg) {
		c->err = -ENOMEM;
		return;
	}
	if (!c->sink) {
		free(msg);
		return;
	}
	ret = c->sink(c->sink_arg, msg);
	if (ret < 0)
		c->err = ret;
}

__attribute__((format(printf, 3, 0)))
static void vreport(struct conf *c, unsigned line, const char *fmt, va_list ap)
{
	char body[1024], *msg;

	if (c->stop || c->err)
		return;
	if (c->n_errors == CONF_MAX_ERRORS) {
		c->stop = true;
		if (asprintf(&msg, "%s:%u: too many errors (more than %d), giving up",
			     c->file, line, CONF_MAX_ERRORS) < 0)
			msg = NULL;
		emit(c, msg);
		return;
	}
	c->n_errors++;
	vsnprintf(body, sizeof(body), fmt, ap);
	if (asprintf(&msg, "%s:%u: %s", c->file, line, body) < 0)
		msg = NULL;
	emit(c, msg);
}

void conf_error(struct conf *c, unsigned line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(c, line, fmt, ap);
	va_end(ap);
}

void conf_bad_value(struct conf *c, const struct conf_key *k,
		    const char *value, const char *expected)
{
	char q[QUOTE_BUF];

	conf_error(c, c->line, "key '%s' value '%s': expected %s", k->name,
		   quote(q, value), expected);
}

unsigned conf_line(const struct conf *c)
{
	return c->line ? c->line : 1;
}

/* What was read of section sec's index-th instance, or NULL. */
static const struct inst *instance_of(const struct conf *c,
					  const struct conf_section *sec,
					  size_t index, size_t key)
{
	for (size_t s = 0; s < c->schema->n_sections; s++) {
		const struct kind *kd = &c->kinds[s];

		if (&c->schema->sections[s] == sec)
			return index < kd->n && key < sec->n_keys ? &kd->v[index] : NULL;
	}
	return NULL;
}

unsigned conf_key_line(const struct conf *c, const struct conf_section *sec,
		       size_t index, size_t key)
{
	const struct inst *in = instance_of(c, sec, index, key);

	return in ? in->seen[key] : 0;
}

bool conf_key_ok(const struct conf *c, const struct conf_section *sec,
		 size_t index, size_t key)
{
	const struct inst *in = instance_of(c, sec, index, key);

	return in ? !in->refused[key] : true;
}

/* ---- values --------------------------------------------------------------- */

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

/* A value's copy into its field; NULL (no memory) stops the parse. */
static void store_string(struct conf *c, void *dst, char *s)
{
	if (!s)
		c->err = -ENOMEM;
	else
		set_string(dst, s);
}

static void set_uint(struct conf *c, const struct conf_key *k, void *dst,
		     const char *v)
{
	uint32_t n;

	if (!parse_u32(v, k->min, k->max, &n)) {
		char expected[64];

		snprintf(expected, sizeof(expected), "an integer %u-%u",
			 k->min, k->max);
		conf_bad_value(c, k, v, expected);
		return;
	}
	if (k->size == sizeof(uint16_t))
		*(uint16_t *)dst = (uint16_t)n;
	else
		*(uint32_t *)dst = n;
}

static void set_path(struct conf *c, const struct conf_key *k, void *dst,
		     const char *v)
{
	char expected[96];
	size_t n = strlen(v);
	char *s;

	if (!path_ok(v) || n < k->min || n > k->max) {
		snprintf(expected, sizeof(expected),
			 "a path of %u-%u characters, no control characters",
			 k->min, k->max);
		conf_bad_value(c, k, v, expected);
		return;
	}
	if (k->type == CONF_FILE && v[0] != '/' && c->has_dir) {
		if (c->dir_len + 1 + n > k->max) {
			snprintf(expected, sizeof(expected),
				 "a path of at most %u characters once resolved against the configuration directory",
				 k->max);
			conf_bad_value(c, k, v, expected);
			return;
		}
		if (asprintf(&s, "%.*s/%s", (int)c->dir_len, c->dir, v) < 0)
			s = NULL;
	} else {
		s = strdup(v);
	}
	store_string(c, dst, s);
}

static void set_ident(struct conf *c, const struct conf_key *k, void *dst,
		      const char *v)
{
	size_t n = strlen(v), i;

	for (i = 0; i < n && is_word(v[i]); i++)
		;
	if (n < k->min || n > k->max || i != n || !is_alpha(v[0])) {
		char expected[96];

		snprintf(expected, sizeof(expected),
			 "%u-%u characters A-Z a-z 0-9 _ -, starting with a letter",
			 k->min, k->max);
		conf_bad_value(c, k, v, expected);
		return;
	}
	store_string(c, dst, strdup(v));
}

static void set_dname(struct conf *c, const struct conf_key *k, void *dst,
		      const char *v)
{
	char *s;
	int ret = dname_parse(v, &s);

	if (ret == -ENOMEM) {
		c->err = ret;
		return;
	}
	if (ret < 0) {
		conf_bad_value(c, k, v, "a domain name: labels of 1-63 characters A-Z a-z 0-9 - _, at most 253 characters");
		return;
	}
	set_string(dst, s);
}

static void set_addr(struct conf *c, const struct conf_key *k, void *dst,
		     const char *v)
{
	int want = k->type == CONF_IPV4 ? AF_INET : AF_INET6;
	uint8_t a[16];
	int family;

	if (addr_parse(v, &family, a) < 0 || family != want) {
		conf_bad_value(c, k, v, want == AF_INET ? "an IPv4 address"
							: "an IPv6 address");
		return;
	}
	memcpy(dst, a, k->size < sizeof(a) ? k->size : sizeof(a));
}

static void set_prefix(struct conf *c, const struct conf_key *k, void *dst,
		       const char *v)
{
	bool v4 = k->type == CONF_PREFIX4;
	const char *example = v4 ? "203.0.113.0/25" : "2001:db8:1::/64";
	char expected[96];
	struct addr_prefix pfx;
	int ret = addr_prefix_parse(v, &pfx);

	if (ret == -EDOM) {
		snprintf(expected, sizeof(expected),
			 "a network prefix such as %s", example);
		conf_bad_value(c, k, v, expected);
		return;
	}
	if (ret < 0 || pfx.family != (v4 ? AF_INET : AF_INET6) ||
	    pfx.len < k->min || pfx.len > k->max) {
		snprintf(expected, sizeof(expected),
			 "an %s prefix such as %s, length %u-%u",
			 v4 ? "IPv4" : "IPv6", example, k->min, k->max);
		conf_bad_value(c, k, v, expected);
		return;
	}
	*(struct addr_prefix *)dst = pfx;
}

static void set_value(struct conf *c, const struct conf_key *k, char *v)
{
	void *dst = (char *)c->obj + k->off;
	int ret;

	switch (k->type) {
	case CONF_UINT:
		set_uint(c, k, dst, v);
		break;
	case CONF_PATH:
	case CONF_FILE:
		set_path(c, k, dst, v);
		break;
	case CONF_IDENT:
		set_ident(c, k, dst, v);
		break;
	case CONF_DNAME:
		set_dname(c, k, dst, v);
		break;
	case CONF_IPV4:
	case CONF_IPV6:
		set_addr(c, k, dst, v);
		break;
	case CONF_PREFIX4:
	case CONF_PREFIX6:
		set_prefix(c, k, dst, v);
		break;
	case CONF_CUSTOM:
		ret = k->parse ? k->parse(c, k, c->obj, v) : 0;
		if (ret < 0)
			c->err = ret;
		break;
	}
}

static int apply_defaults(const struct conf_section *sec, void *obj)
{
	for (size_t i = 0; i < sec->n_keys; i++) {
		const struct conf_key *k = &sec->keys[i];
		void *dst = (char *)obj + k->off;

		if (k->def_str) {
			char *s = strdup(k->def_str);

			if (!s)
				return -ENOMEM;
			set_string(dst, s);
		} else if (k->type == CONF_UINT && k->size == sizeof(uint16_t)) {
			*(uint16_t *)dst = (uint16_t)k->def;
		} else if (k->type == CONF_UINT) {
			*(uint32_t *)dst = k->def;
		}
	}
	return 0;
}

/* ---- sections and lines ---------------------------------------------------- */

/* "[dns]" or "[service NAME]" */
static const char *section_label(const struct conf *c, char out[static LABEL_BUF])
{
	if (c->cur->name[0])
		snprintf(out, LABEL_BUF, "[%s %s]", c->sec->name, c->cur->name);
	else
		snprintf(out, LABEL_BUF, "[%s]", c->sec->name);
	return out;
}

static void end_section(struct conf *c)
{
	char lbl[LABEL_BUF];

	if (!c->sec || c->skip)
		return;
	c->skip = true;
	section_label(c, lbl);
	for (size_t i = 0; i < c->sec->n_keys; i++) {
		if (c->sec->keys[i].required && !c->cur->seen[i])
			conf_error(c, c->cur->line, "%s: missing key '%s'", lbl,
				   c->sec->keys[i].name);
	}
	if (c->sec->end && !c->stop && !c->err) {
		int ret = c->sec->end(c, c->ctx, c->obj, c->index);

		if (ret < 0)
			c->err = ret;
	}
}

/* Count a new section of kind kd and make it the current one; its name has
 * been checked (at most CONF_NAME_MAX characters). */
static int add_inst(struct conf *c, struct kind *kd, const char *name,
		    void *obj)
{
	struct inst *in;

	if (kd->n == kd->cap) {
		size_t cap = kd->cap ? kd->cap * 2 : 4;
		struct inst *grown = realloc(kd->v, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		kd->v = grown;
		kd->cap = cap;
	}
	in = &kd->v[kd->n];
	memset(in, 0, sizeof(*in));
	in->seen = calloc(c->sec->n_keys ? c->sec->n_keys : 1,
			  sizeof(*in->seen));
	in->refused = calloc(c->sec->n_keys ? c->sec->n_keys : 1,
			     sizeof(*in->refused));
	if (!in->seen || !in->refused) {
		free(in->seen);
		free(in->refused);
		return -ENOMEM;
	}
	if (name)
		memcpy(in->name, name, strlen(name) + 1);
	in->line = c->line;
	c->index = kd->n++;
	c->cur = in;
	c->obj = obj;
	c->skip = false;
	return 0;
}

static bool name_ok(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!is_word(s[i]) || i == CONF_NAME_MAX)
			return false;
	return i > 0;
}

static void start_named(struct conf *c, struct kind *kd, const char *name)
{
	const struct conf_section *sec = c->sec;
	void *obj;

	if (!name_ok(name)) {
		char q[QUOTE_BUF];

		conf_error(c, c->line,
			   "bad %s name '%s': expected 1-%d characters A-Z a-z 0-9 _ -",
			   sec->name, quote(q, name), CONF_NAME_MAX);
		return;
	}
	for (size_t i = 0; i < kd->n; i++) {
		if (strcasecmp(kd->v[i].name, name) == 0) {
			conf_error(c, c->line,
				   "duplicate section [%s %s] (first at line %u)",
				   sec->name, name, kd->v[i].line);
			return;
		}
	}
	if (kd->n >= sec->max) {
		conf_error(c, c->line, "too many %ss (at most %zu)", sec->name,
			   sec->max);
		return;
	}
	obj = sec->add(c->ctx, name, c->line);
	if (!obj || add_inst(c, kd, name, obj) < 0 ||
	    apply_defaults(sec, obj) < 0)
		c->err = -ENOMEM;
}

static void start_unnamed(struct conf *c, struct kind *kd)
{
	if (kd->n) {
		conf_error(c, c->line, "duplicate section [%s] (first at line %u)",
			   c->sec->name, kd->v[0].line);
		return;
	}
	/* the defaults were set before the file was read */
	if (add_inst(c, kd, NULL, c->ctx) < 0)
		c->err = -ENOMEM;
}

static void parse_section(struct conf *c, char *l)
{
	const struct conf_schema *schema = c->schema;
	char q[QUOTE_BUF];
	size_t n = strlen(l), s;
	char *inner, *name;

	end_section(c);
	c->skip = true;
	if (n < 2 || l[n - 1] != ']') {
		conf_error(c, c->line,
			   "bad section header '%s': expected [section] or [section NAME]",
			   quote(q, l));
		return;
	}
	l[n - 1] = '\0';
	inner = conf_trim(l + 1);
	for (name = inner; *name && !is_space(*name); name++)
		;
	if (*name) {
		*name = '\0';
		name = conf_trim(name + 1);
	} else {
		name = NULL;
	}
	for (s = 0; s < schema->n_sections; s++) {
		if (strcmp(inner, schema->sections[s].name) == 0)
			break;
	}
	if (s == schema->n_sections) {
		conf_error(c, c->line, "unknown section [%s]", quote(q, inner));
		return;
	}
	c->sec = &schema->sections[s];
	if (c->sec->named && !name) {
		conf_error(c, c->line, "section [%s] needs a name: [%s NAME]",
			   c->sec->name, c->sec->name);
		return;
	}
	if (!c->sec->named && name) {
		conf_error(c, c->line, "section [%s] takes no name", c->sec->name);
		return;
	}
	if (c->sec->named)
		start_named(c, &c->kinds[s], name);
	else
		start_unnamed(c, &c->kinds[s]);
}

static void parse_key(struct conf *c, char *l, char *eq)
{
	char q[QUOTE_BUF], lbl[LABEL_BUF];
	const struct conf_key *k = NULL;
	char *key, *val;
	size_t i, before;

	*eq = '\0';
	key = conf_trim(l);
	val = conf_trim(eq + 1);
	if (c->skip)
		return;
	if (!c->sec) {
		conf_error(c, c->line, "key '%s' outside of any section",
			   quote(q, key));
		return;
	}
	for (i = 0; i < c->sec->n_keys; i++) {
		if (strcmp(key, c->sec->keys[i].name) == 0) {
			k = &c->sec->keys[i];
			break;
		}
	}
	if (!k) {
		conf_error(c, c->line, "unknown key '%s' in %s", quote(q, key),
			   section_label(c, lbl));
		return;
	}
	if (c->cur->seen[i]) {
		conf_error(c, c->line, "duplicate key '%s' in %s (first at line %u)",
			   k->name, section_label(c, lbl), c->cur->seen[i]);
		return;
	}
	c->cur->seen[i] = c->line;
	before = c->n_errors;
	set_value(c, k, val);
	if (c->n_errors > before)
		c->cur->refused[i] = true;
}

static void parse_line(struct conf *c, const char *s, size_t n)
{
	char *l, *hash, *eq;

	if (n > CONF_LINE_MAX) {
		conf_error(c, c->line, "line longer than %d bytes", CONF_LINE_MAX);
		return;
	}
	if (memchr(s, '\0', n)) {
		conf_error(c, c->line, "NUL byte in line");
		return;
	}
	memcpy(c->buf, s, n);
	c->buf[n] = '\0';
	hash = strchr(c->buf, '#');
	if (hash)
		*hash = '\0';
	l = conf_trim(c->buf);
	if (!*l)
		return;
	if (*l == '[') {
		parse_section(c, l);
		return;
	}
	eq = strchr(l, '=');
	if (!eq || eq == l) {
		char q[QUOTE_BUF];

		conf_error(c, c->line,
			   "unrecognised line '%s': expected [section], key = value or a comment",
			   quote(q, l));
		return;
	}
	parse_key(c, l, eq);
}

static void check_required_sections(struct conf *c)
{
	for (size_t s = 0; s < c->schema->n_sections; s++) {
		const struct conf_section *sec = &c->schema->sections[s];

		bool required = sec->required ||
				(sec->required_if && sec->required_if(c->ctx));

		if (!required || c->kinds[s].n)
			continue;
		if (sec->named)
			conf_error(c, conf_line(c),
				   "missing section [%s NAME]: at least one is required",
				   sec->name);
		else
			conf_error(c, conf_line(c), "missing section [%s]",
				   sec->name);
	}
}

static void conf_free(struct conf *c)
{
	for (size_t s = 0; c->kinds && s < c->schema->n_sections; s++) {
		for (size_t i = 0; i < c->kinds[s].n; i++) {
			free(c->kinds[s].v[i].seen);
			free(c->kinds[s].v[i].refused);
		}
		free(c->kinds[s].v);
	}
	free(c->kinds);
	free(c);
}

int conf_parse(const struct conf_schema *schema, const char *file,
	       const char *buf, size_t len, void *ctx,
	       conf_sink_fn *sink, void *sink_arg)
{
	const char *slash;
	struct conf *c;
	size_t pos = 0;
	int ret;

	if (!schema || !file || (!buf && len))
		return -EINVAL;
	/* the line buffer makes the parser too big for some stacks */
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->schema = schema;
	c->file = file;
	c->ctx = ctx;
	c->sink = sink;
	c->sink_arg = sink_arg;
	slash = strrchr(file, '/');
	if (slash) {
		c->dir = file;
		c->dir_len = (size_t)(slash - file);
		c->has_dir = true;
	}
	c->kinds = calloc(schema->n_sections ? schema->n_sections : 1,
			  sizeof(*c->kinds));
	if (!c->kinds) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t s = 0; s < schema->n_sections; s++) {
		if (!schema->sections[s].named &&
		    apply_defaults(&schema->sections[s], ctx) < 0) {
			ret = -ENOMEM;
			goto out;
		}
	}

	/* some editors start a UTF-8 file with a byte order mark */
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		pos = 3;
	while (pos < len && !c->stop && !c->err) {
		const char *s = buf + pos;
		const char *nl = memchr(s, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - s) : len - pos;

		pos += n + (nl ? 1 : 0);
		c->line++;
		parse_line(c, s, n);
	}
	end_section(c);
	if (!c->stop && !c->err) {
		check_required_sections(c);
		if (schema->check && !c->stop && !c->err) {
			ret = schema->check(c, ctx);
			if (ret < 0)
				c->err = ret;
		}
	}

	if (c->err)
		ret = c->err;
	else if (c->n_errors)
		ret = -EINVAL;
	else
		ret = 0;
out:
	conf_free(c);
	return ret;
}
