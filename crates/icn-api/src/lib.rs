//! The public wire types: HTTP API bodies and `--json` output share them, so
//! scripts see one shape wherever they look. Domain types are never
//! serialised for outsiders directly.

use std::collections::BTreeMap;

/// The admin socket's file name in a node's data directory: `/admin/v1`
/// over HTTP/1.1, for whoever can open it (the directory is its owner's).
pub const ADMIN_SOCKET_FILE: &str = "icnd.sock";

use serde::{Deserialize, Serialize};

/// Whole numbers as JSON Schema counts them: `3` and `3.0` alike (clients
/// in JavaScript cannot tell them apart).
mod whole {
    use serde::{Deserialize, Deserializer, de::Error};

    pub fn number<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<u64>,
    {
        let Some(value) = Option::<serde_json::Number>::deserialize(deserializer)? else {
            return Ok(None);
        };
        let whole = value.as_u64().or_else(|| {
            value
                .as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64)
                .map(|f| f as u64)
        });
        let whole =
            whole.ok_or_else(|| D::Error::custom(format!("{value} is not a whole number")))?;
        T::try_from(whole)
            .map(Some)
            .map_err(|_| D::Error::custom(format!("{value} is too large")))
    }
}

/// What the OpenAPI document promises about text fields, and the handlers
/// keep: input matching these is either done, or refused as naming nothing
/// known (404) or conflicting with the co-op's state (409), never as
/// malformed (400).
pub mod pattern {
    /// An event id, whole or its first 8+ hex digits.
    pub const ID: &str = "^[0-9a-fA-F]{8,64}$";
    /// A UTC day, `YYYY-MM-DD`, 1970 to 9999.
    pub const DATE: &str =
        "^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$";
    /// A calendar month, `YYYY-MM`, 1970 to 9999.
    pub const MONTH: &str = "^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])$";
    /// A proposal's voting time: minutes, hours or days.
    pub const DURATION: &str = "^[1-9][0-9]{0,5}[mhd]$";
}

/// `GET /api/v1/health`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Health {
    pub status: String,
}

/// Every error body: a stable machine code, a sentence, and a fix when known.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub hint: Option<String>,
}

/// `icnctl id show --json` and `GET /api/v1/identity`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Identity {
    pub did: String,
    /// The key this device signs with (base58).
    pub device_key: String,
    pub device_label: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Coop {
    pub id: String,
    pub name: String,
    pub founders: Vec<String>,
    pub currencies: Vec<String>,
}

/// `icnctl status --json` and `GET /api/v1/status`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct CoopInit {
    pub name: String,
    /// Other founding members' DIDs; this node's identity is always a founder.
    #[serde(default)]
    pub founders: Vec<String>,
    /// Co-op parameters, e.g. `ledger.floor` → `40` (see the ledger's policy).
    #[serde(default)]
    pub params: std::collections::BTreeMap<String, String>,
}

/// `POST /admin/v1/identity/paper-key`: authorise a new paper key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct PaperKey {
    /// Write this down; it is shown once and not stored on this device.
    pub paper_key: String,
    pub public_key: String,
    pub event_id: String,
}

/// `POST /admin/v1/identity/revoke`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct KeyRevoke {
    /// The base58 public key to revoke.
    pub key: String,
}

/// `POST /admin/v1/identity/rotate` (admin socket only): replace this
/// device's signing key. `icnctl` writes the new key into the keystore before
/// it sends this, so a crash at any point leaves a key that can sign.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
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

/// `GET /api/v1/setup`: what a node started without an identity still
/// needs (the set-up page).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct SetupStatus {
    /// This node has an identity (else the page creates one).
    pub identity: bool,
    /// This node belongs to a co-op (else the page founds or joins one).
    pub coop: bool,
    /// The identity step asks for the one-time code icnd printed (the
    /// gateway is reachable from other machines and this one is not
    /// loopback).
    pub code_required: bool,
    /// A backup file sent to be restored, waiting for its passphrase.
    #[serde(default)]
    pub backup: Option<SetupBackup>,
}

/// `PUT /api/v1/setup/backup`: a backup file, received and checked as far
/// as it can be without its passphrase.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct SetupBackup {
    /// Whose backup it is.
    pub did: String,
    /// The name their device had.
    pub device: String,
    pub bytes: u64,
}

