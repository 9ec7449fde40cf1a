//! The deterministic half of epochs: the wire types validators gossip (signed receipt
//! batches, proposal contents) and the [`Ledger`] that turns batches into an epoch's
//! summary, checks a proposed one, and records what executed epochs counted.
//!
//! Nothing here touches the network or the chain: the same inputs give the same summary,
//! bit for bit, on every validator (see ARCHITECTURE.md, "Epochs").

use crate::net::proto::{encode, Hash, Receipt};
use libp2p::identity::{Keypair, PublicKey};
use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use smartnodes_contracts::{
    job_key, keccak256, Address, BlacklistEntry, EpochSummary, JobResult, JobResultsTree, Params,
    ReputationTree, RewardTree, B256, U256,
};
use smartnodes_runtime::sha256;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Bounds of the epoch messages (each fits one gossip message, [`crate::net::proto::limits::GOSSIP`]).
pub mod limits {
    /// Receipts in one batch.
    pub const BATCH_CREDITS: usize = 96;
    /// Batches one proposal counts.
    pub const PROPOSAL_BATCHES: usize = 256;
    /// Workers one proposal rewards.
    pub const PROPOSAL_WORKERS: usize = 256;
    /// Blacklist entries in one proposal.
    pub const PROPOSAL_BLACKLIST: usize = 32;
    /// Completed jobs whose escrow one proposal releases.
    pub const PROPOSAL_JOBS: usize = 128;
    /// Uncounted batches a validator holds; beyond it new batches are refused (they are
    /// republished by their validator until counted).
    pub const HELD_BATCHES: usize = 100_000;
}

/// The hash a node registers on chain as its node key: `keccak256(peer id bytes)`.
pub fn node_key_hash(peer: &PeerId) -> B256 {
    keccak256(peer.to_bytes())
}

/// The chain address of the node whose peer id bytes are `peer`, when its libp2p key is a
/// secp256k1 key (a node's peer id is its chain key: ARCHITECTURE.md, "Node identity"):
/// the last 20 bytes of keccak256 of the uncompressed public key.
pub fn address_of_peer(peer: &[u8]) -> Option<[u8; 20]> {
    let compressed = peer.strip_prefix(&[0x00, 0x25, 0x08, 0x02, 0x12, 0x21])?;
    let key = k256::PublicKey::from_sec1_bytes(compressed).ok()?;
    let point = k256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&key, false);
    let hash = keccak256(&point.as_bytes()[1..]);
    let mut out = [0u8; 20];
    out.copy_from_slice(&hash[12..]);
    Some(out)
}

/// One accepted receipt and the chain address of its worker (checked on chain by the
/// accepting validator and again by every validator that reads the batch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credit {
    /// The worker's signed receipt.
    pub receipt: Receipt,
    /// The worker's registered chain address.
    pub address: [u8; 20],
    /// Tasks in the receipt's job (a job completes when that many of its tasks counted).
    pub tasks: u32,
    /// The chain address of the job's owner (derived from its spec's owner peer id by the
    /// accepting validator; zero when unknown): job ids are namespaced by user on chain,
    /// so the job's escrow is `job_key(user, job id)`.
    pub user: [u8; 20],
}

/// What a validator signs: receipts it accepted, stamped with the chain epoch that was
/// open (not yet executed) when it sealed them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchBody {
    /// The validator's peer id bytes.
    pub validator: Vec<u8>,
    /// The validator's chain address (its registration's node key must be its peer id).
    pub address: [u8; 20],
    /// The epoch the receipts belong to at the earliest.
    pub epoch: u64,
    /// The validator's sequence number (makes every batch distinct).
    pub seq: u64,
    /// At most [`limits::BATCH_CREDITS`].
    pub credits: Vec<Credit>,
}

/// A batch signed by its validator's libp2p key. Its id is `sha256(postcard(self))`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedBatch {
    /// What is signed.
    pub body: BatchBody,
    /// The validator's public key, protobuf-encoded.
    pub public_key: Vec<u8>,
    /// Its signature over `postcard(body)`.
    pub signature: Vec<u8>,
}

impl SignedBatch {
    /// Signs `body` with `key`.
    pub fn sign(body: BatchBody, key: &Keypair) -> SignedBatch {
        let signature = key
            .sign(&encode(&body))
            .expect("ed25519 signing cannot fail");
        SignedBatch {
            body,
            public_key: key.public().encode_protobuf(),
            signature,
        }
    }

    /// The batch id.
    pub fn id(&self) -> Hash {
        sha256(&encode(self))
    }

    /// Checks the validator's signature, the bounds and every receipt's signature; returns
    /// the validator.
    pub fn check_form(&self) -> Result<PeerId, LedgerError> {
        let bad = |why: &str| LedgerError::BadBatch(why.to_string());
        if self.body.credits.is_empty() || self.body.credits.len() > limits::BATCH_CREDITS {
            return Err(bad("credit count out of range"));
        }
        let key = PublicKey::try_decode_protobuf(&self.public_key)
            .map_err(|_| bad("bad validator key"))?;
        let validator = key.to_peer_id();
        if validator.to_bytes() != self.body.validator {
            return Err(bad("signed by someone other than its validator"));
        }
        if !key.verify(&encode(&self.body), &self.signature) {
            return Err(bad("bad validator signature"));
        }
        for c in &self.body.credits {
            c.receipt
                .verify()
                .map_err(|e| bad(&format!("receipt: {e}")))?;
        }
        Ok(validator)
    }
}

