//! The chain side of the in-process network ([`crate::harness`]): deploy the contracts,
//! fund and register every node, move the embedded clock, and report what epochs did.

use super::node::{GasEntry, GasLog};
use super::ChainConfig;
use crate::epoch::ledger::node_key_hash;
use crate::roles::NodeConfig;
use smartnodes_contracts::{
    sno, Address, Chain, EmbeddedEvm, Endpoint, Params, PrivateKeySigner, Result, B256, U256,
};
use std::time::Duration;

/// What chain an in-process network gets ([`crate::harness::NetworkConfig::chain`]).
#[derive(Debug, Clone)]
pub struct ChainSetup {
    /// The contracts' parameters (epoch length, emission, split, threshold); the treasury
    /// is replaced by the deployer.
    pub params: Params,
    /// `None`: a fresh embedded chain shared by every node. `Some((url, key))`: a JSON-RPC
    /// node (e.g. anvil) and a funded key that deploys and pays every node's gas.
    pub rpc: Option<(String, PrivateKeySigner)>,
    /// Validators (by index) that propose tampered summaries (tests).
    pub tamper: Vec<usize>,
    /// Proposers wait this long after proposals open before building their summary.
    pub grace: Duration,
    /// Embedded chain only: move its clock with the wall clock (one chain second per
    /// second), so epochs follow on their own (devnets). Off: time moves only when asked
    /// ([`ChainNet::open_proposals`]), which tests prefer.
    pub clock: bool,
}

impl ChainSetup {
    /// An embedded chain whose epochs last `epoch_secs` chain seconds, with all validators
    /// drawn as proposers every round.
    pub fn embedded(epoch_secs: u64) -> ChainSetup {
        let mut params = Params::new(Address::ZERO);
        params.epoch_duration = epoch_secs;
        params.round_duration = epoch_secs.max(1);
        params.proposers_per_round = 64;
        // Rewards vest after one epoch here, so tests claim an epoch's rewards with the next.
        params.vesting_epochs = 1;
        params.fit_durations();
        ChainSetup {
            params,
            rpc: None,
            tamper: Vec::new(),
            grace: Duration::from_millis(500),
            clock: false,
        }
    }
}

