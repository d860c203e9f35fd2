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

use std::{collections::BTreeMap, net::SocketAddr};

use icn_identity::{KeyPair, PublicKey};
use serde::{Deserialize, Serialize};

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

#[derive(Debug, Default)]
pub struct Book {
    entries: BTreeMap<[u8; 32], Entry>,
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

    pub fn addrs(&self, key: &[u8; 32]) -> &[SocketAddr] {
        self.entries.get(key).map_or(&[], |entry| &entry.addrs)
    }

    /// The book as stored (at most [`BYTES_MAX`]: the newest entries
    /// first if it would be larger).
    pub fn encode(&self) -> Vec<u8> {
        self.encode_with(None)
    }

    /// The book as sent: this node's own fresh entry first, then the rest,
    /// newest first, within [`BYTES_MAX`].
    pub fn encode_with(&self, own: Option<&Entry>) -> Vec<u8> {
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
            if bytes.len() <= BYTES_MAX || entries.is_empty() {
                return bytes;
            }
            entries.truncate(entries.len() / 2);
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Vec<Entry>, String> {
        if bytes.len() > BYTES_MAX {
            return Err(format!("an address book is at most {BYTES_MAX} bytes"));
        }
        let entries: Vec<Entry> = postcard::from_bytes(bytes)
            .map_err(|error| format!("unreadable address book: {error}"))?;
        if entries.len() > ENTRIES_MAX {
            return Err(format!("an address book has at most {ENTRIES_MAX} entries"));
        }
        Ok(entries)
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
        assert_eq!(decoded, vec![Entry::sign(&ana, vec![moved], 1_800)]);
        assert!(Book::decode(&[0xff; 10]).is_err());
        assert!(Book::decode(&vec![0; BYTES_MAX + 1]).is_err());
    }
}
