//! Replication between two nodes of one co-op, as a pure state machine.
//!
//! Delivery is guaranteed by *sync*, not by push. Each side opens rounds:
//! it sends a [`Hello`] with its per-author heads (seq and id) and the ids
//! of the events it keeps that do not count (fork variants that lost); the other side answers with [`Page`]s of every kept event the
//! hello does not cover, in the order it kept them (each after its prev and
//! deps), one page per [`Message::More`]. A head whose id differs from the
//! server's event at that seq reveals a fork: the server then sends that
//! author's whole chain, so the puller holds both branches and its log keeps
//! the evidence. New events are also pushed as they are written
//! ([`Message::Push`]); push is only an optimisation.
//!
//! The session does no IO and reads no clock: the transport (QUIC streams in
//! `icn-node`, a lossy simulated network in the tests) feeds it messages and
//! the time, ingests the events it hands out, and sends what it returns. It
//! tolerates lost, duplicated and reordered messages (rounds and pages are
//! numbered; a stalled round times out and starts again), so the same code
//! runs under the simulator and over QUIC.

mod message;
mod session;

pub use message::{
    ALPN, FRAME_MAX, HEADS_MAX, Head, Hello, Message, PAGE_BYTES_MAX, PAGE_EVENTS_MAX, Page,
    UNCOUNTED_MAX, WireError,
};
pub use session::{Output, ProtocolError, Session, SessionConfig, SessionStats};
