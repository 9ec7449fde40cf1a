//! The embedded chain: revm in-process, one block per transaction, time moved by the caller.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use alloy::primitives::{Address, Bytes, B256, U256};
use revm::bytecode::Bytecode;
use revm::context::result::{ExecutionResult, Output};
use revm::context::TxEnv;
use revm::database::{CacheDB, EmptyDB};
use revm::primitives::hardfork::SpecId;
use revm::primitives::TxKind;
use revm::state::AccountInfo;
use revm::{Context, DatabaseRef, ExecuteCommitEvm, ExecuteEvm, MainBuilder, MainContext};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Chain id of the embedded chain (the same as anvil's default).
pub const EMBEDDED_CHAIN_ID: u64 = 31337;
/// Gas limit of every embedded block and transaction.
pub(crate) const GAS_LIMIT: u64 = 30_000_000;
const STATE_VERSION: u32 = 1;

/// An in-process EVM with the Smartnodes contracts deployed on it.
///
/// Cloning gives another handle to the *same* chain: nodes that share a process share it.
/// Every transaction is mined in its own block; the block timestamp only moves when the owner
/// calls [`EmbeddedEvm::advance_time`] or [`EmbeddedEvm::set_timestamp`], so tests and devnets
/// are deterministic. Gas is not charged (the base fee and gas price are zero), but gas is
/// metered exactly as on a real chain.
#[derive(Clone)]
pub struct EmbeddedEvm {
    inner: Arc<Mutex<State>>,
}

impl std::fmt::Debug for EmbeddedEvm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("EmbeddedEvm")
            .field("block_number", &state.block_number)
            .field("timestamp", &state.timestamp)
            .field("accounts", &state.db.cache.accounts.len())
            .finish()
    }
}

struct State {
    db: CacheDB<EmptyDB>,
    block_number: u64,
    timestamp: u64,
}

/// What one embedded execution produced.
#[derive(Debug)]
pub(crate) struct Executed {
    pub(crate) output: Bytes,
    pub(crate) gas_used: u64,
    pub(crate) created: Option<Address>,
    pub(crate) block_number: u64,
}

impl Default for EmbeddedEvm {
    fn default() -> Self {
        Self::new()
    }
}

