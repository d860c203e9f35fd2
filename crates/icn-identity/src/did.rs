use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::PublicKey;

const PREFIX: &str = "did:icn:";

/// A member's decentralised identifier: `did:icn:<base58 inception public key>`.
///
/// **Invariant**: the inner key is a valid Ed25519 point; the only ways to make a
/// `Did` are [`Did::from_inception_key`] and parsing, which both check it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Did([u8; 32]);

/// In binary formats (postcard: events, the wire) 32 bytes; in
/// human-readable ones (JSON files and APIs) `did:icn:…`.
impl Serialize for Did {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Did {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes = if deserializer.is_human_readable() {
            crate::keys::readable_bytes(deserializer, |text| text.parse::<Did>().map(|did| did.0))?
        } else {
            <[u8; 32]>::deserialize(deserializer)?
        };
        PublicKey::from_bytes(&bytes)
            .map(Did::from_inception_key)
            .map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DidError {
    #[error("`{input}` does not start with `did:icn:`")]
    Prefix { input: String },
    #[error("`{input}` is not valid base58 after `did:icn:`")]
    Base58 { input: String },
    #[error("`{input}` encodes {found} bytes, a DID key is 32 bytes")]
    Length { input: String, found: usize },
    #[error("`{input}` does not encode a valid Ed25519 public key")]
    Key { input: String },
}

impl Did {
    pub fn from_inception_key(key: PublicKey) -> Did {
        Did(*key.as_bytes())
    }

    /// The key the identity was created with. It stays authorised only until the
    /// identity's own events revoke it; the DID itself never changes.
    pub fn inception_key(&self) -> PublicKey {
        PublicKey::from_bytes(&self.0).expect("a Did holds a key that was valid when it was made")
    }

    /// `did:icn:` followed by the first eight characters, for humans and logs.
    pub fn short(&self) -> String {
        format!("{PREFIX}{}…", &bs58::encode(self.0).into_string()[..8])
    }
}

impl fmt::Display for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PREFIX)?;
        crate::write_base58(&self.0, f)
    }
}

impl fmt::Debug for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl FromStr for Did {
    type Err = DidError;

    fn from_str(input: &str) -> Result<Did, DidError> {
        let owned = || input.to_owned();
        let encoded = input
            .strip_prefix(PREFIX)
            .ok_or_else(|| DidError::Prefix { input: owned() })?;
        let bytes = bs58::decode(encoded)
            .into_vec()
            .map_err(|_| DidError::Base58 { input: owned() })?;
        if bytes.len() != 32 {
            return Err(DidError::Length {
                input: owned(),
                found: bytes.len(),
            });
        }
        let key = PublicKey::from_bytes(&bytes).map_err(|_| DidError::Key { input: owned() })?;
        Ok(Did::from_inception_key(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyPair;

    #[test]
    fn display_and_parse_round_trip() {
        let did = Did::from_inception_key(KeyPair::from_seed(&[3; 32]).public());
        let text = did.to_string();
        assert!(text.starts_with("did:icn:"));
        assert_eq!(text.parse::<Did>().unwrap(), did);
    }

    /// JSON shows the text form (and still reads the arrays of numbers
    /// older files hold); postcard keeps the 32 bytes events are signed over.
    #[test]
    fn json_is_text_and_postcard_is_bytes() {
        let did = Did::from_inception_key(KeyPair::from_seed(&[3; 32]).public());
        let json = serde_json::to_string(&did).unwrap();
        assert_eq!(json, format!("\"{did}\""));
        assert_eq!(serde_json::from_str::<Did>(&json).unwrap(), did);
        let old = serde_json::to_string(&did.0).unwrap();
        assert_eq!(serde_json::from_str::<Did>(&old).unwrap(), did);
        assert!(serde_json::from_str::<Did>("\"did:icn:abc\"").is_err());
        let bytes = postcard::to_allocvec(&did).unwrap();
        assert_eq!(bytes, did.0.to_vec());
        assert_eq!(postcard::from_bytes::<Did>(&bytes).unwrap(), did);
        let key = KeyPair::from_seed(&[3; 32]).public();
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(json, format!("\"{key}\""));
        assert_eq!(serde_json::from_str::<PublicKey>(&json).unwrap(), key);
    }

    #[test]
    fn malformed_dids_name_the_problem() {
        let check = |input: &str, expected: &str| {
            let error = input.parse::<Did>().unwrap_err().to_string();
            assert!(error.contains(expected), "{input}: {error}");
        };
        check("did:key:abc", "does not start with `did:icn:`");
        check("did:icn:0OIl", "not valid base58");
        check("did:icn:abc", "encodes 3 bytes");
        check("", "does not start");
    }

    proptest::proptest! {
        #[test]
        fn parsing_arbitrary_text_never_panics(text in ".{0,80}") {
            let _ = text.parse::<Did>();
            let _ = format!("did:icn:{text}").parse::<Did>();
        }
    }
}
