//! One node: the store, the co-op's log, and this device's identity, wired.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use icn_identity::{Did, KeyPair, paper_key_encode};
use icn_kernel::{
    Changes, CoopId, CurrencySpec, Event, EventContent, EventId, EventKind, Evidence,
    FORMAT_VERSION, Genesis, KIND_GENESIS, KIND_KEY_ADD, KIND_KEY_REVOKE, KIND_KEY_ROTATE, KeyAdd,
    KeyRevoke, KeyRotate, Log, LogConfig, Rejection, Timestamp, Verdict, VerifiedEvent,
    encode_body,
};
use icn_store::{Store, StoreError};

use crate::{
    layout::{DataDir, PublicIdentity},
    module::{Extensions, Modules},
    readers::Readers,
};

const META_GENESIS: &str = "genesis";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("this data directory has no identity yet")]
    NoIdentity,
    #[error("the keystore is locked: this operation needs the passphrase")]
    KeystoreLocked,
    #[error("this node has not created or joined a co-op yet")]
    NoCoop,
    #[error("this node already belongs to the co-op {name:?}")]
    AlreadyInCoop { name: String },
    /// Malformed input: 400.
    #[error("{0}")]
    BadInput(String),
    /// Well-formed input that names nothing this node knows (a member, an
    /// id, a currency, a template): 404.
    #[error("{0}")]
    NotFound(String),
    /// Well-formed input that the node's state does not allow now: 409.
    #[error("{0}")]
    Conflict(String),
    #[error("refused: {0}")]
    Rejected(Rejection),
    #[error("stored event #{position} is damaged: {reason}")]
    Damaged { position: usize, reason: String },
    #[error("{0}")]
    Identity(String),
    #[error(
        "this device signs nothing until it has synced with {needed} members' nodes ({synced} so far), so that it continues your chain after whatever your other devices signed (a restored backup, a linked device, a take-over)"
    )]
    AwaitingSync { synced: usize, needed: usize },
    #[error(
        "another of your devices ({label}) signs for you now, so this one only follows; to sign from this device instead, run `icnctl id take-over` here"
    )]
    OtherDevice { label: String },
    #[error(
        "this device is waiting to recover its member's identity: it signs once enough guardians have approved and the waiting time has passed (`icnctl id recovery`)"
    )]
    Recovering,
}

/// Left in a data directory by a restore: the node must sync with a peer
/// before it signs, or it could sign again at positions its lost copy had
/// already used (a fork, which freezes the member's account).
pub const RESTORED_MARKER: &str = "restored-awaiting-sync";

/// Left in a data directory by `icnctl id recover`: its keystore's key is
/// not (yet) authorised for its identity; guardians approve it and the node
/// then signs `identity.recover` with it.
pub const RECOVERING_MARKER: &str = "recovering";

/// The wall clock as an event timestamp.
pub fn now() -> Timestamp {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp(since_epoch.as_millis() as u64)
}

pub struct Node {
    dir: DataDir,
    store: Store,
    /// Read-only connections beside `store`, for reads the views answer.
    readers: Arc<Readers>,
    log: Option<Log>,
    identity: Option<PublicIdentity>,
    signer: Option<KeyPair>,
    /// The subsystems plugged in: their domains fold this node's log.
    modules: Modules,
    /// State the modules keep beside the log.
    extensions: Extensions,
    /// While [`Node::batched`] runs: what this node's own new events changed,
    /// committed together at the end.
    batch: Option<Changes>,
    /// Every event newly kept, once it is durable: replication pushes these
    /// to connected peers (best effort; a lagging peer catches up by sync).
    kept: tokio::sync::broadcast::Sender<Event>,
    /// Restored from a backup, not yet synced with enough members' nodes
    /// ([`Node::witnesses_needed`]): signs nothing.
    awaiting_sync: bool,
    /// The other members whose nodes completed a sync round with this one
    /// while it was awaiting sync.
    witnesses: std::collections::BTreeSet<Did>,
    /// [`META_TAKE_OVER`], cached.
    take_over: Option<String>,
    /// A key of this device's own, generated when it was linked with a
    /// paper key: the node rotates from the paper key to it once it signs.
    own_key: Option<KeyPair>,
    /// Holds a key its identity has not authorised, waiting for guardians
    /// ([`RECOVERING_MARKER`]): signs only the recovery itself.
    recovering: bool,
    /// A sync round with a peer has completed since the node started.
    synced: bool,
    /// When (wall clock) a sync round last completed with a member's node,
    /// or when the node opened: what this member signed after it may be
    /// held here only.
    last_round: Timestamp,
    /// Forks (author, seq) this process has already warned about.
    warned_forks: std::collections::BTreeSet<(Did, u64)>,
    /// Members whose nodes are connected now (kept by replication).
    connected_members: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// A key this node made and authorised for its member (a paper key, or a
/// code for another device): the secret is shown once and not kept.
#[derive(Debug)]
pub struct IssuedKey {
    /// The secret as words to write down or type on the other device.
    pub paper_key: String,
    pub public_key: icn_identity::PublicKey,
    /// The `identity.key_add` event that authorised it.
    pub event_id: EventId,
}

/// A kernel refusal of the member's own event, addressed to them: the
/// kernel words its reasons about the author, in the third person.
fn to_the_author(reason: &str, me: &Did) -> String {
    reason
        .replace(
            &format!("{me} is frozen by their guardian"),
            "you are frozen by your guardian",
        )
        .replace(
            &format!("{me} is frozen: they signed"),
            "you are frozen: you signed",
        )
        .replace(&me.to_string(), "you")
}

/// New events buffered for each push subscriber, at most.
const KEPT_BROADCAST_MAX: usize = 4_096;
/// Store meta: peers to dial (tickets), as a JSON list.
const META_PEERS: &str = "net.peers";
/// Store meta: this device took over signing for its member when the
/// member's chain ended at this event id (`""`: an empty chain), or
/// [`TAKE_OVER_AFTER_SYNC`]. See [`Node::other_device_signing`].
const META_TAKE_OVER: &str = "device.take_over";
/// The take-over waits for the sync that ends awaiting-sync; the chain's
/// head then is the one taken over.
const TAKE_OVER_AFTER_SYNC: &str = "after-sync";
/// The label of a paper key (paper keys are not dialled, and a device that
/// signs with one replaces it with a key of its own).
pub const PAPER_LABEL: &str = "paper";

/// The currency every new co-op starts with: hours, counted in minutes.
pub fn hours() -> CurrencySpec {
    CurrencySpec {
        code: "hours".to_owned(),
        unit: "minute".to_owned(),
        units_per_whole: 60,
    }
}

pub const DEFAULT_CHARTER: &str = "We are a cooperative. Members decide together, one member one vote. \
Every hour of work is recorded and honoured. Changes to this charter need a proposal and a vote.";

impl Node {
    /// Opens the data directory (taking its lock), rebuilds the log from the
    /// stored events, and repairs the stored views if they disagree with it.
    ///
    /// `keys` are the keystore's keys (none when it stays locked). The node
    /// signs with the one the log authorises, preferring the device key named
    /// in identity.json; if a rotation was interrupted after its event was
    /// committed, this is where identity.json catches up.
    ///
    /// `modules` are the subsystems whose domains fold the log.
    pub fn open(dir: DataDir, keys: Vec<KeyPair>, modules: &Modules) -> Result<Node, NodeError> {
        let store = Store::open(dir.root())?;
        // Members' data is their own: repair what an older release (or a
        // copy) left readable by others.
        if let Err(error) = dir.make_private() {
            tracing::warn!(dir = %dir.root().display(), %error, "Could not make the data directory private (0700, files 0600).");
        }
        let identity = dir.public_identity().map_err(NodeError::Identity)?;
        let mut node = Node {
            dir,
            readers: Readers::new(store.path().to_owned()),
            store,
            log: None,
            identity,
            signer: None,
            modules: modules.clone(),
            extensions: Extensions::default(),
            batch: None,
            kept: tokio::sync::broadcast::channel(KEPT_BROADCAST_MAX).0,
            warned_forks: Default::default(),
            connected_members: Default::default(),
            awaiting_sync: false,
            witnesses: Default::default(),
            take_over: None,
            own_key: None,
            recovering: false,
            synced: false,
            last_round: now(),
        };
        node.load(keys)?;
        Ok(node)
    }

