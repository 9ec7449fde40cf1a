//! The committed artifacts were compiled from the committed sources.
//!
//! `scripts/compile.js` records `inputsHash` (sha256 over every compiler input) in each
//! artifact. Recomputing it here catches a source edited without `npm run compile`, without
//! needing node; `npm run check` (run by `scripts/test-both.sh`) recompiles byte for byte.

use std::path::Path;

use sha2::{Digest, Sha256};

fn inputs_hash(root: &Path) -> String {
    let mut files: Vec<String> = vec![
        "package-lock.json".into(),
        "package.json".into(),
        "scripts/compile.js".into(),
    ];
    for entry in std::fs::read_dir(root.join("solidity")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".sol") {
            files.push(format!("solidity/{name}"));
        }
    }
    files.sort();
    let mut h = Sha256::new();
    for rel in files {
        h.update(rel.as_bytes());
        h.update([0]);
        h.update(std::fs::read(root.join(&rel)).unwrap());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

#[test]
fn artifacts_match_the_sources() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let want = inputs_hash(root);
    for (name, json) in [
        ("SmartnodesCore", smartnodes_contracts::artifacts::CORE_JSON),
        (
            "SmartnodesToken",
            smartnodes_contracts::artifacts::TOKEN_JSON,
        ),
    ] {
        let artifact: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(
            artifact["inputsHash"].as_str(),
            Some(want.as_str()),
            "artifacts/{name}.json is stale: run `npm run compile` in contracts/"
        );
        // Within the EIP-170 code size limit.
        let size = artifact["deployedBytecode"].as_str().unwrap().len() / 2 - 1;
        assert!(size <= 24_576, "{name} runtime code is {size} bytes");
        assert_eq!(artifact["compiler"]["settings"]["evmVersion"], "cancun");
    }
}
