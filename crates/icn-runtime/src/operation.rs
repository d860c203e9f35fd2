//! What a module offers members and the admin: its API operations, declared
//! once, each with its access rule and the Rust types of its parameters,
//! body and answer.
//!
//! The runtime knows no HTTP server. An [`Operation`] is a description and
//! a function: the gateway (`icn-node`, the one crate that knows axum)
//! turns every module's operations into routes of `/api/v1` (for a member's
//! token) and of `/admin/v1` (on the admin socket), and into the OpenAPI
//! document, whose schemas come from the same types (`schemars`). A route
//! cannot exist without its description, nor be described with types it
//! does not use.
//!
//! Answers are JSON bytes: the types are the module's (the API's types,
//! `icn-api`, for the co-op), and neither the runtime nor the gateway reads
//! them.

use std::sync::{Arc, Mutex};

use icn_identity::Did;
use icn_kernel::{EventId, Timestamp};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Serialize, de::DeserializeOwned};

use crate::{Node, NodeError, Reader, Readers};

/// Who may call an operation on the public gateway. On the admin socket,
/// whoever reaches it acts as this node's member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Any member's token (with `read`): reads of the co-op's state.
    Member,
    /// The token of this node's own member (with `write`): what signs, as
    /// the node holds only that member's keys.
    OwnMember,
}

/// Who asks, as the operation sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester {
    /// A member, by their gateway token.
    Member(Did),
    /// The admin socket: this node's own member.
    ThisNode,
}

impl Requester {
    /// The member who asks.
    pub fn did(&self, node: &Node) -> Result<Did, NodeError> {
        match self {
            Requester::Member(did) => Ok(*did),
            Requester::ThisNode => node
                .identity()
                .map(|identity| identity.did)
                .ok_or(NodeError::NoIdentity),
        }
    }
}

/// A read's parameters: its path parameters and query, as name and value
/// pairs (the gateway takes them from the URL).
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// The pairs read as a `T`, as a query string would be.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, NodeError> {
        let text = serde_urlencoded::to_string(&self.0).expect("string pairs encode");
        serde_urlencoded::from_str(&text)
            .map_err(|error| NodeError::BadInput(format!("invalid parameters: {error}")))
    }
}

/// An answer from the views alone, or `None` when they cannot give it.
pub type ViewsFn =
    Arc<dyn Fn(&Reader, &Requester, &Params) -> Result<Option<Vec<u8>>, NodeError> + Send + Sync>;
/// An answer from the node.
pub type ReadFn =
    Arc<dyn Fn(&Node, &Requester, &Params) -> Result<Vec<u8>, NodeError> + Send + Sync>;
/// A request body read into the work that signs one event as this node's
/// member (run by the group committer, which answers once it is durable).
pub type PrepareFn = Arc<dyn Fn(&[u8]) -> Result<SignFn, NodeError> + Send + Sync>;
pub type SignFn = Box<dyn FnOnce(&mut Node, Timestamp) -> Result<EventId, NodeError> + Send>;
/// Long work on a blocking thread, from a JSON body to a JSON answer.
pub type TaskFn =
    Arc<dyn Fn(&Services, &Requester, &[u8]) -> Result<Vec<u8>, NodeError> + Send + Sync>;

/// The node's handles, for work that must not hold the node's lock while
/// it runs (reading and sealing a file): it takes the lock only for what
/// needs the node.
#[derive(Clone)]
pub struct Services {
    pub node: Arc<Mutex<Node>>,
    pub readers: Arc<Readers>,
}

impl Services {
    /// Runs `work` with the node locked.
    pub fn with_node<T>(&self, work: impl FnOnce(&mut Node) -> T) -> T {
        work(
            &mut self
                .node
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }
}

/// What an operation does.
#[derive(Clone)]
pub enum Body {
    /// A `GET`: from the views on a reader's connection first (no node
    /// lock; a few indexed lookups, as it runs on the request's own
    /// thread), else on the node.
    Read {
        views: Option<ViewsFn>,
        node: ReadFn,
    },
    /// A `POST` whose JSON body becomes one signed event.
    Write(PrepareFn),
    /// A `POST` that runs long (a file read and sealed, then one event
    /// signed): on a blocking thread, with [`Services`].
    Task(TaskFn),
}

/// How an operation's types are described.
#[derive(Clone, Copy)]
pub struct Schemas {
    /// The parameters' type, as a root schema with subschemas inlined
    /// (each property becomes one path or query parameter).
    pub params: fn() -> Schema,
    /// The request body's type, for writes and tasks.
    pub body: Option<fn(&mut SchemaGenerator) -> Schema>,
    /// The answer's type, for reads and tasks (a write answers the
    /// event's id).
    pub answer: Option<fn(&mut SchemaGenerator) -> Schema>,
}

/// One operation of a module.
#[derive(Clone)]
pub struct Operation {
    /// The OpenAPI `operationId`: `transfer`.
    pub id: &'static str,
    /// Its group in the document: `ledger`.
    pub tag: &'static str,
    /// One line for the document.
    pub summary: &'static str,
    pub access: Access,
    /// Its route on the public gateway (`/api/v1/ledger/balance/{did}`:
    /// a `{name}` is a parameter of the path), if it has one.
    pub api: Option<&'static str>,
    /// Its route on the admin socket (`/admin/v1/ledger/balance`, its
    /// parameters in the query), if it has one.
    pub admin: Option<&'static str>,
    pub body: Body,
    pub schemas: Schemas,
}

fn params_schema<Q: JsonSchema>() -> Schema {
    schemars::generate::SchemaSettings::draft2020_12()
        .with(|settings| settings.inline_subschemas = true)
        .into_generator()
        .into_root_schema_for::<Q>()
}

fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

fn from_json<B: DeserializeOwned>(bytes: &[u8]) -> Result<B, NodeError> {
    serde_json::from_slice(bytes)
        .map_err(|error| NodeError::BadInput(format!("invalid JSON body: {error}")))
}

fn to_json<R: Serialize>(answer: &R) -> Result<Vec<u8>, NodeError> {
    serde_json::to_vec(answer)
        .map_err(|error| NodeError::BadInput(format!("cannot encode the answer: {error}")))
}

impl Operation {
    /// A read of `Q` answering `R`, on the node.
    pub fn read<Q, R>(
        id: &'static str,
        tag: &'static str,
        summary: &'static str,
        answer: fn(&Node, &Requester, Q) -> Result<R, NodeError>,
    ) -> Operation
    where
        Q: DeserializeOwned + JsonSchema + 'static,
        R: Serialize + JsonSchema + 'static,
    {
        Operation {
            id,
            tag,
            summary,
            access: Access::Member,
            api: None,
            admin: None,
            body: Body::Read {
                views: None,
                node: Arc::new(move |node, requester, params| {
                    to_json(&answer(node, requester, params.decode()?)?)
                }),
            },
            schemas: Schemas {
                params: params_schema::<Q>,
                body: None,
                answer: Some(schema_of::<R>),
            },
        }
    }

