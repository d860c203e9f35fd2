//! First start in the browser: while a node has no identity, its gateway
//! serves a set-up that creates one (the keystore is written by the daemon;
//! the passphrase never leaves this machine's memory), signs the visitor
//! in, and founds a co-op or joins one; networking and duties then start
//! without a restart. `icnctl id init` / `coop init` / `coop join` do the
//! same from a terminal, and either sees what the other made.
//!
//! Nothing here weakens a node that is set up: the identity step answers
//! only while there is no identity, and only to loopback clients unless the
//! gateway was bound elsewhere on purpose (then it asks for the one-time
//! code icnd printed). The identity step is taken once: a second visitor
//! finds it done, and the co-op step needs the token the first one got.

use crate::prelude::*;
use icn_identity::{Did, KeyPair, KeystoreContents, StoredKey};

use crate::{
    layout::{DataDir, PublicIdentity},
    node::NodeError,
};

/// Creates this data directory's identity: a fresh key, the keystore
/// encrypted with `passphrase`, and `identity.json`. Refuses a weak
/// passphrase (`icn_identity::check_new_passphrase`) and a directory that
/// already has an identity.
pub fn create_identity(
    dir: &DataDir,
    passphrase: &str,
    label: &str,
    kdf_log_n: u8,
) -> Result<(PublicIdentity, KeyPair), NodeError> {
    if dir.keystore().exists() || dir.identity_file().exists() {
        return Err(NodeError::Conflict(format!(
            "an identity already exists in {}",
            dir.root().display()
        )));
    }
    icn_identity::check_new_passphrase(passphrase, &[label, "icn", "coop"])
        .map_err(NodeError::BadInput)?;
    std::fs::create_dir_all(dir.root()).map_err(|error| {
        NodeError::Identity(format!("cannot create the data directory: {error}"))
    })?;
    let key = KeyPair::generate().map_err(|error| NodeError::Identity(error.to_string()))?;
    let did = Did::from_inception_key(key.public());
    let contents = KeystoreContents::new(did, vec![StoredKey::new(label, &key)]);
    dir.keystore()
        .create(&contents, passphrase, kdf_log_n)
        .map_err(|error| NodeError::Identity(error.to_string()))?;
    let identity = PublicIdentity {
        did,
        device_key: key.public(),
        device_label: label.to_owned(),
    };
    dir.write_public_identity(&identity)
        .map_err(|error| NodeError::Identity(format!("cannot write identity.json: {error}")))?;
    Ok((identity, key))
}

/// How a new device of an existing member comes to sign for them.
pub enum Arrival {
    /// `icnctl id link`: with a device code or a paper key (`key`), taken
    /// on trust until the device has synced; `own` replaces a paper key as
    /// soon as the device signs (a paper key is for one use).
    Link { key: KeyPair, own: Box<KeyPair> },
    /// `icnctl id recover`: `key` signs once the member's guardians have
    /// approved it and the waiting time has passed.
    Recover { key: KeyPair },
}

impl Arrival {
    /// The keystore's keys, the one that signs first first.
    fn stored(&self) -> Vec<(&'static str, &KeyPair)> {
        match self {
            Arrival::Link { key, own } => vec![("linked device", key), ("device", &**own)],
            Arrival::Recover { key } => vec![("recovered device", key)],
        }
    }

    /// The keys to give the node, in the keystore's order.
    pub fn keys(&self) -> Vec<KeyPair> {
        self.stored()
            .into_iter()
            .map(|(_, key)| key.clone())
            .collect()
    }

    /// The key this device reaches the co-op's nodes with before the log
    /// lets it sign (fetching the genesis).
    pub fn network_key(&self) -> &KeyPair {
        match self {
            Arrival::Link { own, .. } => own,
            Arrival::Recover { key } => key,
        }
    }

    pub fn is_link(&self) -> bool {
        matches!(self, Arrival::Link { .. })
    }
}

