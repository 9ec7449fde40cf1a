//! `smartnodes results`: a job's outputs and receipts again, for its owner, after the
//! `submit` that sent it has exited (files as `submit` writes them).

use super::submit::Fetch;
use crate::roles::user::UserSession;
use anyhow::{Context, Result};
use libp2p::Multiaddr;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `smartnodes results`.
#[derive(Debug, clap::Args)]
pub struct ResultsArgs {
    /// The job (64 hex digits, as `submit` printed it).
    pub job_id: String,
    /// The key the job was submitted with (`submit --key-file`): only its owner may read a
    /// job's results.
    #[arg(long, value_name = "FILE")]
    pub key_file: PathBuf,
    /// The validator that ran the job; `/p2p/<peer id>` is optional.
    #[arg(long, value_name = "MULTIADDR")]
    pub validator: Multiaddr,
    /// Where to write the outputs, receipts and summary.json (default: the current
    /// directory).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Give up after this many seconds without a new result (a job still running is waited
    /// for, as `submit` waits).
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub timeout: u64,
}

/// Runs the command: 0 when every task completed, 1 when some ended with another verdict.
pub fn run(args: ResultsArgs) -> Result<u8> {
    let job_id = super::evidence::parse_hash(&args.job_id).context("the job id")?;
    let identity = super::keys::user_identity(Some(&args.key_file))?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let session = UserSession::connect_as(args.validator.clone(), identity)
            .await
            .with_context(|| format!("connecting to {}", args.validator))?;
        let spec = session.spec(job_id).await.context("asking for the job")?;
        eprintln!("job {}: {} tasks", hex::encode(job_id), spec.inputs.len());
        let code = Fetch {
            job_id,
            module: spec.module,
            inputs: &spec.inputs,
            limits: spec.limits,
            out: &args.out,
            timeout: Duration::from_secs(args.timeout),
            json: args.json,
        }
        .run(&session)
        .await;
        session.close().await;
        code
    })
}
