//! `smartnodes peers`: what the DHT knows about the network, as seen through one of its
//! peers: every validator and worker with a valid signed role record, its addresses, its
//! capacity, whether it is registered on the contract (with `--rpc-url`) and when it last
//! signed its record.

use crate::identity::Identity;
use crate::net::discovery::{DiscoveryConfig, PeerInfo};
use crate::net::proto::unix_now;
use anyhow::{Context, Result};
use libp2p::Multiaddr;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `smartnodes peers`.
#[derive(Debug, clap::Args)]
pub struct PeersArgs {
    /// A peer of the network (repeatable): any validator or worker; `/p2p/<peer id>` is
    /// optional.
    #[arg(long, value_name = "MULTIADDR", required = true)]
    pub bootstrap: Vec<Multiaddr>,
    /// Print one JSON object (`{"peers": [...]}`) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Seconds to spend looking (it stops earlier once nothing new came for a second).
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub wait: f64,
    /// A JSON-RPC endpoint of the chain: check each peer's registration on the contract.
    #[arg(long, value_name = "URL", requires = "deployment")]
    pub rpc_url: Option<String>,
    /// The deployment file (`smartnodes chain deploy`), with --rpc-url.
    #[arg(long, value_name = "FILE", requires = "rpc_url")]
    pub deployment: Option<PathBuf>,
}

/// One peer as `peers` prints it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PeerRow {
    /// Its peer id.
    pub peer_id: String,
    /// `validator` or `worker`.
    pub role: String,
    /// Where its record says it can be dialed.
    pub addresses: Vec<String>,
    /// Task slots (workers).
    pub capacity: u32,
    /// Its chain account, as its record says.
    pub account: Option<String>,
    /// Whether that account is registered on the contract, active, in this role and
    /// with this peer id (`None`: not checked, no --rpc-url).
    pub registered: Option<bool>,
    /// When it last signed its record (unix seconds).
    pub last_seen: u64,
    /// How many seconds ago that was.
    pub last_seen_secs_ago: u64,
}

/// Finds the network's peers through `bootstrap` for at most `wait`.
pub async fn discover(bootstrap: Vec<Multiaddr>, wait: Duration) -> Result<Vec<PeerInfo>> {
    let identity = Identity::ephemeral();
    let config = crate::net::NetConfig {
        listen: None,
        discovery: DiscoveryConfig {
            bootstrap: bootstrap.clone(),
            find: vec!["validator".into(), "worker".into()],
            connect_validators: false,
            interval: Duration::from_millis(500),
            ..DiscoveryConfig::default()
        },
        metrics: None,
        topics: Vec::new(),
    };
    let (client, _events, _) = crate::net::start_with(identity.keypair().clone(), config)
        .await
        .context("starting the network")?;
    let mut reached = 0;
    let mut last_error = None;
    for addr in &bootstrap {
        match client.dial(addr.clone()).await {
            Ok(_) => reached += 1,
            Err(e) => last_error = Some(format!("{addr}: {e}")),
        }
    }
    if reached == 0 {
        client.shutdown().await;
        anyhow::bail!(
            "no bootstrap peer answered ({})",
            last_error.unwrap_or_default()
        );
    }
    let deadline = tokio::time::Instant::now() + wait;
    let quiet = Duration::from_secs(1);
    let mut changes = client.changes();
    let mut seen = 0;
    loop {
        let until = (tokio::time::Instant::now() + quiet).min(deadline);
        let changed = matches!(
            tokio::time::timeout_at(until, changes.changed()).await,
            Ok(Ok(()))
        );
        let now = tokio::time::Instant::now();
        if now >= deadline {
            break;
        }
        if !changed {
            let known = client.peers().await.len();
            if known > 0 && known == seen {
                break;
            }
            seen = known;
        }
    }
    let peers = client.peers().await;
    client.shutdown().await;
    Ok(peers)
}

/// Whether each peer's account is registered for its role with its peer id.
async fn registrations(
    peers: &[PeerInfo],
    url: &str,
    deployment: &std::path::Path,
) -> Result<Vec<bool>> {
    use smartnodes_contracts::{Chain, Endpoint, PrivateKeySigner, Role};
    let deployment = crate::commands::chain::read_deployment(deployment)?;
    // Reads only: any key will do.
    let chain = Chain::connect(
        &Endpoint::Rpc(url.to_string()),
        PrivateKeySigner::random(),
        deployment,
    )
    .await
    .context("connecting to the contracts")?;
    let mut out = Vec::new();
    for p in peers {
        let role = match p.role.as_str() {
            "validator" => Role::Validator,
            "worker" => Role::Worker,
            _ => {
                out.push(false);
                continue;
            }
        };
        let registered = match p.account {
            Some(account) => {
                let r = chain
                    .registration(role, account.into())
                    .await
                    .context("reading a registration")?;
                r.active && r.node_key_hash == crate::epoch::ledger::node_key_hash(&p.peer)
            }
            None => false,
        };
        out.push(registered);
    }
    Ok(out)
}

/// The rows `peers` prints.
pub fn rows(peers: &[PeerInfo], registered: Option<&[bool]>, now: u64) -> Vec<PeerRow> {
    peers
        .iter()
        .enumerate()
        .map(|(i, p)| PeerRow {
            peer_id: p.peer.to_string(),
            role: p.role.clone(),
            addresses: p.addrs.iter().map(|a| a.to_string()).collect(),
            capacity: p.capacity,
            account: p.account.map(|a| format!("0x{}", hex::encode(a))),
            registered: registered.map(|r| r[i]),
            last_seen: p.signed_at,
            last_seen_secs_ago: now.saturating_sub(p.signed_at),
        })
        .collect()
}

/// Runs the command: 0 when at least one peer was found, 1 when none, 2 an error.
pub fn run(args: PeersArgs) -> Result<u8> {
    anyhow::ensure!(
        args.wait.is_finite() && (0.1..=600.0).contains(&args.wait),
        "--wait must be between 0.1 and 600 seconds"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let peers = discover(args.bootstrap.clone(), Duration::from_secs_f64(args.wait)).await?;
        let registered = match (&args.rpc_url, &args.deployment) {
            (Some(url), Some(deployment)) => Some(registrations(&peers, url, deployment).await?),
            _ => None,
        };
        let rows = rows(&peers, registered.as_deref(), unix_now());
        let mut out = std::io::stdout().lock();
        if args.json {
            writeln!(out, "{}", serde_json::json!({ "peers": rows }))?;
        } else {
            writeln!(
                out,
                "{:<54} {:<9} {:>8} {:>10} {:>9}  addresses",
                "peer id", "role", "capacity", "registered", "last seen"
            )?;
            for r in &rows {
                let registered = match r.registered {
                    Some(true) => "yes",
                    Some(false) => "no",
                    None => "-",
                };
                writeln!(
                    out,
                    "{:<54} {:<9} {:>8} {:>10} {:>8}s  {}",
                    r.peer_id,
                    r.role,
                    r.capacity,
                    registered,
                    r.last_seen_secs_ago,
                    r.addresses.join(" ")
                )?;
            }
        }
        Ok(if rows.is_empty() { 1 } else { 0 })
    })
}
