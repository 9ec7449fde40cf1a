//! Every interaction with fuel, in one place, so that a different metering (see
//! [`Metering`]) changes this file and nothing else.
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
use wasmtime::{Caller, Instance, Store};

/// Fuel given to the engine beyond the budget, so that an overshoot between two checks
/// is measured rather than hidden (see the module docs).
const SLACK: u64 = 1 << 20;

/// Engine settings for the metering.
pub(crate) fn configure(config: &mut wasmtime::Config, metering: Metering) {
    match metering {
        Metering::Wasmtime => {
            config.consume_fuel(true);
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
    }
}

/// Fuel to let a start function (run during instantiation) use at most.
pub(crate) fn before_instantiate(store: &mut Store<State>, budget: u64) -> wasmtime::Result<()> {
    match store.data().metering {
        Metering::Wasmtime => store.set_fuel(budget.saturating_add(SLACK)),
    }
}

/// Sets the task's budget, after instantiation and before `_start`.
pub(crate) fn set_budget(
    store: &mut Store<State>,
    _instance: &Instance,
    budget: u64,
) -> wasmtime::Result<()> {
    match store.data().metering {
        Metering::Wasmtime => store.set_fuel(budget),
    }
}

/// Fuel used so far, read after `_start` returned or ended through a host call. May exceed
/// the budget (then the task is out of fuel).
pub(crate) fn fuel_used(store: &mut Store<State>, _instance: &Instance, budget: u64) -> u64 {
    match store.data().metering {
        Metering::Wasmtime => budget
            .saturating_add(SLACK)
            .saturating_sub(store.get_fuel().unwrap_or(0)),
    }
}

/// Fuel used so far, read from inside a host call (exact there for every metering).
pub(crate) fn fuel_used_in_host(caller: &mut Caller<'_, State>) -> u64 {
    let budget = caller.data().budget;
    match caller.data().metering {
        Metering::Wasmtime => budget
            .saturating_add(SLACK)
            .saturating_sub(caller.get_fuel().unwrap_or(0)),
    }
}

/// Whether a trap means the budget ran out.
pub(crate) fn is_out_of_fuel(
    store: &mut Store<State>,
    _instance: Option<&Instance>,
    trap: Option<wasmtime::Trap>,
) -> bool {
    match store.data().metering {
        Metering::Wasmtime => trap == Some(wasmtime::Trap::OutOfFuel),
    }
}
