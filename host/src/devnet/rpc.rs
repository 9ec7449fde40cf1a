//! `--chain RPC_URL`: the devnet deploys the contracts on an Ethereum JSON-RPC chain (anvil,
//! or any node where the deployer key has ether), funds every node (ether for gas, SNO for
//! validators' collateral), hands each `smartnodes node` process `--rpc-url` and
//! `--deployment`, and reads epochs and balances back from the chain.

use super::chain::{ChainSnapshot, ChainView, EpochRecord, NodeBalance};
use super::DevnetError;
use futures::future::BoxFuture;
use smartnodes_contracts::{sno, Address, Chain, Endpoint, Params, PrivateKeySigner, Role, U256};
use std::path::{Path, PathBuf};

/// The first account of anvil's (and hardhat's) default mnemonic: public knowledge, funded
/// on every fresh local dev chain. Used when no key is given, for local chains only.
pub const ANVIL_DEV_KEY: &str =
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// SNO a validator gets (its collateral is 1,000).
const VALIDATOR_SNO: u64 = 2_000;
/// SNO a worker gets: exactly its stake (the default minimum worker collateral), so what
/// it holds later is what it claimed.
const WORKER_SNO: u64 = 500;
/// Ether (whole) each node gets for gas.
const NODE_ETH: u64 = 10;

fn chain_err(what: &str) -> impl Fn(smartnodes_contracts::Error) -> DevnetError + '_ {
    move |e| DevnetError::Chain(format!("{what}: {e}"))
}

