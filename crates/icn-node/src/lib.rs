//! The node: configuration, the wiring of store, kernel and keystore, the HTTP
//! gateway and admin socket, and the daemon's lifecycle. `icnd` and `icnctl`
//! are thin shells over this crate.

pub mod auth;
pub mod config;
pub mod daemon;
pub mod gateway;
pub mod health;
pub mod hints;
pub mod http;
pub mod join;
pub mod listener;
pub mod ops;
pub mod passphrase;
pub mod setup;
pub mod web;

pub use config::{Config, ConfigError, Overrides};
pub use icn_coop::{governance, ledger, recovery};
/// Replication over iroh: its own crate, the only one that knows iroh.
pub use icn_net as net;
pub use icn_runtime::{
    DataDir, Modules, Node, NodeError, PublicIdentity, backup, committer, layout, node, pipeline,
};

/// The operations of every service, to call them on a [`Node`].
pub mod prelude {
    pub use crate::{ops::NodeOps, web::WebKeyOps};
    pub use icn_coop::prelude::*;
}

/// The subsystems this build plugs into the node: the co-op's services and
/// members' files. Later: contracts, compute, federation.
pub fn modules() -> Modules {
    Modules::new(vec![
        icn_coop::CoopModule::module(),
        icn_files::FilesModule::module(),
    ])
}
