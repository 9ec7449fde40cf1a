//! Deterministic metering inside the wasm itself.
//!
//! `smartnodes-meter` is a pure wasm→wasm rewrite, run once per module before compilation.
//! The rewritten module charges fuel, bounds its call depth and canonicalises the NaNs a
//! program can observe — all in plain wasm instructions, so the engine runs it with its own
//! fuel, epochs and NaN canonicalisation **off**. Its out-of-fuel and depth checks are an
//! inline branch to `unreachable`: no call into the runtime on the slow path, so the
//! register allocator keeps float values in registers across loop headers (the cause of
//! the 2–4.6× penalty of engine fuel on float loops, wasmtime#7244; see
//! `shared/METERING.md`).
//!
//! ```
//! use smartnodes_meter::{instrument, MeterConfig, FUEL_EXPORT};
//!
//! let wasm = wat::parse_str(r#"(module (func (export "run") (loop (br 0))))"#).unwrap();
//! let out = instrument(&wasm, &MeterConfig::default()).unwrap();
//! // The host sets `FUEL_EXPORT` (an i64 global) to the budget, calls `run`, and reads
//! // the global and `STATUS_EXPORT` back: `classify` turns them into a verdict.
//! assert!(out.wasm.len() > wasm.len());
//! # let _ = FUEL_EXPORT;
//! ```
//!
//! # What the rewritten module does
//! - **Cost model**: wasmtime's default fuel cost, so `fuel_used` means what it meant with
//!   engine fuel: 1 per operator; 0 for `nop`, `drop`, `block`, `loop`, `unreachable`,
//!   `return`, `else`, `end`; plus 1 per function entry; plus 1 per byte of
//!   `memory.copy`/`fill`/`init` and 1 per element of `table.copy`/`fill`/`init`/`grow`
//!   (`memory.grow` has no per-page cost). On every run that completes, the count equals
//!   wasmtime's `consume_fuel` count exactly (tested).
//! - **Segments**: a straight-line segment starts at function entry and after `loop`, `if`,
//!   `else`, `end`, `br`, `br_if`, `br_table`, `return`, `unreachable`, `call` and
//!   `call_indirect`; its whole static cost is subtracted once, at its start. Every branch
//!   target is a segment start, so a run that completes is charged exactly the cost of
//!   what it executed, and a host function sees exactly the cost of what ran before it.
//! - **Counter**: the remaining fuel lives in a function-local i64 (a register), written
//!   back to a module global before every call, before `unreachable`, on function exit and
//!   on the metering traps, and reloaded after every call (a callee or a host function may
//!   have changed it). A global-only counter was measured slower on branchy code.
//! - **Checks**: at function entry, at every loop header and after every variable-cost bulk
//!   operation: `if remaining < 0 { status = 1; unreachable }`. Every loop iteration and
//!   every call costs at least 1, so the work between two checks is bounded by the static
//!   size of a function body. A leaf function (no call instruction) without loops does
//!   bounded work and gets no entry check.
//! - **Depth**: a depth counter (global) is raised on entry to every function that can call
//!   (leaf functions cannot nest frames, so they are not counted) and lowered on exit;
//!   entering such a function when `depth >= max_call_depth` sets `status = 2` and traps. The
//!   native stack limit of the engine differs between architectures by a few frames, so it
//!   must never be what stops a task: the runtime gives the engine a native stack large
//!   enough for `max_call_depth` frames.
//! - **NaNs** (optional, on by default): NaN payload and sign bits are only observable at a
//!   few places; there a NaN is replaced by the canonical quiet NaN (`0x7fc00000`,
//!   `0x7ff8000000000000`, the value wasmtime's canonicalisation also produces): float
//!   stores (unless the value comes straight from a load or a constant: NaN-boxing guests
//!   keep their bits), `reinterpret`, the sign operand of `copysign`, float arguments of
//!   calls to imported functions and of `call_indirect`, float results of exported
//!   functions, `global.set` of imported or exported float globals, and scalars entering a
//!   vector (`splat`, `replace_lane`). v128 float arithmetic is canonicalised after each
//!   operation, like the engine does, so vectors used as integers never carry
//!   machine-specific bits, with one exception (since version 4): a result consumed at
//!   once by a float vector operation or comparison that reads it in the same lane shape
//!   is left alone, since that consumer turns any NaN lane into a NaN lane (canonicalised
//!   after it) or into mask bits that do not depend on the NaN's bits (`f64x2.mul`
//!   followed by `f64x2.add` is canonicalised once, after the add). Comparisons,
//!   `min`/`max`, truncations and conversions do not depend on NaN bits, and so need
//!   nothing.
//!
//! # Finding the counter: an export under a reserved name
//! The rewritten module exports three globals under reserved names ([`FUEL_EXPORT`],
//! [`STATUS_EXPORT`], [`DEPTH_EXPORT`]). That is safe for our host:
//! - wasm code cannot name its own instance's exports, and the new globals are appended
//!   after the module's own, at indices its (already validated) code cannot reference;
//! - a module that exports or imports anything whose name starts with [`RESERVED_PREFIX`]
//!   is rejected, so a guest cannot shadow the names or ask the host for them;
//! - the host never links one instance's exports into another's imports.
//!
//! The alternative, a host-owned imported global, does not work with wasmtime's
//! store-independent `InstancePre` (a global is bound to one store), which the runtime uses
//! for fast starts. A start function would run before the host can set the budget, so
//! the start section is removed and exported as [`START_EXPORT`]: the host calls it right
//! after instantiation (see [`Instrumented::start`]), or the rewrite calls it on entry to a
//! named export (see [`StartMode`]).
//!
//! # Reading the result
//! Before a call the host sets [`FUEL_EXPORT`] to the budget (and, on a reused instance,
//! [`STATUS_EXPORT`] and [`DEPTH_EXPORT`] to 0); after it, [`classify`] turns "did it trap",
//! the remaining fuel and the status into a [`Stop`]. A run that returns with a negative
//! counter (its last segment was charged past the budget with no check after it) is out
//! of fuel too, so out of fuel is detected exactly at the budget: a run whose total cost is
//! `F` completes with a budget of `F` and runs out of fuel with `F - 1`.
//!
//! # Not supported
//! Modules using threads, memory64, exceptions, tail calls, typed function references or
//! GC are rejected with [`MeterError::Unsupported`]; so are components.
//!
//! # Layout
//! - `cost` — the cost model (one function).
//! - `module` — section-level rewrite: new globals, exports, types, start function.
//! - `func` — function-body rewrite: segments, checks, depth, NaN observation points.

