//! The deterministic engine configuration and its fingerprint.
//!
//! Every switch here exists to make the same module + input + limits give the same
//! `(verdict, output_hash, fuel_used)` on every machine. Each has a test in
//! `tests/all/determinism.rs`.

use crate::config::{Allocator, Metering, RuntimeConfig};
use crate::error::{Error, Result};
use sha2::{Digest, Sha256};

/// The version of wasmtime this runtime is built on (part of the fingerprint).
pub const WASMTIME_VERSION: &str = "48.0.8";

/// Bumped whenever the sandbox's observable semantics change: the WASI surface, clocks,
/// randomness, fuel rules or limits handling.
pub const SEMANTICS_VERSION: u32 = 1;

/// The native wasm stack. Fixed so every node overflows at about the same depth; see
/// [`crate::Verdict::is_reproducible`] for why "about" is the best the engine can do.
pub const MAX_WASM_STACK: usize = 512 << 10;

/// Identifies everything that determines a task's result besides the module, input and
/// limits: receipts carry it, and a validator re-executes only receipts whose fingerprint
/// it can reproduce. Independent of the machine (CPU features do not change results).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EngineFingerprint(pub [u8; 32]);

impl EngineFingerprint {
    /// The fingerprint of a runtime with this metering (without building one).
    pub fn of(metering: Metering) -> EngineFingerprint {
        fingerprint(metering)
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Option<EngineFingerprint> {
        let bytes = hex::decode(s.trim()).ok()?;
        Some(EngineFingerprint(bytes.try_into().ok()?))
    }
}

impl std::fmt::Debug for EngineFingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EngineFingerprint({})", self.to_hex())
    }
}

impl std::fmt::Display for EngineFingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The canonical description of the deterministic configuration; its sha256 is the
/// fingerprint. Everything that can change a result is listed, nothing machine-specific.
pub(crate) fn describe(metering: Metering) -> String {
    let metering = crate::metering::describe(metering);
    format!(
        "smartnodes-runtime semantics={SEMANTICS_VERSION}; wasmtime={WASMTIME_VERSION}; \
         metering={metering}; relaxed-simd=deterministic; threads=off; \
         features=mvp,mutable-globals,sign-ext,nontrapping-fptoint,multi-value,bulk-memory,\
         reference-types,simd,relaxed-simd,extended-const; max-wasm-stack={MAX_WASM_STACK}; \
         wasi=smartnodes-deterministic-p1; clocks=fuel-derived; random=chacha20(seed)"
    )
}

pub(crate) fn fingerprint(metering: Metering) -> EngineFingerprint {
    EngineFingerprint(Sha256::digest(describe(metering).as_bytes()).into())
}

/// Builds the one engine of a runtime.
pub(crate) fn build_engine(config: &RuntimeConfig) -> Result<wasmtime::Engine> {
    let mut c = wasmtime::Config::new();
    // Determinism: NaN bits, relaxed SIMD, no threads, fixed stack.
    c.cranelift_nan_canonicalization(true)
        .relaxed_simd_deterministic(true)
        .wasm_shared_everything_threads(false)
        .max_wasm_stack(MAX_WASM_STACK);
    // Threads are compiled out: wasmtime's `threads` feature is not enabled, so a module
    // with shared memory or atomics-wait is an invalid module.
    // GC, function references, exceptions, stack switching and the component model are
    // compiled out of wasmtime (features off), so modules using them are invalid.
    // A fixed feature set, so a module valid on one node is valid on all of them. Proposals
    // whose semantics or metering we have not reviewed are off (invalid_module).
    c.wasm_simd(true)
        .wasm_relaxed_simd(true)
        .wasm_bulk_memory(true)
        .wasm_multi_value(true)
        .wasm_extended_const(true)
        .wasm_multi_memory(false)
        .wasm_memory64(false)
        .wasm_tail_call(false)
        .wasm_wide_arithmetic(false)
        .wasm_custom_page_sizes(false);
    // The backstop: an epoch ticker interrupts tasks that run too long in real time.
    c.epoch_interruption(true);
    // Fast traps and small code: backtraces are not part of any result.
    c.wasm_backtrace_max_frames(None)
        .native_unwind_info(true)
        .cranelift_opt_level(wasmtime::OptLevel::Speed)
        .parallel_compilation(true);
    crate::metering::configure(&mut c, config.metering);

    let memory = config.max_memory_bytes;
    if memory > 4 << 30 {
        return Err(Error::Config(
            "max_memory_bytes above 4 GiB (wasm32)".into(),
        ));
    }
    match config.allocator {
        Allocator::Pooling { max_instances } => {
            let mut pool = wasmtime::PoolingAllocationConfig::new();
            // The meter adds a one-page memory of its own (the interrupt byte).
            let memories = match config.metering {
                Metering::Instrumented => 2,
                Metering::Wasmtime => 1,
            };
            pool.total_core_instances(max_instances)
                .total_memories(max_instances * memories)
                .total_tables(max_instances)
                .total_component_instances(0)
                .max_memories_per_module(memories)
                .max_tables_per_module(4)
                .max_memory_size(usize::try_from(memory).map_err(|e| Error::Config(e.to_string()))?)
                .table_elements(
                    usize::try_from(config.max_table_elements)
                        .map_err(|e| Error::Config(e.to_string()))?,
                )
                // Keep a few hot slots resident for fast warm starts.
                .max_unused_warm_slots(max_instances.min(8))
                .linear_memory_keep_resident(1 << 20);
            c.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        }
        Allocator::OnDemand => {
            c.allocation_strategy(wasmtime::InstanceAllocationStrategy::OnDemand);
        }
    }
    wasmtime::Engine::new(&c).map_err(|e| Error::Config(format!("{e:#}")))
}

/// A sha256 over the engine's precompile compatibility hash: keys the on-disk cache of
/// compiled code, which (unlike results) does depend on the CPU and the compiler flags.
pub(crate) fn compile_key(engine: &wasmtime::Engine, fp: &EngineFingerprint) -> String {
    use std::hash::Hash;
    let mut h = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    h.0.update(fp.0);
    hex::encode(&h.0.finalize()[..16])
}

struct ShaHasher(Sha256);

impl std::hash::Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        // Only the full digest is used; see compile_key.
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}
