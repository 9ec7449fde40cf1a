//! A tiny harness: instantiate import-free modules with wasmtime, call an export with zero
//! arguments, and report what came out — under engine fuel (the reference) or under the
//! meter's own counter.
#![allow(dead_code, unreachable_pub)]

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use smartnodes_meter::{
    budget_to_counter, classify, fuel_used, instrument, Instrumented, MeterConfig, Stop,
    DEPTH_EXPORT, FUEL_EXPORT, RESERVED_PREFIX, STATUS_EXPORT,
};
use wasmtime::{
    Config, Engine, Instance, Module, Store, StoreLimits, StoreLimitsBuilder, Trap, Val, ValType,
};

/// Which engine configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// No engine fuel, no NaN canonicalisation: what the instrumented module runs on.
    Plain,
    /// Plain, but the engine canonicalises NaNs after every float operation.
    Canon,
    /// Engine fuel (the reference for fuel counts).
    Fuel,
    /// Engine fuel and NaN canonicalisation: the reference for runs whose control flow
    /// or results depend on NaN bits.
    FuelCanon,
}

/// The engine's native stack limit in the tests: far more than the meter's depth limit
/// needs, so only the meter stops deep recursion. Tests that recurse deeply run on a
/// thread with a larger stack (`on_big_stack`).
pub const MAX_WASM_STACK: usize = 64 << 20;

/// Runs `f` on a thread whose stack is larger than `MAX_WASM_STACK` (wasm runs on the
/// calling thread's stack; a test thread has 2 MiB).
pub fn on_big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(MAX_WASM_STACK + (64 << 20))
        .spawn(f)
        .expect("spawn")
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

pub fn engine(kind: EngineKind) -> Engine {
    let mut config = Config::new();
    config.consume_fuel(matches!(kind, EngineKind::Fuel | EngineKind::FuelCanon));
    config
        .cranelift_nan_canonicalization(matches!(kind, EngineKind::Canon | EngineKind::FuelCanon));
    config.relaxed_simd_deterministic(true);
    // No backtraces (as in the runtime): capturing one for a trap thousands of frames deep
    // took ~15 s per call on a wasm-smith module.
    config.wasm_backtrace_max_frames(None);
    // wasm runs on the calling thread's stack (no async): the limit must fit in it.
    config.async_stack_size(MAX_WASM_STACK + (1 << 20));
    // Room for the meter's depth limit: the native limit must never be what stops a run.
    config.max_wasm_stack(MAX_WASM_STACK);
    small_reservations_on_aarch64(&mut config);
    Engine::new(&config).expect("engine")
}

/// Under qemu-user (scripts/cross-arch.sh) each instance's default reservation (4 GiB +
/// guard) cost the emulator ~20 MB it did not give back: the budget sweeps grew it past
/// 20 GB and the kernel's OOM killer stopped the test. Memory is capped at 16 MiB
/// (`limits`), so on aarch64 reserve that: bounds checks become explicit, which changes no
/// result.
pub fn small_reservations_on_aarch64(config: &mut Config) {
    if cfg!(target_arch = "aarch64") {
        config
            .memory_reservation(16 << 20)
            .memory_guard_size(64 << 10);
    }
}

/// Linear memory is capped at 16 MiB: a wasm-smith module that grows its memory to 4 GiB
/// otherwise spends seconds in the harness hashing it.
fn limits() -> StoreLimits {
    StoreLimitsBuilder::new().memory_size(16 << 20).build()
}

/// A value, comparable bit for bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum V {
    I32(i32),
    I64(i64),
    F32(u32),
    F64(u64),
    V128(u128),
    Ref(bool),
}

impl V {
    pub fn of(v: &Val) -> V {
        match v {
            Val::I32(x) => V::I32(*x),
            Val::I64(x) => V::I64(*x),
            Val::F32(x) => V::F32(*x),
            Val::F64(x) => V::F64(*x),
            Val::V128(x) => V::V128(x.as_u128()),
            Val::FuncRef(f) => V::Ref(f.is_some()),
            Val::ExternRef(r) => V::Ref(r.is_some()),
            other => panic!("unexpected value {other:?}"),
        }
    }
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Returned(Vec<V>),
    /// A guest trap, with wasmtime's trap code.
    Trap(String),
    OutOfFuel,
    /// The meter's depth limit.
    DepthExceeded,
    /// The engine's native stack limit (only the uninstrumented module can hit it).
    StackOverflow,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub outcome: Outcome,
    pub fuel: u64,
    /// Hash of every exported memory's bytes and every exported global's value.
    pub state: u64,
    /// The exported memories (for NaN-bit assertions).
    pub memory: Vec<u8>,
}

fn trap_outcome(err: &wasmtime::Error) -> Outcome {
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Outcome::OutOfFuel,
        Some(Trap::StackOverflow) => Outcome::StackOverflow,
        Some(t) => Outcome::Trap(format!("{t:?}")),
        None => Outcome::Trap(format!("host error: {err}")),
    }
}

