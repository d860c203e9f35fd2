//! Readers on their own SQLite connections: what answers reads beside the
//! node's one writer, without the node's lock.
//!
//! In WAL mode a read-only connection reads the last commit and never
//! waits for the writer's transaction or its fsync, so a read served here
//! does not queue behind payments, duties or sync. A read can be served
//! here only when the views hold everything it needs (a guardian's freeze
//! has its own view for that); otherwise it asks the node.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
};

use icn_store::{Reader, StoreError};

/// Idle connections kept open; more are opened under load and closed after.
const IDLE_MAX: usize = 8;

/// A pool of read-only connections to one store's database.
#[derive(Debug)]
pub struct Readers {
    database: PathBuf,
    idle: Mutex<Vec<Reader>>,
}

impl Readers {
    pub(crate) fn new(database: PathBuf) -> Arc<Readers> {
        Arc::new(Readers {
            database,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Runs `read` on an idle connection (or a new one), in one read
    /// transaction ([`Reader::snapshot`]): what it reads is one commit.
    /// The pool's lock is held only to take and give back a connection,
    /// never during a read.
    pub fn read<T, E: From<StoreError>>(
        &self,
        read: impl FnOnce(&Reader) -> Result<T, E>,
    ) -> Result<T, E> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let reader = match idle {
            Some(reader) => reader,
            None => Reader::open(&self.database)?,
        };
        let result = reader.snapshot(read);
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_MAX {
            idle.push(reader);
        }
        result
    }
}
