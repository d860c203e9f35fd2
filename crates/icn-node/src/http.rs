//! HTTP: the public gateway (`/api/v1`, on TCP when enabled) and the admin API
//! (`/admin/v1`, only on the Unix socket in the data directory, so only this
//! machine's user who owns the data directory can reach it).

use crate::prelude::*;
use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, RawQuery, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use icn_api::ErrorBody;
use icn_identity::Did;

use icn_runtime::{
    Operation, Requester,
    operation::{Body, Params},
};

use crate::node::{Node, NodeError, now};

/// Request bodies larger than this are refused with 413.
pub const REQUEST_BODY_MAX_BYTES: usize = 64 * 1024;

pub struct AppState {
    pub node: Arc<Mutex<Node>>,
    /// Read-only connections to the node's store: reads the views answer
    /// alone skip the node's lock ([`icn_runtime::Readers`]).
    pub readers: Arc<icn_runtime::Readers>,
    pub started: Instant,
    /// Replication, once started (it needs the keystore unlocked).
    /// Replaced when the device key rotates (the network identity is the
    /// device key).
    pub net: std::sync::RwLock<Option<Arc<crate::net::Net>>>,
    /// Signs members' own events, in batches ([`crate::committer`]).
    pub committer: crate::committer::Committer,
    /// Gateway tokens.
    pub auth: crate::auth::Auth,
    /// Set when icnd stops, so that long-lived responses (event streams)
    /// end and the server can finish.
    pub stopping: tokio::sync::watch::Sender<bool>,
    /// Where the gateway serves, once it does (`http://127.0.0.1:7878`).
    pub gateway_url: std::sync::OnceLock<String>,
    /// Where backups go (for `icnctl doctor`); the data directory's
    /// `backups/` unless icnd was told otherwise.
    pub backups: std::sync::OnceLock<std::path::PathBuf>,
    /// What icnd was started with (networking starts from it once the
    /// set-up page has made an identity).
    pub config: std::sync::OnceLock<crate::config::Config>,
    /// The set-up page's one-time code, while the node has no identity.
    pub setup_code: std::sync::OnceLock<String>,
    /// One identity set-up at a time.
    pub setup_turn: tokio::sync::Mutex<()>,
}

pub type SharedState = Arc<AppState>;

impl AppState {
    /// Shares `node` and starts its group committer ([`crate::committer`]).
    /// With a token secret that lives as long as the process (benchmarks,
    /// tests); `icnd` uses [`AppState::with_auth`].
    pub fn new(node: Node) -> SharedState {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).expect("the OS gives randomness");
        AppState::with_auth(node, crate::auth::Auth::with_secret(secret.to_vec()))
    }

    pub fn with_auth(node: Node, auth: crate::auth::Auth) -> SharedState {
        // Sessions of browser keys revoked, and of every session before a
        // `revoke all`, stay ended across restarts.
        if let Ok(keys) = node.web_keys() {
            auth.set_live_keys(keys.keys.into_iter().map(|known| known.key));
        }
        if let Ok(Some(before)) = node.web_sessions_revoked_before() {
            auth.revoke_before(before);
        }
        let readers = node.readers();
        let node = Arc::new(Mutex::new(node));
        let committer = crate::committer::Committer::start(node.clone());
        Arc::new(AppState {
            node,
            readers,
            started: Instant::now(),
            net: std::sync::RwLock::new(None),
            committer,
            auth,
            stopping: tokio::sync::watch::channel(false).0,
            gateway_url: std::sync::OnceLock::new(),
            backups: std::sync::OnceLock::new(),
            config: std::sync::OnceLock::new(),
            setup_code: std::sync::OnceLock::new(),
            setup_turn: tokio::sync::Mutex::new(()),
        })
    }
}

/// An error as the API shows it: a status, a stable code, a sentence, a hint.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    /// Seconds for a `Retry-After` header (429, 503).
    retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: &str,
        message: impl Into<String>,
        hint: Option<&str>,
    ) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                code: code.to_owned(),
                message: message.into(),
                hint: hint.map(str::to_owned),
            },
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message, None)
    }
}

