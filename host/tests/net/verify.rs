//! Verification: cheaters are caught by sampled re-execution, proven, blacklisted on every
//! validator, and their results re-run; honest workers are never accused; a forged proof
//! is refused.

use crate::common::check_report;
use smartnodes::harness::{Network, NetworkConfig};
use smartnodes::net::proto::{
    protocols, FraudClaim, FraudProof, Gossip, JobLimits, JobResponse, Observed, ProofStatus,
    TaskSpec, WorkerStatus,
};
use smartnodes::net::{Event, Request, Response};
use smartnodes::roles::cheat::Cheat;
use smartnodes::roles::user::{JobRequestSpec, UserSession};
use smartnodes::store::Store;
use std::time::Duration;

/// `n` small wordcount inputs, distinct across jobs (so no two tasks have one output).
fn inputs(job: usize, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("job{job} task{i} {}", "word ".repeat(i % 3)).into_bytes())
        .collect()
}

fn wordcount(inputs: Vec<Vec<u8>>) -> JobRequestSpec {
    JobRequestSpec {
        module: smartnodes_examples::WORDCOUNT.to_vec(),
        inputs,
        limits: JobLimits::default(),
        sample_ppm: 0,
    }
}

async fn status(session: &UserSession) -> (Vec<WorkerStatus>, Vec<ProofStatus>) {
    match session.status(None).await.unwrap() {
        JobResponse::Status {
            workers, proofs, ..
        } => (workers, proofs),
        other => panic!("unexpected answer {other:?}"),
    }
}

