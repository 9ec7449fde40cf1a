//! A node's state in sled: typed trees with big-endian keys and postcard values.
//!
//! | tree | key | value | who |
//! |---|---|---|---|
//! | `jobs` | job id | [`JobRecord`] | validator |
//! | `progress` | job id | [`JobProgress`] | validator |
//! | `tasks` | job id ‖ index (u32 BE) | [`TaskRecord`] | validator |
//! | `leases` | job id ‖ index | [`Lease`] | validator |
//! | `receipts` | job id ‖ index | [`Receipt`] | validator |
//! | `reputation` | peer id bytes | [`Reputation`] | validator |
//! | `checks` | job id ‖ index | [`Receipt`] | validator: sampled, not yet re-executed |
//! | `jobstats` | job id | [`JobStats`] | validator: verification counters |
//! | `revoked` | job id ‖ receipt hash | [`Receipt`] | validator: withdrawn results of frauds |
//! | `frauds` | proof id | [`FraudProof`] | validator: proofs it made or re-checked |
//! | `refused` | proof id | [`Refusal`] | validator: proofs that did not re-check |
//! | `meta` | name | bytes | validator: its sampling secret |
//! | `assigned` | job id ‖ index | [`Accepted`] | worker: accepted, not yet delivered |
//! | `outbox` | job id ‖ index | [`Outgoing`] | worker: results not yet acknowledged |
//! | `blobs` | blob id | bytes | everyone |
//! | `manifests` | blob id | [`Manifest`] | everyone |
//! | `partial` | blob id ‖ chunk (u32 BE) | chunk bytes | a transfer in progress |
//! | `epochs` | `ledger` | [`crate::epoch::ledger::LedgerSnapshot`] | validator with a chain |
//!
//! Callers write a transition and [`Store::flush`] before they acknowledge it to a peer.

use crate::net::proto::{
    limits, Assignment, FraudProof, Hash, JobSpec, Manifest, Receipt, ReceiptBody, TaskResult,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use smartnodes_runtime::sha256;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed (disk, corruption).
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    /// A stored value does not decode.
    #[error("storage: corrupt value in {tree}: {reason}")]
    Corrupt {
        /// The tree.
        tree: &'static str,
        /// What failed.
        reason: String,
    },
    /// A blob's bytes do not match its id.
    #[error("blob {0} does not match its hash")]
    BlobMismatch(String),
}

/// `Result` with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A job on a validator (written once; its progress lives in the `progress` tree, so that
/// recording a result does not rewrite the whole spec).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The job.
    pub spec: JobSpec,
}

/// How far a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobProgress {
    /// Where it is.
    pub state: JobState,
    /// Tasks completed.
    pub done: u32,
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    /// Some blobs are still being fetched from the owner.
    Fetching,
    /// Tasks are being scheduled.
    Running,
    /// Every task has a result.
    Done,
}

impl JobState {
    /// Its name in status output.
    pub fn as_str(&self) -> &'static str {
        match self {
            JobState::Fetching => "fetching",
            JobState::Running => "running",
            JobState::Done => "done",
        }
    }
}

/// What a validator knows of a worker's honesty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reputation {
    /// The score the scheduler ranks workers by: +1 per accepted result, +5 per verified
    /// one, -1 per timeout or refused assignment.
    pub score: i64,
    /// Results re-executed and found right.
    pub verified: u64,
    /// Verified results since the last timeout: the longer, the less it is sampled.
    pub streak: u64,
    /// Leases that ran out.
    pub timeouts: u64,
    /// The fraud proof that blacklisted it.
    pub blacklisted: Option<Hash>,
}

/// A fraud proof that did not re-check, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The proof.
    pub proof: FraudProof,
    /// Why it was refused.
    pub reason: String,
}

/// Verification counters of a job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStats {
    /// Results sampled and re-executed.
    pub sampled: u32,
    /// Fuel the re-executions used.
    pub verify_fuel: u64,
    /// Fuel of all accepted results (revoked ones included: the work was paid for in
    /// verification, not credited).
    pub total_fuel: u64,
    /// Results withdrawn because their worker was proven a fraud.
    pub revoked: u32,
    /// Sampled results whose check could not conclude. Always 0 since the network runs one
    /// engine (issue 14: every verdict is judged); kept so stored stats still decode.
    pub inconclusive: u32,
}

/// A task on a validator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Where it is.
    pub state: TaskState,
    /// How many times it was assigned.
    pub attempts: u32,
}

