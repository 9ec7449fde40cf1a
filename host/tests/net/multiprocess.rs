//! Real `smartnodes` processes on 127.0.0.1 with OS-chosen ports: one validator, workers,
//! and `smartnodes submit` as the user; workers and the validator killed with SIGKILL.

use crate::common::wordcount_inputs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_smartnodes");

/// A child process killed (SIGKILL) and reaped when dropped, so a failing test leaves
/// nothing behind.
struct Proc {
    child: Child,
    name: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn kill9(mut self) {
        self.child.kill().unwrap(); // SIGKILL on Unix
        self.child.wait().unwrap();
        eprintln!("killed {}", self.name);
    }
}

/// A node: its process and its address (with `/p2p/<id>`).
struct NodeProc {
    proc: Proc,
    addr: String,
}

fn spawn_node(role: &str, dir: &Path, listen: &str, bootstrap: &[&str], name: &str) -> NodeProc {
    spawn_node_with(role, dir, listen, bootstrap, name, &[])
}

/// [`spawn_node`] with more `smartnodes node` arguments.
fn spawn_node_with(
    role: &str,
    dir: &Path,
    listen: &str,
    bootstrap: &[&str],
    name: &str,
    extra: &[&str],
) -> NodeProc {
    let mut cmd = Command::new(BIN);
    cmd.args(["node", "--role", role, "--data-dir"])
        .arg(dir)
        .args(["--listen", listen, "--workers-slots", "2", "--lease", "1.5"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for b in bootstrap {
        cmd.args(["--bootstrap", b]);
    }
    let mut child = cmd.spawn().expect("spawning smartnodes node");
    let stdout = child.stdout.take().unwrap();
    let proc = Proc {
        child,
        name: name.to_string(),
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = line.strip_prefix("listening on ") {
                let _ = tx.send(addr.to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("{name} printed no listen address"));
    NodeProc { proc, addr }
}

fn write_module(dir: &Path, name: &str, wasm: &[u8]) -> PathBuf {
    let path = dir.join(format!("{name}.wasm"));
    std::fs::write(&path, wasm).unwrap();
    path
}

fn write_inputs(dir: &Path, inputs: &[Vec<u8>]) -> Vec<PathBuf> {
    inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let path = dir.join(format!("input-{i}.txt"));
            std::fs::write(&path, input).unwrap();
            path
        })
        .collect()
}

/// The JSON a `smartnodes … --json` command printed, once it succeeded (its stderr shown
/// when it did not).
fn json_of(out: std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Creates a user's key file with `smartnodes keys new`; returns its peer id.
fn new_key(path: &Path) -> String {
    let shown = json_of(
        Command::new(BIN)
            .args(["keys", "new", "--json", "--out"])
            .arg(path)
            .output()
            .unwrap(),
    );
    shown["peer_id"].as_str().unwrap().to_string()
}

/// The key file `spawn_submit` submits `out`'s job with (created by it).
fn key_of(out: &Path) -> PathBuf {
    out.with_extension("key")
}

/// Starts `smartnodes submit` as the user whose key is [`key_of`]`(out)` (a new one);
/// returns the process and a channel of its progress lines.
fn spawn_submit(
    module: &Path,
    inputs: &[PathBuf],
    validator: &str,
    out: &Path,
) -> (
    Proc,
    mpsc::Receiver<String>,
    std::thread::JoinHandle<String>,
) {
    new_key(&key_of(out));
    let mut cmd = Command::new(BIN);
    cmd.arg("submit")
        .arg(module)
        .arg("--key-file")
        .arg(key_of(out));
    for input in inputs {
        cmd.arg("--input").arg(input);
    }
    cmd.args([
        "--validator",
        validator,
        "--json",
        "--timeout",
        "60",
        "--out",
    ])
    .arg(out)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawning smartnodes submit");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            eprintln!("submit: {line}");
            let _ = tx.send(line);
        }
    });
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            s.push_str(&line);
            s.push('\n');
        }
        s
    });
    (
        Proc {
            child,
            name: "submit".into(),
        },
        rx,
        out_thread,
    )
}