/// Writes a new device's keystore (encrypted with `passphrase`, which must
/// pass the strength rule) and `identity.json` for `member` into `dir`,
/// which has no identity; a recovering device is marked as one. The node
/// then takes it with [`crate::Node::arrive`].
pub fn write_device(
    dir: &DataDir,
    member: Did,
    arrival: &Arrival,
    passphrase: &str,
    kdf_log_n: u8,
) -> Result<(), NodeError> {
    if dir.keystore().exists() || dir.identity_file().exists() {
        return Err(NodeError::Conflict(format!(
            "an identity already exists in {}",
            dir.root().display()
        )));
    }
    icn_identity::check_new_passphrase(passphrase, &["icn", "coop"])
        .map_err(NodeError::BadInput)?;
    let io = |what: &str, error: std::io::Error| {
        NodeError::Identity(format!("cannot write {what}: {error}"))
    };
    std::fs::create_dir_all(dir.root()).map_err(|error| io("the data directory", error))?;
    if !arrival.is_link() {
        std::fs::write(dir.root().join(crate::node::RECOVERING_MARKER), b"")
            .map_err(|error| io("the recovering marker", error))?;
    }
    let stored = arrival.stored();
    let contents = KeystoreContents::new(
        member,
        stored
            .iter()
            .map(|&(label, key)| StoredKey::new(label, key))
            .collect(),
    );
    dir.keystore()
        .create(&contents, passphrase, kdf_log_n)
        .map_err(|error| NodeError::Identity(error.to_string()))?;
    let (label, key) = stored[0];
    dir.write_public_identity(&PublicIdentity {
        did: member,
        device_key: key.public(),
        device_label: label.to_owned(),
    })
    .map_err(|error| io("identity.json", error))
}

/// Undoes [`write_device`] after the node could not take the device.
fn unwrite_device(dir: &DataDir) {
    for path in [
        dir.keystore().path().to_owned(),
        dir.identity_file(),
        dir.root().join(crate::node::RECOVERING_MARKER),
        dir.root().join(crate::node::RESTORED_MARKER),
    ] {
        let _ = std::fs::remove_file(path);
    }
}

use std::net::IpAddr;

use axum::{
    Json,
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode},
};

use crate::http::{ApiError, SharedState, parse_json, with_node};

/// `GET /api/v1/setup`.
pub(crate) async fn status(
    State(state): State<SharedState>,
    crate::gateway::ClientIp(client): crate::gateway::ClientIp,
    headers: HeaderMap,
) -> Result<Json<icn_api::SetupStatus>, ApiError> {
    // Whose backup waits is told to this computer's own page only.
    let local = client.is_loopback() && local_host(&headers);
    let (identity, coop, dir) = with_node(&state, |node| {
        Ok((
            node.identity().is_some(),
            node.log().is_some(),
            node.data_dir().clone(),
        ))
    })
    .await?;
    let upload = upload_path(&dir);
    let backup = if identity || !local || !upload.exists() {
        None
    } else {
        tokio::task::spawn_blocking(move || {
            let whose = crate::backup::whose(&upload).ok()?;
            Some(backup_answer(&whose, &upload))
        })
        .await
        .ok()
        .flatten()
    };
    Ok(Json(icn_api::SetupStatus {
        identity,
        coop,
        code_required: !identity && !client.is_loopback(),
        backup,
    }))
}

/// Where a backup file sent from the page waits for its passphrase; parts
/// of one still arriving are `restore.*.part` beside it.
const UPLOAD_FILE: &str = "restore.icnbak";

fn upload_path(dir: &crate::DataDir) -> std::path::PathBuf {
    dir.root().join(UPLOAD_FILE)
}

/// Removes backup files sent from the page, whole or in part: once the
/// node has an identity, none will be restored.
fn remove_uploads(dir: &crate::DataDir) {
    let Ok(entries) = std::fs::read_dir(dir.root()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let upload =
            name == UPLOAD_FILE || (name.starts_with("restore.") && name.ends_with(".part"));
        if upload && let Err(error) = std::fs::remove_file(entry.path()) {
            tracing::warn!(path = %entry.path().display(), %error, "Could not remove a backup file sent for restoring.");
        }
    }
}

/// The largest backup file the page takes (a restore reads it whole).
pub(crate) const BACKUP_UPLOAD_MAX_BYTES: u64 = 512 << 20;

fn backup_answer(whose: &PublicIdentity, path: &std::path::Path) -> icn_api::SetupBackup {
    icn_api::SetupBackup {
        did: whose.did.to_string(),
        device: whose.device_label.clone(),
        bytes: std::fs::metadata(path).map_or(0, |meta| meta.len()),
    }
}

