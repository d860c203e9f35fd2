//! The keystore: this device's secret keys, encrypted with age (scrypt
//! passphrase) in one file. It is written atomically (temp file, fsync, rename)
//! and never overwritten in place, so a crash leaves the old or the new file,
//! never half of one.

use std::{
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
};

use age::secrecy::SecretString;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::{Did, KeyPair};

/// Default scrypt cost (2^18, about a second on a laptop), as in the age tool.
pub const KDF_LOG_N_DEFAULT: u8 = 18;
/// The lowest cost accepted when creating a keystore (tests use it to stay fast).
pub const KDF_LOG_N_MIN: u8 = 10;
/// A keystore asking for more work than this is refused rather than computed.
pub const KDF_LOG_N_MAX: u8 = 22;
/// A keystore larger than this is not a keystore.
const FILE_SIZE_MAX_BYTES: u64 = 1 << 20;
const FORMAT_VERSION: u16 = 1;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeystoreError {
    #[error("no keystore at {path}")]
    NotFound { path: PathBuf },
    #[error("a keystore already exists at {path}")]
    AlreadyExists { path: PathBuf },
    #[error("wrong passphrase for the keystore at {path}")]
    WrongPassphrase { path: PathBuf },
    #[error("the keystore at {path} is corrupt or truncated: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    #[error("scrypt cost 2^{log_n} is outside {KDF_LOG_N_MIN}..={KDF_LOG_N_MAX}")]
    KdfCost { log_n: u8 },
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

/// One secret key held by this device, with the label the member gave it.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct StoredKey {
    pub label: String,
    seed: [u8; 32],
}

impl StoredKey {
    pub fn new(label: impl Into<String>, key: &KeyPair) -> StoredKey {
        StoredKey {
            label: label.into(),
            seed: *key.seed(),
        }
    }

    pub fn key_pair(&self) -> KeyPair {
        KeyPair::from_seed(&self.seed)
    }
}

/// What the keystore file holds once decrypted.
#[derive(Serialize, Deserialize)]
#[non_exhaustive]
pub struct KeystoreContents {
    version: u16,
    pub did: Did,
    /// Keys of this device; the first is the one it signs with.
    pub keys: Vec<StoredKey>,
}

impl std::fmt::Debug for KeystoreContents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let labels: Vec<&str> = self.keys.iter().map(|key| key.label.as_str()).collect();
        f.debug_struct("KeystoreContents")
            .field("did", &self.did)
            .field("keys", &labels)
            .finish()
    }
}

impl KeystoreContents {
    pub fn new(did: Did, keys: Vec<StoredKey>) -> KeystoreContents {
        KeystoreContents {
            version: FORMAT_VERSION,
            did,
            keys,
        }
    }

    /// The key this device signs with.
    pub fn signing_key(&self) -> Option<KeyPair> {
        self.keys.first().map(StoredKey::key_pair)
    }

    /// Every key held, in order.
    pub fn key_pairs(&self) -> Vec<KeyPair> {
        self.keys.iter().map(StoredKey::key_pair).collect()
    }
}

/// The keystore file on disk.
#[derive(Debug, Clone)]
pub struct Keystore {
    path: PathBuf,
}

