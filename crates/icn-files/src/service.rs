//! The files operations: put, get, list, history and remove, on the admin
//! socket (`icnctl files …`).
//!
//! A put reads and seals the file without the node's lock (on its own
//! blocking thread), and takes the lock twice, briefly: to find (or make)
//! the namespace's key, and to sign the version. A version's parents are
//! the heads this node knows of when it signs.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    fs,
    io::{self, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    sync::Mutex,
};

use icn_api::files as api;
use icn_identity::{Did, KeyPair};
use icn_kernel::{EventId, Timestamp};
use icn_runtime::{Node, NodeError, Operation, Requester, node::now, operation::Services};

use crate::{
    blobs::{BlobError, BlobStore, Staged},
    chunk::{Manifest, for_each_chunk},
    crypto::{BlobId, ChunkRef, CryptoError, NamespaceKey, Wrap, hex},
    domain::{
        COOP_NAMESPACE, Change, FileRow, KIND_KEY, KIND_VERSION, KeyBody, KeyRow, VIEW_FILE,
        VIEW_KEY, VIEW_VERSION, VersionBody, VersionRow, personal,
    },
};

/// A path in a space, at most (bytes).
pub const PATH_MAX: usize = 4096;
/// A manifest blob, at most: about 58,000 chunks, a file of 58 GB or more.
const MANIFEST_MAX: usize = crate::blobs::BLOB_MAX_BYTES;

fn bad(message: impl Into<String>) -> NodeError {
    NodeError::BadInput(message.into())
}

fn missing(message: impl Into<String>) -> NodeError {
    NodeError::NotFound(message.into())
}

fn blob_error(error: BlobError) -> NodeError {
    match error {
        BlobError::Missing(id) => missing(format!(
            "blob {id} is not on this node (members' copies are not fetched yet)"
        )),
        BlobError::TooLarge(_) => bad(error.to_string()),
        error => NodeError::Damaged {
            position: 0,
            reason: error.to_string(),
        },
    }
}

fn crypto_error(error: CryptoError, what: &str) -> NodeError {
    NodeError::Damaged {
        position: 0,
        reason: format!("{what}: {error}"),
    }
}

/// A path in a space: relative, `/`-separated, no `.` or `..` parts, no
/// empty parts, no NUL, at most [`PATH_MAX`] bytes. Any Unicode otherwise.
pub fn check_path(path: &str) -> Result<String, NodeError> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return Err(bad("a file needs a path, like reports/2026.pdf"));
    }
    if trimmed.len() > PATH_MAX {
        return Err(bad(format!("a path is at most {PATH_MAX} bytes")));
    }
    if trimmed.contains('\0') {
        return Err(bad("a path cannot contain a NUL character"));
    }
    if trimmed
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(bad(format!(
            "{path:?}: a path's parts cannot be empty, `.` or `..`"
        )));
    }
    Ok(trimmed.to_owned())
}

/// The namespace keys this node has opened, by their key event.
#[derive(Default)]
struct OpenedKeys(Mutex<HashMap<EventId, NamespaceKey>>);

fn me(node: &Node) -> Result<Did, NodeError> {
    node.identity()
        .map(|identity| identity.did)
        .ok_or(NodeError::NoIdentity)
}

fn namespace(node: &Node, shared: bool) -> Result<String, NodeError> {
    Ok(if shared {
        COOP_NAMESPACE.to_owned()
    } else {
        personal(&me(node)?)
    })
}

fn blob_store(node: &Node) -> Result<BlobStore, NodeError> {
    BlobStore::open(node.data_dir().root().join("files").join("blobs")).map_err(blob_error)
}

fn parse_row<T: serde::de::DeserializeOwned>(key: &str, value: &str) -> Result<T, NodeError> {
    serde_json::from_str(value).map_err(|error| NodeError::Damaged {
        position: 0,
        reason: format!("the view row {key} does not parse: {error}"),
    })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect()
}

