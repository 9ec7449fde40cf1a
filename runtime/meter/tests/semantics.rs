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

/// Fused loops (`src/fuse.rs`) charge a whole iteration at the header and refund what a
/// branch skips. Every loop of `fused.wat` but one is fused; for each export, the count
/// equals wasmtime's, and over a sweep of budgets around and below the cost F a run
/// completes, with fuel F, exactly when the budget is at least F.
#[test]
fn fused_loops_count_exactly_at_every_budget() {
    let fuel = engine(EngineKind::Fuel);
    let plain = engine(EngineKind::Plain);
    let wasm = fixture("fused.wat");
    let metered = meter(&wasm, &smartnodes_meter::MeterConfig::default());
    assert_eq!(metered.stats.fused_loops, 9, "{:?}", metered.stats);
    assert_eq!(metered.stats.counted_loops, 2, "{:?}", metered.stats);
    assert_eq!(metered.stats.unrolled_loops, 2, "{:?}", metered.stats);
    assert!(metered.stats.refunds >= 8, "{:?}", metered.stats);
    for func in exported_funcs(&plain, &wasm) {
        let want = run_reference(&fuel, &wasm, &func, BIG);
        let full = run_metered(&plain, &metered, &func, BIG);
        assert!(matches!(want.outcome, Outcome::Returned(_)), "{func}");
        assert_eq!(want.outcome, full.outcome, "{func}");
        assert_eq!(want.fuel, full.fuel, "{func}: fuel");
        let f = full.fuel;
        let near = f.saturating_sub(40)..=f + 1;
        let below = (0..f).step_by((f / 20).max(1) as usize);
        for budget in near.chain(below) {
            let run = run_metered(&plain, &metered, &func, budget);
            if budget >= f {
                assert_eq!(run.outcome, full.outcome, "{func} budget {budget} >= {f}");
                assert_eq!(run.fuel, f, "{func} budget {budget}");
            } else {
                assert_eq!(
                    run.outcome,
                    Outcome::OutOfFuel,
                    "{func} budget {budget} < {f}"
                );
            }
        }
    }
}

/// A fused loop traps at the same iteration as the plain scheme: the header check allows
/// exactly the overdraft of the iteration's charge ahead, no more and no less.
#[test]
fn fused_loop_traps_at_the_plain_schemes_iteration() {
    // Costs: entry 1 (function entry; `block` and `loop` are free); the header segment
    // `global.get i32.const i32.add global.set i32.const i32.eqz br_if` 7; the segment
    // after the `br_if`: `local.get i32.const i32.add local.set br` 5. The plain scheme
    // traps at the header of iteration k when budget - 1 - 12 (k - 1) - 7 < 0, before that
    // iteration counts itself.
    let wasm = wat::parse_str(
        r#"(module
            (global $iters (export "iters") (mut i32) (i32.const 0))
            (func (export "spin_mid") (local $i i32)
              (block $out
                (loop $l
                  (global.set $iters (i32.add (global.get $iters) (i32.const 1)))
                  (br_if $out (i32.eqz (i32.const 1)))
                  (local.set $i (i32.add (local.get $i) (i32.const 1)))
                  (br $l)))))"#,
    )
    .unwrap();
    let plain = engine(EngineKind::Plain);
    let metered = meter(&wasm, &smartnodes_meter::MeterConfig::default());
    assert_eq!(metered.stats.fused_loops, 1);
    let module = wasmtime::Module::new(&plain, &metered.wasm).unwrap();
    for budget in 0..200i64 {
        let (mut store, instance, fuel) = budgeted_instance(&plain, &module, budget);
        let global =
            |store: &mut wasmtime::Store<()>, name| instance.get_global(&mut *store, name).unwrap();
        let spin = instance.get_func(&mut store, "spin_mid").unwrap();
        assert!(spin.call(&mut store, &[], &mut []).is_err());
        let status = global(&mut store, smartnodes_meter::STATUS_EXPORT);
        assert_eq!(status.get(&mut store).unwrap_i32(), 1, "budget {budget}");
        let iters = i64::from(global(&mut store, "iters").get(&mut store).unwrap_i32());
        let want = if budget < 8 { 0 } else { (budget - 8) / 12 + 1 };
        assert_eq!(iters, want, "budget {budget}: iterations before the trap");
        // At entry with budget 0; else at a header, that iteration's 12 charged ahead.
        let left = if budget == 0 {
            -1
        } else {
            budget - 1 - 12 * iters - 12
        };
        assert_eq!(fuel.get(&mut store).unwrap_i64(), left, "budget {budget}");
    }
}