/// Who may take a set-up step: a page this computer loaded from the node
/// (a loopback client naming a loopback host: [`local_page`]), or, when the
/// gateway was bound for other machines on purpose, a client with icnd's
/// one-time code ([`with_code`]).
fn local_page(client: IpAddr, headers: &HeaderMap) -> Result<(), ApiError> {
    // A page from elsewhere whose name was made to point at 127.0.0.1 (DNS
    // rebinding) talks to us as loopback, but names its own host.
    if client.is_loopback() && !local_host(headers) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "setup_host",
            "set up from http://127.0.0.1 or http://localhost on this computer",
            None,
        ));
    }
    Ok(())
}

fn with_code(state: &SharedState, client: IpAddr, code: Option<&str>) -> Result<(), ApiError> {
    if client.is_loopback() {
        return Ok(());
    }
    let expected = state.setup_code.get();
    let given = code.unwrap_or("").trim();
    if expected.is_none_or(|code| code.as_str() != given) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "setup_code",
            "from another machine, set-up needs the one-time code icnd printed in its terminal",
            Some(
                "type the code icnd printed when it started, or set up on the computer that runs icnd",
            ),
        ));
    }
    Ok(())
}

/// This node's data directory, while it has no identity (else 409).
async fn unset(state: &SharedState) -> Result<crate::DataDir, ApiError> {
    with_node(state, |node| {
        if node.identity().is_some() {
            return Err(NodeError::Conflict(
                "this node already has an identity: sign in with its passphrase".to_owned(),
            ));
        }
        Ok(node.data_dir().clone())
    })
    .await
}

/// Whether the request names this computer as its host (a loopback
/// address or `localhost`), as a page the node served does.
fn local_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers
        .get(axum::http::header::HOST)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// A set-up step's request: from a page this computer loaded
/// ([`local_page`], else 403), its JSON body parsed.
pub(crate) struct Step<T> {
    client: IpAddr,
    request: T,
}

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for Step<T> {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let client = crate::gateway::ClientIp::of(request.extensions());
        local_page(client, request.headers())?;
        let body = Bytes::from_request(request, state).await?;
        Ok(Step {
            client,
            request: parse_json(&body)?,
        })
    }
}

/// A set-up step that ends with the visitor signed in, under way: its turn
/// (one at a time: the second visitor finds it done), the data directory
/// of this node (which has no identity yet), and the browser to sign in.
struct Turn<'a> {
    _turn: tokio::sync::MutexGuard<'a, ()>,
    dir: crate::DataDir,
    key: Option<icn_identity::PublicKey>,
    label: String,
}

impl<'a> Turn<'a> {
    async fn take(
        state: &'a SharedState,
        client: IpAddr,
        request: &icn_api::SetupIdentity,
    ) -> Result<Turn<'a>, ApiError> {
        let turn = state.setup_turn.lock().await;
        let dir = unset(state).await?;
        let key = crate::gateway::browser_key(request.key.as_deref())?;
        let label = crate::gateway::browser_label(request.label.as_deref())?;
        with_code(state, client, request.code.as_deref())?;
        Ok(Turn {
            _turn: turn,
            dir,
            key,
            label,
        })
    }

    /// The node has its identity: networking starts, and the visitor is
    /// signed in.
    async fn signed_in(
        self,
        state: &SharedState,
        did: icn_identity::Did,
    ) -> Result<(StatusCode, Json<icn_api::Token>), ApiError> {
        remove_uploads(&self.dir);
        if let Some(config) = state.config.get() {
            crate::daemon::start_net(state, config).await;
        }
        let session = crate::gateway::register_browser(state, did, self.key, self.label).await?;
        Ok((
            StatusCode::CREATED,
            Json(crate::gateway::token(
                did.to_string(),
                state.auth.issue(did, "read write", session),
            )),
        ))
    }
}

/// `POST /api/v1/setup/identity`: creates the identity, signs the visitor
/// in, and starts networking.
pub(crate) async fn identity(
    State(state): State<SharedState>,
    Step { client, request }: Step<icn_api::SetupIdentity>,
) -> Result<(StatusCode, Json<icn_api::Token>), ApiError> {
    let turn = Turn::take(&state, client, &request).await?;
    let passphrase = zeroize::Zeroizing::new(request.passphrase);
    let dir = turn.dir.clone();
    let created = tokio::task::spawn_blocking(move || {
        create_identity(
            &dir,
            &passphrase,
            "this device",
            crate::passphrase::kdf_log_n(),
        )
    })
    .await
    .map_err(|_| ApiError::from(NodeError::BadInput("the set-up stopped".into())))??;
    let (identity, key_pair) = created;
    with_node(&state, move |node| node.adopt_identity(vec![key_pair])).await?;
    tracing::info!(did = %identity.did, "Created this node's identity from the set-up page.");
    turn.signed_in(&state, identity.did).await
}

