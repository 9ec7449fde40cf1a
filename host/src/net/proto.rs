//! The wire types: everything two nodes say to each other, and what gets hashed or signed.
//!
//! All of it is encoded with postcard (a canonical, compact encoding: one value, one byte
//! string), never JSON. Every protocol has a size limit ([`limits`]) enforced by the codec
//! before decoding, and every decoded value is checked again by the role that reads it
//! (counts, lengths), because a peer may send anything.

use libp2p::identity::{Keypair, PublicKey};
use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use smartnodes_runtime::sha256;

/// A sha256 digest: blob ids, job ids, module ids.
pub type Hash = [u8; 32];

/// Bounds of the protocol. A message or value beyond one of these is refused.
pub mod limits {
    /// Chunk size of blob transfers.
    pub const CHUNK: usize = 1 << 20;
    /// Largest blob (module, input or output) the network moves.
    pub const MAX_BLOB: u64 = 64 << 20;
    /// Most tasks in one job.
    pub const MAX_TASKS: usize = 10_000;
    /// Blobs at most this large travel inline inside messages instead of as blob transfers.
    pub const INLINE_BLOB: usize = 64 << 10;
    /// Total of the inline blobs in one submission.
    pub const INLINE_TOTAL: usize = 1 << 20;
    /// Outputs at most this large travel inline with their result.
    pub const INLINE_OUTPUT: usize = 256 << 10;
    /// `/smartnodes/job/1` request and response.
    pub const JOB_REQUEST: usize = 2 << 20;
    /// `/smartnodes/job/1` response.
    pub const JOB_RESPONSE: usize = 4 << 20;
    /// `/smartnodes/task/1` request and response.
    pub const TASK_MESSAGE: usize = 256 << 10;
    /// `/smartnodes/result/1` request.
    pub const RESULT_REQUEST: usize = 512 << 10;
    /// `/smartnodes/result/1` response.
    pub const RESULT_RESPONSE: usize = 4 << 10;
    /// `/smartnodes/blob/1` request.
    pub const BLOB_REQUEST: usize = 1 << 10;
    /// `/smartnodes/blob/1` response (one chunk plus framing).
    pub const BLOB_RESPONSE: usize = super::limits::CHUNK + (16 << 10);
    /// Gossipsub messages and Kademlia records.
    pub const GOSSIP: usize = 64 << 10;
}

/// Protocol ids, versioned.
pub mod protocols {
    /// User ↔ validator: submit a job, ask for status and results.
    pub const JOB: &str = "/smartnodes/job/1";
    /// Worker ↔ validator: register, heartbeat, assign.
    pub const TASK: &str = "/smartnodes/task/1";
    /// Worker → validator and validator → user: a task's result and signed receipt.
    pub const RESULT: &str = "/smartnodes/result/1";
    /// Anyone ↔ anyone: content-addressed blobs in checked chunks.
    pub const BLOB: &str = "/smartnodes/blob/1";
    /// Kademlia.
    pub const KAD: &str = "/smartnodes/kad/1";
    /// Identify's protocol version string.
    pub const IDENTIFY: &str = "/smartnodes/id/1";
    /// Gossipsub topic of fraud proofs (validators).
    pub const TOPIC_FRAUD: &str = "smartnodes/fraud/1";
    /// Gossipsub topic of the validators' signed receipt batches of the epoch (validators).
    pub const TOPIC_EPOCHS: &str = "smartnodes/epochs/1";
    /// Gossipsub topic of epoch proposals' contents (validators, and workers, which claim
    /// their rewards with them).
    pub const TOPIC_PROPOSALS: &str = "smartnodes/proposals/1";
    /// Every topic (what a node without a role, such as a test's client, subscribes to).
    pub const TOPICS: [&str; 3] = [TOPIC_FRAUD, TOPIC_EPOCHS, TOPIC_PROPOSALS];
}

/// The canonical encoding of anything hashed or signed.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("postcard encodes every wire type")
}

/// Limits a job asks for each of its tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobLimits {
    /// Fuel per task.
    pub fuel: u64,
    /// Largest linear memory per task, in bytes.
    pub memory_bytes: u64,
    /// Largest output per task, in bytes.
    pub max_output_bytes: u64,
}

