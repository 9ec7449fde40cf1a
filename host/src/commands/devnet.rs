//! `smartnodes devnet`: the whole network on one machine, in one command. The work is in
//! [`crate::devnet`]; this is the command line, the progress display and the printing.

use super::node::ShutdownSignal;
use crate::devnet::{
    ChainChoice, Devnet, DevnetConfig, LiveStatus, NodeInfo, NodeMode, Observer, DEFAULT_CHEAT,
};
use anyhow::{Context, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// Arguments of `smartnodes devnet`.
#[derive(Debug, clap::Args)]
pub struct DevnetArgs {
    /// Validators.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub validators: usize,
    /// Workers (the cheaters are among them).
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub workers: usize,
    /// Workers that cheat on purpose (see --cheat); the validators must catch them.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub cheaters: usize,
    /// How the cheaters cheat: MODE or MODE:RATE, MODE one of wrong-output, lazy, fuel, copy,
    /// engine, overflow, inflate.
    #[arg(long, value_name = "MODE[:RATE]", default_value = DEFAULT_CHEAT)]
    pub cheat: crate::roles::cheat::Cheat,
    /// Jobs, cycling through wordcount (of a Shakespeare corpus), mandelbrot (tiles of one
    /// image), primes and sha256-chain.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub jobs: usize,
    /// Tasks per job.
    #[arg(long, value_name = "N", default_value_t = crate::devnet::jobs::TASKS_PER_JOB)]
    pub tasks_per_job: usize,
    /// Epoch length on the chain, seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub epoch_secs: u64,
    /// The chain: `embedded` (an EVM in this process, shared by the nodes; with
    /// --processes there is no chain) or an Ethereum JSON-RPC URL such as anvil's
    /// http://127.0.0.1:8545 (then every node is its own process, and the devnet deploys
    /// the contracts there and funds the nodes from --key-file).
    #[arg(long, value_name = "embedded|RPC_URL", default_value = "embedded")]
    pub chain: String,
    /// With --chain RPC_URL: the deployer's private key file (it needs ether there; it is
    /// the treasury). Default: anvil's first dev account, funded on every fresh anvil.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Run every node as its own `smartnodes node` process (127.0.0.1, OS-chosen ports),
    /// exactly as on separate machines. Implied by an RPC URL for --chain.
    #[arg(long)]
    pub processes: bool,
    /// Where the outputs (and with --processes the nodes' data) go. Default: a new
    /// temporary directory, kept and printed.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Keep the network up after the jobs, until Ctrl-C, and print how to use it.
    #[arg(long)]
    pub keep_running: bool,
    /// Print the report as one JSON object on stdout (progress: plain lines on stderr).
    #[arg(long)]
    pub json: bool,
    /// No progress display (errors and the report only).
    #[arg(short, long)]
    pub quiet: bool,
    /// Give up on a job after this many seconds without a new result.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub timeout: u64,
    /// The validators' check budget: the most of a job's fuel re-executed beyond the 5 %
    /// sample rate to check new workers, in percent (`smartnodes node --check-budget`,
    /// whose default is 20). The devnet checks every result of a new worker by default
    /// (100), so that its cheater is caught in every run; `--check-budget 20` runs it as a
    /// node would, where a newcomer cheater in a crowd is caught with a probability
    /// (ARCHITECTURE.md, "host: verification").
    #[arg(long, value_name = "PERCENT", default_value_t = 100.0)]
    pub check_budget: f64,
}

/// Runs the devnet. Exit status: 0 every job finished with correct outputs and every
/// cheater was caught (with a chain: and two epochs executed); 1 the report lists what
/// went wrong; 2 an error; 130 interrupted.
pub fn run(args: DevnetArgs) -> Result<u8> {
    let data_dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => tempfile::Builder::new()
            .prefix("smartnodes-devnet-")
            .tempdir()
            .context("creating a temporary directory")?
            .keep(),
    };
    let chain = match args.chain.as_str() {
        "embedded" => ChainChoice::Embedded,
        url => {
            anyhow::ensure!(
                url.starts_with("http://") || url.starts_with("https://"),
                "--chain is `embedded` or an http(s) JSON-RPC URL, not {url:?}"
            );
            let key = match &args.key_file {
                Some(path) => crate::commands::chain::read_key(path)?,
                None => crate::devnet::rpc::ANVIL_DEV_KEY
                    .parse()
                    .context("anvil's dev key")?,
            };
            ChainChoice::Rpc(url.to_string(), key)
        }
    };
    let mode = if args.processes || matches!(chain, ChainChoice::Rpc(..)) {
        NodeMode::Processes {
            binary: std::env::current_exe().context("finding the smartnodes binary")?,
        }
    } else {
        NodeMode::InProcess
    };
    let mut config = DevnetConfig::new(data_dir.clone());
    config.validators = args.validators;
    config.workers = args.workers;
    config.cheaters = args.cheaters;
    config.cheat = args.cheat;
    config.jobs = args.jobs;
    config.tasks_per_job = args.tasks_per_job;
    config.epoch_secs = args.epoch_secs;
    config.chain = chain;
    config.mode = mode;
    config.job_timeout = Duration::from_secs(args.timeout);
    anyhow::ensure!(
        (0.0..=100.0).contains(&args.check_budget),
        "--check-budget is a percentage between 0 and 100"
    );
    config.check_budget_ppm = (args.check_budget * 10_000.0).round() as u32;

    // --json: no bars; plain lines on stderr (stdout is the report alone).
    let ui = Ui::new(args.quiet, args.json);
    if !args.quiet {
        eprintln!("devnet data dir: {}", data_dir.display());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let mut shutdown = ShutdownSignal::install().context("installing signal handlers")?;
        // Dropping an unfinished start stops whatever it started (children are killed).
        let mut devnet = tokio::select! {
            d = Devnet::start(config, &ui) => d.context("starting the devnet")?,
            _ = shutdown.wait() => {
                eprintln!("interrupted");
                return Ok(130);
            }
        };
        let report = tokio::select! {
            r = devnet.run(&ui) => Some(r),
            _ = shutdown.wait() => None,
        };
        ui.finish();
        let report = match report {
            None => {
                eprintln!("interrupted: stopping every node");
                devnet.stop().await;
                return Ok(130);
            }
            Some(Err(e)) => {
                devnet.stop().await;
                return Err(e).context("running the devnet");
            }
            Some(Ok(r)) => r,
        };
        {
            let mut out = std::io::stdout().lock();
            if args.json {
                writeln!(out, "{}", report.to_json())?;
            } else {
                write!(out, "{}", report.to_table())?;
            }
            out.flush()?;
        }
        let code = if report.success() { 0 } else { 1 };
        if args.keep_running {
            let mut help = String::from(
                "\nthe network keeps running (Ctrl-C to stop). From another terminal:\n",
            );
            for v in devnet.validators() {
                help.push_str(&format!(
                    "  smartnodes submit TASK.wasm --input FILE --validator {}\n",
                    v.addr
                ));
            }
            if let Some(v) = devnet.validators().next() {
                help.push_str(&format!("  smartnodes status --validator {}\n", v.addr));
            }
            if args.json {
                eprint!("{help}");
            } else {
                print!("{help}");
                std::io::stdout().flush()?;
            }
            shutdown.wait().await;
            eprintln!("stopping every node");
        }
        devnet.stop().await;
        Ok(code)
    })
}

