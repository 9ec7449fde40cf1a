//! # smartnodes-runtime
//!
//! The deterministic, metered WebAssembly sandbox that runs Smartnodes tasks. The promise:
//! **the same module, input, seed and limits give the same `(verdict, output_hash,
//! fuel_used)` on every machine** with the same [`EngineFingerprint`], so a validator can
//! re-run any task and catch a worker that lied about it.
//!
//! ```no_run
//! use smartnodes_runtime::{Limits, Runtime, RuntimeConfig, TaskInput, Verdict};
//!
//! let runtime = Runtime::new(RuntimeConfig::default())?;
//! let wasm = std::fs::read("wordcount.wasm").unwrap();
//! let outcome = runtime.run(&wasm, &TaskInput::new(&b"to be or not to be"[..]), &Limits::default())?;
//! assert_eq!(outcome.verdict, Verdict::Completed);
//! println!("{} fuel, output {}", outcome.fuel_used, String::from_utf8_lossy(&outcome.output));
//! # Ok::<(), smartnodes_runtime::Error>(())
//! ```
//!
//! A task is a WASI preview1 *command* module: it reads its input on stdin and writes its
//! output on stdout. Its verdict is a value ([`Outcome`], [`Verdict`]); an [`Error`] means
//! the host failed and the task could not be judged.
//!
//! ## Determinism
//! Each of these is a documented invariant with a test in `tests/all/determinism.rs`:
//! - **fuel**: wasmtime's fuel, set after instantiation (instantiation cost depends on
//!   copy-on-write memory init, wasmtime#14331); on a trap inside wasm the engine loses the
//!   exact count (wasmtime#13802), so such verdicts report the whole budget;
//! - **NaNs**: Cranelift's NaN canonicalisation, so NaN bits are the same on x86-64 and
//!   aarch64; relaxed SIMD in its deterministic mode; threads off;
//! - **WASI**: [`wasi`](crate#wasi) clocks derived from fuel, `poll_oneoff` that never
//!   blocks, random bytes from ChaCha20 keyed by the caller's seed, empty environment, no
//!   files, no sockets;
//! - **limits**: memory and table growth beyond the limit trap as `memory_exceeded`; one
//!   byte of output too many ends the task as `output_too_large`;
//! - **the one exception**: native stack overflow depends on frame sizes
//!   ([`Verdict::is_reproducible`]).
//!
//! ## WASI
//! See the `wasi` module source for the whole surface; in short, stdin/stdout/stderr
//! only, virtual clocks, seeded randomness, every other call fails cleanly.
//!
//! ## Layout
//! - `config`: [`RuntimeConfig`], [`Allocator`], [`Metering`];
//! - `limits`: [`Limits`] per task;
//! - `engine`: the deterministic wasmtime configuration and the [`EngineFingerprint`];
//! - `metering`: every fuel interaction, behind one enum;
//! - `wasi`: the deterministic WASI preview1;
//! - `sandbox`: one task in one store and how its end is classified;
//! - `cache`: compiled modules in memory and on disk;
//! - `outcome`: [`Outcome`], [`Verdict`], [`TrapCode`];
//! - `error`: [`Error`].
//!
//! No tokio, libp2p, sled or alloy here: callers on an async executor must run tasks on
//! blocking threads (`spawn_blocking` or a pool).

mod backstop;
mod cache;
mod config;
mod engine;
mod error;
mod limits;
mod metering;
mod outcome;
mod sandbox;
mod wasi;

pub use config::{Allocator, Metering, RuntimeConfig};
pub use engine::{EngineFingerprint, MAX_WASM_STACK, SEMANTICS_VERSION, WASMTIME_VERSION};
pub use error::{Error, Result};
pub use limits::Limits;
pub use outcome::{sha256, Outcome, TrapCode, Verdict};
pub use wasi::REALTIME_EPOCH_NS;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// `sha256(module bytes)`: how modules are named everywhere.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModuleId(pub [u8; 32]);

impl ModuleId {
    /// The id of these module bytes.
    pub fn of(wasm: &[u8]) -> ModuleId {
        ModuleId(sha256(wasm))
    }
    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Debug for ModuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ModuleId({})", self.to_hex())
    }
}

impl std::fmt::Display for ModuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// What a task receives besides its module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInput {
    /// The input, read by the task on stdin.
    pub stdin: Arc<[u8]>,
    /// Arguments, `argv[0]` included (default: `["task"]`).
    pub args: Vec<String>,
    /// Environment variables (default: none).
    pub env: Vec<(String, String)>,
    /// Keys the task's random source (`random_get`). The network uses
    /// `sha256(job_id || task_index)`; the default is all zeros.
    pub seed: [u8; 32],
    /// Read-only input files, seen by the task in the preopened directory `/input`
    /// (none by default, and then there is no preopened directory at all). Names are
    /// flat: non-empty, without `/` or NUL, not `.` or `..`.
    pub files: Vec<(String, Arc<[u8]>)>,
}

