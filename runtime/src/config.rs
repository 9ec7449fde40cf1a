//! How a [`crate::Runtime`] is set up: allocator, cache, ceilings.

use std::path::PathBuf;

/// How instance memory is allocated. Both give identical results (tested); pooling makes
/// warm starts faster and caps concurrent instances, on-demand uses less address space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocator {
    /// wasmtime's pooling allocator with `max_instances` preallocated slots.
    Pooling {
        /// Concurrent instances (each task is one); the runtime refuses more with
        /// [`crate::Error::Capacity`].
        max_instances: u32,
    },
    /// Allocate each instance's memory with mmap when it starts.
    OnDemand,
}

/// How fuel is counted. Every variant gives the same verdicts and outputs; the fuel count
/// of each is deterministic across machines and part of the engine fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metering {
    /// wasmtime's built-in fuel and Cranelift's NaN canonicalisation after every float op.
    Wasmtime,
    /// In-wasm metering (`smartnodes-meter`): the same cost model counted by the module
    /// itself, a deterministic call-depth limit and NaN canonicalisation where NaN bits are
    /// observable. Much faster on float loops; see `runtime/src/metering.rs`.
    Instrumented,
}

/// Runtime configuration. `RuntimeConfig::default()` is what a worker uses: the in-wasm
/// meter ([`Metering::Instrumented`]); [`Metering::Wasmtime`] is the test oracle.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Instance allocation strategy.
    pub allocator: Allocator,
    /// How fuel is metered.
    pub metering: Metering,
    /// Where compiled modules are kept across restarts (`None`: memory only).
    pub cache_dir: Option<PathBuf>,
    /// How many compiled modules the in-memory cache keeps.
    pub memory_cache_entries: usize,
    /// The largest linear memory any task may ask for: a ceiling on
    /// [`crate::Limits::memory_bytes`] and the size of a pooling slot.
    pub max_memory_bytes: u64,
    /// The largest table any task may have, in elements (ceiling and pooling slot size).
    pub max_table_elements: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            allocator: Allocator::Pooling { max_instances: 32 },
            metering: Metering::Instrumented,
            cache_dir: None,
            memory_cache_entries: 64,
            max_memory_bytes: 4 << 30,
            max_table_elements: 1_000_000,
        }
    }
}
