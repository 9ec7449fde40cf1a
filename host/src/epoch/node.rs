//! The live half of epochs: [`EpochNode`] runs inside a validator (seals and gossips the
//! receipts it accepts, ingests other validators' batches, proposes, votes, executes) and
//! [`Claimer`] inside a worker (claims an epoch's rewards once they vest, `vesting_epochs`
//! executions later: the contract's window in which a fraud proof forfeits them).
//!
//! Chain transactions are driven by chain state, not by memory of what was sent: every
//! tick re-reads the round, this validator's vote and the proposals, and sends only what
//! the chain still lacks. A transaction that failed (gas, nonce, revert, a dead RPC node)
//! is therefore retried on the next tick, and one that succeeded is never sent twice.

use super::ledger::{
    address_of_peer, limits, node_key_hash, BatchBody, Credit, EpochGossip, Escrows, Ledger,
    ProposalContent, SignedBatch,
};
use super::{ChainConfig, EpochError};
use crate::net::proto::{protocols, Gossip, Hash, JobRequest, JobResponse, Receipt};
use crate::net::Client;
use crate::store::Store;
use libp2p::identity::Keypair;
use libp2p::PeerId;
use smartnodes_contracts::{Address, Chain, PrivateKeySigner, Role, B256, U256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// One epoch transaction, for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GasEntry {
    /// The epoch.
    pub epoch: u64,
    /// `propose`, `vote`, `execute` or `claim`.
    pub what: &'static str,
    /// Who sent it.
    pub account: Address,
    /// Gas used.
    pub gas: u64,
}

/// A shared list of epoch transactions (nodes append, reports read).
pub type GasLog = Arc<Mutex<Vec<GasEntry>>>;

/// Executed contents served per request (each at most one gossip message, 64 KiB).
pub const SERVED_EPOCHS: usize = 16;

/// How often the driver looks at the chain.
const TICK: Duration = Duration::from_millis(250);
/// How often a validator republishes its proposal and its uncounted older batches.
const REPUBLISH: Duration = Duration::from_secs(1);
/// Epoch messages waiting to be ingested; beyond it they are dropped (they are
/// republished).
const INBOX: usize = 1024;
/// Proposal contents kept (by epoch, newest first).
const KEPT_PROPOSALS: usize = 64;
/// How long the last executed content is republished, and how long a validator waits for
/// the content of an executed epoch before giving up on counting it.
const EXECUTED_PATIENCE: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
struct DriverState {
    /// The epoch this validator works on (the chain's current epoch as last seen).
    epoch: u64,
    seq: u64,
    opened_at: Option<Instant>,
    mine: Option<ProposalContent>,
    /// The round `mine` was proposed in.
    mine_round: u32,
    last_publish: Option<Instant>,
    proposals: BTreeMap<(u64, B256), ProposalContent>,
    own_batches: Vec<SignedBatch>,
    refused: HashSet<B256>,
    /// The last executed content, republished for a while (workers claim with it,
    /// validators that missed it need it to count the epoch).
    executed: Option<(ProposalContent, Instant)>,
    /// Since when the content of an executed epoch is awaited.
    missing_since: Option<Instant>,
}

/// A validator's epoch driver.
#[derive(Debug)]
pub struct EpochNode {
    chain: Chain,
    cfg: ChainConfig,
    keypair: Keypair,
    peer: PeerId,
    client: Client,
    ledger: Mutex<Ledger>,
    pending: Mutex<Vec<Credit>>,
    inbox: mpsc::Sender<EpochGossip>,
    workers: Mutex<HashMap<PeerId, [u8; 20]>>,
    checked: Mutex<HashSet<(u8, [u8; 20], B256)>>,
    st: Mutex<DriverState>,
    /// Eligible escrows read from the chain, and the jobs found not eligible in the epoch
    /// (read again next epoch).
    escrows: Mutex<(u64, Escrows, HashSet<Hash>)>,
    store: Store,
    /// Something to save since the last snapshot.
    dirty: AtomicBool,
    last_save: Mutex<Option<Instant>>,
    /// Peers that recently forwarded epoch gossip: asked for executed contents this
    /// validator missed.
    heard: Mutex<Vec<PeerId>>,
    /// Metrics (issue 18): set by the node after start.
    metrics: std::sync::OnceLock<Arc<crate::metrics::Metrics>>,
}

/// The sled key of the ledger snapshot.
const LEDGER_KEY: &[u8] = b"ledger";
/// Peers remembered for catching up.
const HEARD: usize = 16;

/// A proposal of the current epoch as one validator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    hash: B256,
    /// The active stake voting for it (zero, unread, when not agreed with).
    stake: U256,
    /// Whether this validator agrees with its content.
    agreed: bool,
    /// Whether its stake passes the threshold.
    passes: bool,
    proposer: Address,
    voters: usize,
}

