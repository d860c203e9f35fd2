//! The members' web app: plain HTML, CSS and JavaScript compiled into the
//! binary and served at `/` by the gateway (no build step, nothing to
//! install), and the browser keys that sign members in again.
//!
//! Signing in: `icnctl web open` asks the admin socket for a one-time link
//! (`http://…/#login=CODE`). The page trades the code for a token and, with
//! it, registers a key the browser made for itself (WebCrypto Ed25519, not
//! extractable, kept in IndexedDB). When the token runs out, the browser
//! answers `/api/v1/auth/challenge` with that key: no new link needed. The
//! keys live only on this node (`web.keys` in the store's metadata), and
//! `icnctl web keys` / `icnctl web revoke` list and remove them.

use axum::{Router, http::header, response::IntoResponse, routing::get};
use icn_identity::{Did, PublicKey};

use crate::{
    http::SharedState,
    node::{Node, NodeError},
};

const META_WEB_KEYS: &str = "web.keys";
/// Unix seconds: gateway sessions that signed in before it are over.
const META_WEB_REVOKED_BEFORE: &str = "web.revoked_before";

/// Browser keys kept per node, at most (the oldest go first).
pub const WEB_KEYS_MAX: usize = 64;

/// One embedded file: its path, type and contents.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../web/index.html"),
    },
    Asset {
        path: "/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../web/app.js"),
    },
    Asset {
        path: "/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../web/style.css"),
    },
    Asset {
        path: "/sw.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../web/sw.js"),
    },
    Asset {
        path: "/manifest.webmanifest",
        content_type: "application/manifest+json",
        body: include_str!("../web/manifest.webmanifest"),
    },
    Asset {
        path: "/icon.svg",
        content_type: "image/svg+xml",
        body: include_str!("../web/icon.svg"),
    },
];

/// The web app's files.
pub fn routes() -> Router<SharedState> {
    ASSETS.iter().fold(Router::new(), |router, asset| {
        let (content_type, body) = (asset.content_type, asset.body);
        router.route(
            asset.path,
            get(move || async move {
                (
                    [
                        (header::CONTENT_TYPE, content_type),
                        // The service worker keeps its own copy for offline use;
                        // online, the browser asks again so an upgrade shows.
                        (header::CACHE_CONTROL, "no-cache"),
                        (
                            header::CONTENT_SECURITY_POLICY,
                            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
                        ),
                        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                        (header::REFERRER_POLICY, "no-referrer"),
                    ],
                    body,
                )
                    .into_response()
            }),
        )
    })
}

pub trait WebKeyOps {
    /// Every browser key this node signs members in with.
    fn web_keys(&self) -> Result<icn_api::WebKeys, NodeError>;

    /// The browser keys that may answer challenges for `did`.
    fn web_keys_of(&self, did: &Did) -> Result<Vec<PublicKey>, NodeError>;

    /// Lets a browser's key sign `did` in on this node from now on.
    fn add_web_key(&mut self, did: &Did, key: PublicKey, label: &str) -> Result<(), NodeError>;

    /// Ends every gateway session that signed in before `unix_seconds`
    /// (kept in the store, so a restart does not revive them).
    fn revoke_web_sessions(&mut self, unix_seconds: u64) -> Result<(), NodeError>;

    fn web_sessions_revoked_before(&self) -> Result<Option<u64>, NodeError>;

    /// Stops a browser key (or every key, for `all`) from signing in.
    fn revoke_web_key(&mut self, request: &icn_api::RevokeWebKey) -> Result<usize, NodeError>;
}

impl WebKeyOps for Node {
    fn web_keys(&self) -> Result<icn_api::WebKeys, NodeError> {
        Ok(icn_api::WebKeys {
            keys: self
                .store()
                .meta(META_WEB_KEYS)?
                .and_then(|keys| serde_json::from_str(&keys).ok())
                .unwrap_or_default(),
        })
    }

    fn web_keys_of(&self, did: &Did) -> Result<Vec<PublicKey>, NodeError> {
        let did = did.to_string();
        Ok(self
            .web_keys()?
            .keys
            .into_iter()
            .filter(|key| key.did == did)
            .filter_map(|key| key.key.parse().ok())
            .collect())
    }

    fn add_web_key(&mut self, did: &Did, key: PublicKey, label: &str) -> Result<(), NodeError> {
        let mut keys = self.web_keys()?;
        let key = key.to_string();
        keys.keys.retain(|known| known.key != key);
        while keys.keys.len() >= WEB_KEYS_MAX {
            keys.keys.remove(0);
        }
        keys.keys.push(icn_api::WebKey {
            did: did.to_string(),
            key,
            label: label.to_owned(),
            added_ms: crate::node::now().as_millis(),
        });
        self.save_web_keys(&keys)
    }

    fn revoke_web_sessions(&mut self, unix_seconds: u64) -> Result<(), NodeError> {
        self.set_meta(META_WEB_REVOKED_BEFORE, &unix_seconds.to_string())
    }

    fn web_sessions_revoked_before(&self) -> Result<Option<u64>, NodeError> {
        Ok(self
            .store()
            .meta(META_WEB_REVOKED_BEFORE)?
            .and_then(|text| text.parse().ok()))
    }

    fn revoke_web_key(&mut self, request: &icn_api::RevokeWebKey) -> Result<usize, NodeError> {
        let mut keys = self.web_keys()?;
        let before = keys.keys.len();
        let wanted = request.key.trim();
        keys.keys
            .retain(|known| wanted != "all" && !known.key.starts_with(wanted));
        let removed = before - keys.keys.len();
        if removed == 0 && wanted != "all" {
            return Err(NodeError::BadInput(format!(
                "no browser key starts with {wanted:?} (`icnctl web keys` lists them)"
            )));
        }
        self.save_web_keys(&keys)?;
        Ok(removed)
    }
}

/// Helpers of [`WebKeyOps`].
trait WebKeyHelpers {
    fn save_web_keys(&mut self, keys: &icn_api::WebKeys) -> Result<(), NodeError>;
}

impl WebKeyHelpers for Node {
    fn save_web_keys(&mut self, keys: &icn_api::WebKeys) -> Result<(), NodeError> {
        let text = serde_json::to_string(&keys.keys).expect("plain data serialises");
        self.set_meta(META_WEB_KEYS, &text)
    }
}
