//! What lives in a data directory.

use std::path::{Path, PathBuf};

use icn_identity::{Did, Keystore, PublicKey};
use serde::{Deserialize, Serialize};

/// The files of one node's data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

/// The public half of the identity, readable without the passphrase.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PublicIdentity {
    pub did: Did,
    pub device_key: PublicKey,
    pub device_label: String,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn keystore(&self) -> Keystore {
        Keystore::at(self.root.join("keystore.age"))
    }

    /// The SQLite database (the store's file; see `icn_store::Store::open`).
    pub fn database(&self) -> PathBuf {
        self.root.join(icn_store::DATABASE_FILE)
    }

    /// Where scheduled backups go.
    pub fn backups(&self) -> PathBuf {
        self.root.join("backups")
    }

    pub fn identity_file(&self) -> PathBuf {
        self.root.join("identity.json")
    }

    /// Reads the public identity; `Ok(None)` when there is none yet.
    pub fn public_identity(&self) -> Result<Option<PublicIdentity>, String> {
        let path = self.identity_file();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|error| format!("{} is damaged: {error}", path.display())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(format!("cannot read {}: {error}", path.display())),
        }
    }

    /// Makes the data directory its owner's alone: the directory (and its
    /// `backups/`) `0700`, every file in them `0600`. Run at every open, so
    /// that a directory written by an older release (whose database and
    /// backups were `0644`) is repaired. A directory that does not exist
    /// yet is left alone.
    pub fn make_private(&self) -> std::io::Result<()> {
        make_private(&self.root)?;
        let backups = self.backups();
        if backups.is_dir() {
            make_private(&backups)?;
        }
        Ok(())
    }

    pub fn write_public_identity(&self, identity: &PublicIdentity) -> std::io::Result<()> {
        let temp = self.identity_file().with_extension("tmp");
        std::fs::write(
            &temp,
            serde_json::to_vec_pretty(identity).expect("plain data"),
        )?;
        std::fs::rename(temp, self.identity_file())
    }
}

/// `dir` to `0700` and each regular file directly in it to `0600` (a
/// missing `dir` is left alone; sockets and subdirectories are skipped).
pub fn make_private(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error),
    };
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

/// What this process creates from now on is its owner's alone (umask
/// `077`): the database, its journal, backups, sockets and temporary files
/// included, whatever library creates them. `icnd` and `icnctl` call it
/// first thing.
pub fn owner_only_files() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}