    /// Reads what the store and the data directory's markers hold, replays
    /// the log, and chooses the signing key among `keys`.
    fn load(&mut self, keys: Vec<KeyPair>) -> Result<(), NodeError> {
        self.awaiting_sync = self.dir.root().join(RESTORED_MARKER).exists();
        self.take_over = self.store.meta(META_TAKE_OVER)?;
        // Until a key the log authorises is found (`choose_signer`).
        self.recovering = self.dir.root().join(RECOVERING_MARKER).exists();
        self.load_log()?;
        // Even a co-op of one waits for a round with a peer (the member's
        // other device): at open, the log may be stale. A co-op with no
        // other node restores with `--standalone`.
        self.choose_signer(keys)
    }

    /// Takes a new device of an existing member whose files
    /// [`crate::setup::write_device`] wrote: joins the co-op from its
    /// `genesis`, remembers the `ticket`'s node to sync from, and signs with
    /// `keys` only as the device's state allows: a linked device (`link`)
    /// once it has caught up, a recovering one once the guardians approve.
    pub fn arrive(
        &mut self,
        genesis: VerifiedEvent,
        ticket: &str,
        link: bool,
        keys: Vec<KeyPair>,
    ) -> Result<(), NodeError> {
        if self.signer.is_some() {
            return Err(NodeError::Conflict(
                "this node already has an identity".to_owned(),
            ));
        }
        // The genesis first: refused, it leaves nothing behind.
        self.join(genesis)?;
        let result = (|| {
            self.identity = self.dir.public_identity().map_err(NodeError::Identity)?;
            self.recovering = self.dir.root().join(RECOVERING_MARKER).exists();
            self.remember_peer(ticket)?;
            if link {
                self.link_device()?;
            }
            self.choose_signer(keys)
        })();
        if result.is_err() {
            self.forget_identity();
        }
        result
    }

    /// Restores the backup at `from` into this running node, which must
    /// hold nothing yet (the set-up page): the database through the open
    /// store, then the identity and keystore, then the log is replayed as
    /// at open. See [`crate::backup::restore`] for `wait_for_peers`.
    pub fn restore_backup(
        &mut self,
        from: &std::path::Path,
        passphrase: &str,
        wait_for_peers: bool,
    ) -> Result<Did, NodeError> {
        if self.identity.is_some()
            || self.signer.is_some()
            || self.log.is_some()
            || self.dir.keystore().exists()
        {
            return Err(NodeError::Conflict(
                "this node already has an identity: restore into a new data directory".to_owned(),
            ));
        }
        let staged = crate::backup::Staged::new(from, &self.dir, passphrase)?;
        // What this store holds now (nothing), to go back to if the restore
        // cannot be finished.
        let empty = self.dir.root().join("icn.db.before-restore");
        let _ = std::fs::remove_file(&empty);
        self.store.snapshot_to(&empty)?;
        let database = staged.database().to_owned();
        let store = &mut self.store;
        let placed = staged.put_in_place(&self.dir, wait_for_peers, |_| {
            store
                .replace_with(&database)
                .map_err(|error| crate::backup::BackupError::Damaged {
                    path: from.to_owned(),
                    reason: error.to_string(),
                })
        });
        let loaded = placed.map_err(NodeError::from).and_then(|keys| {
            self.identity = self.dir.public_identity().map_err(NodeError::Identity)?;
            self.load(keys)
        });
        if let Err(error) = loaded {
            self.forget_identity();
            for path in [
                self.dir.keystore().path().to_owned(),
                self.dir.identity_file(),
                self.dir.root().join(RESTORED_MARKER),
            ] {
                let _ = std::fs::remove_file(path);
            }
            if let Err(undo) = self.store.replace_with(&empty) {
                tracing::error!(%undo, "Could not empty the store after a failed restore; restore into a new data directory.");
            }
            let _ = std::fs::remove_file(&empty);
            return Err(error);
        }
        let _ = std::fs::remove_file(&empty);
        self.identity
            .as_ref()
            .map(|identity| identity.did)
            .ok_or_else(|| NodeError::Identity("the backup holds no identity.json".to_owned()))
    }

