//! `smartnodes devnet`: the whole network on one machine. Starts validators and workers
//! (in this process via [`crate::harness`], or each as its own `smartnodes node` process),
//! submits jobs built from the examples round-robin over the validators, checks every
//! output against a local run, writes the combined results (merged word counts, the
//! stitched Mandelbrot image) and reports per job, per node and (with a chain) per epoch.
//!
//! The parts:
//! - [`jobs`]: the jobs, their expected outputs, merging and stitching;
//! - [`report`]: the report (a table, or one JSON object);
//! - [`chain`]: epochs and SNO as the report reads them (without a chain those fields are
//!   absent);
//! - [`rpc`]: `--chain RPC_URL`: deploy, fund, and read a JSON-RPC chain;
//! - [`procs`]: child-process supervision for `--processes`.

pub mod chain;
pub mod rpc;

/// How long the devnet waits, after the last epoch it waits for, for the workers' automatic
/// claims to land.
pub const CLAIMS_GRACE: Duration = Duration::from_secs(10);

/// Proposers the contract draws per round. One: the others check its summary and vote.
/// (When every validator proposes at once, each votes for its own summary by proposing,
/// and summaries built a moment apart can differ by a late batch: a split that stalls the
/// epoch, since a validator votes once per epoch.)
pub const PROPOSERS_PER_ROUND: u32 = 1;
pub mod jobs;
pub mod procs;
pub mod report;

use crate::epoch::testnet::ChainSetup;
use crate::harness::{Network, NetworkConfig};
use crate::identity::Identity;
use crate::net::proto::{JobLimits, JobResponse, JobStatus, WorkerStatus};
use crate::roles::cheat::Cheat;
use crate::roles::user::{JobRequestSpec, UserError, UserSession};
use chain::{ChainSnapshot, ChainView};
use jobs::DevnetJob;
use libp2p::{Multiaddr, PeerId};
use report::{DevnetReport, JobRow, NodeRow};
use smartnodes_contracts::PrivateKeySigner;
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The devnet's cheater policy by default: wrong outputs on 30 % of its tasks.
pub const DEFAULT_CHEAT: &str = "wrong-output:0.3";

/// After the jobs, how long to wait for the validators to blacklist every cheater (fraud
/// proofs can land after the last result).
pub const CHEATER_GRACE: Duration = Duration::from_secs(15);

/// How often the live status is refreshed.
const TICK: Duration = Duration::from_millis(500);

