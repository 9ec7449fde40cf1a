//! `Metering::Instrumented` (the `smartnodes-meter` rewrite) against `Metering::Wasmtime`
//! (engine fuel + NaN canonicalisation): the same verdicts, outputs and fuel counts on every
//! example and fixture, and out of fuel exactly at the budget.

use smartnodes_runtime::{
    Limits, Metering, Outcome, Runtime, RuntimeConfig, TaskInput, TrapCode, Verdict,
};
use std::path::PathBuf;
use std::sync::OnceLock;

fn runtime(metering: Metering) -> &'static Runtime {
    static WASMTIME: OnceLock<Runtime> = OnceLock::new();
    static INSTRUMENTED: OnceLock<Runtime> = OnceLock::new();
    let cell = match metering {
        Metering::Wasmtime => &WASMTIME,
        Metering::Instrumented => &INSTRUMENTED,
    };
    cell.get_or_init(|| {
        Runtime::new(RuntimeConfig {
            metering,
            ..RuntimeConfig::default()
        })
        .expect("runtime")
    })
}

fn limits() -> Limits {
    Limits {
        fuel: 200_000_000,
        memory_bytes: 64 << 20,
        max_output_bytes: 1 << 20,
        max_stderr_bytes: 4 << 10,
        ..Limits::DEFAULT
    }
}

fn run(metering: Metering, wasm: &[u8], input: &[u8], limits: &Limits) -> Outcome {
    runtime(metering)
        .run(wasm, &TaskInput::new(input), limits)
        .expect("host error")
}

/// Inputs per example: small, and a couple that exercise other paths.
fn inputs(name: &str) -> Vec<Vec<u8>> {
    let v: Vec<&[u8]> = match name {
        "wordcount" => vec![
            b"It was the best of times, it was the worst of times; it was the age of wisdom.",
            b"",
            "Ünïcode über x1 X1".as_bytes(),
        ],
        "primes" => vec![b"100000\n", b"2", b"many"],
        "sha256-chain" => vec![b"1000\nsmartnodes", b"1\n"],
        "mandelbrot" => vec![
            b"32 24 200 -2.0 -1.2 1.0 1.2",
            b"8 8 1000 -0.75 0.1 -0.74 0.11",
        ],
        "matmul" => vec![b"24 7", b"3 1"],
        other => panic!("no input for {other}"),
    };
    v.into_iter().map(<[u8]>::to_vec).collect()
}

fn assert_same(what: &str, a: &Outcome, b: &Outcome) {
    assert_eq!(
        a.verdict, b.verdict,
        "{what}: verdict ({} / {})",
        a.detail, b.detail
    );
    assert_eq!(a.output, b.output, "{what}: output");
    assert_eq!(a.output_hash, b.output_hash, "{what}: output hash");
    assert_eq!(a.fuel_used, b.fuel_used, "{what}: fuel");
}

/// Every example, several inputs: identical verdict, output and fuel under both meterings.
#[test]
fn examples_identical_under_both_meterings() {
    let mut completed = 0;
    for (name, _) in smartnodes_examples::ALL {
        let wasm = smartnodes_examples::module(name).unwrap();
        for input in inputs(name) {
            let a = run(Metering::Wasmtime, wasm, &input, &limits());
            let b = run(Metering::Instrumented, wasm, &input, &limits());
            assert_same(
                &format!("{name} {:?}", String::from_utf8_lossy(&input)),
                &a,
                &b,
            );
            completed += usize::from(a.verdict == Verdict::Completed);
        }
    }
    assert!(completed >= 10, "{completed}");
}

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/{name}.wat"));
    wat::parse_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every sandbox fixture: the same verdict and output under both meterings (fuel too when
/// the task ended through the host; a trap's fuel is the whole budget for both).
#[test]
fn fixtures_identical_under_both_meterings() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wat"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 10);
    let limits = Limits {
        fuel: 20_000_000,
        wall_clock_backstop: std::time::Duration::from_secs(30),
        ..limits()
    };
    for name in names {
        let wasm = fixture(&name);
        let a = run(Metering::Wasmtime, &wasm, b"some input\n", &limits);
        let b = run(Metering::Instrumented, &wasm, b"some input\n", &limits);
        assert_same(&name, &a, &b);
    }
}

