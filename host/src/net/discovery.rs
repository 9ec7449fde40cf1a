//! Discovery's rules, without I/O: what a node knows about its peers (from their signed
//! role records), which peers it keeps a connection to, when it dials them again after a
//! loss (exponential backoff), and when it looks the network up and republishes its own
//! record. The event loop in [`super`] owns one [`Discovery`] and does the I/O; every
//! method takes the time, so the rules are tested with a fake clock.
//!
//! How a node finds the others: every validator and worker publishes a signed role record
//! (`/smartnodes/role/<peer id>`: role, capacity, addresses, when it was signed) and
//! announces itself as a Kademlia provider of `/smartnodes/providers/<role>`. A node that
//! knows any one peer bootstraps Kademlia through it, asks for the providers of the roles
//! it looks for, fetches each provider's role record (keeping the newest signed one) and
//! dials the validators. Records are re-signed before they expire and whenever the node's
//! addresses change, so a validator that restarts on a new port is found again.

use super::proto::{RecordBody, SignedRecord};
use libp2p::{Multiaddr, PeerId};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a role record is valid after it is signed (it is re-signed well before).
pub const ROLE_RECORD_TTL: u64 = 600;
/// At most this many peers are remembered.
pub const MAX_PEERS: usize = 4096;
/// At most this many addresses in a role record, each at most [`MAX_ADDR_BYTES`].
pub const MAX_ADDRS: usize = 8;
/// The longest address a role record may carry, in bytes.
pub const MAX_ADDR_BYTES: usize = 128;
/// The first redial waits this long; each failure doubles it, up to [`MAX_BACKOFF`].
pub const BASE_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait between two dials of a lost peer.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The Kademlia key under which the nodes of `role` announce themselves as providers.
pub fn provider_key(role: &str) -> Vec<u8> {
    [b"/smartnodes/providers/".as_slice(), role.as_bytes()].concat()
}

/// The Kademlia key of `peer`'s role record.
pub fn role_key(peer: &PeerId) -> Vec<u8> {
    RecordBody::Role {
        peer: peer.to_bytes(),
        role: String::new(),
        capacity: 0,
        addrs: Vec::new(),
        account: None,
        signed_at: 0,
        expires: 0,
    }
    .key()
}

/// What this node announces about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    /// `validator` or `worker`.
    pub role: String,
    /// Task slots (workers).
    pub capacity: u32,
    /// Its chain account, when it runs with a chain.
    pub account: Option<[u8; 20]>,
}

/// The identify agent version of a node: `smartnodes/<version>`, with ` role=<role>` when
/// it announces one.
pub fn agent_version(announce: Option<&Announce>) -> String {
    let mut agent = format!("smartnodes/{}", env!("CARGO_PKG_VERSION"));
    if let Some(a) = announce {
        agent.push_str(" role=");
        agent.push_str(&a.role);
    }
    agent
}

/// What a peer's identify agent version says of its role: `None` when it is not a
/// smartnodes node's, `Some(None)` for one that announces no role (a user, `peers`), else
/// its role (only `validator` or `worker`).
pub fn said_role(agent: &str) -> Option<Option<String>> {
    let rest = agent.strip_prefix("smartnodes/")?;
    Some(
        rest.split(' ')
            .find_map(|w| w.strip_prefix("role="))
            .filter(|r| matches!(*r, "validator" | "worker"))
            .map(String::from),
    )
}

/// What [`Discovery::identified`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identified {
    /// Look the peer's role record up in the DHT.
    pub look_up: bool,
    /// What this node knows changed (a peer of a wanted role became known).
    pub changed: bool,
}

/// How a node discovers its peers.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// Addresses to dial at start, and again (with backoff) whenever their peer is lost.
    pub bootstrap: Vec<Multiaddr>,
    /// Addresses operators give: announced in the role record before any peer confirms
    /// them (`--external-address`).
    pub external: Vec<Multiaddr>,
    /// What this node announces (`None`: a user, or `smartnodes peers`).
    pub announce: Option<Announce>,
    /// The roles it looks for (providers it asks for).
    pub find: Vec<String>,
    /// Whether it keeps connections to the validators it finds.
    pub connect_validators: bool,
    /// At most this many validators kept connected (`None`: all).
    pub max_validators: Option<usize>,
    /// How often it looks the network up (and republishes its record at most every
    /// [`DiscoveryConfig::republish`]).
    pub interval: Duration,
    /// How often its role record is re-signed and put again (and its provider record).
    pub republish: Duration,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            bootstrap: Vec::new(),
            external: Vec::new(),
            announce: None,
            find: vec!["validator".into()],
            connect_validators: true,
            max_validators: None,
            interval: Duration::from_secs(10),
            republish: Duration::from_secs(120),
        }
    }
}

