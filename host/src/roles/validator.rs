//! The validator: admits jobs, assigns tasks to workers by reputation and free capacity,
//! holds a lease per assigned task (renewed by the worker's heartbeats; a task whose
//! worker goes silent or disconnects goes back to the queue), checks each result's signed
//! receipt and output hash, records the first valid one per task, and answers users.
//!
//! Everything lives in sled first; the in-memory [`State`] (queue, workers, leases) is
//! rebuilt from it on start, so a validator killed and restarted resumes its jobs.
//!
//! Verification ([`verify`]): after a receipt is accepted (the worker has committed to it),
//! the validator decides from a secret whether to re-execute it, re-runs sampled tasks
//! on a single background lane, and turns a mismatch into a signed fraud proof that
//! blacklists the worker, withdraws its results and sends their tasks to honest workers.

mod evidence;
mod verify;

use super::blobs::{self, Blobs};
use super::NodeConfig;
use crate::net::proto::*;
use crate::net::{Client, Event, Request, Response};
use crate::store::{
    split_task_key, task_key, JobProgress, JobRecord, JobState, JobStats, Lease, Store, StoreError,
    TaskRecord, TaskState,
};
use libp2p::identity::Keypair;
use libp2p::PeerId;
use smartnodes_runtime::{sha256, Runtime};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

type TaskId = (Hash, u32);

/// How long a job record (which validator holds a job) stays valid in the DHT.
const JOB_RECORD_TTL_SECS: u64 = 24 * 3600;

#[derive(Debug)]
struct WorkerInfo {
    /// Slots the worker advertised.
    capacity: u32,
    /// Tasks it may hold at once: twice its slots (so that no slot waits on the network for
    /// its next task), fewer after it said it was busy, until its next heartbeat.
    usable: u32,
    running: HashSet<TaskId>,
    last_seen: Instant,
    reputation: i64,
}

#[derive(Debug)]
struct JobMeta {
    spec: Arc<JobSpec>,
    owner: Option<PeerId>,
    /// The job's check budget so far ([`verify::check_rate`]).
    budget: verify::Budget,
}

#[derive(Debug)]
struct Holder {
    worker: PeerId,
    renewed: Instant,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<TaskId>,
    workers: HashMap<PeerId, WorkerInfo>,
    jobs: HashMap<Hash, JobMeta>,
    assigned: HashMap<TaskId, Holder>,
    fetching: HashSet<Hash>,
    /// Sampled receipts not yet re-executed, per job: a job is done when every task has
    /// a result and none of its results waits for its check.
    pending_checks: HashMap<Hash, u32>,
    /// Workers proven frauds (peer id → proof id), mirrored from sled.
    blacklist: HashMap<PeerId, Hash>,
    /// The last worker of each task taken back from it (lease expired, worker dropped,
    /// validator restarted) and not done yet: its late result is still accepted, as the
    /// current holder's is; anyone else's is refused (issue 17).
    former: HashMap<TaskId, PeerId>,
}

/// Remembers who held task `id` (if anyone) as it goes back to the queue: that worker's
/// late result stays acceptable ([`may_deliver`]).
fn remember_holder(st: &mut State, id: TaskId, state: &TaskState) {
    if let TaskState::Assigned { worker } = state {
        if let Some(worker) = peer_of(worker) {
            st.former.insert(id, worker);
        }
    }
}

/// Whether `peer` may deliver the result of task `id`, whose record is `task`: the worker
/// it is assigned to, or the one it was last taken back from.
fn may_deliver(st: &State, id: &TaskId, task: &TaskRecord, peer: &PeerId) -> bool {
    match &task.state {
        TaskState::Assigned { worker } if *worker == peer.to_bytes() => true,
        TaskState::Done { .. } => true, // a duplicate, answered as one
        _ => st.former.get(id) == Some(peer),
    }
}

