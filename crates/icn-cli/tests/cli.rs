//! End-to-end: the real binaries, as a member and an admin would use them.

use std::sync::{Arc, Mutex};

use icn_client as admin_client;
use icn_node::{
    DataDir,
    node::{Signatures, replay_store},
};
use icn_testkit::cli::{Harness, http, http_get, http_raw};

fn harness() -> Harness {
    Harness::new(env!("CARGO_BIN_EXE_icnd"), env!("CARGO_BIN_EXE_icnctl"))
}

#[test]
fn a_new_member_creates_an_identity_and_a_coop() {
    let h = harness();
    let dir = h.data_dir("ana");

    let missing = h.icnctl(&dir, &["status"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("icnctl: error:")
            && missing.stderr.contains("hint: run `icnctl id init`"),
        "{missing:?}"
    );

    let init = h.icnctl(&dir, &["id", "init", "--json"]);
    assert_eq!(init.code, 0, "{init:?}");
    let did = init.json()["did"].as_str().unwrap().to_owned();
    assert!(did.starts_with("did:icn:"));

    let show = h.icnctl(&dir, &["id", "show"]);
    assert_eq!(show.stdout.trim(), did);
    let again = h.icnctl(&dir, &["id", "init"]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("already exists"), "{again:?}");

    // Without --yes it asks; with nothing to answer, it founds nothing.
    let no_yes = h.icnctl(&dir, &["coop", "init", "Riverside Bakery"]);
    assert_eq!(no_yes.code, 2);
    assert!(no_yes.stderr.contains("--yes"), "{no_yes:?}");

    let coop = h.icnctl(
        &dir,
        &["coop", "init", "Riverside Bakery", "--yes", "--json"],
    );
    assert_eq!(coop.code, 0, "{coop:?}");
    let status = h.icnctl(&dir, &["status", "--json"]).json();
    assert_eq!(status["running"], false);
    assert_eq!(status["did"], did.as_str());
    assert_eq!(status["coop"]["name"], "Riverside Bakery");
    assert_eq!(status["coop"]["currencies"][0], "hours");
    assert_eq!(status["events"], 1);

    let twice = h.icnctl(&dir, &["coop", "init", "Another", "--yes"]);
    assert_eq!(twice.code, 2);
    assert!(
        twice.stderr.contains("already belongs to the co-op"),
        "{twice:?}"
    );
}

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let h = harness();
    let dir = h.data_dir("ben");
    assert_eq!(h.icnctl(&dir, &["id", "init"]).code, 0);

    let bad_founder = h.icnctl(
        &dir,
        &["coop", "init", "X", "--yes", "--founder", "did:web:example"],
    );
    assert_eq!(bad_founder.code, 2);
    assert!(
        bad_founder
            .stderr
            .contains("does not start with `did:icn:`"),
        "{bad_founder:?}"
    );

    let wrong = h.icnctl_with(&dir, &["coop", "init", "X", "--yes"], |c| {
        c.env("ICN_KEYSTORE_PASSPHRASE", "not it");
    });
    assert_eq!(wrong.code, 2);
    assert!(
        wrong.stderr.contains("wrong passphrase") && wrong.stderr.contains("hint:"),
        "{wrong:?}"
    );

    let no_passphrase = h.icnctl_with(&dir, &["coop", "init", "X", "--yes"], |c| {
        c.env_remove("ICN_KEYSTORE_PASSPHRASE");
    });
    assert_eq!(no_passphrase.code, 2);
    assert!(
        no_passphrase.stderr.contains("ICN_KEYSTORE_PASSPHRASE"),
        "{no_passphrase:?}"
    );

    let keystore = dir.join("keystore.age");
    let original = std::fs::read(&keystore).unwrap();
    std::fs::write(&keystore, &original[..original.len() / 2]).unwrap();
    let truncated = h.icnctl(&dir, &["coop", "init", "X", "--yes"]);
    assert_eq!(truncated.code, 2);
    assert!(
        truncated.stderr.contains("corrupt or truncated"),
        "{truncated:?}"
    );
    std::fs::write(&keystore, &original).unwrap();

    // None of the failures founded a co-op.
    assert_eq!(
        h.icnctl(&dir, &["status", "--json"]).json()["coop"],
        serde_json::Value::Null
    );

    std::fs::write(
        dir.join("icn.db"),
        b"garbage that is not a database, long enough to matter",
    )
    .unwrap();
    let damaged = h.icnctl(&dir, &["status"]);
    assert_eq!(damaged.code, 2);
    assert!(
        damaged
            .stderr
            .contains("is not an ICN database or is corrupt"),
        "{damaged:?}"
    );
}

