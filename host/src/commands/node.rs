//! `smartnodes node`: runs a validator or a worker until Ctrl-C (or SIGTERM).

use crate::roles::{start_node, NodeConfig, Role};
use anyhow::{Context, Result};
use libp2p::Multiaddr;
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `smartnodes node`.
#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// The node's role.
    #[arg(long, value_enum)]
    pub role: Role,
    /// Where the node keeps its keys and database (created if missing).
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Where to listen, e.g. /ip4/127.0.0.1/tcp/0 for an OS-chosen port.
    #[arg(long, value_name = "MULTIADDR", default_value = "/ip4/0.0.0.0/tcp/0")]
    pub listen: Multiaddr,
    /// A peer of the network to join through (repeatable): any validator or worker;
    /// `/p2p/<peer id>` is optional. The node finds the validators through it (Kademlia)
    /// and dials it again, with backoff, whenever the connection is lost.
    #[arg(long, value_name = "MULTIADDR")]
    pub bootstrap: Vec<Multiaddr>,
    /// An address peers can reach this node at (repeatable), announced in its role record
    /// before any peer confirms it: for a node behind a fixed public address (port
    /// forwarding, a load balancer). Without it, addresses that identify reports from two
    /// peers are announced.
    #[arg(long, value_name = "MULTIADDR")]
    pub external_address: Vec<Multiaddr>,
    /// Serve Prometheus metrics (text format) at http://ADDR/metrics, e.g. 127.0.0.1:9090.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Workers: register with at most N of the validators found (those already connected
    /// first, then the fastest to dial). Default: all.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_validators: Option<u32>,
    /// Seconds between two lookups of the network for validators.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub discovery_interval: f64,
    /// Tasks a worker runs at once (default: the number of cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub workers_slots: Option<u32>,
    /// Seconds without a heartbeat after which a validator gives a worker's tasks to
    /// another (workers send heartbeats three times per lease).
    #[arg(long, value_name = "SECONDS", default_value_t = 3.0)]
    pub lease: f64,
    /// Validators: the share of results to re-execute, in percent (new and low-reputation
    /// workers are sampled more; a job may ask for more).
    #[arg(long, value_name = "PERCENT", default_value_t = 5.0)]
    pub sample_rate: f64,
    /// Validators: the most of a job's fuel re-executed beyond the sample rate to check
    /// new workers, in percent. A new worker's results are all checked while the job's
    /// budget lasts, then at the sample rate; so a crowd of new workers costs a job at
    /// most about this share (ARCHITECTURE.md, "Verification").
    #[arg(long, value_name = "PERCENT", default_value_t = 20.0)]
    pub check_budget: f64,
    /// FOR TESTS AND DEMOS ONLY: a worker that lies in MODE (wrong-output, lazy, fuel,
    /// copy, engine, overflow, inflate) about a fraction RATE of its tasks (default 1; `0.1` or `10%`). Validators
    /// catch it, prove it and blacklist it.
    #[arg(long, value_name = "MODE[:RATE]")]
    pub cheat: Option<crate::roles::cheat::Cheat>,
    /// Exit (cleanly, as on SIGTERM) when the process PID, our parent, dies (Linux only).
    /// Set by `smartnodes devnet --processes` so that nothing outlives it.
    #[arg(long, value_name = "PID", hide = true)]
    pub parent_pid: Option<u32>,
    /// Chain options: with --rpc-url the node registers on chain (validators lock
    /// collateral), validators run epochs and workers claim their rewards.
    #[command(flatten)]
    pub chain: crate::commands::chain::ChainArgs,
}

