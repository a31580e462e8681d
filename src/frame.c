// SPDX-License-Identifier: MIT
#include "frame.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include "crypto.h"

/* Offset of the payload length in the header, patched by frame_end. */
#define LEN_OFFSET 8

/* "choreo v1 " || dir || 0x00 || u16 key_id || four (u8 len || string) */
#define SESSION_INFO_MAX (10 + 3 + 1 + 2 + 2 * (1 + FRAME_ROLE_MAX) + \
			  2 * (1 + FRAME_NAME_MAX))

/* ---- frames ----------------------------------------------------------------- */

int frame_header_decode(const uint8_t buf[static FRAME_HEADER_LEN],
			uint32_t max_payload, struct frame_header *out)
{
	struct wire r = wire_init(buf, FRAME_HEADER_LEN);
	uint32_t magic;
	uint8_t version;
	int ret;

	if (max_payload > FRAME_MAX_PAYLOAD)
		max_payload = FRAME_MAX_PAYLOAD;
	magic = wire_u32(&r);
	version = wire_u8(&r);
	out->type = wire_u8(&r);
	out->key_id = wire_u16(&r);
	out->len = wire_u32(&r);
	out->seq = wire_u64(&r);
	out->ts_ms = wire_u64(&r);
	/* 28 bytes were there by the parameter's type: no cursor error */
	if (magic != FRAME_MAGIC)
		ret = FRAME_ERR_MAGIC;
	else if (version != FRAME_VERSION)
		ret = FRAME_ERR_VERSION;
	else if (out->len > max_payload)
		ret = FRAME_ERR_LENGTH;
	else
		return 0;
	memset(out, 0, sizeof(*out));
	return ret;
}

size_t frame_begin(struct wire_out *w, uint8_t type, uint16_t key_id,
		   uint64_t seq, uint64_t ts_ms)
{
	size_t start = wire_out_len(w);

	wire_put_u32(w, FRAME_MAGIC);
	wire_put_u8(w, FRAME_VERSION);
	wire_put_u8(w, type);
	wire_put_u16(w, key_id);
	wire_put_u32(w, 0); /* the payload length: frame_end knows it */
	wire_put_u64(w, seq);
	wire_put_u64(w, ts_ms);
	return start;
}

int frame_end(struct wire_out *w, size_t start,
	      const uint8_t key[static FRAME_KEY_LEN])
{
	uint8_t tag[FRAME_TAG_LEN];
	struct iovec iov;
	uint8_t *frame;
	size_t len, n;
	int ret;

	if ((ret = wire_out_error(w)) < 0)
		return ret;
	len = wire_out_len(w);
	if (start > len || len - start < FRAME_HEADER_LEN)
		return -EINVAL;
	frame = w->start + start;
	if (memcmp(frame, "chor", 4) != 0)
		return -EINVAL;
	n = len - start - FRAME_HEADER_LEN;
	if (n > FRAME_MAX_PAYLOAD)
		return FRAME_ERR_LENGTH;
	frame[LEN_OFFSET] = (uint8_t)(n >> 24);
	frame[LEN_OFFSET + 1] = (uint8_t)(n >> 16);
	frame[LEN_OFFSET + 2] = (uint8_t)(n >> 8);
	frame[LEN_OFFSET + 3] = (uint8_t)n;
	iov = (struct iovec){ .iov_base = frame, .iov_len = len - start };
	ret = crypto_hmac_sha256(key, FRAME_KEY_LEN, &iov, 1, tag);
	if (ret == 0) {
		wire_write(w, tag, sizeof(tag));
		ret = wire_out_error(w);
	}
	explicit_bzero(tag, sizeof(tag));
	return ret;
}

int frame_encode(struct wire_out *w, uint8_t type, uint16_t key_id,
		 uint64_t seq, uint64_t ts_ms, const uint8_t *payload,
		 size_t len, const uint8_t key[static FRAME_KEY_LEN])
{
	size_t start;

	if (!payload && len)
		return -EINVAL;
	if (len > FRAME_MAX_PAYLOAD)
		return FRAME_ERR_LENGTH;
	start = frame_begin(w, type, key_id, seq, ts_ms);
	wire_write(w, payload, len);
	return frame_end(w, start, key);
}

