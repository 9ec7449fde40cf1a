//! The regression tests of issue 16 (findings.rs on branch `contract`), ported to the
//! contract and client API as they were before issue 16 (commit 13f4a59): the same
//! scenario, the same expectations. Each expectation the old contract breaks is recorded;
//! each test panics at its end listing them. A test that records nothing would test nothing.

use smartnodes_contracts::{
    keccak256, sno, Address, BlacklistEntry, Chain, EpochSummary, Error, JobResult,
    JobResultsTree, JobState, Params, PrivateKeySigner, RewardTree, Role, TxReceipt, B256, U256,
};

use crate::common::{key_hash, test_params, Net};

#[derive(Default)]
struct Misses(Vec<String>);

impl Misses {
    /// Expect a revert named `name`; record what happened instead.
    fn refused<T: std::fmt::Debug>(
        &mut self,
        what: &str,
        r: smartnodes_contracts::Result<T>,
        name: &str,
    ) -> bool {
        match r {
            Err(ref e @ Error::Revert(_)) if e.revert_name() == Some(name) => true,
            Err(e) => {
                self.0
                    .push(format!("{what}: expected revert {name}, got {e}"));
                false
            }
            Ok(_) => {
                self.0
                    .push(format!("{what}: expected revert {name}, but it succeeded"));
                false
            }
        }
    }
    fn check(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.0.push(what.into());
        }
    }
    fn finish(self) {
        assert!(
            self.0.is_empty(),
            "FAILS ON THE OLD CONTRACT:\n  - {}",
            self.0.join("\n  - ")
        );
    }
}

async fn fresh_account(net: &Net, amount: u64) -> Chain {
    let c = net.deployer.with_signer(PrivateKeySigner::random());
    if net.deployer.backend_name() == "json-rpc" {
        net.deployer
            .send_eth(c.account(), U256::from(10u128.pow(18)))
            .await
            .unwrap();
    }
    net.outsider.transfer(c.account(), sno(amount)).await.unwrap();
    c
}

async fn push_summary(
    net: &Net,
    proposers: &[&Chain],
    voters: &[&Chain],
    s: &EpochSummary,
) -> smartnodes_contracts::Result<TxReceipt> {
    net.open_proposals().await;
    let mut drawn = None;
    for _ in 0..100 {
        let info = net.deployer.round_info().await?;
        if let Some(p) = proposers
            .iter()
            .find(|c| info.proposers.contains(&c.account()))
        {
            drawn = Some(*p);
            break;
        }
        net.deployer.advance_time(net.params.round_duration).await?;
    }
    let proposer = drawn.expect("drawn");
    proposer.propose(s).await?;
    for v in voters {
        if v.account() != proposer.account() {
            v.vote(s.epoch, s.hash()).await?;
        }
    }
    proposer.execute(s).await
}

#[tokio::test]
async fn the_same_node_key_from_a_second_account_is_refused() {
    let mut m = Misses::default();
    let net = Net::new(1, 0, 1).await;
    let cheat = &net.workers[0];
    let again = fresh_account(&net, 10_000).await;
    m.refused(
        "a second account registers the cheater's node key",
        again.register_worker(key_hash(cheat)).await,
        "BadNodeKey",
    );
    // Blacklist the cheater: the node key is registered under `again` and works on.
    net.run_epoch(&EpochSummary {
        blacklist: vec![BlacklistEntry {
            worker: cheat.account(),
            evidence: keccak256(b"proof"),
        }],
        ..EpochSummary::empty(1)
    })
    .await;
    let r = net
        .deployer
        .registration(Role::Worker, again.account())
        .await
        .unwrap();
    m.check(
        !(r.active && r.node_key_hash == key_hash(cheat)),
        "after the cheater is blacklisted, its node key stays registered and active under the second account",
    );
    m.finish();
}

