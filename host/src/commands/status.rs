//! `smartnodes status`: a validator's jobs, their tasks, which worker has which, and why a
//! queued task waits.

use crate::net::proto::JobResponse;
use crate::roles::user::UserSession;
use anyhow::{bail, Context, Result};
use libp2p::Multiaddr;
use std::io::Write;

/// Arguments of `smartnodes status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The validator; `/p2p/<peer id>` is optional.
    #[arg(long, value_name = "MULTIADDR")]
    pub validator: Multiaddr,
    /// One job (64 hex digits): lists its tasks too. Only the key that submitted a job
    /// (--key-file) may see it; the list without a job shows that key's jobs.
    pub job_id: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Chain options: with --rpc-url and --deployment, also the current epoch, the last
    /// executed summary, and every validator's and rewarded worker's SNO balance and
    /// claimable rewards.
    #[command(flatten)]
    pub chain: crate::commands::chain::ChainArgs,
}

/// Runs the command.
pub fn run(args: StatusArgs) -> Result<u8> {
    let job = match &args.job_id {
        Some(hex_id) => Some(super::evidence::parse_hash(hex_id).context("the job id")?),
        None => None,
    };
    // The user's key is both who asks (a job's status is its owner's) and, with a chain,
    // the account that reads it.
    let identity = super::keys::user_identity(args.chain.key_file.as_deref())?;
    let mut chain_args = args.chain.clone();
    chain_args.key_file = None;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let session = UserSession::connect_as(args.validator.clone(), identity.clone())
            .await
            .with_context(|| format!("connecting to {}", args.validator))?;
        let answer = session.status(job).await.context("asking for the status")?;
        let chain = match chain_args.resolve(&identity)? {
            Some((config, signer)) => Some(chain_status(&config, signer, &session).await?),
            None => None,
        };
        session.close().await;
        let (jobs, workers, proofs) = match answer {
            JobResponse::Status {
                jobs,
                workers,
                proofs,
            } => (jobs, workers, proofs),
            JobResponse::Rejected { reason } => bail!("the validator refused: {reason}"),
            _ => bail!("unexpected answer"),
        };
        let mut out = std::io::stdout().lock();
        if args.json {
            let json = serde_json::json!({
                "jobs": jobs.iter().map(|j| serde_json::json!({
                    "job_id": hex::encode(j.job_id),
                    "state": j.state,
                    "total": j.total,
                    "done": j.done,
                    "sampled": j.sampled,
                    "verify_fuel": j.verify_fuel,
                    "total_fuel": j.total_fuel,
                    "verification_cost": cost(j.verify_fuel, j.total_fuel),
                    "revoked": j.revoked,
                    "tasks": j.tasks,
                })).collect::<Vec<_>>(),
                "workers": workers,
                "proofs": proofs,
                "chain": chain,
            });
            writeln!(out, "{json}")?;
            return Ok(0);
        }
        if let Some(c) = &chain {
            print_chain(&mut out, c)?;
        }
        writeln!(out, "workers: {}", workers.len())?;
        for w in &workers {
            let mut line = format!(
                "  {} slots {} running {} reputation {} verified {} timeouts {}",
                w.peer, w.capacity, w.running, w.reputation, w.verified, w.timeouts
            );
            if !w.connected {
                line += " (gone)";
            }
            if let Some(proof) = &w.blacklisted {
                line += &format!(" BLACKLISTED by proof {proof}");
            }
            writeln!(out, "{line}")?;
        }
        if !proofs.is_empty() {
            writeln!(out, "fraud proofs: {}", proofs.len())?;
            for p in &proofs {
                match &p.refused_because {
                    None => writeln!(out, "  {} against {} (proven)", p.id, p.worker)?,
                    Some(why) => writeln!(
                        out,
                        "  {} against {} by {}: REFUSED, {why}",
                        p.id, p.worker, p.validator
                    )?,
                }
            }
        }
        writeln!(out, "jobs: {}", jobs.len())?;
        for j in &jobs {
            let mut line = format!(
                "  {} {} {}/{} done, {} sampled (verification cost {:.1} %)",
                hex::encode(j.job_id),
                j.state,
                j.done,
                j.total,
                j.sampled,
                100.0 * cost(j.verify_fuel, j.total_fuel)
            );
            if j.revoked > 0 {
                line += &format!(", {} results withdrawn (fraud) and re-run", j.revoked);
            }
            writeln!(out, "{line}")?;
            for t in &j.tasks {
                let mut line = format!("    task {} {}", t.index, t.state);
                if let Some(w) = &t.worker {
                    line += &format!(" worker {w}");
                }
                if let Some(v) = &t.verdict {
                    line += &format!(" verdict {v}");
                }
                if let Some(why) = &t.waiting_for {
                    line += &format!(" (waiting for: {why})");
                }
                line += &format!(" attempts {}", t.attempts);
                writeln!(out, "{line}")?;
            }
        }
        Ok(0)
    })
}

