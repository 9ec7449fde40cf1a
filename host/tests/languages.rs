//! Tasks in other languages than Rust: the C, Zig and AssemblyScript examples
//! (`examples/foreign/`) against their Rust twins, in the sandbox, in separate processes and
//! as jobs on the in-process network; bytes that are not a module (`invalid_module`) on the
//! CLI and in a job; and `smartnodes new`.

use smartnodes::harness::{Network, NetworkConfig};
use smartnodes::net::proto::JobLimits;
use smartnodes::roles::user::{JobRequestSpec, UserSession};
use smartnodes_examples::FOREIGN;
use smartnodes_runtime::{
    Allocator, Limits, Metering, Outcome, Runtime, RuntimeConfig, TaskInput, Verdict,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn smartnodes() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_smartnodes"));
    c.env("XDG_CACHE_HOME", xdg_cache());
    c
}

/// `smartnodes run` keeps compiled modules in the user's cache: the tests' goes here.
fn xdg_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("xdg-cache")
}

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// A deterministic pseudo-random byte string (a 64-bit LCG).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect()
}

/// Several inputs per task: edge cases, a bigger one, and one the task must refuse.
fn inputs(twin: &str) -> Vec<Vec<u8>> {
    let shakespeare = std::fs::read(repo().join("examples/corpus/shakespeare.txt")).unwrap();
    let mut v: Vec<Vec<u8>> = match twin {
        "wordcount" => vec![
            b"b a B c a b".to_vec(),
            "don't stop-2day, h\u{e9}llo".into(),
            Vec::new(),
            shakespeare[..32 << 10].to_vec(),
            noise(20_000, 7),
        ],
        "mandelbrot" => vec![
            std::fs::read(repo().join("examples/mandelbrot/tile.txt")).unwrap(),
            b"1 1 10 3 3 4 4".to_vec(),
            b"+8 3 50 -2.5e0 -1 1. .5\n".to_vec(),
            b"32 24 100 -0.75 0.1 -0.74 0.11".to_vec(),
            b"8 3 50 0x1p1 -1 1 1".to_vec(),
            b"1 1 0 0 0 1 1".to_vec(),
        ],
        "primes" => vec![
            b"0".to_vec(),
            b"2".to_vec(),
            b"  +97\n".to_vec(),
            b"1000000".to_vec(),
            b"12 13".to_vec(),
            b"18446744073709551616".to_vec(),
        ],
        "sha256-chain" => vec![
            b"1\nabc".to_vec(),
            b"1\n".to_vec(),
            b" +3 \nhello world".to_vec(),
            [b"100\n".as_slice(), &noise(100_000, 3)].concat(),
            b"0\nabc".to_vec(),
            b"3".to_vec(),
        ],
        other => panic!("no inputs for {other}"),
    };
    v.shrink_to_fit();
    v
}