/// Waits for `submit` to finish; returns its JSON summary.
fn finish_submit(
    mut proc: Proc,
    stdout: std::thread::JoinHandle<String>,
    timeout: Duration,
) -> serde_json::Value {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = proc.child.try_wait().unwrap() {
            assert!(status.success(), "submit exited with {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "submit did not finish in {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = stdout.join().unwrap();
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("summary {out:?}: {e}"))
}

/// Waits until `submit` has reported `n` completed tasks.
fn wait_progress(rx: &mpsc::Receiver<String>, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut done = 0;
    while done < n {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("no progress from submit");
        if line.starts_with('[') {
            done += 1;
        }
    }
}

/// Each task exactly once, completed, its output written and equal to `smartnodes run`.
fn check_outputs(summary: &serde_json::Value, module: &Path, inputs: &[PathBuf], out: &Path) {
    let tasks = summary["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), inputs.len());
    for (i, (task, input)) in tasks.iter().zip(inputs).enumerate() {
        assert_eq!(task["index"], i, "each index once, in order");
        assert_eq!(task["verdict"], "completed", "task {i}");
        // A secp256k1 peer id (the node's one key, issue 16).
        assert!(task["worker"].as_str().unwrap().starts_with("16Uiu2"));
        let output = std::fs::read(out.join(format!("{i}.out"))).unwrap();
        let local = Command::new(BIN)
            .args(["run", "--no-cache"])
            .arg(module)
            .arg("--input")
            .arg(input)
            .output()
            .unwrap();
        assert!(local.status.success());
        assert_eq!(
            output, local.stdout,
            "task {i}: network output != smartnodes run"
        );
        let hash = smartnodes_runtime::sha256(&output);
        assert_eq!(task["output_hash"], hex::encode(hash), "task {i}");
    }
}

/// `smartnodes status` of one job, as the user whose key is `key`.
fn status_json(validator: &str, job: &str, key: &Path) -> serde_json::Value {
    let out = Command::new(BIN)
        .args([
            "status",
            "--validator",
            validator,
            job,
            "--json",
            "--key-file",
        ])
        .arg(key)
        .output()
        .unwrap();
    json_of(out)
}

#[test]
fn fifty_wordcount_tasks_across_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let listen = "/ip4/127.0.0.1/tcp/0";
    let v = spawn_node("validator", &tmp.path().join("v"), listen, &[], "validator");
    let workers: Vec<NodeProc> = (0..3)
        .map(|i| {
            let name = format!("worker{i}");
            spawn_node("worker", &tmp.path().join(&name), listen, &[&v.addr], &name)
        })
        .collect();
    let module = write_module(tmp.path(), "wordcount", smartnodes_examples::WORDCOUNT);
    let inputs = write_inputs(tmp.path(), &wordcount_inputs(50));
    let out = tmp.path().join("out");
    // Without /p2p/: the user learns the validator's id from the connection.
    let bare = v.addr.split("/p2p/").next().unwrap().to_string();
    let (proc, _progress, stdout) = spawn_submit(&module, &inputs, &bare, &out);
    let summary = finish_submit(proc, stdout, Duration::from_secs(90));
    check_outputs(&summary, &module, &inputs, &out);
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(on_disk, summary);

    let job = summary["job_id"].as_str().unwrap();
    let status = status_json(&v.addr, job, &key_of(&out));
    assert_eq!(status["jobs"][0]["state"], "done");
    assert_eq!(status["jobs"][0]["done"], 50);
    assert_eq!(status["workers"].as_array().unwrap().len(), 3);
    drop(workers);
}

fn primes_inputs(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("{}\n", 8_000_000 + 1_000 * i).into_bytes())
        .collect()
}

#[test]
fn a_worker_killed_mid_job_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let listen = "/ip4/127.0.0.1/tcp/0";
    let v = spawn_node("validator", &tmp.path().join("v"), listen, &[], "validator");
    let mut workers: Vec<NodeProc> = (0..3)
        .map(|i| {
            let name = format!("worker{i}");
            spawn_node("worker", &tmp.path().join(&name), listen, &[&v.addr], &name)
        })
        .collect();
    let module = write_module(tmp.path(), "primes", smartnodes_examples::PRIMES);
    let inputs = write_inputs(tmp.path(), &primes_inputs(40));
    let out = tmp.path().join("out");
    let (proc, progress, stdout) = spawn_submit(&module, &inputs, &v.addr, &out);
    wait_progress(&progress, 6);
    workers.remove(0).proc.kill9();
    let summary = finish_submit(proc, stdout, Duration::from_secs(120));
    check_outputs(&summary, &module, &inputs, &out);
    let job = summary["job_id"].as_str().unwrap();
    let status = status_json(&v.addr, job, &key_of(&out));
    assert_eq!(status["jobs"][0]["done"], 40, "each task counted once");
    assert_eq!(status["workers"].as_array().unwrap().len(), 2);
}

