//! The network layer: one event loop owns the libp2p `Swarm`; a cloneable [`Client`] sends
//! it commands over a bounded channel (each with a oneshot reply); what peers ask of this
//! node comes out as [`Event`]s on another bounded channel, for the role to handle.
//!
//! The swarm: TCP + Noise + Yamux, identify, Kademlia (signed, expiring role and job
//! records, checked before they are stored), gossipsub (job announcements, receipts) and
//! four request-response protocols ([`proto::protocols`]) with a length-prefixed postcard
//! codec and a size limit per direction. A peer whose message does not decode (or is over
//! the limit) is disconnected; a request that merely failed (truncated, reset, timed out)
//! is counted against the peer and drops it only at a sustained rate ([`faults`]); the node
//! carries on.
//!
//! Discovery ([`discovery`]): the event loop dials the bootstrap addresses (again, with
//! backoff, whenever they are lost), bootstraps Kademlia through them, publishes the
//! node's signed role record and provider announcement, looks up the providers of the roles
//! it looks for, fetches their role records and keeps connections to the validators it
//! selects. External addresses are those given (`--external-address`) and those identify
//! reports from at least two peers.

pub mod codec;
pub mod discovery;
pub mod faults;
pub mod proto;

use codec::PostcardCodec;
use discovery::{Discovery, DiscoveryConfig, PeerInfo, Target};
use futures::StreamExt;
use libp2p::metrics::Recorder;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{
    gossipsub, identify, kad, noise, request_response, tcp, yamux, Multiaddr, PeerId,
    StreamProtocol, Swarm,
};
use proto::*;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

/// Network failures a caller sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// Dialing failed.
    #[error("dial failed: {0}")]
    Dial(String),
    /// A request failed (timeout, connection closed, refused protocol, bad response).
    #[error("request to {peer} failed: {reason}")]
    Request {
        /// The peer.
        peer: PeerId,
        /// What went wrong.
        reason: String,
    },
    /// The peer answered with a response of another protocol (a bug).
    #[error("unexpected response")]
    Unexpected,
    /// The event loop has stopped.
    #[error("the network has shut down")]
    Shutdown,
    /// Starting the swarm failed.
    #[error("starting the network: {0}")]
    Setup(String),
}

/// A request on one of the four request-response protocols.
#[derive(Debug, Clone)]
pub enum Request {
    /// `/smartnodes/job/1`.
    Job(JobRequest),
    /// `/smartnodes/task/1`.
    Task(TaskRequest),
    /// `/smartnodes/result/1`.
    Result(TaskResult),
    /// `/smartnodes/blob/1`.
    Blob(BlobRequest),
}

/// A response on one of the four request-response protocols.
#[derive(Debug, Clone)]
pub enum Response {
    /// `/smartnodes/job/1`.
    Job(JobResponse),
    /// `/smartnodes/task/1`.
    Task(TaskResponse),
    /// `/smartnodes/result/1`.
    Result(ResultResponse),
    /// `/smartnodes/blob/1`.
    Blob(BlobResponse),
}

/// Where the answer to an inbound request goes. Pass it back with [`Client::respond`].
#[derive(Debug)]
pub enum Responder {
    /// `/smartnodes/job/1`.
    Job(request_response::ResponseChannel<JobResponse>),
    /// `/smartnodes/task/1`.
    Task(request_response::ResponseChannel<TaskResponse>),
    /// `/smartnodes/result/1`.
    Result(request_response::ResponseChannel<ResultResponse>),
    /// `/smartnodes/blob/1`.
    Blob(request_response::ResponseChannel<BlobResponse>),
}

/// What the network tells the node.
// Moved once through a channel; boxing the big variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Event {
    /// A peer asks something; answer through `responder`.
    Inbound {
        /// Who asks.
        peer: PeerId,
        /// What.
        request: Request,
        /// Where the answer goes.
        responder: Responder,
    },
    /// A first connection to a peer.
    Connected(PeerId),
    /// The last connection to a peer closed.
    Disconnected(PeerId),
    /// A gossipsub message that decoded.
    Gossip {
        /// The peer that forwarded it.
        from: PeerId,
        /// The message.
        message: Gossip,
    },
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Command {
    Dial {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<PeerId, NetError>>,
    },
    Request {
        peer: PeerId,
        request: Request,
        reply: oneshot::Sender<Result<Response, NetError>>,
    },
    Respond {
        responder: Responder,
        response: Response,
    },
    Publish {
        topic: &'static str,
        message: Gossip,
    },
    PutRecord {
        record: SignedRecord,
    },
    GetRecord {
        key: Vec<u8>,
        reply: oneshot::Sender<Option<SignedRecord>>,
    },
    ListenAddrs {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    IsConnected {
        peer: PeerId,
        reply: oneshot::Sender<bool>,
    },
    Peers {
        reply: oneshot::Sender<Vec<PeerInfo>>,
    },
    Faults {
        reply: oneshot::Sender<Vec<(PeerId, faults::PeerFaults)>>,
    },
    Shutdown,
}

/// Sends commands to the event loop. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    tx: mpsc::Sender<Command>,
    peer_id: PeerId,
    changes: watch::Receiver<u64>,
}

/// Capacity of the command and event channels.
const CHANNEL: usize = 1024;

