use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != N * 2 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(out)
}

/// The hash that names an event: SHA-256 over its canonical signed bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EventId(pub [u8; 32]);

impl EventId {
    /// The first twelve hex digits, for humans and logs.
    pub fn short(&self) -> String {
        hex(&self.0[..6])
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", self.short())
    }
}

impl FromStr for EventId {
    type Err = IdParseError;
    fn from_str(text: &str) -> Result<EventId, IdParseError> {
        unhex(text).map(EventId).ok_or(IdParseError::EventId)
    }
}

/// A co-op's identifier: the id of its genesis event. Every other event of the
/// co-op carries it as its scope, so events cannot be replayed into another co-op.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CoopId(pub [u8; 32]);

impl CoopId {
    /// The scope a genesis event carries: it cannot name itself.
    pub const GENESIS: CoopId = CoopId([0; 32]);

    pub fn short(&self) -> String {
        format!("coop:{}", hex(&self.0[..6]))
    }
}

impl From<EventId> for CoopId {
    fn from(genesis: EventId) -> CoopId {
        CoopId(genesis.0)
    }
}

impl fmt::Display for CoopId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "coop:{}", hex(&self.0))
    }
}

impl fmt::Debug for CoopId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.short())
    }
}

impl FromStr for CoopId {
    type Err = IdParseError;
    fn from_str(text: &str) -> Result<CoopId, IdParseError> {
        text.strip_prefix("coop:")
            .and_then(unhex)
            .map(CoopId)
            .ok_or(IdParseError::CoopId)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdParseError {
    #[error("an event id is 64 hex digits")]
    EventId,
    #[error("a co-op id is `coop:` followed by 64 hex digits")]
    CoopId,
    #[error(
        "an event kind is `domain.name` in lowercase letters, digits and `_`, at most 64 characters"
    )]
    EventKind,
}

/// Milliseconds since the Unix epoch, as the author's clock read it.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Debug, Default,
)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub fn as_millis(&self) -> u64 {
        self.0
    }

    pub fn saturating_add_ms(self, ms: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }
}

/// What an event means, `domain.name` (for example `identity.key_add`).
///
/// **Invariant**: 3–64 bytes of `[a-z0-9_.]` with exactly one `.` that is
/// neither first nor last. Checked by [`EventKind::new`] and on decoding.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct EventKind(String);

impl EventKind {
    pub const LEN_MAX_BYTES: usize = 64;

    pub fn new(text: &str) -> Result<EventKind, IdParseError> {
        let valid_chars = text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
        let dots = text.bytes().filter(|b| *b == b'.').count();
        let valid = (3..=Self::LEN_MAX_BYTES).contains(&text.len())
            && valid_chars
            && dots == 1
            && !text.starts_with('.')
            && !text.ends_with('.');
        if valid {
            Ok(EventKind(text.to_owned()))
        } else {
            Err(IdParseError::EventKind)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the dot: which domain owns this kind.
    pub fn domain(&self) -> &str {
        self.0.split('.').next().expect("a kind has a dot")
    }
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        EventKind::new(&text).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text() {
        let id = EventId([0xab; 32]);
        assert_eq!(id.to_string().parse::<EventId>().unwrap(), id);
        let coop = CoopId([7; 32]);
        assert_eq!(coop.to_string().parse::<CoopId>().unwrap(), coop);
        assert!("zz".parse::<EventId>().is_err());
        assert!("coop:12".parse::<CoopId>().is_err());
    }

    #[test]
    fn event_kinds_are_checked() {
        assert!(EventKind::new("ledger.transfer").is_ok());
        for bad in ["", "ledger", "Ledger.x", ".x", "x.", "a.b.c", "a b.c"] {
            assert!(EventKind::new(bad).is_err(), "{bad}");
        }
    }
}
