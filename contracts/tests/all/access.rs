//! Every privileged function reverts for every wrong caller.

use smartnodes_contracts::{
    job_key, sno, Chain, EpochSummary, JobResult, JobResultsTree, Result, RewardTree, Role,
    TxReceipt, B256, U256,
};

use crate::common::{assert_revert, Net};

/// One privileged call.
#[derive(Debug, Clone)]
enum Call {
    Mint,
    Propose(EpochSummary),
    Vote(B256),
    Execute(EpochSummary),
    RequestJob,
    RefundJob(B256, u64, Vec<B256>),
    ReclaimJob(B256),
    RequestUnlock(Role),
    Withdraw(Role),
    Claim(u64, U256, Vec<B256>),
}

impl Call {
    async fn run(&self, c: &Chain) -> Result<TxReceipt> {
        match self {
            Call::Mint => c.token_mint(c.account(), sno(1)).await,
            Call::Propose(s) => c.propose(s).await.map(|r| r.0),
            Call::Vote(h) => c.vote(c.current_epoch().await?, *h).await,
            Call::Execute(s) => c.execute(s).await,
            Call::RequestJob => {
                let deadline = c.timestamp().await? + 10_000;
                c.request_job(B256::repeat_byte(0xAB), sno(1), deadline)
                    .await
            }
            Call::RefundJob(id, epoch, proof) => {
                c.refund_job(*id, *epoch, JobResult::Failed, proof.clone())
                    .await
            }
            Call::ReclaimJob(id) => c.reclaim_job(*id).await,
            Call::RequestUnlock(role) => c.request_unlock(*role).await,
            Call::Withdraw(role) => c.withdraw_collateral(*role).await,
            Call::Claim(epoch, amount, proof) => c.claim(*epoch, *amount, proof.clone()).await,
        }
    }
}

#[tokio::test]
async fn every_privileged_function_rejects_every_wrong_caller() {
    let net = Net::new(3, 2, 2).await;
    let user = &net.users[0];
    let worker = &net.workers[0];

    // Epoch 1: a failed job and a reward for worker 0, so refunds and claims have real proofs.
    let job_id = B256::repeat_byte(0x11);
    let deadline = user.timestamp().await.unwrap() + 100_000;
    user.request_job(job_id, sno(5), deadline).await.unwrap();
    let key = job_key(user.account(), job_id);
    let jobs = JobResultsTree::new(1, [(key, JobResult::Failed)]);
    let rewards = RewardTree::new(1, [(worker.account(), sno(7))]).unwrap();
    let s1 = EpochSummary {
        job_results_root: jobs.root(),
        worker_reward_root: rewards.root(),
        worker_reward_total: rewards.total(),
        ..EpochSummary::empty(1)
    };
    net.run_epoch(&s1).await;
    let (_, job_proof) = jobs.proof(&key).unwrap();
    let (amount, reward_proof) = rewards.proof(&worker.account()).unwrap();

    // Epoch 2: an open proposal to vote on and execute.
    net.open_proposals().await;
    let s2 = EpochSummary::empty(2);
    let proposer = net.proposer().await;
    proposer.propose(&s2).await.unwrap();
    let other = EpochSummary {
        reputation_root: B256::repeat_byte(9),
        ..EpochSummary::empty(2)
    };
    let non_proposers: Vec<&Chain> = net
        .validators
        .iter()
        .filter(|v| v.account() != proposer.account())
        .collect();

    let mut not_users = net.non_validators();
    not_users.retain(|c| !net.users.iter().any(|u| u.account() == c.account()));
    not_users.extend(net.validators.iter());
    let not_job_owner: Vec<&Chain> = net
        .everyone()
        .into_iter()
        .filter(|c| c.account() != user.account())
        .collect();
    let not_worker: Vec<&Chain> = net
        .everyone()
        .into_iter()
        .filter(|c| c.account() != worker.account())
        .collect();

    let table: Vec<(Call, Vec<&Chain>, &str)> = vec![
        // Only the core mints SNO: nobody else, not even the deployer.
        (Call::Mint, net.everyone(), "NotCore"),
        // Only validators propose, and only the drawn proposer.
        (
            Call::Propose(other.clone()),
            net.non_validators(),
            "NotValidator",
        ),
        (
            Call::Propose(other.clone()),
            non_proposers.clone(),
            "NotProposer",
        ),
        // Only validators vote and execute.
        (Call::Vote(s2.hash()), net.non_validators(), "NotValidator"),
        (
            Call::Execute(s2.clone()),
            net.non_validators(),
            "NotValidator",
        ),
        // Only registered users escrow jobs.
        (Call::RequestJob, not_users, "NotRegistered"),
        // Only the job's user gets its refund.
        (
            Call::RefundJob(job_id, 1, job_proof.clone()),
            not_job_owner.clone(),
            "NotJobOwner",
        ),
        // Only the job's user reclaims it (job ids are namespaced by their user).
        (Call::ReclaimJob(job_id), not_job_owner, "NotJobOwner"),
        // Only registered accounts leave a role; only they withdraw.
        (
            Call::RequestUnlock(Role::Validator),
            net.non_validators(),
            "NotRegistered",
        ),
        (
            Call::Withdraw(Role::Validator),
            net.non_validators(),
            "NothingToWithdraw",
        ),
        (
            Call::RequestUnlock(Role::User),
            vec![&net.outsider, &net.deployer, worker],
            "NotRegistered",
        ),
        (
            Call::Withdraw(Role::User),
            vec![&net.outsider, &net.deployer, worker],
            "NothingToWithdraw",
        ),
        (
            Call::RequestUnlock(Role::Worker),
            vec![&net.outsider, user, &net.validators[0]],
            "NotRegistered",
        ),
        // A reward leaf pays only the address it names.
        (
            Call::Claim(1, amount, reward_proof.clone()),
            not_worker,
            "InvalidProof",
        ),
    ];

    let supply = net.deployer.total_supply().await.unwrap();
    let escrowed = net.deployer.total_escrowed().await.unwrap();
    let mut checked = 0;
    for (call, callers, expected) in &table {
        assert!(!callers.is_empty(), "{call:?} has no wrong callers to try");
        for caller in callers {
            let r = call.run(caller).await;
            assert!(r.is_err(), "{call:?} from {} succeeded", caller.account());
            assert_revert(r, expected);
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} cases");
    // Nothing moved.
    assert_eq!(net.deployer.total_supply().await.unwrap(), supply);
    assert_eq!(net.deployer.total_escrowed().await.unwrap(), escrowed);
    assert_eq!(net.deployer.current_epoch().await.unwrap(), 2);

    // And the right callers succeed, so the table is not passing for a wrong reason.
    user.refund_job(job_id, 1, JobResult::Failed, job_proof)
        .await
        .unwrap();
    // Claims for epoch 1 open once epoch 2 has executed (it vests with it).
    assert_revert(
        worker.claim(1, amount, reward_proof.clone()).await,
        "NotVested",
    );
    let voter = non_proposers[0];
    voter.vote(2, s2.hash()).await.unwrap();
    voter.execute(&s2).await.unwrap();
    assert_eq!(net.deployer.current_epoch().await.unwrap(), 3);
    worker.claim(1, amount, reward_proof).await.unwrap();
}
