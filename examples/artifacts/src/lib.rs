//! The example tasks compiled to `wasm32-wasip1`, embedded as bytes.
//!
//! The build script compiles `examples/{wordcount,primes,sha256-chain,mandelbrot,matmul}`
//! with a nested `cargo build --release --target wasm32-wasip1` (into `target/guests`), so
//! tests, benchmarks and the node always run the current sources.

include!(concat!(env!("OUT_DIR"), "/examples.rs"));

/// An example task written in another language than Rust, to the same spec as a Rust twin.
#[derive(Debug, Clone, Copy)]
pub struct Foreign {
    /// Its name: the twin's name and the language (`wordcount-c`).
    pub name: &'static str,
    /// The Rust example it must equal byte for byte (a name in [`ALL`]).
    pub twin: &'static str,
    /// The language.
    pub language: &'static str,
    /// The source, relative to `examples/foreign/`.
    pub source: &'static str,
    /// The module, built by `examples/foreign/build.sh` and committed (so no build here
    /// needs a toolchain beyond Rust; `MANIFEST` there catches a module that drifted from
    /// its source).
    pub wasm: &'static [u8],
}

/// The example tasks in C, Zig and AssemblyScript (`examples/foreign/`).
pub const FOREIGN: &[Foreign] = &[
    Foreign {
        name: "wordcount-c",
        twin: "wordcount",
        language: "C",
        source: "c/wordcount.c",
        wasm: include_bytes!("../../foreign/wasm/wordcount-c.wasm"),
    },
    Foreign {
        name: "mandelbrot-c",
        twin: "mandelbrot",
        language: "C",
        source: "c/mandelbrot.c",
        wasm: include_bytes!("../../foreign/wasm/mandelbrot-c.wasm"),
    },
    Foreign {
        name: "primes-zig",
        twin: "primes",
        language: "Zig",
        source: "zig/primes.zig",
        wasm: include_bytes!("../../foreign/wasm/primes-zig.wasm"),
    },
    Foreign {
        name: "sha256-chain-as",
        twin: "sha256-chain",
        language: "AssemblyScript",
        source: "assemblyscript/sha256-chain.ts",
        wasm: include_bytes!("../../foreign/wasm/sha256-chain-as.wasm"),
    },
];

/// The module of the example task `name` (a package name in [`ALL`] or a name in
/// [`FOREIGN`]), if there is one.
pub fn module(name: &str) -> Option<&'static [u8]> {
    ALL.iter()
        .find(|(n, _)| *n == name)
        .map(|(_, wasm)| *wasm)
        .or_else(|| FOREIGN.iter().find(|f| f.name == name).map(|f| f.wasm))
}

/// Every example's name: [`ALL`]'s, then [`FOREIGN`]'s.
pub fn names() -> Vec<&'static str> {
    ALL.iter()
        .map(|(n, _)| *n)
        .chain(FOREIGN.iter().map(|f| f.name))
        .collect()
}

/// Runs the example task `name` natively (the same library code the wasm module is built
/// from). `None` when there is no such example.
pub fn native(name: &str, input: &[u8]) -> Option<Result<Vec<u8>, String>> {
    Some(match name {
        "wordcount" => wordcount::run(input),
        "primes" => primes::run(input),
        "sha256-chain" => sha256_chain::run(input),
        "mandelbrot" => mandelbrot::run(input),
        "matmul" => matmul::run(input),
        _ => return None,
    })
}

/// A benchmark input for the example task `name`: a fraction of a second of native work.
/// `None` when there is no such example.
pub fn workload(name: &str) -> Option<Vec<u8>> {
    Some(match name {
        "wordcount" => {
            // 4 MiB of pseudo-random text over a small vocabulary plus rarer words.
            let words = [
                "lorem",
                "ipsum",
                "dolor",
                "sit",
                "amet",
                "consectetur",
                "adipiscing",
                "elit",
                "sed",
                "do",
            ];
            let mut text = Vec::with_capacity(4 << 20);
            let mut x: u64 = 1;
            while text.len() < 4 << 20 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                text.extend_from_slice(words[(x >> 33) as usize % words.len()].as_bytes());
                text.extend_from_slice(if x.is_multiple_of(7) { b".\n" } else { b" " });
                if x.is_multiple_of(13) {
                    text.extend_from_slice(format!("w{} ", x % 5000).as_bytes());
                }
            }
            text
        }
        "primes" => b"20000000".to_vec(),
        "sha256-chain" => b"300000\nsmartnodes".to_vec(),
        "mandelbrot" => b"400 300 500 -2.0 -1.2 1.0 1.2".to_vec(),
        "matmul" => b"200 7".to_vec(),
        _ => return None,
    })
}