/// `POST /api/v1/setup/restore`: restore the backup sent before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SetupRestore {
    /// The backed-up keystore's passphrase, and the sign-in as for
    /// `/setup/identity`.
    #[serde(flatten)]
    pub sign_in: SetupIdentity,
    /// Sign at once, without first catching up with a majority of the
    /// other members' nodes (a co-op with no other node running). Unsafe if
    /// the lost device signed after the backup.
    #[serde(default)]
    pub standalone: bool,
}

/// `POST /api/v1/setup/device`: make this node a new device of an existing
/// member.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SetupDevice {
    /// A passphrase for this device's keystore, and the sign-in as for
    /// `/setup/identity`.
    #[serde(flatten)]
    pub sign_in: SetupIdentity,
    /// A member's invitation (ticket): their node gives this one the co-op.
    pub ticket: String,
    /// The member's DID.
    pub member: String,
    /// A paper key or device code: this device then signs once it has
    /// caught up. Without one, the member's guardians are asked.
    #[serde(default)]
    pub paper_key: Option<String>,
}

impl std::fmt::Debug for SetupDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetupDevice")
            .field("member", &self.member)
            .field("paper_key", &self.paper_key.as_ref().map(|_| "…"))
            .finish_non_exhaustive()
    }
}

/// `POST /api/v1/setup/identity`: create this node's identity.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SetupIdentity {
    #[schemars(length(min = 1))]
    pub passphrase: String,
    /// The one-time code icnd printed, when `code_required`.
    #[serde(default)]
    pub code: Option<String>,
    /// As for `/auth/passphrase`: the browser's own key, to sign in again.
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
}

impl std::fmt::Debug for SetupIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetupIdentity")
            .field("passphrase", &"…")
            .finish_non_exhaustive()
    }
}

/// `POST /api/v1/setup/coop`: found a co-op with this node's member as its
/// first member.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct SetupCoop {
    /// The co-op's name.
    #[schemars(length(min = 1, max = 100))]
    pub name: String,
    /// Your name as members will see it.
    #[schemars(length(min = 1, max = 100))]
    pub your_name: String,
    /// How many hours a member may owe at most (`ledger.floor`).
    #[serde(default, deserialize_with = "whole::number")]
    #[schemars(range(max = 10000))]
    pub floor_hours: Option<u32>,
    /// Above how many hours a member is flagged (`ledger.ceiling`).
    #[serde(default, deserialize_with = "whole::number")]
    #[schemars(range(max = 10000))]
    pub ceiling_hours: Option<u32>,
    /// How newcomers get in.
    #[serde(default)]
    pub admission: Option<Admission>,
    /// What share of the votes changes the charter.
    #[serde(default)]
    pub charter: Option<CharterMajority>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Admission {
    /// Members vouch for them (`member.vouches` of them).
    Vouches,
    /// A vote of the co-op.
    Proposal,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CharterMajority {
    TwoThirds,
    ThreeQuarters,
    Everyone,
}

impl SetupCoop {
    /// The co-op parameters these answers set (`icnctl coop init --set`).
    pub fn params(&self) -> BTreeMap<String, String> {
        let mut params = BTreeMap::new();
        if let Some(floor) = self.floor_hours {
            params.insert("ledger.floor".to_owned(), floor.to_string());
        }
        if let Some(ceiling) = self.ceiling_hours {
            params.insert("ledger.ceiling".to_owned(), ceiling.to_string());
        }
        if let Some(admission) = self.admission {
            let admission = match admission {
                Admission::Vouches => "vouches",
                Admission::Proposal => "proposal",
            };
            params.insert("member.admission".to_owned(), admission.to_owned());
        }
        if let Some(charter) = self.charter {
            let share = match charter {
                CharterMajority::TwoThirds => "2/3",
                CharterMajority::ThreeQuarters => "3/4",
                CharterMajority::Everyone => "1/1",
            };
            params.insert("gov.charter_threshold".to_owned(), share.to_owned());
        }
        params
    }
}

/// `POST /admin/v1/identity/device`: a key for another device of yours.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct AddDevice {
    /// What the device is, as your co-op will see it: "Ada's phone".
    pub label: String,
}

/// An event this node signed and recorded.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct EventAck {
    pub event_id: String,
}

/// `POST /admin/v1/ledger/pay`: pay one member.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Pay {
    #[schemars(length(min = 1))]
    pub to: String,
    /// `3h`, `1h30m`, `90m`, `2.5h`, or a whole number of the smallest unit.
    #[schemars(length(min = 1))]
    pub amount: String,
    /// Default: `hours`.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub currency: Option<String>,
    #[serde(default)]
    pub memo: String,
}