/// A running validator.
pub(crate) struct Validator {
    client: Client,
    store: Store,
    blobs: Blobs,
    state: Mutex<State>,
    lease: Duration,
    keypair: Keypair,
    runtime: Arc<Runtime>,
    /// The key of the sampling draw, unknown to workers.
    secret: [u8; 32],
    /// The default sample rate (parts per million).
    sample_ppm: u32,
    /// The share of a job's fuel re-executed at most beyond its sample rate (parts per
    /// million): what checking new workers may cost ([`verify::check_rate`]).
    check_budget_ppm: u32,
    /// Wakes the verification lane.
    checks: tokio::sync::Notify,
    /// Epochs (issue 6): `None` without a chain.
    epochs: Option<Arc<crate::epoch::EpochNode>>,
    /// Evidence (issue 21): the rate of evidence requests served.
    evidence_limiter: Mutex<evidence::Limiter>,
    /// Metrics (issue 18).
    metrics: Arc<crate::metrics::Metrics>,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("peer", &self.client.peer_id())
            .field("sample_ppm", &self.sample_ppm)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn peer_of(bytes: &[u8]) -> Option<PeerId> {
    PeerId::from_bytes(bytes).ok()
}

impl Validator {
    /// Loads the state from `store` and starts the validator's loops.
    pub(crate) async fn start(
        config: &NodeConfig,
        client: Client,
        store: Store,
        runtime: Arc<Runtime>,
        mut events: mpsc::Receiver<Event>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
        epochs: Option<Arc<crate::epoch::EpochNode>>,
    ) -> Result<tokio::task::JoinHandle<()>, StoreError> {
        let validator = Arc::new(Validator {
            epochs,
            blobs: Blobs::new(client.clone(), store.clone()),
            secret: store.secret("sampling")?,
            client,
            store,
            state: Mutex::new(State::default()),
            lease: config.lease,
            keypair: config.keypair.clone(),
            runtime,
            sample_ppm: config.sample_ppm.min(1_000_000),
            check_budget_ppm: config.check_budget_ppm.min(1_000_000),
            checks: tokio::sync::Notify::new(),
            evidence_limiter: Mutex::new(evidence::Limiter::new(Instant::now())),
            metrics: config.metrics.clone(),
        });
        validator.recover()?;
        // The network dials the bootstrap peers (and redials them) and publishes the
        // role record (`net::discovery`).

        let lane = tokio::spawn(validator.clone().check_lane());
        let v = validator.clone();
        Ok(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    event = events.recv() => match event {
                        Some(event) => v.on_event(event),
                        None => break,
                    },
                    _ = tick.tick() => v.on_tick(),
                    _ = shutdown.changed() => break,
                }
            }
            lane.abort();
            let _ = lane.await;
            let _ = v.store.flush().await;
        }))
    }

    /// Rebuilds the in-memory state from sled: every task not done goes back to the queue
    /// (leases do not survive a restart: their workers re-register and get new ones).
    fn recover(self: &Arc<Self>) -> Result<(), StoreError> {
        let mut resumed = 0;
        let mut fetching = Vec::new();
        {
            let mut st = self.state.lock().expect("poisoned");
            // Fuel of the receipts waiting for their check, per job (the check budget).
            let mut pending_fuel: HashMap<Hash, u64> = HashMap::new();
            for (key, receipt) in self.store.checks.scan(&[])? {
                if let Some((job, _)) = split_task_key(&key) {
                    *st.pending_checks.entry(job).or_default() += 1;
                    let fuel = pending_fuel.entry(job).or_default();
                    *fuel = fuel.saturating_add(receipt.body.fuel_used);
                }
            }
            for (key, rep) in self.store.reputation.scan(&[])? {
                if let (Some(proof), Some(peer)) = (rep.blacklisted, peer_of(&key)) {
                    st.blacklist.insert(peer, proof);
                }
            }
            for (key, job) in self.store.jobs.scan(&[])? {
                let Ok(job_id) = Hash::try_from(key.as_slice()) else {
                    continue;
                };
                let state = self
                    .store
                    .progress
                    .get(&job_id)?
                    .map_or(JobState::Fetching, |p| p.state);
                if state == JobState::Done {
                    continue;
                }
                let budget = self.budget_of(&job_id, &pending_fuel)?;
                st.jobs.insert(
                    job_id,
                    JobMeta {
                        owner: peer_of(&job.spec.owner),
                        spec: Arc::new(job.spec.clone()),
                        budget,
                    },
                );
                if state == JobState::Fetching {
                    fetching.push(job_id);
                    continue;
                }
                for (key, mut task) in self.store.tasks.scan(&job_id)? {
                    let Some(id) = split_task_key(&key) else {
                        continue;
                    };
                    if matches!(task.state, TaskState::Done { .. }) {
                        continue;
                    }
                    remember_holder(&mut st, id, &task.state);
                    if task.state != TaskState::Queued {
                        task.state = TaskState::Queued;
                        self.store.tasks.insert(&key, &task)?;
                    }
                    self.store.leases.remove(&key)?;
                    st.queue.push_back(id);
                    resumed += 1;
                }
            }
        }
        if resumed > 0 || !fetching.is_empty() {
            tracing::info!(
                resumed,
                fetching = fetching.len(),
                "validator resumed its jobs"
            );
        }
        for job_id in fetching {
            self.spawn_fetch(job_id);
        }
        Ok(())
    }

    fn on_event(self: &Arc<Self>, event: Event) {
        match event {
            Event::Inbound {
                peer,
                request,
                responder,
            } => {
                let v = self.clone();
                tokio::spawn(async move {
                    let response = v.on_request(peer, request).await;
                    v.client.respond(responder, response).await;
                });
            }
            Event::Disconnected(peer) => self.drop_worker(&peer, "disconnected"),
            Event::Gossip {
                message: Gossip::Fraud(proof),
                ..
            } => {
                let v = self.clone();
                tokio::spawn(async move { v.on_fraud_gossip(*proof).await });
            }
            // Epochs (issue 6).
            Event::Gossip {
                from,
                message: Gossip::Epoch(g),
            } => {
                if let Some(e) = &self.epochs {
                    e.on_gossip(from, *g);
                }
            }
            Event::Connected(_) => {}
        }
    }

    async fn on_request(self: &Arc<Self>, peer: PeerId, request: Request) -> Response {
        match request {
            // Evidence (issue 21).
            Request::Blob(BlobRequest::Evidence { id }) => {
                Response::Blob(self.serve_evidence(peer, &id))
            }
            Request::Blob(r) => Response::Blob(blobs::serve(&self.store, &r)),
            Request::Job(JobRequest::Submit { spec, blobs }) => {
                Response::Job(match self.on_submit(peer, spec, blobs).await {
                    Ok(job_id) => JobResponse::Submitted { job_id },
                    Err(reason) => JobResponse::Rejected { reason },
                })
            }
            // A job's status, results and spec are its owner's (issue 17); the job list
            // shows each caller its own jobs.
            Request::Job(JobRequest::Status { job }) => Response::Job(match job {
                Some(id) => match self.owned(&peer, &id) {
                    Ok(record) => self.status(Some((id, record)), &peer),
                    Err(refusal) => refusal,
                },
                None => self.status(None, &peer),
            }),
            Request::Job(JobRequest::Results { job, have }) => {
                Response::Job(match self.owned(&peer, &job) {
                    Ok(record) => self.results(&job, record.spec.inputs.len() as u32, &have),
                    Err(refusal) => refusal,
                })
            }
            Request::Job(JobRequest::Spec { job }) => {
                Response::Job(match self.owned(&peer, &job) {
                    Ok(record) => JobResponse::Spec(Box::new(record.spec)),
                    Err(refusal) => refusal,
                })
            }
            // Epochs (issue 6).
            Request::Job(JobRequest::Epochs { from }) => Response::Job(match &self.epochs {
                Some(e) => JobResponse::Epochs(e.executed_from(from)),
                None => JobResponse::Rejected {
                    reason: "this validator runs without a chain".into(),
                },
            }),
            Request::Task(TaskRequest::Register {
                capacity,
                address,
                engine,
            }) => {
                if let Some(proof) = self.blacklisted(&peer) {
                    return Response::Task(TaskResponse::Rejected {
                        reason: format!("blacklisted by fraud proof {}", hex::encode(proof)),
                    });
                }
                // One engine per network: a worker with another one cannot join.
                if engine != self.engine() {
                    return Response::Task(TaskResponse::Rejected {
                        reason: format!(
                            "engine {} is not this network's {}: run the network's \
                             smartnodes version (in-wasm meter)",
                            hex::encode(engine),
                            hex::encode(self.engine())
                        ),
                    });
                }
                // Epochs (issue 6): only workers registered on chain.
                if let Some(e) = &self.epochs {
                    if let Err(reason) = e.admit_worker(peer, address).await {
                        return Response::Task(TaskResponse::Rejected { reason });
                    }
                }
                self.register(peer, capacity);
                Response::Task(TaskResponse::Ok)
            }
            Request::Task(TaskRequest::Heartbeat { running }) => {
                Response::Task(self.heartbeat(peer, running))
            }
            Request::Task(TaskRequest::Assign(_)) => Response::Task(TaskResponse::Rejected {
                reason: "this node is a validator".into(),
            }),
            Request::Result(result) => Response::Result(self.on_result(peer, result).await),
        }
    }

    // ---- jobs ------------------------------------------------------------------------

    async fn on_submit(
        self: &Arc<Self>,
        peer: PeerId,
        spec: JobSpec,
        inline: Vec<Vec<u8>>,
    ) -> Result<Hash, String> {
        if spec.owner != peer.to_bytes() {
            return Err("the job's owner is not the submitter".into());
        }
        if spec.inputs.is_empty() || spec.inputs.len() > limits::MAX_TASKS {
            return Err(format!(
                "a job has 1 to {} tasks, not {}",
                limits::MAX_TASKS,
                spec.inputs.len()
            ));
        }
        spec.limits.check()?;
        let wanted: HashSet<Hash> = spec.inputs.iter().copied().chain([spec.module]).collect();
        let mut total = 0;
        for blob in &inline {
            total += blob.len();
            if blob.len() > limits::INLINE_BLOB || total > limits::INLINE_TOTAL {
                return Err("inline blobs too large".into());
            }
            if !wanted.contains(&sha256(blob)) {
                return Err("an inline blob is not part of the job".into());
            }
        }
        let job_id = spec.id();
        let fail = |e: StoreError| e.to_string();
        if self.store.jobs.get(&job_id).map_err(fail)?.is_some() {
            return Ok(job_id); // Submitting twice is one job.
        }
        for blob in &inline {
            self.store.put_blob(blob).map_err(fail)?;
        }
        let mut missing = false;
        for id in &wanted {
            missing |= !self.store.has_blob(id).map_err(fail)?;
        }
        let state = if missing {
            JobState::Fetching
        } else {
            JobState::Running
        };
        for index in 0..spec.inputs.len() as u32 {
            self.store
                .tasks
                .insert(
                    &task_key(&job_id, index),
                    &TaskRecord {
                        state: TaskState::Queued,
                        attempts: 0,
                    },
                )
                .map_err(fail)?;
        }
        self.store
            .progress
            .insert(&job_id, &JobProgress { state, done: 0 })
            .map_err(fail)?;
        // The job record goes last: its presence means the job is whole.
        self.store
            .jobs
            .insert(&job_id, &JobRecord { spec: spec.clone() })
            .map_err(fail)?;
        self.store.flush().await.map_err(fail)?;
        tracing::info!(job = %hex::encode(job_id), tasks = spec.inputs.len(), ?state, "job admitted");

        let tasks = spec.inputs.len() as u32;
        self.state.lock().expect("poisoned").jobs.insert(
            job_id,
            JobMeta {
                spec: Arc::new(spec),
                owner: Some(peer),
                budget: verify::Budget::default(),
            },
        );
        if missing {
            self.spawn_fetch(job_id);
        } else {
            self.start_job(job_id);
        }
        // Who holds the job: a signed, expiring DHT record, and an announcement.
        let record = SignedRecord::sign(
            RecordBody::Job {
                job_id,
                validator: self.client.peer_id().to_bytes(),
                tasks,
                expires: unix_now() + JOB_RECORD_TTL_SECS,
            },
            &self.keypair,
        );
        let client = self.client.clone();
        tokio::spawn(async move { client.put_record(record).await });
        Ok(job_id)
    }

    /// Fetches a job's missing blobs from its owner, retrying while it is away.
    fn spawn_fetch(self: &Arc<Self>, job_id: Hash) {
        if !self.state.lock().expect("poisoned").fetching.insert(job_id) {
            return;
        }
        let v = self.clone();
        tokio::spawn(async move {
            let (spec, owner) = {
                let st = v.state.lock().expect("poisoned");
                let Some(meta) = st.jobs.get(&job_id) else {
                    return;
                };
                (meta.spec.clone(), meta.owner)
            };
            let Some(owner) = owner.or_else(|| peer_of(&spec.owner)) else {
                return;
            };
            let wanted: Vec<Hash> = [spec.module]
                .into_iter()
                .chain(spec.inputs.iter().copied())
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            let mut attempt = 0u32;
            'outer: loop {
                for id in &wanted {
                    let max = if *id == spec.module {
                        smartnodes_runtime::Limits::DEFAULT.max_module_bytes
                    } else {
                        limits::MAX_BLOB
                    };
                    if let Err(e) = v.blobs.fetch(owner, *id, max).await {
                        attempt += 1;
                        tracing::debug!(job = %hex::encode(job_id), attempt, "fetching a blob from the owner: {e}");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue 'outer;
                    }
                }
                break;
            }
            let mark = || -> Result<(), StoreError> {
                let done = v.store.progress.get(&job_id)?.map_or(0, |p| p.done);
                v.store.progress.insert(
                    &job_id,
                    &JobProgress {
                        state: JobState::Running,
                        done,
                    },
                )?;
                Ok(())
            };
            if let Err(e) = mark() {
                tracing::error!("recording a job: {e}");
                return;
            }
            let _ = v.store.flush().await;
            v.state.lock().expect("poisoned").fetching.remove(&job_id);
            v.start_job(job_id);
        });
    }

    fn start_job(self: &Arc<Self>, job_id: Hash) {
        {
            let mut st = self.state.lock().expect("poisoned");
            let Some(meta) = st.jobs.get(&job_id) else {
                return;
            };
            let n = meta.spec.inputs.len() as u32;
            st.queue.extend((0..n).map(|i| (job_id, i)));
        }
        self.schedule();
    }

    // ---- workers and scheduling ------------------------------------------------------

    fn register(self: &Arc<Self>, peer: PeerId, capacity: u32) {
        let capacity = capacity.clamp(1, 1024);
        let reputation = self
            .store
            .reputation_of(&peer.to_bytes())
            .map_or(0, |r| r.score);
        {
            let mut st = self.state.lock().expect("poisoned");
            let w = st.workers.entry(peer).or_insert_with(|| WorkerInfo {
                capacity,
                usable: capacity * 2,
                running: HashSet::new(),
                last_seen: Instant::now(),
                reputation,
            });
            w.capacity = capacity;
            w.usable = capacity * 2;
            w.last_seen = Instant::now();
        }
        tracing::info!(%peer, capacity, "worker registered");
        self.schedule();
    }

    fn heartbeat(self: &Arc<Self>, peer: PeerId, running: Vec<TaskId>) -> TaskResponse {
        let mut st = self.state.lock().expect("poisoned");
        let Some(w) = st.workers.get_mut(&peer) else {
            return TaskResponse::Rejected {
                reason: "unknown worker: register first".into(),
            };
        };
        w.last_seen = Instant::now();
        w.usable = w.capacity * 2;
        let now = Instant::now();
        for id in running.into_iter().take(limits::MAX_TASKS) {
            if let Some(h) = st.assigned.get_mut(&id) {
                if h.worker == peer {
                    h.renewed = now;
                }
            }
        }
        drop(st);
        self.schedule();
        TaskResponse::Ok
    }

    /// Forgets a worker and puts its tasks back in the queue.
    fn drop_worker(self: &Arc<Self>, peer: &PeerId, why: &str) {
        let requeued = {
            let mut st = self.state.lock().expect("poisoned");
            let Some(w) = st.workers.remove(peer) else {
                return;
            };
            let mut ids: Vec<TaskId> = w.running.into_iter().collect();
            ids.sort();
            for id in &ids {
                st.assigned.remove(id);
                self.requeue_locked(&mut st, *id);
            }
            ids.len()
        };
        if requeued > 0 {
            let _ = self
                .store
                .update_reputation(&peer.to_bytes(), |r| r.score -= 1);
        }
        tracing::info!(%peer, requeued, "worker dropped: {why}");
        self.schedule();
    }

    /// Puts a task back at the front of the queue (its sled record too).
    fn requeue_locked(&self, st: &mut State, id: TaskId) {
        let key = task_key(&id.0, id.1);
        match self.store.tasks.get(&key) {
            Ok(Some(mut task)) if !matches!(task.state, TaskState::Done { .. }) => {
                remember_holder(st, id, &task.state);
                task.state = TaskState::Queued;
                let _ = self.store.tasks.insert(&key, &task);
                let _ = self.store.leases.remove(&key);
                st.queue.push_front(id);
            }
            Ok(_) => {}
            Err(e) => tracing::error!("requeueing a task: {e}"),
        }
    }

    fn on_tick(self: &Arc<Self>) {
        let silent: Vec<PeerId> = {
            let st = self.state.lock().expect("poisoned");
            st.workers
                .iter()
                .filter(|(_, w)| w.last_seen.elapsed() > self.lease)
                .map(|(p, _)| *p)
                .collect()
        };
        for peer in silent {
            self.drop_worker(&peer, "silent");
        }
        let expired = {
            let mut st = self.state.lock().expect("poisoned");
            let expired: Vec<TaskId> = st
                .assigned
                .iter()
                .filter(|(_, h)| h.renewed.elapsed() > self.lease)
                .map(|(id, _)| *id)
                .collect();
            for id in &expired {
                if let Some(h) = st.assigned.remove(id) {
                    if let Some(w) = st.workers.get_mut(&h.worker) {
                        w.running.remove(id);
                        w.reputation -= 1;
                    }
                    // Timeouts lower the score gradually and halve the verified streak
                    // (so the worker is sampled more for a while); they are not fraud.
                    let _ = self.store.update_reputation(&h.worker.to_bytes(), |r| {
                        r.score -= 1;
                        r.timeouts += 1;
                        r.streak /= 2;
                    });
                }
                self.requeue_locked(&mut st, *id);
            }
            expired.len()
        };
        if expired > 0 {
            self.metrics.leases_expired.inc_by(expired as u64);
            tracing::info!(expired, "leases expired; tasks requeued");
        }
        self.schedule();
        let depth = self.state.lock().expect("poisoned").queue.len();
        self.metrics.queue_depth.set(depth as i64);
    }

    /// Gives queued tasks to the workers with free slots, best reputation first.
    fn schedule(self: &Arc<Self>) {
        let mut sends = Vec::new();
        {
            let mut st = self.state.lock().expect("poisoned");
            while !st.queue.is_empty() {
                let best = st
                    .workers
                    .iter()
                    .filter(|(_, w)| (w.running.len() as u32) < w.usable)
                    .max_by_key(|(p, w)| {
                        (
                            w.reputation,
                            w.usable - w.running.len() as u32,
                            p.to_bytes(),
                        )
                    })
                    .map(|(p, _)| *p);
                let Some(worker) = best else {
                    break;
                };
                let id = st.queue.pop_front().expect("not empty");
                let Some(meta) = st.jobs.get(&id.0) else {
                    continue;
                };
                let spec = meta.spec.clone();
                let key = task_key(&id.0, id.1);
                let task = match self.store.tasks.get(&key) {
                    Ok(Some(t)) if t.state == TaskState::Queued => t,
                    Ok(_) => continue, // done, or queued twice
                    Err(e) => {
                        tracing::error!("reading a task: {e}");
                        continue;
                    }
                };
                let record = TaskRecord {
                    state: TaskState::Assigned {
                        worker: worker.to_bytes(),
                    },
                    attempts: task.attempts + 1,
                };
                let lease = Lease {
                    worker: worker.to_bytes(),
                    granted_ms: now_ms(),
                };
                if let Err(e) = self
                    .store
                    .tasks
                    .insert(&key, &record)
                    .and_then(|_| self.store.leases.insert(&key, &lease))
                {
                    tracing::error!("recording an assignment: {e}");
                    st.queue.push_front(id);
                    break;
                }
                st.assigned.insert(
                    id,
                    Holder {
                        worker,
                        renewed: Instant::now(),
                    },
                );
                st.workers
                    .get_mut(&worker)
                    .expect("picked above")
                    .running
                    .insert(id);
                sends.push((worker, id, spec));
            }
            // Fresh after every scheduling round (a result, a registration, a tick), so a
            // scrape right after a job's last result sees its queue as it is.
            self.metrics.queue_depth.set(st.queue.len() as i64);
        }
        for (worker, id, spec) in sends {
            let input = spec.inputs[id.1 as usize];
            let input_inline = self
                .store
                .blob(&input)
                .ok()
                .flatten()
                .filter(|b| b.len() <= limits::INLINE_BLOB)
                .map(|b| b.to_vec());
            let assignment = Assignment {
                job_id: id.0,
                index: id.1,
                module: spec.module,
                input,
                input_inline,
                limits: spec.limits,
                lease_ms: self.lease.as_millis() as u64,
            };
            let v = self.clone();
            tokio::spawn(async move {
                let answer = v.client.task(worker, TaskRequest::Assign(assignment)).await;
                let busy = match answer {
                    Ok(TaskResponse::Ok) => return,
                    Ok(TaskResponse::Busy) => true,
                    Ok(TaskResponse::Rejected { reason }) => {
                        tracing::warn!(%worker, "assignment rejected: {reason}");
                        false
                    }
                    Err(e) => {
                        tracing::debug!(%worker, "assignment failed: {e}");
                        false
                    }
                };
                {
                    let mut st = v.state.lock().expect("poisoned");
                    let held = st.assigned.get(&id).is_some_and(|h| h.worker == worker);
                    if held {
                        st.assigned.remove(&id);
                        if let Some(w) = st.workers.get_mut(&worker) {
                            w.running.remove(&id);
                            if busy {
                                w.usable = (w.running.len() as u32).max(1);
                            }
                        }
                        v.requeue_locked(&mut st, id);
                    }
                }
                if !busy {
                    let _ = v
                        .store
                        .update_reputation(&worker.to_bytes(), |r| r.score -= 1);
                    if let Some(w) = v.state.lock().expect("poisoned").workers.get_mut(&worker) {
                        w.reputation -= 1;
                    }
                }
                v.schedule();
            });
        }
    }

    // ---- results ---------------------------------------------------------------------

    /// The one place receipts are judged. Issue 5 (verification) hooks in here: sampling,
    /// re-execution and fraud proofs start from an accepted receipt.
    async fn on_result(self: &Arc<Self>, peer: PeerId, result: TaskResult) -> ResultResponse {
        let reject = |reason: String| {
            tracing::warn!(%peer, "result rejected: {reason}");
            ResultResponse::Rejected { reason }
        };
        let worker = match result.receipt.verify() {
            Ok(w) => w,
            Err(e) => return reject(format!("receipt: {e}")),
        };
        if worker != peer {
            return reject("the receipt is not the sender's".into());
        }
        if let Some(proof) = self.blacklisted(&peer) {
            return reject(format!("blacklisted by fraud proof {}", hex::encode(proof)));
        }
        let body = &result.receipt.body;
        let id = (body.job_id, body.index);
        let key = task_key(&id.0, id.1);
        let (total, spec) = {
            let st = self.state.lock().expect("poisoned");
            match st.jobs.get(&id.0) {
                Some(meta) => (meta.spec.inputs.len() as u32, meta.spec.clone()),
                None => {
                    drop(st);
                    // A finished job: a late duplicate is fine, anything else is not ours.
                    return match self.store.receipts.get(&key) {
                        Ok(Some(_)) => ResultResponse::Ok,
                        _ => reject("unknown job".into()),
                    };
                }
            }
        };
        if body.index >= total {
            return reject("no such task".into());
        }
        let task = match TaskSpec::of(&spec, id.0, id.1) {
            Some(task) if task.commitment() == body.task => task,
            _ => return reject("the receipt does not commit to the task as assigned".into()),
        };
        // Only the worker the task was given to delivers it (checked again when recorded).
        match self.store.tasks.get(&key) {
            Ok(Some(record)) => {
                let st = self.state.lock().expect("poisoned");
                if !may_deliver(&st, &id, &record, &peer) {
                    return reject("this task is not assigned to you".into());
                }
            }
            Ok(None) => return reject("no such task".into()),
            Err(e) => return reject(e.to_string()),
        }
        // Refused before it is acknowledged, and proven a fraud by its form alone: no
        // honest node of this network signs for another engine or claims more fuel than
        // the task's limit (verify.rs).
        if let Some(why) = body.form_fault(task.limits.fuel, &self.engine()) {
            let observed = Observed {
                engine: self.engine(),
                ..Observed::claimed(body)
            };
            return match self
                .prove(task, result.receipt.clone(), observed, peer)
                .await
            {
                Ok(proof) => reject(format!("{why}: a fraud, proof {}", hex::encode(proof))),
                Err(e) => reject(e.to_string()),
            };
        }
        // The output must match the committed hash.
        match (&result.output, &body.output_hash) {
            (Some(output), Some(hash)) => {
                if output.len() > limits::INLINE_OUTPUT || sha256(output) != *hash {
                    return reject("the output does not match the receipt".into());
                }
                if let Err(e) = self.store.put_blob(output) {
                    return reject(e.to_string());
                }
            }
            (None, Some(hash)) => {
                if let Err(e) = self.blobs.fetch(peer, *hash, limits::MAX_BLOB).await {
                    return reject(format!("fetching the output: {e}"));
                }
            }
            (Some(_), None) => return reject("an output without a hash".into()),
            (None, None) => {}
        }

        // First valid receipt wins; record it atomically with respect to other results.
        let (owner, finished) = {
            let mut st = self.state.lock().expect("poisoned");
            let task = match self.store.tasks.get(&key) {
                Ok(Some(t)) => t,
                Ok(None) => return reject("no such task".into()),
                Err(e) => return reject(e.to_string()),
            };
            if matches!(task.state, TaskState::Done { .. }) {
                return ResultResponse::Ok; // a duplicate: already recorded once
            }
            if !may_deliver(&st, &id, &task, &peer) {
                return reject("this task is not assigned to you".into());
            }
            // Blacklisted while this result was on its way in (the check above ran before
            // the await points): `convict` inserts into the blacklist under this lock and
            // then withdraws every stored receipt, so a receipt recorded after that insert
            // would escape the withdrawal.
            if let Some(proof) = st.blacklist.get(&peer) {
                return reject(format!("blacklisted by fraud proof {}", hex::encode(proof)));
            }
            // The worker has committed (signed) before this draw, which it cannot predict.
            let sampled = self.sample(&mut st, &result.receipt, &spec, &peer);
            let record = |st: &mut State| -> Result<bool, StoreError> {
                self.store.tasks.insert(
                    &key,
                    &TaskRecord {
                        state: TaskState::Done {
                            receipt: body.clone(),
                        },
                        attempts: task.attempts,
                    },
                )?;
                self.store.receipts.insert(&key, &result.receipt)?;
                self.store.leases.remove(&key)?;
                self.store.jobstats.update(&id.0, |s| {
                    s.total_fuel = s.total_fuel.saturating_add(body.fuel_used)
                })?;
                if sampled {
                    // (A withdrawn result's check may still be queued under this key: the
                    // new receipt replaces it, and the count stays one per key.)
                    if self.store.checks.get(&key)?.is_none() {
                        *st.pending_checks.entry(id.0).or_default() += 1;
                    }
                    self.store.checks.insert(&key, &result.receipt)?;
                }
                let mut job = self.store.progress.get(&id.0)?.unwrap_or(JobProgress {
                    state: JobState::Running,
                    done: 0,
                });
                job.done += 1;
                let finished =
                    job.done >= total && st.pending_checks.get(&id.0).copied().unwrap_or(0) == 0;
                if finished {
                    job.state = JobState::Done;
                }
                self.store.progress.insert(&id.0, &job)?;
                if let Some(h) = st.assigned.remove(&id) {
                    if let Some(w) = st.workers.get_mut(&h.worker) {
                        w.running.remove(&id);
                    }
                }
                if let Some(w) = st.workers.get_mut(&peer) {
                    w.running.remove(&id);
                    w.reputation += 1;
                }
                st.former.remove(&id);
                Ok(finished)
            };
            let finished = match record(&mut st) {
                Ok(f) => f,
                Err(e) => return reject(e.to_string()),
            };
            let owner = st.jobs.get(&id.0).and_then(|m| m.owner);
            if finished {
                st.jobs.remove(&id.0);
            }
            (owner, finished)
        };
        let _ = self
            .store
            .update_reputation(&peer.to_bytes(), |r| r.score += 1);
        self.metrics.result_accepted(body.fuel_used);
        if let Some(e) = &self.epochs {
            e.on_accepted(&result.receipt, total); // Epochs (issue 6).
        }
        if finished {
            tracing::info!(job = %hex::encode(id.0), "job done");
        }
        self.checks.notify_one();
        self.schedule();

        // Tell the owner now (it also polls), and the network. This need not wait for the
        // flush: the owner checks the receipt itself, and if this node dies before the
        // flush the task merely runs again (the owner keeps the first copy).
        let v = self.clone();
        let receipt = result.receipt.clone();
        tokio::spawn(async move {
            if let Some(owner) = owner {
                if v.client.is_connected(owner).await {
                    let push = TaskResult {
                        output: result.output.filter(|o| o.len() <= limits::INLINE_OUTPUT),
                        receipt: result.receipt.clone(),
                    };
                    let _ = v.client.result(owner, push).await;
                }
            }
        });
        // The worker may forget its copy once we acknowledge: on disk first.
        if let Err(e) = self.store.flush().await {
            tracing::error!(receipt = %hex::encode(receipt.hash()), "flush failed: {e}");
            return ResultResponse::Rejected {
                reason: e.to_string(),
            };
        }
        ResultResponse::Ok
    }

    /// The job `job` if `peer` owns it (submitted it with its key); `Err` is the answer to
    /// give when it does not, or when the job is unknown.
    fn owned(&self, peer: &PeerId, job: &Hash) -> Result<JobRecord, JobResponse> {
        let refuse = |reason: String| Err(JobResponse::Rejected { reason });
        match self.store.jobs.get(job) {
            Ok(Some(record)) if record.spec.owner == peer.to_bytes() => Ok(record),
            Ok(Some(_)) => {
                tracing::debug!(%peer, job = %hex::encode(job), "a job's data asked for by a peer that does not own it");
                refuse(
                    "only the job's owner may read its status and results (submit and ask \
                     with the same --key-file)"
                        .into(),
                )
            }
            Ok(None) => refuse("unknown job".into()),
            Err(e) => refuse(e.to_string()),
        }
    }

    /// Results of the job `job` of `total` tasks that the caller does not have yet.
    fn results(&self, job: &Hash, total: u32, have: &[u8]) -> JobResponse {
        let has = |i: u32| {
            have.get(i as usize / 8)
                .is_some_and(|b| b & (1 << (i % 8)) != 0)
        };
        let mut results = Vec::new();
        let mut budget = limits::JOB_RESPONSE - (64 << 10);
        let receipts = match self.store.receipts.scan(job) {
            Ok(r) => r,
            Err(e) => {
                return JobResponse::Rejected {
                    reason: e.to_string(),
                }
            }
        };
        for (_, receipt) in receipts {
            if has(receipt.body.index) {
                continue;
            }
            let output = receipt
                .body
                .output_hash
                .and_then(|h| self.store.blob(&h).ok().flatten())
                .filter(|o| o.len() <= limits::INLINE_OUTPUT)
                .map(|o| o.to_vec());
            let size = output.as_ref().map_or(0, |o| o.len()) + 512;
            if size > budget {
                break;
            }
            budget -= size;
            results.push(TaskResult { receipt, output });
        }
        let done = matches!(
            self.store.progress.get(job),
            Ok(Some(JobProgress {
                state: JobState::Done,
                ..
            }))
        );
        let revoked = match self.store.revoked.scan(job) {
            Ok(r) => r
                .into_iter()
                .take(limits::MAX_TASKS)
                .map(|(_, receipt)| receipt.hash())
                .collect(),
            Err(e) => {
                return JobResponse::Rejected {
                    reason: e.to_string(),
                }
            }
        };
        JobResponse::Results {
            total,
            results,
            done,
            revoked,
        }
    }

    /// The status of one job (its record, ownership checked by the caller), or of every
    /// job that `caller` owns, with the workers and fraud proofs (public).
    fn status(&self, job: Option<(Hash, JobRecord)>, caller: &PeerId) -> JobResponse {
        let st = self.state.lock().expect("poisoned");
        let mut workers: Vec<WorkerStatus> = st
            .workers
            .iter()
            .map(|(p, w)| {
                let rep = self.store.reputation_of(&p.to_bytes()).unwrap_or_default();
                WorkerStatus {
                    peer: p.to_string(),
                    capacity: w.capacity,
                    running: w.running.len() as u32,
                    reputation: rep.score,
                    verified: rep.verified,
                    timeouts: rep.timeouts,
                    connected: true,
                    blacklisted: rep.blacklisted.map(hex::encode),
                }
            })
            .collect();
        // Blacklisted workers are gone from the scheduler but not from the record.
        for (peer, proof) in &st.blacklist {
            if st.workers.contains_key(peer) {
                continue;
            }
            let rep = self
                .store
                .reputation_of(&peer.to_bytes())
                .unwrap_or_default();
            workers.push(WorkerStatus {
                peer: peer.to_string(),
                capacity: 0,
                running: 0,
                reputation: rep.score,
                verified: rep.verified,
                timeouts: rep.timeouts,
                connected: false,
                blacklisted: Some(hex::encode(proof)),
            });
        }
        workers.sort_by(|a, b| a.peer.cmp(&b.peer));
        let free: u32 = st
            .workers
            .values()
            .map(|w| w.usable.saturating_sub(w.running.len() as u32))
            .sum();
        let slots: u32 = st.workers.values().map(|w| w.capacity).sum();
        let queued_reason = if st.workers.is_empty() {
            "no worker connected".to_string()
        } else if free == 0 {
            format!("all {} workers busy ({slots} slots)", st.workers.len())
        } else {
            "being scheduled".to_string()
        };
        let fail = |e: StoreError| JobResponse::Rejected {
            reason: e.to_string(),
        };
        let one = job.is_some();
        let records = match job {
            Some((id, record)) => vec![(id.to_vec(), record)],
            None => match self.store.jobs.scan(&[]) {
                Ok(j) => {
                    let caller = caller.to_bytes();
                    j.into_iter()
                        .filter(|(_, r)| r.spec.owner == caller)
                        .collect()
                }
                Err(e) => return fail(e),
            },
        };
        let mut jobs = Vec::new();
        for (key, record) in records.into_iter().take(1000) {
            let Ok(job_id) = Hash::try_from(key.as_slice()) else {
                continue;
            };
            let progress = match self.store.progress.get(&job_id) {
                Ok(Some(p)) => p,
                _ => JobProgress {
                    state: JobState::Fetching,
                    done: 0,
                },
            };
            let mut tasks = Vec::new();
            if one {
                let Ok(all) = self.store.tasks.scan(&job_id) else {
                    continue;
                };
                for (key, task) in all {
                    let Some((_, index)) = split_task_key(&key) else {
                        continue;
                    };
                    let (state, worker, waiting_for, verdict) = match &task.state {
                        TaskState::Queued => (
                            "queued",
                            None,
                            Some(if progress.state == JobState::Fetching {
                                "the job's blobs (fetching from the owner)".to_string()
                            } else {
                                queued_reason.clone()
                            }),
                            None,
                        ),
                        TaskState::Assigned { worker } => (
                            "assigned",
                            peer_of(worker).map(|p| p.to_string()),
                            None,
                            None,
                        ),
                        TaskState::Done { receipt } => (
                            "done",
                            peer_of(&receipt.worker).map(|p| p.to_string()),
                            None,
                            Some(verdict_name(receipt.verdict).to_string()),
                        ),
                    };
                    tasks.push(TaskStatus {
                        index,
                        state: state.into(),
                        worker,
                        attempts: task.attempts,
                        waiting_for,
                        verdict,
                    });
                }
            }
            let stats = self
                .store
                .jobstats
                .get(&job_id)
                .ok()
                .flatten()
                .unwrap_or_default();
            jobs.push(JobStatus {
                job_id,
                state: progress.state.as_str().into(),
                total: record.spec.inputs.len() as u32,
                done: progress.done,
                tasks,
                sampled: stats.sampled,
                verify_fuel: stats.verify_fuel,
                total_fuel: stats.total_fuel,
                revoked: stats.revoked,
            });
        }
        let mut proofs = Vec::new();
        let accepted = self.store.frauds.scan(&[]).unwrap_or_default();
        let refused = self.store.refused.scan(&[]).unwrap_or_default();
        let show = |proof: &FraudProof, accepted: bool, reason: Option<String>| ProofStatus {
            id: hex::encode(proof.id()),
            worker: peer_of(&proof.claim.receipt.body.worker)
                .map_or_else(|| "?".into(), |p| p.to_string()),
            validator: peer_of(&proof.claim.validator)
                .map_or_else(|| "?".into(), |p| p.to_string()),
            accepted,
            refused_because: reason,
        };
        for (_, proof) in accepted.iter().take(128) {
            proofs.push(show(proof, true, None));
        }
        for (_, r) in refused.iter().take(128) {
            proofs.push(show(&r.proof, false, Some(r.reason.clone())));
        }
        JobResponse::Status {
            jobs,
            workers,
            proofs,
        }
    }
}