/// The chain of a running in-process network.
#[derive(Debug)]
pub struct ChainNet {
    /// The deployer (also the treasury), a client any test can use.
    pub deployer: Chain,
    /// Where the chain is.
    pub endpoint: Endpoint,
    /// The deployed parameters.
    pub params: Params,
    /// Validators' chain addresses, in the order of [`crate::harness::Network::validators`].
    pub validators: Vec<Address>,
    /// Workers' chain addresses, in the order of [`crate::harness::Network::workers`].
    pub workers: Vec<Address>,
    /// Every epoch transaction nodes sent.
    pub gas_log: GasLog,
    /// SNO minted at deployment.
    pub genesis: U256,
    /// An account holding 1,000,000 SNO from genesis and ether, to fund users in tests.
    pub bank: Chain,
    /// The task moving the embedded clock ([`ChainSetup::clock`]), stopped on drop.
    clock: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for ChainNet {
    fn drop(&mut self) {
        if let Some(clock) = self.clock.take() {
            clock.abort();
        }
    }
}

/// One executed epoch.
#[derive(Debug, Clone)]
pub struct EpochLine {
    /// The epoch.
    pub epoch: u64,
    /// The executed summary's hash.
    pub summary_hash: B256,
    /// Its proposer.
    pub proposer: Address,
    /// Counted votes.
    pub votes: u32,
    /// SNO minted.
    pub emission: U256,
    /// Committed worker rewards.
    pub worker_total: U256,
    /// Claimed so far.
    pub claimed: U256,
    /// The epoch's transactions.
    pub gas: Vec<GasEntry>,
}

/// One node.
#[derive(Debug, Clone)]
pub struct NodeLine {
    /// `validator` or `worker`.
    pub role: &'static str,
    /// Its chain address.
    pub address: Address,
    /// Its SNO balance.
    pub balance: U256,
    /// SNO it claimed (workers) or was paid for voting (validators), from the gas log.
    pub earned: U256,
    /// SNO locked as its collateral now (a worker's stake, a validator's collateral).
    pub stake: U256,
    /// SNO slashed from it (a blacklisted worker's stake, a removed validator's collateral).
    pub slashed: U256,
}

/// What epochs did, for tests and closing notes.
#[derive(Debug, Clone)]
pub struct ChainReport {
    /// `"embedded"` or `"json-rpc"`.
    pub backend: &'static str,
    /// Executed epochs.
    pub epochs: Vec<EpochLine>,
    /// Every node.
    pub nodes: Vec<NodeLine>,
    /// SNO minted since deployment (total supply minus genesis).
    pub minted: U256,
    /// The treasury's balance.
    pub treasury: U256,
    /// SNO held by the core for claims not made yet.
    pub unclaimed: U256,
    /// Job payments released from escrow into the epochs' pots.
    pub released: U256,
    /// Collateral slashed from nodes (paid to voters and the treasury).
    pub slashed: U256,
}

fn fmt_sno(v: U256) -> String {
    let whole = v / sno(1);
    let frac = (v % sno(1)) / U256::from(1_000_000_000_000u64);
    format!("{whole}.{frac:06}")
}

impl std::fmt::Display for ChainReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "chain: {}", self.backend)?;
        writeln!(f, "epoch  proposer                                    votes  minted SNO        workers SNO       claimed SNO   gas (propose/vote/execute/claim)")?;
        for e in &self.epochs {
            let gas =
                |w: &str| -> u64 { e.gas.iter().filter(|g| g.what == w).map(|g| g.gas).sum() };
            writeln!(
                f,
                "{:>5}  {}  {:>5}  {:>16}  {:>16}  {:>16}   {}/{}/{}/{}",
                e.epoch,
                e.proposer,
                e.votes,
                fmt_sno(e.emission),
                fmt_sno(e.worker_total),
                fmt_sno(e.claimed),
                gas("propose"),
                gas("vote"),
                gas("execute"),
                gas("claim"),
            )?;
        }
        writeln!(f, "node        address                                     earned SNO         balance SNO")?;
        for n in &self.nodes {
            writeln!(
                f,
                "{:<10}  {}  {:>16}  {:>18}",
                n.role,
                n.address,
                fmt_sno(n.earned),
                fmt_sno(n.balance)
            )?;
        }
        writeln!(
            f,
            "minted {} + released {} + slashed {} = earned by nodes {} + treasury {} + unclaimed {}",
            fmt_sno(self.minted),
            fmt_sno(self.released),
            fmt_sno(self.slashed),
            fmt_sno(
                self.nodes
                    .iter()
                    .map(|n| n.earned)
                    .fold(U256::ZERO, |a, b| a + b)
            ),
            fmt_sno(self.treasury),
            fmt_sno(self.unclaimed)
        )
    }
}

impl ChainNet {
    /// Deploys the contracts, funds and registers every node, and sets each node's
    /// [`NodeConfig::chain`].
    pub async fn setup(
        setup: &ChainSetup,
        validators: &mut [NodeConfig],
        workers: &mut [NodeConfig],
    ) -> Result<ChainNet> {
        let (endpoint, deployer) = match &setup.rpc {
            Some((url, key)) => (Endpoint::Rpc(url.clone()), key.clone()),
            None => {
                let evm = EmbeddedEvm::new();
                let key = PrivateKeySigner::random();
                evm.fund(key.address(), U256::from(10u64).pow(U256::from(24u64)));
                (Endpoint::Embedded(evm), key)
            }
        };
        let mut params = setup.params.clone();
        params.treasury = deployer.address();
        let collateral = params.min_validator_collateral;
        let bank = PrivateKeySigner::random();
        let stake = params.min_worker_collateral;
        let genesis: Vec<(Address, U256)> = validators
            .iter()
            .map(|c| (c.eth_signer.address(), collateral))
            .chain(workers.iter().map(|c| (c.eth_signer.address(), stake)))
            .chain([(bank.address(), sno(1_000_000))])
            .collect();
        let genesis_total = genesis.iter().fold(U256::ZERO, |a, g| a + g.1);
        let deployer = Chain::deploy(&endpoint, deployer, &params, &genesis).await?;
        let gas_log = GasLog::default();
        let eth = U256::from(10u64).pow(U256::from(19u64)); // 10 ETH each
        let accounts = validators
            .iter()
            .chain(workers.iter())
            .map(|c| c.eth_signer.address())
            .chain([bank.address()]);
        for a in accounts {
            match &endpoint {
                Endpoint::Embedded(evm) => evm.fund(a, eth),
                Endpoint::Rpc(_) => {
                    deployer.send_eth(a, eth).await?;
                }
            }
        }
        let bank = deployer.with_signer(bank);
        for (i, c) in validators.iter_mut().enumerate() {
            let v = deployer.with_signer(c.eth_signer.clone());
            debug_assert_eq!(
                v.node_key_hash(),
                node_key_hash(&c.keypair.public().to_peer_id())
            );
            v.register_validator(collateral).await?;
            let mut cc = ChainConfig::new(endpoint.clone(), deployer.deployment());
            cc.tamper = setup.tamper.contains(&i);
            // A tampering validator proposes first, so that honest ones see its proposal.
            cc.grace = if cc.tamper {
                Duration::ZERO
            } else {
                setup.grace
            };
            cc.gas_log = gas_log.clone();
            c.chain = Some(cc);
        }
        for c in workers.iter_mut() {
            let w = deployer.with_signer(c.eth_signer.clone());
            debug_assert_eq!(
                w.node_key_hash(),
                node_key_hash(&c.keypair.public().to_peer_id())
            );
            w.register_worker(stake).await?;
            let mut cc = ChainConfig::new(endpoint.clone(), deployer.deployment());
            cc.grace = setup.grace;
            cc.gas_log = gas_log.clone();
            c.chain = Some(cc);
        }
        let clock = match (&endpoint, setup.clock) {
            (Endpoint::Embedded(evm), true) => {
                let evm = evm.clone();
                Some(tokio::spawn(async move {
                    let mut tick = tokio::time::interval(Duration::from_secs(1));
                    tick.tick().await;
                    loop {
                        tick.tick().await;
                        evm.advance_time(1);
                    }
                }))
            }
            _ => None,
        };
        Ok(ChainNet {
            bank,
            clock,
            endpoint,
            params,
            validators: validators.iter().map(|c| c.eth_signer.address()).collect(),
            workers: workers.iter().map(|c| c.eth_signer.address()).collect(),
            gas_log,
            genesis: genesis_total,
            deployer,
        })
    }

