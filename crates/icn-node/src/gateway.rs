//! The public gateway, `/api/v1` on TCP: what the web app and scripts use,
//! as a member, with a token (see [`crate::auth`]). Reads take any member's
//! token; what signs an event takes this node's own member's, because the
//! node holds only that member's keys.
//!
//! Every operation is declared once, in [`api`], with the Rust types of its
//! parameters, body and answer: the same declaration adds the route and
//! describes it in the OpenAPI document (`/api/v1/openapi.json`), whose
//! schemas come from those types (`schemars`). A route cannot exist without
//! its description, nor be described with types it does not use.

use crate::prelude::*;
use std::{collections::BTreeMap, convert::Infallible, net::IpAddr, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{
        ConnectInfo, RawPathParams, RawQuery, Request, State,
        rejection::{BytesRejection, RawPathParamsRejection},
        ws::{Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection},
    },
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{
        IntoResponse, Response,
        sse::{Event as SseEvent, KeepAlive, Sse},
    },
    routing::{MethodRouter, get, post, put},
};
use icn_api as api;
use icn_runtime::{
    Operation, Requester,
    operation::{self, Params, ReadFn, ViewsFn},
};
use schemars::{JsonSchema, generate::SchemaSettings};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

use crate::{
    auth::{AuthError, Claims, Session, TOKEN_TTL_SECONDS},
    config::GatewayConfig,
    http::{ApiError, REQUEST_BODY_MAX_BYTES, SharedState, parse_json, with_node},
    node::{Node, NodeError},
};

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> ApiError {
        let message = error.to_string();
        match error {
            AuthError::Missing | AuthError::Invalid | AuthError::Revoked => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                message,
                Some("sign in again: `icnctl web open` prints a link"),
            ),
            AuthError::UnknownChallenge | AuthError::BadSignature { .. } => {
                ApiError::new(StatusCode::UNAUTHORIZED, "bad_challenge", message, None)
            }
            AuthError::UnknownLink => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad_link",
                message,
                Some("links work once and for 15 minutes: run `icnctl web open` for a new one"),
            ),
            AuthError::WrongPassphrase => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "wrong_passphrase",
                message,
                Some(
                    "the passphrase you chose at `icnctl id init`; after 5 wrong ones, wait 5 minutes",
                ),
            ),
            AuthError::Setup(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message, None)
            }
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> ApiError {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::new(
                status,
                "too_large",
                format!("request bodies are at most {REQUEST_BODY_MAX_BYTES} bytes"),
                None,
            );
        }
        ApiError::new(status, "bad_request", rejection.body_text(), None)
    }
}

/// Who may call an operation.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Anyone,
    /// Any member's token.
    Read,
    /// This node's own member's token.
    Write,
}

impl Access {
    fn scope(self) -> &'static str {
        match self {
            Access::Anyone | Access::Read => "read",
            Access::Write => "write",
        }
    }
}

/// An operation's name, group and one-line description.
#[derive(Clone, Copy)]
struct Op {
    id: &'static str,
    tag: &'static str,
    summary: &'static str,
    access: Access,
}

const fn op(id: &'static str, tag: &'static str, access: Access, summary: &'static str) -> Op {
    Op {
        id,
        tag,
        summary,
        access,
    }
}

/// No parameters.
#[derive(serde::Deserialize, JsonSchema)]
struct NoParams {}

