//! The user: a client session with one validator. It submits jobs (small blobs inline, the
//! rest served to the validator on request), collects every task's result — pushed by the
//! validator as tasks complete, and polled as a fallback — and checks each one: the
//! receipt's signature, that it is for this job and task, and that the output matches the
//! receipt's output hash.

use super::blobs::{self, Blobs};
use crate::identity::Identity;
use crate::net::proto::*;
use crate::net::{self, Client, Event, NetError, Request, Response};
use crate::store::{Store, StoreError};
use libp2p::{Multiaddr, PeerId};
use smartnodes_runtime::sha256;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Why a submission failed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The network.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The local store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The validator refused.
    #[error("the validator refused: {0}")]
    Rejected(String),
    /// The validator answered something that is not an answer.
    #[error("unexpected answer from the validator")]
    Unexpected,
    /// The job is not valid (no task, too many, a blob too large).
    #[error("invalid job: {0}")]
    Invalid(String),
    /// No result for too long.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// Discovery found no reachable validator in time.
    #[error("no validator found through the bootstrap peers within {0:?}")]
    NoValidator(Duration),
}

/// One task's checked result.
#[derive(Debug, Clone)]
pub struct TaskOutcome {
    /// Its index.
    pub index: u32,
    /// The signed receipt.
    pub receipt: Receipt,
    /// The output (its sha256 is the receipt's `output_hash`).
    pub output: Vec<u8>,
    /// The worker that ran it.
    pub worker: PeerId,
}

impl TaskOutcome {
    /// The verdict's name.
    pub fn verdict(&self) -> &'static str {
        verdict_name(self.receipt.body.verdict)
    }
}

/// A result the session held and then replaced by a re-run: the validator withdrew it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaced {
    /// The task.
    pub index: u32,
    /// The withdrawn receipt's hash.
    pub receipt: Hash,
    /// The worker that had delivered it.
    pub worker: PeerId,
    /// Why it was withdrawn.
    pub reason: String,
}

/// Why a validator withdraws a result it had delivered (`revoked` in `Results`).
pub const REPLACED_REASON: &str =
    "withdrawn by the validator: its worker was proven a fraud; replaced by a re-run";

/// A finished job.
#[derive(Debug, Clone)]
pub struct JobReport {
    /// Its id.
    pub job_id: Hash,
    /// Every task, by index.
    pub tasks: Vec<TaskOutcome>,
    /// Results received, then withdrawn and replaced (oldest first).
    pub replaced: Vec<Replaced>,
}

impl JobReport {
    /// The JSON summary `submit` prints.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "job_id": hex::encode(self.job_id),
            "tasks": self.tasks.iter().map(|t| serde_json::json!({
                "index": t.index,
                "verdict": t.verdict(),
                "output_hash": t.receipt.body.output_hash.map(hex::encode),
                "output_len": t.output.len(),
                "fuel_used": t.receipt.body.fuel_used,
                "worker": t.worker.to_string(),
                "engine_fingerprint": hex::encode(t.receipt.body.engine),
            })).collect::<Vec<_>>(),
            "replaced": self.replaced.iter().map(|r| serde_json::json!({
                "index": r.index,
                "receipt": hex::encode(r.receipt),
                "worker": r.worker.to_string(),
                "reason": r.reason,
            })).collect::<Vec<_>>(),
        })
    }
}

/// What to submit.
#[derive(Debug, Clone)]
pub struct JobRequestSpec {
    /// The module (wasm).
    pub module: Vec<u8>,
    /// One input per task.
    pub inputs: Vec<Vec<u8>>,
    /// Limits per task.
    pub limits: JobLimits,
    /// Share of results to re-execute, in parts per million (0: the validator's default).
    pub sample_ppm: u32,
}

type Pushes = Arc<Mutex<HashMap<Hash, mpsc::Sender<TaskResult>>>>;

