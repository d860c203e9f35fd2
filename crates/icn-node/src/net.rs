//! Replication over QUIC (iroh): the endpoint, tickets, the membership check
//! at the handshake, and one task per connection that drives an
//! [`icn_sync::Session`] over a framed bidirectional stream.
//!
//! - The endpoint's key is the member's device key, so a peer's connection
//!   identity is a key the co-op's log authorises; a connection from any
//!   other key is closed right after the handshake (`after_handshake`).
//! - Two protocols (ALPN): `icn/sync/1` for members, and `icn/join/1`,
//!   which only hands a co-op's genesis to whoever names its id (what a
//!   new node needs to start).
//! - No relay, DNS or other discovery service is used: peers are reached at
//!   the addresses their tickets give. Nothing public is contacted.
//! - Every frame is length-prefixed and at most [`icn_sync::FRAME_MAX`];
//!   a peer that sends a bad frame, an event whose signature fails, or more
//!   than its rate allows is dropped, logged and counted.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use icn_identity::Did;
use icn_kernel::{CoopId, Event, EventId, Verdict};
use icn_sync::{Message, Output, Session, SessionConfig};
use iroh::{
    Endpoint, EndpointAddr, RelayMode, SecretKey, TransportAddr,
    endpoint::{AfterHandshakeOutcome, Connection, EndpointHooks, RecvStream, SendStream, presets},
};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

use crate::{http::SharedState, node::now};

pub const SYNC_ALPN: &[u8] = icn_sync::ALPN;
pub const JOIN_ALPN: &[u8] = b"icn/join/1";

/// How often every session is polled (rounds due, stalled rounds).
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How often remembered and configured peers are dialled if not connected.
const DIAL_INTERVAL: Duration = Duration::from_secs(5);
/// Connections at most; more are refused.
const CONNECTIONS_MAX: usize = 64;
/// Frames read ahead of the session, per connection.
const READ_AHEAD: usize = 8;
/// Frames queued for sending, per connection; pushes beyond it are dropped.
const WRITE_QUEUE: usize = 64;
/// Per peer: bytes a second, and how much may come at once.
const PEER_BYTES_PER_SECOND: f64 = 16.0 * 1024.0 * 1024.0;
const PEER_BYTES_BURST: f64 = 32.0 * 1024.0 * 1024.0;
/// Ids remembered per connection as received from that peer (not pushed back).
const RECENT_MAX: usize = 8_192;
/// Waiting for a join answer or a connection, at most.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Close codes, so the other side's log says why.
const CLOSE_DONE: u32 = 0;
const CLOSE_NOT_MEMBER: u32 = 403;
const CLOSE_PROTOCOL: u32 = 400;
const CLOSE_BAD_EVENT: u32 = 401;
const CLOSE_RATE: u32 = 429;

/// A peer's address and the co-op, as one pasteable string: `icn1…`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub coop: CoopId,
    pub endpoint: [u8; 32],
    pub addrs: Vec<SocketAddr>,
}

const TICKET_PREFIX: &str = "icn1";

impl Ticket {
    pub fn encode(&self) -> String {
        let bytes = postcard::to_stdvec(self).expect("tickets serialise");
        format!("{TICKET_PREFIX}{}", bs58::encode(bytes).into_string())
    }

    pub fn parse(text: &str) -> Result<Ticket, String> {
        let body = text
            .trim()
            .strip_prefix(TICKET_PREFIX)
            .ok_or("a ticket starts with icn1 (ask a member to run `icnctl net ticket`)")?;
        let bytes = bs58::decode(body)
            .into_vec()
            .map_err(|_| "the ticket is damaged (not base58); copy it again")?;
        let ticket: Ticket =
            postcard::from_bytes(&bytes).map_err(|_| "the ticket is damaged; copy it again")?;
        if ticket.addrs.is_empty() || ticket.addrs.len() > 16 {
            return Err("the ticket names no usable address".into());
        }
        Ok(ticket)
    }

    fn endpoint_addr(&self) -> Result<EndpointAddr, String> {
        let id = iroh::PublicKey::from_bytes(&self.endpoint)
            .map_err(|_| "the ticket's node key is not valid".to_owned())?;
        Ok(EndpointAddr::from_parts(
            id,
            self.addrs.iter().copied().map(TransportAddr::Ip),
        ))
    }
}

