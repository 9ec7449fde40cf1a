//! Epochs end to end: validators and workers in one process on a shared chain (embedded by
//! default, or the JSON-RPC node at `SMARTNODES_TEST_RPC_URL`, e.g. anvil), jobs run,
//! proposals, votes, execution, worker claims.

use libp2p::PeerId;
use smartnodes::harness::{ChainSetup, Network, NetworkConfig};
use smartnodes::net::proto::JobLimits;
use smartnodes::roles::user::{JobRequestSpec, UserSession};
use smartnodes_contracts::{Address, PrivateKeySigner, U256};
use std::collections::BTreeMap;
use std::time::Duration;

/// On JSON-RPC the tests share one chain clock (`evm_increaseTime`), so they take turns.
static TURNS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn turn() -> Option<tokio::sync::MutexGuard<'static, ()>> {
    match std::env::var_os("SMARTNODES_TEST_RPC_URL") {
        Some(_) => Some(TURNS.lock().await),
        None => None,
    }
}

fn init_logging() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// The chain to test against: `SMARTNODES_TEST_RPC_URL` (+ `SMARTNODES_TEST_RPC_KEY`, by
/// default anvil's first dev key) or a fresh embedded chain.
fn chain_setup() -> ChainSetup {
    let mut setup = ChainSetup::embedded(30);
    if let Ok(url) = std::env::var("SMARTNODES_TEST_RPC_URL") {
        let key = std::env::var("SMARTNODES_TEST_RPC_KEY").unwrap_or_else(|_| {
            "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80".into()
        });
        setup.rpc = Some((url, key.parse::<PrivateKeySigner>().expect("a private key")));
    }
    setup
}

/// Starts `config`'s network and waits until every worker has registered.
async fn start(config: NetworkConfig) -> Network {
    let workers = config.workers;
    let net = Network::start(config).await.unwrap();
    assert!(net.wait_for_workers(workers, Duration::from_secs(20)).await);
    net
}

fn inputs(n: usize, salt: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            format!(
                "epoch task {salt}/{i}: {}",
                "the quick brown fox jumps over the lazy dog ".repeat(1 + (i * 7 + salt) % 13)
            )
            .into_bytes()
        })
        .collect()
}

/// Runs one job through each validator; returns the fuel per worker peer.
async fn run_jobs(net: &Network, tasks: usize, salt: usize) -> BTreeMap<PeerId, u128> {
    let mut fuel = BTreeMap::new();
    for (i, v) in net.validators.iter().enumerate() {
        let session = UserSession::connect(v.addr()).await.unwrap();
        let job = JobRequestSpec {
            sample_ppm: 0,
            module: smartnodes_examples::WORDCOUNT.to_vec(),
            inputs: inputs(tasks, salt * 10 + i),
            limits: JobLimits::default(),
        };
        let report = session
            .run_job(&job, Duration::from_secs(60), |_, _| {})
            .await
            .unwrap();
        for t in &report.tasks {
            *fuel.entry(t.worker).or_default() += u128::from(t.receipt.body.fuel_used);
        }
        session.close().await;
    }
    fuel
}

/// Each worker's share of `epoch`'s workers' pot, pro rata to fuel, rounded down.
async fn shares(
    net: &Network,
    epoch: u64,
    fuel: &BTreeMap<PeerId, u128>,
) -> BTreeMap<Address, U256> {
    shares_with(net, epoch, fuel, U256::ZERO).await
}

/// [`shares`] when the epoch also released `released` of job payments into the pot.
async fn shares_with(
    net: &Network,
    epoch: u64,
    fuel: &BTreeMap<PeerId, u128>,
    released: U256,
) -> BTreeMap<Address, U256> {
    let chain = net.chain.as_ref().unwrap();
    let emission = chain.deployer.emission_at(epoch).await.unwrap();
    assert_eq!(emission, chain.params.emission_at(epoch));
    let cap = (emission + released) * U256::from(chain.params.worker_bps) / U256::from(10_000);
    let total: u128 = fuel.values().sum();
    let mut out = BTreeMap::new();
    for (i, w) in net.workers.iter().enumerate() {
        let f = fuel.get(&w.peer_id()).copied().unwrap_or(0);
        let amount = if total == 0 {
            U256::ZERO
        } else {
            cap * U256::from(f) / U256::from(total)
        };
        out.insert(chain.workers[i], amount);
    }
    out
}