impl Keystore {
    pub fn at(path: impl Into<PathBuf>) -> Keystore {
        Keystore { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    /// Writes a new keystore; refuses to replace an existing one.
    pub fn create(
        &self,
        contents: &KeystoreContents,
        passphrase: &str,
        kdf_log_n: u8,
    ) -> Result<(), KeystoreError> {
        if self.exists() {
            return Err(KeystoreError::AlreadyExists {
                path: self.path.clone(),
            });
        }
        self.write(contents, passphrase, kdf_log_n)
    }

    /// Replaces the keystore atomically (after a passphrase change or a new key).
    pub fn write(
        &self,
        contents: &KeystoreContents,
        passphrase: &str,
        kdf_log_n: u8,
    ) -> Result<(), KeystoreError> {
        if passphrase.is_empty() {
            return Err(KeystoreError::EmptyPassphrase);
        }
        if !(KDF_LOG_N_MIN..=KDF_LOG_N_MAX).contains(&kdf_log_n) {
            return Err(KeystoreError::KdfCost { log_n: kdf_log_n });
        }
        let plaintext = Zeroizing::new(
            postcard::to_allocvec(contents)
                .expect("serialising plain data into memory cannot fail"),
        );
        let mut recipient = age::scrypt::Recipient::new(SecretString::from(passphrase.to_owned()));
        recipient.set_work_factor(kdf_log_n);
        let ciphertext = age::encrypt(&recipient, &plaintext)
            .expect("encrypting to a passphrase recipient in memory cannot fail");
        self.write_atomically(&ciphertext)
    }

    fn write_atomically(&self, bytes: &[u8]) -> Result<(), KeystoreError> {
        let io_error = |action, source| KeystoreError::Io {
            action,
            path: self.path.clone(),
            source,
        };
        let temp = self.path.with_extension("tmp");
        let mut file = open_private(&temp).map_err(|e| io_error("create", e))?;
        file.write_all(bytes).map_err(|e| io_error("write", e))?;
        file.sync_all().map_err(|e| io_error("sync", e))?;
        fs::rename(&temp, &self.path).map_err(|e| io_error("rename into", e))?;
        if let Some(parent) = self.path.parent() {
            // Make the rename itself durable.
            if let Ok(dir) = fs::File::open(parent) {
                let _ = dir.sync_all();
            }
        }
        Ok(())
    }

    pub fn open(&self, passphrase: &str) -> Result<KeystoreContents, KeystoreError> {
        let corrupt = |reason: String| KeystoreError::Corrupt {
            path: self.path.clone(),
            reason,
        };
        let metadata = fs::metadata(&self.path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => KeystoreError::NotFound {
                path: self.path.clone(),
            },
            _ => KeystoreError::Io {
                action: "read",
                path: self.path.clone(),
                source,
            },
        })?;
        if metadata.len() > FILE_SIZE_MAX_BYTES {
            return Err(corrupt(format!("{} bytes is too large", metadata.len())));
        }
        let ciphertext = fs::read(&self.path).map_err(|source| KeystoreError::Io {
            action: "read",
            path: self.path.clone(),
            source,
        })?;
        let mut identity = age::scrypt::Identity::new(SecretString::from(passphrase.to_owned()));
        identity.set_max_work_factor(KDF_LOG_N_MAX);
        let plaintext = Zeroizing::new(age::decrypt(&identity, &ciphertext).map_err(|error| {
            match error {
                // The header parsed but the scrypt stanza did not unwrap the file
                // key: the passphrase is wrong. (A damaged payload surfaces as an
                // I/O error from the stream reader instead, so it reads as corrupt.)
                age::DecryptError::DecryptionFailed
                | age::DecryptError::NoMatchingKeys
                | age::DecryptError::KeyDecryptionFailed => KeystoreError::WrongPassphrase {
                    path: self.path.clone(),
                },
                other => corrupt(other.to_string()),
            }
        })?);
        let contents: KeystoreContents =
            postcard::from_bytes(&plaintext).map_err(|error| corrupt(error.to_string()))?;
        if contents.version != FORMAT_VERSION {
            return Err(corrupt(format!(
                "format version {} is not supported (expected {FORMAT_VERSION})",
                contents.version
            )));
        }
        if contents.keys.is_empty() {
            return Err(corrupt("it holds no key".to_owned()));
        }
        Ok(contents)
    }
}

#[cfg(unix)]
fn open_private(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> io::Result<fs::File> {
    fs::File::create(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (KeystoreContents, Did) {
        let key = KeyPair::from_seed(&[5; 32]);
        let did = Did::from_inception_key(key.public());
        (
            KeystoreContents::new(did, vec![StoredKey::new("laptop", &key)]),
            did,
        )
    }

    #[test]
    fn create_open_and_refuse_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let store = Keystore::at(dir.path().join("keystore.age"));
        let (contents, did) = sample();
        store
            .create(&contents, "correct horse", KDF_LOG_N_MIN)
            .unwrap();
        let opened = store.open("correct horse").unwrap();
        assert_eq!(opened.did, did);
        assert_eq!(opened.signing_key().unwrap().public(), did.inception_key());
        assert!(matches!(
            store.create(&contents, "other", KDF_LOG_N_MIN),
            Err(KeystoreError::AlreadyExists { .. })
        ));
        // The failed create changed nothing.
        assert_eq!(store.open("correct horse").unwrap().did, did);
    }

    #[test]
    fn wrong_passphrase_truncation_and_garbage_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keystore.age");
        let store = Keystore::at(&path);
        let (contents, _) = sample();
        store.create(&contents, "right", KDF_LOG_N_MIN).unwrap();
        let wrong = store.open("wrong");
        assert!(
            matches!(wrong, Err(KeystoreError::WrongPassphrase { .. })),
            "{wrong:?}"
        );

        let bytes = fs::read(&path).unwrap();
        for cut in [0, 10, bytes.len() / 2, bytes.len() - 1] {
            fs::write(&path, &bytes[..cut]).unwrap();
            let error = store.open("right").unwrap_err();
            assert!(
                matches!(error, KeystoreError::Corrupt { .. }),
                "cut at {cut}: {error}"
            );
        }
        fs::write(&path, b"not an age file at all").unwrap();
        assert!(matches!(
            store.open("right"),
            Err(KeystoreError::Corrupt { .. })
        ));
        assert!(matches!(
            Keystore::at(dir.path().join("missing")).open("right"),
            Err(KeystoreError::NotFound { .. })
        ));
    }

    #[test]
    fn weak_settings_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Keystore::at(dir.path().join("k"));
        let (contents, _) = sample();
        assert!(matches!(
            store.create(&contents, "", KDF_LOG_N_MIN),
            Err(KeystoreError::EmptyPassphrase)
        ));
        assert!(matches!(
            store.create(&contents, "x", 4),
            Err(KeystoreError::KdfCost { log_n: 4 })
        ));
        assert!(!store.exists());
    }
}

