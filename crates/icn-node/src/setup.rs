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

use std::net::IpAddr;

use axum::{
    Json,
    body::Bytes,
    extract::{ConnectInfo, State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode},
};

use crate::http::{ApiError, SharedState, parse_json, with_node};

/// `GET /api/v1/setup`.
pub(crate) async fn status(
    State(state): State<SharedState>,
    connection: Option<axum::Extension<ConnectInfo<crate::listener::ClientAddr>>>,
) -> Result<Json<icn_api::SetupStatus>, ApiError> {
    let client = client_ip(connection);
    let (identity, coop) = with_node(&state, |node| {
        Ok((node.identity().is_some(), node.log().is_some()))
    })
    .await?;
    Ok(Json(icn_api::SetupStatus {
        identity,
        coop,
        code_required: !identity && !client.is_loopback(),
    }))
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

fn client_ip(
    connection: Option<axum::Extension<ConnectInfo<crate::listener::ClientAddr>>>,
) -> IpAddr {
    connection
        .map(|axum::Extension(ConnectInfo(client))| client.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

/// `POST /api/v1/setup/identity`: creates the identity, signs the visitor
/// in, and starts networking.
pub(crate) async fn identity(
    State(state): State<SharedState>,
    connection: Option<axum::Extension<ConnectInfo<crate::listener::ClientAddr>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<icn_api::Token>), ApiError> {
    let client = client_ip(connection);
    // A page from elsewhere whose name was made to point at 127.0.0.1 (DNS
    // rebinding) talks to us as loopback, but names its own host.
    if client.is_loopback() && !local_host(&headers) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "setup_host",
            "set up from http://127.0.0.1 or http://localhost on this computer",
            None,
        ));
    }
    let request: icn_api::SetupIdentity = parse_json(&body?)?;
    // One at a time: the second visitor finds it done.
    let _turn = state.setup_turn.lock().await;
    let dir = with_node(&state, |node| {
        if node.identity().is_some() {
            return Err(NodeError::Conflict(
                "this node already has an identity: sign in with its passphrase".to_owned(),
            ));
        }
        Ok(node.data_dir().clone())
    })
    .await?;
    let key = crate::gateway::browser_key(request.key.as_deref())?;
    let label = crate::gateway::browser_label(request.label.as_deref())?;
    if !client.is_loopback() {
        let expected = state.setup_code.get();
        let given = request.code.as_deref().unwrap_or("").trim();
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
    }
    let passphrase = zeroize::Zeroizing::new(request.passphrase);
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
    if let Some(config) = state.config.get() {
        crate::daemon::start_net(&state, config).await;
    }
    let session = crate::gateway::register_browser(&state, identity.did, key, label).await?;
    Ok((
        StatusCode::CREATED,
        Json(crate::gateway::token(
            identity.did.to_string(),
            state.auth.issue(identity.did, "read write", session),
        )),
    ))
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
        node.create_coop(&request.name, &[], &std::collections::BTreeMap::new(), now)?;
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