/// The progress display: bars on a terminal, plain lines otherwise, nothing when quiet.
enum Ui {
    Quiet,
    Plain {
        last_live: Mutex<(String, std::time::Instant)>,
    },
    Bars {
        multi: MultiProgress,
        live: ProgressBar,
        bars: Mutex<HashMap<usize, ProgressBar>>,
    },
}

impl Ui {
    fn new(quiet: bool, plain: bool) -> Ui {
        if quiet {
            Ui::Quiet
        } else if !plain && std::io::stderr().is_terminal() {
            let multi = MultiProgress::new();
            let live = multi.add(ProgressBar::new_spinner());
            live.set_style(
                ProgressStyle::with_template("{spinner} {msg}").expect("a valid template"),
            );
            live.enable_steady_tick(Duration::from_millis(120));
            Ui::Bars {
                multi,
                live,
                bars: Mutex::default(),
            }
        } else {
            Ui::Plain {
                last_live: Mutex::new((String::new(), std::time::Instant::now())),
            }
        }
    }

    fn line(&self, s: &str) {
        match self {
            Ui::Quiet => {}
            Ui::Plain { .. } => eprintln!("{s}"),
            Ui::Bars { multi, .. } => {
                let _ = multi.println(s);
            }
        }
    }

    fn finish(&self) {
        if let Ui::Bars { live, bars, .. } = self {
            live.finish_and_clear();
            for b in bars.lock().expect("poisoned").values() {
                if !b.is_finished() {
                    b.abandon();
                }
            }
        }
    }
}

