//! Evidence bundles: one self-contained file that lets anyone re-check a claim about a
//! worker's receipt without the network, and the re-check itself (pure: the caller passes
//! the function that runs the task, so no engine, disk or network is touched here).
//!
//! ## The file
//! `MAGIC` (8 bytes) ‖ version (1 byte, [`VERSION`]) ‖ `postcard(Bundle)`. The decoder
//! refuses anything larger than [`MAX_BUNDLE`] before reading it, an unknown version,
//! trailing bytes and any encoding that is not the canonical one (it re-encodes and
//! compares), so one bundle has exactly one byte string.
//!
//! A [`Bundle`] holds the [`Claim`] (today a validator's signed fraud proof: the task, the
//! worker's signed receipt with its engine fingerprint, the prover's observation) and the
//! bytes of the task's module and input. Its **id** is the claim's id, which for a fraud
//! proof is [`FraudProof::id`]: the proof commits to the module and the input by sha256
//! (through the task, whose commitment the worker signed) and the decoder checks the bytes
//! against those hashes, so the id binds every byte of the bundle. It is the hash the epoch
//! summary records as the blacklist entry's evidence, the name validators serve bundles by
//! and the name of the file.
//!
//! ## The re-check ([`judge`])
//! Form first (the worker's signature, the receipt commits to the task, the prover's
//! signature, the observation contradicts the receipt). Then what the receipt's own form
//! proves (the `form_fault` of the report): a receipt claiming more fuel than the task's
//! limit is false on every engine; a receipt signed for an engine other than the one the
//! prover ran and this machine runs (the network's: one engine per network) is false too.
//! Neither needs a run. A bundle whose prover ran another engine than this machine cannot
//! be checked here (`cannot_check` with the reason). Otherwise one run: the claim holds
//! (`worker_lied`) only when the run gives exactly the prover's observation; the receipt's
//! own outcome means `worker_honest`; anything else means `prover_wrong`. Under the
//! network's engine (the in-wasm meter) every verdict is reproducible, a too-deep recursion
//! included, so none is set aside.

use crate::net::proto::{encode, limits, FraudProof, Hash, Observed, Receipt, TaskSpec};
use libp2p::identity::PublicKey;
use serde::{Deserialize, Serialize};
use smartnodes_runtime::sha256;

/// The first bytes of every bundle file.
pub const MAGIC: &[u8; 8] = b"SNEVIDNC";
/// The first bytes of every receipt file ([`ReceiptFile`]).
pub const RECEIPT_MAGIC: &[u8; 8] = b"SNRECEIP";
/// The format version this code writes and reads.
pub const VERSION: u8 = 1;
/// Largest module a bundle carries (the runtime's module limit).
pub const MAX_MODULE: u64 = smartnodes_runtime::Limits::DEFAULT.max_module_bytes;
/// Largest bundle: the largest module and input plus 64 KiB for the claim.
pub const MAX_BUNDLE: u64 = MAX_MODULE + limits::MAX_BLOB + (64 << 10);
/// Largest receipt file.
pub const MAX_RECEIPT_FILE: u64 = 64 << 10;

/// What a bundle claims. An enum so that other kinds of claim can join without a new
/// format: a new variant is appended, old bundles decode unchanged. (A receipt false by its
/// form, from a foreign engine or above the fuel limit, is a `Reexecution` proof whose
/// prover restated the receipt on the network's engine: [`judge`] needs no run for it.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Claim {
    /// A validator re-ran the task and got something other than the worker's receipt
    /// (its signed [`FraudProof`]).
    Reexecution(FraudProof),
}

impl Claim {
    /// The claim's id (for a fraud proof, [`FraudProof::id`]).
    pub fn id(&self) -> Hash {
        match self {
            Claim::Reexecution(p) => p.id(),
        }
    }