mod cost;
mod depth;
mod func;
mod fuse;
mod module;
mod unroll;

pub use cost::operator_cost;

/// The version of the rewrite and of its cost model. It belongs in the engine fingerprint
/// and the compiled-module cache key; bump it on any change that can change a verdict, an
/// output or a fuel count.
pub const VERSION: &str = "smartnodes-meter/6";

/// Every export or import name starting with this prefix is reserved for the meter.
pub const RESERVED_PREFIX: &str = "__smartnodes_meter";
/// Mutable i64 global: the remaining fuel. Set to the budget before a call; negative means
/// out of fuel.
pub const FUEL_EXPORT: &str = "__smartnodes_meter_fuel";
/// Mutable i32 global: why the module trapped, if it trapped in a check (see [`Status`]).
pub const STATUS_EXPORT: &str = "__smartnodes_meter_status";
/// Mutable i32 global: the number of instrumented frames on the stack.
pub const DEPTH_EXPORT: &str = "__smartnodes_meter_depth";
/// The module's former start function, exported so the host can run it after setting the
/// budget.
pub const START_EXPORT: &str = "__smartnodes_meter_start";
/// With [`MeterConfig::interrupt`]: the global (mutable i64) holding the part of the budget
/// that is not in the counter yet. The host sets the counter to at most
/// [`INTERRUPT_SLICE`] and the rest here; remaining fuel = counter + bank.
pub const BANK_EXPORT: &str = "__smartnodes_meter_bank";
/// With [`MeterConfig::interrupt`]: a one-page memory of the meter's own (the guest's code
/// cannot name it). A non-zero byte 0 stops the task at its next refill from the bank with
/// [`Status::Interrupted`]; the host writes it from another thread (a wall-clock backstop).
pub const INTERRUPT_EXPORT: &str = "__smartnodes_meter_interrupt";
/// With [`MeterConfig::interrupt`]: the most a refill moves from the bank into the counter,
/// so a task consults the interrupt byte at least once per this much fuel (except inside
/// one counted loop, which is paid for on entry: see the README's known limits).
pub const INTERRUPT_SLICE: i64 = 1 << 26;

/// Default for [`MeterConfig::max_call_depth`].
pub const DEFAULT_MAX_CALL_DEPTH: u32 = 5_000;

