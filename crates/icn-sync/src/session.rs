//! One side of a sync session with one peer.

use std::collections::{HashMap, HashSet};

use icn_identity::Did;
use icn_kernel::{CoopId, Event, EventId, Log};

use crate::message::{
    HEADS_MAX, Head, Hello, Message, PAGE_BYTES_MAX, PAGE_EVENTS_MAX, Page, UNCOUNTED_MAX,
};

#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// A round with no page for this long is abandoned and started again.
    pub round_timeout_ms: u64,
    /// A new round this long after the last one ended, even with no news:
    /// what push missed arrives this way.
    pub resync_interval_ms: u64,
    /// Rounds started at once, one after another, when a round's events
    /// could not all be placed (they waited for others): at most this many
    /// before waiting for the interval.
    pub eager_rounds_max: u32,
}

impl Default for SessionConfig {
    fn default() -> SessionConfig {
        SessionConfig {
            round_timeout_ms: 30_000,
            resync_interval_ms: 30_000,
            eager_rounds_max: 3,
        }
    }
}

/// What the transport must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Send(Message),
    /// Events in wire form to decode, verify and offer to the log. If some
    /// cannot be placed yet, call [`Session::want_round`].
    Ingest(Vec<Vec<u8>>),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("the peer replicates another co-op")]
    WrongCoop,
}

/// Counters for metrics and `icnctl peers`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    pub rounds_started: u64,
    pub rounds_completed: u64,
    pub rounds_timed_out: u64,
    pub pages_served: u64,
    pub events_served: u64,
    pub events_received: u64,
    /// Pages or requests for a round or page that is not the current one
    /// (duplicated, late or reordered messages).
    pub stale_messages: u64,
}

impl SessionStats {
    fn served(&mut self, page: &Page) {
        self.pages_served += 1;
        self.events_served += page.events.len() as u64;
    }
}

pub struct Session {
    coop: CoopId,
    config: SessionConfig,
    pull: Pull,
    serve: Option<Serve>,
    pub stats: SessionStats,
}

/// This side's rounds: pulling what the peer has.
struct Pull {
    round: u32,
    state: PullState,
    /// Some events of the last round could not be placed: go again soon.
    again: bool,
    eager_rounds: u32,
}

enum PullState {
    /// No round open; the last one ended (or the session began) at `since`.
    Idle { since: u64 },
    /// Waiting for page `next_page`; the last progress was at `since`.
    Waiting { next_page: u32, since: u64 },
}

/// The peer's round, which this side serves.
struct Serve {
    round: u32,
    page: u32,
    generation: u64,
    /// Position in the log's kept order of the next event to consider.
    cursor: usize,
    peer: PeerView,
    /// The hello showed the peer lacks nothing this side holds.
    nothing_to_send: bool,
}

/// What a hello says the peer holds.
struct PeerView {
    heads: HashMap<Did, u64>,
    /// Authors whose head, at its seq, differs from this side's chain: a fork.
    diverged: HashSet<Did>,
    /// Kept events that do not count, which the peer already keeps.
    uncounted: HashSet<EventId>,
}

impl Session {
    /// A session that opens its first round at once (see [`Session::poll`]).
    pub fn new(coop: CoopId, config: SessionConfig) -> Session {
        Session {
            coop,
            config,
            pull: Pull {
                round: 0,
                state: PullState::Idle { since: 0 },
                again: true,
                eager_rounds: 0,
            },
            serve: None,
            stats: SessionStats::default(),
        }
    }

    /// Whether a round is due: at the start, after a round that left
    /// events waiting, when the last round stalled, and every resync
    /// interval. Needs no log, so a transport can ask before locking one.
    pub fn due(&self, now_ms: u64) -> bool {
        match self.pull.state {
            PullState::Waiting { since, .. } => {
                now_ms.saturating_sub(since) >= self.config.round_timeout_ms
            }
            PullState::Idle { since } => {
                (self.pull.again && self.pull.eager_rounds < self.config.eager_rounds_max)
                    || now_ms.saturating_sub(since) >= self.config.resync_interval_ms
            }
        }
    }

    /// A hello to send, if a round is [due](Session::due).
    pub fn poll(&mut self, log: &Log, now_ms: u64) -> Option<Message> {
        if !self.due(now_ms) {
            return None;
        }
        if matches!(self.pull.state, PullState::Waiting { .. }) {
            self.stats.rounds_timed_out += 1;
        }
        if self.pull.again {
            self.pull.eager_rounds += 1;
        }
        self.pull.again = false;
        self.pull.round = self.pull.round.wrapping_add(1);
        self.pull.state = PullState::Waiting {
            next_page: 0,
            since: now_ms,
        };
        self.stats.rounds_started += 1;
        Some(Message::Hello(hello(log, self.coop, self.pull.round)))
    }

    /// Asks for another round soon: some events received could not be
    /// placed yet (they wait for events this node lacks).
    pub fn want_round(&mut self) {
        self.pull.again = true;
    }