    /// The stable name used in JSON.
    pub fn name(&self) -> &'static str {
        match self {
            Claim::Reexecution(_) => "reexecution_mismatch",
        }
    }

    /// The task the claim is about.
    pub fn task(&self) -> &TaskSpec {
        match self {
            Claim::Reexecution(p) => &p.claim.task,
        }
    }

    /// The worker's signed receipt the claim is about.
    pub fn receipt(&self) -> &Receipt {
        match self {
            Claim::Reexecution(p) => &p.claim.receipt,
        }
    }
}

/// A claim with everything needed to re-check it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// What is claimed.
    pub claim: Claim,
    /// The task's module (its sha256 is `claim.task().module`).
    pub module: Vec<u8>,
    /// The task's input (its sha256 is `claim.task().input`).
    pub input: Vec<u8>,
}

/// Why bytes are not a bundle (or a receipt file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// Larger than the format allows.
    #[error("{len} bytes is larger than the largest {what} ({max} bytes)")]
    Oversized {
        /// What was expected.
        what: &'static str,
        /// Its length.
        len: u64,
        /// The bound.
        max: u64,
    },
    /// Too short to hold the header.
    #[error("truncated: {len} bytes cannot hold a {what} header")]
    Truncated {
        /// What was expected.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// Does not start with the magic bytes.
    #[error("not a smartnodes {0} (wrong magic bytes)")]
    NotABundle(&'static str),
    /// A version this code does not know.
    #[error("format version {0} is not supported (this smartnodes reads version {VERSION})")]
    Version(u8),
    /// The body does not decode.
    #[error("the body does not decode (truncated or corrupt): {0}")]
    Malformed(String),
    /// Bytes after the body.
    #[error("{0} bytes after the end of the body")]
    Trailing(usize),
    /// Decodes, but is not the canonical encoding of what it decodes to.
    #[error("not the canonical encoding")]
    NotCanonical,
    /// The module or input is too large or does not hash to what the task names.
    #[error("the {0}")]
    Content(String),
}

/// Checks a module and an input against the task's hashes and the size limits.
fn check_content(task: &TaskSpec, module: &[u8], input: &[u8]) -> Result<(), BundleError> {
    let bad = |s: String| Err(BundleError::Content(s));
    if module.len() as u64 > MAX_MODULE {
        return bad(format!("module of {} bytes is too large", module.len()));
    }
    if input.len() as u64 > limits::MAX_BLOB {
        return bad(format!("input of {} bytes is too large", input.len()));
    }
    if sha256(module) != task.module {
        return bad("module is not the task's (its sha256 differs)".into());
    }
    if sha256(input) != task.input {
        return bad("input is not the task's (its sha256 differs)".into());
    }
    Ok(())
}

/// `magic ‖ VERSION ‖ postcard(value)`.
fn frame<T: Serialize>(magic: &[u8; 8], value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(9);
    out.extend_from_slice(magic);
    out.push(VERSION);
    out.extend_from_slice(&encode(value));
    out
}

/// The inverse of [`frame`], bounded and canonical.
fn unframe<T: Serialize + for<'de> Deserialize<'de>>(
    bytes: &[u8],
    magic: &[u8; 8],
    what: &'static str,
    max: u64,
) -> Result<T, BundleError> {
    if bytes.len() as u64 > max {
        return Err(BundleError::Oversized {
            what,
            len: bytes.len() as u64,
            max,
        });
    }
    if bytes.len() < 9 {
        if !magic.starts_with(bytes) {
            return Err(BundleError::NotABundle(what));
        }
        return Err(BundleError::Truncated {
            what,
            len: bytes.len(),
        });
    }
    if &bytes[..8] != magic {
        return Err(BundleError::NotABundle(what));
    }
    if bytes[8] != VERSION {
        return Err(BundleError::Version(bytes[8]));
    }
    let body = &bytes[9..];
    let (value, rest): (T, _) =
        postcard::take_from_bytes(body).map_err(|e| BundleError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(BundleError::Trailing(rest.len()));
    }
    if encode(&value) != body {
        return Err(BundleError::NotCanonical);
    }
    Ok(value)
}

impl Bundle {
    /// A bundle of `claim` with the task's module and input (checked against the task).
    pub fn new(claim: Claim, module: Vec<u8>, input: Vec<u8>) -> Result<Bundle, BundleError> {
        check_content(claim.task(), &module, &input)?;
        Ok(Bundle {
            claim,
            module,
            input,
        })
    }

    /// The bundle's id: its claim's id (see the module docs).
    pub fn id(&self) -> Hash {
        self.claim.id()
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        frame(MAGIC, self)
    }

    /// Reads a bundle file: bounded, versioned, canonical, and its module and input are the
    /// task's. The claim itself is not judged here ([`judge`] does).
    pub fn from_bytes(bytes: &[u8]) -> Result<Bundle, BundleError> {
        let bundle: Bundle = unframe(bytes, MAGIC, "evidence bundle", MAX_BUNDLE)?;
        check_content(bundle.claim.task(), &bundle.module, &bundle.input)?;
        Ok(bundle)
    }
}

/// A receipt with the task it commits to: what `smartnodes submit` writes beside each
/// output (`INDEX.receipt`), so that anyone holding the module and the input can re-check
/// it (`smartnodes verify --receipt`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptFile {
    /// The task.
    pub task: TaskSpec,
    /// The worker's signed receipt.
    pub receipt: Receipt,
}