/// Where this validator's vote should go now, if anywhere: the vote rule, pure.
///
/// - Without a vote: the proposal it agrees with that has the most stake (the lowest hash
///   among equals).
/// - With a vote cast in an earlier round (the contract lets a vote move only then): away
///   from a proposal it no longer agrees with (it learnt of a fraud since, say), and away
///   from one that does not pass the threshold when another it agrees with has more stake,
///   or as much and a lower hash. The second move ends a split: two validators that each
///   proposed before holding the other's batches agree with both proposals, but each had
///   voted for its own and neither would ever pass (seen in the multi-host test). Every
///   validator moves toward the same proposal and never to one behind its current one, so
///   the votes gather.
fn vote_target(voted: Option<(B256, u32)>, round: u32, seen: &[Seen]) -> Option<B256> {
    let best = seen
        .iter()
        .filter(|p| p.agreed)
        .max_by(|a, b| a.stake.cmp(&b.stake).then(b.hash.cmp(&a.hash)))?;
    let Some((current, cast_in)) = voted else {
        return Some(best.hash);
    };
    if cast_in >= round || best.hash == current {
        return None;
    }
    match seen.iter().find(|p| p.hash == current) {
        Some(cur) if cur.agreed => {
            let ahead = (best.stake, std::cmp::Reverse(best.hash))
                > (cur.stake, std::cmp::Reverse(cur.hash));
            (!cur.passes && ahead).then_some(best.hash)
        }
        // Gone from the list, or no longer agreed with.
        _ => Some(best.hash),
    }
}

/// Publishes epoch gossip: batches to the validators' topic, proposals to the one workers
/// read too.
fn publish(client: &Client, g: EpochGossip) {
    let topic = match g {
        EpochGossip::Batch(_) => protocols::TOPIC_EPOCHS,
        EpochGossip::Proposal(_) => protocols::TOPIC_PROPOSALS,
    };
    let client = client.clone();
    tokio::spawn(async move {
        client.publish(topic, Gossip::Epoch(Box::new(g))).await;
    });
}