int frame_verify_tag(const uint8_t *frame, size_t len,
		     const uint8_t tag[static FRAME_TAG_LEN],
		     const uint8_t key[static FRAME_KEY_LEN])
{
	struct iovec iov = { .iov_base = (void *)(uintptr_t)frame, .iov_len = len };
	uint8_t want[FRAME_TAG_LEN];
	int ret;

	if (!frame && len)
		return -EINVAL;
	ret = crypto_hmac_sha256(key, FRAME_KEY_LEN, &iov, 1, want);
	if (ret == 0 && !crypto_equal(want, tag, FRAME_TAG_LEN))
		ret = FRAME_ERR_TAG;
	explicit_bzero(want, sizeof(want));
	return ret;
}

int frame_rx_accept(struct frame_rx *rx, const struct frame_header *h,
		    uint64_t now_ms)
{
	uint64_t off;

	/* first 0, then exactly one more: a frame repeated, dropped or
	 * reordered is refused (and UINT64_MAX ends a direction) */
	if (rx->any ? rx->last_seq == UINT64_MAX || h->seq != rx->last_seq + 1
		    : h->seq != 0)
		return FRAME_ERR_SEQ;
	off = h->ts_ms > now_ms ? h->ts_ms - now_ms : now_ms - h->ts_ms;
	if (off > FRAME_FUDGE_MS)
		return FRAME_ERR_TIME;
	rx->any = true;
	rx->last_seq = h->seq;
	return 0;
}

/* ---- keys and the handshake ----------------------------------------------- */

int frame_hello_key(const struct psk *psk, uint8_t out[static FRAME_KEY_LEN])
{
	static const char label[] = "choreo v1 hello"; /* its NUL is the 0x00 */
	uint8_t info[sizeof(label) + 2];
	struct wire_out w = wire_out_init(info, sizeof(info));
	int ret;

	if (psk->len == 0 || psk->len > PSK_MAX_LEN)
		return -EINVAL;
	wire_write(&w, label, sizeof(label));
	wire_put_u16(&w, psk->id);
	if ((ret = wire_out_error(&w)) < 0)
		return ret;
	return crypto_hkdf_sha256(psk->bytes, psk->len, NULL, 0,
				  info, wire_out_len(&w), out, FRAME_KEY_LEN);
}

/* u8 len || s; s already checked to be a role or a name. */
static void put_str(struct wire_out *w, const char *s)
{
	size_t n = strlen(s);

	wire_put_u8(w, (uint8_t)n);
	wire_write(w, s, n);
}

static int session_key(const struct psk *psk, const uint8_t salt[static 64],
		       const char *dir, const char *crole, const char *cname,
		       const char *srole, const char *sname,
		       uint8_t out[static FRAME_KEY_LEN])
{
	uint8_t info[SESSION_INFO_MAX];
	struct wire_out w = wire_out_init(info, sizeof(info));
	int ret;

	wire_write(&w, "choreo v1 ", 10);
	wire_write(&w, dir, 3);
	wire_put_u8(&w, 0);
	wire_put_u16(&w, psk->id);
	put_str(&w, crole);
	put_str(&w, cname);
	put_str(&w, srole);
	put_str(&w, sname);
	if ((ret = wire_out_error(&w)) < 0)
		return ret;
	return crypto_hkdf_sha256(psk->bytes, psk->len, salt, 64,
				  info, wire_out_len(&w), out, FRAME_KEY_LEN);
}