/// The caller's claims, if their token allows `scope`.
fn caller(state: &SharedState, headers: &HeaderMap, scope: &str) -> Result<Claims, ApiError> {
    let header = headers
        .get(header::AUTHORIZATION)
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

/// A route's path parameters (none for routes without any).
fn path_pairs(
    path: Result<RawPathParams, RawPathParamsRejection>,
) -> Result<Vec<(String, String)>, ApiError> {
    match path {
        Ok(params) => Ok(params
            .iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect()),
        Err(RawPathParamsRejection::MissingPathParams(_)) => Ok(Vec::new()),
        Err(rejection) => Err(ApiError::bad_request(rejection.body_text())),
    }
}

/// Path parameters and the query string, read as one `T` (with errors in
/// the API's own shape: axum's extractors answer in plain text).
fn parameters<T: DeserializeOwned>(
    mut pairs: Vec<(String, String)>,
    query: Option<String>,
) -> Result<T, ApiError> {
    let query = query.unwrap_or_default();
    let from_query: Vec<(String, String)> = serde_urlencoded::from_str(&query)
        .map_err(|error| ApiError::bad_request(format!("invalid query: {error}")))?;
    pairs.extend(from_query);
    let text = serde_urlencoded::to_string(&pairs).expect("strings encode");
    serde_urlencoded::from_str(&text)
        .map_err(|error| ApiError::bad_request(format!("invalid parameters: {error}")))
}

/// The routes being declared, and their OpenAPI description.
struct Api {
    router: Router<SharedState>,
    paths: BTreeMap<&'static str, serde_json::Map<String, Value>>,
    schemas: schemars::SchemaGenerator,
}

/// A JSON body of this schema.
fn json_content(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

impl Api {
    fn new() -> Api {
        Api {
            router: Router::new(),
            paths: BTreeMap::new(),
            schemas: SchemaSettings::draft2020_12()
                .with(|settings| settings.definitions_path = "/components/schemas".into())
                .into_generator(),
        }
    }

    fn schema<T: JsonSchema>(&mut self) -> Value {
        self.schemas.subschema_for::<T>().to_value()
    }

    /// `T`'s fields as OpenAPI parameters: in the path where `path` names
    /// them, else in the query.
    fn parameters_of<T: JsonSchema>(path: &str) -> Vec<Value> {
        let root = SchemaSettings::draft2020_12()
            .with(|settings| settings.inline_subschemas = true)
            .into_generator()
            .into_root_schema_for::<T>();
        Api::parameters_from(root, path)
    }

    /// A root schema's properties (subschemas inlined) as OpenAPI
    /// parameters: in the path where `path` names them, else in the query.
    fn parameters_from(root: schemars::Schema, path: &str) -> Vec<Value> {
        let root = root.to_value();
        let required: Vec<&str> = root["required"]
            .as_array()
            .map(|names| names.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let Some(properties) = root["properties"].as_object() else {
            return Vec::new();
        };
        properties
            .iter()
            .map(|(name, schema)| {
                let in_path = path.contains(&format!("{{{name}}}"));
                let mut schema = schema.clone();
                let description = schema
                    .as_object_mut()
                    .and_then(|schema| schema.remove("description"));
                // A parameter is present or absent, never null.
                if let Some(types) = schema["type"].as_array() {
                    let types: Vec<Value> =
                        types.iter().filter(|t| *t != "null").cloned().collect();
                    schema["type"] = match types.as_slice() {
                        [one] => one.clone(),
                        _ => Value::Array(types),
                    };
                }
                if let Some(values) = schema.get_mut("enum").and_then(Value::as_array_mut) {
                    values.retain(|value| !value.is_null());
                }
                if schema["default"].is_null()
                    && let Some(schema) = schema.as_object_mut()
                {
                    schema.remove("default");
                }
                let mut parameter = json!({
                    "name": name,
                    "in": if in_path { "path" } else { "query" },
                    "required": in_path || required.contains(&name.as_str()),
                    "schema": schema,
                });
                if let Some(description) = description {
                    parameter["description"] = description;
                }
                parameter
            })
            .collect()
    }

    /// Adds `op` to the document.
    fn describe(
        &mut self,
        method: &str,
        path: &'static str,
        op: Op,
        parameters: Vec<Value>,
        body: Option<Value>,
        ok: (StatusCode, &str, Value),
    ) {
        let error = json_content(self.schema::<api::ErrorBody>());
        let mut responses = serde_json::Map::new();
        let (status, description, content) = ok;
        let mut answer = json!({ "description": description });
        if !content.is_null() {
            answer["content"] = content;
        }
        responses.insert(status.as_u16().to_string(), answer);
        let mut errors = vec![
            ("400", "Malformed input"),
            ("401", "No valid token, signature or code"),
            (
                "404",
                "It names nothing this node knows (a member, an id, a currency)",
            ),
            ("409", "The co-op's rules or the node's state refuse it now"),
            ("413", "The body is too large"),
            ("415", "The body is not JSON"),
            ("429", "Too many requests"),
            ("503", "The node is busy"),
        ];
        if op.access != Access::Anyone {
            errors.push(("403", "The token does not allow this"));
        }
        for (code, description) in errors {
            responses.insert(
                code.to_owned(),
                json!({ "description": description, "content": error }),
            );
        }
        let mut operation = json!({
            "operationId": op.id,
            "summary": op.summary,
            "tags": [op.tag],
            "parameters": parameters,
            "responses": responses,
            "security": match op.access {
                Access::Anyone => json!([]),
                // Browsers' EventSource and WebSocket cannot set headers.
                _ if op.tag == "live" => json!([{ "bearer": [] }, { "queryToken": [] }]),
                _ => json!([{ "bearer": [] }]),
            },
        });
        if let Some(body) = body {
            operation["requestBody"] = json!({ "required": true, "content": json_content(body) });
        }
        let previous = self
            .paths
            .entry(path)
            .or_default()
            .insert(method.to_owned(), operation);
        assert!(previous.is_none(), "{method} {path} is declared twice");
    }

    /// A `GET` answering `R` from parameters `Q`, for any member.
    fn read<Q, R>(
        mut self,
        path: &'static str,
        op: Op,
        answer: fn(&Node, &Claims, Q) -> Result<R, NodeError>,
    ) -> Api
    where
        Q: DeserializeOwned + JsonSchema + Send + 'static,
        R: Serialize + JsonSchema + Send + 'static,
    {
        let ok = json_content(self.schema::<R>());
        self.describe(
            "get",
            path,
            op,
            Api::parameters_of::<Q>(path),
            None,
            (StatusCode::OK, "OK", ok),
        );
        let route = get(
            move |State(state): State<SharedState>,
                  headers: HeaderMap,
                  path: Result<RawPathParams, RawPathParamsRejection>,
                  RawQuery(query): RawQuery| async move {
                let claims = caller(&state, &headers, op.access.scope())?;
                let parameters: Q = parameters(path_pairs(path)?, query)?;
                with_node(&state, move |node| answer(node, &claims, parameters))
                    .await
                    .map(Json)
            },
        );
        self.router = self.router.route(path, route);
        self
    }

    /// Modules' operations ([`Operation`]) that the public gateway serves.
    fn operations(mut self, operations: &[Operation]) -> Api {
        for operation in operations {
            let Some(path) = operation.api else {
                continue;
            };
            assert!(path.starts_with("/api/v1/"), "{path} is not an API path");
            let op = Op {
                id: operation.id,
                tag: operation.tag,
                summary: operation.summary,
                access: match operation.access {
                    operation::Access::Member => Access::Read,
                    operation::Access::OwnMember => Access::Write,
                },
            };
            let parameters = Api::parameters_from((operation.schemas.params)(), path);
            let body = operation
                .schemas
                .body
                .map(|schema| schema(&mut self.schemas).to_value());
            let answer = operation
                .schemas
                .answer
                .map_or(Value::Null, |schema| schema(&mut self.schemas).to_value());
            let ok = match &operation.body {
                operation::Body::Read { .. } => (StatusCode::OK, "OK", json_content(answer)),
                operation::Body::Task(_) => (StatusCode::OK, "Done", json_content(answer)),
                operation::Body::Write(_) => (
                    StatusCode::CREATED,
                    "Signed and saved",
                    json_content(self.schema::<api::EventAck>()),
                ),
            };
            let method = operation.method().to_ascii_lowercase();
            self.describe(&method, path, op, parameters, body, ok);
            let route = match &operation.body {
                operation::Body::Read { views, node } => {
                    let (views, node) = (views.clone(), node.clone());
                    get(
                        move |State(state): State<SharedState>,
                              headers: HeaderMap,
                              path: Result<RawPathParams, RawPathParamsRejection>,
                              RawQuery(query): RawQuery| async move {
                            let claims = caller(&state, &headers, op.access.scope())?;
                            let requester = Requester::Member(claims.did()?);
                            let params = crate::http::query_params(path_pairs(path)?, query)?;
                            read_operation(state, requester, params, views, node).await
                        },
                    )
                }
                operation::Body::Task(run) => {
                    let run = run.clone();
                    post(
                        move |State(state): State<SharedState>,
                              headers: HeaderMap,
                              body: Result<Bytes, BytesRejection>| async move {
                            own_member(&state, &headers).await?;
                            let claims = caller(&state, &headers, "write")?;
                            let requester = Requester::Member(claims.did()?);
                            crate::http::run_task(&state, run, requester, body?).await
                        },
                    )
                }
                operation::Body::Write(prepare) => {
                    let prepare = prepare.clone();
                    post(
                        move |State(state): State<SharedState>,
                              headers: HeaderMap,
                              body: Result<Bytes, BytesRejection>| async move {
                            own_member(&state, &headers).await?;
                            let work = prepare(&body?)?;
                            crate::http::commit(state, work).await
                        },
                    )
                }
            };
            self.router = self.router.route(path, route);
        }
        self
    }

    /// Documents one more answer of the operation declared last at `path`.
    fn also_answers(mut self, path: &'static str, method: &str, status: u16, why: &str) -> Api {
        let error = json_content(self.schema::<api::ErrorBody>());
        self.paths.get_mut(path).expect("declared")[method]["responses"][status.to_string()] =
            json!({ "description": why, "content": error });
        self
    }

    /// A route with its own handler, described by hand.
    #[allow(clippy::too_many_arguments)]
    fn custom(
        mut self,
        method: &str,
        path: &'static str,
        op: Op,
        parameters: Vec<Value>,
        body: Option<Value>,
        ok: (StatusCode, &str, Value),
        route: MethodRouter<SharedState>,
    ) -> Api {
        self.describe(method, path, op, parameters, body, ok);
        self.router = self.router.route(path, route);
        self
    }

    /// Documents the request body of `method path` as raw bytes (a file)
    /// rather than JSON.
    fn raw_body(mut self, method: &str, path: &str) -> Api {
        let operation = self
            .paths
            .get_mut(path)
            .and_then(|operations| operations.get_mut(method))
            .expect("raw_body follows the operation it changes");
        operation["requestBody"] = json!({
            "required": true,
            "content": { "application/octet-stream": { "schema": {
                "type": "string", "contentMediaType": "application/octet-stream"
            } } }
        });
        self
    }

    /// The OpenAPI 3.1 document.
    fn document(mut self) -> (Router<SharedState>, Value) {
        let schemas = self.schemas.take_definitions(true);
        let document = json!({
            "openapi": "3.1.0",
            "info": {
                "title": "ICN gateway",
                "version": env!("CARGO_PKG_VERSION"),
                "description": "A member's view of their co-op, served by their own node. Sign in with POST /api/v1/auth/link (a code from `icnctl web open`) or /auth/challenge + /auth/verify, then send `Authorization: Bearer <token>`. Every error is {code, message, hint}.",
            },
            "paths": self.paths,
            "components": {
                "schemas": schemas,
                "securitySchemes": {
                    "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" },
                    "queryToken": { "type": "apiKey", "in": "query", "name": "token" }
                },
            },
        });
        (self.router, document)
    }
}

/// Answers a read: from the views on a reader's connection, on the
/// request's own thread (no node lock, no wait behind the writer), when the
/// operation has such a read and it can answer alone; else on the node.
async fn read_operation(
    state: SharedState,
    requester: Requester,
    params: Params,
    views: Option<ViewsFn>,
    node: ReadFn,
) -> Result<Response, ApiError> {
    if let Some(views) = views {
        match state
            .readers
            .read(|reader| views(reader, &requester, &params))
        {
            Ok(Some(answer)) => return Ok(crate::http::json_answer(answer)),
            Ok(None) => {}
            Err(error) => {
                tracing::debug!(%error, "A read from the views failed; the node answers.")
            }
        }
    }
    with_node(&state, move |held| node(held, &requester, &params))
        .await
        .map(crate::http::json_answer)
}

/// Refuses a caller who is not this node's own member (with write scope).
pub(crate) async fn own_member(state: &SharedState, headers: &HeaderMap) -> Result<(), ApiError> {
    let claims = caller(state, headers, "write")?;
    let own = with_node(state, |node| node.me()).await?;
    if claims.did()? != own {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_this_node",
            "this node signs only for its own member",
            Some("use your own node's gateway to pay, propose or vote"),
        ));
    }
    Ok(())
}