impl EpochNode {
    /// Connects to the contracts as `signer`, checks that this validator is registered
    /// with its peer id, and starts the driver (it stops when `shutdown` changes).
    pub async fn start(
        cfg: ChainConfig,
        signer: PrivateKeySigner,
        keypair: Keypair,
        client: Client,
        store: Store,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<EpochNode>, EpochError> {
        let chain = Chain::connect(&cfg.endpoint, signer, cfg.deployment).await?;
        let peer = keypair.public().to_peer_id();
        let reg = chain.registration(Role::Validator, chain.account()).await?;
        if !reg.active || reg.node_key_hash != node_key_hash(&peer) {
            return Err(EpochError::NotRegistered(format!(
                "validator {} is not registered on chain with peer id {peer}",
                chain.account()
            )));
        }
        let params = chain.params().await?;
        let (ledger, epoch, seq, own_batches) = match store.epochs.get(LEDGER_KEY) {
            Ok(Some(mut s)) => {
                let (epoch, seq) = (s.epoch, s.seq);
                let own = std::mem::take(&mut s.own_batches);
                tracing::info!(epoch, "epoch ledger restored");
                (Ledger::restore(params, s), epoch, seq, own)
            }
            Ok(None) => (Ledger::new(params), 0, 0, Vec::new()),
            Err(e) => {
                tracing::error!("the stored epoch ledger is unreadable, starting afresh: {e}");
                (Ledger::new(params), 0, 0, Vec::new())
            }
        };
        let (inbox, rx) = mpsc::channel(INBOX);
        let node = Arc::new(EpochNode {
            chain,
            cfg,
            keypair,
            peer,
            client,
            ledger: Mutex::new(ledger),
            pending: Mutex::default(),
            inbox,
            workers: Mutex::default(),
            checked: Mutex::default(),
            escrows: Mutex::default(),
            store,
            dirty: AtomicBool::new(false),
            last_save: Mutex::default(),
            heard: Mutex::default(),
            metrics: std::sync::OnceLock::new(),
            st: Mutex::new(DriverState {
                epoch,
                // Distinct across restarts.
                seq: seq.max(crate::net::proto::unix_now() << 20),
                own_batches,
                ..DriverState::default()
            }),
        });
        let n = node.clone();
        tokio::spawn(async move { n.run(rx, shutdown).await });
        Ok(node)
    }

    /// Where `epochs_executed` is counted (issue 18; set once).
    pub fn set_metrics(&self, metrics: Arc<crate::metrics::Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// This validator's chain address.
    pub fn address(&self) -> Address {
        self.chain.account()
    }

    /// Whether a worker may register: it must be registered on chain at `address` with
    /// its peer id as node key, and not blacklisted. With `open` (devnets), anybody may,
    /// but unregistered workers earn nothing.
    pub async fn admit_worker(
        &self,
        peer: PeerId,
        address: Option<[u8; 20]>,
    ) -> Result<(), String> {
        if self.ledger.lock().expect("poisoned").is_blacklisted(&peer) {
            return Err("this worker is blacklisted".into());
        }
        match address {
            Some(a) if self.registered_as(Role::Worker, a, &peer).await => {
                self.workers.lock().expect("poisoned").insert(peer, a);
                Ok(())
            }
            _ if self.cfg.open => {
                tracing::warn!(%peer, "serving an unregistered worker (--devnet-open): it earns nothing");
                Ok(())
            }
            Some(a) => Err(format!(
                "{} is not registered on chain as a worker with this peer id",
                Address::from(a)
            )),
            None => Err("register on chain and send your chain address".into()),
        }
    }

    /// Called when this validator accepts a receipt of a job of `tasks` tasks: it is
    /// sealed into the next batch.
    pub fn on_accepted(&self, receipt: &Receipt, tasks: u32) {
        let Ok(peer) = PeerId::from_bytes(&receipt.body.worker) else {
            return;
        };
        let Some(address) = self.workers.lock().expect("poisoned").get(&peer).copied() else {
            return; // an unregistered worker (--devnet-open): no credit
        };
        // The job's owner, whose escrow (keyed by its address on chain) the job releases.
        let user = match self.store.jobs.get(&receipt.body.job_id) {
            Ok(Some(job)) => address_of_peer(&job.spec.owner).unwrap_or_default(),
            _ => [0; 20],
        };
        self.pending.lock().expect("poisoned").push(Credit {
            receipt: receipt.clone(),
            address,
            tasks,
            user,
        });
    }

    /// Called with epoch gossip forwarded by `from` (never blocks: a full inbox drops the
    /// message, which its sender republishes).
    pub fn on_gossip(&self, from: PeerId, g: EpochGossip) {
        remember(&self.heard, from);
        let _ = self.inbox.try_send(g);
    }

    /// Called when this validator blacklists `worker` with the fraud proof `proof_id`: its
    /// uncounted receipts are forfeited, it is refused from now on, and the next summary
    /// blacklists it on chain.
    pub fn blacklist(&self, worker: PeerId, proof_id: Hash) {
        let registered = self.workers.lock().expect("poisoned").remove(&worker);
        let mut ledger = self.ledger.lock().expect("poisoned");
        if let Some(address) = registered {
            ledger.learn_address(&worker, address);
        }
        ledger.blacklist(&worker, proof_id);
        drop(ledger);
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// The contents of the epochs this validator saw execute.
    pub fn executed(&self) -> BTreeMap<u64, ProposalContent> {
        self.ledger.lock().expect("poisoned").executed().clone()
    }

    /// At most [`SERVED_EPOCHS`] executed contents from `from` on (what `smartnodes claim`
    /// and `status` ask for).
    pub fn executed_from(&self, from: u64) -> Vec<ProposalContent> {
        self.ledger
            .lock()
            .expect("poisoned")
            .executed()
            .range(from..)
            .take(SERVED_EPOCHS)
            .map(|(_, c)| c.clone())
            .collect()
    }

    async fn registered_as(&self, role: Role, address: [u8; 20], peer: &PeerId) -> bool {
        let key = node_key_hash(peer);
        let id = (role as u8, address, key);
        if self.checked.lock().expect("poisoned").contains(&id) {
            return true;
        }
        match self.chain.registration(role, Address::from(address)).await {
            Ok(r) if r.active && r.node_key_hash == key => {
                self.checked.lock().expect("poisoned").insert(id);
                true
            }
            Ok(_) => false,
            Err(e) => {
                tracing::debug!("reading a registration: {e}");
                false
            }
        }
    }

    async fn run(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<EpochGossip>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                g = rx.recv() => match g {
                    Some(g) => self.ingest(g).await,
                    None => break,
                },
                _ = tick.tick() => {
                    if let Err(e) = self.step().await {
                        tracing::debug!("epoch step: {e}");
                    }
                    self.save(false).await;
                }
                _ = shutdown.changed() => break,
            }
        }
        self.save(true).await;
    }

    /// Stores the ledger and the driver's state (at most once a second unless `force`).
    async fn save(&self, force: bool) {
        if !self.dirty.load(Ordering::Relaxed) {
            return;
        }
        {
            let mut last = self.last_save.lock().expect("poisoned");
            if !force && last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
                return;
            }
            *last = Some(Instant::now());
        }
        self.dirty.store(false, Ordering::Relaxed);
        let snapshot = {
            let st = self.st.lock().expect("poisoned");
            let mut s = self.ledger.lock().expect("poisoned").snapshot();
            s.epoch = st.epoch;
            s.seq = st.seq;
            s.own_batches = st.own_batches.clone();
            s
        };
        let saved = self.store.epochs.insert(LEDGER_KEY, &snapshot);
        if let Err(e) = match saved {
            Ok(()) => self.store.flush().await,
            Err(e) => Err(e),
        } {
            tracing::error!("saving the epoch ledger: {e}");
            self.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// Asks the peers heard recently for the executed content of `epoch` (with `hash`).
    async fn fetch_executed(&self, epoch: u64, hash: B256) -> Option<ProposalContent> {
        let peers = self.heard.lock().expect("poisoned").clone();
        fetch_executed(&self.client, peers, epoch, hash).await
    }

    async fn ingest(&self, g: EpochGossip) {
        match g {
            EpochGossip::Batch(batch) => {
                let id = batch.id();
                if self.ledger.lock().expect("poisoned").has_batch(&id) {
                    return;
                }
                let epoch = self.st.lock().expect("poisoned").epoch;
                if epoch > 0 && batch.body.epoch > epoch + 1 {
                    return;
                }
                let validator = match batch.check_form() {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!("epoch gossip: {e}");
                        return;
                    }
                };
                if !self
                    .registered_as(Role::Validator, batch.body.address, &validator)
                    .await
                {
                    tracing::warn!(%validator, "a batch from an unregistered validator");
                    return;
                }
                for c in &batch.body.credits {
                    let Ok(worker) = PeerId::from_bytes(&c.receipt.body.worker) else {
                        return;
                    };
                    if self.registered_as(Role::Worker, c.address, &worker).await {
                        continue;
                    }
                    // A worker blacklisted since loses its registration: its receipts are
                    // forfeited anyway, provided this validator knows it is the cheater.
                    let forfeited = self
                        .ledger
                        .lock()
                        .expect("poisoned")
                        .is_blacklisted(&worker)
                        && self
                            .chain
                            .is_blacklisted(Address::from(c.address))
                            .await
                            .unwrap_or(false);
                    if !forfeited {
                        tracing::warn!(%validator, %worker, "a batch credits an unregistered worker");
                        return;
                    }
                }
                if self.ledger.lock().expect("poisoned").insert_batch(&batch) {
                    self.dirty.store(true, Ordering::Relaxed);
                }
            }
            EpochGossip::Proposal(content) => {
                if content.check_bounds().is_err() {
                    return;
                }
                let Some(hash) = content.hash() else {
                    return;
                };
                let mut st = self.st.lock().expect("poisoned");
                if st.epoch > 0 && (content.epoch + 1 < st.epoch || content.epoch > st.epoch + 1) {
                    return;
                }
                st.proposals.entry((content.epoch, hash)).or_insert(content);
                while st.proposals.len() > KEPT_PROPOSALS {
                    st.proposals.pop_first();
                }
            }
        }
    }

    fn log_gas(&self, epoch: u64, what: &'static str, gas: u64) {
        self.cfg.gas_log.lock().expect("poisoned").push(GasEntry {
            epoch,
            what,
            account: self.chain.account(),
            gas,
        });
    }

    async fn step(&self) -> Result<(), smartnodes_contracts::Error> {
        let ri = self.chain.round_info().await?;
        let caught_up = self.follow_executions(ri.epoch).await?;
        self.seal(ri.epoch);
        self.republish(ri.epoch);
        if !ri.open || !caught_up {
            return Ok(());
        }
        let epoch = ri.epoch;
        self.refresh_escrows(epoch).await?;
        let me = self.chain.account();
        let opened = *self
            .st
            .lock()
            .expect("poisoned")
            .opened_at
            .get_or_insert_with(Instant::now);

        // Propose when drawn, unless this validator's vote is on a proposal it agrees with,
        // or it proposed in this round already. A proposal it made in an earlier round that
        // it no longer agrees with (it learnt of a fraud since, say) is replaced.
        let mut voted = self.chain.vote_and_round(epoch, me).await?;
        let vote_holds = voted.is_some_and(|(hash, _)| self.agrees(epoch, &hash));
        let proposed_this_round = {
            let st = self.st.lock().expect("poisoned");
            st.mine.is_some() && st.mine_round >= ri.round
        };
        if !vote_holds
            && !proposed_this_round
            && ri.proposers.contains(&me)
            && opened.elapsed() >= self.cfg.grace
        {
            self.propose(epoch, ri.round).await?;
            // Proposing may have moved the vote.
            voted = self.chain.vote_and_round(epoch, me).await?;
        }

        // Every proposal with the stake behind it (votes weigh the voters' stake, issue 16),
        // whether this validator agrees with it, and whether it passes the threshold.
        let hashes = self.chain.proposal_hashes(epoch).await?;
        let active = self.chain.validators().await?;
        let total = self.chain.active_stake().await?;
        let mut seen = Vec::new();
        for hash in &hashes {
            let Some(p) = self.chain.proposal(epoch, *hash).await? else {
                continue;
            };
            // The stake of a proposal this validator disagrees with is never weighed
            // (`vote_target` and execution look only at agreed ones): no chain reads for it.
            let agreed = self.agrees(epoch, hash);
            let mut stake = U256::ZERO;
            let mut passes = false;
            if agreed {
                for v in p.voters.iter().filter(|v| active.contains(v)) {
                    stake += self
                        .chain
                        .registration(Role::Validator, *v)
                        .await?
                        .collateral;
                }
                passes = self.chain.threshold_passes(stake, total).await?;
            }
            seen.push(Seen {
                hash: *hash,
                stake,
                agreed,
                passes,
                proposer: p.proposer,
                voters: p.voters.len(),
            });
        }

        // Vote, or move the vote ([`vote_target`]).
        if let Some(target) = vote_target(voted, ri.round, &seen) {
            match self.chain.vote(epoch, target).await {
                Ok(r) => {
                    self.log_gas(epoch, "vote", r.gas_used);
                    let moved = voted.map(|(h, _)| h.to_string());
                    tracing::info!(epoch, hash = %target, moved_from = ?moved, "voted");
                }
                // The round turned between the read and the vote: next tick.
                Err(e) if e.revert_name() == Some("AlreadyVoted") => {
                    tracing::debug!(epoch, "vote: {e}");
                }
                Err(e) => return Err(e),
            }
        }

        // Execute a proposal with enough votes: its proposer at once, others after a
        // delay (in case the proposer is gone).
        for p in seen.iter().filter(|p| p.agreed && p.passes) {
            if p.proposer != me && opened.elapsed() < self.cfg.grace * 4 {
                continue;
            }
            let summary = {
                let st = self.st.lock().expect("poisoned");
                st.proposals.get(&(epoch, p.hash)).and_then(|c| c.summary())
            };
            let Some(summary) = summary else { continue };
            match self.chain.execute(&summary).await {
                Ok(r) => {
                    self.log_gas(epoch, "execute", r.gas_used);
                    tracing::info!(epoch, hash = %p.hash, votes = p.voters, "epoch executed");
                }
                Err(e) => tracing::debug!(epoch, "execute: {e}"),
            }
            break;
        }
        Ok(())
    }

    /// Reads the escrow of every job of interest not read yet this epoch: eligible when
    /// escrowed in an earlier epoch (that state no longer changes, so all validators agree).
    async fn refresh_escrows(&self, epoch: u64) -> Result<(), smartnodes_contracts::Error> {
        let wanted = self.ledger.lock().expect("poisoned").jobs_of_interest();
        let unknown: Vec<Hash> = {
            let mut e = self.escrows.lock().expect("poisoned");
            if e.0 != epoch {
                e.0 = epoch;
                e.2.clear();
            }
            wanted
                .into_iter()
                .filter(|j| !e.1.contains_key(j) && !e.2.contains(j))
                .collect()
        };
        for job in unknown {
            let info = self.chain.job(B256::from(job)).await?;
            let mut e = self.escrows.lock().expect("poisoned");
            if info.state == smartnodes_contracts::JobState::Escrowed
                && info.requested_in_epoch < epoch
            {
                e.1.insert(job, info.payment);
            } else {
                e.2.insert(job);
            }
        }
        Ok(())
    }

    fn agrees(&self, epoch: u64, hash: &B256) -> bool {
        let mut st = self.st.lock().expect("poisoned");
        let Some(content) = st.proposals.get(&(epoch, *hash)) else {
            return false;
        };
        if self.cfg.tamper {
            return st.mine.as_ref().and_then(|m| m.hash()) == Some(*hash);
        }
        let escrows = self.escrows.lock().expect("poisoned").1.clone();
        match self
            .ledger
            .lock()
            .expect("poisoned")
            .check(epoch, content, &escrows)
        {
            Ok(()) => true,
            Err(e) => {
                if st.refused.insert(*hash) {
                    tracing::info!(epoch, hash = %hash, "not voting for a proposal: {e}");
                }
                false
            }
        }
    }

    async fn propose(&self, epoch: u64, round: u32) -> Result<(), smartnodes_contracts::Error> {
        let escrows = self.escrows.lock().expect("poisoned").1.clone();
        let built = self.ledger.lock().expect("poisoned").build(epoch, &escrows);
        let mut content = match built {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(epoch, "building the summary: {e}");
                return Ok(());
            }
        };
        if self.cfg.tamper {
            tamper(&mut content);
        }
        let Some(summary) = content.summary() else {
            return Ok(());
        };
        let hash = summary.hash();
        self.st
            .lock()
            .expect("poisoned")
            .proposals
            .insert((epoch, hash), content.clone());
        if self.chain.proposal(epoch, hash).await?.is_none() {
            match self.chain.propose(&summary).await {
                Ok((r, _)) => {
                    self.log_gas(epoch, "propose", r.gas_used);
                    tracing::info!(epoch, hash = %hash, batches = content.batches.len(), workers = content.rewards.len(), "proposed");
                }
                Err(e)
                    if matches!(
                        e.revert_name(),
                        Some("AlreadyVoted" | "ProposalExists" | "NotProposer")
                    ) =>
                {
                    tracing::debug!(epoch, "propose: {e}");
                }
                Err(e) => return Err(e), // retried next tick
            }
        }
        publish(&self.client, EpochGossip::Proposal(content.clone()));
        let mut st = self.st.lock().expect("poisoned");
        st.mine = Some(content);
        st.mine_round = round;
        st.last_publish = Some(Instant::now());
        Ok(())
    }

