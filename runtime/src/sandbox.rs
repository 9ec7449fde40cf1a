//! One task in one store: instantiate, meter, run `_start`, classify how it ended.

use crate::config::Metering;
use crate::error::{Error, Result};
use crate::outcome::{Outcome, TrapCode, Verdict};
use crate::wasi::{Exit, OutputOverflow, Wasi};
use crate::{metering, Limits, TaskInput};
use wasmtime::{InstancePre, ResourceLimiter, Store, Trap};

/// Everything a store carries for one task.
pub(crate) struct State {
    pub(crate) wasi: Wasi,
    pub(crate) limiter: Limiter,
    pub(crate) metering: Metering,
    pub(crate) budget: u64,
}

/// Memory and table bounds; remembers whether the task hit one so that the trap can be
/// reported as `memory_exceeded`.
pub(crate) struct Limiter {
    memory_bytes: u64,
    table_elements: u64,
    pub(crate) exceeded: bool,
}

/// Raised (as a trap) when a task asks for more memory or table than allowed.
#[derive(Debug)]
struct ResourceLimit;

impl std::fmt::Display for ResourceLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the task exceeded its memory or table limit")
    }
}
impl std::error::Error for ResourceLimit {}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.memory_bytes {
            self.exceeded = true;
            return Err(wasmtime::Error::new(ResourceLimit));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.table_elements {
            self.exceeded = true;
            return Err(wasmtime::Error::new(ResourceLimit));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        1
    }
    fn memories(&self) -> usize {
        2
    }
    fn tables(&self) -> usize {
        4
    }
}

/// The epoch ticker's period: the backstop is measured in these.
pub(crate) const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(10);

