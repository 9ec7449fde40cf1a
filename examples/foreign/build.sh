#!/usr/bin/env bash
# Builds the example tasks written in C, Zig and AssemblyScript to wasm32-wasi (WASI
# preview1 commands) into wasm/, and records the sha256 of every source and module in
# MANIFEST (checked by `cargo test`, which needs no toolchain but Rust).
#
#   bash examples/foreign/build.sh           # install the toolchains if needed, rebuild, rewrite MANIFEST
#   bash examples/foreign/build.sh --check   # rebuild into a temporary folder; fail unless every
#                                            # module is byte-identical to the committed one
#
# The toolchains come from the package registries, pinned, into .toolchains/ and
# assemblyscript/node_modules/ (both ignored by git):
# - zig (PyPI package `ziglang`), which is also the C compiler: `zig cc` is clang with
#   wasi-libc built in, so one pinned package builds the C and the Zig examples;
# - AssemblyScript and its WASI shim (npm, versions pinned by assemblyscript/package-lock.json).
set -euo pipefail
cd "$(dirname "$0")"

ZIG_VERSION=0.17.0
CHECK=false
case "${1:-}" in
"") ;;
--check) CHECK=true ;;
*)
    echo "usage: $0 [--check]" >&2
    exit 2
    ;;
esac

TOOLS=$PWD/.toolchains
ZIG=$TOOLS/python/ziglang/zig
# zig's caches stay inside .toolchains/, not in the user's home.
export ZIG_GLOBAL_CACHE_DIR=$TOOLS/zig-cache ZIG_LOCAL_CACHE_DIR=$TOOLS/zig-cache

if [ ! -x "$ZIG" ] || [ "$("$ZIG" version)" != "$ZIG_VERSION" ]; then
    echo "== installing zig $ZIG_VERSION from PyPI into $TOOLS/python" >&2
    rm -rf "$TOOLS/python"
    python3 -m pip install --quiet --disable-pip-version-check --no-deps \
        --target "$TOOLS/python" "ziglang==$ZIG_VERSION"
fi
if [ ! -x assemblyscript/node_modules/.bin/asc ]; then
    echo "== installing AssemblyScript from npm (assemblyscript/package-lock.json)" >&2
    (cd assemblyscript && npm ci --silent --no-audit --no-fund)
fi

OUT=$PWD/wasm
if $CHECK; then
    OUT=$(mktemp -d)
    trap 'rm -rf "$OUT"' EXIT
fi

# C: wasi-libc, -O2, no fused multiply-add (every float operation rounds as in Rust), no
# debug information or names (so the module does not depend on where it was built).
c() {
    "$ZIG" cc --target=wasm32-wasi -O2 -ffp-contract=off -s -o "$OUT/$2.wasm" "c/$1.c"
}
echo "== C (zig $ZIG_VERSION cc)" >&2
c wordcount wordcount-c
c mandelbrot mandelbrot-c

# Zig: ReleaseFast (no safety checks, as a Rust release build), no debug information.
echo "== Zig $ZIG_VERSION" >&2
"$ZIG" build-exe -target wasm32-wasi -O ReleaseFast -fstrip -femit-bin="$OUT/primes-zig.wasm" zig/primes.zig
rm -f "$OUT/primes-zig.wasm.o"

# AssemblyScript: the WASI shim's configuration (WASI imports, `_start`), -O3.
echo "== AssemblyScript $(assemblyscript/node_modules/.bin/asc --version)" >&2
(cd assemblyscript && node_modules/.bin/asc sha256-chain.ts \
    --config node_modules/@assemblyscript/wasi-shim/asconfig.json -O3 \
    --outFile "$OUT/sha256-chain-as.wasm")

SOURCES=(build.sh c/*.h c/*.c zig/*.zig assemblyscript/*.ts assemblyscript/package.json assemblyscript/package-lock.json)
MODULES=(wasm/wordcount-c.wasm wasm/mandelbrot-c.wasm wasm/primes-zig.wasm wasm/sha256-chain-as.wasm)

if $CHECK; then
    status=0
    for m in "${MODULES[@]}"; do
        if cmp -s "$m" "$OUT/$(basename "$m")"; then
            echo "ok: $m rebuilt byte for byte" >&2
        else
            echo "DRIFT: $m differs from a rebuild of its source; run bash examples/foreign/build.sh" >&2
            status=1
        fi
    done
    if ! sha256sum --quiet -c MANIFEST >&2; then
        echo "DRIFT: MANIFEST is out of date; run bash examples/foreign/build.sh" >&2
        status=1
    fi
    exit $status
fi
sha256sum "${SOURCES[@]}" "${MODULES[@]}" >MANIFEST
echo "== wrote ${MODULES[*]} and MANIFEST" >&2