fn runtime(metering: Metering) -> Runtime {
    Runtime::new(RuntimeConfig {
        allocator: Allocator::OnDemand,
        metering,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

fn run(runtime: &Runtime, wasm: &[u8], input: &[u8]) -> Outcome {
    runtime
        .run(wasm, &TaskInput::new(input.to_vec()), &Limits::DEFAULT)
        .unwrap()
}

/// Each foreign example gives its Rust twin's verdict and output, byte for byte, on every
/// input (refused inputs: both exit with code 1 and write nothing); its fuel is the same on
/// a second run, in a fresh runtime and under either metering.
#[test]
fn foreign_examples_equal_their_rust_twins_with_stable_fuel() {
    let engine = runtime(Metering::Wasmtime);
    let instrumented = runtime(Metering::Instrumented);
    for f in FOREIGN {
        let twin = smartnodes_examples::module(f.twin).unwrap();
        let inputs = inputs(f.twin);
        let mut refused = 0;
        for (i, input) in inputs.iter().enumerate() {
            let what = format!("{} on input {i}", f.name);
            let ours = run(&engine, f.wasm, input);
            let rust = run(&engine, twin, input);
            assert_eq!(ours.verdict, rust.verdict, "{what}: {}", ours.detail);
            assert_eq!(ours.output, rust.output, "{what}");
            if ours.verdict != Verdict::Completed {
                assert_eq!(
                    ours.verdict,
                    Verdict::Trapped(smartnodes_runtime::TrapCode::Exit(1)),
                    "{what}"
                );
                assert!(!ours.stderr.is_empty(), "{what}: says why");
                refused += 1;
            }
            let again = run(&runtime(Metering::Wasmtime), f.wasm, input);
            let metered = run(&instrumented, f.wasm, input);
            for other in [&again, &metered] {
                assert_eq!(
                    (other.verdict, other.fuel_used, &other.output_hash),
                    (ours.verdict, ours.fuel_used, &ours.output_hash),
                    "{what}"
                );
            }
        }
        assert!(
            refused >= 1 || f.twin == "wordcount",
            "{}: a refused input",
            f.name
        );
        assert!(
            inputs.len() - refused >= 3,
            "{}: several real inputs",
            f.name
        );
    }
}

/// `smartnodes run example:NAME --json` in two separate processes: the same verdict,
/// output hash and fuel as in this one.
#[test]
fn foreign_examples_give_the_same_fuel_in_two_processes() {
    let engine = runtime(Metering::Wasmtime);
    for f in FOREIGN {
        let input = &inputs(f.twin)[0];
        let local = run(&engine, f.wasm, input);
        assert_eq!(local.verdict, Verdict::Completed);
        for _ in 0..2 {
            let out = run_cli(
                &[
                    &format!("example:{}", f.name),
                    "--json",
                    "--metering",
                    "wasmtime",
                ],
                input,
            );
            assert!(out.status.success(), "{}: {out:?}", f.name);
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(json["verdict"], "completed");
            assert_eq!(json["fuel_used"], local.fuel_used, "{}", f.name);
            assert_eq!(
                json["output_hash"].as_str(),
                local.output_hash_hex().as_deref()
            );
        }
    }
}

fn run_cli(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = smartnodes()
        .arg("run")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn smartnodes");
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

/// Bytes that are not a module: random bytes, an empty file, a text file that is neither
/// wasm nor WebAssembly text, and the wasm magic with a wrong version.
fn not_modules() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("random bytes", noise(4096, 11)),
        ("an empty file", Vec::new()),
        ("a text file", b"# Notes\nThis is not a module.\n".to_vec()),
        ("a wrong version", b"\0asm\x02\0\0\0".to_vec()),
    ]
}

/// `smartnodes run` on each: `verdict: invalid_module` with `--json`, exit status 1, the
/// reason on stderr, zero fuel; without `--json` too.
#[test]
fn bytes_that_are_not_a_module_are_an_invalid_module_verdict() {
    let dir = tempfile::tempdir().unwrap();
    for (what, bytes) in not_modules() {
        let path = dir.path().join("task.wasm");
        std::fs::write(&path, &bytes).unwrap();
        let out = run_cli(&[path.to_str().unwrap(), "--json"], b"");
        assert_eq!(out.status.code(), Some(1), "{what}: {out:?}");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["verdict"], "invalid_module", "{what}");
        assert_eq!(json["fuel_used"], 0, "{what}");
        assert!(json["output_hash"].is_null(), "{what}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("invalid_module"), "{what}: {stderr}");
        let plain = run_cli(&[path.to_str().unwrap()], b"");
        assert_eq!(plain.status.code(), Some(1), "{what}");
        assert!(plain.stdout.is_empty(), "{what}");
    }
    // The text file's reason says what it is not, and what WebAssembly text expected.
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "# Notes\n").unwrap();
    let out = run_cli(&[path.to_str().unwrap(), "--json"], b"");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let detail = json["detail"].as_str().unwrap();
    assert!(
        detail.contains("not a WebAssembly binary") && detail.contains("nor WebAssembly text"),
        "{detail}"
    );
}

/// On the network: every foreign example comes back from a job with its Rust twin's
/// outputs, and a job whose module is not a module comes back `invalid_module`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_examples_and_invalid_modules_as_jobs() {
    let net = Network::start(NetworkConfig::default()).await.unwrap();
    let session = UserSession::connect(net.validator_addr()).await.unwrap();
    let engine = runtime(Metering::Wasmtime);
    for f in FOREIGN {
        let inputs: Vec<Vec<u8>> = inputs(f.twin).into_iter().take(3).collect();
        let job = JobRequestSpec {
            sample_ppm: 0,
            module: f.wasm.to_vec(),
            inputs: inputs.clone(),
            limits: JobLimits::default(),
        };
        let report = session
            .run_job(&job, Duration::from_secs(60), |_, _| {})
            .await
            .unwrap();
        let twin = smartnodes_examples::module(f.twin).unwrap();
        assert_eq!(report.tasks.len(), inputs.len());
        for (task, input) in report.tasks.iter().zip(&inputs) {
            let rust = run(&engine, twin, input);
            assert_eq!(task.verdict(), rust.verdict.as_str(), "{}", f.name);
            assert_eq!(task.output, rust.output, "{}", f.name);
            assert_eq!(task.receipt.verify().unwrap(), task.worker);
        }
    }
    for (what, bytes) in not_modules() {
        let job = JobRequestSpec {
            sample_ppm: 0,
            module: bytes,
            inputs: vec![b"input".to_vec(), b"another".to_vec()],
            limits: JobLimits::default(),
        };
        let report = session
            .run_job(&job, Duration::from_secs(60), |_, _| {})
            .await
            .unwrap();
        for task in &report.tasks {
            assert_eq!(task.verdict(), "invalid_module", "{what}");
            assert_eq!(task.receipt.body.fuel_used, 0, "{what}");
            assert!(task.output.is_empty(), "{what}");
        }
    }
    session.close().await;
    net.stop().await;
}