    /// A read as [`Operation::read`], answered first from the views when
    /// `views` can (see [`Body::Read`]).
    pub fn read_views<Q, R>(
        id: &'static str,
        tag: &'static str,
        summary: &'static str,
        views: fn(&Reader, &Requester, &Q) -> Result<Option<R>, NodeError>,
        answer: fn(&Node, &Requester, Q) -> Result<R, NodeError>,
    ) -> Operation
    where
        Q: DeserializeOwned + JsonSchema + 'static,
        R: Serialize + JsonSchema + 'static,
    {
        let mut operation = Operation::read(id, tag, summary, answer);
        if let Body::Read { views: slot, .. } = &mut operation.body {
            *slot = Some(Arc::new(move |reader, requester, params| {
                views(reader, requester, &params.decode()?)?
                    .map(|answer| to_json(&answer))
                    .transpose()
            }));
        }
        operation
    }

    /// A write: a JSON `B` signed into one event by `action`, for this
    /// node's own member.
    pub fn write<B>(
        id: &'static str,
        tag: &'static str,
        summary: &'static str,
        action: fn(&mut Node, &B, Timestamp) -> Result<EventId, NodeError>,
    ) -> Operation
    where
        B: DeserializeOwned + JsonSchema + Send + 'static,
    {
        Operation {
            id,
            tag,
            summary,
            access: Access::OwnMember,
            api: None,
            admin: None,
            body: Body::Write(Arc::new(move |bytes| {
                let request: B = from_json(bytes)?;
                Ok(Box::new(move |node: &mut Node, now| {
                    action(node, &request, now)
                }))
            })),
            schemas: Schemas {
                params: params_schema::<NoParams>,
                body: Some(schema_of::<B>),
                answer: None,
            },
        }
    }

    /// A task: a JSON `B` handed to `run` on a blocking thread, answering
    /// `R`. For this node's own member.
    pub fn task<B, R>(
        id: &'static str,
        tag: &'static str,
        summary: &'static str,
        run: fn(&Services, &Requester, B) -> Result<R, NodeError>,
    ) -> Operation
    where
        B: DeserializeOwned + JsonSchema + 'static,
        R: Serialize + JsonSchema + 'static,
    {
        Operation {
            id,
            tag,
            summary,
            access: Access::OwnMember,
            api: None,
            admin: None,
            body: Body::Task(Arc::new(move |services, requester, bytes| {
                let request: B = from_json(bytes)?;
                to_json(&run(services, requester, request)?)
            })),
            schemas: Schemas {
                params: params_schema::<NoParams>,
                body: Some(schema_of::<B>),
                answer: Some(schema_of::<R>),
            },
        }
    }

    /// Served on the public gateway at `path` (`/api/v1/…`).
    pub fn api(mut self, path: &'static str) -> Operation {
        self.api = Some(path);
        self
    }

    /// Served on the admin socket at `path` (`/admin/v1/…`).
    pub fn admin(mut self, path: &'static str) -> Operation {
        self.admin = Some(path);
        self
    }

    /// Whether it signs (a write or a task).
    pub fn writes(&self) -> bool {
        !matches!(self.body, Body::Read { .. })
    }

    /// Its HTTP method: `GET` for reads, `POST` for the rest.
    pub fn method(&self) -> &'static str {
        match self.body {
            Body::Read { .. } => "GET",
            Body::Write(_) | Body::Task(_) => "POST",
        }
    }
}

impl std::fmt::Debug for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operation")
            .field("id", &self.id)
            .field("api", &self.api)
            .field("admin", &self.admin)
            .field("access", &self.access)
            .finish_non_exhaustive()
    }
}

/// No parameters.
#[derive(Debug, serde::Deserialize, JsonSchema)]
pub struct NoParams {}
