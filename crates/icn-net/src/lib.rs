//! Replication over QUIC (iroh): the endpoint, tickets, the co-op's relay,
//! the membership check at the handshake, and one task per connection that
//! drives an [`icn_sync::Session`] over a framed bidirectional stream.
//!
//! - The endpoint's key is the member's device key, so a peer's connection
//!   identity is a key the co-op's log authorises; a connection from any
//!   other key is closed right after the handshake (`after_handshake`).
//! - One protocol of its own (ALPN `icn/sync/1`, members only), and every
//!   protocol the node's modules register ([`icn_runtime::Protocol`]: one
//!   request, one answer, such as the co-op's `icn/join/1`, open to
//!   anyone). This crate reads the request within the module's limit,
//!   checks who may call, and sends the answer; [`ask`] is the caller's
//!   side.
//! - Peers are reached at the addresses their tickets give, through the
//!   co-op's own relays ([`relay`]), which tickets name with their key, and
//!   on the local network by mDNS (`net.mdns`). No DNS or other discovery
//!   service is used; nothing public is contacted.
//! - Every frame is length-prefixed and at most [`icn_sync::FRAME_MAX`];
//!   a peer that sends a bad frame, an event whose signature fails, or more
//!   than its rate allows is dropped, logged and counted ([`session`]).

mod book;
mod relay;
mod session;
mod ticket;

use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use icn_identity::Did;

use iroh::{
    Endpoint, EndpointAddr, RelayMap, RelayMode, SecretKey, TransportAddr,
    endpoint::{AfterHandshakeOutcome, Connection, EndpointHooks, presets},
};
use iroh_mdns_address_lookup::{DiscoveryEvent, MdnsAddressLookup};

pub use relay::RelayRef;
use relay::{PinnedRelays, Relay};
use session::{Ended, PeerCounters, drive};
pub use ticket::Ticket;

use icn_runtime::{Caller, Node, OpenTo, Protocol};

/// The node replication reads and writes, shared with the rest of the
/// daemon (the gateway, the duties).
pub type SharedState = Arc<Mutex<Node>>;

pub const SYNC_ALPN: &[u8] = icn_sync::ALPN;
/// The mDNS service members' nodes announce themselves under.
const MDNS_SERVICE: &str = "icn";

/// How often remembered and configured peers are dialled if not connected.
const DIAL_INTERVAL: Duration = Duration::from_secs(5);
/// A peer that keeps failing is dialled at least this often.
const DIAL_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A connection resends its address book at least this often.
const BOOK_RESEND: Duration = Duration::from_secs(60);
/// Store meta: the address book, base58 of its encoding.
const META_BOOK: &str = "net.book";
/// Close code for the second connection of a pair (one is kept).
const CLOSE_DUPLICATE: u32 = 7;

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}
/// Connections at most; more are refused.
const CONNECTIONS_MAX: usize = 64;
/// This node dials no more once it has this many connections, leaving
/// room for peers that dial it.
const DIALLED_MAX: usize = 32;
/// Waiting for a join answer or a connection, at most.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Close codes, so the other side's log says why.
const CLOSE_DONE: u32 = 0;
const CLOSE_NOT_MEMBER: u32 = 403;
const CLOSE_PROTOCOL: u32 = 400;
const CLOSE_BAD_EVENT: u32 = 401;
const CLOSE_RATE: u32 = 429;

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
    /// Rounds of the dial loop (every 5 s, while the node has a co-op).
    pub dial_rounds: AtomicU64,
    pub requests_failed: AtomicU64,
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
            dial_rounds: get(&self.dial_rounds),
            requests_failed: get(&self.requests_failed),
        }
    }
}

/// One live connection, as `icnctl peers` shows it.
struct Peer {
    did: Did,
    class: session::RateClass,
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
    /// Keys being dialled now, so a slow dial is not started twice.
    dialling: Mutex<HashSet<[u8; 32]>>,
    pub metrics: Metrics,
    bootstrap: Vec<String>,
    /// Relays known from tickets and our own, by URL; their keys are pinned.
    relays: Mutex<HashMap<String, RelayRef>>,
    pinned: PinnedRelays,
    /// The co-op relay this node runs (`--relay-enable`).
    relay: Mutex<Option<Relay>>,
    /// Members connected now, shared with the node's status.
    connected: Arc<std::sync::atomic::AtomicUsize>,
    /// Where members' nodes can be reached ([`book`]), and a counter that
    /// moves whenever it changes (connections then resend it).
    book: Mutex<book::Book>,
    book_changed: tokio::sync::watch::Sender<u64>,
    /// The modules' protocols, served beside sync.
    protocols: Vec<Arc<Protocol>>,
    /// This node's device key, to sign its own address book entry.
    identity: icn_identity::KeyPair,
    /// Per peer key: the waits still to come after failed dials, and when
    /// to try again.
    backoff: Mutex<HashMap<[u8; 32], (backon::ExponentialBackoff, Instant)>>,
    /// What it was started with (to start again after a key rotation).
    options: NetOptions,
    /// Set by [`Net::close`]: sessions send what they still have to push
    /// (a key rotation above all), finish their streams and end.
    closing: tokio::sync::watch::Sender<bool>,
}

