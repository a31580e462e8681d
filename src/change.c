// SPDX-License-Identifier: MIT
#include "change.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "addr.h"

void change_encode(struct wire_out *w, const struct change *c)
{
	uint8_t zero[16] = { 0 };
	size_t alen = addr_family_size(c->family);

	wire_put_u8(w, c->kind);
	wire_put_u8(w, c->family == AF_INET6 ? 6 : 4);
	wire_put_u8(w, c->src_len);
	wire_put_u8(w, 0);
	wire_put_u16(w, c->service);
	wire_put_u32(w, c->ms);
	/* only the family's bytes: whatever lies past them never travels */
	wire_write(w, c->addr, alen);
	wire_write(w, zero, 16 - alen);
	wire_write(w, c->src, alen);
	wire_write(w, zero, 16 - alen);
}

/* No bit set at or past bit `from` of a 16-byte address. */
static int zero_from(const uint8_t a[16], unsigned from)
{
	for (unsigned bit = from; bit < 128; bit++)
		if (a[bit / 8] & (0x80 >> (bit % 8)))
			return -EINVAL;
	return 0;
}

int change_decode(struct wire *w, size_t n_services, struct change *out)
{
	unsigned bits;
	uint8_t family, reserved;
	int ret;

	memset(out, 0, sizeof(*out));
	out->kind = wire_u8(w);
	family = wire_u8(w);
	out->src_len = wire_u8(w);
	reserved = wire_u8(w);
	out->service = wire_u16(w);
	out->ms = wire_u32(w);
	wire_read(w, out->addr, 16);
	wire_read(w, out->src, 16);
	if ((ret = wire_error(w)) < 0)
		return ret;

	if (family == 4)
		out->family = AF_INET;
	else if (family == 6)
		out->family = AF_INET6;
	bits = family == 4 ? 32 : 128;
	ret = -EINVAL;
	if (!out->family || reserved || out->service >= n_services ||
	    out->ms == 0 || out->ms > CHANGE_MAX_MS || zero_from(out->addr, bits))
		goto bad;
	switch (out->kind) {
	case CHANGE_BIND:
	case CHANGE_LEARNED:
		if (out->src_len != bits || zero_from(out->src, bits))
			goto bad;
		break;
	case CHANGE_OPEN:
		if (out->src_len != 0 || zero_from(out->src, 0))
			goto bad;
		break;
	case CHANGE_OPEN_SCOPED:
		if (out->src_len == 0 || out->src_len > bits ||
		    zero_from(out->src, out->src_len))
			goto bad;
		break;
	case CHANGE_QUARANTINE:
		/* a source prefix, no pool address */
		if (out->src_len == 0 || out->src_len > bits ||
		    zero_from(out->src, out->src_len) || zero_from(out->addr, 0))
			goto bad;
		break;
	default:
		goto bad;
	}
	return 0;
bad:
	wire_fail(w, ret);
	return ret;
}

const char *change_kind_name(uint8_t kind)
{
	switch (kind) {
	case CHANGE_BIND: return "bind";
	case CHANGE_OPEN: return "open";
	case CHANGE_OPEN_SCOPED: return "open_scoped";
	case CHANGE_LEARNED: return "learned";
	case CHANGE_QUARANTINE: return "quarantine";
	}
	return "?";
}
