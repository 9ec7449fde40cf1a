//! [`Chain`]: one client API over the embedded EVM and any JSON-RPC node.

use std::sync::Arc;
use std::time::Duration;

use alloy::network::{EthereumWallet, ReceiptResponse};
use alloy::primitives::{Address, Bytes, TxKind, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{TransactionInput, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolConstructor};
use alloy::transports::http::reqwest::Url;
use alloy::transports::TransportError;

use crate::bindings::{SmartnodesCore as core, SmartnodesToken as token};
use crate::embedded::EmbeddedEvm;
use crate::error::{Error, Result};
use crate::types::{
    EpochRecord, EpochSummary, JobInfo, JobResult, JobState, Params, ProposalInfo, Registration,
    Role, RoundInfo, TxReceipt,
};

/// How long to wait for a JSON-RPC transaction to be mined.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// Where the contracts live.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// An in-process chain, shared by every clone of the handle.
    Embedded(EmbeddedEvm),
    /// Any Ethereum JSON-RPC endpoint over HTTP, e.g. `http://127.0.0.1:8545`.
    Rpc(String),
}

/// The deployed contracts' addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deployment {
    /// `SmartnodesCore`.
    pub core: Address,
    /// `SmartnodesToken` (SNO), created by the core.
    pub token: Address,
}

/// A client of the Smartnodes contracts acting as one account.
///
/// The same API drives the embedded EVM and a JSON-RPC node; nothing above this type needs
/// to know which one it has. Cloning is cheap; clones share the connection and, on JSON-RPC,
/// send transactions one at a time so nonces stay in order.
#[derive(Clone)]
pub struct Chain {
    backend: Backend,
    signer: PrivateKeySigner,
    deployment: Deployment,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("backend", &self.backend_name())
            .field("account", &self.signer.address())
            .field("deployment", &self.deployment)
            .finish()
    }
}

#[derive(Clone)]
enum Backend {
    Embedded(EmbeddedEvm),
    Rpc(Rpc),
}

#[derive(Clone)]
struct Rpc {
    url: Url,
    provider: DynProvider,
    /// One transaction in flight per signer: nonces stay ordered when clones send at once.
    send_lock: Arc<tokio::sync::Mutex<()>>,
}

impl Backend {
    fn new(endpoint: &Endpoint, signer: &PrivateKeySigner) -> Result<Self> {
        match endpoint {
            Endpoint::Embedded(evm) => Ok(Backend::Embedded(evm.clone())),
            Endpoint::Rpc(url) => {
                let url: Url = url
                    .parse()
                    .map_err(|e| Error::InvalidArgument(format!("rpc url {url:?}: {e}")))?;
                Ok(Backend::Rpc(Rpc::new(url, signer)))
            }
        }
    }
}

impl Rpc {
    fn new(url: Url, signer: &PrivateKeySigner) -> Self {
        // The nonce is read from the node for every transaction (under `send_lock`), never
        // cached: a cached nonce would skip ahead when gas estimation fails on a revert,
        // leaving a gap no later transaction could fill.
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .fetch_chain_id()
            .wallet(EthereumWallet::from(signer.clone()))
            .connect_http(url.clone())
            .erased();
        Self {
            url,
            provider,
            send_lock: Arc::new(tokio::sync::Mutex::new(())),
        }
    }
}

/// Turn a transport error into a revert when the node returned revert data.
fn rpc_error(e: TransportError) -> Error {
    if let Some(data) = e.as_error_resp().and_then(|p| p.as_revert_data()) {
        return Error::revert(data);
    }
    Error::rpc(e)
}

impl Chain {
    /// Deploy `SmartnodesCore` (which creates the SNO token and mints `genesis` to its
    /// holders) from `signer`, and return a client acting as `signer`.
    pub async fn deploy(
        endpoint: &Endpoint,
        signer: PrivateKeySigner,
        params: &Params,
        genesis: &[(Address, U256)],
    ) -> Result<Self> {
        let backend = Backend::new(endpoint, &signer)?;
        let constructor = core::constructorCall {
            initialParams: params.to_sol(),
            genesisHolders: genesis.iter().map(|g| g.0).collect(),
            genesisAmounts: genesis.iter().map(|g| g.1).collect(),
        };
        let mut code = core::BYTECODE.to_vec();
        code.extend_from_slice(&constructor.abi_encode());
        let mut chain = Self {
            backend,
            signer,
            deployment: Deployment {
                core: Address::ZERO,
                token: Address::ZERO,
            },
        };
        let (_, created) = chain.transact(None, code.into(), U256::ZERO).await?;
        let core_address =
            created.ok_or_else(|| Error::Rpc("deployment returned no address".into()))?;
        chain.deployment.core = core_address;
        chain.deployment.token = chain.view(core_address, core::tokenCall {}).await?;
        Ok(chain)
    }

