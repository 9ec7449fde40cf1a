//! The bugs the original Smartnodes contracts had, each proven absent here.

use smartnodes_contracts::{sno, EpochSummary, PrivateKeySigner, RewardTree, Role, B256, U256};

use crate::common::{assert_revert, Net};

/// Original bug: a total (`totalCapacity`) outside the proposal hash, so an executor could
/// pass any total and claims could drain more than the epoch minted. Here the total is part
/// of the hash, and claims stop at it even when the leaves add up to more.
#[tokio::test]
async fn original_bug_total_outside_the_hash_is_absent() {
    let net = Net::new(3, 0, 0).await;
    let workers: Vec<_> = (0..3)
        .map(|_| net.deployer.with_signer(PrivateKeySigner::random()))
        .collect();
    if net.deployer.backend_name() == "json-rpc" {
        for w in &workers {
            net.deployer
                .send_eth(w.account(), U256::from(10u128.pow(17)))
                .await
                .unwrap();
        }
    }
    // Leaves worth 300 in total, but the voters committed to 250.
    let rewards = RewardTree::new(1, workers.iter().map(|w| (w.account(), sno(100)))).unwrap();
    let agreed = EpochSummary {
        worker_reward_root: rewards.root(),
        worker_reward_total: sno(250),
        ..EpochSummary::empty(1)
    };
    net.open_proposals().await;
    let proposer = net.proposer().await;
    proposer.propose(&agreed).await.unwrap();
    let voter = net
        .validators
        .iter()
        .find(|v| v.account() != proposer.account())
        .unwrap();
    voter.vote(1, agreed.hash()).await.unwrap();
    // The executor cannot raise the total: it is inside the hash.
    let inflated = EpochSummary {
        worker_reward_total: sno(300),
        ..agreed.clone()
    };
    assert_ne!(inflated.hash(), agreed.hash());
    assert_revert(voter.execute(&inflated).await, "UnknownProposal");
    voter.execute(&agreed).await.unwrap();
    net.run_epoch(&EpochSummary::empty(2)).await;
    // Claims stop at the committed total: 100 + 100, then the third leaf would make 300.
    for w in &workers[..2] {
        let (amount, proof) = rewards.proof(&w.account()).unwrap();
        w.claim(1, amount, proof).await.unwrap();
    }
    let (amount, proof) = rewards.proof(&workers[2].account()).unwrap();
    assert_revert(
        workers[2].claim(1, amount, proof).await,
        "ClaimExceedsTotal",
    );
    let record = net.deployer.epoch_record(1).await.unwrap();
    assert_eq!(record.claimed, sno(200));
    assert!(record.claimed <= record.worker_reward_total);
}

/// Original bug: an expired round wiped every pending proposal, so one validator could stall
/// execution forever. Here a proposal from an expired round keeps its votes and executes.
#[tokio::test]
async fn original_bug_expired_round_wiping_proposals_is_absent() {
    let net = Net::new(5, 0, 0).await;
    net.open_proposals().await;
    let honest = EpochSummary {
        reputation_root: B256::repeat_byte(0x0A),
        ..EpochSummary::empty(1)
    };
    let first = net.proposer().await;
    let first_round = net.deployer.round_info().await.unwrap().round;
    first.propose(&honest).await.unwrap();
    let supporter = net
        .validators
        .iter()
        .find(|v| v.account() != first.account())
        .unwrap();
    supporter.vote(1, honest.hash()).await.unwrap();
    // 2 of 5: pending. Let rounds expire until a validator that has not voted is drawn, and
    // let it propose something else.
    let voted = [first.account(), supporter.account()];
    let rival = net
        .later_proposer(|a| !voted.contains(&a))
        .await
        .expect("a fresh proposer within 100 rounds");
    assert_eq!(
        net.deployer.vote_of(1, rival.account()).await.unwrap(),
        None
    );
    assert!(net.deployer.round_info().await.unwrap().round > first_round);
    let other = EpochSummary {
        reputation_root: B256::repeat_byte(0x0B),
        ..EpochSummary::empty(1)
    };
    rival.propose(&other).await.unwrap();
    // The honest proposal is still there with both votes.
    let pending = net
        .deployer
        .proposal(1, honest.hash())
        .await
        .unwrap()
        .expect("still pending");
    assert_eq!(pending.voters, vec![first.account(), supporter.account()]);
    assert_eq!(
        net.deployer.proposal_hashes(1).await.unwrap(),
        vec![honest.hash(), other.hash()]
    );
    // A third vote in a later round carries it.
    let third = net
        .validators
        .iter()
        .find(|v| ![first.account(), supporter.account(), rival.account()].contains(&v.account()))
        .unwrap();
    third.vote(1, honest.hash()).await.unwrap();
    third.execute(&honest).await.unwrap();
    assert_eq!(
        net.deployer.epoch_record(1).await.unwrap().summary_hash,
        honest.hash()
    );
    assert_eq!(net.deployer.current_epoch().await.unwrap(), 2);
}

