// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the peer protocol's decoders (src/frame.c): the
 * first byte selects frame_header_decode with the whole receive path, one
 * payload decoder, or the sequence/timestamp check (fuzz_frame.h). Every
 * payload that decodes must encode back to the same bytes: a decoder that
 * accepts what the encoder would not write is a bug.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "fuzz_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *key = (const uint8_t *)FUZZ_FRAME_KEY;

/* Room to encode any payload again (the largest is a CHANGES). */
static uint8_t again[FRAME_MAX_PAYLOAD];
static struct change changes[FRAME_MAX_CHANGES];

static void same(const uint8_t *p, size_t len, const struct wire_out *w, int ret)
{
	if (ret != 0 || wire_out_len(w) != len || memcmp(again, p, len) != 0)
		abort(); /* decoded, but does not encode back to itself */
}

/* Decode a payload of this type; what decodes must encode back. */
static void payload(uint8_t type, const uint8_t *p, size_t len)
{
	struct wire r = wire_init(p, len);
	struct wire_out w = wire_out_init(again, sizeof(again));
	struct frame_welcome welcome;
	struct frame_hello hello;
	struct frame_changes ch, head;
	struct frame_windows win;
	struct frame_ack ack;
	uint8_t digest[FRAME_DIGEST_LEN];
	uint64_t token;
	char text[FRAME_REPORT_MAX + 1];
	static struct frame_assign asg; /* 2.3 KB: not on the stack */
	uint64_t epoch;
	size_t n = 0;
	int peek, ret;

	switch (type) {
	case FRAME_HELLO:
		if (frame_hello_decode(&r, &hello) == 0)
			same(p, len, &w, frame_hello_encode(&w, hello.nonce, hello.role,
							    hello.name, hello.server));
		break;
	case FRAME_WELCOME:
		if (frame_welcome_decode(&r, &welcome) == 0)
			same(p, len, &w, frame_welcome_encode(&w, welcome.nonce,
							      welcome.role, welcome.name));
		break;
	case FRAME_PROOF:
		if (frame_proof_decode(&r, digest) == 0)
			same(p, len, &w, frame_proof_encode(&w, digest));
		break;
	case FRAME_CHANGES:
		/* the head alone: refused for the same reason, or the same head */
		peek = frame_changes_peek(&r, &head);
		if (wire_offset(&r) != 0)
			abort();
		ret = frame_changes_decode(&r, FUZZ_FRAME_SERVICES, &ch);
		if (peek < 0 ? ret != peek
			     : head.commit_id != ch.commit_id || head.count != ch.count ||
			       memcmp(head.digest, ch.digest, sizeof(head.digest)) != 0)
			abort();
		if (ret < 0)
			break;
		while (n < FRAME_MAX_CHANGES && frame_changes_next(&ch, &changes[n]) == 1)
			n++;
		if (n != ch.count || frame_changes_next(&ch, &changes[0]) != 0)
			abort(); /* the iterator gives exactly count changes */
		same(p, len, &w, frame_changes_encode(&w, ch.commit_id, ch.digest,
						      changes, n));
		break;
	case FRAME_WINDOWS:
		if (frame_windows_decode(&r, FUZZ_FRAME_SERVICES, &win) < 0)
			break;
		while (n < FRAME_MAX_CHANGES && frame_windows_next(&win, &changes[n]) == 1) {
			if (changes[n].kind != CHANGE_OPEN && changes[n].kind != CHANGE_OPEN_SCOPED)
				abort(); /* only windows pass */
			n++;
		}
		if (n != win.count || frame_windows_next(&win, &changes[0]) != 0)
			abort();
		same(p, len, &w, frame_windows_encode(&w, win.digest, win.more, changes, n));
		break;
	case FRAME_LEARNED:
		if (frame_learned_decode(&r, FUZZ_FRAME_SERVICES, &win) < 0)
			break;
		while (n < FRAME_MAX_CHANGES && frame_windows_next(&win, &changes[n]) == 1) {
			if (changes[n].kind != CHANGE_LEARNED)
				abort(); /* only learned bindings pass */
			n++;
		}
		if (n == 0 || n != win.count || win.more || frame_windows_next(&win, &changes[0]) != 0)
			abort();
		same(p, len, &w, frame_learned_encode(&w, win.digest, changes, n));
		break;
	case FRAME_JOIN:
		if (frame_join_decode(&r, digest, &asg) == 0)
			same(p, len, &w, frame_join_encode(&w, digest, &asg));
		break;
	case FRAME_ASSIGN:
		if (frame_assign_decode(&r, &asg) == 0)
			same(p, len, &w, frame_assign_encode(&w, &asg));
		break;
	case FRAME_ASSIGNED:
		if (frame_assigned_decode(&r, &epoch) == 0)
			same(p, len, &w, frame_assigned_encode(&w, epoch));
		break;
	case FRAME_LEAVE:
		if (frame_leave_decode(&r) == 0 && len != 0)
			abort();
		break;
	case FRAME_REPORT:
		if (frame_report_decode(&r, text) == 0)
			same(p, len, &w, frame_report_encode(&w, text));
		break;
	case FRAME_ACK:
		if (frame_ack_decode(&r, &ack) == 0)
			same(p, len, &w, frame_ack_encode(&w, &ack));
		break;
	case FRAME_PING:
	case FRAME_PONG:
		if (frame_ping_decode(&r, &token) == 0)
			same(p, len, &w, frame_ping_encode(&w, token));
		break;
	default:
		return; /* a type protocol.md does not know: step 5 refuses it */
	}
	if (wire_error(&r) == 0 && wire_available(&r) != 0)
		abort(); /* accepted with bytes left over */
}