/// How long [`Net::close`] waits for sessions to deliver what they hold.
const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// What `icnd` asks of the network.
#[derive(Clone, Debug)]
pub struct NetOptions {
    /// The UDP address for QUIC.
    pub listen: SocketAddr,
    /// Tickets of peers to keep connected to.
    pub bootstrap: Vec<String>,
    /// Run the co-op relay here.
    pub relay: Option<RelayOptions>,
    /// Announce this node and find members on the local network (mDNS).
    pub mdns: bool,
}

impl NetOptions {
    /// No relay of our own: listen at `listen`, keep connected to `bootstrap`.
    pub fn direct(listen: SocketAddr, bootstrap: Vec<String>) -> NetOptions {
        NetOptions {
            listen,
            bootstrap,
            relay: None,
            mdns: false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct RelayOptions {
    /// TCP (HTTPS) and UDP (address discovery) on this one port.
    pub listen: SocketAddr,
    /// How members reach it; unset, made from this node's address.
    pub url: Option<String>,
}

/// Refuses, right after the handshake, connections on the sync protocol
/// from keys that are not a member's.
#[derive(Debug)]
struct MembersOnly {
    state: std::sync::Weak<Mutex<Node>>,
    /// Modules' protocols open to anyone (by ALPN).
    open: HashSet<Vec<u8>>,
}

impl EndpointHooks for MembersOnly {
    async fn after_handshake<'a>(&'a self, connection: &'a Connection) -> AfterHandshakeOutcome {
        if self.open.contains(connection.alpn()) {
            return AfterHandshakeOutcome::accept();
        }
        let key = *connection.remote_id().as_bytes();
        let member = match self.state.upgrade() {
            Some(state) => off_worker(&state, move |node| member_with_key(node, &key)).await,
            None => None,
        };
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

fn lock(state: &Mutex<Node>) -> std::sync::MutexGuard<'_, Node> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `work` on the node from a blocking thread: the node's lock may wait
/// behind a commit's fsync, and no async worker may wait with it.
async fn off_worker<T: Send + 'static>(
    state: &SharedState,
    work: impl FnOnce(&mut Node) -> T + Send + 'static,
) -> T {
    let state = state.clone();
    match tokio::task::spawn_blocking(move || work(&mut lock(&state))).await {
        Ok(value) => value,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

fn short_key(key: &[u8; 32]) -> String {
    key[..6].iter().map(|byte| format!("{byte:02x}")).collect()
}

/// An endpoint that uses only the co-op's relays (from tickets, with their
/// keys pinned), or none, and no discovery service: nothing public is
/// contacted.
async fn bind_endpoint(
    seed: &[u8; 32],
    listen: SocketAddr,
    alpns: Vec<Vec<u8>>,
    hooks: Option<MembersOnly>,
    relays: Option<(&[RelayRef], &PinnedRelays)>,
) -> anyhow::Result<Endpoint> {
    // A dead peer (a laptop that moved or slept) is noticed in seconds:
    // paths are probed every 2 s and dropped after 6 s of silence, the
    // connection after 12 s, so either side redials.
    let transport = iroh::endpoint::QuicTransportConfig::builder()
        .default_path_keep_alive_interval(Duration::from_secs(2))
        .default_path_max_idle_timeout(Duration::from_secs(6))
        .max_idle_timeout(Some(
            Duration::from_secs(12)
                .try_into()
                .expect("12 s is a valid idle timeout"),
        ))
        .build();
    let mut builder = Endpoint::builder(presets::Minimal)
        .secret_key(SecretKey::from_bytes(seed))
        .alpns(alpns)
        .transport_config(transport);
    // A specific address means only it: no wildcard socket beside it.
    if !listen.ip().is_unspecified() {
        builder = builder.clear_ip_transports();
    }
    let mut builder = builder
        .bind_addr(listen)
        .map_err(|error| anyhow::anyhow!("cannot use {listen}: {error}"))?;
    builder = match relays {
        Some((relays, pinned)) => {
            let map = RelayMap::empty();
            for relay in relays {
                let (url, config) = relay.client_config().map_err(anyhow::Error::msg)?;
                pinned.pin(relay.key);
                map.insert(url, config);
            }
            builder
                .relay_mode(RelayMode::Custom(map))
                .ca_tls_config(pinned.ca_tls_config())
        }
        None => builder.relay_mode(RelayMode::Disabled),
    };
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
    /// Binds the endpoint, starts the relay if asked, and starts accepting
    /// and dialling. Needs the node's identity unlocked (its key is the
    /// network identity).
    pub async fn start(state: SharedState, options: NetOptions) -> anyhow::Result<Arc<Net>> {
        let (seed, remembered, connected, stored_book, protocols) = off_worker(&state, |node| {
            (
                node.network_seed(),
                node.remembered_peers().unwrap_or_default(),
                node.connected_members().clone(),
                node.store().meta(META_BOOK).ok().flatten(),
                node.modules().protocols(),
            )
        })
        .await;
        let mut alpns = vec![SYNC_ALPN.to_vec()];
        for protocol in &protocols {
            if alpns.iter().any(|alpn| alpn == protocol.alpn) {
                anyhow::bail!(
                    "two protocols use the ALPN {:?}",
                    String::from_utf8_lossy(protocol.alpn)
                );
            }
            alpns.push(protocol.alpn.to_vec());
        }
        let seed = seed.ok_or_else(|| anyhow::anyhow!("the keystore is locked"))?;
        let mut tickets = Vec::new();
        for text in &options.bootstrap {
            let ticket = Ticket::parse(text)
                .map_err(|error| anyhow::anyhow!("bootstrap peer {text:?}: {error}"))?;
            tickets.push(ticket);
        }
        tickets.extend(
            remembered
                .iter()
                .filter_map(|text| Ticket::parse(text).ok()),
        );
        let relays: Vec<RelayRef> = tickets.iter().flat_map(|t| t.relays().cloned()).collect();
        let hooks = MembersOnly {
            state: Arc::downgrade(&state),
            open: protocols
                .iter()
                .filter(|protocol| protocol.open_to == OpenTo::Anyone)
                .map(|protocol| protocol.alpn.to_vec())
                .collect(),
        };
        let pinned = PinnedRelays::default();
        let endpoint = bind_endpoint(
            &seed,
            options.listen,
            alpns,
            Some(hooks),
            Some((&relays, &pinned)),
        )
        .await?;
        let relay = match &options.relay {
            Some(relay) => {
                let fallback_host = endpoint
                    .addr()
                    .ip_addrs()
                    .map(|addr| addr.ip())
                    .find(|ip| ip.is_ipv4() && !ip.is_loopback() && !ip.is_unspecified())
                    .or(Some(std::net::Ipv4Addr::LOCALHOST.into()));
                match Relay::start(
                    &state,
                    &seed,
                    relay.listen,
                    relay.url.clone(),
                    fallback_host,
                )
                .await
                {
                    Ok(relay) => Some(relay),
                    Err(error) => {
                        tracing::error!(%error, "The co-op relay could not start; peers can still connect directly.");
                        None
                    }
                }
            }
            None => None,
        };
        let net = Arc::new(Net {
            book: Mutex::new(book::Book::default()),
            book_changed: tokio::sync::watch::channel(0).0,
            identity: icn_identity::KeyPair::from_seed(&seed),
            backoff: Mutex::new(HashMap::new()),
            options: options.clone(),
            connected,
            endpoint,
            state,
            peers: Mutex::new(HashMap::new()),
            dialling: Mutex::new(HashSet::new()),
            metrics: Metrics::default(),
            bootstrap: options.bootstrap,
            relays: Mutex::new(
                relays
                    .into_iter()
                    .map(|relay| (relay.url.clone(), relay))
                    .collect(),
            ),
            pinned,
            relay: Mutex::new(None),
            closing: tokio::sync::watch::channel(false).0,
            protocols: protocols.into_iter().map(Arc::new).collect(),
        });
        // Where members were last heard of: a restarted node redials them
        // all, not only its bootstrap peers.
        if let Some(received) = stored_book
            .and_then(|text| bs58::decode(text).into_vec().ok())
            .and_then(|bytes| book::Book::decode(&bytes).ok())
        {
            net.take_entries(received).await;
        }
        if let Some(relay) = relay {
            net.learn_relay(relay.url.clone()).await;
            *net.relay.lock().unwrap_or_else(|p| p.into_inner()) = Some(relay);
        }
        if options.mdns {
            match MdnsAddressLookup::builder()
                .service_name(MDNS_SERVICE)
                .build(net.endpoint.id())
            {
                Ok(mdns) => {
                    if let Ok(lookup) = net.endpoint.address_lookup() {
                        lookup.add(mdns.clone());
                    }
                    tokio::spawn(mdns_loop(net.clone(), mdns));
                }
                Err(error) => {
                    tracing::warn!(%error, "Local network discovery (mDNS) could not start.")
                }
            }
        }
        tokio::spawn(accept_loop(net.clone()));
        tokio::spawn(dial_loop(net.clone()));
        tracing::info!(addresses = ?net.endpoint.bound_sockets(), "Listening for peers.");
        Ok(net)
    }

    pub fn options(&self) -> &NetOptions {
        &self.options
    }

    pub async fn close(&self) {
        // Sessions first: each pushes the events it has not sent yet and
        // waits (a moment) for the peer to take them, so that an event
        // signed just before (a key rotation, after which this node's old
        // key is refused) is not lost with the connection.
        self.closing.send_replace(true);
        let deadline = Instant::now() + CLOSE_GRACE;
        while self.connections() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.endpoint.close().await;
        let relay = self.relay.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(relay) = relay {
            relay.stop().await;
        }
    }

    /// Trusts a relay a ticket names and lets the endpoint use it.
    async fn learn_relay(&self, relay: RelayRef) {
        let Ok((url, config)) = relay.client_config() else {
            return;
        };
        let known = self
            .relays
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(relay.url.clone(), relay.clone());
        if known.as_ref() == Some(&relay) {
            return;
        }
        self.pinned.pin(relay.key);
        self.endpoint.insert_relay(url, config).await;
        tracing::info!(url = %relay.url, "Using a co-op relay.");
    }

    pub fn known_relays(&self) -> Vec<RelayRef> {
        let relays = self.relays.lock().unwrap_or_else(|p| p.into_inner());
        relays.values().cloned().collect()
    }

    /// This node's ticket, for other members' `coop join` or bootstrap list.
    pub fn ticket(&self) -> Option<Ticket> {
        let coop = lock(&self.state).log()?.coop();
        let addr = self.endpoint.addr();
        let mut addrs: Vec<SocketAddr> = addr.ip_addrs().copied().collect();
        if addrs.is_empty() {
            addrs = self.endpoint.bound_sockets();
        }
        addrs.retain(|addr| !addr.ip().is_unspecified());
        addrs.truncate(16);
        // Our own relay, else the one we are connected to, else any we know.
        let own = self
            .relay
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|relay| relay.url.clone());
        let known = self.known_relays();
        let home = addr.relay_urls().next().and_then(|url| {
            known
                .iter()
                .find(|relay| relay.relay_url().is_ok_and(|known| &known == url))
        });
        let relay = own.or_else(|| home.or(known.first()).cloned());
        // And the co-op's other relays, for when that one is down.
        let more_relays: Vec<RelayRef> = known
            .into_iter()
            .filter(|other| relay.as_ref() != Some(other))
            .take(ticket::TICKET_MORE_RELAYS_MAX)
            .collect();
        let mut ticket = Ticket {
            coop,
            endpoint: *self.endpoint.id().as_bytes(),
            addrs,
            relay,
            more_relays,
        };
        // A ticket this node cannot read back is no ticket: drop the other
        // relays, then addresses, until it fits.
        while ticket.encode().len() > ticket::TICKET_TEXT_LEN_MAX {
            if ticket.more_relays.pop().is_none() && ticket.addrs.pop().is_none() {
                break;
            }
        }
        Some(ticket)
    }

    /// Sessions whose selected path goes through a relay now.
    pub fn relayed_sessions(&self) -> u64 {
        let peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        peers
            .values()
            .filter(|peer| {
                peer.connection
                    .paths()
                    .iter()
                    .any(|path| path.is_selected() && path.is_relay())
            })
            .count() as u64
    }

    /// What the relay this node runs has carried, if it runs one.
    pub fn relay_stats(&self) -> Option<relay::RelayStats> {
        self.relay
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(Relay::stats)
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
                            // "via coop.example.org:7880": the relay's host,
                            // not its whole URL.
                            TransportAddr::Relay(url) => format!(
                                "via {}",
                                url.host_str()
                                    .map(|host| match url.port() {
                                        Some(port) => format!("{host}:{port}"),
                                        None => host.to_owned(),
                                    })
                                    .unwrap_or_else(|| url.to_string())
                            ),
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
                    rate_class: peer.class.as_str().to_owned(),
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

    /// Takes members' address book entries (see [`book`]); when the book
    /// changed, stores it and tells every connection to pass it on.
    async fn take_entries(&self, received: book::Received) {
        let own = *self.endpoint.id().as_bytes();
        let members: HashSet<[u8; 32]> = off_worker(&self.state, |node| node.member_device_keys())
            .await
            .into_iter()
            .collect();
        let now = unix_ms();
        let (stored, relays) = {
            let mut book = self.book.lock().unwrap_or_else(|p| p.into_inner());
            let mut changed = false;
            for entry in received
                .entries
                .into_iter()
                .filter(|entry| entry.key != own)
            {
                changed |= book.merge(entry, now, |key| members.contains(key));
            }
            for entry in received
                .relays
                .into_iter()
                .filter(|entry| entry.relay.key != own)
            {
                changed |= book.merge_relay(entry, now, |key| members.contains(key));
            }
            let relays: Vec<RelayRef> = book.relays().cloned().collect();
            (
                changed.then(|| bs58::encode(book.encode()).into_string()),
                relays,
            )
        };
        // Every relay a member's node runs: the endpoint uses whichever
        // answers when one is down.
        for relay in relays {
            self.learn_relay(relay).await;
        }
        if let Some(text) = stored {
            if let Err(error) =
                off_worker(&self.state, move |node| node.set_meta(META_BOOK, &text)).await
            {
                tracing::warn!(%error, "Could not save where members' nodes are.");
            }
            self.book_changed.send_modify(|version| *version += 1);
        }
    }

    /// The book to send a peer, with this node's own entry signed now.
    fn book_to_send(&self) -> Vec<u8> {
        let mut addrs: Vec<SocketAddr> = self.endpoint.addr().ip_addrs().copied().collect();
        if addrs.is_empty() {
            addrs = self.endpoint.bound_sockets();
        }
        addrs.retain(|addr| !addr.ip().is_unspecified());
        let own = book::Entry::sign(&self.identity, addrs, unix_ms());
        let own_relay = self
            .relay
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|relay| book::RelayEntry::sign(&self.identity, relay.url.clone(), unix_ms()));
        let book = self.book.lock().unwrap_or_else(|p| p.into_inner());
        book.encode_with(Some(&own), own_relay.as_ref())
    }

    /// Whether `key` may be dialled now (it is not backing off).
    fn dial_due(&self, key: &[u8; 32]) -> bool {
        let backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        backoff
            .get(key)
            .is_none_or(|(_, next)| *next <= Instant::now())
    }

    /// Records a dial's outcome: a failure doubles the wait before the next
    /// (4–8 s, 8–16 s, … at most [`DIAL_BACKOFF_MAX`]: each wait plus up
    /// to as much again at random, so that
    /// nodes that lost a peer together do not redial it together: backon's
    /// exponential backoff); a success clears it.
    fn dialled(&self, key: [u8; 32], reached: bool) {
        use backon::BackoffBuilder;
        let mut backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        if reached {
            backoff.remove(&key);
            return;
        }
        let (delays, next) = backoff.entry(key).or_insert_with(|| {
            let delays = backon::ExponentialBuilder::new()
                .with_min_delay(DIAL_INTERVAL * 4 / 5)
                .with_max_delay(DIAL_BACKOFF_MAX / 2)
                .with_factor(2.0)
                .with_jitter()
                .without_max_times()
                .build();
            (delays, Instant::now())
        });
        *next = Instant::now() + delays.next().unwrap_or(DIAL_BACKOFF_MAX);
    }

    /// Publishes how many members (not sessions) are connected.
    fn count_connected(&self, peers: &HashMap<usize, Peer>) {
        let members: HashSet<Did> = peers.values().map(|peer| peer.did).collect();
        self.connected
            .store(members.len(), std::sync::atomic::Ordering::Relaxed);
    }

    fn connections(&self) -> usize {
        self.peers.lock().unwrap_or_else(|p| p.into_inner()).len()
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
            let protocol = net
                .protocols
                .iter()
                .find(|protocol| protocol.alpn == connection.alpn())
                .cloned();
            if let Some(protocol) = protocol {
                if let Err(error) = serve_request(&net, &connection, protocol).await {
                    Metrics::add(&net.metrics.requests_failed, 1);
                    tracing::info!(
                        protocol = %String::from_utf8_lossy(connection.alpn()),
                        %error,
                        "A request from another node failed."
                    );
                }
                return;
            }
            Metrics::add(&net.metrics.connections_accepted, 1);
            run_connection(net, connection, false).await;
        });
    }
}

/// Every few seconds: dials the peers our tickets name, and, through the
/// co-op's relays, every member device we are not connected to (the one
/// with the smaller key dials, so a pair makes one connection).
async fn dial_loop(net: Arc<Net>) {
    let mut interval = tokio::time::interval(DIAL_INTERVAL);
    loop {
        interval.tick().await;
        if net.endpoint.is_closed() {
            return;
        }
        let read = off_worker(&net.state, |node| {
            let coop = node.log().map(|log| log.coop())?;
            let remembered = node.remembered_peers().unwrap_or_default();
            Some((coop, remembered, node.member_device_keys()))
        });
        let Some((coop, remembered, members)) = read.await else {
            continue;
        };
        let own = *net.endpoint.id().as_bytes();
        let texts: HashSet<&String> = net.bootstrap.iter().chain(&remembered).collect();
        let mut targets: Vec<([u8; 32], EndpointAddr)> = Vec::new();
        for text in texts {
            let Ok(ticket) = Ticket::parse(text) else {
                continue;
            };
            if ticket.coop != coop {
                continue;
            }
            for relay in ticket.relays() {
                net.learn_relay(relay.clone()).await;
            }
            if let Ok(addr) = ticket.endpoint_addr(true) {
                targets.push((ticket.endpoint, addr));
            }
        }
        let relays: Vec<TransportAddr> = net
            .known_relays()
            .iter()
            .filter_map(|relay| relay.relay_url().ok())
            .map(TransportAddr::Relay)
            .collect();
        // Every member whose node the address book knows, whichever key is
        // smaller: if one side cannot reach the other, the other dials (a
        // pair that ends up with two connections keeps one).
        let known: Vec<([u8; 32], Vec<SocketAddr>)> = {
            let book = net.book.lock().unwrap_or_else(|p| p.into_inner());
            members
                .iter()
                .filter(|key| **key != own)
                .map(|key| (*key, book.addrs(key).to_vec()))
                .filter(|(_, addrs)| !addrs.is_empty())
                .collect()
        };
        for (key, addrs) in known {
            if let Ok(id) = iroh::PublicKey::from_bytes(&key) {
                let transports = addrs
                    .into_iter()
                    .map(TransportAddr::Ip)
                    .chain(relays.iter().cloned());
                targets.push((key, EndpointAddr::from_parts(id, transports)));
            }
        }
        if !relays.is_empty() {
            for key in members.into_iter().filter(|key| key > &own) {
                if let Ok(id) = iroh::PublicKey::from_bytes(&key) {
                    targets.push((key, EndpointAddr::from_parts(id, relays.iter().cloned())));
                }
            }
        }
        for (key, addr) in targets {
            dial(&net, key, addr);
        }
        Metrics::add(&net.metrics.dial_rounds, 1);
    }
}

/// Dials `key` at `addr` unless connected, already dialling, or full.
fn dial(net: &Arc<Net>, key: [u8; 32], addr: EndpointAddr) {
    if &key == net.endpoint.id().as_bytes()
        || net.connected_to(&key)
        || net.connections() >= DIALLED_MAX
        || !net.dial_due(&key)
    {
        return;
    }
    if !net
        .dialling
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key)
    {
        return;
    }
    let net = net.clone();
    tokio::spawn(async move {
        let connecting = net.endpoint.connect(addr, SYNC_ALPN);
        let outcome = tokio::time::timeout(CONNECT_TIMEOUT, connecting).await;
        net.dialling
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        match outcome {
            Ok(Ok(connection)) => {
                net.dialled(key, true);
                run_connection(net, connection, true).await
            }
            Ok(Err(error)) => {
                net.dialled(key, false);
                tracing::debug!(peer = %short_key(&key), %error, "Could not reach a peer; will retry.")
            }
            Err(_) => {
                net.dialled(key, false);
                tracing::debug!(peer = %short_key(&key), "A peer did not answer; will retry.")
            }
        }
    });
}

/// Dials members that mDNS finds on the local network (the smaller key
/// dials, as through the relay).
async fn mdns_loop(net: Arc<Net>, mdns: MdnsAddressLookup) {
    use futures_util::StreamExt as _;
    let mut events = mdns.subscribe().await;
    while let Some(event) = events.next().await {
        let DiscoveryEvent::Discovered { endpoint_info, .. } = event else {
            continue;
        };
        let key = *endpoint_info.endpoint_id.as_bytes();
        let own = *net.endpoint.id().as_bytes();
        let member = off_worker(&net.state, move |node| {
            member_with_key(node, &key).is_some()
        })
        .await;
        if member && key > own {
            tracing::debug!(peer = %short_key(&key), "Found a member on the local network.");
            dial(&net, key, endpoint_info.into());
        }
    }
}

/// Registers the connection, runs its session, and forgets it when done.
async fn run_connection(net: Arc<Net>, connection: Connection, dialled: bool) {
    let endpoint = *connection.remote_id().as_bytes();
    // The rate class is set when the connection starts: a change of trust
    // applies from the next.
    let known = off_worker(&net.state, move |node| {
        member_with_key(node, &endpoint).map(|did| (did, node.modules().trusts_peer(node, &did)))
    });
    let Some((did, trusted)) = known.await else {
        connection.close(CLOSE_NOT_MEMBER.into(), b"not a member of this co-op");
        return;
    };
    let class = session::RateClass::new(trusted);
    let id = connection.stable_id();
    let events_sent = Arc::new(AtomicU64::new(0));
    let events_received = Arc::new(AtomicU64::new(0));
    {
        let mut peers = net.peers.lock().unwrap_or_else(|p| p.into_inner());
        // One connection per pair: when both dialled, both sides keep the one
        // the smaller key dialled (else the newer), and close the other.
        let own = *net.endpoint.id().as_bytes();
        if let Some((&old_id, old)) = peers.iter().find(|(_, peer)| peer.endpoint == endpoint) {
            let dialer = |dialled: bool| if dialled { own } else { endpoint };
            let preferred = own.min(endpoint);
            let keep_new = dialer(dialled) == preferred || dialer(old.dialled) != preferred;
            if keep_new {
                tracing::debug!(peer = %did, "A second connection to a peer: closing the first.");
                old.connection
                    .close(CLOSE_DUPLICATE.into(), b"duplicate connection");
                peers.remove(&old_id);
            } else {
                drop(peers);
                tracing::debug!(peer = %did, "A second connection to a peer: keeping the first.");
                connection.close(CLOSE_DUPLICATE.into(), b"duplicate connection");
                return;
            }
        }
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
                class,
                endpoint,
                dialled,
                since: Instant::now(),
                connection: connection.clone(),
                events_sent: events_sent.clone(),
                events_received: events_received.clone(),
            },
        );
        net.count_connected(&peers);
    }
    tracing::info!(peer = %did, direction = if dialled { "out" } else { "in" }, "Peer connected.");
    let books = tokio::spawn(exchange_books(net.clone(), connection.clone()));
    let counters = PeerCounters {
        sent: events_sent,
        received: events_received,
    };
    let ended = drive(&net, &connection, &did, dialled, &counters, class).await;
    books.abort();
    {
        let mut peers = net.peers.lock().unwrap_or_else(|p| p.into_inner());
        peers.remove(&id);
        net.count_connected(&peers);
    }
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