/// The weakest passphrase a new keystore accepts: zxcvbn's score 3 of 4
/// ("safely unguessable"), about 10^8 guesses or more. The keystore's
/// scrypt makes each guess cost ~1 s of a core, so a stolen keystore or
/// backup holds out for years; `a`, `password1` or a name do not.
pub const PASSPHRASE_SCORE_MIN: u8 = 3;

/// Refuses a passphrase too weak to protect a keystore that could be copied
/// (a backup, another local user), with what to do instead. `related` are
/// words an attacker would try first (the member's name, the co-op's).
pub fn check_new_passphrase(passphrase: &str, related: &[&str]) -> Result<(), String> {
    if passphrase.chars().count() < 8 {
        return Err("the passphrase is too short: use at least 8 characters; \
             four random words (like \"cactus lamp orbit wheel\") are strong and easy to type"
            .to_owned());
    }
    let estimate = zxcvbn::zxcvbn(passphrase, related);
    if u8::from(estimate.score()) >= PASSPHRASE_SCORE_MIN {
        return Ok(());
    }
    let mut message = "the passphrase is too easy to guess".to_owned();
    if let Some(warning) = estimate.feedback().and_then(|feedback| feedback.warning()) {
        message.push_str(&format!(" ({warning})"));
    }
    message.push_str(
        "; four random words (like \"cactus lamp orbit wheel\") are strong and easy to type",
    );
    Err(message)
}

#[cfg(test)]
mod passphrase_tests {
    use super::*;

    #[test]
    fn weak_passphrases_are_refused_with_a_way_forward() {
        for weak in [
            "a",
            "password",
            "password1",
            "ana12345",
            "qwertyuiop",
            "aaaaaaaaaaaa",
        ] {
            let refused = check_new_passphrase(weak, &["ana"]).unwrap_err();
            assert!(refused.contains("four random words"), "{weak}: {refused}");
        }
        // The member's own name is among the first guesses.
        assert!(check_new_passphrase("AnaLopez2026", &["AnaLopez"]).is_err());
        for strong in [
            "correct horse battery staple",
            "cactus lamp orbit wheel",
            "t7#Vq9!mZ2pL",
        ] {
            assert_eq!(check_new_passphrase(strong, &["ana"]), Ok(()), "{strong}");
        }
    }
}
