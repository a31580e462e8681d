// SPDX-License-Identifier: MIT
/* libFuzzer harness for the change decoder (changes travel between
 * machines in peer frames): decode a run of changes from untrusted bytes;
 * whatever decodes must encode back to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "change.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size ? size : 1);
	struct wire r;

	if (!copy)
		return 0;
	memcpy(copy, data, size); /* exact size: a read past the end is caught */
	r = wire_init(copy, size);
	while (wire_available(&r) >= CHANGE_WIRE_LEN) {
		const uint8_t *at = r.pos;
		uint8_t again[CHANGE_WIRE_LEN];
		struct wire_out w = wire_out_init(again, sizeof(again));
		struct change c;

		if (change_decode(&r, 256, &c) < 0)
			break;
		change_encode(&w, &c);
		if (wire_out_error(&w) || wire_out_len(&w) != CHANGE_WIRE_LEN ||
		    memcmp(again, at, CHANGE_WIRE_LEN) != 0)
			abort(); /* decode accepted what encode would not write */
	}
	free(copy);
	return 0;
}