impl ReceiptFile {
    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        frame(RECEIPT_MAGIC, self)
    }

    /// Reads a receipt file (bounded, versioned, canonical).
    pub fn from_bytes(bytes: &[u8]) -> Result<ReceiptFile, BundleError> {
        unframe(bytes, RECEIPT_MAGIC, "receipt file", MAX_RECEIPT_FILE)
    }
}

/// What a re-check concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The receipt is false, as claimed.
    WorkerLied,
    /// The receipt is true.
    WorkerHonest,
    /// The claim is false (or not the prover's, or not about a receipt the worker signed).
    ProverWrong(String),
    /// This machine cannot tell.
    CannotCheck(String),
}

impl Verdict {
    /// The stable name used in JSON.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::WorkerLied => "worker_lied",
            Verdict::WorkerHonest => "worker_honest",
            Verdict::ProverWrong(_) => "prover_wrong",
            Verdict::CannotCheck(_) => "cannot_check",
        }
    }

    /// Why (for the verdicts that have a reason).
    pub fn reason(&self) -> Option<&str> {
        match self {
            Verdict::ProverWrong(r) | Verdict::CannotCheck(r) => Some(r),
            _ => None,
        }
    }
}

/// The result of a re-check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// `reexecution_mismatch` for a fraud proof, `receipt` for a receipt checked alone.
    pub claim: &'static str,
    /// The bundle's id (none for a receipt checked alone).
    pub id: Option<Hash>,
    /// The receipt is signed by its worker and commits to the task.
    pub receipt_valid: bool,
    /// The worker's signature verifies.
    pub worker_signature_valid: bool,
    /// The prover's signature verifies (none for a receipt checked alone).
    pub prover_signature_valid: Option<bool>,
    /// What the receipt claims.
    pub claimed: Observed,
    /// What the prover says it observed (none for a receipt checked alone).
    pub prover_observed: Option<Observed>,
    /// What running the task here gave (none when it was not run).
    pub observed: Option<Observed>,
    /// The conclusion.
    pub verdict: Verdict,
    /// Why the receipt is false by its form alone, when it is (then nothing was run).
    pub form_fault: Option<String>,
    /// Whether the checked claim holds: the worker lied for a bundle, the receipt is true
    /// for a receipt checked alone.
    pub holds: bool,
}

/// The receipt's form: `(worker signature valid, receipt valid, why not)`.
fn receipt_form(task: &TaskSpec, receipt: &Receipt) -> (bool, bool, Option<String>) {
    let signature = receipt.verify();
    let body = &receipt.body;
    let why = if let Err(e) = &signature {
        Some(format!("the receipt's signature: {e}"))
    } else if body.job_id != task.job_id || body.index != task.index {
        Some("the receipt is for another task".to_string())
    } else if body.task != task.commitment() {
        Some("the receipt does not commit to this task".to_string())
    } else {
        None
    };
    (signature.is_ok(), why.is_none(), why)
}

