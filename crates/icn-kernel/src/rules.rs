//! The rules the kernel itself needs: which keys may sign for an identity, and
//! what a co-op's genesis says. Everything else plugs in as a [`Domain`].

use std::collections::{BTreeMap, BTreeSet};

use icn_identity::{Did, PublicKey};
use serde::{Deserialize, Serialize};

use crate::{Event, EventKind, Timestamp};

pub const KIND_GENESIS: &str = "coop.genesis";
pub const KIND_KEY_ADD: &str = "identity.key_add";
pub const KIND_KEY_REVOKE: &str = "identity.key_revoke";
pub const KIND_KEY_ROTATE: &str = "identity.key_rotate";
/// Social recovery (see [`Guardians`]): the member names guardians, a
/// guardian approves a new key, the new key recovers the identity.
pub const KIND_GUARDIANS: &str = "identity.guardians";
pub const KIND_RECOVERY_APPROVE: &str = "identity.recovery_approve";
pub const KIND_RECOVERY_CANCEL: &str = "identity.recovery_cancel";
pub const KIND_RECOVER: &str = "identity.recover";
/// A guardian stops an identity from signing (a stolen device, say) until
/// a guardian unfreezes it or a recovery replaces its keys.
pub const KIND_FREEZE: &str = "identity.freeze";
pub const KIND_UNFREEZE: &str = "identity.unfreeze";

pub const GUARDIANS_MAX: usize = 9;
/// The default wait between the last approval a recovery needs and the
/// new key taking over, during which any of the member's keys can cancel.
pub const RECOVERY_DELAY_DEFAULT_MS: u64 = 72 * 60 * 60 * 1000;
pub const RECOVERY_DELAY_MAX_MS: u64 = 30 * 24 * 60 * 60 * 1000;

pub const KEYS_PER_IDENTITY_MAX: usize = 16;
pub const LABEL_LEN_MAX_BYTES: usize = 64;
pub const NAME_LEN_MAX_BYTES: usize = 128;
pub const FOUNDERS_MAX: usize = 256;

/// Why an event was refused. The reason is for humans; the kind for code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    #[error("event belongs to another co-op")]
    WrongScope,
    #[error("a co-op has exactly one genesis")]
    SecondGenesis,
    #[error("no domain handles event kind `{kind}`")]
    UnknownKind { kind: EventKind },
    #[error("signature does not verify")]
    BadSignature,
    #[error("signed by a key that {author} has not authorised (or has revoked)")]
    UnauthorisedKey { author: Did },
    #[error("prev is not the author's previous event")]
    BadPrev,
    #[error("timestamp is earlier than the author's previous event")]
    TimestampBeforePrev,
    #[error("body does not decode: {reason}")]
    BadBody { reason: String },
    #[error("{reason}")]
    Rule { reason: String },
}

impl Rejection {
    pub fn rule(reason: impl Into<String>) -> Rejection {
        Rejection::Rule {
            reason: reason.into(),
        }
    }
}

/// An event's body, or why it does not decode (for domains' rules).
pub fn decode_body<T: serde::de::DeserializeOwned>(event: &Event) -> Result<T, Rejection> {
    event.body().map_err(|error| Rejection::BadBody {
        reason: error.to_string(),
    })
}

/// Refuses a text field that is empty (when `required`) or longer than `max`
/// bytes, naming it as `what`.
pub fn check_text(text: &str, what: &str, max: usize, required: bool) -> Result<(), Rejection> {
    if required && text.trim().is_empty() {
        return Err(Rejection::rule(format!("{what} is empty")));
    }
    if text.len() > max {
        return Err(Rejection::rule(format!(
            "{what} is longer than {max} bytes"
        )));
    }
    Ok(())
}

/// A currency the co-op keeps accounts in. Amounts are integers of `unit`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrencySpec {
    /// Lowercase code, e.g. `hours`.
    pub code: String,
    /// The smallest unit amounts are counted in, e.g. `minute`.
    pub unit: String,
    /// How many units make one displayed whole, e.g. 60 minutes to the hour.
    pub units_per_whole: u32,
}

/// The body of `coop.genesis`: what a co-op is founded with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    pub name: String,
    pub founders: Vec<Did>,
    pub charter: String,
    pub currencies: Vec<CurrencySpec>,
    /// The co-op's parameters, `domain.name` → value as people write it
    /// (e.g. `ledger.floor` → `40`). Each domain reads and checks its own;
    /// governance changes them later.
    pub params: BTreeMap<String, String>,
}

/// Parameters a genesis may carry, at most, and their sizes.
pub const PARAMS_MAX: usize = 64;
pub const PARAM_KEY_MAX_BYTES: usize = 64;
pub const PARAM_VALUE_MAX_BYTES: usize = 2_000;