/// Polls `session`'s validator until `f` says yes, for at most `secs`.
async fn eventually<T>(
    session: &UserSession,
    secs: u64,
    mut f: impl FnMut(&[WorkerStatus], &[ProofStatus]) -> Option<T>,
) -> Option<T> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        let (workers, proofs) = status(session).await;
        if let Some(t) = f(&workers, &proofs) {
            return Some(t);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// One cheater at 10 % among three workers, validators sampling 5 % by default: jobs of
/// 100 tasks until the cheater is blacklisted (at most 3,000 tasks), then every check the
/// issue asks for.
async fn a_cheater_is_caught(mode: &str) {
    crate::common::init_logging();
    let cheat: Cheat = format!("{mode}:0.1").parse().unwrap();
    let net = Network::start(NetworkConfig {
        validators: 2,
        workers: 3,
        cheaters: vec![cheat],
        ..NetworkConfig::default()
    })
    .await
    .unwrap();
    let cheater = net.workers[0].peer_id().to_string();
    let session = UserSession::connect(net.validators[0].addr())
        .await
        .unwrap();
    let mut jobs = Vec::new();
    let mut tasks = 0;
    let proof = loop {
        assert!(tasks < 3000, "{mode}: not caught after {tasks} tasks");
        let inputs = inputs(jobs.len(), 100);
        let job_id = session.submit(&wordcount(inputs.clone())).await.unwrap();
        session
            .wait(job_id, 100, Duration::from_secs(60), |_, _| {})
            .await
            .unwrap();
        jobs.push((job_id, inputs));
        tasks += 100;
        let (workers, _) = status(&session).await;
        let w = workers.iter().find(|w| w.peer == cheater);
        if let Some(proof) = w.and_then(|w| w.blacklisted.clone()) {
            break proof;
        }
    };
    eprintln!("{mode}: caught within {tasks} tasks, proof {proof}");
    let (workers, proofs) = status(&session).await;
    // (A receipt false by its form is proven as it arrives: two arriving together can give
    // two proofs, both against the cheater.)
    assert!(proofs.iter().any(|p| p.id == proof), "{proofs:?}");
    assert!(
        proofs.iter().all(|p| p.accepted && p.worker == cheater),
        "{proofs:?}"
    );
    for w in workers.iter().filter(|w| w.peer != cheater) {
        assert_eq!(w.blacklisted, None, "an honest worker accused: {w:?}");
    }

    // The proof re-checks on the second validator, which blacklists the cheater too.
    let second = UserSession::connect(net.validators[1].addr())
        .await
        .unwrap();
    let confirmed = eventually(&second, 60, |workers, proofs| {
        let w = workers.iter().find(|w| w.peer == cheater)?;
        (w.blacklisted.as_deref() == Some(proof.as_str())
            && proofs.iter().any(|p| p.id == proof && p.accepted))
        .then_some(())
    })
    .await;
    assert!(
        confirmed.is_some(),
        "{mode}: the second validator did not take the proof"
    );

    // The cheater gets no more tasks.
    let last = inputs(jobs.len(), 60);
    let report = session
        .run_job(&wordcount(last.clone()), Duration::from_secs(60), |_, _| {})
        .await
        .unwrap();
    assert!(report.tasks.iter().all(|t| t.worker.to_string() != cheater));
    check_report(
        &report,
        smartnodes_examples::WORDCOUNT,
        &last,
        &JobLimits::default(),
    );

    // And in the end every output of every job is right: the cheater's results were
    // withdrawn and re-run by honest workers.
    let mut revoked = 0;
    for (job_id, inputs) in &jobs {
        let report = session
            .wait(*job_id, 100, Duration::from_secs(60), |_, _| {})
            .await
            .unwrap();
        check_report(
            &report,
            smartnodes_examples::WORDCOUNT,
            inputs,
            &JobLimits::default(),
        );
        assert!(report.tasks.iter().all(|t| t.worker.to_string() != cheater));
        if let JobResponse::Status { jobs, .. } = session.status(Some(*job_id)).await.unwrap() {
            revoked += jobs[0].revoked;
        }
    }
    // A lie false by its form (`engine`: another engine's fingerprint) is refused on
    // arrival, never accepted: what is withdrawn is only the cheater's honest results
    // accepted before it, of which it may have none (its first result can be a lie). Every
    // other lie is accepted, then re-executed and withdrawn.
    if mode != "engine" {
        assert!(revoked > 0, "the cheater's results were withdrawn");
    }
    second.close().await;
    session.close().await;
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_output_cheater_is_caught_proven_and_blacklisted() {
    a_cheater_is_caught("wrong-output").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lazy_cheater_is_caught_proven_and_blacklisted() {
    a_cheater_is_caught("lazy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fuel_cheater_is_caught_proven_and_blacklisted() {
    a_cheater_is_caught("fuel").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_cheater_is_caught_proven_and_blacklisted() {
    a_cheater_is_caught("copy").await;
}

/// Signs with a foreign engine: refused before acknowledgement, proven by the receipt's
/// form (no re-execution), and the second validator takes the proof by form too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_cheater_is_caught_proven_and_blacklisted() {
    a_cheater_is_caught("engine").await;
}

/// Claims a stack overflow for tasks that completed: under the meter a stack overflow is a
/// deterministic verdict, so re-execution proves it false (no "not reproducible" door).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overflow_cheater_is_caught_proven_and_blacklisted() {
    a_cheater_is_caught("overflow").await;
}

/// Honest output, fuel claimed x50.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inflate_cheater_is_caught_proven_and_blacklisted() {
    a_cheater_is_caught("inflate").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_honest_tasks_and_no_fraud_claimed() {
    crate::common::init_logging();
    let net = Network::start(NetworkConfig {
        workers: 4,
        ..NetworkConfig::default()
    })
    .await
    .unwrap();
    let session = UserSession::connect(net.validator_addr()).await.unwrap();
    let inputs: Vec<Vec<u8>> = (0..10_000).map(|i| format!("n{i}").into_bytes()).collect();
    let report = session
        .run_job(
            &wordcount(inputs.clone()),
            Duration::from_secs(120),
            |_, _| {},
        )
        .await
        .unwrap();
    check_report(
        &report,
        smartnodes_examples::WORDCOUNT,
        &inputs,
        &JobLimits::default(),
    );
    let JobResponse::Status {
        jobs,
        workers,
        proofs,
    } = session.status(Some(report.job_id)).await.unwrap()
    else {
        panic!("no status")
    };
    assert!(proofs.is_empty(), "{proofs:?}");
    assert_eq!(workers.len(), 4);
    assert!(workers.iter().all(|w| w.blacklisted.is_none()));
    let verified: u64 = workers.iter().map(|w| w.verified).sum();
    let job = &jobs[0];
    eprintln!(
        "10,000 honest tasks: {} sampled ({verified} verified), verification cost {:.2} % of {} fuel",
        job.sampled,
        100.0 * job.verify_fuel as f64 / job.total_fuel as f64,
        job.total_fuel
    );
    assert_eq!(job.sampled as u64, verified);
    // At least the 5 % default, and not everything.
    assert!(job.sampled >= 500 && job.sampled < 2_000, "{}", job.sampled);
    assert_eq!(job.revoked, 0);
    session.close().await;
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_fraud_proof_is_refused() {
    crate::common::init_logging();
    let net = Network::start(NetworkConfig {
        workers: 2,
        ..NetworkConfig::default()
    })
    .await
    .unwrap();
    let session = UserSession::connect(net.validator_addr()).await.unwrap();
    let inputs = inputs(0, 10);
    let job = wordcount(inputs.clone());
    let report = session
        .run_job(&job, Duration::from_secs(60), |_, _| {})
        .await
        .unwrap();
    let honest = &report.tasks[3];

    // A rogue validator with a valid key signs a claim that the honest receipt's fuel is
    // off by one, and serves the task's blobs so the claim can be checked.
    let rogue = libp2p::identity::Keypair::generate_ed25519();
    let store = Store::temporary().unwrap();
    let module = store.put_blob(&job.module).unwrap();
    let input = store.put_blob(&inputs[3]).unwrap();
    let (client, mut events, _) = smartnodes::net::start(rogue.clone(), None).await.unwrap();
    let (c, s) = (client.clone(), store.clone());
    let server = tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let Event::Inbound {
                request: Request::Blob(r),
                responder,
                ..
            } = event
            {
                let answer = smartnodes::roles::blobs::serve(&s, &r);
                c.respond(responder, Response::Blob(answer)).await;
            }
        }
    });
    client.dial(net.validator_addr()).await.unwrap();
    let claimed = Observed::claimed(&honest.receipt.body);
    let forged = FraudProof::sign(
        FraudClaim {
            task: TaskSpec {
                job_id: report.job_id,
                index: 3,
                module,
                input,
                limits: job.limits,
            },
            receipt: honest.receipt.clone(),
            observed: Observed {
                fuel_used: claimed.fuel_used + 1,
                ..claimed
            },
            validator: rogue.public().to_peer_id().to_bytes(),
        },
        &rogue,
    );
    forged
        .check_form()
        .expect("well formed: only re-running shows it false");
    let id = hex::encode(forged.id());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let refusal = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the validator never judged the proof"
        );
        client
            .publish(
                protocols::TOPIC_FRAUD,
                Gossip::Fraud(Box::new(forged.clone())),
            )
            .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (_, proofs) = status(&session).await;
        if let Some(p) = proofs.into_iter().find(|p| p.id == id) {
            break p;
        }
    };
    assert!(!refusal.accepted);
    let why = refusal.refused_because.unwrap();
    assert!(why.contains("re-running the task gives"), "{why}");
    let (workers, _) = status(&session).await;
    assert!(
        workers.iter().all(|w| w.blacklisted.is_none()),
        "{workers:?}"
    );

    // The accused worker still gets work.
    let again = session
        .run_job(
            &wordcount(inputs.clone()),
            Duration::from_secs(60),
            |_, _| {},
        )
        .await
        .unwrap();
    assert_eq!(again.tasks.len(), 10);
    server.abort();
    client.shutdown().await;
    session.close().await;
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_may_ask_for_more_checks() {
    crate::common::init_logging();
    let net = Network::start(NetworkConfig::default()).await.unwrap();
    let session = UserSession::connect(net.validator_addr()).await.unwrap();
    let sampled = |job_id| {
        let session = &session;
        async move {
            match session.status(Some(job_id)).await.unwrap() {
                JobResponse::Status { jobs, .. } => jobs[0].sampled,
                other => panic!("{other:?}"),
            }
        }
    };
    // Workers earn a record first (new workers are checked every time).
    let warm = session
        .run_job(
            &wordcount(inputs(0, 300)),
            Duration::from_secs(60),
            |_, _| {},
        )
        .await
        .unwrap();
    assert!(sampled(warm.job_id).await < 300);
    let plain = session
        .run_job(
            &wordcount(inputs(1, 100)),
            Duration::from_secs(60),
            |_, _| {},
        )
        .await
        .unwrap();
    let mut all = wordcount(inputs(2, 100));
    all.sample_ppm = 1_000_000;
    let checked = session
        .run_job(&all, Duration::from_secs(60), |_, _| {})
        .await
        .unwrap();
    let (p, c) = (sampled(plain.job_id).await, sampled(checked.job_id).await);
    eprintln!("sampled: {p} of 100 by default, {c} of 100 when the job asks for 100 %");
    assert!(p < 100, "{p}");
    assert_eq!(c, 100);
    session.close().await;
    net.stop().await;
}

