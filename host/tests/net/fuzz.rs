//! Garbage in: the decoders never panic on arbitrary or mutated bytes, and a live validator
//! that receives oversized or malformed messages drops the sender and carries on serving
//! everyone else, while a peer whose stream merely closes mid-request (truncated, empty) is
//! not disconnected: that is a mishap, not misbehaviour (issue 22).

use crate::common::{init_logging, wordcount_inputs};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{noise, request_response, tcp, yamux, StreamProtocol};
use rand::{Rng, RngCore, SeedableRng};
use smartnodes::harness::{Network, NetworkConfig};
use smartnodes::net::codec::decode;
use smartnodes::net::proto::*;
use smartnodes::roles::user::{JobRequestSpec, UserSession};
use std::time::Duration;

/// Decodes `bytes` as every wire type; only returns (never panics).
fn decode_all(bytes: &[u8]) -> usize {
    let max = limits::JOB_RESPONSE;
    [
        decode::<JobRequest>(bytes, max).is_ok(),
        decode::<JobResponse>(bytes, max).is_ok(),
        decode::<TaskRequest>(bytes, max).is_ok(),
        decode::<TaskResponse>(bytes, max).is_ok(),
        decode::<TaskResult>(bytes, max).is_ok(),
        decode::<ResultResponse>(bytes, max).is_ok(),
        decode::<BlobRequest>(bytes, max).is_ok(),
        decode::<BlobResponse>(bytes, max).is_ok(),
        decode::<Gossip>(bytes, max).is_ok(),
        decode::<SignedRecord>(bytes, max).is_ok(),
    ]
    .iter()
    .filter(|ok| **ok)
    .count()
}

fn samples() -> Vec<Vec<u8>> {
    let key = libp2p::identity::Keypair::generate_ed25519();
    let body = ReceiptBody {
        job_id: [1; 32],
        index: 3,
        task: [6; 32],
        verdict: (0, 0),
        output_hash: Some([2; 32]),
        fuel_used: 99,
        engine: [3; 32],
        worker: key.public().to_peer_id().to_bytes(),
    };
    let receipt = Receipt::sign(body, &key);
    let spec = JobSpec {
        module: [4; 32],
        inputs: vec![[5; 32]; 10],
        limits: JobLimits::default(),
        owner: key.public().to_peer_id().to_bytes(),
        nonce: 7,
        sample_ppm: 0,
    };
    vec![
        encode(&JobRequest::Submit {
            spec,
            blobs: vec![b"blob".to_vec()],
        }),
        encode(&JobRequest::Results {
            job: [1; 32],
            have: vec![0xff; 4],
        }),
        encode(&TaskResult {
            receipt: receipt.clone(),
            output: Some(b"out".to_vec()),
        }),
        encode(&TaskRequest::Assign(Assignment {
            job_id: [1; 32],
            index: 1,
            module: [2; 32],
            input: [3; 32],
            input_inline: Some(vec![1, 2, 3]),
            limits: JobLimits::default(),
            lease_ms: 3000,
        })),
        encode(&BlobResponse::Manifest(Manifest::of(&[9u8; 3000]))),
        encode(&Gossip::Fraud(Box::new(FraudProof::sign(
            FraudClaim {
                task: TaskSpec {
                    job_id: [1; 32],
                    index: 3,
                    module: [4; 32],
                    input: [5; 32],
                    limits: JobLimits::default(),
                },
                observed: Observed {
                    fuel_used: 100,
                    ..Observed::claimed(&receipt.body)
                },
                receipt,
                validator: key.public().to_peer_id().to_bytes(),
            },
            &key,
        )))),
    ]
}

#[test]
fn decoders_survive_arbitrary_and_mutated_bytes() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut decoded = 0;
    for _ in 0..20_000 {
        let len = match rng.gen_range(0..4) {
            0 => rng.gen_range(0..8),
            1 => rng.gen_range(0..64),
            2 => rng.gen_range(0..1024),
            _ => rng.gen_range(0..65_536),
        };
        let mut bytes = vec![0u8; len];
        rng.fill_bytes(&mut bytes);
        decoded += decode_all(&bytes);
    }
    // Valid messages, then every kind of damage to them.
    for sample in samples() {
        assert!(decode_all(&sample) >= 1, "a valid message decodes");
        for _ in 0..3_000 {
            let mut m = sample.clone();
            match rng.gen_range(0..4) {
                0 => {
                    let i = rng.gen_range(0..m.len());
                    m[i] ^= 1 << rng.gen_range(0..8);
                }
                1 => m.truncate(rng.gen_range(0..m.len())),
                2 => {
                    // A huge length prefix where a vector's length is.
                    let i = rng.gen_range(0..m.len());
                    m.splice(i..i, [0xff, 0xff, 0xff, 0xff, 0x0f]);
                }
                _ => m.extend((0..rng.gen_range(1..16)).map(|_| rng.gen::<u8>())),
            }
            decode_all(&m);
        }
    }
    // Over the limit is refused before decoding.
    assert!(decode::<BlobRequest>(&[0u8; 2048], limits::BLOB_REQUEST).is_err());
    eprintln!("{decoded} random inputs happened to decode");
}

