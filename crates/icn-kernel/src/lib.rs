//! The kernel: ICN's replicated, signed, hash-linked event log.
//!
//! Pure and deterministic: no IO, no clock (time is an argument), no threads
//! except the optional parallel signature check. Domains plug in as
//! [`Domain`] rules; the kernel enforces them without knowing what they mean.
//!
//! **API boundary**: nothing here reads a disk or a socket. `icn-store`
//! persists what [`Changes`] describes; `icn-node` decides when to ingest.

pub mod calendar;
mod coop;
mod domain;
mod event;
mod ids;
mod log;
mod rules;

pub use coop::{CoopState, Effect, Membership, Past, Source, Status, Tier};
pub use domain::{Context, Domain, Fork, ViewRow};
pub use event::{
    BODY_SIZE_MAX_BYTES, DEPS_MAX, DecodeError, EVENT_SIZE_MAX_BYTES, Event, EventContent,
    FORMAT_VERSION, VerifiedEvent, encode_body,
};
pub use ids::{CoopId, EventId, EventKind, IdParseError, Timestamp};
pub use log::{
    Approval, Changes, Clock, EVIDENCE_PER_SLOT_MAX, Evidence, FreezeRow, Log, LogConfig,
    PendingReason, VIEW_FREEZE, VIEW_QUARANTINE, Verdict,
};
pub use rules::{
    CurrencySpec, FAST_RECOVERY_DELAY_MS, Freeze, GUARDIANS_MAX, Genesis, Guardians, KIND_FREEZE,
    KIND_GENESIS, KIND_GUARDIANS, KIND_KEY_ADD, KIND_KEY_REVOKE, KIND_KEY_ROTATE, KIND_RECOVER,
    KIND_RECOVERY_APPROVE, KIND_RECOVERY_CANCEL, KIND_UNFREEZE, KeyAdd, KeyRevoke, KeyRotate,
    KeyState, PARAM_VALUE_MAX_BYTES, RECOVERY_DELAY_DEFAULT_MS, RECOVERY_DELAY_MAX_MS, Recover,
    RecoveryApprove, RecoveryCancel, Rejection, check_text, decode_body,
};