impl JobLimits {
    /// The runtime's limits for these job limits (the rest at the runtime's defaults).
    pub fn to_runtime(&self) -> smartnodes_runtime::Limits {
        smartnodes_runtime::Limits {
            fuel: self.fuel,
            memory_bytes: self.memory_bytes,
            max_output_bytes: self.max_output_bytes,
            ..smartnodes_runtime::Limits::DEFAULT
        }
    }

    /// Whether a validator accepts these limits.
    pub fn check(&self) -> Result<(), String> {
        let d = smartnodes_runtime::Limits::DEFAULT;
        if self.fuel == 0 || self.fuel > 1_000 * d.fuel {
            return Err(format!("fuel {} out of range", self.fuel));
        }
        if self.memory_bytes == 0 || self.memory_bytes > 4 << 30 {
            return Err(format!("memory {} out of range", self.memory_bytes));
        }
        if self.max_output_bytes > limits::MAX_BLOB {
            return Err(format!("output limit {} too large", self.max_output_bytes));
        }
        Ok(())
    }
}

impl Default for JobLimits {
    fn default() -> Self {
        let d = smartnodes_runtime::Limits::DEFAULT;
        JobLimits {
            fuel: d.fuel,
            memory_bytes: d.memory_bytes,
            max_output_bytes: d.max_output_bytes,
        }
    }
}

/// A job: one module, one input per task, limits. Its id is the sha256 of its postcard
/// encoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// The module's blob id (sha256 of the wasm).
    pub module: Hash,
    /// Each task's input blob id; task `i` reads `inputs[i]`.
    pub inputs: Vec<Hash>,
    /// Limits per task.
    pub limits: JobLimits,
    /// The submitting peer (its peer id bytes).
    pub owner: Vec<u8>,
    /// Makes two otherwise equal submissions two jobs.
    pub nonce: u64,
    /// The share of this job's results the validator re-executes, in parts per million;
    /// 0 means the validator's default (5 %). A job may ask for more, never for less.
    pub sample_ppm: u32,
}

impl JobSpec {
    /// `sha256(postcard(spec))`.
    pub fn id(&self) -> Hash {
        sha256(&encode(self))
    }

    /// Task `index`'s random seed: `sha256(job_id || index as u32 big-endian)`.
    pub fn seed(job_id: &Hash, index: u32) -> [u8; 32] {
        let mut bytes = [0u8; 36];
        bytes[..32].copy_from_slice(job_id);
        bytes[32..].copy_from_slice(&index.to_be_bytes());
        sha256(&bytes)
    }
}

/// Everything that determines one task's outcome besides the engine: what a receipt
/// commits to (through [`TaskSpec::commitment`]) and what a fraud proof carries, so that
/// a proof can be checked without the whole job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// The job.
    pub job_id: Hash,
    /// The task's index (its seed is [`JobSpec::seed`] of the two).
    pub index: u32,
    /// The module's blob id.
    pub module: Hash,
    /// The input's blob id.
    pub input: Hash,
    /// Limits.
    pub limits: JobLimits,
}

impl TaskSpec {
    /// Task `index` of `spec` (whose id is `job_id`).
    pub fn of(spec: &JobSpec, job_id: Hash, index: u32) -> Option<TaskSpec> {
        Some(TaskSpec {
            job_id,
            index,
            module: spec.module,
            input: *spec.inputs.get(index as usize)?,
            limits: spec.limits,
        })
    }

    /// `sha256(postcard(self))`.
    pub fn commitment(&self) -> Hash {
        sha256(&encode(self))
    }
}

/// What a worker commits to for one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptBody {
    /// The job.
    pub job_id: Hash,
    /// The task's index in the job.
    pub index: u32,
    /// [`TaskSpec::commitment`] of the task as the worker was given it.
    pub task: Hash,
    /// [`smartnodes_runtime::Verdict::code`].
    pub verdict: (u8, i64),
    /// sha256 of the output, when the task produced one.
    pub output_hash: Option<Hash>,
    /// Fuel the task used.
    pub fuel_used: u64,
    /// The worker's engine fingerprint.
    pub engine: Hash,
    /// The worker's peer id bytes.
    pub worker: Vec<u8>,
}