pub(crate) fn run(
    engine: &wasmtime::Engine,
    pre: &InstancePre<State>,
    metering_kind: Metering,
    watchdog: Option<&crate::backstop::Watchdog>,
    input: &TaskInput,
    limits: &Limits,
) -> Result<Outcome> {
    let deadline = std::time::Instant::now() + limits.wall_clock_backstop;
    let budget = limits.fuel;
    let state = State {
        wasi: Wasi::new(
            input,
            usize::try_from(limits.max_output_bytes).unwrap_or(usize::MAX),
            usize::try_from(limits.max_stderr_bytes).unwrap_or(usize::MAX),
        ),
        limiter: Limiter {
            memory_bytes: limits.memory_bytes,
            table_elements: limits.max_table_elements,
            exceeded: false,
        },
        metering: metering_kind,
        budget,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    let ticks = (limits.wall_clock_backstop.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
    store.set_epoch_deadline(ticks);
    store.epoch_deadline_trap();
    metering::before_instantiate(&mut store, budget).map_err(engine_err)?;

    let instance = match pre.instantiate(&mut store) {
        Ok(i) => i,
        Err(e) => return instantiation_failure(&mut store, e, limits),
    };
    metering::set_budget(&mut store, &instance, budget).map_err(engine_err)?;
    // Declared after the store, so dropped (disarmed) before it.
    #[allow(unsafe_code)]
    let _armed = match (watchdog, metering::interrupt_flag(&mut store, &instance)) {
        // SAFETY: the interrupt memory is one page that never grows, owned by `store`,
        // which outlives `_armed`; wasm code and the watchdog are its only users.
        (Some(dog), Some(flag)) => Some(unsafe { dog.arm(flag, deadline) }),
        _ => None,
    };
    let start = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .map_err(|e| Error::Engine(format!("`_start` vanished after validation: {e}")))?;
    let result = start.call(&mut store, ());

    let take = |store: &mut Store<State>| {
        let w = &mut store.data_mut().wasi;
        (std::mem::take(&mut w.stdout), std::mem::take(&mut w.stderr))
    };
    // The task ended through the host (returned, or a host call ended it): the fuel count
    // is exact, and a count above the budget means it ran out (see metering's docs).
    let exact = |store: &mut Store<State>| {
        let used = metering::fuel_used(store, &instance, budget);
        (used <= budget).then_some(used)
    };
    let out_of_fuel = |store: &mut Store<State>| {
        let (_, stderr) = take(store);
        Ok(Outcome::new(
            Verdict::OutOfFuel,
            budget,
            Vec::new(),
            stderr,
            format!("out of fuel after {budget}"),
        ))
    };
    match result {
        Ok(()) => {
            let Some(fuel) = exact(&mut store) else {
                return out_of_fuel(&mut store);
            };
            let (stdout, stderr) = take(&mut store);
            Ok(Outcome::new(
                Verdict::Completed,
                fuel,
                stdout,
                stderr,
                String::new(),
            ))
        }
        Err(e) => {
            if let Some(Exit(code)) = e.downcast_ref::<Exit>() {
                let code = *code;
                let Some(fuel) = exact(&mut store) else {
                    return out_of_fuel(&mut store);
                };
                let (stdout, stderr) = take(&mut store);
                return Ok(if code == 0 {
                    Outcome::new(Verdict::Completed, fuel, stdout, stderr, String::new())
                } else {
                    Outcome::new(
                        Verdict::Trapped(TrapCode::Exit(code)),
                        fuel,
                        Vec::new(),
                        stderr,
                        format!("the task exited with code {code}"),
                    )
                });
            }
            if e.downcast_ref::<OutputOverflow>().is_some() || store.data().wasi.stdout_overflow {
                let Some(fuel) = exact(&mut store) else {
                    return out_of_fuel(&mut store);
                };
                let (_, stderr) = take(&mut store);
                return Ok(Outcome::new(
                    Verdict::OutputTooLarge,
                    fuel,
                    Vec::new(),
                    stderr,
                    format!("the output exceeded {} bytes", limits.max_output_bytes),
                ));
            }
            let (_, stderr) = take(&mut store);
            classify_trap(&mut store, Some(&instance), e, limits, stderr)
        }
    }
}

fn instantiation_failure(
    store: &mut Store<State>,
    e: wasmtime::Error,
    limits: &Limits,
) -> Result<Outcome> {
    if store.data().limiter.exceeded {
        return Ok(Outcome::new(
            Verdict::MemoryExceeded,
            0,
            Vec::new(),
            Vec::new(),
            format!(
                "the module's initial memory or table exceeds the limit ({} bytes)",
                limits.memory_bytes
            ),
        ));
    }
    let message = format!("{e:#}");
    if message.contains("maximum concurrent") || message.contains("pooling") {
        return Err(Error::Capacity(message));
    }
    // A trap during instantiation (a start function, or a data segment out of bounds).
    classify_trap(store, None, e, limits, Vec::new())
}

/// Turns an error from running wasm into a verdict, or a host error when it was not the
/// task's doing.
fn classify_trap(
    store: &mut Store<State>,
    instance: Option<&wasmtime::Instance>,
    e: wasmtime::Error,
    limits: &Limits,
    stderr: Vec<u8>,
) -> Result<Outcome> {
    let budget = limits.fuel;
    let trap = e.downcast_ref::<Trap>().copied();
    if store.data().limiter.exceeded || e.downcast_ref::<ResourceLimit>().is_some() {
        return Ok(Outcome::new(
            Verdict::MemoryExceeded,
            budget,
            Vec::new(),
            stderr,
            format!(
                "the task asked for more than {} bytes of memory (or its table limit)",
                limits.memory_bytes
            ),
        ));
    }
    if metering::is_interrupted(store, instance) {
        return Err(Error::WallClockBackstop(limits.wall_clock_backstop));
    }
    if metering::is_out_of_fuel(store, instance, trap) {
        return Ok(Outcome::new(
            Verdict::OutOfFuel,
            budget,
            Vec::new(),
            stderr,
            format!("out of fuel after {budget}"),
        ));
    }
    let code = match trap {
        Some(Trap::Interrupt) => return Err(Error::WallClockBackstop(limits.wall_clock_backstop)),
        Some(Trap::StackOverflow) => TrapCode::StackOverflow,
        // The instrumented metering's call-depth limit.
        Some(Trap::UnreachableCodeReached) if metering::is_depth_exceeded(store, instance) => {
            TrapCode::StackOverflow
        }
        Some(Trap::MemoryOutOfBounds) => TrapCode::MemoryOutOfBounds,
        Some(Trap::TableOutOfBounds) => TrapCode::TableOutOfBounds,
        Some(Trap::IndirectCallToNull) => TrapCode::IndirectCallToNull,
        Some(Trap::BadSignature) => TrapCode::BadSignature,
        Some(Trap::IntegerOverflow) => TrapCode::IntegerOverflow,
        Some(Trap::IntegerDivisionByZero) => TrapCode::IntegerDivisionByZero,
        Some(Trap::BadConversionToInteger) => TrapCode::BadConversionToInteger,
        Some(Trap::UnreachableCodeReached) => TrapCode::Unreachable,
        Some(_) => TrapCode::Other,
        None => return Err(Error::Engine(format!("{e:#}"))),
    };
    Ok(Outcome::new(
        Verdict::Trapped(code),
        budget,
        Vec::new(),
        stderr,
        format!("{e}"),
    ))
}

fn engine_err(e: wasmtime::Error) -> Error {
    Error::Engine(format!("{e:#}"))
}
