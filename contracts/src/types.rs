//! Plain Rust mirrors of the contract's structs, independent of the generated bindings.

use alloy::primitives::{keccak256, Address, B256, U256};
use alloy::sol_types::SolValue;

use crate::bindings::SmartnodesCore as core;

/// One SNO (18 decimals).
pub const SNO: U256 = U256::from_limbs([1_000_000_000_000_000_000, 0, 0, 0]);

/// `amount` whole SNO.
pub fn sno(amount: u64) -> U256 {
    U256::from(amount) * SNO
}

/// From this era on the emission is the tail (`MAX_ERAS` in the contract).
pub const MAX_ERAS: u64 = 256;

/// Everything `SmartnodesCore` is configured with at deployment (see the Solidity docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// Seconds from the last execution until proposals for the next epoch open.
    pub epoch_duration: u64,
    /// Seconds a proposer round lasts; new proposers are drawn every round.
    pub round_duration: u64,
    /// Proposers drawn per round (capped by the validator count).
    pub proposers_per_round: u32,
    /// A proposal executes when `votes * denominator > validators * numerator`;
    /// `1/2` is a strict majority, `2/3` needs more than two thirds.
    pub threshold_numerator: u32,
    /// See `threshold_numerator`.
    pub threshold_denominator: u32,
    /// Upper bound on the validator set.
    pub max_validators: u32,
    /// Seconds between an unlock request and the collateral being withdrawable.
    pub unlock_delay: u64,
    /// SNO a validator locks.
    pub min_validator_collateral: U256,
    /// SNO a user locks.
    pub min_user_collateral: U256,
    /// SNO a worker stakes; slashed when a fraud proof against it executes.
    pub min_worker_collateral: U256,
    /// SNO minted per executed epoch in era 0.
    pub initial_emission: U256,
    /// Emission never decays below this.
    pub tail_emission: U256,
    /// Executed epochs per era.
    pub epochs_per_era: u64,
    /// Each era the emission is multiplied by `era_decay_bps / 10_000` (5,000 halves it);
    /// from era [`MAX_ERAS`] on it is the tail.
    pub era_decay_bps: u16,
    /// Workers' share of each epoch's pot, in basis points.
    pub worker_bps: u16,
    /// Voters' share of each epoch's pot, in basis points. The treasury gets the rest.
    pub validator_bps: u16,
    /// Share of a slashed worker stake paid to the voters of the summary that carried the
    /// fraud proof, in basis points; the treasury gets the rest.
    pub slash_prover_bps: u16,
    /// A reward of epoch `e` vests once epoch `e + vesting_epochs` has executed; a worker
    /// blacklisted before that forfeits it.
    pub vesting_epochs: u32,
    /// Epochs after vesting during which a reward can be claimed; then what is left of the
    /// epoch (unclaimed, forfeited) can be swept to the treasury.
    pub claim_window_epochs: u32,
    /// A validator registered in epoch `e` (after the first execution) votes from epoch
    /// `e + activation_epochs` on.
    pub activation_epochs: u32,
    /// Stake that may become active per epoch, in basis points of the active stake (at
    /// least one minimum validator collateral).
    pub max_join_bps: u16,
    /// Seconds without proposing or voting after which anyone may drop a validator from
    /// the active set (not slashed).
    pub idle_timeout: u64,
    /// Seconds after a job's deadline after which its user may reclaim an escrow no epoch
    /// released or refunded.
    pub job_grace_period: u64,
    /// The escrow held for jobs never exceeds this share of the active validator stake,
    /// in basis points.
    pub max_escrow_bps: u16,
    /// Where the treasury share goes.
    pub treasury: Address,
}

