//! A client for `icnd`'s admin socket.
//!
//! This is what `icnctl` talks to a running node with, and what a terminal
//! UI or a PAM module would link: HTTP/1.1 over the data directory's Unix
//! socket (hyper), blocking for its callers, and nothing of the daemon (no
//! iroh, axum or SQLite; `tests/deps.rs` checks). Whoever can open the
//! socket is the node's owner: the socket is `0600` in a `0700` directory.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;

/// The largest answer read from icnd (a history export, a member list).
const RESPONSE_SIZE_MAX_BYTES: usize = 16 * 1024 * 1024;
/// How long one request may take, connection to last byte.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("icnd is not running on this data directory")]
    NotRunning,
    #[error("talking to icnd failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("icnd did not answer within {} s", REQUEST_TIMEOUT.as_secs())]
    TimedOut,
    #[error("icnd sent a response this client cannot read: {0}")]
    BadResponse(String),
}

/// An answer of icnd: its HTTP status and body (JSON, or CSV for exports).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// The admin socket of the node whose data directory is `data_dir`.
pub fn socket_in(data_dir: &Path) -> PathBuf {
    data_dir.join(icn_api::ADMIN_SOCKET_FILE)
}

/// Sends one request to the `icnd` listening on `socket` and waits for the
/// whole answer. `body`, if any, is JSON. For many requests, keep a
/// [`Client`].
pub fn request(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> Result<Response, ClientError> {
    Client::new(socket)?.request(method, path, body)
}

/// A client for one node's admin socket, for many requests in a row (one
/// connection each; `icnd` closes idle ones).
pub struct Client {
    socket: PathBuf,
    runtime: tokio::runtime::Runtime,
}

impl Client {
    pub fn new(socket: &Path) -> Result<Client, ClientError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        Ok(Client {
            socket: socket.to_owned(),
            runtime,
        })
    }

    /// Sends one request and waits for the whole answer.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Response, ClientError> {
        self.runtime.block_on(async {
            tokio::time::timeout(REQUEST_TIMEOUT, send(&self.socket, method, path, body))
                .await
                .map_err(|_| ClientError::TimedOut)?
        })
    }
}

async fn send(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> Result<Response, ClientError> {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                ClientError::NotRunning
            }
            _ => ClientError::Io(error),
        })?;
    let bad = |error: &dyn std::fmt::Display| ClientError::BadResponse(error.to_string());
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|error| bad(&error))?;
    // The connection's own task; it ends when the answer has been read.
    let connection = tokio::spawn(connection);
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, "icnd")
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::copy_from_slice(body.unwrap_or_default())))
        .map_err(|error| bad(&error))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| bad(&error))?;
    let status = response.status().as_u16();
    let body = Limited::new(response.into_body(), RESPONSE_SIZE_MAX_BYTES)
        .collect()
        .await
        .map_err(|error| bad(&error))?
        .to_bytes()
        .to_vec();
    drop(sender);
    let _ = connection.await;
    Ok(Response { status, body })
}