/// Original bug: a threshold parameter stored but never used. Here the same votes pass
/// under a strict majority and fail under two thirds.
#[tokio::test]
async fn original_bug_threshold_unused_is_absent() {
    for (num, den, passes_with_two) in [(1u32, 2u32, true), (2, 3, false)] {
        let net = Net::with_params(3, 0, 0, |p| {
            p.threshold_numerator = num;
            p.threshold_denominator = den;
        })
        .await;
        assert_eq!(
            net.deployer.params().await.unwrap().threshold_numerator,
            num
        );
        let stake = |n: u64| net.params.min_validator_collateral * U256::from(n);
        assert_eq!(
            net.deployer
                .threshold_passes(stake(2), stake(3))
                .await
                .unwrap(),
            passes_with_two
        );
        assert!(net
            .deployer
            .threshold_passes(stake(3), stake(3))
            .await
            .unwrap());
        assert!(!net
            .deployer
            .threshold_passes(stake(1), stake(3))
            .await
            .unwrap());
        net.open_proposals().await;
        let s = EpochSummary::empty(1);
        let proposer = net.proposer().await;
        proposer.propose(&s).await.unwrap();
        let others: Vec<_> = net
            .validators
            .iter()
            .filter(|v| v.account() != proposer.account())
            .collect();
        others[0].vote(1, s.hash()).await.unwrap();
        let two = proposer.execute(&s).await;
        if passes_with_two {
            two.unwrap();
        } else {
            assert_revert(two, "ThresholdNotReached");
            others[1].vote(1, s.hash()).await.unwrap();
            proposer.execute(&s).await.unwrap();
        }
        assert_eq!(
            net.deployer.current_epoch().await.unwrap(),
            2,
            "{num}/{den}"
        );
    }
}

/// Original bug: an unlock path that could not work. Here both locked roles go through the
/// whole path: lock, request, refused before the delay, paid after it.
#[tokio::test]
async fn original_bug_unlock_that_cannot_work_is_absent() {
    let net = Net::new(2, 1, 0).await;
    for (c, role, amount) in [
        (
            &net.validators[0],
            Role::Validator,
            net.params.min_validator_collateral,
        ),
        (&net.users[0], Role::User, net.params.min_user_collateral),
    ] {
        let before = net.balance(c.account()).await;
        c.request_unlock(role).await.unwrap();
        assert_revert(c.withdraw_collateral(role).await, "UnlockNotReady");
        net.deployer
            .advance_time(net.params.unlock_delay + 1)
            .await
            .unwrap();
        c.withdraw_collateral(role).await.unwrap();
        assert_eq!(net.balance(c.account()).await, before + amount, "{role:?}");
        let r = net.deployer.registration(role, c.account()).await.unwrap();
        assert_eq!(r.collateral, U256::ZERO);
    }
    // The validator that left can come back (it was not removed, only departed).
    let v = &net.validators[0];
    v.register_validator(net.params.min_validator_collateral)
        .await
        .unwrap();
}

/// Original bug: one vote per epoch, final. Validators that voted for a proposal before they
/// learnt it was wrong (a fraud proof still on its way) could never vote again, the votes
/// stayed split across proposals, and the epoch never executed. Here the early voters move
/// their votes to a later round's proposal, which then passes; the old one loses them.
#[tokio::test]
async fn original_bug_split_votes_stalling_the_epoch_is_absent() {
    // Strict majority of 4: 3 votes.
    let net = Net::new(4, 0, 0).await;
    net.open_proposals().await;
    let stale = EpochSummary {
        reputation_root: B256::repeat_byte(0x01),
        ..EpochSummary::empty(1)
    };
    let first = net.proposer().await;
    first.propose(&stale).await.unwrap();
    let early = net
        .validators
        .iter()
        .find(|v| v.account() != first.account())
        .unwrap();
    early.vote(1, stale.hash()).await.unwrap();
    // A later round's proposer (not `first`) proposes the corrected summary.
    let second = net
        .later_proposer(|a| a != first.account())
        .await
        .expect("another proposer within 100 rounds");
    let fixed = EpochSummary {
        reputation_root: B256::repeat_byte(0x02),
        ..EpochSummary::empty(1)
    };
    second.propose(&fixed).await.unwrap();
    // Every other validator ends on `fixed`: 4 of 4, whatever was voted before.
    for v in net
        .validators
        .iter()
        .filter(|v| v.account() != second.account())
    {
        v.vote(1, fixed.hash()).await.unwrap();
    }
    assert_revert(first.execute(&stale).await, "ThresholdNotReached");
    first.execute(&fixed).await.unwrap();
    let record = net.deployer.epoch_record(1).await.unwrap();
    assert_eq!(record.summary_hash, fixed.hash());
    assert_eq!(record.votes, 4);
    let stale_votes = net
        .deployer
        .proposal(1, stale.hash())
        .await
        .unwrap()
        .unwrap();
    assert!(stale_votes.voters.is_empty(), "{stale_votes:?}");
}
