//! wasm-smith modules, run with and without the rewrite, over a fixed set of seeds:
//! - metering only (NaN canonicalisation off): when both runs complete they give the same
//!   results, the same memory and globals, and the same fuel as wasmtime's engine fuel;
//!   guest traps are the same trap;
//! - with NaN canonicalisation: the rewritten module gives bit-identical results on an
//!   engine that canonicalises NaNs itself and on one that leaves the hardware's NaNs
//!   alone — the hardware's NaN bits cannot leak out (the same property that makes x86-64
//!   and aarch64 agree).
//!
//! Bounded in time: `METER_FUZZ_SEEDS` (default 150) seeds, `METER_FUZZ_SECS` (default 90)
//! seconds, whichever ends first.

mod common;

use std::time::{Duration, Instant};

use arbitrary::Unstructured;
use common::*;
use smartnodes_meter::{instrument, MeterConfig, MeterError};

const BUDGET: u64 = 200_000;

fn smith_config() -> wasm_smith::Config {
    wasm_smith::Config {
        max_imports: 0,
        min_types: 2,
        min_funcs: 2,
        max_funcs: 12,
        max_instructions: 200,
        export_everything: true,
        allow_start_export: true,
        max_memories: 2,
        max_memory32_bytes: 1 << 20,
        max_table_elements: 1000,
        threads_enabled: false,
        tail_call_enabled: false,
        exceptions_enabled: false,
        gc_enabled: false,
        memory64_enabled: false,
        custom_page_sizes_enabled: false,
        wide_arithmetic_enabled: false,
        relaxed_simd_enabled: true,
        simd_enabled: true,
        // externref needs wasmtime's `gc` feature, which the workspace build leaves out.
        reference_types_enabled: false,
        ..wasm_smith::Config::default()
    }
}

