//! The fix to suggest for a known error, shared by `icnd` and `icnctl`.
//!
//! Matched on the error's message, because the errors come from several
//! crates; each needle is a phrase of one `#[error]` string in this workspace.

const HINTS: &[(&str, &str)] = &[
    (
        "in use by another ICN process",
        "another icnd or icnctl is using this data directory; wait for it, stop it, or choose another --data-dir",
    ),
    (
        "wrong passphrase",
        "check the passphrase (ICN_KEYSTORE_PASSPHRASE, --passphrase-file or the prompt)",
    ),
    (
        "no passphrase",
        "set ICN_KEYSTORE_PASSPHRASE or pass --passphrase-file FILE",
    ),
    ("no identity yet", "run `icnctl id init` first"),
    (
        "not created or joined a co-op",
        "run `icnctl coop init \"Name\" --yes` first",
    ),
    (
        "below the floor",
        "pay less, ask to be paid first (icnctl ledger request ask), or ask the co-op to deepen the floor by vote (governance propose --set ledger.floor=HOURS)",
    ),
    (
        "they signed two different entries",
        "the co-op lifts this freeze by vote: icnctl governance propose --unfreeze NAME",
    ),
    (
        "schema version",
        "this data directory was written by a newer ICN; run that version",
    ),
];

/// The hint for an error message, when one is known.
pub fn hint_for(message: &str) -> Option<&'static str> {
    HINTS
        .iter()
        .find(|(needle, _)| message.contains(needle))
        .map(|(_, hint)| *hint)
}
