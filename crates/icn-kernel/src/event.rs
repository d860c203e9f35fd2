//! The event: the unit of every state change, signed by its author.
//!
//! Wire and storage format: `postcard(EventWire { content, signature })`.
//! The signature covers `"icn-event-v1" ‖ postcard(content)`, and the event id
//! is SHA-256 of those same bytes. Decoding re-encodes and compares, so every
//! event has exactly one byte representation.

use std::sync::Arc;

use icn_identity::{Did, KeyPair, PublicKey, Signature};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use crate::{CoopId, EventId, EventKind, Timestamp};

pub const FORMAT_VERSION: u8 = 1;
pub const EVENT_SIZE_MAX_BYTES: usize = 64 * 1024;
pub const BODY_SIZE_MAX_BYTES: usize = 60 * 1024;
pub const DEPS_MAX: usize = 16;
const SIGNING_DOMAIN: &[u8] = b"icn-event-v1";

/// Everything an event says, which its signature covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventContent {
    pub format: u8,
    /// The co-op this event belongs to ([`CoopId::GENESIS`] for the genesis itself).
    pub scope: CoopId,
    pub author: Did,
    /// Position in the author's chain, from 1.
    pub seq: u64,
    /// The author's event at `seq - 1`; `None` exactly when `seq == 1`.
    pub prev: Option<EventId>,
    /// Other events this one causally depends on, strictly ascending.
    pub deps: Vec<EventId>,
    pub timestamp: Timestamp,
    pub kind: EventKind,
    pub body: Vec<u8>,
    /// The key that signed: one the author's identity authorised before `seq`.
    pub signer: PublicKey,
}

#[derive(Serialize, Deserialize)]
struct EventWire {
    content: EventContent,
    signature: Signature,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("event is {size} bytes, the limit is {EVENT_SIZE_MAX_BYTES}")]
    TooLarge { size: usize },
    #[error("event bytes are malformed: {reason}")]
    Malformed { reason: String },
    #[error("event bytes are not in canonical form")]
    NotCanonical,
    #[error("event format {found} is not supported (this node reads {FORMAT_VERSION})")]
    Format { found: u8 },
    #[error("event is malformed: {reason}")]
    Structure { reason: &'static str },
}

/// A decoded event whose id is computed. Its signature is *not* yet checked:
/// [`Event::verify`] turns it into a [`VerifiedEvent`].
///
/// Cheap to clone: the decoded parts are shared.
#[derive(Clone, Debug)]
pub struct Event(Arc<EventInner>);

#[derive(Debug)]
pub struct EventInner {
    content: EventContent,
    signature: Signature,
    id: EventId,
    bytes: Vec<u8>,
}

impl std::ops::Deref for Event {
    type Target = EventInner;
    fn deref(&self) -> &EventInner {
        &self.0
    }
}

impl PartialEq for Event {
    fn eq(&self, other: &Event) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for Event {}

fn check_structure(content: &EventContent) -> Result<(), DecodeError> {
    let fail = |reason| Err(DecodeError::Structure { reason });
    if content.format != FORMAT_VERSION {
        return Err(DecodeError::Format {
            found: content.format,
        });
    }
    if content.seq == 0 {
        return fail("seq starts at 1");
    }
    if (content.seq == 1) != content.prev.is_none() {
        return fail("an event has a prev exactly when its seq is above 1");
    }
    if content.deps.len() > DEPS_MAX {
        return fail("too many deps");
    }
    if !content.deps.windows(2).all(|pair| pair[0] < pair[1]) {
        return fail("deps are not strictly ascending");
    }
    if content.body.len() > BODY_SIZE_MAX_BYTES {
        return fail("body is too large");
    }
    Ok(())
}

fn signed_bytes(content: &EventContent) -> Vec<u8> {
    postcard::to_extend(content, SIGNING_DOMAIN.to_vec()).expect("encoding into a Vec cannot fail")
}

impl Event {
    /// Signs a new event. Fails only if the content breaks a structural rule.
    pub fn sign(content: EventContent, key: &KeyPair) -> Result<Event, DecodeError> {
        debug_assert_eq!(
            content.signer,
            key.public(),
            "signer field names the signing key"
        );
        check_structure(&content)?;
        let message = signed_bytes(&content);
        let signature = key.sign(&message);
        let id = EventId(Sha256::digest(&message).into());
        let wire = EventWire { content, signature };
        let bytes = postcard::to_allocvec(&wire).expect("encoding into a Vec cannot fail");
        if bytes.len() > EVENT_SIZE_MAX_BYTES {
            return Err(DecodeError::TooLarge { size: bytes.len() });
        }
        Ok(Event(Arc::new(EventInner {
            content: wire.content,
            signature: wire.signature,
            id,
            bytes,
        })))
    }