/// What a node knows about one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its peer id.
    pub peer: PeerId,
    /// Its role, from its signed record; until that arrives, what a connected peer said in
    /// identify (then `signed_at` and `expires` are 0).
    pub role: String,
    /// Its task slots (workers).
    pub capacity: u32,
    /// Its chain account, as its record says (check it on chain).
    pub account: Option<[u8; 20]>,
    /// The addresses its record lists.
    pub addrs: Vec<Multiaddr>,
    /// When it signed that record (unix seconds): the last time it was seen alive.
    pub signed_at: u64,
    /// When the record expires (unix seconds).
    pub expires: u64,
    /// Whether this node is connected to it now.
    pub connected: bool,
    /// Whether this node keeps a connection to it (a selected validator).
    pub wanted: bool,
    /// How long the last dial took (a latency estimate).
    pub dial_time: Option<Duration>,
}

/// A peer's role record, checked: the fields of [`RecordBody::Role`] with parsed types.
/// `None` when the record is not a role record or one of its addresses does not parse or
/// is too long.
pub fn parse_role(record: &SignedRecord) -> Option<(PeerId, Announce, Vec<Multiaddr>, u64, u64)> {
    let RecordBody::Role {
        peer,
        role,
        capacity,
        addrs,
        account,
        signed_at,
        expires,
    } = &record.body
    else {
        return None;
    };
    if addrs.len() > MAX_ADDRS || role.len() > 16 {
        return None;
    }
    let peer = PeerId::from_bytes(peer).ok()?;
    let addrs = addrs
        .iter()
        .map(|a| {
            (a.len() <= MAX_ADDR_BYTES)
                .then(|| Multiaddr::try_from(a.clone()).ok())
                .flatten()
        })
        .collect::<Option<Vec<_>>>()?;
    Some((
        peer,
        Announce {
            role: role.clone(),
            capacity: *capacity,
            account: *account,
        },
        addrs,
        *signed_at,
        *expires,
    ))
}

/// Whether `new` may replace `old` for the same key: a role record only by one signed
/// later (so nobody can roll a peer's addresses back by replaying an old record); other
/// records by a valid one.
pub fn replaces(old: Option<&SignedRecord>, new: &SignedRecord) -> bool {
    match (old.map(|o| &o.body), &new.body) {
        (
            Some(RecordBody::Role { signed_at: old, .. }),
            RecordBody::Role { signed_at: new, .. },
        ) => new >= old,
        _ => true,
    }
}

/// A redial target: a bootstrap address, or a peer found through the DHT.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A `--bootstrap` address (its peer id may be unknown until it answers).
    Addr(Multiaddr),
    /// A discovered peer, dialed at the addresses of its record.
    Peer(PeerId),
}

#[derive(Debug, Clone)]
struct Redial {
    /// Failed dials since the last success.
    failures: u32,
    /// When it may be dialed next.
    next: Instant,
    /// A dial is in flight.
    dialing: bool,
    /// The peer behind it (known once connected).
    peer: Option<PeerId>,
}

#[derive(Debug, Clone)]
struct Known {
    info: PeerInfo,
    /// When its record was last asked for.
    looked_up: Option<Instant>,
}

/// The wait before the next dial after `failures` failed ones.
pub fn backoff(failures: u32) -> Duration {
    BASE_BACKOFF
        .saturating_mul(1u32 << failures.min(16))
        .min(MAX_BACKOFF)
}

/// The discovery state of one node.
#[derive(Debug)]
pub struct Discovery {
    config: DiscoveryConfig,
    local: PeerId,
    peers: HashMap<PeerId, Known>,
    targets: HashMap<Target, Redial>,
    /// Connected peers, with the role each said it has in identify (if it did).
    connected: HashMap<PeerId, Option<String>>,
    next_lookup: Instant,
    next_publish: Instant,
    /// The addresses of the last published record.
    published: Vec<Multiaddr>,
}