/// Joins a co-op with an invitation, as `icnctl coop join` does.
async fn join(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<api::Status>, ApiError> {
    own_member(&state, &headers).await?;
    crate::http::coop_join(State(state), body?).await
}

pub(crate) fn token(did: String, token: String) -> api::Token {
    api::Token {
        token,
        did,
        scope: "read write".to_owned(),
        expires_in_s: TOKEN_TTL_SECONDS,
    }
}

async fn challenge(
    State(state): State<SharedState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<api::Challenge>, ApiError> {
    let request: api::AuthChallenge = parse_json(&body?)?;
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
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<api::Token>, ApiError> {
    let request: api::AuthVerify = parse_json(&body?)?;
    let did: icn_identity::Did = request
        .did
        .parse()
        .map_err(|error: icn_identity::DidError| ApiError::bad_request(error.to_string()))?;
    // The keys that may answer for a member who has not left: their
    // identity's, and browsers this node signed them in on.
    let keys = with_node(&state, move |node| {
        Ok(
            match node.is_member_did(&did) || node.me().is_ok_and(|me| me == did) {
                true => {
                    let mut keys = node.device_keys(&did);
                    keys.extend(node.web_keys_of(&did)?);
                    keys
                }
                false => Vec::new(),
            },
        )
    })
    .await?;
    let issued = state
        .auth
        .verify(did, &request.challenge, &request.signature, |_| {
            keys.clone()
        })?;
    Ok(Json(token(did.to_string(), issued)))
}

/// Trades a sign-in link's code for a token, and remembers the browser's key.
async fn redeem_link(
    State(state): State<SharedState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<api::Token>, ApiError> {
    let request: api::RedeemLink = parse_json(&body?)?;
    let key = browser_key(request.key.as_deref())?;
    let label = browser_label(request.label.as_deref())?;
    let did = state.auth.redeem(&request.code)?;
    let session = register_browser(&state, did, key, label).await?;
    Ok(Json(token(
        did.to_string(),
        state.auth.issue(did, "read write", session),
    )))
}

/// Signs in as this node's member with the keystore's passphrase. One
/// attempt runs at a time (scrypt is slow by design; others are told to
/// retry, 429), and after [`crate::auth::PASSPHRASE_FAILURES_MAX`] wrong ones
/// in five minutes from one address, that address is refused until the
/// window passes (other addresses, the member's own devices, are not).
async fn passphrase(
    State(state): State<SharedState>,
    ClientIp(client): ClientIp,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<api::Token>, ApiError> {
    let request: api::PassphraseSignIn = parse_json(&body?)?;
    let key = browser_key(request.key.as_deref())?;
    let label = browser_label(request.label.as_deref())?;
    let too_many = |seconds: u64| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many wrong passphrases from this address; try again in {seconds} s"),
            Some("a browser you signed in with before signs in again by itself; or use a link: icnctl web open"),
        )
        .retry_after(seconds)
    };
    if let Some(seconds) = state.auth.passphrase_paused(client) {
        return Err(too_many(seconds));
    }
    let Ok(_turn) = state.auth.passphrase_attempt.try_acquire() else {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "busy",
            "another sign-in is being checked",
            Some("try again in a moment"),
        )
        .retry_after(1));
    };
    let (keystore, did) =
        with_node(&state, |node| Ok((node.data_dir().keystore(), node.me()?))).await?;
    let passphrase = zeroize::Zeroizing::new(request.passphrase);
    let opened = tokio::task::spawn_blocking(move || keystore.open(&passphrase))
        .await
        .map_err(|_| ApiError::from(NodeError::BadInput("the check stopped".into())))?;
    match opened {
        Ok(contents) if contents.did == did => {}
        Ok(_) => return Err(ApiError::from(AuthError::WrongPassphrase)),
        Err(
            icn_identity::KeystoreError::WrongPassphrase { .. }
            | icn_identity::KeystoreError::EmptyPassphrase,
        ) => {
            state.auth.passphrase_failed(client);
            return Err(ApiError::from(AuthError::WrongPassphrase));
        }
        Err(error) => {
            tracing::error!(%error, "Cannot open the keystore to check a passphrase.");
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the node could not check the passphrase; see its log",
                None,
            ));
        }
    }
    let session = register_browser(&state, did, key, label).await?;
    Ok(Json(token(
        did.to_string(),
        state.auth.issue(did, "read write", session),
    )))
}