    /// Handles one message from the peer.
    pub fn on_message(
        &mut self,
        message: Message,
        log: &Log,
        now_ms: u64,
    ) -> Result<Vec<Output>, ProtocolError> {
        let mut out = Vec::new();
        match message {
            Message::Hello(hello) => {
                if hello.coop != self.coop {
                    return Err(ProtocolError::WrongCoop);
                }
                let serve = self.serve.insert(Serve::new(hello, log));
                let page = serve.next_page(log);
                self.stats.served(&page);
                out.push(Output::Send(Message::Page(page)));
            }
            Message::More { round, page } => match &mut self.serve {
                Some(serve) if serve.round == round && serve.page.wrapping_add(1) == page => {
                    serve.page = page;
                    let page = serve.next_page(log);
                    self.stats.served(&page);
                    out.push(Output::Send(Message::Page(page)));
                }
                _ => self.stats.stale_messages += 1,
            },
            Message::Page(page) => {
                let PullState::Waiting { next_page, .. } = self.pull.state else {
                    self.stats.stale_messages += 1;
                    return Ok(out);
                };
                if page.round != self.pull.round || page.page != next_page {
                    self.stats.stale_messages += 1;
                    return Ok(out);
                }
                self.stats.events_received += page.events.len() as u64;
                if !page.events.is_empty() {
                    out.push(Output::Ingest(page.events));
                }
                if page.done {
                    self.stats.rounds_completed += 1;
                    if !self.pull.again {
                        self.pull.eager_rounds = 0;
                    }
                    self.pull.state = PullState::Idle { since: now_ms };
                } else {
                    let next_page = next_page.wrapping_add(1);
                    self.pull.state = PullState::Waiting {
                        next_page,
                        since: now_ms,
                    };
                    out.push(Output::Send(Message::More {
                        round: self.pull.round,
                        page: next_page,
                    }));
                }
            }
            Message::Push(events) => {
                self.stats.events_received += events.len() as u64;
                if !events.is_empty() {
                    out.push(Output::Ingest(events));
                }
            }
        }
        Ok(out)
    }
}

/// What this side holds: per-author heads and the forks it keeps.
fn hello(log: &Log, coop: CoopId, round: u32) -> Hello {
    let heads = log
        .heads()
        .into_iter()
        .take(HEADS_MAX)
        .map(|(author, (seq, id))| Head { author, seq, id })
        .collect();
    let uncounted = log
        .uncounted()
        .iter()
        .take(UNCOUNTED_MAX)
        .copied()
        .collect();
    Hello {
        coop,
        round,
        heads,
        uncounted,
    }
}

impl Serve {
    fn new(hello: Hello, log: &Log) -> Serve {
        let mut diverged = HashSet::new();
        let mut heads = HashMap::with_capacity(hello.heads.len());
        for head in &hello.heads {
            // Their head is not in our chain at its seq, or we keep it as
            // a loser: they hold a branch of a fork we must send them ours of.
            let ours = log.chain_id(&head.author, head.seq);
            if ours.is_some_and(|ours| ours != head.id) || log.uncounted().contains(&head.id) {
                diverged.insert(head.author);
            }
            heads.insert(head.author, head.seq);
        }
        let uncounted: HashSet<EventId> = hello.uncounted.iter().copied().collect();
        let ours = log.heads();
        let behind = ours
            .iter()
            .any(|(author, (seq, _))| heads.get(author).is_none_or(|theirs| theirs < seq));
        let forks_unknown = log.uncounted().iter().any(|id| !uncounted.contains(id));
        let nothing_to_send = !behind && diverged.is_empty() && !forks_unknown;
        // Position 0 is the genesis, which the peer has. A peer that only
        // lacks the ends of some chains is served from the first event it
        // lacks (chains are in kept order), not from the start; forks it
        // has not seen may lie anywhere.
        let cursor = if !diverged.is_empty() || forks_unknown {
            1
        } else {
            ours.iter()
                .filter_map(|(author, (seq, _))| {
                    let theirs = heads.get(author).copied().unwrap_or(0);
                    (theirs < *seq)
                        .then(|| log.chain_position(author, theirs + 1))
                        .flatten()
                })
                .min()
                .unwrap_or(log.kept_order().len())
                .max(1)
        };
        Serve {
            round: hello.round,
            page: 0,
            generation: log.generation(),
            cursor,
            peer: PeerView {
                heads,
                diverged,
                uncounted,
            },
            nothing_to_send,
        }
    }

    /// The next page: kept events the peer lacks, in kept order, up to the
    /// page limits.
    fn next_page(&mut self, log: &Log) -> Page {
        if self.generation != log.generation() {
            // A fork renumbered the kept order: start over (what the peer
            // already has comes again and is ignored as a duplicate).
            self.generation = log.generation();
            self.cursor = 1;
        }
        let order = log.kept_order();
        if self.nothing_to_send {
            self.cursor = order.len();
        }
        let mut events = Vec::new();
        let mut bytes = 0;
        while let Some(id) = order.get(self.cursor) {
            if events.len() >= PAGE_EVENTS_MAX {
                break;
            }
            if let Some(event) = log.get(id)
                && self.peer.lacks(log, id, event)
            {
                let size = event.bytes().len();
                if bytes + size > PAGE_BYTES_MAX && !events.is_empty() {
                    break;
                }
                bytes += size;
                events.push(event.bytes().to_vec());
            }
            self.cursor += 1;
        }
        Page {
            round: self.round,
            page: self.page,
            events,
            done: self.cursor >= order.len(),
        }
    }
}

impl PeerView {
    fn lacks(&self, log: &Log, id: &EventId, event: &Event) -> bool {
        if self.uncounted.contains(id) {
            return false;
        }
        if log.uncounted().contains(id) {
            return true;
        }
        let author = event.author();
        if self.diverged.contains(&author) {
            return true;
        }
        self.heads.get(&author).is_none_or(|seq| event.seq() > *seq)
    }
}