/// Where a task is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskState {
    /// Waiting for a worker.
    Queued,
    /// A worker holds it under a lease.
    Assigned {
        /// The worker's peer id bytes.
        worker: Vec<u8>,
    },
    /// Done: the first valid receipt won.
    Done {
        /// The receipt's body.
        receipt: ReceiptBody,
    },
}

/// A worker's lease on a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The worker's peer id bytes.
    pub worker: Vec<u8>,
    /// Unix milliseconds at which the lease was granted.
    pub granted_ms: u64,
}

/// A task a worker accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// The validator that assigned it (peer id bytes).
    pub validator: Vec<u8>,
    /// The assignment, with its input inlined (fetched if it was not).
    pub assignment: AssignmentRecord,
}

/// The stored form of an [`Assignment`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentRecord {
    /// Encoded [`Assignment`].
    pub bytes: Vec<u8>,
}

impl AssignmentRecord {
    /// Wraps an assignment.
    pub fn new(a: &Assignment) -> Self {
        AssignmentRecord {
            bytes: crate::net::proto::encode(a),
        }
    }

    /// Unwraps it.
    pub fn get(&self) -> Result<Assignment> {
        postcard::from_bytes(&self.bytes).map_err(|e| StoreError::Corrupt {
            tree: "assigned",
            reason: e.to_string(),
        })
    }
}

/// A result a worker has not had acknowledged yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    /// The validator (peer id bytes).
    pub validator: Vec<u8>,
    /// The result.
    pub result: TaskResult,
}

/// One typed tree.
pub struct Table<V> {
    name: &'static str,
    tree: sled::Tree,
    _value: PhantomData<fn() -> V>,
}

impl<V> std::fmt::Debug for Table<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Table({})", self.name)
    }
}

impl<V> Clone for Table<V> {
    fn clone(&self) -> Self {
        Table {
            name: self.name,
            tree: self.tree.clone(),
            _value: PhantomData,
        }
    }
}

impl<V: Serialize + DeserializeOwned> Table<V> {
    fn open(db: &sled::Db, name: &'static str) -> Result<Self> {
        Ok(Table {
            name,
            tree: db.open_tree(name)?,
            _value: PhantomData,
        })
    }

    fn decode(&self, bytes: &[u8]) -> Result<V> {
        postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
            tree: self.name,
            reason: e.to_string(),
        })
    }

    /// The value at `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<V>> {
        self.tree.get(key)?.map(|v| self.decode(&v)).transpose()
    }

    /// Stores `value` at `key`.
    pub fn insert(&self, key: &[u8], value: &V) -> Result<()> {
        self.tree.insert(key, crate::net::proto::encode(value))?;
        Ok(())
    }

    /// Removes `key`.
    pub fn remove(&self, key: &[u8]) -> Result<()> {
        self.tree.remove(key)?;
        Ok(())
    }

    /// Every entry whose key starts with `prefix`, in key order.
    pub fn scan(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, V)>> {
        self.tree
            .scan_prefix(prefix)
            .map(|r| {
                let (k, v) = r?;
                Ok((k.to_vec(), self.decode(&v)?))
            })
            .collect()
    }

    /// Changes the value at `key` (the default when absent) with `f`, atomically with
    /// respect to other updates of the key (a compare-and-swap loop); returns the new value.
    pub fn update(&self, key: &[u8], mut f: impl FnMut(&mut V)) -> Result<V>
    where
        V: Default,
    {
        loop {
            let old = self.tree.get(key)?;
            let mut value = match &old {
                Some(bytes) => self.decode(bytes)?,
                None => V::default(),
            };
            f(&mut value);
            let new = crate::net::proto::encode(&value);
            if self.tree.compare_and_swap(key, old, Some(new))?.is_ok() {
                return Ok(value);
            }
        }
    }

    /// The entry with the smallest key.
    pub fn first(&self) -> Result<Option<(Vec<u8>, V)>> {
        self.tree
            .first()?
            .map(|(k, v)| Ok((k.to_vec(), self.decode(&v)?)))
            .transpose()
    }

    /// Entries in the tree.
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// Whether the tree is empty.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }
}

/// The key of task `index` of job `job`: `job ‖ index (u32 BE)`.
pub fn task_key(job: &Hash, index: u32) -> [u8; 36] {
    let mut key = [0u8; 36];
    key[..32].copy_from_slice(job);
    key[32..].copy_from_slice(&index.to_be_bytes());
    key
}

