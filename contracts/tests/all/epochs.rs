//! Proposals, votes, thresholds, rounds, removals and blacklisting.

use std::collections::HashSet;

use smartnodes_contracts::{
    keccak256, sno, Address, BlacklistEntry, EpochSummary, RewardTree, Role, B256, U256,
};

use crate::common::{assert_revert, Net};

fn rich_summary(epoch: u64) -> EpochSummary {
    EpochSummary {
        epoch,
        job_results_root: B256::repeat_byte(1),
        released_payments: U256::ZERO,
        worker_reward_root: B256::repeat_byte(2),
        worker_reward_total: sno(3),
        reputation_root: B256::repeat_byte(4),
        blacklist: vec![
            BlacklistEntry {
                worker: Address::repeat_byte(5),
                evidence: B256::repeat_byte(6),
            },
            BlacklistEntry {
                worker: Address::repeat_byte(7),
                evidence: B256::repeat_byte(8),
            },
        ],
        remove_validators: vec![Address::repeat_byte(9)],
        released_jobs: vec![B256::repeat_byte(10), B256::repeat_byte(11)],
    }
}

#[tokio::test]
async fn summary_hash_in_rust_matches_solidity() {
    let net = Net::new(1, 0, 0).await;
    for s in [EpochSummary::empty(1), rich_summary(1), rich_summary(77)] {
        assert_eq!(
            net.deployer.summary_hash_on_chain(&s).await.unwrap(),
            s.hash()
        );
    }
    // Every field is covered by the hash.
    let base = rich_summary(1);
    let mut variants = vec![];
    let mut v = base.clone();
    v.epoch = 2;
    variants.push(v);
    let mut v = base.clone();
    v.job_results_root = B256::ZERO;
    variants.push(v);
    let mut v = base.clone();
    v.released_payments = U256::from(1);
    variants.push(v);
    let mut v = base.clone();
    v.worker_reward_root = B256::ZERO;
    variants.push(v);
    let mut v = base.clone();
    v.worker_reward_total += U256::from(1);
    variants.push(v);
    let mut v = base.clone();
    v.reputation_root = B256::ZERO;
    variants.push(v);
    let mut v = base.clone();
    v.blacklist.pop();
    variants.push(v);
    let mut v = base.clone();
    v.blacklist[0].evidence = B256::ZERO;
    variants.push(v);
    let mut v = base.clone();
    v.remove_validators.clear();
    variants.push(v);
    let mut v = base.clone();
    v.released_jobs.pop();
    variants.push(v);
    let mut seen = HashSet::from([base.hash()]);
    for v in variants {
        assert!(seen.insert(v.hash()), "{v:?} hashes like another summary");
        assert_eq!(
            net.deployer.summary_hash_on_chain(&v).await.unwrap(),
            v.hash()
        );
    }
}

#[tokio::test]
async fn a_summary_that_does_not_match_its_hash_cannot_execute() {
    let net = Net::new(3, 0, 1).await;
    net.open_proposals().await;
    let rewards = RewardTree::new(1, [(net.workers[0].account(), sno(10))]).unwrap();
    let honest = EpochSummary {
        worker_reward_root: rewards.root(),
        worker_reward_total: rewards.total(),
        ..EpochSummary::empty(1)
    };
    let proposer = net.proposer().await;
    proposer.propose(&honest).await.unwrap();
    for v in &net.validators {
        if v.account() != proposer.account() {
            v.vote(1, honest.hash()).await.unwrap();
        }
    }
    // Same proposal, different data: each field changed on its own.
    let mut tampered = vec![];
    let mut t = honest.clone();
    t.worker_reward_total = sno(20);
    tampered.push(t);
    let mut t = honest.clone();
    t.worker_reward_root = B256::repeat_byte(0xEE);
    tampered.push(t);
    let mut t = honest.clone();
    t.remove_validators = vec![net.validators[0].account()];
    tampered.push(t);
    let mut t = honest.clone();
    t.blacklist = vec![BlacklistEntry {
        worker: net.workers[0].account(),
        evidence: B256::ZERO,
    }];
    tampered.push(t);
    for t in &tampered {
        assert_revert(proposer.execute(t).await, "UnknownProposal");
    }
    assert_eq!(net.deployer.current_epoch().await.unwrap(), 1);
    proposer.execute(&honest).await.unwrap();
    let record = net.deployer.epoch_record(1).await.unwrap();
    assert_eq!(record.summary_hash, honest.hash());
    assert_eq!(record.worker_reward_total, sno(10));
}

