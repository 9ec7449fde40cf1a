//! Misbehaviour, not mishap: which failed requests cost a peer its connection.
//!
//! Two kinds of fault, counted per peer:
//! - **malformed**: bytes that prove the peer broken or hostile — a message over the
//!   protocol's size limit, or one that does not decode (the codec's `InvalidData`). One is
//!   enough: the peer is dropped at once.
//! - **failed**: an ordinary failure — a stream truncated or reset mid-message, a request
//!   that timed out, a connection closed under it. Loaded honest peers do this; a request
//!   that failed this way is retried by whoever made it. Only a *rate* of them drops a peer:
//!   more than [`FaultPolicy::max_failures`] within [`FaultPolicy::window`] (a peer that
//!   opens streams only to abandon them).
//!
//! Pure bookkeeping with the clock passed in; the event loop applies the verdicts and
//! counts them in the metrics. The table is bounded ([`MAX_TRACKED`]): beyond it, the peer
//! whose last fault is oldest is forgotten.

use libp2p::PeerId;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Peers whose faults are remembered at most.
pub const MAX_TRACKED: usize = 4096;

/// What went wrong with one request or response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// Oversized or undecodable bytes.
    Malformed,
    /// Truncated, reset, timed out or closed: a mishap.
    Failed,
}

impl FaultKind {
    /// `malformed` or `failed` (the metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Malformed => "malformed",
            FaultKind::Failed => "failed",
        }
    }
}

/// Why a peer was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// It sent a malformed message.
    Malformed,
    /// Too many failed requests within the window.
    FailureRate,
}

impl DropReason {
    /// `malformed` or `failure_rate` (the metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::FailureRate => "failure_rate",
        }
    }
}

/// When failures add up to a drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultPolicy {
    /// The window failures are counted over.
    pub window: Duration,
    /// More than this many failures within `window` drop the peer.
    pub max_failures: usize,
}

impl Default for FaultPolicy {
    /// 600 failures a minute (10 a second, sustained): far above what a loaded honest peer
    /// shows (a closed connection fails the requests in flight on it, at most a few hundred
    /// at once), far below what abandoning streams on purpose needs to waste anyone's time.
    fn default() -> Self {
        FaultPolicy {
            window: Duration::from_secs(60),
            max_failures: 600,
        }
    }
}

/// One peer's fault counts since this node started (or since it was last forgotten).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerFaults {
    /// Malformed messages.
    pub malformed: u64,
    /// Failed requests.
    pub failed: u64,
    /// Times it was dropped.
    pub dropped: u64,
}

#[derive(Debug)]
struct Tracked {
    counts: PeerFaults,
    recent: VecDeque<Instant>,
    last: Instant,
}

/// The per-peer fault table.
#[derive(Debug, Default)]
pub struct Faults {
    policy: FaultPolicy,
    peers: HashMap<PeerId, Tracked>,
}

impl Faults {
    /// An empty table under `policy`.
    pub fn new(policy: FaultPolicy) -> Faults {
        Faults {
            policy,
            peers: HashMap::new(),
        }
    }

    /// Records a fault of `peer` at `now`; `Some(reason)` when the peer must be dropped.
    pub fn record(&mut self, peer: PeerId, kind: FaultKind, now: Instant) -> Option<DropReason> {
        if !self.peers.contains_key(&peer) && self.peers.len() >= MAX_TRACKED {
            let oldest = self
                .peers
                .iter()
                .min_by_key(|(_, t)| t.last)
                .map(|(p, _)| *p);
            if let Some(oldest) = oldest {
                self.peers.remove(&oldest);
            }
        }
        let t = self.peers.entry(peer).or_insert_with(|| Tracked {
            counts: PeerFaults::default(),
            recent: VecDeque::new(),
            last: now,
        });
        t.last = now;
        let verdict = match kind {
            FaultKind::Malformed => {
                t.counts.malformed += 1;
                Some(DropReason::Malformed)
            }
            FaultKind::Failed => {
                t.counts.failed += 1;
                while t
                    .recent
                    .front()
                    .is_some_and(|&at| now.saturating_duration_since(at) >= self.policy.window)
                {
                    t.recent.pop_front();
                }
                t.recent.push_back(now);
                (t.recent.len() > self.policy.max_failures).then_some(DropReason::FailureRate)
            }
        };
        if verdict.is_some() {
            t.counts.dropped += 1;
            // A fresh start after a drop: a reconnecting peer is judged on what it does next.
            t.recent.clear();
        }
        verdict
    }

