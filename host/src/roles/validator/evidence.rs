//! Evidence (issue 21): serving the claims of evidence bundles by id to anyone.
//!
//! A bundle ([`crate::evidence::Bundle`]) is a fraud proof plus the task's module and
//! input. A validator keeps all three anyway (the proof in `frauds`, the blobs in `blobs`,
//! both needed to re-run the task), so it keeps no second copy: it answers
//! `BlobRequest::Evidence { id }` with the claim, and the asker fetches the module and the
//! input as ordinary blobs, checked against the hashes the claim commits to, and assembles
//! the bundle itself. Answers are rate-limited per peer and in total ([`Limiter`]).

use super::*;
use crate::evidence::Claim;

/// Requests a peer may make at once, then one per [`PEER_REFILL`].
const PEER_BURST: f64 = 8.0;
const PEER_REFILL: Duration = Duration::from_millis(500);
/// Requests all peers together may make at once, then one per [`ALL_REFILL`].
const ALL_BURST: f64 = 64.0;
const ALL_REFILL: Duration = Duration::from_millis(20);
/// Peers whose buckets are remembered at most.
const MAX_PEERS: usize = 4096;

/// A token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(burst: f64, now: Instant) -> Bucket {
        Bucket {
            tokens: burst,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant, burst: f64, every: Duration) {
        let gained = now.saturating_duration_since(self.at).as_secs_f64() / every.as_secs_f64();
        self.tokens = (self.tokens + gained).min(burst);
        self.at = now;
    }
}

/// Per-peer and global token buckets (pure: the caller passes the time).
#[derive(Debug)]
pub(super) struct Limiter {
    all: Bucket,
    peers: HashMap<PeerId, Bucket>,
}

impl Limiter {
    pub(super) fn new(now: Instant) -> Limiter {
        Limiter {
            all: Bucket::full(ALL_BURST, now),
            peers: HashMap::new(),
        }
    }

    /// Whether `peer` may be answered now (and takes a token if so).
    pub(super) fn allow(&mut self, peer: PeerId, now: Instant) -> bool {
        self.all.refill(now, ALL_BURST, ALL_REFILL);
        if self.peers.len() >= MAX_PEERS && !self.peers.contains_key(&peer) {
            // Forget the peers whose buckets are full again: they lose nothing.
            self.peers.retain(|_, b| {
                b.refill(now, PEER_BURST, PEER_REFILL);
                b.tokens < PEER_BURST
            });
            if self.peers.len() >= MAX_PEERS {
                return false;
            }
        }
        let bucket = self
            .peers
            .entry(peer)
            .or_insert_with(|| Bucket::full(PEER_BURST, now));
        bucket.refill(now, PEER_BURST, PEER_REFILL);
        if bucket.tokens < 1.0 || self.all.tokens < 1.0 {
            return false;
        }
        bucket.tokens -= 1.0;
        self.all.tokens -= 1.0;
        true
    }
}

impl Validator {
    /// Answers `BlobRequest::Evidence { id }` from `peer`.
    pub(super) fn serve_evidence(&self, peer: PeerId, id: &Hash) -> BlobResponse {
        if !self
            .evidence_limiter
            .lock()
            .expect("poisoned")
            .allow(peer, Instant::now())
        {
            return BlobResponse::Busy;
        }
        let proof = match self.store.frauds.get(id) {
            Ok(Some(p)) => p,
            Ok(None) => return BlobResponse::NotFound,
            Err(e) => {
                tracing::error!("reading a fraud proof: {e}");
                return BlobResponse::NotFound;
            }
        };
        // Only a bundle the asker can complete: both blobs must be here.
        let task = &proof.claim.task;
        for blob in [task.module, task.input] {
            if !matches!(self.store.has_blob(&blob), Ok(true)) {
                return BlobResponse::NotFound;
            }
        }
        BlobResponse::Claim(Box::new(Claim::Reexecution(proof)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_gets_its_burst_then_one_per_refill_and_others_are_not_starved() {
        let t0 = Instant::now();
        let mut l = Limiter::new(t0);
        let (a, b) = (PeerId::random(), PeerId::random());
        for _ in 0..PEER_BURST as usize {
            assert!(l.allow(a, t0));
        }
        assert!(!l.allow(a, t0));
        assert!(l.allow(b, t0));
        assert!(!l.allow(a, t0 + PEER_REFILL / 2));
        assert!(l.allow(a, t0 + PEER_REFILL));
    }

    #[test]
    fn all_peers_together_are_bounded() {
        let t0 = Instant::now();
        let mut l = Limiter::new(t0);
        let allowed = (0..1000).filter(|_| l.allow(PeerId::random(), t0)).count();
        assert_eq!(allowed, ALL_BURST as usize);
        assert!(l.allow(PeerId::random(), t0 + ALL_REFILL));
        assert!(l.peers.len() <= MAX_PEERS);
    }
}