/// One account of one member.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Account {
    pub currency: String,
    /// In the smallest unit (minutes for hours).
    pub balance: i64,
    /// The balance as members read it (`-3:30` for hours).
    pub display: String,
    pub floor: i64,
    pub ceiling: i64,
    pub over_ceiling: bool,
    /// Within a tenth of the floor.
    pub near_floor: bool,
    pub frozen: bool,
}

/// `GET /admin/v1/ledger/balance?did=…`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Balance {
    pub did: String,
    pub accounts: Vec<Account>,
}

/// One line of a member's history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct HistoryEntry {
    /// Whose history: a member's DID, or `commons`.
    pub account: String,
    /// The event that moved the amount.
    pub id: String,
    pub time_ms: u64,
    pub currency: String,
    /// Positive when received, negative when paid.
    pub amount: i64,
    pub display: String,
    pub counterparty: String,
    pub memo: String,
    /// `payment`, `reversal`, `refund`, `write-off` or `demurrage`.
    pub kind: String,
    /// For a compensating entry: the entry it compensates.
    pub about: Option<String>,
}

/// `GET /admin/v1/ledger/history?did=…&limit=…`: the latest entries, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct History {
    pub did: String,
    pub entries: Vec<HistoryEntry>,
    /// Pass as `cursor` for the page before this one; absent on the first
    /// entry of the history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Which entries a history query returns. Dates are `YYYY-MM-DD` (UTC),
/// `from` inclusive and `to` exclusive.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct HistoryFilter {
    #[schemars(length(min = 1))]
    pub did: Option<String>,
    /// Entries per page: 50 unless told, at most 10,000.
    #[schemars(range(max = 10_000))]
    pub limit: Option<usize>,
    /// A previous page's `next_cursor`: the entries before that page.
    #[serde(default)]
    pub cursor: Option<String>,
    #[schemars(length(min = 1))]
    pub counterparty: Option<String>,
    #[schemars(length(min = 1))]
    pub currency: Option<String>,
    #[schemars(pattern(crate::pattern::DATE), extend("format" = "date"))]
    pub from: Option<String>,
    #[schemars(pattern(crate::pattern::DATE), extend("format" = "date"))]
    pub to: Option<String>,
}

/// `GET /admin/v1/ledger/statement?did=…&month=YYYY-MM`: one month of one
/// member's accounts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Statement {
    pub did: String,
    pub month: String,
    pub accounts: Vec<StatementAccount>,
    pub entries: Vec<HistoryEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct StatementAccount {
    pub currency: String,
    pub opening: i64,
    pub received: i64,
    pub paid: i64,
    pub closing: i64,
    /// `opening`, `received`, `paid`, `closing` as members read them.
    pub display: [String; 4],
}

/// `GET /admin/v1/ledger/totals`: the co-op's ledger at a glance.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Totals {
    pub currencies: Vec<CurrencyTotals>,
    /// Forks proven in members' ledger chains (`ledger_conflicts_detected_total`).
    pub conflicts: u64,
    /// Peers' events kept in place but refused by a rule.
    pub quarantined: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct CurrencyTotals {
    pub currency: String,
    /// Every account's balance added up, the commons included: always 0 in
    /// mutual credit (`ledger_balance_sum`); anything else is a bug.
    #[serde(default)]
    pub balance_sum: i64,
    pub transfers: u64,
    pub volume: u64,
    pub volume_display: String,
    pub commons: i64,
    pub near_floor: Vec<String>,
    pub over_ceiling: Vec<String>,
    pub frozen: Vec<String>,
}

/// `POST /admin/v1/ledger/requests`: ask a member to pay you.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct RequestPayment {
    /// Who is asked to pay.
    #[schemars(length(min = 1))]
    pub payer: String,
    #[schemars(length(min = 1))]
    pub amount: String,
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub currency: Option<String>,
    #[serde(default)]
    pub memo: String,
}

/// `POST /admin/v1/ledger/requests/answer`: pay (accept) or decline a
/// request made to you; or, for your own request, withdraw it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct AnswerRequest {
    #[schemars(pattern(crate::pattern::ID))]
    pub request: String,
    /// `accept`, `decline` or `withdraw`.
    #[schemars(extend("enum" = ["accept", "decline", "withdraw"]))]
    pub answer: String,
    #[serde(default)]
    pub reason: String,
}

