//! # smartnodes-guest
//!
//! What a Smartnodes task author links. A task is a WASI preview1 *command*: it reads its
//! whole input from stdin and writes its output to stdout; stderr is a bounded log. This
//! crate makes that pleasant and keeps the same program runnable natively, so every task
//! can be compared with native code:
//!
//! ```no_run
//! // src/main.rs of a task crate
//! fn shout(input: String) -> String {
//!     input.to_uppercase()
//! }
//! smartnodes_guest::main!(shout);
//! ```
//!
//! `cargo build --release --target wasm32-wasip1` gives the task module; `cargo build
//! --release` gives a native binary that reads stdin and writes stdout exactly alike.
//!
//! ## Layout
//! - [`main!`]: the entry macro. The task is a plain function `fn(I) -> O` where `I:`
//!   [`FromInput`] (`Vec<u8>`, `String`, [`Json<T>`]) and `O:` [`IntoOutput`] (`Vec<u8>`,
//!   `String`, `&str`, [`Json<T>`], or `Result<O, E>` where an `Err` becomes exit code 1
//!   with the error on stderr).
//! - [`input`], [`output`], [`log`]: the raw I/O, for tasks that want it.
//! - [`Rng`]: a deterministic random number generator. Under Smartnodes the host seeds the
//!   WASI random source from the job, so [`Rng::from_host`] gives the same stream on every
//!   machine for the same task; [`Rng::from_seed`] gives a stream from an explicit seed.
//!
//! - [`small_alloc`]: the global allocator of wasm tasks (feature `small-alloc`, on by
//!   default): per-size free lists for small blocks in front of the system allocator.
//!
//! The crate has no dependency on the host runtime. Its only unsafe code is the allocator
//! and the look at stdin's size in [`input`].

#[allow(unsafe_code)]
pub mod small_alloc;

use std::fmt::Display;
use std::io::{Read, Write};

/// Reads the whole task input (stdin).
///
/// Under WASI the buffer is sized once from the size the host reports for stdin (the
/// Smartnodes runtime reports the input not read yet), instead of growing by doubling:
/// for a 4 MiB input that saved a tenth of `wordcount`'s run (the copies of every
/// growth, and the page faults of the memory they touched).
///
/// # Panics
/// Panics when stdin cannot be read, which under Smartnodes never happens.
pub fn input() -> Vec<u8> {
    let mut buf = Vec::new();
    // A size the host cannot give, or that cannot be reserved, just means growing.
    let _ = buf.try_reserve_exact(stdin_size());
    std::io::stdin()
        .lock()
        .read_to_end(&mut buf)
        .expect("reading the task input from stdin");
    buf
}

/// The size the host reports for stdin, or 0.
#[cfg(target_os = "wasi")]
#[allow(unsafe_code)]
fn stdin_size() -> usize {
    use std::os::wasi::io::FromRawFd;
    // SAFETY: descriptor 0 is stdin, open for the whole run; `ManuallyDrop` keeps this
    // `File` from closing it, and it is only asked for its metadata.
    let stdin = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(0) });
    stdin
        .metadata()
        .map_or(0, |m| usize::try_from(m.len()).unwrap_or(0))
}

/// The size the host reports for stdin: natively nothing is assumed.
#[cfg(not(target_os = "wasi"))]
fn stdin_size() -> usize {
    0
}

/// Writes bytes to the task output (stdout) and flushes it.
///
/// # Panics
/// Panics when stdout cannot be written, for example when the output is larger than the
/// job allows (the host then ends the task with the `output_too_large` verdict anyway).
pub fn output(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes).expect("writing the task output");
    out.flush().expect("flushing the task output");
}

/// Writes one line to the task's log (stderr). The host keeps a bounded prefix of it.
pub fn log(line: impl Display) {
    // A log line that cannot be written is not worth failing the task for.
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// An input decoding failure, reported on stderr with exit code 2.
#[derive(Debug)]
pub struct InputError(pub String);

impl Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid task input: {}", self.0)
    }
}

/// A type a task can take as its input.
pub trait FromInput: Sized {
    /// Decodes the whole input.
    fn from_input(bytes: Vec<u8>) -> Result<Self, InputError>;
}

impl FromInput for Vec<u8> {
    fn from_input(bytes: Vec<u8>) -> Result<Self, InputError> {
        Ok(bytes)
    }
}

impl FromInput for String {
    fn from_input(bytes: Vec<u8>) -> Result<Self, InputError> {
        String::from_utf8(bytes).map_err(|e| InputError(format!("not UTF-8: {e}")))
    }
}

/// JSON input or output through serde: `fn task(Json(req): Json<Request>) -> Json<Reply>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Json<T>(pub T);

impl<T: serde::de::DeserializeOwned> FromInput for Json<T> {
    fn from_input(bytes: Vec<u8>) -> Result<Self, InputError> {
        serde_json::from_slice(&bytes)
            .map(Json)
            .map_err(|e| InputError(format!("not the expected JSON: {e}")))
    }
}

/// A type a task can return as its output.
pub trait IntoOutput {
    /// The bytes to write to stdout, or a message for stderr and a non-zero exit code.
    fn into_output(self) -> Result<Vec<u8>, String>;
}

impl IntoOutput for Vec<u8> {
    fn into_output(self) -> Result<Vec<u8>, String> {
        Ok(self)
    }
}