impl Client {
    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    async fn send(&self, command: Command) -> Result<(), NetError> {
        self.tx.send(command).await.map_err(|_| NetError::Shutdown)
    }

    /// Dials `addr` (with or without `/p2p/<id>`) and waits for the connection; returns the
    /// peer's id.
    pub async fn dial(&self, addr: Multiaddr) -> Result<PeerId, NetError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Dial { addr, reply }).await?;
        rx.await.map_err(|_| NetError::Shutdown)?
    }

    /// Sends a request and waits for the response.
    pub async fn request(&self, peer: PeerId, request: Request) -> Result<Response, NetError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Request {
            peer,
            request,
            reply,
        })
        .await?;
        rx.await.map_err(|_| NetError::Shutdown)?
    }

    /// `/smartnodes/job/1`.
    pub async fn job(&self, peer: PeerId, request: JobRequest) -> Result<JobResponse, NetError> {
        match self.request(peer, Request::Job(request)).await? {
            Response::Job(r) => Ok(r),
            _ => Err(NetError::Unexpected),
        }
    }

    /// `/smartnodes/task/1`.
    pub async fn task(&self, peer: PeerId, request: TaskRequest) -> Result<TaskResponse, NetError> {
        match self.request(peer, Request::Task(request)).await? {
            Response::Task(r) => Ok(r),
            _ => Err(NetError::Unexpected),
        }
    }

    /// `/smartnodes/result/1`.
    pub async fn result(
        &self,
        peer: PeerId,
        result: TaskResult,
    ) -> Result<ResultResponse, NetError> {
        match self.request(peer, Request::Result(result)).await? {
            Response::Result(r) => Ok(r),
            _ => Err(NetError::Unexpected),
        }
    }

    /// `/smartnodes/blob/1`.
    pub async fn blob(&self, peer: PeerId, request: BlobRequest) -> Result<BlobResponse, NetError> {
        match self.request(peer, Request::Blob(request)).await? {
            Response::Blob(r) => Ok(r),
            _ => Err(NetError::Unexpected),
        }
    }

    /// Answers an inbound request.
    pub async fn respond(&self, responder: Responder, response: Response) {
        let _ = self
            .send(Command::Respond {
                responder,
                response,
            })
            .await;
    }

    /// Publishes a gossip message (best effort: no subscribed peer is not an error).
    pub async fn publish(&self, topic: &'static str, message: Gossip) {
        let _ = self.send(Command::Publish { topic, message }).await;
    }

    /// Stores a signed record in the DHT (best effort).
    pub async fn put_record(&self, record: SignedRecord) {
        let _ = self.send(Command::PutRecord { record }).await;
    }

    /// Looks a record up (locally first, then in the DHT); only a valid, unexpired signed
    /// record is returned.
    pub async fn get_record(&self, key: Vec<u8>) -> Option<SignedRecord> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::GetRecord { key, reply }).await.ok()?;
        rx.await.ok().flatten()
    }

    /// The addresses this node listens on, each ending in `/p2p/<peer id>`.
    pub async fn listen_addrs(&self) -> Vec<Multiaddr> {
        let (reply, rx) = oneshot::channel();
        if self.send(Command::ListenAddrs { reply }).await.is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Whether the node has a connection to `peer`.
    pub async fn is_connected(&self, peer: PeerId) -> bool {
        let (reply, rx) = oneshot::channel();
        if self
            .send(Command::IsConnected { peer, reply })
            .await
            .is_err()
        {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// What discovery knows: every peer with a valid role record, its addresses, whether
    /// this node is connected to it and whether it keeps a connection to it.
    pub async fn peers(&self) -> Vec<PeerInfo> {
        let (reply, rx) = oneshot::channel();
        if self.send(Command::Peers { reply }).await.is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Each peer's faults as this node counted them ([`faults`]): malformed messages,
    /// failed requests, and how often it was dropped.
    pub async fn faults(&self) -> Vec<(PeerId, faults::PeerFaults)> {
        let (reply, rx) = oneshot::channel();
        if self.send(Command::Faults { reply }).await.is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Changes whenever discovery learns something (a record, a selected validator
    /// connecting or leaving): wait on it with `changed()` rather than polling.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.clone()
    }

    /// Stops the event loop.
    pub async fn shutdown(&self) {
        let _ = self.send(Command::Shutdown).await;
    }
}

type Rr<Req, Resp> = request_response::Behaviour<PostcardCodec<Req, Resp>>;

/// The swarm's behaviours.
#[derive(NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude")]
struct Behaviour {
    identify: identify::Behaviour,
    kad: kad::Behaviour<kad::store::MemoryStore>,
    gossipsub: gossipsub::Behaviour,
    job: Rr<JobRequest, JobResponse>,
    task: Rr<TaskRequest, TaskResponse>,
    result: Rr<TaskResult, ResultResponse>,
    blob: Rr<BlobRequest, BlobResponse>,
}

fn rr<Req, Resp>(
    protocol: &'static str,
    max_request: usize,
    max_response: usize,
    timeout: Duration,
) -> Rr<Req, Resp>
where
    Req: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
    Resp: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    request_response::Behaviour::with_codec(
        PostcardCodec::new(max_request, max_response),
        [(
            StreamProtocol::new(protocol),
            request_response::ProtocolSupport::Full,
        )],
        request_response::Config::default()
            .with_request_timeout(timeout)
            .with_max_concurrent_streams(256),
    )
}

/// How a node's network starts.
#[derive(Debug, Clone, Default)]
pub struct NetConfig {
    /// Where it listens (`None`: it only dials, and is a Kademlia client).
    pub listen: Option<Multiaddr>,
    /// How it finds its peers.
    pub discovery: DiscoveryConfig,
    /// Where libp2p's metrics and the peer gauge go.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// The gossip topics it subscribes to: only those it reads, since a subscriber also
    /// relays (and verifies the signature of) every message of its topics. It may publish
    /// to others.
    pub topics: Vec<&'static str>,
}

/// Starts the swarm listening on `listen` and spawns its event loop on the current tokio
/// runtime, without discovery (no bootstrap, no lookups, no announcement). Returns the
/// client, the event stream and the actual listen addresses.
pub async fn start(
    keypair: libp2p::identity::Keypair,
    listen: Option<Multiaddr>,
) -> Result<(Client, mpsc::Receiver<Event>, Vec<Multiaddr>), NetError> {
    start_with(
        keypair,
        NetConfig {
            listen,
            discovery: DiscoveryConfig {
                find: Vec::new(),
                connect_validators: false,
                ..DiscoveryConfig::default()
            },
            metrics: None,
            topics: protocols::TOPICS.to_vec(),
        },
    )
    .await
}

/// Kademlia's local store: small records (role and job records are well under 2 KiB), a
/// bounded number of them, and enough providers per key for a network's validators.
fn kad_store(peer_id: PeerId) -> kad::store::MemoryStore {
    kad::store::MemoryStore::with_config(
        peer_id,
        kad::store::MemoryStoreConfig {
            max_records: 8192,
            max_value_bytes: 4096,
            max_providers_per_key: 256,
            max_provided_keys: 16,
        },
    )
}

/// Starts the swarm as `config` says and spawns its event loop on the current tokio
/// runtime. Returns the client, the event stream and the actual listen addresses (every
/// one of them: an unspecified address such as `0.0.0.0` listens on each interface).
pub async fn start_with(
    keypair: libp2p::identity::Keypair,
    config: NetConfig,
) -> Result<(Client, mpsc::Receiver<Event>, Vec<Multiaddr>), NetError> {
    let peer_id = keypair.public().to_peer_id();
    let metrics = config.metrics.clone().unwrap_or_default();
    let listen = config.listen.clone();
    let server = listen.is_some();
    let agent = discovery::agent_version(config.discovery.announce.as_ref());
    // libp2p's metrics name themselves `libp2p_…`.
    let (mut swarm, p2p_metrics) = metrics.with_registry(|registry| {
        let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair.clone())
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| NetError::Setup(e.to_string()))?
            .with_bandwidth_metrics(registry)
            .with_behaviour(|key| behaviour(key, server, agent))
            .map_err(|e| NetError::Setup(e.to_string()))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        Ok::<_, NetError>((swarm, libp2p::metrics::Metrics::new(registry)))
    })?;
    swarm_setup(&mut swarm, &config.topics)?;
    for addr in &config.discovery.external {
        swarm.add_external_address(addr.clone());
    }

    let addrs = match listen {
        Some(listen) => listen_on(&mut swarm, listen, peer_id).await?,
        None => Vec::new(),
    };

    let (tx, commands) = mpsc::channel(CHANNEL);
    let (events, events_rx) = mpsc::channel(CHANNEL);
    let (changes, changes_rx) = watch::channel(0);
    let now = Instant::now();
    let event_loop = EventLoop {
        swarm,
        commands,
        events,
        pending: HashMap::new(),
        dials: HashMap::new(),
        gets: HashMap::new(),
        disc: Discovery::new(config.discovery, peer_id, now),
        keypair,
        target_dials: HashMap::new(),
        role_gets: HashMap::new(),
        provider_gets: HashSet::new(),
        observed: HashMap::new(),
        changes,
        metrics,
        p2p_metrics,
        faults: faults::Faults::new(faults::FaultPolicy::default()),
    };
    tokio::spawn(event_loop.run());
    Ok((
        Client {
            tx,
            peer_id,
            changes: changes_rx,
        },
        events_rx,
        addrs,
    ))
}

fn behaviour(
    key: &libp2p::identity::Keypair,
    server: bool,
    agent: String,
) -> Result<Behaviour, Box<dyn std::error::Error + Send + Sync>> {
    {
        {
            let peer_id = key.public().to_peer_id();
            let mut kad_config = kad::Config::new(StreamProtocol::new(protocols::KAD));
            kad_config.set_record_filtering(kad::StoreInserts::FilterBoth);
            kad_config.set_max_packet_size(limits::GOSSIP * 2);
            kad_config.set_query_timeout(Duration::from_secs(10));
            let mut kad = kad::Behaviour::with_config(peer_id, kad_store(peer_id), kad_config);
            // A node that listens answers the DHT; one that only dials (a user, `peers`)
            // asks it.
            kad.set_mode(Some(if server {
                kad::Mode::Server
            } else {
                kad::Mode::Client
            }));
            let gossip_config = gossipsub::ConfigBuilder::default()
                .max_transmit_size(limits::GOSSIP)
                .validation_mode(gossipsub::ValidationMode::Strict)
                .heartbeat_interval(Duration::from_secs(1))
                .build()
                .map_err(|e| e.to_string())?;
            let gossipsub = gossipsub::Behaviour::new(
                gossipsub::MessageAuthenticity::Signed(key.clone()),
                gossip_config,
            )?;
            Ok(Behaviour {
                identify: identify::Behaviour::new(
                    identify::Config::new(protocols::IDENTIFY.to_string(), key.public())
                        .with_agent_version(agent),
                ),
                kad,
                gossipsub,
                job: rr(
                    protocols::JOB,
                    limits::JOB_REQUEST,
                    limits::JOB_RESPONSE,
                    Duration::from_secs(30),
                ),
                task: rr(
                    protocols::TASK,
                    limits::TASK_MESSAGE,
                    limits::TASK_MESSAGE,
                    Duration::from_secs(10),
                ),
                result: rr(
                    protocols::RESULT,
                    limits::RESULT_REQUEST,
                    limits::RESULT_RESPONSE,
                    Duration::from_secs(30),
                ),
                blob: rr(
                    protocols::BLOB,
                    limits::BLOB_REQUEST,
                    limits::BLOB_RESPONSE,
                    Duration::from_secs(30),
                ),
            })
        }
    }
}

fn swarm_setup(swarm: &mut Swarm<Behaviour>, topics: &[&str]) -> Result<(), NetError> {
    for &topic in topics {
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&gossipsub::IdentTopic::new(topic))
            .map_err(|e| NetError::Setup(e.to_string()))?;
    }

    Ok(())
}