/// Runs the task unless its engine or limits rule it out: `Ok(observed)` or the reason it
/// cannot be checked here. `run` errors are host failures and are returned as `Err(Err)`.
fn rerun(
    task: &TaskSpec,
    receipt: &Receipt,
    engine: &Hash,
    run: impl FnOnce() -> Result<Observed, String>,
) -> Result<Result<Observed, String>, String> {
    if receipt.body.engine != *engine {
        return Ok(Err(format!(
            "the receipt is from engine {}, this machine runs engine {}",
            hex::encode(receipt.body.engine),
            hex::encode(engine)
        )));
    }
    if let Err(e) = task.limits.check() {
        return Ok(Err(format!("the task's limits are invalid: {e}")));
    }
    Ok(Ok(run()?))
}

/// Re-checks a bundle's claim on an engine with fingerprint `engine`. `run` runs the
/// bundle's task (module, input, limits, seed) on that engine; its error is a host failure
/// and is returned as `Err`, never as a verdict.
pub fn judge(
    bundle: &Bundle,
    engine: &Hash,
    run: impl FnOnce(&TaskSpec, &[u8], &[u8]) -> Result<Observed, String>,
) -> Result<Report, String> {
    let Claim::Reexecution(proof) = &bundle.claim;
    let task = &proof.claim.task;
    let receipt = &proof.claim.receipt;
    let claimed = Observed::claimed(&receipt.body);
    let prover = proof.claim.observed;
    let (worker_signature_valid, receipt_valid, receipt_problem) = receipt_form(task, receipt);
    let form = proof.check_form();
    let prover_signature_valid =
        PublicKey::try_decode_protobuf(&proof.public_key).is_ok_and(|key| {
            key.to_peer_id().to_bytes() == proof.claim.validator
                && key.verify(&encode(&proof.claim), &proof.signature)
        });
    let mut report = Report {
        claim: bundle.claim.name(),
        id: Some(bundle.id()),
        receipt_valid,
        worker_signature_valid,
        prover_signature_valid: Some(prover_signature_valid),
        claimed,
        prover_observed: Some(prover),
        observed: None,
        verdict: Verdict::WorkerLied,
        form_fault: None,
        holds: false,
    };
    report.verdict = if let Some(why) = receipt_problem {
        Verdict::ProverWrong(format!("{why}: the worker never claimed this"))
    } else if let Err(why) = form {
        Verdict::ProverWrong(format!("the proof is not well formed: {why}"))
    } else if prover.engine != *engine {
        Verdict::CannotCheck(format!(
            "the prover ran engine {}, this machine runs engine {}",
            hex::encode(prover.engine),
            hex::encode(engine)
        ))
    } else if let Some(why) = receipt.body.form_fault(task.limits.fuel, engine) {
        // The prover's engine is this machine's: the network's.
        report.form_fault = Some(why);
        Verdict::WorkerLied
    } else {
        match rerun(task, receipt, engine, || {
            run(task, &bundle.module, &bundle.input)
        })? {
            Err(why) => Verdict::CannotCheck(why),
            Ok(observed) => {
                report.observed = Some(observed);
                if observed == prover {
                    Verdict::WorkerLied
                } else if observed == claimed {
                    Verdict::WorkerHonest
                } else {
                    Verdict::ProverWrong(format!(
                        "re-running the task gives {}, which is neither the receipt's nor the prover's",
                        describe(&observed)
                    ))
                }
            }
        }
    };
    report.holds = report.verdict == Verdict::WorkerLied;
    Ok(report)
}