/// A receipt signed by the worker's libp2p (ed25519) key over `postcard(body)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// What is signed.
    pub body: ReceiptBody,
    /// The worker's public key, protobuf-encoded (its peer id is derived from it).
    pub public_key: Vec<u8>,
    /// The signature.
    pub signature: Vec<u8>,
}

/// Why a receipt is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// The public key does not decode.
    #[error("bad public key")]
    BadKey,
    /// The public key is not the worker's.
    #[error("the key is not the worker's")]
    WrongWorker,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
}

impl Receipt {
    /// Signs `body` with `key`.
    pub fn sign(body: ReceiptBody, key: &Keypair) -> Receipt {
        let signature = key
            .sign(&encode(&body))
            .expect("ed25519 signing cannot fail");
        Receipt {
            body,
            public_key: key.public().encode_protobuf(),
            signature,
        }
    }

    /// Checks the signature and that the key belongs to `body.worker`; returns the worker.
    pub fn verify(&self) -> Result<PeerId, ReceiptError> {
        let key =
            PublicKey::try_decode_protobuf(&self.public_key).map_err(|_| ReceiptError::BadKey)?;
        let peer = key.to_peer_id();
        if peer.to_bytes() != self.body.worker {
            return Err(ReceiptError::WrongWorker);
        }
        if !key.verify(&encode(&self.body), &self.signature) {
            return Err(ReceiptError::BadSignature);
        }
        Ok(peer)
    }

    /// sha256 of the whole signed receipt.
    pub fn hash(&self) -> Hash {
        sha256(&encode(self))
    }
}

/// The stable name of a receipt's verdict code.
pub fn verdict_name(code: (u8, i64)) -> &'static str {
    match code.0 {
        0 => "completed",
        1 => "out_of_fuel",
        2 => "trapped",
        3 => "memory_exceeded",
        4 => "output_too_large",
        5 => "invalid_module",
        _ => "unknown",
    }
}

/// A task's result: its receipt and its output (inline when small, else by blob id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskResult {
    /// The signed receipt.
    pub receipt: Receipt,
    /// The output when it is at most [`limits::INLINE_OUTPUT`] bytes; otherwise `None` and
    /// the output is fetched as the blob `receipt.body.output_hash`.
    pub output: Option<Vec<u8>>,
}

/// `/smartnodes/job/1` requests (user → validator).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum JobRequest {
    /// Submit a job. Small blobs travel inline; the validator fetches the rest from the
    /// submitter by blob id.
    Submit {
        /// The job.
        spec: JobSpec,
        /// Blobs of the job (module, inputs) small enough to travel inline.
        blobs: Vec<Vec<u8>>,
    },
    /// Jobs and tasks on this validator (one job, or all).
    Status {
        /// One job, or all of them.
        job: Option<Hash>,
    },
    /// Results of a job's completed tasks the caller does not have yet.
    Results {
        /// The job.
        job: Hash,
        /// Bitset of the task indices the caller already has (bit `i % 8` of byte `i / 8`).
        have: Vec<u8>,
    },
    /// Epochs (issue 6): the contents of executed epochs from `from` on (at most
    /// [`crate::epoch::node::SERVED_EPOCHS`]), to claim rewards with.
    Epochs {
        /// The first epoch wanted.
        from: u64,
    },
    /// A job's spec (its owner only): what `smartnodes results` needs to check and file the
    /// receipts of a job submitted by an earlier process.
    Spec {
        /// The job.
        job: Hash,
    },
}

/// `/smartnodes/job/1` responses.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum JobResponse {
    /// The job is stored and will run.
    Submitted {
        /// Its id.
        job_id: Hash,
    },
    /// The request was refused.
    Rejected {
        /// Why.
        reason: String,
    },
    /// Status.
    Status {
        /// One entry per job.
        jobs: Vec<JobStatus>,
        /// Workers the validator knows.
        workers: Vec<WorkerStatus>,
        /// Fraud proofs the validator made, accepted or refused (at most 256).
        proofs: Vec<ProofStatus>,
    },
    /// Executed epochs' contents, ascending (check each against the on-chain hash).
    Epochs(Vec<crate::epoch::ProposalContent>),
    /// Some results (at most as many as fit in a message; ask again for more).
    Results {
        /// Tasks in the job.
        total: u32,
        /// Completed tasks not in `have`.
        results: Vec<TaskResult>,
        /// Whether the job is done: every task has a result and no sampled result still
        /// waits for its check.
        done: bool,
        /// Hashes of receipts withdrawn because their worker was proven a fraud (at most
        /// [`limits::MAX_TASKS`]); a caller holding one drops it and asks again.
        revoked: Vec<Hash>,
    },
    /// A job's spec (answer to [`JobRequest::Spec`]).
    Spec(Box<JobSpec>),
}

