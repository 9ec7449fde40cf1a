//! `smartnodes run`: one task in the local sandbox.

use anyhow::{bail, Context, Result};
use smartnodes_runtime::{Limits, ModuleId, Outcome, Runtime, RuntimeConfig, TaskInput, Verdict};
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

/// Arguments of `smartnodes run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The task module: a binary wasm file, a WebAssembly text file (.wat), or
    /// `example:NAME` for an example task built into this binary (wordcount, primes,
    /// sha256-chain, mandelbrot, matmul; wordcount-c, mandelbrot-c, primes-zig,
    /// sha256-chain-as). Any other bytes are run too: they give the verdict invalid_module.
    pub module: PathBuf,
    /// The task's input: a file, or `-` for stdin. Default: stdin when it is piped,
    /// otherwise empty.
    #[arg(long, value_name = "FILE|-")]
    pub input: Option<String>,
    /// Fuel budget (about one unit per wasm instruction).
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT.fuel)]
    pub fuel: u64,
    /// Largest linear memory, in MiB.
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT.memory_bytes >> 20,
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub memory_mib: u64,
    /// Largest output (stdout), in bytes.
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT.max_output_bytes)]
    pub max_output_bytes: u64,
    /// Seed of the task's random source: 64 hex digits (32 bytes). Default: all zeros.
    #[arg(long, value_name = "HEX", value_parser = parse_seed)]
    pub seed: Option<[u8; 32]>,
    /// Print one JSON object (verdict, fuel_used, output_hash, output_len, detail, stderr)
    /// instead of the task's output.
    #[arg(long)]
    pub json: bool,
    /// How fuel is counted. `instrumented` (default, the network's engine): the module is
    /// rewritten to count its own fuel and call depth (runtime/meter), about the speed of
    /// unmetered wasm, with a wall-clock backstop polled once per slice of fuel.
    /// `wasmtime`: the engine's fuel and NaN canonicalisation (the test oracle; 2x-5x
    /// slower on float loops), with the same verdict, output and fuel except for a too-deep
    /// recursion (native stack, not reproducible across machines). The engine fingerprint
    /// differs between the two.
    #[arg(long, value_enum, default_value_t = MeteringArg::Instrumented)]
    pub metering: MeteringArg,
    /// Where compiled modules are kept between runs, so that running a module again skips
    /// compiling it (files named by the module's hash and the engine's compile key).
    /// Default: $XDG_CACHE_HOME/smartnodes/modules, else ~/.cache/smartnodes/modules; when
    /// the default cannot be created the module is compiled every time.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Compile the module every time and keep nothing on disk.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
}

/// The module cache `smartnodes run` uses: `--cache-dir` (created, or an error), else the
/// default (created, or none with a warning), none with `--no-cache`.
fn cache_dir(args: &RunArgs) -> Result<Option<PathBuf>> {
    if args.no_cache {
        return Ok(None);
    }
    if let Some(dir) = &args.cache_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the module cache {}", dir.display()))?;
        return Ok(Some(dir.clone()));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        });
    let Some(dir) = base.map(|b| b.join("smartnodes").join("modules")) else {
        return Ok(None);
    };
    match std::fs::create_dir_all(&dir) {
        Ok(()) => Ok(Some(dir)),
        Err(e) => {
            eprintln!(
                "smartnodes run: no module cache ({}: {e}); compiling every time",
                dir.display()
            );
            Ok(None)
        }
    }
}

/// `--metering`: see [`RunArgs::metering`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MeteringArg {
    /// wasmtime's fuel and NaN canonicalisation (the test oracle).
    Wasmtime,
    /// The in-wasm meter (`smartnodes-meter`): the default, as on the network.
    Instrumented,
}

fn parse_seed(s: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(s).map_err(|e| format!("not hex: {e}"))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("expected 32 bytes (64 hex digits), got {}", b.len()))
}

/// Reads a module file, translating WebAssembly text to binary; `example:NAME` is an
/// example task built into this binary. A file that is neither binary wasm nor
/// WebAssembly text is returned as it is: running it gives the verdict `invalid_module`
/// (the module is whatever bytes the file holds), not an error.
pub fn read_module(path: &std::path::Path) -> Result<Vec<u8>> {
    Ok(read_module_file(path)?.0)
}

