//! One regression test per finding of the economics review (issue 16): each fails on the
//! contract as it was before stake, slashing, vesting, proven node keys, the stake-weighted
//! validator set and the per-job escrow, and passes now (`scripts/findings-on-old.sh` runs
//! the same scenarios against commit 13f4a59 and requires all ten to fail). Plus the exact
//! arithmetic of slashing and vesting.

use smartnodes_contracts::{
    job_key, keccak256, sno, Address, BlacklistEntry, Chain, EpochSummary, JobResult,
    JobResultsTree, JobState, Params, PrivateKeySigner, RewardTree, Role, B256, U256,
};

use crate::common::{assert_revert, test_params, Net};

/// Propose `s` with whichever of `proposers` is drawn (letting rounds pass until one is),
/// have the others of `voters` vote, and try to execute.
async fn push_summary(
    net: &Net,
    proposers: &[&Chain],
    voters: &[&Chain],
    s: &EpochSummary,
) -> smartnodes_contracts::Result<()> {
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
    let proposer = drawn.expect("one of the proposers is drawn within 100 rounds");
    proposer.propose(s).await?;
    for v in voters {
        if v.account() != proposer.account() {
            v.vote(s.epoch, s.hash()).await?;
        }
    }
    proposer.execute(s).await.map(|_| ())
}

/// Finding: `nodeKeyHash` was neither unique nor proven, so a caught cheater re-registered
/// its node under a new address. Now the node key is the account's own key: another
/// account cannot present it, and each account's registration records its own peer id.
#[tokio::test]
async fn the_same_node_key_from_a_second_account_is_refused() {
    let net = Net::new(1, 0, 1).await;
    let cheat = &net.workers[0];
    let again = net.fresh_account(10_000).await;
    let stake = net.params.min_worker_collateral;
    assert_revert(
        again
            .register_worker_with_key(cheat.node_public_key(), stake)
            .await,
        "BadNodeKey",
    );
    // Nor a key that is nobody's, nor a malformed one.
    let mut bogus = cheat.node_public_key();
    bogus[5] ^= 1;
    assert_revert(
        again.register_worker_with_key(bogus, stake).await,
        "BadNodeKey",
    );
    // The registration records keccak256(peer id) of the account's secp256k1 key.
    let r = net
        .deployer
        .registration(Role::Worker, cheat.account())
        .await
        .unwrap();
    assert_eq!(r.node_key_hash, cheat.node_key_hash());
    assert_eq!(
        r.node_key_hash,
        smartnodes_contracts::node_key_hash_of(&cheat.node_public_key())
    );
    // Its own key works, and gives another hash.
    again.register_worker(stake).await.unwrap();
    assert_ne!(again.node_key_hash(), cheat.node_key_hash());
    // Blacklisted: the account (so its node key) never works as a worker again.
    net.run_epoch(&EpochSummary {
        blacklist: vec![BlacklistEntry {
            worker: cheat.account(),
            evidence: keccak256(b"proof"),
        }],
        ..EpochSummary::empty(1)
    })
    .await;
    assert_revert(cheat.register_worker(stake).await, "AccountBlacklisted");
}

