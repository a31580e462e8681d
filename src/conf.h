/* SPDX-License-Identifier: MIT */
/*
 * A strict INI reader driven by a schema, knowing nothing of what the file
 * configures. The schema is a table of sections; each section has a table of
 * keys, and each key a type, a range, a default and the field of the
 * section's target struct its value goes to. New sections are rows, not
 * parser code.
 *
 * The syntax: '#' starts a comment; "[section]" or "[section NAME]";
 * "key = value"; lines end in LF or CR LF; a UTF-8 byte order mark at the
 * start is skipped; at most CONF_LINE_MAX bytes a line; no NUL bytes.
 *
 * Every error is reported as "FILE:LINE: message" through the caller's sink
 * and parsing goes on, so that one run reports them all (at most
 * CONF_MAX_ERRORS, then one line says there were too many and the rest of
 * the file is not read). Each line is copied into a bounded, NUL-terminated
 * buffer before anything looks at it: the input need not be a C string.
 */
#ifndef CHOREO_CONF_H
#define CHOREO_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONF_LINE_MAX   4096 /* bytes in a line, without its newline */
#define CONF_MAX_ERRORS 100  /* reported; one more says there were too many */
#define CONF_NAME_MAX   63   /* NAME of [section NAME]: A-Z a-z 0-9 _ - */

/* The parser's state, opaque; handed to the schema's callbacks. */
struct conf;

enum conf_type {
	CONF_UINT,    /* decimal integer min..max; the field is a uint16_t or
			 a uint32_t (size says which) */
	CONF_PATH,    /* char *, min..max bytes, no control characters */
	CONF_FILE,    /* CONF_PATH; a relative path is resolved against the
			 directory of the file being parsed */
	CONF_IDENT,   /* char *, min..max characters A-Z a-z 0-9 _ -, starting
			 with a letter (such as an nftables table name) */
	CONF_DNAME,   /* char *, a domain name: stored lower case with a
			 trailing dot */
	CONF_IPV4,    /* struct in_addr */
	CONF_IPV6,    /* struct in6_addr */
	CONF_PREFIX4, /* struct addr_prefix (addr.h), IPv4, length min..max */
	CONF_PREFIX6, /* struct addr_prefix, IPv6, length min..max */
	CONF_CUSTOM,  /* parsed by the row's parse function */
};

struct conf_key {
	const char *name;
	enum conf_type type;
	uint32_t min, max;     /* range of the value or of its length */
	uint32_t def;          /* CONF_UINT: the default */
	const char *def_str;   /* string types: the default, stored as written
				  (not resolved nor normalised), or NULL */
	bool required;
	size_t off, size;      /* the field in the section's target struct */
	/*
	 * CONF_CUSTOM: parse value (trimmed, NUL-terminated, writable; it
	 * lives in the parser's line buffer for the call only) into obj, the
	 * section's target struct. Report a bad value with conf_bad_value()
	 * or conf_error() and return 0; return a negative errno (-ENOMEM) only
	 * to stop the whole parse.
	 */
	int (*parse)(struct conf *c, const struct conf_key *k, void *obj,
		     char *value);
};

struct conf_section {
	const char *name;      /* lower case; matched exactly */
	/*
	 * false: [name], at most once; its keys are fields of the ctx given
	 * to conf_parse, whose defaults are set before the file is read.
	 * true: [name NAME], repeated up to max times with different NAMEs
	 * (1-CONF_NAME_MAX characters A-Z a-z 0-9 _ -, compared without case);
	 * each gets its target from add.
	 */
	bool named;
	bool required;         /* must appear (named: at least once) */
	/* Optional: required when this says so, once the file is read (e.g.
	 * by what another section set) */
	bool (*required_if)(const void *ctx);
	size_t max;            /* named: most sections of this kind */
	const struct conf_key *keys;
	size_t n_keys;
	/*
	 * named: a zeroed target struct for [name NAME] found at line, owned
	 * by ctx (the caller frees it and every string the engine stores in
	 * it, whether the parse succeeds or not); NULL when out of memory.
	 * name is valid during the call only. The index of the section among
	 * its kind (for conf_key_line) is the number of earlier successful
	 * calls. The engine sets the defaults after it returns.
	 */
	void *(*add)(void *ctx, const char *name, unsigned line);
	/*
	 * Optional: called when a section that was accepted ends (at the next
	 * header or the end of the file), after the missing required keys
	 * are reported; index as for conf_key_line. For checks between keys
	 * of one section, reported in file order. Returns 0 or a negative
	 * errno that stops the parse.
	 */
	int (*end)(struct conf *c, void *ctx, void *obj, size_t index);
};

struct conf_schema {
	const struct conf_section *sections;
	size_t n_sections;
	/*
	 * Optional: called once the whole file is read, when the error limit
	 * was not reached, after the missing required sections are reported:
	 * the checks across keys and sections. Report with conf_error();
	 * return 0 or a negative errno that stops the parse.
	 */
	int (*check)(struct conf *c, void *ctx);
};

/*
 * Where messages go. msg is a malloc'd "FILE:LINE: ..." line; the sink owns
 * it from the call on (it frees it even when it fails). Returns 0, or a
 * negative errno (-ENOMEM) that stops the parse.
 */
typedef int conf_sink_fn(void *arg, char *msg);

/*
 * Parse len bytes at buf (any bytes; no NUL needed) as described by schema
 * into ctx. file names the input in messages and is the base of CONF_FILE
 * paths; it is not copied and must outlive the call. String fields are
 * malloc'd and belong to their target struct; a value given twice is
 * refused, so nothing is overwritten but defaults (which the engine frees).
 * sink may be NULL: the messages are dropped, the result is the same.
 * Returns 0 when the file is valid, -EINVAL when at least one error was
 * reported, or a negative errno (-ENOMEM, or what a callback or the sink
 * returned). ctx may be partly filled in every case: the caller frees it.
 * The struct conf the callbacks get lives for the call only.
 */
int conf_parse(const struct conf_schema *schema, const char *file,
	       const char *buf, size_t len, void *ctx,
	       conf_sink_fn *sink, void *sink_arg);

/* Report "FILE:LINE: message" from a callback (the message is cut at 1023
 * bytes). */
void conf_error(struct conf *c, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Report "FILE:LINE: key 'K' value 'V': expected WHAT" for the line being
 * read (from a CONF_CUSTOM parser); value is quoted safely (control and
 * non-ASCII bytes as \xHH, cut after 100 bytes).
 */
void conf_bad_value(struct conf *c, const struct conf_key *k,
		    const char *value, const char *expected);

/* The line being read (1-based); once the file is read, its last line (1 for
 * an empty file). */
unsigned conf_line(const struct conf *c);

/*
 * The line on which the key-th key of sec (a row of the schema) was given in
 * the index-th accepted section of that kind (index 0 for a section without
 * a name), or 0 when it was not given or there is no such section. A key
 * whose value was refused has its line too (the parse fails anyway): a
 * check that reads the field must not assume the value was set.
 */
unsigned conf_key_line(const struct conf *c, const struct conf_section *sec,
		       size_t index, size_t key);

/* false when that key's value was refused (an error was reported), true
 * when it was accepted or not given (its default holds). */
bool conf_key_ok(const struct conf *c, const struct conf_section *sec,
		 size_t index, size_t key);

/* Spaces, tabs and CRs cut from both ends of s, in place; returns the start. */
char *conf_trim(char *s);

#endif