impl EmbeddedEvm {
    /// A fresh chain whose clock starts at the current wall-clock time.
    pub fn new() -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(1);
        Self::with_timestamp(now)
    }

    /// A fresh chain whose clock starts at `timestamp` (seconds since the Unix epoch).
    pub fn with_timestamp(timestamp: u64) -> Self {
        Self {
            inner: Arc::new(Mutex::new(State {
                db: CacheDB::new(EmptyDB::default()),
                block_number: 0,
                timestamp,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-written: revm commits
        // only complete transactions. So a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Set `account`'s ether balance (gas is free here; ether only matters to contracts).
    pub fn fund(&self, account: Address, wei: U256) {
        let mut state = self.lock();
        let mut info = state
            .db
            .basic_ref(account)
            .ok()
            .flatten()
            .unwrap_or_default();
        info.balance = wei;
        state.db.insert_account_info(account, info);
    }

    /// `account`'s ether balance.
    pub fn balance(&self, account: Address) -> U256 {
        let state = self.lock();
        state
            .db
            .basic_ref(account)
            .ok()
            .flatten()
            .map(|a| a.balance)
            .unwrap_or_default()
    }

    /// The timestamp the next block will carry.
    pub fn timestamp(&self) -> u64 {
        self.lock().timestamp
    }

    /// The number of the last mined block.
    pub fn block_number(&self) -> u64 {
        self.lock().block_number
    }

    /// Move the clock forward by `seconds`.
    pub fn advance_time(&self, seconds: u64) {
        let mut state = self.lock();
        state.timestamp = state.timestamp.saturating_add(seconds);
    }

    /// Move the clock to `timestamp`. Time never goes backwards: an earlier value is an error.
    pub fn set_timestamp(&self, timestamp: u64) -> Result<()> {
        let mut state = self.lock();
        if timestamp < state.timestamp {
            return Err(Error::InvalidArgument(format!(
                "timestamp {timestamp} is before the chain's {}",
                state.timestamp
            )));
        }
        state.timestamp = timestamp;
        Ok(())
    }

    /// Run a transaction from `caller` sending `value` wei. `to = None` creates a contract. With `commit` the
    /// state changes are kept and a block is mined; without, it is a read-only call.
    pub(crate) fn execute(
        &self,
        caller: Address,
        to: Option<Address>,
        data: Bytes,
        value: U256,
        commit: bool,
    ) -> Result<Executed> {
        let mut state = self.lock();
        let number = state.block_number + 1;
        let timestamp = state.timestamp;
        let nonce = state
            .db
            .basic_ref(caller)
            .ok()
            .flatten()
            .map(|a| a.nonce)
            .unwrap_or(0);
        let tx = TxEnv::builder()
            .caller(caller)
            .kind(to.map_or(TxKind::Create, TxKind::Call))
            .data(data)
            .value(value)
            .nonce(nonce)
            .gas_limit(GAS_LIMIT)
            .gas_price(0)
            .chain_id(Some(EMBEDDED_CHAIN_ID))
            .build()
            .map_err(|e| Error::Rejected(format!("{e:?}")))?;
        let ctx = Context::mainnet()
            .with_db(&mut state.db)
            .modify_cfg_chained(|cfg| {
                cfg.set_spec_and_mainnet_gas_params(SpecId::CANCUN);
                cfg.chain_id = EMBEDDED_CHAIN_ID;
            })
            .modify_block_chained(|block| {
                block.number = U256::from(number);
                block.timestamp = U256::from(timestamp);
                block.gas_limit = GAS_LIMIT;
                block.basefee = 0;
            });
        let mut evm = ctx.build_mainnet();
        let result = if commit {
            evm.transact_commit(tx)
        } else {
            evm.transact(tx).map(|r| r.result)
        }
        .map_err(|e| Error::Rejected(e.to_string()))?;
        drop(evm);
        if commit {
            state.block_number = number;
        }
        let gas_used = result.tx_gas_used();
        match result {
            ExecutionResult::Success { output, .. } => {
                let (output, created) = match output {
                    Output::Call(b) => (b, None),
                    Output::Create(b, addr) => (b, addr),
                };
                Ok(Executed {
                    output,
                    gas_used,
                    created,
                    block_number: number,
                })
            }
            ExecutionResult::Revert { output, .. } => Err(Error::revert(output)),
            ExecutionResult::Halt { reason, .. } => Err(Error::Halted(format!("{reason:?}"))),
        }
    }

    /// Write the whole chain (accounts, code, storage, block number, clock) to `path`,
    /// atomically (a temporary file renamed into place).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let snapshot = self.snapshot();
        let path = path.as_ref();
        let tmp = path.with_extension("tmp");
        let json = serde_json::to_vec(&snapshot).map_err(|e| Error::StateFormat(e.to_string()))?;
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }

    /// A chain restored from a file written by [`EmbeddedEvm::save`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let bytes = std::fs::read(path)?;
        let snapshot: Snapshot =
            serde_json::from_slice(&bytes).map_err(|e| Error::StateFormat(e.to_string()))?;
        Self::restore(snapshot)
    }

    fn snapshot(&self) -> Snapshot {
        let state = self.lock();
        let mut accounts = BTreeMap::new();
        for (address, account) in &state.db.cache.accounts {
            let Some(info) = account.info() else { continue };
            let code = match &info.code {
                Some(code) => code.original_bytes(),
                None => state
                    .db
                    .cache
                    .contracts
                    .get(&info.code_hash)
                    .map(|c| c.original_bytes())
                    .unwrap_or_default(),
            };
            let storage = account
                .storage
                .iter()
                .filter(|(_, v)| !v.is_zero())
                .map(|(k, v)| (B256::from(*k), B256::from(*v)))
                .collect();
            accounts.insert(
                *address,
                AccountSnapshot {
                    balance: info.balance,
                    nonce: info.nonce,
                    code,
                    storage,
                },
            );
        }
        Snapshot {
            version: STATE_VERSION,
            chain_id: EMBEDDED_CHAIN_ID,
            block_number: state.block_number,
            timestamp: state.timestamp,
            accounts,
        }
    }

    fn restore(snapshot: Snapshot) -> Result<Self> {
        if snapshot.version != STATE_VERSION || snapshot.chain_id != EMBEDDED_CHAIN_ID {
            return Err(Error::StateFormat(format!(
                "state version {} chain {} (expected {STATE_VERSION}, {EMBEDDED_CHAIN_ID})",
                snapshot.version, snapshot.chain_id
            )));
        }
        let mut db = CacheDB::new(EmptyDB::default());
        for (address, account) in snapshot.accounts {
            let code = (!account.code.is_empty()).then(|| Bytecode::new_raw(account.code));
            let mut info = AccountInfo {
                balance: account.balance,
                nonce: account.nonce,
                ..Default::default()
            };
            if let Some(code) = code {
                info.code_hash = code.hash_slow();
                info.code = Some(code);
            }
            db.insert_account_info(address, info);
            for (slot, value) in account.storage {
                db.insert_account_storage(address, slot.into(), value.into())
                    .map_err(|e| Error::StateFormat(format!("{e:?}")))?;
            }
        }
        Ok(Self {
            inner: Arc::new(Mutex::new(State {
                db,
                block_number: snapshot.block_number,
                timestamp: snapshot.timestamp,
            })),
        })
    }
}

/// The on-disk form of an embedded chain. Deliberately our own format, not revm's.
#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    chain_id: u64,
    block_number: u64,
    timestamp: u64,
    accounts: BTreeMap<Address, AccountSnapshot>,
}

#[derive(Serialize, Deserialize)]
struct AccountSnapshot {
    balance: U256,
    nonce: u64,
    code: Bytes,
    storage: BTreeMap<B256, B256>,
}
