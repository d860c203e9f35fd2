//! The public wire types: HTTP API bodies and `--json` output share them, so
//! scripts see one shape wherever they look. Domain types are never
//! serialised for outsiders directly.

use serde::{Deserialize, Serialize};

/// `GET /api/v1/health`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Health {
    pub status: String,
}

/// Every error body: a stable machine code, a sentence, and a fix when known.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub hint: Option<String>,
}

/// `icnctl id show --json` and `GET /api/v1/identity`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Identity {
    pub did: String,
    /// The key this device signs with (base58).
    pub device_key: String,
    pub device_label: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Coop {
    pub id: String,
    pub name: String,
    pub founders: Vec<String>,
    pub currencies: Vec<String>,
}

/// `icnctl status --json` and `GET /api/v1/status`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Status {
    pub version: String,
    /// Whether an `icnd` is running on this data directory.
    pub running: bool,
    pub data_dir: String,
    pub did: Option<String>,
    pub coop: Option<Coop>,
    /// Events that count, the genesis included.
    pub events: u64,
    /// Events waiting for a missing event or for their time.
    pub events_pending: u64,
    /// Proven equivocations.
    pub equivocations: u64,
    pub peers: u64,
    /// Seconds since `icnd` started; absent when it is not running.
    pub uptime_seconds: Option<u64>,
}

/// `POST /admin/v1/coop`: found a co-op with this node's identity.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CoopInit {
    pub name: String,
    /// Other founding members' DIDs; this node's identity is always a founder.
    #[serde(default)]
    pub founders: Vec<String>,
}

/// `POST /admin/v1/identity/paper-key`: authorise a new paper key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PaperKey {
    /// Write this down; it is shown once and not stored on this device.
    pub paper_key: String,
    pub public_key: String,
    pub event_id: String,
}

/// `POST /admin/v1/identity/revoke`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyRevoke {
    /// The base58 public key to revoke.
    pub key: String,
}

/// `POST /admin/v1/identity/rotate` (admin socket only): replace this
/// device's signing key. `icnctl` writes the new key into the keystore before
/// it sends this, so a crash at any point leaves a key that can sign.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyRotate {
    /// The new key's secret, in paper-key form.
    pub secret: String,
    pub label: String,
}

impl std::fmt::Debug for KeyRotate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRotate")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// An event this node signed and recorded.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EventAck {
    pub event_id: String,
}

/// `POST /admin/v1/ledger/pay`: pay one member.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pay {
    pub to: String,
    /// `3h`, `1h30m`, `90m`, `2.5h`, or a whole number of the smallest unit.
    pub amount: String,
    /// Default: `hours`.
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub memo: String,
}

/// One account of one member.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Account {
    pub currency: String,
    /// In the smallest unit (minutes for hours).
    pub balance: i64,
    /// The balance as members read it (`-3:30` for hours).
    pub display: String,
    pub floor: i64,
    pub ceiling: i64,
    pub over_ceiling: bool,
    pub frozen: bool,
}

/// `GET /admin/v1/ledger/balance?did=…`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Balance {
    pub did: String,
    pub accounts: Vec<Account>,
}

/// One line of a member's history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HistoryEntry {
    pub id: String,
    pub time_ms: u64,
    pub currency: String,
    /// Positive when received, negative when paid.
    pub amount: i64,
    pub display: String,
    pub counterparty: String,
    pub memo: String,
}

/// `GET /admin/v1/ledger/history?did=…&limit=…`: the latest entries, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct History {
    pub did: String,
    pub entries: Vec<HistoryEntry>,
}
