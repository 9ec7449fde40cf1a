//! `native-timer`: runs the example tasks natively on their benchmark workloads and reports
//! how long each run took, measured in this process (so process start-up is not counted).
//!
//! Built by [`smartnodes_examples::portable::NativeTimer`] twice, in target directories of
//! its own: without features it is the benchmarks' "native" column; with the `portable`
//! feature, their "native, portable" baseline: the same code without the CPU-specific paths
//! that wasm cannot use (`sha2`'s SHA extensions). Cargo unifies features within one build,
//! so the baselines live in separate binaries, and both are timed the same way.
//!
//! Protocol (line based): read an example name, run it once on
//! `smartnodes_examples::workload(name)` (after one untimed warm-up run on the first
//! request for it), answer `<nanoseconds> <output hash, 16 hex>` or
//! `error <message>`. A first line `features` is answered with the build's features.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::time::Instant;

use smartnodes_examples::portable::output_hash;

fn main() {
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    let mut inputs: HashMap<String, Vec<u8>> = HashMap::new();
    for line in stdin.lock().lines() {
        let name = line.expect("reading a request");
        let name = name.trim();
        let answer = if name == "features" {
            smartnodes_examples::portable::FEATURES.to_string()
        } else if smartnodes_examples::module(name).is_none() {
            format!("error no example {name:?}")
        } else {
            let input = inputs.entry(name.to_string()).or_insert_with(|| {
                let input = smartnodes_examples::workload(name).unwrap_or_default();
                // One untimed warm-up run, as the benchmark does in its own process.
                let _ = smartnodes_examples::native(name, &input);
                input
            });
            let t = Instant::now();
            let out = smartnodes_examples::native(name, input).expect("an example");
            let elapsed = t.elapsed();
            match out {
                Ok(out) => format!("{} {:016x}", elapsed.as_nanos(), output_hash(&out)),
                Err(e) => format!("error {name}: {e}"),
            }
        };
        writeln!(stdout, "{answer}").expect("writing an answer");
        stdout.flush().expect("writing an answer");
    }
}
