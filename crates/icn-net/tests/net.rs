//! A hostile member's node, speaking the sync protocol through a raw iroh
//! endpoint: each kind of bad input is dropped with a close code, counted,
//! and changes nothing the node has stored; the node stays responsive.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use icn_coop::prelude::*;
use icn_net::{Net, NetOptions, SYNC_ALPN, SharedState, Ticket};
use icn_runtime::{DataDir, Modules, Node, PublicIdentity};
use icn_testkit::{at, did_of, member};
use iroh::{
    Endpoint, RelayMode, SecretKey,
    endpoint::{Connection, ConnectionError, presets},
};

/// Member 1 runs the node under test; member 2 (a founder) is the hostile
/// peer; member 3 is no member at all.
struct Target {
    _dir: tempfile::TempDir,
    state: SharedState,
    net: Arc<Net>,
    ticket: Ticket,
}

fn coop_modules() -> Modules {
    Modules::new(vec![icn_coop::CoopModule::module()])
}

/// Member `n`'s node on a fresh data directory, with no co-op yet.
fn member_node(n: u8) -> (tempfile::TempDir, Node) {
    member_node_with(n, &coop_modules())
}

fn member_node_with(n: u8, modules: &Modules) -> (tempfile::TempDir, Node) {
    let dir = tempfile::tempdir().unwrap();
    let key = member(n);
    let data = DataDir::new(dir.path());
    data.write_public_identity(&PublicIdentity {
        did: did_of(&key),
        device_key: key.public(),
        device_label: "test".into(),
    })
    .unwrap();
    (dir, Node::open(data, vec![key], modules).unwrap())
}

async fn target() -> Target {
    target_with(&coop_modules()).await
}

/// Member 1's node founding a co-op with member 2, on the network, with
/// `modules` plugged in.
async fn target_with(modules: &Modules) -> Target {
    let (dir, mut node) = member_node_with(1, modules);
    node.create_coop("Target", &[did_of(&member(2))], &Default::default(), at(0))
        .unwrap();
    let state: SharedState = Arc::new(Mutex::new(node));
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let net = Net::start(state.clone(), NetOptions::direct(loopback, vec![]))
        .await
        .unwrap();
    let ticket = net.ticket().unwrap();
    Target {
        _dir: dir,
        state,
        net,
        ticket,
    }
}

/// A raw endpoint holding member `n`'s key, connected to the node (the
/// endpoint must outlive the connection).
async fn raw_peer(n: u8, ticket: &Ticket) -> Result<(Endpoint, Connection), String> {
    let endpoint = Endpoint::builder(presets::Minimal)
        .secret_key(SecretKey::from_bytes(&[n + 1; 32]))
        .relay_mode(RelayMode::Disabled)
        .bind()
        .await
        .unwrap();
    let addr = ticket.endpoint_addr(false).unwrap();
    let connection = endpoint
        .connect(addr, SYNC_ALPN)
        .await
        .map_err(|error| error.to_string())?;
    Ok((endpoint, connection))
}

/// Sends `bytes` raw on a new stream and returns the close code the node
/// answers with.
async fn send_and_get_closed(ticket: &Ticket, bytes: Vec<u8>) -> u64 {
    let (_endpoint, connection) = raw_peer(2, ticket).await.unwrap();
    let (mut send, _recv) = connection.open_bi().await.unwrap();
    send.write_all(&bytes).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(30), connection.closed())
        .await
        .expect("the node closes the connection");
    match closed {
        ConnectionError::ApplicationClosed(close) => close.error_code.into_inner(),
        other => panic!("expected the node to close the connection, got {other}"),
    }
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(payload);
    bytes
}

fn with_log<T>(state: &SharedState, read: impl FnOnce(&icn_kernel::Log) -> T) -> T {
    read(state.lock().unwrap().log().unwrap())
}

