//! The public gateway, `/api/v1` on TCP: what the web app and scripts use,
//! as a member, with a token (see [`crate::auth`]). Reads take any member's
//! token; what signs an event takes this node's own member's, because the
//! node holds only that member's keys.

use std::{convert::Infallible, time::Duration};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::sse::{Event as SseEvent, KeepAlive, Sse},
    routing::{get, post},
};
use icn_api as api;

use crate::{
    auth::{AuthError, Claims, TOKEN_TTL_SECONDS},
    http::{ApiError, SharedState, parse_json, parse_query, sign, with_node},
    node::{Node, NodeError, now},
};

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> ApiError {
        let message = error.to_string();
        match error {
            AuthError::Missing | AuthError::Invalid => {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message, None)
            }
            AuthError::UnknownChallenge | AuthError::BadSignature { .. } => {
                ApiError::new(StatusCode::UNAUTHORIZED, "bad_challenge", message, None)
            }
            AuthError::Setup(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message, None)
            }
        }
    }
}

/// The caller's claims, if their token allows `scope`.
fn caller(state: &SharedState, headers: &HeaderMap, scope: &str) -> Result<Claims, ApiError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let claims = state.auth.check(header)?;
    if !claims.allows(scope) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this token does not allow {scope}"),
            None,
        ));
    }
    Ok(claims)
}

/// A `POST` route that signs `action` as this node's member.
fn signs<T: serde::de::DeserializeOwned + Send + 'static>(
    action: fn(&mut Node, &T, icn_kernel::Timestamp) -> Result<icn_kernel::EventId, NodeError>,
) -> axum::routing::MethodRouter<SharedState> {
    post(
        move |State(state): State<SharedState>, headers: HeaderMap, body: Bytes| {
            sign_as_member(state, headers, body, action)
        },
    )
}

/// Signs as this node's member, for a caller who is that member.
async fn sign_as_member<T: serde::de::DeserializeOwned + Send + 'static>(
    state: SharedState,
    headers: HeaderMap,
    body: Bytes,
    action: fn(&mut Node, &T, icn_kernel::Timestamp) -> Result<icn_kernel::EventId, NodeError>,
) -> Result<(StatusCode, Json<api::EventAck>), ApiError> {
    let claims = caller(&state, &headers, "write")?;
    let own = with_node(&state, |node| {
        node.identity()
            .map(|identity| identity.did)
            .ok_or(NodeError::NoIdentity)
    })
    .await?;
    if claims.did()? != own {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_this_node",
            "this node signs only for its own member",
            Some("use your own node's gateway to pay, propose or vote"),
        ));
    }
    sign(state, body, action).await
}

async fn challenge(
    State(state): State<SharedState>,
    body: Bytes,
) -> Result<Json<api::Challenge>, ApiError> {
    let request: api::AuthChallenge = parse_json(&body)?;
    let did = request
        .did
        .parse()
        .map_err(|error: icn_identity::DidError| ApiError::bad_request(error.to_string()))?;
    Ok(Json(api::Challenge {
        challenge: state.auth.challenge(did)?,
        expires_in_s: crate::auth::CHALLENGE_TTL.as_secs(),
    }))
}

