//! The crate's error type.

use std::fmt;

use alloy::primitives::{Bytes, B256};

use crate::bindings::describe_revert;

/// Everything that can go wrong talking to the chain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The contract rejected the call (a custom error, `require`, or a panic).
    #[error("reverted: {0}")]
    Revert(Revert),
    /// The EVM stopped the transaction without a revert (out of gas, invalid opcode...).
    #[error("transaction halted: {0}")]
    Halted(String),
    /// The transaction could not be executed at all (bad nonce, no funds for gas...).
    #[error("transaction rejected: {0}")]
    Rejected(String),
    /// The JSON-RPC endpoint failed or answered something unexpected.
    #[error("rpc: {0}")]
    Rpc(String),
    /// A transaction was sent but no receipt arrived in time.
    #[error("no receipt for transaction {0} in time")]
    ReceiptTimeout(B256),
    /// An answer could not be ABI-decoded.
    #[error("abi: {0}")]
    Abi(#[from] alloy::sol_types::Error),
    /// Saving or loading the embedded chain's state failed.
    #[error("state file: {0}")]
    Io(#[from] std::io::Error),
    /// The embedded chain's state file is malformed.
    #[error("state file: {0}")]
    StateFormat(String),
    /// The backend cannot do this (for example, moving time on a public network).
    #[error("unsupported on this backend: {0}")]
    Unsupported(&'static str),
    /// An argument was rejected before anything was sent.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The custom error's name when the contract reverted, e.g. `"NotValidator"`.
    pub fn revert_name(&self) -> Option<&str> {
        match self {
            Error::Revert(r) => r.name.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn revert(data: Bytes) -> Self {
        let (name, message) = describe_revert(&data);
        Error::Revert(Revert {
            name,
            message,
            data,
        })
    }

    pub(crate) fn rpc(e: impl fmt::Display) -> Self {
        Error::Rpc(e.to_string())
    }
}

/// A decoded revert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revert {
    /// Custom error name (`"NotValidator"`), `"Error"` for `require` strings, `"Panic"`.
    pub name: Option<String>,
    /// A readable description.
    pub message: String,
    /// The raw revert data (empty when the node did not return it).
    pub data: Bytes,
}

impl fmt::Display for Revert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