/// A task that recurses too deep: every worker reports the meter's deterministic stack
/// overflow, and the validator, re-executing every result, agrees (verified, no proof).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_too_deep_recursion_is_verified_not_disputed() {
    crate::common::init_logging();
    let net = Network::start(NetworkConfig::default()).await.unwrap();
    let session = UserSession::connect(net.validator_addr()).await.unwrap();
    let module = wat::parse_str(
        r#"(module
             (memory (export "memory") 1)
             (func $f (param i64) (result i64)
               (i64.add (call $f (i64.add (local.get 0) (i64.const 1))) (i64.const 1)))
             (func (export "_start") (drop (call $f (i64.const 0)))))"#,
    )
    .unwrap();
    let job = JobRequestSpec {
        module,
        inputs: (0..6).map(|i| format!("{i}").into_bytes()).collect(),
        limits: JobLimits::default(),
        sample_ppm: 1_000_000,
    };
    let report = session
        .run_job(&job, Duration::from_secs(60), |_, _| {})
        .await
        .unwrap();
    for t in &report.tasks {
        assert_eq!(t.verdict(), "trapped", "task {}", t.index);
        assert_eq!(t.receipt.body.fuel_used, job.limits.fuel);
    }
    match session.status(Some(report.job_id)).await.unwrap() {
        JobResponse::Status { jobs, proofs, .. } => {
            assert_eq!(jobs[0].sampled, 6, "every result re-executed");
            assert_eq!(jobs[0].revoked, 0);
            assert!(proofs.is_empty(), "{proofs:?}");
        }
        other => panic!("{other:?}"),
    }
    session.close().await;
    net.stop().await;
}