    /// Back to a node without an identity, in memory (after a set-up step
    /// that could not be finished).
    fn forget_identity(&mut self) {
        self.identity = None;
        self.signer = None;
        self.own_key = None;
        self.log = None;
        self.recovering = false;
        self.awaiting_sync = false;
        self.take_over = None;
    }

    /// Takes an identity made while the node ran without one (the set-up
    /// page): reads `identity.json` and signs with `keys` from now on.
    pub fn adopt_identity(&mut self, keys: Vec<KeyPair>) -> Result<(), NodeError> {
        if self.signer.is_some() {
            return Err(NodeError::Conflict(
                "this node already has an identity".to_owned(),
            ));
        }
        self.identity = self.dir.public_identity().map_err(NodeError::Identity)?;
        self.choose_signer(keys)
    }

    fn choose_signer(&mut self, keys: Vec<KeyPair>) -> Result<(), NodeError> {
        if keys.is_empty() {
            return Ok(());
        }
        let identity = self.identity.as_mut().ok_or_else(|| {
            NodeError::Identity("there is a keystore but no identity.json".to_owned())
        })?;
        let state = match &self.log {
            Some(log) => log.key_state(&identity.did),
            None => icn_kernel::KeyState::inception(identity.did),
        };
        // A device linked by `icnctl id link` knows only the genesis until
        // it syncs: its first key (the paper key or device code) is taken
        // on trust, and it signs nothing until it has synced.
        if self.awaiting_sync
            && self.take_over.is_some()
            && !keys.iter().any(|key| state.authorises(&key.public()))
        {
            let mut keys = keys.into_iter();
            self.signer = keys.next();
            self.own_key = keys.next();
            return Ok(());
        }
        let unauthorised_first = keys
            .iter()
            .find(|key| !state.authorises(&key.public()))
            .cloned();
        let mut authorised: Vec<KeyPair> = keys
            .into_iter()
            .filter(|key| state.authorises(&key.public()))
            .collect();
        authorised.sort_by_key(|key| key.public() != identity.device_key);
        let recovering = self.dir.root().join(RECOVERING_MARKER);
        let Some(signer) = authorised.into_iter().next() else {
            if recovering.exists()
                && let Some(key) = unauthorised_first
            {
                self.signer = Some(key);
                self.recovering = true;
                return Ok(());
            }
            return Err(NodeError::Identity(format!(
                "none of the keystore's keys may sign for {} any more (they were revoked or rotated away)",
                identity.did
            )));
        };
        if state.authorised.get(&signer.public()).map(String::as_str) == Some(PAPER_LABEL) {
            self.own_key = unauthorised_first;
        }
        if signer.public() != identity.device_key {
            tracing::info!("The device key was rotated; updating identity.json.");
            identity.device_key = signer.public();
            if let Some(label) = state.authorised.get(&signer.public()) {
                identity.device_label = label.clone();
            }
            self.dir.write_public_identity(identity).map_err(|error| {
                NodeError::Identity(format!("cannot write identity.json: {error}"))
            })?;
        }
        self.signer = Some(signer);
        self.recovering = false;
        if recovering.exists() {
            // The recovery counted (perhaps just before a crash).
            self.finish_recovery();
        }
        Ok(())
    }

    fn load_log(&mut self) -> Result<(), NodeError> {
        let Some(replayed) = replay_store(&self.store, &self.modules, Signatures::Changed)? else {
            return Ok(());
        };
        if !replayed.views_agree {
            tracing::warn!("Stored views disagreed with the event log; rewrote them from the log.");
            self.store.commit(&replayed.changes, &[])?;
        }
        if !replayed.checksums_missing.is_empty() {
            // Events stored before checksums were (or whose checksum was
            // damaged): verified now, trusted from the next start on.
            let written = self.store.write_checksums(&replayed.checksums_missing)?;
            tracing::info!(
                events = written,
                "Verified stored events and wrote their checksums."
            );
        }
        self.log = Some(replayed.log);
        Ok(())
    }

    /// Whether this node was restored and has not yet caught up with a peer.
    pub fn awaiting_sync(&self) -> bool {
        self.awaiting_sync
    }

    /// How many other members' nodes a restored node must have synced with
    /// before it signs: a majority of the other members. Whatever the lost
    /// device signed after the backup and handed to a majority is then
    /// seen, and the restored chain continues after it instead of forking.
    /// What the lost device signed that reached only a minority may still
    /// collide; the fork rule then keeps the branch more members built on
    /// (ARCHITECTURE.md, "Restoring a backup").
    pub fn witnesses_needed(&self) -> usize {
        let me = self.identity.as_ref().map(|identity| identity.did);
        let others = self
            .replicating_members()
            .into_iter()
            .filter(|member| Some(*member) != me)
            .count();
        if others == 0 { 0 } else { others / 2 + 1 }
    }

