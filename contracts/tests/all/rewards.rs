//! Emission schedule, the split of each epoch's pot, and Merkle claims.

use smartnodes_contracts::{
    merkle, sno, Address, BlacklistEntry, EpochSummary, PrivateKeySigner, RewardTree, B256, U256,
};

use crate::common::{assert_revert, Net};

#[tokio::test]
async fn minted_total_per_epoch_equals_the_schedule() {
    // initial 1,000, halving every 2 epochs, tail 300: 1000, 1000, 500, 500, 300, 300.
    let net = Net::new(1, 0, 0).await;
    let expected = [1_000u64, 1_000, 500, 500, 300, 300];
    for (i, want) in expected.iter().enumerate() {
        let epoch = i as u64 + 1;
        assert_eq!(
            net.params.emission_at(epoch),
            sno(*want),
            "off-chain schedule, epoch {epoch}"
        );
        assert_eq!(net.deployer.emission_at(epoch).await.unwrap(), sno(*want));
        let supply = net.deployer.total_supply().await.unwrap();
        net.run_epoch(&EpochSummary::empty(epoch)).await;
        let minted = net.deployer.total_supply().await.unwrap() - supply;
        assert_eq!(minted, sno(*want), "minted in epoch {epoch}");
        assert_eq!(
            net.deployer.epoch_record(epoch).await.unwrap().emission,
            sno(*want)
        );
    }
    // Far in the future the tail holds.
    assert_eq!(net.deployer.emission_at(1_000_000).await.unwrap(), sno(300));
    assert_eq!(net.params.emission_at(1_000_000), sno(300));
}

#[tokio::test]
async fn the_pot_is_split_between_workers_voters_and_treasury() {
    let net = Net::new(3, 0, 0).await;
    let core = net.deployer.deployment().core;
    let workers: Vec<Address> = (1..=4u8).map(Address::repeat_byte).collect();
    // Workers get 85% of 1,000 SNO = 850 in the committed total (less is allowed: the rest
    // goes to the treasury).
    let rewards = RewardTree::new(
        1,
        workers
            .iter()
            .zip([100u64, 200, 300, 200])
            .map(|(w, a)| (*w, sno(a))),
    )
    .unwrap();
    assert_eq!(rewards.total(), sno(800));
    let s = EpochSummary {
        worker_reward_root: rewards.root(),
        worker_reward_total: rewards.total(),
        ..EpochSummary::empty(1)
    };
    let mut before = vec![];
    for v in &net.validators {
        before.push(net.balance(v.account()).await);
    }
    let core_before = net.balance(core).await;
    net.run_epoch(&s).await;
    let voters = net
        .deployer
        .proposal(1, s.hash())
        .await
        .unwrap()
        .unwrap()
        .voters;
    assert_eq!(voters.len(), 2, "strict majority of 3 is 2");
    // Validator share: 10% of 1,000 = 100, split between the 2 voters.
    for (v, b) in net.validators.iter().zip(before) {
        let got = net.balance(v.account()).await - b;
        let want = if voters.contains(&v.account()) {
            sno(50)
        } else {
            U256::ZERO
        };
        assert_eq!(got, want, "validator {}", v.account());
    }
    // Treasury: 5% + the 50 the workers' total left unassigned.
    assert_eq!(net.balance(net.treasury).await, sno(100));
    // The core keeps exactly the workers' committed total for claims.
    assert_eq!(net.balance(core).await - core_before, sno(800));
}

