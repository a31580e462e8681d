/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the peer protocol's unit tests (test_frame*.c), included after
 * <cmocka.h> and "cmocka_analyzer.h": a receiver that makes every check of
 * docs/protocol.md in its order, and a few values to build frames from.
 */
#ifndef CHOREO_FRAME_UTIL_H
#define CHOREO_FRAME_UTIL_H

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "frame.h"

#define NOW 1700000000000ull /* the receiver's clock in these tests */

static inline void unhex(const char *hex, uint8_t *out, size_t n)
{
	assert_int_equal(strlen(hex), 2 * n);
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

static inline struct psk make_psk(uint16_t id, const char *secret)
{
	struct psk k = { .id = id, .len = strlen(secret) };

	assert_true(k.len >= PSK_MIN_LEN && k.len <= PSK_MAX_LEN);
	memcpy(k.bytes, secret, k.len);
	return k;
}

static inline struct change make_change(uint8_t kind, int family, uint16_t service)
{
	struct change c = { .kind = kind, .family = (uint8_t)family,
			    .service = service, .ms = 7000 };

	c.addr[0] = family == AF_INET ? 203 : 0x20;
	c.addr[3] = 7;
	if (kind == CHANGE_BIND) {
		c.src_len = family == AF_INET ? 32 : 128;
		c.src[0] = family == AF_INET ? 198 : 0x20;
		c.src[3] = 1;
	} else if (kind == CHANGE_OPEN_SCOPED) {
		c.src_len = 24;
		c.src[0] = 198;
		c.src[1] = 51;
	}
	return c;
}

/*
 * What a receiver does with a frame (protocol.md, "Receiving a frame"):
 * each check in order, with the connection's key id, cap, key and state;
 * on success *payload spans the payload. Returns the first check's error.
 */
static inline int receive(const uint8_t *buf, size_t len, uint32_t cap,
			  uint16_t key_id, const uint8_t key[FRAME_KEY_LEN],
			  struct frame_rx *rx, uint8_t want_type,
			  struct wire *payload)
{
	struct frame_header h;
	int ret;

	assert_true(len >= FRAME_HEADER_LEN);
	if ((ret = frame_header_decode(buf, cap, &h)) < 0)
		return ret;
	if (h.key_id != key_id)
		return FRAME_ERR_KEY_ID;
	assert_int_equal(len, FRAME_HEADER_LEN + h.len + FRAME_TAG_LEN);
	ret = frame_verify_tag(buf, FRAME_HEADER_LEN + h.len,
			       buf + FRAME_HEADER_LEN + h.len, key);
	if (ret < 0)
		return ret;
	if ((ret = frame_rx_accept(rx, &h, NOW)) < 0)
		return ret;
	if (h.type != want_type)
		return FRAME_ERR_TYPE;
	*payload = wire_init(buf + FRAME_HEADER_LEN, h.len);
	return 0;
}

#endif