/// How the rewrite treats NaN bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NanMode {
    /// Leave NaN bits alone. Only for engines that canonicalise NaNs themselves, or for
    /// jobs that accept per-architecture results.
    Off,
    /// Canonicalise NaNs where their bits can be observed (the default).
    ObservationPoints,
}

/// How a scalar NaN is canonicalised at an observation point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NanForm {
    /// `splat` / `eq` / `bitselect` / `extract_lane 0`: branch-free and the fastest form
    /// measured. Needs the engine's SIMD support (on by default in wasmtime).
    Simd,
    /// `select(x == x, x, canonical)`: no SIMD needed.
    Select,
}

/// What happens to the module's start function, which would otherwise run during
/// instantiation, before the host can set the budget.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum StartMode {
    /// Remove the start section and export the function as [`START_EXPORT`]; the host calls
    /// it after setting the budget ([`Instrumented::start`]).
    #[default]
    Export,
    /// Call it, once, on entry to the exported function with this name (`"_start"` for a
    /// WASI command), so that its fuel and its traps are that call's. Falls back to
    /// [`StartMode::Export`] when the module exports no function of that name.
    CallFrom(String),
}

/// What the rewrite does. Every field changes the rewritten module, so every field belongs
/// in the engine fingerprint: use [`MeterConfig::fingerprint`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MeterConfig {
    /// Entering a function while this many instrumented frames are active traps with
    /// [`Status::DepthExceeded`].
    pub max_call_depth: u32,
    /// NaN canonicalisation.
    pub nan: NanMode,
    /// The instruction sequence used for scalar NaN canonicalisation.
    pub nan_form: NanForm,
    /// What happens to a start function.
    pub start: StartMode,
    /// Adds the bank ([`BANK_EXPORT`]) and the interrupt byte ([`INTERRUPT_EXPORT`]): the
    /// host can then stop a running task from another thread, within a slice of fuel,
    /// without any call or memory access on the checks' fast path. Refuses modules with
    /// more than one memory of their own.
    pub interrupt: bool,
}

impl Default for MeterConfig {
    fn default() -> Self {
        MeterConfig {
            max_call_depth: DEFAULT_MAX_CALL_DEPTH,
            nan: NanMode::ObservationPoints,
            nan_form: NanForm::Simd,
            start: StartMode::Export,
            interrupt: false,
        }
    }
}

impl MeterConfig {
    /// A string that identifies the rewrite and this configuration, for the engine
    /// fingerprint.
    pub fn fingerprint(&self) -> String {
        let mut fp = format!(
            "{VERSION};depth={};nan={:?};form={:?};start={:?}",
            self.max_call_depth, self.nan, self.nan_form, self.start
        );
        if self.interrupt {
            fp.push_str(&format!(";interrupt(slice={INTERRUPT_SLICE})"));
        }
        fp
    }
}

/// A rewritten module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instrumented {
    /// The rewritten module (validated).
    pub wasm: Vec<u8>,
    /// `Some(START_EXPORT)` when the input had a start function: the host must call this
    /// export (no params, no results) right after instantiation, after setting the budget.
    pub start: Option<&'static str>,
    /// Counts of what the rewrite inserted, for tests and curiosity.
    pub stats: Stats,
}

/// What the rewrite inserted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Function bodies rewritten.
    pub functions: u32,
    /// Segment charges inserted (segments of cost 0 and dead segments get none).
    pub charges: u32,
    /// Out-of-fuel checks inserted (function entries, loop headers, bulk operations).
    pub checks: u32,
    /// NaN canonicalisations inserted.
    pub nan_canonicalizations: u32,
    /// Innermost loops charged once per iteration for their whole body (see `fuse.rs`).
    pub fused_loops: u32,
    /// Refunds inserted on the branches that leave part of a fused loop's body unrun.
    pub refunds: u32,
    /// Counted innermost loops charged for all their iterations on entry (see `fuse.rs`).
    pub counted_loops: u32,
    /// Bounded loops (count-up loops with exits) given a prepaid copy without checks.
    pub bounded_loops: u32,
    /// Counted loops emitted with four copies of their body per iteration.
    pub unrolled_loops: u32,
    /// Pointers of unrolled loops whose increments moved into load and store offsets.
    pub folded_pointers: u32,
    /// `memory.copy` instructions given an inline path for short lengths.
    pub inline_copies: u32,
    /// Functions that take and return the counter as an extra parameter and result
    /// (reached only by direct calls) instead of reading and writing the global.
    pub fuel_passing_functions: u32,
}

