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
}

impl KeyState {
    /// The state before an identity's first event: only the inception key.
    pub fn inception(did: Did) -> KeyState {
        KeyState {
            authorised: BTreeMap::from([(did.inception_key(), "inception".to_owned())]),
            revoked: BTreeSet::new(),
            changed_at: Timestamp(0),
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

    /// Applies an identity event to a copy of this state; errors leave it unchanged.
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
            _ => return Ok(next),
        }
        next.changed_at = event.timestamp();
        Ok(next)
    }
}

pub fn is_identity_kind(kind: &EventKind) -> bool {
    matches!(
        kind.as_str(),
        KIND_KEY_ADD | KIND_KEY_REVOKE | KIND_KEY_ROTATE
    )
}
