//! `MeterConfig::interrupt`: the budget split between the counter and the bank changes no
//! verdict, count or state, wherever the split falls (every check's slow path refills), and
//! the interrupt byte stops a task that would otherwise run on.

mod common;

use common::{exported_funcs, fixture, meter, on_big_stack, run_metered, Outcome, FIXTURES};
use smartnodes_meter::{
    classify, fuel_used, MeterConfig, Stop, BANK_EXPORT, FUEL_EXPORT, INTERRUPT_EXPORT,
    START_EXPORT, STATUS_EXPORT,
};
use wasmtime::{Config, Engine, Instance, Module, Store, Val};

fn engine() -> Engine {
    let mut c = Config::new();
    c.relaxed_simd_deterministic(true)
        .wasm_multi_memory(true)
        .wasm_backtrace_max_frames(None)
        .async_stack_size(common::MAX_WASM_STACK + (1 << 20))
        .max_wasm_stack(common::MAX_WASM_STACK);
    common::small_reservations_on_aarch64(&mut c);
    Engine::new(&c).expect("engine")
}

fn with_interrupt() -> MeterConfig {
    MeterConfig {
        interrupt: true,
        ..MeterConfig::default()
    }
}

/// Runs `func` with `counter` in the counter and `budget - counter` in the bank.
fn run_split(module: &Module, func: &str, budget: u64, counter: u64) -> (Outcome, u64) {
    let (module, func) = (module.clone(), func.to_string());
    on_big_stack(move || {
        let mut store = Store::new(module.engine(), ());
        let instance = Instance::new(&mut store, &module, &[]).expect("instantiate");
        let global = |store: &mut Store<()>, name| instance.get_global(&mut *store, name).unwrap();
        let (fuel, bank, status) = (
            global(&mut store, FUEL_EXPORT),
            global(&mut store, BANK_EXPORT),
            global(&mut store, STATUS_EXPORT),
        );
        let counter = counter.min(budget);
        let fill = |store: &mut Store<()>| {
            fuel.set(&mut *store, Val::I64(counter as i64)).unwrap();
            bank.set(&mut *store, Val::I64((budget - counter) as i64))
                .unwrap();
        };
        fill(&mut store);
        let call = |store: &mut Store<()>, name: &str, results: &mut Vec<Val>| {
            let f = instance.get_func(&mut *store, name).expect("export");
            let ty = f.ty(&*store);
            *results = vec![Val::I32(0); ty.results().len()];
            f.call(&mut *store, &common::zero_args(&ty), results)
        };
        let mut results = Vec::new();
        let mut result = Ok(());
        // As `run_metered`: a start function gets a budget of its own.
        if instance.get_func(&mut store, START_EXPORT).is_some() {
            result = call(&mut store, START_EXPORT, &mut results);
            fill(&mut store);
        }
        if result.is_ok() {
            result = call(&mut store, &func, &mut results);
        }
        let remaining = fuel.get(&mut store).unwrap_i64() + bank.get(&mut store).unwrap_i64();
        let stop = classify(
            result.is_err(),
            remaining,
            status.get(&mut store).unwrap_i32(),
        );
        let outcome = match (stop, result) {
            (Stop::Completed, Ok(())) => {
                Outcome::Returned(results.iter().map(common::V::of).collect())
            }
            (Stop::OutOfFuel, _) => Outcome::OutOfFuel,
            (Stop::DepthExceeded, _) => Outcome::DepthExceeded,
            (Stop::GuestTrap, Err(e)) => Outcome::Trap(format!(
                "{:?}",
                e.downcast_ref::<wasmtime::Trap>().expect("a trap")
            )),
            (stop, r) => panic!("inconsistent {stop:?} / {r:?}"),
        };
        (outcome, fuel_used(budget, remaining, stop))
    })
}