pub mod portable {
    //! The "native, portable" baseline: the example tasks compiled natively without the
    //! CPU-specific code paths that wasm cannot use, run in a helper process
    //! (`native-timer`) because Cargo unifies features within one build.
    //!
    //! What the plain native build uses that a wasm module cannot: `sha256-chain` goes
    //! through the `sha2` crate, which detects the CPU's SHA extensions (SHA-NI on x86-64)
    //! at run time and uses them; the portable build turns that off (`sha2/force-soft`).
    //! The other tasks have no such paths: they are plain Rust, compiled for the default
    //! target CPU (x86-64 baseline, 128-bit SSE2 vectors: the same width as wasm's
    //! `simd128`), so their portable and plain native builds are the same code.

    use std::io::{BufRead, BufReader, Write};
    use std::path::{Path, PathBuf};
    use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
    use std::time::Duration;

    /// The features of this build, as `native-timer` reports them.
    pub const FEATURES: &str = if cfg!(feature = "portable") {
        "portable"
    } else {
        "default"
    };

    /// FNV-1a of an output: how `native-timer` reports what it computed.
    pub fn output_hash(out: &[u8]) -> u64 {
        out.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    }

    /// A running `native-timer`.
    #[derive(Debug)]
    pub struct NativeTimer {
        child: Child,
        stdin: ChildStdin,
        stdout: BufReader<ChildStdout>,
    }

    impl NativeTimer {
        /// A bench's two baselines, default then portable, built into the target directory
        /// of the bench's `CARGO_TARGET_TMPDIR` (which is `<target>/tmp`). Panics when one
        /// cannot be built or started: a bench without its baseline has nothing to compare.
        pub fn pair(cargo_target_tmpdir: &Path) -> (NativeTimer, NativeTimer) {
            let target_dir = cargo_target_tmpdir.parent().expect("a target directory");
            let start = |portable| {
                NativeTimer::start(target_dir, portable)
                    .expect("building and starting native-timer")
            };
            (start(false), start(true))
        }

        /// Builds `native-timer` (release; with `--features portable` when `portable`)
        /// into `target_dir/native-timer-{portable,default}` with the `cargo` found in
        /// `$CARGO` (or on the path) and starts it. The build is a separate one so that its
        /// features do not leak into the caller's. Both baselines are measured this way,
        /// so that they differ only in the code: a native run inside a benchmark process
        /// that has done other work (allocated and freed wasm memories, say) is not timed
        /// under the same conditions as one in a fresh process.
        pub fn start(target_dir: &Path, portable: bool) -> std::io::Result<Self> {
            let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../..")
                .canonicalize()?;
            let features = if portable { "portable" } else { "default" };
            let build_dir = target_dir.join(format!("native-timer-{features}"));
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut build = Command::new(cargo);
            build
                .current_dir(&workspace)
                .args([
                    "build",
                    "--quiet",
                    "--release",
                    "-p",
                    "smartnodes-examples",
                    "--bin",
                    "native-timer",
                    "--target-dir",
                ])
                .arg(&build_dir)
                // The guests are the same either way: share the caller's build of them.
                .env("SMARTNODES_GUEST_TARGET_DIR", target_dir.join("guests"))
                .env_remove("CARGO_TARGET_DIR");
            if portable {
                build.args(["--features", "portable"]);
            }
            let status = build.status()?;
            if !status.success() {
                return Err(std::io::Error::other(format!(
                    "building native-timer failed ({status})"
                )));
            }
            let exe: PathBuf = build_dir.join("release").join("native-timer");
            let mut child = Command::new(&exe)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()?;
            let stdin = child.stdin.take().expect("piped stdin");
            let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
            let mut timer = NativeTimer {
                child,
                stdin,
                stdout,
            };
            let reported = timer.ask("features")?;
            if reported != features {
                return Err(std::io::Error::other(format!(
                    "native-timer reports features {reported:?}, not {features:?}"
                )));
            }
            Ok(timer)
        }