/// Re-checks a receipt alone against the task's module and input: it holds when running
/// the task here gives exactly what it claims (`worker_honest`).
pub fn judge_receipt(
    file: &ReceiptFile,
    module: &[u8],
    input: &[u8],
    engine: &Hash,
    run: impl FnOnce(&TaskSpec, &[u8], &[u8]) -> Result<Observed, String>,
) -> Result<Result<Report, BundleError>, String> {
    if let Err(e) = check_content(&file.task, module, input) {
        return Ok(Err(e));
    }
    let (task, receipt) = (&file.task, &file.receipt);
    let claimed = Observed::claimed(&receipt.body);
    let (worker_signature_valid, receipt_valid, problem) = receipt_form(task, receipt);
    let mut report = Report {
        claim: "receipt",
        id: None,
        receipt_valid,
        worker_signature_valid,
        prover_signature_valid: None,
        claimed,
        prover_observed: None,
        observed: None,
        verdict: Verdict::WorkerHonest,
        form_fault: None,
        holds: false,
    };
    report.verdict = if let Some(why) = problem {
        Verdict::CannotCheck(format!("{why}: the worker never claimed this"))
    } else if claimed.fuel_used > task.limits.fuel {
        // False on any engine: none reports more fuel than the budget. (A receipt from
        // another engine is not judged by its engine here: nothing says which engine the
        // receipt's network runs.)
        report.form_fault = receipt
            .body
            .form_fault(task.limits.fuel, &receipt.body.engine);
        Verdict::WorkerLied
    } else {
        match rerun(task, receipt, engine, || run(task, module, input))? {
            Err(why) => Verdict::CannotCheck(why),
            Ok(observed) => {
                report.observed = Some(observed);
                if observed == claimed {
                    Verdict::WorkerHonest
                } else {
                    Verdict::WorkerLied
                }
            }
        }
    };
    report.holds = report.verdict == Verdict::WorkerHonest;
    Ok(Ok(report))
}

/// `completed, output 1a2b…, fuel 123` (for people).
pub fn describe(o: &Observed) -> String {
    let mut s = crate::net::proto::verdict_name(o.verdict).to_string();
    if o.verdict.0 == 2 {
        s.push_str(&format!(" (code {})", o.verdict.1));
    }
    if let Some(h) = o.output_hash {
        s.push_str(&format!(", output {}", hex::encode(&h[..8])));
    }
    s.push_str(&format!(", fuel {}", o.fuel_used));
    s
}

/// An observation as JSON.
pub fn observed_json(o: &Observed) -> serde_json::Value {
    serde_json::json!({
        "verdict": crate::net::proto::verdict_name(o.verdict),
        "verdict_code": [o.verdict.0, o.verdict.1],
        "output_hash": o.output_hash.map(hex::encode),
        "fuel_used": o.fuel_used,
        "engine": hex::encode(o.engine),
    })
}

