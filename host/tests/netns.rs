//! A network on several "hosts": each node in its own Linux network namespace, all on one
//! bridge, with addresses in 10.77.0.0/24 that exist only inside these namespaces (the
//! bridge itself lives in a namespace of its own: nothing changes in the host's network,
//! and no packet leaves it).
//!
//! Two validators, three workers, a user and anvil, each in its own namespace, each told
//! only one bootstrap address (v1 none; w1 → v1; w2 → w1; w3 → w2; the user → w3; v2,
//! started later → w3). Checked: a job completes with every output correct while w1's
//! namespace is deleted mid-job (its link vanishes first, then the host); the late
//! validator is found by the workers and runs a job of its own; epochs execute on the
//! chain (counted by v1's metrics, scraped from inside the namespaces).
//!
//! Needs root (`ip netns`, veth pairs, a bridge) and anvil (`npm ci` in contracts/, or
//! `SMARTNODES_ANVIL`). Where `ip netns add` is not permitted, or anvil is missing, the
//! test says so on stderr and passes without running — except under `CI=true`, where it
//! fails instead: CI must run it.

use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_smartnodes");
/// anvil's first development account (funds everything; a devnet key, public).
const DEV_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const SUBNET: &str = "10.77.0";
const PORT: u16 = 4001;

/// Skips (outside CI) or fails (under `CI=true`) with `why`.
fn skip(why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("the network-namespace test cannot run under CI=true: {why}");
    }
    // Straight to stderr, past the test harness's capture: a skip must be seen.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: the network-namespace test did not run: {why}"
    );
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn anvil() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SMARTNODES_ANVIL") {
        return Some(PathBuf::from(p));
    }
    let platform = match std::env::consts::ARCH {
        "x86_64" => "linux-amd64",
        "aarch64" => "linux-arm64",
        _ => return None,
    };
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../contracts/node_modules/@foundry-rs")
        .join(format!("anvil-{platform}/bin/anvil"));
    p.exists().then_some(p)
}

/// A process in a namespace, killed (SIGKILL) and reaped when dropped.
struct Proc {
    name: String,
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The namespaces, their processes and files; everything removed when dropped.
struct Lab {
    prefix: String,
    hosts: Vec<String>,
    procs: Vec<Proc>,
    dir: tempfile::TempDir,
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.procs.clear();
        for h in self.hosts.drain(..).rev() {
            let _ = ip(&["netns", "delete", &format!("{}-{h}", self.prefix)]);
        }
        let _ = ip(&["netns", "delete", &format!("{}-br", self.prefix)]);
        if std::thread::panicking() {
            // The nodes' logs, to see why.
            for entry in std::fs::read_dir(self.dir.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "log") {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(30).collect();
                    eprintln!("---- {} (last lines)", path.display());
                    for l in tail.into_iter().rev() {
                        eprintln!("{l}");
                    }
                }
            }
        }
    }
}

impl Lab {
    /// The bridge namespace; fails if namespaces cannot be made.
    fn new() -> Result<Lab, String> {
        let prefix = format!("sn{}", std::process::id());
        let br = format!("{prefix}-br");
        let lab = Lab {
            prefix,
            hosts: Vec::new(),
            procs: Vec::new(),
            dir: tempfile::tempdir().map_err(|e| e.to_string())?,
        };
        ip(&["netns", "add", &br])?;
        ip(&["-n", &br, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &br, "link", "set", "br0", "up"])?;
        Ok(lab)
    }

    fn ns(&self, host: &str) -> String {
        format!("{}-{host}", self.prefix)
    }

    /// A namespace `host` with `eth0` = `10.77.0.<last>/24` on the bridge.
    fn host(&mut self, host: &str, last: u8) {
        let (ns, br) = (self.ns(host), format!("{}-br", self.prefix));
        let port = format!("v-{host}");
        ip(&["netns", "add", &ns]).unwrap();
        self.hosts.push(host.to_string());
        ip(&[
            "-n", &br, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ])
        .unwrap();
        ip(&["-n", &br, "link", "set", &port, "master", "br0", "up"]).unwrap();
        let addr = format!("{SUBNET}.{last}/24");
        ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"]).unwrap();
        ip(&["-n", &ns, "link", "set", "eth0", "up"]).unwrap();
        ip(&["-n", &ns, "link", "set", "lo", "up"]).unwrap();
    }

