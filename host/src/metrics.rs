//! Prometheus metrics of one node, through `prometheus-client` (the crate libp2p's own
//! metrics use): libp2p's metrics (swarm, identify, Kademlia, gossipsub, bandwidth) under
//! `libp2p_`, and ours under `smartnodes_`, each incremented where its event happens:
//!
//! | metric | where it moves |
//! |---|---|
//! | `smartnodes_tasks_run_total{verdict}` | a worker finished running a task |
//! | `smartnodes_fuel_executed_total` | the same, by the task's fuel |
//! | `smartnodes_results_accepted_total`, `smartnodes_accepted_fuel_total` | a validator accepted a result |
//! | `smartnodes_verifications_total{outcome}` | a validator's lane re-ran a sampled result |
//! | `smartnodes_verification_fuel_total` | the same, by the fuel it spent |
//! | `smartnodes_verification_cost_ratio` | verification fuel / accepted fuel |
//! | `smartnodes_queue_depth` | a validator's queued tasks (set every 200 ms) |
//! | `smartnodes_leases_expired_total` | a lease ran out and its task was queued again |
//! | `smartnodes_frauds_proven_total` | a validator proved (or accepted a proof of) a fraud |
//! | `smartnodes_epochs_executed_total` | a validator counted an epoch executed on chain |
//! | `smartnodes_peers{role}` | connected peers by the role of their record |
//!
//! [`serve`] answers `GET /metrics` in the text format on a TCP address
//! (`smartnodes node --metrics ADDR`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A label `verdict`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabel {
    /// `completed`, `out_of_fuel`, ...
    pub verdict: String,
}

/// A label `outcome`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `verified` or `fraud`.
    pub outcome: String,
}

/// A label `role`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoleLabel {
    /// `validator`, `worker` or `unknown`.
    pub role: String,
}

/// A label `kind`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// `malformed` or `failed` for a fault.
    pub kind: String,
}

/// A label `reason`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// `malformed` or `failure_rate` for a dropped peer.
    pub reason: String,
}

