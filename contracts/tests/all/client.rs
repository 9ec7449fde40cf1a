//! The client API behaves the same on both backends.

use smartnodes_contracts::{sno, Address, Chain, Deployment, Error, PrivateKeySigner, U256};

use crate::common::{assert_revert, Net, GENESIS_SNO};

#[tokio::test]
async fn connect_checks_the_deployment() {
    let net = Net::new(1, 0, 0).await;
    let d = net.deployer.deployment();
    let endpoint = net.endpoint();
    let key = PrivateKeySigner::random();
    let c = Chain::connect(&endpoint, key.clone(), d).await.unwrap();
    assert_eq!(c.deployment(), d);
    assert_eq!(c.account(), key.address());
    assert_eq!(c.params().await.unwrap(), net.params);
    // A token the core did not create, or a core that is not there, is refused.
    let wrong_token = Deployment {
        token: Address::repeat_byte(1),
        ..d
    };
    assert!(matches!(
        Chain::connect(&endpoint, key.clone(), wrong_token).await,
        Err(Error::InvalidArgument(_))
    ));
    let no_core = Deployment {
        core: Address::repeat_byte(2),
        ..d
    };
    assert!(Chain::connect(&endpoint, key, no_core).await.is_err());
}

#[tokio::test]
async fn time_moves_forward_on_request() {
    let net = Net::new(0, 0, 0).await;
    let before = net.deployer.timestamp().await.unwrap();
    net.deployer.advance_time(5_000).await.unwrap();
    let after = net.deployer.timestamp().await.unwrap();
    assert!(after >= before + 5_000, "{before} -> {after}");
    // Wall-clock nodes may add a few seconds of their own, not hours.
    assert!(after < before + 5_000 + 600, "{before} -> {after}");
}

#[tokio::test]
async fn token_basics_and_errors_are_the_same_everywhere() {
    let net = Net::new(0, 1, 0).await;
    let u = &net.users[0];
    let other = &net.outsider;
    let supply = net.deployer.total_supply().await.unwrap();
    u.transfer(other.account(), sno(1)).await.unwrap();
    assert_eq!(net.balance(other.account()).await, sno(GENESIS_SNO + 1));
    assert_eq!(net.deployer.total_supply().await.unwrap(), supply);
    // OpenZeppelin's own errors are decoded by name too.
    assert_revert(
        u.transfer(other.account(), sno(10 * GENESIS_SNO)).await,
        "ERC20InsufficientBalance",
    );
    let e = u.token_mint(u.account(), U256::from(1)).await.unwrap_err();
    assert_eq!(e.revert_name(), Some("NotCore"));
    assert!(e.to_string().contains("NotCore"), "{e}");
}