fn live_text(s: &LiveStatus) -> String {
    let chain = match (s.epochs_executed, s.sno_minted) {
        (Some(e), Some(m)) => format!(
            "epochs executed {e} | SNO minted {:.4}",
            crate::devnet::chain::sno(m)
        ),
        _ => "epochs: no chain".to_string(),
    };
    format!(
        "tasks {}/{} | frauds caught {} | {chain}",
        s.tasks_done, s.tasks_total, s.frauds
    )
}

impl Observer for Ui {
    fn note(&self, line: &str) {
        self.line(line);
    }

    fn node_started(&self, n: &NodeInfo) {
        self.line(&format!(
            "{} ({}{}){} listening on {}",
            n.name,
            n.role,
            if n.cheater { ", CHEATS on purpose" } else { "" },
            n.pid.map(|p| format!(" pid {p}")).unwrap_or_default(),
            n.addr
        ));
    }

    fn job_submitted(&self, job: usize, label: &str, tasks: usize) {
        match self {
            Ui::Quiet => {}
            Ui::Plain { .. } => eprintln!("job {label}: {tasks} tasks submitted"),
            Ui::Bars {
                multi, live, bars, ..
            } => {
                let bar = multi.insert_before(live, ProgressBar::new(tasks as u64));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix:<16} [{bar:40.cyan/blue}] {pos:>4}/{len:<4} {elapsed:>4} {msg}",
                    )
                    .expect("a valid template")
                    .progress_chars("=> "),
                );
                bar.set_prefix(label.to_string());
                bars.lock().expect("poisoned").insert(job, bar);
            }
        }
    }

    fn task_done(&self, job: usize, done: usize) {
        if let Ui::Bars { bars, .. } = self {
            if let Some(b) = bars.lock().expect("poisoned").get(&job) {
                b.set_position(done as u64);
            }
        }
    }

    fn job_finished(&self, job: usize, ok: bool) {
        let verdict = if ok {
            "done, outputs correct"
        } else {
            "FAILED"
        };
        match self {
            Ui::Quiet => {}
            Ui::Plain { .. } => eprintln!("job #{job}: {verdict}"),
            Ui::Bars { bars, .. } => {
                if let Some(b) = bars.lock().expect("poisoned").get(&job) {
                    b.finish_with_message(verdict);
                }
            }
        }
    }

    fn live(&self, status: &LiveStatus) {
        let text = live_text(status);
        match self {
            Ui::Quiet => {}
            Ui::Bars { live, .. } => live.set_message(text),
            Ui::Plain { last_live } => {
                let mut last = last_live.lock().expect("poisoned");
                // A line when something changed, at most every 2 s.
                if last.0 != text && last.1.elapsed() >= Duration::from_secs(2) {
                    eprintln!("{text}");
                    *last = (text, std::time::Instant::now());
                }
            }
        }
    }
}