impl TaskInput {
    /// An input with default args, no environment and the zero seed.
    pub fn new(stdin: impl Into<Arc<[u8]>>) -> TaskInput {
        TaskInput {
            stdin: stdin.into(),
            args: vec!["task".to_string()],
            env: Vec::new(),
            seed: [0; 32],
            files: Vec::new(),
        }
    }

    /// The same input with one more read-only file in `/input`.
    pub fn with_file(mut self, name: impl Into<String>, bytes: impl Into<Arc<[u8]>>) -> TaskInput {
        self.files.push((name.into(), bytes.into()));
        self
    }

    /// The same input with another seed.
    pub fn with_seed(mut self, seed: [u8; 32]) -> TaskInput {
        self.seed = seed;
        self
    }
}

/// A validated, compiled module, ready to run many times. Cheap to clone.
#[derive(Clone)]
pub struct TaskModule {
    id: ModuleId,
    pre: cache::Pre,
}

impl TaskModule {
    /// `sha256` of the module bytes.
    pub fn id(&self) -> ModuleId {
        self.id
    }
}

impl std::fmt::Debug for TaskModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskModule").field("id", &self.id).finish()
    }
}

/// The sandbox: one wasmtime engine with the deterministic configuration, the WASI
/// linker, and the compiled-module cache. Share it (`Arc<Runtime>`) between threads.
pub struct Runtime {
    engine: wasmtime::Engine,
    linker: wasmtime::Linker<sandbox::State>,
    config: RuntimeConfig,
    fingerprint: EngineFingerprint,
    compile_key: String,
    memory_cache: Mutex<cache::MemoryCache>,
    /// Modules being compiled: one gate per module id, so that concurrent loads of a module
    /// not in the cache compile it once (the others wait, then find it cached).
    compiling: Mutex<std::collections::HashMap<[u8; 32], Arc<Mutex<()>>>>,
    /// Modules compiled (not found in a cache) since start.
    compiles: AtomicU64,
    ticker_stop: Arc<AtomicBool>,
    /// The backstop of the instrumented metering (the wasmtime metering's is the epoch).
    watchdog: Option<backstop::Watchdog>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.config)
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