pub fn zero_args(ty: &wasmtime::FuncType) -> Vec<Val> {
    ty.params()
        .map(|t| match t {
            ValType::I32 => Val::I32(0),
            ValType::I64 => Val::I64(0),
            ValType::F32 => Val::F32(0),
            ValType::F64 => Val::F64(0),
            ValType::V128 => Val::V128(0u128.into()),
            ValType::Ref(r) => Val::null_ref(r.heap_type()),
        })
        .collect()
}

fn snapshot(store: &mut Store<StoreLimits>, instance: &Instance) -> (u64, Vec<u8>) {
    let mut h = DefaultHasher::new();
    let mut memory = Vec::new();
    let exports: Vec<_> = instance
        .exports(&mut *store)
        .map(|e| (e.name().to_string(), e.into_extern()))
        .collect();
    for (name, ext) in exports {
        if name.starts_with(RESERVED_PREFIX) {
            continue;
        }
        name.hash(&mut h);
        match ext {
            wasmtime::Extern::Memory(m) => {
                let data = m.data(&*store);
                data.hash(&mut h);
                memory.extend_from_slice(data);
            }
            wasmtime::Extern::Global(g) => V::of(&g.get(&mut *store)).hash(&mut h),
            wasmtime::Extern::Table(t) => t.size(&*store).hash(&mut h),
            _ => {}
        }
    }
    (h.finish(), memory)
}

/// Runs `func` of the uninstrumented module on an engine with engine fuel (`Fuel`) or none.
pub fn run_reference(engine: &Engine, wasm: &[u8], func: &str, budget: u64) -> Run {
    let (engine, wasm, func) = (engine.clone(), wasm.to_vec(), func.to_string());
    on_big_stack(move || run_reference_here(&engine, &wasm, &func, budget))
}

fn run_reference_here(engine: &Engine, wasm: &[u8], func: &str, budget: u64) -> Run {
    let module = Module::new(engine, wasm).expect("compile");
    let mut store = Store::new(engine, limits());
    store.limiter(|l| l);
    let fueled = engine.config_consumes_fuel();
    if fueled {
        // Instantiation itself can cost engine fuel (wasmtime charges element segment
        // initialisation and the start function): give it a budget of its own, so that only
        // the call is measured.
        store.set_fuel(budget).unwrap();
    }
    let outcome = match Instance::new(&mut store, &module, &[]) {
        Err(err) => trap_outcome(&err),
        Ok(instance) => {
            if fueled {
                store.set_fuel(budget).unwrap();
            }
            let f = instance.get_func(&mut store, func).expect("export");
            let ty = f.ty(&store);
            let args = zero_args(&ty);
            let mut results = vec![Val::I32(0); ty.results().len()];
            let outcome = match f.call(&mut store, &args, &mut results) {
                Ok(()) => Outcome::Returned(results.iter().map(V::of).collect()),
                Err(err) => trap_outcome(&err),
            };
            let fuel = if fueled {
                budget - store.get_fuel().unwrap()
            } else {
                0
            };
            let (state, memory) = snapshot(&mut store, &instance);
            return Run {
                outcome,
                fuel,
                state,
                memory,
            };
        }
    };
    Run {
        outcome,
        fuel: 0,
        state: 0,
        memory: Vec::new(),
    }
}

trait ConsumesFuel {
    fn config_consumes_fuel(&self) -> bool;
}

impl ConsumesFuel for Engine {
    fn config_consumes_fuel(&self) -> bool {
        // An engine without fuel refuses `set_fuel`.
        let mut store = Store::new(self, ());
        store.set_fuel(1).is_ok()
    }
}

/// Runs `func` of an instrumented module with the meter's counter.
pub fn run_metered(engine: &Engine, inst: &Instrumented, func: &str, budget: u64) -> Run {
    let (engine, inst, func) = (engine.clone(), inst.clone(), func.to_string());
    on_big_stack(move || run_metered_here(&engine, &inst, &func, budget))
}

/// A fresh instance of a rewritten module with `budget` in its counter, and the counter
/// global: for tests that look inside a run (the status, the counter, guest globals).
pub fn budgeted_instance(
    engine: &Engine,
    module: &Module,
    budget: i64,
) -> (Store<()>, Instance, wasmtime::Global) {
    let mut store = Store::new(engine, ());
    let instance = Instance::new(&mut store, module, &[]).expect("instantiate");
    let fuel = instance
        .get_global(&mut store, FUEL_EXPORT)
        .expect("the counter");
    fuel.set(&mut store, Val::I64(budget))
        .expect("set the budget");
    (store, instance, fuel)
}

