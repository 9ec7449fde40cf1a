//! Network benchmark: tiny tasks through validator → worker → user on loopback, next to the
//! same tasks run in-process by the runtime alone.
//!
//! Run: `cargo bench -p smartnodes --bench network` (`-- --quick` for a short run).
//!
//! - round trip: one job of one tiny task, submitted and waited for, one after another;
//! - throughput: one job of many tiny tasks, from submit to the last checked result;
//! - baseline: the same module and inputs through `Runtime::run_module` on one thread and
//!   on two (this machine's cores).

use smartnodes::harness::{Network, NetworkConfig};
use smartnodes::net::proto::JobLimits;
use smartnodes::roles::user::{JobRequestSpec, UserSession};
use smartnodes_runtime::{Limits, Runtime, RuntimeConfig, TaskInput};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn tiny_input(i: usize) -> Vec<u8> {
    format!("tiny task {i}: to be or not to be").into_bytes()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, tasks) = if quick { (100, 1_000) } else { (500, 5_000) };
    let module = smartnodes_examples::WORDCOUNT.to_vec();
    let limits = JobLimits::default();

    // Baseline: the runtime alone.
    let runtime = Arc::new(Runtime::new(RuntimeConfig::default()).expect("runtime"));
    let compiled = runtime
        .load(&module, &Limits::DEFAULT)
        .expect("load")
        .expect("valid");
    let one = {
        let mut lat = Vec::with_capacity(rounds);
        for i in 0..rounds {
            let t = Instant::now();
            runtime
                .run_module(
                    &compiled,
                    &TaskInput::new(tiny_input(i)),
                    &limits.to_runtime(),
                )
                .expect("run");
            lat.push(t.elapsed());
        }
        lat.sort();
        lat
    };
    let base_1 = {
        let t = Instant::now();
        for i in 0..tasks {
            runtime
                .run_module(
                    &compiled,
                    &TaskInput::new(tiny_input(i)),
                    &limits.to_runtime(),
                )
                .expect("run");
        }
        tasks as f64 / t.elapsed().as_secs_f64()
    };
    let base_2 = {
        let t = Instant::now();
        std::thread::scope(|s| {
            for half in 0..2 {
                let (runtime, compiled) = (&runtime, &compiled);
                s.spawn(move || {
                    for i in (half..tasks).step_by(2) {
                        runtime
                            .run_module(
                                compiled,
                                &TaskInput::new(tiny_input(i)),
                                &limits.to_runtime(),
                            )
                            .expect("run");
                    }
                });
            }
        });
        tasks as f64 / t.elapsed().as_secs_f64()
    };

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let measure = |fsync: bool| {
        rt.block_on(async {
            let net = Network::start(NetworkConfig {
                validators: 1,
                workers: 2,
                worker_slots: 2,
                lease: Duration::from_secs(3),
                fsync,
                ..NetworkConfig::default()
            })
            .await
            .expect("network");
            let session = UserSession::connect(net.validator_addr())
                .await
                .expect("connect");
            // Warm up: the workers fetch and compile the module once.
            let warm = JobRequestSpec {
                sample_ppm: 0,
                module: module.clone(),
                inputs: (0..20).map(|i| tiny_input(1_000_000 + i)).collect(),
                limits,
            };
            session
                .run_job(&warm, Duration::from_secs(60), |_, _| {})
                .await
                .expect("warm-up");

            let mut lat = Vec::with_capacity(rounds);
            for i in 0..rounds {
                let job = JobRequestSpec {
                    sample_ppm: 0,
                    module: module.clone(),
                    inputs: vec![tiny_input(2_000_000 + i)],
                    limits,
                };
                let t = Instant::now();
                session
                    .run_job(&job, Duration::from_secs(60), |_, _| {})
                    .await
                    .expect("round trip");
                lat.push(t.elapsed());
            }
            lat.sort();

            let job = JobRequestSpec {
                sample_ppm: 0,
                module: module.clone(),
                inputs: (0..tasks).map(tiny_input).collect(),
                limits,
            };
            let t = Instant::now();
            let report = session
                .run_job(&job, Duration::from_secs(120), |_, _| {})
                .await
                .expect("throughput job");
            let tput = report.tasks.len() as f64 / t.elapsed().as_secs_f64();
            session.close().await;
            net.stop().await;
            (lat, tput)
        })
    };
    let durable = measure(true);
    let no_fsync = measure(false);

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "smartnodes network benchmark: wordcount on a {}-byte input, {cores} cores",
        tiny_input(0).len()
    );
    println!();
    println!("| measure | network, fsync on (durable) | network, fsync off | runtime alone |");
    println!("|---|---|---|---|");
    for (name, p) in [("p50", 0.5), ("p99", 0.99)] {
        println!(
            "| round trip {name} ({rounds} one-task jobs) | {} ({:.0}x) | {} ({:.0}x) | {} |",
            ms(percentile(&durable.0, p)),
            percentile(&durable.0, p).as_secs_f64() / percentile(&one, p).as_secs_f64(),
            ms(percentile(&no_fsync.0, p)),
            percentile(&no_fsync.0, p).as_secs_f64() / percentile(&one, p).as_secs_f64(),
            ms(percentile(&one, p)),
        );
    }
    println!(
        "| throughput ({tasks} tasks in one job) | {:.0} tasks/s ({:.3}x) | {:.0} tasks/s ({:.3}x) | {base_2:.0} tasks/s on 2 threads ({base_1:.0} on 1) |",
        durable.1,
        durable.1 / base_2,
        no_fsync.1,
        no_fsync.1 / base_2,
    );
    println!();
    println!("Network: 1 validator + 2 workers x 2 slots + 1 user in one process on loopback (TCP, Noise, Yamux).");
    println!("Ratios are to the runtime alone. \"fsync off\" skips the fsync before each acknowledgement.");
}
