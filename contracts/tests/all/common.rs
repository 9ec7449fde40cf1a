//! The test network: fresh contracts and fresh accounts per test, on the embedded EVM by
//! default or on the JSON-RPC node named by `SMARTNODES_TEST_RPC_URL`.

use std::sync::{Mutex, MutexGuard};

use smartnodes_contracts::{
    sno, Address, Chain, EmbeddedEvm, Endpoint, EpochSummary, Error, Params, PrivateKeySigner,
    Result, TxReceipt, U256,
};

/// anvil's first dev account (its well-known private key).
const ANVIL_KEY_0: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// SNO every participant starts with.
pub(crate) const GENESIS_SNO: u64 = 100_000;

/// On a shared JSON-RPC node, tests take turns: time is global there.
static RPC_TURN: Mutex<()> = Mutex::new(());

pub(crate) fn rpc_url() -> Option<String> {
    std::env::var("SMARTNODES_TEST_RPC_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// Parameters the tests use: 100-second epochs, long rounds (so a test never crosses a
/// round boundary by accident on a wall-clock node), one proposer per round, rewards vesting
/// after one epoch (tests of vesting set their own window).
pub(crate) fn test_params(treasury: Address) -> Params {
    Params {
        epoch_duration: 100,
        round_duration: 3_600,
        proposers_per_round: 1,
        unlock_delay: 10_000,
        initial_emission: sno(1_000),
        tail_emission: sno(300),
        epochs_per_era: 2,
        era_decay_bps: 5_000,
        vesting_epochs: 1,
        claim_window_epochs: 10,
        activation_epochs: 1,
        idle_timeout: 50_000,
        job_grace_period: 1_000,
        max_escrow_bps: 10_000,
        ..Params::new(treasury)
    }
}

pub(crate) struct Net {
    pub(crate) deployer: Chain,
    /// The deployer's key (funded with ether on every backend).
    pub(crate) deployer_signer: PrivateKeySigner,
    endpoint: Endpoint,
    pub(crate) validators: Vec<Chain>,
    pub(crate) users: Vec<Chain>,
    pub(crate) workers: Vec<Chain>,
    /// Registered as nothing.
    pub(crate) outsider: Chain,
    pub(crate) treasury: Address,
    pub(crate) params: Params,
    _turn: Option<MutexGuard<'static, ()>>,
}

impl Net {
    /// Deploy with `params` and register `v` validators, `u` users and `w` workers.
    pub(crate) async fn new(v: usize, u: usize, w: usize) -> Net {
        Self::with_params(v, u, w, |_| {}).await
    }

    pub(crate) async fn with_params(
        v: usize,
        u: usize,
        w: usize,
        tweak: impl FnOnce(&mut Params),
    ) -> Net {
        let turn = rpc_url().map(|_| RPC_TURN.lock().unwrap_or_else(|p| p.into_inner()));
        let (endpoint, deployer_key) = match rpc_url() {
            Some(url) => {
                let key = std::env::var("SMARTNODES_TEST_RPC_KEY").unwrap_or(ANVIL_KEY_0.into());
                (
                    Endpoint::Rpc(url),
                    key.parse::<PrivateKeySigner>().expect("deployer key"),
                )
            }
            None => {
                let evm = EmbeddedEvm::with_timestamp(1_700_000_000);
                (Endpoint::Embedded(evm), PrivateKeySigner::random())
            }
        };
        let keys: Vec<PrivateKeySigner> = (0..v + u + w + 2)
            .map(|_| PrivateKeySigner::random())
            .collect();
        let treasury = keys[v + u + w + 1].address();
        let mut params = test_params(treasury);
        tweak(&mut params);
        let genesis: Vec<(Address, U256)> = keys[..v + u + w + 1]
            .iter()
            .map(|k| (k.address(), sno(GENESIS_SNO)))
            .collect();
        let deployer = Chain::deploy(&endpoint, deployer_key.clone(), &params, &genesis)
            .await
            .expect("deploy");
        let chains: Vec<Chain> = keys[..v + u + w + 1]
            .iter()
            .map(|k| deployer.with_signer(k.clone()))
            .collect();
        if deployer.backend_name() == "json-rpc" {
            for c in &chains {
                deployer
                    .send_eth(c.account(), U256::from(10u128.pow(18)))
                    .await
                    .expect("fund");
            }
        }
        let net = Net {
            endpoint: endpoint.clone(),
            validators: chains[..v].to_vec(),
            users: chains[v..v + u].to_vec(),
            workers: chains[v + u..v + u + w].to_vec(),
            outsider: chains[v + u + w].clone(),
            deployer,
            deployer_signer: deployer_key,
            treasury,
            params,
            _turn: turn,
        };
        for c in &net.validators {
            c.register_validator(net.params.min_validator_collateral)
                .await
                .expect("register validator");
        }
        for c in &net.users {
            c.register_user(net.params.min_user_collateral)
                .await
                .expect("register user");
        }
        for c in &net.workers {
            c.register_worker(net.params.min_worker_collateral)
                .await
                .expect("register worker");
        }
        net
    }

    /// Where the contracts are.
    pub(crate) fn endpoint(&self) -> Endpoint {
        self.endpoint.clone()
    }

    /// Every account in the net, the deployer included.
    pub(crate) fn everyone(&self) -> Vec<&Chain> {
        let mut all = vec![&self.deployer, &self.outsider];
        all.extend(self.validators.iter());
        all.extend(self.users.iter());
        all.extend(self.workers.iter());
        all
    }

    /// Every account except the validators.
    pub(crate) fn non_validators(&self) -> Vec<&Chain> {
        let mut all = vec![&self.deployer, &self.outsider];
        all.extend(self.users.iter());
        all.extend(self.workers.iter());
        all
    }

    pub(crate) fn by_address(&self, a: Address) -> &Chain {
        self.everyone()
            .into_iter()
            .find(|c| c.account() == a)
            .expect("known account")
    }

    /// Move time to when proposals for the current epoch open.
    pub(crate) async fn open_proposals(&self) {
        let info = self.deployer.round_info().await.unwrap();
        let now = self.deployer.timestamp().await.unwrap();
        if now < info.proposals_open_at {
            self.deployer
                .advance_time(info.proposals_open_at - now)
                .await
                .unwrap();
        }
    }

    /// The validator that may propose in the current round.
    pub(crate) async fn proposer(&self) -> &Chain {
        let info = self.deployer.round_info().await.unwrap();
        assert!(info.open, "proposals are not open");
        self.by_address(info.proposers[0])
    }

    /// Lets rounds expire, at most 100, until the proposer drawn is one `wanted` accepts.
    pub(crate) async fn later_proposer(&self, wanted: impl Fn(Address) -> bool) -> Option<&Chain> {
        for _ in 0..100 {
            self.deployer
                .advance_time(self.params.round_duration)
                .await
                .unwrap();
            let p = self.proposer().await;
            if wanted(p.account()) {
                return Some(p);
            }
        }
        None
    }

    /// Open proposals, propose `summary`, collect votes until the threshold passes, execute.
    pub(crate) async fn run_epoch(&self, summary: &EpochSummary) -> TxReceipt {
        self.open_proposals().await;
        let hash = summary.hash();
        let proposer = self.proposer().await;
        proposer.propose(summary).await.expect("propose");
        let total = self.deployer.active_stake().await.unwrap();
        let mut stake = self.stake_of(proposer.account()).await;
        for v in &self.validators {
            if self.deployer.threshold_passes(stake, total).await.unwrap() {
                break;
            }
            if v.account() == proposer.account() || !self.is_validator(v.account()).await {
                continue;
            }
            v.vote(summary.epoch, hash).await.expect("vote");
            stake += self.stake_of(v.account()).await;
        }
        proposer.execute(summary).await.expect("execute")
    }

    /// A validator's collateral (its voting power while active).
    pub(crate) async fn stake_of(&self, a: Address) -> U256 {
        self.deployer
            .registration(smartnodes_contracts::Role::Validator, a)
            .await
            .unwrap()
            .collateral
    }

    /// A fresh account outside the net, with ether for gas (JSON-RPC) and `amount` SNO
    /// (from the outsider).
    pub(crate) async fn fresh_account(&self, amount: u64) -> Chain {
        let c = self.deployer.with_signer(PrivateKeySigner::random());
        if self.deployer.backend_name() == "json-rpc" {
            self.deployer
                .send_eth(c.account(), U256::from(10u128.pow(18)))
                .await
                .expect("fund");
        }
        self.outsider
            .transfer(c.account(), sno(amount))
            .await
            .expect("fund SNO");
        c
    }

    pub(crate) async fn is_validator(&self, a: Address) -> bool {
        self.deployer.validators().await.unwrap().contains(&a)
    }

    pub(crate) async fn balance(&self, a: Address) -> U256 {
        self.deployer.token_balance(a).await.unwrap()
    }
}

/// Assert that `r` failed with the custom error `name`.
#[track_caller]
pub(crate) fn assert_revert<T: std::fmt::Debug>(r: Result<T>, name: &str) {
    match r {
        Err(ref e @ Error::Revert(_)) => {
            assert_eq!(e.revert_name(), Some(name), "wrong revert: {e}");
        }
        other => panic!("expected revert {name}, got {other:?}"),
    }
}
