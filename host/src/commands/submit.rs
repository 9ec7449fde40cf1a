//! `smartnodes submit`: sends a job to a validator, prints progress as tasks complete,
//! writes each output to `DIR/<index>.out`, its receipt to `DIR/<index>.receipt`, the
//! evidence bundle of every withdrawn result to `DIR/evidence-<id>.bundle` and a summary to
//! `DIR/summary.json`. A result the validator withdraws while the job runs (its worker was
//! proven a fraud) is replaced by the re-run's (the files rewritten) and listed under
//! `replaced` in the summary.

use crate::evidence::ReceiptFile;
use crate::net::proto::{Hash, JobLimits, TaskSpec};
use crate::roles::user::{JobRequestSpec, UserSession};
use anyhow::{Context, Result};
use libp2p::Multiaddr;
use smartnodes_runtime::sha256;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `smartnodes submit`.
#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    /// The task module: binary wasm, or WebAssembly text (.wat).
    pub module: PathBuf,
    /// One task's input (repeatable: one task per input).
    #[arg(long, value_name = "FILE", required = true)]
    pub input: Vec<PathBuf>,
    /// The validator; `/p2p/<peer id>` is optional.
    #[arg(long, value_name = "MULTIADDR", required_unless_present = "bootstrap")]
    pub validator: Option<Multiaddr>,
    /// Instead of --validator: any peer of the network (repeatable); a validator is found
    /// through it (Kademlia) and the job sent to the one that answers fastest.
    #[arg(long, value_name = "MULTIADDR", conflicts_with = "validator")]
    pub bootstrap: Vec<Multiaddr>,
    /// Fuel per task.
    #[arg(long, value_name = "N", default_value_t = JobLimits::default().fuel)]
    pub fuel: u64,
    /// Where to write the outputs and summary.json (default: the current directory).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    /// Ask the validator to re-execute at least this share of the results, in percent
    /// (default: the validator's own rate, 5 % unless it says otherwise).
    #[arg(long, value_name = "PERCENT")]
    pub sample_rate: Option<f64>,
    /// Give up after this many seconds without a new result.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub timeout: u64,
    /// Submit as this user (a file from `smartnodes keys new`): the job is owned by its key,
    /// so `status` and `results` with the same file can read it again later. Without it, a
    /// fresh key that lives only as long as this command.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
}

/// Runs the command: 0 when every task completed, 1 when some ended with another verdict.
pub fn run(args: SubmitArgs) -> Result<u8> {
    let module = super::run::read_module(&args.module)?;
    let inputs = args
        .input
        .iter()
        .map(|p| std::fs::read(p).with_context(|| format!("reading the input {}", p.display())))
        .collect::<Result<Vec<_>>>()?;
    anyhow::ensure!(args.fuel > 0, "--fuel must be at least 1");
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let sample_ppm = match args.sample_rate {
        None => 0,
        Some(p) if (0.0..=100.0).contains(&p) => (p * 10_000.0).round() as u32,
        Some(p) => anyhow::bail!("--sample-rate is a percentage between 0 and 100, not {p}"),
    };
    let job = JobRequestSpec {
        sample_ppm,
        module,
        inputs,
        limits: JobLimits {
            fuel: args.fuel,
            ..JobLimits::default()
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let identity = super::keys::user_identity(args.key_file.as_deref())?;
    runtime.block_on(async move {
        let session = match &args.validator {
            Some(validator) => UserSession::connect_as(validator.clone(), identity)
                .await
                .with_context(|| format!("connecting to {validator}"))?,
            None => {
                UserSession::discover_as(args.bootstrap.clone(), Duration::from_secs(30), identity)
                    .await
                    .context("finding a validator")?
            }
        };
        let total = job.inputs.len();
        let job_id = session.submit(&job).await.context("submitting the job")?;
        eprintln!("job {} submitted: {total} tasks", hex::encode(job_id));
        let module_hash = sha256(&job.module);
        let input_hashes: Vec<_> = job.inputs.iter().map(|i| sha256(i)).collect();
        let fetched = Fetch {
            job_id,
            module: module_hash,
            inputs: &input_hashes,
            limits: job.limits,
            out: &args.out,
            timeout: Duration::from_secs(args.timeout),
            json: args.json,
        };
        let code = fetched.run(&session).await;
        session.close().await;
        code
    })
}

/// Waits for a job's results and files them (shared by `submit` and `results`): each
/// output in `DIR/<index>.out`, its receipt in `DIR/<index>.receipt`, the evidence of every
/// withdrawn result, `DIR/summary.json`, and the summary on stdout.
pub(crate) struct Fetch<'a> {
    pub(crate) job_id: Hash,
    pub(crate) module: Hash,
    pub(crate) inputs: &'a [Hash],
    pub(crate) limits: JobLimits,
    pub(crate) out: &'a std::path::Path,
    pub(crate) timeout: Duration,
    pub(crate) json: bool,
}

impl Fetch<'_> {
    /// 0 when every task completed, 1 when some ended with another verdict.
    pub(crate) async fn run(&self, session: &UserSession) -> Result<u8> {
        let job_id = self.job_id;
        let total = self.inputs.len();
        let out = self.out;
        let mut write_error = None;
        // Evidence (issue 21): what each receipt commits to, and who delivered results.
        let mut workers = std::collections::HashSet::new();
        let report = session
            .wait(job_id, total as u32, self.timeout, |t, done| {
                let path = out.join(format!("{}.out", t.index));
                if let Err(e) = std::fs::write(&path, &t.output) {
                    write_error.get_or_insert(format!("{}: {e}", path.display()));
                }
                workers.insert(t.worker.to_string());
                let receipt = ReceiptFile {
                    task: TaskSpec {
                        job_id,
                        index: t.index,
                        module: self.module,
                        input: self.inputs[t.index as usize],
                        limits: self.limits,
                    },
                    receipt: t.receipt.clone(),
                };
                let path = out.join(format!("{}.receipt", t.index));
                if let Err(e) = std::fs::write(&path, receipt.to_bytes()) {
                    write_error.get_or_insert(format!("{}: {e}", path.display()));
                }
                eprintln!(
                    "[{done}/{total}] task {} {} fuel {} by {}",
                    t.index,
                    t.verdict(),
                    t.receipt.body.fuel_used,
                    t.worker
                );
            })
            .await
            .context("waiting for the results")?;
        if let Some(e) = write_error {
            anyhow::bail!("writing an output: {e}");
        }
        let mut summary = report.to_json();
        let evidence = super::evidence::save_withdrawn(session, job_id, &workers, out).await;
        summary["evidence"] = serde_json::json!(evidence);
        let path = out.join("summary.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&summary)?)
            .with_context(|| format!("writing {}", path.display()))?;
        let all_completed = report.tasks.iter().all(|t| t.verdict() == "completed");
        let mut stdout = std::io::stdout().lock();
        if self.json {
            writeln!(stdout, "{summary}")?;
        } else {
            writeln!(
                stdout,
                "job {}: {} tasks, outputs in {}",
                hex::encode(job_id),
                report.tasks.len(),
                out.display()
            )?;
            for r in &report.replaced {
                writeln!(
                    stdout,
                    "task {} replaced: {} (worker {})",
                    r.index, r.reason, r.worker
                )?;
            }
        }
        Ok(if all_completed { 0 } else { 1 })
    }
}