/// Why the devnet failed (as opposed to ran and found a problem, which the report says).
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    /// A node would not start.
    #[error("starting a node: {0}")]
    Node(#[from] crate::roles::NodeError),
    /// Talking to a validator.
    #[error("talking to a validator: {0}")]
    User(#[from] UserError),
    /// A file.
    #[error("{path}: {source}")]
    Io {
        /// Which.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A child process.
    #[error("{0}")]
    Child(String),
    /// The chain.
    #[error("the chain: {0}")]
    Chain(String),
    /// Bad settings or a broken example.
    #[error("{0}")]
    Invalid(String),
    /// Waited too long.
    #[error("timed out: {0}")]
    Timeout(String),
}

/// Where the nodes run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeMode {
    /// All in this process (the default).
    InProcess,
    /// Each its own `smartnodes node` process, started from this binary.
    Processes {
        /// The `smartnodes` binary.
        binary: PathBuf,
    },
}

/// Which chain.
#[derive(Debug, Clone)]
pub enum ChainChoice {
    /// The embedded chain shared in-process (with `--processes`: no chain, since separate
    /// processes cannot share it).
    Embedded,
    /// An Ethereum JSON-RPC endpoint and the deployer's key (funded there); the nodes run
    /// as separate processes.
    Rpc(String, PrivateKeySigner),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct DevnetConfig {
    /// Validators.
    pub validators: usize,
    /// Workers (cheaters included).
    pub workers: usize,
    /// Of the workers, how many cheat (with [`DevnetConfig::cheat`]).
    pub cheaters: usize,
    /// Jobs, cycling through wordcount, mandelbrot, primes, sha256-chain.
    pub jobs: usize,
    /// Tasks per job.
    pub tasks_per_job: usize,
    /// Epoch length on the chain, seconds.
    pub epoch_secs: u64,
    /// Where nodes run.
    pub mode: NodeMode,
    /// Which chain.
    pub chain: ChainChoice,
    /// Where outputs (and in process mode the nodes' data dirs) go.
    pub data_dir: PathBuf,
    /// How cheaters cheat.
    pub cheat: Cheat,
    /// Task slots per worker.
    pub worker_slots: usize,
    /// Lease.
    pub lease: Duration,
    /// The validators' sample rate, parts per million.
    pub sample_ppm: u32,
    /// The validators' check budget, parts per million.
    pub check_budget_ppm: u32,
    /// Give up on a job after this long without a new result.
    pub job_timeout: Duration,
}

impl DevnetConfig {
    /// The defaults of `smartnodes devnet`, writing into `data_dir`.
    pub fn new(data_dir: PathBuf) -> DevnetConfig {
        DevnetConfig {
            validators: 3,
            workers: 5,
            cheaters: 1,
            jobs: 4,
            tasks_per_job: jobs::TASKS_PER_JOB,
            epoch_secs: 10,
            mode: NodeMode::InProcess,
            chain: ChainChoice::Embedded,
            data_dir,
            cheat: DEFAULT_CHEAT.parse().expect("a valid cheat"),
            worker_slots: 2,
            lease: Duration::from_secs(3),
            sample_ppm: crate::roles::DEFAULT_SAMPLE_PPM,
            // Every new worker's result checked: the devnet's cheater is caught every run.
            check_budget_ppm: 1_000_000,
            job_timeout: Duration::from_secs(120),
        }
    }

    fn check(&self) -> Result<(), DevnetError> {
        let bad = |m: &str| Err(DevnetError::Invalid(m.into()));
        if self.validators == 0 {
            return bad("--validators must be at least 1");
        }
        if self.workers == 0 {
            return bad("--workers must be at least 1");
        }
        if self.cheaters >= self.workers {
            return bad("--cheaters must be fewer than --workers (someone has to be honest)");
        }
        if self.tasks_per_job == 0 || self.tasks_per_job > crate::net::proto::limits::MAX_TASKS {
            return bad("tasks per job out of range");
        }
        if self.epoch_secs == 0 {
            return bad("--epoch-secs must be at least 1");
        }
        Ok(())
    }
}

/// A node of the devnet.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// `validator-0`, `worker-2`, …
    pub name: String,
    /// `validator` or `worker`.
    pub role: &'static str,
    /// Its peer id.
    pub peer_id: PeerId,
    /// Its listen address (with `/p2p/<peer id>`).
    pub addr: Multiaddr,
    /// Its Ethereum address (hex), how the chain knows it.
    pub eth_address: String,
    /// Whether it cheats on purpose.
    pub cheater: bool,
    /// Its process id (process mode).
    pub pid: Option<u32>,
}

/// What is going on, for the live line.
#[derive(Debug, Clone, Default)]
pub struct LiveStatus {
    /// Tasks completed (all jobs).
    pub tasks_done: usize,
    /// Tasks in all jobs.
    pub tasks_total: usize,
    /// Distinct fraud proofs the validators hold.
    pub frauds: usize,
    /// Chain, if any: epochs executed.
    pub epochs_executed: Option<usize>,
    /// Chain, if any: SNO minted (smallest unit).
    pub sno_minted: Option<u128>,
}

/// Receives progress. Every method does nothing by default.
pub trait Observer: Sync {
    /// A line of information (set-up, waiting).
    fn note(&self, _line: &str) {}
    /// A node is up.
    fn node_started(&self, _node: &NodeInfo) {}
    /// A job was submitted.
    fn job_submitted(&self, _job: usize, _label: &str, _tasks: usize) {}
    /// A task of a job completed (`done` so far).
    fn task_done(&self, _job: usize, _done: usize) {}
    /// A job's results are all in.
    fn job_finished(&self, _job: usize, _ok: bool) {}
    /// The live status changed.
    fn live(&self, _status: &LiveStatus) {}
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Observer for Silent {}

enum Backend {
    InProcess(Box<Network>),
    Processes(Mutex<procs::Children>),
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::InProcess(_) => f.write_str("InProcess"),
            Backend::Processes(_) => f.write_str("Processes"),
        }
    }
}

