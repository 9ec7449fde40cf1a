//! Determinism: every switch that keeps it has a test here, and every example and fixture
//! gives identical `(verdict, output_hash, fuel_used)` across fresh engines, both
//! allocators, and a cold and warm module cache (memory and disk). Across processes:
//! `host/tests/run_cli.rs`.

use crate::common::{example_input, fixture, fixture_names, runtime, test_limits};
use smartnodes_runtime::{
    Allocator, Outcome, Runtime, RuntimeConfig, TaskInput, Verdict, REALTIME_EPOCH_NS,
};
use std::time::{Duration, Instant};

/// Every example (with its input) and every fixture (with a small input).
fn cases() -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let mut cases: Vec<(String, Vec<u8>, Vec<u8>)> = smartnodes_examples::ALL
        .iter()
        .map(|(name, wasm)| (name.to_string(), wasm.to_vec(), example_input(name)))
        .collect();
    // infinite_recursion included: the default metering (the in-wasm meter) stops it at a
    // fixed call depth, so its verdict is reproducible.
    for name in fixture_names() {
        cases.push((name.clone(), fixture(&name), b"some input".to_vec()));
    }
    cases
}

type Commitment = (Verdict, Option<[u8; 32]>, u64);

fn commitments(rt: &Runtime) -> Vec<(String, Commitment)> {
    cases()
        .into_iter()
        .map(|(name, wasm, input)| {
            let o = rt
                .run(&wasm, &TaskInput::new(input), &test_limits())
                .unwrap();
            (name, o.commitment())
        })
        .collect()
}