#[test]
fn the_only_worker_killed_and_restarted_resumes_its_work() {
    let tmp = tempfile::tempdir().unwrap();
    let listen = "/ip4/127.0.0.1/tcp/0";
    let v = spawn_node("validator", &tmp.path().join("v"), listen, &[], "validator");
    let wdir = tmp.path().join("worker");
    let w = spawn_node("worker", &wdir, listen, &[&v.addr], "worker");
    let peer = w.addr.split("/p2p/").nth(1).unwrap().to_string();
    let module = write_module(tmp.path(), "primes", smartnodes_examples::PRIMES);
    let inputs = write_inputs(tmp.path(), &primes_inputs(20));
    let out = tmp.path().join("out");
    let (proc, progress, stdout) = spawn_submit(&module, &inputs, &v.addr, &out);
    wait_progress(&progress, 4);
    // Killed holding accepted tasks and undelivered results; nobody else can do them.
    w.proc.kill9();
    let w2 = spawn_node("worker", &wdir, listen, &[&v.addr], "worker (restarted)");
    assert!(w2.addr.ends_with(&peer), "same identity after the restart");
    let summary = finish_submit(proc, stdout, Duration::from_secs(120));
    check_outputs(&summary, &module, &inputs, &out);
    let tasks = summary["tasks"].as_array().unwrap();
    assert!(tasks.iter().all(|t| t["worker"] == peer.as_str()));
    let job = summary["job_id"].as_str().unwrap();
    let status = status_json(&v.addr, job, &key_of(&out));
    assert_eq!(status["jobs"][0]["done"], 20, "each task counted once");
    drop(w2);
}

#[test]
fn a_validator_killed_and_restarted_resumes_its_jobs() {
    let tmp = tempfile::tempdir().unwrap();
    let vdir = tmp.path().join("v");
    let v = spawn_node("validator", &vdir, "/ip4/127.0.0.1/tcp/0", &[], "validator");
    let addr = v.addr.clone();
    let workers: Vec<NodeProc> = (0..2)
        .map(|i| {
            let name = format!("worker{i}");
            spawn_node(
                "worker",
                &tmp.path().join(&name),
                "/ip4/127.0.0.1/tcp/0",
                &[&addr],
                &name,
            )
        })
        .collect();
    let module = write_module(tmp.path(), "primes", smartnodes_examples::PRIMES);
    let inputs = write_inputs(tmp.path(), &primes_inputs(30));
    let out = tmp.path().join("out");
    let (proc, progress, stdout) = spawn_submit(&module, &inputs, &addr, &out);
    wait_progress(&progress, 5);
    v.proc.kill9();
    // Same data dir (same key, same jobs), same port.
    let listen = addr.split("/p2p/").next().unwrap().to_string();
    let v2 = spawn_node("validator", &vdir, &listen, &[], "validator (restarted)");
    assert_eq!(v2.addr, addr, "same identity and address after the restart");
    let summary = finish_submit(proc, stdout, Duration::from_secs(120));
    check_outputs(&summary, &module, &inputs, &out);
    let job = summary["job_id"].as_str().unwrap();
    let status = status_json(&v2.addr, job, &key_of(&out));
    assert_eq!(status["jobs"][0]["state"], "done");
    assert_eq!(status["jobs"][0]["done"], 30, "each task counted once");
    drop(workers);
}

#[test]
fn keys_are_created_once_and_shown() {
    let tmp = tempfile::tempdir().unwrap();
    let show = || {
        let out = Command::new(BIN)
            .args(["keys", "--json", "--data-dir"])
            .arg(tmp.path())
            .output()
            .unwrap();
        assert!(out.status.success());
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let a = show();
    let b = show();
    assert_eq!(a, b);
    // One secp256k1 key: the peer id is the chain key's (issue 16).
    assert!(a["peer_id"].as_str().unwrap().starts_with("16Uiu2"));
    assert!(a["eth_address"].as_str().unwrap().starts_with("0x"));
    assert_eq!(a["eth_address"].as_str().unwrap().len(), 42);
}

#[test]
fn a_node_shuts_down_cleanly_on_sigterm_and_sigint() {
    let tmp = tempfile::tempdir().unwrap();
    for (signal, role) in [("-TERM", "validator"), ("-INT", "worker")] {
        let node = spawn_node(
            role,
            &tmp.path().join(role),
            "/ip4/127.0.0.1/tcp/0",
            &[],
            role,
        );
        let mut proc = node.proc;
        let pid = proc.child.id().to_string();
        assert!(Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success());
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(status) = proc.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "{role} ignored {signal}");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "{role} after {signal}: {status}");
    }
}