/// Sends this node's address book to a peer when the connection starts and
/// whenever the book changes (at least every [`BOOK_RESEND`]), each time on
/// a new one-way stream, and takes the books the peer sends (one a second
/// at most; a peer that sends a bad one is ignored, not dropped: the book
/// is a hint, sync is what matters).
async fn exchange_books(net: Arc<Net>, connection: Connection) {
    let send = {
        let (net, connection) = (net.clone(), connection.clone());
        async move {
            let mut changed = net.book_changed.subscribe();
            loop {
                let bytes = net.book_to_send();
                let Ok(mut stream) = connection.open_uni().await else {
                    return;
                };
                if stream.write_all(&bytes).await.is_err() || stream.finish().is_err() {
                    return;
                }
                tokio::select! {
                    changed = changed.changed() => if changed.is_err() { return },
                    () = tokio::time::sleep(BOOK_RESEND) => {}
                }
            }
        }
    };
    let receive = async move {
        loop {
            let Ok(mut stream) = connection.accept_uni().await else {
                return;
            };
            match stream.read_to_end(book::BYTES_MAX).await {
                Ok(bytes) => match book::Book::decode(&bytes) {
                    Ok(received) => net.take_entries(received).await,
                    Err(error) => tracing::debug!(%error, "A peer sent a bad address book."),
                },
                Err(error) => {
                    tracing::debug!(%error, "A peer's address book did not arrive whole.")
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    tokio::join!(send, receive);
}

/// Serves one request on a module's protocol: reads it within the
/// module's limit, answers from a blocking thread with the node, and
/// waits for the caller to close. A refusal closes the connection with its
/// reason, which the caller reads as the error.
async fn serve_request(
    net: &Net,
    connection: &Connection,
    protocol: Arc<Protocol>,
) -> anyhow::Result<()> {
    let (mut send, mut recv) =
        tokio::time::timeout(CONNECT_TIMEOUT, connection.accept_bi()).await??;
    let request = tokio::time::timeout(CONNECT_TIMEOUT, recv.read_to_end(protocol.request_max))
        .await
        .map_err(|_| anyhow::anyhow!("the caller did not send its request in time"))??;
    let key = *connection.remote_id().as_bytes();
    let answer = off_worker(&net.state, move |node| {
        let caller = Caller {
            key,
            member: member_with_key(node, &key),
        };
        (protocol.serve)(node, &caller, &request)
    })
    .await;
    match answer {
        Ok(answer) => {
            send.write_all(&answer).await?;
            send.finish()?;
            // The caller closes once it has read the answer.
            let _ = tokio::time::timeout(CONNECT_TIMEOUT, connection.closed()).await;
            Ok(())
        }
        Err(reason) => {
            connection.close(CLOSE_NOT_MEMBER.into(), reason.as_bytes());
            anyhow::bail!("refused: {reason}")
        }
    }
}

/// Sends one request on a module's protocol to the node a ticket names,
/// from a short-lived endpoint of its own (no co-op relay: the caller may
/// not be a member yet, so the node must be reachable at an address its
/// ticket gives), and returns the answer, at most `answer_max` bytes.
pub async fn ask(
    ticket: &Ticket,
    seed: &[u8; 32],
    alpn: &[u8],
    request: &[u8],
    answer_max: usize,
) -> anyhow::Result<Vec<u8>> {
    let endpoint = bind_endpoint(
        seed,
        SocketAddr::from(([0, 0, 0, 0], 0)),
        vec![alpn.to_vec()],
        None,
        None,
    )
    .await?;
    let result = async {
        let addr = ticket.endpoint_addr(false).map_err(anyhow::Error::msg)?;
        let connection = tokio::time::timeout(CONNECT_TIMEOUT, endpoint.connect(addr, alpn))
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "the member's node did not answer (is its icnd running and reachable at {:?}?)",
                    ticket.addrs
                )
            })??;
        let (mut send, mut recv) = connection.open_bi().await?;
        send.write_all(request).await?;
        send.finish()?;
        let answer = tokio::time::timeout(CONNECT_TIMEOUT, recv.read_to_end(answer_max))
            .await
            .map_err(|_| anyhow::anyhow!("the member's node did not answer in time"))?;
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => match connection.close_reason() {
                Some(iroh::endpoint::ConnectionError::ApplicationClosed(closed)) => {
                    anyhow::bail!(
                        "the member's node refused: {}",
                        String::from_utf8_lossy(&closed.reason)
                    )
                }
                _ => return Err(error.into()),
            },
        };
        connection.close(CLOSE_DONE.into(), b"thanks");
        Ok(answer)
    }
    .await;
    endpoint.close().await;
    result
}