#[test]
fn identical_across_engines_allocators_and_caches() {
    let reference = commitments(runtime());
    // Same runtime again: memory cache warm.
    assert_eq!(commitments(runtime()), reference, "warm memory cache");
    // A fresh pooling engine.
    let pooled = Runtime::new(RuntimeConfig::default()).unwrap();
    assert_eq!(commitments(&pooled), reference, "fresh pooling engine");
    // The on-demand allocator.
    let on_demand = Runtime::new(RuntimeConfig {
        allocator: Allocator::OnDemand,
        ..RuntimeConfig::default()
    })
    .unwrap();
    assert_eq!(commitments(&on_demand), reference, "on-demand allocator");
    // Disk cache: cold (compiles and writes), then a new runtime that loads from disk.
    let dir = tempfile::tempdir().unwrap();
    let with_disk = || {
        Runtime::new(RuntimeConfig {
            cache_dir: Some(dir.path().to_path_buf()),
            ..RuntimeConfig::default()
        })
        .unwrap()
    };
    assert_eq!(commitments(&with_disk()), reference, "disk cache cold");
    let cached = walk(dir.path())
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .count();
    assert!(
        cached >= smartnodes_examples::ALL.len(),
        "only {cached} modules on disk"
    );
    assert_eq!(commitments(&with_disk()), reference, "disk cache warm");
    // Every completed case has an output hash; the table is not trivially empty.
    assert!(
        reference
            .iter()
            .filter(|(_, c)| c.0 == Verdict::Completed)
            .count()
            >= 10
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn fingerprint_is_stable_and_describes_the_switches() {
    let a = runtime().fingerprint();
    let b = Runtime::new(RuntimeConfig {
        allocator: Allocator::OnDemand,
        ..RuntimeConfig::default()
    })
    .unwrap()
    .fingerprint();
    assert_eq!(
        a, b,
        "the allocator does not change results, so not the fingerprint"
    );
    let d = runtime().fingerprint_description();
    for switch in [
        "in-wasm(smartnodes-meter/",
        "interrupt(slice=",
        "relaxed-simd=deterministic",
        "threads=off",
        "wasmtime=48.0.8",
    ] {
        assert!(d.contains(switch), "{d}");
    }
}

fn run_fixture(name: &str, seed: [u8; 32]) -> Outcome {
    let o = runtime()
        .run(
            &fixture(name),
            &TaskInput::new(Vec::new()).with_seed(seed),
            &test_limits(),
        )
        .unwrap();
    assert_eq!(o.verdict, Verdict::Completed, "{name}: {}", o.detail);
    o
}

fn u64_at(bytes: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap())
}

/// stdin reports the input not read yet as its size, so that a task can size its buffer.
#[test]
fn stdin_size_is_the_input_not_read_yet() {
    let o = runtime()
        .run(
            &fixture("stdin_size"),
            &TaskInput::new(b"hello world".to_vec()),
            &test_limits(),
        )
        .unwrap();
    assert_eq!(o.verdict, Verdict::Completed, "{}", o.detail);
    assert_eq!((u64_at(&o.output, 0), u64_at(&o.output, 1)), (11, 8));
}

#[test]
fn nan_bits_are_canonical() {
    let out = run_fixture("nan", [0; 32]).output;
    assert_eq!(out.len(), 52);
    let f32_at = |off: usize| u32::from_le_bytes(out[off..off + 4].try_into().unwrap());
    let f64_at = |off: usize| u64::from_le_bytes(out[off..off + 8].try_into().unwrap());
    for off in [0, 4, 8] {
        assert_eq!(f32_at(off), 0x7fc0_0000, "f32 NaN at {off}");
    }
    for off in [12, 20, 28] {
        assert_eq!(f64_at(off), 0x7ff8_0000_0000_0000, "f64 NaN at {off}");
    }
    for lane in 0..4 {
        assert_eq!(f32_at(36 + 4 * lane), 0x7fc0_0000, "f32x4 lane {lane}");
    }
}

#[test]
fn relaxed_simd_is_deterministic() {
    let out = run_fixture("relaxed_simd", [0; 32]).output;
    let i32_at = |i: usize| i32::from_le_bytes(out[i * 4..i * 4 + 4].try_into().unwrap());
    assert_eq!(
        [i32_at(0), i32_at(1), i32_at(2), i32_at(3)],
        [0, i32::MAX, i32::MIN, 1]
    );
    assert_eq!(
        &out[16..32],
        &[1, 0, 0, 4, 0, 2, 0, 3, 1, 1, 1, 1, 1, 1, 1, 0]
    );
    let fused = 2f32.powi(-46).to_bits();
    for lane in 0..4 {
        let bits = u32::from_le_bytes(out[32 + 4 * lane..36 + 4 * lane].try_into().unwrap());
        assert_eq!(
            bits, fused,
            "relaxed_madd lane {lane} is fused in the deterministic profile"
        );
    }
}

#[test]
fn threads_are_off() {
    let o = runtime()
        .run(
            &fixture("shared_memory"),
            &TaskInput::new(Vec::new()),
            &test_limits(),
        )
        .unwrap();
    assert_eq!(o.verdict, Verdict::InvalidModule);
}

#[test]
fn clocks_are_fixed_and_advance_with_fuel() {
    let a = run_fixture("clock_random", [0; 32]);
    std::thread::sleep(Duration::from_millis(20));
    let b = run_fixture("clock_random", [0; 32]);
    assert_eq!(a.output, b.output, "clocks do not follow real time");
    let (real1, mono1, real2, mono2) = (
        u64_at(&a.output, 0),
        u64_at(&a.output, 1),
        u64_at(&a.output, 2),
        u64_at(&a.output, 3),
    );
    assert!(mono2 > mono1, "the monotonic clock advances with work");
    assert_eq!(
        real1,
        REALTIME_EPOCH_NS + mono1 - (mono1 - real1.wrapping_sub(REALTIME_EPOCH_NS))
    );
    assert!(real1 >= REALTIME_EPOCH_NS && real1 - REALTIME_EPOCH_NS <= mono1);
    assert!(real2 > real1 && real2 - REALTIME_EPOCH_NS <= mono2);
    // The clock is fuel: it moves by about the fuel burnt in the loop (1000 iterations).
    assert!(
        (3_000..100_000).contains(&(mono2 - mono1)),
        "{}",
        mono2 - mono1
    );
}

#[test]
fn randomness_is_chacha20_keyed_by_the_seed() {
    use rand_chacha::rand_core::{RngCore, SeedableRng};
    let seed = [42u8; 32];
    let a = run_fixture("clock_random", seed).output[32..64].to_vec();
    let b = run_fixture("clock_random", seed).output[32..64].to_vec();
    let c = run_fixture("clock_random", [43u8; 32]).output[32..64].to_vec();
    assert_eq!(a, b);
    assert_ne!(a, c);
    let mut expected = [0u8; 32];
    rand_chacha::ChaCha20Rng::from_seed(seed).fill_bytes(&mut expected);
    assert_eq!(a, expected);
    let distinct: std::collections::BTreeSet<u8> = a.iter().copied().collect();
    assert!(distinct.len() > 16, "not a repeated value");
}

#[test]
fn sleeping_does_not_hold_a_thread() {
    let started = Instant::now();
    let out = run_fixture("sleep", [0; 32]).output;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "slept in real time"
    );
    let (before, after) = (u64_at(&out, 0), u64_at(&out, 1));
    let errno = u32::from_le_bytes(out[16..20].try_into().unwrap());
    let events = u32::from_le_bytes(out[20..24].try_into().unwrap());
    assert_eq!((errno, events), (0, 1));
    assert!(
        after - before >= 3_600_000_000_000,
        "the virtual clock moved by the sleep"
    );
}