/// Finding: four validators registered during an epoch outvoted three honest ones at once,
/// released a user's escrow to themselves, removed the honest validators and withdrew their
/// collateral a day later. Now a validator registered after genesis votes only from a later
/// epoch, only a bounded stake joins per epoch, and a removed validator loses its stake.
#[tokio::test]
async fn four_sybils_cannot_take_over_an_epoch() {
    let net = Net::with_params(3, 1, 0, |p| p.max_join_bps = 2_000).await;
    net.run_epoch(&EpochSummary::empty(1)).await;
    let user = &net.users[0];
    let deadline = user.timestamp().await.unwrap() + 100_000;
    let id = B256::repeat_byte(0x5A);
    // The escrow cap (here 100 % of the 3,000 SNO active stake) admits 2,000.
    assert_revert(
        user.request_job(id, sno(3_001), deadline).await,
        "EscrowCapReached",
    );
    user.request_job(id, sno(2_000), deadline).await.unwrap();
    let key = job_key(user.account(), id);

    let stake = net.params.min_validator_collateral;
    let mut sybils = vec![];
    for _ in 0..4 {
        sybils.push(net.fresh_account(10_000).await);
    }
    // At most max(20 % of the 3,000 active, one minimum collateral) joins per epoch.
    sybils[0].register_validator(stake).await.unwrap();
    for s in &sybils[1..] {
        assert_revert(s.register_validator(stake).await, "JoinLimitReached");
    }
    assert_eq!(net.deployer.pending_validators().await.unwrap().len(), 1);
    assert_eq!(
        net.deployer.active_stake().await.unwrap(),
        stake * U256::from(3)
    );

    // The takeover summary: the user's escrow released, the honest validators removed.
    let theft = EpochSummary {
        released_payments: sno(2_000),
        released_jobs: vec![key],
        remove_validators: net.validators.iter().map(|v| v.account()).collect(),
        ..EpochSummary::empty(2)
    };
    net.open_proposals().await;
    // The pending Sybil neither proposes nor votes this epoch.
    assert_revert(sybils[0].propose(&theft).await, "NotValidator");
    assert_revert(sybils[0].vote(2, theft.hash()).await, "NotValidator");
    // The honest epoch executes; the escrow is intact.
    net.run_epoch(&EpochSummary::empty(2)).await;
    assert_eq!(
        net.deployer.job(key).await.unwrap().state,
        JobState::Escrowed
    );
    assert_eq!(net.deployer.total_escrowed().await.unwrap(), sno(2_000));

    // Active from epoch 3, the Sybil holds 1 of 4 shares: voting for the theft gets it
    // nothing but removal, and removal costs its whole stake (to the treasury).
    assert!(net.is_validator(sybils[0].account()).await);
    let sybil_refs = [&sybils[0]];
    let theft3 = EpochSummary {
        epoch: 3,
        ..theft.clone()
    };
    assert_revert(
        push_summary(&net, &sybil_refs, &sybil_refs, &theft3).await,
        "ThresholdNotReached",
    );
    let treasury_before = net.balance(net.treasury).await;
    let honest: Vec<&Chain> = net.validators.iter().collect();
    let punish = EpochSummary {
        remove_validators: vec![sybils[0].account()],
        ..EpochSummary::empty(3)
    };
    // The honest validators move their votes in a later round than the Sybil's vote.
    net.deployer
        .advance_time(net.params.round_duration)
        .await
        .unwrap();
    push_summary(&net, &honest, &honest, &punish).await.unwrap();
    let record = net.deployer.epoch_record(3).await.unwrap();
    assert_eq!(record.summary_hash, punish.hash());
    let treasury_share = net.balance(net.treasury).await - treasury_before;
    assert!(
        treasury_share >= stake,
        "the removed Sybil's stake goes to the treasury"
    );
    assert!(!net.is_validator(sybils[0].account()).await);
    net.deployer
        .advance_time(net.params.unlock_delay + 1)
        .await
        .unwrap();
    assert_revert(
        sybils[0].withdraw_collateral(Role::Validator).await,
        "NothingToWithdraw",
    );
    assert_eq!(net.deployer.total_escrowed().await.unwrap(), sno(2_000));
}