/// A counted loop pays for every iteration on entry: a run completes with exactly its
/// cost, and with less it is out of fuel before the first iteration; a counter the step
/// does not divide never reaches 0, so that loop is out of fuel at once; a counter of 0
/// wraps round (2^32 / step iterations).
#[test]
fn counted_loops_charge_every_iteration_on_entry() {
    // Costs: entry 1; each iteration `global.get i32.const i32.add global.set` 4 and the
    // tail `local.get i32.const i32.add local.tee br_if` 5. run(k) costs 1 + 9 k / 2.
    let wasm = wat::parse_str(
        r#"(module
            (global $iters (export "iters") (mut i32) (i32.const 0))
            (func (export "run") (param $k i32)
              (loop $l
                (global.set $iters (i32.add (global.get $iters) (i32.const 1)))
                (br_if $l (local.tee $k (i32.add (local.get $k) (i32.const -2)))))))"#,
    )
    .unwrap();
    let plain = engine(EngineKind::Plain);
    let metered = meter(&wasm, &smartnodes_meter::MeterConfig::default());
    assert_eq!(metered.stats.counted_loops, 1);
    let module = wasmtime::Module::new(&plain, &metered.wasm).unwrap();
    // (argument, budget) -> (returned, iterations run, counter left)
    let run = |k: i32, budget: i64| {
        let (mut store, instance, fuel) = budgeted_instance(&plain, &module, budget);
        let f = instance.get_func(&mut store, "run").unwrap();
        let ok = f
            .call(&mut store, &[wasmtime::Val::I32(k)], &mut [])
            .is_ok();
        let iters = instance.get_global(&mut store, "iters").unwrap();
        let iters = iters.get(&mut store).unwrap_i32();
        (ok, iters, fuel.get(&mut store).unwrap_i64())
    };
    for k in [2, 10, 1000] {
        let cost = 1 + 9 * i64::from(k) / 2;
        assert_eq!(run(k, cost), (true, k / 2, 0), "k {k}: exact budget");
        assert_eq!(run(k, cost + 7), (true, k / 2, 7), "k {k}");
        let (ok, iters, _) = run(k, cost - 1);
        assert_eq!((ok, iters), (false, 0), "k {k}: out of fuel on entry");
    }
    // Odd: never reaches 0, out of fuel before the first iteration, whatever the budget.
    assert_eq!(run(7, 1 << 40), (false, 0, (1 << 40) - 1));
    // 0: 2^31 iterations, 9 * 2^31 + 1 fuel.
    let all = 1 + 9 * (1i64 << 31);
    assert_eq!(run(0, all - 1).1, 0, "out of fuel on entry");
    assert_eq!(
        run(0, all),
        (true, i32::MIN, 0),
        "2^31 iterations, exactly paid"
    );
}