/// [`read_module`], plus why the file is not WebAssembly text when it looked like neither
/// binary wasm nor text (`None` when it was one of the two).
fn read_module_file(path: &std::path::Path) -> Result<(Vec<u8>, Option<String>)> {
    if let Some(name) = path.to_str().and_then(|p| p.strip_prefix("example:")) {
        return smartnodes_examples::module(name)
            .map(|wasm| (wasm.to_vec(), None))
            .with_context(|| {
                let names = smartnodes_examples::names().join(", ");
                format!("no example task {name:?}; there are: {names}")
            });
    }
    let bytes =
        std::fs::read(path).with_context(|| format!("reading the module {}", path.display()))?;
    if bytes.is_empty() || bytes.starts_with(b"\0asm") {
        return Ok((bytes, None));
    }
    match wat::parse_bytes(&bytes) {
        Ok(wasm) => Ok((wasm.into_owned(), None)),
        Err(e) => Ok((bytes, Some(format!("nor WebAssembly text: {e}")))),
    }
}

fn read_input(input: Option<&str>) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    match input {
        Some("-") => {
            std::io::stdin()
                .lock()
                .read_to_end(&mut buf)
                .context("reading the input from stdin")?;
        }
        Some(path) => {
            buf = std::fs::read(path).with_context(|| format!("reading the input {path}"))?;
        }
        None if !std::io::stdin().is_terminal() => {
            std::io::stdin()
                .lock()
                .read_to_end(&mut buf)
                .context("reading the input from stdin")?;
        }
        None => {}
    }
    Ok(buf)
}

/// The JSON object `--json` prints.
pub fn outcome_json(outcome: &Outcome, module: ModuleId, fingerprint: &str) -> serde_json::Value {
    serde_json::json!({
        "verdict": outcome.verdict.as_str(),
        "fuel_used": outcome.fuel_used,
        "output_hash": outcome.output_hash_hex(),
        "output_len": outcome.output.len(),
        "detail": outcome.detail,
        "stderr": String::from_utf8_lossy(&outcome.stderr),
        "module_id": module.to_hex(),
        "engine_fingerprint": fingerprint,
    })
}

/// Runs the command; returns the process exit status (0 completed, 1 another verdict).
pub fn run(args: RunArgs) -> Result<u8> {
    let (wasm, not_text) = read_module_file(&args.module)?;
    let input = read_input(args.input.as_deref())?;
    let limits = Limits {
        fuel: args.fuel,
        memory_bytes: args.memory_mib << 20,
        max_output_bytes: args.max_output_bytes,
        ..Limits::DEFAULT
    };
    if args.fuel == 0 {
        bail!("--fuel must be at least 1");
    }
    let runtime = Runtime::new(RuntimeConfig {
        allocator: smartnodes_runtime::Allocator::OnDemand,
        metering: match args.metering {
            MeteringArg::Wasmtime => smartnodes_runtime::Metering::Wasmtime,
            MeteringArg::Instrumented => smartnodes_runtime::Metering::Instrumented,
        },
        cache_dir: cache_dir(&args)?,
        ..RuntimeConfig::default()
    })
    .context("starting the sandbox")?;
    let task = TaskInput::new(input).with_seed(args.seed.unwrap_or([0; 32]));
    let mut outcome = runtime
        .run(&wasm, &task, &limits)
        .context("running the task")?;
    if let (Verdict::InvalidModule, Some(why)) = (outcome.verdict, not_text) {
        outcome.detail = format!("{}; {why}", outcome.detail);
    }

    let mut stdout = std::io::stdout().lock();
    if args.json {
        let json = outcome_json(
            &outcome,
            ModuleId::of(&wasm),
            &runtime.fingerprint().to_hex(),
        );
        writeln!(stdout, "{json}").context("writing to stdout")?;
    } else {
        std::io::stderr().write_all(&outcome.stderr).ok();
        stdout
            .write_all(&outcome.output)
            .context("writing the output to stdout")?;
    }
    stdout.flush().context("writing to stdout")?;
    if outcome.verdict == Verdict::Completed {
        Ok(0)
    } else {
        let detail = if outcome.detail.is_empty() {
            String::new()
        } else {
            format!(": {}", outcome.detail)
        };
        eprintln!(
            "smartnodes run: {} after {} fuel{}",
            outcome.verdict,
            outcome.fuel_used,
            detail.replace('\n', " ")
        );
        Ok(1)
    }
}