    /// Since when no member's node has completed a sync round with this one,
    /// and how many of the member's own entries were signed since then
    /// (held here only, as far as this node knows; at most 1,000 counted).
    pub fn unsent_since(&self) -> (Timestamp, usize) {
        let (Some(log), Some(identity)) = (&self.log, &self.identity) else {
            return (self.last_round, 0);
        };
        let mut unsent = 0;
        let mut at = log.next_position(&identity.did).1;
        while let Some(event) = at.and_then(|id| log.get(&id))
            && event.timestamp() > self.last_round
            && unsent < 1_000
        {
            unsent += 1;
            at = event.content().prev;
        }
        (self.last_round, unsent)
    }

    /// Other members' nodes this restored node has synced with so far.
    pub fn witnesses(&self) -> usize {
        self.witnesses.len()
    }

    /// A sync round with `peer`'s node has completed: what it holds of this
    /// member's chain is here. A restored node signs again once enough
    /// members' nodes have answered ([`Node::witnesses_needed`]).
    pub fn caught_up(&mut self, peer: &Did) {
        self.synced = true;
        if self.identity.as_ref().map(|identity| identity.did) != Some(*peer) {
            self.last_round = now();
        }
        if !self.awaiting_sync {
            return;
        }
        if self.identity.as_ref().map(|identity| identity.did) != Some(*peer)
            && self.replicating_members().contains(peer)
        {
            self.witnesses.insert(*peer);
        }
        let needed = self.witnesses_needed();
        if self.witnesses.len() < needed {
            return;
        }
        match std::fs::remove_file(self.dir.root().join(RESTORED_MARKER)).or_else(|error| {
            match error.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(error),
            }
        }) {
            Ok(()) => {
                self.awaiting_sync = false;
                tracing::info!(
                    synced = self.witnesses.len(),
                    needed,
                    "Caught up with a majority of members' nodes; signing again."
                );
                if self.take_over.as_deref() == Some(TAKE_OVER_AFTER_SYNC)
                    && let Err(error) = self.settle_take_over()
                {
                    tracing::warn!(%error, "Cannot record the take-over.");
                }
            }
            Err(error) => tracing::warn!(%error, "Cannot remove the restore marker."),
        }
    }

    pub fn data_dir(&self) -> &DataDir {
        &self.dir
    }

    pub fn identity(&self) -> Option<&PublicIdentity> {
        self.identity.as_ref()
    }

    pub fn log(&self) -> Option<&Log> {
        self.log.as_ref()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Read-only connections to this node's store, to answer from the
    /// views without the node's lock ([`Readers`]).
    pub fn readers(&self) -> Arc<Readers> {
        self.readers.clone()
    }

    /// The subsystems plugged into this node.
    pub fn modules(&self) -> &Modules {
        &self.modules
    }

    /// State the modules keep beside the log, one value per type.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// Whether this device holds a key its identity has not authorised yet
    /// and waits for guardians ([`RECOVERING_MARKER`]).
    pub fn recovering(&self) -> bool {
        self.recovering
    }

    /// Whether a sync round with a peer has completed since the node started.
    pub fn synced(&self) -> bool {
        self.synced
    }

    /// How many members' nodes are connected now: replication keeps it.
    pub fn connected_members(&self) -> &std::sync::Arc<std::sync::atomic::AtomicUsize> {
        &self.connected_members
    }

    /// Whether the node may sign on its own (duties): not while a restored
    /// device waits to sync, nor while another of the member's devices signs.
    pub fn may_sign_unasked(&self) -> bool {
        !self.awaiting_sync() && self.other_device_signing().is_none()
    }

    /// The recovery counted: sign normally from now on.
    pub fn finish_recovery(&mut self) {
        self.recovering = false;
        if let Err(error) = std::fs::remove_file(self.dir.root().join(RECOVERING_MARKER))
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(%error, "Cannot remove the recovery marker.");
        }
    }

    /// Whether this node holds a key that may sign for its identity.
    pub fn can_sign(&self) -> bool {
        self.signer().is_ok()
    }

    fn signer(&self) -> Result<(&PublicIdentity, &KeyPair), NodeError> {
        if self.recovering {
            return Err(NodeError::Recovering);
        }
        if let Some(label) = self.other_device_signing() {
            return Err(NodeError::OtherDevice { label });
        }
        let (identity, key) = self.any_signer()?;
        // A linked device's key was taken on trust until it synced.
        if self.take_over.is_some()
            && let Some(log) = &self.log
            && !log.key_state(&identity.did).authorises(&key.public())
        {
            return Err(NodeError::Identity(
                "the key this device was linked with does not sign for you: it was revoked, or it was a paper key already used (a device replaces a paper key with its own once it signs); make a new code with `icnctl id add-device` on a device that signs, and link again into a new data directory".to_owned(),
            ));
        }
        Ok((identity, key))
    }