impl From<NodeError> for ApiError {
    fn from(error: NodeError) -> ApiError {
        let message = error.to_string();
        match error {
            NodeError::NoIdentity => ApiError::new(
                StatusCode::CONFLICT,
                "no_identity",
                message,
                Some("run `icnctl id init` first"),
            ),
            NodeError::KeystoreLocked => ApiError::new(
                StatusCode::CONFLICT,
                "keystore_locked",
                message,
                Some(
                    "restart icnd with the passphrase (ICN_KEYSTORE_PASSPHRASE or --passphrase-file)",
                ),
            ),
            NodeError::NoCoop => ApiError::new(
                StatusCode::CONFLICT,
                "no_coop",
                message,
                Some("run `icnctl coop init \"Name\" --yes` first"),
            ),
            NodeError::AlreadyInCoop { .. } => {
                ApiError::new(StatusCode::CONFLICT, "already_in_coop", message, None)
            }
            NodeError::AwaitingSync { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "awaiting_sync",
                message,
                Some(
                    "keep icnd running while members' nodes are reachable (`--peer TICKET`); it signs once a majority of them have synced with it (`icnctl restore --standalone` skips the wait when you know your lost device signed nothing since the backup)",
                ),
            ),
            NodeError::OtherDevice { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "other_device",
                message,
                Some("`icnctl id take-over` on this device; it signs once it has synced"),
            ),
            NodeError::Recovering => ApiError::new(
                StatusCode::CONFLICT,
                "recovering",
                message,
                Some(
                    "ask your guardians to run `icnctl id approve-recovery` with this device's request",
                ),
            ),
            NodeError::BadInput(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message, None)
            }
            NodeError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", message, None)
            }
            NodeError::Conflict(_) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message, None)
            }
            // Well-formed, and refused by the co-op's rules as they stand:
            // a conflict with the state, not a malformed request.
            NodeError::Rejected(_) => {
                let hint = crate::hints::hint_for(&message);
                ApiError::new(StatusCode::CONFLICT, "rejected", message, hint)
            }
            other => {
                // Details of server-side failures go to the log, not to the client.
                tracing::error!(error = %other, "Request failed.");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the node could not complete the request; see its log",
                    None,
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        response
    }
}

impl ApiError {
    /// Tells the client when to try again.
    pub(crate) fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds.max(1));
        self
    }
}

/// Runs blocking work (the node's lock, the network's tables) on a blocking
/// thread, never on an async worker.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|error| {
        tracing::error!(%error, "A request worker stopped.");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the node could not complete the request; see its log",
            None,
        )
    })
}

/// Runs `work` on the node under its lock, on a blocking thread.
pub(crate) async fn on_node<T: Send + 'static>(
    state: &SharedState,
    work: impl FnOnce(&mut Node) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let state = state.clone();
    blocking(move || {
        let mut node = state
            .node
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        work(&mut node)
    })
    .await
}

/// Runs node work off the async threads (SQLite and signing block).
pub(crate) async fn with_node<T: Send + 'static>(
    state: &SharedState,
    work: impl FnOnce(&mut Node) -> Result<T, NodeError> + Send + 'static,
) -> Result<T, ApiError> {
    on_node(state, work).await?.map_err(ApiError::from)
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_request(format!("invalid JSON body: {error}")))
}

async fn health() -> Json<icn_api::Health> {
    Json(icn_api::Health {
        status: "ok".to_owned(),
    })
}

async fn status(State(state): State<SharedState>) -> Result<Json<icn_api::Status>, ApiError> {
    let uptime = state.started.elapsed().as_secs();
    with_node(&state, move |node| Ok(node.status(true, Some(uptime))))
        .await
        .map(Json)
}

async fn coop_init(
    State(state): State<SharedState>,
    body: Bytes,
) -> Result<(StatusCode, Json<icn_api::Status>), ApiError> {
    let request: icn_api::CoopInit = parse_json(&body)?;
    let founders = request
        .founders
        .iter()
        .map(|text| text.parse::<Did>())
        .collect::<Result<Vec<Did>, _>>()
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    let uptime = state.started.elapsed().as_secs();
    with_node(&state, move |node| {
        node.create_coop(&request.name, &founders, &request.params, now())?;
        Ok(node.status(true, Some(uptime)))
    })
    .await
    .map(|status| (StatusCode::CREATED, Json(status)))
}