impl Genesis {
    pub fn check(&self, author: Did) -> Result<(), Rejection> {
        let name = self.name.trim();
        if name.is_empty() || self.name.len() > NAME_LEN_MAX_BYTES {
            return Err(Rejection::rule(format!(
                "a co-op name has 1 to {NAME_LEN_MAX_BYTES} bytes"
            )));
        }
        if !self.founders.contains(&author) {
            return Err(Rejection::rule("the genesis author must be a founder"));
        }
        if self.founders.len() > FOUNDERS_MAX {
            return Err(Rejection::rule("too many founders"));
        }
        let unique: BTreeSet<&Did> = self.founders.iter().collect();
        if unique.len() != self.founders.len() {
            return Err(Rejection::rule("a founder is listed twice"));
        }
        if self.currencies.is_empty() {
            return Err(Rejection::rule("a co-op declares at least one currency"));
        }
        if self.params.len() > PARAMS_MAX {
            return Err(Rejection::rule(format!(
                "a co-op has at most {PARAMS_MAX} parameters"
            )));
        }
        for (key, value) in &self.params {
            if key.is_empty() || key.len() > PARAM_KEY_MAX_BYTES || !key.contains('.') {
                return Err(Rejection::rule(format!(
                    "parameter name {key:?} is not like `domain.name` (at most {PARAM_KEY_MAX_BYTES} bytes)"
                )));
            }
            if value.len() > PARAM_VALUE_MAX_BYTES {
                return Err(Rejection::rule(format!(
                    "parameter {key} is longer than {PARAM_VALUE_MAX_BYTES} bytes"
                )));
            }
        }
        Ok(())
    }
}

/// The bodies of the identity kinds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAdd {
    pub key: PublicKey,
    pub label: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRevoke {
    pub key: PublicKey,
}

/// Adds `new` and revokes `old` in one step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRotate {
    pub new: PublicKey,
    pub label: String,
    pub old: PublicKey,
}

/// Who may approve a recovery of the member that names them, how many must,
/// and how long after the last needed approval the new key takes over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guardians {
    pub guardians: Vec<Did>,
    pub threshold: u8,
    pub delay_ms: u64,
}

impl Guardians {
    fn check(&self, member: &Did) -> Result<(), Rejection> {
        if self.guardians.is_empty() || self.guardians.len() > GUARDIANS_MAX {
            return Err(Rejection::rule(format!(
                "name 1 to {GUARDIANS_MAX} guardians"
            )));
        }
        if self.guardians.contains(member) {
            return Err(Rejection::rule("you cannot be your own guardian"));
        }
        let unique: BTreeSet<&Did> = self.guardians.iter().collect();
        if unique.len() != self.guardians.len() {
            return Err(Rejection::rule("a guardian is named twice"));
        }
        if self.threshold == 0 || usize::from(self.threshold) > self.guardians.len() {
            return Err(Rejection::rule(format!(
                "the number of approvals needed is 1 to {} (the guardians named)",
                self.guardians.len()
            )));
        }
        if self.delay_ms > RECOVERY_DELAY_MAX_MS {
            return Err(Rejection::rule("a recovery delay is at most 30 days"));
        }
        Ok(())
    }

    /// When a new key approved at `times` (one per distinct guardian,
    /// oldest first) may take over: the waiting time after the approval that
    /// reached the threshold; or, when *every* guardian approved and there
    /// are more of them than the threshold, at most
    /// [`FAST_RECOVERY_DELAY_MS`] after the last approval. The wait is the
    /// member's chance to cancel a recovery they did not ask for; when all
    /// their guardians vouch for it (each after calling them), a member who
    /// lost their only laptop gets it back the same day.
    pub fn ready_at(&self, times: &[crate::Timestamp]) -> Option<crate::Timestamp> {
        let needed = usize::from(self.threshold).max(1);
        let normal = times.get(needed - 1)?.saturating_add_ms(self.delay_ms);
        let all = self.guardians.len();
        if all > needed && times.len() >= all {
            let fast = times[all - 1].saturating_add_ms(self.delay_ms.min(FAST_RECOVERY_DELAY_MS));
            return Some(normal.min(fast));
        }
        Some(normal)
    }
}

/// The longest wait once every guardian (more than the threshold) approved.
pub const FAST_RECOVERY_DELAY_MS: u64 = 4 * 60 * 60 * 1000;

/// A guardian's approval, on the guardian's chain, that `new_key` may
/// recover `member`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryApprove {
    pub member: Did,
    pub new_key: PublicKey,
}

/// On the member's chain, signed by one of their keys: `new_key` may never
/// recover this identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryCancel {
    pub new_key: PublicKey,
}

/// On the member's chain, signed by `new_key`: the approvals (guardians'
/// events in this event's causal past) that let it take over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recover {
    pub new_key: PublicKey,
    pub approvals: Vec<crate::EventId>,
}

/// On a guardian's chain: `identity.freeze` or `identity.unfreeze`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Freeze {
    pub member: Did,
}