    /// Which other device of this member signs for them now, if one does:
    /// then this device only follows. A member's events form one chain, so
    /// two devices signing at once would fork it; one device signs at a
    /// time. Another device signs now when the newest event of the member's
    /// chain was signed by another key their identity still authorises (not
    /// a paper key) and this device has not taken over since it saw that
    /// event ([`Node::take_over`]). A rotation is judged by its new key (it
    /// hands over to the device that holds it); an event of a key revoked
    /// since hands over to no one in particular.
    pub fn other_device_signing(&self) -> Option<String> {
        if self.recovering {
            // Its recovery, once it counts, is what hands over.
            return None;
        }
        let log = self.log.as_ref()?;
        let did = self.identity.as_ref()?.did;
        let own = self.signer.as_ref()?.public();
        let (_, head) = log.next_position(&did);
        let head = log.get(&head?)?;
        // A rotation hands over to its new key (a paper key replaced by the
        // device that used it; a device's routine rotation).
        let signer = match head.kind().as_str() {
            KIND_KEY_ROTATE => head
                .body::<KeyRotate>()
                .map_or(head.content().signer, |rotate| rotate.new),
            _ => head.content().signer,
        };
        if signer == own {
            return None;
        }
        let label = log.key_state(&did).authorised.get(&signer)?.clone();
        if label == PAPER_LABEL || self.take_over.as_deref() == Some(&head.id().to_string()) {
            return None;
        }
        Some(label)
    }

    /// Makes this device the one that signs for its member. It signs again
    /// once it has synced with a majority of the other members' nodes (as
    /// after a restore), so it continues the chain after whatever the other
    /// device signed last.
    pub fn take_over(&mut self) -> Result<(), NodeError> {
        self.any_signer()?;
        self.link_device()
    }

    /// Prepares a device to take over once it has synced: a new device
    /// linked by a paper key or a device code (`icnctl id link`), or one
    /// that takes over from another ([`Node::take_over`]).
    pub fn link_device(&mut self) -> Result<(), NodeError> {
        self.set_meta(META_TAKE_OVER, TAKE_OVER_AFTER_SYNC)?;
        self.take_over = Some(TAKE_OVER_AFTER_SYNC.to_owned());
        let marker = self.dir.root().join(RESTORED_MARKER);
        std::fs::write(&marker, b"").map_err(|error| {
            NodeError::Identity(format!("cannot write {}: {error}", marker.display()))
        })?;
        self.awaiting_sync = true;
        self.witnesses.clear();
        Ok(())
    }

    /// Records the chain's head as the one this device took over from.
    fn settle_take_over(&mut self) -> Result<(), NodeError> {
        let did = self.identity.as_ref().ok_or(NodeError::NoIdentity)?.did;
        let head = self
            .log
            .as_ref()
            .and_then(|log| log.next_position(&did).1)
            .map_or_else(String::new, |id| id.to_string());
        self.set_meta(META_TAKE_OVER, &head)?;
        self.take_over = Some(head);
        Ok(())
    }

    /// A device linked with a paper key replaces it with its own key as
    /// soon as it signs: a paper key is for one use. Returns the event.
    pub fn replace_paper_key(&mut self, now: Timestamp) -> Result<Option<EventId>, NodeError> {
        if self.awaiting_sync || self.own_key.is_none() {
            return Ok(None);
        }
        let (Some(log), Some(identity), Some(signer)) = (&self.log, &self.identity, &self.signer)
        else {
            return Ok(None);
        };
        let paper = log
            .key_state(&identity.did)
            .authorised
            .get(&signer.public())
            == Some(&PAPER_LABEL.to_owned());
        if !paper || self.signer().is_err() {
            return Ok(None);
        }
        let own = self.own_key.take().expect("checked above");
        let id = self.rotate_key(own, "device", now)?;
        tracing::info!(
            "This device now signs with its own key; the paper key it was linked with no longer signs. Write a new one: icnctl id paper-key"
        );
        Ok(Some(id))
    }

    /// The keystore's key, authorised or (while recovering) not.
    pub fn any_signer(&self) -> Result<(&PublicIdentity, &KeyPair), NodeError> {
        let identity = self.identity.as_ref().ok_or(NodeError::NoIdentity)?;
        let signer = self.signer.as_ref().ok_or(NodeError::KeystoreLocked)?;
        Ok((identity, signer))
    }

    /// Founds a co-op with this node's identity as its first founder.
    pub fn create_coop(
        &mut self,
        name: &str,
        other_founders: &[Did],
        params: &BTreeMap<String, String>,
        now: Timestamp,
    ) -> Result<CoopId, NodeError> {
        if let Some(log) = &self.log {
            return Err(NodeError::AlreadyInCoop {
                name: log.genesis_body().name.clone(),
            });
        }
        let (identity, signer) = self.signer()?;
        let mut founders = vec![identity.did];
        for founder in other_founders {
            if !founders.contains(founder) {
                founders.push(*founder);
            }
        }
        let body = Genesis {
            name: name.trim().to_owned(),
            founders,
            charter: DEFAULT_CHARTER.to_owned(),
            currencies: vec![hours()],
            params: params.clone(),
        };
        body.check(identity.did)
            .map_err(|rejection| NodeError::BadInput(rejection.to_string()))?;
        if identity.did.inception_key() != signer.public() {
            return Err(NodeError::BadInput(
                "a co-op is founded with the identity's inception key".to_owned(),
            ));
        }
        let genesis = Event::sign(
            EventContent {
                format: FORMAT_VERSION,
                scope: CoopId::GENESIS,
                author: identity.did,
                seq: 1,
                prev: None,
                deps: vec![],
                timestamp: now,
                kind: EventKind::new(KIND_GENESIS).expect("a valid constant"),
                body: encode_body(&body),
                signer: signer.public(),
            },
            signer,
        )
        .map_err(|error| NodeError::BadInput(error.to_string()))?;
        let genesis = genesis
            .verify()
            .expect("an event this node just signed verifies");
        self.join(genesis)
    }

    /// Joins the co-op that `genesis` founds: records it and starts its log.
    pub fn join(&mut self, genesis: VerifiedEvent) -> Result<CoopId, NodeError> {
        if let Some(log) = &self.log {
            return Err(NodeError::AlreadyInCoop {
                name: log.genesis_body().name.clone(),
            });
        }
        let genesis_id = genesis.id().to_string();
        let (log, changes) = Log::new(genesis, LogConfig::default(), self.modules.domains())
            .map_err(NodeError::Rejected)?;
        self.store
            .commit(&changes, &[(META_GENESIS, &genesis_id)])?;
        let id = log.coop();
        self.log = Some(log);
        Ok(id)
    }

