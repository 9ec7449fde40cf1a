//! `smartnodes keys`: shows (creating on first use) a node's peer id and Ethereum address.

use crate::identity::Identity;
use anyhow::{Context, Result};
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `smartnodes keys`.
#[derive(Debug, clap::Args)]
pub struct KeysArgs {
    /// The node's data dir.
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command.
pub fn run(args: KeysArgs) -> Result<u8> {
    let identity = Identity::load_or_create(&args.data_dir).context("loading the keys")?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let json = serde_json::json!({
            "peer_id": identity.peer_id().to_string(),
            "eth_address": identity.eth_address_hex(),
        });
        writeln!(out, "{json}")?;
    } else {
        writeln!(out, "peer id     {}", identity.peer_id())?;
        writeln!(out, "eth address {}", identity.eth_address_hex())?;
    }
    Ok(0)
}
