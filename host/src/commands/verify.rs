//! `smartnodes verify`: re-checks an evidence bundle (or a receipt with its module and
//! input) on this machine, with no network. The rules are in [`crate::evidence`]; this is
//! the shell: read the files (bounded), run the task in the local sandbox, print.

use crate::evidence::{self, Bundle, ReceiptFile, Report};
use crate::net::proto::{JobSpec, Observed, TaskSpec};
use anyhow::{Context, Result};
use smartnodes_runtime::{Allocator, Runtime, RuntimeConfig, TaskInput};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Arguments of `smartnodes verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The evidence bundle (from a validator with `smartnodes evidence`, beside the outputs
    /// of `smartnodes submit`, or in a devnet's data dir).
    #[arg(required_unless_present = "receipt", conflicts_with = "receipt")]
    pub bundle: Option<PathBuf>,
    /// Check a receipt instead (an `INDEX.receipt` file written by `smartnodes submit`);
    /// needs --module and --input.
    #[arg(long, value_name = "RECEIPT", requires_all = ["module", "input"])]
    pub receipt: Option<PathBuf>,
    /// The receipt's task module (binary wasm).
    #[arg(long, value_name = "FILE", requires = "receipt")]
    pub module: Option<PathBuf>,
    /// The receipt's task input.
    #[arg(long, value_name = "FILE", requires = "receipt")]
    pub input: Option<PathBuf>,
    /// Print one JSON object: claim, receipt_valid, worker_signature_valid, observed,
    /// claimed, verdict (worker_lied, worker_honest, prover_wrong, cannot_check), reason.
    #[arg(long)]
    pub json: bool,
}

/// Reads `path`, refusing it before reading when it is larger than `max` bytes.
fn read_bounded(path: &Path, max: u64, what: &str) -> Result<Vec<u8>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("opening {what} {}", path.display()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    anyhow::ensure!(
        len <= max,
        "{len} bytes is larger than the largest {what} ({max} bytes)"
    );
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {what} {}", path.display()))?;
    Ok(bytes)
}

/// Runs `task` in `runtime` (its seed is the network's: `sha256(job_id ‖ index)`).
pub fn run_task(
    runtime: &Runtime,
    task: &TaskSpec,
    module: &[u8],
    input: &[u8],
) -> Result<Observed, String> {
    let seed = JobSpec::seed(&task.job_id, task.index);
    let outcome = runtime
        .run(
            module,
            &TaskInput::new(input.to_vec()).with_seed(seed),
            &task.limits.to_runtime(),
        )
        .map_err(|e| format!("running the task: {e}"))?;
    Ok(Observed {
        verdict: outcome.verdict.code(),
        output_hash: outcome.output_hash,
        fuel_used: outcome.fuel_used,
        engine: runtime.fingerprint().0,
    })
}

/// The sandbox a validator re-executes with (one task at a time, so no pool).
fn runtime() -> Result<Runtime> {
    Runtime::new(RuntimeConfig {
        allocator: Allocator::OnDemand,
        ..RuntimeConfig::default()
    })
    .context("starting the sandbox")
}

/// Runs the command: 0 the claim holds (the bundle's worker lied; the receipt is true),
/// 1 it does not or cannot be checked here, 2 a bad bundle or an error.
pub fn run(args: VerifyArgs) -> Result<u8> {
    let report = match (&args.bundle, &args.receipt) {
        (Some(path), _) => {
            let bad = || format!("bad bundle {}", path.display());
            let bytes =
                read_bounded(path, evidence::MAX_BUNDLE, "evidence bundle").with_context(bad)?;
            let bundle = Bundle::from_bytes(&bytes).with_context(bad)?;
            let runtime = runtime()?;
            let engine = runtime.fingerprint().0;
            evidence::judge(&bundle, &engine, |t, m, i| run_task(&runtime, t, m, i))
                .map_err(anyhow::Error::msg)?
        }
        (None, Some(path)) => {
            let bad = || format!("bad receipt {}", path.display());
            let bytes =
                read_bounded(path, evidence::MAX_RECEIPT_FILE, "receipt file").with_context(bad)?;
            let file = ReceiptFile::from_bytes(&bytes).with_context(bad)?;
            let module_path = args.module.as_deref().context("--module is required")?;
            let input_path = args.input.as_deref().context("--input is required")?;
            let module = read_bounded(module_path, evidence::MAX_MODULE, "module")?;
            let input = read_bounded(input_path, crate::net::proto::limits::MAX_BLOB, "input")?;
            let runtime = runtime()?;
            let engine = runtime.fingerprint().0;
            evidence::judge_receipt(&file, &module, &input, &engine, |t, m, i| {
                run_task(&runtime, t, m, i)
            })
            .map_err(anyhow::Error::msg)?
            .context("the module and input are not the receipt's task")?
        }
        (None, None) => anyhow::bail!("give a bundle, or --receipt with --module and --input"),
    };
    print(&report, args.json)?;
    Ok(if report.holds { 0 } else { 1 })
}

fn print(report: &Report, json: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", report.to_json())?;
    } else {
        if let Some(id) = report.id {
            writeln!(out, "bundle {}", hex::encode(id))?;
        }
        writeln!(out, "{}", report.line())?;
    }
    out.flush().context("writing to stdout")
}
