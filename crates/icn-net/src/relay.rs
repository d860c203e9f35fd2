//! The co-op's own relay, and how members trust it.
//!
//! A member's node behind a home router cannot be dialled directly. An
//! always-on member node started with `--relay-enable` runs an iroh relay
//! server: members keep a connection to it, reach each other through it
//! first, and learn there the public address their router gives them (QUIC
//! address discovery), which lets both sides punch a hole and move to a
//! direct path. Nothing of a third party is involved.
//!
//! Trust without a certificate authority: the relay's TLS key is the
//! Ed25519 key of the member node that runs it, and tickets name that key
//! beside the relay's URL. A client accepts a relay's TLS handshake only if
//! it is signed by one of the keys it has from tickets ([`PinnedRelays`]);
//! the certificate itself is a self-signed wrapper and is not trusted for
//! anything. The relay in turn serves only members' keys ([`MembersOnly`]).
//! Relayed traffic is end-to-end encrypted QUIC between the two members
//! either way; the relay sees who talks to whom and how much.

use std::{
    collections::HashSet,
    net::SocketAddr,
    num::NonZeroU32,
    sync::{Arc, RwLock, Weak},
};

use iroh::{RelayConfig, RelayUrl};
use iroh_relay::{
    server::{
        Access, AccessControl, CertConfig, ClientRateLimit, ClientRequest, Limits, QuicConfig,
        RelayConfig as RelayServerConfig, Server, ServerConfig, TlsConfig,
    },
    tls::CaTlsConfig,
};
use rustls::{
    DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime},
};
use serde::{Deserialize, Serialize};

use icn_runtime::Node;

/// Bytes a second one client may send through the relay, and its burst.
const CLIENT_BYTES_PER_SECOND: u32 = 8 * 1024 * 1024;
const CLIENT_BYTES_BURST: u32 = 16 * 1024 * 1024;
/// New relay connections a second, over all clients, and their burst.
const ACCEPT_PER_SECOND: f64 = 20.0;
const ACCEPT_BURST: usize = 40;

/// A relay as tickets carry it: where it is and the key it must prove.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RelayRef {
    pub url: String,
    pub key: [u8; 32],
}

impl RelayRef {
    pub fn relay_url(&self) -> Result<RelayUrl, String> {
        let url: RelayUrl = self
            .url
            .parse()
            .map_err(|_| format!("{:?} is not a relay URL", self.url))?;
        if url.scheme() != "https" {
            return Err(format!("relay URL {:?} must start with https://", self.url));
        }
        Ok(url)
    }

    /// The client's view: where to reach the relay over WebSocket, and
    /// that it answers address discovery on the same port over UDP.
    pub fn client_config(&self) -> Result<(RelayUrl, Arc<RelayConfig>), String> {
        let url = self.relay_url()?;
        let port = url.port_or_known_default().unwrap_or(443);
        let config = RelayConfig::new(url.clone(), Some(iroh_relay::RelayQuicConfig::new(port)));
        Ok((url, Arc::new(config)))
    }
}

/// The relay keys this node accepts, shared with the TLS verifier so that
/// relays learned later (a new ticket) are trusted from then on.
#[derive(Clone, Debug, Default)]
pub struct PinnedRelays {
    keys: Arc<RwLock<HashSet<[u8; 32]>>>,
}

impl PinnedRelays {
    pub fn pin(&self, key: [u8; 32]) {
        self.keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(key);
    }

    fn any_verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else {
            return false;
        };
        let keys = self
            .keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        keys.iter().any(|key| {
            ed25519_dalek::VerifyingKey::from_bytes(key)
                .is_ok_and(|key| key.verify_strict(message, &signature).is_ok())
        })
    }

    /// What the endpoint uses to check relays' TLS.
    pub fn ca_tls_config(&self) -> CaTlsConfig {
        let pinned = self.clone();
        CaTlsConfig::custom_server_cert_verifier(Arc::new(move |_provider| {
            Ok(Arc::new(PinnedVerifier {
                pinned: pinned.clone(),
            }) as Arc<dyn ServerCertVerifier>)
        }))
    }
}