/// A browser's public key, as sign-in requests carry it.
pub(crate) fn browser_key(key: Option<&str>) -> Result<Option<icn_identity::PublicKey>, ApiError> {
    key.map(|key| {
        key.parse::<icn_identity::PublicKey>()
            .map_err(|_| ApiError::bad_request("key must be a base58 Ed25519 public key"))
    })
    .transpose()
}

pub(crate) fn browser_label(label: Option<&str>) -> Result<String, ApiError> {
    let label = label.unwrap_or_default();
    if label.len() > 200 {
        return Err(ApiError::bad_request("label is at most 200 bytes"));
    }
    Ok(label.to_owned())
}

/// A new token for the caller's session, while theirs is still valid and
/// the session is not revoked (a revoked browser key ends its renewals too).
async fn refresh(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> Result<Json<api::Token>, ApiError> {
    let claims = caller(&state, &headers, "read")?;
    claims.did()?;
    Ok(Json(token(claims.sub.clone(), state.auth.renew(&claims)?)))
}

/// Remembers a browser's key (when it sent one) for later sign-ins by
/// challenge, and makes the session one that revoking the key ends.
pub(crate) async fn register_browser(
    state: &SharedState,
    did: icn_identity::Did,
    key: Option<icn_identity::PublicKey>,
    label: String,
) -> Result<Session, ApiError> {
    let Some(key) = key else {
        return Ok(Session::Plain);
    };
    let keys = with_node(state, move |node| {
        node.add_web_key(&did, key, &label)?;
        node.web_keys()
    })
    .await?;
    state
        .auth
        .set_live_keys(keys.keys.into_iter().map(|known| known.key));
    Ok(Session::BrowserKey(key.to_string()))
}

fn me(node: &Node, claims: &Claims, _: NoParams) -> Result<api::Me, NodeError> {
    let did: icn_identity::Did = claims
        .sub
        .parse()
        .map_err(|_| NodeError::BadInput("token names no DID".to_owned()))?;
    let name = match node.log() {
        Some(_) => node
            .members()?
            .members
            .into_iter()
            .find(|member| member.did == claims.sub)
            .map(|member| member.name)
            .unwrap_or_default(),
        None => String::new(),
    };
    Ok(api::Me {
        did: claims.sub.clone(),
        name,
        scope: claims.scope.clone(),
        expires_at_s: claims.exp,
        can_sign: node.me().is_ok_and(|me| me == did),
        coop: node.status(true, None).coop,
    })
}

#[derive(serde::Deserialize, JsonSchema)]
struct MemberQuery {
    /// A member's DID or display name; default: the caller.
    #[schemars(length(min = 1))]
    did: Option<String>,
}

impl MemberQuery {
    fn member(&self, node: &Node, claims: &Claims) -> Result<icn_identity::Did, NodeError> {
        node.resolve_member(self.did.as_deref().unwrap_or(&claims.sub))
    }
}

#[derive(serde::Deserialize, JsonSchema)]
struct ExportQuery {
    /// A member's DID or display name; default: the caller.
    #[schemars(length(min = 1))]
    did: Option<String>,
    /// `csv` or `json` (the default).
    #[schemars(extend("enum" = ["csv", "json", null]))]
    format: Option<String>,
}

#[derive(serde::Deserialize, JsonSchema)]
struct TokenQuery {
    /// The token, for clients that cannot set headers (`EventSource`).
    token: Option<String>,
}

/// Checks a token from the header or `?token=` (browsers' `EventSource`
/// and `WebSocket` cannot set headers).
fn stream_caller(
    state: &SharedState,
    headers: &HeaderMap,
    query: Option<String>,
) -> Result<(), ApiError> {
    let query: TokenQuery = parameters(Vec::new(), query)?;
    match query.token {
        Some(token) => {
            let mut headers = HeaderMap::new();
            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| ApiError::from(AuthError::Invalid))?;
            headers.insert(header::AUTHORIZATION, value);
            caller(state, &headers, "read").map(drop)
        }
        None => caller(state, headers, "read").map(drop),
    }
}

