//! Nodes as child processes (`smartnodes node`), as they would run on separate machines.
//!
//! Supervision: every child gets `--parent-pid <our pid>`, which makes it ask the kernel
//! for SIGTERM when its parent dies (Linux `PR_SET_PDEATHSIG`), so even a SIGKILLed
//! devnet leaves nothing running. On a normal stop, on error and on Ctrl-C the devnet
//! sends SIGTERM to each child, waits [`STOP_GRACE`], then SIGKILLs what is left; dropping
//! a [`Children`] SIGKILLs and reaps whatever is still running.
//!
//! The kernel's parent-death signal is tied to the *thread* that spawned the child: spawn
//! children from a thread that lives as long as the devnet (the main thread, or a tokio
//! worker), never from `spawn_blocking`, whose threads exit when idle.

use super::DevnetError;
use crate::roles::cheat::Cheat;
use libp2p::{Multiaddr, PeerId};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long a child gets to exit after SIGTERM before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// How long a child gets to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running child node.
#[derive(Debug)]
pub struct ChildNode {
    /// `validator-0`, `worker-3`, …
    pub name: String,
    /// The process.
    pub child: Child,
    /// Its peer id.
    pub peer_id: PeerId,
    /// Its listen address (with `/p2p/<peer id>`).
    pub addr: Multiaddr,
    /// Its data dir (keys, database, `node.log`).
    pub data_dir: PathBuf,
}

/// The children, stopped when dropped.
#[derive(Debug, Default)]
pub struct Children {
    /// In start order.
    pub nodes: Vec<ChildNode>,
}

/// How to start one child.
#[derive(Debug, Clone)]
pub struct ChildSpec<'a> {
    /// The `smartnodes` binary.
    pub binary: &'a Path,
    /// Its name.
    pub name: String,
    /// `validator` or `worker`.
    pub role: &'static str,
    /// Its data dir.
    pub data_dir: PathBuf,
    /// Validators to join.
    pub bootstrap: &'a [Multiaddr],
    /// Worker slots.
    pub slots: usize,
    /// Lease, seconds.
    pub lease: f64,
    /// Validators' sample rate, percent.
    pub sample_rate: f64,
    /// `--check-budget` (validators).
    pub check_budget: f64,
    /// A cheating worker.
    pub cheat: Option<Cheat>,
    /// A JSON-RPC chain: its URL and the deployment file.
    pub chain: Option<(&'a str, &'a Path)>,
}