/// A connection to one validator.
#[derive(Debug)]
pub struct UserSession {
    client: Client,
    store: Store,
    blobs: Blobs,
    validator_addr: Multiaddr,
    validator: Mutex<PeerId>,
    pushes: Pushes,
    events_task: tokio::task::JoinHandle<()>,
}

impl Drop for UserSession {
    fn drop(&mut self) {
        self.events_task.abort();
    }
}

impl UserSession {
    /// Starts an ephemeral node (fresh keys, in-memory store, no listening) and connects to
    /// the validator at `addr` (with or without `/p2p/<id>`).
    pub async fn connect(addr: Multiaddr) -> Result<UserSession, UserError> {
        UserSession::connect_as(addr, Identity::ephemeral()).await
    }

    /// [`UserSession::connect`] with the user's own key: jobs it submits are owned by this
    /// identity's peer id, so their escrow on chain is the one its account (the same key)
    /// requests (job ids are namespaced by user on chain).
    pub async fn connect_as(addr: Multiaddr, identity: Identity) -> Result<UserSession, UserError> {
        let store = Store::temporary()?;
        let (client, events, _) = net::start(identity.keypair().clone(), None).await?;
        let validator = client.dial(addr.clone()).await?;
        Ok(Self::with(client, events, store, validator, addr))
    }

    /// Like [`UserSession::connect`], but given any peers of the network (validators or
    /// workers): finds the validators through the DHT (`net::discovery`) and uses the one
    /// that answered its dial fastest. Fails after `timeout` without one.
    pub async fn discover(
        bootstrap: Vec<Multiaddr>,
        timeout: Duration,
    ) -> Result<UserSession, UserError> {
        UserSession::discover_as(bootstrap, timeout, Identity::ephemeral()).await
    }

    /// [`UserSession::discover`] with the user's own key (see [`UserSession::connect_as`]).
    pub async fn discover_as(
        bootstrap: Vec<Multiaddr>,
        timeout: Duration,
        identity: Identity,
    ) -> Result<UserSession, UserError> {
        let store = Store::temporary()?;
        let config = net::NetConfig {
            listen: None,
            discovery: net::discovery::DiscoveryConfig {
                bootstrap,
                interval: Duration::from_secs(1),
                ..Default::default()
            },
            metrics: None,
            topics: Vec::new(), // a user reads no gossip
        };
        let (client, events, _) = net::start_with(identity.keypair().clone(), config).await?;
        let mut changes = client.changes();
        let deadline = tokio::time::Instant::now() + timeout;
        let found = loop {
            let best = client
                .peers()
                .await
                .into_iter()
                .filter(|p| p.role == "validator" && p.connected)
                .min_by_key(|p| (p.dial_time.unwrap_or(Duration::MAX), p.peer));
            if let Some(best) = best {
                break best;
            }
            if !matches!(
                tokio::time::timeout_at(deadline, changes.changed()).await,
                Ok(Ok(()))
            ) {
                client.shutdown().await;
                return Err(UserError::NoValidator(timeout));
            }
        };
        let addr = found
            .addrs
            .first()
            .cloned()
            .unwrap_or_else(Multiaddr::empty)
            .with_p2p(found.peer)
            .unwrap_or_else(|a| a);
        tracing::info!(validator = %found.peer, %addr, "found a validator");
        Ok(Self::with(client, events, store, found.peer, addr))
    }