        fn ask(&mut self, line: &str) -> std::io::Result<String> {
            writeln!(self.stdin, "{line}")?;
            self.stdin.flush()?;
            let mut answer = String::new();
            if self.stdout.read_line(&mut answer)? == 0 {
                return Err(std::io::Error::other("native-timer exited"));
            }
            Ok(answer.trim_end().to_string())
        }

        /// Runs the example `name` once on its [`workload`](crate::workload): (time, output
        /// hash).
        pub fn run(&mut self, name: &str) -> std::io::Result<(Duration, u64)> {
            let answer = self.ask(name)?;
            let parsed = answer.split_once(' ').and_then(|(nanos, hash)| {
                Some((
                    Duration::from_nanos(nanos.parse().ok()?),
                    u64::from_str_radix(hash, 16).ok()?,
                ))
            });
            parsed.ok_or_else(|| std::io::Error::other(format!("native-timer: {answer}")))
        }
    }

    impl Drop for NativeTimer {
        fn drop(&mut self) {
            // Stop it and reap it, so that no zombie is left.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_module_is_wasm() {
        assert_eq!(super::ALL.len(), 5);
        for (name, wasm) in super::ALL {
            assert_eq!(&wasm[..4], b"\0asm", "{name}");
        }
        assert!(super::module("primes").is_some());
        assert!(super::module("nope").is_none());
        assert_eq!(super::native("primes", b"10"), Some(Ok(b"4 7\n".to_vec())));
        assert!(super::native("nope", b"").is_none());
        for (name, _) in super::ALL {
            assert!(super::workload(name).is_some(), "{name}");
        }
    }

    /// The guests are built with wasm SIMD: rustc lists the enabled features in the
    /// module's `target_features` custom section (`+`, length 7, `simd128`).
    #[test]
    fn guests_are_built_with_simd128() {
        for (name, wasm) in super::ALL {
            assert!(
                wasm.windows(9).any(|w| w == b"+\x07simd128"),
                "{name} was built without simd128"
            );
        }
    }

    #[test]
    fn output_hash_is_fnv1a() {
        use super::portable::output_hash;
        assert_eq!(output_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(output_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}

/// What the benchmarks that run these examples summarise their rounds with.
pub mod stats {
    use std::time::Duration;

    /// The median of `xs` (the upper one of an even count); `xs` must not be empty.
    pub fn median(mut xs: Vec<Duration>) -> Duration {
        xs.sort();
        xs[xs.len() / 2]
    }

    /// The geometric mean of `xs` (ratios).
    pub fn geomean(xs: &[f64]) -> f64 {
        (xs.iter().map(|r| r.ln()).sum::<f64>() / xs.len() as f64).exp()
    }

    /// The shortest of `runs` calls of `time` (at least one), each returning how long its
    /// run took.
    pub fn best_of(runs: usize, mut time: impl FnMut() -> Duration) -> Duration {
        (0..runs.max(1))
            .map(|_| time())
            .min()
            .expect("at least one run")
    }

    /// The largest of `xs` (ratios; 0 for none).
    pub fn worst(xs: &[f64]) -> f64 {
        xs.iter().cloned().fold(0.0, f64::max)
    }

    /// How many interleaved rounds the benchmarks run: the environment variable `var`
    /// when it is a number, else 7.
    pub fn rounds_from_env(var: &str) -> usize {
        std::env::var(var)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(7)
    }

    /// `/proc/loadavg`, or "unknown" where there is none: printed at a benchmark's start
    /// and end.
    pub fn loadavg() -> String {
        std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into())
    }

    /// How many runs per round the benchmarks time: the environment variable `var` when
    /// it is a positive number, else 3.
    pub fn best_of_from_env(var: &str) -> usize {
        std::env::var(var)
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|k| *k > 0)
            .unwrap_or(3)
    }
}
