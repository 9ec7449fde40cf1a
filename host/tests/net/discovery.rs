//! Discovery (issue 18): nodes told one peer find the validators through the DHT, a
//! restarted validator is found again, `peers --json` lists every role, and the metrics
//! endpoint answers in the Prometheus text format with counters that move with a job.

use crate::common::{check_report, wordcount_inputs};
use smartnodes::harness::{Network, NetworkConfig, IN_PROCESS_DISCOVERY};
use smartnodes::net::proto::{JobLimits, JobResponse, WorkerStatus};
use smartnodes::roles::user::{JobReport, JobRequestSpec, UserSession};
use smartnodes::roles::{start_node, Node, NodeConfig, Role};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// A job of `n` wordcount tasks (`sample_ppm` = the share of results to re-run).
fn job(n: usize, sample_ppm: u32) -> JobRequestSpec {
    JobRequestSpec {
        sample_ppm,
        module: smartnodes_examples::WORDCOUNT.to_vec(),
        inputs: wordcount_inputs(n),
        limits: JobLimits::default(),
    }
}

/// Runs `job` through `session` and checks every result against a local run.
async fn run_checked(session: &UserSession, job: &JobRequestSpec) -> JobReport {
    let report = session
        .run_job(job, Duration::from_secs(60), |_, _| {})
        .await
        .unwrap();
    check_report(
        &report,
        smartnodes_examples::WORDCOUNT,
        &job.inputs,
        &job.limits,
    );
    report
}

/// Starts a node of `role` in `dir` on loopback, told only `bootstrap`.
async fn node(net: &Network, role: Role, dir: &Path, bootstrap: Vec<libp2p::Multiaddr>) -> Node {
    let mut c = NodeConfig::new(
        role,
        dir.to_path_buf(),
        "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
    )
    .unwrap();
    c.bootstrap = bootstrap;
    c.worker_slots = 2;
    c.discovery_interval = IN_PROCESS_DISCOVERY;
    start_node(c, Some(net.runtime.clone())).await.unwrap()
}

