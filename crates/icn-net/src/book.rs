//! The address book: where each member's node can be reached, so that a
//! co-op is a mesh, not a star around the member whose ticket everyone used.
//!
//! Every node signs its own entry (its direct addresses and when it said
//! so) with its device key, which is also its network identity, and sends
//! its whole book to each peer over a one-way stream of the sync connection
//! when the connection starts and whenever the book changes. Entries are
//! taken only from members' device keys, with a valid signature, newer than
//! the one held, and within the limits below; the newest entry per key wins.
//! The book is kept in the store, so a node that restarts redials everyone
//! it knew, not only its bootstrap peers. Addresses are hints for dialling:
//! QUIC's handshake proves who answers.
//!
//! A node that runs a co-op relay also signs a [`RelayEntry`] naming it,
//! sent after the entries (an older node reads the entries and ignores the
//! rest), so every member's node learns every relay the co-op runs, not only
//! the one in the ticket it joined with, and can use another when one is
//! down. A relay entry is signed by the relay's own key, which is the key
//! of the member node that runs it and the key its TLS must prove.

use std::{collections::BTreeMap, net::SocketAddr};

use icn_identity::{KeyPair, PublicKey};
use serde::{Deserialize, Serialize};

use super::relay::RelayRef;

/// Entries kept, at most (a co-op's members' devices).
pub const ENTRIES_MAX: usize = 256;
/// Addresses per entry, at most.
pub const ADDRS_MAX: usize = 16;
/// An encoded book, at most; a larger one is refused unread.
pub const BYTES_MAX: usize = 64 * 1024;
/// An entry stamped further ahead of this node's clock is refused.
const FUTURE_SKEW_MS: u64 = 5 * 60 * 1000;
/// Entries older than this are dropped (the node has not said where it is
/// for a month).
const TTL_MS: u64 = 30 * 24 * 60 * 60 * 1000;
const CONTEXT: &[u8] = b"icn-addr-v1:";
const RELAY_CONTEXT: &[u8] = b"icn-relay-v1:";
/// Relays kept, at most (a co-op runs two or three).
pub const RELAYS_MAX: usize = 8;
/// A relay URL, at most.
const RELAY_URL_LEN_MAX: usize = 256;

/// One node's own statement of where it can be reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub key: [u8; 32],
    pub addrs: Vec<SocketAddr>,
    pub issued_ms: u64,
    pub signature: Vec<u8>,
}

impl Entry {
    pub fn sign(key: &KeyPair, addrs: Vec<SocketAddr>, issued_ms: u64) -> Entry {
        let mut addrs = addrs;
        addrs.truncate(ADDRS_MAX);
        let public = *key.public().as_bytes();
        let signature = key.sign(&message(&public, &addrs, issued_ms)).to_bytes();
        Entry {
            key: public,
            addrs,
            issued_ms,
            signature: signature.to_vec(),
        }
    }

    fn verifies(&self) -> bool {
        let Ok(signature) = icn_identity::Signature::from_bytes(&self.signature) else {
            return false;
        };
        PublicKey::from_bytes(&self.key).is_ok_and(|key| {
            key.verify(&message(&self.key, &self.addrs, self.issued_ms), &signature)
                .is_ok()
        })
    }
}

fn message(key: &[u8; 32], addrs: &[SocketAddr], issued_ms: u64) -> Vec<u8> {
    let mut message = CONTEXT.to_vec();
    message.extend(postcard::to_stdvec(&(key, addrs, issued_ms)).expect("plain data encodes"));
    message
}

/// A member node's statement that it runs a co-op relay, signed by the
/// relay's key (the node's own).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayEntry {
    pub relay: RelayRef,
    pub issued_ms: u64,
    pub signature: Vec<u8>,
}

impl RelayEntry {
    pub fn sign(key: &KeyPair, relay: RelayRef, issued_ms: u64) -> RelayEntry {
        let signature = key.sign(&relay_message(&relay, issued_ms)).to_bytes();
        RelayEntry {
            relay,
            issued_ms,
            signature: signature.to_vec(),
        }
    }

    fn verifies(&self) -> bool {
        let Ok(signature) = icn_identity::Signature::from_bytes(&self.signature) else {
            return false;
        };
        PublicKey::from_bytes(&self.relay.key).is_ok_and(|key| {
            key.verify(&relay_message(&self.relay, self.issued_ms), &signature)
                .is_ok()
        })
    }
}

fn relay_message(relay: &RelayRef, issued_ms: u64) -> Vec<u8> {
    let mut message = RELAY_CONTEXT.to_vec();
    message.extend(postcard::to_stdvec(&(relay, issued_ms)).expect("plain data encodes"));
    message
}

#[derive(Debug, Default)]
pub struct Book {
    entries: BTreeMap<[u8; 32], Entry>,
    /// Relays members' nodes run, by the relay's key.
    relays: BTreeMap<[u8; 32], RelayEntry>,
}

/// What a peer sent: its book's entries and the relays it knows.
pub struct Received {
    pub entries: Vec<Entry>,
    pub relays: Vec<RelayEntry>,
}