/// A blacklist entry as proposals carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlacklistItem {
    /// The worker's peer id bytes.
    pub peer: Vec<u8>,
    /// Its chain address.
    pub address: [u8; 20],
    /// The id of the fraud proof (`FraudProof::id`).
    pub proof: Hash,
}

/// Everything needed to rebuild a proposed [`EpochSummary`] and check it: the batches it
/// counts and what they produce. Validators recompute the derived fields from the batches;
/// workers only need `rewards` (and rebuild the summary to match the executed hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalContent {
    /// The epoch.
    pub epoch: u64,
    /// Ids of the counted batches, strictly ascending.
    pub batches: Vec<Hash>,
    /// Workers blacklisted by this epoch, strictly ascending by address.
    pub blacklist: Vec<BlacklistItem>,
    /// `(worker address, amount)` big-endian, strictly ascending by address, no zero.
    pub rewards: Vec<([u8; 20], [u8; 32])>,
    /// `(worker address, counted receipts)`, strictly ascending by address.
    pub scores: Vec<([u8; 20], u64)>,
    /// `(job key, escrowed payment)` of completed jobs whose escrow this epoch releases,
    /// strictly ascending by key (`job_key(user, job id)`, the contract's escrow key).
    pub jobs: Vec<(Hash, [u8; 32])>,
}

impl ProposalContent {
    /// Checks the bounds (a peer may send anything).
    pub fn check_bounds(&self) -> Result<(), LedgerError> {
        if self.batches.len() > limits::PROPOSAL_BATCHES
            || self.rewards.len() > limits::PROPOSAL_WORKERS
            || self.scores.len() > limits::PROPOSAL_WORKERS
            || self.blacklist.len() > limits::PROPOSAL_BLACKLIST
            || self.jobs.len() > limits::PROPOSAL_JOBS
        {
            return Err(LedgerError::TooLarge);
        }
        Ok(())
    }

    /// The reward tree of this content.
    pub fn reward_tree(&self) -> Option<RewardTree> {
        RewardTree::new(
            self.epoch,
            self.rewards
                .iter()
                .map(|(a, v)| (Address::from(*a), U256::from_be_bytes(*v))),
        )
    }

    /// The summary this content proposes (`None` if the rewards overflow).
    pub fn summary(&self) -> Option<EpochSummary> {
        let rewards = self.reward_tree()?;
        let reputation = ReputationTree::new(
            self.epoch,
            self.scores.iter().map(|(a, s)| (Address::from(*a), *s)),
        );
        let mut released = U256::ZERO;
        for (_, p) in &self.jobs {
            released = released.checked_add(U256::from_be_bytes(*p))?;
        }
        let job_results_root = if self.jobs.is_empty() {
            B256::ZERO
        } else {
            JobResultsTree::new(
                self.epoch,
                self.jobs
                    .iter()
                    .map(|(j, _)| (B256::from(*j), JobResult::Completed)),
            )
            .root()
        };
        Some(EpochSummary {
            epoch: self.epoch,
            job_results_root,
            released_payments: released,
            worker_reward_root: rewards.root(),
            worker_reward_total: rewards.total(),
            reputation_root: reputation.root(),
            released_jobs: self.jobs.iter().map(|(k, _)| B256::from(*k)).collect(),
            blacklist: self
                .blacklist
                .iter()
                .map(|b| BlacklistEntry {
                    worker: Address::from(b.address),
                    evidence: B256::from(b.proof),
                })
                .collect(),
            remove_validators: Vec::new(),
        })
    }

    /// The summary hash (what is proposed and voted on).
    pub fn hash(&self) -> Option<B256> {
        self.summary().map(|s| s.hash())
    }
}

/// Epoch messages on [`crate::net::proto::protocols::TOPIC_EPOCHS`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum EpochGossip {
    /// Receipts a validator accepted.
    Batch(SignedBatch),
    /// The content of a proposal made on chain (anyone may relay it: it is checked
    /// against the on-chain hash).
    Proposal(ProposalContent),
}

