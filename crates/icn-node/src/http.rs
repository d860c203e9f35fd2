//! HTTP: the public gateway (`/api/v1`, on TCP when enabled) and the admin API
//! (`/admin/v1`, only on the Unix socket in the data directory, so only this
//! machine's user who owns the data directory can reach it).

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use icn_api::ErrorBody;
use icn_identity::Did;

use crate::node::{Node, NodeError, now};

/// Request bodies larger than this are refused with 413.
pub const REQUEST_BODY_MAX_BYTES: usize = 64 * 1024;

pub struct AppState {
    pub node: Mutex<Node>,
    pub started: Instant,
}

pub type SharedState = Arc<AppState>;

/// An error as the API shows it: a status, a stable code, a sentence, a hint.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    fn new(
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
            NodeError::BadInput(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message, None)
            }
            NodeError::Rejected(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "rejected", message, None)
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
        (self.status, Json(self.body)).into_response()
    }
}

/// Runs node work off the async threads (SQLite and signing block).
async fn with_node<T: Send + 'static>(
    state: &SharedState,
    work: impl FnOnce(&mut Node) -> Result<T, NodeError> + Send + 'static,
) -> Result<T, ApiError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let mut node = state
            .node
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        work(&mut node)
    })
    .await
    .map_err(|error| {
        tracing::error!(%error, "A request worker stopped.");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the node could not complete the request; see its log",
            None,
        )
    })?
    .map_err(ApiError::from)
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
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
        node.create_coop(&request.name, &founders, now())?;
        Ok(node.status(true, Some(uptime)))
    })
    .await
    .map(|status| (StatusCode::CREATED, Json(status)))
}

async fn paper_key(
    State(state): State<SharedState>,
) -> Result<(StatusCode, Json<icn_api::PaperKey>), ApiError> {
    with_node(&state, |node| node.add_paper_key(now()))
        .await
        .map(|key| (StatusCode::CREATED, Json(key)))
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
    with_node(&state, move |node| {
        node.rotate_key(new, &request.label, now())
    })
    .await
    .map(|id| {
        Json(icn_api::EventAck {
            event_id: id.to_string(),
        })
    })
}

async fn pay(
    State(state): State<SharedState>,
    body: Bytes,
) -> Result<(StatusCode, Json<icn_api::EventAck>), ApiError> {
    let request: icn_api::Pay = parse_json(&body)?;
    with_node(&state, move |node| node.pay(&request, now()))
        .await
        .map(|id| {
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
    limit: Option<usize>,
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

async fn balance(
    State(state): State<SharedState>,
    Query(query): Query<MemberQuery>,
) -> Result<Json<icn_api::Balance>, ApiError> {
    with_node(&state, move |node| node.balance(&query.member(node)?))
        .await
        .map(Json)
}

async fn history(
    State(state): State<SharedState>,
    Query(query): Query<MemberQuery>,
) -> Result<Json<icn_api::History>, ApiError> {
    with_node(&state, move |node| {
        node.history(&query.member(node)?, query.limit.unwrap_or(50))
    })
    .await
    .map(Json)
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint",
        Some("see /api/v1/health and /api/v1/status"),
    )
}

/// The public API, served on TCP when the gateway is enabled.
pub fn gateway_router(state: SharedState) -> Router {
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/status", get(status))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(REQUEST_BODY_MAX_BYTES))
        .with_state(state)
}

/// The admin API, served only on the data directory's Unix socket.
pub fn admin_router(state: SharedState) -> Router {
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/admin/v1/status", get(status))
        .route("/admin/v1/coop", post(coop_init))
        .route("/admin/v1/identity/paper-key", post(paper_key))
        .route("/admin/v1/identity/revoke", post(revoke_key))
        .route("/admin/v1/identity/rotate", post(rotate_key))
        .route("/admin/v1/ledger/pay", post(pay))
        .route("/admin/v1/ledger/balance", get(balance))
        .route("/admin/v1/ledger/history", get(history))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(REQUEST_BODY_MAX_BYTES))
        .with_state(state)
}