impl Book {
    /// Takes `entry` if it is well formed, signed by its key, from a key
    /// `is_member` accepts, and newer than what the book holds. Returns
    /// whether the book changed.
    pub fn merge(
        &mut self,
        entry: Entry,
        now_ms: u64,
        is_member: impl Fn(&[u8; 32]) -> bool,
    ) -> bool {
        if entry.addrs.len() > ADDRS_MAX
            || entry.issued_ms > now_ms.saturating_add(FUTURE_SKEW_MS)
            || entry.issued_ms.saturating_add(TTL_MS) < now_ms
            || self
                .entries
                .get(&entry.key)
                .is_some_and(|held| held.issued_ms >= entry.issued_ms)
            || !is_member(&entry.key)
            || !entry.verifies()
        {
            return false;
        }
        if !self.entries.contains_key(&entry.key) && self.entries.len() >= ENTRIES_MAX {
            // Make room by dropping the stalest entry, if this one is newer.
            let Some((&stalest, held)) = self.entries.iter().min_by_key(|(_, held)| held.issued_ms)
            else {
                return false;
            };
            if held.issued_ms >= entry.issued_ms {
                return false;
            }
            self.entries.remove(&stalest);
        }
        self.entries.insert(entry.key, entry);
        true
    }

    /// Takes a relay entry if it is signed by the relay's key, from a key
    /// `is_member` accepts, newer than the one held, and within limits.
    /// Returns whether the book changed.
    pub fn merge_relay(
        &mut self,
        entry: RelayEntry,
        now_ms: u64,
        is_member: impl Fn(&[u8; 32]) -> bool,
    ) -> bool {
        let key = entry.relay.key;
        // Relays of keys that are no longer members', or that have not
        // been said again for a month, make room.
        self.relays.retain(|held, entry| {
            is_member(held) && entry.issued_ms.saturating_add(TTL_MS) >= now_ms
        });
        if !self.relays.contains_key(&key)
            && self.relays.len() >= RELAYS_MAX
            && let Some((&stalest, held)) =
                self.relays.iter().min_by_key(|(_, held)| held.issued_ms)
            && held.issued_ms < entry.issued_ms
            && is_member(&key)
            && entry.verifies()
        {
            self.relays.remove(&stalest);
        }
        if entry.relay.url.len() > RELAY_URL_LEN_MAX
            || entry.relay.relay_url().is_err()
            || entry.issued_ms > now_ms.saturating_add(FUTURE_SKEW_MS)
            || entry.issued_ms.saturating_add(TTL_MS) < now_ms
            || self
                .relays
                .get(&key)
                .is_some_and(|held| held.issued_ms >= entry.issued_ms)
            || (!self.relays.contains_key(&key) && self.relays.len() >= RELAYS_MAX)
            || !is_member(&key)
            || !entry.verifies()
        {
            return false;
        }
        self.relays.insert(key, entry);
        true
    }

    /// The relays members' nodes said they run.
    pub fn relays(&self) -> impl Iterator<Item = &RelayRef> {
        self.relays.values().map(|entry| &entry.relay)
    }

    pub fn addrs(&self, key: &[u8; 32]) -> &[SocketAddr] {
        self.entries.get(key).map_or(&[], |entry| &entry.addrs)
    }

    /// The book as stored (at most [`BYTES_MAX`]: the newest entries
    /// first if it would be larger).
    pub fn encode(&self) -> Vec<u8> {
        self.encode_with(None, None)
    }

    /// The book as sent: this node's own fresh entry first, then the rest,
    /// newest first, within [`BYTES_MAX`].
    pub fn encode_with(&self, own: Option<&Entry>, own_relay: Option<&RelayEntry>) -> Vec<u8> {
        let mut relays: Vec<&RelayEntry> = own_relay.into_iter().collect();
        relays.extend(
            self.relays
                .values()
                .filter(|entry| own_relay.is_none_or(|own| own.relay.key != entry.relay.key)),
        );
        relays.truncate(RELAYS_MAX);
        let relays = postcard::to_stdvec(&relays).expect("plain data encodes");
        let mut bytes = self.encode_entries(own, BYTES_MAX - relays.len());
        bytes.extend(relays);
        bytes
    }

    fn encode_entries(&self, own: Option<&Entry>, room: usize) -> Vec<u8> {
        let mut rest: Vec<&Entry> = self
            .entries
            .values()
            .filter(|entry| own.is_none_or(|own| own.key != entry.key))
            .collect();
        rest.sort_by_key(|entry| std::cmp::Reverse(entry.issued_ms));
        let mut entries: Vec<&Entry> = own.into_iter().collect();
        entries.extend(rest);
        entries.truncate(ENTRIES_MAX);
        loop {
            let bytes = postcard::to_stdvec(&entries).expect("plain data encodes");
            if bytes.len() <= room || entries.is_empty() {
                return bytes;
            }
            entries.truncate(entries.len() / 2);
        }
    }