    fn with(
        client: Client,
        mut events: mpsc::Receiver<Event>,
        store: Store,
        validator: PeerId,
        addr: Multiaddr,
    ) -> UserSession {
        let pushes: Pushes = Arc::default();
        let (c, s, p) = (client.clone(), store.clone(), pushes.clone());
        let events_task = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let Event::Inbound {
                    request, responder, ..
                } = event
                else {
                    continue;
                };
                let response = match request {
                    Request::Blob(r) => Response::Blob(blobs::serve(&s, &r)),
                    Request::Result(result) => {
                        let tx = p
                            .lock()
                            .expect("poisoned")
                            .get(&result.receipt.body.job_id)
                            .cloned();
                        if let Some(tx) = tx {
                            let _ = tx.try_send(result);
                        }
                        Response::Result(ResultResponse::Ok)
                    }
                    Request::Job(_) => Response::Job(JobResponse::Rejected {
                        reason: "this node is a user".into(),
                    }),
                    Request::Task(_) => Response::Task(TaskResponse::Rejected {
                        reason: "this node is a user".into(),
                    }),
                };
                c.respond(responder, response).await;
            }
        });
        UserSession {
            blobs: Blobs::new(client.clone(), store.clone()),
            client,
            store,
            validator_addr: addr,
            validator: Mutex::new(validator),
            pushes,
            events_task,
        }
    }

    /// The session's blob store (what it serves to the validator).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The validator's peer id.
    pub fn validator(&self) -> PeerId {
        *self.validator.lock().expect("poisoned")
    }

    /// Dials the validator again if the connection dropped (it may have restarted).
    async fn reconnect(&self) {
        if self.client.is_connected(self.validator()).await {
            return;
        }
        match self.client.dial(self.validator_addr.clone()).await {
            Ok(peer) => *self.validator.lock().expect("poisoned") = peer,
            Err(e) => tracing::debug!("validator unreachable: {e}"),
        }
    }

    /// `/smartnodes/job/1 Status`.
    pub async fn status(&self, job: Option<Hash>) -> Result<JobResponse, UserError> {
        Ok(self
            .client
            .job(self.validator(), JobRequest::Status { job })
            .await?)
    }

    /// The spec of a job this session's key owns (`Rejected` for anyone else's).
    pub async fn spec(&self, job: Hash) -> Result<JobSpec, UserError> {
        match self
            .client
            .job(self.validator(), JobRequest::Spec { job })
            .await?
        {
            JobResponse::Spec(spec) if spec.id() == job => Ok(*spec),
            JobResponse::Spec(_) => Err(UserError::Unexpected),
            JobResponse::Rejected { reason } => Err(UserError::Rejected(reason)),
            _ => Err(UserError::Unexpected),
        }
    }

    /// Epochs (issue 6): the validator's executed epochs' contents from `from` on.
    pub async fn epochs(&self, from: u64) -> Result<JobResponse, UserError> {
        Ok(self
            .client
            .job(self.validator(), JobRequest::Epochs { from })
            .await?)
    }

    /// Evidence (issue 21): the evidence bundle `id` from the validator. Asks for its claim
    /// (again after a pause while the validator says it is busy, up to 10 times), checks
    /// that the claim is the one named, fetches the task's module and input as blobs and
    /// checks them against the claim's hashes.
    pub async fn evidence(&self, id: Hash) -> Result<crate::evidence::Bundle, UserError> {
        let validator = self.validator();
        let mut tries = 0;
        let claim = loop {
            match self
                .client
                .blob(validator, BlobRequest::Evidence { id })
                .await?
            {
                BlobResponse::Claim(claim) => break *claim,
                BlobResponse::NotFound => {
                    return Err(UserError::Rejected(format!(
                        "the validator has no evidence bundle {}",
                        hex::encode(id)
                    )))
                }
                BlobResponse::Busy if tries < 10 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                BlobResponse::Busy => {
                    return Err(UserError::Rejected("too many evidence requests".into()))
                }
                _ => return Err(UserError::Unexpected),
            }
        };
        if claim.id() != id {
            return Err(UserError::Invalid(
                "the validator sent the claim of another bundle".into(),
            ));
        }
        let task = claim.task().clone();
        let mut bytes = Vec::new();
        for (blob, max) in [
            (task.module, crate::evidence::MAX_MODULE),
            (task.input, limits::MAX_BLOB),
        ] {
            self.blobs
                .fetch(validator, blob, max)
                .await
                .map_err(|e| UserError::Rejected(format!("fetching the bundle's blobs: {e}")))?;
            let blob = self.store.blob(&blob)?.ok_or(UserError::Unexpected)?;
            bytes.push(blob.to_vec());
        }
        let input = bytes.pop().unwrap_or_default();
        let module = bytes.pop().unwrap_or_default();
        crate::evidence::Bundle::new(claim, module, input)
            .map_err(|e| UserError::Invalid(e.to_string()))
    }

    /// Submits a job and returns its id once the validator has stored it.
    pub async fn submit(&self, job: &JobRequestSpec) -> Result<Hash, UserError> {
        if job.inputs.is_empty() || job.inputs.len() > limits::MAX_TASKS {
            return Err(UserError::Invalid(format!(
                "a job has 1 to {} tasks",
                limits::MAX_TASKS
            )));
        }
        job.limits.check().map_err(UserError::Invalid)?;
        let module = self.store.put_blob(&job.module)?;
        let mut inputs = Vec::with_capacity(job.inputs.len());
        let mut inline = Vec::new();
        let mut inline_total = 0;
        let mut seen = std::collections::HashSet::new();
        for blob in std::iter::once(&job.module).chain(&job.inputs) {
            if blob.len() as u64 > limits::MAX_BLOB {
                return Err(UserError::Invalid(format!(
                    "a blob of {} bytes is over the limit of {}",
                    blob.len(),
                    limits::MAX_BLOB
                )));
            }
            let id = self.store.put_blob(blob)?;
            if seen.insert(id)
                && blob.len() <= limits::INLINE_BLOB
                && inline_total + blob.len() <= limits::INLINE_TOTAL
            {
                inline_total += blob.len();
                inline.push(blob.clone());
            }
        }
        for input in &job.inputs {
            inputs.push(sha256(input));
        }
        let spec = JobSpec {
            module,
            inputs,
            limits: job.limits,
            owner: self.client.peer_id().to_bytes(),
            nonce: rand::random(),
            sample_ppm: job.sample_ppm,
        };
        let expected = spec.id();
        let answer = self
            .client
            .job(
                self.validator(),
                JobRequest::Submit {
                    spec,
                    blobs: inline,
                },
            )
            .await?;
        match answer {
            JobResponse::Submitted { job_id } if job_id == expected => Ok(job_id),
            JobResponse::Submitted { .. } => Err(UserError::Unexpected),
            JobResponse::Rejected { reason } => Err(UserError::Rejected(reason)),
            _ => Err(UserError::Unexpected),
        }
    }

    /// Checks one result against the job; returns the task's outcome.
    async fn check(&self, job_id: &Hash, total: u32, result: TaskResult) -> Option<TaskOutcome> {
        let worker = match result.receipt.verify() {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!("a result with an invalid receipt: {e}");
                return None;
            }
        };
        let body = &result.receipt.body;
        if body.job_id != *job_id || body.index >= total {
            tracing::warn!("a result for another task");
            return None;
        }
        let output = match (result.output, body.output_hash) {
            (Some(o), Some(h)) if sha256(&o) == h => o,
            (Some(_), _) => {
                tracing::warn!(
                    index = body.index,
                    "an output that does not match its receipt"
                );
                return None;
            }
            (None, Some(h)) => {
                if let Err(e) = self
                    .blobs
                    .fetch(self.validator(), h, limits::MAX_BLOB)
                    .await
                {
                    tracing::warn!(index = body.index, "fetching an output: {e}");
                    return None;
                }
                self.store.blob(&h).ok().flatten()?.to_vec()
            }
            (None, None) => Vec::new(),
        };
        Some(TaskOutcome {
            index: body.index,
            worker,
            output,
            receipt: result.receipt,
        })
    }

    /// Waits for every result of a submitted job, calling `progress` for each as it is
    /// checked. Gives up after `timeout` without any new result.
    pub async fn wait(
        &self,
        job_id: Hash,
        total: u32,
        timeout: Duration,
        mut progress: impl FnMut(&TaskOutcome, usize),
    ) -> Result<JobReport, UserError> {
        let (tx, mut rx) = mpsc::channel(1024);
        self.pushes.lock().expect("poisoned").insert(job_id, tx);
        let result = async {
            let mut held = Held::new(total as usize);
            let mut replaced = Vec::new();
            let mut poll = tokio::time::interval(Duration::from_millis(500));
            poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The job is over when we hold every result and the validator says it is done
            // (every sampled result checked) without having withdrawn any we hold.
            let mut confirmed = false;
            // Once every result is here, ask at once whether the job's last checks are
            // through, then again after 5, 10, 20, ... ms (at most every 500 ms).
            let mut full_backoff: Option<Duration> = None;
            loop {
                let full = held.is_full();
                if full && confirmed {
                    break;
                }
                let polled = if full {
                    match full_backoff {
                        None => full_backoff = Some(Duration::from_millis(5)),
                        Some(d) => {
                            tokio::time::sleep(d).await;
                            full_backoff = Some((d * 2).min(Duration::from_millis(500)));
                        }
                    }
                    true
                } else {
                    full_backoff = None;
                    tokio::select! {
                        Some(r) = rx.recv() => {
                            self.take(&job_id, total, vec![r], &mut held, &mut progress).await;
                            false
                        }
                        _ = poll.tick() => true,
                    }
                };
                if !polled {
                    continue;
                }
                if held.last_progress.elapsed() > timeout {
                    return Err(UserError::Timeout(timeout));
                }
                let have = held.bitset();
                let answer = self
                    .client
                    .job(self.validator(), JobRequest::Results { job: job_id, have })
                    .await;
                match answer {
                    Ok(JobResponse::Results {
                        results,
                        done: job_done,
                        revoked,
                        ..
                    }) => {
                        let dropped = held.drop_revoked(&revoked.into_iter().collect(), &mut replaced);
                        if dropped > 0 {
                            tracing::warn!(
                                dropped,
                                "results withdrawn by the validator (their worker was proven a fraud); waiting for the re-runs"
                            );
                        }
                        confirmed = job_done && dropped == 0 && results.is_empty();
                        self.take(&job_id, total, results, &mut held, &mut progress).await;
                    }
                    Ok(JobResponse::Rejected { reason }) => return Err(UserError::Rejected(reason)),
                    Ok(_) => return Err(UserError::Unexpected),
                    Err(e) => {
                        tracing::debug!("polling results: {e}");
                        self.reconnect().await;
                    }
                }
            }
            Ok(JobReport {
                job_id,
                tasks: held.slots.into_iter().map(|d| d.expect("all done")).collect(),
                replaced,
            })
        }
        .await;
        self.pushes.lock().expect("poisoned").remove(&job_id);
        result
    }

    /// Checks and keeps the results in `batch` for tasks not held yet.
    async fn take(
        &self,
        job_id: &Hash,
        total: u32,
        batch: Vec<TaskResult>,
        held: &mut Held,
        progress: &mut impl FnMut(&TaskOutcome, usize),
    ) {
        for result in batch {
            if !held.wants(result.receipt.body.index as usize) {
                continue;
            }
            if let Some(outcome) = self.check(job_id, total, result).await {
                progress(&outcome, held.count + 1);
                held.put(outcome);
            }
        }
    }

    /// Submits a job and waits for all its results.
    pub async fn run_job(
        &self,
        job: &JobRequestSpec,
        timeout: Duration,
        progress: impl FnMut(&TaskOutcome, usize),
    ) -> Result<JobReport, UserError> {
        let job_id = self.submit(job).await?;
        self.wait(job_id, job.inputs.len() as u32, timeout, progress)
            .await
    }

    /// Stops the session's network.
    pub async fn close(self) {
        self.client.shutdown().await;
    }
}