/// A payment request, as the payer and the payee see it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct PaymentRequest {
    pub id: String,
    pub payee: String,
    pub payer: String,
    pub currency: String,
    pub amount: i64,
    pub display: String,
    pub memo: String,
    pub time_ms: u64,
    /// `pending`, `paid`, `declined` or `withdrawn`.
    pub status: String,
    pub answer: Option<String>,
    pub auto_accept_at_ms: Option<u64>,
}

/// `POST /admin/v1/ledger/disputes`: contest what you paid in an entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct OpenDispute {
    #[schemars(pattern(crate::pattern::ID))]
    pub entry: String,
    /// Which payee's leg; may be left out when the entry paid one member.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub payee: Option<String>,
    pub reason: String,
    #[schemars(length(min = 1))]
    pub mediator: String,
}

/// `POST /admin/v1/ledger/disputes/evidence`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct AddEvidence {
    #[schemars(pattern(crate::pattern::ID))]
    pub dispute: String,
    pub text: String,
}

/// `POST /admin/v1/ledger/disputes/resolve`: the mediator's decision.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct ResolveDispute {
    #[schemars(pattern(crate::pattern::ID))]
    pub dispute: String,
    /// `valid`, `reversed`, `refund` (with `amount`) or `write-off`.
    #[schemars(extend("enum" = ["valid", "reversed", "refund", "write-off"]))]
    pub outcome: String,
    #[serde(default)]
    pub amount: Option<String>,
    #[serde(default)]
    pub note: String,
}

/// A dispute, as its parties and mediator see it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Dispute {
    pub id: String,
    pub entry: String,
    pub payer: String,
    pub payee: String,
    pub mediator: String,
    pub currency: String,
    pub amount: i64,
    pub display: String,
    pub reason: String,
    pub time_ms: u64,
    pub evidence: Vec<DisputeEvidence>,
    /// `open`, or the outcome: `valid`, `reversed`, `partial refund`, `write-off`.
    pub status: String,
    pub refunded: i64,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct DisputeEvidence {
    pub by: String,
    pub time_ms: u64,
    pub text: String,
}

/// Something the ledger tells a member: a voided payment, a frozen
/// account, a dispute opened or resolved.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Notice {
    pub kind: String,
    pub message: String,
    pub event: String,
}

/// `GET /admin/v1/ledger/inbox?did=…`: requests, disputes and notices.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Inbox {
    pub did: String,
    pub requests: Vec<PaymentRequest>,
    pub disputes: Vec<Dispute>,
    pub notices: Vec<Notice>,
}

/// `icnctl peers`: who this node replicates with, and how.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Peers {
    pub peers: Vec<PeerInfo>,
    pub metrics: NetMetrics,
    /// This node's ticket (`icnctl net ticket`), once it belongs to a co-op.
    pub ticket: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PeerInfo {
    pub did: String,
    /// The first bytes of the peer's network key (its device key).
    pub endpoint: String,
    /// `out` when this node dialled, `in` when the peer did.
    pub direction: String,
    /// `direct`, `relayed`, or `connecting`.
    pub path: String,
    pub address: Option<String>,
    pub rtt_ms: Option<f64>,
    pub connected_seconds: u64,
    pub events_sent: u64,
    pub events_received: u64,
    /// `member` (16 MiB/s) or `trusted` (64 MiB/s: this node's member
    /// trusts theirs 0.6 or more), set when the connection started.
    pub rate_class: String,
}

/// Replication counters since icnd started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NetMetrics {
    pub connections_accepted: u64,
    pub connections_refused: u64,
    pub events_sent: u64,
    pub events_received: u64,
    pub events_accepted: u64,
    pub sync_rounds: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub frames_malformed: u64,
    pub events_forged: u64,
    pub frames_rate_limited: u64,
    pub pushes_dropped: u64,
    pub replication_lag_ms: u64,
    /// Rounds of the dial loop: every member the node knows was dialled
    /// (unless connected) once per round.
    #[serde(default)]
    pub dial_rounds: u64,
    /// Requests on modules' protocols (such as joining) that failed or
    /// were refused.
    #[serde(default)]
    pub requests_failed: u64,
}

/// `POST /admin/v1/coop/join`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JoinCoop {
    pub ticket: String,
    /// Your name as members will see it: with it, the node also applies to
    /// join (`member.apply`) through the inviter's node.
    #[serde(default)]
    pub name: Option<String>,
    /// A word to the members about you.
    #[serde(default)]
    pub note: String,
}