    /// A client for contracts already deployed at `deployment`, acting as `signer`.
    pub async fn connect(
        endpoint: &Endpoint,
        signer: PrivateKeySigner,
        deployment: Deployment,
    ) -> Result<Self> {
        let chain = Self {
            backend: Backend::new(endpoint, &signer)?,
            signer,
            deployment,
        };
        // Check that the core is where we were told, and that it created that token.
        let token = chain.view(deployment.core, core::tokenCall {}).await?;
        if token != deployment.token {
            return Err(Error::InvalidArgument(format!(
                "core {} uses token {token}, not {}",
                deployment.core, deployment.token
            )));
        }
        Ok(chain)
    }

    /// The same chain and contracts, acting as another account.
    pub fn with_signer(&self, signer: PrivateKeySigner) -> Self {
        let backend = match &self.backend {
            Backend::Embedded(evm) => Backend::Embedded(evm.clone()),
            Backend::Rpc(rpc) => Backend::Rpc(Rpc::new(rpc.url.clone(), &signer)),
        };
        Self {
            backend,
            signer,
            deployment: self.deployment,
        }
    }

    /// The account this client acts as.
    pub fn account(&self) -> Address {
        self.signer.address()
    }

    /// The contracts' addresses.
    pub fn deployment(&self) -> Deployment {
        self.deployment
    }