/// A job as `status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobStatus {
    /// The job id.
    pub job_id: Hash,
    /// `fetching` (blobs still coming), `running` or `done`.
    pub state: String,
    /// Tasks in the job.
    pub total: u32,
    /// Tasks completed.
    pub done: u32,
    /// Tasks as they are (listed only when one job was asked for).
    pub tasks: Vec<TaskStatus>,
    /// Results the validator re-executed to check them.
    pub sampled: u32,
    /// Fuel spent re-executing them.
    pub verify_fuel: u64,
    /// Fuel of all accepted results (verification cost = `verify_fuel / total_fuel`).
    pub total_fuel: u64,
    /// Results withdrawn because their worker was proven a fraud (their tasks ran again).
    pub revoked: u32,
}

/// A task as `status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskStatus {
    /// Its index.
    pub index: u32,
    /// `queued`, `assigned` or `done`.
    pub state: String,
    /// The worker that has it (assigned) or did it (done).
    pub worker: Option<String>,
    /// Attempts so far.
    pub attempts: u32,
    /// Why a queued task waits.
    pub waiting_for: Option<String>,
    /// Verdict of a done task.
    pub verdict: Option<String>,
}

/// A worker as `status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerStatus {
    /// Its peer id.
    pub peer: String,
    /// Slots it advertised.
    pub capacity: u32,
    /// Tasks it has now.
    pub running: u32,
    /// Its reputation score.
    pub reputation: i64,
    /// Results of it that were re-executed and matched.
    pub verified: u64,
    /// Tasks it held until its lease ran out.
    pub timeouts: u64,
    /// Whether it is connected now (blacklisted and silent workers are listed too).
    pub connected: bool,
    /// The id (hex) of the fraud proof that blacklisted it.
    pub blacklisted: Option<String>,
}

/// A fraud proof as `status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProofStatus {
    /// The proof id (hex).
    pub id: String,
    /// The accused worker.
    pub worker: String,
    /// The validator that made the proof.
    pub validator: String,
    /// Whether this validator holds it proven (it made it, or re-ran the task and got
    /// the proof's observation).
    pub accepted: bool,
    /// Why it was refused.
    pub refused_because: Option<String>,
}

/// `/smartnodes/task/1` requests.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum TaskRequest {
    /// Worker → validator: I am a worker with `capacity` slots.
    Register {
        /// Task slots.
        capacity: u32,
        /// The worker's engine fingerprint.
        engine: Hash,
        /// The worker's chain address, registered on `SmartnodesCore` with its peer id
        /// (`None`: not registered; only `--devnet-open` validators accept it).
        address: Option<[u8; 20]>,
    },
    /// Worker → validator, every second: I am alive and have these tasks.
    Heartbeat {
        /// `(job_id, index)` of each task it holds.
        running: Vec<(Hash, u32)>,
    },
    /// Validator → worker: run this task.
    Assign(Assignment),
}

/// One task given to one worker, with a lease.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assignment {
    /// The job.
    pub job_id: Hash,
    /// The task.
    pub index: u32,
    /// The module's blob id.
    pub module: Hash,
    /// The input's blob id.
    pub input: Hash,
    /// The input itself, when it is small.
    pub input_inline: Option<Vec<u8>>,
    /// Limits.
    pub limits: JobLimits,
    /// The lease: the validator gives the task to someone else if it hears nothing from
    /// the worker for this long.
    pub lease_ms: u64,
}

/// `/smartnodes/task/1` responses.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum TaskResponse {
    /// Done / accepted.
    Ok,
    /// The worker is full.
    Busy,
    /// Refused.
    Rejected {
        /// Why.
        reason: String,
    },
}

/// `/smartnodes/result/1` responses.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ResultResponse {
    /// Recorded (or already recorded).
    Ok,
    /// Refused; the sender should not send this result again.
    Rejected {
        /// Why.
        reason: String,
    },
}