    /// Processes the executions of the epochs before `current`; false while the content
    /// of one is awaited (nothing is proposed or voted meanwhile).
    async fn follow_executions(&self, current: u64) -> Result<bool, smartnodes_contracts::Error> {
        loop {
            let epoch = {
                let mut st = self.st.lock().expect("poisoned");
                if st.epoch == 0 {
                    // A (re)starting validator first counts the last executed epoch
                    // (republished for a while by the others), so that batches it may
                    // still receive from it are not counted again.
                    st.epoch = current.saturating_sub(1).max(1);
                }
                if st.epoch >= current {
                    return Ok(true);
                }
                st.epoch
            };
            let record = self.chain.epoch_record(epoch).await?;
            let known = self
                .st
                .lock()
                .expect("poisoned")
                .proposals
                .contains_key(&(epoch, record.summary_hash));
            if !known {
                if let Some(c) = self.fetch_executed(epoch, record.summary_hash).await {
                    self.st
                        .lock()
                        .expect("poisoned")
                        .proposals
                        .insert((epoch, record.summary_hash), c);
                }
            }
            let mut st = self.st.lock().expect("poisoned");
            match st.proposals.get(&(epoch, record.summary_hash)).cloned() {
                Some(content) => {
                    tracing::info!(
                        epoch,
                        batches = content.batches.len(),
                        workers = content.rewards.len(),
                        "counted the executed epoch"
                    );
                    self.ledger
                        .lock()
                        .expect("poisoned")
                        .on_executed(content.clone());
                    if let Some(m) = self.metrics.get() {
                        m.epochs_executed.inc();
                    }
                    publish(&self.client, EpochGossip::Proposal(content.clone()));
                    st.executed = Some((content, Instant::now()));
                    self.dirty.store(true, Ordering::Relaxed);
                }
                None => {
                    // Wait for it (validators republish the executed content) rather
                    // than count its batches again.
                    let since = *st.missing_since.get_or_insert_with(Instant::now);
                    if since.elapsed() < EXECUTED_PATIENCE {
                        return Ok(false);
                    }
                    tracing::warn!(
                        epoch,
                        hash = %record.summary_hash,
                        "an epoch executed with a summary this validator never received"
                    );
                }
            }
            st.missing_since = None;
            st.epoch += 1;
            st.opened_at = None;
            st.mine = None;
            st.refused.clear();
            let keep = st.epoch.saturating_sub(1);
            st.proposals.retain(|(e, _), _| *e >= keep);
        }
    }