/// Through the runtime: a task whose cost is F completes with a budget of F and runs out of
/// fuel with F - 1.
#[test]
fn out_of_fuel_exactly_at_the_budget() {
    for name in ["mandelbrot", "primes"] {
        let wasm = smartnodes_examples::module(name).unwrap();
        let input = &inputs(name)[0];
        let full = run(Metering::Instrumented, wasm, input, &limits());
        assert_eq!(full.verdict, Verdict::Completed);
        let f = full.fuel_used;
        let exact = Limits {
            fuel: f,
            ..limits()
        };
        let o = run(Metering::Instrumented, wasm, input, &exact);
        assert_eq!((o.verdict, o.fuel_used), (Verdict::Completed, f), "{name}");
        let short = Limits {
            fuel: f - 1,
            ..limits()
        };
        let o = run(Metering::Instrumented, wasm, input, &short);
        assert_eq!(o.verdict, Verdict::OutOfFuel, "{name}");
    }
}

/// Unbounded recursion stops at the rewrite's depth limit: the same verdict and fuel on
/// every run (the engine's native limit is never reached).
#[test]
fn recursion_stops_at_the_depth_limit() {
    let wasm = fixture("infinite_recursion");
    let a = run(Metering::Instrumented, &wasm, b"", &limits());
    assert_eq!(a.verdict, Verdict::Trapped(TrapCode::StackOverflow));
    for _ in 0..3 {
        let b = run(Metering::Instrumented, &wasm, b"", &limits());
        assert_same("infinite_recursion", &a, &b);
    }
}

#[test]
fn fingerprints_differ_between_meterings() {
    let a = runtime(Metering::Wasmtime);
    let b = runtime(Metering::Instrumented);
    assert_ne!(a.fingerprint(), b.fingerprint());
    assert!(b
        .fingerprint_description()
        .contains(smartnodes_meter::VERSION));
}

const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/meter/tests/fixtures/runtime_examples.golden"
);

/// `(verdict, output_hash, fuel_used)` of every example input and fixture under both
/// meterings, against a committed file. Run natively and, built for aarch64, under qemu
/// (`runtime/meter/scripts/cross-arch.sh`): the same file on both architectures.
/// `METER_BLESS=1` rewrites it.
#[test]
fn same_results_as_the_golden_file() {
    let mut lines = Vec::new();
    let mut cases: Vec<(String, Vec<u8>, Vec<u8>)> = Vec::new();
    for (name, _) in smartnodes_examples::ALL {
        for input in inputs(name) {
            let label = format!("{name} {:?}", String::from_utf8_lossy(&input));
            cases.push((
                label,
                smartnodes_examples::module(name).unwrap().to_vec(),
                input,
            ));
        }
    }
    for name in [
        "nan",
        "clock_random",
        "infinite_loop",
        "infinite_recursion",
        "echo",
    ] {
        cases.push((name.to_string(), fixture(name), b"some input\n".to_vec()));
    }
    let limits = Limits {
        fuel: 20_000_000,
        ..limits()
    };
    for (label, wasm, input) in &cases {
        for metering in [Metering::Wasmtime, Metering::Instrumented] {
            let o = run(metering, wasm, input, &limits);
            lines.push(format!(
                "{label} {metering:?}: {} {} fuel={}",
                o.verdict,
                o.output_hash.map(hex).unwrap_or_default(),
                o.fuel_used
            ));
        }
    }
    let got = lines.join("\n") + "\n";
    if std::env::var_os("METER_BLESS").is_some() {
        std::fs::write(GOLDEN, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(GOLDEN).expect("golden file (METER_BLESS=1 writes it)");
    for (g, w) in got.lines().zip(want.lines()) {
        assert_eq!(g, w, "on {}", std::env::consts::ARCH);
    }
    assert_eq!(got.lines().count(), want.lines().count());
}

fn hex(bytes: impl AsRef<[u8]>) -> String {
    bytes.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}