async fn add_device(
    State(state): State<SharedState>,
    body: Bytes,
) -> Result<(StatusCode, Json<icn_api::PaperKey>), ApiError> {
    let request: icn_api::AddDevice = parse_json(&body)?;
    with_node(&state, move |node| node.add_device(&request.label, now()))
        .await
        .map(|key| (StatusCode::CREATED, Json(crate::ops::paper_key(key))))
}

async fn take_over(State(state): State<SharedState>) -> Result<Json<serde_json::Value>, ApiError> {
    with_node(&state, |node| node.take_over()).await?;
    Ok(Json(serde_json::json!({ "taking_over": true })))
}

async fn paper_key(
    State(state): State<SharedState>,
) -> Result<(StatusCode, Json<icn_api::PaperKey>), ApiError> {
    with_node(&state, |node| node.add_paper_key(now()))
        .await
        .map(|key| (StatusCode::CREATED, Json(crate::ops::paper_key(key))))
}

async fn revoke_key(
    State(state): State<SharedState>,
    body: Bytes,
) -> Result<Json<icn_api::EventAck>, ApiError> {
    let request: icn_api::KeyRevoke = parse_json(&body)?;
    let key: icn_identity::PublicKey = request
        .key
        .parse()
        .map_err(|error: icn_identity::KeyError| ApiError::bad_request(error.to_string()))?;
    with_node(&state, move |node| node.revoke_key(key, now()))
        .await
        .map(|id| {
            Json(icn_api::EventAck {
                event_id: id.to_string(),
            })
        })
}

async fn rotate_key(
    State(state): State<SharedState>,
    body: Bytes,
) -> Result<Json<icn_api::EventAck>, ApiError> {
    let request: icn_api::KeyRotate = parse_json(&body)?;
    let new = icn_identity::paper_key_decode(&request.secret)
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    let id = with_node(&state, move |node| {
        node.rotate_key(new, &request.label, now())
    })
    .await?;
    // Peers know this node by its device key: networking starts again with
    // the new one, or every member would refuse it until a restart.
    crate::daemon::restart_net(&state).await;
    Ok(Json(icn_api::EventAck {
        event_id: id.to_string(),
    }))
}

/// Query parameters, with errors in the API's own shape (axum's `Query`
/// answers a bad query in plain text).
pub(crate) fn parse_query<T: serde::de::DeserializeOwned>(
    query: Option<String>,
) -> Result<T, ApiError> {
    serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|error| ApiError::bad_request(format!("invalid query: {error}")))
}

/// Runs `work` (which signs one event) in the group committer's next batch,
/// and answers once the event is durable.
pub(crate) async fn commit(
    state: SharedState,
    work: icn_runtime::operation::SignFn,
) -> Result<(StatusCode, Json<icn_api::EventAck>), ApiError> {
    let signed = state
        .committer
        .sign(move |node| work(node, now()))
        .await
        .map_err(|refused| match refused {
            crate::committer::Refused::Busy => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "the node has too many requests waiting",
                Some("try again in a moment"),
            ),
            crate::committer::Refused::Unsaved => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the node could not save the event; nothing was recorded (see its log)",
                None,
            ),
        })?;
    signed.map_err(ApiError::from).map(|id| {
        (
            StatusCode::CREATED,
            Json(icn_api::EventAck {
                event_id: id.to_string(),
            }),
        )
    })
}

#[derive(serde::Deserialize)]
struct MemberQuery {
    /// Default: this node's identity.
    did: Option<String>,
    /// For exports: `csv` or `json` (the default).
    format: Option<String>,
    /// For exports: every account, not one member's.
    #[serde(default)]
    all: bool,
}

impl MemberQuery {
    fn member(&self, node: &Node) -> Result<Did, NodeError> {
        match &self.did {
            Some(text) => text
                .parse()
                .map_err(|error: icn_identity::DidError| NodeError::BadInput(error.to_string())),
            None => node
                .identity()
                .map(|identity| identity.did)
                .ok_or(NodeError::NoIdentity),
        }
    }
}