int frame_session_keys(const struct psk *psk,
		       const uint8_t cnonce[static FRAME_NONCE_LEN],
		       const uint8_t snonce[static FRAME_NONCE_LEN],
		       const char *crole, const char *cname,
		       const char *srole, const char *sname,
		       uint8_t c2s[static FRAME_KEY_LEN],
		       uint8_t s2c[static FRAME_KEY_LEN])
{
	uint8_t salt[2 * FRAME_NONCE_LEN];
	int ret = -EINVAL;

	if (psk->len == 0 || psk->len > PSK_MAX_LEN ||
	    !frame_role_valid(crole) || !frame_name_valid(cname) ||
	    !frame_role_valid(srole) || !frame_name_valid(sname))
		goto fail;
	memcpy(salt, cnonce, FRAME_NONCE_LEN);
	memcpy(salt + FRAME_NONCE_LEN, snonce, FRAME_NONCE_LEN);
	ret = session_key(psk, salt, "c2s", crole, cname, srole, sname, c2s);
	if (ret == 0)
		ret = session_key(psk, salt, "s2c", crole, cname, srole, sname, s2c);
	if (ret == 0)
		return 0;
fail:
	explicit_bzero(c2s, FRAME_KEY_LEN);
	explicit_bzero(s2c, FRAME_KEY_LEN);
	return ret;
}

int frame_transcript(const uint8_t *hello, size_t hello_len,
		     const uint8_t *welcome, size_t welcome_len,
		     uint8_t out[static FRAME_DIGEST_LEN])
{
	struct iovec iov[2] = {
		{ .iov_base = (void *)(uintptr_t)hello, .iov_len = hello_len },
		{ .iov_base = (void *)(uintptr_t)welcome, .iov_len = welcome_len },
	};

	if ((!hello && hello_len) || (!welcome && welcome_len))
		return -EINVAL;
	return crypto_sha256(iov, 2, out);
}

int frame_proof_check(const uint8_t proof[static FRAME_DIGEST_LEN],
		      const uint8_t transcript[static FRAME_DIGEST_LEN])
{
	return crypto_equal(proof, transcript, FRAME_DIGEST_LEN) ? 0 : FRAME_ERR_PROOF;
}

/* ---- payloads --------------------------------------------------------------- */

/* The decoder's end: nothing may be left over; w fails with the result. */
static int finish(struct wire *w, int ret)
{
	if (ret == 0 && (ret = wire_error(w)) == 0 && wire_available(w) != 0)
		ret = FRAME_ERR_SIZE;
	wire_fail(w, ret);
	return ret;
}