    /// Seals the receipts accepted since the last tick into signed batches.
    fn seal(&self, epoch: u64) {
        let credits = std::mem::take(&mut *self.pending.lock().expect("poisoned"));
        for chunk in credits.chunks(limits::BATCH_CREDITS) {
            let batch = {
                let mut st = self.st.lock().expect("poisoned");
                st.seq += 1;
                let batch = SignedBatch::sign(
                    BatchBody {
                        validator: self.peer.to_bytes(),
                        address: self.chain.account().into_array(),
                        epoch,
                        seq: st.seq,
                        credits: chunk.to_vec(),
                    },
                    &self.keypair,
                );
                st.own_batches.push(batch.clone());
                batch
            };
            self.dirty.store(true, Ordering::Relaxed);
            self.ledger.lock().expect("poisoned").insert_batch(&batch);
            publish(&self.client, EpochGossip::Batch(batch));
        }
    }

    /// Republishes this validator's proposal, and its batches not counted yet (gossip is
    /// best effort; a validator missing a batch cannot check a proposal that counts it).
    fn republish(&self, epoch: u64) {
        let mut st = self.st.lock().expect("poisoned");
        if st.last_publish.is_some_and(|t| t.elapsed() < REPUBLISH) {
            return;
        }
        st.last_publish = Some(Instant::now());
        if let Some(mine) = &st.mine {
            publish(&self.client, EpochGossip::Proposal(mine.clone()));
        }
        if let Some((executed, at)) = &st.executed {
            if at.elapsed() < EXECUTED_PATIENCE {
                publish(&self.client, EpochGossip::Proposal(executed.clone()));
            }
        }
        let ledger = self.ledger.lock().expect("poisoned");
        st.own_batches.retain(|b| !ledger.is_counted(&b.id()));
        for b in st.own_batches.iter().filter(|b| b.body.epoch <= epoch) {
            publish(&self.client, EpochGossip::Batch(b.clone()));
        }
    }
}

