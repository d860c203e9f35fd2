//! The files domain: namespace keys and file versions as events, folded
//! into views of each file's versions and current heads.
//!
//! The log holds no plaintext: paths are sealed, files are named by a
//! keyed hash of their path, and a version names its manifest blob (which
//! is sealed too). What the co-op's other members learn from the log is
//! that a namespace changed, when, by whom, and roughly how large.
//!
//! A version names the versions it supersedes (`parents`: the heads its
//! author saw). The heads of a file are its versions that no other version
//! of the namespace supersedes: two devices or members who edit during a split both leave
//! a head (siblings), and nothing is overwritten. Versions and supersession
//! are unions, so the fold is the same in any order.

use std::collections::{BTreeMap, BTreeSet};

use icn_identity::Did;
use icn_kernel::{Context, Domain, Effect, Event, EventId, Rejection, ViewRow, decode_body};
use serde::{Deserialize, Serialize};

use crate::crypto::{BlobId, Wrap, hex};

pub const KIND_KEY: &str = "files.key";
pub const KIND_VERSION: &str = "files.version";
/// `<namespace>/<key event id>` → the key's wraps ([`KeyRow`]).
pub const VIEW_KEY: &str = "files.key";
/// `<namespace>/<file id>/<version id>` → one version ([`VersionRow`]).
pub const VIEW_VERSION: &str = "files.version";
/// `<namespace>/<file id>` → its heads ([`FileRow`]).
pub const VIEW_FILE: &str = "files.file";

/// The co-op's shared space, which every member reads and writes.
pub const COOP_NAMESPACE: &str = "coop";

/// Wraps of one key, at most (a member's devices and paper keys, or every
/// member's keys for the shared space).
pub const WRAPS_MAX: usize = 256;
/// Versions one version may supersede, at most.
pub const PARENTS_MAX: usize = 16;
/// A sealed path, at most (a path of 4 KiB, sealed).
pub const SEALED_PATH_MAX: usize = 4096 + 40;

/// A member's personal namespace: only their own keys read it.
pub fn personal(did: &Did) -> String {
    format!("personal:{did}")
}

/// A namespace key, wrapped to the keys that may read it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyBody {
    pub namespace: String,
    pub wraps: Vec<Wrap>,
    /// `None`: a new key. `Some(id)`: the key of `files.key` event `id`,
    /// wrapped to more keys (a device linked later, a new member); its
    /// wraps join that key's row.
    pub of: Option<EventId>,
}

/// One version of a file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VersionBody {
    pub namespace: String,
    /// The file's id: a keyed hash of its path under the namespace key.
    pub file: [u8; 32],
    /// The `files.key` event whose key sealed it.
    pub key: EventId,
    /// The versions it supersedes.
    pub parents: Vec<EventId>,
    pub change: Change,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Change {
    Put {
        /// The sealed manifest's blob.
        manifest: BlobId,
        /// The path, sealed.
        path: Vec<u8>,
        /// Plaintext bytes.
        size: u64,
    },
    Delete {
        path: Vec<u8>,
    },
}

/// A key's row: its wraps, from the event that made it and from every
/// event that wrapped it again (in any order).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyRow {
    /// Who made the key (empty until that event is here).
    pub author: String,
    /// Hex of each wrap's postcard encoding, sorted.
    pub wraps: Vec<String>,
}

/// A version's row.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct VersionRow {
    pub id: String,
    pub author: String,
    pub time_ms: u64,
    pub key: String,
    pub parents: Vec<String>,
    /// `put` or `delete`.
    pub change: String,
    /// Hex of the manifest blob's id (puts).
    pub manifest: Option<String>,
    /// Hex of the sealed path.
    pub path: String,
    pub size: u64,
}

/// A file's row: its heads (versions nothing supersedes), oldest first.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileRow {
    pub heads: Vec<String>,
}

#[derive(Default, Clone)]
struct FileState {
    versions: BTreeMap<EventId, (u64, VersionRow)>,
}