    /// Signs and records an event by this node's identity.
    pub fn append(
        &mut self,
        kind: &str,
        body: Vec<u8>,
        now: Timestamp,
    ) -> Result<EventId, NodeError> {
        self.append_with(kind, body, now, &[])
    }

    /// [`Node::append`], with `deps` that must be in the event's causal
    /// past (a recovery's approvals). A recovering node signs only
    /// `identity.recover`.
    pub fn append_with(
        &mut self,
        kind: &str,
        body: Vec<u8>,
        now: Timestamp,
        deps: &[EventId],
    ) -> Result<EventId, NodeError> {
        if self.awaiting_sync {
            return Err(NodeError::AwaitingSync {
                synced: self.witnesses(),
                needed: self.witnesses_needed(),
            });
        }
        let (identity, signer) = if kind == icn_kernel::KIND_RECOVER {
            self.any_signer()?
        } else {
            self.signer()?
        };
        let (did, signer) = (identity.did, signer.clone());
        let log = self.log.as_ref().ok_or(NodeError::NoCoop)?;
        let (seq, prev) = log.next_position(&did);
        let previous_time = prev
            .and_then(|id| log.get(&id))
            .map_or(Timestamp(0), Event::timestamp);
        let mut deps = deps.to_vec();
        for head in log.unseen_heads(&did) {
            if deps.len() < icn_kernel::DEPS_MAX && !deps.contains(&head) {
                deps.push(head);
            }
        }
        deps.sort();
        let verified = VerifiedEvent::sign(
            EventContent {
                format: FORMAT_VERSION,
                scope: log.coop(),
                author: did,
                seq,
                prev,
                deps,
                timestamp: now.max(previous_time),
                kind: EventKind::new(kind)
                    .map_err(|error| NodeError::BadInput(error.to_string()))?,
                body,
                signer: signer.public(),
            },
            &signer,
        )
        .map_err(|error| NodeError::BadInput(error.to_string()))?;
        let id = verified.id();
        let log = self.log.as_mut().ok_or(NodeError::NoCoop)?;
        let batched = self.batch.is_some();
        let mut own = Changes::default();
        let changes = self.batch.as_mut().unwrap_or(&mut own);
        match log.ingest_own(verified, now, changes) {
            Verdict::Accepted if batched => Ok(id),
            Verdict::Accepted => {
                self.commit(&own)?;
                Ok(id)
            }
            Verdict::Rejected(Rejection::Rule { reason }) => {
                // The member reads names, not DIDs, and is spoken to.
                Err(NodeError::Rejected(Rejection::Rule {
                    reason: self.named(&to_the_author(&reason, &did)),
                }))
            }
            Verdict::Rejected(rejection) => Err(NodeError::Rejected(rejection)),
            other => Err(NodeError::BadInput(format!("unexpected verdict {other:?}"))),
        }
    }

    /// Runs `work` with this node's new events committed in one transaction
    /// at the end (group commit: many members' requests share one fsync).
    /// Until then they are in the log but not durable, so callers answer
    /// only after this returns `Ok`; if the commit fails, the log is
    /// rebuilt from the store and nothing of the batch happened.
    pub fn batched<R>(&mut self, work: impl FnOnce(&mut Node) -> R) -> Result<R, NodeError> {
        self.batch = Some(Changes::default());
        let result = work(self);
        let changes = self.batch.take().expect("set above");
        self.commit(&changes)?;
        Ok(result)
    }

    /// Ingests verified events and commits everything they changed in one
    /// transaction. Returns the verdict for each input, in order.
    pub fn ingest(
        &mut self,
        events: Vec<VerifiedEvent>,
        now: Timestamp,
    ) -> Result<Vec<Verdict>, NodeError> {
        let log = self.log.as_mut().ok_or(NodeError::NoCoop)?;
        let mut changes = Changes::default();
        let verdicts = events
            .into_iter()
            .map(|event| log.ingest(event, now, &mut changes))
            .collect();
        self.commit(&changes)?;
        Ok(verdicts)
    }

    /// Writes what the log changed in one transaction. If that fails, the
    /// in-memory log is rebuilt from the store so that it never runs ahead of
    /// what is durable.
    fn commit(&mut self, changes: &Changes) -> Result<(), NodeError> {
        if let Err(error) = self.store.commit(changes, &[]) {
            self.log = None;
            self.load_log()?;
            return Err(error.into());
        }
        self.announce(changes);
        self.warn_of_forks(changes);
        Ok(())
    }

    /// Display names by DID (from the module that keeps members' profiles),
    /// read once for a whole answer.
    pub fn member_names(&self) -> BTreeMap<String, String> {
        self.modules
            .iter()
            .find_map(|module| module.member_names(self))
            .unwrap_or_default()
    }

    /// `text` with every member's DID replaced by their name (where they
    /// have one): rules speak of DIDs, members read names.
    pub fn named(&self, text: &str) -> String {
        if !text.contains("did:icn:") {
            return text.to_owned();
        }
        self.member_names()
            .iter()
            .filter(|(_, name)| !name.is_empty())
            .fold(text.to_owned(), |text, (did, name)| {
                text.replace(did.as_str(), name)
            })
    }