/// Why a batch or a proposal is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// A batch is malformed or badly signed.
    #[error("bad batch: {0}")]
    BadBatch(String),
    /// More items than the bounds allow.
    #[error("proposal too large")]
    TooLarge,
    /// A list is not strictly ascending.
    #[error("{0} not strictly ascending")]
    Unsorted(&'static str),
    /// A counted batch is not held here (yet).
    #[error("unknown batch {0}")]
    UnknownBatch(String),
    /// A batch counted by an executed epoch, or stamped after this one.
    #[error("batch {0} is not countable in this epoch")]
    NotCountable(String),
    /// A batch held here, old enough that it must be counted, is left out.
    #[error("batch {0} is missing")]
    MissingBatch(String),
    /// A blacklist entry this validator does not know of.
    #[error("unknown blacklist entry for {0}")]
    UnknownBlacklist(String),
    /// A credited worker is blacklisted here.
    #[error("credits blacklisted worker {0}")]
    CreditsBlacklisted(String),
    /// The derived fields differ from this validator's computation.
    #[error("the summary differs from ours")]
    Mismatch,
    /// Reward arithmetic overflowed.
    #[error("reward overflow")]
    Overflow,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct HeldCredit {
    task: (Hash, u32),
    peer: Vec<u8>,
    address: [u8; 20],
    fuel: u64,
    tasks: u32,
    user: [u8; 20],
}

/// Escrowed payments of jobs by their on-chain key (`job_key(user, job id)`), as the chain
/// holds them: only jobs escrowed in an epoch before the one summarised are eligible (that
/// part of the chain no longer changes, so every validator reads the same).
pub type Escrows = BTreeMap<Hash, U256>;

/// The on-chain escrow key of `user`'s job `job`.
pub fn escrow_key(user: &[u8; 20], job: &Hash) -> Hash {
    job_key(Address::from(*user), B256::from(*job)).0
}

/// What counting some batches gives (before rewards).
#[derive(Debug, Default)]
struct Tally {
    fuel: BTreeMap<[u8; 20], u128>,
    scores: BTreeMap<[u8; 20], u64>,
    /// Escrow keys of jobs complete once these batches count.
    completed: BTreeSet<Hash>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct HeldBatch {
    epoch: u64,
    credits: Vec<HeldCredit>,
}

/// Executed contents a ledger keeps (and serves).
pub const KEPT_EXECUTED: usize = 64;

/// A [`Ledger`] as stored in sled (the driver adds its own state).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LedgerSnapshot {
    batches: Vec<(Hash, HeldBatch)>,
    counted_batches: Vec<Hash>,
    counted_tasks: Vec<(Hash, u32)>,
    blacklist: Vec<(Vec<u8>, Hash)>,
    chain_blacklisted: Vec<Vec<u8>>,
    addresses: Vec<(Vec<u8>, [u8; 20])>,
    executed: Vec<(u64, ProposalContent)>,
    job_progress: Vec<(Hash, (u32, u32))>,
    released: Vec<Hash>,
    job_users: Vec<(Hash, Vec<[u8; 20]>)>,
    /// The driver: the epoch it works on.
    pub epoch: u64,
    /// The driver: its last batch sequence number.
    pub seq: u64,
    /// The driver: its own batches not counted yet.
    pub own_batches: Vec<SignedBatch>,
}

/// What one validator knows about epochs: held batches, what executed epochs counted,
/// blacklists. Deterministic: see the module docs.
#[derive(Debug)]
pub struct Ledger {
    params: Params,
    batches: BTreeMap<Hash, HeldBatch>,
    counted_batches: HashSet<Hash>,
    counted_tasks: HashSet<(Hash, u32)>,
    /// Workers this validator holds a fraud proof against: peer bytes -> smallest proof id.
    blacklist: BTreeMap<Vec<u8>, Hash>,
    /// Workers blacklisted by executed epochs.
    chain_blacklisted: HashSet<Vec<u8>>,
    /// Worker peer bytes -> chain address, as seen in batches.
    addresses: HashMap<Vec<u8>, [u8; 20]>,
    /// Executed epochs' contents.
    executed: BTreeMap<u64, ProposalContent>,
    /// Per job: tasks counted by executed epochs, and its task count.
    job_progress: HashMap<Hash, (u32, u32)>,
    /// Escrow keys of jobs whose escrow an executed epoch released.
    released: HashSet<Hash>,
    /// Per job: the users that counted credits named (normally one, its owner).
    job_users: HashMap<Hash, BTreeSet<[u8; 20]>>,
}

impl Ledger {
    /// An empty ledger for a chain with `params`.
    pub fn new(params: Params) -> Ledger {
        Ledger {
            params,
            batches: BTreeMap::new(),
            counted_batches: HashSet::new(),
            counted_tasks: HashSet::new(),
            blacklist: BTreeMap::new(),
            chain_blacklisted: HashSet::new(),
            addresses: HashMap::new(),
            executed: BTreeMap::new(),
            job_progress: HashMap::new(),
            released: HashSet::new(),
            job_users: HashMap::new(),
        }
    }

    /// The chain parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Everything the ledger holds, to store (the driver's fields are left default).
    pub fn snapshot(&self) -> LedgerSnapshot {
        LedgerSnapshot {
            batches: self.batches.iter().map(|(k, v)| (*k, v.clone())).collect(),
            counted_batches: self.counted_batches.iter().copied().collect(),
            counted_tasks: self.counted_tasks.iter().copied().collect(),
            blacklist: self
                .blacklist
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            chain_blacklisted: self.chain_blacklisted.iter().cloned().collect(),
            addresses: self
                .addresses
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            executed: self.executed.iter().map(|(k, v)| (*k, v.clone())).collect(),
            job_progress: self.job_progress.iter().map(|(k, v)| (*k, *v)).collect(),
            released: self.released.iter().copied().collect(),
            job_users: self
                .job_users
                .iter()
                .map(|(j, u)| (*j, u.iter().copied().collect()))
                .collect(),
            ..LedgerSnapshot::default()
        }
    }

    /// A ledger restored from a snapshot.
    pub fn restore(params: Params, s: LedgerSnapshot) -> Ledger {
        Ledger {
            params,
            batches: s.batches.into_iter().collect(),
            counted_batches: s.counted_batches.into_iter().collect(),
            counted_tasks: s.counted_tasks.into_iter().collect(),
            blacklist: s.blacklist.into_iter().collect(),
            chain_blacklisted: s.chain_blacklisted.into_iter().collect(),
            addresses: s.addresses.into_iter().collect(),
            executed: s.executed.into_iter().collect(),
            job_progress: s.job_progress.into_iter().collect(),
            released: s.released.into_iter().collect(),
            job_users: s
                .job_users
                .into_iter()
                .map(|(j, u)| (j, u.into_iter().collect()))
                .collect(),
        }
    }

    /// Holds a batch whose form (signatures) and registrations were checked by the caller.
    /// Returns false when it was already held, already counted, or the ledger is full.
    pub fn insert_batch(&mut self, batch: &SignedBatch) -> bool {
        let id = batch.id();
        if self.batches.contains_key(&id)
            || self.counted_batches.contains(&id)
            || self.batches.len() >= limits::HELD_BATCHES
        {
            return false;
        }
        let credits = batch
            .body
            .credits
            .iter()
            .map(|c| {
                let b = &c.receipt.body;
                self.addresses.insert(b.worker.clone(), c.address);
                HeldCredit {
                    task: (b.job_id, b.index),
                    peer: b.worker.clone(),
                    address: c.address,
                    fuel: b.fuel_used,
                    tasks: c.tasks,
                    user: c.user,
                }
            })
            .collect();
        self.batches.insert(
            id,
            HeldBatch {
                epoch: batch.body.epoch,
                credits,
            },
        );
        true
    }

    /// Whether the batch `id` is held (counted or not).
    pub fn has_batch(&self, id: &Hash) -> bool {
        self.batches.contains_key(id) || self.counted_batches.contains(id)
    }

    /// Whether the batch `id` was counted by an executed epoch.
    pub fn is_counted(&self, id: &Hash) -> bool {
        self.counted_batches.contains(id)
    }

    /// Records a fraud proof against `worker` (the verification code calls this when it
    /// blacklists): the worker's uncounted receipts are forfeited and the next summary
    /// blacklists it on chain with the smallest proof id known.
    pub fn blacklist(&mut self, worker: &PeerId, proof_id: Hash) {
        let slot = self.blacklist.entry(worker.to_bytes()).or_insert(proof_id);
        if proof_id < *slot {
            *slot = proof_id;
        }
    }

    /// Records `worker`'s chain address as its registration with this validator proved it
    /// (checked on chain), for a worker that may have no credited receipt: one caught
    /// before any of its receipts was sealed into a batch (a receipt false by its form is
    /// refused before it is acknowledged) would otherwise never be blacklisted on chain,
    /// since a blacklist entry needs the address. An address learned from a credit wins.
    pub fn learn_address(&mut self, worker: &PeerId, address: [u8; 20]) {
        self.addresses.entry(worker.to_bytes()).or_insert(address);
    }

    /// Whether `worker` is blacklisted here or on chain.
    pub fn is_blacklisted(&self, worker: &PeerId) -> bool {
        let p = worker.to_bytes();
        self.blacklist.contains_key(&p) || self.chain_blacklisted.contains(&p)
    }

    /// The executed epochs' contents.
    pub fn executed(&self) -> &BTreeMap<u64, ProposalContent> {
        &self.executed
    }

    /// Jobs that appear in held uncounted batches or completed without being released:
    /// the ones whose escrow the caller reads from the chain before [`Ledger::build`] and
    /// [`Ledger::check`].
    pub fn jobs_of_interest(&self) -> BTreeSet<Hash> {
        let mut jobs: BTreeSet<Hash> = self
            .batches
            .values()
            .flat_map(|b| b.credits.iter().map(|c| escrow_key(&c.user, &c.task.0)))
            .collect();
        for (job, (done, total)) in &self.job_progress {
            if done >= total {
                for user in self.job_users.get(job).into_iter().flatten() {
                    let key = escrow_key(user, job);
                    if !self.released.contains(&key) {
                        jobs.insert(key);
                    }
                }
            }
        }
        jobs
    }

    /// The proposal this validator makes for `epoch`: every held uncounted batch stamped
    /// `<= epoch` (oldest first, bounded), every blacklist entry not yet on chain, and
    /// every completed job with an eligible escrow in `escrows`.
    pub fn build(&self, epoch: u64, escrows: &Escrows) -> Result<ProposalContent, LedgerError> {
        let mut ids: Vec<(u64, Hash)> = self
            .batches
            .iter()
            .filter(|(_, b)| b.epoch <= epoch)
            .map(|(id, b)| (b.epoch, *id))
            .collect();
        ids.sort();
        let mut blacklist: Vec<BlacklistItem> = self
            .blacklist
            .iter()
            .filter(|(p, _)| !self.chain_blacklisted.contains(*p))
            .filter_map(|(p, proof)| {
                self.addresses.get(p).map(|a| BlacklistItem {
                    peer: p.clone(),
                    address: *a,
                    proof: *proof,
                })
            })
            .collect();
        blacklist.sort_by_key(|b| b.address);
        blacklist.dedup_by_key(|b| b.address);
        blacklist.truncate(limits::PROPOSAL_BLACKLIST);
        let mut take = ids.len().min(limits::PROPOSAL_BATCHES);
        loop {
            let mut batches: Vec<Hash> = ids[..take].iter().map(|(_, id)| *id).collect();
            batches.sort();
            match self.compute(epoch, batches, blacklist.clone(), escrows) {
                Err(LedgerError::TooLarge) if take > 1 => take /= 2,
                other => return other,
            }
        }
    }

    fn tally(
        &self,
        epoch: u64,
        batches: &[Hash],
        blacklist: &[BlacklistItem],
    ) -> Result<Tally, LedgerError> {
        let excluded: HashSet<&Vec<u8>> = blacklist
            .iter()
            .map(|b| &b.peer)
            .chain(self.chain_blacklisted.iter())
            .collect();
        let mut seen: HashSet<(Hash, u32)> = HashSet::new();
        let mut tally = Tally::default();
        let mut progress: HashMap<Hash, (u32, u32)> = HashMap::new();
        let mut users: HashMap<Hash, BTreeSet<[u8; 20]>> = HashMap::new();
        for id in batches {
            let held =
                self.batches
                    .get(id)
                    .ok_or_else(|| match self.counted_batches.contains(id) {
                        true => LedgerError::NotCountable(hex::encode(id)),
                        false => LedgerError::UnknownBatch(hex::encode(id)),
                    })?;
            if held.epoch > epoch {
                return Err(LedgerError::NotCountable(hex::encode(id)));
            }
            for c in &held.credits {
                if self.counted_tasks.contains(&c.task) || !seen.insert(c.task) {
                    continue;
                }
                if excluded.contains(&c.peer) {
                    continue; // forfeited
                }
                *tally.fuel.entry(c.address).or_default() += u128::from(c.fuel);
                *tally.scores.entry(c.address).or_default() += 1;
                users.entry(c.task.0).or_default().insert(c.user);
                let p = progress.entry(c.task.0).or_insert_with(|| {
                    let (done, _) = self.job_progress.get(&c.task.0).copied().unwrap_or((0, 0));
                    (done, c.tasks)
                });
                p.0 += 1;
            }
        }
        // A job's escrow keys: one per user named by its counted credits, now or before.
        let keys = |job: &Hash, now: Option<&BTreeSet<[u8; 20]>>| -> Vec<Hash> {
            now.into_iter()
                .flatten()
                .chain(self.job_users.get(job).into_iter().flatten())
                .map(|u| escrow_key(u, job))
                .collect()
        };
        for (job, (done, total)) in &progress {
            if done >= total && *total > 0 {
                tally.completed.extend(keys(job, users.get(job)));
            }
        }
        // Completed before, not released yet (e.g. escrowed late).
        for (job, (done, total)) in &self.job_progress {
            if done >= total && *total > 0 {
                tally.completed.extend(keys(job, None));
            }
        }
        tally.completed.retain(|k| !self.released.contains(k));
        Ok(tally)
    }

    /// Derives the rewards, scores and released jobs of `batches` with `blacklist`:
    /// credits are the fuel of each task's first receipt (batches in id order) not counted
    /// before and not from a blacklisted worker; a job whose tasks have all counted and
    /// whose escrow is in `escrows` is released; workers share `(emission + released) *
    /// workerBps / 10_000` pro rata to credit, rounded down (the remainder goes to the
    /// treasury on chain).
    pub fn compute(
        &self,
        epoch: u64,
        batches: Vec<Hash>,
        blacklist: Vec<BlacklistItem>,
        escrows: &Escrows,
    ) -> Result<ProposalContent, LedgerError> {
        if batches.windows(2).any(|w| w[0] >= w[1]) {
            return Err(LedgerError::Unsorted("batches"));
        }
        if blacklist.windows(2).any(|w| w[0].address >= w[1].address) {
            return Err(LedgerError::Unsorted("blacklist"));
        }
        if batches.len() > limits::PROPOSAL_BATCHES || blacklist.len() > limits::PROPOSAL_BLACKLIST
        {
            return Err(LedgerError::TooLarge);
        }
        let tally = self.tally(epoch, &batches, &blacklist)?;
        if tally.fuel.len() > limits::PROPOSAL_WORKERS {
            return Err(LedgerError::TooLarge);
        }
        let jobs: Vec<(Hash, U256)> = tally
            .completed
            .iter()
            .filter_map(|j| escrows.get(j).map(|p| (*j, *p)))
            .filter(|(_, p)| !p.is_zero())
            .take(limits::PROPOSAL_JOBS)
            .collect();
        let mut released = U256::ZERO;
        for (_, p) in &jobs {
            released = released.checked_add(*p).ok_or(LedgerError::Overflow)?;
        }
        let total: u128 = tally.fuel.values().sum();
        let pot = self
            .params
            .emission_at(epoch)
            .checked_add(released)
            .ok_or(LedgerError::Overflow)?;
        let cap = pot
            .checked_mul(U256::from(self.params.worker_bps))
            .ok_or(LedgerError::Overflow)?
            / U256::from(10_000u64);
        let mut rewards = Vec::new();
        if total > 0 {
            for (address, f) in &tally.fuel {
                let amount = cap
                    .checked_mul(U256::from(*f))
                    .ok_or(LedgerError::Overflow)?
                    / U256::from(total);
                if !amount.is_zero() {
                    rewards.push((*address, amount.to_be_bytes::<32>()));
                }
            }
        }
        Ok(ProposalContent {
            epoch,
            batches,
            blacklist,
            rewards,
            scores: tally.scores.into_iter().collect(),
            jobs: jobs
                .into_iter()
                .map(|(j, p)| (j, p.to_be_bytes::<32>()))
                .collect(),
        })
    }

    /// Whether this validator votes for `content`: every batch is held and countable,
    /// nothing old enough is left out, every blacklist entry is known here, no credited
    /// worker is blacklisted here, and the derived fields (with the same `escrows`) equal
    /// its own computation.
    pub fn check(
        &self,
        epoch: u64,
        content: &ProposalContent,
        escrows: &Escrows,
    ) -> Result<(), LedgerError> {
        content.check_bounds()?;
        if content.epoch != epoch {
            return Err(LedgerError::Mismatch);
        }
        for item in &content.blacklist {
            let known = self.blacklist.contains_key(&item.peer)
                && self.addresses.get(&item.peer) == Some(&item.address);
            if !known {
                return Err(LedgerError::UnknownBlacklist(hex::encode(item.address)));
            }
        }
        if content.batches.len() < limits::PROPOSAL_BATCHES {
            let included: BTreeSet<&Hash> = content.batches.iter().collect();
            if let Some((id, _)) = self
                .batches
                .iter()
                .find(|(id, b)| b.epoch < epoch && !included.contains(id))
            {
                return Err(LedgerError::MissingBatch(hex::encode(id)));
            }
        }
        let ours = self.compute(
            epoch,
            content.batches.clone(),
            content.blacklist.clone(),
            escrows,
        )?;
        for (address, _) in &ours.rewards {
            if let Some((peer, _)) = self
                .addresses
                .iter()
                .find(|(p, a)| *a == address && self.blacklist.contains_key(*p))
            {
                return Err(LedgerError::CreditsBlacklisted(hex::encode(peer)));
            }
        }
        if &ours != content {
            return Err(LedgerError::Mismatch);
        }
        Ok(())
    }

    /// Records that `content` executed: its batches and their tasks are counted (never
    /// again), its jobs released, its blacklist on chain.
    pub fn on_executed(&mut self, content: ProposalContent) {
        for id in &content.batches {
            if let Some(b) = self.batches.remove(id) {
                for c in b.credits {
                    if self.counted_tasks.insert(c.task) {
                        let p = self.job_progress.entry(c.task.0).or_insert((0, c.tasks));
                        p.0 += 1;
                        self.job_users.entry(c.task.0).or_default().insert(c.user);
                    }
                }
            }
            self.counted_batches.insert(*id);
        }
        for (job, _) in &content.jobs {
            self.released.insert(*job);
        }
        for item in &content.blacklist {
            self.chain_blacklisted.insert(item.peer.clone());
        }
        self.executed.insert(content.epoch, content);
        while self.executed.len() > KEPT_EXECUTED {
            self.executed.pop_first();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::proto::ReceiptBody;
    use smartnodes_contracts::sno;

    fn receipt(worker: &Keypair, job: u8, index: u32, fuel: u64) -> Receipt {
        Receipt::sign(
            ReceiptBody {
                job_id: [job; 32],
                index,
                task: [0; 32],
                verdict: (0, 0),
                output_hash: None,
                fuel_used: fuel,
                engine: [0; 32],
                worker: worker.public().to_peer_id().to_bytes(),
            },
            worker,
        )
    }

    fn batch(v: &Keypair, epoch: u64, seq: u64, credits: Vec<Credit>) -> SignedBatch {
        SignedBatch::sign(
            BatchBody {
                validator: v.public().to_peer_id().to_bytes(),
                address: [9; 20],
                epoch,
                seq,
                credits,
            },
            v,
        )
    }

    fn none() -> Escrows {
        Escrows::new()
    }

    fn params() -> Params {
        Params::new(Address::ZERO)
    }

    #[test]
    fn rewards_are_pro_rata_to_fuel_and_capped() {
        let v = Keypair::generate_ed25519();
        let (w1, w2) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let b = batch(
            &v,
            1,
            0,
            vec![
                Credit {
                    user: [0; 20],
                    receipt: receipt(&w1, 1, 0, 100),
                    address: [1; 20],
                    tasks: 2,
                },
                Credit {
                    user: [0; 20],
                    receipt: receipt(&w2, 1, 1, 200),
                    address: [2; 20],
                    tasks: 2,
                },
                // The same task again: counted once.
                Credit {
                    user: [0; 20],
                    receipt: receipt(&w2, 1, 0, 999),
                    address: [2; 20],
                    tasks: 2,
                },
            ],
        );
        b.check_form().unwrap();
        let mut ledger = Ledger::new(params());
        assert!(ledger.insert_batch(&b));
        assert!(!ledger.insert_batch(&b), "held once");
        let content = ledger.build(1, &none()).unwrap();
        let cap = sno(1_000) * U256::from(8_500) / U256::from(10_000);
        let r: Vec<U256> = content
            .rewards
            .iter()
            .map(|(_, a)| U256::from_be_bytes(*a))
            .collect();
        assert_eq!(
            r,
            vec![cap / U256::from(3), cap * U256::from(2) / U256::from(3)]
        );
        assert!(content.reward_tree().unwrap().total() <= cap);
        ledger.check(1, &content, &none()).unwrap();

        // Counted once: after execution the next epoch has nothing.
        ledger.on_executed(content.clone());
        let next = ledger.build(2, &none()).unwrap();
        assert!(next.batches.is_empty() && next.rewards.is_empty());
        assert!(
            !ledger.insert_batch(&b),
            "a counted batch is not held again"
        );
        assert_eq!(
            ledger.compute(2, content.batches.clone(), vec![], &none()),
            Err(LedgerError::NotCountable(hex::encode(content.batches[0])))
        );
    }

    #[test]
    fn tampered_missing_and_blacklisted_summaries_are_refused() {
        let v = Keypair::generate_ed25519();
        let (w1, w2) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let credit = |w: &Keypair, i, a| Credit {
            user: [0; 20],
            receipt: receipt(w, 2, i, 50),
            address: [a; 20],
            tasks: 100,
        };
        let b1 = batch(&v, 1, 0, vec![credit(&w1, 0, 1)]);
        let b2 = batch(&v, 2, 1, vec![credit(&w2, 1, 2)]);
        let mut ledger = Ledger::new(params());
        ledger.insert_batch(&b1);
        ledger.insert_batch(&b2);
        let honest = ledger.build(2, &none()).unwrap();
        assert_eq!(honest.batches.len(), 2);
        ledger.check(2, &honest, &none()).unwrap();

        // Extra credit for a worker.
        let mut tampered = honest.clone();
        let mut amount = U256::from_be_bytes(tampered.rewards[0].1);
        amount += U256::from(1);
        tampered.rewards[0].1 = amount.to_be_bytes::<32>();
        assert_eq!(
            ledger.check(2, &tampered, &none()),
            Err(LedgerError::Mismatch)
        );

        // A batch from an older epoch left out.
        let mut without = ledger
            .compute(2, vec![b2.id()], vec![], &none())
            .expect("computes");
        assert_eq!(
            ledger.check(2, &without, &none()),
            Err(LedgerError::MissingBatch(hex::encode(b1.id())))
        );
        // A batch stamped this epoch may wait for the next one.
        without = ledger.compute(2, vec![b1.id()], vec![], &none()).unwrap();
        ledger.check(2, &without, &none()).unwrap();

        // An invented batch.
        let mut invented = honest.clone();
        invented.batches.push([0xff; 32]);
        assert!(matches!(
            ledger.check(2, &invented, &none()),
            Err(LedgerError::UnknownBatch(_))
        ));

        // Once w1 is blacklisted here, the honest summary of before credits a cheater, and
        // the new one forfeits its receipts and lists it.
        let w1_peer = w1.public().to_peer_id();
        ledger.blacklist(&w1_peer, [7; 32]);
        assert!(matches!(
            ledger.check(2, &honest, &none()),
            Err(LedgerError::CreditsBlacklisted(_))
        ));
        let after = ledger.build(2, &none()).unwrap();
        assert_eq!(after.blacklist.len(), 1);
        assert_eq!(after.blacklist[0].proof, [7; 32]);
        assert_eq!(after.rewards.len(), 1);
        assert_eq!(after.rewards[0].0, [2; 20]);
        ledger.check(2, &after, &none()).unwrap();
        let summary = after.summary().unwrap();
        assert_eq!(summary.blacklist[0].worker, Address::from([1; 20]));

        // A validator that does not know of the fraud proof does not vote for it.
        let mut other = Ledger::new(params());
        other.insert_batch(&b1);
        other.insert_batch(&b2);
        assert!(matches!(
            other.check(2, &after, &none()),
            Err(LedgerError::UnknownBlacklist(_))
        ));

        // After execution, the cheater's later receipts earn nothing.
        ledger.on_executed(after);
        let b3 = batch(&v, 3, 2, vec![credit(&w1, 5, 1), credit(&w2, 6, 2)]);
        ledger.insert_batch(&b3);
        let next = ledger.build(3, &none()).unwrap();
        assert!(next.blacklist.is_empty(), "already on chain");
        assert_eq!(next.rewards.len(), 1);
        assert_eq!(next.rewards[0].0, [2; 20]);
    }

    #[test]
    fn a_forged_batch_is_refused() {
        let v = Keypair::generate_ed25519();
        let w = Keypair::generate_ed25519();
        let mut b = batch(
            &v,
            1,
            0,
            vec![Credit {
                user: [0; 20],
                receipt: receipt(&w, 1, 0, 10),
                address: [1; 20],
                tasks: 2,
            }],
        );
        b.check_form().unwrap();
        b.body.credits[0].receipt.body.fuel_used = 1_000_000;
        assert!(b.check_form().is_err());
        let mut empty = batch(&v, 1, 1, vec![]);
        assert!(empty.check_form().is_err());
        empty.body.seq = 5;
        assert!(empty.check_form().is_err());
    }

    #[test]
    fn a_completed_escrowed_job_is_released_once_and_raises_the_pot() {
        let v = Keypair::generate_ed25519();
        let w = Keypair::generate_ed25519();
        let credit = |job: u8, i: u32| Credit {
            user: [0; 20],
            receipt: receipt(&w, job, i, 10),
            address: [1; 20],
            tasks: 2,
        };
        let mut ledger = Ledger::new(params());
        // Job 5: one of its two tasks in epoch 1; job 6 complete but not escrowed.
        ledger.insert_batch(&batch(
            &v,
            1,
            0,
            vec![credit(5, 0), credit(6, 0), credit(6, 1)],
        ));
        let mut escrows = Escrows::new();
        escrows.insert(escrow_key(&[0; 20], &[5; 32]), sno(100));
        let e1 = ledger.build(1, &escrows).unwrap();
        assert!(
            e1.jobs.is_empty(),
            "job 5 is not complete, job 6 not escrowed"
        );
        assert_eq!(e1.summary().unwrap().released_payments, U256::ZERO);
        ledger.on_executed(e1);
        assert!(
            ledger
                .jobs_of_interest()
                .contains(&escrow_key(&[0; 20], &[6; 32])),
            "completed, unreleased"
        );

        // Epoch 2: its second task completes it; the pot grows by its payment.
        ledger.insert_batch(&batch(&v, 2, 1, vec![credit(5, 1)]));
        let e2 = ledger.build(2, &escrows).unwrap();
        assert_eq!(
            e2.jobs,
            vec![(escrow_key(&[0; 20], &[5; 32]), sno(100).to_be_bytes::<32>())]
        );
        let summary = e2.summary().unwrap();
        assert_eq!(summary.released_payments, sno(100));
        assert_ne!(summary.job_results_root, B256::ZERO);
        let cap = (sno(1_000) + sno(100)) * U256::from(8_500) / U256::from(10_000);
        assert_eq!(summary.worker_reward_total, cap);
        ledger.check(2, &e2, &escrows).unwrap();
        // A voter that does not see the escrow does not agree.
        assert_eq!(ledger.check(2, &e2, &none()), Err(LedgerError::Mismatch));
        ledger.on_executed(e2);

        // Never twice; job 6, escrowed later, is released then.
        escrows.insert(escrow_key(&[0; 20], &[6; 32]), sno(7));
        let e3 = ledger.build(3, &escrows).unwrap();
        assert_eq!(
            e3.jobs,
            vec![(escrow_key(&[0; 20], &[6; 32]), sno(7).to_be_bytes::<32>())]
        );
        ledger.on_executed(e3);
        assert!(ledger.build(4, &escrows).unwrap().jobs.is_empty());
    }

    #[test]
    fn a_stored_ledger_restores_to_the_same_state() {
        let v = Keypair::generate_ed25519();
        let w = Keypair::generate_ed25519();
        let credit = |job: u8, i: u32| Credit {
            user: [0; 20],
            receipt: receipt(&w, job, i, 10 + u64::from(i)),
            address: [1; 20],
            tasks: 3,
        };
        let mut ledger = Ledger::new(params());
        ledger.insert_batch(&batch(&v, 1, 0, vec![credit(1, 0), credit(1, 1)]));
        let e1 = ledger.build(1, &none()).unwrap();
        ledger.on_executed(e1);
        ledger.insert_batch(&batch(&v, 2, 1, vec![credit(1, 2), credit(2, 0)]));
        ledger.blacklist(&Keypair::generate_ed25519().public().to_peer_id(), [3; 32]);
        let bytes = crate::net::proto::encode(&ledger.snapshot());
        let back: LedgerSnapshot = postcard::from_bytes(&bytes).unwrap();
        let restored = Ledger::restore(params(), back);
        let mut escrows = Escrows::new();
        escrows.insert(escrow_key(&[0; 20], &[1; 32]), sno(5));
        assert_eq!(
            restored.build(2, &escrows).unwrap(),
            ledger.build(2, &escrows).unwrap()
        );
        assert_eq!(restored.executed(), ledger.executed());
        assert_eq!(restored.jobs_of_interest(), ledger.jobs_of_interest());
    }

    /// A worker caught before any of its receipts was credited is blacklisted on chain
    /// by the next summary when its registration told this validator its address; without
    /// an address no entry can be made.
    #[test]
    fn a_cheater_caught_before_any_credit_is_blacklisted_with_its_registered_address() {
        let w = Keypair::generate_ed25519().public().to_peer_id();
        let mut ledger = Ledger::new(params());
        ledger.blacklist(&w, [9; 32]);
        assert!(ledger.build(1, &none()).unwrap().blacklist.is_empty());
        ledger.learn_address(&w, [4; 20]);
        let content = ledger.build(1, &none()).unwrap();
        assert_eq!(content.blacklist.len(), 1);
        assert_eq!(content.blacklist[0].address, [4; 20]);
        assert_eq!(content.blacklist[0].proof, [9; 32]);
        // Another validator that knows the same registration accepts the summary.
        let mut other = Ledger::new(params());
        other.blacklist(&w, [9; 32]);
        other.learn_address(&w, [4; 20]);
        other.check(1, &content, &none()).unwrap();
    }
}
