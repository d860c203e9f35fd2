//! Who is calling the gateway: challenge–response with a member's key,
//! then a short-lived token.
//!
//! 1. `POST /api/v1/auth/challenge {did}` → a random challenge (5 minutes).
//! 2. The member signs `"icn-auth-v1:" ‖ challenge` with any key their
//!    identity authorises (a device key, as the log says) and posts it to
//!    `POST /api/v1/auth/verify`, which answers with a token.
//!
//! Tokens are JWTs (HS256): `{sub: did, scope: "read write", iat, exp}`,
//! valid one hour, signed with `ICN_GATEWAY_JWT_SECRET` or, without it, a
//! secret generated once into `DIR/gateway.secret` (mode 0600). The admin
//! socket mints a token for this node's own member (`icnctl web token`),
//! since whoever reaches the socket already acts as that member.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use icn_identity::{Did, PublicKey};
use serde::{Deserialize, Serialize};

/// The bytes a member signs: this prefix, then the challenge's bytes.
pub const CHALLENGE_CONTEXT: &[u8] = b"icn-auth-v1:";
pub const CHALLENGE_TTL: Duration = Duration::from_secs(300);
pub const TOKEN_TTL_SECONDS: u64 = 3600;
/// A session without a browser key renews for this long after sign-in,
/// at most; one with a key signs in again by itself (challenge).
pub const SESSION_MAX_SECONDS: u64 = 24 * 3600;
/// Challenges waiting for an answer, at most; the oldest go first.
const CHALLENGES_MAX: usize = 4096;
pub const SECRET_ENV: &str = "ICN_GATEWAY_JWT_SECRET";
const SECRET_FILE: &str = "gateway.secret";

type HmacSha256 = Hmac<sha2_010::Sha256>;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "no token: send `Authorization: Bearer <token>` (POST /api/v1/auth/challenge, then /api/v1/auth/verify)"
    )]
    Missing,
    #[error("the token is malformed, forged or expired")]
    Invalid,
    #[error("the challenge is unknown or expired; ask for a new one")]
    UnknownChallenge,
    #[error("the signature does not verify with any key {did} has authorised")]
    BadSignature { did: Did },
    #[error("this sign-in link is unknown, used or expired")]
    UnknownLink,
    #[error("wrong passphrase")]
    WrongPassphrase,
    #[error("this session was revoked, or is too old to renew; sign in again")]
    Revoked,
    #[error("{0}")]
    Setup(String),
}

/// What a token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    /// Space-separated: `read`, `write`.
    pub scope: String,
    pub iat: u64,
    pub exp: u64,
    /// The session: `k:<browser key>` for a browser that registered a key
    /// (revoking the key ends it), else `s:<random>`.
    #[serde(default)]
    pub sid: String,
    /// When the member proved who they are (passphrase, link, signature);
    /// refreshes keep it, so a session cannot be stretched forever.
    #[serde(default)]
    pub auth_time: u64,
}

impl Claims {
    pub fn did(&self) -> Result<Did, AuthError> {
        self.sub.parse().map_err(|_| AuthError::Invalid)
    }

    pub fn allows(&self, scope: &str) -> bool {
        self.scope.split(' ').any(|granted| granted == scope)
    }
}

pub struct Auth {
    secret: Vec<u8>,
    challenges: Mutex<HashMap<[u8; 32], (Did, Instant)>>,
    /// Sign-in links' codes not yet used.
    links: Mutex<HashMap<[u8; 16], (Did, Instant)>>,
    /// When recent passphrase attempts failed, and whether one is running
    /// (each costs a second of scrypt: one at a time).
    /// Wrong passphrases by client address: a stranger's guesses pause
    /// only their own address, never the member's own devices.
    passphrase_failures: Mutex<HashMap<std::net::IpAddr, Vec<Instant>>>,
    pub passphrase_attempt: tokio::sync::Semaphore,
    /// Browser keys registered now: a `k:` session lives only while its
    /// key does (`icnctl web revoke` ends it at once).
    live_keys: std::sync::RwLock<std::collections::HashSet<String>>,
    /// Sessions that signed in before this (unix seconds) are over
    /// (`icnctl web revoke all`).
    revoked_before: std::sync::atomic::AtomicU64,
}