    /// The host vanishes: its link first (no FIN, no RST reaches anyone), then its
    /// processes, then its namespace.
    fn remove(&mut self, host: &str) {
        let br = format!("{}-br", self.prefix);
        ip(&["-n", &br, "link", "delete", &format!("v-{host}")]).unwrap();
        self.procs.retain(|p| p.name != host);
        ip(&["netns", "delete", &self.ns(host)]).unwrap();
        self.hosts.retain(|h| h != host);
    }

    fn command(&self, host: &str, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(host), program]);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs `smartnodes ARGS` in `host` to completion.
    fn run(&self, host: &str, args: &[&str]) -> Output {
        let out = self.command(host, BIN).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "smartnodes {} in {host}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn log(&self, name: &str) -> std::fs::File {
        std::fs::File::create(self.dir.path().join(format!("{name}.log"))).unwrap()
    }

    /// Starts a long-running process in `host`; returns its stdout lines.
    fn spawn(&mut self, host: &str, mut cmd: Command) -> mpsc::Receiver<String> {
        cmd.stdout(Stdio::piped()).stderr(self.log(host));
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        self.procs.push(Proc {
            name: host.to_string(),
            child,
        });
        rx
    }

    /// `GET /metrics` of the node at `10.77.0.<last>:9090`, from inside `from` (bash's
    /// `/dev/tcp`: no client to install).
    fn metrics(&self, from: &str, last: u8) -> String {
        let script = format!(
            "exec 3<>/dev/tcp/{SUBNET}.{last}/9090 && printf 'GET /metrics HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3"
        );
        let out = self
            .command(from, "bash")
            .args(["-c", &script])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// A started node: its address on the bridge (with `/p2p/<id>`).
struct Started {
    addr: String,
}

/// Starts `smartnodes node` in `host` (listening on every interface) and checks that its
/// listen lines show both real addresses (loopback and the bridge's).
fn node(
    lab: &mut Lab,
    host: &str,
    last: u8,
    role: &str,
    bootstrap: Option<&str>,
    chain: &[String],
) -> Started {
    let data = lab.dir.path().join(host);
    let mut cmd = lab.command(host, BIN);
    // Info logs, so that a failure's log tails (printed when the lab drops) say why.
    cmd.env("RUST_LOG", "info")
        .args(["node", "--role", role, "--data-dir"])
        .arg(&data)
        .args(["--listen", &format!("/ip4/0.0.0.0/tcp/{PORT}")])
        .args(["--workers-slots", "2", "--lease", "1.5"])
        .args(["--discovery-interval", "1", "--metrics", "0.0.0.0:9090"])
        .args(chain);
    if let Some(b) = bootstrap {
        cmd.args(["--bootstrap", b]);
    }
    let lines = lab.spawn(host, cmd);
    let mut listen = Vec::new();
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{host} did not start"));
        if let Some(a) = line.strip_prefix("listening on ") {
            listen.push(a.to_string());
        }
        if line.starts_with("metrics on ") {
            break;
        }
    }
    let bridge = format!("/ip4/{SUBNET}.{last}/tcp/{PORT}/p2p/");
    let addr = listen
        .iter()
        .find(|a| a.starts_with(&bridge))
        .unwrap_or_else(|| panic!("{host}: no listen line on the bridge: {listen:?}"))
        .clone();
    assert!(
        listen.iter().any(|a| a.starts_with("/ip4/127.0.0.1/")),
        "{host}: every interface is listed: {listen:?}"
    );
    Started { addr }
}

fn sha256_chain(input: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(input).unwrap();
    let (k, data) = text.split_once('\n').unwrap();
    let mut h: [u8; 32] = Sha256::digest(data.as_bytes()).into();
    for _ in 1..k.parse::<u64>().unwrap() {
        h = Sha256::digest(h).into();
    }
    format!("{}\n", hex::encode(h)).into_bytes()
}

