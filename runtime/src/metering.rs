//! Every interaction with fuel, in one place, so that a different metering (see
//! [`Metering`]) changes this file and nothing else.
//!
//! Two meterings:
//! - [`Metering::Wasmtime`]: the engine's fuel and Cranelift's NaN canonicalisation after
//!   every float operation;
//! - [`Metering::Instrumented`]: the module is rewritten by `smartnodes-meter` before
//!   compilation and counts its own fuel (same cost model), bounds its call depth and
//!   canonicalises NaNs where their bits are observable; the engine runs it with fuel,
//!   epochs and NaN canonicalisation off, so float loops keep their registers (no call on
//!   the slow path of a check). The remaining fuel is an exported global
//!   ([`smartnodes_meter::FUEL_EXPORT`]) that the host sets and reads; the start function
//!   is called on entry to `_start`, so its fuel and traps are the task's.
//!
//! Rules that hold for every metering:
//! - the budget is set *after* instantiation, so fuel spent initialising memory (which
//!   differs with copy-on-write initialisation, wasmtime#14331) is never counted;
//! - `fuel_used` is exact when the task ended through the host (returned, `proc_exit`,
//!   output too large) and equal to the whole budget when it ended by a trap in wasm code,
//!   because the engine does not keep an exact count across a trap (wasmtime#13802);
//! - a task completes only if everything it consumed fits in the budget. The engine checks
//!   fuel only at function entries and loop headers, so a task can run a little past its
//!   budget before a check sees it; the engine is therefore given `budget + SLACK`, and a
//!   task that ends through the host having used more than `budget` is out of fuel. The
//!   verdict is then exact whatever the check placement.

use crate::config::Metering;
use crate::sandbox::State;
use smartnodes_meter::{MeterConfig, NanForm, NanMode, StartMode, Stop};
use wasmtime::{Caller, Instance, Store, Val};

/// Fuel given to the engine beyond the budget, so that an overshoot between two checks
/// is measured rather than hidden (see the module docs).
const SLACK: u64 = 1 << 20;

/// The deepest call stack an instrumented task may build, in wasm frames. Deterministic,
/// unlike the engine's native limit (`MAX_WASM_STACK`): 2000 frames fit in 512 KiB when a
/// frame averages up to 256 bytes; a task with bigger frames can still hit the native
/// limit first, which stays a non-reproducible `StackOverflow`.
pub(crate) const MAX_CALL_DEPTH: u32 = 2000;

/// The rewrite's configuration (part of the fingerprint through [`describe`]).
fn meter_config() -> MeterConfig {
    MeterConfig {
        max_call_depth: MAX_CALL_DEPTH,
        nan: NanMode::ObservationPoints,
        nan_form: NanForm::Simd,
        start: StartMode::CallFrom("_start".into()),
        interrupt: true,
    }
}

/// The metering's part of the engine fingerprint.
pub(crate) fn describe(metering: Metering) -> String {
    match metering {
        Metering::Wasmtime => "wasmtime-fuel+cranelift-nan-canonicalization".into(),
        Metering::Instrumented => format!("in-wasm({})", meter_config().fingerprint()),
    }
}

/// Engine settings for the metering.
pub(crate) fn configure(config: &mut wasmtime::Config, metering: Metering) {
    match metering {
        Metering::Wasmtime => {
            config.consume_fuel(true);
        }
        Metering::Instrumented => {
            // The module meters itself; NaNs are canonicalised by the rewrite where they
            // can be observed. No epochs either: an epoch check has the same slow-path call
            // as a fuel check. The wall-clock backstop is the meter's interrupt byte, in a
            // memory of the meter's own (hence multi-memory; the rewrite refuses guests
            // with more than one memory): `crate::backstop`.
            config
                .consume_fuel(false)
                .cranelift_nan_canonicalization(false)
                .epoch_interruption(false)
                .wasm_multi_memory(true);
        }
    }
}

/// Rewrites a module before compilation, if the metering needs it. `Err` is a reason the
/// module is invalid for this metering.
pub(crate) fn prepare(
    wasm: &[u8],
    metering: Metering,
) -> Result<std::borrow::Cow<'_, [u8]>, String> {
    match metering {
        Metering::Wasmtime => Ok(std::borrow::Cow::Borrowed(wasm)),
        Metering::Instrumented => smartnodes_meter::instrument(wasm, &meter_config())
            .map(|m| std::borrow::Cow::Owned(m.wasm))
            .map_err(|e| e.to_string()),
    }
}

/// Fuel to let a start function (run during instantiation) use at most.
pub(crate) fn before_instantiate(store: &mut Store<State>, budget: u64) -> wasmtime::Result<()> {
    match store.data().metering {
        Metering::Wasmtime => store.set_fuel(budget.saturating_add(SLACK)),
        // The rewrite moved the start function into `_start`: nothing runs here.
        Metering::Instrumented => Ok(()),
    }
}

/// Sets the task's budget, after instantiation and before `_start`.
pub(crate) fn set_budget(
    store: &mut Store<State>,
    instance: &Instance,
    budget: u64,
) -> wasmtime::Result<()> {
    match store.data().metering {
        Metering::Wasmtime => store.set_fuel(budget.saturating_add(SLACK)),
        Metering::Instrumented => {
            // The counter holds at most a slice, the bank the rest: the task then consults
            // its interrupt byte at least once a slice (`crate::backstop`).
            let total = smartnodes_meter::budget_to_counter(budget);
            let counter = total.min(smartnodes_meter::INTERRUPT_SLICE);
            meter_global(store, instance, smartnodes_meter::FUEL_EXPORT)?
                .set(&mut *store, Val::I64(counter))?;
            meter_global(store, instance, smartnodes_meter::BANK_EXPORT)?
                .set(&mut *store, Val::I64(total - counter))?;
            meter_global(store, instance, smartnodes_meter::STATUS_EXPORT)?
                .set(&mut *store, Val::I32(0))?;
            meter_global(store, instance, smartnodes_meter::DEPTH_EXPORT)?
                .set(&mut *store, Val::I32(0))
        }
    }
}