/// `smartnodes results` after `submit` exited gives its owner the same outputs, the one a
/// cheater's result was replaced in included; another key and a fresh one are refused.
#[test]
fn results_after_submit_exited_are_the_owners_and_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let listen = "/ip4/127.0.0.1/tcp/0";
    // Every result of a new worker is checked (check budget 100 %), so the cheater's first
    // wrong output is withdrawn while the job runs.
    let v = spawn_node_with(
        "validator",
        &tmp.path().join("v"),
        listen,
        &[],
        "validator",
        &["--check-budget", "100"],
    );
    let mut workers: Vec<NodeProc> = (0..2)
        .map(|i| {
            let name = format!("worker{i}");
            spawn_node("worker", &tmp.path().join(&name), listen, &[&v.addr], &name)
        })
        .collect();
    workers.push(spawn_node_with(
        "worker",
        &tmp.path().join("cheater"),
        listen,
        &[&v.addr],
        "cheater",
        &["--cheat", "wrong-output"],
    ));
    let module = write_module(tmp.path(), "wordcount", smartnodes_examples::WORDCOUNT);
    let inputs = write_inputs(tmp.path(), &wordcount_inputs(30));
    let out = tmp.path().join("out");
    let (proc, _progress, stdout) = spawn_submit(&module, &inputs, &v.addr, &out);
    let summary = finish_submit(proc, stdout, Duration::from_secs(90));
    check_outputs(&summary, &module, &inputs, &out);
    let replaced = summary["replaced"].as_array().expect("replaced");
    assert!(!replaced.is_empty(), "the cheater's results: {summary}");
    let job = summary["job_id"].as_str().unwrap();

    let results = |key: &Path, dir: &Path| {
        Command::new(BIN)
            .args([
                "results",
                job,
                "--validator",
                &v.addr,
                "--json",
                "--key-file",
            ])
            .arg(key)
            .arg("--out")
            .arg(dir)
            .output()
            .unwrap()
    };
    let again = tmp.path().join("again");
    let fetched = json_of(results(&key_of(&out), &again));
    assert_eq!(fetched["job_id"], summary["job_id"]);
    check_outputs(&fetched, &module, &inputs, &again);
    for i in 0..inputs.len() {
        for file in [format!("{i}.out"), format!("{i}.receipt")] {
            assert_eq!(
                std::fs::read(out.join(&file)).unwrap(),
                std::fs::read(again.join(&file)).unwrap(),
                "{file}"
            );
        }
    }
    for r in replaced {
        let i = r["index"].as_u64().unwrap() as usize;
        assert_eq!(
            fetched["tasks"][i], summary["tasks"][i],
            "replaced task {i}"
        );
    }

    // Another user's key: refused, and nothing written.
    let stranger = tmp.path().join("stranger.key");
    new_key(&stranger);
    let denied = results(&stranger, &tmp.path().join("denied"));
    assert_eq!(denied.status.code(), Some(2));
    let why = String::from_utf8_lossy(&denied.stderr);
    assert!(why.contains("only the job's owner"), "{why}");
    assert!(!tmp.path().join("denied").join("0.out").exists());
    let status = Command::new(BIN)
        .args([
            "status",
            "--validator",
            &v.addr,
            job,
            "--json",
            "--key-file",
        ])
        .arg(&stranger)
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(2));
    let listed = json_of(
        Command::new(BIN)
            .args(["status", "--validator", &v.addr, "--json", "--key-file"])
            .arg(&stranger)
            .output()
            .unwrap(),
    );
    assert_eq!(listed["jobs"].as_array().unwrap().len(), 0, "{listed}");
    assert_eq!(
        listed["workers"].as_array().unwrap().len(),
        3,
        "workers are public"
    );
    drop(workers);
}

#[test]
fn a_user_key_is_created_once_and_shown() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("me.key");
    let peer = new_key(&path);
    assert!(peer.starts_with("16Uiu2"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let show = || {
        json_of(
            Command::new(BIN)
                .args(["keys", "show", "--json", "--key-file"])
                .arg(&path)
                .output()
                .unwrap(),
        )
    };
    let shown = show();
    assert_eq!(shown["peer_id"], peer.as_str());
    assert!(shown["eth_address"].as_str().unwrap().starts_with("0x"));
    // A second `keys new` never replaces the key.
    let again = Command::new(BIN)
        .args(["keys", "new", "--out"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    assert_eq!(show()["peer_id"], peer.as_str());
}