#[tokio::test]
async fn four_sybils_cannot_take_over_an_epoch() {
    let mut m = Misses::default();
    let net = Net::new(3, 1, 0).await;
    net.run_epoch(&EpochSummary::empty(1)).await;
    let user = &net.users[0];
    let deadline = user.timestamp().await.unwrap() + 100_000;
    let id = B256::repeat_byte(0x5A);
    m.refused(
        "an escrow of 3,001 SNO against 3,000 SNO of active stake",
        user.request_job(B256::repeat_byte(0x5B), sno(3_001), deadline)
            .await,
        "EscrowCapReached",
    );
    user.request_job(id, sno(2_000), deadline).await.unwrap();
    let escrow_before = net.deployer.total_escrowed().await.unwrap();

    let stake = net.params.min_validator_collateral;
    let mut sybils = vec![];
    for _ in 0..4 {
        sybils.push(fresh_account(&net, 10_000).await);
    }
    sybils[0]
        .register_validator(key_hash(&sybils[0]), stake)
        .await
        .unwrap();
    for (i, s) in sybils[1..].iter().enumerate() {
        m.refused(
            &format!("Sybil {} joins in the same epoch", i + 2),
            s.register_validator(key_hash(s), stake).await,
            "JoinLimitReached",
        );
    }
    let theft = EpochSummary {
        released_payments: sno(2_000),
        remove_validators: net.validators.iter().map(|v| v.account()).collect(),
        ..EpochSummary::empty(2)
    };
    let sybil_refs: Vec<&Chain> = sybils.iter().collect();
    let stole = push_summary(&net, &sybil_refs, &sybil_refs, &theft).await;
    m.check(
        stole.is_err(),
        "the four Sybils registered this epoch propose, vote and execute the theft summary at once (4 of 7 seats)",
    );
    m.check(
        net.deployer.total_escrowed().await.unwrap() == escrow_before,
        format!(
            "the user's 2,000 SNO escrow left escrow (escrowed {} -> {})",
            escrow_before,
            net.deployer.total_escrowed().await.unwrap()
        ),
    );
    m.check(
        net.is_validator(net.validators[0].account()).await,
        "the honest validators were removed by the Sybils' summary",
    );
    // The Sybils leave with their whole collateral after the unlock delay.
    let mut refunded = 0;
    for s in &sybils {
        if s.request_unlock(Role::Validator).await.is_ok() {
            net.deployer
                .advance_time(net.params.unlock_delay + 1)
                .await
                .unwrap();
            let before = net.balance(s.account()).await;
            if s.withdraw_collateral(Role::Validator).await.is_ok()
                && net.balance(s.account()).await == before + stake
            {
                refunded += 1;
            }
        }
    }
    m.check(
        refunded == 0,
        format!("{refunded} Sybils withdrew their full collateral after the theft"),
    );
    m.finish();
}

#[tokio::test]
async fn idle_sybil_seats_no_longer_stall() {
    let mut m = Misses::default();
    let net = Net::new(3, 0, 0).await;
    net.run_epoch(&EpochSummary::empty(1)).await;
    let stake = net.params.min_validator_collateral;
    for _ in 0..3 {
        let s = fresh_account(&net, 10_000).await;
        s.register_validator(key_hash(&s), stake).await.unwrap();
    }
    let honest: Vec<&Chain> = net.validators.iter().collect();
    // There is no dropIdle: wait as long as the new contract's idle timeout (50,000 s in
    // its test params) plus a day, and the three honest validators still cannot execute.
    net.deployer.advance_time(50_000 + 86_400).await.unwrap();
    let r = push_summary(&net, &honest, &honest, &EpochSummary::empty(2)).await;
    m.check(
        r.is_ok(),
        format!("three idle seats stall the honest three forever (no way to drop them): {r:?}"),
    );
    m.finish();
}

