//! SQLite storage for one node's event log and views.
//!
//! One database per data directory, opened by one process at a time (an
//! advisory lock on `icn.lock`). WAL journal with `synchronous=FULL`: once
//! [`Store::commit`] returns, the events and the view rows they produced are
//! durable together, or neither is.
//!
//! **Invariant**: view rows are only written in the transaction that writes
//! the events they were folded from, so a crash never leaves a view that
//! disagrees with the log.

use std::{
    fs,
    path::{Path, PathBuf},
};

use icn_kernel::{Changes, Event, EventId};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

pub const DATABASE_FILE: &str = "icn.db";
pub const LOCK_FILE: &str = "icn.lock";

/// Schema migrations, applied in order; `PRAGMA user_version` counts them.
/// Never edit one that has shipped: add a new one.
const MIGRATIONS: &[&str] = &[
    // 1: the event log, equivocation evidence, and materialised views.
    "CREATE TABLE meta (
         key TEXT PRIMARY KEY,
         value TEXT NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE events (
         seqno INTEGER PRIMARY KEY AUTOINCREMENT,
         id BLOB NOT NULL UNIQUE,
         author TEXT NOT NULL,
         seq INTEGER NOT NULL,
         kind TEXT NOT NULL,
         timestamp_ms INTEGER NOT NULL,
         counted INTEGER NOT NULL,
         bytes BLOB NOT NULL
     );
     CREATE INDEX events_author_seq ON events (author, seq);
     CREATE TABLE evidence (
         author TEXT NOT NULL,
         seq INTEGER NOT NULL,
         event_id BLOB NOT NULL,
         PRIMARY KEY (author, seq, event_id)
     ) WITHOUT ROWID;
     CREATE TABLE view_rows (
         view TEXT NOT NULL,
         key TEXT NOT NULL,
         value TEXT NOT NULL,
         PRIMARY KEY (view, key)
     ) WITHOUT ROWID;",
    // 2: events lose the author column and its index (the author is in the
    // bytes, and the node indexes chains in memory) and AUTOINCREMENT (ids
    // are never deleted, so the rowid already grows): a third less work per
    // inserted event.
    "CREATE TABLE events_v2 (
         seqno INTEGER PRIMARY KEY,
         id BLOB NOT NULL UNIQUE,
         kind TEXT NOT NULL,
         timestamp_ms INTEGER NOT NULL,
         counted INTEGER NOT NULL,
         bytes BLOB NOT NULL
     );
     INSERT INTO events_v2 (seqno, id, kind, timestamp_ms, counted, bytes)
         SELECT seqno, id, kind, timestamp_ms, counted, bytes FROM events ORDER BY seqno;
     DROP TABLE events;
     ALTER TABLE events_v2 RENAME TO events;",
    // 3: a checksum of each event's whole bytes, written with it. An
    // event's id covers what it says but not its signature, so only this
    // shows that bytes verified once are unchanged, and start-up need not
    // verify every signature again. Rows from before have none (NULL) and
    // are verified at the next start, which fills it in.
    "ALTER TABLE events ADD COLUMN sum BLOB;",
];

pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("{dir} is in use by another ICN process (icnd or icnctl)")]
    Locked { dir: PathBuf },
    #[error("{path} is not an ICN database or is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path} has schema version {found}; this build knows up to {SCHEMA_VERSION}")]
    TooNew { path: PathBuf, found: u32 },
    #[error("the disk is full; nothing was written")]
    DiskFull,
    #[error("the database is busy (locked by another connection)")]
    Busy,
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> StoreError {
        use rusqlite::ErrorCode;
        match error.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => StoreError::DiskFull,
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy,
            _ => StoreError::Sqlite(error),
        }
    }
}

/// A stored event as read back: its bytes still need decoding, and
/// verifying unless [`StoredEvent::unchanged`], because the disk is an
/// input like any other.
pub struct StoredEvent {
    pub bytes: Vec<u8>,
    pub counted: bool,
    /// The checksum written with the bytes (none for rows stored before
    /// checksums were).
    sum: Option<Vec<u8>>,
}