/// One of the globals the rewrite exports.
fn meter_global(
    store: &mut Store<State>,
    instance: &Instance,
    name: &str,
) -> wasmtime::Result<wasmtime::Global> {
    instance
        .get_global(&mut *store, name)
        .ok_or_else(|| wasmtime::Error::msg(format!("the instrumented module lacks {name}")))
}

/// The instrumented module's remaining fuel (counter + bank) and status.
fn meter_state(store: &mut Store<State>, instance: &Instance) -> Option<(i64, i32)> {
    let fuel = instance.get_global(&mut *store, smartnodes_meter::FUEL_EXPORT)?;
    let bank = instance.get_global(&mut *store, smartnodes_meter::BANK_EXPORT)?;
    let status = instance.get_global(&mut *store, smartnodes_meter::STATUS_EXPORT)?;
    let fuel = fuel.get(&mut *store).i64()?;
    let bank = bank.get(&mut *store).i64()?;
    let status = status.get(&mut *store).i32()?;
    Some((fuel.saturating_add(bank), status))
}

/// The byte that interrupts an instrumented task (`crate::backstop`); `None` for the
/// wasmtime metering, whose backstop is the epoch.
pub(crate) fn interrupt_flag(store: &mut Store<State>, instance: &Instance) -> Option<*mut u8> {
    match store.data().metering {
        Metering::Wasmtime => None,
        Metering::Instrumented => instance
            .get_memory(&mut *store, smartnodes_meter::INTERRUPT_EXPORT)
            .map(|m| m.data_ptr(&*store)),
    }
}

/// Whether the backstop stopped the task (a host error, never a verdict).
pub(crate) fn is_interrupted(store: &mut Store<State>, instance: Option<&Instance>) -> bool {
    match store.data().metering {
        Metering::Wasmtime => false,
        Metering::Instrumented => match instance.and_then(|i| meter_state(store, i)) {
            Some((remaining, status)) => {
                smartnodes_meter::classify(true, remaining, status) == Stop::Interrupted
            }
            None => false,
        },
    }
}

/// Fuel used from the budget and the remaining counter (which goes negative when the task
/// overdraws; then the result exceeds the budget).
fn used_from_counter(budget: u64, remaining: i64) -> u64 {
    if remaining >= 0 {
        budget.saturating_sub(remaining.unsigned_abs())
    } else {
        budget.saturating_add(remaining.unsigned_abs())
    }
}

/// Fuel used so far, read after `_start` returned or ended through a host call. May exceed
/// the budget (then the task is out of fuel).
pub(crate) fn fuel_used(store: &mut Store<State>, instance: &Instance, budget: u64) -> u64 {
    match store.data().metering {
        Metering::Instrumented => match meter_state(store, instance) {
            Some((remaining, _)) => used_from_counter(budget, remaining),
            None => budget.saturating_add(1),
        },
        Metering::Wasmtime => budget
            .saturating_add(SLACK)
            .saturating_sub(store.get_fuel().unwrap_or(0)),
    }
}

/// Fuel used so far, read from inside a host call (exact there for every metering).
pub(crate) fn fuel_used_in_host(caller: &mut Caller<'_, State>) -> u64 {
    let budget = caller.data().budget;
    match caller.data().metering {
        // The rewrite writes the counter back before every call out of the module.
        Metering::Instrumented => {
            let mut read = |name: &str| {
                caller
                    .get_export(name)
                    .and_then(|e| e.into_global())
                    .and_then(|g| g.get(&mut *caller).i64())
                    .unwrap_or(0)
            };
            let remaining = read(smartnodes_meter::FUEL_EXPORT)
                .saturating_add(read(smartnodes_meter::BANK_EXPORT));
            used_from_counter(budget, remaining)
        }
        Metering::Wasmtime => budget
            .saturating_add(SLACK)
            .saturating_sub(caller.get_fuel().unwrap_or(0)),
    }
}

/// Whether a trap means the budget ran out.
pub(crate) fn is_out_of_fuel(
    store: &mut Store<State>,
    instance: Option<&Instance>,
    trap: Option<wasmtime::Trap>,
) -> bool {
    match store.data().metering {
        Metering::Wasmtime => trap == Some(wasmtime::Trap::OutOfFuel),
        // A metering trap is an `unreachable` with the status global set; any trap with a
        // negative counter (charged past the budget) is out of fuel too.
        Metering::Instrumented => match instance.and_then(|i| meter_state(store, i)) {
            Some((remaining, status)) => {
                smartnodes_meter::classify(true, remaining, status) == Stop::OutOfFuel
            }
            None => false,
        },
    }
}

/// Whether a trap is the rewrite's call-depth limit (deterministic, unlike the engine's
/// native stack overflow).
pub(crate) fn is_depth_exceeded(store: &mut Store<State>, instance: Option<&Instance>) -> bool {
    match store.data().metering {
        Metering::Wasmtime => false,
        Metering::Instrumented => match instance.and_then(|i| meter_state(store, i)) {
            Some((remaining, status)) => {
                smartnodes_meter::classify(true, remaining, status) == Stop::DepthExceeded
            }
            None => false,
        },
    }
}