/// Counters for `icnctl peers` and metrics.
#[derive(Default)]
pub struct Metrics {
    pub connections_accepted: AtomicU64,
    pub connections_refused: AtomicU64,
    pub events_sent: AtomicU64,
    pub events_received: AtomicU64,
    pub events_accepted: AtomicU64,
    pub sync_rounds: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    /// Frames that were not messages, or broke a limit.
    pub frames_malformed: AtomicU64,
    /// Events whose signature failed, from peers that were then dropped.
    pub events_forged: AtomicU64,
    pub frames_rate_limited: AtomicU64,
    pub pushes_dropped: AtomicU64,
    /// Time from an event's timestamp to its arrival here, for the last one.
    pub replication_lag_ms: AtomicU64,
}

impl Metrics {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> icn_api::NetMetrics {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        icn_api::NetMetrics {
            connections_accepted: get(&self.connections_accepted),
            connections_refused: get(&self.connections_refused),
            events_sent: get(&self.events_sent),
            events_received: get(&self.events_received),
            events_accepted: get(&self.events_accepted),
            sync_rounds: get(&self.sync_rounds),
            bytes_sent: get(&self.bytes_sent),
            bytes_received: get(&self.bytes_received),
            frames_malformed: get(&self.frames_malformed),
            events_forged: get(&self.events_forged),
            frames_rate_limited: get(&self.frames_rate_limited),
            pushes_dropped: get(&self.pushes_dropped),
            replication_lag_ms: get(&self.replication_lag_ms),
        }
    }
}

/// One live connection, as `icnctl peers` shows it.
struct Peer {
    did: Did,
    endpoint: [u8; 32],
    dialled: bool,
    since: Instant,
    connection: Connection,
    events_sent: Arc<AtomicU64>,
    events_received: Arc<AtomicU64>,
}

/// The running network: shared by the accept loop, the dialler, the
/// session tasks and the admin API.
pub struct Net {
    endpoint: Endpoint,
    state: SharedState,
    peers: Mutex<HashMap<usize, Peer>>,
    pub metrics: Metrics,
    bootstrap: Vec<String>,
}

/// Refuses, right after the handshake, connections on the sync protocol
/// from keys that are not a member's.
#[derive(Debug)]
struct MembersOnly {
    state: std::sync::Weak<crate::http::AppState>,
}

impl EndpointHooks for MembersOnly {
    async fn after_handshake<'a>(&'a self, connection: &'a Connection) -> AfterHandshakeOutcome {
        if connection.alpn() == JOIN_ALPN {
            return AfterHandshakeOutcome::accept();
        }
        let key = *connection.remote_id().as_bytes();
        let member = self
            .state
            .upgrade()
            .and_then(|state| lock(&state).member_with_key(&key));
        match member {
            Some(_) => AfterHandshakeOutcome::accept(),
            None => {
                tracing::info!(
                    peer = %short_key(&key),
                    "Refused a connection: its key is not a member's of this co-op."
                );
                AfterHandshakeOutcome::Reject {
                    error_code: CLOSE_NOT_MEMBER.into(),
                    reason: b"not a member of this co-op".to_vec(),
                }
            }
        }
    }
}

fn lock(state: &crate::http::AppState) -> std::sync::MutexGuard<'_, crate::node::Node> {
    state
        .node
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn short_key(key: &[u8; 32]) -> String {
    key[..6].iter().map(|byte| format!("{byte:02x}")).collect()
}

/// An endpoint that uses no relay and no discovery: nothing public is
/// contacted; peers are reached at the addresses tickets give.
async fn bind_endpoint(
    seed: &[u8; 32],
    listen: SocketAddr,
    hooks: Option<MembersOnly>,
) -> anyhow::Result<Endpoint> {
    let mut builder = Endpoint::builder(presets::Minimal)
        .secret_key(SecretKey::from_bytes(seed))
        .alpns(vec![SYNC_ALPN.to_vec(), JOIN_ALPN.to_vec()])
        .relay_mode(RelayMode::Disabled)
        .bind_addr(listen)
        .map_err(|error| anyhow::anyhow!("cannot use {listen}: {error}"))?;
    if let Some(hooks) = hooks {
        builder = builder.hooks(hooks);
    }
    builder.bind().await.map_err(|error| {
        anyhow::anyhow!(
            "cannot listen for peers on {listen}: {error} (is another icnd using it? pick another with --listen)"
        )
    })
}