impl IntoOutput for String {
    fn into_output(self) -> Result<Vec<u8>, String> {
        Ok(self.into_bytes())
    }
}

impl IntoOutput for &str {
    fn into_output(self) -> Result<Vec<u8>, String> {
        Ok(self.as_bytes().to_vec())
    }
}

impl<T: serde::Serialize> IntoOutput for Json<T> {
    fn into_output(self) -> Result<Vec<u8>, String> {
        serde_json::to_vec(&self.0).map_err(|e| format!("encoding the JSON output: {e}"))
    }
}

impl<O: IntoOutput, E: Display> IntoOutput for Result<O, E> {
    fn into_output(self) -> Result<Vec<u8>, String> {
        match self {
            Ok(o) => o.into_output(),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Runs a task function: decodes stdin, calls it, writes stdout. Used by [`main!`].
///
/// Exit codes: 0 success, 1 the task returned an error, 2 the input could not be decoded.
pub fn run_task<I: FromInput, O: IntoOutput>(task: impl FnOnce(I) -> O) -> ! {
    let input = match I::from_input(input()) {
        Ok(i) => i,
        Err(e) => {
            log(&e);
            std::process::exit(2);
        }
    };
    match task(input).into_output() {
        Ok(bytes) => {
            output(&bytes);
            std::process::exit(0)
        }
        Err(message) => {
            log(message);
            std::process::exit(1)
        }
    }
}

/// Declares `fn main` for a task: `smartnodes_guest::main!(my_task);` where
/// `fn my_task(input: I) -> O`. See the crate docs for the accepted types.
#[macro_export]
macro_rules! main {
    ($task:path) => {
        fn main() {
            $crate::run_task($task)
        }
    };
}

/// A deterministic random number generator (xoshiro256**, seeded through SplitMix64).
///
/// Not for cryptography; for simulations, sampling and test data that must be identical
/// on every machine that runs the same task.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator seeded from the host's random source. Under Smartnodes that source is
    /// a ChaCha20 stream keyed by the job and task, so the stream is the same on every
    /// worker that runs this task. Natively it is the operating system's randomness.
    pub fn from_host() -> Self {
        let mut seed = [0u8; 32];
        // On wasm32-wasip1 this is WASI `random_get`, which the Smartnodes host answers
        // from the task's seeded ChaCha20 stream.
        getrandom::fill(&mut seed).expect("the host random source");
        Self::from_seed(seed)
    }

    /// A generator from an explicit 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let mut sm = seed.chunks(8).fold(0u64, |acc, c| {
            acc ^ u64::from_le_bytes(c.try_into().expect("8 bytes"))
        });
        let mut s = [0u64; 4];
        for (i, slot) in s.iter_mut().enumerate() {
            let word = u64::from_le_bytes(seed[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
            *slot = word ^ splitmix64(&mut sm);
        }
        if s == [0; 4] {
            s[0] = 1;
        }
        Rng { s }
    }

    /// A generator from a `u64` seed.
    pub fn seed_from_u64(seed: u64) -> Self {
        let mut sm = seed;
        let mut bytes = [0u8; 32];
        for chunk in bytes.chunks_mut(8) {
            chunk.copy_from_slice(&splitmix64(&mut sm).to_le_bytes());
        }
        Self::from_seed(bytes)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// A float uniformly distributed in `[0, 1)` (53 random bits).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// An integer uniformly distributed in `0..bound` (`bound > 0`), without modulo bias.
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "Rng::below needs a positive bound");
        let zone = u64::MAX - (u64::MAX - bound + 1) % bound;
        loop {
            let v = self.next_u64();
            if v <= zone {
                return v % bound;
            }
        }
    }

    /// Fills `buf` with random bytes.
    pub fn fill_bytes(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_for_a_seed() {
        let mut a = Rng::from_seed([7; 32]);
        let mut b = Rng::from_seed([7; 32]);
        let xs: Vec<u64> = (0..16).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..16).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        let mut c = Rng::from_seed([8; 32]);
        assert_ne!(xs[0], c.next_u64());
    }

    #[test]
    fn rng_outputs_are_not_a_repeated_value() {
        // METERING.md: a "seeded" source that repeats its seed bytes is no RNG.
        let mut r = Rng::from_seed([0; 32]);
        let mut bytes = [0u8; 64];
        r.fill_bytes(&mut bytes);
        let distinct: std::collections::BTreeSet<u8> = bytes.iter().copied().collect();
        assert!(distinct.len() > 20, "too few distinct bytes: {distinct:?}");
    }

    #[test]
    fn below_and_f64_stay_in_range() {
        let mut r = Rng::seed_from_u64(42);
        for _ in 0..10_000 {
            assert!(r.below(7) < 7);
            let f = r.next_f64();
            assert!((0.0..1.0).contains(&f));
        }
    }

    #[test]
    fn typed_io_round_trips() {
        assert_eq!(String::from_input(b"hi".to_vec()).unwrap(), "hi");
        assert!(String::from_input(vec![0xff]).is_err());
        let Json(v): Json<Vec<u32>> = Json::from_input(b"[1,2]".to_vec()).unwrap();
        assert_eq!(v, vec![1, 2]);
        assert_eq!(Json(vec![3u8]).into_output().unwrap(), b"[3]");
        let failed: Result<String, &str> = Err("boom");
        assert_eq!(failed.into_output().unwrap_err(), "boom");
    }
}
