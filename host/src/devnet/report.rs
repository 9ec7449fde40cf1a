//! The devnet's report: per job, per node, per epoch; as a table or one JSON object.

use super::chain::{sno, ChainSnapshot, NodeBalance};
use super::jobs::Artifact;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

/// One job.
#[derive(Debug, Clone)]
pub struct JobRow {
    /// Its number.
    pub number: usize,
    /// The example.
    pub kind: String,
    /// The validator it went to.
    pub validator: String,
    /// Its id (hex), once submitted.
    pub job_id: Option<String>,
    /// Tasks.
    pub tasks: usize,
    /// Tasks completed.
    pub completed: usize,
    /// Tasks whose output equals the local run's.
    pub correct: usize,
    /// Results the validator re-executed.
    pub sampled: u32,
    /// Results withdrawn after a fraud proof.
    pub revoked: u32,
    /// Fuel spent re-executing.
    pub verify_fuel: u64,
    /// Fuel of all accepted results.
    pub total_fuel: u64,
    /// From submission to the last result.
    pub seconds: f64,
    /// Why it did not finish.
    pub error: Option<String>,
    /// The combined result and whether it is correct.
    pub artifact: Option<(PathBuf, bool)>,
}

impl JobRow {
    /// All tasks completed with correct outputs (and the combined result, if any, too).
    pub fn ok(&self) -> bool {
        self.error.is_none()
            && self.correct == self.tasks
            && self.artifact.as_ref().is_none_or(|a| a.1)
    }

    /// Verification cost: re-executed fuel over accepted fuel.
    pub fn verification_cost(&self) -> f64 {
        if self.total_fuel == 0 {
            0.0
        } else {
            self.verify_fuel as f64 / self.total_fuel as f64
        }
    }
}

/// One node.
#[derive(Debug, Clone)]
pub struct NodeRow {
    /// `validator-0`, …
    pub name: String,
    /// `validator` or `worker`.
    pub role: &'static str,
    /// Its peer id.
    pub peer_id: String,
    /// Its Ethereum address.
    pub eth_address: String,
    /// Whether it cheats on purpose.
    pub cheater: bool,
    /// Tasks whose accepted result it delivered (workers).
    pub tasks: usize,
    /// Jobs submitted to it (validators).
    pub jobs: usize,
    /// Workers: the lowest reputation any validator gives it.
    pub reputation: Option<i64>,
    /// Workers: its results re-executed and matched, over all validators.
    pub verified: u64,
    /// The fraud proof id that blacklisted it, if any validator did.
    pub blacklisted: Option<String>,
    /// With a chain: its SNO.
    pub balance: Option<NodeBalance>,
    /// Peers it disconnected for their faults (`net::faults`); known in process only.
    pub peers_dropped: Option<u64>,
}

/// The whole report.
#[derive(Debug, Clone)]
pub struct DevnetReport {
    /// Where the outputs are.
    pub data_dir: PathBuf,
    /// How long the run took.
    pub elapsed: Duration,
    /// Per job.
    pub jobs: Vec<JobRow>,
    /// Per node.
    pub nodes: Vec<NodeRow>,
    /// Combined results written.
    pub artifacts: Vec<Artifact>,
    /// The chain at the end (absent without chain support).
    pub chain: Option<ChainSnapshot>,
    /// Distinct fraud proofs the validators hold.
    pub frauds_proven: usize,
    /// Evidence (issue 21): the blacklisted workers' evidence bundles written to the data
    /// dir (`smartnodes verify PATH` re-judges one).
    pub evidence: Vec<PathBuf>,
}

impl DevnetReport {
    /// Jobs whose tasks all completed with correct outputs.
    pub fn jobs_completed(&self) -> usize {
        self.jobs.iter().filter(|j| j.ok()).count()
    }

    /// Re-executed fuel over accepted fuel, over all jobs.
    pub fn verification_cost(&self) -> f64 {
        let (verify, total) = self.jobs.iter().fold((0u64, 0u64), |(v, t), j| {
            (
                v.saturating_add(j.verify_fuel),
                t.saturating_add(j.total_fuel),
            )
        });
        if total == 0 {
            0.0
        } else {
            verify as f64 / total as f64
        }
    }

