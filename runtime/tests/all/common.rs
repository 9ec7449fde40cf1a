use smartnodes_runtime::{Limits, Outcome, Runtime, RuntimeConfig, TaskInput};
use std::path::PathBuf;
use std::sync::OnceLock;

/// A `.wat` fixture from `tests/fixtures`, as binary wasm.
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.wat"));
    wat::parse_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The names of every fixture.
pub(crate) fn fixture_names() -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wat"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// One shared runtime with the default (pooling) configuration.
pub(crate) fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| Runtime::new(RuntimeConfig::default()).expect("runtime"))
}

/// Limits small enough that hostile fixtures end quickly.
pub(crate) fn test_limits() -> Limits {
    Limits {
        fuel: 200_000_000,
        memory_bytes: 64 << 20,
        max_output_bytes: 1 << 20,
        max_stderr_bytes: 4 << 10,
        ..Limits::DEFAULT
    }
}

pub(crate) fn run(wasm: &[u8], input: &[u8]) -> Outcome {
    runtime()
        .run(wasm, &TaskInput::new(input), &test_limits())
        .expect("host error")
}

/// A representative input for each example task.
pub(crate) fn example_input(name: &str) -> Vec<u8> {
    match name {
        "wordcount" => {
            b"It was the best of times, it was the worst of times; it was the age of wisdom."
                .to_vec()
        }
        "primes" => b"100000\n".to_vec(),
        "sha256-chain" => b"1000\nsmartnodes".to_vec(),
        "mandelbrot" => b"32 24 200 -2.0 -1.2 1.0 1.2".to_vec(),
        "matmul" => b"24 7".to_vec(),
        other => panic!("no input for {other}"),
    }
}

/// The native implementation of each example task.
pub(crate) fn native(name: &str, input: &[u8]) -> Result<Vec<u8>, String> {
    smartnodes_examples::native(name, input).expect("an example")
}