/// `GET /admin/v1/net/ticket`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NetTicket {
    pub ticket: String,
    /// The addresses the ticket gives, for the admin to check.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// The co-op relay it names, if any.
    #[serde(default)]
    pub relay: Option<String>,
}

/// A member or an applicant, as `GET /admin/v1/members` lists them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Member {
    pub did: String,
    /// Display name (may be empty for a founder who set none).
    pub name: String,
    pub skills: Vec<String>,
    /// Given by proposals (`treasurer` …).
    #[serde(default)]
    pub roles: Vec<String>,
    /// `applicant`, `active`, `suspended` or `exited`.
    pub status: String,
    /// `observer`, `provisional` or `full`.
    pub tier: Option<String>,
    pub since_ms: Option<u64>,
    pub applied_ms: Option<u64>,
    pub application_note: String,
    pub vouched_by: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Members {
    pub members: Vec<Member>,
    /// How many vouches an applicant needs, and whether they are admitted
    /// by vouches (`vouches`) or only by proposal (`proposal`).
    pub vouches_needed: u64,
    pub admission: String,
}

/// `POST /admin/v1/members/vouch` (and `/admit`): an applicant by DID or name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Vouch {
    #[schemars(length(min = 1))]
    pub applicant: String,
    #[serde(default)]
    pub note: String,
}

/// `POST /admin/v1/members/profile`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SetProfile {
    #[schemars(length(min = 1))]
    pub name: String,
    #[serde(default)]
    pub skills: Vec<String>,
}

/// `POST /admin/v1/members/leave`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Leave {
    #[serde(default)]
    pub note: String,
}

/// What a proposal does if it passes. Members are named by DID or name;
/// amounts as people write them (`10h`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProposalAction {
    Decision,
    AddMember {
        #[schemars(length(min = 1))]
        member: String,
        #[serde(default)]
        name: String,
        /// `observer`, `provisional` or `full` (default `provisional`).
        #[serde(default)]
        #[schemars(extend("enum" = ["observer", "provisional", "full", null]))]
        tier: Option<String>,
    },
    RemoveMember {
        #[schemars(length(min = 1))]
        member: String,
    },
    SetParams {
        params: std::collections::BTreeMap<String, String>,
    },
    Budget {
        #[schemars(length(min = 1))]
        to: String,
        amount: String,
        #[serde(default)]
        #[schemars(length(min = 1))]
        currency: Option<String>,
        #[serde(default)]
        memo: String,
    },
    Charter {
        section: String,
        text: String,
    },
    /// Give a member these roles (replacing theirs).
    SetRoles {
        #[schemars(length(min = 1))]
        member: String,
        roles: Vec<String>,
    },
    /// Reverse a payment: its entry id (in full, as `ledger history --json` shows it).
    Reverse {
        #[schemars(pattern(crate::pattern::ID))]
        entry: String,
    },
    Freeze {
        #[schemars(length(min = 1))]
        member: String,
    },
    Unfreeze {
        #[schemars(length(min = 1))]
        member: String,
    },
    CreateCircle {
        name: String,
        members: Vec<String>,
    },
}

/// `POST /admin/v1/governance/proposals`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Propose {
    pub title: String,
    #[serde(default)]
    pub text: String,
    /// A template's name (`simple-majority`, `budget-approval` …).
    #[schemars(length(min = 1))]
    pub template: String,
    /// Overrides the template's duration: `30m`, `24h`, `7d`.
    #[serde(default)]
    #[schemars(pattern(crate::pattern::DURATION))]
    pub duration: Option<String>,
    /// A working circle, or the whole co-op.
    #[serde(default)]
    pub circle: Option<String>,
    /// When to review the decision, `YYYY-MM-DD`.
    #[serde(default)]
    #[schemars(pattern(crate::pattern::DATE), extend("format" = "date"))]
    pub review: Option<String>,
    pub action: ProposalAction,
    /// A draft takes no votes until `POST /admin/v1/governance/open`.
    #[serde(default)]
    pub draft: bool,
    /// Overrides the template: hide the tally and votes until the close.
    #[serde(default)]
    pub hidden: Option<bool>,
}