/// A running devnet.
#[derive(Debug)]
pub struct Devnet {
    config: DevnetConfig,
    backend: Backend,
    nodes: Vec<NodeInfo>,
    sessions: Vec<UserSession>,
    chain: Option<Box<dyn ChainView>>,
}

impl Devnet {
    /// Starts the nodes (and, with chain support, the chain) and connects a user session to
    /// every validator.
    pub async fn start(config: DevnetConfig, obs: &dyn Observer) -> Result<Devnet, DevnetError> {
        config.check()?;
        std::fs::create_dir_all(&config.data_dir).map_err(|source| DevnetError::Io {
            path: config.data_dir.clone(),
            source,
        })?;
        let cheats: Vec<Cheat> = vec![config.cheat; config.cheaters];
        let mut chain_view: Option<Box<dyn ChainView>> = None;
        let (backend, nodes) = match &config.mode {
            NodeMode::InProcess => {
                obs.note(&format!(
                    "starting {} validators and {} workers in this process",
                    config.validators, config.workers
                ));
                let net = Network::start(NetworkConfig {
                    validators: config.validators,
                    workers: config.workers,
                    worker_slots: config.worker_slots,
                    lease: config.lease,
                    fsync: true,
                    cheaters: cheats.clone(),
                    sample_ppm: config.sample_ppm,
                    check_budget_ppm: config.check_budget_ppm,
                    chain: match config.chain {
                        // One embedded chain shared by every node, its clock moving with
                        // the wall clock so that epochs follow on their own.
                        ChainChoice::Embedded => {
                            let mut setup = ChainSetup::embedded(config.epoch_secs);
                            setup.clock = true;
                            setup.params.proposers_per_round = PROPOSERS_PER_ROUND;
                            Some(setup)
                        }
                        ChainChoice::Rpc(..) => {
                            return Err(DevnetError::Chain(
                                "a JSON-RPC chain needs node processes (--processes)".into(),
                            ))
                        }
                    },
                })
                .await?;
                let mut nodes = Vec::new();
                let dirs = net.dirs.iter().map(|d| d.path());
                let all = net
                    .validators
                    .iter()
                    .map(|n| ("validator", n))
                    .chain(net.workers.iter().map(|n| ("worker", n)));
                let (mut v, mut w) = (0, 0);
                for ((role, node), dir) in all.zip(dirs) {
                    let (name, cheater) = if role == "validator" {
                        v += 1;
                        (format!("validator-{}", v - 1), false)
                    } else {
                        w += 1;
                        (format!("worker-{}", w - 1), w - 1 < config.cheaters)
                    };
                    let info = NodeInfo {
                        name,
                        role,
                        peer_id: node.peer_id(),
                        addr: node.addr(),
                        eth_address: Identity::load_or_create(dir)
                            .map_err(crate::roles::NodeError::from)?
                            .eth_address_hex(),
                        cheater,
                        pid: None,
                    };
                    obs.node_started(&info);
                    nodes.push(info);
                }
                (Backend::InProcess(Box::new(net)), nodes)
            }
            NodeMode::Processes { binary } => {
                obs.note(&format!(
                    "starting {} validators and {} workers as `smartnodes node` processes",
                    config.validators, config.workers
                ));
                let mut rpc_chain = match &config.chain {
                    ChainChoice::Rpc(url, key) => {
                        obs.note(&format!("deploying the contracts on {url}"));
                        Some(
                            rpc::RpcChain::deploy(
                                url,
                                key.clone(),
                                config.epoch_secs,
                                &config.data_dir,
                            )
                            .await?,
                        )
                    }
                    ChainChoice::Embedded => None,
                };
                let mut children = procs::Children::default();
                let mut nodes = Vec::new();
                let lease = config.lease.as_secs_f64();
                let sample_rate = f64::from(config.sample_ppm) / 10_000.0;
                let check_budget = f64::from(config.check_budget_ppm) / 10_000.0;
                let mut bootstrap = Vec::new();
                for i in 0..config.validators + config.workers {
                    let (role, name, cheat) = if i < config.validators {
                        ("validator", format!("validator-{i}"), None)
                    } else {
                        let w = i - config.validators;
                        ("worker", format!("worker-{w}"), cheats.get(w).copied())
                    };
                    let data_dir = config.data_dir.join("nodes").join(&name);
                    // Its keys now (the process loads the same), so it can be funded first.
                    let identity = Identity::load_or_create(&data_dir)
                        .map_err(crate::roles::NodeError::from)?;
                    if let Some(rpc) = rpc_chain.as_mut() {
                        rpc.fund(
                            role,
                            smartnodes_contracts::Address::from(identity.eth_address()),
                        )
                        .await?;
                    }
                    let child = children
                        .spawn(procs::ChildSpec {
                            binary,
                            name: name.clone(),
                            role,
                            data_dir: data_dir.clone(),
                            bootstrap: if role == "worker" { &bootstrap } else { &[] },
                            slots: config.worker_slots,
                            lease,
                            sample_rate,
                            check_budget,
                            cheat,
                            chain: rpc_chain
                                .as_ref()
                                .map(|r| (r.url(), r.deployment_file.as_path())),
                        })
                        .await?;
                    let info = NodeInfo {
                        name,
                        role,
                        peer_id: child.peer_id,
                        addr: child.addr.clone(),
                        eth_address: identity.eth_address_hex(),
                        cheater: cheat.is_some(),
                        pid: Some(child.child.id()),
                    };
                    if role == "validator" {
                        bootstrap.push(info.addr.clone());
                    }
                    obs.node_started(&info);
                    nodes.push(info);
                }
                chain_view = rpc_chain.map(|r| Box::new(r) as Box<dyn ChainView>);
                (Backend::Processes(Mutex::new(children)), nodes)
            }
        };
        let mut devnet = Devnet {
            config,
            backend,
            nodes,
            sessions: Vec::new(),
            chain: chain_view,
        };
        // From here on a failure must stop what was started.
        match devnet.connect().await {
            Ok(()) => Ok(devnet),
            Err(e) => {
                devnet.stop().await;
                Err(e)
            }
        }
    }