#[test]
fn the_daemon_serves_health_refuses_a_twin_and_stops_on_sigterm() {
    let h = harness();
    let dir = h.data_dir("cleo");
    assert_eq!(h.icnctl(&dir, &["id", "init"]).code, 0);
    assert_eq!(
        h.icnctl(&dir, &["coop", "init", "Orchard", "--yes"]).code,
        0
    );

    let daemon = h.spawn_icnd(&dir, &["--gateway-enable", "--gateway-bind", "127.0.0.1:0"]);
    let api = daemon.api.clone().expect("the gateway address is printed");
    let (code, body) = http_get(&format!("{api}/health"));
    assert_eq!((code, body.as_str()), (200, r#"{"status":"ok"}"#));
    let (code, body) = http_get(&format!("{api}/nowhere"));
    assert_eq!(code, 404);
    assert!(body.contains(r#""code":"not_found""#));

    // The gateway: nothing without a token, everything a member may with one.
    let did = did_in(&h, &dir);
    let (code, body) = http_get(&format!("{api}/ledger/balance/{did}"));
    assert_eq!(code, 401, "{body}");
    assert!(body.contains(r#""code":"unauthorized""#), "{body}");
    let (code, body) = http("GET", &format!("{api}/me"), Some("not.a.token"), None);
    assert_eq!(code, 401, "{body}");
    let token = h.icnctl(&dir, &["--json", "web", "token"]).json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, body) = http("GET", &format!("{api}/me"), Some(&token), None);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(&did), "{body}");
    let (code, body) = http(
        "GET",
        &format!("{api}/ledger/balance/{did}"),
        Some(&token),
        None,
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = http(
        "POST",
        &format!("{api}/ledger/transfer"),
        Some(&token),
        Some("{nope"),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains(r#""code":"bad_request""#), "{body}");
    // Live events: subscribe, then make a proposal; it streams by.
    let mut events = {
        use std::io::Write;
        let host = api
            .strip_prefix("http://")
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        let mut stream = std::net::TcpStream::connect(&host).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        write!(
            stream,
            "GET /api/v1/events?token={token} HTTP/1.1\r\nHost: {host}\r\n\r\n"
        )
        .unwrap();
        std::io::BufReader::new(stream)
    };
    let mut seen = String::new();
    while !seen.ends_with("\r\n\r\n") {
        use std::io::BufRead;
        let mut line = String::new();
        assert!(events.read_line(&mut line).unwrap() > 0, "{seen}");
        seen.push_str(&line);
    }
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(seen.contains("text/event-stream"), "{seen}");
    // The same events over a WebSocket.
    let ws_url = format!(
        "{}/events/ws?token={token}",
        api.replace("http://", "ws://")
    );
    let (mut socket, answer) = tungstenite::connect(&ws_url).expect("the WebSocket opens");
    assert_eq!(answer.status(), 101);
    let (code, body) = http(
        "POST",
        &format!("{api}/governance/proposals"),
        Some(&token),
        Some(
            r#"{"title":"Plant apples","template":"simple-majority","action":{"type":"decision"}}"#,
        ),
    );
    assert_eq!(code, 201, "{body}");
    let made: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = made["event_id"].as_str().unwrap().to_owned();
    let message = loop {
        match socket.read().expect("a message") {
            tungstenite::Message::Text(text) => break text.to_string(),
            _ => continue,
        }
    };
    let message: serde_json::Value = serde_json::from_str(&message).unwrap();
    assert_eq!(message["type"], "gov.propose", "{message}");
    assert_eq!(message["id"], id.as_str(), "{message}");
    // Without a token, no stream.
    assert!(
        tungstenite::connect(format!("{}/events/ws", api.replace("http://", "ws://"))).is_err()
    );
    let mut streamed = String::new();
    while !streamed.contains(&id) {
        use std::io::BufRead;
        let mut line = String::new();
        assert!(
            events.read_line(&mut line).unwrap() > 0,
            "the stream ended: {streamed}"
        );
        streamed.push_str(&line);
    }
    assert!(streamed.contains("event: gov.propose"), "{streamed}");
    let (code, body) = http(
        "GET",
        &format!("{api}/governance/proposals/{id}"),
        Some(&token),
        None,
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("Plant apples"), "{body}");
    let (code, body) = http(
        "GET",
        &format!("{api}/governance/proposals"),
        Some(&token),
        None,
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("Plant apples"), "{body}");
    // A challenge answered with a bad signature gets no token.
    let (code, body) = http(
        "POST",
        &format!("{api}/auth/challenge"),
        None,
        Some(&format!(r#"{{"did":"{did}"}}"#)),
    );
    assert_eq!(code, 200, "{body}");
    let challenge: serde_json::Value = serde_json::from_str(&body).unwrap();
    let answer = format!(
        r#"{{"did":"{did}","challenge":{},"signature":"3yZe7d"}}"#,
        challenge["challenge"]
    );
    let (code, body) = http("POST", &format!("{api}/auth/verify"), None, Some(&answer));
    assert_eq!(code, 401, "{body}");
    assert!(body.contains(r#""code":"bad_challenge""#), "{body}");

    let status = h.icnctl(&dir, &["status", "--json"]).json();
    assert_eq!(status["running"], true);
    assert_eq!(status["coop"]["name"], "Orchard");
    assert!(status["uptime_seconds"].is_u64());

    let paper = h.icnctl(&dir, &["id", "paper-key", "--json"]).json();
    assert!(
        paper["paper_key"]
            .as_str()
            .unwrap()
            .starts_with("icn-paper-")
    );
    let revoke = h.icnctl(
        &dir,
        &["id", "revoke", paper["public_key"].as_str().unwrap()],
    );
    assert_eq!(revoke.code, 0, "{revoke:?}");
    let twice = h.icnctl(
        &dir,
        &["id", "revoke", paper["public_key"].as_str().unwrap()],
    );
    assert_eq!(twice.code, 2);
    assert!(twice.stderr.contains("key is not authorised"), "{twice:?}");

    let twin = h.icnd_output(&["--data-dir", dir.to_str().unwrap()]);
    assert_eq!(twin.code, 2);
    assert!(
        twin.stderr.contains("in use by another ICN process"),
        "{twin:?}"
    );

    daemon.signal("TERM");
    assert_eq!(daemon.wait(), Some(0));
    assert!(!dir.join("icnd.sock").exists());
    // Genesis, the paper key, its revocation, the proposal.
    assert_eq!(h.icnctl(&dir, &["status", "--json"]).json()["events"], 4);
}

/// Rotation works with the daemon stopped and running, and after each the
/// node still signs (a paper key is added) and restarts with the new key.
#[test]
fn the_device_key_rotates_with_and_without_the_daemon() {
    let h = harness();
    let dir = h.data_dir("emil");
    assert_eq!(h.icnctl(&dir, &["id", "init"]).code, 0);
    assert_eq!(h.icnctl(&dir, &["coop", "init", "Forge", "--yes"]).code, 0);
    let device_key =
        |h: &Harness| h.icnctl(&dir, &["id", "show", "--json"]).json()["device_key"].clone();
    let first = device_key(&h);

    let local = h.icnctl(&dir, &["id", "rotate", "--label", "laptop 2"]);
    assert_eq!(local.code, 0, "{local:?}");
    assert!(local.stdout.contains("Rotated"), "{local:?}");
    let second = device_key(&h);
    assert_ne!(first, second);
    assert_eq!(h.icnctl(&dir, &["id", "paper-key"]).code, 0);

    let daemon = h.spawn_icnd(&dir, &[]);
    let live = h.icnctl(&dir, &["id", "rotate", "--json"]);
    assert_eq!(live.code, 0, "{live:?}");
    let third = device_key(&h);
    assert_ne!(second, third);
    assert_eq!(h.icnctl(&dir, &["id", "paper-key"]).code, 0);
    daemon.signal("TERM");
    assert_eq!(daemon.wait(), Some(0));

    // Restart: the keystore holds the new key only, and the node accepts it.
    let _daemon = h.spawn_icnd(&dir, &[]);
    assert_eq!(h.icnctl(&dir, &["id", "paper-key"]).code, 0);
    let status = h.icnctl(&dir, &["status", "--json"]).json();
    // Genesis, two rotations, three paper keys.
    assert_eq!(status["events"], 6);
}

/// The treasurer's tour: pay in hours, read balances and history, with and
/// without the daemon; bad amounts and bad payees change nothing.
#[test]
fn members_pay_in_hours_and_read_balances_and_history() {
    let h = harness();
    let ana = h.data_dir("ana");
    let ben = h.data_dir("ben");
    assert_eq!(h.icnctl(&ana, &["id", "init"]).code, 0);
    let ben_did = h.icnctl(&ben, &["id", "init", "--json"]).json()["did"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        h.icnctl(
            &ana,
            &["coop", "init", "Bakery", "--yes", "--founder", &ben_did]
        )
        .code,
        0
    );

    let paid = h.icnctl(
        &ana,
        &["ledger", "pay", &ben_did, "3h", "--memo", "website"],
    );
    assert_eq!(paid.code, 0, "{paid:?}");
    assert!(paid.stdout.contains("Paid 3h to "), "{paid:?}");
    let mine = h.icnctl(&ana, &["ledger", "balance", "--json"]).json();
    assert_eq!(mine["accounts"][0]["balance"], -180);
    assert_eq!(mine["accounts"][0]["display"], "-3:00");
    let text = h.icnctl(&ana, &["ledger", "balance", &ben_did]);
    assert!(text.stdout.contains("3:00 hours"), "{text:?}");

    let daemon = h.spawn_icnd(&ana, &[]);
    assert_eq!(
        h.icnctl(&ana, &["ledger", "pay", &ben_did, "1h30m"]).code,
        0
    );
    let history = h.icnctl(&ana, &["ledger", "history", "--json"]).json();
    let entries = history["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["amount"], -180);
    assert_eq!(entries[0]["memo"], "website");
    assert_eq!(entries[1]["display"], "-1:30");
    assert_eq!(entries[1]["counterparty"], ben_did.as_str());

    let refused = [
        (
            vec!["ledger", "pay", &ben_did, "3x"],
            "not a number of units",
        ),
        (vec!["ledger", "pay", &ben_did, "0h"], "is zero"),
        // A bare number once moved a minute where the member meant an hour.
        (vec!["ledger", "pay", &ben_did, "1"], "write 1h for hours"),
        (vec!["ledger", "pay", &ben_did, "-3h"], "is negative"),
        (vec!["ledger", "pay", &ben_did, "36h"], "below the floor"),
        (
            vec!["ledger", "pay", &ben_did, "1h", "--currency", "euros"],
            "no currency `euros`",
        ),
        (vec!["ledger", "pay", "did:icn:nope", "1h"], "did:icn"),
    ];
    // A DID with its last character missing is not taken for another.
    let typo = &ben_did[..ben_did.len() - 1];
    let mistyped = h.icnctl(&ana, &["ledger", "pay", typo, "1h"]);
    assert_eq!(mistyped.code, 2, "{mistyped:?}");
    for (args, reason) in &refused {
        let run = h.icnctl(&ana, args);
        assert_eq!(run.code, 2, "{args:?} {run:?}");
        assert!(run.stderr.contains(reason), "{args:?}: {}", run.stderr);
    }
    // The refusal over the floor says what to do instead.
    let over = h.icnctl(&ana, &["ledger", "pay", &ben_did, "36h"]);
    assert!(over.stderr.contains("hint: pay less"), "{over:?}");
    let own = h.icnctl(&ana, &["id", "show"]).stdout.trim().to_owned();
    let to_self = h.icnctl(&ana, &["ledger", "pay", &own, "1h"]);
    assert!(
        to_self.stderr.contains("cannot pay themselves"),
        "{to_self:?}"
    );
    let still = h.icnctl(&ana, &["ledger", "balance", "--json"]).json();
    assert_eq!(
        still["accounts"][0]["balance"], -270,
        "a refused payment moved hours"
    );
    daemon.signal("TERM");
    assert_eq!(daemon.wait(), Some(0));
}

#[test]
fn config_check_prints_the_merged_configuration() {
    let h = harness();
    let file = h.root.path().join("icn.toml");
    std::fs::write(
        &file,
        "[gateway]\nenable = true\nbind = \"127.0.0.1:9000\"\n",
    )
    .unwrap();
    let run = h.icnd_output(&[
        "config",
        "check",
        "--config",
        file.to_str().unwrap(),
        "--data-dir",
        "/srv/icn",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("data_dir = \"/srv/icn\""),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("bind = \"127.0.0.1:9000\""));
    // An ICN_* variable beats the file, and its flag beats the variable.
    let config = ["config", "check", "--config", file.to_str().unwrap()];
    let env = [("ICN_GATEWAY_BIND", "127.0.0.1:9100")];
    let run = h.icnd_output_env(&config, &env);
    assert!(run.stdout.contains("bind = \"127.0.0.1:9100\""), "{run:?}");
    let flagged = [&config[..], &["--gateway-bind", "127.0.0.1:9200"]].concat();
    let run = h.icnd_output_env(&flagged, &env);
    assert!(run.stdout.contains("bind = \"127.0.0.1:9200\""), "{run:?}");
    // A bad value in a variable is refused, naming the variable.
    let run = h.icnd_output_env(&config, &[("ICN_GATEWAY_BIND", "nonsense")]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("ICN_GATEWAY_BIND"), "{run:?}");
    let bad = h.icnd_output(&["config", "check", "--config", "/no/such/file.toml"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("cannot read config file"), "{bad:?}");
}

/// Kill -9 while events are being written: every acknowledged event survives
/// and the stored views agree with the log.
#[test]
fn sigkill_while_writing_loses_no_acknowledged_event() {
    let h = harness();
    let dir = h.data_dir("dana");
    assert_eq!(h.icnctl(&dir, &["id", "init"]).code, 0);
    assert_eq!(h.icnctl(&dir, &["coop", "init", "Dairy", "--yes"]).code, 0);
    let daemon = h.spawn_icnd(&dir, &[]);

    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let writer = {
        let acknowledged = acknowledged.clone();
        let socket = DataDir::new(&dir).root().join(icn_api::ADMIN_SOCKET_FILE);
        std::thread::spawn(move || {
            // Add a paper key, then revoke it, again and again, until the daemon dies.
            for _ in 0..200 {
                let Ok(added) =
                    admin_client::request(&socket, "POST", "/admin/v1/identity/paper-key", None)
                else {
                    return;
                };
                if added.status != 201 {
                    return;
                }
                let key: icn_api::PaperKey = serde_json::from_slice(&added.body).unwrap();
                acknowledged.lock().unwrap().push(key.event_id);
                let body = serde_json::to_vec(&icn_api::KeyRevoke {
                    key: key.public_key,
                })
                .unwrap();
                let Ok(revoked) = admin_client::request(
                    &socket,
                    "POST",
                    "/admin/v1/identity/revoke",
                    Some(&body),
                ) else {
                    return;
                };
                if revoked.status != 200 {
                    return;
                }
                let ack: icn_api::EventAck = serde_json::from_slice(&revoked.body).unwrap();
                acknowledged.lock().unwrap().push(ack.event_id);
            }
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while acknowledged.lock().unwrap().len() < 15 && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    daemon.signal("KILL");
    assert_eq!(daemon.wait(), None);
    writer.join().unwrap();
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 15,
        "only {} writes before the deadline",
        acknowledged.len()
    );

    // Check the store as the crash left it, before any repair on start-up.
    let store = icn_store::Store::open(&dir).unwrap();
    let replayed = replay_store(&store, &icn_node::modules(), Signatures::All)
        .unwrap()
        .expect("a co-op");
    assert!(
        replayed.views_agree,
        "stored views disagree with the log after SIGKILL"
    );
    for id in &acknowledged {
        let id: icn_kernel::EventId = id.parse().unwrap();
        assert!(
            replayed.log.is_counted(&id),
            "acknowledged event {id} was lost"
        );
    }
    drop(replayed);
    drop(store);
    // `icnctl verify` checks every signature of what the crash left.
    let verified = h.icnctl(&dir, &["--json", "verify"]);
    assert_eq!(verified.code, 0, "{verified:?}");
    let verified = verified.json();
    assert!(
        verified["signatures_verified"].as_u64().unwrap() > acknowledged.len() as u64,
        "{verified}"
    );
    assert_eq!(verified["views_agree"], true, "{verified}");

    // And the daemon starts again on the same directory.
    let restarted = h.spawn_icnd(&dir, &[]);
    let status = h.icnctl(&dir, &["status", "--json"]).json();
    assert!(status["events"].as_u64().unwrap() > acknowledged.len() as u64);
    // Verify reads every event with icnd stopped, and says so.
    let busy = h.icnctl(&dir, &["verify"]);
    assert_eq!(busy.code, 2, "{busy:?}");
    assert!(busy.stderr.contains("stop it first"), "{busy:?}");
    drop(restarted);
}

#[test]
fn requests_disputes_statements_and_exports_from_the_command_line() {
    let h = harness();
    let ana = h.data_dir("ana");
    assert_eq!(h.icnctl(&ana, &["id", "init"]).code, 0);
    let did = |name: &str| {
        h.icnctl(&h.data_dir(name), &["id", "init", "--json"])
            .json()["did"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (ben, cleo) = (did("ben"), did("cleo"));
    let founded = h.icnctl(
        &ana,
        &[
            "coop",
            "init",
            "Bakery",
            "--yes",
            "--founder",
            &ben,
            "--founder",
            &cleo,
            "--set",
            "ledger.auto_accept_days=3",
        ],
    );
    assert_eq!(founded.code, 0, "{founded:?}");
    let bad_param = h.icnctl(
        &h.data_dir("cleo"),
        &["coop", "init", "Odd", "--yes", "--set", "ledger.flor=3"],
    );
    assert!(
        bad_param.stderr.contains("unknown parameter ledger.flor"),
        "{bad_param:?}"
    );

    let daemon = h.spawn_icnd(&ana, &[]);
    let ok = |args: &[&str]| {
        let run = h.icnctl(&ana, args);
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
        run
    };
    let refused = |args: &[&str], words: &str| {
        let run = h.icnctl(&ana, args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.stderr.contains(words), "{args:?}: {}", run.stderr);
    };

    // Ana asks Ben for 2 h, then withdraws it by a short id.
    let asked = ok(&[
        "ledger", "request", "ask", &ben, "2h", "--memo", "bread", "--json",
    ])
    .json();
    let request = asked["event_id"].as_str().unwrap().to_owned();
    let list = ok(&["ledger", "request", "list", "--json"]).json();
    assert_eq!(list["requests"][0]["status"], "pending");
    assert_eq!(list["requests"][0]["display"], "2:00");
    ok(&["ledger", "request", "withdraw", &request[..10]]);
    let list = ok(&["ledger", "request", "list", "--json"]).json();
    assert_eq!(list["requests"][0]["status"], "withdrawn");
    refused(
        &["ledger", "request", "accept", &request[..10]],
        "you can withdraw it, not accept it",
    );
    refused(
        &["ledger", "request", "accept", "abc"],
        "not a payment request id",
    );

    // Ana pays Ben, and disputes it with Cleo as mediator.
    let paid = ok(&["ledger", "pay", &ben, "3h", "--memo", "website", "--json"]).json();
    let entry = paid["event_id"].as_str().unwrap().to_owned();
    ok(&["ledger", "pay", &cleo, "1h", "--memo", "=cmd|' /C calc'!A0"]);
    refused(
        &[
            "ledger",
            "dispute",
            "open",
            &entry[..12],
            "--reason",
            "not done",
            "--mediator",
            &ben,
        ],
        "cannot mediate",
    );
    refused(
        &[
            "ledger",
            "dispute",
            "open",
            "00000000",
            "--reason",
            "x",
            "--mediator",
            &cleo,
        ],
        "no payment 00000000",
    );
    let opened = ok(&[
        "ledger",
        "dispute",
        "open",
        &entry[..12],
        "--reason",
        "not done",
        "--mediator",
        &cleo,
        "--json",
    ])
    .json();
    let dispute = opened["event_id"].as_str().unwrap().to_owned();
    ok(&[
        "ledger",
        "dispute",
        "evidence",
        &dispute[..12],
        "the site is still down",
    ]);
    refused(
        &["ledger", "dispute", "resolve", &dispute[..12], "reversed"],
        "the mediator",
    );
    let disputes = ok(&["ledger", "dispute", "list", "--json"]).json();
    assert_eq!(disputes["disputes"][0]["status"], "open");
    assert_eq!(
        disputes["disputes"][0]["evidence"][0]["text"],
        "the site is still down"
    );

    // Filters, a statement, exports and totals.
    let with_ben = ok(&["ledger", "history", "--counterparty", &ben, "--json"]).json();
    assert_eq!(with_ben["entries"].as_array().unwrap().len(), 1);
    let future = ok(&["ledger", "history", "--from", "2099-01-01", "--json"]).json();
    assert!(future["entries"].as_array().unwrap().is_empty());
    refused(
        &["ledger", "history", "--from", "2026-13-01"],
        "not like 2026-11-22",
    );
    let statement = ok(&["ledger", "statement", "--json"]).json();
    assert_eq!(statement["accounts"][0]["paid"], 240);
    assert_eq!(statement["accounts"][0]["closing"], -240);
    assert_eq!(statement["entries"].as_array().unwrap().len(), 2);
    let csv = ok(&["ledger", "export", "--csv"]).stdout;
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("account,time_utc,id,kind"), "{csv}");
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(
        lines
            .iter()
            .any(|line| line.contains("website") && line.contains(",-180,"))
    );
    // A memo a spreadsheet would run as a formula is defused.
    assert!(csv.contains("\"'=cmd|' /C calc'!A0\""), "{csv}");
    let everyone = ok(&["ledger", "export", "--all", "--json"]).json();
    assert_eq!(everyone.as_array().unwrap().len(), 4);
    let totals = ok(&["ledger", "totals", "--json"]).json();
    assert_eq!(totals["currencies"][0]["transfers"], 2);
    assert_eq!(totals["currencies"][0]["volume"], 240);

    daemon.signal("TERM");
    assert_eq!(daemon.wait(), Some(0));
    // Without the daemon, the same reads work on the data directory.
    let statement_offline = ok(&["ledger", "statement", "--json"]).json();
    assert_eq!(statement_offline["accounts"][0]["closing"], -240);
}

/// Polls until `done` holds; panics with `what` after a generous deadline
/// (a liveness bound for a broken build, not a performance threshold).
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn did_in(h: &Harness, dir: &std::path::Path) -> String {
    h.icnctl(dir, &["--json", "id", "show"]).json()["did"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn balance_of(h: &Harness, dir: &std::path::Path, did: &str) -> String {
    let run = h.icnctl(dir, &["--json", "ledger", "balance", did]);
    run.stdout
}

/// Founders' daemons (`N` of them, named a, b, c…); the others joined from
/// a's ticket.
struct Founders<const N: usize> {
    dirs: [std::path::PathBuf; N],
    dids: [String; N],
    daemons: [icn_testkit::cli::Daemon; N],
    ticket: String,
}

/// Three founders on loopback.
type Trio = Founders<3>;

impl<const N: usize> Founders<N> {
    /// On loopback; the hub (a) gets `hub_args`.
    fn start(h: &Harness, hub_args: &[&str]) -> Founders<N> {
        Founders::start_with(h, |i, dir| {
            h.spawn_icnd(dir, if i == 0 { hub_args } else { &[] })
        })
    }

    /// `spawn(i, dir)` starts node i (0 is the hub that founds the co-op).
    fn start_with(
        h: &Harness,
        spawn: impl Fn(usize, &std::path::Path) -> icn_testkit::cli::Daemon,
    ) -> Founders<N> {
        let dirs: [std::path::PathBuf; N] =
            std::array::from_fn(|i| h.data_dir(&((b'a' + i as u8) as char).to_string()));
        for dir in &dirs {
            assert_eq!(h.icnctl(dir, &["id", "init"]).code, 0);
        }
        let dids: [String; N] = std::array::from_fn(|i| did_in(h, &dirs[i]));
        let mut init = vec!["coop", "init", "Trio", "--yes"];
        for did in &dids[1..] {
            init.extend(["--founder", did.as_str()]);
        }
        let init = h.icnctl(&dirs[0], &init);
        assert_eq!(init.code, 0, "{init:?}");
        let daemons: [icn_testkit::cli::Daemon; N] = std::array::from_fn(|i| spawn(i, &dirs[i]));
        let ticket = h.icnctl(&dirs[0], &["--json", "net", "ticket"]).json()["ticket"]
            .as_str()
            .unwrap()
            .to_owned();
        for dir in &dirs[1..] {
            let joined = h.icnctl(dir, &["coop", "join", &ticket]);
            assert_eq!(joined.code, 0, "{joined:?}");
        }
        Founders {
            dirs,
            dids,
            daemons,
            ticket,
        }
    }
}

/// A member gives her phone its own key with a one-time code, and later
/// signs from a spare laptop with her paper key. One device signs at a
/// time: the one that signed last; another takes over after syncing. The
/// paper key is replaced by the spare laptop's own key as soon as it signs.
/// No fork, and every payment counts everywhere.
#[test]
fn a_member_adds_a_device_and_signs_with_a_paper_key_on_another() {
    let h = harness();
    let Trio {
        dirs: [ada, ben, cy],
        dids: [did_ada, did_ben, _],
        daemons: _daemons,
        ticket,
    } = Trio::start(&h, &[]);
    let added = h.icnctl(&ada, &["--json", "id", "add-device", "Ada's phone"]);
    assert_eq!(added.code, 0, "{added:?}");
    let code = added.json()["paper_key"].as_str().unwrap().to_owned();
    let phone = h.data_dir("phone");
    let linked = h.icnctl_input(
        &phone,
        &["id", "link", &ticket, "--member", &did_ada],
        &format!("{code}\n"),
    );
    assert_eq!(linked.code, 0, "{linked:?}");
    assert!(linked.stdout.contains("Start icnd here"), "{linked:?}");
    let _phone_node = h.spawn_icnd(&phone, &[]);
    eventually("the phone signs for Ada", || {
        h.icnctl(&phone, &["ledger", "pay", &did_ben, "1h"]).code == 0
    });
    eventually("Ada's laptop hears of it and only follows", || {
        let run = h.icnctl(&ada, &["ledger", "pay", &did_ben, "1h"]);
        run.code != 0 && run.stderr.contains("another of your devices (Ada's phone)")
    });
    let doctor = h.icnctl(&ada, &["doctor"]);
    assert!(doctor.stdout.contains("icnctl id take-over"), "{doctor:?}");

    // The laptop takes over; the phone then follows.
    let took = h.icnctl(&ada, &["id", "take-over"]);
    assert_eq!(took.code, 0, "{took:?}");
    eventually("the laptop signs again", || {
        h.icnctl(&ada, &["ledger", "pay", &did_ben, "1h"]).code == 0
    });
    eventually("the phone only follows", || {
        h.icnctl(&phone, &["ledger", "pay", &did_ben, "1h"])
            .stderr
            .contains("another of your devices")
    });

    // A paper key on a spare laptop.
    let paper = h.icnctl(&ada, &["--json", "id", "paper-key"]).json();
    let words = paper["paper_key"].as_str().unwrap().to_owned();
    let spare = h.data_dir("spare");
    let linked = h.icnctl_input(
        &spare,
        &["id", "link", &ticket, "--member", &did_ada],
        &format!("{words}\n"),
    );
    assert_eq!(linked.code, 0, "{linked:?}");
    let _spare_node = h.spawn_icnd(&spare, &[]);
    eventually(
        "the spare laptop signs with its own key, not the paper one",
        || h.icnctl(&spare, &["--json", "id", "show"]).json()["device_label"] == "device",
    );
    assert_eq!(h.icnctl(&spare, &["ledger", "pay", &did_ben, "1h"]).code, 0);
    // The rotation from the paper key handed over to the spare laptop's
    // own key: the laptop that signed before only follows.
    eventually("Ada's laptop follows the spare laptop", || {
        h.icnctl(&ada, &["ledger", "pay", &did_ben, "1h"])
            .stderr
            .contains("another of your devices (device)")
    });
    // The paper key was used up: it no longer signs for Ada, so revoking
    // it again is refused.
    let revoked = h.icnctl(
        &spare,
        &["id", "revoke", paper["public_key"].as_str().unwrap()],
    );
    assert_ne!(revoked.code, 0, "{revoked:?}");
    assert!(revoked.stderr.contains("not authorised"), "{revoked:?}");

    for (dir, name) in [
        (&ada, "Ada's laptop"),
        (&ben, "Ben"),
        (&cy, "Cy"),
        (&phone, "the phone"),
        (&spare, "the spare laptop"),
    ] {
        eventually(&format!("{name} counts the three payments"), || {
            balance_of(&h, dir, &did_ben).contains("\"balance\": 180")
        });
        assert_eq!(
            h.icnctl(dir, &["status", "--json"]).json()["equivocations"],
            0,
            "{name}"
        );
    }
}

/// Three members' daemons on loopback: two join from the first one's
/// ticket, payments reach everyone, a node killed with SIGKILL while
/// payments flow catches up after a restart, and a stranger's node gets
/// the genesis but is refused replication.
#[test]
fn three_daemons_replicate_and_a_killed_one_catches_up() {
    let h = harness();
    let stranger = h.data_dir("stranger");
    assert_eq!(h.icnctl(&stranger, &["id", "init"]).code, 0);
    let Trio {
        dirs: [a, b, c],
        dids: [_, did_b, did_c],
        daemons: [node_a, node_b, mut node_c],
        ticket,
    } = Trio::start(&h, &[]);
    assert_eq!(h.icnctl(&a, &["ledger", "pay", &did_b, "3h"]).code, 0);
    eventually("b sees a's payment", || {
        balance_of(&h, &b, &did_b).contains("\"balance\": 180")
    });
    // b's payment reaches c and a (b and c learn each other's address from a).
    assert_eq!(h.icnctl(&b, &["ledger", "pay", &did_c, "1h"]).code, 0);
    eventually("c and a see b's payment", || {
        balance_of(&h, &c, &did_c).contains("\"balance\": 60")
            && balance_of(&h, &a, &did_c).contains("\"balance\": 60")
    });
    let peers = h.icnctl(&a, &["--json", "peers"]).json();
    assert_eq!(peers["peers"].as_array().unwrap().len(), 2, "{peers}");
    assert!(
        peers["peers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|peer| peer["path"] == "direct"),
        "{peers}"
    );

    // c is killed while a pays it; a keeps paying; c restarts and catches up.
    for round in 0..10 {
        assert_eq!(h.icnctl(&a, &["ledger", "pay", &did_c, "10m"]).code, 0);
        if round == 4 {
            node_c.signal("KILL");
            node_c.wait();
            node_c = h.spawn_icnd(&c, &[]);
        }
    }
    let expected = 60 + 10 * 10;
    eventually("c catches up after SIGKILL", || {
        balance_of(&h, &c, &did_c).contains(&format!("\"balance\": {expected}"))
    });
    assert_eq!(
        balance_of(&h, &b, &did_c),
        balance_of(&h, &c, &did_c),
        "b and c agree"
    );

    // A stranger's node may fetch the genesis, but no member syncs with it.
    let node_s = h.spawn_icnd(&stranger, &[]);
    let joined = h.icnctl(&stranger, &["coop", "join", &ticket]);
    assert_eq!(joined.code, 0, "{joined:?}");
    assert!(joined.stdout.contains("not a member"), "{joined:?}");
    eventually("a refuses the stranger's connection", || {
        h.icnctl(&a, &["--json", "peers"]).json()["metrics"]["connections_refused"]
            .as_u64()
            .unwrap()
            >= 1
    });
    let status = h.icnctl(&stranger, &["--json", "status"]).json();
    assert_eq!(status["events"], 1, "only the genesis: {status}");
    drop((node_a, node_b, node_c, node_s));
}

/// The peers a member's node is connected to, by DID (one entry per session).
fn connected_dids(h: &Harness, dir: &std::path::Path) -> Vec<String> {
    h.icnctl(dir, &["--json", "peers"]).json()["peers"]
        .as_array()
        .map(|peers| {
            peers
                .iter()
                .filter_map(|peer| peer["did"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A founder's node started with `icnd --peer TICKET` (no `coop join`)
/// fetches the co-op from that peer and replicates; it does not suggest
/// founding a second co-op.
#[test]
fn a_founders_node_joins_from_its_peer_ticket() {
    let h = harness();
    let [ana, ben] = ["ana", "ben"].map(|name| h.data_dir(name));
    for dir in [&ana, &ben] {
        assert_eq!(h.icnctl(dir, &["id", "init"]).code, 0);
    }
    let did_ben = did_in(&h, &ben);
    let init = h.icnctl(
        &ana,
        &["coop", "init", "Pair", "--yes", "--founder", &did_ben],
    );
    assert_eq!(init.code, 0, "{init:?}");
    let node_ana = h.spawn_icnd(&ana, &[]);
    let ticket = h.icnctl(&ana, &["--json", "net", "ticket"]).json()["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    let node_ben = h.spawn_icnd_in(None, &[("ICN_LOG", "info")], &ben, &["--peer", &ticket]);
    eventually("ben's node has the co-op", || {
        h.icnctl(&ben, &["--json", "status"]).json()["coop"]["name"] == "Pair"
    });
    assert_eq!(h.icnctl(&ana, &["ledger", "pay", &did_ben, "1h"]).code, 0);
    eventually("ben has ana's payment", || {
        balance_of(&h, &ben, &did_ben).contains("\"balance\": 60")
    });
    let log = std::fs::read_to_string(ben.with_extension("log")).unwrap();
    assert!(log.contains("fetching it from the peer you named"), "{log}");
    assert!(log.contains("Joined the co-op as a founder"), "{log}");
    assert!(!log.contains("coop init"), "{log}");
    drop((node_ana, node_ben));
}

/// An abusive client that opens hundreds of idle connections from one
/// address cannot take the node down: connections past the per-address cap
/// are closed at once, another address is still served, and the admin socket
/// answers throughout.
#[test]
fn idle_connections_from_one_address_cannot_starve_the_node() {
    let h = harness();
    let dir = h.data_dir("capped");
    assert_eq!(h.icnctl(&dir, &["id", "init"]).code, 0);
    assert_eq!(h.icnctl(&dir, &["coop", "init", "Capped", "--yes"]).code, 0);
    let daemon = h.spawn_icnd(&dir, &["--gateway-bind", "127.0.0.1:0"]);
    let api = daemon.api.clone().expect("the gateway address is printed");
    let address: std::net::SocketAddr = api
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // 600 connections from 127.0.0.1 that never send a byte.
    let idle: Vec<tokio::net::TcpStream> = runtime.block_on(async {
        let mut idle = Vec::new();
        for _ in 0..600 {
            if let Ok(stream) = tokio::net::TcpStream::connect(address).await {
                idle.push(stream);
            }
        }
        idle
    });
    assert!(idle.len() >= 500, "only {} connected", idle.len());
    // The admin socket still answers.
    let status = h.icnctl(&dir, &["--json", "status"]);
    assert_eq!(status.code, 0, "{status:?}");
    // Another address is still served.
    let (code, body) = runtime.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let mut stream = socket.connect(address).await.unwrap();
        let request =
            format!("GET /api/v1/health HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            stream.read_to_string(&mut response),
        )
        .await;
        let code: u16 = response
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        (code, response)
    });
    assert_eq!(code, 200, "{body}");
    // 127.0.0.1 is at its cap: one more connection is closed unanswered.
    let (code, _) = http_raw("GET", &format!("{api}/health"), &[], "");
    assert_eq!(code, 0, "a connection past the per-address cap was served");
    // Once they close, 127.0.0.1 is served again.
    drop(idle);
    eventually("127.0.0.1 is served again", || {
        http_get(&format!("{api}/health")).0 == 200
    });
    drop(runtime);
    drop(daemon);
}

/// A mesh, not a star: b and c joined from a's ticket (no relay), learn
/// each other's addresses from a, and connect directly; with a's node
/// stopped they keep paying each other and converge; b restarted (on a new
/// port) redials c by itself; every pair ends with one session.
#[test]
fn members_keep_paying_each_other_when_the_inviters_node_is_down() {
    let h = harness();
    let Trio {
        dirs: [a, b, c],
        dids: [did_a, did_b, did_c],
        daemons: [node_a, node_b, node_c],
        ..
    } = Trio::start(&h, &[]);
    eventually("b and c connect to each other directly", || {
        connected_dids(&h, &b).contains(&did_c) && connected_dids(&h, &c).contains(&did_b)
    });
    // One session per pair, whoever dialled.
    for (dir, others) in [(&a, [&did_b, &did_c]), (&b, [&did_a, &did_c])] {
        eventually("one session per pair", || {
            let dids = connected_dids(&h, dir);
            others
                .iter()
                .all(|other| dids.iter().filter(|did| did == other).count() == 1)
        });
    }
    let status = h.icnctl(&b, &["--json", "status"]).json();
    assert_eq!(
        status["peers"], 2,
        "status counts connected members: {status}"
    );
    // Two members cannot go by one name (members pay each other by name).
    let named = h.icnctl(&b, &["member", "profile", "--name", "Bea"]);
    assert_eq!(named.code, 0, "{named:?}");
    eventually("c knows Bea", || {
        h.icnctl(&c, &["member", "list"]).stdout.contains("Bea")
    });
    let taken = h.icnctl(&c, &["member", "profile", "--name", "bea"]);
    assert_eq!(taken.code, 2, "{taken:?}");
    assert!(taken.stderr.contains("already called \"Bea\""), "{taken:?}");

    // The inviter's node stops; b and c go on.
    node_a.signal("TERM");
    assert_eq!(node_a.wait(), Some(0));
    assert_eq!(h.icnctl(&b, &["ledger", "pay", &did_c, "2h"]).code, 0);
    eventually("c has b's payment with a's node down", || {
        balance_of(&h, &c, &did_c).contains("\"balance\": 120")
    });

    // b restarts (another port): it redials c from the address book it
    // kept, with a still down.
    node_b.signal("TERM");
    assert_eq!(node_b.wait(), Some(0));
    let node_b = h.spawn_icnd(&b, &[]);
    eventually("restarted b reaches c without the inviter", || {
        connected_dids(&h, &b).contains(&did_c)
    });
    assert_eq!(h.icnctl(&c, &["ledger", "pay", &did_b, "30m"]).code, 0);
    eventually("b has c's payment", || {
        balance_of(&h, &b, &did_b).contains("\"balance\": -90")
    });

    // c rotates its device key while icnd runs: its networking starts again
    // with the new key. b, restarted so that every connection is new, takes
    // c's connection (the old key is revoked), and c's payment arrives.
    let rotated = h.icnctl(&c, &["id", "rotate"]);
    assert_eq!(rotated.code, 0, "{rotated:?}");
    let events =
        |dir: &std::path::Path| h.icnctl(dir, &["--json", "status"]).json()["events"].clone();
    eventually("b has c's rotation", || events(&b) == events(&c));
    node_b.signal("TERM");
    assert_eq!(node_b.wait(), Some(0));
    let node_b = h.spawn_icnd(&b, &[]);
    assert_eq!(h.icnctl(&c, &["ledger", "pay", &did_b, "30m"]).code, 0);
    eventually("b has c's payment signed after the rotation", || {
        balance_of(&h, &b, &did_b).contains("\"balance\": -60")
    });
    drop((node_b, node_c));
}

/// The always-on node (with the co-op relay) restarts while two laptops
/// are behind home routers: both sides of each pair dial at once, and each
/// pair still ends with one session (the duplicate is closed on both
/// sides), which holds.
#[test]
fn after_the_hub_restarts_each_pair_keeps_one_session() {
    let Some(internet) = Internet::up() else {
        return;
    };
    let h = harness();
    let Trio {
        dirs,
        dids,
        daemons: [hub, _b, _c],
        ..
    } = at_home(&h, &internet);
    let sessions = |i: usize| -> Vec<String> {
        let mut peers: Vec<String> = h.icnctl(&dirs[i], &["--json", "peers"]).json()["peers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|peer| peer["did"].as_str().unwrap().to_owned())
            .collect();
        peers.sort();
        peers
    };
    let others = |i: usize| -> Vec<String> {
        let mut others: Vec<String> = (0..3)
            .filter(|j| *j != i)
            .map(|j| dids[j].clone())
            .collect();
        others.sort();
        others
    };
    let one_each = || (0..3).all(|i| sessions(i) == others(i));
    eventually("a full mesh, one session per pair", one_each);
    hub.signal("TERM");
    assert_eq!(hub.wait(), Some(0));
    let _hub = h.spawn_icnd_in(Some(&internet.host("hub")), &[], &dirs[0], &HUB_ARGS);
    eventually(
        "the mesh again after the restart, one session per pair",
        one_each,
    );
    // A while later, measured in the nodes' own progress (not a sleep,
    // which a slow machine would pass without any dialling): once every
    // node's dial loop has run twice more, a duplicate would have appeared.
    let dial_rounds = |i: usize| {
        h.icnctl(&dirs[i], &["--json", "peers"]).json()["metrics"]["dial_rounds"]
            .as_u64()
            .unwrap()
    };
    let rounds: Vec<u64> = (0..3).map(dial_rounds).collect();
    eventually("every node dials twice more", || {
        (0..3).all(|i| dial_rounds(i) >= rounds[i] + 2)
    });
    for i in 0..3 {
        assert_eq!(sessions(i), others(i), "node {i} a while later");
    }
}

/// The hub runs the co-op relay; two members who only have the hub's
/// ticket find each other through it (the ticket names the relay and its
/// key), connect, and keep replicating directly once the hub is gone.
#[test]
fn members_meet_through_the_coop_relay_and_go_direct() {
    let h = harness();
    let Trio {
        dirs: [_, b, c],
        dids: [_, did_b, did_c],
        daemons: [node_a, node_b, node_c],
        ..
    } = Trio::start(&h, &["--relay-enable", "--relay-listen", "127.0.0.1:0"]);
    let connected = |from: &std::path::Path, to: &str| {
        h.icnctl(from, &["--json", "peers"]).json()["peers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|peer| peer["did"] == to)
    };
    eventually("b and c connect through the relay", || {
        connected(&b, &did_c) && connected(&c, &did_b)
    });
    // b's ticket now names the relay too: it is how others reach b.
    let ticket_b = h.icnctl(&b, &["--json", "net", "ticket"]).json();
    assert!(ticket_b["relay"].as_str().is_some(), "{ticket_b}");

    node_a.signal("TERM");
    node_a.wait();
    assert_eq!(h.icnctl(&b, &["ledger", "pay", &did_c, "2h"]).code, 0);
    eventually("c sees b's payment with the hub gone", || {
        balance_of(&h, &c, &did_c).contains("\"balance\": 120")
    });
    let peers = h.icnctl(&c, &["--json", "peers"]).json();
    let b_seen = peers["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|peer| peer["did"] == did_b.as_str())
        .cloned();
    assert_eq!(
        b_seen.map(|peer| peer["path"].clone()),
        Some("direct".into()),
        "{peers}"
    );
    drop((node_b, node_c));
}

/// A small internet in network namespaces that this test builds and
/// removes (`tests/netns/up.sh`): a public hub, and two home routers that
/// masquerade and firewall like consumer ones, with a member behind each.
struct Internet {
    prefix: String,
}

impl Internet {
    /// Builds it, or says why it cannot and returns None (the kernel or
    /// our privileges refuse network namespaces).
    fn up() -> Option<Internet> {
        // Unique per test (they run in parallel) and short (interface names
        // are at most 15 bytes).
        static BUILT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = BUILT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let prefix = format!("i{}{n}", std::process::id() % 1_000_000);
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/netns/up.sh");
        let output = std::process::Command::new("bash")
            .args([script, &prefix])
            .output();
        let internet = Internet { prefix };
        match output {
            Ok(output) if output.status.success() => Some(internet),
            Ok(output) => {
                let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
                // A missing tool (ip, iptables, conntrack) is ours to install
                // (.ci/run does): it fails under CI. Only the kernel's or our
                // privileges' refusal is a reason to skip.
                if stderr.contains("command not found") {
                    external_tool("a tool to build network namespaces", false, &stderr);
                    return None;
                }
                let refused = ["Operation not permitted", "Permission denied"];
                assert!(
                    refused.iter().any(|reason| stderr.contains(reason)),
                    "building the namespaces failed: {stderr}"
                );
                eprintln!("SKIPPED: the kernel refuses network namespaces here: {stderr}");
                None
            }
            Err(error) => {
                external_tool("bash", false, &error.to_string());
                None
            }
        }
    }

    fn host(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// Carries `host` to router `router`'s home network, at `ip`.
    fn move_host(&self, host: &str, router: u8, ip: &str) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/netns/move.sh");
        let status = std::process::Command::new("bash")
            .args([script, &self.prefix, host, &router.to_string(), ip])
            .status()
            .expect("bash runs");
        assert!(status.success(), "moving {host} to r{router}");
    }

    /// Runs a command on one of the hosts or routers; it must succeed.
    fn run(&self, host: &str, args: &[&str]) {
        let status = std::process::Command::new("ip")
            .args(["netns", "exec", &self.host(host)])
            .args(args)
            .status()
            .expect("ip runs");
        assert!(status.success(), "{host}: {args:?}");
    }
}

/// The always-on node's arguments in the namespaced internet: public, and
/// running the co-op's relay.
const HUB_ARGS: [&str; 5] = [
    "--listen",
    "10.0.0.1:7879",
    "--relay-enable",
    "--relay-listen",
    "10.0.0.1:7880",
];

impl Drop for Internet {
    fn drop(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/netns/down.sh");
        let _ = std::process::Command::new("bash")
            .args([script, &self.prefix])
            .status();
    }
}

/// Two members behind home routers (NAT, inbound firewall) and the co-op's
/// always-on node running the relay: the members join by ticket, reach each
/// other through the relay, punch through to a direct path, and replicate.
/// Then one router drops everything for a while; both sides keep paying;
/// removing the rule heals the split and all three nodes agree.
#[test]
fn members_behind_home_routers_go_direct_and_heal_a_split() {
    let Some(internet) = Internet::up() else {
        return;
    };
    let h = harness();
    let Trio {
        dirs: [hub, m1, m2],
        dids: [_, did_1, did_2],
        daemons: _daemons,
        ..
    } = at_home(&h, &internet);
    let ticket = h.icnctl(&hub, &["--json", "net", "ticket"]).json();
    assert_eq!(ticket["relay"], "https://10.0.0.1:7880", "{ticket}");

    // m1 can reach m2 only through the relay at first (m2's router drops
    // what it did not ask for); the direct path is the one punched through
    // m2's router, at its public address.
    let path_to = |from: &std::path::Path, to: &str| paths(&h, from, to).into_iter().next();
    eventually(
        "m1 and m2 connect on a direct path through both NATs",
        || {
            path_to(&m1, &did_2).is_some_and(|(path, address)| {
                path == "direct" && address.starts_with("10.0.0.12:")
            })
        },
    );
    assert_eq!(h.icnctl(&m1, &["ledger", "pay", &did_2, "1h"]).code, 0);
    eventually("m2 sees m1's payment", || {
        balance_of(&h, &m2, &did_2).contains("\"balance\": 60")
    });

    // The split: m1's router drops everything, both ways.
    internet.run("r1", &["iptables", "-I", "FORWARD", "-j", "DROP"]);
    assert_eq!(h.icnctl(&m1, &["ledger", "pay", &did_2, "1h"]).code, 0);
    assert_eq!(h.icnctl(&m2, &["ledger", "pay", &did_1, "3h"]).code, 0);
    eventually("the hub sees m2's payment during the split", || {
        balance_of(&h, &hub, &did_1).contains("\"balance\": 120")
    });
    assert!(
        balance_of(&h, &m1, &did_1).contains("\"balance\": -120"),
        "m1 cannot have heard from m2"
    );
    internet.run("r1", &["iptables", "-D", "FORWARD", "-j", "DROP"]);
    for (dir, name) in [(&hub, "hub"), (&m1, "m1"), (&m2, "m2")] {
        eventually(&format!("{name} has both sides of the split"), || {
            balance_of(&h, dir, &did_1).contains("\"balance\": 60")
                && balance_of(&h, dir, &did_2).contains("\"balance\": -60")
        });
    }
}

/// A member's laptop is lost during a split, after it paid someone on the
/// far side; her backup is restored on her home network, where only one
/// other member (of three) can be reached. The restored node signs nothing
/// there: it has not heard from a majority of members, and the far side
/// holds a payment her backup lacks. Once the split heals it learns that
/// payment and signs after it: no fork, no hour lost.
#[test]
fn a_backup_restored_across_a_split_waits_for_a_majority() {
    let Some(internet) = Internet::up() else {
        return;
    };
    let h = harness();
    // Cy runs the always-on node; Ada's laptop is out (at the hub's side
    // of the network, as if at a café); Ben is at home behind r1, Dee
    // behind r2.
    let hosts = ["hub", "hub", "h1", "h2"];
    let Founders {
        dirs: [cy, ada, ben, dee],
        dids: [did_cy, _, did_ben, did_dee],
        daemons: [_cy_node, ada_node, _ben_node, _dee_node],
        ..
    } = Founders::<4>::start_with(&h, |i, dir| {
        let args: &[&str] = match i {
            0 => &HUB_ARGS,
            1 => &["--listen", "10.0.0.1:7881"],
            _ => &["--listen", "0.0.0.0:7879"],
        };
        h.spawn_icnd_in(Some(&internet.host(hosts[i])), &[], dir, args)
    });
    let did_ada = did_in(&h, &ada);
    assert_eq!(h.icnctl(&ada, &["ledger", "pay", &did_ben, "1h"]).code, 0);
    for (dir, name) in [(&cy, "Cy"), (&ben, "Ben"), (&dee, "Dee")] {
        eventually(&format!("{name} sees Ada's first payment"), || {
            balance_of(&h, dir, &did_ben).contains("\"balance\": 60")
        });
    }
    let file = h.data_dir("ada.icnbackup");
    let backup = h.icnctl(&ada, &["backup", "--to", file.to_str().unwrap()]);
    assert_eq!(backup.code, 0, "{backup:?}");

    // The split: Ben's home router drops everything to and from the
    // internet. Ada pays Cy; Ben cannot hear of it.
    for rule in [["-i", "wan"], ["-o", "wan"]] {
        internet.run(
            "r1",
            &["iptables", "-I", "FORWARD", rule[0], rule[1], "-j", "DROP"],
        );
    }
    assert_eq!(h.icnctl(&ada, &["ledger", "pay", &did_cy, "2h"]).code, 0);
    eventually("Cy and Dee see Ada's payment during the split", || {
        balance_of(&h, &cy, &did_cy).contains("\"balance\": 120")
            && balance_of(&h, &dee, &did_cy).contains("\"balance\": 120")
    });
    // Ada's laptop is lost.
    ada_node.signal("TERM");
    assert_eq!(ada_node.wait(), Some(0));

    // Her backup, restored on a second machine at Ben's home.
    let restored = h.data_dir("ada-restored");
    let run = h.icnctl(&restored, &["restore", file.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{run:?}");
    let ben_ticket = h.icnctl(&ben, &["--json", "net", "ticket"]).json()["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    let _restored_node = h.spawn_icnd_in(
        Some(&internet.host("h1")),
        &[],
        &restored,
        &["--listen", "0.0.0.0:7881", "--peer", &ben_ticket],
    );
    eventually("the restored node has synced with Ben's node", || {
        h.icnctl(&restored, &["--json", "doctor"])
            .stdout
            .contains("(1 so far)")
    });
    let early = h.icnctl(&restored, &["ledger", "pay", &did_dee, "1h"]);
    assert_eq!(early.code, 2, "{early:?}");
    assert!(
        early.stderr.contains("2 members' nodes (1 so far)"),
        "{early:?}"
    );

    // The split heals: the restored node hears from Cy and Dee, learns
    // the payment its backup lacked, and signs after it.
    for rule in [["-i", "wan"], ["-o", "wan"]] {
        internet.run(
            "r1",
            &["iptables", "-D", "FORWARD", rule[0], rule[1], "-j", "DROP"],
        );
    }
    eventually("the restored node signs again", || {
        h.icnctl(&restored, &["ledger", "pay", &did_dee, "1h"]).code == 0
    });
    for (dir, name) in [
        (&cy, "Cy"),
        (&ben, "Ben"),
        (&dee, "Dee"),
        (&restored, "Ada"),
    ] {
        eventually(
            &format!("{name} counts all three of Ada's payments"),
            || balance_of(&h, dir, &did_ada).contains("\"balance\": -240"),
        );
        assert_eq!(
            h.icnctl(dir, &["status", "--json"]).json()["equivocations"],
            0,
            "{name}"
        );
    }
}

/// The hub (public, running the co-op relay) and two members' laptops
/// behind the two home routers.
fn at_home(h: &Harness, internet: &Internet) -> Trio {
    let at_home = ["--listen", "0.0.0.0:7879"];
    let hosts = ["hub", "h1", "h2"];
    Trio::start_with(h, |i, dir| {
        let args: &[&str] = if i == 0 { &HUB_ARGS } else { &at_home };
        h.spawn_icnd_in(Some(&internet.host(hosts[i])), &[], dir, args)
    })
}

/// The (path, address) of each session `from`'s node has with `to`'s.
fn paths(h: &Harness, from: &std::path::Path, to: &str) -> Vec<(String, String)> {
    h.icnctl(from, &["--json", "peers"]).json()["peers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|peer| peer["did"] == to)
        .map(|peer| {
            (
                peer["path"].as_str().unwrap_or("").to_owned(),
                peer["address"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// A member carries her laptop from her home network to another: every
/// pair involving it is connected again (direct or relayed) within
/// seconds, with no stale entry at the old address, and payments flow both
/// ways. The time to heal is printed.
#[test]
fn a_laptop_that_changes_network_reconnects_in_seconds() {
    let Some(internet) = Internet::up() else {
        return;
    };
    let h = harness();
    let Trio {
        dirs: [hub, m1, m2],
        dids: [did_hub, did_1, did_2],
        daemons: _daemons,
        ..
    } = at_home(&h, &internet);
    let path_to = |from: &std::path::Path, to: &str| paths(&h, from, to);
    eventually("m1 and m2 connect directly through both NATs", || {
        path_to(&m1, &did_2)
            .iter()
            .any(|(path, address)| path == "direct" && address.starts_with("10.0.0.12:"))
    });
    // m1 moves from r1's network (public 10.0.0.11) to r2's.
    let moved = std::time::Instant::now();
    internet.move_host("h1", 2, "192.168.2.3");
    let fresh = |from: &std::path::Path, to: &str| {
        let paths = path_to(from, to);
        paths.len() == 1
            && (paths[0].0 == "relayed" || paths[0].0 == "direct")
            && !paths[0].1.starts_with("10.0.0.11:")
            && !paths[0].1.starts_with("192.168.1.")
    };
    eventually(
        "every pair with m1 is connected again at its new place",
        || fresh(&m2, &did_1) && fresh(&m1, &did_2) && fresh(&hub, &did_1) && fresh(&m1, &did_hub),
    );
    eprintln!(
        "a laptop that changed network: reconnected with everyone in {:.1} s",
        moved.elapsed().as_secs_f64()
    );
    assert_eq!(h.icnctl(&m1, &["ledger", "pay", &did_2, "1h"]).code, 0);
    assert_eq!(h.icnctl(&m2, &["ledger", "pay", &did_1, "2h"]).code, 0);
    for (dir, name) in [(&hub, "hub"), (&m1, "m1"), (&m2, "m2")] {
        eventually(&format!("{name} has both payments"), || {
            balance_of(&h, dir, &did_1).contains("\"balance\": 60")
        });
    }
}

/// A co-op runs its relay on two always-on nodes. A laptop behind a hard
/// NAT (a new port for every destination: no hole can be punched) joined
/// with the first one's ticket, and learns the second relay from the
/// members' address exchange. When the first always-on node stops, the
/// laptop stays connected through the second relay and keeps converging.
#[test]
fn with_two_relays_stopping_one_leaves_a_hard_nat_laptop_connected() {
    let Some(internet) = Internet::up() else {
        return;
    };
    // r2 maps every new destination to a random port: symmetric NAT.
    internet.run(
        "r2",
        &[
            "iptables",
            "-t",
            "nat",
            "-I",
            "POSTROUTING",
            "1",
            "-o",
            "wan",
            "-j",
            "MASQUERADE",
            "--random-fully",
        ],
    );
    let h = harness();
    let second_hub = [
        "--listen",
        "10.0.0.1:7881",
        "--relay-enable",
        "--relay-listen",
        "10.0.0.1:7882",
    ];
    let at_home = ["--listen", "0.0.0.0:7879"];
    // Cy and Dee run the always-on nodes (one public machine here, two
    // ports); Ana is at home behind r1, Ben behind the hard NAT r2.
    let hosts = ["hub", "hub", "h1", "h2"];
    let Founders {
        dirs: [cy, _dee, ana, ben],
        dids: [_, _, did_ana, did_ben],
        daemons: [cy_node, _dee_node, _ana_node, _ben_node],
        ..
    } = Founders::<4>::start_with(&h, |i, dir| {
        let args: &[&str] = match i {
            0 => &HUB_ARGS,
            1 => &second_hub,
            _ => &at_home,
        };
        h.spawn_icnd_in(Some(&internet.host(hosts[i])), &[], dir, args)
    });
    let relays_known = |dir: &std::path::Path| -> usize {
        h.icnctl(dir, &["--json", "doctor"]).json()["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|check| check["name"] == "relay")
            .count()
    };
    eventually("Ben's and Ana's nodes know both relays", || {
        relays_known(&ben) == 2 && relays_known(&ana) == 2
    });
    eventually("Ana and Ben are connected", || {
        !paths(&h, &ana, &did_ben).is_empty() && !paths(&h, &ben, &did_ana).is_empty()
    });
    assert_eq!(h.icnctl(&ana, &["ledger", "pay", &did_ben, "1h"]).code, 0);
    eventually("Ben has Ana's payment", || {
        balance_of(&h, &ben, &did_ben).contains("\"balance\": 60")
    });

    // The first always-on node, and its relay, stop.
    cy_node.signal("TERM");
    assert_eq!(cy_node.wait(), Some(0));
    let stopped = std::time::Instant::now();
    assert_eq!(h.icnctl(&ana, &["ledger", "pay", &did_ben, "2h"]).code, 0);
    assert_eq!(h.icnctl(&ben, &["ledger", "pay", &did_ana, "1h"]).code, 0);
    for (dir, name) in [(&ana, "Ana"), (&ben, "Ben")] {
        eventually(
            &format!("{name} has both payments made after the stop"),
            || balance_of(&h, dir, &did_ben).contains("\"balance\": 120"),
        );
    }
    let converged = stopped.elapsed();
    // Ben's session with Ana (two laptops: only a relay joins them) moves
    // to the relay that is still up.
    eventually("Ben and Ana are connected through the second relay", || {
        let live = |from: &std::path::Path, to: &str| {
            let now = paths(&h, from, to);
            now.len() == 1 && (now[0].1 == "via 10.0.0.1:7882" || now[0].0 == "direct")
        };
        live(&ben, &did_ana) && live(&ana, &did_ben)
    });
    eprintln!(
        "with one relay stopped: converged in {:.1} s, Ana and Ben reconnected through the other relay in {:.1} s",
        converged.as_secs_f64(),
        stopped.elapsed().as_secs_f64()
    );
    drop(cy);
}

/// Two members on the same home network, and the co-op's node outside with
/// no relay: each knows only the hub's ticket, yet they find each other by
/// mDNS and connect on the LAN.
#[test]
fn members_on_one_lan_find_each_other_by_mdns() {
    let Some(internet) = Internet::up() else {
        return;
    };
    let h = harness();
    let mdns = [("ICN_MDNS", "true")];
    let at_home = ["--listen", "0.0.0.0:7879"];
    let hub_args = ["--listen", "10.0.0.1:7879"];
    let hosts = ["hub", "h1", "h1b"];
    let Trio {
        dirs: [_, m1, _],
        dids: [_, _, did_3],
        daemons: _daemons,
        ..
    } = Trio::start_with(&h, |i, dir| match i {
        0 => h.spawn_icnd_in(Some(&internet.host(hosts[i])), &[], dir, &hub_args),
        _ => h.spawn_icnd_in(Some(&internet.host(hosts[i])), &mdns, dir, &at_home),
    });
    eventually("m1 and m3 connect on their LAN", || {
        h.icnctl(&m1, &["--json", "peers"]).json()["peers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|peer| {
                peer["did"] == did_3.as_str()
                    && peer["path"] == "direct"
                    && peer["address"]
                        .as_str()
                        .is_some_and(|address| address.starts_with("192.168.1.3:"))
            })
    });
}

/// A newcomer applies with an invitation, two members vouch by name, the
/// nodes admit them by themselves, a member pays them by name, and the
/// co-op votes a budget for them that the closer's node closes as soon as
/// everyone has voted; the payment from the commons reaches every node.
#[test]
fn a_newcomer_is_vouched_in_and_the_coop_votes_them_a_budget() {
    let h = harness();
    let Trio {
        dirs: [a, b, c],
        daemons: _daemons,
        ticket,
        ..
    } = Trio::start(&h, &[]);
    let d = h.data_dir("d");
    assert_eq!(h.icnctl(&d, &["id", "init"]).code, 0);
    let did_d = did_in(&h, &d);
    let _node_d = h.spawn_icnd(&d, &[]);
    let invite = h.icnctl(&a, &["coop", "invite"]);
    assert_eq!(invite.code, 0, "{invite:?}");
    assert!(invite.stdout.contains(&ticket) && invite.stdout.contains("--name"));
    let applied = h.icnctl(
        &d,
        &[
            "coop",
            "join",
            &ticket,
            "--name",
            "Dee",
            "--note",
            "I fix bikes",
        ],
    );
    assert_eq!(applied.code, 0, "{applied:?}");
    assert!(applied.stdout.contains("Applied to join"), "{applied:?}");

    let status_of = |dir: &std::path::Path, did: &str| {
        let list = h.icnctl(dir, &["--json", "member", "list"]).json();
        list["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|member| member["did"] == did)
            .map(|member| member["status"].as_str().unwrap().to_owned())
    };
    eventually("b sees the application", || {
        status_of(&b, &did_d).as_deref() == Some("applicant")
    });
    // Paying an applicant is refused with a reason.
    let early = h.icnctl(&b, &["ledger", "pay", "Dee", "1h"]);
    assert_eq!(early.code, 2, "{early:?}");
    assert!(early.stderr.contains("not a member"), "{early:?}");
    let vouched = h.icnctl(&b, &["member", "vouch", "Dee"]);
    assert_eq!(vouched.code, 0, "{vouched:?}");
    eventually("c sees b's vouch", || {
        let list = h.icnctl(&c, &["--json", "member", "list"]).json();
        list["members"].as_array().unwrap().iter().any(|member| {
            member["did"] == did_d.as_str() && member["vouched_by"].as_array().unwrap().len() == 1
        })
    });
    assert_eq!(h.icnctl(&c, &["member", "vouch", "dee"]).code, 0);
    eventually("the newcomer's own node knows they were admitted", || {
        status_of(&d, &did_d).as_deref() == Some("active")
    });
    eventually("a knows it too", || {
        status_of(&a, &did_d).as_deref() == Some("active")
    });
    let paid = h.icnctl(&b, &["ledger", "pay", "Dee", "2h", "--memo", "welcome"]);
    assert_eq!(paid.code, 0, "{paid:?}");

    let proposed = h.icnctl(
        &b,
        &[
            "--json",
            "governance",
            "propose",
            "--title",
            "Tools for Dee",
            "--template",
            "budget-approval",
            "--budget",
            "3h",
            "--to",
            "Dee",
            "--duration",
            "1h",
        ],
    );
    assert_eq!(proposed.code, 0, "{proposed:?}");
    let id = proposed.json()["event_id"].as_str().unwrap()[..12].to_owned();
    for dir in [&a, &b, &c, &d] {
        eventually("the proposal reaches every node", || {
            h.icnctl(dir, &["--json", "governance", "show", &id]).code == 0
        });
    }
    // A draft takes no votes until its proposer opens it.
    let drafted = h.icnctl(
        &c,
        &[
            "--json",
            "governance",
            "propose",
            "--title",
            "Paint",
            "--draft",
        ],
    );
    assert_eq!(drafted.code, 0, "{drafted:?}");
    let draft = drafted.json()["event_id"].as_str().unwrap()[..12].to_owned();
    let refused = h.icnctl(&c, &["governance", "vote", &draft, "yes"]);
    assert!(refused.stderr.contains("is a draft"), "{refused:?}");
    assert!(
        h.icnctl(&c, &["governance", "show", &draft])
            .stdout
            .contains("draft:")
    );
    assert_eq!(h.icnctl(&c, &["governance", "open", &draft]).code, 0);
    assert_eq!(h.icnctl(&c, &["governance", "vote", &draft, "yes"]).code, 0);

    let blocked = h.icnctl(&c, &["governance", "vote", &id, "block"]);
    assert_eq!(blocked.code, 2, "a block needs a reason: {blocked:?}");
    for dir in [&a, &b, &c] {
        let voted = h.icnctl(dir, &["governance", "vote", &id, "yes"]);
        assert_eq!(voted.code, 0, "{voted:?}");
    }
    assert_eq!(
        h.icnctl(
            &d,
            &["governance", "vote", &id, "no", "--reason", "too much"]
        )
        .code,
        0
    );
    // Everyone voted: the closer (a, the first founder) closes at its next tick.
    eventually(
        "the budget is accepted and paid on the newcomer's node",
        || {
            let shown = h.icnctl(&d, &["--json", "governance", "show", &id]).json();
            shown["status"] == "accepted" && balance_of(&h, &d, &did_d).contains("\"balance\": 300")
        },
    );
    let shown = h.icnctl(&b, &["governance", "show", &id]);
    assert!(shown.stdout.contains("Accepted: 3 yes, 1 no"), "{shown:?}");

    // Trust: stated by name, read through another member, explained.
    let over = h.icnctl(&b, &["trust", "add", "Dee", "1.5"]);
    assert_eq!(over.code, 2, "{over:?}");
    assert!(over.stderr.contains("from 0 to 1"), "{over:?}");
    assert_eq!(h.icnctl(&b, &["trust", "add", "Dee", "0.5"]).code, 0);
    let did_b = did_in(&h, &b);
    assert_eq!(h.icnctl(&a, &["trust", "add", &did_b, "0.8"]).code, 0);
    eventually("a's trust in Dee runs through b", || {
        let score = h.icnctl(&a, &["--json", "trust", "score", &did_in(&h, &a), "Dee"]);
        // b paid Dee and they voted together: one transfer grows b→Dee to 0.55.
        score.code == 0 && (score.json()["score"].as_f64().unwrap() - 0.8 * 0.55).abs() < 1e-9
    });
    let why = h.icnctl(&a, &["trust", "why", "Dee"]);
    assert_eq!(why.code, 0, "{why:?}");
    assert!(
        why.stdout.contains("2 hop(s)") && why.stdout.contains("stated 0.50"),
        "{why:?}"
    );
}

/// A tool a test needs from outside Rust (Chromium, Node's packages,
/// schemathesis): where `.ci/run` installs it. In CI its absence fails the
/// test; elsewhere the test says what is missing and skips.
fn external_tool(what: &str, found: bool, install: &str) -> bool {
    if found {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} is missing; .ci/run installs it ({install})"
    );
    eprintln!("SKIPPED: {what} is missing (install: {install})");
    false
}

fn on_path(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}

/// Two founders, Ada and Ben, each with their own node serving the web app.
fn two_members_with_web_apps(
    h: &Harness,
) -> ([std::path::PathBuf; 2], [icn_testkit::cli::Daemon; 2]) {
    let dirs = ["ada", "ben"].map(|name| h.data_dir(name));
    for dir in &dirs {
        assert_eq!(h.icnctl(dir, &["id", "init"]).code, 0);
    }
    let ben = did_in(h, &dirs[1]);
    let init = h.icnctl(
        &dirs[0],
        &["coop", "init", "Bike Co-op", "--yes", "--founder", &ben],
    );
    assert_eq!(init.code, 0, "{init:?}");
    let gateway = ["--gateway-bind", "127.0.0.1:0"];
    let daemons = [0, 1].map(|i| h.spawn_icnd(&dirs[i], &gateway));
    let ticket = h.icnctl(&dirs[0], &["--json", "net", "ticket"]).json()["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    let joined = h.icnctl(&dirs[1], &["coop", "join", &ticket]);
    assert_eq!(joined.code, 0, "{joined:?}");
    for (dir, name) in dirs.iter().zip(["Ada", "Ben"]) {
        let named = h.icnctl(dir, &["member", "profile", "--name", name]);
        assert_eq!(named.code, 0, "{named:?}");
    }
    eventually("both nodes know both names", || {
        dirs.iter().all(|dir| {
            let members = h.icnctl(dir, &["--json", "member", "list"]).stdout;
            members.contains("\"Ada\"") && members.contains("\"Ben\"")
        })
    });
    (dirs, daemons)
}

/// Members use the web app in Debian's Chromium (driven by playwright-core):
/// sign-in by link, hours logged by one appear live on the other's phone-sized
/// page, a bad amount is refused, a proposal from a template is voted by both
/// and its outcome reaches both pages, an expired token is renewed with the
/// browser's own key, and the installed app shows the last state offline.
/// Screenshots go to `target/browser-screenshots/`.
#[test]
fn members_use_the_web_app_in_a_real_browser() {
    let Some(tools) = browser_tools() else {
        return;
    };
    let h = harness();
    let (dirs, daemons) = two_members_with_web_apps(&h);
    // A newcomer's node: an identity, no co-op yet.
    let cat = h.data_dir("cat");
    assert_eq!(h.icnctl(&cat, &["id", "init"]).code, 0);
    let cat_daemon = h.spawn_icnd(&cat, &["--gateway-bind", "127.0.0.1:0"]);
    let invitation = h.icnctl(&dirs[0], &["--json", "coop", "invite"]).json()["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    // A recovery request for Cat's identity from a device she does not have.
    let elsewhere = h.data_dir("cat-elsewhere");
    let request = h.icnctl(
        &elsewhere,
        &[
            "--json",
            "id",
            "recover",
            &invitation,
            "--member",
            &did_in(&h, &cat),
        ],
    );
    assert_eq!(request.code, 0, "{request:?}");
    let request = request.json()["request"].as_str().unwrap().to_owned();
    let link = |dir: &std::path::Path| {
        h.icnctl(dir, &["--json", "web", "open"]).json()["url"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let output = tools.run(
        "web.mjs",
        &[
            ("ADA_LINK", &link(&dirs[0])),
            ("BEN_LINK", &link(&dirs[1])),
            ("CAT_LINK", &link(&cat)),
            ("PASSPHRASE", icn_testkit::cli::PASSPHRASE),
            ("INVITATION", &invitation),
            ("RECOVERY_REQUEST", &request),
        ],
    );
    assert!(output.contains("browser test passed"), "{output}");
    if let Some(line) = output.lines().find(|line| line.starts_with("newcomer:")) {
        eprintln!("{line}");
    }
    // The browser that signed in is listed, and revoking it ends its
    // session at once: its token no longer reads, pays or renews.
    let ben_token = output
        .lines()
        .find_map(|line| line.strip_prefix("ben-token: "))
        .expect("the browser test prints Ben's token")
        .trim()
        .to_owned();
    let ben_api = daemons[1].api.clone().expect("Ben's gateway");
    let (code, body) = http("GET", &format!("{ben_api}/me"), Some(&ben_token), None);
    assert_eq!(code, 200, "before the revocation: {body}");
    let keys = h.icnctl(&dirs[1], &["--json", "web", "keys"]).json();
    let key = keys["keys"][0]["key"]
        .as_str()
        .expect("Ben's browser key")
        .to_owned();
    let revoked = h.icnctl(&dirs[1], &["web", "revoke", &key]);
    assert_eq!(revoked.code, 0, "{revoked:?}");
    assert!(
        revoked.stdout.contains("No browser signs in"),
        "{revoked:?}"
    );
    let (code, body) = http("GET", &format!("{ben_api}/me"), Some(&ben_token), None);
    assert_eq!(code, 401, "a revoked browser still reads: {body}");
    let pay = r#"{"to":"Ada","amount":"1h","memo":"after revoke"}"#;
    let (code, body) = http(
        "POST",
        &format!("{ben_api}/ledger/transfer"),
        Some(&ben_token),
        Some(pay),
    );
    assert_eq!(code, 401, "a revoked browser still pays: {body}");
    let (code, body) = http(
        "POST",
        &format!("{ben_api}/auth/refresh"),
        Some(&ben_token),
        None,
    );
    assert_eq!(code, 401, "a revoked browser still renews: {body}");
    // Ada's dispute, opened in the web app, with Cat as mediator.
    let disputes = h
        .icnctl(&dirs[0], &["ledger", "dispute", "list", "--json"])
        .json();
    assert_eq!(disputes["disputes"][0]["status"], "open", "{disputes}");
    assert_eq!(
        disputes["disputes"][0]["reason"], "The trailer still wobbles",
        "{disputes}"
    );
    // Cat cancelled the recovery Ada had approved, both in the web app.
    let recovery = h.icnctl(&cat, &["--json", "id", "recovery"]).json();
    assert_eq!(recovery["of_you"], serde_json::json!([]), "{recovery}");
    assert_eq!(
        recovery["guardians"].as_array().unwrap().len(),
        2,
        "{recovery}"
    );
    // Cat, who joined from the web page, is a member on every node.
    for dir in [&dirs[0], &dirs[1], &cat] {
        eventually("Cat is an active member", || {
            let members = h.icnctl(dir, &["--json", "member", "list"]).json();
            members["members"].as_array().is_some_and(|all| {
                all.iter()
                    .any(|m| m["name"] == "Cat" && m["status"] == "active")
            })
        });
    }
    drop((daemons, cat_daemon));
}

/// The bad-input battery: every operation in the gateway's own OpenAPI
/// document is sent malformed JSON, wrong types, a huge body, no token and a
/// forged token, and answers each with a 4xx in the error shape; then
/// schemathesis (from PyPI) fuzzes every operation from the same document and
/// checks that nothing answers 5xx, and that every answer is documented and
/// matches its schema. Domain refusals of schema-valid input (an unknown
/// member's name) are expected and not counted as failures.
#[test]
fn every_endpoint_refuses_bad_input_in_the_error_shape() {
    let h = harness();
    let dir = h.data_dir("gate");
    assert_eq!(h.icnctl(&dir, &["id", "init"]).code, 0);
    assert_eq!(h.icnctl(&dir, &["coop", "init", "Gate", "--yes"]).code, 0);
    let daemon = h.spawn_icnd_in(
        None,
        &[("ICN_GATEWAY_RATE_LIMIT", "0")],
        &dir,
        &["--gateway-bind", "127.0.0.1:0"],
    );
    let api = daemon.api.clone().expect("the gateway address is printed");
    let token = h.icnctl(&dir, &["--json", "web", "token"]).json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, document) = http_get(&format!("{api}/openapi.json"));
    assert_eq!(code, 200);
    let document: serde_json::Value = serde_json::from_str(&document).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let base = api.trim_end_matches("/api/v1");
    let shaped = |code: u16, body: &str, what: &str| {
        assert!((400..500).contains(&code), "{what}: {code} {body}");
        let error: serde_json::Value = serde_json::from_str(body)
            .unwrap_or_else(|_| panic!("{what}: not the error shape: {body}"));
        assert!(
            error["code"].is_string() && error["message"].is_string(),
            "{what}: {body}"
        );
    };
    let huge = format!("{{\"memo\":\"{}\"}}", "x".repeat(200_000));
    let mut checked = 0;
    for (path, operations) in document["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let url = format!(
                "{base}{}",
                path.replace(['{', '}'], "").replace("did", "nobody")
            );
            let what = format!("{method} {path}");
            let method = method.to_uppercase();
            let secured = operation["security"] != serde_json::json!([]);
            if secured {
                let (code, body) = http(&method, &url, None, None);
                assert_eq!(code, 401, "{what} without a token: {body}");
                shaped(code, &body, &what);
                let (code, body) = http(&method, &url, Some("e30.e30.forged"), None);
                assert_eq!(code, 401, "{what} with a forged token: {body}");
                shaped(code, &body, &what);
            }
            if method == "POST" && operation.get("requestBody").is_some() {
                let bearer = secured.then_some(token.as_str());
                for (bad, expected) in [
                    ("{nope", 400),
                    ("[1, 2]", 400),
                    ("{\"to\": 7, \"amount\": [], \"title\": false}", 400),
                    ("{}", 400),
                    (huge.as_str(), 413),
                ] {
                    let (code, body) = http(&method, &url, bearer, Some(bad));
                    shaped(code, &body, &format!("{what} with {bad:.20}"));
                    assert_eq!(code, expected, "{what} with {bad:.20}: {body}");
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} operations");
    // A body that is not declared JSON is refused (415), not guessed at;
    // a declared length over the limit is refused before the body is read.
    let transfer = format!("{api}/ledger/transfer");
    let bearer = format!("Bearer {token}");
    let json = r#"{"to":"nobody","amount":"1h","memo":""}"#;
    let length = json.len().to_string();
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut headers = vec![
            ("Authorization", bearer.as_str()),
            ("Content-Length", length.as_str()),
        ];
        headers.extend(content_type.map(|value| ("Content-Type", value)));
        let (code, body) = http_raw("POST", &transfer, &headers, json);
        assert_eq!(code, 415, "{content_type:?}: {body}");
        shaped(code, &body, "a body that is not JSON");
    }
    // (http_raw gives up reading after 30 s: a server that waited for the
    // 100 MB would answer nothing, and fail this.)
    let (code, body) = http_raw(
        "POST",
        &transfer,
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
            ("Content-Length", "100000000"),
        ],
        &"x".repeat(1024),
    );
    assert_eq!(code, 413, "{body}");
    shaped(code, &body, "a declared 100 MB body");
    let (code, body) = http("DELETE", &format!("{api}/members"), Some(&token), None);
    assert_eq!(code, 405, "{body}");
    shaped(code, &body, "DELETE /members");
    // Nothing above changed the co-op: the genesis is still its only event.
    assert_eq!(h.icnctl(&dir, &["status", "--json"]).json()["events"], 1);

    // The document is valid OpenAPI (openapi-spec-validator, from PyPI).
    let document_path = dir.with_extension("openapi.json");
    std::fs::write(&document_path, document.to_string()).unwrap();
    let validator = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&document_path)
        .output();
    let validated = validator
        .as_ref()
        .is_ok_and(|run| !String::from_utf8_lossy(&run.stderr).contains("No module named"));
    if external_tool(
        "openapi-spec-validator",
        validated,
        "pip install openapi-spec-validator",
    ) {
        let run = validator.unwrap();
        let said = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success() && said.contains("OK"),
            "{said}{}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    let schemathesis = || {
        let mut command = std::process::Command::new("python3");
        command.args(["-m", "schemathesis.cli"]);
        command
    };
    let installed = schemathesis()
        .arg("--version")
        .output()
        .is_ok_and(|run| run.status.success());
    if !external_tool("schemathesis", installed, "pip install schemathesis") {
        return;
    }
    // ICN_SCHEMATHESIS_SEED and ICN_SCHEMATHESIS_EXAMPLES explore further
    // than CI's fixed run (seed 1, 40 examples per operation).
    let setting =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let (seed, examples) = (
        setting("ICN_SCHEMATHESIS_SEED", "1"),
        setting("ICN_SCHEMATHESIS_EXAMPLES", "40"),
    );
    let run = schemathesis()
        .args([
            "--config-file",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/schemathesis.toml"
            ),
        ])
        .args(["run", &format!("{api}/openapi.json")])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        // The event streams never end by themselves.
        .args(["--exclude-path-regex", "/events"])
        .args([
            "--max-examples",
            &examples,
            "--seed",
            &seed,
            "--request-timeout",
            "20",
        ])
        .args(["--suppress-health-check", "all"])
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .env("NO_COLOR", "1")
        .output()
        .expect("schemathesis runs");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        run.status.success(),
        "schemathesis found failures:\n{output}"
    );
    let summary = output
        .lines()
        .find(|line| line.contains(" generated, "))
        .unwrap_or_default();
    assert!(summary.contains("passed"), "{output}");
    eprintln!("schemathesis: {}", summary.trim());
    drop(daemon);
}

/// Backups: written while icnd runs (and once a day by icnd itself),
/// restored into a new data directory with identical views; a truncated
/// file, a file put together from two members' backups, a wrong
/// passphrase and a restore over existing data are each refused with a
/// clear message and leave nothing behind.
#[test]
fn a_backup_taken_while_running_restores_identical_views() {
    let h = harness();
    let (dirs, daemons) = two_members_with_web_apps(&h);
    let ben = did_in(&h, &dirs[1]);
    assert_eq!(
        h.icnctl(
            &dirs[0],
            &["ledger", "pay", "Ben", "3h", "--memo", "wheels"]
        )
        .code,
        0
    );
    let proposal = h.icnctl(
        &dirs[0],
        &[
            "governance",
            "propose",
            "--title",
            "New sign",
            "--duration",
            "1d",
        ],
    );
    assert_eq!(proposal.code, 0, "{proposal:?}");
    // The day's scheduled backup is written at icnd's first duties.
    eventually("a scheduled backup", || {
        std::fs::read_dir(dirs[0].join("backups")).is_ok_and(|mut entries| {
            entries.any(|entry| {
                entry
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("icn-backup-")
            })
        })
    });
    let views = |dir: &std::path::Path| {
        let view = |args: &[&str]| {
            let run = h.icnctl(dir, args);
            assert_eq!(run.code, 0, "{args:?}: {run:?}");
            run.stdout
        };
        [
            view(&["--json", "ledger", "balance", &ben]),
            view(&["--json", "ledger", "history", &ben]),
            view(&["--json", "member", "list"]),
            view(&["--json", "governance", "list"]),
        ]
    };
    let before = views(&dirs[0]);
    let file = dirs[0].with_extension("icnbak");
    let written = h.icnctl(
        &dirs[0],
        &["--json", "backup", "--to", file.to_str().unwrap()],
    );
    assert_eq!(written.code, 0, "{written:?}");
    assert!(written.json()["bytes"].as_u64().unwrap() > 0);
    // Members' data and backups are their owner's alone: another local
    // user can neither copy a backup nor read the database.
    {
        use std::os::unix::fs::PermissionsExt;
        let mode =
            |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dirs[0]), 0o700, "the data directory");
        assert_eq!(
            mode(&dirs[0].join("backups")),
            0o700,
            "the backups directory"
        );
        for entry in std::fs::read_dir(&dirs[0])
            .unwrap()
            .chain(std::fs::read_dir(dirs[0].join("backups")).unwrap())
        {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                assert_eq!(mode(&entry.path()), 0o600, "{}", entry.path().display());
            }
        }
        assert_eq!(mode(&file), 0o600, "a backup written elsewhere");
    }

    let restored = h.data_dir("restored");
    let run = h.icnctl(&restored, &["restore", file.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("Restored"), "{run:?}");
    assert_eq!(views(&restored), before);
    assert_eq!(did_in(&h, &restored), did_in(&h, &dirs[0]));

    // Over existing data: refused, nothing changed.
    let again = h.icnctl(&restored, &["restore", file.to_str().unwrap()]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("is not empty"), "{again:?}");
    assert_eq!(views(&restored), before);

    let bytes = std::fs::read(&file).unwrap();
    let refused = |name: &str, contents: &[u8], passphrase: Option<&str>, expected: &str| {
        let path = dirs[0].with_extension(name);
        std::fs::write(&path, contents).unwrap();
        let target = h.data_dir(&format!("target-{name}"));
        let run = h.icnctl_with(&target, &["restore", path.to_str().unwrap()], |command| {
            if let Some(passphrase) = passphrase {
                command.env("ICN_KEYSTORE_PASSPHRASE", passphrase);
            }
        });
        assert_eq!(run.code, 2, "{name}: {run:?}");
        assert!(run.stderr.contains(expected), "{name}: {run:?}");
        let left: Vec<_> = std::fs::read_dir(&target)
            .map(|entries| entries.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{name} left {left:?}");
    };
    refused(
        "truncated",
        &bytes[..bytes.len() - 100],
        None,
        "damaged or truncated",
    );
    refused("cut-short", &bytes[..40], None, "damaged or truncated");
    refused("not-a-backup", b"hello", None, "not an ICN backup");
    refused(
        "wrong-passphrase",
        &bytes,
        Some("not the passphrase"),
        "wrong passphrase",
    );
    // Ben's keystore with Ada's database.
    let ben_file = dirs[1].with_extension("icnbak");
    assert_eq!(
        h.icnctl(&dirs[1], &["backup", "--to", ben_file.to_str().unwrap()])
            .code,
        0
    );
    let ben_bytes = std::fs::read(&ben_file).unwrap();
    let header = |bytes: &[u8]| {
        let keystore = u32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize;
        let at = 12 + keystore;
        let identity = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at + 4 + identity
    };
    let mut spliced = ben_bytes[..header(&ben_bytes)].to_vec();
    spliced.extend_from_slice(&bytes[header(&bytes)..]);
    refused("spliced", &spliced, None, "not encrypted to the keys");

    // Ada's laptop signs once more after the backup, then is lost.
    assert_eq!(h.icnctl(&dirs[0], &["ledger", "pay", "Ben", "1h"]).code, 0);
    let minutes = |dir: &std::path::Path| {
        h.icnctl(dir, &["--json", "ledger", "balance", &ben]).json()["accounts"][0]["balance"]
            .as_i64()
            .unwrap()
    };
    eventually("Ben's node has the payment", || minutes(&dirs[1]) == 240);
    let [ada, ben_daemon] = daemons;
    ada.signal("TERM");
    assert_eq!(ada.wait(), Some(0));
    // Ben's node stops too: the restored node would find it in the address
    // book its backup holds, and catch up before the payment below.
    ben_daemon.signal("TERM");
    assert_eq!(ben_daemon.wait(), Some(0));
    // The restored node alone signs nothing: its lost copy went further.
    let alone = h.spawn_icnd(&restored, &[]);
    let early = h.icnctl(&restored, &["ledger", "pay", "Ben", "2h"]);
    assert_eq!(early.code, 2, "{early:?}");
    assert!(
        early.stderr.contains("signs nothing until it has synced"),
        "{early:?}"
    );
    alone.signal("TERM");
    assert_eq!(alone.wait(), Some(0));
    // With a member's node to catch up from, it learns its own later
    // payment, then signs after it: no fork, no hour lost.
    let ben_daemon = h.spawn_icnd(&dirs[1], &[]);
    let ticket = h.icnctl(&dirs[1], &["--json", "net", "ticket"]).json()["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    let _back = h.spawn_icnd(&restored, &["--peer", &ticket]);
    eventually("the restored node signs again", || {
        h.icnctl(&restored, &["ledger", "pay", "Ben", "2h"]).code == 0
    });
    eventually("Ben's node has every payment", || minutes(&dirs[1]) == 360);
    for dir in [&restored, &dirs[1]] {
        assert_eq!(
            h.icnctl(dir, &["status", "--json"]).json()["equivocations"],
            0
        );
    }
    drop(ben_daemon);
}

/// `icnctl doctor` names what is wrong and how to fix it; the metrics
/// endpoint serves Prometheus text with the seeds' names.
#[test]
fn doctor_diagnoses_common_problems_and_metrics_are_served() {
    let h = harness();
    let (dirs, daemons) = two_members_with_web_apps(&h);
    let [ada, ben] = daemons;
    // Both running: nothing fails.
    let healthy = h.icnctl(&dirs[0], &["doctor"]);
    assert_eq!(healthy.code, 0, "{healthy:?}");
    assert!(healthy.stdout.contains("ok    peers"), "{healthy:?}");
    eventually("the daily backup", || {
        h.icnctl(&dirs[0], &["--json", "doctor"]).json()["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|check| check["name"] == "backup" && check["status"] == "ok")
    });
    // Ben's node stops: Ada's has no peer, and Ben's daemon is not running.
    ben.signal("TERM");
    assert_eq!(ben.wait(), Some(0));
    eventually("Ada's doctor warns of no peers", || {
        let report = h.icnctl(&dirs[0], &["doctor"]);
        report.code == 0 && report.stdout.contains("WARN  peers") && report.stdout.contains("fix:")
    });
    let stopped = h.icnctl(&dirs[1], &["doctor"]);
    assert_eq!(stopped.code, 2, "{stopped:?}");
    assert!(stopped.stdout.contains("FAIL  daemon"), "{stopped:?}");
    assert!(stopped.stdout.contains("fix: start it"), "{stopped:?}");
    // A data directory with nothing in it.
    let empty = h.data_dir("empty");
    let nothing = h.icnctl(&empty, &["doctor"]);
    assert_eq!(nothing.code, 2, "{nothing:?}");
    assert!(nothing.stdout.contains("icnctl id init"), "{nothing:?}");
    drop(ada);

    // Metrics, on a port of their own.
    let bind = free_loopback_address();
    let _node = h.spawn_icnd(&dirs[1], &["--metrics-bind", &bind]);
    let (code, text) = http_get(&format!("http://{bind}/metrics"));
    assert_eq!(code, 200, "{text}");
    for line in [
        "ledger_balance_sum{currency=\"hours\"} 0",
        "# TYPE ledger_conflicts_detected_total counter",
        "network_sessions_active ",
        "icn_events ",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
}

/// What the browser tests need: Debian's Chromium, Node.js, and
/// playwright-core (`npm ci --prefix crates/icn-cli/tests/browser`).
struct BrowserTools {
    chromium: std::path::PathBuf,
    node: std::path::PathBuf,
    tests: std::path::PathBuf,
}

/// The browser tools, or `None` after saying what is missing (which fails
/// under CI).
fn browser_tools() -> Option<BrowserTools> {
    let chromium = std::env::var_os("ICN_CHROMIUM")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/usr/bin/chromium".into());
    let tests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let node = on_path("node");
    if !external_tool("Chromium", chromium.is_file(), "apt-get install chromium")
        || !external_tool("Node.js", node.is_some(), "apt-get install nodejs npm")
        || !external_tool(
            "playwright-core",
            tests.join("node_modules/playwright-core").is_dir(),
            "npm ci --prefix crates/icn-cli/tests/browser",
        )
    {
        return None;
    }
    Some(BrowserTools {
        chromium,
        node: node?,
        tests,
    })
}

impl BrowserTools {
    /// Runs a script of `tests/browser/` with `envs`; it must succeed.
    /// Screenshots go to `target/browser-screenshots/`. Returns its output.
    fn run(&self, script: &str, envs: &[(&str, &str)]) -> String {
        let screenshots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .unwrap()
            .join("browser-screenshots");
        let run = std::process::Command::new(&self.node)
            .arg(self.tests.join(script))
            .env("CHROMIUM", &self.chromium)
            .env("SCREENSHOTS", &screenshots)
            .envs(envs.iter().copied())
            .output()
            .expect("node runs");
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(run.status.success(), "{script} failed:\n{output}");
        output
    }
}

/// First start in the browser: `icnd` on an empty data directory serves a
/// set-up page; through it alone a newcomer creates an identity (a weak
/// passphrase is refused) and founds a co-op, and is signed in; the node
/// networks without a restart; the set-up is gone for a second visitor
/// and for the API; the command line sees the same identity and co-op.
/// Then a second node on an empty directory joins that co-op through its
/// own set-up page with an invitation, and is vouched in.
#[test]
fn a_newcomer_founds_a_coop_from_the_set_up_page() {
    let Some(tools) = browser_tools() else {
        return;
    };
    let h = harness();
    let dir = h.data_dir("newcomer");
    let address = free_loopback_address();
    let started = std::time::Instant::now();
    let _daemon = h.spawn_icnd(&dir, &["--gateway-bind", &address]);
    let url = format!("http://{address}/");
    eventually("the gateway answers", || {
        http_get(&format!("{url}api/v1/health")).0 == 200
    });
    let (code, setup) = http_get(&format!("{url}api/v1/setup"));
    assert_eq!(code, 200, "{setup}");
    assert!(setup.contains("\"identity\":false"), "{setup}");
    // A page from elsewhere that reaches the node through a name pointed at
    // 127.0.0.1 (DNS rebinding) cannot set it up.
    let body = format!("{{\"passphrase\":\"{}\"}}", icn_testkit::cli::PASSPHRASE);
    let (code, refused) = http_raw(
        "POST",
        &format!("{url}api/v1/setup/identity"),
        &[
            ("Host", "attacker.example"),
            ("Content-Type", "application/json"),
        ],
        &body,
    );
    assert_eq!(code, 403, "{refused}");
    let output = tools.run(
        "setup.mjs",
        &[
            ("URL", &url),
            ("NAME", "Dana"),
            ("COOP", "Bike Kitchen"),
            ("PASSPHRASE", icn_testkit::cli::PASSPHRASE),
        ],
    );
    assert!(output.contains("set-up test passed"), "{output}");
    eprintln!(
        "first start: from `icnd` on an empty directory to the founder's home page in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The command line sees what the page made; the node networks.
    let status = h.icnctl(&dir, &["--json", "status"]).json();
    assert_eq!(status["coop"]["name"], "Bike Kitchen", "{status}");
    assert_eq!(
        status["did"].as_str(),
        Some(did_in(&h, &dir).as_str()),
        "{status}"
    );
    let ticket = h.icnctl(&dir, &["--json", "net", "ticket"]);
    assert_eq!(
        ticket.code, 0,
        "networking started without a restart: {ticket:?}"
    );
    let members = h.icnctl(&dir, &["--json", "member", "list"]).json();
    assert_eq!(members["members"][0]["name"], "Dana", "{members}");
    // The page's answers are the co-op's parameters: flagged above 60 h.
    let balance = h.icnctl(&dir, &["--json", "ledger", "balance"]).json();
    assert_eq!(balance["accounts"][0]["ceiling"], 60 * 60, "{balance}");
    // The set-up is over, for the API too.
    let (code, again) = http(
        "POST",
        &format!("{url}api/v1/setup/identity"),
        None,
        Some(&format!(
            "{{\"passphrase\":\"{}\"}}",
            icn_testkit::cli::PASSPHRASE
        )),
    );
    assert_eq!(code, 409, "{again}");

    // A second newcomer's node, from an empty directory too, joins that
    // co-op through its own set-up page with Dana's invitation; Dana
    // vouches, and the nodes admit him.
    let second = h.data_dir("second");
    let second_address = free_loopback_address();
    let second_started = std::time::Instant::now();
    let _second_daemon = h.spawn_icnd(&second, &["--gateway-bind", &second_address]);
    let second_url = format!("http://{second_address}/");
    eventually("the second gateway answers", || {
        http_get(&format!("{second_url}api/v1/health")).0 == 200
    });
    let invitation = h.icnctl(&dir, &["--json", "coop", "invite"]).json()["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    // While Eli's page waits, Dana (on her node) vouches for him once his
    // application arrives, and opens a proposal once he is a member.
    let output = std::thread::scope(|scope| {
        let page = scope.spawn(|| {
            tools.run(
                "setup.mjs",
                &[
                    ("URL", &second_url),
                    ("NAME", "Eli"),
                    ("INVITATION", &invitation),
                    ("PASSPHRASE", icn_testkit::cli::PASSPHRASE),
                    ("PROPOSAL", "Buy a tandem"),
                    ("PAYEE", "Dana"),
                ],
            )
        });
        eventually("Dana's node has Eli's application", || {
            h.icnctl(&dir, &["member", "vouch", "Eli"]).code == 0
        });
        eventually("Eli is a member on his own node", || {
            h.icnctl(&second, &["--json", "member", "list"]).json()["members"]
                .as_array()
                .is_some_and(|members| {
                    members
                        .iter()
                        .any(|member| member["name"] == "Eli" && member["status"] == "active")
                })
        });
        let proposed = h.icnctl(
            &dir,
            &[
                "governance",
                "propose",
                "--title",
                "Buy a tandem",
                "--template",
                "simple-majority",
                "--duration",
                "1h",
            ],
        );
        assert_eq!(proposed.code, 0, "{proposed:?}");
        page.join().expect("the page's script ran")
    });
    assert!(output.contains("set-up test passed"), "{output}");
    eprintln!(
        "first start, joining: from `icnd` on an empty directory to having voted and paid in {:.1} s (Dana's vouch and proposal scripted meanwhile)",
        second_started.elapsed().as_secs_f64()
    );
    eventually("Dana's node has Eli's hour", || {
        h.icnctl(&dir, &["ledger", "history", "--json"])
            .stdout
            .contains("Welcome cake")
    });

    // Eli's laptop is lost; his last backup is restored on a new one
    // through its set-up page. It signs once it has caught up with Dana.
    let eli = did_in(&h, &second);
    let backup = h.data_dir("eli.icnbak");
    let made = h.icnctl(&second, &["backup", "--to", backup.to_str().unwrap()]);
    assert_eq!(made.code, 0, "{made:?}");
    drop(_second_daemon);
    let third = h.data_dir("third");
    let third_address = free_loopback_address();
    let _third_daemon = h.spawn_icnd(&third, &["--gateway-bind", &third_address]);
    let third_url = format!("http://{third_address}/");
    eventually("the third gateway answers", || {
        http_get(&format!("{third_url}api/v1/health")).0 == 200
    });
    // Only a backup file, and only the right way.
    let (code, refused) = http_raw(
        "PUT",
        &format!("{third_url}api/v1/setup/backup"),
        &[("Content-Type", "application/octet-stream")],
        "not a backup",
    );
    assert_eq!(code, 400, "{refused}");
    assert!(refused.contains("not an ICN backup"), "{refused}");
    let (code, refused) = http_raw(
        "PUT",
        &format!("{third_url}api/v1/setup/backup"),
        &[
            ("Host", "attacker.example"),
            ("Content-Type", "application/octet-stream"),
        ],
        "ICNBAK1\n",
    );
    assert_eq!(code, 403, "{refused}");
    let output = tools.run(
        "restore.mjs",
        &[
            ("URL", &third_url),
            ("NAME", "Eli"),
            ("DID", &eli),
            ("BACKUP", backup.to_str().unwrap()),
            ("PASSPHRASE", icn_testkit::cli::PASSPHRASE),
        ],
    );
    assert!(output.contains("restore test passed"), "{output}");
    let status = h.icnctl(&third, &["--json", "status"]).json();
    assert_eq!(status["did"].as_str(), Some(eli.as_str()), "{status}");
    assert!(
        !third.join("restore.icnbak").exists(),
        "the uploaded backup is removed once restored"
    );
    eventually(
        "the restored node signs for Eli once it has caught up",
        || {
            h.icnctl(
                &third,
                &["ledger", "pay", "Dana", "1h", "--memo", "after the restore"],
            )
            .code
                == 0
        },
    );
    eventually("Dana's node has Eli's payment", || {
        h.icnctl(&dir, &["ledger", "history", "--json"])
            .stdout
            .contains("after the restore")
    });

    // No backup: Dana adds a laptop through its set-up page with a paper
    // key, and a member who lost every device asks their guardians.
    let dana = did_in(&h, &dir);
    let paper = h.icnctl(&dir, &["id", "paper-key", "--json"]).json()["paper_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let ticket = h.icnctl(&dir, &["--json", "net", "ticket"]).json()["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    let device_request = |paper_key: Option<&str>, member: &str| {
        let mut body = serde_json::json!({
            "passphrase": icn_testkit::cli::PASSPHRASE,
            "ticket": ticket,
            "member": member,
        });
        if let Some(paper_key) = paper_key {
            body["paper_key"] = paper_key.into();
        }
        body.to_string()
    };
    let laptop = h.data_dir("laptop");
    let laptop_address = free_loopback_address();
    let _laptop_daemon = h.spawn_icnd(&laptop, &["--gateway-bind", &laptop_address]);
    let laptop_url = format!("http://{laptop_address}/api/v1/setup/device");
    eventually("the laptop's gateway answers", || {
        http_get(&format!("http://{laptop_address}/api/v1/health")).0 == 200
    });
    let (code, refused) = http(
        "POST",
        &laptop_url,
        None,
        Some(&device_request(Some("not a paper key"), &dana)),
    );
    assert_eq!(code, 400, "{refused}");
    assert!(
        !laptop.join("keystore.age").exists(),
        "a refused set-up writes nothing"
    );
    let (code, answer) = http(
        "POST",
        &laptop_url,
        None,
        Some(&device_request(Some(&paper), &dana)),
    );
    assert_eq!(code, 201, "{answer}");
    assert_eq!(did_in(&h, &laptop), dana);
    eventually("the laptop signs for Dana once it has caught up", || {
        h.icnctl(
            &laptop,
            &["ledger", "pay", "Eli", "1m", "--memo", "from the laptop"],
        )
        .code
            == 0
    });
    eventually("Eli's node has the laptop's payment", || {
        h.icnctl(&third, &["ledger", "history", "--json"])
            .stdout
            .contains("from the laptop")
    });

    let phone = h.data_dir("phone");
    let phone_address = free_loopback_address();
    let _phone_daemon = h.spawn_icnd(&phone, &["--gateway-bind", &phone_address]);
    eventually("the phone's gateway answers", || {
        http_get(&format!("http://{phone_address}/api/v1/health")).0 == 200
    });
    let (code, answer) = http(
        "POST",
        &format!("http://{phone_address}/api/v1/setup/device"),
        None,
        Some(&device_request(None, &eli)),
    );
    assert_eq!(code, 201, "{answer}");
    let token: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let (code, recovery) = http(
        "GET",
        &format!("http://{phone_address}/api/v1/recovery"),
        token["token"].as_str(),
        None,
    );
    assert_eq!(code, 200, "{recovery}");
    assert!(
        recovery.contains("\"this_device_request\":\"icnrq1"),
        "the page has the request for the guardians: {recovery}"
    );
}

/// A loopback address with a port free now (for `--metrics-bind`).
fn free_loopback_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// What the admin of the always-on node sees: the relay's traffic in
/// `/metrics`, and `doctor` failing (exit 2, with the fix) when no
/// member's node is reachable while this node holds entries no one else
/// has; once a member's node is back, the entry reaches it and doctor is
/// content again.
#[test]
fn the_admin_sees_relay_traffic_and_an_isolated_node() {
    let h = harness();
    let bind = free_loopback_address();
    let hub_args = [
        "--relay-enable",
        "--relay-listen",
        "127.0.0.1:0",
        "--metrics-bind",
        &bind,
    ];
    // Isolation fails doctor at once here, not after 5 minutes.
    let at_once = [("ICN_DOCTOR_ISOLATED_AFTER_S", "0")];
    let Founders {
        dirs: [hub, b],
        dids: [_, did_b],
        daemons: [_hub_node, node_b],
        ..
    } = Founders::<2>::start_with(&h, |i, dir| match i {
        0 => h.spawn_icnd_in(None, &at_once, dir, &hub_args),
        _ => h.spawn_icnd(dir, &[]),
    });
    let metric = |name: &str| -> u64 {
        let (code, text) = http_get(&format!("http://{bind}/metrics"));
        assert_eq!(code, 200, "{text}");
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{name} ")))
            .map_or(0, |value| value.parse().unwrap())
    };
    eventually("b's node keeps a connection to the co-op relay", || {
        metric("relay_clients") >= 1 && metric("relay_bytes_received_total") > 0
    });
    assert!(metric("relay_clients_seen_total") >= 1);
    let (_, text) = http_get(&format!("http://{bind}/metrics"));
    assert!(text.contains("network_sessions_relayed "), "{text}");

    // b's node stops; the hub's member pays b: that entry is here only.
    node_b.signal("TERM");
    assert_eq!(node_b.wait(), Some(0));
    eventually("the hub sees no peer", || {
        h.icnctl(&hub, &["--json", "peers"]).json()["peers"]
            .as_array()
            .is_some_and(Vec::is_empty)
    });
    assert_eq!(h.icnctl(&hub, &["ledger", "pay", &did_b, "1h"]).code, 0);
    let report = h.icnctl(&hub, &["doctor"]);
    assert_eq!(report.code, 2, "{report:?}");
    assert!(report.stdout.contains("FAIL  peers"), "{report:?}");
    assert!(
        report
            .stdout
            .contains("1 of your entries are on this node only"),
        "{report:?}"
    );
    assert!(
        report.stdout.contains("fix: start the always-on node"),
        "{report:?}"
    );

    // b is back: the entry reaches it, and doctor no longer fails.
    let _node_b = h.spawn_icnd(&b, &[]);
    eventually("b has the payment and the hub's doctor passes", || {
        balance_of(&h, &b, &did_b).contains("\"balance\": 60")
            && h.icnctl(&hub, &["doctor"]).code == 0
    });
}

/// The example configurations in `deploy/config/` load as they are.
#[test]
fn example_configs_are_valid() {
    let h = harness();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config");
    for name in ["always-on.toml", "laptop.toml"] {
        let path = root.join(name);
        let run = h.icnd_output(&["--config", path.to_str().unwrap(), "config", "check"]);
        assert_eq!(run.code, 0, "{name}: {run:?}");
    }
}

/// The guided set-up asks in plain words and founds the co-op from the
/// answers; a wrong answer is asked again; no answers found nothing.
#[test]
fn the_guided_setup_founds_a_coop_from_plain_answers() {
    let h = harness();
    let [me, other] = ["founder", "other"].map(|name| h.data_dir(name));
    for dir in [&me, &other] {
        assert_eq!(h.icnctl(dir, &["id", "init"]).code, 0);
    }
    let other_did = did_in(&h, &other);
    // Nothing answered: nothing founded, and the way out is named.
    let silent = h.icnctl_input(&me, &["coop", "init"], "");
    assert_eq!(silent.code, 2, "{silent:?}");
    assert!(silent.stderr.contains("--yes"), "{silent:?}");
    let answers =
        format!("Riverside Bakery\nlots\n30\n\n3\n2\n4\n2\nnot-a-did\n{other_did}\n\ny\n");
    let run = h.icnctl_input(&me, &["coop", "init"], &answers);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("A whole number of hours"), "{run:?}");
    assert!(run.stdout.contains("Type 1 or 2"), "{run:?}");
    assert!(run.stdout.contains("That is not a DID"), "{run:?}");
    assert!(run.stdout.contains("2 founding members"), "{run:?}");
    assert!(run.stdout.contains("Type 1, 2 or 3"), "{run:?}");
    assert!(
        run.stdout.contains("three quarters of the votes"),
        "{run:?}"
    );
    let status = h.icnctl(&me, &["status", "--json"]).json();
    assert_eq!(status["coop"]["name"], "Riverside Bakery");
    assert_eq!(status["coop"]["founders"].as_array().unwrap().len(), 2);
    let members = h.icnctl(&me, &["--json", "member", "list"]).json();
    assert_eq!(members["admission"], "proposal", "{members}");
    let me_did = did_in(&h, &me);
    let balance = h
        .icnctl(&me, &["--json", "ledger", "balance", &me_did])
        .json();
    assert_eq!(balance["accounts"][0]["floor"], -30 * 60, "{balance}");
    assert_eq!(balance["accounts"][0]["ceiling"], 80 * 60, "{balance}");
}

/// A data directory written by an earlier release (the fixture in
/// `tests/fixtures/`) opens with this build: migrated if its schema is
/// older, replayed, its views checked, the same balances and outcomes,
/// and the node signs after its last event.
#[test]
fn a_data_directory_from_an_earlier_release_opens() {
    let h = harness();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v0.1.0");
    let dir = h.data_dir("old");
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["keystore.age", "identity.json", "icn.db"] {
        std::fs::copy(fixture.join(file), dir.join(file)).unwrap();
    }
    let status = h.icnctl(&dir, &["status", "--json"]).json();
    assert_eq!(status["coop"]["name"], "Fixture Co-op", "{status}");
    assert_eq!(status["events"], 8, "{status}");
    let balance = h
        .icnctl(&dir, &["--json", "ledger", "balance", "Ben"])
        .json();
    assert_eq!(balance["accounts"][0]["balance"], 150, "{balance}");
    let proposals = h.icnctl(&dir, &["--json", "governance", "list"]).json();
    assert_eq!(proposals["proposals"][0]["title"], "Keep this fixture");
    assert_eq!(proposals["proposals"][0]["status"], "accepted");
    let _node = h.spawn_icnd(&dir, &[]);
    let paid = h.icnctl(&dir, &["ledger", "pay", "Ben", "1h"]);
    assert_eq!(paid.code, 0, "{paid:?}");
    let balance = h
        .icnctl(&dir, &["--json", "ledger", "balance", "Ben"])
        .json();
    assert_eq!(balance["accounts"][0]["balance"], 210, "{balance}");
}

/// The "suspicious transaction" runbook from the command line: the co-op
/// votes to reverse a payment and to freeze the payer; once the closer's
/// node closes both, the payment is compensated and the frozen member can
/// no longer pay; a vote to unfreeze lets them pay again.
#[test]
fn the_coop_reverses_a_payment_and_freezes_a_member_by_vote() {
    let h = harness();
    let (dirs, _daemons) = two_members_with_web_apps(&h);
    let (ada, ben) = (&dirs[0], &dirs[1]);
    let ben_did = did_in(&h, ben);
    let minutes = |dir: &std::path::Path| {
        h.icnctl(dir, &["--json", "ledger", "balance", "Ben"])
            .json()["accounts"][0]["balance"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(h.icnctl(ben, &["ledger", "pay", "Ada", "5h"]).code, 0);
    eventually("Ada's node has Ben's payment", || minutes(ada) == -300);
    let history = h
        .icnctl(ada, &["--json", "ledger", "history", &ben_did])
        .json();
    let entry = history["entries"][0]["id"].as_str().unwrap().to_owned();
    // Both decisions, voted by both members; the closer (Ada's node)
    // closes each as soon as everyone has voted.
    let decide = |action: &[&str], title: &str, voters: &[&std::path::PathBuf]| {
        let mut args = vec![
            "--json",
            "governance",
            "propose",
            "--title",
            title,
            "--duration",
            "1d",
        ];
        args.extend_from_slice(action);
        let proposed = h.icnctl(ada, &args);
        assert_eq!(proposed.code, 0, "{proposed:?}");
        let id = proposed.json()["event_id"].as_str().unwrap().to_owned();
        for dir in voters {
            eventually("the proposal reaches the voter", || {
                h.icnctl(dir, &["governance", "vote", &id, "yes"]).code == 0
            });
        }
        eventually("the proposal is accepted", || {
            h.icnctl(ben, &["--json", "governance", "show", &id]).json()["status"] == "accepted"
        });
    };
    decide(&["--reverse", &entry], "Reverse the 5 h", &[ada, ben]);
    eventually("the payment is compensated on Ben's node", || {
        minutes(ben) == 0
    });
    decide(
        &["--freeze", "Ben"],
        "Freeze Ben while we look",
        &[ada, ben],
    );
    let frozen = h.icnctl(ben, &["ledger", "pay", "Ada", "1h"]);
    assert_eq!(frozen.code, 2, "{frozen:?}");
    // A suspended member does not vote: Ada alone decides to unfreeze.
    let refused = h.icnctl(
        ben,
        &[
            "governance",
            "propose",
            "--title",
            "Let me pay",
            "--unfreeze",
            "Ben",
        ],
    );
    assert_eq!(refused.code, 2, "{refused:?}");
    decide(&["--unfreeze", "Ben"], "Unfreeze Ben", &[ada]);
    eventually("Ben pays again", || {
        h.icnctl(ben, &["ledger", "pay", "Ada", "1h"]).code == 0
    });
}

/// Social recovery, end to end: Ana names Ben, Cy and Dee her guardians (2
/// of 3); she loses her laptop (its data directory is gone from her hands);
/// on a new device she asks to recover, Eve (no guardian) cannot approve,
/// Ben and Cy approve while Dee stays offline, and after the waiting time
/// the new device is Ana: same balance, membership and vote, and it pays.
/// The lost laptop's key is refused by the co-op afterwards.
#[test]
fn a_member_who_lost_her_laptop_is_recovered_by_two_of_three_guardians() {
    let h = harness();
    let names = ["ana", "ben", "cy", "dee", "eve"];
    let dirs = names.map(|name| h.data_dir(name));
    for dir in &dirs {
        assert_eq!(h.icnctl(dir, &["id", "init"]).code, 0);
    }
    let dids = [0, 1, 2, 3, 4].map(|i| did_in(&h, &dirs[i]));
    let [ana, ben, cy, _dee, eve] = &dirs;
    let mut init = vec!["coop", "init", "Bakery", "--yes"];
    for did in &dids[1..] {
        init.extend(["--founder", did.as_str()]);
    }
    assert_eq!(h.icnctl(ana, &init).code, 0);
    // Dee's node never runs: two of three guardians are enough.
    let node_ana = h.spawn_icnd(ana, &["--gateway-bind", "127.0.0.1:0"]);
    let _nodes = [ben, cy, eve].map(|dir| h.spawn_icnd(dir, &[]));
    let ticket_ana = h.icnctl(ana, &["--json", "net", "ticket"]).json()["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    // Ben joins from Ana's ticket, Cy and Eve from Ben's: Ben's node links
    // everyone once Ana's is gone (a co-op's always-on node would).
    assert_eq!(h.icnctl(ben, &["coop", "join", &ticket_ana]).code, 0);
    let ticket_ben = h.icnctl(ben, &["--json", "net", "ticket"]).json()["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    for dir in [cy, eve] {
        assert_eq!(h.icnctl(dir, &["coop", "join", &ticket_ben]).code, 0);
    }
    for (dir, name) in dirs.iter().zip(["Ana", "Ben", "Cy", "Dee", "Eve"]).take(3) {
        let profile = h.icnctl(dir, &["member", "profile", "--name", name]);
        assert_eq!(profile.code, 0, "{profile:?}");
    }
    // icnd names guardians by itself: two of three others, 72 hours.
    eventually("ana's node names her guardians", || {
        let status = h.icnctl(ana, &["--json", "id", "recovery"]).json();
        status["guardians"].as_array().unwrap().len() == 3 && status["threshold"] == 2
    });
    for dir in [ana, ben] {
        eventually("everyone's names reach ana and ben", || {
            let list = h.icnctl(dir, &["--json", "member", "list"]).json();
            let named = |name: &str| {
                list["members"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|member| member["name"] == name)
            };
            named("Ana") && named("Ben") && named("Cy")
        });
    }
    // For the test, a waiting time of seconds instead of 72 hours.
    let set = h.icnctl(
        ana,
        &[
            "id",
            "guardians",
            "Ben",
            "Cy",
            &dids[3],
            "--delay-hours",
            "0.002",
        ],
    );
    assert_eq!(set.code, 0, "{set:?}");
    let recovery_check = |dir: &std::path::Path| {
        let doctor = h.icnctl(dir, &["--json", "doctor"]);
        serde_json::from_str::<serde_json::Value>(&doctor.stdout).unwrap()["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|check| check["name"] == "recovery")
            .cloned()
            .unwrap()
    };
    let check = recovery_check(ana);
    assert_eq!(check["status"], "ok", "{check}");
    assert!(
        check["message"]
            .as_str()
            .unwrap()
            .starts_with("3 guardians"),
        "{check}"
    );
    let eve_as_guardian = h.icnctl(ana, &["id", "guardians", "Ana"]);
    assert_eq!(eve_as_guardian.code, 2, "{eve_as_guardian:?}");
    assert!(
        eve_as_guardian.stderr.contains("your own guardian"),
        "{eve_as_guardian:?}"
    );
    // Only the waiting time changes: the guardians and approvals stay.
    let delay = h.icnctl(ana, &["id", "guardians", "--delay-hours", "0.003"]);
    assert_eq!(delay.code, 0, "{delay:?}");
    eventually("the new waiting time holds", || {
        let shown = h.icnctl(ana, &["--json", "id", "recovery"]).json();
        shown["guardians"]
            .as_array()
            .is_some_and(|all| all.len() == 3)
            && shown["threshold"] == 2
            && shown["delay_hours"]
                .as_f64()
                .is_some_and(|hours| (hours - 0.003).abs() < 1e-9)
    });

    // A guardian freezes Ana's identity (a stolen laptop, say): what her
    // node signs is refused until the guardian unfreezes it. Eve, no
    // guardian of hers, cannot.
    let refused = h.icnctl(eve, &["id", "freeze", "Ana"]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert_eq!(h.icnctl(ben, &["id", "freeze", "Ana"]).code, 0);
    let frozen_by = |dir: &std::path::Path| {
        h.icnctl(dir, &["--json", "id", "recovery"]).json()["frozen_by"].clone()
    };
    eventually("ana's node learns of the freeze", || {
        !frozen_by(ana).is_null()
    });
    let frozen = h.icnctl(ana, &["ledger", "pay", "Ben", "1h"]);
    assert_eq!(frozen.code, 2, "{frozen:?}");
    assert!(
        frozen
            .stderr
            .contains("you are frozen by your guardian Ben"),
        "{frozen:?}"
    );
    let check = recovery_check(ana);
    assert_eq!(check["status"], "fail", "{check}");
    // The balance says so too (one freeze, as members see it).
    let balance = h.icnctl(ana, &["ledger", "balance", "--json"]).json();
    assert_eq!(balance["accounts"][0]["frozen"], true, "{balance}");
    // The gateway answers balances from the views, without the log: the
    // guardian's freeze is in them.
    let api = node_ana
        .api
        .clone()
        .expect("the gateway address is printed");
    let token = h.icnctl(ana, &["--json", "web", "token"]).json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let gateway_balance = |who: &str| {
        let (code, body) = http(
            "GET",
            &format!("{api}/ledger/balance/{who}"),
            Some(&token),
            None,
        );
        assert_eq!(code, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()
    };
    let frozen_account = gateway_balance(&dids[0]);
    assert_eq!(
        frozen_account["accounts"][0]["frozen"], true,
        "{frozen_account}"
    );
    assert_eq!(gateway_balance(&dids[1])["accounts"][0]["frozen"], false);
    // A guardian who did not freeze her cannot lift it, and is told why.
    let not_mine = h.icnctl(cy, &["id", "unfreeze", "Ana"]);
    assert_eq!(not_mine.code, 2, "{not_mine:?}");
    assert!(
        not_mine.stderr.contains("you did not freeze Ana"),
        "{not_mine:?}"
    );
    assert_eq!(h.icnctl(ben, &["id", "unfreeze", "Ana"]).code, 0);
    eventually("ana's node learns of the unfreeze", || {
        frozen_by(ana).is_null()
    });
    assert_eq!(gateway_balance(&dids[0])["accounts"][0]["frozen"], false);

    // Ana's life in the co-op: pays, is paid, votes.
    assert_eq!(h.icnctl(ana, &["ledger", "pay", "Ben", "2h"]).code, 0);
    assert_eq!(h.icnctl(ben, &["ledger", "pay", &dids[0], "30m"]).code, 0);
    let proposed = h.icnctl(
        ben,
        &[
            "--json",
            "governance",
            "propose",
            "--title",
            "New oven",
            "--duration",
            "1h",
        ],
    );
    assert_eq!(proposed.code, 0, "{proposed:?}");
    let proposal = proposed.json()["event_id"].as_str().unwrap()[..12].to_owned();
    eventually("the proposal reaches ana", || {
        h.icnctl(ana, &["governance", "show", &proposal]).code == 0
    });
    assert_eq!(
        h.icnctl(ana, &["governance", "vote", &proposal, "yes"])
            .code,
        0
    );
    let view_of_ana = |dir: &std::path::Path| {
        let balance = h
            .icnctl(dir, &["--json", "ledger", "balance", &dids[0]])
            .json()["accounts"][0]["balance"]
            .clone();
        let shown = h
            .icnctl(dir, &["--json", "governance", "show", &proposal])
            .json();
        let members = h.icnctl(dir, &["--json", "member", "list"]).json();
        let member = members["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|member| member["did"] == dids[0].as_str())
            .cloned();
        (
            balance,
            shown["voted"].clone(),
            member.map(|m| (m["status"].clone(), m["name"].clone())),
        )
    };
    eventually("ben has all of ana's events", || {
        view_of_ana(ben) == view_of_ana(ana)
    });
    let before = view_of_ana(ben);
    assert_eq!(before.0, serde_json::json!(-90), "{before:?}");

    // The laptop is lost. (Its data directory goes to whoever has it now.)
    node_ana.signal("KILL");
    node_ana.wait();
    let stolen = h.data_dir("stolen");
    std::fs::rename(ana, &stolen).unwrap();

    // A guardian gives Ana the command for her new device.
    let invite = h.icnctl(ben, &["--json", "coop", "invite", "--recover", "Ana"]);
    assert_eq!(invite.code, 0, "{invite:?}");
    let command = invite.json().as_str().unwrap().to_owned();
    let words: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(&words[..3], ["icnctl", "id", "recover"], "{command}");
    let new = h.data_dir("ana-new");
    let recover = h.icnctl(
        &new,
        &["--json", "id", "recover", words[3], words[4], words[5]],
    );
    assert_eq!(recover.code, 0, "{recover:?}");
    let request = recover.json()["request"].as_str().unwrap().to_owned();
    let again = h.icnctl(&new, &["id", "recover", words[3], words[4], words[5]]);
    assert_eq!(
        again.code, 2,
        "a second recovery into one directory: {again:?}"
    );
    let _node_new = h.spawn_icnd(&new, &[]);
    let early = h.icnctl(&new, &["ledger", "pay", &dids[1], "1h"]);
    assert_eq!(early.code, 2, "{early:?}");
    assert!(early.stderr.contains("waiting to recover"), "{early:?}");
    // It knows no names until it has synced, and says so.
    let by_name = h.icnctl(&new, &["ledger", "pay", "Ben", "1h"]);
    assert!(
        by_name
            .stderr
            .contains("does not know the members' names yet"),
        "{by_name:?}"
    );
    let check = recovery_check(&new);
    assert_eq!(check["status"], "warn", "{check}");
    assert!(check["fix"].as_str().unwrap().contains(&request), "{check}");

    // Eve is no guardian of Ana's; a damaged request is refused too.
    let not_guardian = h.icnctl(eve, &["id", "approve-recovery", &request]);
    assert_eq!(not_guardian.code, 2, "{not_guardian:?}");
    assert!(
        not_guardian.stderr.contains("not one of"),
        "{not_guardian:?}"
    );
    let damaged = h.icnctl(
        ben,
        &["id", "approve-recovery", &request[..request.len() - 3]],
    );
    assert_eq!(damaged.code, 2, "{damaged:?}");
    assert!(damaged.stderr.contains("damaged"), "{damaged:?}");
    for guardian in [ben, cy] {
        let approved = h.icnctl(guardian, &["id", "approve-recovery", &request]);
        assert_eq!(approved.code, 0, "{approved:?}");
    }
    let shown = h.icnctl(cy, &["--json", "id", "recovery"]).json();
    assert_eq!(shown["you_guard"][0]["approved_by_you"], true, "{shown}");

    // The new device syncs (an approved key may), waits, and takes over.
    eventually("the new device recovers ana's identity", || {
        let status = h.icnctl(&new, &["--json", "id", "recovery"]);
        status.code == 0 && status.json()["this_device_request"].is_null()
    });
    eventually("the new device has ana's history", || {
        view_of_ana(&new) == before
    });
    let paid = h.icnctl(&new, &["ledger", "pay", "Ben", "1h"]);
    assert_eq!(paid.code, 0, "{paid:?}");
    eventually("ben sees the recovered ana's payment", || {
        h.icnctl(ben, &["--json", "ledger", "balance", &dids[0]])
            .json()["accounts"][0]["balance"]
            == -150
    });
    let keys = h.icnctl(ben, &["--json", "id", "recovery"]).json();
    assert!(keys["you_guard"].as_array().unwrap().is_empty(), "{keys}");

    // The lost laptop, started again by whoever has it: the co-op refuses
    // its key, so what it signs reaches no one.
    let _thief = h.spawn_icnd(&stolen, &["--peer", &ticket_ben]);
    let thief_pays = h.icnctl(&stolen, &["ledger", "pay", &dids[4], "5h"]);
    assert_eq!(thief_pays.code, 0, "it does not know yet: {thief_pays:?}");
    // Not a sleep: wait until the stolen node has dialled every member it
    // knows twice since it signed (each time refused), and ben refused it
    // again after the payment.
    let metric = |dir: &std::path::Path, name: &str| {
        h.icnctl(dir, &["--json", "peers"]).json()["metrics"][name]
            .as_u64()
            .unwrap()
    };
    let rounds = metric(&stolen, "dial_rounds");
    let refused = metric(ben, "connections_refused");
    eventually(
        "the stolen node dials twice more, and ben refuses it",
        || {
            metric(&stolen, "dial_rounds") >= rounds + 2
                && metric(ben, "connections_refused") > refused
        },
    );
    for dir in [ben, cy, eve, &new] {
        let balance = h
            .icnctl(dir, &["--json", "ledger", "balance", &dids[4]])
            .json()["accounts"][0]["balance"]
            .clone();
        assert_eq!(
            balance,
            serde_json::json!(0),
            "the thief's payment counts nowhere"
        );
    }
}

/// A migration is one transaction: icnd killed with SIGKILL halfway through
/// one (a large data directory from the first release, copying its events
/// to the new layout) leaves the old layout whole, and the next start
/// migrates it, every event kept.
#[test]
fn a_migration_killed_halfway_resumes_on_the_next_start() {
    const EVENTS: i64 = 150_000;
    let h = harness();
    let dir = h.data_dir("old");
    std::fs::create_dir_all(&dir).unwrap();
    let database = dir.join(icn_store::DATABASE_FILE);
    {
        let mut connection = rusqlite::Connection::open(&database).unwrap();
        connection
            .execute_batch("PRAGMA journal_mode = WAL;")
            .unwrap();
        connection.execute_batch(icn_testkit::SCHEMA_V1).unwrap();
        let transaction = connection.transaction().unwrap();
        {
            let mut insert = transaction
                .prepare(
                    "INSERT INTO events (id, author, seq, kind, timestamp_ms, counted, bytes)
                     VALUES (?1, 'did:icn:x', ?2, 'ledger.transfer', ?2, 1, ?3)",
                )
                .unwrap();
            for seq in 0..EVENTS {
                let mut id = [0u8; 32];
                id[..8].copy_from_slice(&seq.to_be_bytes());
                insert
                    .execute(rusqlite::params![id.as_slice(), seq, vec![seq as u8; 300]])
                    .unwrap();
            }
        }
        transaction.commit().unwrap();
        connection
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
    }
    // The status command opens the store, which migrates it first; kill it
    // once the migration has written megabytes to the journal.
    let icnctl = std::path::Path::new(env!("CARGO_BIN_EXE_icnctl"));
    let mut child = std::process::Command::new(icnctl)
        .args(["--data-dir", dir.to_str().unwrap(), "status"])
        .env("ICN_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let wal = dir.join(format!("{}-wal", icn_store::DATABASE_FILE));
    let mut killed_at = 0;
    while child.try_wait().unwrap().is_none() {
        let written = std::fs::metadata(&wal).map_or(0, |meta| meta.len());
        if written > 4 << 20 {
            killed_at = written;
            child.kill().unwrap();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    child.wait().unwrap();
    assert!(
        killed_at > 0,
        "the migration finished before it could be killed; make the database larger"
    );
    {
        let connection = rusqlite::Connection::open(&database).unwrap();
        let version: u32 = connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, 1, "killed halfway: still the old layout");
        let count: i64 = connection
            .query_row("SELECT count(*) FROM events", [], |row| row.get(0))
            .unwrap();
        assert_eq!(count, EVENTS);
    }
    let store = icn_store::Store::open(&dir).unwrap();
    assert_eq!(store.schema_version().unwrap(), icn_store::SCHEMA_VERSION);
    let events = store.events().unwrap();
    assert_eq!(events.len() as i64, EVENTS);
    assert!(
        events
            .iter()
            .enumerate()
            .all(|(i, row)| row.bytes == vec![i as u8; 300])
    );
    eprintln!(
        "killed the migration with {killed_at} bytes in its journal; the next open migrated all {EVENTS} events"
    );
}

/// The pilot's shape with real processes: three founders and seven
/// newcomers who apply from an invitation and are vouched in; everyone
/// pays, everyone votes; 1,000 payments go through the members' own web
/// gateways; the founders' nodes are restarted one at a time meanwhile (as
/// in a rolling upgrade) and the co-op keeps taking payments; then an
/// eleventh member joins and catches up with all of it.
#[test]
fn a_ten_member_coop_onboards_transacts_votes_and_a_late_newcomer_catches_up() {
    let h = harness();
    let Trio {
        dirs: [a, b, c],
        daemons: [node_a, node_b, node_c],
        ticket,
        ..
    } = Trio::start(&h, &[]);
    let mut founders = vec![node_a, node_b, node_c];
    let newcomers = ["Dee", "Eli", "Fay", "Gus", "Hal", "Ivy", "Jo"];
    let mut dirs = vec![a.clone(), b.clone(), c.clone()];
    let mut daemons = Vec::new();
    for name in newcomers {
        let dir = h.data_dir(&name.to_lowercase());
        assert_eq!(h.icnctl(&dir, &["id", "init"]).code, 0);
        daemons.push(h.spawn_icnd(&dir, &[]));
        let applied = h.icnctl(&dir, &["coop", "join", &ticket, "--name", name]);
        assert_eq!(applied.code, 0, "{applied:?}");
        dirs.push(dir);
    }
    let dids: Vec<String> = dirs.iter().map(|dir| did_in(&h, dir)).collect();
    let active = |dir: &std::path::Path| {
        let list = h.icnctl(dir, &["--json", "member", "list"]).json();
        list["members"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|member| member["status"] == "active")
            .count()
    };
    // Both vouchers must have the applications before they vouch by name.
    for voucher in [&b, &c] {
        eventually("the vouchers see the seven applications", || {
            let list = h.icnctl(voucher, &["--json", "member", "list"]).json();
            list["members"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|member| member["status"] == "applicant")
                .count()
                == 7
        });
    }
    for name in newcomers {
        for voucher in [&b, &c] {
            let vouched = h.icnctl(voucher, &["member", "vouch", name]);
            assert_eq!(vouched.code, 0, "{vouched:?}");
        }
    }
    for dir in &dirs {
        eventually("ten active members on every node", || active(dir) == 10);
    }
    // The founders' nodes had named two guardians each (all there were);
    // with more members they name three.
    eventually("a founder's node names three guardians", || {
        let recovery = h.icnctl(&a, &["--json", "id", "recovery"]).json();
        recovery["guardians"].as_array().unwrap().len() == 3 && recovery["threshold"] == 2
    });

    // Everyone pays the next member; everyone votes on one decision.
    for (i, dir) in dirs.iter().enumerate() {
        let amount = format!("{}m", (i + 1) * 10);
        let paid = h.icnctl(dir, &["ledger", "pay", &dids[(i + 1) % 10], &amount]);
        assert_eq!(paid.code, 0, "{paid:?}");
    }
    let proposed = h.icnctl(
        &b,
        &[
            "--json",
            "governance",
            "propose",
            "--title",
            "Open on Saturdays",
            "--duration",
            "1h",
        ],
    );
    assert_eq!(proposed.code, 0, "{proposed:?}");
    let proposal = proposed.json()["event_id"].as_str().unwrap()[..12].to_owned();
    for dir in &dirs {
        eventually("the proposal reaches every node", || {
            h.icnctl(dir, &["governance", "show", &proposal]).code == 0
        });
        let voted = h.icnctl(dir, &["governance", "vote", &proposal, "yes"]);
        assert_eq!(voted.code, 0, "{voted:?}");
    }

    // 1,000 payments of one minute, a hundred from each member's own web
    // gateway, in two halves; between them each founder's node is stopped
    // and started again while the others keep paying.
    let pay_through_gateways = |daemons: &[&icn_testkit::cli::Daemon]| {
        for (i, (dir, daemon)) in dirs.iter().zip(daemons).enumerate() {
            let token = h.icnctl(dir, &["--json", "web", "token"]).json()["token"]
                .as_str()
                .unwrap()
                .to_owned();
            let api = daemon.api.as_deref().expect("a gateway");
            let body = format!(
                r#"{{"to":"{}","amount":"1m","memo":"shift"}}"#,
                dids[(i + 1) % 10]
            );
            for _ in 0..50 {
                let (status, answer) = icn_testkit::cli::http(
                    "POST",
                    &format!("{api}/ledger/transfer"),
                    Some(&token),
                    Some(&body),
                );
                assert_eq!(status, 201, "{answer}");
            }
        }
    };
    pay_through_gateways(&founders.iter().chain(&daemons).collect::<Vec<_>>());
    for i in 0..3 {
        // An always-on node listens on a fixed address; it keeps it.
        let address = h.icnctl(&dirs[i], &["--json", "net", "ticket"]).json()["addresses"][0]
            .as_str()
            .unwrap()
            .to_owned();
        let stopped = founders.remove(i);
        stopped.signal("TERM");
        assert_eq!(stopped.wait(), Some(0));
        // While it is down, the others go on.
        let paid = h.icnctl(&dirs[3 + i], &["ledger", "pay", &dids[4 + i], "1m"]);
        assert_eq!(paid.code, 0, "{paid:?}");
        let paid_back = h.icnctl(&dirs[4 + i], &["ledger", "pay", &dids[3 + i], "1m"]);
        assert_eq!(paid_back.code, 0, "{paid_back:?}");
        founders.insert(
            i,
            h.spawn_icnd_in(None, &[("ICN_LISTEN", &address)], &dirs[i], &[]),
        );
    }
    pay_through_gateways(&founders.iter().chain(&daemons).collect::<Vec<_>>());

    // An eleventh member joins after all of it and catches up.
    let kim = h.data_dir("kim");
    assert_eq!(h.icnctl(&kim, &["id", "init"]).code, 0);
    let _node_kim = h.spawn_icnd(&kim, &[]);
    let ticket_b = h.icnctl(&b, &["--json", "net", "ticket"]).json()["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    let joined = h.icnctl(&kim, &["coop", "join", &ticket_b, "--name", "Kim"]);
    assert_eq!(joined.code, 0, "{joined:?}");
    eventually("b sees Kim's application", || {
        h.icnctl(&b, &["member", "vouch", "Kim"]).code == 0
    });
    eventually("c sees Kim's application", || {
        h.icnctl(&c, &["member", "vouch", "Kim"]).code == 0
    });
    let caught_up = std::time::Instant::now();
    let events_of =
        |dir: &std::path::Path| h.icnctl(dir, &["--json", "status"]).json()["events"].clone();
    let expected: Vec<i64> = (0..10).map(|i| if i == 0 { 90 } else { -10 }).collect();
    let balances = |dir: &std::path::Path| -> Vec<i64> {
        dids.iter()
            .map(|did| {
                let run = h.icnctl(dir, &["--json", "ledger", "balance", did]);
                run.json()["accounts"][0]["balance"]
                    .as_i64()
                    .unwrap_or(i64::MIN)
            })
            .collect()
    };
    eventually("Kim's node holds everything a's does", || {
        active(&kim) == 11 && events_of(&kim) == events_of(&a) && balances(&kim) == expected
    });
    eprintln!(
        "a newcomer after 1,000+ payments: caught up {:.1} s after the second vouch ({} events)",
        caught_up.elapsed().as_secs_f64(),
        events_of(&kim)
    );
    for dir in &dirs {
        eventually("every node agrees", || {
            events_of(dir) == events_of(&kim) && balances(dir) == expected
        });
    }
    let shown = h
        .icnctl(&kim, &["--json", "governance", "show", &proposal])
        .json();
    assert_eq!(shown["voted"].as_array().unwrap().len(), 10, "{shown}");
    drop((founders, daemons));
}

/// `deploy/install.sh` for a member's laptop, with the binaries this build
/// made: icnd and icnctl in the prefix, the laptop config, and a user
/// service that starts the installed icnd; a second run keeps the config.
#[test]
fn the_install_script_installs_binaries_config_and_a_user_service() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let home = tempfile::tempdir().unwrap();
    let from = std::path::Path::new(env!("CARGO_BIN_EXE_icnd"))
        .parent()
        .unwrap()
        .to_owned();
    let install = || {
        std::process::Command::new("sh")
            .arg(root.join("deploy/install.sh"))
            .args(["--from", from.to_str().unwrap()])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .output()
            .unwrap()
    };
    let run = install();
    let said = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let bin = home.path().join(".local/bin");
    let version = std::process::Command::new(bin.join("icnctl"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("icnctl "));
    let config = home.path().join(".config/icn/icn.toml");
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        std::fs::read_to_string(root.join("deploy/config/laptop.toml")).unwrap()
    );
    let unit =
        std::fs::read_to_string(home.path().join(".config/systemd/user/icnd.service")).unwrap();
    assert!(
        unit.contains(&format!(
            "ExecStart={} --config {}",
            bin.join("icnd").display(),
            config.display()
        )),
        "{unit}"
    );
    assert!(said.contains("icnctl id init"), "{said}");
    std::fs::write(&config, "# mine\n").unwrap();
    assert!(install().status.success());
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "# mine\n");
}

/// A rolling upgrade with two adjacent releases in one co-op: Ana's and
/// Ben's nodes run the previous release (built by
/// `scripts/build-previous-release.sh`), Cy's this one. They pay each other
/// across versions; Cy's node signs what the old release does not know
/// (recovery guardians), which the old nodes keep without counting; then
/// Ben's and Ana's nodes are upgraded one at a time in place, the co-op
/// taking payments throughout, and every node ends with the same events
/// and balances, Cy's guardians now counted.
#[test]
fn the_previous_release_and_this_one_interoperate_during_a_rolling_upgrade() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let previous = root.join("target/previous-release");
    if let Ok(reason) = std::fs::read_to_string(previous.join("unavailable")) {
        // Under CI the release must be built (a full clone has its commit).
        external_tool(
            "the previous release",
            false,
            &format!("scripts/build-previous-release.sh: {}", reason.trim()),
        );
        return;
    }
    if !external_tool(
        "the previous release's binaries",
        previous.join("icnd").is_file(),
        "scripts/build-previous-release.sh",
    ) {
        return;
    }
    let h = harness();
    let old = h.with_binaries(&previous.join("icnd"), &previous.join("icnctl"));
    let [ana, ben] = ["ana", "ben"].map(|name| old.data_dir(name));
    let cy = h.data_dir("cy");
    for dir in [&ana, &ben] {
        assert_eq!(old.icnctl(dir, &["id", "init"]).code, 0);
    }
    assert_eq!(h.icnctl(&cy, &["id", "init"]).code, 0);
    let [did_ana, did_ben, did_cy] = [did_in(&old, &ana), did_in(&old, &ben), did_in(&h, &cy)];
    let founded = old.icnctl(
        &ana,
        &[
            "coop",
            "init",
            "Across versions",
            "--yes",
            "--founder",
            &did_ben,
            "--founder",
            &did_cy,
        ],
    );
    assert_eq!(founded.code, 0, "{founded:?}");
    let version = |harness: &Harness, dir: &std::path::Path| {
        harness.icnctl(dir, &["--json", "status"]).json()["version"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let listen = |harness: &Harness, dir: &std::path::Path| {
        harness.icnctl(dir, &["--json", "net", "ticket"]).json()["addresses"][0]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let node_ana = old.spawn_icnd(&ana, &[]);
    let node_ben = old.spawn_icnd(&ben, &[]);
    let _node_cy = h.spawn_icnd(&cy, &[]);
    assert_ne!(version(&old, &ana), version(&h, &cy), "two releases");
    let ticket = old.icnctl(&ana, &["--json", "net", "ticket"]).json()["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(old.icnctl(&ben, &["coop", "join", &ticket]).code, 0);
    assert_eq!(h.icnctl(&cy, &["coop", "join", &ticket]).code, 0);
    let balance = |harness: &Harness, dir: &std::path::Path, did: &str| {
        harness
            .icnctl(dir, &["--json", "ledger", "balance", did])
            .json()["accounts"][0]["balance"]
            .as_i64()
            .unwrap_or(i64::MIN)
    };
    assert_eq!(old.icnctl(&ana, &["ledger", "pay", &did_cy, "1h"]).code, 0);
    eventually("the new release counts the old one's payment", || {
        balance(&h, &cy, &did_cy) == 60
    });
    assert_eq!(h.icnctl(&cy, &["ledger", "pay", &did_ben, "30m"]).code, 0);
    eventually("the old release counts the new one's payment", || {
        balance(&old, &ben, &did_ben) == 30 && balance(&old, &ana, &did_cy) == 30
    });
    // Cy's node has named Cy's guardians: an event kind the old release
    // keeps but cannot count yet.
    eventually("cy's guardians are named", || {
        h.icnctl(&cy, &["--json", "id", "recovery"]).json()["guardians"]
            .as_array()
            .unwrap()
            .len()
            == 2
    });

    // Ben's node first, then Ana's: stopped, and started with this
    // release on the same data directory and address.
    let mut nodes = vec![node_ben, node_ana];
    for (dir, did) in [(&ben, &did_ben), (&ana, &did_ana)] {
        let address = listen(&old, dir);
        let stopped = nodes.remove(0);
        stopped.signal("TERM");
        assert_eq!(stopped.wait(), Some(0));
        let paid = h.icnctl(&cy, &["ledger", "pay", did, "10m"]);
        assert_eq!(paid.code, 0, "the co-op takes payments meanwhile: {paid:?}");
        nodes.push(h.spawn_icnd_in(None, &[("ICN_LISTEN", &address)], dir, &[]));
        assert_eq!(version(&h, dir), version(&h, &cy));
    }
    let events =
        |dir: &std::path::Path| h.icnctl(dir, &["--json", "status"]).json()["events"].clone();
    let all = |dir: &std::path::Path| {
        (
            events(dir),
            [&did_ana, &did_ben, &did_cy].map(|did| balance(&h, dir, did)),
        )
    };
    for dir in [&ana, &ben] {
        eventually("every node holds the same events and balances", || {
            all(dir) == all(&cy)
        });
    }
    assert_eq!(all(&cy).1, [-50, 40, 10], "{:?}", all(&cy));
    // Cy's guardians, kept but not counted by the old release, count now.
    eventually("ana's upgraded node counts cy's guardians", || {
        let status = h.icnctl(&ana, &["--json", "id", "recovery"]).json();
        status["guarding"]
            .as_array()
            .unwrap()
            .iter()
            .any(|member| member["did"] == did_cy.as_str())
    });
    drop(nodes);
}

/// Members' files on one node: a file kept in the member's personal space
/// comes back byte-identical (through icnd and without it), a second copy
/// of the same bytes stores nothing new, the blob store and the log hold
/// neither the file's bytes nor its path, versions and deletions stay in
/// its history, and bad input changes nothing.
#[test]
fn a_member_keeps_files_encrypted_and_gets_them_back() {
    use std::os::unix::fs::PermissionsExt;

    let h = harness();
    let dir = h.data_dir("ana");
    assert_eq!(h.icnctl(&dir, &["id", "init"]).code, 0);
    assert_eq!(h.icnctl(&dir, &["coop", "init", "Drive", "--yes"]).code, 0);
    let work = dir.with_extension("work");
    std::fs::create_dir_all(&work).unwrap();
    // 3 MB that do not compress or repeat, and a marker to look for.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut bytes: Vec<u8> = (0..3_000_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    bytes.extend_from_slice(b"MINUTES-OF-THE-ASSEMBLY");
    let source = work.join("minutes.bin");
    std::fs::write(&source, &bytes).unwrap();
    let source_text = source.to_str().unwrap();

    // Without icnd: the command opens the data directory itself.
    let put = h.icnctl(
        &dir,
        &[
            "files",
            "put",
            source_text,
            "--as",
            "assembly/minutes-2026.bin",
            "--json",
        ],
    );
    assert_eq!(put.code, 0, "{put:?}");
    let put = put.json();
    assert_eq!(put["size"], bytes.len());
    assert!(put["chunks"].as_u64().unwrap() >= 1);
    assert_eq!(put["new_chunks"], put["chunks"]);

    let daemon = h.spawn_icnd(&dir, &[]);
    // The same bytes again, under another name: nothing new but a manifest.
    let again = h.icnctl(
        &dir,
        &["files", "put", source_text, "--as", "copy.bin", "--json"],
    );
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(again.json()["new_chunks"], 0);
    let listing = h.icnctl(&dir, &["files", "ls", "--json"]).json();
    let paths: Vec<&str> = listing["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["assembly/minutes-2026.bin", "copy.bin"]);
    assert_eq!(listing["unreadable"], 0);

    let back = work.join("back.bin");
    let get = h.icnctl(
        &dir,
        &[
            "files",
            "get",
            "assembly/minutes-2026.bin",
            "--to",
            back.to_str().unwrap(),
        ],
    );
    assert_eq!(get.code, 0, "{get:?}");
    assert_eq!(std::fs::read(&back).unwrap(), bytes, "byte-identical");
    // It does not overwrite what exists.
    let over = h.icnctl(
        &dir,
        &["files", "get", "copy.bin", "--to", back.to_str().unwrap()],
    );
    assert_eq!(over.code, 2);
    assert!(over.stderr.contains("exists"), "{over:?}");

    // A new version, then a deletion: both in the history, the file gone
    // from the listing.
    std::fs::write(&source, b"a shorter second version").unwrap();
    assert_eq!(
        h.icnctl(&dir, &["files", "put", source_text, "--as", "copy.bin"])
            .code,
        0
    );
    let removed = h.icnctl(&dir, &["files", "rm", "copy.bin"]);
    assert_eq!(removed.code, 0, "{removed:?}");
    let history = h
        .icnctl(&dir, &["files", "history", "copy.bin", "--json"])
        .json();
    let changes: Vec<&str> = history["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|version| version["change"].as_str().unwrap())
        .collect();
    assert_eq!(changes, ["put", "put", "delete"]);
    let listing = h.icnctl(&dir, &["files", "ls", "--json"]).json();
    assert_eq!(listing["files"].as_array().unwrap().len(), 1);
    // An earlier version is still there to get.
    let first = history["versions"][0]["id"].as_str().unwrap();
    let old = work.join("old.bin");
    let get_old = h.icnctl(
        &dir,
        &[
            "files",
            "get",
            "copy.bin",
            "--version",
            &first[..12],
            "--to",
            old.to_str().unwrap(),
        ],
    );
    assert_eq!(get_old.code, 0, "{get_old:?}");
    assert_eq!(std::fs::read(&old).unwrap(), bytes);

    // Bad input: refused with a reason, nothing stored.
    let events = h.icnctl(&dir, &["status", "--json"]).json()["events"].clone();
    for (args, why) in [
        (
            vec!["files", "put", source_text, "--as", "../escape"],
            "`..`",
        ),
        (vec!["files", "put", "/nonexistent/file"], "cannot read"),
        (
            vec!["files", "put", work.to_str().unwrap(), "--as", "d"],
            "not a regular file",
        ),
        (vec!["files", "get", "never-stored.txt"], "never-stored"),
        (vec!["files", "history", "a//b"], "cannot be empty"),
    ] {
        let run = h.icnctl(&dir, &args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(
            run.stderr.contains(why),
            "{args:?} should say {why:?}: {run:?}"
        );
    }
    assert_eq!(
        h.icnctl(&dir, &["status", "--json"]).json()["events"],
        events
    );
    drop(daemon);

    // What is on disk reveals neither the bytes nor the names.
    let blobs = dir.join("files").join("blobs");
    let mut found = 0;
    let mut stack = vec![blobs.clone()];
    while let Some(at) = stack.pop() {
        let mode = std::fs::metadata(&at).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", at.display());
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            found += 1;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", path.display());
            let blob = std::fs::read(&path).unwrap();
            assert!(!contains(&blob, b"MINUTES-OF-THE-ASSEMBLY"));
            assert!(!contains(&blob, b"minutes-2026"));
        }
    }
    assert!(found >= 3, "{found} blobs");
    let mut database = std::fs::read(dir.join("icn.db")).unwrap();
    database.extend(std::fs::read(dir.join("icn.db-wal")).unwrap_or_default());
    assert!(!database.is_empty());
    assert!(
        !contains(&database, b"minutes-2026"),
        "paths are sealed in the log"
    );
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}
