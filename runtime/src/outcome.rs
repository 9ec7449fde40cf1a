//! What running a task gives: a verdict, the fuel it used, and its output.

use sha2::{Digest, Sha256};

/// How a task ended. A value, not an error: every one of these is a legitimate result that
/// a worker commits to and a validator can reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// `_start` returned, or the task called `proc_exit(0)`.
    Completed,
    /// The fuel budget ran out.
    OutOfFuel,
    /// The task trapped or exited with a non-zero code.
    Trapped(TrapCode),
    /// The task asked for more memory (or table space) than its limits allow.
    MemoryExceeded,
    /// The task wrote more to stdout than its limits allow.
    OutputTooLarge,
    /// The module was rejected before running: not wasm, too large, invalid, an import the
    /// sandbox does not provide, an unsupported feature, or no `_start`.
    InvalidModule,
}

impl Verdict {
    /// The stable name used in JSON and in receipts.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Completed => "completed",
            Verdict::OutOfFuel => "out_of_fuel",
            Verdict::Trapped(_) => "trapped",
            Verdict::MemoryExceeded => "memory_exceeded",
            Verdict::OutputTooLarge => "output_too_large",
            Verdict::InvalidModule => "invalid_module",
        }
    }

    /// Whether the same module, input and limits give this verdict on every machine *under
    /// [`crate::Metering::Wasmtime`]* (the test oracle).
    ///
    /// False only for a stack overflow there: the depth at which the native stack runs out
    /// depends on the machine's frame sizes and the engine's slop (METERING.md measured a
    /// difference of a few frames between x86-64 and aarch64). Under the default
    /// [`crate::Metering::Instrumented`] a stack overflow is the meter's fixed call-depth
    /// limit, the same on every machine, and the network judges it like any verdict (see
    /// ARCHITECTURE.md for the one remaining edge: frames averaging over 256 bytes).
    pub fn is_reproducible(&self) -> bool {
        !matches!(self, Verdict::Trapped(TrapCode::StackOverflow))
    }

    /// A compact, stable encoding for receipts: the verdict's index and, for traps, the
    /// trap code.
    pub fn code(&self) -> (u8, i64) {
        match self {
            Verdict::Completed => (0, 0),
            Verdict::OutOfFuel => (1, 0),
            Verdict::Trapped(t) => (2, t.code()),
            Verdict::MemoryExceeded => (3, 0),
            Verdict::OutputTooLarge => (4, 0),
            Verdict::InvalidModule => (5, 0),
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Trapped(t) => write!(f, "trapped ({t})"),
            v => f.write_str(v.as_str()),
        }
    }
}

/// Why a task trapped. Deterministic (except `StackOverflow`, see
/// [`Verdict::is_reproducible`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrapCode {
    /// `proc_exit(code)` with a non-zero code.
    Exit(i32),
    /// A wasm `unreachable` (Rust panics end here).
    Unreachable,
    /// The native wasm stack ran out (deep recursion).
    StackOverflow,
    /// A load or store outside linear memory.
    MemoryOutOfBounds,
    /// A table access out of bounds.
    TableOutOfBounds,
    /// `call_indirect` to a null entry.
    IndirectCallToNull,
    /// `call_indirect` with the wrong signature.
    BadSignature,
    /// Integer overflow (e.g. `i32.div_s(MIN, -1)`).
    IntegerOverflow,
    /// Integer division by zero.
    IntegerDivisionByZero,
    /// A float to integer conversion out of range.
    BadConversionToInteger,
    /// Any other trap the engine reports.
    Other,
}

impl TrapCode {
    /// A stable number for receipts: the exit code for `Exit`, a negative constant otherwise.
    pub fn code(&self) -> i64 {
        match self {
            TrapCode::Exit(c) => i64::from(*c),
            TrapCode::Unreachable => -1,
            TrapCode::StackOverflow => -2,
            TrapCode::MemoryOutOfBounds => -3,
            TrapCode::TableOutOfBounds => -4,
            TrapCode::IndirectCallToNull => -5,
            TrapCode::BadSignature => -6,
            TrapCode::IntegerOverflow => -7,
            TrapCode::IntegerDivisionByZero => -8,
            TrapCode::BadConversionToInteger => -9,
            TrapCode::Other => -100,
        }
    }
}

impl std::fmt::Display for TrapCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrapCode::Exit(c) => write!(f, "exit code {c}"),
            TrapCode::Unreachable => f.write_str("unreachable executed"),
            TrapCode::StackOverflow => f.write_str("stack overflow"),
            TrapCode::MemoryOutOfBounds => f.write_str("out of bounds memory access"),
            TrapCode::TableOutOfBounds => f.write_str("out of bounds table access"),
            TrapCode::IndirectCallToNull => f.write_str("indirect call to null"),
            TrapCode::BadSignature => f.write_str("indirect call type mismatch"),
            TrapCode::IntegerOverflow => f.write_str("integer overflow"),
            TrapCode::IntegerDivisionByZero => f.write_str("integer divide by zero"),
            TrapCode::BadConversionToInteger => f.write_str("invalid conversion to integer"),
            TrapCode::Other => f.write_str("other trap"),
        }
    }
}

/// The result of one task: what a worker commits to is `(verdict, output_hash, fuel_used)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// How the task ended.
    pub verdict: Verdict,
    /// Fuel consumed. Exact when the task ended through the host (completed, `proc_exit`,
    /// output too large); the whole budget when it ended by a trap inside wasm code (out of
    /// fuel, a trap, memory exceeded), because the engine does not keep an exact count
    /// across a trap (wasmtime#13802); 0 for an invalid module.
    pub fuel_used: u64,
    /// The task's stdout; empty unless the verdict is `Completed`.
    pub output: Vec<u8>,
    /// `sha256(output)` when the verdict is `Completed`, `None` otherwise.
    pub output_hash: Option<[u8; 32]>,
    /// The first `max_stderr_bytes` of stderr (a log; not part of the commitment).
    pub stderr: Vec<u8>,
    /// A human explanation (trap message, why the module is invalid). Not committed to.
    pub detail: String,
}

impl Outcome {
    pub(crate) fn new(
        verdict: Verdict,
        fuel_used: u64,
        output: Vec<u8>,
        stderr: Vec<u8>,
        detail: String,
    ) -> Self {
        let (output, output_hash) = if verdict == Verdict::Completed {
            let hash = sha256(&output);
            (output, Some(hash))
        } else {
            (Vec::new(), None)
        };
        Outcome {
            verdict,
            fuel_used,
            output,
            output_hash,
            stderr,
            detail,
        }
    }

    pub(crate) fn invalid(detail: impl Into<String>) -> Self {
        Outcome::new(
            Verdict::InvalidModule,
            0,
            Vec::new(),
            Vec::new(),
            detail.into(),
        )
    }

    /// The output hash as lowercase hex, if any.
    pub fn output_hash_hex(&self) -> Option<String> {
        self.output_hash.map(hex::encode)
    }

    /// `(verdict, output_hash, fuel_used)`: what receipts commit to and validators compare.
    pub fn commitment(&self) -> (Verdict, Option<[u8; 32]>, u64) {
        (self.verdict, self.output_hash, self.fuel_used)
    }
}

/// `sha256(bytes)`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}