/// Splits a task key.
pub fn split_task_key(key: &[u8]) -> Option<(Hash, u32)> {
    if key.len() != 36 {
        return None;
    }
    let job: Hash = key[..32].try_into().ok()?;
    let index = u32::from_be_bytes(key[32..].try_into().ok()?);
    Some((job, index))
}

/// A flush waiting for the next group commit: where to send the result, and a handle on
/// the database it flushes. The flusher holds the database only through its waiters and
/// drops every handle before it acknowledges, so a store whose last flush was acknowledged
/// and whose `Store` values are dropped is closed (and can be opened again at once).
type Waiter = (tokio::sync::oneshot::Sender<Result<(), String>>, sled::Db);

/// Batches flushes (see [`Store::flush`]).
struct GroupCommit {
    sync: bool,
    waiting: Mutex<Vec<Waiter>>,
    running: AtomicBool,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("sync", &self.sync)
            .finish()
    }
}

impl GroupCommit {
    async fn run(self: Arc<Self>) {
        loop {
            let batch = std::mem::take(&mut *self.waiting.lock().expect("poisoned"));
            if batch.is_empty() {
                self.running.store(false, Ordering::Release);
                // A waiter may have arrived between the take and the store.
                if self.waiting.lock().expect("poisoned").is_empty()
                    || self.running.swap(true, Ordering::AcqRel)
                {
                    return;
                }
                continue;
            }
            // sled's own flush_async can wait forever when nothing else drives its IO; a
            // blocking flush on the blocking pool cannot.
            let (senders, dbs): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            let db = dbs[0].clone();
            drop(dbs);
            let result = match tokio::task::spawn_blocking(move || db.flush()).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            for sender in senders {
                let _ = sender.send(result.clone());
            }
        }
    }
}

/// A node's database.
#[derive(Debug, Clone)]
pub struct Store {
    db: sled::Db,
    commits: Arc<GroupCommit>,
    /// Jobs (validator).
    pub jobs: Table<JobRecord>,
    /// Job progress (validator).
    pub progress: Table<JobProgress>,
    /// Tasks (validator).
    pub tasks: Table<TaskRecord>,
    /// Leases (validator).
    pub leases: Table<Lease>,
    /// Accepted receipts (validator).
    pub receipts: Table<Receipt>,
    /// Accepted, undelivered tasks (worker).
    pub assigned: Table<Accepted>,
    /// Unacknowledged results (worker).
    pub outbox: Table<Outgoing>,
    /// Blob manifests.
    pub manifests: Table<Manifest>,
    /// Workers' reputations (validator).
    pub reputation: Table<Reputation>,
    /// Sampled receipts waiting for re-execution (validator).
    pub checks: Table<Receipt>,
    /// Verification counters per job (validator).
    pub jobstats: Table<JobStats>,
    /// Revoked receipts (validator).
    pub revoked: Table<Receipt>,
    /// Fraud proofs (validator).
    pub frauds: Table<FraudProof>,
    /// Fraud proofs refused (validator).
    pub refused: Table<Refusal>,
    /// Epochs (issue 6): the validator's ledger.
    pub epochs: Table<crate::epoch::ledger::LedgerSnapshot>,
    meta: sled::Tree,
    blobs: sled::Tree,
    partial: sled::Tree,
}

impl Store {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Store> {
        Self::from_db(sled::Config::new().path(dir).open()?)
    }

    /// A database that lives in memory (clients).
    pub fn temporary() -> Result<Store> {
        Self::from_db(sled::Config::new().temporary(true).open()?)
    }

    fn from_db(db: sled::Db) -> Result<Store> {
        Ok(Store {
            jobs: Table::open(&db, "jobs")?,
            progress: Table::open(&db, "progress")?,
            tasks: Table::open(&db, "tasks")?,
            leases: Table::open(&db, "leases")?,
            receipts: Table::open(&db, "receipts")?,
            assigned: Table::open(&db, "assigned")?,
            outbox: Table::open(&db, "outbox")?,
            manifests: Table::open(&db, "manifests")?,
            reputation: Table::open(&db, "reputation")?,
            checks: Table::open(&db, "checks")?,
            jobstats: Table::open(&db, "jobstats")?,
            revoked: Table::open(&db, "revoked")?,
            frauds: Table::open(&db, "frauds")?,
            refused: Table::open(&db, "refused")?,
            epochs: Table::open(&db, "epochs")?,
            meta: db.open_tree("meta")?,
            blobs: db.open_tree("blobs")?,
            partial: db.open_tree("partial")?,
            commits: Arc::new(GroupCommit {
                sync: true,
                waiting: Mutex::new(Vec::new()),
                running: AtomicBool::new(false),
            }),
            db,
        })
    }