impl Params {
    /// The defaults: 600-second epochs, 120-second rounds with 3 proposers, strict majority,
    /// 1,000 SNO emitted per epoch halving every 52,560 epochs (a year of 10-minute epochs)
    /// down to a 50 SNO tail, split 85 / 10 / 5 between workers, validators and `treasury`,
    /// collateral 1,000 SNO for validators, 500 SNO for workers and 10 SNO for users, one
    /// day to unlock; worker rewards vest for 6 epochs and can be claimed for 4,320 more
    /// (30 days); 20 % of a slashed worker stake to the voters that proved it; validators
    /// vote 2 epochs after registering, at most 20 % of the active stake joins per epoch,
    /// idle for a day means droppable; a job's escrow is reclaimable an hour after its
    /// deadline; the escrow held never exceeds 25 % of the active validator stake.
    pub fn new(treasury: Address) -> Self {
        Self {
            epoch_duration: 600,
            round_duration: 120,
            proposers_per_round: 3,
            threshold_numerator: 1,
            threshold_denominator: 2,
            max_validators: 64,
            unlock_delay: 86_400,
            min_validator_collateral: sno(1_000),
            min_user_collateral: sno(10),
            min_worker_collateral: sno(500),
            initial_emission: sno(1_000),
            tail_emission: sno(50),
            epochs_per_era: 52_560,
            era_decay_bps: 5_000,
            worker_bps: 8_500,
            validator_bps: 1_000,
            slash_prover_bps: 2_000,
            vesting_epochs: 6,
            claim_window_epochs: 4_320,
            activation_epochs: 2,
            max_join_bps: 2_000,
            idle_timeout: 86_400,
            job_grace_period: 3_600,
            max_escrow_bps: 2_500,
            treasury,
        }
    }

    /// Raises the durations the contract requires to be at least one epoch (`unlock_delay`,
    /// `idle_timeout`, `job_grace_period`) to `epoch_duration` where they are shorter: call
    /// it after setting a long `epoch_duration`.
    pub fn fit_durations(&mut self) {
        self.unlock_delay = self.unlock_delay.max(self.epoch_duration);
        self.idle_timeout = self.idle_timeout.max(self.epoch_duration);
        self.job_grace_period = self.job_grace_period.max(self.epoch_duration);
    }

    /// The emission for `epoch` under this schedule, computed off chain the way
    /// `emissionAt` computes it on chain.
    pub fn emission_at(&self, epoch: u64) -> U256 {
        let era = epoch.saturating_sub(1) / self.epochs_per_era.max(1);
        if era >= MAX_ERAS {
            return self.tail_emission;
        }
        let mut amount = self.initial_emission;
        let mut i = 0;
        while i < era && amount > self.tail_emission {
            amount = amount * U256::from(self.era_decay_bps) / U256::from(10_000);
            i += 1;
        }
        amount.max(self.tail_emission)
    }

    pub(crate) fn to_sol(&self) -> core::Params {
        core::Params {
            epochDuration: self.epoch_duration,
            roundDuration: self.round_duration,
            proposersPerRound: self.proposers_per_round,
            thresholdNumerator: self.threshold_numerator,
            thresholdDenominator: self.threshold_denominator,
            maxValidators: self.max_validators,
            unlockDelay: self.unlock_delay,
            minValidatorCollateral: self.min_validator_collateral,
            minUserCollateral: self.min_user_collateral,
            initialEmission: self.initial_emission,
            tailEmission: self.tail_emission,
            epochsPerEra: self.epochs_per_era,
            eraDecayBps: self.era_decay_bps,
            workerBps: self.worker_bps,
            validatorBps: self.validator_bps,
            econ: core::Economics {
                minWorkerCollateral: self.min_worker_collateral,
                slashProverBps: self.slash_prover_bps,
                vestingEpochs: self.vesting_epochs,
                claimWindowEpochs: self.claim_window_epochs,
                activationEpochs: self.activation_epochs,
                maxJoinBps: self.max_join_bps,
                idleTimeout: self.idle_timeout,
                jobGracePeriod: self.job_grace_period,
                maxEscrowBps: self.max_escrow_bps,
            },
            treasury: self.treasury,
        }
    }