#[tokio::test]
async fn a_proposal_below_the_threshold_cannot_execute() {
    let net = Net::new(4, 0, 0).await;
    net.open_proposals().await;
    let s = EpochSummary::empty(1);
    let proposer = net.proposer().await;
    proposer.propose(&s).await.unwrap();
    let others: Vec<_> = net
        .validators
        .iter()
        .filter(|v| v.account() != proposer.account())
        .collect();
    // 1 of 4, then 2 of 4: not a strict majority.
    assert_revert(proposer.execute(&s).await, "ThresholdNotReached");
    others[0].vote(1, s.hash()).await.unwrap();
    assert_revert(proposer.execute(&s).await, "ThresholdNotReached");
    // 3 of 4 passes.
    others[1].vote(1, s.hash()).await.unwrap();
    proposer.execute(&s).await.unwrap();
    assert_eq!(net.deployer.epoch_record(1).await.unwrap().votes, 3);
}

#[tokio::test]
async fn a_validator_votes_once_per_round_and_moves_its_vote_only_in_a_later_round() {
    let net = Net::new(4, 0, 0).await;
    net.open_proposals().await;
    let a = EpochSummary::empty(1);
    let other = EpochSummary {
        reputation_root: B256::repeat_byte(3),
        ..EpochSummary::empty(1)
    };
    let proposer = net.proposer().await;
    proposer.propose(&a).await.unwrap();
    // The proposal was the proposer's vote.
    assert_revert(proposer.vote(1, a.hash()).await, "AlreadyVoted");
    let v = net
        .validators
        .iter()
        .find(|v| v.account() != proposer.account())
        .unwrap();
    v.vote(1, a.hash()).await.unwrap();
    assert_revert(v.vote(1, a.hash()).await, "AlreadyVoted");
    let deployer = &net.deployer;
    let voters = |hash| async move {
        deployer
            .proposal(1, hash)
            .await
            .unwrap()
            .map_or(vec![], |p| p.voters)
    };
    assert_eq!(voters(a.hash()).await.len(), 2);
    let round = net.deployer.round_info().await.unwrap().round;
    assert_eq!(
        net.deployer.vote_and_round(1, v.account()).await.unwrap(),
        Some((a.hash(), round))
    );
    // Later rounds: once v is drawn, it proposes something else, which moves its vote; in
    // the same round it cannot move it back.
    net.later_proposer(|a| a == v.account())
        .await
        .expect("v drawn as proposer within 100 rounds");
    v.propose(&other).await.unwrap();
    assert_eq!(voters(a.hash()).await, vec![proposer.account()]);
    assert_eq!(voters(other.hash()).await, vec![v.account()]);
    assert_revert(v.vote(1, a.hash()).await, "AlreadyVoted");
    assert_revert(v.vote(1, other.hash()).await, "AlreadyVoted");
    // The next round it may, and the vote counts once, where it is.
    net.deployer
        .advance_time(net.params.round_duration)
        .await
        .unwrap();
    v.vote(1, a.hash()).await.unwrap();
    assert_eq!(voters(a.hash()).await.len(), 2);
    assert!(voters(other.hash()).await.is_empty());
    assert_eq!(
        net.deployer.vote_of(1, v.account()).await.unwrap(),
        Some(a.hash())
    );
    // Voting for something nobody proposed is refused, and leaves the vote where it was.
    let w = net
        .validators
        .iter()
        .find(|w| w.account() != proposer.account() && w.account() != v.account())
        .unwrap();
    assert_revert(w.vote(1, B256::repeat_byte(0x42)).await, "UnknownProposal");
    net.deployer
        .advance_time(net.params.round_duration)
        .await
        .unwrap();
    assert_revert(v.vote(1, B256::repeat_byte(0x42)).await, "UnknownProposal");
    assert_eq!(
        net.deployer.vote_of(1, v.account()).await.unwrap(),
        Some(a.hash())
    );
}

#[tokio::test]
async fn proposals_open_only_after_the_epoch_and_only_for_the_current_epoch() {
    let net = Net::new(2, 0, 0).await;
    let info = net.deployer.round_info().await.unwrap();
    assert!(!info.open);
    assert!(info.proposers.is_empty());
    let candidates = net.deployer.proposers_for(1, 0).await.unwrap();
    let early = net.by_address(candidates[0]);
    let s1 = EpochSummary::empty(1);
    assert_revert(early.propose(&s1).await, "ProposalsNotOpen");
    net.open_proposals().await;
    let proposer = net.proposer().await;
    assert_revert(
        proposer.propose(&EpochSummary::empty(2)).await,
        "WrongEpoch",
    );
    assert_revert(
        proposer.propose(&EpochSummary::empty(0)).await,
        "WrongEpoch",
    );
    let (_, hash) = proposer.propose(&s1).await.unwrap();
    assert_eq!(net.deployer.proposal_hashes(1).await.unwrap(), vec![hash]);
    let p = net.deployer.proposal(1, hash).await.unwrap().unwrap();
    assert_eq!(p.proposer, proposer.account());
    assert_eq!(p.voters, vec![proposer.account()]);
}