async fn export(
    State(state): State<SharedState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query: MemberQuery = parse_query(query)?;
    let csv = wants_csv(query.format.as_deref())?;
    let entries = with_node(&state, move |node| {
        let member = if query.all {
            None
        } else {
            Some(query.member(node)?)
        };
        node.export(member.as_ref())
    })
    .await?;
    Ok(entries_response(&entries, csv))
}

/// Whether an export's `format` asks for CSV (else JSON).
pub(crate) fn wants_csv(format: Option<&str>) -> Result<bool, ApiError> {
    match format {
        None | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "format {other:?}: expected csv or json"
        ))),
    }
}

/// Exported entries as CSV (a file to save) or JSON.
pub(crate) fn entries_response(entries: &[icn_api::HistoryEntry], csv: bool) -> Response {
    if csv {
        (
            [
                (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    axum::http::header::CONTENT_DISPOSITION,
                    "attachment; filename=\"icn-history.csv\"",
                ),
            ],
            crate::ledger::entries_csv(entries),
        )
            .into_response()
    } else {
        Json(entries).into_response()
    }
}

impl AppState {
    /// Replication, if it runs.
    pub fn net(&self) -> Option<Arc<crate::net::Net>> {
        self.net.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_net(&self, net: Option<Arc<crate::net::Net>>) -> Option<Arc<crate::net::Net>> {
        std::mem::replace(
            &mut *self.net.write().unwrap_or_else(|e| e.into_inner()),
            net,
        )
    }
}

pub(crate) fn running_net(state: &SharedState) -> Result<Arc<crate::net::Net>, ApiError> {
    state.net().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "network_off",
            "this node is not networking",
            Some("icnd starts networking when it has an identity and its passphrase; see its log for why it did not"),
        )
    })
}

async fn peers(State(state): State<SharedState>) -> Result<Json<icn_api::Peers>, ApiError> {
    let net = running_net(&state)?;
    Ok(Json(blocking(move || net.peers()).await?))
}

async fn net_ticket(
    State(state): State<SharedState>,
) -> Result<Json<icn_api::NetTicket>, ApiError> {
    node_ticket(&state).await.map(Json)
}

/// This node's ticket (the invitation members send), once it networks and
/// has a co-op.
pub(crate) async fn node_ticket(state: &SharedState) -> Result<icn_api::NetTicket, ApiError> {
    let net = running_net(state)?;
    let ticket = blocking(move || net.ticket())
        .await?
        .ok_or_else(|| ApiError::from(NodeError::NoCoop))?;
    Ok(icn_api::NetTicket {
        ticket: ticket.encode(),
        addresses: ticket.addrs.iter().map(ToString::to_string).collect(),
        relay: ticket.relay.as_ref().map(|relay| relay.url.clone()),
    })
}

