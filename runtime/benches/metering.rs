//! `cargo bench -p smartnodes-runtime --bench metering`: native vs the two meterings, side
//! by side in one run, for every example — wasmtime's fuel + NaN canonicalisation
//! (`Metering::Wasmtime`) and the in-wasm rewrite (`Metering::Instrumented`). Medians over
//! interleaved rounds (`SMARTNODES_BENCH_ROUNDS`, default 7) of each variant's best of
//! `SMARTNODES_BENCH_BEST_OF` runs in the round (default 3, as the meter's kernels bench; a
//! round runs every variant of every example);
//! ratios are to native.
//! Both native columns come from self-timing helper processes
//! (`smartnodes_examples::portable::NativeTimer`): "native" is the plain release build,
//! "portable" the same code without the CPU-specific paths that wasm cannot use (sha2's SHA
//! extensions); the in-process native run checks the outputs.

use smartnodes_examples::stats::{
    best_of, best_of_from_env, geomean, loadavg, median, rounds_from_env, worst,
};
use smartnodes_runtime::{Limits, Metering, Runtime, RuntimeConfig, TaskInput, Verdict};
use std::time::{Duration, Instant};

/// (example, benchmark input): the same workloads as the `sandbox` bench.
fn workloads() -> Vec<(&'static str, Vec<u8>)> {
    smartnodes_examples::ALL
        .iter()
        .map(|(name, _)| {
            (
                *name,
                smartnodes_examples::workload(name).expect("a workload"),
            )
        })
        .collect()
}

fn native(name: &str, input: &[u8]) -> Vec<u8> {
    smartnodes_examples::native(name, input)
        .expect("an example")
        .expect("native run")
}

fn main() {
    let rounds = rounds_from_env("SMARTNODES_BENCH_ROUNDS");
    let runs = best_of_from_env("SMARTNODES_BENCH_BEST_OF");
    let runtime = |metering| {
        Runtime::new(RuntimeConfig {
            metering,
            ..RuntimeConfig::default()
        })
        .expect("runtime")
    };
    let wasmtime = runtime(Metering::Wasmtime);
    let ours = runtime(Metering::Instrumented);
    let limits = Limits {
        fuel: u64::MAX / 4,
        memory_bytes: 1 << 30,
        max_output_bytes: 64 << 20,
        ..Limits::DEFAULT
    };

    let (mut native_timer, mut portable) = smartnodes_examples::portable::NativeTimer::pair(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")),
    );
    println!("smartnodes-runtime metering benchmark: {rounds} interleaved rounds, each variant's best of {runs} runs per round, medians over rounds");
    println!("load average at start: {}", loadavg());
    println!("wasmtime fuel: {}", wasmtime.fingerprint_description());
    println!("instrumented:  {}", ours.fingerprint_description());
    println!();
    println!(
        "| example | native | native, portable | wasmtime fuel + NaN canon | ratio | instrumented | ratio | ratio to portable | fuel (both) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let (mut r_wt, mut r_in, mut r_inp) = (Vec::new(), Vec::new(), Vec::new());
    // Every example loaded once; a round runs every variant of every example, so that a
    // disturbed stretch of time touches a round of each rather than every round of one.
    struct Example<M> {
        name: &'static str,
        task: TaskInput,
        expected: Vec<u8>,
        modules: [M; 2],
        // native, native portable, wasmtime fuel, instrumented
        times: [Vec<Duration>; 4],
        fuel: [u64; 2],
    }
    let mut examples: Vec<_> = workloads()
        .into_iter()
        .map(|(name, input)| {
            let wasm = smartnodes_examples::module(name).unwrap();
            Example {
                name,
                expected: native(name, &input),
                task: TaskInput::new(input),
                modules: [
                    wasmtime.load(wasm, &limits).unwrap().expect("valid"),
                    ours.load(wasm, &limits).unwrap().expect("valid"),
                ],
                times: Default::default(),
                fuel: [0; 2],
            }
        })
        .collect();
    for _ in 0..rounds {
        for ex in &mut examples {
            let name = ex.name;
            let hash = smartnodes_examples::portable::output_hash(&ex.expected);
            let [nat, port, wt, ins] = &mut ex.times;
            for (timer, times) in [(&mut native_timer, nat), (&mut portable, port)] {
                times.push(best_of(runs, || {
                    let (d, h) = timer.run(name).expect("native-timer");
                    assert_eq!(h, hash, "{name}: a native build disagrees");
                    d
                }));
            }
            for (k, (rt, times)) in [(&wasmtime, wt), (&ours, ins)].into_iter().enumerate() {
                times.push(best_of(runs, || {
                    let t = Instant::now();
                    let o = rt.run_module(&ex.modules[k], &ex.task, &limits).unwrap();
                    let elapsed = t.elapsed();
                    assert_eq!(o.verdict, Verdict::Completed, "{name}: {}", o.detail);
                    assert_eq!(o.output, ex.expected, "{name}: sandbox and native disagree");
                    ex.fuel[k] = o.fuel_used;
                    elapsed
                }));
            }
        }
    }
    for ex in examples {
        let name = ex.name;
        let fuel = (ex.fuel[0], ex.fuel[1]);
        let [nat, port, wt, ins] = ex.times;
        assert_eq!(fuel.0, fuel.1, "{name}: the meterings count different fuel");
        let (n, p, a, b) = (median(nat), median(port), median(wt), median(ins));
        let rp = b.as_secs_f64() / p.as_secs_f64();
        r_inp.push(rp);
        let (ra, rb) = (
            a.as_secs_f64() / n.as_secs_f64(),
            b.as_secs_f64() / n.as_secs_f64(),
        );
        r_wt.push(ra);
        r_in.push(rb);
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {:.1} ms | {ra:.2}x | {:.1} ms | {rb:.2}x | {rp:.2}x | {} |",
            ms(n),
            ms(p),
            ms(a),
            ms(b),
            fuel.0
        );
    }
    println!(
        "| **geomean** | | | | **{:.2}x** | | **{:.2}x** | **{:.2}x** | |",
        geomean(&r_wt),
        geomean(&r_in),
        geomean(&r_inp)
    );
    println!(
        "| worst | | | | {:.2}x | | {:.2}x | {:.2}x | |",
        worst(&r_wt),
        worst(&r_in),
        worst(&r_inp)
    );
    println!("load average at end: {}", loadavg());
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
