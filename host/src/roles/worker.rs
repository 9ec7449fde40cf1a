//! The worker: registers with its validators and keeps telling them it is alive (and which
//! tasks it holds), accepts assignments up to its capacity, fetches modules and inputs by
//! hash (modules compiled once and cached), runs tasks on a bounded pool of blocking
//! threads, signs a receipt for each and delivers it with the output.
//!
//! An accepted task is on disk (`assigned`) until its result is; a result is on disk
//! (`outbox`) until the validator acknowledges it. A restarted worker finishes both.

use super::blobs::{self, Blobs};
use super::cheat::{Cheat, CheatMode};
use super::NodeConfig;
use crate::net::proto::*;
use crate::net::{Client, Event, Request, Response};
use crate::store::{task_key, Accepted, AssignmentRecord, Outgoing, Store, StoreError};
use libp2p::identity::Keypair;
use libp2p::PeerId;
use smartnodes_runtime::{Runtime, TaskInput, TaskModule};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};

type TaskId = (Hash, u32);

/// A compiled module, or the reason it is invalid (still a verdict to report).
#[derive(Clone)]
enum Loaded {
    Ok(TaskModule),
    Invalid(Arc<Vec<u8>>),
}

/// A running worker.
pub(crate) struct Worker {
    client: Client,
    store: Store,
    blobs: Blobs,
    runtime: Arc<Runtime>,
    keypair: Keypair,
    slots: u32,
    pool: Arc<Semaphore>,
    /// The validators it registered with (found by discovery: `net::discovery`).
    validators: Mutex<HashSet<PeerId>>,
    running: Mutex<HashMap<TaskId, PeerId>>,
    modules: Mutex<HashMap<Hash, Loaded>>,
    heartbeat: Duration,
    /// Set only by `--cheat` (tests and demos).
    cheat: Option<Cheat>,
    /// The last task it really ran (what a `copy` cheat replays).
    last_run: Mutex<Option<Ran>>,
    /// Validators that refused its registration (warned about once).
    refused: Mutex<HashSet<PeerId>>,
    /// Epochs (issue 6): the chain address sent when registering, and the reward claimer.
    address: Option<[u8; 20]>,
    claimer: Option<Arc<crate::epoch::Claimer>>,
    /// Metrics (issue 18).
    metrics: Arc<crate::metrics::Metrics>,
}

