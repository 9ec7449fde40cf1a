//! Chain options shared by the node commands, `smartnodes chain deploy` and
//! `smartnodes claim`.

use crate::epoch::ledger::node_key_hash;
use crate::epoch::{ChainConfig, ProposalContent};
use crate::identity::Identity;
use crate::net::proto::JobResponse;
use crate::roles::user::UserSession;
use crate::roles::Role as NodeRole;
use anyhow::{bail, Context, Result};
use libp2p::{Multiaddr, PeerId};
use smartnodes_contracts::{
    sno, Address, Chain, Deployment, Endpoint, Params, PrivateKeySigner, Role, U256,
};
use std::io::Write;
use std::path::{Path, PathBuf};

/// How a node reaches the contracts (all node commands).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ChainArgs {
    /// The chain's JSON-RPC endpoint, e.g. http://127.0.0.1:8545 (anvil). Without it the
    /// node runs without a chain: no registration, no epochs, nobody is paid.
    #[arg(long, value_name = "URL")]
    pub rpc_url: Option<String>,
    /// Where the contracts are and which engine the network runs: the JSON file
    /// `smartnodes chain deploy` writes (`{"core": "0x…", "token": "0x…", "engine":
    /// "<fingerprint>"}`). Required with --rpc-url; a node whose engine is not the
    /// deployment's refuses to start.
    #[arg(long, value_name = "FILE")]
    pub deployment: Option<PathBuf>,
    /// The chain signer's private key (a file holding 64 hex digits). Default: the node's
    /// own Ethereum key, DATA_DIR/keys/eth.key.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// DEVNETS ONLY: serve workers that are not registered on chain (they earn nothing).
    #[arg(long)]
    pub devnet_open: bool,
    /// Workers: do not claim rewards automatically (use `smartnodes claim`).
    #[arg(long)]
    pub no_claim: bool,
}

/// Reads a private key file (64 hex digits, `0x` optional, surrounding space ignored).
pub fn read_key(path: &Path) -> Result<PrivateKeySigner> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the key file {}", path.display()))?;
    text.trim()
        .parse::<PrivateKeySigner>()
        .with_context(|| format!("{} does not hold a secp256k1 private key", path.display()))
}

/// Reads a deployment file.
pub fn read_deployment(path: &Path) -> Result<Deployment> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the deployment {}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let field = |name: &str| -> Result<Address> {
        v.get(name)
            .and_then(|a| a.as_str())
            .with_context(|| format!("{} has no \"{name}\"", path.display()))?
            .parse::<Address>()
            .with_context(|| format!("\"{name}\" in {} is not an address", path.display()))
    };
    Ok(Deployment {
        core: field("core")?,
        token: field("token")?,
    })
}

/// The engine fingerprint this binary's nodes run (the in-wasm meter): what a deployment
/// records as `"engine"`.
pub fn network_engine() -> smartnodes_runtime::EngineFingerprint {
    smartnodes_runtime::EngineFingerprint::of(smartnodes_runtime::RuntimeConfig::default().metering)
}

/// Checks that the deployment's `"engine"` is this node's: one engine per network.
pub fn check_deployment_engine(path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the deployment {}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let ours = network_engine();
    let theirs = v.get("engine").and_then(|e| e.as_str()).with_context(|| {
        format!(
            "{} has no \"engine\": it predates one-engine networks; redeploy with \
                 `smartnodes chain deploy` (this node's engine is {ours})",
            path.display()
        )
    })?;
    let theirs = smartnodes_runtime::EngineFingerprint::from_hex(theirs)
        .with_context(|| format!("\"engine\" in {} is not 64 hex digits", path.display()))?;
    anyhow::ensure!(
        theirs == ours,
        "this network runs engine {theirs}, this node runs {ours}: a node with another \
         engine cannot join (run the smartnodes version the network was deployed with)"
    );
    Ok(())
}

/// The deployment file's JSON.
pub fn deployment_json(d: &Deployment) -> serde_json::Value {
    serde_json::json!({
        "core": d.core.to_string(),
        "token": d.token.to_string(),
        "engine": network_engine().to_hex(),
    })
}

impl ChainArgs {
    /// The chain configuration and signer, or `None` without --rpc-url.
    pub fn resolve(&self, identity: &Identity) -> Result<Option<(ChainConfig, PrivateKeySigner)>> {
        let Some(url) = &self.rpc_url else {
            anyhow::ensure!(
                self.deployment.is_none() && self.key_file.is_none(),
                "--deployment and --key-file need --rpc-url"
            );
            return Ok(None);
        };
        let file = self
            .deployment
            .as_deref()
            .context("--rpc-url needs --deployment FILE (see `smartnodes chain deploy`)")?;
        let deployment = read_deployment(file)?;
        check_deployment_engine(file)?;
        let signer = match &self.key_file {
            Some(path) => read_key(path)?,
            None => identity.eth_signer(),
        };
        let mut config = ChainConfig::new(Endpoint::Rpc(url.clone()), deployment);
        config.open = self.devnet_open;
        config.auto_claim = !self.no_claim;
        Ok(Some((config, signer)))
    }
}