/// A counted loop with a short body is emitted with four copies of the body per
/// iteration, after `k / step mod 4` single iterations (`src/func.rs`, `unroll_counted`),
/// and the pointer it advances is folded into the store's offset (`src/unroll.rs`).
/// For every remainder, for a counter of 0 (wrapping round), for a body that reads the
/// counter, for a store leaving memory part-way through the loop, and for a pointer that
/// wraps round 2^32 (where folding would leave memory, so the loop of single iterations
/// runs instead), with the store before and after the increment: the same result, memory
/// and globals as the original, and, when the run completes, wasmtime's fuel count.
#[test]
fn unrolled_counted_loops_run_the_original_iterations() {
    let fuel = engine(EngineKind::Fuel);
    let plain = engine(EngineKind::Plain);
    let mut runs = 0;
    let mut completed = 0;
    for step in [1u32, 2, 8, 1 << 29] {
        let counts: Vec<u32> = if step == 1 << 29 {
            vec![0, 1, 2, 3, 4, 5, 7]
        } else {
            (1..=13).chain([64, 1001]).collect()
        };
        for iterations in counts {
            let k0 = iterations.wrapping_mul(step);
            // From 0 everything fits; from near the end a long loop stores out of bounds;
            // from -4 the pointer wraps round to 0 at its first increment.
            for p0 in [0i32, 65536 - 4 * 6, -4] {
                for store_first in [true, false] {
                    let store = "(i32.store (local.get $p) (local.get $k))";
                    let (before, after) = if store_first {
                        (store, "")
                    } else {
                        ("", store)
                    };
                    let wat = format!(
                        r#"(module
                        (memory (export "mem") 1)
                        (global $acc (export "acc") (mut i32) (i32.const 0))
                        (func (export "run") (result i32) (local $k i32) (local $p i32)
                          (local.set $k (i32.const {k0}))
                          (local.set $p (i32.const {p0}))
                          (loop $l
                            {before}
                            (global.set $acc (i32.add (i32.mul (global.get $acc) (i32.const 31))
                                                      (local.get $k)))
                            (local.set $p (i32.add (local.get $p) (i32.const 4)))
                            {after}
                            (br_if $l (local.tee $k (i32.add (local.get $k) (i32.const -{step})))))
                          (local.get $p)))"#,
                        k0 = k0 as i32,
                    );
                    let wasm = wat::parse_str(&wat).unwrap();
                    let metered = meter(&wasm, &smartnodes_meter::MeterConfig::default());
                    assert_eq!(metered.stats.unrolled_loops, 1, "{:?}", metered.stats);
                    assert_eq!(metered.stats.folded_pointers, 1, "{:?}", metered.stats);
                    let want = run_reference(&fuel, &wasm, "run", BIG);
                    let got = run_metered(&plain, &metered, "run", BIG);
                    let label = format!(
                        "step {step}, {iterations} iterations, from {p0}, store first {store_first}"
                    );
                    assert_eq!(want.outcome, got.outcome, "{label}");
                    assert_eq!(want.state, got.state, "{label}: memory and globals");
                    if let Outcome::Returned(_) = want.outcome {
                        assert_eq!(want.fuel, got.fuel, "{label}: fuel");
                        completed += 1;
                    }
                    runs += 1;
                }
            }
        }
    }
    assert_eq!(runs, 6 * (3 * 15 + 7));
    assert!(
        completed > runs / 3,
        "only {completed} of {runs} runs completed"
    );
}