/// Every export of every fixture, with the split at many points: the outcome and count of
/// the plain rewrite, exactly.
#[test]
fn any_split_of_the_budget_gives_the_same_result() {
    let plain_engine = common::engine(common::EngineKind::Plain);
    let engine = engine();
    let mut compared = 0;
    for name in FIXTURES {
        let wasm = fixture(name);
        let plain = meter(&wasm, &MeterConfig::default());
        // (copy.wat has two memories: refused with the interrupt memory, tested below.)
        let Ok(split) = smartnodes_meter::instrument(&wasm, &with_interrupt()) else {
            continue;
        };
        let split = Module::new(&engine, split.wasm).expect("compile");
        for func in exported_funcs(&plain_engine, &wasm) {
            let budget = 2_000_000;
            let want = run_metered(&plain_engine, &plain, &func, budget);
            for counter in [0, 1, 2, 3, 5, 8, 13, 40, 100, 1_000, 50_000, budget] {
                let (outcome, fuel) = run_split(&split, &func, budget, counter);
                assert_eq!(outcome, want.outcome, "{name} {func} split at {counter}");
                if matches!(outcome, Outcome::Returned(_)) {
                    assert_eq!(fuel, want.fuel, "{name} {func} split at {counter}");
                }
                compared += 1;
            }
            // Exactly at the cost, and one short, with the cost split.
            if matches!(want.outcome, Outcome::Returned(_)) && want.fuel > 1 {
                let (outcome, fuel) = run_split(&split, &func, want.fuel, want.fuel / 2);
                assert_eq!(
                    (outcome, fuel),
                    (want.outcome.clone(), want.fuel),
                    "{name} {func}"
                );
                let (outcome, _) = run_split(&split, &func, want.fuel - 1, want.fuel / 2);
                assert_eq!(outcome, Outcome::OutOfFuel, "{name} {func} one short");
            }
        }
    }
    assert!(compared > 500, "{compared}");
}

/// The interrupt byte, set from another thread, stops an endless loop at its next refill.
#[test]
fn the_interrupt_byte_stops_a_running_task() {
    let wasm = wat::parse_str(
        r#"(module (func (export "spin") (loop $l (br $l))) (memory (export "m") 1))"#,
    )
    .unwrap();
    let engine = engine();
    let module = Module::new(&engine, meter(&wasm, &with_interrupt()).wasm).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let slice = smartnodes_meter::INTERRUPT_SLICE;
    instance
        .get_global(&mut store, FUEL_EXPORT)
        .unwrap()
        .set(&mut store, Val::I64(slice))
        .unwrap();
    instance
        .get_global(&mut store, BANK_EXPORT)
        .unwrap()
        .set(&mut store, Val::I64(i64::MAX - slice))
        .unwrap();
    let flag = instance
        .get_memory(&mut store, INTERRUPT_EXPORT)
        .unwrap()
        .data_ptr(&store) as usize;
    #[allow(unsafe_code)]
    let setter = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        // SAFETY: the store (and its memory) outlives this thread, joined below.
        unsafe {
            (*(flag as *const std::sync::atomic::AtomicU8))
                .store(1, std::sync::atomic::Ordering::Relaxed)
        };
    });
    let started = std::time::Instant::now();
    let f = instance
        .get_typed_func::<(), ()>(&mut store, "spin")
        .unwrap();
    assert!(f.call(&mut store, ()).is_err());
    setter.join().unwrap();
    let status = instance
        .get_global(&mut store, STATUS_EXPORT)
        .unwrap()
        .get(&mut store)
        .unwrap_i32();
    assert_eq!(status, smartnodes_meter::Status::Interrupted as i32);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

/// A guest with a memory of its own keeps index 0; one with two memories is refused.
#[test]
fn the_interrupt_memory_comes_after_the_guests() {
    let one = wat::parse_str(r#"(module (memory (export "m") 1) (func (export "f") (result i32) (i32.load (i32.const 0))))"#).unwrap();
    let out = meter(&one, &with_interrupt());
    let module = Module::new(&engine(), &out.wasm).unwrap();
    assert!(module.get_export("m").unwrap().memory().is_some());
    assert!(module
        .get_export(INTERRUPT_EXPORT)
        .unwrap()
        .memory()
        .is_some());
    let two = wat::parse_str(r#"(module (memory 1) (memory 1))"#).unwrap();
    assert!(smartnodes_meter::instrument(&two, &with_interrupt()).is_err());
    // Without the option, nothing is added.
    let plain = meter(&one, &MeterConfig::default());
    let module = Module::new(&engine(), &plain.wasm).unwrap();
    assert!(module.get_export(INTERRUPT_EXPORT).is_none());
}