/// `POST /admin/v1/governance/vote`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CastVote {
    /// The proposal's id or its first 8+ digits.
    #[schemars(pattern(crate::pattern::ID))]
    pub proposal: String,
    /// `yes`, `no`, `abstain` or `block`.
    #[schemars(extend("enum" = ["yes", "no", "abstain", "block"]))]
    pub choice: String,
    #[serde(default)]
    pub reason: String,
    /// Quadratic voting only.
    #[serde(default, deserialize_with = "whole::number")]
    #[schemars(range(min = 1, max = 1000))]
    pub strength: Option<u32>,
}

/// `POST /admin/v1/governance/{open,cancel,veto,appeal}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AboutProposal {
    #[schemars(pattern(crate::pattern::ID))]
    pub proposal: String,
    #[serde(default)]
    pub reason: String,
}

/// `POST /admin/v1/governance/templates`: publish a template in the co-op.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Deploy {
    /// A built-in template, or the path-free TOML text of one (`toml`).
    pub template: String,
    /// The name to publish it under (default: the template's).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub duration: Option<String>,
    #[serde(default)]
    pub toml: Option<String>,
}

/// Rules and outcome shapes are the governance domain's own (see
/// ARCHITECTURE.md): `rules` = {method, quorum, duration_ms, early_close,
/// hidden}; `tally` = {yes, no, abstain, block, voted, electorate}.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Proposal {
    pub id: String,
    pub title: String,
    pub text: String,
    pub proposer: String,
    pub circle: Option<String>,
    pub action: serde_json::Value,
    pub template: String,
    pub rules: serde_json::Value,
    pub electorate: Vec<String>,
    pub opened_ms: u64,
    pub closes_at_ms: u64,
    pub review_at_ms: Option<u64>,
    /// `draft`, `open`, `accepted`, `rejected`, `no_quorum`, `cancelled`, `vetoed`.
    pub status: String,
    pub voted: Vec<String>,
    pub votes: Option<Vec<serde_json::Value>>,
    pub tally: Option<serde_json::Value>,
    pub cancel_requested: Option<String>,
    pub vetoed_by: Vec<String>,
    /// Whether the closer has reminded those who had not voted.
    pub reminded: bool,
    /// The outcome statement, once closed.
    pub outcome: Option<String>,
    pub closed_ms: Option<u64>,
    pub appeals: Vec<serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Proposals {
    pub proposals: Vec<Proposal>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TemplateInfo {
    pub name: String,
    pub description: String,
    pub rules: serde_json::Value,
    /// Built in, or published in this co-op (by whom).
    pub published_by: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Templates {
    pub templates: Vec<TemplateInfo>,
}

/// `POST /admin/v1/trust`: state your trust in a member.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TrustAdd {
    /// The member, by DID or name.
    #[schemars(length(min = 1))]
    pub to: String,
    /// From 0 to 1.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub score: f64,
    /// `known`, `colleague` (default), `close` or `intimate`.
    #[serde(default)]
    #[schemars(extend("enum" = ["known", "colleague", "close", "intimate", null]))]
    pub class: Option<String>,
    /// `general` (default), `ledger`, `compute` or `governance`.
    #[serde(default)]
    #[schemars(extend("enum" = ["general", "ledger", "compute", "governance", null]))]
    pub context: Option<String>,
    #[serde(default)]
    pub note: String,
}

/// `GET /admin/v1/trust/score?from=&to=&context=`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TrustScore {
    pub from: String,
    pub to: String,
    pub context: String,
    pub score: f64,
}

/// `GET /admin/v1/trust/why?from=&to=&context=`: the path, each hop's
/// direct score and what made it, and the events behind them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TrustWhy {
    pub from: String,
    pub to: String,
    pub context: String,
    pub score: f64,
    pub path: Vec<String>,
    pub hops: Vec<serde_json::Value>,
    /// Statements and transfers behind the direct link, newest first.
    pub events: Vec<String>,
    pub formula: String,
}

/// `POST /api/v1/auth/challenge`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuthChallenge {
    pub did: String,
}

/// The challenge to sign: `"icn-auth-v1:"` followed by the challenge's
/// bytes (it is base58 here), with one of your authorised keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Challenge {
    pub challenge: String,
    pub expires_in_s: u64,
}

/// `POST /api/v1/auth/verify`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuthVerify {
    pub did: String,
    pub challenge: String,
    /// Base58 of the 64-byte Ed25519 signature.
    pub signature: String,
}

/// A bearer token for the gateway (`Authorization: Bearer <token>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Token {
    pub token: String,
    pub did: String,
    /// Space-separated: `read`, `write`.
    pub scope: String,
    pub expires_in_s: u64,
}