/// The checked results of one job that [`UserSession::wait`] holds so far.
struct Held {
    /// By task index.
    slots: Vec<Option<TaskOutcome>>,
    /// How many slots hold a result.
    count: usize,
    /// When a result last came in or was withdrawn.
    last_progress: tokio::time::Instant,
}

impl Held {
    fn new(total: usize) -> Held {
        Held {
            slots: vec![None; total],
            count: 0,
            last_progress: tokio::time::Instant::now(),
        }
    }

    fn is_full(&self) -> bool {
        self.count == self.slots.len()
    }

    /// Whether task `index` exists and has no result yet.
    fn wants(&self, index: usize) -> bool {
        self.slots.get(index).is_some_and(|d| d.is_none())
    }

    /// Keeps a checked result (its slot must be [`Held::wants`]).
    fn put(&mut self, outcome: TaskOutcome) {
        let index = outcome.index as usize;
        self.slots[index] = Some(outcome);
        self.count += 1;
        self.last_progress = tokio::time::Instant::now();
    }

    /// Drops every result whose receipt is in `revoked`, noting each in `replaced`;
    /// returns how many.
    fn drop_revoked(&mut self, revoked: &HashSet<Hash>, replaced: &mut Vec<Replaced>) -> usize {
        let mut dropped = 0;
        for slot in self.slots.iter_mut() {
            if let Some(t) = slot.take_if(|t| revoked.contains(&t.receipt.hash())) {
                replaced.push(Replaced {
                    index: t.index,
                    receipt: t.receipt.hash(),
                    worker: t.worker,
                    reason: REPLACED_REASON.into(),
                });
                dropped += 1;
            }
        }
        if dropped > 0 {
            self.count -= dropped;
            self.last_progress = tokio::time::Instant::now();
        }
        dropped
    }

