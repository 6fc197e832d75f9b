#!/usr/bin/env bash
# The crypto provider choice of issue 13 (README.md, "TLS"): the clean build
# time of rustls with ring and with aws-lc-rs (release and debug, each in a
# target directory of its own), then each one's handshakes/s and bulk
# throughput, three runs alternating. Prints the load average with each build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/tls-provider-bench"
TARGET=${TLS_PROVIDER_TARGET:-/tmp/tls-provider-bench}
cargo fetch -q
for provider in ring aws; do
    for profile in release debug; do
        dir=$TARGET/$provider-$profile
        rm -rf "$dir"
        flag=(); [[ $profile == release ]] && flag=(--release)
        start=$(date +%s.%N)
        CARGO_TARGET_DIR=$dir cargo build -q "${flag[@]}" --features "$provider"
        end=$(date +%s.%N)
        echo "$provider: clean $profile build $(python3 -c "print(round($end - $start, 1))") s (load $(cut -d' ' -f1-3 /proc/loadavg))"
    done
done
for run in 1 2 3; do
    for provider in ring aws; do
        echo "$provider (run $run): $("$TARGET/$provider-release/release/tls-provider-bench")"
    done
done
