//! alloy `sol!` bindings generated from the committed artifacts, and revert decoding.

use std::collections::HashMap;
use std::sync::OnceLock;

use alloy::json_abi::ContractObject;
use alloy::primitives::{Bytes, Selector};

alloy::sol!(
    #[allow(missing_docs, unreachable_pub, clippy::too_many_arguments)]
    #[derive(Debug, PartialEq, Eq)]
    SmartnodesCore,
    "artifacts/SmartnodesCore.json"
);

alloy::sol!(
    #[allow(missing_docs, unreachable_pub)]
    #[derive(Debug, PartialEq, Eq)]
    SmartnodesToken,
    "artifacts/SmartnodesToken.json"
);

pub(crate) const CORE_ARTIFACT: &str = include_str!("../artifacts/SmartnodesCore.json");
pub(crate) const TOKEN_ARTIFACT: &str = include_str!("../artifacts/SmartnodesToken.json");

/// Names of every custom error either contract can revert with, by selector.
fn error_names() -> &'static HashMap<Selector, String> {
    static NAMES: OnceLock<HashMap<Selector, String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names = HashMap::new();
        for artifact in [CORE_ARTIFACT, TOKEN_ARTIFACT] {
            let object: ContractObject =
                serde_json::from_str(artifact).expect("committed artifact is valid JSON");
            if let Some(abi) = object.abi {
                for error in abi.errors() {
                    names.insert(error.selector(), error.name.clone());
                }
            }
        }
        names
    })
}

/// Name the revert in `data`: a custom error of either contract, `Error(string)` or
/// `Panic(uint256)`, with its message when there is one.
pub(crate) fn describe_revert(data: &Bytes) -> (Option<String>, String) {
    use alloy::sol_types::{Panic, Revert, SolError};
    if data.len() < 4 {
        return (None, format!("empty revert data 0x{}", hex::encode(data)));
    }
    let selector = Selector::from_slice(&data[..4]);
    if let Ok(revert) = Revert::abi_decode(data) {
        return (Some("Error".to_owned()), revert.reason);
    }
    if let Ok(panic) = Panic::abi_decode(data) {
        return (
            Some("Panic".to_owned()),
            format!("panic code {}", panic.code),
        );
    }
    match error_names().get(&selector) {
        Some(name) => (
            Some(name.clone()),
            format!("{name}(0x{})", hex::encode(&data[4..])),
        ),
        None => (None, format!("unknown revert 0x{}", hex::encode(data))),
    }
}
