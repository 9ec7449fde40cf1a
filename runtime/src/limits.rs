//! Per-task limits.

use std::time::Duration;

/// Bounds on one task. Every resource a guest can consume is bounded here, and each bound
/// is enforced deterministically except `wall_clock_backstop` (see its docs).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Fuel budget: roughly one unit per wasm operator executed.
    pub fuel: u64,
    /// Largest linear memory the task may have, in bytes (also caps the initial memory).
    pub memory_bytes: u64,
    /// Largest stdout the task may write; one byte more ends it as `output_too_large`.
    pub max_output_bytes: u64,
    /// How much of stderr is kept; the rest is dropped silently (it is only a log).
    pub max_stderr_bytes: u64,
    /// Largest module accepted, in bytes.
    pub max_module_bytes: u64,
    /// Largest table, in elements.
    pub max_table_elements: u64,
    /// A real-time backstop for tasks whose fuel is cheap but slow (memory-bound loops).
    /// Exceeding it is a host error ([`crate::Error::WallClockBackstop`]), never a verdict,
    /// because real time differs between machines.
    pub wall_clock_backstop: Duration,
}

impl Limits {
    /// Defaults that are safe for an unknown module from the internet: 5·10⁹ fuel (a few
    /// seconds of work), 256 MiB of memory, 16 MiB of output, 64 KiB of log, 16 MiB
    /// modules, 100k table elements and a 60 s backstop.
    pub const DEFAULT: Limits = Limits {
        fuel: 5_000_000_000,
        memory_bytes: 256 << 20,
        max_output_bytes: 16 << 20,
        max_stderr_bytes: 64 << 10,
        max_module_bytes: 16 << 20,
        max_table_elements: 100_000,
        wall_clock_backstop: Duration::from_secs(60),
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}