/// Writes raw bytes on a request-response stream: whatever the test wants, framed or not.
#[derive(Debug, Clone, Default)]
struct RawCodec;

impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> std::io::Result<Vec<u8>>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        let mut buf = Vec::new();
        io.take(1 << 20).read_to_end(&mut buf).await?;
        Ok(buf)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> std::io::Result<Vec<u8>>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        let mut buf = Vec::new();
        io.take(8 << 20).read_to_end(&mut buf).await?;
        Ok(buf)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> std::io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        io.write_all(&req).await?;
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> std::io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        io.write_all(&res).await?;
        io.close().await
    }
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_survives_garbage_from_a_peer() {
    init_logging();
    let net = Network::start(NetworkConfig {
        workers: 1,
        ..NetworkConfig::default()
    })
    .await
    .unwrap();
    let validator = net.validator_addr();
    let validator_id = net.validators[0].peer_id();

    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut random = vec![0u8; 5000];
    rng.fill_bytes(&mut random);
    let mut huge_claim = (64u32 << 20).to_be_bytes().to_vec(); // 64 MiB announced
    huge_claim.extend_from_slice(&[0u8; 1000]);
    let mut truncated = samples()[0].clone();
    let full_len = truncated.len();
    truncated.truncate(full_len / 2);
    let mut truncated_frame = (full_len as u32).to_be_bytes().to_vec();
    truncated_frame.extend_from_slice(&truncated);
    // (protocol, bytes, whether they prove the sender broken or hostile)
    let attacks: Vec<(&str, Vec<u8>, bool)> = vec![
        (protocols::JOB, random.clone(), true),
        (protocols::JOB, huge_claim.clone(), true),
        (protocols::JOB, framed(&random), true),
        (protocols::JOB, truncated_frame, false),
        (protocols::TASK, framed(&random[..100]), true),
        (protocols::RESULT, huge_claim, true),
        (protocols::BLOB, framed(&[0xff; 2000]), true), // over the blob request limit
        (protocols::BLOB, framed(&[9, 9, 9]), true),
        (protocols::JOB, Vec::new(), false),
    ];
    let metrics = net.validators[0].metrics.clone();
    let dropped_before = metrics.peers_dropped_total();

    for (protocol, bytes, malformed) in attacks {
        let mut swarm = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|_| {
                request_response::Behaviour::with_codec(
                    RawCodec,
                    [(
                        StreamProtocol::new(protocol),
                        request_response::ProtocolSupport::Outbound,
                    )],
                    request_response::Config::default()
                        .with_request_timeout(Duration::from_secs(5)),
                )
            })
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        swarm.dial(validator.clone()).unwrap();
        swarm.behaviour_mut().send_request(&validator_id, bytes);
        let outcome = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match swarm.select_next_some().await {
                    libp2p::swarm::SwarmEvent::Behaviour(request_response::Event::Message {
                        message: request_response::Message::Response { response, .. },
                        ..
                    }) => break format!("answered {} bytes", response.len()),
                    libp2p::swarm::SwarmEvent::Behaviour(
                        request_response::Event::OutboundFailure { error, .. },
                    ) => break format!("failed: {error}"),
                    _ => {}
                }
            }
        })
        .await
        .expect("the validator neither answered nor dropped the stream");
        eprintln!("{protocol}: {outcome}");
        // No answer: the request fails, or (a truncated request, whose stream the
        // validator merely closes) the raw reader sees the stream end with no byte.
        assert!(
            outcome.starts_with("failed") || (!malformed && outcome == "answered 0 bytes"),
            "{protocol}: garbage got an answer: {outcome}"
        );
        let still_connected =
            tokio::time::timeout(Duration::from_secs(if malformed { 10 } else { 2 }), async {
                while swarm.is_connected(&validator_id) {
                    swarm.select_next_some().await;
                }
            })
            .await
            .is_err();
        if malformed {
            // The validator hangs up on a peer that sends garbage.
            assert!(
                !still_connected,
                "{protocol}: the garbage sender is still connected"
            );
        } else {
            // A stream that closed early is an ordinary failure: the peer stays.
            assert!(
                still_connected,
                "{protocol}: a peer whose stream closed early was dropped"
            );
        }
    }
    assert_eq!(
        metrics.peers_dropped_total() - dropped_before,
        7,
        "one drop per malformed message, none for the truncated ones"
    );
    let text = metrics.encode();
    assert!(
        text.contains("smartnodes_peers_dropped_total{reason=\"malformed\"} 7"),
        "{text}"
    );

    // The validator still does its job for honest peers.
    let session = UserSession::connect(validator).await.unwrap();
    let inputs = wordcount_inputs(3);
    let report = session
        .run_job(
            &JobRequestSpec {
                sample_ppm: 0,
                module: smartnodes_examples::WORDCOUNT.to_vec(),
                inputs,
                limits: JobLimits::default(),
            },
            Duration::from_secs(60),
            |_, _| {},
        )
        .await
        .unwrap();
    assert_eq!(report.tasks.len(), 3);
    session.close().await;
    net.stop().await;
}