/// Finding: as many idle seats as honest validators stalled every epoch. Now an idle seat
/// is dropped by anyone after `idle_timeout`, and the honest validators execute again.
#[tokio::test]
async fn idle_sybil_seats_no_longer_stall() {
    let net = Net::with_params(3, 0, 0, |p| p.max_join_bps = 10_000).await;
    net.run_epoch(&EpochSummary::empty(1)).await;
    let stake = net.params.min_validator_collateral;
    let mut idle = vec![];
    for _ in 0..3 {
        let s = net.fresh_account(10_000).await;
        s.register_validator(stake).await.unwrap();
        idle.push(s);
    }
    net.run_epoch(&EpochSummary::empty(2)).await;
    assert_eq!(net.deployer.validators().await.unwrap().len(), 6);
    net.deployer
        .advance_time(net.params.idle_timeout + 1)
        .await
        .unwrap();
    let honest: Vec<&Chain> = net.validators.iter().collect();
    let s3 = EpochSummary::empty(3);
    // 3 of 6 equal stakes is not a majority: stalled.
    assert_revert(
        push_summary(&net, &honest, &honest, &s3).await,
        "ThresholdNotReached",
    );
    // The honest validators just voted: they cannot be dropped. The idle seats can.
    assert_revert(
        net.outsider.drop_idle(net.validators[0].account()).await,
        "NotIdle",
    );
    for s in &idle {
        net.outsider.drop_idle(s.account()).await.unwrap();
    }
    assert_eq!(net.deployer.validators().await.unwrap().len(), 3);
    net.validators[0].execute(&s3).await.unwrap();
    assert_eq!(net.deployer.current_epoch().await.unwrap(), 4);
    // A dropped seat is not slashed: its stake unlocks as usual.
    net.deployer
        .advance_time(net.params.unlock_delay)
        .await
        .unwrap();
    let before = net.balance(idle[0].account()).await;
    idle[0].withdraw_collateral(Role::Validator).await.unwrap();
    assert_eq!(net.balance(idle[0].account()).await, before + stake);
}

/// Finding: a job left escrow twice: released as completed, then refunded as failed from
/// another epoch's root, paying the refund out of another user's escrow.
#[tokio::test]
async fn a_released_job_cannot_be_refunded() {
    let net = Net::new(1, 2, 0).await;
    let (alice, bob) = (&net.users[0], &net.users[1]);
    let deadline = alice.timestamp().await.unwrap() + 100_000;
    let id = B256::repeat_byte(0xA1);
    alice.request_job(id, sno(100), deadline).await.unwrap();
    bob.request_job(B256::repeat_byte(0xB1), sno(100), deadline)
        .await
        .unwrap();
    let key = job_key(alice.account(), id);
    net.run_epoch(&EpochSummary {
        job_results_root: JobResultsTree::new(1, [(key, JobResult::Completed)]).root(),
        released_payments: sno(100),
        released_jobs: vec![key],
        ..EpochSummary::empty(1)
    })
    .await;
    let failed = JobResultsTree::new(2, [(key, JobResult::Failed)]);
    net.run_epoch(&EpochSummary {
        job_results_root: failed.root(),
        ..EpochSummary::empty(2)
    })
    .await;
    let (r, proof) = failed.proof(&key).unwrap();
    assert_revert(alice.refund_job(id, 2, r, proof).await, "JobNotEscrowed");
    // Nor listed as released a second time.
    net.open_proposals().await;
    let again = EpochSummary {
        released_payments: sno(100),
        released_jobs: vec![key],
        ..EpochSummary::empty(3)
    };
    assert_revert(net.proposer().await.propose(&again).await, "JobNotEscrowed");
    assert_eq!(net.deployer.total_escrowed().await.unwrap(), sno(100));
    assert_eq!(
        net.deployer.job(key).await.unwrap().state,
        JobState::Released
    );
}

