//! The contract test suite. Runs on the embedded EVM, or on the JSON-RPC node named by
//! `SMARTNODES_TEST_RPC_URL` (see `scripts/test-both.sh`, which starts anvil).

mod access;
mod client;
mod collateral;
mod common;
mod drift;
mod embedded_state;
mod epochs;
mod findings;
mod jobs;
mod regressions;
mod rewards;
