//! The wire messages of `icn/sync/1` and their limits.

use icn_identity::Did;
use icn_kernel::{CoopId, EventId};
use serde::{Deserialize, Serialize};

/// The protocol and its version, negotiated by QUIC's ALPN: a node that
/// speaks another version fails the handshake instead of misreading frames.
pub const ALPN: &[u8] = b"icn/sync/1";

/// One encoded message, at most.
pub const FRAME_MAX: usize = 2 * 1024 * 1024;
/// Events in one page or push, at most.
pub const PAGE_EVENTS_MAX: usize = 512;
/// Bytes of events in one page, at most (one event may reach 64 KiB).
pub const PAGE_BYTES_MAX: usize = 1024 * 1024;
/// Authors in a hello, at most.
pub const HEADS_MAX: usize = 10_000;
/// Ids of kept events that do not count, in a hello, at most.
pub const UNCOUNTED_MAX: usize = 16_384;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Opens a round: what the sender holds.
    Hello(Hello),
    /// Events answering the peer's hello.
    Page(Page),
    /// Asks for page `page` of round `round`.
    More { round: u32, page: u32 },
    /// Events just written, sent to connected peers unasked.
    Push(Vec<Vec<u8>>),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub coop: CoopId,
    pub round: u32,
    pub heads: Vec<Head>,
    /// Kept events that do not count (fork variants that lost, events
    /// built on them): rare, so listed in full.
    pub uncounted: Vec<EventId>,
}

/// The last event of an author's counted chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub author: Did,
    pub seq: u64,
    pub id: EventId,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    pub round: u32,
    pub page: u32,
    /// Events in wire form, each after its prev and deps.
    pub events: Vec<Vec<u8>>,
    /// Nothing more to send in this round.
    pub done: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("a message of {0} bytes is larger than the {FRAME_MAX}-byte limit")]
    TooLarge(usize),
    #[error("not a sync message: {0}")]
    Malformed(String),
    #[error("over a limit: {0}")]
    OverLimit(&'static str),
}

impl Message {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("sync messages serialise")
    }

    /// Decodes one message and checks every limit, so that nothing past
    /// this point holds more than the limits allow.
    pub fn decode(bytes: &[u8]) -> Result<Message, WireError> {
        if bytes.len() > FRAME_MAX {
            return Err(WireError::TooLarge(bytes.len()));
        }
        let (message, rest): (Message, &[u8]) = postcard::take_from_bytes(bytes)
            .map_err(|error| WireError::Malformed(error.to_string()))?;
        if !rest.is_empty() {
            return Err(WireError::Malformed(format!(
                "{} bytes after the message",
                rest.len()
            )));
        }
        message.check()?;
        Ok(message)
    }

    fn check(&self) -> Result<(), WireError> {
        match self {
            Message::Hello(hello) => {
                if hello.heads.len() > HEADS_MAX {
                    return Err(WireError::OverLimit("heads in a hello"));
                }
                if hello.uncounted.len() > UNCOUNTED_MAX {
                    return Err(WireError::OverLimit("uncounted ids in a hello"));
                }
            }
            Message::Page(Page { events, .. }) | Message::Push(events) => {
                if events.len() > PAGE_EVENTS_MAX {
                    return Err(WireError::OverLimit("events in a page"));
                }
            }
            Message::More { .. } => {}
        }
        Ok(())
    }

    /// What the message is, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Message::Hello(_) => "hello",
            Message::Page(_) => "page",
            Message::More { .. } => "more",
            Message::Push(_) => "push",
        }
    }
}