    /// Decodes untrusted bytes. Never panics; every failure is a [`DecodeError`].
    pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
        if bytes.len() > EVENT_SIZE_MAX_BYTES {
            return Err(DecodeError::TooLarge { size: bytes.len() });
        }
        let wire: EventWire =
            postcard::from_bytes(bytes).map_err(|error| DecodeError::Malformed {
                reason: error.to_string(),
            })?;
        check_structure(&wire.content)?;
        let reencoded = postcard::to_allocvec(&wire).expect("encoding into a Vec cannot fail");
        if reencoded != bytes {
            return Err(DecodeError::NotCanonical);
        }
        let id = EventId(Sha256::digest(signed_bytes(&wire.content)).into());
        Ok(Event(Arc::new(EventInner {
            content: wire.content,
            signature: wire.signature,
            id,
            bytes: reencoded,
        })))
    }

    /// Checks the signature against the `signer` key, with strict Ed25519 rules.
    ///
    /// Whether the signer was *authorised* to sign for the author is a separate
    /// question, answered by the log from the author's key state.
    pub fn verify(self) -> Result<VerifiedEvent, Event> {
        let message = self.signed_message();
        match self.content.signer.verify(&message, &self.signature) {
            Ok(()) => Ok(VerifiedEvent(self)),
            Err(_) => Err(self),
        }
    }

    /// Verifies many events, spread over `threads` worker threads. The result
    /// is in input order. Strict verification is used (not batch verification,
    /// which accepts some signatures that strict verification rejects, so two
    /// nodes could disagree about the same event).
    pub fn verify_all(events: Vec<Event>, threads: usize) -> Vec<Result<VerifiedEvent, Event>> {
        let threads = threads.clamp(1, 64);
        if threads == 1 || events.len() < 64 {
            return events.into_iter().map(Event::verify).collect();
        }
        let chunk_len = events.len().div_ceil(threads);
        let mut chunks: Vec<Vec<Event>> = Vec::new();
        let mut iter = events.into_iter();
        loop {
            let chunk: Vec<Event> = iter.by_ref().take(chunk_len).collect();
            if chunk.is_empty() {
                break;
            }
            chunks.push(chunk);
        }
        std::thread::scope(|scope| {
            let handles: Vec<_> = chunks
                .into_iter()
                .map(|chunk| {
                    scope.spawn(move || chunk.into_iter().map(Event::verify).collect::<Vec<_>>())
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|handle| handle.join().expect("verification does not panic"))
                .collect()
        })
    }

    /// The bytes the signature covers (and the id hashes).
    pub fn signed_message(&self) -> Vec<u8> {
        signed_bytes(&self.content)
    }

    pub fn id(&self) -> EventId {
        self.id
    }

    pub fn content(&self) -> &EventContent {
        &self.content
    }

    pub fn author(&self) -> Did {
        self.content.author
    }

    pub fn seq(&self) -> u64 {
        self.content.seq
    }

    pub fn kind(&self) -> &EventKind {
        &self.content.kind
    }

    pub fn timestamp(&self) -> Timestamp {
        self.content.timestamp
    }

    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The canonical encoded bytes, as stored and sent.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Decodes the body as a domain's type.
    pub fn body<T: DeserializeOwned>(&self) -> Result<T, postcard::Error> {
        postcard::from_bytes(&self.content.body)
    }
}

/// An event whose signature verified against its `signer` field: made by
/// [`Event::verify`], or by [`VerifiedEvent::sign`] for an event signed
/// here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedEvent(Event);

impl VerifiedEvent {
    /// Signs `content` with `key`, whose public key must be the content's
    /// `signer`. An Ed25519 signature made with the key verifies (strictly)
    /// by construction, so it is not checked again: a node's own events
    /// skip a verification that was a fifth of what signing a payment
    /// cost. Debug builds check anyway.
    pub fn sign(content: EventContent, key: &KeyPair) -> Result<VerifiedEvent, DecodeError> {
        if content.signer != key.public() {
            return Err(DecodeError::Structure {
                reason: "the signer field names another key than the one signing",
            });
        }
        let event = Event::sign(content, key)?;
        debug_assert!(
            event.clone().verify().is_ok(),
            "an event signed here verifies"
        );
        Ok(VerifiedEvent(event))
    }

    /// An event this node verified before it stored it, whose bytes a
    /// checksum shows unchanged since (`icn_store::StoredEvent::unchanged`):
    /// a start does not verify every signature again. Nothing else may
    /// make a `VerifiedEvent` this way; `icnctl verify` checks them all.
    pub fn verified_before_it_was_stored(event: Event) -> VerifiedEvent {
        VerifiedEvent(event)
    }

    pub fn event(&self) -> &Event {
        &self.0
    }