/// Joins a co-op: fetches its genesis from the member's node the ticket
/// names, starts its log, and remembers that node as a peer to sync with.
pub(crate) async fn coop_join(
    State(state): State<SharedState>,
    body: Bytes,
) -> Result<Json<icn_api::Status>, ApiError> {
    let request: icn_api::JoinCoop = parse_json(&body)?;
    let ticket = crate::net::Ticket::parse(&request.ticket).map_err(ApiError::bad_request)?;
    // A node belongs to one co-op: refuse another's ticket, and its own,
    // before dialling anyone.
    let (wanted, endpoint) = (ticket.coop, ticket.endpoint);
    let joined = with_node(&state, move |node| {
        if node
            .identity()
            .is_some_and(|identity| *identity.device_key.as_bytes() == endpoint)
        {
            return Err(NodeError::BadInput(
                "this is your own node's ticket; use the one a member of the co-op sent you".into(),
            ));
        }
        match node.log() {
            Some(log) if log.coop() != wanted => Err(NodeError::AlreadyInCoop {
                name: log.genesis_body().name.clone(),
            }),
            log => Ok(log.is_some()),
        }
    })
    .await?;
    running_net(&state)?;
    let seed = with_node(&state, |node| {
        node.network_seed().ok_or(NodeError::KeystoreLocked)
    })
    .await?;
    // Joining again with the same ticket retries delivering the application.
    let genesis = if joined {
        None
    } else {
        let genesis = crate::join::fetch_genesis(&ticket, &seed)
            .await
            .map_err(|error| {
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "peer_unreachable",
                    format!("could not fetch the co-op from the member's node: {error:#}"),
                    Some("check that their icnd runs and that the ticket is current (`icnctl net ticket` on their machine)"),
                )
            })?;
        Some(
            genesis
                .verify()
                .map_err(|_| ApiError::bad_request("the co-op's genesis is not validly signed"))?,
        )
    };
    let started = state.started;
    let name = request.name.clone();
    let note = request.note.clone();
    let application = with_node(&state, move |node| {
        if let Some(genesis) = genesis {
            node.join(genesis)?;
        }
        node.remember_peer(&request.ticket)?;
        match name {
            Some(name) if !node.is_member()? => node.apply_to_join(&name, &note, now()).map(Some),
            _ => Ok(None),
        }
    })
    .await?;
    if let Some(application) = application {
        crate::join::submit_application(&ticket, &seed, &application)
            .await
            .map_err(|error| {
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "application_not_delivered",
                    format!(
                        "joined, but the member's node did not take your application: {error:#}"
                    ),
                    Some("try `icnctl coop join` with the same ticket again once their icnd runs"),
                )
            })?;
    }
    with_node(&state, move |node| {
        Ok(node.status(true, Some(started.elapsed().as_secs())))
    })
    .await
    .map(Json)
}

/// A one-time sign-in link to the web app for this node's own member.
async fn gateway_link(
    State(state): State<SharedState>,
) -> Result<Json<icn_api::WebLink>, ApiError> {
    let url = state.gateway_url.get().cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "gateway_off",
            "this node does not serve the web app",
            Some("start icnd without --no-gateway (and without [gateway] enable = false)"),
        )
    })?;
    let did = with_node(&state, |node| node.me()).await?;
    let code = state.auth.link(did)?;
    Ok(Json(icn_api::WebLink {
        url: format!("{url}/#login={code}"),
        code,
        expires_in_s: crate::auth::LINK_TTL.as_secs(),
    }))
}

/// A token for this node's own member: whoever reaches the admin socket
/// already acts as them.
async fn gateway_token(State(state): State<SharedState>) -> Result<Json<icn_api::Token>, ApiError> {
    let did = with_node(&state, |node| {
        node.identity()
            .map(|identity| identity.did)
            .ok_or(NodeError::NoIdentity)
    })
    .await?;
    Ok(Json(icn_api::Token {
        token: state
            .auth
            .issue(did, "read write", crate::auth::Session::Plain),
        did: did.to_string(),
        scope: "read write".to_owned(),
        expires_in_s: crate::auth::TOKEN_TTL_SECONDS,
    }))
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint",
        Some("see /api/v1/health and /api/v1/status"),
    )
}

/// Every module's operations the admin socket serves ([`Operation::admin`]),
/// for this node's member.
fn module_routes(operations: &[Operation]) -> Router<SharedState> {
    let mut router = Router::new();
    for operation in operations {
        let Some(path) = operation.admin else {
            continue;
        };
        assert!(
            path.starts_with("/admin/v1/"),
            "{path} is not an admin path"
        );
        let route = match &operation.body {
            Body::Read { node: read, .. } => {
                let read = read.clone();
                get(
                    move |State(state): State<SharedState>, RawQuery(query): RawQuery| async move {
                        let params = query_params(Vec::new(), query)?;
                        let answer = with_node(&state, move |node| {
                            read(node, &Requester::ThisNode, &params)
                        })
                        .await?;
                        Ok::<_, ApiError>(json_answer(answer))
                    },
                )
            }
            Body::Write(prepare) => {
                let prepare = prepare.clone();
                post(
                    move |State(state): State<SharedState>, body: Bytes| async move {
                        let work = prepare(&body)?;
                        commit(state, work).await
                    },
                )
            }
            Body::Task(run) => {
                let run = run.clone();
                post(
                    move |State(state): State<SharedState>, body: Bytes| async move {
                        run_task(&state, run, Requester::ThisNode, body).await
                    },
                )
            }
        };
        router = router.route(path, route);
    }
    router
}

