// SPDX-License-Identifier: MIT
/* libFuzzer harness: any bytes as a configuration file. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_errors errs = { 0 };
	struct config *cfg = NULL;
	int ret = config_parse("f.conf", (const char *)data, size, &cfg, &errs);
	/* the contract: a config and no errors, or errors and no config */
	bool ok = ret == 0 ? cfg && !errs.n :
		  ret == -EINVAL ? !cfg && errs.n :
		  ret == -ENOMEM && !cfg;

	if (!ok)
		__builtin_trap();
	for (size_t i = 0; i < errs.n; i++)
		if (strncmp(errs.msg[i], "f.conf:", 7) != 0)
			__builtin_trap();
	config_free(cfg);
	config_errors_free(&errs);
	return 0;
}
