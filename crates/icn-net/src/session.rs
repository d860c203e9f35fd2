//! One connection's sync session: framed messages in and out, the
//! session state machine, pushes of new events, ingest of what arrives,
//! and the per-peer limits.

use std::{
    collections::{HashSet, VecDeque},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use icn_identity::Did;
use icn_kernel::{Event, EventId, Verdict};
use icn_sync::{Message, Output, Session, SessionConfig};
use iroh::endpoint::{Connection, RecvStream, SendStream};
use tokio::sync::{broadcast, mpsc};

use super::{
    CLOSE_BAD_EVENT, CLOSE_DONE, CLOSE_PROTOCOL, CLOSE_RATE, Metrics, Net, lock, off_worker,
};
use icn_runtime::node::now;

use crate::SharedState;

/// How often every session is polled (rounds due, stalled rounds).
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Frames read ahead of the session, per connection.
const READ_AHEAD: usize = 8;
/// Frames queued for sending, per connection; pushes beyond it are dropped.
const WRITE_QUEUE: usize = 64;
/// How much a peer may send, by how much this node's member trusts theirs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RateClass {
    /// Any member: 16 MiB/s, 32 MiB at once.
    Member,
    /// Trusted by this node's member (a module's judgement, such as the
    /// co-op's trust graph): 64 MiB/s, 128 MiB at once.
    Trusted,
}
const MIB: f64 = 1024.0 * 1024.0;

impl RateClass {
    pub(super) fn new(trusted: bool) -> RateClass {
        if trusted {
            RateClass::Trusted
        } else {
            RateClass::Member
        }
    }

    pub(super) fn as_str(&self) -> &'static str {
        match self {
            RateClass::Member => "member",
            RateClass::Trusted => "trusted",
        }
    }

    /// (bytes a second, bytes at once).
    fn limits(&self) -> (f64, f64) {
        match self {
            RateClass::Member => (16.0 * MIB, 32.0 * MIB),
            RateClass::Trusted => (64.0 * MIB, 128.0 * MIB),
        }
    }
}
/// Ids remembered per connection as received from that peer (not pushed back).
const RECENT_MAX: usize = 8_192;

pub(super) struct PeerCounters {
    pub(super) sent: Arc<AtomicU64>,
    pub(super) received: Arc<AtomicU64>,
}

/// Why a session ended other than by the peer leaving.
pub(super) struct Ended {
    pub(super) code: u32,
    pub(super) reason: String,
}

pub(super) fn ended(code: u32, reason: impl Into<String>) -> Ended {
    Ended {
        code,
        reason: reason.into(),
    }
}

/// A token bucket on the bytes a peer sends.
struct RateLimit {
    tokens: f64,
    at: Instant,
    per_second: f64,
    burst: f64,
}

impl RateLimit {
    fn new(class: RateClass) -> RateLimit {
        let (per_second, burst) = class.limits();
        RateLimit {
            tokens: burst,
            at: Instant::now(),
            per_second,
            burst,
        }
    }

    fn allow(&mut self, bytes: usize) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + refill).min(self.burst);
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
pub(super) async fn drive(
    net: &Arc<Net>,
    connection: &Connection,
    peer: &Did,
    dialled: bool,
    counters: &PeerCounters,
    class: RateClass,
) -> Result<(), Ended> {
    let Some(coop) = off_worker(&net.state, |node| node.log().map(|log| log.coop())).await else {
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
    let mut pushes = off_worker(&net.state, |node| node.subscribe_kept()).await;
    let mut closing = net.closing.subscribe();
    let mut poll = tokio::time::interval(POLL_INTERVAL);
    let mut limit = RateLimit::new(class);
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
                let completed = session.stats.rounds_completed;
                let outputs;
                (session, outputs) = with_log(&net.state, session, move |session, log| {
                    session.on_message(message, log, now_ms)
                })
                .await;
                let outputs = match outputs {
                    Ok(outputs) => outputs,
                    Err(error) => break Err(ended(CLOSE_PROTOCOL, error.to_string())),
                };
                if let Err(error) = handle(net, &mut session, outputs, &writer, &mut recent, counters).await {
                    break Err(error);
                }
                // A round ended and its events are in: a restored node has
                // caught up with this peer.
                if session.stats.rounds_completed > completed {
                    let peer = *peer;
                    off_worker(&net.state, move |node| node.caught_up(&peer)).await;
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
            _ = closing.changed() => {
                // What is still to push goes out before the stream ends.
                let mut batch = Vec::new();
                while let Ok(event) = pushes.try_recv() {
                    if !recent.contains(&event.id()) {
                        batch.push(event.bytes().to_vec());
                    }
                }
                for chunk in batch.chunks(icn_sync::PAGE_EVENTS_MAX) {
                    let count = chunk.len() as u64;
                    if send_frame(net, &writer, Message::Push(chunk.to_vec()).encode()).await.is_err() {
                        break;
                    }
                    Metrics::add(&net.metrics.events_sent, count);
                    counters.sent.fetch_add(count, Ordering::Relaxed);
                }
                break Ok(());
            }
            _ = poll.tick() => {
                let now_ms = started.elapsed().as_millis() as u64;
                if !session.due(now_ms) {
                    continue;
                }
                let hello;
                (session, hello) =
                    with_log(&net.state, session, move |session, log| session.poll(log, now_ms))
                        .await;
                if let Some(hello) = hello {
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

/// Runs `work` with the session on the co-op's log, on a blocking thread
/// (the node's lock may wait for a commit's fsync; no async worker waits
/// with it), and hands the session back.
async fn with_log<T: Send + 'static>(
    state: &SharedState,
    mut session: Session,
    work: impl FnOnce(&mut Session, &icn_kernel::Log) -> T + Send + 'static,
) -> (Session, T) {
    off_worker(state, move |node| {
        let log = node
            .log()
            .expect("a session runs only once a co-op exists, which is never left");
        let value = work(&mut session, log);
        (session, value)
    })
    .await
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
    Node(icn_runtime::NodeError),
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
    // The peer acknowledges what was written before the connection closes
    // (which would discard it); a peer that does not within the grace is
    // left behind.
    if send.finish().is_ok() {
        let _ = tokio::time::timeout(super::CLOSE_GRACE, send.stopped()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer this node's member trusts may send four times as much at once.
    #[test]
    fn trusted_peers_get_a_larger_budget() {
        let burst = 100 * 1024 * 1024;
        assert!(!RateLimit::new(RateClass::Member).allow(burst));
        assert!(RateLimit::new(RateClass::Trusted).allow(burst));
        let mut member = RateLimit::new(RateClass::Member);
        assert!(member.allow(30 * 1024 * 1024));
        assert!(!member.allow(30 * 1024 * 1024), "the burst is spent");
    }
}