#[derive(Debug)]
struct PinnedVerifier {
    pinned: PinnedRelays,
}

impl ServerCertVerifier for PinnedVerifier {
    /// The certificate proves nothing on its own; the handshake signature
    /// below must be made by a pinned key.
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        _cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if dss.scheme == SignatureScheme::ED25519
            && self.pinned.any_verifies(message, dss.signature())
        {
            Ok(HandshakeSignatureValid::assertion())
        } else {
            Err(rustls::Error::General(
                "the relay's key is not one our tickets name".into(),
            ))
        }
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// The relay serves members' keys only (checked against the log at each
/// connection, so a revoked device loses it at its next connect).
#[derive(Debug)]
struct MembersOnly {
    state: Weak<std::sync::Mutex<Node>>,
}

impl AccessControl for MembersOnly {
    async fn on_connect(&self, request: &ClientRequest) -> Access {
        let key = *request.endpoint_id().as_bytes();
        let member = self.state.upgrade().and_then(|state| {
            let node = state
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            super::member_with_key(&node, &key)
        });
        match member {
            Some(_) => Access::Allow,
            None => Access::Deny {
                reason: Some("not a member of this co-op".into()),
            },
        }
    }
}

/// Counters of the relay this node runs, for `/metrics`.
pub struct RelayStats {
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Clients connected now.
    pub clients: u64,
    /// Distinct client keys seen since the relay started.
    pub clients_total: u64,
}

/// A running relay and the URL members are told to use.
pub struct Relay {
    server: Server,
    pub url: RelayRef,
}

impl Relay {
    /// Starts the relay: HTTPS (WebSocket) on `listen` over TCP and QUIC
    /// address discovery on the same port over UDP. `public_url` is what
    /// members dial; unset, it is made from `fallback_host` and the port.
    pub async fn start(
        state: &crate::SharedState,
        seed: &[u8; 32],
        listen: SocketAddr,
        public_url: Option<String>,
        fallback_host: Option<std::net::IpAddr>,
    ) -> anyhow::Result<Relay> {
        let tls = server_tls(seed)?;
        // Clients look for address discovery on the URL's port over UDP.
        let listen = match listen.port() {
            0 => SocketAddr::new(listen.ip(), free_port_pair(listen.ip())?),
            _ => listen,
        };
        let mut relay = RelayServerConfig::new(SocketAddr::new(listen.ip(), 0));
        relay.tls = Some(TlsConfig::new(
            listen,
            CertConfig::Manual {
                server_config: tls.clone(),
            },
        ));
        let mut client_rx = ClientRateLimit::new(
            NonZeroU32::new(CLIENT_BYTES_PER_SECOND).expect("the rate is not zero"),
        );
        client_rx.max_burst_bytes = NonZeroU32::new(CLIENT_BYTES_BURST);
        let mut limits = Limits::default();
        limits.client_rx = Some(client_rx);
        limits.accept_conn_limit = Some(ACCEPT_PER_SECOND);
        limits.accept_conn_burst = Some(ACCEPT_BURST);
        relay.limits = limits;
        relay.access = Arc::new(MembersOnly {
            state: Arc::downgrade(state),
        });
        let mut config = ServerConfig::default();
        config.relay = Some(relay);
        let mut quic = QuicConfig::new(listen);
        quic.server_config = Some(tls);
        config.quic = Some(quic);
        let server = Server::spawn(config).await.map_err(|error| {
            anyhow::anyhow!(
                "cannot start the relay on {listen}: {error} (is the port taken? choose one with --relay-listen)"
            )
        })?;
        let bound = server
            .https_addr()
            .ok_or_else(|| anyhow::anyhow!("the relay did not bind its HTTPS port"))?;
        let url = match public_url {
            Some(url) => url,
            None => {
                let host = match bound.ip() {
                    ip if !ip.is_unspecified() => ip,
                    _ => fallback_host.ok_or_else(|| {
                        anyhow::anyhow!(
                            "cannot tell the relay's address; set net.relay_url (for example https://coop.example.org:{})",
                            bound.port()
                        )
                    })?,
                };
                format!("https://{}", SocketAddr::new(host, bound.port()))
            }
        };
        let key = ed25519_dalek::SigningKey::from_bytes(seed)
            .verifying_key()
            .to_bytes();
        let url = RelayRef { url, key };
        url.relay_url()
            .map_err(|error| anyhow::anyhow!("net.relay_url: {error}"))?;
        tracing::info!(url = %url.url, %bound, "The co-op relay is running.");
        Ok(Relay { server, url })
    }