/// `/smartnodes/blob/1` requests.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum BlobRequest {
    /// The blob's length and the sha256 of each chunk.
    Manifest {
        /// The blob.
        id: Hash,
    },
    /// One chunk.
    Chunk {
        /// The blob.
        id: Hash,
        /// Chunk index.
        index: u32,
    },
    /// Evidence (issue 21): the claim of the evidence bundle `id` (validators answer for
    /// the fraud proofs they made or accepted, rate-limited per peer); the bundle's module
    /// and input are then fetched as blobs.
    Evidence {
        /// The bundle's id ([`crate::evidence::Bundle::id`]).
        id: Hash,
    },
}

/// `/smartnodes/blob/1` responses.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum BlobResponse {
    /// The manifest.
    Manifest(Manifest),
    /// A chunk's bytes.
    Chunk(Vec<u8>),
    /// This node does not have the blob.
    NotFound,
    /// Evidence (issue 21): the claim of the asked bundle.
    Claim(Box<crate::evidence::Claim>),
    /// Evidence (issue 21): too many requests; ask again later.
    Busy,
}

/// How a blob is cut into chunks: its length and each chunk's sha256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Bytes in the blob.
    pub len: u64,
    /// sha256 of each [`limits::CHUNK`]-sized chunk (the last may be shorter).
    pub chunks: Vec<Hash>,
}

impl Manifest {
    /// The manifest of `bytes`.
    pub fn of(bytes: &[u8]) -> Manifest {
        Manifest {
            len: bytes.len() as u64,
            chunks: bytes.chunks(limits::CHUNK).map(sha256).collect(),
        }
    }

    /// Whether the manifest is consistent with its length and within limits.
    pub fn check(&self) -> Result<(), String> {
        if self.len > limits::MAX_BLOB {
            return Err(format!("blob of {} bytes is too large", self.len));
        }
        let expected = self.len.div_ceil(limits::CHUNK as u64);
        if self.chunks.len() as u64 != expected {
            return Err(format!(
                "{} chunk hashes for {} bytes (expected {expected})",
                self.chunks.len(),
                self.len
            ));
        }
        Ok(())
    }

    /// Length of chunk `index`.
    pub fn chunk_len(&self, index: u32) -> usize {
        let start = index as u64 * limits::CHUNK as u64;
        (self.len - start).min(limits::CHUNK as u64) as usize
    }
}

/// A signed Kademlia record: who is a validator, who is a worker with what capacity, which
/// validator holds which job. Signed by the node's key, with an expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedRecord {
    /// What is signed.
    pub body: RecordBody,
    /// The signer's public key, protobuf-encoded.
    pub public_key: Vec<u8>,
    /// Signature over `postcard(body)`.
    pub signature: Vec<u8>,
}

/// The content of a [`SignedRecord`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordBody {
    /// A role announcement.
    Role {
        /// The node's peer id bytes.
        peer: Vec<u8>,
        /// `validator` or `worker`.
        role: String,
        /// Task slots (workers).
        capacity: u32,
        /// Where it can be dialed (multiaddr bytes, without `/p2p`; at most
        /// [`crate::net::discovery::MAX_ADDRS`]), best first.
        addrs: Vec<Vec<u8>>,
        /// Its chain account, when it runs with a chain (registered on `SmartnodesCore`
        /// with `keccak256(peer id)`; anyone can check).
        account: Option<[u8; 20]>,
        /// Unix seconds when it signed the record: a newer record replaces an older one.
        signed_at: u64,
        /// Unix seconds after which the record is void.
        expires: u64,
    },
    /// A job held by a validator.
    Job {
        /// The job.
        job_id: Hash,
        /// The validator's peer id bytes.
        validator: Vec<u8>,
        /// Tasks in the job.
        tasks: u32,
        /// Unix seconds after which the record is void.
        expires: u64,
    },
}

impl RecordBody {
    /// The Kademlia key of this record.
    pub fn key(&self) -> Vec<u8> {
        match self {
            RecordBody::Role { peer, .. } => [b"/smartnodes/role/".as_slice(), peer].concat(),
            RecordBody::Job { job_id, .. } => [b"/smartnodes/job/".as_slice(), job_id].concat(),
        }
    }