/// Finding: a refund accepted a result from an epoch before the job was requested (a stale
/// root listing the id as failed).
#[tokio::test]
async fn a_refund_needs_a_result_from_the_request_epoch_or_later() {
    let net = Net::new(1, 1, 0).await;
    let user = &net.users[0];
    let id = B256::repeat_byte(0x0D);
    let key = job_key(user.account(), id);
    let stale = JobResultsTree::new(1, [(key, JobResult::Failed)]);
    net.run_epoch(&EpochSummary {
        job_results_root: stale.root(),
        ..EpochSummary::empty(1)
    })
    .await;
    let deadline = user.timestamp().await.unwrap() + 100_000;
    user.request_job(id, sno(50), deadline).await.unwrap();
    assert_eq!(net.deployer.job(key).await.unwrap().requested_in_epoch, 2);
    let (r, proof) = stale.proof(&key).unwrap();
    assert_revert(
        user.refund_job(id, 1, r, proof).await,
        "ResultBeforeRequest",
    );
    // A result of epoch 2 refunds it.
    let fresh = JobResultsTree::new(2, [(key, JobResult::Failed)]);
    net.run_epoch(&EpochSummary {
        job_results_root: fresh.root(),
        ..EpochSummary::empty(2)
    })
    .await;
    let (r, proof) = fresh.proof(&key).unwrap();
    user.refund_job(id, 2, r, proof).await.unwrap();
    assert_eq!(net.deployer.total_escrowed().await.unwrap(), U256::ZERO);
}

/// Finding: job ids were global, so anyone could take a user's id first with 1 wei.
#[tokio::test]
async fn a_front_run_job_id_does_not_block_the_user() {
    let net = Net::new(1, 2, 0).await;
    let (user, attacker) = (&net.users[0], &net.users[1]);
    let id = B256::repeat_byte(0x1D);
    let deadline = user.timestamp().await.unwrap() + 100_000;
    attacker
        .request_job(id, U256::from(1), deadline)
        .await
        .unwrap();
    user.request_job(id, sno(70), deadline).await.unwrap();
    let mine = net.deployer.job(job_key(user.account(), id)).await.unwrap();
    assert_eq!((mine.user, mine.payment), (user.account(), sno(70)));
    let theirs = net
        .deployer
        .job(job_key(attacker.account(), id))
        .await
        .unwrap();
    assert_eq!(theirs.user, attacker.account());
    // Still one job per id per user.
    assert_revert(user.request_job(id, sno(1), deadline).await, "JobExists");
}

/// Finding: a job nobody reported stayed escrowed forever. Now its user reclaims it
/// `job_grace_period` after the deadline; a released job cannot be reclaimed.
#[tokio::test]
async fn an_unreported_job_is_reclaimed_after_its_deadline_and_grace() {
    let net = Net::new(1, 1, 0).await;
    let user = &net.users[0];
    let now = user.timestamp().await.unwrap();
    let (lost, done) = (B256::repeat_byte(0x10), B256::repeat_byte(0x20));
    user.request_job(lost, sno(40), now + 500).await.unwrap();
    user.request_job(done, sno(60), now + 500).await.unwrap();
    let done_key = job_key(user.account(), done);
    net.run_epoch(&EpochSummary {
        released_payments: sno(60),
        released_jobs: vec![done_key],
        ..EpochSummary::empty(1)
    })
    .await;
    assert_revert(user.reclaim_job(lost).await, "ReclaimNotReady");
    let now = user.timestamp().await.unwrap();
    net.deployer
        .advance_time((now + 500 + net.params.job_grace_period + 1).saturating_sub(now))
        .await
        .unwrap();
    let before = net.balance(user.account()).await;
    user.reclaim_job(lost).await.unwrap();
    assert_eq!(net.balance(user.account()).await, before + sno(40));
    assert_revert(user.reclaim_job(lost).await, "JobNotEscrowed");
    assert_revert(user.reclaim_job(done).await, "JobNotEscrowed");
    assert_eq!(net.deployer.total_escrowed().await.unwrap(), U256::ZERO);
}

