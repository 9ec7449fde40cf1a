//! Validators, workers and a user in one process.

use crate::common::{check_report, wordcount_inputs};
use smartnodes::harness::{Network, NetworkConfig};
use smartnodes::net::proto::{JobLimits, JobResponse};
use smartnodes::roles::user::{JobRequestSpec, UserSession};
use std::collections::HashSet;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_wordcount_tasks_through_one_validator_and_three_workers() {
    crate::common::init_logging();
    let net = Network::start(NetworkConfig::default()).await.unwrap();
    let session = UserSession::connect(net.validator_addr()).await.unwrap();
    let inputs = wordcount_inputs(50);
    let job = JobRequestSpec {
        sample_ppm: 0,
        module: smartnodes_examples::WORDCOUNT.to_vec(),
        inputs: inputs.clone(),
        limits: JobLimits::default(),
    };
    let mut seen = 0;
    let report = session
        .run_job(&job, Duration::from_secs(60), |_, n| seen = n)
        .await
        .unwrap();
    assert_eq!(seen, 50);
    check_report(
        &report,
        smartnodes_examples::WORDCOUNT,
        &inputs,
        &job.limits,
    );
    let workers: HashSet<_> = report.tasks.iter().map(|t| t.worker).collect();
    assert!(workers.len() >= 2, "the work was spread: {workers:?}");

    // The validator's record agrees: one job, 50 tasks done, each by the worker reported.
    let JobResponse::Status { jobs, .. } = session.status(Some(report.job_id)).await.unwrap()
    else {
        panic!("no status")
    };
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        (jobs[0].state.as_str(), jobs[0].done, jobs[0].total),
        ("done", 50, 50)
    );
    for (t, r) in jobs[0].tasks.iter().zip(&report.tasks) {
        assert_eq!(t.state, "done");
        assert_eq!(t.worker.as_deref(), Some(r.worker.to_string().as_str()));
    }

    // Submitting the same job again is a new job (new nonce) and works too.
    let again = session
        .run_job(&job, Duration::from_secs(60), |_, _| {})
        .await
        .unwrap();
    assert_ne!(again.job_id, report.job_id);
    session.close().await;
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_waits_for_workers_and_status_says_why() {
    crate::common::init_logging();
    let net = Network::start(NetworkConfig {
        workers: 0,
        ..NetworkConfig::default()
    })
    .await
    .unwrap();
    let session = UserSession::connect(net.validator_addr()).await.unwrap();
    let job = JobRequestSpec {
        sample_ppm: 0,
        module: smartnodes_examples::WORDCOUNT.to_vec(),
        inputs: wordcount_inputs(3),
        limits: JobLimits::default(),
    };
    let job_id = session.submit(&job).await.unwrap();
    // The module is too large to travel inline: the validator first fetches it from us.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let (jobs, workers) = loop {
        let JobResponse::Status { jobs, workers, .. } = session.status(Some(job_id)).await.unwrap()
        else {
            panic!("no status")
        };
        if jobs[0].state != "fetching" || std::time::Instant::now() > deadline {
            break (jobs, workers);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(jobs[0].state, "running");
    assert!(workers.is_empty());
    assert_eq!(jobs[0].tasks.len(), 3);
    for t in &jobs[0].tasks {
        assert_eq!(t.state, "queued");
        assert_eq!(t.waiting_for.as_deref(), Some("no worker connected"));
    }
    session.close().await;
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_and_jobs_have_signed_records_in_the_dht() {
    crate::common::init_logging();
    let net = Network::start(NetworkConfig {
        workers: 2,
        ..NetworkConfig::default()
    })
    .await
    .unwrap();
    let validator = &net.validators[0].client;
    for worker in &net.workers {
        let key = smartnodes::net::discovery::role_key(&worker.peer_id());
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let record = loop {
            if let Some(r) = validator.get_record(key.clone()).await {
                break r;
            }
            assert!(std::time::Instant::now() < deadline, "no role record");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        record.verify(smartnodes::net::proto::unix_now()).unwrap();
        match record.body {
            smartnodes::net::proto::RecordBody::Role { role, capacity, .. } => {
                assert_eq!((role.as_str(), capacity), ("worker", 2));
            }
            other => panic!("unexpected record {other:?}"),
        }
    }

    // A job admitted by the validator is findable by its id: a signed record naming it.
    let session = UserSession::connect(net.validator_addr()).await.unwrap();
    let job_id = session
        .submit(&JobRequestSpec {
            sample_ppm: 0,
            module: smartnodes_examples::WORDCOUNT.to_vec(),
            inputs: wordcount_inputs(3),
            limits: JobLimits::default(),
        })
        .await
        .unwrap();
    let key = smartnodes::net::proto::RecordBody::Job {
        job_id,
        validator: Vec::new(),
        tasks: 0,
        expires: 0,
    }
    .key();
    let worker = &net.workers[0].client;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let record = loop {
        if let Some(r) = worker.get_record(key.clone()).await {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "no job record");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    record.verify(smartnodes::net::proto::unix_now()).unwrap();
    match record.body {
        smartnodes::net::proto::RecordBody::Job {
            validator, tasks, ..
        } => {
            assert_eq!(validator, net.validators[0].peer_id().to_bytes());
            assert_eq!(tasks, 3);
        }
        other => panic!("unexpected record {other:?}"),
    }
    session.close().await;
    net.stop().await;
}

/// A worker takes work only from a validator it registered with: a peer that is not one
/// (here a bare client with its own key) is refused, and the worker runs nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_refuses_an_assignment_from_a_peer_that_is_not_its_validator() {
    use smartnodes::net::proto::{Assignment, TaskRequest, TaskResponse};
    crate::common::init_logging();
    let net = Network::start(NetworkConfig {
        workers: 1,
        ..NetworkConfig::default()
    })
    .await
    .unwrap();
    assert!(net.wait_for_workers(1, Duration::from_secs(20)).await);
    let worker = &net.workers[0];
    let (stranger, _events, _) = smartnodes::net::start(
        libp2p::identity::Keypair::generate_secp256k1(),
        Some("/ip4/127.0.0.1/tcp/0".parse().unwrap()),
    )
    .await
    .unwrap();
    let peer = stranger.dial(worker.addr()).await.unwrap();
    assert_eq!(peer, worker.peer_id());
    let assignment = Assignment {
        job_id: [7; 32],
        index: 0,
        module: [1; 32],
        input: [2; 32],
        input_inline: Some(b"to be or not to be".to_vec()),
        limits: JobLimits::default(),
        lease_ms: 3_000,
    };
    let answer = stranger
        .task(peer, TaskRequest::Assign(assignment))
        .await
        .unwrap();
    assert!(
        matches!(&answer, TaskResponse::Rejected { reason } if reason.contains("not a validator")),
        "{answer:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    // No task-run sample at all (the family is empty until a task runs).
    let text = worker.metrics.encode();
    assert!(!text.contains("smartnodes_tasks_run_total{"), "{text}");
    stranger.shutdown().await;
    net.stop().await;
}

/// A result is taken only from the worker its task was given to: a peer that computed a
/// task of someone's job correctly, unasked, and signed a valid receipt for it, is refused,
/// and the task stays the scheduler's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_from_a_peer_the_task_was_not_given_to_is_refused() {
    use smartnodes::net::proto::{
        JobSpec, Receipt, ReceiptBody, ResultResponse, TaskResult, TaskSpec,
    };
    use smartnodes_runtime::{Allocator, Runtime, RuntimeConfig, TaskInput};
    crate::common::init_logging();
    // No worker: the job's tasks wait in the queue, assigned to nobody.
    let net = Network::start(NetworkConfig {
        workers: 0,
        ..NetworkConfig::default()
    })
    .await
    .unwrap();
    let session = UserSession::connect(net.validator_addr()).await.unwrap();
    let input = b"no one asked me to count these words".to_vec();
    let job = JobRequestSpec {
        sample_ppm: 0,
        module: smartnodes_examples::WORDCOUNT.to_vec(),
        inputs: vec![input.clone()],
        limits: JobLimits::default(),
    };
    let job_id = session.submit(&job).await.unwrap();
    let spec = session.spec(job_id).await.unwrap();

    // The stranger runs the task exactly as a worker would and signs for it.
    let runtime = Runtime::new(RuntimeConfig {
        allocator: Allocator::OnDemand,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let ran = runtime
        .run(
            smartnodes_examples::WORDCOUNT,
            &TaskInput::new(input).with_seed(JobSpec::seed(&job_id, 0)),
            &spec.limits.to_runtime(),
        )
        .unwrap();
    let key = libp2p::identity::Keypair::generate_secp256k1();
    let body = ReceiptBody {
        job_id,
        index: 0,
        task: TaskSpec::of(&spec, job_id, 0).unwrap().commitment(),
        verdict: ran.verdict.code(),
        output_hash: ran.output_hash,
        fuel_used: ran.fuel_used,
        engine: runtime.fingerprint().0,
        worker: key.public().to_peer_id().to_bytes(),
    };
    let result = TaskResult {
        receipt: Receipt::sign(body, &key),
        output: Some(ran.output),
    };
    let (stranger, _events, _) =
        smartnodes::net::start(key, Some("/ip4/127.0.0.1/tcp/0".parse().unwrap()))
            .await
            .unwrap();
    let validator = stranger.dial(net.validator_addr()).await.unwrap();
    let answer = stranger.result(validator, result).await.unwrap();
    assert!(
        matches!(&answer, ResultResponse::Rejected { reason } if reason.contains("not assigned to you")),
        "{answer:?}"
    );
    let JobResponse::Status { jobs, .. } = session.status(Some(job_id)).await.unwrap() else {
        panic!("no status");
    };
    assert_eq!(jobs[0].done, 0, "{:?}", jobs[0]);
    assert_eq!(jobs[0].tasks[0].state, "queued");
    stranger.shutdown().await;
    session.close().await;
    net.stop().await;
}