impl Report {
    /// The report as JSON (`claim`, `receipt_valid`, `worker_signature_valid`, `observed`,
    /// `claimed`, `verdict`, `reason`, and `id`, `prover_signature_valid`,
    /// `prover_observed`, `form_fault`, `holds`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "claim": self.claim,
            "id": self.id.map(hex::encode),
            "receipt_valid": self.receipt_valid,
            "worker_signature_valid": self.worker_signature_valid,
            "prover_signature_valid": self.prover_signature_valid,
            "claimed": observed_json(&self.claimed),
            "prover_observed": self.prover_observed.as_ref().map(observed_json),
            "observed": self.observed.as_ref().map(observed_json),
            "verdict": self.verdict.name(),
            "reason": self.verdict.reason(),
            "form_fault": self.form_fault,
            "holds": self.holds,
        })
    }

    /// One line a person understands.
    pub fn line(&self) -> String {
        let who = |o: &Option<Observed>| o.as_ref().map_or("-".to_string(), describe);
        let what = match &self.verdict {
            Verdict::WorkerLied if self.form_fault.is_some() => format!(
                "the worker lied: its signed receipt claims {}, false by its form alone ({})",
                describe(&self.claimed),
                self.form_fault.as_deref().unwrap_or_default()
            ),
            Verdict::WorkerLied if self.claim == "receipt" => format!(
                "the worker lied: its receipt claims {}, re-running the task here gives {}",
                describe(&self.claimed),
                who(&self.observed)
            ),
            Verdict::WorkerLied => format!(
                "the worker lied: its signed receipt claims {}, re-running the task here gives {}, as the prover said",
                describe(&self.claimed),
                who(&self.observed)
            ),
            Verdict::WorkerHonest => format!(
                "the worker was honest: re-running the task here gives what its receipt claims ({})",
                describe(&self.claimed)
            ),
            Verdict::ProverWrong(why) => format!("the prover is wrong: {why}"),
            Verdict::CannotCheck(why) => format!("cannot check here: {why}"),
        };
        format!("{}: {what}", self.verdict.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::proto::{FraudClaim, JobLimits, ReceiptBody};
    use libp2p::identity::Keypair;
    use rand::{Rng, SeedableRng};

    const ENGINE: Hash = [7; 32];
    const TRUE: Observed = Observed {
        verdict: (0, 0),
        output_hash: Some([1; 32]),
        fuel_used: 100,
        engine: ENGINE,
    };

    /// A bundle whose worker claims `claimed` and whose prover says `observed`.
    fn bundle(claimed: Observed, observed: Observed, engine: Hash) -> Bundle {
        let (worker, validator) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let (module, input) = (b"\0asm module".to_vec(), b"some input".to_vec());
        let task = TaskSpec {
            job_id: [3; 32],
            index: 2,
            module: sha256(&module),
            input: sha256(&input),
            limits: JobLimits::default(),
        };
        let receipt = Receipt::sign(
            ReceiptBody {
                job_id: task.job_id,
                index: task.index,
                task: task.commitment(),
                verdict: claimed.verdict,
                output_hash: claimed.output_hash,
                fuel_used: claimed.fuel_used,
                engine,
                worker: worker.public().to_peer_id().to_bytes(),
            },
            &worker,
        );
        let proof = FraudProof::sign(
            FraudClaim {
                task,
                receipt,
                observed,
                validator: validator.public().to_peer_id().to_bytes(),
            },
            &validator,
        );
        Bundle::new(Claim::Reexecution(proof), module, input).unwrap()
    }

    fn lie() -> Observed {
        Observed {
            output_hash: Some([9; 32]),
            ..TRUE
        }
    }

    fn judged(b: &Bundle) -> Report {
        judge(b, &ENGINE, |_, _, _| Ok(TRUE)).unwrap()
    }

    #[test]
    fn a_true_claim_holds_and_a_false_one_does_not() {
        let b = bundle(lie(), TRUE, ENGINE);
        let r = judged(&b);
        assert_eq!(r.verdict, Verdict::WorkerLied);
        assert!(r.holds && r.receipt_valid && r.worker_signature_valid);
        assert_eq!(r.observed, Some(TRUE));
        assert_eq!(r.id, Some(b.id()));

        // The worker told the truth; the prover claims otherwise.
        let r = judged(&bundle(TRUE, lie(), ENGINE));
        assert_eq!(r.verdict, Verdict::WorkerHonest);
        assert!(!r.holds);

        // Both wrong: the claim does not hold either.
        let other = Observed {
            fuel_used: 5,
            ..TRUE
        };
        let r = judged(&bundle(lie(), other, ENGINE));
        assert_eq!(r.verdict.name(), "prover_wrong");
    }

    #[test]
    fn a_receipt_false_by_its_form_is_a_lie_and_nothing_runs() {
        let never = |_: &TaskSpec, _: &[u8], _: &[u8]| -> Result<Observed, String> {
            panic!("must not run")
        };
        // Signed for another engine than the prover's and this machine's (the network's).
        let b = bundle(TRUE, TRUE, [8; 32]);
        let r = judge(&b, &ENGINE, never).unwrap();
        assert_eq!(r.verdict, Verdict::WorkerLied);
        assert!(r.holds && r.form_fault.as_deref().unwrap().contains("engine"));
        assert!(r.line().contains("false by its form"));
        assert_eq!(r.to_json()["form_fault"], r.form_fault.clone().unwrap());
        // Fuel above the task's limit, on the network's engine.
        let over = Observed {
            fuel_used: JobLimits::default().fuel + 1,
            ..TRUE
        };
        let r = judge(&bundle(over, TRUE, ENGINE), &ENGINE, never).unwrap();
        assert_eq!(r.verdict, Verdict::WorkerLied);
        assert!(r.form_fault.unwrap().contains("limit"));
        // A receipt checked alone: over the limit is a lie on any engine.
        let b = bundle(over, TRUE, [8; 32]);
        let file = ReceiptFile {
            task: b.claim.task().clone(),
            receipt: b.claim.receipt().clone(),
        };
        let r = judge_receipt(&file, &b.module, &b.input, &ENGINE, never)
            .unwrap()
            .unwrap();
        assert_eq!(r.verdict, Verdict::WorkerLied);
        assert!(!r.holds);
    }

    #[test]
    fn another_engine_cannot_be_checked_and_nothing_runs() {
        let never = |_: &TaskSpec, _: &[u8], _: &[u8]| -> Result<Observed, String> {
            panic!("must not run")
        };
        // The prover ran an engine this machine does not.
        let elsewhere = Observed {
            engine: [8; 32],
            ..TRUE
        };
        let r = judge(&bundle(lie(), elsewhere, [8; 32]), &ENGINE, never).unwrap();
        assert_eq!(r.verdict.name(), "cannot_check");
        assert!(r.verdict.reason().unwrap().contains("engine"));
        assert!(!r.holds);
        // A receipt alone from another engine: nothing says it is not the network's.
        let b = bundle(lie(), TRUE, [8; 32]);
        let file = ReceiptFile {
            task: b.claim.task().clone(),
            receipt: b.claim.receipt().clone(),
        };
        let r = judge_receipt(&file, &b.module, &b.input, &ENGINE, never)
            .unwrap()
            .unwrap();
        assert_eq!(r.verdict.name(), "cannot_check");
    }

    #[test]
    fn a_tampered_proof_or_receipt_is_the_provers_fault() {
        let mut b = bundle(lie(), TRUE, ENGINE);
        let Claim::Reexecution(p) = &mut b.claim;
        p.claim.observed.fuel_used += 1;
        let r = judged(&b);
        assert_eq!(r.verdict.name(), "prover_wrong");
        assert_eq!(r.prover_signature_valid, Some(false));

        let mut b = bundle(lie(), TRUE, ENGINE);
        let Claim::Reexecution(p) = &mut b.claim;
        p.claim.receipt.body.fuel_used += 1;
        let r = judged(&b);
        assert!(!r.worker_signature_valid && !r.receipt_valid);
        assert_eq!(r.verdict.name(), "prover_wrong");
    }

    #[test]
    fn host_failures_are_errors_not_verdicts() {
        let b = bundle(lie(), TRUE, ENGINE);
        assert!(judge(&b, &ENGINE, |_, _, _| Err("disk".into())).is_err());
    }

    #[test]
    fn bundles_round_trip_canonically_and_bad_ones_are_refused() {
        let b = bundle(lie(), TRUE, ENGINE);
        let bytes = b.to_bytes();
        assert_eq!(Bundle::from_bytes(&bytes).unwrap(), b);
        let err = |bytes: &[u8]| Bundle::from_bytes(bytes).unwrap_err();
        assert!(matches!(err(&bytes[..5]), BundleError::Truncated { .. }));
        assert!(matches!(
            err(&bytes[..bytes.len() - 1]),
            BundleError::Malformed(_)
        ));
        assert!(matches!(err(b"garbage!!!"), BundleError::NotABundle(_)));
        let mut v2 = bytes.clone();
        v2[8] = 2;
        assert_eq!(err(&v2), BundleError::Version(2));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(err(&trailing), BundleError::Trailing(1));
        let huge = vec![0u8; MAX_BUNDLE as usize + 1];
        assert!(matches!(err(&huge), BundleError::Oversized { .. }));
        // A module that is not the task's.
        let mut swapped = b.clone();
        swapped.module.push(0);
        assert!(matches!(err(&swapped.to_bytes()), BundleError::Content(_)));
        // An overlong varint (index 2 as two bytes) decodes in postcard but is refused.
        let mut body = encode(&b);
        let at = body
            .windows(33)
            .position(|w| w[..32] == [3; 32] && w[32] == 2);
        let at = at.expect("the task's job id and index") + 32;
        body.splice(at..at + 1, [0x82, 0x00]);
        let mut overlong = MAGIC.to_vec();
        overlong.push(VERSION);
        overlong.extend_from_slice(&body);
        assert!(Bundle::from_bytes(&overlong).is_err());
    }

    #[test]
    fn receipt_files_round_trip_and_check_alone() {
        let b = bundle(lie(), TRUE, ENGINE);
        let file = ReceiptFile {
            task: b.claim.task().clone(),
            receipt: b.claim.receipt().clone(),
        };
        let back = ReceiptFile::from_bytes(&file.to_bytes()).unwrap();
        assert_eq!(back, file);
        let r = judge_receipt(&file, &b.module, &b.input, &ENGINE, |_, _, _| Ok(lie()))
            .unwrap()
            .unwrap();
        assert_eq!(r.verdict, Verdict::WorkerHonest);
        assert!(r.holds);
        let r = judge_receipt(&file, &b.module, &b.input, &ENGINE, |_, _, _| Ok(TRUE))
            .unwrap()
            .unwrap();
        assert_eq!(r.verdict, Verdict::WorkerLied);
        assert!(!r.holds);
        let wrong_input = judge_receipt(&file, &b.module, b"other", &ENGINE, |_, _, _| Ok(TRUE));
        assert!(wrong_input.unwrap().is_err());
    }

    /// The decoder on mutated, truncated and random bytes: it returns, never panics, and
    /// whatever it accepts re-encodes to the same bytes.
    #[test]
    fn fuzz_the_decoder() {
        let b = bundle(lie(), TRUE, ENGINE);
        let seed = b.to_bytes();
        let receipt = ReceiptFile {
            task: b.claim.task().clone(),
            receipt: b.claim.receipt().clone(),
        }
        .to_bytes();
        let mut rng = rand::rngs::StdRng::seed_from_u64(21);
        let mut accepted = 0;
        for i in 0..20_000 {
            let base = if i % 2 == 0 { &seed } else { &receipt };
            let mut bytes = base.clone();
            match rng.gen_range(0..4) {
                0 => {
                    for _ in 0..rng.gen_range(1..4) {
                        let at = rng.gen_range(0..bytes.len());
                        bytes[at] = rng.gen();
                    }
                }
                1 => bytes.truncate(rng.gen_range(0..bytes.len())),
                2 => {
                    let at = rng.gen_range(9..bytes.len());
                    let n = rng.gen_range(1..8);
                    bytes.splice(at..at, (0..n).map(|_| rng.gen::<u8>()));
                }
                _ => {
                    let n = rng.gen_range(0..64);
                    bytes.truncate(9.min(bytes.len()));
                    bytes.extend((0..n).map(|_| rng.gen::<u8>()));
                }
            }
            if let Ok(b) = Bundle::from_bytes(&bytes) {
                assert_eq!(b.to_bytes(), bytes);
                accepted += 1;
            }
            if let Ok(r) = ReceiptFile::from_bytes(&bytes) {
                assert_eq!(r.to_bytes(), bytes);
                accepted += 1;
            }
        }
        // Most mutations break a hash, a signature's length or the framing; some (a byte
        // of a signature) still decode, and those must have been canonical.
        assert!(accepted < 20_000);
    }
}