/// Registers the node on chain for its role if it is not yet: validators lock the minimum
/// validator collateral and workers stake the minimum worker collateral, which the signer
/// must hold in SNO. The node key is the signer's own key, so `peer` must be the peer id of
/// the signer's secp256k1 key (ARCHITECTURE.md, "Node identity").
pub async fn ensure_registered(
    config: &ChainConfig,
    signer: &PrivateKeySigner,
    role: NodeRole,
    peer: &PeerId,
) -> Result<()> {
    let chain = Chain::connect(&config.endpoint, signer.clone(), config.deployment)
        .await
        .context("connecting to the contracts")?;
    let chain_role = match role {
        NodeRole::Validator => Role::Validator,
        NodeRole::Worker => Role::Worker,
    };
    let key = node_key_hash(peer);
    anyhow::ensure!(
        key == chain.node_key_hash(),
        "peer id {peer} is not the libp2p identity of {}'s key: a node's peer id must be its \
         chain key",
        chain.account()
    );
    let reg = chain
        .registration(chain_role, chain.account())
        .await
        .context("reading the registration")?;
    if reg.active {
        anyhow::ensure!(
            reg.node_key_hash == key,
            "{} is registered with another node key (not peer id {peer})",
            chain.account()
        );
        return Ok(());
    }
    let params = chain.params().await?;
    let (collateral, what) = match role {
        NodeRole::Worker => (params.min_worker_collateral, "as a worker stakes"),
        NodeRole::Validator => (params.min_validator_collateral, "as a validator locks"),
    };
    let balance = chain.token_balance(chain.account()).await?;
    anyhow::ensure!(
        balance >= collateral,
        "registering {what} {collateral} SNO wei; {} holds {balance}",
        chain.account()
    );
    match role {
        NodeRole::Worker => chain
            .register_worker(collateral)
            .await
            .context("registering as a worker")?,
        NodeRole::Validator => chain
            .register_validator(collateral)
            .await
            .context("registering as a validator")?,
    };
    tracing::info!(account = %chain.account(), ?role, %collateral, "registered on chain");
    Ok(())
}

/// `smartnodes chain …`.
#[derive(Debug, clap::Args)]
pub struct ChainCommand {
    #[command(subcommand)]
    command: ChainSub,
}

#[derive(Debug, clap::Subcommand)]
enum ChainSub {
    /// Deploy SmartnodesCore and SNO on a JSON-RPC chain and write the deployment file.
    Deploy(DeployArgs),
    /// Give accounts ether for gas and SNO (e.g. a validator's collateral), from the
    /// deployer's key.
    Fund(FundArgs),
}

#[derive(Debug, clap::Args)]
struct DeployArgs {
    /// The chain's JSON-RPC endpoint.
    #[arg(long, value_name = "URL")]
    rpc_url: String,
    /// The deployer's private key file (it pays the gas and is the treasury).
    #[arg(long, value_name = "FILE")]
    key_file: PathBuf,
    /// Where to write the deployment.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Seconds between an execution and the next epoch's proposals.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    epoch_secs: u64,
    /// Genesis SNO minted to the deployer (to fund validators' collateral and workers'
    /// stakes).
    #[arg(long, value_name = "SNO", default_value_t = 100_000)]
    genesis: u64,
    /// Epochs a worker's reward vests before it can be claimed (a worker caught before
    /// then forfeits it). Default: the contract's default, 6.
    #[arg(long, value_name = "EPOCHS", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    vesting_epochs: Option<u32>,
}

#[derive(Debug, clap::Args)]
struct FundArgs {
    /// The chain's JSON-RPC endpoint.
    #[arg(long, value_name = "URL")]
    rpc_url: String,
    /// The deployment file.
    #[arg(long, value_name = "FILE")]
    deployment: PathBuf,
    /// The funder's private key file.
    #[arg(long, value_name = "FILE")]
    key_file: PathBuf,
    /// Ether (whole) each account gets.
    #[arg(long, value_name = "ETH", default_value_t = 10)]
    eth: u64,
    /// SNO (whole) each account gets.
    #[arg(long, value_name = "SNO", default_value_t = 0)]
    sno: u64,
    /// The accounts (0x…).
    #[arg(required = true)]
    accounts: Vec<Address>,
}