/// A fraud proof slashes exactly the configured shares: `slash_prover_bps` of the stake
/// split equally between the summary's voters, the rest to the treasury, on top of their
/// normal epoch pay; a worker that asked to unlock before it was caught is slashed too.
#[tokio::test]
async fn a_fraud_proof_slashes_exactly_the_configured_shares() {
    let net = Net::with_params(3, 0, 3, |p| p.slash_prover_bps = 3_000).await;
    let (cheat, leaver, honest) = (&net.workers[0], &net.workers[1], &net.workers[2]);
    let stake = net.params.min_worker_collateral;
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
    let mut before = vec![];
    for v in &net.validators {
        before.push(net.balance(v.account()).await);
    }
    let treasury_before = net.balance(net.treasury).await;
    let core_before = net.balance(net.deployer.deployment().core).await;
    net.run_epoch(&s).await;
    let record = net.deployer.epoch_record(1).await.unwrap();
    let votes = U256::from(record.votes);
    assert_eq!(record.votes, 2, "a strict majority of three equal stakes");
    let pot = record.emission;
    let per_voter_pay = pot * U256::from(net.params.validator_bps) / U256::from(10_000) / votes;
    // 30 % of each 500 SNO stake to the two voters: 75 SNO each per slash.
    let per_voter_slash = stake * U256::from(3_000) / U256::from(10_000) / votes;
    assert_eq!(per_voter_slash, sno(75));
    let proposal = net.deployer.proposal(1, s.hash()).await.unwrap().unwrap();
    for (v, b) in net.validators.iter().zip(&before) {
        let got = net.balance(v.account()).await - *b;
        if proposal.voters.contains(&v.account()) {
            assert_eq!(got, per_voter_pay + per_voter_slash * U256::from(2));
        } else {
            assert_eq!(got, U256::ZERO);
        }
    }
    let treasury_pay = pot - per_voter_pay * votes;
    let treasury_slash = (stake - per_voter_slash * votes) * U256::from(2);
    assert_eq!(treasury_slash, sno(700));
    assert_eq!(
        net.balance(net.treasury).await - treasury_before,
        treasury_pay + treasury_slash
    );
    // Both stakes left the core; the honest worker's is untouched.
    assert_eq!(
        net.balance(net.deployer.deployment().core).await,
        core_before - stake * U256::from(2)
    );
    for w in [cheat, leaver] {
        let r = net
            .deployer
            .registration(Role::Worker, w.account())
            .await
            .unwrap();
        assert_eq!(r.collateral, U256::ZERO);
        assert_revert(
            w.withdraw_collateral(Role::Worker).await,
            "NothingToWithdraw",
        );
    }
    assert_eq!(
        net.deployer
            .registration(Role::Worker, honest.account())
            .await
            .unwrap()
            .collateral,
        stake
    );
}

