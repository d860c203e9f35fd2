//! Members' files, as one module of the node.
//!
//! A file is cut into chunks by content (FastCDC: 256 KiB to 4 MiB, about
//! 1 MiB on average, so an edit moves few boundaries), each chunk sealed
//! under its namespace's key (`crypto`) and kept as a blob named by the
//! BLAKE3 of its sealed bytes, outside SQLite (`blobs`). A sealed manifest
//! lists a version's chunks. The log holds only what every node must agree
//! on: which keys may read a namespace, and which versions each file has
//! (`domain`). The operations (`service`) put, get, list, show the history
//! of and remove files, for the admin socket (`icnctl files`).
//!
//! Built so far: a member's personal space on their own node, and the
//! co-op's shared space's versions. Not yet: blobs held by other members
//! (pledges, erasure coding, audits, repair), restoring from them, share
//! links, messages, the FUSE folder, the web page; see ARCHITECTURE.md.

use std::sync::Arc;

use icn_kernel::Domain;
use icn_runtime::{Cadence, Duty, Module, Node, Operation};

pub mod blobs;
pub mod chunk;
pub mod crypto;
pub mod domain;
pub mod service;

pub use domain::FilesDomain;

/// Members' files as a module of the node.
#[derive(Debug, Default, Clone, Copy)]
pub struct FilesModule;

impl FilesModule {
    /// The module, to register with [`icn_runtime::Modules::new`].
    pub fn module() -> Arc<dyn Module> {
        Arc::new(FilesModule)
    }
}

impl Module for FilesModule {
    fn name(&self) -> &'static str {
        "files"
    }

    fn domains(&self) -> Vec<Box<dyn Domain>> {
        vec![Box::new(FilesDomain::default())]
    }

    fn duties(&self) -> Vec<Duty> {
        vec![Duty {
            name: "files.keys",
            cadence: Cadence::Every(std::time::Duration::from_secs(60)),
            run: Box::new(|node: &mut Node, now| service::share_keys(node, now)),
        }]
    }

    fn operations(&self) -> Vec<Operation> {
        service::operations()
    }
}
