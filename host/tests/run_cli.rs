//! `smartnodes run` as a user runs it: real processes, exit codes, JSON, and the same
//! `(verdict, output_hash, fuel_used)` in separate processes as in this one.

use smartnodes_runtime::{Limits, Runtime, RuntimeConfig, TaskInput};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn smartnodes() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_smartnodes"));
    // `smartnodes run` keeps compiled modules in the user's cache: not the tests'.
    c.env(
        "XDG_CACHE_HOME",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("xdg-cache"),
    );
    c
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/fixtures")
}

fn run_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = smartnodes()
        .arg("run")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn smartnodes");
    // The process may exit before reading its input (usage errors): a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

fn write_examples(dir: &Path) -> Vec<(String, PathBuf)> {
    smartnodes_examples::ALL
        .iter()
        .map(|(name, wasm)| {
            let path = dir.join(format!("{name}.wasm"));
            std::fs::write(&path, wasm).unwrap();
            (name.to_string(), path)
        })
        .collect()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn runs_a_task_and_writes_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let examples = write_examples(dir.path());
    let wordcount = &examples.iter().find(|(n, _)| n == "wordcount").unwrap().1;
    let out = run_with_stdin(&[wordcount.to_str().unwrap()], b"to be or not to be");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"be\t2\nto\t2\nnot\t1\nor\t1\n");

    // --input FILE gives the same.
    let input = dir.path().join("in.txt");
    std::fs::write(&input, b"to be or not to be").unwrap();
    let out = run_with_stdin(
        &[
            wordcount.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(out.stdout, b"be\t2\nto\t2\nnot\t1\nor\t1\n");
}

#[test]
fn json_and_exit_codes_for_every_verdict() {
    let cases = [
        ("echo.wat", "completed", 0),
        ("infinite_loop.wat", "out_of_fuel", 1),
        ("unreachable.wat", "trapped", 1),
        ("memory_bomb.wat", "memory_exceeded", 1),
        ("output_flood.wat", "output_too_large", 1),
        ("unknown_import.wat", "invalid_module", 1),
    ];
    for (file, verdict, code) in cases {
        let path = fixtures().join(file);
        let out = run_with_stdin(
            &[
                path.to_str().unwrap(),
                "--json",
                "--fuel",
                "50000000",
                "--memory-mib",
                "32",
            ],
            b"hello",
        );
        assert_eq!(
            out.status.code(),
            Some(code),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v = json(&out);
        assert_eq!(v["verdict"], verdict, "{file}");
        for key in [
            "verdict",
            "fuel_used",
            "output_hash",
            "output_len",
            "detail",
            "stderr",
        ] {
            assert!(v.get(key).is_some(), "{file}: no {key} in {v}");
        }
        if verdict == "completed" {
            assert_eq!(v["output_hash"].as_str().unwrap().len(), 64);
            assert_eq!(v["output_len"], 5);
        } else {
            assert!(v["output_hash"].is_null());
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                stderr.trim().lines().count(),
                1,
                "{file}: one line of reason: {stderr}"
            );
        }
    }
}

#[test]
fn usage_and_host_errors_exit_2_with_a_reason() {
    let out = run_with_stdin(&["/nonexistent/task.wasm"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("reading the module"));
    let echo = fixtures().join("echo.wat");
    let out = run_with_stdin(&[echo.to_str().unwrap(), "--seed", "abcd"], b"");
    assert_eq!(out.status.code(), Some(2), "a short seed is a usage error");
    let out = run_with_stdin(&[echo.to_str().unwrap(), "--memory-mib", "0"], b"");
    assert_eq!(out.status.code(), Some(2));
    let out = run_with_stdin(&[echo.to_str().unwrap(), "--frobnicate"], b"");
    assert_eq!(out.status.code(), Some(2));
    // A text file that is not valid WebAssembly text is not a module: a verdict (exit 1),
    // whose reason shows where the text went wrong.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.wat");
    std::fs::write(&bad, "(module (func $oops").unwrap();
    let out = run_with_stdin(&[bad.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid_module") && stderr.contains("nor WebAssembly text"),
        "{stderr}"
    );
}

#[test]
fn separate_processes_agree_with_this_one() {
    // The same (verdict, output_hash, fuel_used) from two fresh `smartnodes run` processes
    // and from an in-process runtime, for every example and for the fixtures.
    let dir = tempfile::tempdir().unwrap();
    let mut cases: Vec<(PathBuf, Vec<u8>)> = write_examples(dir.path())
        .into_iter()
        .map(|(name, path)| {
            let input = match name.as_str() {
                "wordcount" => b"a b a c".to_vec(),
                "primes" => b"5000".to_vec(),
                "sha256-chain" => b"50\nxyz".to_vec(),
                "mandelbrot" => b"16 12 50 -2 -1 1 1".to_vec(),
                _ => b"12 3".to_vec(),
            };
            (path, input)
        })
        .collect();
    for f in [
        "clock_random",
        "nan",
        "relaxed_simd",
        "sleep",
        "exit_code",
        "infinite_loop",
        "out_of_bounds",
        // Too deep a recursion: the meter's fixed depth limit, the same in every process
        // (and on aarch64: the runtime's golden file under qemu).
        "infinite_recursion",
    ] {
        cases.push((fixtures().join(format!("{f}.wat")), b"in".to_vec()));
    }
    let rt = Runtime::new(RuntimeConfig::default()).unwrap();
    let limits = Limits {
        fuel: 50_000_000,
        ..Limits::DEFAULT
    };
    for (path, input) in cases {
        let wasm = smartnodes::commands::run::read_module(&path).unwrap();
        let here = rt
            .run(&wasm, &TaskInput::new(input.clone()), &limits)
            .unwrap();
        for _ in 0..2 {
            let out = run_with_stdin(
                &[path.to_str().unwrap(), "--json", "--fuel", "50000000"],
                &input,
            );
            let v = json(&out);
            assert_eq!(v["verdict"], here.verdict.as_str(), "{}", path.display());
            assert_eq!(v["fuel_used"], here.fuel_used, "{}", path.display());
            assert_eq!(
                v["output_hash"].as_str().map(String::from),
                here.output_hash_hex(),
                "{}",
                path.display()
            );
            assert_eq!(v["engine_fingerprint"], rt.fingerprint().to_hex());
        }
    }
}

#[test]
fn seed_changes_randomness_only() {
    let path = fixtures().join("clock_random.wat");
    let a = run_with_stdin(&[path.to_str().unwrap(), "--seed", &"11".repeat(32)], b"");
    let b = run_with_stdin(&[path.to_str().unwrap(), "--seed", &"11".repeat(32)], b"");
    let c = run_with_stdin(&[path.to_str().unwrap(), "--seed", &"22".repeat(32)], b"");
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    assert_eq!(
        a.stdout[..32],
        c.stdout[..32],
        "clocks do not depend on the seed"
    );
    assert_ne!(a.stdout[32..], c.stdout[32..], "random bytes do");
}

#[test]
fn built_in_examples_run_by_name() {
    let out = run_with_stdin(&["example:primes"], b"100");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"25 97\n");
    let out = run_with_stdin(&["example:nope"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wordcount"),
        "lists the examples"
    );
}

/// `--metering instrumented` runs the in-wasm meter: the same verdict, output and fuel as
/// the default for a completing example, a trapping fixture and one out of fuel, under an
/// engine fingerprint of its own.
#[test]
fn metering_flag_keeps_verdict_output_and_fuel() {
    let cases: [(&str, &[u8], &[&str]); 3] = [
        ("example:mandelbrot", b"40 30 200 -2.0 -1.2 1.0 1.2", &[]),
        ("unreachable.wat", b"", &[]),
        ("infinite_loop.wat", b"", &["--fuel", "100000"]),
    ];
    for (module, input, extra) in cases {
        let module = if module.starts_with("example:") {
            module.to_string()
        } else {
            fixtures().join(module).to_str().unwrap().to_string()
        };
        let [default, ours] = ["wasmtime", "instrumented"].map(|metering| {
            let mut args = vec![module.as_str(), "--json", "--metering", metering];
            args.extend_from_slice(extra);
            json(&run_with_stdin(&args, input))
        });
        for field in ["verdict", "fuel_used", "output_hash", "output_len"] {
            assert_eq!(default[field], ours[field], "{module}: {field}");
        }
        assert_ne!(
            default["engine_fingerprint"], ours["engine_fingerprint"],
            "{module}"
        );
    }
    let bad = run_with_stdin(&["example:primes", "--metering", "fast"], b"10");
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("instrumented"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

/// `smartnodes economics` at the defaults: one row per strategy, loss > gain on every one,
/// the JSON keys the issue names, and the README's "Why cheating does not pay" table is
/// exactly what it prints.
#[test]
fn economics_at_the_defaults_shows_loss_above_gain_and_the_readme_table_is_its_output() {
    let out = smartnodes().args(["economics", "--json"]).output().unwrap();
    assert!(out.status.success());
    let rows = json(&out);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 8);
    for r in rows {
        for key in ["strategy", "gain_sno", "loss_sno", "p_caught"] {
            assert!(r.get(key).is_some(), "{key} missing in {r}");
        }
        let (gain, loss) = (
            r["gain_sno"].as_f64().unwrap(),
            r["loss_sno"].as_f64().unwrap(),
        );
        assert!(loss > gain, "{r}");
        let p = r["p_caught"].as_f64().unwrap();
        assert!(p > 0.0 && p <= 1.0, "{r}");
    }
    let out = smartnodes().arg("economics").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.matches("does not pay").count(), 8, "{text}");
    assert!(!text.contains("PAYS"), "{text}");
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    assert!(
        readme.contains(&text),
        "README.md's economics table differs from `smartnodes economics`:\n{text}"
    );
    // --rpc-url needs --deployment: a usage error.
    let out = smartnodes()
        .args(["economics", "--rpc-url", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// The module cache: the first run compiles and stores the module under `--cache-dir`, the
/// second loads it and gives the same outcome; `--no-cache` stores nothing; a cache
/// directory that cannot be created is an error that says which.
#[test]
fn compiled_modules_are_cached_between_runs_unless_told_not_to() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let cached = |extra: &[&str]| {
        let mut args = vec!["example:primes", "--json"];
        args.extend(extra);
        let out = run_with_stdin(&args, b"1000");
        assert!(out.status.success(), "{out:?}");
        json(&out)
    };
    let files = |dir: &Path| -> usize {
        walk(dir)
            .into_iter()
            .filter(|p| p.extension() == Some("cwasm".as_ref()))
            .count()
    };
    let first = cached(&["--cache-dir", cache.to_str().unwrap()]);
    assert_eq!(files(&cache), 1, "the compiled module is stored");
    let second = cached(&["--cache-dir", cache.to_str().unwrap()]);
    assert_eq!(files(&cache), 1);
    assert_eq!(first, second, "a cached module gives the same outcome");

    let nothing = dir.path().join("nothing");
    let input = dir.path().join("input");
    std::fs::write(&input, b"10").unwrap();
    let out = smartnodes()
        .args(["run", "example:primes", "--no-cache", "--input"])
        .arg(&input)
        .env("XDG_CACHE_HOME", &nothing)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(!nothing.exists(), "--no-cache wrote a cache");

    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"").unwrap();
    let bad = blocker.join("cache");
    let out = run_with_stdin(
        &["example:primes", "--cache-dir", bad.to_str().unwrap()],
        b"10",
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("creating the module cache"), "{stderr}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}