    /// Logs one warning line per fork this node proves: an admin reading
    /// the log should not learn of an equivocation from a member.
    fn warn_of_forks(&mut self, changes: &Changes) {
        let new: Vec<(Did, u64)> = changes
            .evidence
            .iter()
            .map(|evidence| (evidence.author, evidence.seq))
            .filter(|slot| !self.warned_forks.contains(slot))
            .collect();
        if new.is_empty() {
            return;
        }
        let names = self.member_names();
        for (author, seq) in new {
            let name = names
                .get(&author.to_string())
                .cloned()
                .unwrap_or_else(|| author.to_string());
            tracing::warn!(
                member = %author,
                position = seq,
                "{name} signed two different entries at position {seq} (a copied data directory, \
                 a restored old backup, or a stolen key). The branch the co-op built on counts; \
                 the other is void and its payees are told. {name}'s new spending is frozen until \
                 the co-op votes: icnctl governance propose --unfreeze {name:?}"
            );
            self.warned_forks.insert((author, seq));
        }
    }

    /// Tells push subscribers of the events a durable commit kept.
    fn announce(&self, changes: &Changes) {
        if self.kept.receiver_count() == 0 {
            return;
        }
        for (event, _) in &changes.stored {
            // No subscriber left is fine: sync carries everything anyway.
            let _ = self.kept.send(event.clone());
        }
    }

    /// Events as they are newly kept and durable, for pushing to peers.
    pub fn subscribe_kept(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.kept.subscribe()
    }

    /// The seed of the key this node signs with: its network identity too,
    /// so a peer's connection is authenticated by the member's device key.
    pub fn network_seed(&self) -> Option<zeroize::Zeroizing<[u8; 32]>> {
        self.signer.as_ref().map(KeyPair::seed)
    }

    /// Members whose nodes replicate the log: everyone admitted who has not
    /// left (a suspended member still keeps a copy).
    pub fn replicating_members(&self) -> Vec<Did> {
        let Some(log) = self.log.as_ref() else {
            return Vec::new();
        };
        log.coop_state()
            .members()
            .filter(|(_, membership)| membership.status != icn_kernel::Status::Exited)
            .map(|(did, _)| *did)
            .collect()
    }

    /// Every member's device keys (paper keys are not devices): the
    /// endpoints a node may dial through the co-op's relay.
    pub fn member_device_keys(&self) -> Vec<[u8; 32]> {
        let Some(log) = self.log.as_ref() else {
            return Vec::new();
        };
        let members = self.replicating_members();
        let recovering = members.iter().flat_map(|member| {
            log.recovery_approvals(member)
                .iter()
                .filter(|approval| log.recovery_approved(member, &approval.new_key))
                .map(|approval| *approval.new_key.as_bytes())
        });
        let mut keys: Vec<[u8; 32]> = members
            .iter()
            .flat_map(|member| log.key_state(member).authorised.into_iter())
            .filter(|(_, label)| label != PAPER_LABEL)
            .map(|(key, _)| *key.as_bytes())
            .chain(recovering)
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// Peers to dial, as tickets (`icnctl coop join` remembers its ticket).
    pub fn remembered_peers(&self) -> Result<Vec<String>, NodeError> {
        Ok(self
            .store
            .meta(META_PEERS)?
            .and_then(|peers| serde_json::from_str(&peers).ok())
            .unwrap_or_default())
    }

    pub fn remember_peer(&mut self, ticket: &str) -> Result<(), NodeError> {
        let mut peers = self.remembered_peers()?;
        if !peers.iter().any(|known| known == ticket) {
            peers.push(ticket.to_owned());
            let peers = serde_json::to_string(&peers).expect("strings serialise");
            self.set_meta(META_PEERS, &peers)?;
        }
        Ok(())
    }

    /// Saves one of this node's own settings (not replicated).
    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<(), NodeError> {
        self.store.commit(&Changes::default(), &[(key, value)])?;
        Ok(())
    }

    /// Re-offers events whose timestamps have come within reach.
    pub fn tick(&mut self, now: Timestamp) -> Result<(), NodeError> {
        let Some(log) = self.log.as_mut() else {
            return Ok(());
        };
        let mut changes = Changes::default();
        log.tick(now, &mut changes);
        if !changes.stored.is_empty() {
            self.commit(&changes)?;
        }
        Ok(())
    }

    /// Creates a paper key, authorises it by an identity event, and returns it
    /// for printing. It is not stored anywhere on this device.
    pub fn add_paper_key(&mut self, now: Timestamp) -> Result<IssuedKey, NodeError> {
        self.add_key(PAPER_LABEL, now)
    }

    /// Creates a key for another device of this member (`label`: what it
    /// is, "Ada's phone"), authorises it, and returns its secret as a
    /// one-time code for `icnctl id link` on that device.
    pub fn add_device(&mut self, label: &str, now: Timestamp) -> Result<IssuedKey, NodeError> {
        let label = label.trim();
        if label.is_empty() || label.eq_ignore_ascii_case(PAPER_LABEL) || label.chars().count() > 64
        {
            return Err(NodeError::BadInput(
                "name the device in 1 to 64 characters (not \"paper\"), e.g. \"Ada's phone\""
                    .to_owned(),
            ));
        }
        self.add_key(label, now)
    }

    fn add_key(&mut self, label: &str, now: Timestamp) -> Result<IssuedKey, NodeError> {
        let key = KeyPair::generate().map_err(|error| NodeError::Identity(error.to_string()))?;
        let body = encode_body(&KeyAdd {
            key: key.public(),
            label: label.to_owned(),
        });
        let event_id = self.append(KIND_KEY_ADD, body, now)?;
        Ok(IssuedKey {
            paper_key: paper_key_encode(&key).to_string(),
            public_key: key.public(),
            event_id,
        })
    }

    /// Revokes one of this identity's keys (a lost device, a used paper key).
    pub fn revoke_key(
        &mut self,
        key: icn_identity::PublicKey,
        now: Timestamp,
    ) -> Result<EventId, NodeError> {
        self.append(KIND_KEY_REVOKE, encode_body(&KeyRevoke { key }), now)
    }

    /// Replaces this device's signing key with `new` by an `identity.key_rotate`
    /// event signed with the current key. The caller must already hold `new`
    /// in the keystore, so that a crash at any point leaves a usable key.
    pub fn rotate_key(
        &mut self,
        new: KeyPair,
        label: &str,
        now: Timestamp,
    ) -> Result<EventId, NodeError> {
        let (_, current) = self.signer()?;
        let body = encode_body(&KeyRotate {
            new: new.public(),
            label: label.to_owned(),
            old: current.public(),
        });
        let id = self.append(KIND_KEY_ROTATE, body, now)?;
        let identity = self.identity.as_mut().ok_or(NodeError::NoIdentity)?;
        identity.device_key = new.public();
        identity.device_label = label.to_owned();
        self.signer = Some(new);
        if let Err(error) = self.dir.write_public_identity(identity) {
            // The next start repairs identity.json from the log.
            tracing::warn!(%error, "Could not update identity.json after rotating the key.");
        }
        Ok(id)
    }
}

/// Deps for a new event by `author`: the heads of other authors that its
/// causal past (through `prev`) does not already reach, so that what this
/// node has seen — payments to the author above all — is in the causal past
/// of what it signs. At most `DEPS_MAX`, newest knowledge first by author order.
pub struct Replayed {
    pub log: Log,
    /// A full rewrite of the views, to apply when they disagree.
    pub changes: Changes,
    pub views_agree: bool,
    /// Events whose signature was verified: all of them with
    /// [`Signatures::All`], else those without an intact checksum.
    pub verified: usize,
    /// Events verified whose stored checksum was missing or damaged: write
    /// theirs ([`Store::write_checksums`]) so the next start trusts them.
    pub checksums_missing: Vec<Event>,
}

/// Which stored events' signatures a replay verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signatures {
    /// Only those whose bytes a checksum does not show unchanged since
    /// they were verified and stored: what a start does.
    Changed,
    /// Every one (`icnctl verify`).
    All,
}

