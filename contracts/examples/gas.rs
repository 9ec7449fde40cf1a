//! Gas used by every Smartnodes call, and by epoch execution as workers and jobs grow.
//!
//! ```text
//! cargo run -p smartnodes-contracts --example gas               # print the table
//! cargo run -p smartnodes-contracts --example gas -- --write    # also write BENCHMARKS-gas.md
//! ```
//!
//! Runs on the embedded EVM (the same gas schedule as a Cancun chain), or against the
//! JSON-RPC node named by `SMARTNODES_TEST_RPC_URL` (anvil's first dev key deploys).

use std::fmt::Write as _;

use smartnodes_contracts::{
    job_key, keccak256, sno, Address, BlacklistEntry, Chain, EmbeddedEvm, Endpoint, EpochSummary,
    JobResult, JobResultsTree, Params, PrivateKeySigner, ReputationTree, RewardTree, Role,
    TxReceipt, B256, U256,
};

/// Single calls on the contract before issue 16 (commit 13f4a59), measured with that
/// commit's `examples/gas.rs` on the embedded EVM: (call as in this table, gas, what changed).
const BEFORE_CALLS: [(&str, u64, &str); 6] = [
    (
        "registerValidator (locks collateral)",
        204_993,
        "node key checked against the caller, peer-id hash, activation queue, stake total",
    ),
    (
        "registerUser (locks collateral)",
        114_742,
        "node key checked against the caller",
    ),
    (
        "registerWorker (stakes collateral)",
        73_162,
        "now locks a stake (a token transfer)",
    ),
    (
        "requestJob (escrows payment)",
        139_892,
        "job key keccak256(user, id), request epoch, escrow cap",
    ),
    (
        "refundJob (failed job, Merkle proof)",
        53_306,
        "request-epoch check",
    ),
    ("requestUnlock (worker)", 30_935, ""),
];

/// Epochs on the contract before issue 16 (commit 13f4a59), the same way: N workers, N jobs
/// escrowed and released as one sum; (N, propose, vote, executeEpoch, claim).
const BEFORE_EPOCHS: [(u64, u64, u64, u64, u64); 3] = [
    (10, 192_801, 87_983, 331_640, 115_968),
    (1_000, 192_801, 87_983, 331_640, 120_503),
    (10_000, 192_825, 87_983, 331_664, 122_028),
];

const ANVIL_KEY_0: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

struct Row {
    operation: String,
    gas: u64,
}

struct Net {
    deployer: Chain,
    validators: Vec<Chain>,
    user: Chain,
    params: Params,
}

async fn net(endpoint: &Endpoint, deployer: PrivateKeySigner) -> Net {
    let keys: Vec<PrivateKeySigner> = (0..4).map(|_| PrivateKeySigner::random()).collect();
    let treasury = PrivateKeySigner::random().address();
    let params = Params {
        epoch_duration: 100,
        round_duration: 3_600,
        proposers_per_round: 1,
        ..Params::new(treasury)
    };
    let genesis: Vec<(Address, U256)> =
        keys.iter().map(|k| (k.address(), sno(1_000_000))).collect();
    let deployer = Chain::deploy(endpoint, deployer, &params, &genesis)
        .await
        .expect("deploy");
    let chains: Vec<Chain> = keys
        .iter()
        .map(|k| deployer.with_signer(k.clone()))
        .collect();
    if deployer.backend_name() == "json-rpc" {
        for c in &chains {
            deployer
                .send_eth(c.account(), U256::from(10u128.pow(20)))
                .await
                .expect("fund");
        }
    }
    Net {
        deployer,
        validators: chains[..3].to_vec(),
        user: chains[3].clone(),
        params,
    }
}

impl Net {
    async fn open(&self) {
        let info = self.deployer.round_info().await.unwrap();
        let now = self.deployer.timestamp().await.unwrap();
        if now < info.proposals_open_at {
            self.deployer
                .advance_time(info.proposals_open_at - now)
                .await
                .unwrap();
        }
    }

    fn proposer(&self, a: Address) -> &Chain {
        self.validators.iter().find(|v| v.account() == a).unwrap()
    }

    /// Opens proposals, proposes `s` with the drawn proposer, adds a second (deciding) vote
    /// and executes: (propose, vote, execute) receipts.
    async fn epoch(&self, s: &EpochSummary) -> (TxReceipt, TxReceipt, TxReceipt) {
        self.open().await;
        let info = self.deployer.round_info().await.unwrap();
        let proposer = self.proposer(info.proposers[0]);
        let (propose, hash) = proposer.propose(s).await.unwrap();
        let voter = self
            .validators
            .iter()
            .find(|v| v.account() != proposer.account())
            .unwrap();
        let vote = voter.vote(s.epoch, hash).await.unwrap();
        let execute = proposer.execute(s).await.unwrap();
        (propose, vote, execute)
    }
}

