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
    /// One job (64 hex digits): lists its tasks too.
    pub job_id: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command.
pub fn run(args: StatusArgs) -> Result<u8> {
    let job = match &args.job_id {
        Some(hex_id) => {
            let bytes = hex::decode(hex_id).context("the job id is not hex")?;
            Some(
                <[u8; 32]>::try_from(bytes.as_slice())
                    .map_err(|_| anyhow::anyhow!("a job id has 32 bytes"))?,
            )
        }
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let session = UserSession::connect(args.validator.clone())
            .await
            .with_context(|| format!("connecting to {}", args.validator))?;
        let answer = session.status(job).await.context("asking for the status")?;
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
            });
            writeln!(out, "{json}")?;
            return Ok(0);
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