/// Compiles `wasm` for `engine`, reusing the last few compilations: the budget sweeps run
/// the same module hundreds of times (and under qemu every compiled module's code stays
/// mapped, so compiling each run again grew the emulator past 20 GB). Only a few are kept:
/// a fuzz run keeping every module ran out of memory mappings.
fn compiled(engine: &Engine, wasm: &[u8]) -> Module {
    use std::sync::Mutex;
    const KEEP: usize = 16;
    static CACHE: Mutex<Vec<(Engine, Vec<u8>, Module)>> = Mutex::new(Vec::new());
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(k) = cache
        .iter()
        .position(|(e, w, _)| w.as_slice() == wasm && Engine::same(e, engine))
    {
        let hit = cache.remove(k);
        let module = hit.2.clone();
        cache.push(hit);
        return module;
    }
    let module = Module::new(engine, wasm).expect("compile instrumented");
    if cache.len() == KEEP {
        cache.remove(0);
    }
    cache.push((engine.clone(), wasm.to_vec(), module.clone()));
    module
}

fn run_metered_here(engine: &Engine, inst: &Instrumented, func: &str, budget: u64) -> Run {
    let module = compiled(engine, &inst.wasm);
    let mut store = Store::new(engine, limits());
    store.limiter(|l| l);
    let instance = match Instance::new(&mut store, &module, &[]) {
        Ok(i) => i,
        Err(err) => {
            return Run {
                outcome: trap_outcome(&err),
                fuel: 0,
                state: 0,
                memory: Vec::new(),
            }
        }
    };
    let fuel_g = instance.get_global(&mut store, FUEL_EXPORT).expect("fuel");
    let status_g = instance
        .get_global(&mut store, STATUS_EXPORT)
        .expect("status");
    let depth_g = instance
        .get_global(&mut store, DEPTH_EXPORT)
        .expect("depth");
    fuel_g
        .set(&mut store, Val::I64(budget_to_counter(budget)))
        .unwrap();

    let call = |store: &mut Store<StoreLimits>, name: &str| -> Result<Vec<V>, wasmtime::Error> {
        let f = instance.get_func(&mut *store, name).expect("export");
        let ty = f.ty(&*store);
        let args = zero_args(&ty);
        let mut results = vec![Val::I32(0); ty.results().len()];
        f.call(&mut *store, &args, &mut results)?;
        Ok(results.iter().map(V::of).collect())
    };
    let mut result = Ok(Vec::new());
    if let Some(start) = inst.start {
        // Like `run_reference`: the start function gets its own budget, only the call is
        // measured.
        fuel_g
            .set(&mut store, Val::I64(budget_to_counter(budget)))
            .unwrap();
        result = call(&mut store, start).map(|_| Vec::new());
        fuel_g
            .set(&mut store, Val::I64(budget_to_counter(budget)))
            .unwrap();
    }
    if result.is_ok() {
        result = call(&mut store, func);
    }
    let remaining = fuel_g.get(&mut store).unwrap_i64();
    let status = status_g.get(&mut store).unwrap_i32();
    let stop = classify(result.is_err(), remaining, status);
    let fuel = fuel_used(budget, remaining, stop);
    let outcome = match (stop, result) {
        (Stop::Completed, Ok(values)) => Outcome::Returned(values),
        (Stop::OutOfFuel, _) => Outcome::OutOfFuel,
        (Stop::DepthExceeded, _) => Outcome::DepthExceeded,
        (Stop::GuestTrap, Err(err)) => trap_outcome(&err),
        (stop, result) => panic!("inconsistent {stop:?} / {result:?}"),
    };
    if outcome != Outcome::DepthExceeded && !matches!(outcome, Outcome::Trap(_)) {
        // Every frame that was entered was left (or the run is over anyway).
        let depth = depth_g.get(&mut store).unwrap_i32();
        if matches!(outcome, Outcome::Returned(_)) {
            assert_eq!(depth, 0, "depth counter not balanced");
        }
    }
    let (state, memory) = snapshot(&mut store, &instance);
    Run {
        outcome,
        fuel,
        state,
        memory,
    }
}

/// Instruments with the given config, panicking on error.
pub fn meter(wasm: &[u8], cfg: &MeterConfig) -> Instrumented {
    instrument(wasm, cfg).unwrap_or_else(|e| panic!("instrument: {e}"))
}

/// Exported function names of a module, in export order.
pub fn exported_funcs(engine: &Engine, wasm: &[u8]) -> Vec<String> {
    let module = Module::new(engine, wasm).expect("compile");
    module
        .exports()
        .filter(|e| e.ty().func().is_some())
        .map(|e| e.name().to_string())
        .collect()
}

/// Config without NaN canonicalisation: the rewrite then changes nothing but metering, so
/// results must be bit-identical to the original's.
pub fn no_nan() -> MeterConfig {
    MeterConfig {
        nan: smartnodes_meter::NanMode::Off,
        ..MeterConfig::default()
    }
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    wat::parse_file(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub const FIXTURES: &[&str] = &[
    "control.wat",
    "calls.wat",
    "floats.wat",
    "memory.wat",
    "kernels.wat",
    "fused.wat",
    "copy.wat",
];
