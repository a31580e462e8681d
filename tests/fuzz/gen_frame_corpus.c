// SPDX-License-Identifier: MIT
/*
 * Writes the seed corpus of fuzz_frame.c: one valid instance of each frame
 * type, both as a whole frame tagged with the harness's key and as a bare
 * payload for its decoder, and one run of receive-order records.
 *   make build/asan/gen_frame_corpus && build/asan/gen_frame_corpus tests/fuzz/corpus/frame
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "frame.h"
#include "fuzz_frame.h"

static int save(const char *dir, const char *name, uint8_t sel,
		const uint8_t *bytes, size_t len)
{
	char path[4096];
	FILE *f;
	int ok;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	f = fopen(path, "wb");
	if (!f)
		return -errno;
	ok = fwrite(&sel, 1, 1, f) == 1 && fwrite(bytes, 1, len, f) == len;
	if (fclose(f) != 0 || !ok)
		return -EIO;
	printf("%s: %zu bytes\n", path, len + 1);
	return 0;
}

/* One payload of each type into w, by frame type. */
static int fill(struct wire_out *w, uint8_t type)
{
	static const uint8_t nonce[FRAME_NONCE_LEN] = "a client's or server's nonce...";
	static const uint8_t digest[FRAME_DIGEST_LEN] = "a digest of thirty-two bytes...";
	struct change c[3] = {
		{ .kind = CHANGE_BIND, .family = AF_INET, .src_len = 32, .service = 1,
		  .ms = 5000, .addr = { 203, 0, 113, 7 }, .src = { 198, 51, 100, 1 } },
		{ .kind = CHANGE_OPEN, .family = AF_INET6, .service = 0, .ms = 7000,
		  .addr = { 0x20, 0x01, 0x0d, 0xb8, [15] = 0x42 } },
		{ .kind = CHANGE_OPEN_SCOPED, .family = AF_INET, .src_len = 24,
		  .service = 15, .ms = 691200000, .addr = { 203, 0, 113, 9 },
		  .src = { 198, 51, 100 } },
	};

	switch (type) {
	case FRAME_HELLO: return frame_hello_encode(w, nonce, "dns", "dns-1", "gw_a");
	case FRAME_WELCOME: return frame_welcome_encode(w, nonce, "gateway", "gw_a");
	case FRAME_PROOF: return frame_proof_encode(w, digest);
	case FRAME_CHANGES: return frame_changes_encode(w, 42, digest, c, 3);
	case FRAME_ACK:
		return frame_ack_encode(w, &(struct frame_ack){ 42, -116, 0 });
	case FRAME_PING: return frame_ping_encode(w, 0x0123456789abcdefull);
	case FRAME_PONG: return frame_ping_encode(w, 0xfedcba9876543210ull);
	case FRAME_WINDOWS: return frame_windows_encode(w, digest, true, c + 1, 2);
	case FRAME_LEARNED:
		c[0].kind = CHANGE_LEARNED;
		return frame_learned_encode(w, digest, c, 1);
	case FRAME_JOIN:
		return frame_join_encode(w, digest, &(struct frame_assign){ .epoch = 7, .n = 2,
			.block_bits = { 1, 2 }, .block = { 1, -1 }, .share = { 4, 0 } });
	case FRAME_ASSIGN:
		return frame_assign_encode(w, &(struct frame_assign){ .epoch = 9, .n = 1,
			.block_bits = { 3 }, .block = { 5 }, .share = { 8 } });
	case FRAME_ASSIGNED: return frame_assigned_encode(w, 9);
	case FRAME_LEAVE: return 0;
	case FRAME_REPORT: return frame_report_encode(w, "answers 12 servfail 0 open 3");
	}
	return -EINVAL;
}

int main(int argc, char **argv)
{
	static const struct {
		uint8_t type, sel;
		const char *name;
	} seeds[] = {
		{ FRAME_HELLO, FUZZ_FRAME_HELLO, "hello" },
		{ FRAME_WELCOME, FUZZ_FRAME_WELCOME, "welcome" },
		{ FRAME_PROOF, FUZZ_FRAME_PROOF, "proof" },
		{ FRAME_CHANGES, FUZZ_FRAME_CHANGES, "changes" },
		{ FRAME_ACK, FUZZ_FRAME_ACK, "ack" },
		{ FRAME_PING, FUZZ_FRAME_PING, "ping" },
		{ FRAME_PONG, FUZZ_FRAME_PING, "pong" },
		{ FRAME_WINDOWS, FUZZ_FRAME_WINDOWS, "windows" },
		{ FRAME_LEARNED, FUZZ_FRAME_LEARNED, "learned" },
		{ FRAME_JOIN, FUZZ_FRAME_JOIN, "join" },
		{ FRAME_REPORT, FUZZ_FRAME_REPORT, "report" },
		{ FRAME_ASSIGN, FUZZ_FRAME_ASSIGN, "assign" },
		{ FRAME_ASSIGNED, FUZZ_FRAME_ASSIGNED, "assigned" },
		{ FRAME_LEAVE, FUZZ_FRAME_LEAVE, "leave" },
	};
	/* seq 0 1 2, 2 repeated, 1 reordered, 5 after a gap, 3 31 s early,
	 * 3 30 s late (accepted) */
	static const uint64_t rx[][2] = {
		{ 0, FUZZ_FRAME_NOW }, { 1, FUZZ_FRAME_NOW }, { 2, FUZZ_FRAME_NOW },
		{ 2, FUZZ_FRAME_NOW }, { 1, FUZZ_FRAME_NOW }, { 5, FUZZ_FRAME_NOW },
		{ 3, FUZZ_FRAME_NOW + 31000 }, { 3, FUZZ_FRAME_NOW - 30000 },
	};
	const uint8_t *key = (const uint8_t *)FUZZ_FRAME_KEY;
	uint8_t buf[1024], recs[sizeof(rx) / sizeof(rx[0]) * 16];
	struct wire_out w;
	char name[64];

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		size_t start;

		w = wire_out_init(buf, sizeof(buf));
		if (fill(&w, seeds[i].type) < 0 ||
		    save(argv[1], seeds[i].name, seeds[i].sel, buf, wire_out_len(&w)) < 0)
			return 1;
		w = wire_out_init(buf, sizeof(buf));
		start = frame_begin(&w, seeds[i].type, 258, 0, FUZZ_FRAME_NOW);
		snprintf(name, sizeof(name), "frame-%s", seeds[i].name);
		if (fill(&w, seeds[i].type) < 0 || frame_end(&w, start, key) < 0 ||
		    save(argv[1], name, FUZZ_FRAME_WHOLE, buf, wire_out_len(&w)) < 0)
			return 1;
	}
	w = wire_out_init(recs, sizeof(recs));
	for (size_t i = 0; i < sizeof(rx) / sizeof(rx[0]); i++) {
		wire_put_u64(&w, rx[i][0]);
		wire_put_u64(&w, rx[i][1]);
	}
	if (wire_out_error(&w) || save(argv[1], "rx", FUZZ_FRAME_RX, recs, sizeof(recs)) < 0)
		return 1;
	return 0;
}
