//! Collateral: lock, unlock request, withdraw only after the delay.

use smartnodes_contracts::{sno, Role, B256};

use crate::common::{assert_revert, Net, GENESIS_SNO};

#[tokio::test]
async fn validator_collateral_locks_and_unlocks_only_after_the_delay() {
    let net = Net::new(2, 0, 0).await;
    let v = &net.validators[0];
    let locked = net.params.min_validator_collateral;
    let core = net.deployer.deployment().core;
    // Locked: moved to the core, recorded, validator active.
    assert_eq!(net.balance(v.account()).await, sno(GENESIS_SNO) - locked);
    let r = net
        .deployer
        .registration(Role::Validator, v.account())
        .await
        .unwrap();
    assert!(r.active);
    assert_eq!(r.collateral, locked);
    assert_eq!(r.node_key_hash, v.node_key_hash());
    assert_eq!(
        net.balance(core).await,
        locked * smartnodes_contracts::U256::from(2)
    );
    // Nothing to withdraw while active.
    assert_revert(
        v.withdraw_collateral(Role::Validator).await,
        "NothingToWithdraw",
    );
    // Unlock request: leaves the set at once.
    v.request_unlock(Role::Validator).await.unwrap();
    assert!(!net.is_validator(v.account()).await);
    let r = net
        .deployer
        .registration(Role::Validator, v.account())
        .await
        .unwrap();
    assert!(!r.active);
    let now = net.deployer.timestamp().await.unwrap();
    assert!(
        r.unlock_at >= now + net.params.unlock_delay - 60,
        "unlock_at {} now {now}",
        r.unlock_at
    );
    assert_revert(v.request_unlock(Role::Validator).await, "NotRegistered");
    // Before the delay: refused, even one step short.
    assert_revert(
        v.withdraw_collateral(Role::Validator).await,
        "UnlockNotReady",
    );
    net.deployer
        .advance_time(net.params.unlock_delay / 2)
        .await
        .unwrap();
    assert_revert(
        v.withdraw_collateral(Role::Validator).await,
        "UnlockNotReady",
    );
    // A validator waiting to unlock cannot register again until it has withdrawn.
    assert_revert(v.register_validator(locked).await, "CollateralPending");
    // After: paid back in full, exactly once.
    net.deployer
        .advance_time(net.params.unlock_delay / 2 + 1)
        .await
        .unwrap();
    v.withdraw_collateral(Role::Validator).await.unwrap();
    assert_eq!(net.balance(v.account()).await, sno(GENESIS_SNO));
    assert_revert(
        v.withdraw_collateral(Role::Validator).await,
        "NothingToWithdraw",
    );
    assert_eq!(net.balance(core).await, locked);
    // Not banned: it may come back.
    v.register_validator(locked).await.unwrap();
    assert!(net.is_validator(v.account()).await);
}

#[tokio::test]
async fn user_collateral_locks_and_unlocks_only_after_the_delay() {
    let net = Net::new(1, 1, 0).await;
    let u = &net.users[0];
    let locked = net.params.min_user_collateral;
    assert_eq!(net.balance(u.account()).await, sno(GENESIS_SNO) - locked);
    u.request_unlock(Role::User).await.unwrap();
    // An unlocking user can no longer request jobs.
    let deadline = u.timestamp().await.unwrap() + 1_000;
    assert_revert(
        u.request_job(B256::repeat_byte(1), sno(1), deadline).await,
        "NotRegistered",
    );
    assert_revert(u.withdraw_collateral(Role::User).await, "UnlockNotReady");
    net.deployer
        .advance_time(net.params.unlock_delay)
        .await
        .unwrap();
    u.withdraw_collateral(Role::User).await.unwrap();
    assert_eq!(net.balance(u.account()).await, sno(GENESIS_SNO));
}

#[tokio::test]
async fn collateral_below_the_minimum_is_refused() {
    let net = Net::new(0, 0, 0).await;
    let c = &net.outsider;
    let one = smartnodes_contracts::U256::from(1);
    let min_v = net.params.min_validator_collateral;
    let min_u = net.params.min_user_collateral;
    let min_w = net.params.min_worker_collateral;
    assert_revert(
        c.register_validator(min_v - one).await,
        "InsufficientCollateral",
    );
    assert_revert(c.register_user(min_u - one).await, "InsufficientCollateral");
    assert_revert(
        c.register_worker(min_w - one).await,
        "InsufficientCollateral",
    );
    c.register_user(min_u).await.unwrap();
    assert_revert(c.register_user(min_u).await, "AlreadyRegistered");
    // One registration per role: the same address can also be a worker.
    c.register_worker(min_w).await.unwrap();
    // A worker's stake unlocks after the delay, like any collateral, and stays slashable
    // until then; it may come back once it has withdrawn.
    c.request_unlock(Role::Worker).await.unwrap();
    let r = net
        .deployer
        .registration(Role::Worker, c.account())
        .await
        .unwrap();
    assert!(!r.active);
    assert_eq!(r.collateral, min_w);
    assert_revert(c.register_worker(min_w).await, "CollateralPending");
    assert_revert(c.withdraw_collateral(Role::Worker).await, "UnlockNotReady");
    net.deployer
        .advance_time(net.params.unlock_delay)
        .await
        .unwrap();
    c.withdraw_collateral(Role::Worker).await.unwrap();
    c.register_worker(min_w).await.unwrap();
    assert_eq!(
        net.balance(c.account()).await,
        sno(GENESIS_SNO) - min_u - min_w
    );
}
