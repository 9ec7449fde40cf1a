//! The Smartnodes contracts from Rust: `SmartnodesCore` and the SNO token, on an embedded
//! EVM or on any JSON-RPC node, behind one API.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> smartnodes_contracts::Result<()> {
//! use smartnodes_contracts::{sno, Chain, EmbeddedEvm, Endpoint, Params, PrivateKeySigner};
//!
//! let evm = EmbeddedEvm::new();
//! let deployer = PrivateKeySigner::random();
//! let validator = PrivateKeySigner::random();
//! let params = Params::new(deployer.address());
//! let genesis = [(validator.address(), sno(5_000))];
//! let chain = Chain::deploy(&Endpoint::Embedded(evm.clone()), deployer, &params, &genesis).await?;
//!
//! let v = chain.with_signer(validator);
//! v.register_validator(sno(1_000)).await?;
//! evm.advance_time(params.epoch_duration);
//! let round = v.round_info().await?;
//! assert_eq!(round.proposers, vec![v.account()]);
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//! - `solidity/`, `artifacts/` (beside `src/`): the contracts and their committed compiled
//!   form; `npm run compile` regenerates the artifacts byte for byte.
//! - [`Chain`] (`chain`): the client API, one account per instance, over an [`Endpoint`].
//! - [`EmbeddedEvm`] (`embedded`): revm in-process; time moved by the caller; state saved
//!   to and loaded from a file.
//! - `merkle`: OpenZeppelin-compatible Merkle trees and the leaf formats the contract checks
//!   ([`RewardTree`], [`JobResultsTree`], [`ReputationTree`]).
//! - `types`: [`Params`], [`EpochSummary`] (whose [`hash`](EpochSummary::hash) is the
//!   canonical summary hash) and the records the contract returns.
//! - `bindings`: alloy `sol!` bindings over the artifacts (private).

mod bindings;
mod chain;
mod embedded;
mod error;
pub mod merkle;
mod types;

pub use alloy::primitives::{keccak256, Address, B256, U256};
pub use alloy::signers::local::PrivateKeySigner;
pub use chain::{Chain, Deployment, Endpoint};
pub use embedded::{EmbeddedEvm, EMBEDDED_CHAIN_ID};
pub use error::{Error, Result, Revert};
pub use merkle::{JobResultsTree, MerkleTree, ReputationTree, RewardTree};
pub use types::{
    job_key, node_key_hash_of, secp256k1_peer_id_bytes, sno, BlacklistEntry, EpochRecord,
    EpochSummary, JobInfo, JobResult, JobState, Params, ProposalInfo, Registration, Role,
    RoundInfo, TxReceipt, MAX_ERAS, SNO,
};

/// The compiled artifacts, as committed (JSON: ABI, bytecode, compiler settings,
/// `inputsHash`).
pub mod artifacts {
    /// `artifacts/SmartnodesCore.json`.
    pub const CORE_JSON: &str = crate::bindings::CORE_ARTIFACT;
    /// `artifacts/SmartnodesToken.json`.
    pub const TOKEN_JSON: &str = crate::bindings::TOKEN_ARTIFACT;
}

/// The README's example, compiled as a doctest so it cannot rot.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