    /// Moves the chain's clock past the current epoch's duration, so proposals open.
    pub async fn open_proposals(&self) -> Result<()> {
        let info = self.deployer.round_info().await?;
        let now = self.deployer.timestamp().await?;
        if info.proposals_open_at > now {
            self.deployer
                .advance_time(info.proposals_open_at - now)
                .await?;
        }
        Ok(())
    }

    /// Waits until `epoch` has executed (or `timeout` passes); true if it did.
    pub async fn wait_executed(&self, epoch: u64, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if self
                .deployer
                .current_epoch()
                .await
                .is_ok_and(|current| current > epoch)
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// What the chain says about every executed epoch and every node.
    pub async fn report(&self) -> Result<ChainReport> {
        let c = &self.deployer;
        let current = c.current_epoch().await?;
        let log = self.gas_log.lock().expect("poisoned").clone();
        let mut epochs = Vec::new();
        for epoch in 1..current {
            let r = c.epoch_record(epoch).await?;
            let proposer = c
                .proposal(epoch, r.summary_hash)
                .await?
                .map_or(Address::ZERO, |p| p.proposer);
            epochs.push(EpochLine {
                epoch,
                summary_hash: r.summary_hash,
                proposer,
                votes: r.votes,
                emission: r.emission,
                worker_total: r.worker_reward_total,
                claimed: r.claimed,
                gas: log.iter().filter(|g| g.epoch == epoch).cloned().collect(),
            });
        }
        let mut nodes = Vec::new();
        for (role, list) in [("validator", &self.validators), ("worker", &self.workers)] {
            for a in list {
                let balance = c.token_balance(*a).await?;
                let (stake, slashed) = crate::devnet::rpc::stake_and_slash(c, role, *a).await?;
                // Validators hold nothing but what voting paid (their genesis SNO is
                // locked as collateral); workers hold what they claimed (their genesis SNO
                // is staked).
                nodes.push(NodeLine {
                    role,
                    address: *a,
                    balance,
                    earned: balance,
                    stake,
                    slashed,
                });
            }
        }
        let slashed = nodes.iter().fold(U256::ZERO, |a, n| a + n.slashed);
        let supply = c.total_supply().await?;
        let treasury = c.token_balance(c.account()).await?;
        let unclaimed = epochs
            .iter()
            .fold(U256::ZERO, |a, e| a + e.worker_total - e.claimed);
        let mut released = U256::ZERO;
        for e in 1..current {
            released += c.epoch_record(e).await?.released_payments;
        }
        Ok(ChainReport {
            backend: c.backend_name(),
            epochs,
            nodes,
            minted: supply - self.genesis,
            treasury,
            unclaimed,
            released,
            slashed,
        })
    }
}