/// What running a task produced, as a receipt reports it.
#[derive(Debug, Clone)]
struct Ran {
    verdict: (u8, i64),
    output_hash: Option<Hash>,
    fuel_used: u64,
    output: Vec<u8>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("peer", &self.client.peer_id())
            .field("slots", &self.slots)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// Starts the worker's loops.
    pub(crate) async fn start(
        config: &NodeConfig,
        client: Client,
        store: Store,
        runtime: Arc<Runtime>,
        mut events: mpsc::Receiver<Event>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
        claimer: Option<Arc<crate::epoch::Claimer>>,
    ) -> Result<tokio::task::JoinHandle<()>, StoreError> {
        let slots = config.worker_slots.max(1) as u32;
        let worker = Arc::new(Worker {
            address: config
                .chain
                .as_ref()
                .map(|_| config.eth_signer.address().into_array()),
            claimer,
            metrics: config.metrics.clone(),
            blobs: Blobs::new(client.clone(), store.clone()),
            client,
            store,
            runtime,
            keypair: config.keypair.clone(),
            slots,
            pool: Arc::new(Semaphore::new(slots as usize)),
            validators: Mutex::default(),
            running: Mutex::default(),
            modules: Mutex::default(),
            heartbeat: config.lease / 3,
            cheat: config.cheat,
            last_run: Mutex::default(),
            refused: Mutex::default(),
        });
        if let Some(cheat) = config.cheat {
            tracing::warn!(%cheat, "THIS WORKER CHEATS ON PURPOSE (tests and demos only)");
        }
        // Resume what was accepted before a restart.
        for (key, accepted) in worker.store.assigned.scan(&[])? {
            let (Ok(assignment), Some(validator)) = (
                accepted.assignment.get(),
                PeerId::from_bytes(&accepted.validator).ok(),
            ) else {
                let _ = worker.store.assigned.remove(&key);
                continue;
            };
            worker
                .running
                .lock()
                .expect("poisoned")
                .insert((assignment.job_id, assignment.index), validator);
            let w = worker.clone();
            tokio::spawn(async move { w.execute(validator, assignment).await });
        }
        // The network dials the bootstrap peers, publishes the role record and finds the
        // validators; the worker registers with those it keeps connections to.
        let mut changes = worker.client.changes();
        let w = worker.clone();
        Ok(tokio::spawn(async move {
            let mut tick = tokio::time::interval(w.heartbeat);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    event = events.recv() => match event {
                        Some(event) => w.on_event(event),
                        None => break,
                    },
                    _ = tick.tick() => {
                        w.join_validators().await;
                        w.send_heartbeats();
                        w.flush_outbox();
                    }
                    Ok(()) = changes.changed() => w.join_validators().await,
                    _ = shutdown.changed() => break,
                }
            }
            let _ = w.store.flush().await;
        }))
    }

    /// Registers with every validator discovery selected and this node is connected to
    /// (once; a validator that forgot it answers a heartbeat with `Rejected` and the
    /// worker registers again); forgets those no longer selected.
    async fn join_validators(self: &Arc<Self>) {
        let peers = self.client.peers().await;
        let wanted: HashSet<PeerId> = peers
            .iter()
            .filter(|p| p.role == "validator" && p.wanted)
            .map(|p| p.peer)
            .collect();
        let new: Vec<PeerId> = {
            let mut validators = self.validators.lock().expect("poisoned");
            validators.retain(|v| wanted.contains(v));
            peers
                .iter()
                .filter(|p| wanted.contains(&p.peer) && p.connected)
                .filter(|p| validators.insert(p.peer))
                .map(|p| p.peer)
                .collect()
        };
        for validator in new {
            let w = self.clone();
            tokio::spawn(async move { w.register(validator).await });
        }
    }

    async fn register(&self, validator: PeerId) {
        let request = TaskRequest::Register {
            capacity: self.slots,
            engine: self.runtime.fingerprint().0,
            address: self.address,
        };
        match self.client.task(validator, request).await {
            Ok(TaskResponse::Ok) => {
                self.refused.lock().expect("poisoned").remove(&validator);
                tracing::info!(%validator, "registered")
            }
            Ok(other) => {
                // Said once per validator (it keeps trying, every heartbeat).
                if self.refused.lock().expect("poisoned").insert(validator) {
                    tracing::warn!(%validator, "registration refused: {other:?}");
                } else {
                    tracing::debug!(%validator, "registration refused again: {other:?}");
                }
            }
            Err(e) => tracing::debug!(%validator, "registration failed: {e}"),
        }
    }

    fn send_heartbeats(self: &Arc<Self>) {
        let validators: Vec<PeerId> = self
            .validators
            .lock()
            .expect("poisoned")
            .iter()
            .copied()
            .collect();
        for validator in validators {
            let running: Vec<TaskId> = self
                .running
                .lock()
                .expect("poisoned")
                .iter()
                .filter(|(_, v)| **v == validator)
                .map(|(id, _)| *id)
                .collect();
            let w = self.clone();
            tokio::spawn(async move {
                match w
                    .client
                    .task(validator, TaskRequest::Heartbeat { running })
                    .await
                {
                    Ok(TaskResponse::Rejected { .. }) => w.register(validator).await,
                    Ok(_) => {}
                    Err(e) => tracing::debug!(%validator, "heartbeat failed: {e}"),
                }
            });
        }
    }

    fn on_event(self: &Arc<Self>, event: Event) {
        // Epochs (issue 6): proposal contents, to claim rewards.
        if let Event::Gossip {
            from,
            message: Gossip::Epoch(g),
        } = event
        {
            if let Some(c) = &self.claimer {
                c.on_gossip(from, *g);
            }
            return;
        }
        let Event::Inbound {
            peer,
            request,
            responder,
        } = event
        else {
            return;
        };
        let w = self.clone();
        tokio::spawn(async move {
            let response = w.on_request(peer, request).await;
            w.client.respond(responder, response).await;
        });
    }

    async fn on_request(self: &Arc<Self>, peer: PeerId, request: Request) -> Response {
        match request {
            Request::Blob(r) => Response::Blob(blobs::serve(&self.store, &r)),
            Request::Task(TaskRequest::Assign(a)) => Response::Task(self.on_assign(peer, a).await),
            Request::Task(_) => Response::Task(TaskResponse::Rejected {
                reason: "this node is a worker".into(),
            }),
            Request::Job(_) => Response::Job(JobResponse::Rejected {
                reason: "this node is a worker".into(),
            }),
            Request::Result(_) => Response::Result(ResultResponse::Rejected {
                reason: "this node is a worker".into(),
            }),
        }
    }

    async fn on_assign(self: &Arc<Self>, validator: PeerId, a: Assignment) -> TaskResponse {
        // Only a validator this worker registered with may give it work: otherwise any
        // peer that can reach a worker would get free compute (issue 17).
        if !self
            .validators
            .lock()
            .expect("poisoned")
            .contains(&validator)
        {
            tracing::debug!(%validator, "assignment from a peer that is not our validator refused");
            return TaskResponse::Rejected {
                reason: "not a validator this worker registered with".into(),
            };
        }
        if a.limits.check().is_err()
            || a.input_inline
                .as_ref()
                .is_some_and(|i| i.len() > limits::INLINE_BLOB)
        {
            return TaskResponse::Rejected {
                reason: "bad limits or input".into(),
            };
        }
        let id = (a.job_id, a.index);
        {
            let mut running = self.running.lock().expect("poisoned");
            if running.contains_key(&id) {
                return TaskResponse::Ok; // already have it
            }
            // Accept a little more than the pool runs at once, so no slot waits on the network.
            if running.len() as u32 >= self.slots * 2 {
                return TaskResponse::Busy;
            }
            running.insert(id, validator);
        }
        if let Err(e) = self.store.assigned.insert(
            &task_key(&id.0, id.1),
            &Accepted {
                validator: validator.to_bytes(),
                assignment: AssignmentRecord::new(&a),
            },
        ) {
            self.running.lock().expect("poisoned").remove(&id);
            return TaskResponse::Rejected {
                reason: e.to_string(),
            };
        }
        let w = self.clone();
        tokio::spawn(async move { w.execute(validator, a).await });
        TaskResponse::Ok
    }

    async fn module(&self, validator: PeerId, id: Hash) -> Result<Loaded, String> {
        if let Some(m) = self.modules.lock().expect("poisoned").get(&id) {
            return Ok(m.clone());
        }
        let max = smartnodes_runtime::Limits::DEFAULT.max_module_bytes;
        self.blobs
            .fetch(validator, id, max)
            .await
            .map_err(|e| format!("fetching the module: {e}"))?;
        let wasm = self
            .store
            .blob(&id)
            .map_err(|e| e.to_string())?
            .ok_or("module vanished")?
            .to_vec();
        let runtime = self.runtime.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            match runtime.load(&wasm, &smartnodes_runtime::Limits::DEFAULT) {
                Ok(Ok(m)) => Ok(Loaded::Ok(m)),
                Ok(Err(reason)) => {
                    tracing::info!("invalid module: {reason}");
                    Ok(Loaded::Invalid(Arc::new(wasm)))
                }
                Err(e) => Err(format!("loading the module: {e}")),
            }
        })
        .await
        .map_err(|e| e.to_string())??;
        let mut modules = self.modules.lock().expect("poisoned");
        if modules.len() >= 64 {
            modules.clear(); // a bounded cache; the runtime keeps its own compiled cache
        }
        modules.insert(id, loaded.clone());
        Ok(loaded)
    }

    /// Runs one accepted task and delivers its result.
    async fn execute(self: Arc<Self>, validator: PeerId, a: Assignment) {
        let id = (a.job_id, a.index);
        let outcome = self.run(validator, &a).await;
        let key = task_key(&id.0, id.1);
        match outcome {
            Ok(result) => {
                let outgoing = Outgoing {
                    validator: validator.to_bytes(),
                    result,
                };
                if let Err(e) = self
                    .store
                    .outbox
                    .insert(&key, &outgoing)
                    .and_then(|_| self.store.assigned.remove(&key))
                {
                    tracing::error!("recording a result: {e}");
                }
                self.running.lock().expect("poisoned").remove(&id);
                self.deliver(key, outgoing).await;
            }
            Err(e) => {
                // No receipt for a host failure: the lease runs out and the validator
                // gives the task to someone else.
                tracing::warn!(job = %hex::encode(id.0), index = id.1, "task not run: {e}");
                let _ = self.store.assigned.remove(&key);
                self.running.lock().expect("poisoned").remove(&id);
            }
        }
    }

    async fn run(&self, validator: PeerId, a: &Assignment) -> Result<TaskResult, String> {
        let cheat = self.cheat.filter(|c| c.applies(&a.job_id, a.index));
        let ran = match cheat.map(|c| c.mode) {
            Some(CheatMode::Lazy) => {
                let output = b"made up without running\n".to_vec();
                Ran {
                    verdict: (0, 0),
                    output_hash: Some(smartnodes_runtime::sha256(&output)),
                    fuel_used: 10_000 + u64::from(a.index),
                    output,
                }
            }
            Some(CheatMode::Copy) if self.last_run.lock().expect("poisoned").is_some() => self
                .last_run
                .lock()
                .expect("poisoned")
                .clone()
                .expect("checked"),
            _ => {
                let ran = self.execute_honestly(validator, a).await?;
                *self.last_run.lock().expect("poisoned") = Some(ran.clone());
                ran
            }
        };
        let ran = match cheat.map(|c| c.mode) {
            Some(CheatMode::WrongOutput) => {
                let mut output = ran.output;
                match output.first_mut() {
                    Some(b) => *b ^= 0xff,
                    None => output.push(b'!'),
                }
                Ran {
                    output_hash: Some(smartnodes_runtime::sha256(&output)),
                    output,
                    ..ran
                }
            }
            Some(CheatMode::Fuel) => Ran {
                fuel_used: ran.fuel_used + ran.fuel_used / 10 + 1,
                ..ran
            },
            Some(CheatMode::Overflow) => Ran {
                verdict: smartnodes_runtime::Verdict::Trapped(
                    smartnodes_runtime::TrapCode::StackOverflow,
                )
                .code(),
                output: Vec::new(),
                output_hash: None,
                fuel_used: a.limits.fuel,
            },
            Some(CheatMode::Inflate) => Ran {
                fuel_used: ran.fuel_used.saturating_mul(50),
                ..ran
            },
            _ => ran,
        };
        let engine = match cheat.map(|c| c.mode) {
            Some(CheatMode::Engine) => smartnodes_runtime::sha256(super::cheat::FOREIGN_ENGINE),
            _ => self.runtime.fingerprint().0,
        };
        if let Some(cheat) = cheat {
            tracing::warn!(job = %hex::encode(a.job_id), index = a.index, %cheat, "cheating on this task");
        }

        let task = TaskSpec {
            job_id: a.job_id,
            index: a.index,
            module: a.module,
            input: a.input,
            limits: a.limits,
        };
        let body = ReceiptBody {
            job_id: a.job_id,
            index: a.index,
            task: task.commitment(),
            verdict: ran.verdict,
            output_hash: ran.output_hash,
            fuel_used: ran.fuel_used,
            engine,
            worker: self.client.peer_id().to_bytes(),
        };
        let receipt = Receipt::sign(body, &self.keypair);
        let output = if ran.output_hash.is_none() {
            None
        } else if ran.output.len() <= limits::INLINE_OUTPUT {
            Some(ran.output)
        } else {
            // Large outputs wait in the blob store for the validator to fetch.
            self.store
                .put_blob(&ran.output)
                .map_err(|e| e.to_string())?;
            None
        };
        Ok(TaskResult { receipt, output })
    }

    /// Fetches what the task needs and runs it in the sandbox, on the bounded pool.
    async fn execute_honestly(&self, validator: PeerId, a: &Assignment) -> Result<Ran, String> {
        let module = self.module(validator, a.module).await?;
        let input = match &a.input_inline {
            Some(i) if smartnodes_runtime::sha256(i) == a.input => i.clone(),
            Some(_) => return Err("the inline input does not match its hash".into()),
            None => {
                self.blobs
                    .fetch(validator, a.input, limits::MAX_BLOB)
                    .await
                    .map_err(|e| format!("fetching the input: {e}"))?;
                self.store
                    .blob(&a.input)
                    .map_err(|e| e.to_string())?
                    .ok_or("input vanished")?
                    .to_vec()
            }
        };
        let seed = JobSpec::seed(&a.job_id, a.index);
        let limits = a.limits.to_runtime();
        let runtime = self.runtime.clone();
        let permit = self
            .pool
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let outcome = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let task = TaskInput::new(input).with_seed(seed);
            match module {
                Loaded::Ok(m) => runtime.run_module(&m, &task, &limits),
                Loaded::Invalid(wasm) => runtime.run(&wasm, &task, &limits),
            }
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        self.metrics
            .task_run(verdict_name(outcome.verdict.code()), outcome.fuel_used);
        Ok(Ran {
            verdict: outcome.verdict.code(),
            output_hash: outcome.output_hash,
            fuel_used: outcome.fuel_used,
            output: outcome.output,
        })
    }

    async fn deliver(&self, key: [u8; 36], outgoing: Outgoing) {
        let Ok(validator) = PeerId::from_bytes(&outgoing.validator) else {
            let _ = self.store.outbox.remove(&key);
            return;
        };
        match self.client.result(validator, outgoing.result).await {
            Ok(ResultResponse::Ok) => {
                let _ = self.store.outbox.remove(&key);
            }
            Ok(ResultResponse::Rejected { reason }) => {
                tracing::warn!(%validator, "result rejected: {reason}");
                let _ = self.store.outbox.remove(&key);
            }
            Err(e) => tracing::debug!(%validator, "result not delivered yet: {e}"),
        }
    }

    /// Retries results whose delivery failed (the validator was away).
    fn flush_outbox(self: &Arc<Self>) {
        let pending = match self.store.outbox.scan(&[]) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("reading the outbox: {e}");
                return;
            }
        };
        if pending.is_empty() {
            return;
        }
        let in_flight: HashSet<TaskId> = self
            .running
            .lock()
            .expect("poisoned")
            .keys()
            .copied()
            .collect();
        for (key, outgoing) in pending.into_iter().take(256) {
            let Some(id) = crate::store::split_task_key(&key) else {
                continue;
            };
            if in_flight.contains(&id) {
                continue;
            }
            let Ok(key) = <[u8; 36]>::try_from(key.as_slice()) else {
                continue;
            };
            let w = self.clone();
            tokio::spawn(async move { w.deliver(key, outgoing).await });
        }
    }
}