/// Runs `smartnodes chain …`.
pub fn run(args: ChainCommand) -> Result<u8> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match args.command {
            ChainSub::Deploy(a) => {
                let signer = read_key(&a.key_file)?;
                let mut params = Params::new(signer.address());
                params.epoch_duration = a.epoch_secs.max(1);
                params.round_duration = a.epoch_secs.clamp(1, 120);
                if let Some(w) = a.vesting_epochs {
                    params.vesting_epochs = w;
                }
                params.fit_durations();
                let genesis = [(signer.address(), sno(a.genesis))];
                let chain =
                    Chain::deploy(&Endpoint::Rpc(a.rpc_url.clone()), signer, &params, &genesis)
                        .await
                        .context("deploying the contracts")?;
                let d = chain.deployment();
                let json = deployment_json(&d);
                std::fs::write(&a.out, format!("{json}\n"))
                    .with_context(|| format!("writing {}", a.out.display()))?;
                writeln!(std::io::stdout(), "{json}")?;
                Ok(0)
            }
            ChainSub::Fund(a) => {
                let chain = Chain::connect(
                    &Endpoint::Rpc(a.rpc_url.clone()),
                    read_key(&a.key_file)?,
                    read_deployment(&a.deployment)?,
                )
                .await
                .context("connecting to the contracts")?;
                let wei = U256::from(a.eth) * U256::from(10u64).pow(U256::from(18u64));
                for account in &a.accounts {
                    if a.eth > 0 {
                        chain
                            .send_eth(*account, wei)
                            .await
                            .context("sending ether")?;
                    }
                    if a.sno > 0 {
                        chain
                            .transfer(*account, sno(a.sno))
                            .await
                            .context("sending SNO")?;
                    }
                }
                Ok(0)
            }
        }
    })
}

/// Arguments of `smartnodes claim`.
#[derive(Debug, clap::Args)]
pub struct ClaimArgs {
    /// A validator to fetch the executed epochs' rewards from.
    #[arg(long, value_name = "MULTIADDR")]
    pub validator: Multiaddr,
    /// The worker's data dir (its Ethereum key is the claimer), unless --key-file.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Chain options (--rpc-url and --deployment are required).
    #[command(flatten)]
    pub chain: ChainArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Executed epochs' contents from a validator, each checked against the on-chain hash.
pub async fn executed_contents(
    chain: &Chain,
    session: &UserSession,
) -> Result<Vec<ProposalContent>> {
    let current = chain.current_epoch().await?;
    let mut out = Vec::new();
    let mut from = 1;
    while from < current {
        let contents = match session.epochs(from).await? {
            JobResponse::Epochs(c) => c,
            JobResponse::Rejected { reason } => bail!("the validator refused: {reason}"),
            _ => bail!("unexpected answer"),
        };
        if contents.is_empty() {
            break;
        }
        for c in contents.into_iter().take(crate::epoch::node::SERVED_EPOCHS) {
            from = from.max(c.epoch + 1);
            let record = chain.epoch_record(c.epoch).await?;
            if c.check_bounds().is_ok() && c.hash() == Some(record.summary_hash) {
                out.push(c);
            } else {
                tracing::warn!(
                    epoch = c.epoch,
                    "the validator served a summary that did not execute"
                );
            }
        }
    }
    Ok(out)
}

/// Runs `smartnodes claim`: claims every unclaimed reward of this account.
pub fn claim(args: ClaimArgs) -> Result<u8> {
    let identity = match &args.data_dir {
        Some(dir) => Identity::load_or_create(dir).context("loading the node's keys")?,
        None => Identity::ephemeral(),
    };
    anyhow::ensure!(
        args.data_dir.is_some() || args.chain.key_file.is_some(),
        "give --data-dir (the worker's keys) or --key-file"
    );
    let (config, signer) = args
        .chain
        .resolve(&identity)?
        .context("claiming needs --rpc-url and --deployment")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let chain = Chain::connect(&config.endpoint, signer, config.deployment)
            .await
            .context("connecting to the contracts")?;
        let session = UserSession::connect(args.validator.clone())
            .await
            .with_context(|| format!("connecting to {}", args.validator))?;
        let contents = executed_contents(&chain, &session).await;
        session.close().await;
        let me = chain.account();
        let current = chain.current_epoch().await?;
        let vesting = u64::from(chain.params().await?.vesting_epochs);
        let mut claimed = Vec::new();
        let mut pending = Vec::new();
        for c in contents? {
            let Some((amount, proof)) = c.reward_tree().and_then(|t| t.proof(&me)) else {
                continue;
            };
            if chain.reward_claimed(me, amount, c.epoch).await? {
                continue;
            }
            // Claims open once the reward has vested.
            if c.epoch + vesting >= current {
                pending.push((c.epoch, amount));
                continue;
            }
            chain
                .claim(c.epoch, amount, proof)
                .await
                .with_context(|| format!("claiming epoch {}", c.epoch))?;
            claimed.push((c.epoch, amount));
        }
        let balance = chain.token_balance(me).await?;
        let mut out = std::io::stdout().lock();
        if args.json {
            let json = serde_json::json!({
                "account": me.to_string(),
                "claimed": claimed.iter().map(|(e, a)| serde_json::json!({"epoch": e, "amount": a.to_string()})).collect::<Vec<_>>(),
                "pending": pending.iter().map(|(e, a)| serde_json::json!({"epoch": e, "amount": a.to_string()})).collect::<Vec<_>>(),
                "balance": balance.to_string(),
            });
            writeln!(out, "{json}")?;
        } else {
            for (e, a) in &claimed {
                writeln!(out, "claimed epoch {e}: {a} SNO wei")?;
            }
            for (e, a) in &pending {
                writeln!(
                    out,
                    "epoch {e}: {a} SNO wei, claimable once epoch {} has executed",
                    e + vesting
                )?;
            }
            writeln!(out, "{me} holds {balance} SNO wei")?;
        }
        Ok(0)
    })
}
