//! `cargo bench -p smartnodes --bench run_cli`: `smartnodes run` as a user runs it (a new
//! process per task, the module cache warm) on the five examples, beside the native builds,
//! in one interleaved run: each round runs every variant of every example
//! (`SMARTNODES_BENCH_ROUNDS`, default 7; each variant's best of `SMARTNODES_BENCH_BEST_OF`
//! runs per round, default 3); medians over rounds.
//!
//! Variants: "native" and "native, portable" time the task's code in a helper process
//! (`smartnodes_examples::portable::NativeTimer`, no process start); `smartnodes run`
//! (the default engine, the in-wasm meter with its wall-clock backstop) and `smartnodes run
//! --metering wasmtime` (wasmtime's fuel + NaN canonicalisation, the test oracle) are timed
//! from spawn to exit, so they include the process start, the runtime's set-up and loading
//! the compiled module from the cache. The `start` row is that fixed cost alone: the
//! smallest task (primes up to 10). Every run's output hash and fuel are checked: the two
//! meterings must agree with each other and with the native output.

use smartnodes_examples::stats::{
    best_of, best_of_from_env, geomean, loadavg, median, rounds_from_env, worst,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_smartnodes");

/// One `smartnodes run --json`: (wall time, output hash, fuel).
fn run(module: &str, input: &Path, cache: &Path, metering: &str) -> (Duration, String, u64) {
    let start = Instant::now();
    let out = Command::new(BIN)
        .args(["run", module, "--json", "--fuel", "100000000000"])
        .arg("--input")
        .arg(input)
        .arg("--cache-dir")
        .arg(cache)
        .args(["--metering", metering])
        .output()
        .expect("spawning smartnodes");
    let elapsed = start.elapsed();
    assert!(out.status.success(), "{module} ({metering}): {out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json");
    (
        elapsed,
        json["output_hash"]
            .as_str()
            .expect("output_hash")
            .to_string(),
        json["fuel_used"].as_u64().expect("fuel_used"),
    )
}

fn main() {
    let rounds = rounds_from_env("SMARTNODES_BENCH_ROUNDS");
    let runs = best_of_from_env("SMARTNODES_BENCH_BEST_OF");
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("run-cli-bench");
    std::fs::create_dir_all(&tmp).expect("bench dir");
    let cache = tmp.join("cache");
    let (mut native, mut portable) =
        smartnodes_examples::portable::NativeTimer::pair(Path::new(env!("CARGO_TARGET_TMPDIR")));

    struct Example {
        name: &'static str,
        module: String,
        input: PathBuf,
        hash: String,
        fuel: u64,
        times: [Vec<Duration>; 4],
    }
    let mut examples: Vec<Example> = smartnodes_examples::ALL
        .iter()
        .map(|(name, _)| {
            let workload = smartnodes_examples::workload(name).expect("a workload");
            let input = tmp.join(format!("{name}.input"));
            std::fs::write(&input, &workload).expect("writing the input");
            let expected = smartnodes_examples::native(name, &workload)
                .expect("an example")
                .expect("native run");
            Example {
                name,
                module: format!("example:{name}"),
                input,
                hash: hex::encode(smartnodes_runtime::sha256(&expected)),
                fuel: 0,
                times: Default::default(),
            }
        })
        .collect();
    let tiny = tmp.join("tiny.input");
    std::fs::write(&tiny, b"10").expect("writing the input");

    println!("smartnodes run benchmark: {rounds} interleaved rounds, each variant's best of {runs} runs per round, medians over rounds");
    println!("load average at start: {}", loadavg());
    // Warm the cache (and check both meterings agree with native) before timing.
    for ex in &mut examples {
        let (_, hash, fuel) = run(&ex.module, &ex.input, &cache, "instrumented");
        let (_, hash_w, fuel_w) = run(&ex.module, &ex.input, &cache, "wasmtime");
        assert_eq!(
            hash, ex.hash,
            "{}: the meter's output is not native's",
            ex.name
        );
        assert_eq!(
            hash_w, ex.hash,
            "{}: wasmtime's output is not native's",
            ex.name
        );
        assert_eq!(fuel, fuel_w, "{}: the two meterings' fuel differ", ex.name);
        ex.fuel = fuel;
    }
    let mut start = [Vec::new(), Vec::new()];
    for _ in 0..rounds {
        for ex in &mut examples {
            ex.times[0].push(best_of(runs, || native.run(ex.name).expect("native").0));
            ex.times[1].push(best_of(runs, || portable.run(ex.name).expect("portable").0));
            for (k, metering) in ["instrumented", "wasmtime"].into_iter().enumerate() {
                ex.times[2 + k].push(best_of(runs, || {
                    let (t, hash, fuel) = run(&ex.module, &ex.input, &cache, metering);
                    assert_eq!(
                        (hash.as_str(), fuel),
                        (ex.hash.as_str(), ex.fuel),
                        "{}",
                        ex.name
                    );
                    t
                }));
            }
        }
        for (k, metering) in ["instrumented", "wasmtime"].into_iter().enumerate() {
            start[k].push(best_of(runs, || {
                run("example:primes", &tiny, &cache, metering).0
            }));
        }
    }
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    println!();
    println!("| example | native | native, portable | smartnodes run (meter) | / portable | smartnodes run --metering wasmtime | / portable | fuel (both) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let (mut r_meter, mut r_wasmtime) = (Vec::new(), Vec::new());
    for ex in examples {
        let [n, p, m, w] = ex.times.map(median);
        let (rm, rw) = (
            m.as_secs_f64() / p.as_secs_f64(),
            w.as_secs_f64() / p.as_secs_f64(),
        );
        r_meter.push(rm);
        r_wasmtime.push(rw);
        println!(
            "| {} | {} | {} | {} | {rm:.2}x | {} | {rw:.2}x | {} |",
            ex.name,
            ms(n),
            ms(p),
            ms(m),
            ms(w),
            ex.fuel
        );
    }
    println!(
        "| **geomean** | | | | **{:.2}x** | | **{:.2}x** | |",
        geomean(&r_meter),
        geomean(&r_wasmtime)
    );
    println!(
        "| worst | | | | {:.2}x | | {:.2}x | |",
        worst(&r_meter),
        worst(&r_wasmtime)
    );
    let [s_meter, s_wasmtime] = start.map(median);
    println!(
        "| start (primes up to 10) | | | {} | | {} | |",
        ms(s_meter),
        ms(s_wasmtime)
    );
    println!("load average at end: {}", loadavg());
}
