use std::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    #[error("public key is {found} bytes, expected 32")]
    PublicKeyLength { found: usize },
    #[error("public key is not base58 text")]
    PublicKeyBase58,
    #[error("public key is not a valid Ed25519 point")]
    PublicKeyInvalid,
    #[error("signature is {found} bytes, expected 64")]
    SignatureLength { found: usize },
    #[error("signature does not verify")]
    SignatureInvalid,
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
}

/// An Ed25519 public key (a device key, a paper key, or an identity's inception key).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(VerifyingKey);

impl Ord for PublicKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl PartialOrd for PublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Decompressing a point costs about a fifth of a signature check, and a
/// co-op has few signers, so each thread remembers the keys it has seen.
const DECOMPRESSED_CACHE_MAX: usize = 4096;

thread_local! {
    static DECOMPRESSED: std::cell::RefCell<std::collections::HashMap<[u8; 32], VerifyingKey>> =
        std::cell::RefCell::default();
}

impl PublicKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<PublicKey, KeyError> {
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| KeyError::PublicKeyLength { found: bytes.len() })?;
        DECOMPRESSED.with_borrow_mut(|cache| {
            if let Some(key) = cache.get(&array) {
                return Ok(PublicKey(*key));
            }
            let key = VerifyingKey::from_bytes(&array).map_err(|_| KeyError::PublicKeyInvalid)?;
            if cache.len() >= DECOMPRESSED_CACHE_MAX {
                cache.clear();
            }
            cache.insert(array, key);
            Ok(PublicKey(key))
        })
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.0
    }

    /// Strict verification: rejects small-order keys and non-canonical signatures,
    /// so one message has exactly one valid signature per key.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), KeyError> {
        self.0
            .verify_strict(message, &signature.0)
            .map_err(|_| KeyError::SignatureInvalid)
    }

    /// The first eight base58 characters, for logs and human display.
    pub fn short(&self) -> String {
        bs58::encode(self.as_bytes()).into_string()[..8].to_owned()
    }

    /// The X25519 public key for encryption to this key's holder (birational map).
    pub fn x25519(&self) -> x25519_dalek::PublicKey {
        x25519_dalek::PublicKey::from(self.0.to_montgomery().to_bytes())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PublicKey(")?;
        crate::write_base58(self.as_bytes(), f)?;
        f.write_str(")")
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::write_base58(self.as_bytes(), f)
    }
}

/// Parses the base58 form that `Display` prints.
impl std::str::FromStr for PublicKey {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<PublicKey, KeyError> {
        let bytes = bs58::decode(text.trim())
            .into_vec()
            .map_err(|_| KeyError::PublicKeyBase58)?;
        PublicKey::from_bytes(&bytes)
    }
}

/// In binary formats (postcard: events, the wire) 32 bytes; in
/// human-readable ones (JSON files and APIs) the base58 text.
impl Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            self.as_bytes().serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes = if deserializer.is_human_readable() {
            readable_bytes(deserializer, |text| {
                text.parse::<PublicKey>().map(|key| *key.as_bytes())
            })?
        } else {
            <[u8; 32]>::deserialize(deserializer)?
        };
        PublicKey::from_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}

/// 32 bytes from a human-readable format: the text form (`parse`), or the
/// array of numbers files written before the text form used.
pub(crate) fn readable_bytes<'de, D: serde::Deserializer<'de>, E: fmt::Display>(
    deserializer: D,
    parse: fn(&str) -> Result<[u8; 32], E>,
) -> Result<[u8; 32], D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        Text(String),
        Bytes([u8; 32]),
    }
    match Form::deserialize(deserializer)? {
        Form::Text(text) => parse(&text).map_err(serde::de::Error::custom),
        Form::Bytes(bytes) => Ok(bytes),
    }
}

/// An Ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(ed25519_dalek::Signature);

impl Signature {
    pub fn from_bytes(bytes: &[u8]) -> Result<Signature, KeyError> {
        let array: [u8; 64] = bytes
            .try_into()
            .map_err(|_| KeyError::SignatureLength { found: bytes.len() })?;
        Ok(Signature(ed25519_dalek::Signature::from_bytes(&array)))
    }

