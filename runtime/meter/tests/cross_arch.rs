//! The cross-architecture promise: for a module, input, budget and meter version,
//! `(verdict, outputs, fuel)` are the same on every machine.
//!
//! This test runs every fixture export and the exports of a fixed set of wasm-smith modules
//! under the rewrite (NaN canonicalisation on) and compares a report of outcomes (results
//! bit for bit, including NaN bits), fuel counts and memory hashes with the committed
//! `tests/fixtures/cross_arch.golden`. The same test passes natively on x86-64 and, built
//! for aarch64, under qemu (`scripts/cross-arch.sh`): both match the same file, so they
//! match each other.
//!
//! `METER_BLESS=1` rewrites the golden file (do it when [`smartnodes_meter::VERSION`]
//! changes, and say why in the commit).

mod common;

use arbitrary::Unstructured;
use common::*;
use smartnodes_meter::{MeterConfig, MeterError, NanForm};

const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/cross_arch.golden"
);
const BUDGET: u64 = 200_000;
const SMITH_SEEDS: u64 = 60;

/// FNV-1a: a hash that is the same everywhere and forever (unlike `DefaultHasher`).
fn fnv(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

fn smith(seed: u64, engine: &wasmtime::Engine) -> Option<Vec<u8>> {
    let mut x = seed ^ 0x5eed;
    let data: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let config = wasm_smith::Config {
        max_imports: 0,
        min_types: 2,
        min_funcs: 2,
        max_funcs: 10,
        export_everything: true,
        max_memory32_bytes: 1 << 20,
        threads_enabled: false,
        tail_call_enabled: false,
        exceptions_enabled: false,
        gc_enabled: false,
        memory64_enabled: false,
        reference_types_enabled: false,
        custom_page_sizes_enabled: false,
        wide_arithmetic_enabled: false,
        ..wasm_smith::Config::default()
    };
    let wasm = wasm_smith::Module::new(config, &mut Unstructured::new(&data))
        .ok()?
        .to_bytes();
    wasmtime::Module::validate(engine, &wasm).ok()?;
    Some(wasm)
}

fn report() -> String {
    let plain = engine(EngineKind::Plain);
    let mut lines = Vec::new();
    let mut modules: Vec<(String, Vec<u8>)> = FIXTURES
        .iter()
        .map(|n| (n.to_string(), fixture(n)))
        .collect();
    for seed in 0..SMITH_SEEDS {
        if let Some(wasm) = smith(seed, &plain) {
            modules.push((format!("smith-{seed}"), wasm));
        }
    }
    let select = MeterConfig {
        nan_form: NanForm::Select,
        ..MeterConfig::default()
    };
    for (name, wasm) in &modules {
        for (cfg_name, cfg) in [("simd", MeterConfig::default()), ("select", select.clone())] {
            let metered = match smartnodes_meter::instrument(wasm, &cfg) {
                Ok(m) => m,
                Err(MeterError::Unsupported(e)) => {
                    lines.push(format!("{name} unsupported: {e}"));
                    continue;
                }
                Err(e) => panic!("{name}: {e}"),
            };
            lines.push(format!(
                "{name} {cfg_name} wasm={:016x}",
                fnv(&metered.wasm)
            ));
            for func in exported_funcs(&plain, wasm) {
                if func.starts_with(smartnodes_meter::RESERVED_PREFIX) {
                    continue;
                }
                let run = run_metered(&plain, &metered, &func, BUDGET);
                lines.push(format!(
                    "{name} {cfg_name} {func:?} {:?} fuel={} mem={:016x}",
                    run.outcome,
                    run.fuel,
                    fnv(&run.memory)
                ));
            }
        }
    }
    lines.join("\n") + "\n"
}

#[test]
fn same_report_as_the_golden_file() {
    let got = report();
    if std::env::var_os("METER_BLESS").is_some() {
        std::fs::write(GOLDEN, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(GOLDEN).expect("golden file (METER_BLESS=1 writes it)");
    if got != want {
        let first = got
            .lines()
            .zip(want.lines())
            .find(|(g, w)| g != w)
            .map(|(g, w)| format!("got:  {g}\nwant: {w}"))
            .unwrap_or_else(|| "different number of lines".into());
        panic!(
            "report differs from {GOLDEN} on {}:\n{first}",
            std::env::consts::ARCH
        );
    }
    assert!(got.lines().count() > 100);
}
