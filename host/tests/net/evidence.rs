//! Evidence bundles (issue 21): the bundle of a real caught cheat, fetched from the
//! validator that caught it, re-judged by the `smartnodes` binary in a separate process with
//! no network; forged, foreign and broken bundles are judged for what they are.

use smartnodes::evidence::{Bundle, Claim, ReceiptFile};
use smartnodes::harness::{Network, NetworkConfig};
use smartnodes::net::proto::{FraudClaim, FraudProof, JobLimits, JobResponse, Receipt};
use smartnodes::roles::user::{JobRequestSpec, UserSession};
use std::path::Path;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_smartnodes");

/// `smartnodes verify ARGS --json`: (exit status, JSON on stdout).
fn verify(args: &[&str]) -> (i32, serde_json::Value) {
    let out = std::process::Command::new(BIN)
        .arg("verify")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    let code = out.status.code().expect("exited");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        assert_eq!(code, 2, "no JSON and not an error: {stderr}");
        serde_json::json!({ "error": stderr })
    });
    (code, json)
}

fn write(path: &Path, bytes: &[u8]) -> String {
    std::fs::write(path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

/// Re-signs `proof`'s claim with a fresh validator key (a prover that lies on purpose).
fn resign(mut claim: FraudClaim) -> FraudProof {
    let key = libp2p::identity::Keypair::generate_ed25519();
    claim.validator = key.public().to_peer_id().to_bytes();
    FraudProof::sign(claim, &key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caught_cheats_bundle_is_rejudged_offline_by_anyone() {
    crate::common::init_logging();
    let net = Network::start(NetworkConfig {
        validators: 1,
        workers: 2,
        cheaters: vec!["wrong-output:1".parse().unwrap()],
        ..NetworkConfig::default()
    })
    .await
    .unwrap();
    let cheater = net.workers[0].peer_id().to_string();
    let session = UserSession::connect(net.validator_addr()).await.unwrap();
    let inputs: Vec<Vec<u8>> = (0..8)
        .map(|i| format!("evidence task {i} {}", "word ".repeat(i)).into_bytes())
        .collect();
    let job = JobRequestSpec {
        module: smartnodes_examples::WORDCOUNT.to_vec(),
        inputs,
        limits: JobLimits::default(),
        sample_ppm: 1_000_000,
    };
    let mut id = None;
    for _ in 0..20 {
        session
            .run_job(&job, Duration::from_secs(60), |_, _| {})
            .await
            .unwrap();
        let JobResponse::Status { workers, .. } = session.status(None).await.unwrap() else {
            panic!("no status");
        };
        id = workers
            .iter()
            .find(|w| w.peer == cheater)
            .and_then(|w| w.blacklisted.clone());
        if id.is_some() {
            break;
        }
    }
    let id =
        smartnodes::commands::evidence::parse_hash(&id.expect("the cheater was caught")).unwrap();
    // Anyone may fetch the bundle by the id the blacklisting cites.
    let bundle = session.evidence(id).await.unwrap();
    assert_eq!(bundle.id(), id);
    session.close().await;
    net.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let real = write(&dir.path().join("real.bundle"), &bundle.to_bytes());
    let (code, json) = verify(&[&real]);
    assert_eq!(json["verdict"], "worker_lied", "{json}");
    assert_eq!(code, 0);
    assert_eq!(json["claim"], "reexecution_mismatch");
    assert_eq!(json["receipt_valid"], true);
    assert_eq!(json["worker_signature_valid"], true);
    assert_eq!(json["id"], hex::encode(id));
    assert_eq!(json["observed"], json["prover_observed"]);
    assert_ne!(json["observed"], json["claimed"]);

    // The cheat's receipt alone, checked as a suspicious user would: a lie (exit 1).
    let receipt = ReceiptFile {
        task: bundle.claim.task().clone(),
        receipt: bundle.claim.receipt().clone(),
    };
    let receipt = write(&dir.path().join("0.receipt"), &receipt.to_bytes());
    let module = write(&dir.path().join("task.wasm"), &bundle.module);
    let input = write(&dir.path().join("input"), &bundle.input);
    let (code, json) = verify(&[
        "--receipt",
        &receipt,
        "--module",
        &module,
        "--input",
        &input,
    ]);
    assert_eq!(json["verdict"], "worker_lied", "{json}");
    assert_eq!((code, &json["claim"]), (1, &serde_json::json!("receipt")));

    // The same bundle with the observed outcome forged (and signed by a prover that lies).
    let Claim::Reexecution(proof) = bundle.claim.clone();
    let mut claim = proof.claim.clone();
    claim.observed.fuel_used += 1;
    let forged = Bundle::new(
        Claim::Reexecution(resign(claim)),
        bundle.module.clone(),
        bundle.input.clone(),
    )
    .unwrap();
    let forged = write(&dir.path().join("forged.bundle"), &forged.to_bytes());
    let (code, json) = verify(&[&forged]);
    assert_eq!(json["verdict"], "prover_wrong", "{json}");
    assert_eq!(code, 1);
    assert!(
        json["reason"].as_str().unwrap().contains("neither"),
        "{json}"
    );

    // A receipt signed (by its worker) for another engine than the prover's and this
    // machine's, the network's: a lie by its form alone.
    let worker = libp2p::identity::Keypair::generate_ed25519();
    let mut body = proof.claim.receipt.body.clone();
    body.engine = [0xee; 32];
    body.worker = worker.public().to_peer_id().to_bytes();
    let mut claim = proof.claim.clone();
    claim.receipt = Receipt::sign(body, &worker);
    let foreign = Bundle::new(
        Claim::Reexecution(resign(claim)),
        bundle.module.clone(),
        bundle.input.clone(),
    )
    .unwrap();
    let foreign = write(&dir.path().join("foreign.bundle"), &foreign.to_bytes());
    let (code, json) = verify(&[&foreign]);
    assert_eq!(json["verdict"], "worker_lied", "{json}");
    assert_eq!(code, 0);
    assert!(
        json["form_fault"].as_str().unwrap().contains("engine eeee"),
        "{json}"
    );
    assert_eq!(
        json["observed"],
        serde_json::Value::Null,
        "nothing ran: {json}"
    );

    // A bundle from another engine (its prover ran one this machine does not): it cannot
    // be checked here, and the report says why.
    let mut claim = proof.claim.clone();
    claim.observed.engine = [0xee; 32];
    let elsewhere = Bundle::new(
        Claim::Reexecution(resign(claim)),
        bundle.module.clone(),
        bundle.input.clone(),
    )
    .unwrap();
    let elsewhere = write(&dir.path().join("elsewhere.bundle"), &elsewhere.to_bytes());
    let (code, json) = verify(&[&elsewhere]);
    assert_eq!(json["verdict"], "cannot_check", "{json}");
    assert_eq!(code, 1);
    assert!(
        json["reason"].as_str().unwrap().contains("engine eeee"),
        "{json}"
    );

    // Truncated, oversized and garbage bundles: exit 2 with a reason.
    let bytes = bundle.to_bytes();
    let truncated = write(
        &dir.path().join("truncated.bundle"),
        &bytes[..bytes.len() / 2],
    );
    let garbage = write(&dir.path().join("garbage.bundle"), b"not a bundle at all");
    let oversized = dir.path().join("oversized.bundle");
    std::fs::File::create(&oversized)
        .unwrap()
        .set_len(smartnodes::evidence::MAX_BUNDLE + 1)
        .unwrap();
    for (path, why) in [
        (truncated.as_str(), "does not decode"),
        (garbage.as_str(), "wrong magic"),
        (oversized.to_str().unwrap(), "larger than the largest"),
    ] {
        let (code, json) = verify(&[path]);
        assert_eq!(code, 2, "{path}: {json}");
        let error = json["error"].as_str().unwrap();
        assert!(
            error.contains("bad bundle") && error.contains(why),
            "{error}"
        );
    }
}
