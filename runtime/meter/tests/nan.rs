//! NaN bits are canonical where a program can observe them, kept where a value only moves
//! (NaN boxing), and the same whether or not the engine canonicalises NaNs itself.

mod common;

use common::*;
use smartnodes_meter::{MeterConfig, NanForm};

const CANON_F64: u64 = 0x7ff8_0000_0000_0000;
const CANON_F32: u32 = 0x7fc0_0000;

fn f64_at(mem: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(mem[at..at + 8].try_into().unwrap())
}
fn f32_at(mem: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(mem[at..at + 4].try_into().unwrap())
}

fn configs() -> [MeterConfig; 2] {
    [
        MeterConfig::default(),
        MeterConfig {
            nan_form: NanForm::Select,
            ..MeterConfig::default()
        },
    ]
}

#[test]
fn stored_nans_are_canonical() {
    let wasm = fixture("floats.wat");
    let plain = engine(EngineKind::Plain);
    for cfg in configs() {
        let metered = meter(&wasm, &cfg);
        let run = run_metered(&plain, &metered, "nan_store", 1 << 30);
        assert_eq!(run.outcome, Outcome::Returned(vec![V::I32(0)]));
        for at in [0, 16, 24, 32, 48, 56] {
            assert_eq!(f64_at(&run.memory, at), CANON_F64, "{cfg:?} f64 at {at}");
        }
        for at in [8, 40] {
            assert_eq!(f32_at(&run.memory, at), CANON_F32, "{cfg:?} f32 at {at}");
        }
    }
}

/// Without the rewrite, this machine's NaNs are not canonical: the test above is not
/// vacuous here. (x86-64's default NaN has the sign bit set; a signalling NaN's payload
/// survives arithmetic.)
#[test]
#[cfg(target_arch = "x86_64")]
fn hardware_nans_differ_without_the_rewrite() {
    let wasm = fixture("floats.wat");
    let plain = engine(EngineKind::Plain);
    let run = run_reference(&plain, &wasm, "nan_store", 0);
    assert_eq!(f64_at(&run.memory, 0), 0xfff8_0000_0000_0000);
    assert_ne!(f64_at(&run.memory, 32), CANON_F64);
}

/// On aarch64 the default NaN is positive: the original module stores other bits there
/// than on x86-64 (where it is `0xfff8…`), which is what the rewrite hides.
#[test]
#[cfg(target_arch = "aarch64")]
fn hardware_nans_differ_without_the_rewrite() {
    let wasm = fixture("floats.wat");
    let plain = engine(EngineKind::Plain);
    let run = run_reference(&plain, &wasm, "nan_store", 0);
    assert_eq!(f64_at(&run.memory, 0), 0x7ff8_0000_0000_0000);
    // The signalling NaN's payload survives arithmetic (quietened), as on x86-64.
    assert_ne!(f64_at(&run.memory, 32), CANON_F64);
}

#[test]
fn nan_boxed_values_keep_their_bits() {
    let wasm = fixture("floats.wat");
    let plain = engine(EngineKind::Plain);
    for cfg in configs() {
        let metered = meter(&wasm, &cfg);
        let run = run_metered(&plain, &metered, "nan_boxing", 1 << 30);
        assert_eq!(f64_at(&run.memory, 64), 0x7ff4_0000_0000_0001);
        assert_eq!(f32_at(&run.memory, 72), 0x7fe0_0005);
    }
}

#[test]
fn observation_points_see_canonical_nans() {
    let wasm = fixture("floats.wat");
    let plain = engine(EngineKind::Plain);
    for cfg in configs() {
        let metered = meter(&wasm, &cfg);
        let run = |f: &str| run_metered(&plain, &metered, f, 1 << 30);
        assert_eq!(
            run("nan_reinterpret").outcome,
            Outcome::Returned(vec![V::I64(CANON_F64 as i64)])
        );
        // copysign takes the sign of the canonical (positive) NaN.
        assert_eq!(
            run("nan_copysign").outcome,
            Outcome::Returned(vec![V::F64(1f64.to_bits())])
        );
        assert_eq!(
            run("nan_result").outcome,
            Outcome::Returned(vec![V::F64(CANON_F64), V::I32(3), V::F32(CANON_F32)])
        );
        let simd = run("nan_simd");
        assert_eq!(
            simd.outcome,
            Outcome::Returned(vec![V::I32(CANON_F32 as i32)])
        );
        assert_eq!(f32_at(&simd.memory, 128), CANON_F32);
        assert_eq!(f32_at(&simd.memory, 128 + 4), 0.5f32.to_bits());
        assert_eq!(f32_at(&simd.memory, 128 + 8), CANON_F32);
        assert_eq!(f64_at(&simd.memory, 144), CANON_F64);
        assert_eq!(f64_at(&simd.memory, 152), CANON_F64);
    }
    // An exported global is observable too.
    let module =
        wasmtime::Module::new(&plain, &meter(&wasm, &MeterConfig::default()).wasm).unwrap();
    let mut store = wasmtime::Store::new(&plain, ());
    let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
    instance
        .get_global(&mut store, smartnodes_meter::FUEL_EXPORT)
        .unwrap()
        .set(&mut store, wasmtime::Val::I64(1000))
        .unwrap();
    let f = instance.get_func(&mut store, "nan_global").unwrap();
    f.call(&mut store, &[], &mut [wasmtime::Val::I32(0)])
        .unwrap();
    let g = instance
        .get_global(&mut store, "g")
        .unwrap()
        .get(&mut store);
    assert_eq!(g.unwrap_f64().to_bits(), CANON_F64);
}