impl StoredEvent {
    /// Whether the bytes are those that were stored: every event is
    /// verified before it is stored, so these need not be verified again.
    pub fn unchanged(&self) -> bool {
        self.sum.as_deref() == Some(&checksum(&self.bytes)[..])
    }
}

/// What [`StoredEvent::unchanged`] compares: the first 16 bytes of the
/// SHA-256 of an event's whole bytes, signature included. It catches a
/// damaged disk, not a forger (who could write the data directory could
/// write the checksum too).
fn checksum(bytes: &[u8]) -> [u8; 16] {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    let mut sum = [0u8; 16];
    sum.copy_from_slice(&digest[..16]);
    sum
}

pub struct Store {
    connection: Connection,
    path: PathBuf,
    // Held for the store's lifetime; the OS releases it if the process dies.
    _lock: fs::File,
}

fn view_row(connection: &Connection, view: &str, key: &str) -> Result<Option<String>, StoreError> {
    Ok(connection
        .prepare_cached("SELECT value FROM view_rows WHERE view = ?1 AND key = ?2")?
        .query_row([view, key], |row| row.get(0))
        .optional()?)
}

/// A read-only connection to a store's database, beside the node's one
/// writer: in WAL mode it reads the last commit and never waits for the
/// writer's transaction or its fsync. Each read is its own snapshot of the
/// last commit, or one [`Reader::snapshot`] holds them together.
pub struct Reader {
    connection: Connection,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").finish_non_exhaustive()
    }
}

impl Reader {
    /// Opens a reader on the database at `path` ([`Store::path`]).
    pub fn open(path: &Path) -> Result<Reader, StoreError> {
        let connection = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.execute_batch("PRAGMA query_only = ON; PRAGMA busy_timeout = 5000;")?;
        Ok(Reader { connection })
    }

    /// The value of one view row.
    pub fn view_row(&self, view: &str, key: &str) -> Result<Option<String>, StoreError> {
        view_row(&self.connection, view, key)
    }

    /// Runs `read` in one read transaction: every lookup in it sees the
    /// same commit (a balance and a freeze from the same moment), and the
    /// WAL's read lock is taken once, not once per lookup.
    pub fn snapshot<T, E: From<StoreError>>(
        &self,
        read: impl FnOnce(&Reader) -> Result<T, E>,
    ) -> Result<T, E> {
        if !self.connection.is_autocommit() {
            // A transaction an earlier read could not end.
            let _ = self.connection.execute_batch("ROLLBACK");
        }
        self.connection
            .prepare_cached("BEGIN")
            .and_then(|mut begin| begin.execute([]))
            .map_err(StoreError::from)?;
        let result = read(self);
        // A read-only transaction: ending it cannot lose anything.
        let _ = self
            .connection
            .prepare_cached("COMMIT")
            .and_then(|mut commit| commit.execute([]));
        result
    }
}

