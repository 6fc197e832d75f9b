#!/usr/bin/env bash
# CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER: runs a Windows test executable
# under wine, with the test-only ProcessPrng shim beside it (see
# bcryptprimitives.c). Bounded: WINE_TEST_TIMEOUT seconds (default 600).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
exe="$1"
shift
put_shim_beside "$exe"
exec timeout --kill-after=10 "${WINE_TEST_TIMEOUT:-600}" "$WINE" "$exe" "$@"