    fn signer(&self) -> &[u8] {
        match self {
            RecordBody::Role { peer, .. } => peer,
            RecordBody::Job { validator, .. } => validator,
        }
    }

    fn expires(&self) -> u64 {
        match self {
            RecordBody::Role { expires, .. } | RecordBody::Job { expires, .. } => *expires,
        }
    }
}

impl SignedRecord {
    /// Signs `body`.
    pub fn sign(body: RecordBody, key: &Keypair) -> SignedRecord {
        let signature = key
            .sign(&encode(&body))
            .expect("ed25519 signing cannot fail");
        SignedRecord {
            body,
            public_key: key.public().encode_protobuf(),
            signature,
        }
    }

    /// Checks the signature, the signer and the expiry against `now` (unix seconds).
    pub fn verify(&self, now: u64) -> Result<(), String> {
        let key = PublicKey::try_decode_protobuf(&self.public_key)
            .map_err(|_| "bad public key".to_string())?;
        if key.to_peer_id().to_bytes() != self.body.signer() {
            return Err("signed by someone else".into());
        }
        if !key.verify(&encode(&self.body), &self.signature) {
            return Err("bad signature".into());
        }
        if self.body.expires() < now {
            return Err("expired".into());
        }
        Ok(())
    }
}

/// Gossipsub messages.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Gossip {
    /// A validator proved a worker cheated; every validator re-checks before acting.
    Fraud(Box<FraudProof>),
    /// Epochs (issue 6): receipt batches and proposal contents.
    Epoch(Box<crate::epoch::EpochGossip>),
}

/// What a validator got when it ran a task itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    /// [`smartnodes_runtime::Verdict::code`].
    pub verdict: (u8, i64),
    /// sha256 of the output, when there was one.
    pub output_hash: Option<Hash>,
    /// Fuel used.
    pub fuel_used: u64,
    /// The engine it ran on (the network's, for a validator).
    pub engine: Hash,
}

impl Observed {
    /// What the receipt claims.
    pub fn claimed(body: &ReceiptBody) -> Observed {
        Observed {
            verdict: body.verdict,
            output_hash: body.output_hash,
            fuel_used: body.fuel_used,
            engine: body.engine,
        }
    }
}

impl ReceiptBody {
    /// Why this receipt is false by its form alone, on a network whose engine is `engine`
    /// for a task with fuel limit `fuel_limit`: signed for another engine (no node of the
    /// network runs one), or claiming more fuel than the task may use (the sandbox never
    /// reports more than the budget). `None` when only re-execution can tell.
    pub fn form_fault(&self, fuel_limit: u64, engine: &Hash) -> Option<String> {
        if self.engine != *engine {
            return Some(format!(
                "signed for engine {}, not the network's {}",
                hex::encode(&self.engine[..8]),
                hex::encode(&engine[..8])
            ));
        }
        if self.fuel_used > fuel_limit {
            return Some(format!(
                "claims {} fuel, above the task's limit of {fuel_limit}",
                self.fuel_used
            ));
        }
        None
    }
}

/// The signed part of a [`FraudProof`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FraudClaim {
    /// The task (its commitment is in the receipt).
    pub task: TaskSpec,
    /// The worker's signed receipt.
    pub receipt: Receipt,
    /// What re-running the task gave the validator.
    pub observed: Observed,
    /// The validator's peer id bytes (it serves the module and the input).
    pub validator: Vec<u8>,
}

/// A validator's claim that a worker's signed receipt is false, signed by the validator.
/// Anyone checks it by running `task` and comparing with `receipt` and `observed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FraudProof {
    /// What is claimed.
    pub claim: FraudClaim,
    /// The validator's public key, protobuf-encoded.
    pub public_key: Vec<u8>,
    /// Its signature over `postcard(claim)`.
    pub signature: Vec<u8>,
}

impl FraudProof {
    /// Signs `claim`.
    pub fn sign(claim: FraudClaim, key: &Keypair) -> FraudProof {
        let signature = key
            .sign(&encode(&claim))
            .expect("ed25519 signing cannot fail");
        FraudProof {
            claim,
            public_key: key.public().encode_protobuf(),
            signature,
        }
    }

    /// `sha256(postcard(self))`: the id under which the proof is stored and cited.
    pub fn id(&self) -> Hash {
        sha256(&encode(self))
    }