/// Asks `peers` (newest first) for the executed content of `epoch` with `hash`.
async fn fetch_executed(
    client: &Client,
    peers: Vec<PeerId>,
    epoch: u64,
    hash: B256,
) -> Option<ProposalContent> {
    for peer in peers.into_iter().rev() {
        let asked = client.job(peer, JobRequest::Epochs { from: epoch });
        let Ok(Ok(JobResponse::Epochs(contents))) =
            tokio::time::timeout(Duration::from_secs(5), asked).await
        else {
            continue;
        };
        for c in contents.into_iter().take(SERVED_EPOCHS) {
            if c.epoch == epoch && c.check_bounds().is_ok() && c.hash() == Some(hash) {
                tracing::info!(epoch, %peer, "fetched an executed summary");
                return Some(c);
            }
        }
    }
    None
}

fn remember(heard: &Mutex<Vec<PeerId>>, from: PeerId) {
    let mut heard = heard.lock().expect("poisoned");
    if !heard.contains(&from) {
        heard.push(from);
        if heard.len() > HEARD {
            heard.remove(0);
        }
    }
}

/// Tests only: moves half of the largest reward to an address that did no work.
fn tamper(content: &mut ProposalContent) {
    let thief = [0xee; 20];
    let stolen = match content
        .rewards
        .iter_mut()
        .max_by_key(|(_, a)| U256::from_be_bytes(*a))
    {
        Some((_, amount)) => {
            let a = U256::from_be_bytes(*amount);
            let half = a / U256::from(2);
            *amount = (a - half).to_be_bytes::<32>();
            half
        }
        None => U256::from(1),
    };
    content.rewards.push((thief, stolen.to_be_bytes::<32>()));
    content.rewards.sort();
    content.scores.push((thief, 1));
    content.scores.sort();
}