/// `PUT /api/v1/setup/backup`: a backup file to restore (the bytes as
/// they are), kept in the data directory until [`restore`] is given its
/// passphrase. A second one replaces the first.
pub(crate) async fn backup(
    State(state): State<SharedState>,
    crate::gateway::ClientIp(client): crate::gateway::ClientIp,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<icn_api::SetupBackup>), ApiError> {
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;

    local_page(client, &headers)?;
    let dir = unset(&state).await?;
    let code = headers
        .get("icn-setup-code")
        .and_then(|value| value.to_str().ok());
    with_code(&state, client, code)?;
    let path = upload_path(&dir);
    // Received without holding the set-up's turn (a slow upload must not
    // stall the other steps), under a name of its own; the turn is taken
    // only to put it in place.
    let partial = {
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|error| {
            ApiError::from(NodeError::Identity(format!("no randomness: {error}")))
        })?;
        dir.root().join(format!(
            "restore.{}.part",
            nonce.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ))
    };
    let failed = |error: std::io::Error| {
        ApiError::from(NodeError::Identity(format!(
            "cannot keep the backup file in {}: {error}",
            dir.root().display()
        )))
    };
    let mut file = {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .map_err(failed)?;
        tokio::fs::File::from_std(file)
    };
    let mut stream = body.into_data_stream();
    let mut bytes = 0u64;
    let received = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|error| {
                ApiError::from(NodeError::BadInput(format!(
                    "the backup file did not arrive whole: {error}"
                )))
            })?;
            bytes += chunk.len() as u64;
            if bytes > BACKUP_UPLOAD_MAX_BYTES {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("a backup file here is at most {BACKUP_UPLOAD_MAX_BYTES} bytes"),
                    Some("restore a larger backup with icnctl restore FILE"),
                ));
            }
            file.write_all(&chunk).await.map_err(failed)?;
        }
        file.sync_all().await.map_err(failed)?;
        let checked = partial.clone();
        tokio::task::spawn_blocking(move || crate::backup::whose(&checked))
            .await
            .map_err(|_| ApiError::from(NodeError::BadInput("the check stopped".into())))?
            .map_err(|error| {
                // Said of the file sent, not of where it waits here.
                let error = match error {
                    crate::backup::BackupError::NotABackup { .. } => NodeError::BadInput(
                        "that file is not an ICN backup: choose an icn-backup-….icnbak file (from `icnctl backup`, or the daily backups in the data directory's backups/)".to_owned(),
                    ),
                    crate::backup::BackupError::Damaged { reason, .. } => NodeError::BadInput(
                        format!("that backup is damaged or cut short ({reason}): try another copy"),
                    ),
                    other => NodeError::from(other),
                };
                ApiError::from(error)
            })
    }
    .await;
    let whose = match received {
        Ok(whose) => whose,
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            return Err(error);
        }
    };
    let _turn = state.setup_turn.lock().await;
    if let Err(error) = unset(&state).await {
        let _ = std::fs::remove_file(&partial);
        return Err(error);
    }
    std::fs::rename(&partial, &path).map_err(failed)?;
    tracing::info!(did = %whose.did, bytes, "Received a backup file to restore from the set-up page.");
    Ok((StatusCode::CREATED, Json(backup_answer(&whose, &path))))
}

/// `POST /api/v1/setup/restore`: restores the backup file sent before with
/// its keystore's passphrase, signs the visitor in, and starts networking.
/// The restored node signs once it has caught up with a majority of the
/// other members' nodes, unless `standalone`.
pub(crate) async fn restore(
    State(state): State<SharedState>,
    Step { client, request }: Step<icn_api::SetupRestore>,
) -> Result<(StatusCode, Json<icn_api::Token>), ApiError> {
    let turn = Turn::take(&state, client, &request.sign_in).await?;
    let path = upload_path(&turn.dir);
    if !path.exists() {
        return Err(NodeError::NotFound(
            "no backup file to restore: send it first (PUT /api/v1/setup/backup)".to_owned(),
        )
        .into());
    }
    let passphrase = zeroize::Zeroizing::new(request.sign_in.passphrase);
    let wait_for_peers = !request.standalone;
    let from = path.clone();
    let did = with_node(&state, move |node| {
        node.restore_backup(&from, &passphrase, wait_for_peers)
    })
    .await?;
    tracing::info!(%did, wait_for_peers, "Restored a backup from the set-up page.");
    turn.signed_in(&state, did).await
}

