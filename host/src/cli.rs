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
    /// Run one task locally in the deterministic sandbox, like `wasmtime run` but metered.
    ///
    /// Writes the task's output to stdout (or, with --json, one JSON object describing the
    /// result). Exit status: 0 completed, 1 any other verdict (out of fuel, trapped, ...),
    /// 2 a usage or host error. The task's log (stderr) is copied to stderr.
    Run(crate::commands::run::RunArgs),
}
