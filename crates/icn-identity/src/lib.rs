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