/// The member whose current keys include `key`, if any: only members'
/// nodes may replicate the co-op's log.
pub fn member_with_key(node: &Node, key: &[u8; 32]) -> Option<Did> {
    let log = node.log()?;
    let public = icn_identity::PublicKey::from_bytes(key).ok()?;
    let members = node.replicating_members();
    members
        .iter()
        .find(|member| log.key_state(member).authorises(&public))
        // A device a guardian approved to recover a member syncs to
        // complete the recovery.
        .or_else(|| {
            members
                .iter()
                .find(|member| log.recovery_approved(member, &public))
        })
        .copied()
        .or_else(|| ticket_peer(node, key))
}

/// A peer this node was told to trust by a ticket (`icnctl coop join`,
/// `id recover`) while it does not yet know the member behind it: a node
/// that has only the genesis knows no one but the founders. It counts as
/// the member whose inception key it is until the log says otherwise.
fn ticket_peer(node: &Node, key: &[u8; 32]) -> Option<Did> {
    let me = node.identity()?.did;
    let log = node.log()?;
    if log.coop_state().member(&me, None).is_some() && !node.recovering() && !node.awaiting_sync() {
        return None;
    }
    let remembered = node.remembered_peers().ok()?;
    remembered
        .iter()
        .filter_map(|text| Ticket::parse(text).ok())
        .any(|ticket| ticket.coop == log.coop() && ticket.endpoint == *key)
        .then(|| icn_identity::PublicKey::from_bytes(key).ok())
        .flatten()
        .map(Did::from_inception_key)
}