impl Net {
    /// Binds the endpoint and starts accepting and dialling. Needs the
    /// node's identity unlocked (its key is the network identity).
    pub async fn start(
        state: SharedState,
        listen: SocketAddr,
        bootstrap: Vec<String>,
    ) -> anyhow::Result<Arc<Net>> {
        let seed = lock(&state)
            .network_seed()
            .ok_or_else(|| anyhow::anyhow!("the keystore is locked"))?;
        let hooks = MembersOnly {
            state: Arc::downgrade(&state),
        };
        let endpoint = bind_endpoint(&seed, listen, Some(hooks)).await?;
        for ticket in &bootstrap {
            Ticket::parse(ticket)
                .map_err(|error| anyhow::anyhow!("bootstrap peer {ticket:?}: {error}"))?;
        }
        let net = Arc::new(Net {
            endpoint,
            state,
            peers: Mutex::new(HashMap::new()),
            metrics: Metrics::default(),
            bootstrap,
        });
        tokio::spawn(accept_loop(net.clone()));
        tokio::spawn(dial_loop(net.clone()));
        tracing::info!(addresses = ?net.endpoint.bound_sockets(), "Listening for peers.");
        Ok(net)
    }

    pub async fn close(&self) {
        self.endpoint.close().await;
    }

    /// This node's ticket, for other members' `coop join` or bootstrap list.
    pub fn ticket(&self) -> Option<Ticket> {
        let coop = lock(&self.state).log()?.coop();
        let mut addrs: Vec<SocketAddr> = self.endpoint.addr().ip_addrs().copied().collect();
        if addrs.is_empty() {
            addrs = self.endpoint.bound_sockets();
        }
        addrs.retain(|addr| !addr.ip().is_unspecified());
        addrs.truncate(16);
        Some(Ticket {
            coop,
            endpoint: *self.endpoint.id().as_bytes(),
            addrs,
        })
    }

    pub fn peers(&self) -> icn_api::Peers {
        let peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        let mut list: Vec<icn_api::PeerInfo> = peers
            .values()
            .map(|peer| {
                let paths = peer.connection.paths();
                let selected = paths.iter().find(|path| path.is_selected());
                let (path, address, rtt_ms) = match &selected {
                    Some(path) => (
                        if path.is_relay() { "relayed" } else { "direct" },
                        Some(match path.remote_addr() {
                            TransportAddr::Ip(addr) => addr.to_string(),
                            other => format!("{other:?}"),
                        }),
                        Some(path.rtt().as_secs_f64() * 1000.0),
                    ),
                    None => ("connecting", None, None),
                };
                icn_api::PeerInfo {
                    did: peer.did.to_string(),
                    endpoint: short_key(&peer.endpoint),
                    direction: if peer.dialled { "out" } else { "in" }.to_owned(),
                    path: path.to_owned(),
                    address,
                    rtt_ms,
                    connected_seconds: peer.since.elapsed().as_secs(),
                    events_sent: peer.events_sent.load(Ordering::Relaxed),
                    events_received: peer.events_received.load(Ordering::Relaxed),
                }
            })
            .collect();
        list.sort_by(|a, b| a.did.cmp(&b.did));
        icn_api::Peers {
            peers: list,
            metrics: self.metrics.snapshot(),
            ticket: self.ticket().map(|ticket| ticket.encode()),
        }
    }

    fn connected_to(&self, endpoint: &[u8; 32]) -> bool {
        let peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        peers.values().any(|peer| &peer.endpoint == endpoint)
    }
}

async fn accept_loop(net: Arc<Net>) {
    while let Some(incoming) = net.endpoint.accept().await {
        let net = net.clone();
        tokio::spawn(async move {
            let connection = match incoming.await {
                Ok(connection) => connection,
                Err(error) => {
                    Metrics::add(&net.metrics.connections_refused, 1);
                    tracing::debug!(%error, "An incoming connection failed.");
                    return;
                }
            };
            if connection.alpn() == JOIN_ALPN {
                if let Err(error) = serve_join(&net, &connection).await {
                    tracing::info!(%error, "A join request failed.");
                }
                return;
            }
            Metrics::add(&net.metrics.connections_accepted, 1);
            run_connection(net, connection, false).await;
        });
    }
}