    pub(crate) fn from_sol(p: core::Params) -> Self {
        Self {
            epoch_duration: p.epochDuration,
            round_duration: p.roundDuration,
            proposers_per_round: p.proposersPerRound,
            threshold_numerator: p.thresholdNumerator,
            threshold_denominator: p.thresholdDenominator,
            max_validators: p.maxValidators,
            unlock_delay: p.unlockDelay,
            min_validator_collateral: p.minValidatorCollateral,
            min_user_collateral: p.minUserCollateral,
            min_worker_collateral: p.econ.minWorkerCollateral,
            initial_emission: p.initialEmission,
            tail_emission: p.tailEmission,
            epochs_per_era: p.epochsPerEra,
            era_decay_bps: p.eraDecayBps,
            worker_bps: p.workerBps,
            validator_bps: p.validatorBps,
            slash_prover_bps: p.econ.slashProverBps,
            vesting_epochs: p.econ.vestingEpochs,
            claim_window_epochs: p.econ.claimWindowEpochs,
            activation_epochs: p.econ.activationEpochs,
            max_join_bps: p.econ.maxJoinBps,
            idle_timeout: p.econ.idleTimeout,
            job_grace_period: p.econ.jobGracePeriod,
            max_escrow_bps: p.econ.maxEscrowBps,
            treasury: p.treasury,
        }
    }
}

/// The roles an address can register for; one registration per role per address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Submits jobs; locks collateral.
    User = 0,
    /// Runs tasks; stakes collateral; can be blacklisted (and is then slashed).
    Worker = 1,
    /// Schedules, verifies, proposes and votes; locks collateral; can be removed.
    Validator = 2,
}

/// How an epoch recorded a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobResult {
    /// Done and verified: its payment went to the epoch's reward pot.
    Completed = 1,
    /// Failed: the user can claim a refund.
    Failed = 2,
    /// Deadline passed unfinished: the user can claim a refund.
    Expired = 3,
}

/// A worker proven to have cheated, with the hash of the fraud proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlacklistEntry {
    /// The cheating worker.
    pub worker: Address,
    /// Hash of the fraud proof anyone can re-check.
    pub evidence: B256,
}

/// Everything an executed epoch changes. Validators build it off chain; its
/// [`hash`](EpochSummary::hash) is what they propose and vote on, and the contract
/// recomputes it from the calldata at execution.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EpochSummary {
    /// The epoch being executed.
    pub epoch: u64,
    /// Root of a [`JobResultsTree`](crate::JobResultsTree).
    pub job_results_root: B256,
    /// Sum of the payments of the jobs completed in this epoch (leaves from escrow).
    pub released_payments: U256,
    /// Root of a [`RewardTree`](crate::RewardTree).
    pub worker_reward_root: B256,
    /// Sum of all worker reward leaves.
    pub worker_reward_total: U256,
    /// Root of a [`ReputationTree`](crate::ReputationTree).
    pub reputation_root: B256,
    /// Workers to blacklist.
    pub blacklist: Vec<BlacklistEntry>,
    /// Validators to remove (slashed; they cannot register again from the same address).
    pub remove_validators: Vec<Address>,
    /// Keys ([`job_key`](crate::job_key)) of the completed jobs whose escrow this epoch
    /// releases, strictly ascending; their payments sum to `released_payments`.
    pub released_jobs: Vec<B256>,
}

impl EpochSummary {
    /// An empty summary for `epoch` (no jobs, no rewards, no changes).
    pub fn empty(epoch: u64) -> Self {
        Self {
            epoch,
            ..Self::default()
        }
    }

    /// The canonical summary hash: `keccak256(abi.encode(summary))`, as the contract
    /// computes it.
    pub fn hash(&self) -> B256 {
        keccak256(self.to_sol().abi_encode())
    }

    pub(crate) fn to_sol(&self) -> core::EpochSummary {
        core::EpochSummary {
            epoch: U256::from(self.epoch),
            jobResultsRoot: self.job_results_root,
            releasedPayments: self.released_payments,
            workerRewardRoot: self.worker_reward_root,
            workerRewardTotal: self.worker_reward_total,
            reputationRoot: self.reputation_root,
            blacklist: self
                .blacklist
                .iter()
                .map(|b| core::BlacklistEntry {
                    worker: b.worker,
                    evidence: b.evidence,
                })
                .collect(),
            removeValidators: self.remove_validators.clone(),
            releasedJobs: self.released_jobs.clone(),
        }
    }
}

