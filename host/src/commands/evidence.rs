//! `smartnodes evidence HASH --from PEER --out FILE`: fetches an evidence bundle from a
//! validator, checks it against its hash and writes it (re-check it with
//! `smartnodes verify FILE`).

use crate::evidence::Bundle;
use crate::net::proto::{Hash, JobResponse};
use crate::roles::user::UserSession;
use anyhow::{Context, Result};
use libp2p::Multiaddr;
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

/// Arguments of `smartnodes evidence`.
#[derive(Debug, clap::Args)]
pub struct EvidenceArgs {
    /// The bundle's hash (64 hex digits): a blacklist entry's evidence, a fraud proof id.
    pub hash: String,
    /// The validator to fetch it from; `/p2p/<peer id>` is optional.
    #[arg(long, value_name = "MULTIADDR")]
    pub from: Multiaddr,
    /// Where to write the bundle.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Parses 64 hex digits.
pub fn parse_hash(s: &str) -> Result<Hash> {
    let bytes = hex::decode(s.trim()).context("the hash is not hex")?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| anyhow::anyhow!("a hash has 32 bytes"))
}

/// Writes `bundle` to `path` atomically (a temporary file beside it, then a rename).
pub fn write(path: &Path, bundle: &Bundle) -> Result<()> {
    let tmp = path.with_extension("bundle.tmp");
    std::fs::write(&tmp, bundle.to_bytes())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// The file name a bundle is saved under: `evidence-<id>.bundle`.
pub fn file_name(id: &Hash) -> String {
    format!("evidence-{}.bundle", hex::encode(id))
}

/// Saves the evidence bundle of every result of `job_id` the validator withdrew: for each
/// worker in `workers` (who delivered results of the job) that the validator blacklisted,
/// the bundle its blacklisting cites, as `DIR/evidence-<id>.bundle`. Failures are warnings
/// (the outputs are what the user came for). Returns the paths written.
pub async fn save_withdrawn(
    session: &UserSession,
    job_id: Hash,
    workers: &HashSet<String>,
    dir: &Path,
) -> Vec<PathBuf> {
    let (jobs, statuses) = match session.status(Some(job_id)).await {
        Ok(JobResponse::Status { jobs, workers, .. }) => (jobs, workers),
        Ok(_) | Err(_) => return Vec::new(),
    };
    if jobs.iter().all(|j| j.revoked == 0) {
        return Vec::new();
    }
    let mut paths = Vec::new();
    let ids: BTreeSet<&str> = statuses
        .iter()
        .filter(|w| workers.contains(&w.peer))
        .filter_map(|w| w.blacklisted.as_deref())
        .collect();
    for hex_id in ids {
        let saved = async {
            let id = parse_hash(hex_id)?;
            let bundle = session.evidence(id).await?;
            let path = dir.join(file_name(&id));
            write(&path, &bundle)?;
            anyhow::Ok(path)
        };
        match saved.await {
            Ok(path) => {
                eprintln!(
                    "results withdrawn (their worker was proven a fraud): evidence in {}",
                    path.display()
                );
                paths.push(path);
            }
            Err(e) => eprintln!("smartnodes: warning: saving evidence {hex_id}: {e:#}"),
        }
    }
    paths
}

/// Runs the command.
pub fn run(args: EvidenceArgs) -> Result<u8> {
    let id = parse_hash(&args.hash)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let bundle = runtime.block_on(async {
        let session = UserSession::connect(args.from.clone())
            .await
            .with_context(|| format!("connecting to {}", args.from))?;
        let bundle = session
            .evidence(id)
            .await
            .with_context(|| format!("fetching evidence {}", args.hash));
        session.close().await;
        bundle
    })?;
    write(&args.out, &bundle)?;
    eprintln!(
        "evidence {} written to {} ({} bytes); check it with `smartnodes verify {}`",
        hex::encode(id),
        args.out.display(),
        bundle.to_bytes().len(),
        args.out.display()
    );
    Ok(0)
}