/// The committed modules have not drifted from their sources: `examples/foreign/MANIFEST`
/// (written by `build.sh`) holds the sha256 of every source, the build script, the npm
/// lock file and every module, and lists every file there is. A source edited without
/// rebuilding, a module replaced by hand or a new file not built fails here, with no
/// toolchain but Rust; `build.sh --check` (CI) rebuilds the modules byte for byte.
#[test]
fn foreign_modules_match_the_manifest_of_their_sources() {
    use sha2::{Digest, Sha256};
    let root = repo().join("examples/foreign");
    let manifest = std::fs::read_to_string(root.join("MANIFEST")).unwrap();
    let rebuild = "run `bash examples/foreign/build.sh` and commit the modules and MANIFEST";
    let mut listed = std::collections::BTreeSet::new();
    for line in manifest.lines() {
        let (hash, path) = line.split_once("  ").expect("`<sha256>  <path>` lines");
        let bytes = std::fs::read(root.join(path))
            .unwrap_or_else(|e| panic!("examples/foreign/{path} is in MANIFEST: {e}; {rebuild}"));
        assert_eq!(
            hex::encode(Sha256::digest(&bytes)),
            hash,
            "examples/foreign/{path} changed since the modules were built: {rebuild}"
        );
        listed.insert(path.to_string());
    }
    let mut present = std::collections::BTreeSet::from(["build.sh".to_string()]);
    for dir in ["c", "zig", "assemblyscript", "wasm"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            if entry.file_type().unwrap().is_file() && !name.starts_with('.') {
                present.insert(format!("{dir}/{name}"));
            }
        }
    }
    assert_eq!(listed, present, "files not in MANIFEST, or gone: {rebuild}");
    for f in FOREIGN {
        assert!(listed.contains(f.source), "{}", f.source);
        let committed = std::fs::read(root.join(format!("wasm/{}.wasm", f.name))).unwrap();
        assert!(committed == f.wasm, "{} is the committed module", f.name);
    }
}

/// `smartnodes new NAME --lang LANG --json` in `dir`: the JSON it prints.
fn new_project(dir: &Path, name: &str, lang: &str) -> serde_json::Value {
    let out = smartnodes()
        .args(["new", name, "--lang", lang, "--json"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{lang}: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The files below `root`, as sorted relative paths.
fn files_under(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p.strip_prefix(root).unwrap().to_str().unwrap().to_string());
            }
        }
    }
    files.sort();
    files
}