/// Deterministic bytes for a seed (SplitMix64).
fn bytes_for(seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xdead_beef;
    let mut next = || {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let len = 512 + (next() % 8192) as usize;
    (0..len).map(|_| next() as u8).collect()
}

/// A module for a seed, if wasm-smith makes one that this engine build accepts (the
/// workspace's wasmtime has no GC support, so `externref` modules are skipped).
fn module_for(seed: u64, engine: &wasmtime::Engine) -> Option<Vec<u8>> {
    let data = bytes_for(seed);
    let mut u = Unstructured::new(&data);
    let verbose = std::env::var("METER_FUZZ_VERBOSE").is_ok();
    let module = match wasm_smith::Module::new(smith_config(), &mut u) {
        Ok(m) => m,
        Err(e) => {
            if verbose {
                eprintln!("seed {seed}: wasm-smith: {e}");
            }
            return None;
        }
    };
    let wasm = module.to_bytes();
    if let Err(e) = wasmtime::Module::validate(engine, &wasm) {
        if verbose {
            eprintln!("seed {seed}: wasmtime: {e}");
        }
        return None;
    }
    Some(wasm)
}

/// The module as text, for failure messages.
fn wat(wasm: &[u8]) -> String {
    wasmprinter::print_bytes(wasm).unwrap_or_else(|e| e.to_string())
}

fn seeds() -> (u64, Duration) {
    let n = std::env::var("METER_FUZZ_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(150);
    let secs = std::env::var("METER_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(90);
    (n, Duration::from_secs(secs))
}

#[test]
fn smith_modules_metering_is_transparent() {
    let fuel = engine(EngineKind::Fuel);
    let plain = engine(EngineKind::Plain);
    let (n, limit) = seeds();
    let started = Instant::now();
    let (mut modules, mut completed, mut trapped, mut fuel_compared) = (0, 0, 0, 0);
    let (mut fused_loops, mut refunds) = (0, 0);
    // Loops the rewrite emits differently: counted, unrolled, bounded (prepaid copy).
    let mut shaped = [0u32; 3];
    for seed in 0..n {
        if started.elapsed() > limit {
            break;
        }
        let Some(wasm) = module_for(seed, &plain) else {
            continue;
        };
        let metered = match instrument(&wasm, &no_nan()) {
            Ok(m) => m,
            Err(MeterError::Unsupported(_)) => continue,
            Err(e) => panic!("seed {seed}: {e}"),
        };
        modules += 1;
        fused_loops += metered.stats.fused_loops;
        refunds += metered.stats.refunds;
        shaped[0] += metered.stats.counted_loops;
        shaped[1] += metered.stats.unrolled_loops;
        shaped[2] += metered.stats.bounded_loops;
        for func in exported_funcs(&plain, &wasm) {
            if func.starts_with(smartnodes_meter::RESERVED_PREFIX) {
                continue;
            }
            let want = run_reference(&fuel, &wasm, &func, BUDGET);
            let got = run_metered(&plain, &metered, &func, BUDGET);
            if std::env::var("METER_FUZZ_VERBOSE").is_ok() {
                eprintln!("seed {seed} {func}: {:?} / {:?}", want.outcome, got.outcome);
            }
            match (&want.outcome, &got.outcome) {
                (Outcome::Returned(a), Outcome::Returned(b)) => {
                    assert_eq!(a, b, "seed {seed} {func}: results\n{}", wat(&wasm));
                    assert_eq!(
                        want.state,
                        got.state,
                        "seed {seed} {func}: state\n{}",
                        wat(&wasm)
                    );
                    assert_eq!(
                        want.fuel,
                        got.fuel,
                        "seed {seed} {func}: fuel\n{}",
                        wat(&wasm)
                    );
                    completed += 1;
                    fuel_compared += 1;
                }
                (Outcome::Trap(a), Outcome::Trap(b)) => {
                    assert_eq!(a, b, "seed {seed} {func}: trap");
                    trapped += 1;
                }
                // The engine's native stack limit, our depth limit and the two fuel
                // checks stop runs at different points: no common result to compare.
                (
                    Outcome::OutOfFuel | Outcome::StackOverflow,
                    Outcome::OutOfFuel | Outcome::DepthExceeded | Outcome::StackOverflow,
                ) => {}
                (Outcome::Returned(_), Outcome::OutOfFuel)
                | (Outcome::OutOfFuel, Outcome::Returned(_)) => {
                    // Only at the edge of the budget: the checks sit at different places.
                    assert!(
                        want.fuel + 10_000 > BUDGET || got.fuel + 10_000 > BUDGET,
                        "seed {seed} {func}: {want:?} vs {got:?}"
                    );
                }
                (Outcome::Trap(_), Outcome::OutOfFuel) => {
                    // Our segment is charged before it runs: a trap late in a segment
                    // near the budget is out of fuel for us. A counted loop is charged
                    // for all its iterations on entry: one that would trap part-way but
                    // cannot be paid in full is out of fuel at once.
                    assert!(
                        want.fuel + 10_000 > BUDGET || metered.stats.counted_loops > 0,
                        "seed {seed} {func}"
                    );
                }
                (a, b) => panic!("seed {seed} {func}: {a:?} vs {b:?}"),
            }
        }
    }
    eprintln!(
        "{modules} modules ({fused_loops} fused loops, {refunds} refunds; {} counted, {} \
         unrolled, {} bounded), {completed} completed calls ({fuel_compared} fuel counts \
         equal), {trapped} equal traps, in {:?}",
        shaped[0],
        shaped[1],
        shaped[2],
        started.elapsed()
    );
    assert!(modules >= 10, "only {modules} modules ran");
    assert!(
        fused_loops >= 10,
        "only {fused_loops} fused loops: the fusion goes untested"
    );
    assert!(completed >= 10, "only {completed} calls completed");
}

#[test]
fn smith_modules_nan_bits_do_not_leak() {
    let plain = engine(EngineKind::Plain);
    let canon = engine(EngineKind::Canon);
    let (n, limit) = seeds();
    let started = Instant::now();
    let mut compared = 0;
    for seed in 0..n {
        if started.elapsed() > limit {
            break;
        }
        let Some(wasm) = module_for(seed + 1_000_000, &plain) else {
            continue;
        };
        let seed_started = Instant::now();
        for cfg in [
            MeterConfig::default(),
            MeterConfig {
                nan_form: smartnodes_meter::NanForm::Select,
                ..MeterConfig::default()
            },
        ] {
            let metered = match instrument(&wasm, &cfg) {
                Ok(m) => m,
                Err(MeterError::Unsupported(_)) => continue,
                Err(e) => panic!("seed {seed}: {e}"),
            };
            for func in exported_funcs(&plain, &wasm) {
                if func.starts_with(smartnodes_meter::RESERVED_PREFIX) {
                    continue;
                }
                let a = run_metered(&plain, &metered, &func, BUDGET);
                let b = run_metered(&canon, &metered, &func, BUDGET);
                assert_eq!(a, b, "seed {seed} {func} {cfg:?}\n{}", wat(&wasm));
                compared += 1;
            }
        }
        // Fuel bounds every run, so a slow seed means slow compilation or an operation
        // whose time the cost model does not reflect: worth a look.
        if seed_started.elapsed() > Duration::from_secs(5) {
            eprintln!("slow: seed {seed} took {:?}", seed_started.elapsed());
        }
    }
    eprintln!("{compared} calls compared in {:?}", started.elapsed());
    assert!(compared >= 20, "only {compared} calls compared");
}