static bool name_byte(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static bool name_bytes_valid(const uint8_t *p, size_t n)
{
	if (n < 1 || n > FRAME_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!name_byte(p[i]))
			return false;
	return true;
}

static bool role_bytes_valid(const uint8_t *p, size_t n)
{
	static const char *const roles[] = {
		FRAME_ROLE_DNS, FRAME_ROLE_GATEWAY, FRAME_ROLE_CONTROLLER,
	};

	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
		if (n == strlen(roles[i]) && memcmp(p, roles[i], n) == 0)
			return true;
	return false;
}

bool frame_name_valid(const char *name)
{
	return name && name_bytes_valid((const uint8_t *)name,
					strnlen(name, FRAME_NAME_MAX + 1));
}

bool frame_role_valid(const char *role)
{
	return role && role_bytes_valid((const uint8_t *)role,
					strnlen(role, FRAME_ROLE_MAX + 1));
}

/* u8 len || bytes, checked by valid(), into out (size cap + 1) with a NUL.
 * A failure is FRAME_ERR_FIELD, or the cursor's error when too short. */
static void get_str(struct wire *w, char *out, size_t cap,
		    bool (*valid)(const uint8_t *, size_t))
{
	size_t n = wire_u8(w);
	const uint8_t *p = wire_take(w, n);

	out[0] = '\0';
	if (!p)
		return;
	if (n > cap || !valid(p, n)) {
		wire_fail(w, FRAME_ERR_FIELD);
		return;
	}
	memcpy(out, p, n);
	out[n] = '\0';
}

int frame_hello_encode(struct wire_out *w,
		       const uint8_t nonce[static FRAME_NONCE_LEN],
		       const char *role, const char *name, const char *server)
{
	if (!frame_role_valid(role) || !frame_name_valid(name) ||
	    !frame_name_valid(server))
		return -EINVAL;
	wire_write(w, nonce, FRAME_NONCE_LEN);
	put_str(w, role);
	put_str(w, name);
	put_str(w, server);
	return wire_out_error(w);
}

int frame_hello_decode(struct wire *w, struct frame_hello *out)
{
	memset(out, 0, sizeof(*out));
	wire_read(w, out->nonce, FRAME_NONCE_LEN);
	get_str(w, out->role, FRAME_ROLE_MAX, role_bytes_valid);
	get_str(w, out->name, FRAME_NAME_MAX, name_bytes_valid);
	get_str(w, out->server, FRAME_NAME_MAX, name_bytes_valid);
	return finish(w, 0);
}

int frame_welcome_encode(struct wire_out *w,
			 const uint8_t nonce[static FRAME_NONCE_LEN],
			 const char *role, const char *name)
{
	if (!frame_role_valid(role) || !frame_name_valid(name))
		return -EINVAL;
	wire_write(w, nonce, FRAME_NONCE_LEN);
	put_str(w, role);
	put_str(w, name);
	return wire_out_error(w);
}

int frame_welcome_decode(struct wire *w, struct frame_welcome *out)
{
	memset(out, 0, sizeof(*out));
	wire_read(w, out->nonce, FRAME_NONCE_LEN);
	get_str(w, out->role, FRAME_ROLE_MAX, role_bytes_valid);
	get_str(w, out->name, FRAME_NAME_MAX, name_bytes_valid);
	return finish(w, 0);
}

int frame_proof_encode(struct wire_out *w,
		       const uint8_t digest[static FRAME_DIGEST_LEN])
{
	wire_write(w, digest, FRAME_DIGEST_LEN);
	return wire_out_error(w);
}

int frame_proof_decode(struct wire *w, uint8_t digest[static FRAME_DIGEST_LEN])
{
	wire_read(w, digest, FRAME_DIGEST_LEN);
	return finish(w, 0);
}

int frame_changes_encode(struct wire_out *w, uint32_t commit_id,
			 const uint8_t digest[static FRAME_DIGEST_LEN],
			 const struct change *changes, size_t n)
{
	if (!changes || n < 1 || n > FRAME_MAX_CHANGES)
		return -EINVAL;
	wire_put_u32(w, commit_id);
	wire_write(w, digest, FRAME_DIGEST_LEN);
	wire_put_u16(w, (uint16_t)n);
	for (size_t i = 0; i < n && !wire_out_error(w); i++)
		change_encode(w, &changes[i]);
	return wire_out_error(w);
}

int frame_changes_fill(void *ctx, struct wire_out *w)
{
	const struct frame_changes_args *a = ctx;

	return frame_changes_encode(w, a->commit_id, a->digest, a->c, a->n);
}

/* The head, count and size of a CHANGES, read from w. */
static int changes_head(struct wire *w, struct frame_changes *out)
{
	int ret;

	memset(out, 0, sizeof(*out));
	out->commit_id = wire_u32(w);
	wire_read(w, out->digest, FRAME_DIGEST_LEN);
	out->count = wire_u16(w);
	if ((ret = wire_error(w)) < 0)
		return ret;
	if (out->count < 1 || out->count > FRAME_MAX_CHANGES)
		return finish(w, FRAME_ERR_FIELD);
	/* count is the sender's word; the bytes are what is here */
	if (wire_available(w) != (size_t)out->count * CHANGE_WIRE_LEN)
		return finish(w, FRAME_ERR_SIZE);
	return 0;
}

int frame_changes_peek(const struct wire *w, struct frame_changes *out)
{
	struct wire head = *w;
	int ret = changes_head(&head, out);

	if (ret < 0)
		memset(out, 0, sizeof(*out));
	return ret;
}

int frame_changes_decode(struct wire *w, size_t n_services,
			 struct frame_changes *out)
{
	struct wire check;
	struct change c;
	int ret;

	if ((ret = changes_head(w, out)) < 0)
		return ret;
	out->rest = *w;
	out->n_services = n_services;
	check = *w;
	for (unsigned i = 0; i < out->count; i++)
		if ((ret = change_decode(&check, n_services, &c)) < 0)
			return finish(w, ret);
	wire_skip(w, wire_available(w));
	return finish(w, 0);
}

int frame_changes_next(struct frame_changes *it, struct change *c)
{
	if (wire_available(&it->rest) < CHANGE_WIRE_LEN)
		return 0;
	/* checked by frame_changes_decode; a failure here means *it was
	 * not made by it, and ends the iteration */
	return change_decode(&it->rest, it->n_services, c) == 0;
}

int frame_windows_encode(struct wire_out *w,
			 const uint8_t digest[static FRAME_DIGEST_LEN], bool more,
			 const struct change *windows, size_t n)
{
	if ((n && !windows) || n > FRAME_MAX_CHANGES)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (windows[i].kind != CHANGE_OPEN && windows[i].kind != CHANGE_OPEN_SCOPED)
			return -EINVAL;
	wire_write(w, digest, FRAME_DIGEST_LEN);
	wire_put_u8(w, more ? 1 : 0);
	wire_put_u16(w, (uint16_t)n);
	for (size_t i = 0; i < n && !wire_out_error(w); i++)
		change_encode(w, &windows[i]);
	return wire_out_error(w);
}

/* WINDOWS and LEARNED: digest, more, count, changes of the kinds in mask
 * (bit 1 << kind); a LEARNED has more = 0 and at least one change. */
static int list_decode(struct wire *w, size_t n_services, unsigned mask,
		       bool learned, struct frame_windows *out)
{
	struct wire check;
	struct change c;
	uint8_t more;
	int ret;

	memset(out, 0, sizeof(*out));
	wire_read(w, out->digest, FRAME_DIGEST_LEN);
	more = wire_u8(w);
	out->count = wire_u16(w);
	if ((ret = wire_error(w)) < 0)
		return ret;
	if (more > (learned ? 0 : 1) || out->count > FRAME_MAX_CHANGES ||
	    (learned && out->count == 0))
		return finish(w, FRAME_ERR_FIELD);
	if (wire_available(w) != (size_t)out->count * CHANGE_WIRE_LEN)
		return finish(w, FRAME_ERR_SIZE);
	out->more = more;
	out->rest = *w;
	out->n_services = n_services;
	check = *w;
	for (unsigned i = 0; i < out->count; i++) {
		if ((ret = change_decode(&check, n_services, &c)) < 0)
			return finish(w, ret);
		if (!(mask & (1u << c.kind)))
			return finish(w, FRAME_ERR_FIELD);
	}
	wire_skip(w, wire_available(w));
	return finish(w, 0);
}

int frame_windows_decode(struct wire *w, size_t n_services,
			 struct frame_windows *out)
{
	return list_decode(w, n_services,
			   1u << CHANGE_OPEN | 1u << CHANGE_OPEN_SCOPED, false, out);
}

int frame_learned_encode(struct wire_out *w,
			 const uint8_t digest[static FRAME_DIGEST_LEN],
			 const struct change *learned, size_t n)
{
	if (!learned || n == 0 || n > FRAME_MAX_CHANGES)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (learned[i].kind != CHANGE_LEARNED)
			return -EINVAL;
	wire_write(w, digest, FRAME_DIGEST_LEN);
	wire_put_u8(w, 0);
	wire_put_u16(w, (uint16_t)n);
	for (size_t i = 0; i < n && !wire_out_error(w); i++)
		change_encode(w, &learned[i]);
	return wire_out_error(w);
}

int frame_learned_decode(struct wire *w, size_t n_services,
			 struct frame_windows *out)
{
	return list_decode(w, n_services, 1u << CHANGE_LEARNED, true, out);
}

static bool assign_entry_valid(uint8_t bits, int32_t block)
{
	return bits <= FRAME_MAX_BLOCK_BITS &&
	       (block == -1 || (block >= 0 && (uint32_t)block < (1u << bits)));
}

static int assign_put(struct wire_out *w, const struct frame_assign *a)
{
	if (a->n > FRAME_MAX_SERVICES || (a->epoch == 0 && a->n))
		return -EINVAL;
	for (size_t i = 0; i < a->n; i++)
		if (!assign_entry_valid(a->block_bits[i], a->block[i]))
			return -EINVAL;
	wire_put_u64(w, a->epoch);
	wire_put_u16(w, a->n);
	for (size_t i = 0; i < a->n; i++) {
		wire_put_u8(w, a->block_bits[i]);
		wire_put_u32(w, (uint32_t)a->block[i]);
		wire_put_u32(w, a->share[i]);
	}
	return wire_out_error(w);
}

/* The entries, each checked; the caller checks that the payload ends. */
static int assign_get(struct wire *w, struct frame_assign *out)
{
	int ret;

	memset(out, 0, sizeof(*out));
	out->epoch = wire_u64(w);
	out->n = wire_u16(w);
	if ((ret = wire_error(w)) < 0)
		return ret;
	if (out->n > FRAME_MAX_SERVICES || (out->epoch == 0 && out->n))
		return finish(w, FRAME_ERR_FIELD);
	if (wire_available(w) != (size_t)out->n * 9)
		return finish(w, FRAME_ERR_SIZE);
	for (size_t i = 0; i < out->n; i++) {
		uint32_t block;

		out->block_bits[i] = wire_u8(w);
		block = wire_u32(w);
		out->share[i] = wire_u32(w);
		/* -1 is 0xffffffff on the wire; anything else must be small */
		out->block[i] = block == UINT32_MAX ? -1 :
				block <= INT32_MAX ? (int32_t)block : -2;
		if (!assign_entry_valid(out->block_bits[i], out->block[i]))
			return finish(w, FRAME_ERR_FIELD);
	}
	return finish(w, 0);
}

int frame_assign_encode(struct wire_out *w, const struct frame_assign *a)
{
	return a->epoch == 0 ? -EINVAL : assign_put(w, a);
}

int frame_assign_decode(struct wire *w, struct frame_assign *out)
{
	int ret = assign_get(w, out);

	if (ret == 0 && out->epoch == 0)
		return finish(w, FRAME_ERR_FIELD);
	return ret;
}

int frame_join_encode(struct wire_out *w,
		      const uint8_t digest[static FRAME_DIGEST_LEN],
		      const struct frame_assign *claim)
{
	wire_write(w, digest, FRAME_DIGEST_LEN);
	return assign_put(w, claim);
}

int frame_join_decode(struct wire *w, uint8_t digest[static FRAME_DIGEST_LEN],
		      struct frame_assign *claim)
{
	wire_read(w, digest, FRAME_DIGEST_LEN);
	return assign_get(w, claim);
}

int frame_assigned_encode(struct wire_out *w, uint64_t epoch)
{
	if (epoch == 0)
		return -EINVAL;
	wire_put_u64(w, epoch);
	return wire_out_error(w);
}

int frame_assigned_decode(struct wire *w, uint64_t *epoch)
{
	*epoch = wire_u64(w);
	if (wire_error(w) == 0 && *epoch == 0)
		return finish(w, FRAME_ERR_FIELD);
	return finish(w, 0);
}

int frame_leave_decode(struct wire *w)
{
	return finish(w, 0);
}

int frame_report_encode(struct wire_out *w, const char *text)
{
	size_t n = strnlen(text, FRAME_REPORT_MAX + 1);

	if (n == 0 || n > FRAME_REPORT_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (text[i] < 0x20 || text[i] > 0x7e)
			return -EINVAL;
	wire_put_u16(w, (uint16_t)n);
	wire_write(w, text, n);
	return wire_out_error(w);
}

int frame_report_decode(struct wire *w, char text_out[static FRAME_REPORT_MAX + 1])
{
	uint16_t n = wire_u16(w);
	int ret;

	text_out[0] = 0;
	if ((ret = wire_error(w)) < 0)
		return ret;
	if (n == 0 || n > FRAME_REPORT_MAX)
		return finish(w, FRAME_ERR_FIELD);
	if (wire_available(w) != n)
		return finish(w, FRAME_ERR_SIZE);
	wire_read(w, text_out, n);
	for (size_t i = 0; i < n; i++)
		if (text_out[i] < 0x20 || text_out[i] > 0x7e) {
			text_out[0] = 0;
			return finish(w, FRAME_ERR_FIELD);
		}
	text_out[n] = 0;
	return finish(w, 0);
}

int frame_windows_next(struct frame_windows *it, struct change *c)
{
	if (!wire_available(&it->rest))
		return 0;
	return change_decode(&it->rest, it->n_services, c) == 0;
}

/* The errno range of Linux (MAX_ERRNO in the kernel). */
#define ACK_MIN_RESULT (-4095)

/* result 0 or an errno; applied up to a CHANGES' count, and 0 on an error */
static bool ack_valid(int32_t result, uint16_t applied)
{
	return result <= 0 && result >= ACK_MIN_RESULT &&
	       applied <= (result == 0 ? FRAME_MAX_CHANGES : 0);
}

int frame_ack_encode(struct wire_out *w, const struct frame_ack *a)
{
	if (!ack_valid(a->result, a->applied))
		return -EINVAL;
	wire_put_u32(w, a->commit_id);
	wire_put_u32(w, (uint32_t)a->result);
	wire_put_u16(w, a->applied);
	return wire_out_error(w);
}

int frame_ack_decode(struct wire *w, struct frame_ack *out)
{
	uint32_t result;

	memset(out, 0, sizeof(*out));
	out->commit_id = wire_u32(w);
	result = wire_u32(w);
	out->applied = wire_u16(w);
	if (wire_error(w))
		return finish(w, 0);
	/* 0, or -1 .. -4095 in two's complement; converted by hand, as a
	 * uint32_t over INT32_MAX has no portable conversion to int32_t */
	if (result != 0 && result < UINT32_MAX - (uint32_t)-ACK_MIN_RESULT + 1)
		return finish(w, FRAME_ERR_FIELD);
	out->result = result ? -(int32_t)(UINT32_MAX - result) - 1 : 0;
	if (!ack_valid(out->result, out->applied))
		return finish(w, FRAME_ERR_FIELD);
	return finish(w, 0);
}

int frame_ping_encode(struct wire_out *w, uint64_t token)
{
	wire_put_u64(w, token);
	return wire_out_error(w);
}

int frame_ping_decode(struct wire *w, uint64_t *token)
{
	*token = wire_u64(w);
	return finish(w, 0);
}

/* ---- names ------------------------------------------------------------------ */

const char *frame_type_name(uint8_t type)
{
	switch (type) {
	case FRAME_HELLO: return "HELLO";
	case FRAME_WELCOME: return "WELCOME";
	case FRAME_PROOF: return "PROOF";
	case FRAME_CHANGES: return "CHANGES";
	case FRAME_ACK: return "ACK";
	case FRAME_PING: return "PING";
	case FRAME_PONG: return "PONG";
	case FRAME_WINDOWS: return "WINDOWS";
	case FRAME_JOIN: return "JOIN";
	case FRAME_LEARNED: return "LEARNED";
	case FRAME_REPORT: return "REPORT";
	case FRAME_ASSIGN: return "ASSIGN";
	case FRAME_ASSIGNED: return "ASSIGNED";
	case FRAME_LEAVE: return "LEAVE";
	}
	return "?";
}

const char *frame_strerror(int err)
{
	switch (err) {
	case 0: return "ok";
	case FRAME_ERR_MAGIC: return "bad magic";
	case FRAME_ERR_VERSION: return "unknown version";
	case FRAME_ERR_KEY_ID: return "wrong key id";
	case FRAME_ERR_LENGTH: return "payload over the cap";
	case FRAME_ERR_TAG: return "bad tag";
	case FRAME_ERR_SEQ: return "sequence not the next";
	case FRAME_ERR_TIME: return "timestamp out of the fudge";
	case FRAME_ERR_TYPE: return "unexpected type";
	case FRAME_ERR_SIZE: return "payload size does not match its fields";
	case FRAME_ERR_FIELD: return "payload field out of range";
	case FRAME_ERR_PROOF: return "proof does not match the transcript";
	}
	return strerror(err < 0 ? -err : err);
}