/// A registration as the contract stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration {
    /// Hash of the node's network key.
    pub node_key_hash: B256,
    /// SNO locked.
    pub collateral: U256,
    /// When the collateral can be withdrawn (0 while active).
    pub unlock_at: u64,
    /// Whether the role is active.
    pub active: bool,
    /// Validators: the first epoch in which it votes (0 for other roles).
    pub active_from: u64,
}

/// Where a job's escrow stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// No such job.
    None,
    /// Payment held by the contract (until released by an epoch or refunded).
    Escrowed,
    /// Payment returned to the user.
    Refunded,
    /// Payment released by an executed epoch into its reward pot.
    Released,
}

/// A job as the contract stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobInfo {
    /// Who requested it.
    pub user: Address,
    /// Its deadline (Unix seconds); `job_grace_period` later an unreported job can be
    /// reclaimed.
    pub deadline: u64,
    /// Its escrow state.
    pub state: JobState,
    /// The escrowed payment.
    pub payment: U256,
    /// The epoch that was current when it was requested.
    pub requested_in_epoch: u64,
}

/// What an executed epoch recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochRecord {
    /// The executed summary's hash.
    pub summary_hash: B256,
    /// Its job results root.
    pub job_results_root: B256,
    /// Its worker reward root.
    pub worker_reward_root: B256,
    /// Its reputation root.
    pub reputation_root: B256,
    /// Its committed worker reward total.
    pub worker_reward_total: U256,
    /// How much of that total has been claimed.
    pub claimed: U256,
    /// SNO minted for it.
    pub emission: U256,
    /// Job payments it released from escrow.
    pub released_payments: U256,
    /// When it executed (0: not executed).
    pub executed_at: u64,
    /// Active votes it executed with.
    pub votes: u32,
    /// Whether its unclaimed rewards were swept to the treasury.
    pub swept: bool,
}

/// The proposal window of the current epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundInfo {
    /// The epoch the next execution finalises.
    pub epoch: u64,
    /// When proposals for it open.
    pub proposals_open_at: u64,
    /// Whether they are open now.
    pub open: bool,
    /// The current round (0 before opening).
    pub round: u32,
    /// Who may propose in this round (empty before opening).
    pub proposers: Vec<Address>,
}

/// A proposal and its votes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalInfo {
    /// Who proposed it.
    pub proposer: Address,
    /// In which round.
    pub round: u32,
    /// Everyone who voted for it, the proposer first.
    pub voters: Vec<Address>,
}

/// What a mined transaction cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxReceipt {
    /// Gas used, as in the receipt.
    pub gas_used: u64,
    /// The block it was mined in.
    pub block_number: u64,
    /// Its hash (zero on the embedded chain, which does not sign transactions).
    pub tx_hash: B256,
}

/// The storage key of `user`'s job `job_id`: `keccak256(abi.encode(user, job_id))`, as
/// the contract's `jobKey` computes it. Job ids are namespaced by their user; job-result
/// leaves and released-job lists use this key.
pub fn job_key(user: Address, job_id: B256) -> B256 {
    keccak256((user, job_id).abi_encode())
}

/// The libp2p peer id bytes of a secp256k1 public key given as 64 bytes `x || y`: the
/// identity multihash of its protobuf encoding, `00 25 08 02 12 21 || compressed key`.
pub fn secp256k1_peer_id_bytes(public_key: &[u8; 64]) -> [u8; 39] {
    let mut out = [0u8; 39];
    out[..6].copy_from_slice(&[0x00, 0x25, 0x08, 0x02, 0x12, 0x21]);
    out[6] = if public_key[63] & 1 == 0 { 0x02 } else { 0x03 };
    out[7..].copy_from_slice(&public_key[..32]);
    out
}

/// The node key hash a registration records for the account whose public key is
/// `public_key`: `keccak256` of its secp256k1 libp2p peer id (see
/// [`secp256k1_peer_id_bytes`]); the contract's `nodeKeyHashOf`.
pub fn node_key_hash_of(public_key: &[u8; 64]) -> B256 {
    keccak256(secp256k1_peer_id_bytes(public_key))
}