/// One epoch with `n` completed jobs in the results root and `n` rewarded workers, of which
/// `released` jobs have their escrow released by the summary and `slashes` staked workers
/// are blacklisted (and slashed): returns (propose, vote, execute, claim) gas.
async fn epoch_with(
    endpoint: &Endpoint,
    deployer: PrivateKeySigner,
    n: usize,
    released: usize,
    slashes: usize,
) -> [u64; 4] {
    let net = net(endpoint, deployer).await;
    for v in &net.validators {
        v.register_validator(net.params.min_validator_collateral)
            .await
            .unwrap();
    }
    net.user
        .register_user(net.params.min_user_collateral)
        .await
        .unwrap();
    // `released` jobs, 1 SNO each, escrowed on chain one by one; the other results of the
    // root are jobs of the past.
    let deadline = net.user.timestamp().await.unwrap() + 1_000_000;
    net.user.approve_core(sno(released as u64)).await.unwrap();
    let job_ids: Vec<B256> = (0..n as u64).map(|i| keccak256(i.to_be_bytes())).collect();
    let mut escrowed = vec![];
    for id in &job_ids[..released] {
        net.user.request_job(*id, sno(1), deadline).await.unwrap();
        escrowed.push(job_key(net.user.account(), *id));
    }
    escrowed.sort();
    let mut cheats = vec![];
    for _ in 0..slashes {
        let c = net.deployer.with_signer(PrivateKeySigner::random());
        if net.deployer.backend_name() == "json-rpc" {
            net.deployer
                .send_eth(c.account(), U256::from(10u128.pow(18)))
                .await
                .unwrap();
        }
        net.user
            .transfer(c.account(), net.params.min_worker_collateral)
            .await
            .unwrap();
        c.register_worker(net.params.min_worker_collateral)
            .await
            .unwrap();
        cheats.push(c.account());
    }
    let epoch = 1;
    let jobs = JobResultsTree::new(
        epoch,
        job_ids
            .iter()
            .map(|id| (job_key(net.user.account(), *id), JobResult::Completed)),
    );
    let pot = net.params.emission_at(epoch) + sno(released as u64);
    let worker_pot = pot * U256::from(net.params.worker_bps) / U256::from(10_000);
    let per_worker = worker_pot / U256::from(n);
    let workers: Vec<PrivateKeySigner> = (0..n).map(|_| PrivateKeySigner::random()).collect();
    let rewards =
        RewardTree::new(epoch, workers.iter().map(|w| (w.address(), per_worker))).unwrap();
    let reputation = ReputationTree::new(epoch, workers.iter().map(|w| (w.address(), 100)));
    let summary = EpochSummary {
        epoch,
        job_results_root: jobs.root(),
        released_payments: sno(released as u64),
        worker_reward_root: rewards.root(),
        worker_reward_total: rewards.total(),
        reputation_root: reputation.root(),
        blacklist: cheats
            .iter()
            .map(|w| BlacklistEntry {
                worker: *w,
                evidence: keccak256(w),
            })
            .collect(),
        remove_validators: vec![],
        released_jobs: escrowed,
    };
    let (propose, vote, execute) = net.epoch(&summary).await;
    // Claims of epoch 1 vest with epoch 1 + vesting_epochs.
    for e in 2..=1 + net.params.vesting_epochs as u64 {
        net.epoch(&EpochSummary::empty(e)).await;
    }
    // The last worker claims (its proof is as long as any).
    let w = net.deployer.with_signer(workers[n - 1].clone());
    if net.deployer.backend_name() == "json-rpc" {
        net.deployer
            .send_eth(w.account(), U256::from(10u128.pow(18)))
            .await
            .unwrap();
    }
    let (amount, proof) = rewards.proof(&w.account()).unwrap();
    let claim = w.claim(epoch, amount, proof).await.unwrap();
    [
        propose.gas_used,
        vote.gas_used,
        execute.gas_used,
        claim.gas_used,
    ]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let write = std::env::args().any(|a| a == "--write");
    let (endpoint, deployer, backend) = match std::env::var("SMARTNODES_TEST_RPC_URL") {
        Ok(url) if !url.is_empty() => (
            Endpoint::Rpc(url),
            ANVIL_KEY_0.parse::<PrivateKeySigner>().unwrap(),
            "JSON-RPC node",
        ),
        _ => (
            Endpoint::Embedded(EmbeddedEvm::with_timestamp(1_700_000_000)),
            PrivateKeySigner::random(),
            "embedded revm (Cancun)",
        ),
    };
    let mut rows = vec![];
    let mut row = |operation: &str, gas: u64| {
        eprintln!("{operation:<40} {gas:>10}");
        rows.push(Row {
            operation: operation.to_owned(),
            gas,
        });
    };

    // Single calls, in a 3-validator network.
    let net = net(&endpoint, deployer.clone()).await;
    let v0 = &net.validators[0];
    let approve = v0.approve_core(sno(1_000_000)).await.unwrap();
    row("approve (SNO, before locking)", approve.gas_used);
    let r = v0
        .register_validator(net.params.min_validator_collateral)
        .await
        .unwrap();
    row("registerValidator (locks collateral)", r.gas_used);
    for v in &net.validators[1..] {
        v.register_validator(net.params.min_validator_collateral)
            .await
            .unwrap();
    }
    let u = &net.user;
    u.approve_core(sno(1_000_000)).await.unwrap();
    let r = u
        .register_user(net.params.min_user_collateral)
        .await
        .unwrap();
    row("registerUser (locks collateral)", r.gas_used);
    let worker = net.deployer.with_signer(PrivateKeySigner::random());
    if net.deployer.backend_name() == "json-rpc" {
        net.deployer
            .send_eth(worker.account(), U256::from(10u128.pow(18)))
            .await
            .unwrap();
    }
    u.transfer(worker.account(), net.params.min_worker_collateral)
        .await
        .unwrap();
    worker
        .approve_core(net.params.min_worker_collateral)
        .await
        .unwrap();
    let r = worker
        .register_worker(net.params.min_worker_collateral)
        .await
        .unwrap();
    row("registerWorker (stakes collateral)", r.gas_used);
    let deadline = u.timestamp().await.unwrap() + 100_000;
    let failed_job = B256::repeat_byte(0xF0);
    let r = u.request_job(failed_job, sno(10), deadline).await.unwrap();
    row("requestJob (escrows payment)", r.gas_used);
    let failed_key = job_key(u.account(), failed_job);
    let jobs = JobResultsTree::new(1, [(failed_key, JobResult::Failed)]);
    let s = EpochSummary {
        job_results_root: jobs.root(),
        ..EpochSummary::empty(1)
    };
    net.epoch(&s).await;
    let (result, proof) = jobs.proof(&failed_key).unwrap();
    let refund = u.refund_job(failed_job, 1, result, proof).await.unwrap();
    row("refundJob (failed job, Merkle proof)", refund.gas_used);
    let lost = B256::repeat_byte(0xE0);
    let now = u.timestamp().await.unwrap();
    u.request_job(lost, sno(10), now + 1_000).await.unwrap();
    net.deployer
        .advance_time(1_000 + net.params.job_grace_period + 1)
        .await
        .unwrap();
    let r = u.reclaim_job(lost).await.unwrap();
    row(
        "reclaimJob (unreported, after deadline + grace)",
        r.gas_used,
    );
    let unlock = worker.request_unlock(Role::Worker).await.unwrap();
    row("requestUnlock (worker)", unlock.gas_used);

    // Epochs of growing size: N workers and N job results, 10 jobs released, with and
    // without 4 slashed workers; then the released jobs alone growing to the bound.
    let mut scaled = vec![];
    for slashes in [0usize, 4] {
        for n in [10usize, 1_000, 10_000] {
            eprintln!("epoch with {n} workers and {n} job results, {slashes} slashes...");
            let g = epoch_with(&endpoint, deployer.clone(), n, 10, slashes).await;
            scaled.push((n, slashes, g));
        }
    }
    let mut by_release = vec![];
    for released in [0usize, 10, 100, 256] {
        eprintln!("epoch with {released} released jobs...");
        let g = epoch_with(&endpoint, deployer.clone(), 256, released, 0).await;
        by_release.push((released, g));
    }

    let mut md = String::new();
    writeln!(md, "# Smartnodes contracts: gas\n").unwrap();
    writeln!(
        md,
        "Measured on {backend} with `cargo run -p smartnodes-contracts --example gas -- --write`.\n\
         Gas as in the transaction receipt (21,000 intrinsic gas and calldata included). \
         Network: 3 validators with equal stake, 1 proposer per round, strict majority of \
         the stake (2 of 3 votes)."
    )
    .unwrap();
    writeln!(md, "\n## Single calls\n").unwrap();
    writeln!(md, "| call | gas |").unwrap();
    writeln!(md, "|---|---:|").unwrap();
    for r in &rows {
        writeln!(md, "| {} | {} |", r.operation, r.gas).unwrap();
    }
    writeln!(
        md,
        "\n## One epoch as it grows\n\n\
         Each epoch: N workers rewarded in the reward root, N workers in the reputation root, \
         N completed jobs in the job-results root, of which 10 (escrowed in this epoch) are \
         released from escrow by the summary; with 0 or 4 staked workers blacklisted and \
         slashed. `propose` includes the proposer's vote; `vote` is the second (deciding) \
         vote; `claim` is one worker's claim with its Merkle proof (ceil(log2 N) hashes), \
         once vested.\n"
    )
    .unwrap();
    writeln!(
        md,
        "| N workers = N job results | slashed | propose | vote | executeEpoch | execute vs N=10 | claim | claim vs N=10 |"
    )
    .unwrap();
    writeln!(md, "|---:|---:|---:|---:|---:|---:|---:|---:|").unwrap();
    for (n, slashes, g) in &scaled {
        let base = scaled
            .iter()
            .find(|(m, s, _)| *m == 10 && s == slashes)
            .unwrap()
            .2;
        writeln!(
            md,
            "| {} | {} | {} | {} | {} | {:.4}x | {} | {:.3}x |",
            n,
            slashes,
            g[0],
            g[1],
            g[2],
            g[2] as f64 / base[2] as f64,
            g[3],
            g[3] as f64 / base[3] as f64
        )
        .unwrap();
    }
    writeln!(
        md,
        "\nExecution does not loop over workers or job results: per-worker and per-job data \
         live in the Merkle roots, so `executeEpoch` costs the same at every N. It loops over \
         the voters, the blacklist (each entry slashes one stake: two or three token \
         transfers), the validator removals and activations (all bounded by the validator set), \
         and the jobs whose escrow this summary releases, which it marks one by one so that a \
         job leaves escrow once (at most `MAX_RELEASED_PER_EPOCH` = 256 per epoch):\n"
    )
    .unwrap();
    writeln!(md, "| released jobs | propose | executeEpoch |").unwrap();
    writeln!(md, "|---:|---:|---:|").unwrap();
    for (r, g) in &by_release {
        writeln!(md, "| {} | {} | {} |", r, g[0], g[2]).unwrap();
    }
    writeln!(
        md,
        "\n## Before issue 16 (commit 13f4a59)\n\n\
         Measured on embedded revm with commit 13f4a59's own \
         `cargo run -p smartnodes-contracts --example gas` (its claim step moved after epoch \
         2, which that commit's one-epoch vesting requires), on the same network. Workers \
         staked nothing, node keys were unchecked hashes, and completed jobs left escrow as \
         one sum (`releasedPayments`), recorded nowhere per job.\n"
    )
    .unwrap();
    writeln!(md, "| call | before | now | change | what changed |").unwrap();
    writeln!(md, "|---|---:|---:|---:|---|").unwrap();
    for (call, before, why) in BEFORE_CALLS {
        let now = rows.iter().find(|r| r.operation == call).unwrap().gas;
        writeln!(
            md,
            "| {call} | {before} | {now} | {:+} | {why} |",
            now as i64 - before as i64
        )
        .unwrap();
    }
    writeln!(
        md,
        "\n| N workers = N jobs | propose before | vote before | executeEpoch before | claim before | executeEpoch now, 0 / 10 jobs released |"
    )
    .unwrap();
    writeln!(md, "|---:|---:|---:|---:|---:|---:|").unwrap();
    let released_none = by_release.iter().find(|(r, _)| *r == 0).unwrap().1[2];
    for (n, propose, vote, execute, claim) in BEFORE_EPOCHS {
        let released_ten = scaled
            .iter()
            .find(|(m, s, _)| *m as u64 == n && *s == 0)
            .unwrap()
            .2[2];
        writeln!(
            md,
            "| {n} | {propose} | {vote} | {execute} | {claim} | {released_none} / {released_ten} |"
        )
        .unwrap();
    }
    writeln!(
        md,
        "\nThe cost now added to `executeEpoch` is per released job (named in the summary and \
         marked so that it leaves escrow once, bounded by 256 per epoch) and per slash; it \
         does not grow with the workers or the job results, before or now. (The 0-released \
         column is one measurement, at N = 256, repeated in each row.)"
    )
    .unwrap();
    print!("{md}");
    if write {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS-gas.md");
        std::fs::write(&path, &md).expect("write BENCHMARKS-gas.md");
        eprintln!("wrote {}", path.display());
    }
}