/// Vesting: with W = 3, a worker credited in epochs 1..=4 and blacklisted by epoch 5's
/// execution keeps epoch 1 (vested with epoch 4) and forfeits exactly epochs 2, 3 and 4;
/// the forfeited amounts are swept to the treasury once the claim window closes.
#[tokio::test]
async fn vesting_forfeits_exactly_what_had_not_vested() {
    let net = Net::with_params(1, 0, 2, |p| {
        p.vesting_epochs = 3;
        p.claim_window_epochs = 2;
    })
    .await;
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
    // Epoch 1 vests with epoch 4's execution: claimable by the honest worker already; the
    // honest worker's epoch 2 not yet.
    let (a, p) = trees[1].proof(&honest.account()).unwrap();
    assert_revert(honest.claim(2, a, p).await, "NotVested");
    net.run_epoch(&EpochSummary {
        blacklist: vec![BlacklistEntry {
            worker: cheat.account(),
            evidence: keccak256(b"caught in epoch 5"),
        }],
        ..EpochSummary::empty(5)
    })
    .await;
    let before = net.balance(cheat.account()).await;
    let (a, p) = trees[0].proof(&cheat.account()).unwrap();
    cheat.claim(1, a, p).await.unwrap();
    assert_eq!(net.balance(cheat.account()).await, before + sno(10));
    for epoch in 2..=4u64 {
        let (a, p) = trees[epoch as usize - 1].proof(&cheat.account()).unwrap();
        assert_revert(cheat.claim(epoch, a, p).await, "Forfeited");
    }
    // The honest worker's epoch 2 vested with epoch 5.
    let (a, p) = trees[1].proof(&honest.account()).unwrap();
    honest.claim(2, a, p).await.unwrap();

    // Sweep: epoch 2's window closes with epoch 2 + 3 + 2 = 7.
    assert_revert(net.outsider.sweep_rewards(2).await, "ClaimWindowOpen");
    for epoch in 6..=7 {
        net.run_epoch(&EpochSummary::empty(epoch)).await;
    }
    let treasury_before = net.balance(net.treasury).await;
    net.outsider.sweep_rewards(2).await.unwrap();
    assert_eq!(
        net.balance(net.treasury).await - treasury_before,
        sno(20),
        "the cheater's forfeited 20 SNO of epoch 2, nothing the honest worker claimed"
    );
    assert_revert(net.outsider.sweep_rewards(2).await, "ClaimWindowClosed");
    // Epoch 3's window is still open for the honest worker, then closed after a sweep.
    let (a, p) = trees[2].proof(&honest.account()).unwrap();
    honest.claim(3, a, p).await.unwrap();
    net.run_epoch(&EpochSummary::empty(8)).await;
    net.outsider.sweep_rewards(3).await.unwrap();
    let (a, p) = trees[3].proof(&honest.account()).unwrap();
    honest.claim(4, a, p).await.unwrap();
    net.run_epoch(&EpochSummary::empty(9)).await;
    net.outsider.sweep_rewards(4).await.unwrap();
    // Epoch 1 (closed with epoch 6): the honest worker never claimed its 1 SNO.
    net.outsider.sweep_rewards(1).await.unwrap();
    let (a, p) = trees[0].proof(&honest.account()).unwrap();
    assert_revert(honest.claim(1, a, p).await, "ClaimWindowClosed");
}