#[tokio::test]
async fn a_released_job_cannot_be_refunded() {
    let mut m = Misses::default();
    let net = Net::new(1, 2, 0).await;
    let (alice, bob) = (&net.users[0], &net.users[1]);
    let deadline = alice.timestamp().await.unwrap() + 100_000;
    let id = B256::repeat_byte(0xA1);
    alice.request_job(id, sno(100), deadline).await.unwrap();
    bob.request_job(B256::repeat_byte(0xB1), sno(100), deadline)
        .await
        .unwrap();
    net.run_epoch(&EpochSummary {
        job_results_root: JobResultsTree::new(1, [(id, JobResult::Completed)]).root(),
        released_payments: sno(100),
        ..EpochSummary::empty(1)
    })
    .await;
    let failed = JobResultsTree::new(2, [(id, JobResult::Failed)]);
    net.run_epoch(&EpochSummary {
        job_results_root: failed.root(),
        ..EpochSummary::empty(2)
    })
    .await;
    let (r, proof) = failed.proof(&id).unwrap();
    m.refused(
        "alice's released job refunded as failed",
        alice.refund_job(id, 2, r, proof).await,
        "JobNotEscrowed",
    );
    m.check(
        net.deployer.total_escrowed().await.unwrap() == sno(100),
        format!(
            "bob's 100 SNO escrow paid alice's second exit (total escrowed {})",
            net.deployer.total_escrowed().await.unwrap()
        ),
    );
    m.check(
        net.deployer.job(id).await.unwrap().state != JobState::Refunded,
        "the released job's state is Refunded",
    );
    m.finish();
}

#[tokio::test]
async fn a_refund_needs_a_result_from_the_request_epoch_or_later() {
    let mut m = Misses::default();
    let net = Net::new(1, 1, 0).await;
    let user = &net.users[0];
    let id = B256::repeat_byte(0x0D);
    let stale = JobResultsTree::new(1, [(id, JobResult::Failed)]);
    net.run_epoch(&EpochSummary {
        job_results_root: stale.root(),
        ..EpochSummary::empty(1)
    })
    .await;
    let deadline = user.timestamp().await.unwrap() + 100_000;
    user.request_job(id, sno(50), deadline).await.unwrap();
    let (r, proof) = stale.proof(&id).unwrap();
    m.refused(
        "a job requested in epoch 2 refunded with epoch 1's result",
        user.refund_job(id, 1, r, proof).await,
        "ResultBeforeRequest",
    );
    m.finish();
}

#[tokio::test]
async fn a_front_run_job_id_does_not_block_the_user() {
    let mut m = Misses::default();
    let net = Net::new(1, 2, 0).await;
    let (user, attacker) = (&net.users[0], &net.users[1]);
    let id = B256::repeat_byte(0x1D);
    let deadline = user.timestamp().await.unwrap() + 100_000;
    attacker
        .request_job(id, U256::from(1), deadline)
        .await
        .unwrap();
    let r = user.request_job(id, sno(70), deadline).await;
    m.check(
        r.is_ok(),
        format!("the attacker's 1-wei request of the same id blocks the user's: {r:?}"),
    );
    let j = net.deployer.job(id).await.unwrap();
    m.check(
        (j.user, j.payment) == (user.account(), sno(70)),
        format!("the id belongs to {} with {} wei", j.user, j.payment),
    );
    m.finish();
}

#[tokio::test]
async fn an_unreported_job_is_reclaimed_after_its_deadline_and_grace() {
    let mut m = Misses::default();
    let net = Net::new(1, 1, 0).await;
    let user = &net.users[0];
    let now = user.timestamp().await.unwrap();
    let lost = B256::repeat_byte(0x10);
    user.request_job(lost, sno(40), now + 500).await.unwrap();
    // Past the deadline and the new contract's grace (1,000 s in its test params), and
    // then a year: the contract has no reclaimJob; the only exit is a refund proven by an
    // executed epoch's results, which nobody reported.
    net.deployer
        .advance_time(500 + 1_000 + 1 + 365 * 86_400)
        .await
        .unwrap();
    for epoch in 1..=3 {
        net.run_epoch(&EpochSummary::empty(epoch)).await;
    }
    let before = net.balance(user.account()).await;
    let tree = JobResultsTree::new(3, [(lost, JobResult::Expired)]);
    let (r, proof) = tree.proof(&lost).unwrap();
    let refunded = user.refund_job(lost, 3, r, proof).await;
    m.check(
        refunded.is_ok() && net.balance(user.account()).await == before + sno(40),
        format!("the user cannot get the escrow of a job nobody reported back: {refunded:?}"),
    );
    m.check(
        net.deployer.total_escrowed().await.unwrap() == U256::ZERO,
        "the 40 SNO stay escrowed for ever",
    );
    m.finish();
}