/// Opens key `id` of `namespace` with this node's signing key.
fn open_key(node: &Node, namespace: &str, id: &EventId) -> Result<NamespaceKey, NodeError> {
    let opened = node.extensions().get::<OpenedKeys>();
    if let Some(key) = opened.0.lock().unwrap_or_else(|e| e.into_inner()).get(id) {
        return Ok(key.clone());
    }
    let row_key = format!("{namespace}/{id}");
    let row: KeyRow = match node.store().view_row(VIEW_KEY, &row_key)? {
        Some(value) => parse_row(&row_key, &value)?,
        None => return Err(missing(format!("no key {id} for {namespace}"))),
    };
    let (_, signer) = node.any_signer()?;
    let key = open_wraps(&row, signer, namespace)?;
    opened
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(*id, key.clone());
    Ok(key)
}

/// A key row's wraps (those that decode).
fn wraps(row: &KeyRow) -> impl Iterator<Item = Wrap> + '_ {
    row.wraps
        .iter()
        .filter_map(|wrap| postcard::from_bytes::<Wrap>(&unhex(wrap)?).ok())
}

fn open_wraps(row: &KeyRow, holder: &KeyPair, namespace: &str) -> Result<NamespaceKey, NodeError> {
    for wrap in wraps(row) {
        match wrap.open(holder, namespace) {
            Ok(key) => return Ok(key),
            Err(CryptoError::NoKey) => {}
            Err(error) => return Err(crypto_error(error, "a wrapped namespace key")),
        }
    }
    Err(NodeError::Conflict(format!(
        "this device's key cannot open {namespace}'s files: it was not among the keys they \
         were shared with (a device linked later gets them from another of your devices; \
         that sharing is not built yet)"
    )))
}

/// The key to seal new versions of `namespace` with: one this node can
/// open (the first by id), or a new one, signed now.
fn writing_key(
    node: &mut Node,
    namespace: &str,
    now: Timestamp,
) -> Result<(EventId, NamespaceKey), NodeError> {
    if let Some(readable) = readable_keys(node, namespace)?.into_iter().next() {
        return Ok(readable);
    }
    node.log().ok_or(NodeError::NoCoop)?;
    let readers = intended_readers(node, namespace, &me(node)?);
    let key = NamespaceKey::generate();
    let wraps: Vec<Wrap> = readers
        .iter()
        .take(crate::domain::WRAPS_MAX)
        .map(|reader| Wrap::seal(&key, reader, namespace))
        .collect();
    let body = KeyBody {
        namespace: namespace.to_owned(),
        wraps,
        of: None,
    };
    let id = node.append(
        KIND_KEY,
        postcard::to_stdvec(&body).expect("a key encodes"),
        now,
    )?;
    node.extensions()
        .get::<OpenedKeys>()
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, key.clone());
    Ok((id, key))
}

/// The keys that should read `namespace`: its member's authorised keys, or
/// every active member's for the co-op's space.
fn intended_readers(node: &Node, namespace: &str, me: &Did) -> Vec<icn_identity::PublicKey> {
    let Some(log) = node.log() else {
        return Vec::new();
    };
    if namespace == COOP_NAMESPACE {
        log.coop_state()
            .members()
            .filter(|(_, membership)| membership.is_active())
            .flat_map(|(did, _)| log.key_state(did).authorised.into_keys())
            .collect()
    } else {
        log.key_state(me).authorised.into_keys().collect()
    }
}

