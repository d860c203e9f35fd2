//! The node: configuration, the wiring of store, kernel and keystore, the HTTP
//! gateway and admin socket, and the daemon's lifecycle. `icnd` and `icnctl`
//! are thin shells over this crate.

pub mod auth;
pub mod backup;
pub mod committer;
pub mod config;
pub mod daemon;
pub mod gateway;
pub mod governance;
pub mod health;
pub mod hints;
pub mod http;
pub mod layout;
pub mod ledger;
pub mod listener;
pub mod net;
pub mod node;
pub mod passphrase;
pub mod pipeline;
pub mod recovery;
pub mod setup;
pub mod web;

pub use config::{Config, ConfigError, Overrides};
pub use layout::{DataDir, PublicIdentity};
pub use node::{Node, NodeError};