/// `GET /api/v1/me`: who the token speaks for, and what this node can do
/// for them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Me {
    pub did: String,
    /// Display name, if the member set one.
    pub name: String,
    pub scope: String,
    pub expires_at_s: u64,
    /// Whether this node signs for the caller (it holds their keys): only
    /// then can they pay, propose and vote through this gateway.
    pub can_sign: bool,
    pub coop: Option<Coop>,
}

/// `POST /admin/v1/gateway/link`: a one-time sign-in link for the web app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WebLink {
    /// Open this in a browser (it carries the code after `#`, which
    /// browsers never send to servers or put in logs).
    pub url: String,
    pub code: String,
    pub expires_in_s: u64,
}

/// `POST /api/v1/auth/link`: trade a sign-in link's code for a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RedeemLink {
    pub code: String,
    /// The browser's own Ed25519 public key (base58), which may later
    /// answer challenges on this node for the member (`/auth/verify`), so
    /// the browser can sign in again without a new link.
    #[serde(default)]
    pub key: Option<String>,
    /// What the browser calls itself (`Firefox on Dee's phone`).
    #[serde(default)]
    pub label: Option<String>,
}

/// A browser key that may sign in to this node for a member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WebKey {
    pub did: String,
    pub key: String,
    pub label: String,
    pub added_ms: u64,
}

/// `icnctl web keys`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WebKeys {
    pub keys: Vec<WebKey>,
}

/// `POST /admin/v1/gateway/keys/revoke`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RevokeWebKey {
    pub key: String,
}

/// One member's stated trust in another, and what they have done together.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TrustEdge {
    pub from: String,
    pub to: String,
    /// Stated trust per context (`general`, `ledger` …), 0 to 1.
    pub stated: std::collections::BTreeMap<String, f64>,
    /// Completed transfers between the two, either way.
    pub transfers: u64,
    /// The direct score now (general context), with growth and decay.
    pub score: f64,
}

/// `GET /api/v1/trust/edges?did=`: the links to and from a member.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TrustEdges {
    pub did: String,
    pub outgoing: Vec<TrustEdge>,
    pub incoming: Vec<TrustEdge>,
}

/// `POST /api/v1/auth/passphrase`: sign in as this node's member with the
/// keystore's passphrase (what a member already knows), from any browser
/// that reaches the node.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PassphraseSignIn {
    pub passphrase: String,
    /// As for `/auth/link`: the browser's own key, to sign in again later.
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
}

impl std::fmt::Debug for PassphraseSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassphraseSignIn")
            .field("passphrase", &"…")
            .field("key", &self.key)
            .finish()
    }
}

/// `POST /admin/v1/backup {to}`: a backup written while the node runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Backup {
    pub path: String,
    pub bytes: u64,
    /// Events that count in it, the genesis included.
    pub events: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BackupTo {
    /// A file path on the node's machine.
    pub to: String,
}

/// One finding of `icnctl doctor`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Check {
    /// `daemon`, `identity`, `coop`, `peers`, `relay`, `clock`, `disk`, `backup`, `sync`, `recovery`.
    pub name: String,
    /// `ok`, `warn` or `fail`.
    pub status: String,
    pub message: String,
    /// What to do about it, when it is not ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// `icnctl doctor`: what is wrong with this node, and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Doctor {
    pub checks: Vec<Check>,
}

/// `POST …/recovery/guardians`: who may approve a recovery of your identity.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetGuardians {
    /// Members' names or DIDs (1 to 9, not yourself).
    pub guardians: Vec<String>,
    /// Approvals a recovery needs. Default: 2, or 1 with a single guardian.
    #[serde(default, deserialize_with = "whole::number")]
    #[schemars(range(min = 1, max = 9))]
    pub threshold: Option<u8>,
    /// Hours between the last approval needed and the new key taking over,
    /// during which any of your keys can cancel. Default: 72.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 720.0))]
    pub delay_hours: Option<f64>,
}

/// A recovery request, as the new device printed it (`icnrq1…`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoveryRequest {
    pub request: String,
}

/// `POST …/recovery/freeze` and `…/unfreeze`: a member you are a guardian of.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FreezeMember {
    /// Name or DID.
    #[schemars(length(min = 1))]
    pub member: String,
}

/// A member, by DID and display name.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct MemberName {
    pub did: String,
    pub name: String,
}