fn events_stored(state: &SharedState) -> usize {
    with_log(state, icn_kernel::Log::counted_len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_peer_is_dropped_counted_and_changes_nothing() {
    let target = target().await;
    let before = events_stored(&target.state);

    // Garbage that is not a message.
    let code = send_and_get_closed(&target.ticket, frame(&[0xff; 100])).await;
    assert_eq!(code, 400);
    assert_eq!(target.net.metrics.snapshot().frames_malformed, 1);

    // A frame header that announces more than the limit.
    let header = ((icn_sync::FRAME_MAX + 1) as u32).to_be_bytes().to_vec();
    let code = send_and_get_closed(&target.ticket, header).await;
    assert_eq!(code, 400);
    assert_eq!(target.net.metrics.snapshot().frames_malformed, 2);

    // An event in member 2's name whose signature was tampered with.
    let mut other = member_node(2);
    let genesis = with_log(&target.state, |log| log.genesis().clone());
    other.1.join(genesis.verify().unwrap()).unwrap();
    let pay = icn_api::Pay {
        to: did_of(&member(1)).to_string(),
        amount: "1h".into(),
        currency: None,
        memo: "forged".into(),
    };
    let id = other.1.pay(&pay, at(1)).unwrap();
    let mut forged = other.1.log().unwrap().get(&id).unwrap().bytes().to_vec();
    let last = forged.len() - 1;
    forged[last] ^= 0x01;
    let push = icn_sync::Message::Push(vec![forged]).encode();
    let code = send_and_get_closed(&target.ticket, frame(&push)).await;
    assert_eq!(code, 401);
    assert_eq!(target.net.metrics.snapshot().events_forged, 1);

    // A peer that stops mid-frame: nothing partial is used.
    let genuine = other.1.log().unwrap().get(&id).unwrap().bytes().to_vec();
    let push = frame(&icn_sync::Message::Push(vec![genuine.clone()]).encode());
    {
        let (_endpoint, connection) = raw_peer(2, &target.ticket).await.unwrap();
        let (mut send, _recv) = connection.open_bi().await.unwrap();
        send.write_all(&push[..push.len() / 2]).await.unwrap();
        send.finish().unwrap();
        // The node reads to the cut and ends the session (no sleep: a slow
        // machine must not pass by never reading the half frame).
        tokio::time::timeout(Duration::from_secs(30), connection.closed())
            .await
            .expect("the node ends a session cut off mid-frame");
    }

    // A stranger's key is refused at the handshake.
    let refused_before = target.net.metrics.snapshot().connections_refused;
    if let Ok((_endpoint, connection)) = raw_peer(3, &target.ticket).await {
        let closed = tokio::time::timeout(Duration::from_secs(30), connection.closed())
            .await
            .expect("the node closes a stranger's connection");
        assert!(
            matches!(&closed, ConnectionError::ApplicationClosed(close) if close.error_code.into_inner() == 403),
            "{closed}"
        );
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while target.net.metrics.snapshot().connections_refused == refused_before {
        assert!(
            std::time::Instant::now() < deadline,
            "the refusal is counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Nothing was stored, and the node still takes a genuine event.
    assert_eq!(events_stored(&target.state), before);
    let push = frame(&icn_sync::Message::Push(vec![genuine]).encode());
    let (_endpoint, connection) = raw_peer(2, &target.ticket).await.unwrap();
    let (mut send, _recv) = connection.open_bi().await.unwrap();
    send.write_all(&push).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while events_stored(&target.state) == before {
        assert!(
            std::time::Instant::now() < deadline,
            "the genuine event is taken"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(with_log(&target.state, |log| log.get(&id).is_some()));
    target.net.close().await;
}

/// A module serving two protocols: one for members, one for anyone. Each
/// answers with who called (the member's DID, or "stranger") and the request.
struct Echo;

impl icn_runtime::Module for Echo {
    fn name(&self) -> &'static str {
        "echo"
    }

    fn domains(&self) -> Vec<Box<dyn icn_kernel::Domain>> {
        Vec::new()
    }

    fn protocols(&self) -> Vec<icn_runtime::Protocol> {
        let echo = |_: &mut Node, caller: &icn_runtime::Caller, request: &[u8]| {
            if request == b"refuse" {
                return Err("asked to refuse".to_owned());
            }
            let who = caller
                .member
                .map_or("stranger".to_owned(), |did| did.to_string());
            Ok([who.as_bytes(), b" ", request].concat())
        };
        vec![
            icn_runtime::Protocol {
                alpn: b"test/members/1",
                open_to: icn_runtime::OpenTo::Members,
                request_max: 16,
                serve: Box::new(echo),
            },
            icn_runtime::Protocol {
                alpn: b"test/anyone/1",
                open_to: icn_runtime::OpenTo::Anyone,
                request_max: 16,
                serve: Box::new(echo),
            },
        ]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modules_protocols_are_served_within_their_limits_to_whom_they_are_open() {
    let modules = Modules::new(vec![icn_coop::CoopModule::module(), Arc::new(Echo)]);
    let Target {
        _dir,
        state,
        net,
        ticket,
    } = target_with(&modules).await;
    let founder = *member(2).seed();
    let stranger = *member(3).seed();
    let ask = |seed: [u8; 32], alpn: &'static [u8], request: &'static [u8]| {
        let ticket = ticket.clone();
        async move { icn_net::ask(&ticket, &seed, alpn, request, 1024).await }
    };

    // A member is served, and the module learns who asked.
    let answer = ask(founder, b"test/members/1", b"hello").await.unwrap();
    assert_eq!(answer, format!("{} hello", did_of(&member(2))).into_bytes());
    // A stranger is refused at the handshake, and nothing is served.
    let refused = ask(stranger, b"test/members/1", b"hello").await;
    assert!(refused.is_err(), "a stranger was served: {refused:?}");
    // A protocol open to anyone serves the stranger, as a stranger.
    let answer = ask(stranger, b"test/anyone/1", b"hello").await.unwrap();
    assert_eq!(answer, b"stranger hello");

    // A request over the module's limit is refused unread and counted.
    let failed = net.metrics.snapshot().requests_failed;
    let long = ask(founder, b"test/members/1", b"seventeen bytes!!").await;
    assert!(long.is_err(), "a request over the limit was served");
    // The module's refusal reaches the caller, with its reason.
    let error = ask(founder, b"test/members/1", b"refuse")
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("asked to refuse"),
        "the reason was lost: {error:#}"
    );
    assert_eq!(net.metrics.snapshot().requests_failed, failed + 2);

    // The co-op's own protocol is one of them: a newcomer fetches the genesis.
    let coop = ticket.coop;
    let answer = icn_net::ask(
        &ticket,
        &stranger,
        icn_coop::join::ALPN,
        &icn_coop::join::genesis_request(coop),
        icn_coop::join::GENESIS_ANSWER_MAX,
    )
    .await
    .unwrap();
    let genesis = icn_coop::join::genesis_from(&answer, coop).unwrap();
    assert_eq!(genesis.id(), with_log(&state, |log| log.genesis().id()));
    net.close().await;
}