/// Where a session came from, for its `sid`.
pub enum Session {
    /// A browser that holds this key (base58), registered with the node.
    BrowserKey(String),
    /// Anything else (a passphrase or link without a key, a device key,
    /// `icnctl web token`).
    Plain,
}

/// Wrong passphrases allowed per [`PASSPHRASE_WINDOW`] before sign-in by
/// passphrase pauses.
pub const PASSPHRASE_FAILURES_MAX: usize = 5;
pub const PASSPHRASE_WINDOW: Duration = Duration::from_secs(300);
/// Client addresses whose wrong passphrases are remembered, at most.
const PASSPHRASE_CLIENTS_MAX: usize = 4096;

/// How long a sign-in link works (once).
pub const LINK_TTL: Duration = Duration::from_secs(15 * 60);
/// Sign-in links waiting, at most; the oldest go first.
const LINKS_MAX: usize = 64;

/// Keeps at most `max - 1` live entries, dropping expired ones and then
/// the oldest, to make room for one more.
fn make_room<K: Copy + Eq + std::hash::Hash>(
    waiting: &mut HashMap<K, (Did, Instant)>,
    ttl: Duration,
    max: usize,
) {
    waiting.retain(|_, (_, at)| at.elapsed() < ttl);
    while waiting.len() >= max {
        let Some(oldest) = waiting
            .iter()
            .min_by_key(|(_, (_, at))| *at)
            .map(|(key, _)| *key)
        else {
            break;
        };
        waiting.remove(&oldest);
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

impl Auth {
    /// The secret from the environment, or the data directory's (made once).
    pub fn load(dir: &crate::DataDir) -> Result<Auth, AuthError> {
        if let Ok(secret) = std::env::var(SECRET_ENV) {
            if secret.len() < 32 {
                return Err(AuthError::Setup(format!(
                    "{SECRET_ENV} must be at least 32 characters"
                )));
            }
            return Ok(Auth::with_secret(secret.into_bytes()));
        }
        let path = dir.root().join(SECRET_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let secret = bs58::decode(text.trim()).into_vec().map_err(|_| {
                    AuthError::Setup(format!("{} is damaged; delete it", path.display()))
                })?;
                Ok(Auth::with_secret(secret))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let mut secret = [0u8; 32];
                getrandom::fill(&mut secret)
                    .map_err(|error| AuthError::Setup(format!("no randomness: {error}")))?;
                write_private(&path, &bs58::encode(secret).into_string())
                    .map_err(|error| AuthError::Setup(format!("{}: {error}", path.display())))?;
                Ok(Auth::with_secret(secret.to_vec()))
            }
            Err(error) => Err(AuthError::Setup(format!("{}: {error}", path.display()))),
        }
    }

    pub fn with_secret(secret: Vec<u8>) -> Auth {
        Auth {
            secret,
            challenges: Mutex::new(HashMap::new()),
            links: Mutex::new(HashMap::new()),
            passphrase_failures: Mutex::new(HashMap::new()),
            passphrase_attempt: tokio::sync::Semaphore::new(1),
            live_keys: Default::default(),
            revoked_before: Default::default(),
        }
    }

    /// The browser keys registered now (at start, and after every change).
    pub fn set_live_keys(&self, keys: impl IntoIterator<Item = String>) {
        *self.live_keys.write().unwrap_or_else(|e| e.into_inner()) = keys.into_iter().collect();
    }

    /// Ends every session that signed in before `unix_seconds`.
    pub fn revoke_before(&self, unix_seconds: u64) {
        self.revoked_before
            .fetch_max(unix_seconds, std::sync::atomic::Ordering::Relaxed);
    }

    /// Now, for [`Auth::revoke_before`]: every session so far.
    pub fn now_seconds() -> u64 {
        unix_now() + 1
    }

    /// A fresh challenge for `did`, base58.
    pub fn challenge(&self, did: Did) -> Result<String, AuthError> {
        let mut challenge = [0u8; 32];
        getrandom::fill(&mut challenge)
            .map_err(|error| AuthError::Setup(format!("no randomness: {error}")))?;
        let mut challenges = self.challenges.lock().unwrap_or_else(|e| e.into_inner());
        make_room(&mut challenges, CHALLENGE_TTL, CHALLENGES_MAX);
        challenges.insert(challenge, (did, Instant::now()));
        Ok(bs58::encode(challenge).into_string())
    }

    /// A one-time sign-in code for `did` (base58), valid [`LINK_TTL`].
    /// Only the admin socket hands these out.
    pub fn link(&self, did: Did) -> Result<String, AuthError> {
        let mut code = [0u8; 16];
        getrandom::fill(&mut code)
            .map_err(|error| AuthError::Setup(format!("no randomness: {error}")))?;
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        make_room(&mut links, LINK_TTL, LINKS_MAX);
        links.insert(code, (did, Instant::now()));
        Ok(bs58::encode(code).into_string())
    }

    /// Whether passphrase sign-in from `client` is paused after too many
    /// failures from that address: the seconds until it opens again.
    pub fn passphrase_paused(&self, client: std::net::IpAddr) -> Option<u64> {
        let mut failures = self
            .passphrase_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let recent = failures.get_mut(&client)?;
        recent.retain(|at| at.elapsed() < PASSPHRASE_WINDOW);
        (recent.len() >= PASSPHRASE_FAILURES_MAX).then(|| {
            let oldest = recent.iter().min().copied().unwrap_or_else(Instant::now);
            PASSPHRASE_WINDOW
                .saturating_sub(oldest.elapsed())
                .as_secs()
                .max(1)
        })
    }

    pub fn passphrase_failed(&self, client: std::net::IpAddr) {
        let mut failures = self
            .passphrase_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if failures.len() >= PASSPHRASE_CLIENTS_MAX && !failures.contains_key(&client) {
            // Forget addresses whose failures have all expired; if every
            // one is recent, the oldest goes.
            failures.retain(|_, recent| recent.iter().any(|at| at.elapsed() < PASSPHRASE_WINDOW));
            if failures.len() >= PASSPHRASE_CLIENTS_MAX
                && let Some(oldest) = failures
                    .iter()
                    .min_by_key(|(_, recent)| recent.iter().max().copied())
                    .map(|(address, _)| *address)
            {
                failures.remove(&oldest);
            }
        }
        let recent = failures.entry(client).or_default();
        recent.retain(|at| at.elapsed() < PASSPHRASE_WINDOW);
        if recent.len() < PASSPHRASE_FAILURES_MAX {
            recent.push(Instant::now());
        }
    }

    /// Uses up a sign-in code: whose it was.
    pub fn redeem(&self, code: &str) -> Result<Did, AuthError> {
        let code: [u8; 16] = bs58::decode(code.trim())
            .into_vec()
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(AuthError::UnknownLink)?;
        match self
            .links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&code)
        {
            Some((did, at)) if at.elapsed() < LINK_TTL => Ok(did),
            _ => Err(AuthError::UnknownLink),
        }
    }

    /// Checks an answer to a challenge (used once) against the keys the
    /// member authorises, and issues a token.
    pub fn verify(
        &self,
        did: Did,
        challenge: &str,
        signature: &str,
        keys: impl Fn(&Did) -> Vec<PublicKey>,
    ) -> Result<String, AuthError> {
        let bytes: [u8; 32] = bs58::decode(challenge.trim())
            .into_vec()
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(AuthError::UnknownChallenge)?;
        let issued = self
            .challenges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&bytes);
        match issued {
            Some((owner, at)) if owner == did && at.elapsed() < CHALLENGE_TTL => {}
            _ => return Err(AuthError::UnknownChallenge),
        }
        let signature: [u8; 64] = bs58::decode(signature.trim())
            .into_vec()
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(AuthError::BadSignature { did })?;
        let signature = ed25519_dalek::Signature::from_bytes(&signature);
        let mut message = CHALLENGE_CONTEXT.to_vec();
        message.extend_from_slice(&bytes);
        let verified = keys(&did).into_iter().find(|key| {
            ed25519_dalek::VerifyingKey::from_bytes(key.as_bytes())
                .is_ok_and(|key| key.verify_strict(&message, &signature).is_ok())
        });
        let Some(key) = verified else {
            return Err(AuthError::BadSignature { did });
        };
        // A browser's key makes a session that revoking the key ends.
        let key = key.to_string();
        let session = if self
            .live_keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&key)
        {
            Session::BrowserKey(key)
        } else {
            Session::Plain
        };
        Ok(self.issue(did, "read write", session))
    }

    /// A token for a new session of `did` with `scope`, valid
    /// [`TOKEN_TTL_SECONDS`].
    pub fn issue(&self, did: Did, scope: &str, session: Session) -> String {
        let now = unix_now();
        let sid = match session {
            Session::BrowserKey(key) => format!("k:{key}"),
            Session::Plain => {
                let mut random = [0u8; 12];
                // Without randomness the session is still bound by time.
                let _ = getrandom::fill(&mut random);
                format!("s:{}", bs58::encode(random).into_string())
            }
        };
        self.sign(&Claims {
            sub: did.to_string(),
            scope: scope.to_owned(),
            iat: now,
            exp: now + TOKEN_TTL_SECONDS,
            sid,
            auth_time: now,
        })
    }

    /// A new token for the session of `claims` (checked by [`Auth::check`]):
    /// the same session and sign-in time, a new hour. A session without a
    /// browser key is not renewed past [`SESSION_MAX_SECONDS`].
    pub fn renew(&self, claims: &Claims) -> Result<String, AuthError> {
        let now = unix_now();
        if !claims.sid.starts_with("k:")
            && now.saturating_sub(claims.auth_time) > SESSION_MAX_SECONDS
        {
            return Err(AuthError::Revoked);
        }
        Ok(self.sign(&Claims {
            iat: now,
            exp: now + TOKEN_TTL_SECONDS,
            ..claims.clone()
        }))
    }

    fn sign(&self, claims: &Claims) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("plain data serialises"));
        let signing_input = format!("{header}.{payload}");
        let mac = URL_SAFE_NO_PAD.encode(self.mac(signing_input.as_bytes()));
        format!("{signing_input}.{mac}")
    }

    fn mac(&self, input: &[u8]) -> Vec<u8> {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(input);
        mac.finalize().into_bytes().to_vec()
    }

    /// The claims of a valid, unexpired token from an `Authorization` header.
    pub fn check(&self, header: Option<&str>) -> Result<Claims, AuthError> {
        let token = header
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or(AuthError::Missing)?
            .trim();
        let (signing_input, mac) = token.rsplit_once('.').ok_or(AuthError::Invalid)?;
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| AuthError::Invalid)?;
        let mut expected =
            HmacSha256::new_from_slice(&self.secret).expect("HMAC takes any key length");
        expected.update(signing_input.as_bytes());
        expected
            .verify_slice(&mac)
            .map_err(|_| AuthError::Invalid)?;
        let (header, payload) = signing_input.split_once('.').ok_or(AuthError::Invalid)?;
        let header: serde_json::Value = URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(AuthError::Invalid)?;
        if header["alg"] != "HS256" {
            return Err(AuthError::Invalid);
        }
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(AuthError::Invalid)?;
        if claims.exp <= unix_now() {
            return Err(AuthError::Invalid);
        }
        if claims.auth_time
            < self
                .revoked_before
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Err(AuthError::Revoked);
        }
        if let Some(key) = claims.sid.strip_prefix("k:")
            && !self
                .live_keys
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .contains(key)
        {
            return Err(AuthError::Revoked);
        }
        Ok(claims)
    }
}