/// The rewritten module gives identical bits on an engine that canonicalises NaNs and on
/// one that does not: what the hardware does with NaNs cannot be seen.
#[test]
fn engine_nan_canonicalisation_makes_no_difference() {
    let plain = engine(EngineKind::Plain);
    let canon = engine(EngineKind::Canon);
    for name in FIXTURES {
        let wasm = fixture(name);
        for cfg in configs() {
            let metered = meter(&wasm, &cfg);
            for func in exported_funcs(&plain, &wasm) {
                let a = run_metered(&plain, &metered, &func, 1 << 30);
                let b = run_metered(&canon, &metered, &func, 1 << 30);
                assert_eq!(a, b, "{name} {func} {cfg:?}");
            }
        }
    }
    // ...whereas the original module does differ (on this machine).
    #[cfg(target_arch = "x86_64")]
    {
        let wasm = fixture("floats.wat");
        let a = run_reference(&plain, &wasm, "nan_store", 0);
        let b = run_reference(&canon, &wasm, "nan_store", 0);
        assert_ne!(a.memory, b.memory);
    }
}

/// A vector float result consumed at once by another float operation of the same lane
/// shape (or a comparison) is canonicalised only after that operation: the consumer maps
/// any NaN to a NaN (or to the same mask bits) whatever its bits. A consumer that reads
/// the lanes in another shape sees the bits, so the producer is canonicalised first.
#[test]
fn vector_chains_are_canonical_at_their_end() {
    let wasm = wat::parse_str(
        r#"(module
          (memory (export "memory") 1)
          ;; two signalling NaNs with a payload in the low word: 0x7ff4000000000001
          (data (i32.const 0) "\01\00\00\00\00\00\f4\7f\01\00\00\00\00\00\f4\7f")
          (func (export "chain") (result i32)
            ;; mul then add (same shape): one canonicalisation, after the add
            (v128.store (i32.const 64)
              (f64x2.add (v128.const f64x2 0 0)
                (f64x2.mul (v128.const f64x2 1 1) (v128.load (i32.const 0)))))
            ;; mul then a comparison: the mask does not depend on the NaN's bits
            (v128.store (i32.const 80)
              (f64x2.eq (v128.const f64x2 1 1)
                (f64x2.mul (v128.const f64x2 1 1) (v128.load (i32.const 0)))))
            ;; f64x2 mul read as f32x4: the payload's low word would be a denormal lane
            (v128.store (i32.const 96)
              (f32x4.add (v128.const f32x4 0 0 0 0)
                (f64x2.mul (v128.const f64x2 1 1) (v128.load (i32.const 0)))))
            (i32.const 0)))"#,
    )
    .unwrap();
    for (kind, cfg) in [EngineKind::Plain, EngineKind::Canon]
        .into_iter()
        .flat_map(|k| configs().map(|c| (k, c)))
    {
        let metered = meter(&wasm, &cfg);
        // add, eq's producer skipped; f32x4.add, and the f64x2.mul before it (other shape).
        assert_eq!(metered.stats.nan_canonicalizations, 3, "{cfg:?}");
        let run = run_metered(&engine(kind), &metered, "chain", 1 << 30);
        assert_eq!(run.outcome, Outcome::Returned(vec![V::I32(0)]));
        for at in [64, 72] {
            assert_eq!(
                f64_at(&run.memory, at),
                CANON_F64,
                "{kind:?} {cfg:?} at {at}"
            );
        }
        for at in [80, 88] {
            assert_eq!(f64_at(&run.memory, at), 0, "{kind:?} {cfg:?} at {at}");
        }
        // Low words: 0 + canonical low word (0) = +0; high words: canonical NaN.
        for at in [96, 104] {
            assert_eq!(f32_at(&run.memory, at), 0, "{kind:?} {cfg:?} at {at}");
            assert_eq!(
                f32_at(&run.memory, at + 4),
                CANON_F32,
                "{kind:?} {cfg:?} at {at}"
            );
        }
    }
    // Without the canonicalisation before the f32x4 consumer, this machine would store the
    // payload's low word (1, a denormal) in the low lanes: the check above is not vacuous.
    #[cfg(target_arch = "x86_64")]
    {
        let plain = engine(EngineKind::Plain);
        let run = run_reference(&plain, &wasm, "chain", 0);
        assert_eq!(f32_at(&run.memory, 96), 1);
    }
}
