/* SPDX-License-Identifier: MIT */
/*
 * A change to the gateway's sets: what one rotated answer needs before it
 * may leave. A plain value, made by the rotor, applied by a gateway (local
 * netlink, or a remote one after travelling in a frame).
 *
 * Its encoding (change_encode/change_decode) is explicit, field by field in
 * network order, never a memcpy of the struct: CHANGE_WIRE_LEN bytes,
 *
 *   u8  kind        1 bind, 2 open, 3 open_scoped, 4 learned, 5 quarantine
 *   u8  family      4 or 6 (not the host's AF_ numbers)
 *   u8  src_len     prefix length of src: 32/128 for bind and learned, 0 for open
 *   u8  reserved    0
 *   u16 service     index of the [service] section in the configuration
 *   u32 ms          milliseconds the element stays, counted from the commit
 *   16  addr        the pool address; IPv4 in the first 4 bytes, rest 0
 *   16  src         asker or client subnet (host bits 0); all 0 for open
 *
 * `service` means something only together with a digest of the
 * configuration it indexes: whoever carries changes between processes
 * carries that digest too and refuses a mismatch.
 */
#ifndef CHOREO_CHANGE_H
#define CHOREO_CHANGE_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

enum change_kind {
	CHANGE_BIND = 1,    /* (src . addr) may reach the server */
	CHANGE_OPEN,        /* addr is open to any source */
	CHANGE_OPEN_SCOPED, /* (src/src_len . addr) is open: an ECS client subnet */
	CHANGE_LEARNED,     /* (src . addr) is bound: a binding another gateway's
			       kernel learned, relayed by the controller */
	CHANGE_QUARANTINE,  /* src/src_len reaches only the honeypot: pushed by
			       the controller to every gateway; addr all 0 */
};

struct change {
	uint8_t kind;      /* enum change_kind */
	uint8_t family;    /* AF_INET or AF_INET6: of addr and of src */
	uint8_t src_len;   /* bits of src that count (32/128 for CHANGE_BIND) */
	uint16_t service;  /* index in config->services */
	uint32_t ms;       /* lifetime from the commit, milliseconds */
	uint8_t addr[16];  /* the pool address, network order */
	uint8_t src[16];   /* asker address or masked client subnet; 0 for open */
};

#define CHANGE_WIRE_LEN 42
#define CHANGE_MAX_MS   (8u * 24 * 3600 * 1000) /* longer than any timeout choreo sets */

/* Append one change; the writer's sticky error says whether it fit. */
void change_encode(struct wire_out *w, const struct change *c);

/*
 * Read one change from untrusted bytes and check it: a known kind and
 * family, src_len in range (full length for a bind, 0 for open), no bits
 * set past the address or the prefix, reserved 0, ms in 1..CHANGE_MAX_MS,
 * service < n_services. Returns 0, or -EBADMSG (too short) / -EINVAL (a
 * field out of range); the cursor's error is set too.
 */
int change_decode(struct wire *w, size_t n_services, struct change *out);

/* Name of a kind, for logs: "bind", "open", "open_scoped" or "?". */
const char *change_kind_name(uint8_t kind);

#endif