/// Waits until every worker's balance is what it should be (claims are automatic).
async fn wait_balances(net: &Network, want: &BTreeMap<Address, U256>) {
    let chain = net.chain.as_ref().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut have = BTreeMap::new();
        for a in want.keys() {
            have.insert(*a, chain.deployer.token_balance(*a).await.unwrap());
        }
        if &have == want {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("worker balances {have:?}, want {want:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn run_epoch(net: &Network, epoch: u64) {
    let chain = net.chain.as_ref().unwrap();
    // Let the last receipts be sealed and gossiped, then open proposals.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    chain.open_proposals().await.unwrap();
    assert!(
        chain.wait_executed(epoch, Duration::from_secs(60)).await,
        "epoch {epoch} did not execute"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_epochs_pay_workers_by_fuel_and_voters_by_vote() {
    init_logging();
    let _turn = turn().await;
    let net = start(NetworkConfig {
        validators: 3,
        workers: 4,
        chain: Some(chain_setup()),
        ..NetworkConfig::default()
    })
    .await;
    let chain = net.chain.as_ref().unwrap();
    let mut want: BTreeMap<Address, U256> = BTreeMap::new();
    let mut emitted = U256::ZERO;
    // Epochs 1 and 2 with work; epoch 3 without, to open the claims of epoch 2 (an
    // epoch's rewards are claimable once the next one executed).
    let mut previous: BTreeMap<Address, U256> = BTreeMap::new();
    for epoch in 1..=3u64 {
        let fuel = if epoch < 3 {
            let fuel = run_jobs(&net, 12, epoch as usize).await;
            assert!(fuel.len() >= 2, "work spread over workers: {fuel:?}");
            fuel
        } else {
            BTreeMap::new()
        };
        run_epoch(&net, epoch).await;
        for (a, v) in std::mem::replace(&mut previous, shares(&net, epoch, &fuel).await) {
            *want.entry(a).or_default() += v;
        }
        emitted += chain.params.emission_at(epoch);
        wait_balances(&net, &want).await;
    }

    // Validators: each voter of the executed summary got validatorBps / votes of the pot.
    let mut validator_want: BTreeMap<Address, U256> = BTreeMap::new();
    for epoch in 1..=3u64 {
        let record = chain.deployer.epoch_record(epoch).await.unwrap();
        assert!(record.votes >= 2, "a strict majority of 3 voted");
        let pot = chain.params.emission_at(epoch);
        let per_voter = pot * U256::from(chain.params.validator_bps)
            / U256::from(10_000)
            / U256::from(record.votes);
        for v in &chain.validators {
            let voted =
                chain.deployer.vote_of(epoch, *v).await.unwrap() == Some(record.summary_hash);
            *validator_want.entry(*v).or_default() += if voted { per_voter } else { U256::ZERO };
        }
    }
    let report = net.chain_report().await.unwrap().unwrap();
    println!("{report}");
    for n in &report.nodes {
        if n.role == "validator" {
            assert_eq!(
                n.balance, validator_want[&n.address],
                "validator {}",
                n.address
            );
        } else {
            assert_eq!(n.balance, want[&n.address], "worker {}", n.address);
        }
    }
    // Everything minted is accounted for: the schedule's emission, exactly.
    assert_eq!(report.minted, emitted);
    let earned = report.nodes.iter().fold(U256::ZERO, |a, n| a + n.earned);
    assert_eq!(
        earned + report.treasury + report.unclaimed,
        report.minted + report.released
    );
    assert_eq!(report.unclaimed, U256::ZERO, "every worker claimed");
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_summary_never_executes() {
    init_logging();
    let _turn = turn().await;
    let mut setup = chain_setup();
    setup.tamper = vec![0];
    let net = start(NetworkConfig {
        validators: 3,
        workers: 3,
        chain: Some(setup),
        ..NetworkConfig::default()
    })
    .await;
    let chain = net.chain.as_ref().unwrap();
    let fuel = run_jobs(&net, 8, 7).await;
    run_epoch(&net, 1).await;
    let record = chain.deployer.epoch_record(1).await.unwrap();
    let hashes = chain.deployer.proposal_hashes(1).await.unwrap();
    let mut tampered = None;
    for h in &hashes {
        let p = chain.deployer.proposal(1, *h).await.unwrap().unwrap();
        if p.proposer == chain.validators[0] {
            tampered = Some((*h, p));
        }
    }
    let (hash, proposal) = tampered.expect("the tampering validator proposed");
    assert_ne!(record.summary_hash, hash, "the tampered summary executed");
    assert_eq!(
        proposal.voters,
        vec![chain.validators[0]],
        "nobody else voted for it"
    );
    // The honest summary paid the honest shares (claimable once epoch 2 executed), nothing
    // to the invented worker.
    run_epoch(&net, 2).await;
    wait_balances(&net, &shares(&net, 1, &fuel).await).await;
    let thief = Address::from([0xee; 20]);
    assert_eq!(
        chain.deployer.token_balance(thief).await.unwrap(),
        U256::ZERO
    );
    net.stop().await;
}

/// A validator that voted for a summary it no longer agrees with (it voted before it learnt
/// of a fraud, say: here the test casts that vote with its key) moves its vote in a later
/// round, so the epoch executes instead of staying split for good. 4 validators: 3 votes
/// pass; the tampering one and the early vote hold 2 back until the vote moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vote_given_too_early_moves_to_the_summary_its_validator_agrees_with() {
    init_logging();
    let _turn = turn().await;
    let mut setup = chain_setup();
    setup.tamper = vec![0];
    // Honest validators wait before proposing: the early vote goes in first.
    setup.grace = Duration::from_secs(3);
    let net = start(NetworkConfig {
        validators: 4,
        workers: 3,
        chain: Some(setup),
        ..NetworkConfig::default()
    })
    .await;
    let chain = net.chain.as_ref().unwrap();
    let fuel = run_jobs(&net, 8, 11).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    chain.open_proposals().await.unwrap();

    // The tampering validator proposes at once; validator 1 "votes for it too early".
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let tampered = loop {
        let hashes = chain.deployer.proposal_hashes(1).await.unwrap();
        if let Some(h) = hashes.first() {
            break *h;
        }
        assert!(tokio::time::Instant::now() < deadline, "nobody proposed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let p = chain.deployer.proposal(1, tampered).await.unwrap().unwrap();
    assert_eq!(p.proposer, chain.validators[0], "the tampering one first");
    let early = smartnodes::identity::Identity::load_or_create(net.dirs[1].path())
        .unwrap()
        .eth_signer();
    assert_eq!(early.address(), chain.validators[1]);
    chain
        .deployer
        .with_signer(early)
        .vote(1, tampered)
        .await
        .unwrap();

    // The honest summary gets validators 2 and 3: 2 of 4, not enough, until the round
    // turns and validator 1 moves its vote.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let votes = chain
            .deployer
            .proposal_hashes(1)
            .await
            .unwrap()
            .into_iter()
            .filter(|h| *h != tampered)
            .count();
        if votes > 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no honest proposal");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        chain.deployer.current_epoch().await.unwrap(),
        1,
        "2 honest votes of 4 must not pass"
    );
    chain
        .deployer
        .advance_time(chain.params.round_duration)
        .await
        .unwrap();
    assert!(
        chain.wait_executed(1, Duration::from_secs(60)).await,
        "the vote did not move"
    );
    let record = chain.deployer.epoch_record(1).await.unwrap();
    assert_ne!(record.summary_hash, tampered);
    assert!(record.votes >= 3, "{}", record.votes);
    assert_eq!(
        chain
            .deployer
            .vote_of(1, chain.validators[1])
            .await
            .unwrap(),
        Some(record.summary_hash),
        "validator 1's vote moved"
    );
    let p = chain.deployer.proposal(1, tampered).await.unwrap().unwrap();
    assert_eq!(p.voters, vec![chain.validators[0]]);
    run_epoch(&net, 2).await;
    wait_balances(&net, &shares(&net, 1, &fuel).await).await;
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blacklisted_worker_is_blacklisted_on_chain_and_earns_nothing_after() {
    init_logging();
    let _turn = turn().await;
    let net = start(NetworkConfig {
        validators: 3,
        workers: 4,
        chain: Some(chain_setup()),
        ..NetworkConfig::default()
    })
    .await;
    let chain = net.chain.as_ref().unwrap();

    // Epoch 1: the cheater works and is credited (nobody knows yet).
    let fuel1 = run_jobs(&net, 12, 3).await;
    let (cheater_index, cheater) = net
        .workers
        .iter()
        .enumerate()
        .map(|(i, w)| (i, w.peer_id()))
        .find(|(_, p)| fuel1.contains_key(p))
        .expect("someone worked");
    let cheater_address = chain.workers[cheater_index];
    run_epoch(&net, 1).await;
    let mut want = shares(&net, 1, &fuel1).await;
    assert!(want[&cheater_address] > U256::ZERO, "credited in epoch 1");

    // During epoch 2 every validator gets a fraud proof against it (the verification
    // calls the same hook when it blacklists): epoch 2 blacklists it on chain, which
    // forfeits its epoch-1 reward (claims for epoch 1 open only once epoch 2 executed)
    // and whatever it does in epoch 2.
    for v in &net.validators {
        v.epochs.as_ref().unwrap().blacklist(cheater, [0x42; 32]);
    }
    let mut fuel2 = run_jobs(&net, 12, 4).await;
    fuel2.remove(&cheater);
    run_epoch(&net, 2).await;
    assert!(chain
        .deployer
        .is_blacklisted(cheater_address)
        .await
        .unwrap());
    want.insert(cheater_address, U256::ZERO);
    wait_balances(&net, &want).await;

    // Epoch 3 opens the claims of epoch 2: the honest workers' only.
    run_epoch(&net, 3).await;
    for (a, v) in shares(&net, 2, &fuel2).await {
        *want.entry(a).or_default() += v;
    }
    assert_eq!(want[&cheater_address], U256::ZERO);
    wait_balances(&net, &want).await;
    assert_eq!(
        chain.deployer.token_balance(cheater_address).await.unwrap(),
        U256::ZERO
    );
    net.stop().await;
}

/// The same with a real cheat: worker 0 flips its outputs; the validators' sampled
/// re-execution proves it (issue 5), the proof reaches every validator's epoch ledger, the
/// executed epoch blacklists it on the contract, and it is paid nothing, while the honest
/// workers are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_caught_cheating_is_blacklisted_on_chain_and_paid_nothing() {
    init_logging();
    let _turn = turn().await;
    let net = start(NetworkConfig {
        validators: 3,
        workers: 4,
        cheaters: vec!["wrong-output".parse().unwrap()],
        chain: Some(chain_setup()),
        ..NetworkConfig::default()
    })
    .await;
    let chain = net.chain.as_ref().unwrap();
    let cheater = net.workers[0].peer_id();
    let cheater_address = chain.workers[0];
    // Jobs on every validator until each holds a proof against the cheater.
    let mut salt = 1;
    loop {
        run_jobs(&net, 12, salt).await;
        salt += 1;
        let mut all = true;
        for v in &net.validators {
            let session = UserSession::connect(v.addr()).await.unwrap();
            let blacklisted = match session.status(None).await.unwrap() {
                smartnodes::net::proto::JobResponse::Status { workers, .. } => workers
                    .iter()
                    .any(|w| w.peer == cheater.to_string() && w.blacklisted.is_some()),
                _ => false,
            };
            session.close().await;
            all &= blacklisted;
        }
        if all {
            break;
        }
        assert!(salt < 20, "the cheater was not caught");
    }
    run_epoch(&net, 1).await;
    assert!(chain
        .deployer
        .is_blacklisted(cheater_address)
        .await
        .unwrap());
    // The executed summary slashed its stake (issue 16): gone from the core, in the report.
    let stake = chain.params.min_worker_collateral;
    assert_eq!(
        chain
            .deployer
            .registration(smartnodes_contracts::Role::Worker, cheater_address)
            .await
            .unwrap()
            .collateral,
        U256::ZERO
    );
    let report = net.chain_report().await.expect("a chain").unwrap();
    let line = report
        .nodes
        .iter()
        .find(|n| n.address == cheater_address)
        .unwrap();
    assert_eq!((line.stake, line.slashed), (U256::ZERO, stake));
    assert_eq!(report.slashed, stake);
    for honest in &chain.workers[1..] {
        let line = report.nodes.iter().find(|n| n.address == *honest).unwrap();
        assert_eq!((line.stake, line.slashed), (stake, U256::ZERO));
    }
    // Evidence (issue 21): the evidence the executed summary records (its hash is the one
    // on chain) is the id of a bundle a validator serves, which re-checks offline.
    let session = UserSession::connect(net.validators[0].addr())
        .await
        .unwrap();
    let mut found = None;
    for _ in 0..100 {
        if let smartnodes::net::proto::JobResponse::Epochs(contents) =
            session.epochs(0).await.unwrap()
        {
            found = contents.into_iter().find(|c| {
                c.summary()
                    .is_some_and(|s| s.blacklist.iter().any(|b| b.worker == cheater_address))
            });
        }
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let content = found.expect("an executed epoch blacklists the cheater");
    let summary = content.summary().expect("a summary");
    assert_eq!(
        chain
            .deployer
            .epoch_record(content.epoch)
            .await
            .unwrap()
            .summary_hash,
        summary.hash()
    );
    let entry = summary
        .blacklist
        .iter()
        .find(|b| b.worker == cheater_address)
        .expect("the cheater's blacklist entry");
    let bundle = session.evidence(entry.evidence.0).await.unwrap();
    assert_eq!(bundle.id(), entry.evidence.0);
    let bundle = smartnodes::evidence::Bundle::from_bytes(&bundle.to_bytes()).unwrap();
    let runtime = smartnodes_runtime::Runtime::new(Default::default()).unwrap();
    let report = smartnodes::evidence::judge(&bundle, &runtime.fingerprint().0, |t, m, i| {
        smartnodes::commands::verify::run_task(&runtime, t, m, i)
    })
    .unwrap();
    assert_eq!(report.verdict, smartnodes::evidence::Verdict::WorkerLied);
    session.close().await;
    run_jobs(&net, 12, 100).await;
    run_epoch(&net, 2).await;
    // The honest workers' automatic claims land; the cheater has nothing to claim.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for a in &chain.workers[1..] {
        while chain.deployer.token_balance(*a).await.unwrap() == U256::ZERO {
            assert!(
                tokio::time::Instant::now() < deadline,
                "honest worker {a} was not paid"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert_eq!(
        chain.deployer.token_balance(cheater_address).await.unwrap(),
        U256::ZERO
    );
    net.stop().await;
}

/// Issue 14's three cheats at 10 % at once (a foreign engine fingerprint, a claimed stack
/// overflow, fuel claimed x50), beside two honest workers: each is proven a fraud on every
/// validator, blacklisted on chain and paid nothing, while the honest workers are paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_overflow_and_inflate_cheaters_are_blacklisted_and_paid_nothing() {
    init_logging();
    let _turn = turn().await;
    let cheats = ["engine:0.1", "overflow:0.1", "inflate:0.1"];
    let net = start(NetworkConfig {
        validators: 2,
        workers: 5,
        cheaters: cheats.iter().map(|c| c.parse().unwrap()).collect(),
        chain: Some(chain_setup()),
        ..NetworkConfig::default()
    })
    .await;
    let chain = net.chain.as_ref().unwrap();
    let cheaters: Vec<String> = net.workers[..3]
        .iter()
        .map(|w| w.peer_id().to_string())
        .collect();
    let mut salt = 1;
    loop {
        run_jobs(&net, 12, salt).await;
        salt += 1;
        let mut all = true;
        for v in &net.validators {
            let session = UserSession::connect(v.addr()).await.unwrap();
            if let smartnodes::net::proto::JobResponse::Status { workers, .. } =
                session.status(None).await.unwrap()
            {
                for w in &workers {
                    let cheater = cheaters.contains(&w.peer);
                    assert!(cheater || w.blacklisted.is_none(), "honest {w:?} accused");
                }
                all &= cheaters.iter().all(|c| {
                    workers
                        .iter()
                        .any(|w| &w.peer == c && w.blacklisted.is_some())
                });
            }
            session.close().await;
        }
        if all {
            break;
        }
        assert!(salt < 30, "not every cheater was caught ({cheats:?})");
    }
    run_epoch(&net, 1).await;
    run_jobs(&net, 12, 100).await;
    run_epoch(&net, 2).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for a in &chain.workers[3..] {
        while chain.deployer.token_balance(*a).await.unwrap() == U256::ZERO {
            assert!(
                tokio::time::Instant::now() < deadline,
                "honest worker {a} was not paid"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    for (k, a) in chain.workers[..3].iter().enumerate() {
        assert!(
            chain.deployer.is_blacklisted(*a).await.unwrap(),
            "{}",
            cheats[k]
        );
        assert_eq!(
            chain.deployer.token_balance(*a).await.unwrap(),
            U256::ZERO,
            "{} was paid",
            cheats[k]
        );
    }
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_killed_during_voting_and_restarted_catches_up() {
    use smartnodes::epoch::ChainConfig;
    use smartnodes::roles::{start_node, NodeConfig, Role};
    init_logging();
    let _turn = turn().await;
    let mut net = start(NetworkConfig {
        validators: 3,
        workers: 3,
        chain: Some(chain_setup()),
        ..NetworkConfig::default()
    })
    .await;
    let (endpoint, deployment, gas_log) = {
        let c = net.chain.as_ref().unwrap();
        (
            c.endpoint.clone(),
            c.deployer.deployment(),
            c.gas_log.clone(),
        )
    };
    let killed_address = net.chain.as_ref().unwrap().validators[2];

    // Epoch 1: proposals open, and validator 2 dies before it proposes or votes.
    let fuel1 = run_jobs(&net, 8, 21).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let killed = net.validators.remove(2);
    net.chain.as_ref().unwrap().open_proposals().await.unwrap();
    killed.stop().await;
    let chain = net.chain.as_ref().unwrap();
    assert!(
        chain.wait_executed(1, Duration::from_secs(60)).await,
        "2 of 3 validators pass a strict majority"
    );
    let record = chain.deployer.epoch_record(1).await.unwrap();
    assert_eq!(record.votes, 2);
    assert_eq!(
        chain.deployer.vote_of(1, killed_address).await.unwrap(),
        None
    );

    // It restarts from its data dir (same keys, same registration) and takes part in
    // epoch 2: it votes for the summary that executes.
    let listen: libp2p::Multiaddr = "/ip4/127.0.0.1/tcp/0".parse().unwrap();
    let mut config =
        NodeConfig::new(Role::Validator, net.dirs[2].path().to_path_buf(), listen).unwrap();
    config.bootstrap = net.validators.iter().map(|v| v.addr()).collect();
    let mut cc = ChainConfig::new(endpoint, deployment);
    cc.grace = Duration::from_millis(500);
    cc.gas_log = gas_log;
    config.chain = Some(cc);
    net.validators.push(start_node(config, None).await.unwrap());
    let chain = net.chain.as_ref().unwrap();
    assert_eq!(chain.validators[2], killed_address);
    tokio::time::sleep(Duration::from_secs(2)).await; // gossip mesh
                                                      // Jobs through the validators the workers know.
    let mut fuel = BTreeMap::new();
    for v in &net.validators[..2] {
        let session = UserSession::connect(v.addr()).await.unwrap();
        let job = JobRequestSpec {
            sample_ppm: 0,
            module: smartnodes_examples::WORDCOUNT.to_vec(),
            inputs: inputs(6, 22),
            limits: JobLimits::default(),
        };
        let report = session
            .run_job(&job, Duration::from_secs(60), |_, _| {})
            .await
            .unwrap();
        for t in &report.tasks {
            *fuel.entry(t.worker).or_default() += u128::from(t.receipt.body.fuel_used);
        }
        session.close().await;
    }
    run_epoch(&net, 2).await;
    let record = chain.deployer.epoch_record(2).await.unwrap();
    // It followed the chain: it counted epoch 2 with the executed content (the same batches
    // as the others), so it does not count them again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let counted = |v: usize| {
        net.validators[v]
            .epochs
            .as_ref()
            .unwrap()
            .executed()
            .get(&2)
            .cloned()
    };
    while counted(0).is_none() || counted(2).is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the restarted validator did not count epoch 2"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(counted(2).and_then(|c| c.hash()), Some(record.summary_hash));
    assert_eq!(counted(2), counted(0), "the same batches, counted once");
    // Every worker got exactly its shares of both epochs (those of epoch 2 once epoch 3
    // executed).
    run_epoch(&net, 3).await;
    let mut want = shares(&net, 1, &fuel1).await;
    for (a, v) in shares(&net, 2, &fuel).await {
        *want.entry(a).or_default() += v;
    }
    wait_balances(&net, &want).await;
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_embedded_clock_epochs_follow_on_their_own() {
    init_logging();
    let _turn = turn().await; // embedded, but timing-sensitive: not beside the others
    let mut setup = ChainSetup::embedded(3);
    setup.clock = true;
    let net = Network::start(NetworkConfig {
        validators: 2,
        workers: 2,
        chain: Some(setup),
        ..NetworkConfig::default()
    })
    .await
    .unwrap();
    let chain = net.chain.as_ref().unwrap();
    run_jobs(&net, 4, 31).await;
    // Nobody moves time by hand: two epochs execute within a few seconds.
    assert!(chain.wait_executed(2, Duration::from_secs(60)).await);
    let report = net.chain_report().await.unwrap().unwrap();
    assert!(report.epochs.len() >= 2);
    assert!(report.minted >= chain.params.emission_at(1) + chain.params.emission_at(2));
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_job_releases_its_escrow_into_the_next_pot() {
    use smartnodes_contracts::{sno, B256};
    init_logging();
    let _turn = turn().await;
    let net = start(NetworkConfig {
        validators: 2,
        workers: 2,
        chain: Some(chain_setup()),
        ..NetworkConfig::default()
    })
    .await;
    let chain = net.chain.as_ref().unwrap();
    // A registered user escrows 100 SNO for its job (after submitting it: its id is known
    // then), in epoch 1.
    // The user submits with its own key: the job's owner is the account that escrows it.
    let identity = smartnodes::identity::Identity::ephemeral();
    let user = chain.bank.with_signer(identity.eth_signer());
    chain
        .bank
        .send_eth(user.account(), U256::from(10u64).pow(U256::from(18u64)))
        .await
        .unwrap();
    chain.bank.transfer(user.account(), sno(200)).await.unwrap();
    user.register_user(chain.params.min_user_collateral)
        .await
        .unwrap();
    let session = UserSession::connect_as(net.validators[0].addr(), identity)
        .await
        .unwrap();
    let job = JobRequestSpec {
        sample_ppm: 0,
        module: smartnodes_examples::WORDCOUNT.to_vec(),
        inputs: inputs(6, 41),
        limits: JobLimits::default(),
    };
    let report = session
        .run_job(&job, Duration::from_secs(60), |_, _| {})
        .await
        .unwrap();
    session.close().await;
    let deadline = chain.deployer.timestamp().await.unwrap() + 100_000;
    user.request_job(B256::from(report.job_id), sno(100), deadline)
        .await
        .unwrap();
    assert_eq!(chain.deployer.total_escrowed().await.unwrap(), sno(100));

    // Epoch 1 counts the work; the escrow, requested during epoch 1, is not eligible yet.
    let mut fuel1 = BTreeMap::new();
    for t in &report.tasks {
        *fuel1.entry(t.worker).or_default() += u128::from(t.receipt.body.fuel_used);
    }
    run_epoch(&net, 1).await;
    let r1 = chain.deployer.epoch_record(1).await.unwrap();
    assert_eq!(r1.released_payments, U256::ZERO);
    let mut want = shares(&net, 1, &fuel1).await;

    // Epoch 2 releases it (once), and workers share emission + payment by epoch 2's fuel.
    let fuel2 = run_jobs(&net, 6, 42).await;
    run_epoch(&net, 2).await;
    let r2 = chain.deployer.epoch_record(2).await.unwrap();
    assert_eq!(r2.released_payments, sno(100));
    assert_ne!(r2.job_results_root, B256::ZERO);
    assert_eq!(chain.deployer.total_escrowed().await.unwrap(), U256::ZERO);
    // Epoch 1's rewards are claimable now, epoch 2's once epoch 3 executed.
    wait_balances(&net, &want).await;
    for (a, v) in shares_with(&net, 2, &fuel2, sno(100)).await {
        *want.entry(a).or_default() += v;
    }
    run_epoch(&net, 3).await;
    wait_balances(&net, &want).await;
    assert_eq!(
        chain
            .deployer
            .epoch_record(3)
            .await
            .unwrap()
            .released_payments,
        U256::ZERO,
        "released once"
    );
    net.stop().await;
}

/// A child process killed and reaped when dropped.
struct Proc(std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn smartnodes(args: &[&str]) -> std::process::Output {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_smartnodes"))
        .args(args)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "smartnodes {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Starts `smartnodes node` and returns it with its first listen address.
fn spawn_node(args: &[&str]) -> (Proc, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_smartnodes"))
        .arg("node")
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("spawns");
    let stdout = child.stdout.take().expect("piped");
    let proc = Proc(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(addr) = line.strip_prefix("listening on ") {
                let _ = tx.send(addr.to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the node listens");
    (proc, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a JSON-RPC chain in SMARTNODES_TEST_RPC_URL (contracts/scripts/test-both.sh runs it against anvil)"]
async fn separate_processes_on_json_rpc_register_run_an_epoch_and_claim() {
    use smartnodes::identity::Identity;
    use smartnodes_contracts::{Chain, Endpoint};
    init_logging();
    let _turn = TURNS.lock().await;
    let url = std::env::var("SMARTNODES_TEST_RPC_URL").expect("SMARTNODES_TEST_RPC_URL");
    let key = std::env::var("SMARTNODES_TEST_RPC_KEY").unwrap_or_else(|_| {
        "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80".into()
    });
    let tmp = tempfile::tempdir().unwrap();
    let key_file = tmp.path().join("deployer.key");
    std::fs::write(&key_file, &key).unwrap();
    let deployment = tmp.path().join("deployment.json");
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    smartnodes(&[
        "chain",
        "deploy",
        "--rpc-url",
        &url,
        "--key-file",
        &s(&key_file),
        "--out",
        &s(&deployment),
        "--epoch-secs",
        "30",
        "--vesting-epochs",
        "1",
    ]);

    // One validator, two workers, each in its own process and data dir.
    let dirs: Vec<_> = (0..3)
        .map(|i| tmp.path().join(format!("node{i}")))
        .collect();
    let ids: Vec<Identity> = dirs
        .iter()
        .map(|d| Identity::load_or_create(d).unwrap())
        .collect();
    for (i, id) in ids.iter().enumerate() {
        // The validator's collateral (1,000 SNO), each worker's stake (500 SNO): what a
        // worker holds later is what it claimed.
        let sno = if i == 0 { "1000" } else { "500" };
        smartnodes(&[
            "chain",
            "fund",
            "--rpc-url",
            &url,
            "--deployment",
            &s(&deployment),
            "--key-file",
            &s(&key_file),
            "--sno",
            sno,
            &id.eth_address_hex(),
        ]);
    }
    let chain_args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["--rpc-url", url.as_str(), "--deployment"]
            .iter()
            .map(|x| x.to_string())
            .collect();
        v.push(s(&deployment));
        v.extend(extra.iter().map(|x| x.to_string()));
        v
    };
    let listen = "/ip4/127.0.0.1/tcp/0";
    let mut args = vec![
        "--role".to_string(),
        "validator".into(),
        "--data-dir".into(),
        s(&dirs[0]),
    ];
    args.extend(chain_args(&["--listen", listen]));
    let (_validator, vaddr) = spawn_node(&args.iter().map(|x| x.as_str()).collect::<Vec<_>>());
    let mut workers = Vec::new();
    for d in &dirs[1..] {
        let mut args = vec![
            "--role".to_string(),
            "worker".into(),
            "--data-dir".into(),
            s(d),
        ];
        args.extend(chain_args(&[
            "--listen",
            listen,
            "--bootstrap",
            &vaddr,
            "--lease",
            "1.5",
        ]));
        if d == &dirs[2] {
            args.push("--no-claim".into()); // claims with `smartnodes claim` below
        }
        workers.push(spawn_node(
            &args.iter().map(|x| x.as_str()).collect::<Vec<_>>(),
        ));
    }

    // A job, then the epoch opens; the validator alone is a strict majority of one.
    let session = UserSession::connect(vaddr.parse().unwrap()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !matches!(session.status(None).await, Ok(smartnodes::net::proto::JobResponse::Status { ref workers, .. }) if workers.len() == 2)
    {
        assert!(tokio::time::Instant::now() < deadline, "workers registered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let job = JobRequestSpec {
        sample_ppm: 0,
        module: smartnodes_examples::WORDCOUNT.to_vec(),
        inputs: inputs(10, 99),
        limits: JobLimits::default(),
    };
    let report = session
        .run_job(&job, Duration::from_secs(60), |_, _| {})
        .await
        .unwrap();
    session.close().await;
    let deployer = Chain::connect(
        &Endpoint::Rpc(url.clone()),
        key.parse().unwrap(),
        smartnodes::commands::chain::read_deployment(&deployment).unwrap(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let next_epoch = |epoch: u64| {
        let deployer = &deployer;
        async move {
            let info = deployer.round_info().await.unwrap();
            let now = deployer.timestamp().await.unwrap();
            deployer
                .advance_time(info.proposals_open_at.saturating_sub(now) + 1)
                .await
                .unwrap();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while deployer.current_epoch().await.unwrap() <= epoch {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "epoch {epoch} executed"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    next_epoch(1).await;
    let mut claim_args = vec![
        "claim".to_string(),
        "--validator".into(),
        vaddr.clone(),
        "--data-dir".into(),
        s(&dirs[2]),
    ];
    claim_args.extend(chain_args(&[]));
    let claim = || {
        let out = smartnodes(&claim_args.iter().map(|x| x.as_str()).collect::<Vec<_>>());
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let second: Address = ids[2].eth_address_hex().parse().unwrap();
    let second_worked = report.tasks.iter().any(|t| t.worker == ids[2].peer_id());
    // Epoch 1's rewards are claimable once epoch 2 executed: until then `smartnodes
    // claim` lists them as pending (once the validator serves the executed summary).
    // Polls `smartnodes claim` (20 s at most) until it prints `text`.
    let claim_says = |text: &'static str, what: &'static str| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while second_worked && !claim().contains(text) {
            assert!(tokio::time::Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    claim_says(
        "claimable once epoch 2 has executed",
        "`smartnodes claim` listed the pending reward",
    )
    .await;
    assert_eq!(deployer.token_balance(second).await.unwrap(), U256::ZERO);
    next_epoch(2).await;

    // Workers claimed their shares by fuel: the first by itself, the second (--no-claim)
    // with `smartnodes claim`.
    let params = deployer.params().await.unwrap();
    let cap = params.emission_at(1) * U256::from(params.worker_bps) / U256::from(10_000);
    let mut fuel: BTreeMap<PeerId, u128> = BTreeMap::new();
    for t in &report.tasks {
        *fuel.entry(t.worker).or_default() += u128::from(t.receipt.body.fuel_used);
    }
    let total: u128 = fuel.values().sum();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(deployer.token_balance(second).await.unwrap(), U256::ZERO);
    claim_says("claimed epoch 1", "`smartnodes claim` claimed").await;
    for id in &ids[1..] {
        let want =
            cap * U256::from(fuel.get(&id.peer_id()).copied().unwrap_or(0)) / U256::from(total);
        let address: Address = id.eth_address_hex().parse().unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while deployer.token_balance(address).await.unwrap() != want {
            assert!(
                tokio::time::Instant::now() < deadline,
                "worker {address} claimed {want}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // `status` shows the executed epoch, the rewarded workers and nothing left to claim
    // (once the validator has counted the execution, a tick after it).
    let status_args: Vec<String> = ["status", "--json", "--validator", vaddr.as_str()]
        .into_iter()
        .map(String::from)
        .chain(chain_args(&[]))
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        let out = smartnodes(&status_args.iter().map(|x| x.as_str()).collect::<Vec<_>>());
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let workers_listed = status["chain"]["nodes"]
            .as_array()
            .is_some_and(|n| n.iter().filter(|n| n["role"] == "worker").count() == 2);
        if workers_listed || tokio::time::Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(status["chain"]["current_epoch"], 3);
    assert_eq!(status["chain"]["last_executed"]["epoch"], 2);
    let nodes = status["chain"]["nodes"].as_array().unwrap();
    assert_eq!(
        nodes.iter().filter(|n| n["role"] == "worker").count(),
        2,
        "{status}"
    );
    assert!(nodes.iter().all(|n| n["claimable"] == "0"), "{nodes:?}");
    drop(workers);
}

/// `smartnodes economics --rpc-url --deployment` reads a deployment's parameters, not the
/// defaults: a deployment with a 1 SNO worker stake and one epoch of vesting lets inflated
/// fuel pay (the defaults show loss > gain on every row), and the table says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a JSON-RPC chain in SMARTNODES_TEST_RPC_URL (contracts/scripts/test-both.sh runs it against anvil)"]
async fn economics_reads_a_deployments_parameters() {
    use smartnodes_contracts::{sno, Chain, Endpoint, Params};
    let _turn = TURNS.lock().await;
    let url = std::env::var("SMARTNODES_TEST_RPC_URL").expect("SMARTNODES_TEST_RPC_URL");
    let key = std::env::var("SMARTNODES_TEST_RPC_KEY").unwrap_or_else(|_| {
        "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80".into()
    });
    let signer: PrivateKeySigner = key.parse().unwrap();
    let mut params = Params::new(signer.address());
    params.min_worker_collateral = sno(1);
    params.vesting_epochs = 1;
    let chain = Chain::deploy(&Endpoint::Rpc(url.clone()), signer, &params, &[])
        .await
        .unwrap();
    let d = chain.deployment();
    let tmp = tempfile::tempdir().unwrap();
    let deployment = tmp.path().join("deployment.json");
    std::fs::write(
        &deployment,
        serde_json::json!({ "core": d.core.to_string(), "token": d.token.to_string() }).to_string(),
    )
    .unwrap();
    let rows = |extra: &[&str]| -> Vec<serde_json::Value> {
        let mut args = vec!["economics", "--json"];
        args.extend(extra);
        let out = smartnodes(&args);
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    };
    let pays = |r: &serde_json::Value| r["gain_sno"].as_f64() >= r["loss_sno"].as_f64();
    let defaults = rows(&[]);
    assert!(!defaults.iter().any(pays), "{defaults:?}");
    let deployed = rows(&[
        "--rpc-url",
        &url,
        "--deployment",
        deployment.to_str().unwrap(),
    ]);
    assert_eq!(deployed.len(), defaults.len());
    let fuel50 = deployed
        .iter()
        .find(|r| r["strategy"] == "fuel inflated x50")
        .unwrap();
    assert!(pays(fuel50), "{fuel50}");
    // Caught at 5 % per result over 100 results: 1 SNO stake + one epoch's 85 SNO unvested.
    let p = fuel50["p_caught"].as_f64().unwrap();
    assert!((fuel50["loss_sno"].as_f64().unwrap() - p * 86.0).abs() < 1e-6);
    let text = smartnodes(&[
        "economics",
        "--rpc-url",
        &url,
        "--deployment",
        deployment.to_str().unwrap(),
    ]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("stake 1 SNO, vesting 1 epochs"), "{text}");
    assert!(text.contains("PAYS"), "{text}");
}
