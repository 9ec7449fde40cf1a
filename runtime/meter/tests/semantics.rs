//! The rewrite changes nothing but metering: same results, same memory, and the same fuel
//! count as wasmtime's own fuel; out of fuel exactly at the budget.

mod common;

use common::*;

const BIG: u64 = 1_000_000_000;

/// Every export of every fixture: original and rewritten give bit-identical results and
/// state (NaN canonicalisation off, so nothing but metering differs).
#[test]
fn rewrite_preserves_results_and_state() {
    let plain = engine(EngineKind::Plain);
    let mut checked = 0;
    for name in FIXTURES {
        let wasm = fixture(name);
        let metered = meter(&wasm, &no_nan());
        for func in exported_funcs(&plain, &wasm) {
            let want = run_reference(&plain, &wasm, &func, 0);
            let got = run_metered(&plain, &metered, &func, BIG);
            assert_eq!(want.outcome, got.outcome, "{name} {func}: outcome");
            assert_eq!(want.state, got.state, "{name} {func}: memory and globals");
            checked += 1;
        }
    }
    assert!(checked >= 35, "only {checked} exports checked");
}

/// Same with NaN canonicalisation on: results that carry no NaN are unchanged.
#[test]
fn nan_canonicalisation_changes_no_ordinary_result() {
    let plain = engine(EngineKind::Plain);
    for name in ["control.wat", "calls.wat", "memory.wat", "kernels.wat"] {
        let wasm = fixture(name);
        let metered = meter(&wasm, &smartnodes_meter::MeterConfig::default());
        for func in exported_funcs(&plain, &wasm) {
            let want = run_reference(&plain, &wasm, &func, 0);
            let got = run_metered(&plain, &metered, &func, BIG);
            assert_eq!(want.outcome, got.outcome, "{name} {func}: outcome");
            assert_eq!(want.state, got.state, "{name} {func}: state");
        }
    }
}

/// On every run that completes, the meter's count equals wasmtime's `consume_fuel` count.
#[test]
fn fuel_equals_wasmtime_fuel() {
    let fuel = engine(EngineKind::Fuel);
    let plain = engine(EngineKind::Plain);
    let mut compared = 0;
    for name in FIXTURES {
        let wasm = fixture(name);
        let metered = meter(&wasm, &smartnodes_meter::MeterConfig::default());
        for func in exported_funcs(&plain, &wasm) {
            let want = run_reference(&fuel, &wasm, &func, BIG);
            let got = run_metered(&plain, &metered, &func, BIG);
            if let Outcome::Returned(_) = want.outcome {
                assert_eq!(want.fuel, got.fuel, "{name} {func}: fuel");
                assert!(got.fuel > 0);
                compared += 1;
            }
        }
    }
    assert!(compared >= 30, "only {compared} runs compared");
}

/// A run whose total cost is F completes with a budget of F and runs out of fuel with
/// F - 1 (and with any smaller budget), including inside deep loops and recursion.
#[test]
fn out_of_fuel_exactly_at_the_budget() {
    let plain = engine(EngineKind::Plain);
    for name in FIXTURES {
        let wasm = fixture(name);
        let metered = meter(&wasm, &smartnodes_meter::MeterConfig::default());
        for func in exported_funcs(&plain, &wasm) {
            let full = run_metered(&plain, &metered, &func, BIG);
            if !matches!(full.outcome, Outcome::Returned(_)) {
                continue;
            }
            let f = full.fuel;
            let exact = run_metered(&plain, &metered, &func, f);
            assert_eq!(exact.outcome, full.outcome, "{name} {func}: budget = fuel");
            assert_eq!(exact.fuel, f);
            for budget in [f - 1, f / 2, f / 3, 1, 0].into_iter().filter(|b| *b < f) {
                let short = run_metered(&plain, &metered, &func, budget);
                assert_eq!(
                    short.outcome,
                    Outcome::OutOfFuel,
                    "{name} {func} budget {budget}"
                );
                assert_eq!(short.fuel, budget);
            }
        }
    }
}

/// Out of fuel is caught by the check inside the loop or at function entry — the status
/// global says so — not only when the run returns.
#[test]
fn checks_stop_infinite_loops_and_recursion() {
    let wasm = wat::parse_str(
        r#"(module
            (func (export "spin") (loop (br 0)))
            (func (export "spin_f64") (result f64) (local $x f64)
              (loop $l (local.set $x (f64.add (local.get $x) (f64.const 1))) (br $l))
              (local.get $x))
            (func $r (export "recurse") (call $r))
            (func (export "nested_spin")
              (loop (loop (loop (br 0)))))
        )"#,
    )
    .unwrap();
    let plain = engine(EngineKind::Plain);
    let metered = meter(&wasm, &smartnodes_meter::MeterConfig::default());
    for func in ["spin", "spin_f64", "nested_spin"] {
        for budget in [0, 1, 2, 3, 1000, 1_000_001] {
            let run = run_metered(&plain, &metered, func, budget);
            assert_eq!(run.outcome, Outcome::OutOfFuel, "{func} {budget}");
        }
    }
    // `spin`: entry costs 1, every iteration costs 1 (the `br`).
    let module = wasmtime::Module::new(&plain, &metered.wasm).unwrap();
    let mut store = wasmtime::Store::new(&plain, ());
    let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
    let fuel = instance
        .get_global(&mut store, smartnodes_meter::FUEL_EXPORT)
        .unwrap();
    let status = instance
        .get_global(&mut store, smartnodes_meter::STATUS_EXPORT)
        .unwrap();
    fuel.set(&mut store, wasmtime::Val::I64(10)).unwrap();
    let spin = instance.get_func(&mut store, "spin").unwrap();
    assert!(spin.call(&mut store, &[], &mut []).is_err());
    assert_eq!(status.get(&mut store).unwrap_i32(), 1, "trapped in a check");
    assert_eq!(
        fuel.get(&mut store).unwrap_i64(),
        -1,
        "trapped at the first overdraft"
    );

    // Recursion with a small budget runs out of fuel before the depth limit.
    assert_eq!(
        run_metered(&plain, &metered, "recurse", 100).outcome,
        Outcome::OutOfFuel
    );
    // With a large budget it hits the depth limit.
    assert_eq!(
        run_metered(&plain, &metered, "recurse", BIG).outcome,
        Outcome::DepthExceeded
    );
}

