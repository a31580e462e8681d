/* SPDX-License-Identifier: MIT */
/*
 * What fuzz_frame.c and gen_frame_corpus.c agree on: the input's layout
 * (a selector byte, then the bytes for that decoder) and the key that tags
 * the seed frames, so that whole frames reach the payload decoders.
 */
#ifndef CHOREO_FUZZ_FRAME_H
#define CHOREO_FUZZ_FRAME_H

enum fuzz_frame_sel {
	FUZZ_FRAME_WHOLE,    /* a whole frame: header, tag, order, payload */
	FUZZ_FRAME_HELLO,    /* the rest is a payload of this type */
	FUZZ_FRAME_WELCOME,
	FUZZ_FRAME_PROOF,
	FUZZ_FRAME_CHANGES,
	FUZZ_FRAME_ACK,
	FUZZ_FRAME_PING,     /* PING and PONG */
	FUZZ_FRAME_RX,       /* 16-byte (u64 seq, u64 ts) records for frame_rx_accept */
	FUZZ_FRAME_WINDOWS,
	FUZZ_FRAME_LEARNED,
	FUZZ_FRAME_JOIN,
	FUZZ_FRAME_REPORT,
	FUZZ_FRAME_ASSIGN,
	FUZZ_FRAME_ASSIGNED,
	FUZZ_FRAME_LEAVE,
	FUZZ_FRAME_N_SEL,
};

#define FUZZ_FRAME_KEY      "choreo fuzz key: 32 bytes long!!"
#define FUZZ_FRAME_SERVICES 16   /* n_services for CHANGES */
#define FUZZ_FRAME_NOW      1700000000000ull

#endif