impl Discovery {
    /// A node's discovery, with its bootstrap addresses due for dialing at `now`.
    pub fn new(config: DiscoveryConfig, local: PeerId, now: Instant) -> Discovery {
        let targets = config
            .bootstrap
            .iter()
            .map(|a| {
                (
                    Target::Addr(a.clone()),
                    Redial {
                        failures: 0,
                        next: now,
                        dialing: false,
                        peer: peer_in(a),
                    },
                )
            })
            .collect();
        Discovery {
            config,
            local,
            peers: HashMap::new(),
            targets,
            connected: HashMap::new(),
            next_lookup: now,
            next_publish: now,
            published: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DiscoveryConfig {
        &self.config
    }

    /// Targets due for a dial at `now`, with the addresses to dial; each is marked as
    /// dialing until [`Discovery::dial_done`].
    pub fn due(&mut self, now: Instant) -> Vec<(Target, Vec<Multiaddr>)> {
        let mut due = Vec::new();
        for (target, r) in self.targets.iter_mut() {
            if r.dialing || r.next > now || r.peer.is_some_and(|p| self.connected.contains_key(&p))
            {
                continue;
            }
            let addrs = match target {
                Target::Addr(a) => vec![a.clone()],
                Target::Peer(p) => match self.peers.get(p) {
                    Some(k) if !k.info.addrs.is_empty() => k.info.addrs.clone(),
                    _ => continue,
                },
            };
            r.dialing = true;
            due.push((target.clone(), addrs));
        }
        due
    }

    /// A dial of `target` ended: connected to `peer` after `took`, or failed.
    pub fn dial_done(
        &mut self,
        target: &Target,
        result: Result<PeerId, ()>,
        took: Duration,
        now: Instant,
    ) {
        let Some(r) = self.targets.get_mut(target) else {
            return;
        };
        r.dialing = false;
        match result {
            Ok(peer) => {
                r.failures = 0;
                r.peer = Some(peer);
                r.next = now + BASE_BACKOFF;
                if let Some(k) = self.peers.get_mut(&peer) {
                    k.info.dial_time = Some(took);
                }
            }
            Err(()) => {
                r.next = now + backoff(r.failures);
                r.failures = r.failures.saturating_add(1);
            }
        }
    }

    /// A dial could not even start (e.g. one is already in flight): try again later
    /// without counting a failure.
    pub fn dial_skipped(&mut self, target: &Target, now: Instant) {
        if let Some(r) = self.targets.get_mut(target) {
            r.dialing = false;
            r.next = now + BASE_BACKOFF;
        }
    }

    /// A first connection to `peer`.
    pub fn connected(&mut self, peer: PeerId) {
        self.connected.entry(peer).or_insert(None);
        if let Some(k) = self.peers.get_mut(&peer) {
            k.info.connected = true;
        }
        for r in self.targets.values_mut() {
            if r.peer == Some(peer) {
                r.failures = 0;
            }
        }
    }

    /// Identify told us what `peer` says of its role (its agent version, [`said_role`])
    /// and where it listens. Said over its own authenticated connection, that is as good as
    /// its self-signed role record, which says no more: a connected peer that says it has a
    /// role this node looks for is known at once (until its record arrives, or it
    /// disconnects), so a worker bootstrapped to a validator registers without waiting for
    /// a DHT lookup. The record (signed addresses, capacity, account) is looked up only for
    /// the roles this node looks for. (Looking up every identified peer made each of 55
    /// nodes on one machine look up all the others, ~217,000 Kademlia requests in their
    /// first 45 s, and workers waited for those lookups to register: issue 22.)
    pub fn identified(
        &mut self,
        peer: PeerId,
        said: Option<Option<String>>,
        addrs: Vec<Multiaddr>,
        now: Instant,
    ) -> Identified {
        let Some(role) = said else {
            // Not a smartnodes agent: its record is the only way to know.
            return Identified {
                look_up: true,
                changed: false,
            };
        };
        if let Some(slot) = self.connected.get_mut(&peer) {
            slot.clone_from(&role);
        }
        let Some(role) = role.filter(|r| self.config.find.contains(r)) else {
            return Identified {
                look_up: false,
                changed: false,
            };
        };
        let mut changed = false;
        let connected = self.connected.contains_key(&peer);
        let room = self.peers.contains_key(&peer) || self.peers.len() < MAX_PEERS;
        if connected && room && peer != self.local {
            let k = self.entry(peer);
            if k.info.role.is_empty() {
                k.info.role = role;
                k.info.addrs = addrs
                    .into_iter()
                    .filter(|a| a.len() <= MAX_ADDR_BYTES)
                    .take(MAX_ADDRS)
                    .collect();
                k.info.connected = true;
                changed = true;
                self.select(now);
            }
        }
        Identified {
            look_up: true,
            changed,
        }
    }

    /// How many peers this node is connected to.
    pub fn connected_count(&self) -> usize {
        self.connected.len()
    }

    /// The last connection to `peer` closed: its targets are redialed after the base
    /// backoff (then longer while the dials fail).
    pub fn disconnected(&mut self, peer: PeerId, now: Instant) {
        self.connected.remove(&peer);
        if let Some(k) = self.peers.get_mut(&peer) {
            k.info.connected = false;
        }
        for r in self.targets.values_mut() {
            if r.peer == Some(peer) && !r.dialing {
                r.next = now + backoff(r.failures);
            }
        }
        // Lost the last peer: look again soon (it may have moved).
        if self.connected.is_empty() {
            self.next_lookup = self.next_lookup.min(now + BASE_BACKOFF);
        }
    }

    /// Whether `peer`'s record should be asked for now (at most once per half interval).
    pub fn should_look_up(&mut self, peer: PeerId, now: Instant) -> bool {
        if peer == self.local {
            return false;
        }
        // A peer connected to and known (its record held) needs its record only as often as
        // it is re-signed; one this node cannot reach, or knows nothing of, as often as
        // discovery runs. (Looking up every known peer at the discovery rate cost 55 nodes
        // on one machine most of their CPU in Kademlia queries: issue 22.)
        let known = self.peers.get(&peer);
        let settled =
            self.connected.contains_key(&peer) && known.is_some_and(|k| !k.info.role.is_empty());
        let every = if settled {
            self.config.republish
        } else {
            self.config.interval / 2
        };
        if known.is_some_and(|k| k.looked_up.is_some_and(|t| now < t + every)) {
            return false;
        }
        if !self.peers.contains_key(&peer) && self.peers.len() >= MAX_PEERS {
            return false;
        }
        // A placeholder until the record arrives (an entry without a role).
        self.entry(peer).looked_up = Some(now);
        true
    }

    /// `peer`'s entry, a placeholder without a role if it had none.
    fn entry(&mut self, peer: PeerId) -> &mut Known {
        let connected = self.connected.contains_key(&peer);
        self.peers.entry(peer).or_insert_with(|| Known {
            info: PeerInfo {
                peer,
                role: String::new(),
                capacity: 0,
                account: None,
                addrs: Vec::new(),
                signed_at: 0,
                expires: 0,
                connected,
                wanted: false,
                dial_time: None,
            },
            looked_up: None,
        })
    }

    /// A checked role record arrived (the newest of a lookup). Returns whether what this
    /// node knows changed.
    pub fn on_record(&mut self, record: &SignedRecord, now: Instant) -> bool {
        let Some((peer, announce, addrs, signed_at, expires)) = parse_role(record) else {
            return false;
        };
        if peer == self.local {
            return false;
        }
        if !self.peers.contains_key(&peer) && self.peers.len() >= MAX_PEERS {
            return false;
        }
        let k = self.entry(peer);
        if signed_at < k.info.signed_at
            || (signed_at == k.info.signed_at && !k.info.role.is_empty())
        {
            return false;
        }
        let changed = k.info.role != announce.role || k.info.addrs != addrs;
        k.info.role = announce.role;
        k.info.capacity = announce.capacity;
        k.info.account = announce.account;
        k.info.addrs = addrs;
        k.info.signed_at = signed_at;
        k.info.expires = expires;
        if changed {
            // New addresses: dial them at once.
            if let Some(r) = self.targets.get_mut(&Target::Peer(peer)) {
                r.failures = 0;
                r.next = r.next.min(now);
            }
        }
        self.select(now);
        true
    }

    /// Forgets peers whose records expired (and that are not connected).
    pub fn prune(&mut self, unix_now: u64, now: Instant) {
        let before = self.peers.len();
        self.peers.retain(|_, k| {
            k.info.connected || k.info.role.is_empty() || k.info.expires >= unix_now
        });
        if self.peers.len() != before {
            self.select(now);
        }
    }

    /// Chooses the validators to keep connected: all, or the `max_validators` best
    /// (connected first, then fewest failed dials, then fastest dial).
    fn select(&mut self, now: Instant) {
        if !self.config.connect_validators {
            return;
        }
        let mut candidates: Vec<&PeerInfo> = self
            .peers
            .values()
            .map(|k| &k.info)
            .filter(|i| i.role == "validator")
            .collect();
        let failures = |p: &PeerId| {
            self.targets
                .get(&Target::Peer(*p))
                .map_or(0, |r| r.failures)
        };
        candidates.sort_by_key(|i| {
            (
                !i.connected,
                failures(&i.peer),
                i.dial_time.unwrap_or(Duration::MAX),
                i.peer,
            )
        });
        let keep = self.config.max_validators.unwrap_or(usize::MAX);
        let chosen: Vec<PeerId> = candidates.iter().take(keep).map(|i| i.peer).collect();
        self.targets
            .retain(|t, _| !matches!(t, Target::Peer(p) if !chosen.contains(p)));
        for (p, k) in self.peers.iter_mut() {
            k.info.wanted = chosen.contains(p);
        }
        for p in chosen {
            self.targets.entry(Target::Peer(p)).or_insert(Redial {
                failures: 0,
                next: now,
                dialing: false,
                peer: Some(p),
            });
        }
    }

    /// Whether a lookup is due; if so the next one is scheduled.
    pub fn lookup_due(&mut self, now: Instant) -> bool {
        if now < self.next_lookup {
            return false;
        }
        // Soon after start, look more often: the network is being found.
        let known = self
            .peers
            .values()
            .filter(|k| !k.info.role.is_empty())
            .count();
        let wait = if known == 0 {
            self.config.interval.min(Duration::from_secs(1))
        } else {
            self.config.interval
        };
        self.next_lookup = now + wait;
        true
    }

    /// Whether the role record must be (re)published now, given the node's current
    /// addresses: never published, addresses changed, or the republish period passed.
    pub fn publish_due(&mut self, addrs: &[Multiaddr], now: Instant) -> bool {
        if self.config.announce.is_none() {
            return false;
        }
        if now < self.next_publish && addrs == self.published.as_slice() {
            return false;
        }
        self.published = addrs.to_vec();
        self.next_publish = now + self.config.republish;
        true
    }

    /// Publishes again at the next tick (a first peer connected: the record can now be
    /// replicated).
    pub fn publish_soon(&mut self, now: Instant) {
        self.next_publish = now;
    }

    /// Everything known, peers with a role first, sorted by role then peer id.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let mut all: Vec<PeerInfo> = self
            .peers
            .values()
            .filter(|k| !k.info.role.is_empty())
            .map(|k| k.info.clone())
            .collect();
        all.sort_by(|a, b| (&a.role, a.peer).cmp(&(&b.role, b.peer)));
        all
    }

    /// Connected peers per role: their record's, else the one they said in identify
    /// (`unknown` for neither).
    pub fn connected_by_role(&self) -> HashMap<String, i64> {
        let mut by_role = HashMap::new();
        for (p, said) in &self.connected {
            let role = match (self.peers.get(p), said) {
                (Some(k), _) if !k.info.role.is_empty() => k.info.role.clone(),
                (_, Some(said)) => said.clone(),
                _ => "unknown".to_string(),
            };
            *by_role.entry(role).or_insert(0) += 1;
        }
        by_role
    }
}

/// The `/p2p/<id>` of an address, if it has one.
pub fn peer_in(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::P2p(id) => Some(id),
        _ => None,
    })
}