#[tokio::test]
async fn claims_pay_exactly_their_leaf_and_only_once() {
    let net = Net::new(1, 0, 0).await;
    let workers: Vec<_> = (0..5)
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
    let amounts = [1u64, 10, 100, 200, 500];
    // The same rewards in each epoch's tree.
    let tree = |epoch| {
        RewardTree::new(
            epoch,
            workers
                .iter()
                .zip(amounts)
                .map(|(w, a)| (w.account(), sno(a))),
        )
        .unwrap()
    };
    let rewards = tree(1);
    let s = EpochSummary {
        worker_reward_root: rewards.root(),
        worker_reward_total: rewards.total(),
        ..EpochSummary::empty(1)
    };
    net.run_epoch(&s).await;
    // Claims for epoch 1 open once epoch 2 has executed.
    let (amount, proof) = rewards.proof(&workers[0].account()).unwrap();
    assert_revert(workers[0].claim(1, amount, proof).await, "NotVested");
    let rewards2 = tree(2);
    net.run_epoch(&EpochSummary {
        worker_reward_root: rewards2.root(),
        worker_reward_total: rewards2.total(),
        ..EpochSummary::empty(2)
    })
    .await;
    for (w, a) in workers.iter().zip(amounts) {
        let (amount, proof) = rewards.proof(&w.account()).unwrap();
        assert_eq!(amount, sno(a));
        // Forged: a bigger amount, a proof for another epoch, a proof of someone else.
        assert_revert(
            w.claim(1, amount + U256::from(1), proof.clone()).await,
            "InvalidProof",
        );
        assert_revert(
            w.claim(1, amount, vec![B256::repeat_byte(1); proof.len().max(1)])
                .await,
            "InvalidProof",
        );
        assert_revert(w.claim(3, amount, proof.clone()).await, "EpochNotExecuted");
        assert!(!net
            .deployer
            .reward_claimed(w.account(), amount, 1)
            .await
            .unwrap());
        w.claim(1, amount, proof.clone()).await.unwrap();
        assert_eq!(
            net.balance(w.account()).await,
            sno(a),
            "paid exactly the leaf"
        );
        assert!(net
            .deployer
            .reward_claimed(w.account(), amount, 1)
            .await
            .unwrap());
        // Repeated.
        assert_revert(w.claim(1, amount, proof).await, "AlreadyClaimed");
        assert_eq!(net.balance(w.account()).await, sno(a));
    }
    let record = net.deployer.epoch_record(1).await.unwrap();
    assert_eq!(record.claimed, rewards.total());
    // A proof for epoch 1 is not a proof for epoch 2, even with the same amounts.
    net.run_epoch(&EpochSummary::empty(3)).await;
    let (amount, proof1) = rewards.proof(&workers[0].account()).unwrap();
    assert_revert(workers[0].claim(2, amount, proof1).await, "InvalidProof");
    let (amount, proof2) = rewards2.proof(&workers[0].account()).unwrap();
    assert!(merkle::verify(
        &proof2,
        rewards2.root(),
        merkle::reward_leaf(workers[0].account(), amount, 2)
    ));
    workers[0].claim(2, amount, proof2).await.unwrap();
    assert_eq!(net.balance(workers[0].account()).await, sno(2));
}

#[tokio::test]
async fn a_committed_total_above_the_worker_share_cannot_be_proposed_or_executed() {
    let net = Net::new(1, 0, 0).await;
    net.open_proposals().await;
    let p = net.proposer().await;
    // 85% of 1,000 is 850. Refused at proposal time, so no vote is spent on it.
    let too_much = EpochSummary {
        worker_reward_total: sno(851),
        ..EpochSummary::empty(1)
    };
    assert_revert(p.propose(&too_much).await, "RewardTotalTooHigh");
    assert_eq!(net.deployer.vote_of(1, p.account()).await.unwrap(), None);
    let exact = EpochSummary {
        worker_reward_total: sno(850),
        ..EpochSummary::empty(1)
    };
    p.propose(&exact).await.unwrap();
    p.execute(&exact).await.unwrap();
    assert_eq!(
        net.deployer
            .epoch_record(1)
            .await
            .unwrap()
            .worker_reward_total,
        sno(850)
    );
}

#[tokio::test]
async fn the_emission_schedule_is_bounded_without_decay() {
    // No decay at all: the loop over eras must still end, at MAX_ERAS, on the tail.
    let net = Net::with_params(0, 0, 0, |p| {
        p.era_decay_bps = 10_000;
        p.epochs_per_era = 1;
    })
    .await;
    let last_full = smartnodes_contracts::MAX_ERAS; // epoch MAX_ERAS is in era MAX_ERAS - 1
    for (epoch, want) in [
        (1, 1_000u64),
        (2, 1_000),
        (last_full, 1_000),
        (last_full + 1, 300),
        (u64::MAX, 300),
    ] {
        assert_eq!(
            net.params.emission_at(epoch),
            sno(want),
            "off chain, epoch {epoch}"
        );
        assert_eq!(
            net.deployer.emission_at(epoch).await.unwrap(),
            sno(want),
            "on chain, epoch {epoch}"
        );
    }
}

#[tokio::test]
async fn a_worker_blacklisted_before_its_claim_opens_forfeits_the_reward() {
    let net = Net::new(1, 0, 2).await;
    let (cheat, honest) = (&net.workers[0], &net.workers[1]);
    let before = (
        net.balance(cheat.account()).await,
        net.balance(honest.account()).await,
    );
    let rewards =
        RewardTree::new(1, [(cheat.account(), sno(30)), (honest.account(), sno(70))]).unwrap();
    net.run_epoch(&EpochSummary {
        worker_reward_root: rewards.root(),
        worker_reward_total: rewards.total(),
        ..EpochSummary::empty(1)
    })
    .await;
    // Caught during epoch 2: its summary blacklists the cheat.
    let (amount, proof) = rewards.proof(&cheat.account()).unwrap();
    assert_revert(cheat.claim(1, amount, proof.clone()).await, "NotVested");
    net.run_epoch(&EpochSummary {
        blacklist: vec![BlacklistEntry {
            worker: cheat.account(),
            evidence: B256::repeat_byte(0xf0),
        }],
        ..EpochSummary::empty(2)
    })
    .await;
    assert_revert(cheat.claim(1, amount, proof).await, "Forfeited");
    assert_eq!(net.balance(cheat.account()).await, before.0);
    let (amount, proof) = rewards.proof(&honest.account()).unwrap();
    honest.claim(1, amount, proof).await.unwrap();
    assert_eq!(net.balance(honest.account()).await, before.1 + sno(70));
}