    pub fn to_bytes(&self) -> [u8; 64] {
        self.0.to_bytes()
    }

    pub fn inner(&self) -> &ed25519_dalek::Signature {
        &self.0
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex: String = self.to_bytes()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        write!(f, "Signature({hex}…)")
    }
}

impl Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.to_bytes())
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Signature;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 signature bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Signature, E> {
                Signature::from_bytes(v).map_err(E::custom)
            }
            fn visit_borrowed_bytes<E: serde::de::Error>(
                self,
                v: &'de [u8],
            ) -> Result<Signature, E> {
                self.visit_bytes(v)
            }
        }
        deserializer.deserialize_bytes(Visitor)
    }
}

/// A secret Ed25519 signing key with its public half. The secret is zeroed on drop.
#[derive(Clone)]
pub struct KeyPair(SigningKey);

impl KeyPair {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Result<KeyPair, KeyError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(|error| KeyError::Random(error.to_string()))?;
        Ok(KeyPair::from_seed(&seed))
    }

    /// A key from its 32-byte secret seed (deterministic; used by tests and paper keys).
    pub fn from_seed(seed: &[u8; 32]) -> KeyPair {
        KeyPair(SigningKey::from_bytes(seed))
    }

    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message))
    }

    /// The age identity that opens this member's backups: an X25519 key
    /// derived from the seed for backups alone (so a backup can be made by
    /// a running node without the passphrase, and opened with the keystore
    /// it carries, or with a paper key).
    pub fn backup_identity(&self) -> age::x25519::Identity {
        use sha2::Digest;
        let digest = sha2::Sha256::new()
            .chain_update(b"icn-backup-v1:")
            .chain_update(&self.seed()[..])
            .finalize();
        let mut secret = Zeroizing::new([0u8; 32]);
        secret.copy_from_slice(&digest);
        let hrp = bech32::Hrp::parse("age-secret-key-").expect("a valid prefix");
        let encoded = Zeroizing::new(
            bech32::encode::<bech32::Bech32>(hrp, secret.as_ref())
                .expect("32 bytes encode")
                .to_uppercase(),
        );
        encoded
            .parse()
            .expect("an age identity in age's own encoding")
    }

    /// The X25519 secret for decrypting what was encrypted to [`PublicKey::x25519`].
    /// Derived from the same seed, so there is nothing extra to back up.
    pub fn x25519(&self) -> x25519_dalek::StaticSecret {
        x25519_dalek::StaticSecret::from(self.0.to_scalar_bytes())
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyPair({:?}, secret: <redacted>)", self.public())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_round_trip() {
        let key = KeyPair::from_seed(&[7; 32]);
        let signature = key.sign(b"hello");
        key.public().verify(b"hello", &signature).unwrap();
        assert_eq!(
            key.public().verify(b"hellO", &signature),
            Err(KeyError::SignatureInvalid)
        );
    }

    #[test]
    fn public_keys_round_trip_through_base58() {
        let key = KeyPair::from_seed(&[4; 32]).public();
        assert_eq!(key.to_string().parse::<PublicKey>().unwrap(), key);
        assert_eq!("0OIl".parse::<PublicKey>(), Err(KeyError::PublicKeyBase58));
        assert_eq!(
            "abc".parse::<PublicKey>(),
            Err(KeyError::PublicKeyLength { found: 3 })
        );
    }

    #[test]
    fn x25519_halves_agree() {
        let alice = KeyPair::from_seed(&[1; 32]);
        let bob = KeyPair::from_seed(&[2; 32]);
        let ab = alice.x25519().diffie_hellman(&bob.public().x25519());
        let ba = bob.x25519().diffie_hellman(&alice.public().x25519());
        assert_eq!(ab.as_bytes(), ba.as_bytes());
    }

    #[test]
    fn malformed_public_keys_are_errors() {
        assert_eq!(
            PublicKey::from_bytes(&[0; 31]),
            Err(KeyError::PublicKeyLength { found: 31 })
        );
        assert_eq!(
            Signature::from_bytes(&[0; 10]),
            Err(KeyError::SignatureLength { found: 10 })
        );
    }
}
