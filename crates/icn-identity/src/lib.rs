//! Identity primitives: decentralised identifiers, signing keys, paper keys and
//! the age-encrypted keystore.
//!
//! A member's identity is `did:icn:<base58 of the inception Ed25519 public key>`.
//! The DID never changes; the keys that may sign for it (device keys, a paper
//! key) are added and revoked by the identity's own events in the event log,
//! which `icn-kernel` folds into a key state.

mod did;
mod keys;
mod keystore;
mod paper;

pub use did::{Did, DidError};
pub use keys::{KeyError, KeyPair, PublicKey, Signature};
pub use keystore::{
    KDF_LOG_N_DEFAULT, KDF_LOG_N_MAX, KDF_LOG_N_MIN, Keystore, KeystoreContents, KeystoreError,
    PASSPHRASE_SCORE_MIN, StoredKey, check_new_passphrase,
};
pub use paper::{PaperKeyError, paper_key_decode, paper_key_encode};

/// The base58 (Bitcoin alphabet) form of 32 bytes, as `bs58` writes it,
/// written without allocating: DIDs and keys are formatted for every view
/// row key, and `bs58`'s general encoder was a quarter of what a start of
/// the node spent.
pub(crate) fn write_base58(bytes: &[u8; 32], f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    let mut out = [0u8; 44];
    let len = five8::encode_32(bytes, &mut out) as usize;
    f.write_str(std::str::from_utf8(&out[..len]).expect("base58 is ASCII"))
}

#[cfg(test)]
mod base58_tests {
    struct Shown([u8; 32]);

    impl std::fmt::Display for Shown {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            super::write_base58(&self.0, f)
        }
    }

    #[test]
    fn base58_is_written_as_bs58_writes_it() {
        let mut cases = vec![[0u8; 32], [0xff; 32], [1; 32]];
        let mut leading = [7u8; 32];
        leading[..3].fill(0);
        cases.push(leading);
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..200 {
            let mut bytes = [0u8; 32];
            for byte in &mut bytes {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *byte = state as u8;
            }
            cases.push(bytes);
        }
        for bytes in cases {
            assert_eq!(Shown(bytes).to_string(), bs58::encode(bytes).into_string());
        }
    }
}