#[tokio::test]
async fn a_fraud_proof_slashes_exactly_the_configured_shares() {
    let mut m = Misses::default();
    let net = Net::new(3, 0, 3).await;
    let (cheat, leaver) = (&net.workers[0], &net.workers[1]);
    leaver.request_unlock(Role::Worker).await.unwrap();
    let s = EpochSummary {
        blacklist: vec![
            BlacklistEntry {
                worker: cheat.account(),
                evidence: keccak256(b"proof 1"),
            },
            BlacklistEntry {
                worker: leaver.account(),
                evidence: keccak256(b"proof 2"),
            },
        ],
        ..EpochSummary::empty(1)
    };
    let cheat_before = net.balance(cheat.account()).await;
    let treasury_before = net.balance(net.treasury).await;
    net.run_epoch(&s).await;
    let record = net.deployer.epoch_record(1).await.unwrap();
    let votes = U256::from(record.votes);
    let pot = record.emission;
    let per_voter_pay = pot * U256::from(net.params.validator_bps) / U256::from(10_000) / votes;
    let treasury_pay = pot - per_voter_pay * votes;
    // The new contract: 500 SNO worker stake, 30 % of it to the two voters, 700 SNO of
    // the two stakes to the treasury.
    let got = net.balance(net.treasury).await - treasury_before;
    m.check(
        got == treasury_pay + sno(700),
        format!(
            "the treasury got {got} (pay only), not pay + 700 SNO of slashed stake: workers stake nothing"
        ),
    );
    m.check(
        net.balance(cheat.account()).await < cheat_before,
        "the caught cheater lost no SNO",
    );
    m.finish();
}

#[tokio::test]
async fn vesting_forfeits_exactly_what_had_not_vested() {
    let mut m = Misses::default();
    let net = Net::new(1, 0, 2).await;
    let (cheat, honest) = (&net.workers[0], &net.workers[1]);
    let mut trees = vec![];
    for epoch in 1..=4u64 {
        let tree = RewardTree::new(
            epoch,
            [
                (cheat.account(), sno(10 * epoch)),
                (honest.account(), sno(1)),
            ],
        )
        .unwrap();
        net.run_epoch(&EpochSummary {
            worker_reward_root: tree.root(),
            worker_reward_total: tree.total(),
            ..EpochSummary::empty(epoch)
        })
        .await;
        trees.push(tree);
    }
    // W = 3: before epoch 5 executes, only epoch 1 has vested (with epoch 4).
    let before = net.balance(cheat.account()).await;
    let (a, p) = trees[0].proof(&cheat.account()).unwrap();
    cheat.claim(1, a, p).await.unwrap();
    for epoch in 2..=3u64 {
        let (a, p) = trees[epoch as usize - 1].proof(&cheat.account()).unwrap();
        m.refused(
            &format!("the cheat claims epoch {epoch} before it vested"),
            cheat.claim(epoch, a, p).await,
            "NotVested",
        );
    }
    net.run_epoch(&EpochSummary {
        blacklist: vec![BlacklistEntry {
            worker: cheat.account(),
            evidence: keccak256(b"caught in epoch 5"),
        }],
        ..EpochSummary::empty(5)
    })
    .await;
    for epoch in 2..=4u64 {
        let (a, p) = trees[epoch as usize - 1].proof(&cheat.account()).unwrap();
        let _ = cheat.claim(epoch, a, p).await;
    }
    // Kept: epoch 1 (10 SNO); forfeited: exactly epochs 2, 3 and 4 (90 SNO).
    let kept = net.balance(cheat.account()).await - before;
    m.check(
        kept == sno(10),
        format!("the cheat caught in epoch 5 kept {kept} wei, not 10 SNO: the vesting window is one epoch"),
    );
    m.finish();
}