    /// Turns `fsync` on [`Store::flush`] off: for benchmarks that measure the network
    /// alone. Nothing is durable before sled's own background flush (every 500 ms) then.
    pub fn without_fsync(mut self) -> Store {
        self.commits = Arc::new(GroupCommit {
            sync: false,
            waiting: Mutex::new(Vec::new()),
            running: AtomicBool::new(false),
        });
        self
    }

    /// Makes everything written so far durable.
    ///
    /// Group commit: callers that arrive while a flush runs wait for the next one, and one
    /// flush serves them all, so concurrent writers share each `fsync` (about 3.6 ms on the
    /// development machine's disk) instead of queueing for one each.
    pub async fn flush(&self) -> Result<()> {
        if !self.commits.sync {
            return Ok(());
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.commits
            .waiting
            .lock()
            .expect("poisoned")
            .push((tx, self.db.clone()));
        if !self.commits.running.swap(true, Ordering::AcqRel) {
            tokio::spawn(self.commits.clone().run());
        }
        rx.await
            .map_err(|_| StoreError::Corrupt {
                tree: "flush",
                reason: "the flusher stopped".into(),
            })?
            .map_err(|reason| StoreError::Corrupt {
                tree: "flush",
                reason,
            })
    }

    /// A worker's reputation (all zero for a stranger).
    pub fn reputation_of(&self, peer: &[u8]) -> Result<Reputation> {
        Ok(self.reputation.get(peer)?.unwrap_or_default())
    }

    /// Changes a worker's reputation with `f` (atomically); returns the new record.
    pub fn update_reputation(
        &self,
        peer: &[u8],
        f: impl FnMut(&mut Reputation),
    ) -> Result<Reputation> {
        self.reputation.update(peer, f)
    }

    /// A secret of this node (32 random bytes created on first use and kept), e.g. the
    /// validator's sampling key.
    pub fn secret(&self, name: &str) -> Result<[u8; 32]> {
        if let Some(v) = self.meta.get(name)? {
            if let Ok(s) = <[u8; 32]>::try_from(v.as_ref()) {
                return Ok(s);
            }
        }
        let s: [u8; 32] = rand::random();
        match self
            .meta
            .compare_and_swap(name, None as Option<&[u8]>, Some(&s[..]))?
        {
            Ok(()) => Ok(s),
            Err(_) => self.secret(name),
        }
    }

    /// Stores a blob; returns its id.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Hash> {
        let id = sha256(bytes);
        if !self.blobs.contains_key(id)? {
            self.manifests.insert(&id, &Manifest::of(bytes))?;
            self.blobs.insert(id, bytes)?;
        }
        Ok(id)
    }

    /// Whether the blob is here.
    pub fn has_blob(&self, id: &Hash) -> Result<bool> {
        Ok(self.blobs.contains_key(id)?)
    }

    /// The blob's bytes.
    pub fn blob(&self, id: &Hash) -> Result<Option<sled::IVec>> {
        Ok(self.blobs.get(id)?)
    }

    /// Chunk `index` of a blob.
    pub fn chunk(&self, id: &Hash, index: u32) -> Result<Option<Vec<u8>>> {
        let Some(bytes) = self.blobs.get(id)? else {
            return Ok(None);
        };
        let start = index as usize * limits::CHUNK;
        if start >= bytes.len() && !(start == 0 && bytes.is_empty()) {
            return Ok(None);
        }
        let end = (start + limits::CHUNK).min(bytes.len());
        Ok(Some(bytes[start..end].to_vec()))
    }

    /// Chunks of a transfer in progress already on disk.
    pub fn partial_chunks(&self, id: &Hash) -> Result<Vec<u32>> {
        self.partial
            .scan_prefix(id)
            .keys()
            .map(|k| {
                let k = k?;
                Ok(u32::from_be_bytes(k[32..36].try_into().map_err(|_| {
                    StoreError::Corrupt {
                        tree: "partial",
                        reason: "short key".into(),
                    }
                })?))
            })
            .collect()
    }

    /// Stores one checked chunk of a transfer in progress.
    pub fn put_partial(&self, id: &Hash, index: u32, bytes: &[u8]) -> Result<()> {
        self.partial.insert(task_key(id, index), bytes)?;
        Ok(())
    }