/// The project holds exactly the template's files (`host/templates/<lang>/`, a leading
/// dot added to `gitignore`), with the name (and the SDK path) filled in.
fn check_files(
    project: &Path,
    lang: &str,
    json: &serde_json::Value,
    fill: &dyn Fn(&str) -> String,
) {
    let templates = repo().join("host/templates").join(lang);
    let mut expected: Vec<(String, String)> = files_under(&templates)
        .into_iter()
        .map(|rel| {
            let text = fill(&std::fs::read_to_string(templates.join(&rel)).unwrap());
            (rel.replace("gitignore", ".gitignore"), text)
        })
        .collect();
    expected.sort();
    let names: Vec<String> = expected.iter().map(|(p, _)| p.clone()).collect();
    let mut listed: Vec<String> = json["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    listed.sort();
    assert_eq!(listed, names, "{lang}: the files it says");
    assert_eq!(files_under(project), names, "{lang}: the files it wrote");
    for (rel, text) in &expected {
        let got = std::fs::read_to_string(project.join(rel)).unwrap();
        assert_eq!(&got, text, "{lang}: {rel}");
        assert!(!got.contains("{{"), "{lang}: {rel} has a placeholder left");
    }
}

/// C, Zig and AssemblyScript: the template's files and the two printed commands (building
/// needs their toolchains: `examples/foreign/build.sh` installs them; README, "Writing a
/// task"). A bad name, an existing folder and `--sdk` outside Rust are refused.
#[test]
fn new_projects_in_c_zig_and_assemblyscript() {
    let dir = tempfile::tempdir().unwrap();
    for (lang, build) in [
        ("c", "python3 -m ziglang cc --target=wasm32-wasi"),
        ("zig", "python3 -m ziglang build-exe -target wasm32-wasi"),
        ("assemblyscript", "npm install && npm run build"),
    ] {
        let name = format!("task-{lang}");
        let json = new_project(dir.path(), &name, lang);
        assert_eq!(json["dir"], name.as_str());
        let fill = |t: &str| t.replace("{{name}}", &name);
        check_files(&dir.path().join(&name), lang, &json, &fill);
        let b = json["build"].as_str().unwrap();
        assert!(b.starts_with(&format!("cd {name} && {build}")), "{b}");
        assert!(b.contains(&format!("{name}.wasm")) || lang == "assemblyscript");
        assert_eq!(
            json["run"],
            format!("echo 'to be or not to be' | smartnodes run {name}.wasm")
        );
        // The text output says the same two commands.
        let text = smartnodes()
            .args(["new", &format!("{name}-2"), "--lang", lang])
            .current_dir(dir.path())
            .output()
            .unwrap();
        let text = String::from_utf8(text.stdout).unwrap();
        assert!(text.contains(&format!("cd {name}-2 && {build}")), "{text}");
        assert!(
            text.contains(&format!("smartnodes run {name}-2.wasm")),
            "{text}"
        );
    }
    for args in [
        &["new", "task-c", "--lang", "c"][..],
        &["new", "../escape"],
        &["new", "9lives"],
        &["new", "x", "--lang", "zig", "--sdk", "."],
    ] {
        let out = smartnodes()
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
}

/// Rust, end to end: the template's files, then the two printed commands exactly as
/// printed (cargo offline, with the workspace's lock file; the project's `target` is kept
/// between test runs) give the task's output.
#[test]
fn new_rust_project_builds_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let json = new_project(dir.path(), "hello-task", "rust");
    let project = dir.path().join("hello-task");
    let sdk = repo().join("guest-sdk").canonicalize().unwrap();
    let fill = |t: &str| {
        t.replace("{{name}}", "hello-task")
            .replace("{{sdk}}", sdk.to_str().unwrap())
    };
    check_files(&project, "rust", &json, &fill);
    assert_eq!(
        json["build"],
        "cd hello-task && cargo build --release --target wasm32-wasip1"
    );

    std::fs::copy(repo().join("Cargo.lock"), project.join("Cargo.lock")).unwrap();
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("new-rust-project");
    std::fs::create_dir_all(&target).unwrap();
    std::os::unix::fs::symlink(&target, project.join("target")).unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_smartnodes"))
        .parent()
        .unwrap();
    let path = std::env::join_paths(
        std::iter::once(bin_dir.to_path_buf())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let shell = |cmd: &str, cwd: &Path| {
        Command::new("sh")
            .args(["-c", cmd])
            .current_dir(cwd)
            .env("PATH", &path)
            .env("XDG_CACHE_HOME", xdg_cache())
            .env("CARGO_NET_OFFLINE", "true")
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .output()
            .unwrap()
    };
    let build = shell(json["build"].as_str().unwrap(), dir.path());
    assert!(build.status.success(), "{build:?}");
    let run = shell(json["run"].as_str().unwrap(), &project);
    assert!(run.status.success(), "{run:?}");
    assert_eq!(String::from_utf8(run.stdout).unwrap(), "1 6 19\n");
}