#[tokio::test]
async fn every_parameter_is_bounded() {
    let mut m = Misses::default();
    const MAX_DURATION: u64 = 10 * 365 * 86_400;
    let max_amount = U256::from(10).pow(U256::from(27));
    type Tweak = Box<dyn Fn(&mut Params)>;
    // The bounds on parameters the old contract has.
    let cases: Vec<(&str, Tweak)> = vec![
        ("epoch_duration = 0", Box::new(|p| p.epoch_duration = 0)),
        (
            "epoch_duration > max",
            Box::new(|p| p.epoch_duration = MAX_DURATION + 1),
        ),
        ("round_duration = 0", Box::new(|p| p.round_duration = 0)),
        (
            "round_duration > max",
            Box::new(|p| p.round_duration = MAX_DURATION + 1),
        ),
        (
            "proposers_per_round = 0",
            Box::new(|p| p.proposers_per_round = 0),
        ),
        (
            "proposers_per_round > max_validators",
            Box::new(|p| {
                p.max_validators = 4;
                p.proposers_per_round = 5;
            }),
        ),
        (
            "threshold below a half",
            Box::new(|p| {
                p.threshold_numerator = 4;
                p.threshold_denominator = 9;
            }),
        ),
        (
            "threshold of one",
            Box::new(|p| {
                p.threshold_numerator = 3;
                p.threshold_denominator = 3;
            }),
        ),
        (
            "threshold_denominator = 0",
            Box::new(|p| {
                p.threshold_numerator = 0;
                p.threshold_denominator = 0;
            }),
        ),
        ("max_validators = 0", Box::new(|p| p.max_validators = 0)),
        ("max_validators > 256", Box::new(|p| p.max_validators = 257)),
        ("unlock_delay = 0", Box::new(|p| p.unlock_delay = 0)),
        (
            "unlock_delay < epoch",
            Box::new(|p| p.unlock_delay = p.epoch_duration - 1),
        ),
        (
            "unlock_delay > max",
            Box::new(|p| p.unlock_delay = MAX_DURATION + 1),
        ),
        (
            "min_validator_collateral = 0",
            Box::new(|p| p.min_validator_collateral = U256::ZERO),
        ),
        (
            "min_validator_collateral > max",
            Box::new(move |p| p.min_validator_collateral = max_amount + U256::from(1)),
        ),
        (
            "min_user_collateral > max",
            Box::new(move |p| p.min_user_collateral = max_amount + U256::from(1)),
        ),
        (
            "initial_emission > max",
            Box::new(move |p| p.initial_emission = max_amount + U256::from(1)),
        ),
        (
            "tail above initial",
            Box::new(|p| p.tail_emission = p.initial_emission + U256::from(1)),
        ),
        ("epochs_per_era = 0", Box::new(|p| p.epochs_per_era = 0)),
        (
            "epochs_per_era > max",
            Box::new(|p| p.epochs_per_era = 1_000_001),
        ),
        ("era_decay_bps > 100 %", Box::new(|p| p.era_decay_bps = 10_001)),
        (
            "shares > 100 %",
            Box::new(|p| {
                p.worker_bps = 9_001;
                p.validator_bps = 1_000;
            }),
        ),
        ("treasury = 0", Box::new(|p| p.treasury = Address::ZERO)),
    ];
    let net = Net::new(0, 0, 0).await;
    let endpoint = net.endpoint();
    let deployer = match crate::common::rpc_url() {
        Some(_) => "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
            .parse::<PrivateKeySigner>()
            .unwrap(),
        None => PrivateKeySigner::random(),
    };
    let mut accepted = vec![];
    for (name, bad) in &cases {
        let mut p = test_params(net.treasury);
        bad(&mut p);
        let r = Chain::deploy(&endpoint, deployer.clone(), &p, &[]).await;
        match r {
            Err(ref e) if e.revert_name() == Some("InvalidParams") => {}
            _ => accepted.push(*name),
        }
    }
    m.check(
        accepted.is_empty(),
        format!("out-of-bounds parameters deploy: {}", accepted.join(", ")),
    );
    // The finding itself: a large initial emission bricks era 1's executions.
    let mut p = test_params(net.treasury);
    p.initial_emission = U256::MAX / U256::from(2);
    p.tail_emission = U256::ZERO;
    if let Ok(chain) = Chain::deploy(&endpoint, deployer.clone(), &p, &[]).await {
        let r = chain.emission_at(3).await;
        m.check(
            false,
            format!("initial_emission = 2^255 deploys; emission_at(3) (era 1) = {r:?}"),
        );
    }
    m.finish();
}