/// Finding: parameters were unchecked (a large emission bricked era 1, `unlock_delay = 0`
/// allowed register-vote-execute-withdraw in one transaction, large durations overflowed).
/// Every bound: one past it is refused, the bound itself deploys.
#[tokio::test]
async fn every_parameter_is_bounded() {
    const MAX_DURATION: u64 = 10 * 365 * 86_400;
    let max_amount = U256::from(10).pow(U256::from(27));
    type Tweak = Box<dyn Fn(&mut Params)>;
    let cases: Vec<(&str, Tweak, Tweak)> = vec![
        (
            "epoch_duration = 0",
            Box::new(|p| p.epoch_duration = 0),
            Box::new(|p| p.epoch_duration = 1),
        ),
        (
            "epoch_duration > max",
            Box::new(|p| {
                p.epoch_duration = MAX_DURATION + 1;
            }),
            Box::new(|p| {
                p.epoch_duration = MAX_DURATION;
                p.unlock_delay = MAX_DURATION;
                p.idle_timeout = MAX_DURATION;
                p.job_grace_period = MAX_DURATION;
            }),
        ),
        (
            "round_duration = 0",
            Box::new(|p| p.round_duration = 0),
            Box::new(|p| p.round_duration = 1),
        ),
        (
            "round_duration > max",
            Box::new(|p| p.round_duration = MAX_DURATION + 1),
            Box::new(|p| p.round_duration = MAX_DURATION),
        ),
        (
            "proposers_per_round = 0",
            Box::new(|p| p.proposers_per_round = 0),
            Box::new(|p| p.proposers_per_round = 1),
        ),
        (
            "proposers_per_round > max_validators",
            Box::new(|p| {
                p.max_validators = 4;
                p.proposers_per_round = 5;
            }),
            Box::new(|p| {
                p.max_validators = 4;
                p.proposers_per_round = 4;
            }),
        ),
        (
            "threshold below a half",
            Box::new(|p| {
                p.threshold_numerator = 4;
                p.threshold_denominator = 9;
            }),
            Box::new(|p| {
                p.threshold_numerator = 1;
                p.threshold_denominator = 2;
            }),
        ),
        (
            "threshold of one",
            Box::new(|p| {
                p.threshold_numerator = 3;
                p.threshold_denominator = 3;
            }),
            Box::new(|p| {
                p.threshold_numerator = 2;
                p.threshold_denominator = 3;
            }),
        ),
        (
            "threshold_denominator = 0",
            Box::new(|p| {
                p.threshold_numerator = 0;
                p.threshold_denominator = 0;
            }),
            Box::new(|_| {}),
        ),
        (
            "max_validators = 0",
            Box::new(|p| {
                p.max_validators = 0;
            }),
            Box::new(|p| {
                p.max_validators = 1;
                p.proposers_per_round = 1;
            }),
        ),
        (
            "max_validators > 256",
            Box::new(|p| p.max_validators = 257),
            Box::new(|p| p.max_validators = 256),
        ),
        (
            "unlock_delay = 0",
            Box::new(|p| p.unlock_delay = 0),
            Box::new(|p| p.unlock_delay = p.epoch_duration),
        ),
        (
            "unlock_delay < epoch",
            Box::new(|p| p.unlock_delay = p.epoch_duration - 1),
            Box::new(|p| p.unlock_delay = p.epoch_duration),
        ),
        (
            "unlock_delay > max",
            Box::new(|p| p.unlock_delay = MAX_DURATION + 1),
            Box::new(|p| p.unlock_delay = MAX_DURATION),
        ),
        (
            "min_validator_collateral = 0",
            Box::new(|p| p.min_validator_collateral = U256::ZERO),
            Box::new(|p| p.min_validator_collateral = U256::from(1)),
        ),
        (
            "min_validator_collateral > max",
            Box::new(move |p| p.min_validator_collateral = max_amount + U256::from(1)),
            Box::new(move |p| p.min_validator_collateral = max_amount),
        ),
        (
            "min_user_collateral > max",
            Box::new(move |p| p.min_user_collateral = max_amount + U256::from(1)),
            Box::new(|p| p.min_user_collateral = U256::ZERO),
        ),
        (
            "min_worker_collateral = 0",
            Box::new(|p| p.min_worker_collateral = U256::ZERO),
            Box::new(|p| p.min_worker_collateral = U256::from(1)),
        ),
        (
            "min_worker_collateral > max",
            Box::new(move |p| p.min_worker_collateral = max_amount + U256::from(1)),
            Box::new(move |p| p.min_worker_collateral = max_amount),
        ),
        (
            "initial_emission > max",
            Box::new(move |p| p.initial_emission = max_amount + U256::from(1)),
            Box::new(move |p| p.initial_emission = max_amount),
        ),
        (
            "tail above initial",
            Box::new(|p| p.tail_emission = p.initial_emission + U256::from(1)),
            Box::new(|p| p.tail_emission = p.initial_emission),
        ),
        (
            "epochs_per_era = 0",
            Box::new(|p| p.epochs_per_era = 0),
            Box::new(|p| p.epochs_per_era = 1),
        ),
        (
            "epochs_per_era > max",
            Box::new(|p| p.epochs_per_era = 1_000_001),
            Box::new(|p| p.epochs_per_era = 1_000_000),
        ),
        (
            "era_decay_bps > 100 %",
            Box::new(|p| p.era_decay_bps = 10_001),
            Box::new(|p| p.era_decay_bps = 10_000),
        ),
        (
            "shares > 100 %",
            Box::new(|p| {
                p.worker_bps = 9_001;
                p.validator_bps = 1_000;
            }),
            Box::new(|p| {
                p.worker_bps = 9_000;
                p.validator_bps = 1_000;
            }),
        ),
        (
            "slash_prover_bps > 100 %",
            Box::new(|p| p.slash_prover_bps = 10_001),
            Box::new(|p| p.slash_prover_bps = 10_000),
        ),
        (
            "vesting_epochs = 0",
            Box::new(|p| p.vesting_epochs = 0),
            Box::new(|p| p.vesting_epochs = 1),
        ),
        (
            "vesting_epochs > max",
            Box::new(|p| p.vesting_epochs = 1_000_001),
            Box::new(|p| p.vesting_epochs = 1_000_000),
        ),
        (
            "claim_window_epochs = 0",
            Box::new(|p| p.claim_window_epochs = 0),
            Box::new(|p| p.claim_window_epochs = 1),
        ),
        (
            "claim_window_epochs > max",
            Box::new(|p| p.claim_window_epochs = 1_000_001),
            Box::new(|p| p.claim_window_epochs = 1_000_000),
        ),
        (
            "activation_epochs = 0",
            Box::new(|p| p.activation_epochs = 0),
            Box::new(|p| p.activation_epochs = 1),
        ),
        (
            "activation_epochs > max",
            Box::new(|p| p.activation_epochs = 1_000_001),
            Box::new(|p| p.activation_epochs = 1_000_000),
        ),
        (
            "max_join_bps = 0",
            Box::new(|p| p.max_join_bps = 0),
            Box::new(|p| p.max_join_bps = 1),
        ),
        (
            "max_join_bps > 100 %",
            Box::new(|p| p.max_join_bps = 10_001),
            Box::new(|p| p.max_join_bps = 10_000),
        ),
        (
            "idle_timeout < epoch",
            Box::new(|p| p.idle_timeout = p.epoch_duration - 1),
            Box::new(|p| p.idle_timeout = p.epoch_duration),
        ),
        (
            "idle_timeout > max",
            Box::new(|p| p.idle_timeout = MAX_DURATION + 1),
            Box::new(|p| p.idle_timeout = MAX_DURATION),
        ),
        (
            "job_grace_period < epoch",
            Box::new(|p| p.job_grace_period = p.epoch_duration - 1),
            Box::new(|p| p.job_grace_period = p.epoch_duration),
        ),
        (
            "job_grace_period > max",
            Box::new(|p| p.job_grace_period = MAX_DURATION + 1),
            Box::new(|p| p.job_grace_period = MAX_DURATION),
        ),
        (
            "max_escrow_bps = 0",
            Box::new(|p| p.max_escrow_bps = 0),
            Box::new(|p| p.max_escrow_bps = 1),
        ),
        (
            "max_escrow_bps > 100 %",
            Box::new(|p| p.max_escrow_bps = 10_001),
            Box::new(|p| p.max_escrow_bps = 10_000),
        ),
        (
            "treasury = 0",
            Box::new(|p| p.treasury = Address::ZERO),
            Box::new(|_| {}),
        ),
    ];
    let net = Net::new(0, 0, 0).await;
    let endpoint = net.endpoint();
    for (name, bad, good) in &cases {
        let mut p = test_params(net.treasury);
        bad(&mut p);
        let r = Chain::deploy(&endpoint, deployer_key(&net), &p, &[]).await;
        assert_revert(r, "InvalidParams");
        let mut p = test_params(net.treasury);
        good(&mut p);
        Chain::deploy(&endpoint, deployer_key(&net), &p, &[])
            .await
            .unwrap_or_else(|e| panic!("{name}: the bound itself must deploy: {e}"));
    }
    // The largest emission runs through era 1 and beyond without overflow.
    let mut p = test_params(net.treasury);
    p.initial_emission = max_amount;
    p.tail_emission = U256::ZERO;
    let chain = Chain::deploy(&endpoint, deployer_key(&net), &p, &[])
        .await
        .unwrap();
    assert_eq!(
        chain.emission_at(3).await.unwrap(),
        max_amount / U256::from(2)
    );
    assert_eq!(chain.emission_at(u64::MAX).await.unwrap(), U256::ZERO);
}

/// The deployer's key, for deploying more contracts from it (it has ether on every backend).
fn deployer_key(net: &Net) -> PrivateKeySigner {
    net.deployer_signer.clone()
}