/// Why the rewrite refused a module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MeterError {
    /// Not a valid core wasm module.
    #[error("invalid module: {0}")]
    Invalid(String),
    /// Valid wasm, but it uses a feature the meter does not handle.
    #[error("unsupported wasm feature: {0}")]
    Unsupported(String),
    /// The module uses a name reserved for the meter.
    #[error("the module uses the reserved name {0:?}")]
    ReservedName(String),
    /// The rewrite produced an invalid module: a bug in this crate.
    #[error("internal error in the metering rewrite: {0}")]
    Internal(String),
}

/// Rewrites `wasm` so that it meters itself. See the crate documentation for what the
/// rewritten module does and how the host drives it.
pub fn instrument(wasm: &[u8], cfg: &MeterConfig) -> Result<Instrumented, MeterError> {
    module::instrument(wasm, cfg)
}

/// The wasm features a module may use.
pub fn supported_features() -> wasmparser::WasmFeatures {
    use wasmparser::WasmFeatures as F;
    F::WASM2 | F::EXTENDED_CONST | F::MULTI_MEMORY | F::RELAXED_SIMD
}

/// The value of [`STATUS_EXPORT`] after a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// No metering trap.
    Running = 0,
    /// A check found the counter negative.
    OutOfFuel = 1,
    /// A function was entered at the depth limit.
    DepthExceeded = 2,
    /// The host set the interrupt byte ([`MeterConfig::interrupt`]).
    Interrupted = 3,
}

/// How a run ended, from the host's observations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Returned normally within the budget.
    Completed,
    /// Charged beyond the budget (trapped in a check, or returned or trapped with a
    /// negative counter).
    OutOfFuel,
    /// Trapped entering a function at the depth limit.
    DepthExceeded,
    /// Any other trap: the guest's own (`unreachable`, out-of-bounds access, …).
    GuestTrap,
    /// Stopped by the host through the interrupt byte: not a property of the task.
    Interrupted,
}

/// Turns what the host saw after a call into a [`Stop`]: whether the call trapped, the value
/// of [`FUEL_EXPORT`] and the value of [`STATUS_EXPORT`].
///
/// With [`MeterConfig::interrupt`], `remaining` is the counter plus the bank.
pub fn classify(trapped: bool, remaining: i64, status: i32) -> Stop {
    if status == Status::Interrupted as i32 {
        Stop::Interrupted
    } else if status == Status::OutOfFuel as i32 || remaining < 0 {
        Stop::OutOfFuel
    } else if status == Status::DepthExceeded as i32 {
        Stop::DepthExceeded
    } else if trapped {
        Stop::GuestTrap
    } else {
        Stop::Completed
    }
}

/// The fuel a run used: the budget minus what remains, and exactly the budget when it ran
/// out of fuel.
pub fn fuel_used(budget: u64, remaining: i64, stop: Stop) -> u64 {
    match stop {
        Stop::OutOfFuel => budget,
        _ => budget.saturating_sub(u64::try_from(remaining).unwrap_or(0)),
    }
}

/// The largest budget the counter can hold.
pub const MAX_BUDGET: u64 = i64::MAX as u64;

/// The initial value of [`FUEL_EXPORT`] for a budget (clamped to [`MAX_BUDGET`]).
pub fn budget_to_counter(budget: u64) -> i64 {
    i64::try_from(budget).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_covers_every_case() {
        assert_eq!(classify(false, 0, 0), Stop::Completed);
        assert_eq!(classify(false, -1, 0), Stop::OutOfFuel);
        assert_eq!(classify(true, -5, 0), Stop::OutOfFuel);
        assert_eq!(classify(true, 3, 1), Stop::OutOfFuel);
        assert_eq!(classify(true, 3, 3), Stop::Interrupted);
        assert_eq!(classify(true, 3, 2), Stop::DepthExceeded);
        assert_eq!(classify(true, 3, 0), Stop::GuestTrap);
    }

    #[test]
    fn fuel_used_is_clamped_at_the_budget() {
        assert_eq!(fuel_used(10, 4, Stop::Completed), 6);
        assert_eq!(fuel_used(10, -3, Stop::OutOfFuel), 10);
        assert_eq!(fuel_used(10, 10, Stop::GuestTrap), 0);
        assert_eq!(budget_to_counter(u64::MAX), i64::MAX);
    }

    #[test]
    fn fingerprint_names_version_and_config() {
        let fp = MeterConfig::default().fingerprint();
        assert!(fp.starts_with(VERSION));
        let other = MeterConfig {
            max_call_depth: 7,
            ..MeterConfig::default()
        };
        assert_ne!(fp, other.fingerprint());
    }
}