/// Writes the module and inputs; returns the `submit` arguments naming them.
fn job_files(dir: &Path, name: &str, tasks: usize, rounds: u64) -> (Vec<String>, Vec<Vec<u8>>) {
    let dir = dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let module = dir.join("sha256-chain.wasm");
    std::fs::write(&module, smartnodes_examples::SHA256_CHAIN).unwrap();
    let mut args = vec![module.display().to_string()];
    let mut inputs = Vec::new();
    for i in 0..tasks {
        let input = format!("{rounds}\n{name} task {i}").into_bytes();
        let path = dir.join(format!("{i}.in"));
        std::fs::write(&path, &input).unwrap();
        args.push("--input".into());
        args.push(path.display().to_string());
        inputs.push(input);
    }
    args.extend(["--out".into(), dir.join("out").display().to_string()]);
    (args, inputs)
}

/// Checks a finished `submit`: every output there and correct. Returns the workers that
/// ran its tasks.
fn check_outputs(dir: &Path, name: &str, inputs: &[Vec<u8>]) -> std::collections::HashSet<String> {
    let out = dir.join(name).join("out");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let tasks = summary["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), inputs.len());
    for (i, input) in inputs.iter().enumerate() {
        assert_eq!(tasks[i]["verdict"], "completed", "task {i}");
        let output = std::fs::read(out.join(format!("{i}.out"))).unwrap();
        assert_eq!(output, sha256_chain(input), "{name} task {i}");
    }
    tasks
        .iter()
        .map(|t| t["worker"].as_str().unwrap().to_string())
        .collect()
}

fn sample(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap_or(0.0))
}

fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn nodes_in_separate_namespaces_find_each_other_and_lose_nothing() {
    let started = Instant::now();
    let Some(anvil) = anvil() else {
        return skip("anvil is missing (run `npm ci` in contracts/, or set SMARTNODES_ANVIL)");
    };
    let mut lab = match Lab::new() {
        Ok(lab) => lab,
        Err(e) => return skip(&format!("`ip netns` is not permitted here ({e})")),
    };
    for (host, last) in [
        ("chain", 2),
        ("v1", 11),
        ("v2", 12),
        ("w1", 21),
        ("w2", 22),
        ("w3", 23),
        ("user", 31),
    ] {
        lab.host(host, last);
    }

    // The chain: anvil in its own namespace, mining each transaction and a block a second
    // (epochs follow the chain's clock).
    let mut cmd = lab.command("chain", anvil.to_str().unwrap());
    cmd.args(["--host", &format!("{SUBNET}.2"), "--port", "8545"])
        .args(["--block-time", "1", "--mixed-mining", "--prune-history"]);
    lab.spawn("chain", cmd);
    let rpc = format!("http://{SUBNET}.2:8545");
    let key = lab.dir.path().join("dev.key");
    std::fs::write(&key, DEV_KEY).unwrap();
    let deployment = lab.dir.path().join("deployment.json");
    let (key_s, deployment_s) = (key.display().to_string(), deployment.display().to_string());
    wait_for("anvil answers", Duration::from_secs(30), || {
        lab.command("user", BIN)
            .args(["chain", "deploy", "--rpc-url", &rpc, "--key-file", &key_s])
            .args(["--out", &deployment_s, "--epoch-secs", "5"])
            .stderr(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success()
    });
    let mut accounts = Vec::new();
    for host in ["v1", "v2", "w1", "w2", "w3"] {
        let id =
            smartnodes::identity::Identity::load_or_create(&lab.dir.path().join(host)).unwrap();
        accounts.push(id.eth_address_hex());
    }
    let fund = |accounts: &[String], sno: &str| {
        let mut args = vec![
            "chain",
            "fund",
            "--rpc-url",
            &rpc,
            "--deployment",
            &deployment_s,
            "--key-file",
            &key_s,
            "--sno",
            sno,
        ];
        args.extend(accounts.iter().map(|a| a.as_str()));
        lab.run("user", &args);
    };
    // Each validator's and each worker's stake (issue 16: 1,000 and 500 SNO by default).
    fund(&accounts[..2], "1000");
    fund(&accounts[2..], "500");
    let chain: Vec<String> = ["--rpc-url", &rpc, "--deployment", &deployment_s]
        .iter()
        .map(|s| s.to_string())
        .collect();
    eprintln!(
        "[{:?}] chain deployed and accounts funded",
        started.elapsed()
    );

    // Each node told one address only.
    let v1 = node(&mut lab, "v1", 11, "validator", None, &chain);
    let w1 = node(&mut lab, "w1", 21, "worker", Some(&v1.addr), &chain);
    let w2 = node(&mut lab, "w2", 22, "worker", Some(&w1.addr), &chain);
    let w3 = node(&mut lab, "w3", 23, "worker", Some(&w2.addr), &chain);
    let _ = &w3;
    wait_for(
        "every worker registered with v1",
        Duration::from_secs(30),
        || {
            let m = lab.metrics("user", 11);
            sample(&m, "smartnodes_peers{role=\"worker\"}") >= 3.0
        },
    );
    eprintln!("[{:?}] three workers found v1", started.elapsed());

    // The user, told only w3's address, submits 24 tasks; w1's host vanishes mid-job.
    let (mut args, inputs) = job_files(lab.dir.path(), "job1", 24, 60_000);
    args.splice(0..0, ["submit".to_string()]);
    args.extend([
        "--bootstrap".into(),
        w3.addr.clone(),
        "--timeout".into(),
        "60".into(),
    ]);
    let mut submit = lab.command("user", BIN);
    submit.args(&args).stderr(Stdio::piped());
    let mut child = submit.stdout(Stdio::null()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, progress) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("submit: {line}");
            let _ = tx.send(line);
        }
    });
    let mut submit = Proc {
        name: "submit".into(),
        child,
    };
    let mut done = 0;
    while done < 4 {
        let line = progress
            .recv_timeout(Duration::from_secs(60))
            .expect("the job progresses");
        if line.starts_with('[') {
            done += 1;
        }
    }
    lab.remove("w1");
    eprintln!(
        "[{:?}] w1's namespace deleted after {done} results",
        started.elapsed()
    );
    let status = submit.child.wait().unwrap();
    assert!(status.success(), "submit: {status}");
    check_outputs(lab.dir.path(), "job1", &inputs);
    eprintln!("[{:?}] job 1: 24 of 24 outputs correct", started.elapsed());

    // A validator started later, told only w3, is found by the workers and gets work.
    let v2 = node(&mut lab, "v2", 12, "validator", Some(&w3.addr), &chain);
    wait_for(
        "both remaining workers connected to v2",
        Duration::from_secs(30),
        || {
            let m = lab.metrics("user", 12);
            sample(&m, "smartnodes_peers{role=\"worker\"}") >= 2.0
        },
    );
    eprintln!("[{:?}] v2 found by both workers", started.elapsed());
    // Validators find each other for gossip (v2 was told only w3).
    wait_for("v2 connected to v1", Duration::from_secs(15), || {
        let m = lab.metrics("user", 12);
        sample(&m, "smartnodes_peers{role=\"validator\"}") >= 1.0
    });
    let (mut args, inputs) = job_files(lab.dir.path(), "job2", 8, 10_000);
    args.splice(0..0, ["submit".to_string()]);
    args.extend([
        "--validator".into(),
        v2.addr.clone(),
        "--timeout".into(),
        "60".into(),
    ]);
    lab.run("user", &args.iter().map(|a| a.as_str()).collect::<Vec<_>>());
    check_outputs(lab.dir.path(), "job2", &inputs);
    let m = lab.metrics("user", 12);
    assert_eq!(sample(&m, "smartnodes_results_accepted_total"), 8.0, "{m}");
    eprintln!(
        "[{:?}] v2 found by the workers and ran job 2",
        started.elapsed()
    );

    // Epochs execute on the chain (v1 counts them).
    wait_for("an epoch executed", Duration::from_secs(60), || {
        sample(&lab.metrics("user", 11), "smartnodes_epochs_executed_total") >= 1.0
    });
    let m = lab.metrics("user", 11);
    assert!(
        sample(&m, "smartnodes_results_accepted_total") >= 24.0,
        "{m}"
    );
    drop(submit);
    eprintln!("[{:?}] an epoch executed; done", started.elapsed());
}