/// A bounded loop (a small count-up loop with exits, `src/fuse.rs`) runs a prepaid copy
/// without checks when the counter covers every iteration it could run, and the plain
/// fused loop otherwise (`src/func.rs`, `bounded_copy`). For both tail forms, a bound in a
/// local or a constant, steps 1, 4 and 2^28 (whose distance 0 wraps round to 16
/// iterations), exits early, late and not at all: every budget from below the cost to
/// past the prepaid copy's threshold completes exactly when it covers the cost, with
/// wasmtime's count, and runs out otherwise. A distance the step does not divide never
/// ends; a load past the end of memory traps where the original does.
#[test]
fn bounded_loops_count_exactly_at_every_budget() {
    let fuel = engine(EngineKind::Fuel);
    let plain = engine(EngineKind::Plain);
    // The loop counts `i` up by `step` to `n` and looks for a 7 at byte `i / step`
    // (`memory[at] = 7`).
    let module = |n: &str, step: u32, at: Option<u32>, swapped: bool| {
        let shift = step.trailing_zeros();
        let tail = if swapped {
            format!("(i32.ne (local.tee $i (i32.add (local.get $i) (i32.const {step}))) {n})")
        } else {
            format!("(i32.ne {n} (local.tee $i (i32.add (local.get $i) (i32.const {step}))))")
        };
        let data = at
            .map(|at| format!(r#"(data (i32.const {at}) "\07")"#))
            .unwrap_or_default();
        let wat = format!(
            r#"(module
            (memory (export "mem") 1)
            {data}
            (global $seen (export "seen") (mut i32) (i32.const 0))
            (func (export "run") (result i32) (local $i i32) (local $n i32)
              (local.set $n (i32.const 40))
              (block $found
                (loop $scan
                  (global.set $seen (i32.add (global.get $seen) (i32.const 1)))
                  (br_if $found (i32.eq
                    (i32.load8_u (i32.shr_u (local.get $i) (i32.const {shift})))
                    (i32.const 7)))
                  (br_if $scan {tail}))
                ;; Not found: skipped by the exit.
                (global.set $seen (i32.add (global.get $seen) (i32.const 1000))))
              (local.get $i)))"#
        );
        wat::parse_str(&wat).unwrap()
    };
    let mut swept = 0;
    for (n, step) in [
        ("(local.get $n)", 1),
        ("(i32.const 40)", 4),
        ("(i32.const 0)", 1 << 28),
    ] {
        for at in [0u32, 12, 36, 1000] {
            for swapped in [false, true] {
                let wasm = module(n, step, Some(at), swapped);
                let metered = meter(&wasm, &smartnodes_meter::MeterConfig::default());
                assert_eq!(metered.stats.bounded_loops, 1, "{:?}", metered.stats);
                let label = format!("bound {n}, step {step}, 7 at {at}, swapped {swapped}");
                let want = run_reference(&fuel, &wasm, "run", BIG);
                let got = run_metered(&plain, &metered, "run", BIG);
                assert!(matches!(want.outcome, Outcome::Returned(_)), "{label}");
                assert_eq!(want.outcome, got.outcome, "{label}");
                assert_eq!(want.state, got.state, "{label}: memory and globals");
                assert_eq!(want.fuel, got.fuel, "{label}: fuel");
                // Every budget near the cost, then up to well past what the prepaid copy
                // needs (at most 40 iterations of about 20) in steps (a sweep of every
                // budget there ran the emulated aarch64 test out of memory).
                let near = want.fuel.saturating_sub(30)..=want.fuel + 30;
                for budget in near.chain((want.fuel + 31..want.fuel + 1000).step_by(13)) {
                    let short = run_metered(&plain, &metered, "run", budget);
                    if budget >= want.fuel {
                        assert_eq!(short.outcome, want.outcome, "{label}, budget {budget}");
                        assert_eq!(short.fuel, want.fuel, "{label}, budget {budget}");
                        assert_eq!(short.state, want.state, "{label}, budget {budget}");
                    } else {
                        assert_eq!(
                            short.outcome,
                            Outcome::OutOfFuel,
                            "{label}, budget {budget}"
                        );
                    }
                    swept += 1;
                }
            }
        }
    }
    assert!(swept > 3_000, "{swept}");
    // A distance the step does not divide: the counter passes the bound and wraps round
    // (2^30 iterations of step 4). And 2^32 iterations that the budget does not cover: the
    // plain loop runs, and runs out long before the scan would leave memory (a prepaid copy
    // would have run on, unchecked, and trapped there instead). Both run out of fuel.
    for (n, step) in [("(i32.const 42)", 4), ("(i32.const 0)", 1)] {
        let wasm = module(n, step, None, false);
        let metered = meter(&wasm, &smartnodes_meter::MeterConfig::default());
        let want = run_reference(&fuel, &wasm, "run", 100_000);
        assert_eq!(want.outcome, Outcome::OutOfFuel, "bound {n}, step {step}");
        assert_eq!(
            run_metered(&plain, &metered, "run", 100_000).outcome,
            Outcome::OutOfFuel,
            "bound {n}, step {step}"
        );
    }
    // Past the end of memory: the same trap, the same memory and globals.
    let wasm = module("(i32.const 70000)", 1, None, false);
    let metered = meter(&wasm, &smartnodes_meter::MeterConfig::default());
    let want = run_reference(&fuel, &wasm, "run", BIG);
    let got = run_metered(&plain, &metered, "run", BIG);
    assert!(
        matches!(want.outcome, Outcome::Trap(_)),
        "{:?}",
        want.outcome
    );
    assert_eq!(want.outcome, got.outcome);
    assert_eq!(want.state, got.state);
}

/// Only functions on a cycle of the call graph count frames (`src/depth.rs`), against
/// `max_call_depth` minus the most frames non-recursive functions can add: a chain of four
/// non-recursive functions above a recursive one leaves it `max - 4` frames, so the stack
/// never holds more than `max` frames. A cycle through a table counts too.
#[test]
fn only_recursive_functions_count_depth() {
    let plain = engine(EngineKind::Plain);
    let max = 10u32;
    let cfg = smartnodes_meter::MeterConfig {
        max_call_depth: max,
        ..Default::default()
    };
    // run -> f1 -> f2 -> f3 -> rec(n): rec has n + 1 frames.
    let chain = |n: u32| {
        format!(
            r#"(module
            (func $rec (param i32)
              (if (local.get 0) (then (call $rec (i32.sub (local.get 0) (i32.const 1))))))
            (func $f3 (param i32) (call $rec (local.get 0)))
            (func $f2 (param i32) (call $f3 (local.get 0)))
            (func $f1 (param i32) (call $f2 (local.get 0)))
            (func (export "run") (call $f1 (i32.const {n}))))"#
        )
    };
    let ok = meter(&wat::parse_str(chain(max - 5)).unwrap(), &cfg);
    let run = run_metered(&plain, &ok, "run", BIG);
    assert_eq!(
        run.outcome,
        Outcome::Returned(vec![]),
        "4 + 6 = {max} frames"
    );
    let deep = meter(&wat::parse_str(chain(max - 4)).unwrap(), &cfg);
    let run = run_metered(&plain, &deep, "run", BIG);
    assert_eq!(run.outcome, Outcome::DepthExceeded, "4 + 7 frames");

    // Mutual recursion through a table: `ping` calls `pong` indirectly, `pong` calls `ping`.
    let table = |n: u32| {
        format!(
            r#"(module
            (type $t (func (param i32)))
            (table 1 funcref)
            (elem (i32.const 0) $pong)
            (func $ping (param i32)
              (if (local.get 0)
                (then (call_indirect (type $t) (i32.sub (local.get 0) (i32.const 1))
                                                (i32.const 0)))))
            (func $pong (param i32) (call $ping (local.get 0)))
            (func (export "run") (call $ping (i32.const {n}))))"#
        )
    };
    // ping(n) and pong alternate: 2n + 1 counted frames below `run` (1 uncounted).
    let ok = meter(&wat::parse_str(table(4)).unwrap(), &cfg);
    assert_eq!(
        run_metered(&plain, &ok, "run", BIG).outcome,
        Outcome::Returned(vec![])
    );
    let deep = meter(&wat::parse_str(table(5)).unwrap(), &cfg);
    assert_eq!(
        run_metered(&plain, &deep, "run", BIG).outcome,
        Outcome::DepthExceeded
    );
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
    let (mut store, instance, fuel) = budgeted_instance(&plain, &module, 10);
    let status = instance
        .get_global(&mut store, smartnodes_meter::STATUS_EXPORT)
        .unwrap();
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
    let (mut store, instance, _) = budgeted_instance(&plain, &module, 1000);
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