/// A worker's reward claimer: keeps the proposal contents it hears, and when an epoch
/// executes, claims its leaf of the executed one (checked against the on-chain hash).
#[derive(Debug)]
pub struct Claimer {
    chain: Chain,
    client: Client,
    inbox: mpsc::Sender<EpochGossip>,
    gas_log: GasLog,
    claimed: Mutex<Vec<(u64, U256)>>,
    heard: Mutex<Vec<PeerId>>,
    /// Rewards of epoch `e` vest with the execution of `e + vesting_epochs`.
    vesting_epochs: u64,
}

/// How long a claimer waits for the content of an executed epoch before skipping it.
const CLAIM_PATIENCE: Duration = Duration::from_secs(60);

impl Claimer {
    /// Connects as `signer` and starts claiming (until `shutdown` changes): the epochs
    /// that execute from now on, and up to [`SERVED_EPOCHS`] before (a restarted worker
    /// claims what it missed; summaries it did not hear it asks the validators for).
    pub async fn start(
        cfg: &ChainConfig,
        signer: PrivateKeySigner,
        client: Client,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<Claimer>, EpochError> {
        let chain = Chain::connect(&cfg.endpoint, signer, cfg.deployment).await?;
        let vesting_epochs = u64::from(chain.params().await?.vesting_epochs);
        let first = chain
            .current_epoch()
            .await?
            .saturating_sub(SERVED_EPOCHS as u64)
            .max(1);
        let (inbox, rx) = mpsc::channel(INBOX);
        let claimer = Arc::new(Claimer {
            chain,
            client,
            inbox,
            gas_log: cfg.gas_log.clone(),
            claimed: Mutex::default(),
            heard: Mutex::default(),
            vesting_epochs,
        });
        let c = claimer.clone();
        tokio::spawn(async move { c.run(first, rx, shutdown).await });
        Ok(claimer)
    }

    /// The worker's chain address.
    pub fn address(&self) -> Address {
        self.chain.account()
    }

    /// Called with epoch gossip forwarded by `from` (never blocks).
    pub fn on_gossip(&self, from: PeerId, g: EpochGossip) {
        remember(&self.heard, from);
        if matches!(g, EpochGossip::Proposal(_)) {
            let _ = self.inbox.try_send(g);
        }
    }

    /// `(epoch, amount)` of every claim this worker made.
    pub fn claimed(&self) -> Vec<(u64, U256)> {
        self.claimed.lock().expect("poisoned").clone()
    }

    async fn run(
        self: Arc<Self>,
        mut next: u64,
        mut rx: mpsc::Receiver<EpochGossip>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut contents: BTreeMap<(u64, B256), ProposalContent> = BTreeMap::new();
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut waiting_since: Option<Instant> = None;
        loop {
            tokio::select! {
                g = rx.recv() => match g {
                    Some(EpochGossip::Proposal(c)) => {
                        if c.epoch >= next && c.check_bounds().is_ok() {
                            if let Some(hash) = c.hash() {
                                contents.entry((c.epoch, hash)).or_insert(c);
                                while contents.len() > KEPT_PROPOSALS {
                                    contents.pop_last();
                                }
                            }
                        }
                    }
                    Some(EpochGossip::Batch(_)) => {}
                    None => break,
                },
                _ = tick.tick() => {
                    match self.step(&mut next, &contents, &mut waiting_since).await {
                        Ok(()) => contents.retain(|(e, _), _| *e >= next),
                        Err(e) => tracing::debug!("claim step: {e}"),
                    }
                }
                _ = shutdown.changed() => break,
            }
        }
    }

    async fn step(
        &self,
        next: &mut u64,
        contents: &BTreeMap<(u64, B256), ProposalContent>,
        waiting_since: &mut Option<Instant>,
    ) -> Result<(), smartnodes_contracts::Error> {
        let current = self.chain.current_epoch().await?;
        // Claims for an epoch open once it has vested.
        while *next + self.vesting_epochs < current {
            let epoch = *next;
            let record = self.chain.epoch_record(epoch).await?;
            if record.executed_at == 0 {
                return Ok(());
            }
            let fetched;
            let content = match contents.get(&(epoch, record.summary_hash)) {
                Some(c) => c,
                None => {
                    let peers = self.heard.lock().expect("poisoned").clone();
                    match fetch_executed(&self.client, peers, epoch, record.summary_hash).await {
                        Some(c) => {
                            fetched = c;
                            &fetched
                        }
                        None => {
                            let since = *waiting_since.get_or_insert_with(Instant::now);
                            if since.elapsed() > CLAIM_PATIENCE {
                                tracing::warn!(
                                    epoch,
                                    "never received the executed summary; not claiming it"
                                );
                                *next += 1;
                                *waiting_since = None;
                                continue;
                            }
                            return Ok(());
                        }
                    }
                }
            };
            let me = self.chain.account();
            if let Some((amount, proof)) = content.reward_tree().and_then(|t| t.proof(&me)) {
                if !self.chain.reward_claimed(me, amount, epoch).await? {
                    let r = match self.chain.claim(epoch, amount, proof).await {
                        Ok(r) => r,
                        Err(e)
                            if matches!(
                                e.revert_name(),
                                Some("Forfeited" | "ClaimWindowClosed")
                            ) =>
                        {
                            tracing::warn!(epoch, %amount, "{e}: the reward is lost");
                            *next += 1;
                            *waiting_since = None;
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                    self.gas_log.lock().expect("poisoned").push(GasEntry {
                        epoch,
                        what: "claim",
                        account: me,
                        gas: r.gas_used,
                    });
                    tracing::info!(epoch, %amount, "claimed");
                    self.claimed.lock().expect("poisoned").push((epoch, amount));
                }
            }
            *next += 1;
            *waiting_since = None;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(byte: u8, stake: u64, agreed: bool, passes: bool) -> Seen {
        Seen {
            hash: B256::repeat_byte(byte),
            stake: U256::from(stake),
            agreed,
            passes,
            proposer: Address::ZERO,
            voters: 1,
        }
    }

    #[test]
    fn a_first_vote_goes_to_the_agreed_proposal_with_the_most_stake() {
        let all = [
            seen(1, 5, false, false),
            seen(2, 3, true, false),
            seen(3, 4, true, false),
        ];
        assert_eq!(vote_target(None, 0, &all), Some(B256::repeat_byte(3)));
        // Equal stake: the lower hash.
        let tie = [seen(9, 4, true, false), seen(3, 4, true, false)];
        assert_eq!(vote_target(None, 0, &tie), Some(B256::repeat_byte(3)));
        assert_eq!(vote_target(None, 0, &[seen(1, 9, false, false)]), None);
    }

    #[test]
    fn a_split_between_two_agreed_proposals_ends() {
        // Two validators, each voting for its own proposal (equal stake), each agreeing
        // with both; neither passes alone.
        let (a, b) = (B256::repeat_byte(0xa), B256::repeat_byte(0xb));
        let view = [seen(0xa, 1000, true, false), seen(0xb, 1000, true, false)];
        // Not in the round the votes were cast in (the contract refuses that).
        assert_eq!(vote_target(Some((a, 1)), 1, &view), None);
        assert_eq!(vote_target(Some((b, 1)), 1, &view), None);
        // A round later the one on the higher hash moves; the other stays.
        assert_eq!(vote_target(Some((a, 1)), 2, &view), None);
        assert_eq!(vote_target(Some((b, 1)), 2, &view), Some(a));
        // A vote never moves away from a passing proposal, nor toward one behind it.
        let passing = [seen(0xa, 1000, true, false), seen(0xb, 2000, true, true)];
        assert_eq!(vote_target(Some((b, 1)), 2, &passing), None);
        let behind = [seen(0xa, 1000, true, false), seen(0xb, 3000, true, false)];
        assert_eq!(vote_target(Some((b, 1)), 2, &behind), None);
    }

    #[test]
    fn a_vote_leaves_a_proposal_no_longer_agreed_with() {
        let (a, b) = (B256::repeat_byte(0xa), B256::repeat_byte(0xb));
        let view = [seen(0xa, 1000, false, false), seen(0xb, 10, true, false)];
        assert_eq!(vote_target(Some((a, 1)), 2, &view), Some(b));
        // Gone from the chain's list: the best agreed one.
        assert_eq!(vote_target(Some((a, 1)), 2, &view[1..]), Some(b));
        // Nothing agreed: nowhere to go.
        assert_eq!(vote_target(Some((a, 1)), 2, &view[..1]), None);
    }
}
