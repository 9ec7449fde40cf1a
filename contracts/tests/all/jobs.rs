//! Job escrow: completed jobs release their payment to the epoch's pot; failed or expired
//! jobs are refunded to their user.

use smartnodes_contracts::{
    job_key, sno, EpochSummary, JobResult, JobResultsTree, JobState, B256, U256,
};

use crate::common::{assert_revert, Net};

#[tokio::test]
async fn a_completed_job_releases_its_payment_to_the_reward_pot() {
    let net = Net::new(1, 1, 0).await;
    let user = &net.users[0];
    let core = net.deployer.deployment().core;
    let id = B256::repeat_byte(0xC0);
    let deadline = user.timestamp().await.unwrap() + 10_000;
    let before = net.balance(user.account()).await;
    user.request_job(id, sno(200), deadline).await.unwrap();
    assert_eq!(net.balance(user.account()).await, before - sno(200));
    assert_eq!(net.deployer.total_escrowed().await.unwrap(), sno(200));
    let key = job_key(user.account(), id);
    let job = net.deployer.job(key).await.unwrap();
    assert_eq!(job.state, JobState::Escrowed);
    assert_eq!(job.user, user.account());
    assert_eq!(job.payment, sno(200));
    assert_revert(user.request_job(id, sno(1), deadline).await, "JobExists");

    let jobs = JobResultsTree::new(1, [(key, JobResult::Completed)]);
    let s = EpochSummary {
        job_results_root: jobs.root(),
        released_payments: sno(200),
        released_jobs: vec![key],
        ..EpochSummary::empty(1)
    };
    let core_before = net.balance(core).await;
    net.run_epoch(&s).await;
    // Pot = 1,000 emission + 200 released; nothing for workers in this summary, so voters
    // get 10% and the treasury the rest, and nothing stays behind in the core.
    assert_eq!(net.deployer.total_escrowed().await.unwrap(), U256::ZERO);
    let record = net.deployer.epoch_record(1).await.unwrap();
    assert_eq!(record.released_payments, sno(200));
    assert_eq!(net.balance(net.treasury).await, sno(1_080));
    assert_eq!(net.balance(core).await, core_before - sno(200));
    assert_eq!(
        net.deployer.job(key).await.unwrap().state,
        JobState::Released
    );
    // A completed job is not refundable: not as completed, and not by pretending it failed.
    let (result, proof) = jobs.proof(&key).unwrap();
    assert_eq!(result, JobResult::Completed);
    assert_revert(
        user.refund_job(id, 1, JobResult::Completed, proof.clone())
            .await,
        "JobNotEscrowed",
    );
    assert_revert(
        user.refund_job(id, 1, JobResult::Failed, proof).await,
        "JobNotEscrowed",
    );
}

#[tokio::test]
async fn failed_and_expired_jobs_are_refunded_to_their_user_once() {
    let net = Net::new(1, 2, 0).await;
    let (alice, bob) = (&net.users[0], &net.users[1]);
    let failed = B256::repeat_byte(0xF1);
    let expired = B256::repeat_byte(0xE1);
    let done = B256::repeat_byte(0xD1);
    let now = alice.timestamp().await.unwrap();
    alice
        .request_job(failed, sno(30), now + 10_000)
        .await
        .unwrap();
    bob.request_job(expired, sno(40), now + 50).await.unwrap();
    alice.request_job(done, sno(5), now + 10_000).await.unwrap();
    assert_eq!(net.deployer.total_escrowed().await.unwrap(), sno(75));
    let (failed_key, expired_key, done_key) = (
        job_key(alice.account(), failed),
        job_key(bob.account(), expired),
        job_key(alice.account(), done),
    );
    let jobs = JobResultsTree::new(
        1,
        [
            (failed_key, JobResult::Failed),
            (expired_key, JobResult::Expired),
            (done_key, JobResult::Completed),
        ],
    );
    net.run_epoch(&EpochSummary {
        job_results_root: jobs.root(),
        released_payments: sno(5),
        released_jobs: vec![done_key],
        ..EpochSummary::empty(1)
    })
    .await;
    assert_eq!(net.deployer.total_escrowed().await.unwrap(), sno(70));

    let alice_before = net.balance(alice.account()).await;
    let (r, proof) = jobs.proof(&failed_key).unwrap();
    // The wrong epoch, or a result the root does not hold, fails.
    assert_revert(
        alice.refund_job(failed, 2, r, proof.clone()).await,
        "EpochNotExecuted",
    );
    assert_revert(
        alice
            .refund_job(failed, 1, JobResult::Expired, proof.clone())
            .await,
        "InvalidProof",
    );
    alice.refund_job(failed, 1, r, proof.clone()).await.unwrap();
    assert_eq!(net.balance(alice.account()).await, alice_before + sno(30));
    assert_eq!(
        net.deployer.job(failed_key).await.unwrap().state,
        JobState::Refunded
    );
    assert_revert(
        alice.refund_job(failed, 1, r, proof).await,
        "JobNotEscrowed",
    );

    let bob_before = net.balance(bob.account()).await;
    let (r, proof) = jobs.proof(&expired_key).unwrap();
    assert_eq!(r, JobResult::Expired);
    bob.refund_job(expired, 1, r, proof).await.unwrap();
    assert_eq!(net.balance(bob.account()).await, bob_before + sno(40));
    assert_eq!(net.deployer.total_escrowed().await.unwrap(), U256::ZERO);
}

#[tokio::test]
async fn an_epoch_cannot_release_more_than_is_escrowed() {
    let net = Net::new(1, 1, 0).await;
    let user = &net.users[0];
    let deadline = user.timestamp().await.unwrap() + 10_000;
    user.request_job(B256::repeat_byte(1), sno(10), deadline)
        .await
        .unwrap();
    net.open_proposals().await;
    let p = net.proposer().await;
    let key = job_key(user.account(), B256::repeat_byte(1));
    // The released total is the listed jobs' escrow, no more and no less.
    for (released_payments, released_jobs, error) in [
        (sno(11), vec![], "ReleaseMismatch"),
        (sno(11), vec![key], "ReleaseMismatch"),
        (sno(10), vec![], "ReleaseMismatch"),
        (sno(20), vec![key, key], "JobNotEscrowed"),
        (sno(10), vec![B256::repeat_byte(9)], "JobNotEscrowed"),
    ] {
        let greedy = EpochSummary {
            released_payments,
            released_jobs,
            ..EpochSummary::empty(1)
        };
        assert_revert(p.propose(&greedy).await, error);
    }
    // Bad jobs are refused up front as well.
    assert_revert(
        user.request_job(B256::ZERO, sno(1), deadline).await,
        "InvalidJob",
    );
    assert_revert(
        user.request_job(B256::repeat_byte(2), U256::ZERO, deadline)
            .await,
        "InvalidJob",
    );
    let now = user.timestamp().await.unwrap();
    assert_revert(
        user.request_job(B256::repeat_byte(3), sno(1), now.saturating_sub(1))
            .await,
        "InvalidJob",
    );
}