    /// A peer's book: its entries, then (from nodes that send them) the
    /// relays it knows.
    pub fn decode(bytes: &[u8]) -> Result<Received, String> {
        if bytes.len() > BYTES_MAX {
            return Err(format!("an address book is at most {BYTES_MAX} bytes"));
        }
        let (entries, rest): (Vec<Entry>, &[u8]) = postcard::take_from_bytes(bytes)
            .map_err(|error| format!("unreadable address book: {error}"))?;
        if entries.len() > ENTRIES_MAX {
            return Err(format!("an address book has at most {ENTRIES_MAX} entries"));
        }
        let relays: Vec<RelayEntry> = if rest.is_empty() {
            Vec::new()
        } else {
            postcard::from_bytes(rest)
                .map_err(|error| format!("unreadable relays in an address book: {error}"))?
        };
        if relays.len() > RELAYS_MAX {
            return Err(format!("an address book names at most {RELAYS_MAX} relays"));
        }
        Ok(Received { entries, relays })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_signed_newer_members_entries_within_limits_are_taken() {
        let ana = KeyPair::from_seed(&[1; 32]);
        let ben = KeyPair::from_seed(&[2; 32]);
        let addr: SocketAddr = "192.0.2.1:7879".parse().unwrap();
        let members = |key: &[u8; 32]| key == ana.public().as_bytes();
        let mut book = Book::default();
        let first = Entry::sign(&ana, vec![addr], 1_000);
        assert!(book.merge(first.clone(), 2_000, members));
        assert_eq!(book.addrs(ana.public().as_bytes()), &[addr]);
        // The same or an older statement changes nothing.
        assert!(!book.merge(first.clone(), 2_000, members));
        // Not a member's key.
        assert!(!book.merge(Entry::sign(&ben, vec![addr], 1_500), 2_000, members));
        // Altered addresses no longer verify.
        let mut forged = Entry::sign(&ana, vec![addr], 1_600);
        forged.addrs = vec!["198.51.100.7:1".parse().unwrap()];
        assert!(!book.merge(forged, 2_000, members));
        // Too far in the future, or too many addresses.
        assert!(!book.merge(
            Entry::sign(&ana, vec![addr], 2_000 + 10 * 60_000),
            2_000,
            members
        ));
        let mut many = Entry::sign(&ana, vec![addr; ADDRS_MAX], 1_700);
        many.addrs.push(addr);
        assert!(!book.merge(many, 2_000, members));
        // A newer statement replaces the older; the book round-trips.
        let moved: SocketAddr = "192.0.2.9:7879".parse().unwrap();
        assert!(book.merge(Entry::sign(&ana, vec![moved], 1_800), 2_000, members));
        let decoded = Book::decode(&book.encode()).unwrap();
        assert_eq!(decoded.entries, vec![Entry::sign(&ana, vec![moved], 1_800)]);
        assert!(decoded.relays.is_empty());
        assert!(Book::decode(&[0xff; 10]).is_err());
        assert!(Book::decode(&vec![0; BYTES_MAX + 1]).is_err());
    }

    #[test]
    fn relays_are_taken_only_as_their_own_members_keys_signed_them() {
        let ana = KeyPair::generate().unwrap();
        let ben = KeyPair::generate().unwrap();
        let member = *ana.public().as_bytes();
        let members = |key: &[u8; 32]| *key == member;
        let relay = |key: &KeyPair| RelayRef {
            url: "https://192.0.2.1:7880".to_owned(),
            key: *key.public().as_bytes(),
        };
        let mut book = Book::default();
        // Signed by the relay's key, a member's.
        let entry = RelayEntry::sign(&ana, relay(&ana), 1_000);
        assert!(book.merge_relay(entry.clone(), 2_000, members));
        assert!(!book.merge_relay(entry, 2_000, members), "not newer");
        // Not a member's key; or signed by another key than the relay's.
        assert!(!book.merge_relay(RelayEntry::sign(&ben, relay(&ben), 1_100), 2_000, members));
        assert!(!book.merge_relay(RelayEntry::sign(&ben, relay(&ana), 1_100), 2_000, members));
        // A URL that is not https.
        let mut plain = relay(&ana);
        plain.url = "http://192.0.2.1:7880".to_owned();
        assert!(!book.merge_relay(RelayEntry::sign(&ana, plain, 1_200), 2_000, members));
        assert_eq!(
            book.relays().cloned().collect::<Vec<_>>(),
            vec![relay(&ana)]
        );

        // Sent after the entries: this release reads both; a reader of the
        // entries alone (the previous release) reads them and ignores the
        // rest.
        let own = Entry::sign(&ana, vec!["192.0.2.1:7879".parse().unwrap()], 1_500);
        let bytes = book.encode_with(Some(&own), None);
        let decoded = Book::decode(&bytes).unwrap();
        assert_eq!(decoded.entries, vec![own.clone()]);
        assert_eq!(decoded.relays.len(), 1);
        let previous: Vec<Entry> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(previous, vec![own]);
    }
}