async fn dial_loop(net: Arc<Net>) {
    let mut interval = tokio::time::interval(DIAL_INTERVAL);
    loop {
        interval.tick().await;
        if net.endpoint.is_closed() {
            return;
        }
        let remembered = lock(&net.state).remembered_peers().unwrap_or_default();
        let Some(coop) = lock(&net.state).log().map(|log| log.coop()) else {
            continue;
        };
        let tickets: HashSet<String> = net.bootstrap.iter().chain(&remembered).cloned().collect();
        for text in tickets {
            let Ok(ticket) = Ticket::parse(&text) else {
                continue;
            };
            if ticket.coop != coop
                || &ticket.endpoint == net.endpoint.id().as_bytes()
                || net.connected_to(&ticket.endpoint)
            {
                continue;
            }
            let Ok(addr) = ticket.endpoint_addr() else {
                continue;
            };
            let net = net.clone();
            tokio::spawn(async move {
                let connecting = net.endpoint.connect(addr, SYNC_ALPN);
                match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
                    Ok(Ok(connection)) => run_connection(net, connection, true).await,
                    Ok(Err(error)) => {
                        tracing::debug!(peer = %short_key(&ticket.endpoint), %error, "Could not reach a peer; will retry.")
                    }
                    Err(_) => {
                        tracing::debug!(peer = %short_key(&ticket.endpoint), "A peer did not answer; will retry.")
                    }
                }
            });
        }
    }
}

/// Registers the connection, runs its session, and forgets it when done.
async fn run_connection(net: Arc<Net>, connection: Connection, dialled: bool) {
    let endpoint = *connection.remote_id().as_bytes();
    let Some(did) = lock(&net.state).member_with_key(&endpoint) else {
        connection.close(CLOSE_NOT_MEMBER.into(), b"not a member of this co-op");
        return;
    };
    let id = connection.stable_id();
    let events_sent = Arc::new(AtomicU64::new(0));
    let events_received = Arc::new(AtomicU64::new(0));
    {
        let mut peers = net.peers.lock().unwrap_or_else(|p| p.into_inner());
        if peers.len() >= CONNECTIONS_MAX {
            drop(peers);
            Metrics::add(&net.metrics.connections_refused, 1);
            connection.close(CLOSE_RATE.into(), b"too many connections");
            return;
        }
        peers.insert(
            id,
            Peer {
                did,
                endpoint,
                dialled,
                since: Instant::now(),
                connection: connection.clone(),
                events_sent: events_sent.clone(),
                events_received: events_received.clone(),
            },
        );
    }
    tracing::info!(peer = %did, direction = if dialled { "out" } else { "in" }, "Peer connected.");
    let counters = PeerCounters {
        sent: events_sent,
        received: events_received,
    };
    let ended = drive(&net, &connection, dialled, &counters).await;
    net.peers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&id);
    match ended {
        Ok(()) => {
            tracing::info!(peer = %did, "Peer disconnected.");
            connection.close(CLOSE_DONE.into(), b"bye");
        }
        Err(Ended { code, reason }) => {
            tracing::warn!(peer = %did, %reason, "Dropped the connection to a peer.");
            connection.close(code.into(), reason.as_bytes());
        }
    }
}

struct PeerCounters {
    sent: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
}

/// Why a session ended other than by the peer leaving.
struct Ended {
    code: u32,
    reason: String,
}

fn ended(code: u32, reason: impl Into<String>) -> Ended {
    Ended {
        code,
        reason: reason.into(),
    }
}

/// A token bucket on the bytes a peer sends.
struct RateLimit {
    tokens: f64,
    at: Instant,
}

impl RateLimit {
    fn new() -> RateLimit {
        RateLimit {
            tokens: PEER_BYTES_BURST,
            at: Instant::now(),
        }
    }

    fn allow(&mut self, bytes: usize) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * PEER_BYTES_PER_SECOND;
        self.tokens = (self.tokens + refill).min(PEER_BYTES_BURST);
        self.at = now;
        if self.tokens >= bytes as f64 {
            self.tokens -= bytes as f64;
            true
        } else {
            false
        }
    }
}

