//! The node's runtime: one data directory's store, the co-op's log and this
//! device's signer, wired; the group committer and the ingest pipeline that
//! write to them; backups; and the [`Module`] trait through which a
//! subsystem plugs in its domains, duties, network protocols and API
//! operations.
//!
//! It knows neither axum nor iroh: the gateway and the network layer sit
//! above it (`icn-node`), and modules (`icn-coop`) beside them.

pub mod backup;
pub mod committer;
pub mod layout;
pub mod module;
pub mod node;
pub mod operation;
pub mod pipeline;
pub mod readers;

pub use icn_store::Reader;
pub use layout::{DataDir, PublicIdentity};
pub use module::{Cadence, Caller, Duty, Extensions, Module, Modules, OpenTo, Protocol, Scheduler};
pub use node::{Node, NodeError};
pub use operation::{Access, Operation, Requester};
pub use readers::Readers;