/// The addresses worth announcing, best first: confirmed external ones, then listen
/// addresses that are not loopback, then loopback ones; never an unspecified address;
/// at most [`MAX_ADDRS`], without `/p2p`.
pub fn announced_addrs(external: &[Multiaddr], listen: &[Multiaddr]) -> Vec<Multiaddr> {
    use libp2p::multiaddr::Protocol;
    let strip = |a: &Multiaddr| -> Multiaddr {
        a.iter()
            .filter(|p| !matches!(p, Protocol::P2p(_)))
            .collect()
    };
    let is_loopback = |a: &Multiaddr| {
        a.iter().any(|p| match p {
            Protocol::Ip4(ip) => ip.is_loopback(),
            Protocol::Ip6(ip) => ip.is_loopback(),
            _ => false,
        })
    };
    let is_unspecified = |a: &Multiaddr| {
        a.iter().any(|p| match p {
            Protocol::Ip4(ip) => ip.is_unspecified(),
            Protocol::Ip6(ip) => ip.is_unspecified(),
            _ => false,
        })
    };
    let mut out: Vec<Multiaddr> = Vec::new();
    let listen: Vec<Multiaddr> = listen.iter().map(strip).collect();
    let ordered = external
        .iter()
        .map(strip)
        .chain(listen.iter().filter(|a| !is_loopback(a)).cloned())
        .chain(listen.iter().filter(|a| is_loopback(a)).cloned());
    for a in ordered {
        if !is_unspecified(&a) && a.len() <= MAX_ADDR_BYTES && !out.contains(&a) {
            out.push(a);
        }
    }
    out.truncate(MAX_ADDRS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::identity::Keypair;

    fn role_record(key: &Keypair, role: &str, port: u16, signed_at: u64) -> SignedRecord {
        let addr: Multiaddr = format!("/ip4/10.0.0.1/tcp/{port}").parse().unwrap();
        SignedRecord::sign(
            RecordBody::Role {
                peer: key.public().to_peer_id().to_bytes(),
                role: role.into(),
                capacity: 2,
                addrs: vec![addr.to_vec()],
                account: None,
                signed_at,
                expires: signed_at + ROLE_RECORD_TTL,
            },
            key,
        )
    }

    fn disc(config: DiscoveryConfig) -> Discovery {
        Discovery::new(config, PeerId::random(), Instant::now())
    }

    #[test]
    fn the_agent_version_says_the_role_and_only_known_roles_are_read() {
        let worker = Announce {
            role: "worker".into(),
            capacity: 4,
            account: None,
        };
        assert_eq!(
            said_role(&agent_version(Some(&worker))),
            Some(Some("worker".into()))
        );
        assert_eq!(said_role(&agent_version(None)), Some(None));
        assert_eq!(said_role("smartnodes/0.1.0 role=admin"), Some(None));
        assert_eq!(said_role("rust-libp2p/0.47"), None);
    }

    #[test]
    fn only_peers_of_a_wanted_role_are_looked_up_and_all_are_counted_by_role() {
        let t0 = Instant::now();
        let mut d = disc(DiscoveryConfig::default()); // finds validators
        let (validator, worker, user, other) = (
            PeerId::random(),
            PeerId::random(),
            PeerId::random(),
            PeerId::random(),
        );
        for p in [validator, worker, user, other] {
            d.connected(p);
        }
        let addr: Multiaddr = "/ip4/10.0.0.1/tcp/4001".parse().unwrap();
        let said = |r: &str| Some(Some(r.to_string()));
        // A validator is known (and wanted) as soon as it says so, and still looked up.
        let seen = d.identified(validator, said("validator"), vec![addr.clone()], t0);
        assert_eq!(
            seen,
            Identified {
                look_up: true,
                changed: true
            }
        );
        let known = d.peers();
        assert_eq!(known.len(), 1);
        assert_eq!(known[0].peer, validator);
        assert_eq!(known[0].role, "validator");
        assert_eq!(known[0].addrs, vec![addr.clone()]);
        assert!(known[0].connected && known[0].wanted);
        // Other roles are only counted.
        assert!(!d.identified(worker, said("worker"), vec![], t0).look_up);
        assert!(
            !d.identified(user, Some(None), vec![], t0).look_up,
            "a client publishes no record"
        );
        assert!(
            d.identified(other, None, vec![], t0).look_up,
            "a foreign agent: only its record says"
        );
        assert_eq!(d.peers().len(), 1);
        let by_role = d.connected_by_role();
        assert_eq!(by_role.get("validator"), Some(&1));
        assert_eq!(by_role.get("worker"), Some(&1));
        assert_eq!(by_role.get("unknown"), Some(&2));
        // Its signed record replaces what it said.
        let key = Keypair::generate_ed25519();
        let signed = key.public().to_peer_id();
        d.connected(signed);
        d.identified(signed, said("validator"), vec![addr], t0);
        assert!(d.on_record(&role_record(&key, "validator", 4002, 1_000), t0));
        let info = d.peers().into_iter().find(|p| p.peer == signed).unwrap();
        assert_eq!(info.signed_at, 1_000);
        assert_eq!(
            info.addrs,
            vec!["/ip4/10.0.0.1/tcp/4002".parse::<Multiaddr>().unwrap()]
        );
        // What a peer said is forgotten with its connection (pruned at the next tick).
        d.disconnected(validator, t0);
        d.disconnected(worker, t0);
        d.prune(2_000, t0);
        assert!(d.peers().iter().all(|p| p.peer != validator));
        assert_eq!(d.connected_by_role().get("worker"), None);
        // `smartnodes peers` finds workers too.
        let mut all = disc(DiscoveryConfig {
            find: vec!["validator".into(), "worker".into()],
            ..DiscoveryConfig::default()
        });
        all.connected(worker);
        assert!(all.identified(worker, said("worker"), vec![], t0).look_up);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(0), BASE_BACKOFF);
        assert_eq!(backoff(1), BASE_BACKOFF * 2);
        assert_eq!(backoff(3), BASE_BACKOFF * 8);
        assert_eq!(backoff(10), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn bootstrap_addresses_are_redialed_with_backoff() {
        let t0 = Instant::now();
        let addr: Multiaddr = "/ip4/10.0.0.1/tcp/4001".parse().unwrap();
        let mut d = Discovery::new(
            DiscoveryConfig {
                bootstrap: vec![addr.clone()],
                ..DiscoveryConfig::default()
            },
            PeerId::random(),
            t0,
        );
        let target = Target::Addr(addr.clone());
        assert_eq!(d.due(t0), vec![(target.clone(), vec![addr.clone()])]);
        // In flight: not due again.
        assert!(d.due(t0 + Duration::from_secs(60)).is_empty());
        d.dial_done(&target, Err(()), Duration::ZERO, t0);
        assert!(d.due(t0 + BASE_BACKOFF / 2).is_empty());
        assert_eq!(d.due(t0 + BASE_BACKOFF).len(), 1);
        let t1 = t0 + BASE_BACKOFF;
        d.dial_done(&target, Err(()), Duration::ZERO, t1);
        assert!(
            d.due(t1 + BASE_BACKOFF).is_empty(),
            "the second wait is doubled"
        );
        assert_eq!(d.due(t1 + BASE_BACKOFF * 2).len(), 1);
        // Connected: nothing to dial while the connection lasts.
        let peer = PeerId::random();
        let t2 = t1 + BASE_BACKOFF * 2;
        d.dial_done(&target, Ok(peer), Duration::from_millis(3), t2);
        d.connected(peer);
        assert!(d.due(t2 + Duration::from_secs(100)).is_empty());
        // Lost: dialed again after the base backoff, failures forgotten.
        let t3 = t2 + Duration::from_secs(100);
        d.disconnected(peer, t3);
        assert!(d.due(t3).is_empty());
        assert_eq!(d.due(t3 + BASE_BACKOFF).len(), 1);
    }

    #[test]
    fn validators_found_become_targets_and_newer_records_move_them() {
        let mut d = disc(DiscoveryConfig::default());
        let v = Keypair::generate_ed25519();
        let w = Keypair::generate_ed25519();
        assert!(d.on_record(&role_record(&w, "worker", 1, 100), Instant::now()));
        assert!(d.on_record(&role_record(&v, "validator", 1, 100), Instant::now()));
        let vp = v.public().to_peer_id();
        let due = d.due(Instant::now());
        assert_eq!(due.len(), 1, "only the validator is dialed: {due:?}");
        assert_eq!(due[0].0, Target::Peer(vp));
        assert_eq!(due[0].1[0].to_string(), "/ip4/10.0.0.1/tcp/1");
        // An older record (a replay) does not move it back; a newer one does.
        assert!(!d.on_record(&role_record(&v, "validator", 9, 99), Instant::now()));
        assert!(d.on_record(&role_record(&v, "validator", 2, 101), Instant::now()));
        let info = d.peers().into_iter().find(|p| p.peer == vp).unwrap();
        assert_eq!(info.addrs[0].to_string(), "/ip4/10.0.0.1/tcp/2");
        assert!(info.wanted);
        assert!(!replaces(
            Some(&role_record(&v, "validator", 2, 101)),
            &role_record(&v, "validator", 1, 100)
        ));
        assert!(replaces(None, &role_record(&v, "validator", 1, 100)));
    }

    #[test]
    fn at_most_max_validators_are_kept_preferring_connected_ones() {
        let mut d = disc(DiscoveryConfig {
            max_validators: Some(1),
            ..DiscoveryConfig::default()
        });
        let a = Keypair::generate_ed25519();
        let b = Keypair::generate_ed25519();
        let (pa, pb) = (a.public().to_peer_id(), b.public().to_peer_id());
        d.connected(pb);
        d.on_record(&role_record(&a, "validator", 1, 100), Instant::now());
        d.on_record(&role_record(&b, "validator", 2, 100), Instant::now());
        let wanted: Vec<PeerId> = d
            .peers()
            .iter()
            .filter(|p| p.wanted)
            .map(|p| p.peer)
            .collect();
        assert_eq!(wanted, vec![pb]);
        // B is lost and fails to answer: A takes its place.
        d.disconnected(pb, Instant::now());
        d.dial_done(&Target::Peer(pb), Err(()), Duration::ZERO, Instant::now());
        d.on_record(&role_record(&a, "validator", 1, 101), Instant::now());
        let wanted: Vec<PeerId> = d
            .peers()
            .iter()
            .filter(|p| p.wanted)
            .map(|p| p.peer)
            .collect();
        assert_eq!(wanted, vec![pa]);
    }

    #[test]
    fn lookups_and_publications_follow_their_clocks() {
        let t0 = Instant::now();
        let mut d = Discovery::new(
            DiscoveryConfig {
                announce: Some(Announce {
                    role: "worker".into(),
                    capacity: 1,
                    account: None,
                }),
                interval: Duration::from_secs(10),
                republish: Duration::from_secs(60),
                ..DiscoveryConfig::default()
            },
            PeerId::random(),
            t0,
        );
        assert!(d.lookup_due(t0));
        assert!(!d.lookup_due(t0));
        // Nothing known yet: again after one second, not ten.
        assert!(d.lookup_due(t0 + Duration::from_secs(1)));
        let a: Vec<Multiaddr> = vec!["/ip4/10.0.0.1/tcp/1".parse().unwrap()];
        assert!(d.publish_due(&a, t0));
        assert!(!d.publish_due(&a, t0 + Duration::from_secs(59)));
        let b: Vec<Multiaddr> = vec!["/ip4/10.0.0.1/tcp/2".parse().unwrap()];
        assert!(d.publish_due(&b, t0 + Duration::from_secs(59)), "moved");
        assert!(d.publish_due(&b, t0 + Duration::from_secs(120)), "periodic");
    }

    #[test]
    fn expired_records_are_forgotten_and_lookups_are_rate_limited() {
        let mut d = disc(DiscoveryConfig::default());
        let v = Keypair::generate_ed25519();
        let p = v.public().to_peer_id();
        let now = Instant::now();
        assert!(d.should_look_up(p, now));
        assert!(!d.should_look_up(p, now + Duration::from_secs(1)));
        assert!(d.should_look_up(p, now + Duration::from_secs(5)));
        d.on_record(&role_record(&v, "validator", 1, 100), Instant::now());
        assert_eq!(d.peers().len(), 1);
        // Known and connected: looked up again only when its record is re-signed.
        d.connected(p);
        // (Last looked up at 5 s; the republish period is 120 s.)
        assert!(!d.should_look_up(p, now + Duration::from_secs(60)));
        assert!(!d.should_look_up(p, now + Duration::from_secs(124)));
        assert!(d.should_look_up(p, now + Duration::from_secs(126)));
        // Lost: at the discovery rate again (it may have moved).
        d.disconnected(p, now + Duration::from_secs(127));
        assert!(d.should_look_up(p, now + Duration::from_secs(132)));
        d.prune(100 + ROLE_RECORD_TTL + 1, now);
        assert!(d.peers().is_empty());
        assert!(d.due(now).is_empty(), "an expired validator is no target");
    }

    #[test]
    fn announced_addresses_put_external_first_and_drop_unspecified() {
        let ext: Multiaddr = "/ip4/203.0.113.7/tcp/4001".parse().unwrap();
        let listen: Vec<Multiaddr> = [
            "/ip4/127.0.0.1/tcp/4001",
            "/ip4/0.0.0.0/tcp/4001",
            "/ip4/10.1.2.3/tcp/4001/p2p/12D3KooWLRPJAA5o6Z6mAFfjSLhX8s3Vg8tMxDTnDrvKYHZwDwdZ",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let got: Vec<String> = announced_addrs(&[ext], &listen)
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(
            got,
            [
                "/ip4/203.0.113.7/tcp/4001",
                "/ip4/10.1.2.3/tcp/4001",
                "/ip4/127.0.0.1/tcp/4001"
            ]
        );
    }
}