/* The receive path of protocol.md, in its order. */
static void whole(const uint8_t *p, size_t len)
{
	struct frame_rx rx = { 0 };
	struct frame_header h;

	if (len < FRAME_HEADER_LEN ||
	    frame_header_decode(p, FRAME_MAX_PAYLOAD, &h) < 0)
		return;
	if (h.len > FRAME_MAX_PAYLOAD)
		abort();
	if (len != FRAME_HEADER_LEN + (size_t)h.len + FRAME_TAG_LEN ||
	    frame_verify_tag(p, FRAME_HEADER_LEN + h.len,
			     p + FRAME_HEADER_LEN + h.len, key) < 0 ||
	    frame_rx_accept(&rx, &h, h.ts_ms) < 0)
		return;
	payload(h.type, p + FRAME_HEADER_LEN, h.len);
}

/* frame_rx_accept accepts exactly the next sequence number within the
 * fudge, and a refusal leaves no trace. */
static void order(const uint8_t *p, size_t len)
{
	struct frame_rx rx = { 0 };

	for (; len >= 16; p += 16, len -= 16) {
		struct wire r = wire_init(p, 16);
		struct frame_header h = { .seq = wire_u64(&r), .ts_ms = wire_u64(&r) };
		struct frame_rx before = rx;
		uint64_t off = h.ts_ms > FUZZ_FRAME_NOW ? h.ts_ms - FUZZ_FRAME_NOW
							: FUZZ_FRAME_NOW - h.ts_ms;
		bool next = before.any ? before.last_seq != UINT64_MAX &&
					 h.seq == before.last_seq + 1
				       : h.seq == 0;
		int ret = frame_rx_accept(&rx, &h, FUZZ_FRAME_NOW);

		if ((ret == 0) != (next && off <= FRAME_FUDGE_MS))
			abort();
		if (ret == 0 ? !rx.any || rx.last_seq != h.seq
			     : memcmp(&before, &rx, sizeof(rx)) != 0)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t types[] = {
		[FUZZ_FRAME_HELLO] = FRAME_HELLO, [FUZZ_FRAME_WELCOME] = FRAME_WELCOME,
		[FUZZ_FRAME_PROOF] = FRAME_PROOF, [FUZZ_FRAME_CHANGES] = FRAME_CHANGES,
		[FUZZ_FRAME_ACK] = FRAME_ACK, [FUZZ_FRAME_PING] = FRAME_PING,
		[FUZZ_FRAME_WINDOWS] = FRAME_WINDOWS, [FUZZ_FRAME_LEARNED] = FRAME_LEARNED,
		[FUZZ_FRAME_JOIN] = FRAME_JOIN, [FUZZ_FRAME_REPORT] = FRAME_REPORT,
		[FUZZ_FRAME_ASSIGN] = FRAME_ASSIGN, [FUZZ_FRAME_ASSIGNED] = FRAME_ASSIGNED,
		[FUZZ_FRAME_LEAVE] = FRAME_LEAVE,
	};
	uint8_t *copy;
	size_t len;

	if (size < 1)
		return 0;
	/* exact size: a read past the end is caught */
	len = size - 1;
	copy = malloc(len ? len : 1);
	if (!copy)
		return 0;
	memcpy(copy, data + 1, len);
	switch (data[0] % FUZZ_FRAME_N_SEL) {
	case FUZZ_FRAME_WHOLE: whole(copy, len); break;
	case FUZZ_FRAME_RX: order(copy, len); break;
	default: payload(types[data[0] % FUZZ_FRAME_N_SEL], copy, len); break;
	}
	free(copy);
	return 0;
}
