//! Paper keys: a secret key printed for a drawer, typed back in after a loss.
//!
//! Format: `icn-paper-` then base58 of (32-byte seed ‖ first 4 bytes of
//! SHA-256("icn-paper-key-v1" ‖ seed)), in groups of five characters joined by
//! dashes. The checksum catches a mistyped or missing character before a wrong
//! key is ever used.

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::KeyPair;

const PREFIX: &str = "icn-paper-";
const GROUP_LEN: usize = 5;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PaperKeyError {
    #[error("a paper key starts with `{PREFIX}`")]
    Prefix,
    #[error("the paper key has a character that is not base58 (0, O, I and l are never used)")]
    Base58,
    #[error("the paper key has the wrong length: a character is missing or extra")]
    Length,
    #[error("the paper key's checksum does not match: a character was mistyped")]
    Checksum,
}

fn checksum(seed: &[u8; 32]) -> [u8; 4] {
    let digest = Sha256::new()
        .chain_update(b"icn-paper-key-v1")
        .chain_update(seed)
        .finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

pub fn paper_key_encode(key: &KeyPair) -> Zeroizing<String> {
    let seed = key.seed();
    let mut bytes = Zeroizing::new(Vec::with_capacity(36));
    bytes.extend_from_slice(seed.as_ref());
    bytes.extend_from_slice(&checksum(&seed));
    let encoded = Zeroizing::new(bs58::encode(bytes.as_slice()).into_string());
    let groups: Vec<&str> = encoded
        .as_bytes()
        .chunks(GROUP_LEN)
        .map(|chunk| std::str::from_utf8(chunk).expect("base58 output is ASCII"))
        .collect();
    Zeroizing::new(format!("{PREFIX}{}", groups.join("-")))
}

/// Parses a paper key; spaces, dashes and case of the prefix are forgiven.
pub fn paper_key_decode(text: &str) -> Result<KeyPair, PaperKeyError> {
    let trimmed = text.trim();
    let body = trimmed
        .get(..PREFIX.len())
        .filter(|prefix| prefix.eq_ignore_ascii_case(PREFIX))
        .map(|_| &trimmed[PREFIX.len()..])
        .ok_or(PaperKeyError::Prefix)?;
    let compact: Zeroizing<String> = Zeroizing::new(
        body.chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect(),
    );
    let bytes = Zeroizing::new(
        bs58::decode(compact.as_str())
            .into_vec()
            .map_err(|_| PaperKeyError::Base58)?,
    );
    if bytes.len() != 36 {
        return Err(PaperKeyError::Length);
    }
    let mut seed = Zeroizing::new([0u8; 32]);
    seed.copy_from_slice(&bytes[..32]);
    if checksum(&seed) != bytes[32..] {
        return Err(PaperKeyError::Checksum);
    }
    Ok(KeyPair::from_seed(&seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_typo_detection() {
        let key = KeyPair::from_seed(&[9; 32]);
        let text = paper_key_encode(&key);
        assert!(text.starts_with(PREFIX));
        let back = paper_key_decode(&text).unwrap();
        assert_eq!(back.public(), key.public());
        // Written with spaces instead of dashes, still fine.
        assert_eq!(
            paper_key_decode(
                &text
                    .replace('-', " ")
                    .replacen("icn paper ", "icn-paper-", 1)
            )
            .unwrap()
            .public(),
            key.public()
        );
        // One changed character is caught.
        let mut typo = text.to_string();
        let last = typo.pop().unwrap();
        typo.push(if last == '2' { '3' } else { '2' });
        assert!(matches!(
            paper_key_decode(&typo),
            Err(PaperKeyError::Checksum | PaperKeyError::Length)
        ));
        assert!(matches!(
            paper_key_decode("hello"),
            Err(PaperKeyError::Prefix)
        ));
    }
}
