//! The roles a node plays, and [`start_node`], which wires a role to the network and the
//! store.
//!
//! - `validator`: admits jobs, schedules tasks under leases, judges receipts;
//! - `worker`: runs tasks and signs receipts;
//! - [`user`]: a client session that submits jobs and checks what comes back;
//! - [`blobs`]: content-addressed blob transfer, used by all three.

pub mod blobs;
pub mod cheat;
pub mod user;
pub(crate) mod validator;
pub(crate) mod worker;

use crate::identity::{Identity, IdentityError};
use crate::net::{self, Client, NetError};
use crate::store::{Store, StoreError};
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use smartnodes_runtime::Runtime;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The default share of results a validator re-executes: 5 %.
pub const DEFAULT_SAMPLE_PPM: u32 = 50_000;

/// A validator's default check budget: beyond the sample rate, at most this share of a
/// job's fuel is re-executed to check new workers (parts per million;
/// `roles::validator::verify::check_rate`).
pub const DEFAULT_CHECK_BUDGET_PPM: u32 = 200_000;

/// A node's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Admits jobs and schedules their tasks.
    Validator,
    /// Runs tasks.
    Worker,
}

/// How to run a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Its role.
    pub role: Role,
    /// Its keys (see [`Identity::load_or_create`]).
    pub keypair: Keypair,
    /// Where its database lives.
    pub data_dir: PathBuf,
    /// Where it listens (`/ip4/127.0.0.1/tcp/0` for an OS-chosen port).
    pub listen: Multiaddr,
    /// Peers to join through (any validator or worker): dialed at start and again, with
    /// backoff, whenever lost; the validators are found through them (see
    /// [`net::discovery`]).
    pub bootstrap: Vec<Multiaddr>,
    /// Addresses to announce before any peer confirms them (an operator's fixed public
    /// address, `--external-address`).
    pub external_addrs: Vec<Multiaddr>,
    /// Workers: register with at most this many of the validators found (`None`: all).
    pub max_validators: Option<usize>,
    /// How often the node looks the network up for validators.
    pub discovery_interval: Duration,
    /// Its metrics (served by `smartnodes node --metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Tasks a worker runs at once.
    pub worker_slots: usize,
    /// How long a validator waits for a silent worker before giving its tasks to another;
    /// workers send heartbeats three times per lease.
    pub lease: Duration,
    /// Whether acknowledged state is `fsync`ed before the acknowledgement (the default).
    /// Off only for benchmarks that measure the network alone.
    pub fsync: bool,
    /// A worker that lies on purpose (tests and demos only; see [`cheat`]).
    pub cheat: Option<cheat::Cheat>,
    /// A validator's default share of results it re-executes, in parts per million.
    pub sample_ppm: u32,
    /// A validator's check budget: the share of a job's fuel it re-executes at most, beyond
    /// the sample rate, to check new workers (parts per million).
    pub check_budget_ppm: u32,
    /// The node's chain account (its identity's Ethereum key).
    pub eth_signer: smartnodes_contracts::PrivateKeySigner,
    /// The contracts, when epochs run: validators propose and vote, workers register and
    /// claim (see [`crate::epoch`]). `None`: no chain, nobody is paid.
    pub chain: Option<crate::epoch::ChainConfig>,
}

