//! Arbitrary valid modules (wasm-smith), run with engine fuel and rewritten with the meter
//! (NaN canonicalisation off): when both complete, the results, the exported memories and
//! globals, and the fuel counts must be equal; a guest trap must be the same trap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smartnodes_meter::{budget_to_counter, classify, fuel_used, MeterConfig, NanMode, Stop};
use wasmtime::{Config, Engine, Instance, Module, Store, Trap, Val, ValType};

const BUDGET: u64 = 100_000;

#[derive(Debug, PartialEq)]
enum End {
    Returned(Vec<u128>, Vec<u8>, u64),
    Trap(String),
    Stopped,
}

fn engine(fuel: bool) -> Engine {
    let mut c = Config::new();
    c.consume_fuel(fuel).max_wasm_stack(256 << 10);
    Engine::new(&c).unwrap()
}

fn bits(v: &Val) -> u128 {
    match v {
        Val::I32(x) => *x as u32 as u128,
        Val::I64(x) => *x as u64 as u128,
        Val::F32(x) => *x as u128,
        Val::F64(x) => *x as u128,
        Val::V128(x) => x.as_u128(),
        _ => 0,
    }
}

fn args(ty: &wasmtime::FuncType) -> Option<Vec<Val>> {
    ty.params()
        .map(|t| match t {
            ValType::I32 => Some(Val::I32(0)),
            ValType::I64 => Some(Val::I64(0)),
            ValType::F32 => Some(Val::F32(0)),
            ValType::F64 => Some(Val::F64(0)),
            ValType::V128 => Some(Val::V128(0u128.into())),
            ValType::Ref(_) => None,
        })
        .collect()
}

fn memories(store: &mut Store<()>, instance: &Instance) -> Vec<u8> {
    let mems: Vec<_> = instance
        .exports(&mut *store)
        .filter_map(|e| e.into_memory())
        .collect();
    mems.iter().flat_map(|m| m.data(&*store).to_vec()).collect()
}

fn run(engine: &Engine, wasm: &[u8], func: &str, metered: bool) -> End {
    let Ok(module) = Module::new(engine, wasm) else {
        return End::Stopped;
    };
    let mut store = Store::new(engine, ());
    if !metered {
        store.set_fuel(BUDGET).unwrap();
    }
    let Ok(instance) = Instance::new(&mut store, &module, &[]) else {
        return End::Stopped;
    };
    let g = |store: &mut Store<()>, name| instance.get_global(store, name).unwrap();
    if metered {
        let fuel = g(&mut store, smartnodes_meter::FUEL_EXPORT);
        fuel.set(&mut store, Val::I64(budget_to_counter(BUDGET)))
            .unwrap();
        if let Some(start) = instance.get_func(&mut store, smartnodes_meter::START_EXPORT) {
            if start.call(&mut store, &[], &mut []).is_err() {
                return End::Stopped;
            }
            fuel.set(&mut store, Val::I64(budget_to_counter(BUDGET)))
                .unwrap();
        }
    } else {
        store.set_fuel(BUDGET).unwrap();
    }
    let f = instance.get_func(&mut store, func).unwrap();
    let ty = f.ty(&store);
    let Some(params) = args(&ty) else {
        return End::Stopped;
    };
    let mut results = vec![Val::I32(0); ty.results().len()];
    let r = f.call(&mut store, &params, &mut results);
    let (stop, fuel) = if metered {
        let remaining = g(&mut store, smartnodes_meter::FUEL_EXPORT)
            .get(&mut store)
            .unwrap_i64();
        let status = g(&mut store, smartnodes_meter::STATUS_EXPORT)
            .get(&mut store)
            .unwrap_i32();
        let stop = classify(r.is_err(), remaining, status);
        (stop, fuel_used(BUDGET, remaining, stop))
    } else {
        let stop = match &r {
            Ok(()) => Stop::Completed,
            Err(e) => match e.downcast_ref::<Trap>() {
                Some(Trap::OutOfFuel | Trap::StackOverflow) => Stop::OutOfFuel,
                _ => Stop::GuestTrap,
            },
        };
        (stop, BUDGET - store.get_fuel().unwrap())
    };
    match stop {
        Stop::Completed => {
            let mem = memories(&mut store, &instance);
            End::Returned(results.iter().map(bits).collect(), mem, fuel)
        }
        Stop::GuestTrap => match r.unwrap_err().downcast_ref::<Trap>() {
            Some(Trap::StackOverflow) => End::Stopped,
            Some(t) => End::Trap(format!("{t:?}")),
            None => End::Stopped,
        },
        Stop::OutOfFuel | Stop::DepthExceeded => End::Stopped,
    }
}

fuzz_target!(|module: wasm_smith::Module| {
    let wasm = module.to_bytes();
    let (fueled, plain) = (engine(true), engine(false));
    if Module::validate(&fueled, &wasm).is_err() {
        return;
    }
    let cfg = MeterConfig {
        nan: NanMode::Off,
        ..MeterConfig::default()
    };
    let Ok(metered) = smartnodes_meter::instrument(&wasm, &cfg) else {
        return;
    };
    let module = Module::new(&plain, &wasm).unwrap();
    let funcs: Vec<String> = module
        .exports()
        .filter(|e| e.ty().func().is_some())
        .map(|e| e.name().to_string())
        .collect();
    for func in funcs {
        let want = run(&fueled, &wasm, &func, false);
        let got = run(&plain, &metered.wasm, &func, true);
        match (&want, &got) {
            (End::Returned(..), End::Returned(..)) | (End::Trap(_), End::Trap(_)) => {
                assert_eq!(want, got, "{func}")
            }
            _ => {}
        }
    }
});