/// What the live streams say of a newly kept event.
fn live_event(event: &icn_kernel::Event) -> Value {
    json!({
        "id": event.id().to_string(),
        "kind": event.kind().as_str(),
        "author": event.author().to_string(),
        "seq": event.seq(),
        "time_ms": event.timestamp().as_millis(),
    })
}

/// The next live message for a stream: an event, `lagged` when the client
/// fell behind (it should refetch), or none when icnd stops.
async fn next_live(
    kept: &mut tokio::sync::broadcast::Receiver<icn_kernel::Event>,
    stopping: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<(String, Value)> {
    let received = tokio::select! {
        received = kept.recv() => received,
        _ = stopping.wait_for(|stopping| *stopping) => return None,
    };
    match received {
        Ok(event) => Some((event.kind().as_str().to_owned(), live_event(&event))),
        Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
            Some(("lagged".to_owned(), json!({ "missed": missed })))
        }
        Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
    }
}

/// `GET /api/v1/events`: every event this node newly keeps, as Server-Sent
/// Events (`event:` is the kind, e.g. `ledger.transfer`, `gov.vote`).
async fn events(
    State(state): State<SharedState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    stream_caller(&state, &headers, query)?;
    let kept = with_node(&state, |node| Ok(node.subscribe_kept())).await?;
    let stopping = state.stopping.subscribe();
    let stream =
        futures_util::stream::unfold((kept, stopping), |(mut kept, mut stopping)| async move {
            let (kind, data) = next_live(&mut kept, &mut stopping).await?;
            let event = SseEvent::default().event(kind).data(data.to_string());
            Some((Ok(event), (kept, stopping)))
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// `GET /api/v1/events/ws`: the same events over a WebSocket, one JSON
/// text message each (`{"type": kind, ...}`); what the client sends is
/// ignored.
async fn events_ws(
    State(state): State<SharedState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    stream_caller(&state, &headers, query)?;
    let upgrade = upgrade.map_err(|rejection| {
        ApiError::new(
            rejection.status(),
            "not_a_websocket",
            rejection.body_text(),
            Some("open it with a WebSocket client, or use GET /api/v1/events (Server-Sent Events)"),
        )
    })?;
    let kept = with_node(&state, |node| Ok(node.subscribe_kept())).await?;
    let stopping = state.stopping.subscribe();
    Ok(upgrade
        .max_message_size(4096)
        .on_upgrade(move |socket| forward_live(socket, kept, stopping)))
}

async fn forward_live(
    mut socket: WebSocket,
    mut kept: tokio::sync::broadcast::Receiver<icn_kernel::Event>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    // A ping every 30 s keeps a quiet stream within the gateway's idle
    // limit and finds clients that went away.
    let mut ping = tokio::time::interval(Duration::from_secs(30));
    loop {
        tokio::select! {
            live = next_live(&mut kept, &mut stopping) => {
                let Some((kind, mut data)) = live else { break };
                data["type"] = Value::String(kind);
                if socket.send(Message::Text(data.to_string().into())).await.is_err() {
                    return;
                }
            }
            _ = ping.tick() => {
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

async fn export(
    State(state): State<SharedState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let claims = caller(&state, &headers, "read")?;
    let query: ExportQuery = parameters(Vec::new(), query)?;
    let csv = crate::http::wants_csv(query.format.as_deref())?;
    let entries = with_node(&state, move |node| {
        let member = MemberQuery { did: query.did }.member(node, &claims)?;
        node.export(Some(&member))
    })
    .await?;
    Ok(crate::http::entries_response(&entries, csv))
}

/// This node's ticket: what a newcomer pastes on their set-up page or
/// gives `icnctl coop join`.
async fn invitation(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> Result<Json<api::NetTicket>, ApiError> {
    caller(&state, &headers, "read")?;
    crate::http::node_ticket(&state).await.map(Json)
}

async fn peers(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> Result<Json<api::Peers>, ApiError> {
    caller(&state, &headers, "read")?;
    let net = crate::http::running_net(&state)?;
    Ok(Json(crate::http::blocking(move || net.peers()).await?))
}

async fn openapi(State(document): State<Arc<Value>>) -> Json<Value> {
    Json((*document).clone())
}

/// The gateway's operations.
fn api(operations: &[Operation]) -> Api {
    use Access::{Anyone, Read, Write};
    let mut api = Api::new();
    let token_schema = json_content(api.schema::<api::Token>());
    let challenge_body = api.schema::<api::AuthChallenge>();
    let challenge_answer = json_content(api.schema::<api::Challenge>());
    let verify_body = api.schema::<api::AuthVerify>();
    let link_body = api.schema::<api::RedeemLink>();
    let passphrase_body = api.schema::<api::PassphraseSignIn>();
    let entries = json_content(api.schema::<Vec<api::HistoryEntry>>());
    let export_content = {
        let mut content = entries.clone();
        content["text/csv"] = json!({ "schema": { "type": "string" } });
        content
    };
    let peers_content = json_content(api.schema::<api::Peers>());
    let invitation_content = json_content(api.schema::<api::NetTicket>());
    let join_body = api.schema::<api::JoinCoop>();
    let status_content = json_content(api.schema::<api::Status>());
    let setup_content = json_content(api.schema::<api::SetupStatus>());
    let setup_identity_body = api.schema::<api::SetupIdentity>();
    let setup_coop_body = api.schema::<api::SetupCoop>();
    let setup_backup_content = json_content(api.schema::<api::SetupBackup>());
    let setup_restore_body = api.schema::<api::SetupRestore>();
    let setup_device_body = api.schema::<api::SetupDevice>();
    api.custom(
        "get",
        "/api/v1/setup",
        op(
            "setup",
            "setup",
            Anyone,
            "What a node started without an identity still needs",
        ),
        Vec::new(),
        None,
        (StatusCode::OK, "The set-up's state", setup_content),
        get(crate::setup::status),
    )
    .custom(
        "post",
        "/api/v1/setup/identity",
        op(
            "setupIdentity",
            "setup",
            Anyone,
            "Create this node's identity (only while it has none) and sign in",
        ),
        Vec::new(),
        Some(setup_identity_body),
        (StatusCode::CREATED, "A token", token_schema.clone()),
        post(crate::setup::identity),
    )
    .custom(
        "put",
        "/api/v1/setup/backup",
        op(
            "setupBackup",
            "setup",
            Anyone,
            "Send a backup file to restore (only while this node has no identity)",
        ),
        vec![json!({
            "name": "ICN-Setup-Code", "in": "header", "required": false,
            "description": "The one-time code icnd printed, when `code_required`",
            "schema": { "type": "string" }
        })],
        Some(json!({})),
        (
            StatusCode::CREATED,
            "Whose backup it is",
            setup_backup_content,
        ),
        put(crate::setup::backup),
    )
    .raw_body("put", "/api/v1/setup/backup")
    .custom(
        "post",
        "/api/v1/setup/restore",
        op(
            "setupRestore",
            "setup",
            Anyone,
            "Restore the backup file sent before, with its passphrase, and sign in",
        ),
        Vec::new(),
        Some(setup_restore_body),
        (StatusCode::CREATED, "A token", token_schema.clone()),
        post(crate::setup::restore),
    )
    .custom(
        "post",
        "/api/v1/setup/device",
        op(
            "setupDevice",
            "setup",
            Anyone,
            "Make this node a new device of an existing member (a paper key or device code, or a recovery through guardians) and sign in",
        ),
        Vec::new(),
        Some(setup_device_body),
        (StatusCode::CREATED, "A token", token_schema.clone()),
        post(crate::setup::device),
    )
    .custom(
        "post",
        "/api/v1/setup/coop",
        op(
            "setupCoop",
            "setup",
            Write,
            "Found a co-op with this node's member as its first member",
        ),
        Vec::new(),
        Some(setup_coop_body),
        (
            StatusCode::CREATED,
            "This node, now in its co-op",
            status_content.clone(),
        ),
        post(crate::setup::coop),
    )
    .custom(
        "post",
        "/api/v1/auth/challenge",
        op(
            "authChallenge",
            "auth",
            Anyone,
            "A challenge for a member's key to sign",
        ),
        Vec::new(),
        Some(challenge_body),
        (StatusCode::OK, "The challenge", challenge_answer),
        post(challenge),
    )
    .custom(
        "post",
        "/api/v1/auth/verify",
        op(
            "authVerify",
            "auth",
            Anyone,
            "Trade a signed challenge for a token",
        ),
        Vec::new(),
        Some(verify_body),
        (StatusCode::OK, "A token", token_schema.clone()),
        post(verify),
    )
    .custom(
        "post",
        "/api/v1/auth/link",
        op(
            "authLink",
            "auth",
            Anyone,
            "Trade a sign-in link's one-time code for a token",
        ),
        Vec::new(),
        Some(link_body),
        (StatusCode::OK, "A token", token_schema.clone()),
        post(redeem_link),
    )
    .custom(
        "post",
        "/api/v1/auth/passphrase",
        op(
            "authPassphrase",
            "auth",
            Anyone,
            "Sign in as this node's member with the keystore's passphrase",
        ),
        Vec::new(),
        Some(passphrase_body),
        (StatusCode::OK, "A token", token_schema.clone()),
        post(passphrase),
    )
    .custom(
        "post",
        "/api/v1/auth/refresh",
        op("authRefresh", "auth", Read, "A fresh token for a valid one"),
        Vec::new(),
        None,
        (StatusCode::OK, "A token", token_schema),
        post(refresh),
    )
    .read(
        "/api/v1/me",
        op("me", "identity", Read, "Who the token speaks for"),
        me,
    )
    .custom(
        "post",
        "/api/v1/coop/join",
        op(
            "join",
            "identity",
            Write,
            "Join a co-op with an invitation (this node's member)",
        ),
        Vec::new(),
        Some(join_body),
        (
            StatusCode::OK,
            "This node, now in the co-op",
            status_content,
        ),
        post(join),
    )
    .also_answers(
        "/api/v1/coop/join",
        "post",
        502,
        "The inviting member's node could not be reached",
    )
    .read(
        "/api/v1/status",
        op("status", "node", Read, "This node: co-op, events, peers"),
        |node, _, _: NoParams| Ok(node.status(true, None)),
    )
    .custom(
        "get",
        "/api/v1/peers",
        op(
            "peers",
            "node",
            Read,
            "Who this node replicates with, and how",
        ),
        Vec::new(),
        None,
        (StatusCode::OK, "The peers", peers_content),
        get(peers),
    )
    .custom(
        "get",
        "/api/v1/invitation",
        op(
            "invitation",
            "members",
            Read,
            "An invitation to this co-op (this node's ticket), to send to a newcomer",
        ),
        Vec::new(),
        None,
        (StatusCode::OK, "The invitation", invitation_content),
        get(invitation),
    )
    .custom(
        "get",
        "/api/v1/events",
        op(
            "events",
            "live",
            Read,
            "Newly kept events as Server-Sent Events",
        ),
        Vec::new(),
        None,
        (
            StatusCode::OK,
            "An event stream",
            json!({ "text/event-stream": { "schema": { "type": "string" } } }),
        ),
        get(events),
    )
    .custom(
        "get",
        "/api/v1/events/ws",
        op(
            "eventsWebSocket",
            "live",
            Read,
            "Newly kept events over a WebSocket (send an Upgrade)",
        ),
        Vec::new(),
        None,
        (
            StatusCode::SWITCHING_PROTOCOLS,
            "The WebSocket",
            Value::Null,
        ),
        get(events_ws),
    )
    .custom(
        "get",
        "/api/v1/ledger/export",
        op(
            "export",
            "ledger",
            Read,
            "A member's whole history as CSV or JSON",
        ),
        Api::parameters_of::<ExportQuery>(""),
        None,
        (StatusCode::OK, "The entries", export_content),
        get(export),
    )
    .operations(operations)
}

/// The address a request comes from, as every limit and guard reads it: the
/// connection's, or, when the connection is from a reverse proxy the config
/// trusts (`gateway.trusted_proxies`), the nearest address in its
/// `X-Forwarded-For` that is not a trusted proxy. Set on every request by
/// [`client_address`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientIp(pub IpAddr);

impl ClientIp {
    /// The request's client (`0.0.0.0`, which is not loopback, when the
    /// request did not come through the gateway's listener).
    pub(crate) fn of(extensions: &axum::http::Extensions) -> IpAddr {
        extensions
            .get::<ClientIp>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |client| client.0)
    }
}

/// As an extractor: the request's client, by [`ClientIp::of`].
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(ClientIp::of(&parts.extensions)))
    }
}

/// Which address a request with `headers`, from `peer`, comes from, given
/// the proxies trusted to say (see [`ClientIp`]).
pub(crate) fn resolve_client(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let mut client = peer;
    // Right to left: each trusted hop says who it heard from; the first
    // hop that is not trusted is as far as anyone can vouch for.
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect::<Vec<_>>();
    for hop in hops.into_iter().rev() {
        let Ok(address) = hop.trim().parse::<IpAddr>() else {
            break;
        };
        client = address;
        if !trusted.contains(&address) {
            break;
        }
    }
    client
}

async fn client_address(
    State(trusted): State<Arc<Vec<IpAddr>>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<crate::listener::ClientAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |info| info.0.0.ip());
    let client = resolve_client(peer, request.headers(), &trusted);
    request.extensions_mut().insert(ClientIp(client));
    next.run(request).await
}

/// Requests per client, on average and in a burst (governor's GCRA). IPv6
/// clients are counted by their /64, which one home or host holds.
pub struct RateLimiter {
    limiter: Option<governor::DefaultKeyedRateLimiter<IpAddr>>,
}

/// Clients tracked, at most: past this, idle ones are forgotten, and while
/// it is still full, new ones wait.
const RATE_CLIENTS_MAX: usize = 4_096;

impl RateLimiter {
    /// `per_second` 0: no limit.
    pub fn new(per_second: u32, burst: u32) -> RateLimiter {
        let burst = std::num::NonZeroU32::new(burst).unwrap_or(std::num::NonZeroU32::MIN);
        RateLimiter::with_quota(
            std::num::NonZeroU32::new(per_second)
                .map(|rate| governor::Quota::per_second(rate).allow_burst(burst)),
        )
    }

    fn with_quota(quota: Option<governor::Quota>) -> RateLimiter {
        RateLimiter {
            limiter: quota.map(governor::RateLimiter::keyed),
        }
    }

    /// Takes one request from `client`'s allowance; on refusal, the seconds
    /// until it may try again.
    fn take(&self, client: IpAddr) -> Result<(), u64> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        let key = match client {
            IpAddr::V6(address) if address.to_ipv4_mapped().is_none() => {
                let prefix = u128::from(address) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
            other => other,
        };
        if limiter.len() >= RATE_CLIENTS_MAX {
            limiter.retain_recent();
            limiter.shrink_to_fit();
            if limiter.len() >= RATE_CLIENTS_MAX {
                return Err(1);
            }
        }
        limiter.check_key(&key).map_err(|not_until| {
            use governor::clock::Clock;
            not_until
                .wait_time_from(governor::clock::DefaultClock::default().now())
                .as_secs()
                .max(1)
        })
    }
}

async fn rate_limit(
    State(limiter): State<Arc<RateLimiter>>,
    request: Request,
    next: Next,
) -> Response {
    let client = ClientIp::of(request.extensions());
    match limiter.take(client) {
        Ok(()) => next.run(request).await,
        Err(seconds) => {
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests from this address",
                Some("wait a moment; the gateway's limits are [gateway] rate_limit_per_second and rate_limit_burst"),
            )
            .into_response();
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_str(&seconds.to_string()).expect("digits are a header value"),
            );
            response
        }
    }
}

/// What every request body must be, checked before a byte of it is read:
/// no larger than the limit by its declared length (413 at once, rather
/// than holding the connection while a client trickles a huge body), and
/// JSON by its declared type (415: text or form bodies are not guessed at).
///
/// The one exception is the set-up's backup file: raw bytes, up to
/// [`crate::setup::BACKUP_UPLOAD_MAX_BYTES`], counted again as they arrive.
async fn body_rules(request: Request, next: Next) -> Response {
    let file = request.method() == Method::PUT && request.uri().path() == "/api/v1/setup/backup";
    let (max, media): (u64, &[&str]) = if file {
        (
            crate::setup::BACKUP_UPLOAD_MAX_BYTES,
            &["application/octet-stream"],
        )
    } else {
        (REQUEST_BODY_MAX_BYTES as u64, &["application/json"])
    };
    let headers = request.headers();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > max) {
        let mut response = ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("request bodies here are at most {max} bytes"),
            None,
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    let has_body = declared.is_some_and(|length| length > 0)
        || headers.contains_key(header::TRANSFER_ENCODING);
    if has_body {
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .map(|media| media.trim().to_ascii_lowercase())
            .is_some_and(|given| {
                media.contains(&given.as_str()) || (!file && given.ends_with("+json"))
            });
        if !json {
            return ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("request bodies here are {}", media[0]),
                Some(format!("send Content-Type: {}", media[0]).as_str()),
            )
            .into_response();
        }
    }
    next.run(request).await
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint",
        Some("see /api/v1/openapi.json"),
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method",
        Some("see /api/v1/openapi.json"),
    )
}