    /// `peer`'s counts, if it has any.
    pub fn of(&self, peer: &PeerId) -> Option<PeerFaults> {
        self.peers.get(peer).map(|t| t.counts)
    }

    /// Every tracked peer's counts.
    pub fn all(&self) -> Vec<(PeerId, PeerFaults)> {
        self.peers.iter().map(|(p, t)| (*p, t.counts)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> PeerId {
        PeerId::random()
    }

    #[test]
    fn one_malformed_message_drops_a_peer() {
        let mut f = Faults::new(FaultPolicy::default());
        let p = peer();
        let t = Instant::now();
        assert_eq!(
            f.record(p, FaultKind::Malformed, t),
            Some(DropReason::Malformed)
        );
        assert_eq!(
            f.of(&p),
            Some(PeerFaults {
                malformed: 1,
                failed: 0,
                dropped: 1
            })
        );
    }

    #[test]
    fn failures_drop_a_peer_only_above_the_rate() {
        let policy = FaultPolicy {
            window: Duration::from_secs(10),
            max_failures: 5,
        };
        let mut f = Faults::new(policy);
        let p = peer();
        let t0 = Instant::now();
        // Five in the window: kept.
        for i in 0..5 {
            assert_eq!(
                f.record(p, FaultKind::Failed, t0 + Duration::from_secs(i)),
                None
            );
        }
        // The first has left the window by t0 + 10 s: still five, kept.
        assert_eq!(
            f.record(p, FaultKind::Failed, t0 + Duration::from_secs(10)),
            None
        );
        // A sixth within the window: dropped.
        assert_eq!(
            f.record(p, FaultKind::Failed, t0 + Duration::from_secs(10)),
            Some(DropReason::FailureRate)
        );
        let c = f.of(&p).unwrap();
        assert_eq!((c.failed, c.malformed, c.dropped), (7, 0, 1));
        // After a drop the window starts afresh.
        assert_eq!(
            f.record(p, FaultKind::Failed, t0 + Duration::from_secs(11)),
            None
        );
        // Another peer is judged on its own.
        assert_eq!(f.record(peer(), FaultKind::Failed, t0), None);
    }

    #[test]
    fn a_steady_trickle_of_failures_never_drops() {
        let policy = FaultPolicy {
            window: Duration::from_secs(1),
            max_failures: 2,
        };
        let mut f = Faults::new(policy);
        let p = peer();
        let t0 = Instant::now();
        for i in 0..1000 {
            let at = t0 + Duration::from_millis(500 * i);
            assert_eq!(f.record(p, FaultKind::Failed, at), None, "at {i}");
        }
        assert_eq!(f.of(&p).unwrap().failed, 1000);
    }

    #[test]
    fn the_table_is_bounded() {
        let mut f = Faults::new(FaultPolicy::default());
        let t0 = Instant::now();
        let first = peer();
        f.record(first, FaultKind::Failed, t0);
        for i in 0..MAX_TRACKED {
            f.record(
                peer(),
                FaultKind::Failed,
                t0 + Duration::from_millis(i as u64 + 1),
            );
        }
        assert_eq!(f.all().len(), MAX_TRACKED);
        assert_eq!(f.of(&first), None, "the oldest is forgotten");
    }
}
