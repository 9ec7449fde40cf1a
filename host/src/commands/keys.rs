//! `smartnodes keys`: a node's keys (`--data-dir`, created on first use), or a user's key
//! file (`keys new`, `keys show`). Both are the same format: one secp256k1 secret in hex,
//! which is the peer id (libp2p) and the Ethereum account (chain) at once.

use crate::identity::Identity;
use anyhow::{Context, Result};
use std::io::Write;
use std::path::PathBuf;

/// Where `keys new` writes and `keys show` reads when no file is given.
pub const DEFAULT_USER_KEY: &str = "user.key";

/// Arguments of `smartnodes keys`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct KeysArgs {
    /// A user's key file instead of a node's data dir.
    #[command(subcommand)]
    pub command: Option<KeysCommand>,
    /// The node's data dir (its key is DIR/keys/eth.key, created on first use).
    #[arg(long, value_name = "DIR", required = true)]
    pub data_dir: Option<PathBuf>,
    /// Print JSON (`peer_id`, `eth_address`).
    #[arg(long)]
    pub json: bool,
}

/// `smartnodes keys new|show`.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Create a user's key file (mode 0600; an existing file is never replaced) and show it.
    ///
    /// The key owns the jobs you submit with `submit --key-file` (only it may read their
    /// status and results again) and is your chain account when you pay for them.
    New {
        /// The file to create.
        #[arg(long, value_name = "FILE", default_value = DEFAULT_USER_KEY)]
        out: PathBuf,
        /// Print JSON (`peer_id`, `eth_address`, `key_file`).
        #[arg(long)]
        json: bool,
    },
    /// Show a key file's peer id and Ethereum address.
    Show {
        /// The key file.
        #[arg(long, value_name = "FILE", default_value = DEFAULT_USER_KEY)]
        key_file: PathBuf,
        /// Print JSON (`peer_id`, `eth_address`, `key_file`).
        #[arg(long)]
        json: bool,
    },
}

/// Runs the command.
pub fn run(args: KeysArgs) -> Result<u8> {
    let (identity, file, json) = match args.command {
        Some(KeysCommand::New { out, json }) => (
            Identity::create_file(&out).context("creating the key")?,
            Some(out),
            json,
        ),
        Some(KeysCommand::Show { key_file, json }) => {
            (user_identity(Some(&key_file))?, Some(key_file), json)
        }
        None => {
            let dir = args
                .data_dir
                .context("give --data-dir, or `keys new`/`keys show`")?;
            (
                Identity::load_or_create(&dir).context("loading the keys")?,
                None,
                args.json,
            )
        }
    };
    let mut out = std::io::stdout().lock();
    if json {
        let mut value = serde_json::json!({
            "peer_id": identity.peer_id().to_string(),
            "eth_address": identity.eth_address_hex(),
        });
        if let Some(file) = &file {
            value["key_file"] = file.display().to_string().into();
        }
        writeln!(out, "{value}")?;
    } else {
        writeln!(out, "peer id     {}", identity.peer_id())?;
        writeln!(out, "eth address {}", identity.eth_address_hex())?;
        if let Some(file) = &file {
            writeln!(out, "key file    {}", file.display())?;
        }
    }
    Ok(0)
}

/// The identity a client command acts as: the key file given, or a fresh key that lives
/// only for this command (then nothing it submits can be read back after it exits).
/// A key file is read as the chain's `--key-file` is (64 hex digits, `0x` optional).
pub fn user_identity(key_file: Option<&std::path::Path>) -> Result<Identity> {
    match key_file {
        Some(path) => Ok(Identity::from_signer(&super::chain::read_key(path)?)),
        None => Ok(Identity::ephemeral()),
    }
}