/// The public gateway: the API, its document, and the web app.
pub fn router(state: SharedState, config: &GatewayConfig) -> Router {
    let (routes, document) = api(&crate::http::module_operations(&state)).document();
    let mut router = Router::new()
        .route(
            "/api/v1/health",
            get(|| async {
                Json(api::Health {
                    status: "ok".to_owned(),
                })
            }),
        )
        .route(
            "/api/v1/openapi.json",
            get(openapi).with_state(Arc::new(document)),
        )
        .merge(routes)
        .merge(crate::web::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(REQUEST_BODY_MAX_BYTES))
        .layer(axum::middleware::from_fn(body_rules))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(RateLimiter::new(
                config.rate_limit_per_second,
                config.rate_limit_burst,
            )),
            rate_limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(config.trusted_proxies.clone()),
            client_address,
        ))
        .with_state(state);
    if !config.cors_origins.is_empty() {
        let origins: Vec<HeaderValue> = config
            .cors_origins
            .iter()
            .filter_map(|origin| HeaderValue::from_str(origin).ok())
            .collect();
        router = router.layer(
            tower_http::cors::CorsLayer::new()
                .allow_origin(origins)
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
                .max_age(Duration::from_secs(600)),
        );
    }
    router
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxys_forwarded_for_counts_only_when_the_proxy_is_trusted() {
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        let proxy = ip("127.0.0.1");
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 203.0.113.7"),
        );
        // Anyone may send the header; only a trusted proxy is believed.
        assert_eq!(
            resolve_client(ip("198.51.100.1"), &headers, &[proxy]),
            ip("198.51.100.1")
        );
        assert_eq!(resolve_client(proxy, &headers, &[]), proxy);
        // The nearest untrusted hop, not what the client wrote before it.
        assert_eq!(resolve_client(proxy, &headers, &[proxy]), ip("203.0.113.7"));
        // Through two trusted proxies.
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.7, 10.0.0.2"),
        );
        assert_eq!(
            resolve_client(proxy, &headers, &[proxy, ip("10.0.0.2")]),
            ip("203.0.113.7")
        );
        // A hop that is not an address ends the walk at the last good one.
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.7, junk"),
        );
        assert_eq!(resolve_client(proxy, &headers, &[proxy]), proxy);
        // No header: the proxy itself.
        assert_eq!(resolve_client(proxy, &HeaderMap::new(), &[proxy]), proxy);
    }

    #[test]
    fn each_client_has_its_own_allowance_and_an_ipv6_client_its_64() {
        let burst = std::num::NonZeroU32::new(3).unwrap();
        let quota = governor::Quota::per_hour(std::num::NonZeroU32::MIN).allow_burst(burst);
        let limiter = RateLimiter::with_quota(Some(quota));
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        for _ in 0..3 {
            assert_eq!(limiter.take(ip("203.0.113.7")), Ok(()));
        }
        let wait = limiter.take(ip("203.0.113.7")).unwrap_err();
        assert!(wait >= 1, "{wait}");
        assert_eq!(limiter.take(ip("203.0.113.8")), Ok(()));
        for _ in 0..3 {
            assert_eq!(limiter.take(ip("2001:db8:1:2::1")), Ok(()));
        }
        // Another address in the same /64: the same allowance, spent.
        assert!(limiter.take(ip("2001:db8:1:2:ffff::9")).is_err());
        assert_eq!(limiter.take(ip("2001:db8:1:3::1")), Ok(()));
        // No limit at all.
        let open = RateLimiter::new(0, 0);
        for _ in 0..1000 {
            assert_eq!(open.take(ip("203.0.113.7")), Ok(()));
        }
    }
}