async fn verify(
    State(state): State<SharedState>,
    body: Bytes,
) -> Result<Json<api::Token>, ApiError> {
    let request: api::AuthVerify = parse_json(&body)?;
    let did: icn_identity::Did = request
        .did
        .parse()
        .map_err(|error: icn_identity::DidError| ApiError::bad_request(error.to_string()))?;
    // The keys a member authorises, if they are a member who has not left.
    let keys = with_node(&state, move |node| {
        Ok(match node.is_member_did(&did) {
            true => node.device_keys(&did),
            false => Vec::new(),
        })
    })
    .await?;
    let token = state
        .auth
        .verify(did, &request.challenge, &request.signature, |_| {
            keys.clone()
        })?;
    Ok(Json(api::Token {
        token,
        did: did.to_string(),
        scope: "read write".to_owned(),
        expires_in_s: TOKEN_TTL_SECONDS,
    }))
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// `GET /api/v1/events`: every event this node newly keeps, as Server-Sent
/// Events (`kind` is the event's, e.g. `ledger.transfer`, `gov.vote`),
/// for the web app to refresh what changed. Browsers' `EventSource` cannot
/// set headers, so the token may come as `?token=`. A client that falls
/// behind gets a `lagged` event and should refetch.
async fn events(
    State(state): State<SharedState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let query: TokenQuery = parse_query(query)?;
    match &query.token {
        Some(token) => {
            let claims = state.auth.check(Some(&format!("Bearer {token}")))?;
            if !claims.allows("read") {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "this token does not allow read",
                    None,
                ));
            }
        }
        None => {
            caller(&state, &headers, "read")?;
        }
    }
    let kept = with_node(&state, |node| Ok(node.subscribe_kept())).await?;
    let stopping = state.stopping.subscribe();
    let stream =
        futures_util::stream::unfold((kept, stopping), |(mut kept, mut stopping)| async move {
            let received = tokio::select! {
                received = kept.recv() => received,
                _ = stopping.wait_for(|stopping| *stopping) => return None,
            };
            let event = match received {
                Ok(event) => SseEvent::default().event(event.kind().as_str()).data(
                    serde_json::json!({
                        "id": event.id().to_string(),
                        "kind": event.kind().as_str(),
                        "author": event.author().to_string(),
                        "seq": event.seq(),
                        "time_ms": event.timestamp().as_millis(),
                    })
                    .to_string(),
                ),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    SseEvent::default()
                        .event("lagged")
                        .data(format!("{{\"missed\":{missed}}}"))
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            };
            Some((Ok(event), (kept, stopping)))
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

#[derive(serde::Deserialize)]
struct HistoryQuery {
    did: Option<String>,
    limit: Option<usize>,
}

/// The gateway's routes (merged into the gateway router).
pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/v1/auth/challenge", post(challenge))
        .route("/api/v1/auth/verify", post(verify))
        .route(
            "/api/v1/me",
            get(|State(state): State<SharedState>, headers: HeaderMap| async move {
                let claims = caller(&state, &headers, "read")?;
                Ok::<_, ApiError>(Json(serde_json::json!({
                    "did": claims.sub,
                    "scope": claims.scope,
                    "expires_at_s": claims.exp,
                })))
            }),
        )
        .route(
            "/api/v1/members",
            get(|State(state): State<SharedState>, headers: HeaderMap| async move {
                caller(&state, &headers, "read")?;
                with_node(&state, |node| node.members()).await.map(Json)
            }),
        )
        .route(
            "/api/v1/ledger/balance/{did}",
            get(
                |State(state): State<SharedState>, headers: HeaderMap, Path(did): Path<String>| async move {
                    caller(&state, &headers, "read")?;
                    with_node(&state, move |node| {
                        let did = node.resolve_member(&did)?;
                        node.balance(&did)
                    })
                    .await
                    .map(Json)
                },
            ),
        )
        .route(
            "/api/v1/ledger/history",
            get(
                |State(state): State<SharedState>, headers: HeaderMap, RawQuery(query): RawQuery| async move {
                    let claims = caller(&state, &headers, "read")?;
                    let query: HistoryQuery = parse_query(query)?;
                    let filter = api::HistoryFilter {
                        did: Some(query.did.unwrap_or(claims.sub)),
                        limit: query.limit,
                        counterparty: None,
                        currency: None,
                        from: None,
                        to: None,
                    };
                    with_node(&state, move |node| node.history(&filter)).await.map(Json)
                },
            ),
        )
        .route(
            "/api/v1/ledger/transfer",
            signs(Node::pay),
        )
        .route(
            "/api/v1/governance/proposals",
            get(|State(state): State<SharedState>, headers: HeaderMap| async move {
                caller(&state, &headers, "read")?;
                with_node(&state, |node| node.proposals()).await.map(Json)
            })
            .merge(signs(Node::propose)),
        )
        .route(
            "/api/v1/governance/vote",
            signs(Node::vote),
        )
        .route("/api/v1/events", get(events))
        .route(
            "/api/v1/ledger/requests",
            signs(Node::request_payment),
        )
        .route(
            "/api/v1/ledger/requests/answer",
            signs(Node::answer_request),
        )
        .route(
            "/api/v1/ledger/inbox",
            get(|State(state): State<SharedState>, headers: HeaderMap| async move {
                let did = caller(&state, &headers, "read")?.did()?;
                with_node(&state, move |node| node.inbox(&did)).await.map(Json)
            }),
        )
        .route(
            "/api/v1/governance/proposals/{id}",
            get(
                |State(state): State<SharedState>, headers: HeaderMap, Path(id): Path<String>| async move {
                    caller(&state, &headers, "read")?;
                    with_node(&state, move |node| node.proposal(&id)).await.map(Json)
                },
            ),
        )
        .route(
            "/api/v1/governance/templates",
            get(|State(state): State<SharedState>, headers: HeaderMap| async move {
                caller(&state, &headers, "read")?;
                with_node(&state, |node| node.templates()).await.map(Json)
            }),
        )
        .route(
            "/api/v1/trust",
            signs(Node::trust_add),
        )
        .route(
            "/api/v1/trust/why/{to}",
            get(
                |State(state): State<SharedState>, headers: HeaderMap, Path(to): Path<String>| async move {
                    let from = caller(&state, &headers, "read")?.sub;
                    with_node(&state, move |node| node.trust_why(Some(&from), &to, None, now()))
                        .await
                        .map(Json)
                },
            ),
        )
        .route(
            "/api/v1/trust/score/{from}/{to}",
            get(
                |State(state): State<SharedState>,
                 headers: HeaderMap,
                 Path((from, to)): Path<(String, String)>| async move {
                    caller(&state, &headers, "read")?;
                    with_node(&state, move |node| {
                        node.trust_score(Some(&from), &to, None, now())
                    })
                    .await
                    .map(Json)
                },
            ),
        )
}
