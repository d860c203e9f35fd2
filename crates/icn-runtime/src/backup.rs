//! Backups: one file holds everything a member needs to get their node
//! back on a new machine, taken while `icnd` runs.
//!
//! ```text
//! "ICNBAK1\n"
//! u32 BE length, keystore.age     (already encrypted with the passphrase)
//! u32 BE length, identity.json    (public: DID and device key)
//! the rest: age, to the member's backup key, of a snapshot of icn.db
//! ```
//!
//! The database part is encrypted to an X25519 key derived from the
//! member's signing key ([`icn_identity::KeyPair::backup_identity`]), so a
//! running node makes backups without the passphrase, and restoring needs
//! only the passphrase of the keystore inside. age authenticates every
//! chunk: a truncated or altered file is refused, never half restored.
//!
//! Restoring writes into an empty data directory only, into temporary
//! names renamed at the end, and then opens the node, which replays the
//! log and checks every stored view against the replay.

use std::{
    io::{Read, Write},
    path::{Path, PathBuf},
};

use crate::{DataDir, node::NodeError};

const MAGIC: &[u8] = b"ICNBAK1\n";
/// Bounds on the parts before the database, against a damaged length.
const KEYSTORE_MAX_BYTES: u32 = 1 << 20;
const IDENTITY_MAX_BYTES: u32 = 64 << 10;
/// Scheduled backups' file names: `icn-backup-YYYY-MM-DD.icnbak`.
pub const SCHEDULED_PREFIX: &str = "icn-backup-";
pub const EXTENSION: &str = "icnbak";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{path} is not an ICN backup (or its start is damaged)")]
    NotABackup { path: PathBuf },
    #[error("the backup {path} is damaged or truncated: {reason}")]
    Damaged { path: PathBuf, reason: String },
    #[error(
        "the backup's database was not encrypted to the keys in its keystore (was it put together from two backups?)"
    )]
    WrongKey,
    #[error("{path} is not empty: restore into a new data directory (it holds {what})")]
    NotEmpty { path: PathBuf, what: String },
    #[error(
        "wrong passphrase: this backup opens with the passphrase its member had when it was made"
    )]
    WrongPassphrase,
    #[error(
        "this backup was made by a newer release of ICN (database schema {found}): restore it with that release or a later one"
    )]
    TooNew { found: u32 },
    #[error(transparent)]
    Keystore(#[from] icn_identity::KeystoreError),
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl BackupError {
    fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BackupError {
        let path = path.to_owned();
        move |source| BackupError::Io {
            action,
            path,
            source,
        }
    }
}

impl From<BackupError> for NodeError {
    fn from(error: BackupError) -> NodeError {
        match error {
            // The machine's fault, not the file's: logged, and a 500.
            BackupError::Io { .. } => NodeError::Identity(error.to_string()),
            BackupError::NotEmpty { .. } => NodeError::Conflict(error.to_string()),
            other => NodeError::BadInput(other.to_string()),
        }
    }
}

fn part(bytes: &[u8]) -> Vec<u8> {
    let mut out = (bytes.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// Writes a backup of `dir` to `to` (through a temporary file renamed at
/// the end, so `to` is whole or absent), encrypting the database snapshot
/// at `snapshot` to `recipients`.
pub(crate) fn write(
    dir: &DataDir,
    snapshot: &Path,
    recipients: &[age::x25519::Recipient],
    to: &Path,
) -> Result<u64, BackupError> {
    let keystore_path = dir.keystore().path().to_owned();
    let keystore =
        std::fs::read(&keystore_path).map_err(BackupError::io("read", &keystore_path))?;
    let identity_path = dir.identity_file();
    let identity =
        std::fs::read(&identity_path).map_err(BackupError::io("read", &identity_path))?;
    let partial = to.with_extension("partial");
    let result = (|| {
        // A backup holds the keystore: its owner's alone, wherever it goes.
        let mut file = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&partial)
                .map_err(BackupError::io("create", &partial))?
        };
        std::fs::set_permissions(
            &partial,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .map_err(BackupError::io("protect", &partial))?;
        file.write_all(MAGIC)
            .and_then(|()| file.write_all(&part(&keystore)))
            .and_then(|()| file.write_all(&part(&identity)))
            .map_err(BackupError::io("write", &partial))?;
        let encryptor = age::Encryptor::with_recipients(
            recipients
                .iter()
                .map(|recipient| recipient as &dyn age::Recipient),
        )
        .map_err(|error| BackupError::Damaged {
            path: partial.clone(),
            reason: error.to_string(),
        })?;
        let mut writer = encryptor
            .wrap_output(&mut file)
            .map_err(BackupError::io("write", &partial))?;
        let mut database =
            std::fs::File::open(snapshot).map_err(BackupError::io("read", snapshot))?;
        std::io::copy(&mut database, &mut writer).map_err(BackupError::io("write", &partial))?;
        writer
            .finish()
            .map_err(BackupError::io("write", &partial))?;
        file.sync_all().map_err(BackupError::io("sync", &partial))?;
        let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
        std::fs::rename(&partial, to).map_err(BackupError::io("rename into", to))?;
        Ok(bytes)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// What a backup file holds before its database.
struct Parts {
    keystore: Vec<u8>,
    identity: Vec<u8>,
    /// Offset of the encrypted database.
    database_at: usize,
}

fn parts(path: &Path, bytes: &[u8]) -> Result<Parts, BackupError> {
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| BackupError::NotABackup {
            path: path.to_owned(),
        })?;
    let damaged = |reason: &str| BackupError::Damaged {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let take = |at: usize, max: u32, what: &str| -> Result<(Vec<u8>, usize), BackupError> {
        let length = rest
            .get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| damaged(&format!("it ends before the {what}")))?;
        if length > max {
            return Err(damaged(&format!("the {what} would be {length} bytes")));
        }
        let end = at + 4 + length as usize;
        let body = rest
            .get(at + 4..end)
            .ok_or_else(|| damaged(&format!("it ends inside the {what}")))?;
        Ok((body.to_vec(), end))
    };
    let (keystore, at) = take(0, KEYSTORE_MAX_BYTES, "keystore")?;
    let (identity, at) = take(at, IDENTITY_MAX_BYTES, "identity")?;
    Ok(Parts {
        keystore,
        identity,
        database_at: MAGIC.len() + at,
    })
}

/// Whose backup the file at `path` is, from its public part (no
/// passphrase needed): checks the start of the file, not the database.
pub fn whose(path: &Path) -> Result<crate::layout::PublicIdentity, BackupError> {
    let head_max = MAGIC.len() + 8 + (KEYSTORE_MAX_BYTES + IDENTITY_MAX_BYTES) as usize;
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(head_max as u64).read_to_end(&mut head))
        .map_err(BackupError::io("read", path))?;
    let parts = parts(path, &head)?;
    serde_json::from_slice(&parts.identity).map_err(|error| BackupError::Damaged {
        path: path.to_owned(),
        reason: format!("its identity: {error}"),
    })
}

/// What a data directory already holds, if anything a restore would replace.
fn occupied(dir: &DataDir) -> Option<String> {
    let held: Vec<&str> = [
        ("keystore.age", dir.keystore().path().to_owned()),
        ("identity.json", dir.identity_file()),
        ("icn.db", dir.database()),
    ]
    .into_iter()
    .filter(|(_, path)| path.exists())
    .map(|(name, _)| name)
    .collect();
    (!held.is_empty()).then(|| held.join(", "))
}

/// Restores the backup at `from` into the empty data directory `dir`,
/// opening its keystore with `passphrase`.
///
/// With `wait_for_peers` the restored node signs nothing until a sync round
/// with a member's node has completed ([`crate::node::RESTORED_MARKER`]):
/// the lost copy may have signed after the backup. Without it (a co-op with
/// no other node to ask), it signs at once.
pub fn restore(
    from: &Path,
    dir: &DataDir,
    passphrase: &str,
    wait_for_peers: bool,
) -> Result<(), BackupError> {
    if let Some(what) = occupied(dir) {
        return Err(BackupError::NotEmpty {
            path: dir.root().to_owned(),
            what,
        });
    }
    std::fs::create_dir_all(dir.root()).map_err(BackupError::io("create", dir.root()))?;
    let staged = Staged::new(from, dir, passphrase)?;
    let database = staged.database.clone();
    staged.put_in_place(dir, wait_for_peers, |into| {
        std::fs::rename(&database, into).map_err(BackupError::io("rename", &database))
    })?;
    Ok(())
}

/// A backup decrypted and authenticated into temporary files beside the
/// data directory's own, not yet in place. Dropped, it removes them.
pub struct Staged {
    keystore: PathBuf,
    database: PathBuf,
    identity: Vec<u8>,
    /// The keys of the backed-up keystore, open.
    pub keys: Vec<icn_identity::KeyPair>,
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.keystore);
        let _ = std::fs::remove_file(&self.database);
    }
}

impl Staged {
    /// Reads the backup at `from`, opens its keystore with `passphrase`,
    /// and decrypts its database next to `dir`'s.
    pub fn new(from: &Path, dir: &DataDir, passphrase: &str) -> Result<Staged, BackupError> {
        let bytes = std::fs::read(from).map_err(BackupError::io("read", from))?;
        let parts = parts(from, &bytes)?;
        // The keystore first, under a temporary name, to open it.
        let mut staged = Staged {
            keystore: dir.keystore().path().with_extension("restoring"),
            database: dir.database().with_extension("restoring"),
            identity: parts.identity,
            keys: Vec::new(),
        };
        std::fs::write(&staged.keystore, &parts.keystore)
            .map_err(BackupError::io("write", &staged.keystore))?;
        let contents = icn_identity::Keystore::at(&staged.keystore)
            .open(passphrase)
            .map_err(|error| match error {
                icn_identity::KeystoreError::WrongPassphrase { .. } => BackupError::WrongPassphrase,
                other => BackupError::Keystore(other),
            })?;
        staged.keys = contents.key_pairs();
        let identities: Vec<age::x25519::Identity> = staged
            .keys
            .iter()
            .map(icn_identity::KeyPair::backup_identity)
            .collect();
        let damaged = |reason: String| BackupError::Damaged {
            path: from.to_owned(),
            reason,
        };
        let decryptor = age::Decryptor::new_buffered(&bytes[parts.database_at..])
            .map_err(|error| damaged(error.to_string()))?;
        let mut reader = decryptor
            .decrypt(
                identities
                    .iter()
                    .map(|identity| identity as &dyn age::Identity),
            )
            .map_err(|error| match error {
                age::DecryptError::NoMatchingKeys => BackupError::WrongKey,
                other => damaged(other.to_string()),
            })?;
        let mut database = std::fs::File::create(&staged.database)
            .map_err(BackupError::io("create", &staged.database))?;
        let mut buffer = vec![0u8; 64 << 10];
        loop {
            let read = reader
                .read(&mut buffer)
                .map_err(|error| damaged(format!("the database part: {error}")))?;
            if read == 0 {
                break;
            }
            database
                .write_all(&buffer[..read])
                .map_err(BackupError::io("write", &staged.database))?;
        }
        database
            .sync_all()
            .map_err(BackupError::io("sync", &staged.database))?;
        // Whole, and a schema this release reads, before anything in place
        // is touched.
        icn_store::Store::check_snapshot(&staged.database).map_err(|error| match error {
            icn_store::StoreError::TooNew { found, .. } => BackupError::TooNew { found },
            other => damaged(format!("its database: {other}")),
        })?;
        Ok(staged)
    }

    /// The decrypted database, for `install` to put in place.
    pub fn database(&self) -> &Path {
        &self.database
    }

    /// Puts everything in place: the database by `install` (given where it
    /// goes), then `identity.json` and the waiting marker, then the
    /// keystore last, so that a directory with a keystore is a whole
    /// restore. On failure, what it wrote besides the database is removed.
    /// Returns the keys.
    pub fn put_in_place(
        mut self,
        dir: &DataDir,
        wait_for_peers: bool,
        install: impl FnOnce(&Path) -> Result<(), BackupError>,
    ) -> Result<Vec<icn_identity::KeyPair>, BackupError> {
        install(&dir.database())?;
        let identity_path = dir.identity_file();
        let marker = dir.root().join(crate::node::RESTORED_MARKER);
        let keystore_path = dir.keystore().path().to_owned();
        let result = (|| {
            std::fs::write(&identity_path, &self.identity)
                .map_err(BackupError::io("write", &identity_path))?;
            if wait_for_peers {
                std::fs::write(&marker, b"").map_err(BackupError::io("write", &marker))?;
            }
            std::fs::rename(&self.keystore, &keystore_path)
                .map_err(BackupError::io("rename", &self.keystore))
        })();
        if let Err(error) = result {
            let _ = std::fs::remove_file(&identity_path);
            let _ = std::fs::remove_file(&marker);
            return Err(error);
        }
        Ok(std::mem::take(&mut self.keys))
    }
}

/// Which scheduled backups to keep, given their dates (`YYYY-MM-DD`, any
/// order): the 7 newest days, and the newest of each of the 4 weeks before
/// them. Returns the dates to delete.
pub fn to_prune(dates: &[String]) -> Vec<String> {
    let mut days: Vec<(u64, &String)> = dates
        .iter()
        .filter_map(|date| icn_kernel::calendar::parse_date(date).map(|ms| (ms / 86_400_000, date)))
        .collect();
    days.sort();
    days.reverse();
    let mut keep = std::collections::BTreeSet::new();
    for (_, date) in days.iter().take(7) {
        keep.insert((*date).clone());
    }
    let mut weeks = std::collections::BTreeSet::new();
    for (day, date) in days.iter().skip(7) {
        // Weeks counted from the epoch (a Thursday); any fixed split will do.
        if weeks.len() < 4 && weeks.insert(day / 7) {
            keep.insert((*date).clone());
        }
    }
    days.iter()
        .map(|(_, date)| (*date).clone())
        .filter(|date| !keep.contains(date))
        .collect()
}

/// A backup [`crate::Node::backup_to`] wrote.
#[derive(Debug, Clone)]
pub struct Written {
    pub path: PathBuf,
    pub bytes: u64,
    /// Events that count in it, the genesis included.
    pub events: u64,
}

impl crate::Node {
    /// Writes a backup to `to` while the node runs: a consistent snapshot
    /// of the database, encrypted to this member's backup key, with the
    /// keystore and identity beside it.
    pub fn backup_to(&self, to: &Path) -> Result<Written, NodeError> {
        let seed = self.network_seed().ok_or(NodeError::KeystoreLocked)?;
        let recipient = icn_identity::KeyPair::from_seed(&seed)
            .backup_identity()
            .to_public();
        let snapshot = self.data_dir().root().join("icn.db.snapshot");
        let _ = std::fs::remove_file(&snapshot);
        self.store().snapshot_to(&snapshot)?;
        let written = write(self.data_dir(), &snapshot, &[recipient], to);
        let _ = std::fs::remove_file(&snapshot);
        Ok(Written {
            path: to.to_owned(),
            bytes: written?,
            events: self.log().map_or(0, |log| log.counted_len() as u64),
        })
    }

    /// Today's scheduled backup in `dir`, unless it exists; then drops the
    /// ones [`to_prune`] names. Returns the new backup's path.
    pub fn scheduled_backup(
        &self,
        dir: &Path,
        now: icn_kernel::Timestamp,
    ) -> Result<Option<PathBuf>, NodeError> {
        if self.log().is_none() || self.network_seed().is_none() {
            return Ok(None);
        }
        std::fs::create_dir_all(dir).map_err(BackupError::io("create", dir))?;
        crate::layout::make_private(dir).map_err(BackupError::io("protect", dir))?;
        let date = &icn_kernel::calendar::format_utc(now.as_millis())[..10];
        let path = dir.join(format!("{SCHEDULED_PREFIX}{date}.{EXTENSION}"));
        if path.exists() {
            return Ok(None);
        }
        self.backup_to(&path)?;
        let dates: Vec<String> = std::fs::read_dir(dir)
            .map_err(BackupError::io("list", dir))?
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().into_string().ok()?;
                let date = name
                    .strip_prefix(SCHEDULED_PREFIX)?
                    .strip_suffix(&format!(".{EXTENSION}"))?;
                Some(date.to_owned())
            })
            .collect();
        for date in to_prune(&dates) {
            let old = dir.join(format!("{SCHEDULED_PREFIX}{date}.{EXTENSION}"));
            if let Err(error) = std::fs::remove_file(&old) {
                tracing::warn!(path = %old.display(), %error, "Could not remove an old backup.");
            }
        }
        Ok(Some(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduled_backups_keep_seven_days_and_four_weeks() {
        let dates: Vec<String> = (1..=60)
            .map(|day| {
                let ms = icn_kernel::calendar::parse_date("2026-09-01").unwrap() + day * 86_400_000;
                icn_kernel::calendar::format_utc(ms)[..10].to_owned()
            })
            .collect();
        let pruned = to_prune(&dates);
        let kept: Vec<&String> = dates.iter().filter(|d| !pruned.contains(d)).collect();
        assert_eq!(kept.len(), 11, "{kept:?}");
        // The newest seven days are all kept.
        for date in &dates[53..] {
            assert!(kept.contains(&date), "{date}");
        }
        // Four older ones, in four different weeks.
        let older: Vec<u64> = kept[..4]
            .iter()
            .map(|d| icn_kernel::calendar::parse_date(d).unwrap() / 86_400_000 / 7)
            .collect();
        let mut weeks = older.clone();
        weeks.dedup();
        assert_eq!(weeks.len(), 4, "{older:?}");
        // Fewer than seven: nothing goes.
        assert!(to_prune(&dates[..5]).is_empty());
        // Names that are not dates are never touched.
        assert!(to_prune(&["notes".to_owned()]).is_empty());
    }
}