/// Runs a module's task on a blocking thread, with the node's handles.
pub(crate) async fn run_task(
    state: &SharedState,
    run: icn_runtime::operation::TaskFn,
    requester: Requester,
    body: Bytes,
) -> Result<Response, ApiError> {
    let services = icn_runtime::operation::Services {
        node: state.node.clone(),
        readers: state.readers.clone(),
    };
    blocking(move || run(&services, &requester, &body))
        .await?
        .map(json_answer)
        .map_err(ApiError::from)
}

/// Path parameters and a query string as an operation's parameters.
pub(crate) fn query_params(
    mut pairs: Vec<(String, String)>,
    query: Option<String>,
) -> Result<Params, ApiError> {
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
            .map_err(|error| ApiError::bad_request(format!("invalid query: {error}")))?;
    pairs.extend(query);
    Ok(Params(pairs))
}

/// An operation's answer: JSON already encoded.
pub(crate) fn json_answer(json: Vec<u8>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        json,
    )
        .into_response()
}

/// Every module's operations (read once, when the routers are built).
pub(crate) fn module_operations(state: &SharedState) -> Vec<Operation> {
    state
        .node
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .modules()
        .operations()
}

/// The admin API, served only on the data directory's Unix socket.
pub fn admin_router(state: SharedState) -> Router {
    let operations = module_operations(&state);
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/admin/v1/status", get(status))
        .route("/admin/v1/coop", post(coop_init))
        .route("/admin/v1/coop/join", post(coop_join))
        .route("/admin/v1/peers", get(peers))
        .route("/admin/v1/net/ticket", get(net_ticket))
        .route("/admin/v1/identity/paper-key", post(paper_key))
        .route("/admin/v1/identity/device", post(add_device))
        .route("/admin/v1/identity/take-over", post(take_over))
        .route("/admin/v1/identity/revoke", post(revoke_key))
        .route("/admin/v1/identity/rotate", post(rotate_key))
        .route("/admin/v1/ledger/export", get(export))
        .merge(module_routes(&operations))
        .route(
            "/admin/v1/backup",
            post(|State(state): State<SharedState>, body: Bytes| async move {
                let request: icn_api::BackupTo = parse_json(&body)?;
                with_node(&state, move |node| {
                    node.backup_to(std::path::Path::new(&request.to))
                })
                .await
                .map(|written| Json(crate::ops::backup_written(written)))
            }),
        )
        .route(
            "/admin/v1/doctor",
            get(|State(state): State<SharedState>| async move {
                let backups = match state.backups.get() {
                    Some(dir) => dir.clone(),
                    None => with_node(&state, |node| Ok(node.data_dir().backups())).await?,
                };
                let doctor = blocking(move || crate::health::doctor(&state, &backups)).await?;
                Ok::<_, ApiError>(Json(doctor))
            }),
        )
        .route("/admin/v1/gateway/token", post(gateway_token))
        .route("/admin/v1/gateway/link", post(gateway_link))
        .route(
            "/admin/v1/gateway/keys",
            get(|State(state): State<SharedState>| async move {
                with_node(&state, |node| node.web_keys()).await.map(Json)
            }),
        )
        .route(
            "/admin/v1/gateway/keys/revoke",
            post(|State(state): State<SharedState>, body: Bytes| async move {
                let request: icn_api::RevokeWebKey = parse_json(&body)?;
                let all = request.key.trim() == "all";
                let keys = with_node(&state, move |node| {
                    node.revoke_web_key(&request)?;
                    if all {
                        node.revoke_web_sessions(crate::auth::Auth::now_seconds())?;
                    }
                    node.web_keys()
                })
                .await?;
                // Their sessions end now, not when their tokens expire.
                state
                    .auth
                    .set_live_keys(keys.keys.iter().map(|known| known.key.clone()));
                if all {
                    state.auth.revoke_before(crate::auth::Auth::now_seconds());
                }
                Ok::<_, ApiError>(Json(keys))
            }),
        )
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(REQUEST_BODY_MAX_BYTES))
        .with_state(state)
}