/// Which keys may sign for one identity, folded from its own chain.
///
/// **Invariant**: a revoked key is never authorised again, and at least one
/// key stays authorised (revoking the last one is refused), so an identity
/// cannot lock itself out by mistake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyState {
    pub authorised: BTreeMap<PublicKey, String>,
    pub revoked: BTreeSet<PublicKey>,
    /// When the keys last changed (the author's timestamp).
    pub changed_at: Timestamp,
    /// Who may approve a recovery; none until the member names them.
    #[serde(default)]
    pub guardians: Option<Guardians>,
    /// Keys the member refused as a recovery: never approved or used again.
    #[serde(default)]
    pub cancelled: BTreeSet<PublicKey>,
}

impl KeyState {
    /// The state before an identity's first event: only the inception key.
    pub fn inception(did: Did) -> KeyState {
        KeyState {
            authorised: BTreeMap::from([(did.inception_key(), "inception".to_owned())]),
            revoked: BTreeSet::new(),
            changed_at: Timestamp(0),
            guardians: None,
            cancelled: BTreeSet::new(),
        }
    }

    pub fn authorises(&self, key: &PublicKey) -> bool {
        self.authorised.contains_key(key)
    }

    fn add(&mut self, key: PublicKey, label: &str) -> Result<(), Rejection> {
        if label.len() > LABEL_LEN_MAX_BYTES {
            return Err(Rejection::rule("key label is too long"));
        }
        if self.revoked.contains(&key) {
            return Err(Rejection::rule("a revoked key cannot be authorised again"));
        }
        if self.authorised.contains_key(&key) {
            return Err(Rejection::rule("key is already authorised"));
        }
        if self.authorised.len() >= KEYS_PER_IDENTITY_MAX {
            return Err(Rejection::rule("too many keys; revoke one first"));
        }
        self.authorised.insert(key, label.to_owned());
        Ok(())
    }

    fn revoke(&mut self, key: PublicKey) -> Result<(), Rejection> {
        if !self.authorised.contains_key(&key) {
            return Err(Rejection::rule("key is not authorised"));
        }
        if self.authorised.len() == 1 {
            return Err(Rejection::rule(
                "cannot revoke the last key; add or rotate to a new key first",
            ));
        }
        self.authorised.remove(&key);
        self.revoked.insert(key);
        Ok(())
    }

    /// Whether `key` could still become this identity's key by a recovery.
    pub fn recoverable_to(&self, key: &PublicKey) -> Result<(), Rejection> {
        if self.authorised.contains_key(key) {
            return Err(Rejection::rule("that key is already authorised"));
        }
        if self.revoked.contains(key) {
            return Err(Rejection::rule("that key was revoked"));
        }
        if self.cancelled.contains(key) {
            return Err(Rejection::rule(
                "the member cancelled the recovery to that key",
            ));
        }
        Ok(())
    }

    /// Applies an identity event of this identity's own chain to a copy of
    /// this state; errors leave it unchanged. An `identity.recover` is folded
    /// here, but its approvals are checked by the log (they are other
    /// members' events); the guardians' kinds change nothing of their
    /// author's keys.
    pub fn after(&self, event: &Event) -> Result<KeyState, Rejection> {
        let mut next = self.clone();
        match event.kind().as_str() {
            KIND_KEY_ADD => {
                let body: KeyAdd = decode_body(event)?;
                next.add(body.key, &body.label)?;
            }
            KIND_KEY_REVOKE => {
                let body: KeyRevoke = decode_body(event)?;
                next.revoke(body.key)?;
            }
            KIND_KEY_ROTATE => {
                let body: KeyRotate = decode_body(event)?;
                next.add(body.new, &body.label)?;
                next.revoke(body.old)?;
            }
            KIND_GUARDIANS => {
                let body: Guardians = decode_body(event)?;
                body.check(&event.author())?;
                next.guardians = Some(body);
            }
            KIND_RECOVERY_CANCEL => {
                let body: RecoveryCancel = decode_body(event)?;
                if self.authorised.contains_key(&body.new_key) {
                    return Err(Rejection::rule(
                        "that key is yours already; revoke it instead",
                    ));
                }
                next.cancelled.insert(body.new_key);
            }
            KIND_RECOVER => {
                let body: Recover = decode_body(event)?;
                if event.content().signer != body.new_key {
                    return Err(Rejection::rule("a recovery is signed by its new key"));
                }
                self.recoverable_to(&body.new_key)?;
                let old = std::mem::take(&mut next.authorised);
                next.revoked.extend(old.into_keys());
                next.authorised.insert(body.new_key, "recovered".to_owned());
            }
            KIND_RECOVERY_APPROVE | KIND_FREEZE | KIND_UNFREEZE => return Ok(next),
            _ => {
                return Err(Rejection::UnknownKind {
                    kind: event.kind().clone(),
                });
            }
        }
        next.changed_at = event.timestamp();
        Ok(next)
    }
}

pub fn is_identity_kind(kind: &EventKind) -> bool {
    kind.domain() == "identity"
}

/// The identity kinds a guardian signs about another member.
pub fn is_guardian_kind(kind: &EventKind) -> bool {
    matches!(
        kind.as_str(),
        KIND_RECOVERY_APPROVE | KIND_FREEZE | KIND_UNFREEZE
    )
}