impl FileState {
    /// Its heads: versions nothing in the namespace supersedes.
    fn row(&self, superseded: &BTreeSet<EventId>) -> FileRow {
        let mut heads: Vec<(u64, &EventId)> = self
            .versions
            .iter()
            .filter(|(id, _)| !superseded.contains(id))
            .map(|(id, (time, _))| (*time, id))
            .collect();
        heads.sort();
        FileRow {
            heads: heads.into_iter().map(|(_, id)| id.to_string()).collect(),
        }
    }
}

/// The files domain.
///
/// Supersession is kept per namespace, not per file: a version may
/// supersede one filed under another id for the same path (sealed under
/// another key of the namespace, made during a split).
#[derive(Default, Clone)]
pub struct FilesDomain {
    keys: BTreeMap<(String, EventId), KeyRow>,
    files: BTreeMap<(String, [u8; 32]), FileState>,
    superseded: BTreeMap<String, BTreeSet<EventId>>,
    /// Which file each version belongs to.
    filed: BTreeMap<EventId, (String, [u8; 32])>,
}

impl FilesDomain {
    fn file_row(&self, namespace: &str, file: &[u8; 32]) -> Option<ViewRow> {
        let state = self.files.get(&(namespace.to_owned(), *file))?;
        let empty = BTreeSet::new();
        let superseded = self.superseded.get(namespace).unwrap_or(&empty);
        Some(ViewRow {
            view: VIEW_FILE,
            key: file_key(namespace, file),
            value: Some(serde_json::to_string(&state.row(superseded)).expect("a row encodes")),
        })
    }
}

fn reject(reason: impl Into<String>) -> Rejection {
    Rejection::rule(reason)
}

/// Refuses a namespace the author may not write.
fn check_namespace(namespace: &str, context: &Context<'_>) -> Result<(), Rejection> {
    context.active_member(context.author)?;
    if namespace == COOP_NAMESPACE || namespace == personal(context.author) {
        return Ok(());
    }
    Err(reject(format!(
        "{namespace:?} is not a namespace {} may write (their own `personal:` space or `coop`)",
        context.author
    )))
}

fn file_key(namespace: &str, file: &[u8; 32]) -> String {
    format!("{namespace}/{}", hex(file))
}