    /// Joins a finished transfer's chunks, checks the whole against its id and stores it.
    pub fn assemble(&self, id: &Hash, manifest: &Manifest) -> Result<()> {
        let mut bytes = Vec::with_capacity(manifest.len as usize);
        for index in 0..manifest.chunks.len() as u32 {
            let chunk =
                self.partial
                    .get(task_key(id, index))?
                    .ok_or_else(|| StoreError::Corrupt {
                        tree: "partial",
                        reason: format!("chunk {index} missing"),
                    })?;
            bytes.extend_from_slice(&chunk);
        }
        let result = if sha256(&bytes) == *id {
            self.put_blob(&bytes).map(|_| ())
        } else {
            Err(StoreError::BlobMismatch(hex::encode(id)))
        };
        for index in 0..manifest.chunks.len() as u32 {
            self.partial.remove(task_key(id, index))?;
        }
        result
    }

    /// Overwrites a stored blob's bytes without changing its id or manifest, so that tests
    /// can check that a peer serving corrupted data is caught. Never used by the node.
    #[doc(hidden)]
    pub fn corrupt_blob_for_tests(&self, id: &Hash, offset: usize) -> Result<()> {
        if let Some(bytes) = self.blobs.get(id)? {
            let mut bytes = bytes.to_vec();
            if let Some(b) = bytes.get_mut(offset) {
                *b ^= 0xff;
            }
            self.blobs.insert(id, bytes)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_survives_reopening() {
        let secret;
        let dir = tempfile::tempdir().unwrap();
        let spec = JobSpec {
            module: [1; 32],
            inputs: vec![[2; 32]],
            limits: Default::default(),
            owner: vec![],
            nonce: 0,
            sample_ppm: 0,
        };
        let job_id = spec.id();
        {
            let store = Store::open(dir.path()).unwrap();
            store
                .jobs
                .insert(&job_id, &JobRecord { spec: spec.clone() })
                .unwrap();
            store
                .tasks
                .insert(
                    &task_key(&job_id, 0),
                    &TaskRecord {
                        state: TaskState::Queued,
                        attempts: 0,
                    },
                )
                .unwrap();
            store.put_blob(b"hello").unwrap();
            store.update_reputation(b"w", |r| r.score -= 3).unwrap();
            secret = store.secret("sampling").unwrap();
            assert_eq!(store.secret("sampling").unwrap(), secret);
            store.db.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.jobs.get(&job_id).unwrap().unwrap().spec, spec);
        let tasks = store.tasks.scan(&job_id).unwrap();
        assert_eq!(tasks.len(), 1);
        assert_eq!(split_task_key(&tasks[0].0), Some((job_id, 0)));
        assert_eq!(
            &store.blob(&sha256(b"hello")).unwrap().unwrap()[..],
            b"hello"
        );
        assert_eq!(store.reputation_of(b"w").unwrap().score, -3);
        assert_eq!(
            store.secret("sampling").unwrap(),
            secret,
            "the secret is kept"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_flushes_all_complete_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let tasks: Vec<_> = (0..50u8)
                .map(|i| {
                    let s = store.clone();
                    tokio::spawn(async move {
                        s.update_reputation(&[i], |r| r.score = i as i64 + 1)
                            .unwrap();
                        s.flush().await.unwrap();
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        }
        let store = Store::open(dir.path()).unwrap();
        for i in 0..50u8 {
            assert_eq!(store.reputation_of(&[i]).unwrap().score, i as i64 + 1);
        }
    }

    #[test]
    fn task_keys_sort_by_index() {
        let a = task_key(&[0; 32], 2);
        let b = task_key(&[0; 32], 256);
        assert!(a < b);
    }

    #[test]
    fn assembling_checks_the_whole_blob() {
        let store = Store::temporary().unwrap();
        let bytes = vec![5u8; limits::CHUNK + 10];
        let id = sha256(&bytes);
        let m = Manifest::of(&bytes);
        store.put_partial(&id, 0, &bytes[..limits::CHUNK]).unwrap();
        store.put_partial(&id, 1, &bytes[limits::CHUNK..]).unwrap();
        assert_eq!(store.partial_chunks(&id).unwrap(), vec![0, 1]);
        store.assemble(&id, &m).unwrap();
        assert_eq!(store.blob(&id).unwrap().unwrap().len(), bytes.len());
        assert!(store.partial_chunks(&id).unwrap().is_empty());

        let wrong = [9u8; 32];
        store.put_partial(&wrong, 0, b"abc").unwrap();
        let m = Manifest::of(b"abc");
        assert!(matches!(
            store.assemble(&wrong, &m),
            Err(StoreError::BlobMismatch(_))
        ));
    }
}
