//! The devnet's view of the chain: epochs and SNO, as [`ChainSnapshot`]s read from the
//! in-process network's embedded chain or, through a [`ChainView`], from a JSON-RPC chain
//! ([`super::rpc`]). Without a chain (`--processes` alone) every chain field of the report
//! is absent, and the run loop does not wait for epochs.

use super::DevnetError;
use futures::future::BoxFuture;

/// How many executed epochs the devnet waits for before it reports (with a chain).
pub const EPOCHS_TO_WAIT_FOR: usize = 2;

/// One epoch as the chain recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochRecord {
    /// Its number.
    pub number: u64,
    /// The Ethereum address (hex) of the validator that proposed it.
    pub proposer: String,
    /// Votes it received.
    pub votes: u32,
    /// Gas used to execute it (0 while not executed).
    pub gas_used: u64,
    /// Whether it was executed on the chain.
    pub executed: bool,
}

/// A node's SNO, in the token's smallest unit (18 decimals).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeBalance {
    /// The node's Ethereum address (hex, `0x…`).
    pub address: String,
    /// SNO it was rewarded.
    pub earned: u128,
    /// SNO it claimed.
    pub claimed: u128,
    /// SNO locked as its collateral now (a worker's stake, a validator's collateral).
    pub stake: u128,
    /// SNO slashed from it (a blacklisted worker, a removed validator).
    pub slashed: u128,
}

/// What the chain says now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainSnapshot {
    /// Where the chain is (`embedded` or the RPC URL).
    pub endpoint: String,
    /// Every epoch so far.
    pub epochs: Vec<EpochRecord>,
    /// SNO minted in all.
    pub sno_minted: u128,
    /// SNO claimed in all.
    pub sno_claimed: u128,
    /// SNO the executed epochs whose claims are open (the next epoch executed) committed to
    /// workers' claims (claimed or not, forfeited or not).
    pub sno_claimable: u128,
    /// Per node.
    pub balances: Vec<NodeBalance>,
}

impl ChainSnapshot {
    /// Epochs executed on the chain.
    pub fn epochs_executed(&self) -> usize {
        self.epochs.iter().filter(|e| e.executed).count()
    }

    /// The balance of the node with this address, if the chain knows it.
    pub fn balance(&self, address: &str) -> Option<&NodeBalance> {
        self.balances
            .iter()
            .find(|b| b.address.eq_ignore_ascii_case(address))
    }
}

/// A source of [`ChainSnapshot`]s (the JSON-RPC chain, [`super::rpc::RpcChain`]).
pub trait ChainView: Send + Sync + std::fmt::Debug {
    /// Reads the chain's current state.
    fn snapshot(&self) -> BoxFuture<'_, Result<ChainSnapshot, DevnetError>>;
}

/// SNO (18 decimals) as a float, for display and JSON.
pub fn sno(amount: u128) -> f64 {
    amount as f64 / 1e18
}
