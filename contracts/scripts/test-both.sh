#!/usr/bin/env bash
# Run the smartnodes-contracts test suite twice: on the embedded EVM, then against a real
# JSON-RPC node (anvil, installed from npm), which this script starts and stops itself.
# Also checks that a fresh compile reproduces the committed artifacts byte for byte, and
# runs the node's epoch tests (host/tests/epochs.rs) against the same anvil.
#
#   bash contracts/scripts/test-both.sh            (from anywhere)
#
# Fails, never skips, when node, npm or anvil is missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

command -v node >/dev/null || { echo "test-both: node is required" >&2; exit 1; }
command -v npm >/dev/null || { echo "test-both: npm is required" >&2; exit 1; }
if [ ! -d node_modules ] || [ "${CI:-}" = "true" ]; then
    echo "== npm ci (contracts/)"
    npm ci --no-audit --no-fund
fi

echo "== artifacts: fresh compile must match the committed ones"
node scripts/compile.js --check

case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) platform=linux-amd64 ;;
    Linux-aarch64 | Linux-arm64) platform=linux-arm64 ;;
    Darwin-arm64) platform=darwin-arm64 ;;
    Darwin-x86_64) platform=darwin-amd64 ;;
    *) echo "test-both: no anvil package for $(uname -s)-$(uname -m)" >&2; exit 1 ;;
esac
anvil="$here/node_modules/@foundry-rs/anvil-$platform/bin/anvil"
[ -x "$anvil" ] || { echo "test-both: anvil missing at $anvil (npm ci failed?)" >&2; exit 1; }
"$anvil" --version | head -1

echo "== cargo test: embedded EVM"
env -u SMARTNODES_TEST_RPC_URL cargo test -p smartnodes-contracts --locked

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
log="$(mktemp)"
# --prune-history: no state written to ~/.foundry/anvil/tmp (a full run wrote gigabytes).
"$anvil" --host 127.0.0.1 --port "$port" --prune-history >"$log" 2>&1 &
anvil_pid=$!
cleanup() {
    kill "$anvil_pid" 2>/dev/null || true
    wait "$anvil_pid" 2>/dev/null || true
    rm -f "$log"
}
trap cleanup EXIT

for _ in $(seq 1 150); do
    if ! kill -0 "$anvil_pid" 2>/dev/null; then
        echo "test-both: anvil exited:" >&2
        cat "$log" >&2
        exit 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        break
    fi
    sleep 0.2
done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "test-both: anvil did not listen on $port" >&2; cat "$log" >&2; exit 1; }
echo "== anvil listening on 127.0.0.1:$port (pid $anvil_pid)"

echo "== cargo test: JSON-RPC (anvil)"
SMARTNODES_TEST_RPC_URL="http://127.0.0.1:$port" cargo test -p smartnodes-contracts --locked

echo "== cargo test: the node's epochs (validators, workers, claims) on JSON-RPC (anvil)"
SMARTNODES_TEST_RPC_URL="http://127.0.0.1:$port" cargo test -p smartnodes --locked --test epochs -- --include-ignored

echo "== the devnet on JSON-RPC (anvil): every node its own process"
SMARTNODES_TEST_RPC_URL="http://127.0.0.1:$port" cargo test -p smartnodes --locked --test devnet -- --include-ignored devnet_on_anvil
