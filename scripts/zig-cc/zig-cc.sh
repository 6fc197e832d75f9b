#!/usr/bin/env bash
# A C compiler for the macOS compile check (issue 17): zig's clang, which
# ships the macOS C headers that `ring`'s build script needs, in place of an
# Apple SDK this Linux machine cannot have. Used only by CI's `cargo check`
# for the apple-darwin targets; nothing built with it is run or shipped.
# Called through the x86_64-macos / aarch64-macos links, whose name is the
# zig target; cc-rs's own target flags are dropped (zig takes -target).
target="$(basename "$0" .sh)"
args=()
for arg in "$@"; do
    case $arg in
        --target=* | -mmacosx-version-min=* | -arch) ;;
        *) args+=("$arg") ;;
    esac
done
exec python3 -m ziglang cc -target "$target" "${args[@]}"