/// A recovery under way: a new key some guardians have approved.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct PendingRecovery {
    pub member: MemberName,
    pub new_key: String,
    /// The request text guardians approve (`icnrq1…`).
    pub request: String,
    pub approved_by: Vec<MemberName>,
    pub needed: u8,
    /// When the new key may take over, once enough guardians approved.
    pub ready_at_ms: Option<u64>,
    /// Whether you are among its approvers.
    pub approved_by_you: bool,
}

/// `GET …/recovery`: your guardians and recoveries that concern you.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct RecoveryStatus {
    pub member: MemberName,
    /// Empty until guardians are named (icnd names your vouchers by default).
    pub guardians: Vec<MemberName>,
    pub threshold: u8,
    pub delay_hours: f64,
    /// A guardian who froze this identity, if one holds.
    pub frozen_by: Option<MemberName>,
    /// Recoveries of your identity under way: cancel one you did not ask for.
    pub of_you: Vec<PendingRecovery>,
    /// Recoveries of members you are a guardian of, for you to approve.
    pub you_guard: Vec<PendingRecovery>,
    /// Members you are a guardian of.
    pub guarding: Vec<MemberName>,
    /// Those of them a guardian's freeze holds over (DIDs).
    #[serde(default)]
    pub guarding_frozen: Vec<String>,
    /// Set on a new device waiting to recover its member's identity.
    pub this_device_request: Option<String>,
    /// On such a device: the member cancelled this device's request from
    /// another device, so it can never recover with this key.
    #[serde(default)]
    pub this_device_cancelled: bool,
}

/// Members' files (`icnctl files`, `/admin/v1/files/…`).
pub mod files {
    use serde::{Deserialize, Serialize};

    /// Which namespace: the member's personal space (the default), or the
    /// co-op's shared space.
    #[derive(
        Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema,
    )]
    pub struct Space {
        /// The co-op's shared space instead of your personal one.
        #[serde(default)]
        pub shared: bool,
    }

    /// `POST /admin/v1/files/put`: keep a local file as a new version.
    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
    pub struct Put {
        /// The local file to read (an absolute path, readable by icnd's user).
        pub source: String,
        /// Its path in the space, e.g. `reports/2026.pdf`.
        pub path: String,
        #[serde(default)]
        pub shared: bool,
    }

    /// What a put stored.
    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
    pub struct Stored {
        pub path: String,
        pub version: String,
        pub size: u64,
        pub chunks: u64,
        /// Chunks this node did not hold yet (the rest were deduplicated).
        pub new_chunks: u64,
        /// Sealed bytes newly written to the blob store.
        pub new_bytes: u64,
    }

    /// `POST /admin/v1/files/get`: write a version to a local file.
    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
    pub struct Get {
        pub path: String,
        /// The local file to write (it must not exist yet).
        pub to: String,
        /// A version id (or its first 8+ hex digits); default: the newest head.
        pub version: Option<String>,
        #[serde(default)]
        pub shared: bool,
    }

    /// What a get wrote.
    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
    pub struct Written {
        pub path: String,
        pub to: String,
        pub version: String,
        pub size: u64,
    }

    /// `POST /admin/v1/files/rm`: a version that deletes the file (its
    /// history stays).
    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
    pub struct Remove {
        pub path: String,
        #[serde(default)]
        pub shared: bool,
    }

    /// `GET /admin/v1/files`: the files of a space.
    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
    pub struct Listing {
        pub namespace: String,
        pub files: Vec<Entry>,
        /// Versions sealed under a key this device cannot open (yet): the
        /// node of the key's maker shares it within a minute of seeing this
        /// device's key.
        pub unreadable: u64,
    }

    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
    pub struct Entry {
        pub path: String,
        /// The newest head's size.
        pub size: u64,
        pub modified_ms: u64,
        /// More than one head: versions made apart (during a split, on two
        /// devices) that nobody has merged; every one is kept.
        pub heads: Vec<String>,
        pub versions: u64,
    }

    /// `GET /admin/v1/files/history`.
    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
    pub struct HistoryQuery {
        pub path: String,
        #[serde(default)]
        pub shared: bool,
    }

    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
    pub struct History {
        pub path: String,
        /// Oldest first.
        pub versions: Vec<Version>,
    }

    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
    pub struct Version {
        pub id: String,
        pub author: String,
        pub time_ms: u64,
        /// `put` or `delete`.
        pub change: String,
        pub size: u64,
        /// The versions it superseded.
        pub parents: Vec<String>,
        /// Whether nothing supersedes it.
        pub head: bool,
    }
}