impl Children {
    /// Starts a child and waits for its `peer id` and `listening on` lines. Its stderr goes
    /// to `DATA_DIR/node.log`.
    pub async fn spawn(&mut self, spec: ChildSpec<'_>) -> Result<&ChildNode, DevnetError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| DevnetError::Io { path, source }
        };
        std::fs::create_dir_all(&spec.data_dir).map_err(io(&spec.data_dir))?;
        let log_path = spec.data_dir.join("node.log");
        let log = std::fs::File::create(&log_path).map_err(io(&log_path))?;
        let mut cmd = Command::new(spec.binary);
        cmd.args(["node", "--role", spec.role, "--data-dir"])
            .arg(&spec.data_dir)
            .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
            .arg("--workers-slots")
            .arg(spec.slots.to_string())
            .arg("--lease")
            .arg(spec.lease.to_string())
            .arg("--sample-rate")
            .arg(spec.sample_rate.to_string())
            .arg("--check-budget")
            .arg(spec.check_budget.to_string())
            .arg("--parent-pid")
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        for b in spec.bootstrap {
            cmd.arg("--bootstrap").arg(b.to_string());
        }
        if let Some(cheat) = spec.cheat {
            cmd.arg("--cheat").arg(cheat.to_string());
        }
        if let Some((url, deployment)) = spec.chain {
            cmd.args(["--rpc-url", url, "--deployment"]).arg(deployment);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| DevnetError::Child(format!("spawning {}: {e}", spec.name)))?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = tokio::sync::oneshot::channel();
        // Reads the two lines, then drains stdout so the child never blocks on it.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            let mut peer = None;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(p) = line.strip_prefix("peer id ") {
                    peer = Some(p.trim().to_string());
                } else if let Some(a) = line.strip_prefix("listening on ") {
                    if let (Some(tx), Some(p)) = (tx.take(), peer.clone()) {
                        let _ = tx.send((p, a.trim().to_string()));
                    }
                }
            }
        });
        let name = spec.name.clone();
        // Registered before waiting, so a failure below still stops it.
        self.nodes.push(ChildNode {
            name: name.clone(),
            child,
            peer_id: PeerId::random(),
            addr: Multiaddr::empty(),
            data_dir: spec.data_dir.clone(),
        });
        let started = tokio::time::timeout(START_TIMEOUT, rx).await;
        let (peer, addr) = match started {
            Ok(Ok(v)) => v,
            _ => {
                return Err(DevnetError::Child(format!(
                    "{name} printed no listen address (see {})",
                    log_path.display()
                )))
            }
        };
        let node = self.nodes.last_mut().expect("pushed");
        node.peer_id = peer
            .parse()
            .map_err(|_| DevnetError::Child(format!("{name}: a bad peer id {peer:?}")))?;
        node.addr = addr
            .parse()
            .map_err(|_| DevnetError::Child(format!("{name}: a bad address {addr:?}")))?;
        Ok(node)
    }

    /// SIGTERM to every child, then SIGKILL to those still running after [`STOP_GRACE`];
    /// reaps them all.
    pub async fn stop(&mut self) {
        for node in &mut self.nodes {
            if matches!(node.child.try_wait(), Ok(None)) {
                terminate(&node.child);
            }
        }
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        loop {
            let running = self
                .nodes
                .iter_mut()
                .filter_map(|n| n.child.try_wait().ok())
                .filter(Option::is_none)
                .count();
            if running == 0 || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.kill_all();
    }

    /// SIGKILL and reap whatever still runs (does not block on a live child).
    fn kill_all(&mut self) {
        for node in &mut self.nodes {
            if matches!(node.child.try_wait(), Ok(None)) {
                tracing::warn!("{} did not stop in time: killing it", node.name);
                let _ = node.child.kill();
            }
            let _ = node.child.wait();
        }
        self.nodes.clear();
    }

    /// Children that exited on their own: `(name, status)`.
    pub fn exited(&mut self) -> Vec<(String, String)> {
        self.nodes
            .iter_mut()
            .filter_map(|n| match n.child.try_wait() {
                Ok(Some(status)) => Some((n.name.clone(), status.to_string())),
                _ => None,
            })
            .collect()
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// Sends SIGTERM (a clean shutdown) to a child.
#[cfg(unix)]
fn terminate(child: &Child) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    match i32::try_from(child.id()) {
        Ok(pid) => {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        Err(_) => tracing::warn!("pid {} out of range", child.id()),
    }
}

#[cfg(not(unix))]
fn terminate(_child: &Child) {
    // No SIGTERM: `kill_all` ends it after the grace period.
}

/// In a child node: exit when the process `parent` dies (Linux: `PR_SET_PDEATHSIG` with
/// SIGTERM, which the node handles as a clean shutdown). Returns an error when the parent
/// is already gone.
pub fn exit_with_parent(parent: u32) -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        nix::sys::prctl::set_pdeathsig(Some(nix::sys::signal::Signal::SIGTERM))
            .map_err(|e| format!("PR_SET_PDEATHSIG: {e}"))?;
        // The parent may have died before the call: then we were re-parented already.
        if nix::unistd::getppid().as_raw() as u32 != parent {
            return Err(format!("the parent process {parent} is gone"));
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = parent;
        Err("--parent-pid is supported on Linux only".into())
    }
}