    /// Peers the nodes disconnected for their faults, all nodes (`None` when the nodes
    /// are processes, whose counters the devnet cannot read).
    pub fn peers_dropped(&self) -> Option<u64> {
        self.nodes.iter().map(|n| n.peers_dropped).sum()
    }

    /// Workers some validator blacklisted (peer ids).
    pub fn blacklisted(&self) -> Vec<&NodeRow> {
        self.nodes
            .iter()
            .filter(|n| n.blacklisted.is_some())
            .collect()
    }

    /// Honest workers that were blacklisted (a fraud proof against them).
    pub fn honest_workers_flagged(&self) -> Vec<&NodeRow> {
        self.nodes
            .iter()
            .filter(|n| !n.cheater && n.blacklisted.is_some())
            .collect()
    }

    /// Cheaters no validator blacklisted.
    pub fn cheaters_missed(&self) -> Vec<&NodeRow> {
        self.nodes
            .iter()
            .filter(|n| n.cheater && n.blacklisted.is_none())
            .collect()
    }

    /// Success: every job finished with correct outputs, every cheater was caught, no
    /// honest worker was flagged, and (with a chain) enough epochs executed.
    pub fn success(&self) -> bool {
        self.jobs_completed() == self.jobs.len()
            && self.cheaters_missed().is_empty()
            && self.honest_workers_flagged().is_empty()
            && self
                .chain
                .as_ref()
                .is_none_or(|c| c.epochs_executed() >= super::chain::EPOCHS_TO_WAIT_FOR)
    }