    pub fn into_event(self) -> Event {
        self.0
    }
}

impl std::ops::Deref for VerifiedEvent {
    type Target = Event;
    fn deref(&self) -> &Event {
        &self.0
    }
}

/// Encodes a domain body. Plain data always encodes.
pub fn encode_body<T: Serialize>(body: &T) -> Vec<u8> {
    postcard::to_allocvec(body).expect("encoding plain data into a Vec cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(key: &KeyPair) -> EventContent {
        EventContent {
            format: FORMAT_VERSION,
            scope: CoopId([1; 32]),
            author: Did::from_inception_key(key.public()),
            seq: 1,
            prev: None,
            deps: vec![],
            timestamp: Timestamp(1_700_000_000_000),
            kind: EventKind::new("test.note").unwrap(),
            body: b"hello".to_vec(),
            signer: key.public(),
        }
    }

    #[test]
    fn sign_decode_verify_round_trip() {
        let key = KeyPair::from_seed(&[1; 32]);
        let event = Event::sign(content(&key), &key).unwrap();
        let decoded = Event::decode(event.bytes()).unwrap();
        assert_eq!(decoded.id(), event.id());
        assert!(decoded.verify().is_ok());
    }

    #[test]
    fn an_event_signed_here_verifies_and_names_the_key_that_signed() {
        let key = KeyPair::from_seed(&[1; 32]);
        let signed = VerifiedEvent::sign(content(&key), &key).unwrap();
        let decoded = Event::decode(signed.bytes()).unwrap();
        assert_eq!(decoded.verify().unwrap(), signed);
        // Content naming another signer is refused, not signed as verified.
        let other = KeyPair::from_seed(&[2; 32]);
        assert!(matches!(
            VerifiedEvent::sign(content(&other), &key),
            Err(DecodeError::Structure { .. })
        ));
    }

    #[test]
    fn tampering_is_caught() {
        let key = KeyPair::from_seed(&[1; 32]);
        let event = Event::sign(content(&key), &key).unwrap();
        let mut bytes = event.bytes().to_vec();
        let body_at = bytes.windows(5).position(|w| w == b"hello").unwrap();
        bytes[body_at] = b'j';
        let tampered = Event::decode(&bytes).unwrap();
        assert_ne!(tampered.id(), event.id());
        assert!(tampered.verify().is_err());
    }

    #[test]
    fn structure_is_checked() {
        let key = KeyPair::from_seed(&[1; 32]);
        let mut bad = content(&key);
        bad.seq = 2;
        assert!(matches!(
            Event::sign(bad, &key),
            Err(DecodeError::Structure { .. })
        ));
        let mut bad = content(&key);
        bad.deps = vec![EventId([2; 32]), EventId([1; 32])];
        assert!(matches!(
            Event::sign(bad, &key),
            Err(DecodeError::Structure { .. })
        ));
    }

    #[test]
    fn parallel_verification_keeps_order_and_finds_bad_signatures() {
        let key = KeyPair::from_seed(&[1; 32]);
        let other = KeyPair::from_seed(&[2; 32]);
        let events: Vec<Event> = (0..200u64)
            .map(|i| {
                let mut c = content(&key);
                c.body = i.to_le_bytes().to_vec();
                if i == 77 {
                    // Signed by another key than the one it names.
                    let forged = Event::sign(
                        EventContent {
                            signer: other.public(),
                            ..c.clone()
                        },
                        &other,
                    )
                    .unwrap();
                    let wire = EventWire {
                        content: c,
                        signature: *forged.signature(),
                    };
                    return Event::decode(&postcard::to_allocvec(&wire).unwrap()).unwrap();
                }
                Event::sign(c, &key).unwrap()
            })
            .collect();
        let ids: Vec<EventId> = events.iter().map(Event::id).collect();
        let results = Event::verify_all(events, 2);
        for (i, (result, id)) in results.iter().zip(&ids).enumerate() {
            assert_eq!(result.is_err(), i == 77);
            let event = match result {
                Ok(v) => v.event(),
                Err(e) => e,
            };
            assert_eq!(event.id(), *id);
        }
    }

    proptest::proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = Event::decode(&bytes);
        }

        #[test]
        fn decoding_mutated_events_never_panics(flip in 0usize..400, value: u8, cut in 0usize..400) {
            let key = KeyPair::from_seed(&[1; 32]);
            let event = Event::sign(content(&key), &key).unwrap();
            let mut bytes = event.bytes().to_vec();
            let at = flip % bytes.len();
            bytes[at] = value;
            let _ = Event::decode(&bytes);
            bytes.truncate(cut % bytes.len());
            proptest::prop_assert!(Event::decode(&bytes).is_err() || cut % event.bytes().len() == event.bytes().len());
        }
    }
}