impl NodeConfig {
    /// A node of `role` with its keys loaded (or created) in `data_dir`.
    pub fn new(role: Role, data_dir: PathBuf, listen: Multiaddr) -> Result<NodeConfig, NodeError> {
        let identity = Identity::load_or_create(&data_dir)?;
        Ok(NodeConfig {
            role,
            keypair: identity.keypair().clone(),
            data_dir,
            listen,
            bootstrap: Vec::new(),
            external_addrs: Vec::new(),
            max_validators: None,
            discovery_interval: Duration::from_secs(10),
            metrics: Arc::default(),
            worker_slots: std::thread::available_parallelism().map_or(2, |n| n.get()),
            lease: Duration::from_secs(3),
            fsync: true,
            cheat: None,
            sample_ppm: DEFAULT_SAMPLE_PPM,
            check_budget_ppm: DEFAULT_CHECK_BUDGET_PPM,
            eth_signer: identity.eth_signer(),
            chain: None,
        })
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Its keys.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// Its database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Its network.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The sandbox.
    #[error("starting the sandbox: {0}")]
    Runtime(String),
    /// The chain.
    #[error(transparent)]
    Epoch(#[from] crate::epoch::EpochError),
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    /// Its network client.
    pub client: Client,
    /// The addresses it listens on, each ending in `/p2p/<peer id>`.
    pub listen_addrs: Vec<Multiaddr>,
    /// A validator's epoch driver (with a chain): [`crate::epoch::EpochNode::blacklist`]
    /// is the verification's hook.
    pub epochs: Option<Arc<crate::epoch::EpochNode>>,
    /// A worker's reward claimer (with a chain and automatic claims).
    pub claimer: Option<Arc<crate::epoch::Claimer>>,
    /// Its metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
    shutdown: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Node {
    /// Its peer id.
    pub fn peer_id(&self) -> PeerId {
        self.client.peer_id()
    }

    /// Its first listen address.
    pub fn addr(&self) -> Multiaddr {
        self.listen_addrs[0].clone()
    }

    /// Stops the role, flushes the database and stops the network.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
        self.client.shutdown().await;
    }
}

/// Starts a node on the current tokio runtime. Workers run tasks, and validators re-run
/// sampled ones, on `runtime` (one is created if `None`; nodes in one process should share
/// one).
pub async fn start_node(
    config: NodeConfig,
    runtime: Option<Arc<Runtime>>,
) -> Result<Node, NodeError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| IdentityError::Io {
        path: config.data_dir.clone(),
        source,
    })?;
    let mut store = Store::open(&config.data_dir.join("db"))?;
    if !config.fsync {
        tracing::warn!("fsync is off: acknowledged state may be lost in a crash");
        store = store.without_fsync();
    }
    let (client, events, listen_addrs) =
        net::start_with(config.keypair.clone(), net_config(&config)).await?;
    let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
    let runtime = match runtime {
        Some(r) => r,
        None => Arc::new(
            Runtime::new(smartnodes_runtime::RuntimeConfig::default())
                .map_err(|e| NodeError::Runtime(e.to_string()))?,
        ),
    };
    let mut node_epochs = None;
    let mut node_claimer = None;
    let task = match config.role {
        Role::Validator => {
            let epochs = match &config.chain {
                Some(chain) => Some(
                    crate::epoch::EpochNode::start(
                        chain.clone(),
                        config.eth_signer.clone(),
                        config.keypair.clone(),
                        client.clone(),
                        store.clone(),
                        shutdown_rx.clone(),
                    )
                    .await?,
                ),
                None => None,
            };
            if let Some(e) = &epochs {
                e.set_metrics(config.metrics.clone());
            }
            node_epochs = epochs.clone();
            validator::Validator::start(
                &config,
                client.clone(),
                store,
                runtime,
                events,
                shutdown_rx,
                epochs,
            )
            .await?
        }
        Role::Worker => {
            let claimer = match &config.chain {
                Some(chain) if chain.auto_claim => Some(
                    crate::epoch::Claimer::start(
                        chain,
                        config.eth_signer.clone(),
                        client.clone(),
                        shutdown_rx.clone(),
                    )
                    .await?,
                ),
                _ => None,
            };
            node_claimer = claimer.clone();
            worker::Worker::start(
                &config,
                client.clone(),
                store,
                runtime,
                events,
                shutdown_rx,
                claimer,
            )
            .await?
        }
    };
    Ok(Node {
        client,
        listen_addrs,
        epochs: node_epochs,
        claimer: node_claimer,
        metrics: config.metrics.clone(),
        shutdown,
        task,
    })
}

/// The network of a node: it announces its role, looks for validators and keeps
/// connections to them (workers to at most `max_validators`).
fn net_config(config: &NodeConfig) -> net::NetConfig {
    let (role, capacity) = match config.role {
        Role::Validator => ("validator", 0),
        Role::Worker => ("worker", config.worker_slots.max(1) as u32),
    };
    net::NetConfig {
        listen: Some(config.listen.clone()),
        discovery: net::discovery::DiscoveryConfig {
            bootstrap: config.bootstrap.clone(),
            external: config.external_addrs.clone(),
            announce: Some(net::discovery::Announce {
                role: role.into(),
                capacity,
                account: config
                    .chain
                    .as_ref()
                    .map(|_| config.eth_signer.address().into_array()),
            }),
            find: vec!["validator".into()],
            connect_validators: true,
            max_validators: match config.role {
                Role::Worker => config.max_validators,
                Role::Validator => None,
            },
            interval: config.discovery_interval,
            ..Default::default()
        },
        metrics: Some(config.metrics.clone()),
        // Validators read fraud proofs, receipt batches and proposals; workers only the
        // proposals they claim with (with 50 workers subscribed to everything, verifying
        // every relayed message's signature was a fifth of the network's CPU: issue 22).
        topics: match config.role {
            Role::Validator => net::proto::protocols::TOPICS.to_vec(),
            Role::Worker => vec![net::proto::protocols::TOPIC_PROPOSALS],
        },
    }
}
