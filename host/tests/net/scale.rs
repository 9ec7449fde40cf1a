//! Scale (issue 22): a crowd of new workers on five validators. No honest peer is dropped
//! (asserted on every node's `peers_dropped` counter, not on the log), each job's
//! re-executed share stays within its check budget although every worker is new, and a
//! cheater among them is still caught.

use smartnodes::harness::{Network, NetworkConfig};
use smartnodes::net::proto::{JobLimits, JobResponse, WorkerStatus};
use smartnodes::roles::user::{JobRequestSpec, UserSession};
use std::time::Duration;

const WORKERS: usize = 32;
const TASKS: usize = 64;
/// Jobs at most until the cheater is caught. It lies on every result and delivers about
/// 64 / 32 = 2 of each job's, each re-executed with probability 1 while the job's budget
/// lasts and at least the 5 % sample rate after it: a job misses it with probability at
/// most 0.95² ≈ 0.9 if every one of its results came after the budget ran out, about
/// 0.8² = 0.64 if they came at random times (the budget covers 20 % of the job). Sixty
/// jobs all missing it: under 10⁻¹¹ at random times, 0.2 % in the worst order.
const MAX_JOBS: usize = 60;

fn job(n: usize) -> JobRequestSpec {
    JobRequestSpec {
        module: smartnodes_examples::WORDCOUNT.to_vec(),
        inputs: (0..TASKS)
            .map(|i| format!("scale job {n} task {i} {}", "word ".repeat(i % 7)).into_bytes())
            .collect(),
        limits: JobLimits::default(),
        sample_ppm: 0,
    }
}

async fn workers(session: &UserSession) -> Vec<WorkerStatus> {
    match session.status(None).await.unwrap() {
        JobResponse::Status { workers, .. } => workers,
        other => panic!("unexpected answer {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_of_new_workers_is_checked_within_budget_and_no_honest_peer_is_dropped() {
    crate::common::init_logging();
    let net = Network::start(NetworkConfig {
        validators: 5,
        workers: WORKERS,
        worker_slots: 1,
        cheaters: vec!["wrong-output:1".parse().unwrap()],
        ..NetworkConfig::default()
    })
    .await
    .unwrap();
    let cheater = net.workers[0].peer_id().to_string();
    let mut sessions = Vec::new();
    for v in &net.validators {
        sessions.push(UserSession::connect(v.addr()).await.unwrap());
    }
    let budget = f64::from(smartnodes::roles::DEFAULT_CHECK_BUDGET_PPM) / 1e6;
    let base = f64::from(smartnodes::roles::DEFAULT_SAMPLE_PPM) / 1e6;
    let (mut caught_after, mut costs) = (None, Vec::new());
    for n in 0..MAX_JOBS {
        // Round robin over the validators, every worker new to each of them at first.
        let session = &sessions[n % sessions.len()];
        let job_id = session.submit(&job(n)).await.unwrap();
        session
            .wait(job_id, TASKS as u32, Duration::from_secs(120), |_, _| {})
            .await
            .unwrap();
        if let JobResponse::Status { jobs, .. } = session.status(Some(job_id)).await.unwrap() {
            let j = &jobs[0];
            costs.push(j.verify_fuel as f64 / j.total_fuel.max(1) as f64);
        }
        let blacklisted = workers(session)
            .await
            .iter()
            .any(|w| w.peer == cheater && w.blacklisted.is_some());
        if blacklisted && caught_after.is_none() {
            caught_after = Some(n + 1);
        }
        // At least four jobs, for the cost figures; then until the cheater is caught.
        if n >= 3 && caught_after.is_some() {
            break;
        }
    }
    eprintln!("verification cost per job: {costs:?}; cheater caught after {caught_after:?} jobs");
    let caught_after = caught_after.expect("the cheater was never caught");
    assert!(caught_after <= MAX_JOBS);
    // Each job's re-executed share stays within its budget (a few results over at most:
    // sampled at the base rate once the budget ran out; the withdrawn cheater's re-runs
    // add their own results). Without the budget every result of a new worker was re-run:
    // a cost of 100 %.
    for (n, cost) in costs.iter().enumerate() {
        assert!(
            *cost <= budget.max(base) + 8.0 / TASKS as f64,
            "job {n}: {:.1} % of its fuel re-executed",
            cost * 100.0
        );
    }
    // No honest peer was dropped by anyone: every node's counter is zero. (Only the cheater
    // could deserve it, and lies are not malformed messages.)
    for node in net.validators.iter().chain(&net.workers) {
        assert_eq!(
            node.metrics.peers_dropped_total(),
            0,
            "{} dropped a peer",
            node.peer_id()
        );
    }
    for s in sessions {
        s.close().await;
    }
    net.stop().await;
}