/// The files module's duty: the keys this node's member made (of their
/// personal space, and of the co-op's) are wrapped again to the keys that
/// should read them and cannot yet: a device linked later, a paper key
/// made later, a member admitted later. Each such wrap is a `files.key`
/// event naming the key it wraps again.
pub fn share_keys(node: &mut Node, now: Timestamp) -> Result<(), NodeError> {
    let (Some(_), Ok(me)) = (node.log(), me(node)) else {
        return Ok(());
    };
    let mine = personal(&me);
    let mut due = Vec::new();
    for (row_key, value) in node.store().view(VIEW_KEY)? {
        let Some((namespace, id)) = row_key.split_once('/') else {
            continue;
        };
        if namespace != mine && namespace != COOP_NAMESPACE {
            continue;
        }
        let row: KeyRow = parse_row(&row_key, &value)?;
        if row.author != me.to_string() {
            continue;
        }
        let Ok(id) = id.parse::<EventId>() else {
            continue;
        };
        let wrapped: BTreeSet<[u8; 32]> = wraps(&row).map(|wrap| wrap.recipient).collect();
        let missing: Vec<icn_identity::PublicKey> = intended_readers(node, namespace, &me)
            .into_iter()
            .filter(|key| !wrapped.contains(key.as_bytes()))
            .collect();
        if missing.is_empty() {
            continue;
        }
        let Ok(key) = open_key(node, namespace, &id) else {
            continue;
        };
        due.push((namespace.to_owned(), id, key, missing));
    }
    for (namespace, id, key, missing) in due {
        for readers in missing.chunks(crate::domain::WRAPS_MAX) {
            let body = KeyBody {
                wraps: readers
                    .iter()
                    .map(|reader| Wrap::seal(&key, reader, &namespace))
                    .collect(),
                namespace: namespace.clone(),
                of: Some(id),
            };
            node.append(
                KIND_KEY,
                postcard::to_stdvec(&body).expect("a key encodes"),
                now,
            )?;
            tracing::info!(
                namespace,
                readers = readers.len(),
                "Shared a files key with keys that could not read it yet."
            );
        }
    }
    Ok(())
}

/// A file's versions and heads, as the views hold them.
struct FileVersions {
    versions: Vec<VersionRow>,
    heads: Vec<String>,
}

impl FileVersions {
    /// What a new version supersedes: the heads.
    fn parents(&self) -> Vec<EventId> {
        self.heads
            .iter()
            .filter_map(|head| head.parse().ok())
            .collect()
    }
}

fn sign_version(node: &mut Node, body: &VersionBody, now: Timestamp) -> Result<EventId, NodeError> {
    node.append(
        KIND_VERSION,
        postcard::to_stdvec(body).expect("a version encodes"),
        now,
    )
}

/// The keys of `namespace` this node can open, by id.
fn readable_keys(node: &Node, namespace: &str) -> Result<Vec<(EventId, NamespaceKey)>, NodeError> {
    let prefix = format!("{namespace}/");
    let mut keys = Vec::new();
    for (row_key, _) in node.store().view(VIEW_KEY)? {
        let Some(id) = row_key.strip_prefix(&prefix).and_then(|id| id.parse().ok()) else {
            continue;
        };
        if let Ok(key) = open_key(node, namespace, &id) {
            keys.push((id, key));
        }
    }
    Ok(keys)
}

/// The versions of `path` in `namespace`: under each key's file id (a
/// namespace has more than one key when members made one each, apart).
fn path_versions(node: &Node, namespace: &str, path: &str) -> Result<FileVersions, NodeError> {
    let mut found = FileVersions {
        versions: Vec::new(),
        heads: Vec::new(),
    };
    for (_, key) in readable_keys(node, namespace)? {
        let file_key = format!("{namespace}/{}", hex(&key.file_id(path)));
        if let Some(value) = node.store().view_row(VIEW_FILE, &file_key)? {
            found
                .heads
                .extend(parse_row::<FileRow>(&file_key, &value)?.heads);
        }
        let prefix = format!("{file_key}/");
        for (row_key, value) in node.store().view(VIEW_VERSION)? {
            if row_key.starts_with(&prefix) {
                found.versions.push(parse_row(&row_key, &value)?);
            }
        }
    }
    found
        .versions
        .sort_by(|a, b| (a.time_ms, &a.id).cmp(&(b.time_ms, &b.id)));
    found.versions.dedup_by(|a, b| a.id == b.id);
    found.heads.sort();
    found.heads.dedup();
    Ok(found)
}

/// Reads `source` into sealed blobs; returns its manifest's blob and
/// what it stored.
enum SealError {
    Read(io::Error),
    Store(BlobError),
}