impl Runtime {
    /// Creates the engine, the linker and the cache, and starts the thread that enforces
    /// the wall-clock backstop (the watchdog of the meter's interrupt byte, or the epoch
    /// ticker for the wasmtime metering).
    pub fn new(config: RuntimeConfig) -> Result<Runtime> {
        let engine = engine::build_engine(&config)?;
        let mut linker = wasmtime::Linker::new(&engine);
        wasi::add_to_linker(&mut linker).map_err(|e| Error::Engine(format!("{e:#}")))?;
        let fingerprint = engine::fingerprint(config.metering);
        let compile_key = engine::compile_key(&engine, &fingerprint);
        let ticker_stop = Arc::new(AtomicBool::new(false));
        let watchdog = match config.metering {
            Metering::Instrumented => Some(
                backstop::Watchdog::start()
                    .map_err(|e| Error::Engine(format!("starting the backstop: {e}")))?,
            ),
            Metering::Wasmtime => None,
        };
        if config.metering == Metering::Wasmtime {
            let engine = engine.clone();
            let stop = ticker_stop.clone();
            std::thread::Builder::new()
                .name("smartnodes-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(sandbox::EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| Error::Engine(format!("starting the epoch ticker: {e}")))?;
        }
        Ok(Runtime {
            memory_cache: cache::MemoryCache::new(config.memory_cache_entries),
            compiling: Mutex::default(),
            compiles: AtomicU64::new(0),
            engine,
            linker,
            fingerprint,
            compile_key,
            config,
            ticker_stop,
            watchdog,
        })
    }

    /// What receipts carry to say which engine produced them.
    pub fn fingerprint(&self) -> EngineFingerprint {
        self.fingerprint
    }

    /// The human-readable description hashed into the fingerprint.
    pub fn fingerprint_description(&self) -> String {
        engine::describe(self.config.metering)
    }

    /// The configuration this runtime was built with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Validates and compiles a module (or finds it in the cache).
    ///
    /// `Ok(Err(reason))` is an invalid module: a verdict about the module, not a host
    /// failure.
    pub fn load(&self, wasm: &[u8], limits: &Limits) -> Result<Result<TaskModule, String>> {
        if wasm.len() as u64 > limits.max_module_bytes {
            return Ok(Err(format!(
                "the module is {} bytes; the limit is {}",
                wasm.len(),
                limits.max_module_bytes
            )));
        }
        if let Some(reason) = not_a_module(wasm) {
            return Ok(Err(reason));
        }
        let id = ModuleId::of(wasm);
        if let Some(pre) = self.memory_cache.lock().expect("cache lock").get(&id.0) {
            return Ok(Ok(TaskModule { id, pre }));
        }
        // One compile per module at a time: fifty workers sharing this runtime that receive
        // the same new module at once compiled it fifty times (issue 22).
        let gate = self
            .compiling
            .lock()
            .expect("compiling lock")
            .entry(id.0)
            .or_default()
            .clone();
        let loaded = {
            let _turn = gate.lock().expect("compile gate");
            self.load_uncached(wasm, id)
        };
        self.compiling.lock().expect("compiling lock").remove(&id.0);
        loaded
    }

    /// Modules compiled (not found in the memory or disk cache) since this runtime started.
    pub fn compiles(&self) -> u64 {
        self.compiles.load(Ordering::Relaxed)
    }

    /// [`Runtime::load`] once it holds the module's compile gate.
    fn load_uncached(&self, wasm: &[u8], id: ModuleId) -> Result<Result<TaskModule, String>> {
        // Compiled by the holder of the gate before us?
        if let Some(pre) = self.memory_cache.lock().expect("cache lock").get(&id.0) {
            return Ok(Ok(TaskModule { id, pre }));
        }
        let disk = self
            .config
            .cache_dir
            .as_ref()
            .map(|dir| cache::disk_path(dir, &self.compile_key, &id.0));
        let (module, from_disk) = match disk.as_deref().and_then(|p| cache::load(&self.engine, p)) {
            Some(m) => (m, true),
            None => {
                self.compiles.fetch_add(1, Ordering::Relaxed);
                let prepared = match metering::prepare(wasm, self.config.metering) {
                    Ok(p) => p,
                    Err(reason) => return Ok(Err(reason)),
                };
                match wasmtime::Module::new(&self.engine, &*prepared) {
                    Ok(m) => (m, false),
                    Err(e) => return Ok(Err(format!("{e:#}"))),
                }
            }
        };
        match module.get_export("_start") {
            Some(wasmtime::ExternType::Func(f))
                if f.params().len() == 0 && f.results().len() == 0 => {}
            Some(_) => return Ok(Err("`_start` is not a function of type [] -> []".into())),
            None => return Ok(Err("the module has no `_start` (not a WASI command)".into())),
        }
        let pre = match self.linker.instantiate_pre(&module) {
            Ok(p) => Arc::new(p),
            Err(e) => return Ok(Err(format!("{e:#}"))),
        };
        if let (Some(path), false) = (disk, from_disk) {
            cache::store(&module, &path)?;
        }
        self.memory_cache
            .lock()
            .expect("cache lock")
            .insert(id.0, pre.clone());
        Ok(Ok(TaskModule { id, pre }))
    }

    /// Runs a loaded module. Blocks the calling thread for the task's duration.
    pub fn run_module(
        &self,
        module: &TaskModule,
        input: &TaskInput,
        limits: &Limits,
    ) -> Result<Outcome> {
        self.check_limits(limits)?;
        check_files(input)?;
        sandbox::run(
            &self.engine,
            &module.pre,
            self.config.metering,
            self.watchdog.as_ref(),
            input,
            limits,
        )
    }

    /// Loads (or finds in the cache) and runs a module: the whole task in one call.
    pub fn run(&self, wasm: &[u8], input: &TaskInput, limits: &Limits) -> Result<Outcome> {
        self.check_limits(limits)?;
        match self.load(wasm, limits)? {
            Ok(module) => self.run_module(&module, input, limits),
            Err(reason) => Ok(Outcome::invalid(reason)),
        }
    }

    fn check_limits(&self, limits: &Limits) -> Result<()> {
        if limits.memory_bytes > self.config.max_memory_bytes {
            return Err(Error::Limit(format!(
                "memory_bytes {} is above this runtime's ceiling {}",
                limits.memory_bytes, self.config.max_memory_bytes
            )));
        }
        if limits.max_table_elements > self.config.max_table_elements {
            return Err(Error::Limit(format!(
                "max_table_elements {} is above this runtime's ceiling {}",
                limits.max_table_elements, self.config.max_table_elements
            )));
        }
        Ok(())
    }
}

/// Why `wasm` cannot be a module at all, before any parsing: it is empty or does not start
/// with the binary format's magic number and version 1. Any such bytes (garbage, text) are
/// an invalid module like any other, with a reason a person can act on.
fn not_a_module(wasm: &[u8]) -> Option<String> {
    if wasm.is_empty() {
        return Some("the module is empty (0 bytes)".into());
    }
    if !wasm.starts_with(b"\0asm") {
        return Some(format!(
            "not a WebAssembly binary: it starts with {:02x?}, not the magic number \\0asm",
            &wasm[..wasm.len().min(4)]
        ));
    }
    if wasm.get(4..8) != Some(&[1, 0, 0, 0][..]) {
        return Some("not a WebAssembly 1.0 binary module (its version is not 1)".into());
    }
    None
}

fn check_files(input: &TaskInput) -> Result<()> {
    let mut names = std::collections::BTreeSet::new();
    for (name, _) in &input.files {
        if !wasi::valid_name(name) {
            return Err(Error::Limit(format!("invalid input file name {name:?}")));
        }
        if !names.insert(name.as_str()) {
            return Err(Error::Limit(format!("input file {name:?} given twice")));
        }
    }
    Ok(())
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}