/// Runs the node; prints `peer id <id>`, then a `listening on <multiaddr>` line per address
/// it listens on (each interface's for `0.0.0.0`), `external address <multiaddr>` per
/// `--external-address` and `metrics on <url>` on stdout once it listens.
pub fn run(args: NodeArgs) -> Result<u8> {
    if let Some(parent) = args.parent_pid {
        crate::devnet::procs::exit_with_parent(parent)
            .map_err(anyhow::Error::msg)
            .context("--parent-pid")?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let mut config = NodeConfig::new(args.role, args.data_dir.clone(), args.listen.clone())
            .context("loading the node's keys")?;
        let identity = crate::identity::Identity::load_or_create(&args.data_dir)
            .context("loading the node's keys")?;
        if let Some((chain, signer)) = args.chain.resolve(&identity)? {
            if chain.open {
                eprintln!(
                    "WARNING: --devnet-open: this node serves peers that are not registered \
                     on chain. Devnets only."
                );
            }
            // The node's peer id is its chain key's (ARCHITECTURE.md, "Node identity"):
            // with --key-file, that key's.
            config.keypair = crate::identity::libp2p_keypair_of(&signer);
            crate::commands::chain::ensure_registered(
                &chain,
                &signer,
                args.role,
                &config.keypair.public().to_peer_id(),
            )
            .await?;
            config.eth_signer = signer;
            config.chain = Some(chain);
        }
        config.bootstrap = args.bootstrap;
        config.external_addrs = args.external_address.clone();
        config.max_validators = args.max_validators.map(|n| n as usize);
        anyhow::ensure!(
            args.discovery_interval.is_finite()
                && (0.1..=3600.0).contains(&args.discovery_interval),
            "--discovery-interval must be between 0.1 and 3600 seconds"
        );
        config.discovery_interval = std::time::Duration::from_secs_f64(args.discovery_interval);
        if let Some(n) = args.workers_slots {
            config.worker_slots = n as usize;
        }
        anyhow::ensure!(
            args.lease.is_finite() && args.lease >= 0.1,
            "--lease must be at least 0.1 s"
        );
        config.lease = std::time::Duration::from_secs_f64(args.lease);
        anyhow::ensure!(
            (0.0..=100.0).contains(&args.sample_rate),
            "--sample-rate is a percentage between 0 and 100"
        );
        config.sample_ppm = (args.sample_rate * 10_000.0).round() as u32;
        anyhow::ensure!(
            (0.0..=100.0).contains(&args.check_budget),
            "--check-budget is a percentage between 0 and 100"
        );
        config.check_budget_ppm = (args.check_budget * 10_000.0).round() as u32;
        if let Some(cheat) = args.cheat {
            anyhow::ensure!(args.role == Role::Worker, "--cheat is for workers only");
            eprintln!(
                "WARNING: this worker CHEATS ({cheat}) on purpose, for tests and demos. \
                 Validators will catch it and blacklist it."
            );
            config.cheat = Some(cheat);
        }
        // Handlers first: a signal sent as soon as the address is printed must reach them,
        // not the default action (which kills the process without a clean shutdown).
        let mut shutdown = ShutdownSignal::install().context("installing signal handlers")?;
        let node = start_node(config, None)
            .await
            .context("starting the node")?;
        let metrics = match args.metrics {
            Some(addr) => Some(
                crate::metrics::serve(addr, node.metrics.clone())
                    .await
                    .with_context(|| format!("serving metrics on {addr}"))?,
            ),
            None => None,
        };
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "peer id {}", node.peer_id())?;
            for addr in &node.listen_addrs {
                writeln!(out, "listening on {addr}")?;
            }
            for addr in &args.external_address {
                writeln!(out, "external address {addr}")?;
            }
            if let Some((addr, _)) = &metrics {
                writeln!(out, "metrics on http://{addr}/metrics")?;
            }
            out.flush()?;
        }
        shutdown.wait().await;
        tracing::info!("shutting down");
        if let Some((_, task)) = metrics {
            task.abort();
        }
        node.stop().await;
        Ok(0)
    })
}

/// SIGTERM and SIGINT (Ctrl-C), listened for from the moment it is installed.
pub(crate) struct ShutdownSignal {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    pub(crate) fn install() -> std::io::Result<ShutdownSignal> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(ShutdownSignal {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(ShutdownSignal {})
        }
    }

    pub(crate) async fn wait(&mut self) {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => {}
                _ = self.int.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = self;
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