    /// `"embedded"` or `"json-rpc"`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Embedded(_) => "embedded",
            Backend::Rpc(_) => "json-rpc",
        }
    }

    /// The embedded EVM, when that is the backend.
    pub fn embedded(&self) -> Option<&EmbeddedEvm> {
        match &self.backend {
            Backend::Embedded(evm) => Some(evm),
            Backend::Rpc(_) => None,
        }
    }

    // -------------------------------------------------------------- transport

    /// Send a transaction (`to = None` creates a contract) and wait for it to be mined.
    async fn transact(
        &self,
        to: Option<Address>,
        data: Bytes,
        value: U256,
    ) -> Result<(TxReceipt, Option<Address>)> {
        match &self.backend {
            Backend::Embedded(evm) => {
                let out = evm.execute(self.account(), to, data, value, true)?;
                Ok((
                    TxReceipt {
                        gas_used: out.gas_used,
                        block_number: out.block_number,
                        tx_hash: B256::ZERO,
                    },
                    out.created,
                ))
            }
            Backend::Rpc(rpc) => {
                let tx = TransactionRequest {
                    from: Some(self.account()),
                    to: Some(to.map_or(TxKind::Create, TxKind::Call)),
                    input: TransactionInput::new(data),
                    value: Some(value),
                    ..Default::default()
                };
                let _one_at_a_time = rpc.send_lock.lock().await;
                let pending = rpc.provider.send_transaction(tx).await.map_err(rpc_error)?;
                let hash = *pending.tx_hash();
                let receipt = wait_for_receipt(&rpc.provider, hash).await?;
                if !receipt.status() {
                    return Err(Error::Revert(crate::error::Revert {
                        name: None,
                        message: format!("transaction {hash} reverted on chain"),
                        data: Bytes::new(),
                    }));
                }
                Ok((
                    TxReceipt {
                        gas_used: receipt.gas_used(),
                        block_number: receipt.block_number().unwrap_or_default(),
                        tx_hash: hash,
                    },
                    receipt.contract_address(),
                ))
            }
        }
    }

    async fn send<C: SolCall>(&self, to: Address, call: C) -> Result<TxReceipt> {
        Ok(self
            .transact(Some(to), call.abi_encode().into(), U256::ZERO)
            .await?
            .0)
    }

    async fn view<C: SolCall>(&self, to: Address, call: C) -> Result<C::Return> {
        let data: Bytes = call.abi_encode().into();
        let output = match &self.backend {
            Backend::Embedded(evm) => {
                evm.execute(self.account(), Some(to), data, U256::ZERO, false)?
                    .output
            }
            Backend::Rpc(rpc) => {
                let tx = TransactionRequest {
                    from: Some(self.account()),
                    to: Some(TxKind::Call(to)),
                    input: TransactionInput::new(data),
                    ..Default::default()
                };
                rpc.provider.call(tx).await.map_err(rpc_error)?
            }
        };
        Ok(C::abi_decode_returns(&output)?)
    }

    async fn core<C: SolCall>(&self, call: C) -> Result<TxReceipt> {
        self.send(self.deployment.core, call).await
    }

    async fn core_view<C: SolCall>(&self, call: C) -> Result<C::Return> {
        self.view(self.deployment.core, call).await
    }

    // -------------------------------------------------------------- time and ether

    /// The latest block's timestamp (embedded: the timestamp the next block will carry).
    pub async fn timestamp(&self) -> Result<u64> {
        match &self.backend {
            Backend::Embedded(evm) => Ok(evm.timestamp()),
            Backend::Rpc(rpc) => {
                let block = rpc
                    .provider
                    .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
                    .await
                    .map_err(Error::rpc)?
                    .ok_or_else(|| Error::Rpc("no latest block".into()))?;
                Ok(block.header.timestamp)
            }
        }
    }

    /// Move the chain's clock forward. Embedded: exact. JSON-RPC: `evm_increaseTime` then
    /// `evm_mine` (anvil, hardhat); a public network refuses, which is an error.
    pub async fn advance_time(&self, seconds: u64) -> Result<()> {
        match &self.backend {
            Backend::Embedded(evm) => {
                evm.advance_time(seconds);
                Ok(())
            }
            Backend::Rpc(rpc) => {
                let _: serde_json::Value = rpc
                    .provider
                    .raw_request("evm_increaseTime".into(), (seconds,))
                    .await
                    .map_err(Error::rpc)?;
                let _: serde_json::Value = rpc
                    .provider
                    .raw_request("evm_mine".into(), ())
                    .await
                    .map_err(Error::rpc)?;
                Ok(())
            }
        }
    }

    /// Ether balance of `account` (gas money on a real chain).
    pub async fn eth_balance(&self, account: Address) -> Result<U256> {
        match &self.backend {
            Backend::Embedded(evm) => Ok(evm.balance(account)),
            Backend::Rpc(rpc) => rpc.provider.get_balance(account).await.map_err(Error::rpc),
        }
    }

    /// Send `wei` ether to `to`.
    pub async fn send_eth(&self, to: Address, wei: U256) -> Result<TxReceipt> {
        Ok(self.transact(Some(to), Bytes::new(), wei).await?.0)
    }

    // -------------------------------------------------------------- token

    /// SNO balance of `account`.
    pub async fn token_balance(&self, account: Address) -> Result<U256> {
        self.view(self.deployment.token, token::balanceOfCall { account })
            .await
    }

    /// Total SNO supply.
    pub async fn total_supply(&self) -> Result<U256> {
        self.view(self.deployment.token, token::totalSupplyCall {})
            .await
    }

    /// Transfer SNO.
    pub async fn transfer(&self, to: Address, amount: U256) -> Result<TxReceipt> {
        self.send(
            self.deployment.token,
            token::transferCall { to, value: amount },
        )
        .await
    }

    /// Allow the core contract to pull `amount` SNO (collateral, job payments).
    pub async fn approve_core(&self, amount: U256) -> Result<TxReceipt> {
        let spender = self.deployment.core;
        self.send(
            self.deployment.token,
            token::approveCall {
                spender,
                value: amount,
            },
        )
        .await
    }

    /// Mint SNO directly on the token. Only the core contract may; anyone else gets
    /// `NotCore`. Exposed so that tests can prove it.
    pub async fn token_mint(&self, to: Address, amount: U256) -> Result<TxReceipt> {
        self.send(self.deployment.token, token::mintCall { to, amount })
            .await
    }

    async fn ensure_allowance(&self, amount: U256) -> Result<()> {
        if amount.is_zero() {
            return Ok(());
        }
        let allowance = self
            .view(
                self.deployment.token,
                token::allowanceCall {
                    owner: self.account(),
                    spender: self.deployment.core,
                },
            )
            .await?;
        if allowance < amount {
            self.approve_core(amount).await?;
        }
        Ok(())
    }

    // -------------------------------------------------------------- registry

    /// This account's secp256k1 public key, 64 bytes `x || y`: its node key. A node whose
    /// libp2p identity is this key has the peer id [`crate::secp256k1_peer_id_bytes`] of it.
    pub fn node_public_key(&self) -> [u8; 64] {
        let point = self
            .signer
            .credential()
            .verifying_key()
            .to_encoded_point(false);
        let mut out = [0u8; 64];
        out.copy_from_slice(&point.as_bytes()[1..]);
        out
    }

    /// The node key hash this account's registrations record:
    /// `keccak256(peer id of its secp256k1 key)`.
    pub fn node_key_hash(&self) -> B256 {
        crate::node_key_hash_of(&self.node_public_key())
    }

    /// Register as a user, locking `collateral` SNO (approved automatically). The node key
    /// is this account's own key (see [`Chain::node_public_key`]).
    pub async fn register_user(&self, collateral: U256) -> Result<TxReceipt> {
        self.register_user_with_key(self.node_public_key(), collateral)
            .await
    }

    /// Register as a user presenting `node_public_key`; the contract refuses any key but
    /// the account's own (`BadNodeKey`). Exposed so that tests can prove it.
    pub async fn register_user_with_key(
        &self,
        node_public_key: [u8; 64],
        collateral: U256,
    ) -> Result<TxReceipt> {
        self.ensure_allowance(collateral).await?;
        self.core(core::registerUserCall {
            nodePublicKey: node_public_key.to_vec().into(),
            collateral,
        })
        .await
    }

    /// Register as a worker, staking `collateral` SNO (approved automatically).
    pub async fn register_worker(&self, collateral: U256) -> Result<TxReceipt> {
        self.register_worker_with_key(self.node_public_key(), collateral)
            .await
    }

    /// Register as a worker presenting `node_public_key` (see
    /// [`Chain::register_user_with_key`]).
    pub async fn register_worker_with_key(
        &self,
        node_public_key: [u8; 64],
        collateral: U256,
    ) -> Result<TxReceipt> {
        self.ensure_allowance(collateral).await?;
        self.core(core::registerWorkerCall {
            nodePublicKey: node_public_key.to_vec().into(),
            collateral,
        })
        .await
    }

    /// Register as a validator, locking `collateral` SNO (approved automatically). Before
    /// the first execution it is active at once; after, it votes from epoch
    /// `current + activation_epochs` on.
    pub async fn register_validator(&self, collateral: U256) -> Result<TxReceipt> {
        self.register_validator_with_key(self.node_public_key(), collateral)
            .await
    }

    /// Register as a validator presenting `node_public_key` (see
    /// [`Chain::register_user_with_key`]).
    pub async fn register_validator_with_key(
        &self,
        node_public_key: [u8; 64],
        collateral: U256,
    ) -> Result<TxReceipt> {
        self.ensure_allowance(collateral).await?;
        self.core(core::registerValidatorCall {
            nodePublicKey: node_public_key.to_vec().into(),
            collateral,
        })
        .await
    }

    /// Leave `role`; collateral becomes withdrawable after the unlock delay.
    pub async fn request_unlock(&self, role: Role) -> Result<TxReceipt> {
        self.core(core::requestUnlockCall { role: role as u8 })
            .await
    }

    /// Withdraw the collateral of `role` once its unlock delay has passed.
    pub async fn withdraw_collateral(&self, role: Role) -> Result<TxReceipt> {
        self.core(core::withdrawCollateralCall { role: role as u8 })
            .await
    }

    /// `account`'s registration for `role`.
    pub async fn registration(&self, role: Role, account: Address) -> Result<Registration> {
        let r = self
            .core_view(core::registrationCall {
                role: role as u8,
                account,
            })
            .await?;
        Ok(Registration {
            node_key_hash: r.nodeKeyHash,
            collateral: r.collateral,
            unlock_at: r.unlockAt,
            active: r.active,
            active_from: r.activeFrom,
        })
    }

    /// The active validator set (those that vote in the current epoch).
    pub async fn validators(&self) -> Result<Vec<Address>> {
        self.core_view(core::validatorsCall {}).await
    }

    /// Validators registered and waiting for their activation epoch.
    pub async fn pending_validators(&self) -> Result<Vec<Address>> {
        self.core_view(core::pendingValidatorsCall {}).await
    }

    /// Total collateral of the active validator set: the threshold's denominator.
    pub async fn active_stake(&self) -> Result<U256> {
        self.core_view(core::activeStakeCall {}).await
    }

    /// The epoch whose execution blacklisted `account` (`None`: never).
    pub async fn blacklisted_in(&self, account: Address) -> Result<Option<u64>> {
        let e = self.core_view(core::blacklistedInCall(account)).await?;
        Ok((!e.is_zero()).then(|| u64_of(e)))
    }

    /// When `validator` last proposed or voted (or became active).
    pub async fn last_active_at(&self, validator: Address) -> Result<u64> {
        self.core_view(core::lastActiveAtCall(validator)).await
    }

    /// Drop `validator` from the active set after `idle_timeout` without a proposal or vote.
    pub async fn drop_idle(&self, validator: Address) -> Result<TxReceipt> {
        self.core(core::dropIdleCall { validator }).await
    }

    /// Whether `worker` has been blacklisted by an executed epoch.
    pub async fn is_blacklisted(&self, worker: Address) -> Result<bool> {
        self.core_view(core::blacklistedCall { account: worker })
            .await
    }

    /// Whether `validator` was removed by an executed epoch (and so cannot register again).
    pub async fn is_validator_banned(&self, validator: Address) -> Result<bool> {
        self.core_view(core::validatorBannedCall(validator)).await
    }

    /// The parameters the core was deployed with.
    pub async fn params(&self) -> Result<Params> {
        Ok(Params::from_sol(self.core_view(core::paramsCall {}).await?))
    }

    // -------------------------------------------------------------- jobs

    /// Escrow `payment` SNO for this account's job `job_id` (approved automatically). Only
    /// registered users. The job's key on chain is [`crate::job_key`]`(account, job_id)`.
    pub async fn request_job(
        &self,
        job_id: B256,
        payment: U256,
        deadline: u64,
    ) -> Result<TxReceipt> {
        self.ensure_allowance(payment).await?;
        self.core(core::requestJobCall {
            jobId: job_id,
            payment,
            deadline,
        })
        .await
    }

    /// Get the payment of this account's job back, proving that `epoch` (at or after the
    /// one it was requested in) recorded it as failed or expired.
    pub async fn refund_job(
        &self,
        job_id: B256,
        epoch: u64,
        result: JobResult,
        proof: Vec<B256>,
    ) -> Result<TxReceipt> {
        self.core(core::refundJobCall {
            jobId: job_id,
            epoch: U256::from(epoch),
            result: result as u8,
            proof,
        })
        .await
    }

    /// Take back the escrow of this account's job that nobody released or refunded, once
    /// `job_grace_period` has passed after its deadline.
    pub async fn reclaim_job(&self, job_id: B256) -> Result<TxReceipt> {
        self.core(core::reclaimJobCall { jobId: job_id }).await
    }

    /// A job as stored on chain, by its key ([`crate::job_key`]).
    pub async fn job(&self, key: B256) -> Result<JobInfo> {
        let j = self.core_view(core::jobCall { key }).await?;
        Ok(JobInfo {
            user: j.user,
            deadline: j.deadline,
            state: match j.state {
                1 => JobState::Escrowed,
                2 => JobState::Refunded,
                3 => JobState::Released,
                _ => JobState::None,
            },
            payment: j.payment,
            requested_in_epoch: u64_of(j.requestedInEpoch),
        })
    }

    /// SNO held in escrow for jobs not yet completed or refunded.
    pub async fn total_escrowed(&self) -> Result<U256> {
        self.core_view(core::totalEscrowedCall {}).await
    }

    // -------------------------------------------------------------- epochs

    /// The epoch the next execution finalises.
    pub async fn current_epoch(&self) -> Result<u64> {
        Ok(u64_of(self.core_view(core::currentEpochCall {}).await?))
    }

    /// The current epoch's proposal window and this round's proposers.
    pub async fn round_info(&self) -> Result<RoundInfo> {
        let epoch = self.current_epoch().await?;
        let opens = self.core_view(core::proposalsOpenAtCall {}).await?;
        let p = self.core_view(core::currentProposersCall {}).await?;
        Ok(RoundInfo {
            epoch,
            proposals_open_at: opens,
            open: p.open,
            round: p.round,
            proposers: p.list,
        })
    }

    /// The proposers of `round` in `epoch` for the current validator set.
    pub async fn proposers_for(&self, epoch: u64, round: u32) -> Result<Vec<Address>> {
        self.core_view(core::proposersForCall {
            epoch: U256::from(epoch),
            round,
        })
        .await
    }

    /// Propose `summary` for its epoch (counts as the proposer's vote). Only a validator
    /// drawn as proposer for the current round. The contract checks the summary against the
    /// rules execution enforces and stores its hash, which is returned.
    pub async fn propose(&self, summary: &EpochSummary) -> Result<(TxReceipt, B256)> {
        let receipt = self
            .core(core::proposeCall {
                s: summary.to_sol(),
            })
            .await?;
        Ok((receipt, summary.hash()))
    }

    /// Vote for an existing proposal. One vote per validator per epoch at a time: a vote
    /// moves to another proposal only in a later round than the one it was cast in.
    pub async fn vote(&self, epoch: u64, summary_hash: B256) -> Result<TxReceipt> {
        self.core(core::voteCall {
            epoch: U256::from(epoch),
            summaryHash: summary_hash,
        })
        .await
    }

    /// Execute the current epoch with the full summary. Only validators; the summary's hash
    /// must be a proposal with enough votes.
    pub async fn execute(&self, summary: &EpochSummary) -> Result<TxReceipt> {
        self.core(core::executeEpochCall {
            s: summary.to_sol(),
        })
        .await
    }

    /// A proposal and its voters (`None` if nobody proposed that hash for that epoch).
    pub async fn proposal(&self, epoch: u64, summary_hash: B256) -> Result<Option<ProposalInfo>> {
        let p = self
            .core_view(core::proposalCall {
                epoch: U256::from(epoch),
                summaryHash: summary_hash,
            })
            .await?;
        Ok((p.proposer != Address::ZERO).then_some(ProposalInfo {
            proposer: p.proposer,
            round: p.round,
            voters: p.voters,
        }))
    }

    /// Every summary hash proposed for `epoch`, in order.
    pub async fn proposal_hashes(&self, epoch: u64) -> Result<Vec<B256>> {
        self.core_view(core::proposalHashesCall {
            epoch: U256::from(epoch),
        })
        .await
    }

    /// What `validator` voted for in `epoch`, if anything.
    pub async fn vote_of(&self, epoch: u64, validator: Address) -> Result<Option<B256>> {
        let v = self
            .core_view(core::voteOfCall {
                _0: U256::from(epoch),
                _1: validator,
            })
            .await?;
        Ok((v != B256::ZERO).then_some(v))
    }

    /// What `validator` voted for in `epoch`, and in which round, if anything.
    pub async fn vote_and_round(
        &self,
        epoch: u64,
        validator: Address,
    ) -> Result<Option<(B256, u32)>> {
        let Some(hash) = self.vote_of(epoch, validator).await? else {
            return Ok(None);
        };
        let round = self
            .core_view(core::voteRoundOfCall {
                _0: U256::from(epoch),
                _1: validator,
            })
            .await?;
        Ok(Some((hash, round)))
    }

    /// What an executed epoch recorded (`executed_at == 0` when it has not executed).
    pub async fn epoch_record(&self, epoch: u64) -> Result<EpochRecord> {
        let e = self
            .core_view(core::epochRecordCall {
                epoch: U256::from(epoch),
            })
            .await?;
        Ok(EpochRecord {
            summary_hash: e.summaryHash,
            job_results_root: e.jobResultsRoot,
            worker_reward_root: e.workerRewardRoot,
            reputation_root: e.reputationRoot,
            worker_reward_total: e.workerRewardTotal,
            claimed: e.claimed,
            emission: e.emission,
            released_payments: e.releasedPayments,
            executed_at: e.executedAt,
            votes: e.votes,
            swept: e.swept,
        })
    }

    /// The emission the contract mints when `epoch` executes.
    pub async fn emission_at(&self, epoch: u64) -> Result<U256> {
        self.core_view(core::emissionAtCall {
            epoch: U256::from(epoch),
        })
        .await
    }

    /// The contract's own hash of `summary` (equal to [`EpochSummary::hash`]).
    pub async fn summary_hash_on_chain(&self, summary: &EpochSummary) -> Result<B256> {
        self.core_view(core::hashSummaryCall {
            s: summary.to_sol(),
        })
        .await
    }

    /// Whether voters holding `stake` pass the configured threshold over `total` active
    /// stake.
    pub async fn threshold_passes(&self, stake: U256, total: U256) -> Result<bool> {
        self.core_view(core::thresholdPassesCall { stake, total })
            .await
    }

    // -------------------------------------------------------------- rewards, reputation

    /// Claim this account's reward leaf of `epoch`: open once epoch `epoch + vesting_epochs`
    /// has executed, for `claim_window_epochs` more; forfeited by an account blacklisted
    /// before it vested.
    pub async fn claim(&self, epoch: u64, amount: U256, proof: Vec<B256>) -> Result<TxReceipt> {
        self.core(core::claimCall {
            epoch: U256::from(epoch),
            amount,
            proof,
        })
        .await
    }

    /// Send what `epoch`'s workers left unclaimed (forfeited or never claimed) to the
    /// treasury, once its claim window has closed. Anyone may.
    pub async fn sweep_rewards(&self, epoch: u64) -> Result<TxReceipt> {
        self.core(core::sweepRewardsCall {
            epoch: U256::from(epoch),
        })
        .await
    }

    /// Whether the reward leaf `(worker, amount, epoch)` has been claimed.
    pub async fn reward_claimed(&self, worker: Address, amount: U256, epoch: u64) -> Result<bool> {
        let leaf = crate::merkle::reward_leaf(worker, amount, epoch);
        self.core_view(core::rewardLeafClaimedCall(leaf)).await
    }

    /// Check `worker`'s `score` against the reputation root recorded by `epoch`.
    pub async fn verify_reputation(
        &self,
        worker: Address,
        score: u64,
        epoch: u64,
        proof: Vec<B256>,
    ) -> Result<bool> {
        self.core_view(core::verifyReputationCall {
            worker,
            score,
            epoch: U256::from(epoch),
            proof,
        })
        .await
    }
}