    /// The checks that need no re-execution: both signatures, the receipt is for this
    /// task, and the observation contradicts the receipt (or the receipt claims more fuel
    /// than the task's limit, which needs no observation). Returns `(validator, worker)`.
    pub fn check_form(&self) -> Result<(PeerId, PeerId), String> {
        let key = PublicKey::try_decode_protobuf(&self.public_key)
            .map_err(|_| "bad validator key".to_string())?;
        let validator = key.to_peer_id();
        if validator.to_bytes() != self.claim.validator {
            return Err("signed by someone other than its validator".into());
        }
        if !key.verify(&encode(&self.claim), &self.signature) {
            return Err("bad validator signature".into());
        }
        let worker = self
            .claim
            .receipt
            .verify()
            .map_err(|e| format!("receipt: {e}"))?;
        let body = &self.claim.receipt.body;
        let task = &self.claim.task;
        if body.job_id != task.job_id || body.index != task.index {
            return Err("the receipt is for another task".into());
        }
        if body.task != task.commitment() {
            return Err("the receipt does not commit to this task".into());
        }
        if Observed::claimed(body) == self.claim.observed && body.fuel_used <= task.limits.fuel {
            return Err("the observation agrees with the receipt".into());
        }
        Ok((validator, worker))
    }
}

/// Unix time in seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(key: &Keypair) -> ReceiptBody {
        ReceiptBody {
            job_id: [1; 32],
            index: 7,
            task: [4; 32],
            verdict: (0, 0),
            output_hash: Some([2; 32]),
            fuel_used: 1234,
            engine: [3; 32],
            worker: key.public().to_peer_id().to_bytes(),
        }
    }

    #[test]
    fn receipts_verify_and_tampering_is_caught() {
        let key = Keypair::generate_ed25519();
        let receipt = Receipt::sign(body(&key), &key);
        assert_eq!(receipt.verify(), Ok(key.public().to_peer_id()));

        let mut tampered = receipt.clone();
        tampered.body.fuel_used += 1;
        assert_eq!(tampered.verify(), Err(ReceiptError::BadSignature));

        let other = Keypair::generate_ed25519();
        let mut stolen = receipt.clone();
        stolen.public_key = other.public().encode_protobuf();
        assert_eq!(stolen.verify(), Err(ReceiptError::WrongWorker));
    }

    #[test]
    fn job_id_and_seed_are_canonical() {
        let spec = JobSpec {
            module: [9; 32],
            inputs: vec![[1; 32], [2; 32]],
            limits: JobLimits::default(),
            owner: vec![1, 2, 3],
            nonce: 5,
            sample_ppm: 0,
        };
        assert_eq!(spec.id(), spec.clone().id());
        let mut other = spec.clone();
        other.nonce = 6;
        assert_ne!(spec.id(), other.id());
        let id = spec.id();
        let mut buf = id.to_vec();
        buf.extend_from_slice(&3u32.to_be_bytes());
        assert_eq!(JobSpec::seed(&id, 3), sha256(&buf));
    }

    #[test]
    fn manifests_check_their_shape() {
        let bytes = vec![7u8; limits::CHUNK * 2 + 5];
        let m = Manifest::of(&bytes);
        assert_eq!(m.chunks.len(), 3);
        assert_eq!(m.chunk_len(2), 5);
        m.check().unwrap();
        let mut bad = m.clone();
        bad.chunks.pop();
        assert!(bad.check().is_err());
        let huge = Manifest {
            len: limits::MAX_BLOB + 1,
            chunks: vec![],
        };
        assert!(huge.check().is_err());
    }

    #[test]
    fn records_are_signed_and_expire() {
        let key = Keypair::generate_ed25519();
        let body = RecordBody::Role {
            peer: key.public().to_peer_id().to_bytes(),
            role: "worker".into(),
            capacity: 4,
            addrs: Vec::new(),
            account: None,
            signed_at: 0,
            expires: 100,
        };
        let rec = SignedRecord::sign(body, &key);
        rec.verify(50).unwrap();
        assert!(rec.verify(101).is_err());
        let mut forged = rec.clone();
        if let RecordBody::Role { capacity, .. } = &mut forged.body {
            *capacity = 400;
        }
        assert!(forged.verify(50).is_err());
    }
}
