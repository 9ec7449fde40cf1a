#!/usr/bin/env bash
# Builds the meter's tests for aarch64 and runs them under qemu-user. `tests/cross_arch.rs`
# compares a report of outcomes, NaN bits, fuel counts and memory hashes with the
# committed golden file; passing here and natively on x86-64 means both architectures give
# identical results. `nan.rs`, `semantics.rs`, `loops.rs` and `interrupt.rs` (the backstop's
# slices) run too, and the runtime's `tests/meter.rs`
# (every example under both meterings against its own golden file).
#
# Needs: rustup target aarch64-unknown-linux-gnu, and Debian's gcc-aarch64-linux-gnu,
# libc6-dev-arm64-cross and qemu-user. A cold cross build of wasmtime takes ~5 minutes on
# 2 cores; the tests take a few minutes under emulation.
#
# Usage: runtime/meter/scripts/cross-arch.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/../../.."

rustup target add aarch64-unknown-linux-gnu >/dev/null
for tool in aarch64-linux-gnu-gcc qemu-aarch64; do
    command -v "$tool" >/dev/null || {
        echo "missing $tool: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user" >&2
        exit 2
    }
done

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

cargo test -p smartnodes-meter --target aarch64-unknown-linux-gnu \
    --test cross_arch --test nan --test semantics --test loops --test interrupt "$@"
# The runtime under both meterings: every example and some fixtures against
# runtime/meter/tests/fixtures/runtime_examples.golden.
cargo test -p smartnodes-runtime --target aarch64-unknown-linux-gnu --test meter "$@"
