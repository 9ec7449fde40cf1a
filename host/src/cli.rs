//! The command line: `smartnodes <command> [options]`.

use clap::{Parser, Subcommand};

/// Smartnodes: rent out compute, or buy it without trusting the seller.
///
/// Tasks are WebAssembly (WASI preview1 commands) that read their input on stdin and write
/// their output on stdout. They run in a deterministic, metered sandbox: the same module,
/// input and limits give the same output and the same fuel on every machine.
#[derive(Debug, Parser)]
#[command(name = "smartnodes", version, propagate_version = true)]
pub struct Cli {
    /// More logging (-v info, -vv debug, -vvv trace). Quiet by default.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The whole network on one machine: validators, workers (one cheating), jobs from
    /// the examples, a report.
    ///
    /// Starts the nodes (in this process, or each as a `smartnodes node` process with
    /// --processes), submits jobs round-robin over the validators, checks every output
    /// against a local run, writes the merged word counts and the stitched Mandelbrot image
    /// to the data dir and prints a report (per job, node and epoch). Exit status: 0 every
    /// job finished with correct outputs and every cheater was caught, 1 otherwise, 2 an
    /// error. Ctrl-C stops every node.
    Devnet(crate::commands::devnet::DevnetArgs),
    /// Run one task locally in the deterministic sandbox, like `wasmtime run` but metered.
    ///
    /// Writes the task's output to stdout (or, with --json, one JSON object describing the
    /// result). Exit status: 0 completed, 1 any other verdict (out of fuel, trapped, ...),
    /// 2 a usage or host error. The task's log (stderr) is copied to stderr.
    Run(crate::commands::run::RunArgs),
    /// Create a task project (Rust, C, Zig or AssemblyScript) in the folder NAME.
    ///
    /// Writes the language's template (a task that reads stdin and writes
    /// `<lines> <words> <bytes>` on stdout) and prints the two commands that build it to wasm
    /// and run it with `smartnodes run`. The Rust template uses the `smartnodes-guest` SDK;
    /// the others are plain WASI programs.
    New(crate::commands::new::NewArgs),
    /// Run a validator or a worker until Ctrl-C.
    ///
    /// Prints `listening on <multiaddr>` on stdout for each address it listens on.
    Node(crate::commands::node::NodeArgs),
    /// Submit a job (one task per --input) to a validator and wait for every result.
    ///
    /// The validator is given (--validator) or found through any peer (--bootstrap).
    ///
    /// Each output is checked against its worker's signed receipt and written to
    /// DIR/INDEX.out; DIR/summary.json lists each task's verdict, output hash, fuel and
    /// worker. Exit status: 0 all tasks completed, 1 some ended otherwise, 2 an error.
    Submit(crate::commands::submit::SubmitArgs),
    /// Show a validator's jobs, their tasks and workers.
    ///
    /// Jobs are their owners': a job's status (and its place in the list) is shown only to
    /// the key that submitted it (--key-file); workers and fraud proofs are public.
    Status(crate::commands::status::StatusArgs),
    /// Fetch a job's outputs and receipts again, as its owner (the key it was submitted
    /// with), after `submit` exited.
    ///
    /// Writes the files `submit` writes (DIR/INDEX.out, DIR/INDEX.receipt, the evidence of
    /// withdrawn results, DIR/summary.json), each output checked against its worker's
    /// signed receipt; results withdrawn after a fraud proof are the re-runs'. Exit status:
    /// 0 all tasks completed, 1 some ended otherwise, 2 an error (a key that does not own
    /// the job is refused).
    Results(crate::commands::results::ResultsArgs),
    /// Show a node's peer id and Ethereum address (creating its keys on first use), or
    /// create and show a user's key file (`keys new`, `keys show`).
    ///
    /// A user's key owns the jobs it submits (`submit --key-file`): only it may read their
    /// status and results again (`status`, `results`).
    Keys(crate::commands::keys::KeysArgs),
    /// Deploy the contracts on a JSON-RPC chain, or fund accounts (devnets and tests).
    Chain(crate::commands::chain::ChainCommand),
    /// Claim this worker's unclaimed rewards of every executed epoch.
    ///
    /// Fetches the executed summaries from a validator, checks each against the hash the
    /// chain executed, and claims with the Merkle proof of this account's leaf. An epoch's
    /// rewards are claimable once they vest, `vesting_epochs` executions later (until then
    /// a fraud proof against the worker forfeits them); later ones are listed as pending.
    /// Workers claim automatically unless started with --no-claim.
    Claim(crate::commands::chain::ClaimArgs),
    /// Why cheating does not pay: each way to cheat, its gain and its expected loss.
    ///
    /// For wrong outputs (1 %, 10 %, 100 % of tasks), fuel inflated x2 and x50, lazy and
    /// copying workers, and a validator majority bought at the current stake: the most the
    /// strategy gains, the probability it is caught at the default sample rate, and the
    /// expected loss (stake slashed, unvested rewards forfeited). From the default parameters,
    /// or a deployment's with --rpc-url and --deployment.
    Economics(crate::commands::economics::EconomicsArgs),
    /// Re-check an evidence bundle (or a receipt) on this machine, with no network.
    ///
    /// Re-runs the task in the local sandbox and says whether the worker's signed receipt
    /// was a lie: worker_lied (the bundle's claim holds), worker_honest, prover_wrong, or
    /// cannot_check and why (e.g. the prover ran another engine). A receipt false by its
    /// form (fuel above the task's limit, or signed for an engine other than the network's)
    /// is worker_lied with nothing run (`form_fault` says why). With --receipt,
    /// --module and --input it checks a receipt alone (worker_honest when it holds).
    /// Exit status: 0 the claim holds, 1 it does not or cannot be checked here, 2 a bad
    /// bundle (truncated, oversized, corrupt) or an error.
    Verify(crate::commands::verify::VerifyArgs),
    /// Fetch an evidence bundle by its hash from a validator and write it to a file.
    ///
    /// The hash is a blacklist entry's evidence (on chain, in `smartnodes status`, in a
    /// devnet report). The bundle is checked against the hash before it is written; re-check
    /// it with `smartnodes verify FILE`.
    Evidence(crate::commands::evidence::EvidenceArgs),
    /// List the network's validators and workers, as the DHT knows them.
    ///
    /// Joins through --bootstrap (any validator or worker), looks up the providers of each
    /// role and their signed role records, and prints per peer: peer id, role, capacity,
    /// addresses, whether it is registered on the contract (with --rpc-url and
    /// --deployment; `-` otherwise) and when it last signed its record. Exit status: 0
    /// some peer found, 1 none, 2 an error (no bootstrap peer answered).
    Peers(crate::commands::peers::PeersArgs),
}
