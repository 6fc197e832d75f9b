#!/usr/bin/env bash
# CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER: runs a Windows test executable
# under wine, with the test-only ProcessPrng shim beside it (see
# bcryptprimitives.c). Bounded: WINE_TEST_TIMEOUT seconds (default 600).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
exe="$1"
shift
put_shim_beside "$exe"
# The programs the client library's tests start (MSGLOG_PREBUILT) need it too;
# on a clean checkout nothing has put it there before these tests run.
if [[ -n ${MSGLOG_PREBUILT:-} ]]; then
    put_shim_beside "$MSGLOG_PREBUILT/msglog-server.exe"
    put_shim_beside "$MSGLOG_PREBUILT/examples/deliver.exe"
fi
exec timeout --kill-after=10 "${WINE_TEST_TIMEOUT:-600}" "$WINE" "$exe" "$@"
