//! The `smartnodes` binary: parses the command line, sets up logging, calls the library.

use clap::Parser;
use smartnodes::cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let result = match cli.command {
        Command::Devnet(args) => smartnodes::commands::devnet::run(args),
        Command::Run(args) => smartnodes::commands::run::run(args),
        Command::New(args) => smartnodes::commands::new::run(args),
        Command::Node(args) => smartnodes::commands::node::run(args),
        Command::Submit(args) => smartnodes::commands::submit::run(args),
        Command::Status(args) => smartnodes::commands::status::run(args),
        Command::Results(args) => smartnodes::commands::results::run(args),
        Command::Keys(args) => smartnodes::commands::keys::run(args),
        Command::Chain(args) => smartnodes::commands::chain::run(args),
        Command::Claim(args) => smartnodes::commands::chain::claim(args),
        Command::Economics(args) => smartnodes::commands::economics::run(args),
        Command::Verify(args) => smartnodes::commands::verify::run(args),
        Command::Evidence(args) => smartnodes::commands::evidence::run(args),
        Command::Peers(args) => smartnodes::commands::peers::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("smartnodes: error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::from(2)
        }
    }
}
