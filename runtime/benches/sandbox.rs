//! `cargo bench -p smartnodes-runtime --bench sandbox`: native vs sandboxed time for every
//! example, and the warm task start latency. Prints one table (medians over interleaved
//! rounds). Set `SMARTNODES_BENCH_ROUNDS` to change the number of rounds (default 7).

use smartnodes_examples::stats::{median, rounds_from_env};
use smartnodes_runtime::{Limits, Runtime, RuntimeConfig, TaskInput, Verdict};
use std::time::{Duration, Instant};

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is accepted and ignored.
    let rounds = rounds_from_env("SMARTNODES_BENCH_ROUNDS");
    let rt = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let limits = Limits {
        fuel: u64::MAX / 4,
        memory_bytes: 1 << 30,
        max_output_bytes: 64 << 20,
        ..Limits::DEFAULT
    };

    println!("smartnodes-runtime sandbox benchmark: {rounds} interleaved rounds, medians");
    println!("engine fingerprint {}", rt.fingerprint());
    println!();
    println!("| example | native | sandbox (wasmtime fuel + NaN canon) | ratio | fuel |");
    println!("|---|---:|---:|---:|---:|");
    let mut ratios = Vec::new();
    for (name, wasm) in smartnodes_examples::ALL {
        let input = smartnodes_examples::workload(name).expect("a workload per example");
        let module = rt.load(wasm, &limits).unwrap().expect("valid example");
        let task = TaskInput::new(input.clone());
        let (mut nat, mut sand) = (Vec::new(), Vec::new());
        let mut fuel = 0;
        for _ in 0..rounds {
            let t = Instant::now();
            let expected = smartnodes_examples::native(name, &input)
                .unwrap()
                .expect("native run");
            nat.push(t.elapsed());
            let t = Instant::now();
            let o = rt.run_module(&module, &task, &limits).unwrap();
            sand.push(t.elapsed());
            assert_eq!(o.verdict, Verdict::Completed, "{name}: {}", o.detail);
            assert_eq!(o.output, expected, "{name}: sandbox and native disagree");
            fuel = o.fuel_used;
        }
        let (n, s) = (median(nat), median(sand));
        let ratio = s.as_secs_f64() / n.as_secs_f64();
        ratios.push(ratio);
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {ratio:.2}x | {fuel} |",
            ms(n),
            ms(s)
        );
    }
    let geomean = (ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp();
    println!("| **geomean** | | | **{geomean:.2}x** | |");

    // Warm start: cached module -> instantiate -> run an empty task -> drop.
    let empty = wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start")))"#)
        .unwrap();
    let module = rt.load(&empty, &limits).unwrap().unwrap();
    let task = TaskInput::new(Vec::new());
    for _ in 0..100 {
        rt.run_module(&module, &task, &limits).unwrap();
    }
    let mut starts = Vec::new();
    for _ in 0..2000 {
        let t = Instant::now();
        rt.run_module(&module, &task, &limits).unwrap();
        starts.push(t.elapsed());
    }
    starts.sort();
    println!();
    println!(
        "warm task start (cached module, instantiate, run empty `_start`, drop): p50 {:.1} us, p99 {:.1} us",
        us(starts[starts.len() / 2]),
        us(starts[starts.len() * 99 / 100])
    );
    // The same for a real Rust guest (wordcount on an empty input: std's start-up included).
    let wc = rt
        .load(smartnodes_examples::WORDCOUNT, &limits)
        .unwrap()
        .unwrap();
    let mut starts = Vec::new();
    for _ in 0..1000 {
        let t = Instant::now();
        rt.run_module(&wc, &task, &limits).unwrap();
        starts.push(t.elapsed());
    }
    starts.sort();
    println!(
        "warm task start, Rust guest (wordcount, empty input): p50 {:.1} us, p99 {:.1} us",
        us(starts[starts.len() / 2]),
        us(starts[starts.len() * 99 / 100])
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
