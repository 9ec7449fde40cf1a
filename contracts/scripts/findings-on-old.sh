#!/usr/bin/env bash
# Show that issue 16's regression tests (tests/all/findings.rs) fail on the contract as it
# was before issue 16 (commit 13f4a59): exports that commit to a scratch directory, adds
# scripts/findings-on-13f4a59.rs (the same scenarios and expectations, written against the
# old client API) as tests/all/findings.rs, and runs it. Every test must FAIL, each listing
# the expectations the old contract breaks; the script exits non-zero if any passes.
#
#   bash contracts/scripts/findings-on-old.sh     (embedded EVM; needs git and cargo)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
old="${OLD_COMMIT:-13f4a59}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
git -C "$here/.." archive "$old" | tar -x -C "$scratch"
cp "$here/scripts/findings-on-13f4a59.rs" "$scratch/contracts/tests/all/findings.rs"
sed -i 's/^mod epochs;/mod epochs;\nmod findings;/' "$scratch/contracts/tests/all/main.rs"
# Its own target dir (OLD_TARGET_DIR to reuse one between runs, never the branch's own):
# the old crate has the same name and version as the new one, and an exported tree's old
# mtimes would let cargo take the new crate's build as fresh. Hence also the touch.
export CARGO_TARGET_DIR="${OLD_TARGET_DIR:-$scratch/target}"
find "$scratch" -name '*.rs' -exec touch {} +
out="$scratch/out.txt"
(cd "$scratch" && RUST_BACKTRACE=0 cargo test -p smartnodes-contracts --test all findings -- --test-threads=1) >"$out" 2>&1 || true
grep -A12 "panicked at" "$out" | grep -v '^note:' || true
grep -E "^test result:" "$out"
if grep -qE "^test findings::.* \.\.\. ok$" "$out" || ! grep -qE "^test result: FAILED\. 0 passed; 10 failed" "$out"; then
    echo "findings-on-old: some regression test passes on $old (or did not run): it tests nothing" >&2
    exit 1
fi
echo "findings-on-old: all 10 regression tests fail on $old"
