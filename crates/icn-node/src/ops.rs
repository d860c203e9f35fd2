//! The node's own answers in the API's types: its status, and the keys and
//! backups the runtime makes, as the admin socket and the gateway return them.

use icn_identity::Did;
use icn_runtime::{Node, backup, node::IssuedKey};

pub trait NodeOps {
    /// What `icnctl status` and `GET /api/v1/status` show.
    fn status(&self, running: bool, uptime_seconds: Option<u64>) -> icn_api::Status;
}

impl NodeOps for Node {
    fn status(&self, running: bool, uptime_seconds: Option<u64>) -> icn_api::Status {
        let coop = self.log().map(|log| {
            let genesis = log.genesis_body();
            icn_api::Coop {
                id: log.coop().to_string(),
                name: genesis.name.clone(),
                founders: genesis.founders.iter().map(Did::to_string).collect(),
                currencies: genesis.currencies.iter().map(|c| c.code.clone()).collect(),
            }
        });
        icn_api::Status {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            running,
            data_dir: self.data_dir().root().display().to_string(),
            did: self.identity().map(|identity| identity.did.to_string()),
            coop,
            events: self.log().map_or(0, |log| log.counted_len() as u64),
            events_pending: self.log().map_or(0, |log| log.pending_len() as u64),
            equivocations: self.log().map_or(0, |log| log.evidence().count() as u64),
            peers: self
                .connected_members()
                .load(std::sync::atomic::Ordering::Relaxed) as u64,
            uptime_seconds,
        }
    }
}

/// A key the node issued, as the API returns it (shown once).
pub fn paper_key(issued: IssuedKey) -> icn_api::PaperKey {
    icn_api::PaperKey {
        paper_key: issued.paper_key,
        public_key: issued.public_key.to_string(),
        event_id: issued.event_id.to_string(),
    }
}

/// A backup the node wrote, as the API returns it.
pub fn backup_written(written: backup::Written) -> icn_api::Backup {
    icn_api::Backup {
        path: written.path.display().to_string(),
        bytes: written.bytes,
        events: written.events,
    }
}