/// Threads sealing chunks while the file is read and cut: the machine's
/// cores, at most 4.
fn sealers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// Cuts `file` into chunks on this thread while others seal them (two
/// BLAKE3 passes and the encryption: most of a put's work) and one stages
/// the blobs; returns each chunk's reference, in order, and whether its
/// blob was new. Every channel is bounded (a few chunks in flight), and a
/// failing stage keeps draining so that nothing waits forever.
fn seal_chunks(
    file: fs::File,
    key: &NamespaceKey,
    batch: &mut Staged<'_>,
) -> Result<Vec<(ChunkRef, bool)>, SealError> {
    use std::sync::mpsc;
    let (chunks, to_seal) = mpsc::sync_channel::<(usize, Vec<u8>)>(4);
    let (sealed, to_stage) = mpsc::sync_channel::<(usize, ChunkRef, Vec<u8>)>(4);
    let to_seal = Mutex::new(to_seal);
    std::thread::scope(|scope| {
        for _ in 0..sealers() {
            let (to_seal, sealed) = (&to_seal, sealed.clone());
            scope.spawn(move || {
                loop {
                    let next = to_seal.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok((index, chunk)) = next else { break };
                    let (reference, blob) = key.seal_chunk(&chunk);
                    if sealed.send((index, reference, blob)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sealed);
        let stager = scope.spawn(move || {
            let mut references: Vec<Option<(ChunkRef, bool)>> = Vec::new();
            let mut failure = None;
            for (index, reference, blob) in to_stage {
                if failure.is_some() {
                    continue;
                }
                match batch.add(&reference.blob, &blob) {
                    Ok(new) => {
                        if references.len() <= index {
                            references.resize(index + 1, None);
                        }
                        references[index] = Some((reference, new));
                    }
                    Err(error) => failure = Some(error),
                }
            }
            match failure {
                Some(error) => Err(SealError::Store(error)),
                None => Ok(references),
            }
        });
        let mut index = 0;
        let read = for_each_chunk(io::BufReader::new(file), |chunk| {
            chunks
                .send((index, chunk))
                .map_err(|_| io::Error::other("the sealers stopped"))?;
            index += 1;
            Ok(())
        });
        drop(chunks);
        let references = stager.join().expect("the stager does not panic")?;
        read.map_err(SealError::Read)?;
        references
            .into_iter()
            .map(|reference| {
                reference.ok_or_else(|| SealError::Read(io::Error::other("a chunk went missing")))
            })
            .collect()
    })
}

fn seal_file(
    source: &Path,
    path: &str,
    key: &NamespaceKey,
    blobs: &BlobStore,
) -> Result<(BlobId, Manifest, u64, u64), NodeError> {
    let metadata = fs::metadata(source)
        .map_err(|error| bad(format!("cannot read {}: {error}", source.display())))?;
    if !metadata.is_file() {
        return Err(bad(format!("{} is not a regular file", source.display())));
    }
    let file = fs::File::open(source)
        .map_err(|error| bad(format!("cannot read {}: {error}", source.display())))?;
    let mut manifest = Manifest {
        path: path.to_owned(),
        size: 0,
        chunks: Vec::new(),
    };
    // The chunks become durable together, before the version is signed.
    let mut batch = blobs.stage();
    let sealed = seal_chunks(file, key, &mut batch).map_err(|error| match error {
        SealError::Read(error) => bad(format!("reading {} failed: {error}", source.display())),
        SealError::Store(error) => blob_error(error),
    })?;
    let (mut new_chunks, mut new_bytes) = (0u64, 0u64);
    for (reference, new) in sealed {
        if new {
            new_chunks += 1;
            new_bytes += u64::from(reference.len) + 16;
        }
        manifest.size += u64::from(reference.len);
        manifest.chunks.push(reference);
    }
    let sealed = key.seal(&postcard::to_stdvec(&manifest).expect("a manifest encodes"));
    if sealed.len() > MANIFEST_MAX {
        return Err(bad("the file has too many chunks for one manifest"));
    }
    let id = BlobId::of(&sealed);
    if batch.add(&id, &sealed).map_err(blob_error)? {
        new_bytes += sealed.len() as u64;
    }
    batch.commit().map_err(blob_error)?;
    Ok((id, manifest, new_chunks, new_bytes))
}

fn put(services: &Services, _: &Requester, request: api::Put) -> Result<api::Stored, NodeError> {
    let path = check_path(&request.path)?;
    let source = PathBuf::from(&request.source);
    if !source.is_absolute() {
        return Err(bad(format!(
            "{:?}: give the local file's absolute path (icnctl does)",
            request.source
        )));
    }
    let (namespace, (key_id, key), blobs) = services.with_node(|node| {
        let namespace = namespace(node, request.shared)?;
        let key = writing_key(node, &namespace, now())?;
        Ok::<_, NodeError>((namespace, key, blob_store(node)?))
    })?;
    // The long part, without the node's lock.
    let (manifest_id, manifest, new_chunks, new_bytes) = seal_file(&source, &path, &key, &blobs)?;
    let file = key.file_id(&path);
    let version = services.with_node(|node| {
        let parents = path_versions(node, &namespace, &path)?.parents();
        let body = VersionBody {
            namespace: namespace.clone(),
            file,
            key: key_id,
            parents,
            change: Change::Put {
                manifest: manifest_id,
                path: key.seal(path.as_bytes()),
                size: manifest.size,
            },
        };
        sign_version(node, &body, now())
    })?;
    Ok(api::Stored {
        path,
        version: version.to_string(),
        size: manifest.size,
        chunks: manifest.chunks.len() as u64,
        new_chunks,
        new_bytes,
    })
}

/// The version `wanted` names, or the newest head (a put, not a delete).
fn pick_version<'a>(
    versions: &'a FileVersions,
    wanted: Option<&str>,
    path: &str,
) -> Result<&'a VersionRow, NodeError> {
    match wanted {
        Some(text) => {
            let text = text.trim().to_ascii_lowercase();
            let found: Vec<&VersionRow> = versions
                .versions
                .iter()
                .filter(|row| text.len() >= 8 && row.id.starts_with(&text))
                .collect();
            match found.as_slice() {
                [one] => Ok(one),
                [] => Err(missing(format!("{path} has no version {text}"))),
                _ => Err(bad(format!(
                    "{text} names more than one version: give more of it"
                ))),
            }
        }
        None if versions.versions.is_empty() => Err(missing(format!(
            "{path} has never been stored in this space (`icnctl files ls` lists what is)"
        ))),
        None => versions
            .versions
            .iter()
            .rev()
            .find(|row| versions.heads.contains(&row.id))
            .filter(|row| row.change == "put")
            .ok_or_else(|| {
                missing(format!(
                    "{path} was deleted (`icnctl files history` lists its versions)"
                ))
            }),
    }
}

fn get(services: &Services, _: &Requester, request: api::Get) -> Result<api::Written, NodeError> {
    let path = check_path(&request.path)?;
    let to = PathBuf::from(&request.to);
    if !to.is_absolute() {
        return Err(bad(format!(
            "{:?}: give an absolute path to write",
            request.to
        )));
    }
    if to.exists() {
        return Err(NodeError::Conflict(format!(
            "{} exists: choose another name, or move it away first",
            to.display()
        )));
    }
    let (row, key, blobs) = services.with_node(|node| {
        let namespace = namespace(node, request.shared)?;
        let versions = path_versions(node, &namespace, &path)?;
        let row = pick_version(&versions, request.version.as_deref(), &path)?.clone();
        if row.change != "put" {
            return Err(bad(format!("version {} deleted {path}", row.id)));
        }
        Ok((
            row.clone(),
            version_key(node, &namespace, &row)?,
            blob_store(node)?,
        ))
    })?;
    let manifest_id = row
        .manifest
        .as_deref()
        .and_then(unhex)
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .map(BlobId)
        .ok_or_else(|| crypto_error(CryptoError::Undecryptable, "a version's manifest id"))?;
    let sealed = blobs.get(&manifest_id).map_err(blob_error)?;
    let manifest: Manifest = postcard::from_bytes(
        &key.open(&sealed)
            .map_err(|error| crypto_error(error, "the manifest"))?,
    )
    .map_err(|error| NodeError::Damaged {
        position: 0,
        reason: format!("the manifest does not decode: {error}"),
    })?;
    write_file(&to, &manifest, &blobs)?;
    Ok(api::Written {
        path,
        to: to.display().to_string(),
        version: row.id,
        size: manifest.size,
    })
}

/// Writes `manifest`'s chunks to `to`, through a temporary file beside
/// it: an interrupted or failed get leaves nothing under `to`.
fn write_file(to: &Path, manifest: &Manifest, blobs: &BlobStore) -> Result<(), NodeError> {
    let name = to
        .file_name()
        .ok_or_else(|| bad(format!("{} names no file", to.display())))?;
    let temporary = to.with_file_name(format!(".{}.icn-partial", name.to_string_lossy()));
    let written = (|| -> Result<(), NodeError> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(|error| bad(format!("cannot write {}: {error}", temporary.display())))?;
        for chunk in &manifest.chunks {
            let blob = blobs.get(&chunk.blob).map_err(blob_error)?;
            let plaintext = chunk
                .open(&blob)
                .map_err(|error| crypto_error(error, "a chunk"))?;
            file.write_all(&plaintext)
                .map_err(|error| bad(format!("cannot write {}: {error}", temporary.display())))?;
        }
        file.sync_all()
            .map_err(|error| bad(format!("cannot write {}: {error}", temporary.display())))?;
        fs::rename(&temporary, to)
            .map_err(|error| bad(format!("cannot write {}: {error}", to.display())))
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written
}

fn list(node: &Node, _: &Requester, space: api::Space) -> Result<api::Listing, NodeError> {
    let namespace = namespace(node, space.shared)?;
    let prefix = format!("{namespace}/");
    // Every version of the namespace, by path (one path may be filed under
    // more than one key's id).
    let mut heads: BTreeSet<String> = BTreeSet::new();
    for (file_key, value) in node.store().view(VIEW_FILE)? {
        if file_key.starts_with(&prefix) {
            heads.extend(parse_row::<FileRow>(&file_key, &value)?.heads);
        }
    }
    let mut by_path: BTreeMap<String, Vec<VersionRow>> = BTreeMap::new();
    let mut unreadable = 0;
    for (row_key, value) in node.store().view(VIEW_VERSION)? {
        if !row_key.starts_with(&prefix) {
            continue;
        }
        let row: VersionRow = parse_row(&row_key, &value)?;
        // Sealed under a key not shared with this device (yet): counted,
        // not listed.
        let Ok(path) = version_path(node, &namespace, &row) else {
            unreadable += 1;
            continue;
        };
        by_path.entry(path).or_default().push(row);
    }
    let mut files = Vec::new();
    for (path, versions) in by_path {
        let live: Vec<&VersionRow> = versions
            .iter()
            .filter(|row| heads.contains(&row.id))
            .collect();
        if live.iter().all(|row| row.change == "delete") {
            continue;
        }
        let Some(newest) = live
            .iter()
            .filter(|row| row.change == "put")
            .max_by_key(|row| (row.time_ms, row.id.clone()))
        else {
            continue;
        };
        files.push(api::Entry {
            path,
            size: newest.size,
            modified_ms: newest.time_ms,
            heads: live.iter().map(|row| row.id.clone()).collect(),
            versions: versions.len() as u64,
        });
    }
    Ok(api::Listing {
        namespace,
        files,
        unreadable,
    })
}

/// The key that sealed a version.
fn version_key(node: &Node, namespace: &str, row: &VersionRow) -> Result<NamespaceKey, NodeError> {
    let id: EventId = row
        .key
        .parse()
        .map_err(|_| crypto_error(CryptoError::Undecryptable, "a version's key id"))?;
    open_key(node, namespace, &id)
}

/// A version's path, opened with its key.
fn version_path(node: &Node, namespace: &str, row: &VersionRow) -> Result<String, NodeError> {
    let key = version_key(node, namespace, row)?;
    let sealed = unhex(&row.path)
        .ok_or_else(|| crypto_error(CryptoError::Undecryptable, "a version's path"))?;
    let path = key
        .open(&sealed)
        .map_err(|error| crypto_error(error, "a version's path"))?;
    String::from_utf8(path).map_err(|_| crypto_error(CryptoError::Undecryptable, "a path"))
}

fn history(
    node: &Node,
    _: &Requester,
    query: api::HistoryQuery,
) -> Result<api::History, NodeError> {
    let path = check_path(&query.path)?;
    let namespace = namespace(node, query.shared)?;
    let versions = path_versions(node, &namespace, &path)?;
    if versions.versions.is_empty() {
        return Err(missing(format!(
            "{path} has never been stored in {namespace}"
        )));
    }
    Ok(api::History {
        versions: versions
            .versions
            .iter()
            .map(|row| api::Version {
                id: row.id.clone(),
                author: row.author.clone(),
                time_ms: row.time_ms,
                change: row.change.clone(),
                size: row.size,
                parents: row.parents.clone(),
                head: versions.heads.contains(&row.id),
            })
            .collect(),
        path,
    })
}

fn remove(
    services: &Services,
    _: &Requester,
    request: api::Remove,
) -> Result<api::Version, NodeError> {
    let path = check_path(&request.path)?;
    services.with_node(|node| {
        let namespace = namespace(node, request.shared)?;
        let versions = path_versions(node, &namespace, &path)?;
        let live = versions
            .versions
            .iter()
            .any(|row| versions.heads.contains(&row.id) && row.change == "put");
        if !live {
            return Err(missing(format!("{path} is not in {namespace}")));
        }
        let (key_id, key) = writing_key(node, &namespace, now())?;
        let parents = versions.parents();
        let body = VersionBody {
            namespace: namespace.clone(),
            file: key.file_id(&path),
            key: key_id,
            parents: parents.clone(),
            change: Change::Delete {
                path: key.seal(path.as_bytes()),
            },
        };
        let at = now();
        let id = sign_version(node, &body, at)?;
        Ok(api::Version {
            id: id.to_string(),
            author: me(node)?.to_string(),
            time_ms: at.as_millis(),
            change: "delete".to_owned(),
            size: 0,
            parents: parents.iter().map(ToString::to_string).collect(),
            head: true,
        })
    })
}

/// The module's operations.
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::task(
            "filesPut",
            "files",
            "Keep a local file as a new version in your space (or the co-op's)",
            put,
        )
        .admin("/admin/v1/files/put"),
        Operation::task(
            "filesGet",
            "files",
            "Write a version of a file to a new local file",
            get,
        )
        .admin("/admin/v1/files/get"),
        Operation::read(
            "files",
            "files",
            "The files of your space (or the co-op's)",
            list,
        )
        .admin("/admin/v1/files"),
        Operation::read(
            "filesHistory",
            "files",
            "Every version of a file, oldest first",
            history,
        )
        .admin("/admin/v1/files/history"),
        Operation::task(
            "filesRemove",
            "files",
            "Delete a file (a version that deletes it; its history stays)",
            remove,
        )
        .admin("/admin/v1/files/rm"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::tests::noise;

    #[test]
    fn chunks_sealed_on_several_threads_come_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(dir.path().join("blobs")).unwrap();
        let key = NamespaceKey::generate();
        // A part repeated inside the file: its chunks are stored once.
        let part = noise(6 << 20, 11);
        let mut bytes = part.clone();
        bytes.extend(noise(5 << 20, 12));
        bytes.extend(&part);
        let source = dir.path().join("source.bin");
        fs::write(&source, &bytes).unwrap();
        let mut batch = blobs.stage();
        let sealed = match seal_chunks(fs::File::open(&source).unwrap(), &key, &mut batch) {
            Ok(sealed) => sealed,
            Err(_) => panic!("seals"),
        };
        batch.commit().unwrap();
        let new = sealed.iter().filter(|(_, new)| *new).count();
        assert!(new < sealed.len(), "the repeated part is stored once");
        let mut back = Vec::new();
        for (reference, _) in &sealed {
            back.extend(
                reference
                    .open(&blobs.get(&reference.blob).unwrap())
                    .unwrap(),
            );
        }
        assert_eq!(back, bytes);
        assert!(check_path("a/../b").is_err());
        assert_eq!(check_path("/a/b/").unwrap(), "a/b");
        assert_eq!(check_path("résumé/日本.txt").unwrap(), "résumé/日本.txt");
    }
}
