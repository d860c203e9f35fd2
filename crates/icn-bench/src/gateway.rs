//! `icn-bench gateway [SECONDS] [CONNECTIONS]`: the gateway under a load
//! generator (`wrk`, from Debian's packages), beside a trivial axum handler
//! measured in the same run on the same machine:
//!
//! - reads: `GET /api/v1/ledger/balance/{did}` with a token (auth check,
//!   path parsing, the node's lock, a view lookup, JSON) against a handler
//!   that answers a constant JSON body;
//! - writes: `POST /api/v1/ledger/transfer` from CONNECTIONS concurrent
//!   clients (each a signed, validated, durable payment, group-committed).
//!
//! wrk runs on the same two cores as the node, so the ratio is the figure
//! that carries over to another machine.

use icn_node::prelude::*;
use std::{io::Write, net::SocketAddr, process::Command};

use axum::{Json, Router, routing::get};
use icn_identity::Did;
use icn_node::{config::GatewayConfig, http::AppState};
use icn_testkit::{did_of, member};

/// What wrk measured.
struct Load {
    requests_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

fn wrk(url: &str, seconds: u64, connections: usize, extra: &[&str]) -> Load {
    let output = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
        ])
        .args(extra)
        .arg(url)
        .output()
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let field = |prefix: &str| {
        text.lines().find_map(|line| {
            line.trim()
                .strip_prefix(prefix)
                .map(str::trim)
                .map(str::to_owned)
        })
    };
    let duration_ms = |text: String| -> f64 {
        let (number, unit) =
            text.split_at(text.find(|c: char| c.is_alphabetic()).unwrap_or(text.len()));
        let number: f64 = number.parse().unwrap_or(f64::NAN);
        match unit {
            "us" => number / 1000.0,
            "ms" => number,
            "s" => number * 1000.0,
            "m" => number * 60_000.0,
            _ => f64::NAN,
        }
    };
    Load {
        requests_per_s: field("Requests/sec:")
            .and_then(|rate| rate.parse().ok())
            .unwrap_or(f64::NAN),
        p50_ms: field("50%").map(duration_ms).unwrap_or(f64::NAN),
        p99_ms: field("99%").map(duration_ms).unwrap_or(f64::NAN),
        errors: field("Non-2xx or 3xx responses:")
            .and_then(|count| count.parse().ok())
            .unwrap_or(0),
    }
}

pub fn run(seconds: u64, connections: usize) {
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("icn-bench gateway needs wrk: apt-get install wrk");
        std::process::exit(2);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let mut node = crate::member_node(dir.path(), member(1));
    let payees: Vec<Did> = (2..=10).map(|n| did_of(&member(n))).collect();
    let params = [("ledger.floor".to_owned(), "1000000".to_owned())].into();
    node.create_coop("Bench", &payees, &params, icn_testkit::at(0))
        .expect("founds");
    let me = did_of(&member(1));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let state = AppState::new(node);
    let token = state
        .auth
        .issue(me, "read write", icn_node::auth::Session::Plain);
    let config = GatewayConfig {
        rate_limit_per_second: 0,
        ..GatewayConfig::default()
    };
    let serve = |router: Router| -> SocketAddr {
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("binds");
        let address = listener.local_addr().expect("an address");
        // The listener icnd serves with (connection caps, idle limit), for
        // the gateway and the ceiling alike.
        let listener = icn_node::listener::CappedListener::new(
            listener,
            icn_node::listener::Limits::default(),
        );
        runtime.spawn(
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<icn_node::listener::ClientAddr>(),
            )
            .into_future(),
        );
        address
    };
    let gateway = serve(icn_node::gateway::router(state.clone(), &config));
    let trivial = serve(Router::new().route(
        "/ping",
        get(|| async { Json(serde_json::json!({ "status": "ok" })) }),
    ));
    let bearer = format!("Authorization: Bearer {token}");
    println!(
        "icn-bench gateway: wrk, 2 threads, {connections} connections, {seconds} s each, on the node's 2 cores"
    );

    let floor = wrk(&format!("http://{trivial}/ping"), seconds, connections, &[]);
    let balance = wrk(
        &format!("http://{gateway}/api/v1/ledger/balance/{me}"),
        seconds,
        connections,
        &["-H", &bearer],
    );
    println!(
        "  trivial axum handler (constant JSON):  {:>8.0} req/s  p50 {:.2} ms  p99 {:.2} ms",
        floor.requests_per_s, floor.p50_ms, floor.p99_ms
    );
    println!(
        "  GET /ledger/balance/{{did}} (token):     {:>8.0} req/s  p50 {:.2} ms  p99 {:.2} ms  ratio {:.2}  ({} errors)",
        balance.requests_per_s,
        balance.p50_ms,
        balance.p99_ms,
        balance.requests_per_s / floor.requests_per_s,
        balance.errors
    );

    let mut script = tempfile::NamedTempFile::new().expect("a temp file");
    write!(
        script,
        "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.headers[\"Authorization\"] = \"Bearer {token}\"\nwrk.body = '{{\"to\":\"{}\",\"amount\":\"1m\",\"memo\":\"bench\"}}'\n",
        payees[0]
    )
    .expect("writes");
    let transfers = wrk(
        &format!("http://{gateway}/api/v1/ledger/transfer"),
        seconds,
        connections,
        &["-s", script.path().to_str().expect("a UTF-8 path")],
    );
    println!(
        "  POST /ledger/transfer (signed, durable): {:>7.0} tx/s   p50 {:.2} ms  p99 {:.2} ms  ({} errors)",
        transfers.requests_per_s, transfers.p50_ms, transfers.p99_ms, transfers.errors
    );
    let events = runtime
        .block_on(async {
            let state = state.clone();
            tokio::task::spawn_blocking(move || {
                state
                    .node
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .status(true, None)
                    .events
            })
            .await
        })
        .expect("reads");
    println!("  events in the log afterwards: {events} (every 201 is one of them)");
    drop(runtime);
}