    async fn connect(&mut self) -> Result<(), DevnetError> {
        let addrs: Vec<Multiaddr> = self.validators().map(|v| v.addr.clone()).collect();
        for addr in addrs {
            self.sessions.push(UserSession::connect(addr).await?);
        }
        // Every validator must know every worker before jobs go out.
        let want = self.config.workers;
        let deadline = Instant::now() + Duration::from_secs(30);
        for (i, s) in self.sessions.iter().enumerate() {
            loop {
                if let Ok(JobResponse::Status { workers, .. }) = s.status(None).await {
                    if workers.len() >= want {
                        break;
                    }
                }
                if Instant::now() > deadline {
                    return Err(DevnetError::Timeout(format!(
                        "validator-{i} did not see all {want} workers register"
                    )));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// The nodes.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// The validators.
    pub fn validators(&self) -> impl Iterator<Item = &NodeInfo> {
        self.nodes.iter().filter(|n| n.role == "validator")
    }

    /// Whether epochs are tracked (a chain is connected).
    pub fn has_chain(&self) -> bool {
        self.chain.is_some()
            || matches!(&self.backend, Backend::InProcess(net) if net.chain.is_some())
    }

    /// Peers the node `peer` disconnected for their faults (its metrics: in process only).
    fn peers_dropped(&self, peer: &PeerId) -> Option<u64> {
        match &self.backend {
            Backend::InProcess(net) => net
                .validators
                .iter()
                .chain(&net.workers)
                .find(|n| n.peer_id() == *peer)
                .map(|n| n.metrics.peers_dropped_total()),
            Backend::Processes(_) => None,
        }
    }

    /// Builds and submits the jobs, waits for every result, for the cheaters to be
    /// blacklisted (up to [`CHEATER_GRACE`]) and, with a chain, for
    /// [`chain::EPOCHS_TO_WAIT_FOR`] executed epochs; checks the outputs and reports.
    pub async fn run(&mut self, obs: &dyn Observer) -> Result<DevnetReport, DevnetError> {
        let started = Instant::now();
        let (n, per) = (self.config.jobs, self.config.tasks_per_job);
        let built: Vec<DevnetJob> = tokio::task::spawn_blocking(move || {
            (0..n)
                .map(|i| jobs::build(i, per))
                .collect::<Result<_, _>>()
        })
        .await
        .map_err(|e| DevnetError::Invalid(format!("building the jobs: {e}")))??;
        let tasks_total: usize = built.iter().map(|j| j.inputs.len()).sum();
        let done_counts: Vec<std::sync::atomic::AtomicUsize> =
            built.iter().map(|_| Default::default()).collect();
        let limits = JobLimits::default();

        // Submit every job (round-robin over validators), then wait for all at once.
        let mut submitted = Vec::new();
        for job in &built {
            let v = job.number % self.sessions.len();
            let spec = JobRequestSpec {
                module: job.module.to_vec(),
                inputs: job.inputs.clone(),
                limits,
                sample_ppm: 0,
            };
            let id = self.sessions[v].submit(&spec).await?;
            obs.job_submitted(job.number, &job.label(), job.inputs.len());
            submitted.push((v, id, Instant::now()));
        }
        let waits = built.iter().zip(&submitted).map(|(job, &(v, id, t0))| {
            let done = &done_counts[job.number];
            let timeout = self.config.job_timeout;
            let session = &self.sessions[v];
            async move {
                let report = session
                    .wait(id, job.inputs.len() as u32, timeout, |_, n| {
                        done.store(n, std::sync::atomic::Ordering::Relaxed);
                        obs.task_done(job.number, n);
                    })
                    .await;
                let elapsed = t0.elapsed();
                if let Ok(r) = &report {
                    let ok = r
                        .tasks
                        .iter()
                        .zip(&job.expected)
                        .all(|(t, e)| t.verdict() == "completed" && t.output == *e);
                    obs.job_finished(job.number, ok);
                } else {
                    obs.job_finished(job.number, false);
                }
                (report, elapsed)
            }
        });
        let all = futures::future::join_all(waits);
        tokio::pin!(all);
        let mut live = LiveStatus {
            tasks_total,
            ..LiveStatus::default()
        };
        let results = loop {
            tokio::select! {
                r = &mut all => break r,
                _ = tokio::time::sleep(TICK) => {
                    live.tasks_done = done_counts
                        .iter()
                        .map(|d| d.load(std::sync::atomic::Ordering::Relaxed))
                        .sum();
                    self.refresh_live(&mut live).await;
                    obs.live(&live);
                    self.check_children()?;
                }
            }
        };
        live.tasks_done = done_counts
            .iter()
            .map(|d| d.load(std::sync::atomic::Ordering::Relaxed))
            .sum();

        // Cheaters: give the validators time to prove and blacklist them.
        let cheaters: BTreeSet<String> = self
            .nodes
            .iter()
            .filter(|n| n.cheater)
            .map(|n| n.peer_id.to_string())
            .collect();
        if !cheaters.is_empty() {
            let deadline = Instant::now() + CHEATER_GRACE;
            let mut noted = false;
            loop {
                let blacklisted = self.blacklisted().await;
                if cheaters.is_subset(&blacklisted) || Instant::now() >= deadline {
                    break;
                }
                if !noted {
                    obs.note(&format!(
                        "waiting up to {CHEATER_GRACE:?} for the validators to blacklist the cheater(s)"
                    ));
                    noted = true;
                }
                self.refresh_live(&mut live).await;
                obs.live(&live);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }

        // Chain: wait for the epochs (the chain's own progress, with a generous bound): at
        // least EPOCHS_TO_WAIT_FOR, and two after the jobs finished, the first to count
        // their last receipts, the second to open the claims of the first.
        if self.has_chain() {
            let bound = Duration::from_secs(
                self.config.epoch_secs * (chain::EPOCHS_TO_WAIT_FOR as u64 + 2) * 3,
            );
            let deadline = Instant::now() + bound;
            let mut wanted = None;
            loop {
                let snap = match self.chain_snapshot().await {
                    Some(r) => r?,
                    None => break,
                };
                let wanted = *wanted
                    .get_or_insert(chain::EPOCHS_TO_WAIT_FOR.max(snap.epochs_executed() + 2));
                if snap.epochs_executed() >= wanted {
                    // Then a few seconds for the workers' automatic claims to land, so
                    // that the report shows them paid (not waited for forever: a
                    // claim is the worker's business).
                    let claims = Instant::now() + CLAIMS_GRACE;
                    while Instant::now() < claims {
                        match self.chain_snapshot().await {
                            Some(Ok(s)) if s.sno_claimed < s.sno_claimable => {}
                            _ => break,
                        }
                        self.refresh_live(&mut live).await;
                        obs.live(&live);
                        tokio::time::sleep(TICK).await;
                    }
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(DevnetError::Timeout(format!(
                        "fewer than {wanted} epochs executed after {bound:?}"
                    )));
                }
                self.refresh_live(&mut live).await;
                obs.live(&live);
                tokio::time::sleep(TICK).await;
            }
        }
        self.refresh_live(&mut live).await;
        obs.live(&live);
        self.report(&built, results, started.elapsed()).await
    }

    /// Fails when a child process died on its own.
    fn check_children(&self) -> Result<(), DevnetError> {
        if let Backend::Processes(children) = &self.backend {
            let exited = children.lock().expect("poisoned").exited();
            if let Some((name, status)) = exited.into_iter().next() {
                return Err(DevnetError::Child(format!(
                    "{name} exited unexpectedly ({status}); see {}",
                    self.config
                        .data_dir
                        .join("nodes")
                        .join(&name)
                        .join("node.log")
                        .display()
                )));
            }
        }
        Ok(())
    }

    /// THE place the devnet reads the chain (the live line, the epoch wait, the report):
    /// `None` without a chain. From the [`ChainView`] of a JSON-RPC chain, or in process
    /// from the harness's embedded chain.
    async fn chain_snapshot(&self) -> Option<Result<ChainSnapshot, DevnetError>> {
        if let Some(c) = &self.chain {
            return Some(c.snapshot().await);
        }
        match &self.backend {
            Backend::InProcess(net) => {
                let report = net.chain_report().await?;
                Some(
                    report
                        .map_err(|e| DevnetError::Chain(e.to_string()))
                        .map(|r| in_process_snapshot(net, r)),
                )
            }
            Backend::Processes(_) => None,
        }
    }

    async fn refresh_live(&self, live: &mut LiveStatus) {
        let (_, workers) = self.statuses().await;
        live.frauds = workers
            .iter()
            .filter_map(|w| w.blacklisted.clone())
            .collect::<BTreeSet<_>>()
            .len();
        if let Some(Ok(snap)) = self.chain_snapshot().await {
            live.epochs_executed = Some(snap.epochs_executed());
            live.sno_minted = Some(snap.sno_minted);
        }
    }

    /// Every validator's Status: all jobs, and every validator's view of every worker.
    async fn statuses(&self) -> (Vec<JobStatus>, Vec<WorkerStatus>) {
        let mut jobs = Vec::new();
        let mut workers = Vec::new();
        for s in &self.sessions {
            match s.status(None).await {
                Ok(JobResponse::Status {
                    jobs: j,
                    workers: w,
                    ..
                }) => {
                    jobs.extend(j);
                    workers.extend(w);
                }
                Ok(_) => tracing::warn!("a validator answered Status with something else"),
                Err(e) => tracing::warn!("a validator's status: {e}"),
            }
        }
        (jobs, workers)
    }

    /// Peer ids some validator blacklisted.
    async fn blacklisted(&self) -> BTreeSet<String> {
        self.statuses()
            .await
            .1
            .into_iter()
            .filter(|w| w.blacklisted.is_some())
            .map(|w| w.peer)
            .collect()
    }

    async fn report(
        &self,
        built: &[DevnetJob],
        results: Vec<(Result<crate::roles::user::JobReport, UserError>, Duration)>,
        elapsed: Duration,
    ) -> Result<DevnetReport, DevnetError> {
        let (job_statuses, worker_statuses) = self.statuses().await;
        let mut tasks_by_worker: HashMap<String, usize> = HashMap::new();
        let mut job_rows = Vec::new();
        let mut artifacts = Vec::new();
        for (job, (result, time)) in built.iter().zip(results) {
            let validator = self
                .validators()
                .nth(job.number % self.sessions.len())
                .map(|v| v.name.clone())
                .unwrap_or_default();
            let mut row = JobRow {
                number: job.number,
                kind: job.kind.example().to_string(),
                validator,
                job_id: None,
                tasks: job.inputs.len(),
                completed: 0,
                correct: 0,
                sampled: 0,
                revoked: 0,
                verify_fuel: 0,
                total_fuel: 0,
                seconds: time.as_secs_f64(),
                error: None,
                artifact: None,
            };
            match result {
                Ok(mut report) => {
                    row.job_id = Some(hex::encode(report.job_id));
                    if let Some(st) = job_statuses.iter().find(|s| s.job_id == report.job_id) {
                        row.sampled = st.sampled;
                        row.revoked = st.revoked;
                        row.verify_fuel = st.verify_fuel;
                        row.total_fuel = st.total_fuel;
                    }
                    // Results the validator withdrew (their worker was proven a fraud)
                    // were run again: what counts is its record now, not what was first
                    // pushed to us. Fetched afresh, and checked like the first ones.
                    let wrong = report
                        .tasks
                        .iter()
                        .zip(&job.expected)
                        .any(|(t, e)| t.output != *e);
                    if row.revoked > 0 && wrong {
                        let session = &self.sessions[job.number % self.sessions.len()];
                        let timeout = self.config.job_timeout.min(Duration::from_secs(60));
                        match session
                            .wait(report.job_id, report.tasks.len() as u32, timeout, |_, _| {})
                            .await
                        {
                            Ok(again) => report = again,
                            Err(e) => tracing::warn!("fetching revised results: {e}"),
                        }
                    }
                    for (t, expected) in report.tasks.iter().zip(&job.expected) {
                        *tasks_by_worker.entry(t.worker.to_string()).or_default() += 1;
                        if t.verdict() == "completed" {
                            row.completed += 1;
                            if t.output == *expected {
                                row.correct += 1;
                            }
                        }
                    }
                    let outputs: Vec<Vec<u8>> =
                        report.tasks.iter().map(|t| t.output.clone()).collect();
                    if let Some(a) = jobs::combine(job, &outputs, &self.config.data_dir)? {
                        row.artifact = Some((a.path.clone(), a.correct));
                        artifacts.push(a);
                    }
                }
                Err(e) => row.error = Some(e.to_string()),
            }
            job_rows.push(row);
        }

        let chain = self.chain_snapshot().await.transpose()?;
        let mut node_rows = Vec::new();
        for n in &self.nodes {
            let peer = n.peer_id.to_string();
            let views: Vec<&WorkerStatus> =
                worker_statuses.iter().filter(|w| w.peer == peer).collect();
            let balance = chain
                .as_ref()
                .and_then(|c| c.balance(&n.eth_address).cloned());
            node_rows.push(NodeRow {
                name: n.name.clone(),
                role: n.role,
                peer_id: peer.clone(),
                eth_address: n.eth_address.clone(),
                cheater: n.cheater,
                tasks: tasks_by_worker.get(&peer).copied().unwrap_or(0),
                jobs: job_rows.iter().filter(|j| j.validator == n.name).count(),
                // Each validator keeps its own score: the lowest is reported.
                reputation: views.iter().map(|w| w.reputation).min(),
                verified: views.iter().map(|w| w.verified).sum(),
                blacklisted: views.iter().find_map(|w| w.blacklisted.clone()),
                balance,
                peers_dropped: self.peers_dropped(&n.peer_id),
            });
        }
        let evidence = self.save_evidence(&node_rows).await?;
        Ok(DevnetReport {
            evidence,
            data_dir: self.config.data_dir.clone(),
            elapsed,
            jobs: job_rows,
            nodes: node_rows,
            artifacts,
            chain,
            frauds_proven: worker_statuses
                .iter()
                .filter_map(|w| w.blacklisted.clone())
                .collect::<BTreeSet<_>>()
                .len(),
        })
    }

    /// Evidence (issue 21): fetches the evidence bundle of every blacklisted cheater from a
    /// validator that holds it and writes it to `DATA_DIR/evidence-<id>.bundle`, so anyone
    /// can re-judge it with `smartnodes verify`. Returns the paths written.
    async fn save_evidence(&self, nodes: &[report::NodeRow]) -> Result<Vec<PathBuf>, DevnetError> {
        let mut paths = Vec::new();
        for id in nodes.iter().filter_map(|n| n.blacklisted.as_deref()) {
            let Ok(id) = crate::commands::evidence::parse_hash(id) else {
                continue;
            };
            let path = self
                .config
                .data_dir
                .join(crate::commands::evidence::file_name(&id));
            let mut fetched = None;
            for session in &self.sessions {
                match session.evidence(id).await {
                    Ok(bundle) => {
                        fetched = Some(bundle);
                        break;
                    }
                    Err(e) => tracing::debug!("evidence {}: {e}", hex::encode(id)),
                }
            }
            let Some(bundle) = fetched else {
                tracing::warn!("no validator served evidence {}", hex::encode(id));
                continue;
            };
            std::fs::write(&path, bundle.to_bytes()).map_err(|source| DevnetError::Io {
                path: path.clone(),
                source,
            })?;
            paths.push(path);
        }
        Ok(paths)
    }

    /// Stops every node (children: SIGTERM, then SIGKILL after a grace period).
    pub async fn stop(self) {
        let Devnet {
            backend, sessions, ..
        } = self;
        for s in sessions {
            s.close().await;
        }
        match backend {
            Backend::InProcess(net) => net.stop().await,
            Backend::Processes(children) => {
                let mut children = children.into_inner().unwrap_or_else(|e| e.into_inner());
                children.stop().await
            }
        }
    }
}

/// The chain as the in-process network's [`crate::epoch::testnet::ChainReport`] tells it,
/// plus what every node was rewarded (from the executed summaries a validator holds).
fn in_process_snapshot(net: &Network, r: crate::epoch::testnet::ChainReport) -> ChainSnapshot {
    use smartnodes_contracts::U256;
    let wei = |v: U256| u128::try_from(v).unwrap_or(u128::MAX);
    // Rewarded to each worker by the executed epochs (claimed or not).
    let mut rewarded: std::collections::HashMap<[u8; 20], u128> = Default::default();
    // Blacklisted on chain: what they were rewarded and did not claim is forfeited.
    let mut blacklisted = std::collections::HashSet::new();
    if let Some(e) = net.validators.iter().find_map(|v| v.epochs.as_ref()) {
        for content in e.executed_from(0) {
            for (address, amount) in &content.rewards {
                *rewarded.entry(*address).or_default() += wei(U256::from_be_bytes(*amount));
            }
            blacklisted.extend(content.blacklist.iter().map(|b| b.address));
        }
    }
    // Claims for an epoch open once the next one has executed.
    let open = r.epochs.len().saturating_sub(1);
    ChainSnapshot {
        endpoint: r.backend.to_string(),
        epochs: r
            .epochs
            .iter()
            .map(|e| chain::EpochRecord {
                number: e.epoch,
                proposer: e.proposer.to_string(),
                votes: e.votes,
                gas_used: e.gas.iter().map(|g| g.gas).sum(),
                executed: true,
            })
            .collect(),
        sno_minted: wei(r.minted),
        sno_claimed: r.epochs.iter().map(|e| wei(e.claimed)).sum(),
        sno_claimable: r.epochs[..open].iter().map(|e| wei(e.worker_total)).sum(),
        balances: r
            .nodes
            .iter()
            .map(|n| chain::NodeBalance {
                address: n.address.to_string(),
                // Validators are paid for their votes directly; workers claim theirs, and
                // a blacklisted one keeps only what it claimed before.
                earned: match n.role {
                    "worker" if blacklisted.contains(&n.address.0 .0) => wei(n.balance),
                    "worker" => rewarded.get(&n.address.0 .0).copied().unwrap_or(0),
                    _ => wei(n.earned),
                },
                claimed: wei(n.balance),
                stake: wei(n.stake),
                slashed: wei(n.slashed),
            })
            .collect(),
    }
}
