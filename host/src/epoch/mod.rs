//! Epochs: validators roll accepted receipts and blacklists into contract proposals, vote,
//! execute, and workers claim their rewards (DESIGN.md §7, ARCHITECTURE.md "Epochs").
//!
//! - [`ledger`]: the deterministic part (signed receipt batches, summaries, checks);
//! - [`node`]: the validator's driver ([`EpochNode`]) and the worker's [`Claimer`];
//! - [`testnet`]: the chain of the in-process network (deploy, register, report);
//! - [`ChainConfig`]: how a node reaches the contracts.

pub mod ledger;
pub mod node;
pub mod testnet;

pub use ledger::{EpochGossip, Ledger, LedgerError, ProposalContent};
pub use node::{Claimer, EpochNode, GasEntry, GasLog};

use smartnodes_contracts::{Deployment, Endpoint};
use std::time::Duration;

/// How a node reaches the Smartnodes contracts (its signer is its identity's Ethereum key).
#[derive(Debug, Clone)]
pub struct ChainConfig {
    /// The embedded chain (nodes in one process) or a JSON-RPC URL.
    pub endpoint: Endpoint,
    /// Where the contracts are.
    pub deployment: Deployment,
    /// Serve peers that are not registered on chain (they earn nothing); devnets only.
    pub open: bool,
    /// Workers claim their rewards as soon as an epoch executes.
    pub auto_claim: bool,
    /// How long a proposer waits after proposals open before building its summary, so
    /// that the last batches reach it.
    pub grace: Duration,
    /// Tests only: this validator proposes summaries with extra credit for one worker.
    pub tamper: bool,
    /// Where nodes record the gas of their epoch transactions (for reports).
    pub gas_log: GasLog,
}

impl ChainConfig {
    /// A configuration with the defaults: registration required, automatic claims, 1 s
    /// grace.
    pub fn new(endpoint: Endpoint, deployment: Deployment) -> ChainConfig {
        ChainConfig {
            endpoint,
            deployment,
            open: false,
            auto_claim: true,
            grace: Duration::from_secs(1),
            tamper: false,
            gas_log: GasLog::default(),
        }
    }
}

/// Why epochs could not start.
#[derive(Debug, thiserror::Error)]
pub enum EpochError {
    /// The chain.
    #[error("chain: {0}")]
    Chain(#[from] smartnodes_contracts::Error),
    /// This node is not registered on chain for its role.
    #[error("{0}")]
    NotRegistered(String),
}
