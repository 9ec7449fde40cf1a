//! # smartnodes (the node and the CLI)
//!
//! The binary `smartnodes` is glue: it parses arguments ([`cli`]), sets up logging and
//! calls the command modules here. Each command is a library function so that tests and
//! other commands (the devnet) can call it without spawning a process.
//!
//! ## Layout
//! - [`cli`]: the command-line interface (clap);
//! - [`commands::run`]: `smartnodes run`, one task in the local sandbox.

pub mod cli;
pub mod commands;