/// The log rebuilt from a store's events, and whether the stored views and
/// counted flags agree with it. `None` when the store holds no co-op yet.
pub fn replay_store(
    store: &Store,
    modules: &Modules,
    signatures: Signatures,
) -> Result<Option<Replayed>, NodeError> {
    let Some(genesis_id) = store.meta(META_GENESIS)? else {
        return Ok(None);
    };
    let genesis_id: EventId = genesis_id.parse().map_err(|_| NodeError::Damaged {
        position: 0,
        reason: "the recorded genesis id is not an event id".to_owned(),
    })?;
    let stored = store.events()?;
    // In the store's order; the events to verify leave a gap, filled below.
    let mut slots: Vec<Option<VerifiedEvent>> = Vec::with_capacity(stored.len());
    let mut to_verify: Vec<(usize, Event)> = Vec::new();
    let mut flags: Vec<(EventId, bool)> = Vec::with_capacity(stored.len());
    // Consumed as decoded: the raw rows are not kept beside the events.
    for (position, row) in stored.into_iter().enumerate() {
        let event = Store::decode(&row).map_err(|error| NodeError::Damaged {
            position: position + 1,
            reason: error.to_string(),
        })?;
        flags.push((event.id(), row.counted));
        if signatures == Signatures::Changed && row.unchanged() {
            slots.push(Some(VerifiedEvent::verified_before_it_was_stored(event)));
        } else {
            slots.push(None);
            to_verify.push((position, event));
        }
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (positions, events): (Vec<usize>, Vec<Event>) = to_verify.into_iter().unzip();
    let verified_count = events.len();
    let mut checksums_missing = Vec::new();
    for (position, result) in positions
        .into_iter()
        .zip(Event::verify_all(events, threads))
    {
        let event = result.map_err(|_| NodeError::Damaged {
            position: position + 1,
            reason: "its signature does not verify".to_owned(),
        })?;
        if signatures == Signatures::Changed {
            checksums_missing.push(event.event().clone());
        }
        slots[position] = Some(event);
    }
    let mut genesis = None;
    let mut verified = Vec::with_capacity(slots.len());
    for event in slots.into_iter().flatten() {
        if event.id() == genesis_id {
            genesis = Some(event);
        } else {
            verified.push(event);
        }
    }
    let genesis = genesis.ok_or(NodeError::Damaged {
        position: 0,
        reason: "the genesis event is missing".to_owned(),
    })?;
    let mut evidence: Vec<Evidence> = Vec::new();
    for (author, seq, id) in store.evidence()? {
        let author: Did = author.parse().map_err(|error| NodeError::Damaged {
            position: 0,
            reason: format!("evidence names a bad author: {error}"),
        })?;
        match evidence.last_mut() {
            Some(last) if last.author == author && last.seq == seq => {
                last.events.insert(id);
            }
            _ => evidence.push(Evidence {
                author,
                seq,
                events: [id].into(),
            }),
        }
    }
    let (log, replayed) = Log::replay(
        genesis,
        LogConfig::default(),
        modules.domains(),
        verified,
        evidence,
        now(),
    )
    .map_err(NodeError::Rejected)?;
    // Compared row by row as the store reads them: no copy of the views.
    let views_match = store.views_match(&replayed.rows)?;
    let flags_agree = flags
        .iter()
        .all(|(id, counted)| log.is_counted(id) == *counted);
    Ok(Some(Replayed {
        views_agree: views_match && flags_agree,
        log,
        changes: replayed,
        verified: verified_count,
        checksums_missing,
    }))
}
