//! Where sealed blobs live on a member's machine: one file per blob under
//! the data directory's `files/blobs/` (`ab/abcdef…`), outside SQLite, so
//! the database stays small and the log's backups stay fast.
//!
//! A blob is written to a temporary file, synced, then renamed into place:
//! a crash or a full disk never leaves a half blob under its name. Every
//! read checks the bytes against the name.

use std::{
    fs,
    io::{self, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

use crate::crypto::BlobId;

/// A blob is at most this large (a chunk of at most 4 MiB, sealed).
pub const BLOB_MAX_BYTES: usize = 4 * 1024 * 1024 + 64;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob {0} is not here")]
    Missing(String),
    #[error("blob {0} is damaged on disk (its bytes do not match its name)")]
    Damaged(String),
    #[error("blob of {0} bytes is over the limit of {BLOB_MAX_BYTES}")]
    TooLarge(usize),
    #[error("the blob store at {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// The node's blobs.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> BlobError + '_ {
    move |source| BlobError::Io {
        path: path.to_owned(),
        source,
    }
}

impl BlobStore {
    /// The store under `root` (created, owner-only).
    pub fn open(root: impl Into<PathBuf>) -> Result<BlobStore, BlobError> {
        let root = root.into();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root.join("tmp"))
            .map_err(io_at(&root))?;
        Ok(BlobStore { root })
    }

    fn path(&self, id: &BlobId) -> PathBuf {
        let hex = id.hex();
        self.root.join(&hex[..2]).join(hex)
    }

    pub fn has(&self, id: &BlobId) -> bool {
        self.path(id).exists()
    }

    /// Keeps `bytes` as blob `id` (their BLAKE3), durably. Returns whether
    /// it was new (false: the store already had it).
    pub fn put(&self, id: &BlobId, bytes: &[u8]) -> Result<bool, BlobError> {
        let mut batch = self.stage();
        let new = batch.add(id, bytes)?;
        batch.commit()?;
        Ok(new)
    }

    /// A batch of new blobs made durable together ([`Staged::commit`]):
    /// one filesystem sync for the batch rather than one per blob.
    pub fn stage(&self) -> Staged<'_> {
        Staged {
            store: self,
            pending: Vec::new(),
        }
    }

    /// Blob `id`, checked against its name.
    pub fn get(&self, id: &BlobId) -> Result<Vec<u8>, BlobError> {
        let path = self.path(id);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(BlobError::Missing(id.hex()));
            }
            Err(source) => return Err(BlobError::Io { path, source }),
        };
        if BlobId::of(&bytes) != *id {
            return Err(BlobError::Damaged(id.hex()));
        }
        Ok(bytes)
    }
}

/// New blobs written to temporary files, not yet under their names.
pub struct Staged<'a> {
    store: &'a BlobStore,
    /// (temporary file, its final name, its id).
    pending: Vec<(PathBuf, PathBuf, BlobId)>,
}

impl Staged<'_> {
    /// Stages `bytes` as blob `id` (their BLAKE3) unless the store or this
    /// batch has it already; returns whether it was new.
    pub fn add(&mut self, id: &BlobId, bytes: &[u8]) -> Result<bool, BlobError> {
        if bytes.len() > BLOB_MAX_BYTES {
            return Err(BlobError::TooLarge(bytes.len()));
        }
        if BlobId::of(bytes) != *id {
            return Err(BlobError::Damaged(id.hex()));
        }
        let path = self.store.path(id);
        if path.exists() || self.pending.iter().any(|(_, _, staged)| staged == id) {
            return Ok(false);
        }
        let temporary = self.store.root.join("tmp").join(format!(
            "{}.{}.{}",
            id.hex(),
            std::process::id(),
            self.pending.len()
        ));
        let written = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)
            .and_then(|mut file| file.write_all(bytes));
        if let Err(source) = written {
            let _ = fs::remove_file(&temporary);
            return Err(BlobError::Io {
                path: temporary,
                source,
            });
        }
        self.pending.push((temporary, path, *id));
        Ok(true)
    }

    /// Makes the batch durable, then puts each blob under its name, then
    /// makes the names durable: a crash at any point leaves either no blob
    /// or a whole one under a name (what is left in `tmp/` is garbage).
    pub fn commit(mut self) -> Result<(), BlobError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let root = self.store.root.clone();
        let sync = || -> Result<(), BlobError> {
            let dir = fs::File::open(&root).map_err(io_at(&root))?;
            rustix::fs::syncfs(&dir).map_err(|error| BlobError::Io {
                path: root.clone(),
                source: error.into(),
            })
        };
        sync()?;
        for (temporary, path, _) in std::mem::take(&mut self.pending) {
            let dir = path.parent().expect("a blob's path has a parent");
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_at(dir))?;
            fs::rename(&temporary, &path).map_err(io_at(&path))?;
        }
        sync()
    }
}

impl Drop for Staged<'_> {
    /// A batch dropped without its commit leaves nothing behind.
    fn drop(&mut self) {
        for (temporary, ..) in &self.pending {
            let _ = fs::remove_file(temporary);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn blobs_are_kept_privately_once_and_checked_when_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("blobs")).unwrap();
        let bytes = b"sealed bytes".to_vec();
        let id = BlobId::of(&bytes);
        assert!(!store.has(&id));
        assert!(store.put(&id, &bytes).unwrap());
        assert!(!store.put(&id, &bytes).unwrap(), "already there");
        assert_eq!(store.get(&id).unwrap(), bytes);
        let path = store.path(&id);
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Bytes under the wrong name are refused, and damage is found.
        let other = BlobId::of(b"other");
        assert!(matches!(
            store.put(&other, &bytes),
            Err(BlobError::Damaged(_))
        ));
        fs::write(&path, b"sealed bytez").unwrap();
        assert!(matches!(store.get(&id), Err(BlobError::Damaged(_))));
        assert!(matches!(store.get(&other), Err(BlobError::Missing(_))));
        assert!(
            fs::read_dir(dir.path().join("blobs/tmp"))
                .unwrap()
                .next()
                .is_none()
        );
    }

    fn tmp_is_empty(dir: &Path) -> bool {
        fs::read_dir(dir.join("blobs/tmp"))
            .unwrap()
            .next()
            .is_none()
    }

    #[test]
    fn a_staged_batch_appears_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("blobs")).unwrap();
        let (first, second) = (b"one".to_vec(), b"two".to_vec());
        let (one, two) = (BlobId::of(&first), BlobId::of(&second));
        let mut batch = store.stage();
        assert!(batch.add(&one, &first).unwrap());
        assert!(!batch.add(&one, &first).unwrap(), "once per batch");
        assert!(batch.add(&two, &second).unwrap());
        assert!(!store.has(&one), "not under its name before the commit");
        drop(batch);
        assert!(tmp_is_empty(dir.path()), "a dropped batch leaves nothing");
        let mut batch = store.stage();
        batch.add(&one, &first).unwrap();
        batch.add(&two, &second).unwrap();
        batch.commit().unwrap();
        assert_eq!(store.get(&one).unwrap(), first);
        assert_eq!(store.get(&two).unwrap(), second);
        assert!(tmp_is_empty(dir.path()));
        let mut again = store.stage();
        assert!(!again.add(&one, &first).unwrap(), "already stored");
    }
}