/// Runs one sync session over the connection's stream until either side
/// leaves or the peer misbehaves.
async fn drive(
    net: &Arc<Net>,
    connection: &Connection,
    dialled: bool,
    counters: &PeerCounters,
) -> Result<(), Ended> {
    let Some(coop) = lock(&net.state).log().map(|log| log.coop()) else {
        return Err(ended(CLOSE_PROTOCOL, "this node has no co-op yet"));
    };
    let (send, recv) = if dialled {
        connection.open_bi().await
    } else {
        connection.accept_bi().await
    }
    .map_err(|error| ended(CLOSE_DONE, format!("no stream: {error}")))?;
    let (frames_in, mut frames) = mpsc::channel(READ_AHEAD);
    let reader = tokio::spawn(read_frames(recv, frames_in));
    let (writer, frames_out) = mpsc::channel::<Vec<u8>>(WRITE_QUEUE);
    let writer_task = tokio::spawn(write_frames(send, frames_out));
    let mut session = Session::new(coop, SessionConfig::default());
    let mut pushes = lock(&net.state).subscribe_kept();
    let mut poll = tokio::time::interval(POLL_INTERVAL);
    let mut limit = RateLimit::new();
    let mut recent = Recent::default();
    let started = Instant::now();
    let result = loop {
        tokio::select! {
            frame = frames.recv() => {
                let frame = match frame {
                    None => break Ok(()),
                    Some(Err(error)) => {
                        Metrics::add(&net.metrics.frames_malformed, 1);
                        break Err(ended(CLOSE_PROTOCOL, error));
                    }
                    Some(Ok(frame)) => frame,
                };
                Metrics::add(&net.metrics.bytes_received, frame.len() as u64 + 4);
                if !limit.allow(frame.len()) {
                    Metrics::add(&net.metrics.frames_rate_limited, 1);
                    break Err(ended(CLOSE_RATE, "sent faster than its rate allows"));
                }
                let message = match Message::decode(&frame) {
                    Ok(message) => message,
                    Err(error) => {
                        Metrics::add(&net.metrics.frames_malformed, 1);
                        break Err(ended(CLOSE_PROTOCOL, format!("bad message: {error}")));
                    }
                };
                let now_ms = started.elapsed().as_millis() as u64;
                let outputs = with_log(&net.state, |log| session.on_message(message, log, now_ms));
                let outputs = match outputs {
                    Ok(outputs) => outputs,
                    Err(error) => break Err(ended(CLOSE_PROTOCOL, error.to_string())),
                };
                if let Err(error) = handle(net, &mut session, outputs, &writer, &mut recent, counters).await {
                    break Err(error);
                }
            }
            kept = pushes.recv() => {
                match kept {
                    Ok(event) => {
                        let mut batch = Vec::new();
                        let mut next = Some(event);
                        while let Some(event) = next.take() {
                            if !recent.contains(&event.id()) {
                                batch.push(event.bytes().to_vec());
                            }
                            if batch.len() < icn_sync::PAGE_EVENTS_MAX {
                                next = pushes.try_recv().ok();
                            }
                        }
                        if !batch.is_empty() {
                            let count = batch.len() as u64;
                            let frame = Message::Push(batch).encode();
                            let size = frame.len() as u64 + 4;
                            if writer.try_send(frame).is_ok() {
                                Metrics::add(&net.metrics.events_sent, count);
                                Metrics::add(&net.metrics.bytes_sent, size);
                                counters.sent.fetch_add(count, Ordering::Relaxed);
                            } else {
                                // The peer is slow: sync will carry these.
                                Metrics::add(&net.metrics.pushes_dropped, count);
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => session.want_round(),
                    Err(broadcast::error::RecvError::Closed) => break Ok(()),
                }
            }
            _ = poll.tick() => {
                let now_ms = started.elapsed().as_millis() as u64;
                if !session.due(now_ms) {
                    continue;
                }
                if let Some(hello) = with_log(&net.state, |log| session.poll(log, now_ms)) {
                    Metrics::add(&net.metrics.sync_rounds, 1);
                    if send_frame(net, &writer, hello.encode()).await.is_err() {
                        break Ok(());
                    }
                }
            }
        }
    };
    reader.abort();
    drop(writer);
    let _ = writer_task.await;
    result
}

/// Runs `work` on the co-op's log under the node lock, off the async
/// workers' hot path (the lock may wait for a commit's fsync).
fn with_log<T>(state: &SharedState, work: impl FnOnce(&icn_kernel::Log) -> T) -> T {
    tokio::task::block_in_place(|| {
        let node = lock(state);
        work(
            node.log()
                .expect("a session runs only once a co-op exists, which is never left"),
        )
    })
}

async fn send_frame(net: &Net, writer: &mpsc::Sender<Vec<u8>>, frame: Vec<u8>) -> Result<(), ()> {
    Metrics::add(&net.metrics.bytes_sent, frame.len() as u64 + 4);
    writer.send(frame).await.map_err(|_| ())
}

/// Carries out what the session asked for: frames to send, events to ingest.
async fn handle(
    net: &Arc<Net>,
    session: &mut Session,
    outputs: Vec<Output>,
    writer: &mpsc::Sender<Vec<u8>>,
    recent: &mut Recent,
    counters: &PeerCounters,
) -> Result<(), Ended> {
    for output in outputs {
        match output {
            Output::Send(message) => {
                if let Message::Page(page) = &message {
                    Metrics::add(&net.metrics.events_sent, page.events.len() as u64);
                    counters
                        .sent
                        .fetch_add(page.events.len() as u64, Ordering::Relaxed);
                }
                if send_frame(net, writer, message.encode()).await.is_err() {
                    return Ok(());
                }
            }
            Output::Ingest(events) => {
                let count = events.len() as u64;
                Metrics::add(&net.metrics.events_received, count);
                counters.received.fetch_add(count, Ordering::Relaxed);
                let state = net.state.clone();
                let outcome = tokio::task::spawn_blocking(move || ingest(&state, events))
                    .await
                    .map_err(|_| ended(CLOSE_PROTOCOL, "the ingest worker stopped"))?;
                let outcome = outcome.map_err(|error| match error {
                    IngestError::Forged => {
                        Metrics::add(&net.metrics.events_forged, 1);
                        ended(CLOSE_BAD_EVENT, "sent an event that is not validly signed")
                    }
                    IngestError::Node(error) => {
                        ended(CLOSE_DONE, format!("could not store events: {error}"))
                    }
                })?;
                Metrics::add(&net.metrics.events_accepted, outcome.accepted);
                if let Some(lag) = outcome.lag_ms {
                    net.metrics.replication_lag_ms.store(lag, Ordering::Relaxed);
                }
                for id in outcome.ids {
                    recent.insert(id);
                }
                if outcome.waiting {
                    session.want_round();
                }
            }
        }
    }
    Ok(())
}

#[derive(Default)]
struct Recent {
    set: HashSet<EventId>,
    order: VecDeque<EventId>,
}

impl Recent {
    fn insert(&mut self, id: EventId) {
        if self.set.insert(id) {
            self.order.push_back(id);
            if self.order.len() > RECENT_MAX
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
        }
    }

    fn contains(&self, id: &EventId) -> bool {
        self.set.contains(id)
    }
}

struct Ingested {
    accepted: u64,
    waiting: bool,
    ids: Vec<EventId>,
    lag_ms: Option<u64>,
}

enum IngestError {
    Forged,
    Node(crate::node::NodeError),
}

/// Decodes, skips what is already kept (no signature check needed),
/// verifies the rest, and commits them in one transaction.
fn ingest(state: &SharedState, events: Vec<Vec<u8>>) -> Result<Ingested, IngestError> {
    let mut decoded = Vec::with_capacity(events.len());
    for bytes in &events {
        decoded.push(Event::decode(bytes).map_err(|_| IngestError::Forged)?);
    }
    let ids: Vec<EventId> = decoded.iter().map(Event::id).collect();
    let fresh: Vec<Event> = {
        let node = lock(state);
        let log = node.log();
        decoded
            .into_iter()
            .filter(|event| log.is_none_or(|log| log.get(&event.id()).is_none()))
            .collect()
    };
    let mut verified = Vec::with_capacity(fresh.len());
    for result in Event::verify_all(fresh, 2) {
        verified.push(result.map_err(|_| IngestError::Forged)?);
    }
    let now = now();
    let lag_ms = verified.last().map(|event| {
        now.as_millis()
            .saturating_sub(event.event().timestamp().as_millis())
    });
    let verdicts = lock(state)
        .ingest(verified, now)
        .map_err(IngestError::Node)?;
    Ok(Ingested {
        accepted: verdicts
            .iter()
            .filter(|verdict| verdict.holds_place())
            .count() as u64,
        waiting: verdicts
            .iter()
            .any(|verdict| matches!(verdict, Verdict::Pending(_) | Verdict::Dropped)),
        ids,
        lag_ms,
    })
}

/// Reads length-prefixed frames until the stream ends or breaks a limit.
async fn read_frames(mut recv: RecvStream, frames: mpsc::Sender<Result<Vec<u8>, String>>) {
    loop {
        let mut header = [0u8; 4];
        match recv.read_exact(&mut header).await {
            Ok(()) => {}
            Err(_) => return,
        }
        let length = u32::from_be_bytes(header) as usize;
        if length > icn_sync::FRAME_MAX {
            let _ = frames
                .send(Err(format!(
                    "a frame of {length} bytes is over the {} limit",
                    icn_sync::FRAME_MAX
                )))
                .await;
            return;
        }
        let mut frame = vec![0u8; length];
        if recv.read_exact(&mut frame).await.is_err() {
            // Cut off mid-frame: the peer left; nothing partial is used.
            return;
        }
        if frames.send(Ok(frame)).await.is_err() {
            return;
        }
    }
}

async fn write_frames(mut send: SendStream, mut frames: mpsc::Receiver<Vec<u8>>) {
    while let Some(frame) = frames.recv().await {
        let header = (frame.len() as u32).to_be_bytes();
        if send.write_all(&header).await.is_err() || send.write_all(&frame).await.is_err() {
            return;
        }
    }
    let _ = send.finish();
}

#[derive(Serialize, Deserialize)]
struct JoinRequest {
    coop: CoopId,
}

/// Answers `icn/join/1`: the genesis of the co-op named, if it is ours.
async fn serve_join(net: &Net, connection: &Connection) -> anyhow::Result<()> {
    let (mut send, mut recv) = connection.accept_bi().await?;
    let request = recv.read_to_end(1024).await?;
    let request: JoinRequest = postcard::from_bytes(&request)?;
    let genesis = {
        let node = lock(&net.state);
        node.log()
            .filter(|log| log.coop() == request.coop)
            .map(|log| log.genesis().bytes().to_vec())
    };
    match genesis {
        Some(genesis) => send.write_all(&genesis).await?,
        None => {
            connection.close(CLOSE_NOT_MEMBER.into(), b"not this co-op");
            return Ok(());
        }
    }
    send.finish()?;
    connection.closed().await;
    Ok(())
}

/// Fetches the genesis of the co-op a ticket names from the node it names.
pub async fn fetch_genesis(ticket: &Ticket, seed: &[u8; 32]) -> anyhow::Result<Event> {
    let endpoint = bind_endpoint(seed, SocketAddr::from(([0, 0, 0, 0], 0)), None).await?;
    let result = async {
        let addr = ticket.endpoint_addr().map_err(anyhow::Error::msg)?;
        let connection = tokio::time::timeout(CONNECT_TIMEOUT, endpoint.connect(addr, JOIN_ALPN))
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "the member's node did not answer (is its icnd running and reachable at {:?}?)",
                    ticket.addrs
                )
            })??;
        let (mut send, mut recv) = connection.open_bi().await?;
        send.write_all(&postcard::to_stdvec(&JoinRequest { coop: ticket.coop })?)
            .await?;
        send.finish()?;
        let bytes = tokio::time::timeout(
            CONNECT_TIMEOUT,
            recv.read_to_end(icn_kernel::EVENT_SIZE_MAX_BYTES),
        )
        .await
        .map_err(|_| anyhow::anyhow!("the member's node did not send the co-op"))??;
        connection.close(CLOSE_DONE.into(), b"thanks");
        let genesis = Event::decode(&bytes)?;
        if CoopId::from(genesis.id()) != ticket.coop {
            anyhow::bail!("the node sent another co-op than the ticket names");
        }
        Ok(genesis)
    }
    .await;
    endpoint.close().await;
    result
}