/// `POST /api/v1/setup/device`: this node becomes a new device of an
/// existing member, who lost theirs or adds one: with a paper key or device
/// code it signs once it has caught up; without, it asks the member's
/// guardians (its request is on `GET /api/v1/recovery`).
pub(crate) async fn device(
    State(state): State<SharedState>,
    Step { client, request }: Step<icn_api::SetupDevice>,
) -> Result<(StatusCode, Json<icn_api::Token>), ApiError> {
    let turn = Turn::take(&state, client, &request.sign_in).await?;
    let member: Did = request.member.trim().parse().map_err(|_| {
        NodeError::BadInput(format!(
            "{:?} is not a DID: a member's page (Settings) or `icnctl member list` shows it",
            request.member
        ))
    })?;
    let ticket = crate::net::Ticket::parse(&request.ticket)
        .map_err(|message| NodeError::BadInput(format!("the invitation: {message}")))?;
    let key = |words: &str| {
        icn_identity::paper_key_decode(words.trim()).map_err(|error| {
            NodeError::BadInput(format!(
                "that is not a paper key or device code ({error}): type it as printed, words separated by spaces"
            ))
        })
    };
    let fresh = || KeyPair::generate().map_err(|error| NodeError::Identity(error.to_string()));
    let arrival = match request.paper_key.as_deref() {
        Some(words) => Arrival::Link {
            key: key(words)?,
            own: Box::new(fresh()?),
        },
        None => Arrival::Recover { key: fresh()? },
    };
    let genesis = crate::join::fetch_genesis(&ticket, &arrival.network_key().seed())
        .await
        .map_err(|error| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "unreachable",
                format!("could not reach the member's node: {error:#}"),
                Some("check that their icnd runs and that this computer can reach it, then try again"),
            )
        })?
        .verify()
        .map_err(|_| NodeError::BadInput("the co-op's genesis is not validly signed".into()))?;
    let passphrase = zeroize::Zeroizing::new(request.sign_in.passphrase);
    let dir = turn.dir.clone();
    let link = arrival.is_link();
    let keys = arrival.keys();
    let written = tokio::task::spawn_blocking(move || {
        let written = write_device(
            &dir,
            member,
            &arrival,
            &passphrase,
            crate::passphrase::kdf_log_n(),
        );
        if written.is_err() {
            unwrite_device(&dir);
        }
        written
    })
    .await
    .map_err(|_| ApiError::from(NodeError::BadInput("the set-up stopped".into())))?;
    written?;
    let ticket_text = request.ticket.trim().to_owned();
    let dir = turn.dir.clone();
    let arrived = with_node(&state, move |node| {
        node.arrive(genesis, &ticket_text, link, keys)
    })
    .await;
    if let Err(error) = arrived {
        unwrite_device(&dir);
        return Err(error);
    }
    tracing::info!(%member, link, "This node is a new device of a member, from the set-up page.");
    turn.signed_in(&state, member).await
}

/// `POST /api/v1/setup/coop`: founds a co-op with the caller (this node's
/// member) as its first member, and sets their name.
pub(crate) async fn coop(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<icn_api::Status>), ApiError> {
    crate::gateway::own_member(&state, &headers).await?;
    let request: icn_api::SetupCoop = parse_json(&body?)?;
    let uptime = state.started.elapsed().as_secs();
    let status = with_node(&state, move |node| {
        let now = crate::node::now();
        node.create_coop(&request.name, &[], &request.params(), now)?;
        node.set_profile(
            &icn_api::SetProfile {
                name: request.your_name.trim().to_owned(),
                skills: Vec::new(),
            },
            now,
        )?;
        Ok(node.status(true, Some(uptime)))
    })
    .await?;
    tracing::info!(coop = ?status.coop.as_ref().map(|coop| &coop.name), "Founded a co-op from the set-up page.");
    Ok((StatusCode::CREATED, Json(status)))
}
