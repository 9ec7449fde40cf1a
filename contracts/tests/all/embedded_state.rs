//! The embedded chain survives a restart: save, load, carry on.

use smartnodes_contracts::{
    sno, Chain, EmbeddedEvm, Endpoint, EpochSummary, PrivateKeySigner, RewardTree, Role,
};

#[tokio::test]
async fn embedded_state_survives_save_and_load() {
    let evm = EmbeddedEvm::with_timestamp(1_700_000_000);
    let endpoint = Endpoint::Embedded(evm.clone());
    let deployer = PrivateKeySigner::random();
    let validator = PrivateKeySigner::random();
    let worker = PrivateKeySigner::random();
    let params = crate::common::test_params(deployer.address());
    let chain = Chain::deploy(
        &endpoint,
        deployer,
        &params,
        &[(validator.address(), sno(5_000))],
    )
    .await
    .unwrap();
    let v = chain.with_signer(validator.clone());
    v.register_validator(sno(1_000)).await.unwrap();
    evm.advance_time(params.epoch_duration);
    let rewards = RewardTree::new(1, [(worker.address(), sno(10))]).unwrap();
    let s1 = EpochSummary {
        worker_reward_root: rewards.root(),
        worker_reward_total: rewards.total(),
        ..EpochSummary::empty(1)
    };
    v.propose(&s1).await.unwrap();
    v.execute(&s1).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.json");
    evm.save(&path).unwrap();
    let supply = chain.total_supply().await.unwrap();
    let (block, time) = (evm.block_number(), evm.timestamp());
    // The node keeps the contracts' addresses with its data.
    let deployment = chain.deployment();
    drop((chain, v, evm));

    // A new process: load, reconnect, and everything is where it was.
    let evm = EmbeddedEvm::load(&path).unwrap();
    assert_eq!((evm.block_number(), evm.timestamp()), (block, time));
    let endpoint = Endpoint::Embedded(evm.clone());
    // A wrong deployment is noticed.
    let wrong = smartnodes_contracts::Deployment {
        token: deployment.core,
        ..deployment
    };
    assert!(Chain::connect(&endpoint, validator.clone(), wrong)
        .await
        .is_err());
    let saved = Chain::connect(&endpoint, PrivateKeySigner::random(), deployment)
        .await
        .unwrap();
    let v = saved.with_signer(validator.clone());
    assert_eq!(v.total_supply().await.unwrap(), supply);
    assert_eq!(v.current_epoch().await.unwrap(), 2);
    assert!(
        v.registration(Role::Validator, validator.address())
            .await
            .unwrap()
            .active
    );
    // Carry on: another epoch executes, and the worker claims.
    evm.advance_time(params.epoch_duration);
    let s2 = EpochSummary::empty(2);
    v.propose(&s2).await.unwrap();
    v.execute(&s2).await.unwrap();
    assert_eq!(v.current_epoch().await.unwrap(), 3);
    let w = saved.with_signer(worker.clone());
    let (amount, proof) = rewards.proof(&worker.address()).unwrap();
    w.claim(1, amount, proof).await.unwrap();
    assert_eq!(w.token_balance(worker.address()).await.unwrap(), sno(10));
    // A corrupt file is an error, not a panic.
    std::fs::write(&path, b"{not json").unwrap();
    assert!(EmbeddedEvm::load(&path).is_err());
}