/// One node's metrics. Cheap to share (`Arc`); every field is an atomic.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    /// Tasks a worker ran, by verdict.
    pub tasks_run: Family<VerdictLabel, Counter>,
    /// Fuel of the tasks a worker ran.
    pub fuel_executed: Counter,
    /// Results a validator accepted.
    pub results_accepted: Counter,
    /// Fuel of the results a validator accepted.
    pub accepted_fuel: Counter,
    /// Sampled results a validator re-ran, by outcome.
    pub verifications: Family<OutcomeLabel, Counter>,
    /// Fuel a validator spent re-running sampled results.
    pub verification_fuel: Counter,
    /// `verification_fuel / accepted_fuel`.
    pub verification_cost: Gauge<f64, AtomicU64>,
    /// Tasks queued on a validator.
    pub queue_depth: Gauge,
    /// Leases that ran out.
    pub leases_expired: Counter,
    /// Fraud proofs a validator made or accepted.
    pub frauds_proven: Counter,
    /// Epochs a validator counted as executed on chain.
    pub epochs_executed: Counter,
    /// Connected peers by role.
    pub peers: Family<RoleLabel, Gauge>,
    /// Peers' faults by kind (`malformed`: misbehaviour; `failed`: a mishap).
    pub peer_faults: Family<KindLabel, Counter>,
    /// Peers this node disconnected, by reason.
    pub peers_dropped: Family<ReasonLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Fresh metrics in a registry of their own.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let m = Metrics {
            registry: Mutex::new(Registry::default()),
            tasks_run: Family::default(),
            fuel_executed: Counter::default(),
            results_accepted: Counter::default(),
            accepted_fuel: Counter::default(),
            verifications: Family::default(),
            verification_fuel: Counter::default(),
            verification_cost: Gauge::default(),
            queue_depth: Gauge::default(),
            leases_expired: Counter::default(),
            frauds_proven: Counter::default(),
            epochs_executed: Counter::default(),
            peers: Family::default(),
            peer_faults: Family::default(),
            peers_dropped: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("smartnodes");
        r.register(
            "tasks_run",
            "Tasks this worker ran, by verdict",
            m.tasks_run.clone(),
        );
        r.register(
            "fuel_executed",
            "Fuel of the tasks this worker ran",
            m.fuel_executed.clone(),
        );
        r.register(
            "results_accepted",
            "Results this validator accepted",
            m.results_accepted.clone(),
        );
        r.register(
            "accepted_fuel",
            "Fuel of the results this validator accepted",
            m.accepted_fuel.clone(),
        );
        r.register(
            "verifications",
            "Sampled results this validator re-ran, by outcome",
            m.verifications.clone(),
        );
        r.register(
            "verification_fuel",
            "Fuel this validator spent re-running sampled results",
            m.verification_fuel.clone(),
        );
        r.register(
            "verification_cost_ratio",
            "Verification fuel divided by accepted fuel",
            m.verification_cost.clone(),
        );
        r.register(
            "queue_depth",
            "Tasks queued on this validator",
            m.queue_depth.clone(),
        );
        r.register(
            "leases_expired",
            "Leases that ran out (their tasks were queued again)",
            m.leases_expired.clone(),
        );
        r.register(
            "frauds_proven",
            "Fraud proofs this validator made or accepted",
            m.frauds_proven.clone(),
        );
        r.register(
            "epochs_executed",
            "Epochs this validator counted as executed on chain",
            m.epochs_executed.clone(),
        );
        r.register(
            "peers",
            "Connected peers by the role of their record",
            m.peers.clone(),
        );
        r.register(
            "peer_faults",
            "Peers' faults by kind: malformed (misbehaviour) or failed (truncated, reset, timed out)",
            m.peer_faults.clone(),
        );
        r.register(
            "peers_dropped",
            "Peers this node disconnected for their faults, by reason",
            m.peers_dropped.clone(),
        );
        *m.registry.lock().expect("poisoned") = registry;
        m
    }

    /// Runs `f` on the registry (the network registers libp2p's metrics through it).
    pub fn with_registry<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        f(&mut self.registry.lock().expect("poisoned"))
    }

    /// A worker ran a task.
    pub fn task_run(&self, verdict: &str, fuel: u64) {
        self.tasks_run
            .get_or_create(&VerdictLabel {
                verdict: verdict.to_string(),
            })
            .inc();
        self.fuel_executed.inc_by(fuel);
    }

    /// A validator accepted a result of `fuel`.
    pub fn result_accepted(&self, fuel: u64) {
        self.results_accepted.inc();
        self.accepted_fuel.inc_by(fuel);
        self.update_cost();
    }

    /// A validator re-ran a sampled result with `fuel`; `outcome` is `verified` or `fraud`.
    pub fn verified(&self, outcome: &str, fuel: u64) {
        self.verifications
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_string(),
            })
            .inc();
        self.verification_fuel.inc_by(fuel);
        self.update_cost();
    }

    /// A peer's request or response failed: `kind` is `malformed` or `failed`.
    pub fn peer_fault(&self, kind: &str) {
        self.peer_faults
            .get_or_create(&KindLabel {
                kind: kind.to_string(),
            })
            .inc();
    }

    /// This node dropped a peer for `reason`.
    pub fn peer_dropped(&self, reason: &str) {
        self.peers_dropped
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Peers dropped, all reasons.
    pub fn peers_dropped_total(&self) -> u64 {
        ["malformed", "failure_rate"]
            .iter()
            .map(|r| {
                self.peers_dropped
                    .get_or_create(&ReasonLabel {
                        reason: r.to_string(),
                    })
                    .get()
            })
            .sum()
    }

    fn update_cost(&self) {
        let accepted = self.accepted_fuel.get();
        if accepted > 0 {
            self.verification_cost
                .set(self.verification_fuel.get() as f64 / accepted as f64);
        }
    }

    /// The registry in the text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().expect("poisoned");
        prometheus_client::encoding::text::encode(&mut out, &registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// At most this many scrapes are answered at once; more wait for the listener.
const MAX_CONNECTIONS: usize = 16;

/// Serves `GET /metrics` on `addr` until the returned task is aborted. Returns the bound
/// address (`addr` may ask for port 0).
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let task = tokio::spawn(async move {
        loop {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let (stream, peer) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!("metrics: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let answer =
                    tokio::time::timeout(Duration::from_secs(5), answer(stream, &metrics)).await;
                if !matches!(answer, Ok(Ok(()))) {
                    tracing::debug!(%peer, "metrics: request not answered");
                }
            });
        }
    });
    Ok((bound, task))
}

/// Reads one request head (at most 8 KiB) and answers it.
async fn answer(mut stream: tokio::net::TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > 8 << 10 {
            break;
        }
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next(), parts.next());
    let (status, content_type, body) = match (method, path) {
        (Some("GET"), Some("/metrics")) => ("200 OK", CONTENT_TYPE, metrics.encode()),
        (Some("GET"), _) => (
            "404 Not Found",
            "text/plain",
            "metrics are at /metrics\n".into(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "only GET /metrics\n".into(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_show_in_the_text_format() {
        let m = Metrics::new();
        m.task_run("completed", 1000);
        m.task_run("completed", 500);
        m.result_accepted(1000);
        m.verified("verified", 250);
        m.peers
            .get_or_create(&RoleLabel {
                role: "validator".into(),
            })
            .set(2);
        let text = m.encode();
        assert!(
            text.contains("smartnodes_tasks_run_total{verdict=\"completed\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("smartnodes_fuel_executed_total 1500"),
            "{text}"
        );
        assert!(
            text.contains("smartnodes_verification_fuel_total 250"),
            "{text}"
        );
        assert!(
            text.contains("smartnodes_verification_cost_ratio 0.25"),
            "{text}"
        );
        assert!(
            text.contains("smartnodes_peers{role=\"validator\"} 2"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
