//! How domains (ledger, governance, trust …) plug into the kernel.

use std::collections::BTreeMap;

use icn_identity::Did;

use crate::{Event, Genesis, KeyState, Rejection};

/// One row of a materialised view, written in the same transaction as the
/// events that produced it. `value: None` deletes the row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewRow {
    pub view: &'static str,
    pub key: String,
    pub value: Option<String>,
}

/// What a domain may read while validating an event: the co-op's genesis and
/// the author's key state. Domains that need more of the causal past (a
/// ledger's balance over the payer's chain) keep it in their own state.
pub struct Context<'a> {
    pub genesis: &'a Genesis,
    pub author_keys: &'a KeyState,
}

/// A domain's rules: which kinds it owns, how they validate, and how accepted
/// events fold into its view.
///
/// **Invariant**: `apply` must give the same state for any order of events
/// that respects causality (every event after its prev and deps). The kernel
/// feeds events in arrival order, and a property test checks that every
/// permutation of the same events ends in the same rows.
pub trait Domain: Send {
    /// The part of the kind before the dot, e.g. `ledger`.
    fn name(&self) -> &'static str;

    /// A fresh, empty instance, for rebuilding views from the log.
    fn fresh(&self) -> Box<dyn Domain>;

    fn validate(&self, event: &Event, context: &Context<'_>) -> Result<(), Rejection>;

    fn apply(&mut self, event: &Event, rows: &mut Vec<ViewRow>);

    /// Every row of the view, for a full rewrite after a rebuild.
    fn rows(&self) -> Vec<ViewRow>;
}

/// The identity view's row for one member: authorised and revoked keys.
pub(crate) fn key_state_row(did: &Did, state: &KeyState) -> ViewRow {
    let keys: BTreeMap<String, &String> = state
        .authorised
        .iter()
        .map(|(key, label)| (key.to_string(), label))
        .collect();
    let revoked: Vec<String> = state.revoked.iter().map(|key| key.to_string()).collect();
    let value = serde_json::json!({ "keys": keys, "revoked": revoked });
    ViewRow {
        view: "identity",
        key: did.to_string(),
        value: Some(value.to_string()),
    }
}
