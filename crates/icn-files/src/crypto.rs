//! What members' files are encrypted with.
//!
//! - A **namespace key** (32 random bytes) per namespace: a member's
//!   personal space, the co-op's shared space. It travels in the log only
//!   wrapped ([`Wrap`]) to the X25519 form of keys that may read it.
//! - A **chunk** is sealed under a key derived from the namespace key and
//!   the chunk's own plaintext (`blake3::keyed_hash`), so the same bytes in
//!   one namespace seal to the same blob (deduplication), while the same
//!   bytes in another namespace, or another co-op, seal to unrelated ones:
//!   nobody without the namespace key learns plaintext or equality. Each
//!   derived key seals exactly one plaintext, so its nonce can be fixed.
//! - Manifests and paths are sealed under the namespace key with random
//!   nonces (XChaCha20-Poly1305's 24 bytes make collisions negligible).
//!
//! Blobs are named by the BLAKE3 hash of their sealed bytes: a holder can
//! check what it keeps without any key.

use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305, XNonce,
    aead::{Aead, Payload},
};
use icn_identity::{KeyPair, PublicKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The name of a blob: BLAKE3 of its (sealed) bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BlobId(pub [u8; 32]);

impl BlobId {
    pub fn of(bytes: &[u8]) -> BlobId {
        BlobId(*blake3::hash(bytes).as_bytes())
    }

    pub fn hex(&self) -> String {
        hex(&self.0)
    }
}

impl std::fmt::Debug for BlobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlobId({})", &self.hex()[..12])
    }
}

fn cipher(key: &[u8; 32]) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(key))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(DIGITS[usize::from(byte >> 4)] as char);
        text.push(DIGITS[usize::from(byte & 15)] as char);
    }
    text
}

/// Why something did not decrypt or verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("the blob's bytes do not match its name (damaged or substituted)")]
    WrongHash,
    #[error("it does not decrypt with this key (damaged, or sealed under another key)")]
    Undecryptable,
    #[error("no key this node holds opens it")]
    NoKey,
}

/// A namespace's key.
#[derive(Clone)]
pub struct NamespaceKey(Zeroizing<[u8; 32]>);

impl NamespaceKey {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> NamespaceKey {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut()).expect("the OS gives randomness");
        NamespaceKey(key)
    }

    #[cfg(test)]
    pub(crate) fn from_bytes(bytes: [u8; 32]) -> NamespaceKey {
        NamespaceKey(Zeroizing::new(bytes))
    }

    fn derive(&self, purpose: &str) -> Zeroizing<[u8; 32]> {
        let mut material = Zeroizing::new(Vec::with_capacity(32 + purpose.len()));
        material.extend_from_slice(self.0.as_ref());
        material.extend_from_slice(purpose.as_bytes());
        Zeroizing::new(blake3::derive_key("icn files namespace v1", &material))
    }

    /// A file's id in the namespace: a keyed hash of its path, so that the
    /// log names files without revealing their paths.
    pub fn file_id(&self, path: &str) -> [u8; 32] {
        *blake3::keyed_hash(&self.derive("file id"), path.as_bytes()).as_bytes()
    }

    /// Seals a small value (a manifest, a path) with a random nonce.
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).expect("the OS gives randomness");
        let cipher = cipher(&self.derive("seal"));
        let sealed = cipher
            .encrypt(XNonce::from_slice(&nonce), plaintext)
            .expect("encryption of a bounded value works");
        let mut out = Vec::with_capacity(24 + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < 24 {
            return Err(CryptoError::Undecryptable);
        }
        let (nonce, body) = sealed.split_at(24);
        let cipher = cipher(&self.derive("seal"));
        cipher
            .decrypt(XNonce::from_slice(nonce), body)
            .map_err(|_| CryptoError::Undecryptable)
    }

    /// Seals one chunk: its reference (for the manifest) and its blob.
    pub fn seal_chunk(&self, plaintext: &[u8]) -> (ChunkRef, Vec<u8>) {
        let key = Zeroizing::new(*blake3::keyed_hash(&self.derive("chunk"), plaintext).as_bytes());
        let cipher = cipher(&key);
        let blob = cipher
            .encrypt(XNonce::from_slice(&[0u8; 24]), plaintext)
            .expect("encryption of a bounded chunk works");
        let reference = ChunkRef {
            blob: BlobId::of(&blob),
            key: *key,
            len: plaintext.len() as u32,
        };
        (reference, blob)
    }
}

/// A chunk as its file's manifest names it (the manifest is sealed: only
/// readers of the namespace see the keys).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef {
    pub blob: BlobId,
    pub key: [u8; 32],
    /// Plaintext length.
    pub len: u32,
}

impl ChunkRef {
    /// The chunk's plaintext from its blob, checked against its name.
    pub fn open(&self, blob: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if BlobId::of(blob) != self.blob {
            return Err(CryptoError::WrongHash);
        }
        let cipher = cipher(&self.key);
        let plaintext = cipher
            .decrypt(XNonce::from_slice(&[0u8; 24]), blob)
            .map_err(|_| CryptoError::Undecryptable)?;
        if plaintext.len() != self.len as usize {
            return Err(CryptoError::Undecryptable);
        }
        Ok(plaintext)
    }
}