/// The workers `session`'s validator knows, once `pred` holds for them (or panics after
/// `timeout`).
async fn workers_when(
    session: &UserSession,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&[WorkerStatus]) -> bool,
) -> Vec<WorkerStatus> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok(JobResponse::Status { workers, .. }) = session.status(None).await {
            if pred(&workers) {
                return workers;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not within {timeout:?}: {workers:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn connected(workers: &[WorkerStatus], peer: &libp2p::PeerId) -> bool {
    let peer = peer.to_string();
    workers.iter().any(|w| w.peer == peer && w.connected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_told_only_another_worker_finds_the_validator_and_runs_tasks() {
    crate::common::init_logging();
    let net = Network::start(NetworkConfig {
        workers: 1,
        worker_slots: 1,
        ..NetworkConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    // Told only the first worker's address, never the validator's.
    let late = node(&net, Role::Worker, dir.path(), vec![net.workers[0].addr()]).await;
    let session = UserSession::connect(net.validator_addr()).await.unwrap();
    workers_when(&session, Duration::from_secs(15), "registered", |w| {
        connected(w, &late.peer_id())
    })
    .await;
    eprintln!("found the validator in {:?}", started.elapsed());

    let report = run_checked(&session, &job(16, 0)).await;
    let by_late = report
        .tasks
        .iter()
        .filter(|t| t.worker == late.peer_id())
        .count();
    assert!(by_late > 0, "the worker that found the validator ran tasks");
    session.close().await;
    late.stop().await;
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_told_only_a_worker_submits_a_job() {
    crate::common::init_logging();
    let net = Network::start(NetworkConfig {
        workers: 2,
        ..NetworkConfig::default()
    })
    .await
    .unwrap();
    let session = UserSession::discover(vec![net.workers[1].addr()], Duration::from_secs(15))
        .await
        .unwrap();
    assert_eq!(session.validator(), net.validators[0].peer_id());
    run_checked(&session, &job(8, 0)).await;
    session.close().await;

    // Told a peer that is not there: a clear error, not a hang.
    let nobody: libp2p::Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
    let err = UserSession::discover(vec![nobody], Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no validator found"), "{err}");
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_restarted_on_a_new_port_is_found_again() {
    crate::common::init_logging();
    let mut net = Network::start(NetworkConfig {
        workers: 2,
        ..NetworkConfig::default()
    })
    .await
    .unwrap();
    let old = net.validators.remove(0);
    let (peer, old_addr) = (old.peer_id(), old.addr());
    old.stop().await;
    // Same keys and database (the harness's first data dir), a new OS-chosen port, told
    // only the first worker: the second worker must find it through the DHT.
    let dir = net.dirs[0].path().to_path_buf();
    let started = std::time::Instant::now();
    let restarted = node(&net, Role::Validator, &dir, vec![net.workers[0].addr()]).await;
    assert_eq!(restarted.peer_id(), peer);
    assert_ne!(restarted.addr(), old_addr, "a new port");
    let session = UserSession::connect(restarted.addr()).await.unwrap();
    let (w0, w1) = (net.workers[0].peer_id(), net.workers[1].peer_id());
    workers_when(
        &session,
        Duration::from_secs(20),
        "both workers back",
        |w| connected(w, &w0) && connected(w, &w1),
    )
    .await;
    eprintln!("found again by both workers in {:?}", started.elapsed());
    run_checked(&session, &job(8, 0)).await;
    session.close().await;
    restarted.stop().await;
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_json_lists_every_role() {
    crate::common::init_logging();
    let net = Network::start(NetworkConfig {
        validators: 2,
        workers: 2,
        worker_slots: 3,
        ..NetworkConfig::default()
    })
    .await
    .unwrap();
    let bootstrap = net.workers[0].addr().to_string();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_smartnodes"))
            .args(["peers", "--bootstrap", &bootstrap, "--json", "--wait", "10"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "peers failed: {stderr}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let peers = json["peers"].as_array().unwrap();
    let by_id: HashMap<String, &serde_json::Value> = peers
        .iter()
        .map(|p| (p["peer_id"].as_str().unwrap().to_string(), p))
        .collect();
    let now = smartnodes::net::proto::unix_now();
    for (nodes, role, capacity) in [
        (&net.validators, "validator", 0),
        (&net.workers, "worker", 3),
    ] {
        for n in nodes {
            let p = by_id
                .get(&n.peer_id().to_string())
                .unwrap_or_else(|| panic!("{role} {} missing from {json}", n.peer_id()));
            assert_eq!(p["role"], role);
            assert_eq!(p["capacity"], capacity);
            let addrs: Vec<&str> = p["addresses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            let port = n.addr().to_string();
            let port = port
                .split("/tcp/")
                .nth(1)
                .unwrap()
                .split('/')
                .next()
                .unwrap();
            assert!(
                addrs.contains(&format!("/ip4/127.0.0.1/tcp/{port}").as_str()),
                "{addrs:?}"
            );
            assert!(p["registered"].is_null(), "no chain given: not checked");
            assert!(p["last_seen"].as_u64().unwrap() + 60 > now);
        }
    }
    assert_eq!(peers.len(), 4, "{json}");
    net.stop().await;
}

/// `GET /metrics` at `addr`: the status line and headers, and the body.
async fn scrape(addr: std::net::SocketAddr) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

/// The value of the sample `name` (with its labels, as printed) in a text exposition.
fn sample(body: &str, name: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_answer_in_prometheus_format_and_move_with_a_job() {
    crate::common::init_logging();
    let net = Network::start(NetworkConfig {
        workers: 2,
        ..NetworkConfig::default()
    })
    .await
    .unwrap();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (vaddr, vtask) = smartnodes::metrics::serve(any, net.validators[0].metrics.clone())
        .await
        .unwrap();
    let mut worker_addrs = Vec::new();
    for w in &net.workers {
        worker_addrs.push(
            smartnodes::metrics::serve(any, w.metrics.clone())
                .await
                .unwrap(),
        );
    }
    let (head, before) = scrape(vaddr).await;
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("application/openmetrics-text"), "{head}");
    assert!(before.ends_with("# EOF\n"));
    assert_eq!(sample(&before, "smartnodes_results_accepted_total"), 0.0);
    // libp2p's own metrics are there too.
    assert!(
        before.contains("libp2p_swarm_connections_established_total"),
        "{before}"
    );
    assert!(before.contains("libp2p_kad_"), "{before}");

    let session = UserSession::connect(net.validator_addr()).await.unwrap();
    // Every result re-run: the verification counters are exact.
    let report = run_checked(&session, &job(10, 1_000_000)).await;
    session.close().await;
    let fuel: u64 = report.tasks.iter().map(|t| t.receipt.body.fuel_used).sum();

    let (_, after) = scrape(vaddr).await;
    assert_eq!(sample(&after, "smartnodes_results_accepted_total"), 10.0);
    assert_eq!(
        sample(&after, "smartnodes_accepted_fuel_total"),
        fuel as f64
    );
    // Every result was re-run and matched.
    assert_eq!(
        sample(
            &after,
            "smartnodes_verifications_total{outcome=\"verified\"}"
        ),
        10.0
    );
    assert_eq!(
        sample(&after, "smartnodes_verification_fuel_total"),
        fuel as f64
    );
    assert_eq!(sample(&after, "smartnodes_verification_cost_ratio"), 1.0);
    assert_eq!(sample(&after, "smartnodes_queue_depth"), 0.0);
    assert_eq!(sample(&after, "smartnodes_frauds_proven_total"), 0.0);
    assert_eq!(sample(&after, "smartnodes_peers{role=\"worker\"}"), 2.0);

    let (mut run, mut executed) = (0.0, 0.0);
    for (addr, _) in &worker_addrs {
        let (_, body) = scrape(*addr).await;
        run += sample(&body, "smartnodes_tasks_run_total{verdict=\"completed\"}");
        executed += sample(&body, "smartnodes_fuel_executed_total");
        assert_eq!(sample(&body, "smartnodes_peers{role=\"validator\"}"), 1.0);
    }
    assert_eq!(run, 10.0);
    assert_eq!(executed, fuel as f64);

    // Anything but GET /metrics is refused.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(vaddr).await.unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");

    vtask.abort();
    for (_, t) in worker_addrs {
        t.abort();
    }
    net.stop().await;
}