impl Domain for FilesDomain {
    fn name(&self) -> &'static str {
        "files"
    }

    fn fresh(&self) -> Box<dyn Domain> {
        Box::new(FilesDomain::default())
    }

    fn validate(&self, event: &Event, context: &Context<'_>) -> Result<(), Rejection> {
        match event.kind().as_str() {
            KIND_KEY => {
                let body: KeyBody = decode_body(event)?;
                check_namespace(&body.namespace, context)?;
                if body.wraps.is_empty() || body.wraps.len() > WRAPS_MAX {
                    return Err(reject(format!(
                        "a key is wrapped to 1 to {WRAPS_MAX} keys, not {}",
                        body.wraps.len()
                    )));
                }
                if body.wraps.iter().any(|wrap| wrap.sealed.len() != 48) {
                    return Err(reject("a wrapped key is 48 bytes"));
                }
                if body.namespace != COOP_NAMESPACE
                    && body.wraps.iter().any(|wrap| {
                        !context
                            .author_keys
                            .authorised
                            .keys()
                            .any(|key| key.as_bytes() == &wrap.recipient)
                    })
                {
                    return Err(reject(
                        "a personal key is wrapped only to its member's own keys",
                    ));
                }
                Ok(())
            }
            KIND_VERSION => {
                let body: VersionBody = decode_body(event)?;
                check_namespace(&body.namespace, context)?;
                if body.parents.len() > PARENTS_MAX {
                    return Err(reject(format!(
                        "a version supersedes at most {PARENTS_MAX} others"
                    )));
                }
                let path = match &body.change {
                    Change::Put { path, .. } | Change::Delete { path } => path,
                };
                if path.is_empty() || path.len() > SEALED_PATH_MAX {
                    return Err(reject("a version's sealed path is 1 to 4136 bytes"));
                }
                Ok(())
            }
            _ => Err(Rejection::UnknownKind {
                kind: event.kind().clone(),
            }),
        }
    }

    fn apply(
        &mut self,
        event: &Event,
        _context: &Context<'_>,
        rows: &mut Vec<ViewRow>,
    ) -> Vec<Effect> {
        match event.kind().as_str() {
            KIND_KEY => {
                let Ok(body) = event.body::<KeyBody>() else {
                    return Vec::new();
                };
                let id = body.of.unwrap_or_else(|| event.id());
                let row = self.keys.entry((body.namespace.clone(), id)).or_default();
                if body.of.is_none() {
                    row.author = event.author().to_string();
                }
                row.wraps.extend(
                    body.wraps
                        .iter()
                        .map(|wrap| hex(&postcard::to_stdvec(wrap).expect("a wrap encodes"))),
                );
                row.wraps.sort();
                row.wraps.dedup();
                rows.push(ViewRow {
                    view: VIEW_KEY,
                    key: format!("{}/{id}", body.namespace),
                    value: Some(serde_json::to_string(row).expect("a row encodes")),
                });
            }
            KIND_VERSION => {
                let Ok(body) = event.body::<VersionBody>() else {
                    return Vec::new();
                };
                let (change, manifest, path, size) = match &body.change {
                    Change::Put {
                        manifest,
                        path,
                        size,
                    } => ("put", Some(manifest.hex()), path, *size),
                    Change::Delete { path } => ("delete", None, path, 0),
                };
                let row = VersionRow {
                    id: event.id().to_string(),
                    author: event.author().to_string(),
                    time_ms: event.timestamp().as_millis(),
                    key: body.key.to_string(),
                    parents: body.parents.iter().map(ToString::to_string).collect(),
                    change: change.to_owned(),
                    manifest,
                    path: hex(path),
                    size,
                };
                let file_key = file_key(&body.namespace, &body.file);
                rows.push(ViewRow {
                    view: VIEW_VERSION,
                    key: format!("{file_key}/{}", event.id()),
                    value: Some(serde_json::to_string(&row).expect("a row encodes")),
                });
                self.files
                    .entry((body.namespace.clone(), body.file))
                    .or_default()
                    .versions
                    .insert(event.id(), (event.timestamp().as_millis(), row));
                self.filed
                    .insert(event.id(), (body.namespace.clone(), body.file));
                self.superseded
                    .entry(body.namespace.clone())
                    .or_default()
                    .extend(body.parents.iter().copied());
                // This file's heads, and those of the files it supersedes.
                let mut touched = BTreeSet::from([body.file]);
                touched.extend(body.parents.iter().filter_map(|parent| {
                    self.filed
                        .get(parent)
                        .filter(|(namespace, _)| *namespace == body.namespace)
                        .map(|(_, file)| *file)
                }));
                rows.extend(
                    touched
                        .iter()
                        .filter_map(|file| self.file_row(&body.namespace, file)),
                );
            }
            _ => {}
        }
        Vec::new()
    }

    fn rows(&self) -> Vec<ViewRow> {
        let mut rows = Vec::new();
        for ((namespace, id), row) in &self.keys {
            rows.push(ViewRow {
                view: VIEW_KEY,
                key: format!("{namespace}/{id}"),
                value: Some(serde_json::to_string(row).expect("a row encodes")),
            });
        }
        for ((namespace, file), state) in &self.files {
            let file_key = file_key(namespace, file);
            for (id, (_, row)) in &state.versions {
                rows.push(ViewRow {
                    view: VIEW_VERSION,
                    key: format!("{file_key}/{id}"),
                    value: Some(serde_json::to_string(row).expect("a row encodes")),
                });
            }
            rows.extend(self.file_row(namespace, file));
        }
        rows
    }
}