/// Fuel spent re-executing over fuel of all results.
fn cost(verify_fuel: u64, total_fuel: u64) -> f64 {
    if total_fuel == 0 {
        0.0
    } else {
        verify_fuel as f64 / total_fuel as f64
    }
}

/// The chain part of `status`, as JSON (printed as is with --json, as text otherwise).
async fn chain_status(
    config: &crate::epoch::ChainConfig,
    signer: smartnodes_contracts::PrivateKeySigner,
    session: &UserSession,
) -> Result<serde_json::Value> {
    use smartnodes_contracts::{Address, Chain, U256};
    use std::collections::BTreeMap;
    let chain = Chain::connect(&config.endpoint, signer, config.deployment)
        .await
        .context("connecting to the contracts")?;
    let info = chain.round_info().await?;
    let contents = crate::commands::chain::executed_contents(&chain, session).await?;
    let last = match info.epoch {
        0 | 1 => None,
        e => {
            let r = chain.epoch_record(e - 1).await?;
            Some(serde_json::json!({
                "epoch": e - 1,
                "summary_hash": r.summary_hash.to_string(),
                "votes": r.votes,
                "emission": r.emission.to_string(),
                "worker_reward_total": r.worker_reward_total.to_string(),
                "claimed": r.claimed.to_string(),
                "executed_at": r.executed_at,
            }))
        }
    };
    // Claimable: leaves of executed epochs not claimed yet.
    let mut claimable: BTreeMap<Address, U256> = BTreeMap::new();
    for c in &contents {
        for (a, amount) in &c.rewards {
            let (a, amount) = (Address::from(*a), U256::from_be_bytes(*amount));
            let slot = claimable.entry(a).or_default();
            if !chain.reward_claimed(a, amount, c.epoch).await? {
                *slot += amount;
            }
        }
    }
    let mut nodes = Vec::new();
    for v in chain.validators().await? {
        nodes.push(serde_json::json!({
            "role": "validator",
            "address": v.to_string(),
            "balance": chain.token_balance(v).await?.to_string(),
            "claimable": "0",
        }));
    }
    for (a, amount) in &claimable {
        nodes.push(serde_json::json!({
            "role": "worker",
            "address": a.to_string(),
            "balance": chain.token_balance(*a).await?.to_string(),
            "claimable": amount.to_string(),
        }));
    }
    Ok(serde_json::json!({
        "backend": chain.backend_name(),
        "core": config.deployment.core.to_string(),
        "current_epoch": info.epoch,
        "proposals_open": info.open,
        "proposals_open_at": info.proposals_open_at,
        "last_executed": last,
        "nodes": nodes,
    }))
}

fn print_chain(out: &mut impl Write, c: &serde_json::Value) -> Result<()> {
    let s = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    writeln!(
        out,
        "chain: {} core {} epoch {} (proposals {})",
        s(&c["backend"]),
        s(&c["core"]),
        c["current_epoch"],
        if c["proposals_open"] == true {
            "open"
        } else {
            "not open yet"
        }
    )?;
    match &c["last_executed"] {
        serde_json::Value::Null => writeln!(out, "  no epoch executed yet")?,
        l => writeln!(
            out,
            "  last executed: epoch {} summary {} votes {} minted {} workers {} claimed {} (SNO wei)",
            l["epoch"],
            s(&l["summary_hash"]),
            l["votes"],
            s(&l["emission"]),
            s(&l["worker_reward_total"]),
            s(&l["claimed"])
        )?,
    }
    for n in c["nodes"].as_array().into_iter().flatten() {
        writeln!(
            out,
            "  {} {} balance {} claimable {} (SNO wei)",
            s(&n["role"]),
            s(&n["address"]),
            s(&n["balance"]),
            s(&n["claimable"])
        )?;
    }
    Ok(())
}