/// Writes a file only its owner can read.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_challenge_gives_a_token_once_and_forgeries_fail() {
        let auth = Auth::with_secret(vec![7; 32]);
        let key = icn_identity::KeyPair::from_seed(&[1; 32]);
        let did = Did::from_inception_key(key.public());
        let keys = |_: &Did| vec![key.public()];
        let challenge = auth.challenge(did).unwrap();
        let mut message = CHALLENGE_CONTEXT.to_vec();
        message.extend(bs58::decode(&challenge).into_vec().unwrap());
        let signature = bs58::encode(key.sign(&message).to_bytes()).into_string();
        let token = auth.verify(did, &challenge, &signature, keys).unwrap();
        let claims = auth.check(Some(&format!("Bearer {token}"))).unwrap();
        assert_eq!(claims.did().unwrap(), did);
        assert!(claims.allows("write"));
        // A challenge is used once.
        assert!(matches!(
            auth.verify(did, &challenge, &signature, keys),
            Err(AuthError::UnknownChallenge)
        ));
        // Someone else's key does not answer for this DID.
        let other = icn_identity::KeyPair::from_seed(&[2; 32]);
        let challenge = auth.challenge(did).unwrap();
        let mut message = CHALLENGE_CONTEXT.to_vec();
        message.extend(bs58::decode(&challenge).into_vec().unwrap());
        let forged = bs58::encode(other.sign(&message).to_bytes()).into_string();
        assert!(matches!(
            auth.verify(did, &challenge, &forged, keys),
            Err(AuthError::BadSignature { .. })
        ));
        // A token signed with another secret, or altered, is refused.
        let elsewhere = Auth::with_secret(vec![8; 32]).issue(did, "read write", Session::Plain);
        assert!(auth.check(Some(&format!("Bearer {elsewhere}"))).is_err());
        let mut altered = token.clone();
        altered.insert(10, 'x');
        assert!(auth.check(Some(&format!("Bearer {altered}"))).is_err());
        assert!(matches!(auth.check(None), Err(AuthError::Missing)));
        assert!(auth.check(Some("Bearer")).is_err());
    }

    #[test]
    fn wrong_passphrases_pause_only_the_address_they_came_from() {
        let auth = Auth::with_secret(vec![7; 32]);
        let stranger: std::net::IpAddr = [192, 0, 2, 7].into();
        let member: std::net::IpAddr = [127, 0, 0, 1].into();
        for _ in 0..PASSPHRASE_FAILURES_MAX {
            assert_eq!(auth.passphrase_paused(stranger), None);
            auth.passphrase_failed(stranger);
        }
        assert!(auth.passphrase_paused(stranger).is_some());
        assert_eq!(
            auth.passphrase_paused(member),
            None,
            "the member's own device is not locked out"
        );
    }

    #[test]
    fn revoking_a_browser_key_ends_its_sessions_and_renewals_at_once() {
        let auth = Auth::with_secret(vec![7; 32]);
        let did = Did::from_inception_key(icn_identity::KeyPair::from_seed(&[1; 32]).public());
        let bearer = |token: &str| format!("Bearer {token}");
        auth.set_live_keys(["browser-a".to_owned(), "browser-b".to_owned()]);
        let a = auth.issue(did, "read write", Session::BrowserKey("browser-a".into()));
        let b = auth.issue(did, "read write", Session::BrowserKey("browser-b".into()));
        let claims = auth.check(Some(&bearer(&a))).unwrap();
        let renewed = auth.renew(&claims).unwrap();
        assert_eq!(
            auth.check(Some(&bearer(&renewed))).unwrap().sid,
            "k:browser-a"
        );
        // Browser A's key is revoked: its token and its renewed token stop.
        auth.set_live_keys(["browser-b".to_owned()]);
        for token in [&a, &renewed] {
            assert!(matches!(
                auth.check(Some(&bearer(token))),
                Err(AuthError::Revoked)
            ));
        }
        assert!(auth.check(Some(&bearer(&b))).is_ok());
        // `revoke all`: every session so far ends, keyed or not.
        let plain = auth.issue(did, "read", Session::Plain);
        auth.revoke_before(Auth::now_seconds());
        for token in [&b, &plain] {
            assert!(matches!(
                auth.check(Some(&bearer(token))),
                Err(AuthError::Revoked)
            ));
        }
        // A session without a key renews for a day after sign-in, not forever.
        let old = Claims {
            sub: did.to_string(),
            scope: "read".into(),
            iat: unix_now(),
            exp: unix_now() + 60,
            sid: "s:x".into(),
            auth_time: unix_now() - SESSION_MAX_SECONDS - 1,
        };
        assert!(matches!(auth.renew(&old), Err(AuthError::Revoked)));
    }
}