    /// What went wrong, one line each (empty on success).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        for j in self.jobs.iter().filter(|j| !j.ok()) {
            p.push(match &j.error {
                Some(e) => format!("job #{} ({}) failed: {e}", j.number, j.kind),
                None => format!(
                    "job #{} ({}): {} of {} outputs correct{}",
                    j.number,
                    j.kind,
                    j.correct,
                    j.tasks,
                    match &j.artifact {
                        Some((path, false)) => format!(", {} is wrong", path.display()),
                        _ => String::new(),
                    }
                ),
            });
        }
        for n in self.cheaters_missed() {
            p.push(format!(
                "the cheater {} ({}) was not caught",
                n.name, n.peer_id
            ));
        }
        for n in self.honest_workers_flagged() {
            p.push(format!(
                "the honest {} ({}) was blacklisted",
                n.name, n.peer_id
            ));
        }
        if let Some(c) = &self.chain {
            if c.epochs_executed() < super::chain::EPOCHS_TO_WAIT_FOR {
                p.push(format!("only {} epochs executed", c.epochs_executed()));
            }
        }
        p
    }

    /// The report as one JSON object. The chain fields (`epochs_executed`, `sno_minted`,
    /// `sno_claimed`, `epochs`, per-node balances) are present only with a chain.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "success": self.success(),
            "data_dir": self.data_dir,
            "seconds": self.elapsed.as_secs_f64(),
            "jobs_total": self.jobs.len(),
            "jobs_completed": self.jobs_completed(),
            "tasks_total": self.jobs.iter().map(|j| j.tasks).sum::<usize>(),
            "tasks_completed": self.jobs.iter().map(|j| j.completed).sum::<usize>(),
            "tasks_correct": self.jobs.iter().map(|j| j.correct).sum::<usize>(),
            "tasks_sampled": self.jobs.iter().map(|j| u64::from(j.sampled)).sum::<u64>(),
            "tasks_revoked": self.jobs.iter().map(|j| u64::from(j.revoked)).sum::<u64>(),
            "frauds_proven": self.frauds_proven,
            "verification_cost": self.verification_cost(),
            "peers_dropped": self.peers_dropped(),
            "cheaters": self.nodes.iter().filter(|n| n.cheater).map(|n| &n.peer_id).collect::<Vec<_>>(),
            "blacklisted": self.blacklisted().iter().map(|n| &n.peer_id).collect::<Vec<_>>(),
            "honest_workers_flagged": self.honest_workers_flagged().len(),
            "problems": self.problems(),
            "evidence": self.evidence,
            "outputs": self.artifacts.iter().map(|a| json!({
                "path": a.path,
                "correct": a.correct,
                "check": a.detail,
            })).collect::<Vec<_>>(),
            "jobs": self.jobs.iter().map(|j| json!({
                "number": j.number,
                "example": j.kind,
                "validator": j.validator,
                "job_id": j.job_id,
                "tasks": j.tasks,
                "completed": j.completed,
                "correct": j.correct,
                "sampled": j.sampled,
                "revoked": j.revoked,
                "verify_fuel": j.verify_fuel,
                "total_fuel": j.total_fuel,
                "verification_cost": j.verification_cost(),
                "seconds": j.seconds,
                "error": j.error,
            })).collect::<Vec<_>>(),
            "nodes": self.nodes.iter().map(|n| {
                let mut node = json!({
                    "name": n.name,
                    "role": n.role,
                    "peer_id": n.peer_id,
                    "eth_address": n.eth_address,
                    "cheater": n.cheater,
                    "tasks": n.tasks,
                    "jobs": n.jobs,
                    "reputation": n.reputation,
                    "verified": n.verified,
                    "blacklisted": n.blacklisted,
                    "peers_dropped": n.peers_dropped,
                });
                if let Some(c) = &self.chain {
                    let b = c.balance(&n.eth_address);
                    let earned = b.map_or(0, |b| b.earned);
                    let claimed = b.map_or(0, |b| b.claimed);
                    node["sno_earned"] = json!(sno(earned));
                    node["sno_claimed"] = json!(sno(claimed));
                    node["sno_earned_wei"] = json!(earned.to_string());
                    node["sno_claimed_wei"] = json!(claimed.to_string());
                    node["stake"] = json!(sno(b.map_or(0, |b| b.stake)));
                    node["slashed"] = json!(sno(b.map_or(0, |b| b.slashed)));
                }
                node
            }).collect::<Vec<_>>(),
        });
        match &self.chain {
            None => v["chain"] = Value::Null,
            Some(c) => {
                v["chain"] = json!(c.endpoint);
                v["epochs_executed"] = json!(c.epochs_executed());
                v["sno_minted"] = json!(sno(c.sno_minted));
                v["sno_claimed"] = json!(sno(c.sno_claimed));
                v["sno_minted_wei"] = json!(c.sno_minted.to_string());
                v["sno_claimed_wei"] = json!(c.sno_claimed.to_string());
                v["epochs"] = c
                    .epochs
                    .iter()
                    .map(|e| {
                        json!({
                            "number": e.number,
                            "proposer": e.proposer,
                            "votes": e.votes,
                            "gas_used": e.gas_used,
                            "executed": e.executed,
                        })
                    })
                    .collect();
                v["balances"] = c
                    .balances
                    .iter()
                    .map(|b| {
                        json!({
                            "address": b.address,
                            "sno_earned": sno(b.earned),
                            "sno_claimed": sno(b.claimed),
                        })
                    })
                    .collect();
            }
        }
        v
    }

    /// The report as text tables.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "\nJOBS ({} of {} completed with correct outputs, {:.1} s)",
            self.jobs_completed(),
            self.jobs.len(),
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(
            s,
            "  {:<4} {:<13} {:<12} {:>6} {:>8} {:>8} {:>8} {:>10} {:>8}",
            "job",
            "example",
            "validator",
            "tasks",
            "correct",
            "sampled",
            "revoked",
            "verif.cost",
            "time"
        );
        for j in &self.jobs {
            let _ = writeln!(
                s,
                "  {:<4} {:<13} {:<12} {:>6} {:>8} {:>8} {:>8} {:>9.1}% {:>7.1}s{}",
                format!("#{}", j.number),
                j.kind,
                j.validator,
                j.tasks,
                j.correct,
                j.sampled,
                j.revoked,
                100.0 * j.verification_cost(),
                j.seconds,
                j.error
                    .as_deref()
                    .map(|e| format!("  FAILED: {e}"))
                    .unwrap_or_default()
            );
        }
        let _ = writeln!(
            s,
            "  verification cost {:.1} % of the jobs' fuel; peers dropped for faults: {}",
            100.0 * self.verification_cost(),
            self.peers_dropped()
                .map_or("- (nodes are processes)".to_string(), |d| d.to_string())
        );
        let _ = writeln!(s, "\nNODES");
        let _ = writeln!(
            s,
            "  {:<12} {:<10} {:>6} {:>10} {:>9} {:<12} {:>11} {:>11}  peer id",
            "node",
            "role",
            "tasks",
            "reputation",
            "verified",
            "blacklisted",
            "SNO earned",
            "SNO claimed"
        );
        for n in &self.nodes {
            let (earned, claimed) = match (&self.chain, &n.balance) {
                (None, _) => ("-".to_string(), "-".to_string()),
                (Some(_), b) => (
                    format!("{:.4}", sno(b.as_ref().map_or(0, |b| b.earned))),
                    format!("{:.4}", sno(b.as_ref().map_or(0, |b| b.claimed))),
                ),
            };
            let role = if n.cheater { "worker*" } else { n.role };
            let tasks = if n.role == "validator" {
                format!("{}j", n.jobs)
            } else {
                n.tasks.to_string()
            };
            let _ = writeln!(
                s,
                "  {:<12} {:<10} {:>6} {:>10} {:>9} {:<12} {:>11} {:>11}  {}",
                n.name,
                role,
                tasks,
                n.reputation.map(|r| r.to_string()).unwrap_or("-".into()),
                if n.role == "worker" {
                    n.verified.to_string()
                } else {
                    "-".into()
                },
                match &n.blacklisted {
                    Some(p) => format!("yes {}", &p[..p.len().min(8)]),
                    None if n.role == "worker" => "no".into(),
                    None => "-".into(),
                },
                earned,
                claimed,
                n.peer_id
            );
        }
        if self.nodes.iter().any(|n| n.cheater) {
            let _ = writeln!(
                s,
                "  (* cheats on purpose; validators 'tasks' = jobs admitted)"
            );
        }
        let _ = writeln!(s, "\nEPOCHS");
        match &self.chain {
            None => {
                let _ = writeln!(
                    s,
                    "  no chain (--processes without --chain RPC_URL): no epochs, no SNO"
                );
            }
            Some(c) => {
                let _ = writeln!(
                    s,
                    "  chain {}: {} executed, {:.4} SNO minted, {:.4} claimed",
                    c.endpoint,
                    c.epochs_executed(),
                    sno(c.sno_minted),
                    sno(c.sno_claimed)
                );
                let _ = writeln!(
                    s,
                    "  {:<6} {:<44} {:>6} {:>10}",
                    "epoch", "proposer", "votes", "gas used"
                );
                for e in &c.epochs {
                    let _ = writeln!(
                        s,
                        "  {:<6} {:<44} {:>6} {:>10}{}",
                        e.number,
                        e.proposer,
                        e.votes,
                        e.gas_used,
                        if e.executed { "" } else { "  (not executed)" }
                    );
                }
            }
        }
        let _ = writeln!(
            s,
            "\nFRAUD: {} proven, {} honest workers flagged",
            self.frauds_proven,
            self.honest_workers_flagged().len()
        );
        for path in &self.evidence {
            let _ = writeln!(
                s,
                "  evidence {} (re-judge: smartnodes verify {})",
                path.display(),
                path.display()
            );
        }
        let _ = writeln!(s, "\nOUTPUTS in {}", self.data_dir.display());
        for a in &self.artifacts {
            let _ = writeln!(
                s,
                "  {} {} ({})",
                a.path.display(),
                if a.correct { "ok" } else { "WRONG" },
                a.detail
            );
        }
        let problems = self.problems();
        if problems.is_empty() {
            let _ = writeln!(
                s,
                "\nOK: every job finished with correct outputs; every cheater was caught."
            );
        } else {
            let _ = writeln!(s, "\nFAILED:");
            for p in problems {
                let _ = writeln!(s, "  {p}");
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::super::chain::EpochRecord;
    use super::*;

    fn node(name: &str, cheater: bool, blacklisted: bool) -> NodeRow {
        NodeRow {
            name: name.into(),
            role: "worker",
            peer_id: format!("peer-{name}"),
            eth_address: format!("0xAb{name}"),
            cheater,
            tasks: 1,
            jobs: 0,
            reputation: Some(1),
            verified: 0,
            blacklisted: blacklisted.then(|| "proof".to_string()),
            balance: None,
            peers_dropped: Some(0),
        }
    }

    fn report(nodes: Vec<NodeRow>, chain: Option<ChainSnapshot>) -> DevnetReport {
        DevnetReport {
            data_dir: PathBuf::from("/tmp/x"),
            elapsed: Duration::from_secs(1),
            jobs: vec![JobRow {
                number: 0,
                kind: "primes".into(),
                validator: "validator-0".into(),
                job_id: None,
                tasks: 2,
                completed: 2,
                correct: 2,
                sampled: 1,
                revoked: 0,
                verify_fuel: 10,
                total_fuel: 40,
                seconds: 1.0,
                error: None,
                artifact: None,
            }],
            nodes,
            artifacts: Vec::new(),
            chain,
            frauds_proven: 0,
            evidence: Vec::new(),
        }
    }

    fn epoch(number: u64, executed: bool) -> EpochRecord {
        EpochRecord {
            number,
            proposer: "0x01".into(),
            votes: 2,
            gas_used: 100,
            executed,
        }
    }

    #[test]
    fn success_needs_every_cheater_caught_and_no_honest_worker_flagged() {
        let ok = report(vec![node("a", true, true), node("b", false, false)], None);
        assert!(ok.success(), "{:?}", ok.problems());
        assert_eq!(ok.jobs[0].verification_cost(), 0.25);
        let missed = report(vec![node("a", true, false), node("b", false, false)], None);
        assert!(!missed.success());
        assert!(missed.problems()[0].contains("was not caught"));
        let flagged = report(vec![node("b", false, true)], None);
        assert!(!flagged.success());
        assert_eq!(flagged.to_json()["honest_workers_flagged"], 1);
        let mut wrong = report(vec![node("b", false, false)], None);
        wrong.jobs[0].correct = 1;
        assert!(!wrong.success());
        assert_eq!(wrong.to_json()["jobs_completed"], 0);
    }

    #[test]
    fn chain_fields_only_with_a_chain_and_two_executed_epochs_needed() {
        let none = report(vec![node("b", false, false)], None).to_json();
        assert!(none["chain"].is_null());
        assert!(none.get("epochs_executed").is_none());
        assert!(none["nodes"][0].get("sno_earned").is_none());

        let mut snap = ChainSnapshot {
            endpoint: "embedded".into(),
            epochs: vec![epoch(1, true), epoch(2, false)],
            sno_minted: 3_000_000_000_000_000_000,
            sno_claimed: 1_000_000_000_000_000_000,
            sno_claimable: 2_000_000_000_000_000_000,
            balances: vec![NodeBalance {
                address: "0xabB".into(),
                earned: 2_000_000_000_000_000_000,
                claimed: 1_000_000_000_000_000_000,
                stake: 500_000_000_000_000_000_000,
                slashed: 0,
            }],
        };
        let one = report(vec![node("b", false, false)], Some(snap.clone()));
        assert!(!one.success());
        assert!(one.problems()[0].contains("only 1 epochs"));
        snap.epochs[1].executed = true;
        let two = report(vec![node("b", false, false)], Some(snap));
        assert!(two.success());
        let j = two.to_json();
        assert_eq!(j["epochs_executed"], 2);
        assert_eq!(j["sno_minted"], 3.0);
        assert_eq!(j["sno_claimed"], 1.0);
        // The node's balance is found by address, whatever the case of its checksum.
        assert_eq!(j["nodes"][0]["sno_earned"], 2.0);
        assert_eq!(j["nodes"][0]["sno_claimed_wei"], "1000000000000000000");
        assert!(two.to_table().contains("2 executed"));
    }
}