/// Whether `addr` listens on every interface (`0.0.0.0`, `::`).
fn is_unspecified(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        libp2p::multiaddr::Protocol::Ip4(ip) => ip.is_unspecified(),
        libp2p::multiaddr::Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    })
}

/// Listens on `listen` and returns the addresses the OS gives: the first one, and for an
/// unspecified address every interface's, until none came for 200 ms.
async fn listen_on(
    swarm: &mut Swarm<Behaviour>,
    listen: Multiaddr,
    peer_id: PeerId,
) -> Result<Vec<Multiaddr>, NetError> {
    swarm
        .listen_on(listen.clone())
        .map_err(|e| NetError::Setup(format!("listening on {listen}: {e}")))?;
    let mut addrs = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let wait = if addrs.is_empty() {
            deadline
        } else if is_unspecified(&listen) {
            tokio::time::Instant::now() + Duration::from_millis(200)
        } else {
            break;
        };
        let event = match tokio::time::timeout_at(wait, swarm.select_next_some()).await {
            Ok(event) => event,
            Err(_) if addrs.is_empty() => {
                return Err(NetError::Setup(format!("no listen address for {listen}")))
            }
            Err(_) => break,
        };
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                addrs.push(address.with_p2p(peer_id).unwrap_or_else(|a| a))
            }
            SwarmEvent::ListenerError { error, .. } => {
                return Err(NetError::Setup(format!("listening on {listen}: {error}")))
            }
            SwarmEvent::ListenerClosed { reason, .. } => {
                return Err(NetError::Setup(format!(
                    "listening on {listen}: closed {reason:?}"
                )))
            }
            _ => {}
        }
    }
    Ok(addrs)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Proto {
    Job,
    Task,
    Result,
    Blob,
}

struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
    pending: HashMap<
        (Proto, request_response::OutboundRequestId),
        oneshot::Sender<Result<Response, NetError>>,
    >,
    dials: HashMap<ConnectionId, oneshot::Sender<Result<PeerId, NetError>>>,
    gets: HashMap<kad::QueryId, oneshot::Sender<Option<SignedRecord>>>,
    /// Discovery's rules and state.
    disc: Discovery,
    /// Signs the role record.
    keypair: libp2p::identity::Keypair,
    /// Discovery's dials in flight: their target and when they started.
    target_dials: HashMap<ConnectionId, (Target, Instant)>,
    /// Role record lookups in flight: the peer and the newest valid record so far.
    role_gets: HashMap<kad::QueryId, Option<SignedRecord>>,
    /// Provider lookups in flight.
    provider_gets: HashSet<kad::QueryId>,
    /// Identify's observations of our IP, by IP, with the peers that reported it: an
    /// address candidate on an IP reported by two peers is confirmed as external.
    observed: HashMap<std::net::IpAddr, HashSet<PeerId>>,
    changes: watch::Sender<u64>,
    metrics: Arc<crate::metrics::Metrics>,
    p2p_metrics: libp2p::metrics::Metrics,
    /// Per-peer faults: what drops a peer.
    faults: faults::Faults,
}

/// At most this many role record lookups at once.
const MAX_ROLE_GETS: usize = 256;
/// At most this many observed IPs are remembered, each with at most this many reporters.
const MAX_OBSERVED: usize = 64;

