# Sourced by the wine scripts: finds wine, builds the test-only shim DLL,
# and sets the wine prefix (under the target directory, not $HOME).
#   WINE, WINESERVER   the programs
#   SHIM               the built bcryptprimitives.dll
#   WINEPREFIX         exported

wine_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$wine_dir/../.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$repo_root/target}"

# Debian's wine64 package installs /usr/lib/wine/wine64 and no `wine` on
# PATH unless the `wine` package is installed too.
WINE="$(command -v wine64 || command -v wine || echo /usr/lib/wine/wine64)"
WINESERVER="$(command -v wineserver || echo /usr/lib/wine/wineserver)"
if [[ ! -x $WINE ]]; then
    echo "wine not found (apt-get install wine64)" >&2
    exit 127
fi

export WINEPREFIX="${WINEPREFIX:-$target_dir/wine-prefix}"
export WINEDEBUG="${WINEDEBUG:--all}"
# No "install Mono/Gecko?" dialogs when the prefix is created.
export WINEDLLOVERRIDES="${WINEDLLOVERRIDES:-mscoree,mshtml=}"

SHIM="$target_dir/wine-shim/bcryptprimitives.dll"
if [[ ! -f $SHIM || $wine_dir/bcryptprimitives.c -nt $SHIM || $wine_dir/bcryptprimitives.def -nt $SHIM ]]; then
    mkdir -p "$(dirname "$SHIM")"
    x86_64-w64-mingw32-gcc -O2 -shared -o "$SHIM.tmp" \
        "$wine_dir/bcryptprimitives.c" "$wine_dir/bcryptprimitives.def" -ladvapi32
    mv "$SHIM.tmp" "$SHIM"
fi

# put_shim_beside EXE: the shim next to EXE, where Windows looks first.
put_shim_beside() {
    local dir
    dir="$(dirname "$1")"
    if ! cmp -s "$SHIM" "$dir/bcryptprimitives.dll"; then
        cp "$SHIM" "$dir/bcryptprimitives.dll"
    fi
}