/// A namespace key sealed to one Ed25519 key's X25519 form: an ephemeral
/// X25519 key agreement, then XChaCha20-Poly1305 under a key derived from
/// the shared secret and both public keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wrap {
    /// The Ed25519 key that may open it.
    pub recipient: [u8; 32],
    pub ephemeral: [u8; 32],
    pub sealed: Vec<u8>,
}

fn wrap_key(shared: &[u8; 32], ephemeral: &[u8; 32], recipient: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut material = Zeroizing::new([0u8; 96]);
    material[..32].copy_from_slice(shared);
    material[32..64].copy_from_slice(ephemeral);
    material[64..].copy_from_slice(recipient);
    Zeroizing::new(blake3::derive_key(
        "icn files key wrap v1",
        material.as_ref(),
    ))
}

impl Wrap {
    /// `key`, sealed to `recipient`. The associated data binds the
    /// namespace, so a wrap cannot be replayed as another namespace's.
    pub fn seal(key: &NamespaceKey, recipient: &PublicKey, namespace: &str) -> Wrap {
        let mut secret = Zeroizing::new([0u8; 32]);
        getrandom::fill(secret.as_mut()).expect("the OS gives randomness");
        let ephemeral_secret = x25519_dalek::StaticSecret::from(*secret);
        let ephemeral = x25519_dalek::PublicKey::from(&ephemeral_secret).to_bytes();
        let shared = ephemeral_secret.diffie_hellman(&recipient.x25519());
        let recipient = *recipient.as_bytes();
        let cipher = cipher(&wrap_key(shared.as_bytes(), &ephemeral, &recipient));
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&[0u8; 24]),
                Payload {
                    msg: key.0.as_ref(),
                    aad: namespace.as_bytes(),
                },
            )
            .expect("encryption of 32 bytes works");
        Wrap {
            recipient,
            ephemeral,
            sealed,
        }
    }

    /// The namespace key, if `holder` is the recipient.
    pub fn open(&self, holder: &KeyPair, namespace: &str) -> Result<NamespaceKey, CryptoError> {
        if holder.public().as_bytes() != &self.recipient {
            return Err(CryptoError::NoKey);
        }
        let shared = holder
            .x25519()
            .diffie_hellman(&x25519_dalek::PublicKey::from(self.ephemeral));
        let cipher = cipher(&wrap_key(
            shared.as_bytes(),
            &self.ephemeral,
            &self.recipient,
        ));
        let opened = Zeroizing::new(
            cipher
                .decrypt(
                    XNonce::from_slice(&[0u8; 24]),
                    Payload {
                        msg: &self.sealed,
                        aad: namespace.as_bytes(),
                    },
                )
                .map_err(|_| CryptoError::Undecryptable)?,
        );
        let bytes: [u8; 32] = opened
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Undecryptable)?;
        Ok(NamespaceKey(Zeroizing::new(bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_deduplicate_within_a_namespace_and_nowhere_else() {
        let ours = NamespaceKey::from_bytes([1; 32]);
        let theirs = NamespaceKey::from_bytes([2; 32]);
        let text = b"the minutes of the general assembly".repeat(100);
        let (first, blob) = ours.seal_chunk(&text);
        let (again, same_blob) = ours.seal_chunk(&text);
        assert_eq!(first, again);
        assert_eq!(blob, same_blob);
        let (other, other_blob) = theirs.seal_chunk(&text);
        assert_ne!(first.blob, other.blob);
        assert_ne!(blob, other_blob);
        assert!(!blob.windows(16).any(|window| window == &text[..16]));
        assert_eq!(first.open(&blob).unwrap(), text);
        let mut damaged = blob.clone();
        damaged[3] ^= 1;
        assert_eq!(first.open(&damaged), Err(CryptoError::WrongHash));
        assert_eq!(first.open(&other_blob), Err(CryptoError::WrongHash));
    }

    #[test]
    fn sealed_values_open_only_with_their_key() {
        let key = NamespaceKey::from_bytes([7; 32]);
        let sealed = key.seal(b"reports/2026.pdf");
        assert_ne!(sealed, key.seal(b"reports/2026.pdf"), "random nonces");
        assert_eq!(key.open(&sealed).unwrap(), b"reports/2026.pdf");
        let other = NamespaceKey::from_bytes([8; 32]);
        assert_eq!(other.open(&sealed), Err(CryptoError::Undecryptable));
        assert_eq!(key.open(&sealed[..10]), Err(CryptoError::Undecryptable));
        assert_ne!(key.file_id("a"), other.file_id("a"));
    }

    #[test]
    fn a_wrapped_key_opens_for_its_recipient_in_its_namespace_only() {
        let holder = KeyPair::from_seed(&[3; 32]);
        let stranger = KeyPair::from_seed(&[4; 32]);
        let key = NamespaceKey::generate();
        let wrap = Wrap::seal(&key, &holder.public(), "personal:x");
        let opened = wrap.open(&holder, "personal:x").unwrap();
        assert_eq!(*opened.0, *key.0);
        assert_eq!(
            wrap.open(&stranger, "personal:x").err(),
            Some(CryptoError::NoKey)
        );
        assert_eq!(
            wrap.open(&holder, "coop").err(),
            Some(CryptoError::Undecryptable)
        );
    }
}