/// The contracts the devnet deployed on a JSON-RPC chain.
#[derive(Debug)]
pub struct RpcChain {
    url: String,
    deployer: Chain,
    /// The deployment file every node gets.
    pub deployment_file: PathBuf,
    genesis: U256,
    nodes: Vec<(&'static str, Address)>,
    /// Mines an empty block every second (see [`RpcChain::deploy`]); stopped on drop.
    pump: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for RpcChain {
    fn drop(&mut self) {
        if let Some(p) = self.pump.take() {
            p.abort();
        }
    }
}

impl RpcChain {
    /// Deploys the contracts at `url` with epochs of `epoch_secs`, signed by `key` (the
    /// treasury), and writes `DATA_DIR/deployment.json`.
    pub async fn deploy(
        url: &str,
        key: PrivateKeySigner,
        epoch_secs: u64,
        data_dir: &Path,
    ) -> Result<RpcChain, DevnetError> {
        let mut params = Params::new(key.address());
        params.epoch_duration = epoch_secs.max(1);
        params.round_duration = epoch_secs.max(1);
        params.proposers_per_round = super::PROPOSERS_PER_ROUND;
        params.vesting_epochs = 1;
        params.fit_durations();
        let genesis = sno(1_000_000);
        let deployer = Chain::deploy(
            &Endpoint::Rpc(url.to_string()),
            key.clone(),
            &params,
            &[(key.address(), genesis)],
        )
        .await
        .map_err(chain_err("deploying the contracts"))?;
        let d = deployer.deployment();
        let deployment_file = data_dir.join("deployment.json");
        let json = crate::commands::chain::deployment_json(&d);
        std::fs::write(&deployment_file, format!("{json}\n")).map_err(|source| {
            DevnetError::Io {
                path: deployment_file.clone(),
                source,
            }
        })?;
        // A dev chain that mines only on transactions (anvil's default) keeps the time of
        // its last block: views then never see an epoch end. Like a real chain, which
        // makes blocks on a schedule, it gets an empty block every second (`evm_mine`);
        // a chain that refuses (a public network) makes its own.
        let pumper = deployer.clone();
        let pump = tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                if let Err(e) = pumper.advance_time(0).await {
                    tracing::info!(
                        "the chain does not take evm_mine ({e}); it makes its own blocks"
                    );
                    return;
                }
            }
        });
        Ok(RpcChain {
            url: url.to_string(),
            deployer,
            deployment_file,
            genesis,
            nodes: Vec::new(),
            pump: Some(pump),
        })
    }

    /// The endpoint.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Gives a node what it needs to register: ether for gas, and SNO for a validator's
    /// collateral or a worker's stake.
    pub async fn fund(&mut self, role: &'static str, address: Address) -> Result<(), DevnetError> {
        let wei = U256::from(NODE_ETH) * U256::from(10u64).pow(U256::from(18u64));
        self.deployer
            .send_eth(address, wei)
            .await
            .map_err(chain_err("sending ether"))?;
        let amount = if role == "validator" {
            VALIDATOR_SNO
        } else {
            WORKER_SNO
        };
        self.deployer
            .transfer(address, sno(amount))
            .await
            .map_err(chain_err("sending SNO"))?;
        self.nodes.push((role, address));
        Ok(())
    }

    async fn read(&self) -> Result<ChainSnapshot, DevnetError> {
        let c = &self.deployer;
        let e = chain_err("reading the chain");
        let wei = |v: U256| u128::try_from(v).unwrap_or(u128::MAX);
        let current = c.current_epoch().await.map_err(&e)?;
        let mut epochs = Vec::new();
        let mut claimed = 0u128;
        let mut claimable = 0u128;
        for epoch in 1..current {
            let r = c.epoch_record(epoch).await.map_err(&e)?;
            let proposer = c
                .proposal(epoch, r.summary_hash)
                .await
                .map_err(&e)?
                .map_or(Address::ZERO, |p| p.proposer);
            claimed += wei(r.claimed);
            // Claims for an epoch open once the next one has executed.
            if epoch + 1 < current {
                claimable += wei(r.worker_reward_total);
            }
            epochs.push(EpochRecord {
                number: epoch,
                proposer: proposer.to_string(),
                votes: r.votes,
                // Other processes sent the transactions; their gas is in their receipts,
                // which this view does not collect.
                gas_used: 0,
                executed: true,
            });
        }
        let mut balances = Vec::new();
        for (role, a) in &self.nodes {
            let held = c.token_balance(*a).await.map_err(&e)?;
            // What a node holds is what it was paid: validators for their votes (their
            // funded SNO is locked as collateral), workers what they claimed (they claim
            // automatically).
            let held = if *role == "validator" {
                held.saturating_sub(sno(VALIDATOR_SNO - 1_000))
            } else {
                held
            };
            let (stake, slashed) = stake_and_slash(c, role, *a).await.map_err(&e)?;
            balances.push(NodeBalance {
                address: a.to_string(),
                earned: wei(held),
                claimed: wei(held),
                stake: wei(stake),
                slashed: wei(slashed),
            });
        }
        let supply = c.total_supply().await.map_err(&e)?;
        Ok(ChainSnapshot {
            endpoint: self.url.clone(),
            epochs,
            sno_minted: wei(supply.saturating_sub(self.genesis)),
            sno_claimed: claimed,
            sno_claimable: claimable,
            balances,
        })
    }
}

/// A node's collateral locked now, and what was slashed from it: a blacklisted worker or a
/// removed validator lost the minimum collateral of its role (what the devnet registers).
pub async fn stake_and_slash(
    c: &Chain,
    role: &str,
    a: Address,
) -> Result<(U256, U256), smartnodes_contracts::Error> {
    let (r, lost) = if role == "validator" {
        (Role::Validator, c.is_validator_banned(a).await?)
    } else {
        (Role::Worker, c.blacklisted_in(a).await?.is_some())
    };
    let stake = c.registration(r, a).await?.collateral;
    let slashed = if lost {
        let p = c.params().await?;
        match r {
            Role::Validator => p.min_validator_collateral,
            _ => p.min_worker_collateral,
        }
    } else {
        U256::ZERO
    };
    Ok((stake, slashed))
}

impl ChainView for RpcChain {
    fn snapshot(&self) -> BoxFuture<'_, Result<ChainSnapshot, DevnetError>> {
        Box::pin(self.read())
    }
}