#[tokio::test]
async fn every_validator_computes_the_same_proposers_and_they_change_by_round() {
    let net = Net::with_params(5, 0, 0, |p| p.proposers_per_round = 2).await;
    let validators: HashSet<Address> = net.validators.iter().map(|v| v.account()).collect();
    let mut firsts = HashSet::new();
    for round in 0..20u32 {
        let from_deployer = net.deployer.proposers_for(1, round).await.unwrap();
        assert_eq!(from_deployer.len(), 2);
        assert_ne!(from_deployer[0], from_deployer[1], "drawn twice");
        for v in &net.validators {
            assert_eq!(v.proposers_for(1, round).await.unwrap(), from_deployer);
        }
        assert!(from_deployer.iter().all(|p| validators.contains(p)));
        firsts.insert(from_deployer[0]);
    }
    assert!(firsts.len() > 1, "the draw never changed over 20 rounds");
    // The current round's list is the one `propose` checks.
    net.open_proposals().await;
    let info = net.deployer.round_info().await.unwrap();
    assert_eq!(
        info.proposers,
        net.deployer.proposers_for(1, info.round).await.unwrap()
    );
}

#[tokio::test]
async fn a_removed_validator_cannot_simply_re_add_itself() {
    let net = Net::new(4, 0, 0).await;
    net.open_proposals().await;
    let proposer = net.proposer().await.account();
    let victim = net
        .validators
        .iter()
        .find(|v| v.account() != proposer)
        .unwrap();
    let s = EpochSummary {
        remove_validators: vec![victim.account()],
        ..EpochSummary::empty(1)
    };
    net.run_epoch(&s).await;
    assert!(!net.is_validator(victim.account()).await);
    assert!(net
        .deployer
        .is_validator_banned(victim.account())
        .await
        .unwrap());
    assert_eq!(net.deployer.validators().await.unwrap().len(), 3);
    // It cannot register again, nor act as a validator.
    assert_revert(
        victim
            .register_validator(net.params.min_validator_collateral)
            .await,
        "ValidatorIsBanned",
    );
    net.open_proposals().await;
    let s2 = EpochSummary::empty(2);
    net.proposer().await.propose(&s2).await.unwrap();
    assert_revert(victim.vote(2, s2.hash()).await, "NotValidator");
    // Its collateral was slashed: nothing to withdraw after the delay, and no way back.
    net.deployer
        .advance_time(net.params.unlock_delay)
        .await
        .unwrap();
    assert_revert(
        victim.withdraw_collateral(Role::Validator).await,
        "NothingToWithdraw",
    );
    assert_revert(
        victim
            .register_validator(net.params.min_validator_collateral)
            .await,
        "ValidatorIsBanned",
    );
}

#[tokio::test]
async fn a_departed_validators_vote_does_not_count() {
    let net = Net::new(3, 0, 0).await;
    net.open_proposals().await;
    let s = EpochSummary::empty(1);
    let proposer = net.proposer().await;
    proposer.propose(&s).await.unwrap();
    let other = net
        .validators
        .iter()
        .find(|v| v.account() != proposer.account())
        .unwrap();
    other.vote(1, s.hash()).await.unwrap();
    // 2 of 3 would pass, but the second voter leaves: 1 of 2 does not.
    other.request_unlock(Role::Validator).await.unwrap();
    assert_revert(proposer.execute(&s).await, "ThresholdNotReached");
    let third = net
        .validators
        .iter()
        .find(|v| v.account() != proposer.account() && v.account() != other.account())
        .unwrap();
    third.vote(1, s.hash()).await.unwrap();
    proposer.execute(&s).await.unwrap();
    assert_eq!(net.deployer.epoch_record(1).await.unwrap().votes, 2);
}

#[tokio::test]
async fn a_blacklisted_worker_cannot_register_again() {
    let net = Net::new(1, 0, 2).await;
    let cheat = &net.workers[0];
    let evidence = keccak256(b"fraud proof");
    let s = EpochSummary {
        blacklist: vec![BlacklistEntry {
            worker: cheat.account(),
            evidence,
        }],
        ..EpochSummary::empty(1)
    };
    net.run_epoch(&s).await;
    assert!(net.deployer.is_blacklisted(cheat.account()).await.unwrap());
    assert!(!net
        .deployer
        .is_blacklisted(net.workers[1].account())
        .await
        .unwrap());
    assert!(
        !net.deployer
            .registration(Role::Worker, cheat.account())
            .await
            .unwrap()
            .active
    );
    assert_revert(
        cheat
            .register_worker(net.params.min_worker_collateral)
            .await,
        "AccountBlacklisted",
    );
    // The honest worker is untouched.
    assert!(
        net.deployer
            .registration(Role::Worker, net.workers[1].account())
            .await
            .unwrap()
            .active
    );
}