fn check_record(record: &kad::Record) -> Option<SignedRecord> {
    if record.value.len() > limits::GOSSIP {
        return None;
    }
    let signed: SignedRecord = codec::decode(&record.value, limits::GOSSIP).ok()?;
    if signed.body.key() != record.key.to_vec() {
        return None;
    }
    signed.verify(unix_now()).ok()?;
    if matches!(signed.body, RecordBody::Role { .. }) && discovery::parse_role(&signed).is_none() {
        return None;
    }
    Some(signed)
}

impl EventLoop {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event).await,
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(command) => self.on_command(command),
                },
                _ = tick.tick() => self.on_tick(),
            }
        }
        tracing::debug!("network event loop stopped");
    }

    fn on_command(&mut self, command: Command) {
        let b = self.swarm.behaviour_mut();
        match command {
            Command::Dial { addr, reply } => {
                let peer = addr.iter().find_map(|p| match p {
                    libp2p::multiaddr::Protocol::P2p(id) => Some(id),
                    _ => None,
                });
                let opts = match peer {
                    Some(peer) => DialOpts::peer_id(peer)
                        .addresses(vec![addr.clone()])
                        .condition(libp2p::swarm::dial_opts::PeerCondition::Always)
                        .build(),
                    None => DialOpts::unknown_peer_id().address(addr.clone()).build(),
                };
                let id = opts.connection_id();
                if let Some(peer) = peer {
                    self.swarm.add_peer_address(peer, addr.clone());
                }
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.dials.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(NetError::Dial(e.to_string())));
                    }
                }
            }
            Command::Request {
                peer,
                request,
                reply,
            } => {
                let key = match request {
                    Request::Job(r) => (Proto::Job, b.job.send_request(&peer, Ok(r))),
                    Request::Task(r) => (Proto::Task, b.task.send_request(&peer, Ok(r))),
                    Request::Result(r) => (Proto::Result, b.result.send_request(&peer, Ok(r))),
                    Request::Blob(r) => (Proto::Blob, b.blob.send_request(&peer, Ok(r))),
                };
                self.pending.insert(key, reply);
            }
            Command::Respond {
                responder,
                response,
            } => {
                let ok = match (responder, response) {
                    (Responder::Job(ch), Response::Job(r)) => b.job.send_response(ch, r).is_ok(),
                    (Responder::Task(ch), Response::Task(r)) => b.task.send_response(ch, r).is_ok(),
                    (Responder::Result(ch), Response::Result(r)) => {
                        b.result.send_response(ch, r).is_ok()
                    }
                    (Responder::Blob(ch), Response::Blob(r)) => b.blob.send_response(ch, r).is_ok(),
                    (responder, response) => {
                        tracing::error!(?responder, ?response, "response of the wrong protocol");
                        false
                    }
                };
                if !ok {
                    tracing::debug!("response not sent: the requester is gone");
                }
            }
            Command::Publish { topic, message } => {
                let data = encode(&message);
                if let Err(e) = b.gossipsub.publish(gossipsub::IdentTopic::new(topic), data) {
                    tracing::debug!(%topic, "gossip not published: {e}");
                }
            }
            Command::PutRecord { record } => put_record(&mut b.kad, &record),
            Command::GetRecord { key, reply } => {
                use kad::store::RecordStore;
                let key = kad::RecordKey::new(&key);
                if let Some(found) = b.kad.store_mut().get(&key).and_then(|r| check_record(&r)) {
                    let _ = reply.send(Some(found));
                } else {
                    let id = b.kad.get_record(key);
                    self.gets.insert(id, reply);
                }
            }
            Command::ListenAddrs { reply } => {
                let peer = *self.swarm.local_peer_id();
                let addrs = self
                    .swarm
                    .listeners()
                    .map(|a| a.clone().with_p2p(peer).unwrap_or_else(|a| a))
                    .collect();
                let _ = reply.send(addrs);
            }
            Command::IsConnected { peer, reply } => {
                let _ = reply.send(self.swarm.is_connected(&peer));
            }
            Command::Peers { reply } => {
                let _ = reply.send(self.disc.peers());
            }
            Command::Faults { reply } => {
                let _ = reply.send(self.faults.all());
            }
            Command::Shutdown => {}
        }
    }

    /// Discovery's clock: dials due, lookups, publication, the peer gauge.
    fn on_tick(&mut self) {
        let now = Instant::now();
        self.disc.prune(unix_now(), now);
        for (target, addrs) in self.disc.due(now) {
            self.dial_target(target, addrs, now);
        }
        if self.disc.lookup_due(now) {
            for role in self.disc.config().find.clone() {
                let key = kad::RecordKey::new(&discovery::provider_key(&role));
                let id = self.swarm.behaviour_mut().kad.get_providers(key);
                self.provider_gets.insert(id);
            }
        }
        let listen: Vec<Multiaddr> = self.swarm.listeners().cloned().collect();
        let external: Vec<Multiaddr> = self.swarm.external_addresses().cloned().collect();
        let addrs = discovery::announced_addrs(&external, &listen);
        if self.disc.publish_due(&addrs, now) {
            self.publish(addrs);
        }
        let by_role = self.disc.connected_by_role();
        for role in ["validator", "worker", "unknown"] {
            self.metrics
                .peers
                .get_or_create(&crate::metrics::RoleLabel { role: role.into() })
                .set(by_role.get(role).copied().unwrap_or(0));
        }
    }

    /// Signs and puts this node's role record and announces it as a provider of its role.
    fn publish(&mut self, addrs: Vec<Multiaddr>) {
        let Some(announce) = self.disc.config().announce.clone() else {
            return;
        };
        let now = unix_now();
        let record = SignedRecord::sign(
            RecordBody::Role {
                peer: self.swarm.local_peer_id().to_bytes(),
                role: announce.role.clone(),
                capacity: announce.capacity,
                addrs: addrs.iter().map(|a| a.to_vec()).collect(),
                account: announce.account,
                signed_at: now,
                expires: now + discovery::ROLE_RECORD_TTL,
            },
            &self.keypair,
        );
        let kad = &mut self.swarm.behaviour_mut().kad;
        put_record(kad, &record);
        let key = kad::RecordKey::new(&discovery::provider_key(&announce.role));
        if let Err(e) = kad.start_providing(key) {
            tracing::debug!("provider record not stored: {e}");
        }
        tracing::debug!(role = %announce.role, ?addrs, "role record published");
    }

    fn dial_target(&mut self, target: Target, addrs: Vec<Multiaddr>, now: Instant) {
        use libp2p::swarm::dial_opts::PeerCondition;
        let peer = match &target {
            Target::Peer(p) => Some(*p),
            Target::Addr(a) => discovery::peer_in(a),
        };
        let opts = match peer {
            Some(peer) => DialOpts::peer_id(peer)
                .addresses(addrs)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build(),
            None => DialOpts::unknown_peer_id()
                .address(addrs[0].clone())
                .build(),
        };
        let id = opts.connection_id();
        match self.swarm.dial(opts) {
            Ok(()) => {
                tracing::debug!(?target, "dialing");
                self.target_dials.insert(id, (target, now));
            }
            Err(libp2p::swarm::DialError::DialPeerConditionFalse(_)) => {
                self.disc.dial_skipped(&target, now)
            }
            Err(e) => {
                tracing::debug!(?target, "dial failed: {e}");
                self.disc.dial_done(&target, Err(()), Duration::ZERO, now)
            }
        }
    }

    /// Asks the DHT for `peer`'s role record (unless it was asked recently).
    fn look_up_role(&mut self, peer: PeerId) {
        if self.role_gets.len() >= MAX_ROLE_GETS || !self.disc.should_look_up(peer, Instant::now())
        {
            return;
        }
        let key = kad::RecordKey::new(&discovery::role_key(&peer));
        let id = self.swarm.behaviour_mut().kad.get_record(key);
        self.role_gets.insert(id, None);
    }

    fn changed(&mut self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Identify saw us at `observed`: remember who said so.
    fn on_observed(&mut self, peer: PeerId, observed: &Multiaddr) {
        let Some(ip) = observed.iter().find_map(|p| match p {
            libp2p::multiaddr::Protocol::Ip4(ip) => Some(std::net::IpAddr::V4(ip)),
            libp2p::multiaddr::Protocol::Ip6(ip) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        }) else {
            return;
        };
        if !self.observed.contains_key(&ip) && self.observed.len() >= MAX_OBSERVED {
            return;
        }
        let reporters = self.observed.entry(ip).or_default();
        if reporters.len() < 8 {
            reporters.insert(peer);
        }
    }

    /// An address candidate (identify's observation, with our listen port) becomes an
    /// external address once two peers reported its IP. A candidate on a port this node
    /// does not listen on (the source port of a connection it dialed, when the dial could
    /// not reuse the listen port) is nobody's way in: it is ignored. (Confirmed, such
    /// ports were announced, dialed in vain, evicted and replaced, each change republishing
    /// the role record: 55 nodes on one machine spent their time in that churn, issue 22.)
    fn on_candidate(&mut self, address: Multiaddr) {
        let port = |a: &Multiaddr| {
            a.iter().find_map(|p| match p {
                libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
                _ => None,
            })
        };
        let listening = port(&address)
            .is_some_and(|want| self.swarm.listeners().any(|l| port(l) == Some(want)));
        if !listening {
            tracing::trace!(%address, "external address candidate on a port not listened on");
            return;
        }
        let confirmed = address.iter().any(|p| {
            let ip = match p {
                libp2p::multiaddr::Protocol::Ip4(ip) => std::net::IpAddr::V4(ip),
                libp2p::multiaddr::Protocol::Ip6(ip) => std::net::IpAddr::V6(ip),
                _ => return false,
            };
            self.observed.get(&ip).is_some_and(|r| r.len() >= 2)
        });
        if confirmed && !self.swarm.external_addresses().any(|a| *a == address) {
            tracing::info!(%address, "external address confirmed by identify");
            self.swarm.add_external_address(address);
        }
    }

    async fn emit(&mut self, event: Event) {
        if self.events.send(event).await.is_err() {
            tracing::trace!("event dropped: nobody listens");
        }
    }

    fn finish(
        &mut self,
        proto: Proto,
        id: request_response::OutboundRequestId,
        r: Result<Response, NetError>,
    ) {
        if let Some(reply) = self.pending.remove(&(proto, id)) {
            let _ = reply.send(r);
        }
    }

    /// Counts a fault of `peer` and drops the peer when the count says so ([`faults`]):
    /// at once for a malformed message, at a sustained rate for failed requests.
    fn on_failure(
        &mut self,
        peer: PeerId,
        proto: Proto,
        error: &dyn std::fmt::Display,
        kind: faults::FaultKind,
    ) {
        self.metrics.peer_fault(kind.as_str());
        match self.faults.record(peer, kind, Instant::now()) {
            Some(reason) => {
                tracing::warn!(%peer, ?proto, reason = reason.as_str(), "dropping a peer: {error}");
                self.metrics.peer_dropped(reason.as_str());
                let _ = self.swarm.disconnect_peer_id(peer);
            }
            None => tracing::debug!(%peer, ?proto, kind = kind.as_str(), "request failed: {error}"),
        }
    }

    async fn on_rr<Req, Resp>(
        &mut self,
        proto: Proto,
        event: request_response::Event<codec::Inbound<Req>, Resp>,
        wrap_req: fn(Req) -> Request,
        wrap_resp: fn(Resp) -> Response,
        wrap_ch: fn(request_response::ResponseChannel<Resp>) -> Responder,
    ) {
        use request_response::{Event as E, InboundFailure, Message, OutboundFailure};
        match event {
            E::Message { peer, message, .. } => match message {
                Message::Request {
                    request: Err(reason),
                    ..
                } => self.on_failure(peer, proto, &reason, faults::FaultKind::Malformed),
                Message::Request {
                    request: Ok(request),
                    channel,
                    ..
                } => {
                    self.emit(Event::Inbound {
                        peer,
                        request: wrap_req(request),
                        responder: wrap_ch(channel),
                    })
                    .await
                }
                Message::Response {
                    request_id,
                    response,
                } => self.finish(proto, request_id, Ok(wrap_resp(response))),
            },
            E::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                let kind = match &error {
                    OutboundFailure::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                        faults::FaultKind::Malformed
                    }
                    _ => faults::FaultKind::Failed,
                };
                self.on_failure(peer, proto, &error, kind);
                self.finish(
                    proto,
                    request_id,
                    Err(NetError::Request {
                        peer,
                        reason: error.to_string(),
                    }),
                );
            }
            E::InboundFailure { peer, error, .. } => match &error {
                // The peer's stream broke (truncated, reset) or its bytes were bad.
                InboundFailure::Io(e) => {
                    let kind = if e.kind() == std::io::ErrorKind::InvalidData {
                        faults::FaultKind::Malformed
                    } else {
                        faults::FaultKind::Failed
                    };
                    self.on_failure(peer, proto, &error, kind);
                }
                // This node's own slowness or choice (no answer in time, none sent), or a
                // protocol it does not speak: nothing to hold against the peer.
                _ => tracing::debug!(%peer, ?proto, "inbound request failed: {error}"),
            },
            E::ResponseSent { .. } => {}
        }
    }

    async fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Job(e)) => {
                self.on_rr(Proto::Job, e, Request::Job, Response::Job, Responder::Job)
                    .await
            }
            SwarmEvent::Behaviour(BehaviourEvent::Task(e)) => {
                self.on_rr(
                    Proto::Task,
                    e,
                    Request::Task,
                    Response::Task,
                    Responder::Task,
                )
                .await
            }
            SwarmEvent::Behaviour(BehaviourEvent::Result(e)) => {
                self.on_rr(
                    Proto::Result,
                    e,
                    Request::Result,
                    Response::Result,
                    Responder::Result,
                )
                .await
            }
            SwarmEvent::Behaviour(BehaviourEvent::Blob(e)) => {
                self.on_rr(
                    Proto::Blob,
                    e,
                    Request::Blob,
                    Response::Blob,
                    Responder::Blob,
                )
                .await
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(event)) => {
                self.p2p_metrics.record(&event);
                if let identify::Event::Received { peer_id, info, .. } = event {
                    let addrs: Vec<Multiaddr> = info.listen_addrs.into_iter().take(8).collect();
                    for addr in &addrs {
                        self.swarm
                            .behaviour_mut()
                            .kad
                            .add_address(&peer_id, addr.clone());
                    }
                    self.on_observed(peer_id, &info.observed_addr);
                    let said = discovery::said_role(&info.agent_version);
                    let seen = self.disc.identified(peer_id, said, addrs, Instant::now());
                    if seen.changed {
                        self.changed();
                    }
                    if seen.look_up {
                        self.look_up_role(peer_id);
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(event)) => {
                self.p2p_metrics.record(&event);
                self.on_kad(event)
            }
            SwarmEvent::NewExternalAddrCandidate { address } => self.on_candidate(address),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event)) => {
                self.p2p_metrics.record(&event);
                self.on_gossip(event).await
            }
            other => self.on_connection_event(other).await,
        }
    }

    async fn on_gossip(&mut self, event: gossipsub::Event) {
        let gossipsub::Event::Message {
            propagation_source,
            message,
            ..
        } = event
        else {
            return;
        };
        match codec::decode::<Gossip>(&message.data, limits::GOSSIP) {
            Ok(message) => {
                self.emit(Event::Gossip {
                    from: propagation_source,
                    message,
                })
                .await
            }
            Err(e) => tracing::debug!(%propagation_source, "undecodable gossip: {e}"),
        }
    }

    async fn on_connection_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        self.p2p_metrics.record(&event);
        let now = Instant::now();
        match event {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                num_established,
                endpoint,
                ..
            } => {
                if let Some(reply) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Ok(peer_id));
                }
                if let Some((target, started)) = self.target_dials.remove(&connection_id) {
                    self.disc
                        .dial_done(&target, Ok(peer_id), now - started, now);
                    if matches!(target, Target::Addr(_)) {
                        // Through a bootstrap peer: fill the routing table.
                        let _ = self.swarm.behaviour_mut().kad.bootstrap();
                    }
                }
                if endpoint.is_dialer() {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer_id, endpoint.get_remote_address().clone());
                }
                if num_established.get() == 1 {
                    self.disc.connected(peer_id);
                    // One of the first peers: the role record can now be replicated.
                    if self.disc.connected_count() <= 3 {
                        self.disc.publish_soon(now);
                    }
                    self.changed();
                    self.emit(Event::Connected(peer_id)).await;
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                cause,
                ..
            } => {
                tracing::debug!(%peer_id, ?cause, "disconnected");
                self.disc.disconnected(peer_id, now);
                self.changed();
                self.emit(Event::Disconnected(peer_id)).await
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } => {
                if let Some(reply) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Err(NetError::Dial(error.to_string())));
                }
                if let Some((target, started)) = self.target_dials.remove(&connection_id) {
                    tracing::debug!(?target, "dial failed: {error}");
                    self.disc.dial_done(&target, Err(()), now - started, now);
                }
            }
            _ => {}
        }
    }

    fn on_kad(&mut self, event: kad::Event) {
        match event {
            kad::Event::InboundRequest {
                request:
                    kad::InboundRequest::PutRecord {
                        source,
                        record: Some(record),
                        ..
                    },
            } => {
                use kad::store::RecordStore;
                match check_record(&record) {
                    Some(new) => {
                        let store = self.swarm.behaviour_mut().kad.store_mut();
                        let old = store.get(&record.key).and_then(|r| check_record(&r));
                        if discovery::replaces(old.as_ref(), &new) {
                            let _ = store.put(expiring(record, &new));
                        } else {
                            tracing::debug!(%source, "refused a record older than the one held");
                        }
                    }
                    None => tracing::debug!(%source, "refused an invalid record"),
                }
            }
            kad::Event::InboundRequest {
                request:
                    kad::InboundRequest::AddProvider {
                        record: Some(record),
                    },
            } => {
                // Only the announcements of our roles (kad checked the provider is the
                // sender).
                use kad::store::RecordStore;
                let ours = ["validator", "worker"]
                    .iter()
                    .any(|r| record.key.as_ref() == discovery::provider_key(r).as_slice());
                if ours {
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .kad
                        .store_mut()
                        .add_provider(record);
                }
            }
            kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetProviders(result),
                ..
            } if self.provider_gets.contains(&id) => match result {
                Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) => {
                    for peer in providers {
                        self.look_up_role(peer);
                    }
                }
                Ok(kad::GetProvidersOk::FinishedWithNoAdditionalRecord { .. }) | Err(_) => {
                    self.provider_gets.remove(&id);
                }
            },
            kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetRecord(result),
                step,
                ..
            } if self.role_gets.contains_key(&id) => {
                if let Ok(kad::GetRecordOk::FoundRecord(found)) = result {
                    if let Some(new) = check_record(&found.record) {
                        let best = self.role_gets.get_mut(&id).expect("checked");
                        if discovery::replaces(best.as_ref(), &new) {
                            *best = Some(new);
                        }
                    }
                }
                if step.last {
                    if let Some(Some(record)) = self.role_gets.remove(&id) {
                        if self.disc.on_record(&record, Instant::now()) {
                            self.changed();
                        }
                    }
                }
            }
            kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetRecord(result),
                ..
            } => {
                let found = match result {
                    Ok(kad::GetRecordOk::FoundRecord(peer_record)) => {
                        check_record(&peer_record.record)
                    }
                    _ => None,
                };
                if let Some(reply) = self.gets.remove(&id) {
                    let _ = reply.send(found);
                }
            }
            _ => {}
        }
    }
}

/// A Kademlia record holding `record`, expiring when it does.
fn to_kad(record: &SignedRecord) -> kad::Record {
    let kad_record = kad::Record::new(kad::RecordKey::new(&record.body.key()), encode(record));
    expiring(kad_record, record)
}

/// `kad_record` set to expire when `record` does (at most a day from now).
fn expiring(mut kad_record: kad::Record, record: &SignedRecord) -> kad::Record {
    let expires = match &record.body {
        RecordBody::Role { expires, .. } | RecordBody::Job { expires, .. } => *expires,
    };
    let left = expires.saturating_sub(unix_now()).min(24 * 3600);
    kad_record.expires = Some(Instant::now() + Duration::from_secs(left));
    kad_record
}

/// Stores `record` locally and at the peers closest to its key (best effort).
fn put_record(kad: &mut kad::Behaviour<kad::store::MemoryStore>, record: &SignedRecord) {
    if let Err(e) = kad.put_record(to_kad(record), kad::Quorum::One) {
        tracing::debug!("record not stored: {e}");
    }
}