/// SQLite's `quick_check` of the database behind `connection` (at `path`).
fn quick_check(connection: &Connection, path: &Path) -> Result<(), StoreError> {
    let check: String = connection
        .query_row("PRAGMA quick_check", [], |row| row.get(0))
        .map_err(|error| StoreError::Corrupt {
            path: path.to_owned(),
            reason: error.to_string(),
        })?;
    if check != "ok" {
        return Err(StoreError::Corrupt {
            path: path.to_owned(),
            reason: check,
        });
    }
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, taking the directory lock.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            action: "create",
            path: dir.to_owned(),
            source,
        })?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| StoreError::Io {
                action: "open",
                path: lock_path.clone(),
                source,
            })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Locked {
                    dir: dir.to_owned(),
                });
            }
            Err(fs::TryLockError::Error(source)) => {
                return Err(StoreError::Io {
                    action: "lock",
                    path: lock_path,
                    source,
                });
            }
        }
        let path = dir.join(DATABASE_FILE);
        let corrupt = |error: rusqlite::Error| StoreError::Corrupt {
            path: path.clone(),
            reason: error.to_string(),
        };
        let connection = Connection::open(&path).map_err(corrupt)?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = FULL;
                 PRAGMA foreign_keys = ON;
                 PRAGMA busy_timeout = 5000;",
            )
            .map_err(|error| match StoreError::from(error) {
                StoreError::Sqlite(error) => corrupt(error),
                other => other,
            })?;
        quick_check(&connection, &path)?;
        let mut store = Store {
            connection,
            path,
            _lock: lock,
        };
        store.migrate()?;
        Ok(store)
    }

    /// A consistent copy of the whole database at `path` (which must not
    /// exist), taken while the store stays in use: `VACUUM INTO`.
    pub fn snapshot_to(&self, path: &Path) -> Result<(), StoreError> {
        let target = path.to_str().ok_or_else(|| StoreError::Io {
            action: "snapshot to",
            path: path.to_owned(),
            source: std::io::Error::other("the path is not UTF-8"),
        })?;
        self.connection.execute("VACUUM INTO ?1", params![target])?;
        Ok(())
    }

    /// Checks that the database file at `path` (a restored backup's) is a
    /// whole SQLite database this release can open: `quick_check`, and a
    /// schema no newer than this build's.
    pub fn check_snapshot(path: &Path) -> Result<(), StoreError> {
        let corrupt = |error: rusqlite::Error| StoreError::Corrupt {
            path: path.to_owned(),
            reason: error.to_string(),
        };
        let source = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(corrupt)?;
        quick_check(&source, path)?;
        let found: u32 = source
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(corrupt)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: path.to_owned(),
                found,
            });
        }
        Ok(())
    }

    /// Replaces everything in this store with the database at `from` (a
    /// restored backup, or an earlier snapshot of this store), through
    /// SQLite's online backup, and brings it to this release's schema.
    pub fn replace_with(&mut self, from: &Path) -> Result<(), StoreError> {
        Store::check_snapshot(from)?;
        self.connection.restore(
            rusqlite::MAIN_DB,
            from,
            None::<fn(rusqlite::backup::Progress)>,
        )?;
        self.migrate()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let found: u32 = self
            .connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found,
            });
        }
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let transaction = self
                .connection
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            transaction.execute_batch(migration)?;
            transaction.pragma_update(None, "user_version", index as u32 + 1)?;
            transaction.commit()?;
            tracing::info!(version = index + 1, "Applied schema migration.");
        }
        Ok(())
    }

    pub fn schema_version(&self) -> Result<u32, StoreError> {
        Ok(self
            .connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))?)
    }

    /// Caps the database at `pages` pages (of 4 KiB by default); past it,
    /// writes fail with [`StoreError::DiskFull`] as on a full disk. A quota
    /// for small devices, and how tests produce a full disk.
    pub fn set_page_limit(&self, pages: u64) -> Result<(), StoreError> {
        self.connection
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))?;
        Ok(())
    }

    pub fn page_count(&self) -> Result<u64, StoreError> {
        Ok(self
            .connection
            .query_row("PRAGMA page_count", [], |row| row.get::<_, i64>(0))? as u64)
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .connection
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .optional()?)
    }

    /// Writes what the kernel changed, in one transaction. On error nothing is
    /// written and the caller must not acknowledge the events.
    pub fn commit(&mut self, changes: &Changes, meta: &[(&str, &str)]) -> Result<(), StoreError> {
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut insert = transaction.prepare_cached(
                "INSERT INTO events (id, kind, timestamp_ms, counted, bytes, sum)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (id) DO UPDATE SET counted = excluded.counted",
            )?;
            for (event, counted) in &changes.stored {
                insert.execute(params![
                    event.id().0.as_slice(),
                    event.kind().as_str(),
                    event.timestamp().as_millis() as i64,
                    *counted,
                    event.bytes(),
                    &checksum(event.bytes())[..],
                ])?;
            }
            let mut recount =
                transaction.prepare_cached("UPDATE events SET counted = ?2 WHERE id = ?1")?;
            for (id, counted) in &changes.recount {
                recount.execute(params![id.0.as_slice(), *counted])?;
            }
            let mut evidence = transaction.prepare_cached(
                "INSERT OR IGNORE INTO evidence (author, seq, event_id) VALUES (?1, ?2, ?3)",
            )?;
            for proof in &changes.evidence {
                for id in &proof.events {
                    evidence.execute(params![
                        proof.author.to_string(),
                        proof.seq as i64,
                        id.0.as_slice()
                    ])?;
                }
            }
            if changes.rebuilt {
                transaction.execute("DELETE FROM view_rows", [])?;
            }
            let mut upsert = transaction.prepare_cached(
                "INSERT INTO view_rows (view, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (view, key) DO UPDATE SET value = excluded.value",
            )?;
            let mut delete =
                transaction.prepare_cached("DELETE FROM view_rows WHERE view = ?1 AND key = ?2")?;
            // Only the last row written for each (view, key) in this batch matters.
            let mut seen = std::collections::HashSet::new();
            let mut latest: Vec<&icn_kernel::ViewRow> = changes
                .rows
                .iter()
                .rev()
                .filter(|row| seen.insert((row.view, row.key.as_str())))
                .collect();
            latest.reverse();
            for row in latest {
                match &row.value {
                    Some(value) => upsert.execute(params![row.view, row.key, value])?,
                    None => delete.execute(params![row.view, row.key])?,
                };
            }
            let mut set_meta = transaction.prepare_cached(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?;
            for (key, value) in meta {
                set_meta.execute(params![key, value])?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    /// Every stored event, in the order it was stored.
    pub fn events(&self) -> Result<Vec<StoredEvent>, StoreError> {
        let mut statement = self
            .connection
            .prepare("SELECT bytes, counted, sum FROM events ORDER BY seqno")?;
        let rows = statement.query_map([], |row| {
            Ok(StoredEvent {
                bytes: row.get(0)?,
                counted: row.get(1)?,
                sum: row.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn event(&self, id: &EventId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .connection
            .query_row(
                "SELECT bytes FROM events WHERE id = ?1",
                [id.0.as_slice()],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// Every variant of every proven fork: (author, seq, event id). An id of
    /// the wrong length is reported as corruption.
    pub fn evidence(&self) -> Result<Vec<(String, u64, EventId)>, StoreError> {
        let mut statement = self
            .connection
            .prepare("SELECT author, seq, event_id FROM evidence ORDER BY author, seq, event_id")?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)? as u64,
                row.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        let mut evidence = Vec::new();
        for row in rows {
            let (author, seq, id) = row?;
            let id: [u8; 32] = id.try_into().map_err(|_| StoreError::Corrupt {
                path: self.path.clone(),
                reason: "an evidence row has an event id of the wrong length".to_owned(),
            })?;
            evidence.push((author, seq, EventId(id)));
        }
        Ok(evidence)
    }

    pub fn counted_events(&self) -> Result<u64, StoreError> {
        Ok(self.connection.query_row(
            "SELECT COUNT(*) FROM events WHERE counted = 1",
            [],
            |row| row.get::<_, i64>(0),
        )? as u64)
    }

    /// Every row of one view, ordered by key.
    pub fn view(&self, view: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut statement = self
            .connection
            .prepare_cached("SELECT key, value FROM view_rows WHERE view = ?1 ORDER BY key")?;
        let rows = statement.query_map([view], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every view row, ordered by view and key (to compare with a fresh fold).
    pub fn all_view_rows(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        let mut statement = self
            .connection
            .prepare("SELECT view, key, value FROM view_rows ORDER BY view, key")?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Whether the stored views hold exactly `rows` (ordered by view, then
    /// key; a row without a value stands for an empty one). Reads one
    /// stored row at a time: no copy of the views is made.
    pub fn views_match(&self, rows: &[icn_kernel::ViewRow]) -> Result<bool, StoreError> {
        let mut statement = self
            .connection
            .prepare("SELECT view, key, value FROM view_rows ORDER BY view, key")?;
        let mut stored = statement.query([])?;
        let mut expected = rows.iter();
        loop {
            match (stored.next()?, expected.next()) {
                (None, None) => return Ok(true),
                (Some(row), Some(want)) => {
                    let same = row.get_ref(0)?.as_str().ok() == Some(want.view)
                        && row.get_ref(1)?.as_str().ok() == Some(want.key.as_str())
                        && row.get_ref(2)?.as_str().ok()
                            == Some(want.value.as_deref().unwrap_or_default());
                    if !same {
                        return Ok(false);
                    }
                }
                _ => return Ok(false),
            }
        }
    }

    /// How many rows one view has.
    pub fn view_len(&self, view: &str) -> Result<u64, StoreError> {
        Ok(self.connection.query_row(
            "SELECT COUNT(*) FROM view_rows WHERE view = ?1",
            [view],
            |row| row.get::<_, i64>(0),
        )? as u64)
    }

    /// One view row's value.
    pub fn view_row(&self, view: &str, key: &str) -> Result<Option<String>, StoreError> {
        view_row(&self.connection, view, key)
    }

    /// Rows of `view` whose key starts with `prefix`, in key order, newest
    /// last; at most `limit`, the last ones when `from_end` (one index range).
    pub fn view_range(
        &self,
        view: &str,
        prefix: &str,
        limit: usize,
        from_end: bool,
    ) -> Result<Vec<(String, String)>, StoreError> {
        // Every key with the prefix sorts in [prefix, prefix + U+10FFFF).
        let upper = format!("{prefix}\u{10FFFF}");
        self.view_between(view, prefix, &upper, limit, from_end)
    }

    /// Rows of `view` with `lower <= key < upper`, in key order; at most
    /// `limit`, the last ones when `from_end` (one index range).
    pub fn view_between(
        &self,
        view: &str,
        lower: &str,
        upper: &str,
        limit: usize,
        from_end: bool,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let sql = if from_end {
            "SELECT key, value FROM view_rows WHERE view = ?1 AND key >= ?2 AND key < ?3
             ORDER BY key DESC LIMIT ?4"
        } else {
            "SELECT key, value FROM view_rows WHERE view = ?1 AND key >= ?2 AND key < ?3
             ORDER BY key LIMIT ?4"
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut statement = self.connection.prepare_cached(sql)?;
        let rows = statement.query_map(params![view, lower, upper, limit], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
        let mut rows: Vec<(String, String)> = rows.collect::<Result<_, _>>()?;
        if from_end {
            rows.reverse();
        }
        Ok(rows)
    }

    /// Writes the checksum of events whose bytes were verified again (rows
    /// from before checksums, or whose checksum was damaged), so the next
    /// start need not verify them.
    pub fn write_checksums<'a>(
        &mut self,
        events: impl IntoIterator<Item = &'a Event>,
    ) -> Result<usize, StoreError> {
        let transaction = self.connection.transaction()?;
        let mut written = 0;
        {
            let mut update = transaction.prepare("UPDATE events SET sum = ?2 WHERE id = ?1")?;
            for event in events {
                written += update.execute(params![
                    event.id().0.as_slice(),
                    &checksum(event.bytes())[..]
                ])?;
            }
        }
        transaction.commit()?;
        Ok(written)
    }

    /// Decodes one stored event; a damaged row is an error, not a panic.
    pub fn decode(stored: &StoredEvent) -> Result<Event, icn_kernel::DecodeError> {
        Event::decode(&stored.bytes)
    }
}