#[test]
fn no_files_without_preopens() {
    let out = run_fixture("open_file", [0; 32]).output;
    let prestat = u32::from_le_bytes(out[0..4].try_into().unwrap());
    let open = u32::from_le_bytes(out[4..8].try_into().unwrap());
    assert_eq!((prestat, open), (8, 8), "EBADF: no descriptor 3");
}

#[test]
fn fuel_is_counted_from_after_instantiation() {
    // A 4 MiB data segment costs instantiation work (and differs with copy-on-write
    // init), but the task's fuel starts after it: both modules report the same fuel.
    let small = wat::parse_str(r#"(module (memory (export "memory") 80) (func (export "_start") (drop (i32.add (i32.const 1) (i32.const 2)))))"#).unwrap();
    let big = wat::parse_str(format!(
        r#"(module (memory (export "memory") 80) (data (i32.const 0) "{}") (func (export "_start") (drop (i32.add (i32.const 1) (i32.const 2)))))"#,
        "\\01".repeat(4 << 20)
    ))
    .unwrap();
    let fuel = |wasm: &[u8]| {
        runtime()
            .run(wasm, &TaskInput::new(Vec::new()), &test_limits())
            .unwrap()
    };
    let (a, b) = (fuel(&small), fuel(&big));
    assert_eq!(a.verdict, Verdict::Completed);
    assert_eq!(a.fuel_used, b.fuel_used);
}

#[test]
fn seed_and_args_reach_the_guest_sdk() {
    // The examples do not read randomness, so use the guest SDK through matmul's seed
    // argument instead: different seeds, different checksums; same seed, same bytes.
    let rt = runtime();
    let run = |input: &[u8]| {
        rt.run(
            smartnodes_examples::MATMUL,
            &TaskInput::new(input.to_vec()),
            &test_limits(),
        )
        .unwrap()
    };
    assert_eq!(run(b"8 1").output, run(b"8 1").output);
    assert_ne!(run(b"8 1").output, run(b"8 2").output);
}

#[test]
fn input_files_are_read_only_and_deterministic() {
    let wasm = fixture("read_input_file");
    let input = TaskInput::new(Vec::new())
        .with_file("data.txt", &b"hello from a file"[..])
        .with_file("other.bin", vec![0u8; 10]);
    let o = runtime().run(&wasm, &input, &test_limits()).unwrap();
    assert_eq!(o.verdict, Verdict::Completed, "{}", o.detail);
    let mut expected = b"/inputhello from a file".to_vec();
    expected.extend_from_slice(&44u32.to_le_bytes()); // ENOENT
    expected.extend_from_slice(&69u32.to_le_bytes()); // EROFS
    assert_eq!(o.output, expected);
    // Invalid names are refused before running.
    let bad = TaskInput::new(Vec::new()).with_file("../etc/passwd", Vec::new());
    assert!(runtime().run(&wasm, &bad, &test_limits()).is_err());
    let twice = TaskInput::new(Vec::new())
        .with_file("a", Vec::new())
        .with_file("a", Vec::new());
    assert!(runtime().run(&wasm, &twice, &test_limits()).is_err());
}