/// `max_call_depth` frames are allowed; one more traps with `DepthExceeded`.
#[test]
fn depth_limit_is_exact() {
    let plain = engine(EngineKind::Plain);
    for max in [1u32, 2, 10, 777, 5000] {
        // `run` calls `rec(n)`, which recurses n times: n + 2 frames in all.
        let wat = |n: u32| {
            format!(
                r#"(module
                (func $rec (param i32)
                  (if (local.get 0) (then (call $rec (i32.sub (local.get 0) (i32.const 1))))))
                (func (export "run") (call $rec (i32.const {n}))))"#
            )
        };
        let cfg = smartnodes_meter::MeterConfig {
            max_call_depth: max,
            ..Default::default()
        };
        let ok_n = max.checked_sub(2);
        if let Some(n) = ok_n {
            let m = meter(&wat::parse_str(wat(n)).unwrap(), &cfg);
            assert_eq!(
                run_metered(&plain, &m, "run", BIG).outcome,
                Outcome::Returned(vec![]),
                "max {max}: {max} frames"
            );
        }
        let n = max.saturating_sub(1);
        let m = meter(&wat::parse_str(wat(n)).unwrap(), &cfg);
        assert_eq!(
            run_metered(&plain, &m, "run", BIG).outcome,
            Outcome::DepthExceeded,
            "max {max}: {} frames",
            n + 2
        );
    }
}

/// The former start function runs when the host calls it, with the budget set.
#[test]
fn start_function_becomes_an_export() {
    let wasm = wat::parse_str(
        r#"(module
            (memory (export "mem") 1)
            (func $init (i32.store (i32.const 0) (i32.const 99)))
            (start $init)
            (func (export "read") (result i32) (i32.load (i32.const 0))))"#,
    )
    .unwrap();
    let plain = engine(EngineKind::Plain);
    let metered = meter(&wasm, &smartnodes_meter::MeterConfig::default());
    assert_eq!(metered.start, Some(smartnodes_meter::START_EXPORT));
    let got = run_metered(&plain, &metered, "read", BIG);
    assert_eq!(got.outcome, Outcome::Returned(vec![V::I32(99)]));
    // read: entry 1 + 2 operators (the harness gives the start function its own budget).
    assert_eq!(got.fuel, 3);
}

/// The fixtures themselves are valid, and the rewrite accepts them.
#[test]
fn fixtures_are_valid() {
    let plain = engine(EngineKind::Plain);
    for name in FIXTURES {
        let wasm = fixture(name);
        wasmtime::Module::new(&plain, &wasm).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        smartnodes_meter::instrument(&wasm, &no_nan()).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// `StartMode::CallFrom`: the start function runs once, on entry to the named export, and
/// its fuel is that call's.
#[test]
fn start_function_called_from_an_export() {
    let wasm = wat::parse_str(
        r#"(module
            (memory (export "mem") 1)
            (func $init (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 99))))
            (start $init)
            (func (export "read") (result i32) (i32.load (i32.const 0))))"#,
    )
    .unwrap();
    let plain = engine(EngineKind::Plain);
    let cfg = smartnodes_meter::MeterConfig {
        start: smartnodes_meter::StartMode::CallFrom("read".into()),
        ..Default::default()
    };
    let metered = meter(&wasm, &cfg);
    assert_eq!(metered.start, None);
    let got = run_metered(&plain, &metered, "read", BIG);
    assert_eq!(got.outcome, Outcome::Returned(vec![V::I32(99)]));
    // $init: entry 1 + 6 operators; read: entry 1 + 2 operators.
    assert_eq!(got.fuel, 10);
    assert_eq!(got.fuel, run_metered(&plain, &metered, "read", 10).fuel);
    assert_eq!(
        run_metered(&plain, &metered, "read", 9).outcome,
        Outcome::OutOfFuel
    );
    // Only once per instance.
    let module = wasmtime::Module::new(&plain, &metered.wasm).unwrap();
    let mut store = wasmtime::Store::new(&plain, ());
    let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
    instance
        .get_global(&mut store, smartnodes_meter::FUEL_EXPORT)
        .unwrap()
        .set(&mut store, wasmtime::Val::I64(1000))
        .unwrap();
    let read = instance
        .get_typed_func::<(), i32>(&mut store, "read")
        .unwrap();
    assert_eq!(read.call(&mut store, ()).unwrap(), 99);
    assert_eq!(read.call(&mut store, ()).unwrap(), 99);
    // An unknown name falls back to exporting it.
    let cfg = smartnodes_meter::MeterConfig {
        start: smartnodes_meter::StartMode::CallFrom("nope".into()),
        ..Default::default()
    };
    assert_eq!(
        meter(&wasm, &cfg).start,
        Some(smartnodes_meter::START_EXPORT)
    );
}
