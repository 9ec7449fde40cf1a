//! An in-process network for tests, benchmarks and (later) the devnet: validators and
//! workers in the current tokio runtime, each with its own temporary data dir, listening on
//! `/ip4/127.0.0.1/tcp/0`, the workers bootstrapped to every validator.

pub use crate::epoch::testnet::{ChainNet, ChainReport, ChainSetup, EpochLine, NodeLine};
use crate::roles::cheat::Cheat;
use crate::roles::{start_node, Node, NodeConfig, NodeError, Role};
use smartnodes_runtime::Runtime;
use std::sync::Arc;
use std::time::Duration;

/// How often in-process nodes look the network up: a small network on loopback, where a
/// lookup costs little and tests want peers found (again) within seconds.
pub const IN_PROCESS_DISCOVERY: Duration = Duration::from_secs(1);

/// What to start.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// Validators.
    pub validators: usize,
    /// Workers.
    pub workers: usize,
    /// Slots per worker.
    pub worker_slots: usize,
    /// Lease (and so heartbeat period = lease / 3).
    pub lease: Duration,
    /// `fsync` before acknowledging (see [`NodeConfig::fsync`]).
    pub fsync: bool,
    /// Cheaters: worker `i` cheats with `cheaters[i]` (so these are among `workers`).
    pub cheaters: Vec<Cheat>,
    /// The validators' default sample rate, parts per million.
    pub sample_ppm: u32,
    /// The validators' check budget, parts per million.
    pub check_budget_ppm: u32,
    /// Epochs on a chain: `None` runs without one (nobody is paid).
    pub chain: Option<ChainSetup>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            validators: 1,
            workers: 3,
            worker_slots: 2,
            lease: Duration::from_secs(3),
            fsync: true,
            cheaters: Vec::new(),
            sample_ppm: crate::roles::DEFAULT_SAMPLE_PPM,
            check_budget_ppm: crate::roles::DEFAULT_CHECK_BUDGET_PPM,
            chain: None,
        }
    }
}

/// A running in-process network.
#[derive(Debug)]
pub struct Network {
    /// The validators.
    pub validators: Vec<Node>,
    /// The workers.
    pub workers: Vec<Node>,
    /// Data dirs, kept alive as long as the network.
    pub dirs: Vec<tempfile::TempDir>,
    /// The sandbox the workers share.
    pub runtime: Arc<Runtime>,
    /// The chain, when [`NetworkConfig::chain`] asked for one.
    pub chain: Option<ChainNet>,
}

impl Network {
    /// Starts the network and waits until every worker has registered with a validator.
    pub async fn start(config: NetworkConfig) -> Result<Network, NodeError> {
        let runtime = Arc::new(
            Runtime::new(smartnodes_runtime::RuntimeConfig::default())
                .map_err(|e| NodeError::Runtime(e.to_string()))?,
        );
        let mut dirs = Vec::new();
        let mut validators = Vec::new();
        let listen: libp2p::Multiaddr = "/ip4/127.0.0.1/tcp/0".parse().expect("valid");
        let temp = || {
            tempfile::tempdir().map_err(|source| crate::identity::IdentityError::Io {
                path: std::env::temp_dir(),
                source,
            })
        };
        let mut validator_configs = Vec::new();
        for _ in 0..config.validators {
            let dir = temp()?;
            let mut c = NodeConfig::new(Role::Validator, dir.path().to_path_buf(), listen.clone())?;
            c.lease = config.lease;
            c.fsync = config.fsync;
            c.sample_ppm = config.sample_ppm;
            c.check_budget_ppm = config.check_budget_ppm;
            c.discovery_interval = IN_PROCESS_DISCOVERY;
            validator_configs.push(c);
            dirs.push(dir);
        }
        let mut worker_configs = Vec::new();
        for i in 0..config.workers {
            let dir = temp()?;
            let mut c = NodeConfig::new(Role::Worker, dir.path().to_path_buf(), listen.clone())?;
            c.worker_slots = config.worker_slots;
            c.lease = config.lease;
            c.fsync = config.fsync;
            c.cheat = config.cheaters.get(i).copied();
            c.discovery_interval = IN_PROCESS_DISCOVERY;
            worker_configs.push(c);
            dirs.push(dir);
        }
        let chain = match &config.chain {
            Some(setup) => Some(
                ChainNet::setup(setup, &mut validator_configs, &mut worker_configs)
                    .await
                    .map_err(crate::epoch::EpochError::from)?,
            ),
            None => None,
        };
        for mut c in validator_configs {
            // Validators know each other: fraud proofs (and their blobs) and epoch gossip
            // have a direct path.
            c.bootstrap = validators.iter().map(|v: &Node| v.addr()).collect();
            validators.push(start_node(c, Some(runtime.clone())).await?);
        }
        let bootstrap: Vec<_> = validators.iter().map(|v| v.addr()).collect();
        let mut workers = Vec::new();
        for mut c in worker_configs {
            c.bootstrap = bootstrap.clone();
            workers.push(start_node(c, Some(runtime.clone())).await?);
        }
        let network = Network {
            validators,
            workers,
            dirs,
            runtime,
            chain,
        };
        network
            .wait_for_workers(config.workers, Duration::from_secs(20))
            .await;
        Ok(network)
    }

    /// Waits until the first validator knows `n` workers (or the timeout passes).
    pub async fn wait_for_workers(&self, n: usize, timeout: Duration) -> bool {
        let Some(v) = self.validators.first() else {
            return n == 0;
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let session = match crate::roles::user::UserSession::connect(v.addr()).await {
            Ok(s) => s,
            Err(_) => return false,
        };
        let mut ok = false;
        while tokio::time::Instant::now() < deadline {
            if let Ok(crate::net::proto::JobResponse::Status { workers, .. }) =
                session.status(None).await
            {
                if workers.len() >= n {
                    ok = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        session.close().await;
        ok
    }

    /// What the chain says about executed epochs and every node's SNO (`None` without a
    /// chain). Its `Display` is the table closing notes quote.
    pub async fn chain_report(&self) -> Option<smartnodes_contracts::Result<ChainReport>> {
        match &self.chain {
            Some(c) => Some(c.report().await),
            None => None,
        }
    }

    /// The first validator's address.
    pub fn validator_addr(&self) -> libp2p::Multiaddr {
        self.validators[0].addr()
    }

    /// Stops every node.
    pub async fn stop(self) {
        for node in self.workers.into_iter().chain(self.validators) {
            node.stop().await;
        }
    }
}