    /// Bit `i % 8` of byte `i / 8` set for each task held (what `Results` asks with).
    fn bitset(&self) -> Vec<u8> {
        let mut bits = vec![0u8; self.slots.len().div_ceil(8)];
        for (i, d) in self.slots.iter().enumerate() {
            if d.is_some() {
                bits[i / 8] |= 1 << (i % 8);
            }
        }
        bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::identity::Keypair;

    fn outcome(index: u32, key: &Keypair, output: &[u8]) -> TaskOutcome {
        let body = ReceiptBody {
            job_id: [1; 32],
            index,
            task: [2; 32],
            verdict: (0, 0),
            output_hash: Some(sha256(output)),
            fuel_used: 10,
            engine: [3; 32],
            worker: key.public().to_peer_id().to_bytes(),
        };
        TaskOutcome {
            index,
            receipt: Receipt::sign(body, key),
            output: output.to_vec(),
            worker: key.public().to_peer_id(),
        }
    }

    #[test]
    fn revoked_results_are_dropped_and_listed_as_replaced() {
        let (cheat, honest) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let mut held = Held::new(3);
        held.put(outcome(0, &honest, b"a"));
        let bad = outcome(1, &cheat, b"wrong");
        let bad_hash = bad.receipt.hash();
        held.put(bad);
        held.put(outcome(2, &honest, b"c"));
        assert!(held.is_full());
        let mut replaced = Vec::new();
        let revoked: HashSet<Hash> = [bad_hash, [9; 32]].into_iter().collect();
        assert_eq!(held.drop_revoked(&revoked, &mut replaced), 1);
        assert!(held.wants(1) && !held.wants(0) && !held.is_full());
        assert_eq!(
            replaced,
            vec![Replaced {
                index: 1,
                receipt: bad_hash,
                worker: cheat.public().to_peer_id(),
                reason: REPLACED_REASON.into(),
            }]
        );
        // The re-run takes the slot; the report lists what it replaced.
        held.put(outcome(1, &honest, b"right"));
        let report = JobReport {
            job_id: [1; 32],
            tasks: held.slots.into_iter().map(|t| t.unwrap()).collect(),
            replaced,
        };
        let json = report.to_json();
        assert_eq!(json["replaced"][0]["index"], 1);
        assert_eq!(json["replaced"][0]["receipt"], hex::encode(bad_hash));
        assert_eq!(json["replaced"][0]["reason"], REPLACED_REASON);
        assert_eq!(json["tasks"][1]["output_len"], 5);
    }
}