fn u64_of(v: U256) -> u64 {
    v.try_into().unwrap_or(u64::MAX)
}

async fn wait_for_receipt(
    provider: &DynProvider,
    hash: B256,
) -> Result<alloy::rpc::types::TransactionReceipt> {
    let start = std::time::Instant::now();
    let mut delay = Duration::from_millis(5);
    loop {
        if let Some(receipt) = provider
            .get_transaction_receipt(hash)
            .await
            .map_err(Error::rpc)?
        {
            return Ok(receipt);
        }
        if start.elapsed() > RECEIPT_TIMEOUT {
            return Err(Error::ReceiptTimeout(hash));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    fn assert_send<T: Send>(_: T) {}

    /// The node drives `Chain` from tokio tasks: the client and its futures must be `Send`.
    #[test]
    fn chain_and_its_futures_are_send() {
        let evm = EmbeddedEvm::with_timestamp(1);
        let chain = Chain {
            backend: Backend::Embedded(evm),
            signer: PrivateKeySigner::random(),
            deployment: Deployment {
                core: Address::ZERO,
                token: Address::ZERO,
            },
        };
        assert_send_sync(&chain);
        assert_send(chain.register_worker(U256::ZERO));
        assert_send(chain.execute(&EpochSummary::empty(1)));
        assert_send(chain.advance_time(1));
        let signer = PrivateKeySigner::random();
        let rpc = Chain {
            backend: Backend::new(&Endpoint::Rpc("http://127.0.0.1:9".into()), &signer).unwrap(),
            signer,
            deployment: chain.deployment,
        };
        assert_send_sync(&rpc);
        assert_send(rpc.register_worker(U256::ZERO));
        assert_send(rpc.round_info());
        assert_send(rpc.advance_time(1));
    }
}
