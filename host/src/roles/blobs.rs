//! Content-addressed blobs between peers: serving them, and fetching them in chunks, each
//! chunk checked against the manifest's hash as it arrives and the whole against the blob
//! id at the end. Checked chunks are kept on disk (`partial`), so a transfer that stops
//! resumes where it was.

use crate::net::proto::{limits, BlobRequest, BlobResponse, Hash};
use crate::net::{Client, NetError};
use crate::store::{Store, StoreError};
use libp2p::PeerId;
use smartnodes_runtime::sha256;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Why a blob could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The peer does not have it.
    #[error("the peer does not have blob {0}")]
    NotFound(String),
    /// The network failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The peer sent a manifest that is inconsistent or too large.
    #[error("bad manifest: {0}")]
    BadManifest(String),
    /// A chunk did not match its hash (or length): the peer sent corrupted data.
    #[error("chunk {index} of blob {id} does not match its hash")]
    BadChunk {
        /// The blob.
        id: String,
        /// The chunk.
        index: u32,
    },
    /// The peer answered something else.
    #[error("unexpected answer")]
    Unexpected,
    /// The blob is larger than the caller accepts.
    #[error("blob of {0} bytes is larger than allowed")]
    TooLarge(u64),
    /// Storage failed (or the assembled blob did not match its id).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Answers a blob request from the local store.
pub fn serve(store: &Store, request: &BlobRequest) -> BlobResponse {
    let answer = match request {
        BlobRequest::Manifest { id } => store
            .manifests
            .get(id)
            .map(|m| m.map(BlobResponse::Manifest)),
        BlobRequest::Chunk { id, index } => {
            store.chunk(id, *index).map(|c| c.map(BlobResponse::Chunk))
        }
        // Only validators serve evidence (they answer it before calling this).
        BlobRequest::Evidence { .. } => Ok(None),
    };
    match answer {
        Ok(Some(response)) => response,
        Ok(None) => BlobResponse::NotFound,
        Err(e) => {
            tracing::error!("serving a blob: {e}");
            BlobResponse::NotFound
        }
    }
}

/// Fetches blobs, one transfer per blob at a time.
#[derive(Debug, Clone)]
pub struct Blobs {
    client: Client,
    store: Store,
    inflight: Arc<Mutex<HashMap<Hash, Arc<tokio::sync::Mutex<()>>>>>,
}

impl Blobs {
    /// Fetches through `client` into `store`.
    pub fn new(client: Client, store: Store) -> Blobs {
        Blobs {
            client,
            store,
            inflight: Arc::default(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Makes sure blob `id` is in the store, fetching it from `peer` if needed; refuses a
    /// blob larger than `max_len`.
    pub async fn fetch(&self, peer: PeerId, id: Hash, max_len: u64) -> Result<(), FetchError> {
        if self.store.has_blob(&id)? {
            return Ok(());
        }
        let lock = self
            .inflight
            .lock()
            .expect("poisoned")
            .entry(id)
            .or_default()
            .clone();
        let guard = lock.lock().await;
        let result = self.fetch_locked(peer, id, max_len).await;
        drop(guard);
        self.inflight.lock().expect("poisoned").remove(&id);
        result
    }

    async fn fetch_locked(&self, peer: PeerId, id: Hash, max_len: u64) -> Result<(), FetchError> {
        if self.store.has_blob(&id)? {
            return Ok(());
        }
        let manifest = match self.client.blob(peer, BlobRequest::Manifest { id }).await? {
            BlobResponse::Manifest(m) => m,
            BlobResponse::NotFound => return Err(FetchError::NotFound(hex::encode(id))),
            _ => return Err(FetchError::Unexpected),
        };
        manifest.check().map_err(FetchError::BadManifest)?;
        if manifest.len > max_len.min(limits::MAX_BLOB) {
            return Err(FetchError::TooLarge(manifest.len));
        }
        let have = self.store.partial_chunks(&id)?;
        for index in 0..manifest.chunks.len() as u32 {
            if have.contains(&index) {
                continue;
            }
            let chunk = match self
                .client
                .blob(peer, BlobRequest::Chunk { id, index })
                .await?
            {
                BlobResponse::Chunk(c) => c,
                BlobResponse::NotFound => return Err(FetchError::NotFound(hex::encode(id))),
                _ => return Err(FetchError::Unexpected),
            };
            if chunk.len() != manifest.chunk_len(index)
                || sha256(&chunk) != manifest.chunks[index as usize]
            {
                tracing::warn!(%peer, index, blob = %hex::encode(id), "rejected a corrupted chunk");
                return Err(FetchError::BadChunk {
                    id: hex::encode(id),
                    index,
                });
            }
            self.store.put_partial(&id, index, &chunk)?;
        }
        if manifest.chunks.is_empty() {
            // The empty blob has no chunks.
            if sha256(&[]) != id {
                return Err(FetchError::BadManifest("empty blob with another id".into()));
            }
            self.store.put_blob(&[])?;
            return Ok(());
        }
        self.store.assemble(&id, &manifest)?;
        Ok(())
    }
}
