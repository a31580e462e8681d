#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The gateway tests again with the fallback of kernels before 6.12 forced
# ([daemon] element_refresh = readd): every window refreshed by add, delete
# and add in one transaction. On this machine's kernel both paths run.
exec env GWLAB_REFRESH=readd "$(dirname "$0")/test_gateway.sh" "$@"