    /// What the relay has carried since it started.
    pub fn stats(&self) -> RelayStats {
        let server = &self.server.metrics().server;
        RelayStats {
            bytes_sent: server.bytes_sent.get(),
            bytes_received: server.bytes_recv.get(),
            clients: server
                .accepts
                .get()
                .saturating_sub(server.disconnects.get()),
            clients_total: server.unique_client_keys.get(),
        }
    }

    pub async fn stop(self) {
        if let Err(error) = self.server.shutdown().await {
            tracing::debug!(%error, "The relay stopped with an error.");
        }
    }
}

/// A port free for both TCP and UDP (for `--relay-listen` with port 0).
fn free_port_pair(ip: std::net::IpAddr) -> anyhow::Result<u16> {
    for _ in 0..32 {
        let udp = std::net::UdpSocket::bind(SocketAddr::new(ip, 0))?;
        let port = udp.local_addr()?.port();
        if std::net::TcpListener::bind(SocketAddr::new(ip, port)).is_ok() {
            return Ok(port);
        }
    }
    anyhow::bail!("found no port free for both TCP and UDP on {ip}")
}

/// TLS 1.3 only, with a self-signed certificate around the member key.
fn server_tls(seed: &[u8; 32]) -> anyhow::Result<rustls::ServerConfig> {
    // PKCS#8 v1 for an Ed25519 private key (RFC 8410): a fixed prefix, then the seed.
    const PKCS8_ED25519_PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let mut pkcs8 = zeroize::Zeroizing::new(Vec::with_capacity(48));
    pkcs8.extend_from_slice(&PKCS8_ED25519_PREFIX);
    pkcs8.extend_from_slice(seed);
    let der = PrivatePkcs8KeyDer::from(pkcs8.to_vec());
    let key_pair = rcgen::KeyPair::try_from(&der)
        .map_err(|error| anyhow::anyhow!("the relay's TLS key: {error}"))?;
    let cert = rcgen::CertificateParams::new(vec!["icn-relay".to_owned()])
        .and_then(|params| params.self_signed(&key_pair))
        .map_err(|error| anyhow::anyhow!("the relay's TLS certificate: {error}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], PrivateKeyDer::Pkcs8(der))?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::Signer;

    use super::*;

    #[test]
    fn only_a_handshake_signed_by_a_pinned_key_is_trusted() {
        let relay = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let stranger = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
        let pinned = PinnedRelays::default();
        let transcript = b"tls 1.3 certificate verify content";
        let by = |key: &ed25519_dalek::SigningKey| key.sign(transcript).to_bytes();
        assert!(
            !pinned.any_verifies(transcript, &by(&relay)),
            "nothing pinned yet"
        );
        pinned.pin(relay.verifying_key().to_bytes());
        assert!(pinned.any_verifies(transcript, &by(&relay)));
        assert!(!pinned.any_verifies(transcript, &by(&stranger)));
        assert!(!pinned.any_verifies(b"another transcript", &by(&relay)));
        assert!(
            !pinned.any_verifies(transcript, &[0; 10]),
            "a short signature"
        );
    }

    #[test]
    fn the_relay_certificate_wraps_the_member_key() {
        // rustls accepts the key and certificate made from the seed.
        server_tls(&[9; 32]).expect("a TLS config");
    }

    #[test]
    fn relay_urls_must_be_https() {
        let relay = |url: &str| RelayRef {
            url: url.to_owned(),
            key: [1; 32],
        };
        assert!(relay("https://10.0.0.1:7880").client_config().is_ok());
        assert!(relay("http://10.0.0.1:7880").relay_url().is_err());
        assert!(relay("not a url").relay_url().is_err());
    }
}
