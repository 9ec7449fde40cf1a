//! Blob transfer: large inputs and modules through a whole job, corrupted chunks rejected,
//! interrupted transfers resumed.

use crate::common::{check_report, init_logging};
use smartnodes::harness::{Network, NetworkConfig};
use smartnodes::identity::Identity;
use smartnodes::net::proto::{limits, BlobRequest, JobLimits, JobResponse};
use smartnodes::net::{self, Event, Request, Response};
use smartnodes::roles::blobs::{serve, Blobs, FetchError};
use smartnodes::roles::user::{JobRequestSpec, UserSession};
use smartnodes::store::Store;
use smartnodes_runtime::sha256;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// `wasm` with a custom section of `pad` bytes appended (valid wasm, ignored by engines).
fn padded_module(wasm: &[u8], pad: usize) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"padding";
    let mut payload = Vec::with_capacity(pad + 16);
    leb(name.len(), &mut payload);
    payload.extend_from_slice(name);
    payload.extend((0..pad).map(|i| (i * 7 % 251) as u8));
    let mut out = wasm.to_vec();
    out.push(0); // custom section id
    leb(payload.len(), &mut out);
    out.extend_from_slice(&payload);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_20_mib_input_and_a_5_mib_module_run_as_a_job() {
    init_logging();
    let net = Network::start(NetworkConfig {
        workers: 2,
        ..NetworkConfig::default()
    })
    .await
    .unwrap();
    let module = padded_module(smartnodes_examples::WORDCOUNT, 5 << 20);
    assert!(module.len() >= 5 << 20);
    let mut big = Vec::with_capacity(20 << 20);
    let mut i = 0u64;
    while big.len() < 20 << 20 {
        big.extend_from_slice(format!("lorem ipsum w{} dolor ", i % 997).as_bytes());
        i += 1;
    }
    let inputs = vec![big, b"a small one".to_vec()];
    let job = JobRequestSpec {
        sample_ppm: 0,
        module: module.clone(),
        inputs: inputs.clone(),
        limits: JobLimits::default(),
    };
    let session = UserSession::connect(net.validator_addr()).await.unwrap();
    let report = session
        .run_job(&job, Duration::from_secs(120), |_, _| {})
        .await
        .unwrap();
    check_report(&report, &module, &inputs, &job.limits);
    assert_eq!(report.tasks[0].verdict(), "completed");
    assert!(report.tasks[0].output.starts_with(b"dolor\t"));
    session.close().await;
    net.stop().await;
}

/// A bare node that serves blobs from its store and counts the chunk requests it answers.
async fn blob_server(store: Store) -> (net::Client, Arc<AtomicUsize>) {
    let (client, mut events, _) = net::start(
        Identity::ephemeral().keypair().clone(),
        Some("/ip4/127.0.0.1/tcp/0".parse().unwrap()),
    )
    .await
    .unwrap();
    let chunks = Arc::new(AtomicUsize::new(0));
    let (c, n) = (client.clone(), chunks.clone());
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let Event::Inbound {
                request: Request::Blob(r),
                responder,
                ..
            } = event
            {
                if matches!(r, BlobRequest::Chunk { .. }) {
                    n.fetch_add(1, Ordering::SeqCst);
                }
                c.respond(responder, Response::Blob(serve(&store, &r)))
                    .await;
            }
        }
    });
    (client, chunks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_chunk_is_rejected_and_the_transfer_resumes() {
    init_logging();
    let server_store = Store::temporary().unwrap();
    let blob: Vec<u8> = (0..(3 * limits::CHUNK + 123))
        .map(|i| (i % 241) as u8)
        .collect();
    let id = server_store.put_blob(&blob).unwrap();
    let (server, served) = blob_server(server_store.clone()).await;
    let addr = server.listen_addrs().await.remove(0);

    let (client, _events, _) = net::start(Identity::ephemeral().keypair().clone(), None)
        .await
        .unwrap();
    let peer = client.dial(addr).await.unwrap();
    let store = Store::temporary().unwrap();
    let blobs = Blobs::new(client.clone(), store.clone());

    // Chunk 2 is corrupted on the server (same id, same manifest, wrong bytes).
    server_store
        .corrupt_blob_for_tests(&id, 2 * limits::CHUNK + 7)
        .unwrap();
    let err = blobs.fetch(peer, id, limits::MAX_BLOB).await.unwrap_err();
    assert!(
        matches!(err, FetchError::BadChunk { index: 2, .. }),
        "{err}"
    );
    assert!(!store.has_blob(&id).unwrap());
    assert_eq!(
        store.partial_chunks(&id).unwrap(),
        vec![0, 1],
        "checked chunks kept"
    );
    assert_eq!(served.load(Ordering::SeqCst), 3);

    // Repaired: the transfer resumes at chunk 2 and the whole blob matches its id.
    server_store
        .corrupt_blob_for_tests(&id, 2 * limits::CHUNK + 7)
        .unwrap();
    blobs.fetch(peer, id, limits::MAX_BLOB).await.unwrap();
    assert_eq!(
        served.load(Ordering::SeqCst),
        5,
        "only chunks 2 and 3 fetched again"
    );
    let got = store.blob(&id).unwrap().unwrap();
    assert_eq!(sha256(&got), id);
    assert_eq!(&got[..], &blob[..]);

    // Too large for the caller: refused from the manifest, before any chunk.
    let other = Store::temporary().unwrap();
    let small = Blobs::new(client.clone(), other.clone());
    let err = small.fetch(peer, id, 1 << 20).await.unwrap_err();
    assert!(matches!(err, FetchError::TooLarge(_)), "{err}");
    assert_eq!(served.load(Ordering::SeqCst), 5);

    // A blob the server does not have.
    let err = blobs
        .fetch(peer, [7; 32], limits::MAX_BLOB)
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::NotFound(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_refuses_a_corrupted_upload_until_it_is_right() {
    init_logging();
    let net = Network::start(NetworkConfig {
        workers: 1,
        ..NetworkConfig::default()
    })
    .await
    .unwrap();
    let session = UserSession::connect(net.validator_addr()).await.unwrap();
    let input: Vec<u8> = b"corrupt me ".repeat(200_000); // 2.2 MB: fetched by the validator
    let job = JobRequestSpec {
        sample_ppm: 0,
        module: smartnodes_examples::WORDCOUNT.to_vec(),
        inputs: vec![input.clone()],
        limits: JobLimits::default(),
    };
    let id = session.store().put_blob(&input).unwrap();
    session
        .store()
        .corrupt_blob_for_tests(&id, limits::CHUNK + 1)
        .unwrap();
    let job_id = session.submit(&job).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let JobResponse::Status { jobs, .. } = session.status(Some(job_id)).await.unwrap() else {
        panic!("no status")
    };
    assert_eq!(
        jobs[0].state, "fetching",
        "the corrupted input was not accepted"
    );
    // Repair the user's copy: the validator's retries now succeed and the job runs.
    session
        .store()
        .corrupt_blob_for_tests(&id, limits::CHUNK + 1)
        .unwrap();
    let report = session
        .wait(job_id, 1, Duration::from_secs(60), |_, _| {})
        .await
        .unwrap();
    assert_eq!(report.tasks[0].verdict(), "completed");
    assert_eq!(report.tasks[0].output, b"corrupt\t200000\nme\t200000\n");
    session.close().await;
    net.stop().await;
}
