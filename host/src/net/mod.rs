//! The network layer: one event loop owns the libp2p `Swarm`; a cloneable [`Client`] sends
//! it commands over a bounded channel (each with a oneshot reply); what peers ask of this
//! node comes out as [`Event`]s on another bounded channel, for the role to handle.
//!
//! The swarm: TCP + Noise + Yamux, identify, Kademlia (signed, expiring role and job
//! records, checked before they are stored), gossipsub (job announcements, receipts) and
//! four request-response protocols ([`proto::protocols`]) with a length-prefixed postcard
//! codec and a size limit per direction. A peer whose message does not decode is
//! disconnected; the node carries on.

pub mod codec;
pub mod proto;

use codec::PostcardCodec;
use futures::StreamExt;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{
    gossipsub, identify, kad, noise, request_response, tcp, yamux, Multiaddr, PeerId,
    StreamProtocol, Swarm,
};
use proto::*;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

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
    Shutdown,
}

/// Sends commands to the event loop. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    tx: mpsc::Sender<Command>,
    peer_id: PeerId,
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

/// Starts the swarm listening on `listen` and spawns its event loop on the current tokio
/// runtime. Returns the client, the event stream and the actual listen addresses.
pub async fn start(
    keypair: libp2p::identity::Keypair,
    listen: Option<Multiaddr>,
) -> Result<(Client, mpsc::Receiver<Event>, Vec<Multiaddr>), NetError> {
    let peer_id = keypair.public().to_peer_id();
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| NetError::Setup(e.to_string()))?
        .with_behaviour(|key| {
            let peer_id = key.public().to_peer_id();
            let mut kad_config = kad::Config::new(StreamProtocol::new(protocols::KAD));
            kad_config.set_record_filtering(kad::StoreInserts::FilterBoth);
            kad_config.set_max_packet_size(limits::GOSSIP * 2);
            let mut kad = kad::Behaviour::with_config(
                peer_id,
                kad::store::MemoryStore::new(peer_id),
                kad_config,
            );
            kad.set_mode(Some(kad::Mode::Server));
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
                identify: identify::Behaviour::new(identify::Config::new(
                    protocols::IDENTIFY.to_string(),
                    key.public(),
                )),
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
        })
        .map_err(|e| NetError::Setup(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();

    for topic in [
        protocols::TOPIC_JOBS,
        protocols::TOPIC_RECEIPTS,
        protocols::TOPIC_FRAUD,
        protocols::TOPIC_EPOCHS,
    ] {
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&gossipsub::IdentTopic::new(topic))
            .map_err(|e| NetError::Setup(e.to_string()))?;
    }

    let mut addrs = Vec::new();
    if let Some(listen) = listen {
        swarm
            .listen_on(listen.clone())
            .map_err(|e| NetError::Setup(format!("listening on {listen}: {e}")))?;
        // Wait for the OS to give the port.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while addrs.is_empty() {
            let event = tokio::time::timeout_at(deadline, swarm.select_next_some())
                .await
                .map_err(|_| NetError::Setup(format!("no listen address for {listen}")))?;
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
    }

    let (tx, commands) = mpsc::channel(CHANNEL);
    let (events, events_rx) = mpsc::channel(CHANNEL);
    let event_loop = EventLoop {
        swarm,
        commands,
        events,
        pending: HashMap::new(),
        dials: HashMap::new(),
        gets: HashMap::new(),
    };
    tokio::spawn(event_loop.run());
    Ok((Client { tx, peer_id }, events_rx, addrs))
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
}

fn check_record(record: &kad::Record) -> Option<SignedRecord> {
    if record.value.len() > limits::GOSSIP {
        return None;
    }
    let signed: SignedRecord = codec::decode(&record.value, limits::GOSSIP).ok()?;
    if signed.body.key() != record.key.to_vec() {
        return None;
    }
    signed.verify(unix_now()).ok()?;
    Some(signed)
}

impl EventLoop {
    async fn run(mut self) {
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event).await,
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(command) => self.on_command(command),
                },
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
            Command::PutRecord { record } => {
                let mut kad_record =
                    kad::Record::new(kad::RecordKey::new(&record.body.key()), encode(&record));
                kad_record.expires = Some(std::time::Instant::now() + Duration::from_secs(300));
                if let Err(e) = b.kad.put_record(kad_record, kad::Quorum::One) {
                    tracing::debug!("record not stored: {e}");
                }
            }
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
            Command::Shutdown => {}
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

    /// A peer whose message did not decode (or was too large) is disconnected.
    fn on_failure(
        &mut self,
        peer: PeerId,
        proto: Proto,
        error: &dyn std::fmt::Display,
        garbage: bool,
    ) {
        if garbage {
            tracing::warn!(%peer, ?proto, "dropping a peer that sent an invalid message: {error}");
            let _ = self.swarm.disconnect_peer_id(peer);
        } else {
            tracing::debug!(%peer, ?proto, "request failed: {error}");
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
                } => self.on_failure(peer, proto, &reason, true),
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
                let garbage = matches!(&error, OutboundFailure::Io(e) if e.kind() == std::io::ErrorKind::InvalidData);
                self.on_failure(peer, proto, &error, garbage);
                self.finish(
                    proto,
                    request_id,
                    Err(NetError::Request {
                        peer,
                        reason: error.to_string(),
                    }),
                );
            }
            E::InboundFailure { peer, error, .. } => {
                let garbage = matches!(&error, InboundFailure::Io(e) if e.kind() == std::io::ErrorKind::InvalidData);
                self.on_failure(peer, proto, &error, garbage);
            }
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
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                for addr in info.listen_addrs.into_iter().take(8) {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(event)) => self.on_kad(event),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message,
                ..
            })) => match codec::decode::<Gossip>(&message.data, limits::GOSSIP) {
                Ok(message) => {
                    self.emit(Event::Gossip {
                        from: propagation_source,
                        message,
                    })
                    .await
                }
                Err(e) => tracing::debug!(%propagation_source, "undecodable gossip: {e}"),
            },
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
                if endpoint.is_dialer() {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer_id, endpoint.get_remote_address().clone());
                }
                if num_established.get() == 1 {
                    self.emit(Event::Connected(peer_id)).await;
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => self.emit(Event::Disconnected(peer_id)).await,
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } => {
                if let Some(reply) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Err(NetError::Dial(error.to_string())));
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
                if check_record(&record).is_some() {
                    let _ = self.swarm.behaviour_mut().kad.store_mut().put(record);
                } else {
                    tracing::debug!(%source, "refused an invalid record");
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
